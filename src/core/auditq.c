/*
 * auditq.c: group commit of audit entries.  Every audit entry that is not
 * part of a data write's own transaction -- reads (verify, identify, the
 * subject view) and refusals -- goes through here: the calling thread queues
 * its entries and waits; one waiting thread at a time (the leader) takes
 * every entry queued so far, appends them in one store transaction and
 * commits it (one fsync for all of them), then wakes their owners.  Entries
 * queued while a leader is busy form the next batch, so under load a batch
 * grows to the number of requests that arrived during one fsync, and
 * nobody's response leaves before their entry is on disk.
 *
 * Each caller sleeps on a semaphore of its own and is woken exactly once
 * when its entries are on disk -- or to lead the next batch when its entries
 * are waiting and the previous leader is done -- so that a commit does not
 * wake every waiting thread to fight over one lock.
 *
 * A batch that fails to commit is retried one caller at a time, so that one
 * caller's failure is not another's.  The leader holds no engine lock (only
 * the store's write transaction), so callers must not wait here while
 * holding the engine's state lock.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"

/* One caller waiting for its entries (on its stack). */
typedef struct waiter {
    sem_t wake;
    _Atomic int done; /* its entries are committed (or failed): st, err */
    _Atomic int lead; /* it is to lead the next batch */
    abis_status st;
    abis_error err;
} waiter;

struct auditq_item {
    abis_audit_rec rec;
    waiter *w;
};

void auditq_init(auditq *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
}

void auditq_destroy(auditq *q)
{
    free(q->items);
    pthread_mutex_destroy(&q->mu);
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void engine_audit_rec(abis_engine *e, const abis_caller *c, const audit_event *ev,
                      abis_audit_rec *r)
{
    memset(r, 0, sizeof *r);
    copy_text(r->actor, sizeof r->actor, engine_actor(e, c));
    copy_text(r->operation, sizeof r->operation, ev->operation);
    copy_text(r->segment, sizeof r->segment, ev->segment);
    copy_text(r->subject, sizeof r->subject, ev->subject);
    copy_text(r->purpose, sizeof r->purpose, ev->purpose);
    copy_text(r->outcome, sizeof r->outcome, ev->outcome ? ev->outcome : "ok");
    copy_text(r->decision, sizeof r->decision, ev->decision);
    copy_text(r->detail, sizeof r->detail, ev->detail);
}

/* Append items[0..n) in one transaction. */
static abis_status commit_items(abis_engine *e, struct auditq_item *items, size_t n,
                                abis_error *err)
{
    abis_store *s = e->store;
    abis_status st = s->ops->begin(s, err);
    for (size_t i = 0; st == ABIS_OK && i < n; i++)
        st = abis_audit_append(&e->audit, &items[i].rec, err);
    if (st == ABIS_OK)
        st = s->ops->commit(s, err);
    if (st != ABIS_OK)
        s->ops->rollback(s);
    return st;
}

/* The leader's work: commit a batch, or each caller's part of it alone. */
static void commit_batch(abis_engine *e, struct auditq_item *items, size_t n)
{
    abis_error err = {0};
    abis_status st = commit_items(e, items, n, &err);
    if (st == ABIS_OK || n == 1 || items[0].w == items[n - 1].w) {
        for (size_t i = 0; i < n; i++) {
            items[i].w->st = st;
            if (st != ABIS_OK)
                items[i].w->err = err;
        }
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && items[j].w == items[i].w)
            j++;
        abis_error one = {0};
        items[i].w->st = commit_items(e, items + i, j - i, &one);
        items[i].w->err = one;
        i = j;
    }
}

/* Commit everything queued and pass the lead on (the caller leads). */
static void lead(abis_engine *e, auditq *q, const waiter *self)
{
    pthread_mutex_lock(&q->mu);
    struct auditq_item *batch = q->items;
    size_t nb = q->n, cap = q->cap;
    q->items = NULL;
    q->n = q->cap = 0;
    pthread_mutex_unlock(&q->mu);

    commit_batch(e, batch, nb);

    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < nb; i++)
        batch[i].w->done = 1;
    q->batches++;
    q->entries += nb;
    /* Entries queued meanwhile: their first owner leads the next batch. */
    waiter *next = q->n ? q->items[0].w : NULL;
    if (next)
        next->lead = 1;
    else
        q->leader = 0;
    pthread_mutex_unlock(&q->mu);
    /* Wake each caller of the batch once (a caller's entries are adjacent);
     * a woken caller may return at once, so its waiter is not touched after. */
    for (size_t i = 0; i < nb; i++)
        if ((i == 0 || batch[i].w != batch[i - 1].w) && batch[i].w != self)
            sem_post(&batch[i].w->wake);
    if (next)
        sem_post(&next->wake);
    pthread_mutex_lock(&q->mu);
    if (!q->items) { /* keep the array for the next batch */
        q->items = batch;
        q->cap = cap;
        batch = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    free(batch);
}

abis_status engine_audit_group(abis_engine *e, const abis_caller *c, const audit_event *ev,
                               size_t n, abis_error *err)
{
    if (e->read_only || n == 0)
        return ABIS_OK;
    auditq *q = &e->auditq;
    waiter w;
    memset(&w, 0, sizeof w);
    if (sem_init(&w.wake, 0, 0) != 0)
        return abis_error_set(err, ABIS_E_INTERNAL, "cannot make a semaphore: %s", strerror(errno));
    pthread_mutex_lock(&q->mu);
    if (q->n + n > q->cap) {
        size_t cap = q->cap ? q->cap : 256;
        while (cap < q->n + n)
            cap *= 2;
        struct auditq_item *it = realloc(q->items, cap * sizeof *it);
        if (!it) {
            pthread_mutex_unlock(&q->mu);
            sem_destroy(&w.wake);
            return abis_error_set(err, ABIS_E_NOMEM, "out of memory queueing an audit entry");
        }
        q->items = it;
        q->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        engine_audit_rec(e, c, &ev[i], &q->items[q->n].rec);
        q->items[q->n++].w = &w;
    }
    if (!q->leader)
        q->leader = w.lead = 1;
    pthread_mutex_unlock(&q->mu);
    /* done and lead are atomics: a leader may set them while this thread
     * is between reading them and sleeping; the semaphore then wakes it. */
    for (;;) {
        if (w.lead) {
            w.lead = 0;
            lead(e, q, &w);
        }
        if (w.done)
            break;
        while (sem_wait(&w.wake) != 0 && errno == EINTR)
            ;
    }
    sem_destroy(&w.wake);
    if (w.st != ABIS_OK && err)
        *err = w.err;
    return w.st;
}

void abis_audit_stats(abis_engine *e, uint64_t *batches, uint64_t *entries)
{
    pthread_mutex_lock(&e->auditq.mu);
    *batches = e->auditq.batches;
    *entries = e->auditq.entries;
    pthread_mutex_unlock(&e->auditq.mu);
}
