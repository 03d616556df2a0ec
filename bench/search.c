/*
 * search.c: the vector search engine against FAISS and hnswlib, on the same
 * data in the same run, as one table (docs/BENCHMARKS.md, "Vector search").
 *
 *   build/bench_search [options]
 *     --data synth|sift     synthetic face-like identities (default) or the
 *                           SIFT sample in --sift DIR (default
 *                           /work/shared/data/ann/ngt-sift5k): base rows
 *                           0-4899, queries 4900-4999, vectors L2-normalised
 *     --n N --dim D         synthetic gallery size and dimension (1000000 128)
 *     --probes P            mated probes, and as many non-mated (1000)
 *     --latency L           probes timed one by one per setting (200)
 *     --anchors LIST        any of flat,sq8,ivf,hnsw,hnswlib (default
 *                           flat,sq8,ivf); none for OpenABIS only (the float
 *                           vectors are then not kept: 10M x 128 fits)
 *     --graph               also OpenABIS with its graph pre-selection
 *     --shortlists LIST     code pre-selection shortlists (256,1024,4096)
 *     --efs LIST            graph / HNSW search breadths (32,64,128,256)
 *     --nprobes LIST        IVF lists probed (16,64,256)
 *     --m M --efc E         HNSW links and build breadth for FAISS and hnswlib
 *                           (32 200: the anchor); OpenABIS's graph
 *                           uses its defaults
 *     --threads T           threads for building and for "tN" columns (2)
 *     --snapshot DIR        also time saving the OpenABIS gallery to an encrypted
 *                           snapshot in DIR and loading it back
 *     --study               also count, for each mated probe, the impostors
 *                           scoring at or above its mate by sign codes
 *                           (asymmetric, as the gallery) and by the Hamming
 *                           distance of two sign codes: the pre-selection's
 *                           argument (docs/search.md)
 *
 * Synthetic data: identity i is a random unit vector; the enrolled template
 * is identity + sigma g / sqrt(d) renormalised (g standard normal), sigma
 * drawn per identity in [0.5, 0.82] so that two samples of one identity have
 * cosine 0.6-0.8 while different identities are about 0 (scripts/synthgen.h).
 * A mated probe is a second sample of an enrolled identity; a non-mated probe
 * a sample of an identity never enrolled.  Ground truth: exact float32 inner
 * products (OpenBLAS sgemm) over every gallery vector, top 10 per probe.
 *
 * Columns: build time (all vectors added, index built), memory (the index's
 * own accounting for OpenABIS, resident-set growth for the others),
 * single-probe latency p50/p99 with T threads, the CPU time one query takes
 * on one thread (the work, without waits for a CPU on a shared machine),
 * queries per second one at a
 * time (b1) and 64 at a time (b64) on 1 and T threads, recall@1 of mated and
 * of non-mated probes and recall@10 of all, against exact float32, and the
 * rank-1 identification rate of mated probes (the mate returned first).
 * Anchor: the memory read bandwidth of 1 and T threads summing 1 GiB.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anchors.h"
#include "crypto/crypto.h"
#include "gallery/gallery_vector.h"
#include "match/int8.h"
#include "match/signcode.h"
#include "synthgen.h"
#include "util/threadpool.h"

#define K 10
#define GEN_CHUNK 65536
#define SEED 20260101

/* ---- options ------------------------------------------------------------------------ */

typedef struct opts {
    int sift;
    const char *sift_dir;
    size_t n, dim, probes, latency;
    char anchors[128];
    int graph, study;
    const char *snapshot_dir;
    size_t shortlists[8], n_shortlists, efs[8], n_efs, nprobes[8], n_nprobes;
    int m, efc, threads;
} opts;

static size_t parse_list(const char *s, size_t *out, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        out[n++] = strtoull(s, (char **)&s, 10);
        if (*s == ',')
            s++;
    }
    return n;
}

static int has_anchor(const opts *o, const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", o->anchors);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
        if (strcmp(t, name) == 0)
            return 1;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_search [--data synth|sift] [--sift DIR] [--n N] [--dim D] "
                    "[--probes P] [--latency L] [--anchors flat,sq8,ivf,hnsw,hnswlib|none] "
                    "[--graph] [--shortlists LIST] [--efs LIST] [--nprobes LIST] [--m M] "
                    "[--efc E] [--threads T] [--study] [--snapshot DIR]\n");
    exit(2);
}

static void parse(int argc, char **argv, opts *o)
{
    *o = (opts){.sift_dir = "/work/shared/data/ann/ngt-sift5k",
                .n = 1000000,
                .dim = 128,
                .probes = 1000,
                .latency = 200,
                .m = 32,
                .efc = 200,
                .threads = 2};
    snprintf(o->anchors, sizeof o->anchors, "flat,sq8,ivf");
    o->n_shortlists = parse_list("256,1024,4096", o->shortlists, 8);
    o->n_efs = parse_list("32,64,128,256", o->efs, 8);
    o->n_nprobes = parse_list("16,64,256", o->nprobes, 8);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--graph") || !strcmp(a, "--study")) {
            *(a[2] == 'g' ? &o->graph : &o->study) = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--data"))
            o->sift = !strcmp(v, "sift");
        else if (!strcmp(a, "--sift"))
            o->sift_dir = v;
        else if (!strcmp(a, "--n"))
            o->n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--dim"))
            o->dim = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--probes"))
            o->probes = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--latency"))
            o->latency = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--anchors"))
            snprintf(o->anchors, sizeof o->anchors, "%s", v);
        else if (!strcmp(a, "--shortlists"))
            o->n_shortlists = parse_list(v, o->shortlists, 8);
        else if (!strcmp(a, "--efs"))
            o->n_efs = parse_list(v, o->efs, 8);
        else if (!strcmp(a, "--nprobes"))
            o->n_nprobes = parse_list(v, o->nprobes, 8);
        else if (!strcmp(a, "--m"))
            o->m = atoi(v);
        else if (!strcmp(a, "--efc"))
            o->efc = atoi(v);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--snapshot"))
            o->snapshot_dir = v;
        else
            usage();
    }
    if (!o->n || !o->dim || !o->probes || o->threads < 1)
        usage();
}

