/*
 * bitset.h: a growable bitset over dense slots (subject slots in a segment).
 * Used for the consent, lock and liveness filters that the gallery applies
 * inside its scan.  Not thread-safe; the engine serialises access.
 */
#ifndef ABIS_BITSET_H
#define ABIS_BITSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct abis_bitset {
    uint64_t *words;
    size_t nbits;  /* bits addressable (a multiple of 64) */
} abis_bitset;

/* Zero-initialised bitset: {0}.  Free with abis_bitset_free. */
void abis_bitset_free(abis_bitset *b);
/* Make room for bit `bit` (new bits are 0).  Returns 0, or -1 when out of memory. */
int abis_bitset_reserve(abis_bitset *b, size_t bit);
/* Set / clear grow as needed (set returns -1 when out of memory). */
int abis_bitset_set(abis_bitset *b, size_t bit);
void abis_bitset_clear(abis_bitset *b, size_t bit);
static inline int abis_bitset_test(const abis_bitset *b, size_t bit)
{
    return bit < b->nbits && ((b->words[bit >> 6] >> (bit & 63)) & 1u);
}
/* dst = a AND NOT c for the first nbits of a (dst sized to a).  -1 on OOM. */
int abis_bitset_andnot(abis_bitset *dst, const abis_bitset *a, const abis_bitset *c);
/* dst = dst AND NOT c in place. */
void abis_bitset_andnot_inplace(abis_bitset *dst, const abis_bitset *c);
/* dst = copy of a.  -1 on OOM. */
int abis_bitset_copy(abis_bitset *dst, const abis_bitset *a);
size_t abis_bitset_count(const abis_bitset *b);

#endif
