/* test_int8_ranking.c: the documented bound on how far int8 scores and
 * rankings can differ from float32 (docs/search.md, "Quantisation"), checked
 * on face-embedding-like synthetic data: random unit identities, samples at
 * noise levels giving genuine cosines of about 0.6-0.8, impostors about 0.
 *
 * For a probe p and a gallery vector g with quantisation errors e = v - s q:
 *     |float(p.g) - int8 score| <= |e_p| + (1 + |e_p|) |e_g|  =: bound(p, g)
 * so the int8 ranking can only swap two templates whose float scores differ
 * by less than the sum of their bounds.  The test checks that bound on every
 * pair, the ranking consequence on every probe, that mated probes find the
 * same subject first, and that the typical error is the documented
 * sigma = sqrt((s_p^2 + s_g^2) / 12) within 20 %. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gallery/gallery_vector.h"
#include "match/int8.h"

typedef struct qvec {
    int8_t *q;
    float scale;
    double err; /* |v - s q| */
} qvec;

static void quantise(const float *v, size_t d, qvec *out)
{
    out->q = malloc(d);
    assert_non_null(out->q);
    out->scale = abis_i8_quantize(v, d, out->q);
    double e2 = 0;
    for (size_t i = 0; i < d; i++) {
        double e = (double)v[i] - (double)out->scale * out->q[i];
        e2 += e * e;
    }
    out->err = sqrt(e2);
}

static double dot_f(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* A sample with genuine cosine to its identity's other samples in 0.6-0.8:
 * sigma between 0.5 (cosine 0.8) and 0.82 (0.6), fixed per identity. */
static void sample(uint64_t id, uint64_t k, float *v, size_t d)
{
    abis_synth_rng r = {id * 0x9E3779B97F4A7C15ull + 1};
    double sigma = 0.5 + 0.32 * abis_synth_uniform(&r);
    abis_synth_sample(31, id, k, sigma, v, d);
}

static void check_dimension(size_t d, size_t n_ids, size_t n_probes)
{
    float *gal = malloc(sizeof(float) * d * n_ids), *probe = malloc(sizeof(float) * d);
    qvec *gq = calloc(n_ids, sizeof *gq);
    assert_true(gal && probe && gq);
    abis_vector_config c;
    abis_vector_config_default(&c);
    c.background = 0;
    abis_gallery *g = NULL;
    abis_error err = {0};
    assert_status(abis_gallery_vector_create_with(d, &c, &g, &err), ABIS_OK, &err);
    for (size_t i = 0; i < n_ids; i++) {
        sample(i, 0, gal + i * d, d);
        quantise(gal + i * d, d, &gq[i]);
        abis_id id = {{0}};
        memcpy(id.bytes, &i, sizeof i);
        assert_status(g->ops->add(g, &id, (uint32_t)i, gal + i * d, d * sizeof(float), &err),
                      ABIS_OK, &err);
    }
    double max_bound = 0, max_diff = 0, sum_sq = 0, sum_pred = 0;
    size_t pairs = 0, mated_same = 0, nonmated_same = 0, swaps_beyond = 0;
    for (size_t t = 0; t < 2 * n_probes; t++) {
        int mated = t < n_probes;
        uint64_t who = mated ? (t * 7919) % n_ids : n_ids + t; /* non-mated: unseen people */
        sample(who, 1, probe, d);
        qvec pq;
        quantise(probe, d, &pq);
        size_t best_f = 0, best_i = 0;
        double bf = -2, bi = -2, bound_bi = 0, bound_bf = 0, f_of_bi = 0;
        for (size_t i = 0; i < n_ids; i++) {
            double f = dot_f(probe, gal + i * d, d);
            double s = abis_i8_score(abis_i8_dot_scalar(pq.q, gq[i].q, d), pq.scale, gq[i].scale);
            double bound = pq.err + (1 + pq.err) * gq[i].err;
            double diff = fabs(f - s);
            if (diff > bound * (1 + 1e-6) + 1e-7)
                fail_msg("d=%zu pair (%zu, %zu): |float - int8| = %.3g exceeds its bound %.3g", d,
                         t, i, diff, bound);
            max_bound = fmax(max_bound, bound);
            max_diff = fmax(max_diff, diff);
            sum_sq += (f - s) * (f - s);
            sum_pred += ((double)pq.scale * pq.scale + (double)gq[i].scale * gq[i].scale) / 12;
            pairs++;
            if (f > bf)
                bf = f, best_f = i, bound_bf = bound;
            if (s > bi)
                bi = s, best_i = i, bound_bi = bound, f_of_bi = f;
        }
        /* the int8 winner is within its and the float winner's bounds */
        if (best_i != best_f && bf - f_of_bi > bound_bi + bound_bf)
            swaps_beyond++;
        /* the gallery (SIMD kernels, threads) picks the same winner */
        abis_hit h;
        size_t n = 0;
        assert_status(g->ops->search(g, probe, d * sizeof(float), 1, NULL, &h, &n, &err), ABIS_OK,
                      &err);
        assert_int_equal(n, 1);
        assert_int_equal(h.slot, best_i);
        assert_true(h.score == (float)bi);
        if (mated) {
            assert_int_equal(best_f, who); /* the data: the mate wins in float */
            mated_same += best_i == best_f;
        } else {
            nonmated_same += best_i == best_f;
        }
        free(pq.q);
    }
    double sigma = sqrt(sum_sq / pairs), predicted = sqrt(sum_pred / pairs);
    print_message("d=%zu: %zu pairs; |float - int8| max %.2e (largest pair bound %.2e), "
                  "sigma %.2e (predicted %.2e); top-1 same: mated %zu/%zu, non-mated %zu/%zu\n",
                  d, pairs, max_diff, max_bound, sigma, predicted, mated_same, n_probes,
                  nonmated_same, n_probes);
    assert_int_equal(swaps_beyond, 0);
    assert_int_equal(mated_same, n_probes);
    assert_true(sigma > 0.8 * predicted && sigma < 1.2 * predicted);
    abis_gallery_destroy(g);
    for (size_t i = 0; i < n_ids; i++)
        free(gq[i].q);
    free(gq);
    free(gal);
    free(probe);
}

static void test_int8_ranking_bound_128(void **state)
{
    (void)state;
    check_dimension(128, 4000, 60);
}

static void test_int8_ranking_bound_512(void **state)
{
    (void)state;
    check_dimension(512, 2000, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_ranking_bound_128),
        cmocka_unit_test(test_int8_ranking_bound_512),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
