/* test_hamming.c: the masked Hamming kernels (src/match/hamming.h) and iris
 * code rotation and distance (abis_iris_shift, abis_iris_distance). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match/hamming.h"
#include "modality/iris/iris.h"

static uint64_t rng_state = 0x1234567887654321ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* A mask keeping about 3/4 of the bits. */
static void fill_mask(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd() | rnd());
}

static void random_code(abis_iris_code *c)
{
    fill(c->code, sizeof c->code);
    fill_mask(c->mask, sizeof c->mask);
}

/* Bit-by-bit reference for the counts. */
static void counts_bitwise(const uint8_t *a, const uint8_t *ma, const uint8_t *b,
                           const uint8_t *mb, size_t len, uint32_t *d, uint32_t *n)
{
    *d = *n = 0;
    for (size_t i = 0; i < len * 8; i++) {
        int bit = 1 << (i % 8);
        if ((ma[i / 8] & bit) && (mb[i / 8] & bit)) {
            (*n)++;
            if ((a[i / 8] ^ b[i / 8]) & bit)
                (*d)++;
        }
    }
}

static void test_scalar_counts_match_bitwise_reference(void **state)
{
    (void)state;
    uint8_t a[300], b[300], ma[300], mb[300];
    for (size_t len = 0; len <= 300; len += 7) {
        fill(a, len), fill(b, len), fill_mask(ma, len), fill_mask(mb, len);
        uint32_t d, n, d0, n0;
        abis_hamming_counts_scalar(a, ma, b, mb, len, &d, &n);
        counts_bitwise(a, ma, b, mb, len, &d0, &n0);
        assert_int_equal(d, d0);
        assert_int_equal(n, n0);
    }
}

/* Every kernel agrees with the scalar one for every length 0..1000 bytes,
 * at an odd offset (unaligned), with random, all-ones and all-zeros masks. */
static void test_kernels_agree_with_scalar_every_length(void **state)
{
    (void)state;
    size_t nk;
    const abis_hamming_kernel *k = abis_hamming_available(&nk);
    enum { MAXLEN = 1000 };
    uint8_t *buf = malloc(4 * (MAXLEN + 1));
    assert_non_null(buf);
    uint8_t *a = buf + 1, *b = a + MAXLEN, *ma = b + MAXLEN, *mb = ma + MAXLEN;
    for (int kind = 0; kind < 3; kind++) {
        for (size_t len = 0; len <= MAXLEN; len++) {
            fill(a, len);
            fill(b, len);
            if (kind == 0) {
                fill_mask(ma, len);
                fill_mask(mb, len);
            } else {
                memset(ma, kind == 1 ? 0xff : 0, len);
                memset(mb, kind == 1 ? 0xff : 0, len);
            }
            uint32_t d0, n0;
            abis_hamming_counts_scalar(a, ma, b, mb, len, &d0, &n0);
            if (kind == 1)
                assert_int_equal(n0, len * 8);
            if (kind == 2)
                assert_int_equal(n0, 0);
            for (size_t i = 0; i < nk; i++) {
                uint32_t d = 99, n = 99;
                k[i].counts(a, ma, b, mb, len, &d, &n);
                if (d != d0 || n != n0)
                    fail_msg("kernel %s, length %zu: d %u n %u, scalar d %u n %u", k[i].name,
                             len, d, n, d0, n0);
            }
        }
    }
    free(buf);
}

/* The 1:N scan kernels agree with the scalar one, with and without an index
 * list, for 1 and 15 shift copies. */
