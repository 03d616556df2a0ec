/*
 * hamming_avx512.c: the AVX-512 VPOPCNTDQ masked-Hamming kernels (see
 * hamming.h).
 *
 * CMake compiles this file alone with -mavx512f -mavx512bw -mavx512vl
 * -mavx512vpopcntdq; nothing here runs before hamming.c has checked the CPU,
 * so the functions below that run without that check only hand out
 * addresses.
 */
#include "match/hamming.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__) &&                \
    defined(__AVX512BW__)

#include <immintrin.h>

/* vpternlogq truth table of (a ^ b) & c: with a = 0xF0, b = 0xCC, c = 0xAA,
 * (0xF0 ^ 0xCC) & 0xAA = 0x28. */
#define XOR_AND 0x28

static void counts_avx512(const uint8_t *a, const uint8_t *ma, const uint8_t *b,
                          const uint8_t *mb, size_t len, uint32_t *d, uint32_t *n)
{
    __m512i accd = _mm512_setzero_si512(), accn = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
        __m512i m = _mm512_and_si512(_mm512_loadu_si512(ma + i), _mm512_loadu_si512(mb + i));
        __m512i x = _mm512_ternarylogic_epi64(_mm512_loadu_si512(a + i),
                                              _mm512_loadu_si512(b + i), m, XOR_AND);
        accn = _mm512_add_epi64(accn, _mm512_popcnt_epi64(m));
        accd = _mm512_add_epi64(accd, _mm512_popcnt_epi64(x));
    }
    if (i < len) { /* masked loads read nothing past the end */
        __mmask64 k = (__mmask64)(~0ull >> (64 - (len - i)));
        __m512i m = _mm512_and_si512(_mm512_maskz_loadu_epi8(k, ma + i),
                                     _mm512_maskz_loadu_epi8(k, mb + i));
        __m512i x = _mm512_ternarylogic_epi64(_mm512_maskz_loadu_epi8(k, a + i),
                                              _mm512_maskz_loadu_epi8(k, b + i), m, XOR_AND);
        accn = _mm512_add_epi64(accn, _mm512_popcnt_epi64(m));
        accd = _mm512_add_epi64(accd, _mm512_popcnt_epi64(x));
    }
    *d = (uint32_t)_mm512_reduce_add_epi64(accd);
    *n = (uint32_t)_mm512_reduce_add_epi64(accn);
}

/* One stored record: its 4 code and 4 mask vectors stay in registers while
 * all shifted probe copies (in L1) are compared with it.  Per shift the
 * n counts (per 64-bit lane at most 256) and the d counts shifted up 32 bits
 * are added in one vector, so one horizontal sum gives both. */
static void scan_avx512(const abis_iris_code *probe, size_t n_shifts, const abis_iris_code *rows,
                        const uint32_t *idx, size_t count, uint32_t *out)
{
    for (size_t i = 0; i < count; i++) {
        const abis_iris_code *r = &rows[idx ? idx[i] : i];
        if (i + 2 < count) { /* the hardware prefetcher does not follow idx */
            const char *nx = (const char *)&rows[idx ? idx[i + 2] : i + 2];
            for (int l = 0; l < 8; l++)
                _mm_prefetch(nx + 64 * l, _MM_HINT_T0);
        }
        __m512i c0 = _mm512_loadu_si512(r->code), c1 = _mm512_loadu_si512(r->code + 64);
        __m512i c2 = _mm512_loadu_si512(r->code + 128), c3 = _mm512_loadu_si512(r->code + 192);
        __m512i m0 = _mm512_loadu_si512(r->mask), m1 = _mm512_loadu_si512(r->mask + 64);
        __m512i m2 = _mm512_loadu_si512(r->mask + 128), m3 = _mm512_loadu_si512(r->mask + 192);
        uint32_t *o = out + i * n_shifts;
        for (size_t s = 0; s < n_shifts; s++) {
            const uint8_t *pc = probe[s].code, *pm = probe[s].mask;
            __m512i k0 = _mm512_and_si512(m0, _mm512_loadu_si512(pm));
            __m512i k1 = _mm512_and_si512(m1, _mm512_loadu_si512(pm + 64));
            __m512i k2 = _mm512_and_si512(m2, _mm512_loadu_si512(pm + 128));
            __m512i k3 = _mm512_and_si512(m3, _mm512_loadu_si512(pm + 192));
            __m512i x0 = _mm512_ternarylogic_epi64(c0, _mm512_loadu_si512(pc), k0, XOR_AND);
            __m512i x1 = _mm512_ternarylogic_epi64(c1, _mm512_loadu_si512(pc + 64), k1, XOR_AND);
            __m512i x2 = _mm512_ternarylogic_epi64(c2, _mm512_loadu_si512(pc + 128), k2, XOR_AND);
            __m512i x3 = _mm512_ternarylogic_epi64(c3, _mm512_loadu_si512(pc + 192), k3, XOR_AND);
            __m512i nn = _mm512_add_epi64(
                _mm512_add_epi64(_mm512_popcnt_epi64(k0), _mm512_popcnt_epi64(k1)),
                _mm512_add_epi64(_mm512_popcnt_epi64(k2), _mm512_popcnt_epi64(k3)));
            __m512i dd = _mm512_add_epi64(
                _mm512_add_epi64(_mm512_popcnt_epi64(x0), _mm512_popcnt_epi64(x1)),
                _mm512_add_epi64(_mm512_popcnt_epi64(x2), _mm512_popcnt_epi64(x3)));
            uint64_t both = (uint64_t)_mm512_reduce_add_epi64(
                _mm512_add_epi64(nn, _mm512_slli_epi64(dd, 32)));
            o[s] = (uint32_t)(both >> 32) | ((uint32_t)both << 16);
        }
    }
}

abis_hamming_counts_fn abis_hamming_counts_avx512_fn(void)
{
    return counts_avx512;
}

abis_hamming_scan_fn abis_hamming_scan_avx512_fn(void)
{
    return scan_avx512;
}

#else

abis_hamming_counts_fn abis_hamming_counts_avx512_fn(void)
{
    return NULL;
}

abis_hamming_scan_fn abis_hamming_scan_avx512_fn(void)
{
    return NULL;
}

#endif
