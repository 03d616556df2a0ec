/*
 * match.c: the fingerprint matcher (match.h): preparing templates
 * (cylinders), the global consolidation by relaxation, the pre-selection
 * score, and the run-time choice of the local-similarity kernel.
 *
 * Cylinder of minutia m (MCC paper, section 3): its cells are the centres
 * p of an MCC_NS x MCC_NS grid of side 2 MCC_R in m's own frame (rotated
 * to m's direction), each with MCC_ND direction layers.  Cell (p, k)
 * collects, over the other minutiae t near p,
 *
 *   G_S(|t - p|) * G_D(dphi_k - (theta_t - theta_m))
 *
 * with G_S a Gaussian of spread MCC_SIGMA_S and G_D the area of a Gaussian
 * of spread MCC_SIGMA_D over the layer's angular width around dphi_k; the
 * bit is set when the sum reaches MCC_MU_PSI.  A cell is valid when it lies
 * within MCC_R of m and within MCC_OMEGA of the convex hull of all the
 * minutiae (outside, the print was not seen, so nothing there says
 * anything).  A cylinder with too few valid cells or neighbours is not used.
 *
 * Rotation: MCC compares only minutiae whose directions differ by less
 * than 90 degrees, which assumes the two prints are within 90 degrees of
 * each other.  Here every pair is compared, the prints' rotation is taken
 * as the mode of the rotations the most similar pairs imply, and only pairs
 * within 90 degrees of it go on: the same selectivity at any rotation (it
 * costs some accuracy on FVC2002, whose prints are all nearly upright;
 * docs/FINGER.md).
 *
 * Consolidation (MCC paper, 4.3, "LSS-R"): the nR = min(nA, nB) pairs of
 * highest local similarity (each minutia in at most one) are relaxed five
 * times,
 *
 *   l_i <- w l_i + (1 - w) * sum_{k != i} rho(i, k) l_k / (nR - 1),  w = 1/2
 *
 * where rho(i, k) in [0, 1] says how well pairs i and k agree: the distance
 * between their minutiae on either print (d1), the relative direction of
 * the two minutiae (d2), and the direction of the line between them
 * relative to each (d3), each through a sigmoid Z; the score is the mean of
 * the nP relaxed similarities whose ratio to their start is highest, nP
 * growing from 4 to 12 with the number of minutiae.  Angles are handled as
 * unit vectors (no trigonometry per pair): with both pairs' minutiae
 * expressed in the first minutia's frame, cos d3 is the cosine between the
 * two vectors and cos d2 the cosine of the difference of the pairs'
 * rotations.
 *
 * Global pairing: the relaxed pairs of highest similarity each define a
 * rigid alignment; under the best of GP_SEEDS of them the minutiae are
 * paired one to one (near and alike in direction), and the share of paired
 * minutiae among those in the overlap, G = paired^2 / (overlap_a *
 * overlap_b), weights the score: score = relaxed * (GP_BASE + G).  The
 * local stage tolerates distortion, the global one rewards prints that
 * agree as a whole; on FVC2002 the product beats either alone.  The score
 * lies in [0, 1.5].
 *
 * Pre-selection: the same with the relaxation limited to the PRE_NR best
 * pairs and no global pairing: about half the cost, and on FVC2002 it
 * ranks mates as high as the full score does (docs/FINGER.md, "1:N").
 */
#include "modality/finger/match_internal.h"

/* The relaxation's loops are vectorised by GCC only under its "cheap" cost
 * model, not -O2's default "very cheap" one; each value is computed by the
 * same operations in the same order either way. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=cheap")
#endif

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Relaxation (MCC paper, Table 3). */
#define REL_W 0.5f
#define REL_ITER 5
#define REL_MU1 5.0f
#define REL_TAU1 (-8.0f / 5.0f)
#define REL_MU23 ((float)M_PI / 12)
#define REL_TAU23 (-30.0f)
/* Rotation gating (docs/FINGER.md). */
#define ROT_BINS 24
#define ROT_GATE_COS 0.0f /* within 90 degrees of the prints' rotation */
/* Global pairing (measured on FVC2002 DB1/DB3/DB4, docs/FINGER.md). */
#define GP_SEEDS 3
#define GP_TOL 12.0f  /* pixels */
#define GP_DIR 0.866f /* cos 30 degrees */
#define GP_NEAR 30.0f /* pixels */
#define GP_MIN_OVERLAP 10
#define GP_BASE 0.5f
#define NP_MIN 4
#define NP_MAX 12
#define NP_MU 20.0f
#define NP_TAU 0.4f

