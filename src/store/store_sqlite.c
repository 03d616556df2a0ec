/*
 * store_sqlite.c: the SQLite backend of the store (store.h): opening and
 * creating DIR/abis.db and DIR/keys.db, connection settings, transactions,
 * compaction, migrations, integrity checks, and the helpers the other
 * sqlite_*.c files share.  The persisted format is in sqlite_schema.c and
 * docs/FORMATS.md ("Store").
 *
 * Every connection runs with journal_mode=WAL, synchronous=FULL (a commit is
 * on disk when COMMIT returns), secure_delete=ON (freed content is zeroed),
 * foreign_keys=ON (subject deletion cascades) and a busy timeout
 * (ABIS_BUSY_TIMEOUT_MS, default 10 s) after which a writer gets ABIS_E_BUSY.
 */
#include "store/sqlite_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers shared by the backend's files ------------------------------ */

const char *sq_path(const sq_store *s, sqlite3 *db)
{
    return db && db == s->keys ? s->keys_path : s->db_path;
}

abis_status sq_fail(sq_store *s, sqlite3 *db, int rc, const char *what, abis_error *err)
{
    const char *path = sq_path(s, db);
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return abis_error_set(err, ABIS_E_BUSY,
                              "%s: %s is locked by another connection (waited %d ms); is another "
                              "abis or abisd using %s? (ABIS_BUSY_TIMEOUT_MS sets the wait)",
                              what, path, s->busy_ms, s->dir);
    case SQLITE_NOMEM:
        return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory working on %s", what, path);
    case SQLITE_FULL:
        return abis_error_set(err, ABIS_E_IO, "%s: %s: disk or file size limit full (%s)", what,
                              path, msg);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: {
        int e = db ? sqlite3_system_errno(db) : 0;
        return abis_error_set(err, ABIS_E_IO, "%s: %s: %s%s%s", what, path, msg, e ? ": " : "",
                              e ? strerror(e) : "");
    }
    case SQLITE_CONSTRAINT: /* one the operation did not map to EXISTS/NOT_FOUND itself */
        return abis_error_set(err, ABIS_E_INVALID, "%s: refused by %s: %s", what, path, msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return abis_error_set(err, ABIS_E_STORE, "%s: %s is damaged (%s); restore it from a backup",
                              what, path, msg);
    default:
        return abis_error_set(err, ABIS_E_STORE, "%s: %s: %s (SQLite error %d)", what, path, msg,
                              rc);
    }
}

abis_status sq_prepare(sq_store *s, enum sq_stmt_id id, sqlite3 *db, const char *sql,
                       sqlite3_stmt **out, abis_error *err)
{
    assert(id >= 0 && id < SQ_STMT_COUNT);
    if (!s->stmt[id]) {
        int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id], NULL);
        if (rc != SQLITE_OK)
            return sq_fail(s, db, rc, "preparing a statement", err);
    }
    assert(sqlite3_db_handle(s->stmt[id]) == db);
    *out = s->stmt[id];
    return ABIS_OK;
}

abis_status sq_prepare_fresh(sq_store *s, sqlite3 *db, const char *sql, sqlite3_stmt **out,
                             abis_error *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, out, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, db, rc, "preparing a statement", err);
    return ABIS_OK;
}

void sq_done(sqlite3_stmt *q)
{
    if (q) {
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    }
}

abis_status sq_need_writable(sq_store *s, const char *op, abis_error *err)
{
    if (s->read_only)
        return abis_error_set(err, ABIS_E_INVALID, "%s: the store in %s was opened read-only", op,
                              s->dir);
    return ABIS_OK;
}

abis_status sq_need_tx(sq_store *s, const char *op, abis_error *err)
{
    abis_status st = sq_need_writable(s, op, err);
    if (st != ABIS_OK)
        return st;
    if (!sq_owns_tx(s))
        return abis_error_set(err, ABIS_E_INTERNAL,
                              "%s called outside a transaction: call begin() first (store.h)", op);
    return ABIS_OK;
}

/* ---- threads: the write transaction's owner and per-thread readers ------- */

/* The store whose write transaction the calling thread holds, if any. */
static _Thread_local const sq_store *tx_owner_of;

int sq_owns_tx(const sq_store *s)
{
    /* Only the owner ever sets tx_owner_of to s: no shared state is read. */
    return tx_owner_of == s;
}

abis_status sq_reader_failed(const abis_error *err)
{
    return err && err->status != ABIS_OK ? err->status : ABIS_E_IO;
}

