/* iris_synth.c: synthetic eye images for the iris tests (iris_synth.h). */
#include "iris_synth.h"

#include "testutil.h"

#include <math.h>
#include <stdlib.h>

#define PI 3.14159265358979323846

const abis_test_eye abis_test_base_eye = {161, 139, 40, 160, 140, 105, 0, 7, 0, 0, 0, 0};
const abis_test_eye abis_test_offset_eye = {150, 132, 33, 158, 138, 98, 0, 7, 0, 0, 0, 0};

static double rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 65535.0;
}

abis_image abis_test_draw_eye(const abis_test_eye *e)
{
    enum { W = ABIS_TEST_EYE_W, H = ABIS_TEST_EYE_H, K = 24 };
    abis_image img = {W, H, malloc(W * H), 0, 1, 0};
    assert_non_null(img.pixels);
    double amp[K], m[K], f[K], p[K], q[K];
    unsigned s = e->seed;
    for (int k = 0; k < K; k++) {
        amp[k] = 6 + 10 * rnd(&s);
        m[k] = 2 + (int)(30 * rnd(&s));
        f[k] = 0.5 + 3 * rnd(&s);
        p[k] = 2 * PI * rnd(&s);
        q[k] = 2 * PI * rnd(&s);
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double v;
            double dp = hypot(x - e->px, y - e->py), di = hypot(x - e->ix, y - e->iy);
            if (dp <= e->pr) {
                v = 30;
            } else if (di <= e->ir) {
                double phi = atan2(y - e->iy, x - e->ix) - e->rot;
                double rho = (di - e->pr) / (e->ir - e->pr);
                v = 110;
                for (int k = 0; k < K; k++)
                    v += amp[k] * cos(m[k] * phi + p[k]) * cos(2 * PI * f[k] * rho + q[k]) / 2.5;
            } else {
                v = 190;
            }
            double bend = e->lid_curv * (x - e->ix) * (x - e->ix);
            if ((e->lid_top > 0 && y < e->lid_top + bend) ||
                (e->lid_bottom > 0 && y > e->lid_bottom - bend))
                v = e->lid_level > 0 ? e->lid_level : 175;
            img.pixels[y * W + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
        }
    return img;
}
