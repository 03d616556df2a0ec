/*
 * conv.c: 2-D convolution (nn.h).
 *
 * Reference: seven nested loops over TensorFlow's definition, then the
 * epilogue as separate element-wise operations.
 *
 * Fast path, by shape:
 *   1x1, stride 1    the input is already the im2col matrix: one product
 *                    (pixels x cin) * (cin x cout);
 *   3x3, stride 1    Winograd F(2x2, 3x3) (winograd.c);
 *   otherwise        im2col by bands of output rows (each band's matrix
 *                    small enough to stay in cache), one product per band.
 * The HWIO filter is the product's right-hand matrix as it is stored, and the
 * epilogue (bias, scale, activation) runs over each band while it is hot.
 * The matrix products go to the best kernel for the CPU (gemm.h), run on the
 * calling thread: requests run in parallel, each on one core.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_internal.h"
#include "nn/gemm.h"
#include "nn/nn.h"

nn_tensor nn_conv2d_ref(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                        nn_padding pad)
{
    if (ctx->failed || !x->d || x->c != f->cin)
        return nn_tensor_new(ctx, 0, 0, 0);
    int oh = nn_out_size(x->h, f->kh, stride, pad), ow = nn_out_size(x->w, f->kw, stride, pad);
    int py = nn_pad_before(x->h, f->kh, stride, pad), px = nn_pad_before(x->w, f->kw, stride, pad);
    nn_tensor y = nn_tensor_new(ctx, oh, ow, f->cout);
    if (!y.d)
        return y;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int o = 0; o < f->cout; o++) {
                float s = 0;
                for (int ky = 0; ky < f->kh; ky++) {
                    int iy = oy * stride - py + ky;
                    if (iy < 0 || iy >= x->h)
                        continue;
                    for (int kx = 0; kx < f->kw; kx++) {
                        int ix = ox * stride - px + kx;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        for (int i = 0; i < f->cin; i++)
                            s += x->d[((size_t)iy * x->w + ix) * x->c + i] *
                                 f->w[(((size_t)ky * f->kw + kx) * f->cin + i) * f->cout + o];
                    }
                }
                y.d[((size_t)oy * ow + ox) * f->cout + o] = s;
            }
    return y;
}

void nn_post_apply(float *v, size_t pixels, int c, const nn_post *post)
{
    float m[NN_MAX_CHANNELS], a[NN_MAX_CHANNELS];
    nn_gemm_post gp;
    if (nn_gemm_post_from(post, c, m, a, &gp))
        nn_gemm_post_apply(v, (int)pixels, c, c, &gp);
}

void nn_post_ref(nn_tensor *y, const nn_post *post)
{
    if (!post)
        return;
    nn_bias_add(y, post->bias);
    nn_channel_affine(y, post->mul, post->add);
    nn_activate(y, post->act);
}

int nn_conv_winograd(const nn_conv *f, int stride, int in_h, int in_w)
{
    /* Winograd pays off once there are channels to sum over (not on RGB) and
     * enough 2x2 tiles to share each transformed filter (measured on the
     * descriptor network: below 16 x 16 outputs, streaming the 16/9 larger
     * transformed filters costs more than the multiplications saved). */
    return f->kh == 3 && f->kw == 3 && stride == 1 && f->cin >= 8 && in_h >= 16 && in_w >= 16;
}

abis_status nn_conv_prepare(nn_conv *f, int in_h, int in_w, int stride, abis_error *err)
{
    int pack = nn_gemm_reads_packed();
    if (nn_conv_winograd(f, stride, in_h, in_w)) {
        if (!f->wino && nn_winograd_prepare(f, pack) != 0) {
            nn_conv_release(f);
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory preparing a convolution");
        }
        return ABIS_OK;
    }
    if (!pack || f->wpack || f->qpack)
        return ABIS_OK;
    int k = f->kh * f->kw * f->cin;
    size_t n = nn_gemm_packed_size(k, f->cout);
    if (f->q) {
        f->qpack = malloc(n);
        if (f->qpack)
            nn_gemm_pack_q(k, f->cout, f->q, f->cout, f->qpack);
    } else {
        f->wpack = malloc(n * sizeof(float));
        if (f->wpack)
            nn_gemm_pack(k, f->cout, f->w, f->cout, f->wpack);
    }
    if (!f->wpack && !f->qpack)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory preparing a convolution");
    return ABIS_OK;
}

void nn_conv_release(nn_conv *f)
{
    free(f->wpack);
    free(f->qpack);
    free(f->wino);
    free(f->wino_pack);
    f->wpack = f->wino = f->wino_pack = NULL;
    f->qpack = NULL;
}

