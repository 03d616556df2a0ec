/*
 * gemm.h: the matrix product every convolution of the fast path ends in,
 * C = A * B (row-major, C overwritten), with the best kernel for this CPU
 * chosen once at run time:
 *   avx512   our own 6 x 32 register-blocked kernel (AVX-512F)
 *   avx2     our own 6 x 16 kernel (AVX2 + FMA)
 *   blas     cblas_sgemm (OpenBLAS), on every other CPU
 * ABIS_NN_GEMM=blas|avx2|avx512 in the environment forces a kernel (when the
 * CPU has it); tests/test_nn_ops.c checks each against the reference loops.
 *
 * B is a filter: our kernels read it packed once beforehand (nn_gemm_pack)
 * into panels of NN_GEMM_PANEL columns, each k x NN_GEMM_PANEL contiguous, so
 * a panel streams through the cache in order.  Filters the model stores as
 * 8-bit codes (value = q * scale + min) stay 8-bit in the panels and are
 * expanded one panel at a time into a small buffer: the late layers of these
 * networks apply megabytes of weights to a few pixels, and reading a quarter
 * of the bytes is what makes them fast (docs/BENCHMARKS.md).
 */
#ifndef ABIS_NN_GEMM_H
#define ABIS_NN_GEMM_H

#include <stddef.h>

/* Columns of B per packed panel. */
#define NN_GEMM_PANEL 32

/* The right-hand matrix (k x n) in the forms the kernels read. */
typedef struct nn_gemm_b {
    const float *b; /* as it lies, row stride ldb (always set) */
    int ldb;
    const float *pack;          /* float panels (nn_gemm_pack), or NULL */
    const unsigned char *qpack; /* 8-bit panels (nn_gemm_pack_q), or NULL */
    float qscale, qmin;         /* their values: q * qscale + qmin */
} nn_gemm_b;

/* What to do to C on the way out, per column j: c = act(c * mul[j] + add[j])
 * (act: NN_ACT_* of nn.h); applied in registers by our kernels, in a second
 * pass after OpenBLAS. */
typedef struct nn_gemm_post {
    const float *mul, *add; /* n values each */
    int act;
} nn_gemm_post;

/* A kernel over float B: read at b with row stride ldb, or, when `packed`,
 * panel p of B at b + p * k * NN_GEMM_PANEL with row stride NN_GEMM_PANEL;
 * `post` (may be NULL) for columns [0, n). */
typedef void (*nn_gemm_fn)(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                           int packed, float *c, int ldc, const nn_gemm_post *post);

/* C[m x n] = A[m x k] * B with the chosen kernel, then `post` (may be NULL).
 * `panel` is room for k * NN_GEMM_PANEL floats, used when B is 8-bit. */
void nn_gemm(int m, int n, int k, const float *a, int lda, const nn_gemm_b *b, float *panel,
             float *c, int ldc, const nn_gemm_post *post);

/* `post` on C (m rows of n values, row stride ldc), as a separate pass. */
void nn_gemm_post_apply(float *c, int m, int n, int ldc, const nn_gemm_post *post);

/* Floats (or bytes) a packed k x n matrix takes. */
size_t nn_gemm_packed_size(int k, int n);
/* Pack B (k x n, row stride ldb) into panels (zero-padded to whole panels). */
void nn_gemm_pack(int k, int n, const float *b, int ldb, float *out);
/* The same for 8-bit codes. */
void nn_gemm_pack_q(int k, int n, const unsigned char *q, int ldq, unsigned char *out);
/* Do the chosen kernels read packed B?  (Not the blas one.) */
int nn_gemm_reads_packed(void);

/* The chosen kernel's name ("avx512", "avx2", "blas"). */
const char *nn_gemm_kernel(void);
/* Use kernel `name` from now on (tests, benchmarks); 0, or -1 when this CPU
 * cannot run it. */
int nn_gemm_use(const char *name);

/* The kernels (NULL when not built for this target). */
nn_gemm_fn nn_gemm_avx2_fn(void);
nn_gemm_fn nn_gemm_avx512_fn(void);

#endif
