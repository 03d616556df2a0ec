/*
 * engine.c: opening and closing a data directory, the registry (segments,
 * purposes, modalities), the caches of it, and the audit helpers every
 * operation uses.  The operations themselves live in ops_*.c.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writer-preferring state lock */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/engine_internal.h"

int64_t abis_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void abis_id_to_hex(const abis_id *id, char out[ABIS_ID_HEX_LEN + 1])
{
    abis_to_hex(id->bytes, ABIS_ID_BYTES, out);
}

abis_status abis_id_from_hex(const char *hex, abis_id *id, abis_error *err)
{
    if (!hex || abis_from_hex(hex, id->bytes, ABIS_ID_BYTES) != 0)
        return abis_error_set(err, ABIS_E_INVALID,
                              "'%.64s' is not a subject id (expected 32 hex digits)",
                              hex ? hex : "");
    return ABIS_OK;
}

const char *abis_decision_name(abis_decision d)
{
    return d == ABIS_MATCH ? "match" : "no_match";
}

const char *abis_confidence_name(abis_confidence c)
{
    switch (c) {
    case ABIS_CONFIDENCE_HIGH:
        return "high";
    case ABIS_CONFIDENCE_MEDIUM:
        return "medium";
    default:
        return "low";
    }
}

const char *engine_actor(const abis_engine *e, const abis_caller *c)
{
    return (c && c->actor && *c->actor) ? c->actor : e->actor;
}

abis_status engine_check_name(const char *what, const char *name, abis_error *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > ABIS_NAME_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "%s name must be 1 to %d characters", what,
                              ABIS_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 (i > 0 && (ch == '.' || ch == '_' || ch == '-'));
        if (!ok)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s name '%.64s' may hold only a-z, 0-9 and . _ - (not first)",
                                  what, name);
    }
    return ABIS_OK;
}

abis_status engine_refuse_if_read_only(abis_engine *e, abis_error *err)
{
    if (e->read_only)
        return abis_error_set(err, ABIS_E_INVALID, "the store was opened read-only");
    return ABIS_OK;
}

/* ---- audit helpers ------------------------------------------------------- */

abis_status audit_in_txn(abis_engine *e, const abis_caller *c, const audit_event *ev,
                         abis_error *err)
{
    abis_audit_rec r;
    engine_audit_rec(e, c, ev, &r);
    return abis_audit_append(&e->audit, &r, err);
}

abis_status audit_event_write(abis_engine *e, const abis_caller *c, const audit_event *ev,
                              abis_error *err)
{
    return engine_audit_group(e, c, ev, 1, err);
}

abis_status audit_refusal(abis_engine *e, const abis_caller *c, const char *operation,
                          const char *segment, const abis_id *subject, const char *purpose,
                          abis_error *err)
{
    char hex[ABIS_ID_HEX_LEN + 1] = "";
    if (subject)
        abis_id_to_hex(subject, hex);
    abis_status status = err ? err->status : ABIS_E_INTERNAL;
    audit_event ev = {
        .operation = operation,
        .segment = segment,
        .subject = hex,
        .purpose = purpose,
        .outcome = abis_status_name(status),
        .detail = err ? err->message : NULL,
    };
    abis_error ignored;
    /* A refusal is returned even if writing its audit entry fails: the caller
     * must learn why it was refused; the store's own error is in the log. */
    audit_event_write(e, c, &ev, &ignored);
    return status;
}

/* ---- locks ------------------------------------------------------------------ */

void engine_locks_init(abis_engine *e)
{
    pthread_mutex_init(&e->write_mu, NULL);
    pthread_mutex_init(&e->clients_mu, NULL);
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* Writers first: a steady stream of searches must not starve the brief
     * memory updates after a commit.  (Non-recursive: no thread takes the
     * read lock twice.) */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&e->state, &a);
    pthread_rwlockattr_destroy(&a);
    auditq_init(&e->auditq);
}

void engine_locks_destroy(abis_engine *e)
{
    auditq_destroy(&e->auditq);
    pthread_rwlock_destroy(&e->state);
    pthread_mutex_destroy(&e->clients_mu);
    pthread_mutex_destroy(&e->write_mu);
}

void engine_state_rdlock(abis_engine *e)
{
    pthread_rwlock_rdlock(&e->state);
}

void engine_state_wrlock(abis_engine *e)
{
    pthread_rwlock_wrlock(&e->state);
}

void engine_state_unlock(abis_engine *e)
{
    pthread_rwlock_unlock(&e->state);
}

/* ---- registry caches ----------------------------------------------------- */

