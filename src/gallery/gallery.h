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
 * Thread safety is the gallery's to state: the vector gallery
 * (gallery_vector.h) takes any mix of concurrent calls; others need their
 * calls serialised.
 */
#ifndef ABIS_GALLERY_H
#define ABIS_GALLERY_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"
#include "gallery/snapshot.h"
#include "util/bitset.h"

typedef struct abis_gallery abis_gallery;

typedef struct abis_hit {
    uint32_t slot; /* subject slot */
    abis_id template_id;
    float score; /* higher is more similar */
} abis_hit;

/* How a search runs. */
typedef struct abis_search_opts {
    /* 0: exact: every template passing the filter is scored.  1: pre-selected:
     * a pre-selection (the vector gallery's graph index) proposes candidates
     * that are then scored exactly, reading far less memory on a large
     * gallery but able to miss what the exact search finds.  Galleries
     * without a pre-selection, and small galleries, search exactly. */
    int preselect;
    /* The pre-selection's breadth: 0 for the gallery's default; larger finds
     * more of what the exact search finds and takes longer (docs/search.md). */
    unsigned effort;
    /* Vector galleries: score the unquantised float32 probe against the
     * stored int8 templates (a tighter bound on the ranking, docs/search.md;
     * batches lose their shared pass over memory). */
    int probe_f32;
} abis_search_opts;

/* One request of a batched search.  out has room for k hits; n_out is set. */
typedef struct abis_search_req {
    const void *probe;
    size_t len;
    size_t k;
    const abis_bitset *allow; /* NULL: all */
    abis_hit *out;
    size_t n_out;
} abis_search_req;

/* Saving a gallery to, or loading it from, an encrypted snapshot file
 * (snapshot.h).  Rows name their subject by id in the file and by slot in
 * memory; the engine translates. */
typedef struct abis_snapshot_io {
    const char *path;
    const abis_key *key;
    abis_snapshot_head head; /* save: written; load: what the file must say */
    const abis_id *(*subject_of)(void *ctx, uint32_t slot);  /* save */
    int64_t (*slot_of)(void *ctx, const abis_id *subject);   /* load: -1 when unknown */
    void *ctx;
} abis_snapshot_io;

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
    /* Optional (NULL when the gallery has none): several requests at once,
     * with options (NULL: exact).  Each request gets what a search of its own
     * with the same options would give; an exact batch reads the gallery from
     * memory once for all of them.  On failure no request has results. */
    abis_status (*search_batch)(abis_gallery *g, abis_search_req *reqs, size_t n,
                                const abis_search_opts *opts, abis_error *err);
    /* Optional: write the gallery to io->path (nothing is written when it
     * has not changed since it was last loaded from or saved to that file).  The file is removed as soon as a template is removed from the
     * gallery, so that no snapshot outlives a deletion. */
    abis_status (*snapshot_save)(abis_gallery *g, const abis_snapshot_io *io, abis_error *err);
    /* Optional: fill an empty gallery from io->path.  ABIS_E_NOT_FOUND: no
     * file, or it names a subject slot_of does not know; ABIS_E_CRYPTO:
     * damaged, another key or another header.  On failure the gallery is
     * left empty. */
    abis_status (*snapshot_load)(abis_gallery *g, const abis_snapshot_io *io, abis_error *err);
} abis_gallery_ops;

struct abis_gallery {
    const abis_gallery_ops *ops;
};

/* The vector gallery with its default settings (gallery_vector.h). */
abis_status abis_gallery_vector_create(size_t dim, abis_gallery **out, abis_error *err);

static inline void abis_gallery_destroy(abis_gallery *g)
{
    if (g)
        g->ops->destroy(g);
}

/* Search with options: through search_batch when the gallery has it, else
 * the plain (exact) search. */
static inline abis_status abis_gallery_search(abis_gallery *g, const void *probe, size_t len,
                                              size_t k, const abis_bitset *allow,
                                              const abis_search_opts *opts, abis_hit *out,
                                              size_t *n_out, abis_error *err)
{
    if (!g->ops->search_batch)
        return g->ops->search(g, probe, len, k, allow, out, n_out, err);
    abis_search_req r = {probe, len, k, allow, out, 0};
    abis_status st = g->ops->search_batch(g, &r, 1, opts, err);
    *n_out = st == ABIS_OK ? r.n_out : 0;
    return st;
}

#endif
