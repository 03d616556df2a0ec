/* test_nn_ops.c: the inference engine's operations (src/nn): each fast path
 * (im2col, Winograd, every product kernel this CPU has, packed and 8-bit
 * filters, the fused epilogue, the direct input sampler) against the
 * plain-loop reference, and the reference against values worked out by hand
 * from TensorFlow's definitions (padding, pooling, resizing). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_internal.h"
#include "nn/gemm.h"
#include "nn/nn.h"

static unsigned rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static nn_tensor random_tensor(nn_ctx *ctx, int h, int w, int c)
{
    nn_tensor t = nn_tensor_new(ctx, h, w, c);
    assert_non_null(t.d);
    for (size_t i = 0; i < nn_tensor_size(&t); i++)
        t.d[i] = frand();
    return t;
}

static float *random_floats(size_t n)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand();
    return v;
}

/* Largest |a - b| relative to the largest |b| (at least 1). */
static double max_rel_diff(const nn_tensor *a, const nn_tensor *b)
{
    assert_int_equal(a->h, b->h);
    assert_int_equal(a->w, b->w);
    assert_int_equal(a->c, b->c);
    double diff = 0, scale = 1;
    for (size_t i = 0; i < nn_tensor_size(a); i++) {
        diff = fmax(diff, fabs((double)a->d[i] - b->d[i]));
        scale = fmax(scale, fabs((double)b->d[i]));
    }
    return diff / scale;
}

static const char *const kernels[] = {"blas", "avx2", "avx512"};

/* Back to the best kernel after a test has tried each. */
static void restore_kernel(void)
{
    if (nn_gemm_use("avx512") != 0 && nn_gemm_use("avx2") != 0)
        nn_gemm_use("blas");
}

/* One convolution shape through every fast variant against the reference. */
static void check_conv(int h, int w, int cin, int cout, int k, int stride, nn_padding pad,
                       nn_act act, int quantised)
{
    nn_ctx ref, fast;
    nn_ctx_init(&ref, 1);
    nn_ctx_init(&fast, 0);
    nn_tensor x = random_tensor(&ref, h, w, cin);
    size_t nw = (size_t)k * k * cin * cout;
    float *wv = random_floats(nw);
    unsigned char *q = NULL;
    nn_conv f = {.kh = k, .kw = k, .cin = cin, .cout = cout, .w = wv};
    if (quantised) { /* codes the weights are restored from, as the models store them */
        q = malloc(nw);
        assert_non_null(q);
        f.q = q;
        f.q_scale = 0.01f;
        f.q_min = -1.2f;
        for (size_t i = 0; i < nw; i++) {
            q[i] = (unsigned char)(rand() & 0xff);
            wv[i] = (float)(q[i] * (double)f.q_scale + f.q_min);
        }
    }
    float *bias = random_floats((size_t)cout), *mul = random_floats((size_t)cout);
    float *add = random_floats((size_t)cout);
    nn_post post = {bias, mul, add, act};
    nn_tensor want = nn_conv_layer(&ref, &x, &f, stride, pad, &post);
    assert_non_null(want.d);
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        if (nn_gemm_use(kernels[i]) != 0)
            continue; /* not on this CPU */
        for (int prepared = 0; prepared < 2; prepared++) {
            nn_conv g = f;
            if (prepared) {
                abis_error err = {0};
                assert_status(nn_conv_prepare(&g, h, w, stride, &err), ABIS_OK, &err);
            }
            nn_tensor got = nn_conv_layer(&fast, &x, &g, stride, pad, &post);
            assert_non_null(got.d);
            double d = max_rel_diff(&got, &want);
            if (d > 2e-5)
                fail_msg("conv %dx%dx%d k%d s%d %s -> %d (%s, %s%s): off by %g", h, w, cin, k,
                         stride, pad == NN_SAME ? "same" : "valid", cout, kernels[i],
                         prepared ? "prepared" : "raw", quantised ? ", 8-bit" : "", d);
            nn_tensor_free(&got);
            nn_conv_release(&g);
        }
    }
    restore_kernel();
    nn_tensor_free(&want);
    nn_tensor_free(&x);
    free(wv);
    free(q);
    free(bias);
    free(mul);
    free(add);
    nn_ctx_free(&ref);
    nn_ctx_free(&fast);
}

