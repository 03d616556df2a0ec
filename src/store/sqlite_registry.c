/*
 * sqlite_registry.c: the registry part of the SQLite store: small named
 * settings (meta, and the shared key/value helpers keymeta uses too),
 * segments, purposes, modalities and their calibrations.
 */
#include "store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- key/value settings --------------------------------------------------- */

/* Where a setting's value goes: the caller's buffer, and what it held. */
struct kv_out {
    char *buf;
    size_t cap;
    size_t len; /* bytes in the stored value */
};

static void read_kv(sqlite3_stmt *q, void *rec)
{
    struct kv_out *o = rec;
    const unsigned char *t = sqlite3_column_text(q, 0);
    o->len = t ? (size_t)sqlite3_column_bytes(q, 0) : 0;
    if (o->len < o->cap) {
        if (o->len)
            memcpy(o->buf, t, o->len);
        o->buf[o->len] = '\0';
    }
}

abis_status sq_kv_get(sq_store *s, enum sq_stmt_id id, int keys, const char *sql, const char *label,
                      const char *key, char *buf, size_t cap, abis_error *err)
{
    abis_status st = sq_check_text(key, ABIS_NAME_MAX, 0, "setting name", err);
    if (st != ABIS_OK)
        return st;
    if (!(s = keys ? sq_key_reader(s, err) : sq_reader(s, err)))
        return sq_reader_failed(err);
    sqlite3 *db = keys ? s->keys : s->db;
    if (!buf || cap == 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s '%s': no buffer for the value", label, key);
    sqlite3_stmt *q;
    if ((st = sq_prepare(s, id, db, sql, &q, err)) != ABIS_OK)
        return st;
    struct kv_out o = {buf, cap, 0};
    int found;
    int rc = sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if ((st = sq_get_row(s, db, q, rc, read_kv, &o, &found, "reading a setting", err)) != ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no %s setting '%s' in %s", label, key,
                              sq_path(s, db));
    if (o.len >= cap)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s setting '%s' holds %zu bytes; the buffer has room for %zu", label,
                              key, o.len, cap - 1);
    return ABIS_OK;
}

