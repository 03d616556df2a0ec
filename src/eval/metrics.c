/*
 * metrics.c: ISO/IEC 19795-1 accuracy metrics of a score set -- EER, FNMR at
 * fixed FMR, d', FTE/FTA for 1:1; FNIR at fixed FPIR and the CMC for 1:N --
 * with confidence intervals bootstrapped by identity.  docs/EVALUATION.md
 * states the same definitions for readers of the reports.
 *
 * Definitions (scores are similarities; ties count as matches):
 *   FMR(t)  = #{impostor >= t} / #impostor
 *   FNMR(t) = #{genuine < t} / #genuine
 *   EER     the DET is walked with thresholds descending from +inf (FMR 0,
 *           FNMR 1) through every distinct score; at the first operating
 *           point where FNMR - FMR <= 0 the EER is interpolated linearly
 *           between it and the point before, at the fraction where the
 *           difference crosses zero, and so is the threshold (the threshold
 *           of the first point when the point before is the start at +inf).
 *   FNMR at FMR target f: k = floor(f * #impostor) impostors may match.  The
 *           threshold is the score just above the (k+1)-th highest impostor
 *           score s (nextafter(s, +inf)): the smallest threshold whose FMR is
 *           <= f.  FNMR is read there (so genuine scores equal to s count as
 *           non-matches).  Supported only when k >= 1, i.e. #impostor >= 1/f
 *           (and there are genuine scores); otherwise supported = 0 and value,
 *           lo, hi and threshold are NaN.  support = #impostor.
 *   ZeroFMR FNMR at the threshold just above the highest impostor score (the
 *           FVC competitions' figure); supported with any genuine and impostor
 *           score, support = #impostor; no bootstrap interval.
 *   d'      |mean_g - mean_i| / sqrt((var_g + var_i) / 2), population
 *           variances (divided by n); NaN with an empty class, +inf when both
 *           variances are 0 and the means differ.
 *   FTE, FTA failed_to_enrol / attempted, failed_to_acquire / attempted; NaN
 *           when attempted is 0 (nothing recorded).
 *   1:N     FPIR(t) = #{non-mated probes whose best score >= t} / #non-mated.
 *           FNIR(t) = #{mated probes whose mate is not returned at rank
 *           1..max_rank with score >= t} / #mated: a mate not in the
 *           candidate list (rank 0, or rank > max_rank) and a mate returned
 *           below the threshold are both misses, as NIST FRVT counts them.
 *           The threshold at FPIR target f is chosen as for FMR above
 *           (k = floor(f * #non-mated), score just above the (k+1)-th highest
 *           non-mated best score; supported when k >= 1 and there are mated
 *           probes); support = #non-mated.
 *   CMC     cmc[r-1] = #{mated probes with 1 <= rank <= r} / #mated (NaN with
 *           no mated probes); independent of any threshold.
 *
 * Bootstrap (B resamples, 95 % percentile intervals): the identities that own
 * at least one score are drawn n times with replacement (n = their number),
 * and each drawn identity brings all its scores: its genuine pairs and the
 * impostor pairs whose *first* identity (imp_id_a) it is -- an impostor pair
 * belongs to both identities, and counting it under one keeps every pair in
 * exactly one cluster.  (1:N: mated and non-mated probes by their own id.)  A
 * resample is a weight per identity, so no scores are copied: the metrics of
 * a resample are read by walking the score/identity pairs sorted once,
 * summing weights.  For 1:1 the walk starts at the highest scores and stops
 * as soon as the EER and every supported FNMR@FMR threshold are found, so it
 * only needs the top impostor scores: those above a cut-off chosen from the
 * point estimates (a few times max(EER, largest target)), re-chosen four
 * times lower if a resample ever needs more (the results do not depend on the
 * cut-off).  Resamples with an empty class are skipped.  lo and hi are the
 * 2.5th and 97.5th percentiles of the resampled values (linear interpolation
 * between order statistics); with no bootstrap, or no usable resample,
 * lo = hi = value.  The generator is splitmix64 with a fixed seed, so the
 * same scores give the same intervals.
 */
#include "eval/eval_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const double abis_eval_fmr_targets[ABIS_EVAL_N_FMR_TARGETS] = {1e-2, 1e-3, 1e-4};
const double abis_eval_fpir_targets[ABIS_EVAL_N_FPIR_TARGETS] = {0.01, 0.003};

