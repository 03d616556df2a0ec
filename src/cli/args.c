/*
 * args.c: reading a command line: the option parser every command shares,
 * the global options, numbers, template positions, SUBJECT arguments and
 * --template MODALITY=FILE[@POSITION] values.
 *
 * Options follow GNU habits: `--name VALUE`, `--name=VALUE`, `-k N`, `-kN`,
 * flags without values, `--` ends the options, a lone `-` is an argument
 * (standard input).  Global options may come before or after the command.
 */
#include "cli/cli.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "abis/face.h"
#include "modality/finger/finger.h"
#include "template/vector.h"
#include "util/file.h"

/* ---- global options ------------------------------------------------------- */

/* Split "--name=value" into the name length and the value (NULL without '='). */
static size_t long_name_len(const char *arg, const char **inline_value)
{
    const char *eq = strchr(arg, '=');
    *inline_value = eq ? eq + 1 : NULL;
    return eq ? (size_t)(eq - arg) : strlen(arg);
}

static int is_long(const char *arg, size_t len, const char *name)
{
    return len == strlen(name) && strncmp(arg, name, len) == 0;
}

int cli_global_option(cli_ctx *ctx, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    const char *value;
    size_t len = long_name_len(arg + 2, &value);
    const char *name = arg + 2;
    if (is_long(name, len, "json")) {
        if (value) {
            cli_usage_error(ctx, "option '--json' takes no value");
            return -1;
        }
        ctx->json = 1;
        return 1;
    }
    int is_data = is_long(name, len, "data"), is_actor = is_long(name, len, "actor");
    if (!is_data && !is_actor)
        return 0;
    if (!value) {
        if (*i + 1 >= argc) {
            cli_usage_error(ctx, "option '--%s' needs a value", is_data ? "data" : "actor");
            return -1;
        }
        value = argv[++*i];
    }
    if (!*value) {
        cli_usage_error(ctx, "option '--%s' needs a non-empty value", is_data ? "data" : "actor");
        return -1;
    }
    if (is_data) {
        ctx->data_dir = value;
    } else {
        if (strlen(value) > ABIS_TEXT_MAX) {
            cli_usage_error(ctx, "--actor is longer than %d characters", ABIS_TEXT_MAX);
            return -1;
        }
        ctx->actor = value;
    }
    return 1;
}

/* ---- the command parser -------------------------------------------------- */

static int find_long(const cli_optspec *spec, const char *name, size_t len)
{
    for (int k = 0; spec && spec[k].name; k++)
        if (is_long(name, len, spec[k].name))
            return k;
    return -1;
}

static int find_short(const cli_optspec *spec, char c)
{
    for (int k = 0; spec && spec[k].name; k++)
        if (spec[k].short_name && spec[k].short_name == c)
            return k;
    return -1;
}

/* Record option k's value, refusing a second value for a non-repeatable option. */
static int add_value(cli_ctx *ctx, cli_args *a, int k, const char *value)
{
    if (!a->spec[k].repeatable) {
        for (size_t j = 0; j < a->n_vals; j++)
            if (a->which[j] == k) {
                cli_usage_error(ctx, "option '--%s' given more than once", a->spec[k].name);
                return -1;
            }
    }
    a->vals[a->n_vals] = value;
    a->which[a->n_vals] = k;
    a->n_vals++;
    return 0;
}

