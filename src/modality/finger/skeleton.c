/*
 * skeleton.c: binarisation of the enhanced fingerprint and thinning of its
 * ridges to a one-pixel, 8-connected skeleton on which minutiae are read by
 * their crossing number (minutiae.c).
 *
 * Binarisation: the Gabor output is zero-mean, so a pixel is ridge where it
 * is negative (ridges are dark), inside the foreground.  Ridge fragments and
 * valley holes smaller than FP_SPECK pixels (pores, dust) are flipped first.
 *
 * Thinning: Zhang and Suen's two-subiteration parallel algorithm ("A fast
 * parallel algorithm for thinning digital patterns", CACM 27(3), 1984) with
 * its conditions precomputed for all 256 neighbourhoods, then one
 * sequential pass that deletes the "simple" pixels Zhang-Suen leaves on
 * diagonal staircases (a pixel whose removal changes neither the number of
 * 8-connected ridge components nor of 4-connected background components
 * around it, and that is not a line end).  Afterwards every pixel inside a
 * ridge has exactly two neighbours, which makes the crossing number exact.
 *
 * Neighbours are numbered clockwise from north: bit 0 N, 1 NE, 2 E, 3 SE,
 * 4 S, 5 SW, 6 W, 7 NW.
 */
#include <stdlib.h>
#include <string.h>

#include "modality/finger/finger_internal.h"

/* Ridge specks and valley holes under this many pixels are noise. */
#define FP_SPECK 24

static const int NX[8] = {0, 1, 1, 1, 0, -1, -1, -1};
static const int NY[8] = {-1, -1, 0, 1, 1, 1, 0, -1};

/* The 8-bit neighbourhood code of pixel i (which must not be on the image
 * edge). */
static unsigned neigh(const uint8_t *m, int w, size_t i)
{
    unsigned c = 0;
    for (int k = 0; k < 8; k++)
        if (m[(long)i + NY[k] * w + NX[k]])
            c |= 1u << k;
    return c;
}

/* Zhang-Suen deletion tables for both subiterations. */
static void zs_tables(uint8_t t1[256], uint8_t t2[256])
{
    for (unsigned c = 0; c < 256; c++) {
        int p[8], b = 0, a = 0;
        for (int k = 0; k < 8; k++) {
            p[k] = (c >> k) & 1;
            b += p[k];
        }
        for (int k = 0; k < 8; k++)
            a += !p[k] && p[(k + 1) & 7];
        int base = b >= 2 && b <= 6 && a == 1;
        /* P2 = N (0), P4 = E (2), P6 = S (4), P8 = W (6) */
        t1[c] = (uint8_t)(base && !(p[0] && p[2] && p[4]) && !(p[2] && p[4] && p[6]));
        t2[c] = (uint8_t)(base && !(p[0] && p[2] && p[6]) && !(p[0] && p[4] && p[6]));
    }
}

/* 1 when deleting a pixel with neighbourhood c keeps the topology (one
 * 8-connected ridge component among the neighbours, one 4-connected
 * background component touching the pixel's 4-neighbours) and the pixel is
 * not a line end. */
static int simple_point(unsigned c)
{
    int p[8], n = 0;
    for (int k = 0; k < 8; k++) {
        p[k] = (c >> k) & 1;
        n += p[k];
    }
    if (n < 2 || n == 8)
        return 0;
    /* 8-components of the ridge neighbours: ring neighbours are adjacent,
     * and two edge neighbours (N, E, S, W) a quarter turn apart also are. */
    int lab[8] = {0}, comps = 0;
    for (int s = 0; s < 8; s++) {
        if (!p[s] || lab[s])
            continue;
        comps++;
        int stack[8], top = 0;
        stack[top++] = s;
        lab[s] = comps;
        while (top) {
            int k = stack[--top];
            int adj[4] = {(k + 1) & 7, (k + 7) & 7, -1, -1};
            if (!(k & 1)) {
                adj[2] = (k + 2) & 7;
                adj[3] = (k + 6) & 7;
            }
            for (int q = 0; q < 4; q++)
                if (adj[q] >= 0 && p[adj[q]] && !lab[adj[q]]) {
                    lab[adj[q]] = comps;
                    stack[top++] = adj[q];
                }
        }
    }
    if (comps != 1)
        return 0;
    /* 4-components of the background touching the pixel: runs of background
     * round the ring (ring neighbours are 4-adjacent; edge neighbours a
     * quarter turn apart are not) that hold an edge neighbour. */
    int s0 = 0;
    while (!p[s0])
        s0++;
    int bg = 0, has_edge = 0;
    for (int i = 1; i <= 8; i++) {
        int k = (s0 + i) & 7;
        if (p[k])
            continue;
        if (p[(k + 7) & 7])
            has_edge = 0;
        if (!(k & 1))
            has_edge = 1;
        if (p[(k + 1) & 7])
            bg += has_edge;
    }
    return bg == 1;
}

