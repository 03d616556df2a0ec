/*
 * hnsw.c: the graph pre-selection of the vector gallery (hnsw.h).
 *
 * Search (Malkov & Yashunin, algorithms 2 and 5): a greedy walk from the
 * entry point down the upper layers, then a beam search on layer 0 keeping
 * the ef best rows the filter lets through; rows it does not let through
 * (other purposes' subjects, locked, tombstoned) are walked through but never
 * returned, and the walk ends when the best unexplored candidate cannot beat
 * the ef-th result.  Scores are the exact int8 scores, so what the walk
 * returns is already exactly re-ranked.
 *
 * Insertion (algorithm 1 with the neighbour-selection heuristic, algorithm
 * 4): greedy descent to the node's level, then on each of its layers a beam
 * search with ef_construction, the heuristic choice of m (2m on layer 0)
 * diverse neighbours, and the reverse links; a full list takes the new node
 * in place of its worst link when the new node is closer (add_link).  Rows are inserted in
 * parallel: each node's link lists are read and written under one of NLOCKS striped mutexes (never
 * two held at once), the entry point under `glock`.  Levels and upper-layer storage of a batch are
 * set up before its parallel phase, so nothing is reallocated while threads work.
 *
 * Visited marks: each walk uses a 16-bit epoch per node (a mark is "epoch ==
 * current"), from a pool of such arrays, so that a walk never clears memory
 * proportional to the gallery except once every 65,535 walks.
 */
#include "gallery/hnsw.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/threadpool.h"

#define NLOCKS 4096
#define MAX_LEVEL 15
#define NONE UINT32_MAX

typedef struct hchunk {
    uint32_t *links; /* ABIS_VS_CHUNK * m0 */
    float *worst;    /* ABIS_VS_CHUNK: score of the worst layer-0 link, UNKNOWN */
    uint32_t *up;    /* ABIS_VS_CHUNK: offset in upper, NONE at level 0 */
    uint32_t *indeg; /* ABIS_VS_CHUNK: layer-0 links pointing at the node (atomic) */
    uint8_t *level;  /* ABIS_VS_CHUNK */
} hchunk;

/* Below every score: "the worst link's score is not known". */
#define UNKNOWN (-1e30f)

/* Per-walk scratch: visited marks, the two heaps, a probe buffer. */
typedef struct scratch {
    uint16_t *mark;
    size_t mark_cap;
    uint16_t epoch;
    abis_top *cand, *res;
    size_t cand_cap, res_cap;
    void *probe_buf;
    uint32_t *nbuf; /* a copy of one link list */
    abis_top *sel;  /* heuristic candidates */
    struct scratch *next;
} scratch;

struct abis_hnsw {
    const abis_vstore *st;
    const abis_i8_kernel *kern;
    unsigned m, m0, efc;
    uint64_t seed;
    double ml; /* level multiplier 1 / ln m */
    hchunk *chunk;
    size_t n_chunks, cap_chunks;
    size_t indexed;
    uint32_t *upper;
    size_t n_upper, cap_upper;
    uint32_t entry;
    int max_level;
    pthread_mutex_t glock;
    pthread_mutex_t smu; /* the scratch pool */
    scratch *free_scratch;
    size_t scratch_bytes;
    pthread_mutex_t omu; /* the orphans */
    uint32_t *orphan;    /* nodes whose last layer-0 in-link was replaced */
    size_t n_orphan, cap_orphan;
    pthread_mutex_t locks[NLOCKS];
};

/* ---- storage ---------------------------------------------------------------------------- */

static hchunk *chunk_of(const abis_hnsw *h, size_t r)
{
    return &h->chunk[r >> ABIS_VS_CHUNK_SHIFT];
}

static uint32_t *links0(const abis_hnsw *h, size_t r)
{
    return chunk_of(h, r)->links + abis_vs_off(r) * h->m0;
}

static uint8_t level_of(const abis_hnsw *h, size_t r)
{
    return chunk_of(h, r)->level[abis_vs_off(r)];
}

/* Node r's link list on layer lev and its capacity. */
static uint32_t *links_at(const abis_hnsw *h, size_t r, int lev, size_t *cap)
{
    if (lev == 0) {
        *cap = h->m0;
        return links0(h, r);
    }
    *cap = h->m;
    return h->upper + chunk_of(h, r)->up[abis_vs_off(r)] + (size_t)(lev - 1) * h->m;
}

static size_t count_links(const uint32_t *l, size_t cap)
{
    size_t n = 0;
    while (n < cap && l[n] != NONE)
        n++;
    return n;
}

