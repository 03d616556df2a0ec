// anchors.cpp: FAISS and hnswlib behind bench/anchors.h (see there).
#include "anchors.h"

#include <cstdio>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <faiss/AutoTune.h>
#include <faiss/IndexHNSW.h>
#include <faiss/index_factory.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>

struct anchor {
    std::unique_ptr<faiss::Index> faiss;
    std::unique_ptr<hnswlib::InnerProductSpace> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw;
    size_t added = 0;
};

static void set_err(char *err, size_t len, const char *what)
{
    if (err && len)
        std::snprintf(err, len, "%s", what);
}

// Run f(i) for i in [0, n) on `threads` threads, i claimed in order.
template <class F> static void parallel_for(size_t n, int threads, F f)
{
    if (threads <= 1 || n < 2) {
        for (size_t i = 0; i < n; i++)
            f(i);
        return;
    }
    std::atomic<size_t> next(0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++)
        pool.emplace_back([&] {
            for (size_t i; (i = next++) < n;)
                f(i);
        });
    for (auto &t : pool)
        t.join();
}

extern "C" anchor *anchor_faiss(const char *factory, int dim, int ef_construction, char *err,
                                size_t errlen)
{
    try {
        auto a = std::make_unique<anchor>();
        a->faiss.reset(faiss::index_factory(dim, factory, faiss::METRIC_INNER_PRODUCT));
        if (auto *h = dynamic_cast<faiss::IndexHNSW *>(a->faiss.get()))
            if (ef_construction > 0)
                h->hnsw.efConstruction = ef_construction;
        return a.release();
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
        return nullptr;
    }
}

extern "C" anchor *anchor_hnswlib(int dim, size_t max_n, int m, int ef_construction, char *err,
                                  size_t errlen)
{
    try {
        auto a = std::make_unique<anchor>();
        a->space = std::make_unique<hnswlib::InnerProductSpace>(dim);
        a->hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(a->space.get(), max_n, m,
                                                                   ef_construction);
        return a.release();
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
        return nullptr;
    }
}

extern "C" void anchor_free(anchor *a)
{
    delete a;
}

extern "C" int anchor_train(anchor *a, size_t n, const float *x, int threads)
{
    try {
        if (a->faiss && !a->faiss->is_trained) {
            omp_set_num_threads(threads);
            a->faiss->train((faiss::Index::idx_t)n, x);
        }
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "train: %s\n", e.what());
        return -1;
    }
}

extern "C" int anchor_add(anchor *a, size_t n, const float *x, int threads)
{
    try {
        if (a->faiss) {
            omp_set_num_threads(threads);
            a->faiss->add((faiss::Index::idx_t)n, x);
        } else {
            size_t base = a->added;
            size_t dim = *(size_t *)a->space->get_dist_func_param();
            parallel_for(n, threads, [&](size_t i) { a->hnsw->addPoint(x + i * dim, base + i); });
        }
        a->added += n;
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "add: %s\n", e.what());
        return -1;
    }
}

extern "C" int anchor_set(anchor *a, const char *name, double value)
{
    try {
        if (a->hnsw && std::strcmp(name, "efSearch") == 0) {
            a->hnsw->setEf((size_t)value);
            return 0;
        }
        if (a->faiss) {
            faiss::ParameterSpace().set_index_parameter(a->faiss.get(), name, value);
            return 0;
        }
        return -1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "set %s: %s\n", name, e.what());
        return -1;
    }
}

extern "C" int anchor_search(anchor *a, size_t nq, const float *q, int k, int threads,
                             int64_t *labels)
{
    try {
        if (a->faiss) {
            omp_set_num_threads(threads);
            std::vector<float> d((size_t)k * nq);
            a->faiss->search((faiss::Index::idx_t)nq, q, k, d.data(), labels);
            return 0;
        }
        size_t dim = *(size_t *)a->space->get_dist_func_param();
        parallel_for(nq, threads, [&](size_t i) {
            auto r = a->hnsw->searchKnn(q + i * dim, (size_t)k);
            int64_t *out = labels + i * (size_t)k;
            for (int j = 0; j < k; j++)
                out[j] = -1;
            for (int j = (int)r.size() - 1; j >= 0; j--) { // the queue pops worst first
                out[j] = (int64_t)r.top().second;
                r.pop();
            }
        });
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "search: %s\n", e.what());
        return -1;
    }
}
