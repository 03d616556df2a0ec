/*
 * gallery_vector.c: the vector gallery (gallery_vector.h; docs/search.md).
 *
 * Rows: the int8 row store (vstore.h).  Scores: abis_i8_score of the exact
 * integer dot product of the quantised probe and row (or, with probe_f32,
 * the float probe against the int8 row times the row's scale).
 *
 * Exact search: the rows are split into tasks of TASK_ROWS consecutive rows
 * run on the shared thread pool; a task walks its rows in blocks of BLOCK
 * rows within one chunk.  One request: the block's live rows whose slot
 * passes the filter are listed and only they are scored (scan kernel).
 * Several requests: the batch kernel scores every row of the block against
 * all requests while the block is in cache, then each request offers its
 * own live, allowed rows.  Every participant keeps a top-k list per request
 * (topk.h, a total order, so the task order does not matter) and the lists
 * are merged at the end.
 *
 * Locking: a readers-writer lock preferring writers (so a stream of searches
 * cannot starve an enrolment).  Searches hold it shared for their whole run,
 * pool workers included; add/remove and each step of background work hold
 * it exclusively.  Background work (compaction when more than a quarter of
 * the rows are tombstones) runs in one thread per gallery, started on first
 * need and joined by destroy.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "gallery/gallery_vector.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gallery/hnsw.h"
#include "gallery/topk.h"
#include "gallery/vstore.h"
#include "match/int8.h"
#include "match/signcode.h"
#include "util/threadpool.h"

#define BLOCK 256       /* rows per kernel call: 128 KiB of 512-d rows, in L2 */
#define TASK_ROWS 8192  /* rows per parallel task: 4 MiB of 512-d rows, ~0.1 ms */
#define MAX_BATCH 128   /* requests per pass: scores of a block fit in 128 KiB */
#define MAX_DIM 65536
/* Rows linked into the graph per exclusive-lock hold of the background
 * work: about 10-50 ms on two threads, the longest a search waits for it. */
#define INDEX_BATCH 256
/* Graph walks keep at most this many candidates; a request whose filter
 * lets so few templates through that it would need more is scanned exactly. */
#define EF_MAX 4096
/* Rows sampled to estimate the share of templates a filter lets through. */
#define FILTER_SAMPLE 1024
typedef struct vgallery {
    abis_gallery base;
    abis_vector_config cfg;
    atomic_uint threads;
    pthread_rwlock_t lock;
    abis_vstore st;     /* guarded by lock */
    abis_hnsw *graph;   /* guarded by lock; NULL until index_min live rows */
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

static const abis_gallery_ops vector_ops;

/* ---- background work ----------------------------------------------------------- */

/* Is there work (lock held)? */
static int needs_compaction(const vgallery *g)
{
    return g->st.n_dead > 0 && g->st.n_dead * 4 > g->st.n;
}

static int needs_indexing(const vgallery *g)
{
    if (g->cfg.preselect != ABIS_PRESELECT_GRAPH)
        return 0;
    if (g->graph)
        return abis_hnsw_indexed(g->graph) < g->st.n;
    return g->cfg.index_min != SIZE_MAX && abis_vs_live(&g->st) >= g->cfg.index_min;
}

static int needs_work(const vgallery *g)
{
    return needs_compaction(g) || needs_indexing(g);
}

/* Compact the rows and renumber the graph (lock held exclusively). */
static abis_status compact(vgallery *g)
{
    size_t n_old = g->st.n;
    uint32_t *remap = g->graph ? malloc(sizeof *remap * n_old) : NULL;
    if (g->graph && !remap)
        return ABIS_E_NOMEM;
    abis_vstore_compact(&g->st, remap);
    if (g->graph)
        abis_hnsw_remap(g->graph, remap, n_old, atomic_load(&g->threads));
    free(remap);
    return ABIS_OK;
}

/* Link the next rows into the graph (lock held exclusively). */
static abis_status index_some(vgallery *g)
{
    if (!g->graph) {
        abis_hnsw_params p = {g->cfg.graph_m, g->cfg.ef_construction, (uint64_t)(uintptr_t)g};
        if (!(g->graph = abis_hnsw_create(&g->st, &p)))
            return ABIS_E_NOMEM;
    }
    size_t left = g->st.n - abis_hnsw_indexed(g->graph);
    size_t count = left < INDEX_BATCH ? left : INDEX_BATCH;
    return abis_hnsw_extend(g->graph, count, atomic_load(&g->threads)) == 0 ? ABIS_OK
                                                                           : ABIS_E_NOMEM;
}

/* One step of background work under the exclusive lock; 1 if it did some
 * (*st: how it went). */
static int work_step(vgallery *g, abis_status *st)
{
    int did = 0;
    pthread_rwlock_wrlock(&g->lock);
    if (needs_compaction(g)) {
        *st = compact(g);
        did = 1;
    } else if (needs_indexing(g)) {
        *st = index_some(g);
        did = 1;
    }
    pthread_rwlock_unlock(&g->lock);
    return did;
}

static abis_status work_all(vgallery *g)
{
    abis_status st = ABIS_OK;
    while (!atomic_load(&g->mstop) && work_step(g, &st) && st == ABIS_OK)
        ;
    return st;
}

static void *work_thread(void *arg)
{
    vgallery *g = arg;
    pthread_mutex_lock(&g->mmu);
    while (!atomic_load(&g->mstop)) {
        if (!g->mpending) {
            pthread_cond_wait(&g->mcv, &g->mmu);
            continue;
        }
        g->mpending = 0;
        pthread_mutex_unlock(&g->mmu);
        work_all(g); /* a failure (out of memory) is retried at the next kick */
        pthread_mutex_lock(&g->mmu);
    }
    pthread_mutex_unlock(&g->mmu);
    return NULL;
}

/* Have the pending work done: by the background thread, or here when there
 * is none (configured off, or it could not be started). */
static void kick(vgallery *g)
{
    if (g->cfg.background) {
        pthread_mutex_lock(&g->mmu);
        if (!g->mthread_on)
            g->mthread_on = pthread_create(&g->mthread, NULL, work_thread, g) == 0;
        int on = g->mthread_on;
        if (on) {
            g->mpending = 1;
            pthread_cond_signal(&g->mcv);
        }
        pthread_mutex_unlock(&g->mmu);
        if (on)
            return;
    }
    work_all(g);
}

/* ---- writes ----------------------------------------------------------------------- */

static void vg_destroy(abis_gallery *base)
{
    vgallery *g = (vgallery *)base;
    atomic_store(&g->mstop, 1);
    pthread_mutex_lock(&g->mmu);
    int on = g->mthread_on;
    pthread_cond_signal(&g->mcv);
    pthread_mutex_unlock(&g->mmu);
    if (on)
        pthread_join(g->mthread, NULL);
    abis_hnsw_free(g->graph);
    abis_vstore_free(&g->st);
    free(g->snap_path);
    pthread_rwlock_destroy(&g->lock);
    pthread_mutex_destroy(&g->mmu);
    pthread_cond_destroy(&g->mcv);
    free(g);
}

static abis_status check_len(const vgallery *g, const char *what, size_t len, abis_error *err)
{
    if (len == g->st.dim * sizeof(float))
        return ABIS_OK;
    return abis_error_set(err, ABIS_E_INVALID,
                          "gallery: %s has %zu bytes, this gallery expects %zu (%zu float32 values)",
                          what, len, g->st.dim * sizeof(float), g->st.dim);
}

static abis_status check_finite(const float *v, size_t n, const char *what, abis_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return abis_error_set(err, ABIS_E_INVALID, "gallery: %s value %zu is not finite", what,
                                  i + 1);
    return ABIS_OK;
}

static abis_status vg_add(abis_gallery *base, const abis_id *template_id, uint32_t slot,
                          const void *tmpl, size_t len, abis_error *err)
{
    vgallery *g = (vgallery *)base;
    abis_status st = check_len(g, "template", len, err);
    if (st == ABIS_OK)
        st = check_finite(tmpl, g->st.dim, "template", err);
    if (st != ABIS_OK)
        return st;
    int8_t *q = malloc(g->st.dim);
    if (!q)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory adding a template");
    float scale = abis_i8_quantize(tmpl, g->st.dim, q);
    pthread_rwlock_wrlock(&g->lock);
    int rc = abis_vstore_add(&g->st, template_id, slot, q, scale);
    g->dirty |= rc == 0;
    int work = rc == 0 && needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    free(q);
    if (rc != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory adding a template");
    if (work)
        kick(g);
    return ABIS_OK;
}

/* After a removal (lock held): the snapshot file may still hold the removed
 * template, so it goes now; the next save writes a new one. */
static void removed(vgallery *g)
{
    g->dirty = 1;
    if (g->snap_path) {
        unlink(g->snap_path);
        free(g->snap_path);
        g->snap_path = NULL;
    }
}

static int vg_remove(abis_gallery *base, const abis_id *template_id)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_wrlock(&g->lock);
    int rc = abis_vstore_remove(&g->st, template_id);
    if (rc)
        removed(g);
    int work = needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    if (work)
        kick(g);
    return rc;
}

static size_t vg_remove_slot(abis_gallery *base, uint32_t slot)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_wrlock(&g->lock);
    size_t n = abis_vstore_remove_slot(&g->st, slot);
    if (n)
        removed(g);
    int work = needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    if (work)
        kick(g);
    return n;
}

