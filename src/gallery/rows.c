/* rows.c: the row store under every gallery (rows.h). */
#include "gallery/rows.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Rows are indexed by uint32_t. */
#define MAX_ROWS ((size_t)UINT32_MAX - 1)

void abis_rows_init(abis_rows *r, size_t row_bytes)
{
    memset(r, 0, sizeof *r);
    r->row_bytes = row_bytes;
}

void abis_rows_free(abis_rows *r)
{
    free(r->data);
    free(r->ids);
    free(r->slots);
    free(r->dead);
    abis_idmap_free(&r->map);
    memset(r, 0, sizeof *r);
}

/* Make room for one more row.  -1 on OOM (only spare capacity changed). */
static int reserve(abis_rows *r)
{
    if (r->n < r->cap)
        return 0;
    if (r->n >= MAX_ROWS)
        return -1;
    size_t cap = r->cap ? r->cap * 2 : 64;
    if (cap > MAX_ROWS)
        cap = MAX_ROWS;
    if (cap > SIZE_MAX / r->row_bytes - 1)
        return -1;
    size_t bytes = (cap * r->row_bytes + ABIS_ROWS_ALIGN - 1) / ABIS_ROWS_ALIGN * ABIS_ROWS_ALIGN;
    unsigned char *data = aligned_alloc(ABIS_ROWS_ALIGN, bytes);
    if (!data)
        return -1;
    abis_id *ids = realloc(r->ids, cap * sizeof *ids);
    if (ids)
        r->ids = ids;
    uint32_t *slots = ids ? realloc(r->slots, cap * sizeof *slots) : NULL;
    if (slots)
        r->slots = slots;
    unsigned char *dead = slots ? realloc(r->dead, cap) : NULL;
    if (!dead) {
        free(data);
        return -1;
    }
    r->dead = dead;
    if (r->n)
        memcpy(data, r->data, r->n * r->row_bytes);
    free(r->data);
    r->data = data;
    r->cap = cap;
    return 0;
}

/* Move live rows down over dead ones, keeping their order.  The map never
 * holds more than half its capacity, so deleting a key and inserting it
 * again never grows it. */
static void compact(abis_rows *r)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->dead[i])
            continue;
        if (w != i) {
            memcpy(r->data + w * r->row_bytes, r->data + i * r->row_bytes, r->row_bytes);
            r->ids[w] = r->ids[i];
            r->slots[w] = r->slots[i];
            abis_idmap_del(&r->map, r->ids[w].bytes);
            int rc = abis_idmap_put(&r->map, r->ids[w].bytes, (uint32_t)w);
            assert(rc == 0);
            (void)rc;
        }
        r->dead[w] = 0;
        w++;
    }
    r->n = w;
    r->n_dead = 0;
}

static void maybe_compact(abis_rows *r)
{
    if (r->n_dead * 4 > r->n)
        compact(r);
}

static void kill_row(abis_rows *r, size_t i)
{
    assert(i < r->n && !r->dead[i]);
    r->dead[i] = 1;
    r->n_dead++;
}

int abis_rows_add(abis_rows *r, const abis_id *id, uint32_t slot, const void *row)
{
    if (reserve(r) != 0)
        return -1;
    uint32_t old;
    int had = abis_idmap_get(&r->map, id->bytes, &old);
    size_t i = r->n;
    if (abis_idmap_put(&r->map, id->bytes, (uint32_t)i) != 0)
        return -1;
    if (had)
        kill_row(r, old);
    memcpy(r->data + i * r->row_bytes, row, r->row_bytes);
    r->ids[i] = *id;
    r->slots[i] = slot;
    r->dead[i] = 0;
    r->n++;
    maybe_compact(r);
    return 0;
}

int abis_rows_remove(abis_rows *r, const abis_id *id)
{
    uint32_t i;
    if (!abis_idmap_get(&r->map, id->bytes, &i))
        return 0;
    kill_row(r, i);
    abis_idmap_del(&r->map, id->bytes);
    maybe_compact(r);
    return 1;
}

size_t abis_rows_remove_slot(abis_rows *r, uint32_t slot)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->dead[i] || r->slots[i] != slot)
            continue;
        kill_row(r, i);
        abis_idmap_del(&r->map, r->ids[i].bytes);
        n++;
    }
    maybe_compact(r);
    return n;
}
