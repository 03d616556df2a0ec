/*
 * abis/client.h: relying parties ("clients") of libabis -- registering them,
 * authenticating their API keys, and every operation a client makes, with
 * the engine deciding what each one may do.
 *
 * A client is a relying party: a bank's back end, a fare-gate controller, a
 * border post, a city portal.  The operator registers it (abis_client_add)
 * with the segments it may use, the purposes it may act for, the operations
 * it may call and its rights; the engine returns an API key once and keeps
 * only a keyed hash of it.  Each request authenticates with
 * abis_client_authenticate, which gives an abis_client context; the
 * abis_client_* operations then enforce, in this order:
 *
 *   - operations (ABIS_CLIENT_OP_*) and the subject-management right:
 *     ABIS_E_FORBIDDEN naming what is missing;
 *   - names: an unknown segment, purpose or modality is bad input
 *     (ABIS_E_INVALID); a known one the client was not granted is
 *     ABIS_E_FORBIDDEN;
 *   - subjects: a client names a subject only by its own pseudonym, a
 *     16-byte "token" (32 hex digits with abis_id_to_hex) that no other
 *     client shares, so two relying parties cannot join their records by
 *     id.  A subject outside the client's segments answers ABIS_E_NOT_FOUND
 *     "no such subject", word for word what an absent one answers;
 *   - scores: a decision and a confidence band only; the score, its FMR and
 *     the threshold only for clients with ABIS_CLIENT_RIGHT_RAW_SCORES
 *     (hill-climbing attacks that rebuild a face from scores need them);
 *   - safe retries: a write given an abis_idempotency commits a record of
 *     its result in the same transaction; a later call with the same key
 *     and request hash gets that result back (result->replayed = 1) instead
 *     of writing twice; the same key with another hash is ABIS_E_CONFLICT.
 *
 * Every refusal, ABIS_E_UNAUTHENTICATED included, is written to the audit
 * log with the client (or "unauthenticated") as actor.  The API key itself
 * is never stored, logged or audited; its public key id may be.
 */
#ifndef ABIS_CLIENT_H
#define ABIS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Operations a client may be granted (bits of abis_client_def.operations). */
#define ABIS_CLIENT_OP_ENROLL (1u << 0)    /* "enroll": POST /v1/subjects */
#define ABIS_CLIENT_OP_TEMPLATES (1u << 1) /* "templates": add a template to a subject */
#define ABIS_CLIENT_OP_VERIFY (1u << 2)    /* "verify": 1:1 */
#define ABIS_CLIENT_OP_IDENTIFY (1u << 3)  /* "identify": 1:N */
#define ABIS_CLIENT_OPS_ALL 0xfu

/* Rights (bits of abis_client_def.rights). */
#define ABIS_CLIENT_RIGHT_RAW_SCORES (1u << 0) /* "raw_scores": scores, FMRs, thresholds */
/* "subject_management": act for the person -- view, history, consent, lock,
 * delete -- for the subjects of the client's segments (a citizen portal). */
#define ABIS_CLIENT_RIGHT_SUBJECT_MANAGEMENT (1u << 1)
#define ABIS_CLIENT_RIGHTS_ALL 0x3u

/* An API key: "abis_" + 16 hex digits (the public key id) + "_" + 64 hex
 * digits (256 secret bits). */
#define ABIS_API_KEY_LEN 86
#define ABIS_CLIENT_KEY_ID_HEX 16

/* Parse a comma-separated list of operation names ("verify,identify", or
 * "all") into bits (rights = 0), or of right names ("raw_scores,
 * subject_management", "all", "none") (rights = 1).  ABIS_E_INVALID naming
 * an unknown name. */
abis_status abis_client_flags_parse(const char *csv, int rights, uint32_t *out, abis_error *err);
/* The names of the set bits, comma-separated ("" when none), into buf. */
void abis_client_flags_format(uint32_t bits, int rights, char *buf, size_t cap);

/* ---- registering clients (the operator) ------------------------------------ */

typedef struct abis_client_def {
    const char *name; /* [a-z0-9._-], 1..63 */
    const char *const *segments;
    size_t n_segments; /* at least one */
    const char *const *purposes;
    size_t n_purposes;
    uint32_t operations;              /* ABIS_CLIENT_OP_* */
    uint32_t rights;                  /* ABIS_CLIENT_RIGHT_* */
    double rate_limit;                /* requests per second; 0: the server's default */
    const unsigned char *cert_sha256; /* 32 bytes: the SHA-256 of the DER of the TLS client
                                       * certificate the client must present; NULL: none */
} abis_client_def;

/* Register a client and write its API key (ABIS_API_KEY_LEN characters and
 * a NUL) into `api_key`: the only time it exists outside the caller.
 * ABIS_E_EXISTS when the name is taken; ABIS_E_INVALID for an unknown
 * segment or purpose or a client that could do nothing. */
abis_status abis_client_add(abis_engine *e, const abis_caller *c, const abis_client_def *def,
                            char api_key[ABIS_API_KEY_LEN + 1], abis_error *err);

/* Give a client a new API key (the old one stops working at once); its
 * pseudonyms stay the same. */
abis_status abis_client_rotate(abis_engine *e, const abis_caller *c, const char *name,
                               char api_key[ABIS_API_KEY_LEN + 1], abis_error *err);

