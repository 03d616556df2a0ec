/*
 * client.c: relying parties (abis/client.h).  Registering them, their API
 * keys (only a keyed hash is stored), authenticating a request, and every
 * operation a client makes: the engine checks the client's operations,
 * rights, segments and purposes here, maps the client's pseudonyms to
 * subjects and back, hides scores from clients without the raw-scores right,
 * and remembers idempotent writes -- then hands the call to the same
 * operation the operator uses (ops_*.c), so that policy on subjects
 * (consent, locks, deduplication) is decided in one place.
 *
 * The client cache (e->clients) mirrors the clients table.  Another process
 * (the `abis` command) may add, rotate or revoke clients while a server
 * runs: every such change bumps the meta setting "clients_version" in its
 * transaction, and authentication reloads the cache when that changed.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/engine_internal.h"

/* Idempotency keys are remembered a day unless the caller says otherwise. */
#define IDEM_TTL_DEFAULT_S (24 * 3600)

struct abis_client {
    int64_t id;
    char name[ABIS_NAME_MAX + 1];
    char actor[ABIS_TEXT_MAX + 1]; /* "client:NAME" */
    uint32_t operations, rights;
    double rate_limit;
    abis_key pseudonym;
    int64_t *segments, *purposes; /* point into the same allocation */
    size_t n_segments, n_purposes;
};

/* ---- names of operations and rights ----------------------------------------- */

static const char *const op_names[] = {"enroll", "templates", "verify", "identify"};
static const char *const right_names[] = {"raw_scores", "subject_management"};

abis_status abis_client_flags_parse(const char *csv, int rights, uint32_t *out, abis_error *err)
{
    const char *const *names = rights ? right_names : op_names;
    size_t n_names = rights ? 2 : 4;
    const char *what = rights ? "right" : "operation";
    *out = 0;
    if (!csv)
        return ABIS_OK;
    const char *p = csv;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        int found = 0;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            *out |= rights ? ABIS_CLIENT_RIGHTS_ALL : ABIS_CLIENT_OPS_ALL;
            found = 1;
        } else if (len == 4 && strncmp(p, "none", 4) == 0) {
            found = 1;
        }
        for (size_t i = 0; i < n_names && !found; i++)
            if (strlen(names[i]) == len && strncmp(p, names[i], len) == 0) {
                *out |= 1u << i;
                found = 1;
            }
        if (!found && len) {
            char list[128] = "";
            for (size_t i = 0; i < n_names; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         names[i]);
            return abis_error_set(err, ABIS_E_INVALID, "unknown %s '%.*s' (known: %s, all)", what,
                                  (int)(len > 64 ? 64 : len), p, list);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return ABIS_OK;
}

void abis_client_flags_format(uint32_t bits, int rights, char *buf, size_t cap)
{
    const char *const *names = rights ? right_names : op_names;
    size_t n_names = rights ? 2 : 4, len = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < n_names && cap; i++)
        if (bits & (1u << i)) {
            int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", names[i]);
            if (n < 0 || (size_t)n >= cap - len)
                break;
            len += (size_t)n;
        }
}

/* ---- API keys and the client's sealed pseudonym key --------------------------- */

#define API_KEY_PREFIX "abis_"
#define API_KEY_PREFIX_LEN 5
#define API_KEY_SECRET_BYTES 32

/* A new API key and its public id. */
static void api_key_make(char key[ABIS_API_KEY_LEN + 1], char key_id[ABIS_CLIENT_KEY_ID_HEX + 1])
{
    unsigned char id[ABIS_CLIENT_KEY_ID_HEX / 2], secret[API_KEY_SECRET_BYTES];
    char secret_hex[2 * API_KEY_SECRET_BYTES + 1];
    abis_random_bytes(id, sizeof id);
    abis_random_bytes(secret, sizeof secret);
    abis_to_hex(id, sizeof id, key_id);
    abis_to_hex(secret, sizeof secret, secret_hex);
    snprintf(key, ABIS_API_KEY_LEN + 1, API_KEY_PREFIX "%s_%s", key_id, secret_hex);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(secret_hex, sizeof secret_hex);
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* 0 and the key id when `key` has the shape of an API key, -1 otherwise. */
static int api_key_parse(const char *key, char key_id[ABIS_CLIENT_KEY_ID_HEX + 1])
{
    if (!key || strnlen(key, ABIS_API_KEY_LEN + 1) != ABIS_API_KEY_LEN ||
        strncmp(key, API_KEY_PREFIX, API_KEY_PREFIX_LEN) != 0)
        return -1;
    const char *id = key + API_KEY_PREFIX_LEN, *secret = id + ABIS_CLIENT_KEY_ID_HEX + 1;
    if (!is_lower_hex(id, ABIS_CLIENT_KEY_ID_HEX) || id[ABIS_CLIENT_KEY_ID_HEX] != '_' ||
        !is_lower_hex(secret, 2 * API_KEY_SECRET_BYTES))
        return -1;
    memcpy(key_id, id, ABIS_CLIENT_KEY_ID_HEX);
    key_id[ABIS_CLIENT_KEY_ID_HEX] = '\0';
    return 0;
}

static void api_key_hash(abis_engine *e, const char *key, unsigned char out[ABIS_HASH_BYTES])
{
    abis_key k;
    abis_key_derive(&e->master, "abisAPIK", 1, &k);
    abis_keyed_hash(&k, key, strlen(key), out);
    abis_key_wipe(&k);
}

/* Associated data sealing a client's pseudonym key: "client:" || name. */
static size_t secret_ad(const char *name, char ad[ABIS_NAME_MAX + 8])
{
    return (size_t)snprintf(ad, ABIS_NAME_MAX + 8, "client:%s", name);
}

static void secret_seal(abis_engine *e, const char *name, const abis_key *pseudonym,
                        unsigned char out[ABIS_CLIENT_SECRET_SEALED])
{
    abis_key k;
    char ad[ABIS_NAME_MAX + 8];
    abis_key_derive(&e->master, "abisCLNT", 1, &k);
    abis_seal(&k, pseudonym->bytes, ABIS_KEY_BYTES, ad, secret_ad(name, ad), out);
    abis_key_wipe(&k);
}

static abis_status secret_unseal(abis_engine *e, const abis_client_rec *r, abis_key *out,
                                 abis_error *err)
{
    abis_key k;
    char ad[ABIS_NAME_MAX + 8];
    abis_key_derive(&e->master, "abisCLNT", 1, &k);
    abis_status st =
        abis_unseal(&k, r->secret, sizeof r->secret, ad, secret_ad(r->name, ad), out->bytes, err);
    abis_key_wipe(&k);
    if (st != ABIS_OK)
        abis_error_prefix(err, "client '%s': its pseudonym key", r->name);
    return st;
}

/* ---- the cache --------------------------------------------------------------- */

static void entry_free(client_entry *c)
{
    free(c->segments);
    free(c->purposes);
    abis_key_wipe(&c->pseudonym);
}

void engine_clients_free(abis_engine *e)
{
    for (size_t i = 0; i < e->n_clients; i++)
        entry_free(&e->clients[i]);
    free(e->clients);
    e->clients = NULL;
    e->n_clients = 0;
}

typedef struct load_ctx {
    abis_engine *e;
    client_entry *arr;
    size_t n, cap;
    abis_error *err;
    abis_status st;
} load_ctx;

static int append_id(int64_t **arr, size_t *n, int64_t id)
{
    int64_t *a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a)
        return -1;
    a[(*n)++] = id;
    *arr = a;
    return 0;
}

