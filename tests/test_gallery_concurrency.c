/* test_gallery_concurrency.c: the vector gallery under concurrent inserts,
 * deletes and searches, exact and pre-selected, while the background thread
 * builds the graph index and compacts tombstones (also run under
 * ThreadSanitizer: make test-tsan).
 *
 * Writers publish what they completed through atomic counters; a searcher
 * reads a counter before it searches and then requires that every removal
 * counted is absent from its results and that the last insert counted is
 * found: a write is visible to every search that starts after it returned. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gallery/gallery_vector.h"

enum {
    D = 32,
    BASE = 3000,    /* templates present at the start: ids and slots 0..BASE-1 */
    INSERTS = 400,  /* new templates: ids and slots BASE.. */
    REMOVES = 900,  /* ids 0, 2, 4, ... removed one by one (compaction runs) */
    SEARCHES = 120, /* per searcher */
    SEED = 77
};

typedef struct shared {
    abis_gallery *g;
    atomic_size_t inserted; /* inserts completed: ids BASE .. BASE + inserted - 1 */
    atomic_size_t removed;  /* removals completed: ids 0, 2, ..., 2 * (removed - 1) */
    atomic_int failed;
    char why[256];
} shared;

static abis_id make_id(uint64_t k)
{
    abis_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &k, sizeof k);
    return id;
}

static uint64_t id_of(const abis_hit *h)
{
    uint64_t k;
    memcpy(&k, h->template_id.bytes, sizeof k);
    return k;
}

static void vec(uint64_t k, float *v)
{
    abis_synth_identity(SEED, k, v, D);
}

static void fail_with(shared *s, const char *why, uint64_t what)
{
    if (atomic_exchange(&s->failed, 1) == 0)
        snprintf(s->why, sizeof s->why, "%s (template %llu)", why, (unsigned long long)what);
}

static void *inserter(void *arg)
{
    shared *s = arg;
    float v[D];
    for (uint64_t i = 0; i < INSERTS; i++) {
        uint64_t k = BASE + i;
        vec(k, v);
        abis_id id = make_id(k);
        abis_error err = {0};
        if (s->g->ops->add(s->g, &id, (uint32_t)k, v, sizeof v, &err) != ABIS_OK)
            fail_with(s, "add failed", k);
        atomic_store(&s->inserted, i + 1);
    }
    return NULL;
}

static void *remover(void *arg)
{
    shared *s = arg;
    for (uint64_t i = 0; i < REMOVES; i++) {
        abis_id id = make_id(2 * i);
        if (s->g->ops->remove(s->g, &id) != 1)
            fail_with(s, "remove did not find", 2 * i);
        atomic_store(&s->removed, i + 1);
    }
    return NULL;
}

/* Check one answer against what was complete before the search began. */
static void check_hits(shared *s, const abis_hit *h, size_t n, size_t removed_before,
                       uint64_t must_find)
{
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = id_of(&h[i]);
        if (k < BASE && k % 2 == 0 && k / 2 < removed_before)
            fail_with(s, "a removed template was returned", k);
        if (k == must_find && i == 0)
            found = 1;
        if (i > 0 && h[i - 1].score < h[i].score)
            fail_with(s, "results out of order", k);
    }
    if (must_find != UINT64_MAX && !found)
        fail_with(s, "an inserted template was not found first", must_find);
}

static void *searcher(void *arg)
{
    shared *s = arg;
    float v[D * 4];
    abis_hit h[4][20];
    for (int i = 0; i < SEARCHES && !atomic_load(&s->failed); i++) {
        size_t removed = atomic_load(&s->removed), inserted = atomic_load(&s->inserted);
        /* probe with the last inserted template's own vector: it must come first */
        uint64_t target = inserted ? BASE + inserted - 1 : UINT64_MAX;
        vec(target != UINT64_MAX ? target : 1, v);
        abis_search_opts o = {.preselect = i % 4 < 2};
        if (i % 2 == 0) {
            size_t n = 0;
            abis_error err = {0};
            if (abis_gallery_search(s->g, v, D * sizeof(float), 20, NULL, &o, h[0], &n, &err) !=
                ABIS_OK)
                fail_with(s, "search failed", 0);
            check_hits(s, h[0], n, removed, target);
        } else {
            /* a batch: the same probe, and probes of early (often removed) ids */
            abis_search_req r[4];
            for (int j = 0; j < 4; j++) {
                if (j)
                    vec((uint64_t)(2 * j * (i + 1)) % BASE, v + j * D);
                r[j] = (abis_search_req){v + j * D, D * sizeof(float), 20, NULL, h[j], 0};
            }
            abis_error err = {0};
            if (s->g->ops->search_batch(s->g, r, 4, &o, &err) != ABIS_OK)
                fail_with(s, "batch failed", 0);
            for (int j = 0; j < 4; j++)
                check_hits(s, h[j], r[j].n_out, removed, j ? UINT64_MAX : target);
        }
    }
    return NULL;
}

static void run(int background, abis_vector_preselect kind)
{
    abis_vector_config c;
    abis_vector_config_default(&c);
    c.background = background;
    c.preselect = kind;
    c.index_min = 1000; /* a graph is built while the threads run */
    c.shortlist = 100;
    shared s = {0};
    abis_error err = {0};
    assert_status(abis_gallery_vector_create_with(D, &c, &s.g, &err), ABIS_OK, &err);
    float v[D];
    for (uint64_t k = 0; k < BASE; k++) {
        vec(k, v);
        abis_id id = make_id(k);
        assert_status(s.g->ops->add(s.g, &id, (uint32_t)k, v, sizeof v, &err), ABIS_OK, &err);
    }
    pthread_t t[4];
    assert_int_equal(pthread_create(&t[0], NULL, inserter, &s), 0);
    assert_int_equal(pthread_create(&t[1], NULL, remover, &s), 0);
    assert_int_equal(pthread_create(&t[2], NULL, searcher, &s), 0);
    assert_int_equal(pthread_create(&t[3], NULL, searcher, &s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    if (atomic_load(&s.failed))
        fail_msg("%s", s.why);
    assert_int_equal(s.g->ops->count(s.g), BASE + INSERTS - REMOVES);
    abis_gallery_destroy(s.g);
}

static void test_concurrent_writes_and_searches_codes(void **state)
{
    (void)state;
    run(1, ABIS_PRESELECT_CODES);
}

static void test_concurrent_writes_and_searches_graph(void **state)
{
    (void)state;
    run(1, ABIS_PRESELECT_GRAPH);
}

static void test_concurrent_writes_and_searches_inline_maintenance(void **state)
{
    (void)state;
    run(0, ABIS_PRESELECT_GRAPH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writes_and_searches_codes),
        cmocka_unit_test(test_concurrent_writes_and_searches_graph),
        cmocka_unit_test(test_concurrent_writes_and_searches_inline_maintenance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
