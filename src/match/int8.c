/*
 * int8.c: quantisation, prepared probes, the scalar int8 kernels and the
 * run-time choice of the best kernel for this CPU (see int8.h).
 *
 * The choice is made once, under pthread_once, from __builtin_cpu_supports:
 *   avx512vnni  needs avx512f, avx512bw, avx512vl and avx512vnni
 *   avxvnni     needs avx2, fma and avxvnni
 *   avx512bw    needs avx512f, avx512bw and avx512vl
 *   avx2        needs avx2 and fma
 * The best is the last one available in that order from the bottom up:
 * scalar, avx2, avx512bw, avxvnni, avx512vnni.
 */
#include "match/int8.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

float abis_i8_quantize(const float *v, size_t n, int8_t *q)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        if (a > m)
            m = a;
    }
    if (!(m > 0)) {
        memset(q, 0, n);
        return 0;
    }
    double inv = ABIS_I8_QMAX / (double)m;
    for (size_t i = 0; i < n; i++) {
        double t = round((double)v[i] * inv); /* half away from zero */
        if (t > ABIS_I8_QMAX)
            t = ABIS_I8_QMAX;
        if (t < -ABIS_I8_QMAX)
            t = -ABIS_I8_QMAX;
        q[i] = (int8_t)t;
    }
    return m / ABIS_I8_QMAX;
}

void abis_i8_probe_set(abis_i8_probe *p, const int8_t *q, size_t n, float scale, void *buf)
{
    size_t pad = abis_i8_padded(n);
    int8_t *pq = buf;
    uint8_t *aq = (uint8_t *)buf + pad;
    memset(buf, 0, 2 * pad);
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        pq[i] = q[i];
        aq[i] = (uint8_t)(q[i] < 0 ? -q[i] : q[i]);
        sum += q[i];
    }
    p->q = pq;
    p->aq = aq;
    p->sum = sum;
    p->scale = scale;
    p->n = n;
}

/* ---- scalar references ------------------------------------------------------- */

int32_t abis_i8_dot_scalar(const int8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

void abis_i8_scan_scalar(const abis_i8_probe *p, const int8_t *rows, size_t stride,
                         const uint32_t *idx, size_t count, int32_t *out)
{
    for (size_t i = 0; i < count; i++)
        out[i] = abis_i8_dot_scalar(p->q, rows + (idx ? idx[i] : i) * stride, p->n);
}

void abis_i8_batch_scalar(const abis_i8_probe *p, size_t np, const int8_t *rows, size_t stride,
                          size_t count, int32_t *out)
{
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < np; j++)
            out[j * count + i] = abis_i8_dot_scalar(p[j].q, rows + i * stride, p[j].n);
}

/* Accumulates in double, so it is the most accurate of the float kernels. */
void abis_i8_scan_f32_scalar(const float *probe, size_t n, const int8_t *rows, size_t stride,
                             const uint32_t *idx, size_t count, float *out)
{
    for (size_t i = 0; i < count; i++) {
        const int8_t *r = rows + (idx ? idx[i] : i) * stride;
        double s = 0;
        for (size_t k = 0; k < n; k++)
            s += (double)probe[k] * r[k];
        out[i] = (float)s;
    }
}

size_t abis_i8_above_scalar(const int32_t *dot, const float *scale, size_t n, float ps, float thr,
                            uint32_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (abis_i8_score(dot[i], ps, scale[i]) >= thr)
            out[m++] = (uint32_t)i;
    return m;
}

/* ---- run-time choice ------------------------------------------------------------ */

static const abis_i8_kernel scalar_kernel = {"scalar",
                                             abis_i8_dot_scalar,
                                             abis_i8_scan_scalar,
                                             abis_i8_batch_scalar,
                                             abis_i8_scan_f32_scalar,
                                             abis_i8_above_scalar};

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static const abis_i8_kernel *kernels[5]; /* written once under choose_once */
static size_t n_kernels;
static atomic_int force_scalar = 0;

static void choose_kernel(void)
{
    kernels[0] = &scalar_kernel;
    n_kernels = 1;
    const char *env = getenv("ABIS_KERNEL");
    if (env && strcmp(env, "scalar") == 0)
        return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl");
    if (avx2 && abis_i8_avx2_kernel())
        kernels[n_kernels++] = abis_i8_avx2_kernel();
    if (avx512 && abis_i8_avx512bw_kernel())
        kernels[n_kernels++] = abis_i8_avx512bw_kernel();
    if (avx2 && __builtin_cpu_supports("avxvnni") && abis_i8_avxvnni_kernel())
        kernels[n_kernels++] = abis_i8_avxvnni_kernel();
    if (avx512 && __builtin_cpu_supports("avx512vnni") && abis_i8_avx512vnni_kernel())
        kernels[n_kernels++] = abis_i8_avx512vnni_kernel();
#endif
}

const abis_i8_kernel *abis_i8_best(void)
{
    pthread_once(&choose_once, choose_kernel);
    if (atomic_load_explicit(&force_scalar, memory_order_relaxed))
        return kernels[0];
    return kernels[n_kernels - 1];
}

const abis_i8_kernel *const *abis_i8_available(size_t *n)
{
    pthread_once(&choose_once, choose_kernel);
    *n = n_kernels;
    return kernels;
}

void abis_i8_force_scalar(int on)
{
    atomic_store_explicit(&force_scalar, on ? 1 : 0, memory_order_relaxed);
}
