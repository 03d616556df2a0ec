/*
 * segment.c: iris segmentation of our own -- pupil, limbus, eyelids and the
 * intensity thresholds for eyelashes and reflections (docs/iris-encoding.md).
 *
 *   pupil:   the most circular dark blob over a ladder of thresholds (after a
 *            morphological opening that cuts thin eyelashes off), refined by
 *            Daugman's integro-differential operator over the full circle;
 *   limbus:  the integro-differential operator on a smoothed image, over
 *            centres near the pupil centre and radii from 1.45 to 5 pupil
 *            radii, on the lateral sectors (eyelids rarely cover them), with
 *            a trimmed mean over the angles so that an eyelid crossing some
 *            of them cannot outvote the rest;
 *   eyelids: the integro-differential operator on parabolic arcs (Daugman
 *            2004), upper and lower;
 *   limbus again, over every angle between the eyelids (the lateral
 *            sectors alone leave the centre's height poorly determined),
 *            and the eyelids again for the refined limbus.
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
/* Share of the per-angle derivatives dropped at each end before averaging
 * (limbus and eyelid arcs): one tenth, enough for a crossing eyelid or a clump
 * of lashes; measured on CASIA-IrisV1 (docs/IRIS.md): EER 1.54 % -> 0.89 %
 * with the old eyelid finder. */
#define ARC_TRIM 0.1
/* A pixel darker than the pupil plus this share of the way from the pupil to
 * the iris median is eyelash or shadow (docs/IRIS.md: 0.45, 0.6 and 0.7
 * compared on CASIA-IrisV1; 0.6 chosen). */
#define LASH_SHARE 0.6

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

/* Reorder v[0..n) so that v[k] holds the value a sort would put there,
 * with nothing larger before it and nothing smaller after it (Hoare's
 * quickselect, middle pivot: O(n) on average). */
static void select_kth(double *v, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

/* Mean of v[0..n) without its lowest and highest `trim` share (trim 0: the
 * plain mean).  Reorders v. */
static double trimmed_mean(double *v, int n, double trim)
{
    int cut = (int)(trim * n);
    if (cut > 0) {
        select_kth(v, n, cut);                      /* v[0..cut): the lowest */
        select_kth(v + cut, n - cut, n - 2 * cut); /* v[n-cut..n): the highest */
    }
    double s = 0;
    for (int i = cut; i < n - cut; i++)
        s += v[i];
    return s / (n - 2 * cut);
}

/* Daugman's integro-differential operator: over centres (cx +- span, cy +-
 * span, step) and radii rmin..rmax (1 px), the largest radial derivative of
 * the image along the circle, d/dr = mean(I(r+1..r+hw)) - mean(I(r-hw..r-1))
 * per angle, averaged over the angles (cs, sn) -- with `trim` > 0 a trimmed
 * mean, so that the few angles where the circle crosses a strong eyelid or
 * eyelash edge cannot outvote the rest.  Circles with a point outside the
 * image are skipped (a mean over a changing subset of points would show
 * false edges).  With `inner` (a circle x, y, r), only circles enclosing it
 * with a 3-px margin count.  Updates *bx, *by, *br; returns the best
 * derivative (-1e9 when no circle was valid). */
static double integro_diff(const fimg *g, double cx, double cy, double span, double step,
                           double rmin, double rmax, const double *cs, const double *sn, int n,
                           const double *inner, int hw, double trim, double *bx, double *by,
                           double *br)
{
    int nr = (int)(rmax - rmin) + 2 * hw + 1;
    if (nr < 8)
        return -1e9;
    /* acc[i * n + a]: sum of the samples at radii 0..i-1 (prefix sums along
     * each ray), ok[i]: every sample at radius index i is inside. */
    double *acc = malloc(sizeof *acc * (size_t)(nr + 1) * n);
    double *d = malloc(sizeof *d * (size_t)n);
    uint8_t *ok = malloc((size_t)nr);
    double best = -1e9;
    if (!acc || !d || !ok)
        goto out;
    for (double dy = -span; dy <= span + 1e-9; dy += step)
        for (double dx = -span; dx <= span + 1e-9; dx += step) {
            double x = cx + dx, y = cy + dy;
            double rlow = inner ? hypot(x - inner[0], y - inner[1]) + inner[2] + 3 : 0;
            for (int a = 0; a < n; a++)
                acc[a] = 0;
            for (int i = 0; i < nr; i++) {
                double r = rmin - hw + i, v;
                ok[i] = 1;
                for (int a = 0; a < n; a++) {
                    if (!sample(g, x + r * cs[a], y + r * sn[a], &v)) {
                        ok[i] = 0;
                        v = 0;
                    }
                    acc[(size_t)(i + 1) * n + a] = acc[(size_t)i * n + a] + v;
                }
            }
            int bad_until = -1; /* last invalid radius index seen */
            for (int i = 0; i < 2 * hw && i < nr; i++)
                if (!ok[i])
                    bad_until = i;
            for (int i = hw; i + hw < nr; i++) {
                if (!ok[i + hw])
                    bad_until = i + hw;
                if (bad_until >= i - hw || rmin - hw + i < rlow)
                    continue;
                for (int a = 0; a < n; a++) {
                    double out_s = acc[(size_t)(i + hw + 1) * n + a] - acc[(size_t)(i + 1) * n + a];
                    double in_s = acc[(size_t)i * n + a] - acc[(size_t)(i - hw) * n + a];
                    d[a] = (out_s - in_s) / hw;
                }
                double m = trimmed_mean(d, n, trim);
                if (m > best) {
                    best = m;
                    *bx = x;
                    *by = y;
                    *br = rmin - hw + i;
                }
            }
        }
out:
    free(acc);
    free(d);
    free(ok);
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
                            cs, sn, 64, NULL, 3, 0, &bx, &by, &br);
    if (d <= 0)
        return abis_error_set(err, ABIS_E_INVALID, "no pupil found: no dark-to-bright boundary");
    seg->px = bx;
    seg->py = by;
    seg->pr = br;
    return ABIS_OK;
}

