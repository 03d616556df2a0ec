/* vstore.c: the int8 row store of the vector gallery (vstore.h). */
#include "gallery/vstore.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "match/signcode.h"

#define ALIGN 64
/* A chunk starts on a 2 MiB boundary and asks for transparent huge pages:
 * the batched scan reads 32 rows column-wise at a time, and with 4 KiB pages
 * the TLB misses cost it about 15 % (1M x 512, 64 probes, measured).  The
 * alignment costs address space only (glibc leaves the unused head of the
 * mapping untouched). */
#define CHUNK_ALIGN ((size_t)2 << 20)

static const abis_id *key_of(const void *ctx, uint32_t row)
{
    return abis_vs_id(ctx, row);
}

void abis_vstore_init(abis_vstore *s, size_t dim)
{
    memset(s, 0, sizeof *s);
    s->dim = dim;
    s->stride = (dim + 15) / 16 * 16;
    s->words = abis_sign_words(dim);
    abis_rowmap_init(&s->map, key_of, s);
}

/* Offsets of a chunk's arrays in its one allocation. */
static size_t chunk_data_bytes(const abis_vstore *s)
{
    return (ABIS_VS_CHUNK * s->stride + ALIGN - 1) / ALIGN * ALIGN;
}

static size_t chunk_bytes(const abis_vstore *s)
{
    return chunk_data_bytes(s) + ABIS_VS_CHUNK * (s->words * sizeof(uint64_t) + sizeof(float) +
                                                  sizeof(uint32_t) + sizeof(abis_id) + 1);
}

static void chunk_free(abis_vs_chunk *c)
{
    free(c->data); /* the one allocation starts with data */
    memset(c, 0, sizeof *c);
}

void abis_vstore_free(abis_vstore *s)
{
    for (size_t i = 0; i < s->n_chunks; i++)
        chunk_free(&s->chunk[i]);
    free(s->chunk);
    abis_rowmap_free(&s->map);
    free(s->centre);
    size_t dim = s->dim;
    abis_vstore_init(s, dim);
}

/* Make room for row s->n.  -1 on OOM (nothing changed). */
static int reserve(abis_vstore *s)
{
    if (s->n < s->n_chunks * ABIS_VS_CHUNK)
        return 0;
    if (s->n >= ABIS_VS_MAX_ROWS)
        return -1;
    if (s->n_chunks == s->cap_chunks) {
        size_t cap = s->cap_chunks ? 2 * s->cap_chunks : 8;
        abis_vs_chunk *nc = realloc(s->chunk, cap * sizeof *nc);
        if (!nc)
            return -1;
        s->chunk = nc;
        s->cap_chunks = cap;
    }
    void *block = NULL;
    if (posix_memalign(&block, CHUNK_ALIGN, chunk_bytes(s)) != 0)
        return -1;
#ifdef MADV_HUGEPAGE
    (void)madvise(block, chunk_bytes(s) / CHUNK_ALIGN * CHUNK_ALIGN, MADV_HUGEPAGE); /* a hint */
#endif
    unsigned char *mem = block;
    abis_vs_chunk *c = &s->chunk[s->n_chunks];
    c->data = (int8_t *)mem;
    mem += chunk_data_bytes(s);
    c->code = (uint64_t *)mem;
    mem += ABIS_VS_CHUNK * s->words * sizeof(uint64_t);
    c->scale = (float *)mem;
    mem += ABIS_VS_CHUNK * sizeof(float);
    c->slot = (uint32_t *)mem;
    mem += ABIS_VS_CHUNK * sizeof(uint32_t);
    c->id = (abis_id *)mem;
    mem += ABIS_VS_CHUNK * sizeof(abis_id);
    c->dead = mem;
    s->n_chunks++;
    return 0;
}

static void encode(const abis_vstore *s, const int8_t *q, float scale, uint64_t *code)
{
    if (s->centre)
        abis_sign_encode_centred(q, scale, s->centre, s->dim, code);
    else
        abis_sign_encode(q, s->dim, code);
}

/* Take the codes about the mean of the live rows from now on (all codes
 * recomputed).  Without memory for the centre the codes stay about zero:
 * slower to pre-select on uncentred data, never wrong. */
static void centre_codes(abis_vstore *s)
{
    double *sum = calloc(s->dim, sizeof *sum);
    float *c = malloc(s->dim * sizeof *c);
    size_t live = 0;
    if (!sum || !c) {
        free(sum);
        free(c);
        return;
    }
    for (size_t r = 0; r < s->n; r++) {
        if (abis_vs_dead(s, r))
            continue;
        const int8_t *q = abis_vs_row(s, r);
        float sc = abis_vs_scale(s, r);
        for (size_t i = 0; i < s->dim; i++)
            sum[i] += (double)q[i] * sc;
        live++;
    }
    for (size_t i = 0; i < s->dim; i++)
        c[i] = live ? (float)(sum[i] / live) : 0;
    free(sum);
    s->centre = c;
    for (size_t r = 0; r < s->n; r++) {
        abis_vs_chunk *ch = &s->chunk[r >> ABIS_VS_CHUNK_SHIFT];
        encode(s, abis_vs_row(s, r), abis_vs_scale(s, r), ch->code + abis_vs_off(r) * s->words);
    }
}