/* Make room for nodes below n (chunks of links, levels, offsets). */
static int reserve_nodes(abis_hnsw *h, size_t n)
{
    size_t need = (n + ABIS_VS_CHUNK - 1) / ABIS_VS_CHUNK;
    if (need > h->cap_chunks) {
        size_t cap = h->cap_chunks ? h->cap_chunks : 8;
        while (cap < need)
            cap *= 2;
        hchunk *nc = realloc(h->chunk, cap * sizeof *nc);
        if (!nc)
            return -1;
        h->chunk = nc;
        h->cap_chunks = cap;
    }
    while (h->n_chunks < need) {
        hchunk *c = &h->chunk[h->n_chunks];
        size_t lb = ABIS_VS_CHUNK * h->m0 * sizeof(uint32_t);
        unsigned char *mem =
            malloc(lb + ABIS_VS_CHUNK * (sizeof(float) + 2 * sizeof(uint32_t) + 1));
        if (!mem)
            return -1;
        c->links = (uint32_t *)mem;
        c->worst = (float *)(mem + lb);
        c->up = (uint32_t *)(mem + lb + ABIS_VS_CHUNK * sizeof(float));
        c->indeg = (uint32_t *)(mem + lb + ABIS_VS_CHUNK * (sizeof(float) + sizeof(uint32_t)));
        c->level = mem + lb + ABIS_VS_CHUNK * (sizeof(float) + 2 * sizeof(uint32_t));
        h->n_chunks++;
    }
    return 0;
}

static int reserve_upper(abis_hnsw *h, size_t n)
{
    if (n <= h->cap_upper)
        return 0;
    size_t cap = h->cap_upper ? h->cap_upper : 1024;
    while (cap < n)
        cap *= 2;
    uint32_t *nu = realloc(h->upper, cap * sizeof *nu);
    if (!nu)
        return -1;
    h->upper = nu;
    h->cap_upper = cap;
    return 0;
}

/* ---- scratch ---------------------------------------------------------------------------- */

static void scratch_free(scratch *s)
{
    if (!s)
        return;
    free(s->mark);
    free(s->cand);
    free(s->res);
    free(s->probe_buf);
    free(s->nbuf);
    free(s->sel);
    free(s);
}

/* A scratch with marks for n nodes and heaps for ef entries, or NULL. */
static scratch *scratch_get(abis_hnsw *h, size_t n, size_t ef)
{
    pthread_mutex_lock(&h->smu);
    scratch *s = h->free_scratch;
    if (s)
        h->free_scratch = s->next;
    pthread_mutex_unlock(&h->smu);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        s->probe_buf = aligned_alloc(64, abis_i8_probe_bytes(h->st->dim));
        s->nbuf = malloc(sizeof *s->nbuf * h->m0);
        s->sel = malloc(sizeof *s->sel * (h->m0 + 1));
        if (!s->probe_buf || !s->nbuf || !s->sel) {
            scratch_free(s);
            return NULL;
        }
    }
    if (s->mark_cap < n) {
        size_t cap = n + n / 4 + 1024;
        uint16_t *m = calloc(cap, sizeof *m);
        if (!m)
            goto fail;
        free(s->mark);
        s->mark = m;
        s->mark_cap = cap;
        s->epoch = 0;
    }
    /* the candidate heap holds at most every node visited: grown on demand */
    if (s->res_cap < ef + 1) {
        abis_top *r = realloc(s->res, sizeof *r * (ef + 1));
        if (!r)
            goto fail;
        s->res = r;
        s->res_cap = ef + 1;
    }
    if (++s->epoch == 0) {
        memset(s->mark, 0, s->mark_cap * sizeof *s->mark);
        s->epoch = 1;
    }
    return s;
fail:
    scratch_free(s);
    return NULL;
}

static void scratch_put(abis_hnsw *h, scratch *s)
{
    pthread_mutex_lock(&h->smu);
    s->next = h->free_scratch;
    h->free_scratch = s;
    pthread_mutex_unlock(&h->smu);
}

/* ---- scores ------------------------------------------------------------------------------- */

static float score_probe(const abis_hnsw *h, const abis_i8_probe *p, uint32_t r)
{
    int32_t d;
    h->kern->scan(p, abis_vs_row(h->st, r), 0, NULL, 1, &d);
    return abis_i8_score(d, p->scale, abis_vs_scale(h->st, r));
}

static float score_rows(const abis_hnsw *h, uint32_t a, uint32_t b)
{
    int32_t d = h->kern->dot(abis_vs_row(h->st, a), abis_vs_row(h->st, b), h->st->dim);
    return abis_i8_score(d, abis_vs_scale(h->st, a), abis_vs_scale(h->st, b));
}

/* ---- in-links ---------------------------------------------------------------------------- */

/* Every node but the entry point must have a layer-0 link pointing at it, or
 * no walk reaches it.  Insertion can leave one without: its reverse links
 * find no room in full lists of closer neighbours, or later insertions
 * replace the last link to it (add_link).  Each node counts its layer-0
 * in-links; a node whose count falls to zero is remembered, and after each
 * parallel batch a serial pass (rescue) links every such node again. */
