/*
 * fusion.c: score-level fusion by likelihood ratio (abis_fusion_lr, match.h).
 *
 * Each comparison's calibration gives a log-likelihood ratio (LLR), and the
 * impostor distribution of that LLR on a fixed grid (calibration.c).  For
 * independent comparisons the fused LLR is the sum, and its false match rate
 * is P(L_1 + ... + L_n >= t | impostor):
 *   n = 1: the survival function of L_1 at t;
 *   n = 2: sum over grid values v of P(L_1 = v) * P(L_2 >= t - v), O(grid);
 *   n > 2: L_1 .. L_{n-1} are convolved first (O(grid^2) each), then as n = 2.
 * Deciding "match" when that FMR is at most the purpose's target holds the
 * target whichever comparisons are present; a missing modality is simply not
 * in the sum.  Likelihood-ratio weighting is what makes the sum the most
 * powerful test for a given FMR (Neyman-Pearson) when the calibrations are
 * right.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match/match.h"

/* P(L >= x) from a survival array on the grid (values rounded up). */
static double survival_at(const double *surv, double x)
{
    double k = ceil((x - ABIS_FUSION_GRID_LO) / ABIS_FUSION_GRID_STEP - 1e-9);
    if (k <= 0)
        return surv[0];
    if (k >= ABIS_FUSION_GRID_BINS)
        return 0;
    return surv[(size_t)k];
}

abis_status abis_fusion_lr(const abis_calibration *const *calibs, const double *scores, size_t n,
                           double *fused_llr, double *fused_fmr, abis_error *err)
{
    if (n == 0)
        return abis_error_set(err, ABIS_E_INVALID, "fusion needs at least one score");
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double l;
        if (abis_calibration_llr(calibs[i], scores[i], &l) != 0)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "comparison %zu: its calibration has no likelihood-ratio model "
                                  "(fit one with abis calibrate)",
                                  i + 1);
        sum += l;
    }
    *fused_llr = sum;
    const double *last_surv;
    abis_calibration_impostor_llr(calibs[n - 1], &last_surv);
    if (n == 1) {
        *fused_fmr = survival_at(last_surv, sum);
        return ABIS_OK;
    }
    /* The distribution of L_1 + ... + L_{n-1}: `len` values from `lo`. */
    const size_t G = ABIS_FUSION_GRID_BINS;
    size_t len = G;
    double lo = ABIS_FUSION_GRID_LO;
    double *acc = malloc(G * sizeof *acc);
    if (!acc)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    memcpy(acc, abis_calibration_impostor_llr(calibs[0], NULL), G * sizeof *acc);
    for (size_t i = 1; i + 1 < n; i++) {
        const double *pmf = abis_calibration_impostor_llr(calibs[i], NULL);
        double *next = calloc(len + G - 1, sizeof *next);
        if (!next) {
            free(acc);
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        }
        for (size_t a = 0; a < len; a++)
            if (acc[a] != 0)
                for (size_t b = 0; b < G; b++)
                    next[a + b] += acc[a] * pmf[b];
        free(acc);
        acc = next;
        len += G - 1;
        lo += ABIS_FUSION_GRID_LO;
    }
    double fmr = 0;
    for (size_t a = 0; a < len; a++)
        if (acc[a] != 0)
            fmr += acc[a] * survival_at(last_surv, sum - (lo + (double)a * ABIS_FUSION_GRID_STEP));
    free(acc);
    *fused_fmr = fmr > 1 ? 1 : fmr;
    return ABIS_OK;
}