static int load_scope(abis_scope_kind kind, int64_t ref_id, void *p)
{
    client_entry *c = p;
    int rc = kind == ABIS_SCOPE_SEGMENT ? append_id(&c->segments, &c->n_segments, ref_id)
                                        : append_id(&c->purposes, &c->n_purposes, ref_id);
    return c->oom = rc != 0;
}

static int load_client(const abis_client_rec *r, void *p)
{
    load_ctx *l = p;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        client_entry *a = realloc(l->arr, cap * sizeof *a);
        if (!a) {
            l->st = abis_error_set(l->err, ABIS_E_NOMEM, "out of memory");
            return 1;
        }
        l->arr = a;
        l->cap = cap;
    }
    client_entry *c = &l->arr[l->n];
    memset(c, 0, sizeof *c);
    c->rec = *r;
    l->st = secret_unseal(l->e, r, &c->pseudonym, l->err);
    if (l->st == ABIS_OK)
        l->n++;
    return l->st != ABIS_OK;
}

/* The meta setting "clients_version" (0 when never set). */
static abis_status clients_version(abis_engine *e, int64_t *v, abis_error *err)
{
    char buf[32];
    abis_status st = e->store->ops->meta_get(e->store, "clients_version", buf, sizeof buf, err);
    *v = 0;
    if (st == ABIS_E_NOT_FOUND) {
        abis_error_clear(err);
        return ABIS_OK;
    }
    if (st == ABIS_OK)
        *v = strtoll(buf, NULL, 10);
    return st;
}

/* Load every client with its scope and pseudonym key; replaces the cache
 * only when all of it could be loaded. */
static abis_status clients_load(abis_engine *e, int64_t version, abis_error *err)
{
    load_ctx l = {e, NULL, 0, 0, err, ABIS_OK};
    abis_status st = e->store->ops->client_scan(e->store, load_client, &l, err);
    if (st == ABIS_OK)
        st = l.st;
    for (size_t i = 0; st == ABIS_OK && i < l.n; i++) {
        st =
            e->store->ops->client_scope_scan(e->store, l.arr[i].rec.id, load_scope, &l.arr[i], err);
        if (st == ABIS_OK && l.arr[i].oom)
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    }
    if (st != ABIS_OK) {
        for (size_t i = 0; i < l.n; i++)
            entry_free(&l.arr[i]);
        free(l.arr);
        return abis_error_prefix(err, "loading the clients");
    }
    engine_clients_free(e);
    e->clients = l.arr;
    e->n_clients = l.n;
    e->clients_version = version;
    e->clients_loaded = 1;
    return ABIS_OK;
}

/* Reload the cache when another connection changed the clients. */
static abis_status clients_refresh(abis_engine *e, abis_error *err)
{
    int64_t v;
    abis_status st = clients_version(e, &v, err);
    if (st == ABIS_OK && (!e->clients_loaded || v != e->clients_version))
        st = clients_load(e, v, err);
    return st;
}

static client_entry *entry_by_name(abis_engine *e, const char *name)
{
    for (size_t i = 0; name && i < e->n_clients; i++)
        if (strcmp(e->clients[i].rec.name, name) == 0)
            return &e->clients[i];
    return NULL;
}

static client_entry *entry_by_key_id(abis_engine *e, const char *key_id)
{
    for (size_t i = 0; i < e->n_clients; i++)
        if (strcmp(e->clients[i].rec.key_id, key_id) == 0)
            return &e->clients[i];
    return NULL;
}

