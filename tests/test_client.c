/*
 * test_client.c: relying parties in the engine (abis/client.h): API keys
 * and their hashes, authentication and its audit, authorisation of
 * operations, segments, purposes and rights, pseudonymous subject ids,
 * "absent" and "not yours" answering alike, score bands, idempotent writes,
 * and clients changed by another process.
 */
#include <stdlib.h>
#include <string.h>

#include "abis/client.h"
#include "core/engine_internal.h"
#include "crypto/crypto.h"
#include "store/store.h"
#include "testutil.h"

#define DIM 64
#define SEED 11

typedef struct fx {
    char *dir;
    abis_engine *e;
    abis_error err;
    char bank_key[ABIS_API_KEY_LEN + 1];   /* enroll, templates, verify, identify in city */
    char gate_key[ABIS_API_KEY_LEN + 1];   /* verify, identify in city, raw scores */
    char portal_key[ABIS_API_KEY_LEN + 1]; /* subject management in city */
    char other_key[ABIS_API_KEY_LEN + 1];  /* everything in the segment "town" */
} fx;

static const char *consent_purpose = "bank.remote-id";
static const char *fare_purpose = "transit.fare";

static void add_client(fx *f, const char *name, const char *segment, uint32_t ops, uint32_t rights,
                       const char *const *purposes, size_t n_purposes,
                       char key[ABIS_API_KEY_LEN + 1])
{
    abis_client_def d = {.name = name,
                         .segments = &segment,
                         .n_segments = 1,
                         .purposes = purposes,
                         .n_purposes = n_purposes,
                         .operations = ops,
                         .rights = rights};
    assert_status(abis_client_add(f->e, NULL, &d, key, &f->err), ABIS_OK, &f->err);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = abis_test_tmpdir("client");
    unsetenv("ABIS_MASTER_KEY");
    assert_status(abis_store_init(f->dir, &f->err), ABIS_OK, &f->err);
    abis_open_options o = {.data_dir = f->dir, .actor = "test"};
    assert_status(abis_engine_open(&o, &f->e, &f->err), ABIS_OK, &f->err);
    assert_status(abis_segment_add(f->e, NULL, "city", &f->err), ABIS_OK, &f->err);
    assert_status(abis_segment_add(f->e, NULL, "town", &f->err), ABIS_OK, &f->err);
    abis_purpose_def bank = {
        .name = consent_purpose, .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
    abis_purpose_def fare = {.name = fare_purpose, .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-3};
    assert_status(abis_purpose_add(f->e, NULL, &bank, &f->err), ABIS_OK, &f->err);
    assert_status(abis_purpose_add(f->e, NULL, &fare, &f->err), ABIS_OK, &f->err);
    assert_status(abis_modality_add(f->e, NULL, "face", "vector", DIM, &f->err), ABIS_OK, &f->err);
    const char *both[] = {consent_purpose, fare_purpose};
    add_client(f, "bank", "city", ABIS_CLIENT_OPS_ALL, 0, both, 1, f->bank_key);
    add_client(f, "gate", "city", ABIS_CLIENT_OP_VERIFY | ABIS_CLIENT_OP_IDENTIFY,
               ABIS_CLIENT_RIGHT_RAW_SCORES, both, 2, f->gate_key);
    add_client(f, "portal", "city", 0, ABIS_CLIENT_RIGHT_SUBJECT_MANAGEMENT, both, 2,
               f->portal_key);
    add_client(f, "other", "town", ABIS_CLIENT_OPS_ALL, ABIS_CLIENT_RIGHTS_ALL, both, 2,
               f->other_key);
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

static abis_client *auth(fx *f, const char *key)
{
    abis_client *c = NULL;
    assert_status(abis_client_authenticate(f->e, key, NULL, &c, &f->err), ABIS_OK, &f->err);
    return c;
}

static abis_template_input face(float *buf, uint64_t person, uint64_t sample)
{
    abis_synth_sample(SEED, person, sample, ABIS_SYNTH_SIGMA, buf, DIM);
    abis_template_input t = {.modality = "face", .vector = buf, .dim = DIM, .quality = -1};
    return t;
}

/* Enrol person `person` through the client `c` in `segment`; returns its token. */
static abis_id enrol_as(fx *f, const abis_client *c, const char *segment, uint64_t person)
{
    float v[DIM];
    abis_template_input t = face(v, person, 0);
    const char *consents[] = {consent_purpose};
    abis_enroll_request req = {.segment = segment,
                               .templates = &t,
                               .n_templates = 1,
                               .consents = consents,
                               .n_consents = 1};
    abis_client_result r;
    assert_status(abis_client_enroll(f->e, c, NULL, &req, &r, &f->err), ABIS_OK, &f->err);
    return r.subject;
}

static abis_status verify_as(fx *f, const abis_client *c, const abis_id *token, uint64_t person,
                             const char *purpose, abis_verify_result *r)
{
    float v[DIM];
    abis_template_input t = face(v, person, 1);
    return abis_client_verify(f->e, c, token, purpose, &t, 1, r, &f->err);
}

/* Identify sample 1 of `person` through client `c` in "city"; how many candidates. */
static size_t identify_as(fx *f, const abis_client *c, uint64_t person, abis_candidate *cand,
                          size_t k)
{
    float v[DIM];
    abis_template_input t = face(v, person, 1);
    size_t n = 0;
    assert_status(
        abis_client_identify(f->e, c, "city", consent_purpose, &t, 1, k, cand, &n, &f->err),
        ABIS_OK, &f->err);
    return n;
}

/* How many audit entries have `needle` in their JSON line. */
static int audit_count(fx *f, const char *needle)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/audit.jsonl", f->dir);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_status(abis_audit_export(f->e, out, &f->err), ABIS_OK, &f->err);
    fclose(out);
    char *text = abis_test_slurp(path);
    int n = 0;
    for (char *p = text; (p = strstr(p, needle)); p++)
        n++;
    free(text);
    return n;
}

static abis_id translate_via(fx *f, abis_id bank_token, const abis_client *c);

/* ---- keys ---- */

static void test_api_key_is_printed_once_and_stored_only_as_a_keyed_hash(void **state)
{
    fx *f = *state;
    assert_int_equal(strlen(f->bank_key), ABIS_API_KEY_LEN);
    assert_memory_equal(f->bank_key, "abis_", 5);
    abis_engine_close(f->e);
    f->e = NULL;
    const char *secret = f->bank_key + 5 + ABIS_CLIENT_KEY_ID_HEX + 1;
    char path[4200];
    const char *files[] = {"abis.db", "abis.db-wal", "keys.db", "keys.db-wal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, files[i]);
        assert_false(abis_test_file_contains(path, f->bank_key, strlen(f->bank_key)));
        assert_false(abis_test_file_contains(path, secret, strlen(secret)));
    }
    abis_open_options o = {.data_dir = f->dir, .actor = "test"};
    assert_status(abis_engine_open(&o, &f->e, &f->err), ABIS_OK, &f->err);
    abis_client_free(auth(f, f->bank_key));
}

static void test_unknown_malformed_and_revoked_keys_are_refused_and_audited(void **state)
{
    fx *f = *state;
    abis_client *c = NULL;
    char wrong[ABIS_API_KEY_LEN + 1];
    memcpy(wrong, f->bank_key, sizeof wrong);
    wrong[ABIS_API_KEY_LEN - 1] = wrong[ABIS_API_KEY_LEN - 1] == '0' ? '1' : '0';
    assert_status(abis_client_authenticate(f->e, wrong, NULL, &c, &f->err), ABIS_E_UNAUTHENTICATED,
                  &f->err);
    assert_null(c);
    assert_non_null(strstr(f->err.message, "unknown API key"));
    assert_status(abis_client_authenticate(f->e, "Bearer nonsense", NULL, &c, &f->err),
                  ABIS_E_UNAUTHENTICATED, &f->err);
    assert_non_null(strstr(f->err.message, "malformed"));
    assert_status(abis_client_authenticate(f->e, NULL, NULL, &c, &f->err), ABIS_E_UNAUTHENTICATED,
                  &f->err);
    assert_status(abis_client_revoke(f->e, NULL, "bank", &f->err), ABIS_OK, &f->err);
    assert_status(abis_client_authenticate(f->e, f->bank_key, NULL, &c, &f->err),
                  ABIS_E_UNAUTHENTICATED, &f->err);
    assert_non_null(strstr(f->err.message, "revoked"));
    assert_int_equal(audit_count(f, "\"operation\":\"authenticate\""), 4);
    assert_int_equal(audit_count(f, "\"actor\":\"client:bank\",\"operation\":\"authenticate\""), 1);
    /* Nothing of the keys reaches the audit log. */
    assert_int_equal(audit_count(f, f->bank_key + 5 + ABIS_CLIENT_KEY_ID_HEX + 1), 0);
}

static void test_rotation_replaces_the_key_and_keeps_pseudonyms(void **state)
{
    fx *f = *state;
    abis_client *c = auth(f, f->bank_key);
    abis_id before = enrol_as(f, c, "city", 1);
    abis_client_free(c);
    char fresh[ABIS_API_KEY_LEN + 1];
    assert_status(abis_client_rotate(f->e, NULL, "bank", fresh, &f->err), ABIS_OK, &f->err);
    assert_string_not_equal(fresh, f->bank_key);
    assert_status(abis_client_authenticate(f->e, f->bank_key, NULL, &c, &f->err),
                  ABIS_E_UNAUTHENTICATED, &f->err);
    c = auth(f, fresh);
    abis_candidate cand[3];
    assert_int_equal(identify_as(f, c, 1, cand, 3), 1);
    assert_memory_equal(cand[0].subject_id.bytes, before.bytes, ABIS_ID_BYTES);
    abis_client_free(c);
}

static void test_certificate_bound_client_needs_its_certificate(void **state)
{
    fx *f = *state;
    unsigned char fp[32], other[32];
    abis_sha256("certificate", 11, fp);
    abis_sha256("another one", 11, other);
    const char *seg = "city";
    abis_client_def d = {.name = "mtls",
                         .segments = &seg,
                         .n_segments = 1,
                         .operations = ABIS_CLIENT_OP_VERIFY,
                         .cert_sha256 = fp};
    char key[ABIS_API_KEY_LEN + 1];
    assert_status(abis_client_add(f->e, NULL, &d, key, &f->err), ABIS_OK, &f->err);
    abis_client *c = NULL;
    assert_status(abis_client_authenticate(f->e, key, NULL, &c, &f->err), ABIS_E_UNAUTHENTICATED,
                  &f->err);
    assert_status(abis_client_authenticate(f->e, key, other, &c, &f->err), ABIS_E_UNAUTHENTICATED,
                  &f->err);
    assert_status(abis_client_authenticate(f->e, key, fp, &c, &f->err), ABIS_OK, &f->err);
    abis_client_free(c);
}

static void test_client_changes_by_another_process_are_seen(void **state)
{
    fx *f = *state;
    abis_engine *cli = NULL;
    abis_open_options o = {.data_dir = f->dir, .actor = "operator"};
    assert_status(abis_engine_open(&o, &cli, &f->err), ABIS_OK, &f->err);
    const char *seg = "city";
    abis_client_def d = {
        .name = "late", .segments = &seg, .n_segments = 1, .operations = ABIS_CLIENT_OP_VERIFY};
    char key[ABIS_API_KEY_LEN + 1];
    assert_status(abis_client_add(cli, NULL, &d, key, &f->err), ABIS_OK, &f->err);
    abis_client_free(auth(f, key));
    assert_status(abis_client_revoke(cli, NULL, "late", &f->err), ABIS_OK, &f->err);
    abis_client *c = NULL;
    assert_status(abis_client_authenticate(f->e, key, NULL, &c, &f->err), ABIS_E_UNAUTHENTICATED,
                  &f->err);
    abis_engine_close(cli);
}

static void test_registry_changes_by_another_process_are_seen(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key);
    abis_id token = enrol_as(f, bank, "city", 1);
    abis_client_free(bank);
    /* The operator adds a purpose, a modality and a client using both from
     * another process while this engine (a running abisd) is open. */
    abis_engine *cli = NULL;
    abis_open_options o = {.data_dir = f->dir, .actor = "operator"};
    assert_status(abis_engine_open(&o, &cli, &f->err), ABIS_OK, &f->err);
    abis_purpose_def p = {.name = "late.purpose",
                          .basis = ABIS_BASIS_STATUTORY,
                          .target_fmr = 1e-4,
                          .legal_ref = "Late Act s.1"};
    assert_status(abis_purpose_add(cli, NULL, &p, &f->err), ABIS_OK, &f->err);
    assert_status(abis_modality_add(cli, NULL, "voice", "vector", 16, &f->err), ABIS_OK, &f->err);
    const char *seg = "city", *pur = "late.purpose";
    abis_client_def d = {.name = "late",
                         .segments = &seg,
                         .n_segments = 1,
                         .purposes = &pur,
                         .n_purposes = 1,
                         .operations = ABIS_CLIENT_OP_VERIFY | ABIS_CLIENT_OP_IDENTIFY};
    char key[ABIS_API_KEY_LEN + 1];
    assert_status(abis_client_add(cli, NULL, &d, key, &f->err), ABIS_OK, &f->err);
    abis_engine_close(cli);
    /* This engine knows them at its next authentication. */
    abis_client *late = auth(f, key);
    abis_id mine = translate_via(f, token, late);
    abis_verify_result r;
    assert_status(verify_as(f, late, &mine, 1, "late.purpose", &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
    float v[16] = {1, 2, 3};
    abis_template_input t = {.modality = "voice", .vector = v, .dim = 16, .quality = -1};
    abis_candidate c[2];
    size_t n = 9;
    assert_status(
        abis_client_identify(f->e, late, "city", "late.purpose", &t, 1, 2, c, &n, &f->err), ABIS_OK,
        &f->err);
    assert_int_equal(n, 0);
    abis_client_free(late);
}

static void test_add_refuses_unknown_names_and_a_client_allowed_nothing(void **state)
{
    fx *f = *state;
    const char *seg = "nowhere", *city = "city", *pur = "no.such";
    char key[ABIS_API_KEY_LEN + 1];
    abis_client_def d = {
        .name = "x", .segments = &seg, .n_segments = 1, .operations = ABIS_CLIENT_OP_VERIFY};
    assert_status(abis_client_add(f->e, NULL, &d, key, &f->err), ABIS_E_INVALID, &f->err);
    d.segments = &city;
    d.purposes = &pur;
    d.n_purposes = 1;
    assert_status(abis_client_add(f->e, NULL, &d, key, &f->err), ABIS_E_INVALID, &f->err);
    d.n_purposes = 0;
    d.operations = 0;
    assert_status(abis_client_add(f->e, NULL, &d, key, &f->err), ABIS_E_INVALID, &f->err);
    d.operations = ABIS_CLIENT_OP_VERIFY;
    d.name = "bank";
    assert_status(abis_client_add(f->e, NULL, &d, key, &f->err), ABIS_E_EXISTS, &f->err);
    uint32_t bits;
    assert_status(abis_client_flags_parse("verify, identify", 0, &bits, &f->err), ABIS_OK, &f->err);
    assert_int_equal(bits, ABIS_CLIENT_OP_VERIFY | ABIS_CLIENT_OP_IDENTIFY);
    assert_status(abis_client_flags_parse("verify,fly", 0, &bits, &f->err), ABIS_E_INVALID,
                  &f->err);
    assert_non_null(strstr(f->err.message, "'fly'"));
}

/* ---- authorisation ---- */

static void test_each_kind_of_refusal_is_forbidden_and_audited(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key), *gate = auth(f, f->gate_key);
    abis_id token = enrol_as(f, bank, "city", 1);
    abis_verify_result r;
    /* operation: the gate may not enrol */
    float v[DIM];
    abis_template_input t = face(v, 2, 0);
    abis_enroll_request req = {.segment = "city", .templates = &t, .n_templates = 1};
    assert_status(abis_client_enroll(f->e, gate, NULL, &req, NULL, &f->err), ABIS_E_FORBIDDEN,
                  &f->err);
    assert_non_null(strstr(f->err.message, "may not enroll"));
    /* segment: the bank may not enrol into "town" */
    req.segment = "town";
    assert_status(abis_client_enroll(f->e, bank, NULL, &req, NULL, &f->err), ABIS_E_FORBIDDEN,
                  &f->err);
    assert_non_null(strstr(f->err.message, "segment 'town'"));
    /* purpose: the bank may not act for the fare purpose */
    assert_status(verify_as(f, bank, &token, 1, fare_purpose, &r), ABIS_E_FORBIDDEN, &f->err);
    assert_non_null(strstr(f->err.message, "purpose 'transit.fare'"));
    /* an unknown purpose is bad input, not a refusal */
    assert_status(verify_as(f, bank, &token, 1, "no.such", &r), ABIS_E_INVALID, &f->err);
    /* right: the bank may not manage subjects */
    abis_subject_view *view = NULL;
    assert_status(abis_client_subject_show(f->e, bank, &token, &view, &f->err), ABIS_E_FORBIDDEN,
                  &f->err);
    assert_non_null(strstr(f->err.message, "subject_management"));
    assert_int_equal(audit_count(f, "\"outcome\":\"forbidden\""), 4);
    abis_client_free(bank);
    abis_client_free(gate);
}

static void test_pseudonyms_differ_between_clients_and_map_back(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key), *gate = auth(f, f->gate_key);
    abis_id bank_token = enrol_as(f, bank, "city", 1);
    abis_candidate a[2], b[2];
    assert_int_equal(identify_as(f, bank, 1, a, 2), 1);
    assert_int_equal(identify_as(f, gate, 1, b, 2), 1);
    assert_memory_equal(a[0].subject_id.bytes, bank_token.bytes, ABIS_ID_BYTES);
    assert_memory_not_equal(a[0].subject_id.bytes, b[0].subject_id.bytes, ABIS_ID_BYTES);
    assert_string_equal(a[0].external_ref, "");
    /* Each client's own token works for it, and not for the other. */
    abis_verify_result r;
    assert_status(verify_as(f, gate, &b[0].subject_id, 1, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
    assert_status(verify_as(f, gate, &bank_token, 1, consent_purpose, &r), ABIS_E_NOT_FOUND,
                  &f->err);
    abis_client_free(bank);
    abis_client_free(gate);
}

/* Client c's pseudonym of the subject behind client `from`'s token. */
static abis_id translate(const abis_client *from, const abis_client *c, const abis_id *token)
{
    abis_id subject, out;
    engine_client_token(from, token, &subject, 1);
    engine_client_token(c, &subject, &out, 0);
    return out;
}

/* Client c's pseudonym of the subject the bank knows as `bank_token`. */
static abis_id translate_via(fx *f, abis_id bank_token, const abis_client *c)
{
    abis_client *bank = auth(f, f->bank_key);
    abis_id out = translate(bank, c, &bank_token);
    abis_client_free(bank);
    return out;
}

static void test_a_subject_not_yours_answers_like_an_absent_one(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key), *other = auth(f, f->other_key);
    abis_id in_town = enrol_as(f, other, "town", 1);
    abis_id not_yours = translate(other, bank, &in_town), absent;
    abis_random_bytes(absent.bytes, ABIS_ID_BYTES);
    abis_verify_result r;
    abis_error e1, e2;
    float v[DIM];
    abis_template_input t = face(v, 1, 1);
    abis_status s1 = abis_client_verify(f->e, bank, &absent, consent_purpose, &t, 1, &r, &e1);
    abis_status s2 = abis_client_verify(f->e, bank, &not_yours, consent_purpose, &t, 1, &r, &e2);
    assert_int_equal(s1, ABIS_E_NOT_FOUND);
    assert_int_equal(s2, ABIS_E_NOT_FOUND);
    assert_string_equal(e1.message, e2.message);
    /* The same for a template added to it. */
    s1 = abis_client_template_add(f->e, bank, NULL, &absent, &t, 0, NULL, &e1);
    s2 = abis_client_template_add(f->e, bank, NULL, &not_yours, &t, 0, NULL, &e2);
    assert_int_equal(s1, ABIS_E_NOT_FOUND);
    assert_int_equal(s2, ABIS_E_NOT_FOUND);
    assert_string_equal(e1.message, e2.message);
    /* The owner still reaches it. */
    assert_status(verify_as(f, other, &in_town, 1, consent_purpose, &r), ABIS_OK, &f->err);
    abis_client_free(bank);
    abis_client_free(other);
}

static void test_scores_only_with_the_raw_scores_right(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key), *gate = auth(f, f->gate_key);
    assert_false(abis_client_sees_scores(bank));
    assert_true(abis_client_sees_scores(gate));
    abis_id token = enrol_as(f, bank, "city", 1);
    abis_verify_result r;
    assert_status(verify_as(f, bank, &token, 1, consent_purpose, &r), ABIS_OK, &f->err);
    assert_int_equal(r.decision, ABIS_MATCH);
    assert_int_equal(r.confidence, ABIS_CONFIDENCE_HIGH);
    assert_true(r.score == 0 && r.fmr == 0 && r.threshold == 0);
    abis_candidate cand[2];
    assert_int_equal(identify_as(f, bank, 1, cand, 2), 1);
    assert_true(cand[0].score == 0 && cand[0].fmr == 0);
    assert_int_equal(identify_as(f, gate, 1, cand, 2), 1);
    assert_true(cand[0].score > 0.5 && cand[0].fmr > 0);
    abis_client_free(bank);
    abis_client_free(gate);
}

