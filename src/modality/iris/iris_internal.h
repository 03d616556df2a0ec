/*
 * iris_internal.h: the stages of abis_iris_encode, shared by segment.c,
 * normalize.c and encode.c only (docs/iris-encoding.md describes them).
 */
#ifndef ABIS_MODALITY_IRIS_INTERNAL_H
#define ABIS_MODALITY_IRIS_INTERNAL_H

#include <stdint.h>

#include "modality/iris/iris.h"

/* The dense polar grid the rubber sheet is sampled on before filtering: 4
 * radial rows per code ring and 4 angular samples per code angle, so a
 * rotation by one code step is a circular shift of exactly 4 columns. */
#define IRIS_ROW_PER_RING 4
#define IRIS_COL_PER_ANGLE 4
#define IRIS_POLAR_R (ABIS_IRIS_RINGS * IRIS_ROW_PER_RING)    /* 32 */
#define IRIS_POLAR_A (ABIS_IRIS_ANGLES * IRIS_COL_PER_ANGLE) /* 512 */
/* The grid spans the inner 80 % of the iris, from the pupil (rho = 0) to
 * rho = 0.8: the outer fifth is the most often covered by eyelids and
 * eyelashes, has the least texture and moves most with a limbus error (Ma et
 * al., IEEE TIP 13(6) 2004, keep the inner 75 % for the same reasons; on
 * CASIA-IrisV1 the outermost eighth of the full annulus was near chance,
 * docs/IRIS.md). */
#define IRIS_RHO_MAX 0.8

/* Segmentation result, in pixels of the input image. */
typedef struct iris_seg {
    double px, py, pr; /* pupil circle */
    double ix, iy, ir; /* limbus circle */
    /* Eyelids as parabolas y = a (x - ix)^2 + b (x - ix) + c; pixels above
     * the upper one / below the lower one are eyelid.  has_* = 0: none found. */
    int has_upper, has_lower;
    double upper[3], lower[3];
    double lash_t;  /* raw intensity below which a pixel is eyelash/shadow */
    double spec_t;  /* raw intensity above which a pixel is a specular reflection */
    double pupil_mean, iris_mean;
    double sharpness; /* 0..1 */
} iris_seg;

/* Find pupil, limbus, eyelids and the noise thresholds.  ABIS_E_INVALID with
 * the reason when no pupil or no iris boundary is found. */
abis_status iris_segment(const abis_image *img, iris_seg *seg, abis_error *err);

/* Sample the rubber sheet (Daugman): polar[row * IRIS_POLAR_A + col] for row
 * rho = IRIS_RHO_MAX (row + 0.5) / IRIS_POLAR_R (0 = pupil, 1 = limbus) and angle
 * 2 pi col / IRIS_POLAR_A (0 = image +x, growing towards image +y).  noise[]
 * is 1 where the sample is outside the image, eyelid, eyelash or reflection. */
void iris_normalize(const abis_image *img, const iris_seg *seg, float *polar, uint8_t *noise);

/* Filter the polar image (1-D log-Gabor along each ring) and quantise the
 * phase into the code and mask (iris.h layout).  Returns the share of bits
 * the mask keeps. */
double iris_encode_polar(const float *polar, const uint8_t *noise, abis_iris_code *out);

#endif
