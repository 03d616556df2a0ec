/*
 * cmd_registry.c: the commands that set up a data directory and its
 * registry: init, segments, purposes, modalities, their calibration and the
 * deduplication threshold.
 */
#include "cli/cli.h"
#include "util/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read a whole (small) text file into a malloc'd NUL-terminated buffer;
 * NULL after reporting.  Calibration tables are small: 64 MiB is far past any. */
static char *read_text_file(const cli_ctx *ctx, const char *path)
{
    unsigned char *buf;
    size_t len;
    abis_error err = {0};
    if (abis_file_read(path, 64u << 20, &buf, &len, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        return NULL;
    }
    return (char *)buf;
}

/* ---- init ------------------------------------------------------------------- */

int cli_cmd_init(cli_ctx *ctx, const cli_args *a)
{
    const char *dir = a->n_pos > 0 ? a->pos[0] : ctx->data_dir;
    abis_error err = {0};
    if (abis_store_init(dir, &err) != ABIS_OK)
        return cli_fail(ctx, &err);

    const char *env_key = getenv("ABIS_MASTER_KEY");
    int key_from_env = env_key && *env_key;
    char key_file[4096];
    snprintf(key_file, sizeof key_file, "%s/master.key", dir);
    const char *warning =
        key_from_env
            ? "the master key was taken from $ABIS_MASTER_KEY and no key file was written: "
              "keep that key safe, every later command needs it, and the data cannot be read "
              "without it"
            : "back up the master key file separately from the data directory (not in the "
              "same backup): without it the data cannot be read, and whoever holds both can "
              "read everything";
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s?, s:b, s:s}", "data_dir", dir, "master_key_file",
                              key_from_env ? NULL : key_file, "master_key_from_env", key_from_env,
                              "warning", warning);
        return cli_json_print(o) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
    }
    printf("Created an OpenABIS data directory in %s\n", dir);
    printf("  data store:  %s/abis.db\n", dir);
    printf("  key store:   %s/keys.db\n", dir);
    if (key_from_env)
        printf("  master key:  from $ABIS_MASTER_KEY (no key file written)\n");
    else
        printf("  master key:  %s (mode 0600)\n", key_file);
    fflush(stdout);
    fprintf(stderr, "WARNING: %s.\n", warning);
    return CLI_EXIT_OK;
}

/* ---- segments ---------------------------------------------------------------- */

int cli_cmd_segment_add(cli_ctx *ctx, const cli_args *a)
{
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_segment_add(ctx->engine, &c, a->pos[0], &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json)
        return cli_json_print(json_pack("{s:s}", "segment", a->pos[0])) ? CLI_EXIT_ERROR
                                                                        : CLI_EXIT_OK;
    printf("segment '%s' added\n", a->pos[0]);
    return CLI_EXIT_OK;
}

int cli_list_command(cli_ctx *ctx, const char *key, const char *header, cli_list_runner run)
{
    abis_error err = {0};
    json_t *arr = ctx->json ? json_array() : NULL;
    if (ctx->json && !arr)
        return cli_failf(ctx, "nomem", "out of memory");
    if (!ctx->json)
        fputs(header, stdout);
    if (run(ctx->engine, arr, &err) != ABIS_OK) {
        json_decref(arr);
        return cli_fail(ctx, &err);
    }
    if (ctx->json)
        return cli_json_print(json_pack("{s:o}", key, arr)) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
    return CLI_EXIT_OK;
}

static int segment_row(const abis_segment_info *s, void *p)
{
    json_t *arr = p;
    if (arr)
        return json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "name", s->name,
                                                    "created_at", (json_int_t)s->created_at,
                                                    "subjects", (json_int_t)s->subjects)) != 0;
    char when[32];
    cli_format_time(s->created_at, when);
    printf("%-24s %10llu  %s\n", s->name, (unsigned long long)s->subjects, when);
    return 0;
}

static abis_status run_segment_list(abis_engine *e, void *arr, abis_error *err)
{
    return abis_segment_list(e, segment_row, arr, err);
}

int cli_cmd_segment_list(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    char header[128];
    snprintf(header, sizeof header, "%-24s %10s  %s\n", "SEGMENT", "SUBJECTS", "CREATED");
    return cli_list_command(ctx, "segments", header, run_segment_list);
}

/* ---- purposes ---------------------------------------------------------------- */

static const char *basis_name(abis_legal_basis b)
{
    return b == ABIS_BASIS_STATUTORY ? "statutory" : "consent";
}

int cli_cmd_purpose_add(cli_ctx *ctx, const cli_args *a)
{
    const char *basis = cli_require(ctx, a, "basis");
    if (!basis)
        return CLI_EXIT_ERROR;
    const char *fmr_s = cli_require(ctx, a, "fmr");
    if (!fmr_s)
        return CLI_EXIT_ERROR;
    abis_purpose_def def = {
        .name = a->pos[0],
        .legal_ref = cli_arg_get(a, "legal-ref"),
        .description = cli_arg_get(a, "description"),
    };
    if (strcmp(basis, "consent") == 0)
        def.basis = ABIS_BASIS_CONSENT;
    else if (strcmp(basis, "statutory") == 0)
        def.basis = ABIS_BASIS_STATUTORY;
    else
        return cli_usage_error(ctx, "--basis must be 'consent' or 'statutory', not '%s'", basis);
    if (cli_parse_double(ctx, fmr_s, "--fmr", &def.target_fmr) != 0)
        return CLI_EXIT_ERROR;

    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_purpose_add(ctx->engine, &c, &def, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json)
        return cli_json_print(json_pack("{s:s, s:s, s:f}", "purpose", def.name, "basis",
                                        basis_name(def.basis), "target_fmr", def.target_fmr))
                   ? CLI_EXIT_ERROR
                   : CLI_EXIT_OK;
    printf("purpose '%s' added (%s, target FMR %g)\n", def.name, basis_name(def.basis),
           def.target_fmr);
    return CLI_EXIT_OK;
}

