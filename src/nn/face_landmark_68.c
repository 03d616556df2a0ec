/*
 * face_landmark_68.c: the 68-point facial landmark network of
 * @vladmandic/face-api (src/faceLandmarkNet/FaceLandmark68Net.ts on
 * src/faceFeatureExtractor/FaceFeatureExtractor.ts).
 *
 *   input    the face box's region, centred on a square, resized to 112 x 112,
 *            minus the mean (122.782, 117.001, 104.298), / 255
 *   4 dense blocks (32, 64, 128, 256 channels), each halving the size:
 *            out1 = relu(conv0(x))  (dense0: 3x3 stride 2; then separable, stride 2)
 *            out2 = sep1(out1), out3 = sep2(relu(out1 + out2)),
 *            out4 = sep3(relu(out1 + out2 + out3)),
 *            block = relu(out1 + out2 + out3 + out4)      (denseBlock.ts)
 *   average pool 7x7 stride 2 valid, then a 256 x 136 dense layer
 *   decoding: (out * 112 - padding) / scaled size for x and y of each point,
 *            where the padding is half the difference of the scaled sides
 *            (FaceLandmark68NetBase.postProcess): positions as fractions of the
 *            region's width and height.
 */
#include <stdio.h>
#include <stdlib.h>

#include "nn/face_nets.h"
#include "nn/weights.h"

typedef struct sep {
    nn_conv dw, pw;
    const float *bias;
} sep;

typedef struct dense {
    nn_conv conv0; /* dense0 only: a plain 3x3 convolution */
    const float *conv0_bias;
    sep s[4]; /* s[0]: conv0 of dense1..3 */
} dense;

struct nn_landmarks {
    nn_weights *w;
    dense d[4];
    const float *fc_w, *fc_b;
};

static abis_status load_sep(const nn_weights *w, const char *prefix, int cin, int cout, int in,
                            int stride, sep *s, abis_error *err)
{
    char name[128];
    snprintf(name, sizeof name, "%s/depthwise_filter", prefix);
    abis_status st = nn_weights_conv(w, name, 3, 3, cin, 1, &s->dw, err);
    snprintf(name, sizeof name, "%s/pointwise_filter", prefix);
    if (st == ABIS_OK)
        st = nn_weights_conv(w, name, 1, 1, cin, cout, &s->pw, err);
    snprintf(name, sizeof name, "%s/bias", prefix);
    if (st == ABIS_OK && !(s->bias = nn_weights_vec(w, name, cout, err)))
        st = err ? err->status : ABIS_E_INVALID;
    int out = nn_out_size(in, 3, stride, NN_SAME);
    if (st == ABIS_OK)
        st = nn_conv_prepare(&s->pw, out, out, 1, err);
    return st;
}

void nn_landmarks_free(nn_landmarks *net)
{
    if (!net)
        return;
    for (int b = 0; b < 4; b++) {
        nn_conv_release(&net->d[b].conv0);
        for (int i = 0; i < 4; i++)
            nn_conv_release(&net->d[b].s[i].pw);
    }
    nn_weights_free(net->w);
    free(net);
}

abis_status nn_landmarks_load(const char *dir, nn_landmarks **out, abis_error *err)
{
    *out = NULL;
    nn_landmarks *net = calloc(1, sizeof *net);
    if (!net)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory loading the landmark network");
    abis_status st = nn_weights_load(dir, "face_landmark_68_model", &net->w, err);
    static const int width[4] = {32, 64, 128, 256};
    int cin = 3, size = NN_LANDMARK_INPUT;
    for (int b = 0; b < 4 && st == ABIS_OK; b++) {
        dense *d = &net->d[b];
        int c = width[b];
        char prefix[64];
        if (b == 0) {
            st = nn_weights_conv(net->w, "dense0/conv0/filters", 3, 3, cin, c, &d->conv0, err);
            if (st == ABIS_OK &&
                !(d->conv0_bias = nn_weights_vec(net->w, "dense0/conv0/bias", c, err)))
                st = err ? err->status : ABIS_E_INVALID;
            if (st == ABIS_OK)
                st = nn_conv_prepare(&d->conv0, size, size, 2, err);
        } else {
            snprintf(prefix, sizeof prefix, "dense%d/conv0", b);
            st = load_sep(net->w, prefix, cin, c, size, 2, &d->s[0], err);
        }
        size = nn_out_size(size, 3, 2, NN_SAME);
        for (int i = 1; i < 4 && st == ABIS_OK; i++) {
            snprintf(prefix, sizeof prefix, "dense%d/conv%d", b, i);
            st = load_sep(net->w, prefix, c, c, size, 1, &d->s[i], err);
        }
        cin = c;
    }
    if (st == ABIS_OK) {
        int shape[2] = {256, 2 * NN_LANDMARKS};
        net->fc_w = nn_weights_get(net->w, "fc/weights", 2, shape, err);
        net->fc_b = net->fc_w ? nn_weights_vec(net->w, "fc/bias", 2 * NN_LANDMARKS, err) : NULL;
        if (!net->fc_b)
            st = err ? err->status : ABIS_E_INVALID;
    }
    if (st != ABIS_OK) {
        nn_landmarks_free(net);
        return st;
    }
    *out = net;
    return ABIS_OK;
}

