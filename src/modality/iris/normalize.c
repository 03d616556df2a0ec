/*
 * normalize.c: Daugman's rubber-sheet model -- the iris between the pupil and
 * limbus circles (which need not be concentric) mapped to a fixed polar grid,
 * with the noise mask (outside the image, eyelids, eyelashes, reflections).
 */
#include <math.h>

#include "modality/iris/iris_internal.h"

#define PI 3.14159265358979323846

/* Bilinear sample of the 8-bit image; 0 when outside it. */
static int sample8(const abis_image *img, double x, double y, double *v)
{
    if (x < 0 || y < 0 || x > img->width - 1 || y > img->height - 1)
        return 0;
    int x0 = (int)x, y0 = (int)y;
    if (x0 >= img->width - 1)
        x0 = img->width - 2;
    if (y0 >= img->height - 1)
        y0 = img->height - 2;
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    int x1 = x0 + 1 < img->width ? x0 + 1 : x0, y1 = y0 + 1 < img->height ? y0 + 1 : y0;
    double fx = x - x0, fy = y - y0;
    const uint8_t *p = img->pixels;
    size_t w = (size_t)img->width;
    *v = (1 - fy) * ((1 - fx) * p[y0 * w + x0] + fx * p[y0 * w + x1]) +
         fy * ((1 - fx) * p[y1 * w + x0] + fx * p[y1 * w + x1]);
    return 1;
}

void iris_normalize(const abis_image *img, const iris_seg *seg, float *polar, uint8_t *noise)
{
    for (int a = 0; a < IRIS_POLAR_A; a++) {
        double t = 2 * PI * a / IRIS_POLAR_A, c = cos(t), s = sin(t);
        double xp = seg->px + seg->pr * c, yp = seg->py + seg->pr * s;
        double xl = seg->ix + seg->ir * c, yl = seg->iy + seg->ir * s;
        for (int r = 0; r < IRIS_POLAR_R; r++) {
            double rho = IRIS_RHO_MAX * (r + 0.5) / IRIS_POLAR_R;
            double x = (1 - rho) * xp + rho * xl, y = (1 - rho) * yp + rho * yl;
            size_t k = (size_t)r * IRIS_POLAR_A + a;
            double v = 0;
            int bad = !sample8(img, x, y, &v);
            if (!bad) {
                double u = x - seg->ix;
                if (seg->has_upper && y < seg->upper[0] * u * u + seg->upper[1] * u + seg->upper[2])
                    bad = 1;
                if (seg->has_lower && y > seg->lower[0] * u * u + seg->lower[1] * u + seg->lower[2])
                    bad = 1;
                if (v < seg->lash_t || v > seg->spec_t)
                    bad = 1;
            }
            polar[k] = (float)v;
            noise[k] = (uint8_t)bad;
        }
    }
}
