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

nn_tensor nn_tensor_new(nn_ctx *ctx, int h, int w, int c)
{
    nn_tensor t = {h, w, c, NULL};
    if (ctx->failed || h <= 0 || w <= 0 || c <= 0) {
        ctx->failed = 1;
        return (nn_tensor){0, 0, 0, NULL};
    }
    size_t bytes = nn_tensor_size(&t) * sizeof(float);
    bytes = (bytes + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
    t.d = aligned_alloc(NN_ALIGN, bytes);
    if (!t.d) {
        ctx->failed = 1;
        return (nn_tensor){0, 0, 0, NULL};
    }
    memset(t.d, 0, bytes);
    return t;
}

void nn_tensor_free(nn_tensor *t)
{
    if (t->d) {
        sodium_memzero(t->d, nn_tensor_size(t) * sizeof(float));
        free(t->d);
    }
    *t = (nn_tensor){0, 0, 0, NULL};
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
