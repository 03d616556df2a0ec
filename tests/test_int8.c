/* test_int8.c: int8 quantisation and the int8 kernels (src/match/int8.h):
 * every kernel this CPU runs returns the scalar reference's integers exactly,
 * on random and extreme values, every dimension from 0 to 300 and some past
 * one tile pass, unaligned rows, index lists, and empty and one-row scans. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match/int8.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Values in [-127, 127]; mode 0 random, 1 all +127, 2 all -127, 3 alternating
 * +-127, 4 zeros. */
static void fill(int8_t *q, size_t n, int mode)
{
    for (size_t i = 0; i < n; i++) {
        switch (mode) {
        case 0: q[i] = (int8_t)((int)(rnd() % 255) - 127); break;
        case 1: q[i] = 127; break;
        case 2: q[i] = -127; break;
        case 3: q[i] = (i & 1) ? 127 : -127; break;
        default: q[i] = 0; break;
        }
    }
}

static int64_t dot_ref(const int8_t *a, const int8_t *b, size_t n)
{
    int64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int64_t)a[i] * b[i];
    return s;
}

typedef struct probe_buf {
    abis_i8_probe p;
    void *buf;
} probe_buf;

static void probe_make(probe_buf *pb, const int8_t *q, size_t n)
{
    pb->buf = aligned_alloc(64, abis_i8_probe_bytes(n ? n : 1) + 64);
    assert_non_null(pb->buf);
    abis_i8_probe_set(&pb->p, q, n, 1.0f, pb->buf);
}

static void test_quantize_range_scale_and_error(void **state)
{
    (void)state;
    enum { N = 512 };
    float v[N];
    int8_t q[N];
    for (int trial = 0; trial < 50; trial++) {
        abis_synth_identity(3, (uint64_t)trial, v, N);
        float s = abis_i8_quantize(v, N, q);
        float m = 0;
        int saw_max = 0;
        for (size_t i = 0; i < N; i++)
            m = fmaxf(m, fabsf(v[i]));
        assert_float_equal(s, m / 127, 1e-9);
        for (size_t i = 0; i < N; i++) {
            assert_true(q[i] >= -127 && q[i] <= 127);
            saw_max |= q[i] == 127 || q[i] == -127;
            /* rounding to nearest: error at most half a step */
            assert_true(fabsf(v[i] - s * q[i]) <= s * 0.5f * (1 + 1e-5f));
        }
        assert_true(saw_max);
    }
    float zero[8] = {0};
    int8_t qz[8];
    memset(qz, 1, sizeof qz);
    assert_true(abis_i8_quantize(zero, 8, qz) == 0.0f);
    for (int i = 0; i < 8; i++)
        assert_int_equal(qz[i], 0);
}

static void test_scalar_dot_matches_wide_reference(void **state)
{
    (void)state;
    int8_t a[700], b[700];
    for (size_t n = 0; n <= 700; n += 23)
        for (int mode = 0; mode < 5; mode++) {
            fill(a, n, mode);
            fill(b, n, mode == 3 ? 2 : mode);
            assert_int_equal(abis_i8_dot_scalar(a, b, n), dot_ref(a, b, n));
        }
}

/* dot and scan of every kernel against the scalar reference, for every
 * dimension 0..300, unaligned rows, with and without an index list. */