int cli_args_parse(cli_ctx *ctx, const cli_command *cmd, int argc, char **argv, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->spec = cmd->opts;
    size_t room = (size_t)argc + 1;
    a->vals = calloc(room, sizeof *a->vals);
    a->which = calloc(room, sizeof *a->which);
    a->pos = calloc(room, sizeof *a->pos);
    if (!a->vals || !a->which || !a->pos) {
        cli_failf(ctx, "nomem", "out of memory");
        return -1;
    }
    int help = 0, only_args = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_args || arg[0] != '-' || arg[1] == '\0') {
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            help = 1;
            continue;
        }
        int g = cli_global_option(ctx, argc, argv, &i);
        if (g < 0)
            return -1;
        if (g > 0)
            continue;
        int k;
        const char *value = NULL;
        if (arg[1] == '-') {
            size_t len = long_name_len(arg + 2, &value);
            k = find_long(a->spec, arg + 2, len);
            if (k < 0) {
                cli_usage_error(ctx, "unknown option '%.*s' for 'abis %s'", (int)len + 2, arg,
                                cmd->name);
                return -1;
            }
        } else {
            k = find_short(a->spec, arg[1]);
            if (k < 0) {
                cli_usage_error(ctx, "unknown option '%s' for 'abis %s'", arg, cmd->name);
                return -1;
            }
            if (arg[2])
                value = arg + 2;
        }
        const cli_optspec *o = &a->spec[k];
        if (!o->has_value) {
            if (value) {
                cli_usage_error(ctx, "option '--%s' takes no value", o->name);
                return -1;
            }
            value = "";
        } else if (!value) {
            if (i + 1 >= argc) {
                cli_usage_error(ctx, "option '--%s' needs a value", o->name);
                return -1;
            }
            value = argv[++i];
        }
        if (add_value(ctx, a, k, value) != 0)
            return -1;
    }
    if (help)
        return 1;
    if ((int)a->n_pos < cmd->min_pos) {
        cli_usage_error(ctx, "'abis %s' is missing %s", cmd->name,
                        cmd->min_pos - (int)a->n_pos > 1 ? "arguments" : "an argument");
        return -1;
    }
    if (cmd->max_pos >= 0 && (int)a->n_pos > cmd->max_pos) {
        cli_usage_error(ctx, "unexpected argument '%s'", a->pos[cmd->max_pos]);
        return -1;
    }
    return 0;
}

