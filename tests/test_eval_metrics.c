/* test_eval_metrics.c: ISO/IEC 19795-1 metrics, the DET and the probit
 * (src/eval/metrics.c, src/eval/det.c; definitions in docs/EVALUATION.md). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/eval_internal.h"

/* |a - b| <= eps, printing both at full precision when not. */
#define assert_near(a, b, eps)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (eps)))                                                             \
            fail_msg("%.17g differs from %.17g by more than %g", a_, b_, (double)(eps));           \
    } while (0)

#define EPS 1e-12

/* ---- helpers ------------------------------------------------------------------ */

/* A score set from arrays; every genuine score belongs to identity gid[i]
 * (or i % 7 when gid is NULL), every impostor pair to (iid[i], iid[i] + 1). */
static void make_set(abis_eval_scores *s, const double *gen, size_t ng, const uint32_t *gid,
                     const double *imp, size_t ni, const uint32_t *iid)
{
    abis_eval_scores_init(s, "test");
    for (size_t i = 0; i < ng; i++)
        assert_int_equal(abis_eval_add_genuine(s, gen[i], gid ? gid[i] : (uint32_t)(i % 7)), 0);
    for (size_t i = 0; i < ni; i++) {
        uint32_t a = iid ? iid[i] : (uint32_t)(i % 7);
        assert_int_equal(abis_eval_add_impostor(s, imp[i], a, a + 1), 0);
    }
}

static abis_eval_verif_metrics verify_ok(const abis_eval_scores *s, unsigned boot)
{
    abis_eval_verif_metrics m;
    abis_error err = {0};
    assert_status(abis_eval_verification(s, boot, &m, &err), ABIS_OK, &err);
    return m;
}

static uint64_t rng_state = 12345;

static double uniform(void)
{
    abis_synth_rng r = {rng_state};
    double u = abis_synth_uniform(&r);
    rng_state = r.state;
    return u;
}

static double normal(void)
{
    abis_synth_rng r = {rng_state};
    double v = abis_synth_normal(&r);
    rng_state = r.state;
    return v;
}

/* The four-and-four case of the issue. */
static const double G4[] = {0.9, 0.8, 0.7, 0.6};
static const double I4[] = {0.1, 0.2, 0.3, 0.65};

/* ---- FMR, FNMR, EER ----------------------------------------------------------- */

static void test_rates_at_hand_case(void **state)
{
    (void)state;
    abis_eval_scores s;
    make_set(&s, G4, 4, NULL, I4, 4, NULL);
    double fmr, fnmr;
    abis_eval_rates_at(&s, 0.65, &fmr, &fnmr);
    assert_near(fmr, 0.25, EPS);  /* 0.65 itself: ties match */
    assert_near(fnmr, 0.25, EPS); /* 0.6 */
    abis_eval_rates_at(&s, 0.7, &fmr, &fnmr);
    assert_near(fmr, 0, EPS);
    assert_near(fnmr, 0.25, EPS);
    abis_eval_rates_at(&s, 0.3, &fmr, &fnmr);
    assert_near(fmr, 0.5, EPS);
    assert_near(fnmr, 0, EPS);
    abis_eval_rates_at(&s, 0.95, &fmr, &fnmr);
    assert_near(fmr, 0, EPS);
    assert_near(fnmr, 1, EPS);
    abis_eval_scores_free(&s);
}

