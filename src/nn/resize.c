/*
 * resize.c: TensorFlow's bilinear resize and the networks' input tensors
 * (nn.h).
 *
 * tf.image.resizeBilinear with alignCorners and halfPixelCenters false, as
 * tfjs's wasm backend computes it in float32: scale = in / out; output row y
 * samples input row v = y * scale between rows floor(v) and min(ceil(v),
 * in - 1) with weight v - floor(v); columns likewise; the two horizontal
 * interpolations first, then the vertical one.
 */
#include <math.h>
#include <stdlib.h>

#include "nn/nn.h"

/* Where output index o samples: the two source indices and the weight. */
typedef struct lerp_at {
    int lo, hi;
    float frac;
} lerp_at;

static lerp_at lerp_index(int o, float scale, int in)
{
    float v = (float)o * scale;
    float fl = floorf(v);
    int lo = (int)fl, hi = (int)ceilf(v);
    if (lo < 0)
        lo = 0;
    if (hi > in - 1)
        hi = in - 1;
    return (lerp_at){lo, hi, v - fl};
}

static float lerp2(float tl, float tr, float bl, float br, float fx, float fy)
{
    float top = tl + (tr - tl) * fx;
    float bottom = bl + (br - bl) * fx;
    return top + (bottom - top) * fy;
}

nn_tensor nn_resize_bilinear(nn_ctx *ctx, const nn_tensor *x, int oh, int ow)
{
    if (ctx->failed || !x->d)
        return nn_tensor_new(ctx, 0, 0, 0);
    nn_tensor y = nn_tensor_new(ctx, oh, ow, x->c);
    if (!y.d)
        return y;
    float sy = (float)x->h / (float)oh, sx = (float)x->w / (float)ow;
    int c = x->c;
    for (int oy = 0; oy < oh; oy++) {
        lerp_at ly = lerp_index(oy, sy, x->h);
        for (int ox = 0; ox < ow; ox++) {
            lerp_at lx = lerp_index(ox, sx, x->w);
            const float *tl = x->d + ((size_t)ly.lo * x->w + lx.lo) * c;
            const float *tr = x->d + ((size_t)ly.lo * x->w + lx.hi) * c;
            const float *bl = x->d + ((size_t)ly.hi * x->w + lx.lo) * c;
            const float *br = x->d + ((size_t)ly.hi * x->w + lx.hi) * c;
            float *out = y.d + ((size_t)oy * ow + ox) * c;
            for (int k = 0; k < c; k++)
                out[k] = lerp2(tl[k], tr[k], bl[k], br[k], lx.frac, ly.frac);
        }
    }
    return y;
}

/* face-api's padToSquare: the zeros before and after the shorter side. */
static void square_padding(int w, int h, int center, int *before, int *after)
{
    int diff = w > h ? w - h : h - w;
    /* paddingAmount = Math.round(diff * (center ? 0.5 : 1)) goes after; the
     * rest before (only when centring).  Math.round rounds halves up. */
    *after = center ? (diff + 1) / 2 : diff;
    *before = diff - *after;
}

static nn_tensor input_ref(nn_ctx *ctx, const nn_image *img, int x0, int y0, int w, int h, int size,
                           int center)
{
    nn_tensor region = nn_tensor_new(ctx, h, w, 3);
    if (!region.d)
        return region;
    for (int r = 0; r < h; r++) {
        const unsigned char *src = img->rgb + (size_t)(y0 + r) * img->stride + (size_t)x0 * 3;
        for (int i = 0; i < w * 3; i++)
            region.d[(size_t)r * w * 3 + i] = (float)src[i];
    }
    int before, after;
    square_padding(w, h, center, &before, &after);
    nn_tensor sq = h > w ? nn_pad(ctx, &region, 0, 0, before, after)
                         : nn_pad(ctx, &region, before, after, 0, 0);
    nn_tensor_free(&region);
    if (!sq.d || (sq.h == size && sq.w == size))
        return sq;
    nn_tensor out = nn_resize_bilinear(ctx, &sq, size, size);
    nn_tensor_free(&sq);
    return out;
}

nn_tensor nn_input_from_image(nn_ctx *ctx, const nn_image *img, int x0, int y0, int w, int h,
                              int size, int center)
{
    if (ctx->failed || w <= 0 || h <= 0 || x0 < 0 || y0 < 0 || x0 + w > img->width ||
        y0 + h > img->height || size <= 0)
        return nn_tensor_new(ctx, 0, 0, 0);
    if (ctx->reference)
        return input_ref(ctx, img, x0, y0, w, h, size, center);
    int side = w > h ? w : h, before, after;
    square_padding(w, h, center, &before, &after);
    int py = h < w ? before : 0, px = w < h ? before : 0;
    nn_tensor out = nn_tensor_new(ctx, size, size, 3);
    if (!out.d)
        return out;
    /* The same values without building the padded square: per output
     * column the two source columns (-1: a padding zero) and the weight. */
    int *cols = malloc((size_t)size * 2 * sizeof *cols);
    float *fx = malloc((size_t)size * sizeof *fx);
    if (!cols || !fx) {
        free(cols);
        free(fx);
        nn_tensor_free(&out);
        ctx->failed = 1;
        return out;
    }
    float scale = (float)side / (float)size;
    for (int ox = 0; ox < size; ox++) {
        lerp_at lx = side == size ? (lerp_at){ox, ox, 0} : lerp_index(ox, scale, side);
        int lo = lx.lo - px, hi = lx.hi - px;
        cols[2 * ox] = lo >= 0 && lo < w ? lo : -1;
        cols[2 * ox + 1] = hi >= 0 && hi < w ? hi : -1;
        fx[ox] = lx.frac;
    }
    static const unsigned char zero[3] = {0, 0, 0};
    for (int oy = 0; oy < size; oy++) {
        lerp_at ly = side == size ? (lerp_at){oy, oy, 0} : lerp_index(oy, scale, side);
        int rlo = ly.lo - py, rhi = ly.hi - py;
        const unsigned char *top =
            rlo >= 0 && rlo < h ? img->rgb + (size_t)(y0 + rlo) * img->stride + (size_t)x0 * 3
                                : NULL;
        const unsigned char *bot =
            rhi >= 0 && rhi < h ? img->rgb + (size_t)(y0 + rhi) * img->stride + (size_t)x0 * 3
                                : NULL;
        float *o = out.d + (size_t)oy * size * 3;
        for (int ox = 0; ox < size; ox++, o += 3) {
            int cl = cols[2 * ox], ch = cols[2 * ox + 1];
            const unsigned char *tl = top && cl >= 0 ? top + cl * 3 : zero;
            const unsigned char *tr = top && ch >= 0 ? top + ch * 3 : zero;
            const unsigned char *bl = bot && cl >= 0 ? bot + cl * 3 : zero;
            const unsigned char *br = bot && ch >= 0 ? bot + ch * 3 : zero;
            for (int k = 0; k < 3; k++)
                o[k] = lerp2(tl[k], tr[k], bl[k], br[k], fx[ox], ly.frac);
        }
    }
    free(cols);
    free(fx);
    return out;
}
