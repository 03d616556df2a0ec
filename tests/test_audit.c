/*
 * test_audit.c: the hash-chained, checkpoint-signed audit log (src/audit/),
 * against the real SQLite store in a temporary directory.
 *
 * Tampering is done the way an attacker holding DIR/abis.db would: with
 * sqlite3 directly on the file, after dropping any triggers that forbid
 * UPDATE or DELETE on the audit tables.
 */
#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "crypto/crypto.h"
#include "store/store.h"

/* Table and column names of the SQLite backend (src/store/store_sqlite.c). */
#define T_AUDIT "audit"
#define T_CHECKPOINT "audit_checkpoints"

typedef struct fx {
    char *dir;
    abis_store *s;
    abis_key master;
    abis_audit a;
} fx;

static int setup(void **state)
{
    abis_error err;
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_status(abis_crypto_init(&err), ABIS_OK, &err);
    f->dir = abis_test_tmpdir("audit");
    assert_non_null(f->dir);
    assert_status(abis_store_sqlite_open(f->dir, 1, 0, &f->s, &err), ABIS_OK, &err);
    abis_key_random(&f->master);
    abis_audit_init(&f->a, f->s, &f->master);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    abis_audit_wipe(&f->a);
    abis_key_wipe(&f->master);
    abis_store_close(f->s);
    abis_test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Close and reopen the store, as a later process would. */
static void reopen(fx *f)
{
    abis_error err;
    abis_store_close(f->s);
    f->s = NULL;
    assert_status(abis_store_sqlite_open(f->dir, 0, 0, &f->s, &err), ABIS_OK, &err);
    f->a.store = f->s;
}

static void fill(abis_audit_rec *r, int i)
{
    memset(r, 0, sizeof *r);
    snprintf(r->actor, sizeof r->actor, "operator:alice");
    snprintf(r->operation, sizeof r->operation, i % 2 ? "verify" : "identify");
    snprintf(r->segment, sizeof r->segment, "federal");
    snprintf(r->subject, sizeof r->subject, "%032x", (unsigned)i);
    snprintf(r->purpose, sizeof r->purpose, "bank.remote-id");
    snprintf(r->outcome, sizeof r->outcome, "ok");
    snprintf(r->decision, sizeof r->decision, i % 3 ? "match" : "no_match");
    snprintf(r->detail, sizeof r->detail, "entry number %d", i);
}

/* Append n entries on store s, one transaction per `batch` entries. */
static void append_on(abis_audit *a, abis_store *s, int n, int batch)
{
    abis_error err;
    for (int i = 0; i < n;) {
        assert_status(s->ops->begin(s, &err), ABIS_OK, &err);
        for (int j = 0; j < batch && i < n; j++, i++) {
            abis_audit_rec r;
            fill(&r, i);
            assert_status(abis_audit_append(a, &r, &err), ABIS_OK, &err);
        }
        assert_status(s->ops->commit(s, &err), ABIS_OK, &err);
    }
}

static void append_n(fx *f, int n)
{
    append_on(&f->a, f->s, n, 50);
}

static void seal(fx *f)
{
    abis_error err;
    assert_status(abis_audit_seal(&f->a, &err), ABIS_OK, &err);
}

static void check(fx *f, const unsigned char *pk, abis_audit_report *rep)
{
    abis_error err;
    assert_status(abis_audit_check(&f->a, pk ? pk : f->a.pk, rep, &err), ABIS_OK, &err);
}

static void expect_ok(fx *f, uint64_t entries, uint64_t checkpoints, uint64_t unsealed)
{
    abis_audit_report rep;
    check(f, NULL, &rep);
    if (!rep.ok)
        fail_msg("audit check failed: %s", rep.problem);
    assert_int_equal(rep.first_bad_seq, -1);
    assert_int_equal(rep.entries, entries);
    assert_int_equal(rep.checkpoints, checkpoints);
    assert_int_equal(rep.unsealed, unsealed);
}

static void expect_bad(fx *f, const unsigned char *pk, int64_t seq, const char *problem)
{
    abis_audit_report rep;
    check(f, pk, &rep);
    assert_false(rep.ok);
    if (rep.first_bad_seq != seq || strcmp(rep.problem, problem) != 0)
        fail_msg("wanted first_bad_seq %" PRId64 " \"%s\", got %" PRId64 " \"%s\"", seq, problem,
                 rep.first_bad_seq, rep.problem);
}

typedef struct entries {
    abis_audit_rec *v;
    size_t n;
} entries;

static int collect(const abis_audit_rec *r, void *ctx)
{
    entries *e = ctx;
    abis_audit_rec *nv = realloc(e->v, (e->n + 1) * sizeof *nv);
    assert_non_null(nv);
    e->v = nv;
    e->v[e->n++] = *r;
    return 0;
}

/* Every entry, in seq order (v[i].seq == i + 1 on an intact log). */
static entries load(fx *f)
{
    abis_error err;
    entries e = {0};
    assert_status(f->s->ops->audit_scan(f->s, 1, collect, &e, &err), ABIS_OK, &err);
    return e;
}

static int count_cp(const abis_checkpoint_rec *r, void *ctx)
{
    (void)r;
    ++*(int *)ctx;
    return 0;
}

static int checkpoint_count(fx *f)
{
    abis_error err;
    int n = 0;
    assert_status(f->s->ops->checkpoint_scan(f->s, count_cp, &n, &err), ABIS_OK, &err);
    return n;
}

/* ---- the attacker's tools: sqlite3 on DIR/abis.db ------------------------ */

static void sql(sqlite3 *db, const char *q)
{
    char *msg = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", q, msg);
}

/* Open the data file with the store closed, and drop every trigger. */
static sqlite3 *attacker_open(fx *f)
{
    abis_store_close(f->s);
    f->s = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/abis.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    char names[32][128];
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < 32)
        snprintf(names[n++], sizeof names[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        char q[sizeof names[0] + 32];
        snprintf(q, sizeof q, "DROP TRIGGER \"%.127s\"", names[i]);
        sql(db, q);
    }
    return db;
}

/* Close the attacker's handle and reopen the store for the checker. */
static void attacker_close(fx *f, sqlite3 *db)
{
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    reopen(f);
}

/* Overwrite every column of the row at r->seq with r's fields. */
static void put_entry(sqlite3 *db, const abis_audit_rec *r)
{
    sqlite3_stmt *st;
    const char *q = "UPDATE " T_AUDIT " SET at = ?2, actor = ?3, operation = ?4, segment = ?5,"
                    " subject = ?6, purpose = ?7, outcome = ?8, decision = ?9, detail = ?10,"
                    " prev_hash = ?11, hash = ?12 WHERE seq = ?1";
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", q, sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_bind_int64(st, 2, r->at);
    const char *text[] = {r->actor,   r->operation, r->segment,  r->subject,
                          r->purpose, r->outcome,   r->decision, r->detail};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_text(st, 3 + i, text[i], -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 11, r->prev_hash, ABIS_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 12, r->hash, ABIS_HASH_BYTES, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
}

/* ---- appending ------------------------------------------------------------ */

static void test_append_fills_seq_time_and_links(void **state)
{
    fx *f = *state;
    append_n(f, 3);
    entries e = load(f);
    assert_int_equal(e.n, 3);
    static const unsigned char zero[ABIS_HASH_BYTES];
    for (size_t i = 0; i < e.n; i++) {
        assert_int_equal(e.v[i].seq, (int64_t)i + 1);
        assert_true(e.v[i].at > 1600000000000LL); /* set to now, in ms */
        assert_memory_equal(e.v[i].prev_hash, i ? e.v[i - 1].hash : zero, ABIS_HASH_BYTES);
        unsigned char h[ABIS_HASH_BYTES];
        abis_audit_entry_hash(&e.v[i], h);
        assert_memory_equal(h, e.v[i].hash, ABIS_HASH_BYTES);
    }
    assert_string_equal(e.v[1].detail, "entry number 1");
    free(e.v);
}

static void test_append_keeps_given_time(void **state)
{
    fx *f = *state;
    abis_error err;
    abis_audit_rec r;
    fill(&r, 0);
    r.at = 1234567;
    assert_status(f->s->ops->begin(f->s, &err), ABIS_OK, &err);
    assert_status(abis_audit_append(&f->a, &r, &err), ABIS_OK, &err);
    assert_status(f->s->ops->commit(f->s, &err), ABIS_OK, &err);
    entries e = load(f);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.v[0].at, 1234567);
    free(e.v);
}

static void test_rolled_back_append_leaves_no_entry(void **state)
{
    fx *f = *state;
    abis_error err;
    append_n(f, 2);
    abis_audit_rec r;
    fill(&r, 9);
    assert_status(f->s->ops->begin(f->s, &err), ABIS_OK, &err);
    assert_status(abis_audit_append(&f->a, &r, &err), ABIS_OK, &err);
    f->s->ops->rollback(f->s);
    append_n(f, 1);
    expect_ok(f, 3, 0, 3);
}

static void test_append_then_check_ok(void **state)
{
    fx *f = *state;
    append_n(f, 10);
    expect_ok(f, 10, 0, 10);
}

static void test_empty_log_checks_ok(void **state)
{
    fx *f = *state;
    expect_ok(f, 0, 0, 0);
}

/* Two handles on one directory stand for two processes: each reads the head
 * inside its own write transaction, so the chain stays one chain. */
static void test_two_writers_keep_one_chain(void **state)
{
    fx *f = *state;
    abis_error err;
    abis_store *s2;
    assert_status(abis_store_sqlite_open(f->dir, 0, 0, &s2, &err), ABIS_OK, &err);
    abis_audit a2;
    abis_audit_init(&a2, s2, &f->master);
    for (int i = 0; i < 10; i++) {
        append_on(&f->a, f->s, 3, 3);
        append_on(&a2, s2, 2, 2);
    }
    abis_audit_wipe(&a2);
    abis_store_close(s2);
    expect_ok(f, 50, 0, 50);
}

static void test_entry_hash_covers_every_field(void **state)
{
    (void)state;
    abis_audit_rec base;
    fill(&base, 1);
    base.seq = 5;
    base.at = 1000;
    unsigned char h0[ABIS_HASH_BYTES], h[ABIS_HASH_BYTES];
    abis_audit_entry_hash(&base, h0);

    abis_audit_rec r = base;
    r.seq = 6;
    abis_audit_entry_hash(&r, h);
    assert_memory_not_equal(h, h0, ABIS_HASH_BYTES);
    r = base;
    r.at = 1001;
    abis_audit_entry_hash(&r, h);
    assert_memory_not_equal(h, h0, ABIS_HASH_BYTES);
    r = base;
    r.prev_hash[31] ^= 1;
    abis_audit_entry_hash(&r, h);
    assert_memory_not_equal(h, h0, ABIS_HASH_BYTES);

    char *fields[] = {r.actor,   r.operation, r.segment,  r.subject,
                      r.purpose, r.outcome,   r.decision, r.detail};
    for (int i = 0; i < 8; i++) {
        r = base;
        fields[i][0] ^= 1;
        abis_audit_entry_hash(&r, h);
        assert_memory_not_equal(h, h0, ABIS_HASH_BYTES);
    }

    /* Moving a boundary between two fields changes the hash (lengths are encoded). */
    abis_audit_rec x = base, y = base;
    snprintf(x.actor, sizeof x.actor, "ab");
    snprintf(x.operation, sizeof x.operation, "c");
    snprintf(y.actor, sizeof y.actor, "a");
    snprintf(y.operation, sizeof y.operation, "bc");
    unsigned char hx[ABIS_HASH_BYTES], hy[ABIS_HASH_BYTES];
    abis_audit_entry_hash(&x, hx);
    abis_audit_entry_hash(&y, hy);
    assert_memory_not_equal(hx, hy, ABIS_HASH_BYTES);
}

/* ---- sealing -------------------------------------------------------------- */

static void test_seal_writes_checkpoint_and_keymeta(void **state)
{
    fx *f = *state;
    abis_error err;
    append_n(f, 5);
    seal(f);

    abis_checkpoint_rec cp;
    assert_status(f->s->ops->checkpoint_last(f->s, &cp, &err), ABIS_OK, &err);
    entries e = load(f);
    assert_int_equal(cp.seq, 5);
    assert_memory_equal(cp.head, e.v[4].hash, ABIS_HASH_BYTES);

    char seq[32], head[80], want[2 * ABIS_HASH_BYTES + 1];
    assert_status(f->s->ops->keymeta_get(f->s, "audit_sealed_seq", seq, sizeof seq, &err), ABIS_OK,
                  &err);
    assert_string_equal(seq, "5");
    assert_status(f->s->ops->keymeta_get(f->s, "audit_sealed_head", head, sizeof head, &err),
                  ABIS_OK, &err);
    abis_to_hex(e.v[4].hash, ABIS_HASH_BYTES, want);
    assert_string_equal(head, want);
    free(e.v);

    expect_ok(f, 5, 1, 0);
    append_n(f, 2);
    expect_ok(f, 7, 1, 2);
}

static void test_seal_twice_writes_one_checkpoint(void **state)
{
    fx *f = *state;
    append_n(f, 5);
    seal(f);
    seal(f);
    assert_int_equal(checkpoint_count(f), 1);
}

static void test_seal_of_empty_log_writes_nothing(void **state)
{
    fx *f = *state;
    abis_error err;
    char buf[80];
    seal(f);
    assert_int_equal(checkpoint_count(f), 0);
    assert_status(f->s->ops->keymeta_get(f->s, "audit_sealed_seq", buf, sizeof buf, &err),
                  ABIS_E_NOT_FOUND, &err);
}

static void test_periodic_checkpoint_at_256(void **state)
{
    fx *f = *state;
    abis_error err;
    append_n(f, 255);
    assert_int_equal(checkpoint_count(f), 0);
    append_n(f, 45);
    assert_int_equal(checkpoint_count(f), 1);
    abis_checkpoint_rec cp;
    assert_status(f->s->ops->checkpoint_last(f->s, &cp, &err), ABIS_OK, &err);
    assert_int_equal(cp.seq, ABIS_AUDIT_CHECKPOINT_EVERY);
    /* Not mirrored to the key store until the next seal. */
    char buf[80];
    assert_status(f->s->ops->keymeta_get(f->s, "audit_sealed_seq", buf, sizeof buf, &err),
                  ABIS_E_NOT_FOUND, &err);
    expect_ok(f, 300, 1, 300 - 256);
}

/* A seal right after a periodic checkpoint writes no second checkpoint but
 * still records the head in the key store. */
static void test_seal_on_periodic_checkpoint_mirrors_it(void **state)
{
    fx *f = *state;
    abis_error err;
    append_n(f, 256);
    seal(f);
    assert_int_equal(checkpoint_count(f), 1);
    char buf[80];
    assert_status(f->s->ops->keymeta_get(f->s, "audit_sealed_seq", buf, sizeof buf, &err), ABIS_OK,
                  &err);
    assert_string_equal(buf, "256");
    expect_ok(f, 256, 1, 0);
}

/* ---- tampering ------------------------------------------------------------ */

static void test_edited_entry_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    entries e = load(f);
    sqlite3 *db = attacker_open(f);
    snprintf(e.v[6].detail, sizeof e.v[6].detail, "nothing happened");
    put_entry(db, &e.v[6]);
    attacker_close(f, db);
    free(e.v);
    expect_bad(f, NULL, 7, "entry 7: hash does not match its contents (edited)");
}

