/*
 * calibration.c: mapping comparison scores to false match rates and back
 * (see match.h and docs/FORMATS.md, "Calibration").
 *
 * Two models:
 *   random-directions  FMR(s) = 0.5 * erfc(s * sqrt(dim / 2)), the upper tail
 *                      of N(0, 1/dim), which is the large-dim limit of the
 *                      cosine of two independent uniformly random directions.
 *   table              points [score, fmr], scores strictly ascending, fmr
 *                      non-increasing, interpolated linearly in log10(fmr);
 *                      a segment that ends at fmr 0 is interpolated linearly
 *                      in fmr instead (log10(0) is -inf).  Outside the table
 *                      the FMR is clamped to the first / last point's.
 *
 * Thresholds (the smallest score whose FMR is at most the target):
 *   random-directions  found by bisection on [-1, 2] (cosines lie in [-1, 1]);
 *                      120 halvings shrink the bracket below double
 *                      precision, and the upper end of the bracket is returned,
 *                      so FMR(threshold) <= target always holds and the
 *                      threshold is within 1 ulp of the exact root.  A target
 *                      no score in [-1, 2] reaches returns 2.0 (above every
 *                      cosine: nothing matches); a target of 1 or more
 *                      returns -1.0 (every cosine matches).
 *   table              solved exactly on the segment where the FMR crosses
 *                      the target (then nudged up by an ulp or two if
 *                      rounding left FMR(threshold) above the target).  A
 *                      target at or above the first point's FMR returns the
 *                      first score (the table says nothing below it); a
 *                      target below the last point's FMR returns the last
 *                      score + 1 + (last - first), a score above the whole
 *                      table whose FMR is still above the target: callers
 *                      that care check abis_calibration_fmr(threshold).
 */
#include "match/match.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Limits that keep a hostile calibration from allocating without bound. */
#define CAL_MAX_DIM 65536
#define CAL_MAX_POINTS 100000

typedef enum cal_model { CAL_RANDOM_DIRECTIONS, CAL_TABLE } cal_model;

struct abis_calibration {
    cal_model model;
    double dim;     /* random-directions */
    double scale;   /* sqrt(dim / 2) */
    size_t npoints; /* table */
    double *score;
    double *fmr;
    double *lfmr; /* log10(fmr); -inf where fmr is 0 */
};

/* ---- parsing ---------------------------------------------------------------- */

static abis_status parse_random_directions(json_t *root, abis_calibration *c, abis_error *err)
{
    json_t *dim = json_object_get(root, "dim");
    if (!dim)
        return abis_error_set(err, ABIS_E_INVALID, "calibration: random-directions needs \"dim\"");
    if (!json_is_integer(dim) || json_integer_value(dim) < 1 ||
        json_integer_value(dim) > CAL_MAX_DIM)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"dim\" must be an integer from 1 to %d", CAL_MAX_DIM);
    c->dim = (double)json_integer_value(dim);
    c->scale = sqrt(c->dim / 2.0);
    return ABIS_OK;
}