#define BOOT_SEED 0x0AB15E7A1ull /* fixed: reports reproduce */
#define BOOT_MAX 1000000u        /* a bound on resamples, to catch nonsense */
/* Relative slack when comparing a count with target * total, so that a
 * product like 1e-3 * 1000 that rounds a hair below 1 still allows one. */
#define TARGET_SLACK 1e-9

/* How many of `total` comparisons may match at rate `target` (may be
 * fractional for weighted counts). */
static double allowed(double target, double total)
{
    return target * total * (1 + TARGET_SLACK);
}

static void rate_unsupported(abis_eval_rate *r, uint64_t support)
{
    r->value = r->lo = r->hi = r->threshold = NAN;
    r->support = support;
    r->supported = 0;
}

/* ---- splitmix64 (Steele, Lea, Flood 2014; as scripts/synthgen.h) ------------- */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n): the modulo bias is below n / 2^64, far below any
 * bootstrap's resolution. */
static size_t rng_below(uint64_t *state, size_t n)
{
    return (size_t)(rng_next(state) % (uint64_t)n);
}

/* ---- shared pieces ------------------------------------------------------------ */

/* A score with the identity that owns it, for the bootstrap walks. */
typedef struct scored {
    double score;
    uint32_t id;
} scored;

static int scored_desc(const void *a, const void *b)
{
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x < y) - (x > y);
}

/* The 2.5th and 97.5th percentiles of v[0..n) (sorted here), linear between
 * order statistics (Hyndman and Fan type 7); NaN values are dropped first.
 * Leaves *lo, *hi alone when no value is left. */
static void percentiles_95(double *v, size_t n, double *lo, double *hi)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[m++] = v[i];
    if (m == 0)
        return;
    abis_eval_sort(v, m);
    double q[2] = {0.025, 0.975}, *out[2] = {lo, hi};
    for (int k = 0; k < 2; k++) {
        double h = q[k] * (double)(m - 1);
        size_t f = (size_t)h;
        double frac = h - (double)f;
        *out[k] = f + 1 < m ? v[f] + frac * (v[f + 1] - v[f]) : v[f];
    }
}

/* The identities to resample: every id with a nonzero count in cnt_a or
 * cnt_b (arrays of n_ids); malloc'd list in *pop, its length in *n_pop. */
static abis_status population(const uint64_t *cnt_a, const uint64_t *cnt_b, size_t n_ids,
                              uint32_t **pop, size_t *n_pop, abis_error *err)
{
    size_t n = 0;
    for (size_t j = 0; j < n_ids; j++)
        n += cnt_a[j] + cnt_b[j] > 0;
    *pop = malloc((n ? n : 1) * sizeof **pop);
    if (!*pop)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for the bootstrap");
    n = 0;
    for (size_t j = 0; j < n_ids; j++)
        if (cnt_a[j] + cnt_b[j] > 0)
            (*pop)[n++] = (uint32_t)j;
    *n_pop = n;
    return ABIS_OK;
}

/* Draw one resample: w[id] = how often id was drawn. */
static void draw(uint64_t *rng, const uint32_t *pop, size_t n_pop, uint32_t *w, size_t n_ids)
{
    memset(w, 0, n_ids * sizeof *w);
    for (size_t r = 0; r < n_pop; r++)
        w[pop[rng_below(rng, n_pop)]]++;
}

static double weighted_total(const uint32_t *pop, size_t n_pop, const uint32_t *w,
                             const uint64_t *cnt)
{
    double t = 0;
    for (size_t r = 0; r < n_pop; r++)
        t += (double)w[pop[r]] * (double)cnt[pop[r]];
    return t;
}

/* ---- 1:1 ---------------------------------------------------------------------- */

void abis_eval_rates_at(const abis_eval_scores *s, double threshold, double *fmr, double *fnmr)
{
    assert(s && fmr && fnmr);
    size_t fm = 0, fnm = 0;
    for (size_t i = 0; i < s->n_impostor; i++)
        fm += s->impostor[i] >= threshold;
    for (size_t i = 0; i < s->n_genuine; i++)
        fnm += s->genuine[i] < threshold;
    *fmr = s->n_impostor ? (double)fm / (double)s->n_impostor : NAN;
    *fnmr = s->n_genuine ? (double)fnm / (double)s->n_genuine : NAN;
}