static void test_edited_time_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    entries e = load(f);
    sqlite3 *db = attacker_open(f);
    e.v[11].at -= 3600 * 1000;
    put_entry(db, &e.v[11]);
    attacker_close(f, db);
    free(e.v);
    expect_bad(f, NULL, 12, "entry 12: hash does not match its contents (edited)");
}

static void test_removed_entry_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    sqlite3 *db = attacker_open(f);
    sql(db, "DELETE FROM " T_AUDIT " WHERE seq = 7");
    attacker_close(f, db);
    expect_bad(f, NULL, 7, "entry 7: missing (the log goes from 6 to 8: entry removed)");
}

/* Removing an entry and renumbering the rest closes the gap in seq, but not
 * the chain. */
static void test_removed_and_renumbered_entry_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    sqlite3 *db = attacker_open(f);
    sql(db, "DELETE FROM " T_AUDIT " WHERE seq = 7");
    sql(db, "UPDATE " T_AUDIT " SET seq = seq + 1000 WHERE seq > 7");
    sql(db, "UPDATE " T_AUDIT " SET seq = seq - 1001 WHERE seq > 1000");
    sql(db, "DELETE FROM " T_CHECKPOINT);
    attacker_close(f, db);
    expect_bad(f, NULL, 7, "entry 7: previous-hash link broken (entry removed or reordered)");
}

