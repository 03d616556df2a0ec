/*
 * sqlite_audit.c: the audit log's rows in the SQLite store: entries and
 * signed checkpoints.  The store only appends: triggers in the schema
 * (sqlite_schema.c) refuse UPDATE and DELETE on both tables and an entry
 * whose seq does not follow the last one.  Hashing and signing are
 * src/audit/'s; the store keeps the bytes it is given.
 */
#include "store/sqlite_internal.h"

#include <string.h>

#define AUDIT_COLS                                                                                 \
    "seq, at, actor, operation, segment, subject, purpose, outcome, decision, detail, "            \
    "prev_hash, hash"

static void read_audit(sqlite3_stmt *q, void *rec)
{
    abis_audit_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->seq = sqlite3_column_int64(q, 0);
    r->at = sqlite3_column_int64(q, 1);
    sq_col_text(q, 2, r->actor, sizeof r->actor);
    sq_col_text(q, 3, r->operation, sizeof r->operation);
    sq_col_text(q, 4, r->segment, sizeof r->segment);
    sq_col_text(q, 5, r->subject, sizeof r->subject);
    sq_col_text(q, 6, r->purpose, sizeof r->purpose);
    sq_col_text(q, 7, r->outcome, sizeof r->outcome);
    sq_col_text(q, 8, r->decision, sizeof r->decision);
    sq_col_text(q, 9, r->detail, sizeof r->detail);
    sq_col_bytes(q, 10, r->prev_hash, sizeof r->prev_hash);
    sq_col_bytes(q, 11, r->hash, sizeof r->hash);
}

