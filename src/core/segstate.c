/*
 * segstate.c: the in-memory state of one segment -- subject slots, the
 * liveness, consent and lock bitsets, and the galleries -- built from the
 * store when first needed and kept in step by the operations after each commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/engine_internal.h"

void segstate_free(segstate *s)
{
    abis_idmap_free(&s->slots);
    free(s->slot_ids);
    abis_bitset_free(&s->live);
    abis_bitset_free(&s->lock_all);
    for (size_t i = 0; i < s->n_purpose_sets; i++)
        abis_bitset_free(&s->consent[i]);
    free(s->consent);
    for (size_t i = 0; i < s->n_modality_sets; i++) {
        abis_bitset_free(&s->lock_mod[i]);
        abis_gallery_destroy(s->gallery[i]);
    }
    free(s->lock_mod);
    free(s->gallery);
    s->consent = NULL;
    s->lock_mod = NULL;
    s->gallery = NULL;
    s->slot_ids = NULL;
    s->n_purpose_sets = s->n_modality_sets = s->n_slots = s->cap_slots = 0;
    s->loaded = 0;
}

/* Make room for per-purpose and per-modality sets up to the registry's size
 * (purposes and modalities can be added while a segment is loaded). */
static abis_status ensure_sets(segstate *s, size_t n_purposes, size_t n_mods, abis_error *err)
{
    if (n_purposes > s->n_purpose_sets) {
        abis_bitset *n = realloc(s->consent, n_purposes * sizeof *n);
        if (!n)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        memset(n + s->n_purpose_sets, 0, (n_purposes - s->n_purpose_sets) * sizeof *n);
        s->consent = n;
        s->n_purpose_sets = n_purposes;
    }
    if (n_mods > s->n_modality_sets) {
        abis_bitset *l = realloc(s->lock_mod, n_mods * sizeof *l);
        if (!l)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        s->lock_mod = l;
        abis_gallery **g = realloc(s->gallery, n_mods * sizeof *g);
        if (!g)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        s->gallery = g;
        memset(l + s->n_modality_sets, 0, (n_mods - s->n_modality_sets) * sizeof *l);
        memset(g + s->n_modality_sets, 0, (n_mods - s->n_modality_sets) * sizeof *g);
        s->n_modality_sets = n_mods;
    }
    return ABIS_OK;
}

