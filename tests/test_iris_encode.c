/* test_iris_encode.c: iris segmentation, normalisation and encoding
 * (src/modality/iris/{segment,normalize,encode}.c) on synthetic eyes drawn
 * here with known pupil and limbus circles. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/iris/iris.h"
#include "modality/iris/iris_internal.h"

#define PI 3.14159265358979323846
#define W 320
#define H 280

typedef struct eye {
    double px, py, pr, ix, iy, ir;
    double rot;        /* radians the whole eye is turned by */
    unsigned seed;     /* iris texture */
    double lid_top;    /* rows above are upper eyelid skin (0: none) */
    double lid_bottom; /* rows below are lower eyelid skin (0: none) */
    double lid_curv;   /* lids bend towards the pupil by lid_curv (x - ix)^2 */
    double lid_level;  /* eyelid skin grey level (0: 175) */
} eye;

static double rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 65535.0;
}

/* Draw an eye: pupil 30, textured iris around 110, sclera 190.  The texture
 * is a sum of angular x radial sinusoids in the iris's own polar frame, so
 * turning the eye by `rot` turns the texture with it. */
static abis_image draw_eye(const eye *e)
{
    abis_image img = {W, H, malloc(W * H), 0, 1, 0};
    assert_non_null(img.pixels);
    enum { K = 24 };
    double amp[K], m[K], f[K], p[K], q[K];
    unsigned s = e->seed;
    for (int k = 0; k < K; k++) {
        amp[k] = 6 + 10 * rnd(&s);
        m[k] = 2 + (int)(30 * rnd(&s));
        f[k] = 0.5 + 3 * rnd(&s);
        p[k] = 2 * PI * rnd(&s);
        q[k] = 2 * PI * rnd(&s);
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double v;
            double dp = hypot(x - e->px, y - e->py), di = hypot(x - e->ix, y - e->iy);
            if (dp <= e->pr) {
                v = 30;
            } else if (di <= e->ir) {
                double phi = atan2(y - e->iy, x - e->ix) - e->rot;
                double rho = (di - e->pr) / (e->ir - e->pr);
                v = 110;
                for (int k = 0; k < K; k++)
                    v += amp[k] * cos(m[k] * phi + p[k]) * cos(2 * PI * f[k] * rho + q[k]) / 2.5;
            } else {
                v = 190;
            }
            double bend = e->lid_curv * (x - e->ix) * (x - e->ix);
            if ((e->lid_top > 0 && y < e->lid_top + bend) ||
                (e->lid_bottom > 0 && y > e->lid_bottom - bend))
                v = e->lid_level > 0 ? e->lid_level : 175;
            img.pixels[y * W + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
        }
    return img;
}

static const eye base_eye = {161, 139, 40, 160, 140, 105, 0, 7, 0, 0, 0, 0};

static int bit(const uint8_t *b, int i) { return (b[i / 8] >> (i % 8)) & 1; }

/* Scalar fractional Hamming distance of probe shifted by `shift` angles
 * against gallery, over bits both masks keep (reference for the tests). */
static double hd_at(const abis_iris_code *p, const abis_iris_code *g, int shift)
{
    int n = 0, d = 0;
    for (int r = 0; r < ABIS_IRIS_RINGS; r++)
        for (int a = 0; a < ABIS_IRIS_ANGLES; a++)
            for (int q = 0; q < 2; q++) {
                int ip = (r * ABIS_IRIS_ANGLES + a) * 2 + q;
                int ig = (r * ABIS_IRIS_ANGLES + (a + shift + ABIS_IRIS_ANGLES) % ABIS_IRIS_ANGLES) *
                             2 +
                         q;
                if (bit(p->mask, ip) && bit(g->mask, ig)) {
                    n++;
                    d += bit(p->code, ip) != bit(g->code, ig);
                }
            }
    return n ? (double)d / n : 0.5;
}

static void encode_ok(const eye *e, abis_iris_code *c, abis_iris_info *info)
{
    abis_image img = draw_eye(e);
    abis_error err = {0};
    abis_status st = abis_iris_encode(&img, c, info, &err);
    if (st != ABIS_OK)
        fail_msg("encode refused: %s", err.message);
    abis_image_free(&img);
}

static void test_segmentation_finds_known_circles(void **state)
{
    (void)state;
    abis_iris_code c;
    abis_iris_info info;
    encode_ok(&base_eye, &c, &info);
    assert_true(fabs(info.pupil_x - base_eye.px) <= 1.5);
    assert_true(fabs(info.pupil_y - base_eye.py) <= 1.5);
    assert_true(fabs(info.pupil_r - base_eye.pr) <= 1.5);
    assert_true(fabs(info.iris_x - base_eye.ix) <= 3);
    assert_true(fabs(info.iris_y - base_eye.iy) <= 3);
    assert_true(fabs(info.iris_r - base_eye.ir) <= 3);
    assert_true(info.usable_fraction > 0.8);
    assert_true(fabs(info.dilation - info.pupil_r / info.iris_r) < 1e-9);
    assert_true(info.contrast > 0.3 && info.contrast <= 1);
    assert_true(info.sharpness >= 0 && info.sharpness <= 1);
    assert_true(info.quality > 0 && info.quality <= 100);
}

static void test_segmentation_non_concentric(void **state)
{
    (void)state;
    eye e = base_eye;
    e.px = 150;
    e.py = 132;
    e.pr = 33;
    e.ix = 158;
    e.iy = 138;
    e.ir = 98;
    abis_iris_code c;
    abis_iris_info info;
    encode_ok(&e, &c, &info);
    assert_true(hypot(info.pupil_x - e.px, info.pupil_y - e.py) <= 1.5);
    assert_true(fabs(info.pupil_r - e.pr) <= 1.5);
    assert_true(hypot(info.iris_x - e.ix, info.iris_y - e.iy) <= 3);
    assert_true(fabs(info.iris_r - e.ir) <= 3);
}

static void test_encode_is_deterministic(void **state)
{
    (void)state;
    abis_iris_code a, b;
    encode_ok(&base_eye, &a, NULL);
    encode_ok(&base_eye, &b, NULL);
    assert_memory_equal(&a, &b, sizeof a);
}

static void test_rotated_eye_gives_shifted_code(void **state)
{
    (void)state;
    abis_iris_code a, b;
    encode_ok(&base_eye, &a, NULL);
    eye e = base_eye;
    e.px = e.ix; /* concentric, so that turning the eye moves no boundary */
    e.py = e.iy;
    encode_ok(&e, &a, NULL);
    e.rot = 3 * 2 * PI / ABIS_IRIS_ANGLES; /* three angular steps */
    encode_ok(&e, &b, NULL);
    double best = 1;
    int best_shift = 99;
    for (int s = -ABIS_IRIS_MAX_SHIFT; s <= ABIS_IRIS_MAX_SHIFT; s++) {
        double d = hd_at(&b, &a, s);
        if (d < best) {
            best = d;
            best_shift = s;
        }
    }
    /* Angle grows with image +y like the eye's turn, so the turned code's
     * angle a matches the original's a - 3. */
    assert_int_equal(best_shift, -3);
    assert_true(best < 0.05);
    assert_true(hd_at(&b, &a, 0) > 0.3);
}

static void test_different_irises_differ(void **state)
{
    (void)state;
    abis_iris_code a, b;
    encode_ok(&base_eye, &a, NULL);
    eye e = base_eye;
    e.seed = 12345;
    encode_ok(&e, &b, NULL);
    for (int s = -ABIS_IRIS_MAX_SHIFT; s <= ABIS_IRIS_MAX_SHIFT; s++)
        assert_true(hd_at(&b, &a, s) > 0.35);
}

static void test_blank_image_refused_no_pupil(void **state)
{
    (void)state;
    abis_image img = {W, H, malloc(W * H), 0, 1, 0};
    assert_non_null(img.pixels);
    memset(img.pixels, 150, W * H);
    abis_iris_code c;
    abis_error err = {0};
    assert_int_equal(abis_iris_encode(&img, &c, NULL, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "no pupil found"));
    abis_image_free(&img);
}

static void test_closed_eye_refused_too_little_iris(void **state)
{
    (void)state;
    eye e = base_eye;
    e.pr = 25; /* eyelids just clear of a small pupil leave a thin band */
    e.lid_top = e.py - e.pr - 2;
    e.lid_bottom = e.py + e.pr + 2;
    abis_image img = draw_eye(&e);
    abis_iris_code c;
    abis_iris_info info;
    abis_error err = {0};
    abis_status st = abis_iris_encode(&img, &c, &info, &err);
    if (st == ABIS_OK)
        fail_msg("accepted with %.0f %% usable", 100 * info.usable_fraction);
    assert_int_equal(st, ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "of the iris is usable (at least 40 % needed)"));
    assert_true(info.usable_fraction < 0.4);
    abis_image_free(&img);
}

