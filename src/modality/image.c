/*
 * image.c: decoding capture images (BMP, PGM, PNG, JPEG, TIFF) held in memory
 * into 8-bit greyscale or RGB, refusing malformed, truncated and oversized
 * input with the reason.  BMP and PGM are parsed here; PNG, JPEG and TIFF go through
 * libpng, libjpeg-turbo and libtiff, whose error paths are turned into
 * abis_error messages (nothing is printed, nothing global is touched, so
 * decoding is thread-safe).
 */
#include "modality/image.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <sodium.h>
#include <png.h>
#include <tiffio.h>

/* ITU-R BT.601 luma, rounded: Y = 0.299 R + 0.587 G + 0.114 B. */
static uint8_t luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((299u * r + 587u * g + 114u * b + 500u) / 1000u);
}

/* Check dimensions against ABIS_IMAGE_MAX_SIDE and out->max_pixels and
 * allocate the pixels (out->channels bytes each). */
static abis_status image_alloc(abis_image *out, long w, long h, const char *what, abis_error *err)
{
    if (w <= 0 || h <= 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s: bad dimensions %ld x %ld", what, w, h);
    if (w > ABIS_IMAGE_MAX_SIDE || h > ABIS_IMAGE_MAX_SIDE)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: %ld x %ld pixels is larger than the %d-pixel limit per side",
                              what, w, h, ABIS_IMAGE_MAX_SIDE);
    if (out->max_pixels && (size_t)w * (size_t)h > out->max_pixels)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: %ld x %ld pixels (%.1f megapixels) is more than the limit of "
                              "%.1f megapixels",
                              what, w, h, (double)w * (double)h / 1e6, out->max_pixels / 1e6);
    out->width = (int)w;
    out->height = (int)h;
    out->ppi = 0;
    out->pixels = malloc((size_t)w * (size_t)h * (size_t)out->channels);
    if (!out->pixels)
        return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory for %ld x %ld pixels", what,
                              w, h);
    return ABIS_OK;
}

/* Store pixel k: its luma in a grey image, its colour in an RGB one. */
static void put(abis_image *out, size_t k, unsigned r, unsigned g, unsigned b)
{
    if (out->channels == 3) {
        out->pixels[3 * k] = (uint8_t)r;
        out->pixels[3 * k + 1] = (uint8_t)g;
        out->pixels[3 * k + 2] = (uint8_t)b;
    } else {
        out->pixels[k] = luma(r, g, b);
    }
}

void abis_image_free(abis_image *img)
{
    if (!img)
        return;
    if (img->pixels)
        sodium_memzero(img->pixels, (size_t)img->width * (size_t)img->height *
                                        (size_t)(img->channels ? img->channels : 1));
    free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = 0;
}

/* ---- BMP ---------------------------------------------------------------- */

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Bit position and width of a BITFIELDS mask. */
static void mask_shift(uint32_t m, int *shift, int *bits)
{
    *shift = 0;
    *bits = 0;
    if (!m)
        return;
    while (!(m & 1u)) {
        m >>= 1;
        (*shift)++;
    }
    while (m & 1u) {
        m >>= 1;
        (*bits)++;
    }
}

static unsigned mask_get(uint32_t px, int shift, int bits)
{
    if (bits == 0)
        return 0;
    uint32_t v = (px >> shift) & ((bits >= 32) ? 0xffffffffu : ((1u << bits) - 1u));
    if (bits >= 8)
        return (unsigned)(v >> (bits - 8));
    return (unsigned)(v * 255u / ((1u << bits) - 1u));
}

