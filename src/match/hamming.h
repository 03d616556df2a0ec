/*
 * hamming.h: masked Hamming-distance kernels for binary codes (iris codes).
 *
 * Two codes a, b with masks ma, mb (1 = the bit is usable) are compared over
 * the bits both masks keep:
 *   n = popcount(ma & mb)                 bits compared
 *   d = popcount((a ^ b) & ma & mb)       bits that differ among them
 * Every kernel returns these integer counts, so the scalar reference and the
 * SIMD kernels (AVX2: byte-lookup popcount; AVX-512 VPOPCNTDQ) agree exactly,
 * and whatever is computed from the counts (the normalised distance,
 * abis_hamming_norm) is computed once, in shared scalar code.
 *
 * The kernel for one probe against many stored codes (1:N) works on iris code
 * records (abis_iris_code: 256 code bytes then 256 mask bytes, 512 bytes):
 * the probe comes as S pre-shifted copies (abis_iris_shift), each stored
 * record is read once and compared with all S copies while it is in
 * registers.  The kernel is chosen once at run time from the CPU's features
 * (avx512f + avx512vpopcntdq, else avx2, else scalar); ABIS_KERNEL=scalar in
 * the environment, or abis_hamming_force_scalar(1), selects the scalar one.
 */
#ifndef ABIS_MATCH_HAMMING_H
#define ABIS_MATCH_HAMMING_H

#include <stddef.h>
#include <stdint.h>

#include "modality/iris/iris.h"

/* Counts over `len` bytes of any length and alignment: *d and *n as above. */
typedef void (*abis_hamming_counts_fn)(const uint8_t *a, const uint8_t *ma, const uint8_t *b,
                                       const uint8_t *mb, size_t len, uint32_t *d, uint32_t *n);

/* One probe (n_shifts shifted copies, probe[0..n_shifts-1]) against `count`
 * records: record i is rows[idx[i]] (idx NULL: rows[i]).  Writes
 * out[i * n_shifts + s] = d | (n << 16) for shift copy s (d, n <= 2048).
 * n_shifts must be 1..ABIS_HAMMING_MAX_SHIFTS.  Rows and probes need no
 * particular alignment (64 bytes is fastest). */
typedef void (*abis_hamming_scan_fn)(const abis_iris_code *probe, size_t n_shifts,
                                     const abis_iris_code *rows, const uint32_t *idx,
                                     size_t count, uint32_t *out);

#define ABIS_HAMMING_MAX_SHIFTS 64
#define ABIS_HAMMING_D(packed) ((packed) & 0xFFFFu)
#define ABIS_HAMMING_N(packed) ((packed) >> 16)

/* The scalar references. */
void abis_hamming_counts_scalar(const uint8_t *a, const uint8_t *ma, const uint8_t *b,
                                const uint8_t *mb, size_t len, uint32_t *d, uint32_t *n);
void abis_hamming_scan_scalar(const abis_iris_code *probe, size_t n_shifts,
                              const abis_iris_code *rows, const uint32_t *idx, size_t count,
                              uint32_t *out);

/* The SIMD kernels' addresses (NULL when not compiled for this target).
 * Call them only when the CPU has the features: abis_hamming_kernel(). */
abis_hamming_counts_fn abis_hamming_counts_avx2_fn(void);
abis_hamming_scan_fn abis_hamming_scan_avx2_fn(void);
abis_hamming_counts_fn abis_hamming_counts_avx512_fn(void);
abis_hamming_scan_fn abis_hamming_scan_avx512_fn(void);

typedef struct abis_hamming_kernel {
    const char *name; /* "avx512", "avx2" or "scalar" */
    abis_hamming_counts_fn counts;
    abis_hamming_scan_fn scan;
} abis_hamming_kernel;

/* The best kernel this CPU runs (chosen once, thread-safe). */
const abis_hamming_kernel *abis_hamming_best(void);
/* Every kernel this CPU runs, scalar first; *n gets how many (1..3).  For
 * tests and benchmarks. */
const abis_hamming_kernel *abis_hamming_available(size_t *n);
/* Force the scalar kernel from now on (on = 1) or restore the best (0). */
void abis_hamming_force_scalar(int on);

/* Daugman's normalised distance from the counts:
 *   HD_norm = 0.5 - (0.5 - d / n) * sqrt(n / 911)
 * computed as 0.5 - (n / 2 - d) * t[n] with t[n] = sqrt(n / 911) / n
 * tabulated for n <= ABIS_IRIS_BITS, so that the 1:1 and 1:N paths give the
 * same double bit for bit.  0.5 when n = 0.  n > ABIS_IRIS_BITS uses the
 * formula directly. */
double abis_hamming_norm(uint32_t d, uint32_t n);

#endif
