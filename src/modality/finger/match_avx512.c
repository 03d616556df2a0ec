/*
 * match_avx512.c: the AVX-512 VPOPCNTDQ local-similarity kernel of the
 * fingerprint matcher (match_internal.h, fp_sim_fn).
 *
 * A cylinder of 16 x 16 cells and 6 layers is 1,536 bits: three 512-bit
 * vectors, each holding two layers of 256 cells; its validity mask (256
 * cells) is broadcast to both halves of a vector, so the cells valid in
 * both cylinders are one AND and a broadcast.  Per pair the three counts
 * |a|, |b| and |a ^ b| (over those cells) are per-lane popcounts added up,
 * packed into one lane value (|a| + |b| << 16 + |a ^ b| << 32; a lane holds
 * at most 192 of each) so that one horizontal sum gives all three.  The
 * result is bit-for-bit that of the portable kernel (tests/test_finger_match.c).
 * When both cylinders are valid over their whole circle (most, away from
 * the print's edge), only |a ^ b| is counted: |a| and |b| are stored.
 *
 * CMake compiles this file alone with the AVX-512 flags; match.c calls it
 * only on a CPU that reports them.
 */
#include "modality/finger/match_internal.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__) &&                 \
    defined(__AVX512VL__) && MCC_MASK_WORDS == 4 && MCC_ND == 6

#include <immintrin.h>

/* vpternlogq truth table of (a ^ b) & c: (0xF0 ^ 0xCC) & 0xAA = 0x28 */
#define XOR_AND 0x28

static int sim_avx512(const fp_prep_view *a, int na, const fp_prep_view *b, int nb, int min_me,
                      const float *sqrt_t, uint8_t *out, uint16_t *list, uint16_t *cnt)
{
    int n = 0;
    for (int i = 0; i < na; i++) {
        const fp_cyl *ca = &a->cyl[i];
        __m512i a0 = _mm512_loadu_si512(ca->bits), a1 = _mm512_loadu_si512(ca->bits + 8),
                a2 = _mm512_loadu_si512(ca->bits + 16);
        __m256i ma = _mm256_loadu_si256((const __m256i *)ca->mask);
        uint8_t *row = out + (size_t)i * nb;
        for (int j = 0; j < nb; j++) {
            row[j] = 0;
            const fp_cyl *cb = &b->cyl[j];
            __m512i b0 = _mm512_loadu_si512(cb->bits), b1 = _mm512_loadu_si512(cb->bits + 8),
                    b2 = _mm512_loadu_si512(cb->bits + 16);
            if (ca->full && cb->full) {
                /* both masks are the whole circle: only the differing bits */
                __m512i px = _mm512_add_epi64(
                    _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_xor_si512(a0, b0)),
                                     _mm512_popcnt_epi64(_mm512_xor_si512(a1, b1))),
                    _mm512_popcnt_epi64(_mm512_xor_si512(a2, b2)));
                int nx = (int)_mm512_reduce_add_epi64(px);
                n = fp_sim_emit(row, i, j, (int)ca->ones, (int)cb->ones, nx, sqrt_t, list, cnt, n);
                continue;
            }
            __m256i m = _mm256_and_si256(ma, _mm256_loadu_si256((const __m256i *)cb->mask));
            __m256i mc = _mm256_popcnt_epi64(m);
            __m128i mc2 =
                _mm_add_epi64(_mm256_castsi256_si128(mc), _mm256_extracti128_si256(mc, 1));
            int common = (int)(_mm_cvtsi128_si64(mc2) + _mm_extract_epi64(mc2, 1));
            if (common < min_me)
                continue;
            __m512i zm = _mm512_broadcast_i64x4(m);
            __m512i pa =
                _mm512_add_epi64(_mm512_add_epi64(_mm512_popcnt_epi64(_mm512_and_si512(a0, zm)),
                                                  _mm512_popcnt_epi64(_mm512_and_si512(a1, zm))),
                                 _mm512_popcnt_epi64(_mm512_and_si512(a2, zm)));
            __m512i pb =
                _mm512_add_epi64(_mm512_add_epi64(_mm512_popcnt_epi64(_mm512_and_si512(b0, zm)),
                                                  _mm512_popcnt_epi64(_mm512_and_si512(b1, zm))),
                                 _mm512_popcnt_epi64(_mm512_and_si512(b2, zm)));
            __m512i px = _mm512_add_epi64(
                _mm512_add_epi64(
                    _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(a0, b0, zm, XOR_AND)),
                    _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(a1, b1, zm, XOR_AND))),
                _mm512_popcnt_epi64(_mm512_ternarylogic_epi64(a2, b2, zm, XOR_AND)));
            __m512i packed = _mm512_add_epi64(
                pa, _mm512_add_epi64(_mm512_slli_epi64(pb, 16), _mm512_slli_epi64(px, 32)));
            uint64_t tot = (uint64_t)_mm512_reduce_add_epi64(packed);
            n = fp_sim_emit(row, i, j, (int)(tot & 0xffff), (int)((tot >> 16) & 0xffff),
                            (int)(tot >> 32), sqrt_t, list, cnt, n);
        }
    }
    return n;
}

fp_sim_fn fp_sim_avx512_fn(void)
{
    return sim_avx512;
}

#else

fp_sim_fn fp_sim_avx512_fn(void)
{
    return NULL;
}

#endif