static abis_status decode_bmp(const uint8_t *b, size_t len, const char *what, abis_image *out,
                              abis_error *err)
{
    if (len < 14 + 12)
        return abis_error_set(err, ABIS_E_INVALID, "%s: truncated BMP (%zu bytes, no header)",
                              what, len);
    uint32_t data_off = rd32(b + 10);
    uint32_t hsize = rd32(b + 14);
    long w, h;
    unsigned bpp, compression = 0, ncolours = 0;
    if (hsize == 12) { /* OS/2 BITMAPCOREHEADER */
        w = (long)rd16(b + 18);
        h = (long)(int16_t)rd16(b + 20);
        bpp = rd16(b + 24);
    } else if (hsize == 40 || hsize == 52 || hsize == 56 || hsize == 108 || hsize == 124) {
        if (len < 14 + (size_t)hsize)
            return abis_error_set(err, ABIS_E_INVALID, "%s: truncated BMP header", what);
        w = (long)(int32_t)rd32(b + 18);
        h = (long)(int32_t)rd32(b + 22);
        if (rd16(b + 26) != 1)
            return abis_error_set(err, ABIS_E_INVALID, "%s: BMP has %u colour planes (1 expected)",
                                  what, (unsigned)rd16(b + 26));
        bpp = rd16(b + 28);
        compression = rd32(b + 30);
        ncolours = rd32(b + 46);
    } else {
        return abis_error_set(err, ABIS_E_INVALID, "%s: unsupported BMP header size %u", what,
                              (unsigned)hsize);
    }
    int bottom_up = 1;
    if (h < 0) {
        bottom_up = 0;
        h = -h;
    }
    if (bpp != 8 && bpp != 24 && bpp != 32)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: unsupported BMP bit depth %u (8, 24 or 32 supported)", what,
                              bpp);
    /* 0 = BI_RGB; 3 = BI_BITFIELDS (32-bit only); RLE and embedded JPEG/PNG are refused. */
    if (!(compression == 0 || (compression == 3 && bpp == 32)))
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: unsupported BMP compression %u (only uncompressed)", what,
                              compression);
    if (w <= 0 || h <= 0 || w > ABIS_IMAGE_MAX_SIDE || h > ABIS_IMAGE_MAX_SIDE)
        return image_alloc(out, w, h, what, err); /* refuses with the reason */

    uint8_t pal[256][3];
    if (bpp == 8) {
        size_t entry = (hsize == 12) ? 3 : 4;
        size_t n = ncolours ? ncolours : 256;
        if (n > 256)
            return abis_error_set(err, ABIS_E_INVALID, "%s: BMP palette of %zu colours (max 256)",
                                  what, n);
        size_t poff = 14 + (size_t)hsize;
        if (poff + n * entry > len)
            return abis_error_set(err, ABIS_E_INVALID, "%s: truncated BMP palette", what);
        memset(pal, 0, sizeof pal);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *e = b + poff + i * entry; /* B, G, R */
            pal[i][0] = e[2];
            pal[i][1] = e[1];
            pal[i][2] = e[0];
        }
    }
    int rs = 16, rb = 8, gs = 8, gb = 8, bs = 0, bbits = 8;
    if (compression == 3) {
        if (len < 14 + 40 + 12)
            return abis_error_set(err, ABIS_E_INVALID, "%s: truncated BMP bit masks", what);
        mask_shift(rd32(b + 54), &rs, &rb);
        mask_shift(rd32(b + 58), &gs, &gb);
        mask_shift(rd32(b + 62), &bs, &bbits);
    }
    size_t stride = (((size_t)w * bpp + 31) / 32) * 4;
    if (data_off > len || (size_t)h * stride > len - data_off)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: truncated BMP (%zu bytes; the %ld x %ld pixels need %zu)", what,
                              len, w, h, (size_t)data_off + (size_t)h * stride);
    abis_status st = image_alloc(out, w, h, what, err);
    if (st != ABIS_OK)
        return st;
    for (long y = 0; y < h; y++) {
        const uint8_t *row = b + data_off + (size_t)(bottom_up ? h - 1 - y : y) * stride;
        size_t o = (size_t)y * (size_t)w;
        for (long x = 0; x < w; x++) {
            if (bpp == 8) {
                const uint8_t *c = pal[row[x]];
                put(out, o + (size_t)x, c[0], c[1], c[2]);
            } else if (bpp == 24) {
                const uint8_t *p = row + 3 * x;
                put(out, o + (size_t)x, p[2], p[1], p[0]);
            } else {
                uint32_t px = rd32(row + 4 * x);
                put(out, o + (size_t)x, mask_get(px, rs, rb), mask_get(px, gs, gb),
                    mask_get(px, bs, bbits));
            }
        }
    }
    /* Resolution: pixels per metre in the info header. */
    if (hsize >= 40) {
        uint32_t ppm = rd32(b + 38);
        if (ppm > 0 && ppm < 1000000)
            out->ppi = ppm * 0.0254;
    }
    return ABIS_OK;
}

