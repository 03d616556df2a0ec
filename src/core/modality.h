/*
 * modality.h: the plug-in interface every modality kind implements, so that
 * the engine never branches on "face" or "finger".
 *
 * A kind ("vector" now; "minutiae" and "iriscode" later) says how a template
 * entering libabis is validated into its canonical bytes (the bytes that are
 * sealed in the store and held in the gallery), how two canonical templates
 * compare 1:1, how a gallery for it is made, and what calibration it starts
 * with.  The operator declares modalities of a kind (`abis modality add face
 * --kind vector --dim 512`); their records carry the kind's parameters.
 */
#ifndef ABIS_CORE_MODALITY_H
#define ABIS_CORE_MODALITY_H

#include <stddef.h>

#include "abis/abis.h"
#include "gallery/gallery.h"
#include "store/store.h"

typedef struct abis_modality_kind {
    const char *kind;   /* "vector" */
    const char *format; /* the canonical template format recorded with each template */
    int fixed_dim;      /* the kind's fixed template size (iris: 2048 bits), or 0 when the
                         * operator declares a dimension (vectors) */
    /* Check a declaration (dimension in range, ...). */
    abis_status (*check_def)(const abis_modality_rec *m, abis_error *err);
    /* Validate one input -- a template, or a capture the kind extracts one
     * from -- into canonical bytes (*out malloc'd, caller frees with
     * abis_modality_free_template, which wipes it).  `what` names it in
     * messages.  *quality (may be NULL) gets the quality the kind measured on
     * a capture (0..100), or -1. */
    abis_status (*validate)(const abis_modality_rec *m, const abis_template_input *in,
                            const char *what, unsigned char **out, size_t *len, double *quality,
                            abis_error *err);
    /* Is a canonical template (as stored) well-formed for this declaration? */
    int (*canonical_ok)(const abis_modality_rec *m, const void *tmpl, size_t len);
    /* Similarity of two canonical templates: higher is more similar. */
    double (*compare)(const abis_modality_rec *m, const void *a, size_t alen, const void *b,
                      size_t blen);
    abis_status (*gallery_create)(const abis_modality_rec *m, abis_gallery **out, abis_error *err);
    /* The calibration JSON a new modality starts with. */
    void (*default_calibration)(const abis_modality_rec *m, char *buf, size_t cap);
} abis_modality_kind;

/* The kind called `name`, or NULL. */
const abis_modality_kind *abis_modality_kind_find(const char *name);
/* The largest canonical template any kind makes (bytes): the size of the
 * scratch buffers templates are unsealed into.  Vectors: at most 4096 * 4
 * bytes; iris codes 512; minutiae templates at most 16 + 128 * 8. */
#define ABIS_TEMPLATE_MAX (1 << 20)

/* The largest default calibration a kind writes (bytes, with the NUL). */
#define ABIS_DEFAULT_CALIBRATION_MAX 4096

/* check_def for a kind of fixed size: ABIS_E_INVALID unless m->dim is `dim`
 * ("modality 'iris': iris codes have 2048 bits; leave the dimension out";
 * `what` is "iris codes have 2048 bits"). */
abis_status abis_modality_check_fixed(const abis_modality_rec *m, int dim, const char *what,
                                      abis_error *err);

/* Comma-separated names of every kind, for messages. */
const char *abis_modality_kind_names(void);
/* Wipe and free a canonical template from validate(). */
void abis_modality_free_template(unsigned char *tmpl, size_t len);

#endif
