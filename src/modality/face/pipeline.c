/*
 * pipeline.c: a face photo to a descriptor (abis/face.h), step for step as
 * @vladmandic/face-api's detectAllFaces(...).withFaceLandmarks()
 * .withFaceDescriptors() does it (globalApi/), on our networks (src/nn):
 *
 *   1. decode to RGB, upright (EXIF), within the pixel limit
 *   2. detect faces; none, or several without take_largest, is a refusal
 *   3. landmarks on the detection box as face-api crops it: the box taken
 *      to relative coordinates and back (FaceDetection.forSize), clipped to
 *      the photo and floored (Box.clipAtImageBorders); the network's relative
 *      positions scaled by that region and shifted by the unclipped box's
 *      corner (extendWithFaceLandmarks)
 *   4. the descriptor crop from the landmarks (FaceLandmarks.alignDlib): the
 *      eyes' and mouth's centres; side = floor(mean eye-to-mouth distance /
 *      0.45); corner at the three centres' mean minus (0.5, 0.43) sides,
 *      floored and kept inside the top and left; clipped to the photo
 *   5. the descriptor of that crop, and the quality gate on the landmarks and
 *      the crop's pixels
 * The photo's pixels and every buffer derived from them are wiped before
 * returning.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modality/face/face.h"
#include "modality/image.h"
#include "nn/nn.h"

/* Box.clipAtImageBorders then floor: the integer region face-api slices. */
static void clip_floor(const nn_box *b, int w, int h, int out[4])
{
    double x = fmax(b->x, 0), y = fmax(b->y, 0);
    double cw = fmin(b->x + b->w - x, w - x), ch = fmin(b->y + b->h - y, h - y);
    out[0] = (int)floor(x);
    out[1] = (int)floor(y);
    out[2] = (int)floor(cw);
    out[3] = (int)floor(ch);
}

/* FaceLandmarks.alignDlib on absolute landmarks; region_w/h are the
 * landmarks' "image" size (the region the landmark network saw). */
static nn_box align_dlib(const float *p, int region_w, int region_h)
{
    double c[3][2] = {{0, 0}, {0, 0}, {0, 0}};
    static const int from[3] = {36, 42, 48}, to[3] = {42, 48, 68};
    for (int k = 0; k < 3; k++) {
        for (int i = from[k]; i < to[k]; i++) {
            c[k][0] += p[2 * i];
            c[k][1] += p[2 * i + 1];
        }
        c[k][0] /= to[k] - from[k];
        c[k][1] /= to[k] - from[k];
    }
    double d_left = hypot(c[2][0] - c[0][0], c[2][1] - c[0][1]);
    double d_right = hypot(c[2][0] - c[1][0], c[2][1] - c[1][1]);
    double size = floor((d_left + d_right) / 2 / 0.45); /* relScale */
    double rx = (c[0][0] + c[1][0] + c[2][0]) / 3, ry = (c[0][1] + c[1][1] + c[2][1]) / 3;
    double x = floor(fmax(0, rx - 0.5 * size)), y = floor(fmax(0, ry - 0.43 * size));
    return (nn_box){x, y, fmin(size, region_w + x), fmin(size, region_h + y)};
}

