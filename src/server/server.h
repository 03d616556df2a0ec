/*
 * server.h: what the parts of abisd share.  abisd is a thin layer over the
 * engine: it turns HTTP requests into abis_client_* calls and their results
 * into JSON; the engine decides every policy question (who may do what,
 * pseudonyms, scores, idempotency).  The server adds what only a network
 * service needs: TLS, request limits, metrics, logs and shutdown.
 *
 * Files, one concept each:
 *   config.c    options: defaults, the config file, command-line flags
 *   routes.c    the route table and path matching (docs/openapi.yaml lists the same)
 *   request.c   request bodies: JSON into engine arguments, errors with exact reasons
 *   handlers.c  one function per route: engine call, JSON response
 *   http.c      libmicrohttpd: connections, bodies, limits, responses, TLS
 *   limits.c    per-client token buckets
 *   metrics.c   counters and latency histograms, Prometheus text
 *   log.c       structured JSON log lines on stderr
 *   main.c      abisd itself: start, signals, graceful shutdown
 */
#ifndef ABIS_SERVER_H
#define ABIS_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "abis/abis.h"
#include "abis/client.h"
#include "template/input_json.h"

#define ABISD_VERSION "0.1.0"

/* ---- config.c ---------------------------------------------------------------- */

typedef struct abisd_config {
    char data[4096];          /* data directory */
    char listen[256];         /* ADDR:PORT; port 0 picks a free one */
    long threads;             /* HTTP threads (libmicrohttpd's pool) */
    long max_inflight;        /* engine calls at once; beyond: 503 */
    long max_connections;     /* open connections at once */
    long max_body_bytes;      /* a larger body: 413 */
    long request_timeout_ms;  /* receiving one request; beyond: 408 */
    long idle_timeout_s;      /* an idle connection is closed */
    double rate_limit;        /* requests per second per client (its own rate wins) */
    double rate_burst;        /* bucket size */
    long idempotency_ttl_s;   /* how long a write's Idempotency-Key is remembered */
    char tls_cert[4096];      /* PEM certificate chain; with tls_key: HTTPS */
    char tls_key[4096];       /* PEM private key */
    char tls_client_ca[4096]; /* PEM CA for client certificates (mutual TLS) */
    char tls_client_auth[16]; /* "optional" or "required" (with tls_client_ca) */
    int allow_plain_http;     /* plain HTTP on a non-loopback address */
    char log_level[16];       /* debug, info, warn, error */
    int log_requests;         /* one log line per request */
    long shutdown_timeout_s;  /* SIGTERM: wait this long for requests in flight */
    char ready_file[4096];    /* written with the port once listening */
    int warm_galleries;       /* build every gallery at start, in the background */
} abisd_config;

/* The defaults (docs/CONFIG.md). */
void abisd_config_defaults(abisd_config *c);
/* Read `key = value` lines from a file over *c; -1 with a message in `msg`. */
int abisd_config_load(abisd_config *c, const char *path, char *msg, size_t cap);
/* Set one option by name ("max_body_bytes", "max-body-bytes"); -1 with a message. */
int abisd_config_set(abisd_config *c, const char *key, const char *value, char *msg, size_t cap);
/* Check the whole configuration (TLS files together, limits sane); -1 with a message. */
int abisd_config_check(const abisd_config *c, char *msg, size_t cap);
/* Every option with its default and meaning, for --help. */
void abisd_config_help(FILE *out);

/* ---- log.c ------------------------------------------------------------------------ */

typedef enum abisd_level {
    ABISD_DEBUG = 0,
    ABISD_INFO = 1,
    ABISD_WARN = 2,
    ABISD_ERROR = 3
} abisd_level;

/* Set the lowest level written ("debug", "info", "warn", "error"); -1 if unknown. */
int abisd_log_set_level(const char *name);
int abisd_log_enabled(abisd_level level);
/* One JSON object on stderr: {"ts", "level", "msg", ...fields}.  `fields`
 * (may be NULL) is stolen.  Never pass biometric data, keys or API keys. */
void abisd_log(abisd_level level, const char *msg, json_t *fields);

/* ---- metrics.c ---------------------------------------------------------------------- */

