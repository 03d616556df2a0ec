/*
 * idmap.h: an open-addressing hash map from 128-bit ids (subject and template
 * ids, which are uniformly random) to 32-bit values (slots, row numbers).
 * Linear probing with backward-shift deletion, so there are no tombstones.
 * Not thread-safe.
 */
#ifndef ABIS_IDMAP_H
#define ABIS_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct abis_idmap_entry {
    unsigned char key[16];
    uint32_t value;
    uint32_t used;
} abis_idmap_entry;

typedef struct abis_idmap {
    abis_idmap_entry *slots;
    size_t cap; /* a power of two, or 0 */
    size_t size;
} abis_idmap;

/* The hash of an id that the map uses (also used by other id -> row maps). */
uint64_t abis_id_hash(const unsigned char key[16]);

/* A zeroed abis_idmap is an empty map. */
void abis_idmap_free(abis_idmap *m);
/* Insert or overwrite.  0, or -1 when out of memory. */
int abis_idmap_put(abis_idmap *m, const unsigned char key[16], uint32_t value);
/* 1 and *value when present, else 0. */
int abis_idmap_get(const abis_idmap *m, const unsigned char key[16], uint32_t *value);
/* 1 when it was present and is now removed. */
int abis_idmap_del(abis_idmap *m, const unsigned char key[16]);

#endif
