/*
 * match.h: comparing two templates, and turning scores into false match rates.
 *
 * Vector kernels: a scalar reference and an AVX2+FMA path chosen at run time
 * from the CPU's features (__builtin_cpu_supports).  Both compute the float32
 * dot product of two L2-normalised vectors, i.e. their cosine similarity;
 * results agree to within float rounding (tests/test_match.c).
 *
 * Calibration: a per-modality mapping from score to false match rate (FMR),
 * given as JSON (docs/FORMATS.md, "Calibration"):
 *   {"model": "random-directions", "dim": 512}
 *       the default for synthetic data: impostor scores are the cosines of
 *       independent uniformly random directions in `dim` dimensions, whose
 *       distribution is approximately normal with mean 0 and variance 1/dim,
 *       so FMR(s) = 0.5 * erfc(s * sqrt(dim / 2)).
 *   {"model": "table", "points": [[score, fmr], ...]}
 *       fitted on real data (abis calibrate): scores ascending, FMR
 *       non-increasing, interpolated linearly in log10(FMR).
 */
#ifndef ABIS_MATCH_H
#define ABIS_MATCH_H

#include <stddef.h>

#include "abis/error.h"

typedef float (*abis_dot_fn)(const float *a, const float *b, size_t n);

float abis_dot_scalar(const float *a, const float *b, size_t n);
/* NULL when not built with AVX2 support. */
abis_dot_fn abis_dot_avx2_fn(void);
/* The best kernel this CPU supports (decided once). */
abis_dot_fn abis_dot_best(void);
/* "avx2" or "scalar": the kernel abis_dot_best() chose. */
const char *abis_dot_best_name(void);
/* Force the scalar kernel (ABIS_KERNEL=scalar in the environment does the same). */
void abis_dot_force_scalar(int on);

typedef struct abis_calibration abis_calibration;

/* Parse and validate a calibration; ABIS_E_INVALID says what is wrong. */
abis_status abis_calibration_parse(const char *json, abis_calibration **out, abis_error *err);
/* The default calibration JSON for a vector modality of `dim` values (static buffer
 * written into `buf`). */
void abis_calibration_default_vector(int dim, char *buf, size_t cap);
void abis_calibration_free(abis_calibration *c);
/* The model's name ("random-directions", "table"). */
const char *abis_calibration_model(const abis_calibration *c);
/* The false match rate of a score (in [0, 1], non-increasing in score). */
double abis_calibration_fmr(const abis_calibration *c, double score);
/* The smallest score whose FMR is at most `fmr` (the decision threshold). */
double abis_calibration_threshold(const abis_calibration *c, double fmr);

/* ---- fitting and fusion (src/match/calibration_fit.c, fusion.c) ---------- */

/* The impostor side of a 1:N evaluation, for fitting an identification
 * calibration: the best score of each non-mated probe against a gallery of
 * `gallery_size` enrolments. */
typedef struct abis_ident_scores {
    size_t gallery_size;
    const double *nonmated_best;
    size_t n;
} abis_ident_scores;

/* Fit a calibration ("model": "table") from evaluation scores: the empirical
 * impostor tail as FMR points, extended beyond the highest impostor score by
 * a normal fit of the impostor scores; a likelihood-ratio model fitted by
 * logistic regression on genuine vs impostor scores (needed for fusion); and,
 * when `ident` is given, the FPIR curve at its gallery size.  *json is
 * malloc'd (the caller frees it).  ABIS_E_INVALID when there are too few
 * scores (at least 10 genuine and 100 impostor). */
abis_status abis_calibration_fit(const double *genuine, size_t n_genuine, const double *impostor,
                                 size_t n_impostor, const abis_ident_scores *ident, char **json,
                                 abis_error *err);

/* Natural-log likelihood ratio of a score (genuine vs impostor), capped so
 * that LR <= 1 / FMR(score).  Returns 0 and sets *llr, or -1 when the
 * calibration has no likelihood-ratio model (the random-directions default). */
int abis_calibration_llr(const abis_calibration *c, double score, double *llr);

/* The false positive identification rate of a score against `gallery_size`
 * enrolments: from the FPIR curve when there is one, else 1 - (1 - FMR)^size. */
double abis_calibration_fpir(const abis_calibration *c, double score, size_t gallery_size);

/* The 1:N threshold for a target FPIR at `gallery_size` enrolments: from the
 * fitted FPIR curve when there is one (rescaled from its gallery size as
 * FPIR_M(s) = 1 - (1 - FPIR_N(s))^(M/N)), else from the FMR curve at
 * target / gallery_size. */
double abis_calibration_fpir_threshold(const abis_calibration *c, double target_fpir,
                                       size_t gallery_size);

/* The grid on which fusion holds impostor LLR distributions: values
 * LO + k * STEP for k in [0, BINS).  Step 0.05 in natural-log units is a
 * 5 % step in likelihood ratio. */
#define ABIS_FUSION_GRID_LO (-60.0)
#define ABIS_FUSION_GRID_STEP 0.05
#define ABIS_FUSION_GRID_BINS 2401

/* The impostor distribution of a calibration's normalised LLR on the fusion
 * grid (probability mass per grid value, each LLR rounded up to the grid)
 * and, in *survival (may be NULL), P(LLR >= grid value k) for k in
 * [0, BINS] (survival[BINS] = 0).  NULL when there is no LR model.  Owned by
 * the calibration. */
const double *abis_calibration_impostor_llr(const abis_calibration *c, const double **survival);

/* Score-level fusion by likelihood ratio of several comparisons (several
 * modalities, or several samples of one) assumed independent: the fused
 * log-LR is the sum of each one's, and its false match rate is computed
 * exactly under independence from the calibrations' impostor LLR
 * distributions (convolved on the fusion grid; rounding each LLR up makes
 * the result err high).  A missing modality is simply absent from the
 * arrays.  ABIS_E_INVALID when a calibration has no likelihood-ratio model. */
abis_status abis_fusion_lr(const abis_calibration *const *calibs, const double *scores, size_t n,
                           double *fused_llr, double *fused_fmr, abis_error *err);

#endif
