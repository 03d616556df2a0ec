/*
 * cmd_subject.c: the commands about one person: enrol, add a template,
 * verify (1:1), identify (1:N), consent, lock and unlock, delete, show, find.
 *
 * Each command resolves its SUBJECT argument, reads its template files, makes
 * exactly one engine call (the engine decides every policy question) and
 * prints the result.  Scores are shown only on request (--scores).
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_json(json_t *o)
{
    return cli_json_print(o) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* ---- enrol and add templates ------------------------------------------------ */

int cli_cmd_enroll(cli_ctx *ctx, const cli_args *a)
{
    const char *segment = cli_require(ctx, a, "segment");
    if (!segment)
        return CLI_EXIT_ERROR;
    cli_templates t;
    if (cli_templates_load(ctx, a, "template", &t) != 0)
        return CLI_EXIT_ERROR;
    size_t n_consents = cli_arg_count(a, "consent");
    const char **consents = calloc(n_consents ? n_consents : 1, sizeof *consents);
    if (!consents) {
        cli_templates_free(&t);
        return cli_failf(ctx, "nomem", "out of memory");
    }
    for (size_t i = 0; i < n_consents; i++)
        consents[i] = cli_arg_nth(a, "consent", i);

    abis_enroll_request req = {
        .segment = segment,
        .external_ref = cli_arg_get(a, "ref"),
        .templates = t.in,
        .n_templates = t.n,
        .consents = consents,
        .n_consents = n_consents,
        .force = cli_arg_count(a, "force") > 0,
    };
    abis_enroll_result res;
    memset(&res, 0, sizeof res);
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, cli_arg_get(a, "channel"));
    abis_status st = abis_subject_enroll(ctx->engine, &c, &req, &res, &err);
    free(consents);
    cli_templates_free(&t);

    char dup[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&res.duplicate_of, dup);
    if (st == ABIS_E_DUPLICATE) {
        abis_error e2 = err;
        snprintf(e2.message, sizeof e2.message,
                 "this person is already enrolled as subject %s (not enrolled again; "
                 "--force enrols anyway, audited)",
                 dup);
        return cli_fail_with(ctx, &e2,
                             json_pack("{s:s, s:s}", "duplicate_of", dup, "detail", err.message));
    }
    if (st != ABIS_OK)
        return cli_fail(ctx, &err);

    char id[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&res.subject_id, id);
    if (ctx->json) {
        json_t *o = json_pack("{s:s}", "subject_id", id);
        if (o && res.duplicate)
            json_object_set_new(o, "duplicate_of", json_string(dup));
        return print_json(o);
    }
    printf("%s\n", id);
    if (res.duplicate) {
        fflush(stdout);
        fprintf(stderr, "abis: note: enrolled with --force although subject %s matches\n", dup);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_template_add(cli_ctx *ctx, const cli_args *a)
{
    abis_id subject;
    if (cli_resolve_subject(ctx, a->pos[0], &subject) != 0)
        return CLI_EXIT_ERROR;
    cli_templates t;
    if (cli_templates_load(ctx, a, "template", &t) != 0)
        return CLI_EXIT_ERROR;
    if (t.n != 1) {
        cli_templates_free(&t);
        return cli_usage_error(ctx, "'abis template add' adds one template (a record of several "
                                    "fingers needs @POSITION)");
    }
    abis_id tid;
    memset(&tid, 0, sizeof tid);
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    abis_status st =
        abis_template_add(ctx->engine, &c, &subject, &t.in[0], cli_arg_count(a, "replace") > 0,
                          cli_arg_count(a, "force") > 0, &tid, &err);
    char modality[ABIS_NAME_MAX + 1];
    snprintf(modality, sizeof modality, "%s", t.in[0].modality);
    cli_templates_free(&t);
    if (st != ABIS_OK)
        return cli_fail(ctx, &err);
    char sid[ABIS_ID_HEX_LEN + 1], tids[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&subject, sid);
    abis_id_to_hex(&tid, tids);
    if (ctx->json)
        return print_json(json_pack("{s:s, s:s, s:s}", "subject_id", sid, "template_id", tids,
                                    "modality", modality));
    printf("template %s (%s) added to subject %s\n", tids, modality, sid);
    return CLI_EXIT_OK;
}

/* ---- verify and identify -------------------------------------------------------- */

int cli_cmd_verify(cli_ctx *ctx, const cli_args *a)
{
    const char *purpose = cli_require(ctx, a, "purpose");
    if (!purpose)
        return CLI_EXIT_ERROR;
    abis_id subject;
    if (cli_resolve_subject(ctx, a->pos[0], &subject) != 0)
        return CLI_EXIT_ERROR;
    cli_templates t;
    if (cli_templates_load(ctx, a, "template", &t) != 0)
        return CLI_EXIT_ERROR;
    abis_verify_result r;
    memset(&r, 0, sizeof r);
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    abis_status st = abis_subject_verify(ctx->engine, &c, &subject, purpose, t.in, t.n, &r, &err);
    cli_templates_free(&t);
    if (st != ABIS_OK)
        return cli_fail(ctx, &err);

    int match = r.decision == ABIS_MATCH;
    int scores = cli_arg_count(a, "scores") > 0;
    if (ctx->json) {
        json_t *o = json_pack("{s:s}", "decision", abis_decision_name(r.decision));
        if (o && match)
            json_object_set_new(o, "confidence", json_string(abis_confidence_name(r.confidence)));
        if (o && scores) {
            json_object_set_new(o, "score", json_real(r.score));
            json_object_set_new(o, "fmr", json_real(r.fmr));
            json_object_set_new(o, "threshold", json_real(r.threshold));
        }
        if (print_json(o) != CLI_EXIT_OK)
            return CLI_EXIT_ERROR;
    } else {
        if (match)
            printf("match (confidence %s)\n", abis_confidence_name(r.confidence));
        else
            printf("no match\n");
        if (scores)
            printf("score %.6f  fmr %.3g  threshold %.6f\n", r.score, r.fmr, r.threshold);
    }
    return match ? CLI_EXIT_OK : CLI_EXIT_NO;
}

/* identify -k: candidates the CLI asks for at most; far beyond what a person reads. */
#define CLI_IDENTIFY_K_MAX 1000

int cli_cmd_identify(cli_ctx *ctx, const cli_args *a)
{
    const char *segment = cli_require(ctx, a, "segment");
    if (!segment)
        return CLI_EXIT_ERROR;
    const char *purpose = cli_require(ctx, a, "purpose");
    if (!purpose)
        return CLI_EXIT_ERROR;
    long k = 10;
    const char *ks = cli_arg_get(a, "k");
    if (ks && cli_parse_int(ctx, ks, "-k", 1, CLI_IDENTIFY_K_MAX, &k) != 0)
        return CLI_EXIT_ERROR;
    cli_templates t;
    if (cli_templates_load(ctx, a, "template", &t) != 0)
        return CLI_EXIT_ERROR;
    abis_candidate *cand = calloc((size_t)k, sizeof *cand);
    if (!cand) {
        cli_templates_free(&t);
        return cli_failf(ctx, "nomem", "out of memory");
    }
    size_t n = 0;
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    abis_status st = abis_subject_identify(ctx->engine, &c, segment, purpose, t.in, t.n, (size_t)k,
                                           cand, &n, &err);
    cli_templates_free(&t);
    if (st != ABIS_OK) {
        free(cand);
        return cli_fail(ctx, &err);
    }
    if (n > (size_t)k) /* never more than asked for, whatever the engine says */
        n = (size_t)k;

    int scores = cli_arg_count(a, "scores") > 0;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
            char id[ABIS_ID_HEX_LEN + 1];
            abis_id_to_hex(&cand[i].subject_id, id);
            json_t *o =
                json_pack("{s:s, s:s, s:s}", "subject_id", id, "external_ref", cand[i].external_ref,
                          "confidence", abis_confidence_name(cand[i].confidence));
            if (o && scores) {
                json_object_set_new(o, "score", json_real(cand[i].score));
                json_object_set_new(o, "fmr", json_real(cand[i].fmr));
            }
            json_array_append_new(arr, o);
        }
        rc = print_json(
            json_pack("{s:s, s:o*}", "decision", n ? "match" : "no_match", "candidates", arr));
    } else if (n == 0) {
        printf("no match\n");
    } else {
        printf("%zu candidate%s, best first:\n", n, n == 1 ? "" : "s");
        printf("  #  %-32s  %-20s  CONFIDENCE%s\n", "SUBJECT", "REF",
               scores ? "  SCORE     FMR" : "");
        for (size_t i = 0; i < n; i++) {
            char id[ABIS_ID_HEX_LEN + 1];
            abis_id_to_hex(&cand[i].subject_id, id);
            printf("%3zu  %s  %-20s  %-*s", i + 1, id,
                   cand[i].external_ref[0] ? cand[i].external_ref : "-", scores ? 10 : 0,
                   abis_confidence_name(cand[i].confidence));
            if (scores)
                printf("  %.6f  %.3g", cand[i].score, cand[i].fmr);
            printf("\n");
        }
    }
    free(cand);
    return rc;
}

