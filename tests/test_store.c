/*
 * test_store.c: the SQLite store backend (src/store/store_sqlite.c and
 * sqlite_*.c) against the contract in src/store/store.h: every operation's
 * success and failure, transactions, schema versions, append-only audit rows,
 * secure deletion, and injected faults (a second writer, a full disk).
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/sqlite_internal.h"
#include "store/store.h"
#include "testutil.h"

/* ---- fixture and helpers ------------------------------------------------ */

typedef struct fx {
    char *dir;
    abis_store *s;
    abis_error err;
    int64_t seg, seg2, mod, mod2, purpose, purpose2; /* set by setup_populated */
} fx;

#define OPS(f) ((f)->s->ops)
#define OK(call, f) assert_status((call), ABIS_OK, &(f)->err)

static char *path_in(const fx *f, const char *name)
{
    size_t n = strlen(f->dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", f->dir, name);
    return p;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = abis_test_tmpdir("store");
    assert_non_null(f->dir);
    assert_status(abis_store_sqlite_open(f->dir, 1, 0, &f->s, &f->err), ABIS_OK, &f->err);
    *state = f;
    return 0;
}

static int64_t add_segment(fx *f, const char *name)
{
    abis_segment_rec r = {.created_at = 1000};
    snprintf(r.name, sizeof r.name, "%s", name);
    OK(OPS(f)->segment_add(f->s, &r, &f->err), f);
    return r.id;
}

static int64_t add_modality(fx *f, const char *name)
{
    abis_modality_rec r = {.dim = 512, .created_at = 1000};
    snprintf(r.name, sizeof r.name, "%s", name);
    snprintf(r.kind, sizeof r.kind, "vector");
    OK(OPS(f)->modality_add(f->s, &r, &f->err), f);
    return r.id;
}

static int64_t add_purpose(fx *f, const char *name)
{
    abis_purpose_rec r = {.basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4, .created_at = 1000};
    snprintf(r.name, sizeof r.name, "%s", name);
    OK(OPS(f)->purpose_add(f->s, &r, &f->err), f);
    return r.id;
}

/* A store with two segments, two modalities and two purposes. */
static int setup_populated(void **state)
{
    setup(state);
    fx *f = *state;
    OK(OPS(f)->begin(f->s, &f->err), f);
    f->seg = add_segment(f, "federal");
    f->seg2 = add_segment(f, "state");
    f->mod = add_modality(f, "face");
    f->mod2 = add_modality(f, "finger");
    f->purpose = add_purpose(f, "bank.remote-id");
    f->purpose2 = add_purpose(f, "border.entry");
    OK(OPS(f)->commit(f->s, &f->err), f);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    abis_store_close(f->s);
    abis_test_rmdir(f->dir);
    free(f);
    return 0;
}

static abis_id make_id(unsigned char tag, unsigned char n)
{
    abis_id id;
    for (int i = 0; i < ABIS_ID_BYTES; i++)
        id.bytes[i] = (unsigned char)(tag * 31 + n * 7 + i);
    id.bytes[0] = tag;
    id.bytes[1] = n;
    return id;
}

#define SUBJ(n) make_id(0x5a, (unsigned char)(n))
#define TPL(n) make_id(0x7e, (unsigned char)(n))

static abis_subject_rec subject_rec(unsigned char n, int64_t seg, const char *ref)
{
    abis_subject_rec r = {.id = SUBJ(n), .segment_id = seg, .created_at = 2000 + n};
    snprintf(r.external_ref, sizeof r.external_ref, "%s", ref);
    return r;
}

static abis_template_rec template_rec(unsigned char tn, unsigned char sn, int64_t mod,
                                      const unsigned char *sealed, size_t len)
{
    abis_template_rec r = {.id = TPL(tn),
                           .subject_id = SUBJ(sn),
                           .modality_id = mod,
                           .position = tn % 10,
                           .quality = 0.5 + tn / 1000.0,
                           .created_at = 3000 + tn,
                           .sealed = sealed,
                           .sealed_len = len};
    snprintf(r.format, sizeof r.format, "f32");
    return r;
}

/* Insert a subject (and commit) in its own transaction. */
static void put_subject(fx *f, unsigned char n, int64_t seg, const char *ref)
{
    abis_subject_rec r = subject_rec(n, seg, ref);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->subject_insert(f->s, &r, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
}

static const unsigned char small_blob[] = "sealed-template-bytes";

static void put_template(fx *f, unsigned char tn, unsigned char sn, int64_t mod)
{
    abis_template_rec r = template_rec(tn, sn, mod, small_blob, sizeof small_blob);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->template_insert(f->s, &r, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
}

/* Bytes no other test data contains: a marker and a position-dependent pattern. */
static unsigned char *distinctive(size_t len, unsigned char salt)
{
    unsigned char *b = malloc(len);
    assert_non_null(b);
    uint64_t x = 0x9E3779B97F4A7C15ull ^ salt;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)(x >> 24);
    }
    memcpy(b, "SECRET!", 7);
    return b;
}

static void assert_mode(const char *path, unsigned mode)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, mode);
}

