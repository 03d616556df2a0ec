/*
 * sqlite_internal.h: what the files of the SQLite store backend share (the
 * store struct, the statement cache, error mapping); nothing outside
 * src/store/sqlite_*.c and src/store/store_sqlite.c includes it.
 *
 * Files of the backend, one concept each:
 *   store_sqlite.c     opening, creating, transactions, compact, migrate, integrity, ops table
 *   sqlite_schema.c    the persisted schema (docs/FORMATS.md, "Store") and the migration steps
 *   sqlite_registry.c  meta settings, segments, purposes, modalities, calibrations
 *   sqlite_subjects.c  subjects, templates, consents, locks
 *   sqlite_audit.c     audit entries and signed checkpoints
 *   sqlite_keys.c      the key store (keys.db): wrapped subject keys and keymeta
 *   sqlite_clients.c   clients (relying parties), their scopes, idempotency records
 */
#ifndef ABIS_STORE_SQLITE_INTERNAL_H
#define ABIS_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* application_id written into each file's header, so that open() refuses a
 * file that is not ours or the two files swapped: "OABS" and "OAKS". */
#define SQ_DATA_APP_ID 0x4F414253
#define SQ_KEYS_APP_ID 0x4F414B53

/* Schema of the key store; versioned separately from the data store. */
#define SQ_KEYS_SCHEMA_VERSION 1

/* Default wait for another writer's lock, overridable by ABIS_BUSY_TIMEOUT_MS. */
#define SQ_BUSY_TIMEOUT_MS_DEFAULT 10000

/* Slots of the prepared-statement cache.  Statements that run to completion
 * inside one call are cached.  A scan hands rows to a callback that may
 * call back into the store; the scans of one subject (every verify runs
 * them) are cached too, and prepared afresh when their cached statement is
 * still running (a callback that scans again). */
enum sq_stmt_id {
    SQ_META_GET,
    SQ_META_SET,
    SQ_SEGMENT_ADD,
    SQ_SEGMENT_GET,
    SQ_SEGMENT_GET_ID,
    SQ_PURPOSE_ADD,
    SQ_PURPOSE_GET,
    SQ_PURPOSE_GET_ID,
    SQ_MODALITY_ADD,
    SQ_MODALITY_GET,
    SQ_MODALITY_GET_ID,
    SQ_CALIBRATION_GET,
    SQ_CALIBRATION_SET,
    SQ_SUBJECT_INSERT,
    SQ_SUBJECT_GET,
    SQ_SUBJECT_FIND_REF,
    SQ_SUBJECT_DELETE,
    SQ_SUBJECT_COUNT,
    SQ_SUBJECT_COUNT_ALL,
    SQ_TEMPLATE_INSERT,
    SQ_TEMPLATE_DELETE,
    SQ_CONSENT_PUT,
    SQ_CONSENT_GET,
    SQ_LOCK_PUT,
    SQ_LOCK_DELETE,
    SQ_AUDIT_APPEND,
    SQ_AUDIT_LAST,
    SQ_CHECKPOINT_ADD,
    SQ_CHECKPOINT_LAST,
    SQ_KEY_PUT,
    SQ_KEY_GET,
    SQ_KEY_DELETE,
    SQ_KEYMETA_GET,
    SQ_KEYMETA_SET,
    SQ_CLIENT_ADD,
    SQ_CLIENT_UPDATE,
    SQ_CLIENT_GET,
    SQ_CLIENT_SEGMENT_ADD,
    SQ_CLIENT_PURPOSE_ADD,
    SQ_IDEM_GET,
    SQ_IDEM_PUT,
    SQ_IDEM_PURGE,
    SQ_TEMPLATE_SCAN_SUBJECT,
    SQ_CONSENT_SCAN_SUBJECT,
    SQ_LOCK_SCAN_SUBJECT,
    SQ_STMT_COUNT
};

/*
 * Threads.  The store is one `main` sq_store (the connections that write)
 * and, per thread that reads, a `reader`: an sq_store of its own with its
 * own read-only connections and statement cache, so that reads on many
 * threads run in parallel with each other and with a write transaction
 * (WAL).  Every read operation starts with sq_reader(), which picks the
 * thread's reader -- or the main store itself inside this thread's own
 * write transaction, which must see its own changes.  Write transactions
 * are one at a time: begin() takes tx_mu and commit()/rollback() release
 * it; key store writes (autocommit) take keys_mu.  A reader is created on a
 * thread's first read and given back to the pool when the thread ends.
 */
