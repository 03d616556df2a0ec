/* test_signcode.c: sign codes and their asymmetric score (src/match/signcode.h):
 * the scalar kernel against a value-by-value reference, every other kernel
 * against the scalar one, for every dimension 1..300 and row counts around
 * the 4-codes-per-register path. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "match/signcode.h"

static uint64_t rng = 0x5DEECE66Dull;

static int8_t rnd8(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int8_t)((int)((rng >> 33) % 255) - 127);
}

/* t_i as the kernels see it, and the reference score sum_i t_i [s_i > 0]. */
static int t_of(int8_t q)
{
    int a = q < 0 ? -q : q;
    int t = (int)((a * 7.0 / 127.0) + 0.5);
    return q < 0 ? -t : t;
}

static void test_probe_planes_hold_the_4bit_values(void **state)
{
    (void)state;
    enum { D = 200 };
    int8_t q[D];
    for (int i = 0; i < D; i++)
        q[i] = (int8_t)(i - 100 < -127 ? -127 : i - 100);
    q[0] = 127, q[1] = -127, q[2] = 9, q[3] = -9, q[4] = 0;
    abis_sign_probe *p = malloc(sizeof *p);
    uint64_t buf[ABIS_SIGN_PLANES * 4];
    abis_sign_probe_set(p, q, D, buf);
    assert_int_equal(p->words, 4);
    for (int i = 0; i < D; i++) {
        int b[4];
        for (int k = 0; k < 4; k++)
            b[k] = (int)(p->planes[k * p->words + i / 64] >> (i % 64) & 1);
        int t = b[0] + 2 * b[1] + 4 * b[2] - 8 * b[3];
        assert_int_equal(t, t_of(q[i]));
        assert_true(t >= -7 && t <= 7);
    }
    free(p);
}

static void test_scores_match_reference_and_kernels_agree(void **state)
{
    (void)state;
    size_t nk;
    const abis_sign_kernel *ks = abis_sign_available(&nk);
    print_message("sign-code kernels here: %zu, best %s\n", nk, abis_sign_best()->name);
    enum { MAXD = 700, ROWS = 23 };
    int8_t *q = malloc(MAXD), *rows = malloc(MAXD * ROWS);
    uint64_t *codes = malloc(sizeof(uint64_t) * abis_sign_words(MAXD) * ROWS);
    int32_t want[ROWS], got[ROWS];
    abis_sign_probe *p = malloc(sizeof *p);
    uint64_t *pbuf = malloc(sizeof *pbuf * abis_sign_probe_words(MAXD));
    /* every dimension to 300, then codes of 7, 8, 9, 10 and 11 words */
    static const size_t more[] = {448, 512, 513, 640, 700};
    for (size_t di = 0; di < 300 + sizeof more / sizeof *more; di++) {
        size_t d = di < 300 ? di + 1 : more[di - 300];
        size_t w = abis_sign_words(d);
        for (size_t i = 0; i < d; i++)
            q[i] = d % 9 == 0 ? 127 : rnd8();
        for (size_t i = 0; i < d * ROWS; i++)
            rows[i] = d % 11 == 0 ? 1 : rnd8();
        for (size_t r = 0; r < ROWS; r++)
            abis_sign_encode(rows + r * d, d, codes + r * w);
        abis_sign_probe_set(p, q, d, pbuf);
        for (size_t count = 0; count <= ROWS; count += (count < 9 ? 1 : 7)) {
            abis_sign_scan_scalar(p, codes, count, want);
            for (size_t r = 0; r < count; r++) {
                int32_t ref = 0;
                for (size_t i = 0; i < d; i++)
                    ref += rows[r * d + i] > 0 ? t_of(q[i]) : 0;
                assert_int_equal(want[r], ref);
            }
            for (size_t k = 0; k < nk; k++) {
                memset(got, 0x55, sizeof got);
                ks[k].scan(p, codes, count, got);
                for (size_t r = 0; r < count; r++)
                    if (got[r] != want[r])
                        fail_msg("%s d=%zu count=%zu row %zu: %d, want %d", ks[k].name, d, count, r,
                                 got[r], want[r]);
            }
        }
    }
    free(p);
    free(pbuf);
    free(q);
    free(rows);
    free(codes);
}