/* ---- the person's own view through a portal ---- */

static int has_history(const abis_subject_view *v, const char *actor, const char *operation)
{
    for (size_t i = 0; i < v->n_history; i++)
        if (!strcmp(v->history[i].actor, actor) && !strcmp(v->history[i].operation, operation))
            return 1;
    return 0;
}

static void test_portal_acts_for_the_person(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key), *portal = auth(f, f->portal_key);
    abis_id bank_token = enrol_as(f, bank, "city", 1);
    abis_id mine = translate(bank, portal, &bank_token);
    abis_subject_view *view = NULL;
    /* The bank's token means nothing to the portal. */
    assert_status(abis_client_subject_show(f->e, portal, &bank_token, &view, &f->err),
                  ABIS_E_NOT_FOUND, &f->err);
    assert_status(abis_client_subject_show(f->e, portal, &mine, &view, &f->err), ABIS_OK, &f->err);
    assert_memory_equal(view->subject_id.bytes, mine.bytes, ABIS_ID_BYTES);
    assert_string_equal(view->external_ref, "");
    assert_int_equal(view->n_templates, 1);
    assert_true(has_history(view, "client:bank", "enroll"));
    abis_subject_view_free(view);
    /* Consent withdrawal: the bank's verification is refused from now on. */
    abis_client_result r;
    assert_status(
        abis_client_consent_set(f->e, portal, NULL, &mine, consent_purpose, 0, &r, &f->err),
        ABIS_OK, &f->err);
    abis_verify_result vr;
    assert_status(verify_as(f, bank, &bank_token, 1, consent_purpose, &vr), ABIS_E_NO_CONSENT,
                  &f->err);
    assert_status(
        abis_client_consent_set(f->e, portal, NULL, &mine, consent_purpose, 1, &r, &f->err),
        ABIS_OK, &f->err);
    /* A lock, then its removal. */
    assert_status(abis_client_lock_set(f->e, portal, NULL, &mine, NULL, 1, &r, &f->err), ABIS_OK,
                  &f->err);
    assert_status(verify_as(f, bank, &bank_token, 1, consent_purpose, &vr), ABIS_E_LOCKED, &f->err);
    assert_status(abis_client_lock_set(f->e, portal, NULL, &mine, "nose", 1, &r, &f->err),
                  ABIS_E_INVALID, &f->err);
    assert_status(abis_client_lock_set(f->e, portal, NULL, &mine, NULL, 0, &r, &f->err), ABIS_OK,
                  &f->err);
    assert_status(verify_as(f, bank, &bank_token, 1, consent_purpose, &vr), ABIS_OK, &f->err);
    /* The history shows the bank's verifications and the portal's changes. */
    assert_status(abis_client_subject_show(f->e, portal, &mine, &view, &f->err), ABIS_OK, &f->err);
    assert_true(has_history(view, "client:bank", "verify"));
    assert_true(has_history(view, "client:portal", "consent.withdraw"));
    assert_true(has_history(view, "client:portal", "lock"));
    abis_subject_view_free(view);
    /* Deletion for real: gone for everyone. */
    assert_status(abis_client_delete(f->e, portal, NULL, &mine, &r, &f->err), ABIS_OK, &f->err);
    assert_status(verify_as(f, bank, &bank_token, 1, consent_purpose, &vr), ABIS_E_NOT_FOUND,
                  &f->err);
    abis_client_free(bank);
    abis_client_free(portal);
}

