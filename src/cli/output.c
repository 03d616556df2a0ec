/*
 * output.c: how `abis` speaks: JSON objects on stdout for --json, errors as
 * `abis: <message>` on stderr (and as a JSON error object with --json), usage
 * hints, and the small formatters (times, positions) the commands share.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* 15 significant digits: a decimal the operator typed (1e-6) comes back as typed. */
#define CLI_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

int cli_json_print(json_t *obj)
{
    if (!obj) {
        fprintf(stderr, "abis: out of memory building the JSON output\n");
        return -1;
    }
    int rc = json_dumpf(obj, stdout, CLI_JSON_FLAGS);
    json_decref(obj);
    if (rc != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "abis: cannot write to standard output\n");
        return -1;
    }
    return 0;
}

/* The one place errors leave the CLI: stderr always, stdout as JSON with --json. */
static int report(const cli_ctx *ctx, const char *code, const char *message, json_t *extra)
{
    fflush(stdout);
    fprintf(stderr, "abis: %s\n", message);
    if (ctx && ctx->json) {
        json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);
        if (e && extra)
            json_object_update(e, extra);
        cli_json_print(json_pack("{s:o*}", "error", e));
    }
    json_decref(extra);
    return CLI_EXIT_ERROR;
}

int cli_fail(const cli_ctx *ctx, const abis_error *err)
{
    return cli_fail_with(ctx, err, NULL);
}

int cli_fail_with(const cli_ctx *ctx, const abis_error *err, json_t *extra)
{
    const char *msg = err->message[0] ? err->message : abis_status_name(err->status);
    return report(ctx, abis_status_name(err->status), msg, extra);
}

int cli_failf(const cli_ctx *ctx, const char *code, const char *fmt, ...)
{
    char msg[ABIS_ERROR_MESSAGE_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return report(ctx, code, msg, NULL);
}

void cli_print_usage_line(FILE *out, const cli_command *cmd)
{
    if (cmd)
        fprintf(out, "usage: abis %s%s%s\n", cmd->name, cmd->args[0] ? " " : "", cmd->args);
    else
        fprintf(out, "usage: abis [--data DIR] [--json] [--actor NAME] COMMAND [ARGS]\n");
}

int cli_usage_error(const cli_ctx *ctx, const char *fmt, ...)
{
    char msg[ABIS_ERROR_MESSAGE_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(ctx, "usage", msg, NULL);
    const cli_command *cmd = ctx ? ctx->cmd : NULL;
    cli_print_usage_line(stderr, cmd);
    if (cmd)
        fprintf(stderr, "       ('abis %s --help' for more)\n", cmd->name);
    else
        fprintf(stderr, "       ('abis --help' lists the commands)\n");
    return CLI_EXIT_ERROR;
}

void cli_format_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "-");
}

const char *cli_position_name(int position, char buf[16])
{
    /* Shown as the number the engine stores (abis.h: fingers 1-10, eyes 1 right and
     * 2 left; which reading applies is the modality's business); 0: not applicable. */
    if (position <= 0)
        snprintf(buf, 16, "-");
    else
        snprintf(buf, 16, "%d", position);
    return buf;
}
