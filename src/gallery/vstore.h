/*
 * vstore.h: the int8 row store of the vector gallery.
 *
 * Each template is a row: dim int8 values (match/int8.h quantisation) with
 * its float scale, subject slot, template id and tombstone flag.  Rows live
 * in chunks of ABIS_VS_CHUNK rows, each one allocation:
 *
 *   data   ABIS_VS_CHUNK * stride bytes, 64-byte aligned; row r at
 *          data + (r % ABIS_VS_CHUNK) * stride, stride = dim rounded up to 16
 *   scale  float per row       slot  uint32 per row
 *   id     abis_id per row     dead  byte per row (1: tombstoned)
 *   code   the row's sign code (match/signcode.h), ceil(dim / 64) words
 *
 * so a scan reads the int8 rows front to back, a chunk (2-8 MiB for
 * 128-512 values) is a unit of parallel work, and growing never copies rows
 * (a new chunk is added).  Template ids map to rows through a rowmap (4
 * bytes a bucket).  Row numbers are global (chunk * ABIS_VS_CHUNK + offset)
 * and follow insertion order; compaction keeps that order, so "the template
 * added first" is always "the lower row".
 *
 * Memory per template: stride + 25 bytes + the rowmap's 5.3-10.7 bytes,
 * plus the sign code's dim / 8 bytes (the pre-selection).
 * Not thread-safe: the gallery's lock guards it.
 */
#ifndef ABIS_GALLERY_VSTORE_H
#define ABIS_GALLERY_VSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"
#include "gallery/rowmap.h"

#define ABIS_VS_CHUNK_SHIFT 14
#define ABIS_VS_CHUNK ((size_t)1 << ABIS_VS_CHUNK_SHIFT) /* 16,384 rows */
#define ABIS_VS_MAX_ROWS ((size_t)UINT32_MAX - 1)

typedef struct abis_vs_chunk {
    int8_t *data;
    float *scale;
    uint32_t *slot;
    abis_id *id;
    uint8_t *dead;
    uint64_t *code;
} abis_vs_chunk;

typedef struct abis_vstore {
    size_t dim, stride;
    size_t words; /* of a sign code */
    abis_vs_chunk *chunk;
    size_t n_chunks, cap_chunks;
    size_t n, n_dead; /* rows, tombstoned rows */
    abis_rowmap map;  /* live template id -> row */
} abis_vstore;

void abis_vstore_init(abis_vstore *s, size_t dim);
void abis_vstore_free(abis_vstore *s);

/* Append a row (q: dim values, from abis_i8_quantize).  A live row with the
 * same id is tombstoned (re-adding replaces).  -1 when out of memory, with
 * nothing changed. */
int abis_vstore_add(abis_vstore *s, const abis_id *id, uint32_t slot, const int8_t *q, float scale);
/* Tombstone the row of a template id; 1 if it was there. */
int abis_vstore_remove(abis_vstore *s, const abis_id *id);
/* Tombstone every row of a subject slot; returns how many. */
size_t abis_vstore_remove_slot(abis_vstore *s, uint32_t slot);
/* Move the live rows down over the dead ones, keeping their order, free the
 * chunks no longer needed and rebuild the id map.  When remap is not NULL
 * (s->n entries) it gets each old row's new number, or UINT32_MAX for a dead
 * row.  Never allocates, so it cannot fail. */
void abis_vstore_compact(abis_vstore *s, uint32_t *remap);
/* Bytes held: the int8 rows with their scales (the part a scan reads), the
 * bookkeeping (slots, ids, tombstones, id map, chunk table), the sign codes. */
void abis_vstore_bytes(const abis_vstore *s, size_t *vectors, size_t *bookkeeping,
                       size_t *codes);

static inline const abis_vs_chunk *abis_vs_chunk_of(const abis_vstore *s, size_t r)
{
    return &s->chunk[r >> ABIS_VS_CHUNK_SHIFT];
}
static inline size_t abis_vs_off(size_t r)
{
    return r & (ABIS_VS_CHUNK - 1);
}
static inline const int8_t *abis_vs_row(const abis_vstore *s, size_t r)
{
    return abis_vs_chunk_of(s, r)->data + abis_vs_off(r) * s->stride;
}
static inline float abis_vs_scale(const abis_vstore *s, size_t r)
{
    return abis_vs_chunk_of(s, r)->scale[abis_vs_off(r)];
}
static inline uint32_t abis_vs_slot(const abis_vstore *s, size_t r)
{
    return abis_vs_chunk_of(s, r)->slot[abis_vs_off(r)];
}
static inline int abis_vs_dead(const abis_vstore *s, size_t r)
{
    return abis_vs_chunk_of(s, r)->dead[abis_vs_off(r)];
}
static inline const abis_id *abis_vs_id(const abis_vstore *s, size_t r)
{
    return &abis_vs_chunk_of(s, r)->id[abis_vs_off(r)];
}
static inline const uint64_t *abis_vs_code(const abis_vstore *s, size_t r)
{
    return abis_vs_chunk_of(s, r)->code + abis_vs_off(r) * s->words;
}
static inline size_t abis_vs_live(const abis_vstore *s)
{
    return s->n - s->n_dead;
}

#endif
