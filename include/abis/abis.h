/*
 * abis/abis.h: the public C API of libabis, the OpenABIS engine.
 *
 * One engine handle opens one data directory (an encrypted SQLite store, a
 * separate key store and the master key) and offers every operation as one
 * call that either commits fully or changes nothing.  Every call, refused
 * ones included, is written to the hash-chained audit log.
 *
 * Typical use:
 *
 *     abis_error err;
 *     abis_store_init("./var", &err);                 // once: creates the store and key file
 *     abis_engine *e;
 *     abis_open_options o = { .data_dir = "./var" };
 *     if (abis_engine_open(&o, &e, &err) != ABIS_OK) { puts(err.message); ... }
 *     abis_segment_add(e, NULL, "federal", &err);
 *     abis_purpose_add(e, NULL, &(abis_purpose_def){ .name = "bank.remote-id",
 *                      .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4 }, &err);
 *     abis_modality_add(e, NULL, "face", "vector", 512, &err);
 *     ... abis_subject_enroll, abis_subject_verify, abis_subject_identify ...
 *     abis_engine_close(e);
 *
 * Ownership: strings and arrays passed in are borrowed for the duration of the
 * call.  Results are written into caller-owned structs, except abis_subject_view,
 * which the engine allocates and abis_subject_view_free releases.
 *
 * Threads: an engine handle may be shared between threads.  Reads (verify,
 * identify, the subject view, lists) run concurrently with each other and
 * with writes; calls that write are serialised.  The audit entries of reads
 * and refusals are made durable by group commit: many calls share one
 * fsync, and none returns before its entry is on disk.
 */
#ifndef ABIS_ABIS_H
#define ABIS_ABIS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abis/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- identifiers --------------------------------------------------------- */

#define ABIS_ID_BYTES 16
#define ABIS_ID_HEX_LEN 32
#define ABIS_NAME_MAX 63  /* segment, purpose, modality names: [a-z0-9._-], 1..63 */
#define ABIS_REF_MAX 128  /* external references (a bank's client number) */
#define ABIS_TEXT_MAX 255 /* free text: legal reference, channel, actor */

/* A subject or template id: 128 random bits, never derived from personal data. */
typedef struct abis_id {
    unsigned char bytes[ABIS_ID_BYTES];
} abis_id;

/* Write `id` as 32 lower-case hex digits and a NUL into `out`. */
void abis_id_to_hex(const abis_id *id, char out[ABIS_ID_HEX_LEN + 1]);
/* Parse 32 hex digits; ABIS_E_INVALID with a message otherwise. */
abis_status abis_id_from_hex(const char *hex, abis_id *id, abis_error *err);

/* ---- opening a data directory ------------------------------------------- */

typedef struct abis_engine abis_engine;

/* Create a new data directory: the directory (mode 0700), a random master key
 * in DIR/master.key (mode 0600) unless ABIS_MASTER_KEY is set, the data store
 * DIR/abis.db and the key store DIR/keys.db.  Refuses a directory that already
 * holds a store. */
abis_status abis_store_init(const char *data_dir, abis_error *err);

typedef struct abis_open_options {
    const char *data_dir;       /* required */
    const char *master_key_hex; /* 64 hex digits; NULL: $ABIS_MASTER_KEY, else DIR/master.key */
    const char *actor;          /* default actor written to the audit log; NULL: "operator" */
    int read_only;              /* 1: audit verify/export only; no writes, no migration */
} abis_open_options;

/* Open a data directory.  Fails with ABIS_E_CRYPTO and changes nothing when the
 * master key is not the one the store was created with, and with ABIS_E_SCHEMA
 * when the store was written by a newer OpenABIS. */
abis_status abis_engine_open(const abis_open_options *opts, abis_engine **out, abis_error *err);
/* Seal the audit chain with a signed checkpoint, wipe keys, close. NULL is allowed. */
void abis_engine_close(abis_engine *engine);

/* Who is acting in one call: written to the audit log.  NULL: the engine's default actor. */
typedef struct abis_caller {
    const char *actor;   /* "operator:alice", "client:bank-a" */
    const char *channel; /* where a consent was given: "branch", "app", "web" */
} abis_caller;

/* ---- registry: segments, purposes, modalities ---------------------------- */

abis_status abis_segment_add(abis_engine *e, const abis_caller *c, const char *name,
                             abis_error *err);

typedef struct abis_segment_info {
    char name[ABIS_NAME_MAX + 1];
    int64_t created_at; /* unix milliseconds */
    uint64_t subjects;  /* number of enrolled subjects */
} abis_segment_info;

