/* test_match.c: the dot-product kernels and their dispatch, and score
 * calibration (src/match/match.h). */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "match/match.h"

/* ---- kernels --------------------------------------------------------------- */

static int cpu_has_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* Run `fn` in a child process, so that it sees a fresh, undecided dispatch;
 * returns the child's exit status. */
static int in_child(int (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int child_env_forces_scalar(void)
{
    setenv("ABIS_KERNEL", "scalar", 1);
    int ok = strcmp(abis_dot_best_name(), "scalar") == 0 && abis_dot_best() == abis_dot_scalar;
    return ok ? 0 : 1;
}

static void test_dispatch_env_forces_scalar(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_env_forces_scalar), 0);
}

static void *race_best(void *arg)
{
    *(abis_dot_fn *)arg = abis_dot_best();
    return NULL;
}

static int child_dispatch_race(void)
{
    pthread_t t[8];
    abis_dot_fn got[8];
    for (int i = 0; i < 8; i++)
        if (pthread_create(&t[i], NULL, race_best, &got[i]) != 0)
            return 2;
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 1; i < 8; i++)
        if (got[i] != got[0])
            return 1;
    return got[0] == abis_dot_best() ? 0 : 1;
}

static void test_dispatch_is_thread_safe(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_dispatch_race), 0);
}

static void test_dispatch_picks_avx2_when_cpu_has_it(void **state)
{
    (void)state;
    const char *env = getenv("ABIS_KERNEL");
    int forced = env && strcmp(env, "scalar") == 0;
    if (cpu_has_avx2() && abis_dot_avx2_fn() && !forced) {
        assert_string_equal(abis_dot_best_name(), "avx2");
        assert_ptr_equal(abis_dot_best(), abis_dot_avx2_fn());
    } else {
        assert_string_equal(abis_dot_best_name(), "scalar");
        assert_ptr_equal(abis_dot_best(), abis_dot_scalar);
    }
}

static void test_force_scalar_switches_and_restores(void **state)
{
    (void)state;
    const char *before = abis_dot_best_name();
    abis_dot_fn fn = abis_dot_best();
    abis_dot_force_scalar(1);
    assert_string_equal(abis_dot_best_name(), "scalar");
    assert_ptr_equal(abis_dot_best(), abis_dot_scalar);
    abis_dot_force_scalar(0);
    assert_string_equal(abis_dot_best_name(), before);
    assert_ptr_equal(abis_dot_best(), fn);
}

static void test_scalar_dot_known_values(void **state)
{
    (void)state;
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {5, 4, 3, 2, 1};
    assert_float_equal(abis_dot_scalar(a, b, 5), 35.0f, 0);
    assert_float_equal(abis_dot_scalar(a, b, 0), 0.0f, 0);
    assert_float_equal(abis_dot_scalar(a, b, 1), 5.0f, 0);
}

/* Compare the AVX2 kernel with the scalar reference on random vectors of
 * length n scaled by `scale` (each), at pointer offset `off` floats. */
static void compare_kernels(abis_dot_fn avx2, size_t n, double scale, size_t off,
                            abis_synth_rng *rng)
{
    float *a = malloc((n + off + 1) * sizeof *a), *b = malloc((n + off + 1) * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    double mag = 0;
    for (size_t i = 0; i < n; i++) {
        a[off + i] = (float)(scale * abis_synth_normal(rng));
        b[off + i] = (float)(scale * abis_synth_normal(rng));
        mag += fabs((double)a[off + i] * b[off + i]);
    }
    float want = abis_dot_scalar(a + off, b + off, n);
    float got = avx2(a + off, b + off, n);
    /* Float32 accumulation error grows with the sum of |a_i b_i|, not with
     * the (possibly cancelling) result; the absolute term covers subnormal
     * products, whose rounding step is fixed. */
    double tol = 1e-5 * mag + (double)n * 1.5e-45;
    if (!(fabs((double)got - want) <= tol))
        fail_msg("n=%zu scale=%g off=%zu: avx2 %.9g scalar %.9g (tol %g)", n, scale, off, got, want,
                 tol);
    free(a);
    free(b);
}

static void test_avx2_agrees_with_scalar(void **state)
{
    (void)state;
    abis_dot_fn avx2 = abis_dot_avx2_fn();
    if (!avx2 || !cpu_has_avx2())
        skip();
    static const size_t lengths[] = {0,   1,   2,   3,   7,    8,    9,    15,   16,  17,  31,
                                     32,  33,  63,  64,  65,   100,  127,  128,  129, 255, 256,
                                     257, 511, 512, 513, 1000, 1024, 4095, 4096, 4097};
    static const double scales[] = {1.0, 1e-3, 1e15, 1e-20};
    abis_synth_rng rng = {12345};
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++)
        for (size_t s = 0; s < sizeof scales / sizeof *scales; s++)
            for (size_t off = 0; off < 3; off++)
                compare_kernels(avx2, lengths[l], scales[s], off, &rng);
    for (size_t n = 0; n <= 80; n++)
        compare_kernels(avx2, n, 1.0, 0, &rng);
}

