/* test_server_face.c: face photos through abisd: a real abisd on a loopback
 * port, LFW photos sent as "image_b64" to enrol, verify and identify for a
 * modality of kind face, a photo the pipeline refuses answered 400 with the
 * reason and nothing stored -- and no byte sequence of any photo in the
 * data store, the key store, abisd's log (every request logged) or the
 * audit log.  Skipped, with a message, when the LFW photos or the weights
 * (make models) are absent. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "abis/client.h"
#include "abis/face.h"
#include "httpc.h"
#include "testutil.h"

static char *dir;
static abisd_proc srv;
static char key[ABIS_API_KEY_LEN + 1];
static char lfw[1024];
static int ready;

static int group_setup(void **state)
{
    (void)state;
    if (!abis_test_face_ready(lfw, sizeof lfw))
        return 0;
    abis_error err = {0};
    dir = abis_test_tmpdir("srvface");
    unsetenv("ABIS_MASTER_KEY");
    abis_engine *e = NULL;
    abis_open_options o = {.data_dir = dir, .actor = "test"};
    if (abis_store_init(dir, &err) != ABIS_OK || abis_engine_open(&o, &e, &err) != ABIS_OK)
        fail_msg("%s", err.message);
    abis_purpose_def p = {
        .name = "bank.remote-id", .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-2};
    const char *segment = "city", *purposes[] = {"bank.remote-id"};
    abis_client_def c = {.name = "bank",
                         .segments = &segment,
                         .n_segments = 1,
                         .purposes = purposes,
                         .n_purposes = 1,
                         .operations = ABIS_CLIENT_OPS_ALL};
    if (abis_segment_add(e, NULL, "city", &err) != ABIS_OK ||
        abis_purpose_add(e, NULL, &p, &err) != ABIS_OK ||
        abis_modality_add(e, NULL, "portrait", "face", 0, &err) != ABIS_OK ||
        abis_client_add(e, NULL, &c, key, &err) != ABIS_OK)
        fail_msg("%s", err.message);
    abis_engine_close(e);
    const char *args[] = {"--log-requests", "true", NULL};
    if (abisd_proc_start(&srv, dir, args) != 0)
        return -1;
    ready = 1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (srv.pid > 0)
        abisd_proc_stop(&srv, SIGTERM);
    if (dir)
        abis_test_rmdir(dir);
    return 0;
}

/* POST `path` with {"...": PREFIX, "templates": [{"modality": "portrait",
 * "image_b64": photo}]} . */
static int post_photo(const char *path, const char *prefix, const char *file, http_resp *r)
{
    size_t n;
    unsigned char *b = abis_test_read_file(file, &n);
    assert_non_null(b);
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(cap), *body = malloc(cap + 512);
    assert_true(b64 && body);
    sodium_bin2base64(b64, cap, b, n, sodium_base64_VARIANT_ORIGINAL);
    snprintf(body, cap + 512,
             "{%s,\"templates\":[{\"modality\":\"portrait\",\"image_b64\":\"%s\"}]}", prefix, b64);
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    int status = http_do(srv.port, "POST", path, h, body, r);
    free(b);
    free(b64);
    free(body);
    return status;
}

#define assert_http(r, want)                                                                       \
    do {                                                                                           \
        if ((r)->status != (want))                                                                 \
            fail_msg("HTTP %d, wanted %d: %s", (r)->status, (want), (r)->body ? (r)->body : "");   \
    } while (0)

static void test_photos_enrol_verify_and_identify_over_http(void **state)
{
    (void)state;
    if (!ready)
        skip();
    http_resp r;
    post_photo("/v1/subjects", "\"segment\":\"city\",\"consents\":[\"bank.remote-id\"]",
               abis_test_lfw_photo("Abel_Pacheco/Abel_Pacheco_0001.jpg"), &r);
    assert_http(&r, 201);
    char token[33], path[128];
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(r.json, "subject_id")));
    http_resp_free(&r);
    snprintf(path, sizeof path, "/v1/subjects/%s/verify", token);
    post_photo(path, "\"purpose\":\"bank.remote-id\"",
               abis_test_lfw_photo("Abel_Pacheco/Abel_Pacheco_0004.jpg"), &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "decision")), "match");
    http_resp_free(&r);
    post_photo(path, "\"purpose\":\"bank.remote-id\"",
               abis_test_lfw_photo("Laura_Bush/Laura_Bush_0002.jpg"), &r);
    assert_http(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "decision")), "no_match");
    http_resp_free(&r);
    post_photo("/v1/identify", "\"segment\":\"city\",\"purpose\":\"bank.remote-id\"",
               abis_test_lfw_photo("Abel_Pacheco/Abel_Pacheco_0002.jpg"), &r);
    assert_http(&r, 200);
    assert_non_null(strstr(r.body, token));
    http_resp_free(&r);
}

static void test_refused_photo_is_400_with_the_reason(void **state)
{
    (void)state;
    if (!ready)
        skip();
    http_resp r;
    post_photo("/v1/subjects", "\"segment\":\"city\",\"consents\":[\"bank.remote-id\"]",
               abis_test_lfw_photo("Boris_Becker/Boris_Becker_0001.jpg"), &r);
    assert_http(&r, 400);
    assert_non_null(strstr(r.body, "2 faces in the photo"));
    http_resp_free(&r);
}

static void test_photos_never_reach_store_keys_log_or_audit(void **state)
{
    (void)state;
    if (!ready)
        skip();
    static const char *used[] = {
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0002.jpg",
        "Abel_Pacheco/Abel_Pacheco_0004.jpg", "Laura_Bush/Laura_Bush_0002.jpg",
        "Boris_Becker/Boris_Becker_0001.jpg"};
    abis_test_windows *s = abis_test_windows_new();
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
        abis_test_windows_add_photo(s, abis_test_lfw_photo(used[i]));
    int found = abis_test_windows_find_in_dir(s, dir); /* stores, WAL files */
    size_t len;
    unsigned char *log = abis_test_read_file(srv.log, &len);
    assert_non_null(log);
    assert_true(len > 0); /* every request was logged */
    found |= abis_test_windows_find(s, log, len, "abisd's log");
    free(log);
    /* the audit log, exported through the engine (abisd holds the store:
     * open it read-only beside it) */
    abis_engine *e = NULL;
    abis_error err = {0};
    abis_open_options o = {.data_dir = dir, .read_only = 1};
    assert_status(abis_engine_open(&o, &e, &err), ABIS_OK, &err);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    assert_status(abis_audit_export(e, f, &err), ABIS_OK, &err);
    fclose(f);
    abis_engine_close(e);
    assert_true(n > 100);
    found |= abis_test_windows_find(s, (const unsigned char *)buf, n, "audit export");
    free(buf);
    abis_test_windows_free(s);
    assert_false(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_photos_enrol_verify_and_identify_over_http),
        cmocka_unit_test(test_refused_photo_is_400_with_the_reason),
        cmocka_unit_test(test_photos_never_reach_store_keys_log_or_audit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
