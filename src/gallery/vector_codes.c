/* vector_codes.c: the vector gallery's sign-code pre-selection (see
 * docs/search.md, "Sign codes"). */
#include <stdlib.h>
#include <string.h>

#include "gallery/vector_internal.h"
#include "match/signcode.h"
#include "util/threadpool.h"

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

/* As cand_select, faster when c[0..n) is in ascending row order (as a
 * participant's list is: it takes its tasks, and the rows in them, in
 * ascending order, and cuts keep the order): code scores are small integers,
 * so a histogram of the top CUT_BINS score values finds the L-th best score
 * s, and one stable pass keeps every entry above s and the lowest rows of
 * those at s.  Predictable passes instead of a quickselect's mispredicted
 * branches (perf, 1M x 128, L = 4,096: the quickselect took 6.3 % of the
 * samples, more than the code scan's 2.4 %; this cut 2.8 %).  Falls back to cand_select when the rows are not in order or
 * the best L spread over more than CUT_BINS score values.  The kept entries
 * stay in row order. */
#define CUT_BINS 1024
static cand cand_cut(cand *c, size_t n, size_t L)
{
    int32_t top = c[0].score;
    int sorted = 1;
    for (size_t i = 1; i < n; i++) {
        if (c[i].score > top)
            top = c[i].score;
        sorted &= c[i].row > c[i - 1].row;
    }
    if (!sorted)
        return cand_select(c, n, L);
    uint32_t hist[CUT_BINS] = {0};
    for (size_t i = 0; i < n; i++) {
        int64_t b = (int64_t)top - c[i].score;
        if (b < CUT_BINS)
            hist[b]++;
    }
    size_t above = 0, b = 0;
    while (b < CUT_BINS && above + hist[b] < L)
        above += hist[b++];
    if (b == CUT_BINS)
        return cand_select(c, n, L);
    int32_t s = (int32_t)(top - (int32_t)b);
    size_t ties = L - above, o = 0;
    cand worst = {0, 0};
    for (size_t i = 0; i < n; i++)
        if (c[i].score > s || (c[i].score == s && ties > 0)) {
            if (c[i].score == s) {
                ties--;
                worst = c[i];
            }
            c[o++] = c[i];
        }
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
        l->bar = cand_cut(l->c, l->n, L);
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
    /* the rows are scattered over the gallery: ask for each row's values
     * (two lines of 128-d rows, more for longer ones), scale and slot well
     * before they are scored, or every candidate waits on memory */
    const size_t ahead = 16, lines = (g->st.dim + 63) / 64;
    for (size_t i = 0; i < total; i++) {
        if (i + ahead < total) {
            uint32_t f = all[i + ahead].row;
            const int8_t *row = abis_vs_row(&g->st, f);
            for (size_t l = 0; l < lines; l++)
                __builtin_prefetch(row + 64 * l);
            __builtin_prefetch(&abis_vs_chunk_of(&g->st, f)->scale[abis_vs_off(f)]);
            __builtin_prefetch(&abis_vs_chunk_of(&g->st, f)->slot[abis_vs_off(f)]);
        }
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
abis_status vector_codes_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
                              const abis_search_opts *opts, abis_top *merged, size_t *nmerged,
                              abis_error *err)
{
    size_t live = abis_vs_live(&g->st);
    size_t L = opts->effort ? opts->effort : g->cfg.shortlist;
    if (L < capmax)
        L = capmax;
    if (L >= live) /* asked for the whole gallery: that is the exact scan */
        return vector_exact_scan(g, rq, nreq, capmax, opts->probe_f32, 0, g->st.n, merged, nmerged,
                                 err);
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