static void test_reordered_entries_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    entries e = load(f);
    abis_audit_rec r7 = e.v[6], r8 = e.v[7];
    r7.seq = 8;
    r8.seq = 7;
    sqlite3 *db = attacker_open(f);
    put_entry(db, &r8);
    put_entry(db, &r7);
    attacker_close(f, db);
    free(e.v);
    expect_bad(f, NULL, 7, "entry 7: previous-hash link broken (entry removed or reordered)");
}

/* Cutting entries and checkpoints back below the sealed head: only the key
 * store (a separate file) still knows the log was longer. */
static void test_truncation_below_seal_detected(void **state)
{
    fx *f = *state;
    append_n(f, 64);
    seal(f);
    sqlite3 *db = attacker_open(f);
    sql(db, "DELETE FROM " T_AUDIT " WHERE seq > 40");
    sql(db, "DELETE FROM " T_CHECKPOINT " WHERE seq > 40");
    attacker_close(f, db);
    expect_bad(f, NULL, 41, "entries end at 40 but the key store sealed entry 64 (log truncated)");
}

static void test_truncation_leaving_checkpoint_detected(void **state)
{
    fx *f = *state;
    append_n(f, 64);
    seal(f);
    sqlite3 *db = attacker_open(f);
    sql(db, "DELETE FROM " T_AUDIT " WHERE seq > 40");
    attacker_close(f, db);
    expect_bad(f, NULL, 41,
               "entries end at 40 but a signed checkpoint covers entry 64 (log truncated)");
}

