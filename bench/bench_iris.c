/*
 * bench_iris.c: iris-code matching speed (docs/BENCHMARKS.md, "Iris 1:N").
 *
 *   build/bench_iris [ROWS [PROBES]]      (defaults 1000000 50)
 *
 * Code size: 2048 code bits + 2048 mask bits (512 bytes per record).
 * (a) single-shift comparisons per second on one core, per kernel, on a
 *     gallery that fits in L2 (1,024 records, 512 KiB) and on ROWS records;
 * (b) 1:N through the iris gallery: ROWS random enrolled eyes, one probe,
 *     15 shifts, top-10, with 1 and 2 threads: p50 / p99 latency;
 * (c) the anchor: the memory bandwidth of one and two threads summing a
 *     1 GiB array, in the same run.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gallery/gallery_iris.h"
#include "match/hamming.h"
#include "modality/iris/iris.h"

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

static uint64_t rng_state = 42;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void random_code(abis_iris_code *c)
{
    for (size_t i = 0; i < ABIS_IRIS_BYTES; i += 8) {
        uint64_t a = rnd(), m = rnd() | rnd();
        memcpy(c->code + i, &a, 8);
        memcpy(c->mask + i, &m, 8);
    }
}

/* Comparisons per second of one kernel, one shift, over `rows` records. */
static double single_shift_rate(const abis_hamming_kernel *k, const abis_iris_code *probe,
                                const abis_iris_code *rows, size_t n_rows, uint32_t *out)
{
    enum { CHUNK = 4096 };
    double best = 0;
    size_t reps = n_rows >= 100000 ? 3 : 3000;
    for (int trial = 0; trial < 3; trial++) {
        double t0 = now_s();
        for (size_t r = 0; r < reps; r++)
            for (size_t b = 0; b < n_rows; b += CHUNK)
                k->scan(probe, 1, rows + b, NULL, n_rows - b < CHUNK ? n_rows - b : CHUNK, out);
        double rate = (double)reps * n_rows / (now_s() - t0);
        if (rate > best)
            best = rate;
    }
    return best;
}

typedef struct sum_job {
    const uint64_t *p;
    size_t n;
    uint64_t s;
} sum_job;

static void *sum_part(void *arg)
{
    sum_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) {
        s0 += j->p[i];
        s1 += j->p[i + 1];
        s2 += j->p[i + 2];
        s3 += j->p[i + 3];
    }
    j->s = s0 + s1 + s2 + s3;
    return NULL;
}

/* GB/s of summing `bytes` with `threads` threads (best of 5). */
static double bandwidth(const uint64_t *p, size_t bytes, int threads)
{
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        sum_job jobs[2];
        pthread_t t1;
        size_t n = bytes / 8;
        double t0 = now_s();
        for (int t = 0; t < threads; t++)
            jobs[t] = (sum_job){p + n * t / threads, n / threads, 0};
        if (threads == 2)
            pthread_create(&t1, NULL, sum_part, &jobs[1]);
        sum_part(&jobs[0]);
        if (threads == 2)
            pthread_join(t1, NULL);
        double gbs = bytes / (now_s() - t0) / 1e9;
        if (jobs[0].s == 1234567) /* keep the sums alive */
            printf(" ");
        if (gbs > best)
            best = gbs;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t n_rows = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t probes = argc > 2 ? strtoul(argv[2], NULL, 10) : 50;
    printf("code size: %d code bits + %d mask bits = %zu bytes per record\n", ABIS_IRIS_BITS,
           ABIS_IRIS_BITS, sizeof(abis_iris_code));
    abis_iris_code *rows = aligned_alloc(64, n_rows * sizeof *rows);
    uint32_t *out = malloc(4096 * sizeof *out);
    if (!rows || !out)
        return 1;
    for (size_t i = 0; i < n_rows; i++)
        random_code(&rows[i]);
    abis_iris_code probe;
    random_code(&probe);

    /* (a) */
    size_t nk;
    const abis_hamming_kernel *k = abis_hamming_available(&nk);
    size_t small = n_rows < 1024 ? n_rows : 1024;
    printf("\n(a) single shift, one core, comparisons per second\n");
    for (size_t i = 0; i < nk; i++) {
        double in_cache = single_shift_rate(&k[i], &probe, rows, small, out);
        double big = single_shift_rate(&k[i], &probe, rows, n_rows, out);
        printf("  %-7s %zu records (%zu KiB): %7.1f M/s   %zu records (%zu MiB): %7.1f M/s\n",
               k[i].name, small, small / 2, in_cache / 1e6, n_rows, n_rows / 2048, big / 1e6);
    }

    /* (b) */
    abis_gallery *g;
    abis_error err = {0};
    if (abis_gallery_iris_create(&g, &err) != ABIS_OK)
        return 1;
    for (size_t i = 0; i < n_rows; i++) {
        abis_id id;
        memset(&id, 0, sizeof id);
        memcpy(id.bytes, &i, sizeof i);
        if (g->ops->add(g, &id, (uint32_t)i, &rows[i], sizeof rows[i], &err) != ABIS_OK) {
            fprintf(stderr, "bench_iris: %s\n", err.message);
            return 1;
        }
    }
    free(rows);
    printf("\n(b) 1:N, %zu enrolled eyes, 15 shifts, top-10, kernel %s\n", n_rows,
           abis_hamming_best()->name);
    double *ms = malloc(probes * sizeof *ms);
    for (unsigned threads = 1; threads <= 2; threads++) {
        abis_gallery_iris_set_threads(g, threads);
        abis_hit hits[10];
        size_t nh;
        g->ops->search(g, &probe, sizeof probe, 10, NULL, hits, &nh, &err); /* warm */
        for (size_t p = 0; p < probes; p++) {
            random_code(&probe);
            double t0 = now_s();
            if (g->ops->search(g, &probe, sizeof probe, 10, NULL, hits, &nh, &err) != ABIS_OK)
                return 1;
            ms[p] = (now_s() - t0) * 1e3;
        }
        qsort(ms, probes, sizeof *ms, cmp_double);
        printf("  %u thread%s: p50 %7.2f ms   p99 %7.2f ms   (%.0f M comparisons/s)\n", threads,
               threads > 1 ? "s" : " ", ms[probes / 2], ms[(size_t)(probes * 0.99)],
               n_rows * 15.0 / ms[probes / 2] / 1e3);
    }
    free(ms);
    abis_gallery_destroy(g);

    /* (c) */
    size_t bytes = (size_t)1 << 30;
    uint64_t *big = malloc(bytes);
    if (!big)
        return 1;
    memset(big, 1, bytes);
    double bw1 = bandwidth(big, bytes, 1), bw2 = bandwidth(big, bytes, 2);
    printf("\n(c) anchor: sum over a 1 GiB array: 1 thread %.1f GB/s, 2 threads %.1f GB/s\n", bw1,
           bw2);
    printf("    (a %zu-record scan reads %.0f MiB: at 2-thread bandwidth %.1f ms)\n", n_rows,
           n_rows * 512.0 / 1048576, n_rows * 512.0 / (bw2 * 1e9) * 1e3);
    free(big);
    free(out);
    return 0;
}
