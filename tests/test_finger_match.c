/*
 * test_finger_match.c: the fingerprint matcher (modality/finger/match.h) on
 * minutiae sets with known relations: the same set rotated, translated,
 * with minutiae dropped, moved a little and added stays far above
 * different sets; every kernel gives the same score; the pre-selection
 * ranks mates above strangers.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finger_synth.h"
#include "modality/finger/finger.h"
#include "modality/finger/match.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static double uni(void)
{
    return synth_uniform(&rng);
}

/* n minutiae spread over a 300 x 360 print, at least 12 px apart. */
static void random_print(abis_finger_template *t, int n)
{
    memset(t, 0, sizeof *t);
    t->width = 400;
    t->height = 460;
    while (t->n < n) {
        abis_minutia m = {(float)(50 + 300 * uni()), (float)(50 + 360 * uni()),
                          (float)(2 * M_PI * uni()), (uint8_t)(1 + (uni() < 0.5)),
                          (uint8_t)(40 + 60 * uni())};
        int ok = 1;
        for (int i = 0; i < t->n && ok; i++) {
            float dx = t->m[i].x - m.x, dy = t->m[i].y - m.y;
            ok = dx * dx + dy * dy >= 144;
        }
        if (ok)
            t->m[t->n++] = m;
    }
}

/* Rotate by `deg` degrees (counter-clockwise, as seen) about (200, 230),
 * then translate by (tx, ty). */
static void transform(const abis_finger_template *in, abis_finger_template *out, double deg,
                      double tx, double ty)
{
    *out = *in;
    double a = deg * M_PI / 180, c = cos(a), s = sin(a);
    for (int i = 0; i < in->n; i++) {
        double x = in->m[i].x - 200, y = -(in->m[i].y - 230); /* y up */
        double xr = c * x - s * y, yr = s * x + c * y;
        out->m[i].x = (float)(xr + 200 + tx);
        out->m[i].y = (float)(-yr + 230 + ty);
        out->m[i].angle = (float)fmod(in->m[i].angle + a + 2 * M_PI, 2 * M_PI);
    }
}

/* Drop every minutia with probability p; move the rest by up to `jit`
 * pixels and `deg` degrees; add `extra` random ones. */
static void perturb(abis_finger_template *t, double p, double jit, double deg, int extra)
{
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        if (uni() < p)
            continue;
        abis_minutia m = t->m[i];
        m.x += (float)((2 * uni() - 1) * jit);
        m.y += (float)((2 * uni() - 1) * jit);
        m.angle = (float)fmod(m.angle + (2 * uni() - 1) * deg * M_PI / 180 + 2 * M_PI, 2 * M_PI);
        t->m[k++] = m;
    }
    t->n = k;
    for (int e = 0; e < extra && t->n < ABIS_FINGER_MAX_MINUTIAE; e++)
        t->m[t->n++] = (abis_minutia){(float)(50 + 300 * uni()), (float)(50 + 360 * uni()),
                                      (float)(2 * M_PI * uni()), 1, 50};
}

#define STRANGERS 40

