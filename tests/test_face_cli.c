/* test_face_cli.c: face photos through the `abis` command and the engine:
 * enrol, verify and identify with --face-photo, refusals that store nothing,
 * the face options, and the promise that photos are never stored: no byte
 * sequence of a photo (file bytes or decoded pixels) reaches the data store,
 * the key store, the command's output or the audit log.  Skipped, with a
 * message, when the LFW photos or the weights (make models) are absent. */
#include "testutil.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "abis/face.h"
#include "modality/image.h"

static const char *cli_path;
static char *tmp;
static char data[4096];
static char lfw[1024];
static int ready; /* the photos and weights are there */

/* Every output the commands wrote (stdout and stderr), concatenated. */
static char *all_output;
static size_t all_output_len;

static void keep_output(const char *text)
{
    size_t n = strlen(text);
    char *grown = realloc(all_output, all_output_len + n + 1);
    assert_non_null(grown);
    all_output = grown;
    memcpy(all_output + all_output_len, text, n + 1);
    all_output_len += n;
}

/* Run `abis --data DATA ARGS...` (NULL-terminated), keeping its output. */
static int run(abis_test_run *r, ...)
{
    va_list ap;
    va_start(ap, r);
    abis_test_cli_v(r, cli_path, data, tmp, ap);
    va_end(ap);
    keep_output(r->out);
    keep_output(r->err);
    return r->status;
}

static int group_setup(void **state)
{
    (void)state;
    cli_path = getenv("ABIS_CLI");
    if (!cli_path) {
        print_message("ABIS_CLI is not set (run through ctest): skipped\n");
        return 0;
    }
    if (!abis_test_face_ready(lfw, sizeof lfw))
        return 0;
    tmp = abis_test_tmpdir("facecli");
    snprintf(data, sizeof data, "%s/var", tmp);
    unsetenv("ABIS_MASTER_KEY");
    abis_test_run r;
    const char *cmds[][12] = {
        {"init", NULL},
        {"segment", "add", "city", NULL},
        {"purpose", "add", "bank.remote-id", "--basis", "consent", "--fmr", "1e-2", NULL},
        {"modality", "add", "face", "--kind", "face", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char **c = cmds[i];
        if (run(&r, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], NULL) != 0) {
            fprintf(stderr, "setup '%s %s' failed: %s%s\n", c[0], c[1] ? c[1] : "", r.out, r.err);
            abis_test_run_free(&r);
            return -1;
        }
        abis_test_run_free(&r);
    }
    ready = 1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (tmp)
        abis_test_rmdir(tmp);
    free(all_output);
    return 0;
}

#define NEED_READY()                                                                               \
    do {                                                                                           \
        if (!ready)                                                                                \
            skip();                                                                                \
    } while (0)

static void test_modality_add_face_takes_no_dimension(void **state)
{
    (void)state;
    NEED_READY();
    abis_test_run r;
    run(&r, "modality", "add", "face2", "--kind", "face", "--dim", "64", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "face descriptors have 128 values"));
    abis_test_run_free(&r);
    run(&r, "modality", "list", "--json", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "\"kind\":\"face\""));
    abis_test_run_free(&r);
}

static void test_enroll_verify_identify_with_photos(void **state)
{
    (void)state;
    NEED_READY();
    abis_test_run r;
    run(&r, "enroll", "--segment", "city", "--ref", "ABEL", "--consent", "bank.remote-id",
        "--face-photo", abis_test_lfw_photo("Abel_Pacheco/Abel_Pacheco_0001.jpg"), NULL);
    assert_exit(&r, 0);
    abis_test_run_free(&r);
    run(&r, "enroll", "--segment", "city", "--ref", "LAURA", "--consent", "bank.remote-id",
        "--face-photo", abis_test_lfw_photo("Laura_Bush/Laura_Bush_0001.jpg"), NULL);
    assert_exit(&r, 0);
    abis_test_run_free(&r);
    /* the same person, another photo */
    run(&r, "verify", "city/ABEL", "--purpose", "bank.remote-id", "--face-photo",
        abis_test_lfw_photo("Abel_Pacheco/Abel_Pacheco_0004.jpg"), NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "match"));
    abis_test_run_free(&r);
    /* someone else */
    run(&r, "verify", "city/ABEL", "--purpose", "bank.remote-id", "--face-photo",
        abis_test_lfw_photo("Laura_Bush/Laura_Bush_0002.jpg"), NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.out, "no match"));
    abis_test_run_free(&r);
    run(&r, "identify", "--segment", "city", "--purpose", "bank.remote-id", "--json",
        "--face-photo", abis_test_lfw_photo("Laura_Bush/Laura_Bush_0002.jpg"), NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "\"LAURA\""));
    assert_null(strstr(r.out, "\"ABEL\""));
    abis_test_run_free(&r);
    /* enrolling the same photo again is found as a duplicate (another photo
     * of him scores below the strict default deduplication rate, 1e-6) */
    run(&r, "enroll", "--segment", "city", "--ref", "ABEL2", "--face-photo",
        abis_test_lfw_photo("Abel_Pacheco/Abel_Pacheco_0001.jpg"), NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "already enrolled"));
    abis_test_run_free(&r);
}