static void test_eer_where_rates_meet_exactly(void **state)
{
    (void)state;
    abis_eval_scores s;
    make_set(&s, G4, 4, NULL, I4, 4, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    assert_int_equal(m.n_genuine, 4);
    assert_int_equal(m.n_impostor, 4);
    assert_true(m.eer.supported);
    assert_near(m.eer.value, 0.25, EPS);
    assert_near(m.eer.threshold, 0.65, EPS);
    assert_near(m.eer.lo, m.eer.value, 0);
    assert_near(m.eer.hi, m.eer.value, 0);
    assert_int_equal(m.eer.support, 8);
    abis_eval_scores_free(&s);
}

static void test_eer_interpolated_between_points(void **state)
{
    (void)state;
    /* points (t, FMR, FNMR): (0.9, 0, .5) (0.6, .25, .5) (0.5, .25, 0): the
     * difference goes .25 -> -.25, so halfway: EER .25 at threshold 0.55 */
    const double gen[] = {0.9, 0.5}, imp[] = {0.6, 0.1, 0.2, 0.3};
    abis_eval_scores s;
    make_set(&s, gen, 2, NULL, imp, 4, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    assert_near(m.eer.value, 0.25, EPS);
    assert_near(m.eer.threshold, 0.55, EPS);
    abis_eval_scores_free(&s);
}

static void test_eer_zero_when_classes_separate(void **state)
{
    (void)state;
    const double gen[] = {0.9, 0.8}, imp[] = {0.1, 0.2};
    abis_eval_scores s;
    make_set(&s, gen, 2, NULL, imp, 2, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    assert_near(m.eer.value, 0, EPS);
    assert_near(m.eer.threshold, 0.8, EPS);
    abis_eval_scores_free(&s);
}

static void test_ties_count_as_matches(void **state)
{
    (void)state;
    const double gen[] = {0.5, 0.5}, imp[] = {0.5, 0.5, 0.5};
    abis_eval_scores s;
    make_set(&s, gen, 2, NULL, imp, 3, NULL);
    double fmr, fnmr;
    abis_eval_rates_at(&s, 0.5, &fmr, &fnmr);
    assert_near(fmr, 1, EPS);
    assert_near(fnmr, 0, EPS);
    /* one operating point (0.5: FMR 1, FNMR 0) after the start (FMR 0,
     * FNMR 1): the crossing is halfway, at the only score */
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    assert_near(m.eer.value, 0.5, EPS);
    assert_near(m.eer.threshold, 0.5, EPS);
    abis_eval_scores_free(&s);
}

static void test_single_scores(void **state)
{
    (void)state;
    const double gen[] = {0.7}, imp[] = {0.3};
    abis_eval_scores s;
    make_set(&s, gen, 1, NULL, imp, 1, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 50);
    assert_near(m.eer.value, 0, EPS);
    assert_near(m.eer.threshold, 0.7, EPS);
    assert_true(isinf(m.d_prime)); /* no spread at all */
    for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++) {
        assert_false(m.fnmr_at_fmr[k].supported);
        assert_int_equal(m.fnmr_at_fmr[k].support, 1);
    }
    abis_eval_scores_free(&s);
}

/* ---- FNMR at FMR --------------------------------------------------------------- */

static void test_fnmr_at_fmr_unsupported_with_few_impostors(void **state)
{
    (void)state;
    abis_eval_scores s;
    make_set(&s, G4, 4, NULL, I4, 4, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 20);
    for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++) {
        abis_eval_rate *r = &m.fnmr_at_fmr[k];
        assert_false(r->supported);
        assert_int_equal(r->support, 4);
        assert_true(isnan(r->value) && isnan(r->lo) && isnan(r->hi) && isnan(r->threshold));
    }
    abis_eval_scores_free(&s);
}

static void test_fnmr_at_fmr_hand_case(void **state)
{
    (void)state;
    /* impostors 0.00, 0.01, ..., 0.99: FMR 1e-2 lets one match, so the
     * threshold is just above the second highest, 0.98; genuine 0.98 (a
     * tie with it) and 0.5 miss: FNMR 0.5 */
    double imp[100];
    for (int i = 0; i < 100; i++)
        imp[i] = i / 100.0;
    const double gen[] = {0.985, 0.99, 0.5, 0.98};
    abis_eval_scores s;
    make_set(&s, gen, 4, NULL, imp, 100, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    abis_eval_rate *r = &m.fnmr_at_fmr[0];
    assert_true(r->supported);
    assert_int_equal(r->support, 100);
    assert_true(r->threshold == nextafter(0.98, INFINITY));
    assert_near(r->value, 0.5, EPS);
    double fmr, fnmr;
    abis_eval_rates_at(&s, r->threshold, &fmr, &fnmr);
    assert_true(fmr <= 0.01);
    assert_near(fnmr, r->value, EPS);
    abis_eval_rates_at(&s, 0.98, &fmr, &fnmr); /* one step lower is over target */
    assert_true(fmr > 0.01);
    assert_false(m.fnmr_at_fmr[1].supported); /* 100 < 1/1e-3 */
    assert_false(m.fnmr_at_fmr[2].supported);
    abis_eval_scores_free(&s);
}

static void test_zero_fmr_is_read_just_above_the_highest_impostor(void **state)
{
    (void)state;
    /* highest impostor 0.99; genuine 0.99 ties with it and misses, 0.5
     * misses, 0.995 and 1.0 match: ZeroFMR 0.5, with four impostors (where
     * FNMR at FMR 1e-2 is not supported) */
    const double imp[] = {0.2, 0.99, 0.4, 0.1}, gen[] = {0.99, 0.5, 0.995, 1.0};
    abis_eval_scores s;
    make_set(&s, gen, 4, NULL, imp, 4, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 20);
    abis_eval_rate *z = &m.fnmr_at_zero_fmr;
    assert_true(z->supported);
    assert_int_equal(z->support, 4);
    assert_true(z->threshold == nextafter(0.99, INFINITY));
    assert_near(z->value, 0.5, EPS);
    assert_near(z->lo, 0.5, EPS);
    assert_near(z->hi, 0.5, EPS);
    assert_false(m.fnmr_at_fmr[0].supported);
    abis_eval_scores_free(&s);
    /* no impostor: not supported */
    make_set(&s, gen, 4, NULL, NULL, 0, NULL);
    m = verify_ok(&s, 0);
    assert_false(m.fnmr_at_zero_fmr.supported);
    abis_eval_scores_free(&s);
}

static void test_fnmr_at_fmr_supported_at_exactly_one_over_target(void **state)
{
    (void)state;
    double *imp = malloc(10000 * sizeof *imp);
    assert_non_null(imp);
    for (int i = 0; i < 10000; i++)
        imp[i] = i / 10000.0;
    const double gen[] = {0.99995, 0.5};
    abis_eval_scores s;
    make_set(&s, gen, 2, NULL, imp, 10000, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++) {
        abis_eval_rate *r = &m.fnmr_at_fmr[k];
        assert_true(r->supported);
        /* k allowed = 100, 10, 1: threshold just above the (allowed+1)-th
         * highest impostor score */
        int allowed = (int)lround(abis_eval_fmr_targets[k] * 10000);
        assert_true(r->threshold == nextafter((9999 - allowed) / 10000.0, INFINITY));
        double fmr, fnmr;
        abis_eval_rates_at(&s, r->threshold, &fmr, &fnmr);
        assert_true(fmr <= abis_eval_fmr_targets[k]);
        assert_near(fnmr, r->value, EPS);
    }
    assert_near(m.fnmr_at_fmr[2].value, 0.5, EPS);
    abis_eval_scores_free(&s);
    free(imp);
}

/* ---- edge cases ------------------------------------------------------------------ */

static void test_no_impostors(void **state)
{
    (void)state;
    abis_eval_scores s;
    make_set(&s, G4, 4, NULL, NULL, 0, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 50);
    assert_false(m.eer.supported);
    assert_true(isnan(m.eer.value));
    assert_int_equal(m.eer.support, 4);
    assert_true(isnan(m.d_prime));
    for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++)
        assert_false(m.fnmr_at_fmr[k].supported);
    double fmr, fnmr;
    abis_eval_rates_at(&s, 0.75, &fmr, &fnmr);
    assert_true(isnan(fmr));
    assert_near(fnmr, 0.5, EPS);
    abis_eval_det_point *p = NULL;
    size_t n = 99;
    abis_error err = {0};
    assert_status(abis_eval_det(&s, &p, &n, &err), ABIS_OK, &err);
    assert_null(p);
    assert_int_equal(n, 0);
    abis_eval_scores_free(&s);
}

static void test_no_genuine(void **state)
{
    (void)state;
    abis_eval_scores s;
    make_set(&s, NULL, 0, NULL, I4, 4, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 50);
    assert_false(m.eer.supported);
    assert_true(isnan(m.eer.value));
    assert_true(isnan(m.d_prime));
    double fmr, fnmr;
    abis_eval_rates_at(&s, 0.25, &fmr, &fnmr);
    assert_near(fmr, 0.5, EPS);
    assert_true(isnan(fnmr));
    abis_eval_scores_free(&s);
}

static void test_empty_set(void **state)
{
    (void)state;
    abis_eval_scores s;
    abis_eval_scores_init(&s, "empty");
    abis_eval_verif_metrics m = verify_ok(&s, 10);
    assert_int_equal(m.n_genuine + m.n_impostor, 0);
    assert_false(m.eer.supported);
    assert_true(isnan(m.fte_rate) && isnan(m.fta_rate)); /* nothing attempted */
    abis_eval_scores_free(&s);
}

static void test_one_identity_gives_a_degenerate_interval(void **state)
{
    (void)state;
    const uint32_t id[4] = {0, 0, 0, 0};
    abis_eval_scores s;
    make_set(&s, G4, 4, id, I4, 4, id);
    abis_eval_verif_metrics m = verify_ok(&s, 100);
    assert_near(m.eer.value, 0.25, EPS);
    assert_near(m.eer.lo, 0.25, EPS); /* every resample is the whole set */
    assert_near(m.eer.hi, 0.25, EPS);
    abis_eval_scores_free(&s);
}

static void test_nonfinite_score_refused(void **state)
{
    (void)state;
    const double gen[] = {0.9, NAN};
    abis_eval_scores s;
    make_set(&s, gen, 2, NULL, I4, 4, NULL);
    abis_eval_verif_metrics m;
    abis_error err = {0};
    assert_int_equal(abis_eval_verification(&s, 0, &m, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "genuine score 1"));
    abis_eval_scores_free(&s);
}

static void test_d_prime_known_case(void **state)
{
    (void)state;
    /* genuine mean 2, variance 1; impostor mean 0, variance 1: d' = 2 */
    const double gen[] = {1, 3}, imp[] = {-1, 1};
    abis_eval_scores s;
    make_set(&s, gen, 2, NULL, imp, 2, NULL);
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    assert_near(m.d_prime, 2, EPS);
    abis_eval_scores_free(&s);
}

static void test_fte_fta_from_counters(void **state)
{
    (void)state;
    abis_eval_scores s;
    make_set(&s, G4, 4, NULL, I4, 4, NULL);
    s.attempted = 200;
    s.failed_to_enrol = 4;
    s.failed_to_acquire = 2;
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    assert_near(m.fte_rate, 0.02, EPS);
    assert_near(m.fta_rate, 0.01, EPS);
    abis_eval_scores_free(&s);
}

/* ---- bootstrap --------------------------------------------------------------------- */

/* 200 identities, 5 genuine pairs each ~N(2.5, 1), 20,000 impostor pairs ~N(0, 1). */
static void make_synthetic(abis_eval_scores *s, uint64_t seed)
{
    rng_state = seed;
    abis_eval_scores_init(s, "synthetic");
    for (uint32_t id = 0; id < 200; id++) {
        double bias = 0.5 * normal(); /* identities differ: clustered scores */
        for (int k = 0; k < 5; k++)
            assert_int_equal(abis_eval_add_genuine(s, 2.5 + bias + normal(), id), 0);
    }
    for (int i = 0; i < 20000; i++) {
        uint32_t a = (uint32_t)(uniform() * 200), b = (a + 1 + (uint32_t)(uniform() * 199)) % 200;
        assert_int_equal(abis_eval_add_impostor(s, normal(), a, b), 0);
    }
}

static void test_bootstrap_interval_holds_estimate_and_reproduces(void **state)
{
    (void)state;
    abis_eval_scores s;
    make_synthetic(&s, 7);
    abis_eval_verif_metrics m = verify_ok(&s, 200), again = verify_ok(&s, 200);
    abis_eval_rate *rates[] = {&m.eer, &m.fnmr_at_fmr[0], &m.fnmr_at_fmr[1], &m.fnmr_at_fmr[2]};
    abis_eval_rate *rates2[] = {&again.eer, &again.fnmr_at_fmr[0], &again.fnmr_at_fmr[1],
                                &again.fnmr_at_fmr[2]};
    for (int k = 0; k < 4; k++) {
        assert_true(rates[k]->supported);
        assert_true(rates[k]->lo <= rates[k]->value && rates[k]->value <= rates[k]->hi);
        assert_true(rates[k]->lo < rates[k]->hi);
        assert_true(rates[k]->lo == rates2[k]->lo && rates[k]->hi == rates2[k]->hi);
    }
    printf("# synthetic: EER %.4f [%.4f, %.4f], FNMR@1e-3 %.4f [%.4f, %.4f], d' %.3f\n",
           m.eer.value, m.eer.lo, m.eer.hi, m.fnmr_at_fmr[1].value, m.fnmr_at_fmr[1].lo,
           m.fnmr_at_fmr[1].hi, m.d_prime);
    abis_eval_scores_free(&s);
}

/* An independent bootstrap, by brute force from the documented scheme
 * (docs/EVALUATION.md): population = identities owning a score, ascending;
 * splitmix64 from seed 0x0AB15E7A1, each of n draws picks pop[next % n];
 * weights scale each identity's genuine pairs and impostor pairs (by id_a);
 * the metrics of a resample are read off the weighted DET. */
static void brute_boot_eer(const abis_eval_scores *s, unsigned reps, double *eer_out,
                           double *fnmr2_out)
{
    uint32_t max_id = 0;
    for (size_t i = 0; i < s->n_genuine; i++)
        max_id = s->gen_id[i] > max_id ? s->gen_id[i] : max_id;
    for (size_t i = 0; i < s->n_impostor; i++)
        max_id = s->imp_id_a[i] > max_id ? s->imp_id_a[i] : max_id;
    size_t n_ids = (size_t)max_id + 1;
    int *owns = calloc(n_ids, sizeof *owns);
    double *w = calloc(n_ids, sizeof *w);
    uint32_t *pop = malloc(n_ids * sizeof *pop);
    assert_true(owns && w && pop);
    for (size_t i = 0; i < s->n_genuine; i++)
        owns[s->gen_id[i]] = 1;
    for (size_t i = 0; i < s->n_impostor; i++)
        owns[s->imp_id_a[i]] = 1;
    size_t n_pop = 0;
    for (size_t j = 0; j < n_ids; j++)
        if (owns[j])
            pop[n_pop++] = (uint32_t)j;
    /* the distinct scores, descending */
    size_t nt = s->n_genuine + s->n_impostor;
    double *t = malloc(nt * sizeof *t);
    assert_non_null(t);
    memcpy(t, s->genuine, s->n_genuine * sizeof *t);
    memcpy(t + s->n_genuine, s->impostor, s->n_impostor * sizeof *t);
    abis_eval_sort(t, nt);
    abis_synth_rng r = {0x0AB15E7A1ull};
    for (unsigned b = 0; b < reps; b++) {
        memset(w, 0, n_ids * sizeof *w);
        for (size_t k = 0; k < n_pop; k++)
            w[pop[abis_synth_next(&r) % n_pop]] += 1;
        double tg = 0, ti = 0;
        for (size_t i = 0; i < s->n_genuine; i++)
            tg += w[s->gen_id[i]];
        for (size_t i = 0; i < s->n_impostor; i++)
            ti += w[s->imp_id_a[i]];
        eer_out[b] = fnmr2_out[b] = NAN;
        if (tg == 0 || ti == 0)
            continue;
        double pf = 0, pn = 1, pt = INFINITY; /* previous point */
        int have_eer = 0, have_fnmr = 0;
        for (size_t j = nt; j-- > 0 && !(have_eer && have_fnmr);) {
            if (j + 1 < nt && t[j] == t[j + 1])
                continue;
            double fm = 0, fnm = 0;
            for (size_t i = 0; i < s->n_impostor; i++)
                fm += s->impostor[i] >= t[j] ? w[s->imp_id_a[i]] : 0;
            for (size_t i = 0; i < s->n_genuine; i++)
                fnm += s->genuine[i] < t[j] ? w[s->gen_id[i]] : 0;
            double fmr = fm / ti, fnmr = fnm / tg;
            if (!have_fnmr && fm > 1e-2 * ti * (1 + 1e-9)) {
                /* threshold just above t[j]: FNMR counts genuine <= t[j] */
                double miss = 0;
                for (size_t i = 0; i < s->n_genuine; i++)
                    miss += s->genuine[i] <= t[j] ? w[s->gen_id[i]] : 0;
                fnmr2_out[b] = miss / tg;
                have_fnmr = 1;
            }
            if (!have_eer && fnmr - fmr <= 0) {
                double dp = pn - pf, d = fnmr - fmr, a = dp / (dp - d);
                eer_out[b] = pf + a * (fmr - pf);
                have_eer = 1;
            }
            pf = fmr;
            pn = fnmr;
            pt = t[j];
        }
        (void)pt;
    }
    free(t);
    free(owns);
    free(w);
    free(pop);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Type-7 percentile of the non-NaN values. */
static double percentile(double *v, size_t n, double q)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[m++] = v[i];
    qsort(v, m, sizeof *v, cmp_double);
    double h = q * (double)(m - 1);
    size_t f = (size_t)h;
    return f + 1 < m ? v[f] + (h - (double)f) * (v[f + 1] - v[f]) : v[f];
}

/* The library's bootstrap intervals equal those of brute_boot_eer. */
static void check_boot_against_brute_force(const abis_eval_scores *s)
{
    enum { B = 60 };
    abis_eval_verif_metrics m = verify_ok(s, B);
    double eer[B], fnmr[B], e2[B], f2[B];
    brute_boot_eer(s, B, eer, fnmr);
    memcpy(e2, eer, sizeof eer);
    memcpy(f2, fnmr, sizeof fnmr);
    assert_near(m.eer.lo, percentile(eer, B, 0.025), 1e-12);
    assert_near(m.eer.hi, percentile(e2, B, 0.975), 1e-12);
    assert_true(m.fnmr_at_fmr[0].supported);
    assert_near(m.fnmr_at_fmr[0].lo, percentile(fnmr, B, 0.025), 1e-12);
    assert_near(m.fnmr_at_fmr[0].hi, percentile(f2, B, 0.975), 1e-12);
    assert_true(m.eer.hi > 3 * m.eer.value); /* the cases are as wide as meant */
}

static void test_bootstrap_matches_brute_force(void **state)
{
    (void)state;
    /* Ten identities; identity 0's impostor pairs score high and its genuine
     * pairs low, so resamples that draw it often have an EER far above the
     * point estimate. */
    abis_eval_scores s;
    abis_eval_scores_init(&s, "clustered");
    rng_state = 99;
    for (uint32_t id = 0; id < 10; id++) {
        for (int k = 0; k < 30; k++)
            assert_int_equal(
                abis_eval_add_genuine(&s, id == 0 ? 0.5 * uniform() : 0.6 + 0.4 * uniform(), id),
                0);
        for (int k = 0; k < 300; k++) {
            double v = id == 0 ? 0.6 + 0.4 * uniform() : 0.55 * uniform();
            v = round(v * 200) / 200; /* ties */
            assert_int_equal(abis_eval_add_impostor(&s, v, id, (id + 1) % 10), 0);
        }
    }
    check_boot_against_brute_force(&s);
    abis_eval_scores_free(&s);

    /* Two identities: A's few genuine pairs score below almost every
     * impostor, B's many lie far above.  The point EER is about 1 %, but a
     * resample of A alone crosses deep in the impostor scores, past the
     * impostor tail first kept for the walk, which must then grow. */
    abis_eval_scores_init(&s, "deep");
    for (int k = 0; k < 10; k++) {
        assert_int_equal(abis_eval_add_genuine(&s, 0.2 * uniform(), 0), 0);
        assert_int_equal(abis_eval_add_impostor(&s, 0.5 * uniform(), 0, 1), 0);
    }
    for (int k = 0; k < 1000; k++)
        assert_int_equal(abis_eval_add_genuine(&s, 0.9 + 0.1 * uniform(), 1), 0);
    for (int k = 0; k < 2000; k++)
        assert_int_equal(abis_eval_add_impostor(&s, 0.5 * uniform(), 1, 0), 0);
    check_boot_against_brute_force(&s);
    abis_eval_scores_free(&s);
}

/* ---- the DET --------------------------------------------------------------------- */

static void test_det_matches_brute_force(void **state)
{
    (void)state;
    rng_state = 3;
    abis_eval_scores s;
    abis_eval_scores_init(&s, "det");
    for (int i = 0; i < 400; i++)
        assert_int_equal(abis_eval_add_genuine(&s, round((1.5 + normal()) * 50) / 50, 0), 0);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(abis_eval_add_impostor(&s, round(normal() * 50) / 50, 1, 2), 0);
    abis_eval_det_point *p = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_eval_det(&s, &p, &n, &err), ABIS_OK, &err);
    /* one point per distinct score */
    size_t nt = s.n_genuine + s.n_impostor, distinct = 0;
    double *t = malloc(nt * sizeof *t);
    assert_non_null(t);
    memcpy(t, s.genuine, s.n_genuine * sizeof *t);
    memcpy(t + s.n_genuine, s.impostor, s.n_impostor * sizeof *t);
    qsort(t, nt, sizeof *t, cmp_double);
    for (size_t i = 0; i < nt; i++)
        distinct += i == 0 || t[i] != t[i - 1];
    assert_int_equal(n, distinct);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(p[i].threshold < p[i - 1].threshold);
        double fmr, fnmr;
        abis_eval_rates_at(&s, p[i].threshold, &fmr, &fnmr);
        assert_near(p[i].fmr, fmr, EPS);
        assert_near(p[i].fnmr, fnmr, EPS);
    }
    assert_near(p[n - 1].fmr, 1, EPS);
    assert_near(p[n - 1].fnmr, 0, EPS);
    /* the EER lies on the segment between two neighbouring points */
    abis_eval_verif_metrics m = verify_ok(&s, 0);
    size_t k = 0;
    while (p[k].fnmr - p[k].fmr > 0)
        k++;
    assert_true(k > 0);
    double lo = fmin(p[k - 1].fmr, p[k].fmr), hi = fmax(p[k - 1].fmr, p[k].fmr);
    assert_true(m.eer.value >= lo - EPS && m.eer.value <= hi + EPS);
    assert_true(m.eer.threshold <= p[k - 1].threshold && m.eer.threshold >= p[k].threshold);
    free(t);
    free(p);
    abis_eval_scores_free(&s);
}

