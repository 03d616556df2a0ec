/*
 * field.c: the block maps of a fingerprint image (finger_internal.h):
 * foreground segmentation, the orientation field, and the ridge period.
 *
 * Orientation: the classic least-squares estimate from image gradients
 * (Kass and Witkin 1987; Bazen and Gerez, "Systematic methods for the
 * computation of the directional fields and singular points of
 * fingerprints", IEEE PAMI 24(7), 2002): over a window, with Sobel gradients
 * (gx, gy), Gxx = sum gx^2, Gyy = sum gy^2, Gxy = sum gx gy; the dominant
 * gradient direction is 1/2 atan2(2 Gxy, Gxx - Gyy) and ridges run
 * perpendicular to it; the coherence sqrt((Gxx - Gyy)^2 + 4 Gxy^2) /
 * (Gxx + Gyy) in [0, 1] says how well one direction explains the window (the
 * "orientation certainty" NFIQ 2 also measures).  The doubled-angle vectors
 * are smoothed over neighbouring blocks, which keeps the field right across
 * noise and creases.
 *
 * Segmentation: a block is foreground when its grey-level spread is high
 * next to the image's (ridges and valleys alternate there) and its gradients
 * agree on a direction; the block map is then cleaned by majority voting,
 * small islands dropped and holes filled.
 *
 * Ridge period: the "x-signature" of Hong, Wan and Jain ("Fingerprint image
 * enhancement: algorithm and performance evaluation", IEEE PAMI 20(8), 1998):
 * grey levels in an oriented window are summed along the ridges, which
 * leaves a wave across them whose wavelength is the ridge period; we take
 * the lag of the wave's highest autocorrelation peak (more robust than
 * counting peaks when a ridge is broken).  Blocks where no clear wave is
 * found get the period of their neighbours.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger_internal.h"

/* Window over which a block's gradients and grey statistics are taken:
 * the block and FP_HALO pixels around it (24 x 24 pixels, about 2.5 ridge
 * periods at 500 ppi). */
#define FP_HALO 8
/* Grey-level spread below which nothing is a fingerprint (0..255 scale). */
#define FP_SD_BLANK 4.0
/* A block is foreground when its spread is at least this share of the 90th
 * percentile of the image's block spreads (measured on FVC2002 DB1/DB3/DB4:
 * background spreads are under a fifth of the ridge area's). */
#define FP_SD_SHARE 0.3
/* ... and its coherence at least this (noise and smudges are below). */
#define FP_COH_MIN 0.2f
/* Oriented window for the period: across the ridges, along them (pixels). */
#define FP_SIG_LEN 32
#define FP_SIG_WIDTH 16

void fp_field_free(fp_field *f)
{
    if (!f)
        return;
    free(f->grey);
    free(f->norm);
    free(f->fg);
    free(f->theta);
    free(f->coh);
    free(f->period);
    free(f->period_ok);
    free(f->wave);
    free(f->mean);
    free(f->sd);
    free(f->mask);
    free(f->border);
    memset(f, 0, sizeof *f);
}

/* Sum of an integral image over [x0, x1) x [y0, y1) (clamped). */
static double box_sum(const double *ii, int w, int h, int x0, int y0, int x1, int y1)
{
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > w)
        x1 = w;
    if (y1 > h)
        y1 = h;
    if (x1 <= x0 || y1 <= y0)
        return 0;
    size_t s = (size_t)w + 1;
    return ii[(size_t)y1 * s + x1] - ii[(size_t)y0 * s + x1] - ii[(size_t)y1 * s + x0] +
           ii[(size_t)y0 * s + x0];
}

