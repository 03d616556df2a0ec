/*
 * face_recognition.c: the face descriptor network of @vladmandic/face-api
 * (src/faceRecognitionNet/), dlib's ResNet-34-like metric-learning network
 * (dlib_face_recognition_resnet_model_v1: 99.38 % on LFW as published).
 *
 *   input   150 x 150 RGB, minus the mean (122.782, 117.001, 104.298), / 255
 *   conv32_down   7x7 stride 2 valid, bias, scale, relu; max pool 3x3 stride 2 valid
 *   3 x residual(32), residual_down(64) + 3 x residual(64),
 *   residual_down(128) + 2 x residual(128), residual_down(256) + 2 x residual(256),
 *   residual_down(256)
 *   mean over the image, then a 256 x 128 matrix: the descriptor
 *
 * residual(x):      relu(conv(relu(conv(x))) + x), each conv 3x3 same + bias + scale
 * residual_down(x): conv 3x3 stride 2 valid then conv 3x3 same, added to
 *                   avg_pool(x, 2, 2, valid) with zero channels appended when
 *                   the width doubles; when the convolution's output is one
 *                   pixel smaller than the pool's (odd sizes), a zero row and
 *                   column are appended to it first (residualLayer.ts).
 */
#include <stdio.h>
#include <stdlib.h>

#include "nn/face_nets.h"
#include "nn/weights.h"

typedef struct conv_layer {
    nn_conv f;
    nn_post post; /* bias, then the scale layer's weights and biases */
} conv_layer;

typedef struct residual {
    conv_layer c1, c2;
    int down;
} residual;

#define N_RESIDUAL 14

struct nn_facerec {
    nn_weights *w;
    conv_layer conv32_down;
    residual res[N_RESIDUAL];
    const float *fc; /* [256, 128] */
};

static const struct {
    const char *name;
    int cout, down;
} residual_spec[N_RESIDUAL] = {
    {"conv32_1", 32, 0},    {"conv32_2", 32, 0},          {"conv32_3", 32, 0},
    {"conv64_down", 64, 1}, {"conv64_1", 64, 0},          {"conv64_2", 64, 0},
    {"conv64_3", 64, 0},    {"conv128_down", 128, 1},     {"conv128_1", 128, 0},
    {"conv128_2", 128, 0},  {"conv256_down", 256, 1},     {"conv256_1", 256, 0},
    {"conv256_2", 256, 0},  {"conv256_down_out", 256, 1},
};

/* Load layer `prefix` (k x k, cin -> cout), which sees inputs of in x in
 * pixels at `stride`. */
static abis_status load_conv(const nn_weights *w, const char *prefix, int k, int cin, int cout,
                             int in, int stride, nn_act act, conv_layer *l, abis_error *err)
{
    char name[128];
    snprintf(name, sizeof name, "%s/conv/filters", prefix);
    abis_status st = nn_weights_conv(w, name, k, k, cin, cout, &l->f, err);
    if (st != ABIS_OK)
        return st;
    snprintf(name, sizeof name, "%s/conv/bias", prefix);
    l->post.bias = nn_weights_vec(w, name, cout, err);
    snprintf(name, sizeof name, "%s/scale/weights", prefix);
    l->post.mul = l->post.bias ? nn_weights_vec(w, name, cout, err) : NULL;
    snprintf(name, sizeof name, "%s/scale/biases", prefix);
    l->post.add = l->post.mul ? nn_weights_vec(w, name, cout, err) : NULL;
    if (!l->post.add)
        return err ? err->status : ABIS_E_INVALID;
    l->post.act = act;
    return nn_conv_prepare(&l->f, in, in, stride, err);
}

void nn_facerec_free(nn_facerec *net)
{
    if (!net)
        return;
    nn_conv_release(&net->conv32_down.f);
    for (int i = 0; i < N_RESIDUAL; i++) {
        nn_conv_release(&net->res[i].c1.f);
        nn_conv_release(&net->res[i].c2.f);
    }
    nn_weights_free(net->w);
    free(net);
}

