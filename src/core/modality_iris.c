/*
 * modality_iris.c: the "iriscode" modality kind: near-infrared eye images
 * (or ISO/IEC 19794-6 records) in, 2048-bit iris codes with masks as
 * templates (src/modality/iris/), compared by the shift-minimised,
 * normalised fractional Hamming distance; score = 1 - HD_norm so that higher
 * means more alike, as for every kind.
 *
 * Default calibration (until `abis calibrate` fits one on real data):
 * Daugman's impostor model ("How iris recognition works", IEEE TCSVT 14(1),
 * 2004): a single-shift normalised HD of two different eyes is distributed as
 * a binomial fraction with N = 249 degrees of freedom and p = 0.5, and the
 * best of S = 15 shifts has FMR(h) = 1 - (1 - F(h))^15, F the binomial CDF.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modality.h"
#include "crypto/crypto.h"
#include "gallery/gallery_iris.h"
#include "modality/iris/iris.h"
#include "modality/iris/record.h"

#define DAUGMAN_DOF 249 /* degrees of freedom of 2048-bit IrisCodes (Daugman 2004) */
#define SHIFTS (2 * ABIS_IRIS_MAX_SHIFT + 1)
/* Nominal same-eye score (1 - HD_norm) for the default likelihood ratio:
 * CASIA-IrisV1 all pairs, docs/IRIS.md. */
#define NOMINAL_GENUINE_MEAN 0.87
#define NOMINAL_GENUINE_SD 0.09

static abis_status iris_check_def(const abis_modality_rec *m, abis_error *err)
{
    return abis_modality_check_fixed(m, ABIS_IRIS_BITS, "iris codes have 2048 bits", err);
}

static abis_status iris_validate(const abis_modality_rec *m, const abis_template_input *in,
                                 const char *what, unsigned char **out, size_t *len,
                                 double *quality, abis_error *err)
{
    if (quality)
        *quality = -1;
    if (in->vector)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: modality '%s' takes eye images, not vectors", what, m->name);
    if (!in->capture || in->capture_size == 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s: no eye image given", what);
    abis_image img;
    abis_status st;
    if (abis_iris_record_is(in->capture, in->capture_size)) {
        int eye = 0;
        st = abis_iris_record_decode(in->capture, in->capture_size, in->position, &img, &eye, err);
        if (st != ABIS_OK)
            return abis_error_prefix(err, "%s", what);
    } else {
        st = abis_image_decode(in->capture, in->capture_size, what, &img, err);
        if (st != ABIS_OK)
            return st; /* the message starts with `what` already */
    }
    abis_iris_code *code = malloc(sizeof *code);
    abis_iris_info info;
    if (!code)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    if (st == ABIS_OK && (st = abis_iris_encode(&img, code, &info, err)) != ABIS_OK)
        abis_error_prefix(err, "%s", what);
    abis_wipe_free(img.pixels, (size_t)img.width * (size_t)img.height);
    if (st != ABIS_OK) {
        abis_wipe_free(code, sizeof *code);
        return st;
    }
    if (quality)
        *quality = info.quality;
    *out = (unsigned char *)code;
    *len = sizeof *code;
    return ABIS_OK;
}

static int iris_canonical_ok(const abis_modality_rec *m, const void *tmpl, size_t len)
{
    (void)m, (void)tmpl;
    return len == sizeof(abis_iris_code);
}

static double iris_compare(const abis_modality_rec *m, const void *a, size_t alen, const void *b,
                           size_t blen)
{
    (void)m, (void)alen, (void)blen;
    return 1.0 - abis_iris_distance(a, b, ABIS_IRIS_MAX_SHIFT, NULL, NULL);
}

static abis_status iris_gallery_create(const abis_modality_rec *m, abis_gallery **out,
                                       abis_error *err)
{
    (void)m;
    return abis_gallery_iris_create(out, err);
}

/* P(X <= k) for X ~ Binomial(n, 1/2), summed in log space. */
static double binomial_cdf_half(int k, int n)
{
    if (k < 0)
        return 0;
    if (k >= n)
        return 1;
    double sum = 0;
    for (int i = 0; i <= k; i++)
        sum += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * M_LN2);
    return sum > 1 ? 1 : sum;
}

/* Mean and standard deviation of the impostor score 1 - k / N under the same
 * model: k the smallest of SHIFTS independent Binomial(N, 1/2) counts. */
static void impostor_moments(double *mean, double *sd)
{
    double m1 = 0, m2 = 0, prev = 0;
    for (int k = 0; k <= DAUGMAN_DOF; k++) {
        double f = binomial_cdf_half(k, DAUGMAN_DOF);
        double cdf_min = -expm1(SHIFTS * log1p(-fmin(f, 1.0 - 1e-16))); /* P(min <= k) */
        double pk = cdf_min - prev, score = 1.0 - (double)k / DAUGMAN_DOF;
        prev = cdf_min;
        m1 += pk * score;
        m2 += pk * score * score;
    }
    *mean = m1;
    *sd = sqrt(fmax(m2 - m1 * m1, 1e-12));
}

/* Daugman's impostor model as a calibration table: scores 1 - h for h from
 * 0.50 down to 0.15, one point per 0.01; and a likelihood-ratio model so
 * that both eyes (or iris with another modality) fuse without a fitted
 * calibration: the impostor side is the model's own moments, the genuine
 * side a nominal score 0.87 +- 0.09, the same-eye distribution measured on
 * CASIA-IrisV1 (docs/IRIS.md).  The engine caps the LR at 1 / FMR(s), so
 * the genuine model moves the weighting, not the false match rate; `abis
 * calibrate` replaces both with fitted ones. */
static void iris_default_calibration(const abis_modality_rec *m, char *buf, size_t cap)
{
    (void)m;
    size_t at = (size_t)snprintf(buf, cap, "{\"model\":\"table\",\"points\":[");
    int first = 1;
    for (int step = 50; step >= 15 && at < cap; step--) {
        double h = step / 100.0;
        double f = binomial_cdf_half((int)floor(h * DAUGMAN_DOF), DAUGMAN_DOF);
        double fmr = -expm1(SHIFTS * log1p(-fmin(f, 1.0 - 1e-16)));
        at += (size_t)snprintf(buf + at, cap - at, "%s[%.2f,%.6g]", first ? "" : ",", 1.0 - h, fmr);
        first = 0;
    }
    double imp_mean, imp_sd;
    impostor_moments(&imp_mean, &imp_sd);
    if (at < cap)
        snprintf(buf + at, cap - at,
                 "],\"llr\":{\"model\":\"gaussian\",\"genuine\":[%.2f,%.2f],"
                 "\"impostor\":[%.6f,%.6f]},"
                 "\"source\":\"Daugman 2004 binomial model, N=%d, %d "
                 "shifts; nominal genuine model\"}",
                 NOMINAL_GENUINE_MEAN, NOMINAL_GENUINE_SD, imp_mean, imp_sd, DAUGMAN_DOF, SHIFTS);
}

const abis_modality_kind abis_modality_iris = {
    .kind = "iriscode",
    .format = "iris2048",
    .fixed_dim = ABIS_IRIS_BITS,
    .check_def = iris_check_def,
    .validate = iris_validate,
    .canonical_ok = iris_canonical_ok,
    .compare = iris_compare,
    .gallery_create = iris_gallery_create,
    .default_calibration = iris_default_calibration,
};
