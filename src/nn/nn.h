/*
 * nn.h: the small neural-network inference engine the face pipeline needs
 * (src/modality/face/): NHWC float32 tensors of one image, the operations
 * the four @vladmandic/face-api networks use, and a context that says which
 * implementation runs them.
 *
 * Not a general framework.  Each operation follows TensorFlow's definition
 * (padding "same" / "valid" as tf.conv2d computes it, tf.image.resize_bilinear
 * without half-pixel centres, ...), because the networks were trained and
 * are specified (the package's TypeScript source) in those terms.
 *
 * Two implementations of the heavy operations, chosen per context:
 *   reference  plain loops, one operation at a time, written to be read and
 *              checked against TensorFlow's definitions;
 *   fast       convolutions as im2col and a matrix product (our AVX-512 /
 *              AVX2 kernels, or cblas_sgemm from OpenBLAS on one thread: the
 *              caller's; gemm.h), 1x1 convolutions as one product, 3x3
 *              stride-1 convolutions on larger maps by Winograd F(2x2, 3x3),
 *              and the per-channel epilogue (bias, scale, activation) fused
 *              into the product's stores.
 * tests/test_nn_ops.c holds the two to within float rounding on every
 * operation and on whole networks.
 *
 * Errors: operations never fail on valid shapes except for memory.  They
 * report it through a sticky flag in the context (ctx->failed): once set,
 * every further operation returns an empty tensor at once, so a network is
 * written as straight-line code and checked once at its end.
 *
 * Thread safety: a context belongs to one thread; weights are read-only and
 * may be shared.
 */
#ifndef ABIS_NN_NN_H
#define ABIS_NN_NN_H

#include <stddef.h>

#include "abis/error.h"

/* The most channels a tensor of these networks has (SSD's 1024). */
#define NN_MAX_CHANNELS 2048

/* One image (batch 1) in NHWC order: d[(y * w + x) * c + k]. */
typedef struct nn_tensor {
    int h, w, c;
    float *d;            /* 64-byte aligned; NULL for an empty tensor (after a failure) */
    size_t cap;          /* floats allocated at d */
    size_t dirty;        /* floats at d that may hold values (to wipe) */
    struct nn_ctx *pool; /* the context whose buffers d came from */
} nn_tensor;

/* Buffers a context keeps for reuse: a network's layers allocate the same
 * sizes on every run, and reusing them spares the page faults and zeroing of
 * fresh memory (a tenth of the detector's time without it).  When a context
 * ends, its buffers are wiped and kept, process-wide, for the next one. */
#define NN_POOL_SLOTS 16

typedef struct nn_ctx {
    int reference;  /* 1: the plain-loop reference implementations */
    int failed;     /* sticky: an operation ran out of memory */
    float *scratch; /* im2col and Winograd buffers, grown as needed */
    size_t scratch_cap;
    float *panel; /* one expanded 8-bit filter panel (gemm.h) */
    size_t panel_cap;
    struct {
        float *d;
        size_t cap, dirty;
    } pool[NN_POOL_SLOTS]; /* freed tensors' buffers */
} nn_ctx;

/* Padding as TensorFlow computes it: VALID uses no padding; SAME pads so that
 * out = ceil(in / stride), total padding max((out - 1) * stride + k - in, 0),
 * the smaller half on the top/left. */
typedef enum nn_padding { NN_VALID = 0, NN_SAME = 1 } nn_padding;

typedef enum nn_act {
    NN_ACT_NONE = 0,
    NN_ACT_RELU,  /* max(x, 0) */
    NN_ACT_RELU6, /* min(max(x, 0), 6) (tf.clipByValue(x, 0, 6)) */
    NN_ACT_LEAKY  /* max(x, 0.1 x) (tiny-yolov2's leaky) */
} nn_act;

/* A convolution's weights in TensorFlow's HWIO layout: w[((ky * kw + kx) *
 * cin + i) * cout + o]; depthwise filters have cout = 1 and w[(ky * kw + kx)
 * * cin + i]. */
