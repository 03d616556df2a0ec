/*
 * hnsw.h: the vector gallery's pre-selection, a hierarchical navigable
 * small-world graph (Malkov & Yashunin, "Efficient and robust approximate
 * nearest neighbor search using Hierarchical Navigable Small World graphs",
 * IEEE TPAMI 2020) over the int8 rows of a vstore, scored with the same int8
 * kernels and the same abis_i8_score as the exact scan.  docs/search.md says
 * why a graph and not binary codes or IVF, with measurements.
 *
 * Nodes are rows [0, indexed) of the store: rows are indexed in order, so
 * rows at or beyond `indexed` are the ones a search must scan exactly.  Each
 * node has 2m links on layer 0 (in chunks parallel to the store's, so growth
 * never copies) and m links on each of its upper layers (a random level,
 * P(level >= l) = m^-l).  Tombstoned rows stay in the graph as waypoints
 * until compaction, which renumbers the graph and re-links nodes that lost
 * too many links.
 *
 * Concurrency: searches may run concurrently with each other; extend, remap
 * and repair need the store and graph to themselves (the gallery's write
 * lock) and parallelise internally with per-node striped locks.
 */
#ifndef ABIS_GALLERY_HNSW_H
#define ABIS_GALLERY_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "gallery/topk.h"
#include "gallery/vstore.h"
#include "match/int8.h"

typedef struct abis_hnsw abis_hnsw;

typedef struct abis_hnsw_params {
    unsigned m;               /* links per node on upper layers; layer 0 has 2m */
    unsigned ef_construction; /* candidates kept while linking a new node */
    uint64_t seed;            /* for node levels */
} abis_hnsw_params;

/* An empty graph over `st` (which it reads, never changes).  NULL on OOM. */
abis_hnsw *abis_hnsw_create(const abis_vstore *st, const abis_hnsw_params *p);
void abis_hnsw_free(abis_hnsw *h);

/* Rows [0, indexed) are in the graph. */
size_t abis_hnsw_indexed(const abis_hnsw *h);

/* Link rows [indexed, indexed + count) into the graph on up to `threads`
 * threads of the shared pool (0: all).  Exclusive access.  -1 when out of
 * memory: nothing was added. */
int abis_hnsw_extend(abis_hnsw *h, size_t count, unsigned threads);

/* After abis_vstore_compact(st, remap) of n_old rows: renumber the graph,
 * drop dead nodes, choose a live entry point, re-link nodes left with fewer
 * than half their layer-0 links (on up to `threads` threads).  Exclusive
 * access.  Cannot fail (re-linking is skipped when out of memory). */
void abis_hnsw_remap(abis_hnsw *h, const uint32_t *remap, size_t n_old, unsigned threads);

/* Keep a row in the results (the filter and the tombstones): 1 yes. */
typedef int (*abis_hnsw_keep_fn)(const void *ctx, uint32_t row);

/* The graph walk: up to `ef` kept rows, best first by (score, row), each
 * with its exact int8 score against p (slot from the store).  Returns how
 * many (0 for an empty graph).  Safe to run concurrently with other
 * searches.  -1 when out of memory. */
long abis_hnsw_search(const abis_hnsw *h, const abis_i8_probe *p, size_t ef, abis_hnsw_keep_fn keep,
                      const void *ctx, abis_top *out);

/* Bytes the graph holds (links, levels, upper layers, visited lists). */
size_t abis_hnsw_bytes(const abis_hnsw *h);

/* ---- persistence (gallery snapshots) ------------------------------------------ */

/* The graph's state as arrays, for writing: layer-0 links of node r are
 * links0(r)[0..2m), then level[r], upper links at up[r] in `upper`.  Valid
 * until the graph changes. */
typedef struct abis_hnsw_view {
    unsigned m;
    size_t indexed;
    uint32_t entry;    /* UINT32_MAX: empty */
    int max_level;
    const uint32_t *upper; /* n_upper entries */
    size_t n_upper;
} abis_hnsw_view;

void abis_hnsw_view_get(const abis_hnsw *h, abis_hnsw_view *v);
/* Node r's layer-0 links (2m entries, UINT32_MAX past the last), level and
 * offset of its upper links in view.upper. */
const uint32_t *abis_hnsw_links0(const abis_hnsw *h, size_t r);
uint8_t abis_hnsw_level(const abis_hnsw *h, size_t r);
uint32_t abis_hnsw_up(const abis_hnsw *h, size_t r);

/* Rebuild a graph from those arrays (on an empty graph over a store that
 * holds at least `indexed` rows); the callback fills node r's layer-0 links,
 * level and upper offset.  -1 on OOM or inconsistent data (a link, level or
 * offset out of range): the graph is then empty. */
typedef int (*abis_hnsw_node_fn)(void *ctx, size_t r, uint32_t *links0, uint8_t *level,
                                 uint32_t *up);
int abis_hnsw_load(abis_hnsw *h, size_t indexed, uint32_t entry, int max_level,
                   const uint32_t *upper, size_t n_upper, abis_hnsw_node_fn node, void *ctx);

#endif