modality_entry *engine_modality(abis_engine *e, const char *name, size_t *index)
{
    for (size_t i = 0; name && i < e->n_mods; i++)
        if (strcmp(e->mods[i].rec.name, name) == 0) {
            if (index)
                *index = i;
            return &e->mods[i];
        }
    return NULL;
}

modality_entry *engine_modality_by_id(abis_engine *e, int64_t id, size_t *index)
{
    for (size_t i = 0; i < e->n_mods; i++)
        if (e->mods[i].rec.id == id) {
            if (index)
                *index = i;
            return &e->mods[i];
        }
    return NULL;
}

abis_purpose_rec *engine_purpose(abis_engine *e, const char *name, size_t *index)
{
    for (size_t i = 0; name && i < e->n_purposes; i++)
        if (strcmp(e->purposes[i].name, name) == 0) {
            if (index)
                *index = i;
            return &e->purposes[i];
        }
    return NULL;
}

abis_purpose_rec *engine_purpose_by_id(abis_engine *e, int64_t id, size_t *index)
{
    for (size_t i = 0; i < e->n_purposes; i++)
        if (e->purposes[i].id == id) {
            if (index)
                *index = i;
            return &e->purposes[i];
        }
    return NULL;
}

segstate *engine_segment(abis_engine *e, const char *name)
{
    for (size_t i = 0; name && i < e->n_segs; i++)
        if (strcmp(e->segs[i]->rec.name, name) == 0)
            return e->segs[i];
    return NULL;
}

segstate *engine_segment_by_id(abis_engine *e, int64_t id)
{
    for (size_t i = 0; i < e->n_segs; i++)
        if (e->segs[i]->rec.id == id)
            return e->segs[i];
    return NULL;
}

static int cache_modality(const abis_modality_rec *r, void *ctx);

typedef struct load_ctx {
    abis_engine *e;
    abis_error *err;
    abis_status st;
} load_ctx;

/* A modality's calibration: the stored one, or its kind's default. */
static abis_status load_calibration(abis_engine *e, const abis_modality_rec *r,
                                    const abis_modality_kind *kind, abis_calibration **out,
                                    abis_error *err)
{
    char *json = NULL;
    char def[ABIS_DEFAULT_CALIBRATION_MAX];
    abis_status st = e->store->ops->calibration_get(e->store, r->id, &json, err);
    if (st == ABIS_E_NOT_FOUND) {
        kind->default_calibration(r, def, sizeof def);
        st = ABIS_OK;
    }
    if (st != ABIS_OK)
        return st;
    st = abis_calibration_parse(json ? json : def, out, err);
    free(json);
    if (st != ABIS_OK)
        return abis_error_prefix(err, "calibration of modality '%s'", r->name);
    return ABIS_OK;
}

/* Add a modality to the cache with its calibration (stored, or the kind's default). */
static abis_status add_modality_entry(abis_engine *e, const abis_modality_rec *r, abis_error *err)
{
    const abis_modality_kind *kind = abis_modality_kind_find(r->kind);
    if (!kind)
        return abis_error_set(err, ABIS_E_STORE,
                              "modality '%s' has kind '%s', which this OpenABIS does not know",
                              r->name, r->kind);
    abis_calibration *calib = NULL;
    abis_status st = load_calibration(e, r, kind, &calib, err);
    if (st != ABIS_OK)
        return st;
    modality_entry *n = realloc(e->mods, (e->n_mods + 1) * sizeof *n);
    if (!n) {
        abis_calibration_free(calib);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    }
    e->mods = n;
    e->mods[e->n_mods].rec = *r;
    e->mods[e->n_mods].kind = kind;
    e->mods[e->n_mods].calib = calib;
    e->n_mods++;
    return ABIS_OK;
}

/* The cache_* callbacks add what the cache lacks (all of it at open; what
 * another process added, at engine_registry_sync) and refresh what may
 * change (a modality's calibration). */
static int cache_modality(const abis_modality_rec *r, void *ctx)
{
    load_ctx *l = ctx;
    modality_entry *m = engine_modality_by_id(l->e, r->id, NULL);
    abis_calibration *calib = NULL;
    if (!m) {
        l->st = add_modality_entry(l->e, r, l->err);
    } else if ((l->st = load_calibration(l->e, &m->rec, m->kind, &calib, l->err)) == ABIS_OK) {
        abis_calibration_free(m->calib);
        m->calib = calib;
    }
    return l->st != ABIS_OK;
}

static abis_status add_purpose_entry(abis_engine *e, const abis_purpose_rec *r, abis_error *err)
{
    abis_purpose_rec *n = realloc(e->purposes, (e->n_purposes + 1) * sizeof *n);
    if (!n)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    e->purposes = n;
    e->purposes[e->n_purposes++] = *r;
    return ABIS_OK;
}

