/*
 * cmd_import.c: `abis import`, bulk enrolment from JSON Lines.
 *
 * One person a line:
 *   {"segment": "federal", "ref": "C-1001",
 *    "templates": [{"modality": "face", "vector": [...], "position": 0}],
 *    "consents": ["bank.remote-id"]}
 * ("ref", "consents", "position", "quality" optional; "vector_b64", base64 of
 * little-endian float32, or "image_b64", a capture, instead of "vector"; the
 * template object is read by template/input_json.c, as in abisd).  Each line is one
 * abis_subject_enroll call, so each person is enrolled fully or not at all.
 *
 * The input is streamed: one line is held in memory at a time (up to
 * IMPORT_LINE_MAX bytes).  A bad line is rejected with its number, a code and
 * a reason, and the import goes on; only failures of the system (store, I/O,
 * memory) stop it.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "template/input_json.h"
#include "template/vector.h"
#include "util/progress.h"

/* The longest line accepted: 64 MiB holds a vector of several million values
 * written as JSON text; a 512-value face embedding is about 6 KiB. */
#define IMPORT_LINE_MAX ((size_t)64 << 20)
/* Rejected lines reported on stderr when there is no --rejects file. */
#define IMPORT_STDERR_REJECTS 20
/* At most this many templates per line: far above any real person (10 fingers,
 * 2 eyes, a face, a voice), low enough to refuse a runaway line early. */
#define IMPORT_TEMPLATES_MAX 64
#define IMPORT_CONSENTS_MAX 256

/* ---- streaming line reader ------------------------------------------------- */

typedef struct line_reader {
    FILE *f;
    char chunk[65536]; /* read-ahead from f */
    size_t cpos, clen;
    int eof;
    char *line; /* the current line, NUL-terminated, without '\n' (or "\r\n") */
    size_t len, cap;
    int too_long; /* the current line passed IMPORT_LINE_MAX; its text was dropped */
    uint64_t lineno;
} line_reader;

/* Read the next line.  Returns 1 with a line, 0 at the end of the input, -1
 * on a read error, -2 when out of memory. */
static int next_line(line_reader *r)
{
    r->len = 0;
    r->too_long = 0;
    int any = 0;
    for (;;) {
        if (r->cpos == r->clen) {
            if (r->eof)
                break;
            r->clen = fread(r->chunk, 1, sizeof r->chunk, r->f);
            r->cpos = 0;
            if (r->clen == 0) {
                if (ferror(r->f))
                    return -1;
                r->eof = 1;
                break;
            }
        }
        any = 1;
        char *start = r->chunk + r->cpos;
        size_t avail = r->clen - r->cpos;
        char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        if (!r->too_long && r->len + take > IMPORT_LINE_MAX) {
            r->too_long = 1;
        } else if (!r->too_long) {
            if (r->len + take + 1 > r->cap) {
                size_t cap = r->cap ? r->cap : 4096;
                while (cap < r->len + take + 1)
                    cap *= 2;
                char *nb = realloc(r->line, cap);
                if (!nb)
                    return -2;
                r->line = nb;
                r->cap = cap;
            }
            memcpy(r->line + r->len, start, take);
            r->len += take;
        }
        r->cpos += take + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!any)
        return 0;
    r->lineno++;
    if (r->too_long) {
        r->len = 0;
    } else if (r->len > 0 && r->line[r->len - 1] == '\r') {
        r->len--;
    }
    if (r->line)
        r->line[r->len] = '\0';
    return 1;
}

/* Lines in a regular file, for the progress bar's total (0 when unknown). */
static uint64_t count_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return 0;
    }
    char buf[65536];
    uint64_t n = 0;
    size_t got;
    char last = '\n';
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + got - p))); p++)
            n++;
        last = buf[got - 1];
    }
    fclose(f);
    return n + (last != '\n');
}

/* ---- one line: a person ----------------------------------------------------- */

