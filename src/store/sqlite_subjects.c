/*
 * sqlite_subjects.c: subjects and what hangs off them in the SQLite store:
 * sealed templates, consents and locks.  Deleting a subject removes the
 * other three through ON DELETE CASCADE (foreign_keys is on for every
 * connection, store_sqlite.c).
 */
#include "store/sqlite_internal.h"

#include <stdio.h>
#include <string.h>

/* Parameters of a scan: ?1 is the id when `id` is given, else ?1 and ?2 are
 * a and b (only those the SQL names are bound). */
struct scan_params {
    const abis_id *id;
    int64_t a, b;
};

/* The generic core of every scan in this file.  `id` names the cached
 * statement to use (SQ_STMT_COUNT: none); when it is busy -- a callback
 * running this same scan again -- a fresh one is prepared. */
static abis_status scan(sq_store *s, enum sq_stmt_id id, const char *sql, struct scan_params p,
                        sq_row_fn row, void *ctx, int has_cb, const char *what, abis_error *err)
{
    if (!has_cb)
        return abis_error_set(err, ABIS_E_INVALID, "%s: no callback", what);
    if (!(s = sq_reader(s, err)))
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    int cached = id < SQ_STMT_COUNT && !(s->stmt[id] && sqlite3_stmt_busy(s->stmt[id]));
    abis_status st =
        cached ? sq_prepare(s, id, s->db, sql, &q, err) : sq_prepare_fresh(s, s->db, sql, &q, err);
    if (st != ABIS_OK)
        return st;
    int n = sqlite3_bind_parameter_count(q), rc = SQLITE_OK;
    if (p.id) {
        rc = sq_bind_id(q, 1, p.id);
    } else {
        if (n >= 1)
            rc = sqlite3_bind_int64(q, 1, p.a);
        if (rc == SQLITE_OK && n >= 2)
            rc = sqlite3_bind_int64(q, 2, p.b);
    }
    if (rc != SQLITE_OK)
        st = sq_fail(s, s->db, rc, what, err);
    else
        st = sq_scan_rows(s, s->db, q, row, ctx, what, err);
    if (cached)
        sq_done(q);
    else
        sqlite3_finalize(q);
    return st;
}

/* Step a bound write statement and reset it; returns SQLite's result. */
static int step_write(sqlite3_stmt *q, int bind_rc)
{
    return bind_rc == SQLITE_OK ? sqlite3_step(q) : bind_rc;
}

/* ---- subjects ------------------------------------------------------------- */

#define SUBJECT_COLS "s.id, s.segment_id, s.external_ref, s.created_at"

static void read_subject(sqlite3_stmt *q, void *rec)
{
    abis_subject_rec *r = rec;
    memset(r, 0, sizeof *r);
    sq_col_id(q, 0, &r->id);
    r->segment_id = sqlite3_column_int64(q, 1);
    sq_col_text(q, 2, r->external_ref, sizeof r->external_ref); /* NULL reads as "" */
    r->created_at = sqlite3_column_int64(q, 3);
}

abis_status sq_subject_insert(abis_store *base, const abis_subject_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    char hex[ABIS_ID_HEX_LEN + 1];
    abis_status st = sq_need_tx(s, "subject_insert", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->external_ref, ABIS_REF_MAX, 1, "external reference", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_SUBJECT_INSERT, s->db,
                         "INSERT INTO subjects (id, segment_id, external_ref, created_at)"
                         " VALUES (?1, ?2, ?3, ?4)",
                         &q, err)) != ABIS_OK)
        return st;
    int rc = sq_bind_id(q, 1, &r->id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, r->segment_id);
    if (rc == SQLITE_OK)
        rc = r->external_ref[0] ? sqlite3_bind_text(q, 3, r->external_ref, -1, SQLITE_STATIC)
                                : sqlite3_bind_null(q, 3);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 4, r->created_at);
    rc = step_write(q, rc);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        sq_id_hex(&r->id, hex);
        st = abis_error_set(err, ABIS_E_EXISTS, "subject %s already exists", hex);
    } else if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        /* The reference itself stays out of the message: it may identify a person. */
        st = abis_error_set(err, ABIS_E_EXISTS,
                            "external reference already used in this segment (segment id %lld)",
                            (long long)r->segment_id);
    } else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "no segment with id %lld",
                            (long long)r->segment_id);
    } else if (rc != SQLITE_DONE) {
        st = sq_fail(s, s->db, rc, "inserting a subject", err);
    }
    sq_done(q);
    return st;
}