void cli_args_free(cli_args *a)
{
    free(a->vals);
    free(a->which);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

static int spec_index(const cli_args *a, const char *name)
{
    return find_long(a->spec, name, strlen(name));
}

const char *cli_arg_get(const cli_args *a, const char *name)
{
    int k = spec_index(a, name);
    const char *v = NULL;
    for (size_t j = 0; k >= 0 && j < a->n_vals; j++)
        if (a->which[j] == k)
            v = a->vals[j];
    return v;
}

size_t cli_arg_count(const cli_args *a, const char *name)
{
    int k = spec_index(a, name);
    size_t n = 0;
    for (size_t j = 0; k >= 0 && j < a->n_vals; j++)
        n += a->which[j] == k;
    return n;
}

const char *cli_arg_nth(const cli_args *a, const char *name, size_t i)
{
    int k = spec_index(a, name);
    for (size_t j = 0; k >= 0 && j < a->n_vals; j++)
        if (a->which[j] == k && i-- == 0)
            return a->vals[j];
    return NULL;
}

const char *cli_require(const cli_ctx *ctx, const cli_args *a, const char *name)
{
    const char *v = cli_arg_get(a, name);
    if (!v || !*v) {
        cli_usage_error(ctx, "'abis %s' needs --%s", ctx->cmd->name, name);
        return NULL;
    }
    return v;
}

/* ---- values ----------------------------------------------------------------- */

int cli_parse_double(const cli_ctx *ctx, const char *s, const char *what, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) {
        cli_usage_error(ctx, "%s: '%s' is not a number", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_int(const cli_ctx *ctx, const char *s, const char *what, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE || v < lo || v > hi) {
        cli_usage_error(ctx, "%s: '%s' is not a whole number from %ld to %ld", what, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_position(const char *s)
{
    /* abis.h: eye 1 right / 2 left; fingers 1-10 (ISO/IEC 19794-2 finger positions). */
    if (strcmp(s, "right") == 0)
        return 1;
    if (strcmp(s, "left") == 0)
        return 2;
    if (!*s || strlen(s) > 2)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    int v = atoi(s);
    return v >= 0 && v <= 10 ? v : -1;
}

/* ---- subjects ---------------------------------------------------------------- */

int cli_resolve_subject(const cli_ctx *ctx, const char *arg, abis_id *id)
{
    abis_error err = {0};
    const char *slash = strchr(arg, '/');
    if (!slash) {
        if (strlen(arg) != ABIS_ID_HEX_LEN) {
            cli_failf(ctx, "invalid",
                      "'%s' is neither a subject id (32 hex digits) nor SEGMENT/REF", arg);
            return -1;
        }
        if (abis_id_from_hex(arg, id, &err) != ABIS_OK) {
            cli_fail(ctx, &err);
            return -1;
        }
        return 0;
    }
    /* Segment names cannot hold '/', so the first one separates the reference. */
    size_t seg_len = (size_t)(slash - arg);
    if (seg_len == 0 || seg_len > ABIS_NAME_MAX || !slash[1]) {
        cli_failf(ctx, "invalid", "'%s' is not SEGMENT/REF (both parts are needed)", arg);
        return -1;
    }
    char segment[ABIS_NAME_MAX + 1];
    memcpy(segment, arg, seg_len);
    segment[seg_len] = '\0';
    if (abis_subject_find_ref(ctx->engine, segment, slash + 1, id, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        return -1;
    }
    return 0;
}

/* ---- templates ---------------------------------------------------------------- */

/* Split a copy of "MODALITY=FILE[@POSITION]" in place.  The part after the
 * last '@' is a position when it holds no '.' or '/' (so "scan@2x.npy" stays
 * a file name); a position that is not valid is an error then. */
static int split_template_spec(const cli_ctx *ctx, const char *opt, char *spec, const char **file,
                               int *position)
{
    char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        cli_usage_error(ctx, "--%s '%s': expected MODALITY=FILE[@POSITION]", opt, spec);
        return -1;
    }
    *eq = '\0';
    *file = eq + 1;
    *position = 0;
    char *at = strrchr(eq + 1, '@');
    if (at && !strpbrk(at + 1, "./")) {
        int p = cli_parse_position(at + 1);
        if (p < 0) {
            cli_usage_error(ctx, "--%s %s=%s: position '%s' is not 1-10, 'left' or 'right'", opt,
                            spec, eq + 1, at + 1);
            return -1;
        }
        *at = '\0';
        *position = p;
        if (at == eq + 1) {
            cli_usage_error(ctx, "--%s %s: the file name is missing", opt, spec);
            return -1;
        }
    }
    return 0;
}

void cli_templates_free(cli_templates *t)
{
    for (size_t i = 0; i < t->n; i++) {
        /* Probe vectors are biometric data: wiped, not just freed. */
        if (t->vectors)
            abis_wipe_free(t->vectors[i], t->in ? t->in[i].dim * sizeof(float) : 0);
        if (t->captures)
            abis_wipe_free(t->captures[i], t->in ? t->in[i].capture_size : 0);
        free(t->specs ? t->specs[i] : NULL);
    }
    free(t->in);
    free(t->vectors);
    free(t->captures);
    free(t->specs);
    memset(t, 0, sizeof *t);
}

/* The name of the one declared modality of kind `kind` (for --iris-image,
 * --finger-image, --face-photo). */
typedef struct kind_find {
    const char *kind;
    char name[ABIS_NAME_MAX + 1];
    int found;
} kind_find;

static int find_kind(const abis_modality_info *m, void *ctx)
{
    kind_find *k = ctx;
    if (strcmp(m->kind, k->kind) == 0) {
        if (!k->found)
            snprintf(k->name, sizeof k->name, "%s", m->name);
        k->found++;
    }
    return 0;
}

/* Read a whole capture file (at most 64 MiB); NULL after reporting. */
static unsigned char *read_capture(const cli_ctx *ctx, const char *path, size_t *len)
{
    unsigned char *buf;
    abis_error err = {0};
    if (abis_file_read(path, 64u << 20, &buf, len, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        return NULL;
    }
    return buf;
}

/* Options that give a capture of the one declared modality of a kind. */
static const struct {
    const char *opt, *kind, *example;
} capture_opts[CLI_CAPTURE_KINDS] = {
    {"iris-image", "iriscode", "abis modality add iris --kind iriscode"},
    {"finger-image", "minutiae", "abis modality add finger --kind minutiae"},
    {"face-photo", "face", "abis modality add face --kind face"},
};

/* The modality of kind capture_opts[c].kind into t->capture_modality[c];
 * 0, or -1 after reporting. */
static int capture_modality(const cli_ctx *ctx, cli_templates *t, size_t c)
{
    kind_find k = {.kind = capture_opts[c].kind};
    abis_error err = {0};
    if (abis_modality_list(ctx->engine, find_kind, &k, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        return -1;
    }
    if (k.found != 1) {
        if (k.found)
            cli_failf(ctx, "invalid",
                      "--%s: %d modalities are of kind %s; use --template NAME=FILE to say which",
                      capture_opts[c].opt, k.found, capture_opts[c].kind);
        else
            cli_failf(ctx, "invalid", "--%s: no modality of kind %s is declared (%s)",
                      capture_opts[c].opt, capture_opts[c].kind, capture_opts[c].example);
        return -1;
    }
    snprintf(t->capture_modality[c], sizeof t->capture_modality[c], "%s", k.name);
    return 0;
}

int cli_face_configure(const cli_ctx *ctx, const cli_args *a)
{
    size_t n = cli_arg_count(a, "face-option");
    const char *models = cli_arg_get(a, "face-models");
    if (n == 0 && !models)
        return 0;
    abis_face_options o;
    abis_error err = {0};
    abis_face_configured(&o);
    if (models)
        o.models_dir = models;
    for (size_t i = 0; i < n; i++)
        if (abis_face_options_parse(&o, cli_arg_nth(a, "face-option", i), &err) != ABIS_OK) {
            cli_usage_error(ctx, "--face-option: %s", err.message);
            return -1;
        }
    if (abis_face_configure(&o, &err) != ABIS_OK) {
        cli_fail(ctx, &err);
        return -1;
    }
    return 0;
}

/* One value of a template option, before it is read: where it came from. */
typedef struct tmpl_src {
    const char *opt;   /* the option it was given with */
    const char *value; /* its value */
    int capture;       /* 1: an image or record file for `modality` */
    const char *modality;
} tmpl_src;

/* Give a capture input its own copy of the file's bytes. */
static int set_capture(cli_templates *t, size_t i, const unsigned char *buf, size_t len)
{
    t->captures[i] = malloc(len ? len : 1);
    if (!t->captures[i])
        return -1;
    memcpy(t->captures[i], buf, len);
    t->in[i].capture = t->captures[i];
    t->in[i].capture_size = len;
    return 0;
}

/* Grow t's arrays to hold `n` inputs (zeroed). */
static int templates_reserve(cli_templates *t, size_t n)
{
    abis_template_input *in = realloc(t->in, n * sizeof *in);
    if (in)
        t->in = in;
    float **v = in ? realloc(t->vectors, n * sizeof *v) : NULL;
    if (v)
        t->vectors = v;
    unsigned char **c = v ? realloc(t->captures, n * sizeof *c) : NULL;
    if (c)
        t->captures = c;
    char **s = c ? realloc(t->specs, n * sizeof *s) : NULL;
    if (!s)
        return -1;
    t->specs = s;
    for (size_t i = t->n; i < n; i++) {
        memset(&t->in[i], 0, sizeof t->in[i]);
        t->vectors[i] = NULL;
        t->captures[i] = NULL;
        t->specs[i] = NULL;
    }
    return 0;
}

int cli_templates_load(const cli_ctx *ctx, const cli_args *a, const char *opt, cli_templates *t)
{
    memset(t, 0, sizeof *t);
    if (cli_face_configure(ctx, a) != 0)
        return -1;
    size_t n_vec = cli_arg_count(a, opt), n = n_vec, n_cap[CLI_CAPTURE_KINDS];
    for (size_t c = 0; c < CLI_CAPTURE_KINDS; c++) {
        n_cap[c] = cli_arg_count(a, capture_opts[c].opt);
        n += n_cap[c];
    }
    if (n == 0) {
        cli_usage_error(ctx,
                        "'abis %s' needs --%s MODALITY=FILE, --iris-image FILE, --finger-image "
                        "FILE or --face-photo FILE",
                        ctx->cmd->name, opt);
        return -1;
    }
    double ppi = 0;
    const char *ppi_s = cli_arg_get(a, "ppi");
    if (ppi_s && (cli_parse_double(ctx, ppi_s, "--ppi", &ppi) != 0 || ppi <= 0)) {
        if (ppi <= 0)
            cli_usage_error(ctx, "--ppi: '%s' is not a positive resolution", ppi_s);
        return -1;
    }
    for (size_t c = 0; c < CLI_CAPTURE_KINDS; c++)
        if (n_cap[c] && capture_modality(ctx, t, c) != 0)
            return -1;
    tmpl_src *src = calloc(n, sizeof *src);
    if (!src || templates_reserve(t, n) != 0) {
        free(src);
        cli_templates_free(t);
        cli_failf(ctx, "nomem", "out of memory");
        return -1;
    }
    size_t ns = 0; /* the --OPT values first, then each capture option's in turn */
    for (size_t j = 0; j < n_vec; j++)
        src[ns++] = (tmpl_src){opt, cli_arg_nth(a, opt, j), 0, NULL};
    for (size_t c = 0; c < CLI_CAPTURE_KINDS; c++)
        for (size_t j = 0; j < n_cap[c]; j++)
            src[ns++] = (tmpl_src){capture_opts[c].opt, cli_arg_nth(a, capture_opts[c].opt, j),
                                   1, t->capture_modality[c]};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t at = t->n;
        if (templates_reserve(t, at + 1) != 0) {
            cli_failf(ctx, "nomem", "out of memory");
            rc = -1;
            break;
        }
        t->n = at + 1;
        /* An image option's FILE[@POSITION] is read as MODALITY=FILE[@POSITION]. */
        size_t need = strlen(src[i].value) + (src[i].modality ? strlen(src[i].modality) + 2 : 1);
        t->specs[at] = malloc(need);
        if (!t->specs[at]) {
            cli_failf(ctx, "nomem", "out of memory");
            rc = -1;
            break;
        }
        if (src[i].modality)
            snprintf(t->specs[at], need, "%s=%s", src[i].modality, src[i].value);
        else
            snprintf(t->specs[at], need, "%s", src[i].value);
        const char *file;
        int position;
        if (split_template_spec(ctx, src[i].opt, t->specs[at], &file, &position) != 0) {
            rc = -1;
            break;
        }
        const char *at_sign = strrchr(src[i].value, '@');
        if (strcmp(src[i].opt, "finger-image") == 0 && position &&
            !(at_sign[1] >= '0' && at_sign[1] <= '9')) {
            cli_usage_error(ctx, "--finger-image %s: a finger position is a number 1-10",
                            src[i].value);
            rc = -1;
            break;
        }
        t->in[at].modality = t->specs[at];
        t->in[at].position = position;
        t->in[at].quality = -1.0;
        abis_error err = {0};
        if (!src[i].capture) {
            size_t dim = 0;
            if (abis_vector_read_file(file, &t->vectors[at], &dim, &err) != ABIS_OK) {
                t->vectors[at] = NULL;
                cli_fail(ctx, &err);
                rc = -1;
                break;
            }
            t->in[at].vector = t->vectors[at];
            t->in[at].dim = dim;
            continue;
        }
        size_t len;
        unsigned char *buf = read_capture(ctx, file, &len);
        if (!buf) {
            rc = -1;
            break;
        }
        t->in[at].ppi = ppi;
        /* A minutiae record of several fingers, given without a position,
         * is one input per finger view. */
        int views[ABIS_FINGER_RECORD_MAX_VIEWS], nv = 0;
        if (src[i].capture && strcmp(src[i].opt, "finger-image") == 0 && position == 0 &&
            abis_finger_record_detect(buf, len) != ABIS_FINGER_RECORD_NONE &&
            abis_finger_record_views(buf, len, views, &nv, &err) == ABIS_OK && nv > 1) {
            if (templates_reserve(t, at + (size_t)nv) != 0) {
                abis_wipe_free(buf, len);
                cli_failf(ctx, "nomem", "out of memory");
                rc = -1;
                break;
            }
            for (int v = 0; v < nv && rc == 0; v++) {
                size_t e = at + (size_t)v;
                if (v > 0) {
                    t->n = e + 1;
                    t->specs[e] = strdup(t->specs[at]);
                    t->in[e] = t->in[at];
                    t->in[e].modality = t->specs[e];
                }
                t->in[e].position = views[v];
                if (!t->specs[e] || set_capture(t, e, buf, len) != 0) {
                    cli_failf(ctx, "nomem", "out of memory");
                    rc = -1;
                }
            }
            abis_wipe_free(buf, len);
            continue;
        }
        t->captures[at] = buf;
        t->in[at].capture = buf;
        t->in[at].capture_size = len;
    }
    free(src);
    if (rc != 0)
        cli_templates_free(t);
    return rc;
}