/* Why a line was rejected: a machine code and a reason for a person. */
typedef struct reject {
    char code[32];
    char reason[ABIS_ERROR_MESSAGE_MAX + 64];
    char duplicate_of[ABIS_ID_HEX_LEN + 1]; /* "" unless code is "duplicate" */
} reject;

static int rejectf(reject *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rejectf(reject *r, const char *code, const char *fmt, ...)
{
    snprintf(r->code, sizeof r->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    return -1;
}

/* A person parsed from a line; the strings point into the line's JSON. */
typedef struct person {
    const char *segment;
    const char *ref;
    abis_template_input tmpl[IMPORT_TEMPLATES_MAX];
    abis_json_template parsed[IMPORT_TEMPLATES_MAX]; /* owns what tmpl points to */
    size_t n_templates;
    const char *consents[IMPORT_CONSENTS_MAX];
    size_t n_consents;
} person;

static void person_free(person *p)
{
    for (size_t i = 0; i < p->n_templates; i++)
        abis_json_template_free(&p->parsed[i]);
    p->n_templates = 0;
}

/* templates[ti] of a line (shared with abisd: template/input_json.c). */
static int parse_template(json_t *t, size_t ti, person *p, reject *r)
{
    char what[32];
    snprintf(what, sizeof what, "templates[%zu]", ti);
    const char *code = "invalid";
    abis_error err = {0};
    abis_status st = abis_json_template_parse(t, what, &p->parsed[ti], &code, &err);
    p->n_templates = ti + 1;
    if (st == ABIS_E_NOMEM)
        return rejectf(r, "nomem", "%s", err.message);
    if (st != ABIS_OK)
        return rejectf(r, code, "%s", err.message);
    p->tmpl[ti] = p->parsed[ti].in;
    return 0;
}

/* Check a line's JSON and fill *p.  Returns 0, or -1 with *r filled. */
static int parse_person(json_t *root, person *p, reject *r)
{
    memset(p, 0, sizeof *p);
    if (!json_is_object(root))
        return rejectf(r, "wrong_type", "the line is not a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "segment") && strcmp(key, "ref") && strcmp(key, "templates") &&
            strcmp(key, "consents"))
            return rejectf(r, "unknown_field",
                           "unknown field '%s' (expected segment, ref, templates, consents)", key);
    }
    json_t *seg = json_object_get(root, "segment");
    if (!seg)
        return rejectf(r, "missing_field", "no \"segment\"");
    if (!json_is_string(seg))
        return rejectf(r, "wrong_type", "\"segment\" is not a string");
    p->segment = json_string_value(seg);

    json_t *ref = json_object_get(root, "ref");
    if (ref && !json_is_null(ref)) {
        if (!json_is_string(ref))
            return rejectf(r, "wrong_type", "\"ref\" is not a string");
        p->ref = json_string_value(ref);
    }

    json_t *cons = json_object_get(root, "consents");
    if (cons && !json_is_null(cons)) {
        if (!json_is_array(cons))
            return rejectf(r, "wrong_type", "\"consents\" is not an array of purpose names");
        if (json_array_size(cons) > IMPORT_CONSENTS_MAX)
            return rejectf(r, "invalid", "more than %d consents", IMPORT_CONSENTS_MAX);
        for (size_t i = 0; i < json_array_size(cons); i++) {
            json_t *c = json_array_get(cons, i);
            if (!json_is_string(c))
                return rejectf(r, "wrong_type", "consents[%zu] is not a string", i);
            p->consents[p->n_consents++] = json_string_value(c);
        }
    }

    json_t *tm = json_object_get(root, "templates");
    if (!tm)
        return rejectf(r, "missing_field", "no \"templates\"");
    if (!json_is_array(tm))
        return rejectf(r, "wrong_type", "\"templates\" is not an array");
    size_t n = json_array_size(tm);
    if (n == 0)
        return rejectf(r, "missing_field", "\"templates\" is empty");
    if (n > IMPORT_TEMPLATES_MAX)
        return rejectf(r, "invalid", "more than %d templates", IMPORT_TEMPLATES_MAX);
    for (size_t i = 0; i < n; i++) {
        if (parse_template(json_array_get(tm, i), i, p, r) != 0) {
            person_free(p);
            return -1;
        }
    }
    return 0;
}

/* ---- the import run ------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct code_count {
    char code[32];
    uint64_t n;
} code_count;

typedef struct import_run {
    cli_ctx *ctx;
    FILE *rejects; /* --rejects FILE, or NULL */
    const char *rejects_path;
    FILE *ids; /* --ids FILE, or NULL */
    const char *ids_path;
    int ids_failed;
    abis_progress *progress;
    uint64_t read, enrolled, rejected, duplicates;
    code_count codes[32]; /* rejections by code; the last slot collects the rest */
    size_t n_codes;
    int rejects_failed;
} import_run;

