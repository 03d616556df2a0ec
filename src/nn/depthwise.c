/*
 * depthwise.c: depthwise convolution (each channel with its own k x k
 * filter) and TensorFlow's separable convolution (depthwise, then 1x1), as
 * nn.h declares.
 *
 * Reference: loops in TensorFlow's order, one output value at a time.
 * Fast path: one output pixel at a time with the channels innermost, so each
 * filter tap is a contiguous multiply-add over all channels (vectorised by
 * the compiler) into a local accumulator; the epilogue is applied there and
 * the pixel stored once.
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

#define LANES 16 /* channels summed together: one AVX-512 register */

/* c = act(c * m + a) for n values (the epilogue of one block). */
static inline void block_post(float *restrict out, const float *restrict acc, size_t n,
                              const nn_gemm_post *post, size_t c0)
{
    if (!post) {
        for (size_t l = 0; l < n; l++)
            out[l] = acc[l];
        return;
    }
    const float *restrict m = post->mul + c0, *restrict a = post->add + c0;
    for (size_t l = 0; l < n; l++) {
        float t = acc[l] * m[l] + a[l];
        if (post->act == NN_ACT_RELU || post->act == NN_ACT_RELU6)
            t = t > 0.0f ? t : 0.0f;
        if (post->act == NN_ACT_RELU6)
            t = t < 6.0f ? t : 6.0f;
        if (post->act == NN_ACT_LEAKY)
            t = t > t * 0.10000000149011612f ? t : t * 0.10000000149011612f;
        out[l] = t;
    }
}

/* One output pixel at a time and LANES channels at a time: the taps summed
 * into an accumulator that stays in a register, then the epilogue, then one
 * store. */
NN_VECTOR_CLONES
static void depthwise_fast(const nn_tensor *x, const nn_conv *f, int stride, int py, int px,
                           const nn_gemm_post *post, nn_tensor *y)
{
    size_t c = (size_t)x->c;
    const float *in[64], *w[64]; /* the taps inside the image: at most 8 x 8 */
    for (int oy = 0; oy < y->h; oy++)
        for (int ox = 0; ox < y->w; ox++) {
            int taps = 0;
            for (int ky = 0; ky < f->kh; ky++) {
                int iy = oy * stride - py + ky;
                for (int kx = 0; kx < f->kw && iy >= 0 && iy < x->h; kx++) {
                    int ix = ox * stride - px + kx;
                    if (ix < 0 || ix >= x->w || taps == 64)
                        continue;
                    in[taps] = x->d + ((size_t)iy * x->w + ix) * c;
                    w[taps++] = f->w + ((size_t)ky * f->kw + kx) * c;
                }
            }
            float *out = y->d + ((size_t)oy * y->w + ox) * c;
            size_t c0 = 0;
            for (; c0 + LANES <= c; c0 += LANES) {
                float acc[LANES] = {0};
                for (int t = 0; t < taps; t++)
                    for (size_t l = 0; l < LANES; l++)
                        acc[l] += in[t][c0 + l] * w[t][c0 + l];
                block_post(out + c0, acc, LANES, post, c0);
            }
            if (c0 < c) {
                float acc[LANES] = {0};
                for (int t = 0; t < taps; t++)
                    for (size_t l = 0; l < c - c0; l++)
                        acc[l] += in[t][c0 + l] * w[t][c0 + l];
                block_post(out + c0, acc, c - c0, post, c0);
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
    nn_tensor y = nn_tensor_new(ctx, oh, ow, x->c);
    if (!y.d)
        return y;
    float m[NN_MAX_CHANNELS], a[NN_MAX_CHANNELS];
    nn_gemm_post gp;
    depthwise_fast(x, f, stride, nn_pad_before(x->h, f->kh, stride, pad),
                   nn_pad_before(x->w, f->kw, stride, pad),
                   nn_gemm_post_from(post, x->c, m, a, &gp), &y);
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
