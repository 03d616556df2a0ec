/*
 * protocol.c: the evaluation protocols (all, fvc, pairs, 1:N) and running
 * their comparisons on several threads with the modality plug-in's own
 * compare() and gallery (see protocol.h).
 *
 * Threads take work from a shared atomic counter (blocks of rows or pairs)
 * and write each score into its own place in preallocated arrays, so results
 * do not depend on the number of threads or their timing.  The calling thread
 * only draws the progress bar (progress.h is not thread-safe).
 */
#include "eval/protocol.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/progress.h"

static const char *const protocol_names[] = {"all", "fvc", "pairs", "1n", "sessions"};
#define N_PROTOCOLS (sizeof protocol_names / sizeof protocol_names[0])

const char *abis_eval_protocol_name(abis_eval_protocol p)
{
    return (unsigned)p < N_PROTOCOLS ? protocol_names[p] : "?";
}

int abis_eval_protocol_parse(const char *name)
{
    for (int i = 0; i < (int)N_PROTOCOLS; i++)
        if (strcmp(name, protocol_names[i]) == 0)
            return i;
    return -1;
}

static abis_status nomem(abis_error *err)
{
    return abis_error_set(err, ABIS_E_NOMEM, "out of memory running the evaluation");
}

/* splitmix64 (as scripts/synthgen.h): seeded sampling that reproduces. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rand_below(uint64_t *s, uint64_t n)
{
    return n ? next_rand(s) % n : 0; /* modulo bias < n / 2^64: negligible here */
}

static unsigned thread_count(const abis_eval_run_opts *o)
{
    unsigned t = o && o->threads ? o->threads : 2;
    return t > 256 ? 256 : t;
}

/* ---- running work on threads with a progress bar ------------------------------- */

typedef struct pool {
    atomic_size_t next;        /* the next work item to take */
    atomic_uint_fast64_t done; /* comparisons made, for the progress bar */
    atomic_int failed;         /* a worker ran out of memory */
    size_t n_items;
    void *job;
    /* worker: 0 .. threads-1, so a worker can keep to its own resources */
    void (*work)(struct pool *p, size_t item, unsigned worker);
} pool;

typedef struct pool_thread {
    pool *p;
    unsigned worker;
} pool_thread;

static void *pool_worker(void *arg)
{
    pool_thread *pt = arg;
    pool *p = pt->p;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_items || atomic_load(&p->failed))
            break;
        p->work(p, i, pt->worker);
    }
    return NULL;
}

/* Run work(p, i) for every i < n_items on `threads` threads; show progress
 * in comparisons out of `total`. */
static abis_status pool_run(pool *p, unsigned threads, const char *label, uint64_t total,
                            abis_error *err)
{
    pthread_t tid[256];
    pool_thread pt[256];
    unsigned started = 0;
    for (; started < threads && started < 256; started++) {
        pt[started] = (pool_thread){p, started};
        if (pthread_create(&tid[started], NULL, pool_worker, &pt[started]) != 0)
            break;
    }
    if (started == 0) { /* no thread could start: do it here */
        pt[0] = (pool_thread){p, 0};
        pool_worker(&pt[0]);
    }
    abis_progress *bar =
        label && started ? abis_progress_create(label, total, "comparisons") : NULL;
    if (bar) {
        /* Poll until every item has been taken, then join. */
        while (atomic_load(&p->next) < p->n_items && !atomic_load(&p->failed)) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            abis_progress_update(bar, atomic_load(&p->done));
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    if (bar) {
        abis_progress_update(bar, atomic_load(&p->done));
        abis_progress_finish(bar);
    }
    return atomic_load(&p->failed) ? nomem(err) : ABIS_OK;
}

/* ---- records taking part ---------------------------------------------------------- */

/* Indexes of the records in `use` that have a template, ordered by identity
 * (stable: record order within an identity).  *n gets how many. */
static uint32_t *usable_by_identity(const abis_eval_set *set, const abis_eval_templates *t,
                                    const unsigned char *use, size_t *n)
{
    size_t *count = calloc((size_t)set->n_identities + 1, sizeof *count);
    uint32_t *out = malloc((set->n_records ? set->n_records : 1) * sizeof *out);
    if (!count || !out) {
        free(count);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < set->n_records; i++)
        if ((!use || use[i]) && (!t || t->tmpl[i]))
            count[set->records[i].identity + 1]++;
    for (uint32_t i = 0; i < set->n_identities; i++)
        count[i + 1] += count[i];
    *n = count[set->n_identities];
    for (size_t i = 0; i < set->n_records; i++)
        if ((!use || use[i]) && (!t || t->tmpl[i]))
            out[count[set->records[i].identity]++] = (uint32_t)i;
    free(count);
    return out;
}

/* ---- pair lists -------------------------------------------------------------------- */

static int pairlist_add(abis_eval_pairlist *l, uint32_t a, uint32_t b, int genuine)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        abis_eval_pair *p = realloc(l->p, cap * sizeof *p);
        if (!p)
            return -1;
        l->p = p;
        l->cap = cap;
    }
    l->p[l->n++] = (abis_eval_pair){a, b, genuine, -1};
    return 0;
}

