/*
 * minutiae.c: minutiae from the ridge skeleton (skeleton.c), their
 * direction, and the removal of false ones.
 *
 * Detection: the crossing number of a skeleton pixel, half the number of
 * ridge/background changes round its eight neighbours (Arcelli and Baja;
 * Handbook of Fingerprint Recognition, 2nd ed., 3.7), is 1 at a ridge
 * ending and 3 at a bifurcation.
 *
 * Each candidate's branches (one for an ending, three for a bifurcation)
 * are traced along the skeleton for up to 2.5 ridge periods, which gives
 * what the removal rules need: which other candidate a branch reaches and
 * how far away.  The rules (T is the local ridge period; the thresholds
 * follow the usual post-processing of thinned prints, e.g. Tico and
 * Kuosmanen, "An algorithm for fingerprint image postprocessing", 2000,
 * and Handbook 3.7.2):
 *
 *   border   a candidate closer than 1.5 T to the background: ridges cut
 *            by the edge of the print or of the segmentation end there, and
 *            the ridges next to the edge are the least reliable;
 *   spur     an ending whose ridge reaches a bifurcation within 1.5 T: a
 *            whisker on a ridge (both go);
 *   short    two endings joined by a ridge shorter than 2 T: a dot or
 *            fragment (both go);
 *   bridge   two bifurcations joined within 1.5 T: a bridge between two
 *            ridges, or a small hole in one (both go);
 *   break    two endings closer than 1.5 T facing each other along the
 *            ridge flow: a broken ridge (both go);
 *   cluster  after the rules above, a minutia with three or more others
 *            within 1.5 T: a noisy patch (all of them go).
 *
 * Direction (finger.h): an ending points from its end along the ridge (to
 * the point T away on it); a bifurcation along the bisector of its two
 * branches that make the smallest angle.  The traced direction chooses
 * between the two senses of the (smoother, more precise) orientation field
 * there, unless they differ by more than 30 degrees (high curvature), when
 * the traced one is kept.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger_internal.h"

/* The border rule's distance, in ridge periods (1.0 to 2.0 were measured on
 * FVC2002; docs/FINGER.md). */
#define FP_BORDER 1.5f
/* Candidates beyond this are not looked at: an image with more has no
 * usable ridge structure left anyway. */
#define FP_MAX_CANDIDATES 3000

static const int NX[8] = {0, 1, 1, 1, 0, -1, -1, -1};
static const int NY[8] = {-1, -1, 0, 1, 1, 1, 0, -1};

typedef struct fp_branch {
    int to;       /* candidate reached, or -1 */
    float len;    /* steps to it */
    float dx, dy; /* image-space unit vector to the point T along the branch */
} fp_branch;

typedef struct fp_cand {
    int x, y;
    int type;
    int nbr;
    fp_branch br[3];
    float angle;
    int gone;
} fp_cand;

typedef struct tracer {
    const uint8_t *skel;
    const int *idx; /* candidate index per pixel, -1 */
    uint32_t *stamp;
    uint32_t cur;
    int w, h;
} tracer;

/* Trace from candidate `from` at (x0, y0) into its branch starting at
 * (x1, y1), for at most `maxlen` steps; the direction sample is taken at
 * `dirlen` steps (or the end, if nearer). */
static fp_branch trace(tracer *t, int from, int x0, int y0, int x1, int y1, int maxlen, int dirlen)
{
    fp_branch b = {-1, (float)maxlen, 0, 0};
    int w = t->w;
    uint32_t s = ++t->cur;
    t->stamp[(size_t)y0 * w + x0] = s;
    for (int k = 0; k < 8; k++) {
        int xx = x0 + NX[k], yy = y0 + NY[k];
        if (t->skel[(size_t)yy * w + xx])
            t->stamp[(size_t)yy * w + xx] = s;
    }
    int x = x1, y = y1, steps = 1;
    int sx = x1, sy = y1;
    for (;;) {
        if (steps <= dirlen) {
            sx = x;
            sy = y;
        }
        int ci = t->idx[(size_t)y * w + x];
        if (ci >= 0 && ci != from) {
            b.to = ci;
            b.len = (float)steps;
            break;
        }
        if (steps >= maxlen)
            break;
        /* a neighbouring candidate ends the trace there */
        int nx = -1, ny = -1, hit = -1;
        for (int k = 0; k < 8 && hit < 0; k++) {
            int xx = x + NX[k], yy = y + NY[k];
            size_t i = (size_t)yy * w + xx;
            if (xx <= 0 || yy <= 0 || xx >= w - 1 || yy >= t->h - 1 || !t->skel[i])
                continue;
            if (t->idx[i] >= 0 && t->idx[i] != from && t->stamp[i] != s)
                hit = t->idx[i];
        }
        if (hit >= 0) {
            b.to = hit;
            b.len = (float)(steps + 1);
            break;
        }
        /* else the next unvisited ridge pixel, edge neighbours first */
        for (int pass = 0; pass < 2 && nx < 0; pass++)
            for (int k = pass; k < 8; k += 2) {
                int xx = x + NX[k], yy = y + NY[k];
                size_t i = (size_t)yy * w + xx;
                if (xx <= 0 || yy <= 0 || xx >= w - 1 || yy >= t->h - 1)
                    continue;
                if (t->skel[i] && t->stamp[i] != s) {
                    nx = xx;
                    ny = yy;
                    break;
                }
            }
        if (nx < 0) {
            b.len = (float)steps; /* dead end (the mask's edge) */
            break;
        }
        t->stamp[(size_t)y * w + x] = s;
        x = nx;
        y = ny;
        steps++;
    }
    float dx = (float)(sx - x0), dy = (float)(sy - y0), n = sqrtf(dx * dx + dy * dy);
    if (n > 0) {
        b.dx = dx / n;
        b.dy = dy / n;
    }
    return b;
}