/* Integral image of v (w * h) into ii ((w + 1) * (h + 1)). */
static void integral(const float *v, int w, int h, double *ii)
{
    size_t s = (size_t)w + 1;
    memset(ii, 0, s * sizeof *ii);
    for (int y = 0; y < h; y++) {
        double row = 0;
        ii[(size_t)(y + 1) * s] = 0;
        for (int x = 0; x < w; x++) {
            row += v[(size_t)y * w + x];
            ii[(size_t)(y + 1) * s + x + 1] = ii[(size_t)y * s + x + 1] + row;
        }
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n values (sorted copy). */
static float quantile(const float *v, size_t n, double q, float *scratch)
{
    if (n == 0)
        return 0;
    memcpy(scratch, v, n * sizeof *v);
    qsort(scratch, n, sizeof *scratch, cmp_float);
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return scratch[k];
}

/* ---- orientation ------------------------------------------------------------- */

/* Sobel gradients and their block-window moments: per block Gxx, Gyy, Gxy
 * over the block and FP_HALO around it; grey mean and spread likewise. */
static abis_status block_moments(fp_field *f, float *vxx, float *vyy, float *vxy, abis_error *err)
{
    int w = f->w, h = f->h;
    size_t np = (size_t)w * h, ni = (size_t)(w + 1) * (h + 1);
    float *gxx = malloc(np * sizeof *gxx), *gyy = malloc(np * sizeof *gyy),
          *gxy = malloc(np * sizeof *gxy), *g2 = malloc(np * sizeof *g2);
    double *ii = malloc(ni * sizeof *ii);
    if (!gxx || !gyy || !gxy || !g2 || !ii) {
        free(gxx), free(gyy), free(gxy), free(g2), free(ii);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for the orientation field");
    }
    const float *g = f->grey;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            g2[i] = g[i] * g[i];
            if (x == 0 || y == 0 || x == w - 1 || y == h - 1) {
                gxx[i] = gyy[i] = gxy[i] = 0;
                continue;
            }
            const float *p = g + i;
            float dx = (p[-w + 1] + 2 * p[1] + p[w + 1]) - (p[-w - 1] + 2 * p[-1] + p[w - 1]);
            float dy = (p[w - 1] + 2 * p[w] + p[w + 1]) - (p[-w - 1] + 2 * p[-w] + p[-w + 1]);
            gxx[i] = dx * dx;
            gyy[i] = dy * dy;
            gxy[i] = dx * dy;
        }
    float *maps[5] = {gxx, gyy, gxy, f->grey, g2};
    float *outs[3] = {vxx, vyy, vxy};
    for (int k = 0; k < 5; k++) {
        integral(maps[k], w, h, ii);
        for (int by = 0; by < f->bh; by++)
            for (int bx = 0; bx < f->bw; bx++) {
                int x0 = bx * FP_BLOCK - FP_HALO, y0 = by * FP_BLOCK - FP_HALO;
                int x1 = (bx + 1) * FP_BLOCK + FP_HALO, y1 = (by + 1) * FP_BLOCK + FP_HALO;
                double s = box_sum(ii, w, h, x0, y0, x1, y1);
                size_t b = (size_t)by * f->bw + bx;
                if (k < 3) {
                    outs[k][b] = (float)s;
                } else {
                    int cx0 = x0 < 0 ? 0 : x0, cy0 = y0 < 0 ? 0 : y0;
                    int cx1 = x1 > w ? w : x1, cy1 = y1 > h ? h : y1;
                    double cnt = (double)(cx1 - cx0) * (cy1 - cy0);
                    if (k == 3) {
                        f->mean[b] = (float)(s / cnt);
                    } else {
                        double var = s / cnt - (double)f->mean[b] * f->mean[b];
                        f->sd[b] = (float)sqrt(var > 0 ? var : 0);
                    }
                }
            }
    }
    free(gxx), free(gyy), free(gxy), free(g2), free(ii);
    return ABIS_OK;
}

/* One pass of the kernel k (radius r) over (ic, is) into (oc, os), along
 * rows (dx = 1) or columns (dx = 0); outside the map counts as nothing. */
static void smooth_pass(const float *ic, const float *is, float *oc, float *os, int bw, int bh,
                        const float *k, int r, int dx)
{
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            float ac = 0, as = 0;
            for (int i = -r; i <= r; i++) {
                int xx = x + (dx ? i : 0), yy = y + (dx ? 0 : i);
                if (xx < 0 || xx >= bw || yy < 0 || yy >= bh)
                    continue;
                size_t b = (size_t)yy * bw + xx;
                ac += k[i + r] * ic[b];
                as += k[i + r] * is[b];
            }
            oc[(size_t)y * bw + x] = ac;
            os[(size_t)y * bw + x] = as;
        }
}

