/*
 * finger_synth.h: synthetic fingerprints with known minutiae, for the
 * fingerprint tests.
 *
 * The ridge pattern is the AM-FM model of Larkin and Fletcher ("A coherent
 * framework for fingerprint analysis: are fingerprints holograms?", Optics
 * Express 15(14), 2007): grey = 128 - 90 cos(phi), with the phase
 *
 *   phi(x, y) = 2 pi (x cos b + y' sin b) / T  +  sum_n p_n atan2(y'_n, x_n')
 *
 * (y' = -y: a y-up frame).  The first term is a field of straight ridges of
 * period T whose orientation is known: ridges run at angle b + 90 degrees.
 * Each spiral term (p_n = +1 or -1) is a phase singularity: one more ridge
 * on one side of it than on the other, i.e. exactly one minutia at (x_n,
 * y_n).  Which side gains the ridge follows from the phase: along a line
 * parallel to the ridge normal n = (cos b, sin b), passing at distance d on
 * the side of t = n turned by +90 degrees, the spiral's angle runs from pi
 * to 0 (d > 0) or from -pi to 0 (d < 0), adding -p pi or +p pi: for p = +1
 * the side -t has one ridge more.  The minutia's direction (finger.h:
 * towards its two ridges) therefore points to angle b - 90 degrees for
 * p = +1 and b + 90 degrees for p = -1.
 * Whether it is an ending or a bifurcation depends on the phase c the rest
 * of the pattern has at the spiral (each spiral's angle is counted from the
 * ridge normal): the dark ridge line (phi = 0 mod 2 pi) leaves the
 * singularity at angle -c / p from the normal.  With c = +pi/2 it leaves
 * towards the side with the extra ridge (for either polarity), so that
 * ridge ends there: a ridge ending; with c = -pi/2 it leaves towards the
 * other side, the extra ridge being a branch: a bifurcation.  synth_snap
 * moves a minutia along the normal until c is right for its type.
 */
#ifndef ABIS_TEST_FINGER_SYNTH_H
#define ABIS_TEST_FINGER_SYNTH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* A uniform number in [0, 1) from a xorshift64 state (never 0). */
static inline double synth_uniform(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (double)(*state >> 11) / 9007199254740992.0;
}

typedef struct synth_minutia {
    double x, y; /* pixels, y down */
    int polarity;
} synth_minutia;

/* Fill pixels (w x h) with the pattern at `scale` times 500 ppi (T and the
 * minutiae positions are given at 500 ppi and scaled).  `noise` adds uniform
 * noise of that amplitude (grey levels) from a fixed seed. */
static inline void synth_print(uint8_t *px, int w, int h, double scale, double period, double b,
                               const synth_minutia *m, int n, double noise)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    double T = period * scale, c = cos(b), sn = sin(b);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double ph = 2 * M_PI * (x * c - y * sn) / T;
            /* each spiral's angle from the ridge normal (so c alone sets the type) */
            for (int k = 0; k < n; k++)
                ph += m[k].polarity * (atan2(-(y - m[k].y * scale), x - m[k].x * scale) - b);
            double v = 128 - 90 * cos(ph);
            if (noise > 0) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                v += noise * ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 2;
            }
            px[(size_t)y * w + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

/* Move minutia k along the ridge normal until the phase there without its
 * own spiral (the straight ridges plus the other spirals) makes it of
 * `type` (1 ending: +pi/2, 2 bifurcation: -pi/2).  A few rounds settle it,
 * the other spirals' phase varying slowly. */
static inline void synth_snap(synth_minutia *m, int n, int k, double period, double b, int type)
{
    double phase0 = type == 1 ? M_PI / 2 : -M_PI / 2;
    double c = cos(b), sn = sin(b);
    for (int round = 0; round < 8; round++) {
        double ph = 2 * M_PI * (m[k].x * c - m[k].y * sn) / period;
        for (int j = 0; j < n; j++)
            if (j != k)
                ph += m[j].polarity * (atan2(-(m[k].y - m[j].y), m[k].x - m[j].x) - b);
        double d = remainder(phase0 - ph, 2 * M_PI);
        double shift = d / (2 * M_PI) * period;
        m[k].x += shift * c;
        m[k].y -= shift * sn;
    }
}

/* The direction (finger.h convention) a synthetic minutia of polarity p
 * has in a field of ridge normal angle b. */
static inline double synth_direction(double b, int p)
{
    double a = b + (p > 0 ? -M_PI / 2 : M_PI / 2);
    a = fmod(a, 2 * M_PI);
    return a < 0 ? a + 2 * M_PI : a;
}

#endif