static void test_eyelids_are_masked(void **state)
{
    (void)state;
    eye e = base_eye;
    e.lid_top = e.iy - 0.6 * e.ir;
    abis_iris_code c;
    abis_iris_info info, full;
    encode_ok(&base_eye, &c, &full);
    encode_ok(&e, &c, &info);
    assert_true(info.usable_fraction < full.usable_fraction - 0.05);
}

static void segment_ok(const eye *e, iris_seg *seg)
{
    abis_image img = draw_eye(e);
    abis_error err = {0};
    if (iris_segment(&img, seg, &err) != ABIS_OK)
        fail_msg("segmentation refused: %s", err.message);
    abis_image_free(&img);
}

/* y of an eyelid parabola at x */
static double lid_y(const double p[3], double ix, double x)
{
    double u = x - ix;
    return p[0] * u * u + p[1] * u + p[2];
}

static void test_eyelids_found_where_drawn(void **state)
{
    (void)state;
    eye e = base_eye;
    e.lid_top = e.iy - 0.55 * e.ir;
    e.lid_bottom = e.iy + 0.7 * e.ir;
    iris_seg seg;
    segment_ok(&e, &seg);
    assert_true(seg.has_upper && seg.has_lower);
    /* The drawn lids are straight: the curve must follow them over the
     * iris's width, not only at its vertex. */
    for (double u = -0.5 * e.ir; u <= 0.5 * e.ir; u += 0.25 * e.ir) {
        assert_true(fabs(lid_y(seg.upper, seg.ix, e.ix + u) - e.lid_top) <= 3);
        assert_true(fabs(lid_y(seg.lower, seg.ix, e.ix + u) - e.lid_bottom) <= 3);
    }
}