typedef struct nn_conv {
    int kh, kw, cin, cout;
    const float *w;
    /* The 8-bit codes w was restored from (w = q * q_scale + q_min), when the
     * model stores the filter so; else NULL. */
    const unsigned char *q;
    float q_scale, q_min;
    /* Made by nn_conv_prepare (NULL until then, or when not used): */
    float *wpack;         /* w packed for the matrix-product kernel (gemm.h) */
    unsigned char *qpack; /* or q packed, when there are codes */
    float *wino;          /* 3x3 filters transformed for Winograd: [16][cin][cout] */
    float *wino_pack;     /* each of the 16 packed */
} nn_conv;

/* What follows a convolution, per output channel o:
 *   y = act((conv + bias[o]) * mul[o] + add[o])
 * with any of bias, mul, add NULL when absent. */
typedef struct nn_post {
    const float *bias, *mul, *add;
    nn_act act;
} nn_post;

/* ---- context and tensors (tensor.c) ---------------------------------- */

void nn_ctx_init(nn_ctx *ctx, int reference);
/* Wipe the scratch and pooled buffers and give them back to the process's
 * spare buffers (every tensor made in the context must have been freed
 * first). */
void nn_ctx_free(nn_ctx *ctx);
/* Wipe and free the process's spare buffers (at exit, or to give memory
 * back). */
void nn_spare_buffers_free(void);
/* Scratch space of at least n floats (valid until the next call), or NULL
 * after setting ctx->failed. */
float *nn_scratch(nn_ctx *ctx, size_t n);
/* The same for the panel buffer. */
float *nn_panel(nn_ctx *ctx, size_t n);

/* A new tensor with its values not set, or an empty one (and ctx->failed)
 * when out of memory or ctx->failed is already set. */
nn_tensor nn_tensor_new(nn_ctx *ctx, int h, int w, int c);
/* The same, every value 0. */
nn_tensor nn_tensor_zeros(nn_ctx *ctx, int h, int w, int c);
/* Give the buffer back to its context for reuse (or, when the pool is full,
 * wipe it -- the values may derive from a photo -- and free it); leaves t
 * empty. */
void nn_tensor_free(nn_tensor *t);
static inline size_t nn_tensor_size(const nn_tensor *t)
{
    return (size_t)t->h * (size_t)t->w * (size_t)t->c;
}

/* Output size of a window op along one axis (TensorFlow's rule). */
int nn_out_size(int in, int k, int stride, nn_padding pad);
/* Padding before the first element along one axis (SAME: the smaller half). */
int nn_pad_before(int in, int k, int stride, nn_padding pad);

/* ---- convolution (conv.c) ---------------------------------------------- */

/* Convolution with `post` applied: the layer most networks are built of.
 * Fast path: im2col + sgemm (1x1: sgemm on the input), Winograd for 3x3
 * stride 1, fused epilogue.  Reference: nn_conv2d_ref, then nn_bias_add,
 * nn_channel_affine and nn_activate one after the other. */
nn_tensor nn_conv_layer(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                        nn_padding pad, const nn_post *post);
/* Precompute what the fast path needs of a filter that will see inputs of
 * in_h x in_w at `stride`: the filter packed for the product kernel and, when
 * the layer runs by Winograd, its transform.  ABIS_E_NOMEM.  Unprepared
 * filters work too, more slowly.  nn_conv_release frees what it made. */
abis_status nn_conv_prepare(nn_conv *f, int in_h, int in_w, int stride, abis_error *err);
void nn_conv_release(nn_conv *f);
/* The plain convolution, seven nested loops. */
nn_tensor nn_conv2d_ref(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                        nn_padding pad);

/* ---- depthwise convolution (depthwise.c) ------------------------------- */

/* Depthwise convolution (each channel with its own k x k filter), then
 * `post` (may be NULL). */
nn_tensor nn_depthwise_layer(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                             nn_padding pad, const nn_post *post);
nn_tensor nn_depthwise_ref(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, int stride,
                           nn_padding pad);
/* tf.separableConv2d (depthwise, then a 1x1 convolution), then `post`. */
nn_tensor nn_separable_layer(nn_ctx *ctx, const nn_tensor *x, const nn_conv *depthwise,
                             const nn_conv *pointwise, int stride, nn_padding pad,
                             const nn_post *post);