typedef struct eer_state {
    double prev_t, prev_fmr, prev_fnmr; /* the point before: starts at +inf, 0, 1 */
    double eer, threshold;
} eer_state;

/* The EER crossing between the previous operating point and this one (see
 * the top of the file); returns 1 when found. */
static int eer_step(eer_state *e, double t, double fmr, double fnmr)
{
    double d = fnmr - fmr;
    if (d > 0) {
        e->prev_t = t;
        e->prev_fmr = fmr;
        e->prev_fnmr = fnmr;
        return 0;
    }
    double dp = e->prev_fnmr - e->prev_fmr; /* > 0 */
    double alpha = dp / (dp - d);
    e->eer = e->prev_fmr + alpha * (fmr - e->prev_fmr);
    e->threshold = isinf(e->prev_t) ? t : e->prev_t + alpha * (t - e->prev_t);
    return 1;
}

static int eer_visit(void *ctx, double threshold, double fmr, double fnmr)
{
    return eer_step(ctx, threshold, fmr, fnmr);
}

void abis_eval_eer_sorted(const double *gen, size_t ng, const double *imp, size_t ni, double *eer,
                          double *threshold)
{
    eer_state e = {INFINITY, 0, 1, NAN, NAN};
    abis_eval_det_walk(gen, ng, imp, ni, eer_visit, &e);
    *eer = e.eer;
    *threshold = e.threshold;
}

/* Mean and population variance. */
static void mean_var(const double *x, size_t n, double *mean, double *var)
{
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++)
        m += x[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = v / (double)n;
}

/* What the 1:1 bootstrap works on. */
typedef struct verif_boot {
    const abis_eval_scores *s;
    scored *gen;             /* all genuine pairs, descending */
    scored *imp;             /* the top impostor pairs, descending: every one >= cut */
    size_t n_imp;            /* how many in imp */
    int imp_whole;           /* imp holds every impostor pair */
    uint64_t *g_cnt, *i_cnt; /* per identity: genuine pairs, impostor pairs (by id_a) */
    uint32_t *w;
    size_t n_ids;
    uint32_t *pop;
    size_t n_pop;
    int supported[ABIS_EVAL_N_FMR_TARGETS];
} verif_boot;

/* Keep the impostor pairs with score >= imp_sorted[ni - k] (so at least k,
 * more on ties), sorted descending. */
static abis_status boot_take_tail(verif_boot *b, const double *imp_sorted, size_t k,
                                  abis_error *err)
{
    const abis_eval_scores *s = b->s;
    size_t ni = s->n_impostor;
    double cut = imp_sorted[ni - k];
    size_t n = ni - abis_eval_count_below(imp_sorted, ni, cut);
    free(b->imp);
    b->imp = malloc(n * sizeof *b->imp);
    if (!b->imp)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for the bootstrap");
    size_t m = 0;
    for (size_t i = 0; i < ni; i++)
        if (s->impostor[i] >= cut)
            b->imp[m++] = (scored){s->impostor[i], s->imp_id_a[i]};
    assert(m == n);
    qsort(b->imp, n, sizeof *b->imp, scored_desc);
    b->n_imp = n;
    b->imp_whole = n == ni;
    return ABIS_OK;
}

/* One resample's EER and FNMR@FMR values into out[0] and out[1..]; NaN for
 * a value not defined.  Returns -1 when the impostor tail was too short. */
