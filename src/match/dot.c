/*
 * dot.c: the scalar dot-product kernel and the run-time choice of the best
 * kernel for this CPU (see match.h).
 *
 * The choice is made once, under pthread_once, from __builtin_cpu_supports:
 * the AVX2 kernel needs both "avx2" and "fma".  ABIS_KERNEL=scalar in the
 * environment, or abis_dot_force_scalar(1), selects the scalar kernel; the
 * latter may be flipped at any time (an atomic flag read on each call).
 */
#include "match/match.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Scalar reference: accumulates in double (four independent sums, so the
 * loop is not one long dependency chain), which makes it the more accurate of
 * the kernels and the reference the tests compare the others against. */
float abis_dot_scalar(const float *a, const float *b, size_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)a[i] * b[i];
        s1 += (double)a[i + 1] * b[i + 1];
        s2 += (double)a[i + 2] * b[i + 2];
        s3 += (double)a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += (double)a[i] * b[i];
    return (float)((s0 + s1) + (s2 + s3));
}

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static abis_dot_fn chosen_fn = abis_dot_scalar; /* written once under choose_once */
static const char *chosen_name = "scalar";
static atomic_int force_scalar = 0;

static void choose_kernel(void)
{
    const char *env = getenv("ABIS_KERNEL");
    if (env && strcmp(env, "scalar") == 0)
        return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    abis_dot_fn avx2 = abis_dot_avx2_fn();
    if (avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        chosen_fn = avx2;
        chosen_name = "avx2";
    }
#endif
}

abis_dot_fn abis_dot_best(void)
{
    pthread_once(&choose_once, choose_kernel);
    if (atomic_load_explicit(&force_scalar, memory_order_relaxed))
        return abis_dot_scalar;
    return chosen_fn;
}

const char *abis_dot_best_name(void)
{
    pthread_once(&choose_once, choose_kernel);
    if (atomic_load_explicit(&force_scalar, memory_order_relaxed))
        return "scalar";
    return chosen_name;
}

void abis_dot_force_scalar(int on)
{
    atomic_store_explicit(&force_scalar, on ? 1 : 0, memory_order_relaxed);
}
