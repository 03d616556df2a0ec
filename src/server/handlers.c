/*
 * handlers.c: one function per route.  Each turns the parsed request into
 * one abis_client_* call and its result into the JSON response the OpenAPI
 * document (docs/openapi.yaml) describes.  Subject ids in paths and bodies
 * are the calling client's pseudonyms; the engine maps them.
 */
#include "server/server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* RFC 3339 UTC with milliseconds. */
static json_t *time_json(int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}

static json_t *id_json(const abis_id *id)
{
    char hex[ABIS_ID_HEX_LEN + 1];
    abis_id_to_hex(id, hex);
    return json_string(hex);
}

/* The subject of the path (params[0]); -1 after responding 400. */
static int path_subject(abisd_request *rq, abis_id *token)
{
    abisd_error e;
    if (abisd_parse_subject(rq->params[0], token, &e) != 0) {
        abisd_respond_error(rq, &e);
        return -1;
    }
    return 0;
}

/* Respond to a write: its engine status, or `ok_status` with `obj` (stolen). */
static void write_done(abisd_request *rq, abis_status st, const abis_error *err,
                       const abis_client_result *r, int ok_status, json_t *obj)
{
    if (st != ABIS_OK) {
        json_decref(obj);
        abisd_respond_status(rq, err, NULL);
        return;
    }
    rq->replayed = r->replayed;
    if (obj)
        abisd_respond_json(rq, ok_status, obj);
    else
        abisd_respond_empty(rq, ok_status);
}

void abisd_handle_enroll(abisd_request *rq, abisd_body *b, int arg)
{
    (void)arg;
    abis_enroll_request req = {.segment = b->segment,
                               .templates = b->templates.in,
                               .n_templates = b->templates.n,
                               .consents = b->consents,
                               .n_consents = b->n_consents};
    abis_idempotency idem;
    abis_client_result r;
    abis_error err = {0};
    abis_status st = abis_client_enroll(abisd_engine(rq->srv), rq->client,
                                        abisd_idempotency(rq, &idem), &req, &r, &err);
    if (st == ABIS_E_DUPLICATE) {
        abisd_respond_status(rq, &err,
                             json_pack("{s:o}", "duplicate_of", id_json(&r.duplicate_of)));
        return;
    }
    write_done(rq, st, &err, &r, 201, json_pack("{s:o}", "subject_id", id_json(&r.subject)));
}

void abisd_handle_template_add(abisd_request *rq, abisd_body *b, int arg)
{
    (void)arg;
    abis_id token;
    if (path_subject(rq, &token) != 0)
        return;
    abis_idempotency idem;
    abis_client_result r;
    abis_error err = {0};
    abis_status st =
        abis_client_template_add(abisd_engine(rq->srv), rq->client, abisd_idempotency(rq, &idem),
                                 &token, &b->templates.in[0], b->replace, &r, &err);
    write_done(rq, st, &err, &r, 201,
               json_pack("{s:o, s:o}", "subject_id", id_json(&token), "template_id",
                         id_json(&r.template_id)));
}

void abisd_handle_verify(abisd_request *rq, abisd_body *b, int arg)
{
    (void)arg;
    abis_id token;
    if (path_subject(rq, &token) != 0)
        return;
    abis_verify_result r;
    abis_error err = {0};
    abis_status st = abis_client_verify(abisd_engine(rq->srv), rq->client, &token, b->purpose,
                                        b->templates.in, b->templates.n, &r, &err);
    if (st != ABIS_OK) {
        abisd_respond_status(rq, &err, NULL);
        return;
    }
    json_t *o = json_pack("{s:s, s:s}", "decision", abis_decision_name(r.decision), "confidence",
                          abis_confidence_name(r.confidence));
    if (o && abis_client_sees_scores(rq->client)) {
        json_object_set_new(o, "score", json_real(r.score));
        json_object_set_new(o, "fmr", json_real(r.fmr));
        json_object_set_new(o, "threshold", json_real(r.threshold));
    }
    abisd_respond_json(rq, 200, o);
}

void abisd_handle_identify(abisd_request *rq, abisd_body *b, int arg)
{
    (void)arg;
    abis_candidate *c = calloc(b->k, sizeof *c);
    if (!c) {
        abis_error err = {ABIS_E_NOMEM, "out of memory"};
        abisd_respond_status(rq, &err, NULL);
        return;
    }
    size_t n = 0;
    abis_error err = {0};
    abis_status st = abis_client_identify(abisd_engine(rq->srv), rq->client, b->segment, b->purpose,
                                          b->templates.in, b->templates.n, b->k, c, &n, &err);
    if (st != ABIS_OK) {
        free(c);
        abisd_respond_status(rq, &err, NULL);
        return;
    }
    int scores = abis_client_sees_scores(rq->client);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = json_pack("{s:o, s:s}", "subject_id", id_json(&c[i].subject_id), "confidence",
                              abis_confidence_name(c[i].confidence));
        if (o && scores) {
            json_object_set_new(o, "score", json_real(c[i].score));
            json_object_set_new(o, "fpir", json_real(c[i].fmr));
        }
        json_array_append_new(arr, o);
    }
    free(c);
    abisd_respond_json(
        rq, 200, json_pack("{s:s, s:o}", "decision", n ? "match" : "no_match", "candidates", arr));
}

