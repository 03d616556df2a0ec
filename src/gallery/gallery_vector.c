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

#include "gallery/vector_internal.h"
#include "match/signcode.h"
#include "util/threadpool.h"

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

int vector_needs_work(const vgallery *g)
{
    return needs_compaction(g) || needs_indexing(g);
}

/* Compact the rows and renumber the graph (lock held exclusively). */
abis_status vector_compact(vgallery *g)
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
        *st = vector_compact(g);
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
void vector_kick(vgallery *g)
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
    return abis_error_set(
        err, ABIS_E_INVALID,
        "gallery: %s has %zu bytes, this gallery expects %zu (%zu float32 values)", what, len,
        g->st.dim * sizeof(float), g->st.dim);
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
    int work = rc == 0 && vector_needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    free(q);
    if (rc != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory adding a template");
    if (work)
        vector_kick(g);
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
    int work = vector_needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    if (work)
        vector_kick(g);
    return rc;
}

static size_t vg_remove_slot(abis_gallery *base, uint32_t slot)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_wrlock(&g->lock);
    size_t n = abis_vstore_remove_slot(&g->st, slot);
    if (n)
        removed(g);
    int work = vector_needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    if (work)
        vector_kick(g);
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
    abis_status st = rq && q
                         ? ABIS_OK
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
    abis_status st = merged && nmerged
                         ? ABIS_OK
                         : abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
    int f32 = opts && opts->probe_f32;
    int pre = opts && opts->preselect;
    int graph = pre && g->cfg.preselect == ABIS_PRESELECT_GRAPH && g->graph &&
                abis_hnsw_indexed(g->graph) > 0;
    int codes = pre && g->cfg.preselect == ABIS_PRESELECT_CODES;
    if (st == ABIS_OK && graph)
        st = vector_graph_scan(g, rq, n, capmax, opts, merged, nmerged, err);
    else if (st == ABIS_OK && codes)
        st = vector_codes_scan(g, rq, n, capmax, opts, merged, nmerged, err);
    else if (st == ABIS_OK)
        st = vector_exact_scan(g, rq, n, capmax, f32, 0, g->st.n, merged, nmerged, err);
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

/* ---- creation and settings ------------------------------------------------------------ */

static const abis_gallery_ops vector_ops = {
    .destroy = vg_destroy,
    .add = vg_add,
    .remove = vg_remove,
    .remove_slot = vg_remove_slot,
    .count = vg_count,
    .search = vg_search,
    .search_batch = vg_search_batch,
    .snapshot_save = vector_snapshot_save,
    .snapshot_load = vector_snapshot_load,
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
        return abis_error_set(err, ABIS_E_INVALID, "gallery: dimension %zu is not between 1 and %d",
                              dim, MAX_DIM);
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
