/*
 * test_server.c: abisd over real HTTP, end to end: a real abisd process on a
 * free loopback port, a real store, and every endpoint and error class of
 * docs/openapi.yaml -- authentication, each kind of authorisation refusal,
 * consent, locks, limits (body size, rate, request timeout, concurrency),
 * bad input with nothing written, idempotent retries, pseudonyms that differ
 * between clients, the person's view and history, metrics, graceful
 * shutdown, and the audit entries all of it leaves.
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "abis/client.h"
#include "httpc.h"
#include "testutil.h"

#define DIM 32
#define SEED 5

static char *dir;
static abisd_proc srv;
static char bank_key[ABIS_API_KEY_LEN + 1], gate_key[ABIS_API_KEY_LEN + 1],
    portal_key[ABIS_API_KEY_LEN + 1], other_key[ABIS_API_KEY_LEN + 1],
    slow_key[ABIS_API_KEY_LEN + 1], revoked_key[ABIS_API_KEY_LEN + 1];
static uint64_t next_person = 100;

/* ---- setup ----------------------------------------------------------------------- */

static void add_client(abis_engine *e, const char *name, const char *segment, uint32_t ops,
                       uint32_t rights, double rate, char *key)
{
    const char *purposes[] = {"bank.remote-id", "transit.fare", "border.check"};
    abis_client_def d = {.name = name,
                         .segments = &segment,
                         .n_segments = 1,
                         .purposes = purposes,
                         .n_purposes = strcmp(name, "bank") == 0 ? 1 : 3,
                         .operations = ops,
                         .rights = rights,
                         .rate_limit = rate};
    abis_error err = {0};
    if (abis_client_add(e, NULL, &d, key, &err) != ABIS_OK)
        fail_msg("client add %s: %s", name, err.message);
}

