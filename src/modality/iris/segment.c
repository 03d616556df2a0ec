/*
 * segment.c: iris segmentation of our own -- pupil, limbus, eyelids and the
 * intensity thresholds for eyelashes and reflections (docs/iris-encoding.md).
 *
 *   pupil:   the most circular dark blob over a ladder of thresholds (after a
 *            morphological opening that cuts thin eyelashes off), refined by
 *            Daugman's integro-differential operator over the full circle;
 *   limbus:  the integro-differential operator on a smoothed image, over
 *            centres near the pupil centre and radii from 1.35 to 5 pupil
 *            radii, on the lateral sectors only (eyelids rarely cover them);
 *   eyelids: per-angle search for the strongest outward brightening inside
 *            the iris in the upper/lower sectors, then a trimmed least-squares
 *            parabola through the points found.
 * Everything works on buffers allocated per call: no global state.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/iris/iris_internal.h"

#define PI 3.14159265358979323846
/* The limbus is a soft edge next to the sharp collarette: its derivative is
 * taken over +-6 px, and the smallest iris radius is 1.45 pupil radii (pupil
 * dilation at most 0.7, the ISO/IEC 29794-6 upper bound). */
#define LIMBUS_HW 6
#define LIMBUS_RMIN 1.45

typedef struct fimg {
    int w, h;
    float *p;
} fimg;

/* Separable Gaussian blur with clamped borders. */
static int blur(const fimg *in, fimg *out, double sigma)
{
    int rad = (int)ceil(3 * sigma);
    if (rad < 1)
        rad = 1;
    float *k = malloc(sizeof *k * (size_t)(2 * rad + 1));
    float *tmp = malloc(sizeof *tmp * (size_t)in->w * (size_t)in->h);
    if (!k || !tmp) {
        free(k);
        free(tmp);
        return -1;
    }
    double s = 0;
    for (int i = -rad; i <= rad; i++)
        s += k[i + rad] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * rad; i++)
        k[i] = (float)(k[i] / s);
    int w = in->w, h = in->h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float a = 0;
            for (int i = -rad; i <= rad; i++) {
                int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                a += k[i + rad] * in->p[(size_t)y * w + xx];
            }
            tmp[(size_t)y * w + x] = a;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float a = 0;
            for (int i = -rad; i <= rad; i++) {
                int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                a += k[i + rad] * tmp[(size_t)yy * w + x];
            }
            out->p[(size_t)y * w + x] = a;
        }
    free(k);
    free(tmp);
    return 0;
}

/* Bilinear sample; returns 0 when (x, y) is outside the image. */
static int sample(const fimg *g, double x, double y, double *v)
{
    if (x < 0 || y < 0 || x > g->w - 1 || y > g->h - 1)
        return 0;
    int x0 = (int)x, y0 = (int)y;
    if (x0 >= g->w - 1)
        x0 = g->w - 2;
    if (y0 >= g->h - 1)
        y0 = g->h - 2;
    if (x0 < 0 || y0 < 0) { /* 1-pixel-wide image */
        *v = g->p[(size_t)(y0 < 0 ? 0 : y0) * g->w + (x0 < 0 ? 0 : x0)];
        return 1;
    }
    double fx = x - x0, fy = y - y0;
    const float *r0 = g->p + (size_t)y0 * g->w + x0, *r1 = r0 + g->w;
    *v = (1 - fy) * ((1 - fx) * r0[0] + fx * r0[1]) + fy * ((1 - fx) * r1[0] + fx * r1[1]);
    return 1;
}

/* Mean of g on the arc(s) of circle (cx, cy, r) at the given angles; -1 when
 * a point falls outside the image (a mean over a changing subset of points
 * would show false edges). */
static double arc_mean(const fimg *g, double cx, double cy, double r, const double *cs,
                       const double *sn, int n)
{
    double s = 0, v;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (sample(g, cx + r * cs[i], cy + r * sn[i], &v)) {
            s += v;
            k++;
        }
    return k < n ? -1 : s / k;
}

/* Daugman's integro-differential operator: over centres (cx +- span, cy +-
 * span, step) and radii rmin..rmax (1 px), the largest smoothed radial
 * derivative of the arc mean, d/dr = mean(I(r+1..r+hw)) - mean(I(r-hw..r-1)).
 * With `inner` (a circle x, y, r), only circles enclosing it with a 3-px
 * margin count.  Updates *bx, *by, *br; returns the best derivative. */