/* Smooth doubled-angle vectors (c, s) over blocks with a Gaussian of sigma
 * `sig` blocks, in place (separable: rows, then columns). */
static void smooth_vectors(float *c, float *s, int bw, int bh, float sig, float *tmp_c,
                           float *tmp_s)
{
    int r = (int)ceilf(2.5f * sig);
    float k[16];
    if (r > 7)
        r = 7;
    for (int i = -r; i <= r; i++)
        k[i + r] = expf(-(float)(i * i) / (2 * sig * sig));
    smooth_pass(c, s, tmp_c, tmp_s, bw, bh, k, r, 1);
    smooth_pass(tmp_c, tmp_s, c, s, bw, bh, k, r, 0);
}

/* ---- segmentation ------------------------------------------------------------ */

/* Label 4-connected components of value `val` in m (bw * bh); lab gets
 * 1-based labels (0 elsewhere); returns the count and fills sizes[] (room
 * for bw * bh + 1 entries). */
static int label_components(const uint8_t *m, uint8_t val, int bw, int bh, int *lab, int *sizes,
                            int *stack)
{
    size_t n = (size_t)bw * bh;
    for (size_t i = 0; i < n; i++)
        lab[i] = 0;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i] != val || lab[i])
            continue;
        count++;
        sizes[count] = 0;
        int top = 0;
        stack[top++] = (int)i;
        lab[i] = count;
        while (top) {
            int b = stack[--top];
            sizes[count]++;
            int x = b % bw, y = b / bw;
            const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
            for (int d = 0; d < 4; d++) {
                int xx = x + dx[d], yy = y + dy[d];
                if (xx < 0 || yy < 0 || xx >= bw || yy >= bh)
                    continue;
                int q = yy * bw + xx;
                if (m[q] == val && !lab[q]) {
                    lab[q] = count;
                    stack[top++] = q;
                }
            }
        }
    }
    return count;
}

/* Clean the block foreground map: two rounds of 3x3 majority voting, drop
 * foreground islands under a tenth of the largest, fill background holes
 * that do not touch the image border. */
static abis_status clean_mask(fp_field *f, abis_error *err)
{
    int bw = f->bw, bh = f->bh;
    size_t n = (size_t)bw * bh;
    uint8_t *tmp = malloc(n);
    int *lab = malloc(n * sizeof *lab), *sizes = malloc((n + 1) * sizeof *sizes),
        *stack = malloc(n * sizeof *stack);
    if (!tmp || !lab || !sizes || !stack) {
        free(tmp), free(lab), free(sizes), free(stack);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for segmentation");
    }
    for (int round = 0; round < 2; round++) {
        for (int y = 0; y < bh; y++)
            for (int x = 0; x < bw; x++) {
                int c = 0, t = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int xx = x + dx, yy = y + dy;
                        if (xx < 0 || yy < 0 || xx >= bw || yy >= bh)
                            continue;
                        t++;
                        c += f->fg[yy * bw + xx];
                    }
                tmp[y * bw + x] = (uint8_t)(2 * c > t);
            }
        memcpy(f->fg, tmp, n);
    }
    int count = label_components(f->fg, 1, bw, bh, lab, sizes, stack);
    int largest = 0;
    for (int i = 1; i <= count; i++)
        if (sizes[i] > largest)
            largest = sizes[i];
    for (size_t i = 0; i < n; i++)
        if (f->fg[i] && sizes[lab[i]] * 10 < largest)
            f->fg[i] = 0;
    /* holes: background components not touching the border */
    count = label_components(f->fg, 0, bw, bh, lab, sizes, stack);
    uint8_t *touches = calloc((size_t)count + 1, 1);
    if (!touches) {
        free(tmp), free(lab), free(sizes), free(stack);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for segmentation");
    }
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++)
            if ((x == 0 || y == 0 || x == bw - 1 || y == bh - 1) && lab[y * bw + x])
                touches[lab[y * bw + x]] = 1;
    for (size_t i = 0; i < n; i++)
        if (!f->fg[i] && lab[i] && !touches[lab[i]])
            f->fg[i] = 1;
    free(touches);
    free(tmp), free(lab), free(sizes), free(stack);
    return ABIS_OK;
}

