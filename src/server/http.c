/*
 * http.c: abisd's HTTP side on libmicrohttpd (with GnuTLS for HTTPS): the
 * listening socket, one request's life from headers to response, the limits
 * that guard it, and responses with their metrics and log lines.
 *
 * A request is handled by libmicrohttpd's access handler, called
 *   1. when the headers are in: shutdown, route (404/405), body size by
 *      Content-Length (413), Content-Type (415), authentication (401, through
 *      the engine, which audits it), the client's token bucket (429) --
 *      each answered at once, before any body is read;
 *   2. for each piece of the body: kept up to max_body_bytes (beyond it the
 *      rest is discarded and 413 follows), and the request timeout checked;
 *   3. when the request is complete: a slot among max_inflight (else 503),
 *      the body parsed (400 with the exact reason), the route's handler.
 * The thread that runs the handler runs the engine call: libmicrohttpd's
 * thread pool has `threads` threads and at most `max_inflight` of them are
 * in the engine, so the others keep answering 503s, health checks and
 * metrics under load.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "util/file.h"

struct abisd {
    abisd_config cfg;
    abis_engine *engine;
    struct MHD_Daemon *mhd;
    int listen_fd;
    int port;
    int tls;
    _Atomic int inflight; /* handlers running */
    _Atomic int active;   /* requests begun and not yet completed */
    _Atomic int shutting_down;
    _Atomic uint64_t next_id;
    uint32_t id_prefix;
    abisd_metrics *metrics;
    abisd_buckets *buckets;
    char *tls_cert, *tls_key, *tls_ca; /* PEM text */
};

abis_engine *abisd_engine(abisd *s)
{
    return s->engine;
}

const abisd_config *abisd_cfg(abisd *s)
{
    return &s->cfg;
}

abisd_metrics *abisd_metrics_of(abisd *s)
{
    return s->metrics;
}

int abisd_inflight(abisd *s)
{
    return s->inflight;
}

int abisd_shutting_down(abisd *s)
{
    return s->shutting_down;
}