/* ---- clocks, memory ------------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process, all threads: the work done, without the time
 * spent waiting for a CPU on a shared machine. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the bandwidth anchor ------------------------------------------------------------------ */

typedef struct bw_job {
    const uint8_t *p;
    size_t bytes;
    unsigned parts;
    volatile uint64_t sink;
} bw_job;

/* Sum 1/parts of the buffer with 512-bit loads (AVX-512) or 256-bit ones. */
__attribute__((target("avx512f"))) static uint64_t sum_avx512(const uint8_t *p, size_t n)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
    }
    return (uint64_t)_mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t,
                        _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    return t[0] + t[1] + t[2] + t[3];
}

static void bw_task(void *arg, size_t t, unsigned part)
{
    (void)part;
    bw_job *j = arg;
    size_t each = j->bytes / j->parts / 4096 * 4096;
    const uint8_t *p = j->p + t * each;
    j->sink += __builtin_cpu_supports("avx512f") ? sum_avx512(p, each) : sum_avx2(p, each);
}

/* Read bandwidth (GB/s) of `threads` threads over a 1 GiB buffer, best of 5.
 * The buffer is cut into 256 tasks the threads take in turn (one task a
 * thread measured one thread whenever the caller took both tasks before a
 * worker woke). */
static double bandwidth(const uint8_t *buf, size_t bytes, unsigned threads)
{
    const unsigned parts = 256;
    bw_job j = {buf, bytes, parts, 0};
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        abis_threadpool_run(abis_threadpool_shared(), parts, threads, bw_task, &j);
        double gbs = (double)(bytes / parts / 4096 * 4096 * parts) / (now_s() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    return best;
}

/* ---- data ------------------------------------------------------------------------------------ */

typedef struct dataset {
    size_t n, d, nq, n_mated;
    float *x;       /* n x d, or NULL when not kept */
    float *q;       /* nq x d; mated probes first */
    int64_t *mate;  /* nq: the mate's row, -1 for non-mated */
    int64_t *gt;    /* nq x K: exact float32 top rows */
    float *gt_s;    /* nq x K: their scores */
    int sift_gt_ok; /* SIFT only: the published L2 top-10 was read */
    double sift_l2_overlap;
} dataset;

static void identity_sample(size_t id, uint64_t sample, float *v, size_t d)
{
    abis_synth_rng r = {id * 0x9E3779B97F4A7C15ull + 17};
    double sigma = 0.5 + 0.32 * abis_synth_uniform(&r); /* genuine cosine 0.8 .. 0.6 */
    abis_synth_sample(SEED, id, sample, sigma, v, d);
}

typedef struct gen_job {
    float *out;
    size_t first, count, d;
} gen_job;

static void gen_task(void *arg, size_t t, unsigned part)
{
    (void)part;
    gen_job *j = arg;
    for (size_t i = t * 1024; i < (t + 1) * 1024 && i < j->count; i++)
        identity_sample(j->first + i, 0, j->out + i * j->d, j->d);
}

typedef struct gt_job {
    dataset *ds;
    const float *scores; /* rows x nq */
    size_t rows, first;
} gt_job;

/* Fold a chunk's scores into each probe's top K (one task per probe). */
static void gt_task(void *arg, size_t q, unsigned part)
{
    (void)part;
    gt_job *j = arg;
    dataset *ds = j->ds;
    int64_t *top = ds->gt + q * K;
    float *ts = ds->gt_s + q * K;
    for (size_t r = 0; r < j->rows; r++) {
        float s = j->scores[r * ds->nq + q];
        if (top[K - 1] >= 0 && !(s > ts[K - 1]))
            continue;
        int i = K - 1;
        while (i > 0 && (top[i - 1] < 0 || s > ts[i - 1])) {
            top[i] = top[i - 1];
            ts[i] = ts[i - 1];
            i--;
        }
        top[i] = (int64_t)(j->first + r);
        ts[i] = s;
    }
}

/* Ground truth for rows [first, first + rows) of x. */
static void gt_chunk(dataset *ds, const float *x, size_t first, size_t rows, float *scores)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)ds->nq, (int)ds->d, 1.0f,
                x, (int)ds->d, ds->q, (int)ds->d, 0.0f, scores, (int)ds->nq);
    gt_job j = {ds, scores, rows, first};
    abis_threadpool_run(abis_threadpool_shared(), ds->nq, 0, gt_task, &j);
}