/* Revoke a client: its key is refused from now on (ABIS_E_UNAUTHENTICATED). */
abis_status abis_client_revoke(abis_engine *e, const abis_caller *c, const char *name,
                               abis_error *err);

typedef struct abis_client_info {
    char name[ABIS_NAME_MAX + 1];
    char key_id[ABIS_CLIENT_KEY_ID_HEX + 1];
    const char *const *segments; /* valid during the callback */
    size_t n_segments;
    const char *const *purposes;
    size_t n_purposes;
    uint32_t operations, rights;
    double rate_limit;
    int has_cert;
    char cert_sha256[65]; /* hex, "" without a certificate */
    int revoked;
    int64_t created_at, rotated_at, revoked_at; /* unix ms; revoked_at 0 when not revoked */
} abis_client_info;

typedef int (*abis_client_cb)(const abis_client_info *info, void *ctx); /* non-zero stops */
abis_status abis_client_list(abis_engine *e, abis_client_cb cb, void *ctx, abis_error *err);

/* ---- authenticating a request ------------------------------------------------ */

typedef struct abis_client abis_client;

/* Check an API key (and, when the client is bound to a certificate, the
 * SHA-256 of the DER certificate the TLS peer presented; NULL when none).
 * ABIS_E_UNAUTHENTICATED for a malformed, unknown or revoked key or a
 * missing or wrong certificate; audited.  On success *out is a context the
 * caller releases with abis_client_free. */
abis_status abis_client_authenticate(abis_engine *e, const char *api_key,
                                     const unsigned char *cert_sha256, abis_client **out,
                                     abis_error *err);
void abis_client_free(abis_client *client);

const char *abis_client_name(const abis_client *client);
double abis_client_rate_limit(const abis_client *client); /* 0: the server's default */
/* 1 when the client may see scores (ABIS_CLIENT_RIGHT_RAW_SCORES). */
int abis_client_sees_scores(const abis_client *client);

/* ---- operations as a client ---------------------------------------------------- */

/* Binds a write to a caller-chosen key (an HTTP Idempotency-Key, 1..255
 * bytes) and a hash of the request it came with; remembered for
 * `ttl_seconds` (0: one day). */
typedef struct abis_idempotency {
    const char *key;
    unsigned char request_hash[32];
    int64_t ttl_seconds;
} abis_idempotency;

typedef struct abis_client_result {
    abis_id subject;      /* the subject's pseudonym for this client */
    abis_id template_id;  /* abis_client_template_add */
    abis_id duplicate_of; /* ABIS_E_DUPLICATE: the pseudonym of the subject found */
    int replayed;         /* 1: the remembered result of an earlier call with the same key */
} abis_client_result;

/* Enrol into one of the client's segments, with consents to the client's
 * purposes.  req->external_ref must be NULL and req->force 0 (operator
 * only).  A duplicate is refused with ABIS_E_DUPLICATE and
 * result->duplicate_of. */
abis_status abis_client_enroll(abis_engine *e, const abis_client *client,
                               const abis_idempotency *idem, const abis_enroll_request *req,
                               abis_client_result *result, abis_error *err);

abis_status abis_client_template_add(abis_engine *e, const abis_client *client,
                                     const abis_idempotency *idem, const abis_id *subject,
                                     const abis_template_input *tmpl, int replace,
                                     abis_client_result *result, abis_error *err);

/* As abis_subject_verify; without the raw-scores right, result's score, fmr
 * and threshold are 0. */
abis_status abis_client_verify(abis_engine *e, const abis_client *client, const abis_id *subject,
                               const char *purpose, const abis_template_input *probes,
                               size_t n_probes, abis_verify_result *result, abis_error *err);

/* As abis_subject_identify; candidates carry the client's pseudonyms, no
 * external references, and scores only with the raw-scores right. */
abis_status abis_client_identify(abis_engine *e, const abis_client *client, const char *segment,
                                 const char *purpose, const abis_template_input *probes,
                                 size_t n_probes, size_t k, abis_candidate *out, size_t *n_out,
                                 abis_error *err);

/* The subject-management operations (ABIS_CLIENT_RIGHT_SUBJECT_MANAGEMENT). */
abis_status abis_client_consent_set(abis_engine *e, const abis_client *client,
                                    const abis_idempotency *idem, const abis_id *subject,
                                    const char *purpose, int granted, abis_client_result *result,
                                    abis_error *err);
/* modality NULL or "*": every modality. */
abis_status abis_client_lock_set(abis_engine *e, const abis_client *client,
                                 const abis_idempotency *idem, const abis_id *subject,
                                 const char *modality, int locked, abis_client_result *result,
                                 abis_error *err);
abis_status abis_client_delete(abis_engine *e, const abis_client *client,
                               const abis_idempotency *idem, const abis_id *subject,
                               abis_client_result *result, abis_error *err);
/* The person's view (abis_subject_show) with the client's pseudonym as
 * subject_id and no external reference. */
abis_status abis_client_subject_show(abis_engine *e, const abis_client *client,
                                     const abis_id *subject, abis_subject_view **view,
                                     abis_error *err);

#ifdef __cplusplus
}
#endif
#endif
