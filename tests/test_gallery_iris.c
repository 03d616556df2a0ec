/* test_gallery_iris.c: the iris-code gallery (src/gallery/gallery_iris.h)
 * against exhaustive 1:1 comparison with abis_iris_distance. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "gallery/gallery_iris.h"
#include "match/hamming.h"
#include "modality/iris/iris.h"

static uint64_t rng_state = 0xC0FFEE1234ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void random_code(abis_iris_code *c)
{
    for (size_t i = 0; i < ABIS_IRIS_BYTES; i++) {
        c->code[i] = (uint8_t)rnd();
        c->mask[i] = (uint8_t)(rnd() | rnd());
    }
}

/* A noisy copy of c rotated by `shift`: about 1 bit in 8 flipped. */
static void mate_of(const abis_iris_code *c, int shift, abis_iris_code *out)
{
    abis_iris_shift(c, shift, out);
    for (size_t i = 0; i < ABIS_IRIS_BYTES; i++)
        out->code[i] ^= (uint8_t)(rnd() & rnd() & rnd());
}

static abis_id make_id(uint64_t k)
{
    abis_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &k, sizeof k);
    return id;
}

typedef struct entry {
    abis_iris_code code;
    uint32_t slot;
    int live;
} entry;

/* The exhaustive answer: each allowed slot's best live template (first added
 * on ties), slots ordered by score then that template's position. */
static size_t exhaustive(const entry *e, size_t n, const abis_iris_code *probe, size_t k,
                         const abis_bitset *allow, abis_hit *out)
{
    size_t m = 0;
    size_t *pos = malloc((n + 1) * sizeof *pos);
    for (size_t i = 0; i < n; i++) {
        if (!e[i].live || (allow && !abis_bitset_test(allow, e[i].slot)))
            continue;
        float s = (float)(1.0 - abis_iris_distance(probe, &e[i].code, ABIS_IRIS_MAX_SHIFT,
                                                   NULL, NULL));
        size_t j = 0;
        while (j < m && out[j].slot != e[i].slot)
            j++;
        if (j == m) {
            out[m] = (abis_hit){.slot = e[i].slot, .template_id = make_id(i), .score = s};
            pos[m++] = i;
        } else if (s > out[j].score) {
            out[j].score = s;
            out[j].template_id = make_id(i);
            pos[j] = i;
        }
    }
    /* insertion sort by (score desc, pos asc) */
    for (size_t i = 1; i < m; i++)
        for (size_t j = i; j > 0; j--) {
            int before = out[j].score > out[j - 1].score ||
                         (out[j].score == out[j - 1].score && pos[j] < pos[j - 1]);
            if (!before)
                break;
            abis_hit h = out[j];
            out[j] = out[j - 1];
            out[j - 1] = h;
            size_t p = pos[j];
            pos[j] = pos[j - 1];
            pos[j - 1] = p;
        }
    free(pos);
    return m < k ? m : k;
}

static void assert_same_hits(const abis_hit *a, size_t na, const abis_hit *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].slot, b[i].slot);
        assert_memory_equal(&a[i].template_id, &b[i].template_id, sizeof(abis_id));
        assert_true(a[i].score == b[i].score);
    }
}

static void search(abis_gallery *g, const abis_iris_code *probe, size_t k,
                   const abis_bitset *allow, abis_hit *out, size_t *n)
{
    abis_error err = {0};
    assert_status(g->ops->search(g, probe, sizeof *probe, k, allow, out, n, &err), ABIS_OK,
                  &err);
}

/* Builds a gallery of n templates over n/3 slots, some with mates of the
 * probes; removes some; checks searches against the exhaustive answer with
 * and without a filter, for thread counts 1, 2 and 3. */