static void ds_alloc(dataset *ds)
{
    ds->q = malloc(sizeof(float) * ds->nq * ds->d);
    ds->mate = malloc(sizeof(int64_t) * ds->nq);
    ds->gt = malloc(sizeof(int64_t) * ds->nq * K);
    ds->gt_s = malloc(sizeof(float) * ds->nq * K);
    if (!ds->q || !ds->mate || !ds->gt || !ds->gt_s) {
        fprintf(stderr, "out of memory for the probes\n");
        exit(1);
    }
    for (size_t i = 0; i < ds->nq * K; i++)
        ds->gt[i] = -1;
}

/* Synthetic: probes, then the gallery in chunks, each chunk handed to `sink`
 * (OpenABIS) and folded into the ground truth; kept in ds->x when asked. */
typedef void (*chunk_sink)(void *ctx, const float *x, size_t first, size_t rows);

static void make_synth(dataset *ds, const opts *o, int keep, chunk_sink sink, void *ctx)
{
    ds->n = o->n;
    ds->d = o->dim;
    ds->n_mated = o->probes;
    ds->nq = 2 * o->probes;
    ds_alloc(ds);
    abis_synth_rng r = {SEED};
    for (size_t i = 0; i < ds->nq; i++) {
        int mated = i < ds->n_mated;
        size_t who = mated ? abis_synth_next(&r) % ds->n : ds->n + i; /* never enrolled */
        identity_sample(who, 1, ds->q + i * ds->d, ds->d);
        ds->mate[i] = mated ? (int64_t)who : -1;
    }
    if (keep && !(ds->x = malloc(sizeof(float) * ds->n * ds->d))) {
        fprintf(stderr, "out of memory for %zu float vectors\n", ds->n);
        exit(1);
    }
    float *chunk = keep ? NULL : malloc(sizeof(float) * GEN_CHUNK * ds->d);
    float *scores = malloc(sizeof(float) * GEN_CHUNK * ds->nq);
    for (size_t first = 0; first < ds->n; first += GEN_CHUNK) {
        size_t rows = ds->n - first < GEN_CHUNK ? ds->n - first : GEN_CHUNK;
        float *x = keep ? ds->x + first * ds->d : chunk;
        gen_job g = {x, first, rows, ds->d};
        abis_threadpool_run(abis_threadpool_shared(), (rows + 1023) / 1024, 0, gen_task, &g);
        gt_chunk(ds, x, first, rows, scores);
        sink(ctx, x, first, rows);
        if (isatty(2))
            fprintf(stderr, "\rdata: %zu / %zu", first + rows, ds->n);
    }
    if (isatty(2))
        fprintf(stderr, "\n");
    free(chunk);
    free(scores);
}

/* SIFT: base rows 0..4899, queries 4900..4999, each L2-normalised. */
static void make_sift(dataset *ds, const opts *o, chunk_sink sink, void *ctx)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/sift-dataset-5k.tsv", o->sift_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot read %s: the SIFT sample is absent\n", path);
        exit(1);
    }
    enum { ROWS = 5000, BASE = 4900, D = 128 };
    float *all = malloc(sizeof(float) * ROWS * D);
    for (size_t r = 0; r < ROWS; r++) {
        double norm = 0;
        for (size_t k = 0; k < D; k++) {
            int v;
            if (fscanf(f, "%d", &v) != 1) {
                fprintf(stderr, "%s: row %zu is short\n", path, r + 1);
                exit(1);
            }
            all[r * D + k] = (float)v;
            norm += (double)v * v;
        }
        int id;
        if (fscanf(f, "%d", &id) != 1) {
            fprintf(stderr, "%s: row %zu has no id\n", path, r + 1);
            exit(1);
        }
        for (size_t k = 0; k < D; k++)
            all[r * D + k] = (float)(all[r * D + k] / sqrt(norm > 0 ? norm : 1));
    }
    fclose(f);
    ds->n = BASE;
    ds->d = D;
    ds->nq = ROWS - BASE;
    ds->n_mated = 0;
    ds_alloc(ds);
    ds->x = all;
    memcpy(ds->q, all + BASE * D, sizeof(float) * ds->nq * D);
    for (size_t i = 0; i < ds->nq; i++)
        ds->mate[i] = -1;
    float *scores = malloc(sizeof(float) * BASE * ds->nq);
    gt_chunk(ds, all, 0, BASE, scores);
    free(scores);
    sink(ctx, all, 0, BASE);
    /* how far cosine neighbours are from the published L2 ones */
    snprintf(path, sizeof path, "%s/groundtruth_selfsplit_q4900-4999_base0-4899_k100.tsv",
             o->sift_dir);
    if ((f = fopen(path, "r"))) {
        char line[256];
        size_t hit = 0, total = 0;
        while (fgets(line, sizeof line, f)) {
            long q, rank, row;
            if (sscanf(line, "%ld %ld %ld", &q, &rank, &row) != 3 || rank >= K)
                continue;
            for (int k = 0; k < K; k++)
                hit += ds->gt[(q - BASE) * K + k] == row;
            total++;
        }
        fclose(f);
        ds->sift_gt_ok = total > 0;
        ds->sift_l2_overlap = total ? (double)hit / total : 0;
    }
}

/* ---- the systems under test -------------------------------------------------------------------
 */

