/* vector_exact.c: the vector gallery's exact scan (single requests and
 * batches), see gallery_vector.c for the scheme and docs/search.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gallery/vector_internal.h"
#include "util/threadpool.h"

typedef struct exact_job {
    const vgallery *g;
    const abis_i8_kernel *kern;
    const prep *rq;
    const abis_i8_probe *probes; /* rq[i].p, packed for the batch kernel */
    size_t nreq, capmax;
    int f32;
    size_t begin, end;
    /* per participant */
    abis_top *tops;  /* [part][req][capmax] */
    size_t *ntop;    /* [part][req] */
    int32_t *iscore; /* [part][req][BLOCK] */
    float *fscore;   /* [part][BLOCK] */
    uint32_t *idx;   /* [part][BLOCK] */
    uint32_t *sel;   /* [part][BLOCK]: rows whose score can enter a top list */
} exact_job;

/* The score a row must reach to enter a top list (-inf while not full). */
static float entry_bar(const abis_top *top, size_t n, size_t cap)
{
    return n == cap ? top[cap - 1].score : -INFINITY;
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
                size_t ns =
                    j->kern->above(is, sc, m, p->p.scale, entry_bar(top, ntop[q], p->cap), sel);
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

/* See vector_internal.h. */
abis_status vector_exact_scan(const vgallery *g, const prep *rq, size_t nreq, size_t capmax,
                              int f32, size_t begin, size_t end, abis_top *merged, size_t *nmerged,
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
