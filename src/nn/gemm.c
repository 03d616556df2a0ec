/* gemm.c: the run-time choice of the matrix-product kernel, packing, and
 * 8-bit panels (gemm.h). */
#include "nn/gemm.h"
#include "nn/conv_internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void gemm_blas(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                      int packed, float *c, int ldc, const nn_gemm_post *post)
{
    (void)packed; /* never given packed B: see nn_gemm */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c,
                ldc);
    if (post)
        nn_gemm_post_apply(c, m, n, ldc, post);
}

/* c = act(c * mul + add) over rows of n values: one tight loop per
 * activation, so that the compiler vectorises it. */
#define POST_LOOP(EXPR)                                                                            \
    for (int i = 0; i < m; i++) {                                                                  \
        float *restrict row = c + (size_t)i * (size_t)ldc;                                         \
        for (int j = 0; j < n; j++) {                                                              \
            float t = row[j] * mul[j] + add[j];                                                    \
            row[j] = (EXPR);                                                                       \
        }                                                                                          \
    }

NN_VECTOR_CLONES
void nn_gemm_post_apply(float *c, int m, int n, int ldc, const nn_gemm_post *post)
{
    const float *restrict mul = post->mul, *restrict add = post->add;
    switch (post->act) {
    case 1: /* NN_ACT_RELU */
        POST_LOOP(t > 0.0f ? t : 0.0f)
        break;
    case 2: /* NN_ACT_RELU6 */
        POST_LOOP(t < 6.0f ? (t > 0.0f ? t : 0.0f) : 6.0f)
        break;
    case 3: /* NN_ACT_LEAKY: max(t, 0.1 t), both sides computed, so that it vectorises */
        POST_LOOP(t > t * 0.10000000149011612f ? t : t * 0.10000000149011612f)
        break;
    default:
        POST_LOOP(t)
        break;
    }
}

static const struct {
    const char *name;
    nn_gemm_fn (*get)(void);
} kernels[] = {{"avx512", nn_gemm_avx512_fn}, {"avx2", nn_gemm_avx2_fn}, {"blas", NULL}};

/* The kernel at kernels[i] if this CPU runs it, else NULL. */
static nn_gemm_fn runnable(size_t i)
{
    if (!kernels[i].get)
        return gemm_blas;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    nn_gemm_fn f = kernels[i].get();
    if (f && i == 0 && __builtin_cpu_supports("avx512f"))
        return f;
    if (f && i == 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return f;
#endif
    return NULL;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic(nn_gemm_fn) chosen = gemm_blas;
static atomic_size_t chosen_index = 2;

int nn_gemm_use(const char *name)
{
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        nn_gemm_fn f;
        if (strcmp(kernels[i].name, name) == 0 && (f = runnable(i)) != NULL) {
            atomic_store(&chosen, f);
            atomic_store(&chosen_index, i);
            return 0;
        }
    }
    return -1;
}

static void choose(void)
{
    /* One thread per request: a product runs on its caller's core. */
    openblas_set_num_threads(1);
    const char *env = getenv("ABIS_NN_GEMM");
    if (env && nn_gemm_use(env) == 0)
        return;
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (nn_gemm_use(kernels[i].name) == 0)
            return;
}

const char *nn_gemm_kernel(void)
{
    pthread_once(&once, choose);
    return kernels[atomic_load(&chosen_index)].name;
}

int nn_gemm_reads_packed(void)
{
    pthread_once(&once, choose);
    return atomic_load(&chosen) != gemm_blas;
}

size_t nn_gemm_packed_size(int k, int n)
{
    size_t panels = ((size_t)n + NN_GEMM_PANEL - 1) / NN_GEMM_PANEL;
    return panels * (size_t)k * NN_GEMM_PANEL;
}

void nn_gemm_pack(int k, int n, const float *b, int ldb, float *out)
{
    for (int j = 0; j < n; j += NN_GEMM_PANEL)
        for (int p = 0; p < k; p++)
            for (int q = 0; q < NN_GEMM_PANEL; q++)
                *out++ = j + q < n ? b[(size_t)p * (size_t)ldb + (size_t)(j + q)] : 0.0f;
}

void nn_gemm_pack_q(int k, int n, const unsigned char *q, int ldq, unsigned char *out)
{
    for (int j = 0; j < n; j += NN_GEMM_PANEL)
        for (int p = 0; p < k; p++)
            for (int c = 0; c < NN_GEMM_PANEL; c++)
                *out++ = j + c < n ? q[(size_t)p * (size_t)ldq + (size_t)(j + c)] : 0;
}

void nn_gemm(int m, int n, int k, const float *a, int lda, const nn_gemm_b *b, float *panel,
             float *c, int ldc, const nn_gemm_post *post)
{
    pthread_once(&once, choose);
    nn_gemm_fn f = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (f == gemm_blas || (!b->pack && !b->qpack)) {
        f(m, n, k, a, lda, b->b, b->ldb, 0, c, ldc, post);
        return;
    }
    if (b->pack) {
        f(m, n, k, a, lda, b->pack, NN_GEMM_PANEL, 1, c, ldc, post);
        return;
    }
    /* 8-bit panels: expand one, run every row over it, next. */
    size_t panel_size = (size_t)k * NN_GEMM_PANEL;
    for (int j = 0; j < n; j += NN_GEMM_PANEL) {
        const unsigned char *q = b->qpack + (size_t)(j / NN_GEMM_PANEL) * panel_size;
        for (size_t i = 0; i < panel_size; i++)
            panel[i] = (float)q[i] * b->qscale + b->qmin;
        int cols = n - j < NN_GEMM_PANEL ? n - j : NN_GEMM_PANEL;
        nn_gemm_post pj;
        if (post)
            pj = (nn_gemm_post){post->mul + j, post->add + j, post->act};
        f(m, cols, k, a, lda, panel, NN_GEMM_PANEL, 1, c + j, ldc, post ? &pj : NULL);
    }
}