static size_t vg_count(const abis_gallery *base)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_rdlock(&g->lock);
    size_t n = abis_vs_live(&g->st);
    pthread_rwlock_unlock(&g->lock);
    return n;
}

/* ---- exact search ------------------------------------------------------------------ */

/* A request prepared for the kernels. */
typedef struct prep {
    abis_i8_probe p;  /* quantised probe */
    const float *pf;  /* the float probe (probe_f32) */
    const abis_bitset *allow;
    size_t cap;       /* list capacity: min(k, live); 0 = no answer wanted */
    void *buf;
} prep;

typedef struct exact_job {
    const vgallery *g;
    const abis_i8_kernel *kern;
    const prep *rq;
    const abis_i8_probe *probes; /* rq[i].p, packed for the batch kernel */
    size_t nreq, capmax;
    int f32;
    size_t begin, end;
    /* per participant */
    abis_top *tops; /* [part][req][capmax] */
    size_t *ntop;   /* [part][req] */
    int32_t *iscore; /* [part][req][BLOCK] */
    float *fscore;  /* [part][BLOCK] */
    uint32_t *idx;  /* [part][BLOCK] */
    uint32_t *sel;  /* [part][BLOCK]: rows whose score can enter a top list */
} exact_job;

/* The score a row must reach to enter a top list (-inf while not full). */
static float entry_bar(const abis_top *top, size_t n, size_t cap)
{
    return n == cap ? top[cap - 1].score : -INFINITY;
}

static int allowed(const abis_bitset *allow, uint32_t slot)
{
    return !allow || abis_bitset_test(allow, slot);
}

