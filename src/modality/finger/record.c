/*
 * record.c: finger minutiae records as ISO/IEC 19794-2:2005 and ANSI INCITS
 * 378-2004 lay them out, read (so that other vendors' minutiae can be
 * enrolled) and written (so that ours can be exported).  docs/FORMATS.md,
 * "Finger minutiae records", has the byte tables.  Integers are big-endian.
 *
 * Record header
 *   ISO (24 bytes)                        ANSI (26 bytes, or 30)
 *   "FMR\0" " 20\0"                       "FMR\0" " 20\0"
 *   record length   4                     record length 2 (or 0x0000 then 4)
 *                                         CBEFF product id 4 (owner, type)
 *   capture equipment 2 (4 bits compliance, 12 bits id), both
 *   image width 2, height 2, x and y resolution 2 + 2 (pixels per cm), both
 *   number of finger views 1, reserved 1, both
 * Finger view (both)
 *   finger position 1 (0 unknown, 1-10); view number (high 4 bits) and
 *   impression type (low 4 bits) 1; finger quality 1 (0-100); minutiae 1
 *   per minutia 6: type (2 bits: 01 ending, 10 bifurcation, 00 other) and
 *   x (14 bits); 2 reserved bits and y (14 bits); angle 1; quality 1 (0-100)
 *   extended data length 2, then blocks of type 2, length 2 (header
 *   included), data
 * The angle unit is the difference: 360/256 degrees (0-255) in ISO,
 * 2 degrees (0-179) in ANSI; both count counter-clockwise from the x axis.
 * The two share a magic; the length field tells them apart (a 2-byte ANSI
 * length of at least 26 cannot start a 4-byte ISO length; see
 * detect_format).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define ISO_HEADER 24
#define ANSI_HEADER 26
#define VIEW_HEADER 4
#define MINUTIA_BYTES 6
/* 500 ppi in pixels per centimetre, as written */
#define PPCM_500 197
/* Resolutions accepted, pixels per cm (250 to 2000 ppi). */
#define PPCM_MIN 98
#define PPCM_MAX 788
#define MAX_RECORD_MINUTIAE 255

static unsigned rd16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void wr32(unsigned char *p, uint32_t v)
{
    wr16(p, v >> 16);
    wr16(p + 2, v & 0xffff);
}

abis_finger_record_format abis_finger_record_detect(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    if (!b || len < 14 || memcmp(b, "FMR\0 20\0", 8) != 0)
        return ABIS_FINGER_RECORD_NONE;
    unsigned first = rd16(b + 8);
    if (first >= ANSI_HEADER)
        return ABIS_FINGER_RECORD_ANSI; /* too big to start an ISO length */
    if (first > 0)
        return ABIS_FINGER_RECORD_ISO; /* an ISO record of at least 64 KiB */
    /* 0x0000: an ISO length under 64 KiB follows, or ANSI's 4-byte length
     * of at least 64 KiB (whose top half is small) */
    return rd16(b + 10) >= ISO_HEADER ? ABIS_FINGER_RECORD_ISO : ABIS_FINGER_RECORD_ANSI;
}

/* One parsed view: where its minutiae are. */
typedef struct view_ref {
    int position, view, impression, quality, n;
    const unsigned char *minutiae;
} view_ref;

typedef struct parsed {
    abis_finger_record_format format;
    const char *name;
    int width, height, xres, yres;
    int n_views;
    view_ref views[ABIS_FINGER_RECORD_MAX_VIEWS];
} parsed;

