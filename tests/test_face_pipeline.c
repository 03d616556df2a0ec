/* test_face_pipeline.c: a face photo to a descriptor (abis/face.h,
 * src/modality/face/): LFW photos of the same and of different people, every
 * refusal (no face, several, the quality gate, bad and oversized images),
 * EXIF orientation, options, missing weights, and threads.  Skipped, with a
 * message, when the shared data or the weights (make models) are absent. */
#include "testutil.h"

#include <jpeglib.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "abis/face.h"
#include "modality/image.h"
#include "util/file.h"

static char lfw[1024];

static const char *data_root(void)
{
    const char *d = getenv("ABIS_DATA_ROOT");
    return d ? d : "/work/shared/data";
}

/* Skip unless the LFW photos and the weights are there. */
static void need_inputs(void)
{
    if (!abis_test_face_ready(lfw, sizeof lfw))
        skip();
}

static unsigned char *read_photo(const char *rel, size_t *len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", lfw, rel);
    unsigned char *buf;
    abis_error err = {0};
    assert_status(abis_file_read(path, 1 << 24, &buf, len, &err), ABIS_OK, &err);
    return buf;
}

static abis_status extract(const char *rel, const abis_face_options *o, float *d,
                           abis_face_info *info, abis_error *err)
{
    size_t len;
    unsigned char *buf = read_photo(rel, &len);
    abis_status st = abis_face_extract(buf, len, o, d, info, err);
    free(buf);
    return st;
}

static void test_same_person_is_near_and_others_far(void **state)
{
    (void)state;
    need_inputs();
    static const char *photos[4] = {
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg",
        "Laura_Bush/Laura_Bush_0001.jpg", "Laura_Bush/Laura_Bush_0002.jpg"};
    float d[4][ABIS_FACE_DIM];
    for (int i = 0; i < 4; i++) {
        abis_face_info info;
        abis_error err = {0};
        assert_status(extract(photos[i], NULL, d[i], &info, &err), ABIS_OK, &err);
        assert_int_equal(info.width, 250);
        assert_int_equal(info.faces, 1);
        assert_true(info.score > 0.5 && info.score <= 1);
        assert_true(info.eye_distance > 25 && info.eye_distance < 80);
        assert_true(info.crop[0] >= 0 && info.crop[1] >= 0 && info.crop[2] > 50 &&
                    info.crop[0] + info.crop[2] <= 250 && info.crop[1] + info.crop[3] <= 250);
        assert_true(info.quality > 0 && info.quality <= 100);
        assert_true(info.brightness > 35 && info.brightness < 225);
    }
    /* dlib's decision distance is 0.6 */
    assert_true(abis_face_distance(d[0], d[1]) < 0.6);
    assert_true(abis_face_distance(d[2], d[3]) < 0.6);
    assert_true(abis_face_distance(d[0], d[2]) > 0.6);
    assert_true(abis_face_distance(d[1], d[3]) > 0.6);
}

static void test_tiny_detector_gives_a_close_descriptor(void **state)
{
    (void)state;
    need_inputs();
    abis_face_options o;
    abis_face_options_default(&o);
    float a[ABIS_FACE_DIM], b[ABIS_FACE_DIM];
    abis_error err = {0};
    assert_status(extract("Zoran_Djindjic/Zoran_Djindjic_0001.jpg", &o, a, NULL, &err), ABIS_OK,
                  &err);
    assert_status(abis_face_options_set(&o, "detector", "tiny", &err), ABIS_OK, &err);
    assert_status(extract("Zoran_Djindjic/Zoran_Djindjic_0001.jpg", &o, b, NULL, &err), ABIS_OK,
                  &err);
    /* another detector's box moves the landmarks a little, the crop less */
    assert_true(abis_face_distance(a, b) < 0.25);
}

