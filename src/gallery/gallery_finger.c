/*
 * gallery_finger.c: the two-stage fingerprint gallery (gallery_finger.h).
 *
 * Layout: the shared row store (gallery/rows.h) holds one pointer per row,
 * to the template's prepared form (match.h: cylinders, positions,
 * pre-selection codes; a few KiB, its size varying with the minutiae).  The
 * prepared block belongs to the row: it is freed when the row is removed or
 * replaced, before the row store tombstones it, so compaction (which moves
 * rows, pointers and all) never frees or copies a block.
 *
 * Search: stage 1 scores every allowed row with the pre-selection score and
 * keeps the best P in a min-heap per thread; the global P best of their
 * union go to stage 2, the full matcher; the k best distinct subjects
 * (topk.h: score descending, row ascending, each subject's best template)
 * are the answer.
 * Threads are started per call as in gallery_iris.c; a chunk whose thread
 * cannot start is scanned by the caller.
 */
#include "gallery/gallery_finger.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gallery/rows.h"
#include "gallery/topk.h"
#include "modality/finger/finger.h"
#include "modality/finger/match.h"

#define MAX_THREADS 64
/* Rows per thread below which one thread does it all: starting a thread
 * costs some 50 us, pre-selection about 7 us a row (docs/BENCHMARKS.md). */
#define ROWS_PER_THREAD 512

typedef struct fgallery {
    abis_gallery base;
    abis_rows rows; /* abis_finger_prep * per row */
    unsigned threads;
    size_t pre_min;
    double pre_share;
} fgallery;

static abis_finger_prep *row_prep(const abis_rows *r, size_t i)
{
    abis_finger_prep *p;
    memcpy(&p, abis_rows_at(r, i), sizeof p);
    return p;
}

/* Free the prepared block of template `id`, if present. */
static void free_prep_of(fgallery *g, const abis_id *id)
{
    uint32_t i;
    if (abis_idmap_get(&g->rows.map, id->bytes, &i))
        abis_finger_prep_free(row_prep(&g->rows, i));
}

/* ---- operations ----------------------------------------------------------------- */

static void fg_destroy(abis_gallery *base)
{
    fgallery *g = (fgallery *)base;
    for (size_t i = 0; i < g->rows.n; i++)
        if (!g->rows.dead[i])
            abis_finger_prep_free(row_prep(&g->rows, i));
    abis_rows_free(&g->rows);
    free(g);
}

/* Parse and prepare canonical bytes. */
static abis_status prepare_bytes(const void *tmpl, size_t len, abis_finger_prep **out,
                                 abis_error *err)
{
    abis_finger_template *t = malloc(sizeof *t);
    if (!t)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory");
    abis_status st = abis_finger_template_read(tmpl, len, t, err);
    if (st == ABIS_OK)
        st = abis_finger_prepare(t, out, err);
    memset(t, 0, sizeof *t);
    free(t);
    return st;
}

static abis_status fg_add(abis_gallery *base, const abis_id *template_id, uint32_t slot,
                          const void *tmpl, size_t len, abis_error *err)
{
    fgallery *g = (fgallery *)base;
    abis_finger_prep *p;
    abis_status st = prepare_bytes(tmpl, len, &p, err);
    if (st != ABIS_OK)
        return abis_error_prefix(err, "gallery");
    /* a replaced template's block goes now; abis_rows_add tombstones its row */
    uint32_t old;
    int had = abis_idmap_get(&g->rows.map, template_id->bytes, &old);
    abis_finger_prep *old_p = had ? row_prep(&g->rows, old) : NULL;
    if (abis_rows_add(&g->rows, template_id, slot, &p) != 0) {
        abis_finger_prep_free(p);
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory adding a template");
    }
    abis_finger_prep_free(old_p);
    return ABIS_OK;
}

static int fg_remove(abis_gallery *base, const abis_id *template_id)
{
    fgallery *g = (fgallery *)base;
    free_prep_of(g, template_id);
    return abis_rows_remove(&g->rows, template_id);
}

