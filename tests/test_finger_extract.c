/*
 * test_finger_extract.c: fingerprint feature extraction (src/modality/finger)
 * on synthetic prints whose minutiae are known (finger_synth.h): every
 * planted minutia is found where it was put, of its type and direction,
 * and nothing else inside the print; resolution handling; the refusals.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finger_synth.h"
#include "modality/finger/finger.h"

#define W 320
#define H 340
#define T 9.0

/* Six minutiae, well apart: endings and bifurcations of both polarities. */
static int plant(synth_minutia *m, double b)
{
    static const synth_minutia base[6] = {{90, 90, 1},   {220, 95, -1}, {95, 215, -1},
                                          {225, 225, 1}, {160, 160, 1}, {160, 270, -1}};
    static const int types[6] = {1, 2, 1, 2, 2, 1};
    memcpy(m, base, sizeof base);
    for (int k = 0; k < 6; k++)
        synth_snap(m, 6, k, T, b, types[k]);
    return 6;
}

static const int planted_type[6] = {1, 2, 1, 2, 2, 1};

static double angle_diff(double a, double b)
{
    double d = fabs(fmod(a - b, 2 * M_PI));
    return d > M_PI ? 2 * M_PI - d : d;
}

/* Extract from a synthetic print of orientation b (radians) at `scale`
 * times 500 ppi; the image says `file_ppi`, the caller gives `ppi`. */
static abis_status extract(double b, double scale, double file_ppi, double ppi, double noise,
                           synth_minutia *m, abis_finger_template *t, abis_finger_info *info,
                           abis_error *err)
{
    plant(m, b);
    int w = (int)(W * scale), h = (int)(H * scale);
    abis_image img = {.width = w, .height = h, .pixels = malloc((size_t)w * h), .ppi = file_ppi};
    assert_non_null(img.pixels);
    synth_print(img.pixels, w, h, scale, T, b, m, 6, noise);
    abis_status st = abis_finger_extract(&img, ppi, t, info, err);
    abis_image_free(&img);
    return st;
}

/* Every planted minutia is found within 5 px, of its type, its direction
 * within 20 degrees; `extra` gets the minutiae found inside the print (two
 * ridge periods from the image's edge) that were not planted. */
static int check_planted(const synth_minutia *m, const abis_finger_template *t, double b,
                         int *extra)
{
    int found = 0;
    int used[ABIS_FINGER_MAX_MINUTIAE] = {0};
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < t->n; i++) {
            double dx = t->m[i].x - m[k].x, dy = t->m[i].y - m[k].y;
            if (used[i] || dx * dx + dy * dy > 25)
                continue;
            used[i] = 1;
            if (t->m[i].type == planted_type[k] &&
                angle_diff(t->m[i].angle, synth_direction(b, m[k].polarity)) < 20 * M_PI / 180)
                found++;
            else
                print_message("minutia %d at (%.0f, %.0f): type %d (want %d), angle %.0f (want "
                              "%.0f)\n",
                              k, m[k].x, m[k].y, t->m[i].type, planted_type[k],
                              t->m[i].angle * 180 / M_PI,
                              synth_direction(b, m[k].polarity) * 180 / M_PI);
            break;
        }
    *extra = 0;
    for (int i = 0; i < t->n; i++)
        if (!used[i] && t->m[i].x > 2 * T && t->m[i].y > 2 * T && t->m[i].x < W - 2 * T &&
            t->m[i].y < H - 2 * T)
            (*extra)++;
    return found;
}

static void test_planted_minutiae_found_with_type_and_direction(void **state)
{
    (void)state;
    const double orientations[] = {0, 23, 90, 137, 250, 311};
    for (size_t o = 0; o < sizeof orientations / sizeof *orientations; o++) {
        double b = orientations[o] * M_PI / 180;
        synth_minutia m[6];
        abis_finger_template t;
        abis_finger_info info;
        abis_error err = {0};
        assert_status(extract(b, 1, 0, 0, 0, m, &t, &info, &err), ABIS_OK, &err);
        int extra;
        int found = check_planted(m, &t, b, &extra);
        if (found != 6 || extra != 0)
            fail_msg("ridge normal at %.0f degrees: %d of 6 planted found, %d extra",
                     orientations[o], found, extra);
        assert_true(info.ridge_period > T - 0.5 && info.ridge_period < T + 0.5);
        assert_true(info.coherence > 0.9);
        assert_int_equal(t.width, W);
        assert_int_equal(t.height, H);
        assert_int_equal(t.position, 0);
        for (int i = 0; i < t.n; i++)
            assert_true(t.m[i].quality >= 1 && t.m[i].quality <= 100);
    }
}

