/* test_face_parity.c: the C face networks against the JavaScript reference
 * (@vladmandic/face-api on TensorFlow.js's wasm backend), through the
 * fixtures tests/reference/face_reference.js made from the photos in
 * tests/reference/photos.txt (in the shared data folder, never copied):
 *   descriptor   cosine >= 0.9999 with the reference's, on the same crop
 *   landmarks    within 1 pixel of the reference's, on the same crop
 *   detections   the same faces, each box with IoU >= 0.95
 * Skipped, with a message, when the data or the weights (make models) are
 * absent. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "modality/image.h"
#include "nn/face_nets.h"
#include "util/file.h"

typedef struct fixture {
    json_t *root;
    char data[1024];
    char models[1024];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *src = getenv("ABIS_SOURCE_DIR") ? getenv("ABIS_SOURCE_DIR") : ".";
    const char *data = getenv("ABIS_DATA_ROOT") ? getenv("ABIS_DATA_ROOT") : "/work/shared/data";
    snprintf(f->data, sizeof f->data, "%s", data);
    if (getenv("ABIS_FACE_MODELS"))
        snprintf(f->models, sizeof f->models, "%s", getenv("ABIS_FACE_MODELS"));
    else
        snprintf(f->models, sizeof f->models, "%s/models/node_modules/@vladmandic/face-api/model",
                 src);
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/reference/face_reference.json", src);
    json_error_t jerr;
    f->root = json_load_file(path, 0, &jerr);
    if (!f->root) {
        print_error("%s: %s\n", path, jerr.text);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decref(f->root);
    free(f);
    return 0;
}

/* Skip the test unless the photos and the weights are there. */
static void need_inputs(const fixture *f)
{
    struct stat st;
    char path[1200];
    snprintf(path, sizeof path, "%s/face", f->data);
    if (stat(path, &st) != 0) {
        print_message("no face data at %s (set ABIS_DATA_ROOT): skipped\n", path);
        skip();
    }
    if (stat(f->models, &st) != 0) {
        print_message("face-api weights not installed at %s (make models): skipped\n", f->models);
        skip();
    }
}

static abis_image decode_photo(const fixture *f, json_t *photo)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", f->data,
             json_string_value(json_object_get(photo, "photo")));
    unsigned char *buf;
    size_t len;
    abis_error err = {0};
    assert_status(abis_file_read(path, 64u << 20, &buf, &len, &err), ABIS_OK, &err);
    abis_image img;
    assert_status(abis_image_decode_rgb(buf, len, path, 0, &img, &err), ABIS_OK, &err);
    free(buf);
    assert_int_equal(img.width, json_integer_value(json_object_get(photo, "width")));
    assert_int_equal(img.height, json_integer_value(json_object_get(photo, "height")));
    return img;
}

static double num(json_t *a, size_t i)
{
    return json_number_value(json_array_get(a, i));
}

static const char *const detectors[] = {"ssd", "tiny"};

static void test_descriptor_matches_reference_on_same_crop(void **state)
{
    fixture *f = *state;
    need_inputs(f);
    nn_facerec *net;
    abis_error err = {0};
    assert_status(nn_facerec_load(f->models, &net, &err), ABIS_OK, &err);
    nn_ctx ctx;
    nn_ctx_init(&ctx, 0);
    size_t i, compared = 0;
    json_t *photo;
    double worst = 1;
    json_array_foreach(json_object_get(f->root, "photos"), i, photo)
    {
        abis_image img = decode_photo(f, photo);
        nn_image im = {img.width, img.height, (size_t)img.width * 3, img.pixels};
        for (size_t d = 0; d < 2; d++) {
            size_t j;
            json_t *face;
            json_array_foreach(json_object_get(photo, detectors[d]), j, face)
            {
                json_t *crop = json_object_get(face, "descriptor_crop");
                json_t *want = json_object_get(face, "descriptor");
                float got[NN_DESCRIPTOR_DIM];
                assert_status(nn_facerec_describe(&ctx, net, &im, (int)num(crop, 0),
                                                  (int)num(crop, 1), (int)num(crop, 2),
                                                  (int)num(crop, 3), got, &err),
                              ABIS_OK, &err);
                double dot = 0, na = 0, nb = 0;
                for (int k = 0; k < NN_DESCRIPTOR_DIM; k++) {
                    double b = num(want, (size_t)k);
                    dot += got[k] * b;
                    na += (double)got[k] * got[k];
                    nb += b * b;
                }
                double cosine = dot / sqrt(na * nb);
                worst = fmin(worst, cosine);
                if (cosine < 0.9999)
                    fail_msg("%s, %s face %zu: descriptor cosine %.7f < 0.9999",
                             json_string_value(json_object_get(photo, "photo")), detectors[d], j,
                             cosine);
                compared++;
            }
        }
        abis_image_free(&img);
    }
    assert_true(compared >= 10);
    print_message("%zu descriptors, lowest cosine %.7f\n", compared, worst);
    nn_ctx_free(&ctx);
    nn_facerec_free(net);
}

/* face-api's landmarks are the network's relative positions scaled by the
 * region it saw (the detection box clipped to the image and floored), then
 * shifted by the detection box's own corner. */
