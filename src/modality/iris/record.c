/*
 * record.c: reading (and, for tests and export, writing) ISO/IEC
 * 19794-6:2005 iris image records (record.h).
 */
#include "modality/iris/record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

int abis_iris_record_is(const void *buf, size_t len)
{
    return len >= 4 && memcmp(buf, "IIR\0", 4) == 0;
}

/* Decode one image of the record in its declared format. */
static abis_status decode_image(const unsigned char *img, size_t n, unsigned format, unsigned w,
                                unsigned h, unsigned depth, abis_image *out, abis_error *err)
{
    switch (format) {
    case ABIS_IRIS_RECORD_FORMAT_MONO_RAW:
        if (depth != 8)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "iris record: raw images of %u bits per pixel are not supported "
                                  "(8 are)",
                                  depth);
        if (w == 0 || h == 0 || w > ABIS_IMAGE_MAX_SIDE || h > ABIS_IMAGE_MAX_SIDE)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "iris record: raw image size %ux%u is out of range", w, h);
        if ((size_t)w * h != n)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "iris record: raw image of %ux%u needs %zu bytes, the record "
                                  "holds %zu",
                                  w, h, (size_t)w * h, n);
        out->pixels = malloc(n);
        if (!out->pixels)
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
        memcpy(out->pixels, img, n);
        out->width = (int)w;
        out->height = (int)h;
        out->ppi = 0;
        return ABIS_OK;
    case ABIS_IRIS_RECORD_FORMAT_MONO_JPEG:
    case ABIS_IRIS_RECORD_FORMAT_RGB_JPEG:
        return abis_image_decode(img, n, "iris record image", out, err);
    case 0x000A:
    case 0x000C:
        return abis_error_set(err, ABIS_E_INVALID,
                              "iris record: JPEG-LS images are not supported (raw and JPEG are)");
    case 0x000E:
    case 0x0010:
        return abis_error_set(err, ABIS_E_INVALID,
                              "iris record: JPEG 2000 images are not supported (raw and JPEG "
                              "are)");
    default:
        return abis_error_set(err, ABIS_E_INVALID, "iris record: unknown image format 0x%04x",
                              format);
    }
}

/* The body of abis_iris_record_decode; may leave a decoded image in *out
 * when it fails on a later part of the record. */
