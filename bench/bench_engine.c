/*
 * bench_engine.c: baseline figures of the foundation engine on synthetic
 * data: enrolment rate (with deduplication, each enrolment its own durable
 * transaction), verify and identify latency through the public API, and the
 * gallery rebuild time when a store is reopened.
 *
 *   build/bench_engine [PEOPLE [DIM [PROBES]]]     (defaults 20000 512 200)
 *
 * It creates a store in a temporary directory and removes it afterwards.
 * Results are recorded in docs/BENCHMARKS.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abis/abis.h"
#include "match/match.h"
#include "synthgen.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const abis_error *err)
{
    fprintf(stderr, "bench_engine: %s: %s\n", what, err->message);
    exit(1);
}

static void report(const char *name, double *ms, size_t n)
{
    qsort(ms, n, sizeof *ms, cmp_double);
    printf("%-28s p50 %8.3f ms   p99 %8.3f ms   (%zu calls)\n", name, ms[n / 2],
           ms[(size_t)(n * 0.99)], n);
}

int main(int argc, char **argv)
{
    size_t people = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    size_t dim = argc > 2 ? strtoul(argv[2], NULL, 10) : 512;
    size_t probes = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
    char dir[] = "/tmp/abis-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char data[64];
    snprintf(data, sizeof data, "%s/data", dir);
    abis_error err;
    if (abis_store_init(data, &err) != ABIS_OK)
        die("init", &err);
    abis_engine *e;
    abis_open_options o = {.data_dir = data, .actor = "bench"};
    if (abis_engine_open(&o, &e, &err) != ABIS_OK)
        die("open", &err);
    abis_purpose_def p = {.name = "bench", .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
    if (abis_segment_add(e, NULL, "bench", &err) || abis_purpose_add(e, NULL, &p, &err) ||
        abis_modality_add(e, NULL, "face", "vector", (int)dim, &err))
        die("registry", &err);
    printf("kernel: %s; %zu people, %zu-d vectors\n", abis_dot_best_name(), people, dim);

    float *v = malloc(dim * sizeof *v);
    abis_id *ids = malloc(people * sizeof *ids);
    const char *consents[] = {"bench"};
    double t0 = now_s();
    for (size_t i = 0; i < people; i++) {
        abis_synth_sample(1, i, 0, ABIS_SYNTH_SIGMA, v, dim);
        abis_template_input t = {.modality = "face", .vector = v, .dim = dim, .quality = -1};
        abis_enroll_request req = {.segment = "bench",
                                   .templates = &t,
                                   .n_templates = 1,
                                   .consents = consents,
                                   .n_consents = 1};
        abis_enroll_result res;
        if (abis_subject_enroll(e, NULL, &req, &res, &err) != ABIS_OK)
            die("enroll", &err);
        ids[i] = res.subject_id;
    }
    double secs = now_s() - t0;
    printf("%-28s %8.0f per second  (%zu in %.1f s, dedup search included)\n", "enroll",
           people / secs, people, secs);

    double *ms = malloc(probes * sizeof *ms);
    size_t found = 0;
    for (size_t i = 0; i < probes; i++) {
        size_t who = (i * 7919) % people;
        abis_synth_sample(1, who, 1, ABIS_SYNTH_SIGMA, v, dim);
        abis_template_input t = {.modality = "face", .vector = v, .dim = dim, .quality = -1};
        abis_verify_result r;
        double a = now_s();
        if (abis_subject_verify(e, NULL, &ids[who], "bench", &t, 1, &r, &err) != ABIS_OK)
            die("verify", &err);
        ms[i] = (now_s() - a) * 1e3;
        found += r.decision == ABIS_MATCH;
    }
    report("verify (1:1)", ms, probes);
    printf("%-28s %zu of %zu genuine probes matched\n", "", found, probes);

    found = 0;
    abis_candidate cand[10];
    for (size_t i = 0; i < probes; i++) {
        size_t who = (i * 7919) % people;
        abis_synth_sample(1, who, 2, ABIS_SYNTH_SIGMA, v, dim);
        abis_template_input t = {.modality = "face", .vector = v, .dim = dim, .quality = -1};
        size_t n = 0;
        double a = now_s();
        if (abis_subject_identify(e, NULL, "bench", "bench", &t, 1, 10, cand, &n, &err) != ABIS_OK)
            die("identify", &err);
        ms[i] = (now_s() - a) * 1e3;
        found += n > 0 && !memcmp(cand[0].subject_id.bytes, ids[who].bytes, ABIS_ID_BYTES);
    }
    report("identify (1:N, k=10)", ms, probes);
    printf("%-28s %zu of %zu mates found at rank 1\n", "", found, probes);

    /* Anchor, same run: the bare kernel over a float32 array the size of the
     * gallery (no filter, no top-k, no engine) -- the floor a scan can reach. */
    float *rows = malloc(people * dim * sizeof *rows);
    for (size_t i = 0; i < people * dim; i++)
        rows[i] = (float)(i % 7) * 0.01f;
    abis_dot_fn dot = abis_dot_best();
    volatile float sink = 0;
    for (size_t rep = 0; rep < probes; rep++) {
        double a = now_s();
        float best = -2;
        for (size_t r = 0; r < people; r++) {
            float sc = dot(v, rows + r * dim, dim);
            best = sc > best ? sc : best;
        }
        sink += best;
        ms[rep] = (now_s() - a) * 1e3;
    }
    report("anchor: bare kernel scan", ms, probes);
    printf("%-28s %.1f GB/s at the median\n", "",
           people * dim * sizeof(float) / (ms[probes / 2] * 1e-3) / 1e9);
    free(rows);

    abis_engine_close(e);
    t0 = now_s();
    if (abis_engine_open(&o, &e, &err) != ABIS_OK)
        die("reopen", &err);
    abis_synth_sample(1, 0, 1, ABIS_SYNTH_SIGMA, v, dim);
    abis_template_input t = {.modality = "face", .vector = v, .dim = dim, .quality = -1};
    size_t n;
    if (abis_subject_identify(e, NULL, "bench", "bench", &t, 1, 10, cand, &n, &err) != ABIS_OK)
        die("identify", &err);
    printf("%-28s %8.2f s  (open, unseal %zu templates, first identify)\n", "gallery rebuild",
           now_s() - t0, people);
    abis_engine_close(e);
    free(v);
    free(ids);
    free(ms);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
