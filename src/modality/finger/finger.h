/*
 * finger.h: the fingerprint modality -- from a fingerprint image to a set of
 * minutiae (feature extraction of our own), the minutiae template libabis
 * stores, ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 minutiae records, and
 * comparing two templates (docs/FINGER.md explains every stage; the template
 * layout is in docs/FORMATS.md, "Fingerprint minutiae template").
 *
 * Coordinates are pixels at ABIS_FINGER_PPI (500 ppi): an image at another
 * resolution is rescaled to it first, a record's minutiae are scaled to it
 * when read, so templates of different scanners compare.  The origin is the
 * image's top-left corner, y grows downwards.  Angles are radians in
 * [0, 2 pi), counter-clockwise from the x axis as the standards measure them
 * (so, with y down, an angle a points to (cos a, -sin a)).  A ridge ending
 * points along its ridge, into it; a bifurcation points between its two
 * branches: in both cases the bisector of the smallest of the three angles
 * the ridges (or valleys) make there, as ANSI/NIST-ITL defines it.
 */
#ifndef ABIS_MODALITY_FINGER_H
#define ABIS_MODALITY_FINGER_H

#include <stddef.h>
#include <stdint.h>

#include "abis/error.h"
#include "modality/image.h"

#define ABIS_FINGER_PPI 500.0
/* Minutiae a template holds at most (the best by quality are kept): a plain
 * impression has 20-70, a rolled one up to ~150. */
#define ABIS_FINGER_MAX_MINUTIAE 128
/* Fewer minutiae than this cannot be compared with any confidence. */
#define ABIS_FINGER_MIN_MINUTIAE 5
/* Resolutions accepted (ppi); the standards need at least 99 px/cm. */
#define ABIS_FINGER_MIN_PPI 250.0
#define ABIS_FINGER_MAX_PPI 2000.0

typedef enum abis_minutia_type {
    ABIS_MINUTIA_OTHER = 0, /* as the standards code it (2 bits) */
    ABIS_MINUTIA_ENDING = 1,
    ABIS_MINUTIA_BIFURCATION = 2
} abis_minutia_type;

typedef struct abis_minutia {
    float x, y;      /* pixels at 500 ppi */
    float angle;     /* radians, [0, 2 pi) */
    uint8_t type;    /* abis_minutia_type */
    uint8_t quality; /* 0..100 (0: not known) */
} abis_minutia;

typedef struct abis_finger_template {
    int position;      /* 0 unknown, 1-10 as ISO/IEC 19794-2 numbers fingers */
    int width, height; /* the image at 500 ppi */
    int quality;       /* 0..100, docs/FINGER.md "Quality" */
    int n;             /* minutiae */
    abis_minutia m[ABIS_FINGER_MAX_MINUTIAE];
} abis_finger_template;

/* What extraction measured (docs/FINGER.md, "Quality"). */
typedef struct abis_finger_info {
    double ppi;          /* the resolution the image was read at */
    int width, height;   /* after rescaling to 500 ppi */
    double area;         /* foreground (fingerprint) area, pixels at 500 ppi */
    double coherence;    /* mean orientation certainty over the foreground, 0..1 */
    double clarity;      /* share of the foreground with a clear ridge-valley pattern */
    double ridge_period; /* median ridge period, pixels at 500 ppi */
    int minutiae_raw;    /* candidates found on the skeleton */
    int minutiae;        /* kept after false-minutia removal and the cap */
    int quality;         /* 0..100 */
} abis_finger_info;

/* Extract the minutiae of one fingerprint image.  `ppi` is the image's
 * resolution: > 0 overrides the file's, 0 takes the file's (img->ppi) or
 * else 500.  Refused with ABIS_E_INVALID and the reason for a resolution out
 * of range, an image too small, blank, or without a ridge pattern, or one
 * with fewer than ABIS_FINGER_MIN_MINUTIAE minutiae.  `info` may be NULL.
 * out->position is 0. */
abis_status abis_finger_extract(const abis_image *img, double ppi, abis_finger_template *out,
                                abis_finger_info *info, abis_error *err);

/* ---- the template libabis stores (template.c) ------------------------------ */

#define ABIS_FINGER_TEMPLATE_HEADER 16
#define ABIS_FINGER_TEMPLATE_MINUTIA 8

/* Canonical bytes of a template: 16-byte header and 8 bytes a minutia
 * (docs/FORMATS.md).  Writes abis_finger_template_size(t->n) bytes. */
size_t abis_finger_template_size(int n);
void abis_finger_template_write(const abis_finger_template *t, unsigned char *out);
/* Parse and check canonical bytes; ABIS_E_INVALID with the reason. */
abis_status abis_finger_template_read(const void *buf, size_t len, abis_finger_template *t,
                                      abis_error *err);
/* Keep the `cap` best minutiae by quality (ties: nearest the centre of mass
 * first, as ISO/IEC 19794-2:2011 9.3.2 removes them). */
void abis_finger_template_cap(abis_finger_template *t, int cap);

/* ---- standard minutiae records (record.c) ----------------------------------- */

typedef enum abis_finger_record_format {
    ABIS_FINGER_RECORD_NONE = 0,
    ABIS_FINGER_RECORD_ISO = 1, /* ISO/IEC 19794-2:2005 */
    ABIS_FINGER_RECORD_ANSI = 2 /* ANSI INCITS 378-2004 */
} abis_finger_record_format;

#define ABIS_FINGER_RECORD_MAX_VIEWS 32

/* Which format the bytes are ("FMR\0 20\0" and the length field tell ISO
 * from ANSI), or NONE. */
abis_finger_record_format abis_finger_record_detect(const void *buf, size_t len);

/* The finger positions of the views a record holds, in order (at most
 * ABIS_FINGER_RECORD_MAX_VIEWS); *n gets their number.  Fails like _read. */
abis_status abis_finger_record_views(const void *buf, size_t len, int *positions, int *n,
                                     abis_error *err);

/* Read one finger view of a record into a template at 500 ppi: the view of
 * finger `position` (1-10), or with position 0 the record's only view
 * (several views need a position).  The whole record is checked first:
 * a malformed one (truncated, lengths that do not add up, a resolution of 0,
 * a minutia outside the image, an angle or type out of range, too few
 * minutiae) is refused with ABIS_E_INVALID and the reason. */
abis_status abis_finger_record_read(const void *buf, size_t len, int position,
                                    abis_finger_template *out, abis_error *err);

/* Write a record of `n` finger views (one template each, with its position)
 * in `format`; *out is malloc'd, *len its size.  Coordinates at 500 ppi
 * (197 px/cm), angles in the format's units, quality as measured. */
abis_status abis_finger_record_write(abis_finger_record_format format,
                                     const abis_finger_template *const *views, int n,
                                     unsigned char **out, size_t *len, abis_error *err);

#endif