static size_t fg_remove_slot(abis_gallery *base, uint32_t slot)
{
    fgallery *g = (fgallery *)base;
    for (size_t i = 0; i < g->rows.n; i++)
        if (!g->rows.dead[i] && g->rows.slots[i] == slot)
            abis_finger_prep_free(row_prep(&g->rows, i));
    return abis_rows_remove_slot(&g->rows, slot);
}

static size_t fg_count(const abis_gallery *base)
{
    return abis_rows_live(&((const fgallery *)base)->rows);
}

/* ---- search ----------------------------------------------------------------------- */

/* Min-heap of the `cap` best candidates (heap[0] is the worst kept). */
static void heap_offer(abis_top *h, size_t *n, size_t cap, abis_top c)
{
    if (*n < cap) {
        size_t i = (*n)++;
        while (i > 0 && abis_top_before(&h[(i - 1) / 2], &c)) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = c;
        return;
    }
    if (!abis_top_before(&c, &h[0]))
        return;
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const abis_top *worst = &c;
        if (l < *n && abis_top_before(worst, &h[l])) {
            m = l;
            worst = &h[l];
        }
        if (r < *n && abis_top_before(worst, &h[r]))
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    h[i] = c;
}

typedef struct job {
    const fgallery *g;
    const abis_finger_prep *probe;
    const abis_bitset *allow;
    int stage; /* 1: pre-select rows [begin, end) into heap; 2: match list[begin, end) */
    size_t begin, end;
    abis_top *list; /* stage 1: heap (cap entries); stage 2: the shared candidate list */
    size_t cap, n;
} job;

static int eligible(const fgallery *g, size_t r, int pos, const abis_bitset *allow)
{
    if (g->rows.dead[r] || (allow && !abis_bitset_test(allow, g->rows.slots[r])))
        return 0;
    int q = abis_finger_prep_position(row_prep(&g->rows, r));
    return !pos || !q || pos == q;
}

static void *run_job(void *arg)
{
    job *j = arg;
    const fgallery *g = j->g;
    int pos = abis_finger_prep_position(j->probe);
    if (j->stage == 1) {
        for (size_t r = j->begin; r < j->end; r++)
            if (eligible(g, r, pos, j->allow))
                heap_offer(j->list, &j->n, j->cap,
                           (abis_top){(float)abis_finger_preselect(j->probe, row_prep(&g->rows, r)),
                                      g->rows.slots[r], (uint32_t)r});
    } else {
        for (size_t i = j->begin; i < j->end; i++)
            j->list[i].score =
                (float)abis_finger_match(j->probe, row_prep(&g->rows, j->list[i].row));
    }
    return NULL;
}

static unsigned thread_count(const fgallery *g, size_t work, size_t per_thread)
{
    unsigned t = g->threads;
    if (t == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        t = c > 0 ? (unsigned)c : 1;
    }
    if (t > MAX_THREADS)
        t = MAX_THREADS;
    size_t by_size = work / per_thread;
    if (by_size < 2)
        return 1;
    return by_size < t ? (unsigned)by_size : t;
}

/* Run jobs[0..nt) on nt threads (the caller runs the first). */
static void run_jobs(job *jobs, unsigned nt)
{
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (unsigned t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, run_job, &jobs[t]) == 0;
    run_job(&jobs[0]);
    for (unsigned t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            run_job(&jobs[t]);
    }
}

