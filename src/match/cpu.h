/*
 * cpu.h: the CPU features the match kernels are chosen by, read once
 * (__builtin_cpu_supports), and the ABIS_KERNEL=scalar override that makes
 * every kernel family fall back to its scalar reference.
 */
#ifndef ABIS_MATCH_CPU_H
#define ABIS_MATCH_CPU_H

typedef struct abis_cpu {
    int scalar_only; /* ABIS_KERNEL=scalar: report no feature at all */
    int avx2;        /* AVX2 and FMA */
    int popcnt;
    int avx512; /* AVX-512 F, BW and VL */
    int avx512_vpopcntdq;
    int avx512_vnni;
    int avx_vnni;
} abis_cpu;

/* The features of this CPU (all 0 with ABIS_KERNEL=scalar or off x86). */
const abis_cpu *abis_cpu_features(void);

#endif
