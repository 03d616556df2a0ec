/* vector_graph.c: the vector gallery's graph pre-selection (see
 * docs/search.md, "Graph"). */
#include <stdlib.h>
#include <string.h>

#include "gallery/vector_internal.h"
#include "util/threadpool.h"

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
        abis_top_offer(j->tops + q * j->capmax, &j->ntop[q], p->cap, s, cand[i].slot, cand[i].row);
    }
    free(cand);
}

/* Pre-selected top lists (lock held): the graph's candidates for the
 * requests it can serve, plus an exact scan of the rows not yet in the
 * graph; requests the graph cannot serve well (a filter that lets too few
 * through, an effort covering the whole gallery) are scanned exactly.
 * merged/nmerged as for exact_scan. */
abis_status vector_graph_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
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
    abis_top *part = malloc(sizeof *part * nreq * capmax); /* the tail's lists */
    abis_top *all = malloc(sizeof *all * capmax * 2);      /* one request's two lists */
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
        st = vector_exact_scan(g, exact, nreq, capmax, opts->probe_f32, 0, g->st.n, merged, nmerged,
                               err);
    if (st == ABIS_OK && indexed < g->st.n)
        st = vector_exact_scan(g, tail, nreq, capmax, opts->probe_f32, indexed, g->st.n, part,
                               npart, err);
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
