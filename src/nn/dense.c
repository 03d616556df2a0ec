/*
 * dense.c: reductions and fully connected layers (nn.h): the mean over the
 * image (global average pooling) and a 1 x K by K x N matrix product, with a
 * plain-loop reference and cblas_sgemv as the fast path.
 */
#include <cblas.h>
#include <string.h>

#include "nn/nn.h"

void nn_mean_hw(const nn_tensor *x, float *out)
{
    size_t pixels = (size_t)x->h * (size_t)x->w;
    for (int k = 0; k < x->c; k++)
        out[k] = 0;
    for (size_t p = 0; p < pixels; p++)
        for (int k = 0; k < x->c; k++)
            out[k] += x->d[p * (size_t)x->c + (size_t)k];
    for (int k = 0; k < x->c; k++)
        out[k] /= (float)pixels;
}

void nn_matmul_ref(const float *in, size_t k, const float *w, const float *bias, size_t n_out,
                   float *out)
{
    for (size_t n = 0; n < n_out; n++) {
        float s = 0;
        for (size_t i = 0; i < k; i++)
            s += in[i] * w[i * n_out + n];
        out[n] = s + (bias ? bias[n] : 0.0f);
    }
}

void nn_matmul(nn_ctx *ctx, const float *in, size_t k, const float *w, const float *bias,
               size_t n_out, float *out)
{
    if (ctx->reference) {
        nn_matmul_ref(in, k, w, bias, n_out, out);
        return;
    }
    /* out = w^T in, with w row-major K x N. */
    if (bias)
        memcpy(out, bias, n_out * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)k, (int)n_out, 1.0f, w, (int)n_out, in, 1,
                bias ? 1.0f : 0.0f, out, 1);
}
