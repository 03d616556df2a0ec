/*
 * dataset.h: labelled evaluation sets -- which samples exist and whose they
 * are -- read from the folder layouts public biometric data sets come in, or
 * from a CSV / JSON Lines list; and turning those samples into the canonical
 * templates the engine compares (the modality plug-in's validate()).
 *
 * A set is a list of records.  A record is one capture event of one identity:
 * a file (a template such as a .npy vector, or a capture such as a .jpg) or,
 * from JSON Lines, inline vectors -- one per modality for a multimodal line.
 * Records keep the order the layout gives them (directory entries in natural
 * order: "2" before "10"), which is what the protocols mean by "first
 * sample" of an identity.
 *
 * Layouts (docs/EVALUATION.md has examples):
 *   folder   DIR/<identity>/<anything>.<ext>            (recursively under each identity)
 *   csv      lines "identity,path" (path relative to the CSV's folder), header optional
 *   jsonl    {"identity": I, "path": P} | {"identity": I, "vector": [...]} |
 *            {"identity": I, "templates": {"face": [...], "voice": [...]}}
 *   lfw      DIR/<name>/<name>_<NNNN>.<ext>; with a pairs file (--pairs) the pairs
 *   fvc      [DIR/<db>/]<finger>_<impression>.<ext>  (identity "<db>/<finger>")
 *   casia    DIR/<eye>/<session>/<eye>_<session>_<n>.<ext>
 *   speaker  FSDD <digit>_<speaker>_<index>.<ext>, LibriSpeech
 * <speaker>/<speaker>-<chapter>-<utt>.<ext>
 *
 * Failures are counted, never dropped (ISO/IEC 19795-1): a file that cannot be
 * read or is not a valid template is a failure to enrol (FTE); a capture
 * (image, audio) that the modality cannot turn into a template is a failure to
 * acquire (FTA).
 */
#ifndef ABIS_EVAL_DATASET_H
#define ABIS_EVAL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "abis/abis.h"
#include "core/modality.h"

typedef enum abis_eval_layout {
    ABIS_LAYOUT_AUTO = 0,
    ABIS_LAYOUT_FOLDER,
    ABIS_LAYOUT_CSV,
    ABIS_LAYOUT_JSONL,
    ABIS_LAYOUT_LFW,
    ABIS_LAYOUT_FVC,
    ABIS_LAYOUT_CASIA,
    ABIS_LAYOUT_SPEAKER
} abis_eval_layout;

/* "folder", "csv", ...; and back (-1 for an unknown name). */
const char *abis_eval_layout_name(abis_eval_layout l);
int abis_eval_layout_parse(const char *name);
/* The modality a layout's captures are of ("face" for lfw, ...), or NULL. */
const char *abis_eval_layout_modality(abis_eval_layout l);

/* One inline template of a record (JSON Lines). */
typedef struct abis_eval_inline {
    char *modality; /* NULL: the modality under evaluation (a single-modality line) */
    float *values;
    size_t n;
} abis_eval_inline;

typedef struct abis_eval_record {
    uint32_t identity; /* index into set->identities */
    char *key;         /* the sample's name in messages: a relative path, or "line 12" */
    char *path;        /* the file, or NULL when the values are inline */
    int capture;       /* 1: the file is a capture (image, audio), not a template */
    long number;       /* the sample number the layout gives (LFW NNNN, FVC impression); -1 */
    abis_eval_inline *inl;
    size_t n_inline;
} abis_eval_record;

/* A pair of records from a pairs file (LFW format). */
typedef struct abis_eval_pair {
    uint32_t a, b;
    int genuine;
    int fold; /* the pairs file's fold (0-based), or -1 when it has none */
} abis_eval_pair;

#define ABIS_EVAL_MAX_PROBLEMS 20 /* problem messages kept; the rest are only counted */

