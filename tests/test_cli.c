/*
 * test_cli.c: the `abis` operator command, run as a program: exit codes,
 * human and JSON output, every vector file format, import with bad lines,
 * help for every command.
 *
 * The binary's path comes from $ABIS_CLI (ctest sets it); without it the
 * tests are skipped.  One data directory is set up for the whole group
 * (segment "federal", a consent purpose, a statutory purpose, modality
 * "face" of DIM values); each test enrols its own synthetic people, so the
 * tests do not depend on one another's order.
 */
#include "testutil.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>


#define DIM 128
#define SEED 20240501u

static const char *cli_path;
static char *tmp;       /* the group's temporary directory */
static char data[4096]; /* tmp/var: the data directory */
static uint64_t next_person = 1000;

/* ---- running the CLI ---------------------------------------------------------- */

typedef abis_test_run run_result;

static void run_free(run_result *r)
{
    abis_test_run_free(r);
}

/* Run `abis --data DATA ARGS...` (argv NULL-terminated) with stdin from `in`
 * (NULL: /dev/null); capture stdout, stderr and the exit code. */
static int run_argv(run_result *r, const char *in, const char *const *args)
{
    return abis_test_cli(r, cli_path, data, tmp, in, args);
}

/* run(&r, "segment", "add", "x", NULL) */
static int run(run_result *r, ...)
{
    va_list ap;
    va_start(ap, r);
    int status = abis_test_cli_v(r, cli_path, data, tmp, ap);
    va_end(ap);
    return status;
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("not one JSON object (%s): %s", e.text, text);
    return j;
}

/* ---- vector files ------------------------------------------------------------- */

static void sample(uint64_t person, uint64_t n, float *v, size_t dim)
{
    abis_synth_sample(SEED, person, n, ABIS_SYNTH_SIGMA, v, dim);
}

/* A NumPy .npy v1.0 file of dim float32 values. */
static void write_npy(const char *path, const float *v, size_t dim)
{
    char header[128];
    int hl = snprintf(header, sizeof header,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }", dim);
    /* magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes and '\n'. */
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned short len = (unsigned short)(hl + pad + 1);
    fputc(len & 0xff, f);
    fputc(len >> 8, f);
    fwrite(header, 1, (size_t)hl, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(v, sizeof *v, dim, f); /* the test hosts are little-endian */
    assert_int_equal(fclose(f), 0);
}

static void write_json_vec(const char *path, const float *v, size_t dim)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputc('[', f);
    for (size_t i = 0; i < dim; i++)
        fprintf(f, "%s%.9g", i ? ", " : "", (double)v[i]);
    fputs("]\n", f);
    assert_int_equal(fclose(f), 0);
}

static void write_raw(const char *path, const float *v, size_t dim)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(v, sizeof *v, dim, f);
    assert_int_equal(fclose(f), 0);
}

/* Write sample n of `person` as tmp/NAME (.npy) and return "face=PATH" in spec. */
static void face_file(char *spec, size_t cap, const char *name, uint64_t person, uint64_t n)
{
    float v[DIM];
    sample(person, n, v, DIM);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    write_npy(path, v, DIM);
    snprintf(spec, cap, "face=%s", path);
}

/* Enrol a new synthetic person (sample 0) with `consent` (NULL: none) and
 * reference `ref` (NULL: none); returns the person number, *id the subject id. */
static uint64_t enroll_person(const char *consent, const char *ref, char id[33])
{
    uint64_t person = next_person++;
    char spec[4300];
    face_file(spec, sizeof spec, "enrol.npy", person, 0);
    const char *args[16] = {"--json", "enroll", "--segment", "federal", "--template", spec};
    size_t n = 6;
    if (consent) {
        args[n++] = "--consent";
        args[n++] = consent;
    }
    if (ref) {
        args[n++] = "--ref";
        args[n++] = ref;
    }
    args[n] = NULL;
    run_result r;
    run_argv(&r, NULL, args);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    const char *s = json_string_value(json_object_get(j, "subject_id"));
    assert_non_null(s);
    assert_int_equal(strlen(s), 32);
    memcpy(id, s, 33);
    json_decref(j);
    run_free(&r);
    return person;
}