static abis_status open_conn(sq_store *s, const char *path, sqlite3 **db, abis_error *err);

static void reader_close(sq_store *r)
{
    for (int i = 0; i < SQ_STMT_COUNT; i++)
        sqlite3_finalize(r->stmt[i]);
    sqlite3_close_v2(r->db);
    sqlite3_close_v2(r->keys);
    free(r);
}

/* A thread ended: its reader goes back to the pool (the key's destructor). */
static void reader_release(void *p)
{
    sq_store *r = p;
    sq_store *m = r->main;
    pthread_mutex_lock(&m->pool_mu);
    if (r->snapshot_depth) {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        r->snapshot_depth = 0;
    }
    r->in_use = 0;
    pthread_mutex_unlock(&m->pool_mu);
}

/* A free reader of the pool, or a new one with its own read-only connections. */
static sq_store *reader_take(sq_store *m, abis_error *err)
{
    pthread_mutex_lock(&m->pool_mu);
    for (size_t i = 0; i < m->n_readers; i++)
        if (!m->readers[i]->in_use) {
            m->readers[i]->in_use = 1;
            pthread_mutex_unlock(&m->pool_mu);
            return m->readers[i];
        }
    sq_store *r = NULL;
    if (m->n_readers == m->cap_readers) {
        size_t cap = m->cap_readers ? 2 * m->cap_readers : 8;
        sq_store **n = realloc(m->readers, cap * sizeof *n);
        if (!n)
            goto oom;
        m->readers = n;
        m->cap_readers = cap;
    }
    if (!(r = calloc(1, sizeof *r)))
        goto oom;
    r->base.ops = m->base.ops;
    r->main = m;
    r->dir = m->dir;
    r->db_path = m->db_path;
    r->keys_path = m->keys_path;
    r->read_only = 1;
    r->busy_ms = m->busy_ms;
    r->in_use = 1;
    m->readers[m->n_readers++] = r;
    pthread_mutex_unlock(&m->pool_mu);
    /* Opened outside the pool lock: opening is slow and touches no shared state. */
    abis_status st = open_conn(r, r->db_path, &r->db, err);
    if (st == ABIS_OK)
        st = open_conn(r, r->keys_path, &r->keys, err);
    if (st != ABIS_OK) {
        abis_error_prefix(err, "opening a reading connection");
        sqlite3_close_v2(r->db);
        sqlite3_close_v2(r->keys);
        r->db = r->keys = NULL;
        pthread_mutex_lock(&m->pool_mu);
        r->in_use = 0; /* retried by the next taker */
        pthread_mutex_unlock(&m->pool_mu);
        return NULL;
    }
    return r;
oom:
    pthread_mutex_unlock(&m->pool_mu);
    abis_error_set(err, ABIS_E_NOMEM, "opening a reading connection: out of memory");
    return NULL;
}

sq_store *sq_reader(sq_store *s, abis_error *err)
{
    if (sq_owns_tx(s))
        return s;
    return sq_key_reader(s, err);
}

sq_store *sq_key_reader(sq_store *s, abis_error *err)
{
    if (s->main || !s->sync_ok)
        return s;
    sq_store *r = pthread_getspecific(s->tls);
    if (r)
        return r;
    if (!(r = reader_take(s, err)))
        return NULL;
    if (!r->db) { /* a reader whose earlier opening failed */
        abis_status st = open_conn(r, r->db_path, &r->db, err);
        if (st == ABIS_OK)
            st = open_conn(r, r->keys_path, &r->keys, err);
        if (st != ABIS_OK) {
            sqlite3_close_v2(r->db);
            sqlite3_close_v2(r->keys);
            r->db = r->keys = NULL;
            reader_release(r);
            return NULL;
        }
    }
    if (pthread_setspecific(s->tls, r) != 0) {
        reader_release(r);
        abis_error_set(err, ABIS_E_NOMEM, "opening a reading connection: out of memory");
        return NULL;
    }
    return r;
}

void sq_keys_lock(sq_store *s)
{
    if (s->sync_ok)
        pthread_mutex_lock(&s->keys_mu);
}

void sq_keys_unlock(sq_store *s)
{
    if (s->sync_ok)
        pthread_mutex_unlock(&s->keys_mu);
}

