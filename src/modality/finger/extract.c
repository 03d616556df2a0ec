/*
 * extract.c: fingerprint feature extraction, the driver (finger.h): the
 * resolution, rescaling to 500 ppi, the refusals, and the stages in order
 * (finger_internal.h): field -> enhancement -> skeleton -> minutiae ->
 * quality.
 *
 * Resolution: minutiae matching compares distances in pixels, so two
 * images at different resolutions would fail to match without a word;
 * every image is therefore rescaled to 500 ppi first (area averaging when
 * shrinking, bilinear when enlarging).  The resolution is the caller's, or
 * the file's, or 500 ppi.  File resolutions under 250 ppi are the "72 dpi"
 * placeholders image software writes when it knows none; they are refused
 * with the reason rather than trusted or guessed at.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger_internal.h"

/* The smallest image side accepted, pixels at 500 ppi (5 mm). */
#define FP_MIN_SIDE 100
/* The least foreground area with a ridge pattern, pixels at 500 ppi
 * (10,000 px = 0.04 in^2 = 26 mm^2, a fifth of a small sensor's window). */
#define FP_MIN_AREA 10000.0
/* The least mean orientation certainty of a fingerprint's foreground; FVC
 * 2002 prints measure 0.31-0.9 (mean 0.57), noise about 0.1. */
#define FP_MIN_COHERENCE 0.2
/* The least mean ridge-wave strength of the foreground (field.c); FVC 2002
 * prints measure 0.23-0.9 (mean 0.56). */
#define FP_MIN_CLARITY 0.15

/* v clamped to [0, n). */
static int clampi(int v, int n)
{
    return v < 0 ? 0 : v >= n ? n - 1 : v;
}

/* Rescale grey (w x h) by s into a new buffer of *ow x *oh. */
static float *rescale(const uint8_t *px, int w, int h, double s, int *ow, int *oh)
{
    int nw = (int)lrint(w * s), nh = (int)lrint(h * s);
    if (nw < 1)
        nw = 1;
    if (nh < 1)
        nh = 1;
    float *out = malloc((size_t)nw * nh * sizeof *out);
    if (!out)
        return NULL;
    if (s < 1) {
        /* area averaging: each output pixel is the mean of the source area
         * it covers, partial pixels weighted */
        double inv = 1.0 / s;
        for (int y = 0; y < nh; y++) {
            double y0 = y * inv, y1 = (y + 1) * inv;
            for (int x = 0; x < nw; x++) {
                double x0 = x * inv, x1 = (x + 1) * inv, acc = 0, wt = 0;
                for (int sy = (int)y0; sy < (int)ceil(y1) && sy < h; sy++) {
                    double wy = fmin(y1, sy + 1) - fmax(y0, sy);
                    for (int sx = (int)x0; sx < (int)ceil(x1) && sx < w; sx++) {
                        double wx = fmin(x1, sx + 1) - fmax(x0, sx);
                        acc += wx * wy * px[(size_t)sy * w + sx];
                        wt += wx * wy;
                    }
                }
                out[(size_t)y * nw + x] = (float)(wt > 0 ? acc / wt : 0);
            }
        }
    } else {
        for (int y = 0; y < nh; y++) {
            double fy = (y + 0.5) / s - 0.5;
            int y0 = (int)floor(fy);
            double ay = fy - y0;
            int ya = clampi(y0, h), yb = clampi(y0 + 1, h);
            for (int x = 0; x < nw; x++) {
                double fx = (x + 0.5) / s - 0.5;
                int x0 = (int)floor(fx);
                double ax = fx - x0;
                int xa = clampi(x0, w), xb = clampi(x0 + 1, w);
                double v =
                    (px[(size_t)ya * w + xa] * (1 - ax) + px[(size_t)ya * w + xb] * ax) * (1 - ay) +
                    (px[(size_t)yb * w + xa] * (1 - ax) + px[(size_t)yb * w + xb] * ax) * ay;
                out[(size_t)y * nw + x] = (float)v;
            }
        }
    }
    *ow = nw;
    *oh = nh;
    return out;
}