static uint32_t *indeg_at(const abis_hnsw *h, uint32_t r)
{
    return &chunk_of(h, r)->indeg[abis_vs_off(r)];
}

static void indeg_up(const abis_hnsw *h, uint32_t r)
{
    __atomic_fetch_add(indeg_at(h, r), 1, __ATOMIC_RELAXED);
}

/* One in-link fewer; a node left with none is remembered (best effort: a
 * node not remembered for want of memory is found by the next recount). */
static void indeg_down(abis_hnsw *h, uint32_t r)
{
    if (__atomic_sub_fetch(indeg_at(h, r), 1, __ATOMIC_RELAXED) != 0)
        return;
    pthread_mutex_lock(&h->omu);
    if (h->n_orphan == h->cap_orphan) {
        size_t cap = h->cap_orphan ? 2 * h->cap_orphan : 64;
        uint32_t *o = realloc(h->orphan, cap * sizeof *o);
        if (o) {
            h->orphan = o;
            h->cap_orphan = cap;
        }
    }
    if (h->n_orphan < h->cap_orphan)
        h->orphan[h->n_orphan++] = r;
    pthread_mutex_unlock(&h->omu);
}

/* Count every node's layer-0 in-links from the lists (after compaction or
 * loading). */
static void indeg_recount(abis_hnsw *h)
{
    for (size_t r = 0; r < h->indexed; r++)
        *indeg_at(h, (uint32_t)r) = 0;
    for (size_t r = 0; r < h->indexed; r++) {
        const uint32_t *l = links0(h, r);
        for (size_t i = 0; i < h->m0 && l[i] != NONE; i++)
            if (l[i] < h->indexed)
                (*indeg_at(h, l[i]))++;
    }
}

/* Link node o, if it has no in-link, from the first of its own neighbours
 * (closest first, as insertion chose them) that has room, or that can give
 * up the link to its farthest neighbour among those that have another
 * in-link (so no node is orphaned in turn).  Serial: no insertion runs. */
static void rescue(abis_hnsw *h, uint32_t o)
{
    if (o == h->entry || *indeg_at(h, o) > 0 || abis_vs_dead(h->st, o))
        return;
    const uint32_t *lo = links0(h, o);
    for (size_t i = 0; i < h->m0 && lo[i] != NONE; i++) {
        uint32_t nb = lo[i];
        pthread_mutex_t *mu = &h->locks[nb & (NLOCKS - 1)]; /* searches may be reading */
        pthread_mutex_lock(mu);
        uint32_t *l = links0(h, nb);
        size_t n = count_links(l, h->m0), wi = n;
        if (n == h->m0) {
            float ws = 3; /* above every score */
            for (size_t k = 0; k < n; k++) {
                if (*indeg_at(h, l[k]) < 2)
                    continue;
                float sc = score_rows(h, nb, l[k]);
                if (sc < ws) {
                    ws = sc;
                    wi = k;
                }
            }
            if (wi == n) { /* every link is someone's last */
                pthread_mutex_unlock(mu);
                continue;
            }
            (*indeg_at(h, l[wi]))--;
        }
        l[wi] = o;
        indeg_up(h, o);
        chunk_of(h, nb)->worst[abis_vs_off(nb)] = UNKNOWN; /* add_link recomputes it */
        pthread_mutex_unlock(mu);
        return;
    }
}

/* Rescue rows [from, to) and every remembered orphan. */
static void rescue_all(abis_hnsw *h, size_t from, size_t to)
{
    for (size_t r = from; r < to; r++)
        rescue(h, (uint32_t)r);
    for (size_t i = 0; i < h->n_orphan; i++)
        if (h->orphan[i] < h->indexed)
            rescue(h, h->orphan[i]);
    h->n_orphan = 0;
}

/* ---- heaps ordered by abis_top_before ---------------------------------------------------- */