static void check_gallery(size_t n, int with_removals)
{
    abis_gallery *g;
    abis_error err = {0};
    assert_status(abis_gallery_iris_create(&g, &err), ABIS_OK, &err);
    entry *e = calloc(n + 1, sizeof *e);
    abis_iris_code probes[4];
    for (int p = 0; p < 4; p++)
        random_code(&probes[p]);
    size_t slots = n / 3 + 1;
    for (size_t i = 0; i < n; i++) {
        if (i % 50 == 7)
            mate_of(&probes[i % 4], (int)(rnd() % 15) - 7, &e[i].code);
        else
            random_code(&e[i].code);
        e[i].slot = (uint32_t)(rnd() % slots);
        e[i].live = 1;
        abis_id id = make_id(i);
        assert_status(g->ops->add(g, &id, e[i].slot, &e[i].code, sizeof e[i].code, &err),
                      ABIS_OK, &err);
    }
    size_t live = n;
    if (with_removals) {
        for (size_t i = 0; i < n; i += 5) {
            abis_id id = make_id(i);
            assert_int_equal(g->ops->remove(g, &id), 1);
            assert_int_equal(g->ops->remove(g, &id), 0);
            e[i].live = 0;
            live--;
        }
        uint32_t gone = e[1].slot;
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
            if (e[i].live && e[i].slot == gone) {
                e[i].live = 0;
                c++;
            }
        assert_int_equal(g->ops->remove_slot(g, gone), c);
        live -= c;
    }
    assert_int_equal(g->ops->count(g), live);

    abis_bitset allow = {0};
    for (size_t s = 0; s < slots; s++)
        if (rnd() % 3)
            assert_int_equal(abis_bitset_set(&allow, s), 0);

    size_t ks[] = {1, 5, 40};
    abis_hit *want = malloc((n + 1) * sizeof *want), got[40];
    for (int p = 0; p < 4; p++)
        for (size_t ki = 0; ki < 3; ki++)
            for (int f = 0; f < 2; f++) {
                const abis_bitset *al = f ? &allow : NULL;
                size_t nw = exhaustive(e, n, &probes[p], ks[ki], al, want);
                for (unsigned t = 1; t <= 3; t++) {
                    abis_gallery_iris_set_threads(g, t);
                    size_t ng = 99;
                    search(g, &probes[p], ks[ki], al, got, &ng);
                    assert_same_hits(got, ng, want, nw);
                    for (size_t i = 0; i < ng && al; i++)
                        assert_true(abis_bitset_test(al, got[i].slot));
                }
            }
    abis_bitset_free(&allow);
    free(want);
    free(e);
    abis_gallery_destroy(g);
}

static void test_search_equals_exhaustive_small(void **state)
{
    (void)state;
    check_gallery(300, 0);
}

static void test_search_respects_tombstones_and_filter(void **state)
{
    (void)state;
    check_gallery(500, 1);
}

/* Large enough to be split across threads (2 * 16384 rows and more). */
static void test_thread_count_does_not_change_results(void **state)
{
    (void)state;
    check_gallery(50000, 1);
}

static void test_mate_found_at_rank_one(void **state)
{
    (void)state;
    abis_gallery *g;
    abis_error err = {0};
    assert_status(abis_gallery_iris_create(&g, &err), ABIS_OK, &err);
    abis_iris_code probe, c;
    random_code(&probe);
    for (uint64_t i = 0; i < 1000; i++) {
        if (i == 617)
            mate_of(&probe, -6, &c);
        else
            random_code(&c);
        abis_id id = make_id(i);
        assert_status(g->ops->add(g, &id, (uint32_t)i, &c, sizeof c, &err), ABIS_OK, &err);
    }
    abis_hit hits[3];
    size_t n;
    search(g, &probe, 3, NULL, hits, &n);
    assert_int_equal(n, 3);
    assert_int_equal(hits[0].slot, 617);
    assert_true(hits[0].score > 0.7f);
    assert_true(hits[1].score < 0.7f);
    abis_gallery_destroy(g);
}