static void test_several_faces_refused_unless_largest_taken(void **state)
{
    (void)state;
    need_inputs();
    abis_face_options o;
    abis_face_options_default(&o);
    float d[ABIS_FACE_DIM];
    abis_face_info info;
    abis_error err = {0};
    assert_int_equal(extract("Boris_Becker/Boris_Becker_0001.jpg", &o, d, &info, &err),
                     ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "2 faces in the photo"));
    assert_int_equal(info.faces, 2);
    o.take_largest = 1;
    assert_status(extract("Boris_Becker/Boris_Becker_0001.jpg", &o, d, &info, &err), ABIS_OK, &err);
    assert_true(info.box[2] > 80); /* the large, central face, not the one at the edge */
}

static void test_quality_gate_refuses_with_reasons(void **state)
{
    (void)state;
    need_inputs();
    float d[ABIS_FACE_DIM];
    abis_face_info info;
    abis_error err = {0};
    static const struct {
        const char *option, *reason;
    } cases[] = {
        {"min_eye_distance=200", "too small: eyes"},
        {"min_sharpness=100000", "too blurred"},
        {"max_brightness=20", "overexposed"},
        {"min_brightness=250", "too dark"},
        {"max_yaw=0.01", "turned: yaw"},
        {"max_roll=0.01", "tilted sideways"},
        {"max_pitch=0.01", "tilted up or down"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        abis_face_options o;
        abis_face_options_default(&o);
        assert_status(abis_face_options_parse(&o, cases[i].option, &err), ABIS_OK, &err);
        assert_int_equal(extract("Amber_Tamblyn/Amber_Tamblyn_0001.jpg", &o, d, &info, &err),
                         ABIS_E_INVALID);
        if (!strstr(err.message, "face refused: ") || !strstr(err.message, cases[i].reason))
            fail_msg("%s: message '%s'", cases[i].option, err.message);
    }
    /* two checks failing are both named */
    abis_face_options o;
    abis_face_options_default(&o);
    assert_status(abis_face_options_parse(&o, "min_eye_distance=200,max_brightness=20", &err),
                  ABIS_OK, &err);
    assert_int_equal(extract("Amber_Tamblyn/Amber_Tamblyn_0001.jpg", &o, d, &info, &err),
                     ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "too small"));
    assert_non_null(strstr(err.message, "; overexposed"));
}

/* A grey PNG: a valid image with no face in it. */
static unsigned char *grey_png(int w, int h, size_t *len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_GRAY;
    unsigned char *px = malloc((size_t)w * h);
    assert_non_null(px);
    memset(px, 128, (size_t)w * h);
    png_alloc_size_t size = 0;
    assert_true(png_image_write_to_memory(&im, NULL, &size, 0, px, 0, NULL));
    unsigned char *out = malloc(size);
    assert_true(png_image_write_to_memory(&im, out, &size, 0, px, 0, NULL));
    free(px);
    *len = size;
    return out;
}

static void test_bad_photos_are_refused_with_the_reason(void **state)
{
    (void)state;
    need_inputs();
    float d[ABIS_FACE_DIM];
    abis_error err = {0};
    size_t len;
    unsigned char *png = grey_png(320, 240, &len);
    assert_int_equal(abis_face_extract(png, len, NULL, d, NULL, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "no face found in the photo (320 x 240 pixels)"));
    free(png);
    unsigned char *jpg = read_photo("Laura_Bush/Laura_Bush_0001.jpg", &len);
    assert_int_equal(abis_face_extract(jpg, len / 2, NULL, d, NULL, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "bad JPEG"));
    abis_face_options o;
    abis_face_options_default(&o);
    o.max_pixels = 250 * 249;
    assert_int_equal(abis_face_extract(jpg, len, &o, d, NULL, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "megapixels"));
    free(jpg);
    assert_int_equal(abis_face_extract("GIF89a......", 12, NULL, d, NULL, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "unknown image format"));
}

