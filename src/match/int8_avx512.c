/*
 * int8_avx512.c: the AVX-512BW int8 kernels, for CPUs with AVX-512 but no
 * VNNI, and the AVX-512 float32-probe kernel every AVX-512 set uses (see
 * int8.h).
 *
 * CMake compiles this file alone with -mavx512f -mavx512bw -mavx512vl (and
 * the other *_avx512.c flags); nothing here runs before int8.c has checked
 * the CPU.
 *
 * Integer products: VPMADDUBSW multiplies unsigned by signed bytes and adds
 * pairs into saturating 16-bit lanes.  It is fed |p| and q with p's sign
 * moved onto q (a masked subtraction from zero where p < 0), so each pair is
 * at most 2 * 127 * 127 = 32,258 < 32,767: no saturation as long as no value
 * is -128, which quantisation guarantees.  VPMADDWD by ones then adds pairs
 * of 16-bit sums into 32-bit lanes.
 */
#include "match/int8.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__)

#include "match/int8_x86.h"

static ALWAYS_INLINE __mmask64 tail_mask(size_t left)
{
    return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
}

/* |a| * (sign(a) * b) summed in 32-bit lanes: a . b for values in [-127, 127]. */
static ALWAYS_INLINE __m512i madd_signed(__m512i acc, __m512i abs_a, __mmask64 neg_a, __m512i b)
{
    const __m512i ones = _mm512_set1_epi16(1);
    __m512i sb = _mm512_mask_sub_epi8(b, neg_a, _mm512_setzero_si512(), b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(abs_a, sb), ones));
}

static int32_t dot_avx512bw(const int8_t *a, const int8_t *b, size_t n)
{
    __m512i acc = _mm512_setzero_si512();
    for (size_t k = 0; k < n; k += 64) {
        __mmask64 m = tail_mask(n - k);
        __m512i va = _mm512_maskz_loadu_epi8(m, a + k), vb = _mm512_maskz_loadu_epi8(m, b + k);
        acc = madd_signed(acc, _mm512_abs_epi8(va), _mm512_movepi8_mask(va), vb);
    }
    return _mm512_reduce_add_epi32(acc);
}

static void scan_avx512bw(const abis_i8_probe *p, const int8_t *rows, size_t stride,
                          const uint32_t *idx, size_t count, int32_t *out)
{
    const size_t n = p->n;
    for (size_t i = 0; i < count; i++) {
        const int8_t *r = scan_row(rows, stride, idx, i);
        __m512i acc = _mm512_setzero_si512();
        for (size_t k = 0; k < n; k += 64) {
            __m512i pq = _mm512_load_si512(p->q + k);
            acc = madd_signed(acc, _mm512_load_si512(p->aq + k), _mm512_movepi8_mask(pq),
                              _mm512_maskz_loadu_epi8(tail_mask(n - k), r + k));
        }
        out[i] = _mm512_reduce_add_epi32(acc);
    }
}