/* The documented limit: entries after the last seal are protected by the
 * chain against edits, but cutting them off leaves a shorter valid log. */
static void test_truncation_after_last_seal_is_not_detected(void **state)
{
    fx *f = *state;
    append_n(f, 30);
    seal(f);
    append_n(f, 10);
    sqlite3 *db = attacker_open(f);
    sql(db, "DELETE FROM " T_AUDIT " WHERE seq > 35");
    attacker_close(f, db);
    expect_ok(f, 35, 1, 5);
}

static void test_forged_checkpoint_signature_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    sqlite3 *db = attacker_open(f);
    /* Flip one bit of the signature's first byte. */
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT sig FROM " T_CHECKPOINT " WHERE seq = 20", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    unsigned char sig[ABIS_SIG_BYTES];
    assert_int_equal(sqlite3_column_bytes(st, 0), ABIS_SIG_BYTES);
    memcpy(sig, sqlite3_column_blob(st, 0), ABIS_SIG_BYTES);
    sqlite3_finalize(st);
    sig[0] ^= 1;
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE " T_CHECKPOINT " SET sig = ? WHERE seq = 20", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(st, 1, sig, sizeof sig, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    attacker_close(f, db);
    expect_bad(f, NULL, 20, "checkpoint at 20: signature invalid");
}