void abis_eval_pairs_free(abis_eval_pairlist *l)
{
    if (!l)
        return;
    free(l->p);
    memset(l, 0, sizeof *l);
}

abis_status abis_eval_pairs_make(const abis_eval_set *set, abis_eval_protocol proto,
                                 const abis_eval_run_opts *o, abis_eval_pairlist *out,
                                 abis_error *err)
{
    memset(out, 0, sizeof *out);
    const unsigned char *use = o ? o->use : NULL;
    if (proto == ABIS_PROTOCOL_PAIRS) {
        if (!set->pairs)
            return abis_error_set(err, ABIS_E_INVALID,
                                  "the pairs protocol needs a pairs file (--pairs FILE)");
        for (size_t i = 0; i < set->n_pairs; i++) {
            const abis_eval_pair *p = &set->pairs[i];
            if (use && (!use[p->a] || !use[p->b]))
                continue;
            if (pairlist_add(out, p->a, p->b, p->genuine) != 0)
                return nomem(err);
        }
        return ABIS_OK;
    }
    if (proto != ABIS_PROTOCOL_ALL && proto != ABIS_PROTOCOL_FVC && proto != ABIS_PROTOCOL_SESSIONS)
        return abis_error_set(err, ABIS_E_INTERNAL, "protocol %s makes no pair list",
                              abis_eval_protocol_name(proto));
    if (proto == ABIS_PROTOCOL_SESSIONS)
        for (size_t i = 0; i < set->n_records; i++)
            if (set->records[i].number < 1000)
                return abis_error_set(err, ABIS_E_INVALID,
                                      "the sessions protocol needs a layout that names capture "
                                      "sessions (casia); '%.200s' has none",
                                      set->records[i].key);
    size_t n;
    uint32_t *r = usable_by_identity(set, NULL, use, &n);
    if (!r)
        return nomem(err);
    abis_status st = ABIS_OK;
    /* Genuine: every pair within an identity (both protocols). */
    uint64_t impostor_total = 0;
    for (size_t i = 0; i < n && st == ABIS_OK; i++) {
        uint32_t id = set->records[r[i]].identity;
        size_t j = i + 1;
        for (; j < n && set->records[r[j]].identity == id; j++)
            if (proto != ABIS_PROTOCOL_SESSIONS ||
                set->records[r[i]].number / 1000 != set->records[r[j]].number / 1000)
                if (pairlist_add(out, r[i], r[j], 1) != 0)
                    st = nomem(err);
        impostor_total += n - j;
    }
    if (st == ABIS_OK && proto == ABIS_PROTOCOL_FVC) {
        /* Impostor: the first record of each identity against every other's first. */
        for (size_t i = 0; i < n && st == ABIS_OK; i++) {
            if (i > 0 && set->records[r[i - 1]].identity == set->records[r[i]].identity)
                continue;
            for (size_t j = i + 1; j < n && st == ABIS_OK; j++)
                if (set->records[r[j - 1]].identity != set->records[r[j]].identity)
                    if (pairlist_add(out, r[i], r[j], 0) != 0)
                        st = nomem(err);
        }
    } else if (st == ABIS_OK && o && o->max_impostors && impostor_total > o->max_impostors) {
        /* A seeded sample of impostor pairs, drawn with replacement (duplicates
         * are rare when the cap is far below the total, the case it is for). */
        uint64_t s = o->seed ^ 0x1F0A2B3C4D5E6F70ull;
        for (uint64_t k = 0; k < o->max_impostors && st == ABIS_OK;) {
            size_t i = rand_below(&s, n), j = rand_below(&s, n);
            if (set->records[r[i]].identity == set->records[r[j]].identity)
                continue;
            if (pairlist_add(out, r[i < j ? i : j], r[i < j ? j : i], 0) != 0)
                st = nomem(err);
            k++;
        }
    } else if (st == ABIS_OK) {
        for (size_t i = 0; i < n && st == ABIS_OK; i++)
            for (size_t j = i + 1; j < n && st == ABIS_OK; j++)
                if (set->records[r[i]].identity != set->records[r[j]].identity &&
                    pairlist_add(out, r[i], r[j], 0) != 0)
                    st = nomem(err);
    }
    free(r);
    return st;
}

