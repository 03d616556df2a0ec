/*
 * cli.h: what the parts of the `abis` operator command share: the command
 * table entry, the parsed arguments, the per-run context, and the helpers for
 * output, errors and the arguments every command takes (subjects, templates).
 *
 * The CLI is written only against the public API (abis/abis.h) and the vector
 * file readers (template/vector.h): it translates command lines into engine
 * calls and engine results into text or JSON, and decides no policy itself.
 *
 * Exit codes: CLI_EXIT_OK (0), CLI_EXIT_NO (1: "no match", "audit broken",
 * "some import lines rejected"), CLI_EXIT_ERROR (2: errors and refusals).
 */
#ifndef ABIS_CLI_H
#define ABIS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "abis/abis.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_NO 1
#define CLI_EXIT_ERROR 2

/* ---- options and arguments ---------------------------------------------- */

typedef struct cli_ctx cli_ctx;
typedef struct cli_command cli_command;

/* One option a command accepts.  A table of them ends with {NULL}. */
typedef struct cli_optspec {
    const char *name; /* long name without "--": "segment" */
    char short_name;  /* 'k' for -k, 0 when none */
    int has_value;    /* 1: --name VALUE or --name=VALUE; 0: a flag */
    int repeatable;   /* 1: may be given more than once */
} cli_optspec;

/* The parsed command line of one command.  Every string points into argv. */
typedef struct cli_args {
    const cli_optspec *spec;
    const char **vals; /* option values in order of appearance ("" for flags) */
    int *which;        /* vals[i] belongs to spec[which[i]] */
    size_t n_vals;
    const char **pos; /* positional arguments */
    size_t n_pos;
} cli_args;

/* Parse a command's arguments (argv after the command's name) into *a,
 * taking the global options (--data, --json, --actor) wherever they appear.
 * Returns 0; 1 when --help or -h was given; or reports a usage error and
 * returns -1.  Release *a with cli_args_free in every case. */
int cli_args_parse(cli_ctx *ctx, const cli_command *cmd, int argc, char **argv, cli_args *a);
void cli_args_free(cli_args *a);

/* If argv[*i] is a global option, apply it to ctx (taking its value from
 * argv[*i + 1] when needed and advancing *i past it) and return 1; return 0
 * when it is not one, -1 after reporting a missing value. */
int cli_global_option(cli_ctx *ctx, int argc, char **argv, int *i);

/* The last value given for option `name`, or NULL when it was not given. */
const char *cli_arg_get(const cli_args *a, const char *name);
/* How many times option `name` was given. */
size_t cli_arg_count(const cli_args *a, const char *name);
/* The i-th value (0-based, in order) given for option `name`, or NULL. */
const char *cli_arg_nth(const cli_args *a, const char *name, size_t i);

/* ---- the command table ---------------------------------------------------- */

typedef enum cli_open_mode {
    CLI_OPEN_NONE = 0, /* the command opens nothing (init) */
    CLI_OPEN_RW = 1,   /* open the data directory for reading and writing */
    CLI_OPEN_RO = 2    /* open it read-only (audit verify / export) */
} cli_open_mode;

struct cli_command {
    const char *name;        /* "enroll", "segment add" */
    const char *args;        /* what follows the name in a usage line */
    const char *summary;     /* one line for `abis --help` */
    const char *help;        /* the body of `abis NAME --help`: options, examples */
    const cli_optspec *opts; /* the command's own options ({NULL}-terminated) */
    int min_pos, max_pos;    /* how many positional arguments */
    cli_open_mode open;
    int (*run)(cli_ctx *ctx, const cli_args *args); /* returns the exit code */
};

/* Every command, in the order `abis --help` lists them; ends with {NULL}. */
extern const cli_command cli_commands[];

