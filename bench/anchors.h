/*
 * anchors.h: the libraries bench/search.c measures OpenABIS against, behind
 * one small C interface (bench/anchors.cpp, the only C++ in the project).
 *
 * FAISS (Debian's libfaiss-dev 1.7.3): Debian ships FAISS's C API headers
 * but not the compiled C API (libfaiss.a has no faiss_* symbols), so this
 * shim makes the same calls the C API would -- index_factory, train, add,
 * search, ParameterSpace -- on the C++ classes.  hnswlib (Debian's
 * libhnswlib-dev 0.6.2) is header-only C++.  Every index uses inner
 * product, which on the bench's unit vectors is the cosine OpenABIS scores.
 */
#ifndef ABIS_BENCH_ANCHORS_H
#define ABIS_BENCH_ANCHORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct anchor anchor;

/* A FAISS index from an index_factory description ("Flat", "SQ8",
 * "IVF4096,Flat", "HNSW32"), inner-product metric; for HNSW, efConstruction.
 * NULL and a message in err on failure. */
anchor *anchor_faiss(const char *factory, int dim, int ef_construction, char *err, size_t errlen);
/* An hnswlib index (inner product) for up to max_n vectors. */
anchor *anchor_hnswlib(int dim, size_t max_n, int m, int ef_construction, char *err,
                       size_t errlen);
void anchor_free(anchor *a);

/* Train on n vectors (a no-op where the index needs none). */
int anchor_train(anchor *a, size_t n, const float *x, int threads);
/* Add n vectors; labels are their positions in order of adding. */
int anchor_add(anchor *a, size_t n, const float *x, int threads);
/* "efSearch" (HNSW), "nprobe" (IVF). */
int anchor_set(anchor *a, const char *name, double value);
/* The k best labels of each of nq queries, best first (-1 when fewer). */
int anchor_search(anchor *a, size_t nq, const float *q, int k, int threads, int64_t *labels);

#ifdef __cplusplus
}
#endif

#endif