/* Set up the locks and the per-thread reader key of a main store. */
static abis_status sync_init(sq_store *s, abis_error *err)
{
    if (pthread_key_create(&s->tls, reader_release) != 0)
        return abis_error_set(err, ABIS_E_NOMEM, "opening the store: no thread-local key left");
    pthread_mutex_init(&s->tx_mu, NULL);
    pthread_mutex_init(&s->keys_mu, NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    s->sync_ok = 1;
    return ABIS_OK;
}

/* Close every reader.  No thread may use the store any more: the key is
 * deleted first, so no destructor runs for it afterwards. */
static void sync_free(sq_store *s)
{
    if (!s->sync_ok)
        return;
    pthread_key_delete(s->tls);
    for (size_t i = 0; i < s->n_readers; i++)
        reader_close(s->readers[i]);
    free(s->readers);
    s->readers = NULL;
    s->n_readers = s->cap_readers = 0;
    pthread_mutex_destroy(&s->tx_mu);
    pthread_mutex_destroy(&s->keys_mu);
    pthread_mutex_destroy(&s->pool_mu);
    s->sync_ok = 0;
}

abis_status sq_scan_rows(sq_store *s, sqlite3 *db, sqlite3_stmt *q, sq_row_fn row, void *ctx,
                         const char *what, abis_error *err)
{
    abis_status st = ABIS_OK;
    for (;;) {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            if (row(q, ctx))
                break;
        } else if (rc == SQLITE_DONE) {
            break;
        } else {
            st = sq_fail(s, db, rc, what, err);
            break;
        }
    }
    return st;
}

abis_status sq_scan(sq_store *s, sqlite3 *db, sqlite3_stmt *q, sq_row_fn row, void *ctx,
                    const char *what, abis_error *err)
{
    abis_status st = sq_scan_rows(s, db, q, row, ctx, what, err);
    sqlite3_finalize(q);
    return st;
}

abis_status sq_get_row(sq_store *s, sqlite3 *db, sqlite3_stmt *q, int bind_rc, sq_read_fn read,
                       void *rec, int *found, const char *what, abis_error *err)
{
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(q) : bind_rc;
    abis_status st = ABIS_OK;
    *found = 0;
    if (rc == SQLITE_ROW) {
        read(q, rec);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = sq_fail(s, db, rc, what, err);
    }
    sq_done(q);
    return st;
}

void sq_col_text(sqlite3_stmt *q, int col, char *dst, size_t cap)
{
    assert(cap > 0);
    const unsigned char *t = sqlite3_column_text(q, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(q, col) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

void sq_col_bytes(sqlite3_stmt *q, int col, unsigned char *dst, size_t n)
{
    const void *b = sqlite3_column_blob(q, col);
    size_t have = b ? (size_t)sqlite3_column_bytes(q, col) : 0;
    if (have > n)
        have = n;
    if (have)
        memcpy(dst, b, have);
    memset(dst + have, 0, n - have);
}

void sq_col_id(sqlite3_stmt *q, int col, abis_id *id)
{
    sq_col_bytes(q, col, id->bytes, ABIS_ID_BYTES);
}

int sq_bind_id(sqlite3_stmt *q, int param, const abis_id *id)
{
    return sqlite3_bind_blob(q, param, id->bytes, ABIS_ID_BYTES, SQLITE_STATIC);
}

abis_status sq_check_text(const char *text, size_t max, int empty_ok, const char *what,
                          abis_error *err)
{
    if (!text)
        return abis_error_set(err, ABIS_E_INVALID, "%s is missing", what);
    size_t n = strnlen(text, max + 1);
    if (n > max)
        return abis_error_set(err, ABIS_E_INVALID, "%s is longer than %zu bytes", what, max);
    if (n == 0 && !empty_ok)
        return abis_error_set(err, ABIS_E_INVALID, "%s is empty", what);
    return ABIS_OK;
}

void sq_id_hex(const abis_id *id, char out[ABIS_ID_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < ABIS_ID_BYTES; i++) {
        out[2 * i] = digits[id->bytes[i] >> 4];
        out[2 * i + 1] = digits[id->bytes[i] & 15];
    }
    out[ABIS_ID_HEX_LEN] = '\0';
}

int64_t sq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

abis_status sq_checkpoint_truncate(sq_store *s, sqlite3 *db, abis_error *err)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    if (rc == SQLITE_BUSY)
        return abis_error_set(err, ABIS_E_BUSY,
                              "checkpointing %s: another connection is using it (waited %d ms); "
                              "deleted data may remain in %s-wal until a later compact succeeds",
                              sq_path(s, db), s->busy_ms, sq_path(s, db));
    if (rc != SQLITE_OK)
        return sq_fail(s, db, rc, "checkpointing the write-ahead log", err);
    return ABIS_OK;
}

/* ---- connections -------------------------------------------------------- */

/* Run SQL without results; `what` names the step in the error message. */
static abis_status exec_sql(sq_store *s, sqlite3 *db, const char *sql, const char *what,
                            abis_error *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, db, rc, what, err);
    return ABIS_OK;
}

