/*
 * engine_internal.h: the engine's state, shared by the files of src/core/.
 *
 * The engine is the one place that decides policy.  It keeps:
 *   - the store (system of record) and the master key;
 *   - caches of the registry (modalities with their calibrations, purposes,
 *     segments), loaded at open and updated by every registry write;
 *   - per segment, once first needed: a dense slot per subject, bitsets of
 *     live subjects, of granted consents per purpose and of locks per
 *     modality, and a gallery per modality (built on first search).
 * Store first, then memory: in-memory state changes only after the store
 * committed, so a failed call leaves both as they were.
 *
 * Threads.  Reads (verify, identify, the subject view, lists) run
 * concurrently with each other and with writes; writes are serialised.
 *   write_mu    held for the whole of every call that writes the store, so
 *               writers never race (deduplication, then insert);
 *   state       a writer-preferring read/write lock over the in-memory state
 *               (registry caches, segments' slots, bitsets, galleries):
 *               searches and lookups hold it for reading; a writer takes it
 *               for writing only to change memory after its commit, and to
 *               build a segment or gallery on first use;
 *   clients_mu  the client cache (client.c);
 *   auditq      the group commit of audit entries (auditq.c).
 * Order: write_mu before state; nobody waits for an audit commit while
 * holding `state` (the leader of a group commit needs no engine lock, but a
 * writer waiting for `state` would otherwise stall every reader behind it).
 * The store gives each reading thread its own connections (store.h).
 */
#ifndef ABIS_ENGINE_INTERNAL_H
#define ABIS_ENGINE_INTERNAL_H

#include <pthread.h>

#include "abis/abis.h"
#include "abis/client.h"
#include "audit/audit.h"
#include "core/modality.h"
#include "crypto/crypto.h"
#include "gallery/gallery.h"
#include "match/match.h"
#include "store/store.h"
#include "util/bitset.h"
#include "util/idmap.h"

/* False duplicate findings per enrolment search: with 10 million enrolments,
 * about 10 would be flagged for review in all (docs/FORMATS.md, "meta"). */
#define ABIS_DEFAULT_DEDUP_FMR 1e-6

/* Identification for a consent-based purpose pre-selects candidates (the
 * vector gallery's graph walk, docs/search.md) in galleries of at least this
 * many templates; smaller galleries, statutory purposes (a border or police
 * search must not miss a mate an exhaustive scan finds) and deduplication
 * at enrolment are searched exactly.  100,000 512-d templates take about
 * 1.5 ms to scan exactly on two cores (docs/BENCHMARKS.md). */
#define ABIS_PRESELECT_MIN 100000

typedef struct modality_entry {
    abis_modality_rec rec;
    const abis_modality_kind *kind;
    abis_calibration *calib;
} modality_entry;

typedef struct segstate {
    abis_segment_rec rec;
    int loaded;        /* slots and bitsets built from the store */
    abis_idmap slots;  /* subject id -> slot */
    abis_id *slot_ids; /* slot -> subject id */
    size_t n_slots, cap_slots;
    abis_bitset live;       /* slots of subjects that exist */
    abis_bitset *consent;   /* [purpose index]: granted consents */
    abis_bitset lock_all;   /* subjects who locked every modality */
    abis_bitset *lock_mod;  /* [modality index]: subjects who locked that modality */
    abis_gallery **gallery; /* [modality index]: NULL until first needed */
    size_t n_purpose_sets, n_modality_sets;
} segstate;

/* A client (relying party) as the engine caches it (client.c). */
typedef struct client_entry {
    abis_client_rec rec;
    int64_t *segments, *purposes; /* ids it may use */
    size_t n_segments, n_purposes;
    abis_key pseudonym; /* unsealed; wiped when the cache is freed */
    int oom;            /* loading its scope ran out of memory */
} client_entry;

/* The group commit queue (auditq.c). */
struct auditq_item;
typedef struct auditq {
    pthread_mutex_t mu;
    struct auditq_item *items; /* queued, not yet taken by a leader */
    size_t n, cap;
    int leader; /* a thread leads (commits, or is about to) */
    uint64_t batches, entries;
} auditq;

struct abis_engine {
    pthread_mutex_t write_mu;
    pthread_rwlock_t state;
    pthread_mutex_t clients_mu;
    auditq auditq;
    char data_dir[4096];
    int read_only;
    abis_store *store;
    abis_key master;
    abis_audit audit;
    char actor[ABIS_TEXT_MAX + 1];
    double dedup_fmr;
    modality_entry *mods;
    size_t n_mods;
    abis_purpose_rec *purposes;
    size_t n_purposes;
    segstate **segs;
    size_t n_segs;
    client_entry *clients;
    size_t n_clients;
    int64_t clients_version;          /* meta "clients_version" the cache was loaded at */
    _Atomic int64_t registry_version; /* meta "registry_version" the registry caches hold */
    int clients_loaded;
};