/* The limbus: integro-differential operator on the lateral sectors. */
static abis_status find_limbus(const fimg *g, iris_seg *seg, abis_error *err)
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
                            ARC_TRIM, &bx, &by, &br);
    d = integro_diff(g, bx, by, 2, 1, fmax(rmin, br - 4), fmin(rmax, br + 4), cs, sn, NA, pupil,
                     LIMBUS_HW, ARC_TRIM, &bx, &by, &br);
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
    return ABIS_OK;
}

/* The vertical step mean(I(y + 1..H)) - mean(I(y - H..y - 1)) of g at every
 * pixel (0 within H rows of the top and bottom): the edge measure of the
 * eyelid search, computed once instead of per point of every arc. */
#define VSTEP_H 3
static void vertical_step(const fimg *g, fimg *out)
{
    int w = g->w, h = g->h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double s = 0;
            if (y >= VSTEP_H && y < h - VSTEP_H)
                for (int j = 1; j <= VSTEP_H; j++)
                    s += g->p[(size_t)(y + j) * w + x] - g->p[(size_t)(y - j) * w + x];
            out->p[(size_t)y * w + x] = (float)(s / VSTEP_H);
        }
}

/* An eyelid as the parabola y = a u^2 + b u + c (u = x - ix) along which
 * the image changes most from iris to eyelid: Daugman's integro-differential
 * operator on parabolic arcs (Daugman 2004).  The edge measure at a point is
 * the vertical step (vertical_step) signed towards the side away from the
 * pupil: positive when that side is brighter (eyelid
 * skin in near infrared), averaged (trimmed) over the points of the arc
 * within 0.9 iris radii of the iris centre horizontally and outside the
 * pupil.  Vertices range from half a pupil radius to 1.15 iris radii from
 * the iris centre, so an eye with no occlusion gets an arc along or outside
 * the limbus that masks (almost) nothing -- no threshold decides "is there
 * an eyelid", which is what made the earlier per-ray finder mask too much. */
