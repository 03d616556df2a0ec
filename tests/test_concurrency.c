/*
 * test_concurrency.c: one engine shared by many threads.  Verification and
 * identification do not wait for writers (they run while a write holds the
 * writers' lock); readers and writers running together get only the
 * answers the state allows; audit entries of reads are grouped into shared
 * commits and the chain verifies afterwards.  Meant to run under
 * AddressSanitizer too (make test-asan).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/engine_internal.h"
#include "testutil.h"

#define DIM 64
#define SEED 3
#define POPULATION 200
#define READERS 4
#define READS 150

typedef struct fx {
    char *dir;
    abis_engine *e;
    abis_id ids[POPULATION];
} fx;

static const char *purpose = "bank.remote-id";

static abis_template_input face(float *buf, uint64_t person, uint64_t sample)
{
    abis_synth_sample(SEED, person, sample, ABIS_SYNTH_SIGMA, buf, DIM);
    abis_template_input t = {.modality = "face", .vector = buf, .dim = DIM, .quality = -1};
    return t;
}

static abis_status enrol(abis_engine *e, uint64_t person, abis_id *id, abis_error *err)
{
    float v[DIM];
    abis_template_input t = face(v, person, 0);
    const char *consents[] = {purpose};
    abis_enroll_request req = {.segment = "city",
                               .templates = &t,
                               .n_templates = 1,
                               .consents = consents,
                               .n_consents = 1};
    abis_enroll_result r;
    abis_status st = abis_subject_enroll(e, NULL, &req, &r, err);
    if (st == ABIS_OK)
        *id = r.subject_id;
    return st;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    abis_error err = {0};
    f->dir = abis_test_tmpdir("concurrency");
    unsetenv("ABIS_MASTER_KEY");
    assert_status(abis_store_init(f->dir, &err), ABIS_OK, &err);
    abis_open_options o = {.data_dir = f->dir, .actor = "test"};
    assert_status(abis_engine_open(&o, &f->e, &err), ABIS_OK, &err);
    assert_status(abis_segment_add(f->e, NULL, "city", &err), ABIS_OK, &err);
    abis_purpose_def p = {.name = purpose, .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
    assert_status(abis_purpose_add(f->e, NULL, &p, &err), ABIS_OK, &err);
    assert_status(abis_modality_add(f->e, NULL, "face", "vector", DIM, &err), ABIS_OK, &err);
    for (uint64_t i = 0; i < POPULATION; i++)
        assert_status(enrol(f->e, i, &f->ids[i], &err), ABIS_OK, &err);
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

/* ---- reads do not wait for writers ---------------------------------------------- */

typedef struct read_job {
    fx *f;
    int done;
    abis_status verify_st, identify_st;
} read_job;