/* Candidates: the best at the top. */
static void cand_push(abis_top *a, size_t *n, abis_top e)
{
    size_t i = (*n)++;
    while (i > 0 && abis_top_before(&e, &a[(i - 1) / 2])) {
        a[i] = a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a[i] = e;
}

static abis_top cand_pop(abis_top *a, size_t *n)
{
    abis_top top = a[0], e = a[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && abis_top_before(&a[c + 1], &a[c]))
            c++;
        if (!abis_top_before(&a[c], &e))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = e;
    return top;
}

/* Results: the worst at the top. */
static void res_push(abis_top *a, size_t *n, abis_top e)
{
    size_t i = (*n)++;
    while (i > 0 && abis_top_before(&a[(i - 1) / 2], &e)) {
        a[i] = a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a[i] = e;
}

static void res_pop(abis_top *a, size_t *n)
{
    abis_top e = a[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && abis_top_before(&a[c], &a[c + 1]))
            c++;
        if (!abis_top_before(&e, &a[c]))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = e;
}

/* ---- walks ---------------------------------------------------------------------------------- */

/* Copy node r's links on layer lev into buf (under its lock when building);
 * returns how many. */
static size_t read_links(abis_hnsw *h, uint32_t r, int lev, int locked, uint32_t *buf)
{
    size_t cap;
    pthread_mutex_t *mu = &h->locks[r & (NLOCKS - 1)];
    if (locked)
        pthread_mutex_lock(mu);
    const uint32_t *l = links_at(h, r, lev, &cap);
    size_t n = count_links(l, cap);
    memcpy(buf, l, n * sizeof *buf);
    if (locked)
        pthread_mutex_unlock(mu);
    return n;
}

/* Greedy descent from *cur on layers from..to+1. */
static void greedy(abis_hnsw *h, scratch *s, const abis_i8_probe *p, abis_top *cur, int from,
                   int to, int locked)
{
    for (int lev = from; lev > to; lev--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            size_t n = read_links(h, cur->row, lev, locked, s->nbuf);
            for (size_t i = 0; i < n; i++) {
                abis_top e = {score_probe(h, p, s->nbuf[i]), 0, s->nbuf[i]};
                if (abis_top_before(&e, cur)) {
                    *cur = e;
                    changed = 1;
                }
            }
        }
    }
}

/* Beam search on layer lev from ep: the ef best kept rows into s->res
 * (*nres, a heap with the worst on top).  -1 on OOM. */
static int search_layer(abis_hnsw *h, scratch *s, const abis_i8_probe *p, abis_top ep, size_t ef,
                        int lev, abis_hnsw_keep_fn keep, const void *ctx, int locked, size_t *nres)
{
    size_t nc = 0, nr = 0;
    if (s->cand_cap < 64) {
        abis_top *c = realloc(s->cand, sizeof *c * 64);
        if (!c)
            return -1;
        s->cand = c;
        s->cand_cap = 64;
    }
    s->mark[ep.row] = s->epoch;
    cand_push(s->cand, &nc, ep);
    if (!keep || keep(ctx, ep.row))
        res_push(s->res, &nr, ep);
    while (nc) {
        abis_top c = s->cand[0];
        if (nr == ef && abis_top_before(&s->res[0], &c))
            break; /* nothing left can enter the results */
        cand_pop(s->cand, &nc);
        size_t n = read_links(h, c.row, lev, locked, s->nbuf);
        for (size_t i = 0; i < n; i++)
            __builtin_prefetch(abis_vs_row(h->st, s->nbuf[i]));
        for (size_t i = 0; i < n; i++) {
            uint32_t v = s->nbuf[i];
            if (s->mark[v] == s->epoch)
                continue;
            s->mark[v] = s->epoch;
            abis_top e = {score_probe(h, p, v), 0, v};
            if (nr == ef && !abis_top_before(&e, &s->res[0]))
                continue;
            if (nc == s->cand_cap) {
                abis_top *g = realloc(s->cand, sizeof *g * s->cand_cap * 2);
                if (!g)
                    return -1;
                s->cand = g;
                s->cand_cap *= 2;
            }
            cand_push(s->cand, &nc, e);
            if (!keep || keep(ctx, v)) {
                res_push(s->res, &nr, e);
                if (nr > ef)
                    res_pop(s->res, &nr);
            }
        }
    }
    *nres = nr;
    return 0;
}

/* Empty the result heap into out, best first. */
static size_t drain(abis_top *res, size_t nr, abis_top *out)
{
    size_t n = nr;
    while (nr) {
        out[nr - 1] = res[0];
        res_pop(res, &nr);
    }
    return n;
}

long abis_hnsw_search(const abis_hnsw *hc, const abis_i8_probe *p, size_t ef,
                      abis_hnsw_keep_fn keep, const void *ctx, abis_top *out)
{
    abis_hnsw *h = (abis_hnsw *)hc; /* the scratch pool is the only shared state touched */
    if (h->entry == NONE || ef == 0)
        return 0;
    scratch *s = scratch_get(h, h->indexed, ef);
    if (!s)
        return -1;
    abis_top cur = {score_probe(h, p, h->entry), 0, h->entry};
    greedy(h, s, p, &cur, h->max_level, 0, 0);
    size_t nr = 0;
    long n = -1;
    if (search_layer(h, s, p, cur, ef, 0, keep, ctx, 0, &nr) == 0)
        n = (long)drain(s->res, nr, out);
    for (long i = 0; i < n; i++)
        out[i].slot = abis_vs_slot(h->st, out[i].row);
    scratch_put(h, s);
    return n;
}

/* ---- insertion ------------------------------------------------------------------------------ */

static int keep_live(const void *ctx, uint32_t row)
{
    return !abis_vs_dead(ctx, row);
}

/* The heuristic: from candidates sorted best first (scores against x), keep
 * each one that is closer to x than to every one kept so far, up to max. */
static size_t select_neighbours(abis_hnsw *h, const abis_top *c, size_t nc, size_t max,
                                abis_top *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nc && n < max; i++) {
        int good = 1;
        for (size_t j = 0; j < n && good; j++)
            if (score_rows(h, c[i].row, out[j].row) > c[i].score)
                good = 0;
        if (good)
            out[n++] = c[i];
    }
    return n;
}

