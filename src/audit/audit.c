/*
 * audit.c: the append-only, hash-chained, checkpoint-signed audit log
 * (contract in audit.h; persisted format in docs/FORMATS.md, "Audit log").
 *
 * Three things protect the log:
 *   - the hash chain: each entry's hash covers the previous entry's hash and
 *     the entry's canonical encoding, so editing, removing or reordering an
 *     entry breaks the chain at that entry;
 *   - signed checkpoints in the data store: an Ed25519 signature (key derived
 *     from the master key) over a chain head, so that rewriting the chain
 *     consistently (recomputing every later hash) is caught at the next
 *     checkpoint;
 *   - the sealed head in the key store (a separate file): the latest (seq,
 *     head) sealed by abis_audit_seal, so that cutting the log (and its
 *     checkpoints) back below a sealed point is caught even though the data
 *     store alone was edited.
 */
#include "audit/audit.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

/* Domain-separation tags (docs/FORMATS.md, "Audit log").  Changing either changes
 * every hash or signature: bump the version suffix, never edit in place. */
static const char ENTRY_TAG[] = "abis-audit-v1";
static const char CHECKPOINT_TAG[] = "abis-audit-checkpoint-v1";

#define ENTRY_TAG_LEN (sizeof ENTRY_TAG - 1)
#define CHECKPOINT_TAG_LEN (sizeof CHECKPOINT_TAG - 1)
#define CHECKPOINT_MSG_BYTES (CHECKPOINT_TAG_LEN + 8 + 8 + ABIS_HASH_BYTES)

/* Key-store metadata names of the latest sealed head. */
#define KEYMETA_SEALED_SEQ "audit_sealed_seq"
#define KEYMETA_SEALED_HEAD "audit_sealed_head"

/* The largest canonical encoding: the tag, seq and at, and each text field at
 * its full capacity with its 4-byte length. */
#define CAP(field) sizeof(((abis_audit_rec *)0)->field)
#define ENTRY_TEXT_FIELDS 8
#define ENTRY_MAX_BYTES                                                                            \
    (ENTRY_TAG_LEN + 8 + 8 + 4 * ENTRY_TEXT_FIELDS + CAP(actor) + CAP(operation) + CAP(segment) +  \
     CAP(subject) + CAP(purpose) + CAP(outcome) + CAP(decision) + CAP(detail))

static const unsigned char ZERO_HASH[ABIS_HASH_BYTES];

/* ---- encoding ------------------------------------------------------------- */

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return p + 8;
}

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* A text field as 4-byte big-endian length + bytes.  The field is read up to
 * its first NUL or its capacity, whichever comes first, so a record that
 * somehow lacks a terminator is still encoded deterministically. */
static unsigned char *put_text(unsigned char *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    p = put_u32(p, (uint32_t)n);
    memcpy(p, s, n);
    return p + n;
}

/* Write the canonical encoding of `r` (without prev_hash and hash) into
 * `buf` (ENTRY_MAX_BYTES); returns its length. */
static size_t entry_encode(const abis_audit_rec *r, unsigned char *buf)
{
    unsigned char *p = buf;
    memcpy(p, ENTRY_TAG, ENTRY_TAG_LEN);
    p += ENTRY_TAG_LEN;
    p = put_u64(p, (uint64_t)r->seq);
    p = put_u64(p, (uint64_t)r->at);
    p = put_text(p, r->actor, sizeof r->actor);
    p = put_text(p, r->operation, sizeof r->operation);
    p = put_text(p, r->segment, sizeof r->segment);
    p = put_text(p, r->subject, sizeof r->subject);
    p = put_text(p, r->purpose, sizeof r->purpose);
    p = put_text(p, r->outcome, sizeof r->outcome);
    p = put_text(p, r->decision, sizeof r->decision);
    p = put_text(p, r->detail, sizeof r->detail);
    assert((size_t)(p - buf) <= ENTRY_MAX_BYTES);
    return (size_t)(p - buf);
}

void abis_audit_entry_hash(const abis_audit_rec *r, unsigned char out[ABIS_HASH_BYTES])
{
    unsigned char buf[ENTRY_MAX_BYTES];
    size_t len = entry_encode(r, buf);
    abis_hash2(r->prev_hash, ABIS_HASH_BYTES, buf, len, out);
}