static int boot_verif_one(const verif_boot *b, double *out)
{
    for (int k = 0; k <= ABIS_EVAL_N_FMR_TARGETS; k++)
        out[k] = NAN;
    double tg = weighted_total(b->pop, b->n_pop, b->w, b->g_cnt);
    double ti = weighted_total(b->pop, b->n_pop, b->w, b->i_cnt);
    if (tg <= 0 || ti <= 0)
        return 0;
    int todo = 1; /* the EER, then one per supported target */
    int found[ABIS_EVAL_N_FMR_TARGETS] = {0};
    for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++)
        todo += b->supported[k];
    eer_state e = {INFINITY, 0, 1, NAN, NAN};
    int eer_found = 0;
    size_t gi = 0, ii = 0, ng = b->s->n_genuine;
    double acc_g = 0, acc_i = 0; /* weighted scores >= the current threshold */
    while (todo > 0) {
        int g_left = gi < ng, i_left = ii < b->n_imp;
        if (!i_left && !b->imp_whole) {
            /* impostors below the cut are unknown: only a genuine threshold
             * at or above the cut can still be read exactly */
            if (!g_left || b->gen[gi].score < b->imp[b->n_imp - 1].score)
                return -1;
        }
        if (!g_left && !i_left)
            break; /* cannot happen: the last point has FMR 1, FNMR 0 */
        double t = !g_left                               ? b->imp[ii].score
                   : !i_left                             ? b->gen[gi].score
                   : b->gen[gi].score > b->imp[ii].score ? b->gen[gi].score
                                                         : b->imp[ii].score;
        double acc_g_above = acc_g;
        while (gi < ng && b->gen[gi].score == t)
            acc_g += b->w[b->gen[gi++].id];
        while (ii < b->n_imp && b->imp[ii].score == t)
            acc_i += b->w[b->imp[ii++].id];
        double fmr = acc_i / ti, fnmr = 1 - acc_g / tg;
        for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++) {
            if (b->supported[k] && !found[k] && acc_i > allowed(abis_eval_fmr_targets[k], ti)) {
                /* threshold just above t: genuine scores >= t's group miss */
                out[1 + k] = 1 - acc_g_above / tg;
                found[k] = 1;
                todo--;
            }
        }
        if (!eer_found && eer_step(&e, t, fmr, fnmr)) {
            out[0] = e.eer;
            eer_found = 1;
            todo--;
        }
    }
    return 0;
}

static void verif_boot_free(verif_boot *b)
{
    free(b->gen);
    free(b->imp);
    free(b->g_cnt);
    free(b->i_cnt);
    free(b->w);
    free(b->pop);
}

/* Fill the lo/hi of m's EER and FNMR@FMR rates from `reps` resamples. */
static abis_status boot_verif(const abis_eval_scores *s, const double *imp_sorted, unsigned reps,
                              abis_eval_verif_metrics *m, abis_error *err)
{
    verif_boot b = {.s = s};
    abis_status st = ABIS_OK;
    size_t ng = s->n_genuine, ni = s->n_impostor;
    double *vals = NULL;

    uint32_t max_id = 0;
    for (size_t i = 0; i < ng; i++)
        max_id = s->gen_id[i] > max_id ? s->gen_id[i] : max_id;
    for (size_t i = 0; i < ni; i++)
        max_id = s->imp_id_a[i] > max_id ? s->imp_id_a[i] : max_id;
    b.n_ids = (size_t)max_id + 1;
    b.g_cnt = calloc(b.n_ids, sizeof *b.g_cnt);
    b.i_cnt = calloc(b.n_ids, sizeof *b.i_cnt);
    b.w = calloc(b.n_ids, sizeof *b.w);
    b.gen = malloc(ng * sizeof *b.gen);
    vals = malloc((size_t)reps * (1 + ABIS_EVAL_N_FMR_TARGETS) * sizeof *vals);
    if (!b.g_cnt || !b.i_cnt || !b.w || !b.gen || !vals) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for the bootstrap");
        goto done;
    }
    for (size_t i = 0; i < ng; i++) {
        b.g_cnt[s->gen_id[i]]++;
        b.gen[i] = (scored){s->genuine[i], s->gen_id[i]};
    }
    for (size_t i = 0; i < ni; i++)
        b.i_cnt[s->imp_id_a[i]]++;
    qsort(b.gen, ng, sizeof *b.gen, scored_desc);
    if ((st = population(b.g_cnt, b.i_cnt, b.n_ids, &b.pop, &b.n_pop, err)) != ABIS_OK)
        goto done;

    double reach = isnan(m->eer.value) ? 1 : m->eer.value; /* the share of impostors to keep */
    for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++) {
        b.supported[k] = m->fnmr_at_fmr[k].supported;
        if (b.supported[k] && abis_eval_fmr_targets[k] > reach)
            reach = abis_eval_fmr_targets[k];
    }
    double want = 4 * reach * (double)ni + 64; /* resampled rates vary: keep a margin */
    size_t keep = want >= (double)ni ? ni : (size_t)want;
    for (;;) {
        if ((st = boot_take_tail(&b, imp_sorted, keep, err)) != ABIS_OK)
            goto done;
        uint64_t rng = BOOT_SEED;
        int short_tail = 0;
        for (unsigned r = 0; r < reps && !short_tail; r++) {
            draw(&rng, b.pop, b.n_pop, b.w, b.n_ids);
            short_tail = boot_verif_one(&b, vals + (size_t)r * (1 + ABIS_EVAL_N_FMR_TARGETS)) < 0;
        }
        if (!short_tail)
            break;
        assert(keep < ni);
        keep = keep > ni / 4 ? ni : keep * 4;
    }

    /* gather each metric's column and take its percentiles */
    double *col = malloc((size_t)reps * sizeof *col);
    if (!col) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for the bootstrap");
        goto done;
    }
    for (int k = 0; k <= ABIS_EVAL_N_FMR_TARGETS; k++) {
        abis_eval_rate *rate = k == 0 ? &m->eer : &m->fnmr_at_fmr[k - 1];
        if (!rate->supported)
            continue;
        for (unsigned r = 0; r < reps; r++)
            col[r] = vals[(size_t)r * (1 + ABIS_EVAL_N_FMR_TARGETS) + (size_t)k];
        percentiles_95(col, reps, &rate->lo, &rate->hi);
    }
    free(col);
