/*
 * httpc.h: what the server tests share: a small HTTP/1.1 client over plain
 * sockets (loopback only, bounded timeouts) and starting and stopping a real
 * abisd process ($ABISD) on a free port.
 */
#ifndef ABIS_TEST_HTTPC_H
#define ABIS_TEST_HTTPC_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct http_resp {
    int status; /* 0: no answer (connection refused, closed or timed out) */
    char *head; /* status line and headers */
    char *body; /* NUL-terminated */
    size_t body_len;
    json_t *json; /* the body parsed, when it is JSON */
} http_resp;

void http_resp_free(http_resp *r);

/* One request to 127.0.0.1:port.  `headers`: NULL-terminated "Name: value"
 * lines (may be NULL).  Sends Content-Length when body != NULL.  Returns the
 * status (0 on failure). */
int http_do(int port, const char *method, const char *path, const char *const *headers,
            const char *body, http_resp *out);
/* Send `raw` bytes as they are (in pieces of `split` bytes with `pause_ms`
 * between them when split > 0) and read the answer. */
int http_raw(int port, const char *raw, size_t len, size_t split, int pause_ms, http_resp *out);
/* A request sent in two parts with the caller's actions in between:
 * http_begin connects and sends `first` (returns the socket, -1 on
 * failure); http_end sends `rest` and reads the answer. */
int http_begin(int port, const char *first, size_t len);
int http_end(int fd, const char *rest, size_t len, http_resp *out);
/* The value of a response header (case-insensitive name), malloc'd; NULL if absent. */
char *http_header(const http_resp *r, const char *name);
/* The error code of a JSON error body, or "". */
const char *http_error_code(const http_resp *r);

typedef struct abisd_proc {
    pid_t pid;
    int port;
    char log[4096];   /* its stderr */
    char ready[4096]; /* its ready file */
} abisd_proc;

/* Start $ABISD --data DIR --listen 127.0.0.1:0 ARGS... (NULL-terminated,
 * may be NULL) and wait (up to 20 s) until it listens.  0, or -1 (the log
 * is printed). */
int abisd_proc_start(abisd_proc *p, const char *data_dir, const char *const *args);
/* Send `sig` and wait for the process; returns its exit status, or 128 +
 * the signal that ended it. */
int abisd_proc_stop(abisd_proc *p, int sig);

#endif