int abisd_port(abisd *s)
{
    return s->port;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- responses ------------------------------------------------------------------ */

/* Queue `resp` with the headers every response carries, then account for it. */
static void send_response(abisd_request *rq, int status, struct MHD_Response *resp)
{
    if (!resp) {
        rq->responded = 1;
        return;
    }
    MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (rq->replayed)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    if (rq->retry_after > 0) {
        char s[24];
        snprintf(s, sizeof s, "%ld", rq->retry_after);
        MHD_add_response_header(resp, "Retry-After", s);
    }
    if (rq->allow[0])
        MHD_add_response_header(resp, "Allow", rq->allow);
    if (rq->srv->shutting_down)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_queue_response(rq->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->responded = 1;
    rq->status = status;

    double secs = (double)(now_us() - rq->t0_us) / 1e6;
    abisd_metrics_request(rq->srv->metrics, rq->route ? rq->route_index : abisd_n_routes, status,
                          secs, rq->error_code);
    if (rq->srv->cfg.log_requests && abisd_log_enabled(ABISD_INFO))
        abisd_log(ABISD_INFO, "request",
                  json_pack("{s:s, s:s, s:s, s:i, s:f, s:s*, s:s*, s:o*}", "id", rq->request_id,
                            "method", rq->method, "route",
                            rq->route ? rq->route->pattern : "unmatched", "status", status, "ms",
                            secs * 1000, "client", rq->client ? abis_client_name(rq->client) : NULL,
                            "code", rq->error_code, "replayed", rq->replayed ? json_true() : NULL));
}

void abisd_respond_json(abisd_request *rq, int status, json_t *obj)
{
    if (rq->responded) {
        json_decref(obj);
        return;
    }
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(obj);
    if (!text) {
        abisd_error e;
        abisd_fail(&e, 503, "overloaded", "out of memory building the response");
        rq->error_code = e.code;
        text = strdup("{\"error\":{\"code\":\"overloaded\",\"message\":\"out of memory\"}}");
        status = 503;
        if (!text) {
            rq->responded = 1;
            return;
        }
    }
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free(text);
    else
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    send_response(rq, status, resp);
}

void abisd_respond_text(abisd_request *rq, int status, const char *content_type, char *text)
{
    if (rq->responded) {
        free(text);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free(text);
    else
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    send_response(rq, status, resp);
}

void abisd_respond_empty(abisd_request *rq, int status)
{
    if (rq->responded)
        return;
    send_response(rq, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

static void respond_error_with(abisd_request *rq, int status, const char *code, const char *message,
                               json_t *extra)
{
    rq->error_code = code;
    json_t *err = json_pack("{s:s, s:s, s:s}", "code", code, "message", message, "request_id",
                            rq->request_id);
    if (err && extra)
        json_object_update(err, extra);
    json_decref(extra);
    abisd_respond_json(rq, status, json_pack("{s:o}", "error", err));
}

void abisd_respond_error(abisd_request *rq, const abisd_error *e)
{
    respond_error_with(rq, e->status, e->code, e->message, NULL);
}

void abisd_respond_status(abisd_request *rq, const abis_error *err, json_t *extra)
{
    int http = 500;
    const char *code = "internal";
    switch (err->status) {
    case ABIS_E_INVALID:
        http = 400, code = "invalid";
        break;
    case ABIS_E_NOT_FOUND:
        http = 404, code = "not_found";
        break;
    case ABIS_E_EXISTS:
        http = 409, code = "exists";
        break;
    case ABIS_E_DUPLICATE:
        http = 409, code = "duplicate";
        break;
    case ABIS_E_CONFLICT:
        http = 409, code = "conflict";
        break;
    case ABIS_E_NO_CONSENT:
        http = 403, code = "no_consent";
        break;
    case ABIS_E_LOCKED:
        http = 403, code = "locked";
        break;
    case ABIS_E_FORBIDDEN:
        http = 403, code = "forbidden";
        break;
    case ABIS_E_UNAUTHENTICATED:
        http = 401, code = "unauthenticated";
        break;
    case ABIS_E_BUSY:
        http = 503, code = "busy";
        rq->retry_after = 1;
        break;
    case ABIS_E_NOMEM:
        http = 503, code = "overloaded";
        rq->retry_after = 1;
        break;
    default: /* crypto, io, store, schema, tamper, internal: the server's fault */
        break;
    }
    if (http >= 500) {
        /* The details (file names, SQLite's words) are for the operator. */
        abisd_log(ABISD_ERROR, "engine failure",
                  json_pack("{s:s, s:s, s:s}", "id", rq->request_id, "status",
                            abis_status_name(err->status), "message", err->message));
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the server could not complete the request (%s); the operator's log has the "
                 "details under request id %s",
                 abis_status_name(err->status), rq->request_id);
        respond_error_with(rq, http, code, msg, extra);
        return;
    }
    respond_error_with(rq, http, code, err->message, extra);
}

static void respond_fail(abisd_request *rq, int status, const char *code, const char *message)
{
    respond_error_with(rq, status, code, message, NULL);
}

/* ---- the request's parts ------------------------------------------------------------ */

const abis_idempotency *abisd_idempotency(abisd_request *rq, abis_idempotency *out)
{
    if (!rq->idem_key)
        return NULL;
    memset(out, 0, sizeof *out);
    out->key = rq->idem_key;
    out->ttl_seconds = rq->srv->cfg.idempotency_ttl_s;
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof out->request_hash);
    crypto_generichash_update(&h, (const unsigned char *)rq->method, strlen(rq->method) + 1);
    crypto_generichash_update(&h, (const unsigned char *)rq->path, strlen(rq->path) + 1);
    if (rq->len)
        crypto_generichash_update(&h, (const unsigned char *)rq->body, rq->len);
    crypto_generichash_final(&h, out->request_hash, sizeof out->request_hash);
    return out;
}

/* The SHA-256 of the DER certificate a TLS peer presented and that verified
 * against tls_client_ca; 0, or -1 when there is none. */
static int peer_certificate(struct MHD_Connection *c, unsigned char out[32])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return -1;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned int status = 0, n = 0;
    if (gnutls_certificate_verify_peers2(s, &status) != GNUTLS_E_SUCCESS || status != 0)
        return -1;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0)
        return -1;
    abis_sha256(certs[0].data, certs[0].size, out);
    return 0;
}

/* Everything that can be decided from the headers alone (step 1). */
static void on_headers(abisd_request *rq, struct MHD_Connection *c, const char *url,
                       const char *method)
{
    abisd *srv = rq->srv;
    snprintf(rq->method, sizeof rq->method, "%s", method);
    if (srv->shutting_down) {
        rq->retry_after = 1;
        return respond_fail(rq, 503, "shutting_down", "the server is shutting down");
    }
    if (strlen(url) >= sizeof rq->path)
        return respond_fail(rq, 404, "no_route", "no such path");
    snprintf(rq->path, sizeof rq->path, "%s", url);
    int known = 0;
    rq->route = abisd_route_match(method, url, rq->params, &known, rq->allow, sizeof rq->allow);
    if (!rq->route) {
        if (known)
            return respond_fail(rq, 405, "method_not_allowed",
                                "this path does not take that method (see the Allow header)");
        rq->allow[0] = '\0';
        return respond_fail(rq, 404, "no_route",
                            "no such path (the API is under /v1; docs/openapi.yaml)");
    }
    rq->route_index = (size_t)(rq->route - abisd_routes);
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    long long declared = cl ? strtoll(cl, NULL, 10) : 0;
    if (declared > srv->cfg.max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body has %lld bytes; at most %ld are accepted",
                 declared, srv->cfg.max_body_bytes);
        return respond_fail(rq, 413, "body_too_large", msg);
    }
    if (rq->route->body != ABISD_BODY_NONE && (declared > 0 || te)) {
        const char *ct =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!abisd_is_json_type(ct))
            return respond_fail(rq, 415, "unsupported_media_type",
                                "the request body must be JSON (Content-Type: application/json)");
    }
    if (rq->route->auth) {
        const char *auth =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        unsigned char fp[32];
        int have_cert = srv->tls && peer_certificate(c, fp) == 0;
        if (srv->tls && !strcmp(srv->cfg.tls_client_auth, "required") && !have_cert)
            return respond_fail(rq, 401, "unauthenticated",
                                "this server requires a TLS client certificate signed by its "
                                "client CA");
        abis_error err = {0};
        const char *key = abisd_bearer(auth);
        if (abis_client_authenticate(srv->engine, key ? key : (auth ? auth : ""),
                                     have_cert ? fp : NULL, &rq->client, &err) != ABIS_OK) {
            if (err.status == ABIS_E_UNAUTHENTICATED && !auth)
                snprintf(err.message, sizeof err.message,
                         "no API key: send it as 'Authorization: Bearer KEY'");
            return abisd_respond_status(rq, &err, NULL);
        }
        double rate = abis_client_rate_limit(rq->client);
        if (rate <= 0)
            rate = srv->cfg.rate_limit;
        /* The bucket holds as many seconds' worth as the server's default does. */
        double burst = srv->cfg.rate_burst * rate / srv->cfg.rate_limit;
        long wait = abisd_buckets_take(srv->buckets, abis_client_name(rq->client), rate, burst);
        if (wait > 0) {
            rq->retry_after = wait;
            char msg[160];
            snprintf(msg, sizeof msg,
                     "client '%s' sent more than %g requests per second; retry after %ld s",
                     abis_client_name(rq->client), rate, wait);
            return respond_fail(rq, 429, "rate_limited", msg);
        }
        if (rq->route->write)
            rq->idem_key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    }
}

