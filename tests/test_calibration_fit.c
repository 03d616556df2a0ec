/*
 * test_calibration_fit.c: fitting calibrations from scores, likelihood
 * ratios, the 1:N curve, and fusion -- on synthetic data with a held-out half.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match/match.h"
#include "testutil.h"

typedef struct scores {
    double *gen, *imp;
    size_t n_gen, n_imp;
} scores;

/* Genuine: sample 0 vs sample 1 of each identity; impostor: sample 0 of
 * identity i vs sample 1 of every other identity j (i, j in [first, first+n)). */
static scores make_scores(uint64_t seed, size_t first, size_t n, size_t dim, double sigma)
{
    scores s = {0};
    float *a = malloc(n * dim * sizeof *a), *b = malloc(n * dim * sizeof *b);
    for (size_t i = 0; i < n; i++) {
        abis_synth_sample(seed, first + i, 0, sigma, a + i * dim, dim);
        abis_synth_sample(seed, first + i, 1, sigma, b + i * dim, dim);
    }
    s.gen = malloc(n * sizeof *s.gen);
    s.imp = malloc(n * (n - 1) * sizeof *s.imp);
    abis_dot_fn dot = abis_dot_best();
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double v = dot(a + i * dim, b + j * dim, dim);
            if (i == j)
                s.gen[s.n_gen++] = v;
            else
                s.imp[s.n_imp++] = v;
        }
    free(a);
    free(b);
    return s;
}

static void free_scores(scores *s)
{
    free(s->gen);
    free(s->imp);
}

static abis_calibration *fit(const scores *s, const abis_ident_scores *ident)
{
    char *json = NULL;
    abis_error err;
    assert_status(abis_calibration_fit(s->gen, s->n_gen, s->imp, s->n_imp, ident, &json, &err),
                  ABIS_OK, &err);
    abis_calibration *c = NULL;
    assert_status(abis_calibration_parse(json, &c, &err), ABIS_OK, &err);
    assert_non_null(strstr(json, "\"tail\""));
    free(json);
    return c;
}

static double observed_fmr(const scores *s, double threshold)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_imp; i++)
        k += s->imp[i] >= threshold;
    return (double)k / (double)s->n_imp;
}

/* Fit on identities 0..299, check on 300..599: the FMR observed at each
 * target lies within the binomial 99.9 % interval of the target. */
static void test_fit_round_trip_holds_target_fmr_on_held_out_half(void **state)
{
    (void)state;
    scores fit_half = make_scores(5, 0, 300, 64, 0.6);
    scores held = make_scores(5, 300, 300, 64, 0.6);
    abis_calibration *c = fit(&fit_half, NULL);
    static const double targets[] = {1e-1, 1e-2, 1e-3};
    for (int t = 0; t < 3; t++) {
        double thr = abis_calibration_threshold(c, targets[t]);
        double obs = observed_fmr(&held, thr);
        double sd = sqrt(targets[t] * (1 - targets[t]) / (double)held.n_imp);
        print_message("fit round trip: target %g threshold %.4f observed %g (%zu impostors)\n",
                      targets[t], thr, obs, held.n_imp);
        assert_true(fabs(obs - targets[t]) <= 3.3 * sd + 0.1 * targets[t]);
    }
    abis_calibration_free(c);
    free_scores(&fit_half);
    free_scores(&held);
}

static void test_fit_tail_extends_beyond_the_data(void **state)
{
    (void)state;
    scores s = make_scores(6, 0, 200, 64, 0.6);
    abis_calibration *c = fit(&s, NULL);
    /* 39,800 impostors measure down to about 2.5e-5; the normal tail goes on. */
    double thr = abis_calibration_threshold(c, 1e-9);
    assert_true(thr < 1.0);
    assert_true(abis_calibration_fmr(c, thr) <= 1e-9);
    assert_true(thr > abis_calibration_threshold(c, 1e-6));
    abis_calibration_free(c);
    free_scores(&s);
}

static void test_fit_refuses_too_few_or_bad_scores(void **state)
{
    (void)state;
    double g[20], i[200];
    for (int k = 0; k < 20; k++)
        g[k] = 0.8;
    for (int k = 0; k < 200; k++)
        i[k] = k / 1000.0;
    char *json = NULL;
    abis_error err;
    assert_status(abis_calibration_fit(g, 5, i, 200, NULL, &json, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "at least 10 genuine"));
    i[17] = NAN;
    assert_status(abis_calibration_fit(g, 20, i, 200, NULL, &json, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "impostor score 17"));
    assert_null(json);
}

/* An impostor's normalised likelihood ratio has expectation about 1 (it is
 * what makes the fusion bound hold), and genuine scores get large LRs. */
static void test_llr_is_normalised_over_impostors(void **state)
{
    (void)state;
    scores fit_half = make_scores(7, 0, 300, 64, 0.9);
    scores held = make_scores(7, 300, 300, 64, 0.9);
    abis_calibration *c = fit(&fit_half, NULL);
    double sum = 0, l;
    for (size_t i = 0; i < held.n_imp; i++) {
        assert_int_equal(abis_calibration_llr(c, held.imp[i], &l), 0);
        sum += exp(l);
    }
    double mean_lr = sum / (double)held.n_imp;
    print_message("mean impostor LR on held-out data: %.3f\n", mean_lr);
    assert_true(mean_lr < 1.2);
    assert_int_equal(abis_calibration_llr(c, held.gen[0], &l), 0);
    assert_true(l > 2);
    abis_calibration_free(c);
    free_scores(&fit_half);
    free_scores(&held);
}