typedef struct fx {
    abis_finger_template a;
    abis_finger_template strangers[STRANGERS];
    double impostor_max; /* the best score of a against the strangers */
    double self;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    random_print(&f->a, 40);
    for (int k = 0; k < STRANGERS; k++) {
        random_print(&f->strangers[k], 25 + k % 30);
        double s = abis_finger_compare(&f->a, &f->strangers[k]);
        if (s > f->impostor_max)
            f->impostor_max = s;
    }
    f->self = abis_finger_compare(&f->a, &f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_self_scores_far_above_strangers(void **state)
{
    fx *f = *state;
    assert_true(f->self > 0);
    assert_true(f->self > 5 * f->impostor_max);
    assert_true(f->self <= 1.5 + 1e-9);
}

static void test_rotation_and_translation_do_not_matter(void **state)
{
    fx *f = *state;
    const double degs[] = {7, 30, 90, 135, 180, 250, 333};
    for (size_t k = 0; k < sizeof degs / sizeof *degs; k++) {
        abis_finger_template b;
        transform(&f->a, &b, degs[k], 35 - 10 * (double)k, 20);
        double s = abis_finger_compare(&f->a, &b);
        if (fabs(s - f->self) > 0.05 * f->self)
            fail_msg("rotated %.0f degrees: %.4f against %.4f unmoved", degs[k], s, f->self);
    }
    abis_finger_template b;
    transform(&f->a, &b, 0, -40, 73.5);
    assert_true(fabs(abis_finger_compare(&f->a, &b) - f->self) < 1e-3 * f->self);
}

static void test_dropped_minutiae_still_match(void **state)
{
    fx *f = *state;
    for (int round = 0; round < 5; round++) {
        abis_finger_template b;
        transform(&f->a, &b, 40 * round, 10, -15);
        perturb(&b, 0.3, 0, 0, 0); /* a third of the minutiae gone */
        double s = abis_finger_compare(&f->a, &b);
        if (s < 3 * f->impostor_max)
            fail_msg("round %d (%d minutiae left): %.4f, strangers up to %.4f", round, b.n, s,
                     f->impostor_max);
    }
}

static void test_moved_missing_and_spurious_minutiae_still_match(void **state)
{
    fx *f = *state;
    for (int round = 0; round < 5; round++) {
        abis_finger_template b;
        transform(&f->a, &b, 70 * round + 5, -20, 12);
        /* 20 % missed, +-4 px and +-10 degrees of extraction noise, 6 false */
        perturb(&b, 0.2, 4, 10, 6);
        double s = abis_finger_compare(&f->a, &b);
        if (s < 2 * f->impostor_max)
            fail_msg("round %d: %.4f, strangers up to %.4f", round, s, f->impostor_max);
    }
}

static void test_partial_overlap_still_matches(void **state)
{
    fx *f = *state;
    /* only the left 60 % of the print was seen */
    abis_finger_template b = f->a;
    int k = 0;
    for (int i = 0; i < b.n; i++)
        if (b.m[i].x < 230)
            b.m[k++] = b.m[i];
    b.n = k;
    abis_finger_template c;
    transform(&b, &c, 25, 30, 0);
    assert_true(abis_finger_compare(&f->a, &c) > 2 * f->impostor_max);
}

static void test_every_kernel_gives_the_same_score(void **state)
{
    fx *f = *state;
    abis_finger_prep *pa, *pb;
    abis_error err = {0};
    assert_status(abis_finger_prepare(&f->a, &pa, &err), ABIS_OK, &err);
    for (int k = 0; k < 10; k++) {
        abis_finger_template b;
        if (k % 2) {
            b = f->strangers[k];
        } else {
            transform(&f->a, &b, 33 * k, 5, 5);
            perturb(&b, 0.2, 3, 8, 3);
        }
        assert_status(abis_finger_prepare(&b, &pb, &err), ABIS_OK, &err);
        abis_finger_force_scalar(0);
        double best = abis_finger_match(pa, pb), best_pre = abis_finger_preselect(pa, pb);
        abis_finger_force_scalar(1);
        assert_string_equal(abis_finger_kernel_name(), "scalar");
        double scalar = abis_finger_match(pa, pb), scalar_pre = abis_finger_preselect(pa, pb);
        abis_finger_force_scalar(0);
        assert_true(best == scalar);
        assert_true(best_pre == scalar_pre);
        abis_finger_prep_free(pb);
    }
    abis_finger_prep_free(pa);
}

static void test_preselection_ranks_mates_above_strangers(void **state)
{
    fx *f = *state;
    abis_finger_prep *pa, *pb;
    abis_error err = {0};
    assert_status(abis_finger_prepare(&f->a, &pa, &err), ABIS_OK, &err);
    double stranger_max = 0;
    for (int k = 0; k < STRANGERS; k++) {
        assert_status(abis_finger_prepare(&f->strangers[k], &pb, &err), ABIS_OK, &err);
        double s = abis_finger_preselect(pa, pb);
        if (s > stranger_max)
            stranger_max = s;
        abis_finger_prep_free(pb);
    }
    for (int round = 0; round < 5; round++) {
        abis_finger_template b;
        transform(&f->a, &b, 50 * round, -5, 8);
        perturb(&b, 0.2, 3, 8, 4);
        assert_status(abis_finger_prepare(&b, &pb, &err), ABIS_OK, &err);
        assert_true(abis_finger_preselect(pa, pb) > stranger_max);
        abis_finger_prep_free(pb);
    }
    abis_finger_prep_free(pa);
}

static void test_too_few_minutiae_score_zero(void **state)
{
    fx *f = *state;
    abis_finger_template b;
    random_print(&b, 1);
    assert_true(abis_finger_compare(&f->a, &b) == 0);
    b.n = 0;
    assert_true(abis_finger_compare(&f->a, &b) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_scores_far_above_strangers),
        cmocka_unit_test(test_rotation_and_translation_do_not_matter),
        cmocka_unit_test(test_dropped_minutiae_still_match),
        cmocka_unit_test(test_moved_missing_and_spurious_minutiae_still_match),
        cmocka_unit_test(test_partial_overlap_still_matches),
        cmocka_unit_test(test_every_kernel_gives_the_same_score),
        cmocka_unit_test(test_preselection_ranks_mates_above_strangers),
        cmocka_unit_test(test_too_few_minutiae_score_zero),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
