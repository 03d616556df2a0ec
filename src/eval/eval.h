/*
 * eval.h: biometric performance evaluation as ISO/IEC 19795-1 defines it --
 * score sets from a protocol, the metrics over them, and their reports and
 * plots (SVG, JSON).  Used by `abis eval` and `abis calibrate`.
 *
 * Scores are similarities: higher means more alike.  A comparison is a match
 * at threshold t when score >= t.  FMR(t) = impostor scores >= t / impostors;
 * FNMR(t) = genuine scores < t / genuine comparisons (failures to acquire or
 * enrol are counted separately and, as the standard says, reported beside the
 * rates, never silently dropped).
 */
#ifndef ABIS_EVAL_H
#define ABIS_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abis/error.h"

/* ---- score sets ------------------------------------------------------------ */

/* The 1:1 comparisons of one system.  Each score carries the identity (or
 * identities) it came from so confidence intervals can be bootstrapped by
 * identity.  Arrays are owned by the set (abis_eval_scores_free). */
typedef struct abis_eval_scores {
    char name[64];       /* system or setting name, shown in plots */
    double *genuine;     /* genuine comparison scores */
    uint32_t *gen_id;    /* identity index of each genuine pair */
    size_t n_genuine, cap_genuine;
    double *impostor;    /* impostor comparison scores */
    uint32_t *imp_id_a;  /* identity indexes of each impostor pair */
    uint32_t *imp_id_b;
    size_t n_impostor, cap_impostor;
    uint32_t n_identities;
    uint64_t failed_to_enrol;   /* samples that could not be made into a template */
    uint64_t failed_to_acquire; /* captures that could not be read or had no extractor */
    uint64_t attempted;         /* samples attempted */
} abis_eval_scores;

void abis_eval_scores_init(abis_eval_scores *s, const char *name);
void abis_eval_scores_free(abis_eval_scores *s);
/* Append one score (-1 on out-of-memory). */
int abis_eval_add_genuine(abis_eval_scores *s, double score, uint32_t id);
int abis_eval_add_impostor(abis_eval_scores *s, double score, uint32_t id_a, uint32_t id_b);

/* The 1:N searches of one system: one enrolment per identity, mated probes
 * (their mate is enrolled) and non-mated probes (it is not). */
typedef struct abis_eval_ident {
    char name[64];
    size_t gallery_size;
    /* mated probes: the mate's rank (1 = first; 0 = not in the returned
     * candidate list) and score, and the best non-mate score */
    uint32_t *mated_rank;
    double *mated_score;
    double *mated_best_nonmate;
    uint32_t *mated_id;
    size_t n_mated, cap_mated;
    /* non-mated probes: their best score against the gallery */
    double *nonmated_best;
    uint32_t *nonmated_id;
    size_t n_nonmated, cap_nonmated;
    uint32_t max_rank; /* candidate list length used (at least 20) */
} abis_eval_ident;

void abis_eval_ident_init(abis_eval_ident *s, const char *name, size_t gallery_size,
                          uint32_t max_rank);
void abis_eval_ident_free(abis_eval_ident *s);
int abis_eval_add_mated(abis_eval_ident *s, uint32_t rank, double score, double best_nonmate,
                        uint32_t id);
int abis_eval_add_nonmated(abis_eval_ident *s, double best, uint32_t id);

/* ---- metrics ----------------------------------------------------------------- */

/* A rate with its support: how many comparisons stand behind it, and a 95 %
 * confidence interval bootstrapped by identity (lo = hi = value when not
 * computed).  supported = 0 when there are too few comparisons to observe the
 * rate at all (e.g. FNMR at FMR 1e-4 with fewer than 10,000 impostors; the
 * rule: at least 1/target comparisons, docs/ACCURACY.md). */
typedef struct abis_eval_rate {
    double value, lo, hi;
    double threshold; /* the score threshold it was read at */
    uint64_t support; /* comparisons behind it */
    int supported;
} abis_eval_rate;

#define ABIS_EVAL_N_FMR_TARGETS 3 /* 1e-2, 1e-3, 1e-4 */
#define ABIS_EVAL_N_FPIR_TARGETS 2 /* 0.01, 0.003 */
#define ABIS_EVAL_MAX_RANK 20

