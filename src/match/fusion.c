/*
 * fusion.c: score-level fusion by likelihood ratio (abis_fusion_lr, match.h).
 *
 * Each comparison's calibration gives a log-likelihood ratio normalised so
 * that, for an impostor, E[LR] = 1 (calibration.c).  For independent
 * comparisons the fused LR is the product, still with E[LR] = 1 for an
 * impostor, so by Markov's inequality P(LR >= t | impostor) <= 1/t: deciding
 * "match" when the fused LR >= 1 / target holds the false match rate at or
 * below the target, whichever comparisons are present.  The bound is
 * conservative (it gives up some FNMR for a guarantee that needs no joint
 * model of the modalities).
 */
#include <math.h>

#include "match/match.h"

abis_status abis_fusion_lr(const abis_calibration *const *calibs, const double *scores, size_t n,
                           double *fused_llr, double *fmr_bound, abis_error *err)
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
    *fmr_bound = sum <= 0 ? 1.0 : exp(-sum);
    return ABIS_OK;
}
