/*
 * cmd_eval.c: `abis eval` (measure a modality on a labelled set: DET,
 * histograms, CMC, a JSON report, optionally the calibration check and
 * likelihood-ratio fusion) and `abis calibrate` (fit a modality's score ->
 * FMR calibration on one half of a labelled set, store it in the engine,
 * check it on the other half).
 *
 * Unlike the other commands, these reach below the public API: comparisons
 * must run through the same code as production, so the set's samples are
 * validated and compared by the modality plug-in (core/modality.h) and 1:N
 * searches use its gallery (src/eval/protocol.c).  The modality's declaration
 * comes from the engine (abis_modality_list), and so does its calibration
 * (abis_modality_get_calibration).
 */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "eval/dataset.h"
#include "eval/eval.h"
#include "eval/protocol.h"
#include "match/match.h"

#define MAX_SYSTEMS 8
#define DEFAULT_BOOTSTRAP 100
#define DEFAULT_OUT "eval-report"

/* ---- configuration ------------------------------------------------------------ */

typedef struct eval_cfg {
    const char *sets[MAX_SYSTEMS];
    size_t n_sets;
    const char *names[MAX_SYSTEMS]; /* --name, in order */
    size_t n_names;
    abis_eval_layout layout;
    const char *pairs;
    abis_eval_protocol protocol;
    const char *modality; /* --modality */
    const char *kind;     /* --kind (no store) */
    long dim;             /* --dim (0: from the data) */
    const char *out;
    unsigned bootstrap;
    abis_eval_run_opts run;
    int check; /* --check-calibration */
    char *fuse[MAX_SYSTEMS];
    size_t n_fuse;
    char fuse_buf[512];
    double holdout;    /* share held out for checking (calibrate) or fusing (eval --fuse) */
    long gallery_size; /* calibrate: 1:N gallery size */
} eval_cfg;

