/*
 * gallery_vector.c: the exact in-memory vector gallery (see gallery.h).
 *
 * Layout (structure of arrays, so the scan reads each array front to back):
 *   rows   n * dim float32 values, one 64-byte aligned block, row r at
 *          data + r * dim; grown by doubling
 *   ids    the template id of each row
 *   slots  the subject slot of each row
 *   dead   1 for a tombstoned row
 *   map    template id -> row
 * all kept by the row store every gallery shares (gallery/rows.h): removal
 * tombstones a row, and more than a quarter dead rows are compacted away,
 * order kept.
 *
 * Search is one pass over the rows with the best dot kernel.  It keeps the
 * current top-k subjects in a small array sorted best-first.  A row whose
 * score does not beat the k-th entry (when the array is full) is dropped at
 * once, which is the common case; otherwise the array is searched for the
 * row's slot (O(k)) and the entry is raised, or a new entry is inserted and
 * the worst one evicted.  This keeps exactly the best template of each of
 * the top-k slots: a slot evicted earlier had a best score no higher than
 * the k-th score at that moment, and the k-th score never falls, so if the
 * slot comes back its new row is its best.  Memory traffic is O(n * dim),
 * extra memory O(k).  Ties (equal scores) go to the lower row index, i.e.
 * the template added first: rows are visited in increasing order and a later
 * row must score strictly higher to displace an entry.
 */
#include "gallery/gallery.h"

#include <stdlib.h>
#include <string.h>

#include "gallery/rows.h"
#include "match/match.h"

typedef struct vgallery {
    abis_gallery base;
    size_t dim;
    abis_rows rows; /* dim float32 values a row */
} vgallery;

static void vg_destroy(abis_gallery *base)
{
    vgallery *g = (vgallery *)base;
    abis_rows_free(&g->rows);
    free(g);
}

static abis_status vg_add(abis_gallery *base, const abis_id *template_id, uint32_t slot,
                          const void *tmpl, size_t len, abis_error *err)
{
    vgallery *g = (vgallery *)base;
    if (len != g->dim * sizeof(float))
        return abis_error_set(err, ABIS_E_INVALID,
                              "gallery: template has %zu bytes, this gallery expects %zu (%zu "
                              "float32 values)",
                              len, g->dim * sizeof(float), g->dim);
    if (abis_rows_add(&g->rows, template_id, slot, tmpl) != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory adding a template");
    return ABIS_OK;
}

static int vg_remove(abis_gallery *base, const abis_id *template_id)
{
    return abis_rows_remove(&((vgallery *)base)->rows, template_id);
}

static size_t vg_remove_slot(abis_gallery *base, uint32_t slot)
{
    return abis_rows_remove_slot(&((vgallery *)base)->rows, slot);
}

static size_t vg_count(const abis_gallery *base)
{
    return abis_rows_live(&((const vgallery *)base)->rows);
}

typedef struct top_entry {
    float score;
    uint32_t slot;
    uint32_t row;
} top_entry;

/* Move entry i up (towards index 0) while it beats its predecessor.  A
 * raised entry always comes from a later row, so equal scores stay behind. */
static void top_raise(top_entry *top, size_t i)
{
    top_entry e = top[i];
    while (i > 0 && e.score > top[i - 1].score) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = e;
}

static abis_status vg_search(abis_gallery *base, const void *probe, size_t len, size_t k,
                             const abis_bitset *allow, abis_hit *out, size_t *n_out,
                             abis_error *err)
{
    vgallery *g = (vgallery *)base;
    *n_out = 0;
    if (len != g->dim * sizeof(float))
        return abis_error_set(err, ABIS_E_INVALID,
                              "gallery: probe has %zu bytes, this gallery expects %zu (%zu "
                              "float32 values)",
                              len, g->dim * sizeof(float), g->dim);
    const abis_rows *rows = &g->rows;
    size_t live = abis_rows_live(rows);
    if (k == 0 || live == 0)
        return ABIS_OK;
    size_t cap = k < live ? k : live; /* never more distinct slots than live rows */
    top_entry *top = malloc(cap * sizeof *top);
    if (!top)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for %zu results", k);

    abis_dot_fn dot = abis_dot_best();
    const float *q = probe;
    const size_t dim = g->dim;
    const float *data = (const float *)rows->data;
    const uint32_t *slots = rows->slots;
    const unsigned char *dead = rows->dead;
    size_t n = 0;
    for (size_t r = 0; r < rows->n; r++) {
        if (dead[r])
            continue;
        uint32_t slot = slots[r];
        if (allow && !abis_bitset_test(allow, slot))
            continue;
        float s = dot(q, data + r * dim, dim);
        if (n == cap && !(s > top[n - 1].score))
            continue;
        size_t j = 0;
        while (j < n && top[j].slot != slot)
            j++;
        if (j < n) {
            if (s > top[j].score) { /* the slot's better template */
                top[j].score = s;
                top[j].row = (uint32_t)r;
                top_raise(top, j);
            }
            continue;
        }
        if (n < cap)
            j = n++;
        else
            j = n - 1; /* evict the worst */
        top[j] = (top_entry){s, slot, (uint32_t)r};
        top_raise(top, j);
    }
    for (size_t i = 0; i < n; i++) {
        out[i].slot = top[i].slot;
        out[i].template_id = rows->ids[top[i].row];
        out[i].score = top[i].score;
    }
    *n_out = n;
    free(top);
    return ABIS_OK;
}

static const abis_gallery_ops vector_ops = {
    .destroy = vg_destroy,
    .add = vg_add,
    .remove = vg_remove,
    .remove_slot = vg_remove_slot,
    .count = vg_count,
    .search = vg_search,
};

abis_status abis_gallery_vector_create(size_t dim, abis_gallery **out, abis_error *err)
{
    *out = NULL;
    if (dim == 0 || dim > 65536)
        return abis_error_set(err, ABIS_E_INVALID,
                              "gallery: dimension %zu is not between 1 and 65536", dim);
    vgallery *g = calloc(1, sizeof *g);
    if (!g)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory");
    g->base.ops = &vector_ops;
    g->dim = dim;
    abis_rows_init(&g->rows, dim * sizeof(float));
    *out = &g->base;
    return ABIS_OK;
}