static ALWAYS_INLINE void tile_probes(const uint32_t (*T)[32], size_t k4n, const abis_i8_probe *p,
                                      const int NP, size_t kb, int32_t *out, size_t count,
                                      size_t nr, int first)
{
    __m512i acc[2][8];
#pragma GCC unroll 8
    for (int j = 0; j < NP; j++)
        acc[0][j] = acc[1][j] = _mm512_setzero_si512();
    for (size_t k4 = 0; k4 < k4n; k4++) {
        __m512i t0 = _mm512_load_si512(&T[k4][0]), t1 = _mm512_load_si512(&T[k4][16]);
#pragma GCC unroll 8
        for (int j = 0; j < NP; j++) {
            __m512i pb = _mm512_set1_epi32(probe_dword(p[j].q, kb + 4 * k4));
            __m512i pa = _mm512_set1_epi32(probe_dword(p[j].aq, kb + 4 * k4));
            __mmask64 neg = _mm512_movepi8_mask(pb);
            acc[0][j] = madd_signed(acc[0][j], pa, neg, t0);
            acc[1][j] = madd_signed(acc[1][j], pa, neg, t1);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NP; j++) {
        tile_store_512(out + j * count, nr, acc[0][j], first);
        if (nr > 16)
            tile_store_512(out + j * count + 16, nr - 16, acc[1][j], first);
    }
}

static void batch_avx512bw(const abis_i8_probe *p, size_t np, const int8_t *rows, size_t stride,
                           size_t count, int32_t *out)
{
    const size_t n = np ? p[0].n : 0;
    if (n == 0) {
        memset(out, 0, np * count * sizeof *out);
        return;
    }
    _Alignas(64) uint32_t T[TILE_BYTES / 4][32];
    for (size_t r0 = 0; r0 < count; r0 += 32) {
        size_t nr = min_size(32, count - r0);
        if (r0 + nr < count)
            tile_prefetch(rows + (r0 + nr) * stride, stride, min_size(32, count - r0 - nr), n);
        for (size_t kb = 0; kb < n; kb += TILE_BYTES) {
            size_t kn = min_size(TILE_BYTES, n - kb), k4n = (kn + 3) / 4;
            int first = kb == 0;
            tile_fill_512(rows + r0 * stride, stride, nr, kb, kn, T, 0);
            size_t j = 0;
            for (; j + 8 <= np; j += 8)
                tile_probes(T, k4n, p + j, 8, kb, out + j * count + r0, count, nr, first);
            for (; j + 4 <= np; j += 4)
                tile_probes(T, k4n, p + j, 4, kb, out + j * count + r0, count, nr, first);
            for (; j < np; j++)
                tile_probes(T, k4n, p + j, 1, kb, out + j * count + r0, count, nr, first);
        }
    }
}

void abis_i8_scan_f32_avx512(const float *probe, size_t n, const int8_t *rows, size_t stride,
                             const uint32_t *idx, size_t count, float *out)
{
    for (size_t i = 0; i < count; i++) {
        const int8_t *r = scan_row(rows, stride, idx, i);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 32 <= n; k += 32) {
            __m512 f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(r + k))));
            __m512 f1 =
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(r + k + 16))));
            a0 = _mm512_fmadd_ps(f0, _mm512_loadu_ps(probe + k), a0);
            a1 = _mm512_fmadd_ps(f1, _mm512_loadu_ps(probe + k + 16), a1);
        }
        for (; k < n; k += 16) {
            size_t left = n - k;
            __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, r + k)));
            a0 = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, probe + k), a0);
        }
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

/* abis_i8_score of 16 rows at a time, compared and compressed into indices:
 * (float)dot * (ps * scale), the same operations as the scalar code. */
size_t abis_i8_above_avx512(const int32_t *dot, const float *scale, size_t n, float ps, float thr,
                            uint32_t *out)
{
    const __m512 vps = _mm512_set1_ps(ps), vthr = _mm512_set1_ps(thr);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    size_t m = 0;
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 d = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, dot + i));
        __m512 s = _mm512_mul_ps(d, _mm512_mul_ps(vps, _mm512_maskz_loadu_ps(k, scale + i)));
        k &= _mm512_cmp_ps_mask(s, vthr, _CMP_GE_OQ);
        _mm512_mask_compressstoreu_epi32(out + m, k, idx);
        m += (size_t)__builtin_popcount(k);
        idx = _mm512_add_epi32(idx, step);
    }
    return m;
}

static const abis_i8_kernel kernel = {"avx512bw",      dot_avx512bw,
                                      scan_avx512bw,   batch_avx512bw,
                                      abis_i8_scan_f32_avx512, abis_i8_above_avx512};

const abis_i8_kernel *abis_i8_avx512bw_kernel(void)
{
    return &kernel;
}

#else

const abis_i8_kernel *abis_i8_avx512bw_kernel(void)
{
    return NULL;
}

#endif
