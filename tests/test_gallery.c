/* test_gallery.c: the vector gallery (src/gallery/gallery_vector.h), checked
 * against a brute-force reference kept beside it that quantises with the same
 * function and computes int8 scores with the scalar kernel, so answers must
 * be identical: same subjects, same templates, same float scores. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gallery/gallery_vector.h"
#include "match/int8.h"

/* ---- the reference: every template ever added, in insertion order ---------- */

typedef struct ref_tmpl {
    abis_id id;
    uint32_t slot;
    int live;
    int8_t *q; /* quantised */
    float scale;
} ref_tmpl;

typedef struct ref {
    size_t dim, n, cap;
    ref_tmpl *t;
} ref;

static abis_id make_id(uint64_t k)
{
    /* deliberately structured (a counter), to exercise the map's hashing */
    abis_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &k, sizeof k);
    return id;
}

static void ref_init(ref *r, size_t dim)
{
    memset(r, 0, sizeof *r);
    r->dim = dim;
}

static void ref_free(ref *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->t[i].q);
    free(r->t);
}

/* Add to both the gallery and the reference (a re-used id replaces). */
static void add_both(abis_gallery *g, ref *r, abis_id id, uint32_t slot, const float *v)
{
    abis_error err = {0};
    assert_status(g->ops->add(g, &id, slot, v, r->dim * sizeof(float), &err), ABIS_OK, &err);
    for (size_t i = 0; i < r->n; i++)
        if (r->t[i].live && memcmp(&r->t[i].id, &id, sizeof id) == 0)
            r->t[i].live = 0;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->t = realloc(r->t, r->cap * sizeof *r->t);
        assert_non_null(r->t);
    }
    ref_tmpl *t = &r->t[r->n++];
    t->id = id;
    t->slot = slot;
    t->live = 1;
    t->q = malloc(r->dim);
    assert_non_null(t->q);
    t->scale = abis_i8_quantize(v, r->dim, t->q);
}

static size_t ref_count(const ref *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->t[i].live;
    return n;
}

static int ref_remove(ref *r, abis_id id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->t[i].live && memcmp(&r->t[i].id, &id, sizeof id) == 0) {
            r->t[i].live = 0;
            return 1;
        }
    return 0;
}

static size_t ref_remove_slot(ref *r, uint32_t slot)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->t[i].live && r->t[i].slot == slot) {
            r->t[i].live = 0;
            n++;
        }
    return n;
}

typedef struct ref_hit {
    abis_hit hit;
    size_t order; /* insertion index of the slot's best template */
} ref_hit;

static int ref_hit_cmp(const void *pa, const void *pb)
{
    const ref_hit *a = pa, *b = pb;
    if (a->hit.score != b->hit.score)
        return a->hit.score > b->hit.score ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Brute force: best template per allowed slot (earliest on ties), sorted
 * best-first (earliest on ties), cut at k. */
static size_t ref_search(const ref *r, const float *qf, size_t k, const abis_bitset *allow,
                         abis_hit *out)
{
    int8_t *q = malloc(r->dim);
    assert_non_null(q);
    float ps = abis_i8_quantize(qf, r->dim, q);
    uint32_t max_slot = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->t[i].slot > max_slot)
            max_slot = r->t[i].slot;
    ref_hit *best = calloc((size_t)max_slot + 1, sizeof *best);
    unsigned char *have = calloc((size_t)max_slot + 1, 1);
    assert_true(best && have);
    for (size_t i = 0; i < r->n; i++) {
        const ref_tmpl *t = &r->t[i];
        if (!t->live || (allow && !abis_bitset_test(allow, t->slot)))
            continue;
        float s = abis_i8_score(abis_i8_dot_scalar(q, t->q, r->dim), ps, t->scale);
        if (!have[t->slot] || s > best[t->slot].hit.score) {
            best[t->slot] = (ref_hit){{t->slot, t->id, s}, i};
            have[t->slot] = 1;
        }
    }
    size_t nh = 0;
    for (uint32_t sl = 0; sl <= max_slot; sl++)
        if (have[sl])
            best[nh++] = best[sl];
    qsort(best, nh, sizeof *best, ref_hit_cmp);
    size_t n = nh < k ? nh : k;
    for (size_t i = 0; i < n; i++)
        out[i] = best[i].hit;
    free(best);
    free(have);
    free(q);
    return n;
}