typedef struct sq_store {
    abis_store base; /* first: an abis_store * is an sq_store * */
    sqlite3 *db;     /* DIR/abis.db */
    sqlite3 *keys;   /* DIR/keys.db */
    char *dir;       /* a reader borrows dir and the paths from its main store */
    char *db_path;
    char *keys_path;
    int read_only;
    int in_tx;   /* between a successful begin() and commit()/rollback() */
    int busy_ms; /* busy timeout in force on both connections */
    sqlite3_stmt *stmt[SQ_STMT_COUNT];

    struct sq_store *main; /* a reader: the store it reads for; NULL in the main store */
    int in_use;            /* a reader: held by a thread */
    int snapshot_depth;    /* a reader: nesting of read_begin() */
    /* The main store only: */
    pthread_mutex_t tx_mu;   /* held by the thread in a write transaction */
    pthread_mutex_t keys_mu; /* key store writes */
    pthread_mutex_t pool_mu; /* the readers array */
    pthread_key_t tls;       /* the calling thread's reader */
    int sync_ok;             /* the mutexes and tls exist */
    struct sq_store **readers;
    size_t n_readers, cap_readers;
} sq_store;

static inline sq_store *sq_of(abis_store *s)
{
    return (sq_store *)s;
}

/* The schema (sqlite_schema.c), as NULL-terminated lists of SQL statements:
 * sq_*_migrations[v] takes a file from version v - 1 to v (index 0 is
 * unused); a new file runs every step. */
typedef const char *const *sq_sql_list;
extern const sq_sql_list sq_data_migrations[ABIS_STORE_SCHEMA_VERSION + 1];
extern const sq_sql_list sq_keys_migrations[SQ_KEYS_SCHEMA_VERSION + 1];

/* The cached statement `id` on `db`, prepared from `sql` on first use.  The
 * caller binds, steps and ends with sq_done(). */
abis_status sq_prepare(sq_store *s, enum sq_stmt_id id, sqlite3 *db, const char *sql,
                       sqlite3_stmt **out, abis_error *err);
/* A fresh statement the caller finalizes (sq_scan does it). */
abis_status sq_prepare_fresh(sq_store *s, sqlite3 *db, const char *sql, sqlite3_stmt **out,
                             abis_error *err);
/* Reset a cached statement and drop its bindings (blobs bound SQLITE_STATIC). */
void sq_done(sqlite3_stmt *q);

/* The store to read through on the calling thread: `s` itself when it is
 * a reader or when this thread holds its write transaction, else the
 * thread's reader (its connections opened on first use).  NULL with `err`
 * filled when a reader cannot be opened. */
sq_store *sq_reader(sq_store *s, abis_error *err);
/* The same for the key store, whose writes are autocommit: always the
 * thread's reader (the main keys connection is written under keys_mu). */
sq_store *sq_key_reader(sq_store *s, abis_error *err);
/* Around a write to the main key store connection. */
void sq_keys_lock(sq_store *s);
void sq_keys_unlock(sq_store *s);
/* The status to return when sq_reader gave NULL. */
abis_status sq_reader_failed(const abis_error *err);

/* 1 when the calling thread holds s's write transaction. */
int sq_owns_tx(const sq_store *s);

/* Turn a failed SQLite call into a status and a message naming `what` and
 * the file: busy -> ABIS_E_BUSY, full disk and I/O -> ABIS_E_IO, no memory
 * -> ABIS_E_NOMEM, anything else -> ABIS_E_STORE. */
abis_status sq_fail(sq_store *s, sqlite3 *db, int rc, const char *what, abis_error *err);

/* ABIS_E_INTERNAL unless a transaction is open (data-store writes need one). */
abis_status sq_need_tx(sq_store *s, const char *op, abis_error *err);
/* ABIS_E_INVALID when the store was opened read-only. */
abis_status sq_need_writable(sq_store *s, const char *op, abis_error *err);

/* Step `q` (a fresh statement, already bound) to the end, calling row(q, ctx)
 * for each row until it returns non-zero; finalizes q. */
typedef int (*sq_row_fn)(sqlite3_stmt *q, void *ctx);
abis_status sq_scan(sq_store *s, sqlite3 *db, sqlite3_stmt *q, sq_row_fn row, void *ctx,
                    const char *what, abis_error *err);
/* The same without finalizing q (a cached statement: the caller resets it). */
abis_status sq_scan_rows(sq_store *s, sqlite3 *db, sqlite3_stmt *q, sq_row_fn row, void *ctx,
                         const char *what, abis_error *err);