/* The message a checkpoint signs: tag || seq (8 BE) || at (8 BE) || head. */
static void checkpoint_message(const abis_checkpoint_rec *c,
                               unsigned char msg[CHECKPOINT_MSG_BYTES])
{
    unsigned char *p = msg;
    memcpy(p, CHECKPOINT_TAG, CHECKPOINT_TAG_LEN);
    p += CHECKPOINT_TAG_LEN;
    p = put_u64(p, (uint64_t)c->seq);
    p = put_u64(p, (uint64_t)c->at);
    memcpy(p, c->head, ABIS_HASH_BYTES);
}

static void checkpoint_sign(const abis_audit *a, abis_checkpoint_rec *c)
{
    unsigned char msg[CHECKPOINT_MSG_BYTES];
    checkpoint_message(c, msg);
    abis_sign(a->sk, msg, sizeof msg, c->sig);
}

static int checkpoint_sig_ok(const unsigned char pk[ABIS_SIGN_PK_BYTES],
                             const abis_checkpoint_rec *c)
{
    unsigned char msg[CHECKPOINT_MSG_BYTES];
    checkpoint_message(c, msg);
    return abis_sign_check(pk, msg, sizeof msg, c->sig);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- signer --------------------------------------------------------------- */

void abis_audit_init(abis_audit *a, abis_store *store, const abis_key *master)
{
    assert(a && store && master);
    a->store = store;
    abis_sign_keypair(master, a->pk, a->sk);
}

void abis_audit_wipe(abis_audit *a)
{
    if (a)
        sodium_memzero(a->sk, sizeof a->sk);
}

/* ---- appending ------------------------------------------------------------ */

/* Sign the head (seq, hash, at) and add it as a checkpoint in the open
 * transaction; `cp` receives the checkpoint. */
static abis_status checkpoint_write(abis_audit *a, int64_t seq, int64_t at,
                                    const unsigned char head[ABIS_HASH_BYTES],
                                    abis_checkpoint_rec *cp, abis_error *err)
{
    memset(cp, 0, sizeof *cp);
    cp->seq = seq;
    cp->at = at;
    memcpy(cp->head, head, ABIS_HASH_BYTES);
    checkpoint_sign(a, cp);
    abis_status st = a->store->ops->checkpoint_add(a->store, cp, err);
    if (st != ABIS_OK)
        abis_error_prefix(err, "audit checkpoint at entry %" PRId64, seq);
    return st;
}

/* The caller's transaction was opened with begin(), which takes the write
 * lock (BEGIN IMMEDIATE in SQLite), so no other process can append between
 * reading the head here and writing the new entry: seq and prev_hash are
 * the true head's even with several writers. */
abis_status abis_audit_append(abis_audit *a, abis_audit_rec *r, abis_error *err)
{
    assert(a && a->store && r);
    abis_audit_rec last;
    abis_status st = a->store->ops->audit_last(a->store, &last, err);
    if (st == ABIS_OK) {
        r->seq = last.seq + 1;
        memcpy(r->prev_hash, last.hash, ABIS_HASH_BYTES);
    } else if (st == ABIS_E_NOT_FOUND) {
        abis_error_clear(err);
        r->seq = 1;
        memset(r->prev_hash, 0, ABIS_HASH_BYTES);
    } else {
        abis_error_prefix(err, "audit: reading the chain head");
        return st;
    }
    if (r->at == 0)
        r->at = now_ms();
    abis_audit_entry_hash(r, r->hash);

    st = a->store->ops->audit_append(a->store, r, err);
    if (st != ABIS_OK) {
        abis_error_prefix(err, "audit: appending entry %" PRId64, r->seq);
        return st;
    }

    /* Periodic checkpoints bound how much of the log an attacker could
     * rewrite unnoticed when the engine is never closed cleanly.  They are
     * not mirrored into the key store here (that is a separate file and a
     * separate transaction); the next abis_audit_seal does it. */
    if (r->seq % ABIS_AUDIT_CHECKPOINT_EVERY == 0) {
        abis_checkpoint_rec cp;
        st = checkpoint_write(a, r->seq, r->at, r->hash, &cp, err);
    }
    return st;
}

/* ---- sealing -------------------------------------------------------------- */

/* Record (seq, head) as the latest sealed head in the key store, unless it
 * is already there.  The head is written before the seq: a crash between the
 * two leaves (old seq, new head), which abis_audit_check accepts because the
 * new head is the hash of an entry at or after the old seq (see
 * sealed_head_check). */
static abis_status keymeta_mirror(abis_audit *a, int64_t seq,
                                  const unsigned char head[ABIS_HASH_BYTES], abis_error *err)
{
    abis_store *s = a->store;
    char seq_txt[24], head_hex[2 * ABIS_HASH_BYTES + 1];
    char have_seq[32], have_head[2 * ABIS_HASH_BYTES + 8];
    snprintf(seq_txt, sizeof seq_txt, "%" PRId64, seq);
    abis_to_hex(head, ABIS_HASH_BYTES, head_hex);

    if (s->ops->keymeta_get(s, KEYMETA_SEALED_SEQ, have_seq, sizeof have_seq, NULL) == ABIS_OK &&
        s->ops->keymeta_get(s, KEYMETA_SEALED_HEAD, have_head, sizeof have_head, NULL) == ABIS_OK &&
        strcmp(have_seq, seq_txt) == 0 && strcmp(have_head, head_hex) == 0)
        return ABIS_OK;

    abis_status st = s->ops->keymeta_set(s, KEYMETA_SEALED_HEAD, head_hex, err);
    if (st == ABIS_OK)
        st = s->ops->keymeta_set(s, KEYMETA_SEALED_SEQ, seq_txt, err);
    if (st != ABIS_OK)
        abis_error_prefix(err, "audit: recording the sealed head in the key store");
    return st;
}

abis_status abis_audit_seal(abis_audit *a, abis_error *err)
{
    assert(a && a->store);
    abis_store *s = a->store;
    abis_status st = s->ops->begin(s, err);
    if (st != ABIS_OK) {
        abis_error_prefix(err, "audit seal");
        return st;
    }

    abis_audit_rec last;
    st = s->ops->audit_last(s, &last, err);
    if (st == ABIS_E_NOT_FOUND) { /* nothing to seal */
        s->ops->rollback(s);
        abis_error_clear(err);
        return ABIS_OK;
    }
    if (st != ABIS_OK)
        goto fail;

    abis_checkpoint_rec cp;
    st = s->ops->checkpoint_last(s, &cp, err);
    if (st == ABIS_OK && cp.seq == last.seq) {
        /* Already sealed (a periodic checkpoint, or an earlier seal): write
         * nothing to the data store, but make sure the key store has it. */
        s->ops->rollback(s);
        if (memcmp(cp.head, last.hash, ABIS_HASH_BYTES) != 0 || !checkpoint_sig_ok(a->pk, &cp))
            return abis_error_set(err, ABIS_E_TAMPER,
                                  "audit seal: the checkpoint at entry %" PRId64
                                  " does not match that entry or its signature is invalid;"
                                  " run 'abis audit verify'",
                                  last.seq);
        return keymeta_mirror(a, cp.seq, cp.head, err);
    }
    if (st == ABIS_OK && cp.seq > last.seq) {
        s->ops->rollback(s);
        return abis_error_set(err, ABIS_E_TAMPER,
                              "audit seal: a checkpoint covers entry %" PRId64
                              " but the log ends at %" PRId64 "; run 'abis audit verify'",
                              cp.seq, last.seq);
    }
    if (st != ABIS_OK && st != ABIS_E_NOT_FOUND)
        goto fail;
    abis_error_clear(err);

    st = checkpoint_write(a, last.seq, now_ms(), last.hash, &cp, err);
    if (st != ABIS_OK)
        goto fail;
    st = s->ops->commit(s, err);
    if (st != ABIS_OK) {
        abis_error_prefix(err, "audit seal");
        return st;
    }
    return keymeta_mirror(a, cp.seq, cp.head, err);

fail:
    s->ops->rollback(s);
    abis_error_prefix(err, "audit seal");
    return st;
}

/* ---- verification --------------------------------------------------------- */

typedef struct check_ctx {
    const unsigned char *pk;
    abis_audit_report *report;

    abis_checkpoint_rec *cps; /* every checkpoint, sorted by seq */
    size_t ncps, cap_cps;
    size_t next_cp; /* the first checkpoint not yet checked */

    int have_sealed; /* the key store holds a sealed head */
    int64_t sealed_seq;
    unsigned char sealed_head[ABIS_HASH_BYTES];
    int sealed_head_seen;                    /* some entry at seq >= sealed_seq has that hash */
    char sealed_bad[ABIS_ERROR_MESSAGE_MAX]; /* why the key store's head is unusable, or "" */

    int64_t last_seq; /* the last entry checked (0: none) */
    unsigned char last_hash[ABIS_HASH_BYTES];
    int64_t last_good_cp; /* seq of the last checkpoint found valid (0: none) */

    int bad;         /* a problem was found: stop */
    abis_status oom; /* ABIS_E_NOMEM when collecting checkpoints failed */
} check_ctx;

/* Record the first problem found; always returns 1 (stop the scan). */
__attribute__((format(printf, 3, 4))) static int problem(check_ctx *c, int64_t seq, const char *fmt,
                                                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->report->problem, sizeof c->report->problem, fmt, ap);
    va_end(ap);
    c->report->ok = 0;
    c->report->first_bad_seq = seq;
    c->bad = 1;
    return 1;
}

