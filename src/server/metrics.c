/*
 * metrics.c: what abisd counts, and the Prometheus text exposition of it
 * (GET /metrics): requests by route and status, latency histograms by
 * route, errors by code, requests in flight, and the engine's gallery and
 * segment sizes.  Counters are atomics in fixed arrays: recording a request
 * takes no lock.
 */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405,
                               408, 409, 413, 415, 429, 500, 503};
#define N_STATUS (sizeof statuses / sizeof statuses[0] + 1) /* + "other" */

/* Upper bounds of the latency buckets, seconds (+Inf implied). */
static const double buckets[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,   1,     2.5,  5};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0] + 1)

/* Every error code abisd answers with (docs/openapi.yaml, Error). */
static const char *const codes[] = {
    "invalid_json", "wrong_type",         "missing_field",   "unknown_field",
    "bad_vector",   "bad_base64",         "invalid",         "unauthenticated",
    "forbidden",    "no_consent",         "locked",          "not_found",
    "no_route",     "method_not_allowed", "request_timeout", "duplicate",
    "exists",       "conflict",           "body_too_large",  "unsupported_media_type",
    "rate_limited", "overloaded",         "shutting_down",   "busy",
    "internal",
};
#define N_CODES (sizeof codes / sizeof codes[0] + 1) /* + "other" */

typedef struct route_stats {
    _Atomic uint64_t by_status[N_STATUS];
    _Atomic uint64_t bucket[N_BUCKETS];
    _Atomic uint64_t sum_us;
} route_stats;

struct abisd_metrics {
    size_t n_routes; /* routes[n_routes] counts requests that matched none */
    route_stats *routes;
    _Atomic uint64_t errors[N_CODES];
};

abisd_metrics *abisd_metrics_create(size_t n_routes)
{
    abisd_metrics *m = calloc(1, sizeof *m);
    if (m && !(m->routes = calloc(n_routes + 1, sizeof *m->routes))) {
        free(m);
        return NULL;
    }
    if (m)
        m->n_routes = n_routes;
    return m;
}

void abisd_metrics_free(abisd_metrics *m)
{
    if (m)
        free(m->routes);
    free(m);
}

void abisd_metrics_request(abisd_metrics *m, size_t route, int status, double seconds,
                           const char *error_code)
{
    if (route > m->n_routes)
        route = m->n_routes;
    route_stats *r = &m->routes[route];
    size_t s = 0;
    while (s < N_STATUS - 1 && statuses[s] != status)
        s++;
    r->by_status[s]++;
    size_t b = 0;
    while (b < N_BUCKETS - 1 && seconds > buckets[b])
        b++;
    r->bucket[b]++;
    r->sum_us += (uint64_t)(seconds * 1e6);
    if (error_code) {
        size_t c = 0;
        while (c < N_CODES - 1 && strcmp(codes[c], error_code) != 0)
            c++;
        m->errors[c]++;
    }
}

/* A growing text buffer. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void route_labels(const abisd_metrics *m, size_t i, char *buf, size_t cap)
{
    if (i < m->n_routes)
        snprintf(buf, cap, "method=\"%s\",route=\"%s\"", abisd_routes[i].method,
                 abisd_routes[i].pattern);
    else
        snprintf(buf, cap, "method=\"\",route=\"unmatched\"");
}

static int gallery_row(const abis_gallery_info *g, void *p)
{
    put(p, "abisd_gallery_templates{segment=\"%s\",modality=\"%s\"} %llu\n", g->segment,
        g->modality, (unsigned long long)g->templates);
    return 0;
}

static int segment_row(const abis_segment_info *s, void *p)
{
    put(p, "abisd_segment_subjects{segment=\"%s\"} %llu\n", s->name,
        (unsigned long long)s->subjects);
    return 0;
}

char *abisd_metrics_render(abisd_metrics *m, abis_engine *e, int inflight)
{
    sbuf b = {malloc(16384), 0, 16384, 0};
    if (!b.p)
        return NULL;
    char labels[160];
    put(&b, "# HELP abisd_requests_total HTTP requests by route and status.\n"
            "# TYPE abisd_requests_total counter\n");
    for (size_t i = 0; i <= m->n_routes; i++) {
        route_labels(m, i, labels, sizeof labels);
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = m->routes[i].by_status[s];
            if (!v)
                continue;
            if (s < N_STATUS - 1)
                put(&b, "abisd_requests_total{%s,status=\"%d\"} %llu\n", labels, statuses[s],
                    (unsigned long long)v);
            else
                put(&b, "abisd_requests_total{%s,status=\"other\"} %llu\n", labels,
                    (unsigned long long)v);
        }
    }
    put(&b, "# HELP abisd_request_duration_seconds Time from a request's headers to its "
            "response.\n"
            "# TYPE abisd_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->n_routes; i++) {
        route_labels(m, i, labels, sizeof labels);
        uint64_t cum = 0;
        for (size_t k = 0; k < N_BUCKETS; k++) {
            cum += m->routes[i].bucket[k];
            if (k < N_BUCKETS - 1)
                put(&b, "abisd_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", labels,
                    buckets[k], (unsigned long long)cum);
            else
                put(&b, "abisd_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", labels,
                    (unsigned long long)cum);
        }
        put(&b, "abisd_request_duration_seconds_sum{%s} %.6f\n", labels,
            (double)m->routes[i].sum_us / 1e6);
        put(&b, "abisd_request_duration_seconds_count{%s} %llu\n", labels, (unsigned long long)cum);
    }
    put(&b, "# HELP abisd_errors_total Error responses by their code.\n"
            "# TYPE abisd_errors_total counter\n");
    for (size_t c = 0; c < N_CODES; c++)
        put(&b, "abisd_errors_total{code=\"%s\"} %llu\n", c < N_CODES - 1 ? codes[c] : "other",
            (unsigned long long)m->errors[c]);
    put(&b,
        "# HELP abisd_requests_in_flight Requests being handled now.\n"
        "# TYPE abisd_requests_in_flight gauge\n"
        "abisd_requests_in_flight %d\n",
        inflight);
    uint64_t batches = 0, entries = 0;
    abis_audit_stats(e, &batches, &entries);
    put(&b,
        "# HELP abisd_audit_batches_total Group commits of audit entries (one fsync each).\n"
        "# TYPE abisd_audit_batches_total counter\n"
        "abisd_audit_batches_total %llu\n"
        "# HELP abisd_audit_entries_total Audit entries written by group commit.\n"
        "# TYPE abisd_audit_entries_total counter\n"
        "abisd_audit_entries_total %llu\n",
        (unsigned long long)batches, (unsigned long long)entries);
    put(&b, "# HELP abisd_gallery_templates Templates in each in-memory gallery (built on a "
            "segment's first search).\n"
            "# TYPE abisd_gallery_templates gauge\n");
    abis_error err;
    abis_gallery_list(e, gallery_row, &b, &err);
    put(&b, "# HELP abisd_segment_subjects Subjects enrolled in each segment.\n"
            "# TYPE abisd_segment_subjects gauge\n");
    abis_segment_list(e, segment_row, &b, &err);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