static void test_avx2_unit_vectors_give_cosine(void **state)
{
    (void)state;
    abis_dot_fn avx2 = abis_dot_avx2_fn();
    if (!avx2 || !cpu_has_avx2())
        skip();
    float a[512], b[512];
    abis_synth_identity(3, 1, a, 512);
    assert_float_equal(avx2(a, a, 512), 1.0f, 1e-5);
    for (int i = 0; i < 512; i++)
        b[i] = -a[i];
    assert_float_equal(avx2(a, b, 512), -1.0f, 1e-5);
    /* extreme but representable: the largest float against a small one */
    float big[9], small[9];
    for (int i = 0; i < 9; i++) {
        big[i] = 3.0e38f;
        small[i] = i % 2 ? 1e-38f : -1e-38f;
    }
    assert_float_equal(avx2(big, small, 9), abis_dot_scalar(big, small, 9), 1e-5);
}

/* ---- calibration: random directions ------------------------------------------------ */

static abis_calibration *parse_ok(const char *json)
{
    abis_calibration *c = NULL;
    abis_error err = {0};
    assert_status(abis_calibration_parse(json, &c, &err), ABIS_OK, &err);
    assert_non_null(c);
    return c;
}

static void test_default_vector_calibration_text(void **state)
{
    (void)state;
    char buf[128];
    abis_calibration_default_vector(512, buf, sizeof buf);
    assert_string_equal(buf, "{\"model\":\"random-directions\",\"dim\":512}");
    abis_calibration *c = parse_ok(buf);
    assert_string_equal(abis_calibration_model(c), "random-directions");
    abis_calibration_free(c);
    char tiny[8];
    abis_calibration_default_vector(512, tiny, sizeof tiny); /* truncates, terminated */
    assert_int_equal(strlen(tiny), 7);
}

static void test_random_directions_fmr_formula(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok("{\"model\": \"random-directions\", \"dim\": 512}");
    assert_float_equal(abis_calibration_fmr(c, 0.0), 0.5, 1e-15);
    for (double s = -1; s <= 1; s += 0.01)
        assert_float_equal(abis_calibration_fmr(c, s), 0.5 * erfc(s * 16.0), 1e-15);
    abis_calibration_free(c);
}

static void test_random_directions_fmr_is_monotone(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok("{\"model\": \"random-directions\", \"dim\": 128}");
    double prev = 1.0;
    for (int i = -2000; i <= 2000; i++) {
        double f = abis_calibration_fmr(c, i / 1000.0);
        assert_true(f >= 0 && f <= 1);
        assert_true(f <= prev);
        prev = f;
    }
    abis_calibration_free(c);
}

static void test_random_directions_threshold_inverts_fmr(void **state)
{
    (void)state;
    static const int dims[] = {16, 128, 512, 4096};
    for (size_t d = 0; d < 4; d++) {
        char buf[128];
        abis_calibration_default_vector(dims[d], buf, sizeof buf);
        abis_calibration *c = parse_ok(buf);
        for (int e = 1; e <= 15; e++) {
            double target = pow(10.0, -e);
            double t = abis_calibration_threshold(c, target);
            if (t >= 2.0)
                continue; /* unreachable for small dims: checked below */
            double f = abis_calibration_fmr(c, t);
            assert_true(f <= target);
            /* the smallest such score: a hair below it the FMR is above target */
            assert_true(abis_calibration_fmr(c, t - 1e-12) > target ||
                        fabs(abis_calibration_fmr(c, t - 1e-12) - target) < 1e-9 * target);
            assert_float_equal(f / target, 1.0, 1e-6);
        }
        abis_calibration_free(c);
    }
}