static int collect_checkpoint(const abis_checkpoint_rec *r, void *ctx)
{
    check_ctx *c = ctx;
    if (c->ncps == c->cap_cps) {
        size_t cap = c->cap_cps ? 2 * c->cap_cps : 64;
        abis_checkpoint_rec *n = realloc(c->cps, cap * sizeof *n);
        if (!n) {
            c->oom = ABIS_E_NOMEM;
            return 1;
        }
        c->cps = n;
        c->cap_cps = cap;
    }
    c->cps[c->ncps++] = *r;
    return 0;
}

static int cmp_checkpoint_seq(const void *x, const void *y)
{
    const abis_checkpoint_rec *a = x, *b = y;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Check one checkpoint against the entry `r` at its seq. */
static int check_checkpoint(check_ctx *c, const abis_checkpoint_rec *cp, const abis_audit_rec *r)
{
    c->report->checkpoints++;
    if (!checkpoint_sig_ok(c->pk, cp))
        return problem(c, cp->seq, "checkpoint at %" PRId64 ": signature invalid", cp->seq);
    if (memcmp(cp->head, r->hash, ABIS_HASH_BYTES) != 0)
        return problem(c, cp->seq,
                       "checkpoint at %" PRId64 ": signed head does not match entry %" PRId64
                       " (log rewritten)",
                       cp->seq, cp->seq);
    c->last_good_cp = cp->seq;
    return 0;
}

/* One entry, in seq order: continuity, link, hash, then the checkpoints that
 * sign it. */
static int check_entry(const abis_audit_rec *r, void *ctx)
{
    check_ctx *c = ctx;
    int64_t want = c->last_seq + 1;
    if (r->seq != want) {
        if (r->seq > want)
            return problem(c, want,
                           "entry %" PRId64 ": missing (the log goes from %" PRId64 " to %" PRId64
                           ": entry removed)",
                           want, c->last_seq, r->seq);
        return problem(c, r->seq,
                       "entry %" PRId64 ": out of sequence after entry %" PRId64
                       " (entries duplicated or reordered)",
                       r->seq, c->last_seq);
    }
    const unsigned char *want_prev = c->last_seq ? c->last_hash : ZERO_HASH;
    if (memcmp(r->prev_hash, want_prev, ABIS_HASH_BYTES) != 0)
        return problem(c, r->seq,
                       "entry %" PRId64 ": previous-hash link broken (entry removed or reordered)",
                       r->seq);
    unsigned char h[ABIS_HASH_BYTES];
    abis_audit_entry_hash(r, h);
    if (memcmp(h, r->hash, ABIS_HASH_BYTES) != 0)
        return problem(c, r->seq, "entry %" PRId64 ": hash does not match its contents (edited)",
                       r->seq);

    c->report->entries++;
    c->last_seq = r->seq;
    memcpy(c->last_hash, r->hash, ABIS_HASH_BYTES);

    /* Checkpoints below this seq would have been matched by an earlier
     * entry; the walk has no gaps, so none are skipped. */
    while (c->next_cp < c->ncps && c->cps[c->next_cp].seq == r->seq) {
        if (check_checkpoint(c, &c->cps[c->next_cp], r))
            return 1;
        c->next_cp++;
    }
    if (c->have_sealed && r->seq >= c->sealed_seq &&
        memcmp(r->hash, c->sealed_head, ABIS_HASH_BYTES) == 0)
        c->sealed_head_seen = 1;
    return 0;
}

/* Read the key store's sealed (seq, head).  Absent: have_sealed = 0.
 * Malformed: a problem.  Returns a store error status, else ABIS_OK. */
static abis_status read_sealed(abis_store *s, check_ctx *c, abis_error *err)
{
    char seq_txt[32], head_hex[2 * ABIS_HASH_BYTES + 8];
    abis_status st = s->ops->keymeta_get(s, KEYMETA_SEALED_SEQ, seq_txt, sizeof seq_txt, err);
    if (st == ABIS_E_NOT_FOUND) {
        abis_error_clear(err);
        return ABIS_OK;
    }
    if (st != ABIS_OK)
        return st;
    st = s->ops->keymeta_get(s, KEYMETA_SEALED_HEAD, head_hex, sizeof head_hex, err);
    if (st == ABIS_E_NOT_FOUND) {
        abis_error_clear(err);
        snprintf(c->sealed_bad, sizeof c->sealed_bad,
                 "the key store records sealed entry %s but no sealed head", seq_txt);
        return ABIS_OK;
    }
    if (st != ABIS_OK)
        return st;

    char *end;
    errno = 0;
    long long v = strtoll(seq_txt, &end, 10);
    if (errno || end == seq_txt || *end || v < 1 ||
        abis_from_hex(head_hex, c->sealed_head, ABIS_HASH_BYTES) != 0) {
        snprintf(c->sealed_bad, sizeof c->sealed_bad,
                 "the key store's sealed head is malformed (seq '%s', head '%s')", seq_txt,
                 head_hex);
        return ABIS_OK;
    }
    c->have_sealed = 1;
    c->sealed_seq = (int64_t)v;
    return ABIS_OK;
}

/* After a clean walk: checkpoints beyond the end, and the key store's head. */
static void check_tail(check_ctx *c)
{
    if (c->next_cp < c->ncps) {
        const abis_checkpoint_rec *cp = &c->cps[c->next_cp];
        c->report->checkpoints++;
        if (!checkpoint_sig_ok(c->pk, cp))
            problem(c, cp->seq, "checkpoint at %" PRId64 ": signature invalid", cp->seq);
        else
            problem(c, c->last_seq + 1,
                    "entries end at %" PRId64 " but a signed checkpoint covers entry %" PRId64
                    " (log truncated)",
                    c->last_seq, cp->seq);
        return;
    }
    if (c->sealed_bad[0]) {
        problem(c, -1, "%s", c->sealed_bad);
        return;
    }
    if (!c->have_sealed || c->sealed_head_seen)
        return;
    if (c->last_seq < c->sealed_seq)
        problem(c, c->last_seq + 1,
                "entries end at %" PRId64 " but the key store sealed entry %" PRId64
                " (log truncated)",
                c->last_seq, c->sealed_seq);
    else
        problem(c, c->sealed_seq,
                "entry %" PRId64 ": hash differs from the head the key store sealed"
                " (log rewritten below a sealed point)",
                c->sealed_seq);
}

/* The reads go key store, checkpoints, entries: the log only grows, so each
 * later read sees at least what the earlier one referred to, even while
 * another process appends (a checkpoint or a sealed head read first is never
 * "ahead" of the entries read after it). */
abis_status abis_audit_check(abis_audit *a, const unsigned char pk[ABIS_SIGN_PK_BYTES],
                             abis_audit_report *report, abis_error *err)
{
    assert(a && a->store && pk && report);
    abis_store *s = a->store;
    memset(report, 0, sizeof *report);
    report->ok = 1;
    report->first_bad_seq = -1;

    check_ctx c;
    memset(&c, 0, sizeof c);
    c.pk = pk;
    c.report = report;

    abis_status st = read_sealed(s, &c, err);
    if (st != ABIS_OK) {
        abis_error_prefix(err, "audit check: reading the key store's sealed head");
        return st;
    }

    st = s->ops->checkpoint_scan(s, collect_checkpoint, &c, err);
    if (st == ABIS_OK && c.oom)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory collecting audit checkpoints");
    if (st != ABIS_OK) {
        free(c.cps);
        abis_error_prefix(err, "audit check: reading checkpoints");
        return st;
    }
    if (c.ncps > 1)
        qsort(c.cps, c.ncps, sizeof *c.cps, cmp_checkpoint_seq);
    /* A checkpoint at seq <= 0 can match no entry. */
    if (c.ncps && c.cps[0].seq < 1) {
        report->checkpoints = 1;
        problem(&c, c.cps[0].seq, "checkpoint at %" PRId64 ": no such entry can exist",
                c.cps[0].seq);
        free(c.cps);
        return ABIS_OK;
    }

    st = s->ops->audit_scan(s, 1, check_entry, &c, err);
    if (st != ABIS_OK) {
        free(c.cps);
        abis_error_prefix(err, "audit check: reading entries");
        return st;
    }
    if (!c.bad)
        check_tail(&c);
    free(c.cps);

    report->unsealed = (uint64_t)(c.last_seq - c.last_good_cp);
    if (report->ok)
        report->problem[0] = '\0';
    return ABIS_OK;
}

/* ---- export --------------------------------------------------------------- */

/* A JSON string for a text field.  jansson accepts only UTF-8; a field that is
 * not valid UTF-8 is exported with each byte >= 0x80 replaced by '?' (the
 * hash in the same line still covers the original bytes). */
static json_t *text_json(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    copy[n] = '\0';
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

/* "2024-05-01T12:34:56.789Z" for unix milliseconds. */
static void iso8601_utc(int64_t ms, char *out, size_t cap)
{
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, cap, "invalid");
        return;
    }
    char base[40];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", base, (int)frac);
}

