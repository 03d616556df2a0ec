/*
 * populate.c: the gallery the HTTP benchmark runs against (bench/http/run).
 *
 *   bench_http_populate DIR PEOPLE DIM PROBES
 *
 * Creates a store in DIR with a segment and a consent purpose "bench", a
 * vector modality "face" of DIM values and a client "bench" (every
 * operation, no rate limit of its own), and enrols PEOPLE synthetic people
 * through that client (scripts/synthgen.h, sigma 0.5: the engine's own
 * deduplication runs for each).  Writes
 *   DIR/bench.key     the client's API key (mode 0600)
 *   DIR/probes.txt    PROBES lines "TOKEN BASE64": a person's id for the
 *                     client and a fresh sample of that person (little-endian
 *                     float32), people spread over the whole gallery
 * and prints progress on stderr.  A person the engine's deduplication finds
 * already enrolled (two synthetic identities too alike) is skipped.  Run
 * again on a DIR that has bench.key, it resumes: it enrols people from the
 * number the segment holds on until it holds PEOPLE.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "abis/abis.h"
#include "abis/client.h"
#include "synthgen.h"

static void die(const char *what, const abis_error *err)
{
    fprintf(stderr, "bench_http_populate: %s: %s\n", what, err->message);
    exit(1);
}

static int count_subjects(const abis_segment_info *s, void *p)
{
    *(size_t *)p += s->subjects;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_http_populate DIR PEOPLE DIM PROBES\n");
        return 2;
    }
    const char *dir = argv[1];
    size_t people = strtoul(argv[2], NULL, 10), dim = strtoul(argv[3], NULL, 10),
           probes = strtoul(argv[4], NULL, 10);
    if (!people || !dim || !probes || probes > people)
        return 2;
    abis_error err = {0};
    abis_engine *e;
    abis_open_options o = {.data_dir = dir, .actor = "bench"};
    char key[ABIS_API_KEY_LEN + 1] = "", path[4200];
    snprintf(path, sizeof path, "%s/bench.key", dir);
    FILE *kf = fopen(path, "r");
    int resume = kf != NULL;
    if (kf) {
        if (!fgets(key, sizeof key, kf))
            return 1;
        fclose(kf);
    } else if (abis_store_init(dir, &err) != ABIS_OK) {
        die("init", &err);
    }
    if (abis_engine_open(&o, &e, &err) != ABIS_OK)
        die("open", &err);
    if (!resume) {
        abis_purpose_def p = {.name = "bench", .basis = ABIS_BASIS_CONSENT, .target_fmr = 1e-4};
        if (abis_segment_add(e, NULL, "bench", &err) != ABIS_OK ||
            abis_purpose_add(e, NULL, &p, &err) != ABIS_OK ||
            abis_modality_add(e, NULL, "face", "vector", (int)dim, &err) != ABIS_OK)
            die("registry", &err);
        const char *seg = "bench", *pur = "bench";
        abis_client_def d = {.name = "bench",
                             .segments = &seg,
                             .n_segments = 1,
                             .purposes = &pur,
                             .n_purposes = 1,
                             .operations = ABIS_CLIENT_OPS_ALL,
                             .rate_limit = 1e9};
        if (abis_client_add(e, NULL, &d, key, &err) != ABIS_OK)
            die("client add", &err);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, key, strlen(key)) < 0 || close(fd) != 0)
            return 1;
    }
    const char *pur = "bench";
    abis_client *cl;
    if (abis_client_authenticate(e, key, NULL, &cl, &err) != ABIS_OK)
        die("authenticate", &err);
    size_t enrolled = 0, written = 0;
    if (resume && abis_segment_list(e, count_subjects, &enrolled, &err) != ABIS_OK)
        die("segment list", &err);
    snprintf(path, sizeof path, "%s/probes.txt", dir);
    FILE *pf = fopen(path, resume ? "a+" : "w");
    if (!pf)
        return 1;
    for (int ch; resume && (ch = fgetc(pf)) != EOF;)
        written += ch == '\n';
    float *v = malloc(dim * sizeof *v);
    char *b64 = malloc(sodium_base64_ENCODED_LEN(dim * 4, sodium_base64_VARIANT_ORIGINAL));
    size_t stride = people / probes, skipped = 0, start = enrolled;
    double t0 = now_s();
    for (size_t i = enrolled; enrolled < people; i++) {
        abis_synth_sample(1, i, 0, ABIS_SYNTH_SIGMA, v, dim);
        abis_template_input t = {.modality = "face", .vector = v, .dim = dim, .quality = -1};
        abis_enroll_request req = {.segment = "bench",
                                   .templates = &t,
                                   .n_templates = 1,
                                   .consents = &pur,
                                   .n_consents = 1};
        abis_client_result r;
        abis_status st = abis_client_enroll(e, cl, NULL, &req, &r, &err);
        if (st == ABIS_E_DUPLICATE) {
            fprintf(stderr, "populate: person %zu skipped: %s\n", i, err.message);
            skipped++;
            continue;
        }
        if (st != ABIS_OK)
            die("enrol", &err);
        enrolled++;
        if (i % stride == 0 && written < probes) {
            char hex[ABIS_ID_HEX_LEN + 1];
            abis_id_to_hex(&r.subject, hex);
            abis_synth_sample(1, i, 1, ABIS_SYNTH_SIGMA, v, dim);
            sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(dim * 4, sodium_base64_VARIANT_ORIGINAL),
                              (unsigned char *)v, dim * 4, sodium_base64_VARIANT_ORIGINAL);
            fprintf(pf, "%s %s\n", hex, b64);
            written++;
        }
        if (enrolled % 5000 == 0)
            fprintf(stderr, "populate: %zu / %zu enrolled (%.0f per second)\n", enrolled, people,
                    (double)(enrolled - start) / (now_s() - t0));
    }
    fclose(pf);
    fprintf(stderr, "populate: %zu people enrolled (%zu skipped as duplicates) in %.1f s\n",
            enrolled, skipped, now_s() - t0);
    free(v);
    free(b64);
    abis_client_free(cl);
    abis_engine_close(e);
    return 0;
}
