/*
 * signcode.c: sign codes, prepared probes, the scalar scoring kernel and the
 * run-time choice of the best kernel (see signcode.h).  The choice is made
 * once from the CPU's features (match/cpu.h): "avx512" needs AVX-512 and
 * VPOPCNTDQ, "popcnt" needs AVX2 and POPCNT (its file is compiled with the
 * AVX2 flags); ABIS_KERNEL=scalar forces the scalar one.
 */
#include "match/signcode.h"

#include <pthread.h>
#include <string.h>

#include "match/cpu.h"

void abis_sign_encode(const int8_t *q, size_t d, uint64_t *code)
{
    memset(code, 0, abis_sign_words(d) * sizeof *code);
    for (size_t i = 0; i < d; i++)
        if (q[i] > 0)
            code[i / 64] |= (uint64_t)1 << (i % 64);
}

void abis_sign_encode_centred(const int8_t *q, float scale, const float *centre, size_t d,
                              uint64_t *code)
{
    memset(code, 0, abis_sign_words(d) * sizeof *code);
    for (size_t i = 0; i < d; i++)
        if ((float)q[i] * scale > centre[i])
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
    abis_sign_scan_with(p, codes, count, out, popcount64);
}

size_t abis_sign_above_scalar(const int32_t *s, size_t n, int32_t thr, uint32_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= thr)
            out[m++] = (uint32_t)i;
    return m;
}

size_t abis_sign_select_scalar(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                               int32_t thr, uint32_t *idx, int32_t *score)
{
    return abis_sign_select_with(abis_sign_scan_scalar, abis_sign_above_scalar, p, codes, count,
                                 thr, idx, score);
}

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static abis_sign_kernel kernels[3]; /* written once under choose_once */
static size_t n_kernels;

static void choose_kernel(void)
{
    const abis_cpu *c = abis_cpu_features();
    kernels[0] = (abis_sign_kernel){"scalar", abis_sign_scan_scalar, abis_sign_above_scalar,
                                    abis_sign_select_scalar};
    n_kernels = 1;
    if (c->avx2 && c->popcnt && abis_sign_scan_popcnt_fn())
        kernels[n_kernels++] =
            (abis_sign_kernel){"popcnt", abis_sign_scan_popcnt_fn(), abis_sign_above_scalar,
                               abis_sign_select_popcnt_fn()};
    if (c->avx512_vpopcntdq && abis_sign_scan_avx512_fn())
        kernels[n_kernels++] =
            (abis_sign_kernel){"avx512", abis_sign_scan_avx512_fn(), abis_sign_above_avx512_fn(),
                               abis_sign_select_avx512_fn()};
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
