/*
 * tiny_face_detector.c: the tiny face detector of @vladmandic/face-api
 * (src/tinyFaceDetector/TinyFaceDetector.ts on src/tinyYolov2/TinyYolov2Base.ts,
 * its "separable convolutions" variant): a YOLOv2-style single-class detector.
 *
 *   input   the image padded with zeros at the bottom or right to a square,
 *           resized to input_size (a multiple of 32; 416 by default), minus
 *           the mean (117.001, 114.697, 97.404), / 255
 *   conv0   3x3 valid + bias, leaky relu (0.1); max pool 2x2 stride 2 same
 *   conv1..conv5: separable 3x3 (zero padding 1) + bias, leaky relu, each
 *           followed by max pool 2x2 stride 2 same (the last: stride 1)
 *   conv8   1x1 + bias: a grid of cells x 5 anchors x (x, y, w, h, score)
 *   decoding (TinyYolov2Base.extractBoxes): score = sigmoid(s); kept above
 *           min_score; centre ((col + sigmoid(x)) / cells, (row + sigmoid(y))
 *           / cells), size (exp(w) anchor_w / cells, exp(h) anchor_h / cells),
 *           each scaled by input_size / the image's scaled side; then
 *           non-maximum suppression at IoU 0.4 (ops/nonMaxSuppression.ts).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/face_nets.h"
#include "nn/weights.h"

#define ANCHORS 5
#define IOU_MAX 0.4 /* tinyFaceDetector/const.ts IOU_THRESHOLD */

/* tinyFaceDetector/const.ts BOX_ANCHORS (in grid cells) */
static const double anchor_w[ANCHORS] = {1.603231, 6.041143, 2.882459, 4.266906, 9.041765};
static const double anchor_h[ANCHORS] = {2.094468, 7.080126, 3.518061, 5.178857, 10.66308};

typedef struct sep {
    nn_conv dw, pw;
    const float *bias;
} sep;

struct nn_tinyface {
    nn_weights *w;
    nn_conv conv0;
    const float *conv0_bias;
    sep s[5]; /* conv1..conv5 */
    nn_conv conv8;
    const float *conv8_bias;
};

void nn_tinyface_free(nn_tinyface *net)
{
    if (!net)
        return;
    nn_conv_release(&net->conv0);
    for (int i = 0; i < 5; i++)
        nn_conv_release(&net->s[i].pw);
    nn_conv_release(&net->conv8);
    nn_weights_free(net->w);
    free(net);
}

abis_status nn_tinyface_load(const char *dir, nn_tinyface **out, abis_error *err)
{
    *out = NULL;
    nn_tinyface *net = calloc(1, sizeof *net);
    if (!net)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory loading the tiny face detector");
    abis_status st = nn_weights_load(dir, "tiny_face_detector_model", &net->w, err);
    /* filter sizes 3, 16, 32, 64, 128, 256, 512 (TinyFaceDetector.ts) */
    if (st == ABIS_OK)
        st = nn_weights_conv(net->w, "conv0/filters", 3, 3, 3, 16, &net->conv0, err);
    if (st == ABIS_OK && !(net->conv0_bias = nn_weights_vec(net->w, "conv0/bias", 16, err)))
        st = err ? err->status : ABIS_E_INVALID;
    int cin = 16;
    for (int i = 0; i < 5 && st == ABIS_OK; i++) {
        char name[64];
        int cout = cin * 2;
        snprintf(name, sizeof name, "conv%d/depthwise_filter", i + 1);
        st = nn_weights_conv(net->w, name, 3, 3, cin, 1, &net->s[i].dw, err);
        snprintf(name, sizeof name, "conv%d/pointwise_filter", i + 1);
        if (st == ABIS_OK)
            st = nn_weights_conv(net->w, name, 1, 1, cin, cout, &net->s[i].pw, err);
        snprintf(name, sizeof name, "conv%d/bias", i + 1);
        if (st == ABIS_OK && !(net->s[i].bias = nn_weights_vec(net->w, name, cout, err)))
            st = err ? err->status : ABIS_E_INVALID;
        if (st == ABIS_OK)
            st = nn_conv_prepare(&net->s[i].pw, 0, 0, 1, err);
        cin = cout;
    }
    if (st == ABIS_OK)
        st = nn_weights_conv(net->w, "conv8/filters", 1, 1, 512, ANCHORS * 5, &net->conv8, err);
    if (st == ABIS_OK &&
        !(net->conv8_bias = nn_weights_vec(net->w, "conv8/bias", ANCHORS * 5, err)))
        st = err ? err->status : ABIS_E_INVALID;
    if (st == ABIS_OK)
        st = nn_conv_prepare(&net->conv0, 0, 0, 1, err);
    if (st == ABIS_OK)
        st = nn_conv_prepare(&net->conv8, 0, 0, 1, err);
    if (st != ABIS_OK) {
        nn_tinyface_free(net);
        return st;
    }
    *out = net;
    return ABIS_OK;
}

