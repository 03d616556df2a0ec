/* vector_snapshot.c: saving the vector gallery to an encrypted snapshot and
 * loading it (gallery/snapshot.h; docs/FORMATS.md, "Gallery snapshots"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gallery/vector_internal.h"

/* ---- snapshots --------------------------------------------------------------------------- */

/* The body of a vector gallery snapshot (docs/FORMATS.md, "Gallery
 * snapshots"), little-endian:
 *   u32 dim, u32 has_graph, u64 rows
 *   rows x { template id[16], subject id[16], f32 scale, int8 q[dim] }
 *   if has_graph: u32 m, u64 indexed, u32 entry, i32 max_level, u64 n_upper,
 *                 u32 upper[n_upper],
 *                 indexed x { u32 links[2m], u8 level, u32 up }
 * Written compacted (no tombstones). */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gallery snapshots are written in the host's byte order, which must be little-endian"
#endif

typedef struct snap_sink {
    abis_snapshot_writer *w;
    abis_error *err;
    abis_status st;
} snap_sink;

static void put(snap_sink *k, const void *p, size_t n)
{
    if (k->st == ABIS_OK)
        k->st = abis_snapshot_write(k->w, p, n, k->err);
}

static abis_status save_body(vgallery *g, const abis_snapshot_io *io, snap_sink *k)
{
    uint32_t dim = (uint32_t)g->st.dim, has_graph = g->graph != NULL;
    uint64_t rows = g->st.n;
    put(k, &dim, 4);
    put(k, &has_graph, 4);
    put(k, &rows, 8);
    for (size_t r = 0; r < g->st.n && k->st == ABIS_OK; r++) {
        float scale = abis_vs_scale(&g->st, r);
        put(k, abis_vs_id(&g->st, r), sizeof(abis_id));
        put(k, io->subject_of(io->ctx, abis_vs_slot(&g->st, r)), sizeof(abis_id));
        put(k, &scale, 4);
        put(k, abis_vs_row(&g->st, r), g->st.dim);
    }
    if (!g->graph)
        return k->st;
    abis_hnsw_view v;
    abis_hnsw_view_get(g->graph, &v);
    uint32_t m = v.m, entry = v.entry;
    int32_t max_level = v.max_level;
    uint64_t indexed = v.indexed, n_upper = v.n_upper;
    put(k, &m, 4);
    put(k, &indexed, 8);
    put(k, &entry, 4);
    put(k, &max_level, 4);
    put(k, &n_upper, 8);
    put(k, v.upper, n_upper * sizeof *v.upper);
    for (size_t r = 0; r < indexed && k->st == ABIS_OK; r++) {
        uint8_t level = abis_hnsw_level(g->graph, r);
        uint32_t up = abis_hnsw_up(g->graph, r);
        put(k, abis_hnsw_links0(g->graph, r), 2 * (size_t)m * sizeof(uint32_t));
        put(k, &level, 1);
        put(k, &up, 4);
    }
    return k->st;
}

abis_status vector_snapshot_save(abis_gallery *base, const abis_snapshot_io *io, abis_error *err)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_wrlock(&g->lock);
    abis_status st = ABIS_OK;
    /* Unchanged since loaded from or saved to this file: the file still holds
     * exactly this gallery.  Its header names an older point of the store's
     * history, which the engine accepts when nothing since changed templates
     * (segstate.c), so it is not rewritten for every identification. */
    if (!g->dirty && g->snap_path && strcmp(g->snap_path, io->path) == 0 &&
        access(io->path, F_OK) == 0)
        goto done;
    if (g->st.n_dead && vector_compact(g) != ABIS_OK) {
        st = abis_error_set(err, ABIS_E_NOMEM, "gallery snapshot: out of memory compacting");
        goto done;
    }
    snap_sink k = {NULL, err, ABIS_OK};
    abis_snapshot_head head = io->head;
    head.version = ABIS_SNAPSHOT_VERSION;
    head.kind = ABIS_SNAPSHOT_KIND_VECTOR;
    st = abis_snapshot_create(io->path, io->key, &head, &k.w, err);
    if (st == ABIS_OK)
        st = save_body(g, io, &k);
    if (st == ABIS_OK) {
        st = abis_snapshot_commit(k.w, err);
        k.w = NULL;
    }
    abis_snapshot_abort(k.w);
    if (st == ABIS_OK) {
        char *p = strdup(io->path);
        free(g->snap_path);
        g->snap_path = p; /* NULL on OOM: the file is then simply not reused */
        g->dirty = 0;
    }
done:
    pthread_rwlock_unlock(&g->lock);
    return st;
}

typedef struct snap_source {
    abis_snapshot_reader *r;
    abis_error *err;
    abis_status st;
    size_t link_bytes; /* a node's layer-0 link list */
} snap_source;

static void get(snap_source *s, void *p, size_t n)
{
    if (s->st == ABIS_OK)
        s->st = abis_snapshot_read(s->r, p, n, s->err);
}

