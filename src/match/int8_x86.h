/*
 * int8_x86.h: helpers shared by the x86 int8 kernel files (int8_avx2.c,
 * int8_avxvnni.c, int8_avx512.c, int8_vnni.c), each compiled with its own
 * instruction-set flags; the helpers exist only for the features the
 * including file is compiled with.
 *
 * Batched search transposes a tile of rows so that one vector register holds
 * the same 4-byte column of 16 (AVX-512) or 8 (AVX2) consecutive rows
 * ("dword-interleaved"); a probe's 4 bytes are then broadcast to every lane
 * and one multiply-add instruction advances 16 (or 8) row sums at once, with
 * no horizontal additions.  A tile is TILE_ROWS rows by at most TILE_BYTES
 * bytes of each row: 2 register groups of rows, 32 KiB, so it stays in L1
 * while every probe of the batch is run over it.
 */
#ifndef ABIS_MATCH_INT8_X86_H
#define ABIS_MATCH_INT8_X86_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "match/int8.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define TILE_BYTES 1024 /* bytes of each row per pass */

static ALWAYS_INLINE size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The dword at byte offset k of the padded probe q as a broadcast value. */
static ALWAYS_INLINE int32_t probe_dword(const void *q, size_t k)
{
    int32_t v;
    memcpy(&v, (const char *)q + k, 4);
    return v;
}

/* Ask for part `part` of `parts` of the next tile's cache lines (nr rows of
 * n bytes) while this one is computed.  A tile is read column-wise across
 * its rows, which the hardware prefetcher does not follow, and computing a
 * tile for a batch of probes takes far longer than fetching the next one.
 * The requests are spread over the tile's work (one part before each group
 * of probes): issued all at once they wait for free miss buffers and stall
 * the computation (1M x 512, 64 probes: 230 G multiply-adds/s with one burst
 * a tile, 409 G/s when the rows are already in cache). */
static ALWAYS_INLINE void tile_prefetch(const int8_t *rows, size_t stride, size_t nr, size_t n,
                                        size_t part, size_t parts)
{
    size_t per_row = (n + 63) / 64, lines = nr * per_row;
    size_t a = lines * part / parts, b = lines * (part + 1) / parts;
    for (size_t l = a; l < b; l++)
        _mm_prefetch((const char *)(rows + (l / per_row) * stride + (l % per_row) * 64),
                     _MM_HINT_T0);
}

/* The outer loops of the batch kernels of both register widths: tiles of
 * `tr` rows, each filled by `fill` (XOR-ed with flip), TILE_BYTES of each row
 * per pass; probes `wide` at a time through `many`, the rest through `one`;
 * the next tile prefetched a part before each call. */