/* ---- ridge period ---------------------------------------------------------------- */

/* The period of block b from its oriented x-signature; 0 when no clear wave.
 * *wave gets the wave's strength: its normalised autocorrelation at the
 * period (1 for a clean wave, lower with noise; 0 without a period). */
static float block_period(const fp_field *f, int bx, int by, float *wave)
{
    *wave = 0;
    float th = f->theta[(size_t)by * f->bw + bx];
    float cx = (bx + 0.5f) * FP_BLOCK, cy = (by + 0.5f) * FP_BLOCK;
    /* ridge direction t = (cos th, -sin th); across it n = (sin th, cos th) */
    float tx = cosf(th), ty = -sinf(th), nx = -ty, ny = tx;
    float sig[FP_SIG_LEN];
    int w = f->w, h = f->h;
    for (int u = 0; u < FP_SIG_LEN; u++) {
        float su = (float)u - FP_SIG_LEN / 2 + 0.5f, acc = 0;
        int cnt = 0;
        for (int v = 0; v < FP_SIG_WIDTH; v++) {
            float sv = (float)v - FP_SIG_WIDTH / 2 + 0.5f;
            int x = (int)lrintf(cx + su * nx + sv * tx), y = (int)lrintf(cy + su * ny + sv * ty);
            if (x < 0 || y < 0 || x >= w || y >= h)
                continue;
            acc += f->grey[(size_t)y * w + x];
            cnt++;
        }
        if (cnt < FP_SIG_WIDTH / 2)
            return 0;
        sig[u] = acc / (float)cnt;
    }
    float mean = 0;
    for (int u = 0; u < FP_SIG_LEN; u++)
        mean += sig[u];
    mean /= FP_SIG_LEN;
    float var = 0;
    for (int u = 0; u < FP_SIG_LEN; u++) {
        sig[u] -= mean;
        var += sig[u] * sig[u];
    }
    if (var <= 1e-3f)
        return 0;
    /* normalised autocorrelation for lags in range */
    int lo = (int)FP_PERIOD_MIN, hi = (int)FP_PERIOD_MAX + 1;
    float ac[FP_SIG_LEN];
    for (int lag = 0; lag < FP_SIG_LEN; lag++) {
        float s = 0;
        for (int u = 0; u + lag < FP_SIG_LEN; u++)
            s += sig[u] * sig[u + lag];
        ac[lag] = s / var * (float)FP_SIG_LEN / (float)(FP_SIG_LEN - lag);
    }
    /* the first local maximum in range above 0.2 that is the highest one
     * reachable before the next dip */
    int best = -1;
    for (int lag = lo; lag <= hi && lag < FP_SIG_LEN - 1; lag++)
        if (ac[lag] > ac[lag - 1] && ac[lag] >= ac[lag + 1] && ac[lag] > 0.2f) {
            best = lag;
            break;
        }
    if (best < 0)
        return 0;
    /* the wave must dip in between (a valley half a period away) */
    float dip = 1;
    for (int lag = 1; lag < best; lag++)
        if (ac[lag] < dip)
            dip = ac[lag];
    if (dip > -0.1f)
        return 0;
    /* parabolic refinement of the peak */
    float a = ac[best - 1], b = ac[best], c = ac[best + 1], den = a - 2 * b + c;
    float off = den < 0 ? 0.5f * (a - c) / den : 0;
    float p = (float)best + (off > 0.5f ? 0.5f : off < -0.5f ? -0.5f : off);
    if (p < FP_PERIOD_MIN || p > FP_PERIOD_MAX)
        return 0;
    *wave = b > 1 ? 1 : b;
    return p;
}

/* Periods of every foreground block; unmeasured ones filled from measured
 * neighbours (repeated averaging), then smoothed over 3 x 3 blocks. */
