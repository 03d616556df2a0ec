/*
 * weights.h: loading a network's trained weights as TensorFlow.js saves them
 * (the format of the @vladmandic/face-api model/ folder): a weights manifest
 * MODEL-weights_manifest.json -- groups of weights, each group stored in
 * binary shard files read one after the other -- naming each tensor with its
 * shape and data type and, for quantised tensors, how to restore the float
 * values:
 *   uint8 / uint16   value = q * scale + min   (quantization.scale, .min)
 *   float16          IEEE half precision
 * tfjs computes q * scale + min in double precision and rounds it to
 * float32; so do we, so the weights are bit-identical to the reference's.
 *
 * A missing or unreadable file, a shard shorter or longer than the manifest
 * says, a malformed manifest, or a tensor missing or of the wrong shape is an
 * error that names the file and what is wrong.
 */
#ifndef ABIS_NN_WEIGHTS_H
#define ABIS_NN_WEIGHTS_H

#include "abis/error.h"
#include "nn/nn.h"

typedef struct nn_weights nn_weights;

/* Load DIR/MODEL-weights_manifest.json and its shards (MODEL:
 * "face_recognition_model").  *out is freed with nn_weights_free. */
abis_status nn_weights_load(const char *dir, const char *model, nn_weights **out, abis_error *err);
void nn_weights_free(nn_weights *w);

/* The float values of tensor `name`, which must have `rank` dimensions equal
 * to shape[0..rank) (an entry -1 accepts any size; shape may be NULL when
 * rank is 0 or any shape will do).  NULL with the reason in err otherwise.
 * The values live as long as `w`. */
const float *nn_weights_get(const nn_weights *w, const char *name, int rank, const int *shape,
                            abis_error *err);
/* The dimensions of tensor `name` (NULL when absent): *rank and dims[0..4). */
const int *nn_weights_shape(const nn_weights *w, const char *name, int *rank);

/* A convolution filter `name` of shape [kh, kw, cin, cout] into *f (depthwise
 * filters: [kh, kw, cin, 1]).  ABIS_OK or the reason. */
abis_status nn_weights_conv(const nn_weights *w, const char *name, int kh, int kw, int cin,
                            int cout, nn_conv *f, abis_error *err);
/* A vector `name` of n values. */
const float *nn_weights_vec(const nn_weights *w, const char *name, int n, abis_error *err);

/* The number of tensors and float values loaded (for messages and tests). */
size_t nn_weights_count(const nn_weights *w);
size_t nn_weights_values(const nn_weights *w);

#endif
