/*
 * cmd_audit.c: the audit commands: verify the hash chain and checkpoint
 * signatures, export the log as JSON Lines, print the signing public key.
 * The data directory is opened read-only for them.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_cmd_audit_verify(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    abis_audit_report r;
    memset(&r, 0, sizeof r);
    abis_error err = {0};
    if (abis_audit_verify(ctx->engine, &r, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json) {
        json_t *o =
            json_pack("{s:b, s:I, s:I, s:I}", "ok", r.ok, "entries", (json_int_t)r.entries,
                      "checkpoints", (json_int_t)r.checkpoints, "unsealed", (json_int_t)r.unsealed);
        if (o && !r.ok) {
            json_object_set_new(o, "first_bad_seq", json_integer((json_int_t)r.first_bad_seq));
            json_object_set_new(o, "problem", json_string(r.problem));
        }
        if (cli_json_print(o) != 0)
            return CLI_EXIT_ERROR;
    } else if (r.ok) {
        printf("audit log intact: %llu entries, %llu signed checkpoints, %llu entries after "
               "the last checkpoint\n",
               (unsigned long long)r.entries, (unsigned long long)r.checkpoints,
               (unsigned long long)r.unsealed);
    } else {
        printf("audit log BROKEN at entry %lld\n  problem: %s\n  checked: %llu entries and %llu "
               "checkpoints\n",
               (long long)r.first_bad_seq, r.problem[0] ? r.problem : "(no detail)",
               (unsigned long long)r.entries, (unsigned long long)r.checkpoints);
    }
    return r.ok ? CLI_EXIT_OK : CLI_EXIT_NO;
}

int cli_cmd_audit_export(cli_ctx *ctx, const cli_args *a)
{
    const char *path = cli_arg_get(a, "output");
    FILE *out = stdout;
    if (path && strcmp(path, "-") != 0) {
        /* The log names subjects and actors: not for other users of the machine. */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR);
        if (fd < 0 || !(out = fdopen(fd, "w"))) {
            if (fd >= 0)
                close(fd);
            return cli_failf(ctx, "io", "cannot write '%s': %s", path, strerror(errno));
        }
    } else {
        path = NULL;
    }
    abis_error err = {0};
    abis_status st = abis_audit_export(ctx->engine, out, &err);
    int bad_write = out == stdout ? fflush(out) != 0 : fclose(out) != 0;
    if (st != ABIS_OK)
        return cli_fail(ctx, &err);
    if (bad_write)
        return cli_failf(ctx, "io", "cannot write '%s': %s", path ? path : "standard output",
                         strerror(errno));
    if (path) {
        if (ctx->json)
            return cli_json_print(json_pack("{s:s}", "output", path)) ? CLI_EXIT_ERROR
                                                                      : CLI_EXIT_OK;
        printf("audit log exported to %s\n", path);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_audit_pubkey(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    char key[65];
    abis_error err = {0};
    if (abis_audit_public_key(ctx->engine, key, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json)
        return cli_json_print(json_pack("{s:s, s:s}", "algorithm", "ed25519", "public_key", key))
                   ? CLI_EXIT_ERROR
                   : CLI_EXIT_OK;
    printf("%s\n", key);
    return CLI_EXIT_OK;
}