static void test_kernels_dot_and_scan_agree_every_dimension(void **state)
{
    (void)state;
    size_t nk;
    const abis_i8_kernel *const *ks = abis_i8_available(&nk);
    print_message("int8 kernels here: %zu, best %s\n", nk, abis_i8_best()->name);
    enum { MAXN = 300, ROWS = 9 };
    int8_t *mem = malloc(1 + (MAXN + 5) * (ROWS + 1));
    int8_t *q = malloc(MAXN + 1);
    int32_t want[ROWS], got[ROWS];
    uint32_t idx[ROWS] = {8, 0, 3, 3, 7, 1, 2, 6, 5};
    assert_non_null(mem);
    assert_non_null(q);
    for (size_t n = 0; n <= MAXN; n++) {
        size_t stride = n + 5;     /* rows not a multiple of anything */
        int8_t *rows = mem + 1;    /* odd address */
        int mode = (int)(n % 5);
        fill(q, n, mode == 4 ? 0 : mode);
        fill(rows, stride * ROWS, n % 7 == 0 ? 1 + (int)(n % 3) : 0);
        probe_buf pb;
        probe_make(&pb, q, n);
        abis_i8_scan_scalar(&pb.p, rows, stride, NULL, ROWS, want);
        for (size_t i = 0; i < ROWS; i++)
            assert_int_equal(want[i], dot_ref(q, rows + i * stride, n));
        for (size_t k = 0; k < nk; k++) {
            for (size_t i = 0; i < ROWS; i++)
                if (ks[k]->dot(q, rows + i * stride, n) != want[i])
                    fail_msg("%s dot n=%zu row %zu: %d, want %d", ks[k]->name, n, i,
                             ks[k]->dot(q, rows + i * stride, n), want[i]);
            ks[k]->scan(&pb.p, rows, stride, NULL, ROWS, got);
            for (size_t i = 0; i < ROWS; i++)
                if (got[i] != want[i])
                    fail_msg("%s scan n=%zu row %zu: %d, want %d", ks[k]->name, n, i, got[i],
                             want[i]);
            ks[k]->scan(&pb.p, rows, stride, idx, ROWS, got);
            for (size_t i = 0; i < ROWS; i++)
                assert_int_equal(got[i], want[idx[i]]);
            ks[k]->scan(&pb.p, rows, stride, NULL, 0, got); /* empty: writes nothing */
        }
        free(pb.buf);
    }
    free(mem);
    free(q);
}

/* Batched search: many probes over a block of rows gives every probe's scan
 * exactly; row counts around the tile size, dimensions past one tile pass. */
static void test_kernels_batch_equals_scan(void **state)
{
    (void)state;
    size_t nk;
    const abis_i8_kernel *const *ks = abis_i8_available(&nk);
    static const size_t dims[] = {1, 3, 4, 17, 64, 100, 128, 131, 512, 1024, 1030, 2100};
    static const size_t counts[] = {0, 1, 7, 15, 16, 17, 31, 32, 33, 64, 70, 255, 256};
    static const size_t nps[] = {1, 2, 5, 6, 8, 12, 13, 25, 64};
    enum { MAXNP = 64, MAXC = 256 };
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        size_t n = dims[d], stride = n + (n % 2);
        int8_t *rows = malloc(stride * MAXC + 1);
        int8_t *q = malloc(n * MAXNP);
        probe_buf *pb = calloc(MAXNP, sizeof *pb);
        abis_i8_probe *pp = calloc(MAXNP, sizeof *pp);
        int32_t *want = malloc(sizeof(int32_t) * MAXNP * MAXC);
        int32_t *got = malloc(sizeof(int32_t) * MAXNP * MAXC);
        assert_true(rows && q && pb && pp && want && got);
        fill(rows, stride * MAXC, d % 4 == 3 ? 3 : 0);
        fill(q, n * MAXNP, d % 4 == 2 ? 1 : 0);
        for (size_t j = 0; j < MAXNP; j++) {
            probe_make(&pb[j], q + j * n, n);
            pp[j] = pb[j].p;
        }
        for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
            for (size_t t = 0; t < sizeof nps / sizeof *nps; t++) {
                size_t count = counts[c], np = nps[t];
                for (size_t j = 0; j < np; j++)
                    abis_i8_scan_scalar(&pp[j], rows, stride, NULL, count, want + j * count);
                for (size_t k = 0; k < nk; k++) {
                    memset(got, 0x5A, sizeof(int32_t) * MAXNP * MAXC);
                    ks[k]->batch(pp, np, rows, stride, count, got);
                    for (size_t i = 0; i < np * count; i++)
                        if (got[i] != want[i])
                            fail_msg("%s batch n=%zu count=%zu np=%zu at %zu: %d, want %d",
                                     ks[k]->name, n, count, np, i, got[i], want[i]);
                }
            }
        for (size_t j = 0; j < MAXNP; j++)
            free(pb[j].buf);
        free(rows), free(q), free(pb), free(pp), free(want), free(got);
    }
}