static int cache_purpose(const abis_purpose_rec *r, void *ctx)
{
    load_ctx *l = ctx;
    if (!engine_purpose_by_id(l->e, r->id, NULL))
        l->st = add_purpose_entry(l->e, r, l->err);
    return l->st != ABIS_OK;
}

static abis_status add_segment_entry(abis_engine *e, const abis_segment_rec *r, abis_error *err)
{
    segstate **n = realloc(e->segs, (e->n_segs + 1) * sizeof *n);
    if (!n)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    e->segs = n;
    segstate *s = calloc(1, sizeof *s);
    if (!s)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    s->rec = *r;
    e->segs[e->n_segs++] = s;
    return ABIS_OK;
}

static int cache_segment(const abis_segment_rec *r, void *ctx)
{
    load_ctx *l = ctx;
    if (!engine_segment_by_id(l->e, r->id))
        l->st = add_segment_entry(l->e, r, l->err);
    return l->st != ABIS_OK;
}

static abis_status load_registry(abis_engine *e, abis_error *err)
{
    load_ctx l = {e, err, ABIS_OK};
    abis_store *s = e->store;
    abis_status st = s->ops->modality_list(s, cache_modality, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    if (st == ABIS_OK)
        st = s->ops->purpose_list(s, cache_purpose, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    if (st == ABIS_OK)
        st = s->ops->segment_list(s, cache_segment, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    if (st != ABIS_OK)
        return st;
    char buf[64];
    e->dedup_fmr = ABIS_DEFAULT_DEDUP_FMR;
    if (s->ops->meta_get(s, "dedup_fmr", buf, sizeof buf, NULL) == ABIS_OK) {
        double v = strtod(buf, NULL);
        if (v > 0 && v < 1)
            e->dedup_fmr = v;
    }
    return ABIS_OK;
}

/* The meta setting "registry_version": a counter every registry change
 * increments in its transaction (0 when never set). */
static int64_t registry_version(abis_engine *e)
{
    char buf[32];
    if (e->store->ops->meta_get(e->store, "registry_version", buf, sizeof buf, NULL) != ABIS_OK)
        return 0;
    return strtoll(buf, NULL, 10);
}

/* Inside a registry write's transaction. */
static abis_status registry_bump(abis_engine *e, abis_error *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)(registry_version(e) + 1));
    return e->store->ops->meta_set(e->store, "registry_version", buf, err);
}

abis_status engine_registry_sync(abis_engine *e, abis_error *err)
{
    int64_t v = registry_version(e);
    if (v == e->registry_version)
        return ABIS_OK;
    pthread_mutex_lock(&e->write_mu);
    abis_status st = ABIS_OK;
    if (v != e->registry_version) {
        engine_state_wrlock(e);
        st = load_registry(e, err);
        engine_grow_segments(e);
        engine_state_unlock(e);
        if (st == ABIS_OK)
            e->registry_version = v;
    }
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

/* Look a subject up and its segment; NOT_FOUND says "no such subject". */
abis_status engine_find_subject(abis_engine *e, const abis_id *subject, abis_subject_rec *r,
                                segstate **seg, abis_error *err)
{
    if (!subject)
        return abis_error_set(err, ABIS_E_INVALID, "no subject given");
    abis_status st = e->store->ops->subject_get(e->store, subject, r, err);
    if (st == ABIS_E_NOT_FOUND)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no such subject");
    if (st != ABIS_OK)
        return st;
    *seg = engine_segment_by_id(e, r->segment_id);
    if (!*seg)
        return abis_error_set(err, ABIS_E_INTERNAL, "subject's segment is not in the registry");
    return ABIS_OK;
}

/* ---- keys ---------------------------------------------------------------- */

void engine_template_ad(const abis_id *subject, const abis_id *tmpl, unsigned char ad[32])
{
    memcpy(ad, subject->bytes, ABIS_ID_BYTES);
    memcpy(ad + ABIS_ID_BYTES, tmpl->bytes, ABIS_ID_BYTES);
}

void engine_segment_key(abis_engine *e, int64_t segment_id, abis_key *out)
{
    abis_key_derive(&e->master, "abisSEGK", (uint64_t)segment_id, out);
}

abis_status engine_subject_key(abis_engine *e, const abis_id *subject, int64_t segment_id,
                               abis_key *out, abis_error *err)
{
    unsigned char wrapped[ABIS_WRAPPED_KEY_BYTES];
    size_t len = 0;
    abis_status st = e->store->ops->key_get(e->store, subject, wrapped, sizeof wrapped, &len, err);
    if (st == ABIS_E_NOT_FOUND)
        return abis_error_set(err, ABIS_E_CRYPTO, "the data key of this subject is missing");
    if (st != ABIS_OK)
        return st;
    if (len != ABIS_WRAPPED_KEY_BYTES)
        return abis_error_set(err, ABIS_E_CRYPTO, "the data key of this subject is corrupt");
    abis_key seg;
    engine_segment_key(e, segment_id, &seg);
    st = abis_unseal(&seg, wrapped, len, subject->bytes, ABIS_ID_BYTES, out->bytes, err);
    abis_key_wipe(&seg);
    return st;
}

abis_status engine_unseal_template(abis_engine *e, const abis_template_rec *r, int64_t segment_id,
                                   const modality_entry *m, unsigned char *buf, size_t cap,
                                   size_t *len, abis_error *err)
{
    if (r->sealed_len <= ABIS_SEAL_OVERHEAD || r->sealed_len - ABIS_SEAL_OVERHEAD > cap)
        return abis_error_set(err, ABIS_E_STORE, "a stored '%s' template has a bad size",
                              m->rec.name);
    *len = r->sealed_len - ABIS_SEAL_OVERHEAD;
    abis_key k;
    unsigned char ad[32];
    engine_template_ad(&r->subject_id, &r->id, ad);
    abis_status st = engine_subject_key(e, &r->subject_id, segment_id, &k, err);
    if (st == ABIS_OK)
        st = abis_unseal(&k, r->sealed, r->sealed_len, ad, sizeof ad, buf, err);
    abis_key_wipe(&k);
    if (st == ABIS_OK && !m->kind->canonical_ok(&m->rec, buf, *len))
        st = abis_error_set(err, ABIS_E_STORE, "a stored '%s' template is malformed", m->rec.name);
    return st;
}

/* ---- init, open, close --------------------------------------------------- */

static void engine_free(abis_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_segs; i++) {
        segstate_free(e->segs[i]);
        free(e->segs[i]);
    }
    free(e->segs);
    for (size_t i = 0; i < e->n_mods; i++)
        abis_calibration_free(e->mods[i].calib);
    free(e->mods);
    free(e->purposes);
    engine_clients_free(e);
    abis_audit_wipe(&e->audit);
    abis_store_close(e->store);
    abis_key_wipe(&e->master);
    engine_locks_destroy(e);
    free(e);
}

/* Write the key check value, audit public key and defaults into a new store. */
static abis_status init_meta(abis_store *s, const abis_key *master, abis_error *err)
{
    unsigned char kcv[ABIS_KCV_BYTES], pk[ABIS_SIGN_PK_BYTES], sk[ABIS_SIGN_SK_BYTES];
    char hex[2 * ABIS_KCV_BYTES + 1];
    abis_key_check_value(master, kcv);
    abis_to_hex(kcv, sizeof kcv, hex);
    abis_status st = s->ops->meta_set(s, "key_check", hex, err);
    abis_sign_keypair(master, pk, sk);
    sodium_memzero(sk, sizeof sk);
    abis_to_hex(pk, sizeof pk, hex);
    if (st == ABIS_OK)
        st = s->ops->meta_set(s, "audit_public_key", hex, err);
    return st;
}

abis_status abis_store_init(const char *data_dir, abis_error *err)
{
    abis_status st = abis_crypto_init(err);
    if (st != ABIS_OK)
        return st;
    if (!data_dir || !*data_dir)
        return abis_error_set(err, ABIS_E_INVALID, "no data directory given");
    char path[4200];
    /* mkdir -p: parents with the default mode, the data directory itself 0700. */
    snprintf(path, sizeof path, "%s", data_dir);
    for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return abis_error_set(err, ABIS_E_IO, "cannot create directory %s: %s", path,
                                  strerror(errno));
        *slash = '/';
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return abis_error_set(err, ABIS_E_IO, "cannot create data directory %s: %s", data_dir,
                              strerror(errno));
    snprintf(path, sizeof path, "%s/abis.db", data_dir);
    if (access(path, F_OK) == 0)
        return abis_error_set(err, ABIS_E_EXISTS, "%s already holds a store (%s)", data_dir, path);
    const char *env = getenv("ABIS_MASTER_KEY");
    int created_key = 0;
    snprintf(path, sizeof path, "%s/master.key", data_dir);
    if (!(env && *env) && access(path, F_OK) != 0) {
        st = abis_master_key_create(path, err);
        if (st != ABIS_OK)
            return st;
        created_key = 1;
    }
    abis_key master;
    st = abis_master_key_load(data_dir, NULL, &master, err);
    abis_store *s = NULL;
    if (st == ABIS_OK)
        st = abis_store_sqlite_open(data_dir, 1, 0, &s, err);
    if (st == ABIS_OK) {
        st = s->ops->begin(s, err);
        if (st == ABIS_OK)
            st = init_meta(s, &master, err);
        if (st == ABIS_OK) {
            abis_audit a;
            abis_audit_init(&a, s, &master);
            abis_audit_rec r;
            memset(&r, 0, sizeof r);
            snprintf(r.actor, sizeof r.actor, "operator");
            snprintf(r.operation, sizeof r.operation, "store.init");
            snprintf(r.outcome, sizeof r.outcome, "ok");
            st = abis_audit_append(&a, &r, err);
            if (st == ABIS_OK)
                st = s->ops->commit(s, err);
            if (st == ABIS_OK)
                st = abis_audit_seal(&a, err);
            abis_audit_wipe(&a);
        }
        if (st != ABIS_OK)
            s->ops->rollback(s);
        abis_store_close(s);
    }
    abis_key_wipe(&master);
    if (st != ABIS_OK && created_key)
        unlink(path);
    return st;
}

abis_status abis_engine_open(const abis_open_options *opts, abis_engine **out, abis_error *err)
{
    *out = NULL;
    abis_status st = abis_crypto_init(err);
    if (st != ABIS_OK)
        return st;
    if (!opts || !opts->data_dir || !*opts->data_dir)
        return abis_error_set(err, ABIS_E_INVALID, "no data directory given");
    abis_engine *e = calloc(1, sizeof *e);
    if (!e)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    engine_locks_init(e);
    snprintf(e->data_dir, sizeof e->data_dir, "%s", opts->data_dir);
    snprintf(e->actor, sizeof e->actor, "%s", opts->actor ? opts->actor : "operator");
    e->read_only = opts->read_only;

    st = abis_store_sqlite_open(opts->data_dir, 0, opts->read_only, &e->store, err);
    if (st == ABIS_OK)
        st = abis_master_key_load(opts->data_dir, opts->master_key_hex, &e->master, err);
    if (st == ABIS_OK) {
        /* The key check comes before anything is written: a wrong key changes nothing. */
        char stored[2 * ABIS_KCV_BYTES + 1], mine[2 * ABIS_KCV_BYTES + 1];
        unsigned char kcv[ABIS_KCV_BYTES];
        st = e->store->ops->meta_get(e->store, "key_check", stored, sizeof stored, err);
        if (st == ABIS_E_NOT_FOUND)
            st = abis_error_set(err, ABIS_E_STORE,
                                "store in %s has no key check value: it was not created by "
                                "'abis init' or is damaged",
                                opts->data_dir);
        abis_key_check_value(&e->master, kcv);
        abis_to_hex(kcv, sizeof kcv, mine);
        if (st == ABIS_OK && strcmp(stored, mine) != 0)
            st = abis_error_set(err, ABIS_E_CRYPTO,
                                "the master key does not open the store in %s (wrong key file "
                                "or ABIS_MASTER_KEY); nothing was changed",
                                opts->data_dir);
    }
    if (st == ABIS_OK && !opts->read_only)
        st = e->store->ops->migrate(e->store, err);
    if (st == ABIS_OK) {
        abis_audit_init(&e->audit, e->store, &e->master);
        e->registry_version = registry_version(e);
        st = load_registry(e, err);
    }
    if (st == ABIS_OK && !opts->read_only)
        st = engine_finish_pending_delete(e, err);
    if (st != ABIS_OK) {
        engine_free(e);
        return st;
    }
    *out = e;
    return ABIS_OK;
}

void abis_engine_close(abis_engine *e)
{
    if (!e)
        return;
    if (!e->read_only) {
        abis_error ignored;
        abis_audit_seal(&e->audit, &ignored);
        for (size_t i = 0; i < e->n_segs; i++)
            if (e->segs[i])
                segstate_save_snapshots(e, e->segs[i]);
    }
    engine_free(e);
}

/* ---- registry operations ------------------------------------------------- */

abis_status engine_write_audited(abis_engine *e, const abis_caller *c, engine_write_fn write,
                                 void *arg, const audit_event *ev, abis_error *err)
{
    abis_store *s = e->store;
    abis_status st = s->ops->begin(s, err);
    if (st != ABIS_OK)
        return st;
    st = write(e, arg, err);
    if (st == ABIS_OK)
        st = audit_in_txn(e, c, ev, err);
    if (st == ABIS_OK)
        st = s->ops->commit(s, err);
    if (st != ABIS_OK)
        s->ops->rollback(s);
    return st;
}

static abis_status write_segment_add(abis_engine *e, void *arg, abis_error *err)
{
    abis_status st = e->store->ops->segment_add(e->store, arg, err);
    return st == ABIS_OK ? registry_bump(e, err) : st;
}

static abis_status write_purpose_add(abis_engine *e, void *arg, abis_error *err)
{
    abis_status st = e->store->ops->purpose_add(e->store, arg, err);
    return st == ABIS_OK ? registry_bump(e, err) : st;
}

static abis_status write_modality_add(abis_engine *e, void *arg, abis_error *err)
{
    abis_status st = e->store->ops->modality_add(e->store, arg, err);
    return st == ABIS_OK ? registry_bump(e, err) : st;
}

typedef struct calib_arg {
    int64_t modality_id;
    const char *json;
} calib_arg;

static abis_status write_calibration(abis_engine *e, void *arg, abis_error *err)
{
    calib_arg *a = arg;
    abis_status st = e->store->ops->calibration_set(e->store, a->modality_id, a->json, err);
    return st == ABIS_OK ? registry_bump(e, err) : st;
}

typedef struct meta_arg {
    const char *key, *value;
} meta_arg;

static abis_status write_meta(abis_engine *e, void *arg, abis_error *err)
{
    meta_arg *a = arg;
    abis_status st = e->store->ops->meta_set(e->store, a->key, a->value, err);
    return st == ABIS_OK ? registry_bump(e, err) : st;
}

abis_status abis_segment_add(abis_engine *e, const abis_caller *c, const char *name,
                             abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    abis_segment_rec r = {0};
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK)
        st = engine_check_name("segment", name, err);
    if (st == ABIS_OK && engine_segment(e, name))
        st = abis_error_set(err, ABIS_E_EXISTS, "segment '%s' already exists", name);
    if (st == ABIS_OK) {
        snprintf(r.name, sizeof r.name, "%s", name);
        r.created_at = abis_now_ms();
        audit_event ev = {.operation = "segment.add", .segment = name};
        st = engine_write_audited(e, c, write_segment_add, &r, &ev, err);
    }
    if (st == ABIS_OK) {
        engine_state_wrlock(e);
        st = add_segment_entry(e, &r, err);
        if (st == ABIS_OK)
            engine_grow_segments(e);
        engine_state_unlock(e);
    } else
        audit_refusal(e, c, "segment.add", NULL, NULL, NULL, err);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_segment_list(abis_engine *e, abis_segment_cb cb, void *ctx, abis_error *err)
{
    engine_state_rdlock(e);
    abis_status st = ABIS_OK;
    for (size_t i = 0; i < e->n_segs && st == ABIS_OK; i++) {
        abis_segment_info info = {0};
        snprintf(info.name, sizeof info.name, "%s", e->segs[i]->rec.name);
        info.created_at = e->segs[i]->rec.created_at;
        uint64_t n = 0;
        st = e->store->ops->subject_count(e->store, e->segs[i]->rec.id, &n, err);
        info.subjects = n;
        if (st == ABIS_OK && cb(&info, ctx))
            break;
    }
    engine_state_unlock(e);
    return st;
}

abis_status abis_purpose_add(abis_engine *e, const abis_caller *c, const abis_purpose_def *def,
                             abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    abis_purpose_rec r;
    memset(&r, 0, sizeof r);
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK && !def)
        st = abis_error_set(err, ABIS_E_INVALID, "no purpose given");
    if (st == ABIS_OK)
        st = engine_check_name("purpose", def->name, err);
    if (st == ABIS_OK && def->basis != ABIS_BASIS_CONSENT && def->basis != ABIS_BASIS_STATUTORY)
        st = abis_error_set(err, ABIS_E_INVALID,
                            "purpose '%s': legal basis must be consent or "
                            "statutory",
                            def->name);
    if (st == ABIS_OK && !(def->target_fmr > 0 && def->target_fmr < 1))
        st = abis_error_set(err, ABIS_E_INVALID,
                            "purpose '%s': target false match rate %g must be above 0 and "
                            "below 1 (e.g. 1e-4)",
                            def->name, def->target_fmr);
    if (st == ABIS_OK && def->basis == ABIS_BASIS_STATUTORY && !(def->legal_ref && *def->legal_ref))
        st = abis_error_set(err, ABIS_E_INVALID,
                            "statutory purpose '%s' needs the law that allows it (legal "
                            "reference)",
                            def->name);
    if (st == ABIS_OK && engine_purpose(e, def->name, NULL))
        st = abis_error_set(err, ABIS_E_EXISTS, "purpose '%s' already exists", def->name);
    if (st == ABIS_OK) {
        snprintf(r.name, sizeof r.name, "%s", def->name);
        r.basis = def->basis;
        r.target_fmr = def->target_fmr;
        snprintf(r.legal_ref, sizeof r.legal_ref, "%s", def->legal_ref ? def->legal_ref : "");
        snprintf(r.description, sizeof r.description, "%s",
                 def->description ? def->description : "");
        r.created_at = abis_now_ms();
        audit_event ev = {.operation = "purpose.add",
                          .purpose = def->name,
                          .detail = r.basis == ABIS_BASIS_STATUTORY ? "statutory" : "consent"};
        st = engine_write_audited(e, c, write_purpose_add, &r, &ev, err);
    }
    if (st == ABIS_OK) {
        engine_state_wrlock(e);
        st = add_purpose_entry(e, &r, err);
        if (st == ABIS_OK)
            engine_grow_segments(e);
        engine_state_unlock(e);
    } else
        audit_refusal(e, c, "purpose.add", NULL, NULL, NULL, err);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_purpose_list(abis_engine *e, abis_purpose_cb cb, void *ctx, abis_error *err)
{
    (void)err;
    engine_state_rdlock(e);
    for (size_t i = 0; i < e->n_purposes; i++) {
        const abis_purpose_rec *r = &e->purposes[i];
        abis_purpose_info info;
        memset(&info, 0, sizeof info);
        snprintf(info.name, sizeof info.name, "%s", r->name);
        info.basis = r->basis;
        info.target_fmr = r->target_fmr;
        snprintf(info.legal_ref, sizeof info.legal_ref, "%s", r->legal_ref);
        snprintf(info.description, sizeof info.description, "%s", r->description);
        info.created_at = r->created_at;
        if (cb(&info, ctx))
            break;
    }
    engine_state_unlock(e);
    return ABIS_OK;
}

abis_status abis_modality_add(abis_engine *e, const abis_caller *c, const char *name,
                              const char *kind_name, int dim, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    abis_modality_rec r;
    memset(&r, 0, sizeof r);
    const abis_modality_kind *kind = abis_modality_kind_find(kind_name);
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK)
        st = engine_check_name("modality", name, err);
    if (st == ABIS_OK && !kind)
        st = abis_error_set(err, ABIS_E_INVALID, "modality kind '%.32s' is unknown (known: %s)",
                            kind_name ? kind_name : "", abis_modality_kind_names());
    if (st == ABIS_OK) {
        snprintf(r.name, sizeof r.name, "%s", name);
        snprintf(r.kind, sizeof r.kind, "%s", kind->kind);
        /* A kind of fixed size needs no dimension from the operator. */
        r.dim = kind->fixed_dim && dim == 0 ? kind->fixed_dim : dim;
        r.created_at = abis_now_ms();
        st = kind->check_def(&r, err);
    }
    if (st == ABIS_OK && engine_modality(e, name, NULL))
        st = abis_error_set(err, ABIS_E_EXISTS, "modality '%s' already exists", name);
    if (st == ABIS_OK) {
        audit_event ev = {.operation = "modality.add", .detail = name};
        st = engine_write_audited(e, c, write_modality_add, &r, &ev, err);
    }
    if (st == ABIS_OK) {
        engine_state_wrlock(e);
        st = add_modality_entry(e, &r, err);
        if (st == ABIS_OK)
            engine_grow_segments(e);
        engine_state_unlock(e);
    } else
        audit_refusal(e, c, "modality.add", NULL, NULL, NULL, err);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_modality_list(abis_engine *e, abis_modality_cb cb, void *ctx, abis_error *err)
{
    (void)err;
    engine_state_rdlock(e);
    for (size_t i = 0; i < e->n_mods; i++) {
        abis_modality_info info;
        memset(&info, 0, sizeof info);
        snprintf(info.name, sizeof info.name, "%s", e->mods[i].rec.name);
        snprintf(info.kind, sizeof info.kind, "%s", e->mods[i].rec.kind);
        info.dim = e->mods[i].rec.dim;
        snprintf(info.calibration, sizeof info.calibration, "%s",
                 abis_calibration_model(e->mods[i].calib));
        info.created_at = e->mods[i].rec.created_at;
        if (cb(&info, ctx))
            break;
    }
    engine_state_unlock(e);
    return ABIS_OK;
}

abis_status abis_modality_set_calibration(abis_engine *e, const abis_caller *c, const char *name,
                                          const char *json, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    abis_calibration *calib = NULL;
    modality_entry *m = engine_modality(e, name, NULL);
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK && !m)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "modality '%.64s' does not exist",
                            name ? name : "");
    if (st == ABIS_OK)
        st = abis_calibration_parse(json ? json : "", &calib, err);
    if (st == ABIS_OK) {
        audit_event ev = {.operation = "modality.calibrate",
                          .detail = abis_calibration_model(calib)};
        calib_arg arg = {m->rec.id, json};
        st = engine_write_audited(e, c, write_calibration, &arg, &ev, err);
    }
    if (st == ABIS_OK) {
        engine_state_wrlock(e);
        abis_calibration *old = m->calib;
        m->calib = calib;
        engine_state_unlock(e);
        abis_calibration_free(old);
    } else {
        abis_calibration_free(calib);
        audit_refusal(e, c, "modality.calibrate", NULL, NULL, NULL, err);
    }
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_modality_get_calibration(abis_engine *e, const char *name, char **json,
                                          abis_error *err)
{
    engine_state_rdlock(e);
    *json = NULL;
    modality_entry *m = engine_modality(e, name, NULL);
    abis_status st = ABIS_OK;
    if (!m)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "modality '%.64s' does not exist",
                            name ? name : "");
    if (st == ABIS_OK) {
        st = e->store->ops->calibration_get(e->store, m->rec.id, json, err);
        if (st == ABIS_E_NOT_FOUND) {
            enum { CAP = ABIS_DEFAULT_CALIBRATION_MAX };
            st = (*json = malloc(CAP)) ? ABIS_OK
                                       : abis_error_set(err, ABIS_E_NOMEM, "out of memory");
            if (st == ABIS_OK)
                m->kind->default_calibration(&m->rec, *json, CAP);
        }
    }
    engine_state_unlock(e);
    return st;
}

