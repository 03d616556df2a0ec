/*
 * vector_internal.h: what the files of the vector gallery share
 * (gallery_vector.c: the interface, writes, background work and search entry;
 * vector_exact.c, vector_codes.c, vector_graph.c: the three scans;
 * vector_snapshot.c: snapshots).  See gallery_vector.h and docs/search.md.
 */
#ifndef ABIS_GALLERY_VECTOR_INTERNAL_H
#define ABIS_GALLERY_VECTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "gallery/gallery_vector.h"
#include "gallery/hnsw.h"
#include "gallery/topk.h"
#include "gallery/vstore.h"
#include "match/int8.h"

#define BLOCK 256      /* rows per kernel call: 128 KiB of 512-d rows, in L2 */
#define TASK_ROWS 8192 /* rows per parallel task: 4 MiB of 512-d rows, ~0.1 ms */
#define MAX_BATCH 128  /* requests per pass: scores of a block fit in 128 KiB */
#define MAX_DIM 65536
/* Rows linked into the graph per exclusive-lock hold of the background
 * work: about 10-50 ms on two threads, the longest a search waits for it. */
#define INDEX_BATCH 256
/* Graph walks keep at most this many candidates; a request whose filter
 * lets so few templates through that it would need more is scanned exactly. */
#define EF_MAX 4096
/* Rows sampled to estimate the share of templates a filter lets through. */
#define FILTER_SAMPLE 1024

/* The vector gallery (gallery_vector.h). */
typedef struct vgallery {
    abis_gallery base;
    abis_vector_config cfg;
    atomic_uint threads;
    pthread_rwlock_t lock;
    abis_vstore st;   /* guarded by lock */
    abis_hnsw *graph; /* guarded by lock; NULL until index_min live rows */
    /* the snapshot file last loaded or saved (lock), and whether the gallery
     * changed since */
    char *snap_path;
    int dirty;
    /* background work */
    pthread_mutex_t mmu;
    pthread_cond_t mcv;
    pthread_t mthread;
    int mthread_on; /* mmu */
    int mpending;   /* mmu */
    atomic_int mstop;
} vgallery;

/* A request prepared for the kernels. */
typedef struct prep {
    abis_i8_probe p; /* quantised probe */
    const float *pf; /* the float probe (probe_f32) */
    const abis_bitset *allow;
    size_t cap; /* list capacity: min(k, live); 0 = no answer wanted */
    void *buf;
} prep;

static inline int allowed(const abis_bitset *allow, uint32_t slot)
{
    return !allow || abis_bitset_test(allow, slot);
}

/* The scans (lock held).  Each fills merged[q * capmax ..] with request q's
 * top list (nmerged[q] entries) for requests rq[0..nreq), whose caps are at
 * most capmax. */
/* Every row in [begin, end), exactly (vector_exact.c). */
abis_status vector_exact_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
                              int f32, size_t begin, size_t end, abis_top *merged, size_t *nmerged,
                              abis_error *err);
/* Sign codes, a shortlist, exact re-ranking (vector_codes.c). */
abis_status vector_codes_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
                              const abis_search_opts *opts, abis_top *merged, size_t *nmerged,
                              abis_error *err);
/* The graph walk plus an exact scan of unindexed rows (vector_graph.c). */
abis_status vector_graph_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
                              const abis_search_opts *opts, abis_top *merged, size_t *nmerged,
                              abis_error *err);

/* gallery_vector.c: compaction (exclusive lock), whether background work is
 * pending (lock held) and having it done. */
abis_status vector_compact(vgallery *g);
int vector_needs_work(const vgallery *g);
void vector_kick(vgallery *g);

/* vector_snapshot.c: the snapshot operations of gallery.h. */
abis_status vector_snapshot_save(abis_gallery *base, const abis_snapshot_io *io, abis_error *err);
abis_status vector_snapshot_load(abis_gallery *base, const abis_snapshot_io *io, abis_error *err);

#endif