static int parse_common(const cli_ctx *ctx, const cli_args *a, eval_cfg *c, int is_eval)
{
    memset(c, 0, sizeof *c);
    c->n_sets = cli_arg_count(a, "set");
    if (c->n_sets == 0)
        return cli_usage_error(ctx, "missing --set"), -1;
    if (c->n_sets > MAX_SYSTEMS)
        return cli_usage_error(ctx, "at most %d --set options", MAX_SYSTEMS), -1;
    for (size_t i = 0; i < c->n_sets; i++)
        c->sets[i] = cli_arg_nth(a, "set", i);
    c->n_names = cli_arg_count(a, "name");
    for (size_t i = 0; i < c->n_names && i < MAX_SYSTEMS; i++)
        c->names[i] = cli_arg_nth(a, "name", i);
    const char *s = cli_arg_get(a, "layout");
    int l = s ? abis_eval_layout_parse(s) : ABIS_LAYOUT_AUTO;
    if (l < 0)
        return cli_usage_error(ctx,
                               "--layout must be auto, folder, csv, jsonl, lfw, fvc, casia or "
                               "speaker, not '%s'",
                               s),
               -1;
    c->layout = (abis_eval_layout)l;
    c->pairs = cli_arg_get(a, "pairs");
    s = cli_arg_get(a, "protocol");
    int p = s ? abis_eval_protocol_parse(s) : (c->pairs ? ABIS_PROTOCOL_PAIRS : ABIS_PROTOCOL_ALL);
    if (p < 0 || (!is_eval && p == ABIS_PROTOCOL_1N))
        return cli_usage_error(ctx, "--protocol must be all, fvc, pairs, sessions%s, not '%s'",
                               is_eval ? " or 1n" : "", s),
               -1;
    c->protocol = (abis_eval_protocol)p;
    if (c->protocol == ABIS_PROTOCOL_PAIRS && !c->pairs)
        return cli_usage_error(ctx, "--protocol pairs needs --pairs FILE"), -1;
    c->modality = cli_arg_get(a, "modality");
    c->kind = cli_arg_get(a, "kind");
    long v;
    if ((s = cli_arg_get(a, "dim"))) {
        if (cli_parse_int(ctx, s, "--dim", 1, 65536, &v) != 0)
            return -1;
        c->dim = v;
    }
    c->bootstrap = DEFAULT_BOOTSTRAP;
    if ((s = cli_arg_get(a, "bootstrap"))) {
        if (cli_parse_int(ctx, s, "--bootstrap", 0, 100000, &v) != 0)
            return -1;
        c->bootstrap = (unsigned)v;
    }
    c->run.threads = 2;
    if ((s = cli_arg_get(a, "threads"))) {
        if (cli_parse_int(ctx, s, "--threads", 1, 256, &v) != 0)
            return -1;
        c->run.threads = (unsigned)v;
    }
    if ((s = cli_arg_get(a, "max-impostors"))) {
        if (cli_parse_int(ctx, s, "--max-impostors", 1, 4000000000L, &v) != 0)
            return -1;
        c->run.max_impostors = (uint64_t)v;
    }
    c->run.seed = 1;
    if ((s = cli_arg_get(a, "seed"))) {
        if (cli_parse_int(ctx, s, "--seed", 0, 2147483647L, &v) != 0)
            return -1;
        c->run.seed = (uint64_t)v;
    }
    c->run.nonmated_share = 0.3;
    if ((s = cli_arg_get(a, "nonmated-share")) && strcmp(s, "singletons") == 0) {
        c->run.nonmated_share = 0;
        c->run.nonmated_singletons = 1;
    } else if (s && (cli_parse_double(ctx, s, "--nonmated-share", &c->run.nonmated_share) != 0 ||
                     c->run.nonmated_share < 0 || c->run.nonmated_share >= 1)) {
        return cli_usage_error(ctx, "--nonmated-share must be in [0, 1), or singletons"), -1;
    }
    c->holdout = 0.5;
    if ((s = cli_arg_get(a, "holdout")) &&
        (cli_parse_double(ctx, s, "--holdout", &c->holdout) != 0 || c->holdout <= 0 ||
         c->holdout >= 1))
        return cli_usage_error(ctx, "--holdout must be between 0 and 1"), -1;
    if ((s = cli_arg_get(a, "gallery-size")) &&
        cli_parse_int(ctx, s, "--gallery-size", 1, 2000000000L, &c->gallery_size) != 0)
        return -1;
    c->out = cli_arg_get(a, "out");
    if (!c->out)
        c->out = DEFAULT_OUT;
    c->check = cli_arg_get(a, "check-calibration") != NULL;
    if ((s = cli_arg_get(a, "fuse"))) {
        snprintf(c->fuse_buf, sizeof c->fuse_buf, "%s", s);
        char *save = NULL;
        for (char *t = strtok_r(c->fuse_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (c->n_fuse == MAX_SYSTEMS - 1)
                return cli_usage_error(ctx, "--fuse takes at most %d modalities", MAX_SYSTEMS - 1),
                       -1;
            c->fuse[c->n_fuse++] = t;
        }
        if (c->n_fuse < 2)
            return cli_usage_error(ctx, "--fuse needs two or more modalities: --fuse face,voice"),
                   -1;
    }
    c->run.progress_label = "comparing";
    return 0;
}

/* ---- the modality: from the store, or declared on the command line ---------------- */

typedef struct find_ctx {
    const char *name;
    abis_modality_info info;
    int found;
} find_ctx;

static int find_cb(const abis_modality_info *info, void *p)
{
    find_ctx *f = p;
    if (strcmp(info->name, f->name) != 0)
        return 0;
    f->info = *info;
    f->found = 1;
    return 1;
}

/* Open the engine read-only when a command that opens nothing needs the registry. */
static int ensure_engine(cli_ctx *ctx)
{
    if (ctx->engine)
        return 0;
    abis_error err = {0};
    abis_open_options o = {.data_dir = ctx->data_dir, .actor = ctx->actor, .read_only = 1};
    if (abis_engine_open(&o, &ctx->engine, &err) != ABIS_OK) {
        ctx->engine = NULL;
        cli_failf(ctx, abis_status_name(err.status),
                  "cannot open the data directory '%s' to look up the modality: %s (or "
                  "evaluate without a store: --kind vector [--dim N])",
                  ctx->data_dir, err.message);
        return -1;
    }
    return 0;
}

/* The declaration of modality `name` into *rec and its kind into *kind. */
static int resolve_modality(cli_ctx *ctx, const eval_cfg *c, const char *name,
                            abis_modality_rec *rec, const abis_modality_kind **kind)
{
    memset(rec, 0, sizeof *rec);
    if (c->kind) {
        *kind = abis_modality_kind_find(c->kind);
        if (!*kind)
            return cli_usage_error(ctx, "unknown --kind '%s' (known: %s)", c->kind,
                                   abis_modality_kind_names()),
                   -1;
        snprintf(rec->name, sizeof rec->name, "%s", name);
        snprintf(rec->kind, sizeof rec->kind, "%s", c->kind);
        /* A kind of fixed size has it; fused modalities take each from its data. */
        rec->dim = (*kind)->fixed_dim ? (*kind)->fixed_dim : c->n_fuse ? 0 : (int)c->dim;
        return 0;
    }
    if (ensure_engine(ctx) != 0)
        return -1;
    find_ctx f = {.name = name};
    abis_error err = {0};
    if (abis_modality_list(ctx->engine, find_cb, &f, &err) != ABIS_OK)
        return cli_fail(ctx, &err), -1;
    if (!f.found)
        return cli_failf(ctx, "not_found",
                         "modality '%s' is not declared in '%s' (see 'abis modality list'; or "
                         "evaluate without a store: --kind vector)",
                         name, ctx->data_dir),
               -1;
    snprintf(rec->name, sizeof rec->name, "%s", f.info.name);
    snprintf(rec->kind, sizeof rec->kind, "%s", f.info.kind);
    rec->dim = f.info.dim;
    *kind = abis_modality_kind_find(rec->kind);
    if (!*kind)
        return cli_failf(ctx, "internal", "modality '%s' has unknown kind '%s'", name, rec->kind),
               -1;
    return 0;
}

/* The calibration JSON the engine uses for a modality (stored, or the
 * kind's default); malloc'd, or NULL after reporting the error. */
static char *stored_calibration(cli_ctx *ctx, const abis_modality_rec *m)
{
    abis_error err = {0};
    char *json = NULL;
    if (ensure_engine(ctx) != 0)
        return NULL;
    if (abis_modality_get_calibration(ctx->engine, m->name, &json, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        return NULL;
    }
    return json;
}

/* ---- output folder and files ----------------------------------------------------- */

static int make_dirs(const cli_ctx *ctx, const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return cli_failf(ctx, "io", "cannot create '%s': %s", buf, strerror(errno)), -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return cli_failf(ctx, "io", "cannot create '%s': %s", buf, strerror(errno)), -1;
    return 0;
}

static FILE *open_out(const cli_ctx *ctx, const char *dir, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        cli_failf(ctx, "io", "cannot write '%s': %s", path, strerror(errno));
    return f;
}

/* ---- one evaluated system ---------------------------------------------------------- */

typedef struct system {
    char name[64];
    abis_eval_scores scores; /* 1:1 scores (1n: mated vs non-mated best scores) */
    abis_eval_ident ident;
    int is_1n;
    abis_eval_verif_metrics vm;
    abis_eval_ident_metrics im;
    int has_vm, has_im;
    char metrics_error[ABIS_ERROR_MESSAGE_MAX];
    json_t *extra; /* set, failures, calibration check: merged into the report */
} system_t;

static void system_free(system_t *s)
{
    abis_eval_scores_free(&s->scores);
    abis_eval_ident_free(&s->ident);
    json_decref(s->extra);
    memset(s, 0, sizeof *s);
}

static json_t *set_json(const abis_eval_set *set)
{
    json_t *probs = json_array();
    for (size_t i = 0; i < set->n_problems && i < ABIS_EVAL_MAX_PROBLEMS; i++)
        json_array_append_new(probs, json_string(set->problems[i]));
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o}", "path", set->source, "layout",
                          abis_eval_layout_name(set->layout), "identities",
                          (json_int_t)set->n_identities, "records", (json_int_t)set->n_records,
                          "skipped_files", (json_int_t)set->n_skipped, "problems",
                          (json_int_t)set->n_problems, "problem_messages", probs);
    if (o && set->pairs)
        json_object_set_new(o, "pairs",
                            json_pack("{s:I, s:I, s:I, s:I}", "genuine_listed",
                                      (json_int_t)set->pairs_genuine_listed, "impostor_listed",
                                      (json_int_t)set->pairs_impostor_listed, "resolved",
                                      (json_int_t)set->n_pairs, "unresolved",
                                      (json_int_t)set->pairs_unresolved));
    return o;
}

