/*
 * gallery_finger.h: the fingerprint gallery (gallery.h's interface for the
 * minutiae modality): templates are the canonical minutiae bytes
 * (modality/finger/finger.h, docs/FORMATS.md), kept in memory prepared for
 * matching.  A search runs in two stages (docs/FINGER.md, "1:N"):
 *
 *   1. pre-selection: every row the filter allows, of a compatible finger
 *      position (equal, or either unknown), is scored by the cheap
 *      first-stage similarity (abis_finger_preselect); the best
 *      max(min, share * rows) go on;
 *   2. the full matcher (abis_finger_match) scores those, and the top-k
 *      distinct subjects by their best template are returned.
 *
 * With no more rows than `min`, stage 1 is skipped and every row is
 * matched in full.
 */
#ifndef ABIS_GALLERY_FINGER_H
#define ABIS_GALLERY_FINGER_H

#include "gallery/gallery.h"

/* Stage 1 keeps at least this many rows ... */
#define ABIS_FINGER_PRESELECT_MIN 500
/* ... or this share of them, whichever is more (docs/FINGER.md gives the
 * measurements behind both). */
#define ABIS_FINGER_PRESELECT_SHARE 0.02

/* Create an empty finger gallery; free it with abis_gallery_destroy. */
abis_status abis_gallery_finger_create(abis_gallery **out, abis_error *err);

/* Threads a search may use (0: one per online CPU, the default). */
void abis_gallery_finger_set_threads(abis_gallery *g, unsigned threads);
/* Pre-selection size: keep max(min, share * rows) for the full matcher. */
void abis_gallery_finger_set_preselect(abis_gallery *g, size_t min, double share);

#endif