static void count_code(import_run *run, const char *code)
{
    size_t i;
    for (i = 0; i < run->n_codes; i++)
        if (strcmp(run->codes[i].code, code) == 0)
            break;
    if (i == run->n_codes) {
        size_t max = sizeof run->codes / sizeof run->codes[0];
        if (run->n_codes == max) {
            i = max - 1;
            snprintf(run->codes[i].code, sizeof run->codes[i].code, "other");
        } else {
            snprintf(run->codes[i].code, sizeof run->codes[i].code, "%s", code);
            run->n_codes++;
        }
    }
    run->codes[i].n++;
}

static void record_reject(import_run *run, uint64_t line, const reject *r)
{
    run->rejected++;
    if (strcmp(r->code, "duplicate") == 0)
        run->duplicates++;
    count_code(run, r->code);
    if (run->rejects) {
        json_t *o = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line, "code", r->code,
                              "reason", r->reason);
        if (o && r->duplicate_of[0])
            json_object_set_new(o, "duplicate_of", json_string(r->duplicate_of));
        if (!o || json_dumpf(o, run->rejects, JSON_COMPACT) != 0 ||
            fputc('\n', run->rejects) == EOF)
            run->rejects_failed = 1;
        json_decref(o);
    } else if (run->rejected <= IMPORT_STDERR_REJECTS) {
        abis_progress_clear(run->progress);
        fprintf(stderr, "abis: line %llu rejected (%s): %s\n", (unsigned long long)line, r->code,
                r->reason);
    }
}

/* Statuses that mean the system, not the line, is at fault: stop the import. */
static int is_fatal(abis_status st)
{
    switch (st) {
    case ABIS_E_CRYPTO:
    case ABIS_E_IO:
    case ABIS_E_STORE:
    case ABIS_E_SCHEMA:
    case ABIS_E_NOMEM:
    case ABIS_E_TAMPER:
    case ABIS_E_BUSY:
    case ABIS_E_INTERNAL:
        return 1;
    default:
        return 0;
    }
}

/* Handle one non-blank line.  Returns 0 (enrolled or rejected) or -1 after a
 * fatal engine error (in *fatal). */
