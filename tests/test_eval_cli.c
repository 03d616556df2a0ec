/*
 * test_eval_cli.c: `abis eval` and `abis calibrate` run as programs on
 * synthetic labelled sets made by `abis-synth labelled`: the report and plots
 * are written with a sane EER, 1:N writes a CMC, a calibration fitted on one
 * half of the identities holds its targets on the other half, likelihood-ratio
 * fusion of face and voice beats either alone, several sets share one DET, and
 * every command has --help.
 *
 * The binaries come from $ABIS_CLI and $ABIS_SYNTH (ctest sets both); without
 * them the tests are skipped.
 */
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>


static const char *cli_path, *synth_path;
static char *tmp;

/* ---- running programs ------------------------------------------------------------ */

/* Run argv (NULL-terminated) with stdout to `out_path` (NULL: tmp/stdout) and
 * stderr to tmp/stderr; the exit code. */
static int spawn(const char *const *argv, const char *out_path)
{
    char outp[4200], errp[4200];
    snprintf(outp, sizeof outp, "%s/stdout", tmp);
    snprintf(errp, sizeof errp, "%s/stderr", tmp);
    return abis_test_spawn(argv, NULL, out_path ? out_path : outp, errp);
}

/* Run abis with the arguments (NULL-terminated); fail with its output unless
 * it exits with `want`. */
#define MAXARGS 40
static void abis(int want, ...)
{
    const char *argv[MAXARGS + 2];
    size_t n = 0;
    argv[n++] = cli_path;
    va_list ap;
    va_start(ap, want);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(n < MAXARGS);
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    int rc = spawn(argv, NULL);
    if (rc != want) {
        char p1[4200], p2[4200];
        snprintf(p1, sizeof p1, "%s/stdout", tmp);
        snprintf(p2, sizeof p2, "%s/stderr", tmp);
        char *o = abis_test_slurp(p1), *e = abis_test_slurp(p2);
        fail_msg("abis exited %d, wanted %d\nstdout: %s\nstderr: %s", rc, want, o, e);
    }
}

/* abis-synth labelled ... > tmp/NAME; returns the path (static buffer per call site). */
static void synth(const char *name, char *path, size_t cap, const char *identities,
                  const char *samples, const char *seed, const char *mod1, const char *mod2)
{
    snprintf(path, cap, "%s/%s", tmp, name);
    const char *argv[] = {synth_path,
                          "labelled",
                          "--identities",
                          identities,
                          "--samples",
                          samples,
                          "--seed",
                          seed,
                          "--modality",
                          mod1,
                          mod2 ? "--modality" : NULL,
                          mod2,
                          NULL};
    assert_int_equal(spawn(argv, path), 0);
}

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s is not JSON: %s", path, e.text);
    return j;
}

static json_t *stdout_json(void)
{
    char p[8400];
    snprintf(p, sizeof p, "%s/stdout", tmp);
    return load_json(p);
}

static int file_exists(const char *dir, const char *name)
{
    char p[8400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

static double eer_of(const json_t *report)
{
    return json_real_value(json_object_get(json_object_get(report, "eer"), "value"));
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_eval_writes_report_and_plots(void **state)
{
    (void)state;
    char set[4200], out[4200];
    synth("face.jsonl", set, sizeof set, "150", "4", "3", "face:64:1.5", NULL);
    snprintf(out, sizeof out, "%s/r-face", tmp);
    abis(0, "eval", "--set", set, "--kind", "vector", "--modality", "face", "--out", out,
         "--bootstrap", "20", NULL);
    assert_true(file_exists(out, "report.json"));
    assert_true(file_exists(out, "det.svg"));
    assert_true(file_exists(out, "hist.svg"));
    char p[8400];
    snprintf(p, sizeof p, "%s/report.json", out);
    json_t *r = load_json(p);
    double eer = eer_of(r);
    /* sigma 1.5 in 64 dimensions: genuine cosines about 0.3, impostors sd 0.125. */
    assert_true(eer > 0.02 && eer < 0.3);
    json_t *fail = json_object_get(r, "failures");
    assert_int_equal(json_integer_value(json_object_get(fail, "attempted")), 600);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "set"), "identities")),
                     150);
    json_decref(r);
    /* --json prints the same report on stdout. */
    abis(0, "eval", "--set", set, "--kind", "vector", "--out", out, "--bootstrap", "0", "--json",
         NULL);
    r = stdout_json();
    assert_true(fabs(eer_of(r) - eer) < 1e-8); /* report.json keeps 10 digits */
    json_decref(r);
}