/* ---- group setup ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    tmp = abis_test_tmpdir("cli");
    if (!tmp)
        return -1;
    snprintf(data, sizeof data, "%s/var", tmp);
    run_result r;
    /* An environment key would make init skip the key file; this test wants the file. */
    unsetenv("ABIS_MASTER_KEY");
    if (run(&r, "init", NULL) != 0) {
        fprintf(stderr, "abis init failed: %s%s\n", r.out, r.err);
        return -1;
    }
    run_free(&r);
    const char *cmds[][16] = {
        {"segment", "add", "federal", NULL},
        {"segment", "add", "other", NULL},
        {"purpose", "add", "bank.remote-id", "--basis", "consent", "--fmr", "1e-4", NULL},
        {"purpose", "add", "border.check", "--basis", "statutory", "--fmr", "1e-4", "--legal-ref",
         "Border Act s.4", NULL},
        {"modality", "add", "face", "--kind", "vector", "--dim", "128", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (run_argv(&r, NULL, cmds[i]) != 0) {
            fprintf(stderr, "setup '%s %s' failed: %s%s\n", cmds[i][0], cmds[i][1], r.out, r.err);
            run_free(&r);
            return -1;
        }
        run_free(&r);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    abis_test_rmdir(tmp);
    tmp = NULL;
    return 0;
}

/* ---- help and usage ------------------------------------------------------------------ */

static const char *const command_names[] = {
    "init",         "segment add",   "segment list",     "purpose add",
    "purpose list", "modality add",  "modality list",    "modality calibrate",
    "dedup set",    "enroll",        "template add",     "verify",
    "identify",     "consent grant", "consent withdraw", "lock",
    "unlock",       "delete",        "subject show",     "subject find",
    "audit verify", "audit export",  "audit pubkey",     "import",
    "client add",   "client list",   "client rotate",    "client revoke",
    NULL,
};

static void test_help_lists_every_command(void **state)
{
    (void)state;
    run_result r;
    run(&r, "--help", NULL);
    assert_exit(&r, 0);
    for (size_t i = 0; command_names[i]; i++)
        if (!strstr(r.out, command_names[i]))
            fail_msg("'abis --help' does not list '%s'", command_names[i]);
    run_free(&r);
}

static void test_every_command_has_help(void **state)
{
    (void)state;
    for (size_t i = 0; command_names[i]; i++) {
        char words[64], *second;
        snprintf(words, sizeof words, "%s", command_names[i]);
        second = strchr(words, ' ');
        if (second)
            *second++ = '\0';
        run_result r;
        if (second)
            run(&r, words, second, "--help", NULL);
        else
            run(&r, words, "--help", NULL);
        assert_exit(&r, 0);
        char want[80];
        snprintf(want, sizeof want, "usage: abis %s", command_names[i]);
        if (!strstr(r.out, want))
            fail_msg("'abis %s --help' printed no usage line: %s", command_names[i], r.out);
        run_free(&r);
    }
}

static void test_unknown_command_exits_2(void **state)
{
    (void)state;
    run_result r;
    run(&r, "frobnicate", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "abis: unknown command 'frobnicate'"));
    assert_non_null(strstr(r.err, "usage:"));
    run_free(&r);
}

static void test_unknown_option_and_missing_argument_exit_2(void **state)
{
    (void)state;
    run_result r;
    run(&r, "segment", "list", "--bogus", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "unknown option '--bogus'"));
    assert_non_null(strstr(r.err, "usage: abis segment list"));
    run_free(&r);

    run(&r, "segment", "add", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "usage: abis segment add NAME"));
    run_free(&r);

    run(&r, "verify", "federal/nobody", "--template", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "needs a value"));
    run_free(&r);
}

/* ---- init and registry ------------------------------------------------------------------ */