/* ---- PGM ---------------------------------------------------------------- */

/* Skip white space and '#' comments; returns the new position. */
static size_t pnm_skip(const uint8_t *b, size_t len, size_t i)
{
    for (;;) {
        while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r' ||
                           b[i] == '\v' || b[i] == '\f'))
            i++;
        if (i < len && b[i] == '#') {
            while (i < len && b[i] != '\n')
                i++;
            continue;
        }
        return i;
    }
}

/* Parse a decimal number; -1 when there is none or it overflows. */
static long pnm_number(const uint8_t *b, size_t len, size_t *i)
{
    *i = pnm_skip(b, len, *i);
    if (*i >= len || b[*i] < '0' || b[*i] > '9')
        return -1;
    long v = 0;
    while (*i < len && b[*i] >= '0' && b[*i] <= '9') {
        v = v * 10 + (b[*i] - '0');
        if (v > 1000000000L)
            return -1;
        (*i)++;
    }
    return v;
}

static abis_status decode_pgm(const uint8_t *b, size_t len, const char *what, abis_image *out,
                              abis_error *err)
{
    int ascii = b[1] == '2';
    size_t i = 2;
    long w = pnm_number(b, len, &i);
    long h = pnm_number(b, len, &i);
    long maxval = pnm_number(b, len, &i);
    if (w < 0 || h < 0 || maxval < 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s: truncated or malformed PGM header", what);
    if (maxval < 1 || maxval > 255)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: unsupported PGM maximum value %ld (8-bit, at most 255)", what,
                              maxval);
    if (w == 0 || h == 0 || w > ABIS_IMAGE_MAX_SIDE || h > ABIS_IMAGE_MAX_SIDE)
        return image_alloc(out, w, h, what, err);
    size_t n = (size_t)w * (size_t)h;
    if (!ascii) {
        if (i >= len)
            return abis_error_set(err, ABIS_E_INVALID, "%s: truncated PGM (no pixel data)", what);
        i++; /* the single white-space character after maxval */
        if (len - i < n)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s: truncated PGM (%zu pixel bytes, %zu needed)", what,
                                  len - i, n);
    }
    abis_status st = image_alloc(out, w, h, what, err);
    if (st != ABIS_OK)
        return st;
    for (size_t k = 0; k < n; k++) {
        long v;
        if (ascii) {
            v = pnm_number(b, len, &i);
            if (v < 0 || v > maxval) {
                abis_image_free(out);
                return abis_error_set(err, ABIS_E_INVALID,
                                      v < 0 ? "%s: truncated PGM (pixel %zu missing)"
                                            : "%s: PGM pixel %zu above the maximum value",
                                      what, k);
            }
        } else {
            v = b[i + k];
            if (v > maxval)
                v = maxval;
        }
        unsigned g = (unsigned)((v * 255 + maxval / 2) / maxval);
        put(out, k, g, g, g);
    }
    return ABIS_OK;
}

/* ---- PNG (libpng simplified API) ----------------------------------------- */

static uint32_t rd32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The horizontal resolution of a PNG from its pHYs chunk (PNG 1.2, 11.3.5.3:
 * pixels per unit X, Y, unit 1 = metre), or 0 when it has none; the simplified
 * API does not report it, so the chunks before the image data are walked
 * here (lengths are checked against the buffer; libpng has checked the rest). */
static double png_ppi(const uint8_t *b, size_t len)
{
    size_t at = 8;
    while (at + 12 <= len) {
        uint32_t n = rd32be(b + at);
        const uint8_t *type = b + at + 4;
        if (n > len - at - 12)
            return 0;
        if (memcmp(type, "pHYs", 4) == 0 && n == 9) {
            uint32_t ppu = rd32be(b + at + 8);
            return b[at + 16] == 1 && ppu > 0 && ppu < 1000000 ? ppu * 0.0254 : 0;
        }
        if (memcmp(type, "IDAT", 4) == 0 || memcmp(type, "IEND", 4) == 0)
            return 0; /* pHYs must come before the image data */
        at += 12 + (size_t)n;
    }
    return 0;
}