static void assert_message_has(const abis_error *err, const char *needle)
{
    if (!strstr(err->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err->message, needle);
}

/* Run SQL on a store file through a plain SQLite connection (no triggers
 * bypassed); returns SQLite's result and copies its message. */
static int raw_exec(const fx *f, const char *file, const char *sql, char *msg, size_t cap)
{
    char *path = path_in(f, file);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (msg)
        snprintf(msg, cap, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    free(path);
    return rc;
}

/* Counting callbacks; *(int *)ctx counts rows, stopping after `stop_after` when set. */
static int stop_after;
static int count_segment(const abis_segment_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_purpose(const abis_purpose_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_modality(const abis_modality_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_subject(const abis_subject_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_template(const abis_template_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_consent(const abis_consent_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_lock(const abis_lock_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_audit(const abis_audit_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_checkpoint(const abis_checkpoint_rec *r, void *ctx)
{
    (void)r;
    return ++*(int *)ctx == stop_after;
}
static int count_key(const abis_id *subject, int64_t created_at, void *ctx)
{
    (void)subject, (void)created_at;
    return ++*(int *)ctx == stop_after;
}

static int templates_of(fx *f, unsigned char sn)
{
    int n = 0;
    abis_id id = SUBJ(sn);
    OK(OPS(f)->template_scan_subject(f->s, &id, count_template, &n, &f->err), f);
    return n;
}

static abis_audit_rec audit_rec(int64_t seq, const char *subject)
{
    abis_audit_rec r = {.seq = seq, .at = 5000 + seq};
    snprintf(r.actor, sizeof r.actor, "operator:alice");
    snprintf(r.operation, sizeof r.operation, "enrol");
    snprintf(r.segment, sizeof r.segment, "federal");
    snprintf(r.subject, sizeof r.subject, "%s", subject);
    snprintf(r.outcome, sizeof r.outcome, "ok");
    memset(r.prev_hash, (int)(seq - 1), sizeof r.prev_hash);
    memset(r.hash, (int)seq, sizeof r.hash);
    return r;
}

static void append_audit(fx *f, int64_t seq, const char *subject)
{
    abis_audit_rec r = audit_rec(seq, subject);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->audit_append(f->s, &r, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
}

/* ---- create and open ------------------------------------------------------ */

static void test_create_makes_both_files_mode_0600(void **state)
{
    fx *f = *state;
    char *db = path_in(f, "abis.db"), *keys = path_in(f, "keys.db"),
         *wal = path_in(f, "abis.db-wal");
    assert_mode(db, 0600);
    assert_mode(keys, 0600);
    OK(OPS(f)->begin(f->s, &f->err), f);
    add_segment(f, "federal");
    OK(OPS(f)->commit(f->s, &f->err), f);
    assert_mode(wal, 0600);
    free(db), free(keys), free(wal);
}

static void test_create_missing_directory_makes_it_0700(void **state)
{
    fx *f = *state;
    char *sub = path_in(f, "new"), *db;
    abis_store *s2;
    assert_status(abis_store_sqlite_open(sub, 1, 0, &s2, &f->err), ABIS_OK, &f->err);
    abis_store_close(s2);
    assert_mode(sub, 0700);
    size_t n = strlen(sub) + 16;
    db = malloc(n);
    snprintf(db, n, "%s/abis.db", sub);
    assert_mode(db, 0600);
    free(db);
    free(sub);
}

static void test_create_twice_is_exists(void **state)
{
    fx *f = *state;
    abis_store *s2 = (abis_store *)1;
    assert_status(abis_store_sqlite_open(f->dir, 1, 0, &s2, &f->err), ABIS_E_EXISTS, &f->err);
    assert_null(s2);
    assert_message_has(&f->err, "already exists");
}

static void test_create_beside_lone_key_store_is_exists_and_leaves_it(void **state)
{
    fx *f = *state;
    char *sub = path_in(f, "lone"), keys[4096], db[4096];
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(keys, sizeof keys, "%s/keys.db", sub);
    snprintf(db, sizeof db, "%s/abis.db", sub);
    FILE *k = fopen(keys, "w");
    fputs("precious", k);
    fclose(k);
    abis_store *s2;
    assert_status(abis_store_sqlite_open(sub, 1, 0, &s2, &f->err), ABIS_E_EXISTS, &f->err);
    assert_message_has(&f->err, "keys.db");
    assert_true(abis_test_file_contains(keys, "precious", 8));
    struct stat sb;
    assert_int_not_equal(stat(db, &sb), 0); /* the abis.db it had made is gone again */
    free(sub);
}

static void test_create_read_only_is_invalid(void **state)
{
    fx *f = *state;
    char *sub = path_in(f, "ro");
    abis_store *s2;
    assert_status(abis_store_sqlite_open(sub, 1, 1, &s2, &f->err), ABIS_E_INVALID, &f->err);
    free(sub);
}

static void test_open_missing_store_is_not_found(void **state)
{
    fx *f = *state;
    char *sub = path_in(f, "nothing-here");
    abis_store *s2;
    assert_status(abis_store_sqlite_open(sub, 0, 0, &s2, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no store in");
    assert_message_has(&f->err, "abis init");
    free(sub);
}

static void test_open_without_key_store_is_not_found(void **state)
{
    fx *f = *state;
    abis_store_close(f->s);
    f->s = NULL;
    char *keys = path_in(f, "keys.db");
    assert_int_equal(unlink(keys), 0);
    abis_store *s2;
    assert_status(abis_store_sqlite_open(f->dir, 0, 0, &s2, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "key store");
    free(keys);
}

static void test_reopen_keeps_committed_data(void **state)
{
    fx *f = *state;
    OK(OPS(f)->begin(f->s, &f->err), f);
    add_segment(f, "federal");
    OK(OPS(f)->commit(f->s, &f->err), f);
    abis_store_close(f->s);
    OK(abis_store_sqlite_open(f->dir, 0, 0, &f->s, &f->err), f);
    abis_segment_rec r;
    OK(OPS(f)->segment_get(f->s, "federal", &r, &f->err), f);
}

static void test_open_newer_schema_is_refused_and_changes_nothing(void **state)
{
    fx *f = *state;
    abis_store_close(f->s);
    f->s = NULL;
    assert_int_equal(raw_exec(f, "abis.db", "PRAGMA user_version = 99", NULL, 0), SQLITE_OK);
    char *db = path_in(f, "abis.db");
    size_t before_len, after_len;
    unsigned char *before = abis_test_read_file(db, &before_len);
    abis_store *s2 = (abis_store *)1;
    assert_status(abis_store_sqlite_open(f->dir, 0, 0, &s2, &f->err), ABIS_E_SCHEMA, &f->err);
    assert_null(s2);
    assert_message_has(&f->err, "newer OpenABIS (schema 99)");
    char knows[32];
    snprintf(knows, sizeof knows, "knows schema %d", ABIS_STORE_SCHEMA_VERSION);
    assert_message_has(&f->err, knows);
    assert_message_has(&f->err, "upgrade OpenABIS");
    unsigned char *after = abis_test_read_file(db, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before), free(after), free(db);
}

static void test_open_newer_key_schema_is_refused(void **state)
{
    fx *f = *state;
    abis_store_close(f->s);
    f->s = NULL;
    assert_int_equal(raw_exec(f, "keys.db", "PRAGMA user_version = 7", NULL, 0), SQLITE_OK);
    abis_store *s2;
    assert_status(abis_store_sqlite_open(f->dir, 0, 0, &s2, &f->err), ABIS_E_SCHEMA, &f->err);
    assert_message_has(&f->err, "key schema 7");
}

static void test_open_foreign_database_is_schema_error(void **state)
{
    fx *f = *state;
    abis_store_close(f->s);
    f->s = NULL;
    assert_int_equal(raw_exec(f, "abis.db", "PRAGMA application_id = 42", NULL, 0), SQLITE_OK);
    abis_store *s2;
    assert_status(abis_store_sqlite_open(f->dir, 0, 0, &s2, &f->err), ABIS_E_SCHEMA, &f->err);
    assert_message_has(&f->err, "not an OpenABIS data store");
}

static void test_open_swapped_files_is_schema_error(void **state)
{
    fx *f = *state;
    abis_store_close(f->s);
    f->s = NULL;
    char *db = path_in(f, "abis.db"), *keys = path_in(f, "keys.db"), *tmp = path_in(f, "x");
    assert_int_equal(rename(db, tmp), 0);
    assert_int_equal(rename(keys, db), 0);
    assert_int_equal(rename(tmp, keys), 0);
    abis_store *s2;
    assert_status(abis_store_sqlite_open(f->dir, 0, 0, &s2, &f->err), ABIS_E_SCHEMA, &f->err);
    free(db), free(keys), free(tmp);
}

static void test_open_empty_data_file_hints_interrupted_init(void **state)
{
    fx *f = *state;
    char *sub = path_in(f, "half"), p[4096];
    assert_int_equal(mkdir(sub, 0700), 0);
    abis_store *s2;
    OK(abis_store_sqlite_open(sub, 1, 0, &s2, &f->err), f);
    abis_store_close(s2);
    snprintf(p, sizeof p, "%s/abis.db", sub);
    FILE *e = fopen(p, "w"); /* as if init had died before its first commit */
    fclose(e);
    assert_status(abis_store_sqlite_open(sub, 0, 0, &s2, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "interrupted");
    free(sub);
}

static void test_open_read_only_reads_and_refuses_writes(void **state)
{
    fx *f = *state;
    OK(OPS(f)->begin(f->s, &f->err), f);
    add_segment(f, "federal");
    OK(OPS(f)->commit(f->s, &f->err), f);
    abis_store_close(f->s);
    OK(abis_store_sqlite_open(f->dir, 0, 1, &f->s, &f->err), f);
    abis_segment_rec r;
    OK(OPS(f)->segment_get(f->s, "federal", &r, &f->err), f);
    assert_status(OPS(f)->begin(f->s, &f->err), ABIS_E_INVALID, &f->err);
    assert_message_has(&f->err, "read-only");
    abis_id id = SUBJ(1);
    unsigned char k[4] = {1, 2, 3, 4};
    assert_status(OPS(f)->key_put(f->s, &id, k, 4, &f->err), ABIS_E_INVALID, &f->err);
    assert_status(OPS(f)->migrate(f->s, &f->err), ABIS_E_INVALID, &f->err);
    OK(OPS(f)->integrity_check(f->s, &f->err), f);
}

static void test_bad_busy_timeout_variable_is_invalid(void **state)
{
    fx *f = *state;
    abis_store *s2;
    setenv("ABIS_BUSY_TIMEOUT_MS", "soon", 1);
    abis_status st = abis_store_sqlite_open(f->dir, 0, 0, &s2, &f->err);
    unsetenv("ABIS_BUSY_TIMEOUT_MS");
    assert_status(st, ABIS_E_INVALID, &f->err);
    assert_message_has(&f->err, "ABIS_BUSY_TIMEOUT_MS");
}

/* ---- transactions ----------------------------------------------------------- */

static void test_write_outside_transaction_is_internal(void **state)
{
    fx *f = *state;
    abis_segment_rec r = {.name = "federal"};
    assert_status(OPS(f)->segment_add(f->s, &r, &f->err), ABIS_E_INTERNAL, &f->err);
    assert_message_has(&f->err, "begin()");
}

static void test_nested_begin_is_internal(void **state)
{
    fx *f = *state;
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->begin(f->s, &f->err), ABIS_E_INTERNAL, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_commit_without_begin_is_internal(void **state)
{
    fx *f = *state;
    assert_status(OPS(f)->commit(f->s, &f->err), ABIS_E_INTERNAL, &f->err);
}

static void test_rollback_leaves_nothing(void **state)
{
    fx *f = *state;
    OK(OPS(f)->begin(f->s, &f->err), f);
    int64_t seg = add_segment(f, "federal");
    abis_subject_rec s = subject_rec(1, seg, "client-1");
    OK(OPS(f)->subject_insert(f->s, &s, &f->err), f);
    OK(OPS(f)->meta_set(f->s, "k", "v", &f->err), f);
    OPS(f)->rollback(f->s);
    abis_segment_rec r;
    assert_status(OPS(f)->segment_get(f->s, "federal", &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    uint64_t n = 99;
    OK(OPS(f)->subject_count(f->s, 0, &n, &f->err), f);
    assert_int_equal(n, 0);
    char buf[8];
    assert_status(OPS(f)->meta_get(f->s, "k", buf, sizeof buf, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_close_with_open_transaction_rolls_back(void **state)
{
    fx *f = *state;
    OK(OPS(f)->begin(f->s, &f->err), f);
    add_segment(f, "federal");
    abis_store_close(f->s);
    OK(abis_store_sqlite_open(f->dir, 0, 0, &f->s, &f->err), f);
    abis_segment_rec r;
    assert_status(OPS(f)->segment_get(f->s, "federal", &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_begin_while_another_writer_holds_lock_is_busy(void **state)
{
    fx *f = *state;
    abis_store *other;
    setenv("ABIS_BUSY_TIMEOUT_MS", "50", 1);
    abis_status st = abis_store_sqlite_open(f->dir, 0, 0, &other, &f->err);
    unsetenv("ABIS_BUSY_TIMEOUT_MS");
    assert_status(st, ABIS_OK, &f->err);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(other->ops->begin(other, &f->err), ABIS_E_BUSY, &f->err);
    assert_message_has(&f->err, "locked by another connection");
    assert_message_has(&f->err, "50 ms");
    /* The waiting writer gets in once the first one is done. */
    OPS(f)->rollback(f->s);
    assert_status(other->ops->begin(other, &f->err), ABIS_OK, &f->err);
    other->ops->rollback(other);
    abis_store_close(other);
}

static void test_commit_on_full_disk_fails_and_changes_nothing(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    OK(OPS(f)->compact(f->s, &f->err), f); /* empty WAL: the commit below starts at offset 0 */

    size_t len = 1 << 20;
    unsigned char *blob = distinctive(len, 9);
    abis_template_rec t = template_rec(1, 1, f->mod, blob, len);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->template_insert(f->s, &t, &f->err), f);

    /* The file size limit stands in for a full disk: writing the 1 MiB
     * transaction into the WAL fails part way (EFBIG). */
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    small = old;
    small.rlim_cur = 256 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    abis_status st = OPS(f)->commit(f->s, &f->err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);

    assert_status(st, ABIS_E_IO, &f->err);
    assert_message_has(&f->err, "committing");
    assert_int_equal(templates_of(f, 1), 0);
    /* The store carries on: the same write succeeds once there is room. */
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->template_insert(f->s, &t, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    assert_int_equal(templates_of(f, 1), 1);
    OK(OPS(f)->integrity_check(f->s, &f->err), f);
    free(blob);
}

/* ---- meta ------------------------------------------------------------------- */

static void test_meta_set_then_get(void **state)
{
    fx *f = *state;
    char buf[32];
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->meta_set(f->s, "dedup_fmr", "1e-6", &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->meta_get(f->s, "dedup_fmr", buf, sizeof buf, &f->err), f);
    assert_string_equal(buf, "1e-6");
}

static void test_meta_set_replaces_value(void **state)
{
    fx *f = *state;
    char buf[32];
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->meta_set(f->s, "k", "one", &f->err), f);
    OK(OPS(f)->meta_set(f->s, "k", "two", &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->meta_get(f->s, "k", buf, sizeof buf, &f->err), f);
    assert_string_equal(buf, "two");
}

static void test_meta_get_missing_is_not_found(void **state)
{
    fx *f = *state;
    char buf[32];
    assert_status(OPS(f)->meta_get(f->s, "nope", buf, sizeof buf, &f->err), ABIS_E_NOT_FOUND,
                  &f->err);
    assert_message_has(&f->err, "'nope'");
}

static void test_meta_get_into_small_buffer_is_invalid(void **state)
{
    fx *f = *state;
    char buf[4];
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->meta_set(f->s, "k", "four", &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    assert_status(OPS(f)->meta_get(f->s, "k", buf, sizeof buf, &f->err), ABIS_E_INVALID, &f->err);
}

/* ---- segments, purposes, modalities ----------------------------------------- */

static void test_segment_add_then_get_by_name_and_id(void **state)
{
    fx *f = *state;
    abis_segment_rec a = {.name = "federal", .created_at = 1234}, b;
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->segment_add(f->s, &a, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    assert_true(a.id > 0);
    OK(OPS(f)->segment_get(f->s, "federal", &b, &f->err), f);
    assert_int_equal(b.id, a.id);
    assert_int_equal(b.created_at, 1234);
    memset(&b, 0, sizeof b);
    OK(OPS(f)->segment_get_by_id(f->s, a.id, &b, &f->err), f);
    assert_string_equal(b.name, "federal");
}

static void test_segment_name_taken_is_exists(void **state)
{
    fx *f = *state;
    abis_segment_rec r = {.name = "federal"};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->segment_add(f->s, &r, &f->err), ABIS_E_EXISTS, &f->err);
    assert_message_has(&f->err, "segment 'federal' already exists");
    OPS(f)->rollback(f->s);
}

static void test_segment_empty_name_is_invalid(void **state)
{
    fx *f = *state;
    abis_segment_rec r = {.name = ""};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->segment_add(f->s, &r, &f->err), ABIS_E_INVALID, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_segment_missing_is_not_found(void **state)
{
    fx *f = *state;
    abis_segment_rec r;
    assert_status(OPS(f)->segment_get(f->s, "nope", &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no segment 'nope'");
    assert_status(OPS(f)->segment_get_by_id(f->s, 999, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_segment_list_visits_all_and_stops_on_request(void **state)
{
    fx *f = *state;
    int n = 0;
    stop_after = 0;
    OK(OPS(f)->segment_list(f->s, count_segment, &n, &f->err), f);
    assert_int_equal(n, 2);
    n = 0;
    stop_after = 1;
    OK(OPS(f)->segment_list(f->s, count_segment, &n, &f->err), f);
    assert_int_equal(n, 1);
    stop_after = 0;
}

static void test_purpose_add_then_get(void **state)
{
    fx *f = *state;
    abis_purpose_rec a = {.name = "police.search",
                          .basis = ABIS_BASIS_STATUTORY,
                          .target_fmr = 1e-6,
                          .legal_ref = "Act 12 s. 3",
                          .description = "searches",
                          .created_at = 77},
                     b;
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->purpose_add(f->s, &a, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->purpose_get(f->s, "police.search", &b, &f->err), f);
    assert_int_equal(b.id, a.id);
    assert_int_equal(b.basis, ABIS_BASIS_STATUTORY);
    assert_true(b.target_fmr == 1e-6);
    assert_string_equal(b.legal_ref, "Act 12 s. 3");
    assert_string_equal(b.description, "searches");
    assert_int_equal(b.created_at, 77);
    OK(OPS(f)->purpose_get_by_id(f->s, a.id, &b, &f->err), f);
    assert_string_equal(b.name, "police.search");
}

static void test_purpose_name_taken_is_exists(void **state)
{
    fx *f = *state;
    abis_purpose_rec r = {.name = "bank.remote-id", .target_fmr = 1e-3};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->purpose_add(f->s, &r, &f->err), ABIS_E_EXISTS, &f->err);
    assert_message_has(&f->err, "'bank.remote-id'");
    OPS(f)->rollback(f->s);
}

static void test_purpose_unknown_basis_is_invalid(void **state)
{
    fx *f = *state;
    abis_purpose_rec r = {.name = "odd", .basis = 7, .target_fmr = 1e-3};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->purpose_add(f->s, &r, &f->err), ABIS_E_INVALID, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_purpose_missing_is_not_found(void **state)
{
    fx *f = *state;
    abis_purpose_rec r;
    assert_status(OPS(f)->purpose_get(f->s, "nope", &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_status(OPS(f)->purpose_get_by_id(f->s, 999, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_purpose_list_visits_all(void **state)
{
    fx *f = *state;
    int n = 0;
    OK(OPS(f)->purpose_list(f->s, count_purpose, &n, &f->err), f);
    assert_int_equal(n, 2);
}

static void test_modality_add_then_get(void **state)
{
    fx *f = *state;
    abis_modality_rec r;
    OK(OPS(f)->modality_get(f->s, "face", &r, &f->err), f);
    assert_int_equal(r.id, f->mod);
    assert_string_equal(r.kind, "vector");
    assert_int_equal(r.dim, 512);
    OK(OPS(f)->modality_get_by_id(f->s, f->mod2, &r, &f->err), f);
    assert_string_equal(r.name, "finger");
    int n = 0;
    OK(OPS(f)->modality_list(f->s, count_modality, &n, &f->err), f);
    assert_int_equal(n, 2);
}

static void test_modality_name_taken_is_exists(void **state)
{
    fx *f = *state;
    abis_modality_rec r = {.name = "face", .kind = "vector", .dim = 128};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->modality_add(f->s, &r, &f->err), ABIS_E_EXISTS, &f->err);
    assert_message_has(&f->err, "'face'");
    OPS(f)->rollback(f->s);
}

static void test_modality_missing_is_not_found(void **state)
{
    fx *f = *state;
    abis_modality_rec r;
    assert_status(OPS(f)->modality_get(f->s, "gait", &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_status(OPS(f)->modality_get_by_id(f->s, 999, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_calibration_set_then_get(void **state)
{
    fx *f = *state;
    char *json = NULL;
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->calibration_set(f->s, f->mod, "{\"a\":1}", &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->calibration_get(f->s, f->mod, &json, &f->err), f);
    assert_string_equal(json, "{\"a\":1}");
    free(json);
}

static void test_calibration_unset_is_not_found(void **state)
{
    fx *f = *state;
    char *json = (char *)1;
    assert_status(OPS(f)->calibration_get(f->s, f->mod, &json, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_null(json);
    assert_message_has(&f->err, "'face' has no calibration");
}

static void test_calibration_of_unknown_modality_is_not_found(void **state)
{
    fx *f = *state;
    char *json;
    assert_status(OPS(f)->calibration_get(f->s, 999, &json, &f->err), ABIS_E_NOT_FOUND, &f->err);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->calibration_set(f->s, 999, "{}", &f->err), ABIS_E_NOT_FOUND, &f->err);
    OPS(f)->rollback(f->s);
}

/* ---- subjects --------------------------------------------------------------- */

static void test_subject_insert_then_get(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "client-1");
    abis_id id = SUBJ(1);
    abis_subject_rec r;
    OK(OPS(f)->subject_get(f->s, &id, &r, &f->err), f);
    assert_memory_equal(r.id.bytes, id.bytes, ABIS_ID_BYTES);
    assert_int_equal(r.segment_id, f->seg);
    assert_string_equal(r.external_ref, "client-1");
    assert_int_equal(r.created_at, 2001);
}

static void test_subjects_without_reference_read_back_empty(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_subject(f, 2, f->seg, ""); /* "" is "none", not a taken reference */
    abis_id id = SUBJ(2);
    abis_subject_rec r;
    OK(OPS(f)->subject_get(f->s, &id, &r, &f->err), f);
    assert_string_equal(r.external_ref, "");
}

static void test_subject_reference_taken_in_segment_is_exists(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "client-1");
    abis_subject_rec r = subject_rec(2, f->seg, "client-1");
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->subject_insert(f->s, &r, &f->err), ABIS_E_EXISTS, &f->err);
    assert_message_has(&f->err, "external reference already used in this segment");
    OPS(f)->rollback(f->s);
}

static void test_subject_same_reference_in_other_segment_is_allowed(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "client-1");
    put_subject(f, 2, f->seg2, "client-1");
}

static void test_subject_id_taken_is_exists(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_subject_rec r = subject_rec(1, f->seg2, "");
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->subject_insert(f->s, &r, &f->err), ABIS_E_EXISTS, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_subject_in_unknown_segment_is_not_found(void **state)
{
    fx *f = *state;
    abis_subject_rec r = subject_rec(1, 999, "");
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->subject_insert(f->s, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no segment with id 999");
    OPS(f)->rollback(f->s);
}

static void test_subject_find_by_reference(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "client-1");
    abis_subject_rec r;
    OK(OPS(f)->subject_find_ref(f->s, f->seg, "client-1", &r, &f->err), f);
    abis_id id = SUBJ(1);
    assert_memory_equal(r.id.bytes, id.bytes, ABIS_ID_BYTES);
    assert_status(OPS(f)->subject_find_ref(f->s, f->seg2, "client-1", &r, &f->err),
                  ABIS_E_NOT_FOUND, &f->err);
    assert_status(OPS(f)->subject_find_ref(f->s, f->seg, "", &r, &f->err), ABIS_E_INVALID, &f->err);
}

static void test_subject_missing_is_not_found(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(9);
    abis_subject_rec r;
    assert_status(OPS(f)->subject_get(f->s, &id, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no subject 5a09");
}

static void test_subject_delete_missing_is_not_found(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(9);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->subject_delete(f->s, &id, &f->err), ABIS_E_NOT_FOUND, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_subject_delete_cascades_to_templates_consents_locks(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "client-1");
    put_subject(f, 2, f->seg, "client-2");
    put_template(f, 1, 1, f->mod);
    put_template(f, 2, 1, f->mod2);
    put_template(f, 3, 2, f->mod);
    abis_consent_rec c = {.subject_id = SUBJ(1), .purpose_id = f->purpose, .granted = 1};
    abis_lock_rec l = {.subject_id = SUBJ(1), .modality_id = 0};
    abis_id id = SUBJ(1);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    OK(OPS(f)->lock_put(f->s, &l, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);

    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->subject_delete(f->s, &id, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);

    assert_int_equal(templates_of(f, 1), 0);
    assert_int_equal(templates_of(f, 2), 1);
    int n = 0;
    OK(OPS(f)->consent_scan_subject(f->s, &id, count_consent, &n, &f->err), f);
    OK(OPS(f)->lock_scan_subject(f->s, &id, count_lock, &n, &f->err), f);
    assert_int_equal(n, 0);
    /* The reference is free again. */
    put_subject(f, 3, f->seg, "client-1");
    OK(OPS(f)->integrity_check(f->s, &f->err), f);
}

static void test_subject_delete_keeps_audit_entries(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    append_audit(f, 1, "5a01");
    abis_id id = SUBJ(1);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->subject_delete(f->s, &id, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    abis_audit_rec last;
    OK(OPS(f)->audit_last(f->s, &last, &f->err), f);
    assert_int_equal(last.seq, 1);
}

static void test_subject_scan_by_segment_and_all(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_subject(f, 2, f->seg, "a");
    put_subject(f, 3, f->seg2, "");
    int n = 0;
    OK(OPS(f)->subject_scan(f->s, f->seg, count_subject, &n, &f->err), f);
    assert_int_equal(n, 2);
    n = 0;
    OK(OPS(f)->subject_scan(f->s, 0, count_subject, &n, &f->err), f);
    assert_int_equal(n, 3);
}

static void test_subject_count_by_segment_and_all(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_subject(f, 2, f->seg2, "");
    put_subject(f, 3, f->seg2, "");
    uint64_t n;
    OK(OPS(f)->subject_count(f->s, f->seg2, &n, &f->err), f);
    assert_int_equal(n, 2);
    OK(OPS(f)->subject_count(f->s, 0, &n, &f->err), f);
    assert_int_equal(n, 3);
}

/* ---- templates -------------------------------------------------------------- */

struct tpl_seen {
    abis_template_rec rec;
    unsigned char sealed[64];
    int n;
};

static int keep_template(const abis_template_rec *r, void *ctx)
{
    struct tpl_seen *t = ctx;
    t->rec = *r;
    assert_true(r->sealed_len <= sizeof t->sealed);
    memcpy(t->sealed, r->sealed, r->sealed_len);
    t->n++;
    return 0;
}

static void test_template_insert_then_scan_subject(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_template(f, 4, 1, f->mod2);
    struct tpl_seen t = {.n = 0};
    abis_id id = SUBJ(1), tid = TPL(4);
    OK(OPS(f)->template_scan_subject(f->s, &id, keep_template, &t, &f->err), f);
    assert_int_equal(t.n, 1);
    assert_memory_equal(t.rec.id.bytes, tid.bytes, ABIS_ID_BYTES);
    assert_memory_equal(t.rec.subject_id.bytes, id.bytes, ABIS_ID_BYTES);
    assert_int_equal(t.rec.modality_id, f->mod2);
    assert_int_equal(t.rec.position, 4);
    assert_string_equal(t.rec.format, "f32");
    assert_true(t.rec.quality == 0.504);
    assert_int_equal(t.rec.created_at, 3004);
    assert_int_equal(t.rec.sealed_len, sizeof small_blob);
    assert_memory_equal(t.sealed, small_blob, sizeof small_blob);
}

static void test_template_id_taken_is_exists(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_template(f, 1, 1, f->mod);
    abis_template_rec r = template_rec(1, 1, f->mod2, small_blob, sizeof small_blob);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->template_insert(f->s, &r, &f->err), ABIS_E_EXISTS, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_template_of_unknown_subject_is_not_found(void **state)
{
    fx *f = *state;
    abis_template_rec r = template_rec(1, 9, f->mod, small_blob, sizeof small_blob);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->template_insert(f->s, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no subject");
    OPS(f)->rollback(f->s);
}

static void test_template_of_unknown_modality_is_not_found(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_template_rec r = template_rec(1, 1, 999, small_blob, sizeof small_blob);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->template_insert(f->s, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no modality with id 999");
    OPS(f)->rollback(f->s);
}

static void test_template_without_sealed_bytes_is_invalid(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_template_rec r = template_rec(1, 1, f->mod, NULL, 0);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->template_insert(f->s, &r, &f->err), ABIS_E_INVALID, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_template_delete_removes_one(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_template(f, 1, 1, f->mod);
    put_template(f, 2, 1, f->mod);
    abis_id tid = TPL(1);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->template_delete(f->s, &tid, &f->err), f);
    assert_status(OPS(f)->template_delete(f->s, &tid, &f->err), ABIS_E_NOT_FOUND, &f->err);
    OK(OPS(f)->commit(f->s, &f->err), f);
    assert_int_equal(templates_of(f, 1), 1);
}

static void test_template_scan_by_segment_and_modality(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_subject(f, 2, f->seg2, "");
    put_template(f, 1, 1, f->mod);
    put_template(f, 2, 1, f->mod);
    put_template(f, 3, 1, f->mod2);
    put_template(f, 4, 2, f->mod);
    int n = 0;
    OK(OPS(f)->template_scan(f->s, f->seg, f->mod, count_template, &n, &f->err), f);
    assert_int_equal(n, 2);
    n = 0;
    OK(OPS(f)->template_scan(f->s, f->seg2, f->mod2, count_template, &n, &f->err), f);
    assert_int_equal(n, 0);
    n = 0;
    OK(OPS(f)->template_scan(f->s, 0, f->mod, count_template, &n, &f->err), f);
    assert_int_equal(n, 3);
    n = 0;
    stop_after = 1;
    OK(OPS(f)->template_scan(f->s, 0, f->mod, count_template, &n, &f->err), f);
    stop_after = 0;
    assert_int_equal(n, 1);
}

/* ---- consents --------------------------------------------------------------- */

static void test_consent_put_then_get(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_consent_rec c = {.subject_id = SUBJ(1),
                          .purpose_id = f->purpose,
                          .granted = 1,
                          .at = 42,
                          .channel = "branch"},
                     r;
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->consent_get(f->s, &c.subject_id, f->purpose, &r, &f->err), f);
    assert_int_equal(r.granted, 1);
    assert_int_equal(r.at, 42);
    assert_string_equal(r.channel, "branch");
    assert_int_equal(r.purpose_id, f->purpose);
}

static void test_consent_put_replaces_earlier_one(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_consent_rec c = {.subject_id = SUBJ(1), .purpose_id = f->purpose, .granted = 1, .at = 1},
                     r;
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    c.granted = 0, c.at = 2;
    snprintf(c.channel, sizeof c.channel, "app");
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->consent_get(f->s, &c.subject_id, f->purpose, &r, &f->err), f);
    assert_int_equal(r.granted, 0);
    assert_int_equal(r.at, 2);
    assert_string_equal(r.channel, "app");
}

static void test_consent_missing_is_not_found(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_id id = SUBJ(1);
    abis_consent_rec r;
    assert_status(OPS(f)->consent_get(f->s, &id, f->purpose, &r, &f->err), ABIS_E_NOT_FOUND,
                  &f->err);
}

static void test_consent_for_unknown_purpose_or_subject_is_not_found(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_consent_rec c = {.subject_id = SUBJ(1), .purpose_id = 999, .granted = 1};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->consent_put(f->s, &c, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no purpose with id 999");
    c.subject_id = SUBJ(9), c.purpose_id = f->purpose;
    assert_status(OPS(f)->consent_put(f->s, &c, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no subject");
    OPS(f)->rollback(f->s);
}

static void test_consent_scan_subject_lists_every_purpose(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_consent_rec c = {.subject_id = SUBJ(1), .purpose_id = f->purpose, .granted = 1};
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    c.purpose_id = f->purpose2, c.granted = 0;
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    int n = 0;
    OK(OPS(f)->consent_scan_subject(f->s, &c.subject_id, count_consent, &n, &f->err), f);
    assert_int_equal(n, 2);
}

static void test_consent_scan_granted_skips_withdrawn_and_other_segments(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_subject(f, 2, f->seg, "");
    put_subject(f, 3, f->seg2, "");
    abis_consent_rec c = {.subject_id = SUBJ(1), .purpose_id = f->purpose, .granted = 1};
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    c.subject_id = SUBJ(2), c.granted = 0;
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    c.subject_id = SUBJ(3), c.granted = 1;
    OK(OPS(f)->consent_put(f->s, &c, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    int n = 0;
    OK(OPS(f)->consent_scan_granted(f->s, f->seg, count_consent, &n, &f->err), f);
    assert_int_equal(n, 1);
    n = 0;
    OK(OPS(f)->consent_scan_granted(f->s, 0, count_consent, &n, &f->err), f);
    assert_int_equal(n, 2);
}

/* ---- locks ------------------------------------------------------------------ */

static void test_lock_zero_means_all_modalities(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_lock_rec l = {.subject_id = SUBJ(1), .modality_id = 0, .at = 9};
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->lock_put(f->s, &l, &f->err), f);
    l.modality_id = f->mod;
    OK(OPS(f)->lock_put(f->s, &l, &f->err), f);
    OK(OPS(f)->lock_put(f->s, &l, &f->err), f); /* again: still one lock */
    OK(OPS(f)->commit(f->s, &f->err), f);
    int n = 0;
    OK(OPS(f)->lock_scan_subject(f->s, &l.subject_id, count_lock, &n, &f->err), f);
    assert_int_equal(n, 2);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->lock_delete(f->s, &l.subject_id, 0, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    n = 0;
    OK(OPS(f)->lock_scan_subject(f->s, &l.subject_id, count_lock, &n, &f->err), f);
    assert_int_equal(n, 1);
}

static void test_lock_on_unknown_modality_is_not_found(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_lock_rec l = {.subject_id = SUBJ(1), .modality_id = 999};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->lock_put(f->s, &l, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no modality with id 999");
    OPS(f)->rollback(f->s);
}

static void test_lock_of_unknown_subject_is_not_found(void **state)
{
    fx *f = *state;
    abis_lock_rec l = {.subject_id = SUBJ(9), .modality_id = 0};
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->lock_put(f->s, &l, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "no subject");
    OPS(f)->rollback(f->s);
}

static void test_lock_delete_missing_is_not_found(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_id id = SUBJ(1);
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->lock_delete(f->s, &id, 0, &f->err), ABIS_E_NOT_FOUND, &f->err);
    assert_message_has(&f->err, "all modalities");
    OPS(f)->rollback(f->s);
}

static void test_lock_scan_by_segment(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    put_subject(f, 2, f->seg2, "");
    abis_lock_rec l = {.subject_id = SUBJ(1), .modality_id = f->mod};
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->lock_put(f->s, &l, &f->err), f);
    l.subject_id = SUBJ(2);
    OK(OPS(f)->lock_put(f->s, &l, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    int n = 0;
    OK(OPS(f)->lock_scan(f->s, f->seg2, count_lock, &n, &f->err), f);
    assert_int_equal(n, 1);
    n = 0;
    OK(OPS(f)->lock_scan(f->s, 0, count_lock, &n, &f->err), f);
    assert_int_equal(n, 2);
}

/* ---- audit ------------------------------------------------------------------ */

static void test_audit_append_then_last_and_scan(void **state)
{
    fx *f = *state;
    for (int i = 1; i <= 3; i++)
        append_audit(f, i, "");
    abis_audit_rec r, want = audit_rec(3, "");
    OK(OPS(f)->audit_last(f->s, &r, &f->err), f);
    assert_int_equal(r.seq, 3);
    assert_int_equal(r.at, want.at);
    assert_string_equal(r.actor, "operator:alice");
    assert_string_equal(r.operation, "enrol");
    assert_memory_equal(r.prev_hash, want.prev_hash, ABIS_HASH_BYTES);
    assert_memory_equal(r.hash, want.hash, ABIS_HASH_BYTES);
    int n = 0;
    OK(OPS(f)->audit_scan(f->s, 2, count_audit, &n, &f->err), f);
    assert_int_equal(n, 2);
}

static void test_audit_last_of_empty_log_is_not_found(void **state)
{
    fx *f = *state;
    abis_audit_rec r;
    assert_status(OPS(f)->audit_last(f->s, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_audit_entry_out_of_sequence_is_invalid(void **state)
{
    fx *f = *state;
    append_audit(f, 1, "");
    abis_audit_rec gap = audit_rec(3, ""), again = audit_rec(1, "");
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->audit_append(f->s, &gap, &f->err), ABIS_E_INVALID, &f->err);
    assert_message_has(&f->err, "last entry (1)");
    assert_status(OPS(f)->audit_append(f->s, &again, &f->err), ABIS_E_INVALID, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_audit_scan_subject_returns_only_that_subject(void **state)
{
    fx *f = *state;
    append_audit(f, 1, "aaaa");
    append_audit(f, 2, "");
    append_audit(f, 3, "bbbb");
    append_audit(f, 4, "aaaa");
    int n = 0;
    OK(OPS(f)->audit_scan_subject(f->s, "aaaa", count_audit, &n, &f->err), f);
    assert_int_equal(n, 2);
}

static void test_audit_scan_subject_uses_index(void **state)
{
    fx *f = *state;
    char *path = path_in(f, "abis.db");
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT seq FROM audit WHERE subject "
                                        "= ?1 AND subject <> '' ORDER BY seq",
                                        -1, &q, NULL),
                     SQLITE_OK);
    int indexed = 0;
    while (sqlite3_step(q) == SQLITE_ROW)
        indexed |= strstr((const char *)sqlite3_column_text(q, 3), "audit_by_subject") != NULL;
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(path);
    assert_true(indexed);
}

static void test_audit_update_refused_by_trigger(void **state)
{
    fx *f = *state;
    append_audit(f, 1, "");
    char msg[256];
    assert_int_not_equal(
        raw_exec(f, "abis.db", "UPDATE audit SET outcome = 'forged'", msg, sizeof msg), SQLITE_OK);
    assert_non_null(strstr(msg, "append-only"));
    abis_audit_rec r;
    OK(OPS(f)->audit_last(f->s, &r, &f->err), f);
    assert_string_equal(r.outcome, "ok");
}

static void test_audit_delete_refused_by_trigger(void **state)
{
    fx *f = *state;
    append_audit(f, 1, "");
    char msg[256];
    assert_int_not_equal(raw_exec(f, "abis.db", "DELETE FROM audit", msg, sizeof msg), SQLITE_OK);
    assert_non_null(strstr(msg, "append-only"));
    abis_audit_rec r;
    OK(OPS(f)->audit_last(f->s, &r, &f->err), f);
}

static void test_checkpoint_add_then_last_and_scan(void **state)
{
    fx *f = *state;
    abis_checkpoint_rec c = {.seq = 1, .at = 10}, r;
    memset(c.head, 0xab, sizeof c.head);
    memset(c.sig, 0xcd, sizeof c.sig);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->checkpoint_add(f->s, &c, &f->err), f);
    c.seq = 1, c.at = 11; /* a second seal with nothing new in between */
    OK(OPS(f)->checkpoint_add(f->s, &c, &f->err), f);
    c.seq = 5, c.at = 12;
    OK(OPS(f)->checkpoint_add(f->s, &c, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->checkpoint_last(f->s, &r, &f->err), f);
    assert_int_equal(r.seq, 5);
    assert_int_equal(r.at, 12);
    assert_memory_equal(r.head, c.head, ABIS_HASH_BYTES);
    assert_memory_equal(r.sig, c.sig, ABIS_SIG_BYTES);
    int n = 0;
    OK(OPS(f)->checkpoint_scan(f->s, count_checkpoint, &n, &f->err), f);
    assert_int_equal(n, 3);
}

static void test_checkpoint_last_without_any_is_not_found(void **state)
{
    fx *f = *state;
    abis_checkpoint_rec r;
    assert_status(OPS(f)->checkpoint_last(f->s, &r, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_checkpoint_going_backwards_is_invalid(void **state)
{
    fx *f = *state;
    abis_checkpoint_rec c = {.seq = 5};
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->checkpoint_add(f->s, &c, &f->err), f);
    c.seq = 4;
    assert_status(OPS(f)->checkpoint_add(f->s, &c, &f->err), ABIS_E_INVALID, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_checkpoint_update_refused_by_trigger(void **state)
{
    fx *f = *state;
    abis_checkpoint_rec c = {.seq = 1};
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->checkpoint_add(f->s, &c, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    char msg[256];
    assert_int_not_equal(
        raw_exec(f, "abis.db", "UPDATE audit_checkpoints SET seq = 9", msg, sizeof msg), SQLITE_OK);
    assert_non_null(strstr(msg, "append-only"));
    assert_int_not_equal(raw_exec(f, "abis.db", "DELETE FROM audit_checkpoints", msg, sizeof msg),
                         SQLITE_OK);
}

/* ---- key store -------------------------------------------------------------- */

static void test_key_put_then_get(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(1);
    unsigned char k[72], out[128];
    memset(k, 0x42, sizeof k);
    size_t len = 0;
    OK(OPS(f)->key_put(f->s, &id, k, sizeof k, &f->err), f);
    OK(OPS(f)->key_get(f->s, &id, out, sizeof out, &len, &f->err), f);
    assert_int_equal(len, sizeof k);
    assert_memory_equal(out, k, sizeof k);
}

static void test_key_put_is_durable_without_begin(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(1);
    unsigned char k[8] = "wrapped", out[8];
    size_t len;
    OK(OPS(f)->key_put(f->s, &id, k, sizeof k, &f->err), f);
    abis_store_close(f->s);
    OK(abis_store_sqlite_open(f->dir, 0, 0, &f->s, &f->err), f);
    OK(OPS(f)->key_get(f->s, &id, out, sizeof out, &len, &f->err), f);
}

static void test_key_get_missing_is_not_found(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(1);
    unsigned char out[8];
    size_t len;
    assert_status(OPS(f)->key_get(f->s, &id, out, sizeof out, &len, &f->err), ABIS_E_NOT_FOUND,
                  &f->err);
}

static void test_key_get_into_small_buffer_is_invalid_and_reports_length(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(1);
    unsigned char k[72] = {1}, out[8];
    size_t len = 0;
    OK(OPS(f)->key_put(f->s, &id, k, sizeof k, &f->err), f);
    assert_status(OPS(f)->key_get(f->s, &id, out, sizeof out, &len, &f->err), ABIS_E_INVALID,
                  &f->err);
    assert_int_equal(len, 72);
}

struct key_seen {
    int64_t created_at;
    int n;
};

static int keep_key(const abis_id *subject, int64_t created_at, void *ctx)
{
    (void)subject;
    struct key_seen *k = ctx;
    k->created_at = created_at;
    k->n++;
    return 0;
}

static void test_key_put_again_replaces_bytes_and_keeps_created_at(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(1);
    unsigned char a[8] = "first", b[9] = "rewrapped", out[16];
    size_t len;
    struct key_seen k1 = {0, 0}, k2 = {0, 0};
    OK(OPS(f)->key_put(f->s, &id, a, sizeof a, &f->err), f);
    OK(OPS(f)->key_scan(f->s, keep_key, &k1, &f->err), f);
    OK(OPS(f)->key_put(f->s, &id, b, sizeof b, &f->err), f);
    OK(OPS(f)->key_scan(f->s, keep_key, &k2, &f->err), f);
    OK(OPS(f)->key_get(f->s, &id, out, sizeof out, &len, &f->err), f);
    assert_int_equal(len, sizeof b);
    assert_memory_equal(out, b, sizeof b);
    assert_int_equal(k2.n, 1);
    assert_int_equal(k1.created_at, k2.created_at);
    assert_true(k1.created_at > 1600000000000LL); /* unix milliseconds */
}

static void test_key_delete_missing_is_not_found(void **state)
{
    fx *f = *state;
    abis_id id = SUBJ(1);
    assert_status(OPS(f)->key_delete(f->s, &id, &f->err), ABIS_E_NOT_FOUND, &f->err);
}

static void test_key_scan_visits_every_key(void **state)
{
    fx *f = *state;
    unsigned char k[4] = "key";
    for (int i = 1; i <= 3; i++) {
        abis_id id = SUBJ(i);
        OK(OPS(f)->key_put(f->s, &id, k, sizeof k, &f->err), f);
    }
    abis_id gone = SUBJ(2);
    OK(OPS(f)->key_delete(f->s, &gone, &f->err), f);
    int n = 0;
    OK(OPS(f)->key_scan(f->s, count_key, &n, &f->err), f);
    assert_int_equal(n, 2);
}

static void test_keymeta_set_then_get(void **state)
{
    fx *f = *state;
    char buf[80];
    OK(OPS(f)->keymeta_set(f->s, "audit_head", "00ff", &f->err), f);
    OK(OPS(f)->keymeta_set(f->s, "audit_head", "11ee", &f->err), f);
    OK(OPS(f)->keymeta_get(f->s, "audit_head", buf, sizeof buf, &f->err), f);
    assert_string_equal(buf, "11ee");
    assert_status(OPS(f)->keymeta_get(f->s, "nope", buf, sizeof buf, &f->err), ABIS_E_NOT_FOUND,
                  &f->err);
}

/* ---- secure deletion ---------------------------------------------------------- */

/* Enrol one template with distinctive sealed bytes, push it into the main
 * file, delete the subject, compact: no copy may remain in either file. */
static void deleted_template_leaves_no_trace(fx *f, size_t len)
{
    char *db = path_in(f, "abis.db"), *wal = path_in(f, "abis.db-wal");
    unsigned char *blob = distinctive(len, (unsigned char)len);
    put_subject(f, 1, f->seg, "");
    put_subject(f, 2, f->seg, ""); /* a neighbour whose rows share the pages */
    put_template(f, 2, 2, f->mod);
    abis_template_rec t = template_rec(1, 1, f->mod, blob, len);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->template_insert(f->s, &t, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    assert_true(abis_test_file_contains(wal, blob, 32));
    OK(OPS(f)->compact(f->s, &f->err), f);
    assert_true(abis_test_file_contains(db, blob, 32));

    abis_id id = SUBJ(1);
    OK(OPS(f)->begin(f->s, &f->err), f);
    OK(OPS(f)->subject_delete(f->s, &id, &f->err), f);
    OK(OPS(f)->commit(f->s, &f->err), f);
    OK(OPS(f)->compact(f->s, &f->err), f);
    for (size_t off = 0; off + 16 <= len; off += len / 4 > 16 ? len / 4 : 16) {
        assert_false(abis_test_file_contains(db, blob + off, 16));
        assert_false(abis_test_file_contains(wal, blob + off, 16));
    }
    assert_int_equal(templates_of(f, 2), 1);
    free(blob), free(db), free(wal);
}

static void test_deleted_small_template_is_erased_from_data_files(void **state)
{
    deleted_template_leaves_no_trace(*state, 300);
}

static void test_deleted_large_template_is_erased_from_data_files(void **state)
{
    deleted_template_leaves_no_trace(*state, 40000); /* spans overflow pages */
}

static void test_deleted_key_is_erased_from_key_files(void **state)
{
    fx *f = *state;
    char *db = path_in(f, "keys.db"), *wal = path_in(f, "keys.db-wal");
    unsigned char *k = distinctive(72, 3);
    unsigned char other[72];
    memset(other, 0x11, sizeof other);
    abis_id id = SUBJ(1), id2 = SUBJ(2);
    OK(OPS(f)->key_put(f->s, &id2, other, sizeof other, &f->err), f);
    OK(OPS(f)->key_put(f->s, &id, k, 72, &f->err), f);
    assert_true(abis_test_file_contains(wal, k, 72));
    OK(OPS(f)->compact(f->s, &f->err), f);
    assert_true(abis_test_file_contains(db, k, 72));
    OK(OPS(f)->key_delete(f->s, &id, &f->err), f);
    assert_false(abis_test_file_contains(db, k, 16));
    assert_false(abis_test_file_contains(db, k + 36, 16));
    assert_false(abis_test_file_contains(wal, k, 16));
    assert_true(abis_test_file_contains(db, other, 72));
    free(k), free(db), free(wal);
}

/* ---- maintenance ------------------------------------------------------------ */

static void test_integrity_check_passes_on_fresh_and_used_store(void **state)
{
    fx *f = *state;
    OK(OPS(f)->integrity_check(f->s, &f->err), f);
    put_subject(f, 1, f->seg, "x");
    put_template(f, 1, 1, f->mod);
    OK(OPS(f)->integrity_check(f->s, &f->err), f);
}

static void test_integrity_check_reports_damage(void **state)
{
    fx *f = *state;
    for (int i = 1; i <= 40; i++) {
        put_subject(f, (unsigned char)i, f->seg, "");
        put_template(f, (unsigned char)i, (unsigned char)i, f->mod);
    }
    abis_store_close(f->s);
    f->s = NULL;
    /* Scribble over the b-tree pages after the first few (the schema lives on page 1). */
    char *db = path_in(f, "abis.db");
    size_t len;
    unsigned char *bytes = abis_test_read_file(db, &len);
    assert_true(len > 8 * 4096);
    memset(bytes + 3 * 4096, 0x5c, len - 3 * 4096);
    FILE *out = fopen(db, "wb");
    fwrite(bytes, 1, len, out);
    fclose(out);
    free(bytes);
    abis_status st = abis_store_sqlite_open(f->dir, 0, 0, &f->s, &f->err);
    if (st == ABIS_OK)
        st = OPS(f)->integrity_check(f->s, &f->err);
    assert_status(st, ABIS_E_STORE, &f->err);
    assert_message_has(&f->err, "abis.db");
    free(db);
}

static void test_migrate_on_current_schema_changes_nothing(void **state)
{
    fx *f = *state;
    OK(OPS(f)->migrate(f->s, &f->err), f);
    OK(OPS(f)->migrate(f->s, &f->err), f);
    OK(OPS(f)->integrity_check(f->s, &f->err), f);
}

/* The rows of sqlite_schema of one file, one "type name sql" line each, sorted. */
static char *schema_of(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT type || ' ' || name || ' ' || coalesce(sql, '')"
                                        " FROM sqlite_schema ORDER BY type, name",
                                        -1, &q, NULL),
                     SQLITE_OK);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(cap, 1);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(q, 0);
        size_t n = strlen(row);
        assert_true(len + n + 2 < cap);
        memcpy(out + len, row, n);
        len += n;
        out[len++] = '\n';
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return out;
}

static void test_store_migrated_from_schema_1_equals_a_new_one(void **state)
{
    fx *f = *state;
    /* A schema-1 store, as the first release wrote it. */
    char *old_dir = abis_test_tmpdir("store-v1");
    char path[4200], sql[128];
    const char *files[] = {"abis.db", "keys.db"};
    const sq_sql_list *steps[] = {sq_data_migrations, sq_keys_migrations};
    const int app_ids[] = {SQ_DATA_APP_ID, SQ_KEYS_APP_ID};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", old_dir, files[i]);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
                         SQLITE_OK);
        for (size_t k = 0; steps[i][1][k]; k++)
            assert_int_equal(sqlite3_exec(db, steps[i][1][k], NULL, NULL, NULL), SQLITE_OK);
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = 1;",
                 app_ids[i]);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    abis_store *old = NULL;
    OK(abis_store_sqlite_open(old_dir, 0, 0, &old, &f->err), f);
    OK(old->ops->migrate(old, &f->err), f);
    OK(old->ops->integrity_check(old, &f->err), f);
    abis_store_close(old);
    for (int i = 0; i < 2; i++) {
        char *fresh = path_in(f, files[i]);
        snprintf(path, sizeof path, "%s/%s", old_dir, files[i]);
        char *a = schema_of(fresh), *b = schema_of(path);
        assert_string_equal(a, b);
        assert_non_null(strstr(a, i == 0 ? "idempotency" : "keymeta"));
        free(a), free(b), free(fresh);
    }
    abis_test_rmdir(old_dir);
}

static void test_compact_inside_transaction_is_internal(void **state)
{
    fx *f = *state;
    OK(OPS(f)->begin(f->s, &f->err), f);
    assert_status(OPS(f)->compact(f->s, &f->err), ABIS_E_INTERNAL, &f->err);
    OPS(f)->rollback(f->s);
}

static void test_compact_empties_both_write_ahead_logs(void **state)
{
    fx *f = *state;
    put_subject(f, 1, f->seg, "");
    abis_id id = SUBJ(1);
    unsigned char k[4] = "key";
    OK(OPS(f)->key_put(f->s, &id, k, sizeof k, &f->err), f);
    OK(OPS(f)->compact(f->s, &f->err), f);
    char *wal = path_in(f, "abis.db-wal"), *kwal = path_in(f, "keys.db-wal");
    struct stat sb;
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(stat(kwal, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    free(wal), free(kwal);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define P(name) cmocka_unit_test_setup_teardown(name, setup_populated, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* create and open */
        T(test_create_makes_both_files_mode_0600),
        T(test_create_missing_directory_makes_it_0700),
        T(test_create_twice_is_exists),
        T(test_create_beside_lone_key_store_is_exists_and_leaves_it),
        T(test_create_read_only_is_invalid),
        T(test_open_missing_store_is_not_found),
        T(test_open_without_key_store_is_not_found),
        T(test_reopen_keeps_committed_data),
        T(test_open_newer_schema_is_refused_and_changes_nothing),
        T(test_open_newer_key_schema_is_refused),
        T(test_open_foreign_database_is_schema_error),
        T(test_open_swapped_files_is_schema_error),
        T(test_open_empty_data_file_hints_interrupted_init),
        T(test_open_read_only_reads_and_refuses_writes),
        T(test_bad_busy_timeout_variable_is_invalid),
        /* transactions */
        T(test_write_outside_transaction_is_internal),
        T(test_nested_begin_is_internal),
        T(test_commit_without_begin_is_internal),
        T(test_rollback_leaves_nothing),
        T(test_close_with_open_transaction_rolls_back),
        T(test_begin_while_another_writer_holds_lock_is_busy),
        P(test_commit_on_full_disk_fails_and_changes_nothing),
        /* meta */
        T(test_meta_set_then_get),
        T(test_meta_set_replaces_value),
        T(test_meta_get_missing_is_not_found),
        T(test_meta_get_into_small_buffer_is_invalid),
        /* registry */
        T(test_segment_add_then_get_by_name_and_id),
        P(test_segment_name_taken_is_exists),
        T(test_segment_empty_name_is_invalid),
        T(test_segment_missing_is_not_found),
        P(test_segment_list_visits_all_and_stops_on_request),
        T(test_purpose_add_then_get),
        P(test_purpose_name_taken_is_exists),
        T(test_purpose_unknown_basis_is_invalid),
        T(test_purpose_missing_is_not_found),
        P(test_purpose_list_visits_all),
        P(test_modality_add_then_get),
        P(test_modality_name_taken_is_exists),
        T(test_modality_missing_is_not_found),
        P(test_calibration_set_then_get),
        P(test_calibration_unset_is_not_found),
        T(test_calibration_of_unknown_modality_is_not_found),
        /* subjects */
        P(test_subject_insert_then_get),
        P(test_subjects_without_reference_read_back_empty),
        P(test_subject_reference_taken_in_segment_is_exists),
        P(test_subject_same_reference_in_other_segment_is_allowed),
        P(test_subject_id_taken_is_exists),
        P(test_subject_in_unknown_segment_is_not_found),
        P(test_subject_find_by_reference),
        P(test_subject_missing_is_not_found),
        P(test_subject_delete_missing_is_not_found),
        P(test_subject_delete_cascades_to_templates_consents_locks),
        P(test_subject_delete_keeps_audit_entries),
        P(test_subject_scan_by_segment_and_all),
        P(test_subject_count_by_segment_and_all),
        /* templates */
        P(test_template_insert_then_scan_subject),
        P(test_template_id_taken_is_exists),
        P(test_template_of_unknown_subject_is_not_found),
        P(test_template_of_unknown_modality_is_not_found),
        P(test_template_without_sealed_bytes_is_invalid),
        P(test_template_delete_removes_one),
        P(test_template_scan_by_segment_and_modality),
        /* consents */
        P(test_consent_put_then_get),
        P(test_consent_put_replaces_earlier_one),
        P(test_consent_missing_is_not_found),
        P(test_consent_for_unknown_purpose_or_subject_is_not_found),
        P(test_consent_scan_subject_lists_every_purpose),
        P(test_consent_scan_granted_skips_withdrawn_and_other_segments),
        /* locks */
        P(test_lock_zero_means_all_modalities),
        P(test_lock_on_unknown_modality_is_not_found),
        P(test_lock_of_unknown_subject_is_not_found),
        P(test_lock_delete_missing_is_not_found),
        P(test_lock_scan_by_segment),
        /* audit */
        T(test_audit_append_then_last_and_scan),
        T(test_audit_last_of_empty_log_is_not_found),
        T(test_audit_entry_out_of_sequence_is_invalid),
        T(test_audit_scan_subject_returns_only_that_subject),
        T(test_audit_scan_subject_uses_index),
        T(test_audit_update_refused_by_trigger),
        T(test_audit_delete_refused_by_trigger),
        T(test_checkpoint_add_then_last_and_scan),
        T(test_checkpoint_last_without_any_is_not_found),
        T(test_checkpoint_going_backwards_is_invalid),
        T(test_checkpoint_update_refused_by_trigger),
        /* key store */
        T(test_key_put_then_get),
        T(test_key_put_is_durable_without_begin),
        T(test_key_get_missing_is_not_found),
        T(test_key_get_into_small_buffer_is_invalid_and_reports_length),
        T(test_key_put_again_replaces_bytes_and_keeps_created_at),
        T(test_key_delete_missing_is_not_found),
        T(test_key_scan_visits_every_key),
        T(test_keymeta_set_then_get),
        /* secure deletion */
        P(test_deleted_small_template_is_erased_from_data_files),
        P(test_deleted_large_template_is_erased_from_data_files),
        T(test_deleted_key_is_erased_from_key_files),
        /* maintenance */
        P(test_integrity_check_passes_on_fresh_and_used_store),
        P(test_integrity_check_reports_damage),
        T(test_migrate_on_current_schema_changes_nothing),
        T(test_store_migrated_from_schema_1_equals_a_new_one),
        T(test_compact_inside_transaction_is_internal),
        P(test_compact_empties_both_write_ahead_logs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
