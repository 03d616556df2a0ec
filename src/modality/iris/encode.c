/*
 * encode.c: from the normalised iris to the iris code (iris.h layout), and
 * abis_iris_encode, the whole pipeline: segment, normalise, encode, quality.
 *
 * Each code ring averages IRIS_ROW_PER_RING rows of the rubber sheet, is
 * filtered along the angle with a 1-D log-Gabor filter (Field 1987; Masek
 * 2003 found it the best of his filters on CASIA-IrisV1), and the phase of
 * the complex response at every IRIS_COL_PER_ANGLE-th sample is quantised to
 * 2 bits (signs of real and imaginary part, Daugman 1993).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/iris/iris_internal.h"

#define PI 3.14159265358979323846

/* Log-Gabor centre wavelength in dense polar samples (512 per circle), and
 * sigma/f0 = 0.5 (about 2 octaves of bandwidth, Masek's choice).  Tuned on
 * CASIA-IrisV1: see docs/IRIS.md, section 8. */
#define LG_WAVELENGTH 32.0
#define LG_SIGMA_ON_F 0.5
/* A code sample whose 4x4 block of the rubber sheet is more than a quarter
 * noise is masked. */
#define NOISE_SHARE_MAX 0.25
/* Bits whose filter response is below this share of the ring's median
 * magnitude are fragile (their sign flips with noise) and masked. */
#define FRAGILE_SHARE 0.15

typedef struct cpx {
    double re, im;
} cpx;

/* In-place iterative radix-2 FFT of n (a power of two) points; inverse when
 * inv (unscaled). */
