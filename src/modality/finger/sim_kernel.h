/*
 * sim_kernel.h: the body of the portable local-similarity kernel
 * (match_internal.h, fp_sim_fn), included by match.c (SWAR popcount) and
 * match_avx2.c (compiled with -mpopcnt, where SIM_POPCOUNT is the
 * instruction).  Define SIM_POPCOUNT(x) and SIM_NAME before including.
 *
 * gamma(a, b) = 1 - sqrt(|a ^ b|) / (sqrt(|a|) + sqrt(|b|)), with a and b
 * restricted to the cells valid in both cylinders and |.| the number of set
 * bits: the MCC bit-based similarity, the normalised Euclidean distance of
 * the two bit vectors.
 */
static int SIM_NAME(const fp_prep_view *a, int na, const fp_prep_view *b, int nb, int min_me,
                    const float *sqrt_t, uint8_t *out, uint16_t *list, uint16_t *cnt)
{
    int n = 0;
    for (int i = 0; i < na; i++) {
        const fp_cyl *ca = &a->cyl[i];
        uint8_t *row = out + (size_t)i * nb;
        for (int j = 0; j < nb; j++) {
            row[j] = 0;
            const fp_cyl *cb = &b->cyl[j];
            if (ca->full && cb->full) {
                /* both masks are the whole circle: only the differing bits */
                int nx = 0;
                for (int w = 0; w < MCC_WORDS; w++)
                    nx += (int)SIM_POPCOUNT(ca->bits[w] ^ cb->bits[w]);
                n = fp_sim_emit(row, i, j, (int)ca->ones, (int)cb->ones, nx, sqrt_t, list, cnt, n);
                continue;
            }
            uint64_t m[MCC_MASK_WORDS];
            int common = 0;
            for (int w = 0; w < MCC_MASK_WORDS; w++) {
                m[w] = ca->mask[w] & cb->mask[w];
                common += (int)SIM_POPCOUNT(m[w]);
            }
            if (common < min_me)
                continue;
            int na_ = 0, nb_ = 0, nx = 0;
            for (int k = 0; k < MCC_ND; k++)
                for (int w = 0; w < MCC_MASK_WORDS; w++) {
                    uint64_t x = ca->bits[k * MCC_MASK_WORDS + w] & m[w];
                    uint64_t y = cb->bits[k * MCC_MASK_WORDS + w] & m[w];
                    na_ += (int)SIM_POPCOUNT(x);
                    nb_ += (int)SIM_POPCOUNT(y);
                    nx += (int)SIM_POPCOUNT(x ^ y);
                }
            n = fp_sim_emit(row, i, j, na_, nb_, nx, sqrt_t, list, cnt, n);
        }
    }
    return n;
}
