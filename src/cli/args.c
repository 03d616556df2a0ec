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
 * --face-photo). */
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
        cli_usage_error(ctx, "'abis %s' needs --%s MODALITY=FILE, --iris-image FILE or "
                             "--face-photo FILE",
                        ctx->cmd->name, opt);
        return -1;
    }
    for (size_t c = 0; c < CLI_CAPTURE_KINDS; c++)
        if (n_cap[c] && capture_modality(ctx, t, c) != 0)
            return -1;
    t->in = calloc(n, sizeof *t->in);
    t->vectors = calloc(n, sizeof *t->vectors);
    t->captures = calloc(n, sizeof *t->captures);
    t->specs = calloc(n, sizeof *t->specs);
    if (!t->in || !t->vectors || !t->captures || !t->specs) {
        cli_templates_free(t);
        cli_failf(ctx, "nomem", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        /* values i < n_vec are --OPT; then each capture option's in turn */
        int cap = -1;
        size_t nth = i;
        if (i >= n_vec) {
            nth = i - n_vec;
            cap = 0;
            while (nth >= n_cap[cap])
                nth -= n_cap[cap++];
        }
        t->n = i + 1;
        const char *value = cap >= 0 ? cli_arg_nth(a, capture_opts[cap].opt, nth)
                                     : cli_arg_nth(a, opt, nth);
        /* A capture option's FILE[@POSITION] is read as MODALITY=FILE[@POSITION]
         * of its kind's modality. */
        size_t need = strlen(value) + (cap >= 0 ? strlen(t->capture_modality[cap]) + 2 : 1);
        t->specs[i] = malloc(need);
        if (!t->specs[i]) {
            cli_templates_free(t);
            cli_failf(ctx, "nomem", "out of memory");
            return -1;
        }
        if (cap >= 0)
            snprintf(t->specs[i], need, "%s=%s", t->capture_modality[cap], value);
        else
            snprintf(t->specs[i], need, "%s", value);
        const char *file;
        int position;
        if (split_template_spec(ctx, cap >= 0 ? capture_opts[cap].opt : opt, t->specs[i], &file,
                                &position) != 0) {
            cli_templates_free(t);
            return -1;
        }
        t->in[i].modality = t->specs[i];
        t->in[i].position = position;
        t->in[i].quality = -1.0;
        abis_error err = {0};
        if (cap >= 0) {
            t->captures[i] = read_capture(ctx, file, &t->in[i].capture_size);
            if (!t->captures[i]) {
                cli_templates_free(t);
                return -1;
            }
            t->in[i].capture = t->captures[i];
            continue;
        }
        size_t dim = 0;
        if (abis_vector_read_file(file, &t->vectors[i], &dim, &err) != ABIS_OK) {
            t->vectors[i] = NULL;
            cli_templates_free(t);
            cli_fail(ctx, &err);
            return -1;
        }
        t->in[i].vector = t->vectors[i];
        t->in[i].dim = dim;
    }
    return 0;
}