done:
    free(vals);
    verif_boot_free(&b);
    return st;
}

abis_status abis_eval_verification(const abis_eval_scores *s, unsigned bootstrap,
                                   abis_eval_verif_metrics *m, abis_error *err)
{
    if (!s || !m)
        return abis_error_set(err, ABIS_E_INVALID, "verification metrics need a score set");
    if (bootstrap > BOOT_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "%u bootstrap resamples: at most %u", bootstrap,
                              BOOT_MAX);
    memset(m, 0, sizeof *m);
    size_t ng = s->n_genuine, ni = s->n_impostor;
    m->n_genuine = ng;
    m->n_impostor = ni;
    m->fte_rate = s->attempted ? (double)s->failed_to_enrol / (double)s->attempted : NAN;
    m->fta_rate = s->attempted ? (double)s->failed_to_acquire / (double)s->attempted : NAN;

    double *gen = NULL, *imp = NULL;
    abis_status st = abis_eval_sorted_copy(s->genuine, ng, "genuine", &gen, err);
    if (st == ABIS_OK)
        st = abis_eval_sorted_copy(s->impostor, ni, "impostor", &imp, err);
    if (st != ABIS_OK)
        goto done;

    if (ng > 0 && ni > 0) {
        double mg, vg, mi, vi;
        mean_var(s->genuine, ng, &mg, &vg);
        mean_var(s->impostor, ni, &mi, &vi);
        double spread = sqrt((vg + vi) / 2);
        m->d_prime = spread > 0 ? fabs(mg - mi) / spread : mg != mi ? INFINITY : NAN;
    } else {
        m->d_prime = NAN;
    }

    m->eer.support = (uint64_t)ng + ni;
    if (ng > 0 && ni > 0) {
        abis_eval_eer_sorted(gen, ng, imp, ni, &m->eer.value, &m->eer.threshold);
        m->eer.lo = m->eer.hi = m->eer.value;
        m->eer.supported = 1;
    } else {
        rate_unsupported(&m->eer, (uint64_t)ng + ni);
    }

    for (int k = 0; k < ABIS_EVAL_N_FMR_TARGETS; k++) {
        abis_eval_rate *r = &m->fnmr_at_fmr[k];
        double allow = floor(allowed(abis_eval_fmr_targets[k], (double)ni));
        if (ng == 0 || allow < 1) {
            rate_unsupported(r, ni);
            continue;
        }
        size_t kk = allow >= (double)ni ? ni - 1 : (size_t)allow;
        double above = imp[ni - 1 - kk]; /* the (kk+1)-th highest impostor score */
        r->threshold = nextafter(above, INFINITY);
        r->value = (double)abis_eval_count_below(gen, ng, r->threshold) / (double)ng;
        r->lo = r->hi = r->value;
        r->support = ni;
        r->supported = 1;
    }

    if (ng > 0 && ni > 0) {
        abis_eval_rate *z = &m->fnmr_at_zero_fmr;
        z->threshold = nextafter(imp[ni - 1], INFINITY);
        z->value = (double)abis_eval_count_below(gen, ng, z->threshold) / (double)ng;
        z->lo = z->hi = z->value;
        z->support = ni;
        z->supported = 1;
    } else {
        rate_unsupported(&m->fnmr_at_zero_fmr, ni);
    }

    if (bootstrap > 0 && ng > 0 && ni > 0)
        st = boot_verif(s, imp, bootstrap, m, err);
done:
    free(gen);
    free(imp);
    return st;
}