static void test_eval_1n_writes_cmc(void **state)
{
    (void)state;
    char set[4200], out[4200];
    synth("face1n.jsonl", set, sizeof set, "100", "3", "4", "face:64:1.0", NULL);
    snprintf(out, sizeof out, "%s/r-1n", tmp);
    abis(0, "eval", "--set", set, "--kind", "vector", "--protocol", "1n", "--out", out,
         "--bootstrap", "0", NULL);
    assert_true(file_exists(out, "cmc.svg"));
    assert_true(file_exists(out, "report.json"));
    assert_true(file_exists(out, "det.svg"));
}

static void test_calibrate_round_trip_holds_targets_on_held_out_half(void **state)
{
    (void)state;
    char set[4200], data[4200];
    synth("cal.jsonl", set, sizeof set, "500", "4", "5", "face:64:1.5", NULL);
    snprintf(data, sizeof data, "%s/var", tmp);
    abis(0, "--data", data, "init", NULL);
    abis(0, "--data", data, "modality", "add", "face", "--kind", "vector", "--dim", "64", NULL);
    abis(0, "--data", data, "calibrate", "--modality", "face", "--set", set, "--gallery-size",
         "1000", "--bootstrap", "50", "--json", NULL);
    json_t *r = stdout_json();
    json_t *chk = json_object_get(r, "check");
    assert_int_equal(json_array_size(chk), 3);
    size_t supported = 0, i;
    json_t *c;
    json_array_foreach(chk, i, c)
    {
        if (!json_is_true(json_object_get(c, "supported")))
            continue;
        supported++;
        double target = json_real_value(json_object_get(c, "target_fmr"));
        double lo = json_real_value(json_object_get(c, "lo"));
        double hi = json_real_value(json_object_get(c, "hi"));
        if (!(lo <= target && target <= hi))
            fail_msg("target FMR %g outside the observed interval [%g, %g]", target, lo, hi);
    }
    assert_int_equal(supported, 3);
    assert_string_equal(json_string_value(json_object_get(r, "model")), "table");
    json_decref(r);
    /* The engine now holds it: a later eval checks it on a fresh set. */
    char fresh[4200], out[4200];
    synth("cal-fresh.jsonl", fresh, sizeof fresh, "300", "4", "99", "face:64:1.5", NULL);
    snprintf(out, sizeof out, "%s/r-check", tmp);
    abis(0, "--data", data, "eval", "--set", fresh, "--modality", "face", "--check-calibration",
         "--out", out, "--bootstrap", "20", NULL);
    char p[8400];
    snprintf(p, sizeof p, "%s/report.json", out);
    r = load_json(p);
    json_t *cc = json_object_get(r, "calibration_check");
    assert_string_equal(json_string_value(json_object_get(cc, "model")), "table");
    assert_int_equal(json_array_size(json_object_get(cc, "targets")), 3);
    json_decref(r);
}

static void test_fused_eer_beats_each_modality(void **state)
{
    (void)state;
    char set[4200], out[4200];
    synth("mm.jsonl", set, sizeof set, "200", "4", "6", "face:64:1.5", "voice:64:2.2");
    snprintf(out, sizeof out, "%s/r-fused", tmp);
    abis(0, "eval", "--set", set, "--kind", "vector", "--fuse", "face,voice", "--out", out,
         "--bootstrap", "0", NULL);
    assert_true(file_exists(out, "det.svg"));
    char p[8400];
    snprintf(p, sizeof p, "%s/report.json", out);
    json_t *r = load_json(p);
    json_t *sys = json_object_get(r, "systems");
    assert_int_equal(json_array_size(sys), 3);
    double face = eer_of(json_array_get(sys, 0)), voice = eer_of(json_array_get(sys, 1));
    double fused = eer_of(json_array_get(sys, 2));
    if (!(fused < face && fused < voice))
        fail_msg("fused EER %g, face %g, voice %g", fused, face, voice);
    json_decref(r);
}