static void test_random_directions_threshold_edges(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok("{\"model\": \"random-directions\", \"dim\": 2}");
    /* dim 2: FMR(1) = 0.5 erfc(1) ~ 0.079, so 1e-6 needs a score above any cosine */
    assert_true(abis_calibration_threshold(c, 1e-6) > 1.0);
    assert_float_equal(abis_calibration_threshold(c, 1.0), -1.0, 0);
    assert_float_equal(abis_calibration_threshold(c, 0.5), 0.0, 1e-12);
    assert_float_equal(abis_calibration_threshold(c, -1.0), 2.0, 0);
    abis_calibration_free(c);
    c = parse_ok("{\"model\": \"random-directions\", \"dim\": 512}");
    double t0 = abis_calibration_threshold(c, 0.0); /* where erfc underflows to 0 */
    assert_true(t0 > 1.0 && t0 <= 2.0);
    assert_float_equal(abis_calibration_fmr(c, t0), 0.0, 0);
    abis_calibration_free(c);
}

/* The model against the empirical impostor tail of synthgen identities: all
 * pairs of 1000 random unit vectors in 512 dimensions (499500 cosines). */
static void test_random_directions_matches_random_unit_vectors(void **state)
{
    (void)state;
    enum { N = 1000, D = 512 };
    float *v = malloc((size_t)N * D * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < N; i++)
        abis_synth_identity(99, (uint64_t)i, v + (size_t)i * D, D);
    abis_calibration *c = parse_ok("{\"model\":\"random-directions\",\"dim\":512}");
    static const double targets[] = {1e-1, 1e-2, 1e-3, 1e-4};
    double thr[4];
    size_t above[4] = {0};
    for (int t = 0; t < 4; t++)
        thr[t] = abis_calibration_threshold(c, targets[t]);
    abis_dot_fn dot = abis_dot_best();
    size_t pairs = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            float s = dot(v + (size_t)i * D, v + (size_t)j * D, D);
            pairs++;
            for (int t = 0; t < 4; t++)
                above[t] += s >= thr[t];
        }
    for (int t = 0; t < 4; t++) {
        double emp = (double)above[t] / (double)pairs;
        /* binomial noise (4 sd, generous for the dependent pairs) plus 10 %
         * for the normal approximation of the cosine distribution */
        double tol = 4 * sqrt(targets[t] / (double)pairs) * 2 + 0.1 * targets[t];
        print_message("calibration check: target FMR %g, threshold %.4f, observed %g over %zu "
                      "impostor pairs\n",
                      targets[t], thr[t], emp, pairs);
        if (fabs(emp - targets[t]) > tol)
            fail_msg("FMR %g: threshold %.4f, empirical %g (tolerance %g)", targets[t], thr[t], emp,
                     tol);
    }
    abis_calibration_free(c);
    free(v);
}

/* ---- calibration: table ------------------------------------------------------------ */

static const char *table_json =
    "{\"model\": \"table\", \"points\": [[0.1, 0.1], [0.2, 1e-2], [0.4, 1e-4], [0.5, 1e-4], "
    "[0.6, 1e-6]]}";

static void test_table_fmr_at_points_and_between(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok(table_json);
    assert_string_equal(abis_calibration_model(c), "table");
    assert_float_equal(abis_calibration_fmr(c, 0.1), 0.1, 1e-15);
    assert_float_equal(abis_calibration_fmr(c, 0.2), 1e-2, 1e-15);
    assert_float_equal(abis_calibration_fmr(c, 0.4), 1e-4, 1e-15);
    assert_float_equal(abis_calibration_fmr(c, 0.6), 1e-6, 1e-15);
    /* linear in log10: half way from 1e-2 to 1e-4 is 1e-3 */
    assert_float_equal(abis_calibration_fmr(c, 0.3), 1e-3, 1e-12);
    assert_float_equal(abis_calibration_fmr(c, 0.25), pow(10, -2.5), 1e-12);
    /* a plateau stays flat */
    assert_float_equal(abis_calibration_fmr(c, 0.45), 1e-4, 1e-15);
    abis_calibration_free(c);
}

