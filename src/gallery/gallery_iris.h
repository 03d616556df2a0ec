/*
 * gallery_iris.h: the iris-code gallery (gallery.h's interface for the iris
 * modality).  Templates are exactly sizeof(abis_iris_code) = 512 bytes: the
 * 2048-bit code then its 2048-bit mask (modality/iris/iris.h).  The score of
 * a template is 1 - HD_norm, Daugman's normalised fractional Hamming
 * distance minimised over shifts -ABIS_IRIS_MAX_SHIFT..ABIS_IRIS_MAX_SHIFT
 * of the probe, exactly as abis_iris_distance computes it (higher = more
 * similar; it may exceed 1 for codes with many comparable bits).
 * docs/IRIS.md describes the layout, the kernels and the threads.
 */
#ifndef ABIS_GALLERY_IRIS_H
#define ABIS_GALLERY_IRIS_H

#include "gallery/gallery.h"

/* Create an empty iris gallery; free it with abis_gallery_destroy. */
abis_status abis_gallery_iris_create(abis_gallery **out, abis_error *err);

/* Threads a search may use (0: one per online CPU, the default).  Results do
 * not depend on it.  `g` must be an iris gallery. */
void abis_gallery_iris_set_threads(abis_gallery *g, unsigned threads);

#endif