/* ---- idempotency ---- */

static void test_retried_enrolment_with_the_same_key_returns_the_first_result(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key);
    float v[DIM];
    abis_template_input t = face(v, 5, 0);
    const char *consents[] = {consent_purpose};
    abis_enroll_request req = {.segment = "city",
                               .templates = &t,
                               .n_templates = 1,
                               .consents = consents,
                               .n_consents = 1};
    abis_idempotency idem = {.key = "enrol-5"};
    memset(idem.request_hash, 7, sizeof idem.request_hash);
    abis_client_result r1, r2;
    assert_status(abis_client_enroll(f->e, bank, &idem, &req, &r1, &f->err), ABIS_OK, &f->err);
    assert_false(r1.replayed);
    assert_status(abis_client_enroll(f->e, bank, &idem, &req, &r2, &f->err), ABIS_OK, &f->err);
    assert_true(r2.replayed);
    assert_memory_equal(r1.subject.bytes, r2.subject.bytes, ABIS_ID_BYTES);
    /* The same key with another request is a conflict, and writes nothing. */
    memset(idem.request_hash, 8, sizeof idem.request_hash);
    assert_status(abis_client_enroll(f->e, bank, &idem, &req, &r2, &f->err), ABIS_E_CONFLICT,
                  &f->err);
    /* Without a key the retry is deduplicated instead. */
    assert_status(abis_client_enroll(f->e, bank, NULL, &req, &r2, &f->err), ABIS_E_DUPLICATE,
                  &f->err);
    assert_memory_equal(r2.duplicate_of.bytes, r1.subject.bytes, ABIS_ID_BYTES);
    char hex[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&r1.subject, hex);
    assert_non_null(strstr(f->err.message, hex));
    abis_client_free(bank);
}