static abis_status decode_record(const void *buf, size_t len, int want_eye, abis_image *out,
                                 int *eye, abis_error *err)
{
    const unsigned char *p = buf;
    memset(out, 0, sizeof *out);
    if (!abis_iris_record_is(buf, len))
        return abis_error_set(err, ABIS_E_INVALID,
                              "not an ISO/IEC 19794-6 iris record (no \"IIR\" signature)");
    if (len < ABIS_IRIS_RECORD_HEADER)
        return abis_error_set(err, ABIS_E_INVALID,
                              "iris record: %zu bytes, shorter than its 45-byte header", len);
    if (memcmp(p + 4, "010\0", 4) != 0)
        return abis_error_set(err, ABIS_E_INVALID,
                              "iris record: version '%.3s' is not supported (ISO/IEC "
                              "19794-6:2005, version 010, is)",
                              (const char *)p + 4);
    uint32_t record_len = be32(p + 8);
    unsigned n_eyes = p[14], header_len = be16(p + 15), format = be16(p + 21);
    unsigned w = be16(p + 23), h = be16(p + 25), depth = p[27];
    if (record_len != len)
        return abis_error_set(err, ABIS_E_INVALID,
                              "iris record: the header says %u bytes, the record has %zu "
                              "(truncated or padded)",
                              (unsigned)record_len, len);
    if (header_len != ABIS_IRIS_RECORD_HEADER)
        return abis_error_set(err, ABIS_E_INVALID, "iris record: header length %u, expected 45",
                              header_len);
    if (n_eyes == 0 || n_eyes > 2)
        return abis_error_set(err, ABIS_E_INVALID, "iris record: %u eyes (1 or 2 expected)",
                              n_eyes);
    size_t at = ABIS_IRIS_RECORD_HEADER;
    for (unsigned e = 0; e < n_eyes; e++) {
        if (len - at < 3)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "iris record: truncated in the header of eye %u", e + 1);
        unsigned pos = p[at], n_images = be16(p + at + 1);
        at += 3;
        if (pos > 2)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "iris record: eye %u has position %u (0, 1 or 2 expected)", e + 1,
                                  pos);
        if (n_images == 0)
            return abis_error_set(err, ABIS_E_INVALID, "iris record: eye %u holds no image", e + 1);
        for (unsigned i = 0; i < n_images; i++) {
            if (len - at < 11)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "iris record: truncated in the header of image %u of eye %u",
                                      i + 1, e + 1);
            uint32_t n = be32(p + at + 7);
            at += 11;
            if (n > len - at)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "iris record: image %u of eye %u claims %u bytes, only %zu "
                                      "remain",
                                      i + 1, e + 1, (unsigned)n, len - at);
            int wanted = (want_eye != 1 && want_eye != 2) || want_eye == (int)pos;
            if (wanted && !out->pixels) {
                abis_status st = decode_image(p + at, n, format, w, h, depth, out, err);
                if (st != ABIS_OK)
                    return st;
                if (eye)
                    *eye = (int)pos;
            }
            at += n;
        }
    }
    if (at != len)
        return abis_error_set(err, ABIS_E_INVALID,
                              "iris record: %zu bytes left over after the last image", len - at);
    if (!out->pixels)
        return abis_error_set(err, ABIS_E_INVALID, "iris record: it holds no %s eye",
                              want_eye == 1 ? "right" : "left");
    return ABIS_OK;
}

abis_status abis_iris_record_decode(const void *buf, size_t len, int want_eye, abis_image *out,
                                    int *eye, abis_error *err)
{
    abis_status st = decode_record(buf, len, want_eye, out, eye, err);
    if (st != ABIS_OK)
        abis_image_free(out); /* the image was fine, the record around it is not */
    return st;
}

abis_status abis_iris_record_encode(const abis_image *img, int eye, unsigned char **out,
                                    size_t *len, abis_error *err)
{
    size_t n = (size_t)img->width * (size_t)img->height;
    size_t total = ABIS_IRIS_RECORD_HEADER + 3 + 11 + n;
    if (img->width <= 0 || img->height <= 0 || img->width > 65535 || img->height > 65535 ||
        total > UINT32_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "image too large for an iris record");
    unsigned char *p = calloc(1, total);
    if (!p)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    memcpy(p, "IIR", 4);     /* with its NUL */
    memcpy(p + 4, "010", 4); /* version, with its NUL */
    put32(p + 8, (uint32_t)total);
    p[14] = 1;                              /* one eye */
    put16(p + 15, ABIS_IRIS_RECORD_HEADER); /* record header length */
    put16(p + 21, ABIS_IRIS_RECORD_FORMAT_MONO_RAW);
    put16(p + 23, (unsigned)img->width);
    put16(p + 25, (unsigned)img->height);
    p[27] = 8;               /* intensity depth */
    memset(p + 29, '0', 16); /* device unique id: none */
    size_t at = ABIS_IRIS_RECORD_HEADER;
    p[at] = (unsigned char)eye;
    put16(p + at + 1, 1);
    at += 3;
    put16(p + at, 1);          /* image sequence number */
    p[at + 2] = 254;           /* quality: not computed */
    put16(p + at + 3, 0xFFFF); /* rotation angle: undefined */
    put16(p + at + 5, 0xFFFF); /* rotation uncertainty: undefined */
    put32(p + at + 7, (uint32_t)n);
    memcpy(p + at + 11, img->pixels, n);
    *out = p;
    *len = total;
    return ABIS_OK;
}