static int group_setup(void **state)
{
    (void)state;
    dir = abis_test_tmpdir("server");
    unsetenv("ABIS_MASTER_KEY");
    abis_error err = {0};
    abis_engine *e = NULL;
    abis_open_options o = {.data_dir = dir, .actor = "test"};
    if (abis_store_init(dir, &err) != ABIS_OK || abis_engine_open(&o, &e, &err) != ABIS_OK)
        fail_msg("%s", err.message);
    abis_segment_add(e, NULL, "city", &err);
    abis_segment_add(e, NULL, "town", &err);
    abis_purpose_def p1 = {
        .name = "bank.remote-id", .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
    abis_purpose_def p2 = {.name = "transit.fare", .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-3};
    abis_purpose_def p3 = {.name = "border.check",
                           .basis = ABIS_BASIS_STATUTORY,
                           .target_fmr = 1e-5,
                           .legal_ref = "Border Act s.4"};
    abis_purpose_add(e, NULL, &p1, &err);
    abis_purpose_add(e, NULL, &p2, &err);
    abis_purpose_add(e, NULL, &p3, &err);
    if (abis_modality_add(e, NULL, "face", "vector", DIM, &err) != ABIS_OK ||
        abis_modality_add(e, NULL, "iris", "iriscode", 0, &err) != ABIS_OK ||
        abis_modality_add(e, NULL, "finger", "minutiae", 0, &err) != ABIS_OK)
        fail_msg("%s", err.message);
    add_client(e, "bank", "city", ABIS_CLIENT_OPS_ALL, 0, 0, bank_key);
    add_client(e, "gate", "city", ABIS_CLIENT_OP_VERIFY | ABIS_CLIENT_OP_IDENTIFY,
               ABIS_CLIENT_RIGHT_RAW_SCORES, 0, gate_key);
    add_client(e, "portal", "city", 0, ABIS_CLIENT_RIGHT_SUBJECT_MANAGEMENT, 0, portal_key);
    add_client(e, "other", "town", ABIS_CLIENT_OPS_ALL, ABIS_CLIENT_RIGHTS_ALL, 0, other_key);
    add_client(e, "slow", "city", ABIS_CLIENT_OP_VERIFY, 0, 1, slow_key);
    add_client(e, "gone", "city", ABIS_CLIENT_OP_VERIFY, 0, 0, revoked_key);
    if (abis_client_revoke(e, NULL, "gone", &err) != ABIS_OK)
        fail_msg("%s", err.message);
    abis_engine_close(e);
    const char *args[] = {"--request-timeout-ms",
                          "400",
                          "--max-body-bytes",
                          "262144",
                          "--log-requests",
                          "false",
                          NULL};
    return abisd_proc_start(&srv, dir, args);
}

static int group_teardown(void **state)
{
    (void)state;
    if (srv.pid > 0)
        abisd_proc_stop(&srv, SIGKILL);
    abis_test_rmdir(dir);
    return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

static int call(const char *key, const char *method, const char *path, const char *body,
                const char *idem, http_resp *r)
{
    char auth[160], id[300];
    const char *h[4];
    size_t n = 0;
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h[n++] = auth;
    }
    if (body)
        h[n++] = "Content-Type: application/json";
    if (idem) {
        snprintf(id, sizeof id, "Idempotency-Key: %s", idem);
        h[n++] = id;
    }
    h[n] = NULL;
    return http_do(srv.port, method, path, h, body, r);
}

#define assert_http(r, want)                                                                       \
    do {                                                                                           \
        if ((r)->status != (want))                                                                 \
            fail_msg("HTTP %d, wanted %d: %s", (r)->status, (want), (r)->body ? (r)->body : "");   \
    } while (0)

static void sample(uint64_t person, uint64_t n, float *v)
{
    abis_synth_sample(SEED, person, n, ABIS_SYNTH_SIGMA, v, DIM);
}

/* {"modality": "face", "vector": [...]} of a person's sample. */
static void tmpl_json(uint64_t person, uint64_t n, char *buf, size_t cap)
{
    float v[DIM];
    sample(person, n, v);
    size_t len = (size_t)snprintf(buf, cap, "{\"modality\":\"face\",\"vector\":[");
    for (int i = 0; i < DIM; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%.9g", i ? "," : "", v[i]);
    snprintf(buf + len, cap - len, "]}");
}

/* The same with "vector_b64". */
static void tmpl_b64(uint64_t person, uint64_t n, char *buf, size_t cap)
{
    float v[DIM];
    sample(person, n, v);
    char b64[512];
    sodium_bin2base64(b64, sizeof b64, (unsigned char *)v, sizeof v,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(buf, cap, "{\"modality\":\"face\",\"vector_b64\":\"%s\"}", b64);
}

/* Enrol a new person through `key` into `segment`; its subject id. */
static void enrol(const char *key, const char *segment, uint64_t person, char token[33])
{
    char t[2048], body[2400];
    tmpl_json(person, 0, t, sizeof t);
    snprintf(body, sizeof body,
             "{\"segment\":\"%s\",\"templates\":[%s],\"consents\":[\"bank.remote-id\"]}", segment,
             t);
    http_resp r;
    call(key, "POST", "/v1/subjects", body, NULL, &r);
    assert_http(&r, 201);
    snprintf(token, 33, "%s", json_string_value(json_object_get(r.json, "subject_id")));
    assert_int_equal(strlen(token), 32);
    http_resp_free(&r);
}

static int verify(const char *key, const char *token, uint64_t person, const char *purpose,
                  http_resp *r)
{
    char t[2048], body[2400], path[128];
    tmpl_b64(person, 1, t, sizeof t);
    snprintf(body, sizeof body, "{\"purpose\":\"%s\",\"templates\":[%s]}", purpose, t);
    snprintf(path, sizeof path, "/v1/subjects/%s/verify", token);
    return call(key, "POST", path, body, NULL, r);
}

static int identify(const char *key, const char *segment, uint64_t person, http_resp *r)
{
    char t[2048], body[2400];
    tmpl_json(person, 2, t, sizeof t);
    snprintf(body, sizeof body,
             "{\"segment\":\"%s\",\"purpose\":\"bank.remote-id\",\"templates\":[%s],\"k\":3}",
             segment, t);
    return call(key, "POST", "/v1/identify", body, NULL, r);
}

/* A metric's value from GET /metrics ("name{labels}" exactly); -1 if absent. */
static double metric(const char *series)
{
    http_resp r;
    call(NULL, "GET", "/metrics", NULL, NULL, &r);
    assert_http(&r, 200);
    double v = -1;
    char *at = strstr(r.body, series);
    if (at && at[strlen(series)] == ' ')
        v = strtod(at + strlen(series) + 1, NULL);
    http_resp_free(&r);
    return v;
}

/* ---- health, metrics, routes --------------------------------------------------------- */

static void test_health_and_metrics_need_no_key(void **state)
{
    (void)state;
    http_resp r;
    call(NULL, "GET", "/v1/health", NULL, NULL, &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
    char *rid = http_header(&r, "X-Request-Id");
    assert_non_null(rid);
    free(rid);
    http_resp_free(&r);
    call(NULL, "GET", "/metrics", NULL, NULL, &r);
    assert_http(&r, 200);
    char *ct = http_header(&r, "Content-Type");
    assert_non_null(strstr(ct, "text/plain"));
    free(ct);
    assert_non_null(strstr(r.body, "# TYPE abisd_requests_total counter"));
    assert_non_null(strstr(r.body, "abisd_request_duration_seconds_bucket"));
    assert_non_null(strstr(r.body, "abisd_errors_total{code=\"unauthenticated\"}"));
    assert_non_null(strstr(r.body, "abisd_segment_subjects{segment=\"city\"}"));
    http_resp_free(&r);
}

static void test_unknown_path_is_404_and_wrong_method_405(void **state)
{
    (void)state;
    http_resp r;
    call(bank_key, "GET", "/v1/nothing", NULL, NULL, &r);
    assert_http(&r, 404);
    assert_string_equal(http_error_code(&r), "no_route");
    http_resp_free(&r);
    call(bank_key, "PATCH", "/v1/subjects", "{}", NULL, &r);
    assert_http(&r, 405);
    assert_string_equal(http_error_code(&r), "method_not_allowed");
    char *allow = http_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "POST"));
    free(allow);
    http_resp_free(&r);
}

/* ---- the operations -------------------------------------------------------------------- */

static void test_enrol_verify_identify(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char token[33];
    enrol(bank_key, "city", p, token);
    http_resp r;
    verify(bank_key, token, p, "bank.remote-id", &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "decision")), "match");
    assert_non_null(json_object_get(r.json, "confidence"));
    /* No scores without the raw-scores right. */
    assert_null(json_object_get(r.json, "score"));
    http_resp_free(&r);
    verify(bank_key, token, p + 50000, "bank.remote-id", &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "decision")), "no_match");
    http_resp_free(&r);
    identify(bank_key, "city", p, &r);
    assert_http(&r, 200);
    json_t *c = json_object_get(r.json, "candidates");
    assert_int_equal(json_array_size(c), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "subject_id")),
                        token);
    assert_null(json_object_get(json_array_get(c, 0), "score"));
    http_resp_free(&r);
}

