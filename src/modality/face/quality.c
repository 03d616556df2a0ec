/*
 * quality.c: the face quality measures and gate (face.h), computed from the
 * 68 landmarks and from the very pixels the descriptor network sees (its
 * 150 x 150 input), so that they judge what the template is made of.
 *
 *   eye distance  between the centres of the two eyes' six points, in photo
 *                 pixels: the face's size (ISO/IEC 19794-5 measures face
 *                 images by it)
 *   roll          the tilt of the line through the eye centres, degrees
 *   yaw           the nose tip (point 30) off the eyes' midpoint along the eye
 *                 line, as a share of half the eye distance: about tan(yaw)
 *                 for a nose as long as half the eye distance, so
 *                 yaw = atan(share), degrees (0 when frontal, sign = direction)
 *   pitch         the nose tip's height between the eye line and the mouth
 *                 centre, against its frontal value NOSE_T0 (measured on LFW):
 *                 pitch = atan((t - NOSE_T0) / NOSE_DEPTH), degrees
 *   brightness    the mean grey (ITU-R BT.601 luma) of the crop's central
 *                 100 x 100 pixels, the face itself
 *   sharpness     the variance of the 4-neighbour Laplacian of the crop's grey
 *                 values over its central 100 x 100 pixels: blur removes the
 *                 high frequencies it measures (Pech-Pacheco et al., ICPR 2000)
 * Thresholds: abis_face_options; defaults and their measurement: docs/face.md.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "modality/face/face.h"

#define DEG (180.0 / 3.14159265358979323846)
/* The nose tip's height between eye line (0) and mouth (1) on frontal faces,
 * and the nose's depth as a share of the eye-to-mouth height; measured on
 * LFW's dev folds (docs/face.md). */
#define NOSE_T0 0.54
#define NOSE_DEPTH 0.5
#define CENTRE 100 /* side of the central region of the 150 x 150 crop */

typedef struct pt {
    double x, y;
} pt;

/* The mean of landmarks [from, to). */
static pt centre(const float *p, int from, int to)
{
    pt c = {0, 0};
    for (int i = from; i < to; i++) {
        c.x += p[2 * i];
        c.y += p[2 * i + 1];
    }
    c.x /= to - from;
    c.y /= to - from;
    return c;
}

void face_measure(const float pts[2 * ABIS_FACE_LANDMARKS], const nn_tensor *crop,
                  abis_face_info *info)
{
    /* iBUG 300-W numbering: 36..41 one eye, 42..47 the other, 30 the nose
     * tip, 48..67 the mouth */
    pt l = centre(pts, 36, 42), r = centre(pts, 42, 48), m = centre(pts, 48, 68);
    pt nose = {pts[60], pts[61]};
    double dx = r.x - l.x, dy = r.y - l.y, ied = hypot(dx, dy);
    info->eye_distance = ied;
    info->roll = atan2(dy, dx) * DEG;
    if (ied > 0) {
        pt u = {dx / ied, dy / ied}, v = {-u.y, u.x}; /* along the eye line, and down */
        pt e = {(l.x + r.x) / 2, (l.y + r.y) / 2};
        double along = (nose.x - e.x) * u.x + (nose.y - e.y) * u.y;
        double down = (nose.x - e.x) * v.x + (nose.y - e.y) * v.y;
        double mouth = (m.x - e.x) * v.x + (m.y - e.y) * v.y;
        info->yaw = atan(along / (ied / 2)) * DEG;
        info->pitch = mouth > 0 ? atan((down / mouth - NOSE_T0) / NOSE_DEPTH) * DEG : 90;
    } else {
        info->yaw = info->pitch = 90;
    }
    /* grey values of the central region of the network's input */
    int off = (crop->w - CENTRE) / 2;
    double sum = 0, lap_sum = 0, lap_sq = 0;
    size_t n = 0;
    for (int y = off; y < off + CENTRE; y++)
        for (int x = off; x < off + CENTRE; x++) {
#define GREY(yy, xx)                                                                               \
    (0.299 * crop->d[((size_t)(yy)*crop->w + (xx)) * 3] +                                          \
     0.587 * crop->d[((size_t)(yy)*crop->w + (xx)) * 3 + 1] +                                      \
     0.114 * crop->d[((size_t)(yy)*crop->w + (xx)) * 3 + 2])
            double g = GREY(y, x);
            double lap = GREY(y - 1, x) + GREY(y + 1, x) + GREY(y, x - 1) + GREY(y, x + 1) - 4 * g;
#undef GREY
            sum += g;
            lap_sum += lap;
            lap_sq += lap * lap;
            n++;
        }
    info->brightness = sum / (double)n;
    double mean = lap_sum / (double)n;
    info->sharpness = lap_sq / (double)n - mean * mean;
}

/* Append "; " and a formatted reason. */
static void add(char *buf, size_t cap, int *count, const char *fmt, double a, double b)
{
    size_t at = strlen(buf);
    if (at < cap)
        snprintf(buf + at, cap - at, "%s", *count ? "; " : "");
    at = strlen(buf);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (at < cap)
        snprintf(buf + at, cap - at, fmt, a, b);
#pragma GCC diagnostic pop
    (*count)++;
}

int face_gate(const abis_face_info *f, const abis_face_options *o, char *reason, size_t cap)
{
    int n = 0;
    if (cap)
        reason[0] = '\0';
    if (o->min_eye_distance > 0 && f->eye_distance < o->min_eye_distance)
        add(reason, cap, &n, "too small: eyes %.0f pixels apart, at least %.0f needed",
            f->eye_distance, o->min_eye_distance);
    if (o->max_yaw < 180 && fabs(f->yaw) > o->max_yaw)
        add(reason, cap, &n, "turned: yaw %.0f degrees, at most %.0f", fabs(f->yaw), o->max_yaw);
    if (o->max_pitch < 180 && fabs(f->pitch) > o->max_pitch)
        add(reason, cap, &n, "tilted up or down: pitch %.0f degrees, at most %.0f", fabs(f->pitch),
            o->max_pitch);
    if (o->max_roll < 180 && fabs(f->roll) > o->max_roll)
        add(reason, cap, &n, "tilted sideways: roll %.0f degrees, at most %.0f", fabs(f->roll),
            o->max_roll);
    if (o->min_brightness > 0 && f->brightness < o->min_brightness)
        add(reason, cap, &n, "too dark: mean brightness %.0f, at least %.0f", f->brightness,
            o->min_brightness);
    if (o->max_brightness > 0 && o->max_brightness < 255 && f->brightness > o->max_brightness)
        add(reason, cap, &n, "overexposed: mean brightness %.0f, at most %.0f", f->brightness,
            o->max_brightness);
    if (o->min_sharpness > 0 && f->sharpness < o->min_sharpness)
        add(reason, cap, &n, "too blurred: sharpness %.1f, at least %.1f", f->sharpness,
            o->min_sharpness);
    return n;
}

double face_quality(const abis_face_info *f, const abis_face_options *o)
{
    /* size: full credit from 60 pixels between the eyes (ISO/IEC 19794-5's
     * token face images put 60 pixels there); sharpness: from 4 times the
     * gate's minimum; pose: the cosines of yaw and pitch */
    double size = fmin(1.0, f->eye_distance / 60.0);
    double sharp = o->min_sharpness > 0 ? fmin(1.0, f->sharpness / (4 * o->min_sharpness)) : 1.0;
    double pose = fmax(0.0, cos(f->yaw / DEG)) * fmax(0.0, cos(f->pitch / DEG));
    double q = 100.0 * f->score * size * sharp * pose;
    return q < 0 ? 0 : q > 100 ? 100 : q;
}