static void test_idempotency_keys_are_per_client_and_checked(void **state)
{
    fx *f = *state;
    abis_client *bank = auth(f, f->bank_key), *other = auth(f, f->other_key);
    abis_id token = enrol_as(f, other, "town", 1);
    abis_idempotency idem = {.key = "same-key"};
    abis_client_result r;
    assert_status(abis_client_lock_set(f->e, other, &idem, &token, "face", 1, &r, &f->err), ABIS_OK,
                  &f->err);
    assert_false(r.replayed);
    assert_status(abis_client_lock_set(f->e, other, &idem, &token, "face", 1, &r, &f->err), ABIS_OK,
                  &f->err);
    assert_true(r.replayed);
    /* Another client's identical key is its own. */
    float v[DIM];
    abis_template_input t = face(v, 9, 0);
    abis_enroll_request req = {.segment = "city", .templates = &t, .n_templates = 1};
    assert_status(abis_client_enroll(f->e, bank, &idem, &req, &r, &f->err), ABIS_OK, &f->err);
    assert_false(r.replayed);
    idem.key = "has space";
    assert_status(abis_client_lock_set(f->e, other, &idem, &token, "face", 0, &r, &f->err),
                  ABIS_E_INVALID, &f->err);
    abis_client_free(bank);
    abis_client_free(other);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_api_key_is_printed_once_and_stored_only_as_a_keyed_hash),
        T(test_unknown_malformed_and_revoked_keys_are_refused_and_audited),
        T(test_rotation_replaces_the_key_and_keeps_pseudonyms),
        T(test_certificate_bound_client_needs_its_certificate),
        T(test_client_changes_by_another_process_are_seen),
        T(test_registry_changes_by_another_process_are_seen),
        T(test_add_refuses_unknown_names_and_a_client_allowed_nothing),
        T(test_each_kind_of_refusal_is_forbidden_and_audited),
        T(test_pseudonyms_differ_between_clients_and_map_back),
        T(test_a_subject_not_yours_answers_like_an_absent_one),
        T(test_scores_only_with_the_raw_scores_right),
        T(test_portal_acts_for_the_person),
        T(test_retried_enrolment_with_the_same_key_returns_the_first_result),
        T(test_idempotency_keys_are_per_client_and_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
