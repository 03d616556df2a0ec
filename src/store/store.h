/*
 * store.h: the system of record behind one interface (a table of functions).
 *
 * Everything durable goes through this interface; nothing above src/store/
 * contains SQL.  A backend keeps two files (or databases):
 *   - the data store: segments, purposes, modalities, subjects, sealed
 *     templates, consents, locks, audit entries and checkpoints, metadata;
 *   - the key store: one wrapped data key per subject, kept apart so that
 *     deleting a subject destroys its key even where a copy of the data store
 *     survives.
 *
 * Transactions: writes to the data store happen between begin() and commit();
 * commit() returns only once the transaction is durable on disk.  Key store
 * calls (key_put, key_delete) are each their own durable transaction.
 *
 * Records returned through callbacks (and the blobs they point to) are valid
 * only during the callback.  A callback returns non-zero to stop the scan.
 * Every function returns ABIS_OK or fills `err`; "not found" is
 * ABIS_E_NOT_FOUND, a unique name or reference already taken ABIS_E_EXISTS.
 */
#ifndef ABIS_STORE_H
#define ABIS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"

#define ABIS_HASH_BYTES 32
#define ABIS_SIG_BYTES 64
#define ABIS_STORE_SCHEMA_VERSION 2

typedef struct abis_store abis_store;

typedef struct abis_segment_rec {
    int64_t id;
    char name[ABIS_NAME_MAX + 1];
    int64_t created_at;
} abis_segment_rec;

typedef struct abis_purpose_rec {
    int64_t id;
    char name[ABIS_NAME_MAX + 1];
    int basis; /* abis_legal_basis */
    double target_fmr;
    char legal_ref[ABIS_TEXT_MAX + 1];
    char description[ABIS_TEXT_MAX + 1];
    int64_t created_at;
} abis_purpose_rec;

typedef struct abis_modality_rec {
    int64_t id;
    char name[ABIS_NAME_MAX + 1];
    char kind[16];
    int dim;
    int64_t created_at;
} abis_modality_rec;

typedef struct abis_subject_rec {
    abis_id id;
    int64_t segment_id;
    char external_ref[ABIS_REF_MAX + 1]; /* "" when none */
    int64_t created_at;
} abis_subject_rec;

typedef struct abis_template_rec {
    abis_id id;
    abis_id subject_id;
    int64_t modality_id;
    int position;
    char format[16];
    double quality;
    int64_t created_at;
    const unsigned char *sealed; /* nonce || ciphertext || tag (see crypto.h) */
    size_t sealed_len;
} abis_template_rec;

typedef struct abis_consent_rec {
    abis_id subject_id;
    int64_t purpose_id;
    int granted;
    int64_t at;
    char channel[ABIS_TEXT_MAX + 1];
} abis_consent_rec;

typedef struct abis_lock_rec {
    abis_id subject_id;
    int64_t modality_id; /* 0: all modalities */
    int64_t at;
} abis_lock_rec;

/* One audit entry.  Text fields hold names and ids only, never biometric data
 * or external references.  hash = BLAKE2b-256 over prev_hash and the entry's
 * canonical encoding (src/audit/audit.c; docs/FORMATS.md). */
typedef struct abis_audit_rec {
    int64_t seq; /* 1, 2, 3, ... */
    int64_t at;  /* unix ms */
    char actor[ABIS_TEXT_MAX + 1];
    char operation[32];
    char segment[ABIS_NAME_MAX + 1];
    char subject[ABIS_ID_HEX_LEN + 1]; /* hex id or "" */
    char purpose[ABIS_NAME_MAX + 1];
    char outcome[32];
    char decision[32];
    char detail[ABIS_TEXT_MAX + 1];
    unsigned char prev_hash[ABIS_HASH_BYTES];
    unsigned char hash[ABIS_HASH_BYTES];
} abis_audit_rec;

/* A signed checkpoint: Ed25519 signature over the chain head at `seq`. */
typedef struct abis_checkpoint_rec {
    int64_t seq;
    int64_t at;
    unsigned char head[ABIS_HASH_BYTES];
    unsigned char sig[ABIS_SIG_BYTES];
} abis_checkpoint_rec;

/* A relying party (schema 2).  Segments and purposes it may use are kept
 * apart (client_scope_*). */