/* Encode RGB as a JPEG with an EXIF APP1 marker holding `orientation`. */
static unsigned char *jpeg_with_orientation(const unsigned char *rgb, int w, int h, int orientation,
                                            unsigned long *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    jpeg_mem_dest(&c, &out, len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    /* nearly lossless, and no chroma subsampling, whose blocks would lie
     * differently in the turned image */
    jpeg_set_quality(&c, 100, TRUE);
    c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    /* "Exif\0\0", little-endian TIFF header, IFD0 with one entry:
     * tag 0x0112 (Orientation), type 3 (SHORT), count 1, value */
    unsigned char exif[6 + 8 + 2 + 12 + 4] = {'E', 'x',  'i',  'f', 0,
                                              0,   'I',  'I',  42,  0,
                                              8,   0,    0,    0,   1,
                                              0,   0x12, 0x01, 3,   0,
                                              1,   0,    0,    0,   (unsigned char)orientation,
                                              0,   0,    0,    0,   0,
                                              0,   0};
    jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof exif);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return out;
}

/* A photo stored on its side with EXIF orientation 6 ("rotate 90 degrees
 * clockwise to display") gives the face found in the upright photo. */
static void test_exif_orientation_is_honoured(void **state)
{
    (void)state;
    need_inputs();
    size_t len;
    unsigned char *jpg = read_photo("Oscar_De_La_Hoya/Oscar_De_La_Hoya_0001.jpg", &len);
    abis_image img;
    abis_error err = {0};
    assert_status(abis_image_decode_rgb(jpg, len, "photo", 0, &img, &err), ABIS_OK, &err);
    free(jpg);
    int w = img.width, h = img.height;
    /* stored on its side: the upright photo turned 90 degrees anticlockwise,
     * so upright pixel (ux, uy) is stored at (uy, w - 1 - ux) of an h x w image */
    unsigned char *side = malloc((size_t)w * h * 3);
    assert_non_null(side);
    for (int uy = 0; uy < h; uy++)
        for (int ux = 0; ux < w; ux++)
            memcpy(side + ((size_t)(w - 1 - ux) * h + uy) * 3,
                   img.pixels + ((size_t)uy * w + ux) * 3, 3);
    unsigned long jlen = 0;
    unsigned char *upright = jpeg_with_orientation(img.pixels, w, h, 1, &jlen);
    float a[ABIS_FACE_DIM], b[ABIS_FACE_DIM];
    abis_face_info ia, ib;
    assert_status(abis_face_extract(upright, jlen, NULL, a, &ia, &err), ABIS_OK, &err);
    free(upright);
    unsigned char *turned = jpeg_with_orientation(side, h, w, 6, &jlen);
    assert_status(abis_face_extract(turned, jlen, NULL, b, &ib, &err), ABIS_OK, &err);
    assert_int_equal(ib.width, w);
    assert_int_equal(ib.height, h);
    /* the same face, up to re-encoding: a pixel's shift of the detection box
     * moves the crop by one, which alone makes about 0.05 */
    if (abis_face_distance(a, b) >= 0.15)
        fail_msg("distance %g", abis_face_distance(a, b));
    /* without the tag the face lies on its side: not the same descriptor */
    unsigned char *plain = jpeg_with_orientation(side, h, w, 1, &jlen);
    float c[ABIS_FACE_DIM];
    abis_status st = abis_face_extract(plain, jlen, NULL, c, NULL, &err);
    assert_true(st != ABIS_OK || abis_face_distance(a, c) > 0.2);
    free(turned);
    free(plain);
    free(side);
    abis_image_free(&img);
}

/* ORL's portraits are cropped to the face: the detectors need the margin
 * the pipeline adds when they find nothing at first. */
static void test_tight_portrait_found_with_a_margin(void **state)
{
    (void)state;
    need_inputs();
    char path[1200];
    snprintf(path, sizeof path, "%s/face/orl/s1/1.pgm", data_root());
    unsigned char *buf;
    size_t len;
    abis_error err = {0};
    if (abis_file_read(path, 1 << 20, &buf, &len, &err) != ABIS_OK) {
        print_message("no ORL photos: skipped\n");
        skip();
    }
    abis_face_options o;
    abis_face_options_default(&o);
    float d[ABIS_FACE_DIM];
    abis_face_info info;
    assert_status(abis_face_extract(buf, len, &o, d, &info, &err), ABIS_OK, &err);
    assert_int_equal(info.width, 92);
    /* reported in the photo's own coordinates */
    assert_true(info.landmarks[2 * 30] > 20 && info.landmarks[2 * 30] < 72);
    assert_true(info.landmarks[2 * 30 + 1] > 30 && info.landmarks[2 * 30 + 1] < 100);
    o.retry_margin = 0;
    assert_int_equal(abis_face_extract(buf, len, &o, d, &info, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "no face found"));
    free(buf);
}