static json_t *failures_json(const abis_eval_templates *t)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:s, s:s}", "modality", t->mod.name, "attempted",
                     (json_int_t)t->attempted, "failed_to_enrol", (json_int_t)t->fte,
                     "failed_to_acquire", (json_int_t)t->fta, "fte_reason", t->fte_reason,
                     "fta_reason", t->fta_reason);
}

/* Metrics of a system; a failure (too few scores) is kept as a message. */
static void system_metrics(system_t *s, unsigned bootstrap)
{
    abis_error err = {0};
    if (s->is_1n) {
        if (abis_eval_identification(&s->ident, bootstrap, &s->im, &err) == ABIS_OK)
            s->has_im = 1;
        else
            snprintf(s->metrics_error, sizeof s->metrics_error, "%s", err.message);
        return;
    }
    if (s->scores.n_genuine == 0 || s->scores.n_impostor == 0) {
        snprintf(s->metrics_error, sizeof s->metrics_error,
                 "no %s comparisons could be made (%llu genuine, %llu impostor)",
                 s->scores.n_genuine == 0 ? "genuine" : "impostor",
                 (unsigned long long)s->scores.n_genuine, (unsigned long long)s->scores.n_impostor);
        return;
    }
    if (abis_eval_verification(&s->scores, bootstrap, &s->vm, &err) == ABIS_OK)
        s->has_vm = 1;
    else
        snprintf(s->metrics_error, sizeof s->metrics_error, "%s", err.message);
}

/* The 1:N outcome as 1:1-like scores for the DET and histogram: a mated
 * probe's mate score against each non-mated probe's best score (FNIR
 * against FPIR with the threshold alone, rank ignored). */
static int ident_as_scores(system_t *s)
{
    const abis_eval_ident *id = &s->ident;
    for (size_t i = 0; i < id->n_mated; i++)
        if (!isnan(id->mated_score[i]) &&
            abis_eval_add_genuine(&s->scores, id->mated_score[i], id->mated_id[i]) != 0)
            return -1;
    for (size_t i = 0; i < id->n_nonmated; i++)
        if (isfinite(id->nonmated_best[i]) &&
            abis_eval_add_impostor(&s->scores, id->nonmated_best[i], id->nonmated_id[i],
                                   id->nonmated_id[i]) != 0)
            return -1;
    return 0;
}

/* ---- the calibration check ---------------------------------------------------------- */

/* Wilson score interval (z = 1.96) of k successes in n. */
static void wilson(uint64_t k, uint64_t n, double *lo, double *hi)
{
    const double z = 1.959964;
    if (n == 0) {
        *lo = 0, *hi = 1;
        return;
    }
    double dn = (double)n, p = (double)k / dn, z2 = z * z;
    double c = (p + z2 / (2 * dn)) / (1 + z2 / dn);
    double h = z / (1 + z2 / dn) * sqrt(p * (1 - p) / dn + z2 / (4 * dn * dn));
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

/* splitmix64 for the bootstrap (as protocol.c). */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The share of `scores` (n, with identity pairs ia/ib) at or above
 * `threshold`, and its 95 % interval: the wider of a bootstrap by identity
 * (identities resampled with replacement; a pair weighs the product of its two
 * identities' multiplicities) and the Wilson binomial interval, which stays
 * honest when few or no scores pass. */
static void observed_rate(const double *scores, const uint32_t *ia, const uint32_t *ib, size_t n,
                          uint32_t n_ids, double threshold, unsigned boots, double *rate,
                          double *lo, double *hi, uint64_t *k_out)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += scores[i] >= threshold;
    *rate = n ? (double)k / (double)n : 0;
    *k_out = k;
    wilson(k, n, lo, hi);
    if (boots == 0 || n_ids < 2)
        return;
    uint32_t *w = calloc(n_ids, sizeof *w);
    double *r = malloc(boots * sizeof *r);
    if (!w || !r) {
        free(w);
        free(r);
        return;
    }
    uint64_t seed = 0xB0075742ull;
    for (unsigned b = 0; b < boots; b++) {
        memset(w, 0, n_ids * sizeof *w);
        for (uint32_t i = 0; i < n_ids; i++)
            w[mix(&seed) % n_ids]++;
        double num = 0, den = 0;
        for (size_t i = 0; i < n; i++) {
            double wt = (double)w[ia[i] % n_ids] * (ib ? w[ib[i] % n_ids] : 1);
            den += wt;
            if (scores[i] >= threshold)
                num += wt;
        }
        r[b] = den > 0 ? num / den : 0;
    }
    qsort(r, boots, sizeof *r, cmp_double);
    double blo = r[(size_t)floor(0.025 * (boots - 1))], bhi = r[(size_t)ceil(0.975 * (boots - 1))];
    if (blo < *lo)
        *lo = blo;
    if (bhi > *hi)
        *hi = bhi;
    free(w);
    free(r);
}

/* For each FMR target: the calibration's threshold and the FMR observed on
 * `s` there, with its interval.  Prints a table unless `quiet`. */
static json_t *calibration_check(const abis_calibration *cal, const abis_eval_scores *s,
                                 unsigned boots, int quiet)
{
    json_t *arr = json_array();
    if (!quiet)
        printf("\nCalibration check on %zu impostor comparisons:\n"
               "  %-8s %-10s %-12s %-26s %s\n",
               s->n_impostor, "target", "threshold", "observed", "95% interval", "");
    for (int i = 0; i < ABIS_EVAL_N_FMR_TARGETS; i++) {
        double target = abis_eval_fmr_targets[i];
        double thr = abis_calibration_threshold(cal, target);
        double rate, lo, hi;
        uint64_t k;
        observed_rate(s->impostor, s->imp_id_a, s->imp_id_b, s->n_impostor, s->n_identities, thr,
                      boots, &rate, &lo, &hi, &k);
        int supported = (double)s->n_impostor * target >= 1.0;
        int within = lo <= target && target <= hi;
        json_array_append_new(arr, json_pack("{s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:b, s:b}",
                                             "target_fmr", target, "threshold", thr, "observed_fmr",
                                             rate, "lo", lo, "hi", hi, "false_matches",
                                             (json_int_t)k, "impostors", (json_int_t)s->n_impostor,
                                             "supported", supported, "target_within", within));
        if (!quiet) {
            char iv[64];
            snprintf(iv, sizeof iv, "[%.3g, %.3g]", lo, hi);
            printf("  %-8g %-10.5f %-12.3g %-26s %s\n", target, thr, rate, iv,
                   !supported ? "not supported (too few impostors)"
                   : within   ? "target within interval"
                              : "TARGET OUTSIDE INTERVAL");
        }
    }
    return arr;
}

/* ---- printing a summary ----------------------------------------------------------------- */

static void print_rate(const char *label, const abis_eval_rate *r)
{
    if (!r->supported) {
        printf("  %-22s not supported (%llu comparisons)\n", label, (unsigned long long)r->support);
        return;
    }
    printf("  %-22s %.4f  [%.4f, %.4f]  at threshold %.5f  (%llu comparisons)\n", label, r->value,
           r->lo, r->hi, r->threshold, (unsigned long long)r->support);
}

static void print_system(const system_t *s, uint64_t attempted, uint64_t fte, uint64_t fta,
                         const char *fta_reason)
{
    printf("\n%s\n", s->name);
    printf("  samples attempted %llu, failed to enrol %llu, failed to acquire %llu\n",
           (unsigned long long)attempted, (unsigned long long)fte, (unsigned long long)fta);
    if (fta && fta_reason[0])
        printf("  failure to acquire: %s\n", fta_reason);
    if (s->metrics_error[0])
        printf("  no metrics: %s\n", s->metrics_error);
    if (s->has_vm) {
        const abis_eval_verif_metrics *m = &s->vm;
        printf("  comparisons: %llu genuine, %llu impostor\n", (unsigned long long)m->n_genuine,
               (unsigned long long)m->n_impostor);
        print_rate("EER", &m->eer);
        for (int i = 0; i < ABIS_EVAL_N_FMR_TARGETS; i++) {
            char label[48];
            snprintf(label, sizeof label, "FNMR at FMR %g", abis_eval_fmr_targets[i]);
            print_rate(label, &m->fnmr_at_fmr[i]);
        }
        print_rate("FNMR at zero FMR", &m->fnmr_at_zero_fmr);
        printf("  %-22s %.3f\n", "d'", m->d_prime);
        printf("  %-22s %.4f / %.4f\n", "FTE / FTA rate", m->fte_rate, m->fta_rate);
    }
    if (s->has_im) {
        const abis_eval_ident_metrics *m = &s->im;
        printf("  gallery %zu, mated probes %llu, non-mated probes %llu\n", m->gallery_size,
               (unsigned long long)m->n_mated, (unsigned long long)m->n_nonmated);
        for (int i = 0; i < ABIS_EVAL_N_FPIR_TARGETS; i++) {
            char label[48];
            snprintf(label, sizeof label, "FNIR at FPIR %g", abis_eval_fpir_targets[i]);
            print_rate(label, &m->fnir_at_fpir[i]);
        }
        printf("  rank:  ");
        for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++)
            printf("%6d", r + 1);
        printf("\n  ident: ");
        for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++)
            printf("%6.3f", m->cmc[r]);
        printf("\n");
    }
}