/* ---- registering ----------------------------------------------------------------- */

/* What a client write changes, in its transaction. */
typedef struct client_write {
    abis_client_rec *rec;
    int add;
    const int64_t *segments, *purposes;
    size_t n_segments, n_purposes;
} client_write;

static abis_status write_client(abis_engine *e, void *arg, abis_error *err)
{
    client_write *w = arg;
    abis_store *s = e->store;
    abis_status st =
        w->add ? s->ops->client_add(s, w->rec, err) : s->ops->client_update(s, w->rec, err);
    for (size_t i = 0; st == ABIS_OK && i < w->n_segments; i++)
        st = s->ops->client_scope_add(s, w->rec->id, ABIS_SCOPE_SEGMENT, w->segments[i], err);
    for (size_t i = 0; st == ABIS_OK && i < w->n_purposes; i++)
        st = s->ops->client_scope_add(s, w->rec->id, ABIS_SCOPE_PURPOSE, w->purposes[i], err);
    int64_t v = 0;
    if (st == ABIS_OK)
        st = clients_version(e, &v, err);
    if (st == ABIS_OK) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)(v + 1));
        st = s->ops->meta_set(s, "clients_version", buf, err);
    }
    return st;
}

/* Resolve names of segments or purposes into ids. */
static abis_status resolve_names(abis_engine *e, const char *const *names, size_t n, int purposes,
                                 int64_t *ids, abis_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (purposes) {
            abis_purpose_rec *p = engine_purpose(e, names[i], NULL);
            if (!p)
                return abis_error_set(err, ABIS_E_INVALID, "purpose '%.64s' does not exist",
                                      names[i] ? names[i] : "");
            ids[i] = p->id;
        } else {
            segstate *s = engine_segment(e, names[i]);
            if (!s)
                return abis_error_set(err, ABIS_E_INVALID, "segment '%.64s' does not exist",
                                      names[i] ? names[i] : "");
            ids[i] = s->rec.id;
        }
    }
    return ABIS_OK;
}

/* A short description of a client's grants for the audit log (no secrets). */
static void grants_detail(const abis_client_def *def, char *buf, size_t cap)
{
    char ops[64], rights[64];
    abis_client_flags_format(def->operations, 0, ops, sizeof ops);
    abis_client_flags_format(def->rights, 1, rights, sizeof rights);
    size_t len = (size_t)snprintf(buf, cap, "segments ");
    for (size_t i = 0; i < def->n_segments && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "", def->segments[i]);
    if (len < cap)
        len += (size_t)snprintf(buf + len, cap - len, "; purposes ");
    for (size_t i = 0; i < def->n_purposes && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "", def->purposes[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "; operations %s; rights %s", *ops ? ops : "none",
                 *rights ? rights : "none");
}

abis_status abis_client_add(abis_engine *e, const abis_caller *c, const abis_client_def *def,
                            char api_key[ABIS_API_KEY_LEN + 1], abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    pthread_mutex_lock(&e->clients_mu);
    abis_client_rec r;
    memset(&r, 0, sizeof r);
    int64_t *seg_ids = NULL, *pur_ids = NULL;
    abis_key pseudonym;
    char key[ABIS_API_KEY_LEN + 1] = "";
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK && !def)
        st = abis_error_set(err, ABIS_E_INVALID, "no client given");
    if (st == ABIS_OK)
        st = engine_check_name("client", def->name, err);
    if (st == ABIS_OK)
        st = clients_refresh(e, err);
    if (st == ABIS_OK && entry_by_name(e, def->name))
        st = abis_error_set(err, ABIS_E_EXISTS, "client '%s' already exists", def->name);
    if (st == ABIS_OK && def->n_segments == 0)
        st = abis_error_set(err, ABIS_E_INVALID,
                            "client '%s' needs at least one segment it may use", def->name);
    if (st == ABIS_OK && (def->operations & ~ABIS_CLIENT_OPS_ALL))
        st = abis_error_set(err, ABIS_E_INVALID, "client '%s': unknown operation bits 0x%x",
                            def->name, def->operations & ~ABIS_CLIENT_OPS_ALL);
    if (st == ABIS_OK && (def->rights & ~ABIS_CLIENT_RIGHTS_ALL))
        st = abis_error_set(err, ABIS_E_INVALID, "client '%s': unknown right bits 0x%x", def->name,
                            def->rights & ~ABIS_CLIENT_RIGHTS_ALL);
    if (st == ABIS_OK && !def->operations && !(def->rights & ABIS_CLIENT_RIGHT_SUBJECT_MANAGEMENT))
        st = abis_error_set(err, ABIS_E_INVALID,
                            "client '%s' would be allowed nothing: give it operations or the "
                            "subject_management right",
                            def->name);
    if (st == ABIS_OK && !(isfinite(def->rate_limit) && def->rate_limit >= 0))
        st = abis_error_set(err, ABIS_E_INVALID,
                            "client '%s': rate limit %g must be 0 (server default) or more",
                            def->name, def->rate_limit);
    if (st == ABIS_OK && (!(seg_ids = calloc(def->n_segments, sizeof *seg_ids)) ||
                          !(pur_ids = calloc(def->n_purposes + 1, sizeof *pur_ids))))
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    if (st == ABIS_OK)
        st = resolve_names(e, def->segments, def->n_segments, 0, seg_ids, err);
    if (st == ABIS_OK)
        st = resolve_names(e, def->purposes, def->n_purposes, 1, pur_ids, err);
    if (st == ABIS_OK) {
        snprintf(r.name, sizeof r.name, "%s", def->name);
        api_key_make(key, r.key_id);
        api_key_hash(e, key, r.key_hash);
        r.operations = def->operations;
        r.rights = def->rights;
        r.rate_limit = def->rate_limit;
        if ((r.has_cert = def->cert_sha256 != NULL))
            memcpy(r.cert_sha256, def->cert_sha256, sizeof r.cert_sha256);
        abis_key_random(&pseudonym);
        secret_seal(e, r.name, &pseudonym, r.secret);
        abis_key_wipe(&pseudonym);
        r.created_at = r.rotated_at = abis_now_ms();
        char detail[ABIS_TEXT_MAX + 1];
        grants_detail(def, detail, sizeof detail);
        client_write w = {&r, 1, seg_ids, pur_ids, def->n_segments, def->n_purposes};
        audit_event ev = {.operation = "client.add", .detail = detail};
        st = engine_write_audited(e, c, write_client, &w, &ev, err);
    }
    if (st == ABIS_OK) {
        memcpy(api_key, key, sizeof key);
        abis_error ignored;
        clients_refresh(e, &ignored); /* a failure only delays the cache to the next call */
    }
    pthread_mutex_unlock(&e->clients_mu);
    if (st != ABIS_OK)
        audit_refusal(e, c, "client.add", NULL, NULL, NULL, err);
    sodium_memzero(key, sizeof key);
    free(seg_ids);
    free(pur_ids);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

/* Rotate (api_key not NULL) or revoke a client. */
static abis_status client_change(abis_engine *e, const abis_caller *c, const char *name,
                                 char *api_key, abis_error *err)
{
    pthread_mutex_lock(&e->write_mu);
    pthread_mutex_lock(&e->clients_mu);
    const char *op = api_key ? "client.rotate" : "client.revoke";
    char key[ABIS_API_KEY_LEN + 1] = "";
    client_entry *ce = NULL;
    abis_status st = engine_refuse_if_read_only(e, err);
    if (st == ABIS_OK)
        st = clients_refresh(e, err);
    if (st == ABIS_OK && !(ce = entry_by_name(e, name)))
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "client '%.64s' does not exist",
                            name ? name : "");
    if (st == ABIS_OK && ce->rec.revoked)
        st = abis_error_set(err, ABIS_E_INVALID, "client '%s' is revoked%s", ce->rec.name,
                            api_key ? ": register it again under a new name" : " already");
    if (st == ABIS_OK) {
        abis_client_rec r = ce->rec;
        int64_t now = abis_now_ms();
        if (api_key) {
            api_key_make(key, r.key_id);
            api_key_hash(e, key, r.key_hash);
            r.rotated_at = now;
        } else {
            r.revoked = 1;
            r.revoked_at = now;
        }
        client_write w = {&r, 0, NULL, NULL, 0, 0};
        audit_event ev = {.operation = op, .detail = r.name};
        st = engine_write_audited(e, c, write_client, &w, &ev, err);
    }
    if (st == ABIS_OK) {
        if (api_key)
            memcpy(api_key, key, sizeof key);
        abis_error ignored;
        clients_refresh(e, &ignored);
    }
    pthread_mutex_unlock(&e->clients_mu);
    if (st != ABIS_OK)
        audit_refusal(e, c, op, NULL, NULL, NULL, err);
    sodium_memzero(key, sizeof key);
    pthread_mutex_unlock(&e->write_mu);
    return st;
}

