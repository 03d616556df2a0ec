/*
 * match.c: comparing iris codes (see iris.h): rotation for head tilt and the
 * masked fractional Hamming distance with Daugman's normalisation.
 *
 * Each ring holds 2 * ABIS_IRIS_ANGLES = 256 bits (32 bytes), so a tilt of
 * one angular step rotates each ring by 2 bits.  Convention: shifting by s
 * moves the sample at angle a to angle (a + s) mod ABIS_IRIS_ANGLES, i.e.
 * out bit i of a ring = in bit (i - 2s) mod 256.
 *
 * The distance shifts the probe (code and mask) once per shift position and
 * compares each copy with the gallery code with the best Hamming kernel
 * (match/hamming.h); the 1:N gallery (gallery_iris.c) does the same with the
 * probe copies against many codes, and both normalise with
 * abis_hamming_norm, so 1:1 and 1:N agree bit for bit.
 */
#include "modality/iris/iris.h"

#include <string.h>

#include "match/hamming.h"

#define RING_BYTES (2 * ABIS_IRIS_ANGLES / 8) /* 32 */
#define RING_BITS (RING_BYTES * 8)

/* Rotate `n` bytes of ring `in` by `k` bits (0 <= k < 8 * RING_BYTES)
 * towards higher bit indices (LSB-first layout). */
static void rotate_ring(const uint8_t *in, unsigned k, uint8_t *out)
{
    unsigned q = k / 8, b = k % 8;
    for (unsigned j = 0; j < RING_BYTES; j++) {
        unsigned from = (j + RING_BYTES - q) % RING_BYTES;
        unsigned v = (unsigned)in[from] << b;
        if (b)
            v |= (unsigned)in[(from + RING_BYTES - 1) % RING_BYTES] >> (8 - b);
        out[j] = (uint8_t)v;
    }
}

void abis_iris_shift(const abis_iris_code *in, int shift, abis_iris_code *out)
{
    int s = shift % ABIS_IRIS_ANGLES;
    if (s < 0)
        s += ABIS_IRIS_ANGLES;
    unsigned k = (unsigned)(2 * s) % RING_BITS;
    abis_iris_code tmp; /* in and out may be the same code */
    for (unsigned r = 0; r < ABIS_IRIS_RINGS; r++) {
        rotate_ring(in->code + r * RING_BYTES, k, tmp.code + r * RING_BYTES);
        rotate_ring(in->mask + r * RING_BYTES, k, tmp.mask + r * RING_BYTES);
    }
    *out = tmp;
}

double abis_iris_distance(const abis_iris_code *probe, const abis_iris_code *gallery,
                          int max_shift, int *best_shift, unsigned *bits)
{
    if (max_shift < 0)
        max_shift = 0;
    if (max_shift > ABIS_IRIS_ANGLES / 2)
        max_shift = ABIS_IRIS_ANGLES / 2;
    const abis_hamming_kernel *kern = abis_hamming_best();
    double best = 0.0;
    int best_s = 0;
    uint32_t best_n = 0;
    int have = 0;
    for (int s = -max_shift; s <= max_shift; s++) {
        abis_iris_code p;
        abis_iris_shift(probe, s, &p);
        uint32_t d, n;
        kern->counts(p.code, p.mask, gallery->code, gallery->mask, ABIS_IRIS_BYTES, &d, &n);
        if (n == 0)
            continue; /* nothing comparable at this shift */
        double hd = abis_hamming_norm(d, n);
        /* the first (most negative) shift wins ties, as in the 1:N gallery */
        if (!have || hd < best) {
            best = hd;
            best_s = s;
            best_n = n;
            have = 1;
        }
    }
    if (!have) {
        best = 0.5;
        best_s = 0;
        best_n = 0;
    }
    if (best_shift)
        *best_shift = best_s;
    if (bits)
        *bits = best_n;
    return best;
}