/* Run a NULL-terminated list of statements (a schema or a migration step). */
static abis_status exec_list(sq_store *s, sqlite3 *db, sq_sql_list sql, const char *what,
                             abis_error *err)
{
    abis_status st = ABIS_OK;
    for (size_t i = 0; sql[i] && st == ABIS_OK; i++)
        st = exec_sql(s, db, sql[i], what, err);
    return st;
}

/* The integer a PRAGMA returns (user_version, application_id). */
static abis_status pragma_int(sq_store *s, sqlite3 *db, const char *sql, int *out, abis_error *err)
{
    sqlite3_stmt *q;
    abis_status st = sq_prepare_fresh(s, db, sql, &q, err);
    if (st != ABIS_OK)
        return st;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(q, 0);
    else
        st = sq_fail(s, db, rc, "reading the schema version", err);
    sqlite3_finalize(q);
    return st;
}

/* ABIS_BUSY_TIMEOUT_MS, or the default; ABIS_E_INVALID when it is not a number. */
static abis_status busy_timeout_from_env(int *ms, abis_error *err)
{
    const char *v = getenv("ABIS_BUSY_TIMEOUT_MS");
    *ms = SQ_BUSY_TIMEOUT_MS_DEFAULT;
    if (!v || !*v)
        return ABIS_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < 0 || n > 3600000)
        return abis_error_set(err, ABIS_E_INVALID,
                              "ABIS_BUSY_TIMEOUT_MS='%s' is not a number of milliseconds "
                              "between 0 and 3600000",
                              v);
    *ms = (int)n;
    return ABIS_OK;
}

/* Open one file (which must exist: we never let SQLite create files, so that
 * we control their mode) and apply the connection settings. */