abis_status segstate_add_subject(segstate *s, const abis_id *subject, uint32_t *slot,
                                 abis_error *err)
{
    if (s->n_slots == s->cap_slots) {
        size_t ncap = s->cap_slots ? s->cap_slots * 2 : 1024;
        abis_id *n = realloc(s->slot_ids, ncap * sizeof *n);
        if (!n)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        s->slot_ids = n;
        s->cap_slots = ncap;
    }
    uint32_t at = (uint32_t)s->n_slots;
    if (abis_idmap_put(&s->slots, subject->bytes, at) != 0 || abis_bitset_set(&s->live, at) != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    s->slot_ids[at] = *subject;
    s->n_slots++;
    *slot = at;
    return ABIS_OK;
}

int64_t segstate_slot(const segstate *s, const abis_id *subject)
{
    uint32_t v;
    return abis_idmap_get(&s->slots, subject->bytes, &v) ? (int64_t)v : -1;
}

abis_status segstate_set_consent(segstate *s, size_t purpose_index, uint32_t slot, int granted,
                                 abis_error *err)
{
    if (purpose_index >= s->n_purpose_sets) {
        abis_status st = ensure_sets(s, purpose_index + 1, s->n_modality_sets, err);
        if (st != ABIS_OK)
            return st;
    }
    if (granted) {
        if (abis_bitset_set(&s->consent[purpose_index], slot) != 0)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    } else {
        abis_bitset_clear(&s->consent[purpose_index], slot);
    }
    return ABIS_OK;
}

abis_status segstate_set_lock(segstate *s, size_t mod_index, int all, uint32_t slot, int locked,
                              abis_error *err)
{
    abis_bitset *b;
    if (all) {
        b = &s->lock_all;
    } else {
        if (mod_index >= s->n_modality_sets) {
            abis_status st = ensure_sets(s, s->n_purpose_sets, mod_index + 1, err);
            if (st != ABIS_OK)
                return st;
        }
        b = &s->lock_mod[mod_index];
    }
    if (locked) {
        if (abis_bitset_set(b, slot) != 0)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    } else {
        abis_bitset_clear(b, slot);
    }
    return ABIS_OK;
}

void segstate_remove_subject(segstate *s, const abis_id *subject)
{
    int64_t slot = segstate_slot(s, subject);
    if (slot < 0)
        return;
    abis_bitset_clear(&s->live, (size_t)slot);
    abis_bitset_clear(&s->lock_all, (size_t)slot);
    for (size_t i = 0; i < s->n_purpose_sets; i++)
        abis_bitset_clear(&s->consent[i], (size_t)slot);
    for (size_t i = 0; i < s->n_modality_sets; i++) {
        abis_bitset_clear(&s->lock_mod[i], (size_t)slot);
        if (s->gallery[i])
            s->gallery[i]->ops->remove_slot(s->gallery[i], (uint32_t)slot);
    }
    abis_idmap_del(&s->slots, subject->bytes);
    /* The slot itself is not reused: its bits are clear everywhere. */
}

typedef struct load_ctx {
    abis_engine *e;
    segstate *s;
    abis_error *err;
    abis_status st;
} load_ctx;

static int load_subject(const abis_subject_rec *r, void *ctx)
{
    load_ctx *l = ctx;
    uint32_t slot;
    l->st = segstate_add_subject(l->s, &r->id, &slot, l->err);
    return l->st != ABIS_OK;
}

static int load_consent(const abis_consent_rec *r, void *ctx)
{
    load_ctx *l = ctx;
    size_t pi;
    int64_t slot = segstate_slot(l->s, &r->subject_id);
    if (!r->granted || slot < 0 || !engine_purpose_by_id(l->e, r->purpose_id, &pi))
        return 0;
    l->st = segstate_set_consent(l->s, pi, (uint32_t)slot, 1, l->err);
    return l->st != ABIS_OK;
}

static int load_lock(const abis_lock_rec *r, void *ctx)
{
    load_ctx *l = ctx;
    size_t mi = 0;
    int64_t slot = segstate_slot(l->s, &r->subject_id);
    if (slot < 0 || (r->modality_id != 0 && !engine_modality_by_id(l->e, r->modality_id, &mi)))
        return 0;
    l->st = segstate_set_lock(l->s, mi, r->modality_id == 0, (uint32_t)slot, 1, l->err);
    return l->st != ABIS_OK;
}

abis_status segstate_load(abis_engine *e, segstate *s, abis_error *err)
{
    abis_status st = ensure_sets(s, e->n_purposes, e->n_mods, err);
    if (st != ABIS_OK || s->loaded)
        return st;
    abis_store *store = e->store;
    load_ctx l = {e, s, err, ABIS_OK};
    st = store->ops->subject_scan(store, s->rec.id, load_subject, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    if (st == ABIS_OK)
        st = store->ops->consent_scan_granted(store, s->rec.id, load_consent, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    if (st == ABIS_OK)
        st = store->ops->lock_scan(store, s->rec.id, load_lock, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    if (st != ABIS_OK) {
        segstate_free(s);
        return st;
    }
    s->loaded = 1;
    return ABIS_OK;
}

typedef struct gallery_ctx {
    abis_engine *e;
    segstate *s;
    modality_entry *m;
    abis_gallery *g;
    unsigned char *buf;
    size_t cap;
    abis_error *err;
    abis_status st;
} gallery_ctx;

/* Unseal one stored template and add it to the gallery being built. */
static int load_template(const abis_template_rec *r, void *ctx)
{
    gallery_ctx *l = ctx;
    int64_t slot = segstate_slot(l->s, &r->subject_id);
    if (slot < 0)
        return 0;
    size_t len = 0;
    l->st = engine_unseal_template(l->e, r, l->s->rec.id, l->m, l->buf, l->cap, &len, l->err);
    if (l->st == ABIS_OK)
        l->st = l->g->ops->add(l->g, &r->id, (uint32_t)slot, l->buf, len, l->err);
    return l->st != ABIS_OK;
}

/* ---- gallery snapshots (docs/search.md, "Snapshots") ---------------------------------- */

/* DATA_DIR/galleries/SEGMENT-MODALITY.snap (ids, so renames cannot confuse). */
static void snapshot_path(const abis_engine *e, const segstate *s, const modality_entry *m,
                          char *out, size_t cap)
{
    snprintf(out, cap, "%s/galleries/%lld-%lld.snap", e->data_dir, (long long)s->rec.id,
             (long long)m->rec.id);
}

/* The snapshot key: derived from the segment key (itself from the master
 * key) for the modality.  Wipe after use. */
static void snapshot_key(abis_engine *e, const segstate *s, const modality_entry *m, abis_key *out)
{
    abis_key seg;
    engine_segment_key(e, s->rec.id, &seg);
    abis_key_derive(&seg, "abisSNAP", (uint64_t)m->rec.id, out);
    abis_key_wipe(&seg);
}

/* Operations that never change a gallery's templates: a snapshot stays fresh
 * across them.  Any other successful operation naming the segment (or no
 * segment) makes it stale -- an unknown operation too, so a new operation
 * can cost a rebuild but never a stale answer. */
static int leaves_galleries(const abis_audit_rec *r, const char *segment)
{
    static const char *const same[] = {"verify",        "identify",     "subject.show",
                                       "consent.grant", "consent.withdraw", "lock",
                                       "unlock",        "segment.add",  "purpose.add",
                                       "modality.add",  "modality.calibrate", "dedup.set"};
    if (strcmp(r->outcome, "ok") != 0) /* refused: nothing changed */
        return 1;
    if (r->segment[0] && strcmp(r->segment, segment) != 0)
        return 1;
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        if (strcmp(r->operation, same[i]) == 0)
            return 1;
    return 0;
}

typedef struct fresh_ctx {
    const abis_snapshot_head *h;
    const char *segment;
    int first, fresh;
} fresh_ctx;

static int check_entry(const abis_audit_rec *r, void *arg)
{
    fresh_ctx *c = arg;
    if (c->first) { /* the entry the snapshot was written after: same history? */
        c->first = 0;
        if (r->seq != c->h->audit_seq || memcmp(r->hash, c->h->audit_hash, 32) != 0) {
            c->fresh = 0;
            return 1;
        }
        return 0;
    }
    if (!leaves_galleries(r, c->segment)) {
        c->fresh = 0;
        return 1;
    }
    return 0;
}

/* Does the store still hold exactly what the snapshot reflects?  Its audit
 * log must contain the snapshot's last entry, and every entry since must be
 * one that leaves galleries alone. */
static int snapshot_fresh(abis_engine *e, const segstate *s, const abis_snapshot_head *h)
{
    abis_error ignored;
    abis_audit_rec last;
    abis_status st = e->store->ops->audit_last(e->store, &last, &ignored);
    if (st == ABIS_E_NOT_FOUND)
        return h->audit_seq == 0;
    if (st != ABIS_OK || last.seq < h->audit_seq)
        return 0;
    fresh_ctx c = {h, s->rec.name, h->audit_seq > 0, 1};
    st = e->store->ops->audit_scan(e->store, h->audit_seq > 0 ? h->audit_seq : 1, check_entry, &c,
                                   &ignored);
    return st == ABIS_OK && c.fresh && !c.first;
}

static int64_t slot_of_subject(void *ctx, const abis_id *subject)
{
    return segstate_slot(ctx, subject);
}

static const abis_id *subject_of_slot(void *ctx, uint32_t slot)
{
    return &((const segstate *)ctx)->slot_ids[slot];
}

/* Fill an empty gallery from its snapshot when there is a fresh, intact one;
 * 0 when the store must be scanned instead (a snapshot found stale or
 * damaged is removed, and written anew at close). */
static int snapshot_load(abis_engine *e, segstate *s, const modality_entry *m, abis_gallery *g)
{
    if (!g->ops->snapshot_load)
        return 0;
    char path[sizeof e->data_dir + 64];
    snapshot_path(e, s, m, path, sizeof path);
    abis_snapshot_head h;
    abis_error err;
    abis_status st = abis_snapshot_peek(path, &h, &err);
    if (st == ABIS_E_NOT_FOUND)
        return 0;
    if (st == ABIS_OK && (h.segment_id != s->rec.id || h.modality_id != m->rec.id ||
                          !snapshot_fresh(e, s, &h)))
        st = ABIS_E_NOT_FOUND;
    if (st == ABIS_OK) {
        abis_key key;
        snapshot_key(e, s, m, &key);
        abis_snapshot_io io = {path, &key, h, NULL, slot_of_subject, s};
        st = g->ops->snapshot_load(g, &io, &err);
        abis_key_wipe(&key);
    }
    if (st != ABIS_OK)
        unlink(path);
    return st == ABIS_OK;
}

void segstate_save_snapshots(abis_engine *e, segstate *s)
{
    if (!s->loaded)
        return;
    abis_error ignored;
    abis_audit_rec last;
    memset(&last, 0, sizeof last);
    abis_status st = e->store->ops->audit_last(e->store, &last, &ignored);
    if (st != ABIS_OK && st != ABIS_E_NOT_FOUND)
        return;
    char dir[sizeof e->data_dir + 16];
    snprintf(dir, sizeof dir, "%s/galleries", e->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return;
    for (size_t i = 0; i < s->n_modality_sets; i++) {
        abis_gallery *g = s->gallery[i];
        if (!g || !g->ops->snapshot_save)
            continue;
        char path[sizeof e->data_dir + 64];
        snapshot_path(e, s, &e->mods[i], path, sizeof path);
        abis_key key;
        snapshot_key(e, s, &e->mods[i], &key);
        abis_snapshot_io io = {.path = path,
                               .key = &key,
                               .head = {.segment_id = s->rec.id,
                                        .modality_id = e->mods[i].rec.id,
                                        .audit_seq = last.seq},
                               .subject_of = subject_of_slot,
                               .ctx = s};
        memcpy(io.head.audit_hash, last.hash, 32);
        g->ops->snapshot_save(g, &io, &ignored); /* best effort: the store is the record */
        abis_key_wipe(&key);
    }
}

void segstate_forget_snapshots(abis_engine *e, const segstate *s)
{
    for (size_t i = 0; i < e->n_mods; i++) {
        char path[sizeof e->data_dir + 64];
        snapshot_path(e, s, &e->mods[i], path, sizeof path);
        unlink(path);
    }
}

abis_status segstate_gallery(abis_engine *e, segstate *s, size_t mod_index, abis_gallery **out,
                             abis_error *err)
{
    abis_status st = segstate_load(e, s, err);
    if (st != ABIS_OK)
        return st;
    if (s->gallery[mod_index]) {
        *out = s->gallery[mod_index];
        return ABIS_OK;
    }
    modality_entry *m = &e->mods[mod_index];
    gallery_ctx l = {e, s, m, NULL, NULL, 0, err, ABIS_OK};
    st = m->kind->gallery_create(&m->rec, &l.g, err);
    if (st != ABIS_OK)
        return st;
    if (snapshot_load(e, s, m, l.g)) {
        s->gallery[mod_index] = l.g;
        *out = l.g;
        return ABIS_OK;
    }
    l.cap = ABIS_TEMPLATE_MAX;
    l.buf = malloc(l.cap);
    if (!l.buf)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    if (st == ABIS_OK)
        st = e->store->ops->template_scan(e->store, s->rec.id, m->rec.id, load_template, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    if (l.buf)
        abis_modality_free_template(l.buf, l.cap);
    if (st != ABIS_OK) {
        abis_gallery_destroy(l.g);
        return abis_error_prefix(err, "building the '%s' gallery of segment '%s'", m->rec.name,
                                 s->rec.name);
    }
    s->gallery[mod_index] = l.g;
    *out = l.g;
    return ABIS_OK;
}

abis_status segstate_filter(segstate *s, const abis_purpose_rec *p, size_t purpose_index,
                            size_t mod_index, abis_bitset *out, abis_error *err)
{
    /* Consent bits are set only for live subjects (deletion clears them). */
    const abis_bitset *base = &s->live;
    if (p && p->basis == ABIS_BASIS_CONSENT)
        base = purpose_index < s->n_purpose_sets ? &s->consent[purpose_index] : NULL;
    abis_bitset empty = {0};
    if (abis_bitset_andnot(out, base ? base : &empty, &s->lock_all) != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    if (mod_index < s->n_modality_sets)
        abis_bitset_andnot_inplace(out, &s->lock_mod[mod_index]);
    return ABIS_OK;
}

void engine_grow_segments(abis_engine *e)
{
    for (size_t i = 0; i < e->n_segs; i++) {
        segstate *s = e->segs[i];
        abis_error ignored;
        if (s->loaded && ensure_sets(s, e->n_purposes, e->n_mods, &ignored) != ABIS_OK)
            segstate_free(s); /* rebuilt from the store when next needed */
    }
}

/* Everything a search of mods[0..n) in s needs is in memory. */
static int search_ready(const abis_engine *e, const segstate *s, const size_t *mods, size_t n)
{
    if (!s->loaded || s->n_purpose_sets < e->n_purposes || s->n_modality_sets < e->n_mods)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (mods[i] >= s->n_modality_sets || !s->gallery[mods[i]])
            return 0;
    return 1;
}

abis_status engine_search_ready(abis_engine *e, segstate *s, const size_t *mods, size_t n,
                                abis_error *err)
{
    /* A writer may free a segment between our build and our read lock (only
     * when it ran out of memory): then build again, a bounded number of times. */
    for (int attempt = 0; attempt < 4; attempt++) {
        engine_state_rdlock(e);
        if (search_ready(e, s, mods, n))
            return ABIS_OK;
        engine_state_unlock(e);
        engine_state_wrlock(e);
        abis_status st = segstate_load(e, s, err);
        for (size_t i = 0; st == ABIS_OK && i < n; i++) {
            abis_gallery *g;
            st = segstate_gallery(e, s, mods[i], &g, err);
        }
        engine_state_unlock(e);
        if (st != ABIS_OK)
            return st;
    }
    return abis_error_set(err, ABIS_E_BUSY,
                          "segment '%s' could not be kept in memory (out of memory?)", s->rec.name);
}
