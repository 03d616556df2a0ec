/* conv_internal.h: what the convolution files share (conv.c, winograd.c,
 * depthwise.c); not part of the nn.h interface. */
#ifndef ABIS_NN_CONV_INTERNAL_H
#define ABIS_NN_CONV_INTERNAL_H

#include "nn/nn.h"

/* Element-wise loops worth compiling for wider vectors: one copy per
 * instruction set, the best chosen when the program starts (GCC's function
 * multi-versioning through ifunc).  Not under ThreadSanitizer: an ifunc
 * resolver runs while the program is being loaded, before the sanitizer's
 * run time it is instrumented to call (the test program would crash). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                            \
    !defined(__SANITIZE_THREAD__)
#define NN_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NN_VECTOR_CLONES
#endif

#include "nn/gemm.h"

/* The epilogue as the product kernels take it: (v + bias) * mul + add =
 * v * mul + (bias * mul + add), per channel, into m and a (n values, n <=
 * NN_MAX_CHANNELS), and *out pointing at them; NULL when `post` does
 * nothing. */
const nn_gemm_post *nn_gemm_post_from(const nn_post *post, int n, float *m, float *a,
                                      nn_gemm_post *out);

/* The epilogue `post` (may be NULL) over `pixels` rows of c channels, fused
 * in one pass. */
void nn_post_apply(float *v, size_t pixels, int c, const nn_post *post);
/* The epilogue as the reference runs it: one element-wise op at a time. */
void nn_post_ref(nn_tensor *y, const nn_post *post);

/* Does the fast path run this layer by Winograd? */
int nn_conv_winograd(const nn_conv *f, int stride, int in_h, int in_w);
/* Make f->wino (and f->wino_pack when `pack`); -1 when out of memory. */
int nn_winograd_prepare(nn_conv *f, int pack);

/* 3x3 stride-1 convolution by Winograd F(2x2, 3x3) (Lavin and Gray, "Fast
 * Algorithms for Convolutional Neural Networks", CVPR 2016), with the
 * epilogue fused.  Uses f->wino(_pack) when the network prepared them. */
nn_tensor nn_winograd_conv3x3(nn_ctx *ctx, const nn_tensor *x, const nn_conv *f, nn_padding pad,
                              const nn_post *post);

#endif