/* Add link x, whose score with r is sx, to node r on layer lev (r's lock
 * held): append, or when the list is full replace its worst link if x is
 * closer to r.  On layer 0 the worst link's score is remembered, so the
 * common case -- x no closer than r's worst link -- costs no arithmetic.
 * (Re-choosing a full list by the selection heuristic, as insertion does for
 * a new node, costs some 500 pair scores and halved the build speed for no
 * measurable recall on embedding-like data: docs/search.md.) */
static void add_link(abis_hnsw *h, uint32_t r, uint32_t x, float sx, int lev)
{
    size_t cap;
    uint32_t *l = links_at(h, r, lev, &cap);
    float *worst = lev == 0 ? &chunk_of(h, r)->worst[abis_vs_off(r)] : NULL;
    size_t n = count_links(l, cap);
    if (n == cap && worst && *worst != UNKNOWN && sx <= *worst)
        return;
    for (size_t i = 0; i < n; i++)
        if (l[i] == x)
            return;
    if (n < cap) {
        l[n] = x;
        if (lev == 0)
            indeg_up(h, x);
        if (worst && *worst != UNKNOWN && (n == 0 || sx < *worst))
            *worst = sx;
        if (worst && n == 0)
            *worst = sx;
        return;
    }
    size_t wi = 0;
    float m1 = 3, m2 = 3; /* the lowest and second lowest link scores (scores <= ~1) */
    for (size_t i = 0; i < n; i++) {
        float sc = score_rows(h, r, l[i]);
        if (sc < m1) {
            m2 = m1;
            m1 = sc;
            wi = i;
        } else if (sc < m2) {
            m2 = sc;
        }
    }
    float ws = m1;
    if (sx > m1) {
        uint32_t old = l[wi];
        l[wi] = x;
        ws = m2 < sx ? m2 : sx;
        if (lev == 0) {
            indeg_up(h, x);
            indeg_down(h, old);
        }
    }
    if (worst)
        *worst = ws;
}

/* Link node x (its level and storage set) into layers min(level, top)..0
 * starting from the entry point ep on layer `top`.  Returns -1 on OOM. */
static int link_node(abis_hnsw *h, scratch *s, uint32_t x, uint32_t ep, int top)
{
    abis_i8_probe p;
    abis_i8_probe_set(&p, abis_vs_row(h->st, x), h->st->dim, abis_vs_scale(h->st, x), s->probe_buf);
    int L = level_of(h, x);
    abis_top cur = {score_probe(h, &p, ep), 0, ep};
    greedy(h, s, &p, &cur, top, L < top ? L : top, 1);
    abis_top *found = malloc(sizeof *found * (h->efc + 1));
    abis_top *sel = malloc(sizeof *sel * h->m0);
    if (!found || !sel) {
        free(found);
        free(sel);
        return -1;
    }
    int rc = 0;
    for (int lev = L < top ? L : top; lev >= 0 && rc == 0; lev--) {
        size_t nr = 0;
        if (++s->epoch == 0) {
            memset(s->mark, 0, s->mark_cap * sizeof *s->mark);
            s->epoch = 1;
        }
        s->mark[x] = s->epoch; /* never link to itself */
        rc = search_layer(h, s, &p, cur, h->efc, lev, keep_live, h->st, 1, &nr);
        if (rc != 0 || nr == 0)
            break;
        size_t nf = drain(s->res, nr, found), k = 0;
        for (size_t i = 0; i < nf; i++) /* a repaired node may be the entry point */
            if (found[i].row != x)
                found[k++] = found[i];
        nf = k;
        if (nf == 0)
            break;
        size_t cap = lev ? h->m : h->m0;
        size_t ns = select_neighbours(h, found, nf, cap, sel);
        pthread_mutex_t *mx = &h->locks[x & (NLOCKS - 1)];
        pthread_mutex_lock(mx);
        size_t lcap;
        uint32_t *lx = links_at(h, x, lev, &lcap);
        for (size_t i = 0; i < lcap; i++) {
            if (lev == 0 && lx[i] != NONE) /* a node linked again: its old links go */
                indeg_down(h, lx[i]);
            lx[i] = i < ns ? sel[i].row : NONE;
            if (lev == 0 && i < ns)
                indeg_up(h, sel[i].row);
        }
        if (lev == 0) /* sel is best first */
            chunk_of(h, x)->worst[abis_vs_off(x)] = ns ? sel[ns - 1].score : UNKNOWN;
        pthread_mutex_unlock(mx);
        for (size_t i = 0; i < ns; i++) {
            pthread_mutex_t *mr = &h->locks[sel[i].row & (NLOCKS - 1)];
            pthread_mutex_lock(mr);
            add_link(h, sel[i].row, x, sel[i].score, lev);
            pthread_mutex_unlock(mr);
        }
        cur = found[0];
    }
    free(found);
    free(sel);
    return rc;
}

