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

#endif