static void test_init_reports_key_and_refuses_existing_store(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/second", tmp);
    run_result r;
    run(&r, "init", dir, NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "master.key"));
    assert_non_null(strstr(r.err, "back up"));
    run_free(&r);

    run(&r, "init", dir, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "abis: "));
    run_free(&r);
}

static void test_registry_lists(void **state)
{
    (void)state;
    run_result r;
    run(&r, "segment", "list", "--json", NULL);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    json_t *segs = json_object_get(j, "segments");
    assert_true(json_array_size(segs) >= 2);
    int found = 0;
    for (size_t i = 0; i < json_array_size(segs); i++)
        found |= strcmp(json_string_value(json_object_get(json_array_get(segs, i), "name")),
                        "federal") == 0;
    assert_true(found);
    json_decref(j);
    run_free(&r);

    run(&r, "--json", "purpose", "list", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "\"border.check\""));
    assert_non_null(strstr(r.out, "\"statutory\""));
    run_free(&r);

    run(&r, "modality", "list", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "face"));
    assert_non_null(strstr(r.out, "128"));
    run_free(&r);

    run(&r, "purpose", "add", "bad", "--basis", "sometimes", "--fmr", "1e-3", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "--basis"));
    run_free(&r);

    run(&r, "segment", "add", "federal", NULL);
    assert_exit(&r, 2);
    run_free(&r);
}

static void test_modality_calibrate_validates_and_replaces(void **state)
{
    (void)state;
    run_result r;
    run(&r, "modality", "add", "voice", "--kind", "vector", "--dim", "16", NULL);
    assert_exit(&r, 0);
    run_free(&r);

    char path[4200];
    snprintf(path, sizeof path, "%s/cal.json", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"model\": \"table\", \"points\": [[0.1, 0.5], [0.5, 1e-5], [0.9, 1e-12]]}\n", f);
    assert_int_equal(fclose(f), 0);
    run(&r, "modality", "calibrate", "voice", "--file", path, NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "--json", "modality", "list", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "\"calibration\":\"table\""));
    run_free(&r);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"model\": \"table\", \"points\": [[0.1, 0.5]]}\n", f);
    assert_int_equal(fclose(f), 0);
    run(&r, "modality", "calibrate", "voice", "--file", path, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "abis: calibration"));
    run_free(&r);

    run(&r, "modality", "calibrate", "voice", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "--file"));
    run_free(&r);
}

/* ---- enrolment -------------------------------------------------------------------------- */

static void test_enroll_reads_npy_json_and_raw(void **state)
{
    (void)state;
    const char *names[] = {"p.npy", "p.json", "p.raw"};
    for (int fmt = 0; fmt < 3; fmt++) {
        float v[DIM];
        uint64_t person = next_person++;
        sample(person, 0, v, DIM);
        char path[4200], spec[4300];
        snprintf(path, sizeof path, "%s/%s", tmp, names[fmt]);
        if (fmt == 0)
            write_npy(path, v, DIM);
        else if (fmt == 1)
            write_json_vec(path, v, DIM);
        else
            write_raw(path, v, DIM);
        snprintf(spec, sizeof spec, "face=%s", path);
        run_result r;
        run(&r, "enroll", "--segment", "federal", "--template", spec, "--json", NULL);
        assert_exit(&r, 0);
        json_t *j = parse_json(r.out);
        const char *id = json_string_value(json_object_get(j, "subject_id"));
        assert_non_null(id);
        assert_int_equal(strlen(id), 32);
        json_decref(j);
        run_free(&r);
    }
}

static void test_enroll_human_output_is_the_id(void **state)
{
    (void)state;
    char spec[4300];
    face_file(spec, sizeof spec, "h.npy", next_person++, 0);
    run_result r;
    run(&r, "enroll", "--segment", "federal", "--template", spec, NULL);
    assert_exit(&r, 0);
    assert_int_equal(strlen(r.out), 33); /* 32 hex digits and a newline */
    run_free(&r);
}

