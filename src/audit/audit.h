/*
 * audit.h: the append-only, hash-chained, checkpoint-signed audit log.
 *
 * Each entry's hash is BLAKE2b-256(prev_hash || canonical encoding of the
 * entry) (docs/FORMATS.md, "Audit log"); the first entry's prev_hash is 32
 * zero bytes.  Every ABIS_AUDIT_CHECKPOINT_EVERY entries, and when the engine
 * closes, the chain head is sealed by an Ed25519 signature over
 * "abis-audit-checkpoint-v1" || seq || at (8 bytes big-endian each) || head, stored as a
 * checkpoint in the data store, and the latest sealed (seq, head) is also
 * written to the key store file, so that truncating the data store's log
 * below it is detected even though the data store alone was edited.
 *
 * Appends happen inside the caller's store transaction, so an operation and
 * its audit entry commit together.
 */
#ifndef ABIS_AUDIT_H
#define ABIS_AUDIT_H

#include "abis/abis.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define ABIS_AUDIT_CHECKPOINT_EVERY 256

typedef struct abis_audit {
    abis_store *store;
    unsigned char pk[ABIS_SIGN_PK_BYTES];
    unsigned char sk[ABIS_SIGN_SK_BYTES];
} abis_audit;

/* Set up the signer from the master key (pk/sk derived, store borrowed). */
void abis_audit_init(abis_audit *a, abis_store *store, const abis_key *master);
/* Wipe the signing key. */
void abis_audit_wipe(abis_audit *a);

/* Append one entry inside the caller's open transaction: fills r->seq,
 * r->prev_hash and r->hash from the current chain head (r->at is set to now
 * when 0).  Writes a checkpoint too when seq is a multiple of
 * ABIS_AUDIT_CHECKPOINT_EVERY. */
abis_status abis_audit_append(abis_audit *a, abis_audit_rec *r, abis_error *err);

/* Sign the current head as a checkpoint (in its own transaction; nothing is
 * written when the head is already sealed) and record it in the key store. */
abis_status abis_audit_seal(abis_audit *a, abis_error *err);

/* The hash of one entry given its prev_hash (exposed for tests and tools). */
void abis_audit_entry_hash(const abis_audit_rec *r, unsigned char out[ABIS_HASH_BYTES]);

/* Walk the chain: recompute every hash, check seq continuity, each
 * checkpoint's signature and head, and the key store's sealed head.  Fills
 * `report` (see abis.h); returns ABIS_OK when the walk itself could be done. */
abis_status abis_audit_check(abis_audit *a, const unsigned char pk[ABIS_SIGN_PK_BYTES],
                             abis_audit_report *report, abis_error *err);

/* Write every entry as one JSON object a line (seq, at, time, actor, operation,
 * segment, subject, purpose, outcome, decision, detail, prev_hash, hash). */
abis_status abis_audit_write_jsonl(abis_audit *a, FILE *out, abis_error *err);

#endif