/* Search the gallery and the reference and require identical answers. */
static size_t check_search(abis_gallery *g, const ref *r, const float *q, size_t k,
                           const abis_bitset *allow)
{
    abis_hit *got = calloc(k + 1, sizeof *got), *want = calloc(k + 1, sizeof *want);
    assert_non_null(got);
    assert_non_null(want);
    size_t n = 12345;
    abis_error err = {0};
    assert_status(g->ops->search(g, q, r->dim * sizeof(float), k, allow, got, &n, &err), ABIS_OK,
                  &err);
    size_t nw = ref_search(r, q, k, allow, want);
    if (n != nw)
        fail_msg("k=%zu: %zu hits, brute force %zu", k, n, nw);
    for (size_t i = 0; i < n; i++) {
        if (got[i].slot != want[i].slot || got[i].score != want[i].score ||
            memcmp(&got[i].template_id, &want[i].template_id, sizeof(abis_id)) != 0)
            fail_msg("k=%zu hit %zu: slot %u score %.9g, brute force slot %u score %.9g", k, i,
                     got[i].slot, got[i].score, want[i].slot, want[i].score);
        if (i > 0)
            assert_true(got[i - 1].score >= got[i].score);
    }
    free(got);
    free(want);
    return n;
}

/* Compaction in the writer's call, so tests see it deterministically. */
static abis_gallery *make_gallery(size_t dim)
{
    abis_vector_config c;
    abis_vector_config_default(&c);
    c.background = 0;
    abis_gallery *g = NULL;
    abis_error err = {0};
    assert_status(abis_gallery_vector_create_with(dim, &c, &g, &err), ABIS_OK, &err);
    assert_non_null(g);
    return g;
}