static abis_status parse_table(json_t *root, abis_calibration *c, abis_error *err)
{
    json_t *pts = json_object_get(root, "points");
    if (!pts)
        return abis_error_set(err, ABIS_E_INVALID, "calibration: table needs \"points\"");
    if (!json_is_array(pts))
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"points\" must be an array of [score, fmr] pairs");
    size_t n = json_array_size(pts);
    if (n < 2)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"points\" has %zu point%s, at least 2 are needed", n,
                              n == 1 ? "" : "s");
    if (n > CAL_MAX_POINTS)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"points\" has %zu points, at most %d are allowed", n,
                              CAL_MAX_POINTS);
    c->score = malloc(n * sizeof *c->score);
    c->fmr = malloc(n * sizeof *c->fmr);
    c->lfmr = malloc(n * sizeof *c->lfmr);
    if (!c->score || !c->fmr || !c->lfmr)
        return abis_error_set(err, ABIS_E_NOMEM, "calibration: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(pts, i);
        if (!json_is_array(p) || json_array_size(p) != 2)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: points[%zu] is not a [score, fmr] pair", i);
        json_t *js = json_array_get(p, 0), *jf = json_array_get(p, 1);
        if (!json_is_number(js))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: points[%zu] score is not a number", i);
        if (!json_is_number(jf))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: points[%zu] fmr is not a number", i);
        double s = json_number_value(js), f = json_number_value(jf);
        if (!isfinite(s))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: points[%zu] score is not finite", i);
        if (!(f >= 0 && f <= 1))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: points[%zu] fmr %g is not between 0 and 1", i, f);
        if (i > 0 && !(s > c->score[i - 1]))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: points[%zu] score %g is not above points[%zu] "
                                  "score %g",
                                  i, s, i - 1, c->score[i - 1]);
        if (i > 0 && f > c->fmr[i - 1])
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: points[%zu] fmr %g is above points[%zu] fmr %g "
                                  "(FMR must not increase with score)",
                                  i, f, i - 1, c->fmr[i - 1]);
        c->score[i] = s;
        c->fmr[i] = f;
        c->lfmr[i] = f > 0 ? log10(f) : -INFINITY;
    }
    c->npoints = n;
    return ABIS_OK;
}

abis_status abis_calibration_parse(const char *json, abis_calibration **out, abis_error *err)
{
    assert(out);
    *out = NULL;
    if (!json)
        return abis_error_set(err, ABIS_E_INVALID, "calibration: missing");
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    if (!root)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: not valid JSON: %s (line %d, column %d)", jerr.text,
                              jerr.line, jerr.column);
    abis_status st;
    abis_calibration *c = calloc(1, sizeof *c);
    if (!c) {
        st = abis_error_set(err, ABIS_E_NOMEM, "calibration: out of memory");
        goto done;
    }
    if (!json_is_object(root)) {
        st = abis_error_set(err, ABIS_E_INVALID, "calibration: expected a JSON object");
        goto done;
    }
    json_t *model = json_object_get(root, "model");
    if (!model) {
        st = abis_error_set(err, ABIS_E_INVALID, "calibration: missing \"model\"");
        goto done;
    }
    if (!json_is_string(model)) {
        st = abis_error_set(err, ABIS_E_INVALID, "calibration: \"model\" must be a string");
        goto done;
    }
    const char *name = json_string_value(model);
    if (strcmp(name, "random-directions") == 0) {
        c->model = CAL_RANDOM_DIRECTIONS;
        st = parse_random_directions(root, c, err);
    } else if (strcmp(name, "table") == 0) {
        c->model = CAL_TABLE;
        st = parse_table(root, c, err);
    } else {
        st = abis_error_set(err, ABIS_E_INVALID,
                            "calibration: unknown model '%.64s' (use \"random-directions\" or "
                            "\"table\")",
                            name);
    }
done:
    json_decref(root);
    if (st == ABIS_OK)
        *out = c;
    else
        abis_calibration_free(c);
    return st;
}

void abis_calibration_default_vector(int dim, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    snprintf(buf, cap, "{\"model\":\"random-directions\",\"dim\":%d}", dim);
}

void abis_calibration_free(abis_calibration *c)
{
    if (!c)
        return;
    free(c->score);
    free(c->fmr);
    free(c->lfmr);
    free(c);
}

const char *abis_calibration_model(const abis_calibration *c)
{
    return c->model == CAL_TABLE ? "table" : "random-directions";
}

/* ---- score -> FMR ------------------------------------------------------------ */

