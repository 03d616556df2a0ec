/*
 * face_nets.h: the four networks of @vladmandic/face-api, each in its own
 * file, loaded from the package's model/ folder (weights.h) and run on the
 * inference engine (nn.h).  Each follows the package's TypeScript source
 * (src/<network>/) exactly: input size, padding to a square, resize, mean
 * and scale, layers, and the decoding of the outputs.
 *
 *   face_recognition   dlib's ResNet-34-like face descriptor network: a face
 *                      crop to 128 values (FaceRecognitionNet.ts)
 *   face_landmark_68   68 facial landmarks of a face crop (FaceLandmark68Net.ts)
 *   tiny_face_detector a small YOLOv2-style face detector (TinyFaceDetector.ts)
 *   ssd_mobilenetv1    an SSD / MobileNet v1 face detector (SsdMobilenetv1.ts)
 *
 * A loaded network is read-only: one may serve many threads, each with its
 * own nn_ctx.  Errors (weights missing or malformed, out of memory) come back
 * as a status with the reason.
 */
#ifndef ABIS_NN_FACE_NETS_H
#define ABIS_NN_FACE_NETS_H

#include "abis/error.h"
#include "nn/nn.h"

/* A box in image pixels (face-api's Box: x, y, width, height). */
typedef struct nn_box {
    double x, y, w, h;
} nn_box;

/* A detected face: its box and score (0..1). */
typedef struct nn_detection {
    nn_box box;
    double score;
} nn_detection;

/* ---- detection helpers (nms.c) ---------------------------------------------- */

/* Intersection over union of two boxes (0 when either is empty). */
double nn_box_iou(const nn_box *a, const nn_box *b);
/* face-api's two non-maximum suppressions, each returning the kept indices,
 * best first, in keep[] (room for n) and their count:
 *   ops/nonMaxSuppression.ts (tiny detector): repeatedly keep the best box
 *   and drop those overlapping it by more than iou_max;
 *   ssdMobilenetv1/nonMaxSuppression.ts: boxes scoring above min_score, best
 *   first, each kept unless it overlaps a kept one by more than iou_max, at
 *   most max_keep. */
size_t nn_nms_greedy(const nn_box *boxes, const double *scores, size_t n, double iou_max,
                     size_t *keep);
size_t nn_nms_ssd(const nn_box *boxes, const double *scores, size_t n, double iou_max,
                  double min_score, size_t max_keep, size_t *keep);
/* face-api's computeReshapedDimensions: the image's size scaled so that its
 * longer side is `size`, each side rounded. */
void nn_reshaped_dims(int w, int h, int size, double *rw, double *rh);

/* ---- face_recognition.c ---------------------------------------------------- */

#define NN_DESCRIPTOR_DIM 128
#define NN_FACEREC_INPUT 150 /* input side, pixels */

typedef struct nn_facerec nn_facerec;
abis_status nn_facerec_load(const char *dir, nn_facerec **out, abis_error *err);
void nn_facerec_free(nn_facerec *net);
/* The descriptor of an input tensor of NN_FACEREC_INPUT^2 RGB values in
 * 0..255 (as nn_input_from_image makes it). */
abis_status nn_facerec_run(nn_ctx *ctx, const nn_facerec *net, const nn_tensor *input,
                           float out[NN_DESCRIPTOR_DIM], abis_error *err);
/* The descriptor of the integer image region (x, y, w, h) (inside the
 * image): centred on a square, resized to 150 x 150, then run. */
abis_status nn_facerec_describe(nn_ctx *ctx, const nn_facerec *net, const nn_image *img, int x,
                                int y, int w, int h, float out[NN_DESCRIPTOR_DIM], abis_error *err);

/* ---- face_landmark_68.c ------------------------------------------------------ */

#define NN_LANDMARKS 68
#define NN_LANDMARK_INPUT 112

typedef struct nn_landmarks nn_landmarks;
abis_status nn_landmarks_load(const char *dir, nn_landmarks **out, abis_error *err);
void nn_landmarks_free(nn_landmarks *net);
/* The 68 landmarks of the integer image region (x, y, w, h), as fractions
 * of its width and height (face-api's relative positions): pts[2 i] = x,
 * pts[2 i + 1] = y. */
abis_status nn_landmarks_run(nn_ctx *ctx, const nn_landmarks *net, const nn_image *img, int x,
                             int y, int w, int h, float pts[2 * NN_LANDMARKS], abis_error *err);

/* ---- tiny_face_detector.c ---------------------------------------------------- */

typedef struct nn_tinyface nn_tinyface;
abis_status nn_tinyface_load(const char *dir, nn_tinyface **out, abis_error *err);
void nn_tinyface_free(nn_tinyface *net);
/* Faces in the image (input_size: a multiple of 32, face-api's default 416;
 * min_score: 0.5 by default), after non-maximum suppression, best first.
 * *out is malloc'd (free it), *n gets the count. */
abis_status nn_tinyface_detect(nn_ctx *ctx, const nn_tinyface *net, const nn_image *img,
                               int input_size, double min_score, nn_detection **out, size_t *n,
                               abis_error *err);

/* ---- ssd_mobilenetv1.c ---------------------------------------------------------- */

#define NN_SSD_INPUT 512

typedef struct nn_ssd nn_ssd;
abis_status nn_ssd_load(const char *dir, nn_ssd **out, abis_error *err);
void nn_ssd_free(nn_ssd *net);
/* Faces in the image (min_score 0.5 and at most max_results 100 by
 * default), after non-maximum suppression, best first. */
abis_status nn_ssd_detect(nn_ctx *ctx, const nn_ssd *net, const nn_image *img, double min_score,
                          int max_results, nn_detection **out, size_t *n, abis_error *err);

#endif
