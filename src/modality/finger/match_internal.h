/*
 * match_internal.h: the prepared-template layout and the local-similarity
 * kernels of the fingerprint matcher (match.h), shared by match.c and the
 * instruction-set variants of the kernel (match_avx2.c, match_avx512.c).
 *
 * Cylinder parameters are those Cappelli, Ferrara and Maltoni found best
 * (MCC paper, Table 3, bit-based variant) at 500 ppi, except the number of
 * cells per side, MCC_NS (docs/FINGER.md gives the measurements behind it).
 */
#ifndef ABIS_FINGER_MATCH_INTERNAL_H
#define ABIS_FINGER_MATCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "modality/finger/match.h"

#define MCC_R 70.0f         /* cylinder radius, pixels */
#define MCC_NS 16           /* cells per side */
#define MCC_ND 6            /* direction layers */
#define MCC_SIGMA_S 9.3333f /* 28 / 3: spatial spread of a minutia's contribution */
#define MCC_SIGMA_D 0.6981f /* 2 pi / 9: directional spread */
#define MCC_MU_PSI 0.01f    /* a cell's bit is set when its contribution reaches this */
#define MCC_OMEGA 50.0f     /* the convex hull of the minutiae, enlarged by this, is valid */
#define MCC_MIN_VC 0.60f    /* a cylinder needs this share of its cells valid */
#define MCC_MIN_M 2         /* ... and this many neighbouring minutiae */
#define MCC_MIN_ME 0.60f    /* two cylinders compare over at least this share of cells */

#define MCC_CELLS (MCC_NS * MCC_NS)
#define MCC_MASK_WORDS ((MCC_CELLS + 63) / 64)
#define MCC_WORDS (MCC_MASK_WORDS * MCC_ND)
#define MCC_MAX_BITS (MCC_WORDS * 64)

/* One cylinder: layer k's cells are words [k * MCC_MASK_WORDS, (k+1) *
 * MCC_MASK_WORDS), cell (i, j) is bit (i * MCC_NS + j); the mask says which
 * cells are valid (the same in every layer). */
typedef struct fp_cyl {
    uint64_t bits[MCC_WORDS];
    uint64_t mask[MCC_MASK_WORDS];
    uint32_t ones; /* set bits */
    uint32_t full; /* 1: every cell within the radius is valid */
} fp_cyl;

/* The prepared template: this header, then per cylinder (in this order,
 * each array 64-byte aligned) fp_cyl cyl[n], float x[n], y[n], c[n], s[n],
 * t[n] (position in a y-up frame, direction cosine, sine and angle), in
 * the template's minutiae order (valid cylinders only). */
struct abis_finger_prep {
    uint32_t bytes;
    uint16_t n;     /* cylinders */
    uint16_t n_min; /* minutiae of the template */
    uint8_t position;
    uint8_t pad[55];
};

typedef struct fp_prep_view {
    const fp_cyl *cyl;
    const float *x, *y, *c, *s, *t; /* t: direction, radians */
} fp_prep_view;

void fp_prep_view_of(const abis_finger_prep *p, fp_prep_view *v);

/* The local similarity matrix: out[i * nb + j] = 255 * gamma(a_i, b_j),
 * gamma the cylinder similarity (0 where the pair is not comparable: too few
 * cells are valid in both).  `min_me` is the least number of commonly valid cells; sqrt_tab[k]
 * = sqrt(k) for k up to MCC_MAX_BITS.  The pairs with a non-zero value are
 * also listed in `list` as i << 7 | j, and counted by value in cnt[256]
 * (which the caller zeroes); returns how many were listed. */
typedef int (*fp_sim_fn)(const fp_prep_view *a, int na, const fp_prep_view *b, int nb, int min_me,
                         const float *sqrt_tab, uint8_t *out, uint16_t *list, uint16_t *cnt);

/* Record the similarity of pair (i, j) from its counts (|a|, |b|, |a ^ b|
 * over the cells valid in both) in row[j], and list and count it when it is
 * not 0; returns the new list length.  Shared by every kernel, so that all
 * give the same values. */
static inline int fp_sim_emit(uint8_t *row, int i, int j, int na, int nb, int nx,
                              const float *sqrt_t, uint16_t *list, uint16_t *cnt, int n)
{
    if (na + nb == 0)
        return n;
    float g = 1.0f - sqrt_t[nx] / (sqrt_t[na] + sqrt_t[nb]);
    uint8_t v = (uint8_t)(g * 255.0f + 0.5f);
    row[j] = v;
    if (v) {
        list[n++] = (uint16_t)(i << 7 | j);
        cnt[v]++;
    }
    return n;
}

int fp_sim_scalar(const fp_prep_view *a, int na, const fp_prep_view *b, int nb, int min_me,
                  const float *sqrt_tab, uint8_t *out, uint16_t *list, uint16_t *cnt);
/* NULL when not compiled in; only call after checking the CPU. */
fp_sim_fn fp_sim_avx2_fn(void);
fp_sim_fn fp_sim_avx512_fn(void);

#endif
