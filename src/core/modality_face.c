/*
 * modality_face.c: the "face" modality kind: face photos in (or descriptors
 * made elsewhere by the same network), 128-value descriptors of
 * @vladmandic/face-api's ResNet network as templates (src/modality/face/),
 * compared by Euclidean distance as the network was trained, reported as
 * score = 1 - distance so that higher means more alike, as for every kind.
 *
 * Canonical template: the 128 float32 values as the network makes them (not
 * normalised: the distance is between raw descriptors), 512 bytes, format
 * "faceapi-resnet128".
 *
 * Default calibration: the impostor score distribution measured on LFW's
 * View-2 dev folds (docs/ACCURACY.md), as a table of score -> FMR with a
 * likelihood-ratio model, made by `abis calibrate`; `abis modality calibrate`
 * replaces it with one fitted on the operator's own photos.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abis/face.h"
#include "core/modality.h"
#include "modality/face/face.h"
#include "template/vector.h"

#define DESCRIPTOR_BYTES (ABIS_FACE_DIM * sizeof(float))

static abis_status face_check_def(const abis_modality_rec *m, abis_error *err)
{
    return abis_modality_check_fixed(m, ABIS_FACE_DIM, "face descriptors have 128 values", err);
}

static abis_status face_validate(const abis_modality_rec *m, const abis_template_input *in,
                                 const char *what, unsigned char **out, size_t *len,
                                 double *quality, abis_error *err)
{
    if (quality)
        *quality = -1;
    float *d = malloc(DESCRIPTOR_BYTES);
    if (!d)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory validating %s", what);
    abis_status st;
    if (in->vector) {
        /* a descriptor made elsewhere by the same network: checked (count,
         * finite, non-zero) and kept as it is */
        st = abis_vector_validate(in->vector, in->dim, ABIS_FACE_DIM, m->name, what, d, err);
        if (st == ABIS_OK)
            memcpy(d, in->vector, DESCRIPTOR_BYTES);
    } else if (in->capture && in->capture_size) {
        abis_face_options o;
        abis_face_info info;
        char dir[4096];
        st = face_configured_status(&o, dir, sizeof dir, err);
        if (st == ABIS_OK)
            st = abis_face_extract(in->capture, in->capture_size, &o, d, &info, err);
        if (st != ABIS_OK)
            abis_error_prefix(err, "%s", what);
        else if (quality)
            *quality = info.quality;
    } else {
        st = abis_error_set(err, ABIS_E_INVALID, "%s for modality '%s' carries no face photo", what,
                            m->name);
    }
    if (st != ABIS_OK) {
        abis_modality_free_template((unsigned char *)d, DESCRIPTOR_BYTES);
        return st;
    }
    *out = (unsigned char *)d;
    *len = DESCRIPTOR_BYTES;
    return ABIS_OK;
}

static int face_canonical_ok(const abis_modality_rec *m, const void *tmpl, size_t len)
{
    (void)m;
    if (len != DESCRIPTOR_BYTES)
        return 0;
    const float *d = tmpl;
    for (int i = 0; i < ABIS_FACE_DIM; i++)
        if (!isfinite(d[i]))
            return 0;
    return 1;
}

static double face_compare(const abis_modality_rec *m, const void *a, size_t alen, const void *b,
                           size_t blen)
{
    (void)m, (void)alen, (void)blen;
    return face_score(a, b);
}

static abis_status face_gallery(const abis_modality_rec *m, abis_gallery **out, abis_error *err)
{
    (void)m;
    return face_gallery_create(out, err);
}

/* Fitted by `abis calibrate` on LFW View-2 folds 1-5 (the 1,500 impostor
 * pairs and every impostor pair of the photos they name), docs/ACCURACY.md. */
#include "core/modality_face_calibration.h"

static void face_default_calibration(const abis_modality_rec *m, char *buf, size_t cap)
{
    (void)m;
    snprintf(buf, cap, "%s", FACE_DEFAULT_CALIBRATION);
}

const abis_modality_kind abis_modality_face = {
    .kind = "face",
    .format = "faceapi-resnet128",
    .fixed_dim = ABIS_FACE_DIM,
    .check_def = face_check_def,
    .validate = face_validate,
    .canonical_ok = face_canonical_ok,
    .compare = face_compare,
    .gallery_create = face_gallery,
    .default_calibration = face_default_calibration,
};
