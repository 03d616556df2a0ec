/*
 * ssd_mobilenetv1.c: the SSD MobileNet v1 face detector of
 * @vladmandic/face-api (src/ssdMobilenetv1/).
 *
 *   input   the image padded with zeros at the bottom or right to a square,
 *           resized to 512 x 512, then x / 127.5 - 1
 *   MobileNet v1: 3x3 stride 2 conv (32) + offset, relu6; 13 pairs of a 3x3
 *           depthwise conv (stride 2 at pairs 2, 4, 6 and 12) with batch
 *           normalisation (epsilon 0.001), relu6, and a 1x1 conv + offset, relu6
 *   prediction layers: eight more convs (1x1, and 3x3 stride 2), relu6
 *   box predictors on six feature maps (pair 11's output, MobileNet's, and
 *           prediction convs 1, 3, 5, 7): 1x1 convs giving per anchor 4 box
 *           codes and 3 class scores; 5118 anchors in all
 *   decoding (outputLayer.ts): against the anchors in the weights
 *           (Output/extra_dim), centre + code / 10 * size, size * exp(code / 5);
 *           score = sigmoid(class 1); then non-maximum suppression at IoU 0.5
 *           over scores above min_score (nonMaxSuppression.ts), boxes clipped
 *           to [0, 1] and scaled back by 512 / the image's scaled sides
 *           (SsdMobilenetv1.locateFaces).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/face_nets.h"
#include "nn/weights.h"

#define N_ANCHORS 5118
#define BN_EPSILON 0.0010000000474974513f /* mobileNetV1.ts */
#define IOU_MAX 0.5                       /* SsdMobilenetv1.locateFaces */

typedef struct layer {
    nn_conv f;
    const float *offset; /* the folded batch normalisation's offset, as a bias */
} layer;

typedef struct dw_layer {
    nn_conv f;
    float *mul, *add; /* batch normalisation folded */
} dw_layer;

typedef struct predictor {
    nn_conv box, cls;
    const float *box_bias, *cls_bias;
    int anchors;
} predictor;

struct nn_ssd {
    nn_weights *w;
    layer conv0;
    dw_layer dw[13];
    layer pw[13];
    layer pred[8];
    predictor box[6];
    const float *anchors; /* [5118][4]: y0, x0, y1, x1 */
};

void nn_ssd_free(nn_ssd *net)
{
    if (!net)
        return;
    nn_conv_release(&net->conv0.f);
    for (int i = 0; i < 13; i++) {
        free(net->dw[i].mul);
        free(net->dw[i].add);
        nn_conv_release(&net->pw[i].f);
    }
    for (int i = 0; i < 8; i++)
        nn_conv_release(&net->pred[i].f);
    for (int i = 0; i < 6; i++) {
        nn_conv_release(&net->box[i].box);
        nn_conv_release(&net->box[i].cls);
    }
    nn_weights_free(net->w);
    free(net);
}

static abis_status load_layer(const nn_weights *w, const char *prefix, int k, int cin, int cout,
                              int in, int stride, layer *l, abis_error *err)
{
    char name[128];
    snprintf(name, sizeof name, "%s/weights", prefix);
    abis_status st = nn_weights_conv(w, name, k, k, cin, cout, &l->f, err);
    snprintf(name, sizeof name, "%s/convolution_bn_offset", prefix);
    if (st == ABIS_OK && !(l->offset = nn_weights_vec(w, name, cout, err)))
        st = err ? err->status : ABIS_E_INVALID;
    if (st == ABIS_OK)
        st = nn_conv_prepare(&l->f, in, in, stride, err);
    return st;
}