#define BATCH_TILES(p, np, rows, stride, count, out, flip, wide, many, one, tr, T, fill)           \
    do {                                                                                           \
        const size_t n_ = (np) ? (p)[0].n : 0;                                                     \
        if (n_ == 0) {                                                                             \
            memset((out), 0, (np) * (count) * sizeof *(out));                                      \
            break;                                                                                 \
        }                                                                                          \
        const size_t calls_ = (np) / (wide) + (np) % (wide);                                       \
        const size_t passes_ = (n_ + TILE_BYTES - 1) / TILE_BYTES, parts_ = calls_ * passes_;      \
        for (size_t r0 = 0; r0 < (count); r0 += (tr)) {                                            \
            size_t nr = min_size((tr), (count)-r0);                                                \
            size_t nn = r0 + nr < (count) ? min_size((tr), (count)-r0 - nr) : 0, part_ = 0;        \
            const int8_t *next_ = (rows) + (r0 + nr) * (stride);                                   \
            for (size_t kb = 0; kb < n_; kb += TILE_BYTES) {                                       \
                size_t kn = min_size(TILE_BYTES, n_ - kb), k4n = (kn + 3) / 4;                     \
                int first = kb == 0;                                                               \
                fill((rows) + r0 * (stride), (stride), nr, kb, kn, (T), (flip));                   \
                size_t j = 0;                                                                      \
                for (; j + (wide) <= (np); j += (wide)) {                                          \
                    tile_prefetch(next_, (stride), nn, n_, part_++, parts_);                       \
                    many((T), k4n, (p) + j, kb, (out) + j * (count) + r0, (count), nr, first);     \
                }                                                                                  \
                for (; j < (np); j++) {                                                            \
                    tile_prefetch(next_, (stride), nn, n_, part_++, parts_);                       \
                    one((T), k4n, (p) + j, kb, (out) + j * (count) + r0, (count), nr, first);      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#if defined(__AVX512F__) && defined(__AVX512BW__)

/* 16 x 16 transpose of 32-bit values held one row per register. */
static ALWAYS_INLINE void transpose16x16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* u[4b + c], 128-bit lane L: column 4L + c of rows 4b..4b+3 */
    for (int b = 0; b < 4; b++) {
        u[4 * b] = _mm512_unpacklo_epi64(t[4 * b], t[4 * b + 2]);
        u[4 * b + 1] = _mm512_unpackhi_epi64(t[4 * b], t[4 * b + 2]);
        u[4 * b + 2] = _mm512_unpacklo_epi64(t[4 * b + 1], t[4 * b + 3]);
        u[4 * b + 3] = _mm512_unpackhi_epi64(t[4 * b + 1], t[4 * b + 3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i v = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44);
        __m512i w = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
        __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
        __m512i w2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_i32x4(v, v2, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(v, v2, 0xDD);
        r[8 + c] = _mm512_shuffle_i32x4(w, w2, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(w, w2, 0xDD);
    }
}

/* Fill tile T[k4][32] (k4 < ceil(kn / 4)) with bytes [kb, kb + kn) of rows
 * rows[0..nr-1] (nr <= 32; missing rows read as zero), XOR-ed with `flip`
 * (0x80808080 turns int8 into the unsigned bytes VPDPBUSD takes, or 0). */
static ALWAYS_INLINE void tile_fill_512(const int8_t *rows, size_t stride, size_t nr, size_t kb,
                                        size_t kn, uint32_t (*T)[32], uint32_t flip)
{
    __m512i x = _mm512_set1_epi32((int)flip);
    for (size_t g = 0; g < 2; g++)
        for (size_t cb = 0; cb * 64 < kn; cb++) {
            size_t left = kn - cb * 64;
            __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
            __m512i r[16];
            for (size_t i = 0; i < 16; i++) {
                size_t row = g * 16 + i;
                r[i] = row < nr ? _mm512_maskz_loadu_epi8(m, rows + row * stride + kb + cb * 64)
                                : _mm512_setzero_si512();
            }
            transpose16x16(r);
            for (size_t i = 0; i < 16; i++)
                _mm512_store_si512((void *)&T[cb * 16 + i][g * 16], _mm512_xor_si512(r[i], x));
        }
}

/* A tile kernel: probes p[0..] (a fixed number of them) over a filled tile
 * T (k4n dwords of each of its rows), sums to out (first pass: written, else
 * added), out[j * count + i] for probe j and tile row i < nr. */
typedef void (*tile512_fn)(const uint32_t (*T)[32], size_t k4n, const abis_i8_probe *p, size_t kb,
                           int32_t *out, size_t count, size_t nr, int first);

/* Write (first pass) or add (later passes) 16 row sums to out[0..nr-1]. */
static ALWAYS_INLINE void tile_store_512(int32_t *out, size_t nr, __m512i v, int first)
{
    __mmask16 m = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    if (!first)
        v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(m, out));
    _mm512_mask_storeu_epi32(out, m, v);
}

/* The batch kernels' outer loops: 32-row tiles, each filled (XOR-ed with
 * flip) and prefetching the next, TILE_BYTES of each row per pass; probes
 * `wide` at a time through `many`, the rest through `one`. */
static ALWAYS_INLINE void batch_tiles_512(const abis_i8_probe *p, size_t np, const int8_t *rows,
                                          size_t stride, size_t count, int32_t *out, uint32_t flip,
                                          size_t wide, tile512_fn many, tile512_fn one)
{
    _Alignas(64) uint32_t T[TILE_BYTES / 4][32];
    BATCH_TILES(p, np, rows, stride, count, out, flip, wide, many, one, 32, T, tile_fill_512);
}

#endif

#if defined(__AVX2__)

/* 8 x 8 transpose of 32-bit values held one row per register. */
static ALWAYS_INLINE void transpose8x8(__m256i r[8])
{
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int b = 0; b < 2; b++) {
        u[4 * b] = _mm256_unpacklo_epi64(t[4 * b], t[4 * b + 2]);
        u[4 * b + 1] = _mm256_unpackhi_epi64(t[4 * b], t[4 * b + 2]);
        u[4 * b + 2] = _mm256_unpacklo_epi64(t[4 * b + 1], t[4 * b + 3]);
        u[4 * b + 3] = _mm256_unpackhi_epi64(t[4 * b + 1], t[4 * b + 3]);
    }
    /* u[4b + c], 128-bit lane L: column 4L + c of rows 4b..4b+3 */
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
    }
}

/* Up to 32 bytes of p (len <= 32), zero beyond: no read past p + len. */
static ALWAYS_INLINE __m256i load_partial_256(const int8_t *p, size_t len)
{
    if (len >= 32)
        return _mm256_loadu_si256((const __m256i *)p);
    int8_t buf[32] = {0};
    memcpy(buf, p, len);
    return _mm256_loadu_si256((const __m256i *)buf);
}

/* As tile_fill_512 for 2 groups of 8 rows: T[k4][16]. */
static ALWAYS_INLINE void tile_fill_256(const int8_t *rows, size_t stride, size_t nr, size_t kb,
                                        size_t kn, uint32_t (*T)[16], uint32_t flip)
{
    __m256i x = _mm256_set1_epi32((int)flip);
    for (size_t g = 0; g < 2; g++)
        for (size_t cb = 0; cb * 32 < kn; cb++) {
            size_t left = kn - cb * 32;
            __m256i r[8];
            for (size_t i = 0; i < 8; i++) {
                size_t row = g * 8 + i;
                r[i] = row < nr ? load_partial_256(rows + row * stride + kb + cb * 32, left)
                                : _mm256_setzero_si256();
            }
            transpose8x8(r);
            for (size_t i = 0; i < 8; i++)
                _mm256_store_si256((__m256i *)&T[cb * 8 + i][g * 8], _mm256_xor_si256(r[i], x));
        }
}

/* As tile512_fn and batch_tiles_512 for 2 groups of 8 rows. */
typedef void (*tile256_fn)(const uint32_t (*T)[16], size_t k4n, const abis_i8_probe *p, size_t kb,
                           int32_t *out, size_t count, size_t nr, int first);

static ALWAYS_INLINE void batch_tiles_256(const abis_i8_probe *p, size_t np, const int8_t *rows,
                                          size_t stride, size_t count, int32_t *out, uint32_t flip,
                                          size_t wide, tile256_fn many, tile256_fn one)
{
    _Alignas(64) uint32_t T[TILE_BYTES / 4][16];
    BATCH_TILES(p, np, rows, stride, count, out, flip, wide, many, one, 16, T, tile_fill_256);
}

static ALWAYS_INLINE void tile_store_256(int32_t *out, size_t nr, __m256i v, int first)
{
    int32_t buf[8];
    _mm256_storeu_si256((__m256i *)buf, v);
    for (size_t i = 0; i < nr && i < 8; i++)
        out[i] = first ? buf[i] : out[i] + buf[i];
}

static ALWAYS_INLINE int32_t hsum_256(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static ALWAYS_INLINE float hsum_256_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif

/* The float32-probe kernels, shared by the kernel sets without a float form
 * of their own (int8_avx512.c, int8_avx2.c). */
#if defined(__AVX512F__) && defined(__AVX512BW__)
void abis_i8_scan_f32_avx512(const float *probe, size_t n, const int8_t *rows, size_t stride,
                             const uint32_t *idx, size_t count, float *out);
size_t abis_i8_above_avx512(const int32_t *dot, const float *scale, size_t n, float ps, float thr,
                            uint32_t *out);
#endif
#if defined(__AVX2__) && defined(__FMA__)
void abis_i8_scan_f32_avx2(const float *probe, size_t n, const int8_t *rows, size_t stride,
                           const uint32_t *idx, size_t count, float *out);
#endif

/* The row of index i in a scan (see abis_i8_scan_fn). */
static ALWAYS_INLINE const int8_t *scan_row(const int8_t *rows, size_t stride, const uint32_t *idx,
                                            size_t i)
{
    return rows + (idx ? idx[i] : i) * stride;
}

#endif