/* Edit entry `seq` and recompute every later hash so that the chain itself
 * is consistent again. */
static void rewrite_from(fx *f, sqlite3 *db, entries *e, int64_t seq)
{
    (void)f;
    snprintf(e->v[seq - 1].detail, sizeof e->v[seq - 1].detail, "rewritten history");
    for (size_t i = (size_t)seq - 1; i < e->n; i++) {
        if (i > 0)
            memcpy(e->v[i].prev_hash, e->v[i - 1].hash, ABIS_HASH_BYTES);
        abis_audit_entry_hash(&e->v[i], e->v[i].hash);
        put_entry(db, &e->v[i]);
    }
}

static void test_consistent_rewrite_detected_by_checkpoint(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    append_n(f, 5);
    entries e = load(f);
    sqlite3 *db = attacker_open(f);
    rewrite_from(f, db, &e, 7);
    attacker_close(f, db);
    free(e.v);
    expect_bad(f, NULL, 20,
               "checkpoint at 20: signed head does not match entry 20 (log rewritten)");
}

/* Rewriting consistently and deleting the checkpoints that would betray it:
 * the key store's sealed head still does. */
static void test_consistent_rewrite_detected_by_key_store(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    entries e = load(f);
    sqlite3 *db = attacker_open(f);
    rewrite_from(f, db, &e, 7);
    sql(db, "DELETE FROM " T_CHECKPOINT);
    attacker_close(f, db);
    free(e.v);
    expect_bad(f, NULL, 20,
               "entry 20: hash differs from the head the key store sealed"
               " (log rewritten below a sealed point)");
}