/* ---- engine.c ---- */
void engine_locks_init(abis_engine *e);
void engine_locks_destroy(abis_engine *e);
void engine_state_rdlock(abis_engine *e);
void engine_state_wrlock(abis_engine *e);
void engine_state_unlock(abis_engine *e);
int64_t abis_now_ms(void);
const char *engine_actor(const abis_engine *e, const abis_caller *c);
/* Bring the registry caches up to the store when another process (the
 * `abis` command beside a running abisd) changed the registry: adds new
 * segments, purposes and modalities and reloads calibrations and the dedup
 * setting.  One read when nothing changed. */
abis_status engine_registry_sync(abis_engine *e, abis_error *err);
/* Validate a registry name: [a-z0-9._-], 1..63, starting with a letter or digit. */
abis_status engine_check_name(const char *what, const char *name, abis_error *err);
abis_status engine_refuse_if_read_only(abis_engine *e, abis_error *err);

/* An audit event.  Text fields may be NULL.  audit_in_txn appends inside the
 * caller's open transaction; audit_event runs its own (used for refusals and
 * read-only operations: a failure to audit is reported into `err` only when
 * the call was otherwise successful). */
typedef struct audit_event {
    const char *operation, *segment, *subject, *purpose, *outcome, *decision, *detail;
} audit_event;
abis_status audit_in_txn(abis_engine *e, const abis_caller *c, const audit_event *ev,
                         abis_error *err);
abis_status audit_event_write(abis_engine *e, const abis_caller *c, const audit_event *ev,
                              abis_error *err);
/* One store write and its audit entry in one transaction: begin, write(arg),
 * audit, commit; rolled back on any failure. */
typedef abis_status (*engine_write_fn)(abis_engine *e, void *arg, abis_error *err);
abis_status engine_write_audited(abis_engine *e, const abis_caller *c, engine_write_fn write,
                                 void *arg, const audit_event *ev, abis_error *err);

/* The audit record of an event by caller c. */
void engine_audit_rec(abis_engine *e, const abis_caller *c, const audit_event *ev,
                      abis_audit_rec *r);
/* Write `n` events in one transaction through the group commit (auditq.c);
 * returns once they are on disk.  Never call it holding `state`. */
abis_status engine_audit_group(abis_engine *e, const abis_caller *c, const audit_event *ev,
                               size_t n, abis_error *err);
void auditq_init(auditq *q);
void auditq_destroy(auditq *q);

/* Record a refused call: writes an audit entry with outcome = status name and
 * detail = err->message, then returns err->status unchanged.  Through the
 * group commit: never call it holding `state`. */
abis_status audit_refusal(abis_engine *e, const abis_caller *c, const char *operation,
                          const char *segment, const abis_id *subject, const char *purpose,
                          abis_error *err);

modality_entry *engine_modality(abis_engine *e, const char *name, size_t *index);
modality_entry *engine_modality_by_id(abis_engine *e, int64_t id, size_t *index);
abis_purpose_rec *engine_purpose(abis_engine *e, const char *name, size_t *index);
abis_purpose_rec *engine_purpose_by_id(abis_engine *e, int64_t id, size_t *index);
segstate *engine_segment(abis_engine *e, const char *name);
segstate *engine_segment_by_id(abis_engine *e, int64_t id);
/* A subject's record and its segment; ABIS_E_NOT_FOUND says "no such subject"
 * (the same words whether it never existed or was deleted). */
abis_status engine_find_subject(abis_engine *e, const abis_id *subject, abis_subject_rec *r,
                                segstate **seg, abis_error *err);

/* The key of a segment: wraps the data keys of its subjects.  Wipe after use. */
void engine_segment_key(abis_engine *e, int64_t segment_id, abis_key *out);
/* The subject's data key, unwrapped with its segment's key.  Wipe after use. */
abis_status engine_subject_key(abis_engine *e, const abis_id *subject, int64_t segment_id,
                               abis_key *out, abis_error *err);
/* Unseal a stored template of modality m into buf (cap bytes) and check it
 * is well-formed; *len gets its size.  ABIS_E_CRYPTO / ABIS_E_STORE otherwise. */
abis_status engine_unseal_template(abis_engine *e, const abis_template_rec *r, int64_t segment_id,
                                   const modality_entry *m, unsigned char *buf, size_t cap,
                                   size_t *len, abis_error *err);
