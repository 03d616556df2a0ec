/*
 * report.c: the machine-readable evaluation report (JSON, jansson).
 *
 * One object, keys always present and in this order (docs/EVALUATION.md,
 * "JSON report"); a part whose metrics were not given is null, and so is
 * every number that is not finite (NaN: undefined or unsupported; inf: d'
 * with zero spread):
 *
 *   {"format": "openabis-eval-report", "version": 1,
 *    "system": "name",
 *    "counts": {"genuine": n, "impostor": n, "mated": n, "nonmated": n},
 *    "eer": RATE | null,
 *    "fnmr_at_fmr": [RATE + "fmr": target, ...] | null,
 *    "fnmr_at_zero_fmr": RATE | null,
 *    "d_prime": x, "fte": x, "fta": x,
 *    "identification": {"gallery_size": n,
 *                       "fnir_at_fpir": [RATE + "fpir": target, ...],
 *                       "cmc": [rank 1, ..., rank 20]} | null}
 *
 *   RATE = {"value", "lo", "hi", "threshold", "support", "supported": bool}
 */
#include "eval/eval_internal.h"

#include <math.h>
#include <string.h>

#include <jansson.h>

#define REPORT_VERSION 1

/* A number, or null when it is not finite (JSON has no NaN or inf). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* json_object_set_new that remembers a failure (jansson frees `value` on
 * failure, and a NULL value makes it fail). */
static void put(json_t *obj, const char *key, json_t *value, int *bad)
{
    if (!obj) {
        json_decref(value);
        *bad = 1;
    } else if (json_object_set_new(obj, key, value) != 0) {
        *bad = 1;
    }
}

/* A rate object; `target_key` (if not NULL) holds the target first. */
static json_t *rate(const abis_eval_rate *r, const char *target_key, double target, int *bad)
{
    json_t *o = json_object();
    if (target_key)
        put(o, target_key, json_real(target), bad);
    put(o, "value", num(r->value), bad);
    put(o, "lo", num(r->lo), bad);
    put(o, "hi", num(r->hi), bad);
    put(o, "threshold", num(r->threshold), bad);
    put(o, "support", json_integer((json_int_t)r->support), bad);
    put(o, "supported", json_boolean(r->supported), bad);
    return o;
}

static json_t *count_or_null(int present, uint64_t n)
{
    return present ? json_integer((json_int_t)n) : json_null();
}

abis_status abis_eval_report_json(FILE *out, const char *system, const abis_eval_verif_metrics *v,
                                  const abis_eval_ident_metrics *id, abis_error *err)
{
    if (!out)
        return abis_error_set(err, ABIS_E_INVALID, "report: no output");
    int bad = 0;
    char name[256];
    abis_eval_utf8_clean(system ? system : "", name, sizeof name);
    json_t *root = json_object();
    put(root, "format", json_string("openabis-eval-report"), &bad);
    put(root, "version", json_integer(REPORT_VERSION), &bad);
    put(root, "system", json_string(name), &bad);

    json_t *counts = json_object();
    put(counts, "genuine", count_or_null(v != NULL, v ? v->n_genuine : 0), &bad);
    put(counts, "impostor", count_or_null(v != NULL, v ? v->n_impostor : 0), &bad);
    put(counts, "mated", count_or_null(id != NULL, id ? id->n_mated : 0), &bad);
    put(counts, "nonmated", count_or_null(id != NULL, id ? id->n_nonmated : 0), &bad);
    put(root, "counts", counts, &bad);

    if (v) {
        put(root, "eer", rate(&v->eer, NULL, 0, &bad), &bad);
        json_t *arr = json_array();
        for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++)
            if (!arr || json_array_append_new(arr, rate(&v->fnmr_at_fmr[k], "fmr",
                                                        abis_eval_fmr_targets[k], &bad)) != 0)
                bad = 1;
        put(root, "fnmr_at_fmr", arr, &bad);
        put(root, "fnmr_at_zero_fmr", rate(&v->fnmr_at_zero_fmr, NULL, 0, &bad), &bad);
        put(root, "d_prime", num(v->d_prime), &bad);
        put(root, "fte", num(v->fte_rate), &bad);
        put(root, "fta", num(v->fta_rate), &bad);
    } else {
        static const char *const keys[] = {"eer",     "fnmr_at_fmr", "fnmr_at_zero_fmr",
                                           "d_prime", "fte",         "fta"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            put(root, keys[k], json_null(), &bad);
    }

    if (id) {
        json_t *ident = json_object();
        put(ident, "gallery_size", json_integer((json_int_t)id->gallery_size), &bad);
        json_t *arr = json_array();
        for (int k = 0; k < ABIS_EVAL_N_FPIR_TARGETS; k++)
            if (!arr || json_array_append_new(arr, rate(&id->fnir_at_fpir[k], "fpir",
                                                        abis_eval_fpir_targets[k], &bad)) != 0)
                bad = 1;
        put(ident, "fnir_at_fpir", arr, &bad);
        json_t *cmc = json_array();
        for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++)
            if (!cmc || json_array_append_new(cmc, num(id->cmc[r])) != 0)
                bad = 1;
        put(ident, "cmc", cmc, &bad);
        put(root, "identification", ident, &bad);
    } else {
        put(root, "identification", json_null(), &bad);
    }

    if (bad) {
        json_decref(root);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory building the JSON report");
    }
    int rc = json_dumpf(root, out, JSON_INDENT(2));
    json_decref(root);
    if (rc != 0 || fputc('\n', out) == EOF || fflush(out) != 0)
        return abis_error_set(err, ABIS_E_IO, "could not write the JSON report");
    return ABIS_OK;
}