typedef struct extend_job {
    abis_hnsw *h;
    size_t first;         /* task t is row first + t ... */
    const uint32_t *list; /* ... or row list[t] */
    scratch **sc;         /* per participant */
    int failed;           /* written under glock */
} extend_job;

static uint32_t task_row(const extend_job *j, size_t t)
{
    return j->list ? j->list[t] : (uint32_t)(j->first + t);
}

static void insert_task(void *arg, size_t t, unsigned part)
{
    extend_job *j = arg;
    abis_hnsw *h = j->h;
    uint32_t x = task_row(j, t);
    int L = level_of(h, x);
    pthread_mutex_lock(&h->glock);
    uint32_t ep = h->entry;
    int top = h->max_level;
    int raise = L > top; /* a new top layer: keep the entry point ours until linked */
    if (!raise)
        pthread_mutex_unlock(&h->glock);
    scratch *s = j->sc[part];
    if (++s->epoch == 0) {
        memset(s->mark, 0, s->mark_cap * sizeof *s->mark);
        s->epoch = 1;
    }
    int rc = link_node(h, s, x, ep, top);
    if (raise) {
        h->entry = x;
        h->max_level = L;
    } else {
        pthread_mutex_lock(&h->glock);
    }
    if (rc != 0)
        j->failed = 1;
    pthread_mutex_unlock(&h->glock);
}

/* A level for row r: floor(-ln(u) / ln m), u uniform from a hash of r. */
static int draw_level(const abis_hnsw *h, size_t r)
{
    uint64_t z = h->seed + (uint64_t)r * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    int l = (int)floor(-log(u) * h->ml);
    return l > MAX_LEVEL ? MAX_LEVEL : l;
}

/* Run fn over rows [first, first + count), or list[0..count), with
 * per-participant scratch. */
static int run_parallel(abis_hnsw *h, size_t first, const uint32_t *list, size_t count,
                        unsigned threads, abis_task_fn fn)
{
    abis_threadpool *pool = abis_threadpool_shared();
    unsigned width = abis_threadpool_width(pool, count, threads);
    extend_job j = {h, first, list, calloc(width, sizeof(scratch *)), 0};
    if (!j.sc)
        return -1;
    int rc = 0;
    for (unsigned i = 0; i < width && rc == 0; i++)
        if (!(j.sc[i] = scratch_get(h, h->st->n, h->efc)))
            rc = -1;
    if (rc == 0 && count)
        abis_threadpool_run(pool, count, width, fn, &j);
    for (unsigned i = 0; i < width; i++)
        if (j.sc[i])
            scratch_put(h, j.sc[i]);
    free(j.sc);
    return rc == 0 && !j.failed ? 0 : -1;
}

int abis_hnsw_extend(abis_hnsw *h, size_t count, unsigned threads)
{
    size_t n0 = h->indexed, n1 = n0 + count;
    if (count == 0)
        return 0;
    if (reserve_nodes(h, n1) != 0)
        return -1;
    size_t need = h->n_upper;
    for (size_t r = n0; r < n1; r++)
        need += (size_t)draw_level(h, r) * h->m;
    if (reserve_upper(h, need) != 0)
        return -1;
    for (size_t r = n0; r < n1; r++) {
        hchunk *c = chunk_of(h, r);
        size_t o = abis_vs_off(r);
        int L = draw_level(h, r);
        c->level[o] = (uint8_t)L;
        c->up[o] = L ? (uint32_t)h->n_upper : NONE;
        for (size_t i = 0; i < (size_t)L * h->m; i++)
            h->upper[h->n_upper + i] = NONE;
        h->n_upper += (size_t)L * h->m;
        uint32_t *l = links0(h, r);
        for (size_t i = 0; i < h->m0; i++)
            l[i] = NONE;
        c->worst[o] = UNKNOWN;
        c->indeg[o] = 0;
    }
    size_t first = n0;
    if (h->entry == NONE) { /* the first node is the entry point */
        h->entry = (uint32_t)n0;
        h->max_level = level_of(h, n0);
        n0++;
    }
    int rc = run_parallel(h, n0, NULL, n1 - n0, threads, insert_task);
    h->indexed = n1; /* on failure some rows have fewer links: still searchable */
    rescue_all(h, first, n1);
    return rc;
}