typedef int (*abis_segment_cb)(const abis_segment_info *info, void *ctx); /* non-zero stops */
abis_status abis_segment_list(abis_engine *e, abis_segment_cb cb, void *ctx, abis_error *err);

typedef enum abis_legal_basis {
    ABIS_BASIS_CONSENT = 0,  /* used only for subjects who consented */
    ABIS_BASIS_STATUTORY = 1 /* a law allows it without consent; audited and shown */
} abis_legal_basis;

typedef struct abis_purpose_def {
    const char *name;        /* "bank.remote-id" */
    abis_legal_basis basis;  /* consent or statutory */
    double target_fmr;       /* target false match rate per comparison, 0 < fmr < 1 */
    const char *legal_ref;   /* the law for a statutory purpose (required then), or NULL */
    const char *description; /* NULL allowed */
} abis_purpose_def;

abis_status abis_purpose_add(abis_engine *e, const abis_caller *c, const abis_purpose_def *def,
                             abis_error *err);

typedef struct abis_purpose_info {
    char name[ABIS_NAME_MAX + 1];
    abis_legal_basis basis;
    double target_fmr;
    char legal_ref[ABIS_TEXT_MAX + 1];
    char description[ABIS_TEXT_MAX + 1];
    int64_t created_at;
} abis_purpose_info;

typedef int (*abis_purpose_cb)(const abis_purpose_info *info, void *ctx);
abis_status abis_purpose_list(abis_engine *e, abis_purpose_cb cb, void *ctx, abis_error *err);

/* Declare a modality.  kind "vector": templates are `dim` float32 values
 * (embeddings), compared by cosine similarity. */
abis_status abis_modality_add(abis_engine *e, const abis_caller *c, const char *name,
                              const char *kind, int dim, abis_error *err);

typedef struct abis_modality_info {
    char name[ABIS_NAME_MAX + 1];
    char kind[16];
    int dim;
    char calibration[64]; /* the calibration model's name */
    int64_t created_at;
} abis_modality_info;

typedef int (*abis_modality_cb)(const abis_modality_info *info, void *ctx);
abis_status abis_modality_list(abis_engine *e, abis_modality_cb cb, void *ctx, abis_error *err);

/* Replace a modality's score -> false-match-rate calibration (JSON, see
 * docs/FORMATS.md, "Calibration").  Validated before it is stored. */
abis_status abis_modality_set_calibration(abis_engine *e, const abis_caller *c, const char *name,
                                          const char *calibration_json, abis_error *err);

/* The calibration a modality uses now, as JSON: the one set with
 * abis_modality_set_calibration, or its kind's default.  *json is malloc'd;
 * the caller frees it. */
abis_status abis_modality_get_calibration(abis_engine *e, const char *name, char **json,
                                          abis_error *err);

/* The purpose-independent deduplication threshold, as the rate of false
 * duplicate findings per enrolment search over the whole segment (default
 * 1e-6; stored in the data directory).  The per-comparison threshold is the
 * calibration's score for fmr / gallery size, so it tightens as the segment grows. */
abis_status abis_dedup_set_fmr(abis_engine *e, const abis_caller *c, double fmr, abis_error *err);

/* ---- templates ----------------------------------------------------------- */

/* One template or probe as it enters libabis.  For a vector modality set
 * `vector` and `dim`; it is validated (size, finite values, non-zero norm) and
 * L2-normalised where it enters.  For an image modality (iris, finger) set
 * `capture`: the image file's bytes (BMP, PNG, TIFF, JPEG, PGM, or a standard
 * record: ISO/IEC 19794-6 for iris, ISO/IEC 19794-2 or ANSI INCITS 378
 * minutiae for fingers), which is turned into a template there and then
 * discarded. */
typedef struct abis_template_input {
    const char *modality; /* a declared modality name */
    int position;         /* finger 1-10, eye 1 right / 2 left; 0: not applicable */
    const float *vector;  /* vector modalities */
    size_t dim;
    const void *capture; /* image modalities: the capture's bytes */
    size_t capture_size;
    double quality; /* 0..100, or negative when unknown (captures: computed) */
    double ppi;     /* captures: the image's resolution in pixels per inch; 0: the
                     * file's, else 500 (fingerprints are rescaled to 500 ppi) */
} abis_template_input;

/* ---- operations ---------------------------------------------------------- */