/* Score rows [r, r + len) of one chunk for every request. */
static void exact_block(const exact_job *j, unsigned part, size_t r, size_t len)
{
    const abis_vstore *st = &j->g->st;
    const abis_vs_chunk *c = abis_vs_chunk_of(st, r);
    const size_t off = abis_vs_off(r), stride = st->stride;
    const int8_t *rows = c->data + off * stride;
    const float *scale = c->scale + off;
    const uint32_t *slot = c->slot + off;
    const uint8_t *dead = c->dead + off;
    abis_top *tops = j->tops + (size_t)part * j->nreq * j->capmax;
    size_t *ntop = j->ntop + (size_t)part * j->nreq;
    uint32_t *idx = j->idx + (size_t)part * BLOCK;
    int32_t *is = j->iscore + (size_t)part * j->nreq * BLOCK;

    if (j->nreq == 1 || j->f32) {
        /* per request: list the rows that pass, score only them */
        for (size_t q = 0; q < j->nreq; q++) {
            const prep *p = &j->rq[q];
            if (!p->cap)
                continue;
            size_t m = 0;
            for (size_t i = 0; i < len; i++)
                if (!dead[i] && allowed(p->allow, slot[i]))
                    idx[m++] = (uint32_t)i;
            if (m == 0)
                continue;
            const uint32_t *list = m == len ? NULL : idx;
            abis_top *top = tops + q * j->capmax;
            if (j->f32) {
                float *fs = j->fscore + (size_t)part * BLOCK;
                j->kern->scan_f32(p->pf, st->dim, rows, stride, list, m, fs);
                for (size_t i = 0; i < m; i++) {
                    size_t k = list ? list[i] : i;
                    abis_top_offer(top, &ntop[q], p->cap, fs[i] * scale[k], slot[k],
                                   (uint32_t)(r + k));
                }
            } else {
                j->kern->scan(&p->p, rows, stride, list, m, is);
                const float *sc = scale;
                if (list) { /* the listed rows' scales, side by side with their dots */
                    float *g = j->fscore + (size_t)part * BLOCK;
                    for (size_t i = 0; i < m; i++)
                        g[i] = scale[list[i]];
                    sc = g;
                }
                uint32_t *sel = j->sel + (size_t)part * BLOCK;
                size_t ns = j->kern->above(is, sc, m, p->p.scale,
                                           entry_bar(top, ntop[q], p->cap), sel);
                for (size_t i = 0; i < ns; i++) {
                    size_t k = list ? list[sel[i]] : sel[i];
                    abis_top_offer(top, &ntop[q], p->cap,
                                   abis_i8_score(is[sel[i]], p->p.scale, scale[k]), slot[k],
                                   (uint32_t)(r + k));
                }
            }
        }
        return;
    }
    /* several requests: one pass over the block for all of them */
    size_t live = 0;
    for (size_t i = 0; i < len; i++)
        live += !dead[i];
    if (live == 0)
        return;
    j->kern->batch(j->probes, j->nreq, rows, stride, len, is);
    for (size_t q = 0; q < j->nreq; q++) {
        const prep *p = &j->rq[q];
        if (!p->cap)
            continue;
        abis_top *top = tops + q * j->capmax;
        const int32_t *sq = is + q * len;
        uint32_t *sel = j->sel + (size_t)part * BLOCK;
        size_t ns =
            j->kern->above(sq, scale, len, p->p.scale, entry_bar(top, ntop[q], p->cap), sel);
        for (size_t t = 0; t < ns; t++) {
            size_t i = sel[t];
            if (!dead[i] && allowed(p->allow, slot[i]))
                abis_top_offer(top, &ntop[q], p->cap, abis_i8_score(sq[i], p->p.scale, scale[i]),
                               slot[i], (uint32_t)(r + i));
        }
    }
}

static void exact_task(void *arg, size_t t, unsigned part)
{
    const exact_job *j = arg;
    size_t r = j->begin + t * TASK_ROWS;
    size_t end = r + TASK_ROWS < j->end ? r + TASK_ROWS : j->end;
    while (r < end) {
        size_t len = ABIS_VS_CHUNK - abis_vs_off(r); /* stay within the chunk */
        if (len > BLOCK)
            len = BLOCK;
        if (len > end - r)
            len = end - r;
        exact_block(j, part, r, len);
        r += len;
    }
}

/* Exact top lists of rows [begin, end) for every request, merged into
 * merged[q] (capmax entries each, *nmerged[q] filled).  Lock held. */
static abis_status exact_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax, int f32,
                              size_t begin, size_t end, abis_top *merged, size_t *nmerged,
                              abis_error *err)
{
    size_t n_tasks = (end - begin + TASK_ROWS - 1) / TASK_ROWS;
    abis_threadpool *pool = abis_threadpool_shared();
    unsigned width = abis_threadpool_width(pool, n_tasks, atomic_load(&g->threads));
    abis_i8_probe probes[MAX_BATCH];
    for (size_t q = 0; q < nreq; q++)
        probes[q] = rq[q].p;
    exact_job j = {.g = g,
                   .probes = probes,
                   .kern = abis_i8_best(),
                   .rq = rq,
                   .nreq = nreq,
                   .capmax = capmax,
                   .f32 = f32,
                   .begin = begin,
                   .end = end};
    j.tops = malloc(sizeof *j.tops * width * nreq * capmax);
    j.ntop = calloc((size_t)width * nreq, sizeof *j.ntop);
    j.iscore = malloc(sizeof *j.iscore * width * nreq * BLOCK);
    j.fscore = malloc(sizeof *j.fscore * width * BLOCK);
    j.idx = malloc(sizeof *j.idx * width * BLOCK);
    j.sel = malloc(sizeof *j.sel * width * BLOCK);
    abis_status st = ABIS_OK;
    if (!j.tops || !j.ntop || !j.iscore || !j.fscore || !j.idx || !j.sel) {
        st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
        goto done;
    }
    if (n_tasks)
        abis_threadpool_run(pool, n_tasks, width, exact_task, &j);
    abis_top *all = malloc(sizeof *all * width * capmax); /* one request's lists */
    if (!all) {
        st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
        goto done;
    }
    for (size_t q = 0; q < nreq; q++) {
        size_t total = 0;
        for (unsigned w = 0; w < width; w++) {
            size_t nt = j.ntop[(size_t)w * nreq + q];
            memcpy(all + total, j.tops + ((size_t)w * nreq + q) * capmax, nt * sizeof *all);
            total += nt;
        }
        nmerged[q] = abis_top_merge(all, total, rq[q].cap, merged + q * capmax);
    }
    free(all);
done:
    free(j.tops);
    free(j.ntop);
    free(j.iscore);
    free(j.fscore);
    free(j.idx);
    free(j.sel);
    return st;
}

/* ---- search entry points ------------------------------------------------------------ */

static void prep_free(prep *rq, size_t n)
{
    for (size_t i = 0; rq && i < n; i++)
        free(rq[i].buf);
    free(rq);
}

/* Validate and quantise the probes of reqs[0..n). */
static abis_status prepare(const vgallery *g, abis_search_req *reqs, size_t n, prep **out,
                           abis_error *err)
{
    size_t dim = g->st.dim;
    prep *rq = calloc(n ? n : 1, sizeof *rq);
    int8_t *q = malloc(dim);
    abis_status st = rq && q ? ABIS_OK
                             : abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
    for (size_t i = 0; st == ABIS_OK && i < n; i++) {
        reqs[i].n_out = 0;
        st = check_len(g, "probe", reqs[i].len, err);
        if (st == ABIS_OK)
            st = check_finite(reqs[i].probe, dim, "probe", err);
        if (st == ABIS_OK && reqs[i].k && !reqs[i].out)
            st = abis_error_set(err, ABIS_E_INVALID, "gallery: no room for results");
        if (st != ABIS_OK)
            break;
        rq[i].buf = aligned_alloc(64, abis_i8_probe_bytes(dim));
        if (!rq[i].buf) {
            st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
            break;
        }
        float scale = abis_i8_quantize(reqs[i].probe, dim, q);
        abis_i8_probe_set(&rq[i].p, q, dim, scale, rq[i].buf);
        rq[i].pf = reqs[i].probe;
        rq[i].allow = reqs[i].allow;
    }
    free(q);
    if (st != ABIS_OK) {
        prep_free(rq, n);
        return st;
    }
    *out = rq;
    return ABIS_OK;
}

