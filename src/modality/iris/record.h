/*
 * record.h: ISO/IEC 19794-6:2005 iris image records, read as capture input.
 *
 * A record is a 45-byte record header ("IIR\0", version "010\0", record
 * length, capture device, number of eyes, header length, image properties,
 * iris diameter, image format, raw width and height, intensity depth, image
 * transformation, 16-byte device id), then per eye a 3-byte subtype header
 * (eye position: 0 undefined, 1 right, 2 left; number of images) and per
 * image an 11-byte header (sequence number, quality, rotation angle,
 * rotation uncertainty, image length) followed by the image: 8-bit raw
 * (format 2), JPEG (6, 8) or another format we refuse by name (JPEG-LS,
 * JPEG 2000).  Integers are big-endian.  docs/FORMATS.md, "Iris".
 */
#ifndef ABIS_IRIS_RECORD_H
#define ABIS_IRIS_RECORD_H

#include <stddef.h>

#include "abis/error.h"
#include "modality/image.h"

#define ABIS_IRIS_RECORD_HEADER 45
#define ABIS_IRIS_RECORD_FORMAT_MONO_RAW 0x0002
#define ABIS_IRIS_RECORD_FORMAT_MONO_JPEG 0x0006
#define ABIS_IRIS_RECORD_FORMAT_RGB_JPEG 0x0008

/* 1 when the bytes start like an ISO/IEC 19794-6 record ("IIR\0"). */
int abis_iris_record_is(const void *buf, size_t len);

/* The first image of the record (of eye `want_eye` when it is 1 or 2 and
 * present; 0: the first eye), decoded to 8-bit grey; *eye gets its position
 * (0, 1 right, 2 left).  A malformed record (truncated, lengths that do not
 * add up, an image outside the record) is refused with the reason. */
abis_status abis_iris_record_decode(const void *buf, size_t len, int want_eye, abis_image *out,
                                    int *eye, abis_error *err);

/* Write a record holding one 8-bit raw image of one eye (for tests and
 * export); *out malloc'd. */
abis_status abis_iris_record_encode(const abis_image *img, int eye, unsigned char **out,
                                    size_t *len, abis_error *err);

#endif