/* ---- probit and sorting -------------------------------------------------------- */

static void test_probit_accuracy(void **state)
{
    (void)state;
    assert_near(abis_eval_probit(0.5), 0, 1e-15);
    assert_near(abis_eval_probit(0.975), 1.959963984540054, 1e-12);
    assert_near(abis_eval_probit(0.025), -1.959963984540054, 1e-12);
    assert_near(abis_eval_probit(1e-10), -6.361340902404056, 1e-9);
    /* round trip through Phi (erfc), where p still resolves x */
    for (double x = -37; x <= 5; x += 0.01) {
        double p = 0.5 * erfc(-x / sqrt(2.0));
        assert_near(abis_eval_probit(p), x, 1e-9 * fmax(1, fabs(x)));
    }
    assert_true(isfinite(abis_eval_probit(0)) && abis_eval_probit(0) < -37);
    assert_true(isfinite(abis_eval_probit(1)) && abis_eval_probit(1) > 8);
    assert_true(isfinite(abis_eval_probit(-1)) && isfinite(abis_eval_probit(2)));
    assert_true(isnan(abis_eval_probit(NAN)));
}

static void check_sorted_like_qsort(double *a, size_t n)
{
    double *b = malloc((n ? n : 1) * sizeof *b);
    assert_non_null(b);
    memcpy(b, a, n * sizeof *a);
    abis_eval_sort(a, n);
    qsort(b, n, sizeof *b, cmp_double);
    assert_memory_equal(a, b, n * sizeof *a);
    free(b);
}

