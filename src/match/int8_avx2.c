/*
 * int8_avx2.c: the AVX2 int8 kernels and the AVX2 float32-probe kernel (see
 * int8.h).
 *
 * CMake compiles this file alone with -mavx2 -mfma; nothing here runs before
 * int8.c has checked the CPU.
 *
 * Integer products: VPSIGNB moves the probe's sign onto the stored byte, and
 * VPMADDUBSW multiplies by |p| and adds pairs into 16-bit lanes (at most
 * 2 * 127 * 127, no saturation since no value is -128); VPMADDWD by ones
 * widens to 32-bit lanes.
 */
#include "match/int8.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)

#include "match/int8_x86.h"

static ALWAYS_INLINE __m256i madd_signed(__m256i acc, __m256i abs_a, __m256i a, __m256i b)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p = _mm256_maddubs_epi16(abs_a, _mm256_sign_epi8(b, a));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
}

static int32_t dot_avx2(const int8_t *a, const int8_t *b, size_t n)
{
    __m256i acc = _mm256_setzero_si256();
    for (size_t k = 0; k < n; k += 32) {
        __m256i va = load_partial_256(a + k, n - k), vb = load_partial_256(b + k, n - k);
        acc = madd_signed(acc, _mm256_abs_epi8(va), va, vb);
    }
    return hsum_256(acc);
}

static void scan_avx2(const abis_i8_probe *p, const int8_t *rows, size_t stride,
                      const uint32_t *idx, size_t count, int32_t *out)
{
    const size_t n = p->n, full = n / 32 * 32;
    for (size_t i = 0; i < count; i++) {
        const int8_t *r = scan_row(rows, stride, idx, i);
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        size_t k = 0;
        for (; k + 64 <= full; k += 64) {
            a0 = madd_signed(a0, _mm256_load_si256((const __m256i *)(p->aq + k)),
                             _mm256_load_si256((const __m256i *)(p->q + k)),
                             _mm256_loadu_si256((const __m256i *)(r + k)));
            a1 = madd_signed(a1, _mm256_load_si256((const __m256i *)(p->aq + k + 32)),
                             _mm256_load_si256((const __m256i *)(p->q + k + 32)),
                             _mm256_loadu_si256((const __m256i *)(r + k + 32)));
        }
        for (; k < n; k += 32)
            a0 = madd_signed(a0, _mm256_load_si256((const __m256i *)(p->aq + k)),
                             _mm256_load_si256((const __m256i *)(p->q + k)),
                             load_partial_256(r + k, n - k));
        out[i] = hsum_256(_mm256_add_epi32(a0, a1));
    }
}

static ALWAYS_INLINE void tile_probes(const uint32_t (*T)[16], size_t k4n, const abis_i8_probe *p,
                                      const int NP, size_t kb, int32_t *out, size_t count,
                                      size_t nr, int first)
{
    __m256i acc[2][4];
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++)
        acc[0][j] = acc[1][j] = _mm256_setzero_si256();
    for (size_t k4 = 0; k4 < k4n; k4++) {
        __m256i t0 = _mm256_load_si256((const __m256i *)&T[k4][0]);
        __m256i t1 = _mm256_load_si256((const __m256i *)&T[k4][8]);
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) {
            __m256i pb = _mm256_set1_epi32(probe_dword(p[j].q, kb + 4 * k4));
            __m256i pa = _mm256_set1_epi32(probe_dword(p[j].aq, kb + 4 * k4));
            acc[0][j] = madd_signed(acc[0][j], pa, pb, t0);
            acc[1][j] = madd_signed(acc[1][j], pa, pb, t1);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++) {
        tile_store_256(out + j * count, nr, acc[0][j], first);
        if (nr > 8)
            tile_store_256(out + j * count + 8, nr - 8, acc[1][j], first);
    }
}

static void batch_avx2(const abis_i8_probe *p, size_t np, const int8_t *rows, size_t stride,
                       size_t count, int32_t *out)
{
    const size_t n = np ? p[0].n : 0;
    if (n == 0) {
        memset(out, 0, np * count * sizeof *out);
        return;
    }
    _Alignas(64) uint32_t T[TILE_BYTES / 4][16];
    for (size_t r0 = 0; r0 < count; r0 += 16) {
        size_t nr = min_size(16, count - r0);
        if (r0 + nr < count)
            tile_prefetch(rows + (r0 + nr) * stride, stride, min_size(16, count - r0 - nr), n);
        for (size_t kb = 0; kb < n; kb += TILE_BYTES) {
            size_t kn = min_size(TILE_BYTES, n - kb), k4n = (kn + 3) / 4;
            int first = kb == 0;
            tile_fill_256(rows + r0 * stride, stride, nr, kb, kn, T, 0);
            size_t j = 0;
            for (; j + 4 <= np; j += 4)
                tile_probes(T, k4n, p + j, 4, kb, out + j * count + r0, count, nr, first);
            for (; j < np; j++)
                tile_probes(T, k4n, p + j, 1, kb, out + j * count + r0, count, nr, first);
        }
    }
}

void abis_i8_scan_f32_avx2(const float *probe, size_t n, const int8_t *rows, size_t stride,
                           const uint32_t *idx, size_t count, float *out)
{
    for (size_t i = 0; i < count; i++) {
        const int8_t *r = scan_row(rows, stride, idx, i);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t k = 0;
        for (; k + 16 <= n; k += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(r + k));
            __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
            __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
            a0 = _mm256_fmadd_ps(f0, _mm256_loadu_ps(probe + k), a0);
            a1 = _mm256_fmadd_ps(f1, _mm256_loadu_ps(probe + k + 8), a1);
        }
        float s = hsum_256_ps(_mm256_add_ps(a0, a1));
        for (; k < n; k++)
            s += probe[k] * (float)r[k];
        out[i] = s;
    }
}

static const abis_i8_kernel kernel = {"avx2",     dot_avx2,
                                      scan_avx2,  batch_avx2,
                                      abis_i8_scan_f32_avx2, abis_i8_above_scalar};

const abis_i8_kernel *abis_i8_avx2_kernel(void)
{
    return &kernel;
}

#else

const abis_i8_kernel *abis_i8_avx2_kernel(void)
{
    return NULL;
}

#endif