/* Pre-selection: the relaxation over at most this many pairs, and no global
 * pairing (docs/FINGER.md gives the measurements behind 12). */
#define PRE_NR 12

#define Z1_STEPS 16 /* table steps per pixel of d1 */
#define Z1_SIZE (32 * Z1_STEPS)
#define ZC_SIZE 1024 /* table entries over cos in [-1, 1] */

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static float sqrt_tab[MCC_MAX_BITS + 1];
static float z1_tab[Z1_SIZE];
static float zc_tab[ZC_SIZE + 1];
static int cells_in_circle;
static fp_sim_fn sim_best = fp_sim_scalar;
static const char *sim_name = "scalar";
static atomic_int force_scalar = 0;

static float zfun(float v, float mu, float tau)
{
    return 1.0f / (1.0f + expf(-tau * (v - mu)));
}

static void init_tables(void)
{
    for (int k = 0; k <= MCC_MAX_BITS; k++)
        sqrt_tab[k] = sqrtf((float)k);
    for (int k = 0; k < Z1_SIZE; k++)
        z1_tab[k] = zfun((float)k / Z1_STEPS, REL_MU1, REL_TAU1);
    for (int k = 0; k <= ZC_SIZE; k++) {
        float c = -1.0f + 2.0f * (float)k / ZC_SIZE;
        zc_tab[k] = zfun(acosf(c), REL_MU23, REL_TAU23);
    }
    float ds = 2 * MCC_R / MCC_NS;
    for (int i = 0; i < MCC_NS; i++)
        for (int j = 0; j < MCC_NS; j++) {
            float u = ((float)j - (MCC_NS - 1) / 2.0f) * ds,
                  v = ((float)i - (MCC_NS - 1) / 2.0f) * ds;
            cells_in_circle += u * u + v * v <= MCC_R * MCC_R;
        }
    const char *env = getenv("ABIS_KERNEL");
    if (env && strcmp(env, "scalar") == 0)
        return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (fp_sim_avx2_fn() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) {
        sim_best = fp_sim_avx2_fn();
        sim_name = "popcnt";
    }
    if (fp_sim_avx512_fn() && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("popcnt")) {
        sim_best = fp_sim_avx512_fn();
        sim_name = "avx512";
    }
#endif
}

const char *abis_finger_kernel_name(void)
{
    pthread_once(&tables_once, init_tables);
    return atomic_load_explicit(&force_scalar, memory_order_relaxed) ? "scalar" : sim_name;
}

void abis_finger_force_scalar(int on)
{
    atomic_store_explicit(&force_scalar, on ? 1 : 0, memory_order_relaxed);
}