/* ---- graph pre-selection ---------------------------------------------------------------- */

typedef struct keep_ctx {
    const abis_vstore *st;
    const abis_bitset *allow;
} keep_ctx;

static int keep_row(const void *ctx, uint32_t row)
{
    const keep_ctx *k = ctx;
    return !abis_vs_dead(k->st, row) && allowed(k->allow, abis_vs_slot(k->st, row));
}

/* The share of rows a request keeps, from FILTER_SAMPLE rows spread evenly
 * over the graph's rows (1 without a filter or tombstones). */
static double kept_share(const vgallery *g, const abis_bitset *allow, size_t rows)
{
    if (!allow && g->st.n_dead == 0)
        return 1;
    size_t n = rows < FILTER_SAMPLE ? rows : FILTER_SAMPLE, kept = 0;
    keep_ctx k = {&g->st, allow};
    for (size_t i = 0; i < n; i++)
        kept += keep_row(&k, (uint32_t)(i * rows / n));
    return n ? (double)kept / n : 0;
}

typedef struct graph_job {
    const vgallery *g;
    const prep *rq;
    const size_t *ef; /* per request; 0: not by the graph */
    const abis_bitset *const *allow;
    abis_top *tops; /* [req][capmax]: each request's top list from the graph */
    size_t *ntop;
    size_t capmax;
    int f32;
    int failed; /* out of memory (written by one task each, read after the run) */
    int *fail;  /* per request */
} graph_job;

/* One request's graph walk: its ef best kept rows, re-scored with the float
 * probe when asked, offered by subject into its top list. */
static void graph_task(void *arg, size_t q, unsigned part)
{
    (void)part;
    graph_job *j = arg;
    const vgallery *g = j->g;
    const prep *p = &j->rq[q];
    if (!j->ef[q] || !p->cap)
        return;
    abis_top *cand = malloc(sizeof *cand * j->ef[q]);
    if (!cand) {
        j->fail[q] = 1;
        return;
    }
    keep_ctx k = {&g->st, p->allow};
    long n = abis_hnsw_search(g->graph, &p->p, j->ef[q], keep_row, &k, cand);
    if (n < 0)
        j->fail[q] = 1;
    for (long i = 0; i < n; i++) {
        float s = cand[i].score;
        if (j->f32) {
            uint32_t r = cand[i].row;
            abis_i8_best()->scan_f32(p->pf, g->st.dim, abis_vs_row(&g->st, r), 0, NULL, 1, &s);
            s *= abis_vs_scale(&g->st, r);
        }
        abis_top_offer(j->tops + q * j->capmax, &j->ntop[q], p->cap, s, cand[i].slot,
                       cand[i].row);
    }
    free(cand);
}

/* Pre-selected top lists (lock held): the graph's candidates for the
 * requests it can serve, plus an exact scan of the rows not yet in the
 * graph; requests the graph cannot serve well (a filter that lets too few
 * through, an effort covering the whole gallery) are scanned exactly.
 * merged/nmerged as for exact_scan. */
static abis_status graph_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
                                  const abis_search_opts *opts, abis_top *merged, size_t *nmerged,
                                  abis_error *err)
{
    size_t indexed = abis_hnsw_indexed(g->graph), live = abis_vs_live(&g->st);
    size_t base = opts->effort ? opts->effort : g->cfg.ef_search;
    size_t *ef = calloc(nreq, sizeof *ef);
    prep *exact = calloc(nreq, sizeof *exact); /* requests scanned exactly: cap 0 elsewhere */
    prep *tail = calloc(nreq, sizeof *tail);   /* every request, over the unindexed rows */
    graph_job j = {.g = g, .rq = rq, .ef = ef, .capmax = capmax, .f32 = opts->probe_f32};
    j.tops = malloc(sizeof *j.tops * nreq * capmax);
    j.ntop = calloc(nreq, sizeof *j.ntop);
    j.fail = calloc(nreq, sizeof *j.fail);
    abis_top *part = malloc(sizeof *part * nreq * capmax);   /* the tail's lists */
    abis_top *all = malloc(sizeof *all * capmax * 2);         /* one request's two lists */
    size_t *npart = calloc(nreq, sizeof *npart);
    abis_status st = ef && exact && tail && j.tops && j.ntop && j.fail && part && all && npart
                         ? ABIS_OK
                         : abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
    size_t n_exact = 0;
    for (size_t q = 0; st == ABIS_OK && q < nreq; q++) {
        tail[q] = rq[q];
        exact[q] = rq[q];
        exact[q].cap = 0;
        if (!rq[q].cap)
            continue;
        size_t want = base > rq[q].cap ? base : rq[q].cap;
        double share = kept_share(g, rq[q].allow, indexed);
        if (want >= live || share <= 0 || want / share > EF_MAX) {
            exact[q].cap = rq[q].cap; /* the whole gallery, exactly */
            tail[q].cap = 0;
            n_exact++;
        } else {
            ef[q] = (size_t)(want / share);
        }
    }
    if (st == ABIS_OK && n_exact)
        st = exact_scan(g, exact, nreq, capmax, opts->probe_f32, 0, g->st.n, merged, nmerged, err);
    if (st == ABIS_OK && indexed < g->st.n)
        st = exact_scan(g, tail, nreq, capmax, opts->probe_f32, indexed, g->st.n, part, npart,
                        err);
    if (st == ABIS_OK && n_exact < nreq) {
        abis_threadpool *pool = abis_threadpool_shared();
        abis_threadpool_run(pool, nreq, atomic_load(&g->threads), graph_task, &j);
        for (size_t q = 0; q < nreq; q++)
            if (j.fail[q])
                st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
    }
    for (size_t q = 0; st == ABIS_OK && q < nreq; q++) {
        if (!ef[q])
            continue; /* exact, or no answer wanted: merged already */
        /* the tail's list then the graph's, each slot's best */
        memcpy(all, part + q * capmax, npart[q] * sizeof *all);
        memcpy(all + npart[q], j.tops + q * capmax, j.ntop[q] * sizeof *all);
        nmerged[q] = abis_top_merge(all, npart[q] + j.ntop[q], rq[q].cap, merged + q * capmax);
    }
    free(ef);
    free(exact);
    free(tail);
    free(j.tops);
    free(j.ntop);
    free(j.fail);
    free(part);
    free(all);
    free(npart);
    return st;
}

