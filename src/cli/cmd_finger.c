/*
 * cmd_finger.c: `abis finger extract`: fingerprint images through our
 * extractor into a standard minutiae record (ISO/IEC 19794-2:2005 or ANSI
 * INCITS 378-2004) that other vendors' matchers read.  No data directory is
 * opened: nothing is stored, nothing is audited.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "modality/finger/finger.h"

/* FILE[@POSITION] into the file and the position (0 when none is given). */
static int split_position(const cli_ctx *ctx, char *spec, int *position)
{
    *position = 0;
    char *at = strrchr(spec, '@');
    if (!at || strpbrk(at + 1, "./"))
        return 0;
    long p;
    if (cli_parse_int(ctx, at + 1, "finger position", 1, 10, &p) != 0)
        return -1;
    *at = '\0';
    *position = (int)p;
    return 0;
}

int cli_cmd_finger_extract(cli_ctx *ctx, const cli_args *a)
{
    const char *fmt = cli_arg_get(a, "format"), *output = cli_require(ctx, a, "output");
    if (!output)
        return CLI_EXIT_ERROR;
    abis_finger_record_format format = ABIS_FINGER_RECORD_ISO;
    if (fmt && strcmp(fmt, "ansi") == 0)
        format = ABIS_FINGER_RECORD_ANSI;
    else if (fmt && strcmp(fmt, "iso") != 0)
        return cli_usage_error(ctx, "--format: '%s' is neither iso nor ansi", fmt);
    double ppi = 0;
    const char *ppi_s = cli_arg_get(a, "ppi");
    if (ppi_s && cli_parse_double(ctx, ppi_s, "--ppi", &ppi) != 0)
        return CLI_EXIT_ERROR;
    size_t n = a->n_pos;
    abis_finger_template *t = calloc(n, sizeof *t);
    const abis_finger_template **views = calloc(n, sizeof *views);
    json_t *list = ctx->json ? json_array() : NULL;
    int rc = CLI_EXIT_ERROR;
    if (!t || !views || (ctx->json && !list)) {
        cli_failf(ctx, "nomem", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *spec = strdup(a->pos[i]);
        int position;
        if (!spec) {
            cli_failf(ctx, "nomem", "out of memory");
            goto out;
        }
        if (split_position(ctx, spec, &position) != 0) {
            free(spec);
            goto out;
        }
        abis_image img;
        abis_error err = {0};
        abis_finger_info info;
        abis_status st = abis_image_read_file(spec, &img, &err);
        if (st == ABIS_OK) {
            st = abis_finger_extract(&img, ppi, &t[i], &info, &err);
            abis_wipe_free(img.pixels, (size_t)img.width * (size_t)img.height);
            if (st != ABIS_OK)
                abis_error_prefix(&err, "%s", spec);
        }
        if (st != ABIS_OK) {
            free(spec);
            cli_fail(ctx, &err);
            goto out;
        }
        t[i].position = position;
        views[i] = &t[i];
        if (list)
            json_array_append_new(list, json_pack("{s:s, s:i, s:i, s:i, s:f}", "file", spec,
                                                  "position", position, "minutiae", t[i].n,
                                                  "quality", t[i].quality, "ppi", info.ppi));
        else
            fprintf(stderr, "%s: finger %d, %d minutiae, quality %d (read at %.0f ppi)\n", spec,
                    position, t[i].n, t[i].quality, info.ppi);
        free(spec);
    }
    unsigned char *rec;
    size_t len;
    abis_error err = {0};
    if (abis_finger_record_write(format, views, (int)n, &rec, &len, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        goto out;
    }
    FILE *f = strcmp(output, "-") == 0 ? stdout : fopen(output, "wb");
    int bad = !f || fwrite(rec, 1, len, f) != len;
    if (f && f != stdout)
        bad |= fclose(f) != 0;
    else if (f)
        bad |= fflush(f) != 0;
    int saved = errno;
    abis_wipe_free(rec, len);
    if (bad) {
        cli_failf(ctx, "io", "cannot write %s: %s", output, strerror(saved));
        goto out;
    }
    if (list && strcmp(output, "-") != 0) {
        rc = cli_json_print(json_pack("{s:s, s:s, s:I, s:O}", "output", output, "format",
                                      format == ABIS_FINGER_RECORD_ISO ? "iso" : "ansi", "bytes",
                                      (json_int_t)len, "views", list)) == 0
                 ? CLI_EXIT_OK
                 : CLI_EXIT_ERROR;
    } else {
        rc = CLI_EXIT_OK;
    }
out:
    if (list)
        json_decref(list);
    if (t)
        abis_wipe_free(t, n * sizeof *t);
    free(views);
    return rc;
}
