/*
 * gallery_vector.c: the exact in-memory vector gallery (see gallery.h).
 *
 * Layout (structure of arrays, so the scan reads each array front to back):
 *   rows   n_rows * dim float32 values, one 64-byte aligned block, row r at
 *          rows + r * dim; grown by doubling
 *   ids    the template id of each row
 *   slots  the subject slot of each row
 *   dead   1 for a tombstoned row
 *   map    template id -> row, open addressing with linear probing and
 *          backward-shift deletion (no map tombstones), load factor <= 1/2
 * Removal tombstones a row and drops it from the map; when more than a
 * quarter of the rows are dead the live rows are moved down in place (their
 * order kept) and the map is rebuilt, which needs no memory and cannot fail.
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

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "match/match.h"

#define ROW_ALIGN 64
#define MAP_EMPTY UINT32_MAX
/* Rows are indexed by uint32_t; the map's empty marker takes the last value. */
#define MAX_ROWS ((size_t)UINT32_MAX - 1)

typedef struct map_entry {
    abis_id id;
    uint32_t row; /* MAP_EMPTY: free */
} map_entry;

typedef struct vgallery {
    abis_gallery base;
    size_t dim;
    float *rows;
    abis_id *ids;
    uint32_t *slots;
    unsigned char *dead;
    size_t n_rows, cap_rows, n_dead;
    map_entry *map;
    size_t map_cap; /* a power of two, or 0 */
    size_t map_used;
} vgallery;

/* ---- template id -> row map ----------------------------------------------- */

/* Template ids are random, but hash all 16 bytes through a strong mixer
 * (the splitmix64 finaliser) so that structured ids do not cluster. */