static void test_enroll_duplicate_refused_with_existing_id(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person(NULL, NULL, id);
    face_file(spec, sizeof spec, "again.npy", person, 1);
    run_result r;
    run(&r, "--json", "enroll", "--segment", "federal", "--template", spec, NULL);
    assert_exit(&r, 2);
    json_t *j = parse_json(r.out);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "duplicate");
    assert_string_equal(json_string_value(json_object_get(e, "duplicate_of")), id);
    json_decref(j);
    assert_non_null(strstr(r.err, id));
    run_free(&r);
}

static void test_wrong_vector_size_is_explained(void **state)
{
    (void)state;
    float v[DIM];
    sample(next_person++, 0, v, DIM);
    char path[4200], spec[4300];
    snprintf(path, sizeof path, "%s/short.npy", tmp);
    write_npy(path, v, DIM - 1);
    snprintf(spec, sizeof spec, "face=%s", path);
    run_result r;
    run(&r, "enroll", "--segment", "federal", "--template", spec, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "abis: "));
    assert_non_null(strstr(r.err, "127"));
    assert_non_null(strstr(r.err, "128"));
    run_free(&r);
}

static void test_bad_template_arguments(void **state)
{
    (void)state;
    char spec[4300];
    face_file(spec, sizeof spec, "pos.npy", next_person++, 0);
    char bad[4400];
    snprintf(bad, sizeof bad, "%s@11", spec);
    run_result r;
    run(&r, "enroll", "--segment", "federal", "--template", bad, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "position '11'"));
    run_free(&r);

    run(&r, "enroll", "--segment", "federal", "--template", "face-without-file", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "MODALITY=FILE"));
    run_free(&r);

    run(&r, "enroll", "--segment", "federal", "--template", "face=/nonexistent/x.npy", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "/nonexistent/x.npy"));
    run_free(&r);
}

/* ---- verify and identify ----------------------------------------------------------------- */

static void test_verify_exit_codes_match_no_match(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person("bank.remote-id", NULL, id);
    face_file(spec, sizeof spec, "probe.npy", person, 1);
    run_result r;
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "match (confidence "));
    assert_null(strstr(r.out, "score"));
    run_free(&r);

    face_file(spec, sizeof spec, "impostor.npy", next_person++, 0);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.out, "no match"));
    run_free(&r);
}

static void test_verify_scores_only_on_request(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person("bank.remote-id", NULL, id);
    face_file(spec, sizeof spec, "probe.npy", person, 1);
    run_result r;
    run(&r, "--json", "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "match");
    assert_non_null(json_object_get(j, "confidence"));
    assert_null(json_object_get(j, "score"));
    assert_null(json_object_get(j, "threshold"));
    json_decref(j);
    run_free(&r);

    run(&r, "--json", "verify", id, "--purpose", "bank.remote-id", "--template", spec, "--scores",
        NULL);
    assert_exit(&r, 0);
    j = parse_json(r.out);
    assert_true(json_is_number(json_object_get(j, "score")));
    assert_true(json_is_number(json_object_get(j, "fmr")));
    assert_true(json_is_number(json_object_get(j, "threshold")));
    json_decref(j);
    run_free(&r);
}

static void test_verify_refused_without_consent(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person(NULL, NULL, id);
    face_file(spec, sizeof spec, "probe.npy", person, 1);
    run_result r;
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "abis: "));
    run_free(&r);

    /* A statutory purpose needs no consent. */
    run(&r, "verify", id, "--purpose", "border.check", "--template", spec, NULL);
    assert_exit(&r, 0);
    run_free(&r);
}