/* Flip 4-connected components of value `val` smaller than `min` pixels
 * inside the mask. */
static abis_status drop_small(uint8_t *m, const uint8_t *mask, int w, int h, uint8_t val, int min,
                              abis_error *err)
{
    size_t n = (size_t)w * h;
    uint8_t *seen = calloc(n, 1);
    int *stack = malloc(n * sizeof *stack), *comp = malloc(n * sizeof *comp);
    if (!seen || !stack || !comp) {
        free(seen), free(stack), free(comp);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for binarisation");
    }
    for (size_t i = 0; i < n; i++) {
        if (seen[i] || m[i] != val || !mask[i])
            continue;
        int top = 0, nc = 0, touches_out = 0;
        stack[top++] = (int)i;
        seen[i] = 1;
        while (top) {
            int q = stack[--top];
            comp[nc++] = q;
            int x = q % w, y = q / w;
            const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
            for (int d = 0; d < 4; d++) {
                int xx = x + dx[d], yy = y + dy[d];
                if (xx < 0 || yy < 0 || xx >= w || yy >= h) {
                    touches_out = 1;
                    continue;
                }
                int r = yy * w + xx;
                if (!mask[r]) {
                    touches_out = 1;
                    continue;
                }
                if (!seen[r] && m[r] == val) {
                    seen[r] = 1;
                    stack[top++] = r;
                }
            }
        }
        if (nc < min && !touches_out)
            for (int k = 0; k < nc; k++)
                m[comp[k]] = (uint8_t)!val;
    }
    free(seen), free(stack), free(comp);
    return ABIS_OK;
}

abis_status fp_skeletonize(const fp_field *f, const float *enhanced, uint8_t *skel, abis_error *err)
{
    int w = f->w, h = f->h;
    size_t n = (size_t)w * h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            /* keep a one-pixel frame clear so neighbourhoods never leave the image */
            skel[i] = (uint8_t)(f->mask[i] && enhanced[i] < 0 && x > 0 && y > 0 && x < w - 1 &&
                                y < h - 1);
        }
    abis_status st = drop_small(skel, f->mask, w, h, 1, FP_SPECK, err);
    if (st == ABIS_OK)
        st = drop_small(skel, f->mask, w, h, 0, FP_SPECK, err);
    if (st != ABIS_OK)
        return st;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (x == 0 || y == 0 || x == w - 1 || y == h - 1)
                skel[(size_t)y * w + x] = 0;

    uint8_t t1[256], t2[256];
    zs_tables(t1, t2);
    size_t *del = malloc(n * sizeof *del);
    if (!del)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for thinning");
    for (int changed = 1; changed;) {
        changed = 0;
        for (int pass = 0; pass < 2; pass++) {
            const uint8_t *t = pass ? t2 : t1;
            size_t nd = 0;
            for (int y = 1; y < h - 1; y++)
                for (int x = 1; x < w - 1; x++) {
                    size_t i = (size_t)y * w + x;
                    if (skel[i] && t[neigh(skel, w, i)])
                        del[nd++] = i;
                }
            for (size_t k = 0; k < nd; k++)
                skel[del[k]] = 0;
            changed |= nd > 0;
        }
    }
    free(del);
    uint8_t simple[256];
    for (unsigned c = 0; c < 256; c++)
        simple[c] = (uint8_t)simple_point(c);
    /* Only pixels with neighbours on two adjacent sides can be staircase
     * corners; a pass over them in raster order suffices (each deletion
     * keeps the topology, so order does not matter for it). */
    for (int y = 1; y < h - 1; y++)
        for (int x = 1; x < w - 1; x++) {
            size_t i = (size_t)y * w + x;
            if (!skel[i])
                continue;
            unsigned c = neigh(skel, w, i);
            int corner = ((c & 1u) && (c & 4u)) || ((c & 4u) && (c & 16u)) ||
                         ((c & 16u) && (c & 64u)) || ((c & 64u) && (c & 1u));
            if (corner && simple[c])
                skel[i] = 0;
        }
    return ABIS_OK;
}
