/*
 * test_engine.c: the engine's operations and policies, end to end on a real
 * encrypted SQLite store in a temporary directory.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "crypto/crypto.h"
#include "match/match.h"
#include "store/store.h"
#include "testutil.h"

#define DIM 128
#define SEED 7

typedef struct fx {
    char *dir;
    abis_engine *e;
    abis_error err;
} fx;

static const char *consent_purpose = "bank.remote-id";
static const char *statutory_purpose = "border.control";

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = abis_test_tmpdir("engine");
    unsetenv("ABIS_MASTER_KEY");
    assert_status(abis_store_init(f->dir, &f->err), ABIS_OK, &f->err);
    abis_open_options o = {.data_dir = f->dir, .actor = "test"};
    assert_status(abis_engine_open(&o, &f->e, &f->err), ABIS_OK, &f->err);
    assert_status(abis_segment_add(f->e, NULL, "city", &f->err), ABIS_OK, &f->err);
    abis_purpose_def bank = {
        .name = consent_purpose, .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
    assert_status(abis_purpose_add(f->e, NULL, &bank, &f->err), ABIS_OK, &f->err);
    abis_purpose_def border = {.name = statutory_purpose,
                               .basis = ABIS_BASIS_STATUTORY,
                               .target_fmr = 1e-5,
                               .legal_ref = "Border Code art. 8"};
    assert_status(abis_purpose_add(f->e, NULL, &border, &f->err), ABIS_OK, &f->err);
    assert_status(abis_modality_add(f->e, NULL, "face", "vector", DIM, &f->err), ABIS_OK, &f->err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    abis_engine_close(f->e);
    abis_test_rmdir(f->dir);
    free(f);
    return 0;
}

static void reopen(fx *f)
{
    abis_engine_close(f->e);
    abis_open_options o = {.data_dir = f->dir, .actor = "test"};
    assert_status(abis_engine_open(&o, &f->e, &f->err), ABIS_OK, &f->err);
}

/* Sample `sample` of synthetic person `person`. */
static abis_template_input face(float *buf, uint64_t person, uint64_t sample)
{
    abis_synth_sample(SEED, person, sample, ABIS_SYNTH_SIGMA, buf, DIM);
    abis_template_input t = {.modality = "face", .vector = buf, .dim = DIM, .quality = -1};
    return t;
}

static abis_id enroll(fx *f, uint64_t person, const char *ref, int consent)
{
    float v[DIM];
    abis_template_input t = face(v, person, 0);
    const char *consents[] = {consent_purpose};
    abis_enroll_request req = {.segment = "city",
                               .external_ref = ref,
                               .templates = &t,
                               .n_templates = 1,
                               .consents = consents,
                               .n_consents = consent ? 1 : 0};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_OK, &f->err);
    assert_false(res.duplicate);
    return res.subject_id;
}

static abis_status verify(fx *f, const abis_id *id, uint64_t person, uint64_t sample,
                          const char *purpose, abis_verify_result *r)
{
    float v[DIM];
    abis_template_input t = face(v, person, sample);
    return abis_subject_verify(f->e, NULL, id, purpose, &t, 1, r, &f->err);
}

static size_t identify(fx *f, uint64_t person, uint64_t sample, const char *purpose,
                       abis_candidate *out, size_t k)
{
    float v[DIM];
    abis_template_input t = face(v, person, sample);
    size_t n = 0;
    assert_status(abis_subject_identify(f->e, NULL, "city", purpose, &t, 1, k, out, &n, &f->err),
                  ABIS_OK, &f->err);
    return n;
}

static void enroll_population(fx *f, uint64_t from, uint64_t to, int consent)
{
    for (uint64_t p = from; p < to; p++)
        enroll(f, p, NULL, consent);
}

/* ---- verify ---- */

static void test_verify_genuine_matches(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, "C-1", 1);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
    assert_true(r.score > 0.6);
    assert_true(r.fmr < 1e-4);
    assert_int_equal(r.confidence, ABIS_CONFIDENCE_HIGH);
}

static void test_verify_impostor_does_not_match(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    abis_verify_result r;
    assert_status(verify(f, &id, 2, 0, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_NO_MATCH);
    assert_true(r.score < r.threshold);
}

static void test_verify_refused_without_consent(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 0);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_E_NO_CONSENT, &f->err);
    assert_non_null(strstr(f->err.message, consent_purpose));
}

static void test_verify_refused_after_consent_withdrawn(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    assert_status(abis_consent_withdraw(f->e, NULL, &id, consent_purpose, &f->err), ABIS_OK,
                  &f->err);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_E_NO_CONSENT, &f->err);
    assert_status(abis_consent_grant(f->e, NULL, &id, consent_purpose, &f->err), ABIS_OK, &f->err);
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
}