/* The run context: global options and the open engine. */
struct cli_ctx {
    const char *data_dir;   /* --data, $ABIS_DATA, or "./var" */
    const char *actor;      /* --actor, or "operator:$USER", or "operator" */
    int json;               /* --json: one JSON object on stdout */
    const cli_command *cmd; /* the command being run */
    abis_engine *engine;    /* open while the command runs (unless CLI_OPEN_NONE) */
    char actor_buf[ABIS_TEXT_MAX + 1];
};

/* The caller record for one engine call: the context's actor and `channel`
 * (may be NULL). */
abis_caller cli_caller(const cli_ctx *ctx, const char *channel);

/* ---- command implementations (one file per concept) ---------------------- */

/* cmd_registry.c */
int cli_cmd_init(cli_ctx *ctx, const cli_args *a);
int cli_cmd_segment_add(cli_ctx *ctx, const cli_args *a);
int cli_cmd_segment_list(cli_ctx *ctx, const cli_args *a);
int cli_cmd_purpose_add(cli_ctx *ctx, const cli_args *a);
int cli_cmd_purpose_list(cli_ctx *ctx, const cli_args *a);
int cli_cmd_modality_add(cli_ctx *ctx, const cli_args *a);
int cli_cmd_modality_list(cli_ctx *ctx, const cli_args *a);
int cli_cmd_modality_calibrate(cli_ctx *ctx, const cli_args *a);
int cli_cmd_dedup_set(cli_ctx *ctx, const cli_args *a);
/* cmd_subject.c */
int cli_cmd_enroll(cli_ctx *ctx, const cli_args *a);
int cli_cmd_template_add(cli_ctx *ctx, const cli_args *a);
int cli_cmd_verify(cli_ctx *ctx, const cli_args *a);
int cli_cmd_identify(cli_ctx *ctx, const cli_args *a);
int cli_cmd_consent_grant(cli_ctx *ctx, const cli_args *a);
int cli_cmd_consent_withdraw(cli_ctx *ctx, const cli_args *a);
int cli_cmd_lock(cli_ctx *ctx, const cli_args *a);
int cli_cmd_unlock(cli_ctx *ctx, const cli_args *a);
int cli_cmd_delete(cli_ctx *ctx, const cli_args *a);
int cli_cmd_subject_show(cli_ctx *ctx, const cli_args *a);
int cli_cmd_subject_find(cli_ctx *ctx, const cli_args *a);
/* The shape every list command shares: a header line (or a JSON array under
 * `key`), one row per item from `run` (which gets the JSON array, or NULL for
 * text), errors as usual (cmd_registry.c). */
typedef abis_status (*cli_list_runner)(abis_engine *e, void *arr, abis_error *err);
int cli_list_command(cli_ctx *ctx, const char *key, const char *header, cli_list_runner run);
/* cmd_client.c */
int cli_cmd_client_add(cli_ctx *ctx, const cli_args *a);
int cli_cmd_client_list(cli_ctx *ctx, const cli_args *a);
int cli_cmd_client_revoke(cli_ctx *ctx, const cli_args *a);
int cli_cmd_client_rotate(cli_ctx *ctx, const cli_args *a);
/* cmd_audit.c */
int cli_cmd_audit_verify(cli_ctx *ctx, const cli_args *a);
int cli_cmd_audit_export(cli_ctx *ctx, const cli_args *a);
int cli_cmd_audit_pubkey(cli_ctx *ctx, const cli_args *a);
/* cmd_import.c */
int cli_cmd_import(cli_ctx *ctx, const cli_args *a);
/* cmd_eval.c */
int cli_cmd_eval(cli_ctx *ctx, const cli_args *a);
int cli_cmd_calibrate(cli_ctx *ctx, const cli_args *a);
/* cmd_finger.c */
int cli_cmd_finger_extract(cli_ctx *ctx, const cli_args *a);

/* ---- output (output.c) ---------------------------------------------------- */

/* Print `obj` as one compact JSON line on stdout and release it (steals the
 * reference).  Returns 0, or -1 when it could not be written. */