/* The whole request is in (step 3). */
static void on_complete(abisd_request *rq)
{
    abisd *srv = rq->srv;
    if (rq->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %ld bytes",
                 srv->cfg.max_body_bytes);
        return respond_fail(rq, 413, "body_too_large", msg);
    }
    if (rq->timed_out)
        return respond_fail(rq, 408, "request_timeout",
                            "the request took longer than request_timeout_ms to arrive");
    /* A request whose headers came before shutdown began is in flight: it
     * is finished (on_headers refused those that came after). */
    if (++srv->inflight > srv->cfg.max_inflight) {
        srv->inflight--;
        rq->retry_after = 1;
        return respond_fail(rq, 503, "overloaded",
                            "the server is handling as many requests as it may; retry shortly");
    }
    abisd_body body;
    memset(&body, 0, sizeof body);
    json_t *root = NULL;
    abisd_error e;
    int ok = 1;
    if (rq->route->body != ABISD_BODY_NONE) {
        if (rq->route->body == ABISD_BODY_REQUIRED && rq->len == 0) {
            abisd_fail(&e, 400, "missing_field", "this request needs a JSON body");
            ok = 0;
        } else if (abisd_parse_json(rq->body, rq->len, &root, &e) != 0 ||
                   abisd_parse_body(root, rq->route->fields, rq->route->required, &body, &e) != 0) {
            ok = 0;
        }
    }
    if (ok)
        rq->route->handler(rq, &body, rq->route->arg);
    else
        abisd_respond_error(rq, &e);
    abisd_body_free(&body);
    json_decref(root);
    srv->inflight--;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    abisd *srv = cls;
    abisd_request *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        rq->srv = srv;
        rq->conn = c;
        rq->t0_us = now_us();
        snprintf(rq->request_id, sizeof rq->request_id, "%08x%08llx", srv->id_prefix,
                 (unsigned long long)(++srv->next_id & 0xffffffffu));
        srv->active++;
        rq->started = 1;
        on_headers(rq, c, url, method);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!rq->timed_out && now_us() - rq->t0_us > srv->cfg.request_timeout_ms * 1000)
            rq->timed_out = 1;
        if (rq->too_large || rq->timed_out)
            return MHD_YES; /* discard the rest; answered when complete */
        if (rq->len + n > (size_t)srv->cfg.max_body_bytes) {
            rq->too_large = 1;
            return MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 4096;
            while (cap < rq->len + n + 1)
                cap *= 2;
            char *b = realloc(rq->body, cap);
            if (!b)
                return MHD_NO;
            rq->body = b;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    if (!rq->responded)
        on_complete(rq);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    abisd *srv = cls;
    abisd_request *rq = *con_cls;
    if (!rq)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && abisd_log_enabled(ABISD_DEBUG))
        abisd_log(ABISD_DEBUG, "request ended early",
                  json_pack("{s:s, s:i}", "id", rq->request_id, "reason", (int)toe));
    abis_client_free(rq->client);
    if (rq->body)
        abis_wipe_free(rq->body, rq->cap); /* it may have held templates */
    if (rq->started)
        srv->active--;
    free(rq);
    *con_cls = NULL;
}