static void test_table_fmr_clamps_outside(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok(table_json);
    assert_float_equal(abis_calibration_fmr(c, -5.0), 0.1, 0);
    assert_float_equal(abis_calibration_fmr(c, 0.0), 0.1, 0);
    assert_float_equal(abis_calibration_fmr(c, 0.9), 1e-6, 0);
    assert_float_equal(abis_calibration_fmr(c, 1e9), 1e-6, 0);
    abis_calibration_free(c);
}

static void test_table_fmr_is_monotone(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok(table_json);
    double prev = 1.0;
    for (int i = 0; i <= 10000; i++) {
        double f = abis_calibration_fmr(c, i / 10000.0);
        assert_true(f >= 0 && f <= 1);
        assert_true(f <= prev);
        prev = f;
    }
    abis_calibration_free(c);
}

static void test_table_threshold_inverts_fmr(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok(table_json);
    assert_float_equal(abis_calibration_threshold(c, 1e-3), 0.3, 1e-12);
    assert_float_equal(abis_calibration_threshold(c, 1e-2), 0.2, 1e-12);
    /* on a plateau the smallest score wins */
    assert_float_equal(abis_calibration_threshold(c, 1e-4), 0.4, 1e-12);
    for (int i = 0; i < 500; i++) {
        double target = pow(10.0, -1.0 - 5.0 * i / 499.0);
        double t = abis_calibration_threshold(c, target);
        assert_true(abis_calibration_fmr(c, t) <= target);
        if (t > 0.1)
            assert_true(abis_calibration_fmr(c, t - 1e-9) > target * (1 - 1e-6));
        assert_float_equal(abis_calibration_fmr(c, t) / target, 1.0, 1e-6);
    }
    abis_calibration_free(c);
}

static void test_table_threshold_outside_the_table(void **state)
{
    (void)state;
    abis_calibration *c = parse_ok(table_json);
    /* every score reaches it: the first score */
    assert_float_equal(abis_calibration_threshold(c, 0.5), 0.1, 0);
    assert_float_equal(abis_calibration_threshold(c, 0.1), 0.1, 0);
    /* no score reaches it: above the whole table, and its FMR says so */
    double t = abis_calibration_threshold(c, 1e-9);
    assert_true(t > 0.6);
    assert_float_equal(t, 0.6 + 1.0 + 0.5, 1e-12);
    assert_true(abis_calibration_fmr(c, t) > 1e-9);
    abis_calibration_free(c);
}

static void test_table_with_zero_fmr_interpolates_linearly(void **state)
{
    (void)state;
    abis_calibration *c =
        parse_ok("{\"model\":\"table\",\"points\":[[0, 1], [0.5, 1e-3], [0.7, 0]]}");
    assert_float_equal(abis_calibration_fmr(c, 0.6), 0.5e-3, 1e-15);
    assert_float_equal(abis_calibration_fmr(c, 0.7), 0.0, 0);
    assert_float_equal(abis_calibration_threshold(c, 0.0), 0.7, 1e-12);
    double t = abis_calibration_threshold(c, 2.5e-4);
    assert_float_equal(t, 0.65, 1e-12);
    assert_true(abis_calibration_fmr(c, t) <= 2.5e-4);
    /* integer scores are numbers too */
    abis_calibration_free(c);
    c = parse_ok("{\"model\":\"table\",\"points\":[[10, 1], [20, 0]], \"fitted_on\": \"x\"}");
    assert_float_equal(abis_calibration_fmr(c, 15), 0.5, 1e-15);
    abis_calibration_free(c);
}

static void expect_bad(const char *json, const char *want)
{
    abis_calibration *c = (abis_calibration *)1;
    abis_error err = {0};
    abis_status st = abis_calibration_parse(json, &c, &err);
    if (st != ABIS_E_INVALID)
        fail_msg("%s: status %s (%s), wanted invalid", json, abis_status_name(st), err.message);
    if (strcmp(err.message, want) != 0)
        fail_msg("%s: message \"%s\", wanted \"%s\"", json, err.message, want);
    assert_null(c);
}