static void test_verify_by_segment_ref(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person("bank.remote-id", "C-1001", id);
    face_file(spec, sizeof spec, "probe.npy", person, 2);
    run_result r;
    run(&r, "verify", "federal/C-1001", "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 0);
    run_free(&r);

    run(&r, "subject", "find", "--segment", "federal", "--ref", "C-1001", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, id));
    run_free(&r);

    run(&r, "verify", "federal/NO-SUCH-REF", "--purpose", "bank.remote-id", "--template", spec,
        NULL);
    assert_exit(&r, 2);
    run_free(&r);

    run(&r, "verify", "not-an-id", "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "SEGMENT/REF"));
    run_free(&r);
}

static void test_identify_lists_the_person(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person(NULL, "ID-77", id);
    face_file(spec, sizeof spec, "probe.npy", person, 1);
    run_result r;
    run(&r, "--json", "identify", "--segment", "federal", "--purpose", "border.check", "--template",
        spec, "-k", "3", NULL);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    json_t *c = json_object_get(j, "candidates");
    assert_true(json_array_size(c) >= 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "subject_id")), id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "external_ref")),
                        "ID-77");
    assert_null(json_object_get(json_array_get(c, 0), "score"));
    json_decref(j);
    run_free(&r);

    run(&r, "identify", "--segment", "federal", "--purpose", "border.check", "--template", spec,
        "--scores", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, id));
    assert_non_null(strstr(r.out, "ID-77"));
    run_free(&r);

    face_file(spec, sizeof spec, "stranger.npy", next_person++, 0);
    run(&r, "identify", "--segment", "federal", "--purpose", "border.check", "--template", spec,
        NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "no match"));
    run_free(&r);
}

/* ---- consent, locks, deletion --------------------------------------------------------------- */

static void test_consent_withdraw_then_verify_refused(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person("bank.remote-id", NULL, id);
    face_file(spec, sizeof spec, "probe.npy", person, 1);
    run_result r;
    run(&r, "consent", "withdraw", id, "bank.remote-id", "--channel", "app", NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 2);
    run_free(&r);
    run(&r, "consent", "grant", id, "bank.remote-id", NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 0);
    run_free(&r);
}

static void test_lock_refuses_and_unlock_restores(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person("bank.remote-id", NULL, id);
    face_file(spec, sizeof spec, "probe.npy", person, 1);
    run_result r;
    run(&r, "lock", id, "--modality", "face", NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 2);
    run_free(&r);
    run(&r, "unlock", id, "--modality", "face", NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 0);
    run_free(&r);

    run(&r, "lock", id, NULL); /* every modality */
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 2);
    run_free(&r);
    run(&r, "unlock", id, NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 0);
    run_free(&r);
}

static void test_delete_then_verify_fails(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person("bank.remote-id", NULL, id);
    face_file(spec, sizeof spec, "probe.npy", person, 1);
    run_result r;
    run(&r, "delete", id, NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "verify", id, "--purpose", "bank.remote-id", "--template", spec, NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "abis: "));
    run_free(&r);
    run(&r, "subject", "show", id, NULL);
    assert_exit(&r, 2);
    run_free(&r);
}

static void test_subject_show_has_no_vector_data(void **state)
{
    (void)state;
    char id[33], spec[4300];
    enroll_person("bank.remote-id", "SHOW-1", id);
    run_result r;
    run(&r, "--json", "subject", "show", "federal/SHOW-1", NULL);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    assert_string_equal(json_string_value(json_object_get(j, "subject_id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "segment")), "federal");
    json_t *t = json_object_get(j, "templates");
    assert_int_equal(json_array_size(t), 1);
    json_t *t0 = json_array_get(t, 0);
    assert_string_equal(json_string_value(json_object_get(t0, "modality")), "face");
    assert_null(json_object_get(t0, "vector"));
    assert_null(json_object_get(t0, "data"));
    assert_true(json_array_size(json_object_get(j, "consents")) >= 1);
    assert_true(json_is_array(json_object_get(j, "history")));
    json_decref(j);
    /* No float of the enrolled sample appears in the output. */
    float v[DIM];
    sample(next_person - 1, 0, v, DIM);
    char num[32];
    snprintf(num, sizeof num, "%.6f", (double)v[0]);
    assert_null(strstr(r.out, num + (num[0] == '-')));
    run_free(&r);

    run(&r, "subject", "show", id, NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "SHOW-1"));
    assert_non_null(strstr(r.out, "bank.remote-id"));
    run_free(&r);
    (void)spec;
}

static void test_template_add_to_subject(void **state)
{
    (void)state;
    char id[33], spec[4300];
    uint64_t person = enroll_person(NULL, NULL, id);
    face_file(spec, sizeof spec, "second.npy", person, 1);
    run_result r;
    run(&r, "--json", "template", "add", id, "--template", spec, NULL);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "template_id"))), 32);
    json_decref(j);
    run_free(&r);
}