/* Associated data for sealing a template: subject id || template id. */
void engine_template_ad(const abis_id *subject, const abis_id *tmpl, unsigned char ad[32]);

/* ---- segstate.c ---- */
/* Build the segment's slots and bitsets from the store if not yet done. */
abis_status segstate_load(abis_engine *e, segstate *s, abis_error *err);
/* The gallery of (segment, modality), built from the store on first use. */
abis_status segstate_gallery(abis_engine *e, segstate *s, size_t mod_index, abis_gallery **out,
                             abis_error *err);
/* Slot of a subject (after load); -1 when absent. */
int64_t segstate_slot(const segstate *s, const abis_id *subject);
/* After a committed enrolment: give the subject a slot and mark it live. */
abis_status segstate_add_subject(segstate *s, const abis_id *subject, uint32_t *slot,
                                 abis_error *err);
abis_status segstate_set_consent(segstate *s, size_t purpose_index, uint32_t slot, int granted,
                                 abis_error *err);
abis_status segstate_set_lock(segstate *s, size_t mod_index_or_all, int all, uint32_t slot,
                              int locked, abis_error *err);
/* After a committed deletion: drop the subject from every bitset and gallery. */
void segstate_remove_subject(segstate *s, const abis_id *subject);
/* Write the segment's galleries to their encrypted snapshots (those changed
 * since loaded or saved), best effort: at engine close. */
void segstate_save_snapshots(abis_engine *e, segstate *s);
/* Remove the segment's snapshot files at once, after a committed deletion of
 * templates, so that no copy of a deleted template stays on disk (they are
 * written anew at close). */
void segstate_forget_snapshots(abis_engine *e, const segstate *s);
/* The filter for a search: live, consented (unless statutory), not locked. */
abis_status segstate_filter(segstate *s, const abis_purpose_rec *p, size_t purpose_index,
                            size_t mod_index, abis_bitset *out, abis_error *err);
void segstate_free(segstate *s);
/* After the registry grew (a purpose or modality added; `state` held for
 * writing): make room for it in every loaded segment, so that readers never
 * need to. */
void engine_grow_segments(abis_engine *e);
/* Take `state` for reading with the segment loaded and the galleries of the
 * modalities mods[0..n) built (building them under the write lock first when
 * needed).  On ABIS_OK the caller holds `state` for reading. */
abis_status engine_search_ready(abis_engine *e, segstate *s, const size_t *mods, size_t n,
                                abis_error *err);

/* ---- client.c ---- */
void engine_clients_free(abis_engine *e);
/* A client's pseudonym of a subject id (inverse = 1: the subject behind a
 * pseudonym).  The server never needs it; tests do. */
void engine_client_token(const abis_client *c, const abis_id *in, abis_id *out, int inverse);
/* A write made with an Idempotency-Key by a client: the key, the request it
 * is bound to, and the operation's name, remembered with the write's result
 * in the write's own transaction. */
typedef struct engine_idem {
    int64_t client_id;
    const abis_idempotency *in;
    const char *operation;
} engine_idem;
/* Inside a write transaction: remember the result (subject, template; NULL
 * allowed) of an idempotent write.  ABIS_OK doing nothing when idem is NULL;
 * ABIS_E_CONFLICT when the key was taken meanwhile (a concurrent request
 * with the same key: the whole write rolls back). */
abis_status engine_idem_remember(abis_engine *e, const engine_idem *idem, const abis_id *subject,
                                 const abis_id *tmpl, abis_error *err);

/* The write operations with an optional idempotency record (NULL: none);
 * the public abis_* calls pass NULL. */
abis_status engine_enroll(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                          const abis_enroll_request *req, abis_enroll_result *res, abis_error *err);
abis_status engine_template_add(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                                const abis_id *subject, const abis_template_input *tmpl,
                                int replace, int force, abis_id *template_id, abis_error *err);
abis_status engine_consent_set(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                               const abis_id *subject, const char *purpose, int granted,
                               abis_error *err);
abis_status engine_lock_set(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                            const abis_id *subject, const char *modality, int lock,
                            abis_error *err);
abis_status engine_delete(abis_engine *e, const abis_caller *c, const engine_idem *idem,
                          const abis_id *subject, abis_error *err);

/* ---- ops_subject.c ---- */
/* Complete a deletion that a crash interrupted after its data commit. */
abis_status engine_finish_pending_delete(abis_engine *e, abis_error *err);

/* ---- ops_match.c ---- */
/* The confidence band of a decision given the observed FMR and the target. */
abis_confidence engine_confidence(double fmr, double target, int match);

#endif
