/*
 * template.c: the minutiae template libabis stores and seals, as bytes
 * (docs/FORMATS.md, "Fingerprint minutiae template").  All integers are
 * little-endian.
 *
 *   header (16 bytes)
 *     0  3  "AFM"          magic
 *     3  1  version        1
 *     4  1  position       0 unknown, 1-10 (ISO/IEC 19794-2 finger positions)
 *     5  1  quality        0..100
 *     6  1  n              minutiae, 1..ABIS_FINGER_MAX_MINUTIAE
 *     7  1  0              reserved
 *     8  2  width          image width at 500 ppi, 1..16383
 *    10  2  height         image height at 500 ppi, 1..16383
 *    12  4  0              reserved
 *   minutia (8 bytes each)
 *     0  2  x              quarter pixels at 500 ppi, < 4 * width
 *     2  2  y              quarter pixels, < 4 * height
 *     4  2  angle          units of 2 pi / 65536, counter-clockwise
 *     6  1  type           0 other, 1 ending, 2 bifurcation
 *     7  1  quality        0..100
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

size_t abis_finger_template_size(int n)
{
    return ABIS_FINGER_TEMPLATE_HEADER + (size_t)(n < 0 ? 0 : n) * ABIS_FINGER_TEMPLATE_MINUTIA;
}

void abis_finger_template_write(const abis_finger_template *t, unsigned char *out)
{
    memset(out, 0, ABIS_FINGER_TEMPLATE_HEADER);
    memcpy(out, "AFM", 3);
    out[3] = 1;
    out[4] = (unsigned char)t->position;
    out[5] = (unsigned char)(t->quality < 0 ? 0 : t->quality > 100 ? 100 : t->quality);
    out[6] = (unsigned char)t->n;
    put16(out + 8, (unsigned)t->width);
    put16(out + 10, (unsigned)t->height);
    for (int i = 0; i < t->n; i++) {
        unsigned char *p =
            out + ABIS_FINGER_TEMPLATE_HEADER + (size_t)i * ABIS_FINGER_TEMPLATE_MINUTIA;
        const abis_minutia *m = &t->m[i];
        long x = lrintf(m->x * 4), y = lrintf(m->y * 4);
        long xmax = 4L * t->width - 1, ymax = 4L * t->height - 1;
        put16(p, (unsigned)(x < 0 ? 0 : x > xmax ? xmax : x));
        put16(p + 2, (unsigned)(y < 0 ? 0 : y > ymax ? ymax : y));
        double a = m->angle / (2 * M_PI) * 65536.0;
        put16(p + 4, (unsigned)((long)lrint(a) & 0xffff));
        p[6] = m->type;
        p[7] = m->quality;
    }
}

abis_status abis_finger_template_read(const void *buf, size_t len, abis_finger_template *t,
                                      abis_error *err)
{
    const unsigned char *b = buf;
    memset(t, 0, sizeof *t);
    if (!b || len < ABIS_FINGER_TEMPLATE_HEADER)
        return abis_error_set(err, ABIS_E_INVALID, "minutiae template truncated (%zu bytes)",
                              b ? len : 0);
    if (memcmp(b, "AFM", 3) != 0)
        return abis_error_set(err, ABIS_E_INVALID, "not a minutiae template (bad magic)");
    if (b[3] != 1)
        return abis_error_set(err, ABIS_E_INVALID, "minutiae template version %u is unknown", b[3]);
    int n = b[6];
    if (n < 1 || n > ABIS_FINGER_MAX_MINUTIAE)
        return abis_error_set(err, ABIS_E_INVALID,
                              "minutiae template holds %d minutiae (1 to %d allowed)", n,
                              ABIS_FINGER_MAX_MINUTIAE);
    if (len != abis_finger_template_size(n))
        return abis_error_set(err, ABIS_E_INVALID,
                              "minutiae template is %zu bytes; %d minutiae make %zu", len, n,
                              abis_finger_template_size(n));
    if (b[4] > 10 || b[5] > 100 || b[7] != 0 || get16(b + 12) || get16(b + 14))
        return abis_error_set(err, ABIS_E_INVALID,
                              "minutiae template header is malformed (position %u, quality %u)",
                              b[4], b[5]);
    t->position = b[4];
    t->quality = b[5];
    t->n = n;
    t->width = (int)get16(b + 8);
    t->height = (int)get16(b + 10);
    if (t->width < 1 || t->height < 1 || t->width > 16383 || t->height > 16383)
        return abis_error_set(err, ABIS_E_INVALID, "minutiae template image size %d x %d", t->width,
                              t->height);
    for (int i = 0; i < n; i++) {
        const unsigned char *p =
            b + ABIS_FINGER_TEMPLATE_HEADER + (size_t)i * ABIS_FINGER_TEMPLATE_MINUTIA;
        unsigned x = get16(p), y = get16(p + 2);
        if (x >= 4u * (unsigned)t->width || y >= 4u * (unsigned)t->height || p[6] > 2 || p[7] > 100)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "minutiae template: minutia %d is malformed (outside the "
                                  "image, or a bad type or quality)",
                                  i + 1);
        t->m[i].x = (float)x / 4;
        t->m[i].y = (float)y / 4;
        t->m[i].angle = (float)(get16(p + 4) * (2 * M_PI / 65536.0));
        t->m[i].type = p[6];
        t->m[i].quality = p[7];
    }
    return ABIS_OK;
}

typedef struct rank {
    int q;
    float d2;
    int i;
} rank;

static int cmp_rank(const void *a, const void *b)
{
    const rank *x = a, *y = b;
    if (x->q != y->q)
        return y->q - x->q;
    if (x->d2 != y->d2)
        return x->d2 < y->d2 ? -1 : 1;
    return x->i - y->i;
}

void abis_finger_template_cap(abis_finger_template *t, int cap)
{
    if (t->n <= cap)
        return;
    rank r[ABIS_FINGER_MAX_MINUTIAE];
    abis_minutia keep[ABIS_FINGER_MAX_MINUTIAE];
    float cx = 0, cy = 0;
    for (int i = 0; i < t->n; i++) {
        cx += t->m[i].x;
        cy += t->m[i].y;
    }
    cx /= (float)t->n;
    cy /= (float)t->n;
    for (int i = 0; i < t->n; i++) {
        float dx = t->m[i].x - cx, dy = t->m[i].y - cy;
        r[i] = (rank){t->m[i].quality, dx * dx + dy * dy, i};
    }
    qsort(r, (size_t)t->n, sizeof *r, cmp_rank);
    for (int i = 0; i < cap; i++)
        keep[i] = t->m[r[i].i];
    memcpy(t->m, keep, (size_t)cap * sizeof *keep);
    t->n = cap;
}
