/*
 * match_avx2.c: the local-similarity kernel of the fingerprint matcher
 * (sim_kernel.h) compiled with the popcount instruction (CMake gives files
 * named *_avx2.c -mavx2 -mfma -mpopcnt); match.c uses it only on a CPU that
 * has them.
 */
#include "modality/finger/match_internal.h"

#if defined(__x86_64__) && defined(__POPCNT__)

#define SIM_POPCOUNT(x) ((uint32_t)__builtin_popcountll(x))
#define SIM_NAME sim_popcnt
#include "modality/finger/sim_kernel.h"

fp_sim_fn fp_sim_avx2_fn(void)
{
    return sim_popcnt;
}

#else

fp_sim_fn fp_sim_avx2_fn(void)
{
    return NULL;
}

#endif
