/*
 * activation.c: element-wise operations (nn.h): bias, per-channel affine
 * (scale layers and folded batch normalisation), activations, residual adds
 * and input normalisation.  Each is one plain loop, which is both the
 * reference and the fast path (the compiler vectorises it).
 */
#include <math.h>
#include <stddef.h>

#include "nn/nn.h"

void nn_bias_add(nn_tensor *x, const float *bias)
{
    nn_channel_affine(x, NULL, bias);
}

void nn_channel_affine(nn_tensor *x, const float *mul, const float *add)
{
    if (!x->d || (!mul && !add))
        return;
    size_t pixels = (size_t)x->h * (size_t)x->w, c = (size_t)x->c;
    for (size_t p = 0; p < pixels; p++) {
        float *v = x->d + p * c;
        if (mul)
            for (size_t k = 0; k < c; k++)
                v[k] *= mul[k];
        if (add)
            for (size_t k = 0; k < c; k++)
                v[k] += add[k];
    }
}

/* tiny-yolov2's leaky is relu(x - 0.1 x) + 0.1 x with 0.1 as float32, which
 * is max(x, 0.1 x) up to rounding. */
#define LEAKY_SLOPE 0.10000000149011612f

void nn_activate(nn_tensor *x, nn_act act)
{
    if (!x->d || act == NN_ACT_NONE)
        return;
    size_t n = nn_tensor_size(x);
    float *v = x->d;
    switch (act) {
    case NN_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            v[i] = v[i] > 0 ? v[i] : 0;
        break;
    case NN_ACT_RELU6:
        for (size_t i = 0; i < n; i++)
            v[i] = v[i] > 0 ? (v[i] < 6 ? v[i] : 6) : 0;
        break;
    case NN_ACT_LEAKY:
        for (size_t i = 0; i < n; i++)
            v[i] = v[i] > 0 ? v[i] : v[i] * LEAKY_SLOPE;
        break;
    case NN_ACT_NONE:
        break;
    }
}

void nn_add(nn_tensor *x, const nn_tensor *y, nn_act act)
{
    if (!x->d || !y->d)
        return;
    size_t n = nn_tensor_size(x);
    for (size_t i = 0; i < n; i++)
        x->d[i] += y->d[i];
    nn_activate(x, act);
}

void nn_rescale(nn_tensor *x, float div, float sub)
{
    if (!x->d)
        return;
    size_t n = nn_tensor_size(x);
    for (size_t i = 0; i < n; i++)
        x->d[i] = x->d[i] / div - sub;
}

void nn_normalize_rgb(nn_tensor *x, const float mean[3], float div)
{
    if (!x->d || x->c != 3)
        return;
    size_t pixels = (size_t)x->h * (size_t)x->w;
    for (size_t p = 0; p < pixels; p++)
        for (int k = 0; k < 3; k++)
            x->d[p * 3 + k] = (x->d[p * 3 + k] - mean[k]) / div;
}

float nn_sigmoid(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

void nn_batchnorm_fold(const float *mean, const float *var, const float *gamma, const float *beta,
                       float eps, size_t n, float *mul, float *add)
{
    for (size_t i = 0; i < n; i++) {
        mul[i] = gamma[i] / sqrtf(var[i] + eps);
        add[i] = beta[i] - mean[i] * mul[i];
    }
}