/* Every text field of an entry is NUL-terminated within its buffer. */
static abis_status check_audit_text(const abis_audit_rec *r, abis_error *err)
{
    struct {
        const char *text;
        size_t max;
        const char *what;
    } f[] = {
        {r->actor, sizeof r->actor - 1, "audit actor"},
        {r->operation, sizeof r->operation - 1, "audit operation"},
        {r->segment, sizeof r->segment - 1, "audit segment"},
        {r->subject, sizeof r->subject - 1, "audit subject"},
        {r->purpose, sizeof r->purpose - 1, "audit purpose"},
        {r->outcome, sizeof r->outcome - 1, "audit outcome"},
        {r->decision, sizeof r->decision - 1, "audit decision"},
        {r->detail, sizeof r->detail - 1, "audit detail"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        abis_status st = sq_check_text(f[i].text, f[i].max, 1, f[i].what, err);
        if (st != ABIS_OK)
            return st;
    }
    return ABIS_OK;
}

abis_status sq_audit_append(abis_store *base, const abis_audit_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "audit_append", err);
    if (st == ABIS_OK)
        st = check_audit_text(r, err);
    sqlite3_stmt *q;
    if (st != ABIS_OK ||
        (st = sq_prepare(s, SQ_AUDIT_APPEND, s->db,
                         "INSERT INTO audit (" AUDIT_COLS ")"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                         &q, err)) != ABIS_OK)
        return st;
    const char *text[] = {r->actor,   r->operation, r->segment,  r->subject,
                          r->purpose, r->outcome,   r->decision, r->detail};
    int rc = sqlite3_bind_int64(q, 1, r->seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, r->at);
    for (int i = 0; i < 8 && rc == SQLITE_OK; i++)
        rc = sqlite3_bind_text(q, 3 + i, text[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 11, r->prev_hash, ABIS_HASH_BYTES, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 12, r->hash, ABIS_HASH_BYTES, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    sq_done(q);
    if (rc == SQLITE_CONSTRAINT_TRIGGER || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        abis_audit_rec last;
        abis_error ignored;
        int64_t last_seq = sq_audit_last(base, &last, &ignored) == ABIS_OK ? last.seq : 0;
        return abis_error_set(err, ABIS_E_INVALID,
                              "audit entry %lld does not follow the last entry (%lld): entries "
                              "are appended in sequence",
                              (long long)r->seq, (long long)last_seq);
    }
    if (rc != SQLITE_DONE)
        return sq_fail(s, s->db, rc, "appending an audit entry", err);
    return ABIS_OK;
}

abis_status sq_audit_last(abis_store *base, abis_audit_rec *r, abis_error *err)
{
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st =
        sq_prepare(s, SQ_AUDIT_LAST, s->db,
                   "SELECT " AUDIT_COLS " FROM audit ORDER BY seq DESC LIMIT 1", &q, err);
    int found;
    if (st != ABIS_OK || (st = sq_get_row(s, s->db, q, SQLITE_OK, read_audit, r, &found,
                                          "reading the last audit entry", err)) != ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "the audit log in %s is empty", s->db_path);
    return ABIS_OK;
}

struct audit_scan {
    abis_audit_rec_cb cb;
    void *ctx;
};

static int audit_row(sqlite3_stmt *q, void *p)
{
    struct audit_scan *c = p;
    abis_audit_rec r;
    read_audit(q, &r);
    return c->cb(&r, c->ctx);
}

/* The generic core of both audit scans: ?1 bound to `text` or `num`. */
static abis_status scan_audit(sq_store *s, const char *sql, const char *text, int64_t num,
                              abis_audit_rec_cb cb, void *ctx, const char *what, abis_error *err)
{
    if (!cb)
        return abis_error_set(err, ABIS_E_INVALID, "%s: no callback", what);
    struct audit_scan c = {cb, ctx};
    if (!(s = sq_reader(s, err)))
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare_fresh(s, s->db, sql, &q, err);
    if (st != ABIS_OK)
        return st;
    int rc =
        text ? sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC) : sqlite3_bind_int64(q, 1, num);
    if (rc != SQLITE_OK) {
        st = sq_fail(s, s->db, rc, what, err);
        sqlite3_finalize(q);
        return st;
    }
    return sq_scan(s, s->db, q, audit_row, &c, what, err);
}

abis_status sq_audit_scan(abis_store *base, int64_t from_seq, abis_audit_rec_cb cb, void *ctx,
                          abis_error *err)
{
    return scan_audit(sq_of(base), "SELECT " AUDIT_COLS " FROM audit WHERE seq >= ?1 ORDER BY seq",
                      NULL, from_seq, cb, ctx, "scanning the audit log", err);
}

abis_status sq_audit_scan_subject(abis_store *base, const char *subject_hex, abis_audit_rec_cb cb,
                                  void *ctx, abis_error *err)
{
    abis_status st = sq_check_text(subject_hex, ABIS_ID_HEX_LEN, 0, "subject id", err);
    if (st != ABIS_OK)
        return st;
    /* "subject <> ''" lets the planner use the partial index audit_by_subject. */
    return scan_audit(sq_of(base),
                      "SELECT " AUDIT_COLS " FROM audit WHERE subject = ?1 AND subject <> ''"
                      " ORDER BY seq",
                      subject_hex, 0, cb, ctx, "scanning a subject's audit entries", err);
}

/* ---- checkpoints ---------------------------------------------------------- */

#define CHECKPOINT_COLS "seq, at, head, sig"

static void read_checkpoint(sqlite3_stmt *q, void *rec)
{
    abis_checkpoint_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->seq = sqlite3_column_int64(q, 0);
    r->at = sqlite3_column_int64(q, 1);
    sq_col_bytes(q, 2, r->head, sizeof r->head);
    sq_col_bytes(q, 3, r->sig, sizeof r->sig);
}

abis_status sq_checkpoint_add(abis_store *base, const abis_checkpoint_rec *r, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_tx(s, "checkpoint_add", err);
    sqlite3_stmt *q;
    if (st != ABIS_OK || (st = sq_prepare(s, SQ_CHECKPOINT_ADD, s->db,
                                          "INSERT INTO audit_checkpoints (" CHECKPOINT_COLS ")"
                                          " VALUES (?1, ?2, ?3, ?4)",
                                          &q, err)) != ABIS_OK)
        return st;
    int rc = sqlite3_bind_int64(q, 1, r->seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q, 2, r->at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 3, r->head, ABIS_HASH_BYTES, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(q, 4, r->sig, ABIS_SIG_BYTES, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    sq_done(q);
    if (rc == SQLITE_CONSTRAINT_TRIGGER)
        return abis_error_set(err, ABIS_E_INVALID,
                              "audit checkpoint at entry %lld is older than the last checkpoint",
                              (long long)r->seq);
    if (rc == SQLITE_CONSTRAINT_CHECK)
        return abis_error_set(err, ABIS_E_INVALID, "audit checkpoint at entry %lld: bad seq",
                              (long long)r->seq);
    if (rc != SQLITE_DONE)
        return sq_fail(s, s->db, rc, "adding an audit checkpoint", err);
    return ABIS_OK;
}

struct checkpoint_scan {
    abis_checkpoint_rec_cb cb;
    void *ctx;
};

static int checkpoint_row(sqlite3_stmt *q, void *p)
{
    struct checkpoint_scan *c = p;
    abis_checkpoint_rec r;
    read_checkpoint(q, &r);
    return c->cb(&r, c->ctx);
}

abis_status sq_checkpoint_scan(abis_store *base, abis_checkpoint_rec_cb cb, void *ctx,
                               abis_error *err)
{
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    if (!cb)
        return abis_error_set(err, ABIS_E_INVALID, "checkpoint_scan: no callback");
    struct checkpoint_scan c = {cb, ctx};
    sqlite3_stmt *q;
    abis_status st = sq_prepare_fresh(
        s, s->db, "SELECT " CHECKPOINT_COLS " FROM audit_checkpoints ORDER BY id", &q, err);
    if (st != ABIS_OK)
        return st;
    return sq_scan(s, s->db, q, checkpoint_row, &c, "scanning audit checkpoints", err);
}

abis_status sq_checkpoint_last(abis_store *base, abis_checkpoint_rec *r, abis_error *err)
{
    sq_store *s = sq_reader(sq_of(base), err);
    if (!s)
        return sq_reader_failed(err);
    sqlite3_stmt *q;
    abis_status st = sq_prepare(
        s, SQ_CHECKPOINT_LAST, s->db,
        "SELECT " CHECKPOINT_COLS " FROM audit_checkpoints ORDER BY id DESC LIMIT 1", &q, err);
    int found;
    if (st != ABIS_OK || (st = sq_get_row(s, s->db, q, SQLITE_OK, read_checkpoint, r, &found,
                                          "reading the last audit checkpoint", err)) != ABIS_OK)
        return st;
    if (!found)
        return abis_error_set(err, ABIS_E_NOT_FOUND, "no audit checkpoint in %s yet", s->db_path);
    return ABIS_OK;
}
