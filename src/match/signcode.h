/*
 * signcode.h: sign codes -- one bit per value of a stored vector -- and the
 * asymmetric score of a probe against them, the vector gallery's default
 * pre-selection (docs/search.md argues it with measurements).
 *
 * A stored vector's code has bit i set when its value i is positive (its
 * int8 value > 0), in ceil(d / 64) 64-bit words, bit i of word i / 64; the
 * padding bits are 0.  The probe is not reduced to signs: it is quantised to
 * 4-bit values t_i in [-7, 7], and a code's score is
 *     score = sum_i t_i b_i
 * (the probe's values summed over the code's positive positions), which
 * ranks a stored vector by an estimate of its cosine with the probe with
 * only the stored side coarsened -- far sharper than the Hamming distance of
 * two codes.  With t in 4-bit two's complement (bit planes T3..T0),
 *     score = -8 pop(T3 & b) + 4 pop(T2 & b) + 2 pop(T1 & b) + pop(T0 & b),
 * four AND + POPCNT per word; every kernel returns these exact integers.
 */
#ifndef ABIS_MATCH_SIGNCODE_H
#define ABIS_MATCH_SIGNCODE_H

#include <stddef.h>
#include <stdint.h>

#define ABIS_SIGN_PLANES 4
#define ABIS_SIGN_TMAX 7

static inline size_t abis_sign_words(size_t d)
{
    return (d + 63) / 64;
}

/* The code of an int8 vector (d values) into code[0..words). */
void abis_sign_encode(const int8_t *q, size_t d, uint64_t *code);
/* The code of the vector's signs about a centre: bit i set when
 * (float)q_i * scale > centre[i].  Ranking by sum_i t_i b_i then follows
 * p . (g - centre), which orders gallery vectors as p . g does (p . centre
 * is the same for all), so data that is not centred on zero (SIFT
 * descriptors: every value >= 0) keeps informative codes. */
void abis_sign_encode_centred(const int8_t *q, float scale, const float *centre, size_t d,
                              uint64_t *code);

/* A probe prepared for the kernels: bit planes T0..T3 of its 4-bit values,
 * plane k at planes[k * words .. +words). */
typedef struct abis_sign_probe {
    const uint64_t *planes;
    size_t words;
} abis_sign_probe;

/* Words of scratch abis_sign_probe_set needs. */
static inline size_t abis_sign_probe_words(size_t d)
{
    return ABIS_SIGN_PLANES * abis_sign_words(d);
}

/* From the probe's int8 values (quantised by abis_i8_quantize): t_i =
 * round(7 q_i / 127); the planes go to buf (abis_sign_probe_words(d)
 * words), which must outlive p. */
void abis_sign_probe_set(abis_sign_probe *p, const int8_t *q, size_t d, uint64_t *buf);

/* The score of one probe against `count` codes of p->words words each,
 * consecutive in memory. */
typedef void (*abis_sign_scan_fn)(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                                  int32_t *out);

/* The indices i (ascending) of the n scores with s[i] >= thr, into out;
 * returns how many. */
typedef size_t (*abis_sign_above_fn)(const int32_t *s, size_t n, int32_t thr, uint32_t *out);

/* The codes among `count` whose score is >= thr: their indices (ascending)
 * into idx and their scores into score (count entries each at most);
 * returns how many.  The same as scan followed by above; the AVX-512 kernel
 * does both in registers for two-word codes, so a scan that keeps few
 * codes writes almost nothing. */
typedef size_t (*abis_sign_select_fn)(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                                      int32_t thr, uint32_t *idx, int32_t *score);

typedef struct abis_sign_kernel {
    const char *name; /* "scalar", "popcnt", "avx512" */
    abis_sign_scan_fn scan;
    abis_sign_above_fn above;
    abis_sign_select_fn select;
} abis_sign_kernel;

void abis_sign_scan_scalar(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                           int32_t *out);
size_t abis_sign_above_scalar(const int32_t *s, size_t n, int32_t thr, uint32_t *out);
size_t abis_sign_select_scalar(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                               int32_t thr, uint32_t *idx, int32_t *score);
/* NULL when not compiled for this target; use through abis_sign_best(). */
abis_sign_scan_fn abis_sign_scan_popcnt_fn(void);
abis_sign_select_fn abis_sign_select_popcnt_fn(void);
abis_sign_scan_fn abis_sign_scan_avx512_fn(void);
abis_sign_above_fn abis_sign_above_avx512_fn(void);
abis_sign_select_fn abis_sign_select_avx512_fn(void);

/* select as a kernel's scan then above, 256 codes at a time. */
static inline size_t abis_sign_select_with(abis_sign_scan_fn scan, abis_sign_above_fn above,
                                           const abis_sign_probe *p, const uint64_t *codes,
                                           size_t count, int32_t thr, uint32_t *idx, int32_t *score)
{
    int32_t s[256];
    size_t m = 0;
    for (size_t i = 0; i < count; i += 256) {
        size_t len = count - i < 256 ? count - i : 256;
        scan(p, codes + i * p->words, len, s);
        size_t k = above(s, len, thr, idx + m);
        for (size_t u = 0; u < k; u++) {
            score[m + u] = s[idx[m + u]];
            idx[m + u] += (uint32_t)i;
        }
        m += k;
    }
    return m;
}

/* The word loop of the scalar and POPCNT kernels, with their popcount. */
static inline void abis_sign_scan_with(const abis_sign_probe *p, const uint64_t *codes,
                                       size_t count, int32_t *out, int (*popcount)(uint64_t))
{
    const size_t w = p->words;
    for (size_t i = 0; i < count; i++) {
        const uint64_t *c = codes + i * w;
        int32_t s = 0;
        for (size_t j = 0; j < w; j++)
            s += popcount(c[j] & p->planes[j]) + 2 * popcount(c[j] & p->planes[w + j]) +
                 4 * popcount(c[j] & p->planes[2 * w + j]) -
                 8 * popcount(c[j] & p->planes[3 * w + j]);
        out[i] = s;
    }
}

/* The best kernel this CPU runs; every kernel it runs, scalar first. */
const abis_sign_kernel *abis_sign_best(void);
const abis_sign_kernel *abis_sign_available(size_t *n);

#endif
