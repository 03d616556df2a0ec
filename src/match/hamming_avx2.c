/*
 * hamming_avx2.c: the AVX2 masked-Hamming kernels (see hamming.h).
 *
 * AVX2 has no vector popcount; bytes are counted with the nibble lookup of
 * Mula, Kurz and Lemire ("Faster population counts using AVX2 instructions",
 * 2018): two vpshufb into a 16-entry table, byte sums kept in a vector (at
 * most 8 per byte per step, so up to 31 steps fit in a byte) and folded into
 * 64-bit lanes with vpsadbw.  CMake compiles this file alone with -mavx2
 * -mfma -mpopcnt; nothing here runs before hamming.c has checked the CPU.
 */
#include "match/hamming.h"

#if defined(__x86_64__) && defined(__AVX2__)

#include <immintrin.h>
#include <string.h>

static inline __m256i popcount_bytes(__m256i v, __m256i lut, __m256i low4)
{
    __m256i lo = _mm256_and_si256(v, low4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

#define LUT                                                                                        \
    _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, \
                     2, 3, 2, 3, 3, 4)

static inline uint64_t hsum64(__m256i v)
{
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1);
}

static void counts_avx2(const uint8_t *a, const uint8_t *ma, const uint8_t *b, const uint8_t *mb,
                        size_t len, uint32_t *d, uint32_t *n)
{
    const __m256i lut = LUT, low4 = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    __m256i accd = zero, accn = zero;
    size_t i = 0;
    while (i + 32 <= len) {
        __m256i bd = zero, bn = zero; /* byte sums of up to 16 steps (<= 128) */
        for (int step = 0; step < 16 && i + 32 <= len; step++, i += 32) {
            __m256i m = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(ma + i)),
                                         _mm256_loadu_si256((const __m256i *)(mb + i)));
            __m256i x = _mm256_and_si256(
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + i)),
                                 _mm256_loadu_si256((const __m256i *)(b + i))),
                m);
            bn = _mm256_add_epi8(bn, popcount_bytes(m, lut, low4));
            bd = _mm256_add_epi8(bd, popcount_bytes(x, lut, low4));
        }
        accn = _mm256_add_epi64(accn, _mm256_sad_epu8(bn, zero));
        accd = _mm256_add_epi64(accd, _mm256_sad_epu8(bd, zero));
    }
    uint64_t dd = hsum64(accd), nn = hsum64(accn);
    for (; i + 8 <= len; i += 8) {
        uint64_t va, vb, vma, vmb;
        memcpy(&va, a + i, 8);
        memcpy(&vb, b + i, 8);
        memcpy(&vma, ma + i, 8);
        memcpy(&vmb, mb + i, 8);
        nn += (uint64_t)_mm_popcnt_u64(vma & vmb);
        dd += (uint64_t)_mm_popcnt_u64((va ^ vb) & vma & vmb);
    }
    for (; i < len; i++) {
        unsigned m = (unsigned)(ma[i] & mb[i]);
        nn += (uint64_t)_mm_popcnt_u32(m);
        dd += (uint64_t)_mm_popcnt_u32((unsigned)(a[i] ^ b[i]) & m);
    }
    *d = (uint32_t)dd;
    *n = (uint32_t)nn;
}

/* Per shift: 8 steps of 32 bytes (code and mask), byte sums at most 64. */
static void scan_avx2(const abis_iris_code *probe, size_t n_shifts, const abis_iris_code *rows,
                      const uint32_t *idx, size_t count, uint32_t *out)
{
    const __m256i lut = LUT, low4 = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    for (size_t i = 0; i < count; i++) {
        const abis_iris_code *r = &rows[idx ? idx[i] : i];
        if (i + 2 < count) {
            const char *nx = (const char *)&rows[idx ? idx[i + 2] : i + 2];
            for (int l = 0; l < 8; l++)
                _mm_prefetch(nx + 64 * l, _MM_HINT_T0);
        }
        uint32_t *o = out + i * n_shifts;
        for (size_t s = 0; s < n_shifts; s++) {
            __m256i bd = zero, bn = zero;
            for (int j = 0; j < ABIS_IRIS_BYTES; j += 32) {
                __m256i m = _mm256_and_si256(
                    _mm256_loadu_si256((const __m256i *)(r->mask + j)),
                    _mm256_loadu_si256((const __m256i *)(probe[s].mask + j)));
                __m256i x = _mm256_and_si256(
                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r->code + j)),
                                     _mm256_loadu_si256((const __m256i *)(probe[s].code + j))),
                    m);
                bn = _mm256_add_epi8(bn, popcount_bytes(m, lut, low4));
                bd = _mm256_add_epi8(bd, popcount_bytes(x, lut, low4));
            }
            __m256i both = _mm256_add_epi64(_mm256_sad_epu8(bn, zero),
                                            _mm256_slli_epi64(_mm256_sad_epu8(bd, zero), 32));
            uint64_t t = hsum64(both);
            o[s] = (uint32_t)(t >> 32) | ((uint32_t)t << 16);
        }
    }
}

abis_hamming_counts_fn abis_hamming_counts_avx2_fn(void)
{
    return counts_avx2;
}

abis_hamming_scan_fn abis_hamming_scan_avx2_fn(void)
{
    return scan_avx2;
}

#else

abis_hamming_counts_fn abis_hamming_counts_avx2_fn(void)
{
    return NULL;
}

abis_hamming_scan_fn abis_hamming_scan_avx2_fn(void)
{
    return NULL;
}

#endif
