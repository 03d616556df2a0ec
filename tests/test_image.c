/* test_image.c: decoding capture images (src/modality/image.c): every format
 * read back, every malformed input refused with its reason. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "modality/image.h"

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* A w x h bottom-up BMP of the given depth (8: grey palette; 24: grey RGB);
 * pixel (x, y) = x * 10 + y.  Returns the malloc'd file, *len its size. */
static uint8_t *make_bmp(int w, int h, int bpp, size_t *len)
{
    size_t stride = (((size_t)w * bpp + 31) / 32) * 4;
    size_t pal = bpp == 8 ? 1024 : 0, off = 54 + pal;
    *len = off + stride * (size_t)h;
    uint8_t *b = calloc(1, *len);
    assert_non_null(b);
    b[0] = 'B';
    b[1] = 'M';
    put32(b + 2, (uint32_t)*len);
    put32(b + 10, (uint32_t)off);
    put32(b + 14, 40);
    put32(b + 18, (uint32_t)w);
    put32(b + 22, (uint32_t)h);
    put16(b + 26, 1);
    put16(b + 28, (unsigned)bpp);
    for (int i = 0; i < 256 && pal; i++)
        b[54 + 4 * i] = b[55 + 4 * i] = b[56 + 4 * i] = (uint8_t)i;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t v = (uint8_t)(x * 10 + y);
            uint8_t *row = b + off + (size_t)(h - 1 - y) * stride;
            if (bpp == 8)
                row[x] = v;
            else
                row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
        }
    return b;
}

static void check_pattern(const abis_image *img, int w, int h)
{
    assert_int_equal(img->width, w);
    assert_int_equal(img->height, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            assert_int_equal(img->pixels[y * w + x], (uint8_t)(x * 10 + y));
}

static void test_bmp_8bit_palettised_decodes(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_bmp(5, 3, 8, &len);
    abis_image img;
    abis_error err = {0};
    assert_int_equal(abis_image_decode(b, len, "a.bmp", &img, &err), ABIS_OK);
    check_pattern(&img, 5, 3);
    abis_image_free(&img);
    free(b);
}

static void test_bmp_24bit_decodes_to_luma(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_bmp(7, 4, 24, &len);
    abis_image img;
    assert_int_equal(abis_image_decode(b, len, "a.bmp", &img, NULL), ABIS_OK);
    check_pattern(&img, 7, 4);
    abis_image_free(&img);
    free(b);
}

static void expect_refused(const void *buf, size_t len, const char *reason)
{
    abis_image img;
    abis_error err = {0};
    assert_int_equal(abis_image_decode(buf, len, "x", &img, &err), ABIS_E_INVALID);
    if (!strstr(err.message, reason))
        fail_msg("message '%s' lacks '%s'", err.message, reason);
    assert_null(img.pixels);
}

static void test_truncated_bmp_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_bmp(20, 20, 8, &len);
    expect_refused(b, len - 10, "truncated BMP");
    expect_refused(b, 30, "truncated BMP");
    free(b);
}

static void test_bmp_bad_dimensions_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_bmp(4, 4, 8, &len);
    put32(b + 18, 0);
    expect_refused(b, len, "bad dimensions");
    free(b);
}

static void test_bmp_unsupported_depth_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_bmp(4, 4, 8, &len);
    put16(b + 28, 16);
    expect_refused(b, len, "unsupported BMP bit depth 16");
    put16(b + 28, 8);
    put32(b + 30, 1); /* RLE8 */
    expect_refused(b, len, "unsupported BMP compression");
    free(b);
}

static void test_oversized_image_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_bmp(4, 4, 8, &len);
    put32(b + 18, ABIS_IMAGE_MAX_SIDE + 1);
    expect_refused(b, len, "limit");
    free(b);
    const char pgm[] = "P5 9000 10 255\n";
    expect_refused(pgm, sizeof pgm - 1, "limit");
}

static void test_pgm_binary_and_ascii_decode(void **state)
{
    (void)state;
    const char p5[] = "P5\n# comment\n3 2\n255\n\x01\x02\x03\x04\x05\x06";
    abis_image img;
    assert_int_equal(abis_image_decode(p5, sizeof p5 - 1, "a.pgm", &img, NULL), ABIS_OK);
    assert_int_equal(img.width, 3);
    assert_int_equal(img.height, 2);
    assert_int_equal(img.pixels[5], 6);
    abis_image_free(&img);
    const char p2[] = "P2 2 1 15 0 15";
    assert_int_equal(abis_image_decode(p2, sizeof p2 - 1, "a.pgm", &img, NULL), ABIS_OK);
    assert_int_equal(img.pixels[0], 0);
    assert_int_equal(img.pixels[1], 255);
    abis_image_free(&img);
    expect_refused("P5 3 2 255\n\x01\x02", 13, "truncated PGM");
    expect_refused("P5 3 2 65535\n", 13, "maximum value");
}

