/*
 * topk.h: the top-k distinct subjects of a search, shared by the galleries.
 *
 * Candidates are (score, subject slot, row) and are ordered by score
 * (higher first), then row (lower first): a total order, so results do not
 * depend on the order rows are offered in (threads, blocks, graph walks) and
 * ties go to the template added first.  A list keeps, best first, at most
 * `cap` entries with distinct slots, each slot's best row.  Offering a row:
 * when the list is full and the row does not beat the last entry it is
 * dropped at once (the common case); otherwise the list is searched for its
 * slot (O(cap)) and the entry is raised, or a new entry is inserted and the
 * last one evicted.  An evicted slot had its best row behind the last entry
 * at that moment, and the last entry only ever improves, so a row of that
 * slot that enters later is better than every row of it seen before: the
 * list always holds each of its slots' best row.
 */
#ifndef ABIS_GALLERY_TOPK_H
#define ABIS_GALLERY_TOPK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "gallery/gallery.h"

typedef struct abis_top {
    float score;
    uint32_t slot;
    uint32_t row;
} abis_top;

/* a ranks before b */
static inline int abis_top_before(const abis_top *a, const abis_top *b)
{
    return a->score > b->score || (a->score == b->score && a->row < b->row);
}

static inline void abis_top_raise(abis_top *top, size_t i)
{
    abis_top e = top[i];
    while (i > 0 && abis_top_before(&e, &top[i - 1])) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = e;
}

/* Offer a row to the list top[0..*n) of capacity cap (>= 1). */
static inline void abis_top_offer(abis_top *top, size_t *n, size_t cap, float score, uint32_t slot,
                                  uint32_t row)
{
    abis_top e = {score, slot, row};
    if (*n == cap && !abis_top_before(&e, &top[*n - 1]))
        return;
    size_t j = 0;
    while (j < *n && top[j].slot != slot)
        j++;
    if (j < *n) {
        if (abis_top_before(&e, &top[j])) {
            top[j] = e;
            abis_top_raise(top, j);
        }
        return;
    }
    j = *n < cap ? (*n)++ : *n - 1;
    top[j] = e;
    abis_top_raise(top, j);
}

static inline int abis_top_cmp(const void *a, const void *b)
{
    const abis_top *x = a, *y = b;
    return abis_top_before(x, y) ? -1 : abis_top_before(y, x) ? 1 : 0;
}

/* Merge lists packed in all[0..total) (they may share slots) into out: each
 * slot's best entry, the `cap` best slots, best first; returns how many.
 * Sorts `all` in place. */
static inline size_t abis_top_merge(abis_top *all, size_t total, size_t cap, abis_top *out)
{
    qsort(all, total, sizeof *all, abis_top_cmp);
    size_t n = 0;
    for (size_t i = 0; i < total && n < cap; i++) {
        size_t j = 0;
        while (j < n && out[j].slot != all[i].slot)
            j++;
        if (j == n)
            out[n++] = all[i];
    }
    return n;
}

#endif
