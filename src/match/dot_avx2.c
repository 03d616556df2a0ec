/*
 * dot_avx2.c: the AVX2 + FMA dot-product kernel (see match.h).
 *
 * CMake compiles this file alone with -mavx2 -mfma; nothing here may run
 * before dot.c has checked that the CPU has both features, so the only other
 * function in the file hands out the kernel's address without executing any
 * vector code.
 */
#include "match/match.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <stdint.h>

/* Eight -1 then eight 0: loading 8 lanes from mask_src + 8 - r gives a mask
 * for _mm256_maskload_ps that enables the first r lanes, so the tail of a
 * vector is read without touching memory past its end. */
static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Float32 dot product of a and b (n values each, any alignment, any n).
 * Four independent 8-lane accumulators hide the FMA latency (4 cycles on
 * Haswell and later, two ports), so the loop runs at load throughput. */
static float dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    if (i < n) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(mask_src + 8 - (n - i)));
        acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), acc1);
    }
    __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

abis_dot_fn abis_dot_avx2_fn(void)
{
    return dot_avx2;
}

#else

abis_dot_fn abis_dot_avx2_fn(void)
{
    return NULL;
}

#endif
