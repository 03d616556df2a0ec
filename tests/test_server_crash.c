/*
 * test_server_crash.c: kill -9 abisd while many clients enrol at once,
 * start it again, and check that every enrolment that got a 2xx is there
 * and whole, that an enrolment that got no answer is either whole or
 * absent (its retry with the same Idempotency-Key says which, and never
 * enrols twice), that the store passes its integrity check and that the
 * audit chain verifies.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abis/client.h"
#include "httpc.h"
#include "store/store.h"
#include "testutil.h"

#define DIM 32
#define SEED 9
#define THREADS 8
#define PER_THREAD 400

static char *dir;
static char key[ABIS_API_KEY_LEN + 1];

typedef struct attempt {
    int status; /* HTTP status, 0: no answer */
    char token[33];
} attempt;

typedef struct worker {
    int port;
    int id;
    int n; /* attempts made */
    attempt a[PER_THREAD];
} worker;

static uint64_t person_of(int thread, int i)
{
    return (uint64_t)thread * 100000 + (uint64_t)i;
}

static int enrol(int port, uint64_t person, char token[33])
{
    float v[DIM];
    abis_synth_sample(SEED, person, 0, ABIS_SYNTH_SIGMA, v, DIM);
    char body[2048], auth[160], idem[96];
    size_t len = (size_t)snprintf(body, sizeof body,
                                  "{\"segment\":\"city\",\"consents\":[\"bank.remote-id\"],"
                                  "\"templates\":[{\"modality\":\"face\",\"vector\":[");
    for (int i = 0; i < DIM; i++)
        len += (size_t)snprintf(body + len, sizeof body - len, "%s%.9g", i ? "," : "", v[i]);
    snprintf(body + len, sizeof body - len, "]}]}");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(idem, sizeof idem, "Idempotency-Key: enrol-%llu", (unsigned long long)person);
    const char *h[] = {auth, "Content-Type: application/json", idem, NULL};
    http_resp r;
    int st = http_do(port, "POST", "/v1/subjects", h, body, &r);
    token[0] = '\0';
    if (st == 201)
        snprintf(token, 33, "%s", json_string_value(json_object_get(r.json, "subject_id")));
    http_resp_free(&r);
    return st;
}

static void *work(void *p)
{
    worker *w = p;
    for (w->n = 0; w->n < PER_THREAD;) {
        attempt *a = &w->a[w->n++];
        a->status = enrol(w->port, person_of(w->id, w->n - 1), a->token);
        if (a->status == 0)
            break; /* the server is gone */
        if (a->status != 201)
            fprintf(stderr, "unexpected HTTP %d\n", a->status);
    }
    return NULL;
}