typedef struct abisd_metrics abisd_metrics;
abisd_metrics *abisd_metrics_create(size_t n_routes);
void abisd_metrics_free(abisd_metrics *m);
/* One finished request: its route (n_routes for "no route"), status and
 * duration, and its error code (NULL for a success). */
void abisd_metrics_request(abisd_metrics *m, size_t route, int status, double seconds,
                           const char *error_code);
/* The Prometheus text exposition (version 0.0.4) of everything, with the
 * engine's gallery and segment sizes; malloc'd. */
char *abisd_metrics_render(abisd_metrics *m, abis_engine *e, int inflight);

/* ---- limits.c -------------------------------------------------------------------------- */

typedef struct abisd_buckets abisd_buckets;
abisd_buckets *abisd_buckets_create(void);
void abisd_buckets_free(abisd_buckets *b);
/* Take one token from `client`'s bucket (rate per second, burst tokens).
 * Returns 0, or the seconds to wait before a token is there (>= 1). */
long abisd_buckets_take(abisd_buckets *b, const char *client, double rate, double burst);

/* ---- request.c ------------------------------------------------------------------------ */

#define ABISD_TEMPLATES_MAX 64
#define ABISD_CONSENTS_MAX 256
#define ABISD_K_DEFAULT 10
#define ABISD_K_MAX 1000

/* A refusal of a request: HTTP status, stable machine code, exact reason. */
typedef struct abisd_error {
    int status;
    const char *code;
    char message[ABIS_ERROR_MESSAGE_MAX];
} abisd_error;