static abis_status decode_png(const uint8_t *b, size_t len, const char *what, abis_image *out,
                              abis_error *err)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, b, len))
        return abis_error_set(err, ABIS_E_INVALID, "%s: bad PNG: %s", what, im.message);
    int colour = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
    abis_status st = image_alloc(out, (long)im.width, (long)im.height, what, err);
    if (st != ABIS_OK) {
        png_image_free(&im);
        return st;
    }
    uint8_t *rgb = NULL;
    if (out->channels == 3) {
        im.format = PNG_FORMAT_RGB; /* libpng expands grey itself */
        colour = 0;
    } else if (colour) {
        im.format = PNG_FORMAT_RGB;
        rgb = malloc((size_t)im.width * im.height * 3);
        if (!rgb) {
            png_image_free(&im);
            abis_image_free(out);
            return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory", what);
        }
    } else {
        im.format = PNG_FORMAT_GRAY;
    }
    /* Composite any transparency onto white, as a viewer would show it. */
    png_color bg = {255, 255, 255};
    if (!png_image_finish_read(&im, &bg, colour ? (void *)rgb : (void *)out->pixels, 0, NULL)) {
        free(rgb);
        abis_image_free(out);
        return abis_error_set(err, ABIS_E_INVALID, "%s: bad PNG: %s", what, im.message);
    }
    if (colour) {
        size_t n = (size_t)im.width * im.height;
        for (size_t k = 0; k < n; k++)
            out->pixels[k] = luma(rgb[3 * k], rgb[3 * k + 1], rgb[3 * k + 2]);
        free(rgb);
    }
    out->ppi = png_ppi(b, len);
    return ABIS_OK;
}

/* ---- JPEG (libjpeg-turbo) ------------------------------------------------ */