static void test_raw_scores_only_with_the_right(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char token[33];
    enrol(bank_key, "city", p, token);
    http_resp r;
    identify(gate_key, "city", p, &r);
    assert_http(&r, 200);
    json_t *c = json_array_get(json_object_get(r.json, "candidates"), 0);
    assert_true(json_is_real(json_object_get(c, "score")));
    char gate_token[33];
    snprintf(gate_token, sizeof gate_token, "%s",
             json_string_value(json_object_get(c, "subject_id")));
    http_resp_free(&r);
    verify(gate_key, gate_token, p, "transit.fare", &r);
    assert_http(&r, 403); /* the person consented to the bank's purpose only */
    assert_string_equal(http_error_code(&r), "no_consent");
    http_resp_free(&r);
    verify(gate_key, gate_token, p, "bank.remote-id", &r);
    assert_http(&r, 200);
    assert_true(json_real_value(json_object_get(r.json, "score")) > 0.5);
    assert_non_null(json_object_get(r.json, "fmr"));
    assert_non_null(json_object_get(r.json, "threshold"));
    http_resp_free(&r);
}

static void test_pseudonyms_differ_between_two_clients(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char bank_token[33], gate_token[33];
    enrol(bank_key, "city", p, bank_token);
    http_resp r;
    identify(gate_key, "city", p, &r);
    assert_http(&r, 200);
    snprintf(gate_token, sizeof gate_token, "%s",
             json_string_value(json_object_get(
                 json_array_get(json_object_get(r.json, "candidates"), 0), "subject_id")));
    http_resp_free(&r);
    assert_string_not_equal(bank_token, gate_token);
    /* Each id works only for its own client. */
    verify(gate_key, bank_token, p, "bank.remote-id", &r);
    assert_http(&r, 404);
    http_resp_free(&r);
    verify(gate_key, gate_token, p, "bank.remote-id", &r);
    assert_http(&r, 200);
    http_resp_free(&r);
}

static void test_not_yours_answers_like_absent(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char theirs[33];
    enrol(other_key, "town", p, theirs);
    http_resp a, b;
    verify(bank_key, "00000000000000000000000000000000", p, "bank.remote-id", &a);
    verify(bank_key, theirs, p, "bank.remote-id", &b);
    assert_http(&a, 404);
    assert_http(&b, 404);
    assert_string_equal(http_error_code(&a), "not_found");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a.json, "error"), "message")),
        json_string_value(json_object_get(json_object_get(b.json, "error"), "message")));
    http_resp_free(&a);
    http_resp_free(&b);
}

static void test_template_add(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char token[33], t[2048], body[2400], path[128];
    enrol(bank_key, "city", p, token);
    tmpl_b64(p, 3, t, sizeof t);
    snprintf(body, sizeof body, "{\"template\":%s,\"replace\":false}", t);
    snprintf(path, sizeof path, "/v1/subjects/%s/templates", token);
    http_resp r;
    call(bank_key, "POST", path, body, NULL, &r);
    assert_http(&r, 201);
    assert_int_equal(strlen(json_string_value(json_object_get(r.json, "template_id"))), 32);
    http_resp_free(&r);
    call(gate_key, "POST", path, body, NULL, &r); /* the gate may not add templates */
    assert_http(&r, 403);
    assert_string_equal(http_error_code(&r), "forbidden");
    http_resp_free(&r);
}

/* The "other" client has every operation and both rights in "town": it
 * enrols a person and then acts for them as a portal would. */