static void test_conv_im2col_matches_reference(void **state)
{
    (void)state;
    check_conv(19, 17, 3, 16, 7, 2, NN_VALID, NN_ACT_RELU, 0);
    check_conv(12, 13, 5, 7, 3, 2, NN_SAME, NN_ACT_RELU6, 0);
    check_conv(9, 9, 8, 40, 3, 2, NN_VALID, NN_ACT_NONE, 1);
    check_conv(14, 10, 3, 16, 3, 1, NN_VALID, NN_ACT_LEAKY, 1); /* RGB: no Winograd */
}

static void test_conv_1x1_matches_reference(void **state)
{
    (void)state;
    check_conv(7, 5, 24, 33, 1, 1, NN_SAME, NN_ACT_RELU6, 0);
    check_conv(4, 4, 64, 12, 1, 1, NN_VALID, NN_ACT_NONE, 1);
}

static void test_conv_winograd_matches_reference(void **state)
{
    (void)state;
    /* even and odd sizes, same and valid, channel counts off the lane width */
    check_conv(17, 16, 16, 32, 3, 1, NN_SAME, NN_ACT_RELU, 0);
    check_conv(19, 21, 13, 10, 3, 1, NN_SAME, NN_ACT_NONE, 0);
    check_conv(18, 16, 8, 8, 3, 1, NN_VALID, NN_ACT_LEAKY, 1);
    check_conv(35, 35, 32, 32, 3, 1, NN_SAME, NN_ACT_RELU, 1);
}

static void test_conv_small_maps_skip_winograd(void **state)
{
    (void)state;
    nn_conv f = {.kh = 3, .kw = 3, .cin = 64, .cout = 64};
    assert_true(nn_conv_winograd(&f, 1, 17, 17));
    assert_false(nn_conv_winograd(&f, 1, 8, 8));
    assert_false(nn_conv_winograd(&f, 2, 35, 35));
    f.cin = 3;
    assert_false(nn_conv_winograd(&f, 1, 416, 416));
    check_conv(8, 8, 64, 64, 3, 1, NN_SAME, NN_ACT_RELU, 1);
}

/* A 3x3 convolution worked out by hand: SAME pads one zero all round, so
 * the corner output of an all-ones 3x3 input under an all-ones filter sums
 * the 4 pixels in reach. */
