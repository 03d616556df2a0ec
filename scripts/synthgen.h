/*
 * synthgen.h: the synthetic biometric data generator for tests, the demo and
 * benchmarks (header-only, deterministic).
 *
 * An identity is a random unit vector in `dim` dimensions (a normalised
 * vector of independent standard normal values).  A sample of that identity is
 * identity + sigma * g / sqrt(dim), g standard normal, normalised again: its
 * cosine with the identity is about 1 / sqrt(1 + sigma^2) and with another
 * sample about 1 / (1 + sigma^2) (0.8 for sigma = 0.5), while two different
 * identities have cosines distributed about N(0, 1/dim) -- the way genuine and
 * impostor scores of real embeddings separate.
 */
#ifndef ABIS_SYNTHGEN_H
#define ABIS_SYNTHGEN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define ABIS_SYNTH_SIGMA 0.5 /* default sample noise: genuine cosine about 0.8 */

typedef struct abis_synth_rng {
    uint64_t state;
} abis_synth_rng;

/* splitmix64 (Steele, Lea, Flood 2014): a small, fast, well-mixed generator. */
static inline uint64_t abis_synth_next(abis_synth_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static inline double abis_synth_uniform(abis_synth_rng *r)
{
    return ((double)(abis_synth_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal by the Box-Muller transform. */
static inline double abis_synth_normal(abis_synth_rng *r)
{
    double u = abis_synth_uniform(r), v = abis_synth_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static inline void abis_synth_normalise(float *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    double inv = s > 0 ? 1.0 / sqrt(s) : 0;
    for (size_t i = 0; i < dim; i++)
        v[i] = (float)(v[i] * inv);
}

/* The identity vector of person `id` under `seed`. */
static inline void abis_synth_identity(uint64_t seed, uint64_t id, float *out, size_t dim)
{
    abis_synth_rng r = {seed * 0x100000001B3ull ^ (id + 1) * 0x9E3779B97F4A7C15ull};
    for (size_t i = 0; i < dim; i++)
        out[i] = (float)abis_synth_normal(&r);
    abis_synth_normalise(out, dim);
}

/* Sample number `sample` of person `id`: a noisy copy of the identity. */
static inline void abis_synth_sample(uint64_t seed, uint64_t id, uint64_t sample, double sigma,
                                     float *out, size_t dim)
{
    abis_synth_identity(seed, id, out, dim);
    abis_synth_rng r = {(seed ^ 0xA5A5A5A5ull) * 0x100000001B3ull ^
                        (id + 1) * 0xD1B54A32D192ED03ull ^ (sample + 1) * 0x9E3779B97F4A7C15ull};
    double scale = sigma / sqrt((double)dim);
    for (size_t i = 0; i < dim; i++)
        out[i] += (float)(scale * abis_synth_normal(&r));
    abis_synth_normalise(out, dim);
}

#endif
