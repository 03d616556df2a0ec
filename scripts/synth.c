/*
 * synth.c: abis-synth, the synthetic biometric data generator (scripts/synthgen.h).
 *
 *   abis-synth people --count N [--dim D] [--seed S] [--segment NAME]
 *                     [--modality NAME] [--consent PURPOSE]... [--first I]
 *       JSON Lines for `abis import`: person I gets ref "P<I>" and sample 0.
 *   abis-synth vector --person I [--sample J] [--dim D] [--seed S]
 *                     [--format npy|json|raw] --out FILE
 *       one sample of one person, for `abis enroll|verify|identify --template`.
 *   abis-synth labelled --identities N [--samples S] [--dim D] [--seed S]
 *                       [--modality NAME[:DIM[:SIGMA]]]...
 *       a labelled evaluation set for `abis eval` / `abis calibrate`: JSON Lines
 *       {"identity": "id17", "templates": {"face": [...], "voice": [...]}},
 *       S lines per identity.  Each modality of an identity is an independent
 *       random identity vector (its own seed stream) and each line a noisy copy
 *       with that modality's SIGMA (default: face 0.5, voice 0.9, others 0.5);
 *       without --modality one "face" modality of D values.
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
            "                         [--format npy|json|raw] --out FILE\n"
            "       abis-synth labelled --identities N [--samples S] [--dim D] [--seed S]\n"
            "                           [--modality NAME[:DIM[:SIGMA]]]...\n");
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

/* One modality of the labelled mode: NAME[:DIM[:SIGMA]]. */
typedef struct synth_modality {
    char name[64];
    long dim;
    double sigma;
} synth_modality;

static int parse_modality(const char *spec, long default_dim, synth_modality *m)
{
    const char *c1 = strchr(spec, ':');
    size_t len = c1 ? (size_t)(c1 - spec) : strlen(spec);
    if (len == 0 || len >= sizeof m->name)
        return -1;
    memcpy(m->name, spec, len);
    m->name[len] = '\0';
    m->dim = default_dim;
    m->sigma = strcmp(m->name, "voice") == 0 ? 0.9 : ABIS_SYNTH_SIGMA;
    if (c1) {
        char *end;
        m->dim = strtol(c1 + 1, &end, 10);
        if (*end == ':')
            m->sigma = strtod(end + 1, &end);
        if (*end)
            return -1;
    }
    return m->dim >= 1 && m->dim <= 65536 && m->sigma >= 0 ? 0 : -1;
}

/* The labelled mode: S lines per identity, one template per modality. */
static int labelled(long identities, long samples, unsigned long long seed,
                    const synth_modality *mods, int n_mods)
{
    long max_dim = 1;
    for (int k = 0; k < n_mods; k++)
        if (mods[k].dim > max_dim)
            max_dim = mods[k].dim;
    float *v = malloc((size_t)max_dim * sizeof *v);
    if (!v)
        return 1;
    for (long p = 0; p < identities; p++)
        for (long s = 0; s < samples; s++) {
            printf("{\"identity\":\"id%ld\",\"templates\":{", p);
            for (int k = 0; k < n_mods; k++) {
                /* A seed stream per modality: independent identity vectors. */
                uint64_t mseed = seed * 1000003ull + (uint64_t)k * 0x51ED2701ull;
                abis_synth_sample(mseed, (uint64_t)p, (uint64_t)s, mods[k].sigma, v,
                                  (size_t)mods[k].dim);
                printf(k ? ",\"%s\":[" : "\"%s\":[", mods[k].name);
                for (long i = 0; i < mods[k].dim; i++)
                    printf(i ? ",%.7g" : "%.7g", v[i]);
                printf("]");
            }
            printf("}}\n");
        }
    free(v);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    long count = 0, first = 0, person = -1, sample = 0, dim = 512, identities = 0, samples = 4;
    const char *mod_specs[16];
    int n_mod_specs = 0;
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
        else if (!strcmp(a, "--modality")) {
            modality = v;
            if (n_mod_specs < 16)
                mod_specs[n_mod_specs++] = v;
        } else if (!strcmp(a, "--identities"))
            identities = atol(v);
        else if (!strcmp(a, "--samples"))
            samples = atol(v);
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
    if (!strcmp(mode, "labelled")) {
        synth_modality mods[16];
        int n_mods = n_mod_specs ? n_mod_specs : 1;
        for (int k = 0; k < n_mods; k++)
            if (parse_modality(n_mod_specs ? mod_specs[k] : "face", dim, &mods[k]) != 0)
                usage();
        if (identities < 1 || samples < 1)
            usage();
        return labelled(identities, samples, seed, mods, n_mods);
    }
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
