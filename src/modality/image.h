/*
 * image.h: decoding capture images into 8-bit greyscale, for the image
 * modalities (iris, fingerprint; face later).
 *
 * Formats: BMP (Windows 3.x / v4 / v5, 8-bit palettised, 24- and 32-bit;
 * uncompressed), PGM (P5, 8-bit; P2), PNG (libpng), JPEG (libjpeg-turbo),
 * TIFF (libtiff).  Colour is converted to grey as ITU-R BT.601 luma.  Every
 * malformed, truncated or oversized image is refused with the reason.
 */
#ifndef ABIS_MODALITY_IMAGE_H
#define ABIS_MODALITY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"

#define ABIS_IMAGE_MAX_SIDE 8192 /* larger images are refused, not decoded */

typedef struct abis_image {
    int width, height;
    uint8_t *pixels; /* width * height bytes, row-major, top row first */
    double ppi;      /* pixels per inch from the file (BMP pixels per metre, PNG pHYs,
                      * JPEG JFIF density, TIFF resolution tags), or 0 when it has none */
} abis_image;

/* Decode an image held in memory, choosing the format by its signature.
 * `what` names it in messages ("eye.bmp").  On success out->pixels is
 * malloc'd; free with abis_image_free. */
abis_status abis_image_decode(const void *buf, size_t len, const char *what, abis_image *out,
                              abis_error *err);
/* Read and decode a file. */
abis_status abis_image_read_file(const char *path, abis_image *out, abis_error *err);
void abis_image_free(abis_image *img);

#endif
