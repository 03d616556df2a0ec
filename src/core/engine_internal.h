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
 */
#ifndef ABIS_ENGINE_INTERNAL_H
#define ABIS_ENGINE_INTERNAL_H

#include <pthread.h>

#include "abis/abis.h"
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
 * vector gallery's sign-code shortlist, docs/search.md) in galleries of at
 * least this many templates; smaller galleries, statutory purposes (a border
 * or police search must not miss a mate an exhaustive scan finds) and
 * deduplication at enrolment are searched exactly.  100,000 512-d int8
 * templates are 52 MB: about 1 ms to scan at the two-core memory bandwidth
 * measured in docs/BENCHMARKS.md, so below this size pre-selection saves
 * little. */
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

struct abis_engine {
    pthread_mutex_t mu;
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
};

/* ---- engine.c ---- */
int64_t abis_now_ms(void);
const char *engine_actor(const abis_engine *e, const abis_caller *c);
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

/* Record a refused call: writes an audit entry with outcome = status name and
 * detail = err->message, then returns err->status unchanged. */
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

/* ---- ops_subject.c ---- */
/* Complete a deletion that a crash interrupted after its data commit. */
abis_status engine_finish_pending_delete(abis_engine *e, abis_error *err);

/* ---- ops_match.c ---- */
/* The confidence band of a decision given the observed FMR and the target. */
abis_confidence engine_confidence(double fmr, double target, int match);

#endif
