/* test_nn_weights.c: the TensorFlow.js weights loader (src/nn/weights.c) on
 * manifests and shards written here: every storage type, groups of several
 * shards, and each way the files can be wrong; then the real face-api
 * manifests when `make models` has installed them. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/weights.h"

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

/* A model "m": group 0 in two shards holds a uint8-quantised [2, 3] tensor,
 * an int32 scalar and a float32 [2] vector; group 1 a float16 [3] vector. */
static const char *manifest =
    "[{\"paths\": [\"m.bin\", \"m2.bin\"], \"weights\": ["
    "{\"name\": \"conv/filters\", \"shape\": [2, 3], \"dtype\": \"float32\","
    " \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.1, \"min\": -1.5}},"
    "{\"name\": \"const\", \"shape\": [], \"dtype\": \"int32\"},"
    "{\"name\": \"bias\", \"shape\": [2], \"dtype\": \"float32\"}]},"
    "{\"paths\": [\"h.bin\"], \"weights\": ["
    "{\"name\": \"half\", \"shape\": [3], \"dtype\": \"float32\","
    " \"quantization\": {\"dtype\": \"float16\"}}]}]";

static void write_model(const char *dir)
{
    unsigned char g0[6 + 4 + 8] = {0, 1, 2, 10, 200, 255, /* codes */ 7, 0, 0, 0 /* int32 */};
    float bias[2] = {0.25f, -3.5f};
    memcpy(g0 + 10, bias, sizeof bias);
    write_text(dir, "m-weights_manifest.json", manifest);
    write_file(dir, "m.bin", g0, 7); /* the group split across two shards */
    write_file(dir, "m2.bin", g0 + 7, sizeof g0 - 7);
    unsigned char h[6] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x35}; /* 1.0, -2.0, 0.3125 */
    write_file(dir, "h.bin", h, sizeof h);
}

static void test_loads_every_storage_type(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("nnw");
    write_model(dir);
    nn_weights *w;
    abis_error err = {0};
    assert_status(nn_weights_load(dir, "m", &w, &err), ABIS_OK, &err);
    assert_int_equal(nn_weights_count(w), 4);
    assert_int_equal(nn_weights_values(w), 6 + 2 + 3);
    int shape[2] = {2, 3};
    const float *f = nn_weights_get(w, "conv/filters", 2, shape, &err);
    assert_non_null(f);
    static const unsigned char q[6] = {0, 1, 2, 10, 200, 255};
    for (int i = 0; i < 6; i++) /* q * scale + min in double, rounded to float (as tfjs) */
        assert_true(f[i] == (float)(q[i] * 0.1 + -1.5));
    const float *b = nn_weights_vec(w, "bias", 2, &err);
    assert_non_null(b);
    assert_true(b[0] == 0.25f && b[1] == -3.5f);
    const float *h = nn_weights_vec(w, "half", 3, &err);
    assert_non_null(h);
    assert_true(h[0] == 1.0f && h[1] == -2.0f && h[2] == 0.3125f);
    /* 8-bit codes travel with a convolution filter */
    nn_conv c;
    assert_status(nn_weights_conv(w, "conv/filters", 1, 1, 2, 3, &c, &err), ABIS_E_INVALID, &err);
    int rank;
    const int *dims = nn_weights_shape(w, "conv/filters", &rank);
    assert_int_equal(rank, 2);
    assert_int_equal(dims[1], 3);
    nn_weights_free(w);
    abis_test_rmdir(dir);
}

static void test_wrong_shape_and_missing_tensor_are_named(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("nnw");
    write_model(dir);
    nn_weights *w;
    abis_error err = {0};
    assert_status(nn_weights_load(dir, "m", &w, &err), ABIS_OK, &err);
    int shape[2] = {3, 2};
    assert_null(nn_weights_get(w, "conv/filters", 2, shape, &err));
    assert_non_null(strstr(err.message, "'conv/filters' has shape [2, 3], expected [3, 2]"));
    assert_null(nn_weights_get(w, "nope", 0, NULL, &err));
    assert_non_null(strstr(err.message, "'nope' is missing"));
    assert_null(nn_weights_get(w, "const", 0, NULL, &err)); /* not float */
    assert_non_null(strstr(err.message, "not float32"));
    nn_weights_free(w);
    abis_test_rmdir(dir);
}

