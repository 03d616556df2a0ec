/*
 * sqlite_clients.c: relying parties in the SQLite store (schema 2): the
 * clients table with the keyed hash of each API key and the sealed
 * pseudonym key, the segments and purposes each client may use, and the
 * remembered results of writes made with an Idempotency-Key.  The engine
 * decides what these mean (src/core/client.c); this file only keeps them.
 */
#include "store/sqlite_internal.h"

#include <stdio.h>
#include <string.h>

#define CLIENT_COLS                                                                                \
    "id, name, key_id, key_hash, operations, rights, rate_limit, cert_sha256, secret, revoked,"    \
    " created_at, rotated_at, revoked_at"

static void read_client(sqlite3_stmt *q, void *rec)
{
    abis_client_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(q, 0);
    sq_col_text(q, 1, r->name, sizeof r->name);
    sq_col_text(q, 2, r->key_id, sizeof r->key_id);
    sq_col_bytes(q, 3, r->key_hash, sizeof r->key_hash);
    r->operations = (uint32_t)sqlite3_column_int64(q, 4);
    r->rights = (uint32_t)sqlite3_column_int64(q, 5);
    r->rate_limit = sqlite3_column_double(q, 6);
    r->has_cert = sqlite3_column_type(q, 7) != SQLITE_NULL;
    if (r->has_cert)
        sq_col_bytes(q, 7, r->cert_sha256, sizeof r->cert_sha256);
    sq_col_bytes(q, 8, r->secret, sizeof r->secret);
    r->revoked = sqlite3_column_int(q, 9);
    r->created_at = sqlite3_column_int64(q, 10);
    r->rotated_at = sqlite3_column_int64(q, 11);
    r->revoked_at = sqlite3_column_int64(q, 12);
}

/* Bind the columns client_add and client_update share (?2 .. ?12 in
 * CLIENT_COLS order, ?1 being the id or the name). */
static int bind_client(sqlite3_stmt *q, const abis_client_rec *r)
{
    int rc = sqlite3_bind_text(q, 2, r->key_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 3, r->key_hash, sizeof r->key_hash, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 4, r->operations);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 5, r->rights);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(q, 6, r->rate_limit);
    if (rc == SQLITE_OK)
        rc = r->has_cert
                 ? sqlite3_bind_blob(q, 7, r->cert_sha256, sizeof r->cert_sha256, SQLITE_STATIC)
                 : sqlite3_bind_null(q, 7);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 8, r->secret, sizeof r->secret, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(q, 9, r->revoked ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 10, r->created_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 11, r->rotated_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 12, r->revoked_at);
    return rc;
}

static abis_status check_client(const abis_client_rec *r, abis_error *err)
{
    abis_status st = sq_check_text(r->name, ABIS_NAME_MAX, 0, "client name", err);
    if (st == ABIS_OK && strnlen(r->key_id, sizeof r->key_id) != ABIS_CLIENT_KEY_ID_LEN)
        st = abis_error_set(err, ABIS_E_INVALID, "client '%s': the key id must be %d characters",
                            r->name, ABIS_CLIENT_KEY_ID_LEN);
    if (st == ABIS_OK && !(r->rate_limit >= 0))
        st = abis_error_set(err, ABIS_E_INVALID, "client '%s': rate limit %g is negative", r->name,
                            r->rate_limit);
    return st;
}