/* ---- sign-code pre-selection ------------------------------------------------------------- */

/* A shortlist candidate: (code score, row), ordered by score descending then
 * row ascending, a total order, so the shortlist does not depend on threads. */
typedef struct cand {
    int32_t score;
    uint32_t row;
} cand;

static int cand_before(const cand *a, const cand *b)
{
    return a->score > b->score || (a->score == b->score && a->row < b->row);
}

/* Reorder c[0..n) (1 <= L <= n, entries distinct) so that c[0..L) are the L
 * best, in no particular order; returns the worst of them.  Quickselect with
 * Lomuto partitions, expected O(n). */
static cand cand_select(cand *c, size_t n, size_t L)
{
    size_t lo = 0, hi = n; /* the L-th best lies in [lo, hi) */
    while (hi - lo > 1) {
        size_t m = lo + (hi - lo) / 2;
        cand pivot = c[m];
        c[m] = c[hi - 1];
        c[hi - 1] = pivot;
        size_t p = lo;
        for (size_t i = lo; i < hi - 1; i++)
            if (cand_before(&c[i], &pivot)) {
                cand t = c[i];
                c[i] = c[p];
                c[p] = t;
                p++;
            }
        c[hi - 1] = c[p];
        c[p] = pivot; /* c[lo..p) before the pivot, c(p..hi) after it */
        if (p == L - 1)
            break;
        if (L - 1 < p)
            hi = p;
        else
            lo = p + 1;
    }
    cand worst = c[0];
    for (size_t i = 1; i < L; i++)
        if (cand_before(&worst, &c[i]))
            worst = c[i];
    return worst;
}

/* One participant's candidates for one request: up to 2L entries; once it
 * overflows it is cut to its best L and `bar` (the worst of them) is what a
 * row must beat from then on. */
typedef struct cand_list {
    cand *c;
    size_t n;
    int full; /* bar is set */
    cand bar;
} cand_list;

static void cand_push(cand_list *l, size_t L, cand e)
{
    if (l->full && !cand_before(&e, &l->bar))
        return;
    l->c[l->n++] = e;
    if (l->n == 2 * L) {
        l->bar = cand_select(l->c, l->n, L);
        l->n = L;
        l->full = 1;
    }
}

typedef struct codes_job {
    const vgallery *g;
    const abis_sign_kernel *kern;
    const prep *rq;
    const abis_sign_probe *sp; /* per request; planes NULL: no answer wanted */
    size_t nreq, L, capmax;
    unsigned width;
    cand_list *lists; /* [part][req] */
    int32_t *scores;  /* [part][BLOCK] */
    uint32_t *sel;    /* [part][BLOCK] */
    cand *all;        /* [req][2L * width]: each request's candidates, merged */
    int f32;
    abis_top *merged;
    size_t *nmerged;
} codes_job;

static void codes_task(void *arg, size_t t, unsigned part)
{
    const codes_job *j = arg;
    const abis_vstore *st = &j->g->st;
    size_t r = t * TASK_ROWS, end = r + TASK_ROWS < st->n ? r + TASK_ROWS : st->n;
    int32_t *sc = j->scores + (size_t)part * BLOCK;
    uint32_t *sel = j->sel + (size_t)part * BLOCK;
    cand_list *lists = j->lists + (size_t)part * j->nreq;
    while (r < end) {
        size_t len = ABIS_VS_CHUNK - abis_vs_off(r);
        if (len > BLOCK)
            len = BLOCK;
        if (len > end - r)
            len = end - r;
        const abis_vs_chunk *c = abis_vs_chunk_of(st, r);
        size_t off = abis_vs_off(r);
        for (size_t q = 0; q < j->nreq; q++) {
            if (!j->sp[q].planes)
                continue;
            j->kern->scan(&j->sp[q], c->code + off * st->words, len, sc);
            const abis_bitset *allow = j->rq[q].allow;
            cand_list *l = &lists[q];
            size_t ns = j->kern->above(sc, len, l->full ? l->bar.score : INT32_MIN, sel);
            for (size_t u = 0; u < ns; u++) {
                size_t i = sel[u];
                if (!c->dead[off + i] && allowed(allow, c->slot[off + i]))
                    cand_push(l, j->L, (cand){sc[i], (uint32_t)(r + i)});
            }
        }
        r += len;
    }
}

/* One request's shortlist (its participants' candidates, cut to the best
 * L) re-ranked exactly into its top list. */
static void rerank_task(void *arg, size_t q, unsigned part)
{
    (void)part;
    const codes_job *j = arg;
    const vgallery *g = j->g;
    const prep *p = &j->rq[q];
    j->nmerged[q] = 0;
    if (!j->sp[q].planes)
        return;
    cand *all = j->all + q * 2 * j->L * j->width;
    size_t total = 0;
    for (unsigned w = 0; w < j->width; w++) {
        const cand_list *l = &j->lists[(size_t)w * j->nreq + q];
        memcpy(all + total, l->c, l->n * sizeof *all);
        total += l->n;
    }
    if (total > j->L) {
        cand_select(all, total, j->L);
        total = j->L;
    }
    /* in any order: the top list orders by score and row */
    const abis_i8_kernel *k8 = abis_i8_best();
    for (size_t i = 0; i < total; i++) {
        if (i + 8 < total)
            __builtin_prefetch(abis_vs_row(&g->st, all[i + 8].row));
        uint32_t r = all[i].row;
        float s;
        if (j->f32) {
            k8->scan_f32(p->pf, g->st.dim, abis_vs_row(&g->st, r), 0, NULL, 1, &s);
            s *= abis_vs_scale(&g->st, r);
        } else {
            int32_t d;
            k8->scan(&p->p, abis_vs_row(&g->st, r), 0, NULL, 1, &d);
            s = abis_i8_score(d, p->p.scale, abis_vs_scale(&g->st, r));
        }
        abis_top_offer(j->merged + q * j->capmax, &j->nmerged[q], p->cap, s,
                       abis_vs_slot(&g->st, r), r);
    }
}