static void test_open_eye_gets_no_eyelid_inside_the_iris(void **state)
{
    (void)state;
    iris_seg seg;
    segment_ok(&base_eye, &seg);
    /* An unoccluded iris: whatever arc the eyelid search settles on lies on
     * or outside the limbus, so it masks nothing of the iris. */
    if (seg.has_upper)
        assert_true(lid_y(seg.upper, seg.ix, seg.ix) <= base_eye.iy - base_eye.ir + 3);
    if (seg.has_lower)
        assert_true(lid_y(seg.lower, seg.ix, seg.ix) >= base_eye.iy + base_eye.ir - 3);
}

static void test_limbus_found_past_a_high_bright_lower_eyelid(void **state)
{
    (void)state;
    /* A lower lid brighter than the sclera, curved a little, crossing the
     * lower ends of the lateral arcs the limbus search starts from: its edge
     * is stronger than the limbus's own and must not pull the circle. */
    eye e = base_eye;
    e.lid_bottom = e.iy + 0.45 * e.ir;
    e.lid_curv = 0.002;
    e.lid_level = 250;
    iris_seg seg;
    segment_ok(&e, &seg);
    assert_true(hypot(seg.ix - e.ix, seg.iy - e.iy) <= 3);
    assert_true(fabs(seg.ir - e.ir) <= 3);
    assert_true(seg.has_lower);
    assert_true(fabs(lid_y(seg.lower, seg.ix, e.ix) - e.lid_bottom) <= 3);
}

static void test_tiny_and_missing_images_refused(void **state)
{
    (void)state;
    abis_iris_code c;
    abis_error err = {0};
    uint8_t px[16 * 16] = {0};
    abis_image img = {16, 16, px, 0, 1, 0};
    assert_int_equal(abis_iris_encode(&img, &c, NULL, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "too small"));
    assert_int_equal(abis_iris_encode(NULL, &c, NULL, &err), ABIS_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segmentation_finds_known_circles),
        cmocka_unit_test(test_segmentation_non_concentric),
        cmocka_unit_test(test_encode_is_deterministic),
        cmocka_unit_test(test_rotated_eye_gives_shifted_code),
        cmocka_unit_test(test_different_irises_differ),
        cmocka_unit_test(test_blank_image_refused_no_pupil),
        cmocka_unit_test(test_closed_eye_refused_too_little_iris),
        cmocka_unit_test(test_eyelids_are_masked),
        cmocka_unit_test(test_eyelids_found_where_drawn),
        cmocka_unit_test(test_open_eye_gets_no_eyelid_inside_the_iris),
        cmocka_unit_test(test_limbus_found_past_a_high_bright_lower_eyelid),
        cmocka_unit_test(test_tiny_and_missing_images_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