/* Step a cached statement (bind_rc: the result of binding it) that returns
 * at most one row; read(q, rec) copies the row and *found says whether there
 * was one.  Resets q. */
typedef void (*sq_read_fn)(sqlite3_stmt *q, void *rec);
abis_status sq_get_row(sq_store *s, sqlite3 *db, sqlite3_stmt *q, int bind_rc, sq_read_fn read,
                       void *rec, int *found, const char *what, abis_error *err);

/* Small text settings in a (key TEXT, value TEXT) table: meta and keymeta
 * (sqlite_registry.c).  `label` names the table in messages; sq_kv_get reads
 * through sq_reader() from the key store when `keys`, else the data store. */
abis_status sq_kv_get(sq_store *s, enum sq_stmt_id id, int keys, const char *sql, const char *label,
                      const char *key, char *buf, size_t cap, abis_error *err);
abis_status sq_kv_set(sq_store *s, enum sq_stmt_id id, sqlite3 *db, const char *sql,
                      const char *label, const char *key, const char *value, abis_error *err);

/* Column helpers: copy text into a fixed buffer (truncating at cap - 1,
 * which the schema's CHECKs prevent), read a 16-byte id, an exact-size blob. */
void sq_col_text(sqlite3_stmt *q, int col, char *dst, size_t cap);
void sq_col_id(sqlite3_stmt *q, int col, abis_id *id);
void sq_col_bytes(sqlite3_stmt *q, int col, unsigned char *dst, size_t n);
int sq_bind_id(sqlite3_stmt *q, int param, const abis_id *id);

/* ABIS_E_INVALID unless `text` is non-NULL and 1..max bytes long (0..max when
 * empty_ok); `what` names the field in the message. */
abis_status sq_check_text(const char *text, size_t max, int empty_ok, const char *what,
                          abis_error *err);

/* 32 lower-case hex digits of an id, for messages. */
void sq_id_hex(const abis_id *id, char out[ABIS_ID_HEX_LEN + 1]);
/* Current time in unix milliseconds. */
int64_t sq_now_ms(void);
/* The path of the file behind a connection of s (for messages). */
const char *sq_path(const sq_store *s, sqlite3 *db);

/* The operations, by file. */
abis_status sq_meta_get(abis_store *s, const char *key, char *buf, size_t cap, abis_error *err);
abis_status sq_meta_set(abis_store *s, const char *key, const char *value, abis_error *err);
abis_status sq_segment_add(abis_store *s, abis_segment_rec *r, abis_error *err);
abis_status sq_segment_get(abis_store *s, const char *name, abis_segment_rec *r, abis_error *err);
abis_status sq_segment_get_by_id(abis_store *s, int64_t id, abis_segment_rec *r, abis_error *err);
abis_status sq_segment_list(abis_store *s, abis_segment_rec_cb cb, void *ctx, abis_error *err);
abis_status sq_purpose_add(abis_store *s, abis_purpose_rec *r, abis_error *err);
abis_status sq_purpose_get(abis_store *s, const char *name, abis_purpose_rec *r, abis_error *err);
abis_status sq_purpose_get_by_id(abis_store *s, int64_t id, abis_purpose_rec *r, abis_error *err);
abis_status sq_purpose_list(abis_store *s, abis_purpose_rec_cb cb, void *ctx, abis_error *err);
abis_status sq_modality_add(abis_store *s, abis_modality_rec *r, abis_error *err);
abis_status sq_modality_get(abis_store *s, const char *name, abis_modality_rec *r, abis_error *err);
abis_status sq_modality_get_by_id(abis_store *s, int64_t id, abis_modality_rec *r, abis_error *err);
abis_status sq_modality_list(abis_store *s, abis_modality_rec_cb cb, void *ctx, abis_error *err);
abis_status sq_calibration_get(abis_store *s, int64_t modality_id, char **json, abis_error *err);
abis_status sq_calibration_set(abis_store *s, int64_t modality_id, const char *json,
                               abis_error *err);

abis_status sq_subject_insert(abis_store *s, const abis_subject_rec *r, abis_error *err);
abis_status sq_subject_get(abis_store *s, const abis_id *id, abis_subject_rec *r, abis_error *err);
abis_status sq_subject_find_ref(abis_store *s, int64_t segment_id, const char *ref,
                                abis_subject_rec *r, abis_error *err);
abis_status sq_subject_delete(abis_store *s, const abis_id *id, abis_error *err);
abis_status sq_subject_scan(abis_store *s, int64_t segment_id, abis_subject_rec_cb cb, void *ctx,
                            abis_error *err);