static void test_statutory_verify_works_without_consent_and_is_shown(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 0);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, statutory_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
    abis_subject_view *v;
    assert_status(abis_subject_show(f->e, NULL, &id, &v, &f->err), ABIS_OK, &f->err);
    int seen = 0;
    for (size_t i = 0; i < v->n_history; i++)
        if (!strcmp(v->history[i].operation, "verify") &&
            !strcmp(v->history[i].purpose, statutory_purpose)) {
            assert_string_equal(v->history[i].basis, "statutory");
            assert_string_equal(v->history[i].decision, "match");
            seen = 1;
        }
    assert_true(seen);
    abis_subject_view_free(v);
}

static void test_consent_cannot_be_given_for_statutory_purpose(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 0);
    assert_status(abis_consent_grant(f->e, NULL, &id, statutory_purpose, &f->err), ABIS_E_INVALID,
                  &f->err);
}

/* ---- identify ---- */

static void test_identify_finds_the_person(void **state)
{
    fx *f = *state;
    enroll_population(f, 100, 160, 1);
    abis_id id = enroll(f, 1, "C-1", 1);
    abis_candidate c[5];
    size_t n = identify(f, 1, 2, consent_purpose, c, 5);
    assert_int_equal(n, 1);
    assert_memory_equal(c[0].subject_id.bytes, id.bytes, ABIS_ID_BYTES);
    assert_string_equal(c[0].external_ref, "C-1");
}

static void test_identify_open_set_returns_nothing_for_stranger(void **state)
{
    fx *f = *state;
    enroll_population(f, 100, 160, 1);
    abis_candidate c[5];
    assert_int_equal(identify(f, 999, 0, consent_purpose, c, 5), 0);
}

static void test_identify_filters_subjects_without_consent(void **state)
{
    fx *f = *state;
    enroll_population(f, 100, 120, 1);
    abis_id id = enroll(f, 1, NULL, 0);
    abis_candidate c[5];
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 5), 0);
    /* A statutory purpose searches the whole segment. */
    assert_int_equal(identify(f, 1, 1, statutory_purpose, c, 5), 1);
    assert_memory_equal(c[0].subject_id.bytes, id.bytes, ABIS_ID_BYTES);
    /* Consent given later takes effect in the loaded gallery at once. */
    assert_status(abis_consent_grant(f->e, NULL, &id, consent_purpose, &f->err), ABIS_OK, &f->err);
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 5), 1);
    assert_status(abis_consent_withdraw(f->e, NULL, &id, consent_purpose, &f->err), ABIS_OK,
                  &f->err);
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 5), 0);
}

static void test_identify_candidates_see_it_in_their_history(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    abis_candidate c[1];
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 1), 1);
    abis_subject_view *v;
    assert_status(abis_subject_show(f->e, NULL, &id, &v, &f->err), ABIS_OK, &f->err);
    int seen = 0;
    for (size_t i = 0; i < v->n_history; i++)
        seen |= !strcmp(v->history[i].operation, "identify") &&
                !strcmp(v->history[i].decision, "candidate");
    assert_true(seen);
    abis_subject_view_free(v);
}

static void test_identify_state_survives_reopen(void **state)
{
    fx *f = *state;
    enroll_population(f, 100, 110, 1);
    abis_id id = enroll(f, 1, NULL, 1);
    abis_id locked = enroll(f, 2, NULL, 1);
    assert_status(abis_subject_lock(f->e, NULL, &locked, "face", &f->err), ABIS_OK, &f->err);
    reopen(f);
    abis_candidate c[3];
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 3), 1);
    assert_memory_equal(c[0].subject_id.bytes, id.bytes, ABIS_ID_BYTES);
    assert_int_equal(identify(f, 2, 1, consent_purpose, c, 3), 0);
}

/* ---- locks ---- */

static void test_lock_refuses_verify_and_hides_from_identify(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    abis_candidate c[1];
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 1), 1);
    assert_status(abis_subject_lock(f->e, NULL, &id, "face", &f->err), ABIS_OK, &f->err);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_E_LOCKED, &f->err);
    assert_status(verify(f, &id, 1, 1, statutory_purpose, &r), ABIS_E_LOCKED, &f->err);
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 1), 0);
    assert_int_equal(identify(f, 1, 1, statutory_purpose, c, 1), 0);
    assert_status(abis_subject_unlock(f->e, NULL, &id, "face", &f->err), ABIS_OK, &f->err);
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(identify(f, 1, 1, consent_purpose, c, 1), 1);
}