typedef struct sys {
    char name[48], setting[48];
    double build_s;
    size_t memory;
    size_t dim;
    abis_gallery *g; /* OpenABIS */
    abis_search_opts so;
    anchor *a; /* FAISS, hnswlib */
} sys;

/* The K best gallery rows of each of nq queries, best first (-1: none). */
static int sys_search(sys *s, size_t nq, const float *q, int threads, int64_t *labels)
{
    if (s->a)
        return anchor_search(s->a, nq, q, K, threads, labels);
    abis_gallery_vector_set_threads(s->g, (unsigned)threads);
    abis_search_req *r = calloc(nq, sizeof *r);
    abis_hit *h = malloc(sizeof *h * nq * K);
    if (!r || !h) {
        free(r);
        free(h);
        return -1;
    }
    for (size_t i = 0; i < nq; i++)
        r[i] = (abis_search_req){q + i * s->dim, s->dim * sizeof(float), K, NULL, h + i * K, 0};
    abis_error err = {0};
    abis_status rc = s->g->ops->search_batch(s->g, r, nq, &s->so, &err);
    for (size_t i = 0; i < nq; i++)
        for (size_t k = 0; k < K; k++)
            labels[i * K + k] = rc == ABIS_OK && k < r[i].n_out ? (int64_t)h[i * K + k].slot : -1;
    if (rc != ABIS_OK)
        fprintf(stderr, "search: %s\n", err.message);
    free(r);
    free(h);
    return rc == ABIS_OK ? 0 : -1;
}

/* One row of the table. */
typedef struct result {
    double p50, p99, cpu1, qps_b1_t1, qps_b1_tn, qps_b64_t1, qps_b64_tn;
    double r1_mated, r1_nonmated, r10, rank1;
} result;

/* Mean and percentiles of one-by-one latencies (ms), and the CPU time per
 * query (ms, all threads). */
static double timed_singles(sys *s, const dataset *ds, size_t count, int threads, double *p50,
                            double *p99, double *cpu_ms)
{
    double *t = malloc(sizeof(double) * count), total = 0, c0 = cpu_s();
    int64_t lab[K];
    for (size_t i = 0; i < count; i++) {
        /* alternate mated and non-mated probes */
        size_t qi = i % 2 ? ds->n_mated + (i / 2) % (ds->nq - ds->n_mated) : (i / 2) % ds->nq;
        double t0 = now_s();
        sys_search(s, 1, ds->q + qi * ds->d, threads, lab);
        t[i] = (now_s() - t0) * 1e3;
        total += t[i];
    }
    if (cpu_ms)
        *cpu_ms = (cpu_s() - c0) * 1e3 / count;
    qsort(t, count, sizeof *t, cmp_double);
    if (p50)
        *p50 = t[count / 2];
    if (p99)
        *p99 = t[(size_t)(0.99 * (count - 1))];
    free(t);
    return total / count;
}

/* Queries per second of batches of 64 over `count` probes; labels of all. */
static double timed_batches(sys *s, const dataset *ds, size_t count, int threads, int64_t *labels)
{
    double t0 = now_s();
    for (size_t i = 0; i < count; i += 64) {
        size_t b = count - i < 64 ? count - i : 64;
        sys_search(s, b, ds->q + i * ds->d, threads, labels + i * K);
    }
    return count / (now_s() - t0);
}

static void measure(sys *s, const dataset *ds, const opts *o, result *r)
{
    size_t lat = o->latency < ds->nq ? o->latency : ds->nq;
    if (lat < 2)
        lat = 2;
    int64_t *lab = malloc(sizeof(int64_t) * ds->nq * K);
    timed_singles(s, ds, 5, o->threads, NULL, NULL, NULL); /* warm caches */
    double m1 = timed_singles(s, ds, lat, 1, NULL, NULL, &r->cpu1);
    double mn = timed_singles(s, ds, lat, o->threads, &r->p50, &r->p99, NULL);
    r->qps_b1_t1 = 1e3 / m1;
    r->qps_b1_tn = 1e3 / mn;
    size_t sub = ds->nq < 640 ? ds->nq : 640;
    r->qps_b64_t1 = timed_batches(s, ds, sub, 1, lab);
    r->qps_b64_tn = timed_batches(s, ds, ds->nq, o->threads, lab);
    size_t h1m = 0, h1n = 0, h10 = 0, n10 = 0, rank1 = 0;
    for (size_t q = 0; q < ds->nq; q++) {
        const int64_t *got = lab + q * K, *want = ds->gt + q * K;
        int top = got[0] == want[0];
        if (q < ds->n_mated) {
            h1m += top;
            rank1 += got[0] == ds->mate[q];
        } else {
            h1n += top;
        }
        for (int i = 0; i < K; i++) {
            if (want[i] < 0)
                continue;
            n10++;
            for (int j = 0; j < K; j++)
                if (got[j] == want[i]) {
                    h10++;
                    break;
                }
        }
    }
    size_t nm = ds->nq - ds->n_mated;
    r->r1_mated = ds->n_mated ? (double)h1m / ds->n_mated : NAN;
    r->r1_nonmated = nm ? (double)h1n / nm : NAN;
    r->r10 = n10 ? (double)h10 / n10 : NAN;
    r->rank1 = ds->n_mated ? (double)rank1 / ds->n_mated : NAN;
    free(lab);
}

