/* idmap.c: id -> uint32 hash map (see idmap.h). */
#include "util/idmap.h"

#include <stdlib.h>
#include <string.h>

/* Ids are random, so their first 8 bytes are already a good hash; mixing
 * (the splitmix64 finaliser) keeps non-random test ids spread too. */
uint64_t abis_id_hash(const unsigned char key[16])
{
    uint64_t h;
    memcpy(&h, key, 8);
    uint64_t l;
    memcpy(&l, key + 8, 8);
    h ^= l * 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

static size_t hash_key(const unsigned char key[16])
{
    return (size_t)abis_id_hash(key);
}

void abis_idmap_free(abis_idmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int grow(abis_idmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    abis_idmap_entry *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].used)
            continue;
        size_t j = hash_key(m->slots[i].key) & (ncap - 1);
        while (ns[j].used)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int abis_idmap_put(abis_idmap *m, const unsigned char key[16], uint32_t value)
{
    /* Keep the load factor at most 1/2 so probe sequences stay short. */
    if ((m->size + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    size_t j = hash_key(key) & (m->cap - 1);
    while (m->slots[j].used) {
        if (memcmp(m->slots[j].key, key, 16) == 0) {
            m->slots[j].value = value;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    memcpy(m->slots[j].key, key, 16);
    m->slots[j].value = value;
    m->slots[j].used = 1;
    m->size++;
    return 0;
}

static int find(const abis_idmap *m, const unsigned char key[16], size_t *at)
{
    if (!m->cap)
        return 0;
    size_t j = hash_key(key) & (m->cap - 1);
    while (m->slots[j].used) {
        if (memcmp(m->slots[j].key, key, 16) == 0) {
            *at = j;
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return 0;
}

int abis_idmap_get(const abis_idmap *m, const unsigned char key[16], uint32_t *value)
{
    size_t at;
    if (!find(m, key, &at))
        return 0;
    *value = m->slots[at].value;
    return 1;
}

int abis_idmap_del(abis_idmap *m, const unsigned char key[16])
{
    size_t hole;
    if (!find(m, key, &hole))
        return 0;
    m->slots[hole].used = 0;
    m->size--;
    /* Backward-shift: move later entries of the run into the hole when their
     * home position is not between the hole and themselves. */
    size_t mask = m->cap - 1, j = hole;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].used)
            break;
        size_t home = hash_key(m->slots[j].key) & mask;
        int between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!between) {
            m->slots[hole] = m->slots[j];
            m->slots[j].used = 0;
            hole = j;
        }
    }
    return 1;
}