abis_status abis_client_rotate(abis_engine *e, const abis_caller *c, const char *name,
                               char api_key[ABIS_API_KEY_LEN + 1], abis_error *err)
{
    return client_change(e, c, name, api_key, err);
}

abis_status abis_client_revoke(abis_engine *e, const abis_caller *c, const char *name,
                               abis_error *err)
{
    return client_change(e, c, name, NULL, err);
}

abis_status abis_client_list(abis_engine *e, abis_client_cb cb, void *ctx, abis_error *err)
{
    pthread_mutex_lock(&e->clients_mu);
    engine_state_rdlock(e); /* segment and purpose names */
    abis_status st = clients_refresh(e, err);
    const char **segs = NULL, **purs = NULL;
    for (size_t i = 0; st == ABIS_OK && i < e->n_clients; i++) {
        const client_entry *ce = &e->clients[i];
        abis_client_info info;
        memset(&info, 0, sizeof info);
        snprintf(info.name, sizeof info.name, "%s", ce->rec.name);
        snprintf(info.key_id, sizeof info.key_id, "%s", ce->rec.key_id);
        free(segs);
        free(purs);
        segs = calloc(ce->n_segments + 1, sizeof *segs);
        purs = calloc(ce->n_purposes + 1, sizeof *purs);
        if (!segs || !purs) {
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
            break;
        }
        for (size_t j = 0; j < ce->n_segments; j++) {
            segstate *s = engine_segment_by_id(e, ce->segments[j]);
            segs[info.n_segments++] = s ? s->rec.name : "?";
        }
        for (size_t j = 0; j < ce->n_purposes; j++) {
            abis_purpose_rec *p = engine_purpose_by_id(e, ce->purposes[j], NULL);
            purs[info.n_purposes++] = p ? p->name : "?";
        }
        info.segments = segs;
        info.purposes = purs;
        info.operations = ce->rec.operations;
        info.rights = ce->rec.rights;
        info.rate_limit = ce->rec.rate_limit;
        if ((info.has_cert = ce->rec.has_cert))
            abis_to_hex(ce->rec.cert_sha256, sizeof ce->rec.cert_sha256, info.cert_sha256);
        info.revoked = ce->rec.revoked;
        info.created_at = ce->rec.created_at;
        info.rotated_at = ce->rec.rotated_at;
        info.revoked_at = ce->rec.revoked_at;
        if (cb(&info, ctx))
            break;
    }
    free(segs);
    free(purs);
    engine_state_unlock(e);
    pthread_mutex_unlock(&e->clients_mu);
    return st;
}