static void test_png_roundtrip_and_truncated_refused(void **state)
{
    (void)state;
    uint8_t px[6 * 4];
    for (int i = 0; i < 24; i++)
        px[i] = (uint8_t)(i * 9);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 6;
    im.height = 4;
    im.format = PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    assert_true(png_image_write_to_memory(&im, NULL, &size, 0, px, 0, NULL));
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_true(png_image_write_to_memory(&im, buf, &size, 0, px, 0, NULL));
    abis_image img;
    assert_int_equal(abis_image_decode(buf, size, "a.png", &img, NULL), ABIS_OK);
    assert_int_equal(img.width, 6);
    assert_memory_equal(img.pixels, px, 24);
    abis_image_free(&img);
    expect_refused(buf, size / 2, "bad PNG");
    free(buf);
}

/* CRC-32 (ISO 3309, as PNG chunks use it). */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_resolution_read_from_bmp_and_png(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_bmp(4, 3, 8, &len);
    abis_image img;
    assert_int_equal(abis_image_decode(b, len, "a.bmp", &img, NULL), ABIS_OK);
    assert_true(img.ppi == 0); /* none given */
    abis_image_free(&img);
    put32(b + 38, 19685); /* pixels per metre: 500 ppi */
    assert_int_equal(abis_image_decode(b, len, "a.bmp", &img, NULL), ABIS_OK);
    assert_true(img.ppi > 499.9 && img.ppi < 500.1);
    abis_image_free(&img);
    free(b);

    /* A PNG with a pHYs chunk of 39,370 pixels per metre (1000 ppi) put
     * right after IHDR. */
    uint8_t px[4] = {1, 2, 3, 4};
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 2;
    im.height = 2;
    im.format = PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    assert_true(png_image_write_to_memory(&im, NULL, &size, 0, px, 0, NULL));
    uint8_t *buf = malloc(size + 21);
    assert_non_null(buf);
    assert_true(png_image_write_to_memory(&im, buf, &size, 0, px, 0, NULL));
    size_t ihdr_end = 8 + 12 + 13;
    memmove(buf + ihdr_end + 21, buf + ihdr_end, size - ihdr_end);
    uint8_t *c = buf + ihdr_end;
    put32be(c, 9);
    memcpy(c + 4, "pHYs", 4);
    put32be(c + 8, 39370);
    put32be(c + 12, 39370);
    c[16] = 1;
    put32be(c + 17, crc32_png(c + 4, 13));
    assert_int_equal(abis_image_decode(buf, size + 21, "a.png", &img, NULL), ABIS_OK);
    assert_true(img.ppi > 999.9 && img.ppi < 1000.1);
    abis_image_free(&img);
    c[16] = 0; /* unit unknown: only an aspect ratio, no resolution */
    put32be(c + 17, crc32_png(c + 4, 13));
    assert_int_equal(abis_image_decode(buf, size + 21, "a.png", &img, NULL), ABIS_OK);
    assert_true(img.ppi == 0);
    abis_image_free(&img);
    free(buf);
}

static void test_unknown_and_empty_refused(void **state)
{
    (void)state;
    expect_refused("GIF89a......", 12, "unknown image format");
    expect_refused("", 0, "empty");
    expect_refused("P6 1 1 255\n", 11, "unsupported Netpbm");
    expect_refused("\xff\xd8\xff\xe0\x00\x10JFIF", 10, "bad JPEG");
    expect_refused("II*\x00\x08\x00\x00\x00", 8, "bad TIFF");
}

static void test_missing_file_is_io_error(void **state)
{
    (void)state;
    abis_image img;
    abis_error err = {0};
    assert_int_equal(abis_image_read_file("/nonexistent/eye.bmp", &img, &err), ABIS_E_IO);
    assert_non_null(strstr(err.message, "/nonexistent/eye.bmp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bmp_8bit_palettised_decodes),
        cmocka_unit_test(test_bmp_24bit_decodes_to_luma),
        cmocka_unit_test(test_truncated_bmp_refused),
        cmocka_unit_test(test_bmp_bad_dimensions_refused),
        cmocka_unit_test(test_bmp_unsupported_depth_refused),
        cmocka_unit_test(test_oversized_image_refused),
        cmocka_unit_test(test_pgm_binary_and_ascii_decode),
        cmocka_unit_test(test_png_roundtrip_and_truncated_refused),
        cmocka_unit_test(test_resolution_read_from_bmp_and_png),
        cmocka_unit_test(test_unknown_and_empty_refused),
        cmocka_unit_test(test_missing_file_is_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
