/* cpu.c: the CPU features the kernels are chosen by (cpu.h). */
#include "match/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static abis_cpu cpu; /* written once under `once` */

static void detect(void)
{
    const char *env = getenv("ABIS_KERNEL");
    if (env && strcmp(env, "scalar") == 0) {
        cpu.scalar_only = 1;
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    cpu.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    cpu.popcnt = __builtin_cpu_supports("popcnt");
    cpu.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl");
    cpu.avx512_vpopcntdq = cpu.avx512 && __builtin_cpu_supports("avx512vpopcntdq");
    cpu.avx512_vnni = cpu.avx512 && __builtin_cpu_supports("avx512vnni");
#if !defined(__clang__) || __clang_major__ >= 15 /* clang 14 does not know "avxvnni" */
    cpu.avx_vnni = cpu.avx2 && __builtin_cpu_supports("avxvnni");
#endif
#endif
}

const abis_cpu *abis_cpu_features(void)
{
    pthread_once(&once, detect);
    return &cpu;
}