/* ---- comparing a pair list ----------------------------------------------------------- */

#define PAIR_BLOCK 4096 /* pairs per work item */

typedef struct pairs_job {
    const abis_eval_templates *t;
    const abis_eval_pairlist *pl;
    double *score; /* per pair, NaN when not compared */
} pairs_job;

static void pairs_work(pool *p, size_t item, unsigned worker)
{
    (void)worker;
    pairs_job *j = p->job;
    const abis_eval_templates *t = j->t;
    size_t a = item * PAIR_BLOCK, b = a + PAIR_BLOCK;
    if (b > j->pl->n)
        b = j->pl->n;
    uint64_t made = 0;
    for (size_t i = a; i < b; i++) {
        const abis_eval_pair *q = &j->pl->p[i];
        if (!t->tmpl[q->a] || !t->tmpl[q->b]) {
            j->score[i] = NAN;
            continue;
        }
        j->score[i] =
            t->kind->compare(&t->mod, t->tmpl[q->a], t->len[q->a], t->tmpl[q->b], t->len[q->b]);
        made++;
    }
    atomic_fetch_add(&p->done, made);
}

abis_status abis_eval_compare_pairs(const abis_eval_templates *t, const abis_eval_pairlist *pl,
                                    const abis_eval_run_opts *o, abis_eval_scores *out,
                                    double *per_pair, abis_error *err)
{
    double *score = per_pair ? per_pair : malloc((pl->n ? pl->n : 1) * sizeof *score);
    if (!score)
        return nomem(err);
    pairs_job job = {t, pl, score};
    pool p = {.n_items = (pl->n + PAIR_BLOCK - 1) / PAIR_BLOCK, .job = &job, .work = pairs_work};
    abis_status st = pool_run(&p, thread_count(o), o ? o->progress_label : NULL, pl->n, err);
    for (size_t i = 0; i < pl->n && st == ABIS_OK; i++) {
        if (isnan(score[i]))
            continue;
        const abis_eval_pair *q = &pl->p[i];
        uint32_t ia = t->identity[q->a], ib = t->identity[q->b];
        int rc = q->genuine ? abis_eval_add_genuine(out, score[i], ia)
                            : abis_eval_add_impostor(out, score[i], ia, ib);
        if (rc != 0)
            st = nomem(err);
    }
    if (!per_pair)
        free(score);
    return st;
}

/* ---- all pairs without a list ------------------------------------------------------- */

#define ROW_BLOCK 8 /* rows per work item: their templates stay in L1 while a column passes */