static void test_several_sets_share_one_det(void **state)
{
    (void)state;
    char a[4200], b[4200], out[4200];
    synth("sa.jsonl", a, sizeof a, "60", "3", "7", "face:64:1.0", NULL);
    synth("sb.jsonl", b, sizeof b, "60", "3", "8", "face:64:2.0", NULL);
    snprintf(out, sizeof out, "%s/r-two", tmp);
    abis(0, "eval", "--set", a, "--name", "good", "--set", b, "--name", "noisy", "--kind", "vector",
         "--out", out, "--bootstrap", "0", NULL);
    char p[8400];
    snprintf(p, sizeof p, "%s/det.svg", out);
    char *svg = abis_test_slurp(p);
    assert_non_null(strstr(svg, "good"));
    assert_non_null(strstr(svg, "noisy"));
    free(svg);
    assert_true(file_exists(out, "hist-1.svg"));
    assert_true(file_exists(out, "hist-2.svg"));
}

static void test_captures_count_as_failures_to_acquire(void **state)
{
    (void)state;
    char dir[4200], out[4200];
    snprintf(dir, sizeof dir, "%s/caps", tmp);
    mkdir(dir, 0700);
    for (int p = 0; p < 2; p++) {
        char sub[4300], f[4400];
        snprintf(sub, sizeof sub, "%s/person%d", dir, p);
        mkdir(sub, 0700);
        for (int i = 0; i < 2; i++) {
            snprintf(f, sizeof f, "%s/%d.jpg", sub, i);
            FILE *fp = fopen(f, "w");
            assert_non_null(fp);
            fputs("not really a jpeg", fp);
            fclose(fp);
        }
    }
    snprintf(out, sizeof out, "%s/r-caps", tmp);
    abis(1, "eval", "--set", dir, "--kind", "vector", "--dim", "8", "--modality", "face", "--out",
         out, "--json", NULL);
    json_t *r = stdout_json();
    json_t *f = json_object_get(r, "failures");
    assert_int_equal(json_integer_value(json_object_get(f, "failed_to_acquire")), 4);
    assert_non_null(strstr(json_string_value(json_object_get(f, "fta_reason")),
                           "needs an extractor"));
    json_decref(r);
}

static void test_eval_and_calibrate_have_help(void **state)
{
    (void)state;
    abis(0, "eval", "--help", NULL);
    char p[8400];
    snprintf(p, sizeof p, "%s/stdout", tmp);
    char *o = abis_test_slurp(p);
    assert_non_null(strstr(o, "--protocol"));
    assert_non_null(strstr(o, "--fuse"));
    free(o);
    abis(0, "calibrate", "--help", NULL);
    o = abis_test_slurp(p);
    assert_non_null(strstr(o, "--gallery-size"));
    free(o);
    abis(2, "eval", NULL); /* missing --set */
    abis(2, "eval", "--set", "x.csv", "--protocol", "nope", NULL);
}

static int setup(void **state)
{
    (void)state;
    tmp = abis_test_tmpdir("evalcli");
    return tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    abis_test_rmdir(tmp);
    return 0;
}

int main(void)
{
    cli_path = getenv("ABIS_CLI");
    synth_path = getenv("ABIS_SYNTH");
    if (!cli_path || !*cli_path || !synth_path || !*synth_path) {
        printf("test_eval_cli: ABIS_CLI / ABIS_SYNTH not set (ctest sets them); skipping\n");
        return 0;
    }
    setenv("ABIS_MASTER_KEY", "", 1);
    unsetenv("ABIS_MASTER_KEY");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_writes_report_and_plots),
        cmocka_unit_test(test_eval_1n_writes_cmc),
        cmocka_unit_test(test_calibrate_round_trip_holds_targets_on_held_out_half),
        cmocka_unit_test(test_fused_eer_beats_each_modality),
        cmocka_unit_test(test_several_sets_share_one_det),
        cmocka_unit_test(test_captures_count_as_failures_to_acquire),
        cmocka_unit_test(test_eval_and_calibrate_have_help),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