static void test_sort_matches_qsort(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 2, 3, 17, 100, 1000, 100000};
    rng_state = 5;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        double *a = malloc((n ? n : 1) * sizeof *a);
        assert_non_null(a);
        for (int kind = 0; kind < 6; kind++) {
            for (size_t i = 0; i < n; i++) {
                switch (kind) {
                case 0:
                    a[i] = normal();
                    break; /* random */
                case 1:
                    a[i] = floor(uniform() * 4);
                    break; /* few values */
                case 2:
                    a[i] = (double)i;
                    break; /* sorted */
                case 3:
                    a[i] = (double)(n - i);
                    break; /* reversed */
                case 4:
                    a[i] = 1.0;
                    break; /* all equal */
                default:
                    a[i] = (double)(i < n / 2 ? i : n - i); /* organ pipe */
                }
            }
            check_sorted_like_qsort(a, n);
        }
        free(a);
    }
}

/* ---- 1:N -------------------------------------------------------------------------- */

static void test_identification_hand_case(void **state)
{
    (void)state;
    abis_eval_ident s;
    abis_eval_ident_init(&s, "hand", 1000, 20);
    /* mates: rank 1 at 0.99, rank 1 at 0.95, rank 3 at 0.985, not returned */
    assert_int_equal(abis_eval_add_mated(&s, 1, 0.99, 0.5, 0), 0);
    assert_int_equal(abis_eval_add_mated(&s, 1, 0.95, 0.5, 1), 0);
    assert_int_equal(abis_eval_add_mated(&s, 3, 0.985, 0.99, 2), 0);
    assert_int_equal(abis_eval_add_mated(&s, 0, 0, 0.7, 3), 0);
    /* non-mated best scores 0.00 ... 0.99: FPIR 0.01 lets one through, so
     * the threshold is just above 0.98; mates at 0.99 and 0.985 are hits */
    for (int i = 0; i < 100; i++)
        assert_int_equal(abis_eval_add_nonmated(&s, i / 100.0, (uint32_t)(10 + i)), 0);
    abis_eval_ident_metrics m;
    abis_error err = {0};
    assert_status(abis_eval_identification(&s, 0, &m, &err), ABIS_OK, &err);
    assert_int_equal(m.gallery_size, 1000);
    assert_int_equal(m.n_mated, 4);
    assert_int_equal(m.n_nonmated, 100);
    assert_near(m.cmc[0], 0.5, EPS);
    assert_near(m.cmc[1], 0.5, EPS);
    assert_near(m.cmc[2], 0.75, EPS);
    assert_near(m.cmc[19], 0.75, EPS);
    abis_eval_rate *r = &m.fnir_at_fpir[0];
    assert_true(r->supported);
    assert_int_equal(r->support, 100);
    assert_true(r->threshold == nextafter(0.98, INFINITY));
    assert_near(r->value, 0.5, EPS);
    assert_false(m.fnir_at_fpir[1].supported); /* 100 < 1/0.003 */
    assert_true(isnan(m.fnir_at_fpir[1].value));
    /* with a bootstrap the interval holds the estimate */
    assert_status(abis_eval_identification(&s, 200, &m, &err), ABIS_OK, &err);
    assert_true(m.fnir_at_fpir[0].lo <= 0.5 && 0.5 <= m.fnir_at_fpir[0].hi);
    abis_eval_ident_free(&s);
}