static void find_eyelid(const fimg *vstep, iris_seg *seg, int upper)
{
    /* Curvature a in units of 1/ir (0: a straight lid, 1/2.5: a lid about as
     * curved as the iris) and slopes b up to 0.3 (about 17 degrees of head
     * roll), both signs. */
    static const double curv[] = {0, 1.0 / 8, 1.0 / 5, 1.0 / 3.5, 1.0 / 2.5};
    static const double slope[] = {-0.3, -0.15, 0, 0.15, 0.3};
    const double sgn = upper ? -1 : 1; /* image y direction away from the pupil */
    const double W = 0.9 * seg->ir;
    const int npts = (int)W + 1; /* points every 2 px over 2 W */
    double *d = malloc(sizeof *d * (size_t)npts);
    if (!d)
        return;
    double best = -1e9, bp[3] = {0, 0, 0};
    for (double cd = 0.5 * seg->pr; cd <= 1.15 * seg->ir; cd += 1)
        for (size_t ai = 0; ai < sizeof curv / sizeof *curv; ai++)
            for (size_t bi = 0; bi < sizeof slope / sizeof *slope; bi++) {
                /* Both lids bend towards the pupil at their ends. */
                double A = -sgn * curv[ai] / seg->ir, B = slope[bi], C = seg->iy + sgn * cd;
                int k = 0;
                for (double u = -W; u <= W + 1e-9 && k < npts; u += 2) {
                    double x = seg->ix + u, y = C + B * u + A * u * u, v;
                    double dx = x - seg->px, dy = y - seg->py, rp = seg->pr + 2;
                    if (dx * dx + dy * dy < rp * rp)
                        continue;
                    if (y >= VSTEP_H && y <= vstep->h - 1 - VSTEP_H && sample(vstep, x, y, &v))
                        d[k++] = sgn * v;
                }
                if (k < npts / 3)
                    continue; /* mostly outside the image or in the pupil */
                double m = trimmed_mean(d, k, ARC_TRIM);
                if (m > best) {
                    best = m;
                    bp[0] = A;
                    bp[1] = B;
                    bp[2] = C;
                }
            }
    free(d);
    if (best <= 0)
        return; /* nothing brightens away from the pupil: no eyelid */
    if (upper) {
        seg->has_upper = 1;
        memcpy(seg->upper, bp, sizeof bp);
    } else {
        seg->has_lower = 1;
        memcpy(seg->lower, bp, sizeof bp);
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
    seg->lash_t = seg->pupil_mean + LASH_SHARE * (med - seg->pupil_mean);
    seg->spec_t = fmax(med + 0.6 * (255 - med), 230);
    /* Sharpness: RMS of the image minus its sigma-1 blur, mapped as Daugman's
     * focus score x^2 / (x^2 + c^2); c = 3 grey levels. */
    double x = n ? sqrt(hp / n) : 0;
    seg->sharpness = x * x / (x * x + 9.0);
}

/* Limbus refinement once the eyelids are known: the integro-differential
 * operator again, near the first circle, over every angle (every 3 degrees)
 * where the limbus lies between the eyelids -- the lateral sectors alone
 * leave the vertical position of the centre poorly determined. */
static void refine_limbus(const fimg *g, iris_seg *seg)
{
    enum { NA = 120 };
    double cs[NA], sn[NA];
    int n = 0;
    /* An angle counts when the limbus and the outer half of its edge window
     * lie between the eyelids, with 2 px to spare. */
    const double margin = LIMBUS_HW + 2;
    for (int i = 0; i < NA; i++) {
        double a = 2 * PI * i / NA, c = cos(a), s = sin(a);
        double x = seg->ix + seg->ir * c, y = seg->iy + seg->ir * s, u = x - seg->ix;
        if (seg->has_upper &&
            y - margin < seg->upper[0] * u * u + seg->upper[1] * u + seg->upper[2])
            continue;
        if (seg->has_lower &&
            y + margin > seg->lower[0] * u * u + seg->lower[1] * u + seg->lower[2])
            continue;
        cs[n] = c;
        sn[n] = s;
        n++;
    }
    if (n < NA / 4)
        return; /* too little of the limbus visible to do better */
    double pupil[3] = {seg->px, seg->py, seg->pr};
    double bx = seg->ix, by = seg->iy, br = seg->ir;
    double d = integro_diff(g, seg->ix, seg->iy, 4, 1, seg->ir - 8, seg->ir + 8, cs, sn, n, pupil,
                            LIMBUS_HW, ARC_TRIM, &bx, &by, &br);
    if (d <= 0 || hypot(bx - seg->px, by - seg->py) + seg->pr > br - 1)
        return;
    seg->ix = bx;
    seg->iy = by;
    seg->ir = br;
}

abis_status iris_segment(const abis_image *img, iris_seg *seg, abis_error *err)
{
    memset(seg, 0, sizeof *seg);
    int w = img->width, h = img->height;
    size_t n = (size_t)w * h;
    fimg raw = {w, h, malloc(sizeof(float) * n)};
    fimg g2 = {w, h, malloc(sizeof(float) * n)};
    fimg g1 = {w, h, malloc(sizeof(float) * n)};
    fimg vs = {w, h, malloc(sizeof(float) * n)};
    abis_status st = ABIS_OK;
    if (!raw.p || !g2.p || !g1.p || !vs.p) {
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
    st = find_limbus(&g2, seg, err);
    if (st != ABIS_OK)
        goto done;
    /* Eyelids need the limbus; the limbus refined between the eyelids
     * moves the eyelid search, so they are found once more. */
    vertical_step(&g2, &vs);
    find_eyelid(&vs, seg, 1);
    find_eyelid(&vs, seg, 0);
    refine_limbus(&g2, seg);
    seg->has_upper = seg->has_lower = 0;
    find_eyelid(&vs, seg, 1);
    find_eyelid(&vs, seg, 0);
    iris_stats(&raw, &g1, seg);
done:
    free(raw.p);
    free(g2.p);
    free(g1.p);
    free(vs.p);
    return st;
}
