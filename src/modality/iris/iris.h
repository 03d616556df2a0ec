/*
 * iris.h: the iris modality -- from a near-infrared eye image to an iris code
 * and its mask, and comparing codes.
 *
 * The code layout (docs/FORMATS.md, "Iris code") follows Daugman's 2048-bit
 * IrisCode: the normalised iris (rubber-sheet model) is sampled on
 * ABIS_IRIS_RINGS radial rings x ABIS_IRIS_ANGLES angles, and each sample
 * gives 2 bits: the signs of the real and imaginary parts of a complex
 * band-pass filter response (quantised phase).  Bit index of (ring r, angle a,
 * part p) = (r * ABIS_IRIS_ANGLES + a) * 2 + p, stored LSB-first: bit i is
 * bit (i % 8) of byte i / 8.  The mask has the same layout: 1 = the bit is
 * usable (iris, not eyelid, eyelash, reflection or outside the image).
 * A head tilt of one angular step rotates every ring's 2 * ANGLES bits by 2.
 */
#ifndef ABIS_MODALITY_IRIS_H
#define ABIS_MODALITY_IRIS_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"
#include "modality/image.h"

#define ABIS_IRIS_RINGS 8
#define ABIS_IRIS_ANGLES 128
#define ABIS_IRIS_BITS (ABIS_IRIS_RINGS * ABIS_IRIS_ANGLES * 2) /* 2048 */
#define ABIS_IRIS_BYTES (ABIS_IRIS_BITS / 8)                    /* 256 */
#define ABIS_IRIS_MAX_SHIFT 7 /* +-7 angular steps (+-19.7 degrees): 15 shifts */

typedef struct abis_iris_code {
    uint8_t code[ABIS_IRIS_BYTES];
    uint8_t mask[ABIS_IRIS_BYTES];
} abis_iris_code;

/* What segmentation found, and the quality factors of ISO/IEC 29794-6. */
typedef struct abis_iris_info {
    double pupil_x, pupil_y, pupil_r; /* pixels */
    double iris_x, iris_y, iris_r;
    double usable_fraction; /* share of code bits the mask keeps, 0..1 */
    double contrast;        /* iris-pupil contrast, 0..1 */
    double dilation;        /* pupil_r / iris_r */
    double sharpness;       /* 0..1 */
    double quality;         /* 0..100, the combination docs/FORMATS.md defines */
} abis_iris_info;

/* Segment, normalise and encode one eye image.  Refused with ABIS_E_INVALID
 * and the reason when no eye is found ("no pupil found: ...") or too little
 * iris is visible ("only 23 % of the iris is usable (at least 40 % needed)").
 * `info` may be NULL. */
abis_status abis_iris_encode(const abis_image *img, abis_iris_code *out, abis_iris_info *info,
                             abis_error *err);

/* Rotate a code (and its mask) by `shift` angular steps (negative: the other
 * way), as a head tilt would. */
void abis_iris_shift(const abis_iris_code *in, int shift, abis_iris_code *out);

/* Fractional Hamming distance of two codes over the bits both masks keep,
 * minimised over shifts -max_shift..max_shift of `probe`, then normalised
 * for the number of bits compared as Daugman does:
 *   HD_norm = 0.5 - (0.5 - HD_raw) * sqrt(n / 911),
 * n = bits compared, 911 Daugman's typical count for his 2048-bit codes.
 * *bits gets n at the best shift (may be NULL); when no bit is comparable
 * the distance is 0.5 with n = 0. */
double abis_iris_distance(const abis_iris_code *probe, const abis_iris_code *gallery,
                          int max_shift, int *best_shift, unsigned *bits);

#endif
