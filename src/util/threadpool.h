/*
 * threadpool.h: a fixed pool of worker threads that runs "parallel for" jobs.
 *
 * A job is n_tasks calls fn(arg, task, participant).  The calling thread is
 * always one of the participants (participant 0), so a job finishes even when
 * every worker is busy with other jobs, and pools may be used from inside a
 * task without deadlock.  Tasks are claimed one at a time from a shared
 * counter, so uneven tasks balance themselves.  Several threads may run jobs
 * on one pool at the same time; workers serve the oldest job that still has
 * unclaimed tasks.  `participant` is below the job's participant limit and
 * distinct among the threads working on the job, for per-thread scratch.
 *
 * The process-wide shared pool has one thread per online CPU (the caller
 * counts as one); it is created on first use and lives until exit.
 */
#ifndef ABIS_THREADPOOL_H
#define ABIS_THREADPOOL_H

#include <stddef.h>

typedef struct abis_threadpool abis_threadpool;

typedef void (*abis_task_fn)(void *arg, size_t task, unsigned participant);

/* A pool for `threads` participants (threads - 1 workers; 0 or 1: none).
 * NULL when out of memory or no thread could be started. */
abis_threadpool *abis_threadpool_create(unsigned threads);
/* Stop and join the workers.  No job may be running.  NULL is allowed. */
void abis_threadpool_destroy(abis_threadpool *p);
/* Participants a job can have at most: workers + the caller. */
unsigned abis_threadpool_threads(const abis_threadpool *p);
/* The shared pool (one participant per online CPU), or NULL if it could not
 * be created (callers then run their tasks alone). */
abis_threadpool *abis_threadpool_shared(void);

/* Run fn(arg, t, participant) for t = 0..n_tasks-1 on at most max_threads
 * participants (0: as many as the pool has) and return when all are done.
 * With p NULL, runs them all in the calling thread. */
void abis_threadpool_run(abis_threadpool *p, size_t n_tasks, unsigned max_threads,
                         abis_task_fn fn, void *arg);

/* The participant count abis_threadpool_run will use at most for a job:
 * min(max_threads or all, pool size, n_tasks), at least 1. */
unsigned abis_threadpool_width(const abis_threadpool *p, size_t n_tasks, unsigned max_threads);

#endif