typedef struct abis_eval_verif_metrics {
    uint64_t n_genuine, n_impostor;
    abis_eval_rate eer;                                 /* value = EER, threshold where reached */
    abis_eval_rate fnmr_at_fmr[ABIS_EVAL_N_FMR_TARGETS]; /* at FMR 1e-2, 1e-3, 1e-4 */
    /* ZeroFMR (FVC): the FNMR at the lowest threshold no impostor reaches, just
     * above the highest impostor score; supported with any impostor and genuine
     * score, no interval (it rests on one score) */
    abis_eval_rate fnmr_at_zero_fmr;
    double d_prime;    /* decidability: |mu_g - mu_i| / sqrt((var_g + var_i) / 2) */
    double fte_rate;   /* failed_to_enrol / attempted */
    double fta_rate;   /* failed_to_acquire / attempted */
} abis_eval_verif_metrics;

typedef struct abis_eval_ident_metrics {
    size_t gallery_size;
    uint64_t n_mated, n_nonmated;
    abis_eval_rate fnir_at_fpir[ABIS_EVAL_N_FPIR_TARGETS]; /* at FPIR 0.01, 0.003 */
    double cmc[ABIS_EVAL_MAX_RANK]; /* cmc[r-1]: share of mated probes with mate at rank <= r */
} abis_eval_ident_metrics;

extern const double abis_eval_fmr_targets[ABIS_EVAL_N_FMR_TARGETS];
extern const double abis_eval_fpir_targets[ABIS_EVAL_N_FPIR_TARGETS];

/* Compute the metrics; `bootstrap` resamplings by identity for the
 * confidence intervals (0: none), with a fixed seed so reports reproduce. */
abis_status abis_eval_verification(const abis_eval_scores *s, unsigned bootstrap,
                                   abis_eval_verif_metrics *m, abis_error *err);
abis_status abis_eval_identification(const abis_eval_ident *s, unsigned bootstrap,
                                     abis_eval_ident_metrics *m, abis_error *err);

/* Accuracy by cross-validation over a pairs file's folds (the LFW protocol:
 * for each fold, the threshold that makes the fewest errors on the other
 * folds, applied to it; the mean over folds and its standard error).  Two
 * figures: over every pair, a pair without two templates (a failure to
 * enrol or acquire) decided "no match", and over the compared pairs only. */
typedef struct abis_eval_fold_accuracy {
    int folds;
    size_t pairs, compared;
    double mean, se;                   /* every pair */
    double compared_mean, compared_se; /* compared pairs only */
    double threshold_mean;             /* the folds' thresholds, averaged */
} abis_eval_fold_accuracy;

/* score[i] (NaN: not compared), genuine[i], fold[i] in [0, folds) (pairs of
 * another fold are left out) for n pairs.  ABIS_E_INVALID when a fold has
 * no compared pair or folds < 2. */
abis_status abis_eval_fold_accuracy_compute(const double *score, const int *genuine,
                                            const int *fold, size_t n, int folds,
                                            abis_eval_fold_accuracy *out, abis_error *err);

/* FMR and FNMR at one threshold (ties count as matches). */
void abis_eval_rates_at(const abis_eval_scores *s, double threshold, double *fmr, double *fnmr);

/* ---- the DET curve ------------------------------------------------------------ */

typedef struct abis_eval_det_point {
    double threshold, fmr, fnmr;
} abis_eval_det_point;

/* Every operating point where FMR or FNMR changes (one per distinct score),
 * thresholds descending; *points malloc'd. */
abis_status abis_eval_det(const abis_eval_scores *s, abis_eval_det_point **points, size_t *n,
                          abis_error *err);

/* Standard normal deviate of p (the probit), for DET axes: Phi^-1(p). */
double abis_eval_probit(double p);

/* ---- output ---------------------------------------------------------------------- */

/* Self-contained SVG documents a browser shows. */
/* DET: FNMR against FMR on normal-deviate axes, one curve per system. */
abis_status abis_eval_svg_det(FILE *out, const abis_eval_scores *const *systems, size_t n,
                              const char *title, abis_error *err);
/* Genuine and impostor score histograms of one system. */
abis_status abis_eval_svg_histogram(FILE *out, const abis_eval_scores *s, const char *title,
                                    abis_error *err);
/* CMC: identification rate by rank 1..20, one curve per system. */
abis_status abis_eval_svg_cmc(FILE *out, const abis_eval_ident_metrics *const *systems,
                              const char *const *names, size_t n, const char *title,
                              abis_error *err);

/* JSON report for machines (jansson).  Either metrics pointer may be NULL. */
abis_status abis_eval_report_json(FILE *out, const char *system, const abis_eval_verif_metrics *v,
                                  const abis_eval_ident_metrics *id, abis_error *err);

#endif
