/*
 * signcode_avx512.c: the sign-code scoring kernel with AVX-512 VPOPCNTDQ
 * (signcode.h).  CMake compiles this file with the *_avx512.c flags; it runs
 * only after signcode.c has checked the CPU.
 *
 * Codes of two words (d <= 128, the common embedding size) are scored four
 * at a time, one 512-bit register holding four codes against each plane
 * repeated four times; codes of up to eight words one to a register with
 * the planes loaded once; longer codes eight words at a time.
 */
#include "match/signcode.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__)

#include <immintrin.h>

/* sum_k weight_k popcount(x & P_k) per 64-bit lane, weights 1, 2, 4, -8. */
static inline __m512i planes_score(__m512i x, const __m512i *P)
{
    __m512i s = _mm512_popcnt_epi64(_mm512_and_si512(x, P[0]));
    s = _mm512_add_epi64(s, _mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(x, P[1])), 1));
    s = _mm512_add_epi64(s, _mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(x, P[2])), 2));
    return _mm512_sub_epi64(s,
                            _mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(x, P[3])), 3));
}

static void scan_two_words(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                           int32_t *out)
{
    __m512i P[ABIS_SIGN_PLANES];
    for (int k = 0; k < ABIS_SIGN_PLANES; k++)
        P[k] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(p->planes + 2 * k)));
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        __m512i s = planes_score(_mm512_loadu_si512(codes + 2 * i), P);
        /* add each code's two words: lane 2r + (lane 2r + 1) */
        s = _mm512_add_epi64(s, _mm512_shuffle_epi32(s, _MM_PERM_BADC));
        __m256i r = _mm512_cvtepi64_epi32(s); /* r0 r0 r1 r1 r2 r2 r3 r3 */
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, r);
        out[i] = t[0], out[i + 1] = t[2], out[i + 2] = t[4], out[i + 3] = t[6];
    }
    if (i < count) {
        __mmask8 m = (__mmask8)((1u << (2 * (count - i))) - 1);
        __m512i s = planes_score(_mm512_maskz_loadu_epi64(m, codes + 2 * i), P);
        s = _mm512_add_epi64(s, _mm512_shuffle_epi32(s, _MM_PERM_BADC));
        int64_t t[8];
        _mm512_storeu_si512(t, s);
        for (size_t j = 0; i + j < count; j++)
            out[i + j] = (int32_t)t[2 * j];
    }
}

static void scan_avx512(const abis_sign_probe *p, const uint64_t *codes, size_t count, int32_t *out)
{
    const size_t w = p->words;
    if (w == 2) {
        scan_two_words(p, codes, count, out);
        return;
    }
    if (w <= 8) { /* up to 512 values: one register a code, the planes loaded once */
        __mmask8 m = (__mmask8)((1u << w) - 1);
        __m512i P[ABIS_SIGN_PLANES];
        for (int k = 0; k < ABIS_SIGN_PLANES; k++)
            P[k] = _mm512_maskz_loadu_epi64(m, p->planes + k * w);
        for (size_t i = 0; i < count; i++)
            out[i] = (int32_t)_mm512_reduce_add_epi64(
                planes_score(_mm512_maskz_loadu_epi64(m, codes + i * w), P));
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const uint64_t *c = codes + i * w;
        __m512i acc = _mm512_setzero_si512();
        for (size_t j = 0; j < w; j += 8) {
            __mmask8 m = w - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (w - j)) - 1);
            __m512i P[ABIS_SIGN_PLANES];
            for (int k = 0; k < ABIS_SIGN_PLANES; k++)
                P[k] = _mm512_maskz_loadu_epi64(m, p->planes + k * w + j);
            acc = _mm512_add_epi64(acc, planes_score(_mm512_maskz_loadu_epi64(m, c + j), P));
        }
        out[i] = (int32_t)_mm512_reduce_add_epi64(acc);
    }
}

static size_t above_avx512(const int32_t *s, size_t n, int32_t thr, uint32_t *out)
{
    const __m512i vthr = _mm512_set1_epi32(thr), step = _mm512_set1_epi32(16);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t m = 0;
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        k = _mm512_mask_cmpge_epi32_mask(k, _mm512_maskz_loadu_epi32(k, s + i), vthr);
        _mm512_mask_compressstoreu_epi32(out + m, k, idx);
        m += (size_t)__builtin_popcount(k);
        idx = _mm512_add_epi32(idx, step);
    }
    return m;
}

/* Two-word codes, eight at a time: each code's score in the even 64-bit
 * lanes of two registers, compared with thr there; only the codes at or
 * above it are written. */
static size_t select_two_words(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                               int32_t thr, uint32_t *idx, int32_t *score)
{
    __m512i P[ABIS_SIGN_PLANES];
    for (int k = 0; k < ABIS_SIGN_PLANES; k++)
        P[k] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(p->planes + 2 * k)));
    const __m512i vthr = _mm512_set1_epi64(thr);
    size_t m = 0, i = 0;
    for (; i + 8 <= count; i += 8) {
        __m512i a = planes_score(_mm512_loadu_si512(codes + 2 * i), P);
        __m512i b = planes_score(_mm512_loadu_si512(codes + 2 * i + 8), P);
        a = _mm512_add_epi64(a, _mm512_shuffle_epi32(a, _MM_PERM_BADC));
        b = _mm512_add_epi64(b, _mm512_shuffle_epi32(b, _MM_PERM_BADC));
        __mmask8 ka = _mm512_mask_cmpge_epi64_mask(0x55, a, vthr);
        __mmask8 kb = _mm512_mask_cmpge_epi64_mask(0x55, b, vthr);
        if (ka | kb) {
            int64_t t[16];
            _mm512_storeu_si512(t, a);
            _mm512_storeu_si512(t + 8, b);
            unsigned k = (unsigned)ka | (unsigned)kb << 8;
            while (k) {
                unsigned lane = (unsigned)__builtin_ctz(k);
                k &= k - 1;
                idx[m] = (uint32_t)(i + lane / 2);
                score[m++] = (int32_t)t[lane];
            }
        }
    }
    if (i < count) { /* the last 1..7 codes: indices relative to codes + 2 i */
        size_t k = abis_sign_select_with(scan_two_words, above_avx512, p, codes + 2 * i, count - i,
                                         thr, idx + m, score + m);
        for (size_t u = m; u < m + k; u++)
            idx[u] += (uint32_t)i;
        m += k;
    }
    return m;
}

static size_t select_avx512(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                            int32_t thr, uint32_t *idx, int32_t *score)
{
    if (p->words == 2)
        return select_two_words(p, codes, count, thr, idx, score);
    return abis_sign_select_with(scan_avx512, above_avx512, p, codes, count, thr, idx, score);
}

abis_sign_scan_fn abis_sign_scan_avx512_fn(void)
{
    return scan_avx512;
}

abis_sign_select_fn abis_sign_select_avx512_fn(void)
{
    return select_avx512;
}

abis_sign_above_fn abis_sign_above_avx512_fn(void)
{
    return above_avx512;
}

#else

abis_sign_scan_fn abis_sign_scan_avx512_fn(void)
{
    return NULL;
}

abis_sign_above_fn abis_sign_above_avx512_fn(void)
{
    return NULL;
}

abis_sign_select_fn abis_sign_select_avx512_fn(void)
{
    return NULL;
}

#endif