/* Check a whole record and index its views. */
static abis_status parse(const unsigned char *b, size_t len, parsed *p, abis_error *err)
{
    memset(p, 0, sizeof *p);
    p->format = abis_finger_record_detect(b, len);
    if (p->format == ABIS_FINGER_RECORD_NONE)
        return abis_error_set(err, ABIS_E_INVALID,
                              "not a finger minutiae record (no \"FMR\" ISO/IEC 19794-2 or ANSI "
                              "INCITS 378 header)");
    int iso = p->format == ABIS_FINGER_RECORD_ISO;
    p->name = iso ? "ISO/IEC 19794-2 record" : "ANSI INCITS 378 record";
    size_t at, declared;
    if (iso) {
        if (len < ISO_HEADER)
            return abis_error_set(err, ABIS_E_INVALID, "%s truncated: %zu bytes, header needs %d",
                                  p->name, len, ISO_HEADER);
        declared = rd32(b + 8);
        at = 12;
    } else {
        declared = rd16(b + 8);
        at = 10;
        if (declared == 0) {
            if (len < 14)
                return abis_error_set(err, ABIS_E_INVALID, "%s truncated in its length field",
                                      p->name);
            declared = rd32(b + 10);
            at = 14;
        }
        at += 4; /* CBEFF product identifier */
        if (len < at + 16)
            return abis_error_set(err, ABIS_E_INVALID, "%s truncated: %zu bytes, header needs %zu",
                                  p->name, len, at + 16);
    }
    if (declared != len)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s length field says %zu bytes but %zu were given%s", p->name,
                              declared, len, declared > len ? " (truncated)" : "");
    at += 2; /* capture equipment */
    p->width = (int)rd16(b + at);
    p->height = (int)rd16(b + at + 2);
    p->xres = (int)rd16(b + at + 4);
    p->yres = (int)rd16(b + at + 6);
    int n_views = b[at + 8];
    if (b[at + 9] != 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s reserved header byte is %u, not 0", p->name,
                              b[at + 9]);
    at += 10;
    if (p->width == 0 || p->height == 0 || p->width > 16383 || p->height > 16383)
        return abis_error_set(err, ABIS_E_INVALID, "%s image size %d x %d is not valid", p->name,
                              p->width, p->height);
    if (p->xres < PPCM_MIN || p->xres > PPCM_MAX || p->yres < PPCM_MIN || p->yres > PPCM_MAX)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s resolution %d x %d pixels/cm is out of range (%d-%d: 250-2000 "
                              "ppi)",
                              p->name, p->xres, p->yres, PPCM_MIN, PPCM_MAX);
    if (n_views == 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s holds no finger view", p->name);
    if (n_views > ABIS_FINGER_RECORD_MAX_VIEWS)
        return abis_error_set(err, ABIS_E_INVALID, "%s holds %d finger views (at most %d read)",
                              p->name, n_views, ABIS_FINGER_RECORD_MAX_VIEWS);
    for (int v = 0; v < n_views; v++) {
        view_ref *r = &p->views[v];
        if (len - at < VIEW_HEADER)
            return abis_error_set(err, ABIS_E_INVALID, "%s truncated in finger view %d header",
                                  p->name, v + 1);
        r->position = b[at];
        r->view = b[at + 1] >> 4;
        r->impression = b[at + 1] & 0x0f;
        r->quality = b[at + 2];
        r->n = b[at + 3];
        at += VIEW_HEADER;
        if (r->position > 10)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s view %d: finger position %d is not one finger (0-10)",
                                  p->name, v + 1, r->position);
        if (r->quality > 100)
            return abis_error_set(err, ABIS_E_INVALID, "%s view %d: finger quality %d is over 100",
                                  p->name, v + 1, r->quality);
        if ((len - at) / MINUTIA_BYTES < (size_t)r->n)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s truncated in view %d: %d minutiae need %d bytes, %zu left",
                                  p->name, v + 1, r->n, r->n * MINUTIA_BYTES, len - at);
        r->minutiae = b + at;
        for (int i = 0; i < r->n; i++) {
            const unsigned char *m = b + at + (size_t)i * MINUTIA_BYTES;
            unsigned type = m[0] >> 6, x = rd16(m) & 0x3fff, y = rd16(m + 2) & 0x3fff;
            if (type == 3)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s view %d minutia %d: type code 3 is reserved", p->name,
                                      v + 1, i + 1);
            if ((int)x >= p->width || (int)y >= p->height)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s view %d minutia %d at (%u, %u) lies outside the %d x %d "
                                      "image",
                                      p->name, v + 1, i + 1, x, y, p->width, p->height);
            if (!iso && m[4] > 179)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s view %d minutia %d: angle %u is out of range (0-179, "
                                      "units of 2 degrees)",
                                      p->name, v + 1, i + 1, m[4]);
            if (m[5] > 100)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s view %d minutia %d: quality %u is over 100", p->name,
                                      v + 1, i + 1, m[5]);
        }
        at += (size_t)r->n * MINUTIA_BYTES;
        if (len - at < 2)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s truncated in view %d (no extended data length)", p->name,
                                  v + 1);
        size_t ext = rd16(b + at);
        at += 2;
        if (len - at < ext)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "%s view %d: extended data of %zu bytes runs past the record",
                                  p->name, v + 1, ext);
        /* the blocks must fill the extended data exactly */
        size_t e = 0;
        while (e < ext) {
            if (ext - e < 4)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s view %d: extended data block header truncated", p->name,
                                      v + 1);
            size_t bl = rd16(b + at + e + 2);
            if (bl < 4 || bl > ext - e)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "%s view %d: extended data block length %zu does not fit",
                                      p->name, v + 1, bl);
            e += bl;
        }
        at += ext;
    }
    if (at != len)
        return abis_error_set(err, ABIS_E_INVALID, "%s has %zu bytes after its last view", p->name,
                              len - at);
    p->n_views = n_views;
    return ABIS_OK;
}