typedef struct abis_eval_set {
    abis_eval_layout layout;
    char *source; /* the path the set was read from */
    char **identities;
    uint32_t n_identities, cap_identities;
    abis_eval_record *records;
    size_t n_records, cap_records;
    char **modalities; /* modality names seen in multimodal JSON Lines */
    size_t n_modalities;
    size_t n_skipped;      /* files with neither a template nor a capture extension */
    abis_eval_pair *pairs; /* from the pairs file (NULL without one) */
    size_t n_pairs;
    size_t pairs_unresolved;                            /* pairs naming samples not in the set */
    size_t pairs_genuine_listed, pairs_impostor_listed; /* as the pairs file lists them */
    int pairs_folds; /* folds in the pairs file ("5 300": 5 folds of 300 genuine then 300
                      * impostor pairs), or 0 */
    /* Malformed input (bad CSV / JSON Lines lines, unparsable pairs lines):
     * counted, and the first ABIS_EVAL_MAX_PROBLEMS messages kept ("line 12: ..."). */
    uint64_t n_problems;
    char *problems[ABIS_EVAL_MAX_PROBLEMS];
    /* identity name -> index (open addressing), private to dataset.c */
    uint32_t *id_hash;
    size_t id_hash_cap;
} abis_eval_set;

/* Read the labelled set at `path` (a folder, or a CSV / JSON Lines file) in
 * `layout` (AUTO: detected; the detected layout is in set->layout), and the
 * pairs file `pairs_path` when not NULL (LFW format: a first line with counts,
 * then "name n1 n2" genuine and "name1 n1 name2 n2" impostor lines; n is the
 * layout's sample number (LFW NNNN) or else the 1-based position of the sample
 * within its identity).  Malformed lines are counted in set->n_problems and the
 * reading goes on; an unreadable set or an empty one is an error.  Free with
 * abis_eval_set_free (also after an error). */
abis_status abis_eval_set_load(abis_eval_set *set, const char *path, abis_eval_layout layout,
                               const char *pairs_path, abis_error *err);
void abis_eval_set_free(abis_eval_set *set);

/* Read a pairs file into set->pairs (part of abis_eval_set_load; exposed for tests). */
abis_status abis_eval_set_load_pairs(abis_eval_set *set, const char *pairs_path, abis_error *err);

/* Number of records of identity `id`. */
size_t abis_eval_set_identity_size(const abis_eval_set *set, uint32_t id);

/* Does a file name's extension say it is a capture (image or audio)? */
int abis_eval_is_capture(const char *name);

/* ---- templates --------------------------------------------------------------- */

/* The canonical templates of one modality, one slot per record of a set. */
typedef struct abis_eval_templates {
    const abis_modality_kind *kind;
    abis_modality_rec mod;
    size_t n;             /* = set->n_records */
    unsigned char **tmpl; /* NULL: missing (no such modality on that record) or failed */
    size_t *len;
    uint32_t *identity;   /* copy of each record's identity */
    uint64_t attempted;   /* records that had this modality */
    uint64_t fte, fta;    /* failures to enrol / acquire among them */
    char fte_reason[256]; /* the first FTE's message */
    char fta_reason[256]; /* the first FTA's message */
} abis_eval_templates;

/* Validate the sample of modality `m` (of kind `kind`) of every record with
 * use[i] set (use NULL: every record) into canonical templates with
 * kind->validate, the engine's own entry check; a capture (image) is handed
 * to the kind as one, and a kind that cannot extract from it, or an
 * extraction that fails, counts as a failure to acquire.  Captures are
 * extracted on `threads` threads (the caller's among them; 0 counts as 1),
 * with a progress bar named `progress_label` on a terminal (NULL: none), and
 * their bytes wiped after use.  Inline values are taken from the record's
 * inline template named m->name, or its unnamed one.  When m->dim is 0 the
 * dimension is taken from the first sample that has values (t->mod.dim then
 * says which).  Fails only on out-of-memory; bad samples are counted as FTE /
 * FTA. */
abis_status abis_eval_templates_load(abis_eval_templates *t, const abis_eval_set *set,
                                     const unsigned char *use, const abis_modality_kind *kind,
                                     const abis_modality_rec *m, unsigned threads,
                                     const char *progress_label, abis_error *err);
void abis_eval_templates_free(abis_eval_templates *t);

#endif