static void test_noisy_print_still_yields_the_minutiae(void **state)
{
    (void)state;
    double b = 0.7;
    synth_minutia m[6];
    abis_finger_template clean, noisy;
    abis_error err = {0};
    assert_status(extract(b, 1, 0, 0, 0, m, &clean, NULL, &err), ABIS_OK, &err);
    /* noise of +-70 grey levels on a +-90 ridge wave */
    assert_status(extract(b, 1, 0, 0, 70, m, &noisy, NULL, &err), ABIS_OK, &err);
    int extra;
    assert_true(check_planted(m, &noisy, b, &extra) >= 5);
    assert_true(extra <= 1);
    assert_true(noisy.quality < clean.quality);
    assert_true(clean.quality >= 0 && clean.quality <= 100);
}

static void test_image_at_1000_ppi_is_rescaled(void **state)
{
    (void)state;
    double b = 0.4;
    synth_minutia m[6];
    abis_finger_template t;
    abis_finger_info info;
    abis_error err = {0};
    /* the resolution from the file */
    assert_status(extract(b, 2, 1000, 0, 0, m, &t, &info, &err), ABIS_OK, &err);
    assert_true(info.ppi == 1000);
    assert_int_equal(info.width, W);
    assert_int_equal(info.height, H);
    int extra;
    assert_int_equal(check_planted(m, &t, b, &extra), 6);
    assert_int_equal(extra, 0);
    /* given by the caller, over a file that says nothing */
    assert_status(extract(b, 2, 0, 1000, 0, m, &t, &info, &err), ABIS_OK, &err);
    assert_int_equal(check_planted(m, &t, b, &extra), 6);
    /* the caller's resolution wins over the file's */
    assert_status(extract(b, 2, 500, 1000, 0, m, &t, &info, &err), ABIS_OK, &err);
    assert_true(info.ppi == 1000);
}

static void test_resolution_out_of_range_refused(void **state)
{
    (void)state;
    synth_minutia m[6];
    abis_finger_template t;
    abis_error err = {0};
    assert_status(extract(0.3, 1, 0, 3000, 0, m, &t, NULL, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "out of range"));
    /* a file's "72 dpi" placeholder is not trusted */
    assert_status(extract(0.3, 1, 72, 0, 0, m, &t, NULL, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "72 ppi"));
}

static void test_blank_image_refused(void **state)
{
    (void)state;
    abis_image img = {.width = W, .height = H, .pixels = malloc(W * H), .ppi = 0};
    assert_non_null(img.pixels);
    memset(img.pixels, 200, W * H);
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_extract(&img, 0, &t, NULL, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "blank"));
    abis_image_free(&img);
}

static void test_too_small_image_refused(void **state)
{
    (void)state;
    abis_image img = {.width = 80, .height = 300, .pixels = malloc(80 * 300), .ppi = 0};
    assert_non_null(img.pixels);
    synth_print(img.pixels, 80, 300, 1, T, 0.2, NULL, 0, 0);
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_extract(&img, 0, &t, NULL, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "too small"));
    /* 160 px at 1000 ppi is 80 at 500 */
    abis_image_free(&img);
}

static void test_noise_image_is_not_a_fingerprint(void **state)
{
    (void)state;
    abis_image img = {.width = W, .height = H, .pixels = malloc(W * H), .ppi = 0};
    assert_non_null(img.pixels);
    uint64_t s = 42;
    for (size_t i = 0; i < W * H; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        img.pixels[i] = (uint8_t)(s >> 56);
    }
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_extract(&img, 0, &t, NULL, &err), ABIS_E_INVALID, &err);
    assert_true(strstr(err.message, "does not look like a fingerprint") ||
                strstr(err.message, "no fingerprint found"));
    abis_image_free(&img);
}

static void test_ridges_without_minutiae_refused(void **state)
{
    (void)state;
    abis_image img = {.width = W, .height = H, .pixels = malloc(W * H), .ppi = 0};
    assert_non_null(img.pixels);
    synth_print(img.pixels, W, H, 1, T, 1.1, NULL, 0, 0);
    abis_finger_template t;
    abis_error err = {0};
    assert_status(abis_finger_extract(&img, 0, &t, NULL, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "minutiae found"));
    abis_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planted_minutiae_found_with_type_and_direction),
        cmocka_unit_test(test_noisy_print_still_yields_the_minutiae),
        cmocka_unit_test(test_image_at_1000_ppi_is_rescaled),
        cmocka_unit_test(test_resolution_out_of_range_refused),
        cmocka_unit_test(test_blank_image_refused),
        cmocka_unit_test(test_too_small_image_refused),
        cmocka_unit_test(test_noise_image_is_not_a_fingerprint),
        cmocka_unit_test(test_ridges_without_minutiae_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
