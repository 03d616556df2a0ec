/*
 * limits.c: per-client token buckets (rate limiting).  Each client has a
 * bucket of `burst` tokens refilled at `rate` tokens per second; a request
 * takes one, and a request that finds the bucket empty is answered 429 with
 * Retry-After: the seconds until the next token.  Buckets live in a small
 * hash table keyed by client name, created on a client's first request.
 */
#include "server/server.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bucket {
    char name[ABIS_NAME_MAX + 1];
    double tokens;
    double last; /* seconds, CLOCK_MONOTONIC */
    struct bucket *next;
} bucket;

#define BUCKET_SLOTS 256

struct abisd_buckets {
    pthread_mutex_t mu;
    bucket *slot[BUCKET_SLOTS];
};

abisd_buckets *abisd_buckets_create(void)
{
    abisd_buckets *b = calloc(1, sizeof *b);
    if (b)
        pthread_mutex_init(&b->mu, NULL);
    return b;
}

void abisd_buckets_free(abisd_buckets *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < BUCKET_SLOTS; i++)
        for (bucket *k = b->slot[i], *next; k; k = next) {
            next = k->next;
            free(k);
        }
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static size_t hash_name(const char *s)
{
    size_t h = 5381; /* djb2: the table is small and the names are the operator's */
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % BUCKET_SLOTS;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

long abisd_buckets_take(abisd_buckets *b, const char *client, double rate, double burst)
{
    if (burst < 1)
        burst = 1;
    double now = now_s();
    long wait = 0;
    pthread_mutex_lock(&b->mu);
    size_t h = hash_name(client);
    bucket *k = b->slot[h];
    while (k && strcmp(k->name, client) != 0)
        k = k->next;
    if (!k && (k = calloc(1, sizeof *k))) {
        snprintf(k->name, sizeof k->name, "%s", client);
        k->tokens = burst;
        k->last = now;
        k->next = b->slot[h];
        b->slot[h] = k;
    }
    if (k) {
        k->tokens = fmin(burst, k->tokens + (now - k->last) * rate);
        k->last = now;
        if (k->tokens >= 1)
            k->tokens -= 1;
        else
            wait = (long)ceil((1 - k->tokens) / rate);
    }
    pthread_mutex_unlock(&b->mu);
    return wait > 0 ? (wait < 1 ? 1 : wait) : 0;
}