abis_status abis_dedup_set_fmr(abis_engine *e, const abis_caller *c, double fmr, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", fmr);
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK && !(fmr > 0 && fmr < 1))
        st = abis_error_set(err, ABIS_E_INVALID,
                            "dedup false match rate %g must be above 0 and below 1", fmr);
    if (st == ABIS_OK) {
        audit_event ev = {.operation = "dedup.set", .detail = buf};
        meta_arg arg = {"dedup_fmr", buf};
        st = engine_write_audited(e, c, write_meta, &arg, &ev, err);
    }
    if (st == ABIS_OK) {
        engine_state_wrlock(e);
        e->dedup_fmr = fmr;
        engine_state_unlock(e);
    } else
        audit_refusal(e, c, "dedup.set", NULL, NULL, NULL, err);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_gallery_list(abis_engine *e, abis_gallery_cb cb, void *ctx, abis_error *err)
{
    (void)err;
    engine_state_rdlock(e);
    int stop = 0;
    for (size_t i = 0; i < e->n_segs && !stop; i++) {
        segstate *s = e->segs[i];
        for (size_t m = 0; m < s->n_modality_sets && m < e->n_mods && !stop; m++) {
            if (!s->gallery[m])
                continue;
            abis_gallery_info info;
            memset(&info, 0, sizeof info);
            snprintf(info.segment, sizeof info.segment, "%s", s->rec.name);
            snprintf(info.modality, sizeof info.modality, "%s", e->mods[m].rec.name);
            info.templates = s->gallery[m]->ops->count(s->gallery[m]);
            stop = cb(&info, ctx);
        }
    }
    engine_state_unlock(e);
    return ABIS_OK;
}