abis_status abis_finger_record_views(const void *buf, size_t len, int *positions, int *n,
                                     abis_error *err)
{
    parsed p;
    *n = 0;
    abis_status st = parse(buf, len, &p, err);
    if (st != ABIS_OK)
        return st;
    for (int v = 0; v < p.n_views; v++)
        positions[v] = p.views[v].position;
    *n = p.n_views;
    return ABIS_OK;
}

abis_status abis_finger_record_read(const void *buf, size_t len, int position,
                                    abis_finger_template *out, abis_error *err)
{
    parsed p;
    memset(out, 0, sizeof *out);
    abis_status st = parse(buf, len, &p, err);
    if (st != ABIS_OK)
        return st;
    const view_ref *r = NULL;
    if (position > 0) {
        for (int v = 0; v < p.n_views && !r; v++)
            if (p.views[v].position == position)
                r = &p.views[v];
        if (!r)
            return abis_error_set(err, ABIS_E_INVALID, "%s holds no view of finger %d", p.name,
                                  position);
    } else if (p.n_views == 1) {
        r = &p.views[0];
    } else {
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s holds %d finger views; say which finger position to read", p.name,
                              p.n_views);
    }
    if (r->n < ABIS_FINGER_MIN_MINUTIAE)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%s: finger %d has %d minutiae (at least %d are needed to compare)",
                              p.name, r->position, r->n, ABIS_FINGER_MIN_MINUTIAE);
    /* scale to 500 ppi; 197 px/cm is the standards' way of writing 500 ppi */
    double sx = p.xres == PPCM_500 ? 1.0 : ABIS_FINGER_PPI / (p.xres * 2.54);
    double sy = p.yres == PPCM_500 ? 1.0 : ABIS_FINGER_PPI / (p.yres * 2.54);
    int iso = p.format == ABIS_FINGER_RECORD_ISO;
    abis_minutia all[MAX_RECORD_MINUTIAE];
    for (int i = 0; i < r->n; i++) {
        const unsigned char *m = r->minutiae + (size_t)i * MINUTIA_BYTES;
        all[i].type = (uint8_t)(m[0] >> 6);
        all[i].x = (float)((rd16(m) & 0x3fff) * sx);
        all[i].y = (float)((rd16(m + 2) & 0x3fff) * sy);
        double a = iso ? m[4] * (2 * M_PI / 256) : m[4] * (M_PI / 90);
        all[i].angle = (float)a;
        all[i].quality = m[5];
    }
    out->position = r->position;
    out->quality = r->quality;
    out->width = (int)lrint(p.width * sx);
    out->height = (int)lrint(p.height * sy);
    if (out->width < 1)
        out->width = 1;
    if (out->height < 1)
        out->height = 1;
    for (int i = 0; i < r->n; i++) {
        if (all[i].x > (float)out->width - 0.25f)
            all[i].x = (float)out->width - 0.25f;
        if (all[i].y > (float)out->height - 0.25f)
            all[i].y = (float)out->height - 0.25f;
    }
    if (r->n <= ABIS_FINGER_MAX_MINUTIAE) {
        memcpy(out->m, all, (size_t)r->n * sizeof *all);
        out->n = r->n;
    } else {
        /* more than a template holds: the best by quality are kept */
        int idx[MAX_RECORD_MINUTIAE];
        for (int i = 0; i < r->n; i++)
            idx[i] = i;
        for (int i = 1; i < r->n; i++) { /* insertion sort by quality, stable */
            int v = idx[i], j = i;
            while (j > 0 && all[idx[j - 1]].quality < all[v].quality) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        for (int i = 0; i < ABIS_FINGER_MAX_MINUTIAE; i++)
            out->m[i] = all[idx[i]];
        out->n = ABIS_FINGER_MAX_MINUTIAE;
    }
    return ABIS_OK;
}

