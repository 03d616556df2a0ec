/*
 * int8.h: int8 vectors with a per-vector scale, and the dot-product kernels
 * the vector gallery scans them with.
 *
 * Quantisation (docs/search.md argues it and bounds its effect on ranking):
 * a float vector v of n values is stored as q = round(v / s) with the
 * symmetric per-vector scale s = max|v_i| / 127, so q_i is in [-127, 127]
 * (never -128) and v_i = s q_i + e_i with |e_i| <= s / 2.  The similarity of
 * a probe (q_p, s_p) and a stored vector (q_g, s_g) is
 *     score = (float)dot(q_p, q_g) * (s_p * s_g)            abis_i8_score()
 * where dot is the exact int32 sum of products.
 *
 * Kernels: scalar C (the reference), AVX2, AVX-512BW, AVX-512 VNNI and
 * AVX-VNNI, chosen once at run time from the CPU's features.  Every integer
 * kernel returns the exact sum of products, so all agree bit for bit
 * (tests/test_int8.c); the VNNI kernels feed the stored side as unsigned
 * bytes (q + 128, one XOR) to VPDPBUSD and subtract 128 * sum(probe), and
 * the AVX2/AVX-512BW ones use |p| x sign(p) q with VPMADDUBSW, which cannot
 * saturate because no value is -128.  The float32-probe path
 * (scan_f32) scores an unquantised probe against int8 rows; its float sums
 * differ between kernels only by rounding order.
 *
 * ABIS_KERNEL=scalar in the environment, or abis_i8_force_scalar(1), selects
 * the scalar kernel.
 */
#ifndef ABIS_MATCH_INT8_H
#define ABIS_MATCH_INT8_H

#include <stddef.h>
#include <stdint.h>

/* The largest magnitude a quantised value takes. */
#define ABIS_I8_QMAX 127
/* Probe buffers are padded with zeros to a multiple of this many bytes so
 * that kernels may read whole 64-byte chunks of a probe. */
#define ABIS_I8_PAD 64

static inline size_t abis_i8_padded(size_t n)
{
    return (n + ABIS_I8_PAD - 1) / ABIS_I8_PAD * ABIS_I8_PAD;
}

/* Quantise n floats (finite) into q[0..n-1]; returns the scale s (0 for the
 * zero vector).  Deterministic scalar code: probes and stored vectors are
 * quantised by this one function. */
float abis_i8_quantize(const float *v, size_t n, int8_t *q);

/* The similarity of two quantised vectors from their integer dot product.
 * One function, so that every search path computes the same float. */
static inline float abis_i8_score(int32_t dot, float scale_a, float scale_b)
{
    return (float)dot * (scale_a * scale_b);
}

/* A probe prepared for the kernels: its values zero-padded to
 * abis_i8_padded(n) bytes, their magnitudes, and their sum. */
typedef struct abis_i8_probe {
    const int8_t *q;   /* padded(n) bytes, 64-byte aligned */
    const uint8_t *aq; /* |q|, padded(n) bytes, 64-byte aligned */
    int32_t sum;       /* sum of q */
    float scale;
    size_t n;
} abis_i8_probe;

/* Bytes of scratch abis_i8_probe_set needs (64-byte aligned). */
static inline size_t abis_i8_probe_bytes(size_t n)
{
    return 2 * abis_i8_padded(n);
}
/* Prepare `p` from q[0..n-1] and its scale, in `buf` (abis_i8_probe_bytes(n)
 * bytes, 64-byte aligned; it must outlive p). */
void abis_i8_probe_set(abis_i8_probe *p, const int8_t *q, size_t n, float scale, void *buf);

/* dot(a, b) over n values: exact int32. */
typedef int32_t (*abis_i8_dot_fn)(const int8_t *a, const int8_t *b, size_t n);
/* One probe against `count` rows of p->n values: row i starts at
 * rows + (idx ? idx[i] : i) * stride; out[i] = dot(probe, row i).  Rows need
 * no alignment; only their first p->n bytes are read. */
typedef void (*abis_i8_scan_fn)(const abis_i8_probe *p, const int8_t *rows, size_t stride,
                                const uint32_t *idx, size_t count, int32_t *out);
/* np probes (same n) against `count` consecutive rows: out[j * count + i] =
 * dot(probe j, row i).  Each row is read from memory once for all probes. */
typedef void (*abis_i8_batch_fn)(const abis_i8_probe *p, size_t np, const int8_t *rows,
                                 size_t stride, size_t count, int32_t *out);
/* The float32-probe path: out[i] = sum_k probe[k] * row_i[k] (not scaled by
 * the row's scale), rows addressed as for scan. */
typedef void (*abis_i8_scan_f32_fn)(const float *probe, size_t n, const int8_t *rows,
                                    size_t stride, const uint32_t *idx, size_t count, float *out);

/* The indices i (ascending) of the n scores abis_i8_score(dot[i], ps,
 * scale[i]) that are >= thr, into out; returns how many.  Lets a search
 * pass over the rows that cannot enter its top list without touching them
 * one by one. */
typedef size_t (*abis_i8_above_fn)(const int32_t *dot, const float *scale, size_t n, float ps,
                                   float thr, uint32_t *out);

typedef struct abis_i8_kernel {
    const char *name; /* "scalar", "avx2", "avx512bw", "avxvnni", "avx512vnni" */
    abis_i8_dot_fn dot;
    abis_i8_scan_fn scan;
    abis_i8_batch_fn batch;
    abis_i8_scan_f32_fn scan_f32;
    abis_i8_above_fn above;
} abis_i8_kernel;

/* The scalar references. */
int32_t abis_i8_dot_scalar(const int8_t *a, const int8_t *b, size_t n);
void abis_i8_scan_scalar(const abis_i8_probe *p, const int8_t *rows, size_t stride,
                         const uint32_t *idx, size_t count, int32_t *out);
void abis_i8_batch_scalar(const abis_i8_probe *p, size_t np, const int8_t *rows, size_t stride,
                          size_t count, int32_t *out);
void abis_i8_scan_f32_scalar(const float *probe, size_t n, const int8_t *rows, size_t stride,
                             const uint32_t *idx, size_t count, float *out);
size_t abis_i8_above_scalar(const int32_t *dot, const float *scale, size_t n, float ps, float thr,
                            uint32_t *out);

/* The SIMD kernels (NULL when not compiled for this target).  Use them only
 * through abis_i8_best() / abis_i8_available(), which check the CPU. */
const abis_i8_kernel *abis_i8_avx2_kernel(void);
const abis_i8_kernel *abis_i8_avx512bw_kernel(void);
const abis_i8_kernel *abis_i8_avxvnni_kernel(void);
const abis_i8_kernel *abis_i8_avx512vnni_kernel(void);

/* The best kernel this CPU runs (chosen once, thread-safe). */
const abis_i8_kernel *abis_i8_best(void);
/* Every kernel this CPU runs, scalar first, best last; *n gets how many. */
const abis_i8_kernel *const *abis_i8_available(size_t *n);
/* Force the scalar kernel from now on (1) or restore the best (0). */
void abis_i8_force_scalar(int on);

#endif