abis_status sq_kv_set(sq_store *s, enum sq_stmt_id id, sqlite3 *db, const char *sql,
                      const char *label, const char *key, const char *value, abis_error *err)
{
    abis_status st = sq_check_text(key, ABIS_NAME_MAX, 0, "setting name", err);
    if (st != ABIS_OK)
        return st;
    if (!value)
        return abis_error_set(err, ABIS_E_INVALID, "%s setting '%s': no value", label, key);
    sqlite3_stmt *q;
    if ((st = sq_prepare(s, id, db, sql, &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        st = sq_fail(s, db, rc, "writing a setting", err);
    sq_done(q);
    return st;
}

abis_status sq_meta_get(abis_store *base, const char *key, char *buf, size_t cap, abis_error *err)
{
    return sq_kv_get(sq_of(base), SQ_META_GET, 0, "SELECT value FROM meta WHERE key = ?1", "meta",
                     key, buf, cap, err);
}

abis_status sq_meta_set(abis_store *base, const char *key, const char *value, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "meta_set", err);
    if (st != ABIS_OK)
        return st;
    return sq_kv_set(s, SQ_META_SET, s->db,
                     "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     "meta", key, value, err);
}

/* ---- segments ------------------------------------------------------------- */

#define SEGMENT_COLS "id, name, created_at"

static void read_segment(sqlite3_stmt *q, void *rec)
{
    abis_segment_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(q, 0);
    sq_col_text(q, 1, r->name, sizeof r->name);
    r->created_at = sqlite3_column_int64(q, 2);
}

abis_status sq_segment_add(abis_store *base, abis_segment_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "segment_add", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->name, ABIS_NAME_MAX, 0, "segment name", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK || (st = sq_prepare(s, SQ_SEGMENT_ADD, s->db,
                                          "INSERT INTO segments (name, created_at)"
                                          " VALUES (?1, ?2)",
                                          &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_text(q, 1, r->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, r->created_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        r->id = sqlite3_last_insert_rowid(s->db);
    else if (rc == SQLITE_CONSTRAINT_UNIQUE)
        st = abis_error_set(err, ABIS_E_EXISTS, "segment '%s' already exists", r->name);
    else
        st = sq_fail(s, s->db, rc, "adding a segment", err);
    sq_done(q);
    return st;
}

/* The generic core of the get-one-row lookups of this file: `what` and
 * `missing` (already formatted) name the record in messages. */
static abis_status get_one(sq_store *s, enum sq_stmt_id id, const char *sql, const char *text,
                           int64_t num, sq_read_fn read, void *rec, const char *missing,
                           abis_error *err)
{
    if (!(s = sq_reader(s, err)))
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare(s, id, s->db, sql, &q, err);
    if (st != ABIS_OK)
        return st;
    int rc =
        text ? sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC) : sqlite3_bind_int64(q, 1, num);
    int found;
    if ((st = sq_get_row(s, s->db, q, rc, read, rec, &found, "looking up a record", err)) !=
        ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "%s", missing);
    return ABIS_OK;
}

abis_status sq_segment_get(abis_store *base, const char *name, abis_segment_rec *r, abis_error *err)
{
    char missing[ABIS_NAME_MAX + 32];
    abis_status st = sq_check_text(name, ABIS_NAME_MAX, 0, "segment name", err);
    if (st != ABIS_OK)
        return st;
    snprintf(missing, sizeof missing, "no segment '%s'", name);
    return get_one(sq_of(base), SQ_SEGMENT_GET,
                   "SELECT " SEGMENT_COLS " FROM segments WHERE name = ?1", name, 0, read_segment,
                   r, missing, err);
}

abis_status sq_segment_get_by_id(abis_store *base, int64_t id, abis_segment_rec *r, abis_error *err)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no segment with id %lld", (long long)id);
    return get_one(sq_of(base), SQ_SEGMENT_GET_ID,
                   "SELECT " SEGMENT_COLS " FROM segments WHERE id = ?1", NULL, id, read_segment, r,
                   missing, err);
}

struct segment_scan {
    abis_segment_rec_cb cb;
    void *ctx;
};

static int segment_row(sqlite3_stmt *q, void *p)
{
    struct segment_scan *c = p;
    abis_segment_rec r;
    read_segment(q, &r);
    return c->cb(&r, c->ctx);
}

/* The generic core of the list operations: every row of `sql`, in id order. */
static abis_status list_all(sq_store *s, const char *sql, sq_row_fn row, void *ctx, int has_cb,
                            const char *what, abis_error *err)
{
    if (!has_cb)
        return abis_error_set(err, ABIS_E_INVALID, "%s: no callback", what);
    if (!(s = sq_reader(s, err)))
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare_fresh(s, s->db, sql, &q, err);
    if (st != ABIS_OK)
        return st;
    return sq_scan(s, s->db, q, row, ctx, what, err);
}

abis_status sq_segment_list(abis_store *base, abis_segment_rec_cb cb, void *ctx, abis_error *err)
{
    struct segment_scan c = {cb, ctx};
    return list_all(sq_of(base), "SELECT " SEGMENT_COLS " FROM segments ORDER BY id", segment_row,
                    &c, cb != NULL, "listing segments", err);
}

/* ---- purposes ------------------------------------------------------------- */

#define PURPOSE_COLS "id, name, basis, target_fmr, legal_ref, description, created_at"

static void read_purpose(sqlite3_stmt *q, void *rec)
{
    abis_purpose_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(q, 0);
    sq_col_text(q, 1, r->name, sizeof r->name);
    r->basis = sqlite3_column_int(q, 2);
    r->target_fmr = sqlite3_column_double(q, 3);
    sq_col_text(q, 4, r->legal_ref, sizeof r->legal_ref);
    sq_col_text(q, 5, r->description, sizeof r->description);
    r->created_at = sqlite3_column_int64(q, 6);
}

abis_status sq_purpose_add(abis_store *base, abis_purpose_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "purpose_add", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->name, ABIS_NAME_MAX, 0, "purpose name", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->legal_ref, ABIS_TEXT_MAX, 1, "legal reference", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->description, ABIS_TEXT_MAX, 1, "purpose description", err);
    if (st == ABIS_OK && r->basis != ABIS_BASIS_CONSENT && r->basis != ABIS_BASIS_STATUTORY)
        st = abis_error_set(err, ABIS_E_INVALID,
                            "purpose '%s': legal basis %d is neither "
                            "consent (0) nor statutory (1)",
                            r->name, r->basis);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_PURPOSE_ADD, s->db,
                         "INSERT INTO purposes (name, basis, target_fmr, legal_ref,"
                         " description, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_text(q, 1, r->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(q, 2, r->basis);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(q, 3, r->target_fmr);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 4, r->legal_ref, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 5, r->description, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 6, r->created_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        r->id = sqlite3_last_insert_rowid(s->db);
    else if (rc == SQLITE_CONSTRAINT_UNIQUE)
        st = abis_error_set(err, ABIS_E_EXISTS, "purpose '%s' already exists", r->name);
    else
        st = sq_fail(s, s->db, rc, "adding a purpose", err);
    sq_done(q);
    return st;
}

abis_status sq_purpose_get(abis_store *base, const char *name, abis_purpose_rec *r, abis_error *err)
{
    char missing[ABIS_NAME_MAX + 32];
    abis_status st = sq_check_text(name, ABIS_NAME_MAX, 0, "purpose name", err);
    if (st != ABIS_OK)
        return st;
    snprintf(missing, sizeof missing, "no purpose '%s'", name);
    return get_one(sq_of(base), SQ_PURPOSE_GET,
                   "SELECT " PURPOSE_COLS " FROM purposes WHERE name = ?1", name, 0, read_purpose,
                   r, missing, err);
}

abis_status sq_purpose_get_by_id(abis_store *base, int64_t id, abis_purpose_rec *r, abis_error *err)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no purpose with id %lld", (long long)id);
    return get_one(sq_of(base), SQ_PURPOSE_GET_ID,
                   "SELECT " PURPOSE_COLS " FROM purposes WHERE id = ?1", NULL, id, read_purpose, r,
                   missing, err);
}

struct purpose_scan {
    abis_purpose_rec_cb cb;
    void *ctx;
};

static int purpose_row(sqlite3_stmt *q, void *p)
{
    struct purpose_scan *c = p;
    abis_purpose_rec r;
    read_purpose(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_purpose_list(abis_store *base, abis_purpose_rec_cb cb, void *ctx, abis_error *err)
{
    struct purpose_scan c = {cb, ctx};
    return list_all(sq_of(base), "SELECT " PURPOSE_COLS " FROM purposes ORDER BY id", purpose_row,
                    &c, cb != NULL, "listing purposes", err);
}

/* ---- modalities ----------------------------------------------------------- */

#define MODALITY_COLS "id, name, kind, dim, created_at"

static void read_modality(sqlite3_stmt *q, void *rec)
{
    abis_modality_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(q, 0);
    sq_col_text(q, 1, r->name, sizeof r->name);
    sq_col_text(q, 2, r->kind, sizeof r->kind);
    r->dim = sqlite3_column_int(q, 3);
    r->created_at = sqlite3_column_int64(q, 4);
}

abis_status sq_modality_add(abis_store *base, abis_modality_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "modality_add", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->name, ABIS_NAME_MAX, 0, "modality name", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->kind, sizeof r->kind - 1, 0, "modality kind", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK || (st = sq_prepare(s, SQ_MODALITY_ADD, s->db,
                                          "INSERT INTO modalities (name, kind, dim, created_at)"
                                          " VALUES (?1, ?2, ?3, ?4)",
                                          &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_text(q, 1, r->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 2, r->kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(q, 3, r->dim);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 4, r->created_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        r->id = sqlite3_last_insert_rowid(s->db);
    else if (rc == SQLITE_CONSTRAINT_UNIQUE)
        st = abis_error_set(err, ABIS_E_EXISTS, "modality '%s' already exists", r->name);
    else
        st = sq_fail(s, s->db, rc, "adding a modality", err);
    sq_done(q);
    return st;
}

abis_status sq_modality_get(abis_store *base, const char *name, abis_modality_rec *r,
                            abis_error *err)
{
    char missing[ABIS_NAME_MAX + 32];
    abis_status st = sq_check_text(name, ABIS_NAME_MAX, 0, "modality name", err);
    if (st != ABIS_OK)
        return st;
    snprintf(missing, sizeof missing, "no modality '%s'", name);
    return get_one(sq_of(base), SQ_MODALITY_GET,
                   "SELECT " MODALITY_COLS " FROM modalities WHERE name = ?1", name, 0,
                   read_modality, r, missing, err);
}

abis_status sq_modality_get_by_id(abis_store *base, int64_t id, abis_modality_rec *r,
                                  abis_error *err)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no modality with id %lld", (long long)id);
    return get_one(sq_of(base), SQ_MODALITY_GET_ID,
                   "SELECT " MODALITY_COLS " FROM modalities WHERE id = ?1", NULL, id,
                   read_modality, r, missing, err);
}

struct modality_scan {
    abis_modality_rec_cb cb;
    void *ctx;
};

static int modality_row(sqlite3_stmt *q, void *p)
{
    struct modality_scan *c = p;
    abis_modality_rec r;
    read_modality(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_modality_list(abis_store *base, abis_modality_rec_cb cb, void *ctx, abis_error *err)
{
    struct modality_scan c = {cb, ctx};
    return list_all(sq_of(base), "SELECT " MODALITY_COLS " FROM modalities ORDER BY id",
                    modality_row, &c, cb != NULL, "listing modalities", err);
}

/* ---- calibrations ----------------------------------------------------------- */

/* The calibration column and the modality's name (for the message when unset). */
struct calibration_out {
    char name[ABIS_NAME_MAX + 1];
    char *json; /* malloc'd copy, NULL when the column is NULL */
    int nomem;
};

static void read_calibration(sqlite3_stmt *q, void *rec)
{
    struct calibration_out *o = rec;
    sq_col_text(q, 0, o->name, sizeof o->name);
    const unsigned char *t = sqlite3_column_text(q, 1);
    if (!t)
        return;
    size_t n = (size_t)sqlite3_column_bytes(q, 1);
    o->json = malloc(n + 1);
    if (!o->json) {
        o->nomem = 1;
        return;
    }
    memcpy(o->json, t, n);
    o->json[n] = '\0';
}

abis_status sq_calibration_get(abis_store *base, int64_t modality_id, char **json, abis_error *err)
{
    if (!json)
        return abis_error_set(err, ABIS_E_INVALID, "calibration_get: no result pointer");
    *json = NULL;
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare(s, SQ_CALIBRATION_GET, s->db,
                                "SELECT name, calibration FROM modalities WHERE id = ?1", &q, err);
    if (st != ABIS_OK)
        return st;
    struct calibration_out o = {{0}, NULL, 0};
    int found;
    int rc = sqlite3_bind_int64(q, 1, modality_id);
    if ((st = sq_get_row(s, s->db, q, rc, read_calibration, &o, &found, "reading a calibration",
                         err)) != ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no modality with id %lld",
                              (long long)modality_id);
    if (o.nomem)
        return abis_error_set(err, ABIS_E_NOMEM,
                              "reading the calibration of modality '%s': "
                              "out of memory",
                              o.name);
    if (!o.json)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "modality '%s' has no calibration yet",
                              o.name);
    *json = o.json;
    return ABIS_OK;
}

abis_status sq_calibration_set(abis_store *base, int64_t modality_id, const char *json,
                               abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "calibration_set", err);
    if (st == ABIS_OK && !json)
        st = abis_error_set(err, ABIS_E_INVALID, "calibration_set: no calibration given");
    sqlite3_stmt *q;
    if (st != ABIS_OK || (st = sq_prepare(s, SQ_CALIBRATION_SET, s->db,
                                          "UPDATE modalities SET calibration = ?2 WHERE id = ?1",
                                          &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, modality_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 2, json, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        st = sq_fail(s, s->db, rc, "storing a calibration", err);
    else if (sqlite3_changes(s->db) == 0)
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "no modality with id %lld",
                            (long long)modality_id);
    sq_done(q);
    return st;
}