abis_status sq_subject_get(abis_store *base, const abis_id *id, abis_subject_rec *r,
                           abis_error *err)
{
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare(s, SQ_SUBJECT_GET, s->db,
                                "SELECT " SUBJECT_COLS " FROM subjects s WHERE s.id = ?1", &q, err);
    if (st != ABIS_OK)
        return st;
    int found;
    if ((st = sq_get_row(s, s->db, q, sq_bind_id(q, 1, id), read_subject, r, &found,
                         "looking up a subject", err)) != ABIS_OK)
        return st;
    if (!found) {
        char hex[ABIS_ID_HEX_LEN + 1];
        sq_id_hex(id, hex);
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no subject %s", hex);
    }
    return ABIS_OK;
}

abis_status sq_subject_find_ref(abis_store *base, int64_t segment_id, const char *ref,
                                abis_subject_rec *r, abis_error *err)
{
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    abis_status st = sq_check_text(ref, ABIS_REF_MAX, 0, "external reference", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK || (st = sq_prepare(s, SQ_SUBJECT_FIND_REF, s->db,
                                          "SELECT " SUBJECT_COLS " FROM subjects s"
                                          " WHERE s.segment_id = ?1 AND s.external_ref = ?2",
                                          &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, segment_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 2, ref, -1, SQLITE_STATIC);
    int found;
    if ((st = sq_get_row(s, s->db, q, rc, read_subject, r, &found,
                         "looking up an external reference", err)) != ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND,
                              "no subject with that external reference in segment id %lld",
                              (long long)segment_id);
    return ABIS_OK;
}

abis_status sq_subject_delete(abis_store *base, const abis_id *id, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "subject_delete", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_SUBJECT_DELETE, s->db, "DELETE FROM subjects WHERE id = ?1", &q,
                         err)) != ABIS_OK)
        return st;
    int rc = step_write(q, sq_bind_id(q, 1, id));
    if (rc != SQLITE_DONE) {
        st = sq_fail(s, s->db, rc, "deleting a subject", err);
    } else if (sqlite3_changes(s->db) == 0) {
        char hex[ABIS_ID_HEX_LEN + 1];
        sq_id_hex(id, hex);
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "no subject %s", hex);
    }
    sq_done(q);
    return st;
}

struct subject_scan {
    abis_subject_rec_cb cb;
    void *ctx;
};

