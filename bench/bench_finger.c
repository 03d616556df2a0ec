/*
 * bench_finger.c: speed of the fingerprint modality (docs/BENCHMARKS.md,
 * "Fingerprint"): extraction time per image, full-matcher and
 * pre-selection comparisons per second on one core, and 1:N search of a
 * probe against a gallery of N fingers on one and two threads.
 *
 *   build/bench_finger ../shared/data/finger/fvc2002 [N (100000)] [probes (50)]
 *
 * Data: the 240 images of FVC2002 DB1_B, DB3_B and DB4_B.  The 1:N gallery
 * holds the first impression of each of the 30 fingers plus N - 30
 * synthetic fingers made from the real templates: each is a template of
 * another finger mirrored (a left-right flip is not the same finger),
 * turned by a random angle, with a fifth of its minutiae dropped and the
 * rest moved by up to 2 pixels -- real minutiae counts and layouts, so the
 * matcher does the work it would on real prints, but not real people.
 * Probes are the other impressions of the 30 fingers; the report says how
 * many of their mates came back first.
 *
 * Times are wall clock and, for the single-core figures, the thread's CPU
 * time too (the machine is shared: the load average is printed).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/modality.h"
#include "gallery/gallery_finger.h"
#include "match/match.h"
#include "modality/finger/finger.h"
#include "modality/finger/match.h"

#define DBS 3
#define FINGERS 10
#define IMPRESSIONS 8
#define N_IMG (DBS * FINGERS * IMPRESSIONS)

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU time of every thread of the process. */
static double cpu_all(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(p * (double)(n - 1) + 0.5);
    return v[k];
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static double uni(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* A synthetic finger from a real template (see the header comment). */
static void synthetic_of(const abis_finger_template *in, abis_finger_template *out)
{
    double a = 2 * M_PI * uni(), c = cos(a), s = sin(a);
    double cx = in->width / 2.0, cy = in->height / 2.0;
    *out = *in;
    int k = 0;
    for (int i = 0; i < in->n; i++) {
        if (uni() < 0.2)
            continue;
        double x = (in->width - 1) - in->m[i].x - cx, y = -(in->m[i].y - cy);
        double th = 3 * M_PI - in->m[i].angle + a;
        abis_minutia m = in->m[i];
        m.x = (float)(c * x - s * y + cx + 4 * (uni() - 0.5));
        m.y = (float)(-(s * x + c * y) + cy + 4 * (uni() - 0.5));
        m.angle = (float)fmod(th, 2 * M_PI);
        out->m[k++] = m;
    }
    out->n = k;
    /* keep it inside its image */
    for (int i = 0; i < out->n; i++) {
        out->m[i].x = fminf(fmaxf(out->m[i].x, 0), (float)out->width - 1);
        out->m[i].y = fminf(fmaxf(out->m[i].y, 0), (float)out->height - 1);
    }
}

static abis_id id_of(uint64_t k)
{
    abis_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &k, sizeof k);
    return id;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FVC2002-DIR [gallery size] [probes]\n", argv[0]);
        return 2;
    }
    size_t gallery_n = argc > 2 ? (size_t)atol(argv[2]) : 100000;
    int n_probes = argc > 3 ? atoi(argv[3]) : 50;
    static const char *const dbs[DBS] = {"DB1_B", "DB3_B", "DB4_B"};
    static abis_finger_template t[N_IMG];
    int ok[N_IMG];
    double ms[N_IMG], cpu_ms[N_IMG];
    int minutiae = 0, n_ok = 0;
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "?";
    if (la) {
        if (!fgets(load, sizeof load, la))
            load[0] = 0;
        fclose(la);
    }
    printf("load average at start: %s", load);
    printf("kernel: %s\n", abis_finger_kernel_name());

    /* ---- extraction ---- */
    for (int k = 0; k < N_IMG; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/%d_%d.tif", argv[1], dbs[k / 80], 101 + (k % 80) / 8,
                 k % 8 + 1);
        abis_image img;
        abis_error err = {0};
        if (abis_image_read_file(path, &img, &err) != ABIS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double w0 = wall(), c0 = cpu();
        ok[k] = abis_finger_extract(&img, 0, &t[k], NULL, &err) == ABIS_OK;
        ms[k] = (wall() - w0) * 1e3;
        cpu_ms[k] = (cpu() - c0) * 1e3;
        abis_image_free(&img);
        if (ok[k]) {
            minutiae += t[k].n;
            n_ok++;
        }
    }
    for (int d = 0; d < DBS; d++) {
        double w[80], c[80], wsum = 0, csum = 0;
        memcpy(w, ms + d * 80, sizeof w);
        memcpy(c, cpu_ms + d * 80, sizeof c);
        for (int k = 0; k < 80; k++) {
            wsum += w[k];
            csum += c[k];
        }
        printf("extraction %s: mean %.1f ms wall (p50 %.1f, p90 %.1f), %.1f ms CPU\n", dbs[d],
               wsum / 80, pct(w, 80, 0.5), pct(w, 80, 0.9), csum / 80);
    }
    printf("templates: %d of %d images, %.1f minutiae on average\n", n_ok, N_IMG,
           (double)minutiae / n_ok);

    /* ---- 1:1 on one core ---- */
    abis_finger_prep *p[N_IMG] = {0};
    double w0 = wall(), c0 = cpu();
    for (int k = 0; k < N_IMG; k++)
        if (ok[k])
            abis_finger_prepare(&t[k], &p[k], NULL);
    printf("prepare (cylinders): %.3f ms per template CPU\n", (cpu() - c0) * 1e3 / n_ok);
    for (int mode = 0; mode < 3; mode++) {
        abis_finger_force_scalar(mode == 2);
        double sum = 0;
        long n = 0;
        w0 = wall();
        c0 = cpu();
        int rounds = mode == 2 ? 1 : 3;
        for (int r = 0; r < rounds; r++)
            for (int d = 0; d < DBS; d++)
                for (int u = d * 80; u < d * 80 + 80; u++)
                    for (int v = d * 80; v < d * 80 + 80; v++) {
                        if (u == v || !p[u] || !p[v])
                            continue;
                        sum += mode == 1 ? abis_finger_preselect(p[u], p[v])
                                         : abis_finger_match(p[u], p[v]);
                        n++;
                    }
        double wt = wall() - w0, ct = cpu() - c0;
        printf("%-34s %ld comparisons: %.0f /s CPU (%.2f us), %.0f /s wall  [checksum %.3f]\n",
               mode == 0   ? "full matcher, 1 core:"
               : mode == 1 ? "pre-selection, 1 core:"
                           : "full matcher, portable kernel:",
               n, n / ct, ct / n * 1e6, n / wt, sum);
    }
    abis_finger_force_scalar(0);

    /* ---- 1:N ---- */
    abis_gallery *g;
    abis_error err = {0};
    if (abis_gallery_finger_create(&g, &err) != ABIS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    unsigned char *buf = malloc(abis_finger_template_size(ABIS_FINGER_MAX_MINUTIAE));
    w0 = wall();
    uint32_t slot = 0;
    for (int f = 0; f < DBS * FINGERS; f++) /* the real enrolments: slot f */
        if (ok[f * IMPRESSIONS]) {
            abis_finger_template_write(&t[f * IMPRESSIONS], buf);
            abis_id id = id_of(slot);
            g->ops->add(g, &id, (uint32_t)f, buf, abis_finger_template_size(t[f * IMPRESSIONS].n),
                        &err);
            slot++;
        }
    static abis_finger_template s;
    for (size_t k = slot; k < gallery_n; k++) {
        int src;
        do
            src = (int)(uni() * N_IMG);
        while (!ok[src]);
        synthetic_of(&t[src], &s);
        if (s.n < ABIS_FINGER_MIN_MINUTIAE)
            s = t[src];
        abis_finger_template_write(&s, buf);
        abis_id id = id_of(k);
        if (g->ops->add(g, &id, (uint32_t)(1000 + k), buf, abis_finger_template_size(s.n), &err) !=
            ABIS_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    size_t size = g->ops->count(g);
    printf("gallery: %zu fingers built in %.1f s\n", size, wall() - w0);
    /* the 1:N threshold the engine would use at FPIR 1 % (default calibration) */
    const abis_modality_kind *kind = abis_modality_kind_find("minutiae");
    char json[ABIS_DEFAULT_CALIBRATION_MAX];
    abis_modality_rec rec;
    memset(&rec, 0, sizeof rec);
    kind->default_calibration(&rec, json, sizeof json);
    abis_calibration *cal;
    if (abis_calibration_parse(json, &cal, &err) != ABIS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double threshold = abis_calibration_fpir_threshold(cal, 0.01, size);
    abis_calibration_free(cal);
    for (unsigned threads = 1; threads <= 2; threads++) {
        abis_gallery_finger_set_threads(g, threads);
        double *lat = malloc((size_t)n_probes * sizeof *lat);
        double *cpus = malloc((size_t)n_probes * sizeof *cpus);
        int first = 0, done = 0, above = 0, above_found = 0;
        for (int q = 0; q < n_probes; q++) {
            int f = q % (DBS * FINGERS), imp = 1 + (q / (DBS * FINGERS)) % (IMPRESSIONS - 1);
            int k = f * IMPRESSIONS + imp;
            if (!ok[k] || !ok[f * IMPRESSIONS])
                continue;
            abis_finger_template_write(&t[k], buf);
            abis_hit hits[10];
            size_t n = 0;
            w0 = wall();
            double c1 = cpu_all();
            g->ops->search(g, buf, abis_finger_template_size(t[k].n), 10, NULL, hits, &n, &err);
            cpus[done] = (cpu_all() - c1) * 1e3;
            lat[done++] = (wall() - w0) * 1e3;
            first += n > 0 && hits[0].slot == (uint32_t)f;
            double one = abis_finger_match(p[k], p[f * IMPRESSIONS]);
            if (one >= threshold) {
                above++;
                for (size_t h = 0; h < n; h++)
                    above_found += hits[h].slot == (uint32_t)f;
            }
        }
        double cpu_mean = 0;
        for (int q = 0; q < done; q++)
            cpu_mean += cpus[q] / done;
        printf("1:N over %zu fingers, %u thread%s: wall p50 %.1f ms, p99 %.1f ms; CPU %.1f ms a "
               "search (%.1f ms per thread); %d probes, mate first for %d; %d of %d mates above "
               "the 1:N threshold %.4f returned\n",
               size, threads, threads > 1 ? "s" : "", pct(lat, (size_t)done, 0.5),
               pct(lat, (size_t)done, 0.99), cpu_mean, cpu_mean / threads, done, first, above_found,
               above, threshold);
        free(lat);
        free(cpus);
    }
    la = fopen("/proc/loadavg", "r");
    if (la) {
        if (!fgets(load, sizeof load, la))
            load[0] = 0;
        fclose(la);
    }
    printf("load average at end: %s", load);
    abis_gallery_destroy(g);
    for (int k = 0; k < N_IMG; k++)
        abis_finger_prep_free(p[k]);
    free(buf);
    return 0;
}