static double integro_diff(const fimg *g, double cx, double cy, double span, double step,
                           double rmin, double rmax, const double *cs, const double *sn, int n,
                           const double *inner, int hw, double *bx, double *by, double *br)
{
    int nr = (int)(rmax - rmin) + 2 * hw + 1;
    if (nr < 8)
        return -1e9;
    double *prof = malloc(sizeof *prof * (size_t)nr);
    if (!prof)
        return -1e9;
    double best = -1e9;
    for (double dy = -span; dy <= span + 1e-9; dy += step)
        for (double dx = -span; dx <= span + 1e-9; dx += step) {
            double x = cx + dx, y = cy + dy;
            double rlow = inner ? hypot(x - inner[0], y - inner[1]) + inner[2] + 3 : 0;
            for (int i = 0; i < nr; i++)
                prof[i] = arc_mean(g, x, y, rmin - hw + i, cs, sn, n);
            for (int i = hw; i + hw < nr; i++) {
                if (prof[i - hw] < 0 || prof[i + hw] < 0 || rmin - hw + i < rlow)
                    continue;
                double d = 0;
                for (int k = 1; k <= hw; k++)
                    d += prof[i + k] - prof[i - k];
                d /= hw;
                if (d > best) {
                    best = d;
                    *bx = x;
                    *by = y;
                    *br = rmin - hw + i;
                }
            }
        }
    free(prof);
    return best;
}

/* Binary erosion/dilation with a (2 rad + 1)^2 square, separably. */
static void morph(uint8_t *m, uint8_t *tmp, int w, int h, int rad, int dilate)
{
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *src = pass ? tmp : m;
        uint8_t *dst = pass ? m : tmp;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int any = 0, all = 1;
                for (int i = -rad; i <= rad; i++) {
                    int xx = pass ? x : x + i, yy = pass ? y + i : y;
                    int v = (xx < 0 || yy < 0 || xx >= w || yy >= h) ? 0
                                                                     : src[(size_t)yy * w + xx];
                    any |= v;
                    all &= v;
                }
                dst[(size_t)y * w + x] = (uint8_t)(dilate ? any : all);
            }
    }
}

typedef struct blob {
    double cx, cy, r, score;
} blob;

/* Among the 4-connected components of m, the most circular one (filled share
 * of its bounding circle times its aspect ratio) of at least min_area pixels
 * that does not touch the image border.  Returns 1 if found. */
static int best_blob(uint8_t *m, int w, int h, int *stack, double min_area, blob *best)
{
    int found = 0;
    for (int start = 0; start < w * h; start++) {
        if (m[start] != 1)
            continue;
        long area = 0;
        double sx = 0, sy = 0;
        int x0 = w, x1 = -1, y0 = h, y1 = -1, sp = 0;
        stack[sp++] = start;
        m[start] = 2;
        while (sp > 0) {
            int p = stack[--sp], x = p % w, y = p / w;
            area++;
            sx += x;
            sy += y;
            if (x < x0)
                x0 = x;
            if (x > x1)
                x1 = x;
            if (y < y0)
                y0 = y;
            if (y > y1)
                y1 = y;
            const int nb[4] = {x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1,
                               y < h - 1 ? p + w : -1};
            for (int k = 0; k < 4; k++)
                if (nb[k] >= 0 && m[nb[k]] == 1) {
                    m[nb[k]] = 2;
                    stack[sp++] = nb[k];
                }
        }
        if (area < min_area || x0 == 0 || y0 == 0 || x1 == w - 1 || y1 == h - 1)
            continue;
        double bw = x1 - x0 + 1, bh = y1 - y0 + 1;
        double rb = (bw + bh) / 4;
        double fill = area / (PI * rb * rb);
        double aspect = bw < bh ? bw / bh : bh / bw;
        if (fill > 1)
            fill = 1 / fill;
        if (fill < 0.6 || aspect < 0.6)
            continue;
        double score = fill * aspect + 0.05 * log((double)area);
        if (!found || score > best->score) {
            found = 1;
            /* Bounding-box centre and radius: robust to reflections inside. */
            best->cx = (x0 + x1) / 2.0;
            best->cy = (y0 + y1) / 2.0;
            best->r = rb;
            best->score = score;
            (void)sx;
            (void)sy;
        }
    }
    return found;
}

/* The pupil: dark blobs over a ladder of thresholds, then the
 * integro-differential refinement. */