abis_status sq_subject_count(abis_store *s, int64_t segment_id, uint64_t *n, abis_error *err);
abis_status sq_template_insert(abis_store *s, const abis_template_rec *r, abis_error *err);
abis_status sq_template_delete(abis_store *s, const abis_id *id, abis_error *err);
abis_status sq_template_scan_subject(abis_store *s, const abis_id *subject, abis_template_rec_cb cb,
                                     void *ctx, abis_error *err);
abis_status sq_template_scan(abis_store *s, int64_t segment_id, int64_t modality_id,
                             abis_template_rec_cb cb, void *ctx, abis_error *err);
abis_status sq_consent_put(abis_store *s, const abis_consent_rec *r, abis_error *err);
abis_status sq_consent_get(abis_store *s, const abis_id *subject, int64_t purpose_id,
                           abis_consent_rec *r, abis_error *err);
abis_status sq_consent_scan_subject(abis_store *s, const abis_id *subject, abis_consent_rec_cb cb,
                                    void *ctx, abis_error *err);
abis_status sq_consent_scan_granted(abis_store *s, int64_t segment_id, abis_consent_rec_cb cb,
                                    void *ctx, abis_error *err);
abis_status sq_lock_put(abis_store *s, const abis_lock_rec *r, abis_error *err);
abis_status sq_lock_delete(abis_store *s, const abis_id *subject, int64_t modality_id,
                           abis_error *err);
abis_status sq_lock_scan_subject(abis_store *s, const abis_id *subject, abis_lock_rec_cb cb,
                                 void *ctx, abis_error *err);
abis_status sq_lock_scan(abis_store *s, int64_t segment_id, abis_lock_rec_cb cb, void *ctx,
                         abis_error *err);

abis_status sq_audit_append(abis_store *s, const abis_audit_rec *r, abis_error *err);
abis_status sq_audit_last(abis_store *s, abis_audit_rec *r, abis_error *err);
abis_status sq_audit_scan(abis_store *s, int64_t from_seq, abis_audit_rec_cb cb, void *ctx,
                          abis_error *err);
abis_status sq_audit_scan_subject(abis_store *s, const char *subject_hex, abis_audit_rec_cb cb,
                                  void *ctx, abis_error *err);
abis_status sq_checkpoint_add(abis_store *s, const abis_checkpoint_rec *r, abis_error *err);
abis_status sq_checkpoint_scan(abis_store *s, abis_checkpoint_rec_cb cb, void *ctx,
                               abis_error *err);
abis_status sq_checkpoint_last(abis_store *s, abis_checkpoint_rec *r, abis_error *err);

abis_status sq_client_add(abis_store *s, abis_client_rec *r, abis_error *err);
abis_status sq_client_update(abis_store *s, const abis_client_rec *r, abis_error *err);
abis_status sq_client_get(abis_store *s, const char *name, abis_client_rec *r, abis_error *err);
abis_status sq_client_scan(abis_store *s, abis_client_rec_cb cb, void *ctx, abis_error *err);
abis_status sq_client_scope_add(abis_store *s, int64_t client_id, abis_scope_kind kind,
                                int64_t ref_id, abis_error *err);
abis_status sq_client_scope_scan(abis_store *s, int64_t client_id, abis_scope_cb cb, void *ctx,
                                 abis_error *err);
abis_status sq_idem_get(abis_store *s, int64_t client_id, const char *key, abis_idem_rec *r,
                        abis_error *err);
abis_status sq_idem_put(abis_store *s, const abis_idem_rec *r, abis_error *err);
abis_status sq_idem_purge(abis_store *s, int64_t now, abis_error *err);

abis_status sq_key_put(abis_store *s, const abis_id *subject, const unsigned char *wrapped,
                       size_t len, abis_error *err);
abis_status sq_key_get(abis_store *s, const abis_id *subject, unsigned char *buf, size_t cap,
                       size_t *len, abis_error *err);
abis_status sq_key_delete(abis_store *s, const abis_id *subject, abis_error *err);
abis_status sq_key_scan(abis_store *s, abis_key_cb cb, void *ctx, abis_error *err);
abis_status sq_keymeta_get(abis_store *s, const char *key, char *buf, size_t cap, abis_error *err);
abis_status sq_keymeta_set(abis_store *s, const char *key, const char *value, abis_error *err);

/* Checkpoint one connection's WAL and truncate it to zero bytes. */
abis_status sq_checkpoint_truncate(sq_store *s, sqlite3 *db, abis_error *err);

#endif