/* ---- authenticating ---------------------------------------------------------------- */

/* A context for one request: a copy of the cache entry (one allocation). */
static abis_client *context_from(const client_entry *ce)
{
    size_t n = ce->n_segments + ce->n_purposes;
    abis_client *c = calloc(1, sizeof *c + n * sizeof(int64_t));
    if (!c)
        return NULL;
    c->id = ce->rec.id;
    snprintf(c->name, sizeof c->name, "%s", ce->rec.name);
    snprintf(c->actor, sizeof c->actor, "client:%s", ce->rec.name);
    c->operations = ce->rec.operations;
    c->rights = ce->rec.rights;
    c->rate_limit = ce->rec.rate_limit;
    c->pseudonym = ce->pseudonym;
    c->segments = (int64_t *)(c + 1);
    c->purposes = c->segments + ce->n_segments;
    c->n_segments = ce->n_segments;
    c->n_purposes = ce->n_purposes;
    if (ce->n_segments)
        memcpy(c->segments, ce->segments, ce->n_segments * sizeof(int64_t));
    if (ce->n_purposes)
        memcpy(c->purposes, ce->purposes, ce->n_purposes * sizeof(int64_t));
    return c;
}

void abis_client_free(abis_client *c)
{
    if (!c)
        return;
    abis_key_wipe(&c->pseudonym);
    free(c);
}

const char *abis_client_name(const abis_client *c)
{
    return c->name;
}

double abis_client_rate_limit(const abis_client *c)
{
    return c->rate_limit;
}

int abis_client_sees_scores(const abis_client *c)
{
    return (c->rights & ABIS_CLIENT_RIGHT_RAW_SCORES) != 0;
}

abis_status abis_client_authenticate(abis_engine *e, const char *api_key,
                                     const unsigned char *cert_sha256, abis_client **out,
                                     abis_error *err)
{
    *out = NULL;
    char key_id[ABIS_CLIENT_KEY_ID_HEX + 1] = "";
    unsigned char hash[ABIS_HASH_BYTES];
    client_entry *ce = NULL;
    abis_caller who = {.actor = "unauthenticated"};
    char actor[ABIS_TEXT_MAX + 1];
    /* Everything that needs no lock first: the key's shape, its hash (always
     * computed, so that an unknown key id and a wrong secret take the same
     * time) and the store's clients_version. */
    int malformed = api_key_parse(api_key, key_id) != 0;
    if (!malformed)
        api_key_hash(e, api_key, hash);
    int64_t version = 0;
    abis_status st = engine_registry_sync(e, err);
    if (st == ABIS_OK)
        st = clients_version(e, &version, err);
    pthread_mutex_lock(&e->clients_mu);
    if (st == ABIS_OK && (!e->clients_loaded || version != e->clients_version))
        st = clients_load(e, version, err);
    if (st == ABIS_OK && malformed)
        st = abis_error_set(err, ABIS_E_UNAUTHENTICATED,
                            "the API key is malformed (expected abis_ followed by 16 and 64 "
                            "lower-case hex digits, as 'abis client add' printed it)");
    if (st == ABIS_OK) {
        ce = entry_by_key_id(e, key_id);
        if (!ce || !abis_equal(hash, ce->rec.key_hash, sizeof hash)) {
            st = abis_error_set(err, ABIS_E_UNAUTHENTICATED, "unknown API key (key id %s)", key_id);
            ce = NULL;
        }
    }
    if (ce) {
        snprintf(actor, sizeof actor, "client:%s", ce->rec.name);
        who.actor = actor;
    }
    if (st == ABIS_OK && ce->rec.revoked)
        st = abis_error_set(err, ABIS_E_UNAUTHENTICATED, "the API key of client '%s' was revoked",
                            ce->rec.name);
    if (st == ABIS_OK && ce->rec.has_cert &&
        (!cert_sha256 || !abis_equal(cert_sha256, ce->rec.cert_sha256, 32)))
        st = abis_error_set(err, ABIS_E_UNAUTHENTICATED,
                            "client '%s' must present its registered TLS client certificate",
                            ce->rec.name);
    if (st == ABIS_OK && !(*out = context_from(ce)))
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    pthread_mutex_unlock(&e->clients_mu);
    if (st == ABIS_E_UNAUTHENTICATED)
        audit_refusal(e, &who, "authenticate", NULL, NULL, NULL, err);
    sodium_memzero(hash, sizeof hash);
    return st;
}

/* ---- what a client may do ------------------------------------------------------------- */

static abis_caller caller_of(const abis_client *cl)
{
    abis_caller c = {.actor = cl->actor, .channel = cl->actor};
    return c;
}