static abis_status load_dw(const nn_weights *w, int idx, int c, dw_layer *l, abis_error *err)
{
    char name[128];
    snprintf(name, sizeof name, "MobilenetV1/Conv2d_%d_depthwise/depthwise_weights", idx);
    abis_status st = nn_weights_conv(w, name, 3, 3, c, 1, &l->f, err);
    if (st != ABIS_OK)
        return st;
    const float *bn[4];
    static const char *const part[4] = {"moving_mean", "moving_variance", "gamma", "beta"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "MobilenetV1/Conv2d_%d_depthwise/BatchNorm/%s", idx, part[i]);
        if (!(bn[i] = nn_weights_vec(w, name, c, err)))
            return err ? err->status : ABIS_E_INVALID;
    }
    l->mul = malloc((size_t)c * sizeof(float));
    l->add = malloc((size_t)c * sizeof(float));
    if (!l->mul || !l->add)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory loading the face detector");
    nn_batchnorm_fold(bn[0], bn[1], bn[2], bn[3], BN_EPSILON, (size_t)c, l->mul, l->add);
    return ABIS_OK;
}

static abis_status load_predictor(const nn_weights *w, int idx, int cin, int anchors, int in,
                                  predictor *p, abis_error *err)
{
    char name[128];
    p->anchors = anchors;
    snprintf(name, sizeof name, "Prediction/BoxPredictor_%d/BoxEncodingPredictor/weights", idx);
    abis_status st = nn_weights_conv(w, name, 1, 1, cin, anchors * 4, &p->box, err);
    snprintf(name, sizeof name, "Prediction/BoxPredictor_%d/BoxEncodingPredictor/biases", idx);
    if (st == ABIS_OK && !(p->box_bias = nn_weights_vec(w, name, anchors * 4, err)))
        st = err ? err->status : ABIS_E_INVALID;
    snprintf(name, sizeof name, "Prediction/BoxPredictor_%d/ClassPredictor/weights", idx);
    if (st == ABIS_OK)
        st = nn_weights_conv(w, name, 1, 1, cin, anchors * 3, &p->cls, err);
    snprintf(name, sizeof name, "Prediction/BoxPredictor_%d/ClassPredictor/biases", idx);
    if (st == ABIS_OK && !(p->cls_bias = nn_weights_vec(w, name, anchors * 3, err)))
        st = err ? err->status : ABIS_E_INVALID;
    if (st == ABIS_OK)
        st = nn_conv_prepare(&p->box, in, in, 1, err);
    if (st == ABIS_OK)
        st = nn_conv_prepare(&p->cls, in, in, 1, err);
    return st;
}

/* Strides of the depthwise convolutions of pairs 1..13 (getStridesForLayerIdx). */
static int pair_stride(int idx)
{
    return idx == 2 || idx == 4 || idx == 6 || idx == 12 ? 2 : 1;
}

abis_status nn_ssd_load(const char *dir, nn_ssd **out, abis_error *err)
{
    *out = NULL;
    nn_ssd *net = calloc(1, sizeof *net);
    if (!net)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory loading the face detector");
    abis_status st = nn_weights_load(dir, "ssd_mobilenetv1_model", &net->w, err);
    if (st == ABIS_OK)
        st = load_layer(net->w, "MobilenetV1/Conv2d_0_pointwise", 3, 3, 32, NN_SSD_INPUT, 2,
                        &net->conv0, err);
    /* MobileNet v1 widths: 32 -> 64 -> 128 -> 128 -> 256 -> 256 -> 512 x 6 -> 1024 -> 1024 */
    static const int width[14] = {32,  64,  128, 128, 256, 256,  512,
                                  512, 512, 512, 512, 512, 1024, 1024};
    int size = NN_SSD_INPUT / 2;
    for (int i = 1; i <= 13 && st == ABIS_OK; i++) {
        st = load_dw(net->w, i, width[i - 1], &net->dw[i - 1], err);
        size = nn_out_size(size, 3, pair_stride(i), NN_SAME);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "MobilenetV1/Conv2d_%d_pointwise", i);
        if (st == ABIS_OK)
            st = load_layer(net->w, prefix, 1, width[i - 1], width[i], size, 1, &net->pw[i - 1],
                            err);
    }
    /* prediction layers: 1x1 to 256, 3x3/2 to 512, 1x1 128, 3x3/2 256, 1x1 128,
     * 3x3/2 256, 1x1 64, 3x3/2 128 */
    static const int pred_out[8] = {256, 512, 128, 256, 128, 256, 64, 128};
    int cin = 1024, feat_size[6] = {32, 16, 0, 0, 0, 0};
    for (int i = 0; i < 8 && st == ABIS_OK; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "Prediction/Conv2d_%d_pointwise", i);
        int k = i % 2 ? 3 : 1, stride = i % 2 ? 2 : 1;
        st = load_layer(net->w, prefix, k, cin, pred_out[i], size, stride, &net->pred[i], err);
        size = nn_out_size(size, k, stride, NN_SAME);
        if (i % 2)
            feat_size[2 + i / 2] = size;
        cin = pred_out[i];
    }
    static const int pred_in[6] = {512, 1024, 512, 256, 256, 128};
    for (int i = 0; i < 6 && st == ABIS_OK; i++)
        st = load_predictor(net->w, i, pred_in[i], i == 0 ? 3 : 6, feat_size[i], &net->box[i], err);
    if (st == ABIS_OK) {
        int shape[3] = {1, N_ANCHORS, 4};
        if (!(net->anchors = nn_weights_get(net->w, "Output/extra_dim", 3, shape, err)))
            st = err ? err->status : ABIS_E_INVALID;
    }
    if (st != ABIS_OK) {
        nn_ssd_free(net);
        return st;
    }
    *out = net;
    return ABIS_OK;
}

