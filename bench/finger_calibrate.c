/*
 * finger_calibrate.c: fits the default score -> FMR calibration of the
 * minutiae modality (src/core/modality_finger.c) on FVC2002 and prints it as
 * JSON (docs/FINGER.md, "Calibration", says why it is made this way rather
 * than with `abis calibrate`).
 *
 *   build/bench_finger_calibrate ../shared/data/finger/fvc2002 [DB ...]
 *
 * Scores: in each database (default DB1_B and DB3_B, the real ones; DB4_B
 * is synthetic) every pair of impressions of a finger (genuine) and every
 * pair of impressions of two different fingers (impostor): 280 and 2,880
 * each.
 *
 * The table: the empirical impostor survival FMR(s) = #(impostor >= s) / n
 * at FMR 1, 0.5, 0.2, 0.1, 0.05, 0.02 and 0.01; above the score at FMR 0.01
 * an exponential tail, FMR(s) = 0.01 * exp(-(s - s1) / beta), beta the mean
 * excess of the impostor scores above s1 (the maximum-likelihood fit of an
 * exponential to the top 1 %, a generalised Pareto tail of shape 0), one
 * point a decade down to 1e-12.  A normal tail (what `abis calibrate`
 * extrapolates with) is far too thin for this matcher's impostor scores
 * (docs/FINGER.md).  The likelihood-ratio model is the Gaussian one of
 * `abis calibrate` (means and standard deviations of both classes), which
 * the engine caps at LR <= 1 / FMR.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger.h"
#include "modality/finger/match.h"

#define FINGERS 10
#define IMPRESSIONS 8

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

static void mean_sd(const double *v, size_t n, double *m, double *sd)
{
    double s = 0, q = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    *m = s / (double)n;
    for (size_t i = 0; i < n; i++)
        q += (v[i] - *m) * (v[i] - *m);
    *sd = sqrt(q / (double)n);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FVC2002-DIR [DB ...] (default DB1_B DB3_B)\n", argv[0]);
        return 2;
    }
    static const char *const real[] = {"DB1_B", "DB3_B"};
    const char *const *dbs = argc > 2 ? (const char *const *)argv + 2 : real;
    int n_dbs = argc > 2 ? argc - 2 : 2;
    double *gen = malloc((size_t)n_dbs * 280 * sizeof *gen),
           *imp = malloc((size_t)n_dbs * 2880 * sizeof *imp);
    char names[256] = "";
    size_t ng = 0, ni = 0;
    for (int d = 0; d < n_dbs; d++) {
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", d ? " " : "", dbs[d]);
        abis_finger_prep *p[FINGERS * IMPRESSIONS] = {0};
        for (int f = 0; f < FINGERS; f++)
            for (int i = 0; i < IMPRESSIONS; i++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s/%d_%d.tif", argv[1], dbs[d], 101 + f, i + 1);
                abis_image img;
                abis_error err = {0};
                abis_finger_template t;
                if (abis_image_read_file(path, &img, &err) != ABIS_OK) {
                    fprintf(stderr, "%s\n", err.message);
                    return 1;
                }
                if (abis_finger_extract(&img, 0, &t, NULL, &err) == ABIS_OK)
                    abis_finger_prepare(&t, &p[f * IMPRESSIONS + i], &err);
                else
                    fprintf(stderr, "%s: %s (scores 0)\n", path, err.message);
                abis_image_free(&img);
            }
        for (int u = 0; u < FINGERS * IMPRESSIONS; u++)
            for (int v = u + 1; v < FINGERS * IMPRESSIONS; v++) {
                double s = p[u] && p[v] ? abis_finger_match(p[u], p[v]) : 0;
                if (u / IMPRESSIONS == v / IMPRESSIONS)
                    gen[ng++] = s;
                else
                    imp[ni++] = s;
            }
        for (int k = 0; k < FINGERS * IMPRESSIONS; k++)
            abis_finger_prep_free(p[k]);
    }
    qsort(imp, ni, sizeof *imp, cmp_desc);
    static const double body[] = {0.5, 0.2, 0.1, 0.05, 0.02, 0.01};
    printf("{\"model\":\"table\",\"points\":[[0,1]");
    for (size_t k = 0; k < sizeof body / sizeof *body; k++) {
        size_t at = (size_t)(body[k] * (double)ni); /* the at-th highest has FMR (at+1)/n */
        printf(",[%.6g,%.6g]", imp[at], (double)(at + 1) / (double)ni);
    }
    size_t top = (size_t)(0.01 * (double)ni);
    double s1 = imp[top], excess = 0;
    for (size_t i = 0; i < top; i++)
        excess += imp[i] - s1;
    double beta = excess / (double)top, f1 = (double)(top + 1) / (double)ni;
    for (int dec = 3; dec <= 12; dec++) {
        double fmr = pow(10, -dec);
        printf(",[%.6g,%.6g]", s1 + beta * log(f1 / fmr), fmr);
    }
    double mg, sg, mi, si;
    mean_sd(gen, ng, &mg, &sg);
    mean_sd(imp, ni, &mi, &si);
    printf("],\"tail\":{\"fit\":\"exponential\",\"from\":%.6g,\"fmr\":%.6g,\"beta\":%.6g},"
           "\"llr\":{\"model\":\"gaussian\",\"genuine\":[%.6g,%.6g],\"impostor\":[%.6g,%.6g]},"
           "\"fitted_on\":{\"set\":\"FVC2002 %s\",\"genuine\":%zu,\"impostor\":%zu,"
           "\"impostor_max\":%.6g}}\n",
           s1, f1, beta, mg, sg, mi, si, names, ng, ni, imp[0]);
    free(gen);
    free(imp);
    return 0;
}
