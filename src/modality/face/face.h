/*
 * face.h: what the face modality's files share (src/modality/face/): the
 * loaded networks, the quality measures and gate, and the Euclidean gallery.
 * The public side is include/abis/face.h.
 */
#ifndef ABIS_MODALITY_FACE_H
#define ABIS_MODALITY_FACE_H

#include <stddef.h>

#include "abis/face.h"
#include "gallery/gallery.h"
#include "nn/face_nets.h"

/* ---- models.c: the networks, loaded once per weights folder ------------------ */

typedef struct face_models face_models;

/* The networks in the folder the options name (or $ABIS_FACE_MODELS, or the
 * built-in folder), with the detector the options choose loaded.  Loaded on
 * first use and kept for the life of the process; thread-safe.  The message
 * of a failure says how to install the weights. */
abis_status face_models_get(const abis_face_options *o, face_models **out, abis_error *err);
const nn_ssd *face_models_ssd(const face_models *m);
const nn_tinyface *face_models_tiny(const face_models *m);
const nn_landmarks *face_models_landmarks(const face_models *m);
const nn_facerec *face_models_facerec(const face_models *m);
/* The folder a set of options reads the weights from. */
const char *face_models_dir(const abis_face_options *o);

/* ---- options.c ------------------------------------------------------------------ */

/* The process-wide options (abis_face_configure), their models folder
 * copied into dir (cap bytes), or the error in $ABIS_FACE_OPTIONS when it
 * does not parse. */
abis_status face_configured_status(abis_face_options *o, char *dir, size_t cap, abis_error *err);

/* ---- quality.c: measures on the landmarks and the descriptor crop -------------- */

/* Measure a face: `pts` its 68 landmarks in photo pixels, `crop` the
 * descriptor network's 150 x 150 RGB input.  Fills the measures of `info`. */
void face_measure(const float pts[2 * ABIS_FACE_LANDMARKS], const nn_tensor *crop,
                  abis_face_info *info);
/* The checks `info` fails under `o`, as a reason for a person ("eyes 14
 * pixels apart, at least 20 needed; ...") in `reason`; returns how many. */
int face_gate(const abis_face_info *info, const abis_face_options *o, char *reason, size_t cap);
/* The 0..100 quality of a face that passed (docs/face.md). */
double face_quality(const abis_face_info *info, const abis_face_options *o);

/* ---- gallery.c: 1:N search by Euclidean distance ------------------------------- */

/* A gallery of face descriptors (ABIS_FACE_DIM float32 each, as stored)
 * whose search ranks by Euclidean distance and scores 1 - distance, like
 * abis_face_compare. */
abis_status face_gallery_create(abis_gallery **out, abis_error *err);
/* 1 - Euclidean distance: the face kind's score. */
double face_score(const float *a, const float *b);

#endif