abis_status abis_finger_extract(const abis_image *img, double ppi, abis_finger_template *out,
                                abis_finger_info *info, abis_error *err)
{
    abis_finger_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    memset(out, 0, sizeof *out);
    if (!img || !img->pixels || img->width <= 0 || img->height <= 0)
        return abis_error_set(err, ABIS_E_INVALID, "no fingerprint image given");
    if (ppi <= 0 && img->ppi > 0) {
        ppi = img->ppi;
        if (ppi < ABIS_FINGER_MIN_PPI)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "the file says it is %.0f ppi, too coarse for fingerprints "
                                  "(at least %.0f); if that is a placeholder, give the "
                                  "resolution explicitly",
                                  ppi, ABIS_FINGER_MIN_PPI);
    }
    if (ppi <= 0)
        ppi = ABIS_FINGER_PPI;
    if (ppi < ABIS_FINGER_MIN_PPI || ppi > ABIS_FINGER_MAX_PPI)
        return abis_error_set(err, ABIS_E_INVALID,
                              "resolution %.0f ppi is out of range (%.0f to %.0f ppi)", ppi,
                              ABIS_FINGER_MIN_PPI, ABIS_FINGER_MAX_PPI);
    info->ppi = ppi;
    double s = ABIS_FINGER_PPI / ppi;
    int w = img->width, h = img->height;
    if (fabs(s - 1) <= 0.01)
        s = 1;
    int nw = (int)lrint(w * s), nh = (int)lrint(h * s);
    if (nw < FP_MIN_SIDE || nh < FP_MIN_SIDE)
        return abis_error_set(err, ABIS_E_INVALID,
                              "the image is too small: %d x %d pixels at 500 ppi (at least %d "
                              "x %d, 5 x 5 mm)",
                              nw, nh, FP_MIN_SIDE, FP_MIN_SIDE);
    float *grey = rescale(img->pixels, w, h, s, &nw, &nh);
    if (!grey)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for a %d x %d fingerprint", nw, nh);
    info->width = nw;
    info->height = nh;
    fp_field f;
    float *enh = NULL;
    uint8_t *skel = NULL;
    abis_status st = fp_field_compute(&f, grey, nw, nh, err);
    free(grey);
    if (st != ABIS_OK)
        return st;
    info->area = f.area;
    info->coherence = f.mean_coh;
    info->clarity = f.clarity;
    info->ridge_period = f.period_median;
    if (f.area < FP_MIN_AREA) {
        st = abis_error_set(err, ABIS_E_INVALID,
                            "no fingerprint found: %.0f mm2 of ridge pattern (at least %.0f "
                            "mm2 needed)",
                            f.area * 0.00258064, FP_MIN_AREA * 0.00258064);
        goto out;
    }
    if (f.mean_coh < FP_MIN_COHERENCE || f.clarity < FP_MIN_CLARITY) {
        st = abis_error_set(err, ABIS_E_INVALID,
                            "this does not look like a fingerprint: %s %.2f (a fingerprint's "
                            "is at least %.2f)",
                            f.mean_coh < FP_MIN_COHERENCE ? "the ridge-flow certainty is"
                                                          : "the share with a clear ridge "
                                                            "pattern is",
                            f.mean_coh < FP_MIN_COHERENCE ? f.mean_coh : f.clarity,
                            f.mean_coh < FP_MIN_COHERENCE ? FP_MIN_COHERENCE : FP_MIN_CLARITY);
        goto out;
    }
    enh = malloc((size_t)nw * nh * sizeof *enh);
    skel = malloc((size_t)nw * nh);
    if (!enh || !skel) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for a %d x %d fingerprint", nw, nh);
        goto out;
    }
    if ((st = fp_enhance(&f, enh, err)) != ABIS_OK)
        goto out;
    if ((st = fp_skeletonize(&f, enh, skel, err)) != ABIS_OK)
        goto out;
    int n = 0, raw = 0;
    st = fp_minutiae_find(&f, skel, out->m, ABIS_FINGER_MAX_MINUTIAE, &n, &raw, err);
    if (st != ABIS_OK)
        goto out;
    info->minutiae_raw = raw;
    info->minutiae = n;
    if (n < ABIS_FINGER_MIN_MINUTIAE) {
        st = abis_error_set(err, ABIS_E_INVALID,
                            "only %d minutiae found (at least %d are needed to compare "
                            "fingerprints); capture the finger again",
                            n, ABIS_FINGER_MIN_MINUTIAE);
        goto out;
    }
    out->n = n;
    out->width = nw;
    out->height = nh;
    out->position = 0;
    out->quality = fp_quality_image(&f, n);
    info->quality = out->quality;
out:
    free(enh);
    free(skel);
    fp_field_free(&f);
    if (st != ABIS_OK)
        memset(out, 0, sizeof *out);
    return st;
}
