/*
 * input_json.h: one template as it arrives in JSON -- an abisd request body
 * or an `abis import` line -- turned into an abis_template_input:
 *
 *   {"modality": "face", "vector": [0.01, ...]}           a vector as numbers
 *   {"modality": "face", "vector_b64": "AACAPw..."}       base64 of little-endian float32
 *   {"modality": "iris", "image_b64": "/9j/4AAQ...",      a capture (image file bytes)
 *    "position": "left"}                                  for a modality that takes captures
 *
 *   {"modality": "finger", "image_b64": "SUkqAA...",      a fingerprint image, or an
 *    "position": 2, "ppi": 1000}                          ISO/ANSI minutiae record
 *
 * plus the optional "position" (0-10, "right" = 1, "left" = 2), "quality"
 * (a number) and "ppi" (a capture's resolution, a positive number; without
 * it the file's own or 500).  Exactly one of vector, vector_b64 and image_b64.  Whether the
 * modality takes vectors or captures is the modality plug-in's decision (the
 * engine says so when they do not fit); this file only checks the JSON.
 */
#ifndef ABIS_TEMPLATE_INPUT_JSON_H
#define ABIS_TEMPLATE_INPUT_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "abis/abis.h"

/* A parsed template: `in` points into `obj` (the modality name) and into the
 * buffers below, which it owns. */
typedef struct abis_json_template {
    abis_template_input in;
    float *vector;
    unsigned char *capture;
} abis_json_template;

/* Parse the template object `obj`; `what` names it in messages
 * ("templates[1]").  Returns ABIS_OK, ABIS_E_NOMEM, or ABIS_E_INVALID with
 * the exact reason in `err` and a machine code in *code:
 *   wrong_type     a field (or obj) has the wrong JSON type
 *   missing_field  no "modality", or none of vector / vector_b64 / image_b64
 *   unknown_field  a field not listed above
 *   invalid        two data fields, a position out of range
 *   bad_vector     an empty vector, a value that is not a number or not float32
 *   bad_base64     vector_b64 or image_b64 is not base64
 * *t is zeroed first and needs abis_json_template_free in every case. */
abis_status abis_json_template_parse(json_t *obj, const char *what, abis_json_template *t,
                                     const char **code, abis_error *err);
void abis_json_template_free(abis_json_template *t);

/* Decode standard base64 (RFC 4648 section 4; '=' padding optional, no
 * white space) into a malloc'd buffer.  ABIS_E_INVALID naming the offset of
 * the first character that is not base64. */
abis_status abis_base64_decode(const char *text, size_t len, unsigned char **out, size_t *n,
                               abis_error *err);

#endif