static nn_tensor run_layer(nn_ctx *ctx, const nn_tensor *x, const layer *l, int stride)
{
    nn_post post = {l->offset, NULL, NULL, NN_ACT_RELU6};
    return nn_conv_layer(ctx, x, &l->f, stride, NN_SAME, &post);
}

/* Append one feature map's box codes and class logits at anchor `*at`. */
static void predict(nn_ctx *ctx, const nn_tensor *x, const predictor *p, float *codes,
                    float *logits, size_t *at)
{
    nn_post pb = {p->box_bias, NULL, NULL, NN_ACT_NONE},
            pc = {p->cls_bias, NULL, NULL, NN_ACT_NONE};
    nn_tensor b = nn_conv_layer(ctx, x, &p->box, 1, NN_SAME, &pb);
    nn_tensor c = nn_conv_layer(ctx, x, &p->cls, 1, NN_SAME, &pc);
    if (b.d && c.d) {
        /* [1, h, w, anchors * 4] reshaped to [-1, 4]: anchors in row, column, anchor order */
        size_t n = (size_t)x->h * (size_t)x->w * (size_t)p->anchors;
        if (*at + n <= N_ANCHORS) {
            for (size_t i = 0; i < n * 4; i++)
                codes[*at * 4 + i] = b.d[i];
            for (size_t i = 0; i < n * 3; i++)
                logits[*at * 3 + i] = c.d[i];
        }
        *at += n;
    }
    nn_tensor_free(&b);
    nn_tensor_free(&c);
}

/* The network: box codes [5118][4] and class logits [5118][3]; -1 on failure. */
static int forward(nn_ctx *ctx, const nn_ssd *net, const nn_image *img, float *codes, float *logits)
{
    nn_tensor x = nn_input_from_image(ctx, img, 0, 0, img->width, img->height, NN_SSD_INPUT, 0);
    nn_rescale(&x, 127.5f, 1.0f);
    nn_tensor y = run_layer(ctx, &x, &net->conv0, 2), conv11 = {0};
    nn_tensor_free(&x);
    for (int i = 1; i <= 13; i++) {
        const dw_layer *d = &net->dw[i - 1];
        nn_post post = {NULL, d->mul, d->add, NN_ACT_RELU6};
        x = nn_depthwise_layer(ctx, &y, &d->f, pair_stride(i), NN_SAME, &post);
        nn_tensor_free(&y);
        y = run_layer(ctx, &x, &net->pw[i - 1], 1);
        nn_tensor_free(&x);
        if (i == 11) { /* kept for the first box predictor */
            conv11 = nn_tensor_new(ctx, y.h, y.w, y.c);
            if (conv11.d)
                for (size_t k = 0; k < nn_tensor_size(&y); k++)
                    conv11.d[k] = y.d[k];
        }
    }
    size_t at = 0;
    predict(ctx, &conv11, &net->box[0], codes, logits, &at);
    nn_tensor_free(&conv11);
    predict(ctx, &y, &net->box[1], codes, logits, &at);
    nn_tensor prev = y;
    for (int i = 0; i < 8; i++) {
        nn_tensor next = run_layer(ctx, &prev, &net->pred[i], i % 2 ? 2 : 1);
        nn_tensor_free(&prev);
        prev = next;
        if (i % 2)
            predict(ctx, &prev, &net->box[2 + i / 2], codes, logits, &at);
    }
    nn_tensor_free(&prev);
    return ctx->failed || at != N_ANCHORS ? -1 : 0;
}

