/*
 * finger_internal.h: what the stages of fingerprint feature extraction hand
 * each other (the files of src/modality/finger; docs/FINGER.md):
 *
 *   extract.c   rescaling to 500 ppi, the refusals, the driver
 *   field.c     segmentation, orientation field, ridge period (block maps)
 *   enhance.c   contextual (oriented Gabor) enhancement
 *   skeleton.c  binarisation and thinning
 *   minutiae.c  minutiae on the skeleton, their direction, false-minutia removal
 *   quality.c   minutia and image quality
 *
 * Maps are per block of FP_BLOCK x FP_BLOCK pixels; block (bx, by) covers
 * pixels [bx * FP_BLOCK, (bx + 1) * FP_BLOCK) and its centre is at
 * (bx + 0.5) * FP_BLOCK.  Pixel maps are row-major, width w.
 */
#ifndef ABIS_FINGER_INTERNAL_H
#define ABIS_FINGER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"
#include "modality/finger/finger.h"

#define FP_BLOCK 8

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Ridge periods accepted at 500 ppi, pixels (ridges are 0.3-0.6 mm apart:
 * 6-12 px; the margins take very fine and very coarse ridges). */
#define FP_PERIOD_MIN 4.0f
#define FP_PERIOD_MAX 18.0f

typedef struct fp_field {
    int w, h;    /* pixels */
    int bw, bh;  /* blocks */
    float *grey; /* the image, w * h, 0..255 */
    float *norm; /* locally normalised image (zero mean, unit variance), w * h */
    /* per block: */
    uint8_t *fg;        /* 1: foreground (fingerprint) */
    float *theta;       /* ridge orientation, radians in [0, pi) */
    float *coh;         /* orientation certainty (coherence) 0..1, before smoothing */
    float *period;      /* ridge period, pixels */
    uint8_t *period_ok; /* 1: the period was measured in this block, not filled in */
    float *wave;        /* strength of the ridge wave there, 0..1 (0: none measured) */
    float *mean, *sd;   /* grey statistics of the block's neighbourhood */
    /* per pixel: */
    uint8_t *mask; /* 1: foreground */
    float *border; /* distance to the background, pixels (capped) */
    double area;   /* foreground pixels */
    double mean_coh, period_median;
    double clarity; /* mean wave strength over the foreground */
} fp_field;

/* field.c: every map of `f` from the grey image (w * h, copied in).
 * ABIS_E_INVALID with the reason when there is no fingerprint to speak of. */
abis_status fp_field_compute(fp_field *f, const float *grey, int w, int h, abis_error *err);
void fp_field_free(fp_field *f);

/* The block orientation at pixel (x, y), interpolated (doubled angles). */
float fp_field_theta_at(const fp_field *f, float x, float y);
/* The block period at pixel (x, y), nearest block. */
float fp_field_period_at(const fp_field *f, int x, int y);

/* enhance.c: oriented Gabor filtering of f->norm tuned to the local
 * orientation and period; out (w * h) is 0 outside the foreground. */
abis_status fp_enhance(const fp_field *f, float *out, abis_error *err);

/* skeleton.c: ridge pixels (enhanced < 0 inside the mask) thinned to a
 * one-pixel, 8-connected skeleton in `skel` (w * h, 1 = ridge). */
abis_status fp_skeletonize(const fp_field *f, const float *enhanced, uint8_t *skel,
                           abis_error *err);

/* minutiae.c: minutiae of the skeleton with false ones removed, at most
 * `cap` (best quality first); *raw gets the candidates before removal. */
abis_status fp_minutiae_find(const fp_field *f, const uint8_t *skel, abis_minutia *out, int cap,
                             int *n, int *raw, abis_error *err);

/* quality.c: the quality of the minutia at (x, y), 1..100. */
uint8_t fp_quality_minutia(const fp_field *f, float x, float y);
/* The image's quality 0..100 from the field and the minutiae kept. */
int fp_quality_image(const fp_field *f, int n_minutiae);

/* Angle helpers. */
static inline float fp_wrap2pi(float a)
{
    const float tp = (float)(2 * M_PI);
    while (a < 0)
        a += tp;
    while (a >= tp)
        a -= tp;
    return a;
}

#endif