static void test_conv_reference_same_padding_by_hand(void **state)
{
    (void)state;
    nn_ctx ctx;
    nn_ctx_init(&ctx, 1);
    nn_tensor x = nn_tensor_new(&ctx, 3, 3, 1);
    for (int i = 0; i < 9; i++)
        x.d[i] = 1;
    float w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    nn_conv f = {.kh = 3, .kw = 3, .cin = 1, .cout = 1, .w = w};
    nn_tensor y = nn_conv2d_ref(&ctx, &x, &f, 1, NN_SAME);
    static const float want[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
    for (int i = 0; i < 9; i++)
        assert_float_equal(y.d[i], want[i], 0);
    nn_tensor_free(&y);
    /* stride 2 SAME on a 4-wide input: out 2, total padding 1, all of it after */
    nn_tensor x4 = nn_tensor_new(&ctx, 1, 4, 1);
    for (int i = 0; i < 4; i++)
        x4.d[i] = (float)(i + 1);
    float w3[3] = {1, 10, 100};
    nn_conv f3 = {.kh = 1, .kw = 3, .cin = 1, .cout = 1, .w = w3};
    y = nn_conv2d_ref(&ctx, &x4, &f3, 2, NN_SAME);
    assert_int_equal(y.w, 2);
    assert_float_equal(y.d[0], 1 + 20 + 300, 0);
    assert_float_equal(y.d[1], 3 + 40, 0);
    nn_tensor_free(&y);
    nn_tensor_free(&x4);
    nn_tensor_free(&x);
    nn_ctx_free(&ctx);
}

static void test_depthwise_matches_reference(void **state)
{
    (void)state;
    nn_ctx ref, fast;
    nn_ctx_init(&ref, 1);
    nn_ctx_init(&fast, 0);
    static const int shapes[][4] = {{13, 11, 24, 1}, {16, 16, 32, 2}, {9, 7, 5, 2}};
    for (size_t s = 0; s < 3; s++) {
        int h = shapes[s][0], w = shapes[s][1], c = shapes[s][2], stride = shapes[s][3];
        nn_tensor x = random_tensor(&ref, h, w, c);
        float *wv = random_floats((size_t)9 * c), *mul = random_floats((size_t)c);
        float *add = random_floats((size_t)c);
        nn_conv f = {.kh = 3, .kw = 3, .cin = c, .cout = 1, .w = wv};
        nn_post post = {NULL, mul, add, NN_ACT_RELU6};
        for (int pad = 0; pad < 2; pad++) {
            nn_tensor want = nn_depthwise_layer(&ref, &x, &f, stride, (nn_padding)pad, &post);
            nn_tensor got = nn_depthwise_layer(&fast, &x, &f, stride, (nn_padding)pad, &post);
            assert_true(max_rel_diff(&got, &want) < 1e-5);
            nn_tensor_free(&want);
            nn_tensor_free(&got);
        }
        /* separable = depthwise then 1x1 */
        float *pw = random_floats((size_t)c * 20), *pbias = random_floats(20);
        nn_conv p = {.kh = 1, .kw = 1, .cin = c, .cout = 20, .w = pw};
        nn_post ppost = {pbias, NULL, NULL, NN_ACT_LEAKY};
        nn_tensor want = nn_separable_layer(&ref, &x, &f, &p, stride, NN_SAME, &ppost);
        nn_tensor got = nn_separable_layer(&fast, &x, &f, &p, stride, NN_SAME, &ppost);
        assert_int_equal(got.c, 20);
        assert_true(max_rel_diff(&got, &want) < 2e-5);
        nn_tensor_free(&want);
        nn_tensor_free(&got);
        nn_tensor_free(&x);
        free(wv);
        free(pw);
        free(pbias);
        free(mul);
        free(add);
    }
    nn_ctx_free(&ref);
    nn_ctx_free(&fast);
}

static void test_gemm_kernels_match_blas(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1}, {7, 33, 5}, {16, 256, 300}, {13, 12, 64}};
    for (size_t s = 0; s < 4; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = random_floats((size_t)m * k), *b = random_floats((size_t)k * n);
        float *want = calloc((size_t)m * n, sizeof(float)), *got = calloc((size_t)m * n, 4);
        float *pack = malloc(nn_gemm_packed_size(k, n) * sizeof(float));
        assert_true(want && got && pack);
        nn_gemm_pack(k, n, b, n, pack);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++)
                    sum += (double)a[i * k + p] * b[p * n + j];
                want[i * n + j] = (float)sum;
            }
        for (size_t kk = 0; kk < 3; kk++) {
            if (nn_gemm_use(kernels[kk]) != 0)
                continue;
            for (int packed = 0; packed < 2; packed++) {
                nn_gemm_b gb = {.b = b, .ldb = n, .pack = packed ? pack : NULL};
                memset(got, 0xff, (size_t)m * n * sizeof(float));
                nn_gemm(m, n, k, a, k, &gb, NULL, got, n, NULL);
                for (int i = 0; i < m * n; i++)
                    if (fabsf(got[i] - want[i]) > 1e-4f * (1 + fabsf(want[i])))
                        fail_msg("%s %dx%dx%d: C[%d] = %g, want %g", kernels[kk], m, n, k, i,
                                 got[i], want[i]);
            }
        }
        free(a);
        free(b);
        free(want);
        free(got);
        free(pack);
    }
    restore_kernel();
}

