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

/* A non-increasing rate (FMR, or FPIR for 1:N) against ascending scores. */
typedef struct cal_curve {
    size_t npoints;
    double *score;
    double *fmr;  /* the rate */
    double *lfmr; /* log10(rate); -inf where it is 0 */
} cal_curve;

struct abis_calibration {
    cal_model model;
    double dim;   /* random-directions */
    double scale; /* sqrt(dim / 2) */
    cal_curve t;  /* table: score -> FMR */
    /* Optional likelihood-ratio model (calibration_fit.c): Gaussian genuine
     * and impostor score densities, made monotone and normalised. */
    int has_llr;
    double gen_mean, gen_sd, imp_mean, imp_sd;
    double llr_lo, llr_hi; /* scores outside which the raw LLR is held constant */
    double llr_log_norm;   /* ln E_impostor[LR] under the FMR curve, subtracted */
    double *imp_pmf;       /* impostor distribution of the LLR on the fusion grid */
    double *imp_surv;      /* imp_surv[k] = P(LLR >= grid value k | impostor) */
    /* Optional 1:N curve: score -> FPIR at ident_gallery enrolments. */
    cal_curve ident;
    size_t ident_gallery;
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

/* Parse an array of [score, rate] pairs (`what` names it in messages). */
static abis_status parse_curve(json_t *pts, const char *what, const char *rate, cal_curve *c,
                               abis_error *err)
{
    if (!pts)
        return abis_error_set(err, ABIS_E_INVALID, "calibration: missing \"%s\"", what);
    if (!json_is_array(pts))
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"%s\" must be an array of [score, %s] pairs", what,
                              rate);
    size_t n = json_array_size(pts);
    if (n < 2)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"%s\" has %zu point%s, at least 2 are needed", what, n,
                              n == 1 ? "" : "s");
    if (n > CAL_MAX_POINTS)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"%s\" has %zu points, at most %d are allowed", what, n,
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
                                  "calibration: %s[%zu] is not a [score, %s] pair", what, i, rate);
        json_t *js = json_array_get(p, 0), *jf = json_array_get(p, 1);
        if (!json_is_number(js))
            return abis_error_set(err, ABIS_E_INVALID, "calibration: %s[%zu] score is not a number",
                                  what, i);
        if (!json_is_number(jf))
            return abis_error_set(err, ABIS_E_INVALID, "calibration: %s[%zu] %s is not a number",
                                  what, i, rate);
        double s = json_number_value(js), f = json_number_value(jf);
        if (!isfinite(s))
            return abis_error_set(err, ABIS_E_INVALID, "calibration: %s[%zu] score is not finite",
                                  what, i);
        if (!(f >= 0 && f <= 1))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: %s[%zu] %s %g is not between 0 and 1", what, i,
                                  rate, f);
        if (i > 0 && !(s > c->score[i - 1]))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: %s[%zu] score %g is not above %s[%zu] "
                                  "score %g",
                                  what, i, s, what, i - 1, c->score[i - 1]);
        if (i > 0 && f > c->fmr[i - 1])
            return abis_error_set(err, ABIS_E_INVALID,
                                  "calibration: %s[%zu] %s %g is above %s[%zu] %s %g "
                                  "(%s must not increase with score)",
                                  what, i, rate, f, what, i - 1, rate, c->fmr[i - 1],
                                  strcmp(rate, "fpir") == 0 ? "FPIR" : "FMR");
        c->score[i] = s;
        c->fmr[i] = f;
        c->lfmr[i] = f > 0 ? log10(f) : -INFINITY;
    }
    c->npoints = n;
    return ABIS_OK;
}

static abis_status parse_table(json_t *root, abis_calibration *c, abis_error *err)
{
    json_t *pts = json_object_get(root, "points");
    if (!pts)
        return abis_error_set(err, ABIS_E_INVALID, "calibration: table needs \"points\"");
    return parse_curve(pts, "points", "fmr", &c->t, err);
}

/* ---- optional parts: likelihood ratio, 1:N curve ------------------------------ */

/* Bounds on a log-likelihood ratio (natural log): e^60 is beyond any rate we
 * can observe, and keeps exp() finite. */
#define LLR_CLAMP 60.0

static double table_fmr(const cal_curve *c, double s);
static double table_segment_fmr(const cal_curve *c, size_t i, double s);

/* The Gaussian log-likelihood ratio, held constant beyond its extremum so it
 * never decreases with the score. */
static double llr_raw(const abis_calibration *c, double s)
{
    if (s < c->llr_lo)
        s = c->llr_lo;
    if (s > c->llr_hi)
        s = c->llr_hi;
    double zg = (s - c->gen_mean) / c->gen_sd, zi = (s - c->imp_mean) / c->imp_sd;
    return log(c->imp_sd / c->gen_sd) - 0.5 * zg * zg + 0.5 * zi * zi;
}

/* LLR capped so that LR <= 1 / FMR(s): no score may claim more evidence
 * against "impostor" than the impostor tail itself allows. */