/* Pre-selected top lists by sign codes (lock held): the L best rows by code
 * score among those each request's filter lets through, scored exactly (the
 * int8 score, or the float probe's with probe_f32), into top lists.  A
 * request whose L covers the gallery is scanned exactly.  merged/nmerged as
 * for exact_scan. */
static abis_status codes_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
                              const abis_search_opts *opts, abis_top *merged, size_t *nmerged,
                              abis_error *err)
{
    size_t live = abis_vs_live(&g->st);
    size_t L = opts->effort ? opts->effort : g->cfg.shortlist;
    if (L < capmax)
        L = capmax;
    if (L >= live) /* asked for the whole gallery: that is the exact scan */
        return exact_scan(g, rq, nreq, capmax, opts->probe_f32, 0, g->st.n, merged, nmerged, err);
    size_t n_tasks = (g->st.n + TASK_ROWS - 1) / TASK_ROWS;
    abis_threadpool *pool = abis_threadpool_shared();
    unsigned width = abis_threadpool_width(pool, n_tasks, atomic_load(&g->threads));
    size_t pw = abis_sign_probe_words(g->st.dim);
    codes_job j = {.g = g,
                   .kern = abis_sign_best(),
                   .rq = rq,
                   .nreq = nreq,
                   .L = L,
                   .capmax = capmax,
                   .width = width,
                   .f32 = opts->probe_f32,
                   .merged = merged,
                   .nmerged = nmerged};
    abis_sign_probe *sp = calloc(nreq, sizeof *sp);
    uint64_t *planes = malloc(sizeof *planes * pw * nreq);
    cand *mem = malloc(sizeof *mem * 2 * L * width * nreq * 2);
    j.sp = sp;
    j.lists = calloc((size_t)width * nreq, sizeof *j.lists);
    j.scores = malloc(sizeof *j.scores * width * BLOCK);
    j.sel = malloc(sizeof *j.sel * width * BLOCK);
    abis_status st = sp && planes && mem && j.lists && j.scores && j.sel
                         ? ABIS_OK
                         : abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
    if (st == ABIS_OK) {
        for (size_t q = 0; q < nreq; q++)
            if (rq[q].cap)
                abis_sign_probe_set(&sp[q], rq[q].p.q, g->st.dim, planes + q * pw);
        for (size_t i = 0; i < (size_t)width * nreq; i++)
            j.lists[i].c = mem + i * 2 * L;
        j.all = mem + (size_t)width * nreq * 2 * L;
        abis_threadpool_run(pool, n_tasks, width, codes_task, &j);
        abis_threadpool_run(pool, nreq, width, rerank_task, &j);
    }
    free(sp);
    free(planes);
    free(mem);
    free(j.lists);
    free(j.scores);
    free(j.sel);
    return st;
}

/* Search reqs[0..n) (n <= MAX_BATCH), lock held. */
static abis_status search_locked(const vgallery *g, abis_search_req *reqs, prep *rq, size_t n,
                                 const abis_search_opts *opts, abis_error *err)
{
    size_t live = abis_vs_live(&g->st), capmax = 0;
    for (size_t i = 0; i < n; i++) {
        rq[i].cap = reqs[i].k < live ? reqs[i].k : live;
        if (rq[i].cap > capmax)
            capmax = rq[i].cap;
    }
    if (capmax == 0)
        return ABIS_OK;
    abis_top *merged = malloc(sizeof *merged * n * capmax);
    size_t *nmerged = calloc(n, sizeof *nmerged);
    abis_status st = merged && nmerged ? ABIS_OK
                                       : abis_error_set(err, ABIS_E_NOMEM,
                                                        "gallery: out of memory for a search");
    int f32 = opts && opts->probe_f32;
    int pre = opts && opts->preselect;
    int graph = pre && g->cfg.preselect == ABIS_PRESELECT_GRAPH && g->graph &&
                abis_hnsw_indexed(g->graph) > 0;
    int codes = pre && g->cfg.preselect == ABIS_PRESELECT_CODES;
    if (st == ABIS_OK && graph)
        st = graph_scan(g, rq, n, capmax, opts, merged, nmerged, err);
    else if (st == ABIS_OK && codes)
        st = codes_scan(g, rq, n, capmax, opts, merged, nmerged, err);
    else if (st == ABIS_OK)
        st = exact_scan(g, rq, n, capmax, f32, 0, g->st.n, merged, nmerged, err);
    for (size_t i = 0; st == ABIS_OK && i < n; i++) {
        for (size_t h = 0; h < nmerged[i]; h++) {
            const abis_top *t = &merged[i * capmax + h];
            reqs[i].out[h] = (abis_hit){t->slot, *abis_vs_id(&g->st, t->row), t->score};
        }
        reqs[i].n_out = nmerged[i];
    }
    free(merged);
    free(nmerged);
    return st;
}

static abis_status vg_search_batch(abis_gallery *base, abis_search_req *reqs, size_t n,
                                   const abis_search_opts *opts, abis_error *err)
{
    vgallery *g = (vgallery *)base;
    prep *rq = NULL;
    abis_status st = prepare(g, reqs, n, &rq, err);
    if (st != ABIS_OK)
        return st;
    pthread_rwlock_rdlock(&g->lock);
    for (size_t i = 0; st == ABIS_OK && i < n; i += MAX_BATCH)
        st = search_locked(g, reqs + i, rq + i, n - i < MAX_BATCH ? n - i : MAX_BATCH, opts, err);
    pthread_rwlock_unlock(&g->lock);
    prep_free(rq, n);
    if (st != ABIS_OK)
        for (size_t i = 0; i < n; i++)
            reqs[i].n_out = 0;
    return st;
}

static abis_status vg_search(abis_gallery *base, const void *probe, size_t len, size_t k,
                             const abis_bitset *allow, abis_hit *out, size_t *n_out,
                             abis_error *err)
{
    abis_search_req r = {probe, len, k, allow, out, 0};
    abis_status st = vg_search_batch(base, &r, 1, NULL, err);
    *n_out = r.n_out;
    return st;
}

/* ---- snapshots --------------------------------------------------------------------------- */