typedef struct jpeg_err_ctx {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_err_ctx;

static void jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_err_ctx *e = (jpeg_err_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

static void jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; /* silent */ }

static uint8_t clamp_trunc(double v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* JFIF YCbCr -> RGB in place, as jpeg-js computes it (decoder.js). */
static void ycc_to_rgb_jfif(uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++, p += 3) {
        double y = p[0], cb = p[1] - 128.0, cr = p[2] - 128.0;
        p[0] = clamp_trunc(y + 1.402 * cr);
        p[1] = clamp_trunc(y - 0.3441363 * cb - 0.71413636 * cr);
        p[2] = clamp_trunc(y + 1.772 * cb);
    }
}

/* The EXIF orientation (1..8) in an APP1 marker, or 1 when there is none. */
static int exif_orientation(const struct jpeg_marker_struct *m)
{
    for (; m; m = m->next) {
        const uint8_t *p = m->data;
        size_t n = m->data_length;
        if (m->marker != JPEG_APP0 + 1 || n < 14 || memcmp(p, "Exif\0\0", 6) != 0)
            continue;
        p += 6;
        n -= 6;
        int le = p[0] == 'I' && p[1] == 'I';
        if (!le && !(p[0] == 'M' && p[1] == 'M'))
            continue;
#define EXIF16(q) (le ? (uint32_t)(q)[0] | (uint32_t)(q)[1] << 8 : (uint32_t)(q)[0] << 8 | (q)[1])
#define EXIF32(q)                                                                                  \
    (le ? rd32(q) : (uint32_t)(q)[0] << 24 | (uint32_t)(q)[1] << 16 | (uint32_t)(q)[2] << 8 | (q)[3])
        uint32_t ifd = EXIF32(p + 4);
        if (ifd > n - 2)
            continue;
        uint32_t count = EXIF16(p + ifd);
        for (uint32_t i = 0; i < count && ifd + 2 + 12 * (i + 1) <= n; i++) {
            const uint8_t *e = p + ifd + 2 + 12 * i;
            if (EXIF16(e) == 0x0112 && EXIF16(e + 2) == 3) { /* Orientation, SHORT */
                uint32_t v = EXIF16(e + 8);
                return v >= 1 && v <= 8 ? (int)v : 1;
            }
        }
#undef EXIF16
#undef EXIF32
    }
    return 1;
}

/* Turn the stored pixels the way EXIF orientation `o` says the camera held
 * them, so that the image is upright (TIFF 6.0 / EXIF 2.3 tag 0x0112). */
static abis_status apply_orientation(abis_image *img, int o, const char *what, abis_error *err)
{
    if (o <= 1)
        return ABIS_OK;
    int w = img->width, h = img->height, c = img->channels ? img->channels : 1;
    int swap = o >= 5; /* 5..8 exchange width and height */
    int nw = swap ? h : w, nh = swap ? w : h;
    uint8_t *to = malloc((size_t)w * (size_t)h * (size_t)c);
    if (!to)
        return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory", what);
    for (int dy = 0; dy < nh; dy++)
        for (int dx = 0; dx < nw; dx++) {
            int sx, sy;
            switch (o) {
            case 2: sx = w - 1 - dx, sy = dy; break;
            case 3: sx = w - 1 - dx, sy = h - 1 - dy; break;
            case 4: sx = dx, sy = h - 1 - dy; break;
            case 5: sx = dy, sy = dx; break;
            case 6: sx = dy, sy = h - 1 - dx; break;
            case 7: sx = w - 1 - dy, sy = h - 1 - dx; break;
            default: sx = w - 1 - dy, sy = dx; break; /* 8 */
            }
            memcpy(to + ((size_t)dy * nw + dx) * c, img->pixels + ((size_t)sy * w + sx) * c,
                   (size_t)c);
        }
    abis_image_free(img);
    img->pixels = to;
    img->width = nw;
    img->height = nh;
    img->channels = c;
    return ABIS_OK;
}

static abis_status decode_jpeg(const uint8_t *b, size_t len, const char *what, abis_image *out,
                               abis_error *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx jerr;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&jerr, 0, sizeof jerr);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit;
    jerr.pub.output_message = jpeg_output_message;
    abis_image *volatile res = out;
    res->pixels = NULL;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        abis_image_free(res);
        return abis_error_set(err, ABIS_E_INVALID, "%s: bad JPEG: %s", what, jerr.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, b, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&cinfo, TRUE);
    /* read now: saved markers are freed with the image by finish_decompress */
    int orientation = exif_orientation(cinfo.marker_list);
    /* libjpeg's YCbCr -> grey keeps Y, which is BT.601 luma. */
    int channels = res->channels == 3 ? 3 : 1;
    /* Colour is made the way the face networks' reference decoder (jpeg-js)
     * makes it: chroma upsampled by replication, then JFIF's YCbCr -> RGB
     * (ITU-R BT.601, full range) in floating point, truncated.  libjpeg's
     * own smoothing upsampler and rounded fixed-point conversion would put
     * colours up to 13 levels from the reference's; this way 92 % of LFW's
     * values are identical and the rest within 3 (the IDCTs differ). */
    int ycc_to_rgb = channels == 3 && cinfo.jpeg_color_space == JCS_YCbCr;
    int grey_to_rgb = channels == 3 && cinfo.jpeg_color_space == JCS_GRAYSCALE;
    cinfo.out_color_space = ycc_to_rgb    ? JCS_YCbCr
                            : grey_to_rgb ? JCS_GRAYSCALE
                            : channels == 3 ? JCS_RGB
                                            : JCS_GRAYSCALE;
    if (channels == 3)
        cinfo.do_fancy_upsampling = FALSE;
    int decoded_channels = grey_to_rgb ? 1 : channels;
    if (cinfo.image_width > ABIS_IMAGE_MAX_SIDE || cinfo.image_height > ABIS_IMAGE_MAX_SIDE ||
        cinfo.image_width == 0 || cinfo.image_height == 0) {
        long w = (long)cinfo.image_width, h = (long)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return image_alloc(res, w, h, what, err);
    }
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != decoded_channels) {
        jpeg_destroy_decompress(&cinfo);
        return abis_error_set(err, ABIS_E_INVALID, "%s: JPEG colour space not convertible to %s",
                              what, channels == 3 ? "RGB" : "grey");
    }
    abis_status st = image_alloc(res, (long)cinfo.output_width, (long)cinfo.output_height, what,
                                 err);
    if (st != ABIS_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    if (cinfo.density_unit == 1 && cinfo.X_density > 0)
        res->ppi = cinfo.X_density;
    else if (cinfo.density_unit == 2 && cinfo.X_density > 0)
        res->ppi = cinfo.X_density * 2.54;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = res->pixels + (size_t)cinfo.output_scanline * cinfo.output_width *
                                         (size_t)decoded_channels;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    /* A truncated stream is padded by libjpeg with a warning; refuse it. */
    if (jerr.pub.num_warnings > 0) {
        char msg[JMSG_LENGTH_MAX];
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, msg);
        jpeg_destroy_decompress(&cinfo);
        abis_image_free(res);
        return abis_error_set(err, ABIS_E_INVALID, "%s: bad JPEG: %s", what, msg);
    }
    jpeg_destroy_decompress(&cinfo);
    size_t n = (size_t)res->width * (size_t)res->height;
    if (ycc_to_rgb)
        ycc_to_rgb_jfif(res->pixels, n);
    if (grey_to_rgb)
        for (size_t k = n; k-- > 0;)
            res->pixels[3 * k] = res->pixels[3 * k + 1] = res->pixels[3 * k + 2] = res->pixels[k];
    return apply_orientation(res, orientation, what, err);
}