static abis_status refuse(abis_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static abis_status refuse(abis_error *err, const char *fmt, ...)
{
    char msg[ABIS_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return abis_error_set(err, ABIS_E_INVALID, "%s", msg);
}

/* Detect faces with the detector the options choose. */
static abis_status detect(nn_ctx *ctx, const face_models *models, const abis_face_options *o,
                          const nn_image *im, nn_detection **dets, size_t *n, abis_error *err)
{
    if (o->detector == ABIS_FACE_TINY)
        return nn_tinyface_detect(ctx, face_models_tiny(models), im, o->tiny_input_size,
                                  o->min_detection_score, dets, n, err);
    return nn_ssd_detect(ctx, face_models_ssd(models), im, o->min_detection_score, 100, dets, n,
                         err);
}

/* `img` with a mid-grey border of `pad` pixels all round (a new image). */
static abis_status add_margin(const abis_image *img, int pad, abis_image *out, abis_error *err)
{
    memset(out, 0, sizeof *out);
    int w = img->width + 2 * pad, h = img->height + 2 * pad;
    out->pixels = malloc((size_t)w * h * 3);
    if (!out->pixels)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory adding a margin to the photo");
    out->width = w;
    out->height = h;
    out->channels = 3;
    memset(out->pixels, 128, (size_t)w * h * 3);
    for (int y = 0; y < img->height; y++)
        memcpy(out->pixels + ((size_t)(y + pad) * w + pad) * 3,
               img->pixels + (size_t)y * img->width * 3, (size_t)img->width * 3);
    return ABIS_OK;
}

abis_status abis_face_extract(const void *photo, size_t len, const abis_face_options *o,
                              float descriptor[ABIS_FACE_DIM], abis_face_info *info,
                              abis_error *err)
{
    abis_face_options opts;
    if (o)
        opts = *o;
    else
        abis_face_options_default(&opts);
    abis_face_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    abis_image img;
    abis_status st = abis_image_decode_rgb(photo, len, "photo", opts.max_pixels, &img, err);
    if (st != ABIS_OK)
        return st;
    face_models *models;
    if ((st = face_models_get(&opts, &models, err)) != ABIS_OK) {
        abis_image_free(&img);
        return st;
    }
    info->width = img.width;
    info->height = img.height;
    nn_image im = {img.width, img.height, (size_t)img.width * 3, img.pixels};
    nn_ctx ctx;
    nn_ctx_init(&ctx, 0);
    nn_detection *dets = NULL;
    size_t n = 0;
    nn_tensor crop = {0};
    abis_image padded = {0};
    int pad = 0; /* the margin the rest of the pipeline works with */
    if ((st = detect(&ctx, models, &opts, &im, &dets, &n, err)) != ABIS_OK)
        goto done;
    if (n == 0 && opts.retry_margin > 0) {
        /* A tightly cropped portrait gives the detectors no context around
         * the face: try again with a grey margin around the photo. */
        pad = (int)ceil(opts.retry_margin * (img.width > img.height ? img.width : img.height));
        free(dets);
        dets = NULL;
        if ((st = add_margin(&img, pad, &padded, err)) != ABIS_OK ||
            (st = detect(
                 &ctx, models, &opts,
                 &(nn_image){padded.width, padded.height, (size_t)padded.width * 3, padded.pixels},
                 &dets, &n, err)) != ABIS_OK)
            goto done;
        im = (nn_image){padded.width, padded.height, (size_t)padded.width * 3, padded.pixels};
    }
    info->faces = (int)n;
    if (n == 0) {
        st = refuse(err, "no face found in the photo (%d x %d pixels)", img.width, img.height);
        goto done;
    }
    if (n > 1 && !opts.take_largest) {
        st = refuse(err,
                    "%zu faces in the photo: it must show one person (or enrol the largest face "
                    "with the face option take_largest=1)",
                    n);
        goto done;
    }
    size_t pick = 0;
    for (size_t i = 1; i < n; i++)
        if (dets[i].box.w * dets[i].box.h > dets[pick].box.w * dets[pick].box.h)
            pick = i;
    const nn_box *box = &dets[pick].box;
    info->box[0] = box->x;
    info->box[1] = box->y;
    info->box[2] = box->w;
    info->box[3] = box->h;
    info->score = dets[pick].score;
    /* 3. landmarks on the detection's region */
    double W = im.width, H = im.height;
    nn_box rel = {box->x * (1 / W), box->y * (1 / H), box->w * (1 / W), box->h * (1 / H)};
    nn_box again = {rel.x * W, rel.y * H, rel.w * W, rel.h * H}; /* forSize(W, H) */
    int region[4];
    clip_floor(&again, im.width, im.height, region);
    if (region[2] <= 0 || region[3] <= 0) {
        st = refuse(err, "the face found lies outside the photo");
        goto done;
    }
    float pts[2 * ABIS_FACE_LANDMARKS];
    st = nn_landmarks_run(&ctx, face_models_landmarks(models), &im, region[0], region[1], region[2],
                          region[3], pts, err);
    if (st != ABIS_OK)
        goto done;
    for (int i = 0; i < ABIS_FACE_LANDMARKS; i++) {
        info->landmarks[2 * i] = (float)(pts[2 * i] * (double)region[2] + box->x);
        info->landmarks[2 * i + 1] = (float)(pts[2 * i + 1] * (double)region[3] + box->y);
    }
    /* 4. the descriptor crop */
    nn_box aligned = align_dlib(info->landmarks, region[2], region[3]);
    clip_floor(&aligned, im.width, im.height, info->crop);
    if (info->crop[2] <= 0 || info->crop[3] <= 0) {
        st = refuse(err, "the face's landmarks put its crop outside the photo");
        goto done;
    }
    /* 5. descriptor and quality */
    crop = nn_input_from_image(&ctx, &im, info->crop[0], info->crop[1], info->crop[2],
                               info->crop[3], NN_FACEREC_INPUT, 1);
    if (!crop.d) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory making a face descriptor");
        goto done;
    }
    face_measure(info->landmarks, &crop, info);
    char reason[400];
    if (face_gate(info, &opts, reason, sizeof reason) > 0) {
        st = refuse(err, "face refused: %s", reason);
        goto done;
    }
    info->quality = face_quality(info, &opts);
    st = nn_facerec_run(&ctx, face_models_facerec(models), &crop, descriptor, err);
    if (pad) { /* back to the photo's coordinates */
        info->box[0] -= pad;
        info->box[1] -= pad;
        info->crop[0] -= pad;
        info->crop[1] -= pad;
        for (int i = 0; i < 2 * ABIS_FACE_LANDMARKS; i++)
            info->landmarks[i] -= (float)pad;
    }
done:
    nn_tensor_free(&crop);
    free(dets);
    nn_ctx_free(&ctx); /* wipes every buffer the photo's values passed through */
    abis_image_free(&padded);
    abis_image_free(&img);
    return st;
}

double abis_face_distance(const float a[ABIS_FACE_DIM], const float b[ABIS_FACE_DIM])
{
    double s = 0;
    for (int i = 0; i < ABIS_FACE_DIM; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return sqrt(s);
}