static void *one_verify_and_identify(void *p)
{
    read_job *j = p;
    abis_error err;
    float v[DIM];
    abis_template_input t = face(v, 7, 1);
    abis_verify_result r;
    j->verify_st = abis_subject_verify(j->f->e, NULL, &j->f->ids[7], purpose, &t, 1, &r, &err);
    abis_candidate c[3];
    size_t n;
    j->identify_st = abis_subject_identify(j->f->e, NULL, "city", purpose, &t, 1, 3, c, &n, &err);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_reads_run_while_a_writer_holds_the_write_lock(void **state)
{
    fx *f = *state;
    /* Stand in for a long write (an enrolment's deduplication, its commit):
     * hold the writers' lock and see a verify and an identify complete. */
    pthread_mutex_lock(&f->e->write_mu);
    read_job j = {f, 0, ABIS_E_INTERNAL, ABIS_E_INTERNAL};
    pthread_t th;
    pthread_create(&th, NULL, one_verify_and_identify, &j);
    int done = 0;
    for (int i = 0; i < 1000 && !done; i++) { /* up to 10 s */
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
        done = __atomic_load_n(&j.done, __ATOMIC_ACQUIRE);
    }
    pthread_mutex_unlock(&f->e->write_mu);
    pthread_join(th, NULL);
    assert_true(done);
    assert_int_equal(j.verify_st, ABIS_OK);
    assert_int_equal(j.identify_st, ABIS_OK);
}

/* ---- readers and a writer together ------------------------------------------------ */

typedef struct reader {
    fx *f;
    unsigned seed;
    int bad;
    char problem[ABIS_ERROR_MESSAGE_MAX + 64];
} reader;

static void *read_loop(void *p)
{
    reader *r = p;
    abis_error err;
    for (int i = 0; i < READS && !r->bad; i++) {
        uint64_t who = (uint64_t)(rand_r(&r->seed) % POPULATION);
        float v[DIM];
        abis_template_input t = face(v, who, 1 + (uint64_t)i);
        abis_status st;
        if (i % 3 == 0) {
            abis_candidate c[3];
            size_t n = 0;
            st = abis_subject_identify(r->f->e, NULL, "city", purpose, &t, 1, 3, c, &n, &err);
        } else {
            abis_verify_result res;
            st = abis_subject_verify(r->f->e, NULL, &r->f->ids[who], purpose, &t, 1, &res, &err);
            /* The writer changes only the upper half: the lower half must match. */
            if (st == ABIS_OK && who < POPULATION / 2 && res.decision != ABIS_MATCH) {
                r->bad = 1;
                snprintf(r->problem, sizeof r->problem, "person %llu did not match",
                         (unsigned long long)who);
            }
        }
        if (st != ABIS_OK && st != ABIS_E_NO_CONSENT && st != ABIS_E_LOCKED &&
            st != ABIS_E_NOT_FOUND) {
            r->bad = 1;
            snprintf(r->problem, sizeof r->problem, "%s: %s", abis_status_name(st), err.message);
        }
        if (st != ABIS_OK && who < POPULATION / 2) {
            r->bad = 1;
            snprintf(r->problem, sizeof r->problem, "untouched person %llu refused: %s",
                     (unsigned long long)who, err.message);
        }
    }
    return NULL;
}

static void test_readers_and_a_writer_together(void **state)
{
    fx *f = *state;
    uint64_t b0, e0;
    abis_audit_stats(f->e, &b0, &e0);
    pthread_t th[READERS];
    reader rd[READERS];
    for (int i = 0; i < READERS; i++) {
        rd[i] = (reader){f, (unsigned)i + 1, 0, ""};
        pthread_create(&th[i], NULL, read_loop, &rd[i]);
    }
    /* The writer: new people, and consent, lock and delete changes in the upper half. */
    abis_error err;
    for (uint64_t k = 0; k < 40; k++) {
        abis_id id;
        assert_status(enrol(f->e, 10000 + k, &id, &err), ABIS_OK, &err);
        const abis_id *s = &f->ids[POPULATION / 2 + k];
        switch (k % 4) {
        case 0:
            assert_status(abis_consent_withdraw(f->e, NULL, s, purpose, &err), ABIS_OK, &err);
            break;
        case 1:
            assert_status(abis_subject_lock(f->e, NULL, s, "face", &err), ABIS_OK, &err);
            break;
        case 2:
            assert_status(abis_subject_delete(f->e, NULL, s, &err), ABIS_OK, &err);
            break;
        default:
            assert_status(abis_consent_withdraw(f->e, NULL, s, purpose, &err), ABIS_OK, &err);
            assert_status(abis_consent_grant(f->e, NULL, s, purpose, &err), ABIS_OK, &err);
        }
    }
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        if (rd[i].bad)
            fail_msg("reader %d: %s", i, rd[i].problem);
    }
    abis_audit_report rep;
    assert_status(abis_audit_verify(f->e, &rep, &err), ABIS_OK, &err);
    if (!rep.ok)
        fail_msg("audit chain broken: %s", rep.problem);
    uint64_t b1, e1;
    abis_audit_stats(f->e, &b1, &e1);
    /* Every read left an entry (identify: one plus one per candidate). */
    assert_true(e1 - e0 >= READERS * READS);
    print_message("group commit: %llu entries in %llu commits\n", (unsigned long long)(e1 - e0),
                  (unsigned long long)(b1 - b0));
    assert_true(b1 - b0 <= e1 - e0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_run_while_a_writer_holds_the_write_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readers_and_a_writer_together, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