/* ---- reports and plots ----------------------------------------------------------------- */

/* One system's JSON report (report.c's object, with `extra` merged in). */
static json_t *system_report(system_t *s, abis_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        abis_error_set(err, ABIS_E_NOMEM, "out of memory for the report");
        return NULL;
    }
    abis_status st = abis_eval_report_json(f, s->name, s->has_vm ? &s->vm : NULL,
                                           s->has_im ? &s->im : NULL, err);
    fclose(f);
    json_t *o = NULL;
    if (st == ABIS_OK) {
        json_error_t je;
        o = json_loadb(buf, len, 0, &je);
        if (!o)
            abis_error_set(err, ABIS_E_INTERNAL, "the report is not valid JSON: %s", je.text);
    }
    free(buf);
    if (o && s->extra)
        json_object_update(o, s->extra);
    if (o && s->metrics_error[0])
        json_object_set_new(o, "metrics_error", json_string(s->metrics_error));
    return o;
}

/* report.json, det.svg, hist.svg (of the first system, or hist-N.svg for each
 * of several), cmc.svg for 1:N; `report` gets the report (one system's
 * object, or {"systems": [...]}, with `top` merged in). */
static int write_outputs(const cli_ctx *ctx, const eval_cfg *c, system_t *sys, size_t n,
                         json_t *top, json_t **report, char *written, size_t cap)
{
    snprintf(written, cap, "report.json");
    if (make_dirs(ctx, c->out) != 0)
        return -1;
    abis_error err = {0};
    char path[4200];
    const abis_eval_scores *curves[MAX_SYSTEMS];
    size_t n_curves = 0;
    for (size_t i = 0; i < n; i++)
        if (sys[i].scores.n_genuine && sys[i].scores.n_impostor)
            curves[n_curves++] = &sys[i].scores;
    FILE *f;
    if (n_curves) {
        strncat(written, ", det.svg", cap - strlen(written) - 1);
        if (!(f = open_out(ctx, c->out, "det.svg", path, sizeof path)))
            return -1;
        abis_status st = abis_eval_svg_det(
            f, curves, n_curves, sys[0].is_1n ? "DET (1:N: FNIR against FPIR)" : "DET", &err);
        if (fclose(f) != 0 || st != ABIS_OK)
            return st != ABIS_OK ? cli_fail(ctx, &err),
                   -1            : (cli_failf(ctx, "io", "cannot write '%s'", path), -1);
    }
    for (size_t i = 0; i < n; i++) {
        if (!sys[i].scores.n_genuine && !sys[i].scores.n_impostor)
            continue;
        char name[64];
        if (n == 1)
            snprintf(name, sizeof name, "hist.svg");
        else
            snprintf(name, sizeof name, "hist-%zu.svg", i + 1);
        if (!(f = open_out(ctx, c->out, name, path, sizeof path)))
            return -1;
        strncat(written,
                n == 1   ? ", hist.svg"
                : i == 0 ? ", hist-N.svg"
                         : "",
                cap - strlen(written) - 1);
        abis_status st = abis_eval_svg_histogram(f, &sys[i].scores, sys[i].name, &err);
        if (fclose(f) != 0 || st != ABIS_OK)
            return st != ABIS_OK ? cli_fail(ctx, &err),
                   -1            : (cli_failf(ctx, "io", "cannot write '%s'", path), -1);
    }
    const abis_eval_ident_metrics *cmcs[MAX_SYSTEMS];
    const char *names[MAX_SYSTEMS];
    size_t n_cmc = 0;
    for (size_t i = 0; i < n; i++)
        if (sys[i].has_im) {
            cmcs[n_cmc] = &sys[i].im;
            names[n_cmc++] = sys[i].name;
        }
    if (n_cmc) {
        if (!(f = open_out(ctx, c->out, "cmc.svg", path, sizeof path)))
            return -1;
        strncat(written, ", cmc.svg", cap - strlen(written) - 1);
        abis_status st = abis_eval_svg_cmc(f, cmcs, names, n_cmc, "CMC", &err);
        if (fclose(f) != 0 || st != ABIS_OK)
            return st != ABIS_OK ? cli_fail(ctx, &err),
                   -1            : (cli_failf(ctx, "io", "cannot write '%s'", path), -1);
    }
    json_t *rep;
    if (n == 1) {
        rep = system_report(&sys[0], &err);
    } else {
        rep = json_object();
        json_t *arr = json_array();
        for (size_t i = 0; rep && arr && i < n; i++) {
            json_t *o = system_report(&sys[i], &err);
            if (!o) {
                json_decref(arr);
                arr = NULL;
                break;
            }
            json_array_append_new(arr, o);
        }
        if (!arr) {
            json_decref(rep);
            rep = NULL;
        } else {
            json_object_set_new(rep, "systems", arr);
        }
    }
    if (!rep)
        return cli_fail(ctx, &err), -1;
    if (top)
        json_object_update(rep, top);
    snprintf(path, sizeof path, "%s/report.json", c->out);
    if (json_dump_file(rep, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
        json_decref(rep);
        return cli_failf(ctx, "io", "cannot write '%s'", path), -1;
    }
    *report = rep;
    return 0;
}

/* Print the report (--json) or the paths written; the exit code. */
static int finish(const cli_ctx *ctx, const eval_cfg *c, json_t *report, int ok,
                  const char *written)
{
    if (ctx->json)
        return cli_json_print(report) == 0 && ok ? CLI_EXIT_OK : ok ? CLI_EXIT_ERROR : CLI_EXIT_NO;
    json_decref(report);
    printf("\nWritten to %s/: %s\n", c->out, written);
    return ok ? CLI_EXIT_OK : CLI_EXIT_NO;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- abis eval ----------------------------------------------------------------------------- */

static const char *system_name(const eval_cfg *c, size_t i, const char *fallback, char *buf,
                               size_t cap)
{
    if (i < c->n_names)
        return c->names[i];
    const char *slash = strrchr(fallback, '/');
    snprintf(buf, cap, "%s", slash && slash[1] ? slash + 1 : fallback);
    return buf;
}

/* Load one set and make its templates of modality `mname`; prints the set's problems. */
static int load_set(cli_ctx *ctx, const eval_cfg *c, const char *path, abis_eval_set *set)
{
    abis_error err = {0};
    if (abis_eval_set_load(set, path, c->layout, c->pairs, &err) != ABIS_OK)
        return cli_fail(ctx, &err), -1;
    if (set->n_problems && !ctx->json) {
        fprintf(stderr, "abis: %llu problem(s) reading '%s':\n",
                (unsigned long long)set->n_problems, path);
        for (size_t i = 0; i < set->n_problems && i < ABIS_EVAL_MAX_PROBLEMS; i++)
            fprintf(stderr, "  %s\n", set->problems[i]);
    }
    return 0;
}

static const char *default_modality(const eval_cfg *c, const abis_eval_set *set)
{
    if (c->modality)
        return c->modality;
    const char *m = abis_eval_layout_modality(set->layout);
    if (m)
        return m;
    if (set->n_modalities == 1)
        return set->modalities[0];
    return "vector";
}

/* With a pairs file that has folds (LFW's), the accuracy under its
 * protocol (metrics.c, abis_eval_fold_accuracy_compute): printed, and into
 * s->extra as "fold_accuracy".  0, or -1 when out of memory. */
static int fold_accuracy(const cli_ctx *ctx, const abis_eval_set *set, const abis_eval_templates *t,
                         system_t *s)
{
    if (set->pairs_folds < 2 || set->n_pairs == 0)
        return 0;
    size_t n = set->n_pairs;
    double *score = malloc(n * sizeof *score);
    int *genuine = malloc(n * sizeof *genuine), *fold = malloc(n * sizeof *fold);
    if (!score || !genuine || !fold) {
        free(score), free(genuine), free(fold);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const abis_eval_pair *p = &set->pairs[i];
        score[i] = t->tmpl[p->a] && t->tmpl[p->b]
                       ? t->kind->compare(&t->mod, t->tmpl[p->a], t->len[p->a], t->tmpl[p->b],
                                          t->len[p->b])
                       : NAN;
        genuine[i] = p->genuine;
        fold[i] = p->fold;
    }
    abis_eval_fold_accuracy a;
    abis_error err = {0};
    abis_status st =
        abis_eval_fold_accuracy_compute(score, genuine, fold, n, set->pairs_folds, &a, &err);
    free(score), free(genuine), free(fold);
    if (st == ABIS_E_NOMEM)
        return -1;
    if (st != ABIS_OK) {
        if (!ctx->json)
            fprintf(stderr, "abis: no fold accuracy: %s\n", err.message);
        return 0;
    }
    if (!ctx->json)
        printf("  accuracy, %d-fold cross-validation over the pairs file's folds: %.4f +- %.4f "
               "(%zu pairs; the %zu without two templates decided no match); %.4f +- %.4f on "
               "the %zu compared pairs\n",
               a.folds, a.mean, a.se, a.pairs, a.pairs - a.compared, a.compared_mean,
               a.compared_se, a.compared);
    json_object_set_new(s->extra, "fold_accuracy",
                        json_pack("{s:i, s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "folds", a.folds,
                                  "pairs", (json_int_t)a.pairs, "compared",
                                  (json_int_t)a.compared, "accuracy", a.mean, "se", a.se,
                                  "compared_accuracy", a.compared_mean, "compared_se",
                                  a.compared_se, "threshold_mean", a.threshold_mean));
    return 0;
}

/* Evaluate one set as one system into *s. */
static int eval_one(cli_ctx *ctx, const eval_cfg *c, size_t idx, system_t *s)
{
    abis_eval_set set;
    abis_eval_templates t;
    memset(&t, 0, sizeof t);
    int rc = -1;
    abis_error err = {0};
    char nb[64];
    abis_status st;
    double t0 = now_s();
    if (load_set(ctx, c, c->sets[idx], &set) != 0)
        goto out;
    const char *mname = default_modality(c, &set);
    abis_modality_rec rec;
    const abis_modality_kind *kind;
    if (resolve_modality(ctx, c, mname, &rec, &kind) != 0)
        goto out;
    if (kind->kind && strcmp(kind->kind, "vector") != 0 && rec.dim == 0) {
        cli_failf(ctx, "usage", "--dim is needed for kind '%s'", kind->kind);
        goto out;
    }
    /* A pairs file names the samples taking part; only they are attempted. */
    unsigned char *use = NULL;
    if (c->protocol == ABIS_PROTOCOL_PAIRS && set.pairs &&
        (use = calloc(set.n_records + 1, 1)) != NULL)
        for (size_t i = 0; i < set.n_pairs; i++)
            use[set.pairs[i].a] = use[set.pairs[i].b] = 1;
    st = abis_eval_templates_load(&t, &set, use, kind, &rec, c->run.threads, rec.name, &err);
    free(use);
    if (st != ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    if (t.attempted == 0 && set.n_modalities) {
        char names[256] = "";
        for (size_t i = 0; i < set.n_modalities; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%.60s", i ? ", " : "",
                     set.modalities[i]);
        cli_failf(ctx, "invalid",
                  "the set has no '%s' samples; its modalities: %s (choose one with "
                  "--modality, or fuse them with --fuse)",
                  rec.name, names);
        goto out;
    }
    snprintf(s->name, sizeof s->name, "%s",
             system_name(c, idx, c->n_sets > 1 ? c->sets[idx] : rec.name, nb, sizeof nb));
    abis_eval_scores_init(&s->scores, s->name);
    abis_eval_ident_init(&s->ident, s->name, 0, ABIS_EVAL_MAX_RANK);
    abis_eval_run_opts run = c->run;
    double t1 = now_s();
    if (c->protocol == ABIS_PROTOCOL_1N) {
        s->is_1n = 1;
        st = abis_eval_run_identification(&set, &t, &run, &s->ident, &err);
        s->scores.attempted = t.attempted;
        s->scores.failed_to_enrol = t.fte;
        s->scores.failed_to_acquire = t.fta;
        if (st == ABIS_OK && ident_as_scores(s) != 0)
            st = abis_error_set(&err, ABIS_E_NOMEM, "out of memory");
    } else {
        st = abis_eval_run_verification(&set, &t, c->protocol, &run, &s->scores, &err);
    }
    if (st != ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    double t2 = now_s();
    system_metrics(s, c->bootstrap);
    double t3 = now_s();
    uint64_t compared =
        s->is_1n ? (uint64_t)(s->ident.n_mated + s->ident.n_nonmated) * s->ident.gallery_size
                 : (uint64_t)(s->scores.n_genuine + s->scores.n_impostor);
    s->extra =
        json_pack("{s:o, s:s, s:o, s:{s:f, s:f, s:f, s:I, s:f, s:i}}", "set", set_json(&set),
                  "protocol", abis_eval_protocol_name(c->protocol), "failures", failures_json(&t),
                  "timing", "load_s", t1 - t0, "compare_s", t2 - t1, "metrics_s", t3 - t2,
                  "comparisons", (json_int_t)compared, "comparisons_per_s",
                  t2 > t1 ? (double)compared / (t2 - t1) : 0.0, "threads", (int)c->run.threads);
    if (!ctx->json)
        fprintf(stderr,
                "abis: %llu comparisons in %.1f s (%.3g a second, %u threads); "
                "reading %.1f s, metrics %.1f s\n",
                (unsigned long long)compared, t2 - t1, t2 > t1 ? (double)compared / (t2 - t1) : 0,
                c->run.threads, t1 - t0, t3 - t2);
    if (!ctx->json)
        print_system(s, t.attempted, t.fte, t.fta, t.fta_reason);
    if (c->protocol == ABIS_PROTOCOL_PAIRS && fold_accuracy(ctx, &set, &t, s) != 0) {
        cli_failf(ctx, "nomem", "out of memory");
        goto out;
    }
    if (c->check && !s->is_1n && s->scores.n_impostor) {
        char *json = stored_calibration(ctx, &rec);
        abis_calibration *cal = NULL;
        if (!json)
            goto out;
        if (abis_calibration_parse(json, &cal, &err) != ABIS_OK) {
            free(json);
            cli_fail(ctx, &err);
            goto out;
        }
        free(json);
        json_t *chk = calibration_check(cal, &s->scores, c->bootstrap, ctx->json);
        json_object_set_new(
            s->extra, "calibration_check",
            json_pack("{s:s, s:o}", "model", abis_calibration_model(cal), "targets", chk));
        abis_calibration_free(cal);
    }
    rc = 0;
out:
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    return rc;
}

/* Fit a calibration on `fit` scores; NULL after reporting the error. */
static abis_calibration *fit_calibration(const cli_ctx *ctx, const abis_eval_scores *fit,
                                         const abis_ident_scores *ident, char **json_out)
{
    abis_error err = {0};
    char *json = NULL;
    abis_calibration *cal = NULL;
    if (abis_calibration_fit(fit->genuine, fit->n_genuine, fit->impostor, fit->n_impostor, ident,
                             &json, &err) != ABIS_OK ||
        abis_calibration_parse(json, &cal, &err) != ABIS_OK) {
        abis_error_prefix(&err, "fitting the calibration of '%s' (%zu genuine, %zu impostor): ",
                          fit->name, fit->n_genuine, fit->n_impostor);
        free(json);
        cli_fail(ctx, &err);
        return NULL;
    }
    if (json_out)
        *json_out = json;
    else
        free(json);
    return cal;
}

/* eval --fuse: per modality, calibrations fitted on one part of the
 * identities; on the other, each modality's scores and the fused log-LR of
 * every pair. */
static int eval_fused(cli_ctx *ctx, const eval_cfg *c, system_t *sys, size_t *n_sys)
{
    abis_eval_set set;
    size_t m = c->n_fuse;
    abis_eval_templates t[MAX_SYSTEMS];
    abis_calibration *cal[MAX_SYSTEMS] = {0};
    memset(t, 0, sizeof t);
    unsigned char *fit = NULL, *test = NULL;
    double *per = NULL;
    abis_eval_pairlist pl = {0};
    abis_error err = {0};
    int rc = -1;
    if (load_set(ctx, c, c->sets[0], &set) != 0)
        goto out;
    fit = malloc(set.n_records + 1);
    test = malloc(set.n_records + 1);
    if (!fit || !test) {
        cli_failf(ctx, "nomem", "out of memory");
        goto out;
    }
    abis_eval_split_identities(&set, NULL, c->holdout, c->run.seed, fit, test);
    abis_eval_run_opts run = c->run;
    run.progress_label = NULL;
    for (size_t i = 0; i < m; i++) {
        abis_modality_rec rec;
        const abis_modality_kind *kind;
        if (resolve_modality(ctx, c, c->fuse[i], &rec, &kind) != 0)
            goto out;
        if (abis_eval_templates_load(&t[i], &set, NULL, kind, &rec, c->run.threads, rec.name,
                                     &err) != ABIS_OK) {
            cli_fail(ctx, &err);
            goto out;
        }
        if (t[i].attempted == 0) {
            cli_failf(ctx, "invalid", "the set has no '%s' samples (modalities seen: %zu)",
                      c->fuse[i], set.n_modalities);
            goto out;
        }
        abis_eval_scores fs;
        abis_eval_scores_init(&fs, rec.name);
        run.use = fit;
        abis_status st = abis_eval_run_verification(&set, &t[i], c->protocol, &run, &fs, &err);
        if (st != ABIS_OK) {
            abis_eval_scores_free(&fs);
            cli_fail(ctx, &err);
            goto out;
        }
        cal[i] = fit_calibration(ctx, &fs, NULL, NULL);
        abis_eval_scores_free(&fs);
        if (!cal[i])
            goto out;
    }
    /* The held-out part: one pair list, every modality's score per pair. */
    run.use = test;
    abis_eval_protocol proto = c->protocol == ABIS_PROTOCOL_1N ? ABIS_PROTOCOL_ALL : c->protocol;
    if (abis_eval_pairs_make(&set, proto, &run, &pl, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    per = malloc((pl.n ? pl.n : 1) * m * sizeof *per);
    if (!per) {
        cli_failf(ctx, "nomem", "out of memory for %zu pairs", pl.n);
        goto out;
    }
    for (size_t i = 0; i <= m; i++) {
        snprintf(sys[i].name, sizeof sys[i].name, "%s", i < m ? c->fuse[i] : "fused");
        abis_eval_scores_init(&sys[i].scores, sys[i].name);
        abis_eval_ident_init(&sys[i].ident, sys[i].name, 0, ABIS_EVAL_MAX_RANK);
    }
    *n_sys = m + 1;
    for (size_t i = 0; i < m; i++) {
        run.progress_label = c->run.progress_label;
        t[i].attempted = 0; /* count the held-out part only */
        if (abis_eval_compare_pairs(&t[i], &pl, &run, &sys[i].scores, per + i * pl.n, &err) !=
            ABIS_OK) {
            cli_fail(ctx, &err);
            goto out;
        }
    }
    for (size_t k = 0; k < pl.n; k++) {
        const abis_calibration *cs[MAX_SYSTEMS];
        double sc[MAX_SYSTEMS];
        size_t np = 0;
        for (size_t i = 0; i < m; i++)
            if (!isnan(per[i * pl.n + k])) {
                cs[np] = cal[i];
                sc[np++] = per[i * pl.n + k];
            }
        if (np == 0)
            continue;
        double llr, fmr;
        if (abis_fusion_lr(cs, sc, np, &llr, &fmr, &err) != ABIS_OK) {
            cli_fail(ctx, &err);
            goto out;
        }
        uint32_t ia = set.records[pl.p[k].a].identity, ib = set.records[pl.p[k].b].identity;
        int r = pl.p[k].genuine ? abis_eval_add_genuine(&sys[m].scores, llr, ia)
                                : abis_eval_add_impostor(&sys[m].scores, llr, ia, ib);
        if (r != 0) {
            cli_failf(ctx, "nomem", "out of memory");
            goto out;
        }
    }
    /* Failures among the held-out records, per modality (the fused system: all). */
    for (size_t i = 0; i < m; i++) {
        uint64_t att = 0, fte = 0, fta = 0;
        for (size_t r = 0; r < set.n_records; r++) {
            if (!test[r])
                continue;
            const abis_eval_record *rr = &set.records[r];
            int has = rr->path != NULL;
            for (size_t q = 0; q < rr->n_inline; q++)
                has |= !rr->inl[q].modality || strcmp(rr->inl[q].modality, c->fuse[i]) == 0;
            if (!has)
                continue;
            att++;
            if (!t[i].tmpl[r]) {
                if (rr->capture)
                    fta++;
                else
                    fte++;
            }
        }
        sys[i].scores.attempted = att;
        sys[i].scores.failed_to_enrol = fte;
        sys[i].scores.failed_to_acquire = fta;
        sys[m].scores.attempted += att;
        sys[m].scores.failed_to_enrol += fte;
        sys[m].scores.failed_to_acquire += fta;
        t[i].attempted = att, t[i].fte = fte, t[i].fta = fta;
    }
    uint32_t n_ids = 0; /* identities of the held-out part */
    unsigned char *seen = calloc((size_t)set.n_identities + 1, 1);
    for (size_t r = 0; seen && r < set.n_records; r++)
        if (test[r] && !seen[set.records[r].identity]) {
            seen[set.records[r].identity] = 1;
            n_ids++;
        }
    free(seen);
    for (size_t i = 0; i <= m; i++) {
        sys[i].scores.n_identities = n_ids;
        system_metrics(&sys[i], c->bootstrap);
        sys[i].extra = json_pack("{s:s, s:s}", "protocol", abis_eval_protocol_name(proto), "score",
                                 i < m ? "similarity" : "fused log-likelihood ratio");
        if (i < m)
            json_object_set_new(sys[i].extra, "failures", failures_json(&t[i]));
        if (!ctx->json)
            print_system(&sys[i], sys[i].scores.attempted, sys[i].scores.failed_to_enrol,
                         sys[i].scores.failed_to_acquire, i < m ? t[i].fta_reason : "");
    }
    json_t *fusion = json_pack("{s:o, s:f, s:I}", "set", set_json(&set), "holdout", c->holdout,
                               "seed", (json_int_t)c->run.seed);
    json_object_set_new(sys[m].extra, "fusion", fusion);
    rc = 0;
out:
    for (size_t i = 0; i < m; i++) {
        abis_eval_templates_free(&t[i]);
        abis_calibration_free(cal[i]);
    }
    abis_eval_pairs_free(&pl);
    free(per);
    free(fit);
    free(test);
    abis_eval_set_free(&set);
    return rc;
}

int cli_cmd_eval(cli_ctx *ctx, const cli_args *a)
{
    eval_cfg c;
    if (parse_common(ctx, a, &c, 1) != 0 || cli_face_configure(ctx, a) != 0)
        return CLI_EXIT_ERROR;
    if (c.n_fuse && c.n_sets > 1)
        return cli_usage_error(ctx, "--fuse takes one --set (a multimodal JSON Lines set)");
    if (c.n_fuse && c.check)
        return cli_usage_error(ctx, "--check-calibration checks one modality; leave out --fuse");
    system_t sys[MAX_SYSTEMS];
    memset(sys, 0, sizeof sys);
    size_t n = 0;
    int rc = CLI_EXIT_ERROR;
    if (c.n_fuse) {
        if (eval_fused(ctx, &c, sys, &n) != 0)
            goto out;
    } else {
        for (size_t i = 0; i < c.n_sets; i++, n++)
            if (eval_one(ctx, &c, i, &sys[i]) != 0) {
                n++;
                goto out;
            }
    }
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= sys[i].has_vm || sys[i].has_im;
    json_t *report = NULL;
    char written[128];
    if (write_outputs(ctx, &c, sys, n, NULL, &report, written, sizeof written) != 0)
        goto out;
    rc = finish(ctx, &c, report, ok, written);
out:
    for (size_t i = 0; i < n; i++)
        system_free(&sys[i]);
    return rc;
}

/* ---- abis calibrate ------------------------------------------------------------------------ */

int cli_cmd_calibrate(cli_ctx *ctx, const cli_args *a)
{
    eval_cfg c;
    if (parse_common(ctx, a, &c, 0) != 0 || cli_face_configure(ctx, a) != 0)
        return CLI_EXIT_ERROR;
    if (!c.modality)
        return cli_usage_error(ctx, "missing --modality (the declared modality to calibrate)");
    if (c.kind)
        return cli_usage_error(ctx, "calibrate works on a declared modality: leave out --kind");
    if (c.n_sets > 1)
        return cli_usage_error(ctx, "calibrate takes one --set");
    abis_eval_set set;
    abis_eval_templates t;
    memset(&t, 0, sizeof t);
    abis_eval_scores fit, held;
    abis_eval_scores_init(&fit, "fit");
    abis_eval_scores_init(&held, "held-out");
    abis_eval_ident ident;
    abis_eval_ident_init(&ident, "fit", 0, ABIS_EVAL_MAX_RANK);
    unsigned char *mfit = NULL, *mheld = NULL;
    char *json = NULL;
    abis_calibration *cal = NULL;
    abis_error err = {0};
    int rc = CLI_EXIT_ERROR;
    if (load_set(ctx, &c, c.sets[0], &set) != 0)
        goto out;
    abis_modality_rec rec;
    const abis_modality_kind *kind;
    if (resolve_modality(ctx, &c, c.modality, &rec, &kind) != 0)
        goto out;
    if (abis_eval_templates_load(&t, &set, NULL, kind, &rec, c.run.threads, rec.name, &err) !=
        ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    mfit = malloc(set.n_records + 1);
    mheld = malloc(set.n_records + 1);
    if (!mfit || !mheld) {
        cli_failf(ctx, "nomem", "out of memory");
        goto out;
    }
    abis_eval_split_identities(&set, NULL, c.holdout, c.run.seed, mfit, mheld);
    abis_eval_run_opts run = c.run;
    run.use = mfit;
    if (abis_eval_run_verification(&set, &t, c.protocol, &run, &fit, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    abis_ident_scores is = {0};
    if (c.gallery_size) {
        /* Half the fit identities enrolled, the other half's records as
         * non-mated probes: the best-score set the FPIR curve is fitted on. */
        abis_eval_run_opts r1 = run;
        r1.nonmated_share = 0.5;
        if (abis_eval_run_identification(&set, &t, &r1, &ident, &err) != ABIS_OK) {
            cli_fail(ctx, &err);
            goto out;
        }
        is.gallery_size = ident.gallery_size;
        is.nonmated_best = ident.nonmated_best;
        is.n = ident.n_nonmated;
    }
    cal = fit_calibration(ctx, &fit, c.gallery_size ? &is : NULL, &json);
    if (!cal)
        goto out;
    abis_caller caller = cli_caller(ctx, NULL);
    if (abis_modality_set_calibration(ctx->engine, &caller, rec.name, json, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    run.use = mheld;
    if (abis_eval_run_verification(&set, &t, c.protocol, &run, &held, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    if (!ctx->json)
        printf("Calibration of '%s' fitted on %zu genuine and %zu impostor scores (protocol "
               "%s) and stored: model '%s'.\nHeld-out part: %zu genuine and %zu impostor "
               "scores.\n",
               rec.name, fit.n_genuine, fit.n_impostor, abis_eval_protocol_name(c.protocol),
               abis_calibration_model(cal), held.n_genuine, held.n_impostor);
    json_t *chk = calibration_check(cal, &held, c.bootstrap, ctx->json);
    json_t *fpir = json_array();
    if (c.gallery_size) {
        if (!ctx->json)
            printf("\n1:N thresholds at a gallery of %ld (FPIR curve fitted at %zu):\n",
                   c.gallery_size, ident.gallery_size);
        for (int i = 0; i < ABIS_EVAL_N_FPIR_TARGETS; i++) {
            double thr = abis_calibration_fpir_threshold(cal, abis_eval_fpir_targets[i],
                                                         (size_t)c.gallery_size);
            json_array_append_new(fpir, json_pack("{s:f, s:I, s:f}", "target_fpir",
                                                  abis_eval_fpir_targets[i], "gallery_size",
                                                  (json_int_t)c.gallery_size, "threshold", thr));
            if (!ctx->json)
                printf("  FPIR %-6g threshold %.5f\n", abis_eval_fpir_targets[i], thr);
        }
    }
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "modality", rec.name,
                              "model", abis_calibration_model(cal), "fit_genuine",
                              (json_int_t)fit.n_genuine, "fit_impostor", (json_int_t)fit.n_impostor,
                              "heldout_genuine", (json_int_t)held.n_genuine, "heldout_impostor",
                              (json_int_t)held.n_impostor, "check", chk, "fpir_thresholds", fpir,
                              "set", set_json(&set));
        rc = cli_json_print(o) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
    } else {
        json_decref(chk);
        json_decref(fpir);
        rc = CLI_EXIT_OK;
    }
out:
    abis_calibration_free(cal);
    free(json);
    free(mfit);
    free(mheld);
    abis_eval_scores_free(&fit);
    abis_eval_scores_free(&held);
    abis_eval_ident_free(&ident);
    abis_eval_templates_free(&t);
    abis_eval_set_free(&set);
    return rc;
}