/* The generic core of client_add (r->id filled) and client_update (by r->id). */
static abis_status write_client(sq_store *s, abis_client_rec *r, int add, abis_error *err)
{
    abis_status st = sq_need_tx(s, add ? "client_add" : "client_update", err);
    if (st == ABIS_OK)
        st = check_client(r, err);
    sqlite3_stmt *q;
    if (st != ABIS_OK)
        return st;
    if (add)
        st = sq_prepare(s, SQ_CLIENT_ADD, s->db,
                        "INSERT INTO clients (name, key_id, key_hash, operations, rights,"
                        " rate_limit, cert_sha256, secret, revoked, created_at, rotated_at,"
                        " revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                        &q, err);
    else
        st = sq_prepare(s, SQ_CLIENT_UPDATE, s->db,
                        "UPDATE clients SET key_id = ?2, key_hash = ?3, operations = ?4,"
                        " rights = ?5, rate_limit = ?6, cert_sha256 = ?7, secret = ?8,"
                        " revoked = ?9, created_at = ?10, rotated_at = ?11, revoked_at = ?12"
                        " WHERE id = ?1",
                        &q, err);
    if (st != ABIS_OK)
        return st;
    int rc =
        add ? sqlite3_bind_text(q, 1, r->name, -1, SQLITE_STATIC) : sqlite3_bind_int64(q, 1, r->id);
    if (rc == SQLITE_OK)
        rc = bind_client(q, r);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        st = abis_error_set(err, ABIS_E_EXISTS, "client '%s' already exists", r->name);
    else if (rc != SQLITE_DONE)
        st = sq_fail(s, s->db, rc, add ? "adding a client" : "updating a client", err);
    else if (add)
        r->id = sqlite3_last_insert_rowid(s->db);
    else if (sqlite3_changes(s->db) == 0)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "no client with id %lld", (long long)r->id);
    sq_done(q);
    return st;
}

abis_status sq_client_add(abis_store *base, abis_client_rec *r, abis_error *err)
{
    return write_client(sq_of(base), r, 1, err);
}

abis_status sq_client_update(abis_store *base, const abis_client_rec *r, abis_error *err)
{
    abis_client_rec copy = *r;
    return write_client(sq_of(base), &copy, 0, err);
}

