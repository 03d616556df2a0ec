/*
 * hamming.c: the scalar masked-Hamming kernels, the run-time choice of the
 * best kernel for this CPU, and Daugman's normalisation (see hamming.h).
 *
 * The choice is made once, under pthread_once, from __builtin_cpu_supports:
 * the AVX-512 kernel needs "avx512f" and "avx512vpopcntdq" (and "avx512bw",
 * "avx512vl", with which its file is compiled), the AVX2 kernel "avx2".
 */
#include "match/hamming.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Portable popcount of a 64-bit word (SWAR, Knuth vol. 4A 7.1.3): this file
 * is compiled without -mpopcnt, and the builtin would call libgcc. */
static inline uint32_t popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* byte order does not matter to a popcount */
    return v;
}

void abis_hamming_counts_scalar(const uint8_t *a, const uint8_t *ma, const uint8_t *b,
                                const uint8_t *mb, size_t len, uint32_t *d, uint32_t *n)
{
    uint32_t dd = 0, nn = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = load64(ma + i) & load64(mb + i);
        nn += popcount64(m);
        dd += popcount64((load64(a + i) ^ load64(b + i)) & m);
    }
    for (; i < len; i++) {
        uint64_t m = (uint64_t)(ma[i] & mb[i]);
        nn += popcount64(m);
        dd += popcount64((uint64_t)((a[i] ^ b[i]) & m));
    }
    *d = dd;
    *n = nn;
}

void abis_hamming_scan_scalar(const abis_iris_code *probe, size_t n_shifts,
                              const abis_iris_code *rows, const uint32_t *idx, size_t count,
                              uint32_t *out)
{
    for (size_t i = 0; i < count; i++) {
        const abis_iris_code *r = &rows[idx ? idx[i] : i];
        for (size_t s = 0; s < n_shifts; s++) {
            uint32_t d, n;
            abis_hamming_counts_scalar(probe[s].code, probe[s].mask, r->code, r->mask,
                                       ABIS_IRIS_BYTES, &d, &n);
            out[i * n_shifts + s] = d | (n << 16);
        }
    }
}

/* ---- run-time choice ---------------------------------------------------------- */

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static abis_hamming_kernel kernels[3]; /* written once under choose_once */
static size_t n_kernels;
static atomic_int force_scalar = 0;
/* t[n] = sqrt(n / 911) / n, Daugman's normalisation (hamming.h) */
static double norm_table[ABIS_IRIS_BITS + 1];

static void choose_kernel(void)
{
    for (uint32_t n = 1; n <= ABIS_IRIS_BITS; n++)
        norm_table[n] = sqrt(n / 911.0) / n;
    kernels[0] = (abis_hamming_kernel){"scalar", abis_hamming_counts_scalar,
                                       abis_hamming_scan_scalar};
    n_kernels = 1;
    const char *env = getenv("ABIS_KERNEL");
    if (env && strcmp(env, "scalar") == 0)
        return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (abis_hamming_scan_avx2_fn() && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("popcnt"))
        kernels[n_kernels++] = (abis_hamming_kernel){"avx2", abis_hamming_counts_avx2_fn(),
                                                     abis_hamming_scan_avx2_fn()};
    if (abis_hamming_scan_avx512_fn() && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("popcnt"))
        kernels[n_kernels++] = (abis_hamming_kernel){"avx512", abis_hamming_counts_avx512_fn(),
                                                     abis_hamming_scan_avx512_fn()};
#endif
}

const abis_hamming_kernel *abis_hamming_best(void)
{
    pthread_once(&choose_once, choose_kernel);
    if (atomic_load_explicit(&force_scalar, memory_order_relaxed))
        return &kernels[0];
    return &kernels[n_kernels - 1];
}

const abis_hamming_kernel *abis_hamming_available(size_t *n)
{
    pthread_once(&choose_once, choose_kernel);
    *n = n_kernels;
    return kernels;
}

void abis_hamming_force_scalar(int on)
{
    atomic_store_explicit(&force_scalar, on ? 1 : 0, memory_order_relaxed);
}

double abis_hamming_norm(uint32_t d, uint32_t n)
{
    if (n == 0)
        return 0.5;
    if (n > ABIS_IRIS_BITS)
        return 0.5 - (0.5 - (double)d / n) * sqrt(n / 911.0);
    pthread_once(&choose_once, choose_kernel);
    return 0.5 - (0.5 * n - d) * norm_table[n];
}