static void test_options_by_name(void **state)
{
    (void)state;
    abis_face_options o;
    abis_face_options_default(&o);
    abis_error err = {0};
    assert_status(
        abis_face_options_parse(&o, "detector=tiny, tiny_input_size=320,take_largest=1", &err),
        ABIS_OK, &err);
    assert_int_equal(o.detector, ABIS_FACE_TINY);
    assert_int_equal(o.tiny_input_size, 320);
    assert_int_equal(o.take_largest, 1);
    assert_int_equal(abis_face_options_set(&o, "detector", "yolo", &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "not ssd or tiny"));
    assert_int_equal(abis_face_options_set(&o, "tiny_input_size", "300", &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "multiple of 32"));
    assert_int_equal(abis_face_options_set(&o, "max_yaw", "200", &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "from 0 to 180"));
    assert_int_equal(abis_face_options_set(&o, "min_sharpness", "abc", &err), ABIS_E_INVALID);
    assert_int_equal(abis_face_options_set(&o, "colour", "1", &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "unknown face option 'colour'"));
    assert_int_equal(abis_face_options_parse(&o, "detector", &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "expected NAME=VALUE"));
}

static void test_missing_weights_say_how_to_install_them(void **state)
{
    (void)state;
    need_inputs();
    abis_face_options o;
    abis_face_options_default(&o);
    o.models_dir = "/nonexistent/face-api/model";
    float d[ABIS_FACE_DIM];
    abis_error err = {0};
    abis_status st = extract("Laura_Bush/Laura_Bush_0001.jpg", &o, d, NULL, &err);
    assert_int_not_equal(st, ABIS_OK);
    assert_non_null(strstr(err.message, "/nonexistent/face-api/model"));
    assert_non_null(strstr(err.message, "make models"));
}

typedef struct job {
    const char *photo;
    float d[ABIS_FACE_DIM];
    abis_status st;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    abis_error err = {0};
    for (int i = 0; i < 3 && (i == 0 || j->st == ABIS_OK); i++)
        j->st = extract(j->photo, NULL, j->d, NULL, &err);
    return NULL;
}

static void test_threads_share_the_networks(void **state)
{
    (void)state;
    need_inputs();
    job jobs[2] = {{.photo = "Ivana_Trump/Ivana_Trump_0001.jpg"},
                   {.photo = "Erika_Christensen/Erika_Christensen_0001.jpg"}};
    float want[2][ABIS_FACE_DIM];
    abis_error err = {0};
    for (int i = 0; i < 2; i++)
        assert_status(extract(jobs[i].photo, NULL, want[i], NULL, &err), ABIS_OK, &err);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].st, ABIS_OK);
        assert_memory_equal(jobs[i].d, want[i], sizeof want[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_person_is_near_and_others_far),
        cmocka_unit_test(test_tiny_detector_gives_a_close_descriptor),
        cmocka_unit_test(test_several_faces_refused_unless_largest_taken),
        cmocka_unit_test(test_quality_gate_refuses_with_reasons),
        cmocka_unit_test(test_bad_photos_are_refused_with_the_reason),
        cmocka_unit_test(test_exif_orientation_is_honoured),
        cmocka_unit_test(test_tight_portrait_found_with_a_margin),
        cmocka_unit_test(test_options_by_name),
        cmocka_unit_test(test_missing_weights_say_how_to_install_them),
        cmocka_unit_test(test_threads_share_the_networks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