static void print_header(void)
{
    printf("| system | setting | build s | memory MiB | p50 ms | p99 ms | CPU ms/q t1 | q/s b1 t1 "
           "| q/s b1 tN | q/s b64 t1 | q/s b64 tN | recall@1 mated | recall@1 non-mated | "
           "recall@10 | rank-1 mated |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
           "---: | ---: | ---: |\n");
}

static void fmt_ratio(char *buf, size_t cap, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.4f", v);
}

static void print_row(const sys *s, const result *r)
{
    char a[16], b[16], c[16], d[16];
    fmt_ratio(a, sizeof a, r->r1_mated);
    fmt_ratio(b, sizeof b, r->r1_nonmated);
    fmt_ratio(c, sizeof c, r->r10);
    fmt_ratio(d, sizeof d, r->rank1);
    printf("| %s | %s | %.1f | %.0f | %.3f | %.3f | %.3f | %.0f | %.0f | %.0f | %.0f | %s | %s | "
           "%s | %s |\n",
           s->name, s->setting, s->build_s, s->memory / 1048576.0, r->p50, r->p99, r->cpu1,
           r->qps_b1_t1, r->qps_b1_tn, r->qps_b64_t1, r->qps_b64_tn, a, b, c, d);
    fflush(stdout);
}

static void run_row(sys *s, const dataset *ds, const opts *o)
{
    result r;
    measure(s, ds, o, &r);
    print_row(s, &r);
}

/* ---- OpenABIS ----------------------------------------------------------------------------------
 */

typedef struct feed {
    abis_gallery *g;
    size_t dim;
    double seconds;  /* spent in add() */
    uint64_t *codes; /* --study: every row's sign code */
} feed;

static void feed_chunk(void *ctx, const float *x, size_t first, size_t rows)
{
    feed *f = ctx;
    double t0 = now_s();
    abis_error err = {0};
    for (size_t i = 0; i < rows; i++) {
        size_t row = first + i;
        abis_id id = {{0}};
        memcpy(id.bytes, &row, sizeof row);
        if (f->g->ops->add(f->g, &id, (uint32_t)row, x + i * f->dim, f->dim * sizeof(float),
                           &err) != ABIS_OK) {
            fprintf(stderr, "add: %s\n", err.message);
            exit(1);
        }
    }
    f->seconds += now_s() - t0;
    if (f->codes) {
        size_t w = abis_sign_words(f->dim);
        int8_t *q = malloc(f->dim);
        for (size_t i = 0; i < rows; i++) {
            abis_i8_quantize(x + i * f->dim, f->dim, q);
            abis_sign_encode(q, f->dim, f->codes + (first + i) * w);
        }
        free(q);
    }
}

static abis_gallery *openabis_create(size_t dim, abis_vector_preselect kind)
{
    abis_vector_config c;
    abis_vector_config_default(&c);
    c.preselect = kind;
    c.index_min = 0; /* the graph, when asked for, from the first row */
    abis_gallery *g = NULL;
    abis_error err = {0};
    if (abis_gallery_vector_create_with(dim, &c, &g, &err) != ABIS_OK) {
        fprintf(stderr, "gallery: %s\n", err.message);
        exit(1);
    }
    return g;
}

static size_t openabis_memory(abis_gallery *g, abis_vector_stats *st)
{
    abis_gallery_vector_stats(g, st);
    return st->vector_bytes + st->bookkeeping_bytes + st->code_bytes + st->graph_bytes;
}

/* Templates added to the built gallery one at a time, each searched for
 * (pre-selected, default shortlist) right after add() returns: the add's
 * latency, and whether the very next search finds it first. */
static void inserts_visible(abis_gallery *g, const dataset *ds)
{
    enum { N = 200 };
    double t[N];
    size_t found = 0;
    float *v = malloc(sizeof(float) * ds->d);
    abis_search_opts so = {.preselect = 1};
    for (size_t i = 0; i < N; i++) {
        size_t row = ds->n + 1000000 + i; /* identities never used elsewhere */
        identity_sample(row, 0, v, ds->d);
        abis_id id = {{0}};
        memcpy(id.bytes, &row, sizeof row);
        abis_error err = {0};
        double t0 = now_s();
        if (g->ops->add(g, &id, (uint32_t)row, v, ds->d * sizeof(float), &err) != ABIS_OK)
            fprintf(stderr, "add: %s\n", err.message);
        t[i] = (now_s() - t0) * 1e3;
        abis_hit h;
        size_t n = 0;
        if (abis_gallery_search(g, v, ds->d * sizeof(float), 1, NULL, &so, &h, &n, &err) ==
                ABIS_OK &&
            n == 1 && h.slot == (uint32_t)row)
            found++;
    }
    qsort(t, N, sizeof *t, cmp_double);
    printf("- inserts: %d templates added one at a time to the built gallery: add() p50 %.3f ms, "
           "p99 %.3f ms; found first by the very next pre-selected search: %zu of %d\n",
           N, t[N / 2], t[(size_t)(0.99 * (N - 1))], found, N);
    for (size_t i = 0; i < N; i++) { /* leave the gallery as it was */
        size_t row = ds->n + 1000000 + i;
        abis_id id = {{0}};
        memcpy(id.bytes, &row, sizeof row);
        g->ops->remove(g, &id);
    }
    abis_error err = {0};
    abis_gallery_vector_sync(g, &err);
    free(v);
}