static void test_person_view_history_consent_lock_delete(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char token[33], path[160];
    enrol(other_key, "town", p, token);
    http_resp r;
    snprintf(path, sizeof path, "/v1/subjects/%s", token);
    call(other_key, "GET", path, NULL, NULL, &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "subject_id")), token);
    json_t *tm = json_object_get(r.json, "templates");
    assert_int_equal(json_array_size(tm), 1);
    assert_null(json_object_get(json_array_get(tm, 0), "vector"));
    assert_int_equal(json_array_size(json_object_get(r.json, "consents")), 1);
    assert_non_null(strstr(r.body, "bank.remote-id"));
    http_resp_free(&r);

    /* Withdraw consent: verification for that purpose is refused. */
    snprintf(path, sizeof path, "/v1/subjects/%s/consents/bank.remote-id", token);
    call(other_key, "DELETE", path, NULL, NULL, &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "consent")), "withdrawn");
    http_resp_free(&r);
    verify(other_key, token, p, "bank.remote-id", &r);
    assert_http(&r, 403);
    assert_string_equal(http_error_code(&r), "no_consent");
    http_resp_free(&r);
    call(other_key, "PUT", path, NULL, NULL, &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "consent")), "granted");
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/subjects/%s/consents/no.such", token);
    call(other_key, "PUT", path, NULL, NULL, &r);
    assert_http(&r, 400);
    http_resp_free(&r);

    /* Lock every modality, then the face only; unlock. */
    snprintf(path, sizeof path, "/v1/subjects/%s/lock", token);
    call(other_key, "POST", path, NULL, NULL, &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "modality")), "*");
    http_resp_free(&r);
    verify(other_key, token, p, "bank.remote-id", &r);
    assert_http(&r, 403);
    assert_string_equal(http_error_code(&r), "locked");
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/subjects/%s/unlock", token);
    call(other_key, "POST", path, NULL, NULL, &r);
    assert_http(&r, 200);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/subjects/%s/lock", token);
    call(other_key, "POST", path, "{\"modality\":\"face\"}", NULL, &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "modality")), "face");
    http_resp_free(&r);
    verify(other_key, token, p, "bank.remote-id", &r);
    assert_http(&r, 403);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/subjects/%s/unlock", token);
    call(other_key, "POST", path, "{\"modality\":\"face\"}", NULL, &r);
    assert_http(&r, 200);
    http_resp_free(&r);
    verify(other_key, token, p, "bank.remote-id", &r);
    assert_http(&r, 200);
    http_resp_free(&r);

    /* The history says who used the biometrics, when, for what, with what outcome. */
    snprintf(path, sizeof path, "/v1/subjects/%s/history", token);
    call(other_key, "GET", path, NULL, NULL, &r);
    assert_http(&r, 200);
    json_t *h = json_object_get(r.json, "history");
    assert_true(json_array_size(h) >= 8);
    int verifies = 0, refused = 0;
    for (size_t i = 0; i < json_array_size(h); i++) {
        json_t *e = json_array_get(h, i);
        assert_string_equal(json_string_value(json_object_get(e, "actor")), "client:other");
        if (!strcmp(json_string_value(json_object_get(e, "operation")), "verify")) {
            verifies++;
            refused += strcmp(json_string_value(json_object_get(e, "outcome")), "ok") != 0;
            assert_string_equal(json_string_value(json_object_get(e, "purpose")), "bank.remote-id");
            assert_non_null(json_object_get(e, "at"));
        }
    }
    assert_int_equal(verifies, 4);
    assert_int_equal(refused, 3);
    http_resp_free(&r);

    /* Deletion: gone, for this client and everyone. */
    snprintf(path, sizeof path, "/v1/subjects/%s", token);
    call(other_key, "DELETE", path, NULL, NULL, &r);
    assert_http(&r, 204);
    assert_int_equal(r.body_len, 0);
    http_resp_free(&r);
    call(other_key, "GET", path, NULL, NULL, &r);
    assert_http(&r, 404);
    http_resp_free(&r);
    call(other_key, "DELETE", path, NULL, NULL, &r);
    assert_http(&r, 404);
    http_resp_free(&r);
}

/* A file of the shared data sets (path relative to ../shared/data) as
 * base64; NULL when it is absent. */
static char *shared_b64(const char *rel)
{
    const char *src = getenv("ABIS_SOURCE_DIR");
    char path[4300];
    snprintf(path, sizeof path, "%s/../shared/data/%s", src ? src : ".", rel);
    size_t n;
    unsigned char *b = abis_test_read_file(path, &n);
    if (!b)
        return NULL;
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(cap);
    sodium_bin2base64(out, cap, b, n, sodium_base64_VARIANT_ORIGINAL);
    free(b);
    return out;
}

/* A CASIA-IrisV1 eye image as base64 (NULL when the data set is absent). */
static char *casia_b64(int eye, int session, int k)
{
    char rel[128];
    snprintf(rel, sizeof rel, "iris/casia-v1/%03d/%d/%03d_%d_%d.bmp", eye, session, eye, session,
             k);
    return shared_b64(rel);
}

/* A template object carrying a capture: {"modality": ..., "position": ...,
 * "image_b64": ...}; position is JSON text (a number or a quoted side).  The
 * caller frees it. */
static char *capture_template(const char *modality, const char *position, const char *img)
{
    size_t cap = strlen(img) + 128;
    char *t = malloc(cap);
    assert_non_null(t);
    snprintf(t, cap, "{\"modality\":\"%s\",\"position\":%s,\"image_b64\":\"%s\"}", modality,
             position, img);
    return t;
}

/* Enrol one template object for the bank in city; the subject's token. */
static void enrol_template(const char *tmpl, char token[33])
{
    size_t cap = strlen(tmpl) + 128;
    char *body = malloc(cap);
    assert_non_null(body);
    snprintf(body, cap,
             "{\"segment\":\"city\",\"consents\":[\"bank.remote-id\"],\"templates\":[%s]}", tmpl);
    http_resp r;
    call(bank_key, "POST", "/v1/subjects", body, NULL, &r);
    assert_http(&r, 201);
    snprintf(token, 33, "%s", json_string_value(json_object_get(r.json, "subject_id")));
    http_resp_free(&r);
    free(body);
}

/* Verify a subject against one template object for bank.remote-id: the
 * HTTP status, and for a 200 the decision. */
static void verify_template(const char *token, const char *tmpl, int status, const char *decision)
{
    size_t cap = strlen(tmpl) + 128;
    char *body = malloc(cap), path[128];
    assert_non_null(body);
    snprintf(body, cap, "{\"purpose\":\"bank.remote-id\",\"templates\":[%s]}", tmpl);
    snprintf(path, sizeof path, "/v1/subjects/%s/verify", token);
    http_resp r;
    call(bank_key, "POST", path, body, NULL, &r);
    assert_http(&r, status);
    if (decision)
        assert_string_equal(json_string_value(json_object_get(r.json, "decision")), decision);
    http_resp_free(&r);
    free(body);
}