abis_status sq_client_get(abis_store *base, const char *name, abis_client_rec *r, abis_error *err)
{
    abis_status st = sq_check_text(name, ABIS_NAME_MAX, 0, "client name", err);
    if (st != ABIS_OK)
        return st;
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    if ((st = sq_prepare(s, SQ_CLIENT_GET, s->db,
                         "SELECT " CLIENT_COLS " FROM clients WHERE name = ?1", &q, err)) !=
        ABIS_OK)
        return st;
    int found;
    int rc = sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if ((st = sq_get_row(s, s->db, q, rc, read_client, r, &found, "looking up a client", err)) !=
        ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no client '%s'", name);
    return ABIS_OK;
}

struct client_scan {
    abis_client_rec_cb cb;
    void *ctx;
};

static int client_row(sqlite3_stmt *q, void *p)
{
    struct client_scan *c = p;
    abis_client_rec r;
    read_client(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_client_scan(abis_store *base, abis_client_rec_cb cb, void *ctx, abis_error *err)
{
    if (!cb)
        return abis_error_set(err, ABIS_E_INVALID, "client_scan: no callback");
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    struct client_scan c = {cb, ctx};
    sqlite3_stmt *q;
    abis_status st =
        sq_prepare_fresh(s, s->db, "SELECT " CLIENT_COLS " FROM clients ORDER BY id", &q, err);
    if (st != ABIS_OK)
        return st;
    return sq_scan(s, s->db, q, client_row, &c, "scanning clients", err);
}

abis_status sq_client_scope_add(abis_store *base, int64_t client_id, abis_scope_kind kind,
                                int64_t ref_id, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "client_scope_add", err);
    if (st != ABIS_OK)
        return st;
    int seg = kind == ABIS_SCOPE_SEGMENT;
    sqlite3_stmt *q;
    st = seg ? sq_prepare(s, SQ_CLIENT_SEGMENT_ADD, s->db,
                          "INSERT OR IGNORE INTO client_segments (client_id, segment_id)"
                          " VALUES (?1, ?2)",
                          &q, err)
             : sq_prepare(s, SQ_CLIENT_PURPOSE_ADD, s->db,
                          "INSERT OR IGNORE INTO client_purposes (client_id, purpose_id)"
                          " VALUES (?1, ?2)",
                          &q, err);
    if (st != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, client_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, ref_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "no client %lld or no %s %lld",
                            (long long)client_id, seg ? "segment" : "purpose", (long long)ref_id);
    else if (rc != SQLITE_DONE)
        st = sq_fail(s, s->db, rc, "granting a client a segment or purpose", err);
    sq_done(q);
    return st;
}

struct scope_scan {
    abis_scope_cb cb;
    void *ctx;
};

static int scope_row(sqlite3_stmt *q, void *p)
{
    struct scope_scan *c = p;
    return c->cb((abis_scope_kind)sqlite3_column_int(q, 0), sqlite3_column_int64(q, 1), c->ctx);
}

abis_status sq_client_scope_scan(abis_store *base, int64_t client_id, abis_scope_cb cb, void *ctx,
                                 abis_error *err)
{
    if (!cb)
        return abis_error_set(err, ABIS_E_INVALID, "client_scope_scan: no callback");
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    struct scope_scan c = {cb, ctx};
    sqlite3_stmt *q;
    abis_status st = sq_prepare_fresh(
        s, s->db,
        "SELECT 0, segment_id FROM client_segments WHERE client_id = ?1"
        " UNION ALL SELECT 1, purpose_id FROM client_purposes WHERE client_id = ?1 ORDER BY 1, 2",
        &q, err);
    if (st != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, client_id);
    if (rc != SQLITE_OK) {
        st = sq_fail(s, s->db, rc, "scanning a client's scope", err);
        sqlite3_finalize(q);
        return st;
    }
    return sq_scan(s, s->db, q, scope_row, &c, "scanning a client's scope", err);
}

/* ---- idempotency ----------------------------------------------------------- */

static void read_idem(sqlite3_stmt *q, void *rec)
{
    abis_idem_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->client_id = sqlite3_column_int64(q, 0);
    sq_col_text(q, 1, r->key, sizeof r->key);
    sq_col_bytes(q, 2, r->request_hash, sizeof r->request_hash);
    sq_col_text(q, 3, r->operation, sizeof r->operation);
    if ((r->has_subject = sqlite3_column_type(q, 4) != SQLITE_NULL))
        sq_col_id(q, 4, &r->subject_id);
    if ((r->has_template = sqlite3_column_type(q, 5) != SQLITE_NULL))
        sq_col_id(q, 5, &r->template_id);
    r->created_at = sqlite3_column_int64(q, 6);
    r->expires_at = sqlite3_column_int64(q, 7);
}

abis_status sq_idem_get(abis_store *base, int64_t client_id, const char *key, abis_idem_rec *r,
                        abis_error *err)
{
    abis_status st = sq_check_text(key, ABIS_IDEMPOTENCY_KEY_MAX, 0, "idempotency key", err);
    if (st != ABIS_OK)
        return st;
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    if ((st = sq_prepare(s, SQ_IDEM_GET, s->db,
                         "SELECT client_id, key, request_hash, operation, subject_id,"
                         " template_id, created_at, expires_at FROM idempotency"
                         " WHERE client_id = ?1 AND key = ?2",
                         &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, client_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
    int found;
    if ((st = sq_get_row(s, s->db, q, rc, read_idem, r, &found, "looking up an idempotency key",
                         err)) != ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no result remembered for this key");
    return ABIS_OK;
}

abis_status sq_idem_put(abis_store *base, const abis_idem_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "idem_put", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->key, ABIS_IDEMPOTENCY_KEY_MAX, 0, "idempotency key", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->operation, sizeof r->operation - 1, 0, "operation", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_IDEM_PUT, s->db,
                         "INSERT INTO idempotency (client_id, key, request_hash, operation,"
                         " subject_id, template_id, created_at, expires_at)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                         &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, r->client_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 2, r->key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 3, r->request_hash, sizeof r->request_hash, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 4, r->operation, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = r->has_subject ? sq_bind_id(q, 5, &r->subject_id) : sqlite3_bind_null(q, 5);
    if (rc == SQLITE_OK)
        rc = r->has_template ? sq_bind_id(q, 6, &r->template_id) : sqlite3_bind_null(q, 6);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 7, r->created_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 8, r->expires_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        st = abis_error_set(err, ABIS_E_EXISTS, "a result is already remembered for this key");
    else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "no client %lld", (long long)r->client_id);
    else if (rc != SQLITE_DONE)
        st = sq_fail(s, s->db, rc, "remembering an idempotent result", err);
    sq_done(q);
    return st;
}

abis_status sq_idem_purge(abis_store *base, int64_t now, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "idem_purge", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_IDEM_PURGE, s->db, "DELETE FROM idempotency WHERE expires_at < ?1",
                         &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        st = sq_fail(s, s->db, rc, "forgetting expired idempotency keys", err);
    sq_done(q);
    return st;
}
