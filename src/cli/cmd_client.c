/*
 * cmd_client.c: `abis client add|list|revoke|rotate`, the relying parties
 * (clients) of abisd.  The API key a client authenticates with is printed
 * once, by add and rotate; the store keeps only a keyed hash of it.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "abis/client.h"
#include "crypto/crypto.h"
#include "util/file.h"

/* Comma-separated names from every value of option `opt` ("a,b" or repeated
 * options), as an array of malloc'd strings.  Returns 0, or -1 after a usage
 * error. */
typedef struct name_list {
    char **names;
    size_t n;
} name_list;

static void name_list_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

static int name_list_parse(const cli_ctx *ctx, const cli_args *a, const char *opt, name_list *l)
{
    memset(l, 0, sizeof *l);
    for (size_t k = 0; k < cli_arg_count(a, opt); k++) {
        const char *v = cli_arg_nth(a, opt, k);
        while (*v) {
            const char *end = strchr(v, ',');
            size_t len = end ? (size_t)(end - v) : strlen(v);
            if (len) {
                char **n = realloc(l->names, (l->n + 1) * sizeof *n);
                char *s = strndup(v, len);
                if (!n || !s) {
                    free(s);
                    if (n)
                        l->names = n;
                    name_list_free(l);
                    return cli_failf(ctx, "nomem", "out of memory"), -1;
                }
                l->names = n;
                l->names[l->n++] = s;
            }
            if (!end)
                break;
            v = end + 1;
        }
    }
    return 0;
}

/* The SHA-256 of the DER certificate in a PEM file (its first certificate). */
static int cert_fingerprint_file(const cli_ctx *ctx, const char *path, unsigned char out[32])
{
    unsigned char *buf;
    size_t len;
    abis_error err = {0};
    if (abis_file_read(path, 1u << 20, &buf, &len, &err) != ABIS_OK)
        return cli_fail(ctx, &err), -1;
    const char *begin = strstr((char *)buf, "-----BEGIN CERTIFICATE-----");
    const char *end = begin ? strstr(begin, "-----END CERTIFICATE-----") : NULL;
    int rc = -1;
    if (!begin || !end) {
        cli_failf(ctx, "invalid", "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                  path);
    } else {
        begin += strlen("-----BEGIN CERTIFICATE-----");
        size_t b64_len = (size_t)(end - begin), der_len = 0;
        unsigned char *der = malloc(b64_len);
        if (!der)
            cli_failf(ctx, "nomem", "out of memory");
        else if (sodium_base642bin(der, b64_len, begin, b64_len, " \r\n\t", &der_len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL) != 0 ||
                 der_len == 0)
            cli_failf(ctx, "invalid", "the certificate in %s is not valid base64", path);
        else {
            abis_sha256(der, der_len, out);
            rc = 0;
        }
        free(der);
    }
    free(buf);
    return rc;
}

int cli_cmd_client_add(cli_ctx *ctx, const cli_args *a)
{
    name_list segs, purs;
    uint32_t ops = 0, rights = 0;
    double rate = 0;
    unsigned char cert[32];
    int have_cert = 0, rc = CLI_EXIT_ERROR;
    abis_error err = {0};
    const char *ops_s = cli_require(ctx, a, "operations");
    if (!ops_s)
        return CLI_EXIT_ERROR;
    if (abis_client_flags_parse(ops_s, 0, &ops, &err) != ABIS_OK ||
        abis_client_flags_parse(cli_arg_get(a, "rights"), 1, &rights, &err) != ABIS_OK)
        return cli_usage_error(ctx, "%s", err.message);
    if (cli_arg_get(a, "rate") && cli_parse_double(ctx, cli_arg_get(a, "rate"), "--rate", &rate))
        return CLI_EXIT_ERROR;
    const char *fp = cli_arg_get(a, "cert-sha256"), *cert_file = cli_arg_get(a, "cert");
    if (fp && cert_file)
        return cli_usage_error(ctx, "give --cert or --cert-sha256, not both");
    if (fp) {
        if (abis_from_hex(fp, cert, sizeof cert) != 0)
            return cli_usage_error(ctx, "--cert-sha256 must be 64 hex digits (the SHA-256 of "
                                        "the DER certificate)");
        have_cert = 1;
    } else if (cert_file) {
        if (cert_fingerprint_file(ctx, cert_file, cert) != 0)
            return CLI_EXIT_ERROR;
        have_cert = 1;
    }
    if (name_list_parse(ctx, a, "segments", &segs) != 0)
        return CLI_EXIT_ERROR;
    if (name_list_parse(ctx, a, "purposes", &purs) != 0) {
        name_list_free(&segs);
        return CLI_EXIT_ERROR;
    }
    abis_client_def def = {
        .name = a->pos[0],
        .segments = (const char *const *)segs.names,
        .n_segments = segs.n,
        .purposes = (const char *const *)purs.names,
        .n_purposes = purs.n,
        .operations = ops,
        .rights = rights,
        .rate_limit = rate,
        .cert_sha256 = have_cert ? cert : NULL,
    };
    char key[ABIS_API_KEY_LEN + 1];
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_client_add(ctx->engine, &c, &def, key, &err) != ABIS_OK) {
        rc = cli_fail(ctx, &err);
    } else if (ctx->json) {
        rc = cli_json_print(json_pack("{s:s, s:s}", "name", a->pos[0], "api_key", key))
                 ? CLI_EXIT_ERROR
                 : CLI_EXIT_OK;
    } else {
        printf("client '%s' added.  Its API key (shown only now; the store keeps a hash):\n%s\n",
               a->pos[0], key);
        rc = CLI_EXIT_OK;
    }
    sodium_memzero(key, sizeof key);
    name_list_free(&segs);
    name_list_free(&purs);
    return rc;
}