static int subject_row(sqlite3_stmt *q, void *p)
{
    struct subject_scan *c = p;
    abis_subject_rec r;
    read_subject(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_subject_scan(abis_store *base, int64_t segment_id, abis_subject_rec_cb cb, void *ctx,
                            abis_error *err)
{
    struct subject_scan c = {cb, ctx};
    struct scan_params p = {NULL, segment_id, 0};
    const char *sql = segment_id ? "SELECT " SUBJECT_COLS " FROM subjects s"
                                   " WHERE s.segment_id = ?1"
                                 : "SELECT " SUBJECT_COLS " FROM subjects s";
    return scan(sq_of(base), SQ_STMT_COUNT, sql, p, subject_row, &c, cb != NULL,
                "scanning subjects", err);
}

abis_status sq_subject_count(abis_store *base, int64_t segment_id, uint64_t *n, abis_error *err)
{
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    if (!n)
        return abis_error_set(err, ABIS_E_INVALID, "subject_count: no result pointer");
    sqlite3_stmt *q;
    abis_status st =
        segment_id
            ? sq_prepare(s, SQ_SUBJECT_COUNT, s->db,
                         "SELECT count(*) FROM subjects WHERE segment_id = ?1", &q, err)
            : sq_prepare(s, SQ_SUBJECT_COUNT_ALL, s->db, "SELECT count(*) FROM subjects", &q, err);
    if (st != ABIS_OK)
        return st;
    int rc = segment_id ? sqlite3_bind_int64(q, 1, segment_id) : SQLITE_OK;
    rc = step_write(q, rc);
    if (rc == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(q, 0);
    else
        st = sq_fail(s, s->db, rc, "counting subjects", err);
    sq_done(q);
    return st;
}

/* ---- templates ------------------------------------------------------------ */

#define TEMPLATE_COLS                                                                              \
    "t.id, t.subject_id, t.modality_id, t.position, t.format, t.quality, t.created_at, t.sealed"

/* The record points into the statement: valid until the next step. */
static void read_template(sqlite3_stmt *q, abis_template_rec *r)
{
    memset(r, 0, sizeof *r);
    sq_col_id(q, 0, &r->id);
    sq_col_id(q, 1, &r->subject_id);
    r->modality_id = sqlite3_column_int64(q, 2);
    r->position = sqlite3_column_int(q, 3);
    sq_col_text(q, 4, r->format, sizeof r->format);
    r->quality = sqlite3_column_double(q, 5);
    r->created_at = sqlite3_column_int64(q, 6);
    r->sealed = sqlite3_column_blob(q, 7);
    r->sealed_len = (size_t)sqlite3_column_bytes(q, 7);
}

/* Which parent a failed foreign key of a template, consent or lock insert
 * names: the subject when it is missing, else the other parent's message. */
static abis_status missing_parent(sq_store *s, const abis_id *subject, const char *other,
                                  abis_error *err)
{
    abis_subject_rec r;
    abis_status st = sq_subject_get(&s->base, subject, &r, err);
    if (st == ABIS_OK)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "%s", other);
    return st;
}

abis_status sq_template_insert(abis_store *base, const abis_template_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    char hex[ABIS_ID_HEX_LEN + 1], other[64];
    abis_status st = sq_need_tx(s, "template_insert", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->format, sizeof r->format - 1, 0, "template format", err);
    if (st == ABIS_OK && (!r->sealed || r->sealed_len == 0))
        st = abis_error_set(err, ABIS_E_INVALID, "template_insert: no sealed template");
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_TEMPLATE_INSERT, s->db,
                         "INSERT INTO templates (id, subject_id, modality_id, position, format,"
                         " quality, created_at, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                         &q, err)) != ABIS_OK)
        return st;
    if (r->sealed_len > (size_t)0x7fffffff) {
        sq_done(q);
        return abis_error_set(err, ABIS_E_INVALID, "sealed template of %zu bytes is too large",
                              r->sealed_len);
    }
    int rc = sq_bind_id(q, 1, &r->id);
    if (rc == SQLITE_OK)
        rc = sq_bind_id(q, 2, &r->subject_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 3, r->modality_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(q, 4, r->position);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 5, r->format, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(q, 6, r->quality);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 7, r->created_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 8, r->sealed, (int)r->sealed_len, SQLITE_STATIC);
    rc = step_write(q, rc);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        sq_id_hex(&r->id, hex);
        st = abis_error_set(err, ABIS_E_EXISTS, "template %s already exists", hex);
    } else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        snprintf(other, sizeof other, "no modality with id %lld", (long long)r->modality_id);
        sq_done(q);
        return missing_parent(s, &r->subject_id, other, err);
    } else if (rc != SQLITE_DONE) {
        st = sq_fail(s, s->db, rc, "inserting a template", err);
    }
    sq_done(q);
    return st;
}

abis_status sq_template_delete(abis_store *base, const abis_id *id, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "template_delete", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_TEMPLATE_DELETE, s->db, "DELETE FROM templates WHERE id = ?1", &q,
                         err)) != ABIS_OK)
        return st;
    int rc = step_write(q, sq_bind_id(q, 1, id));
    if (rc != SQLITE_DONE) {
        st = sq_fail(s, s->db, rc, "deleting a template", err);
    } else if (sqlite3_changes(s->db) == 0) {
        char hex[ABIS_ID_HEX_LEN + 1];
        sq_id_hex(id, hex);
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "no template %s", hex);
    }
    sq_done(q);
    return st;
}

struct template_scan {
    abis_template_rec_cb cb;
    void *ctx;
};