static abis_status compute_periods(fp_field *f, abis_error *err)
{
    int bw = f->bw, bh = f->bh;
    size_t n = (size_t)bw * bh;
    float *p = f->period, *tmp = malloc(n * sizeof *tmp), *scratch = malloc(n * sizeof *scratch);
    if (!tmp || !scratch) {
        free(tmp), free(scratch);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for the ridge period");
    }
    size_t nvalid = 0;
    for (int by = 0; by < bh; by++)
        for (int bx = 0; bx < bw; bx++) {
            size_t b = (size_t)by * bw + bx;
            p[b] = f->fg[b] ? block_period(f, bx, by, &f->wave[b]) : 0;
            f->period_ok[b] = p[b] > 0;
            if (p[b] > 0)
                scratch[nvalid++] = p[b];
        }
    float med = nvalid ? quantile(scratch, nvalid, 0.5, tmp) : 9.0f;
    f->period_median = med;
    /* fill: each round, an unmeasured block takes the mean of its measured or
     * filled neighbours; blocks nothing reaches get the median */
    for (int round = 0; round < 32; round++) {
        int changed = 0;
        memcpy(tmp, p, n * sizeof *tmp);
        for (int by = 0; by < bh; by++)
            for (int bx = 0; bx < bw; bx++) {
                size_t b = (size_t)by * bw + bx;
                if (p[b] > 0)
                    continue;
                float s = 0;
                int c = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int xx = bx + dx, yy = by + dy;
                        if (xx < 0 || yy < 0 || xx >= bw || yy >= bh)
                            continue;
                        float q = p[(size_t)yy * bw + xx];
                        if (q > 0) {
                            s += q;
                            c++;
                        }
                    }
                if (c) {
                    tmp[b] = s / (float)c;
                    changed = 1;
                }
            }
        memcpy(p, tmp, n * sizeof *p);
        if (!changed)
            break;
    }
    for (size_t b = 0; b < n; b++)
        if (p[b] <= 0)
            p[b] = med;
    /* 3 x 3 mean over foreground blocks */
    for (int by = 0; by < bh; by++)
        for (int bx = 0; bx < bw; bx++) {
            float s = 0;
            int c = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = bx + dx, yy = by + dy;
                    if (xx < 0 || yy < 0 || xx >= bw || yy >= bh)
                        continue;
                    s += p[(size_t)yy * bw + xx];
                    c++;
                }
            tmp[(size_t)by * bw + bx] = s / (float)c;
        }
    memcpy(p, tmp, n * sizeof *p);
    free(tmp), free(scratch);
    return ABIS_OK;
}

/* ---- per-pixel maps ------------------------------------------------------------ */

/* Bilinear interpolation of a block map at pixel (x, y). */
static float block_lerp(const float *m, int bw, int bh, float x, float y)
{
    float fx = x / FP_BLOCK - 0.5f, fy = y / FP_BLOCK - 0.5f;
    int x0 = (int)floorf(fx), y0 = (int)floorf(fy);
    float ax = fx - (float)x0, ay = fy - (float)y0;
    int x1 = x0 + 1, y1 = y0 + 1;
    x0 = x0 < 0 ? 0 : x0 >= bw ? bw - 1 : x0;
    x1 = x1 < 0 ? 0 : x1 >= bw ? bw - 1 : x1;
    y0 = y0 < 0 ? 0 : y0 >= bh ? bh - 1 : y0;
    y1 = y1 < 0 ? 0 : y1 >= bh ? bh - 1 : y1;
    float a = m[(size_t)y0 * bw + x0], b = m[(size_t)y0 * bw + x1];
    float c = m[(size_t)y1 * bw + x0], d = m[(size_t)y1 * bw + x1];
    return (a * (1 - ax) + b * ax) * (1 - ay) + (c * (1 - ax) + d * ax) * ay;
}

