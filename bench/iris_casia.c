/*
 * iris_casia.c: evaluate the iris encoder on CASIA-IrisV1 (internal use only:
 * the images stay outside the project; see /work/shared/data/iris/README.md).
 *
 *   bench_iris_casia [DIR]   (default /work/shared/data/iris/casia-v1)
 *
 * Encodes every <eye>/<session>/<eye>_<session>_<k>.bmp, reports refusals and
 * their reasons, ms per image, and for all pairs and for cross-session
 * (session 1 enrolled, session 2 probes) the EER, FNMR at FMR 1e-3 and d'
 * of the Hamming distances (a scalar distance of its own, Daugman's
 * normalisation as in iris.h, shifts +-ABIS_IRIS_MAX_SHIFT).
 *
 * Then the same for two-eye persons: CASIA-IrisV1 does not say which eye
 * classes belong to one person, so person p (1..27) is the synthetic pair of
 * eye classes 2p - 1 (right) and 2p (left), and a person's sample (session,
 * k) is image k of that session of both eyes.  The two eyes' scores
 * (1 - HD) are fused as the engine fuses them: the sum of the log-likelihood
 * ratios of the iris modality's default calibration (src/core/modality_iris.c,
 * src/match/fusion.c).  Pairs where either eye failed to encode are left
 * out (counted).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/modality.h"
#include "match/match.h"
#include "modality/iris/iris.h"

#define EYES 54

typedef struct sample {
    int eye, session, k, ok;
    abis_iris_code code;
} sample;

static int bit(const uint8_t *b, int i) { return (b[i / 8] >> (i % 8)) & 1; }

static double hd(const abis_iris_code *p, const abis_iris_code *g)
{
    double best = 0.5;
    int first = 1;
    for (int s = -ABIS_IRIS_MAX_SHIFT; s <= ABIS_IRIS_MAX_SHIFT; s++) {
        int n = 0, d = 0;
        for (int r = 0; r < ABIS_IRIS_RINGS; r++)
            for (int a = 0; a < ABIS_IRIS_ANGLES; a++)
                for (int q = 0; q < 2; q++) {
                    int ip = (r * ABIS_IRIS_ANGLES + a) * 2 + q;
                    int ig = (r * ABIS_IRIS_ANGLES + (a + s + ABIS_IRIS_ANGLES) % ABIS_IRIS_ANGLES) * 2 + q;
                    if (bit(p->mask, ip) && bit(g->mask, ig)) {
                        n++;
                        d += bit(p->code, ip) != bit(g->code, ig);
                    }
                }
        double v = n ? 0.5 - (0.5 - (double)d / n) * sqrt(n / 911.0) : 0.5;
        if (first || v < best)
            best = v;
        first = 0;
    }
    return best;
}

typedef struct scores {
    double *v;
    size_t n, cap;
} scores;

static void push(scores *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            exit(1);
    }
    s->v[s->n++] = v;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Report EER, FNMR at FMR 1e-3 and d' (distances: lower = more similar). */