static void test_lock_all_modalities(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    assert_status(abis_subject_lock(f->e, NULL, &id, NULL, &f->err), ABIS_OK, &f->err);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_E_LOCKED, &f->err);
    abis_subject_view *v;
    assert_status(abis_subject_show(f->e, NULL, &id, &v, &f->err), ABIS_OK, &f->err);
    assert_int_equal(v->n_locks, 1);
    assert_string_equal(v->locks[0].modality, "*");
    abis_subject_view_free(v);
    assert_status(abis_subject_unlock(f->e, NULL, &id, "*", &f->err), ABIS_OK, &f->err);
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_OK, &f->err);
}

static void test_refusals_are_audited(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 0);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_E_NO_CONSENT, &f->err);
    assert_status(abis_subject_lock(f->e, NULL, &id, "face", &f->err), ABIS_OK, &f->err);
    assert_status(verify(f, &id, 1, 1, statutory_purpose, &r), ABIS_E_LOCKED, &f->err);
    abis_subject_view *v;
    assert_status(abis_subject_show(f->e, NULL, &id, &v, &f->err), ABIS_OK, &f->err);
    int no_consent = 0, locked = 0;
    for (size_t i = 0; i < v->n_history; i++) {
        no_consent |= !strcmp(v->history[i].outcome, "no_consent");
        locked |= !strcmp(v->history[i].outcome, "locked");
    }
    assert_true(no_consent);
    assert_true(locked);
    abis_subject_view_free(v);
}

/* ---- deduplication ---- */

static void test_dedup_refuses_second_enrolment_of_same_person(void **state)
{
    fx *f = *state;
    enroll_population(f, 100, 130, 1);
    abis_id first = enroll(f, 1, NULL, 1);
    float v[DIM];
    abis_template_input t = face(v, 1, 3);
    abis_enroll_request req = {.segment = "city", .templates = &t, .n_templates = 1};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_E_DUPLICATE, &f->err);
    assert_true(res.duplicate);
    assert_memory_equal(res.duplicate_of.bytes, first.bytes, ABIS_ID_BYTES);
    char hex[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&first, hex);
    assert_non_null(strstr(f->err.message, hex));
    /* The operator can force it; it is audited as forced. */
    req.force = 1;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_OK, &f->err);
    assert_true(res.duplicate);
    abis_subject_view *view;
    assert_status(abis_subject_show(f->e, NULL, &res.subject_id, &view, &f->err), ABIS_OK, &f->err);
    assert_string_equal(view->history[0].decision, "forced");
    abis_subject_view_free(view);
}

static void test_dedup_lets_different_people_enrol(void **state)
{
    fx *f = *state;
    enroll_population(f, 100, 300, 0); /* enroll() asserts no duplicate was found */
}

static void test_external_ref_unique_per_segment(void **state)
{
    fx *f = *state;
    enroll(f, 1, "C-1", 1);
    float v[DIM];
    abis_template_input t = face(v, 2, 0);
    abis_enroll_request req = {
        .segment = "city", .external_ref = "C-1", .templates = &t, .n_templates = 1};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_E_EXISTS, &f->err);
    assert_null(strstr(f->err.message, "C-1")); /* never echo personal references */
    abis_id found;
    assert_status(abis_subject_find_ref(f->e, "city", "C-1", &found, &f->err), ABIS_OK, &f->err);
}

/* ---- templates ---- */