int cli_cmd_client_rotate(cli_ctx *ctx, const cli_args *a)
{
    char key[ABIS_API_KEY_LEN + 1];
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    int rc;
    if (abis_client_rotate(ctx->engine, &c, a->pos[0], key, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json) {
        rc = cli_json_print(json_pack("{s:s, s:s}", "name", a->pos[0], "api_key", key))
                 ? CLI_EXIT_ERROR
                 : CLI_EXIT_OK;
    } else {
        printf("client '%s' has a new API key (the old one no longer works; shown only now):\n"
               "%s\n",
               a->pos[0], key);
        rc = CLI_EXIT_OK;
    }
    sodium_memzero(key, sizeof key);
    return rc;
}

int cli_cmd_client_revoke(cli_ctx *ctx, const cli_args *a)
{
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_client_revoke(ctx->engine, &c, a->pos[0], &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    if (ctx->json)
        return cli_json_print(json_pack("{s:s, s:b}", "name", a->pos[0], "revoked", 1))
                   ? CLI_EXIT_ERROR
                   : CLI_EXIT_OK;
    printf("client '%s' revoked: its API key is refused from now on\n", a->pos[0]);
    return CLI_EXIT_OK;
}

static json_t *string_array(const char *const *s, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(s[i]));
    return arr;
}

static void print_joined(const char *const *s, size_t n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "", s[i]);
}

static int client_row(const abis_client_info *ci, void *p)
{
    json_t *arr = p;
    char ops[64], rights[64];
    abis_client_flags_format(ci->operations, 0, ops, sizeof ops);
    abis_client_flags_format(ci->rights, 1, rights, sizeof rights);
    if (arr)
        return json_array_append_new(
                   arr, json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:f, s:s?, s:b, s:I, s:I, s:I}",
                                  "name", ci->name, "key_id", ci->key_id, "segments",
                                  string_array(ci->segments, ci->n_segments), "purposes",
                                  string_array(ci->purposes, ci->n_purposes), "operations", ops,
                                  "rights", rights, "rate_limit", ci->rate_limit, "cert_sha256",
                                  ci->has_cert ? ci->cert_sha256 : NULL, "revoked", ci->revoked,
                                  "created_at", (json_int_t)ci->created_at, "rotated_at",
                                  (json_int_t)ci->rotated_at, "revoked_at",
                                  (json_int_t)ci->revoked_at)) != 0;
    char segs[256], purs[256], when[32];
    print_joined(ci->segments, ci->n_segments, segs, sizeof segs);
    print_joined(ci->purposes, ci->n_purposes, purs, sizeof purs);
    cli_format_time(ci->rotated_at, when);
    printf("%-20s %-16s %-8s %-20s %-28s %-30s %-24s %s\n", ci->name, ci->key_id,
           ci->revoked ? "revoked" : "active", segs, purs, *ops ? ops : "-", *rights ? rights : "-",
           when);
    return 0;
}

static abis_status run_client_list(abis_engine *e, void *arr, abis_error *err)
{
    return abis_client_list(e, client_row, arr, err);
}

int cli_cmd_client_list(cli_ctx *ctx, const cli_args *a)
{
    (void)a;
    char header[256];
    snprintf(header, sizeof header, "%-20s %-16s %-8s %-20s %-28s %-30s %-24s %s\n", "NAME",
             "KEY ID", "STATUS", "SEGMENTS", "PURPOSES", "OPERATIONS", "RIGHTS", "KEY ISSUED");
    return cli_list_command(ctx, "clients", header, run_client_list);
}