/* The float32-probe path agrees with the double-precision scalar reference to
 * float rounding. */
static void test_kernels_f32_probe_path(void **state)
{
    (void)state;
    size_t nk;
    const abis_i8_kernel *const *ks = abis_i8_available(&nk);
    enum { MAXN = 520, ROWS = 5 };
    float *p = malloc(sizeof(float) * MAXN);
    int8_t *rows = malloc(MAXN * ROWS + 3);
    uint32_t idx[ROWS] = {4, 4, 0, 2, 1};
    float want[ROWS], got[ROWS];
    for (size_t n = 0; n <= MAXN; n += (n < 70 ? 1 : 45)) {
        abis_synth_identity(9, n, p, n ? n : 1);
        fill(rows + 3, n * ROWS, 0);
        abis_i8_scan_f32_scalar(p, n, rows + 3, n, NULL, ROWS, want);
        for (size_t k = 0; k < nk; k++) {
            ks[k]->scan_f32(p, n, rows + 3, n, NULL, ROWS, got);
            for (size_t i = 0; i < ROWS; i++)
                if (fabsf(got[i] - want[i]) > 1e-4f * (1 + fabsf(want[i])))
                    fail_msg("%s f32 n=%zu row %zu: %g, want %g", ks[k]->name, n, i, got[i],
                             want[i]);
            ks[k]->scan_f32(p, n, rows + 3, n, idx, ROWS, got);
            for (size_t i = 0; i < ROWS; i++)
                assert_true(fabsf(got[i] - want[idx[i]]) <= 1e-4f * (1 + fabsf(want[idx[i]])));
        }
    }
    free(p);
    free(rows);
}

/* Score selection: every kernel lists the same rows as the scalar one, at
 * thresholds below, between and above the scores, on every length. */
static void test_kernels_select_the_same_rows(void **state)
{
    (void)state;
    size_t nk;
    const abis_i8_kernel *const *ks = abis_i8_available(&nk);
    enum { MAXN = 300 };
    int32_t dot[MAXN];
    float scale[MAXN];
    uint32_t want[MAXN], got[MAXN];
    for (size_t n = 0; n <= MAXN; n += (n < 40 ? 1 : 37)) {
        for (size_t i = 0; i < n; i++) {
            dot[i] = (int32_t)(rnd() % 200001) - 100000;
            scale[i] = (float)(rnd() % 1000 + 1) * 1e-6f;
        }
        if (n > 3)
            dot[3] = dot[2], scale[3] = scale[2]; /* a tie at the threshold */
        float ps = 0.0123f;
        float thrs[] = {-INFINITY, -1.0f, 0.0f, n > 2 ? abis_i8_score(dot[2], ps, scale[2]) : 0,
                        1.0f, INFINITY};
        for (size_t t = 0; t < sizeof thrs / sizeof *thrs; t++) {
            size_t nw = abis_i8_above_scalar(dot, scale, n, ps, thrs[t], want);
            for (size_t i = 0, j = 0; i < n; i++)
                if (abis_i8_score(dot[i], ps, scale[i]) >= thrs[t])
                    assert_int_equal(want[j++], i);
            for (size_t k = 0; k < nk; k++) {
                size_t ng = ks[k]->above(dot, scale, n, ps, thrs[t], got);
                assert_int_equal(ng, nw);
                assert_memory_equal(got, want, nw * sizeof *want);
            }
        }
    }
}

static void test_force_scalar_switches_kernel(void **state)
{
    (void)state;
    const abis_i8_kernel *best = abis_i8_best();
    abis_i8_force_scalar(1);
    assert_string_equal(abis_i8_best()->name, "scalar");
    abis_i8_force_scalar(0);
    assert_ptr_equal(abis_i8_best(), best);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_range_scale_and_error),
        cmocka_unit_test(test_scalar_dot_matches_wide_reference),
        cmocka_unit_test(test_kernels_dot_and_scan_agree_every_dimension),
        cmocka_unit_test(test_kernels_batch_equals_scan),
        cmocka_unit_test(test_kernels_f32_probe_path),
        cmocka_unit_test(test_kernels_select_the_same_rows),
        cmocka_unit_test(test_force_scalar_switches_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
