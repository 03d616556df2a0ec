/*
 * quality.c: the quality of a minutia and of a whole fingerprint image,
 * 0..100 (docs/FINGER.md, "Quality", says how it relates to NFIQ 2).
 *
 * A minutia's quality is the orientation certainty of its block (how well
 * one ridge direction explains the neighbourhood; clear ridges score near
 * 1, noise and creases near 0), scaled down within three ridge periods of
 * the print's edge (where ridges are cut and distorted) and by the
 * strength of the ridge wave there (field.c: the x-signature's
 * autocorrelation at the ridge period, 1 for a clean wave):
 *
 *   q = 1 + 99 * clamp((coherence - 0.1) / 0.6) * clamp(border / 3T, 0.25, 1)
 *       * (0.5 + 0.5 * wave)
 *
 * The image's quality combines four of the features NFIQ 2 computes, each
 * mapped to 0..1:
 *
 *   OCL   mean orientation certainty of the foreground, (c - 0.2) / 0.7
 *   LCS   mean ridge-wave strength of the foreground (local clarity)
 *   area  foreground area / 90,000 px (0.36 in^2 at 500 ppi, a full plain
 *         impression)
 *   MC    minutiae kept / 40 (a good plain impression has 40 or more)
 *
 *   quality = round(100 * (0.35 OCL + 0.30 LCS + 0.15 area + 0.20 MC))
 */
#include <math.h>

#include "modality/finger/finger_internal.h"

static float clamp01(float v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

uint8_t fp_quality_minutia(const fp_field *f, float x, float y)
{
    int bx = (int)x / FP_BLOCK, by = (int)y / FP_BLOCK;
    bx = bx < 0 ? 0 : bx >= f->bw ? f->bw - 1 : bx;
    by = by < 0 ? 0 : by >= f->bh ? f->bh - 1 : by;
    size_t b = (size_t)by * f->bw + bx;
    int px = (int)x, py = (int)y;
    px = px < 0 ? 0 : px >= f->w ? f->w - 1 : px;
    py = py < 0 ? 0 : py >= f->h ? f->h - 1 : py;
    float T = f->period[b];
    float c = clamp01((f->coh[b] - 0.1f) / 0.6f);
    float d = f->border[(size_t)py * f->w + px] / (3 * T);
    d = d < 0.25f ? 0.25f : d > 1 ? 1 : d;
    float q = 1 + 99 * c * d * (0.5f + 0.5f * f->wave[b]);
    return (uint8_t)lrintf(q);
}

int fp_quality_image(const fp_field *f, int n_minutiae)
{
    float ocl = clamp01((float)(f->mean_coh - 0.2) / 0.7f);
    float lcs = clamp01((float)f->clarity);
    float area = clamp01((float)(f->area / 90000.0));
    float mc = clamp01((float)n_minutiae / 40.0f);
    return (int)lrintf(100 * (0.35f * ocl + 0.30f * lcs + 0.15f * area + 0.20f * mc));
}