static void test_captures_travel_as_image_b64(void **state)
{
    (void)state;
    char *enrol_img = casia_b64(7, 1, 1), *probe_img = casia_b64(7, 2, 1);
    if (!enrol_img || !probe_img) {
        free(enrol_img);
        free(probe_img);
        print_message("CASIA-IrisV1 not found beside the project: skipped\n");
        skip();
    }
    char *enrol_t = capture_template("iris", "\"left\"", enrol_img),
         *probe_t = capture_template("iris", "\"left\"", probe_img), token[33];
    enrol_template(enrol_t, token);
    verify_template(token, probe_t, 200, "match");
    /* Something that is not an image is refused with the reason. */
    verify_template(token, "{\"modality\":\"iris\",\"image_b64\":\"aGVsbG8gd29ybGQ=\"}", 400, NULL);
    /* A capture for a modality that takes vectors. */
    char path[128];
    snprintf(path, sizeof path, "/v1/subjects/%s/verify", token);
    http_resp r;
    call(bank_key, "POST", path,
         "{\"purpose\":\"bank.remote-id\",\"templates\":"
         "[{\"modality\":\"face\",\"image_b64\":\"aGVsbG8gd29ybGQ=\"}]}",
         NULL, &r);
    assert_http(&r, 400);
    assert_non_null(strstr(r.body, "face"));
    http_resp_free(&r);
    free(enrol_t);
    free(probe_t);
    free(enrol_img);
    free(probe_img);
}

/* Fingerprint images travel the same way: an FVC2002 impression enrolled
 * at a finger position, another impression of the same finger verified, a
 * third finger's impression not matched. */
static void test_fingerprint_images_travel_as_image_b64(void **state)
{
    (void)state;
    const char *files[] = {"finger/fvc2002/DB1_B/101_1.tif", "finger/fvc2002/DB1_B/101_2.tif",
                           "finger/fvc2002/DB1_B/105_1.tif"};
    char *t[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        char *img = shared_b64(files[i]);
        if (!img) {
            for (int k = 0; k < i; k++)
                free(t[k]);
            print_message("FVC2002 DB1_B not found beside the project: skipped\n");
            skip();
        }
        t[i] = capture_template("finger", "2", img);
        free(img);
    }
    char token[33];
    enrol_template(t[0], token);
    verify_template(token, t[1], 200, "match");
    verify_template(token, t[2], 200, "no_match");
    /* a truncated image is refused with the reason */
    verify_template(token,
                    "{\"modality\":\"finger\",\"position\":2,\"image_b64\":\"SUkqAAgAAAA=\"}", 400,
                    NULL);
    for (int i = 0; i < 3; i++)
        free(t[i]);
}

/* ---- authentication and authorisation ------------------------------------------------ */

