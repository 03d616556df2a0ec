/*
 * protocol.h: evaluation protocols -- which comparisons an evaluation makes
 * over a labelled set -- and running them with the engine's own comparison
 * code (the modality plug-in's compare() for 1:1, its gallery for 1:N) on
 * several threads.
 *
 *   all    every genuine pair (two records of one identity) and every impostor
 *          pair (records of two identities); impostor pairs may be capped by a
 *          seeded random sample (max_impostors)
 *   fvc    FVC2002: genuine = every pair of impressions of a finger; impostor =
 *          the first impression of each finger against the first impression of
 *          every other finger
 *   pairs  the pairs of a pairs file (set->pairs)
 *   1n     one enrolment per identity (its first record with a valid template)
 *          in a gallery made by the modality's gallery_create; the identity's
 *          other records are mated probes; the records of identities held out
 *          of the gallery (nonmated_share of them, chosen with the seed) are
 *          non-mated probes (or, with nonmated_singletons, the identities that
 *          have a single record).  Each probe is searched for the top k (20).
 *
 * A pair or probe whose template failed (FTE/FTA) or is missing makes no
 * comparison; the failures are counted with the templates (dataset.h) and
 * reported beside the rates.
 */
#ifndef ABIS_EVAL_PROTOCOL_H
#define ABIS_EVAL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "eval/dataset.h"
#include "eval/eval.h"

typedef enum abis_eval_protocol {
    ABIS_PROTOCOL_ALL = 0,
    ABIS_PROTOCOL_FVC,
    ABIS_PROTOCOL_PAIRS,
    ABIS_PROTOCOL_1N,
    /* All pairs, but genuine pairs only across capture sessions (CASIA:
     * enrol in session 1, probe in session 2); needs a layout with sessions. */
    ABIS_PROTOCOL_SESSIONS
} abis_eval_protocol;

/* "all", "fvc", "pairs", "1n", "sessions" */
const char *abis_eval_protocol_name(abis_eval_protocol p);
int abis_eval_protocol_parse(const char *name); /* -1 when unknown */

typedef struct abis_eval_run_opts {
    unsigned threads;           /* comparison threads (0: 2) */
    uint64_t max_impostors;     /* all: cap on impostor pairs (0: none) */
    uint64_t seed;              /* impostor sampling and the 1:N hold-out */
    double nonmated_share;      /* 1n: share of identities held out of the gallery */
    int nonmated_singletons;    /* 1n: instead, hold out the identities with one record
                                 * (LFW's usual open-set 1:N) */
    size_t k;                   /* 1n: candidates per search (0: ABIS_EVAL_MAX_RANK) */
    const unsigned char *use;   /* records taking part (NULL: all) */
    const char *progress_label; /* a TTY progress bar with this label (NULL: none) */
} abis_eval_run_opts;

/* An explicit list of pairs of records. */
typedef struct abis_eval_pairlist {
    abis_eval_pair *p;
    size_t n, cap;
} abis_eval_pairlist;

/* The pairs protocol `proto` (all, fvc or pairs) makes over the records in
 * o->use.  For `all` this lists every pair (mind the size: the running
 * functions below do not need the list for an uncapped `all`). */
abis_status abis_eval_pairs_make(const abis_eval_set *set, abis_eval_protocol proto,
                                 const abis_eval_run_opts *o, abis_eval_pairlist *out,
                                 abis_error *err);
void abis_eval_pairs_free(abis_eval_pairlist *l);

/* Compare every pair of `pl` whose two templates exist; append the scores to
 * `out` (genuine or impostor by the pair's flag).  When `per_pair` is not
 * NULL it receives each pair's score (NaN where no comparison was made), in
 * the list's order. */
abis_status abis_eval_compare_pairs(const abis_eval_templates *t, const abis_eval_pairlist *pl,
                                    const abis_eval_run_opts *o, abis_eval_scores *out,
                                    double *per_pair, abis_error *err);

/* Run a 1:1 protocol (all, fvc or pairs) over `t` into `out` (initialised by
 * the caller; failure counts are copied from `t`).  An uncapped `all` runs
 * without a pair list, writing each score straight into place, which is what
 * lets it make 10^8 comparisons in minutes. */
abis_status abis_eval_run_verification(const abis_eval_set *set, const abis_eval_templates *t,
                                       abis_eval_protocol proto, const abis_eval_run_opts *o,
                                       abis_eval_scores *out, abis_error *err);

/* Run the 1:N protocol over `t` into `out` (initialised by the caller; its
 * gallery_size is set here). */
abis_status abis_eval_run_identification(const abis_eval_set *set, const abis_eval_templates *t,
                                         const abis_eval_run_opts *o, abis_eval_ident *out,
                                         abis_error *err);

/* Split the identities of the records in `use` (NULL: all) into two parts by
 * a seeded shuffle: a share `share_b` of them (at least one, at most all but
 * one) goes to b, the rest to a.  a and b are record masks (n_records each). */
void abis_eval_split_identities(const abis_eval_set *set, const unsigned char *use, double share_b,
                                uint64_t seed, unsigned char *a, unsigned char *b);

#endif