typedef struct abis_enroll_request {
    const char *segment;
    const char *external_ref; /* optional, unique per segment */
    const abis_template_input *templates;
    size_t n_templates;          /* at least one */
    const char *const *consents; /* purpose names the person consents to */
    size_t n_consents;
    int force; /* 1: enrol even when deduplication finds the person (audited) */
} abis_enroll_request;

typedef struct abis_enroll_result {
    abis_id subject_id;   /* the new subject (on ABIS_OK) */
    int duplicate;        /* 1: a match above the dedup threshold was found */
    abis_id duplicate_of; /* the existing subject (refused with ABIS_E_DUPLICATE, or forced) */
    double duplicate_score;
} abis_enroll_result;

/* Enrol one person.  Before committing, the templates are searched 1:N against
 * the segment; a match above the dedup threshold refuses the enrolment with
 * ABIS_E_DUPLICATE and result->duplicate_of, unless req->force. */
abis_status abis_subject_enroll(abis_engine *e, const abis_caller *c,
                                const abis_enroll_request *req, abis_enroll_result *result,
                                abis_error *err);

/* Add a template to a subject; with `replace`, first remove the subject's
 * templates of the same modality and position.  Deduplicated against the other
 * subjects of the segment unless `force`. */
abis_status abis_template_add(abis_engine *e, const abis_caller *c, const abis_id *subject,
                              const abis_template_input *tmpl, int replace, int force,
                              abis_id *template_id, abis_error *err);

typedef enum abis_decision { ABIS_NO_MATCH = 0, ABIS_MATCH = 1 } abis_decision;
typedef enum abis_confidence {
    ABIS_CONFIDENCE_LOW = 0,    /* within a factor 10 of the purpose's target FMR */
    ABIS_CONFIDENCE_MEDIUM = 1, /* 10 to 1000 times past it */
    ABIS_CONFIDENCE_HIGH = 2    /* more than 1000 times past it */
} abis_confidence;

const char *abis_decision_name(abis_decision d);     /* "match", "no_match" */
const char *abis_confidence_name(abis_confidence c); /* "low", "medium", "high" */

typedef struct abis_verify_result {
    abis_decision decision;
    abis_confidence confidence;
    double score;     /* best similarity; for a fused decision (several probes whose
                       * calibrations carry LR models), the fused log-likelihood
                       * ratio.  Shown to callers only on request. */
    double fmr;       /* the false match rate of that score (fused: of the fused LLR) */
    double threshold; /* the score the purpose's target FMR requires of the best
                       * probe alone */
} abis_verify_result;

/* Verify 1:1: is this probe the subject?  Refused (ABIS_E_NO_CONSENT,
 * ABIS_E_LOCKED) and audited when the purpose is consent-based and the subject
 * has not consented, or the subject has locked the modality. */
abis_status abis_subject_verify(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                const char *purpose, const abis_template_input *probes,
                                size_t n_probes, abis_verify_result *result, abis_error *err);

typedef struct abis_candidate {
    abis_id subject_id;
    char external_ref[ABIS_REF_MAX + 1]; /* "" when the subject has none */
    double score;
    double fmr;
    abis_confidence confidence;
} abis_candidate;

/* Identify 1:N in a segment.  Only subjects whose consent covers the purpose
 * (every subject for a statutory purpose) and who have not locked the modality
 * are searched; only candidates whose false positive identification rate at
 * the current gallery size is at most the purpose's target are returned (open
 * set: *n_out may be 0).  Several probes (face and voice, two fingers) are
 * fused by likelihood ratio when every modality's calibration has an LR
 * model (abis calibrate), a subject missing a modality simply lacking that
 * evidence; candidate scores are then fused log-likelihood ratios.  `out` has
 * room for `k` candidates, best first. */
abis_status abis_subject_identify(abis_engine *e, const abis_caller *c, const char *segment,
                                  const char *purpose, const abis_template_input *probes,
                                  size_t n_probes, size_t k, abis_candidate *out, size_t *n_out,
                                  abis_error *err);

abis_status abis_consent_grant(abis_engine *e, const abis_caller *c, const abis_id *subject,
                               const char *purpose, abis_error *err);
abis_status abis_consent_withdraw(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                  const char *purpose, abis_error *err);

/* Lock (or unlock) one modality, or all of them with modality NULL or "*". */
abis_status abis_subject_lock(abis_engine *e, const abis_caller *c, const abis_id *subject,
                              const char *modality, abis_error *err);
abis_status abis_subject_unlock(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                const char *modality, abis_error *err);

