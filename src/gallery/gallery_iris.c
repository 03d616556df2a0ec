/*
 * gallery_iris.c: the exact in-memory iris-code gallery (gallery_iris.h).
 *
 * Layout: the row store every gallery shares (gallery/rows.h): rows are
 * abis_iris_code records (256 code + 256 mask bytes) in one 64-byte aligned
 * block, so each record is 8 cache lines, with template id, subject slot and
 * tombstone per row, and tombstones compacted away in order.
 *
 * Search: the probe is shifted once per shift position (15 copies, 7.5 KiB,
 * they stay in L1); the rows are scanned in blocks of BLOCK rows: the live
 * rows whose slot passes the filter are listed, the best Hamming kernel
 * (match/hamming.h) gives the (d, n) counts of every listed row against all
 * copies, and each row's best normalised distance over the shifts gives its
 * score.  Top-k distinct slots are kept by gallery/topk.h, ordered by
 * (score descending, row ascending), a total order, so the result does not
 * depend on how the rows are split.
 *
 * Threads: a gallery of at least 2 * ROWS_PER_THREAD rows is split into
 * contiguous chunks, one per thread (at most the configured count, and at
 * least ROWS_PER_THREAD rows each); the calling thread scans the first chunk
 * and per-call pthreads the others.  A thread costs some 50 us to start
 * against about 2.5 ms of scanning for ROWS_PER_THREAD rows, so no pool is
 * kept.  Each chunk keeps its own top-k; the merge keeps each slot's best
 * entry and the k best slots.  A slot in the global top-k is in the top-k of
 * the chunk holding its best row (every slot above it there is above it
 * globally), so the merge is exact.  If a thread cannot be started its chunk
 * is scanned by the caller.
 */
#include "gallery/gallery_iris.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gallery/rows.h"
#include "gallery/topk.h"
#include "match/hamming.h"
#include "modality/iris/iris.h"

#define N_SHIFTS (2 * ABIS_IRIS_MAX_SHIFT + 1)
#define BLOCK 256             /* rows per kernel call: counts fit in L1 (15 KiB) */
#define ROWS_PER_THREAD 16384 /* 8 MiB of rows, ~2.5 ms of one core (docs/BENCHMARKS.md) */
#define MAX_THREADS 64

typedef struct igallery {
    abis_gallery base;
    abis_rows rows;   /* abis_iris_code records */
    unsigned threads; /* 0: one per online CPU */
} igallery;

/* ---- operations ------------------------------------------------------------- */

static void ig_destroy(abis_gallery *base)
{
    igallery *g = (igallery *)base;
    abis_rows_free(&g->rows);
    free(g);
}