typedef struct all_job {
    const abis_eval_templates *t;
    const uint32_t *r; /* usable records by identity */
    size_t n;
    const size_t *gend;          /* gend[i]: end of the identity group of row i */
    const uint64_t *goff, *ioff; /* where row i's genuine / impostor scores go */
    abis_eval_scores *out;
} all_job;

static void all_work(pool *p, size_t item, unsigned worker)
{
    (void)worker;
    all_job *j = p->job;
    const abis_eval_templates *t = j->t;
    size_t i0 = item * ROW_BLOCK, i1 = i0 + ROW_BLOCK;
    if (i1 > j->n)
        i1 = j->n;
    uint64_t made = 0;
    /* Column-major over the block: each column template is read once for up
     * to ROW_BLOCK rows. */
    for (size_t c = i0 + 1; c < j->n; c++) {
        uint32_t rc = j->r[c];
        const void *tc = t->tmpl[rc];
        size_t lc = t->len[rc];
        size_t iend = c < i1 ? c : i1;
        for (size_t i = i0; i < iend; i++) {
            uint32_t ri = j->r[i];
            double s = t->kind->compare(&t->mod, t->tmpl[ri], t->len[ri], tc, lc);
            if (c < j->gend[i]) {
                uint64_t at = j->goff[i] + (c - i - 1);
                j->out->genuine[at] = s;
                j->out->gen_id[at] = t->identity[ri];
            } else {
                uint64_t at = j->ioff[i] + (c - j->gend[i]);
                j->out->impostor[at] = s;
                j->out->imp_id_a[at] = t->identity[ri];
                j->out->imp_id_b[at] = t->identity[rc];
            }
        }
        made += iend - i0;
    }
    atomic_fetch_add(&p->done, made);
}

/* Make room for `extra` more scores in each array of `out`. */
static int reserve_scores(abis_eval_scores *out, uint64_t n_gen, uint64_t n_imp)
{
    size_t g = out->n_genuine + (size_t)n_gen, i = out->n_impostor + (size_t)n_imp;
    if (g > out->cap_genuine) {
        double *a = realloc(out->genuine, g * sizeof *a);
        if (a)
            out->genuine = a;
        uint32_t *b = a ? realloc(out->gen_id, g * sizeof *b) : NULL;
        if (!b)
            return -1;
        out->gen_id = b;
        out->cap_genuine = g;
    }
    if (i > out->cap_impostor) {
        double *a = realloc(out->impostor, i * sizeof *a);
        if (a)
            out->impostor = a;
        uint32_t *b = a ? realloc(out->imp_id_a, i * sizeof *b) : NULL;
        if (b)
            out->imp_id_a = b;
        uint32_t *c = b ? realloc(out->imp_id_b, i * sizeof *c) : NULL;
        if (!c)
            return -1;
        out->imp_id_b = c;
        out->cap_impostor = i;
    }
    return 0;
}

