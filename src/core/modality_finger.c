/*
 * modality_finger.c: the "minutiae" modality kind: fingerprint images (or
 * ISO/IEC 19794-2:2005 / ANSI INCITS 378-2004 minutiae records) in, minutiae
 * templates (src/modality/finger/, docs/FORMATS.md) stored, compared by our
 * matcher (match.h), searched by the two-stage finger gallery.
 *
 * A template carries its finger position (1-10, or 0 when unknown).  Two
 * templates of different known positions are different fingers, so they
 * score 0; the verify path already compares only matching positions, and
 * this keeps the fused multi-finger paths (where a candidate's missing
 * score is computed from all its templates) and the gallery (which filters
 * by position) consistent with it.
 *
 * The declared dimension of a minutiae modality is the most minutiae a
 * template holds (ABIS_FINGER_MAX_MINUTIAE); the operator leaves it out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/modality.h"
#include "crypto/crypto.h"
#include "gallery/gallery_finger.h"
#include "modality/finger/finger.h"
#include "modality/finger/match.h"

static abis_status finger_check_def(const abis_modality_rec *m, abis_error *err)
{
    if (m->dim != ABIS_FINGER_MAX_MINUTIAE)
        return abis_error_set(err, ABIS_E_INVALID,
                              "modality '%s': minutiae templates hold up to %d minutiae; leave "
                              "the dimension out",
                              m->name, ABIS_FINGER_MAX_MINUTIAE);
    return ABIS_OK;
}

/* The template of one input: a minutiae record read as it stands, or an
 * image through our extractor. */
static abis_status finger_template_of(const abis_template_input *in, const char *what,
                                      abis_finger_template *t, double *quality, abis_error *err)
{
    abis_status st;
    if (abis_finger_record_detect(in->capture, in->capture_size) != ABIS_FINGER_RECORD_NONE) {
        st = abis_finger_record_read(in->capture, in->capture_size, in->position, t, err);
        if (st == ABIS_OK && quality)
            *quality = t->quality > 0 ? t->quality : -1;
        return st != ABIS_OK ? abis_error_prefix(err, "%s", what) : ABIS_OK;
    }
    abis_image img;
    st = abis_image_decode(in->capture, in->capture_size, what, &img, err);
    if (st != ABIS_OK)
        return st;
    st = abis_finger_extract(&img, in->ppi, t, NULL, err);
    abis_wipe_free(img.pixels, (size_t)img.width * (size_t)img.height);
    if (st != ABIS_OK)
        return abis_error_prefix(err, "%s", what);
    if (quality)
        *quality = t->quality;
    return ABIS_OK;
}

static abis_status finger_validate(const abis_modality_rec *m, const abis_template_input *in,
                                   const char *what, unsigned char **out, size_t *len,
                                   double *quality, abis_error *err)
{
    if (quality)
        *quality = -1;
    if (in->vector)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: modality '%s' takes fingerprint images or minutiae records, "
                              "not vectors",
                              what, m->name);
    if (!in->capture || in->capture_size == 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s: no fingerprint image given", what);
    if (in->position < 0 || in->position > 10)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: finger position %d is not 1-10 (or 0, unknown)", what,
                              in->position);
    abis_finger_template *t = malloc(sizeof *t);
    if (!t)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    abis_status st = finger_template_of(in, what, t, quality, err);
    if (st == ABIS_OK) {
        if (in->position)
            t->position = in->position;
        *len = abis_finger_template_size(t->n);
        *out = malloc(*len);
        if (!*out)
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        else
            abis_finger_template_write(t, *out);
    }
    abis_wipe_free(t, sizeof *t);
    return st;
}

static int finger_canonical_ok(const abis_modality_rec *m, const void *tmpl, size_t len)
{
    (void)m;
    abis_finger_template *t = malloc(sizeof *t);
    int ok = t && abis_finger_template_read(tmpl, len, t, NULL) == ABIS_OK;
    if (t)
        abis_wipe_free(t, sizeof *t);
    return ok;
}

static double finger_compare(const abis_modality_rec *m, const void *a, size_t alen, const void *b,
                             size_t blen)
{
    (void)m;
    abis_finger_template *ta = malloc(sizeof *ta), *tb = malloc(sizeof *tb);
    double s = 0;
    if (ta && tb && abis_finger_template_read(a, alen, ta, NULL) == ABIS_OK &&
        abis_finger_template_read(b, blen, tb, NULL) == ABIS_OK &&
        !(ta->position && tb->position && ta->position != tb->position))
        s = abis_finger_compare(ta, tb);
    if (ta)
        abis_wipe_free(ta, sizeof *ta);
    if (tb)
        abis_wipe_free(tb, sizeof *tb);
    return s;
}

static abis_status finger_gallery_create(const abis_modality_rec *m, abis_gallery **out,
                                         abis_error *err)
{
    (void)m;
    return abis_gallery_finger_create(out, err);
}

/* The default calibration, printed by bench/finger_calibrate.c on FVC2002
 * DB1_B and DB3_B (the real databases), every genuine and impostor pair:
 * the empirical impostor survival down to FMR 0.01, then an exponential
 * tail fitted to the top 1 % of impostor scores (docs/FINGER.md,
 * "Calibration": points below about 1e-4 are modelled, not measured), and
 * the Gaussian likelihood-ratio model fusion needs.  Replace it with one
 * fitted on the deployment's own data (abis calibrate). */
static const char finger_calibration[] =
    "{\"model\":\"table\",\"points\":[[0,1],[0.00779223,0.500174],[0.00910913,0.200174],"
    "[0.0100894,0.100174],[0.0110791,0.0501736],[0.0123248,0.0201389],"
    "[0.0136302,0.0100694],[0.0186935,0.001],[0.0237416,0.0001],[0.0287897,1e-05],"
    "[0.0338379,1e-06],[0.038886,1e-07],[0.0439341,1e-08],[0.0489822,1e-09],"
    "[0.0540303,1e-10],[0.0590784,1e-11],[0.0641265,1e-12]],"
    "\"tail\":{\"fit\":\"exponential\",\"from\":0.0136302,\"fmr\":0.0100694,\"beta\":0.00219237},"
    "\"llr\":{\"model\":\"gaussian\",\"genuine\":[0.143433,0.112957],"
    "\"impostor\":[0.00812518,0.00160724]},"
    "\"fitted_on\":{\"set\":\"FVC2002 DB1_B "
    "DB3_B\",\"genuine\":560,\"impostor\":5760,\"impostor_max\":0.0224619}}";

static void finger_default_calibration(const abis_modality_rec *m, char *buf, size_t cap)
{
    (void)m;
    snprintf(buf, cap, "%s", finger_calibration);
}

const abis_modality_kind abis_modality_finger = {
    .kind = "minutiae",
    .format = "minutiae1",
    .fixed_dim = ABIS_FINGER_MAX_MINUTIAE,
    .check_def = finger_check_def,
    .validate = finger_validate,
    .canonical_ok = finger_canonical_ok,
    .compare = finger_compare,
    .gallery_create = finger_gallery_create,
    .default_calibration = finger_default_calibration,
};