static int import_line(import_run *run, const char *text, size_t len, uint64_t lineno, int force,
                       abis_error *fatal)
{
    reject r;
    memset(&r, 0, sizeof r);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rejectf(&r, "malformed_json", "not valid JSON: %s (column %d)", jerr.text, jerr.column);
        record_reject(run, lineno, &r);
        return 0;
    }
    person p;
    if (parse_person(root, &p, &r) != 0) {
        json_decref(root);
        record_reject(run, lineno, &r);
        return 0;
    }
    abis_enroll_request req = {
        .segment = p.segment,
        .external_ref = p.ref,
        .templates = p.tmpl,
        .n_templates = p.n_templates,
        .consents = p.consents,
        .n_consents = p.n_consents,
        .force = force,
    };
    abis_enroll_result res;
    memset(&res, 0, sizeof res);
    abis_error err = {0};
    abis_caller c = cli_caller(run->ctx, NULL);
    abis_status st = abis_subject_enroll(run->ctx->engine, &c, &req, &res, &err);
    person_free(&p);
    json_decref(root);
    if (st == ABIS_OK) {
        run->enrolled++;
        if (run->ids) {
            /* Flushed line by line: what is in this file was committed. */
            char hex[ABIS_ID_HEX_LEN + 1];
            abis_id_to_hex(&res.subject_id, hex);
            if (fprintf(run->ids, "{\"line\":%llu,\"subject_id\":\"%s\"}\n",
                        (unsigned long long)lineno, hex) < 0 ||
                fflush(run->ids) != 0)
                run->ids_failed = 1;
        }
        return 0;
    }
    if (is_fatal(st)) {
        *fatal = err;
        return -1;
    }
    snprintf(r.code, sizeof r.code, "%s", abis_status_name(st));
    if (st == ABIS_E_DUPLICATE) {
        abis_id_to_hex(&res.duplicate_of, r.duplicate_of);
        snprintf(r.reason, sizeof r.reason, "already enrolled as subject %s", r.duplicate_of);
    } else {
        snprintf(r.reason, sizeof r.reason, "%s", err.message[0] ? err.message : r.code);
    }
    record_reject(run, lineno, &r);
    return 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static json_t *summary_json(const import_run *run, double secs, int interrupted_run)
{
    /* Milliseconds and tenths of a line a second are all the precision that means anything. */
    double rate = secs > 0 ? round((double)run->read / secs * 10.0) / 10.0 : 0.0;
    secs = round(secs * 1000.0) / 1000.0;
    json_t *codes = json_object();
    for (size_t i = 0; codes && i < run->n_codes; i++)
        json_object_set_new(codes, run->codes[i].code, json_integer((json_int_t)run->codes[i].n));
    return json_pack("{s:I, s:I, s:I, s:I, s:o*, s:f, s:f, s:s?, s:b}", "read",
                     (json_int_t)run->read, "enrolled", (json_int_t)run->enrolled, "rejected",
                     (json_int_t)run->rejected, "duplicates", (json_int_t)run->duplicates,
                     "rejected_by_code", codes, "seconds", secs, "rate", rate, "rejects_file",
                     run->rejects_path, "interrupted", interrupted_run);
}

static void summary_print(const import_run *run, double secs, int interrupted_run)
{
    printf("import %s: %llu lines read, %llu enrolled, %llu rejected in %.1f s (%.0f lines/s)\n",
           interrupted_run ? "interrupted" : "finished", (unsigned long long)run->read,
           (unsigned long long)run->enrolled, (unsigned long long)run->rejected, secs,
           secs > 0 ? (double)run->read / secs : 0.0);
    if (run->rejected) {
        printf("  rejected by reason:");
        for (size_t i = 0; i < run->n_codes; i++)
            printf("%s %s %llu", i ? "," : "", run->codes[i].code,
                   (unsigned long long)run->codes[i].n);
        printf("\n  duplicates (already enrolled): %llu\n", (unsigned long long)run->duplicates);
        if (run->rejects_path)
            printf("  rejected lines written to %s\n", run->rejects_path);
        else if (run->rejected > IMPORT_STDERR_REJECTS)
            printf("  (the first %d rejections were shown; --rejects FILE keeps them all)\n",
                   IMPORT_STDERR_REJECTS);
    }
}

/* Create (or truncate) an output file readable by its owner only: rejected
 * lines and subject ids name people. */
static FILE *open_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

