/*
 * test_iris_capture.c: iris capture input in every container -- synthetic
 * eyes written here as JPEG (libjpeg) and TIFF (libtiff, three compressions)
 * files in a temporary directory, read back and segmented where they were
 * drawn, enrolled and verified through the `abis` command; malformed files
 * of each format refused with the reason and nothing enrolled; ISO/IEC
 * 19794-6 records read (raw and JPEG images, two eyes) and every malformed
 * record refused by name.
 */
#include "testutil.h"

#include "iris_synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>

#include "modality/iris/iris.h"
#include "modality/iris/record.h"

static char *tmp;

static int group_setup(void **state)
{
    (void)state;
    tmp = abis_test_tmpdir("iris-capture");
    return tmp ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    abis_test_rmdir(tmp);
    return 0;
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmp, name);
}

/* ---- writers ------------------------------------------------------------------ */

/* 8-bit greyscale baseline JPEG of `img` at `quality` into a malloc'd buffer. */
static unsigned char *jpeg_bytes(const abis_image *img, int quality, size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &buf, &n);
    c.image_width = (JDIMENSION)img->width;
    c.image_height = (JDIMENSION)img->height;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = img->pixels + (size_t)c.next_scanline * img->width;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *len = n;
    return buf;
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* 8-bit greyscale TIFF file, one strip per 16 rows, with `compression`. */
static void write_tiff(const char *path, const abis_image *img, int compression)
{
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)img->width);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)img->height);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 16);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    for (int y = 0; y < img->height; y++)
        assert_int_equal(TIFFWriteScanline(t, img->pixels + (size_t)y * img->width, (uint32_t)y, 0),
                         1);
    TIFFClose(t);
}

static unsigned char *png_bytes(const abis_image *img, size_t *len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)img->width;
    im.height = (png_uint_32)img->height;
    im.format = PNG_FORMAT_GRAY;
    png_alloc_size_t n = 0;
    assert_true(png_image_write_to_memory(&im, NULL, &n, 0, img->pixels, 0, NULL));
    unsigned char *b = malloc(n);
    assert_non_null(b);
    assert_true(png_image_write_to_memory(&im, b, &n, 0, img->pixels, 0, NULL));
    *len = n;
    return b;
}

static unsigned char *pgm_bytes(const abis_image *img, size_t *len)
{
    char head[64];
    int h = snprintf(head, sizeof head, "P5\n%d %d\n255\n", img->width, img->height);
    size_t px = (size_t)img->width * img->height;
    unsigned char *b = malloc((size_t)h + px);
    assert_non_null(b);
    memcpy(b, head, (size_t)h);
    memcpy(b + h, img->pixels, px);
    *len = (size_t)h + px;
    return b;
}

/* ---- checks ------------------------------------------------------------------- */

static int bit(const uint8_t *b, int i)
{
    return (b[i / 8] >> (i % 8)) & 1;
}

/* Unshifted fractional Hamming distance over the bits both masks keep. */
static double plain_hd(const abis_iris_code *a, const abis_iris_code *b)
{
    int n = 0, d = 0;
    for (int i = 0; i < ABIS_IRIS_BITS; i++)
        if (bit(a->mask, i) && bit(b->mask, i)) {
            n++;
            d += bit(a->code, i) != bit(b->code, i);
        }
    return n ? (double)d / n : 1;
}

/* Read `path`, encode it, and check that segmentation found the circles
 * drawn in `e` (pupil within 1.5 px, limbus within 3 px). */
static void encode_file_as_drawn(const char *path, const abis_test_eye *e, abis_iris_code *code)
{
    abis_image img;
    abis_error err = {0};
    assert_status(abis_image_read_file(path, &img, &err), ABIS_OK, &err);
    abis_iris_info info;
    assert_status(abis_iris_encode(&img, code, &info, &err), ABIS_OK, &err);
    abis_image_free(&img);
    assert_true(hypot(info.pupil_x - e->px, info.pupil_y - e->py) <= 1.5);
    assert_true(fabs(info.pupil_r - e->pr) <= 1.5);
    assert_true(hypot(info.iris_x - e->ix, info.iris_y - e->iy) <= 3);
    assert_true(fabs(info.iris_r - e->ir) <= 3);
}