#define ABIS_CLIENT_KEY_ID_LEN 16    /* hex digits of the public part of an API key */
#define ABIS_CLIENT_SECRET_SEALED 72 /* a sealed 32-byte pseudonym key */
typedef struct abis_client_rec {
    int64_t id;
    char name[ABIS_NAME_MAX + 1];
    char key_id[ABIS_CLIENT_KEY_ID_LEN + 1];
    unsigned char key_hash[ABIS_HASH_BYTES]; /* keyed BLAKE2b of the whole API key */
    uint32_t operations;                     /* ABIS_CLIENT_OP_* bits */
    uint32_t rights;                         /* ABIS_CLIENT_RIGHT_* bits */
    double rate_limit;                       /* requests per second; 0: the server's default */
    int has_cert;                            /* cert_sha256 holds a bound client certificate */
    unsigned char cert_sha256[32];
    unsigned char secret[ABIS_CLIENT_SECRET_SEALED];
    int revoked;
    int64_t created_at, rotated_at, revoked_at; /* revoked_at 0 while not revoked */
} abis_client_rec;

/* What a client may use: a segment or a purpose. */
typedef enum abis_scope_kind { ABIS_SCOPE_SEGMENT = 0, ABIS_SCOPE_PURPOSE = 1 } abis_scope_kind;

/* The remembered result of a write made with an Idempotency-Key. */
#define ABIS_IDEMPOTENCY_KEY_MAX 255
typedef struct abis_idem_rec {
    int64_t client_id;
    char key[ABIS_IDEMPOTENCY_KEY_MAX + 1];
    unsigned char request_hash[32];
    char operation[32];
    int has_subject, has_template;
    abis_id subject_id, template_id;
    int64_t created_at, expires_at;
} abis_idem_rec;

typedef int (*abis_segment_rec_cb)(const abis_segment_rec *r, void *ctx);
typedef int (*abis_purpose_rec_cb)(const abis_purpose_rec *r, void *ctx);
typedef int (*abis_modality_rec_cb)(const abis_modality_rec *r, void *ctx);
typedef int (*abis_subject_rec_cb)(const abis_subject_rec *r, void *ctx);
typedef int (*abis_template_rec_cb)(const abis_template_rec *r, void *ctx);
typedef int (*abis_consent_rec_cb)(const abis_consent_rec *r, void *ctx);
typedef int (*abis_lock_rec_cb)(const abis_lock_rec *r, void *ctx);
typedef int (*abis_audit_rec_cb)(const abis_audit_rec *r, void *ctx);
typedef int (*abis_checkpoint_rec_cb)(const abis_checkpoint_rec *r, void *ctx);
typedef int (*abis_key_cb)(const abis_id *subject, int64_t created_at, void *ctx);
typedef int (*abis_client_rec_cb)(const abis_client_rec *r, void *ctx);
typedef int (*abis_scope_cb)(abis_scope_kind kind, int64_t ref_id, void *ctx);