/* Crossing number of a skeleton pixel from its neighbourhood. */
static int crossing(const uint8_t *skel, int w, size_t i)
{
    int p[8], c = 0;
    for (int k = 0; k < 8; k++)
        p[k] = skel[(long)i + NY[k] * w + NX[k]] != 0;
    for (int k = 0; k < 8; k++)
        c += p[k] != p[(k + 1) & 7];
    return c / 2;
}

/* Counter-clockwise angle of an image-space vector (y down). */
static float ccw_angle(float dx, float dy)
{
    return fp_wrap2pi(atan2f(-dy, dx));
}

static float angle_diff(float a, float b)
{
    float d = fabsf(a - b);
    while (d > (float)(2 * M_PI))
        d -= (float)(2 * M_PI);
    return d > (float)M_PI ? (float)(2 * M_PI) - d : d;
}

/* The direction of a candidate from its traced branches. */
static float traced_angle(const fp_cand *c)
{
    if (c->type == ABIS_MINUTIA_ENDING || c->nbr < 3)
        return ccw_angle(c->br[0].dx, c->br[0].dy);
    int bi = 0, bj = 1;
    float best = -2;
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++) {
            float d = c->br[i].dx * c->br[j].dx + c->br[i].dy * c->br[j].dy;
            if (d > best) {
                best = d;
                bi = i;
                bj = j;
            }
        }
    float dx = c->br[bi].dx + c->br[bj].dx, dy = c->br[bi].dy + c->br[bj].dy;
    if (dx * dx + dy * dy < 1e-6f) /* opposite branches: take the third's opposite */
        return ccw_angle(-c->br[3 - bi - bj].dx, -c->br[3 - bi - bj].dy);
    return ccw_angle(dx, dy);
}

/* The final direction: the field's orientation in the traced sense. */
static float refine_angle(const fp_field *f, const fp_cand *c, float traced)
{
    float th = fp_field_theta_at(f, (float)c->x + 0.5f, (float)c->y + 0.5f);
    float a = angle_diff(th, traced) <= (float)(M_PI / 2) ? th : th + (float)M_PI;
    return angle_diff(a, traced) <= (float)(M_PI / 6) ? fp_wrap2pi(a) : traced;
}

typedef struct scored {
    float q;
    int i;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return x->q > y->q ? -1 : x->q < y->q ? 1 : x->i - y->i;
}