static int has_id(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

static abis_status need_op(const abis_client *cl, uint32_t op, abis_error *err)
{
    if (cl->operations & op)
        return ABIS_OK;
    char name[32], have[64];
    abis_client_flags_format(op, 0, name, sizeof name);
    abis_client_flags_format(cl->operations, 0, have, sizeof have);
    return abis_error_set(err, ABIS_E_FORBIDDEN, "client '%s' may not %s (its operations: %s)",
                          cl->name, name, *have ? have : "none");
}

static abis_status need_management(const abis_client *cl, abis_error *err)
{
    if (cl->rights & ABIS_CLIENT_RIGHT_SUBJECT_MANAGEMENT)
        return ABIS_OK;
    return abis_error_set(err, ABIS_E_FORBIDDEN,
                          "client '%s' does not have the subject_management right (to view, "
                          "change consents, lock or delete subjects for the person)",
                          cl->name);
}

static abis_status need_segment(abis_engine *e, const abis_client *cl, const char *name,
                                abis_error *err)
{
    segstate *s = engine_segment(e, name);
    if (!s)
        return abis_error_set(err, ABIS_E_INVALID, "segment '%.64s' does not exist",
                              name ? name : "");
    if (!has_id(cl->segments, cl->n_segments, s->rec.id))
        return abis_error_set(err, ABIS_E_FORBIDDEN, "client '%s' may not use segment '%s'",
                              cl->name, s->rec.name);
    return ABIS_OK;
}

static abis_status need_purpose(abis_engine *e, const abis_client *cl, const char *name,
                                abis_error *err)
{
    abis_purpose_rec *p = engine_purpose(e, name, NULL);
    if (!p)
        return abis_error_set(err, ABIS_E_INVALID, "purpose '%.64s' does not exist",
                              name ? name : "");
    if (!has_id(cl->purposes, cl->n_purposes, p->id))
        return abis_error_set(err, ABIS_E_FORBIDDEN, "client '%s' may not act for purpose '%s'",
                              cl->name, p->name);
    return ABIS_OK;
}

/* The subject behind a client's pseudonym.  ABIS_E_NOT_FOUND "no such
 * subject" -- the very words engine_find_subject uses -- when there is none
 * or it lies outside the client's segments (*exists then says which, for
 * the audit entry only). */
static abis_status resolve_subject(abis_engine *e, const abis_client *cl, const abis_id *token,
                                   abis_id *subject, segstate **seg, int *exists, abis_error *err)
{
    abis_subject_rec r;
    *exists = 0;
    *seg = NULL;
    if (!token)
        return abis_error_set(err, ABIS_E_INVALID, "no subject given");
    abis_pseudonym(&cl->pseudonym, token->bytes, subject->bytes, 1);
    abis_status st = engine_find_subject(e, subject, &r, seg, err);
    if (st != ABIS_OK)
        return st;
    *exists = 1;
    if (!has_id(cl->segments, cl->n_segments, r.segment_id))
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no such subject");
    return ABIS_OK;
}

void engine_client_token(const abis_client *c, const abis_id *in, abis_id *out, int inverse)
{
    abis_pseudonym(&c->pseudonym, in->bytes, out->bytes, inverse);
}

static void token_of(const abis_client *cl, const abis_id *subject, abis_id *token)
{
    engine_client_token(cl, subject, token, 0);
}

/* A remembered result for (client, idem->key): *replayed = 1 and `res`
 * filled when the same request was made before; ABIS_E_CONFLICT when the
 * key came with another request; ABIS_E_INVALID for a key that is not 1 to
 * 255 printable ASCII characters. */
static abis_status idem_lookup(abis_engine *e, const abis_client *cl, const abis_idempotency *idem,
                               const char *operation, abis_client_result *res, int *replayed,
                               abis_error *err)
{
    *replayed = 0;
    if (!idem || !idem->key)
        return ABIS_OK;
    size_t n = strnlen(idem->key, ABIS_IDEMPOTENCY_KEY_MAX + 1);
    if (n == 0 || n > ABIS_IDEMPOTENCY_KEY_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "the idempotency key must be 1 to %d characters",
                              ABIS_IDEMPOTENCY_KEY_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)idem->key[i] < 0x21 || (unsigned char)idem->key[i] > 0x7e)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "the idempotency key may hold only printable ASCII without "
                                  "spaces (character %zu is not)",
                                  i + 1);
    abis_idem_rec r;
    abis_status st = e->store->ops->idem_get(e->store, cl->id, idem->key, &r, err);
    if (st == ABIS_E_NOT_FOUND) {
        abis_error_clear(err);
        return ABIS_OK;
    }
    if (st != ABIS_OK)
        return st;
    if (r.expires_at < abis_now_ms())
        return ABIS_OK; /* forgotten: the write purges it */
    if (strcmp(r.operation, operation) != 0 ||
        !abis_equal(r.request_hash, idem->request_hash, sizeof r.request_hash))
        return abis_error_set(err, ABIS_E_CONFLICT,
                              "the idempotency key '%.64s' was used before for a different "
                              "request; use a new key for a new request",
                              idem->key);
    if (r.has_subject)
        token_of(cl, &r.subject_id, &res->subject);
    if (r.has_template)
        res->template_id = r.template_id;
    res->replayed = 1;
    *replayed = 1;
    return ABIS_OK;
}