/* ---- consent, locks, deletion ----------------------------------------------------- */

typedef abis_status (*consent_fn)(abis_engine *, const abis_caller *, const abis_id *, const char *,
                                  abis_error *);

/* consent grant / withdraw: the same command with a different engine call. */
static int consent_generic(cli_ctx *ctx, const cli_args *a, consent_fn fn, const char *state)
{
    abis_id subject;
    if (cli_resolve_subject(ctx, a->pos[0], &subject) != 0)
        return CLI_EXIT_ERROR;
    const char *purpose = a->pos[1];
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, cli_arg_get(a, "channel"));
    if (fn(ctx->engine, &c, &subject, purpose, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    char id[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&subject, id);
    if (ctx->json)
        return print_json(
            json_pack("{s:s, s:s, s:s}", "subject_id", id, "purpose", purpose, "consent", state));
    printf("consent of subject %s to purpose '%s' %s\n", id, purpose, state);
    return CLI_EXIT_OK;
}

int cli_cmd_consent_grant(cli_ctx *ctx, const cli_args *a)
{
    return consent_generic(ctx, a, abis_consent_grant, "granted");
}

int cli_cmd_consent_withdraw(cli_ctx *ctx, const cli_args *a)
{
    return consent_generic(ctx, a, abis_consent_withdraw, "withdrawn");
}

/* lock / unlock: one modality with --modality, all of them without. */
static int lock_generic(cli_ctx *ctx, const cli_args *a, consent_fn fn, int locked)
{
    abis_id subject;
    if (cli_resolve_subject(ctx, a->pos[0], &subject) != 0)
        return CLI_EXIT_ERROR;
    const char *modality = cli_arg_get(a, "modality");
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (fn(ctx->engine, &c, &subject, modality, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    char id[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&subject, id);
    if (ctx->json)
        return print_json(json_pack("{s:s, s:s, s:b}", "subject_id", id, "modality",
                                    modality ? modality : "*", "locked", locked));
    if (modality && strcmp(modality, "*") != 0)
        printf("modality '%s' of subject %s %s\n", modality, id, locked ? "locked" : "unlocked");
    else
        printf("all modalities of subject %s %s\n", id, locked ? "locked" : "unlocked");
    return CLI_EXIT_OK;
}

int cli_cmd_lock(cli_ctx *ctx, const cli_args *a)
{
    return lock_generic(ctx, a, abis_subject_lock, 1);
}

int cli_cmd_unlock(cli_ctx *ctx, const cli_args *a)
{
    return lock_generic(ctx, a, abis_subject_unlock, 0);
}

int cli_cmd_delete(cli_ctx *ctx, const cli_args *a)
{
    abis_id subject;
    if (cli_resolve_subject(ctx, a->pos[0], &subject) != 0)
        return CLI_EXIT_ERROR;
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_subject_delete(ctx->engine, &c, &subject, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    char id[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&subject, id);
    if (ctx->json)
        return print_json(json_pack("{s:s, s:b}", "subject_id", id, "deleted", 1));
    printf("subject %s deleted (records, templates and data key)\n", id);
    return CLI_EXIT_OK;
}

/* ---- show and find ------------------------------------------------------------------ */

static json_t *view_json(const abis_subject_view *v)
{
    char id[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&v->subject_id, id);
    json_t *tm = json_array(), *cs = json_array(), *ls = json_array(), *hs = json_array();
    for (size_t i = 0; tm && i < v->n_templates; i++) {
        const abis_template_info *t = &v->templates[i];
        char tid[ABIS_ID_HEX_LEN + 1];
        abis_id_to_hex(&t->template_id, tid);
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:I}", "template_id", tid, "modality",
                              t->modality, "position", t->position, "format", t->format,
                              "created_at", (json_int_t)t->created_at);
        if (o)
            json_object_set_new(o, "quality",
                                t->quality >= 0 ? json_real(t->quality) : json_null());
        json_array_append_new(tm, o);
    }
    for (size_t i = 0; cs && i < v->n_consents; i++) {
        const abis_consent_info *c = &v->consents[i];
        json_array_append_new(cs, json_pack("{s:s, s:b, s:I, s:s}", "purpose", c->purpose,
                                            "granted", c->granted, "at", (json_int_t)c->at,
                                            "channel", c->channel));
    }
    for (size_t i = 0; ls && i < v->n_locks; i++)
        json_array_append_new(ls, json_pack("{s:s, s:I}", "modality", v->locks[i].modality, "at",
                                            (json_int_t)v->locks[i].at));
    for (size_t i = 0; hs && i < v->n_history; i++) {
        const abis_history_info *h = &v->history[i];
        json_array_append_new(hs, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "at",
                                            (json_int_t)h->at, "actor", h->actor, "operation",
                                            h->operation, "purpose", h->purpose, "basis", h->basis,
                                            "outcome", h->outcome, "decision", h->decision));
    }
    return json_pack("{s:s, s:s, s:s, s:I, s:o*, s:o*, s:o*, s:o*}", "subject_id", id, "segment",
                     v->segment, "external_ref", v->external_ref, "created_at",
                     (json_int_t)v->created_at, "templates", tm, "consents", cs, "locks", ls,
                     "history", hs);
}

static void view_print(const abis_subject_view *v)
{
    char id[ABIS_ID_HEX_LEN + 1], when[32], pos[16];
    abis_id_to_hex(&v->subject_id, id);
    cli_format_time(v->created_at, when);
    printf("subject   %s\n", id);
    printf("segment   %s\n", v->segment);
    printf("ref       %s\n", v->external_ref[0] ? v->external_ref : "-");
    printf("enrolled  %s\n", when);

    printf("\ntemplates (%zu; the data itself is never shown):\n", v->n_templates);
    for (size_t i = 0; i < v->n_templates; i++) {
        const abis_template_info *t = &v->templates[i];
        char tid[ABIS_ID_HEX_LEN + 1], q[16];
        abis_id_to_hex(&t->template_id, tid);
        cli_format_time(t->created_at, when);
        if (t->quality >= 0)
            snprintf(q, sizeof q, "%.0f", t->quality);
        else
            snprintf(q, sizeof q, "unknown");
        printf("  %s  %-12s position %-3s format %-8s quality %-7s  %s\n", tid, t->modality,
               cli_position_name(t->position, pos), t->format, q, when);
    }

    printf("\nconsents (%zu):\n", v->n_consents);
    for (size_t i = 0; i < v->n_consents; i++) {
        const abis_consent_info *c = &v->consents[i];
        cli_format_time(c->at, when);
        printf("  %-24s %-9s  %s%s%s\n", c->purpose, c->granted ? "granted" : "withdrawn", when,
               c->channel[0] ? "  via " : "", c->channel);
    }

    printf("\nlocks (%zu):\n", v->n_locks);
    for (size_t i = 0; i < v->n_locks; i++) {
        cli_format_time(v->locks[i].at, when);
        printf("  %-24s since %s\n",
               strcmp(v->locks[i].modality, "*") == 0 ? "all modalities" : v->locks[i].modality,
               when);
    }

    printf("\nhistory (%zu, oldest first):\n", v->n_history);
    for (size_t i = 0; i < v->n_history; i++) {
        const abis_history_info *h = &v->history[i];
        cli_format_time(h->at, when);
        printf("  %s  %-20s %-16s", when, h->actor, h->operation);
        if (h->purpose[0])
            printf(" purpose %s", h->purpose);
        if (h->basis[0])
            printf(" (%s)", h->basis);
        if (h->outcome[0])
            printf(" %s", h->outcome);
        if (h->decision[0])
            printf(" %s", h->decision);
        printf("\n");
    }
}

int cli_cmd_subject_show(cli_ctx *ctx, const cli_args *a)
{
    abis_id subject;
    if (cli_resolve_subject(ctx, a->pos[0], &subject) != 0)
        return CLI_EXIT_ERROR;
    abis_subject_view *v = NULL;
    abis_error err = {0};
    abis_caller c = cli_caller(ctx, NULL);
    if (abis_subject_show(ctx->engine, &c, &subject, &v, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    int rc = CLI_EXIT_OK;
    if (ctx->json)
        rc = print_json(view_json(v));
    else
        view_print(v);
    abis_subject_view_free(v);
    return rc;
}

int cli_cmd_subject_find(cli_ctx *ctx, const cli_args *a)
{
    const char *segment = cli_require(ctx, a, "segment");
    if (!segment)
        return CLI_EXIT_ERROR;
    const char *ref = cli_require(ctx, a, "ref");
    if (!ref)
        return CLI_EXIT_ERROR;
    abis_id subject;
    abis_error err = {0};
    if (abis_subject_find_ref(ctx->engine, segment, ref, &subject, &err) != ABIS_OK)
        return cli_fail(ctx, &err);
    char id[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(&subject, id);
    if (ctx->json)
        return print_json(json_pack("{s:s, s:s, s:s}", "subject_id", id, "segment", segment,
                                    "external_ref", ref));
    printf("%s\n", id);
    return CLI_EXIT_OK;
}