/* A non-concentric eye with a lower lid, so the formats carry a real
 * segmentation problem. */
static abis_test_eye test_eye(void)
{
    abis_test_eye e = abis_test_offset_eye;
    e.lid_bottom = e.iy + 0.75 * e.ir;
    return e;
}

/* test_eye() drawn (caller frees *img) and its code straight from pixels. */
static void drawn_eye(abis_test_eye *e, abis_image *img, abis_iris_code *ref)
{
    *e = test_eye();
    *img = abis_test_draw_eye(e);
    abis_error err = {0};
    assert_status(abis_iris_encode(img, ref, NULL, &err), ABIS_OK, &err);
}

/* ---- JPEG and TIFF files ---------------------------------------------------------- */

static void test_jpeg_eye_file_is_segmented_as_drawn(void **state)
{
    (void)state;
    abis_test_eye e;
    abis_image img;
    abis_iris_code ref, c;
    drawn_eye(&e, &img, &ref);
    for (int q = 75; q <= 95; q += 20) {
        size_t n;
        unsigned char *b = jpeg_bytes(&img, q, &n);
        char path[4200];
        tmp_path(path, sizeof path, "eye.jpg");
        write_file(path, b, n);
        free(b);
        encode_file_as_drawn(path, &e, &c);
        /* Lossy, but the phase code survives: far below the ~0.45 of
         * different eyes. */
        assert_true(plain_hd(&c, &ref) < 0.15);
    }
    abis_image_free(&img);
}

static void test_tiff_eye_file_is_read_losslessly(void **state)
{
    (void)state;
    abis_test_eye e;
    abis_image img;
    abis_iris_code ref, c;
    abis_error err = {0};
    drawn_eye(&e, &img, &ref);
    const int comp[] = {COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE};
    for (size_t i = 0; i < sizeof comp / sizeof *comp; i++) {
        char path[4200];
        tmp_path(path, sizeof path, "eye.tif");
        write_tiff(path, &img, comp[i]);
        abis_image back;
        assert_status(abis_image_read_file(path, &back, &err), ABIS_OK, &err);
        assert_int_equal(back.width, img.width);
        assert_int_equal(back.height, img.height);
        assert_memory_equal(back.pixels, img.pixels, (size_t)img.width * img.height);
        abis_image_free(&back);
        encode_file_as_drawn(path, &e, &c);
        assert_memory_equal(&c, &ref, sizeof c); /* same pixels, same code */
    }
    abis_image_free(&img);
}

/* ---- through the abis command ------------------------------------------------------ */

/* Run `abis --data DIR ARGS...`; returns the exit status, *out its stdout
 * (caller frees). */
static int cli(const char *data, char **out, const char *const *args)
{
    const char *cli_path = getenv("ABIS_CLI");
    const char *argv[24] = {cli_path, "--data", data};
    size_t n = 3;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char o[4200], e[4200];
    tmp_path(o, sizeof o, "stdout");
    tmp_path(e, sizeof e, "stderr");
    int st = abis_test_spawn(argv, NULL, o, e);
    if (out)
        *out = abis_test_slurp(o);
    if (st > 1) {
        char *msg = abis_test_slurp(e);
        print_message("abis %s: exit %d: %s\n", args[0], st, msg);
        free(msg);
    }
    return st;
}

