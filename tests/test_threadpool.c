/* test_threadpool.c: the fixed worker pool (src/util/threadpool.h). */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util/threadpool.h"

typedef struct count_job {
    atomic_int *hits; /* per task */
    atomic_int busy[64];
    unsigned width;
    atomic_int bad_participant;
    atomic_int clash; /* two threads with one participant id at once */
} count_job;

static void count_task(void *arg, size_t t, unsigned part)
{
    count_job *j = arg;
    if (part >= j->width)
        atomic_store(&j->bad_participant, 1);
    else if (atomic_fetch_add(&j->busy[part], 1) != 0)
        atomic_store(&j->clash, 1);
    atomic_fetch_add(&j->hits[t], 1);
    for (volatile int i = 0; i < 1000; i++)
        ;
    if (part < j->width)
        atomic_fetch_sub(&j->busy[part], 1);
}

static void run_and_check(abis_threadpool *p, size_t n, unsigned max_threads)
{
    count_job j = {0};
    j.hits = calloc(n ? n : 1, sizeof *j.hits);
    assert_non_null(j.hits);
    j.width = abis_threadpool_width(p, n, max_threads);
    abis_threadpool_run(p, n, max_threads, count_task, &j);
    for (size_t t = 0; t < n; t++)
        assert_int_equal(atomic_load(&j.hits[t]), 1);
    assert_int_equal(atomic_load(&j.bad_participant), 0);
    assert_int_equal(atomic_load(&j.clash), 0);
    free(j.hits);
}

static void test_every_task_runs_once(void **state)
{
    (void)state;
    abis_threadpool *p = abis_threadpool_create(4);
    assert_non_null(p);
    assert_int_equal(abis_threadpool_threads(p), 4);
    static const size_t ns[] = {0, 1, 2, 3, 7, 100, 5000};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        for (unsigned mt = 0; mt <= 5; mt++)
            run_and_check(p, ns[i], mt);
    abis_threadpool_destroy(p);
}

static void test_width_is_bounded(void **state)
{
    (void)state;
    abis_threadpool *p = abis_threadpool_create(3);
    assert_int_equal(abis_threadpool_width(p, 100, 0), 3);
    assert_int_equal(abis_threadpool_width(p, 100, 2), 2);
    assert_int_equal(abis_threadpool_width(p, 1, 0), 1);
    assert_int_equal(abis_threadpool_width(p, 0, 0), 1);
    assert_int_equal(abis_threadpool_width(NULL, 100, 0), 1);
    abis_threadpool_destroy(p);
    run_and_check(NULL, 50, 0); /* no pool: the caller runs everything */
}

typedef struct nest {
    abis_threadpool *p;
    atomic_int inner;
} nest;

static void inner_task(void *arg, size_t t, unsigned part)
{
    (void)t, (void)part;
    atomic_fetch_add(&((nest *)arg)->inner, 1);
}

static void outer_task(void *arg, size_t t, unsigned part)
{
    (void)t, (void)part;
    nest *n = arg;
    abis_threadpool_run(n->p, 10, 0, inner_task, n); /* from inside a task: no deadlock */
}

static void test_nested_jobs_finish(void **state)
{
    (void)state;
    nest n = {abis_threadpool_create(2), 0};
    abis_threadpool_run(n.p, 20, 0, outer_task, &n);
    assert_int_equal(atomic_load(&n.inner), 200);
    abis_threadpool_destroy(n.p);
}

typedef struct caller_arg {
    abis_threadpool *p;
    int rounds;
} caller_arg;

static void *caller(void *arg)
{
    caller_arg *c = arg;
    for (int i = 0; i < c->rounds; i++)
        run_and_check(c->p, 64 + (size_t)i, 0);
    return NULL;
}

static void test_concurrent_callers_share_the_pool(void **state)
{
    (void)state;
    abis_threadpool *p = abis_threadpool_create(3);
    pthread_t t[4];
    caller_arg a = {p, 50};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, caller, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    abis_threadpool_destroy(p);
    assert_non_null(abis_threadpool_shared());
    assert_ptr_equal(abis_threadpool_shared(), abis_threadpool_shared());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_runs_once),
        cmocka_unit_test(test_width_is_bounded),
        cmocka_unit_test(test_nested_jobs_finish),
        cmocka_unit_test(test_concurrent_callers_share_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