/* The body of a vector gallery snapshot (docs/FORMATS.md, "Gallery
 * snapshots"), little-endian:
 *   u32 dim, u32 has_graph, u64 rows
 *   rows x { template id[16], subject id[16], f32 scale, int8 q[dim] }
 *   if has_graph: u32 m, u64 indexed, u32 entry, i32 max_level, u64 n_upper,
 *                 u32 upper[n_upper],
 *                 indexed x { u32 links[2m], u8 level, u32 up }
 * Written compacted (no tombstones). */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gallery snapshots are written in the host's byte order, which must be little-endian"
#endif

typedef struct snap_sink {
    abis_snapshot_writer *w;
    abis_error *err;
    abis_status st;
} snap_sink;

static void put(snap_sink *k, const void *p, size_t n)
{
    if (k->st == ABIS_OK)
        k->st = abis_snapshot_write(k->w, p, n, k->err);
}

static abis_status save_body(vgallery *g, const abis_snapshot_io *io, snap_sink *k)
{
    uint32_t dim = (uint32_t)g->st.dim, has_graph = g->graph != NULL;
    uint64_t rows = g->st.n;
    put(k, &dim, 4);
    put(k, &has_graph, 4);
    put(k, &rows, 8);
    for (size_t r = 0; r < g->st.n && k->st == ABIS_OK; r++) {
        float scale = abis_vs_scale(&g->st, r);
        put(k, abis_vs_id(&g->st, r), sizeof(abis_id));
        put(k, io->subject_of(io->ctx, abis_vs_slot(&g->st, r)), sizeof(abis_id));
        put(k, &scale, 4);
        put(k, abis_vs_row(&g->st, r), g->st.dim);
    }
    if (!g->graph)
        return k->st;
    abis_hnsw_view v;
    abis_hnsw_view_get(g->graph, &v);
    uint32_t m = v.m, entry = v.entry;
    int32_t max_level = v.max_level;
    uint64_t indexed = v.indexed, n_upper = v.n_upper;
    put(k, &m, 4);
    put(k, &indexed, 8);
    put(k, &entry, 4);
    put(k, &max_level, 4);
    put(k, &n_upper, 8);
    put(k, v.upper, n_upper * sizeof *v.upper);
    for (size_t r = 0; r < indexed && k->st == ABIS_OK; r++) {
        uint8_t level = abis_hnsw_level(g->graph, r);
        uint32_t up = abis_hnsw_up(g->graph, r);
        put(k, abis_hnsw_links0(g->graph, r), 2 * (size_t)m * sizeof(uint32_t));
        put(k, &level, 1);
        put(k, &up, 4);
    }
    return k->st;
}

static abis_status vg_snapshot_save(abis_gallery *base, const abis_snapshot_io *io,
                                    abis_error *err)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_wrlock(&g->lock);
    abis_status st = ABIS_OK;
    /* Unchanged since loaded from or saved to this file: the file still holds
     * exactly this gallery.  Its header names an older point of the store's
     * history, which the engine accepts when nothing since changed templates
     * (segstate.c), so it is not rewritten for every identification. */
    if (!g->dirty && g->snap_path && strcmp(g->snap_path, io->path) == 0 &&
        access(io->path, F_OK) == 0)
        goto done;
    if (g->st.n_dead && compact(g) != ABIS_OK) {
        st = abis_error_set(err, ABIS_E_NOMEM, "gallery snapshot: out of memory compacting");
        goto done;
    }
    snap_sink k = {NULL, err, ABIS_OK};
    abis_snapshot_head head = io->head;
    head.version = ABIS_SNAPSHOT_VERSION;
    head.kind = ABIS_SNAPSHOT_KIND_VECTOR;
    st = abis_snapshot_create(io->path, io->key, &head, &k.w, err);
    if (st == ABIS_OK)
        st = save_body(g, io, &k);
    if (st == ABIS_OK) {
        st = abis_snapshot_commit(k.w, err);
        k.w = NULL;
    }
    abis_snapshot_abort(k.w);
    if (st == ABIS_OK) {
        char *p = strdup(io->path);
        free(g->snap_path);
        g->snap_path = p; /* NULL on OOM: the file is then simply not reused */
        g->dirty = 0;
    }
done:
    pthread_rwlock_unlock(&g->lock);
    return st;
}

typedef struct snap_source {
    abis_snapshot_reader *r;
    abis_error *err;
    abis_status st;
    size_t link_bytes; /* a node's layer-0 link list */
} snap_source;

static void get(snap_source *s, void *p, size_t n)
{
    if (s->st == ABIS_OK)
        s->st = abis_snapshot_read(s->r, p, n, s->err);
}

static int load_node(void *ctx, size_t r, uint32_t *links0, uint8_t *level, uint32_t *up)
{
    (void)r;
    snap_source *s = ctx;
    get(s, links0, s->link_bytes);
    get(s, level, 1);
    get(s, up, 4);
    return s->st == ABIS_OK ? 0 : -1;
}