/* ---- audit --------------------------------------------------------------------------------- */

static void test_audit_verify_export_pubkey(void **state)
{
    (void)state;
    run_result r;
    run(&r, "audit", "verify", NULL);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "intact"));
    run_free(&r);

    char path[4200];
    snprintf(path, sizeof path, "%s/audit.jsonl", tmp);
    run(&r, "audit", "export", "--output", path, NULL);
    assert_exit(&r, 0);
    run_free(&r);
    char *text = abis_test_slurp(path);
    size_t lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = parse_json(line);
        assert_true(json_is_object(j));
        json_decref(j);
        lines++;
    }
    assert_true(lines >= 5);
    free(text);

    run(&r, "audit", "export", NULL); /* to stdout */
    assert_exit(&r, 0);
    assert_true(strlen(r.out) > 0);
    run_free(&r);

    run(&r, "--json", "audit", "pubkey", NULL);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "public_key"))), 64);
    json_decref(j);
    run_free(&r);
}

static void test_client_add_list_rotate_revoke(void **state)
{
    (void)state;
    run_result r;
    run(&r, "--json", "client", "add", "bank-cli", "--segments", "federal", "--purposes",
        "bank.remote-id", "--operations", "enroll,verify", "--rights", "raw_scores", NULL);
    assert_exit(&r, 0);
    json_t *j = parse_json(r.out);
    const char *key = json_string_value(json_object_get(j, "api_key"));
    assert_non_null(key);
    assert_int_equal(strlen(key), 86);
    char secret[80];
    snprintf(secret, sizeof secret, "%s", key + 22);
    json_decref(j);
    run_free(&r);

    run(&r, "--json", "client", "list", NULL);
    assert_exit(&r, 0);
    assert_null(strstr(r.out, secret));
    j = parse_json(r.out);
    json_t *c = json_array_get(json_object_get(j, "clients"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "operations")), "enroll,verify");
    assert_string_equal(json_string_value(json_object_get(c, "rights")), "raw_scores");
    assert_false(json_is_true(json_object_get(c, "revoked")));
    json_decref(j);
    run_free(&r);

    run(&r, "client", "rotate", "bank-cli", NULL);
    assert_exit(&r, 0);
    assert_null(strstr(r.out, secret));
    assert_non_null(strstr(r.out, "abis_"));
    run_free(&r);
    run(&r, "client", "revoke", "bank-cli", NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "client", "rotate", "bank-cli", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "revoked"));
    run_free(&r);

    run(&r, "client", "add", "x", "--segments", "federal", "--operations", "fly", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "unknown operation 'fly'"));
    run_free(&r);
    run(&r, "client", "add", "x", "--segments", "nowhere", "--operations", "verify", NULL);
    assert_exit(&r, 2);
    assert_non_null(strstr(r.err, "segment 'nowhere' does not exist"));
    run_free(&r);
}

/* Edit one audit entry behind the engine's back (the store's append-only
 * triggers dropped first, as an attacker with file access would). */
static void tamper_audit(const char *dir)
{
    char db_path[4300];
    snprintf(db_path, sizeof db_path, "%s/abis.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db,
                          "DROP TRIGGER IF EXISTS audit_no_update;"
                          "UPDATE audit SET actor = 'operator:mallory' WHERE seq = 1;",
                          NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("could not tamper with %s (has the audit table changed?): %s", db_path, msg);
    sqlite3_close(db);
}

static void test_audit_verify_finds_an_edited_entry(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tampered", tmp);
    run_result r;
    run(&r, "init", dir, NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "--data", dir, "segment", "add", "x", NULL);
    assert_exit(&r, 0);
    run_free(&r);
    run(&r, "--data", dir, "audit", "verify", NULL);
    assert_exit(&r, 0);
    run_free(&r);

    tamper_audit(dir);
    run(&r, "--data", dir, "audit", "verify", NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.out, "BROKEN at entry 1"));
    run_free(&r);
    run(&r, "--data", dir, "--json", "audit", "verify", NULL);
    assert_exit(&r, 1);
    json_t *j = parse_json(r.out);
    assert_true(json_is_false(json_object_get(j, "ok")));
    assert_int_equal(json_integer_value(json_object_get(j, "first_bad_seq")), 1);
    json_decref(j);
    run_free(&r);
}