float fp_field_theta_at(const fp_field *f, float x, float y)
{
    /* interpolate the doubled-angle unit vectors of the four nearest blocks */
    float fx = x / FP_BLOCK - 0.5f, fy = y / FP_BLOCK - 0.5f;
    int x0 = (int)floorf(fx), y0 = (int)floorf(fy);
    float ax = fx - (float)x0, ay = fy - (float)y0, c = 0, s = 0;
    for (int k = 0; k < 4; k++) {
        int xx = x0 + (k & 1), yy = y0 + (k >> 1);
        xx = xx < 0 ? 0 : xx >= f->bw ? f->bw - 1 : xx;
        yy = yy < 0 ? 0 : yy >= f->bh ? f->bh - 1 : yy;
        float wt = ((k & 1) ? ax : 1 - ax) * ((k >> 1) ? ay : 1 - ay);
        float t = 2 * f->theta[(size_t)yy * f->bw + xx];
        c += wt * cosf(t);
        s += wt * sinf(t);
    }
    float th = 0.5f * atan2f(s, c);
    return th < 0 ? th + (float)M_PI : th;
}

float fp_field_period_at(const fp_field *f, int x, int y)
{
    int bx = x / FP_BLOCK, by = y / FP_BLOCK;
    bx = bx < 0 ? 0 : bx >= f->bw ? f->bw - 1 : bx;
    by = by < 0 ? 0 : by >= f->bh ? f->bh - 1 : by;
    return f->period[(size_t)by * f->bw + bx];
}

/* Pixel mask, distance to the background (two-pass chamfer 3-4, /3), and
 * the locally normalised image. */
static void pixel_maps(fp_field *f)
{
    int w = f->w, h = f->h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int bx = x / FP_BLOCK, by = y / FP_BLOCK;
            if (bx >= f->bw)
                bx = f->bw - 1;
            if (by >= f->bh)
                by = f->bh - 1;
            f->mask[i] = f->fg[(size_t)by * f->bw + bx];
        }
    const float big = 1e6f;
    float *d = f->border;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            /* the image edge counts as background */
            float v = f->mask[i] ? big : 0;
            if (v > 0) {
                if (x == 0 || y == 0)
                    v = 3;
                if (x > 0 && d[i - 1] + 3 < v)
                    v = d[i - 1] + 3;
                if (y > 0 && d[i - w] + 3 < v)
                    v = d[i - w] + 3;
                if (x > 0 && y > 0 && d[i - w - 1] + 4 < v)
                    v = d[i - w - 1] + 4;
                if (x < w - 1 && y > 0 && d[i - w + 1] + 4 < v)
                    v = d[i - w + 1] + 4;
            }
            d[i] = v;
        }
    for (int y = h - 1; y >= 0; y--)
        for (int x = w - 1; x >= 0; x--) {
            size_t i = (size_t)y * w + x;
            float v = d[i];
            if (v == 0)
                continue;
            if (x == w - 1 || y == h - 1)
                v = v < 3 ? v : 3;
            if (x < w - 1 && d[i + 1] + 3 < v)
                v = d[i + 1] + 3;
            if (y < h - 1 && d[i + w] + 3 < v)
                v = d[i + w] + 3;
            if (x < w - 1 && y < h - 1 && d[i + w + 1] + 4 < v)
                v = d[i + w + 1] + 4;
            if (x > 0 && y < h - 1 && d[i + w - 1] + 4 < v)
                v = d[i + w - 1] + 4;
            d[i] = v;
        }
    for (size_t i = 0; i < (size_t)w * h; i++)
        d[i] /= 3;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float m = block_lerp(f->mean, f->bw, f->bh, (float)x + 0.5f, (float)y + 0.5f);
            float s = block_lerp(f->sd, f->bw, f->bh, (float)x + 0.5f, (float)y + 0.5f);
            f->norm[i] = (f->grey[i] - m) / (s > 1 ? s : 1);
        }
}

/* ---- the whole field -------------------------------------------------------------- */