const nn_gemm_post *nn_gemm_post_from(const nn_post *post, int n, float *m, float *a,
                                      nn_gemm_post *out)
{
    if (!post || (!post->bias && !post->mul && !post->add && post->act == NN_ACT_NONE))
        return NULL;
    assert(n <= NN_MAX_CHANNELS);
    for (int k = 0; k < n; k++) {
        float mul = post->mul ? post->mul[k] : 1.0f, bias = post->bias ? post->bias[k] : 0.0f;
        m[k] = mul;
        a[k] = bias * mul + (post->add ? post->add[k] : 0.0f);
    }
    *out = (nn_gemm_post){m, a, (int)post->act};
    return out;
}

/* The product's right-hand matrix: the filter (k x cout) in its forms. */
static nn_gemm_b filter_matrix(const nn_conv *f)
{
    return (nn_gemm_b){.b = f->w,
                       .ldb = f->cout,
                       .pack = f->wpack,
                       .qpack = f->qpack,
                       .qscale = f->q_scale,
                       .qmin = f->q_min};
}

/* Floats of im2col matrix per band: big enough for sgemm to run at speed,
 * small enough to stay in the core's L2 cache. */
#define BAND_FLOATS (128u * 1024u)

NN_VECTOR_CLONES
static void im2col_rows(const nn_tensor *x, const nn_conv *f, int stride, int py, int px, int ow,
                        int oy0, int oy1, float *col)
{
    size_t kcin = (size_t)f->cin;
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < ow; ox++) {
            for (int ky = 0; ky < f->kh; ky++) {
                int iy = oy * stride - py + ky;
                for (int kx = 0; kx < f->kw; kx++) {
                    int ix = ox * stride - px + kx;
                    if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
                        memset(col, 0, kcin * sizeof(float));
                    else
                        memcpy(col, x->d + ((size_t)iy * x->w + ix) * kcin, kcin * sizeof(float));
                    col += kcin;
                }
            }
        }
}

nn_tensor nn_conv_layer(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                        nn_padding pad, const nn_post *post)
{
    if (ctx->reference) {
        nn_tensor y = nn_conv2d_ref(ctx, x, f, stride, pad);
        nn_post_ref(&y, post);
        return y;
    }
    if (ctx->failed || !x->d || x->c != f->cin)
        return nn_tensor_new(ctx, 0, 0, 0);
    if (nn_conv_winograd(f, stride, x->h, x->w))
        return nn_winograd_conv3x3(ctx, x, f, pad, post);
    int oh = nn_out_size(x->h, f->kh, stride, pad), ow = nn_out_size(x->w, f->kw, stride, pad);
    int py = nn_pad_before(x->h, f->kh, stride, pad), px = nn_pad_before(x->w, f->kw, stride, pad);
    nn_tensor y = nn_tensor_new(ctx, oh, ow, f->cout);
    if (!y.d)
        return y;
    int n = f->cout;
    if (f->kh == 1 && f->kw == 1 && stride == 1) {
        int m = oh * ow;
        nn_gemm_b b = filter_matrix(f);
        float *panel = f->qpack ? nn_panel(ctx, (size_t)f->cin * NN_GEMM_PANEL) : NULL;
        if (f->qpack && !panel) {
            nn_tensor_free(&y);
            return y;
        }
        float pm[NN_MAX_CHANNELS], pa[NN_MAX_CHANNELS];
        nn_gemm_post gp;
        nn_gemm(m, n, f->cin, x->d, f->cin, &b, panel, y.d, n,
                nn_gemm_post_from(post, n, pm, pa, &gp));
        return y;
    }
    int k = f->kh * f->kw * f->cin;
    size_t row_floats = (size_t)ow * (size_t)k;
    int band = (int)(BAND_FLOATS / row_floats);
    if (band < 1)
        band = 1;
    if (band > oh)
        band = oh;
    float *col = nn_scratch(ctx, (size_t)band * row_floats);
    float *panel = f->qpack ? nn_panel(ctx, (size_t)k * NN_GEMM_PANEL) : NULL;
    nn_gemm_b b = filter_matrix(f);
    if (!col || (f->qpack && !panel)) {
        nn_tensor_free(&y);
        return y;
    }
    float pm[NN_MAX_CHANNELS], pa[NN_MAX_CHANNELS];
    nn_gemm_post gp;
    const nn_gemm_post *gpost = nn_gemm_post_from(post, n, pm, pa, &gp);
    for (int oy0 = 0; oy0 < oh; oy0 += band) {
        int oy1 = oy0 + band < oh ? oy0 + band : oh;
        int m = (oy1 - oy0) * ow;
        im2col_rows(x, f, stride, py, px, ow, oy0, oy1, col);
        float *out = y.d + (size_t)oy0 * ow * n;
        nn_gemm(m, n, k, col, k, &b, panel, out, n, gpost);
    }
    return y;
}