static void test_landmarks_match_reference_on_same_crop(void **state)
{
    fixture *f = *state;
    need_inputs(f);
    nn_landmarks *net;
    abis_error err = {0};
    assert_status(nn_landmarks_load(f->models, &net, &err), ABIS_OK, &err);
    nn_ctx ctx;
    nn_ctx_init(&ctx, 0);
    size_t i, compared = 0;
    json_t *photo;
    double worst = 0;
    json_array_foreach(json_object_get(f->root, "photos"), i, photo)
    {
        abis_image img = decode_photo(f, photo);
        nn_image im = {img.width, img.height, (size_t)img.width * 3, img.pixels};
        for (size_t d = 0; d < 2; d++) {
            size_t j;
            json_t *face;
            json_array_foreach(json_object_get(photo, detectors[d]), j, face)
            {
                json_t *crop = json_object_get(face, "landmark_crop");
                json_t *box = json_object_get(face, "box");
                json_t *want = json_object_get(face, "landmarks");
                float rel[2 * NN_LANDMARKS];
                int cw = (int)num(crop, 2), ch = (int)num(crop, 3);
                assert_status(nn_landmarks_run(&ctx, net, &im, (int)num(crop, 0), (int)num(crop, 1),
                                               cw, ch, rel, &err),
                              ABIS_OK, &err);
                for (int k = 0; k < NN_LANDMARKS; k++) {
                    json_t *p = json_array_get(want, (size_t)k);
                    double dx = rel[2 * k] * cw + num(box, 0) - num(p, 0);
                    double dy = rel[2 * k + 1] * ch + num(box, 1) - num(p, 1);
                    double dist = hypot(dx, dy);
                    worst = fmax(worst, dist);
                    if (dist > 1.0)
                        fail_msg("%s, %s face %zu: landmark %d is %.3f px from the reference's",
                                 json_string_value(json_object_get(photo, "photo")), detectors[d],
                                 j, k, dist);
                }
                compared++;
            }
        }
        abis_image_free(&img);
    }
    assert_true(compared >= 10);
    print_message("%zu faces' landmarks, largest distance %.4f px\n", compared, worst);
    nn_ctx_free(&ctx);
    nn_landmarks_free(net);
}

/* Both detectors find the reference's faces: as many, and each reference
 * box matched by one of ours with IoU >= 0.95 and a score within 0.05. */
static void test_detections_match_reference(void **state)
{
    fixture *f = *state;
    need_inputs(f);
    nn_ssd *ssd;
    nn_tinyface *tiny;
    abis_error err = {0};
    assert_status(nn_ssd_load(f->models, &ssd, &err), ABIS_OK, &err);
    assert_status(nn_tinyface_load(f->models, &tiny, &err), ABIS_OK, &err);
    nn_ctx ctx;
    nn_ctx_init(&ctx, 0);
    size_t i, compared = 0;
    json_t *photo;
    double worst = 1;
    json_array_foreach(json_object_get(f->root, "photos"), i, photo)
    {
        abis_image img = decode_photo(f, photo);
        nn_image im = {img.width, img.height, (size_t)img.width * 3, img.pixels};
        const char *name = json_string_value(json_object_get(photo, "photo"));
        for (size_t d = 0; d < 2; d++) {
            nn_detection *dets;
            size_t n;
            if (d == 0)
                assert_status(nn_ssd_detect(&ctx, ssd, &im, 0.5, 100, &dets, &n, &err), ABIS_OK,
                              &err);
            else
                assert_status(nn_tinyface_detect(&ctx, tiny, &im, 416, 0.5, &dets, &n, &err),
                              ABIS_OK, &err);
            json_t *want = json_object_get(photo, detectors[d]);
            if (n != json_array_size(want))
                fail_msg("%s, %s: %zu faces, the reference %zu", name, detectors[d], n,
                         json_array_size(want));
            size_t j;
            json_t *face;
            json_array_foreach(want, j, face)
            {
                json_t *b = json_object_get(face, "box");
                nn_box rb = {num(b, 0), num(b, 1), num(b, 2), num(b, 3)};
                double best = 0, score = 0;
                for (size_t k = 0; k < n; k++)
                    if (nn_box_iou(&rb, &dets[k].box) > best) {
                        best = nn_box_iou(&rb, &dets[k].box);
                        score = dets[k].score;
                    }
                worst = fmin(worst, best);
                if (best < 0.95)
                    fail_msg("%s, %s face %zu: IoU %.4f < 0.95 with the reference", name,
                             detectors[d], j, best);
                /* JPEG decoders differ by a few levels (jpeg-js and libjpeg's
                 * IDCTs); a weak detection's score moves with them (ORL's PGMs,
                 * decoded alike, agree to 1e-4). */
                double ws = json_number_value(json_object_get(face, "score"));
                if (fabs(score - ws) > 0.05)
                    fail_msg("%s, %s face %zu: score %.4f, the reference %.4f", name, detectors[d],
                             j, score, ws);
                compared++;
            }
            free(dets);
        }
        abis_image_free(&img);
    }
    assert_true(compared >= 10);
    print_message("%zu detections, lowest IoU %.4f\n", compared, worst);
    nn_ctx_free(&ctx);
    nn_ssd_free(ssd);
    nn_tinyface_free(tiny);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_matches_reference_on_same_crop),
        cmocka_unit_test(test_landmarks_match_reference_on_same_crop),
        cmocka_unit_test(test_detections_match_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
