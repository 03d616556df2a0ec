/*
 * pool.c: max and average pooling over k x k windows (nn.h), TensorFlow's
 * semantics: with SAME padding a window that reaches past the image takes
 * only the values inside it (the max of those; the average over their
 * count).  Plain loops: the pooled tensors of these networks are small.
 */
#include <float.h>

#include "nn/nn.h"

static nn_tensor pool(nn_ctx *ctx, const nn_tensor *x, int k, int stride, nn_padding pad,
                      int average)
{
    if (ctx->failed || !x->d)
        return nn_tensor_new(ctx, 0, 0, 0);
    int oh = nn_out_size(x->h, k, stride, pad), ow = nn_out_size(x->w, k, stride, pad);
    int py = nn_pad_before(x->h, k, stride, pad), px = nn_pad_before(x->w, k, stride, pad);
    nn_tensor y = nn_tensor_new(ctx, oh, ow, x->c);
    if (!y.d)
        return y;
    int c = x->c;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            float *out = y.d + ((size_t)oy * ow + ox) * c;
            int y0 = oy * stride - py, x0 = ox * stride - px;
            int count = 0;
            for (int ch = 0; ch < c; ch++)
                out[ch] = average ? 0.0f : -FLT_MAX;
            for (int ky = 0; ky < k; ky++) {
                int iy = y0 + ky;
                if (iy < 0 || iy >= x->h)
                    continue;
                for (int kx = 0; kx < k; kx++) {
                    int ix = x0 + kx;
                    if (ix < 0 || ix >= x->w)
                        continue;
                    const float *in = x->d + ((size_t)iy * x->w + ix) * c;
                    count++;
                    if (average)
                        for (int ch = 0; ch < c; ch++)
                            out[ch] += in[ch];
                    else
                        for (int ch = 0; ch < c; ch++)
                            out[ch] = in[ch] > out[ch] ? in[ch] : out[ch];
                }
            }
            if (average && count > 0)
                for (int ch = 0; ch < c; ch++)
                    out[ch] /= (float)count;
        }
    return y;
}

nn_tensor nn_max_pool(nn_ctx *ctx, const nn_tensor *x, int k, int stride, nn_padding pad)
{
    return pool(ctx, x, k, stride, pad, 0);
}

nn_tensor nn_avg_pool(nn_ctx *ctx, const nn_tensor *x, int k, int stride, nn_padding pad)
{
    return pool(ctx, x, k, stride, pad, 1);
}