int cli_json_print(json_t *obj);

/* Report an engine error: `abis: <message>` on stderr and, with --json, an
 * error object {"error": {"code", "message"}} on stdout.  Returns CLI_EXIT_ERROR. */
int cli_fail(const cli_ctx *ctx, const abis_error *err);

/* The same with extra members merged into the JSON error object (stolen; may
 * be NULL): used for "duplicate_of". */
int cli_fail_with(const cli_ctx *ctx, const abis_error *err, json_t *extra);

/* Report an error the CLI itself found (`code` is a machine name such as
 * "invalid", "usage", "io").  Returns CLI_EXIT_ERROR. */
int cli_failf(const cli_ctx *ctx, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A usage error: the message, then a one-line usage hint for the current
 * command.  Returns CLI_EXIT_ERROR. */
int cli_usage_error(const cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the usage line of `cmd` ("usage: abis NAME ARGS") to `out`. */
void cli_print_usage_line(FILE *out, const cli_command *cmd);

/* Format unix milliseconds as "2024-05-01 12:34:56Z" (UTC) into `out`. */
void cli_format_time(int64_t ms, char out[32]);

/* A template position for display: "3", or "-" when not applicable (0). */
const char *cli_position_name(int position, char buf[16]);

/* ---- arguments shared by commands (args.c) ------------------------------ */

/* The value of a required option, or NULL after a usage error
 * ("missing --segment"). */
const char *cli_require(const cli_ctx *ctx, const cli_args *a, const char *name);

/* Parse a decimal number ("1e-4") into *out, with `what` in the message
 * ("--fmr").  Returns 0, or reports a usage error and returns -1. */
int cli_parse_double(const cli_ctx *ctx, const char *s, const char *what, double *out);
/* Parse an integer in [lo, hi].  Same conventions. */
int cli_parse_int(const cli_ctx *ctx, const char *s, const char *what, long lo, long hi, long *out);

/* Parse a template position: 0-10, "left" (2) or "right" (1).  Returns the
 * position, or -1 when `s` is none of these. */
int cli_parse_position(const char *s);

/* Resolve SUBJECT: 32 hex digits, or SEGMENT/REF looked up with
 * abis_subject_find_ref.  Returns 0, or reports the error and returns -1. */
int cli_resolve_subject(const cli_ctx *ctx, const char *arg, abis_id *id);

/* The templates of every --template MODALITY=FILE[@POSITION], read from
 * their files, and every capture (--iris-image FILE[@EYE], --finger-image
 * FILE[@FINGER], --face-photo FILE) of the one modality of its kind: `in` is ready for an engine call. */
#define CLI_CAPTURE_KINDS 3
typedef struct cli_templates {
    abis_template_input *in;
    float **vectors;          /* in[i].vector, owned here */
    unsigned char **captures; /* in[i].capture (--iris-image, --finger-image,
                               * --face-photo), owned here */
    char **specs;             /* copies of the option values that in[i].modality points into */
    /* the declared modality of each capture option's kind (iriscode, minutiae, face) */
    char capture_modality[CLI_CAPTURE_KINDS][ABIS_NAME_MAX + 1];
    size_t n;
} cli_templates;

/* Parse and read every value of option `opt`, --iris-image, --finger-image,
 * --face-photo * (and --ppi, the resolution of the finger images) into *t (zeroed first); a
 * minutiae record of several fingers given without a position becomes one
 * input per finger.  Returns
 * 0, or reports the error and returns -1 (nothing to free then).  Release
 * with cli_templates_free. */
int cli_templates_load(const cli_ctx *ctx, const cli_args *a, const char *opt, cli_templates *t);
/* Apply --face-models and --face-option to the face photo pipeline (for
 * every capture this process makes into a template).  0, or -1 after a usage
 * error. */
int cli_face_configure(const cli_ctx *ctx, const cli_args *a);
void cli_templates_free(cli_templates *t);

#endif