static int purpose_row(const abis_purpose_info *p, void *ctxp)
{
    json_t *arr = ctxp;
    if (arr)
        return json_array_append_new(arr, json_pack("{s:s, s:s, s:f, s:s, s:s, s:I}", "name",
                                                    p->name, "basis", basis_name(p->basis),
                                                    "target_fmr", p->target_fmr, "legal_ref",
                                                    p->legal_ref, "description", p->description,
                                                    "created_at", (json_int_t)p->created_at)) != 0;
    printf("%-24s %-10s %-9g %s%s%s%s\n", p->name, basis_name(p->basis), p->target_fmr,
           p->legal_ref[0] ? "[" : "", p->legal_ref, p->legal_ref[0] ? "] " : "", p->description);
    return 0;
}

static abis_status run_purpose_list(abis_engine *e, void *arr, abis_error *err)
{
    return abis_purpose_list(e, purpose_row, arr, err);
}

int cli_cmd_purpose_list(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    char header[128];
    snprintf(header, sizeof header, "%-24s %-10s %-9s %s\n", "PURPOSE", "BASIS", "FMR",
             "[LEGAL REF] DESCRIPTION");
    return cli_list_command(ctx, "purposes", header, run_purpose_list);
}

/* ---- modalities -------------------------------------------------------------- */

int cli_cmd_modality_add(cli_ctx *ctx, const cli_args *a)
{
    const char *kind = cli_require(ctx, a, "kind");
    if (!kind)
        return CLI_EXIT_ERROR;
    /* --dim is for kinds whose size the operator declares (vectors); the
     * engine says when it is missing or not wanted. */
    const char *dim_s = cli_arg_get(a, "dim");
    long dim = 0;
    /* An upper bound only to keep the number an int; the engine sets the real limits. */
    if (dim_s && cli_parse_int(ctx, dim_s, "--dim", 1, 1L << 20, &dim) != 0)
        return CLI_EXIT_ERROR;
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_modality_add(ctx->engine, &c, a->pos[0], kind, (int)dim, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json)
        return cli_json_print(json_pack("{s:s, s:s, s:i}", "modality", a->pos[0], "kind", kind,
                                        "dim", (int)dim))
                   ? CLI_EXIT_ERROR
                   : CLI_EXIT_OK;
    if (dim)
        printf("modality '%s' added (%s, %ld values)\n", a->pos[0], kind, dim);
    else
        printf("modality '%s' added (%s)\n", a->pos[0], kind);
    return CLI_EXIT_OK;
}

static int modality_row(const abis_modality_info *m, void *p)
{
    json_t *arr = p;
    if (arr)
        return json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:s, s:I}", "name", m->name,
                                                    "kind", m->kind, "dim", m->dim, "calibration",
                                                    m->calibration, "created_at",
                                                    (json_int_t)m->created_at)) != 0;
    printf("%-16s %-8s %6d  %s\n", m->name, m->kind, m->dim, m->calibration);
    return 0;
}

static abis_status run_modality_list(abis_engine *e, void *arr, abis_error *err)
{
    return abis_modality_list(e, modality_row, arr, err);
}

int cli_cmd_modality_list(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    char header[128];
    snprintf(header, sizeof header, "%-16s %-8s %6s  %s\n", "MODALITY", "KIND", "DIM",
             "CALIBRATION");
    return cli_list_command(ctx, "modalities", header, run_modality_list);
}

int cli_cmd_modality_calibrate(cli_ctx *ctx, const cli_args *a)
{
    const char *file = cli_require(ctx, a, "file");
    if (!file)
        return CLI_EXIT_ERROR;
    char *text = read_text_file(ctx, file);
    if (!text)
        return CLI_EXIT_ERROR;
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    abis_status st = abis_modality_set_calibration(ctx->engine, &c, a->pos[0], text, &err);
    free(text);
    if (st != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json)
        return cli_json_print(
                   json_pack("{s:s, s:s}", "modality", a->pos[0], "calibration_file", file))
                   ? CLI_EXIT_ERROR
                   : CLI_EXIT_OK;
    printf("calibration of modality '%s' replaced from %s\n", a->pos[0], file);
    return CLI_EXIT_OK;
}

int cli_cmd_dedup_set(cli_ctx *ctx, const cli_args *a)
{
    const char *fmr_s = cli_require(ctx, a, "fmr");
    if (!fmr_s)
        return CLI_EXIT_ERROR;
    double fmr;
    if (cli_parse_double(ctx, fmr_s, "--fmr", &fmr) != 0)
        return CLI_EXIT_ERROR;
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_dedup_set_fmr(ctx->engine, &c, fmr, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json)
        return cli_json_print(json_pack("{s:f}", "dedup_fmr", fmr)) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
    printf("deduplication threshold set to FMR %g\n", fmr);
    return CLI_EXIT_OK;
}