/* Portable popcount (this file is compiled without -mpopcnt). */
static inline uint32_t swar_popcount(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

#define SIM_POPCOUNT(x) swar_popcount(x)
#define SIM_NAME sim_scalar_body
#include "modality/finger/sim_kernel.h"
#undef SIM_NAME
#undef SIM_POPCOUNT

int fp_sim_scalar(const fp_prep_view *a, int na, const fp_prep_view *b, int nb, int min_me,
                  const float *sqrt_t, uint8_t *out, uint16_t *list, uint16_t *cnt)
{
    return sim_scalar_body(a, na, b, nb, min_me, sqrt_t, out, list, cnt);
}

/* ---- the prepared layout ------------------------------------------------------ */

static size_t align64(size_t v)
{
    return (v + 63) & ~(size_t)63;
}

/* Where each array of a prepared template of n cylinders starts, and its
 * size: the header, then cyl, x, y, c, s, t, each 64-byte aligned. */
typedef struct layout {
    size_t cyl, x, y, c, s, t, total;
} layout;

static layout layout_for(int n)
{
    size_t at = align64(sizeof(abis_finger_prep)), floats = align64((size_t)n * sizeof(float));
    layout l;
    l.cyl = at;
    at += align64((size_t)n * sizeof(fp_cyl));
    size_t *f[5] = {&l.x, &l.y, &l.c, &l.s, &l.t};
    for (int k = 0; k < 5; k++, at += floats)
        *f[k] = at;
    l.total = at;
    return l;
}

void fp_prep_view_of(const abis_finger_prep *p, fp_prep_view *v)
{
    layout l = layout_for(p->n);
    const char *b = (const char *)p;
    v->cyl = (const fp_cyl *)(b + l.cyl);
    v->x = (const float *)(b + l.x);
    v->y = (const float *)(b + l.y);
    v->c = (const float *)(b + l.c);
    v->s = (const float *)(b + l.s);
    v->t = (const float *)(b + l.t);
}

size_t abis_finger_prep_size(const abis_finger_prep *p)
{
    return p ? p->bytes : 0;
}

int abis_finger_prep_position(const abis_finger_prep *p)
{
    return p->position;
}

int abis_finger_prep_count(const abis_finger_prep *p)
{
    return p->n;
}

void abis_finger_prep_free(abis_finger_prep *p)
{
    free(p);
}

/* ---- convex hull ------------------------------------------------------------------- */

typedef struct pt {
    float x, y;
} pt;

static float cross3(pt o, pt a, pt b)
{
    return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

static int cmp_pt(const void *a, const void *b)
{
    const pt *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return p->y < q->y ? -1 : p->y > q->y;
}

/* Andrew's monotone chain: the hull of p[0..n) counter-clockwise into h
 * (room for 2n); returns its size. */
static int convex_hull(pt *p, int n, pt *h)
{
    qsort(p, (size_t)n, sizeof *p, cmp_pt);
    int k = 0;
    for (int i = 0; i < n; i++) {
        while (k >= 2 && cross3(h[k - 2], h[k - 1], p[i]) <= 0)
            k--;
        h[k++] = p[i];
    }
    for (int i = n - 2, t = k + 1; i >= 0; i--) {
        while (k >= t && cross3(h[k - 2], h[k - 1], p[i]) <= 0)
            k--;
        h[k++] = p[i];
    }
    return n > 1 ? k - 1 : n;
}

static float seg_dist2(pt p, pt a, pt b)
{
    float dx = b.x - a.x, dy = b.y - a.y, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    float ex = a.x + t * dx - p.x, ey = a.y + t * dy - p.y;
    return ex * ex + ey * ey;
}

/* Is p inside the hull or within MCC_OMEGA of it? */
static int in_hull(pt p, const pt *h, int nh)
{
    if (nh >= 3) {
        int inside = 1;
        for (int k = 0; k < nh && inside; k++)
            if (cross3(h[k], h[(k + 1) % nh], p) < 0)
                inside = 0;
        if (inside)
            return 1;
    }
    for (int k = 0; k < nh; k++)
        if (seg_dist2(p, h[k], h[(k + 1) % nh]) <= MCC_OMEGA * MCC_OMEGA)
            return 1;
    return 0;
}

/* ---- building cylinders ---------------------------------------------------------- */

static float angle_wrap(float a)
{
    while (a > (float)M_PI)
        a -= (float)(2 * M_PI);
    while (a <= -(float)M_PI)
        a += (float)(2 * M_PI);
    return a;
}

/* The directional contribution of a neighbour whose direction differs by
 * `d` from the cylinder's minutia to each of nd layers: the area of a
 * Gaussian of spread sigma over each layer's width around its centre. */
static void directional(float d, int nd, float sigma, float *out)
{
    float width = (float)(2 * M_PI) / (float)nd;
    for (int k = 0; k < nd; k++) {
        float centre = -(float)M_PI + ((float)k + 0.5f) * width;
        float a = angle_wrap(centre - d);
        float s = sigma * sqrtf(2.0f);
        out[k] = 0.5f * (erff((a + width / 2) / s) - erff((a - width / 2) / s));
    }
}

typedef struct mpt {
    float x, y, c, s, a;
} mpt;

/* The cylinder of minutia i among the n of m into c (bits and validity
 * mask); returns its valid cells, and *neigh the neighbours within reach.
 * Each neighbour adds to the cells within 3 sigma of it only: its position
 * in the minutia's frame gives their index range directly. */
static int build_cylinder(const mpt *m, int n, int i, const pt *hull, int nh, fp_cyl *c, int *neigh)
{
    memset(c, 0, sizeof *c);
    const float ds = 2 * MCC_R / MCC_NS, reach = 3 * MCC_SIGMA_S, half = (MCC_NS - 1) / 2.0f;
    const float gnorm = 1.0f / (MCC_SIGMA_S * sqrtf(2 * (float)M_PI));
    const float inv2s2 = 1.0f / (2 * MCC_SIGMA_S * MCC_SIGMA_S);
    int valid = 0;
    for (int ci = 0; ci < MCC_NS; ci++)
        for (int cj = 0; cj < MCC_NS; cj++) {
            float u = ((float)cj - half) * ds, v = ((float)ci - half) * ds;
            if (u * u + v * v > MCC_R * MCC_R)
                continue;
            /* the cell centre: u along the minutia's direction, v across */
            pt p = {m[i].x + u * m[i].c - v * m[i].s, m[i].y + u * m[i].s + v * m[i].c};
            if (!in_hull(p, hull, nh))
                continue;
            int cell = ci * MCC_NS + cj;
            c->mask[cell / 64] |= 1ull << (cell % 64);
            valid++;
        }
    float acc[MCC_CELLS][MCC_ND];
    memset(acc, 0, sizeof acc);
    int nn = 0;
    for (int t = 0; t < n; t++) {
        float dx = m[t].x - m[i].x, dy = m[t].y - m[i].y;
        if (t == i || dx * dx + dy * dy > (MCC_R + reach) * (MCC_R + reach))
            continue;
        nn++;
        float dir[MCC_ND];
        directional(angle_wrap(m[t].a - m[i].a), MCC_ND, MCC_SIGMA_D, dir);
        /* the neighbour in the minutia's frame */
        float lu = dx * m[i].c + dy * m[i].s, lv = -dx * m[i].s + dy * m[i].c;
        int j0 = (int)ceilf((lu - reach) / ds + half), j1 = (int)floorf((lu + reach) / ds + half);
        int i0 = (int)ceilf((lv - reach) / ds + half), i1 = (int)floorf((lv + reach) / ds + half);
        j0 = j0 < 0 ? 0 : j0;
        i0 = i0 < 0 ? 0 : i0;
        j1 = j1 >= MCC_NS ? MCC_NS - 1 : j1;
        i1 = i1 >= MCC_NS ? MCC_NS - 1 : i1;
        for (int ci = i0; ci <= i1; ci++)
            for (int cj = j0; cj <= j1; cj++) {
                int cell = ci * MCC_NS + cj;
                if (!((c->mask[cell / 64] >> (cell % 64)) & 1))
                    continue;
                float du = lu - ((float)cj - half) * ds, dv = lv - ((float)ci - half) * ds;
                float d2 = du * du + dv * dv;
                if (d2 > reach * reach)
                    continue;
                float gs = gnorm * expf(-d2 * inv2s2);
                for (int k = 0; k < MCC_ND; k++)
                    acc[cell][k] += gs * dir[k];
            }
    }
    *neigh = nn;
    for (int cell = 0; cell < MCC_CELLS; cell++)
        for (int k = 0; k < MCC_ND; k++)
            if (acc[cell][k] >= MCC_MU_PSI) {
                int bit = k * MCC_MASK_WORDS * 64 + cell;
                c->bits[bit / 64] |= 1ull << (bit % 64);
            }
    return valid;
}

abis_status abis_finger_prepare(const abis_finger_template *t, abis_finger_prep **out,
                                abis_error *err)
{
    pthread_once(&tables_once, init_tables);
    *out = NULL;
    int n = t->n < 0 ? 0 : t->n > ABIS_FINGER_MAX_MINUTIAE ? ABIS_FINGER_MAX_MINUTIAE : t->n;
    mpt m[ABIS_FINGER_MAX_MINUTIAE];
    pt pts[ABIS_FINGER_MAX_MINUTIAE], hull[2 * ABIS_FINGER_MAX_MINUTIAE + 1];
    for (int i = 0; i < n; i++) {
        /* a y-up frame, so that angles count counter-clockwise */
        m[i].x = t->m[i].x;
        m[i].y = -t->m[i].y;
        m[i].a = t->m[i].angle;
        m[i].c = cosf(m[i].a);
        m[i].s = sinf(m[i].a);
        pts[i] = (pt){m[i].x, m[i].y};
    }
    int nh = convex_hull(pts, n, hull);
    fp_cyl *cyl = malloc((size_t)(n ? n : 1) * sizeof *cyl);
    int keep[ABIS_FINGER_MAX_MINUTIAE], nk = 0;
    if (!cyl)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory preparing a template");
    for (int i = 0; i < n; i++) {
        int neigh;
        int valid = build_cylinder(m, n, i, hull, nh, &cyl[nk], &neigh);
        if (valid < MCC_MIN_VC * (float)cells_in_circle || neigh < MCC_MIN_M)
            continue;
        cyl[nk].ones = 0;
        for (int w = 0; w < MCC_WORDS; w++)
            cyl[nk].ones += swar_popcount(cyl[nk].bits[w]);
        cyl[nk].full = valid == cells_in_circle;
        keep[nk++] = i;
    }
    layout l = layout_for(nk);
    abis_finger_prep *p = aligned_alloc(64, l.total);
    if (!p) {
        free(cyl);
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory preparing a template");
    }
    memset(p, 0, l.total);
    p->bytes = (uint32_t)l.total;
    p->n = (uint16_t)nk;
    p->n_min = (uint16_t)n;
    p->position = (uint8_t)t->position;
    char *b = (char *)p;
    memcpy(b + l.cyl, cyl, (size_t)nk * sizeof *cyl);
    float *x = (float *)(b + l.x), *y = (float *)(b + l.y), *c = (float *)(b + l.c),
          *s = (float *)(b + l.s), *th = (float *)(b + l.t);
    for (int k = 0; k < nk; k++) {
        const mpt *q = &m[keep[k]];
        x[k] = q->x;
        y[k] = q->y;
        c[k] = q->c;
        s[k] = q->s;
        th[k] = q->a;
    }
    free(cyl);
    *out = p;
    return ABIS_OK;
}

/* ---- global consolidation ------------------------------------------------------- */

static int np_for(int na, int nb)
{
    int n = na < nb ? na : nb;
    float z = zfun((float)n, NP_MU, NP_TAU);
    return NP_MIN + (int)lrintf(z * (NP_MAX - NP_MIN));
}

static float zc_lookup(float c)
{
    int k = (int)lrintf((c + 1.0f) * (ZC_SIZE / 2));
    k = k < 0 ? 0 : k > ZC_SIZE ? ZC_SIZE : k;
    return zc_tab[k];
}

static float z1_lookup(float d)
{
    int k = (int)(d * Z1_STEPS);
    return k >= Z1_SIZE ? 0 : z1_tab[k];
}

/* Rotation gating: the prints' rotation is the mode of the rotations
 * (theta_b - theta_a) the 2 * nr_max most similar pairs imply, from a
 * histogram of ROT_BINS bins weighted by similarity and smoothed (1, 2, 1);
 * pairs implying a rotation more than 90 degrees away from it are dropped
 * from `order` (count n, best first, kept in order; pairs of the first na
 * minutiae of a).  Returns the count
 * left.  (MCC gates pairs by their absolute direction difference, which
 * assumes prints within 90 degrees of each other; this keeps the same
 * selectivity at any rotation.) */
static int gate_by_rotation(const fp_prep_view *a, int na, const fp_prep_view *b, uint16_t *order,
                            int n, int nr_max)
{
    float hist[ROT_BINS] = {0};
    int top = 2 * nr_max < n ? 2 * nr_max : n;
    const float bin = (float)(2 * M_PI / ROT_BINS);
    for (int k = 0; k < top; k++) {
        int i = order[k] >> 7, j = order[k] & 127;
        float r = b->t[j] - a->t[i];
        r = r < 0 ? r + (float)(2 * M_PI) : r;
        int q = (int)(r / bin);
        hist[q >= ROT_BINS ? 0 : q] += (float)(top - k); /* rank weight: best counts most */
    }
    int best = 0;
    float bv = -1;
    for (int q = 0; q < ROT_BINS; q++) {
        float v = hist[(q + ROT_BINS - 1) % ROT_BINS] + 2 * hist[q] + hist[(q + 1) % ROT_BINS];
        if (v > bv) {
            bv = v;
            best = q;
        }
    }
    float rot = ((float)best + 0.5f) * bin, gc = cosf(rot), gs = sinf(rot);
    /* a's directions turned by the rotation: then cos(theta_b - theta_a -
     * rot) is one dot product; the compaction is branch-free (about half the
     * pairs go, unpredictably) */
    float rac[ABIS_FINGER_MAX_MINUTIAE], ras[ABIS_FINGER_MAX_MINUTIAE];
    for (int i = 0; i < na; i++) {
        rac[i] = a->c[i] * gc - a->s[i] * gs;
        ras[i] = a->s[i] * gc + a->c[i] * gs;
    }
    int kept = 0;
    for (int k = 0; k < n; k++) {
        uint16_t e = order[k];
        int i = e >> 7, j = e & 127;
        order[kept] = e;
        kept += b->c[j] * rac[i] + b->s[j] * ras[i] >= ROT_GATE_COS;
    }
    return kept;
}

/* Global pairing under the alignment that maps minutia ai of a onto bj of
 * b (rotation cos c, sin s): every minutia of a is moved into b's frame and
 * paired with the nearest unpaired minutia of b within GP_TOL pixels whose
 * direction is within 30 degrees.  The overlap is estimated as the minutiae
 * of either print with a counterpart of the other within GP_NEAR pixels.
 * Returns n_paired^2 / (overlap_a * overlap_b), each overlap counted as at
 * least GP_MIN_OVERLAP (few minutiae in common prove little). */
static double global_pairing(const fp_prep_view *a, int na, const fp_prep_view *b, int nb, int ai,
                             int bj, float c, float s)
{
    uint8_t used[ABIS_FINGER_MAX_MINUTIAE] = {0};
    float near_b[ABIS_FINGER_MAX_MINUTIAE] = {0}, d2[ABIS_FINGER_MAX_MINUTIAE];
    int paired = 0, over_a = 0, over_b = 0;
    for (int i = 0; i < na; i++) {
        float dx = a->x[i] - a->x[ai], dy = a->y[i] - a->y[ai];
        float x = c * dx - s * dy + b->x[bj], y = s * dx + c * dy + b->y[bj];
        float tc = c * a->c[i] - s * a->s[i], ts = s * a->c[i] + c * a->s[i];
        /* distances first (a loop compilers vectorise), then the choice */
        float nearest = GP_NEAR * GP_NEAR + 1;
        for (int j = 0; j < nb; j++) {
            float ex = x - b->x[j], ey = y - b->y[j];
            d2[j] = ex * ex + ey * ey;
            near_b[j] = d2[j] <= GP_NEAR * GP_NEAR ? 1.0f : near_b[j];
            nearest = d2[j] < nearest ? d2[j] : nearest;
        }
        over_a += nearest <= GP_NEAR * GP_NEAR;
        if (nearest > GP_TOL * GP_TOL)
            continue;
        int best = -1;
        float bd = GP_TOL * GP_TOL;
        for (int j = 0; j < nb; j++)
            if (!used[j] && d2[j] <= bd && tc * b->c[j] + ts * b->s[j] >= GP_DIR) {
                bd = d2[j];
                best = j;
            }
        if (best >= 0) {
            used[best] = 1;
            paired++;
        }
    }
    for (int j = 0; j < nb; j++)
        over_b += near_b[j] > 0;
    double oa = over_a > GP_MIN_OVERLAP ? over_a : GP_MIN_OVERLAP;
    double ob = over_b > GP_MIN_OVERLAP ? over_b : GP_MIN_OVERLAP;
    return (double)paired * paired / (oa * ob);
}

/* A comparison's working arrays, per thread: 144 KiB on the stack would be
 * probed page by page on every call (stack-clash protection). */
typedef struct match_scratch {
    uint8_t gam[ABIS_FINGER_MAX_MINUTIAE * ABIS_FINGER_MAX_MINUTIAE];
    uint16_t list[ABIS_FINGER_MAX_MINUTIAE * ABIS_FINGER_MAX_MINUTIAE];
    uint16_t order[ABIS_FINGER_MAX_MINUTIAE * ABIS_FINGER_MAX_MINUTIAE];
    float rho[ABIS_FINGER_MAX_MINUTIAE * ABIS_FINGER_MAX_MINUTIAE];
} match_scratch;

static _Thread_local match_scratch scratch;

/* The matcher: with `global`, the relaxed score weighted by the global
 * pairing; without, the pre-selection score (relaxation over at most PRE_NR
 * pairs, no global pairing). */
static double match_prepared(const abis_finger_prep *pa, const abis_finger_prep *pb, int global)
{
    int na = pa->n, nb = pb->n;
    if (na == 0 || nb == 0)
        return 0;
    fp_prep_view a, b;
    fp_prep_view_of(pa, &a);
    fp_prep_view_of(pb, &b);
    match_scratch *sc = &scratch;
    uint8_t *gam = sc->gam;
    uint16_t *list = sc->list, *order = sc->order, cnt[256] = {0};
    float *rho = sc->rho;
    int min_me = (int)ceilf(MCC_MIN_ME * (float)cells_in_circle);
    fp_sim_fn sim =
        atomic_load_explicit(&force_scalar, memory_order_relaxed) ? fp_sim_scalar : sim_best;
    int nl = sim(&a, na, &b, nb, min_me, sqrt_tab, gam, list, cnt);
    if (nl == 0)
        return 0;

    /* the nR best pairs, each minutia at most once: the listed pairs
     * (i << 7 | j) counting-sorted by value, highest first */
    int nr_max = na < nb ? na : nb;
    if (!global && nr_max > PRE_NR)
        nr_max = PRE_NR;
    int start[256], acc = 0;
    for (int v = 255; v >= 1; v--) {
        start[v] = acc;
        acc += cnt[v];
    }
    for (int k = 0; k < nl; k++) {
        int e = list[k];
        order[start[gam[(size_t)(e >> 7) * nb + (e & 127)]]++] = (uint16_t)e;
    }
    acc = gate_by_rotation(&a, na, &b, order, acc, nr_max);
    uint8_t used_a[ABIS_FINGER_MAX_MINUTIAE] = {0}, used_b[ABIS_FINGER_MAX_MINUTIAE] = {0};
    int pi[ABIS_FINGER_MAX_MINUTIAE], pj[ABIS_FINGER_MAX_MINUTIAE], nr = 0;
    float l0[ABIS_FINGER_MAX_MINUTIAE];
    for (int k = 0; k < acc && nr < nr_max; k++) {
        int i = order[k] >> 7, j = order[k] & 127;
        if (used_a[i] || used_b[j])
            continue;
        used_a[i] = used_b[j] = 1;
        pi[nr] = i;
        pj[nr] = j;
        l0[nr] = gam[(size_t)i * nb + j] / 255.0f;
        nr++;
    }
    int np = np_for(pa->n_min, pb->n_min);
    if (nr < 2)
        return 0;

    /* rho for every two selected pairs (symmetric) */
    static_assert(ABIS_FINGER_MAX_MINUTIAE <= 128, "pairs are coded in 7 + 7 bits");
    float rc[ABIS_FINGER_MAX_MINUTIAE], rs[ABIS_FINGER_MAX_MINUTIAE];
    for (int i = 0; i < nr; i++) {
        /* the rotation from a's minutia to b's: cos and sin of (theta_b - theta_a) */
        rc[i] = b.c[pj[i]] * a.c[pi[i]] + b.s[pj[i]] * a.s[pi[i]];
        rs[i] = b.s[pj[i]] * a.c[pi[i]] - b.c[pj[i]] * a.s[pi[i]];
    }
    for (int i = 0; i < nr; i++) {
        rho[i * nr + i] = 0;
        int ai = pi[i], bi = pj[i];
        for (int k = i + 1; k < nr; k++) {
            int ak = pi[k], bk = pj[k];
            /* k's minutia in i's frame, on each print */
            float vax = a.x[ak] - a.x[ai], vay = a.y[ak] - a.y[ai];
            float vbx = b.x[bk] - b.x[bi], vby = b.y[bk] - b.y[bi];
            float lax = vax * a.c[ai] + vay * a.s[ai], lay = -vax * a.s[ai] + vay * a.c[ai];
            float lbx = vbx * b.c[bi] + vby * b.s[bi], lby = -vbx * b.s[bi] + vby * b.c[bi];
            float da = sqrtf(lax * lax + lay * lay), db = sqrtf(lbx * lbx + lby * lby);
            float z1 = z1_lookup(fabsf(da - db));
            float c3 = da > 0 && db > 0 ? (lax * lbx + lay * lby) / (da * db) : 1.0f;
            float c2 = rc[i] * rc[k] + rs[i] * rs[k];
            float r = z1 * zc_lookup(c2) * zc_lookup(c3);
            rho[i * nr + k] = rho[k * nr + i] = r;
        }
    }
    /* relaxation: rho is symmetric, so each round is lam' = w lam + (1 - w)
     * rho lam / (nR - 1), summed column by column (no reduction in the inner
     * loop, which compilers vectorise) */
    float lam[ABIS_FINGER_MAX_MINUTIAE], nxt[ABIS_FINGER_MAX_MINUTIAE];
    memcpy(lam, l0, (size_t)nr * sizeof *lam);
    float inv = (1 - REL_W) / (float)(nr - 1);
    for (int it = 0; it < REL_ITER; it++) {
        for (int i = 0; i < nr; i++)
            nxt[i] = 0;
        for (int k = 0; k < nr; k++) {
            const float *r = rho + k * nr;
            float lk = lam[k];
            for (int i = 0; i < nr; i++)
                nxt[i] += r[i] * lk;
        }
        for (int i = 0; i < nr; i++)
            lam[i] = REL_W * lam[i] + inv * nxt[i];
    }
    /* the np pairs of highest efficiency (relaxed / initial) */
    float eff[ABIS_FINGER_MAX_MINUTIAE];
    for (int i = 0; i < nr; i++)
        eff[i] = lam[i] / l0[i];
    if (np > nr)
        np = nr;
    double sum = 0;
    for (int q = 0; q < np; q++) {
        int best = -1;
        for (int i = 0; i < nr; i++)
            if (eff[i] >= 0 && (best < 0 || eff[i] > eff[best]))
                best = i;
        sum += lam[best];
        eff[best] = -1;
    }
    double mcc = sum / np;
    if (!global)
        return mcc;
    /* global pairing from the GP_SEEDS pairs of highest relaxed similarity */
    double g = 0;
    for (int q = 0; q < GP_SEEDS && q < nr; q++) {
        int seed = 0;
        for (int i = 1; i < nr; i++)
            if (lam[i] > lam[seed])
                seed = i;
        double gs = global_pairing(&a, na, &b, nb, pi[seed], pj[seed], rc[seed], rs[seed]);
        if (gs > g)
            g = gs;
        lam[seed] = -1;
    }
    return mcc * (GP_BASE + g);
}

/* ---- entry points ------------------------------------------------------------ */

double abis_finger_match(const abis_finger_prep *pa, const abis_finger_prep *pb)
{
    pthread_once(&tables_once, init_tables);
    return match_prepared(pa, pb, 1);
}

double abis_finger_preselect(const abis_finger_prep *pa, const abis_finger_prep *pb)
{
    pthread_once(&tables_once, init_tables);
    return match_prepared(pa, pb, 0);
}

double abis_finger_compare(const abis_finger_template *a, const abis_finger_template *b)
{
    abis_finger_prep *pa = NULL, *pb = NULL;
    double s = 0;
    if (abis_finger_prepare(a, &pa, NULL) == ABIS_OK &&
        abis_finger_prepare(b, &pb, NULL) == ABIS_OK)
        s = abis_finger_match(pa, pb);
    abis_finger_prep_free(pa);
    abis_finger_prep_free(pb);
    return s;
}