/* A consistent rewrite at or after the head the key store has is beyond what
 * the data store alone can show: the next seal would sign it.  Sealing is
 * what makes history final. */
static void test_consistent_rewrite_after_last_seal_is_not_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    append_n(f, 10);
    entries e = load(f);
    sqlite3 *db = attacker_open(f);
    rewrite_from(f, db, &e, 25);
    attacker_close(f, db);
    free(e.v);
    expect_ok(f, 30, 1, 10);
}

/* A seal interrupted between its two key-store writes (the head is written
 * first) leaves the new head with the old seq: that is not tampering. */
static void test_interrupted_key_store_write_is_not_tamper(void **state)
{
    fx *f = *state;
    abis_error err;
    append_n(f, 20);
    seal(f);
    append_n(f, 10);
    seal(f);
    assert_status(f->s->ops->keymeta_set(f->s, "audit_sealed_seq", "20", &err), ABIS_OK, &err);
    expect_ok(f, 30, 2, 0);
}

static void test_malformed_key_store_head_reported(void **state)
{
    fx *f = *state;
    abis_error err;
    append_n(f, 20);
    seal(f);
    assert_status(f->s->ops->keymeta_set(f->s, "audit_sealed_head", "zz", &err), ABIS_OK, &err);
    expect_bad(f, NULL, -1, "the key store's sealed head is malformed (seq '20', head 'zz')");
}

static void test_wrong_public_key_detected(void **state)
{
    fx *f = *state;
    append_n(f, 20);
    seal(f);
    abis_key other;
    unsigned char pk[ABIS_SIGN_PK_BYTES], sk[ABIS_SIGN_SK_BYTES];
    abis_key_random(&other);
    abis_sign_keypair(&other, pk, sk);
    abis_key_wipe(&other);
    expect_bad(f, pk, 20, "checkpoint at 20: signature invalid");
}

