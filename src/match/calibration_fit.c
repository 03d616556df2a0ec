/*
 * calibration_fit.c: fitting a calibration from evaluation scores
 * (abis_calibration_fit, match.h; the JSON it writes is in docs/FORMATS.md,
 * "Calibration").
 *
 * - FMR table: the empirical impostor survival function FMR(s) = #(impostor
 *   >= s) / n at scores chosen on a log scale of rates (every decade 1, 2, 5
 *   steps down to 1/n) plus a linear scale in the body.  Beyond the highest
 *   impostor score the table goes on with a normal fit of the impostor scores
 *   (mean, sd), scaled to meet the last empirical point, one point a decade
 *   down to 1e-15 below it: measured where there is data, modelled (and
 *   marked as such in "tail") where there is not.
 * - Likelihood ratio: Gaussian fits of the genuine and the impostor scores
 *   (calibration.c makes it monotone, caps it at 1 / FMR, scales it so an
 *   impostor's expected LR is at most 1, and derives from the FMR table the
 *   impostor distribution of the LLR that fusion convolves).
 * - 1:N: the same empirical survival function over the best scores of
 *   non-mated probes at the evaluated gallery size, with the same tail.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "match/match.h"

#define FIT_MIN_GENUINE 10
#define FIT_MIN_IMPOSTOR 100
#define FIT_TAIL_DECADES 15 /* the modelled tail reaches 1e-15 times the last measured rate */

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_size_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void mean_sd(const double *v, size_t n, double *mean, double *sd)
{
    double m = 0, q = 0;
    for (size_t i = 0; i < n; i++)
        m += v[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        q += (v[i] - m) * (v[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(q / (double)(n - 1)) : 0;
}

/* Upper tail of the standard normal, and its inverse by bisection. */
static double q_normal(double z)
{
    return 0.5 * erfc(z / M_SQRT2);
}

static double q_normal_inv(double p)
{
    double lo = -40, hi = 40;
    for (int i = 0; i < 200 && hi - lo > 1e-12; i++) {
        double mid = 0.5 * (lo + hi);
        if (q_normal(mid) > p)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* Append [score, rate] to a JSON array, keeping scores strictly ascending
 * (the caller walks scores upwards) and rates non-increasing. */
static int push_point(json_t *arr, double *last_score, double score, double rate)
{
    if (!isfinite(score) || !(score > *last_score))
        return 0;
    *last_score = score;
    return json_array_append_new(arr, json_pack("[f, f]", score, rate));
}

/* The empirical survival function of `v` (sorted descending, n values) as
 * points, ascending in score, followed by a normal tail; *tail_from gets the
 * highest measured score. */
static json_t *survival_points(const double *v, size_t n, double *tail_from)
{
    json_t *pts = json_array();
    if (!pts)
        return NULL;
    /* Ranks (1-based counts of values >= s) to sample, from n down to 1. */
    size_t cap = 256, nr = 0;
    size_t *ranks = malloc(cap * sizeof *ranks);
    if (!ranks) {
        json_decref(pts);
        return NULL;
    }
    for (int k = 1; k <= 20; k++) /* linear in the body: 5 %, 10 %, ... */
        ranks[nr++] = (size_t)ceil((double)n * (1.0 - 0.05 * (k - 1)));
    static const double steps[] = {5, 2, 1};
    for (double decade = 0.1; decade * (double)n >= 1.0; decade /= 10) /* log in the tail */
        for (int j = 0; j < 3 && nr + 1 < cap; j++) {
            size_t rank = (size_t)ceil(decade * steps[j] * (double)n);
            if (rank >= 1)
                ranks[nr++] = rank;
        }
    ranks[nr++] = 1;
    /* Walk ranks from many (low score) to few (high score). */
    qsort(ranks, nr, sizeof *ranks, cmp_size_desc);
    double last = -INFINITY;
    for (size_t i = 0; i < nr; i++) {
        size_t rank = ranks[i];
        if (rank < 1 || rank > n)
            continue;
        double s = v[rank - 1];
        /* The rate at s counts every value >= s, ties included. */
        size_t count = rank;
        while (count < n && v[count] >= s)
            count++;
        if (push_point(pts, &last, s, (double)count / (double)n) != 0)
            break;
    }
    free(ranks);
    /* The tail: a normal fit of all values, scaled to the last measured point. */
    double mean, sd;
    mean_sd(v, n, &mean, &sd);
    double top = v[0];
    size_t ties = 1;
    while (ties < n && v[ties] >= top)
        ties++;
    double f_top = (double)ties / (double)n;
    *tail_from = top;
    if (sd > 0) {
        double q_top = q_normal((top - mean) / sd);
        for (int d = 1; d <= FIT_TAIL_DECADES && q_top > 0; d++) {
            double target = q_top * pow(10.0, -d);
            double s = mean + sd * q_normal_inv(target);
            push_point(pts, &last, s, f_top * pow(10.0, -d));
        }
    }
    return pts;
}

abis_status abis_calibration_fit(const double *genuine, size_t n_genuine, const double *impostor,
                                 size_t n_impostor, const abis_ident_scores *ident, char **json,
                                 abis_error *err)
{
    *json = NULL;
    if (n_genuine < FIT_MIN_GENUINE || n_impostor < FIT_MIN_IMPOSTOR)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration fit needs at least %d genuine and %d impostor scores "
                              "(got %zu and %zu)",
                              FIT_MIN_GENUINE, FIT_MIN_IMPOSTOR, n_genuine, n_impostor);
    for (size_t i = 0; i < n_genuine; i++)
        if (!isfinite(genuine[i]))
            return abis_error_set(err, ABIS_E_INVALID, "genuine score %zu is not finite", i);
    for (size_t i = 0; i < n_impostor; i++)
        if (!isfinite(impostor[i]))
            return abis_error_set(err, ABIS_E_INVALID, "impostor score %zu is not finite", i);
    double *imp = malloc(n_impostor * sizeof *imp);
    if (!imp)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    memcpy(imp, impostor, n_impostor * sizeof *imp);
    qsort(imp, n_impostor, sizeof *imp, cmp_desc);

    double gm, gs, im, is, tail_from = 0;
    mean_sd(genuine, n_genuine, &gm, &gs);
    mean_sd(imp, n_impostor, &im, &is);
    json_t *root = json_object();
    json_t *pts = survival_points(imp, n_impostor, &tail_from);
    abis_status st = ABIS_OK;
    if (!root || !pts || json_array_size(pts) < 2) {
        st = abis_error_set(
            err, json_array_size(pts) < 2 && pts ? ABIS_E_INVALID : ABIS_E_NOMEM, "%s",
            pts ? "impostor scores are all equal: nothing to fit" : "out of memory");
        json_decref(pts);
        goto done;
    }
    json_object_set_new(root, "model", json_string("table"));
    json_object_set_new(root, "points", pts);
    json_object_set_new(root, "tail",
                        json_pack("{s:s, s:f, s:f, s:f}", "fit", "normal", "from", tail_from,
                                  "mean", im, "sd", is));
    if (gm > im && gs > 0 && is > 0)
        json_object_set_new(root, "llr",
                            json_pack("{s:s, s:[f, f], s:[f, f]}", "model", "gaussian", "genuine",
                                      gm, gs, "impostor", im, is));
    json_object_set_new(root, "fitted_on",
                        json_pack("{s:I, s:I}", "genuine", (json_int_t)n_genuine, "impostor",
                                  (json_int_t)n_impostor));
    if (ident && ident->n >= FIT_MIN_GENUINE && ident->gallery_size > 0) {
        double *best = malloc(ident->n * sizeof *best);
        if (!best) {
            st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
            goto done;
        }
        memcpy(best, ident->nonmated_best, ident->n * sizeof *best);
        qsort(best, ident->n, sizeof *best, cmp_desc);
        double from;
        json_t *ip = survival_points(best, ident->n, &from);
        free(best);
        if (ip && json_array_size(ip) >= 2)
            json_object_set_new(root, "identification",
                                json_pack("{s:I, s:o, s:I}", "gallery_size",
                                          (json_int_t)ident->gallery_size, "points", ip,
                                          "nonmated_probes", (json_int_t)ident->n));
        else
            json_decref(ip);
    }
    *json = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (!*json)
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory");
    /* Check that what we wrote parses (points strictly ascending, etc.). */
    if (st == ABIS_OK) {
        abis_calibration *c = NULL;
        st = abis_calibration_parse(*json, &c, err);
        abis_calibration_free(c);
        if (st != ABIS_OK) {
            free(*json);
            *json = NULL;
        }
    }
done:
    json_decref(root);
    free(imp);
    return st;
}