static int template_row(sqlite3_stmt *q, void *p)
{
    struct template_scan *c = p;
    abis_template_rec r;
    read_template(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_template_scan_subject(abis_store *base, const abis_id *subject,
                                     abis_template_rec_cb cb, void *ctx, abis_error *err)
{
    struct template_scan c = {cb, ctx};
    struct scan_params p = {subject, 0, 0};
    if (!subject)
        return abis_error_set(err, ABIS_E_INVALID, "template_scan_subject: no subject");
    return scan(sq_of(base), SQ_TEMPLATE_SCAN_SUBJECT,
                "SELECT " TEMPLATE_COLS " FROM templates t WHERE t.subject_id = ?1"
                " ORDER BY t.rowid",
                p, template_row, &c, cb != NULL, "scanning a subject's templates", err);
}

abis_status sq_template_scan(abis_store *base, int64_t segment_id, int64_t modality_id,
                             abis_template_rec_cb cb, void *ctx, abis_error *err)
{
    struct template_scan c = {cb, ctx};
    struct scan_params p = {NULL, modality_id, segment_id};
    const char *sql = segment_id ? "SELECT " TEMPLATE_COLS " FROM templates t"
                                   " JOIN subjects s ON s.id = t.subject_id"
                                   " WHERE t.modality_id = ?1 AND s.segment_id = ?2"
                                 : "SELECT " TEMPLATE_COLS " FROM templates t"
                                   " WHERE t.modality_id = ?1";
    return scan(sq_of(base), SQ_STMT_COUNT, sql, p, template_row, &c, cb != NULL,
                "scanning templates", err);
}

/* ---- consents ------------------------------------------------------------- */

#define CONSENT_COLS "c.subject_id, c.purpose_id, c.granted, c.at, c.channel"

static void read_consent(sqlite3_stmt *q, void *rec)
{
    abis_consent_rec *r = rec;
    memset(r, 0, sizeof *r);
    sq_col_id(q, 0, &r->subject_id);
    r->purpose_id = sqlite3_column_int64(q, 1);
    r->granted = sqlite3_column_int(q, 2);
    r->at = sqlite3_column_int64(q, 3);
    sq_col_text(q, 4, r->channel, sizeof r->channel);
}

abis_status sq_consent_put(abis_store *base, const abis_consent_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "consent_put", err);
    if (st == ABIS_OK)
        st = sq_check_text(r->channel, ABIS_TEXT_MAX, 1, "consent channel", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_CONSENT_PUT, s->db,
                         "INSERT INTO consents (subject_id, purpose_id, granted, at, channel)"
                         " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (subject_id, purpose_id)"
                         " DO UPDATE SET granted = excluded.granted, at = excluded.at,"
                         " channel = excluded.channel",
                         &q, err)) != ABIS_OK)
        return st;
    int rc = sq_bind_id(q, 1, &r->subject_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, r->purpose_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(q, 3, r->granted ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 4, r->at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 5, r->channel, -1, SQLITE_STATIC);
    rc = step_write(q, rc);
    sq_done(q);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        char other[64];
        snprintf(other, sizeof other, "no purpose with id %lld", (long long)r->purpose_id);
        return missing_parent(s, &r->subject_id, other, err);
    }
    if (rc != SQLITE_DONE)
        return sq_fail(s, s->db, rc, "recording a consent", err);
    return ABIS_OK;
}

abis_status sq_consent_get(abis_store *base, const abis_id *subject, int64_t purpose_id,
                           abis_consent_rec *r, abis_error *err)
{
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare(s, SQ_CONSENT_GET, s->db,
                                "SELECT " CONSENT_COLS " FROM consents c"
                                " WHERE c.subject_id = ?1 AND c.purpose_id = ?2",
                                &q, err);
    if (st != ABIS_OK)
        return st;
    int rc = sq_bind_id(q, 1, subject);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, purpose_id);
    int found;
    if ((st = sq_get_row(s, s->db, q, rc, read_consent, r, &found, "looking up a consent", err)) !=
        ABIS_OK)
        return st;
    if (!found) {
        char hex[ABIS_ID_HEX_LEN + 1];
        sq_id_hex(subject, hex);
        return abis_error_set(err, ABIS_E_NOT_FOUND,
                              "no consent record of subject %s for purpose id %lld", hex,
                              (long long)purpose_id);
    }
    return ABIS_OK;
}

struct consent_scan {
    abis_consent_rec_cb cb;
    void *ctx;
};