static void kill_row(abis_vstore *s, size_t r)
{
    abis_vs_chunk *c = &s->chunk[r >> ABIS_VS_CHUNK_SHIFT];
    assert(r < s->n && !c->dead[abis_vs_off(r)]);
    c->dead[abis_vs_off(r)] = 1;
    s->n_dead++;
}

int abis_vstore_add(abis_vstore *s, const abis_id *id, uint32_t slot, const int8_t *q, float scale)
{
    if (reserve(s) != 0)
        return -1;
    size_t r = s->n;
    abis_vs_chunk *c = &s->chunk[r >> ABIS_VS_CHUNK_SHIFT];
    size_t o = abis_vs_off(r);
    int8_t *row = c->data + o * s->stride;
    memcpy(row, q, s->dim);
    memset(row + s->dim, 0, s->stride - s->dim);
    encode(s, q, scale, c->code + o * s->words);
    c->scale[o] = scale;
    c->slot[o] = slot;
    c->id[o] = *id;
    c->dead[o] = 0;
    uint32_t old;
    int had = abis_rowmap_get(&s->map, id, &old);
    if (had)
        abis_rowmap_del(&s->map, id);
    if (abis_rowmap_put(&s->map, id, (uint32_t)r) != 0) {
        if (had) /* put the old mapping back: deleting made room for it */
            abis_rowmap_put(&s->map, id, old);
        return -1;
    }
    s->n++;
    if (had)
        kill_row(s, old);
    if (!s->centre && abis_vs_live(s) == ABIS_VS_CENTRE_ROWS)
        centre_codes(s);
    return 0;
}

int abis_vstore_remove(abis_vstore *s, const abis_id *id)
{
    uint32_t r;
    if (!abis_rowmap_get(&s->map, id, &r))
        return 0;
    abis_rowmap_del(&s->map, id);
    kill_row(s, r);
    return 1;
}

size_t abis_vstore_remove_slot(abis_vstore *s, uint32_t slot)
{
    size_t n = 0;
    for (size_t ci = 0; ci < s->n_chunks; ci++) {
        abis_vs_chunk *c = &s->chunk[ci];
        size_t base = ci * ABIS_VS_CHUNK,
               end = s->n - base < ABIS_VS_CHUNK ? s->n - base : ABIS_VS_CHUNK;
        for (size_t o = 0; o < end; o++) {
            if (c->dead[o] || c->slot[o] != slot)
                continue;
            abis_rowmap_del(&s->map, &c->id[o]);
            kill_row(s, base + o);
            n++;
        }
    }
    return n;
}

void abis_vstore_compact(abis_vstore *s, uint32_t *remap)
{
    size_t w = 0;
    for (size_t r = 0; r < s->n; r++) {
        const abis_vs_chunk *from = abis_vs_chunk_of(s, r);
        size_t fo = abis_vs_off(r);
        if (from->dead[fo]) {
            if (remap)
                remap[r] = UINT32_MAX;
            continue;
        }
        if (remap)
            remap[r] = (uint32_t)w;
        if (w != r) {
            abis_vs_chunk *to = &s->chunk[w >> ABIS_VS_CHUNK_SHIFT];
            size_t to_o = abis_vs_off(w);
            memcpy(to->data + to_o * s->stride, from->data + fo * s->stride, s->stride);
            memcpy(to->code + to_o * s->words, from->code + fo * s->words,
                   s->words * sizeof(uint64_t));
            to->scale[to_o] = from->scale[fo];
            to->slot[to_o] = from->slot[fo];
            to->id[to_o] = from->id[fo];
            to->dead[to_o] = 0;
        }
        w++;
    }
    s->n = w;
    s->n_dead = 0;
    size_t keep = (w + ABIS_VS_CHUNK - 1) / ABIS_VS_CHUNK;
    for (size_t i = keep; i < s->n_chunks; i++)
        chunk_free(&s->chunk[i]);
    s->n_chunks = keep;
    abis_rowmap_clear(&s->map);
    for (size_t r = 0; r < w; r++) {
        int rc = abis_rowmap_put(&s->map, abis_vs_id(s, r), (uint32_t)r);
        assert(rc == 0); /* fewer entries than before: no growth */
        (void)rc;
    }
}

void abis_vstore_bytes(const abis_vstore *s, size_t *vectors, size_t *bookkeeping, size_t *codes)
{
    size_t rows = s->n_chunks * ABIS_VS_CHUNK;
    *codes = rows * s->words * sizeof(uint64_t);
    *vectors = s->n_chunks * chunk_data_bytes(s) + rows * sizeof(float);
    *bookkeeping = rows * (sizeof(uint32_t) + sizeof(abis_id) + 1) + abis_rowmap_bytes(&s->map) +
                   s->cap_chunks * sizeof *s->chunk + (s->centre ? s->dim * sizeof(float) : 0);
}