static const abis_id *snap_subject(void *ctx, uint32_t slot)
{
    static abis_id id;
    (void)ctx;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &slot, sizeof slot);
    return &id;
}

static int64_t snap_slot(void *ctx, const abis_id *subject)
{
    (void)ctx;
    uint32_t slot;
    memcpy(&slot, subject->bytes, sizeof slot);
    return slot;
}

/* Save the gallery to an encrypted snapshot and load it into a new one. */
static void snapshot_times(abis_gallery *g, const dataset *ds, const opts *o)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/bench-gallery.snap", o->snapshot_dir);
    abis_key key;
    abis_key_random(&key);
    abis_snapshot_io io = {.path = path,
                           .key = &key,
                           .head = {.segment_id = 1, .modality_id = 1, .audit_seq = 1},
                           .subject_of = snap_subject,
                           .slot_of = snap_slot};
    abis_error err = {0};
    double t0 = now_s();
    abis_status st = g->ops->snapshot_save(g, &io, &err);
    double saved = now_s() - t0;
    if (st != ABIS_OK) {
        printf("- snapshot: not written: %s\n", err.message);
        return;
    }
    io.head.version = ABIS_SNAPSHOT_VERSION;
    io.head.kind = ABIS_SNAPSHOT_KIND_VECTOR;
    abis_gallery *h = openabis_create(ds->d, ABIS_PRESELECT_CODES);
    t0 = now_s();
    st = h->ops->snapshot_load(h, &io, &err);
    double loaded = now_s() - t0;
    FILE *f = fopen(path, "rb");
    long size = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
    }
    printf("- snapshot (encrypted, %.0f MiB): written in %.1f s, loaded into a new gallery in "
           "%.1f s%s\n",
           size / 1048576.0, saved, loaded, st == ABIS_OK ? "" : " -- FAILED to load");
    abis_gallery_destroy(h);
    remove(path);
}

static void openabis_rows(abis_gallery *g, double build_s, const dataset *ds, const opts *o)
{
    abis_vector_stats st;
    size_t mem = openabis_memory(g, &st);
    sys s = {.build_s = build_s, .memory = mem, .dim = ds->d, .g = g};
    snprintf(s.name, sizeof s.name, "OpenABIS exact");
    snprintf(s.setting, sizeof s.setting, "int8, %s", st.kernel);
    run_row(&s, ds, o);
    snprintf(s.setting, sizeof s.setting, "float32 probe");
    s.so.probe_f32 = 1;
    run_row(&s, ds, o);
    s.so = (abis_search_opts){.preselect = 1};
    snprintf(s.name, sizeof s.name, "OpenABIS codes+rerank");
    for (size_t i = 0; i < o->n_shortlists; i++) {
        s.so.effort = (unsigned)o->shortlists[i];
        snprintf(s.setting, sizeof s.setting, "shortlist %zu (%s)", o->shortlists[i],
                 st.code_kernel);
        run_row(&s, ds, o);
    }
}

static void openabis_graph_rows(const dataset *ds, const opts *o)
{
    abis_gallery *g = openabis_create(ds->d, ABIS_PRESELECT_GRAPH);
    feed f = {g, ds->d, 0, NULL};
    double t0 = now_s();
    feed_chunk(&f, ds->x, 0, ds->n);
    abis_error err = {0};
    abis_gallery_vector_set_threads(g, (unsigned)o->threads);
    if (abis_gallery_vector_sync(g, &err) != ABIS_OK)
        fprintf(stderr, "graph: %s\n", err.message);
    abis_vector_stats st;
    sys s = {.build_s = now_s() - t0, .memory = openabis_memory(g, &st), .dim = ds->d, .g = g};
    snprintf(s.name, sizeof s.name, "OpenABIS graph");
    s.so = (abis_search_opts){.preselect = 1};
    for (size_t i = 0; i < o->n_efs; i++) {
        s.so.effort = (unsigned)o->efs[i];
        snprintf(s.setting, sizeof s.setting, "m 16, ef %zu", o->efs[i]);
        run_row(&s, ds, o);
    }
    abis_gallery_destroy(g);
}

/* ---- anchors ----------------------------------------------------------------------------------
 */

static anchor *anchor_build(const char *what, const dataset *ds, const opts *o, anchor *a,
                            size_t train_n, sys *s)
{
    if (!a) {
        fprintf(stderr, "%s: cannot create\n", what);
        return NULL;
    }
    size_t rss0 = rss_bytes();
    double t0 = now_s();
    if (anchor_train(a, train_n, ds->x, o->threads) != 0 ||
        anchor_add(a, ds->n, ds->x, o->threads) != 0) {
        anchor_free(a);
        return NULL;
    }
    s->build_s = now_s() - t0;
    size_t rss1 = rss_bytes();
    s->memory = rss1 > rss0 ? rss1 - rss0 : 0;
    s->a = a;
    s->dim = ds->d;
    return a;
}

