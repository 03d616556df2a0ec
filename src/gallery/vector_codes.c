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
 * samples, more than the code scan's 2.4 %; this cut 2.8 %).  Falls back to cand_select when the
 * rows are not in order or the best L spread over more than CUT_BINS score values.  The kept
 * entries stay in row order. */
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
    int32_t *start;   /* [req]: the score a row must reach before a list is full */
    uint8_t *skip;    /* [req]: not scanned in this pass */
    int32_t *scores;  /* [part][BLOCK] */
    uint32_t *sel;    /* [part][BLOCK] */
    cand *all;        /* [req][2L * width]: each request's candidates, merged */
    size_t *nall;     /* [req]: its shortlist's length */
    size_t slices;    /* re-ranking tasks per request */
    abis_top *stop;   /* [req][slice][capmax]: each slice's top list */
    size_t *nstop;    /* [req][slice] */
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
            if (!j->sp[q].planes || j->skip[q])
                continue;
            const abis_bitset *allow = j->rq[q].allow;
            cand_list *l = &lists[q];
            size_t ns = j->kern->select(&j->sp[q], c->code + off * st->words, len,
                                        l->full ? l->bar.score : j->start[q], sel, sc);
            for (size_t u = 0; u < ns; u++) {
                size_t i = sel[u];
                if (!c->dead[off + i] && allowed(allow, c->slot[off + i]))
                    cand_push(l, j->L, (cand){sc[u], (uint32_t)(r + i)});
            }
        }
        r += len;
    }
}

/* A starting bar for a request, from a sample of the gallery: without one a
 * participant's list takes every row until it first fills and then about
 * L ln(rows / L) more as its bar rises (1M x 128, L = 4,096: 71,000 rows
 * pushed a probe, half the code scan's time).  The sample is SAMPLE_RUN
 * consecutive rows every so often, 4 n / L rows in all (at least 64 runs);
 * its allowed live rows are scored, and the score of rank r = 4 L (rows
 * sampled / n) among them (at least the 16th) is the bar: about 4 L rows of
 * the gallery reach it, so each list fills once or not at all.  Exactness
 * does not rest on the estimate: when fewer than L rows reached it, the
 * request is scanned again from INT32_MIN (vector_codes_scan). */
#define SAMPLE_RUN 64
#define SAMPLE_RANK 16
static void sample_task(void *arg, size_t q, unsigned part)
{
    (void)part;
    const codes_job *j = arg;
    const abis_vstore *st = &j->g->st;
    j->start[q] = INT32_MIN;
    if (!j->sp[q].planes)
        return;
    size_t want = 4 * st->n / j->L; /* rows to sample */
    size_t runs = (want + SAMPLE_RUN - 1) / SAMPLE_RUN;
    if (runs < 64)
        runs = 64;
    if (runs * SAMPLE_RUN * 4 > st->n) /* a sample near the gallery's size saves nothing */
        return;
    int32_t span = (int32_t)(ABIS_SIGN_TMAX * 64 * st->words); /* |score| <= span */
    uint32_t *hist = calloc(2 * (size_t)span + 1, sizeof *hist);
    if (!hist)
        return; /* no bar: slower, never wrong */
    int32_t sc[SAMPLE_RUN];
    size_t sampled = 0;
    const abis_bitset *allow = j->rq[q].allow;
    for (size_t k = 0; k < runs; k++) {
        size_t r = st->n / runs * k, len = SAMPLE_RUN;
        /* runs stay inside one chunk (ABIS_VS_CHUNK is a multiple of SAMPLE_RUN) */
        r -= abis_vs_off(r) % SAMPLE_RUN;
        if (len > st->n - r)
            len = st->n - r;
        const abis_vs_chunk *c = abis_vs_chunk_of(st, r);
        size_t off = abis_vs_off(r);
        j->kern->scan(&j->sp[q], c->code + off * st->words, len, sc);
        for (size_t i = 0; i < len; i++)
            if (!c->dead[off + i] && allowed(allow, c->slot[off + i]))
                hist[sc[i] + span]++;
        sampled += len;
    }
    size_t rank = 4 * j->L * sampled / st->n;
    if (rank < SAMPLE_RANK)
        rank = SAMPLE_RANK;
    size_t seen = 0;
    for (int32_t b = 2 * span; b >= 0; b--) {
        seen += hist[b];
        if (seen >= rank) {
            j->start[q] = b - span;
            break;
        }
    }
    free(hist);
}

/* Whether request q's lists hold at least L rows: every row at or above the
 * starting bar was offered, so its shortlist is the exact best L. */
static int reached_l(const codes_job *j, size_t q)
{
    size_t total = 0;
    for (unsigned w = 0; w < j->width; w++) {
        const cand_list *l = &j->lists[(size_t)w * j->nreq + q];
        total += l->full ? j->L : l->n;
    }
    return total >= j->L;
}

