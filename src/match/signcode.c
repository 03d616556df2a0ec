/*
 * signcode.c: sign codes, prepared probes, the scalar scoring kernel and the
 * run-time choice of the best kernel (see signcode.h).  The choice is made
 * once from __builtin_cpu_supports: "avx512" needs avx512f, avx512bw,
 * avx512vl and avx512vpopcntdq, "popcnt" needs avx2 and popcnt (its file is
 * compiled with the AVX2 flags); ABIS_KERNEL=scalar forces the scalar one.
 */
#include "match/signcode.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void abis_sign_encode(const int8_t *q, size_t d, uint64_t *code)
{
    memset(code, 0, abis_sign_words(d) * sizeof *code);
    for (size_t i = 0; i < d; i++)
        if (q[i] > 0)
            code[i / 64] |= (uint64_t)1 << (i % 64);
}

void abis_sign_probe_set(abis_sign_probe *p, const int8_t *q, size_t d, uint64_t *buf)
{
    size_t words = abis_sign_words(d);
    p->words = words;
    p->planes = buf;
    memset(buf, 0, ABIS_SIGN_PLANES * words * sizeof *buf);
    for (size_t i = 0; i < d; i++) {
        /* t = round(7 q / 127), half away from zero, in [-7, 7] */
        int a = q[i] < 0 ? -q[i] : q[i];
        int t = (a * 2 * ABIS_SIGN_TMAX + 127) / (2 * 127);
        unsigned bits = (unsigned)(q[i] < 0 ? -t : t) & 0xF; /* 4-bit two's complement */
        for (int k = 0; k < ABIS_SIGN_PLANES; k++)
            if (bits >> k & 1)
                buf[k * words + i / 64] |= (uint64_t)1 << (i % 64);
    }
}

/* Portable popcount (SWAR, Knuth vol. 4A 7.1.3): this file is compiled
 * without -mpopcnt. */
static inline int popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (int)((x * 0x0101010101010101ull) >> 56);
}

void abis_sign_scan_scalar(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                           int32_t *out)
{
    const size_t w = p->words;
    for (size_t i = 0; i < count; i++) {
        const uint64_t *c = codes + i * w;
        int32_t s = 0;
        for (size_t j = 0; j < w; j++)
            s += popcount64(c[j] & p->planes[j]) + 2 * popcount64(c[j] & p->planes[w + j]) +
                 4 * popcount64(c[j] & p->planes[2 * w + j]) -
                 8 * popcount64(c[j] & p->planes[3 * w + j]);
        out[i] = s;
    }
}

size_t abis_sign_above_scalar(const int32_t *s, size_t n, int32_t thr, uint32_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= thr)
            out[m++] = (uint32_t)i;
    return m;
}

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static abis_sign_kernel kernels[3]; /* written once under choose_once */
static size_t n_kernels;

static void choose_kernel(void)
{
    kernels[0] = (abis_sign_kernel){"scalar", abis_sign_scan_scalar, abis_sign_above_scalar};
    n_kernels = 1;
    const char *env = getenv("ABIS_KERNEL");
    if (env && strcmp(env, "scalar") == 0)
        return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (abis_sign_scan_popcnt_fn() && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("popcnt"))
        kernels[n_kernels++] =
            (abis_sign_kernel){"popcnt", abis_sign_scan_popcnt_fn(), abis_sign_above_scalar};
    if (abis_sign_scan_avx512_fn() && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vpopcntdq"))
        kernels[n_kernels++] = (abis_sign_kernel){"avx512", abis_sign_scan_avx512_fn(),
                                                  abis_sign_above_avx512_fn()};
#endif
}

const abis_sign_kernel *abis_sign_best(void)
{
    pthread_once(&choose_once, choose_kernel);
    return &kernels[n_kernels - 1];
}

const abis_sign_kernel *abis_sign_available(size_t *n)
{
    pthread_once(&choose_once, choose_kernel);
    *n = n_kernels;
    return kernels;
}