static void test_template_replace_takes_effect(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    float v[DIM];
    abis_template_input t = face(v, 50, 0); /* a different face for the same record */
    abis_id tid;
    assert_status(abis_template_add(f->e, NULL, &id, &t, 1, 0, &tid, &f->err), ABIS_OK, &f->err);
    abis_verify_result r;
    assert_status(verify(f, &id, 50, 1, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
    assert_status(verify(f, &id, 1, 1, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_NO_MATCH);
    abis_subject_view *view;
    assert_status(abis_subject_show(f->e, NULL, &id, &view, &f->err), ABIS_OK, &f->err);
    assert_int_equal(view->n_templates, 1);
    assert_memory_equal(view->templates[0].template_id.bytes, tid.bytes, ABIS_ID_BYTES);
    abis_subject_view_free(view);
}

static void test_template_add_refuses_another_persons_face(void **state)
{
    fx *f = *state;
    enroll(f, 1, NULL, 1);
    abis_id id2 = enroll(f, 2, NULL, 1);
    float v[DIM];
    abis_template_input t = face(v, 1, 4);
    assert_status(abis_template_add(f->e, NULL, &id2, &t, 0, 0, NULL, &f->err), ABIS_E_DUPLICATE,
                  &f->err);
}

/* ---- bad input ---- */

static void expect_enroll_invalid(fx *f, abis_template_input *t, const char *needle)
{
    abis_enroll_request req = {.segment = "city", .templates = t, .n_templates = 1};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_E_INVALID, &f->err);
    if (!strstr(f->err.message, needle))
        fail_msg("message '%s' does not say '%s'", f->err.message, needle);
}

static void test_bad_vectors_are_refused_with_reason(void **state)
{
    fx *f = *state;
    float v[DIM + 1];
    abis_template_input t = face(v, 1, 0);
    t.dim = DIM - 1;
    expect_enroll_invalid(f, &t, "template has 127 values, modality 'face' expects 128");
    t = face(v, 1, 0);
    v[5] = 0.0f / 0.0f;
    expect_enroll_invalid(f, &t, "NaN");
    t = face(v, 1, 0);
    v[9] = 1.0f / 0.0f;
    expect_enroll_invalid(f, &t, "Inf");
    memset(v, 0, sizeof v);
    expect_enroll_invalid(f, &t, "zero norm");
    t = face(v, 1, 0);
    t.modality = "iris";
    expect_enroll_invalid(f, &t, "'iris' is not declared");
    /* Nothing was enrolled by any of these. */
    abis_candidate c[1];
    assert_int_equal(identify(f, 1, 0, statutory_purpose, c, 1), 0);
}

static void test_bad_probe_is_refused_with_reason(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    float v[DIM];
    abis_template_input t = face(v, 1, 1);
    t.dim = 511;
    abis_verify_result r;
    assert_status(abis_subject_verify(f->e, NULL, &id, consent_purpose, &t, 1, &r, &f->err),
                  ABIS_E_INVALID, &f->err);
    assert_string_equal(f->err.message, "probe has 511 values, modality 'face' expects 128");
}

static void test_unknown_names_are_refused(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    abis_verify_result r;
    assert_status(verify(f, &id, 1, 1, "no.such", &r), ABIS_E_NOT_FOUND, &f->err);
    float v[DIM];
    abis_template_input t = face(v, 1, 0);
    abis_enroll_request req = {.segment = "nowhere", .templates = &t, .n_templates = 1};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_E_NOT_FOUND, &f->err);
    const char *bad[] = {"no.such"};
    req.segment = "city";
    req.consents = bad;
    req.n_consents = 1;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_E_NOT_FOUND, &f->err);
    abis_id nobody;
    memset(&nobody, 0x42, sizeof nobody);
    assert_status(verify(f, &nobody, 1, 1, consent_purpose, &r), ABIS_E_NOT_FOUND, &f->err);
    assert_status(abis_segment_add(f->e, NULL, "Bad Name", &f->err), ABIS_E_INVALID, &f->err);
    assert_status(abis_segment_add(f->e, NULL, "city", &f->err), ABIS_E_EXISTS, &f->err);
    abis_purpose_def p = {.name = "x", .basis = ABIS_BASIS_CONSENT, .target_fmr = 0};
    assert_status(abis_purpose_add(f->e, NULL, &p, &f->err), ABIS_E_INVALID, &f->err);
    abis_purpose_def s = {.name = "law", .basis = ABIS_BASIS_STATUTORY, .target_fmr = 1e-4};
    assert_status(abis_purpose_add(f->e, NULL, &s, &f->err), ABIS_E_INVALID, &f->err);
    assert_status(abis_modality_add(f->e, NULL, "voice", "vector", 0, &f->err), ABIS_E_INVALID,
                  &f->err);
    assert_status(abis_modality_add(f->e, NULL, "voice", "hologram", 192, &f->err), ABIS_E_INVALID,
                  &f->err);
}

/* ---- keys ---- */