abis_status abis_gallery_warm(abis_engine *e, abis_error *err)
{
    engine_state_rdlock(e);
    size_t n_segs = e->n_segs, n_mods = e->n_mods;
    segstate **segs = malloc((n_segs ? n_segs : 1) * sizeof *segs);
    size_t *mods = malloc((n_mods ? n_mods : 1) * sizeof *mods);
    if (segs && mods) {
        if (n_segs) /* segstates live as long as e */
            memcpy(segs, e->segs, n_segs * sizeof *segs);
        for (size_t m = 0; m < n_mods; m++)
            mods[m] = m;
    }
    engine_state_unlock(e);
    abis_status st = segs && mods ? ABIS_OK : abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    for (size_t i = 0; st == ABIS_OK && i < n_segs; i++)
        if ((st = engine_search_ready(e, segs[i], mods, n_mods, 0, err)) == ABIS_OK)
            engine_state_unlock(e);
    free(segs);
    free(mods);
    return st;
}

/* ---- audit operations ---------------------------------------------------- */

abis_status abis_audit_verify(abis_engine *e, abis_audit_report *report, abis_error *err)
{
    engine_state_rdlock(e);
    abis_status st = abis_audit_check(&e->audit, e->audit.pk, report, err);
    engine_state_unlock(e);
    return st;
}

abis_status abis_audit_export(abis_engine *e, FILE *out, abis_error *err)
{
    engine_state_rdlock(e);
    abis_status st = abis_audit_write_jsonl(&e->audit, out, err);
    engine_state_unlock(e);
    return st;
}

abis_status abis_audit_public_key(abis_engine *e, char out[65], abis_error *err)
{
    (void)err;
    abis_to_hex(e->audit.pk, ABIS_SIGN_PK_BYTES, out);
    return ABIS_OK;
}