static abis_status find_pupil(const fimg *g, iris_seg *seg, abis_error *err)
{
    int w = g->w, h = g->h;
    size_t n = (size_t)w * h;
    long hist[256] = {0};
    for (size_t i = 0; i < n; i++) {
        int v = (int)lrintf(g->p[i]);
        hist[v < 0 ? 0 : v > 255 ? 255 : v]++;
    }
    int v1 = 0, v50 = 0;
    long acc = 0;
    for (int v = 0; v < 256; v++) {
        acc += hist[v];
        if (acc * 1000 < (long)n * 2)
            v1 = v + 1;
        if (acc * 2 < (long)n)
            v50 = v + 1;
    }
    uint8_t *m = malloc(n), *tmp = malloc(n);
    int *stack = malloc(sizeof *stack * n);
    if (!m || !tmp || !stack) {
        free(m);
        free(tmp);
        free(stack);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory segmenting the iris");
    }
    /* Smallest pupil considered: radius 2 % of the shorter side (a 640x480
     * iris camera images the pupil at 20-60 px radius, ISO/IEC 19794-6). */
    double rmin = fmax(3, 0.02 * (w < h ? w : h));
    int open_rad = (int)fmax(1, rmin / 3);
    double step = fmax(3, (v50 - v1) / 12.0);
    blob best = {0, 0, 0, -1}, first = best;
    int found = 0;
    for (int k = 1; k <= 8; k++) {
        double t = v1 + k * step;
        if (t >= v50)
            break;
        for (size_t i = 0; i < n; i++)
            m[i] = g->p[i] < t;
        morph(m, tmp, w, h, open_rad, 0);
        morph(m, tmp, w, h, open_rad, 1);
        blob b = {0, 0, 0, -1};
        if (!best_blob(m, w, h, stack, PI * rmin * rmin, &b))
            continue;
        /* The first round dark blob is the pupil; higher thresholds may only
         * grow it a little (a shaded pupil rim), not jump to the iris. */
        if (!found) {
            first = b;
            best = b;
            found = 1;
        } else if (hypot(b.cx - first.cx, b.cy - first.cy) < 0.5 * first.r &&
                   b.r <= 1.25 * first.r && b.score > best.score) {
            best = b;
        }
    }
    free(m);
    free(tmp);
    free(stack);
    if (!found)
        return abis_error_set(err, ABIS_E_INVALID,
                              "no pupil found: no round dark region of at least %.0f px radius",
                              rmin);
    /* Refine: full circle, 64 angles. */
    double cs[64], sn[64];
    for (int i = 0; i < 64; i++) {
        cs[i] = cos(2 * PI * i / 64);
        sn[i] = sin(2 * PI * i / 64);
    }
    double bx = best.cx, by = best.cy, br = best.r;
    double span = fmax(2, 0.1 * best.r);
    double d = integro_diff(g, best.cx, best.cy, span, 1, fmax(2, 0.8 * best.r), 1.25 * best.r + 1,
                            cs, sn, 64, NULL, 3, &bx, &by, &br);
    if (d <= 0)
        return abis_error_set(err, ABIS_E_INVALID, "no pupil found: no dark-to-bright boundary");
    seg->px = bx;
    seg->py = by;
    seg->pr = br;
    return ABIS_OK;
}

/* The limbus: integro-differential operator on the lateral sectors. */
static abis_status find_limbus(const fimg *g, iris_seg *seg, double *edge, abis_error *err)
{
    /* Lateral sectors, -30..+40 degrees either side (+ is downwards): the
     * upper eyelid covers the top of the iris in most eyes, the lower one
     * less often (Daugman 2004 restricts the same way). */
    enum { NA = 2 * 29 };
    double cs[NA], sn[NA];
    for (int i = 0; i < NA / 2; i++) {
        double a = (-30 + 2.5 * i) * PI / 180;
        cs[2 * i] = cos(a);
        sn[2 * i] = sin(a);
        cs[2 * i + 1] = -cos(a);
        sn[2 * i + 1] = sin(a);
    }
    /* Pupil/iris radius ratio is 0.2-0.75 in real eyes (ISO/IEC 29794-6
     * treats outside 0.2-0.7 as abnormal dilation). */
    double rmin = fmax(seg->pr * LIMBUS_RMIN, seg->pr + 4);
    double rmax = fmin(seg->pr * 5, 0.75 * (g->w > g->h ? g->w : g->h));
    double span = fmax(4, 0.25 * seg->pr);
    double bx = seg->px, by = seg->py, br = rmin;
    double pupil[3] = {seg->px, seg->py, seg->pr};
    double d = integro_diff(g, seg->px, seg->py, span, 2, rmin, rmax, cs, sn, NA, pupil, LIMBUS_HW,
                            &bx, &by, &br);
    d = integro_diff(g, bx, by, 2, 1, fmax(rmin, br - 4), fmin(rmax, br + 4), cs, sn, NA, pupil,
                     LIMBUS_HW, &bx, &by, &br);
    if (d < 2)
        return abis_error_set(err, ABIS_E_INVALID,
                              "no iris found: no iris-sclera boundary around the pupil");
    /* The pupil must lie inside the iris. */
    if (hypot(bx - seg->px, by - seg->py) + seg->pr > br - 1)
        return abis_error_set(err, ABIS_E_INVALID,
                              "no iris found: the boundary found does not enclose the pupil");
    seg->ix = bx;
    seg->iy = by;
    seg->ir = br;
    *edge = d;
    return ABIS_OK;
}