static size_t id_hash(const abis_id *id)
{
    uint64_t a, b;
    memcpy(&a, id->bytes, 8);
    memcpy(&b, id->bytes + 8, 8);
    uint64_t z = a ^ (b * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (size_t)(z ^ (z >> 31));
}

static int id_eq(const abis_id *a, const abis_id *b)
{
    return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

/* The map position holding `id`, or the free position where it would go. */
static size_t map_find(const vgallery *g, const abis_id *id)
{
    size_t mask = g->map_cap - 1, i = id_hash(id) & mask;
    while (g->map[i].row != MAP_EMPTY && !id_eq(&g->map[i].id, id))
        i = (i + 1) & mask;
    return i;
}

static uint32_t map_get(const vgallery *g, const abis_id *id)
{
    if (g->map_cap == 0)
        return MAP_EMPTY;
    return g->map[map_find(g, id)].row;
}

/* Insert or overwrite; the map must have room (map_reserve). */
static void map_put(vgallery *g, const abis_id *id, uint32_t row)
{
    size_t i = map_find(g, id);
    if (g->map[i].row == MAP_EMPTY) {
        g->map[i].id = *id;
        g->map_used++;
    }
    g->map[i].row = row;
}

static void map_clear(vgallery *g)
{
    for (size_t i = 0; i < g->map_cap; i++)
        g->map[i].row = MAP_EMPTY;
    g->map_used = 0;
}

/* Delete by backward shift (Knuth vol. 3, 6.4, algorithm R): later entries
 * of the probe run move up so that lookups never stop early. */
static void map_del(vgallery *g, const abis_id *id)
{
    if (g->map_cap == 0)
        return;
    size_t mask = g->map_cap - 1, i = map_find(g, id);
    if (g->map[i].row == MAP_EMPTY)
        return;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (g->map[j].row == MAP_EMPTY)
            break;
        size_t home = id_hash(&g->map[j].id) & mask;
        /* Move j to the hole i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            g->map[i] = g->map[j];
            i = j;
        }
    }
    g->map[i].row = MAP_EMPTY;
    g->map_used--;
}

/* Make room for `want` entries at load factor 1/2.  -1 on OOM (map unchanged). */
static int map_reserve(vgallery *g, size_t want)
{
    if (want * 2 <= g->map_cap)
        return 0;
    size_t cap = g->map_cap ? g->map_cap : 16;
    while (want * 2 > cap) {
        if (cap > SIZE_MAX / 2 / sizeof(map_entry))
            return -1;
        cap *= 2;
    }
    map_entry *m = malloc(cap * sizeof *m);
    if (!m)
        return -1;
    map_entry *old = g->map;
    size_t old_cap = g->map_cap;
    g->map = m;
    g->map_cap = cap;
    map_clear(g);
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].row != MAP_EMPTY)
            map_put(g, &old[i].id, old[i].row);
    free(old);
    return 0;
}

/* ---- rows ------------------------------------------------------------------- */

/* Make room for one more row.  -1 on OOM (gallery unchanged apart from
 * spare capacity in some arrays). */
static int rows_reserve(vgallery *g)
{
    if (g->n_rows < g->cap_rows)
        return 0;
    if (g->n_rows >= MAX_ROWS)
        return -1;
    size_t cap = g->cap_rows ? g->cap_rows * 2 : 64;
    if (cap > MAX_ROWS)
        cap = MAX_ROWS;
    size_t row_bytes = g->dim * sizeof(float);
    if (cap > SIZE_MAX / row_bytes - 1)
        return -1;
    size_t bytes = (cap * row_bytes + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    float *rows = aligned_alloc(ROW_ALIGN, bytes);
    if (!rows)
        return -1;
    abis_id *ids = realloc(g->ids, cap * sizeof *ids);
    if (!ids) {
        free(rows);
        return -1;
    }
    g->ids = ids;
    uint32_t *slots = realloc(g->slots, cap * sizeof *slots);
    if (!slots) {
        free(rows);
        return -1;
    }
    g->slots = slots;
    unsigned char *dead = realloc(g->dead, cap);
    if (!dead) {
        free(rows);
        return -1;
    }
    g->dead = dead;
    if (g->n_rows)
        memcpy(rows, g->rows, g->n_rows * row_bytes);
    free(g->rows);
    g->rows = rows;
    g->cap_rows = cap;
    return 0;
}

/* Move live rows down over dead ones, keeping their order, and rebuild the map. */
static void compact(vgallery *g)
{
    size_t w = 0;
    for (size_t r = 0; r < g->n_rows; r++) {
        if (g->dead[r])
            continue;
        if (w != r) {
            memcpy(g->rows + w * g->dim, g->rows + r * g->dim, g->dim * sizeof(float));
            g->ids[w] = g->ids[r];
            g->slots[w] = g->slots[r];
        }
        g->dead[w] = 0;
        w++;
    }
    g->n_rows = w;
    g->n_dead = 0;
    map_clear(g);
    for (size_t r = 0; r < g->n_rows; r++)
        map_put(g, &g->ids[r], (uint32_t)r);
}

static void maybe_compact(vgallery *g)
{
    if (g->n_dead * 4 > g->n_rows)
        compact(g);
}

static void kill_row(vgallery *g, size_t r)
{
    assert(r < g->n_rows && !g->dead[r]);
    g->dead[r] = 1;
    g->n_dead++;
}

/* ---- operations ------------------------------------------------------------- */

static void vg_destroy(abis_gallery *base)
{
    vgallery *g = (vgallery *)base;
    free(g->rows);
    free(g->ids);
    free(g->slots);
    free(g->dead);
    free(g->map);
    free(g);
}

/* Add a row; a template id already present is replaced (its old row is
 * tombstoned), so re-adding after an update cannot leave two copies. */
static abis_status vg_add(abis_gallery *base, const abis_id *template_id, uint32_t slot,
                          const void *tmpl, size_t len, abis_error *err)
{
    vgallery *g = (vgallery *)base;
    if (len != g->dim * sizeof(float))
        return abis_error_set(err, ABIS_E_INVALID,
                              "gallery: template has %zu bytes, this gallery expects %zu (%zu "
                              "float32 values)",
                              len, g->dim * sizeof(float), g->dim);
    size_t live = g->n_rows - g->n_dead;
    if (map_reserve(g, live + 1) != 0 || rows_reserve(g) != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory adding a template");
    uint32_t old = map_get(g, template_id);
    if (old != MAP_EMPTY)
        kill_row(g, old);
    size_t r = g->n_rows++;
    memcpy(g->rows + r * g->dim, tmpl, len);
    g->ids[r] = *template_id;
    g->slots[r] = slot;
    g->dead[r] = 0;
    map_put(g, template_id, (uint32_t)r);
    maybe_compact(g);
    return ABIS_OK;
}

static int vg_remove(abis_gallery *base, const abis_id *template_id)
{
    vgallery *g = (vgallery *)base;
    uint32_t r = map_get(g, template_id);
    if (r == MAP_EMPTY)
        return 0;
    kill_row(g, r);
    map_del(g, template_id);
    maybe_compact(g);
    return 1;
}

/* O(rows): a subject's templates are not indexed by slot; removing a subject
 * is rare next to searching. */
static size_t vg_remove_slot(abis_gallery *base, uint32_t slot)
{
    vgallery *g = (vgallery *)base;
    size_t n = 0;
    for (size_t r = 0; r < g->n_rows; r++) {
        if (g->dead[r] || g->slots[r] != slot)
            continue;
        kill_row(g, r);
        map_del(g, &g->ids[r]);
        n++;
    }
    maybe_compact(g);
    return n;
}

static size_t vg_count(const abis_gallery *base)
{
    const vgallery *g = (const vgallery *)base;
    return g->n_rows - g->n_dead;
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
    if (k == 0 || g->n_rows == g->n_dead)
        return ABIS_OK;
    size_t live = g->n_rows - g->n_dead;
    size_t cap = k < live ? k : live; /* never more distinct slots than live rows */
    top_entry *top = malloc(cap * sizeof *top);
    if (!top)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery: out of memory for %zu results", k);

    abis_dot_fn dot = abis_dot_best();
    const float *q = probe;
    const size_t dim = g->dim;
    const uint32_t *slots = g->slots;
    const unsigned char *dead = g->dead;
    size_t n = 0;
    for (size_t r = 0; r < g->n_rows; r++) {
        if (dead[r])
            continue;
        uint32_t slot = slots[r];
        if (allow && !abis_bitset_test(allow, slot))
            continue;
        float s = dot(q, g->rows + r * dim, dim);
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
        out[i].template_id = g->ids[top[i].row];
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
    *out = &g->base;
    return ABIS_OK;
}
