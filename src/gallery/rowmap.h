/*
 * rowmap.h: template id -> row number for large galleries, in 4 bytes a
 * bucket: buckets hold row + 1 (0 = empty) and the ids themselves stay in the
 * gallery's row store, read back through a callback when comparing.  Open
 * addressing, linear probing, backward-shift deletion, load at most 3/4:
 * about 5-11 bytes a template, where abis_idmap takes 24 a bucket.
 * Not thread-safe.
 */
#ifndef ABIS_GALLERY_ROWMAP_H
#define ABIS_GALLERY_ROWMAP_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"

/* The id stored at `row` (rows in the map are never beyond the store). */
typedef const abis_id *(*abis_rowmap_key_fn)(const void *ctx, uint32_t row);

typedef struct abis_rowmap {
    uint32_t *b; /* buckets: row + 1, or 0 */
    size_t cap;  /* a power of two, or 0 */
    size_t size;
    abis_rowmap_key_fn key;
    const void *ctx;
} abis_rowmap;

void abis_rowmap_init(abis_rowmap *m, abis_rowmap_key_fn key, const void *ctx);
void abis_rowmap_free(abis_rowmap *m);
/* Map id (which must be absent) to row.  -1 when out of memory. */
int abis_rowmap_put(abis_rowmap *m, const abis_id *id, uint32_t row);
/* 1 and *row when present, else 0. */
int abis_rowmap_get(const abis_rowmap *m, const abis_id *id, uint32_t *row);
/* 1 when it was present and is now removed. */
int abis_rowmap_del(abis_rowmap *m, const abis_id *id);
/* Empty the map, keeping its capacity (so that putting back at most as many
 * entries as it held never allocates). */
void abis_rowmap_clear(abis_rowmap *m);
/* Bytes held. */
static inline size_t abis_rowmap_bytes(const abis_rowmap *m)
{
    return m->cap * sizeof *m->b;
}

#endif