typedef struct export_ctx {
    FILE *out;
    abis_status st;
    abis_error *err;
} export_ctx;

static int export_entry(const abis_audit_rec *r, void *ctx)
{
    export_ctx *x = ctx;
    char when[64], prev_hex[2 * ABIS_HASH_BYTES + 1], hash_hex[2 * ABIS_HASH_BYTES + 1];
    iso8601_utc(r->at, when, sizeof when);
    abis_to_hex(r->prev_hash, ABIS_HASH_BYTES, prev_hex);
    abis_to_hex(r->hash, ABIS_HASH_BYTES, hash_hex);

    json_t *o = json_object();
    int bad = !o;
    bad = bad || json_object_set_new(o, "seq", json_integer(r->seq));
    bad = bad || json_object_set_new(o, "at", json_integer(r->at));
    bad = bad || json_object_set_new(o, "time", json_string(when));
    bad = bad || json_object_set_new(o, "actor", text_json(r->actor, sizeof r->actor));
    bad = bad || json_object_set_new(o, "operation", text_json(r->operation, sizeof r->operation));
    bad = bad || json_object_set_new(o, "segment", text_json(r->segment, sizeof r->segment));
    bad = bad || json_object_set_new(o, "subject", text_json(r->subject, sizeof r->subject));
    bad = bad || json_object_set_new(o, "purpose", text_json(r->purpose, sizeof r->purpose));
    bad = bad || json_object_set_new(o, "outcome", text_json(r->outcome, sizeof r->outcome));
    bad = bad || json_object_set_new(o, "decision", text_json(r->decision, sizeof r->decision));
    bad = bad || json_object_set_new(o, "detail", text_json(r->detail, sizeof r->detail));
    bad = bad || json_object_set_new(o, "prev_hash", json_string(prev_hex));
    bad = bad || json_object_set_new(o, "hash", json_string(hash_hex));
    char *line = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line) {
        x->st = abis_error_set(x->err, ABIS_E_NOMEM, "out of memory exporting audit entry %" PRId64,
                               r->seq);
        return 1;
    }
    int w = fputs(line, x->out);
    free(line);
    if (w == EOF || fputc('\n', x->out) == EOF) {
        x->st = abis_error_set(x->err, ABIS_E_IO, "writing audit entry %" PRId64 ": %s", r->seq,
                               strerror(errno));
        return 1;
    }
    return 0;
}

abis_status abis_audit_write_jsonl(abis_audit *a, FILE *out, abis_error *err)
{
    assert(a && a->store && out);
    export_ctx x = {.out = out, .st = ABIS_OK, .err = err};
    abis_status st = a->store->ops->audit_scan(a->store, 1, export_entry, &x, err);
    if (st != ABIS_OK) {
        abis_error_prefix(err, "audit export");
        return st;
    }
    if (x.st != ABIS_OK)
        return x.st;
    if (fflush(out) != 0)
        return abis_error_set(err, ABIS_E_IO, "writing the audit export: %s", strerror(errno));
    return ABIS_OK;
}