static double llr_capped(const abis_calibration *c, double s)
{
    double l = llr_raw(c, s);
    double f = abis_calibration_fmr(c, s);
    if (f > 0 && l > -log(f))
        l = -log(f);
    if (l > LLR_CLAMP)
        l = LLR_CLAMP;
    if (l < -LLR_CLAMP)
        l = -LLR_CLAMP;
    return l;
}

/* ln E[LR] over the impostor score distribution that the FMR table
 * describes.  Each table segment's mass is split into 32 steps and weighted
 * by the LR at the step's upper end (LR does not decrease with the score, so
 * this overestimates E: the normalised LR's impostor mean is at most 1;
 * fusion does not depend on it, it computes fused FMRs exactly).  Mass
 * below the first point sits at the first point; mass above the last point
 * (the table's last FMR) sits at the last point. */
static double llr_log_norm(const abis_calibration *c)
{
    const cal_curve *t = &c->t;
    double e = (1.0 - t->fmr[0]) * exp(llr_capped(c, t->score[0]));
    for (size_t i = 0; i + 1 < t->npoints; i++) {
        double prev = t->fmr[i];
        for (int k = 1; k <= 32; k++) {
            double sk = t->score[i] + (t->score[i + 1] - t->score[i]) * k / 32.0;
            double fk = k == 32 ? t->fmr[i + 1] : table_segment_fmr(t, i, sk);
            e += (prev - fk) * exp(llr_capped(c, sk));
            prev = fk;
        }
    }
    e += t->fmr[t->npoints - 1] * exp(llr_capped(c, t->score[t->npoints - 1]));
    return e > 0 ? log(e) : 0;
}

/* Add impostor mass `m` at score s to the grid bin at or above its LLR:
 * rounding up overstates impostor LLRs, so fused FMRs err high (safe side). */
static void pmf_add(abis_calibration *c, double s, double m)
{
    double l = llr_capped(c, s) - c->llr_log_norm;
    double k = ceil((l - ABIS_FUSION_GRID_LO) / ABIS_FUSION_GRID_STEP);
    if (k < 0)
        k = 0;
    if (k > ABIS_FUSION_GRID_BINS - 1)
        k = ABIS_FUSION_GRID_BINS - 1;
    c->imp_pmf[(size_t)k] += m;
}

/* The impostor distribution of the (normalised) LLR on the fusion grid,
 * integrated over the FMR table the same way as llr_log_norm. */
static abis_status build_impostor_pmf(abis_calibration *c, abis_error *err)
{
    c->imp_pmf = calloc(ABIS_FUSION_GRID_BINS, sizeof *c->imp_pmf);
    c->imp_surv = calloc(ABIS_FUSION_GRID_BINS + 1, sizeof *c->imp_surv);
    if (!c->imp_pmf || !c->imp_surv)
        return abis_error_set(err, ABIS_E_NOMEM, "calibration: out of memory");
    const cal_curve *t = &c->t;
    pmf_add(c, t->score[0], 1.0 - t->fmr[0]);
    for (size_t i = 0; i + 1 < t->npoints; i++) {
        double prev = t->fmr[i];
        for (int k = 1; k <= 32; k++) {
            double sk = t->score[i] + (t->score[i + 1] - t->score[i]) * k / 32.0;
            double fk = k == 32 ? t->fmr[i + 1] : table_segment_fmr(t, i, sk);
            pmf_add(c, sk, prev - fk);
            prev = fk;
        }
    }
    pmf_add(c, t->score[t->npoints - 1], t->fmr[t->npoints - 1]);
    for (size_t k = ABIS_FUSION_GRID_BINS; k-- > 0;)
        c->imp_surv[k] = c->imp_surv[k + 1] + c->imp_pmf[k];
    return ABIS_OK;
}

const double *abis_calibration_impostor_llr(const abis_calibration *c, const double **survival)
{
    if (!c->has_llr)
        return NULL;
    if (survival)
        *survival = c->imp_surv;
    return c->imp_pmf;
}

static abis_status parse_mean_sd(json_t *o, const char *key, double *mean, double *sd,
                                 abis_error *err)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a) || json_array_size(a) != 2 || !json_is_number(json_array_get(a, 0)) ||
        !json_is_number(json_array_get(a, 1)))
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: llr \"%s\" must be [mean, standard deviation]", key);
    *mean = json_number_value(json_array_get(a, 0));
    *sd = json_number_value(json_array_get(a, 1));
    if (!isfinite(*mean) || !(*sd > 0) || !isfinite(*sd))
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: llr \"%s\" needs a finite mean and a positive "
                              "standard deviation",
                              key);
    return ABIS_OK;
}