abis_status nn_ssd_detect(nn_ctx *ctx, const nn_ssd *net, const nn_image *img, double min_score,
                          int max_results, nn_detection **out, size_t *n, abis_error *err)
{
    *out = NULL;
    *n = 0;
    float *codes = malloc(N_ANCHORS * 4 * sizeof(float));
    float *logits = malloc(N_ANCHORS * 3 * sizeof(float));
    nn_box *boxes = malloc(N_ANCHORS * sizeof *boxes);
    float(*raw)[4] = malloc(N_ANCHORS * sizeof *raw);
    double *scores = malloc(N_ANCHORS * sizeof *scores);
    size_t *keep = malloc(N_ANCHORS * sizeof *keep);
    nn_detection *dets = NULL;
    abis_status st = ABIS_OK;
    if (!codes || !logits || !boxes || !raw || !scores || !keep || !max_results ||
        forward(ctx, net, img, codes, logits) != 0) {
        st = max_results ? abis_error_set(err, ABIS_E_NOMEM, "out of memory detecting faces")
                         : abis_error_set(err, ABIS_E_INVALID, "face detector: max results 0");
        goto done;
    }
    for (size_t i = 0; i < N_ANCHORS; i++) {
        const float *a = net->anchors + i * 4, *p = codes + i * 4;
        /* outputLayer.ts decodeBoxesLayer, in float32 as the tensors are */
        float s0 = a[2] - a[0], s1 = a[3] - a[1];
        float c0 = a[0] + s0 / 2, c1 = a[1] + s1 / 2;
        float half0 = expf(p[2] / 5) * s0 / 2, mid0 = p[0] / 10 * s0 + c0;
        float half1 = expf(p[3] / 5) * s1 / 2, mid1 = p[1] / 10 * s1 + c1;
        raw[i][0] = mid0 - half0;
        raw[i][1] = mid1 - half1;
        raw[i][2] = mid0 + half0;
        raw[i][3] = mid1 + half1;
        /* nonMaxSuppression.ts's IOU orders each pair of coordinates itself */
        double y0 = fmin(raw[i][0], raw[i][2]), x0 = fmin(raw[i][1], raw[i][3]);
        boxes[i] =
            (nn_box){x0, y0, fmax(raw[i][1], raw[i][3]) - x0, fmax(raw[i][0], raw[i][2]) - y0};
        scores[i] = nn_sigmoid(logits[i * 3 + 1]);
    }
    size_t kept =
        nn_nms_ssd(boxes, scores, N_ANCHORS, IOU_MAX, min_score, (size_t)max_results, keep);
    dets = malloc((kept ? kept : 1) * sizeof *dets);
    if (!dets) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory detecting faces");
        goto done;
    }
    double rw, rh;
    nn_reshaped_dims(img->width, img->height, NN_SSD_INPUT, &rw, &rh);
    double pad_x = NN_SSD_INPUT / rw, pad_y = NN_SSD_INPUT / rh;
    for (size_t i = 0; i < kept; i++) {
        const float *b = raw[keep[i]];
        double top = fmax(0.0, b[0]) * pad_y, bottom = fmin(1.0, b[2]) * pad_y;
        double left = fmax(0.0, b[1]) * pad_x, right = fmin(1.0, b[3]) * pad_x;
        /* Rect(left, top, right - left, bottom - top), relative, to the image */
        dets[i].box = (nn_box){left * img->width, top * img->height, (right - left) * img->width,
                               (bottom - top) * img->height};
        dets[i].score = scores[keep[i]];
    }
    *out = dets;
    *n = kept;
    dets = NULL;
done:
    free(codes);
    free(logits);
    free(boxes);
    free(raw);
    free(scores);
    free(keep);
    free(dets);
    return st;
}