static void anchor_rows(const dataset *ds, const opts *o)
{
    char err[256] = "";
    if (has_anchor(o, "flat")) {
        sys s = {.name = "FAISS IndexFlatIP", .setting = "float32"};
        if (anchor_build("flat", ds, o, anchor_faiss("Flat", (int)ds->d, 0, err, sizeof err), 0,
                         &s)) {
            run_row(&s, ds, o);
            anchor_free(s.a);
        }
    }
    if (has_anchor(o, "sq8")) {
        sys s = {.name = "FAISS IndexScalarQuantizer", .setting = "8-bit"};
        if (anchor_build("sq8", ds, o, anchor_faiss("SQ8", (int)ds->d, 0, err, sizeof err), ds->n,
                         &s)) {
            run_row(&s, ds, o);
            anchor_free(s.a);
        }
    }
    if (has_anchor(o, "ivf")) {
        /* nlist about 4 sqrt(n), trained on up to 64 vectors a list */
        size_t nlist = (size_t)(4 * sqrt((double)ds->n)), train = nlist * 64;
        if (nlist < 1)
            nlist = 1;
        if (train > ds->n)
            train = ds->n;
        char desc[64];
        snprintf(desc, sizeof desc, "IVF%zu,Flat", nlist);
        sys s = {.name = "FAISS IndexIVFFlat"};
        if (anchor_build("ivf", ds, o, anchor_faiss(desc, (int)ds->d, 0, err, sizeof err), train,
                         &s)) {
            for (size_t i = 0; i < o->n_nprobes; i++) {
                anchor_set(s.a, "nprobe", (double)o->nprobes[i]);
                snprintf(s.setting, sizeof s.setting, "nlist %zu, nprobe %zu", nlist,
                         o->nprobes[i]);
                run_row(&s, ds, o);
            }
            anchor_free(s.a);
        }
    }
    if (has_anchor(o, "hnsw")) {
        char desc[32];
        snprintf(desc, sizeof desc, "HNSW%d", o->m);
        sys s = {.name = "FAISS IndexHNSWFlat"};
        if (anchor_build("hnsw", ds, o, anchor_faiss(desc, (int)ds->d, o->efc, err, sizeof err), 0,
                         &s)) {
            for (size_t i = 0; i < o->n_efs; i++) {
                anchor_set(s.a, "efSearch", (double)o->efs[i]);
                snprintf(s.setting, sizeof s.setting, "M %d, efC %d, ef %zu", o->m, o->efc,
                         o->efs[i]);
                run_row(&s, ds, o);
            }
            anchor_free(s.a);
        }
    }
    if (has_anchor(o, "hnswlib")) {
        sys s = {.name = "hnswlib"};
        if (anchor_build("hnswlib", ds, o,
                         anchor_hnswlib((int)ds->d, ds->n, o->m, o->efc, err, sizeof err), 0, &s)) {
            for (size_t i = 0; i < o->n_efs; i++) {
                anchor_set(s.a, "efSearch", (double)o->efs[i]);
                snprintf(s.setting, sizeof s.setting, "M %d, efC %d, ef %zu", o->m, o->efc,
                         o->efs[i]);
                run_row(&s, ds, o);
            }
            anchor_free(s.a);
        }
    }
    if (err[0])
        fprintf(stderr, "anchor: %s\n", err);
}

/* ---- the pre-selection study -------------------------------------------------------------------
 */

typedef struct study_job {
    const dataset *ds;
    const uint64_t *codes;
    double *asym, *ham; /* per mated probe: impostors at or above the mate */
} study_job;

static int popcount64(uint64_t x)
{
    return __builtin_popcountll(x);
}

static void study_task(void *arg, size_t q, unsigned part)
{
    (void)part;
    study_job *j = arg;
    const dataset *ds = j->ds;
    size_t w = abis_sign_words(ds->d), mate = (size_t)ds->mate[q];
    int8_t *qq = malloc(ds->d);
    uint64_t *pc = malloc(sizeof *pc * w);
    abis_sign_probe *sp = malloc(sizeof *sp);
    uint64_t *planes = malloc(sizeof *planes * abis_sign_probe_words(ds->d));
    int32_t *sc = malloc(sizeof *sc * 4096);
    abis_i8_quantize(ds->q + q * ds->d, ds->d, qq);
    abis_sign_probe_set(sp, qq, ds->d, planes);
    abis_sign_encode(qq, ds->d, pc);
    int32_t ms;
    abis_sign_best()->scan(sp, j->codes + mate * w, 1, &ms);
    int mh = 0;
    for (size_t k = 0; k < w; k++)
        mh += popcount64(pc[k] ^ j->codes[mate * w + k]);
    size_t above_a = 0, above_h = 0;
    for (size_t r0 = 0; r0 < ds->n; r0 += 4096) {
        size_t n = ds->n - r0 < 4096 ? ds->n - r0 : 4096;
        abis_sign_best()->scan(sp, j->codes + r0 * w, n, sc);
        for (size_t i = 0; i < n; i++) {
            if (r0 + i == mate)
                continue;
            above_a += sc[i] >= ms;
            int h = 0;
            for (size_t k = 0; k < w; k++)
                h += popcount64(pc[k] ^ j->codes[(r0 + i) * w + k]);
            above_h += h <= mh;
        }
    }
    j->asym[q] = (double)above_a;
    j->ham[q] = (double)above_h;
    free(qq);
    free(pc);
    free(sp);
    free(planes);
    free(sc);
}