/* ---- 1:N ---------------------------------------------------------------------- */

/* A mated probe's mate counts as returned when it is in the candidate list. */
static int mate_returned(const abis_eval_ident *s, uint32_t rank)
{
    return rank >= 1 && (s->max_rank == 0 || rank <= s->max_rank);
}

typedef struct ident_boot {
    scored *nm;  /* non-mated best scores, descending */
    scored *ret; /* returned mates' scores, descending */
    size_t n_ret;
    uint64_t *m_cnt, *nm_cnt;
    uint32_t *w;
    size_t n_ids;
    uint32_t *pop;
    size_t n_pop;
} ident_boot;

/* One resample's FNIR at each supported FPIR target into out[]. */
static void boot_ident_one(const abis_eval_ident *s, const ident_boot *b,
                           const abis_eval_ident_metrics *m, double *out)
{
    double tm = weighted_total(b->pop, b->n_pop, b->w, b->m_cnt);
    double tn = weighted_total(b->pop, b->n_pop, b->w, b->nm_cnt);
    for (int k = 0; k < ABIS_EVAL_N_FPIR_TARGETS; k++) {
        out[k] = NAN;
        if (!m->fnir_at_fpir[k].supported || tm <= 0 || tn <= 0)
            continue;
        /* the highest non-mated score whose group takes FPIR over target */
        double acc = 0, t = -INFINITY;
        for (size_t i = 0; i < s->n_nonmated;) {
            double v = b->nm[i].score;
            while (i < s->n_nonmated && b->nm[i].score == v)
                acc += b->w[b->nm[i++].id];
            if (acc > allowed(abis_eval_fpir_targets[k], tn)) {
                t = v;
                break;
            }
        }
        /* hits: returned mates scoring above t */
        double hit = 0;
        for (size_t i = 0; i < b->n_ret && b->ret[i].score > t; i++)
            hit += b->w[b->ret[i].id];
        out[k] = 1 - hit / tm;
    }
}