static void test_default_calibration_has_no_llr_and_fusion_says_so(void **state)
{
    (void)state;
    abis_calibration *c = NULL;
    abis_error err;
    assert_status(abis_calibration_parse("{\"model\":\"random-directions\",\"dim\":64}", &c, &err),
                  ABIS_OK, &err);
    double l, fused, bound, score = 0.5;
    assert_int_equal(abis_calibration_llr(c, 0.5, &l), -1);
    const abis_calibration *cs[] = {c};
    assert_status(abis_fusion_lr(cs, &score, 1, &fused, &bound, &err), ABIS_E_INVALID, &err);
    assert_non_null(strstr(err.message, "no likelihood-ratio model"));
    abis_calibration_free(c);
}

/* Face (clean) and voice (noisy), independent: the fused decision at a target
 * holds the target on held-out impostor pairs and misses fewer genuine pairs
 * than either modality alone at the same target. */
static void test_fusion_holds_target_and_beats_each_modality(void **state)
{
    (void)state;
    scores face_fit = make_scores(8, 0, 300, 64, 1.0), voice_fit = make_scores(9, 0, 300, 32, 1.4);
    scores face = make_scores(8, 300, 300, 64, 1.0), voice = make_scores(9, 300, 300, 32, 1.4);
    abis_calibration *cf = fit(&face_fit, NULL), *cv = fit(&voice_fit, NULL);
    const abis_calibration *cs[] = {cf, cv};
    const double target = 1e-3;
    size_t fm = 0, miss_fused = 0, miss_face = 0, miss_voice = 0;
    double tf = abis_calibration_threshold(cf, target), tv = abis_calibration_threshold(cv, target);
    abis_error err;
    for (size_t i = 0; i < face.n_imp; i++) {
        double sc[2] = {face.imp[i], voice.imp[i]}, l, bound;
        assert_status(abis_fusion_lr(cs, sc, 2, &l, &bound, &err), ABIS_OK, &err);
        fm += bound <= target;
    }
    for (size_t i = 0; i < face.n_gen; i++) {
        double sc[2] = {face.gen[i], voice.gen[i]}, l, bound;
        assert_status(abis_fusion_lr(cs, sc, 2, &l, &bound, &err), ABIS_OK, &err);
        miss_fused += bound > target;
        miss_face += face.gen[i] < tf;
        miss_voice += voice.gen[i] < tv;
    }
    double fmr = (double)fm / (double)face.n_imp;
    print_message("fusion at FMR target %g: observed FMR %g; FNMR fused %zu, face %zu, voice %zu "
                  "of %zu\n",
                  target, fmr, miss_fused, miss_face, miss_voice, face.n_gen);
    assert_true(fmr <= target + 3.3 * sqrt(target / (double)face.n_imp));
    assert_true(miss_fused < miss_face);
    assert_true(miss_fused < miss_voice);
    abis_calibration_free(cf);
    abis_calibration_free(cv);
    free_scores(&face_fit);
    free_scores(&voice_fit);
    free_scores(&face);
    free_scores(&voice);
}

/* The 1:N curve: a threshold for a larger gallery is higher, and the FPIR of
 * a score grows with the gallery size. */
static void test_identification_curve_rescales_with_gallery_size(void **state)
{
    (void)state;
    scores s = make_scores(10, 0, 200, 64, 0.6);
    /* Non-mated best scores at a gallery of 100: the max of 100 impostors. */
    double best[398];
    for (size_t p = 0; p < 398; p++) {
        double m = -1;
        for (size_t j = 0; j < 100; j++)
            m = fmax(m, s.imp[(p * 100 + j) % s.n_imp]);
        best[p] = m;
    }
    abis_ident_scores ident = {.gallery_size = 100, .nonmated_best = best, .n = 398};
    abis_calibration *c = fit(&s, &ident);
    double t100 = abis_calibration_fpir_threshold(c, 0.01, 100);
    double t10k = abis_calibration_fpir_threshold(c, 0.01, 10000);
    assert_true(t10k > t100);
    assert_true(abis_calibration_fpir(c, t100, 100) <= 0.0100001);
    assert_true(abis_calibration_fpir(c, t100, 10000) > abis_calibration_fpir(c, t100, 100));
    abis_calibration_free(c);
    free_scores(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_round_trip_holds_target_fmr_on_held_out_half),
        cmocka_unit_test(test_fit_tail_extends_beyond_the_data),
        cmocka_unit_test(test_fit_refuses_too_few_or_bad_scores),
        cmocka_unit_test(test_llr_is_normalised_over_impostors),
        cmocka_unit_test(test_default_calibration_has_no_llr_and_fusion_says_so),
        cmocka_unit_test(test_fusion_holds_target_and_beats_each_modality),
        cmocka_unit_test(test_identification_curve_rescales_with_gallery_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