static void print_quantiles(const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    printf("- %s: median %.0f, 90th %.0f, 99th %.0f, 99.9th %.0f, most %.0f\n", what, v[n / 2],
           v[(size_t)(qs[1] * (n - 1))], v[(size_t)(qs[2] * (n - 1))], v[(size_t)(qs[3] * (n - 1))],
           v[n - 1]);
}

static void study(const dataset *ds, const uint64_t *codes)
{
    study_job j = {ds, codes, malloc(sizeof(double) * ds->n_mated),
                   malloc(sizeof(double) * ds->n_mated)};
    abis_threadpool_run(abis_threadpool_shared(), ds->n_mated, 0, study_task, &j);
    printf("\nImpostors scoring at or above the mate, over %zu mated probes and %zu gallery "
           "codes:\n\n",
           ds->n_mated, ds->n);
    print_quantiles("sign codes, asymmetric (4-bit probe), as the gallery", j.asym, ds->n_mated);
    print_quantiles("sign codes, Hamming distance of two codes", j.ham, ds->n_mated);
    printf("\n");
    free(j.asym);
    free(j.ham);
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    if (abis_crypto_init(NULL) != ABIS_OK) {
        fprintf(stderr, "libsodium does not start\n");
        return 1;
    }
    int anchors = strcmp(o.anchors, "none") != 0;

    /* the bandwidth anchor first, before the data takes the memory */
    size_t bw_bytes = (size_t)1 << 30;
    uint8_t *buf = aligned_alloc(64, bw_bytes);
    if (!buf) {
        fprintf(stderr, "out of memory for the bandwidth buffer\n");
        return 1;
    }
    memset(buf, 1, bw_bytes);
    double bw1 = bandwidth(buf, bw_bytes, 1), bwn = bandwidth(buf, bw_bytes, (unsigned)o.threads);
    free(buf);

    dataset ds = {0};
    abis_gallery *g = openabis_create(o.sift ? 128 : o.dim, ABIS_PRESELECT_CODES);
    feed f = {g, o.sift ? 128 : o.dim, 0, NULL};
    if (o.study && !o.sift &&
        !(f.codes = malloc(sizeof(uint64_t) * abis_sign_words(o.dim) * o.n))) {
        fprintf(stderr, "out of memory for the study's codes\n");
        return 1;
    }
    size_t rss0 = rss_bytes();
    double t0 = now_s();
    if (o.sift)
        make_sift(&ds, &o, feed_chunk, &f);
    else
        make_synth(&ds, &o, anchors || o.graph, feed_chunk, &f);
    double data_s = now_s() - t0;
    size_t rss_gallery = rss_bytes() - rss0 - (ds.x ? sizeof(float) * ds.n * ds.d : 0);

    char host[256] = "";
    gethostname(host, sizeof host);
    printf("## %s, %zu x %zu, %zu probes (%zu mated)\n\n",
           o.sift ? "SIFT (ngt-sift5k, normalised)" : "synthetic identities", ds.n, ds.d, ds.nq,
           ds.n_mated);
    printf("- bandwidth anchor (sum of 1 GiB): 1 thread %.1f GB/s, %d threads %.1f GB/s\n", bw1,
           o.threads, bwn);
    abis_vector_stats st;
    size_t mem = openabis_memory(g, &st);
    double scan_bytes = (double)st.live * (double)(ds.d + sizeof(float) + 1 + sizeof(uint32_t));
    printf("- an exact int8 scan reads %.0f MiB (values, scale, tombstone, slot): %.2f ms at %d "
           "threads' bandwidth\n",
           scan_bytes / 1048576, scan_bytes / (bwn * 1e9) * 1e3, o.threads);
    printf("- OpenABIS memory: int8 rows and scales %.1f MiB (%.3f x n x d), bookkeeping (slots, "
           "ids, tombstones, id map) %.1f MiB (all %.3f x n x d), sign codes %.1f MiB; resident "
           "growth %.1f MiB\n",
           st.vector_bytes / 1048576.0, (double)st.vector_bytes / ((double)ds.n * ds.d),
           st.bookkeeping_bytes / 1048576.0,
           (double)(st.vector_bytes + st.bookkeeping_bytes) / ((double)ds.n * ds.d),
           st.code_bytes / 1048576.0, rss_gallery / 1048576.0);
    printf("- data generation, ground truth and OpenABIS build: %.1f s (of which add() %.1f s)\n",
           data_s, f.seconds);
    if (ds.sift_gt_ok)
        printf("- exact cosine top-10 vs the published squared-L2 top-10: %.3f overlap\n",
               ds.sift_l2_overlap);
    printf("- threads: t1 = 1, tN = %d; kernels: int8 %s, sign codes %s; host %s\n\n", o.threads,
           st.kernel, st.code_kernel, host);
    inserts_visible(g, &ds);
    if (o.snapshot_dir)
        snapshot_times(g, &ds, &o);
    if (f.codes) {
        study(&ds, f.codes);
        free(f.codes);
        f.codes = NULL;
    }
    print_header();
    openabis_rows(g, f.seconds, &ds, &o);
    (void)mem;
    abis_gallery_destroy(g);
    if (o.graph && ds.x)
        openabis_graph_rows(&ds, &o);
    if (anchors && ds.x)
        anchor_rows(&ds, &o);
    free(ds.x);
    free(ds.q);
    free(ds.mate);
    free(ds.gt);
    free(ds.gt_s);
    return 0;
}