static void test_empty_and_one_element_gallery(void **state)
{
    (void)state;
    abis_gallery *g;
    abis_error err = {0};
    assert_status(abis_gallery_iris_create(&g, &err), ABIS_OK, &err);
    abis_iris_code probe, c;
    random_code(&probe);
    abis_hit hits[5];
    size_t n = 9;
    search(g, &probe, 5, NULL, hits, &n);
    assert_int_equal(n, 0);
    random_code(&c);
    abis_id id = make_id(42);
    assert_status(g->ops->add(g, &id, 3, &c, sizeof c, &err), ABIS_OK, &err);
    search(g, &probe, 5, NULL, hits, &n);
    assert_int_equal(n, 1);
    assert_int_equal(hits[0].slot, 3);
    assert_memory_equal(&hits[0].template_id, &id, sizeof id);
    assert_true(hits[0].score ==
                (float)(1.0 - abis_iris_distance(&probe, &c, ABIS_IRIS_MAX_SHIFT, NULL, NULL)));
    search(g, &probe, 0, NULL, hits, &n);
    assert_int_equal(n, 0);
    abis_bitset none = {0};
    search(g, &probe, 5, &none, hits, &n);
    assert_int_equal(n, 0);
    /* re-adding an id replaces its template */
    assert_status(g->ops->add(g, &id, 4, &probe, sizeof probe, &err), ABIS_OK, &err);
    assert_int_equal(g->ops->count(g), 1);
    search(g, &probe, 5, NULL, hits, &n);
    assert_int_equal(n, 1);
    assert_int_equal(hits[0].slot, 4);
    assert_int_equal(g->ops->remove(g, &id), 1);
    assert_int_equal(g->ops->count(g), 0);
    search(g, &probe, 5, NULL, hits, &n);
    assert_int_equal(n, 0);
    abis_gallery_destroy(g);
}

static void test_wrong_template_size_refused(void **state)
{
    (void)state;
    abis_gallery *g;
    abis_error err = {0};
    assert_status(abis_gallery_iris_create(&g, &err), ABIS_OK, &err);
    uint8_t buf[600] = {0};
    abis_id id = make_id(1);
    assert_int_equal(g->ops->add(g, &id, 0, buf, 256, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "256 bytes"));
    abis_hit h;
    size_t n;
    assert_int_equal(g->ops->search(g, buf, 600, 1, NULL, &h, &n, &err), ABIS_E_INVALID);
    abis_gallery_destroy(g);
}

/* The scalar kernel (ABIS_KERNEL=scalar's choice) gives the same hits. */
static void test_scalar_kernel_gives_same_hits(void **state)
{
    (void)state;
    abis_gallery *g;
    abis_error err = {0};
    assert_status(abis_gallery_iris_create(&g, &err), ABIS_OK, &err);
    abis_iris_code probe, c;
    random_code(&probe);
    for (uint64_t i = 0; i < 400; i++) {
        if (i % 97 == 3)
            mate_of(&probe, (int)(i % 15) - 7, &c);
        else
            random_code(&c);
        abis_id id = make_id(i);
        assert_status(g->ops->add(g, &id, (uint32_t)(i / 2), &c, sizeof c, &err), ABIS_OK, &err);
    }
    abis_hit a[20], b[20];
    size_t na, nb;
    search(g, &probe, 20, NULL, a, &na);
    abis_hamming_force_scalar(1);
    search(g, &probe, 20, NULL, b, &nb);
    abis_hamming_force_scalar(0);
    assert_same_hits(a, na, b, nb);
    abis_gallery_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_equals_exhaustive_small),
        cmocka_unit_test(test_search_respects_tombstones_and_filter),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_mate_found_at_rank_one),
        cmocka_unit_test(test_empty_and_one_element_gallery),
        cmocka_unit_test(test_wrong_template_size_refused),
        cmocka_unit_test(test_scalar_kernel_gives_same_hits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
