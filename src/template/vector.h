/*
 * vector.h: vector templates (face, voice embeddings): validation where they
 * enter libabis, and the exchange formats they arrive in.
 *
 * A vector template is validated once, here: the number of values must be the
 * modality's dimension, every value finite and representable as float32, the
 * norm non-zero; it is then L2-normalised.  Below this line it is trusted.
 */
#ifndef ABIS_TEMPLATE_VECTOR_H
#define ABIS_TEMPLATE_VECTOR_H

#include <stddef.h>

#include "abis/error.h"

/* Validate `n` values against `expected_dim` and write the L2-normalised
 * vector to `out` (room for n floats; may equal `v`).  `what` names the input
 * in messages ("probe", "template 2") and `modality` the modality:
 *   "probe has 511 values, modality 'face' expects 512"
 *   "template 2 value 17 is NaN"  /  "probe has zero norm" */
abis_status abis_vector_validate(const float *v, size_t n, size_t expected_dim,
                                 const char *modality, const char *what, float *out,
                                 abis_error *err);

/* Parse a vector from memory.  On success *out is malloc'd (caller frees) and
 * *n is the number of values; values out of float32 range are refused.
 *   npy:  NumPy .npy v1/v2/v3, dtype <f4 or <f8, C order, 1-D or (1, n)
 *   json: a JSON array of numbers
 *   raw:  little-endian float32, length a multiple of 4 */
abis_status abis_vector_parse_npy(const void *buf, size_t len, float **out, size_t *n,
                                  abis_error *err);
abis_status abis_vector_parse_json(const char *text, size_t len, float **out, size_t *n,
                                   abis_error *err);
abis_status abis_vector_parse_raw(const void *buf, size_t len, float **out, size_t *n,
                                  abis_error *err);

/* Read a vector file, choosing the format by content: the .npy magic, a
 * leading '[' (after white space) for JSON, otherwise raw float32.  Messages
 * name the file. */
abis_status abis_vector_read_file(const char *path, float **out, size_t *n, abis_error *err);

#endif
