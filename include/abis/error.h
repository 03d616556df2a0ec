/*
 * abis/error.h: status codes and the error record every fallible libabis call fills.
 *
 * A function that can fail returns an abis_status and, when it fails, writes a
 * message a person can act on into the abis_error the caller passed (which may be
 * NULL when the caller does not want the message).
 */
#ifndef ABIS_ERROR_H
#define ABIS_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum abis_status {
    ABIS_OK = 0,
    ABIS_E_INVALID,         /* bad input: malformed, wrong size, NaN, unknown name */
    ABIS_E_NOT_FOUND,       /* no such subject, segment, purpose, modality, template */
    ABIS_E_EXISTS,          /* a name or external reference already taken */
    ABIS_E_DUPLICATE,       /* enrolment refused: the person is already enrolled */
    ABIS_E_NO_CONSENT,      /* refused: no consent for a consent-based purpose */
    ABIS_E_LOCKED,          /* refused: the subject has locked this modality */
    ABIS_E_CRYPTO,          /* wrong master key, authentication failure, corrupt ciphertext */
    ABIS_E_IO,              /* file system: open, read, write, fsync, full disk */
    ABIS_E_STORE,           /* the store failed (SQLite error, corrupt database) */
    ABIS_E_SCHEMA,          /* store schema newer than this binary knows */
    ABIS_E_NOMEM,           /* out of memory */
    ABIS_E_TAMPER,          /* audit chain broken or checkpoint signature invalid */
    ABIS_E_BUSY,            /* the store is locked by another writer for too long */
    ABIS_E_INTERNAL,        /* a bug: an invariant did not hold */
    ABIS_E_UNAUTHENTICATED, /* a client's API key is unknown, revoked or malformed */
    ABIS_E_FORBIDDEN,       /* a client asked for a segment, purpose, operation or right
                             * it was not granted */
    ABIS_E_CONFLICT         /* an Idempotency-Key reused for a different request */
} abis_status;

#define ABIS_ERROR_MESSAGE_MAX 512

typedef struct abis_error {
    abis_status status;
    char message[ABIS_ERROR_MESSAGE_MAX];
} abis_error;

/* Record `status` and a printf-style message in `err` (if not NULL); returns `status`. */
abis_status abis_error_set(abis_error *err, abis_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in `err` with more context ("enrol line 12: ..."). */
abis_status abis_error_prefix(abis_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reset `err` to ABIS_OK with an empty message. */
void abis_error_clear(abis_error *err);

/* A stable machine-readable name for a status ("invalid", "not_found", ...). */
const char *abis_status_name(abis_status status);

#ifdef __cplusplus
}
#endif
#endif