/* Enrol `subjects` synthetic subjects, 1 to 3 samples each, slot = subject. */
static uint64_t enrol_synthetic(abis_gallery *g, ref *r, uint32_t subjects, uint64_t next_id)
{
    float *v = malloc(r->dim * sizeof *v);
    for (uint32_t s = 0; s < subjects; s++) {
        int samples = 1 + (int)(s % 3);
        for (int k = 0; k < samples; k++) {
            abis_synth_sample(5, s, (uint64_t)k, ABIS_SYNTH_SIGMA, v, r->dim);
            add_both(g, r, make_id(next_id++), s, v);
        }
    }
    free(v);
    return next_id;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_create_refuses_zero_dimension(void **state)
{
    (void)state;
    abis_gallery *g = (abis_gallery *)1;
    abis_error err = {0};
    assert_int_equal(abis_gallery_vector_create(0, &g, &err), ABIS_E_INVALID);
    assert_null(g);
    abis_gallery_destroy(NULL);
}

static void test_empty_gallery_finds_nothing(void **state)
{
    (void)state;
    abis_gallery *g = make_gallery(16);
    float q[16];
    abis_synth_identity(1, 1, q, 16);
    abis_hit hits[4];
    size_t n = 99;
    abis_error err = {0};
    assert_status(g->ops->search(g, q, sizeof q, 4, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 0);
    assert_int_equal(g->ops->count(g), 0);
    abis_id id = make_id(1);
    assert_int_equal(g->ops->remove(g, &id), 0);
    assert_int_equal(g->ops->remove_slot(g, 3), 0);
    abis_gallery_destroy(g);
}

static void test_one_element_gallery(void **state)
{
    (void)state;
    abis_gallery *g = make_gallery(64);
    ref r;
    ref_init(&r, 64);
    float v[64];
    abis_synth_identity(1, 7, v, 64);
    add_both(g, &r, make_id(7), 3, v);
    assert_int_equal(g->ops->count(g), 1);
    abis_hit hits[5];
    size_t n = 0;
    abis_error err = {0};
    assert_status(g->ops->search(g, v, sizeof v, 5, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 1);
    assert_int_equal(hits[0].slot, 3);
    assert_float_equal(hits[0].score, 1.0f, 1e-2); /* int8 estimate of 1 (docs/search.md) */
    abis_id id = make_id(7);
    assert_memory_equal(&hits[0].template_id, &id, sizeof id);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_k_zero_returns_nothing(void **state)
{
    (void)state;
    abis_gallery *g = make_gallery(32);
    ref r;
    ref_init(&r, 32);
    enrol_synthetic(g, &r, 10, 0);
    float q[32];
    abis_synth_identity(5, 1, q, 32);
    size_t n = 99;
    abis_error err = {0};
    assert_status(g->ops->search(g, q, sizeof q, 0, NULL, NULL, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 0);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_wrong_lengths_are_refused(void **state)
{
    (void)state;
    abis_gallery *g = make_gallery(32);
    float v[33] = {1};
    abis_id id = make_id(1);
    abis_error err = {0};
    assert_int_equal(g->ops->add(g, &id, 0, v, 33 * sizeof(float), &err), ABIS_E_INVALID);
    assert_string_equal(err.message,
                        "gallery: template has 132 bytes, this gallery expects 128 (32 float32 "
                        "values)");
    assert_int_equal(g->ops->count(g), 0);
    abis_hit h[1];
    size_t n = 99;
    assert_int_equal(g->ops->search(g, v, 31 * sizeof(float), 1, NULL, h, &n, &err),
                     ABIS_E_INVALID);
    assert_int_equal(n, 0);
    abis_gallery_destroy(g);
}

static void test_exact_top_k_equals_brute_force(void **state)
{
    (void)state;
    static const size_t dims[] = {7, 100, 128, 512};
    static const size_t ks[] = {1, 2, 5, 10, 50, 299, 300, 301, 1000};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        size_t dim = dims[d];
        abis_gallery *g = make_gallery(dim);
        ref r;
        ref_init(&r, dim);
        enrol_synthetic(g, &r, 300, 0);
        assert_int_equal(g->ops->count(g), ref_count(&r));
        float *q = malloc(dim * sizeof *q);
        for (uint64_t p = 0; p < 8; p++) {
            /* genuine probes (a fresh sample) and impostor probes (unseen people) */
            if (p % 2)
                abis_synth_sample(5, p * 37, 99, ABIS_SYNTH_SIGMA, q, dim);
            else
                abis_synth_identity(6, p, q, dim);
            for (size_t k = 0; k < sizeof ks / sizeof *ks; k++)
                check_search(g, &r, q, ks[k], NULL);
        }
        free(q);
        abis_gallery_destroy(g);
        ref_free(&r);
    }
}

static void test_k_larger_than_count(void **state)
{
    (void)state;
    abis_gallery *g = make_gallery(32);
    ref r;
    ref_init(&r, 32);
    enrol_synthetic(g, &r, 4, 0); /* 4 subjects, 1+2+3+1 = 7 templates */
    float q[32];
    abis_synth_identity(5, 2, q, 32);
    assert_int_equal(check_search(g, &r, q, 100, NULL), 4);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_best_template_per_subject(void **state)
{
    (void)state;
    enum { D = 128 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    float a[D], b[D], c[D];
    abis_synth_sample(1, 1, 0, 0.8, a, D);
    abis_synth_sample(1, 1, 1, 0.8, b, D);
    abis_synth_sample(1, 1, 2, 0.8, c, D);
    add_both(g, &r, make_id(10), 4, a);
    add_both(g, &r, make_id(11), 4, b);
    add_both(g, &r, make_id(12), 4, c);
    enrol_synthetic(g, &r, 3, 100); /* other subjects in slots 0..2 */
    abis_hit hits[10];
    size_t n = 0;
    abis_error err = {0};
    /* probing with b itself: subject 4 comes first, through template 11, once */
    assert_status(g->ops->search(g, b, sizeof b, 10, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 4);
    assert_int_equal(hits[0].slot, 4);
    abis_id want = make_id(11);
    assert_memory_equal(&hits[0].template_id, &want, sizeof want);
    assert_float_equal(hits[0].score, 1.0f, 1e-2);
    for (size_t i = 1; i < n; i++)
        assert_int_not_equal(hits[i].slot, 4);
    check_search(g, &r, b, 10, NULL);
    check_search(g, &r, c, 1, NULL);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_ties_go_to_the_earlier_template(void **state)
{
    (void)state;
    enum { D = 16 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    float v[D];
    abis_synth_identity(2, 2, v, D);
    add_both(g, &r, make_id(1), 9, v); /* same vector: slot 9, then slot 3, then slot 9 */
    add_both(g, &r, make_id(2), 3, v);
    add_both(g, &r, make_id(3), 9, v);
    abis_hit hits[2];
    size_t n = 0;
    abis_error err = {0};
    assert_status(g->ops->search(g, v, sizeof v, 2, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 2);
    assert_int_equal(hits[0].slot, 9);
    abis_id first = make_id(1);
    assert_memory_equal(&hits[0].template_id, &first, sizeof first);
    assert_int_equal(hits[1].slot, 3);
    /* k = 1: slot 3 ties with slot 9 but came later */
    assert_status(g->ops->search(g, v, sizeof v, 1, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 1);
    assert_int_equal(hits[0].slot, 9);
    assert_memory_equal(&hits[0].template_id, &first, sizeof first);
    /* without the third template: slot 3 must still not displace slot 9 */
    abis_id third = make_id(3);
    assert_int_equal(g->ops->remove(g, &third), 1);
    assert_status(g->ops->search(g, v, sizeof v, 1, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 1);
    assert_int_equal(hits[0].slot, 9);
    assert_memory_equal(&hits[0].template_id, &first, sizeof first);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_filter_excludes_slots(void **state)
{
    (void)state;
    enum { D = 64 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    enrol_synthetic(g, &r, 200, 0);
    abis_bitset allow = {0};
    abis_synth_rng rng = {3};
    for (uint32_t s = 0; s < 150; s++) /* slots 150..199 lie beyond the bitset: excluded */
        if (abis_synth_next(&rng) % 3)
            assert_int_equal(abis_bitset_set(&allow, s), 0);
    abis_bitset_clear(&allow, 17);
    float q[D];
    abis_hit hits[300];
    for (uint64_t p = 0; p < 10; p++) {
        abis_synth_sample(5, p * 20 + 17 * (p == 0), 50, ABIS_SYNTH_SIGMA, q, D);
        size_t n = check_search(g, &r, q, 300, &allow);
        size_t m = 0;
        abis_error err = {0};
        assert_status(g->ops->search(g, q, sizeof q, 300, &allow, hits, &m, &err), ABIS_OK, &err);
        assert_int_equal(m, n);
        for (size_t i = 0; i < m; i++) {
            assert_true(abis_bitset_test(&allow, hits[i].slot));
            assert_true(hits[i].slot < 150 && hits[i].slot != 17);
        }
        check_search(g, &r, q, 3, &allow);
    }
    /* an empty filter lets nothing through */
    abis_bitset none = {0};
    size_t n = 99;
    abis_error err = {0};
    assert_status(g->ops->search(g, q, sizeof q, 10, &none, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 0);
    abis_bitset_free(&allow);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_tombstoned_templates_never_returned(void **state)
{
    (void)state;
    enum { D = 64 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    uint64_t next = enrol_synthetic(g, &r, 100, 0);
    size_t before = g->ops->count(g);
    /* remove a few (under a quarter: no compaction yet) */
    for (uint64_t id = 0; id < next; id += 9) {
        abis_id t = make_id(id);
        assert_int_equal(g->ops->remove(g, &t), 1);
        assert_int_equal(g->ops->remove(g, &t), 0); /* already gone */
        ref_remove(&r, t);
    }
    assert_int_equal(g->ops->count(g), ref_count(&r));
    assert_true(g->ops->count(g) < before);
    float q[D];
    abis_hit hits[200];
    for (uint64_t p = 0; p < 20; p++) {
        abis_synth_sample(5, p, 0, 0.0, q, D); /* exactly a removed template for p = 0 */
        check_search(g, &r, q, 200, NULL);
        size_t n = 0;
        abis_error err = {0};
        assert_status(g->ops->search(g, q, sizeof q, 200, NULL, hits, &n, &err), ABIS_OK, &err);
        for (size_t i = 0; i < n; i++) {
            uint64_t k;
            memcpy(&k, hits[i].template_id.bytes, sizeof k);
            assert_true(k % 9 != 0);
        }
    }
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_remove_slot_removes_every_template_of_a_subject(void **state)
{
    (void)state;
    enum { D = 32 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    enrol_synthetic(g, &r, 30, 0);
    size_t before = g->ops->count(g);
    assert_int_equal(g->ops->remove_slot(g, 5), 3); /* subject 5 has 1 + 5 % 3 = 3 samples */
    assert_int_equal(ref_remove_slot(&r, 5), 3);
    assert_int_equal(g->ops->remove_slot(g, 5), 0);
    assert_int_equal(g->ops->count(g), before - 3);
    float q[D];
    abis_synth_sample(5, 5, 0, 0.0, q, D);
    abis_hit hits[40];
    size_t n = 0;
    abis_error err = {0};
    assert_status(g->ops->search(g, q, sizeof q, 40, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 29);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(hits[i].slot, 5);
    check_search(g, &r, q, 40, NULL);
    /* the removed ids are gone from the id map too */
    /* (subject 5's templates are ids 9, 10, 11: 1 + 2 + 3 + 1 + 2 come before) */
    for (uint64_t id = 9; id <= 11; id++) {
        abis_id t = make_id(id);
        assert_int_equal(g->ops->remove(g, &t), 0);
    }
    abis_id t12 = make_id(12);
    assert_int_equal(g->ops->remove(g, &t12), 1);
    ref_remove(&r, t12);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_compaction_keeps_results(void **state)
{
    (void)state;
    enum { D = 96 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    uint64_t next = enrol_synthetic(g, &r, 400, 0);
    float q[D];
    /* remove half the templates one by one: compaction runs several times */
    for (uint64_t id = 0; id < next; id += 2) {
        abis_id t = make_id(id);
        assert_int_equal(g->ops->remove(g, &t), 1);
        ref_remove(&r, t);
        if (id % 50 == 0) {
            abis_synth_sample(5, id / 2, 7, ABIS_SYNTH_SIGMA, q, D);
            check_search(g, &r, q, 20, NULL);
        }
    }
    assert_int_equal(g->ops->count(g), ref_count(&r));
    /* the map survived: every odd id can still be removed, the even ones not */
    for (uint64_t id = 1; id < 40; id += 2) {
        abis_id odd = make_id(id), even = make_id(id - 1);
        assert_int_equal(g->ops->remove(g, &even), 0);
        assert_int_equal(g->ops->remove(g, &odd), 1);
        ref_remove(&r, odd);
    }
    /* and adding after compaction works */
    next = enrol_synthetic(g, &r, 50, next);
    for (uint64_t p = 0; p < 10; p++) {
        abis_synth_sample(5, p * 40, 9, ABIS_SYNTH_SIGMA, q, D);
        check_search(g, &r, q, 30, NULL);
        check_search(g, &r, q, 1000, NULL);
    }
    assert_int_equal(g->ops->count(g), ref_count(&r));
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_re_adding_an_id_replaces_the_template(void **state)
{
    (void)state;
    enum { D = 32 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    float a[D], b[D];
    abis_synth_identity(8, 1, a, D);
    abis_synth_identity(8, 2, b, D);
    add_both(g, &r, make_id(1), 0, a);
    add_both(g, &r, make_id(1), 1, b);
    assert_int_equal(g->ops->count(g), 1);
    abis_hit hits[2];
    size_t n = 0;
    abis_error err = {0};
    assert_status(g->ops->search(g, a, sizeof a, 2, NULL, hits, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 1);
    assert_int_equal(hits[0].slot, 1);
    check_search(g, &r, a, 2, NULL);
    abis_gallery_destroy(g);
    ref_free(&r);
}

/* A long random mix of every operation, checked against the reference. */
static void test_random_operations_match_reference(void **state)
{
    (void)state;
    enum { D = 24 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    abis_synth_rng rng = {2024};
    float v[D];
    abis_bitset allow = {0};
    for (uint32_t s = 0; s < 60; s++)
        if (s % 4)
            assert_int_equal(abis_bitset_set(&allow, s), 0);
    for (int step = 0; step < 4000; step++) {
        uint64_t op = abis_synth_next(&rng) % 100;
        uint64_t id = abis_synth_next(&rng) % 600; /* ids collide: replacement too */
        uint32_t slot = (uint32_t)(abis_synth_next(&rng) % 60);
        if (op < 55) {
            abis_synth_sample(11, slot, id, ABIS_SYNTH_SIGMA, v, D);
            add_both(g, &r, make_id(id), slot, v);
        } else if (op < 85) {
            abis_id t = make_id(id);
            assert_int_equal(g->ops->remove(g, &t), ref_remove(&r, t));
        } else if (op < 88) {
            assert_int_equal(g->ops->remove_slot(g, slot), ref_remove_slot(&r, slot));
        } else {
            abis_synth_sample(11, slot, 1000 + id, ABIS_SYNTH_SIGMA, v, D);
            size_t k = 1 + abis_synth_next(&rng) % 12;
            check_search(g, &r, v, k, (op % 2) ? &allow : NULL);
        }
        assert_int_equal(g->ops->count(g), ref_count(&r));
    }
    abis_bitset_free(&allow);
    abis_gallery_destroy(g);
    ref_free(&r);
}

static void test_scalar_kernel_gives_same_answer(void **state)
{
    (void)state;
    enum { D = 128 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    enrol_synthetic(g, &r, 100, 0);
    float q[D];
    abis_synth_sample(5, 42, 77, ABIS_SYNTH_SIGMA, q, D);
    abis_i8_force_scalar(1);
    check_search(g, &r, q, 10, NULL);
    abis_hit hs[10], hv[10];
    size_t ns = 0, nv = 0;
    abis_error err = {0};
    assert_status(g->ops->search(g, q, sizeof q, 10, NULL, hs, &ns, &err), ABIS_OK, &err);
    abis_i8_force_scalar(0);
    assert_status(g->ops->search(g, q, sizeof q, 10, NULL, hv, &nv, &err), ABIS_OK, &err);
    assert_int_equal(ns, 10);
    assert_int_equal(nv, 10);
    assert_int_equal(hs[0].slot, 42);
    assert_memory_equal(hs, hv, sizeof hs); /* identical integers, identical floats */
    abis_gallery_destroy(g);
    ref_free(&r);
}

/* More rows than one task and one chunk, so the scan is split across threads
 * and chunk boundaries; every thread count gives the same answer. */
static void test_large_gallery_threads_and_chunks(void **state)
{
    (void)state;
    enum { D = 16, SUBJECTS = 20000 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    enrol_synthetic(g, &r, SUBJECTS, 0); /* 40,000 templates: 3 chunks, 5 tasks */
    float q[D];
    for (unsigned threads = 0; threads <= 3; threads++) {
        abis_gallery_vector_set_threads(g, threads);
        for (uint64_t p = 0; p < 3; p++) {
            abis_synth_sample(5, p * 6007, 3, ABIS_SYNTH_SIGMA, q, D);
            check_search(g, &r, q, 25, NULL);
        }
        /* a batch split over threads and tasks: each request its own answer */
        enum { NB = 9 };
        float qb[NB][D];
        abis_hit out[NB][25], want[25];
        abis_search_req req[NB];
        for (size_t i = 0; i < NB; i++) {
            abis_synth_sample(5, i * 2111, 4, ABIS_SYNTH_SIGMA, qb[i], D);
            req[i] = (abis_search_req){qb[i], sizeof qb[i], 25, NULL, out[i], 0};
        }
        abis_error err = {0};
        for (int rep = 0; rep < 5; rep++) { /* how tasks fall on threads varies */
            assert_status(g->ops->search_batch(g, req, NB, NULL, &err), ABIS_OK, &err);
            for (size_t i = 0; i < NB; i++) {
                size_t nw = ref_search(&r, qb[i], req[i].k, NULL, want);
                assert_int_equal(req[i].n_out, nw);
                assert_memory_equal(out[i], want, nw * sizeof *want);
            }
        }
    }
    abis_gallery_destroy(g);
    ref_free(&r);
}

/* A batch answers each request as its own search would: different k,
 * filters, probes, more requests than one pass takes. */
static void test_batch_equals_single_searches(void **state)
{
    (void)state;
    enum { D = 40, NREQ = 150 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    enrol_synthetic(g, &r, 3000, 0);
    for (uint64_t id = 0; id < 6000; id += 7) { /* some tombstones */
        abis_id t = make_id(id);
        if (g->ops->remove(g, &t))
            ref_remove(&r, t);
    }
    abis_bitset odd = {0};
    for (uint32_t s = 1; s < 3000; s += 2)
        assert_int_equal(abis_bitset_set(&odd, s), 0);
    float *probes = malloc(sizeof(float) * D * NREQ);
    abis_search_req *reqs = calloc(NREQ, sizeof *reqs);
    abis_hit *want = malloc(sizeof *want * 40);
    assert_true(probes && reqs && want);
    for (size_t i = 0; i < NREQ; i++) {
        abis_synth_sample(5, i * 19, 5, ABIS_SYNTH_SIGMA, probes + i * D, D);
        reqs[i] = (abis_search_req){probes + i * D, D * sizeof(float), 1 + i % 40,
                                    i % 3 ? NULL : &odd, malloc(sizeof(abis_hit) * 40), 999};
        assert_non_null(reqs[i].out);
    }
    abis_error err = {0};
    assert_status(g->ops->search_batch(g, reqs, NREQ, NULL, &err), ABIS_OK, &err);
    for (size_t i = 0; i < NREQ; i++) {
        size_t nw = ref_search(&r, reqs[i].probe, reqs[i].k, reqs[i].allow, want);
        assert_int_equal(reqs[i].n_out, nw);
        for (size_t h = 0; h < nw; h++) {
            assert_int_equal(reqs[i].out[h].slot, want[h].slot);
            assert_true(reqs[i].out[h].score == want[h].score);
            assert_memory_equal(&reqs[i].out[h].template_id, &want[h].template_id, sizeof(abis_id));
        }
        free(reqs[i].out);
    }
    abis_bitset_free(&odd);
    free(probes);
    free(reqs);
    free(want);
    abis_gallery_destroy(g);
    ref_free(&r);
}

/* The float32-probe path scores the float probe against the int8 rows: its
 * scores agree with the scalar float reference to float rounding, and its
 * mates are the exact search's. */
static void test_float_probe_path(void **state)
{
    (void)state;
    enum { D = 100 };
    abis_gallery *g = make_gallery(D);
    ref r;
    ref_init(&r, D);
    enrol_synthetic(g, &r, 500, 0);
    float q[D];
    abis_search_opts o = {.probe_f32 = 1};
    for (uint64_t p = 0; p < 20; p++) {
        abis_synth_sample(5, p * 23, 8, ABIS_SYNTH_SIGMA, q, D);
        abis_hit h[5];
        size_t n = 0;
        abis_error err = {0};
        assert_status(abis_gallery_search(g, q, sizeof q, 5, NULL, &o, h, &n, &err), ABIS_OK, &err);
        assert_int_equal(n, 5);
        assert_int_equal(h[0].slot, p * 23);
        for (size_t i = 0; i < n; i++) {
            const ref_tmpl *t = NULL;
            for (size_t j = 0; j < r.n; j++)
                if (r.t[j].live && !memcmp(&r.t[j].id, &h[i].template_id, sizeof(abis_id)))
                    t = &r.t[j];
            assert_non_null(t);
            float want;
            abis_i8_scan_f32_scalar(q, D, t->q, D, NULL, 1, &want);
            assert_float_equal(h[i].score, want * t->scale, 1e-5);
            if (i)
                assert_true(h[i - 1].score >= h[i].score);
        }
    }
    abis_gallery_destroy(g);
    ref_free(&r);
}

/* Compaction in the background thread leaves the answers unchanged. */
static void test_background_compaction(void **state)
{
    (void)state;
    enum { D = 48 };
    abis_gallery *g = NULL;
    abis_error err = {0};
    assert_status(abis_gallery_vector_create(D, &g, &err), ABIS_OK, &err);
    ref r;
    ref_init(&r, D);
    uint64_t next = enrol_synthetic(g, &r, 600, 0);
    for (uint64_t id = 0; id < next; id += 2) {
        abis_id t = make_id(id);
        assert_int_equal(g->ops->remove(g, &t), 1);
        ref_remove(&r, t);
    }
    float q[D];
    abis_synth_sample(5, 301, 4, ABIS_SYNTH_SIGMA, q, D);
    check_search(g, &r, q, 10, NULL); /* whether or not compaction ran yet */
    assert_status(abis_gallery_vector_sync(g, &err), ABIS_OK, &err);
    abis_vector_stats st;
    abis_gallery_vector_stats(g, &st);
    assert_int_equal(st.live, ref_count(&r));
    /* compacted: half the rows died, at most a quarter of what is left is dead */
    assert_true(st.rows < next);
    assert_true((st.rows - st.live) * 4 <= st.rows);
    check_search(g, &r, q, 10, NULL);
    abis_gallery_destroy(g);
    ref_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_refuses_zero_dimension),
        cmocka_unit_test(test_empty_gallery_finds_nothing),
        cmocka_unit_test(test_one_element_gallery),
        cmocka_unit_test(test_k_zero_returns_nothing),
        cmocka_unit_test(test_wrong_lengths_are_refused),
        cmocka_unit_test(test_exact_top_k_equals_brute_force),
        cmocka_unit_test(test_k_larger_than_count),
        cmocka_unit_test(test_best_template_per_subject),
        cmocka_unit_test(test_ties_go_to_the_earlier_template),
        cmocka_unit_test(test_filter_excludes_slots),
        cmocka_unit_test(test_tombstoned_templates_never_returned),
        cmocka_unit_test(test_remove_slot_removes_every_template_of_a_subject),
        cmocka_unit_test(test_compaction_keeps_results),
        cmocka_unit_test(test_re_adding_an_id_replaces_the_template),
        cmocka_unit_test(test_random_operations_match_reference),
        cmocka_unit_test(test_scalar_kernel_gives_same_answer),
        cmocka_unit_test(test_large_gallery_threads_and_chunks),
        cmocka_unit_test(test_batch_equals_single_searches),
        cmocka_unit_test(test_float_probe_path),
        cmocka_unit_test(test_background_compaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