static void test_missing_malformed_unknown_and_revoked_keys_get_401(void **state)
{
    (void)state;
    http_resp r;
    const char *keys[] = {NULL, "abis_nonsense", revoked_key,
                          "abis_0123456789abcdef_00000000000000000000000000000000000000000000000"
                          "00000000000000000"};
    for (size_t i = 0; i < 4; i++) {
        verify(keys[i], "00000000000000000000000000000000", 1, "bank.remote-id", &r);
        assert_http(&r, 401);
        assert_string_equal(http_error_code(&r), "unauthenticated");
        http_resp_free(&r);
    }
    const char *h[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    http_do(srv.port, "GET", "/v1/subjects/00000000000000000000000000000000", h, NULL, &r);
    assert_http(&r, 401);
    http_resp_free(&r);
}

static void test_each_authorisation_refusal_is_403(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char token[33], t[2048], body[2400], path[128];
    enrol(bank_key, "city", p, token);
    http_resp r;
    /* operation: the gate may not enrol */
    tmpl_json(p + 1, 0, t, sizeof t);
    snprintf(body, sizeof body, "{\"segment\":\"city\",\"templates\":[%s]}", t);
    call(gate_key, "POST", "/v1/subjects", body, NULL, &r);
    assert_http(&r, 403);
    assert_non_null(strstr(r.body, "may not enroll"));
    http_resp_free(&r);
    /* segment: the bank may not use "town" */
    snprintf(body, sizeof body, "{\"segment\":\"town\",\"templates\":[%s]}", t);
    call(bank_key, "POST", "/v1/subjects", body, NULL, &r);
    assert_http(&r, 403);
    assert_non_null(strstr(r.body, "segment 'town'"));
    http_resp_free(&r);
    identify(bank_key, "town", p, &r);
    assert_http(&r, 403);
    http_resp_free(&r);
    /* purpose: the bank may not act for the fare purpose */
    verify(bank_key, token, p, "transit.fare", &r);
    assert_http(&r, 403);
    assert_non_null(strstr(r.body, "purpose 'transit.fare'"));
    http_resp_free(&r);
    /* a consent to a purpose it was not granted */
    snprintf(body, sizeof body,
             "{\"segment\":\"city\",\"templates\":[%s],\"consents\":[\"transit.fare\"]}", t);
    call(bank_key, "POST", "/v1/subjects", body, NULL, &r);
    assert_http(&r, 403);
    http_resp_free(&r);
    /* right: the bank does not manage subjects */
    snprintf(path, sizeof path, "/v1/subjects/%s", token);
    call(bank_key, "GET", path, NULL, NULL, &r);
    assert_http(&r, 403);
    assert_non_null(strstr(r.body, "subject_management"));
    http_resp_free(&r);
    call(bank_key, "DELETE", path, NULL, NULL, &r);
    assert_http(&r, 403);
    http_resp_free(&r);
    /* the portal manages subjects but may not verify */
    verify(portal_key, token, p, "bank.remote-id", &r);
    assert_http(&r, 403);
    http_resp_free(&r);
}

/* ---- bad input: 400 with the exact reason, nothing written ------------------------------ */

static void expect_400(const char *key, const char *path, const char *body, const char *code,
                       const char *words)
{
    http_resp r;
    call(key, "POST", path, body, NULL, &r);
    json_t *m = json_object_get(json_object_get(r.json, "error"), "message");
    if (r.status != 400 || strcmp(http_error_code(&r), code) != 0 ||
        (words && !(json_is_string(m) && strstr(json_string_value(m), words))))
        fail_msg("%s %s: got %d %s, wanted 400 %s (%s)", path, body, r.status, r.body, code,
                 words ? words : "");
    http_resp_free(&r);
}

static void test_bad_input_is_400_with_the_reason_and_writes_nothing(void **state)
{
    (void)state;
    double before = metric("abisd_segment_subjects{segment=\"city\"}");
    char t[2048], body[4096];
    tmpl_json(next_person++, 0, t, sizeof t);
    expect_400(bank_key, "/v1/subjects", "{\"segment\":\"city\",", "invalid_json", "line 1");
    expect_400(bank_key, "/v1/subjects", "[1,2]", "wrong_type", "JSON object");
    expect_400(bank_key, "/v1/subjects", "{\"segment\":7,\"templates\":[]}", "wrong_type",
               "\"segment\"");
    expect_400(bank_key, "/v1/subjects", "{\"segment\":\"city\"}", "missing_field", "templates");
    snprintf(body, sizeof body, "{\"segment\":\"city\",\"templates\":[%s],\"consent\":[]}", t);
    expect_400(bank_key, "/v1/subjects", body, "unknown_field", "'consent'");
    expect_400(
        bank_key, "/v1/subjects",
        "{\"segment\":\"city\",\"templates\":[{\"modality\":\"face\",\"vector_b64\":\"AA$A\"}]}",
        "bad_base64", "character 3");
    expect_400(
        bank_key, "/v1/subjects",
        "{\"segment\":\"city\",\"templates\":[{\"modality\":\"face\",\"vector\":[1,\"x\"]}]}",
        "bad_vector", "vector[1]");
    expect_400(bank_key, "/v1/subjects",
               "{\"segment\":\"city\",\"templates\":[{\"modality\":\"face\",\"vector\":[1,2,3]}]}",
               "invalid", "3 values");
    /* NaN cannot be written in JSON, but can be in base64: 0x7fc00000 */
    char nan_b64[400];
    float v[DIM];
    for (int i = 0; i < DIM; i++)
        v[i] = 0.5f;
    v[5] = NAN;
    sodium_bin2base64(nan_b64, sizeof nan_b64, (unsigned char *)v, sizeof v,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(body, sizeof body,
             "{\"segment\":\"city\",\"templates\":[{\"modality\":\"face\",\"vector_b64\":\"%s\"}]}",
             nan_b64);
    expect_400(bank_key, "/v1/subjects", body, "bad_vector", "NaN");
    snprintf(body, sizeof body,
             "{\"segment\":\"city\",\"templates\":[%s],\"consents\":[\"no.such\"]}", t);
    expect_400(bank_key, "/v1/subjects", body, "invalid", "purpose 'no.such' does not exist");
    snprintf(body, sizeof body, "{\"segment\":\"nowhere\",\"templates\":[%s]}", t);
    expect_400(bank_key, "/v1/subjects", body, "invalid", "segment 'nowhere'");
    snprintf(body, sizeof body,
             "{\"segment\":\"city\",\"templates\":[{\"modality\":\"nose\",\"vector\":[1]}]}");
    expect_400(bank_key, "/v1/subjects", body, "invalid", "nose");
    snprintf(body, sizeof body,
             "{\"segment\":\"city\",\"purpose\":\"bank.remote-id\",\"templates\":[%s],\"k\":0}", t);
    expect_400(bank_key, "/v1/identify", body, "invalid", "\"k\"");
    snprintf(body, sizeof body,
             "{\"segment\":\"city\",\"purpose\":\"bank.remote-id\",\"templates\":[%s],\"k\":\"3\"}",
             t);
    expect_400(bank_key, "/v1/identify", body, "wrong_type", "\"k\"");
    expect_400(bank_key, "/v1/subjects/xyz/verify",
               "{\"purpose\":\"bank.remote-id\",\"templates\":[]}", "missing_field", NULL);
    snprintf(body, sizeof body, "{\"purpose\":\"bank.remote-id\",\"templates\":[%s]}", t);
    expect_400(bank_key, "/v1/subjects/xyz/verify", body, "invalid", "32 hex digits");
    expect_400(bank_key, "/v1/subjects", "", "missing_field", "JSON body");

    /* Content-Type must be JSON. */
    http_resp r;
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", bank_key);
    const char *h[] = {auth, "Content-Type: text/plain", NULL};
    http_do(srv.port, "POST", "/v1/subjects", h, "{}", &r);
    assert_http(&r, 415);
    assert_string_equal(http_error_code(&r), "unsupported_media_type");
    http_resp_free(&r);
    assert_true(metric("abisd_segment_subjects{segment=\"city\"}") == before);
}

/* ---- idempotency ---------------------------------------------------------------------------- */

static void test_idempotent_retry_returns_the_first_result(void **state)
{
    (void)state;
    uint64_t p = next_person++;
    char t[2048], body[2400];
    tmpl_json(p, 0, t, sizeof t);
    snprintf(body, sizeof body, "{\"segment\":\"city\",\"templates\":[%s]}", t);
    double before = metric("abisd_segment_subjects{segment=\"city\"}");
    http_resp a, b, c;
    call(bank_key, "POST", "/v1/subjects", body, "enrol-once-1", &a);
    assert_http(&a, 201);
    char *rep = http_header(&a, "Idempotent-Replayed");
    assert_null(rep);
    call(bank_key, "POST", "/v1/subjects", body, "enrol-once-1", &b);
    assert_http(&b, 201);
    rep = http_header(&b, "Idempotent-Replayed");
    assert_non_null(rep);
    assert_string_equal(rep, "true");
    free(rep);
    assert_string_equal(a.body, b.body);
    assert_true(metric("abisd_segment_subjects{segment=\"city\"}") == before + 1);
    /* The same key with a different request: 409, nothing written. */
    tmpl_json(p + 1, 0, t, sizeof t);
    snprintf(body, sizeof body, "{\"segment\":\"city\",\"templates\":[%s]}", t);
    call(bank_key, "POST", "/v1/subjects", body, "enrol-once-1", &c);
    assert_http(&c, 409);
    assert_string_equal(http_error_code(&c), "conflict");
    assert_true(metric("abisd_segment_subjects{segment=\"city\"}") == before + 1);
    http_resp_free(&a);
    http_resp_free(&b);
    http_resp_free(&c);
    /* Without a key a retry is a duplicate enrolment, refused with the existing id. */
    tmpl_json(p, 0, t, sizeof t);
    snprintf(body, sizeof body, "{\"segment\":\"city\",\"templates\":[%s]}", t);
    call(bank_key, "POST", "/v1/subjects", body, NULL, &a);
    assert_http(&a, 409);
    assert_string_equal(http_error_code(&a), "duplicate");
    assert_non_null(json_object_get(json_object_get(a.json, "error"), "duplicate_of"));
    http_resp_free(&a);
}

/* ---- limits ------------------------------------------------------------------------------------
 */

static void test_rate_limit_answers_429_with_retry_after(void **state)
{
    (void)state;
    http_resp r;
    int limited = 0;
    for (int i = 0; i < 6 && !limited; i++) {
        verify(slow_key, "00000000000000000000000000000000", 1, "bank.remote-id", &r);
        if (r.status == 429) {
            limited = 1;
            assert_string_equal(http_error_code(&r), "rate_limited");
            char *ra = http_header(&r, "Retry-After");
            assert_non_null(ra);
            assert_true(atoi(ra) >= 1);
            free(ra);
        } else {
            assert_http(&r, 404);
        }
        http_resp_free(&r);
    }
    assert_true(limited);
}

static void test_body_too_large_is_413(void **state)
{
    (void)state;
    size_t n = 300000;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    http_resp r;
    call(bank_key, "POST", "/v1/subjects", big, NULL, &r);
    assert_http(&r, 413);
    assert_string_equal(http_error_code(&r), "body_too_large");
    http_resp_free(&r);
    /* Chunked, so that the size is learnt only while reading. */
    size_t cap = n + 4096;
    char *raw = malloc(cap);
    size_t len = (size_t)snprintf(raw, cap,
                                  "POST /v1/subjects HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
                                  bank_key, n);
    memcpy(raw + len, big, n);
    len += n;
    len += (size_t)snprintf(raw + len, cap - len, "\r\n0\r\n\r\n");
    http_raw(srv.port, raw, len, 0, 0, &r);
    assert_http(&r, 413);
    http_resp_free(&r);
    free(raw);
    free(big);
}

static void test_slow_request_is_408(void **state)
{
    (void)state;
    char raw[1024];
    const char *body = "{\"purpose\":\"bank.remote-id\",\"templates\":[]}";
    int len = snprintf(raw, sizeof raw,
                       "POST /v1/subjects/00000000000000000000000000000000/verify HTTP/1.1\r\n"
                       "Host: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       bank_key, strlen(body), body);
    http_resp r;
    /* The body arrives in pieces 250 ms apart: longer than request_timeout_ms = 400. */
    http_raw(srv.port, raw, (size_t)len, (size_t)len - 20, 600, &r);
    assert_http(&r, 408);
    assert_string_equal(http_error_code(&r), "request_timeout");
    http_resp_free(&r);
}

typedef struct burst_arg {
    int port;
    unsigned seed;
    int status[8];
} burst_arg;

static void *burst(void *p)
{
    burst_arg *a = p;
    for (int i = 0; i < 8; i++) {
        char t[2048], body[2400], auth[160];
        tmpl_json(900000 + (uint64_t)(rand_r(&a->seed) % 100000), 0, t, sizeof t);
        snprintf(body, sizeof body,
                 "{\"segment\":\"city\",\"purpose\":\"bank.remote-id\",\"templates\":[%s]}", t);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", gate_key);
        const char *h[] = {auth, "Content-Type: application/json", NULL};
        http_resp r;
        a->status[i] = http_do(a->port, "POST", "/v1/identify", h, body, &r);
        http_resp_free(&r);
    }
    return NULL;
}

static void test_saturation_answers_503(void **state)
{
    (void)state;
    /* A second abisd on the same store that handles one request at a time. */
    abisd_proc one;
    const char *args[] = {"--max-inflight", "1",      "--threads", "8", "--log-requests", "false",
                          "--rate-limit",   "100000", NULL};
    assert_int_equal(abisd_proc_start(&one, dir, args), 0);
    pthread_t th[8];
    burst_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i].port = one.port;
        a[i].seed = (unsigned)i + 1;
        pthread_create(&th[i], NULL, burst, &a[i]);
    }
    int ok = 0, busy = 0, other = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        for (int k = 0; k < 8; k++) {
            if (a[i].status[k] == 200)
                ok++;
            else if (a[i].status[k] == 503)
                busy++;
            else
                other++;
        }
    }
    assert_int_equal(abisd_proc_stop(&one, SIGTERM), 0);
    if (!(ok > 0 && busy > 0 && other == 0))
        fail_msg("%d ok, %d 503, %d other", ok, busy, other);
}