int cli_cmd_import(cli_ctx *ctx, const cli_args *a)
{
    const char *path = a->pos[0];
    int from_stdin = strcmp(path, "-") == 0;
    import_run run;
    memset(&run, 0, sizeof run);
    run.ctx = ctx;

    line_reader *lr = calloc(1, sizeof *lr);
    if (!lr)
        return cli_failf(ctx, "nomem", "out of memory");
    lr->f = from_stdin ? stdin : fopen(path, "rb");
    if (!lr->f) {
        free(lr);
        return cli_failf(ctx, "io", "cannot open '%s': %s", path, strerror(errno));
    }
    run.rejects_path = cli_arg_get(a, "rejects");
    run.ids_path = cli_arg_get(a, "ids");
    int open_rc = 0;
    if (run.rejects_path && !(run.rejects = open_private(run.rejects_path)))
        open_rc = cli_failf(ctx, "io", "cannot write '%s': %s", run.rejects_path, strerror(errno));
    if (!open_rc && run.ids_path && !(run.ids = open_private(run.ids_path)))
        open_rc = cli_failf(ctx, "io", "cannot write '%s': %s", run.ids_path, strerror(errno));
    if (open_rc) {
        if (run.rejects)
            fclose(run.rejects);
        if (!from_stdin)
            fclose(lr->f);
        free(lr);
        return open_rc;
    }
    int force = cli_arg_count(a, "force") > 0;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* the store's system calls carry on; the loop checks the flag */
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    if (abis_progress_enabled())
        run.progress = abis_progress_create("import", from_stdin ? 0 : count_lines(path), "lines");
    double t0 = mono_s();
    abis_error fatal = {0};
    int stop = 0;
    while (!stop && !interrupted) {
        int got = next_line(lr);
        if (got == 0)
            break;
        if (got < 0) {
            abis_error_set(&fatal, got == -2 ? ABIS_E_NOMEM : ABIS_E_IO, "%s '%s' after line %llu",
                           got == -2 ? "out of memory reading" : "read error in",
                           from_stdin ? "standard input" : path, (unsigned long long)lr->lineno);
            stop = 1;
            break;
        }
        size_t skip = 0;
        while (skip < lr->len && strchr(" \t\r\f\v", lr->line[skip]))
            skip++;
        if (!lr->too_long && skip == lr->len)
            continue; /* blank lines are not people */
        run.read++;
        if (lr->too_long) {
            reject r;
            memset(&r, 0, sizeof r);
            rejectf(&r, "line_too_long", "the line is longer than %zu MiB", IMPORT_LINE_MAX >> 20);
            record_reject(&run, lr->lineno, &r);
        } else if (import_line(&run, lr->line + skip, lr->len - skip, lr->lineno, force, &fatal) !=
                   0) {
            abis_error_prefix(&fatal, "line %llu", (unsigned long long)lr->lineno);
            stop = 1;
        }
        abis_progress_update(run.progress, lr->lineno);
    }
    double secs = mono_s() - t0;
    int was_interrupted = interrupted != 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (stop || was_interrupted)
        abis_progress_destroy(run.progress);
    else
        abis_progress_finish(run.progress);
    run.progress = NULL;

    uint64_t last_line = lr->lineno;
    if (!from_stdin)
        fclose(lr->f);
    free(lr->line);
    free(lr);
    if (run.rejects && fclose(run.rejects) != 0)
        run.rejects_failed = 1;
    if (run.rejects_failed)
        fprintf(stderr, "abis: could not write every rejected line to '%s'\n", run.rejects_path);
    if (run.ids && fclose(run.ids) != 0)
        run.ids_failed = 1;
    if (run.ids_failed)
        fprintf(stderr, "abis: could not write every subject id to '%s'\n", run.ids_path);

    if (stop) {
        if (!ctx->json)
            summary_print(&run, secs, 1);
        return cli_fail_with(ctx, &fatal, ctx->json ? summary_json(&run, secs, 1) : NULL);
    }
    if (ctx->json) {
        if (cli_json_print(summary_json(&run, secs, was_interrupted)) != 0)
            return CLI_EXIT_ERROR;
    } else {
        summary_print(&run, secs, was_interrupted);
    }
    if (was_interrupted) {
        fprintf(stderr, "abis: import interrupted after line %llu\n",
                (unsigned long long)last_line);
        return CLI_EXIT_ERROR;
    }
    return run.rejected || run.rejects_failed || run.ids_failed ? CLI_EXIT_NO : CLI_EXIT_OK;
}