static abis_status fg_search(abis_gallery *base, const void *probe, size_t len, size_t k,
                             const abis_bitset *allow, abis_hit *out, size_t *n_out,
                             abis_error *err)
{
    fgallery *g = (fgallery *)base;
    *n_out = 0;
    abis_finger_prep *p;
    abis_status st = prepare_bytes(probe, len, &p, err);
    if (st != ABIS_OK)
        return abis_error_prefix(err, "gallery: probe");
    size_t rows = g->rows.n, live = abis_rows_live(&g->rows);
    abis_top *list = NULL, *heaps = NULL, *best = NULL;
    size_t n_list = 0;
    if (k == 0 || live == 0)
        goto done;
    size_t keep = (size_t)ceil(g->pre_share * (double)live);
    if (keep < g->pre_min)
        keep = g->pre_min;
    int pos = abis_finger_prep_position(p);
    job jobs[MAX_THREADS];
    if (keep >= live) {
        /* small gallery: every eligible row goes to the full matcher */
        list = malloc(live * sizeof *list);
        if (!list) {
            st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for the search");
            goto done;
        }
        for (size_t r = 0; r < rows; r++)
            if (eligible(g, r, pos, allow))
                list[n_list++] = (abis_top){0, g->rows.slots[r], (uint32_t)r};
    } else {
        unsigned nt = thread_count(g, rows, ROWS_PER_THREAD);
        heaps = malloc((size_t)nt * keep * sizeof *heaps);
        list = malloc((size_t)nt * keep * sizeof *list);
        if (!heaps || !list) {
            st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for the search");
            goto done;
        }
        for (unsigned t = 0; t < nt; t++)
            jobs[t] = (job){.g = g,
                            .probe = p,
                            .allow = allow,
                            .stage = 1,
                            .begin = rows * t / nt,
                            .end = rows * (t + 1) / nt,
                            .list = heaps + (size_t)t * keep,
                            .cap = keep};
        run_jobs(jobs, nt);
        for (unsigned t = 0; t < nt; t++) {
            memcpy(list + n_list, jobs[t].list, jobs[t].n * sizeof *list);
            n_list += jobs[t].n;
        }
        /* the global `keep` best of the threads' candidates */
        qsort(list, n_list, sizeof *list, abis_top_cmp);
        if (n_list > keep)
            n_list = keep;
    }
    /* stage 2: the full matcher */
    unsigned nt = thread_count(g, n_list, 64);
    for (unsigned t = 0; t < nt; t++)
        jobs[t] = (job){.g = g,
                        .probe = p,
                        .stage = 2,
                        .begin = n_list * t / nt,
                        .end = n_list * (t + 1) / nt,
                        .list = list};
    run_jobs(jobs, nt);
    /* each subject's best template, the k best subjects */
    best = malloc((k < n_list ? k : n_list ? n_list : 1) * sizeof *best);
    if (!best) {
        st = abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for the search");
        goto done;
    }
    size_t n = abis_top_merge(list, n_list, k, best);
    for (size_t i = 0; i < n; i++)
        out[i] = (abis_hit){
            .slot = best[i].slot, .template_id = g->rows.ids[best[i].row], .score = best[i].score};
    *n_out = n;
done:
    free(best);
    free(list);
    free(heaps);
    abis_finger_prep_free(p);
    return st;
}

static const abis_gallery_ops finger_ops = {
    .destroy = fg_destroy,
    .add = fg_add,
    .remove = fg_remove,
    .remove_slot = fg_remove_slot,
    .count = fg_count,
    .search = fg_search,
};

abis_status abis_gallery_finger_create(abis_gallery **out, abis_error *err)
{
    *out = NULL;
    fgallery *g = calloc(1, sizeof *g);
    if (!g)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory");
    g->base.ops = &finger_ops;
    g->pre_min = ABIS_FINGER_PRESELECT_MIN;
    g->pre_share = ABIS_FINGER_PRESELECT_SHARE;
    abis_rows_init(&g->rows, sizeof(abis_finger_prep *));
    *out = &g->base;
    return ABIS_OK;
}

void abis_gallery_finger_set_threads(abis_gallery *base, unsigned threads)
{
    assert(base->ops == &finger_ops);
    ((fgallery *)base)->threads = threads;
}

void abis_gallery_finger_set_preselect(abis_gallery *base, size_t min, double share)
{
    assert(base->ops == &finger_ops);
    fgallery *g = (fgallery *)base;
    g->pre_min = min;
    g->pre_share = share;
}
