/*
 * rows.h: the row store every gallery builds on -- fixed-size template rows
 * in one 64-byte aligned block (structure of arrays beside it: template id,
 * subject slot, tombstone flag per row), a template id -> row map, and
 * tombstones compacted away when more than a quarter of the rows are dead.
 *
 * Adding a template id that is already present replaces it (its old row is
 * tombstoned), so re-adding after an update never leaves two copies.
 * Compaction moves live rows down in place, keeping their order (searches
 * rely on row order for their tie rule), and never allocates.
 * Not thread-safe; searches may read it concurrently with each other.
 */
#ifndef ABIS_GALLERY_ROWS_H
#define ABIS_GALLERY_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"
#include "util/idmap.h"

#define ABIS_ROWS_ALIGN 64

typedef struct abis_rows {
    unsigned char *data; /* n * row_bytes, ABIS_ROWS_ALIGN-aligned */
    size_t row_bytes;
    abis_id *ids;
    uint32_t *slots;
    unsigned char *dead; /* 1: tombstoned */
    size_t n, cap, n_dead;
    abis_idmap map; /* template id -> row */
} abis_rows;

/* An empty store of rows of `row_bytes` bytes each. */
void abis_rows_init(abis_rows *r, size_t row_bytes);
void abis_rows_free(abis_rows *r);
/* Add a row (row_bytes from `row`).  -1 when out of memory, nothing changed. */
int abis_rows_add(abis_rows *r, const abis_id *id, uint32_t slot, const void *row);
/* Tombstone the row of a template id; 1 if it was there. */
int abis_rows_remove(abis_rows *r, const abis_id *id);
/* Tombstone every row of a subject slot (O(rows): rare next to searches);
 * returns how many. */
size_t abis_rows_remove_slot(abis_rows *r, uint32_t slot);

static inline size_t abis_rows_live(const abis_rows *r)
{
    return r->n - r->n_dead;
}

static inline const void *abis_rows_at(const abis_rows *r, size_t i)
{
    return r->data + i * r->row_bytes;
}

#endif
