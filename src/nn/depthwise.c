/*
 * depthwise.c: depthwise convolution (each channel with its own k x k
 * filter) and TensorFlow's separable convolution (depthwise, then 1x1), as
 * nn.h declares.
 *
 * Reference: loops in TensorFlow's order, one output value at a time.
 * Fast path: one output pixel at a time with the channels innermost, so each
 * filter tap is a contiguous multiply-add over all channels (vectorised by
 * the compiler), then the fused epilogue.
 */
#include "nn/conv_internal.h"
#include "nn/nn.h"

nn_tensor nn_depthwise_ref(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                           nn_padding pad)
{
    if (ctx->failed || !x->d || x->c != f->cin)
        return nn_tensor_new(ctx, 0, 0, 0);
    int oh = nn_out_size(x->h, f->kh, stride, pad), ow = nn_out_size(x->w, f->kw, stride, pad);
    int py = nn_pad_before(x->h, f->kh, stride, pad), px = nn_pad_before(x->w, f->kw, stride, pad);
    nn_tensor y = nn_tensor_new(ctx, oh, ow, x->c);
    if (!y.d)
        return y;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int i = 0; i < x->c; i++) {
                float s = 0;
                for (int ky = 0; ky < f->kh; ky++)
                    for (int kx = 0; kx < f->kw; kx++) {
                        int iy = oy * stride - py + ky, ix = ox * stride - px + kx;
                        if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
                            continue;
                        s += x->d[((size_t)iy * x->w + ix) * x->c + i] *
                             f->w[((size_t)ky * f->kw + kx) * f->cin + i];
                    }
                y.d[((size_t)oy * ow + ox) * x->c + i] = s;
            }
    return y;
}

NN_VECTOR_CLONES
static void depthwise_fast(const nn_tensor *x, const nn_conv *f, int stride, int py, int px,
                           nn_tensor *y)
{
    size_t c = (size_t)x->c;
    for (int oy = 0; oy < y->h; oy++)
        for (int ox = 0; ox < y->w; ox++) {
            float *restrict out = y->d + ((size_t)oy * y->w + ox) * c;
            for (int ky = 0; ky < f->kh; ky++) {
                int iy = oy * stride - py + ky;
                if (iy < 0 || iy >= x->h)
                    continue;
                for (int kx = 0; kx < f->kw; kx++) {
                    int ix = ox * stride - px + kx;
                    if (ix < 0 || ix >= x->w)
                        continue;
                    const float *restrict in = x->d + ((size_t)iy * x->w + ix) * c;
                    const float *restrict w = f->w + ((size_t)ky * f->kw + kx) * c;
                    for (size_t i = 0; i < c; i++)
                        out[i] += in[i] * w[i];
                }
            }
        }
}

nn_tensor nn_depthwise_layer(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                             nn_padding pad, const nn_post *post)
{
    if (ctx->reference) {
        nn_tensor y = nn_depthwise_ref(ctx, x, f, stride, pad);
        nn_post_ref(&y, post);
        return y;
    }
    if (ctx->failed || !x->d || x->c != f->cin)
        return nn_tensor_new(ctx, 0, 0, 0);
    int oh = nn_out_size(x->h, f->kh, stride, pad), ow = nn_out_size(x->w, f->kw, stride, pad);
    nn_tensor y = nn_tensor_zeros(ctx, oh, ow, x->c); /* the accumulator */
    if (!y.d)
        return y;
    depthwise_fast(x, f, stride, nn_pad_before(x->h, f->kh, stride, pad),
                   nn_pad_before(x->w, f->kw, stride, pad), &y);
    nn_post_apply(y.d, (size_t)oh * ow, y.c, post);
    return y;
}

nn_tensor nn_separable_layer(nn_ctx *ctx, const nn_tensor *x, const nn_conv *depthwise,
                             const nn_conv *pointwise, int stride, nn_padding pad,
                             const nn_post *post)
{
    nn_tensor d = nn_depthwise_layer(ctx, x, depthwise, stride, pad, NULL);
    nn_tensor y = nn_conv_layer(ctx, &d, pointwise, 1, NN_VALID, post);
    nn_tensor_free(&d);
    return y;
}