static void test_scan_kernels_agree_with_scalar(void **state)
{
    (void)state;
    size_t nk;
    const abis_hamming_kernel *k = abis_hamming_available(&nk);
    enum { ROWS = 37, S = 15 };
    abis_iris_code *rows = malloc(ROWS * sizeof *rows), probe[S];
    uint32_t idx[ROWS], want[ROWS * S], got[ROWS * S];
    assert_non_null(rows);
    for (size_t i = 0; i < ROWS; i++) {
        random_code(&rows[i]);
        idx[i] = (uint32_t)((i * 11) % ROWS);
    }
    memset(rows[3].mask, 0xff, ABIS_IRIS_BYTES);
    memset(rows[4].mask, 0, ABIS_IRIS_BYTES);
    for (size_t s = 0; s < S; s++)
        random_code(&probe[s]);
    memset(probe[2].mask, 0xff, ABIS_IRIS_BYTES);
    for (size_t ns = 1; ns <= S; ns += S - 1) {
        for (int use_idx = 0; use_idx < 2; use_idx++) {
            const uint32_t *ix = use_idx ? idx : NULL;
            abis_hamming_scan_scalar(probe, ns, rows, ix, ROWS, want);
            for (size_t i = 0; i < ROWS; i++) {
                uint32_t d, n;
                size_t r = use_idx ? idx[i] : i;
                abis_hamming_counts_scalar(probe[0].code, probe[0].mask, rows[r].code,
                                           rows[r].mask, ABIS_IRIS_BYTES, &d, &n);
                assert_int_equal(want[i * ns], d | (n << 16));
            }
            for (size_t j = 0; j < nk; j++) {
                memset(got, 0xee, sizeof got);
                k[j].scan(probe, ns, rows, ix, ROWS, got);
                assert_memory_equal(got, want, ROWS * ns * sizeof *got);
            }
        }
    }
    free(rows);
}

static void test_kernel_choice_honours_force_scalar(void **state)
{
    (void)state;
    abis_hamming_force_scalar(1);
    assert_string_equal(abis_hamming_best()->name, "scalar");
    abis_hamming_force_scalar(0);
    size_t nk;
    const abis_hamming_kernel *k = abis_hamming_available(&nk);
    assert_ptr_equal(abis_hamming_best(), &k[nk - 1]);
}

static void test_shift_round_trip_is_identity(void **state)
{
    (void)state;
    abis_iris_code c, s, back;
    random_code(&c);
    for (int sh = -ABIS_IRIS_ANGLES - 3; sh <= ABIS_IRIS_ANGLES + 3; sh++) {
        abis_iris_shift(&c, sh, &s);
        abis_iris_shift(&s, -sh, &back);
        assert_memory_equal(&back, &c, sizeof c);
    }
    abis_iris_shift(&c, ABIS_IRIS_ANGLES, &s);
    assert_memory_equal(&s, &c, sizeof c);
    abis_iris_shift(&c, 0, &s);
    assert_memory_equal(&s, &c, sizeof c);
    /* in place */
    s = c;
    abis_iris_shift(&s, 5, &s);
    abis_iris_shift(&s, -5, &s);
    assert_memory_equal(&s, &c, sizeof c);
}

static int get_bit(const uint8_t *p, size_t i)
{
    return (p[i / 8] >> (i % 8)) & 1;
}

/* Shifting by s moves (ring r, angle a, part p) to angle a + s, each ring on
 * its own. */
static void test_shift_rotates_each_ring_by_angles(void **state)
{
    (void)state;
    abis_iris_code c, s;
    random_code(&c);
    for (int sh = -9; sh <= 9; sh += 3) {
        abis_iris_shift(&c, sh, &s);
        for (int r = 0; r < ABIS_IRIS_RINGS; r++)
            for (int a = 0; a < ABIS_IRIS_ANGLES; a++)
                for (int p = 0; p < 2; p++) {
                    int to = ((a + sh) % ABIS_IRIS_ANGLES + ABIS_IRIS_ANGLES) % ABIS_IRIS_ANGLES;
                    size_t i = ((size_t)r * ABIS_IRIS_ANGLES + (size_t)a) * 2 + (size_t)p;
                    size_t j = ((size_t)r * ABIS_IRIS_ANGLES + (size_t)to) * 2 + (size_t)p;
                    assert_int_equal(get_bit(s.code, j), get_bit(c.code, i));
                    assert_int_equal(get_bit(s.mask, j), get_bit(c.mask, i));
                }
    }
}

