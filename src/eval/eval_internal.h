/*
 * eval_internal.h: helpers shared by the metric, DET, plot and report files of
 * src/eval/ (not part of the eval.h interface).
 *
 * All score arrays here are sorted ascending and hold finite values only
 * (abis_eval_sorted_copy checks that at the door).
 */
#ifndef ABIS_EVAL_INTERNAL_H
#define ABIS_EVAL_INTERNAL_H

#include <stddef.h>

#include "eval/eval.h"

/* Sort `a` ascending in place (introsort: no extra memory, O(n log n) worst
 * case).  `a` must hold no NaN. */
void abis_eval_sort(double *a, size_t n);

/* A malloc'd copy of src[0..n) sorted ascending (*out = NULL when n == 0);
 * the caller frees it.  ABIS_E_INVALID names the first non-finite score
 * ("genuine score 12 is nan"), `what` being "genuine", "impostor", ... */
abis_status abis_eval_sorted_copy(const double *src, size_t n, const char *what, double **out,
                                  abis_error *err);

/* How many of the sorted a[0..n) are < x (a lower bound). */
size_t abis_eval_count_below(const double *a, size_t n, double x);

/* Called for each operating point of a DET walk, thresholds descending;
 * return nonzero to stop the walk. */
typedef int (*abis_eval_det_visit)(void *ctx, double threshold, double fmr, double fnmr);

/* Visit every operating point (one per distinct score of either class) of
 * the sorted genuine gen[0..ng) and impostor imp[0..ni) scores, thresholds
 * descending.  Both classes must be non-empty. */
void abis_eval_det_walk(const double *gen, size_t ng, const double *imp, size_t ni,
                        abis_eval_det_visit visit, void *ctx);

/* The equal error rate of sorted, non-empty classes and the threshold where
 * it is reached (metrics.c documents the interpolation). */
void abis_eval_eer_sorted(const double *gen, size_t ng, const double *imp, size_t ni, double *eer,
                          double *threshold);

/* Copy `in` into out[0..cap) (NUL-terminated) with every byte that is not
 * part of a well-formed UTF-8 sequence, and every control character, replaced
 * by '?', so that XML and JSON writers accept it. */
void abis_eval_utf8_clean(const char *in, char *out, size_t cap);

#endif
