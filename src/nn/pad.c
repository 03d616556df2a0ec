/* pad.c: zero padding of rows, columns and channels (nn.h). */
#include <string.h>

#include "nn/nn.h"

nn_tensor nn_pad(nn_ctx *ctx, const nn_tensor *x, int top, int bottom, int left, int right)
{
    if (ctx->failed || !x->d)
        return nn_tensor_new(ctx, 0, 0, 0);
    nn_tensor y = nn_tensor_zeros(ctx, x->h + top + bottom, x->w + left + right, x->c);
    if (!y.d)
        return y;
    size_t row = (size_t)x->w * (size_t)x->c;
    for (int r = 0; r < x->h; r++)
        memcpy(y.d + ((size_t)(r + top) * y.w + left) * y.c, x->d + (size_t)r * row,
               row * sizeof(float));
    return y;
}

nn_tensor nn_pad_channels(nn_ctx *ctx, const nn_tensor *x, int c)
{
    if (ctx->failed || !x->d || c < x->c)
        return nn_tensor_new(ctx, 0, 0, 0);
    nn_tensor y = nn_tensor_zeros(ctx, x->h, x->w, c);
    if (!y.d)
        return y;
    size_t pixels = (size_t)x->h * (size_t)x->w;
    for (size_t p = 0; p < pixels; p++)
        memcpy(y.d + p * (size_t)c, x->d + p * (size_t)x->c, (size_t)x->c * sizeof(float));
    return y;
}