/* Least-squares y = a u^2 + b u + c (u = x - ix) through (xs, ys), with one
 * trimming pass; forces the curvature's sign (upper lid opens downwards in
 * image coordinates, a >= 0; lower lid a <= 0) by falling back to a line. */
static int fit_parabola(const double *xs, const double *ys, int n, double ix, int upper,
                        double out[3])
{
    uint8_t keep[128];
    for (int i = 0; i < n; i++)
        keep[i] = 1;
    for (int pass = 0; pass < 2; pass++) {
        double S[5] = {0}, T[3] = {0};
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (!keep[i])
                continue;
            double u = xs[i] - ix, p = 1;
            for (int j = 0; j < 5; j++) {
                S[j] += p;
                if (j < 3)
                    T[j] += p * ys[i];
                p *= u;
            }
            k++;
        }
        if (k < 4)
            return 0;
        /* Normal equations [S4 S3 S2; S3 S2 S1; S2 S1 S0] (a b c) = (T2 T1 T0). */
        double A[3][4] = {{S[4], S[3], S[2], T[2]}, {S[3], S[2], S[1], T[1]},
                          {S[2], S[1], S[0], T[0]}};
        for (int c = 0; c < 3; c++) {
            int piv = c;
            for (int r = c + 1; r < 3; r++)
                if (fabs(A[r][c]) > fabs(A[piv][c]))
                    piv = r;
            if (fabs(A[piv][c]) < 1e-12)
                return 0;
            for (int j = 0; j < 4; j++) {
                double t = A[c][j];
                A[c][j] = A[piv][j];
                A[piv][j] = t;
            }
            for (int r = 0; r < 3; r++)
                if (r != c) {
                    double f = A[r][c] / A[c][c];
                    for (int j = 0; j < 4; j++)
                        A[r][j] -= f * A[c][j];
                }
        }
        out[0] = A[0][3] / A[0][0];
        out[1] = A[1][3] / A[1][1];
        out[2] = A[2][3] / A[2][2];
        if ((upper && out[0] < 0) || (!upper && out[0] > 0)) {
            /* Wrong curvature: a horizontal line through the median-ish
             * (mean of kept) point. */
            double s = 0;
            for (int i = 0; i < n; i++)
                if (keep[i])
                    s += ys[i];
            out[0] = out[1] = 0;
            out[2] = s / k;
        }
        if (pass == 0) {
            double res[128], sorted[128];
            int m = 0;
            for (int i = 0; i < n; i++) {
                double u = xs[i] - ix;
                res[i] = fabs(ys[i] - (out[0] * u * u + out[1] * u + out[2]));
                sorted[m++] = res[i];
            }
            /* Median residual by insertion sort (n <= 128). */
            for (int i = 1; i < m; i++)
                for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                    double t = sorted[j];
                    sorted[j] = sorted[j - 1];
                    sorted[j - 1] = t;
                }
            double lim = fmax(2.5 * sorted[m / 2], 2);
            for (int i = 0; i < n; i++)
                keep[i] = res[i] <= lim;
        }
    }
    return 1;
}

/* Eyelid points: along rays from the iris centre in the upper (or lower)
 * sector, the strongest outward brightening between the pupil and just
 * inside the limbus, when it is at least half as strong as the limbus edge. */