/* The network's output grid for one input. */
static nn_tensor forward(nn_ctx *ctx, const nn_tinyface *net, const nn_image *img, int size)
{
    static const float mean[3] = {117.001f, 114.697f, 97.404f};
    nn_tensor x = nn_input_from_image(ctx, img, 0, 0, img->width, img->height, size, 0);
    nn_normalize_rgb(&x, mean, 255.0f);
    nn_post post = {net->conv0_bias, NULL, NULL, NN_ACT_LEAKY};
    nn_tensor y = nn_conv_layer(ctx, &x, &net->conv0, 1, NN_VALID, &post);
    nn_tensor_free(&x);
    for (int i = 0; i < 5; i++) {
        x = nn_max_pool(ctx, &y, 2, 2, NN_SAME);
        nn_tensor_free(&y);
        nn_post p = {net->s[i].bias, NULL, NULL, NN_ACT_LEAKY};
        y = nn_separable_layer(ctx, &x, &net->s[i].dw, &net->s[i].pw, 1, NN_SAME, &p);
        nn_tensor_free(&x);
    }
    x = nn_max_pool(ctx, &y, 2, 1, NN_SAME);
    nn_tensor_free(&y);
    nn_post p8 = {net->conv8_bias, NULL, NULL, NN_ACT_NONE};
    y = nn_conv_layer(ctx, &x, &net->conv8, 1, NN_VALID, &p8);
    nn_tensor_free(&x);
    return y;
}

static double sigmoid(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

abis_status nn_tinyface_detect(nn_ctx *ctx, const nn_tinyface *net, const nn_image *img,
                               int input_size, double min_score, nn_detection **out, size_t *n,
                               abis_error *err)
{
    *out = NULL;
    *n = 0;
    if (input_size < 32 || input_size % 32 != 0 || input_size > 4096)
        return abis_error_set(err, ABIS_E_INVALID,
                              "tiny face detector: input size %d is not a multiple of 32 "
                              "between 32 and 4096",
                              input_size);
    nn_tensor g = forward(ctx, net, img, input_size);
    if (!g.d || g.c != ANCHORS * 5) {
        nn_tensor_free(&g);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory detecting faces");
    }
    int cells = g.h;
    double rw, rh;
    nn_reshaped_dims(img->width, img->height, input_size, &rw, &rh);
    double side = fmax(rw, rh), corr_x = side / rw, corr_y = side / rh;
    size_t cap = (size_t)cells * (size_t)cells * ANCHORS, count = 0;
    nn_box *boxes = malloc(cap * sizeof *boxes);
    double *scores = malloc(cap * sizeof *scores);
    size_t *keep = malloc(cap * sizeof *keep);
    nn_detection *dets = NULL;
    if (!boxes || !scores || !keep)
        goto nomem;
    for (int row = 0; row < cells; row++)
        for (int col = 0; col < cells; col++)
            for (int a = 0; a < ANCHORS; a++) {
                const float *v = g.d + ((size_t)row * cells + col) * g.c + a * 5;
                double score = sigmoid(v[4]);
                if (!(score > min_score))
                    continue;
                double cx = (col + sigmoid(v[0])) / cells * corr_x;
                double cy = (row + sigmoid(v[1])) / cells * corr_y;
                double w = exp(v[2]) * anchor_w[a] / cells * corr_x;
                double h = exp(v[3]) * anchor_h[a] / cells * corr_y;
                /* relative to the image; NMS compares them scaled by input_size */
                boxes[count] = (nn_box){cx - w / 2, cy - h / 2, w, h};
                scores[count++] = score;
            }
    nn_box *scaled = malloc((count ? count : 1) * sizeof *scaled);
    if (!scaled)
        goto nomem;
    for (size_t i = 0; i < count; i++) {
        const nn_box *b = &boxes[i];
        /* BoundingBox(x, y, x + w, y + h).rescale(inputSize) */
        double x0 = b->x * input_size, y0 = b->y * input_size;
        double x1 = (b->x + b->w) * input_size, y1 = (b->y + b->h) * input_size;
        scaled[i] = (nn_box){x0, y0, x1 - x0, y1 - y0};
    }
    size_t kept = nn_nms_greedy(scaled, scores, count, IOU_MAX, keep);
    free(scaled);
    dets = malloc((kept ? kept : 1) * sizeof *dets);
    if (!dets)
        goto nomem;
    double iw = img->width, ih = img->height;
    for (size_t i = 0; i < kept; i++) {
        const nn_box *b = &boxes[keep[i]];
        /* ObjectDetection rescales the relative box to the image; FaceDetection
         * takes it back to relative and out again (TinyFaceDetector.locateFaces). */
        double x0 = b->x, y0 = b->y, x1 = b->x + b->w, y1 = b->y + b->h;
        nn_box abs = {x0 * iw, y0 * ih, (x1 - x0) * iw, (y1 - y0) * ih};
        nn_box rel = {abs.x * (1 / iw), abs.y * (1 / ih), abs.w * (1 / iw), abs.h * (1 / ih)};
        dets[i].box = (nn_box){rel.x * iw, rel.y * ih, rel.w * iw, rel.h * ih};
        dets[i].score = scores[keep[i]];
    }
    free(boxes);
    free(scores);
    free(keep);
    nn_tensor_free(&g);
    *out = dets;
    *n = kept;
    return ABIS_OK;
nomem:
    free(boxes);
    free(scores);
    free(keep);
    free(dets);
    nn_tensor_free(&g);
    return abis_error_set(err, ABIS_E_NOMEM, "out of memory detecting faces");
}
