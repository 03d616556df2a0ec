/*
 * gemm_avx2.c: C = A * B (row-major) with AVX2 and FMA (gemm.h).
 *
 * The same scheme as gemm_avx512.c with 8-wide registers: 6 rows x 16
 * columns of C in 12 ymm accumulators, B's row k loaded as two ymm, A
 * broadcast.  Columns past n use masked loads and stores.
 */
#include "nn/gemm.h"

#include <immintrin.h>

#define MR 6
#define NR 16

/* c = act(c * mul + add) on one register (act as nn_gemm_post). */
static inline __attribute__((always_inline)) __m256 epilogue(__m256 c, __m256 mul, __m256 add,
                                                             int act)
{
    c = _mm256_fmadd_ps(c, mul, add);
    if (act == 1 || act == 2)
        c = _mm256_max_ps(c, _mm256_setzero_ps());
    if (act == 2)
        c = _mm256_min_ps(c, _mm256_set1_ps(6.0f));
    if (act == 3)
        c = _mm256_max_ps(c, _mm256_mul_ps(c, _mm256_set1_ps(0.10000000149011612f)));
    return c;
}

static inline __attribute__((always_inline)) void block(const int mr, int k, const float *a,
                                                        int lda, const float *b, int ldb, float *c,
                                                        int ldc, __m256i m0, __m256i m1, int full,
                                                        const nn_gemm_post *post, int j)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a, *a1 = a + lda, *a2 = a1 + lda, *a3 = a2 + lda, *a4 = a3 + lda,
                *a5 = a4 + lda;
    for (int p = 0; p < k; p++) {
        const float *bp = b + (long)p * ldb;
        __m256 b0 = full ? _mm256_loadu_ps(bp) : _mm256_maskload_ps(bp, m0);
        __m256 b1 = full ? _mm256_loadu_ps(bp + 8) : _mm256_maskload_ps(bp + 8, m1);
        __m256 v;
        v = _mm256_broadcast_ss(a0 + p);
        c00 = _mm256_fmadd_ps(v, b0, c00);
        c01 = _mm256_fmadd_ps(v, b1, c01);
        if (mr > 1) {
            v = _mm256_broadcast_ss(a1 + p);
            c10 = _mm256_fmadd_ps(v, b0, c10);
            c11 = _mm256_fmadd_ps(v, b1, c11);
        }
        if (mr > 2) {
            v = _mm256_broadcast_ss(a2 + p);
            c20 = _mm256_fmadd_ps(v, b0, c20);
            c21 = _mm256_fmadd_ps(v, b1, c21);
        }
        if (mr > 3) {
            v = _mm256_broadcast_ss(a3 + p);
            c30 = _mm256_fmadd_ps(v, b0, c30);
            c31 = _mm256_fmadd_ps(v, b1, c31);
        }
        if (mr > 4) {
            v = _mm256_broadcast_ss(a4 + p);
            c40 = _mm256_fmadd_ps(v, b0, c40);
            c41 = _mm256_fmadd_ps(v, b1, c41);
        }
        if (mr > 5) {
            v = _mm256_broadcast_ss(a5 + p);
            c50 = _mm256_fmadd_ps(v, b0, c50);
            c51 = _mm256_fmadd_ps(v, b1, c51);
        }
    }
    if (post) {
        __m256 pm0 = _mm256_maskload_ps(post->mul + j, m0),
               pm1 = _mm256_maskload_ps(post->mul + j + 8, m1);
        __m256 pa0 = _mm256_maskload_ps(post->add + j, m0),
               pa1 = _mm256_maskload_ps(post->add + j + 8, m1);
        int act = post->act;
        c00 = epilogue(c00, pm0, pa0, act), c01 = epilogue(c01, pm1, pa1, act);
        c10 = epilogue(c10, pm0, pa0, act), c11 = epilogue(c11, pm1, pa1, act);
        c20 = epilogue(c20, pm0, pa0, act), c21 = epilogue(c21, pm1, pa1, act);
        c30 = epilogue(c30, pm0, pa0, act), c31 = epilogue(c31, pm1, pa1, act);
        c40 = epilogue(c40, pm0, pa0, act), c41 = epilogue(c41, pm1, pa1, act);
        c50 = epilogue(c50, pm0, pa0, act), c51 = epilogue(c51, pm1, pa1, act);
    }
#define STORE(row, x0, x1)                                                                         \
    do {                                                                                           \
        float *cr = c + (long)(row)*ldc;                                                           \
        if (full) {                                                                                \
            _mm256_storeu_ps(cr, x0);                                                              \
            _mm256_storeu_ps(cr + 8, x1);                                                          \
        } else {                                                                                   \
            _mm256_maskstore_ps(cr, m0, x0);                                                       \
            _mm256_maskstore_ps(cr + 8, m1, x1);                                                   \
        }                                                                                          \
    } while (0)
    STORE(0, c00, c01);
    if (mr > 1)
        STORE(1, c10, c11);
    if (mr > 2)
        STORE(2, c20, c21);
    if (mr > 3)
        STORE(3, c30, c31);
    if (mr > 4)
        STORE(4, c40, c41);
    if (mr > 5)
        STORE(5, c50, c51);
#undef STORE
}

/* A mask with the first n (0..8) lanes set. */
static __m256i lanes(int n)
{
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static void rows(int m, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                 __m256i m0, __m256i m1, int full, const nn_gemm_post *post, int j)
{
    int i = 0;
    for (; i + MR <= m; i += MR)
        block(6, k, a + (long)i * lda, lda, b, ldb, c + (long)i * ldc, ldc, m0, m1, full, post, j);
    const float *ai = a + (long)i * lda;
    float *ci = c + (long)i * ldc;
    switch (m - i) {
    case 5:
        block(5, k, ai, lda, b, ldb, ci, ldc, m0, m1, full, post, j);
        break;
    case 4:
        block(4, k, ai, lda, b, ldb, ci, ldc, m0, m1, full, post, j);
        break;
    case 3:
        block(3, k, ai, lda, b, ldb, ci, ldc, m0, m1, full, post, j);
        break;
    case 2:
        block(2, k, ai, lda, b, ldb, ci, ldc, m0, m1, full, post, j);
        break;
    case 1:
        block(1, k, ai, lda, b, ldb, ci, ldc, m0, m1, full, post, j);
        break;
    default:
        break;
    }
}

static void gemm_avx2(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                      int packed, float *c, int ldc, const nn_gemm_post *post)
{
    for (int j = 0; j < n; j += NR) {
        /* packed: 16 columns are half of a panel (zero-padded past n) */
        const float *bj =
            packed ? b + (long)(j / NN_GEMM_PANEL) * k * NN_GEMM_PANEL + j % NN_GEMM_PANEL : b + j;
        if (n - j >= NR)
            rows(m, k, a, lda, bj, ldb, c + j, ldc, lanes(8), lanes(8), 1, post, j);
        else
            rows(m, k, a, lda, bj, ldb, c + j, ldc, lanes(n - j), lanes(n - j - 8), 0, post, j);
    }
}

nn_gemm_fn nn_gemm_avx2_fn(void)
{
    return gemm_avx2;
}