static void test_identification_mate_below_threshold_is_a_miss(void **state)
{
    (void)state;
    abis_eval_ident s;
    abis_eval_ident_init(&s, "below", 10, 20);
    assert_int_equal(abis_eval_add_mated(&s, 1, 0.5, 0.1, 0), 0);   /* rank 1, low score */
    assert_int_equal(abis_eval_add_mated(&s, 25, 0.99, 0.1, 1), 0); /* beyond the list */
    for (int i = 0; i < 400; i++)
        assert_int_equal(abis_eval_add_nonmated(&s, 0.6 + i / 10000.0, (uint32_t)(2 + i)), 0);
    abis_eval_ident_metrics m;
    abis_error err = {0};
    assert_status(abis_eval_identification(&s, 0, &m, &err), ABIS_OK, &err);
    assert_near(m.cmc[0], 0.5, EPS); /* rank 1 regardless of threshold */
    for (int k = 0; k < ABIS_EVAL_N_FPIR_TARGETS; k++) {
        assert_true(m.fnir_at_fpir[k].supported);
        assert_near(m.fnir_at_fpir[k].value, 1, EPS);
    }
    abis_eval_ident_free(&s);
}

static void test_identification_edge_cases(void **state)
{
    (void)state;
    abis_eval_ident s;
    abis_eval_ident_metrics m;
    abis_error err = {0};
    abis_eval_ident_init(&s, "empty", 0, 20);
    assert_status(abis_eval_identification(&s, 50, &m, &err), ABIS_OK, &err);
    assert_true(isnan(m.cmc[0]));
    assert_false(m.fnir_at_fpir[0].supported);
    abis_eval_ident_free(&s);

    abis_eval_ident_init(&s, "mated only", 5, 20);
    assert_int_equal(abis_eval_add_mated(&s, 2, 0.9, 0.95, 0), 0);
    assert_status(abis_eval_identification(&s, 50, &m, &err), ABIS_OK, &err);
    assert_near(m.cmc[0], 0, EPS);
    assert_near(m.cmc[1], 1, EPS);
    assert_false(m.fnir_at_fpir[0].supported);
    assert_int_equal(m.fnir_at_fpir[0].support, 0);
    abis_eval_ident_free(&s);
}