/* libmicrohttpd's own messages, into our log (its format strings). */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    abisd_log(ABISD_WARN, "libmicrohttpd", json_pack("{s:s}", "detail", msg));
}

/* ---- listening ---------------------------------------------------------------------- */

/* Split ADDR:PORT ("[::1]:8080" for IPv6). */
static int split_listen(const char *listen, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':' || (size_t)(end - listen - 1) >= hcap)
            return -1;
        memcpy(host, listen + 1, (size_t)(end - listen - 1));
        host[end - listen - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= hcap || colon == listen)
            return -1;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
    }
    if (!colon[1] || strlen(colon + 1) >= pcap)
        return -1;
    snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static int open_listener(abisd *s, char *msg, size_t cap)
{
    char host[256], port[32];
    if (split_listen(s->cfg.listen, host, sizeof host, port, sizeof port) != 0) {
        snprintf(msg, cap, "listen '%s' is not ADDR:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)",
                 s->cfg.listen);
        return -1;
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(msg, cap, "listen '%s': %s (give a numeric address and port)", s->cfg.listen,
                 gai_strerror(rc));
        return -1;
    }
    if (!is_loopback(ai->ai_addr) && !s->tls && !s->cfg.allow_plain_http) {
        snprintf(msg, cap,
                 "refusing plain HTTP on %s, which is not a loopback address: give tls_cert and "
                 "tls_key for HTTPS, or set allow_plain_http = true if a TLS proxy in front "
                 "of abisd protects the traffic",
                 s->cfg.listen);
        freeaddrinfo(ai);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(msg, cap, "cannot listen on %s: %s", s->cfg.listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->listen_fd = fd;
    return 0;
}

static char *read_pem(const char *path, const char *what, char *msg, size_t cap)
{
    unsigned char *buf;
    size_t len;
    abis_error err = {0};
    if (abis_file_read(path, 1u << 20, &buf, &len, &err) != ABIS_OK) {
        snprintf(msg, cap, "%s: %s", what, err.message);
        return NULL;
    }
    if (!strstr((char *)buf, "-----BEGIN ")) {
        snprintf(msg, cap, "%s %s is not PEM (no -----BEGIN line)", what, path);
        abis_wipe_free(buf, len);
        return NULL;
    }
    return (char *)buf;
}

/* Write the port into cfg.ready_file (whole: a temporary file renamed). */
static void write_ready_file(abisd *s)
{
    if (!s->cfg.ready_file[0])
        return;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->cfg.ready_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", s->port) < 0 || fclose(f) != 0 ||
        rename(tmp, s->cfg.ready_file) != 0)
        abisd_log(ABISD_WARN, "cannot write the ready file",
                  json_pack("{s:s, s:s}", "file", s->cfg.ready_file, "error", strerror(errno)));
}

static void free_server(abisd *s)
{
    if (!s)
        return;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    abisd_metrics_free(s->metrics);
    abisd_buckets_free(s->buckets);
    free(s->tls_cert);
    if (s->tls_key)
        abis_wipe_free(s->tls_key, strlen(s->tls_key));
    free(s->tls_ca);
    free(s);
}

int abisd_start(abisd **out, const abisd_config *cfg, abis_engine *e, char *msg, size_t cap)
{
    *out = NULL;
    abisd *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->engine = e;
    s->listen_fd = -1;
    abis_random_bytes(&s->id_prefix, sizeof s->id_prefix);
    s->metrics = abisd_metrics_create(abisd_n_routes);
    s->buckets = abisd_buckets_create();
    if (!s->metrics || !s->buckets) {
        snprintf(msg, cap, "out of memory");
        free_server(s);
        return -1;
    }
    if (cfg->tls_cert[0]) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(msg, cap, "this libmicrohttpd was built without TLS support");
            free_server(s);
            return -1;
        }
        s->tls = 1;
        if (!(s->tls_cert = read_pem(cfg->tls_cert, "tls_cert", msg, cap)) ||
            !(s->tls_key = read_pem(cfg->tls_key, "tls_key", msg, cap)) ||
            (cfg->tls_client_ca[0] &&
             !(s->tls_ca = read_pem(cfg->tls_client_ca, "tls_client_ca", msg, cap)))) {
            free_server(s);
            return -1;
        }
    }
    if (open_listener(s, msg, cap) != 0) {
        free_server(s);
        return -1;
    }
    struct MHD_OptionItem o[16];
    size_t n = 0;
    /* The logger first: libmicrohttpd reports problems with later options through it. */
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    if (s->tls) {
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        if (s->tls_ca)
            o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls_ca};
    }
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                         MHD_USE_ERROR_LOG | (s->tls ? MHD_USE_TLS : 0);
    s->mhd =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(msg, cap,
                 "libmicrohttpd could not start on %s (see the log line before this one%s)",
                 cfg->listen, s->tls ? "; are tls_cert and tls_key a matching pair?" : "");
        free_server(s);
        return -1;
    }
    abisd_log(ABISD_INFO, "listening",
              json_pack("{s:s, s:i, s:s, s:b, s:I, s:I}", "listen", cfg->listen, "port", s->port,
                        "scheme", s->tls ? "https" : "http", "client_certificates",
                        s->tls_ca != NULL, "threads", (json_int_t)cfg->threads, "max_inflight",
                        (json_int_t)cfg->max_inflight));
    write_ready_file(s);
    *out = s;
    return 0;
}

void abisd_quiesce(abisd *s, long timeout_s)
{
    s->shutting_down = 1;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
        s->listen_fd = -1;
    }
    int64_t deadline = now_us() + (int64_t)timeout_s * 1000000;
    while (s->active > 0 && now_us() < deadline) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (s->active > 0)
        abisd_log(ABISD_WARN, "shutdown timeout: requests still in flight are cut off",
                  json_pack("{s:i}", "active", (int)s->active));
}

void abisd_stop(abisd *s)
{
    if (!s)
        return;
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    free_server(s);
}