typedef struct abis_store_ops {
    void (*close)(abis_store *s);

    /* Transactions on the data store.  begin() takes the write lock (waiting a
     * bounded time for another process, then ABIS_E_BUSY); commit() is durable. */
    abis_status (*begin)(abis_store *s, abis_error *err);
    abis_status (*commit)(abis_store *s, abis_error *err);
    void (*rollback)(abis_store *s);

    /* Small named settings (key check value, dedup FMR, audit public key). */
    abis_status (*meta_get)(abis_store *s, const char *key, char *buf, size_t cap, abis_error *err);
    abis_status (*meta_set)(abis_store *s, const char *key, const char *value, abis_error *err);

    abis_status (*segment_add)(abis_store *s, abis_segment_rec *r, abis_error *err); /* fills id */
    abis_status (*segment_get)(abis_store *s, const char *name, abis_segment_rec *r,
                               abis_error *err);
    abis_status (*segment_get_by_id)(abis_store *s, int64_t id, abis_segment_rec *r,
                                     abis_error *err);
    abis_status (*segment_list)(abis_store *s, abis_segment_rec_cb cb, void *ctx, abis_error *err);

    abis_status (*purpose_add)(abis_store *s, abis_purpose_rec *r, abis_error *err);
    abis_status (*purpose_get)(abis_store *s, const char *name, abis_purpose_rec *r,
                               abis_error *err);
    abis_status (*purpose_get_by_id)(abis_store *s, int64_t id, abis_purpose_rec *r,
                                     abis_error *err);
    abis_status (*purpose_list)(abis_store *s, abis_purpose_rec_cb cb, void *ctx, abis_error *err);

    abis_status (*modality_add)(abis_store *s, abis_modality_rec *r, abis_error *err);
    abis_status (*modality_get)(abis_store *s, const char *name, abis_modality_rec *r,
                                abis_error *err);
    abis_status (*modality_get_by_id)(abis_store *s, int64_t id, abis_modality_rec *r,
                                      abis_error *err);
    abis_status (*modality_list)(abis_store *s, abis_modality_rec_cb cb, void *ctx,
                                 abis_error *err);
    /* The calibration JSON of a modality; *json is malloc'd, the caller frees it.
     * ABIS_E_NOT_FOUND when none was set. */
    abis_status (*calibration_get)(abis_store *s, int64_t modality_id, char **json,
                                   abis_error *err);
    abis_status (*calibration_set)(abis_store *s, int64_t modality_id, const char *json,
                                   abis_error *err);

    /* ABIS_E_EXISTS when the external reference is taken in the segment. */
    abis_status (*subject_insert)(abis_store *s, const abis_subject_rec *r, abis_error *err);
    abis_status (*subject_get)(abis_store *s, const abis_id *id, abis_subject_rec *r,
                               abis_error *err);
    abis_status (*subject_find_ref)(abis_store *s, int64_t segment_id, const char *ref,
                                    abis_subject_rec *r, abis_error *err);
    /* Removes the subject with its templates, consents and locks. */
    abis_status (*subject_delete)(abis_store *s, const abis_id *id, abis_error *err);
    /* segment_id 0: all segments. */
    abis_status (*subject_scan)(abis_store *s, int64_t segment_id, abis_subject_rec_cb cb,
                                void *ctx, abis_error *err);
    abis_status (*subject_count)(abis_store *s, int64_t segment_id, uint64_t *n, abis_error *err);

    abis_status (*template_insert)(abis_store *s, const abis_template_rec *r, abis_error *err);
    abis_status (*template_delete)(abis_store *s, const abis_id *id, abis_error *err);
    abis_status (*template_scan_subject)(abis_store *s, const abis_id *subject,
                                         abis_template_rec_cb cb, void *ctx, abis_error *err);
    /* Every template of one modality in one segment (for rebuilding a gallery). */
    abis_status (*template_scan)(abis_store *s, int64_t segment_id, int64_t modality_id,
                                 abis_template_rec_cb cb, void *ctx, abis_error *err);

    /* Insert or replace the (subject, purpose) consent. */
    abis_status (*consent_put)(abis_store *s, const abis_consent_rec *r, abis_error *err);
    abis_status (*consent_get)(abis_store *s, const abis_id *subject, int64_t purpose_id,
                               abis_consent_rec *r, abis_error *err);
    abis_status (*consent_scan_subject)(abis_store *s, const abis_id *subject,
                                        abis_consent_rec_cb cb, void *ctx, abis_error *err);
    /* Every granted consent of the subjects of one segment (0: all). */
    abis_status (*consent_scan_granted)(abis_store *s, int64_t segment_id, abis_consent_rec_cb cb,
                                        void *ctx, abis_error *err);

    abis_status (*lock_put)(abis_store *s, const abis_lock_rec *r, abis_error *err);
    /* ABIS_E_NOT_FOUND when there was no such lock. */
    abis_status (*lock_delete)(abis_store *s, const abis_id *subject, int64_t modality_id,
                               abis_error *err);
    abis_status (*lock_scan_subject)(abis_store *s, const abis_id *subject, abis_lock_rec_cb cb,
                                     void *ctx, abis_error *err);
    abis_status (*lock_scan)(abis_store *s, int64_t segment_id, abis_lock_rec_cb cb, void *ctx,
                             abis_error *err);

    /* Clients (relying parties).  client_add fills r->id; ABIS_E_EXISTS when
     * the name is taken.  client_update rewrites the key, revocation and
     * rotation fields of the client with r->id. */
    abis_status (*client_add)(abis_store *s, abis_client_rec *r, abis_error *err);
    abis_status (*client_update)(abis_store *s, const abis_client_rec *r, abis_error *err);
    abis_status (*client_get)(abis_store *s, const char *name, abis_client_rec *r, abis_error *err);
    abis_status (*client_scan)(abis_store *s, abis_client_rec_cb cb, void *ctx, abis_error *err);
    abis_status (*client_scope_add)(abis_store *s, int64_t client_id, abis_scope_kind kind,
                                    int64_t ref_id, abis_error *err);
    abis_status (*client_scope_scan)(abis_store *s, int64_t client_id, abis_scope_cb cb, void *ctx,
                                     abis_error *err);

    /* Idempotency records: ABIS_E_NOT_FOUND when (client, key) has none,
     * ABIS_E_EXISTS when idem_put finds one; idem_purge removes those that
     * expired before `now`. */
    abis_status (*idem_get)(abis_store *s, int64_t client_id, const char *key, abis_idem_rec *r,
                            abis_error *err);
    abis_status (*idem_put)(abis_store *s, const abis_idem_rec *r, abis_error *err);
    abis_status (*idem_purge)(abis_store *s, int64_t now, abis_error *err);

    /* The audit log: append-only. */
    abis_status (*audit_append)(abis_store *s, const abis_audit_rec *r, abis_error *err);
    /* ABIS_E_NOT_FOUND when the log is empty. */
    abis_status (*audit_last)(abis_store *s, abis_audit_rec *r, abis_error *err);
    /* Entries with seq >= from_seq in seq order. */
    abis_status (*audit_scan)(abis_store *s, int64_t from_seq, abis_audit_rec_cb cb, void *ctx,
                              abis_error *err);
    abis_status (*audit_scan_subject)(abis_store *s, const char *subject_hex, abis_audit_rec_cb cb,
                                      void *ctx, abis_error *err);
    abis_status (*checkpoint_add)(abis_store *s, const abis_checkpoint_rec *r, abis_error *err);
    abis_status (*checkpoint_scan)(abis_store *s, abis_checkpoint_rec_cb cb, void *ctx,
                                   abis_error *err);
    abis_status (*checkpoint_last)(abis_store *s, abis_checkpoint_rec *r, abis_error *err);

    /* The key store (a separate file).  Each call is its own durable transaction. */
    abis_status (*key_put)(abis_store *s, const abis_id *subject, const unsigned char *wrapped,
                           size_t len, abis_error *err);
    /* *len receives the stored length; ABIS_E_NOT_FOUND when absent. */
    abis_status (*key_get)(abis_store *s, const abis_id *subject, unsigned char *buf, size_t cap,
                           size_t *len, abis_error *err);
    /* Deletes the key and checkpoints the key store so the freed page is overwritten. */
    abis_status (*key_delete)(abis_store *s, const abis_id *subject, abis_error *err);
    abis_status (*key_scan)(abis_store *s, abis_key_cb cb, void *ctx, abis_error *err);
    /* Key-store metadata: the latest sealed audit head, kept apart from the data store. */
    abis_status (*keymeta_get)(abis_store *s, const char *key, char *buf, size_t cap,
                               abis_error *err);
    abis_status (*keymeta_set)(abis_store *s, const char *key, const char *value, abis_error *err);

    /* Checkpoint and truncate the data store's WAL so that pages freed by a
     * deletion are overwritten in the main file (secure_delete is on). */
    abis_status (*compact)(abis_store *s, abis_error *err);
    /* Bring an older schema up to ABIS_STORE_SCHEMA_VERSION (forward
     * migrations, each in its own transaction).  open() never migrates, so that
     * the engine can check the master key first and change nothing on a wrong key. */
    abis_status (*migrate)(abis_store *s, abis_error *err);
    /* PRAGMA integrity_check on both files; ABIS_E_STORE with the first problem. */
    abis_status (*integrity_check)(abis_store *s, abis_error *err);
} abis_store_ops;

struct abis_store {
    const abis_store_ops *ops;
};

/* Open (create = 1: create) the SQLite backend in `data_dir`: DIR/abis.db
 * (data) and DIR/keys.db (keys).  WAL, synchronous=FULL, secure_delete=ON,
 * foreign keys on.  Refuses a schema newer than ABIS_STORE_SCHEMA_VERSION with
 * ABIS_E_SCHEMA ("written by a newer OpenABIS: schema 3, this binary knows 1");
 * an older one opens and must be migrate()d before use.  create = 1 on a directory
 * that already holds abis.db fails with ABIS_E_EXISTS; create = 0 on one
 * without it fails with ABIS_E_NOT_FOUND ("no store in DIR: run abis init").
 * read_only = 1 opens without migrating or writing. */
abis_status abis_store_sqlite_open(const char *data_dir, int create, int read_only,
                                   abis_store **out, abis_error *err);

/* Convenience: s->ops->close(s) when s is not NULL. */
void abis_store_close(abis_store *s);

#endif
