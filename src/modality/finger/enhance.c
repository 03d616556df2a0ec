/*
 * enhance.c: contextual enhancement of a fingerprint by oriented Gabor
 * filtering (Hong, Wan and Jain, "Fingerprint image enhancement: algorithm
 * and performance evaluation", IEEE PAMI 20(8), 1998).
 *
 * Each pixel of the foreground is filtered with the even-symmetric Gabor
 * kernel tuned to its block's ridge orientation and period:
 *
 *   g(u, v) = exp(-(u^2 / sa^2 + v^2 / sl^2) / 2) * cos(2 pi u / T)
 *
 * with u across the ridges, v along them, T the ridge period.  The kernel
 * passes the ridge wave and smooths along the ridges, which joins broken
 * ridges and removes pores, scratches and noise across them.  sa = 0.45 T
 * keeps about one ridge either side (Hong et al. used 4 px at T ~ 9 px);
 * sl = 0.65 T smooths over about two ridge periods along the flow.  The
 * kernel is made zero-mean, so the output's sign says ridge (< 0: ridges
 * are dark) or valley and binarisation needs no threshold.
 *
 * Orientations are quantised to FP_GABOR_ANGLES steps and periods to
 * FP_GABOR_PERIOD_STEP pixels; a kernel is built the first time a block
 * needs it.  All pixels of a block share its kernel, so the filter runs over
 * the block's rows eight outputs at a time, which compilers vectorise.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger_internal.h"

#define FP_GABOR_R 8 /* kernel radius: 17 x 17 taps */
#define FP_GABOR_K (2 * FP_GABOR_R + 1)
#define FP_GABOR_ANGLES 24 /* 7.5 degree steps */
#define FP_GABOR_PERIOD_STEP 0.5f
#define FP_GABOR_PERIODS ((int)((FP_PERIOD_MAX - FP_PERIOD_MIN) / FP_GABOR_PERIOD_STEP) + 1)

/* Build the kernel for orientation index a and period index p. */
static void gabor_kernel(int a, int p, float *k)
{
    float th = (float)M_PI * (float)a / FP_GABOR_ANGLES;
    float T = FP_PERIOD_MIN + (float)p * FP_GABOR_PERIOD_STEP;
    float sa = 0.45f * T, sl = 0.65f * T;
    /* ridge direction in image coordinates (y down): (cos th, -sin th) */
    float tx = cosf(th), ty = -sinf(th);
    double sum = 0, wsum = 0;
    for (int i = -FP_GABOR_R; i <= FP_GABOR_R; i++)
        for (int j = -FP_GABOR_R; j <= FP_GABOR_R; j++) {
            float v = (float)j * tx + (float)i * ty;  /* along the ridge */
            float u = (float)j * -ty + (float)i * tx; /* across it */
            float env = expf(-0.5f * (u * u / (sa * sa) + v * v / (sl * sl)));
            k[(i + FP_GABOR_R) * FP_GABOR_K + j + FP_GABOR_R] = env * cosf(2 * (float)M_PI * u / T);
            sum += k[(i + FP_GABOR_R) * FP_GABOR_K + j + FP_GABOR_R];
            wsum += env;
        }
    /* zero mean: remove the DC response in proportion to the envelope */
    for (int i = -FP_GABOR_R; i <= FP_GABOR_R; i++)
        for (int j = -FP_GABOR_R; j <= FP_GABOR_R; j++) {
            float u = (float)j * -ty + (float)i * tx, v = (float)j * tx + (float)i * ty;
            float env = expf(-0.5f * (u * u / (sa * sa) + v * v / (sl * sl)));
            k[(i + FP_GABOR_R) * FP_GABOR_K + j + FP_GABOR_R] -= (float)(sum / wsum) * env;
        }
}

abis_status fp_enhance(const fp_field *f, float *out, abis_error *err)
{
    int w = f->w, h = f->h, pw = w + 2 * FP_GABOR_R + 8, ph = h + 2 * FP_GABOR_R;
    size_t nk = (size_t)FP_GABOR_ANGLES * FP_GABOR_PERIODS;
    float *pad = calloc((size_t)pw * ph, sizeof *pad);
    float **bank = calloc(nk, sizeof *bank);
    abis_status st = ABIS_OK;
    if (!pad || !bank) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for enhancement");
        goto out;
    }
    /* the normalised image, zero outside the foreground and the image */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            pad[(size_t)(y + FP_GABOR_R) * pw + x + FP_GABOR_R] = f->mask[i] ? f->norm[i] : 0;
        }
    memset(out, 0, (size_t)w * h * sizeof *out);
    for (int by = 0; by < f->bh; by++)
        for (int bx = 0; bx < f->bw; bx++) {
            size_t b = (size_t)by * f->bw + bx;
            if (!f->fg[b])
                continue;
            int a = (int)lrintf(f->theta[b] / (float)M_PI * FP_GABOR_ANGLES) % FP_GABOR_ANGLES;
            int p = (int)lrintf((f->period[b] - FP_PERIOD_MIN) / FP_GABOR_PERIOD_STEP);
            p = p < 0 ? 0 : p >= FP_GABOR_PERIODS ? FP_GABOR_PERIODS - 1 : p;
            float **slot = &bank[(size_t)a * FP_GABOR_PERIODS + p];
            if (!*slot) {
                *slot = malloc(FP_GABOR_K * FP_GABOR_K * sizeof **slot);
                if (!*slot) {
                    st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for enhancement");
                    goto out;
                }
                gabor_kernel(a, p, *slot);
            }
            const float *k = *slot;
            int x0 = bx * FP_BLOCK;
            for (int y = by * FP_BLOCK; y < (by + 1) * FP_BLOCK && y < h; y++) {
                float acc[FP_BLOCK] = {0};
                for (int i = 0; i < FP_GABOR_K; i++) {
                    const float *row = pad + (size_t)(y + i) * pw + x0;
                    const float *kr = k + i * FP_GABOR_K;
                    for (int j = 0; j < FP_GABOR_K; j++) {
                        float kv = kr[j];
                        for (int t = 0; t < FP_BLOCK; t++)
                            acc[t] += kv * row[j + t];
                    }
                }
                for (int t = 0; t < FP_BLOCK && x0 + t < w; t++)
                    out[(size_t)y * w + x0 + t] = acc[t];
            }
        }
out:
    for (size_t i = 0; bank && i < nk; i++)
        free(bank[i]);
    free(bank);
    free(pad);
    return st;
}
