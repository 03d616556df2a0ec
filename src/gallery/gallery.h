/*
 * gallery.h: a searchable in-memory collection of templates for one
 * (segment, modality), behind one interface so that other search engines
 * (int8 SIMD, pre-selection, GPU) and other modalities (minutiae, iris codes)
 * can plug in.
 *
 * The gallery is a cache of the store: the engine rebuilds it from the store
 * when a segment is first searched and keeps it in step with every write.
 * Each row is a template; each template belongs to a subject slot (a dense
 * number the engine gives each subject of the segment).  A search takes a
 * filter over subject slots (consent, locks, liveness) and applies it inside
 * the scan, and returns the best-scoring template of each of the top-k
 * subjects.
 *
 * Not thread-safe: the engine serialises calls.
 */
#ifndef ABIS_GALLERY_H
#define ABIS_GALLERY_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"
#include "util/bitset.h"

typedef struct abis_gallery abis_gallery;

typedef struct abis_hit {
    uint32_t slot; /* subject slot */
    abis_id template_id;
    float score; /* higher is more similar */
} abis_hit;

typedef struct abis_gallery_ops {
    void (*destroy)(abis_gallery *g);
    /* Add a validated template (for vectors: dim normalised float32 values;
     * len = dim * sizeof(float)).  Fails only on out-of-memory. */
    abis_status (*add)(abis_gallery *g, const abis_id *template_id, uint32_t slot, const void *tmpl,
                       size_t len, abis_error *err);
    /* Tombstone one template; returns 1 if it was there. */
    int (*remove)(abis_gallery *g, const abis_id *template_id);
    /* Tombstone every template of a subject slot; returns how many. */
    size_t (*remove_slot)(abis_gallery *g, uint32_t slot);
    /* Live templates. */
    size_t (*count)(const abis_gallery *g);
    /* Top-k subjects (distinct slots) by their best template's score, best
     * first, among slots whose bit is set in `allow` (NULL: all).  `out` has
     * room for k hits; *n_out gets how many were written. */
    abis_status (*search)(abis_gallery *g, const void *probe, size_t len, size_t k,
                          const abis_bitset *allow, abis_hit *out, size_t *n_out, abis_error *err);
} abis_gallery_ops;

struct abis_gallery {
    const abis_gallery_ops *ops;
};

/* The exact vector gallery: float32 rows in one contiguous array, cosine
 * similarity with the best dot kernel (match.h), tombstones compacted when
 * more than a quarter of the rows are dead. */
abis_status abis_gallery_vector_create(size_t dim, abis_gallery **out, abis_error *err);

static inline void abis_gallery_destroy(abis_gallery *g)
{
    if (g)
        g->ops->destroy(g);
}

#endif