abis_status engine_idem_remember(abis_engine *e, const engine_idem *idem, const abis_id *subject,
                                 const abis_id *tmpl, abis_error *err)
{
    if (!idem || !idem->in || !idem->in->key)
        return ABIS_OK;
    abis_store *s = e->store;
    int64_t now = abis_now_ms();
    abis_status st = s->ops->idem_purge(s, now, err);
    abis_idem_rec r;
    memset(&r, 0, sizeof r);
    r.client_id = idem->client_id;
    snprintf(r.key, sizeof r.key, "%s", idem->in->key);
    memcpy(r.request_hash, idem->in->request_hash, sizeof r.request_hash);
    snprintf(r.operation, sizeof r.operation, "%s", idem->operation);
    if ((r.has_subject = subject != NULL))
        r.subject_id = *subject;
    if ((r.has_template = tmpl != NULL))
        r.template_id = *tmpl;
    r.created_at = now;
    int64_t ttl = idem->in->ttl_seconds > 0 ? idem->in->ttl_seconds : IDEM_TTL_DEFAULT_S;
    r.expires_at = now + ttl * 1000;
    if (st == ABIS_OK)
        st = s->ops->idem_put(s, &r, err);
    if (st == ABIS_E_EXISTS)
        st = abis_error_set(err, ABIS_E_CONFLICT,
                            "another request with the idempotency key '%.64s' was completed "
                            "meanwhile; retry to get its result",
                            idem->in->key);
    return st;
}

/* ---- the operations ------------------------------------------------------------------------ */

/* The checks every subject operation of a client shares, under the engine
 * lock: the operation (op_bit, or the subject-management right when 0), the
 * purpose (when not NULL), the subject behind the token, and a remembered
 * result.  A refusal is audited here. */
typedef struct client_call {
    abis_caller caller;
    const char *audit_op; /* for the audit entry of a refusal */
    abis_id subject;
    segstate *seg;
    int replayed;
    engine_idem idem;
    abis_client_result local; /* the result when the caller passed none */
} client_call;

/* *res (the call's result; cc->local when the caller passed NULL) is zeroed
 * first; pass res = NULL for calls without one (verify, identify, view). */
static abis_status client_prepare(abis_engine *e, const abis_client *cl, client_call *cc,
                                  uint32_t op_bit, const char *purpose, const abis_id *token,
                                  const abis_idempotency *idem, abis_client_result **res,
                                  abis_error *err)
{
    if (res) {
        if (!*res)
            *res = &cc->local;
        memset(*res, 0, sizeof **res);
    }
    engine_state_rdlock(e);
    int exists = 0;
    cc->caller = caller_of(cl);
    cc->idem.client_id = cl->id;
    cc->idem.in = idem;
    cc->idem.operation = cc->audit_op;
    abis_status st = op_bit ? need_op(cl, op_bit, err) : need_management(cl, err);
    if (st == ABIS_OK && purpose)
        st = need_purpose(e, cl, purpose, err);
    if (st == ABIS_OK && token)
        st = resolve_subject(e, cl, token, &cc->subject, &cc->seg, &exists, err);
    if (st == ABIS_OK && res)
        st = idem_lookup(e, cl, idem, cc->audit_op, *res, &cc->replayed, err);
    engine_state_unlock(e);
    if (st != ABIS_OK)
        audit_refusal(e, &cc->caller, cc->audit_op, cc->seg ? cc->seg->rec.name : NULL,
                      exists ? &cc->subject : NULL, purpose, err);
    return st;
}

abis_status abis_client_enroll(abis_engine *e, const abis_client *cl, const abis_idempotency *idem,
                               const abis_enroll_request *req, abis_client_result *res,
                               abis_error *err)
{
    client_call cc = {.audit_op = "enroll"};
    abis_status st = ABIS_OK;
    if (!req)
        return abis_error_set(err, ABIS_E_INVALID, "no enrolment request given");
    if ((req->external_ref && *req->external_ref) || req->force)
        return abis_error_set(err, ABIS_E_INVALID,
                              "clients cannot set an external reference or force an enrolment");
    st = client_prepare(e, cl, &cc, ABIS_CLIENT_OP_ENROLL, NULL, NULL, idem, &res, err);
    if (st != ABIS_OK || cc.replayed)
        return st;
    engine_state_rdlock(e);
    st = need_segment(e, cl, req->segment, err);
    for (size_t i = 0; st == ABIS_OK && i < req->n_consents; i++)
        st = need_purpose(e, cl, req->consents[i], err);
    engine_state_unlock(e);
    if (st != ABIS_OK)
        audit_refusal(e, &cc.caller, "enroll", NULL, NULL, NULL, err);
    if (st != ABIS_OK)
        return st;
    abis_enroll_result er;
    st = engine_enroll(e, &cc.caller, idem ? &cc.idem : NULL, req, &er, err);
    if (st == ABIS_OK)
        token_of(cl, &er.subject_id, &res->subject);
    else if (st == ABIS_E_DUPLICATE) {
        token_of(cl, &er.duplicate_of, &res->duplicate_of);
        /* The message names the existing subject by its real id: say it
         * with the client's pseudonym instead. */
        char hex[ABIS_ID_HEX_LEN + 1];
        abis_id_to_hex(&res->duplicate_of, hex);
        abis_error_set(err, ABIS_E_DUPLICATE,
                       "this person is already enrolled in segment '%s' as subject %s",
                       req->segment, hex);
    }
    return st;
}

abis_status abis_client_template_add(abis_engine *e, const abis_client *cl,
                                     const abis_idempotency *idem, const abis_id *token,
                                     const abis_template_input *tmpl, int replace,
                                     abis_client_result *res, abis_error *err)
{
    client_call cc = {.audit_op = replace ? "template.replace" : "template.add"};
    abis_status st =
        client_prepare(e, cl, &cc, ABIS_CLIENT_OP_TEMPLATES, NULL, token, idem, &res, err);
    if (st != ABIS_OK || cc.replayed)
        return st;
    st = engine_template_add(e, &cc.caller, idem ? &cc.idem : NULL, &cc.subject, tmpl, replace, 0,
                             &res->template_id, err);
    if (st == ABIS_OK)
        res->subject = *token;
    else if (st == ABIS_E_DUPLICATE)
        abis_error_set(err, ABIS_E_DUPLICATE,
                       "this template matches another subject of the segment");
    return st;
}

