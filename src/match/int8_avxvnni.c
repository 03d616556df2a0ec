/*
 * int8_avxvnni.c: the AVX-VNNI int8 kernels (VEX-encoded VPDPBUSD on 256-bit
 * registers, for CPUs with AVX-VNNI but no AVX-512), see int8.h and the
 * unsigned-byte trick described in int8_vnni.c.
 *
 * CMake compiles this file alone with -mavx2 -mfma -mavxvnni; nothing here
 * runs before int8.c has checked the CPU.  The float32-probe path is the AVX2
 * one.
 */
#include "match/int8.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__AVXVNNI__)

#include "match/int8_x86.h"

static int32_t dot_avxvnni(const int8_t *a, const int8_t *b, size_t n)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi8(1);
    __m256i acc = _mm256_setzero_si256(), sb = _mm256_setzero_si256();
    for (size_t k = 0; k < n; k += 32) {
        /* a partial chunk reads as zeros: 128 * 0 and 1 * 0 add nothing */
        __m256i va = load_partial_256(a + k, n - k), vb = load_partial_256(b + k, n - k);
        acc = _mm256_dpbusd_avx_epi32(acc, _mm256_xor_si256(va, flip), vb);
        sb = _mm256_dpbusd_avx_epi32(sb, ones, vb);
    }
    return hsum_256(acc) - 128 * hsum_256(sb);
}

static void scan_avxvnni(const abis_i8_probe *p, const int8_t *rows, size_t stride,
                         const uint32_t *idx, size_t count, int32_t *out)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const size_t n = p->n, full = n / 32 * 32;
    const int32_t bias = 128 * p->sum;
    for (size_t i = 0; i < count; i++) {
        const int8_t *r = scan_row(rows, stride, idx, i);
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        size_t k = 0;
        for (; k + 64 <= full; k += 64) {
            a0 = _mm256_dpbusd_avx_epi32(
                a0, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + k)), flip),
                _mm256_load_si256((const __m256i *)(p->q + k)));
            a1 = _mm256_dpbusd_avx_epi32(
                a1, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(r + k + 32)), flip),
                _mm256_load_si256((const __m256i *)(p->q + k + 32)));
        }
        for (; k < n; k += 32)
            a0 = _mm256_dpbusd_avx_epi32(a0, _mm256_xor_si256(load_partial_256(r + k, n - k), flip),
                                         _mm256_load_si256((const __m256i *)(p->q + k)));
        out[i] = hsum_256(_mm256_add_epi32(a0, a1)) - bias;
    }
}

static ALWAYS_INLINE void tile_probes(const uint32_t (*T)[16], size_t k4n, const abis_i8_probe *p,
                                      const int NP, size_t kb, int32_t *out, size_t count,
                                      size_t nr, int first)
{
    __m256i acc[2][6];
#pragma GCC unroll 6
    for (int j = 0; j < NP; j++)
        acc[0][j] = acc[1][j] = _mm256_setzero_si256();
    for (size_t k4 = 0; k4 < k4n; k4++) {
        __m256i t0 = _mm256_load_si256((const __m256i *)&T[k4][0]);
        __m256i t1 = _mm256_load_si256((const __m256i *)&T[k4][8]);
#pragma GCC unroll 6
        for (int j = 0; j < NP; j++) {
            __m256i b = _mm256_set1_epi32(probe_dword(p[j].q, kb + 4 * k4));
            acc[0][j] = _mm256_dpbusd_avx_epi32(acc[0][j], t0, b);
            acc[1][j] = _mm256_dpbusd_avx_epi32(acc[1][j], t1, b);
        }
    }
#pragma GCC unroll 6
    for (int j = 0; j < NP; j++) {
        __m256i bias = _mm256_set1_epi32(first ? 128 * p[j].sum : 0);
        tile_store_256(out + j * count, nr, _mm256_sub_epi32(acc[0][j], bias), first);
        if (nr > 8)
            tile_store_256(out + j * count + 8, nr - 8, _mm256_sub_epi32(acc[1][j], bias), first);
    }
}

static void batch_avxvnni(const abis_i8_probe *p, size_t np, const int8_t *rows, size_t stride,
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
            tile_fill_256(rows + r0 * stride, stride, nr, kb, kn, T, 0x80808080u);
            size_t j = 0;
            for (; j + 6 <= np; j += 6)
                tile_probes(T, k4n, p + j, 6, kb, out + j * count + r0, count, nr, first);
            for (; j < np; j++)
                tile_probes(T, k4n, p + j, 1, kb, out + j * count + r0, count, nr, first);
        }
    }
}

static const abis_i8_kernel kernel = {"avxvnni",     dot_avxvnni,
                                      scan_avxvnni, batch_avxvnni,
                                      abis_i8_scan_f32_avx2, abis_i8_above_scalar};

const abis_i8_kernel *abis_i8_avxvnni_kernel(void)
{
    return &kernel;
}

#else

const abis_i8_kernel *abis_i8_avxvnni_kernel(void)
{
    return NULL;
}

#endif