void abisd_handle_consent(abisd_request *rq, abisd_body *b, int granted)
{
    (void)b;
    abis_id token;
    if (path_subject(rq, &token) != 0)
        return;
    abis_idempotency idem;
    abis_client_result r;
    abis_error err = {0};
    abis_status st =
        abis_client_consent_set(abisd_engine(rq->srv), rq->client, abisd_idempotency(rq, &idem),
                                &token, rq->params[1], granted, &r, &err);
    write_done(rq, st, &err, &r, 200,
               json_pack("{s:o, s:s, s:s}", "subject_id", id_json(&token), "purpose", rq->params[1],
                         "consent", granted ? "granted" : "withdrawn"));
}

void abisd_handle_lock(abisd_request *rq, abisd_body *b, int locked)
{
    abis_id token;
    if (path_subject(rq, &token) != 0)
        return;
    abis_idempotency idem;
    abis_client_result r;
    abis_error err = {0};
    abis_status st =
        abis_client_lock_set(abisd_engine(rq->srv), rq->client, abisd_idempotency(rq, &idem),
                             &token, b->modality, locked, &r, &err);
    write_done(rq, st, &err, &r, 200,
               json_pack("{s:o, s:s, s:b}", "subject_id", id_json(&token), "modality",
                         b->modality && *b->modality ? b->modality : "*", "locked", locked));
}

void abisd_handle_delete(abisd_request *rq, abisd_body *b, int arg)
{
    (void)arg;
    (void)b;
    abis_id token;
    if (path_subject(rq, &token) != 0)
        return;
    abis_idempotency idem;
    abis_client_result r;
    abis_error err = {0};
    abis_status st = abis_client_delete(abisd_engine(rq->srv), rq->client,
                                        abisd_idempotency(rq, &idem), &token, &r, &err);
    write_done(rq, st, &err, &r, 204, NULL);
}

/* The person's view: what is held (never template data), or who used it. */
void abisd_handle_view(abisd_request *rq, abisd_body *b, int history)
{
    (void)b;
    abis_id token;
    if (path_subject(rq, &token) != 0)
        return;
    abis_subject_view *v = NULL;
    abis_error err = {0};
    abis_status st = abis_client_subject_show(abisd_engine(rq->srv), rq->client, &token, &v, &err);
    if (st != ABIS_OK) {
        abisd_respond_status(rq, &err, NULL);
        return;
    }
    json_t *o = json_pack("{s:o}", "subject_id", id_json(&v->subject_id));
    if (!history) {
        json_t *tm = json_array(), *cs = json_array(), *lk = json_array();
        for (size_t i = 0; i < v->n_templates; i++) {
            const abis_template_info *t = &v->templates[i];
            json_array_append_new(tm,
                                  json_pack("{s:o, s:s, s:i, s:s, s:o, s:o}", "template_id",
                                            id_json(&t->template_id), "modality", t->modality,
                                            "position", t->position, "format", t->format, "quality",
                                            t->quality >= 0 ? json_real(t->quality) : json_null(),
                                            "created_at", time_json(t->created_at)));
        }
        for (size_t i = 0; i < v->n_consents; i++)
            json_array_append_new(
                cs, json_pack("{s:s, s:b, s:o, s:s}", "purpose", v->consents[i].purpose, "granted",
                              v->consents[i].granted, "at", time_json(v->consents[i].at), "channel",
                              v->consents[i].channel));
        for (size_t i = 0; i < v->n_locks; i++)
            json_array_append_new(lk, json_pack("{s:s, s:o}", "modality", v->locks[i].modality,
                                                "at", time_json(v->locks[i].at)));
        json_object_set_new(o, "segment", json_string(v->segment));
        json_object_set_new(o, "created_at", time_json(v->created_at));
        json_object_set_new(o, "templates", tm);
        json_object_set_new(o, "consents", cs);
        json_object_set_new(o, "locks", lk);
    } else {
        json_t *h = json_array();
        for (size_t i = 0; i < v->n_history; i++) {
            const abis_history_info *e = &v->history[i];
            json_array_append_new(
                h, json_pack("{s:o, s:s, s:s, s:s*, s:s*, s:s, s:s*}", "at", time_json(e->at),
                             "actor", e->actor, "operation", e->operation, "purpose",
                             *e->purpose ? e->purpose : NULL, "basis", *e->basis ? e->basis : NULL,
                             "outcome", e->outcome, "decision", *e->decision ? e->decision : NULL));
        }
        json_object_set_new(o, "history", h);
    }
    abis_subject_view_free(v);
    abisd_respond_json(rq, 200, o);
}

void abisd_handle_health(abisd_request *rq, abisd_body *b, int arg)
{
    (void)arg;
    (void)b;
    int down = abisd_shutting_down(rq->srv);
    abisd_respond_json(rq, down ? 503 : 200,
                       json_pack("{s:s, s:s, s:i}", "status", down ? "shutting_down" : "ok",
                                 "version", ABISD_VERSION, "in_flight", abisd_inflight(rq->srv)));
}

void abisd_handle_metrics(abisd_request *rq, abisd_body *b, int arg)
{
    (void)arg;
    (void)b;
    char *text = abisd_metrics_render(abisd_metrics_of(rq->srv), abisd_engine(rq->srv),
                                      abisd_inflight(rq->srv));
    if (!text) {
        abis_error err = {ABIS_E_NOMEM, "out of memory rendering the metrics"};
        abisd_respond_status(rq, &err, NULL);
        return;
    }
    abisd_respond_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}