static abis_status boot_ident(const abis_eval_ident *s, unsigned reps, abis_eval_ident_metrics *m,
                              abis_error *err)
{
    ident_boot b = {0};
    abis_status st = ABIS_OK;
    double *vals = NULL, *col = NULL;
    uint32_t max_id = 0;
    for (size_t i = 0; i < s->n_mated; i++)
        max_id = s->mated_id[i] > max_id ? s->mated_id[i] : max_id;
    for (size_t i = 0; i < s->n_nonmated; i++)
        max_id = s->nonmated_id[i] > max_id ? s->nonmated_id[i] : max_id;
    b.n_ids = (size_t)max_id + 1;
    b.m_cnt = calloc(b.n_ids, sizeof *b.m_cnt);
    b.nm_cnt = calloc(b.n_ids, sizeof *b.nm_cnt);
    b.w = calloc(b.n_ids, sizeof *b.w);
    b.nm = malloc(s->n_nonmated * sizeof *b.nm);
    b.ret = malloc(s->n_mated * sizeof *b.ret);
    vals = malloc((size_t)reps * ABIS_EVAL_N_FPIR_TARGETS * sizeof *vals);
    col = malloc((size_t)reps * sizeof *col);
    if (!b.m_cnt || !b.nm_cnt || !b.w || !b.nm || !b.ret || !vals || !col) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for the bootstrap");
        goto done;
    }
    for (size_t i = 0; i < s->n_mated; i++) {
        b.m_cnt[s->mated_id[i]]++;
        if (mate_returned(s, s->mated_rank[i]))
            b.ret[b.n_ret++] = (scored){s->mated_score[i], s->mated_id[i]};
    }
    for (size_t i = 0; i < s->n_nonmated; i++) {
        b.nm_cnt[s->nonmated_id[i]]++;
        b.nm[i] = (scored){s->nonmated_best[i], s->nonmated_id[i]};
    }
    qsort(b.ret, b.n_ret, sizeof *b.ret, scored_desc);
    qsort(b.nm, s->n_nonmated, sizeof *b.nm, scored_desc);
    if ((st = population(b.m_cnt, b.nm_cnt, b.n_ids, &b.pop, &b.n_pop, err)) != ABIS_OK)
        goto done;
    uint64_t rng = BOOT_SEED;
    for (unsigned r = 0; r < reps; r++) {
        draw(&rng, b.pop, b.n_pop, b.w, b.n_ids);
        boot_ident_one(s, &b, m, vals + (size_t)r * ABIS_EVAL_N_FPIR_TARGETS);
    }
    for (int k = 0; k < ABIS_EVAL_N_FPIR_TARGETS; k++) {
        if (!m->fnir_at_fpir[k].supported)
            continue;
        for (unsigned r = 0; r < reps; r++)
            col[r] = vals[(size_t)r * ABIS_EVAL_N_FPIR_TARGETS + (size_t)k];
        percentiles_95(col, reps, &m->fnir_at_fpir[k].lo, &m->fnir_at_fpir[k].hi);
    }
done:
    free(vals);
    free(col);
    free(b.nm);
    free(b.ret);
    free(b.m_cnt);
    free(b.nm_cnt);
    free(b.w);
    free(b.pop);
    return st;
}

abis_status abis_eval_identification(const abis_eval_ident *s, unsigned bootstrap,
                                     abis_eval_ident_metrics *m, abis_error *err)
{
    if (!s || !m)
        return abis_error_set(err, ABIS_E_INVALID, "identification metrics need a search set");
    if (bootstrap > BOOT_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "%u bootstrap resamples: at most %u", bootstrap,
                              BOOT_MAX);
    memset(m, 0, sizeof *m);
    size_t nm = s->n_mated, nn = s->n_nonmated;
    m->gallery_size = s->gallery_size;
    m->n_mated = nm;
    m->n_nonmated = nn;

    /* CMC */
    uint64_t at_rank[ABIS_EVAL_MAX_RANK] = {0};
    size_t n_ret = 0;
    for (size_t i = 0; i < nm; i++) {
        uint32_t r = s->mated_rank[i];
        if (r >= 1 && r <= ABIS_EVAL_MAX_RANK)
            at_rank[r - 1]++;
        if (!isfinite(s->mated_score[i]) && mate_returned(s, r))
            return abis_error_set(err, ABIS_E_INVALID,
                                  "mated probe %zu: score %g of a returned mate is not finite", i,
                                  s->mated_score[i]);
        n_ret += mate_returned(s, r);
    }
    uint64_t cum = 0;
    for (int r = 0; r < ABIS_EVAL_MAX_RANK; r++) {
        cum += at_rank[r];
        m->cmc[r] = nm ? (double)cum / (double)nm : NAN;
    }

    /* FNIR at FPIR */
    double *nmb = NULL, *ret = NULL;
    abis_status st = abis_eval_sorted_copy(s->nonmated_best, nn, "non-mated best", &nmb, err);
    if (st != ABIS_OK)
        return st;
    if (n_ret > 0) {
        ret = malloc(n_ret * sizeof *ret);
        if (!ret) {
            free(nmb);
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory for %zu mated scores", n_ret);
        }
        size_t j = 0;
        for (size_t i = 0; i < nm; i++)
            if (mate_returned(s, s->mated_rank[i]))
                ret[j++] = s->mated_score[i];
        abis_eval_sort(ret, n_ret);
    }
    for (int k = 0; k < ABIS_EVAL_N_FPIR_TARGETS; k++) {
        abis_eval_rate *r = &m->fnir_at_fpir[k];
        double allow = floor(allowed(abis_eval_fpir_targets[k], (double)nn));
        if (nm == 0 || allow < 1) {
            rate_unsupported(r, nn);
            continue;
        }
        size_t kk = allow >= (double)nn ? nn - 1 : (size_t)allow;
        r->threshold = nextafter(nmb[nn - 1 - kk], INFINITY);
        size_t hits = n_ret - abis_eval_count_below(ret, n_ret, r->threshold);
        r->value = 1 - (double)hits / (double)nm;
        r->lo = r->hi = r->value;
        r->support = nn;
        r->supported = 1;
    }
    free(nmb);
    free(ret);

    if (bootstrap > 0 && nm > 0 && nn > 0)
        st = boot_ident(s, bootstrap, m, err);
    return st;
}