/* Two folds worked by hand: the threshold learnt on fold 2 (between its
 * impostor 0.6 and genuine 0.7) gets fold 1 right; the one learnt on fold 1
 * (between 0.2 and 0.8) lets fold 2's impostor 0.6 through, and its genuine
 * pair without templates counts as "no match". */
static void test_fold_accuracy_by_hand(void **state)
{
    (void)state;
    const double score[8] = {0.9, 0.8, 0.1, 0.2, 0.7, NAN, 0.3, 0.6};
    const int genuine[8] = {1, 1, 0, 0, 1, 1, 0, 0};
    const int fold[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    abis_eval_fold_accuracy a;
    abis_error err = {0};
    assert_status(abis_eval_fold_accuracy_compute(score, genuine, fold, 8, 2, &a, &err), ABIS_OK,
                  &err);
    assert_int_equal(a.pairs, 8);
    assert_int_equal(a.compared, 7);
    assert_float_equal(a.mean, (1.0 + 0.5) / 2, 1e-12);
    assert_float_equal(a.compared_mean, (1.0 + 2.0 / 3) / 2, 1e-12);
    assert_float_equal(a.threshold_mean, (0.65 + 0.5) / 2, 1e-12);
    assert_float_equal(a.se, 0.25, 1e-12); /* sd(1, 0.5) / sqrt(2) */
    assert_int_equal(abis_eval_fold_accuracy_compute(score, genuine, fold, 8, 1, &a, &err),
                     ABIS_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates_at_hand_case),
        cmocka_unit_test(test_eer_where_rates_meet_exactly),
        cmocka_unit_test(test_eer_interpolated_between_points),
        cmocka_unit_test(test_eer_zero_when_classes_separate),
        cmocka_unit_test(test_ties_count_as_matches),
        cmocka_unit_test(test_single_scores),
        cmocka_unit_test(test_fnmr_at_fmr_unsupported_with_few_impostors),
        cmocka_unit_test(test_fnmr_at_fmr_hand_case),
        cmocka_unit_test(test_zero_fmr_is_read_just_above_the_highest_impostor),
        cmocka_unit_test(test_fnmr_at_fmr_supported_at_exactly_one_over_target),
        cmocka_unit_test(test_no_impostors),
        cmocka_unit_test(test_no_genuine),
        cmocka_unit_test(test_empty_set),
        cmocka_unit_test(test_one_identity_gives_a_degenerate_interval),
        cmocka_unit_test(test_nonfinite_score_refused),
        cmocka_unit_test(test_d_prime_known_case),
        cmocka_unit_test(test_fte_fta_from_counters),
        cmocka_unit_test(test_bootstrap_interval_holds_estimate_and_reproduces),
        cmocka_unit_test(test_bootstrap_matches_brute_force),
        cmocka_unit_test(test_det_matches_brute_force),
        cmocka_unit_test(test_probit_accuracy),
        cmocka_unit_test(test_sort_matches_qsort),
        cmocka_unit_test(test_identification_hand_case),
        cmocka_unit_test(test_identification_mate_below_threshold_is_a_miss),
        cmocka_unit_test(test_identification_edge_cases),
        cmocka_unit_test(test_fold_accuracy_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