int abisd_fail(abisd_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The templates of a body: in[i] is ready for the engine; json[i] owns the data. */
typedef struct abisd_templates {
    abis_json_template json[ABISD_TEMPLATES_MAX];
    abis_template_input in[ABISD_TEMPLATES_MAX];
    size_t n;
} abisd_templates;
void abisd_templates_free(abisd_templates *t);

/* Every body shape, the union of what the routes take.  Strings point into
 * the parsed JSON. */
typedef struct abisd_body {
    const char *segment;
    const char *purpose;
    const char *modality;
    const char *consents[ABISD_CONSENTS_MAX];
    size_t n_consents;
    abisd_templates templates;
    size_t k;
    int replace;
} abisd_body;

/* Which fields a route's body has (bits), and which of them are required. */
#define ABISD_F_SEGMENT (1u << 0)
#define ABISD_F_PURPOSE (1u << 1)
#define ABISD_F_TEMPLATES (1u << 2) /* "templates": [...] */
#define ABISD_F_TEMPLATE (1u << 3)  /* "template": {...} */
#define ABISD_F_CONSENTS (1u << 4)
#define ABISD_F_K (1u << 5)
#define ABISD_F_REPLACE (1u << 6)
#define ABISD_F_MODALITY (1u << 7)

/* Parse `len` bytes of JSON (an empty body is {}); 0, or -1 with e filled
 * (400 invalid_json naming line and column). */
int abisd_parse_json(const char *body, size_t len, json_t **out, abisd_error *e);
/* jsonfast.c: the body parsed in one pass when it holds only what the fast
 * path is sure of (plain ASCII strings, numbers, literals, shallow nesting,
 * no duplicate keys) -- the same value jansson's json_loadb would give --
 * else NULL, and jansson decides. */
json_t *abisd_json_fast(const char *body, size_t len);
/* Read the fields `allowed` (of which `required` must be there) from the
 * object `root` into *b; -1 with e filled (400 wrong_type, missing_field,
 * unknown_field, bad_vector, bad_base64, invalid).  Release with
 * abisd_body_free. */
int abisd_parse_body(json_t *root, unsigned allowed, unsigned required, abisd_body *b,
                     abisd_error *e);
void abisd_body_free(abisd_body *b);

/* The API key of an "Authorization: Bearer KEY" header value; NULL when the
 * header is not a bearer credential. */
const char *abisd_bearer(const char *header);
/* 1 when a Content-Type header value is application/json (parameters such
 * as charset allowed). */
int abisd_is_json_type(const char *content_type);
/* A subject id of the path (32 hex digits); 0, or -1 with e filled. */
int abisd_parse_subject(const char *text, abis_id *id, abisd_error *e);

/* ---- routes.c ------------------------------------------------------------------------- */

typedef struct abisd abisd;
typedef struct abisd_request abisd_request;

#define ABISD_PARAMS_MAX 2
#define ABISD_PARAM_LEN 128

typedef enum abisd_body_kind {
    ABISD_BODY_NONE = 0,
    ABISD_BODY_OPTIONAL,
    ABISD_BODY_REQUIRED
} abisd_body_kind;

typedef struct abisd_route {
    const char *method;
    const char *pattern; /* "/v1/subjects/{id}/verify": {name} matches one path segment */
    int auth;            /* needs a client's API key */
    int write;           /* changes data: takes an Idempotency-Key */
    abisd_body_kind body;
    unsigned fields, required; /* ABISD_F_* of the body */
    void (*handler)(abisd_request *rq, abisd_body *body, int arg);
    int arg; /* passed to the handler: one handler serves a pair of routes */
} abisd_route;

extern const abisd_route abisd_routes[];
extern const size_t abisd_n_routes;

/* The route for (method, path) and its path parameters.  NULL when none;
 * then *path_known = 1 when the path exists for other methods, which are
 * listed in `allow` ("GET, DELETE"). */
const abisd_route *abisd_route_match(const char *method, const char *path,
                                     char params[ABISD_PARAMS_MAX][ABISD_PARAM_LEN],
                                     int *path_known, char *allow, size_t allow_cap);

/* ---- handlers.c -------------------------------------------------------------------------- */

void abisd_handle_enroll(abisd_request *rq, abisd_body *b, int arg);
void abisd_handle_template_add(abisd_request *rq, abisd_body *b, int arg);
void abisd_handle_verify(abisd_request *rq, abisd_body *b, int arg);
void abisd_handle_identify(abisd_request *rq, abisd_body *b, int arg);
void abisd_handle_consent(abisd_request *rq, abisd_body *b, int granted);
void abisd_handle_lock(abisd_request *rq, abisd_body *b, int locked);
void abisd_handle_delete(abisd_request *rq, abisd_body *b, int arg);
void abisd_handle_view(abisd_request *rq, abisd_body *b, int history);
void abisd_handle_health(abisd_request *rq, abisd_body *b, int arg);
void abisd_handle_metrics(abisd_request *rq, abisd_body *b, int arg);

/* ---- http.c ---------------------------------------------------------------------------------- */

/* One request, from its headers to the response. */
struct abisd_request {
    abisd *srv;
    void *conn; /* struct MHD_Connection * */
    const abisd_route *route;
    size_t route_index;
    char params[ABISD_PARAMS_MAX][ABISD_PARAM_LEN];
    char method[16];
    char path[512];
    abis_client *client;
    char request_id[17];
    int64_t t0_us;
    char *body;
    size_t len, cap;
    int too_large, timed_out, started;
    const char *idem_key;
    /* the response */
    int responded;
    int status;
    const char *error_code;
    int replayed;     /* Idempotent-Replayed: true */
    long retry_after; /* Retry-After seconds, 0: none */
    char allow[64];   /* Allow (405) */
};

/* The parts of the server a handler may use. */
abis_engine *abisd_engine(abisd *s);
const abisd_config *abisd_cfg(abisd *s);
abisd_metrics *abisd_metrics_of(abisd *s);
int abisd_inflight(abisd *s);
int abisd_shutting_down(abisd *s);

/* Respond: a JSON object (stolen), an error, an engine error (status mapped
 * to HTTP; 5xx details go to the log, not the client), plain text, or no
 * content.  The first response of a request wins. */
void abisd_respond_json(abisd_request *rq, int status, json_t *obj);
void abisd_respond_error(abisd_request *rq, const abisd_error *e);
void abisd_respond_status(abisd_request *rq, const abis_error *err, json_t *extra);
void abisd_respond_text(abisd_request *rq, int status, const char *content_type, char *text);
void abisd_respond_empty(abisd_request *rq, int status);

/* The Idempotency-Key of a write request and the hash of the request it
 * binds (method, path, body); NULL when the request has none. */
const abis_idempotency *abisd_idempotency(abisd_request *rq, abis_idempotency *out);

/* Start serving (listen, TLS, threads) / stop accepting and drain / stop. */
int abisd_start(abisd **out, const abisd_config *cfg, abis_engine *e, char *msg, size_t cap);
int abisd_port(abisd *s);
void abisd_quiesce(abisd *s, long timeout_s);
void abisd_stop(abisd *s);

#endif