/* ---- TIFF (libtiff, reading from memory) --------------------------------- */

typedef struct tiff_mem {
    const uint8_t *buf;
    size_t len, pos;
    char message[256];
} tiff_mem;

static tmsize_t tm_read(thandle_t h, void *dst, tmsize_t n)
{
    tiff_mem *m = (tiff_mem *)h;
    if (n < 0)
        return -1;
    size_t avail = m->pos < m->len ? m->len - m->pos : 0;
    size_t k = (size_t)n < avail ? (size_t)n : avail;
    memcpy(dst, m->buf + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}
static tmsize_t tm_write(thandle_t h, void *src, tmsize_t n)
{
    (void)h;
    (void)src;
    (void)n;
    return -1;
}
static toff_t tm_seek(thandle_t h, toff_t off, int whence)
{
    tiff_mem *m = (tiff_mem *)h;
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
    uint64_t np = base + off;
    if (np > (uint64_t)SIZE_MAX)
        return (toff_t)-1;
    m->pos = (size_t)np;
    return np;
}
static int tm_close(thandle_t h)
{
    (void)h;
    return 0;
}
static toff_t tm_size(thandle_t h) { return ((tiff_mem *)h)->len; }
static int tm_map(thandle_t h, void **base, toff_t *size)
{
    (void)h;
    (void)base;
    (void)size;
    return 0;
}
static void tm_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    tiff_mem *m = (tiff_mem *)user;
    if (!m->message[0]) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        vsnprintf(m->message, sizeof m->message, fmt, ap);
#pragma GCC diagnostic pop
    }
    return 1;
}
static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt,
                           va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1; /* handled: silent */
}

static abis_status decode_tiff(const uint8_t *b, size_t len, const char *what, abis_image *out,
                               abis_error *err)
{
    tiff_mem m = {b, len, 0, {0}};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts)
        return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory", what);
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, &m);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, &m);
    TIFF *tif = TIFFClientOpenExt(what, "rm", (thandle_t)&m, tm_read, tm_write, tm_seek,
                                  tm_close, tm_size, tm_map, tm_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif)
        return abis_error_set(err, ABIS_E_INVALID, "%s: bad TIFF: %s", what,
                              m.message[0] ? m.message : "cannot open");
    uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    if (w == 0 || h == 0 || w > ABIS_IMAGE_MAX_SIDE || h > ABIS_IMAGE_MAX_SIDE) {
        TIFFClose(tif);
        return image_alloc(out, (long)w, (long)h, what, err);
    }
    uint32_t *rgba = malloc((size_t)w * h * sizeof *rgba);
    if (!rgba) {
        TIFFClose(tif);
        return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory", what);
    }
    if (!TIFFReadRGBAImageOriented(tif, w, h, rgba, ORIENTATION_TOPLEFT, 0)) {
        free(rgba);
        TIFFClose(tif);
        return abis_error_set(err, ABIS_E_INVALID, "%s: bad TIFF: %s", what,
                              m.message[0] ? m.message : "cannot decode the pixels");
    }
    float xres = 0;
    uint16_t unit = RESUNIT_INCH;
    int has_res = TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xres);
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
    TIFFClose(tif);
    abis_status st = image_alloc(out, (long)w, (long)h, what, err);
    if (st != ABIS_OK) {
        free(rgba);
        return st;
    }
    for (size_t k = 0; k < (size_t)w * h; k++)
        put(out, k, TIFFGetR(rgba[k]), TIFFGetG(rgba[k]), TIFFGetB(rgba[k]));
    free(rgba);
    if (has_res && xres > 0)
        out->ppi = unit == RESUNIT_CENTIMETER ? xres * 2.54 : unit == RESUNIT_INCH ? xres : 0;
    return ABIS_OK;
}

