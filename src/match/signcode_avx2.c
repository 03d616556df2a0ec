/*
 * signcode_avx2.c: the sign-code scoring kernel with the POPCNT instruction
 * (signcode.h).  CMake compiles this file with the *_avx2.c flags (-mavx2
 * -mfma -mpopcnt); it runs only after signcode.c has checked the CPU.
 */
#include "match/signcode.h"

#if defined(__x86_64__) && defined(__POPCNT__)

static void scan_popcnt(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                        int32_t *out)
{
    const size_t w = p->words;
    for (size_t i = 0; i < count; i++) {
        const uint64_t *c = codes + i * w;
        int32_t s = 0;
        for (size_t j = 0; j < w; j++)
            s += __builtin_popcountll(c[j] & p->planes[j]) +
                 2 * __builtin_popcountll(c[j] & p->planes[w + j]) +
                 4 * __builtin_popcountll(c[j] & p->planes[2 * w + j]) -
                 8 * __builtin_popcountll(c[j] & p->planes[3 * w + j]);
        out[i] = s;
    }
}

abis_sign_scan_fn abis_sign_scan_popcnt_fn(void)
{
    return scan_popcnt;
}

#else

abis_sign_scan_fn abis_sign_scan_popcnt_fn(void)
{
    return NULL;
}

#endif
