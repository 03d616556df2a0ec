/*
 * int8_vnni.c: the AVX-512 VNNI int8 kernels (see int8.h).
 *
 * CMake compiles this file alone with -mavx512f -mavx512bw -mavx512vl
 * -mavx512vnni; nothing here runs before int8.c has checked the CPU, so the
 * only function callable without that check hands out addresses.
 *
 * VPDPBUSD multiplies unsigned bytes by signed bytes and adds groups of four
 * into 32-bit lanes.  The stored side is made unsigned by flipping its top
 * bit (u = q + 128), so each lane gathers sum (q + 128) p = dot + 128 sum(p),
 * and 128 * sum(p) is subtracted once per row: the exact dot product.  No
 * overflow: |lane| <= n * 255 * 127 < 2^31 for n < 66,000.
 */
#include "match/int8.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) &&                      \
    defined(__AVX512VNNI__)

#include "match/int8_x86.h"

static ALWAYS_INLINE __mmask64 tail_mask(size_t left)
{
    return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
}

static int32_t dot_vnni(const int8_t *a, const int8_t *b, size_t n)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512(), sb = _mm512_setzero_si512();
    for (size_t k = 0; k < n; k += 64) {
        __mmask64 m = tail_mask(n - k);
        __m512i va = _mm512_maskz_loadu_epi8(m, a + k), vb = _mm512_maskz_loadu_epi8(m, b + k);
        acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(va, flip), vb);
        sb = _mm512_dpbusd_epi32(sb, ones, vb);
    }
    return _mm512_reduce_add_epi32(acc) - 128 * _mm512_reduce_add_epi32(sb);
}

static void scan_vnni(const abis_i8_probe *p, const int8_t *rows, size_t stride,
                      const uint32_t *idx, size_t count, int32_t *out)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const size_t n = p->n, full = n / 64 * 64;
    const __mmask64 m = tail_mask(n - full);
    const int32_t bias = 128 * p->sum;
    for (size_t i = 0; i < count; i++) {
        const int8_t *r = scan_row(rows, stride, idx, i);
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        size_t k = 0;
        for (; k + 128 <= full; k += 128) {
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512(r + k), flip),
                                     _mm512_load_si512(p->q + k));
            a1 = _mm512_dpbusd_epi32(a1, _mm512_xor_si512(_mm512_loadu_si512(r + k + 64), flip),
                                     _mm512_load_si512(p->q + k + 64));
        }
        if (k < full)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512(r + k), flip),
                                     _mm512_load_si512(p->q + k));
        if (full < n) /* masked-off bytes read as 0 -> 128, against probe padding 0 */
            a1 = _mm512_dpbusd_epi32(
                a1, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, r + full), flip),
                _mm512_load_si512(p->q + full));
        out[i] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1)) - bias;
    }
}

/* Store NP probes' sums for the tile's 32 rows (minus the unsigned bias on
 * the first pass). */
static ALWAYS_INLINE void tile_finish(const __m512i *acc0, const __m512i *acc1,
                                      const abis_i8_probe *p, const int NP, int32_t *out,
                                      size_t count, size_t nr, int first)
{
    for (int j = 0; j < NP; j++) {
        __m512i bias = _mm512_set1_epi32(first ? 128 * p[j].sum : 0);
        tile_store_512(out + j * count, nr, _mm512_sub_epi32(acc0[j], bias), first);
        if (nr > 16)
            tile_store_512(out + j * count + 16, nr - 16, _mm512_sub_epi32(acc1[j], bias), first);
    }
}

/* acc += dot4(u8 t, s8 b) lane by lane.  Inline assembly because GCC 12
 * copies every accumulator through another register around each
 * _mm512_dpbusd_epi32 in a long unrolled loop, which halves the speed of the
 * batch kernel (measured; docs/search.md). */
#define DP(a, t, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(a) : "v"(t), "v"(b))

/* 8 probes over one filled tile (32 rows), k4n dwords of each row: 16
 * accumulators in registers, written out one by one so that GCC keeps them
 * there. */
static void tile_probes8(const uint32_t (*T)[32], size_t k4n, const abis_i8_probe *p, size_t kb,
                         int32_t *out, size_t count, size_t nr, int first)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    const int8_t *q0 = p[0].q + kb, *q1 = p[1].q + kb, *q2 = p[2].q + kb, *q3 = p[3].q + kb,
                 *q4 = p[4].q + kb, *q5 = p[5].q + kb, *q6 = p[6].q + kb, *q7 = p[7].q + kb;
    for (size_t k4 = 0; k4 < k4n; k4++) {
        __m512i t0 = _mm512_load_si512(&T[k4][0]), t1 = _mm512_load_si512(&T[k4][16]);
#define STEP(j)                                                                                    \
    do {                                                                                           \
        __m512i v = _mm512_set1_epi32(probe_dword(q##j, 4 * k4));                                 \
        DP(a##j, t0, v);                                                                           \
        DP(b##j, t1, v);                                                                           \
    } while (0)
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        STEP(4);
        STEP(5);
        STEP(6);
        STEP(7);
#undef STEP
    }
    const __m512i acc0[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    const __m512i acc1[8] = {b0, b1, b2, b3, b4, b5, b6, b7};
    tile_finish(acc0, acc1, p, 8, out, count, nr, first);
}

/* One probe over one filled tile. */
static void tile_probes1(const uint32_t (*T)[32], size_t k4n, const abis_i8_probe *p, size_t kb,
                         int32_t *out, size_t count, size_t nr, int first)
{
    __m512i a0 = _mm512_setzero_si512(), b0 = a0;
    const int8_t *q0 = p[0].q + kb;
    for (size_t k4 = 0; k4 < k4n; k4++) {
        __m512i v = _mm512_set1_epi32(probe_dword(q0, 4 * k4));
        __m512i t0 = _mm512_load_si512(&T[k4][0]), t1 = _mm512_load_si512(&T[k4][16]);
        DP(a0, t0, v);
        DP(b0, t1, v);
    }
    tile_finish(&a0, &b0, p, 1, out, count, nr, first);
}
#undef DP

static void batch_vnni(const abis_i8_probe *p, size_t np, const int8_t *rows, size_t stride,
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
            tile_fill_512(rows + r0 * stride, stride, nr, kb, kn, T, 0x80808080u);
            size_t j = 0;
            for (; j + 8 <= np; j += 8)
                tile_probes8(T, k4n, p + j, kb, out + j * count + r0, count, nr, first);
            for (; j < np; j++)
                tile_probes1(T, k4n, p + j, kb, out + j * count + r0, count, nr, first);
        }
    }
}

/* The float32-probe path and the score selection are the AVX-512 ones
 * (int8_avx512.c): VNNI has no float form. */
static const abis_i8_kernel kernel = {"avx512vnni", dot_vnni,
                                      scan_vnni,    batch_vnni,
                                      abis_i8_scan_f32_avx512, abis_i8_above_avx512};

const abis_i8_kernel *abis_i8_avx512vnni_kernel(void)
{
    return &kernel;
}

#else

const abis_i8_kernel *abis_i8_avx512vnni_kernel(void)
{
    return NULL;
}

#endif