static void test_wrong_master_key_fails_and_changes_nothing(void **state)
{
    fx *f = *state;
    enroll(f, 1, NULL, 1);
    abis_engine_close(f->e);
    f->e = NULL;
    char db[4200];
    snprintf(db, sizeof db, "%s/abis.db", f->dir);
    size_t before_len, after_len;
    unsigned char *before = abis_test_read_file(db, &before_len);
    abis_open_options o = {.data_dir = f->dir,
                           .master_key_hex =
                               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
    abis_engine *e2 = NULL;
    assert_status(abis_engine_open(&o, &e2, &f->err), ABIS_E_CRYPTO, &f->err);
    assert_null(e2);
    assert_non_null(strstr(f->err.message, "master key"));
    unsigned char *after = abis_test_read_file(db, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
    reopen(f);
}

static void test_master_key_file_with_loose_permissions_is_refused(void **state)
{
    fx *f = *state;
    abis_engine_close(f->e);
    f->e = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/master.key", f->dir);
    chmod(path, 0644);
    abis_open_options o = {.data_dir = f->dir};
    abis_engine *e2 = NULL;
    assert_status(abis_engine_open(&o, &e2, &f->err), ABIS_E_CRYPTO, &f->err);
    assert_non_null(strstr(f->err.message, "chmod 600"));
    chmod(path, 0600);
    reopen(f);
}

static void test_newer_schema_is_refused(void **state)
{
    fx *f = *state;
    abis_engine_close(f->e);
    f->e = NULL;
    char db[4200];
    snprintf(db, sizeof db, "%s/abis.db", f->dir);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    abis_open_options o = {.data_dir = f->dir};
    abis_engine *e2 = NULL;
    assert_status(abis_engine_open(&o, &e2, &f->err), ABIS_E_SCHEMA, &f->err);
    assert_non_null(strstr(f->err.message, "newer"));
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char restore[64];
    snprintf(restore, sizeof restore, "PRAGMA user_version=%d", ABIS_STORE_SCHEMA_VERSION);
    assert_int_equal(sqlite3_exec(h, restore, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    reopen(f);
}

/* ---- deletion ---- */

typedef struct sealed_ctx {
    unsigned char *blob;
    size_t len;
    abis_id tid;
} sealed_ctx;

static int grab_sealed(const abis_template_rec *r, void *ctx)
{
    sealed_ctx *s = ctx;
    s->blob = malloc(r->sealed_len);
    memcpy(s->blob, r->sealed, r->sealed_len);
    s->len = r->sealed_len;
    s->tid = r->id;
    return 1;
}

typedef struct try_keys_ctx {
    abis_store *store;
    abis_key segkey;
    const sealed_ctx *sealed;
    const abis_id *subject;
    int opened;
    int tried;
} try_keys_ctx;

/* Try to open the deleted subject's template with every data key that remains. */
static int try_key(const abis_id *owner, int64_t created_at, void *ctx)
{
    (void)created_at;
    try_keys_ctx *t = ctx;
    unsigned char wrapped[ABIS_WRAPPED_KEY_BYTES];
    size_t len;
    abis_key dk;
    if (t->store->ops->key_get(t->store, owner, wrapped, sizeof wrapped, &len, NULL) != ABIS_OK)
        return 0;
    if (abis_unseal(&t->segkey, wrapped, len, owner->bytes, 16, dk.bytes, NULL) != ABIS_OK)
        return 0;
    t->tried++;
    unsigned char ad[32], plain[DIM * 4];
    memcpy(ad, t->subject->bytes, 16);
    memcpy(ad + 16, t->sealed->tid.bytes, 16);
    if (abis_unseal(&dk, t->sealed->blob, t->sealed->len, ad, 32, plain, NULL) == ABIS_OK)
        t->opened = 1;
    return 0;
}

static void test_deletion_is_real_even_for_a_copy_of_the_store(void **state)
{
    fx *f = *state;
    enroll_population(f, 100, 105, 1);
    abis_id victim = enroll(f, 1, "C-1", 1);
    abis_engine_close(f->e); /* checkpoint the WAL so the copy is complete */
    f->e = NULL;
    char *copy = abis_test_tmpdir("copy");
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/abis.db", f->dir);
    snprintf(to, sizeof to, "%s/abis.db", copy);
    assert_int_equal(abis_test_copy_file(from, to), 0);
    snprintf(from, sizeof from, "%s/abis.db-wal", f->dir);
    snprintf(to, sizeof to, "%s/abis.db-wal", copy);
    abis_test_copy_file(from, to); /* may not exist */

    reopen(f);
    assert_status(abis_subject_delete(f->e, NULL, &victim, &f->err), ABIS_OK, &f->err);
    abis_verify_result r;
    assert_status(verify(f, &victim, 1, 1, consent_purpose, &r), ABIS_E_NOT_FOUND, &f->err);
    abis_candidate c[1];
    assert_int_equal(identify(f, 1, 1, statutory_purpose, c, 1), 0);
    abis_engine_close(f->e);
    f->e = NULL;

    /* The thief has the old data store and today's key store and master key. */
    snprintf(from, sizeof from, "%s/keys.db", f->dir);
    snprintf(to, sizeof to, "%s/keys.db", copy);
    assert_int_equal(abis_test_copy_file(from, to), 0);
    abis_store *s;
    abis_error err;
    assert_status(abis_store_sqlite_open(copy, 0, 0, &s, &err), ABIS_OK, &err);
    sealed_ctx sealed = {0};
    assert_status(s->ops->template_scan_subject(s, &victim, grab_sealed, &sealed, &err), ABIS_OK,
                  &err);
    assert_non_null(sealed.blob); /* the copy still holds the ciphertext ... */
    unsigned char buf[ABIS_WRAPPED_KEY_BYTES];
    size_t len;
    assert_status(s->ops->key_get(s, &victim, buf, sizeof buf, &len, &err), ABIS_E_NOT_FOUND,
                  &err); /* ... but its key is gone */
    abis_key master;
    assert_status(abis_master_key_load(f->dir, NULL, &master, &err), ABIS_OK, &err);
    abis_subject_rec subj;
    assert_status(s->ops->subject_get(s, &victim, &subj, &err), ABIS_OK, &err);
    try_keys_ctx t = {.store = s, .sealed = &sealed, .subject = &victim};
    abis_key_derive(&master, "abisSEGK", (uint64_t)subj.segment_id, &t.segkey);
    assert_status(s->ops->key_scan(s, try_key, &t, &err), ABIS_OK, &err);
    assert_int_equal(t.tried, 5); /* every remaining key was tried */
    assert_false(t.opened);       /* and none opens the deleted subject's template */
    abis_store_close(s);
    /* The live store files no longer hold the ciphertext either: secure_delete
     * and the WAL checkpoint overwrote it. */
    const char *files[] = {"abis.db", "abis.db-wal", "keys.db", "keys.db-wal"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(from, sizeof from, "%s/%s", f->dir, files[i]);
        assert_false(abis_test_file_contains(from, sealed.blob + ABIS_NONCE_BYTES, 32));
    }
    free(sealed.blob);
    abis_test_rmdir(copy);
    reopen(f);
    abis_subject_view *v;
    assert_status(abis_subject_show(f->e, NULL, &victim, &v, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_deletion_frees_the_external_ref_and_is_audited(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, "C-1", 1);
    assert_status(abis_subject_delete(f->e, NULL, &id, &f->err), ABIS_OK, &f->err);
    assert_status(abis_subject_delete(f->e, NULL, &id, &f->err), ABIS_E_NOT_FOUND, &f->err);
    abis_id again = enroll(f, 1, "C-1", 1); /* no duplicate: the old record is gone */
    (void)again;
    abis_audit_report rep;
    assert_status(abis_audit_verify(f->e, &rep, &f->err), ABIS_OK, &f->err);
    assert_true(rep.ok);
}

/* ---- audit ---- */

static void test_audit_chain_verifies_after_every_operation(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, NULL, 1);
    abis_verify_result r;
    verify(f, &id, 1, 1, consent_purpose, &r);
    abis_subject_lock(f->e, NULL, &id, "face", &f->err);
    verify(f, &id, 1, 1, consent_purpose, &r);
    abis_subject_delete(f->e, NULL, &id, &f->err);
    reopen(f);
    abis_audit_report rep;
    assert_status(abis_audit_verify(f->e, &rep, &f->err), ABIS_OK, &f->err);
    if (!rep.ok)
        fail_msg("audit broken: %s", rep.problem);
    assert_true(rep.entries >= 10);
    assert_true(rep.checkpoints >= 1);
    char pk[65];
    assert_status(abis_audit_public_key(f->e, pk, &f->err), ABIS_OK, &f->err);
    assert_int_equal(strlen(pk), 64);
}

static void test_audit_export_holds_no_biometric_data(void **state)
{
    fx *f = *state;
    abis_id id = enroll(f, 1, "SECRET-REF-77", 1);
    abis_verify_result r;
    verify(f, &id, 1, 1, consent_purpose, &r);
    char path[4200];
    snprintf(path, sizeof path, "%s/export.jsonl", f->dir);
    FILE *out = fopen(path, "w");
    assert_status(abis_audit_export(f->e, out, &f->err), ABIS_OK, &f->err);
    fclose(out);
    assert_false(abis_test_file_contains(path, "SECRET-REF-77", 13));
    assert_false(abis_test_file_contains(path, "vector", 6));
    assert_true(abis_test_file_contains(path, "\"verify\"", 8));
}

/* ---- calibration and fusion ---- */

#define VOICE_DIM 32
#define VOICE_SIGMA 1.4

/* Fit a calibration for a synthetic modality from 200 identities' scores. */
static char *fit_synthetic(uint64_t seed, size_t dim, double sigma)
{
    enum { N = 200 };
    float *a = malloc(N * dim * sizeof *a), *b = malloc(N * dim * sizeof *b);
    double *gen = malloc(N * sizeof *gen), *imp = malloc(N * N * sizeof *imp);
    size_t ng = 0, ni = 0;
    for (size_t i = 0; i < N; i++) {
        abis_synth_sample(seed, 10000 + i, 0, sigma, a + i * dim, dim);
        abis_synth_sample(seed, 10000 + i, 1, sigma, b + i * dim, dim);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            double v = abis_dot_scalar(a + i * dim, b + j * dim, dim);
            if (i == j)
                gen[ng++] = v;
            else
                imp[ni++] = v;
        }
    char *json = NULL;
    abis_error err;
    assert_status(abis_calibration_fit(gen, ng, imp, ni, NULL, &json, &err), ABIS_OK, &err);
    free(a);
    free(b);
    free(gen);
    free(imp);
    return json;
}

static void test_fused_verification_with_fitted_calibrations(void **state)
{
    fx *f = *state;
    assert_status(abis_modality_add(f->e, NULL, "voice", "vector", VOICE_DIM, &f->err), ABIS_OK,
                  &f->err);
    char *fj = fit_synthetic(SEED, DIM, ABIS_SYNTH_SIGMA);
    char *vj = fit_synthetic(SEED + 100, VOICE_DIM, VOICE_SIGMA);
    assert_status(abis_modality_set_calibration(f->e, NULL, "face", fj, &f->err), ABIS_OK, &f->err);
    assert_status(abis_modality_set_calibration(f->e, NULL, "voice", vj, &f->err), ABIS_OK,
                  &f->err);
    free(fj);
    free(vj);
    float fv[DIM], vv[VOICE_DIM], pf[DIM], pv[VOICE_DIM];
    abis_template_input t[2] = {
        face(fv, 1, 0), {.modality = "voice", .vector = vv, .dim = VOICE_DIM, .quality = -1}};
    abis_synth_sample(SEED + 100, 1, 0, VOICE_SIGMA, vv, VOICE_DIM);
    const char *consents[] = {consent_purpose};
    abis_enroll_request req = {
        .segment = "city", .templates = t, .n_templates = 2, .consents = consents, .n_consents = 1};
    abis_enroll_result res;
    assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_OK, &f->err);

    abis_template_input probe[2] = {
        face(pf, 1, 1), {.modality = "voice", .vector = pv, .dim = VOICE_DIM, .quality = -1}};
    abis_synth_sample(SEED + 100, 1, 1, VOICE_SIGMA, pv, VOICE_DIM);
    abis_verify_result r;
    assert_status(
        abis_subject_verify(f->e, NULL, &res.subject_id, consent_purpose, probe, 2, &r, &f->err),
        ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
    assert_true(r.score > 5); /* the fused log-likelihood ratio */
    assert_true(r.fmr < 1e-4);

    /* Someone else's face and voice: no match. */
    probe[0] = face(pf, 2, 1);
    abis_synth_sample(SEED + 100, 2, 1, VOICE_SIGMA, pv, VOICE_DIM);
    assert_status(
        abis_subject_verify(f->e, NULL, &res.subject_id, consent_purpose, probe, 2, &r, &f->err),
        ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_NO_MATCH);
    /* The fitted calibration survives a reopen. */
    reopen(f);
    probe[0] = face(pf, 1, 2);
    abis_synth_sample(SEED + 100, 1, 2, VOICE_SIGMA, pv, VOICE_DIM);
    assert_status(
        abis_subject_verify(f->e, NULL, &res.subject_id, consent_purpose, probe, 2, &r, &f->err),
        ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
}

/* Enrol persons [from, to) with a face and (when `voice`) a voice template. */
static void enroll_face_voice(fx *f, uint64_t from, uint64_t to, int voice, abis_id *ids)
{
    for (uint64_t p = from; p < to; p++) {
        float fv[DIM], vv[VOICE_DIM];
        abis_template_input t[2] = {
            face(fv, p, 0), {.modality = "voice", .vector = vv, .dim = VOICE_DIM, .quality = -1}};
        abis_synth_sample(SEED + 100, p, 0, VOICE_SIGMA, vv, VOICE_DIM);
        const char *consents[] = {consent_purpose};
        abis_enroll_request req = {.segment = "city",
                                   .templates = t,
                                   .n_templates = voice ? 2 : 1,
                                   .consents = consents,
                                   .n_consents = 1};
        abis_enroll_result res;
        assert_status(abis_subject_enroll(f->e, NULL, &req, &res, &f->err), ABIS_OK, &f->err);
        if (ids)
            ids[p - from] = res.subject_id;
    }
}

static void use_fitted_face_voice(fx *f)
{
    assert_status(abis_modality_add(f->e, NULL, "voice", "vector", VOICE_DIM, &f->err), ABIS_OK,
                  &f->err);
    char *fj = fit_synthetic(SEED, DIM, ABIS_SYNTH_SIGMA);
    char *vj = fit_synthetic(SEED + 100, VOICE_DIM, VOICE_SIGMA);
    assert_status(abis_modality_set_calibration(f->e, NULL, "face", fj, &f->err), ABIS_OK, &f->err);
    assert_status(abis_modality_set_calibration(f->e, NULL, "voice", vj, &f->err), ABIS_OK,
                  &f->err);
    free(fj);
    free(vj);
}

static size_t identify_face_voice(fx *f, uint64_t person, uint64_t sample, abis_candidate *out,
                                  size_t k)
{
    float pf[DIM], pv[VOICE_DIM];
    abis_template_input probe[2] = {
        face(pf, person, sample),
        {.modality = "voice", .vector = pv, .dim = VOICE_DIM, .quality = -1}};
    abis_synth_sample(SEED + 100, person, sample, VOICE_SIGMA, pv, VOICE_DIM);
    size_t n = 0;
    assert_status(
        abis_subject_identify(f->e, NULL, "city", consent_purpose, probe, 2, k, out, &n, &f->err),
        ABIS_OK, &f->err);
    return n;
}

static void test_fused_identification_finds_the_person(void **state)
{
    fx *f = *state;
    use_fitted_face_voice(f);
    abis_id ids[40];
    enroll_face_voice(f, 100, 140, 1, ids);
    abis_candidate c[5];
    assert_int_equal(identify_face_voice(f, 117, 1, c, 5), 1);
    assert_memory_equal(c[0].subject_id.bytes, ids[17].bytes, ABIS_ID_BYTES);
    assert_true(c[0].score > 5); /* a fused log-likelihood ratio */
    assert_true(c[0].fmr <= 1e-4);
    assert_int_equal(identify_face_voice(f, 999, 0, c, 5), 0); /* a stranger: nobody */
}

static void test_fused_identification_judges_missing_or_locked_modality_on_the_rest(void **state)
{
    fx *f = *state;
    use_fitted_face_voice(f);
    enroll_face_voice(f, 100, 130, 1, NULL);
    abis_id face_only, locked;
    enroll_face_voice(f, 1, 2, 0, &face_only); /* has no voice template */
    enroll_face_voice(f, 2, 3, 1, &locked);
    assert_status(abis_subject_lock(f->e, NULL, &locked, "voice", &f->err), ABIS_OK, &f->err);
    abis_candidate c[3];
    assert_int_equal(identify_face_voice(f, 1, 1, c, 3), 1);
    assert_memory_equal(c[0].subject_id.bytes, face_only.bytes, ABIS_ID_BYTES);
    assert_int_equal(identify_face_voice(f, 2, 1, c, 3), 1);
    assert_memory_equal(c[0].subject_id.bytes, locked.bytes, ABIS_ID_BYTES);
    /* Locking the face too leaves nothing to judge them by. */
    assert_status(abis_subject_lock(f->e, NULL, &locked, "face", &f->err), ABIS_OK, &f->err);
    assert_int_equal(identify_face_voice(f, 2, 1, c, 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_verify_genuine_matches),
        T(test_verify_impostor_does_not_match),
        T(test_verify_refused_without_consent),
        T(test_verify_refused_after_consent_withdrawn),
        T(test_statutory_verify_works_without_consent_and_is_shown),
        T(test_consent_cannot_be_given_for_statutory_purpose),
        T(test_identify_finds_the_person),
        T(test_identify_open_set_returns_nothing_for_stranger),
        T(test_identify_filters_subjects_without_consent),
        T(test_identify_candidates_see_it_in_their_history),
        T(test_identify_state_survives_reopen),
        T(test_lock_refuses_verify_and_hides_from_identify),
        T(test_lock_all_modalities),
        T(test_refusals_are_audited),
        T(test_dedup_refuses_second_enrolment_of_same_person),
        T(test_dedup_lets_different_people_enrol),
        T(test_external_ref_unique_per_segment),
        T(test_template_replace_takes_effect),
        T(test_template_add_refuses_another_persons_face),
        T(test_bad_vectors_are_refused_with_reason),
        T(test_bad_probe_is_refused_with_reason),
        T(test_unknown_names_are_refused),
        T(test_wrong_master_key_fails_and_changes_nothing),
        T(test_master_key_file_with_loose_permissions_is_refused),
        T(test_newer_schema_is_refused),
        T(test_deletion_is_real_even_for_a_copy_of_the_store),
        T(test_deletion_frees_the_external_ref_and_is_audited),
        T(test_audit_chain_verifies_after_every_operation),
        T(test_audit_export_holds_no_biometric_data),
        T(test_fused_verification_with_fitted_calibrations),
        T(test_fused_identification_finds_the_person),
        T(test_fused_identification_judges_missing_or_locked_modality_on_the_rest),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
