/*
 * signcode_avx2.c: the sign-code scoring kernel with the POPCNT instruction
 * (signcode.h).  CMake compiles this file with the *_avx2.c flags (-mavx2
 * -mfma -mpopcnt); it runs only after signcode.c has checked the CPU.
 */
#include "match/signcode.h"

#if defined(__x86_64__) && defined(__POPCNT__)

static int popcount_insn(uint64_t x)
{
    return __builtin_popcountll(x); /* POPCNT: this file is compiled with -mpopcnt */
}

static void scan_popcnt(const abis_sign_probe *p, const uint64_t *codes, size_t count, int32_t *out)
{
    abis_sign_scan_with(p, codes, count, out, popcount_insn);
}

static size_t select_popcnt(const abis_sign_probe *p, const uint64_t *codes, size_t count,
                            int32_t thr, uint32_t *idx, int32_t *score)
{
    return abis_sign_select_with(scan_popcnt, abis_sign_above_scalar, p, codes, count, thr, idx,
                                 score);
}

abis_sign_scan_fn abis_sign_scan_popcnt_fn(void)
{
    return scan_popcnt;
}

abis_sign_select_fn abis_sign_select_popcnt_fn(void)
{
    return select_popcnt;
}

#else

abis_sign_scan_fn abis_sign_scan_popcnt_fn(void)
{
    return NULL;
}

abis_sign_select_fn abis_sign_select_popcnt_fn(void)
{
    return NULL;
}

#endif