/* Load model "m" from `dir` and expect failure with `want` in the message. */
static void expect_failure(const char *dir, const char *want)
{
    nn_weights *w = (nn_weights *)1;
    abis_error err = {0};
    assert_int_not_equal(nn_weights_load(dir, "m", &w, &err), ABIS_OK);
    assert_null(w);
    if (!strstr(err.message, want))
        fail_msg("message '%s' does not say '%s'", err.message, want);
}

static void test_missing_files_are_named(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("nnw");
    expect_failure(dir, "m-weights_manifest.json");
    write_model(dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/m2.bin", dir);
    assert_int_equal(unlink(path), 0);
    expect_failure(dir, "m2.bin");
    abis_test_rmdir(dir);
}

static void test_truncated_and_overlong_shards_are_refused(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("nnw");
    write_model(dir);
    unsigned char short_shard[3] = {1, 2, 3};
    write_file(dir, "m2.bin", short_shard, sizeof short_shard);
    expect_failure(dir, "truncated");
    write_model(dir);
    unsigned char h[8] = {0};
    write_file(dir, "h.bin", h, sizeof h);
    expect_failure(dir, "hold 8 bytes but the manifest describes 6");
    abis_test_rmdir(dir);
}

static void test_malformed_manifests_are_refused(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("nnw");
    write_model(dir);
    write_text(dir, "m-weights_manifest.json", "{\"not\": \"an array\"");
    expect_failure(dir, "not a weights manifest");
    write_text(dir, "m-weights_manifest.json", "[{\"paths\": [\"../m.bin\"], \"weights\": []}]");
    expect_failure(dir, "not a file name in the same folder");
    write_text(dir, "m-weights_manifest.json",
               "[{\"paths\": [\"m.bin\"], \"weights\": [{\"name\": \"x\", \"shape\": [1],"
               " \"dtype\": \"string\"}]}]");
    expect_failure(dir, "unsupported dtype 'string'");
    write_text(dir, "m-weights_manifest.json",
               "[{\"paths\": [\"m.bin\"], \"weights\": [{\"name\": \"x\", \"shape\": [1],"
               " \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"uint8\"}}]}]");
    expect_failure(dir, "lacks its scale or min");
    write_text(dir, "m-weights_manifest.json", "[{\"weights\": []}]");
    expect_failure(dir, "lacks paths or weights");
    abis_test_rmdir(dir);
}

/* The four networks' real manifests: every tensor decodes and the shards
 * hold exactly what the manifests describe. */
static void test_face_api_models_load(void **state)
{
    (void)state;
    const char *dir = getenv("ABIS_FACE_MODELS");
    char buf[1024];
    if (!dir) {
        snprintf(buf, sizeof buf, "%s/models/node_modules/@vladmandic/face-api/model",
                 getenv("ABIS_SOURCE_DIR") ? getenv("ABIS_SOURCE_DIR") : ".");
        dir = buf;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        print_message("face-api weights not installed at %s (make models): skipped\n", dir);
        skip();
    }
    static const struct {
        const char *model;
        size_t tensors, values;
    } models[] = {
        {"face_recognition_model", 117, 5614592},
        {"face_landmark_68_model", 49, 356840},
        {"tiny_face_detector_model", 19, 193321},
        {"ssd_mobilenetv1_model", 151, 5555521},
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        nn_weights *w;
        abis_error err = {0};
        assert_status(nn_weights_load(dir, models[i].model, &w, &err), ABIS_OK, &err);
        if (nn_weights_count(w) != models[i].tensors || nn_weights_values(w) != models[i].values)
            fail_msg("%s: %zu tensors, %zu values", models[i].model, nn_weights_count(w),
                     nn_weights_values(w));
        nn_weights_free(w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_every_storage_type),
        cmocka_unit_test(test_wrong_shape_and_missing_tensor_are_named),
        cmocka_unit_test(test_missing_files_are_named),
        cmocka_unit_test(test_truncated_and_overlong_shards_are_refused),
        cmocka_unit_test(test_malformed_manifests_are_refused),
        cmocka_unit_test(test_face_api_models_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