/* ---- compaction ------------------------------------------------------------------------------ */

/* Re-link a node that compaction left with too few links: link_node again
 * from the entry point, as if it were new (its lists are re-chosen). */
static void repair_task(void *arg, size_t t, unsigned part)
{
    extend_job *j = arg;
    abis_hnsw *h = j->h;
    scratch *s = j->sc[part];
    if (++s->epoch == 0) {
        memset(s->mark, 0, s->mark_cap * sizeof *s->mark);
        s->epoch = 1;
    }
    int rc = link_node(h, s, task_row(j, t), h->entry, h->max_level);
    if (rc != 0) {
        pthread_mutex_lock(&h->glock);
        j->failed = 1;
        pthread_mutex_unlock(&h->glock);
    }
}

/* Filter a link list through remap in place; returns how many are left. */
static size_t remap_list(uint32_t *l, size_t cap, const uint32_t *remap)
{
    size_t k = 0;
    for (size_t i = 0; i < cap && l[i] != NONE; i++)
        if (remap[l[i]] != NONE)
            l[k++] = remap[l[i]];
    for (size_t i = k; i < cap; i++)
        l[i] = NONE;
    return k;
}

void abis_hnsw_remap(abis_hnsw *h, const uint32_t *remap, size_t n_old, unsigned threads)
{
    size_t old_indexed = h->indexed < n_old ? h->indexed : n_old, w = 0;
    for (size_t r = 0; r < old_indexed; r++) {
        uint32_t nr = remap[r];
        if (nr == NONE) { /* its upper links are abandoned: clear them */
            uint8_t L = level_of(h, r);
            uint32_t up = chunk_of(h, r)->up[abis_vs_off(r)];
            for (size_t i = 0; L && i < (size_t)L * h->m; i++)
                h->upper[up + i] = NONE;
            continue;
        }
        /* nr <= r, and old row nr was moved already: rows go in order */
        hchunk *cf = chunk_of(h, r), *ct = chunk_of(h, nr);
        uint8_t L = cf->level[abis_vs_off(r)];
        uint32_t up = cf->up[abis_vs_off(r)];
        uint32_t *from = links0(h, r), *to = links0(h, nr);
        size_t k = 0;
        for (size_t i = 0; i < h->m0 && from[i] != NONE; i++)
            if (remap[from[i]] != NONE)
                to[k++] = remap[from[i]];
        for (size_t i = k; i < h->m0; i++)
            to[i] = NONE;
        ct->level[abis_vs_off(nr)] = L;
        ct->up[abis_vs_off(nr)] = up;
        ct->worst[abis_vs_off(nr)] = UNKNOWN;
        for (int lev = 1; lev <= L; lev++)
            remap_list(h->upper + up + (size_t)(lev - 1) * h->m, h->m, remap);
        w++;
    }
    h->indexed = w;
    if (h->entry != NONE && h->entry < n_old && remap[h->entry] != NONE) {
        h->entry = remap[h->entry];
    } else {
        h->entry = NONE;
        h->max_level = 0;
        for (size_t r = 0; r < w; r++)
            if (h->entry == NONE || level_of(h, r) > h->max_level) {
                h->entry = (uint32_t)r;
                h->max_level = level_of(h, r);
            }
    }
    size_t keep = (w + ABIS_VS_CHUNK - 1) / ABIS_VS_CHUNK;
    for (size_t i = keep; i < h->n_chunks; i++)
        free(h->chunk[i].links);
    if (keep < h->n_chunks)
        h->n_chunks = keep;
    indeg_recount(h);
    h->n_orphan = 0;
    /* nodes left with fewer than half their layer-0 links are linked again */
    uint32_t *weak = malloc(sizeof *weak * (w ? w : 1));
    if (!weak) {
        rescue_all(h, 0, w);
        return;
    }
    size_t nw = 0;
    for (size_t r = 0; r < w; r++)
        if (count_links(links0(h, r), h->m0) < h->m0 / 2 && (uint32_t)r != h->entry)
            weak[nw++] = (uint32_t)r;
    if (nw && h->entry != NONE)
        run_parallel(h, 0, weak, nw, threads, repair_task); /* best effort */
    free(weak);
    rescue_all(h, 0, w);
}

/* ---- creation, size, persistence ---------------------------------------------------------- */