static int group_setup(void **state)
{
    (void)state;
    dir = abis_test_tmpdir("crash");
    unsetenv("ABIS_MASTER_KEY");
    abis_error err = {0};
    abis_engine *e;
    abis_open_options o = {.data_dir = dir};
    if (abis_store_init(dir, &err) != ABIS_OK || abis_engine_open(&o, &e, &err) != ABIS_OK)
        fail_msg("%s", err.message);
    abis_segment_add(e, NULL, "city", &err);
    abis_purpose_def p = {
        .name = "bank.remote-id", .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
    abis_purpose_add(e, NULL, &p, &err);
    abis_modality_add(e, NULL, "face", "vector", DIM, &err);
    const char *seg = "city", *pur = "bank.remote-id";
    abis_client_def d = {.name = "bank",
                         .segments = &seg,
                         .n_segments = 1,
                         .purposes = &pur,
                         .n_purposes = 1,
                         .operations = ABIS_CLIENT_OPS_ALL,
                         .rights = ABIS_CLIENT_RIGHTS_ALL};
    if (abis_client_add(e, NULL, &d, key, &err) != ABIS_OK)
        fail_msg("%s", err.message);
    abis_engine_close(e);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    abis_test_rmdir(dir);
    return 0;
}

/* A subject as the store has it: key, templates, consent. */
typedef struct whole_ctx {
    abis_store *s;
    size_t subjects, broken;
} whole_ctx;

static int count_template(const abis_template_rec *r, void *p)
{
    (void)r;
    (*(int *)p)++;
    return 0;
}

static int count_consent(const abis_consent_rec *r, void *p)
{
    *(int *)p += r->granted;
    return 0;
}

static int check_subject(const abis_subject_rec *r, void *p)
{
    whole_ctx *w = p;
    w->subjects++;
    unsigned char buf[128];
    size_t len;
    int templates = 0, consents = 0;
    abis_error err;
    if (w->s->ops->key_get(w->s, &r->id, buf, sizeof buf, &len, &err) != ABIS_OK ||
        w->s->ops->template_scan_subject(w->s, &r->id, count_template, &templates, &err) !=
            ABIS_OK ||
        w->s->ops->consent_scan_subject(w->s, &r->id, count_consent, &consents, &err) != ABIS_OK ||
        templates != 1 || consents != 1)
        w->broken++;
    return 0;
}

static void test_kill_9_during_concurrent_enrolments(void **state)
{
    (void)state;
    const char *args[] = {"--rate-limit",
                          "1000000",
                          "--rate-burst",
                          "1000000",
                          "--log-requests",
                          "false",
                          "--max-inflight",
                          "16",
                          "--threads",
                          "20",
                          NULL};
    abisd_proc p;
    assert_int_equal(abisd_proc_start(&p, dir, args), 0);
    static worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].port = p.port;
        w[i].id = i;
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    struct timespec ts = {1, 500 * 1000000}; /* 1.5 s of enrolments, then kill -9 */
    nanosleep(&ts, NULL);
    assert_int_equal(abisd_proc_stop(&p, SIGKILL), 128 + SIGKILL);
    size_t acked = 0, unanswered = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        for (int k = 0; k < w[i].n; k++) {
            assert_true(w[i].a[k].status == 201 || w[i].a[k].status == 0);
            if (w[i].a[k].status == 201)
                acked++;
            else
                unanswered++;
        }
    }
    print_message("killed with %zu enrolments acknowledged and %zu unanswered\n", acked,
                  unanswered);
    assert_true(acked > 0);

    /* Restart: every acknowledged enrolment is there, whole. */
    assert_int_equal(abisd_proc_start(&p, dir, args), 0);
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *h[] = {auth, NULL};
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < w[i].n; k++) {
            if (w[i].a[k].status != 201)
                continue;
            char path[96];
            snprintf(path, sizeof path, "/v1/subjects/%s", w[i].a[k].token);
            http_resp r;
            http_do(p.port, "GET", path, h, NULL, &r);
            if (r.status != 200)
                fail_msg("acknowledged enrolment %s is missing after the crash: %d %s",
                         w[i].a[k].token, r.status, r.body);
            assert_int_equal(json_array_size(json_object_get(r.json, "templates")), 1);
            assert_int_equal(json_array_size(json_object_get(r.json, "consents")), 1);
            http_resp_free(&r);
        }
    /* An unanswered enrolment retried with its key: either its first result
     * (it had committed) or a first enrolment now -- never a second one. */
    size_t replayed = 0;
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < w[i].n; k++) {
            if (w[i].a[k].status == 201)
                continue;
            char token[33];
            assert_int_equal(enrol(p.port, person_of(i, k), token), 201);
            replayed++;
        }
    http_resp r;
    http_do(p.port, "GET", "/metrics", NULL, NULL, &r);
    char *m = strstr(r.body, "abisd_segment_subjects{segment=\"city\"} ");
    assert_non_null(m);
    size_t subjects =
        (size_t)strtoull(m + strlen("abisd_segment_subjects{segment=\"city\"} "), NULL, 10);
    http_resp_free(&r);
    assert_int_equal(subjects, acked + unanswered);
    assert_int_equal(abisd_proc_stop(&p, SIGTERM), 0);

    /* The store: integrity, every subject whole, the audit chain. */
    abis_store *s;
    abis_error err = {0};
    assert_status(abis_store_sqlite_open(dir, 0, 0, &s, &err), ABIS_OK, &err);
    assert_status(s->ops->integrity_check(s, &err), ABIS_OK, &err);
    whole_ctx wc = {s, 0, 0};
    assert_status(s->ops->subject_scan(s, 0, check_subject, &wc, &err), ABIS_OK, &err);
    assert_int_equal(wc.subjects, acked + unanswered);
    assert_int_equal(wc.broken, 0);
    abis_store_close(s);
    abis_engine *e;
    abis_open_options o = {.data_dir = dir, .read_only = 1};
    assert_status(abis_engine_open(&o, &e, &err), ABIS_OK, &err);
    abis_audit_report rep;
    assert_status(abis_audit_verify(e, &rep, &err), ABIS_OK, &err);
    if (!rep.ok)
        fail_msg("audit chain broken after the crash: %s", rep.problem);
    abis_engine_close(e);
    (void)replayed;
}

int main(void)
{
    if (!getenv("ABISD")) {
        fprintf(stderr, "test_server_crash: ABISD is not set (ctest sets it); skipping\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_during_concurrent_enrolments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