abis_status fp_minutiae_find(const fp_field *f, const uint8_t *skel, abis_minutia *out, int cap,
                             int *n_out, int *raw, abis_error *err)
{
    int w = f->w, h = f->h;
    size_t np = (size_t)w * h;
    *n_out = 0;
    *raw = 0;
    int *idx = malloc(np * sizeof *idx);
    uint32_t *stamp = calloc(np, sizeof *stamp);
    fp_cand *c = malloc(FP_MAX_CANDIDATES * sizeof *c);
    scored *order = malloc(FP_MAX_CANDIDATES * sizeof *order);
    if (!idx || !stamp || !c || !order) {
        free(idx), free(stamp), free(c), free(order);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for minutiae");
    }
    int nc = 0;
    for (size_t i = 0; i < np; i++)
        idx[i] = -1;
    for (int y = 1; y < h - 1 && nc < FP_MAX_CANDIDATES; y++)
        for (int x = 1; x < w - 1 && nc < FP_MAX_CANDIDATES; x++) {
            size_t i = (size_t)y * w + x;
            if (!skel[i] || !f->mask[i])
                continue;
            int cn = crossing(skel, w, i);
            if (cn != 1 && cn != 3)
                continue;
            memset(&c[nc], 0, sizeof c[nc]);
            c[nc].x = x;
            c[nc].y = y;
            c[nc].type = cn == 1 ? ABIS_MINUTIA_ENDING : ABIS_MINUTIA_BIFURCATION;
            idx[i] = nc++;
        }
    *raw = nc;

    /* trace every branch */
    tracer t = {skel, idx, stamp, 0, w, h};
    for (int k = 0; k < nc; k++) {
        fp_cand *m = &c[k];
        size_t i = (size_t)m->y * w + m->x;
        float T = fp_field_period_at(f, m->x, m->y);
        int maxlen = (int)ceilf(2.5f * T), dirlen = (int)lrintf(T);
        /* branch starts: the first pixel of each run of ridge neighbours,
         * an edge neighbour where the run has one */
        int p[8];
        for (int q = 0; q < 8; q++)
            p[q] = skel[(long)i + NY[q] * w + NX[q]] != 0;
        int s0 = 0;
        while (s0 < 8 && p[s0])
            s0++;
        for (int q = 1; q <= 8 && m->nbr < 3; q++) {
            int a = (s0 + q) & 7;
            if (!p[a] || p[(a + 7) & 7])
                continue; /* not the start of a run */
            int pick = a;
            for (int r = a; p[r & 7] && r < a + 8; r++)
                if (!((r & 7) & 1)) {
                    pick = r & 7;
                    break;
                }
            m->br[m->nbr++] =
                trace(&t, k, m->x, m->y, m->x + NX[pick], m->y + NY[pick], maxlen, dirlen);
        }
    }

    /* removal rules, each on the candidates as they came out of detection */
    for (int k = 0; k < nc; k++) {
        fp_cand *m = &c[k];
        float T = fp_field_period_at(f, m->x, m->y);
        if (f->border[(size_t)m->y * w + m->x] < FP_BORDER * T)
            m->gone = 1;
        for (int b = 0; b < m->nbr; b++) {
            int o = m->br[b].to;
            if (o < 0)
                continue;
            float len = m->br[b].len;
            int te = m->type == ABIS_MINUTIA_ENDING, oe = c[o].type == ABIS_MINUTIA_ENDING;
            if ((te != oe && len < 1.5f * T) || (te && oe && len < 2 * T) ||
                (!te && !oe && len < 1.5f * T)) {
                m->gone = 1;
                c[o].gone = 1;
            }
        }
    }
    for (int k = 0; k < nc; k++)
        c[k].angle = traced_angle(&c[k]);
    /* breaks and clusters need distances; candidates are in raster order,
     * so a window of rows keeps each search local */
    for (int k = 0; k < nc; k++) {
        fp_cand *m = &c[k];
        if (m->type != ABIS_MINUTIA_ENDING)
            continue;
        float r = 1.5f * fp_field_period_at(f, m->x, m->y);
        for (int j = k + 1; j < nc && (float)(c[j].y - m->y) <= r; j++) {
            float dx = (float)(c[j].x - m->x), dy = (float)(c[j].y - m->y);
            if (c[j].type != ABIS_MINUTIA_ENDING || dx * dx + dy * dy > r * r)
                continue;
            /* facing each other: each one's direction points away from the other */
            float ab = ccw_angle(dx, dy), ba = ccw_angle(-dx, -dy);
            if (angle_diff(m->angle, ab) > (float)(3 * M_PI / 4) &&
                angle_diff(c[j].angle, ba) > (float)(3 * M_PI / 4)) {
                m->gone = 1;
                c[j].gone = 1;
            }
        }
    }
    /* clusters among what is left */
    uint8_t *drop = calloc((size_t)nc + 1, 1);
    if (!drop) {
        free(idx), free(stamp), free(c), free(order);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for minutiae");
    }
    for (int k = 0; k < nc; k++) {
        if (c[k].gone)
            continue;
        float r = 1.5f * fp_field_period_at(f, c[k].x, c[k].y);
        int near = 0, lo = k, hi = k;
        while (lo > 0 && (float)(c[k].y - c[lo - 1].y) <= r)
            lo--;
        while (hi < nc - 1 && (float)(c[hi + 1].y - c[k].y) <= r)
            hi++;
        for (int j = lo; j <= hi; j++) {
            float dx = (float)(c[j].x - c[k].x), dy = (float)(c[j].y - c[k].y);
            near += j != k && !c[j].gone && dx * dx + dy * dy <= r * r;
        }
        if (near < 3)
            continue;
        for (int j = lo; j <= hi; j++) {
            float dx = (float)(c[j].x - c[k].x), dy = (float)(c[j].y - c[k].y);
            if (!c[j].gone && dx * dx + dy * dy <= r * r)
                drop[j] = 1;
        }
    }
    for (int k = 0; k < nc; k++)
        if (drop[k])
            c[k].gone = 1;
    free(drop);

    /* the survivors, best quality first */
    int ns = 0;
    for (int k = 0; k < nc; k++)
        if (!c[k].gone) {
            order[ns].q = fp_quality_minutia(f, (float)c[k].x, (float)c[k].y);
            order[ns].i = k;
            ns++;
        }
    qsort(order, (size_t)ns, sizeof *order, cmp_scored);
    int n = ns < cap ? ns : cap;
    for (int k = 0; k < n; k++) {
        fp_cand *m = &c[order[k].i];
        out[k].x = (float)m->x;
        out[k].y = (float)m->y;
        out[k].angle = refine_angle(f, m, m->angle);
        out[k].type = (uint8_t)m->type;
        out[k].quality = (uint8_t)order[k].q;
    }
    *n_out = n;
    free(idx), free(stamp), free(c), free(order);
    return ABIS_OK;
}