static abis_status run_all(const abis_eval_set *set, const abis_eval_templates *t,
                           const abis_eval_run_opts *o, abis_eval_scores *out, abis_error *err)
{
    size_t n;
    uint32_t *r = usable_by_identity(set, t, o ? o->use : NULL, &n);
    size_t *gend = malloc((n ? n : 1) * sizeof *gend);
    uint64_t *goff = malloc((n ? n : 1) * sizeof *goff);
    uint64_t *ioff = malloc((n ? n : 1) * sizeof *ioff);
    abis_status st = ABIS_OK;
    if (!r || !gend || !goff || !ioff)
        st = nomem(err);
    uint64_t n_gen = 0, n_imp = 0;
    for (size_t i = n; st == ABIS_OK && i-- > 0;)
        gend[i] = (i + 1 < n && set->records[r[i + 1]].identity == set->records[r[i]].identity)
                      ? gend[i + 1]
                      : i + 1;
    for (size_t i = 0; st == ABIS_OK && i < n; i++) {
        goff[i] = out->n_genuine + n_gen;
        ioff[i] = out->n_impostor + n_imp;
        n_gen += gend[i] - i - 1;
        n_imp += n - gend[i];
    }
    if (st == ABIS_OK && reserve_scores(out, n_gen, n_imp) != 0)
        st = abis_error_set(err, ABIS_E_NOMEM,
                            "out of memory for %llu genuine and %llu impostor scores (cap the "
                            "impostors with --max-impostors)",
                            (unsigned long long)n_gen, (unsigned long long)n_imp);
    if (st == ABIS_OK) {
        all_job job = {t, r, n, gend, goff, ioff, out};
        pool p = {.n_items = (n + ROW_BLOCK - 1) / ROW_BLOCK, .job = &job, .work = all_work};
        st = pool_run(&p, thread_count(o), o ? o->progress_label : NULL, n_gen + n_imp, err);
        if (st == ABIS_OK) {
            out->n_genuine += (size_t)n_gen;
            out->n_impostor += (size_t)n_imp;
        }
    }
    free(r);
    free(gend);
    free(goff);
    free(ioff);
    return st;
}

static uint32_t count_identities(const abis_eval_set *set, const abis_eval_templates *t,
                                 const unsigned char *use)
{
    unsigned char *seen = calloc((size_t)set->n_identities + 1, 1);
    uint32_t n = 0;
    if (!seen)
        return set->n_identities;
    for (size_t i = 0; i < set->n_records; i++)
        if ((!use || use[i]) && t->tmpl[i] && !seen[set->records[i].identity]) {
            seen[set->records[i].identity] = 1;
            n++;
        }
    free(seen);
    return n;
}

abis_status abis_eval_run_verification(const abis_eval_set *set, const abis_eval_templates *t,
                                       abis_eval_protocol proto, const abis_eval_run_opts *o,
                                       abis_eval_scores *out, abis_error *err)
{
    out->attempted += t->attempted;
    out->failed_to_enrol += t->fte;
    out->failed_to_acquire += t->fta;
    out->n_identities = count_identities(set, t, o ? o->use : NULL);
    if (proto == ABIS_PROTOCOL_1N)
        return abis_error_set(err, ABIS_E_INTERNAL, "1n is not a verification protocol");
    if (proto == ABIS_PROTOCOL_ALL && !(o && o->max_impostors))
        return run_all(set, t, o, out, err);
    abis_eval_pairlist pl;
    abis_status st = abis_eval_pairs_make(set, proto, o, &pl, err);
    if (st == ABIS_OK)
        st = abis_eval_compare_pairs(t, &pl, o, out, NULL, err);
    abis_eval_pairs_free(&pl);
    return st;
}

/* ---- 1:N ------------------------------------------------------------------------------- */

typedef struct ident_job {
    const abis_eval_templates *t;
    const uint32_t *enrolled; /* record enrolled for identity i, or UINT32_MAX */
    const uint32_t *probe;    /* probe records */
    size_t n_probes;
    size_t k;
    /* results per probe */
    uint32_t *rank;
    double *mate_score, *best_nonmate;
    abis_gallery **galleries; /* one per worker */
} ident_job;

#define PROBE_BLOCK 16