/* ---- fold accuracy (LFW protocol) --------------------------------------------------- */

typedef struct scored_pair {
    double score;
    int genuine;
} scored_pair;

static int scored_pair_asc(const void *a, const void *b)
{
    double x = ((const scored_pair *)a)->score, y = ((const scored_pair *)b)->score;
    return x < y ? -1 : x > y;
}

/* The threshold (match: score >= t) making the fewest errors on p[0..n):
 * midway between the two scores where the best split falls. */
static double best_threshold(scored_pair *p, size_t n)
{
    qsort(p, n, sizeof *p, scored_pair_asc);
    size_t genuine = 0;
    for (size_t i = 0; i < n; i++)
        genuine += p[i].genuine != 0;
    /* t below p[0]: every pair matches, the impostors are the errors */
    size_t errors = n - genuine, best_errors = errors;
    double best = n ? p[0].score - 1 : 0;
    for (size_t i = 0; i < n; i++) {
        /* t just above p[i]: p[0..i] no longer match */
        if (p[i].genuine)
            errors++;
        else
            errors--;
        if (i + 1 < n && p[i + 1].score == p[i].score)
            continue;
        if (errors < best_errors) {
            best_errors = errors;
            best = i + 1 < n ? (p[i].score + p[i + 1].score) / 2 : p[i].score + 1;
        }
    }
    return best;
}

static void mean_se(const double *v, int n, double *mean, double *se)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *se = n > 1 ? sqrt(ss / (n - 1)) / sqrt((double)n) : 0;
}

abis_status abis_eval_fold_accuracy_compute(const double *score, const int *genuine,
                                            const int *fold, size_t n, int folds,
                                            abis_eval_fold_accuracy *out, abis_error *err)
{
    memset(out, 0, sizeof *out);
    if (folds < 2 || folds > 1000)
        return abis_error_set(err, ABIS_E_INVALID, "fold accuracy needs 2 or more folds");
    scored_pair *train = malloc((n ? n : 1) * sizeof *train);
    double *acc = malloc((size_t)folds * sizeof *acc), *cacc = malloc((size_t)folds * sizeof *cacc);
    abis_status st = ABIS_OK;
    if (!train || !acc || !cacc) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory for the fold accuracy");
        goto done;
    }
    double thresholds = 0;
    for (int f = 0; f < folds && st == ABIS_OK; f++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (fold[i] >= 0 && fold[i] < folds && fold[i] != f && !isnan(score[i]))
                train[m++] = (scored_pair){score[i], genuine[i]};
        double t = best_threshold(train, m);
        thresholds += t;
        size_t all = 0, right = 0, cmp = 0, cright = 0;
        for (size_t i = 0; i < n; i++) {
            if (fold[i] != f)
                continue;
            int compared = !isnan(score[i]);
            int match = compared && score[i] >= t;
            int ok = match == (genuine[i] != 0);
            all++;
            right += ok;
            cmp += compared;
            cright += compared && ok;
        }
        if (cmp == 0)
            st = abis_error_set(err, ABIS_E_INVALID, "fold %d has no compared pair", f + 1);
        acc[f] = all ? (double)right / all : 0;
        cacc[f] = cmp ? (double)cright / cmp : 0;
        out->pairs += all;
        out->compared += cmp;
    }
    if (st == ABIS_OK) {
        out->folds = folds;
        mean_se(acc, folds, &out->mean, &out->se);
        mean_se(cacc, folds, &out->compared_mean, &out->compared_se);
        out->threshold_mean = thresholds / folds;
    }
done:
    free(train);
    free(acc);
    free(cacc);
    return st;
}