static void test_selection_kernels_agree(void **state)
{
    (void)state;
    size_t nk;
    const abis_sign_kernel *ks = abis_sign_available(&nk);
    enum { MAXN = 300 };
    int32_t s[MAXN];
    uint32_t want[MAXN], got[MAXN];
    for (size_t n = 0; n <= MAXN; n += (n < 40 ? 1 : 29)) {
        for (size_t i = 0; i < n; i++)
            s[i] = (int32_t)(rnd8() * 8);
        int32_t thrs[] = {INT32_MIN, -100, 0, 7, 100, INT32_MAX};
        for (size_t t = 0; t < sizeof thrs / sizeof *thrs; t++) {
            size_t nw = abis_sign_above_scalar(s, n, thrs[t], want);
            for (size_t i = 0, j = 0; i < n; i++)
                if (s[i] >= thrs[t])
                    assert_int_equal(want[j++], i);
            for (size_t k = 0; k < nk; k++) {
                size_t ng = ks[k].above(s, n, thrs[t], got);
                assert_int_equal(ng, nw);
                assert_memory_equal(got, want, nw * sizeof *want);
            }
        }
    }
}

/* select (scan and above in one) against the scalar scan followed by the
 * scalar above, for every kernel: dimensions on and off the two-word path,
 * counts around its eight-code step, thresholds keeping none, some, all. */
static void test_fused_selection_agrees(void **state)
{
    (void)state;
    size_t nk;
    const abis_sign_kernel *ks = abis_sign_available(&nk);
    enum { MAXD = 300, MAXN = 600 };
    int8_t q[MAXD], *rows = malloc((size_t)MAXD * MAXN);
    uint64_t *codes = malloc(sizeof(uint64_t) * abis_sign_words(MAXD) * MAXN);
    uint64_t pbuf[ABIS_SIGN_PLANES * 5];
    int32_t s[MAXN], gs[MAXN];
    uint32_t want[MAXN], got[MAXN];
    abis_sign_probe p;
    static const size_t dims[] = {1, 64, 100, 127, 128, 129, 300};
    static const size_t counts[] = {0, 1, 7, 8, 9, 15, 16, 17, 255, 256, 257, 600};
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        size_t d = dims[di], w = abis_sign_words(d);
        for (size_t i = 0; i < d; i++)
            q[i] = rnd8();
        for (size_t i = 0; i < d * MAXN; i++)
            rows[i] = rnd8();
        for (size_t r = 0; r < MAXN; r++)
            abis_sign_encode(rows + r * d, d, codes + r * w);
        abis_sign_probe_set(&p, q, d, pbuf);
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
            size_t n = counts[ci];
            abis_sign_scan_scalar(&p, codes, n, s);
            int32_t thrs[] = {INT32_MIN, -40, 0, 20, 60, INT32_MAX};
            for (size_t t = 0; t < sizeof thrs / sizeof *thrs; t++) {
                size_t nw = abis_sign_above_scalar(s, n, thrs[t], want);
                for (size_t k = 0; k < nk; k++) {
                    size_t ng = ks[k].select(&p, codes, n, thrs[t], got, gs);
                    if (ng != nw)
                        fail_msg("%s d=%zu n=%zu thr=%d: %zu kept, want %zu", ks[k].name, d, n,
                                 thrs[t], ng, nw);
                    assert_memory_equal(got, want, nw * sizeof *want);
                    for (size_t u = 0; u < nw; u++)
                        assert_int_equal(gs[u], s[want[u]]);
                }
            }
        }
    }
    free(rows);
    free(codes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_planes_hold_the_4bit_values),
        cmocka_unit_test(test_scores_match_reference_and_kernels_agree),
        cmocka_unit_test(test_selection_kernels_agree),
        cmocka_unit_test(test_fused_selection_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