static abis_status open_conn(sq_store *s, const char *path, sqlite3 **db, abis_error *err)
{
    int flags = s->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    int rc = sqlite3_open_v2(path, db, flags, NULL);
    if (rc != SQLITE_OK) {
        abis_status st =
            abis_error_set(err, rc == SQLITE_NOMEM ? ABIS_E_NOMEM : ABIS_E_IO, "cannot open %s: %s",
                           path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        sqlite3_close_v2(*db);
        *db = NULL;
        return st;
    }
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_busy_timeout(*db, s->busy_ms);
    /* Refuse schema edits and tricks from a crafted file (sqlite.org/security.html). */
    sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    abis_status st = exec_sql(s, *db,
                              "PRAGMA foreign_keys = ON;"
                              "PRAGMA secure_delete = ON;"
                              "PRAGMA synchronous = FULL;",
                              "configuring the connection", err);
    if (st != ABIS_OK || s->read_only)
        return st;
    /* journal_mode is persistent in the file; setting it again is a no-op. */
    sqlite3_stmt *q;
    if ((st = sq_prepare_fresh(s, *db, "PRAGMA journal_mode = WAL", &q, err)) != ABIS_OK)
        return st;
    rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        st = sq_fail(s, *db, rc, "switching to write-ahead logging", err);
    } else if (strcmp((const char *)sqlite3_column_text(q, 0), "wal") != 0) {
        st = abis_error_set(err, ABIS_E_STORE,
                            "%s: write-ahead logging could not be enabled (journal mode stays "
                            "'%s'); is the file system a network share?",
                            path, (const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    return st;
}

/* Create an empty file for SQLite to fill, mode 0600 whatever the umask;
 * ABIS_E_EXISTS when it is already there. */
static abis_status create_file(const char *path, const char *exists_msg, abis_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return abis_error_set(err, ABIS_E_EXISTS, "%s", exists_msg);
        return abis_error_set(err, ABIS_E_IO, "cannot create %s: %s", path, strerror(errno));
    }
    abis_status st = ABIS_OK;
    if (fchmod(fd, 0600) != 0)
        st =
            abis_error_set(err, ABIS_E_IO, "cannot set mode 0600 on %s: %s", path, strerror(errno));
    close(fd);
    return st;
}

/* Remove a file we created and the WAL companions SQLite may have left. */
static void unlink_db(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s%s", path, suffix[i]) < sizeof p)
            unlink(p);
    }
}

/* The data directory exists (created with mode 0700 if missing). */
static abis_status ensure_dir(const char *dir, abis_error *err)
{
    if (mkdir(dir, 0700) == 0)
        return ABIS_OK;
    if (errno != EEXIST)
        return abis_error_set(err, ABIS_E_IO, "cannot create data directory %s: %s", dir,
                              strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return abis_error_set(err, ABIS_E_INVALID, "%s exists and is not a directory", dir);
    return ABIS_OK;
}

/* Build the latest schema in an empty file, in one transaction: every
 * migration step from 1 to `version`. */
static abis_status create_schema(sq_store *s, sqlite3 *db, const sq_sql_list *steps, int version,
                                 int app_id, abis_error *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d;", app_id,
             version);
    abis_status st = exec_sql(s, db, "BEGIN IMMEDIATE", "starting to create the schema", err);
    for (int v = 1; v <= version && st == ABIS_OK; v++)
        st = exec_list(s, db, steps[v], "creating the schema", err);
    if (st == ABIS_OK)
        st = exec_sql(s, db, sql, "writing the schema version", err);
    if (st == ABIS_OK)
        st = exec_sql(s, db, "COMMIT", "committing the new schema", err);
    if (st != ABIS_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* Check that an existing file is ours and not newer than this binary. */
static abis_status check_schema(sq_store *s, sqlite3 *db, int app_id, int known, int keys,
                                abis_error *err)
{
    const char *path = sq_path(s, db);
    int app = 0, version = 0;
    abis_status st = pragma_int(s, db, "PRAGMA application_id", &app, err);
    if (st == ABIS_OK)
        st = pragma_int(s, db, "PRAGMA user_version", &version, err);
    if (st != ABIS_OK)
        return st;
    if (app == 0 && version == 0) {
        int tables = 0;
        st = pragma_int(s, db, "SELECT count(*) FROM sqlite_schema", &tables, err);
        if (st != ABIS_OK)
            return st;
        if (tables == 0)
            return abis_error_set(err, ABIS_E_NOT_FOUND,
                                  "%s is empty (an interrupted 'abis init'?): remove %s and %s "
                                  "and run 'abis init %s' again",
                                  path, s->db_path, s->keys_path, s->dir);
    }
    if (app != app_id)
        return abis_error_set(err, ABIS_E_SCHEMA,
                              "%s is not an OpenABIS %s (application_id 0x%08x, expected "
                              "0x%08x); is %s the right directory?",
                              path, keys ? "key store" : "data store", (unsigned)app,
                              (unsigned)app_id, s->dir);
    if (version > known)
        return abis_error_set(err, ABIS_E_SCHEMA,
                              "%s in %s was written by a newer OpenABIS (%sschema %d); this "
                              "binary knows %sschema %d: upgrade OpenABIS",
                              keys ? "key store" : "store", s->dir, keys ? "key " : "", version,
                              keys ? "key " : "", known);
    if (version < 1)
        return abis_error_set(err, ABIS_E_SCHEMA,
                              "%s has schema version %d, which no OpenABIS ever wrote", path,
                              version);
    return ABIS_OK;
}

/* Finalize the cached statements and close both connections (an open
 * transaction is rolled back by closing). */
static void close_conns(sq_store *s)
{
    for (int i = 0; i < SQ_STMT_COUNT; i++) {
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
    sqlite3_close_v2(s->db);
    sqlite3_close_v2(s->keys);
    s->db = s->keys = NULL;
}

static void sq_close(abis_store *base)
{
    sq_store *s = sq_of(base);
    if (!s)
        return;
    if (s->main) /* a reader is closed with its main store */
        return;
    if (sq_owns_tx(s)) { /* closing rolls the transaction back (below) */
        tx_owner_of = NULL;
        s->in_tx = 0;
        pthread_mutex_unlock(&s->tx_mu);
    }
    sync_free(s);
    close_conns(s);
    free(s->dir);
    free(s->db_path);
    free(s->keys_path);
    free(s);
}

void abis_store_close(abis_store *s)
{
    if (s)
        s->ops->close(s);
}

/* ---- transactions ------------------------------------------------------- */

static abis_status sq_begin(abis_store *base, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_writable(s, "begin", err);
    if (st != ABIS_OK)
        return st;
    if (s->main)
        return abis_error_set(err, ABIS_E_INTERNAL, "begin on a reading connection");
    if (sq_owns_tx(s))
        return abis_error_set(err, ABIS_E_INTERNAL,
                              "begin: a transaction is already open on %s (nested begin)",
                              s->db_path);
    /* One write transaction at a time in this process; other processes wait
     * on SQLite's own lock (busy timeout). */
    pthread_mutex_lock(&s->tx_mu);
    if ((st = exec_sql(s, s->db, "BEGIN IMMEDIATE", "starting a transaction", err)) != ABIS_OK) {
        pthread_mutex_unlock(&s->tx_mu);
        return st;
    }
    s->in_tx = 1;
    tx_owner_of = s;
    return ABIS_OK;
}

/* End this thread's transaction: release the write lock. */
static void tx_end(sq_store *s)
{
    s->in_tx = 0;
    tx_owner_of = NULL;
    pthread_mutex_unlock(&s->tx_mu);
}

static abis_status sq_commit(abis_store *base, abis_error *err)
{
    sq_store *s = sq_of(base);
    if (!sq_owns_tx(s))
        return abis_error_set(err, ABIS_E_INTERNAL, "commit without begin on %s", s->db_path);
    int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    abis_status st = ABIS_OK;
    if (rc != SQLITE_OK) {
        st = sq_fail(s, s->db, rc, "committing", err);
        /* A failed COMMIT may leave the transaction open: end it, so that the
         * caller's "commits fully or changes nothing" holds. */
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    tx_end(s);
    return st;
}

static void sq_rollback(abis_store *base)
{
    sq_store *s = sq_of(base);
    if (!sq_owns_tx(s))
        return; /* nothing open on this thread (commit already ended it) */
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    tx_end(s);
}

/* ---- maintenance -------------------------------------------------------- */

static abis_status sq_compact(abis_store *base, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_writable(s, "compact", err);
    if (st != ABIS_OK)
        return st;
    if (sq_owns_tx(s))
        return abis_error_set(err, ABIS_E_INTERNAL,
                              "compact inside a transaction: commit or roll back first");
    if (s->sync_ok)
        pthread_mutex_lock(&s->tx_mu);
    st = sq_checkpoint_truncate(s, s->db, err);
    if (s->sync_ok)
        pthread_mutex_unlock(&s->tx_mu);
    if (st != ABIS_OK)
        return st;
    if (s->sync_ok)
        pthread_mutex_lock(&s->keys_mu);
    st = sq_checkpoint_truncate(s, s->keys, err);
    if (s->sync_ok)
        pthread_mutex_unlock(&s->keys_mu);
    return st;
}

/* Apply steps[from + 1 .. to] to one file, each with its version bump in one
 * transaction. */
static abis_status migrate_file(sq_store *s, sqlite3 *db, const sq_sql_list *steps, int to,
                                abis_error *err)
{
    int from = 0;
    abis_status st = pragma_int(s, db, "PRAGMA user_version", &from, err);
    if (st != ABIS_OK)
        return st;
    if (from > to)
        return abis_error_set(err, ABIS_E_SCHEMA,
                              "%s was written by a newer OpenABIS (schema %d); this binary "
                              "knows schema %d: upgrade OpenABIS",
                              sq_path(s, db), from, to);
    assert(from >= 1); /* open() refused anything else */
    for (int v = from + 1; v <= to && st == ABIS_OK; v++) {
        char bump[48];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", v);
        st = exec_sql(s, db, "BEGIN IMMEDIATE", "starting a migration", err);
        if (st == ABIS_OK)
            st = exec_list(s, db, steps[v], "migrating", err);
        if (st == ABIS_OK)
            st = exec_sql(s, db, bump, "writing the schema version", err);
        if (st == ABIS_OK)
            st = exec_sql(s, db, "COMMIT", "committing a migration", err);
        if (st != ABIS_OK) {
            if (!sqlite3_get_autocommit(db))
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            abis_error_prefix(err, "migrating %s from schema %d to %d", sq_path(s, db), v - 1, v);
        }
    }
    return st;
}

static abis_status sq_migrate(abis_store *base, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = sq_need_writable(s, "migrate", err);
    if (st != ABIS_OK)
        return st;
    if (sq_owns_tx(s))
        return abis_error_set(err, ABIS_E_INTERNAL, "migrate inside a transaction");
    st = migrate_file(s, s->db, sq_data_migrations, ABIS_STORE_SCHEMA_VERSION, err);
    if (st == ABIS_OK)
        st = migrate_file(s, s->keys, sq_keys_migrations, SQ_KEYS_SCHEMA_VERSION, err);
    return st;
}

/* integrity_check and foreign_key_check on one file. */
static abis_status check_file(sq_store *s, sqlite3 *db, abis_error *err)
{
    const char *path = sq_path(s, db);
    sqlite3_stmt *q;
    abis_status st = sq_prepare_fresh(s, db, "PRAGMA integrity_check", &q, err);
    if (st != ABIS_OK)
        return st;
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW)
        st = sq_fail(s, db, rc, "checking integrity", err);
    else if (strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0)
        st = abis_error_set(err, ABIS_E_STORE,
                            "%s failed its integrity check: %s; restore it from a backup", path,
                            (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (st != ABIS_OK)
        return st;
    if ((st = sq_prepare_fresh(s, db, "PRAGMA foreign_key_check", &q, err)) != ABIS_OK)
        return st;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        st = abis_error_set(err, ABIS_E_STORE,
                            "%s failed its integrity check: a row of table %s refers to a "
                            "missing row of table %s",
                            path, (const char *)sqlite3_column_text(q, 0),
                            (const char *)sqlite3_column_text(q, 2));
    else if (rc != SQLITE_DONE)
        st = sq_fail(s, db, rc, "checking foreign keys", err);
    sqlite3_finalize(q);
    return st;
}

static abis_status sq_integrity_check(abis_store *base, abis_error *err)
{
    sq_store *s = sq_of(base);
    abis_status st = check_file(s, s->db, err);
    if (st == ABIS_OK)
        st = check_file(s, s->keys, err);
    return st;
}

static const abis_store_ops sq_ops = {
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .segment_add = sq_segment_add,
    .segment_get = sq_segment_get,
    .segment_get_by_id = sq_segment_get_by_id,
    .segment_list = sq_segment_list,
    .purpose_add = sq_purpose_add,
    .purpose_get = sq_purpose_get,
    .purpose_get_by_id = sq_purpose_get_by_id,
    .purpose_list = sq_purpose_list,
    .modality_add = sq_modality_add,
    .modality_get = sq_modality_get,
    .modality_get_by_id = sq_modality_get_by_id,
    .modality_list = sq_modality_list,
    .calibration_get = sq_calibration_get,
    .calibration_set = sq_calibration_set,
    .subject_insert = sq_subject_insert,
    .subject_get = sq_subject_get,
    .subject_find_ref = sq_subject_find_ref,
    .subject_delete = sq_subject_delete,
    .subject_scan = sq_subject_scan,
    .subject_count = sq_subject_count,
    .template_insert = sq_template_insert,
    .template_delete = sq_template_delete,
    .template_scan_subject = sq_template_scan_subject,
    .template_scan = sq_template_scan,
    .consent_put = sq_consent_put,
    .consent_get = sq_consent_get,
    .consent_scan_subject = sq_consent_scan_subject,
    .consent_scan_granted = sq_consent_scan_granted,
    .lock_put = sq_lock_put,
    .lock_delete = sq_lock_delete,
    .lock_scan_subject = sq_lock_scan_subject,
    .lock_scan = sq_lock_scan,
    .client_add = sq_client_add,
    .client_update = sq_client_update,
    .client_get = sq_client_get,
    .client_scan = sq_client_scan,
    .client_scope_add = sq_client_scope_add,
    .client_scope_scan = sq_client_scope_scan,
    .idem_get = sq_idem_get,
    .idem_put = sq_idem_put,
    .idem_purge = sq_idem_purge,
    .audit_append = sq_audit_append,
    .audit_last = sq_audit_last,
    .audit_scan = sq_audit_scan,
    .audit_scan_subject = sq_audit_scan_subject,
    .checkpoint_add = sq_checkpoint_add,
    .checkpoint_scan = sq_checkpoint_scan,
    .checkpoint_last = sq_checkpoint_last,
    .key_put = sq_key_put,
    .key_get = sq_key_get,
    .key_delete = sq_key_delete,
    .key_scan = sq_key_scan,
    .keymeta_get = sq_keymeta_get,
    .keymeta_set = sq_keymeta_set,
    .compact = sq_compact,
    .migrate = sq_migrate,
    .integrity_check = sq_integrity_check,
};

/* ---- open --------------------------------------------------------------- */

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* A store's files must both be there (create = 0). */
static abis_status check_files_exist(sq_store *s, abis_error *err)
{
    struct stat sb;
    if (stat(s->db_path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return abis_error_set(err, ABIS_E_NOT_FOUND, "no store in %s: run 'abis init %s' first",
                                  s->dir, s->dir);
        return abis_error_set(err, ABIS_E_IO, "cannot reach %s: %s", s->db_path, strerror(errno));
    }
    if (stat(s->keys_path, &sb) != 0) {
        if (errno == ENOENT)
            return abis_error_set(err, ABIS_E_NOT_FOUND,
                                  "the key store %s is missing although %s exists: restore it "
                                  "from a backup (without it no template can be decrypted)",
                                  s->keys_path, s->db_path);
        return abis_error_set(err, ABIS_E_IO, "cannot reach %s: %s", s->keys_path, strerror(errno));
    }
    return ABIS_OK;
}

abis_status abis_store_sqlite_open(const char *data_dir, int create, int read_only,
                                   abis_store **out, abis_error *err)
{
    if (!out)
        return abis_error_set(err, ABIS_E_INVALID, "opening a store: no result pointer");
    *out = NULL;
    if (!data_dir || !*data_dir)
        return abis_error_set(err, ABIS_E_INVALID, "opening a store: no data directory given");
    if (create && read_only)
        return abis_error_set(err, ABIS_E_INVALID, "cannot create a store in %s read-only",
                              data_dir);

    sq_store *s = calloc(1, sizeof *s);
    if (!s)
        return abis_error_set(err, ABIS_E_NOMEM, "opening the store in %s: out of memory",
                              data_dir);
    s->base.ops = &sq_ops;
    s->read_only = read_only;
    s->dir = strdup(data_dir);
    s->db_path = join_path(data_dir, "abis.db");
    s->keys_path = join_path(data_dir, "keys.db");
    if (!s->dir || !s->db_path || !s->keys_path) {
        sq_close(&s->base);
        return abis_error_set(err, ABIS_E_NOMEM, "opening the store in %s: out of memory",
                              data_dir);
    }

    int created_db = 0, created_keys = 0;
    abis_status st = busy_timeout_from_env(&s->busy_ms, err);
    if (st == ABIS_OK && create) {
        char msg[ABIS_ERROR_MESSAGE_MAX];
        st = ensure_dir(s->dir, err);
        if (st == ABIS_OK) {
            snprintf(msg, sizeof msg, "a store already exists in %s (%s): refusing to overwrite it",
                     s->dir, s->db_path);
            st = create_file(s->db_path, msg, err);
            created_db = st == ABIS_OK;
        }
        if (st == ABIS_OK) {
            snprintf(msg, sizeof msg,
                     "%s already exists without a data store: refusing to overwrite a key "
                     "store; move it away first",
                     s->keys_path);
            st = create_file(s->keys_path, msg, err);
            created_keys = st == ABIS_OK;
        }
    } else if (st == ABIS_OK) {
        st = check_files_exist(s, err);
    }
    if (st == ABIS_OK)
        st = open_conn(s, s->db_path, &s->db, err);
    if (st == ABIS_OK)
        st = open_conn(s, s->keys_path, &s->keys, err);
    if (st == ABIS_OK && create) {
        /* keys.db first: abis.db holding a schema is what says "a store is here". */
        st = create_schema(s, s->keys, sq_keys_migrations, SQ_KEYS_SCHEMA_VERSION, SQ_KEYS_APP_ID,
                           err);
        if (st == ABIS_OK)
            st = create_schema(s, s->db, sq_data_migrations, ABIS_STORE_SCHEMA_VERSION,
                               SQ_DATA_APP_ID, err);
    } else if (st == ABIS_OK) {
        st = check_schema(s, s->db, SQ_DATA_APP_ID, ABIS_STORE_SCHEMA_VERSION, 0, err);
        if (st == ABIS_OK)
            st = check_schema(s, s->keys, SQ_KEYS_APP_ID, SQ_KEYS_SCHEMA_VERSION, 1, err);
    }
    if (st == ABIS_OK)
        st = sync_init(s, err);
    if (st != ABIS_OK) {
        /* Leave nothing behind that we created, so that init can be retried. */
        close_conns(s);
        if (created_db)
            unlink_db(s->db_path);
        if (created_keys)
            unlink_db(s->keys_path);
        sq_close(&s->base);
        return st;
    }
    *out = &s->base;
    return ABIS_OK;
}