/* ---- last: shutdown and the audit log ------------------------------------------------------- */

static int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_sigterm_finishes_requests_in_flight_and_refuses_new_ones(void **state)
{
    (void)state;
    /* A request half sent when SIGTERM comes: it is in flight. */
    uint64_t p = next_person++;
    char token[33], t[2048], body[2400], head[600];
    enrol(bank_key, "city", p, token);
    tmpl_json(p, 1, t, sizeof t);
    snprintf(body, sizeof body, "{\"purpose\":\"bank.remote-id\",\"templates\":[%s]}", t);
    snprintf(head, sizeof head,
             "POST /v1/subjects/%s/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             token, bank_key, strlen(body));
    int fd = http_begin(srv.port, head, strlen(head));
    assert_true(fd >= 0);
    struct timespec pause = {0, 100 * 1000000};
    nanosleep(&pause, NULL);
    kill(srv.pid, SIGTERM);
    nanosleep(&pause, NULL);
    /* New connections are refused... */
    http_resp r;
    assert_int_equal(http_do(srv.port, "GET", "/v1/health", NULL, NULL, &r), 0);
    http_resp_free(&r);
    /* ...and the one in flight is finished. */
    http_end(fd, body, strlen(body), &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "decision")), "match");
    http_resp_free(&r);
}