static int consent_row(sqlite3_stmt *q, void *p)
{
    struct consent_scan *c = p;
    abis_consent_rec r;
    read_consent(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_consent_scan_subject(abis_store *base, const abis_id *subject,
                                    abis_consent_rec_cb cb, void *ctx, abis_error *err)
{
    struct consent_scan c = {cb, ctx};
    struct scan_params p = {subject, 0, 0};
    if (!subject)
        return abis_error_set(err, ABIS_E_INVALID, "consent_scan_subject: no subject");
    return scan(sq_of(base), SQ_CONSENT_SCAN_SUBJECT,
                "SELECT " CONSENT_COLS " FROM consents c WHERE c.subject_id = ?1"
                " ORDER BY c.purpose_id",
                p, consent_row, &c, cb != NULL, "scanning a subject's consents", err);
}

abis_status sq_consent_scan_granted(abis_store *base, int64_t segment_id, abis_consent_rec_cb cb,
                                    void *ctx, abis_error *err)
{
    struct consent_scan c = {cb, ctx};
    struct scan_params p = {NULL, segment_id, 0};
    const char *sql = segment_id ? "SELECT " CONSENT_COLS " FROM consents c"
                                   " JOIN subjects s ON s.id = c.subject_id"
                                   " WHERE c.granted = 1 AND s.segment_id = ?1"
                                 : "SELECT " CONSENT_COLS " FROM consents c WHERE c.granted = 1";
    return scan(sq_of(base), SQ_STMT_COUNT, sql, p, consent_row, &c, cb != NULL,
                "scanning granted consents", err);
}

/* ---- locks ---------------------------------------------------------------- */

#define LOCK_COLS "l.subject_id, l.modality_id, l.at"

static void read_lock(sqlite3_stmt *q, void *rec)
{
    abis_lock_rec *r = rec;
    memset(r, 0, sizeof *r);
    sq_col_id(q, 0, &r->subject_id);
    r->modality_id = sqlite3_column_int64(q, 1);
    r->at = sqlite3_column_int64(q, 2);
}

abis_status sq_lock_put(abis_store *base, const abis_lock_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "lock_put", err);
    if (st == ABIS_OK && r->modality_id < 0)
        st = abis_error_set(err, ABIS_E_INVALID,
                            "lock_put: modality id %lld (0 means all modalities)",
                            (long long)r->modality_id);
    if (st == ABIS_OK && r->modality_id > 0) {
        /* Not a foreign key in the schema (0 means "all"): checked here. */
        abis_modality_rec m;
        st = sq_modality_get_by_id(base, r->modality_id, &m, err);
    }
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_LOCK_PUT, s->db,
                         "INSERT INTO locks (subject_id, modality_id, at) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (subject_id, modality_id) DO UPDATE SET at = excluded.at",
                         &q, err)) != ABIS_OK)
        return st;
    int rc = sq_bind_id(q, 1, &r->subject_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, r->modality_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 3, r->at);
    rc = step_write(q, rc);
    sq_done(q);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return missing_parent(s, &r->subject_id, "lock_put: a foreign key failed", err);
    if (rc != SQLITE_DONE)
        return sq_fail(s, s->db, rc, "recording a lock", err);
    return ABIS_OK;
}

abis_status sq_lock_delete(abis_store *base, const abis_id *subject, int64_t modality_id,
                           abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "lock_delete", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_LOCK_DELETE, s->db,
                         "DELETE FROM locks WHERE subject_id = ?1 AND modality_id = ?2", &q,
                         err)) != ABIS_OK)
        return st;
    int rc = sq_bind_id(q, 1, subject);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, modality_id);
    rc = step_write(q, rc);
    if (rc != SQLITE_DONE) {
        st = sq_fail(s, s->db, rc, "removing a lock", err);
    } else if (sqlite3_changes(s->db) == 0) {
        char hex[ABIS_ID_HEX_LEN + 1], on[48];
        sq_id_hex(subject, hex);
        if (modality_id)
            snprintf(on, sizeof on, "modality id %lld", (long long)modality_id);
        else
            snprintf(on, sizeof on, "all modalities");
        st = abis_error_set(err, ABIS_E_NOT_FOUND, "subject %s has no lock on %s", hex, on);
    }
    sq_done(q);
    return st;
}

struct lock_scan {
    abis_lock_rec_cb cb;
    void *ctx;
};

static int lock_row(sqlite3_stmt *q, void *p)
{
    struct lock_scan *c = p;
    abis_lock_rec r;
    read_lock(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_lock_scan_subject(abis_store *base, const abis_id *subject, abis_lock_rec_cb cb,
                                 void *ctx, abis_error *err)
{
    struct lock_scan c = {cb, ctx};
    struct scan_params p = {subject, 0, 0};
    if (!subject)
        return abis_error_set(err, ABIS_E_INVALID, "lock_scan_subject: no subject");
    return scan(sq_of(base), SQ_LOCK_SCAN_SUBJECT,
                "SELECT " LOCK_COLS " FROM locks l WHERE l.subject_id = ?1 ORDER BY l.modality_id",
                p, lock_row, &c, cb != NULL, "scanning a subject's locks", err);
}

abis_status sq_lock_scan(abis_store *base, int64_t segment_id, abis_lock_rec_cb cb, void *ctx,
                         abis_error *err)
{
    struct lock_scan c = {cb, ctx};
    struct scan_params p = {NULL, segment_id, 0};
    const char *sql = segment_id ? "SELECT " LOCK_COLS " FROM locks l"
                                   " JOIN subjects s ON s.id = l.subject_id"
                                   " WHERE s.segment_id = ?1"
                                 : "SELECT " LOCK_COLS " FROM locks l";
    return scan(sq_of(base), SQ_STMT_COUNT, sql, p, lock_row, &c, cb != NULL, "scanning locks",
                err);
}