static double daugman(uint32_t d, uint32_t n)
{
    return n ? 0.5 - (0.5 - (double)d / n) * sqrt(n / 911.0) : 0.5;
}

/* A code against its own shift by s: raw distance 0 at best shift -s. */
static void test_distance_to_own_shift_is_zero_at_minus_s(void **state)
{
    (void)state;
    abis_iris_code c, s;
    random_code(&c);
    unsigned n_all;
    {
        uint32_t d, n;
        abis_hamming_counts_scalar(c.code, c.mask, c.code, c.mask, ABIS_IRIS_BYTES, &d, &n);
        n_all = n;
    }
    for (int sh = -ABIS_IRIS_MAX_SHIFT; sh <= ABIS_IRIS_MAX_SHIFT; sh++) {
        abis_iris_shift(&c, sh, &s);
        int best = 99;
        unsigned bits = 0;
        double hd = abis_iris_distance(&s, &c, ABIS_IRIS_MAX_SHIFT, &best, &bits);
        assert_int_equal(best, -sh);
        assert_int_equal(bits, n_all);
        assert_true(fabs(hd - daugman(0, n_all)) < 1e-12);
    }
    /* out of range: the best is elsewhere and far from 0 */
    abis_iris_shift(&c, ABIS_IRIS_MAX_SHIFT + 3, &s);
    double hd = abis_iris_distance(&s, &c, ABIS_IRIS_MAX_SHIFT, NULL, NULL);
    assert_true(hd > 0.3);
}

static void test_distance_matches_daugman_formula(void **state)
{
    (void)state;
    for (int t = 0; t < 50; t++) {
        abis_iris_code a, b;
        random_code(&a);
        random_code(&b);
        int best;
        unsigned bits;
        double hd = abis_iris_distance(&a, &b, ABIS_IRIS_MAX_SHIFT, &best, &bits);
        double want = 1e9;
        int want_s = 0;
        for (int sh = -ABIS_IRIS_MAX_SHIFT; sh <= ABIS_IRIS_MAX_SHIFT; sh++) {
            abis_iris_code p;
            abis_iris_shift(&a, sh, &p);
            uint32_t d, n;
            counts_bitwise(p.code, p.mask, b.code, b.mask, ABIS_IRIS_BYTES, &d, &n);
            double h = daugman(d, n);
            if (h < want) {
                want = h;
                want_s = sh;
            }
        }
        assert_true(fabs(hd - want) < 1e-12);
        assert_int_equal(best, want_s);
        assert_true(bits > 0);
        /* unrelated codes: near 0.5 */
        assert_true(hd > 0.3 && hd < 0.6);
    }
}

static void test_distance_without_comparable_bits_is_half(void **state)
{
    (void)state;
    abis_iris_code a, b;
    random_code(&a);
    random_code(&b);
    memset(b.mask, 0, sizeof b.mask);
    int best = 5;
    unsigned bits = 7;
    assert_true(abis_iris_distance(&a, &b, ABIS_IRIS_MAX_SHIFT, &best, &bits) == 0.5);
    assert_int_equal(bits, 0);
    assert_int_equal(best, 0);
    assert_true(abis_hamming_norm(0, 0) == 0.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_counts_match_bitwise_reference),
        cmocka_unit_test(test_kernels_agree_with_scalar_every_length),
        cmocka_unit_test(test_scan_kernels_agree_with_scalar),
        cmocka_unit_test(test_kernel_choice_honours_force_scalar),
        cmocka_unit_test(test_shift_round_trip_is_identity),
        cmocka_unit_test(test_shift_rotates_each_ring_by_angles),
        cmocka_unit_test(test_distance_to_own_shift_is_zero_at_minus_s),
        cmocka_unit_test(test_distance_matches_daugman_formula),
        cmocka_unit_test(test_distance_without_comparable_bits_is_half),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