/* FMR within table segment i (between points i and i + 1), for a score in it. */
static double table_segment_fmr(const abis_calibration *c, size_t i, double s)
{
    double s0 = c->score[i], s1 = c->score[i + 1];
    double t = (s - s0) / (s1 - s0);
    if (t <= 0)
        return c->fmr[i];
    if (t >= 1)
        return c->fmr[i + 1];
    if (c->fmr[i + 1] == 0) /* includes fmr[i] == 0: both are then 0 */
        return c->fmr[i] + t * (c->fmr[i + 1] - c->fmr[i]);
    double l = c->lfmr[i] + t * (c->lfmr[i + 1] - c->lfmr[i]);
    double f = pow(10.0, l);
    /* Keep the result inside the segment's bracket despite pow's rounding,
     * so FMR stays non-increasing across segment boundaries. */
    if (f > c->fmr[i])
        f = c->fmr[i];
    if (f < c->fmr[i + 1])
        f = c->fmr[i + 1];
    return f;
}

static double table_fmr(const abis_calibration *c, double s)
{
    size_t n = c->npoints;
    if (!(s > c->score[0])) /* also NaN: the most conservative answer */
        return c->fmr[0];
    if (s >= c->score[n - 1])
        return c->fmr[n - 1];
    /* Binary search for the segment: score[lo] < s < score[hi]... with hi = lo + 1. */
    size_t lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->score[mid] <= s)
            lo = mid;
        else
            hi = mid;
    }
    return table_segment_fmr(c, lo, s);
}

static double rd_fmr(const abis_calibration *c, double s)
{
    if (isnan(s))
        return 1.0;
    double f = 0.5 * erfc(s * c->scale);
    return f > 1.0 ? 1.0 : f;
}

double abis_calibration_fmr(const abis_calibration *c, double score)
{
    return c->model == CAL_TABLE ? table_fmr(c, score) : rd_fmr(c, score);
}

/* ---- FMR -> threshold ------------------------------------------------------- */

#define RD_LOW (-1.0)
#define RD_HIGH 2.0

static double rd_threshold(const abis_calibration *c, double target)
{
    if (!(target >= 0)) /* negative or NaN: unreachable */
        return RD_HIGH;
    if (target >= 1.0 || rd_fmr(c, RD_LOW) <= target)
        return RD_LOW;
    if (rd_fmr(c, RD_HIGH) > target)
        return RD_HIGH;
    /* Invariant: fmr(lo) > target >= fmr(hi). */
    double lo = RD_LOW, hi = RD_HIGH;
    for (int i = 0; i < 120; i++) {
        double mid = lo + (hi - lo) / 2;
        if (mid <= lo || mid >= hi)
            break;
        if (rd_fmr(c, mid) <= target)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

static double table_threshold(const abis_calibration *c, double target)
{
    size_t n = c->npoints;
    double beyond = c->score[n - 1] + 1.0 + (c->score[n - 1] - c->score[0]);
    if (!(target >= 0))
        return beyond;
    if (c->fmr[0] <= target)
        return c->score[0];
    size_t i = 1;
    while (i < n && c->fmr[i] > target)
        i++;
    if (i == n)
        return beyond;
    /* fmr[i-1] > target >= fmr[i]: the crossing lies in segment i-1. */
    double s0 = c->score[i - 1], s1 = c->score[i], t;
    if (c->fmr[i] == 0)
        t = (c->fmr[i - 1] - target) / (c->fmr[i - 1] - c->fmr[i]);
    else
        t = (log10(target) - c->lfmr[i - 1]) / (c->lfmr[i] - c->lfmr[i - 1]);
    if (!(t >= 0))
        t = 0;
    if (t > 1)
        t = 1;
    double s = s0 + t * (s1 - s0);
    /* Rounding may leave FMR(s) a hair above the target; step up to fix it. */
    for (int k = 0; k < 64 && s < s1 && table_segment_fmr(c, i - 1, s) > target; k++)
        s = nextafter(s, s1);
    if (s > s1 || table_segment_fmr(c, i - 1, s) > target)
        s = s1;
    return s;
}

double abis_calibration_threshold(const abis_calibration *c, double fmr)
{
    return c->model == CAL_TABLE ? table_threshold(c, fmr) : rd_threshold(c, fmr);
}