/* One request's shortlist: its participants' candidates, cut to the best L,
 * in all[q * 2 L width ..), its length in nall[q]. */
static void shortlist_task(void *arg, size_t q, unsigned part)
{
    (void)part;
    const codes_job *j = arg;
    j->nall[q] = 0;
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
    j->nall[q] = total;
}

/* Slice t % slices of request t / slices's shortlist scored exactly into
 * that slice's top list (a single probe's shortlist is re-ranked by every
 * thread, not one). */
static void rerank_task(void *arg, size_t t, unsigned part)
{
    (void)part;
    const codes_job *j = arg;
    const vgallery *g = j->g;
    size_t q = t / j->slices, sl = t % j->slices;
    const prep *p = &j->rq[q];
    abis_top *top = j->stop + t * j->capmax;
    size_t *ntop = &j->nstop[t];
    *ntop = 0;
    const cand *all = j->all + q * 2 * j->L * j->width;
    size_t from = j->nall[q] * sl / j->slices, to = j->nall[q] * (sl + 1) / j->slices;
    const abis_i8_kernel *k8 = abis_i8_best();
    /* the rows are scattered over the gallery: ask for each row's values
     * (two lines of 128-d rows, more for longer ones) and scale well before
     * they are scored, or every candidate waits on memory; the slot is read
     * only for the few that enter the top list */
    const size_t ahead = 24, lines = (g->st.dim + 63) / 64;
    for (size_t i = from; i < to; i++) {
        if (i + ahead < to) {
            uint32_t f = all[i + ahead].row;
            const int8_t *row = abis_vs_row(&g->st, f);
            for (size_t l = 0; l < lines; l++)
                __builtin_prefetch(row + 64 * l);
            __builtin_prefetch(&abis_vs_chunk_of(&g->st, f)->scale[abis_vs_off(f)]);
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
        abis_top e = {s, 0, r};
        if (*ntop == p->cap && !abis_top_before(&e, &top[*ntop - 1]))
            continue;
        abis_top_offer(top, ntop, p->cap, s, abis_vs_slot(&g->st, r), r);
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
    if (!opts->effort && L < live / ABIS_VECTOR_SHORTLIST_ROWS)
        L = live / ABIS_VECTOR_SHORTLIST_ROWS;
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
    j.slices = nreq < width ? width / nreq : 1;
    j.start = malloc(nreq * sizeof *j.start);
    j.skip = calloc(nreq, sizeof *j.skip);
    j.nall = calloc(nreq, sizeof *j.nall);
    j.stop = malloc(sizeof *j.stop * (capmax ? capmax : 1) * nreq * j.slices);
    j.nstop = calloc(nreq * j.slices, sizeof *j.nstop);
    abis_status st =
        sp && planes && mem && j.lists && j.scores && j.sel && j.nall && j.stop && j.nstop
            ? ABIS_OK
            : abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for a search");
    if (st == ABIS_OK) {
        for (size_t q = 0; q < nreq; q++)
            if (rq[q].cap)
                abis_sign_probe_set(&sp[q], rq[q].p.q, g->st.dim, planes + q * pw);
        for (size_t i = 0; i < (size_t)width * nreq; i++)
            j.lists[i].c = mem + i * 2 * L;
        j.all = mem + (size_t)width * nreq * 2 * L;
        abis_threadpool_run(pool, nreq, width, sample_task, &j);
        abis_threadpool_run(pool, n_tasks, width, codes_task, &j);
        size_t again = 0; /* requests whose bar was too high: scanned from INT32_MIN */
        for (size_t q = 0; q < nreq; q++) {
            j.skip[q] = !(sp[q].planes && j.start[q] != INT32_MIN && !reached_l(&j, q));
            if (!j.skip[q]) {
                j.start[q] = INT32_MIN;
                for (unsigned w = 0; w < width; w++)
                    j.lists[(size_t)w * nreq + q] =
                        (cand_list){.c = j.lists[(size_t)w * nreq + q].c};
                again++;
            }
        }
        if (again)
            abis_threadpool_run(pool, n_tasks, width, codes_task, &j);
        abis_threadpool_run(pool, nreq, width, shortlist_task, &j);
        abis_threadpool_run(pool, nreq * j.slices, width, rerank_task, &j);
        for (size_t q = 0; q < nreq; q++) { /* the slices' top lists into the request's */
            nmerged[q] = 0;
            for (size_t t = q * j.slices; t < (q + 1) * j.slices; t++)
                for (const abis_top *e = j.stop + t * capmax; e < j.stop + t * capmax + j.nstop[t];
                     e++)
                    abis_top_offer(merged + q * capmax, &nmerged[q], rq[q].cap, e->score, e->slot,
                                   e->row);
        }
    }
    free(sp);
    free(planes);
    free(mem);
    free(j.lists);
    free(j.scores);
    free(j.sel);
    free(j.nall);
    free(j.stop);
    free(j.nstop);
    free(j.start);
    free(j.skip);
    return st;
}