static void fft(cpx *x, int n, int inv)
{
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            cpx t = x[i];
            x[i] = x[j];
            x[j] = t;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        double ang = 2 * PI / len * (inv ? 1 : -1);
        for (int i = 0; i < n; i += len)
            for (int k = 0; k < len / 2; k++) {
                double c = cos(ang * k), s = sin(ang * k);
                cpx u = x[i + k], v = x[i + k + len / 2];
                cpx t = {v.re * c - v.im * s, v.re * s + v.im * c};
                x[i + k] = (cpx){u.re + t.re, u.im + t.im};
                x[i + k + len / 2] = (cpx){u.re - t.re, u.im - t.im};
            }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double iris_encode_polar(const float *polar, const uint8_t *noise, abis_iris_code *out)
{
    enum { N = IRIS_POLAR_A };
    memset(out, 0, sizeof *out);
    double filt[N];
    double f0 = 1.0 / LG_WAVELENGTH, ls = log(LG_SIGMA_ON_F);
    for (int k = 0; k < N; k++) {
        double f = (double)k / N;
        filt[k] = (k == 0 || k > N / 2) ? 0 : exp(-pow(log(f / f0), 2) / (2 * ls * ls));
    }
    unsigned kept = 0;
    for (int ring = 0; ring < ABIS_IRIS_RINGS; ring++) {
        cpx x[N];
        double row[N];
        int good[N];
        double sum = 0;
        int ngood = 0;
        for (int a = 0; a < N; a++) {
            double s = 0;
            int g = 0;
            for (int j = 0; j < IRIS_ROW_PER_RING; j++) {
                size_t k = (size_t)(ring * IRIS_ROW_PER_RING + j) * N + a;
                if (!noise[k]) {
                    s += polar[k];
                    g++;
                }
            }
            good[a] = g;
            row[a] = g ? s / g : 0;
            if (g) {
                sum += row[a];
                ngood++;
            }
        }
        if (ngood == 0)
            continue; /* whole ring masked */
        /* Noise replaced by the ring's mean so it adds no edges. */
        double mean = sum / ngood;
        for (int a = 0; a < N; a++)
            x[a] = (cpx){good[a] ? row[a] - mean : 0, 0};
        fft(x, N, 0);
        for (int k = 0; k < N; k++) {
            x[k].re *= filt[k];
            x[k].im *= filt[k];
        }
        fft(x, N, 1);
        double mre[ABIS_IRIS_ANGLES], mim[ABIS_IRIS_ANGLES];
        for (int c = 0; c < ABIS_IRIS_ANGLES; c++) {
            mre[c] = fabs(x[c * IRIS_COL_PER_ANGLE].re);
            mim[c] = fabs(x[c * IRIS_COL_PER_ANGLE].im);
        }
        double sre[ABIS_IRIS_ANGLES], sim[ABIS_IRIS_ANGLES];
        memcpy(sre, mre, sizeof sre);
        memcpy(sim, mim, sizeof sim);
        qsort(sre, ABIS_IRIS_ANGLES, sizeof *sre, cmp_double);
        qsort(sim, ABIS_IRIS_ANGLES, sizeof *sim, cmp_double);
        double lim_re = FRAGILE_SHARE * sre[ABIS_IRIS_ANGLES / 2];
        double lim_im = FRAGILE_SHARE * sim[ABIS_IRIS_ANGLES / 2];
        for (int c = 0; c < ABIS_IRIS_ANGLES; c++) {
            const cpx v = x[c * IRIS_COL_PER_ANGLE];
            /* Noise share of the block of rubber sheet this sample stands for. */
            int bad = 0;
            for (int d = -IRIS_COL_PER_ANGLE / 2; d < IRIS_COL_PER_ANGLE / 2; d++) {
                int a = (c * IRIS_COL_PER_ANGLE + d + N) % N;
                bad += IRIS_ROW_PER_RING - good[a];
            }
            int usable = bad <= NOISE_SHARE_MAX * IRIS_ROW_PER_RING * IRIS_COL_PER_ANGLE;
            unsigned bit = (unsigned)(ring * ABIS_IRIS_ANGLES + c) * 2;
            if (v.re >= 0)
                out->code[bit / 8] |= (uint8_t)(1u << (bit % 8));
            if (v.im >= 0)
                out->code[(bit + 1) / 8] |= (uint8_t)(1u << ((bit + 1) % 8));
            if (usable && mre[c] >= lim_re) {
                out->mask[bit / 8] |= (uint8_t)(1u << (bit % 8));
                kept++;
            }
            if (usable && mim[c] >= lim_im) {
                out->mask[(bit + 1) / 8] |= (uint8_t)(1u << ((bit + 1) % 8));
                kept++;
            }
        }
    }
    return (double)kept / ABIS_IRIS_BITS;
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

abis_status abis_iris_encode(const abis_image *img, abis_iris_code *out, abis_iris_info *info,
                             abis_error *err)
{
    if (!img || !out || !img->pixels)
        return abis_error_set(err, ABIS_E_INVALID, "no eye image given");
    if (img->width < 32 || img->height < 32)
        return abis_error_set(err, ABIS_E_INVALID,
                              "eye image of %d x %d pixels is too small (at least 32 x 32)",
                              img->width, img->height);
    if (img->width > ABIS_IMAGE_MAX_SIDE || img->height > ABIS_IMAGE_MAX_SIDE)
        return abis_error_set(err, ABIS_E_INVALID, "eye image of %d x %d pixels is too large",
                              img->width, img->height);
    iris_seg seg;
    abis_status st = iris_segment(img, &seg, err);
    if (st != ABIS_OK)
        return st;
    size_t n = (size_t)IRIS_POLAR_R * IRIS_POLAR_A;
    float *polar = malloc(n * sizeof *polar);
    uint8_t *noise = malloc(n);
    if (!polar || !noise) {
        free(polar);
        free(noise);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory encoding the iris");
    }
    iris_normalize(img, &seg, polar, noise);
    abis_iris_code code;
    double usable = iris_encode_polar(polar, noise, &code);
    free(polar);
    free(noise);

    abis_iris_info inf;
    inf.pupil_x = seg.px;
    inf.pupil_y = seg.py;
    inf.pupil_r = seg.pr;
    inf.iris_x = seg.ix;
    inf.iris_y = seg.iy;
    inf.iris_r = seg.ir;
    inf.usable_fraction = usable;
    inf.contrast = clamp01((seg.iris_mean - seg.pupil_mean) / (seg.iris_mean + seg.pupil_mean + 1e-9));
    inf.dilation = seg.pr / seg.ir;
    inf.sharpness = seg.sharpness;
    /* Quality (docs/IRIS.md): product of the ISO/IEC 29794-6 factors
     * mapped to 0..1 -- usable area against the 70 % the standard recommends,
     * contrast against 0.3, dilation 1 inside 0.2..0.7 falling to 0 at 0.1
     * and 0.8, and sharpness as it is. */
    double fu = clamp01(usable / 0.7);
    double fc = clamp01(inf.contrast / 0.3);
    double d = inf.dilation;
    double fd = d < 0.2 ? clamp01((d - 0.1) / 0.1) : d > 0.7 ? clamp01((0.8 - d) / 0.1) : 1;
    inf.quality = 100 * fu * fc * fd * clamp01(inf.sharpness);
    if (info)
        *info = inf;
    if (usable < 0.4)
        return abis_error_set(err, ABIS_E_INVALID,
                              "only %.0f %% of the iris is usable (at least 40 %% needed)",
                              100 * usable);
    *out = code;
    return ABIS_OK;
}