/* ---- element-wise (activation.c) --------------------------------------- */

/* In place: x[.., o] += bias[o]. */
void nn_bias_add(nn_tensor *x, const float *bias);
/* In place: x[.., o] = x[.., o] * mul[o] + add[o] (either may be NULL). */
void nn_channel_affine(nn_tensor *x, const float *mul, const float *add);
/* In place activation. */
void nn_activate(nn_tensor *x, nn_act act);
/* In place: x = act(x + y) (same shapes). */
void nn_add(nn_tensor *x, const nn_tensor *y, nn_act act);
/* In place: x[i] = x[i] / div - sub for every value (preprocessing). */
void nn_rescale(nn_tensor *x, float div, float sub);
/* In place: x[.., k] = (x[.., k] - mean[k]) / div, k < 3 (tfjs normalize, then div). */
void nn_normalize_rgb(nn_tensor *x, const float mean[3], float div);
/* The logistic function 1 / (1 + exp(-v)). */
float nn_sigmoid(float v);
/* Fold batch normalisation (x - mean) / sqrt(var + eps) * gamma + beta into
 * mul and add (n channels each). */
void nn_batchnorm_fold(const float *mean, const float *var, const float *gamma, const float *beta,
                       float eps, size_t n, float *mul, float *add);

/* ---- pooling (pool.c) -------------------------------------------------- */

/* k x k max pooling (SAME ignores the padding, as TensorFlow does). */
nn_tensor nn_max_pool(nn_ctx *ctx, const nn_tensor *x, int k, int stride, nn_padding pad);
/* k x k average pooling (SAME averages over the values inside the image). */
nn_tensor nn_avg_pool(nn_ctx *ctx, const nn_tensor *x, int k, int stride, nn_padding pad);

/* ---- shapes (pad.c) ---------------------------------------------------- */

/* Zero padding: `top` rows above, `bottom` below, `left` and `right` columns. */
nn_tensor nn_pad(nn_ctx *ctx, const nn_tensor *x, int top, int bottom, int left, int right);
/* Append zero channels up to c channels (tf.concat([x, zeros], 3)). */
nn_tensor nn_pad_channels(nn_ctx *ctx, const nn_tensor *x, int c);

/* ---- reductions and dense layers (dense.c) ----------------------------- */

/* Mean over height and width: out[c] (tf.mean(x, [1, 2])). */
void nn_mean_hw(const nn_tensor *x, float *out);
/* out[n] = sum_k in[k] * w[k * n_out + n] + (bias ? bias[n] : 0): tf.matMul of
 * a 1 x K row with a K x N matrix. */
void nn_matmul(nn_ctx *ctx, const float *in, size_t k, const float *w, const float *bias,
               size_t n_out, float *out);
void nn_matmul_ref(const float *in, size_t k, const float *w, const float *bias, size_t n_out,
                   float *out);

/* ---- resizing and network input (resize.c) ----------------------------- */

/* tf.image.resizeBilinear(x, [oh, ow], alignCorners false, halfPixelCenters
 * false): output pixel (y, x) samples input (y * h / oh, x * w / ow). */
nn_tensor nn_resize_bilinear(nn_ctx *ctx, const nn_tensor *x, int oh, int ow);

/* An 8-bit RGB image (rows top first, 3 bytes a pixel). */
typedef struct nn_image {
    int width, height;
    size_t stride; /* bytes a row */
    const unsigned char *rgb;
} nn_image;

/* What face-api's NetInput.toBatchTensor(size, center) makes of the image
 * region (x, y, w, h) (inside the image): the region as float RGB 0..255,
 * padded with zeros to a square (at the bottom/right, or split evenly with the
 * larger half after when `center`: face-api's padToSquare), then resized to
 * size x size by nn_resize_bilinear when it is not that size already.  The
 * fast path samples the image directly; the reference builds each step. */
nn_tensor nn_input_from_image(nn_ctx *ctx, const nn_image *img, int x, int y, int w, int h,
                              int size, int center);

#endif