static abis_status ig_add(abis_gallery *base, const abis_id *template_id, uint32_t slot,
                          const void *tmpl, size_t len, abis_error *err)
{
    igallery *g = (igallery *)base;
    if (len != sizeof(abis_iris_code))
        return abis_error_set(err, ABIS_E_INVALID,
                              "gallery: iris template has %zu bytes, expected %zu (code and mask)",
                              len, sizeof(abis_iris_code));
    if (abis_rows_add(&g->rows, template_id, slot, tmpl) != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory adding a template");
    return ABIS_OK;
}

static int ig_remove(abis_gallery *base, const abis_id *template_id)
{
    return abis_rows_remove(&((igallery *)base)->rows, template_id);
}

static size_t ig_remove_slot(abis_gallery *base, uint32_t slot)
{
    return abis_rows_remove_slot(&((igallery *)base)->rows, slot);
}

static size_t ig_count(const abis_gallery *base)
{
    return abis_rows_live(&((const igallery *)base)->rows);
}

/* ---- search ----------------------------------------------------------------- */

typedef struct scan_job {
    const igallery *g;
    const abis_iris_code *probe; /* N_SHIFTS copies */
    const abis_hamming_kernel *kern;
    const abis_bitset *allow;
    size_t begin, end, cap;
    abis_top *top; /* cap entries */
    size_t n;
    int failed; /* out of memory for the count buffer */
} scan_job;

/* The best score of one row from its counts over the shifts: the smallest
 * normalised distance, shifts with no comparable bit skipped, 0.5 when none
 * has any (abis_iris_distance does the same). */
static float row_score(const uint32_t *counts)
{
    double best = 0.5;
    int have = 0;
    for (size_t s = 0; s < N_SHIFTS; s++) {
        uint32_t n = ABIS_HAMMING_N(counts[s]);
        if (n == 0)
            continue;
        double hd = abis_hamming_norm(ABIS_HAMMING_D(counts[s]), n);
        if (!have || hd < best) {
            best = hd;
            have = 1;
        }
    }
    return (float)(1.0 - best);
}

static void *scan_chunk(void *arg)
{
    scan_job *j = arg;
    const igallery *g = j->g;
    uint32_t idx[BLOCK];
    uint32_t *counts = malloc(sizeof(uint32_t) * BLOCK * N_SHIFTS);
    if (!counts) {
        j->failed = 1;
        return NULL;
    }
    for (size_t b = j->begin; b < j->end; b += BLOCK) {
        size_t e = b + BLOCK < j->end ? b + BLOCK : j->end, m = 0;
        for (size_t r = b; r < e; r++) {
            if (g->rows.dead[r] || (j->allow && !abis_bitset_test(j->allow, g->rows.slots[r])))
                continue;
            idx[m++] = (uint32_t)r;
        }
        if (m == 0)
            continue;
        j->kern->scan(j->probe, N_SHIFTS, (const abis_iris_code *)g->rows.data, idx, m, counts);
        for (size_t i = 0; i < m; i++)
            abis_top_offer(j->top, &j->n, j->cap, row_score(counts + i * N_SHIFTS),
                           g->rows.slots[idx[i]], idx[i]);
    }
    free(counts);
    return NULL;
}

static unsigned thread_count(const igallery *g, size_t rows)
{
    unsigned t = g->threads;
    if (t == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        t = c > 0 ? (unsigned)c : 1;
    }
    if (t > MAX_THREADS)
        t = MAX_THREADS;
    size_t by_size = rows / ROWS_PER_THREAD;
    if (by_size < 2)
        return 1;
    return by_size < t ? (unsigned)by_size : t;
}

static abis_status ig_search(abis_gallery *base, const void *probe, size_t len, size_t k,
                             const abis_bitset *allow, abis_hit *out, size_t *n_out,
                             abis_error *err)
{
    igallery *g = (igallery *)base;
    *n_out = 0;
    if (len != sizeof(abis_iris_code))
        return abis_error_set(err, ABIS_E_INVALID,
                              "gallery: iris probe has %zu bytes, expected %zu (code and mask)",
                              len, sizeof(abis_iris_code));
    if (k == 0 || abis_rows_live(&g->rows) == 0)
        return ABIS_OK;
    size_t live = abis_rows_live(&g->rows);
    size_t cap = k < live ? k : live;

    abis_iris_code *shifted = aligned_alloc(ABIS_ROWS_ALIGN, N_SHIFTS * sizeof *shifted);
    abis_top *merged = NULL;
    unsigned nt = thread_count(g, g->rows.n);
    scan_job *jobs = calloc(nt, sizeof *jobs);
    abis_top *tops = malloc((size_t)nt * cap * sizeof *tops);
    pthread_t *tid = calloc(nt, sizeof *tid);
    unsigned char *started = calloc(nt, 1);
    abis_status st = ABIS_OK;
    if (!shifted || !jobs || !tops || !tid || !started) {
        st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for %zu results", k);
        goto done;
    }
    abis_iris_code p;
    memcpy(&p, probe, sizeof p);
    for (int s = -ABIS_IRIS_MAX_SHIFT; s <= ABIS_IRIS_MAX_SHIFT; s++)
        abis_iris_shift(&p, s, &shifted[s + ABIS_IRIS_MAX_SHIFT]);

    const abis_hamming_kernel *kern = abis_hamming_best();
    for (unsigned t = 0; t < nt; t++) {
        jobs[t] = (scan_job){.g = g,
                             .probe = shifted,
                             .kern = kern,
                             .allow = allow,
                             .begin = g->rows.n * t / nt,
                             .end = g->rows.n * (t + 1) / nt,
                             .cap = cap,
                             .top = tops + (size_t)t * cap};
    }
    for (unsigned t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, scan_chunk, &jobs[t]) == 0;
    scan_chunk(&jobs[0]);
    for (unsigned t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            scan_chunk(&jobs[t]);
    }

    /* merge: pack every chunk's entries, keep each slot's best */
    size_t total = 0;
    for (unsigned t = 0; t < nt; t++) {
        if (jobs[t].failed) {
            st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for the iris scan");
            goto done;
        }
        memmove(tops + total, jobs[t].top, jobs[t].n * sizeof *tops);
        total += jobs[t].n;
    }
    merged = malloc(cap * sizeof *merged);
    if (!merged) {
        st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for %zu results", k);
        goto done;
    }
    size_t n = abis_top_merge(tops, total, cap, merged);
    for (size_t i = 0; i < n; i++)
        out[i] = (abis_hit){merged[i].slot, g->rows.ids[merged[i].row], merged[i].score};
    *n_out = n;
done:
    free(merged);
    free(shifted);
    free(jobs);
    free(tops);
    free(tid);
    free(started);
    return st;
}

static const abis_gallery_ops iris_ops = {
    .destroy = ig_destroy,
    .add = ig_add,
    .remove = ig_remove,
    .remove_slot = ig_remove_slot,
    .count = ig_count,
    .search = ig_search,
};

abis_status abis_gallery_iris_create(abis_gallery **out, abis_error *err)
{
    *out = NULL;
    igallery *g = calloc(1, sizeof *g);
    if (!g)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory");
    g->base.ops = &iris_ops;
    abis_rows_init(&g->rows, sizeof(abis_iris_code));
    *out = &g->base;
    return ABIS_OK;
}

void abis_gallery_iris_set_threads(abis_gallery *base, unsigned threads)
{
    assert(base->ops == &iris_ops);
    ((igallery *)base)->threads = threads;
}
