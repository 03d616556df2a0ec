/*
 * modality_vector.c: the "vector" modality kind: face and voice embeddings
 * given as float32 vectors, L2-normalised where they enter, compared by cosine
 * similarity, searched by the exact vector gallery.
 */
#include <stdlib.h>
#include <string.h>

#include "core/modality.h"
#include "match/match.h"
#include "template/vector.h"

/* Largest dimension accepted: embeddings in use are 128-1024 values. */
#define ABIS_VECTOR_DIM_MAX 4096

static abis_status vector_check_def(const abis_modality_rec *m, abis_error *err)
{
    if (m->dim == 0)
        return abis_error_set(err, ABIS_E_INVALID,
                              "modality '%s': a vector modality needs its dimension (--dim N, "
                              "the number of values its extractor makes)",
                              m->name);
    if (m->dim < 1 || m->dim > ABIS_VECTOR_DIM_MAX)
        return abis_error_set(err, ABIS_E_INVALID,
                              "modality '%s': dimension %d is out of range (1 to %d)", m->name,
                              m->dim, ABIS_VECTOR_DIM_MAX);
    return ABIS_OK;
}

static abis_status vector_validate(const abis_modality_rec *m, const abis_template_input *in,
                                   const char *what, unsigned char **out, size_t *len,
                                   double *quality, abis_error *err)
{
    if (quality)
        *quality = -1;
    if (!in->vector && in->capture)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: modality '%s' takes embedding vectors; turning a capture "
                              "into one needs an extractor this OpenABIS does not have yet",
                              what, m->name);
    if (!in->vector)
        return abis_error_set(err, ABIS_E_INVALID, "%s for modality '%s' carries no vector", what,
                              m->name);
    float *v = malloc((in->dim ? in->dim : 1) * sizeof(float));
    if (!v)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory validating %s", what);
    abis_status st =
        abis_vector_validate(in->vector, in->dim, (size_t)m->dim, m->name, what, v, err);
    if (st != ABIS_OK) {
        free(v);
        return st;
    }
    *out = (unsigned char *)v;
    *len = in->dim * sizeof(float);
    return ABIS_OK;
}

static int vector_canonical_ok(const abis_modality_rec *m, const void *tmpl, size_t len)
{
    (void)tmpl;
    return len == (size_t)m->dim * sizeof(float);
}

static double vector_compare(const abis_modality_rec *m, const void *a, size_t alen, const void *b,
                             size_t blen)
{
    (void)alen, (void)blen;
    return abis_dot_best()((const float *)a, (const float *)b, (size_t)m->dim);
}

static abis_status vector_gallery_create(const abis_modality_rec *m, abis_gallery **out,
                                         abis_error *err)
{
    return abis_gallery_vector_create((size_t)m->dim, out, err);
}

static void vector_default_calibration(const abis_modality_rec *m, char *buf, size_t cap)
{
    abis_calibration_default_vector(m->dim, buf, cap);
}

const abis_modality_kind abis_modality_vector = {
    .kind = "vector",
    .format = "f32",
    .fixed_dim = 0,
    .check_def = vector_check_def,
    .validate = vector_validate,
    .canonical_ok = vector_canonical_ok,
    .compare = vector_compare,
    .gallery_create = vector_gallery_create,
    .default_calibration = vector_default_calibration,
};
