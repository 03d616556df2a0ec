/*
 * snapshot.h: the encrypted file a gallery is saved to, so that reopening a
 * store does not rebuild every gallery from the store (docs/FORMATS.md,
 * "Gallery snapshots").
 *
 * A snapshot is a plain header followed by a libsodium secretstream
 * (XChaCha20-Poly1305) of messages of at most 1 MiB, the last one tagged
 * final.  The header is the first message's associated data, so a changed
 * header, a changed, reordered or missing message, a truncated file or a
 * wrong key all fail authentication.  The header names what the snapshot is
 * of (segment, modality, gallery kind) and the point of the store's history
 * it reflects (the last audit entry when it was written), which the engine
 * checks before loading (segstate.c).
 *
 * The body is a byte stream the gallery defines (gallery_vector.c), written
 * and read through these functions in any pieces.  Files are written to
 * PATH.tmp, synced, and renamed over PATH.
 */
#ifndef ABIS_GALLERY_SNAPSHOT_H
#define ABIS_GALLERY_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"
#include "crypto/crypto.h"

#define ABIS_SNAPSHOT_VERSION 1
#define ABIS_SNAPSHOT_KIND_VECTOR 1

typedef struct abis_snapshot_head {
    uint32_t version;
    uint32_t kind; /* ABIS_SNAPSHOT_KIND_* */
    int64_t segment_id, modality_id;
    int64_t audit_seq;              /* the store's last audit entry when written (0: none) */
    unsigned char audit_hash[32];   /* its hash (zeros when none) */
} abis_snapshot_head;

typedef struct abis_snapshot_writer abis_snapshot_writer;
typedef struct abis_snapshot_reader abis_snapshot_reader;

/* Start writing `path` (PATH.tmp until committed). */
abis_status abis_snapshot_create(const char *path, const abis_key *key,
                                 const abis_snapshot_head *head, abis_snapshot_writer **out,
                                 abis_error *err);
abis_status abis_snapshot_write(abis_snapshot_writer *w, const void *data, size_t len,
                                abis_error *err);
/* Finish, sync and rename into place; frees w either way. */
abis_status abis_snapshot_commit(abis_snapshot_writer *w, abis_error *err);
/* Give up: remove PATH.tmp and free w (NULL allowed). */
void abis_snapshot_abort(abis_snapshot_writer *w);

/* The header of the snapshot at `path`, not yet authenticated (it is when
 * the snapshot is opened).  ABIS_E_NOT_FOUND when there is no file,
 * ABIS_E_CRYPTO when it is not a snapshot of this version. */
abis_status abis_snapshot_peek(const char *path, abis_snapshot_head *out, abis_error *err);
/* Open for reading and authenticate the header, which must equal `expect`.
 * ABIS_E_NOT_FOUND: no file; ABIS_E_CRYPTO: wrong key, damaged, or a
 * different header. */
abis_status abis_snapshot_open(const char *path, const abis_key *key,
                               const abis_snapshot_head *expect, abis_snapshot_reader **out,
                               abis_error *err);
/* Read exactly len bytes; ABIS_E_CRYPTO when the stream is damaged or ends. */
abis_status abis_snapshot_read(abis_snapshot_reader *r, void *data, size_t len, abis_error *err);
/* Check that the stream ends here (final message, end of file), then close.
 * Frees r either way. */
abis_status abis_snapshot_finish(abis_snapshot_reader *r, abis_error *err);
/* Close without checking (NULL allowed). */
void abis_snapshot_close(abis_snapshot_reader *r);

#endif