/* ---- import -------------------------------------------------------------------------------- */

static void write_person_line(FILE *f, const char *segment, const char *ref, uint64_t person,
                              size_t dim)
{
    float v[DIM + 1];
    sample(person, 0, v, dim);
    fprintf(f,
            "{\"segment\": \"%s\", \"ref\": \"%s\", \"templates\": [{\"modality\": \"face\", "
            "\"vector\": [",
            segment, ref);
    for (size_t i = 0; i < dim; i++)
        fprintf(f, "%s%.9g", i ? "," : "", (double)v[i]);
    fprintf(f, "]}], \"consents\": [\"bank.remote-id\"]}\n");
}

/* Base64 of the little-endian float32 values, as "vector_b64" carries them. */
static void write_b64_line(FILE *f, uint64_t person)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    float v[DIM];
    sample(person, 0, v, DIM);
    const unsigned char *b = (const unsigned char *)v;
    size_t n = sizeof v;
    fprintf(f, "{\"segment\": \"federal\", \"templates\": [{\"modality\": \"face\", "
               "\"position\": 0, \"vector_b64\": \"");
    for (size_t i = 0; i < n; i += 3) {
        unsigned x = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) |
                     (i + 2 < n ? b[i + 2] : 0);
        fputc(al[x >> 18 & 63], f);
        fputc(al[x >> 12 & 63], f);
        fputc(i + 1 < n ? al[x >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? al[x & 63] : '=', f);
    }
    fprintf(f, "\"}]}\n");
}

static void test_import_rejects_bad_lines_and_goes_on(void **state)
{
    (void)state;
    char in[4200], rej[4200];
    snprintf(in, sizeof in, "%s/people.jsonl", tmp);
    snprintf(rej, sizeof rej, "%s/rejects.jsonl", tmp);
    uint64_t p1 = next_person++, p2 = next_person++, p3 = next_person++;
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    write_person_line(f, "federal", "IMP-1", p1, DIM);            /* 1: ok */
    fprintf(f, "{\"segment\": \"federal\", \"templates\": [\n");  /* 2: malformed */
    write_person_line(f, "federal", "IMP-3", next_person++, 64);  /* 3: wrong size */
    fprintf(f, "\n");                                             /* 4: blank, skipped */
    fprintf(f, "{\"templates\": []}\n");                          /* 5: no segment */
    write_person_line(f, "nowhere", "IMP-6", next_person++, DIM); /* 6: unknown segment */
    write_b64_line(f, p2);                                        /* 7: ok (base64) */
    write_person_line(f, "federal", "IMP-8", p3, DIM);            /* 8: ok */
    write_person_line(f, "federal", "IMP-9", p1, DIM);            /* 9: duplicate of line 1 */
    assert_int_equal(fclose(f), 0);

    run_result r;
    run(&r, "import", in, "--rejects", rej, "--json", NULL);
    assert_exit(&r, 1);
    json_t *j = parse_json(r.out);
    assert_int_equal(json_integer_value(json_object_get(j, "read")), 8);
    assert_int_equal(json_integer_value(json_object_get(j, "enrolled")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "duplicates")), 1);
    json_decref(j);
    run_free(&r);

    char *text = abis_test_slurp(rej);
    int seen[16] = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = parse_json(line);
        json_int_t n = json_integer_value(json_object_get(o, "line"));
        assert_true(n > 0 && n < 16);
        seen[n] = 1;
        assert_non_null(json_string_value(json_object_get(o, "code")));
        assert_true(strlen(json_string_value(json_object_get(o, "reason"))) > 0);
        if (n == 2)
            assert_string_equal(json_string_value(json_object_get(o, "code")), "malformed_json");
        if (n == 5)
            assert_string_equal(json_string_value(json_object_get(o, "code")), "missing_field");
        if (n == 9)
            assert_string_equal(json_string_value(json_object_get(o, "code")), "duplicate");
        json_decref(o);
    }
    free(text);
    assert_true(seen[2] && seen[3] && seen[5] && seen[6] && seen[9]);
    assert_false(seen[1] || seen[4] || seen[7] || seen[8]);

    /* The imported people are there. */
    run(&r, "subject", "find", "--segment", "federal", "--ref", "IMP-8", NULL);
    assert_exit(&r, 0);
    run_free(&r);
}