static void report(const char *name, scores *gen, scores *imp)
{
    qsort(gen->v, gen->n, sizeof(double), cmpd);
    qsort(imp->v, imp->n, sizeof(double), cmpd);
    double mg = 0, mi = 0, vg = 0, vi = 0;
    for (size_t i = 0; i < gen->n; i++)
        mg += gen->v[i];
    for (size_t i = 0; i < imp->n; i++)
        mi += imp->v[i];
    mg /= gen->n;
    mi /= imp->n;
    for (size_t i = 0; i < gen->n; i++)
        vg += (gen->v[i] - mg) * (gen->v[i] - mg);
    for (size_t i = 0; i < imp->n; i++)
        vi += (imp->v[i] - mi) * (imp->v[i] - mi);
    vg /= gen->n;
    vi /= imp->n;
    double dprime = fabs(mi - mg) / sqrt((vg + vi) / 2);
    /* Sweep thresholds t: accept if d <= t. */
    double eer = 1, best_gap = 2, fnmr3 = 1;
    size_t gi = 0, ii = 0;
    for (;;) {
        double t;
        if (gi < gen->n && (ii >= imp->n || gen->v[gi] <= imp->v[ii]))
            t = gen->v[gi];
        else if (ii < imp->n)
            t = imp->v[ii];
        else
            break;
        while (gi < gen->n && gen->v[gi] <= t)
            gi++;
        while (ii < imp->n && imp->v[ii] <= t)
            ii++;
        double fnmr = 1 - (double)gi / gen->n, fmr = (double)ii / imp->n;
        if (fabs(fnmr - fmr) < best_gap) {
            best_gap = fabs(fnmr - fmr);
            eer = (fnmr + fmr) / 2;
        }
        if (fmr <= 1e-3 && fnmr < fnmr3)
            fnmr3 = fnmr;
    }
    double fnmr0 = 1;
    for (size_t i = 0; i < gen->n; i++)
        if (gen->v[i] < imp->v[0])
            fnmr0 = 1 - (double)(i + 1) / gen->n;
    printf("%-14s genuine %6zu (mean %.3f sd %.3f)  impostor %7zu (mean %.3f sd %.3f)\n", name,
           gen->n, mg, sqrt(vg), imp->n, mi, sqrt(vi));
    printf("%-14s EER %.3f %%  FNMR@FMR1e-3 %.3f %%  FNMR@FMR0 %.3f %%  d' %.2f\n", name,
           100 * eer, 100 * fnmr3, 100 * fnmr0, dprime);
}

/* The sample of eye `eye`, session, k in s[0..n), or NULL. */
static const sample *find(const sample *s, int n, int eye, int session, int k)
{
    for (int i = 0; i < n; i++)
        if (s[i].eye == eye && s[i].session == session && s[i].k == k)
            return &s[i];
    return NULL;
}

/* Two-eye persons (see the top of the file): fused and single-eye figures
 * over the same pairs. */