static void find_eyelid(const fimg *g, iris_seg *seg, double limbus_edge, int upper)
{
    double xs[128], ys[128];
    int n = 0;
    for (int deg = -60; deg <= 60; deg += 3) {
        double a = (upper ? -90 + deg : 90 + deg) * PI / 180;
        double c = cos(a), s = sin(a);
        /* Start beyond the pupil boundary along this ray. */
        double r0 = seg->pr + hypot(seg->px - seg->ix, seg->py - seg->iy) + 3;
        double r1 = seg->ir - 3;
        double best = 0, br = -1, prev[7] = {0};
        int have = 0;
        for (double r = r0; r <= r1; r += 1) {
            double v;
            if (!sample(g, seg->ix + r * c, seg->iy + r * s, &v))
                break;
            /* Ring buffer of the last 7 samples: derivative over +-3 px. */
            for (int k = 0; k < 6; k++)
                prev[k] = prev[k + 1];
            prev[6] = v;
            if (++have < 7)
                continue;
            double d = (prev[4] + prev[5] + prev[6] - prev[0] - prev[1] - prev[2]) / 3;
            if (d > best) {
                best = d;
                br = r - 3;
            }
        }
        if (br > 0 && best >= 0.5 * limbus_edge && n < 128) {
            xs[n] = seg->ix + br * c;
            ys[n] = seg->iy + br * s;
            n++;
        }
    }
    double p[3];
    if (n >= 5 && fit_parabola(xs, ys, n, seg->ix, upper, p)) {
        if (upper) {
            seg->has_upper = 1;
            memcpy(seg->upper, p, sizeof p);
        } else {
            seg->has_lower = 1;
            memcpy(seg->lower, p, sizeof p);
        }
    }
}

/* Intensity statistics of the iris (lateral sectors of the annulus), the
 * eyelash/reflection thresholds, contrast and sharpness. */
static void iris_stats(const fimg *raw, const fimg *g1, iris_seg *seg)
{
    long hist[256] = {0}, n = 0;
    double hp = 0, ps = 0;
    long pn = 0;
    for (int i = 0; i < 72; i++) {
        double a = 2 * PI * i / 72, c = cos(a), s = sin(a), v, vb;
        for (int k = 1; k < 10; k++) {
            double rho = k / 10.0;
            double x = (1 - rho) * (seg->px + seg->pr * c) + rho * (seg->ix + seg->ir * c);
            double y = (1 - rho) * (seg->py + seg->pr * s) + rho * (seg->iy + seg->ir * s);
            if (fabs(s) < 0.6 && sample(raw, x, y, &v) && sample(g1, x, y, &vb)) {
                hist[(int)v]++;
                n++;
                hp += (v - vb) * (v - vb);
            }
        }
        if (sample(raw, seg->px + 0.5 * seg->pr * c, seg->py + 0.5 * seg->pr * s, &v)) {
            ps += v;
            pn++;
        }
    }
    double med = 128;
    long acc = 0;
    for (int v = 0; v < 256 && n > 0; v++) {
        acc += hist[v];
        if (2 * acc >= n) {
            med = v;
            break;
        }
    }
    seg->pupil_mean = pn ? ps / pn : 0;
    seg->iris_mean = med;
    /* Eyelashes are nearly as dark as the pupil; reflections near white. */
    seg->lash_t = seg->pupil_mean + 0.45 * (med - seg->pupil_mean);
    seg->spec_t = fmax(med + 0.6 * (255 - med), 230);
    /* Sharpness: RMS of the image minus its sigma-1 blur, mapped as Daugman's
     * focus score x^2 / (x^2 + c^2); c = 3 grey levels. */
    double x = n ? sqrt(hp / n) : 0;
    seg->sharpness = x * x / (x * x + 9.0);
}

abis_status iris_segment(const abis_image *img, iris_seg *seg, abis_error *err)
{
    memset(seg, 0, sizeof *seg);
    int w = img->width, h = img->height;
    size_t n = (size_t)w * h;
    fimg raw = {w, h, malloc(sizeof(float) * n)};
    fimg g2 = {w, h, malloc(sizeof(float) * n)};
    fimg g1 = {w, h, malloc(sizeof(float) * n)};
    abis_status st = ABIS_OK;
    if (!raw.p || !g2.p || !g1.p) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory segmenting the iris");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        raw.p[i] = img->pixels[i];
    /* sigma 2 px: smooths iris texture and eyelashes without moving the
     * boundaries (a pupil edge of a 320x280 image spans 2-3 px). */
    if (blur(&raw, &g2, 2.0) || blur(&raw, &g1, 1.0)) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory segmenting the iris");
        goto done;
    }
    st = find_pupil(&g2, seg, err);
    if (st != ABIS_OK)
        goto done;
    double edge = 0;
    st = find_limbus(&g2, seg, &edge, err);
    if (st != ABIS_OK)
        goto done;
    find_eyelid(&g2, seg, edge, 1);
    find_eyelid(&g2, seg, edge, 0);
    iris_stats(&raw, &g1, seg);
done:
    free(raw.p);
    free(g2.p);
    free(g1.p);
    return st;
}