static nn_tensor run_sep(nn_ctx *ctx, const nn_tensor *x, const sep *s, int stride, nn_act act)
{
    nn_post post = {s->bias, NULL, NULL, act};
    return nn_separable_layer(ctx, x, &s->dw, &s->pw, stride, NN_SAME, &post);
}

/* relu(t[0] + (t[1] + (... + t[n-1]))), summed in face-api's order, into a
 * new tensor. */
static nn_tensor sum_relu(nn_ctx *ctx, nn_tensor *const *t, int n)
{
    nn_tensor s = nn_tensor_new(ctx, t[0]->h, t[0]->w, t[0]->c);
    if (!s.d)
        return s;
    size_t count = nn_tensor_size(&s);
    for (size_t i = 0; i < count; i++) {
        float v = t[n - 1]->d[i];
        for (int k = n - 2; k >= 0; k--)
            v = t[k]->d[i] + v;
        s.d[i] = v > 0 ? v : 0;
    }
    return s;
}

static nn_tensor dense_block(nn_ctx *ctx, const nn_tensor *x, const dense *d, int first)
{
    nn_tensor out[4];
    if (first) {
        nn_post post = {d->conv0_bias, NULL, NULL, NN_ACT_RELU};
        out[0] = nn_conv_layer(ctx, x, &d->conv0, 2, NN_SAME, &post);
    } else {
        out[0] = run_sep(ctx, x, &d->s[0], 2, NN_ACT_RELU);
    }
    out[1] = run_sep(ctx, &out[0], &d->s[1], 1, NN_ACT_NONE);
    nn_tensor *t[4] = {&out[0], &out[1], &out[2], &out[3]};
    nn_tensor in = out[1].d ? sum_relu(ctx, t, 2) : nn_tensor_new(ctx, 0, 0, 0);
    out[2] = run_sep(ctx, &in, &d->s[2], 1, NN_ACT_NONE);
    nn_tensor_free(&in);
    in = out[2].d ? sum_relu(ctx, t, 3) : nn_tensor_new(ctx, 0, 0, 0);
    out[3] = run_sep(ctx, &in, &d->s[3], 1, NN_ACT_NONE);
    nn_tensor_free(&in);
    nn_tensor y = out[3].d ? sum_relu(ctx, t, 4) : nn_tensor_new(ctx, 0, 0, 0);
    for (int i = 0; i < 4; i++)
        nn_tensor_free(&out[i]);
    return y;
}

abis_status nn_landmarks_run(nn_ctx *ctx, const nn_landmarks *net, const nn_image *img, int x,
                             int y, int w, int h, float pts[2 * NN_LANDMARKS], abis_error *err)
{
    static const float mean[3] = {122.782f, 117.001f, 104.298f};
    nn_tensor t = nn_input_from_image(ctx, img, x, y, w, h, NN_LANDMARK_INPUT, 1);
    nn_normalize_rgb(&t, mean, 255.0f);
    for (int b = 0; b < 4; b++) {
        nn_tensor next = dense_block(ctx, &t, &net->d[b], b == 0);
        nn_tensor_free(&t);
        t = next;
    }
    nn_tensor pooled = nn_avg_pool(ctx, &t, 7, 2, NN_VALID);
    nn_tensor_free(&t);
    if (ctx->failed || pooled.c != 256 || pooled.h != 1 || pooled.w != 1) {
        nn_tensor_free(&pooled);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory finding face landmarks");
    }
    float out[2 * NN_LANDMARKS];
    nn_matmul(ctx, pooled.d, 256, net->fc_w, net->fc_b, 2 * NN_LANDMARKS, out);
    nn_tensor_free(&pooled);
    /* postProcess: undo the square padding, in the network's 112-pixel frame */
    float scale = (float)NN_LANDMARK_INPUT / (float)(w > h ? w : h);
    float sw = (float)w * scale, sh = (float)h * scale;
    float pad_x = sw < sh ? (sh - sw) / 2 : 0, pad_y = sh < sw ? (sw - sh) / 2 : 0;
    for (int i = 0; i < NN_LANDMARKS; i++) {
        pts[2 * i] = (out[2 * i] * NN_LANDMARK_INPUT - pad_x) / sw;
        pts[2 * i + 1] = (out[2 * i + 1] * NN_LANDMARK_INPUT - pad_y) / sh;
    }
    return ABIS_OK;
}