static void ident_work(pool *p, size_t item, unsigned worker)
{
    ident_job *j = p->job;
    const abis_eval_templates *t = j->t;
    /* Each worker keeps to its own gallery: the interface is not thread-safe. */
    abis_gallery *g = j->galleries[worker];
    abis_hit hits[256];
    size_t a = item * PROBE_BLOCK, b = a + PROBE_BLOCK;
    if (b > j->n_probes)
        b = j->n_probes;
    for (size_t i = a; i < b; i++) {
        uint32_t rec = j->probe[i];
        uint32_t id = t->identity[rec];
        size_t n_hits = 0;
        abis_error e = {0};
        if (g->ops->search(g, t->tmpl[rec], t->len[rec], j->k, NULL, hits, &n_hits, &e) !=
            ABIS_OK) {
            atomic_store(&p->failed, 1);
            return;
        }
        uint32_t rank = 0;
        double best_other = -INFINITY, mate = NAN;
        for (size_t h = 0; h < n_hits; h++) {
            if (hits[h].slot == id && rank == 0) {
                rank = (uint32_t)h + 1;
                mate = hits[h].score;
            } else if (hits[h].slot != id && best_other == -INFINITY) {
                best_other = hits[h].score;
            }
        }
        uint32_t er = j->enrolled[id];
        if (er != UINT32_MAX && rank == 0) /* the mate is below the candidate list */
            mate = t->kind->compare(&t->mod, t->tmpl[rec], t->len[rec], t->tmpl[er], t->len[er]);
        j->rank[i] = rank;
        j->mate_score[i] = mate;
        j->best_nonmate[i] = best_other;
    }
    atomic_fetch_add(&p->done, (uint64_t)(b - a));
}

/* A template id for a gallery row: the record's index in its first bytes. */
static abis_id record_tid(uint32_t rec)
{
    abis_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &rec, sizeof rec);
    return id;
}

abis_status abis_eval_run_identification(const abis_eval_set *set, const abis_eval_templates *t,
                                         const abis_eval_run_opts *o, abis_eval_ident *out,
                                         abis_error *err)
{
    const unsigned char *use = o ? o->use : NULL;
    size_t k = o && o->k ? o->k : ABIS_EVAL_MAX_RANK;
    if (k > 256)
        k = 256;
    unsigned threads = thread_count(o);
    uint32_t *enrolled = malloc(((size_t)set->n_identities + 1) * sizeof *enrolled);
    unsigned char *held = calloc(set->n_records ? set->n_records : 1, 1);
    unsigned char *in_gal = calloc(set->n_records ? set->n_records : 1, 1);
    uint32_t *probe = malloc((set->n_records ? set->n_records : 1) * sizeof *probe);
    abis_gallery **gal = calloc(threads, sizeof *gal);
    uint32_t *rank = NULL;
    double *mate = NULL, *other = NULL;
    abis_status st = ABIS_OK;
    if (!enrolled || !held || !in_gal || !probe || !gal) {
        st = nomem(err);
        goto done;
    }
    /* Hold out a share of identities (seeded): their records are non-mated probes. */
    unsigned char *mask_a = in_gal; /* reused below; cleared after the split */
    abis_eval_split_identities(set, use, o ? o->nonmated_share : 0, o ? o->seed : 0, mask_a, held);
    memset(in_gal, 0, set->n_records);
    if (!(o && o->nonmated_share > 0))
        memset(held, 0, set->n_records);
    if (o && o->nonmated_singletons) {
        uint32_t *count = calloc((size_t)set->n_identities + 1, sizeof *count);
        if (!count) {
            st = nomem(err);
            goto done;
        }
        for (size_t i = 0; i < set->n_records; i++)
            count[set->records[i].identity]++;
        for (size_t i = 0; i < set->n_records; i++)
            held[i] = count[set->records[i].identity] == 1;
        free(count);
    }
    for (uint32_t i = 0; i <= set->n_identities; i++)
        enrolled[i] = UINT32_MAX;
    size_t n_probes = 0, gallery_size = 0;
    for (size_t i = 0; i < set->n_records; i++) {
        if ((use && !use[i]) || !t->tmpl[i])
            continue;
        uint32_t id = t->identity[i];
        if (!held[i] && enrolled[id] == UINT32_MAX) {
            enrolled[id] = (uint32_t)i;
            in_gal[i] = 1;
            gallery_size++;
        } else {
            probe[n_probes++] = (uint32_t)i;
        }
    }
    if (gallery_size == 0) {
        st = abis_error_set(err, ABIS_E_INVALID,
                            "1:N needs at least one identity with a valid template to enrol");
        goto done;
    }
    for (unsigned th = 0; th < threads && st == ABIS_OK; th++) {
        st = t->kind->gallery_create(&t->mod, &gal[th], err);
        for (size_t i = 0; i < set->n_records && st == ABIS_OK; i++)
            if (in_gal[i]) {
                abis_id tid = record_tid((uint32_t)i);
                st = gal[th]->ops->add(gal[th], &tid, t->identity[i], t->tmpl[i], t->len[i], err);
            }
    }
    if (st != ABIS_OK)
        goto done;
    rank = malloc((n_probes ? n_probes : 1) * sizeof *rank);
    mate = malloc((n_probes ? n_probes : 1) * sizeof *mate);
    other = malloc((n_probes ? n_probes : 1) * sizeof *other);
    if (!rank || !mate || !other) {
        st = nomem(err);
        goto done;
    }
    ident_job job = {.t = t,
                     .enrolled = enrolled,
                     .probe = probe,
                     .n_probes = n_probes,
                     .k = k,
                     .rank = rank,
                     .mate_score = mate,
                     .best_nonmate = other,
                     .galleries = gal};
    pool p = {
        .n_items = (n_probes + PROBE_BLOCK - 1) / PROBE_BLOCK, .job = &job, .work = ident_work};
    st =
        pool_run(&p, threads, o ? o->progress_label : NULL, (uint64_t)n_probes * gallery_size, err);
    out->gallery_size = gallery_size;
    if (out->max_rank < k)
        out->max_rank = (uint32_t)k;
    for (size_t i = 0; i < n_probes && st == ABIS_OK; i++) {
        uint32_t id = t->identity[probe[i]];
        int rc = enrolled[id] != UINT32_MAX
                     ? abis_eval_add_mated(out, rank[i], mate[i], other[i], id)
                     : abis_eval_add_nonmated(out, other[i], id);
        if (rc != 0)
            st = nomem(err);
    }
done:
    for (unsigned th = 0; gal && th < threads; th++)
        abis_gallery_destroy(gal[th]);
    free(gal);
    free(enrolled);
    free(held);
    free(in_gal);
    free(probe);
    free(rank);
    free(mate);
    free(other);
    return st;
}

