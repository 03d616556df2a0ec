/* tensor.c: tensors, the inference context and its scratch space (nn.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

#define NN_ALIGN 64

void nn_ctx_init(nn_ctx *ctx, int reference)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->reference = reference;
}

/* Wipe (the scratch holds image-derived values) and free a buffer. */
static void buffer_free(float **buf, size_t *cap)
{
    if (*buf) {
        sodium_memzero(*buf, *cap * sizeof(float));
        free(*buf);
    }
    *buf = NULL;
    *cap = 0;
}

void nn_ctx_free(nn_ctx *ctx)
{
    buffer_free(&ctx->scratch, &ctx->scratch_cap);
    buffer_free(&ctx->panel, &ctx->panel_cap);
    for (int i = 0; i < NN_POOL_SLOTS; i++)
        buffer_free(&ctx->pool[i].d, &ctx->pool[i].cap);
}

static float *buffer_get(nn_ctx *ctx, float **buf, size_t *cap, size_t n)
{
    if (ctx->failed)
        return NULL;
    if (n <= *cap)
        return *buf;
    buffer_free(buf, cap);
    size_t bytes = (n * sizeof(float) + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
    *buf = aligned_alloc(NN_ALIGN, bytes);
    if (!*buf) {
        ctx->failed = 1;
        return NULL;
    }
    *cap = bytes / sizeof(float);
    return *buf;
}

float *nn_scratch(nn_ctx *ctx, size_t n)
{
    return buffer_get(ctx, &ctx->scratch, &ctx->scratch_cap, n);
}

float *nn_panel(nn_ctx *ctx, size_t n)
{
    return buffer_get(ctx, &ctx->panel, &ctx->panel_cap, n);
}

static const nn_tensor empty = {0, 0, 0, NULL, 0, NULL};

nn_tensor nn_tensor_new(nn_ctx *ctx, int h, int w, int c)
{
    if (ctx->failed || h <= 0 || w <= 0 || c <= 0) {
        ctx->failed = 1;
        return empty;
    }
    nn_tensor t = {h, w, c, NULL, 0, ctx};
    size_t need = nn_tensor_size(&t);
    /* the smallest pooled buffer that fits */
    int best = -1;
    for (int i = 0; i < NN_POOL_SLOTS; i++)
        if (ctx->pool[i].d && ctx->pool[i].cap >= need &&
            (best < 0 || ctx->pool[i].cap < ctx->pool[best].cap))
            best = i;
    if (best >= 0) {
        t.d = ctx->pool[best].d;
        t.cap = ctx->pool[best].cap;
        ctx->pool[best].d = NULL;
        return t;
    }
    size_t bytes = (need * sizeof(float) + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
    t.d = aligned_alloc(NN_ALIGN, bytes);
    if (!t.d) {
        ctx->failed = 1;
        return empty;
    }
    t.cap = bytes / sizeof(float);
    return t;
}

nn_tensor nn_tensor_zeros(nn_ctx *ctx, int h, int w, int c)
{
    nn_tensor t = nn_tensor_new(ctx, h, w, c);
    if (t.d)
        memset(t.d, 0, nn_tensor_size(&t) * sizeof(float));
    return t;
}

void nn_tensor_free(nn_tensor *t)
{
    if (t->d) {
        nn_ctx *ctx = t->pool;
        int slot = -1;
        for (int i = 0; ctx && i < NN_POOL_SLOTS && slot < 0; i++)
            if (!ctx->pool[i].d)
                slot = i;
        if (slot >= 0) {
            ctx->pool[slot].d = t->d;
            ctx->pool[slot].cap = t->cap;
        } else {
            buffer_free(&t->d, &t->cap);
        }
    }
    *t = empty;
}

int nn_out_size(int in, int k, int stride, nn_padding pad)
{
    if (pad == NN_SAME)
        return (in + stride - 1) / stride;
    return in < k ? 0 : (in - k) / stride + 1;
}

int nn_pad_before(int in, int k, int stride, nn_padding pad)
{
    if (pad == NN_VALID)
        return 0;
    int out = nn_out_size(in, k, stride, pad);
    int total = (out - 1) * stride + k - in;
    return total > 0 ? total / 2 : 0;
}