abis_status abis_finger_record_write(abis_finger_record_format format,
                                     const abis_finger_template *const *views, int n,
                                     unsigned char **out, size_t *len, abis_error *err)
{
    *out = NULL;
    *len = 0;
    if (format != ABIS_FINGER_RECORD_ISO && format != ABIS_FINGER_RECORD_ANSI)
        return abis_error_set(err, ABIS_E_INVALID, "unknown minutiae record format");
    if (n < 1 || n > 255)
        return abis_error_set(err, ABIS_E_INVALID, "a record holds 1 to 255 finger views, not %d",
                              n);
    int iso = format == ABIS_FINGER_RECORD_ISO;
    size_t body = 0;
    int width = 1, height = 1;
    for (int v = 0; v < n; v++) {
        if (views[v]->n < 0 || views[v]->n > 255 || views[v]->position < 0 ||
            views[v]->position > 10)
            return abis_error_set(err, ABIS_E_INVALID, "view %d cannot be written", v + 1);
        body += VIEW_HEADER + (size_t)views[v]->n * MINUTIA_BYTES + 2;
        if (views[v]->width > width)
            width = views[v]->width;
        if (views[v]->height > height)
            height = views[v]->height;
    }
    if (width > 16383 || height > 16383)
        return abis_error_set(err, ABIS_E_INVALID, "image of %d x %d cannot be written", width,
                              height);
    size_t head = iso ? ISO_HEADER : ANSI_HEADER;
    if (!iso && head + body > 0xffff)
        head += 4; /* the 6-byte length form */
    size_t total = head + body;
    unsigned char *b = calloc(1, total);
    if (!b)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory writing a record");
    memcpy(b, "FMR\0 20\0", 8);
    size_t at;
    if (iso) {
        wr32(b + 8, (uint32_t)total);
        at = 12;
    } else {
        if (head == ANSI_HEADER) {
            wr16(b + 8, (unsigned)total);
            at = 10;
        } else {
            wr16(b + 8, 0);
            wr32(b + 10, (uint32_t)total);
            at = 14;
        }
        at += 4; /* CBEFF product identifier: 0 (not registered) */
    }
    at += 2; /* capture equipment: 0, no compliance claimed, unknown device */
    wr16(b + at, (unsigned)width);
    wr16(b + at + 2, (unsigned)height);
    wr16(b + at + 4, PPCM_500);
    wr16(b + at + 6, PPCM_500);
    b[at + 8] = (unsigned char)n;
    at += 10;
    for (int v = 0; v < n; v++) {
        const abis_finger_template *t = views[v];
        int view_no = 0;
        for (int u = 0; u < v; u++)
            view_no += views[u]->position == t->position;
        b[at] = (unsigned char)t->position;
        b[at + 1] = (unsigned char)((view_no & 0x0f) << 4); /* impression 0: live-scan plain */
        b[at + 2] = (unsigned char)(t->quality < 0 ? 0 : t->quality > 100 ? 100 : t->quality);
        b[at + 3] = (unsigned char)t->n;
        at += VIEW_HEADER;
        for (int i = 0; i < t->n; i++) {
            const abis_minutia *m = &t->m[i];
            long x = lrint(m->x), y = lrint(m->y);
            x = x < 0 ? 0 : x >= width ? width - 1 : x;
            y = y < 0 ? 0 : y >= height ? height - 1 : y;
            wr16(b + at, (unsigned)((m->type & 3u) << 14 | (unsigned)x));
            wr16(b + at + 2, (unsigned)y);
            double deg = m->angle * 180.0 / M_PI;
            b[at + 4] = iso ? (unsigned char)((long)lrint(deg / 360.0 * 256) & 0xff)
                            : (unsigned char)((long)lrint(deg / 2) % 180);
            b[at + 5] = m->quality > 100 ? 100 : m->quality;
            at += MINUTIA_BYTES;
        }
        wr16(b + at, 0); /* no extended data */
        at += 2;
    }
    *out = b;
    *len = total;
    return ABIS_OK;
}