static int two_eyes(const sample *s, int n)
{
    char json[ABIS_DEFAULT_CALIBRATION_MAX];
    abis_modality_rec rec = {0};
    abis_modality_kind_find("iriscode")->default_calibration(&rec, json, sizeof json);
    abis_calibration *cal;
    abis_error err = {0};
    if (abis_calibration_parse(json, &cal, &err) != ABIS_OK) {
        fprintf(stderr, "iris default calibration: %s\n", err.message);
        return 1;
    }
    const abis_calibration *cals[2] = {cal, cal};
    enum { PERSONS = EYES / 2 };
    scores g[2][3] = {{{0}}}, im[2][3] = {{{0}}}; /* [all, cross][right, left, fused] */
    int skipped = 0;
    for (int p = 1; p <= PERSONS; p++)
        for (int q = p; q <= PERSONS; q++)
            for (int a = 0; a < 7; a++)
                for (int b = 0; b < 7; b++) {
                    int sa = a < 3 ? 1 : 2, ka = a < 3 ? a + 1 : a - 2;
                    int sb = b < 3 ? 1 : 2, kb = b < 3 ? b + 1 : b - 2;
                    if (p == q && b <= a)
                        continue; /* each unordered genuine pair once */
                    const sample *ra = find(s, n, 2 * p - 1, sa, ka), *la = find(s, n, 2 * p, sa, ka);
                    const sample *rb = find(s, n, 2 * q - 1, sb, kb), *lb = find(s, n, 2 * q, sb, kb);
                    if (!ra || !la || !rb || !lb || !ra->ok || !la->ok || !rb->ok || !lb->ok) {
                        skipped++;
                        continue;
                    }
                    double sc[2] = {1 - hd(&rb->code, &ra->code), 1 - hd(&lb->code, &la->code)};
                    double llr, fmr;
                    if (abis_fusion_lr(cals, sc, 2, &llr, &fmr, &err) != ABIS_OK) {
                        fprintf(stderr, "fusion: %s\n", err.message);
                        abis_calibration_free(cal);
                        return 1;
                    }
                    /* report() takes distances: lower = more alike. */
                    double d[3] = {1 - sc[0], 1 - sc[1], -llr};
                    int cross = sa == 1 && sb == 2;
                    for (int m = 0; m < 3; m++) {
                        push(p == q ? &g[0][m] : &im[0][m], d[m]);
                        if (cross || (p != q && sa == 2 && sb == 1))
                            push(p == q ? &g[1][m] : &im[1][m], d[m]);
                    }
                }
    printf("two-eye persons %d (eye classes 2p-1 right, 2p left), pairs skipped for a failed "
           "eye %d\n",
           PERSONS, skipped);
    static const char *names[2][3] = {{"2eye right", "2eye left", "2eye fused"},
                                      {"2eye-x right", "2eye-x left", "2eye-x fused"}};
    for (int pr = 0; pr < 2; pr++)
        for (int m = 0; m < 3; m++) {
            report(names[pr][m], &g[pr][m], &im[pr][m]);
            free(g[pr][m].v);
            free(im[pr][m].v);
        }
    abis_calibration_free(cal);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/work/shared/data/iris/casia-v1";
    sample *s = calloc(EYES * 7, sizeof *s);
    if (!s)
        return 1;
    int n = 0, refused = 0;
    double ms = 0, usable = 0, quality = 0;
    for (int e = 1; e <= EYES; e++)
        for (int ses = 1; ses <= 2; ses++)
            for (int k = 1; k <= (ses == 1 ? 3 : 4); k++) {
                char path[512];
                snprintf(path, sizeof path, "%s/%03d/%d/%03d_%d_%d.bmp", dir, e, ses, e, ses, k);
                abis_image img;
                abis_error err = {0};
                sample *x = &s[n++];
                x->eye = e;
                x->session = ses;
                x->k = k;
                if (abis_image_read_file(path, &img, &err) != ABIS_OK) {
                    printf("refused %s: %s\n", path + strlen(dir), err.message);
                    refused++;
                    continue;
                }
                abis_iris_info info;
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                abis_status st = abis_iris_encode(&img, &x->code, &info, &err);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                ms += (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
                if (getenv("IRIS_VERBOSE"))
                    printf("%s pupil %.1f,%.1f r%.1f iris %.1f,%.1f r%.1f usable %.2f q %.0f\n",
                           path + strlen(dir), info.pupil_x, info.pupil_y, info.pupil_r,
                           info.iris_x, info.iris_y, info.iris_r, info.usable_fraction,
                           info.quality);
                abis_image_free(&img);
                if (st != ABIS_OK) {
                    printf("refused %s: %s\n", path + strlen(dir), err.message);
                    refused++;
                    continue;
                }
                x->ok = 1;
                usable += info.usable_fraction;
                quality += info.quality;
            }
    int ok = n - refused;
    printf("images %d  refused %d  encode %.2f ms/image  mean usable %.3f  mean quality %.1f\n", n,
           refused, ms / n, ok ? usable / ok : 0, ok ? quality / ok : 0);
    scores ga = {0}, ia = {0}, gx = {0}, ix = {0};
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!s[i].ok || !s[j].ok)
                continue;
            double d = hd(&s[j].code, &s[i].code);
            push(s[i].eye == s[j].eye ? &ga : &ia, d);
            if (s[i].session == 1 && s[j].session == 2)
                push(s[i].eye == s[j].eye ? &gx : &ix, d);
        }
    report("all pairs", &ga, &ia);
    report("cross-session", &gx, &ix);
    int rc = two_eyes(s, n);
    free(ga.v);
    free(ia.v);
    free(gx.v);
    free(ix.v);
    free(s);
    return rc;
}
