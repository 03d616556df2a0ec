/* tensor.c: tensors, the inference context and its scratch space (nn.h). */
#include <pthread.h>
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

/* The process's spare buffers: wiped buffers from ended contexts, handed to
 * the next ones (the networks ask for the same sizes every time). */
#define SPARE_SLOTS 64
static struct {
    float *d;
    size_t cap;
} spare[SPARE_SLOTS];
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;

/* A buffer of at least n floats: a spare one (the smallest that fits), or a
 * new one; NULL when out of memory. */
static float *buffer_take(size_t n, size_t *cap)
{
    pthread_mutex_lock(&spare_lock);
    int best = -1;
    for (int i = 0; i < SPARE_SLOTS; i++)
        if (spare[i].d && spare[i].cap >= n && (best < 0 || spare[i].cap < spare[best].cap))
            best = i;
    float *d = NULL;
    if (best >= 0) {
        d = spare[best].d;
        *cap = spare[best].cap;
        spare[best].d = NULL;
    }
    pthread_mutex_unlock(&spare_lock);
    if (d)
        return d;
    size_t bytes = (n * sizeof(float) + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
    d = aligned_alloc(NN_ALIGN, bytes ? bytes : NN_ALIGN);
    *cap = d ? bytes / sizeof(float) : 0;
    return d;
}

/* Wipe the first `dirty` floats of a buffer (they may derive from a photo)
 * and keep it as a spare, or free it when there are enough. */
static void buffer_release(float **buf, size_t *cap, size_t dirty)
{
    if (*buf) {
        sodium_memzero(*buf, (dirty < *cap ? dirty : *cap) * sizeof(float));
        int kept = 0;
        pthread_mutex_lock(&spare_lock);
        for (int i = 0; i < SPARE_SLOTS && !kept; i++)
            if (!spare[i].d) {
                spare[i].d = *buf;
                spare[i].cap = *cap;
                kept = 1;
            }
        pthread_mutex_unlock(&spare_lock);
        if (!kept)
            free(*buf);
    }
    *buf = NULL;
    *cap = 0;
}

void nn_spare_buffers_free(void)
{
    pthread_mutex_lock(&spare_lock);
    for (int i = 0; i < SPARE_SLOTS; i++) {
        free(spare[i].d); /* wiped when they became spares */
        spare[i].d = NULL;
    }
    pthread_mutex_unlock(&spare_lock);
}

void nn_ctx_free(nn_ctx *ctx)
{
    buffer_release(&ctx->scratch, &ctx->scratch_cap, ctx->scratch_cap);
    buffer_release(&ctx->panel, &ctx->panel_cap, ctx->panel_cap);
    for (int i = 0; i < NN_POOL_SLOTS; i++)
        buffer_release(&ctx->pool[i].d, &ctx->pool[i].cap, ctx->pool[i].dirty);
}

static float *buffer_get(nn_ctx *ctx, float **buf, size_t *cap, size_t n)
{
    if (ctx->failed)
        return NULL;
    if (n <= *cap)
        return *buf;
    buffer_release(buf, cap, *cap);
    *buf = buffer_take(n, cap);
    if (!*buf)
        ctx->failed = 1;
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

static const nn_tensor empty = {0, 0, 0, NULL, 0, 0, NULL};

nn_tensor nn_tensor_new(nn_ctx *ctx, int h, int w, int c)
{
    if (ctx->failed || h <= 0 || w <= 0 || c <= 0) {
        ctx->failed = 1;
        return empty;
    }
    nn_tensor t = {h, w, c, NULL, 0, 0, ctx};
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
        t.dirty = ctx->pool[best].dirty;
        ctx->pool[best].d = NULL;
    } else if (!(t.d = buffer_take(need, &t.cap))) {
        ctx->failed = 1;
        return empty;
    }
    if (t.dirty < need)
        t.dirty = need;
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
            ctx->pool[slot].dirty = t->dirty;
        } else {
            buffer_release(&t->d, &t->cap, t->dirty);
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