/* ---- splitting identities --------------------------------------------------------------- */

void abis_eval_split_identities(const abis_eval_set *set, const unsigned char *use, double share_b,
                                uint64_t seed, unsigned char *a, unsigned char *b)
{
    size_t n_rec = set->n_records;
    memset(a, 0, n_rec);
    memset(b, 0, n_rec);
    uint32_t *ids = malloc(((size_t)set->n_identities + 1) * sizeof *ids);
    unsigned char *side = calloc((size_t)set->n_identities + 1, 1);
    unsigned char *present = calloc((size_t)set->n_identities + 1, 1);
    if (!ids || !side || !present) {
        free(ids);
        free(side);
        free(present);
        for (size_t i = 0; i < n_rec; i++) /* out of memory: everything to a */
            a[i] = !use || use[i];
        return;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < n_rec; i++)
        if ((!use || use[i]) && !present[set->records[i].identity]) {
            present[set->records[i].identity] = 1;
            ids[n++] = set->records[i].identity;
        }
    /* Fisher-Yates with the seed, then the first share_b of them go to b. */
    uint64_t s = seed ^ 0x5EED5EED5EED5EEDull;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)rand_below(&s, i);
        uint32_t x = ids[i - 1];
        ids[i - 1] = ids[j];
        ids[j] = x;
    }
    size_t nb = share_b > 0 ? (size_t)llround(share_b * n) : 0;
    if (share_b > 0 && nb == 0)
        nb = 1;
    if (nb >= n && n > 1)
        nb = n - 1;
    for (size_t i = 0; i < nb && i < n; i++)
        side[ids[i]] = 1;
    for (size_t i = 0; i < n_rec; i++) {
        if (use && !use[i])
            continue;
        if (side[set->records[i].identity])
            b[i] = 1;
        else
            a[i] = 1;
    }
    free(ids);
    free(side);
    free(present);
}
