/*
 * sqlite_keys.c: the key store, DIR/keys.db: one wrapped data key per
 * subject and a few keymeta settings, kept in a file apart from the data so
 * that deleting a subject's key makes every copy of its sealed templates
 * unreadable.  Each call is its own transaction (autocommit under
 * synchronous=FULL: durable when the call returns).  key_delete then
 * checkpoints and truncates the WAL so that, with secure_delete on, the
 * key's bytes are overwritten in keys.db and gone from keys.db-wal.
 */
#include "store/sqlite_internal.h"

#include <limits.h>
#include <string.h>

abis_status sq_key_put(abis_store *base, const abis_id *subject, const unsigned char *wrapped,
                       size_t len, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_writable(s, "key_put", err);
    if (st != ABIS_OK)
        return st;
    if (!subject || !wrapped || len == 0 || len > INT_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "key_put: no subject or no wrapped key");
    sqlite3_stmt *q;
    sq_keys_lock(s);
    /* A re-wrapped key (new master key) replaces the old bytes and keeps its
     * creation time: the data key itself is unchanged. */
    if ((st = sq_prepare(s, SQ_KEY_PUT, s->keys,
                         "INSERT INTO keys (subject_id, wrapped, created_at) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (subject_id) DO UPDATE SET wrapped = excluded.wrapped",
                         &q, err)) != ABIS_OK) {
        sq_keys_unlock(s);
        return st;
    }
    int rc = sq_bind_id(q, 1, subject);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 2, wrapped, (int)len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 3, sq_now_ms());
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        st = sq_fail(s, s->keys, rc, "storing a subject key", err);
    sq_done(q);
    sq_keys_unlock(s);
    return st;
}

/* Where key_get copies the key. */
struct key_out {
    unsigned char *buf;
    size_t cap;
    size_t len;
};

static void read_key(sqlite3_stmt *q, void *rec)
{
    struct key_out *o = rec;
    const void *b = sqlite3_column_blob(q, 0);
    o->len = b ? (size_t)sqlite3_column_bytes(q, 0) : 0;
    if (o->len <= o->cap && o->len)
        memcpy(o->buf, b, o->len);
}

abis_status sq_key_get(abis_store *base, const abis_id *subject, unsigned char *buf, size_t cap,
                       size_t *len, abis_error *err)
{
    if (!subject || !len || (!buf && cap))
        return abis_error_set(err, ABIS_E_INVALID, "key_get: missing subject or result");
    sq_store *s = sq_key_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare(s, SQ_KEY_GET, s->keys,
                                "SELECT wrapped FROM keys WHERE subject_id = ?1", &q, err);
    if (st != ABIS_OK)
        return st;
    struct key_out o = {buf, cap, 0};
    int found;
    if ((st = sq_get_row(s, s->keys, q, sq_bind_id(q, 1, subject), read_key, &o, &found,
                         "reading a subject key", err)) != ABIS_OK)
        return st;
    char hex[ABIS_ID_HEX_LEN + 1];
    if (!found) {
        sq_id_hex(subject, hex);
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no key for subject %s in %s", hex,
                              s->keys_path);
    }
    *len = o.len;
    if (o.len > cap) {
        sq_id_hex(subject, hex);
        return abis_error_set(err, ABIS_E_INVALID,
                              "the key of subject %s has %zu bytes; the buffer holds %zu", hex,
                              o.len, cap);
    }
    return ABIS_OK;
}

abis_status sq_key_delete(abis_store *base, const abis_id *subject, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_writable(s, "key_delete", err);
    if (st != ABIS_OK)
        return st;
    if (!subject)
        return abis_error_set(err, ABIS_E_INVALID, "key_delete: no subject");
    char hex[ABIS_ID_HEX_LEN + 1];
    sq_id_hex(subject, hex);
    sqlite3_stmt *q;
    sq_keys_lock(s);
    if ((st = sq_prepare(s, SQ_KEY_DELETE, s->keys, "DELETE FROM keys WHERE subject_id = ?1", &q,
                         err)) != ABIS_OK) {
        sq_keys_unlock(s);
        return st;
    }
    int rc = sq_bind_id(q, 1, subject);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        st = sq_fail(s, s->keys, rc, "deleting a subject key", err);
    else if (sqlite3_changes(s->keys) == 0)
        st =
            abis_error_set(err, ABIS_E_NOT_FOUND, "no key for subject %s in %s", hex, s->keys_path);
    sq_done(q);
    if (st == ABIS_OK && (st = sq_checkpoint_truncate(s, s->keys, err)) != ABIS_OK)
        abis_error_prefix(err, "the key of subject %s was deleted, but", hex);
    sq_keys_unlock(s);
    return st;
}

struct key_scan {
    abis_key_cb cb;
    void *ctx;
};

static int key_row(sqlite3_stmt *q, void *p)
{
    struct key_scan *c = p;
    abis_id id;
    sq_col_id(q, 0, &id);
    return c->cb(&id, sqlite3_column_int64(q, 1), c->ctx);
}

abis_status sq_key_scan(abis_store *base, abis_key_cb cb, void *ctx, abis_error *err)
{
    if (!cb)
        return abis_error_set(err, ABIS_E_INVALID, "key_scan: no callback");
    sq_store *s = sq_key_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    struct key_scan c = {cb, ctx};
    sqlite3_stmt *q;
    abis_status st = sq_prepare_fresh(
        s, s->keys, "SELECT subject_id, created_at FROM keys ORDER BY subject_id", &q, err);
    if (st != ABIS_OK)
        return st;
    return sq_scan(s, s->keys, q, key_row, &c, "scanning subject keys", err);
}

abis_status sq_keymeta_get(abis_store *base, const char *key, char *buf, size_t cap,
                           abis_error *err)
{
    return sq_kv_get(sq_of(base), SQ_KEYMETA_GET, 1, "SELECT value FROM keymeta WHERE key = ?1",
                     "keymeta", key, buf, cap, err);
}

abis_status sq_keymeta_set(abis_store *base, const char *key, const char *value, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_writable(s, "keymeta_set", err);
    if (st != ABIS_OK)
        return st;
    sq_keys_lock(s);
    st = sq_kv_set(s, SQ_KEYMETA_SET, s->keys,
                   "INSERT INTO keymeta (key, value) VALUES (?1, ?2)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   "keymeta", key, value, err);
    sq_keys_unlock(s);
    return st;
}