abis_status fp_field_compute(fp_field *f, const float *grey, int w, int h, abis_error *err)
{
    memset(f, 0, sizeof *f);
    f->w = w;
    f->h = h;
    f->bw = (w + FP_BLOCK - 1) / FP_BLOCK;
    f->bh = (h + FP_BLOCK - 1) / FP_BLOCK;
    size_t np = (size_t)w * h, nb = (size_t)f->bw * f->bh;
    f->grey = malloc(np * sizeof *f->grey);
    f->norm = malloc(np * sizeof *f->norm);
    f->mask = malloc(np);
    f->border = malloc(np * sizeof *f->border);
    f->fg = calloc(nb, 1);
    f->theta = malloc(nb * sizeof *f->theta);
    f->coh = malloc(nb * sizeof *f->coh);
    f->period = malloc(nb * sizeof *f->period);
    f->period_ok = calloc(nb, 1);
    f->wave = calloc(nb, sizeof *f->wave);
    f->mean = malloc(nb * sizeof *f->mean);
    f->sd = malloc(nb * sizeof *f->sd);
    float *vxx = malloc(nb * sizeof *vxx), *vyy = malloc(nb * sizeof *vyy),
          *vxy = malloc(nb * sizeof *vxy), *c2 = malloc(nb * sizeof *c2),
          *s2 = malloc(nb * sizeof *s2), *t1 = malloc(nb * sizeof *t1),
          *t2 = malloc(nb * sizeof *t2);
    abis_status st = ABIS_OK;
    if (!f->grey || !f->norm || !f->mask || !f->border || !f->fg || !f->theta || !f->coh ||
        !f->period || !f->period_ok || !f->wave || !f->mean || !f->sd || !vxx || !vyy || !vxy ||
        !c2 || !s2 || !t1 || !t2) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for a %d x %d fingerprint", w, h);
        goto out;
    }
    memcpy(f->grey, grey, np * sizeof *grey);
    if ((st = block_moments(f, vxx, vyy, vxy, err)) != ABIS_OK)
        goto out;

    /* coherence (unsmoothed) and the doubled-angle vectors */
    for (size_t b = 0; b < nb; b++) {
        float a = vxx[b] - vyy[b], c = 2 * vxy[b], e = vxx[b] + vyy[b];
        f->coh[b] = e > 1e-6f ? sqrtf(a * a + c * c) / e : 0;
        c2[b] = a;
        s2[b] = c;
    }

    /* segmentation */
    float sd90 = quantile(f->sd, nb, 0.9, t1);
    if (sd90 < FP_SD_BLANK) {
        st = abis_error_set(err, ABIS_E_INVALID,
                            "the image is blank (grey-level spread %.1f; a fingerprint has at "
                            "least %.0f)",
                            sd90, FP_SD_BLANK);
        goto out;
    }
    for (size_t b = 0; b < nb; b++)
        f->fg[b] =
            f->sd[b] >= FP_SD_SHARE * sd90 && f->sd[b] >= FP_SD_BLANK && f->coh[b] >= FP_COH_MIN;
    if ((st = clean_mask(f, err)) != ABIS_OK)
        goto out;

    /* orientation: energy-weighted doubled angles smoothed over ~3 blocks */
    smooth_vectors(c2, s2, f->bw, f->bh, 1.0f, t1, t2);
    for (size_t b = 0; b < nb; b++) {
        /* gradient direction + 90 degrees = ridge direction; y is down, so
         * the image-space angle is negated to count counter-clockwise */
        float g = 0.5f * atan2f(s2[b], c2[b]);
        float th = (float)(M_PI / 2) - g;
        while (th < 0)
            th += (float)M_PI;
        while (th >= (float)M_PI)
            th -= (float)M_PI;
        f->theta[b] = th;
    }
    if ((st = compute_periods(f, err)) != ABIS_OK)
        goto out;

    /* summary figures */
    double area = 0, coh = 0, clear = 0;
    for (size_t b = 0; b < nb; b++)
        if (f->fg[b]) {
            area += 1;
            coh += f->coh[b];
            clear += f->wave[b];
        }
    f->mean_coh = area > 0 ? coh / area : 0;
    f->clarity = area > 0 ? clear / area : 0;
    pixel_maps(f);
    f->area = 0;
    for (size_t i = 0; i < np; i++)
        f->area += f->mask[i];
out:
    free(vxx), free(vyy), free(vxy), free(c2), free(s2), free(t1), free(t2);
    if (st != ABIS_OK)
        fp_field_free(f);
    return st;
}