/* Delete a subject for real: its records, templates and data key, from the
 * store, the gallery and the key store, in one call; then checkpoint the WAL
 * so freed pages are overwritten.  The audit keeps that it happened. */
abis_status abis_subject_delete(abis_engine *e, const abis_caller *c, const abis_id *subject,
                                abis_error *err);

/* Find a subject by its external reference within a segment. */
abis_status abis_subject_find_ref(abis_engine *e, const char *segment, const char *external_ref,
                                  abis_id *subject, abis_error *err);

/* ---- the person's own view ------------------------------------------------ */

typedef struct abis_template_info {
    abis_id template_id;
    char modality[ABIS_NAME_MAX + 1];
    int position;
    char format[16];
    double quality;
    int64_t created_at;
} abis_template_info;

typedef struct abis_consent_info {
    char purpose[ABIS_NAME_MAX + 1];
    int granted; /* 1 granted, 0 withdrawn */
    int64_t at;
    char channel[ABIS_TEXT_MAX + 1];
} abis_consent_info;

typedef struct abis_lock_info {
    char modality[ABIS_NAME_MAX + 1]; /* "*": all modalities */
    int64_t at;
} abis_lock_info;

typedef struct abis_history_info {
    int64_t at;
    char actor[ABIS_TEXT_MAX + 1];
    char operation[32];
    char purpose[ABIS_NAME_MAX + 1];
    char basis[16]; /* "consent", "statutory" or "" */
    char outcome[32];
    char decision[32];
} abis_history_info;

typedef struct abis_subject_view {
    abis_id subject_id;
    char segment[ABIS_NAME_MAX + 1];
    char external_ref[ABIS_REF_MAX + 1];
    int64_t created_at;
    abis_template_info *templates;
    size_t n_templates;
    abis_consent_info *consents;
    size_t n_consents;
    abis_lock_info *locks;
    size_t n_locks;
    abis_history_info *history; /* oldest first */
    size_t n_history;
} abis_subject_view;

/* What is held about a subject and who used it; never template data.  The
 * view is allocated by the engine; free it with abis_subject_view_free.
 * Reading the view is itself audited. */
abis_status abis_subject_show(abis_engine *e, const abis_caller *c, const abis_id *subject,
                              abis_subject_view **view, abis_error *err);
void abis_subject_view_free(abis_subject_view *view);

/* ---- in-memory galleries --------------------------------------------------- */

typedef struct abis_gallery_info {
    char segment[ABIS_NAME_MAX + 1];
    char modality[ABIS_NAME_MAX + 1];
    uint64_t templates; /* live templates held in memory */
} abis_gallery_info;

typedef int (*abis_gallery_cb)(const abis_gallery_info *info, void *ctx);

/* Build every segment's in-memory galleries now (otherwise each is built on
 * its segment's first search or enrolment): a server calls it at start, in
 * a thread of its own, so that no request pays for it.  Searches of other
 * galleries and verifications go on meanwhile; writes wait. */
abis_status abis_gallery_warm(abis_engine *e, abis_error *err);
/* The in-memory galleries built so far (a segment's gallery of a modality is
 * built from the store on its first search), with their sizes. */
abis_status abis_gallery_list(abis_engine *e, abis_gallery_cb cb, void *ctx, abis_error *err);

/* ---- audit ---------------------------------------------------------------- */

typedef struct abis_audit_report {
    uint64_t entries;                     /* entries checked */
    uint64_t checkpoints;                 /* signed checkpoints checked */
    uint64_t unsealed;                    /* entries after the last checkpoint */
    int ok;                               /* 1: chain and signatures intact */
    int64_t first_bad_seq;                /* where the chain breaks (-1 when ok) */
    char problem[ABIS_ERROR_MESSAGE_MAX]; /* what is wrong there */
} abis_audit_report;

/* Walk the whole chain and every checkpoint.  Returns ABIS_OK when the walk
 * could be done (report->ok says whether the log is intact). */
abis_status abis_audit_verify(abis_engine *e, abis_audit_report *report, abis_error *err);
/* Write every entry as one JSON object a line. */
abis_status abis_audit_export(abis_engine *e, FILE *out, abis_error *err);
/* The Ed25519 public key that signs checkpoints, as 64 hex digits. */
abis_status abis_audit_public_key(abis_engine *e, char out[65], abis_error *err);
/* The group commit of audit entries so far: transactions committed and the
 * entries in them (entries / batches: how many requests shared an fsync). */
void abis_audit_stats(abis_engine *e, uint64_t *batches, uint64_t *entries);

#ifdef __cplusplus
}
#endif
#endif