static void test_import_reasons_on_stderr_and_clean_run_exits_0(void **state)
{
    (void)state;
    char in[4200];
    snprintf(in, sizeof in, "%s/few.jsonl", tmp);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fprintf(f, "not json\n");
    assert_int_equal(fclose(f), 0);
    run_result r;
    run(&r, "import", in, NULL);
    assert_exit(&r, 1);
    assert_non_null(strstr(r.err, "line 1"));
    assert_non_null(strstr(r.out, "1 rejected"));
    run_free(&r);

    f = fopen(in, "w");
    assert_non_null(f);
    write_person_line(f, "federal", "CLEAN-1", next_person++, DIM);
    write_person_line(f, "federal", "CLEAN-2", next_person++, DIM);
    assert_int_equal(fclose(f), 0);
    /* From standard input this time. */
    const char *args[] = {"import", "-", NULL};
    run_argv(&r, in, args);
    assert_exit(&r, 0);
    assert_non_null(strstr(r.out, "2 enrolled"));
    run_free(&r);

    run(&r, "import", "/nonexistent/people.jsonl", NULL);
    assert_exit(&r, 2);
    run_free(&r);
}

int main(void)
{
    cli_path = getenv("ABIS_CLI");
    if (!cli_path || !*cli_path) {
        printf("test_cli: ABIS_CLI is not set (ctest sets it to the built 'abis'); "
               "skipping the CLI tests\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_every_command),
        cmocka_unit_test(test_every_command_has_help),
        cmocka_unit_test(test_unknown_command_exits_2),
        cmocka_unit_test(test_unknown_option_and_missing_argument_exit_2),
        cmocka_unit_test(test_init_reports_key_and_refuses_existing_store),
        cmocka_unit_test(test_registry_lists),
        cmocka_unit_test(test_modality_calibrate_validates_and_replaces),
        cmocka_unit_test(test_enroll_reads_npy_json_and_raw),
        cmocka_unit_test(test_enroll_human_output_is_the_id),
        cmocka_unit_test(test_enroll_duplicate_refused_with_existing_id),
        cmocka_unit_test(test_wrong_vector_size_is_explained),
        cmocka_unit_test(test_bad_template_arguments),
        cmocka_unit_test(test_verify_exit_codes_match_no_match),
        cmocka_unit_test(test_verify_scores_only_on_request),
        cmocka_unit_test(test_verify_refused_without_consent),
        cmocka_unit_test(test_verify_by_segment_ref),
        cmocka_unit_test(test_identify_lists_the_person),
        cmocka_unit_test(test_consent_withdraw_then_verify_refused),
        cmocka_unit_test(test_lock_refuses_and_unlock_restores),
        cmocka_unit_test(test_delete_then_verify_fails),
        cmocka_unit_test(test_subject_show_has_no_vector_data),
        cmocka_unit_test(test_template_add_to_subject),
        cmocka_unit_test(test_audit_verify_export_pubkey),
        cmocka_unit_test(test_client_add_list_rotate_revoke),
        cmocka_unit_test(test_audit_verify_finds_an_edited_entry),
        cmocka_unit_test(test_import_rejects_bad_lines_and_goes_on),
        cmocka_unit_test(test_import_reasons_on_stderr_and_clean_run_exits_0),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