static void test_sigterm_stops_gracefully_and_the_audit_holds(void **state)
{
    (void)state;
    assert_int_equal(abisd_proc_stop(&srv, SIGTERM), 0);
    http_resp r;
    assert_int_equal(http_do(srv.port, "GET", "/v1/health", NULL, NULL, &r), 0);
    http_resp_free(&r);
    char *log = abis_test_slurp(srv.log);
    assert_non_null(strstr(log, "\"msg\":\"stopped\""));
    /* Never an API key in the log. */
    assert_null(strstr(log, bank_key + 22));
    assert_null(strstr(log, gate_key + 22));
    free(log);

    abis_engine *e = NULL;
    abis_error err = {0};
    abis_open_options o = {.data_dir = dir, .read_only = 1};
    assert_status(abis_engine_open(&o, &e, &err), ABIS_OK, &err);
    abis_audit_report rep;
    assert_status(abis_audit_verify(e, &rep, &err), ABIS_OK, &err);
    assert_true(rep.ok);
    assert_int_equal(rep.unsealed, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_status(abis_audit_export(e, f, &err), ABIS_OK, &err);
    fclose(f);
    abis_engine_close(e);
    char *audit = abis_test_slurp(path);
    /* every 401 (five) and the 403s of the refusal test, among others */
    assert_true(count_in(audit, "\"operation\":\"authenticate\",") >= 5);
    assert_true(count_in(audit, "\"outcome\":\"forbidden\"") >= 8);
    assert_true(count_in(audit, "\"actor\":\"client:bank\"") > 0);
    assert_null(strstr(audit, bank_key + 22));
    free(audit);
}

int main(void)
{
    if (!getenv("ABISD")) {
        fprintf(stderr, "test_server: ABISD is not set (ctest sets it); skipping\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_metrics_need_no_key),
        cmocka_unit_test(test_unknown_path_is_404_and_wrong_method_405),
        cmocka_unit_test(test_enrol_verify_identify),
        cmocka_unit_test(test_raw_scores_only_with_the_right),
        cmocka_unit_test(test_pseudonyms_differ_between_two_clients),
        cmocka_unit_test(test_not_yours_answers_like_absent),
        cmocka_unit_test(test_template_add),
        cmocka_unit_test(test_captures_travel_as_image_b64),
        cmocka_unit_test(test_fingerprint_images_travel_as_image_b64),
        cmocka_unit_test(test_person_view_history_consent_lock_delete),
        cmocka_unit_test(test_missing_malformed_unknown_and_revoked_keys_get_401),
        cmocka_unit_test(test_each_authorisation_refusal_is_403),
        cmocka_unit_test(test_bad_input_is_400_with_the_reason_and_writes_nothing),
        cmocka_unit_test(test_idempotent_retry_returns_the_first_result),
        cmocka_unit_test(test_rate_limit_answers_429_with_retry_after),
        cmocka_unit_test(test_body_too_large_is_413),
        cmocka_unit_test(test_slow_request_is_408),
        cmocka_unit_test(test_saturation_answers_503),
        cmocka_unit_test(test_sigterm_finishes_requests_in_flight_and_refuses_new_ones),
        cmocka_unit_test(test_sigterm_stops_gracefully_and_the_audit_holds),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