/* The seal keeps an attacker who cut the log from getting the cut signed. */
static void test_seal_refuses_truncated_log(void **state)
{
    fx *f = *state;
    abis_error err;
    append_n(f, 20);
    seal(f);
    sqlite3 *db = attacker_open(f);
    sql(db, "DELETE FROM " T_AUDIT " WHERE seq > 10");
    attacker_close(f, db);
    assert_status(abis_audit_seal(&f->a, &err), ABIS_E_TAMPER, &err);
}

/* ---- export --------------------------------------------------------------- */

static void test_jsonl_export_has_every_field(void **state)
{
    fx *f = *state;
    abis_error err;
    abis_audit_rec r;
    fill(&r, 4);
    r.at = 1714566896789LL; /* 2024-05-01T12:34:56.789Z */
    assert_status(f->s->ops->begin(f->s, &err), ABIS_OK, &err);
    assert_status(abis_audit_append(&f->a, &r, &err), ABIS_OK, &err);
    assert_status(f->s->ops->commit(f->s, &err), ABIS_OK, &err);
    append_n(f, 2);

    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_status(abis_audit_write_jsonl(&f->a, out, &err), ABIS_OK, &err);
    fclose(out);

    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        if (!o)
            fail_msg("line %d is not JSON: %s", lines + 1, jerr.text);
        lines++;
        assert_int_equal(json_integer_value(json_object_get(o, "seq")), lines);
        static const char *keys[] = {"time",    "actor",     "operation", "segment",
                                     "subject", "purpose",   "outcome",   "decision",
                                     "detail",  "prev_hash", "hash"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            assert_true(json_is_string(json_object_get(o, keys[k])));
        assert_true(json_is_integer(json_object_get(o, "at")));
        assert_int_equal(strlen(json_string_value(json_object_get(o, "hash"))), 64);
        if (lines == 1) {
            assert_int_equal(json_integer_value(json_object_get(o, "at")), 1714566896789LL);
            assert_string_equal(json_string_value(json_object_get(o, "time")),
                                "2024-05-01T12:34:56.789Z");
            assert_string_equal(json_string_value(json_object_get(o, "actor")), "operator:alice");
            assert_string_equal(json_string_value(json_object_get(o, "detail")), "entry number 4");
            assert_string_equal(json_string_value(json_object_get(o, "prev_hash")),
                                "0000000000000000000000000000000000000000000000000000000000000000");
            char hex[2 * ABIS_HASH_BYTES + 1];
            abis_to_hex(r.hash, ABIS_HASH_BYTES, hex);
            assert_string_equal(json_string_value(json_object_get(o, "hash")), hex);
        }
        json_decref(o);
    }
    assert_int_equal(lines, 3);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_fills_seq_time_and_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_keeps_given_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_append_leaves_no_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_then_check_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_log_checks_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers_keep_one_chain, setup, teardown),
        cmocka_unit_test(test_entry_hash_covers_every_field),
        cmocka_unit_test_setup_teardown(test_seal_writes_checkpoint_and_keymeta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_twice_writes_one_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_of_empty_log_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_checkpoint_at_256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_on_periodic_checkpoint_mirrors_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_edited_entry_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_time_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_entry_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_and_renumbered_entry_detected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reordered_entries_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_below_seal_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_leaving_checkpoint_detected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_truncation_after_last_seal_is_not_detected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_forged_checkpoint_signature_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consistent_rewrite_detected_by_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_consistent_rewrite_detected_by_key_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_consistent_rewrite_after_last_seal_is_not_detected,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_key_store_write_is_not_tamper, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_key_store_head_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_public_key_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_refuses_truncated_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonl_export_has_every_field, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