abis_hnsw *abis_hnsw_create(const abis_vstore *st, const abis_hnsw_params *p)
{
    abis_hnsw *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->st = st;
    h->kern = abis_i8_best();
    h->m = p->m < 2 ? 2 : p->m;
    h->m0 = 2 * h->m;
    h->efc = p->ef_construction < h->m0 ? h->m0 : p->ef_construction;
    h->seed = p->seed;
    h->ml = 1.0 / log((double)h->m);
    h->entry = NONE;
    pthread_mutex_init(&h->glock, NULL);
    pthread_mutex_init(&h->smu, NULL);
    pthread_mutex_init(&h->omu, NULL);
    for (size_t i = 0; i < NLOCKS; i++)
        pthread_mutex_init(&h->locks[i], NULL);
    return h;
}

void abis_hnsw_free(abis_hnsw *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_chunks; i++)
        free(h->chunk[i].links);
    free(h->chunk);
    free(h->upper);
    while (h->free_scratch) {
        scratch *s = h->free_scratch;
        h->free_scratch = s->next;
        scratch_free(s);
    }
    free(h->orphan);
    pthread_mutex_destroy(&h->glock);
    pthread_mutex_destroy(&h->smu);
    pthread_mutex_destroy(&h->omu);
    for (size_t i = 0; i < NLOCKS; i++)
        pthread_mutex_destroy(&h->locks[i]);
    free(h);
}

size_t abis_hnsw_indexed(const abis_hnsw *h)
{
    return h->indexed;
}

size_t abis_hnsw_bytes(const abis_hnsw *h)
{
    size_t b = h->n_chunks * ABIS_VS_CHUNK *
                   (h->m0 * sizeof(uint32_t) + sizeof(float) + 2 * sizeof(uint32_t) + 1) +
               h->cap_upper * sizeof(uint32_t);
    abis_hnsw *hm = (abis_hnsw *)h;
    pthread_mutex_lock(&hm->smu);
    for (const scratch *s = h->free_scratch; s; s = s->next)
        b += s->mark_cap * sizeof *s->mark + (s->cand_cap + s->res_cap) * sizeof(abis_top);
    pthread_mutex_unlock(&hm->smu);
    return b;
}

void abis_hnsw_view_get(const abis_hnsw *h, abis_hnsw_view *v)
{
    v->m = h->m;
    v->indexed = h->indexed;
    v->entry = h->entry;
    v->max_level = h->max_level;
    v->upper = h->upper;
    v->n_upper = h->n_upper;
}

const uint32_t *abis_hnsw_links0(const abis_hnsw *h, size_t r)
{
    return links0(h, r);
}

uint8_t abis_hnsw_level(const abis_hnsw *h, size_t r)
{
    return level_of(h, r);
}

uint32_t abis_hnsw_up(const abis_hnsw *h, size_t r)
{
    return chunk_of(h, r)->up[abis_vs_off(r)];
}

/* Empty the graph (keeping its allocations). */
static void reset(abis_hnsw *h)
{
    h->indexed = 0;
    h->n_upper = 0;
    h->entry = NONE;
    h->max_level = 0;
}

int abis_hnsw_load(abis_hnsw *h, size_t indexed, uint32_t entry, int max_level,
                   const uint32_t *upper, size_t n_upper, abis_hnsw_node_fn node, void *ctx)
{
    reset(h);
    if (indexed > h->st->n || (indexed && entry >= indexed) || (!indexed && entry != NONE) ||
        max_level < 0 || max_level > MAX_LEVEL || reserve_nodes(h, indexed) != 0 ||
        reserve_upper(h, n_upper) != 0)
        return -1;
    for (size_t i = 0; i < n_upper; i++)
        if (upper[i] != NONE && upper[i] >= indexed)
            return -1;
    memcpy(h->upper, upper, n_upper * sizeof *upper);
    for (size_t r = 0; r < indexed; r++) {
        hchunk *c = chunk_of(h, r);
        size_t o = abis_vs_off(r);
        uint32_t *l = links0(h, r);
        c->worst[o] = UNKNOWN;
        if (node(ctx, r, l, &c->level[o], &c->up[o]) != 0)
            goto bad;
        for (size_t i = 0; i < h->m0; i++)
            if (l[i] != NONE && l[i] >= indexed)
                goto bad;
        uint8_t L = c->level[o];
        if (L > max_level || (L > 0 && (c->up[o] == NONE || c->up[o] > n_upper ||
                                        (size_t)L * h->m > n_upper - c->up[o])))
            goto bad;
    }
    if (indexed && level_of(h, entry) != max_level)
        goto bad;
    h->n_upper = n_upper;
    h->indexed = indexed;
    h->entry = indexed ? entry : NONE;
    h->max_level = max_level;
    indeg_recount(h);
    h->n_orphan = 0;
    rescue_all(h, 0, indexed);
    return 0;
bad:
    reset(h);
    return -1;
}
