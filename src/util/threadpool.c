/*
 * threadpool.c: the fixed worker pool (threadpool.h).
 *
 * State shared between threads is guarded by the pool mutex, except each
 * job's task counter, which participants claim from with an atomic
 * fetch-and-add.  A job lives on its caller's stack: it is queued while it
 * has unclaimed tasks, and the caller returns only once every task is done
 * and no worker holds the job (done == n_tasks and active == 0, both read
 * under the mutex), so no worker touches it after that.
 */
#include "util/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct job {
    abis_task_fn fn;
    void *arg;
    size_t n_tasks;
    atomic_size_t next; /* next unclaimed task */
    size_t done;        /* tasks finished (mutex) */
    unsigned width;     /* participants allowed */
    unsigned joined;    /* participant ids handed out (mutex); the caller is 0 */
    unsigned active;    /* workers inside the job (mutex) */
    struct job *link;   /* queue (mutex) */
} job;

struct abis_threadpool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or stop */
    pthread_cond_t done; /* some job's tasks finished */
    job *head;
    int stop;
    unsigned n_workers;
    pthread_t *tid;
};

/* Claim and run tasks until none is left; returns how many were run. */
static size_t run_tasks(job *j, unsigned participant)
{
    size_t ran = 0;
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->n_tasks)
            return ran;
        j->fn(j->arg, t, participant);
        ran++;
    }
}

/* The oldest queued job a worker may still join (mutex held). */
static job *joinable(abis_threadpool *p)
{
    for (job *j = p->head; j; j = j->link)
        if (j->joined < j->width &&
            atomic_load_explicit(&j->next, memory_order_relaxed) < j->n_tasks)
            return j;
    return NULL;
}

static void *worker(void *arg)
{
    abis_threadpool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        job *j = joinable(p);
        if (!j) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        unsigned part = j->joined++;
        j->active++;
        pthread_mutex_unlock(&p->mu);
        size_t ran = run_tasks(j, part);
        pthread_mutex_lock(&p->mu);
        j->done += ran;
        j->active--;
        if (j->done == j->n_tasks && j->active == 0)
            pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

abis_threadpool *abis_threadpool_create(unsigned threads)
{
    abis_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    unsigned want = threads > 1 ? threads - 1 : 0;
    p->tid = calloc(want ? want : 1, sizeof *p->tid);
    if (!p->tid || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->tid);
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (unsigned i = 0; i < want; i++) {
        if (pthread_create(&p->tid[i], NULL, worker, p) != 0)
            break;
        p->n_workers++;
    }
    if (want && p->n_workers == 0) {
        abis_threadpool_destroy(p);
        return NULL;
    }
    return p;
}

void abis_threadpool_destroy(abis_threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_workers; i++)
        pthread_join(p->tid[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tid);
    free(p);
}

unsigned abis_threadpool_threads(const abis_threadpool *p)
{
    return p ? p->n_workers + 1 : 1;
}

static pthread_once_t shared_once = PTHREAD_ONCE_INIT;
static abis_threadpool *shared_pool;

static void make_shared(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    shared_pool = abis_threadpool_create(n > 0 ? (unsigned)n : 1);
}

abis_threadpool *abis_threadpool_shared(void)
{
    pthread_once(&shared_once, make_shared);
    return shared_pool;
}

unsigned abis_threadpool_width(const abis_threadpool *p, size_t n_tasks, unsigned max_threads)
{
    unsigned w = abis_threadpool_threads(p);
    if (max_threads && max_threads < w)
        w = max_threads;
    if (n_tasks < w)
        w = n_tasks ? (unsigned)n_tasks : 1;
    return w;
}

void abis_threadpool_run(abis_threadpool *p, size_t n_tasks, unsigned max_threads,
                         abis_task_fn fn, void *arg)
{
    unsigned width = abis_threadpool_width(p, n_tasks, max_threads);
    if (!p || width <= 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    job j = {.fn = fn, .arg = arg, .n_tasks = n_tasks, .width = width, .joined = 1};
    atomic_init(&j.next, 0);
    pthread_mutex_lock(&p->mu);
    job **tail = &p->head;
    while (*tail)
        tail = &(*tail)->link;
    *tail = &j;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);

    size_t ran = run_tasks(&j, 0);

    pthread_mutex_lock(&p->mu);
    for (job **q = &p->head; *q; q = &(*q)->link) /* every task is claimed: dequeue */
        if (*q == &j) {
            *q = j.link;
            break;
        }
    j.done += ran;
    while (j.done < j.n_tasks || j.active > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