abis_status abis_client_verify(abis_engine *e, const abis_client *cl, const abis_id *token,
                               const char *purpose, const abis_template_input *probes,
                               size_t n_probes, abis_verify_result *res, abis_error *err)
{
    abis_verify_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    client_call cc = {.audit_op = "verify"};
    abis_status st = client_prepare(e, cl, &cc, ABIS_CLIENT_OP_VERIFY, purpose ? purpose : "",
                                    token, NULL, NULL, err);
    if (st == ABIS_OK)
        st = abis_subject_verify(e, &cc.caller, &cc.subject, purpose, probes, n_probes, res, err);
    if (!abis_client_sees_scores(cl))
        res->score = res->fmr = res->threshold = 0;
    return st;
}

abis_status abis_client_identify(abis_engine *e, const abis_client *cl, const char *segment,
                                 const char *purpose, const abis_template_input *probes,
                                 size_t n_probes, size_t k, abis_candidate *out, size_t *n_out,
                                 abis_error *err)
{
    if (n_out)
        *n_out = 0;
    client_call cc = {.audit_op = "identify"};
    abis_status st = client_prepare(e, cl, &cc, ABIS_CLIENT_OP_IDENTIFY, purpose ? purpose : "",
                                    NULL, NULL, NULL, err);
    if (st == ABIS_OK) {
        engine_state_rdlock(e);
        st = need_segment(e, cl, segment, err);
        engine_state_unlock(e);
        if (st != ABIS_OK)
            audit_refusal(e, &cc.caller, "identify", NULL, NULL, purpose, err);
    }
    if (st == ABIS_OK)
        st = abis_subject_identify(e, &cc.caller, segment, purpose, probes, n_probes, k, out, n_out,
                                   err);
    for (size_t i = 0; st == ABIS_OK && i < *n_out; i++) {
        token_of(cl, &out[i].subject_id, &out[i].subject_id);
        memset(out[i].external_ref, 0, sizeof out[i].external_ref);
        if (!abis_client_sees_scores(cl))
            out[i].score = out[i].fmr = 0;
    }
    return st;
}

abis_status abis_client_consent_set(abis_engine *e, const abis_client *cl,
                                    const abis_idempotency *idem, const abis_id *token,
                                    const char *purpose, int granted, abis_client_result *res,
                                    abis_error *err)
{
    client_call cc = {.audit_op = granted ? "consent.grant" : "consent.withdraw"};
    abis_status st = client_prepare(e, cl, &cc, 0, purpose ? purpose : "", token, idem, &res, err);
    if (st != ABIS_OK || cc.replayed)
        return st;
    st = engine_consent_set(e, &cc.caller, idem ? &cc.idem : NULL, &cc.subject, purpose, granted,
                            err);
    if (st == ABIS_OK)
        res->subject = *token;
    return st;
}

abis_status abis_client_lock_set(abis_engine *e, const abis_client *cl,
                                 const abis_idempotency *idem, const abis_id *token,
                                 const char *modality, int locked, abis_client_result *res,
                                 abis_error *err)
{
    client_call cc = {.audit_op = locked ? "lock" : "unlock"};
    abis_status st = client_prepare(e, cl, &cc, 0, NULL, token, idem, &res, err);
    if (st != ABIS_OK || cc.replayed)
        return st;
    int all = !modality || !*modality || strcmp(modality, "*") == 0;
    if (!all) {
        engine_state_rdlock(e);
        if (!engine_modality(e, modality, NULL))
            st = abis_error_set(err, ABIS_E_INVALID, "modality '%.64s' does not exist", modality);
        engine_state_unlock(e);
        if (st != ABIS_OK)
            audit_refusal(e, &cc.caller, cc.audit_op, cc.seg->rec.name, &cc.subject, NULL, err);
    }
    if (st == ABIS_OK)
        st = engine_lock_set(e, &cc.caller, idem ? &cc.idem : NULL, &cc.subject, modality, locked,
                             err);
    if (st == ABIS_OK)
        res->subject = *token;
    return st;
}

abis_status abis_client_delete(abis_engine *e, const abis_client *cl, const abis_idempotency *idem,
                               const abis_id *token, abis_client_result *res, abis_error *err)
{
    client_call cc = {.audit_op = "delete"};
    abis_status st = client_prepare(e, cl, &cc, 0, NULL, token, idem, &res, err);
    if (st != ABIS_OK || cc.replayed)
        return st;
    st = engine_delete(e, &cc.caller, idem ? &cc.idem : NULL, &cc.subject, err);
    if (st == ABIS_OK)
        res->subject = *token;
    return st;
}

abis_status abis_client_subject_show(abis_engine *e, const abis_client *cl, const abis_id *token,
                                     abis_subject_view **view, abis_error *err)
{
    *view = NULL;
    client_call cc = {.audit_op = "subject.show"};
    abis_status st = client_prepare(e, cl, &cc, 0, NULL, token, NULL, NULL, err);
    if (st == ABIS_OK)
        st = abis_subject_show(e, &cc.caller, &cc.subject, view, err);
    if (st == ABIS_OK) {
        (*view)->subject_id = *token;
        memset((*view)->external_ref, 0, sizeof(*view)->external_ref);
    }
    return st;
}