static void test_bad_calibrations_are_refused(void **state)
{
    (void)state;
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.1],[0.2,0.01],[0.4,0.001],[0.2,0.0001]]}",
               "calibration: points[3] score 0.2 is not above points[2] score 0.4");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.1],[0.1,0.01]]}",
               "calibration: points[1] score 0.1 is not above points[0] score 0.1");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.01],[0.2,0.02]]}",
               "calibration: points[1] fmr 0.02 is above points[0] fmr 0.01 (FMR must not "
               "increase with score)");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,1.5],[0.2,0.02]]}",
               "calibration: points[0] fmr 1.5 is not between 0 and 1");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.5],[0.2,-0.1]]}",
               "calibration: points[1] fmr -0.1 is not between 0 and 1");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.5]]}",
               "calibration: \"points\" has 1 point, at least 2 are needed");
    expect_bad("{\"model\":\"table\",\"points\":[]}",
               "calibration: \"points\" has 0 points, at least 2 are needed");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.5],[0.2]]}",
               "calibration: points[1] is not a [score, fmr] pair");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.5],[\"x\",0.1]]}",
               "calibration: points[1] score is not a number");
    expect_bad("{\"model\":\"table\",\"points\":[[0.1,0.5],[0.2,null]]}",
               "calibration: points[1] fmr is not a number");
    expect_bad("{\"model\":\"table\",\"points\":{}}",
               "calibration: \"points\" must be an array of [score, fmr] pairs");
    expect_bad("{\"model\":\"table\"}", "calibration: table needs \"points\"");
    expect_bad("{\"model\":\"random-directions\"}", "calibration: random-directions needs \"dim\"");
    expect_bad("{\"model\":\"random-directions\",\"dim\":0}",
               "calibration: \"dim\" must be an integer from 1 to 65536");
    expect_bad("{\"model\":\"random-directions\",\"dim\":512.5}",
               "calibration: \"dim\" must be an integer from 1 to 65536");
    expect_bad("{\"model\":\"random-directions\",\"dim\":1000000}",
               "calibration: \"dim\" must be an integer from 1 to 65536");
    expect_bad("{\"model\":\"gaussian\"}",
               "calibration: unknown model 'gaussian' (use \"random-directions\" or \"table\")");
    expect_bad("{\"model\":3}", "calibration: \"model\" must be a string");
    expect_bad("{\"dim\":3}", "calibration: missing \"model\"");
    expect_bad("[1,2]", "calibration: expected a JSON object");
    abis_calibration *c = NULL;
    abis_error err = {0};
    assert_int_equal(abis_calibration_parse("{\"model\":", &c, &err), ABIS_E_INVALID);
    assert_true(strncmp(err.message, "calibration: not valid JSON: ", 29) == 0);
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: the dispatch must still be undecided when these fork */
        cmocka_unit_test(test_dispatch_env_forces_scalar),
        cmocka_unit_test(test_dispatch_is_thread_safe),
        cmocka_unit_test(test_dispatch_picks_avx2_when_cpu_has_it),
        cmocka_unit_test(test_force_scalar_switches_and_restores),
        cmocka_unit_test(test_scalar_dot_known_values),
        cmocka_unit_test(test_avx2_agrees_with_scalar),
        cmocka_unit_test(test_avx2_unit_vectors_give_cosine),
        cmocka_unit_test(test_default_vector_calibration_text),
        cmocka_unit_test(test_random_directions_fmr_formula),
        cmocka_unit_test(test_random_directions_fmr_is_monotone),
        cmocka_unit_test(test_random_directions_threshold_inverts_fmr),
        cmocka_unit_test(test_random_directions_threshold_edges),
        cmocka_unit_test(test_random_directions_matches_random_unit_vectors),
        cmocka_unit_test(test_table_fmr_at_points_and_between),
        cmocka_unit_test(test_table_fmr_clamps_outside),
        cmocka_unit_test(test_table_fmr_is_monotone),
        cmocka_unit_test(test_table_threshold_inverts_fmr),
        cmocka_unit_test(test_table_threshold_outside_the_table),
        cmocka_unit_test(test_table_with_zero_fmr_interpolates_linearly),
        cmocka_unit_test(test_bad_calibrations_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