static int load_node(void *ctx, size_t r, uint32_t *links0, uint8_t *level, uint32_t *up)
{
    (void)r;
    snap_source *s = ctx;
    get(s, links0, s->link_bytes);
    get(s, level, 1);
    get(s, up, 4);
    return s->st == ABIS_OK ? 0 : -1;
}

static abis_status load_body(vgallery *g, const abis_snapshot_io *io, snap_source *s)
{
    uint32_t dim = 0, has_graph = 0;
    uint64_t rows = 0;
    get(s, &dim, 4);
    get(s, &has_graph, 4);
    get(s, &rows, 8);
    if (s->st != ABIS_OK)
        return s->st;
    if (dim != g->st.dim || has_graph > 1 || rows > ABIS_VS_MAX_ROWS)
        return abis_error_set(s->err, ABIS_E_CRYPTO,
                              "gallery snapshot '%s' holds %u-value vectors, the modality has %zu",
                              io->path, dim, g->st.dim);
    int8_t *q = malloc(g->st.dim);
    if (!q)
        return abis_error_set(s->err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    for (uint64_t r = 0; r < rows && s->st == ABIS_OK; r++) {
        abis_id id, subject;
        float scale = 0;
        get(s, &id, sizeof id);
        get(s, &subject, sizeof subject);
        get(s, &scale, 4);
        get(s, q, g->st.dim);
        if (s->st != ABIS_OK)
            break;
        int64_t slot = io->slot_of(io->ctx, &subject);
        if (slot < 0)
            s->st = abis_error_set(s->err, ABIS_E_NOT_FOUND,
                                   "gallery snapshot '%s' holds a template of a subject the "
                                   "store no longer has (it is rebuilt from the store)",
                                   io->path);
        else if (!isfinite(scale) || scale < 0 ||
                 abis_vstore_add(&g->st, &id, (uint32_t)slot, q, scale) != 0)
            s->st = abis_error_set(s->err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    }
    free(q);
    if (s->st != ABIS_OK || !has_graph)
        return s->st;
    uint32_t m = 0, entry = 0;
    int32_t max_level = 0;
    uint64_t indexed = 0, n_upper = 0;
    get(s, &m, 4);
    get(s, &indexed, 8);
    get(s, &entry, 4);
    get(s, &max_level, 4);
    get(s, &n_upper, 8);
    if (s->st != ABIS_OK)
        return s->st;
    if (m < 2 || m > 1024 || indexed > g->st.n || n_upper > (uint64_t)indexed * 16 * m)
        return abis_error_set(s->err, ABIS_E_CRYPTO, "gallery snapshot '%s' has a malformed index",
                              io->path);
    uint32_t *upper = malloc(sizeof *upper * (n_upper ? n_upper : 1));
    abis_hnsw_params p = {m, g->cfg.ef_construction, (uint64_t)(uintptr_t)g};
    if (!upper || !(g->graph = abis_hnsw_create(&g->st, &p))) {
        free(upper);
        return abis_error_set(s->err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    }
    get(s, upper, n_upper * sizeof *upper);
    s->link_bytes = 2 * (size_t)m * sizeof(uint32_t);
    if (s->st == ABIS_OK &&
        abis_hnsw_load(g->graph, indexed, entry, max_level, upper, n_upper, load_node, s) != 0 &&
        s->st == ABIS_OK)
        s->st = abis_error_set(s->err, ABIS_E_CRYPTO, "gallery snapshot '%s' has a malformed index",
                               io->path);
    free(upper);
    return s->st;
}

abis_status vector_snapshot_load(abis_gallery *base, const abis_snapshot_io *io, abis_error *err)
{
    vgallery *g = (vgallery *)base;
    pthread_rwlock_wrlock(&g->lock);
    abis_status st = ABIS_OK;
    if (g->st.n != 0)
        st = abis_error_set(err, ABIS_E_INTERNAL, "gallery snapshot: the gallery is not empty");
    snap_source s = {NULL, err, ABIS_OK, 0};
    if (st == ABIS_OK && io->head.kind != ABIS_SNAPSHOT_KIND_VECTOR)
        st = abis_error_set(err, ABIS_E_CRYPTO, "gallery snapshot '%s' is not of a vector gallery",
                            io->path);
    if (st == ABIS_OK)
        st = abis_snapshot_open(io->path, io->key, &io->head, &s.r, err);
    if (st == ABIS_OK)
        st = load_body(g, io, &s);
    if (st == ABIS_OK) {
        st = abis_snapshot_finish(s.r, err);
        s.r = NULL;
    }
    abis_snapshot_close(s.r);
    if (st == ABIS_OK) {
        free(g->snap_path);
        g->snap_path = strdup(io->path);
        g->dirty = 0;
    } else {
        abis_hnsw_free(g->graph);
        g->graph = NULL;
        abis_vstore_free(&g->st);
    }
    int work = st == ABIS_OK && vector_needs_work(g);
    pthread_rwlock_unlock(&g->lock);
    if (work)
        vector_kick(g);
    return st;
}