static abis_status load_body(vgallery *g, const abis_snapshot_io *io, snap_source *s)
{
    uint32_t dim = 0, has_graph = 0;
    uint64_t rows = 0;
    get(s, &dim, 4);
    get(s, &has_graph, 4);
    get(s, &rows, 8);
    if (s->st != ABIS_OK)
        return s->st;
    if (dim != g->st.dim || has_graph > 1 || rows > ABIS_VS_MAX_ROWS)
        return abis_error_set(s->err, ABIS_E_CRYPTO,
                              "gallery snapshot '%s' holds %u-value vectors, the modality has %zu",
                              io->path, dim, g->st.dim);
    int8_t *q = malloc(g->st.dim);
    if (!q)
        return abis_error_set(s->err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    for (uint64_t r = 0; r < rows && s->st == ABIS_OK; r++) {
        abis_id id, subject;
        float scale = 0;
        get(s, &id, sizeof id);
        get(s, &subject, sizeof subject);
        get(s, &scale, 4);
        get(s, q, g->st.dim);
        if (s->st != ABIS_OK)
            break;
        int64_t slot = io->slot_of(io->ctx, &subject);
        if (slot < 0)
            s->st = abis_error_set(s->err, ABIS_E_NOT_FOUND,
                                   "gallery snapshot '%s' holds a template of a subject the "
                                   "store no longer has (it is rebuilt from the store)",
                                   io->path);
        else if (!isfinite(scale) || scale < 0 ||
                 abis_vstore_add(&g->st, &id, (uint32_t)slot, q, scale) != 0)
            s->st = abis_error_set(s->err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    }
    free(q);
    if (s->st != ABIS_OK || !has_graph)
        return s->st;
    uint32_t m = 0, entry = 0;
    int32_t max_level = 0;
    uint64_t indexed = 0, n_upper = 0;
    get(s, &m, 4);
    get(s, &indexed, 8);
    get(s, &entry, 4);
    get(s, &max_level, 4);
    get(s, &n_upper, 8);
    if (s->st != ABIS_OK)
        return s->st;
    if (m < 2 || m > 1024 || indexed > g->st.n || n_upper > (uint64_t)indexed * 16 * m)
        return abis_error_set(s->err, ABIS_E_CRYPTO, "gallery snapshot '%s' has a malformed index",
                              io->path);
    uint32_t *upper = malloc(sizeof *upper * (n_upper ? n_upper : 1));
    abis_hnsw_params p = {m, g->cfg.ef_construction, (uint64_t)(uintptr_t)g};
    if (!upper || !(g->graph = abis_hnsw_create(&g->st, &p))) {
        free(upper);
        return abis_error_set(s->err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    }
    get(s, upper, n_upper * sizeof *upper);
    s->link_bytes = 2 * (size_t)m * sizeof(uint32_t);
    if (s->st == ABIS_OK &&
        abis_hnsw_load(g->graph, indexed, entry, max_level, upper, n_upper, load_node, s) != 0 &&
        s->st == ABIS_OK)
        s->st = abis_error_set(s->err, ABIS_E_CRYPTO,
                               "gallery snapshot '%s' has a malformed index", io->path);
    free(upper);
    return s->st;
}

static abis_status vg_snapshot_load(abis_gallery *base, const abis_snapshot_io *io,
                                    abis_error *err)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_wrlock(&g->lock);
    abis_status st = ABIS_OK;
    if (g->st.n != 0)
        st = abis_error_set(err, ABIS_E_INTERNAL, "gallery snapshot: the gallery is not empty");
    snap_source s = {NULL, err, ABIS_OK, 0};
    if (st == ABIS_OK && io->head.kind != ABIS_SNAPSHOT_KIND_VECTOR)
        st = abis_error_set(err, ABIS_E_CRYPTO,
                            "gallery snapshot '%s' is not of a vector gallery", io->path);
    if (st == ABIS_OK)
        st = abis_snapshot_open(io->path, io->key, &io->head, &s.r, err);
    if (st == ABIS_OK)
        st = load_body(g, io, &s);
    if (st == ABIS_OK) {
        st = abis_snapshot_finish(s.r, err);
        s.r = NULL;
    }
    abis_snapshot_close(s.r);
    if (st == ABIS_OK) {
        free(g->snap_path);
        g->snap_path = strdup(io->path);
        g->dirty = 0;
    } else {
        abis_hnsw_free(g->graph);
        g->graph = NULL;
        abis_vstore_free(&g->st);
    }
    int work = st == ABIS_OK && needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    if (work)
        kick(g);
    return st;
}

/* ---- creation and settings ------------------------------------------------------------ */

static const abis_gallery_ops vector_ops = {
    .destroy = vg_destroy,
    .add = vg_add,
    .remove = vg_remove,
    .remove_slot = vg_remove_slot,
    .count = vg_count,
    .search = vg_search,
    .search_batch = vg_search_batch,
    .snapshot_save = vg_snapshot_save,
    .snapshot_load = vg_snapshot_load,
};

void abis_vector_config_default(abis_vector_config *c)
{
    memset(c, 0, sizeof *c);
    c->preselect = ABIS_PRESELECT_CODES;
    c->shortlist = ABIS_VECTOR_SHORTLIST;
    c->index_min = ABIS_VECTOR_INDEX_MIN;
    c->graph_m = 16;
    c->ef_construction = 100;
    c->ef_search = 64;
    c->background = 1;
}

abis_status abis_gallery_vector_create_with(size_t dim, const abis_vector_config *c,
                                            abis_gallery **out, abis_error *err)
{
    *out = NULL;
    if (dim == 0 || dim > MAX_DIM)
        return abis_error_set(err, ABIS_E_INVALID,
                              "gallery: dimension %zu is not between 1 and %d", dim, MAX_DIM);
    vgallery *g = calloc(1, sizeof *g);
    if (!g)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory");
    if (c)
        g->cfg = *c;
    else
        abis_vector_config_default(&g->cfg);
    atomic_init(&g->threads, g->cfg.threads);
    atomic_init(&g->mstop, 0);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&g->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(g);
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: cannot create its lock");
    }
    pthread_mutex_init(&g->mmu, NULL);
    pthread_cond_init(&g->mcv, NULL);
    g->base.ops = &vector_ops;
    abis_vstore_init(&g->st, dim);
    *out = &g->base;
    return ABIS_OK;
}

abis_status abis_gallery_vector_create(size_t dim, abis_gallery **out, abis_error *err)
{
    return abis_gallery_vector_create_with(dim, NULL, out, err);
}

int abis_gallery_is_vector(const abis_gallery *g)
{
    return g && g->ops == &vector_ops;
}

abis_status abis_gallery_vector_sync(abis_gallery *base, abis_error *err)
{
    vgallery *g = (vgallery *)base;
    abis_status st = work_all(g);
    if (st != ABIS_OK)
        return abis_error_set(err, st, "gallery: out of memory indexing templates");
    return ABIS_OK;
}

void abis_gallery_vector_set_threads(abis_gallery *base, unsigned threads)
{
    atomic_store(&((vgallery *)base)->threads, threads);
}

void abis_gallery_vector_stats(abis_gallery *base, abis_vector_stats *out)
{
    vgallery *g = (vgallery *)base;
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&g->lock);
    out->rows = g->st.n;
    out->live = abis_vs_live(&g->st);
    abis_vstore_bytes(&g->st, &out->vector_bytes, &out->bookkeeping_bytes, &out->code_bytes);
    if (g->graph) {
        out->indexed = abis_hnsw_indexed(g->graph);
        out->graph_bytes = abis_hnsw_bytes(g->graph);
    }
    pthread_rwlock_unlock(&g->lock);
    out->kernel = abis_i8_best()->name;
    out->code_kernel = abis_sign_best()->name;
}
