/* test_nn_networks.c: each of the four face networks run whole by the
 * plain-loop reference operations and by the fast path (every product
 * kernel this CPU has), on a synthetic image drawn here: the outputs agree
 * to within float rounding.  Needs only the weights (make models); the
 * parity with face-api's JavaScript on real photos is test_face_parity.c. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/face_nets.h"
#include "nn/gemm.h"

static char models[1024];

static void need_models(void)
{
    const char *env = getenv("ABIS_FACE_MODELS");
    const char *src = getenv("ABIS_SOURCE_DIR") ? getenv("ABIS_SOURCE_DIR") : ".";
    if (env)
        snprintf(models, sizeof models, "%s", env);
    else
        snprintf(models, sizeof models, "%s/models/node_modules/@vladmandic/face-api/model", src);
    struct stat st;
    if (stat(models, &st) != 0) {
        print_message("face-api weights not installed at %s (make models): skipped\n", models);
        skip();
    }
}

/* A 200 x 160 picture: a light oval "face" with two dark "eyes" and a
 * "mouth" on a textured background -- enough structure to drive every
 * layer, no biometric data. */
static unsigned char *draw(int w, int h)
{
    unsigned char *p = malloc((size_t)w * h * 3);
    assert_non_null(p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double fx = (x - w / 2.0) / (w * 0.22), fy = (y - h / 2.0) / (h * 0.35);
            double v = 60 + 40 * sin(x * 0.3) * cos(y * 0.2);
            if (fx * fx + fy * fy < 1) {
                v = 190;
                double ex = fabs(fx) - 0.4, ey = fy + 0.25;
                if (ex * ex + ey * ey < 0.03)
                    v = 40;
                if (fabs(fx) < 0.35 && fabs(fy - 0.45) < 0.06)
                    v = 90;
            }
            for (int k = 0; k < 3; k++)
                p[((size_t)y * w + x) * 3 + k] = (unsigned char)fmin(255, v + 10 * k);
        }
    return p;
}

static const char *const kernels[] = {"blas", "avx2", "avx512"};

static void restore_kernel(void)
{
    if (nn_gemm_use("avx512") != 0 && nn_gemm_use("avx2") != 0)
        nn_gemm_use("blas");
}

static void test_descriptor_network_fast_matches_reference(void **state)
{
    (void)state;
    need_models();
    enum { W = 200, H = 160 };
    unsigned char *px = draw(W, H);
    nn_image img = {W, H, W * 3, px};
    nn_facerec *net;
    abis_error err = {0};
    assert_status(nn_facerec_load(models, &net, &err), ABIS_OK, &err);
    nn_ctx ref;
    nn_ctx_init(&ref, 1);
    float want[NN_DESCRIPTOR_DIM];
    assert_status(nn_facerec_describe(&ref, net, &img, 40, 20, 120, 130, want, &err), ABIS_OK,
                  &err);
    for (size_t k = 0; k < 3; k++) {
        if (nn_gemm_use(kernels[k]) != 0)
            continue;
        nn_ctx fast;
        nn_ctx_init(&fast, 0);
        float got[NN_DESCRIPTOR_DIM];
        assert_status(nn_facerec_describe(&fast, net, &img, 40, 20, 120, 130, got, &err), ABIS_OK,
                      &err);
        double diff = 0, norm = 0;
        for (int i = 0; i < NN_DESCRIPTOR_DIM; i++) {
            diff += (got[i] - want[i]) * (got[i] - want[i]);
            norm += want[i] * want[i];
        }
        if (sqrt(diff) > 1e-4 * sqrt(norm))
            fail_msg("%s: descriptor off by %g (norm %g)", kernels[k], sqrt(diff), sqrt(norm));
        nn_ctx_free(&fast);
    }
    restore_kernel();
    nn_ctx_free(&ref);
    nn_facerec_free(net);
    free(px);
}

static void test_landmark_network_fast_matches_reference(void **state)
{
    (void)state;
    need_models();
    enum { W = 200, H = 160 };
    unsigned char *px = draw(W, H);
    nn_image img = {W, H, W * 3, px};
    nn_landmarks *net;
    abis_error err = {0};
    assert_status(nn_landmarks_load(models, &net, &err), ABIS_OK, &err);
    nn_ctx ref, fast;
    nn_ctx_init(&ref, 1);
    nn_ctx_init(&fast, 0);
    float want[2 * NN_LANDMARKS], got[2 * NN_LANDMARKS];
    assert_status(nn_landmarks_run(&ref, net, &img, 50, 20, 100, 120, want, &err), ABIS_OK, &err);
    assert_status(nn_landmarks_run(&fast, net, &img, 50, 20, 100, 120, got, &err), ABIS_OK, &err);
    for (int i = 0; i < 2 * NN_LANDMARKS; i++)
        assert_float_equal(got[i], want[i], 1e-5); /* relative positions: 1e-5 of the region */
    nn_ctx_free(&ref);
    nn_ctx_free(&fast);
    nn_landmarks_free(net);
    free(px);
}

/* The same boxes from both implementations (at a low score threshold, so
 * that there are some on a drawing). */
static void compare_detections(const nn_detection *a, size_t na, const nn_detection *b, size_t nb)
{
    assert_true(na > 0);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_float_equal(a[i].score, b[i].score, 1e-4);
        assert_true(nn_box_iou(&a[i].box, &b[i].box) > 0.999);
    }
}

static void test_detectors_fast_match_reference(void **state)
{
    (void)state;
    need_models();
    enum { W = 200, H = 160 };
    unsigned char *px = draw(W, H);
    nn_image img = {W, H, W * 3, px};
    nn_tinyface *tiny;
    nn_ssd *ssd;
    abis_error err = {0};
    assert_status(nn_tinyface_load(models, &tiny, &err), ABIS_OK, &err);
    assert_status(nn_ssd_load(models, &ssd, &err), ABIS_OK, &err);
    nn_ctx ref, fast;
    nn_ctx_init(&ref, 1);
    nn_ctx_init(&fast, 0);
    nn_detection *a, *b;
    size_t na, nb;
    assert_status(nn_tinyface_detect(&ref, tiny, &img, 160, 0.05, &a, &na, &err), ABIS_OK, &err);
    assert_status(nn_tinyface_detect(&fast, tiny, &img, 160, 0.05, &b, &nb, &err), ABIS_OK, &err);
    compare_detections(a, na, b, nb);
    free(a);
    free(b);
    assert_status(nn_ssd_detect(&ref, ssd, &img, 0.05, 100, &a, &na, &err), ABIS_OK, &err);
    assert_status(nn_ssd_detect(&fast, ssd, &img, 0.05, 100, &b, &nb, &err), ABIS_OK, &err);
    compare_detections(a, na, b, nb);
    free(a);
    free(b);
    /* input sizes the tiny detector refuses */
    assert_int_equal(nn_tinyface_detect(&fast, tiny, &img, 100, 0.5, &a, &na, &err),
                     ABIS_E_INVALID);
    nn_ctx_free(&ref);
    nn_ctx_free(&fast);
    nn_tinyface_free(tiny);
    nn_ssd_free(ssd);
    free(px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_network_fast_matches_reference),
        cmocka_unit_test(test_landmark_network_fast_matches_reference),
        cmocka_unit_test(test_detectors_fast_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
