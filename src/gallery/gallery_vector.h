/*
 * gallery_vector.h: the vector gallery (gallery.h's interface for vector
 * modalities: face and voice embeddings), described in docs/search.md.
 *
 * Templates are dim float32 values, L2-normalised (len = dim * 4 bytes); the
 * gallery keeps them as int8 with a per-vector scale (match/int8.h) in
 * cache-aligned chunks (gallery/vstore.h), and a template's score is the
 * int8 estimate of its cosine with the probe.  Exact search scans every row
 * with the best int8 kernel on a fixed thread pool, the consent/lock filter
 * tested inside the scan; a batch of probes shares one pass over memory.
 * Pre-selected search (the default) scans each row's sign code -- one bit per
 * value, an eighth of the int8 row -- with an asymmetric score against the
 * probe (match/signcode.h), keeps the best `shortlist` rows and scores them
 * exactly; the alternative is a graph index (gallery/hnsw.h) walked from an
 * entry point, rows not yet in the graph being scanned exactly.  Either way a
 * template is found by the next search after add() returns.
 *
 * Thread-safe: searches run concurrently with each other; add, remove and
 * the background work (graph indexing, compaction of tombstones) take turns
 * with them under a readers-writer lock that prefers writers.
 */
#ifndef ABIS_GALLERY_VECTOR_H
#define ABIS_GALLERY_VECTOR_H

#include "gallery/gallery.h"

typedef enum abis_vector_preselect {
    ABIS_PRESELECT_CODES = 0, /* sign-code scan, then exact re-ranking (default) */
    ABIS_PRESELECT_GRAPH = 1  /* HNSW graph walk with exact scores */
} abis_vector_preselect;

typedef struct abis_vector_config {
    /* Threads a search, batch or index build may use: 0 for every thread of
     * the shared pool (one per online CPU). */
    unsigned threads;
    abis_vector_preselect preselect;
    /* Codes: rows re-ranked exactly by a pre-selected search unless its
     * effort says otherwise (default ABIS_VECTOR_SHORTLIST), and at least
     * one per ABIS_VECTOR_SHORTLIST_ROWS live templates. */
    unsigned shortlist;
    /* Graph: live templates from which the graph is built and pre-selected
     * searches use it (smaller galleries are scanned exactly); SIZE_MAX:
     * never.  Default ABIS_VECTOR_INDEX_MIN. */
    size_t index_min;
    /* Graph: links per node on the upper layers (layer 0 has twice as many),
     * candidates kept while inserting, and the default search breadth. */
    unsigned graph_m, ef_construction, ef_search;
    /* 1 (default): index new rows and compact tombstones in a background
     * thread; 0: do it in the writer's call (deterministic, for tests). */
    int background;
} abis_vector_config;

/* 32,768 templates: below that an exact scan of a 512-d gallery takes about
 * as long as a graph search (docs/BENCHMARKS.md). */
#define ABIS_VECTOR_INDEX_MIN 32768
/* Rows re-ranked after the sign-code scan: on face-like 128-d data 99.9 % of
 * mates are within the best 25 of a million codes, at most within 60
 * (docs/search.md).  The impostors that outscore a mate grow with the
 * gallery, so the default grows with it too: at ten million templates a
 * shortlist of 1,024 missed 2 of 1,000 mates and one of 2,048 none
 * (docs/BENCHMARKS.md), so one row per 4,096 templates (2,441 there). */
#define ABIS_VECTOR_SHORTLIST 1024
#define ABIS_VECTOR_SHORTLIST_ROWS 4096

/* The defaults: all threads, sign-code pre-selection with a shortlist of
 * ABIS_VECTOR_SHORTLIST; for the graph, index from ABIS_VECTOR_INDEX_MIN,
 * m 16, ef_construction 100, ef_search 64; background work. */
void abis_vector_config_default(abis_vector_config *c);

/* A gallery of dim-value vectors (1..65536) with these settings (NULL: the
 * defaults).  Free with abis_gallery_destroy. */
abis_status abis_gallery_vector_create_with(size_t dim, const abis_vector_config *c,
                                            abis_gallery **out, abis_error *err);

/* Do the pending background work now, in the caller: index every row not yet
 * in the graph and compact tombstones.  ABIS_E_NOMEM when the index could
 * not grow (searches stay correct: unindexed rows are scanned exactly). */
abis_status abis_gallery_vector_sync(abis_gallery *g, abis_error *err);

/* Change the thread limit of searches (0: all).  Results do not depend on it. */
void abis_gallery_vector_set_threads(abis_gallery *g, unsigned threads);

typedef struct abis_vector_stats {
    size_t rows, live, indexed; /* rows held (live + tombstoned), live, in the graph */
    size_t vector_bytes;        /* int8 rows and scales, as allocated */
    size_t bookkeeping_bytes;   /* slots, template ids, tombstones, id map */
    size_t code_bytes;          /* sign codes (the default pre-selection) */
    size_t graph_bytes;         /* the graph, when configured */
    const char *kernel;         /* the int8 kernel in use */
    const char *code_kernel;    /* the sign-code kernel in use */
} abis_vector_stats;

void abis_gallery_vector_stats(abis_gallery *g, abis_vector_stats *out);

/* 1 when g is a vector gallery. */
int abis_gallery_is_vector(const abis_gallery *g);

#endif
