/*
 * gemm_avx512.c: C = A * B (row-major) with AVX-512F (gemm.h).
 *
 * Register blocking: 6 rows x 32 columns of C live in 12 zmm accumulators;
 * each step of k loads 32 values of B's row k (two zmm) and broadcasts one
 * value of each of the 6 rows of A, 12 fused multiply-adds.  The 32-column
 * panel of B (k x 32, contiguous when packed) stays in cache while every row
 * block of A passes over it.  Columns past n are masked off, rows past m are not computed (the
 * block is specialised for 1..6 rows).
 */
#include "nn/gemm.h"

#include <immintrin.h>

#define MR 6
#define NR NN_GEMM_PANEL

/* c = act(c * mul + add) on one register (act as nn_gemm_post). */
static inline __attribute__((always_inline)) __m512 epilogue(__m512 c, __m512 mul, __m512 add,
                                                             int act)
{
    c = _mm512_fmadd_ps(c, mul, add);
    if (act == 1 || act == 2)
        c = _mm512_max_ps(c, _mm512_setzero_ps());
    if (act == 2)
        c = _mm512_min_ps(c, _mm512_set1_ps(6.0f));
    if (act == 3)
        c = _mm512_max_ps(c, _mm512_mul_ps(c, _mm512_set1_ps(0.10000000149011612f)));
    return c;
}

static inline __attribute__((always_inline)) void block(const int mr, int k, const float *a,
                                                        int lda, const float *b, int ldb, float *c,
                                                        int ldc, __mmask16 m0, __mmask16 m1,
                                                        const nn_gemm_post *post, int j)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a, *a1 = a + lda, *a2 = a1 + lda, *a3 = a2 + lda, *a4 = a3 + lda,
                *a5 = a4 + lda;
    for (int p = 0; p < k; p++) {
        const float *bp = b + (long)p * ldb;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bp), b1 = _mm512_maskz_loadu_ps(m1, bp + 16);
        __m512 v;
        v = _mm512_set1_ps(a0[p]);
        c00 = _mm512_fmadd_ps(v, b0, c00);
        c01 = _mm512_fmadd_ps(v, b1, c01);
        if (mr > 1) {
            v = _mm512_set1_ps(a1[p]);
            c10 = _mm512_fmadd_ps(v, b0, c10);
            c11 = _mm512_fmadd_ps(v, b1, c11);
        }
        if (mr > 2) {
            v = _mm512_set1_ps(a2[p]);
            c20 = _mm512_fmadd_ps(v, b0, c20);
            c21 = _mm512_fmadd_ps(v, b1, c21);
        }
        if (mr > 3) {
            v = _mm512_set1_ps(a3[p]);
            c30 = _mm512_fmadd_ps(v, b0, c30);
            c31 = _mm512_fmadd_ps(v, b1, c31);
        }
        if (mr > 4) {
            v = _mm512_set1_ps(a4[p]);
            c40 = _mm512_fmadd_ps(v, b0, c40);
            c41 = _mm512_fmadd_ps(v, b1, c41);
        }
        if (mr > 5) {
            v = _mm512_set1_ps(a5[p]);
            c50 = _mm512_fmadd_ps(v, b0, c50);
            c51 = _mm512_fmadd_ps(v, b1, c51);
        }
    }
    if (post) {
        __m512 pm0 = _mm512_maskz_loadu_ps(m0, post->mul + j);
        __m512 pm1 = _mm512_maskz_loadu_ps(m1, post->mul + j + 16);
        __m512 pa0 = _mm512_maskz_loadu_ps(m0, post->add + j);
        __m512 pa1 = _mm512_maskz_loadu_ps(m1, post->add + j + 16);
        int act = post->act;
        c00 = epilogue(c00, pm0, pa0, act), c01 = epilogue(c01, pm1, pa1, act);
        c10 = epilogue(c10, pm0, pa0, act), c11 = epilogue(c11, pm1, pa1, act);
        c20 = epilogue(c20, pm0, pa0, act), c21 = epilogue(c21, pm1, pa1, act);
        c30 = epilogue(c30, pm0, pa0, act), c31 = epilogue(c31, pm1, pa1, act);
        c40 = epilogue(c40, pm0, pa0, act), c41 = epilogue(c41, pm1, pa1, act);
        c50 = epilogue(c50, pm0, pa0, act), c51 = epilogue(c51, pm1, pa1, act);
    }
    _mm512_mask_storeu_ps(c, m0, c00);
    _mm512_mask_storeu_ps(c + 16, m1, c01);
    if (mr > 1) {
        _mm512_mask_storeu_ps(c + ldc, m0, c10);
        _mm512_mask_storeu_ps(c + ldc + 16, m1, c11);
    }
    if (mr > 2) {
        _mm512_mask_storeu_ps(c + 2 * ldc, m0, c20);
        _mm512_mask_storeu_ps(c + 2 * ldc + 16, m1, c21);
    }
    if (mr > 3) {
        _mm512_mask_storeu_ps(c + 3 * ldc, m0, c30);
        _mm512_mask_storeu_ps(c + 3 * ldc + 16, m1, c31);
    }
    if (mr > 4) {
        _mm512_mask_storeu_ps(c + 4 * ldc, m0, c40);
        _mm512_mask_storeu_ps(c + 4 * ldc + 16, m1, c41);
    }
    if (mr > 5) {
        _mm512_mask_storeu_ps(c + 5 * ldc, m0, c50);
        _mm512_mask_storeu_ps(c + 5 * ldc + 16, m1, c51);
    }
}

static __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1u);
}

static void gemm_avx512(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                        int packed, float *c, int ldc, const nn_gemm_post *post)
{
    for (int j = 0; j < n; j += NR) {
        __mmask16 m0 = lanes(n - j), m1 = lanes(n - j - 16);
        const float *bj = packed ? b + (long)(j / NR) * k * NR : b + j;
        int i = 0;
        for (; i + MR <= m; i += MR)
            block(6, k, a + (long)i * lda, lda, bj, ldb, c + (long)i * ldc + j, ldc, m0, m1, post,
                  j);
        const float *ai = a + (long)i * lda;
        float *ci = c + (long)i * ldc + j;
        switch (m - i) {
        case 5:
            block(5, k, ai, lda, bj, ldb, ci, ldc, m0, m1, post, j);
            break;
        case 4:
            block(4, k, ai, lda, bj, ldb, ci, ldc, m0, m1, post, j);
            break;
        case 3:
            block(3, k, ai, lda, bj, ldb, ci, ldc, m0, m1, post, j);
            break;
        case 2:
            block(2, k, ai, lda, bj, ldb, ci, ldc, m0, m1, post, j);
            break;
        case 1:
            block(1, k, ai, lda, bj, ldb, ci, ldc, m0, m1, post, j);
            break;
        default:
            break;
        }
    }
}

nn_gemm_fn nn_gemm_avx512_fn(void)
{
    return gemm_avx512;
}
