/*
 * det.c: the DET curve (detection error trade-off, ISO/IEC 19795-1) -- every
 * operating point of a score set -- and the probit that DET axes use; also
 * the sorting of score arrays that every metric starts from.
 *
 * An operating point is read at each distinct score t of either class:
 * FMR(t) = impostor scores >= t / impostors, FNMR(t) = genuine scores < t /
 * genuine (ties count as matches).  Between two neighbouring distinct scores
 * neither rate changes, so these are all the points there are.
 */
#include "eval/eval_internal.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sorting ------------------------------------------------------------------ */

/* Below this many elements insertion sort beats partitioning. */
#define SORT_SMALL 16

static void insertion_sort(double *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        double v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static void sift_down(double *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[root] >= a[child])
            return;
        double t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void heap_sort(double *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        double t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static inline void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Introsort (Musser 1997): quicksort with a median-of-three pivot and Hoare's
 * partition (which splits runs of equal scores evenly -- scores are often
 * quantised), falling back to heap sort when the recursion gets deeper than
 * 2 log2 n, so adversarial input stays O(n log n).  Recursion goes into the
 * smaller part only, so the stack stays O(log n).  Written out rather than
 * using qsort(): no comparison callback, and no n-element scratch buffer
 * (glibc's qsort allocates one), which matters at 10^8 scores. */
static void intro_sort(double *a, size_t n, unsigned depth)
{
    while (n > SORT_SMALL) {
        if (depth == 0) {
            heap_sort(a, n);
            return;
        }
        depth--;
        /* median of a[0], a[mid], a[n-1] moved to a[0] as the pivot */
        size_t mid = n / 2;
        if (a[mid] < a[0])
            swap_d(&a[mid], &a[0]);
        if (a[n - 1] < a[0])
            swap_d(&a[n - 1], &a[0]);
        if (a[n - 1] < a[mid])
            swap_d(&a[n - 1], &a[mid]);
        swap_d(&a[0], &a[mid]); /* a[0] = median, a[mid] <= a[n-1] */
        double p = a[0];
        /* Hoare: ends with a[0..j] <= p <= a[j+1..n), 0 <= j < n - 1 */
        size_t i = 0, j = n - 1;
        for (;;) {
            while (a[i] < p)
                i++;
            while (a[j] > p)
                j--;
            if (i >= j)
                break;
            swap_d(&a[i], &a[j]);
            i++;
            j--;
        }
        size_t left = j + 1;
        if (left < n - left) {
            intro_sort(a, left, depth);
            a += left;
            n -= left;
        } else {
            intro_sort(a + left, n - left, depth);
            n = left;
        }
    }
    insertion_sort(a, n);
}

void abis_eval_sort(double *a, size_t n)
{
    unsigned depth = 0;
    for (size_t m = n; m > 1; m >>= 1)
        depth += 2;
    intro_sort(a, n, depth);
}

abis_status abis_eval_sorted_copy(const double *src, size_t n, const char *what, double **out,
                                  abis_error *err)
{
    *out = NULL;
    if (n == 0)
        return ABIS_OK;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return abis_error_set(err, ABIS_E_INVALID, "%s score %zu is %g: scores must be finite",
                                  what, i, src[i]);
    double *a = malloc(n * sizeof *a);
    if (!a)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory sorting %zu %s scores", n, what);
    memcpy(a, src, n * sizeof *a);
    abis_eval_sort(a, n);
    *out = a;
    return ABIS_OK;
}

size_t abis_eval_count_below(const double *a, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the DET walk ------------------------------------------------------------- */

void abis_eval_det_walk(const double *gen, size_t ng, const double *imp, size_t ni,
                        abis_eval_det_visit visit, void *ctx)
{
    assert(ng > 0 && ni > 0);
    /* gi, ii: how many scores of each class are still below the current
     * threshold (indexes past the last unvisited one) */
    size_t gi = ng, ii = ni;
    double dg = (double)ng, di = (double)ni;
    while (gi > 0 || ii > 0) {
        double t;
        if (gi == 0)
            t = imp[ii - 1];
        else if (ii == 0)
            t = gen[gi - 1];
        else
            t = gen[gi - 1] > imp[ii - 1] ? gen[gi - 1] : imp[ii - 1];
        while (gi > 0 && gen[gi - 1] == t)
            gi--;
        while (ii > 0 && imp[ii - 1] == t)
            ii--;
        /* genuine scores left (all < t) are the false non-matches */
        if (visit(ctx, t, (double)(ni - ii) / di, (double)gi / dg))
            return;
    }
}

typedef struct det_collect {
    abis_eval_det_point *p;
    size_t n;
} det_collect;

static int det_collect_visit(void *ctx, double threshold, double fmr, double fnmr)
{
    det_collect *c = ctx;
    c->p[c->n].threshold = threshold;
    c->p[c->n].fmr = fmr;
    c->p[c->n].fnmr = fnmr;
    c->n++;
    return 0;
}

/* Both classes are sorted first; there are at most ng + ni points, counted
 * exactly (distinct values of the merged sets) before the array is allocated.
 * With an empty class no rate is defined: *points = NULL, *n = 0, ABIS_OK. */
abis_status abis_eval_det(const abis_eval_scores *s, abis_eval_det_point **points, size_t *n,
                          abis_error *err)
{
    *points = NULL;
    *n = 0;
    if (!s)
        return abis_error_set(err, ABIS_E_INVALID, "no score set");
    if (s->n_genuine == 0 || s->n_impostor == 0)
        return ABIS_OK;
    double *gen = NULL, *imp = NULL;
    abis_status st = abis_eval_sorted_copy(s->genuine, s->n_genuine, "genuine", &gen, err);
    if (st == ABIS_OK)
        st = abis_eval_sorted_copy(s->impostor, s->n_impostor, "impostor", &imp, err);
    if (st != ABIS_OK) {
        free(gen);
        free(imp);
        return st;
    }
    /* count the distinct merged values */
    size_t count = 0, gi = 0, ii = 0, ng = s->n_genuine, ni = s->n_impostor;
    while (gi < ng || ii < ni) {
        double t = gi == ng   ? imp[ii]
                   : ii == ni ? gen[gi]
                              : (gen[gi] < imp[ii] ? gen[gi] : imp[ii]);
        while (gi < ng && gen[gi] == t)
            gi++;
        while (ii < ni && imp[ii] == t)
            ii++;
        count++;
    }
    det_collect c = {malloc(count * sizeof *c.p), 0};
    if (!c.p) {
        free(gen);
        free(imp);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for %zu DET points", count);
    }
    abis_eval_det_walk(gen, ng, imp, ni, det_collect_visit, &c);
    assert(c.n == count);
    free(gen);
    free(imp);
    *points = c.p;
    *n = c.n;
    return ABIS_OK;
}

/* ---- probit ------------------------------------------------------------------- */

/* Peter J. Acklam's rational approximation of the inverse normal CDF
 * ("An algorithm for computing the inverse normal cumulative distribution
 * function", 2003; relative error below 1.15e-9 on (0, 1)), refined by one
 * step of Halley's method on erfc (Acklam's own suggestion), which brings it
 * to about double precision.  p is clamped to [DBL_MIN, 1 - DBL_EPSILON / 2]
 * (the smallest normal double and the largest double below 1), so 0 gives
 * about -37.5 and 1 about 8.2 rather than infinities; NaN gives NaN. */
double abis_eval_probit(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    const double p_low = 0.02425, p_high = 1 - p_low; /* Acklam's break-points */

    if (isnan(p))
        return p;
    if (p < DBL_MIN)
        p = DBL_MIN;
    if (p > 1 - DBL_EPSILON / 2)
        p = 1 - DBL_EPSILON / 2;

    double x;
    if (p < p_low) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= p_high) {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        double q = sqrt(-2 * log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    /* Halley step: e = Phi(x) - p, u = e / phi(x) */
    double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    double refined = x - u / (1 + x * u / 2);
    return isfinite(refined) ? refined : x;
}