/* ---- dispatch ------------------------------------------------------------ */

static abis_status decode_any(const void *buf, size_t len, const char *what, abis_image *out,
                              abis_error *err)
{
    const uint8_t *b = buf;
    if (!b || len < 4)
        return abis_error_set(err, ABIS_E_INVALID, "%s: empty or truncated image (%zu bytes)",
                              what, b ? len : 0);
    if (b[0] == 'B' && b[1] == 'M')
        return decode_bmp(b, len, what, out, err);
    if (b[0] == 'P' && (b[1] == '5' || b[1] == '2'))
        return decode_pgm(b, len, what, out, err);
    if (len >= 8 && !png_sig_cmp(b, 0, 8))
        return decode_png(b, len, what, out, err);
    if (b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return decode_jpeg(b, len, what, out, err);
    if ((b[0] == 'I' && b[1] == 'I' && (b[2] == 42 || b[2] == 43) && b[3] == 0) ||
        (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && (b[3] == 42 || b[3] == 43)))
        return decode_tiff(b, len, what, out, err);
    if (b[0] == 'P' && b[1] >= '1' && b[1] <= '7')
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: unsupported Netpbm type P%c (only greyscale PGM P2/P5)", what,
                              b[1]);
    return abis_error_set(err, ABIS_E_INVALID,
                          "%s: unknown image format (not BMP, PGM, PNG, JPEG or TIFF)", what);
}

abis_status abis_image_decode(const void *buf, size_t len, const char *what, abis_image *out,
                              abis_error *err)
{
    if (!what)
        what = "image";
    if (!out)
        return abis_error_set(err, ABIS_E_INVALID, "%s: no output image", what);
    memset(out, 0, sizeof *out);
    out->channels = 1;
    return decode_any(buf, len, what, out, err);
}

abis_status abis_image_decode_rgb(const void *buf, size_t len, const char *what,
                                  size_t max_pixels, abis_image *out, abis_error *err)
{
    if (!what)
        what = "image";
    if (!out)
        return abis_error_set(err, ABIS_E_INVALID, "%s: no output image", what);
    memset(out, 0, sizeof *out);
    out->channels = 3;
    out->max_pixels = max_pixels;
    return decode_any(buf, len, what, out, err);
}

abis_status abis_image_read_file(const char *path, abis_image *out, abis_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return abis_error_set(err, ABIS_E_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        /* 8192^2 * 4 bytes plus headers is the most a valid image needs. */
        if (cap > ((size_t)ABIS_IMAGE_MAX_SIDE * ABIS_IMAGE_MAX_SIDE * 4 + (1u << 20))) {
            free(buf);
            fclose(f);
            return abis_error_set(err, ABIS_E_INVALID, "%s: file too large for an image", path);
        }
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            fclose(f);
            return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory", path);
        }
        buf = nb;
        cap *= 2;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return abis_error_set(err, ABIS_E_IO, "cannot read %s", path);
    }
    const char *base = strrchr(path, '/');
    abis_status st = abis_image_decode(buf, len, base ? base + 1 : path, out, err);
    free(buf);
    return st;
}
