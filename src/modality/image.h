/*
 * image.h: decoding capture images into 8-bit greyscale (iris, fingerprint)
 * or RGB (face), for the image modalities.
 *
 * Formats: BMP (Windows 3.x / v4 / v5, 8-bit palettised, 24- and 32-bit;
 * uncompressed), PGM (P5, 8-bit; P2), PNG (libpng), JPEG (libjpeg-turbo),
 * TIFF (libtiff).  Colour is converted to grey as ITU-R BT.601 luma; grey is
 * repeated into R, G and B.  A JPEG's EXIF orientation is applied, so the
 * pixels come out upright.  Every malformed, truncated or oversized image is
 * refused with the reason.
 */
#ifndef ABIS_MODALITY_IMAGE_H
#define ABIS_MODALITY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"

#define ABIS_IMAGE_MAX_SIDE 8192 /* larger images are refused, not decoded */

typedef struct abis_image {
    int width, height;
    uint8_t *pixels;   /* width * height * channels bytes, row-major, top row first */
    double ppi;        /* pixels per inch from the file (BMP pixels per metre, PNG pHYs,
                        * JPEG JFIF density, TIFF resolution tags), or 0 when it has none */
    int channels;      /* 1: grey; 3: R, G, B (0 counts as 1) */
    size_t max_pixels; /* decoding refuses images of more pixels (0: no limit but the side) */
} abis_image;

/* Decode an image held in memory, choosing the format by its signature.
 * `what` names it in messages ("eye.bmp").  On success out->pixels is
 * malloc'd; free with abis_image_free. */
abis_status abis_image_decode(const void *buf, size_t len, const char *what, abis_image *out,
                              abis_error *err);
/* Decode into RGB (3 bytes a pixel), refusing images of more than
 * max_pixels pixels (0: only the side limit) before allocating them. */
abis_status abis_image_decode_rgb(const void *buf, size_t len, const char *what,
                                  size_t max_pixels, abis_image *out, abis_error *err);
/* Read and decode a file. */
abis_status abis_image_read_file(const char *path, abis_image *out, abis_error *err);
/* Wipe the pixels (they are biometric data) and free them. */
void abis_image_free(abis_image *img);

#endif
