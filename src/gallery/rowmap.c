/* rowmap.c: template id -> row (rowmap.h). */
#include "gallery/rowmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/idmap.h"

void abis_rowmap_init(abis_rowmap *m, abis_rowmap_key_fn key, const void *ctx)
{
    memset(m, 0, sizeof *m);
    m->key = key;
    m->ctx = ctx;
}

void abis_rowmap_free(abis_rowmap *m)
{
    free(m->b);
    m->b = NULL;
    m->cap = m->size = 0;
}

static size_t home(const abis_rowmap *m, const abis_id *id)
{
    return (size_t)abis_id_hash(id->bytes) & (m->cap - 1);
}

static void place(abis_rowmap *m, const abis_id *id, uint32_t row)
{
    size_t j = home(m, id);
    while (m->b[j])
        j = (j + 1) & (m->cap - 1);
    m->b[j] = row + 1;
}

static int resize(abis_rowmap *m, size_t cap)
{
    uint32_t *nb = calloc(cap, sizeof *nb);
    if (!nb)
        return -1;
    uint32_t *old = m->b;
    size_t ocap = m->cap;
    m->b = nb;
    m->cap = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i])
            place(m, m->key(m->ctx, old[i] - 1), old[i] - 1);
    free(old);
    return 0;
}

/* Smallest power of two capacity keeping n entries at load <= 3/4. */
static size_t cap_for(size_t n)
{
    size_t cap = 64;
    while (cap / 4 * 3 < n)
        cap *= 2;
    return cap;
}

int abis_rowmap_put(abis_rowmap *m, const abis_id *id, uint32_t row)
{
    if ((m->size + 1) > m->cap / 4 * 3 && resize(m, cap_for(m->size + 1)) != 0)
        return -1;
    place(m, id, row);
    m->size++;
    return 0;
}

static int find(const abis_rowmap *m, const abis_id *id, size_t *at)
{
    if (!m->cap)
        return 0;
    for (size_t j = home(m, id); m->b[j]; j = (j + 1) & (m->cap - 1))
        if (memcmp(m->key(m->ctx, m->b[j] - 1), id, sizeof *id) == 0) {
            *at = j;
            return 1;
        }
    return 0;
}

int abis_rowmap_get(const abis_rowmap *m, const abis_id *id, uint32_t *row)
{
    size_t at;
    if (!find(m, id, &at))
        return 0;
    *row = m->b[at] - 1;
    return 1;
}

int abis_rowmap_del(abis_rowmap *m, const abis_id *id)
{
    size_t hole;
    if (!find(m, id, &hole))
        return 0;
    m->b[hole] = 0;
    m->size--;
    /* backward shift, as in util/idmap.c */
    size_t mask = m->cap - 1, j = hole;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->b[j])
            break;
        size_t h = home(m, m->key(m->ctx, m->b[j] - 1));
        int between = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
        if (!between) {
            m->b[hole] = m->b[j];
            m->b[j] = 0;
            hole = j;
        }
    }
    return 1;
}

void abis_rowmap_clear(abis_rowmap *m)
{
    if (m->b)
        memset(m->b, 0, m->cap * sizeof *m->b);
    m->size = 0;
}
