/*
 * bitset.c: the growable bitset over dense subject slots (see bitset.h).
 *
 * Storage is an array of 64-bit words; nbits is always words * 64.  Growing
 * at least doubles the array so that setting slots 0, 1, 2, ... in turn costs
 * amortised O(1).
 */
#include "util/bitset.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void abis_bitset_free(abis_bitset *b)
{
    if (!b)
        return;
    free(b->words);
    b->words = NULL;
    b->nbits = 0;
}

/* Resize to exactly `nwords` words (zeroing any new ones).  -1 on OOM. */
static int resize_words(abis_bitset *b, size_t nwords)
{
    size_t have = b->nbits / 64;
    if (nwords == have)
        return 0;
    if (nwords > SIZE_MAX / sizeof(uint64_t) / 2)
        return -1;
    uint64_t *w = realloc(b->words, (nwords ? nwords : 1) * sizeof(uint64_t));
    if (!w)
        return -1;
    if (nwords > have)
        memset(w + have, 0, (nwords - have) * sizeof(uint64_t));
    b->words = w;
    b->nbits = nwords * 64;
    return 0;
}

int abis_bitset_reserve(abis_bitset *b, size_t bit)
{
    assert(b);
    if (bit < b->nbits)
        return 0;
    size_t need = bit / 64 + 1;
    size_t have = b->nbits / 64;
    size_t grow = have * 2;
    if (grow < need)
        grow = need;
    if (grow < 4)
        grow = 4;
    return resize_words(b, grow);
}

int abis_bitset_set(abis_bitset *b, size_t bit)
{
    if (abis_bitset_reserve(b, bit) != 0)
        return -1;
    b->words[bit >> 6] |= (uint64_t)1 << (bit & 63);
    return 0;
}

void abis_bitset_clear(abis_bitset *b, size_t bit)
{
    if (bit < b->nbits)
        b->words[bit >> 6] &= ~((uint64_t)1 << (bit & 63));
}

int abis_bitset_andnot(abis_bitset *dst, const abis_bitset *a, const abis_bitset *c)
{
    assert(dst && a && c);
    if (dst != a && abis_bitset_copy(dst, a) != 0)
        return -1;
    abis_bitset_andnot_inplace(dst, c);
    return 0;
}

void abis_bitset_andnot_inplace(abis_bitset *dst, const abis_bitset *c)
{
    assert(dst && c);
    size_t n = dst->nbits / 64, nc = c->nbits / 64;
    if (nc < n)
        n = nc;
    for (size_t i = 0; i < n; i++)
        dst->words[i] &= ~c->words[i];
}

int abis_bitset_copy(abis_bitset *dst, const abis_bitset *a)
{
    assert(dst && a);
    if (dst == a)
        return 0;
    size_t n = a->nbits / 64;
    if (resize_words(dst, n) != 0)
        return -1;
    if (n)
        memcpy(dst->words, a->words, n * sizeof(uint64_t));
    return 0;
}

size_t abis_bitset_count(const abis_bitset *b)
{
    size_t total = 0;
    for (size_t i = 0; i < b->nbits / 64; i++)
        total += (size_t)__builtin_popcountll(b->words[i]);
    return total;
}
