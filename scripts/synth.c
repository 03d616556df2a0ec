/*
 * synth.c: abis-synth, the synthetic biometric data generator (scripts/synthgen.h).
 *
 *   abis-synth people --count N [--dim D] [--seed S] [--segment NAME]
 *                     [--modality NAME] [--consent PURPOSE]... [--first I]
 *       JSON Lines for `abis import`: person I gets ref "P<I>" and sample 0.
 *   abis-synth vector --person I [--sample J] [--dim D] [--seed S]
 *                     [--format npy|json|raw] --out FILE
 *       one sample of one person, for `abis enroll|verify|identify --template`.
 *
 * Sample 0 is what is enrolled; samples 1, 2, ... are later captures of the
 * same person (genuine probes).  Persons never enrolled are impostors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synthgen.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: abis-synth people --count N [--dim D] [--seed S] [--segment NAME]\n"
            "                         [--modality NAME] [--consent PURPOSE]... [--first I]\n"
            "       abis-synth vector --person I [--sample J] [--dim D] [--seed S]\n"
            "                         [--format npy|json|raw] --out FILE\n");
    exit(2);
}

static void write_npy(FILE *f, const float *v, size_t dim)
{
    char header[128];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }", dim);
    /* magic (6) + version (2) + header length (2) + header, padded to 64 with '\n' last. */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(v, sizeof(float), dim, f); /* little-endian hosts only (x86-64, arm64) */
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    long count = 0, first = 0, person = -1, sample = 0, dim = 512;
    unsigned long long seed = 1;
    const char *segment = "demo", *modality = "face", *format = "npy", *out = NULL;
    const char *consents[16];
    int n_consents = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--count"))
            count = atol(v);
        else if (!strcmp(a, "--first"))
            first = atol(v);
        else if (!strcmp(a, "--person"))
            person = atol(v);
        else if (!strcmp(a, "--sample"))
            sample = atol(v);
        else if (!strcmp(a, "--dim"))
            dim = atol(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--segment"))
            segment = v;
        else if (!strcmp(a, "--modality"))
            modality = v;
        else if (!strcmp(a, "--format"))
            format = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--consent") && n_consents < 16)
            consents[n_consents++] = v;
        else
            usage();
    }
    if (dim < 1 || dim > 65536)
        usage();
    float *vec = malloc((size_t)dim * sizeof(float));
    if (!vec)
        return 1;
    if (!strcmp(mode, "people")) {
        for (long p = first; p < first + count; p++) {
            abis_synth_sample(seed, (uint64_t)p, 0, ABIS_SYNTH_SIGMA, vec, (size_t)dim);
            printf("{\"segment\":\"%s\",\"ref\":\"P%ld\",\"templates\":[{\"modality\":\"%s\","
                   "\"vector\":[",
                   segment, p, modality);
            for (long i = 0; i < dim; i++)
                printf(i ? ",%.7g" : "%.7g", vec[i]);
            printf("]}],\"consents\":[");
            for (int c = 0; c < n_consents; c++)
                printf(c ? ",\"%s\"" : "\"%s\"", consents[c]);
            printf("]}\n");
        }
    } else if (!strcmp(mode, "vector")) {
        if (person < 0 || !out)
            usage();
        abis_synth_sample(seed, (uint64_t)person, (uint64_t)sample, ABIS_SYNTH_SIGMA, vec,
                          (size_t)dim);
        FILE *f = fopen(out, "wb");
        if (!f) {
            perror(out);
            return 1;
        }
        if (!strcmp(format, "npy")) {
            write_npy(f, vec, (size_t)dim);
        } else if (!strcmp(format, "json")) {
            fputc('[', f);
            for (long i = 0; i < dim; i++)
                fprintf(f, i ? ",%.9g" : "%.9g", vec[i]);
            fputs("]\n", f);
        } else if (!strcmp(format, "raw")) {
            fwrite(vec, sizeof(float), (size_t)dim, f);
        } else {
            usage();
        }
        if (fclose(f) != 0) {
            perror(out);
            return 1;
        }
    } else {
        usage();
    }
    free(vec);
    return 0;
}