static void test_cli_enrols_jpeg_and_verifies_tiff(void **state)
{
    (void)state;
    if (!getenv("ABIS_CLI"))
        skip();
    char data[4200], jpg[4200], tif[4200], other[4200], spec[4300];
    tmp_path(data, sizeof data, "var");
    tmp_path(jpg, sizeof jpg, "enrol.jpg");
    tmp_path(tif, sizeof tif, "probe.tif");
    tmp_path(other, sizeof other, "other.tif");
    unsetenv("ABIS_MASTER_KEY");
    const char *setup[][12] = {
        {"init", NULL},
        {"segment", "add", "city", NULL},
        {"purpose", "add", "border", "--basis", "statutory", "--fmr", "1e-6", "--legal-ref", "t",
         NULL},
        {"modality", "add", "iris", "--kind", "iriscode", NULL},
    };
    for (size_t i = 0; i < sizeof setup / sizeof *setup; i++)
        assert_int_equal(cli(data, NULL, setup[i]), 0);

    abis_test_eye e = test_eye();
    abis_image img = abis_test_draw_eye(&e);
    size_t n;
    unsigned char *b = jpeg_bytes(&img, 90, &n);
    write_file(jpg, b, n);
    free(b);
    abis_image_free(&img);
    e.rot = 0.05; /* the probe's head is tilted by about 3 degrees */
    img = abis_test_draw_eye(&e);
    write_tiff(tif, &img, COMPRESSION_LZW);
    abis_image_free(&img);
    e.seed = 99; /* another iris in the same eye geometry */
    img = abis_test_draw_eye(&e);
    write_tiff(other, &img, COMPRESSION_NONE);
    abis_image_free(&img);

    char *out = NULL;
    snprintf(spec, sizeof spec, "%s@left", jpg);
    const char *enroll[] = {"--json", "enroll", "--segment", "city", "--iris-image", spec, NULL};
    assert_int_equal(cli(data, &out, enroll), 0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(j);
    const char *s = json_string_value(json_object_get(j, "subject_id"));
    assert_non_null(s);
    char id[33];
    snprintf(id, sizeof id, "%s", s);
    json_decref(j);

    snprintf(spec, sizeof spec, "%s@left", tif);
    const char *verify[] = {"verify", id, "--purpose", "border", "--iris-image", spec, NULL};
    assert_int_equal(cli(data, &out, verify), 0);
    assert_non_null(strstr(out, "match (confidence "));
    free(out);

    snprintf(spec, sizeof spec, "%s@left", other);
    assert_int_equal(cli(data, &out, verify), 1);
    assert_non_null(strstr(out, "no match"));
    free(out);
}

/* ---- malformed files ------------------------------------------------------------- */

/* The file's bytes must be refused as an eye image (ABIS_E_INVALID, message
 * containing `why`), and no template made. */
static void expect_refused(const unsigned char *b, size_t n, const char *why)
{
    abis_image img;
    abis_error err = {0};
    abis_status st = abis_image_decode(b, n, "eye", &img, &err);
    if (st == ABIS_OK) {
        abis_image_free(&img);
        fail_msg("accepted a malformed image (wanted \"%s\")", why);
    }
    assert_int_equal(st, ABIS_E_INVALID);
    if (!strstr(err.message, why))
        fail_msg("refused with \"%s\", wanted \"%s\"", err.message, why);
}

static void test_malformed_eye_files_refused_for_each_format(void **state)
{
    (void)state;
    abis_test_eye e = test_eye();
    abis_image img = abis_test_draw_eye(&e);
    size_t n;

    unsigned char *j = jpeg_bytes(&img, 90, &n);
    expect_refused(j, n / 2, "bad JPEG"); /* libjpeg would pad it grey */
    memset(j + 2, 0xff, 40);              /* the JFIF and table headers gone */
    expect_refused(j, n, "bad JPEG");
    free(j);

    char path[4200];
    tmp_path(path, sizeof path, "bad.tif");
    write_tiff(path, &img, COMPRESSION_NONE);
    unsigned char *t = abis_test_read_file(path, &n);
    assert_non_null(t);
    expect_refused(t, n / 2, "bad TIFF"); /* strips past the end */
    t[4] = t[5] = t[6] = t[7] = 0xff;     /* first directory offset out of range */
    expect_refused(t, n, "bad TIFF");
    free(t);

    unsigned char *p = png_bytes(&img, &n);
    expect_refused(p, n / 2, "bad PNG");
    free(p);

    unsigned char *g = pgm_bytes(&img, &n);
    expect_refused(g, n - 100, "truncated");
    free(g);
    abis_image_free(&img);
}

/* ---- ISO/IEC 19794-6 records ------------------------------------------------------- */

/* A record of one eye at `pos` holding `img` raw. */
static unsigned char *raw_record(const abis_image *img, int pos, size_t *len)
{
    unsigned char *r;
    abis_error err = {0};
    assert_status(abis_iris_record_encode(img, pos, &r, len, &err), ABIS_OK, &err);
    return r;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
}

static void test_record_raw_and_jpeg_images_read(void **state)
{
    (void)state;
    abis_test_eye e = test_eye();
    abis_image img = abis_test_draw_eye(&e);
    abis_error err = {0};
    size_t n;
    unsigned char *r = raw_record(&img, 2, &n);
    assert_true(abis_iris_record_is(r, n));
    abis_image back;
    int eye = -1;
    assert_status(abis_iris_record_decode(r, n, 0, &back, &eye, &err), ABIS_OK, &err);
    assert_int_equal(eye, 2);
    assert_memory_equal(back.pixels, img.pixels, (size_t)img.width * img.height);
    abis_image_free(&back);
    free(r);

    /* A JPEG image (format 6) in the same envelope. */
    size_t jn;
    unsigned char *j = jpeg_bytes(&img, 90, &jn);
    n = ABIS_IRIS_RECORD_HEADER + 3 + 11 + jn;
    r = calloc(1, n);
    assert_non_null(r);
    memcpy(r, "IIR", 4);     /* with its NUL */
    memcpy(r + 4, "010", 4); /* version, with its NUL */
    put32(r + 8, (uint32_t)n);
    r[14] = 1;
    put16(r + 15, ABIS_IRIS_RECORD_HEADER);
    put16(r + 21, ABIS_IRIS_RECORD_FORMAT_MONO_JPEG);
    put16(r + 23, (unsigned)img.width);
    put16(r + 25, (unsigned)img.height);
    r[27] = 8;
    r[45] = 1; /* right eye, one image */
    put16(r + 46, 1);
    put32(r + 48 + 7, (uint32_t)jn);
    memcpy(r + 48 + 11, j, jn);
    free(j);
    assert_status(abis_iris_record_decode(r, n, 1, &back, &eye, &err), ABIS_OK, &err);
    assert_int_equal(eye, 1);
    abis_iris_code c;
    abis_iris_info info;
    assert_status(abis_iris_encode(&back, &c, &info, &err), ABIS_OK, &err);
    assert_true(fabs(info.iris_r - e.ir) <= 3);
    abis_image_free(&back);
    /* It holds no left eye. */
    assert_status(abis_iris_record_decode(r, n, 2, &back, &eye, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "no left eye"));
    free(r);
    abis_image_free(&img);
}

static void test_record_two_eyes_gives_the_one_asked_for(void **state)
{
    (void)state;
    abis_test_eye e = test_eye();
    abis_image right = abis_test_draw_eye(&e);
    e.seed = 31;
    abis_image left = abis_test_draw_eye(&e);
    size_t nr, nl;
    unsigned char *rr = raw_record(&right, 1, &nr), *rl = raw_record(&left, 2, &nl);
    /* Splice: the right record with the left one's eye block appended. */
    size_t eye_block = nl - ABIS_IRIS_RECORD_HEADER, n = nr + eye_block;
    unsigned char *r = malloc(n);
    assert_non_null(r);
    memcpy(r, rr, nr);
    memcpy(r + nr, rl + ABIS_IRIS_RECORD_HEADER, eye_block);
    put32(r + 8, (uint32_t)n);
    r[14] = 2;
    abis_image back;
    abis_error err = {0};
    int eye;
    const abis_image *want[] = {&right, &right, &left};
    for (int pos = 0; pos <= 2; pos++) {
        assert_status(abis_iris_record_decode(r, n, pos, &back, &eye, &err), ABIS_OK, &err);
        assert_int_equal(eye, pos == 2 ? 2 : 1);
        assert_memory_equal(back.pixels, want[pos]->pixels, (size_t)right.width * right.height);
        abis_image_free(&back);
    }
    free(r);
    free(rr);
    free(rl);
    abis_image_free(&right);
    abis_image_free(&left);
}

/* One malformation of a valid raw record: byte `at` set to `v` (or, with
 * `cut`, the record shortened by `cut` bytes), refused with `why`. */
typedef struct bad_record {
    size_t at;
    int v;
    size_t cut;
    const char *why;
} bad_record;

static void test_malformed_records_refused_by_name(void **state)
{
    (void)state;
    abis_test_eye e = test_eye();
    abis_image img = abis_test_draw_eye(&e);
    size_t n;
    unsigned char *good = raw_record(&img, 2, &n);
    abis_image_free(&img);
    const bad_record bad[] = {
        {0, 'X', 0, "no \"IIR\" signature"},
        {4, '2', 0, "version '210' is not supported"},
        {11, 0, 0, "the header says"}, /* record length */
        {16, 44, 0, "header length 44"},
        {14, 0, 0, "0 eyes"},
        {14, 3, 0, "3 eyes"},
        {45, 3, 0, "position 3"},
        {47, 0, 0, "holds no image"},
        {22, 0x0A, 0, "JPEG-LS images are not supported"},
        {22, 0x0E, 0, "JPEG 2000 images are not supported"},
        {22, 0x63, 0, "unknown image format 0x0063"},
        {27, 16, 0, "16 bits per pixel"},
        {26, 0, 0, "needs"},             /* raw height no longer matches */
        {0, -1, 100, "the header says"}, /* truncated */
        {0, -1, 30, "the header says"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char *r = malloc(n);
        assert_non_null(r);
        memcpy(r, good, n);
        if (bad[i].v >= 0)
            r[bad[i].at] = (unsigned char)bad[i].v;
        abis_image out;
        abis_error err = {0};
        abis_status st = abis_iris_record_decode(r, n - bad[i].cut, 0, &out, NULL, &err);
        if (st == ABIS_OK)
            fail_msg("malformation %zu accepted", i);
        assert_int_equal(st, ABIS_E_INVALID);
        if (!strstr(err.message, bad[i].why))
            fail_msg("malformation %zu refused with \"%s\", wanted \"%s\"", i, err.message,
                     bad[i].why);
        free(r);
    }
    /* An image length claiming more than remains, with the record length
     * adjusted so only the image header is wrong. */
    unsigned char *r = malloc(n);
    assert_non_null(r);
    memcpy(r, good, n);
    put32(r + 48 + 7, (uint32_t)(n));
    abis_image out;
    abis_error err = {0};
    assert_status(abis_iris_record_decode(r, n, 0, &out, NULL, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "only"));
    /* Bytes left over after the last image. */
    unsigned char *longer = realloc(r, n + 5);
    assert_non_null(longer);
    memcpy(longer, good, n);
    memset(longer + n, 0, 5);
    put32(longer + 8, (uint32_t)(n + 5));
    assert_status(abis_iris_record_decode(longer, n + 5, 0, &out, NULL, &err), ABIS_E_INVALID,
                  &err);
    assert_non_null(strstr(err.message, "left over"));
    free(longer);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jpeg_eye_file_is_segmented_as_drawn),
        cmocka_unit_test(test_tiff_eye_file_is_read_losslessly),
        cmocka_unit_test(test_cli_enrols_jpeg_and_verifies_tiff),
        cmocka_unit_test(test_malformed_eye_files_refused_for_each_format),
        cmocka_unit_test(test_record_raw_and_jpeg_images_read),
        cmocka_unit_test(test_record_two_eyes_gives_the_one_asked_for),
        cmocka_unit_test(test_malformed_records_refused_by_name),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