static void test_pooling_by_hand(void **state)
{
    (void)state;
    nn_ctx ctx;
    nn_ctx_init(&ctx, 1);
    /* 3x3 single channel 1..9 */
    nn_tensor x = nn_tensor_new(&ctx, 3, 3, 1);
    for (int i = 0; i < 9; i++)
        x.d[i] = (float)(i + 1);
    /* 2x2 stride 2 SAME: out 2x2, padding after; windows clipped to the image */
    nn_tensor m = nn_max_pool(&ctx, &x, 2, 2, NN_SAME);
    static const float wmax[4] = {5, 6, 8, 9};
    nn_tensor a = nn_avg_pool(&ctx, &x, 2, 2, NN_SAME);
    static const float wavg[4] = {3, 4.5f, 7.5f, 9};
    for (int i = 0; i < 4; i++) {
        assert_float_equal(m.d[i], wmax[i], 0);
        assert_float_equal(a.d[i], wavg[i], 1e-6);
    }
    nn_tensor_free(&m);
    nn_tensor_free(&a);
    /* 2x2 stride 2 VALID drops the last row and column */
    a = nn_avg_pool(&ctx, &x, 2, 2, NN_VALID);
    assert_int_equal(a.h, 1);
    assert_float_equal(a.d[0], 3, 1e-6);
    nn_tensor_free(&a);
    /* 2x2 stride 1 SAME keeps the size (tiny-yolov2's last pool) */
    m = nn_max_pool(&ctx, &x, 2, 1, NN_SAME);
    assert_int_equal(m.h, 3);
    assert_float_equal(m.d[8], 9, 0);
    assert_float_equal(m.d[0], 5, 0);
    nn_tensor_free(&m);
    nn_tensor_free(&x);
    nn_ctx_free(&ctx);
}

static void test_elementwise_by_hand(void **state)
{
    (void)state;
    nn_ctx ctx;
    nn_ctx_init(&ctx, 1);
    nn_tensor x = nn_tensor_new(&ctx, 1, 2, 2);
    float v[4] = {-2, 3, 7, -0.5f};
    memcpy(x.d, v, sizeof v);
    nn_tensor y = nn_tensor_new(&ctx, 1, 2, 2);
    memcpy(y.d, v, sizeof v);
    nn_activate(&y, NN_ACT_RELU6);
    assert_float_equal(y.d[0], 0, 0);
    assert_float_equal(y.d[2], 6, 0);
    memcpy(y.d, v, sizeof v);
    nn_activate(&y, NN_ACT_LEAKY);
    assert_float_equal(y.d[0], -0.2f, 1e-6);
    assert_float_equal(y.d[1], 3, 0);
    float bias[2] = {1, 2}, mul[2] = {2, 3}, add[2] = {0.5f, -1};
    memcpy(y.d, v, sizeof v);
    nn_bias_add(&y, bias);
    nn_channel_affine(&y, mul, add);
    assert_float_equal(y.d[0], (-2 + 1) * 2 + 0.5f, 1e-6);
    assert_float_equal(y.d[3], (-0.5f + 2) * 3 - 1, 1e-6);
    nn_add(&y, &x, NN_ACT_RELU);
    assert_float_equal(y.d[0], 0, 0);
    nn_tensor p = nn_pad_channels(&ctx, &x, 5);
    assert_int_equal(p.c, 5);
    assert_float_equal(p.d[5 + 1], -0.5f, 0);
    assert_float_equal(p.d[4], 0, 0);
    nn_tensor_free(&p);
    p = nn_pad(&ctx, &x, 1, 0, 0, 2);
    assert_int_equal(p.h, 2);
    assert_int_equal(p.w, 4);
    assert_float_equal(p.d[(4 + 1) * 2], 7, 0);
    nn_tensor_free(&p);
    float mean[2];
    nn_mean_hw(&x, mean);
    assert_float_equal(mean[0], 2.5f, 1e-6);
    float g[2] = {1, 2}, b[2] = {0, 1}, mu[2] = {1, 0}, var[2] = {4, 1}, fm[2], fa[2];
    nn_batchnorm_fold(mu, var, g, b, 0, 2, fm, fa);
    assert_float_equal(3 * fm[0] + fa[0], (3 - 1) / 2.0f * 1 + 0, 1e-6);
    assert_float_equal(nn_sigmoid(0), 0.5f, 1e-7);
    nn_tensor_free(&x);
    nn_tensor_free(&y);
    nn_ctx_free(&ctx);
}

static void test_matmul_matches_reference(void **state)
{
    (void)state;
    nn_ctx fast;
    nn_ctx_init(&fast, 0);
    float *in = random_floats(256), *w = random_floats(256 * 136), *bias = random_floats(136);
    float want[136], got[136];
    nn_matmul_ref(in, 256, w, bias, 136, want);
    nn_matmul(&fast, in, 256, w, bias, 136, got);
    for (int i = 0; i < 136; i++)
        assert_float_equal(got[i], want[i], 1e-4);
    free(in);
    free(w);
    free(bias);
    nn_ctx_free(&fast);
}