static abis_status parse_llr(json_t *llr, abis_calibration *c, abis_error *err)
{
    if (c->model != CAL_TABLE)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"llr\" needs a fitted \"table\" model");
    json_t *m = json_is_object(llr) ? json_object_get(llr, "model") : NULL;
    if (!json_is_string(m) || strcmp(json_string_value(m), "gaussian") != 0)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"llr\" must be {\"model\": \"gaussian\", "
                              "\"genuine\": [mean, sd], \"impostor\": [mean, sd]}");
    abis_status st = parse_mean_sd(llr, "genuine", &c->gen_mean, &c->gen_sd, err);
    if (st == ABIS_OK)
        st = parse_mean_sd(llr, "impostor", &c->imp_mean, &c->imp_sd, err);
    if (st != ABIS_OK)
        return st;
    if (!(c->gen_mean > c->imp_mean))
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: llr genuine mean %g is not above impostor mean %g",
                              c->gen_mean, c->imp_mean);
    /* The quadratic's extremum: where d/ds of the raw LLR is 0. */
    c->llr_lo = -INFINITY;
    c->llr_hi = INFINITY;
    double pg = 1.0 / (c->gen_sd * c->gen_sd), pi = 1.0 / (c->imp_sd * c->imp_sd);
    if (pg != pi) {
        double extremum = (c->imp_mean * pi - c->gen_mean * pg) / (pi - pg);
        if (pg > pi) /* genuine narrower: a maximum, hold it above */
            c->llr_hi = extremum;
        else /* genuine wider: a minimum, hold it below */
            c->llr_lo = extremum;
    }
    c->has_llr = 1;
    c->llr_log_norm = llr_log_norm(c);
    return build_impostor_pmf(c, err);
}

static abis_status parse_ident(json_t *id, abis_calibration *c, abis_error *err)
{
    json_t *n = json_is_object(id) ? json_object_get(id, "gallery_size") : NULL;
    if (!json_is_integer(n) || json_integer_value(n) < 1)
        return abis_error_set(err, ABIS_E_INVALID,
                              "calibration: \"identification\" needs an integer "
                              "\"gallery_size\" of at least 1");
    c->ident_gallery = (size_t)json_integer_value(n);
    return parse_curve(json_object_get(id, "points"), "identification points", "fpir", &c->ident,
                       err);
}

/* The optional members every model may carry. */
static abis_status parse_extras(json_t *root, abis_calibration *c, abis_error *err)
{
    abis_status st = ABIS_OK;
    json_t *llr = json_object_get(root, "llr"), *id = json_object_get(root, "identification");
    if (llr)
        st = parse_llr(llr, c, err);
    if (st == ABIS_OK && id)
        st = parse_ident(id, c, err);
    return st;
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
    if (st == ABIS_OK)
        st = parse_extras(root, c, err);
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
    free(c->t.score);
    free(c->t.fmr);
    free(c->t.lfmr);
    free(c->ident.score);
    free(c->ident.fmr);
    free(c->ident.lfmr);
    free(c->imp_pmf);
    free(c->imp_surv);
    free(c);
}

const char *abis_calibration_model(const abis_calibration *c)
{
    return c->model == CAL_TABLE ? "table" : "random-directions";
}

/* ---- score -> FMR ------------------------------------------------------------ */

/* FMR within table segment i (between points i and i + 1), for a score in it. */
static double table_segment_fmr(const cal_curve *c, size_t i, double s)
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

static double table_fmr(const cal_curve *c, double s)
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
    return c->model == CAL_TABLE ? table_fmr(&c->t, score) : rd_fmr(c, score);
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

static double table_threshold(const cal_curve *c, double target)
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
    return c->model == CAL_TABLE ? table_threshold(&c->t, fmr) : rd_threshold(c, fmr);
}

/* ---- likelihood ratio and 1:N ------------------------------------------------------ */

int abis_calibration_llr(const abis_calibration *c, double score, double *llr)
{
    if (!c->has_llr)
        return -1;
    *llr = llr_capped(c, score) - c->llr_log_norm;
    return 0;
}

/* 1 - (1 - p)^m, accurate for tiny p. */
static double at_least_one(double p, double m)
{
    if (p >= 1)
        return 1;
    return -expm1(m * log1p(-p));
}

double abis_calibration_fpir(const abis_calibration *c, double score, size_t gallery_size)
{
    double m = gallery_size ? (double)gallery_size : 1;
    if (c->ident.npoints)
        return at_least_one(table_fmr(&c->ident, score), m / (double)c->ident_gallery);
    return at_least_one(abis_calibration_fmr(c, score), m);
}

double abis_calibration_fpir_threshold(const abis_calibration *c, double target_fpir,
                                       size_t gallery_size)
{
    double m = gallery_size ? (double)gallery_size : 1;
    if (!(target_fpir > 0))
        return abis_calibration_threshold(c, -1);
    /* Invert 1 - (1 - p)^(m/n) <= target for the per-curve rate p. */
    if (c->ident.npoints) {
        double p = at_least_one(target_fpir, (double)c->ident_gallery / m);
        return table_threshold(&c->ident, p);
    }
    return abis_calibration_threshold(c, at_least_one(target_fpir, 1.0 / m));
}