abis_status nn_facerec_load(const char *dir, nn_facerec **out, abis_error *err)
{
    *out = NULL;
    nn_facerec *net = calloc(1, sizeof *net);
    if (!net)
        return abis_error_set(err, ABIS_E_NOMEM,
                              "out of memory loading the face descriptor network");
    abis_status st = nn_weights_load(dir, "face_recognition_model", &net->w, err);
    if (st == ABIS_OK)
        st = load_conv(net->w, "conv32_down", 7, 3, 32, NN_FACEREC_INPUT, 2, NN_ACT_RELU,
                       &net->conv32_down, err);
    int cin = 32, size = 35; /* after the 7x7 stride-2 convolution and the 3x3 pool */
    for (int i = 0; i < N_RESIDUAL && st == ABIS_OK; i++) {
        residual *r = &net->res[i];
        char prefix[64];
        int cout = residual_spec[i].cout;
        r->down = residual_spec[i].down;
        snprintf(prefix, sizeof prefix, "%s/conv1", residual_spec[i].name);
        st = load_conv(net->w, prefix, 3, cin, cout, size, r->down ? 2 : 1, NN_ACT_RELU, &r->c1,
                       err);
        snprintf(prefix, sizeof prefix, "%s/conv2", residual_spec[i].name);
        if (st == ABIS_OK)
            st = load_conv(net->w, prefix, 3, cout, cout,
                           r->down ? nn_out_size(size, 3, 2, NN_VALID) : size, 1, NN_ACT_NONE,
                           &r->c2, err);
        if (r->down) /* the block's output has the pooled size */
            size = nn_out_size(size, 2, 2, NN_VALID);
        cin = cout;
    }
    if (st == ABIS_OK) {
        int shape[2] = {256, NN_DESCRIPTOR_DIM};
        net->fc = nn_weights_get(net->w, "fc", 2, shape, err);
        if (!net->fc)
            st = err ? err->status : ABIS_E_INVALID;
    }
    if (st != ABIS_OK) {
        nn_facerec_free(net);
        return st;
    }
    *out = net;
    return ABIS_OK;
}

/* One residual block; consumes *x (freed) and returns the block's output. */
static nn_tensor residual_block(nn_ctx *ctx, nn_tensor *x, const residual *r)
{
    nn_tensor a =
        nn_conv_layer(ctx, x, &r->c1.f, r->down ? 2 : 1, r->down ? NN_VALID : NN_SAME, &r->c1.post);
    nn_tensor b = nn_conv_layer(ctx, &a, &r->c2.f, 1, NN_SAME, &r->c2.post);
    nn_tensor_free(&a);
    if (!r->down) {
        nn_add(&b, x, NN_ACT_RELU);
        nn_tensor_free(x);
        return b;
    }
    nn_tensor pooled = nn_avg_pool(ctx, x, 2, 2, NN_VALID);
    nn_tensor_free(x);
    if (pooled.d && pooled.c != b.c) {
        nn_tensor wide = nn_pad_channels(ctx, &pooled, b.c);
        nn_tensor_free(&pooled);
        pooled = wide;
    }
    if (b.d && pooled.d && (pooled.h != b.h || pooled.w != b.w)) {
        nn_tensor padded = nn_pad(ctx, &b, 0, pooled.h - b.h, 0, pooled.w - b.w);
        nn_tensor_free(&b);
        b = padded;
    }
    nn_add(&pooled, &b, NN_ACT_RELU);
    nn_tensor_free(&b);
    return pooled;
}

abis_status nn_facerec_run(nn_ctx *ctx, const nn_facerec *net, const nn_tensor *input,
                           float out[NN_DESCRIPTOR_DIM], abis_error *err)
{
    if (!input->d || input->h != NN_FACEREC_INPUT || input->w != NN_FACEREC_INPUT || input->c != 3)
        return abis_error_set(err, ABIS_E_INTERNAL, "face descriptor: input is not 150 x 150 RGB");
    static const float mean[3] = {122.782f, 117.001f, 104.298f};
    nn_tensor x = nn_tensor_new(ctx, input->h, input->w, 3);
    if (x.d)
        for (size_t i = 0; i < nn_tensor_size(&x); i++)
            x.d[i] = input->d[i];
    nn_normalize_rgb(&x, mean, 255.0f);
    nn_tensor y = nn_conv_layer(ctx, &x, &net->conv32_down.f, 2, NN_VALID, &net->conv32_down.post);
    nn_tensor_free(&x);
    x = nn_max_pool(ctx, &y, 3, 2, NN_VALID);
    nn_tensor_free(&y);
    for (int i = 0; i < N_RESIDUAL; i++)
        x = residual_block(ctx, &x, &net->res[i]);
    if (ctx->failed || x.c != 256) {
        nn_tensor_free(&x);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory computing a face descriptor");
    }
    float avg[256];
    nn_mean_hw(&x, avg);
    nn_tensor_free(&x);
    nn_matmul(ctx, avg, 256, net->fc, NULL, NN_DESCRIPTOR_DIM, out);
    return ABIS_OK;
}

abis_status nn_facerec_describe(nn_ctx *ctx, const nn_facerec *net, const nn_image *img, int x,
                                int y, int w, int h, float out[NN_DESCRIPTOR_DIM], abis_error *err)
{
    nn_tensor in = nn_input_from_image(ctx, img, x, y, w, h, NN_FACEREC_INPUT, 1);
    if (!in.d)
        return abis_error_set(err, ctx->failed ? ABIS_E_NOMEM : ABIS_E_INTERNAL,
                              "face descriptor: cannot make the network's input");
    abis_status st = nn_facerec_run(ctx, net, &in, out, err);
    nn_tensor_free(&in);
    return st;
}