static void test_refused_photo_stores_nothing(void **state)
{
    (void)state;
    NEED_READY();
    char path[4200];
    snprintf(path, sizeof path, "%s/grey.png", tmp);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 200;
    im.height = 160;
    im.format = PNG_FORMAT_GRAY;
    unsigned char px[200 * 160];
    memset(px, 90, sizeof px);
    assert_true(png_image_write_to_file(&im, path, 0, px, 0, NULL));
    abis_test_run r;
    run(&r, "enroll", "--segment", "city", "--ref", "NOBODY", "--face-photo", path, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "no face found"));
    abis_test_run_free(&r);
    run(&r, "enroll", "--segment", "city", "--ref", "TWO", "--face-photo",
        abis_test_lfw_photo("Boris_Becker/Boris_Becker_0001.jpg"), NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "2 faces in the photo"));
    abis_test_run_free(&r);
    run(&r, "subject", "find", "--segment", "city", "--ref", "NOBODY", NULL);
    assert_int_not_equal(r.status, 0);
    abis_test_run_free(&r);
    run(&r, "subject", "find", "--segment", "city", "--ref", "TWO", NULL);
    assert_int_not_equal(r.status, 0);
    abis_test_run_free(&r);
    /* with the flag, the largest face is enrolled */
    run(&r, "enroll", "--segment", "city", "--ref", "TWO", "--face-option", "take_largest=1",
        "--face-photo", abis_test_lfw_photo("Boris_Becker/Boris_Becker_0001.jpg"), NULL);
    assert_exit(&r, 0);
    abis_test_run_free(&r);
}

static void test_face_options_on_the_command_line(void **state)
{
    (void)state;
    NEED_READY();
    abis_test_run r;
    run(&r, "verify", "city/LAURA", "--purpose", "bank.remote-id", "--face-option", "detector=tiny",
        "--face-photo", abis_test_lfw_photo("Laura_Bush/Laura_Bush_0003.jpg"), NULL);
    assert_int_not_equal(r.status, 2);
    abis_test_run_free(&r);
    run(&r, "verify", "city/LAURA", "--purpose", "bank.remote-id", "--face-option", "colour=1",
        "--face-photo", abis_test_lfw_photo("Laura_Bush/Laura_Bush_0003.jpg"), NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "unknown face option 'colour'"));
    abis_test_run_free(&r);
    run(&r, "verify", "city/LAURA", "--purpose", "bank.remote-id", "--face-option",
        "min_eye_distance=300", "--face-photo",
        abis_test_lfw_photo("Laura_Bush/Laura_Bush_0003.jpg"), NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "face refused: too small"));
    abis_test_run_free(&r);
    run(&r, "verify", "city/LAURA", "--purpose", "bank.remote-id", "--face-models",
        "/nonexistent/model", "--face-photo", abis_test_lfw_photo("Laura_Bush/Laura_Bush_0003.jpg"),
        NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "make models"));
    abis_test_run_free(&r);
    run(&r, "verify", "city/LAURA", "--purpose", "bank.remote-id", "--face-photo",
        "/nonexistent/photo.jpg", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "/nonexistent/photo.jpg"));
    abis_test_run_free(&r);
}

/* ---- no byte sequence of a photo anywhere ------------------------------------ */

static void test_photos_never_reach_store_keys_output_or_audit(void **state)
{
    (void)state;
    NEED_READY();
    static const char *used[] = {
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg",
        "Laura_Bush/Laura_Bush_0001.jpg",     "Laura_Bush/Laura_Bush_0002.jpg",
        "Laura_Bush/Laura_Bush_0003.jpg",     "Boris_Becker/Boris_Becker_0001.jpg"};
    abis_test_windows *s = abis_test_windows_new();
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
        abis_test_windows_add_photo(s, abis_test_lfw_photo(used[i]));
    /* the audit log, exported */
    abis_test_run r;
    char audit[4200];
    snprintf(audit, sizeof audit, "%s/audit.jsonl", tmp);
    run(&r, "audit", "export", "--output", audit, NULL);
    assert_exit(&r, 0);
    abis_test_run_free(&r);
    int found = 0;
    size_t len;
    unsigned char *b = abis_test_read_file(audit, &len);
    assert_non_null(b);
    assert_true(len > 100);
    found |= abis_test_windows_find(s, b, len, "audit export");
    free(b);
    /* the data directory: data store, key store, WAL files */
    found |= abis_test_windows_find_in_dir(s, data);
    /* everything the commands printed */
    found |= abis_test_windows_find(s, (const unsigned char *)all_output, all_output_len,
                                    "command output");
    /* and the test can see a leak: a photo's bytes in a file are found */
    size_t plen;
    unsigned char *p = abis_test_read_file(abis_test_lfw_photo(used[0]), &plen);
    assert_true(abis_test_windows_find(s, p + plen / 2, 64, "control (the middle of a photo)"));
    free(p);
    abis_test_windows_free(s);
    assert_false(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modality_add_face_takes_no_dimension),
        cmocka_unit_test(test_enroll_verify_identify_with_photos),
        cmocka_unit_test(test_refused_photo_stores_nothing),
        cmocka_unit_test(test_face_options_on_the_command_line),
        cmocka_unit_test(test_photos_never_reach_store_keys_output_or_audit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
