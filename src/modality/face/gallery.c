/*
 * gallery.c: 1:N search of face descriptors by Euclidean distance, the way
 * the descriptor network was trained, on the engine's exact vector gallery
 * (face.h).
 *
 * The vector gallery ranks rows by dot product with the probe.  Storing each
 * descriptor x as the row [x, |x|^2, 1] and searching with the probe y as
 * [2y, -1, -|y|^2] makes that dot product 2 x.y - |x|^2 - |y|^2 = -|x - y|^2:
 * the gallery's best rows are the nearest descriptors, found by the same
 * scan, top-k and filter code as every vector modality.  Scores come back as
 * 1 - distance, as face_score computes them for 1:1.
 */
#include <math.h>
#include <stdlib.h>

#include "modality/face/face.h"

#define ROW (ABIS_FACE_DIM + 2)

typedef struct face_gallery {
    abis_gallery base;
    abis_gallery *inner; /* the vector gallery over augmented rows */
} face_gallery;

double face_score(const float *a, const float *b)
{
    return 1.0 - abis_face_distance(a, b);
}

static double norm2(const float *x)
{
    double s = 0;
    for (int i = 0; i < ABIS_FACE_DIM; i++)
        s += (double)x[i] * x[i];
    return s;
}

/* A descriptor's size, or the reason it is not one. */
static abis_status check_len(size_t len, const char *what, abis_error *err)
{
    if (len != ABIS_FACE_DIM * sizeof(float))
        return abis_error_set(err, ABIS_E_INVALID,
                              "face gallery: %s has %zu bytes, a face descriptor %zu", what, len,
                              ABIS_FACE_DIM * sizeof(float));
    return ABIS_OK;
}

static void fg_destroy(abis_gallery *base)
{
    face_gallery *g = (face_gallery *)base;
    abis_gallery_destroy(g->inner);
    free(g);
}

static abis_status fg_add(abis_gallery *base, const abis_id *template_id, uint32_t slot,
                          const void *tmpl, size_t len, abis_error *err)
{
    face_gallery *g = (face_gallery *)base;
    abis_status st = check_len(len, "template", err);
    if (st != ABIS_OK)
        return st;
    const float *x = tmpl;
    float row[ROW];
    for (int i = 0; i < ABIS_FACE_DIM; i++)
        row[i] = x[i];
    row[ABIS_FACE_DIM] = (float)norm2(x);
    row[ABIS_FACE_DIM + 1] = 1.0f;
    return g->inner->ops->add(g->inner, template_id, slot, row, sizeof row, err);
}

static int fg_remove(abis_gallery *base, const abis_id *template_id)
{
    face_gallery *g = (face_gallery *)base;
    return g->inner->ops->remove(g->inner, template_id);
}

static size_t fg_remove_slot(abis_gallery *base, uint32_t slot)
{
    face_gallery *g = (face_gallery *)base;
    return g->inner->ops->remove_slot(g->inner, slot);
}

static size_t fg_count(const abis_gallery *base)
{
    const face_gallery *g = (const face_gallery *)base;
    return g->inner->ops->count(g->inner);
}

static abis_status fg_search(abis_gallery *base, const void *probe, size_t len, size_t k,
                             const abis_bitset *allow, abis_hit *out, size_t *n_out,
                             abis_error *err)
{
    face_gallery *g = (face_gallery *)base;
    *n_out = 0;
    abis_status st = check_len(len, "probe", err);
    if (st != ABIS_OK)
        return st;
    const float *y = probe;
    float q[ROW];
    for (int i = 0; i < ABIS_FACE_DIM; i++)
        q[i] = 2 * y[i];
    q[ABIS_FACE_DIM] = -1.0f;
    q[ABIS_FACE_DIM + 1] = (float)-norm2(y);
    st = g->inner->ops->search(g->inner, q, sizeof q, k, allow, out, n_out, err);
    for (size_t i = 0; st == ABIS_OK && i < *n_out; i++) /* -distance^2 -> 1 - distance */
        out[i].score = (float)(1.0 - sqrt(fmax(0.0, -(double)out[i].score)));
    return st;
}

static const abis_gallery_ops face_ops = {
    .destroy = fg_destroy,
    .add = fg_add,
    .remove = fg_remove,
    .remove_slot = fg_remove_slot,
    .count = fg_count,
    .search = fg_search,
};

abis_status face_gallery_create(abis_gallery **out, abis_error *err)
{
    *out = NULL;
    face_gallery *g = calloc(1, sizeof *g);
    if (!g)
        return abis_error_set(err, ABIS_E_NOMEM, "face gallery: out of memory");
    abis_status st = abis_gallery_vector_create(ROW, &g->inner, err);
    if (st != ABIS_OK) {
        free(g);
        return st;
    }
    g->base.ops = &face_ops;
    *out = &g->base;
    return ABIS_OK;
}
