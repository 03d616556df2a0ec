/* test_hnsw.c: the graph pre-selection's structure (src/gallery/hnsw.c):
 * after parallel insertion in batches, after compaction and after loading,
 * every node but the entry point has a layer-0 link pointing at it -- a
 * node without one is found by no walk.  Before the in-link counts and the
 * rescue pass, about one build in four of this gallery left such nodes. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "gallery/hnsw.h"
#include "gallery/vstore.h"

enum { D = 64, N = 6000, BATCH = 256 };

static size_t unlinked(const abis_hnsw *h, const abis_vstore *st)
{
    abis_hnsw_view v;
    abis_hnsw_view_get(h, &v);
    unsigned char *has = calloc(v.indexed ? v.indexed : 1, 1);
    assert_non_null(has);
    for (size_t r = 0; r < v.indexed; r++) {
        const uint32_t *l = abis_hnsw_links0(h, r);
        for (size_t i = 0; i < 2 * v.m && l[i] != UINT32_MAX; i++)
            has[l[i]] = 1;
    }
    size_t n = 0;
    for (size_t r = 0; r < v.indexed; r++)
        n += !has[r] && r != v.entry && !abis_vs_dead(st, r);
    free(has);
    return n;
}

static void fill(abis_vstore *st, size_t from, size_t to)
{
    float v[D];
    int8_t q[D];
    for (size_t i = from; i < to; i++) {
        abis_synth_sample(41, i, 0, 0.6, v, D);
        float scale = abis_i8_quantize(v, D, q);
        abis_id id;
        memset(&id, 0, sizeof id);
        memcpy(id.bytes, &i, sizeof i);
        assert_int_equal(abis_vstore_add(st, &id, (uint32_t)i, q, scale), 0);
    }
}

static void test_every_node_keeps_an_in_link(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) { /* four builds: the order differs each time */
        abis_vstore st;
        abis_vstore_init(&st, D);
        fill(&st, 0, N);
        abis_hnsw_params p = {.m = 16, .ef_construction = 100, .seed = seed};
        abis_hnsw *h = abis_hnsw_create(&st, &p);
        assert_non_null(h);
        for (size_t done = 0; done < N; done += BATCH)
            assert_int_equal(abis_hnsw_extend(h, done + BATCH <= N ? BATCH : N - done, 2), 0);
        assert_int_equal(unlinked(h, &st), 0);

        /* compaction: 40 % removed, the rest renumbered and weak nodes re-linked */
        uint32_t *remap = malloc(sizeof *remap * N);
        assert_non_null(remap);
        for (size_t i = 0; i < N; i++)
            if (i % 5 < 2) {
                abis_id id;
                memset(&id, 0, sizeof id);
                memcpy(id.bytes, &i, sizeof i);
                assert_int_equal(abis_vstore_remove(&st, &id), 1);
            }
        abis_vstore_compact(&st, remap);
        abis_hnsw_remap(h, remap, N, 2);
        assert_int_equal(unlinked(h, &st), 0);
        free(remap);

        /* more inserts after it */
        size_t rows = st.n;
        fill(&st, N, N + 1000);
        assert_int_equal(abis_hnsw_extend(h, st.n - rows, 2), 0);
        assert_int_equal(unlinked(h, &st), 0);
        abis_hnsw_free(h);
        abis_vstore_free(&st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_node_keeps_an_in_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