/* tf.image.resizeBilinear(alignCorners false, halfPixelCenters false) of
 * [0, 10] to 4 samples at 0, 0.5, 1 (then the edge): 0, 5, 10, 10. */
static void test_resize_bilinear_by_hand(void **state)
{
    (void)state;
    nn_ctx ctx;
    nn_ctx_init(&ctx, 1);
    nn_tensor x = nn_tensor_new(&ctx, 1, 2, 1);
    x.d[0] = 0;
    x.d[1] = 10;
    nn_tensor y = nn_resize_bilinear(&ctx, &x, 1, 4);
    static const float want[4] = {0, 5, 10, 10};
    for (int i = 0; i < 4; i++)
        assert_float_equal(y.d[i], want[i], 1e-6);
    nn_tensor_free(&y);
    nn_tensor_free(&x);
    nn_ctx_free(&ctx);
}

/* The network input: region, padding to a square (centred or not), resize;
 * the fast sampler against the reference steps, and the padding by hand. */
static void test_input_from_image_matches_reference(void **state)
{
    (void)state;
    enum { W = 61, H = 47 };
    unsigned char *rgb = malloc(W * H * 3);
    assert_non_null(rgb);
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (unsigned char)(rand() & 0xff);
    nn_image img = {W, H, W * 3, rgb};
    nn_ctx ref, fast;
    nn_ctx_init(&ref, 1);
    nn_ctx_init(&fast, 0);
    static const int regions[][4] = {{0, 0, W, H}, {5, 3, 20, 31}, {10, 10, 33, 33}, {2, 1, 9, 4}};
    for (size_t r = 0; r < 4; r++)
        for (int center = 0; center < 2; center++)
            for (int size = 16; size <= 64; size += 48) {
                const int *g = regions[r];
                nn_tensor a = nn_input_from_image(&ref, &img, g[0], g[1], g[2], g[3], size, center);
                nn_tensor b =
                    nn_input_from_image(&fast, &img, g[0], g[1], g[2], g[3], size, center);
                assert_non_null(a.d);
                assert_true(max_rel_diff(&b, &a) == 0);
                nn_tensor_free(&a);
                nn_tensor_free(&b);
            }
    /* a 4 wide, 1 high region at its own size... padded to 4x4: centred puts
     * round(3 / 2) = 2 rows after it and 1 before; not centred, 3 after. */
    for (int center = 0; center < 2; center++) {
        nn_tensor t = nn_input_from_image(&fast, &img, 0, 0, 4, 1, 4, center);
        int row = center ? 1 : 0;
        for (int y = 0; y < 4; y++)
            for (int i = 0; i < 12; i++)
                assert_float_equal(t.d[y * 12 + i], y == row ? rgb[i] : 0, 0);
        nn_tensor_free(&t);
    }
    nn_ctx_free(&ref);
    nn_ctx_free(&fast);
    free(rgb);
}

static void test_failure_is_sticky(void **state)
{
    (void)state;
    nn_ctx ctx;
    nn_ctx_init(&ctx, 0);
    nn_tensor x = nn_tensor_new(&ctx, 0, 4, 4); /* an impossible shape fails */
    assert_null(x.d);
    assert_true(ctx.failed);
    nn_tensor y = nn_max_pool(&ctx, &x, 2, 2, NN_SAME);
    assert_null(y.d);
    assert_null(nn_scratch(&ctx, 10));
    nn_ctx_free(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_im2col_matches_reference),
        cmocka_unit_test(test_conv_1x1_matches_reference),
        cmocka_unit_test(test_conv_winograd_matches_reference),
        cmocka_unit_test(test_conv_small_maps_skip_winograd),
        cmocka_unit_test(test_conv_reference_same_padding_by_hand),
        cmocka_unit_test(test_depthwise_matches_reference),
        cmocka_unit_test(test_gemm_kernels_match_blas),
        cmocka_unit_test(test_pooling_by_hand),
        cmocka_unit_test(test_elementwise_by_hand),
        cmocka_unit_test(test_matmul_matches_reference),
        cmocka_unit_test(test_resize_bilinear_by_hand),
        cmocka_unit_test(test_input_from_image_matches_reference),
        cmocka_unit_test(test_failure_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
