/*
 * config.c: abisd's options.  Every option has a default, can be set in a
 * config file (`key = value` lines, `#` comments) and on the command line
 * (`--key value` or `--key=value`; dashes and underscores are the same);
 * the command line wins over the file, the file over the defaults.
 * docs/CONFIG.md lists the same table.
 */
#include "server/server.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_REAL } opt_type;

typedef struct opt {
    const char *name;
    opt_type type;
    size_t offset, size; /* of the field in abisd_config (size: strings) */
    double min, max;     /* numbers */
    const char *def;     /* the default, as text */
    const char *help;
} opt;

#define STR(f) OPT_STR, offsetof(abisd_config, f), sizeof(((abisd_config *)0)->f), 0, 0
#define NUM(t, f, lo, hi) t, offsetof(abisd_config, f), 0, lo, hi

static const opt opts[] = {
    {"data", STR(data), "./var", "the data directory (abis init)"},
    {"listen", STR(listen), "127.0.0.1:8080",
     "ADDR:PORT to listen on ([::1]:8080 for IPv6; port 0: any free port)"},
    {"threads", NUM(OPT_INT, threads, 1, 1024), "64",
     "HTTP threads; a thread waits with its request for the audit group commit, so many "
     "threads (not cores) let many requests share one fsync"},
    {"max_inflight", NUM(OPT_INT, max_inflight, 1, 4096), "48",
     "requests handled at once; more get 503 (keep it below threads, so that some threads "
     "answer 503 and health checks at once)"},
    {"max_connections", NUM(OPT_INT, max_connections, 1, 1000000), "1024",
     "open connections at once; more are refused"},
    {"max_body_bytes", NUM(OPT_INT, max_body_bytes, 1024, 1 << 30), "8388608",
     "the largest request body; larger: 413"},
    {"request_timeout_ms", NUM(OPT_INT, request_timeout_ms, 1, 3600000), "10000",
     "time to receive one whole request; slower: 408"},
    {"idle_timeout_s", NUM(OPT_INT, idle_timeout_s, 1, 86400), "30",
     "an idle (or stalled) connection is closed after this"},
    {"rate_limit", NUM(OPT_REAL, rate_limit, 0.001, 1e9), "100",
     "requests per second per client (a client's own --rate wins)"},
    {"rate_burst", NUM(OPT_REAL, rate_burst, 1, 1e9), "200",
     "token bucket size at rate_limit: requests a client may send at once (a client with its "
     "own rate gets a bucket of the same number of seconds' worth)"},
    {"idempotency_ttl_s", NUM(OPT_INT, idempotency_ttl_s, 1, 30L * 86400), "86400",
     "how long a write's Idempotency-Key is remembered"},
    {"tls_cert", STR(tls_cert), "", "PEM certificate (chain): with tls_key, serve HTTPS"},
    {"tls_key", STR(tls_key), "", "PEM private key of tls_cert"},
    {"tls_client_ca", STR(tls_client_ca), "",
     "PEM CA certificates: ask clients for a certificate signed by them (mutual TLS)"},
    {"tls_client_auth", STR(tls_client_auth), "optional",
     "with tls_client_ca: 'optional' (clients bound to a certificate must show it) or "
     "'required' (every request needs a valid client certificate)"},
    {"allow_plain_http", NUM(OPT_BOOL, allow_plain_http, 0, 1), "false",
     "allow plain HTTP on an address that is not loopback"},
    {"log_level", STR(log_level), "info", "debug, info, warn or error"},
    {"log_requests", NUM(OPT_BOOL, log_requests, 0, 1), "true", "one log line per request"},
    {"shutdown_timeout_s", NUM(OPT_INT, shutdown_timeout_s, 0, 3600), "30",
     "on SIGTERM, wait this long for requests in flight"},
    {"ready_file", STR(ready_file), "", "write the listening port into this file when ready"},
    {"warm_galleries", NUM(OPT_BOOL, warm_galleries, 0, 1), "true",
     "build every segment's galleries at start, in the background (else on first use)"},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

static const opt *find_opt(const char *key)
{
    char norm[64];
    size_t n = strlen(key);
    if (n >= sizeof norm)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = key[i] == '-' ? '_' : key[i];
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, norm) == 0)
            return &opts[i];
    return NULL;
}

int abisd_config_set(abisd_config *c, const char *key, const char *value, char *msg, size_t cap)
{
    const opt *o = find_opt(key);
    if (!o) {
        snprintf(msg, cap, "unknown option '%.64s' (abisd --help lists them)", key);
        return -1;
    }
    char *field = (char *)c + o->offset;
    char *end;
    switch (o->type) {
    case OPT_STR:
        if (strlen(value) >= o->size) {
            snprintf(msg, cap, "%s: the value is longer than %zu characters", o->name, o->size - 1);
            return -1;
        }
        snprintf(field, o->size, "%s", value);
        return 0;
    case OPT_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1") ||
            !strcmp(value, "on"))
            *(int *)field = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0") ||
                 !strcmp(value, "off"))
            *(int *)field = 0;
        else {
            snprintf(msg, cap, "%s: '%.32s' is not true or false", o->name, value);
            return -1;
        }
        return 0;
    case OPT_INT: {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            snprintf(msg, cap, "%s: '%.32s' is not a whole number from %.0f to %.0f", o->name,
                     value, o->min, o->max);
            return -1;
        }
        *(long *)field = v;
        return 0;
    }
    case OPT_REAL: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < o->min || v > o->max) {
            snprintf(msg, cap, "%s: '%.32s' is not a number from %g to %g", o->name, value, o->min,
                     o->max);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    }
    return -1;
}

void abisd_config_defaults(abisd_config *c)
{
    memset(c, 0, sizeof *c);
    char msg[256];
    for (size_t i = 0; i < N_OPTS; i++)
        abisd_config_set(c, opts[i].name, opts[i].def, msg, sizeof msg);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int abisd_config_load(abisd_config *c, const char *path, char *msg, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, cap, "cannot read the config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[8192], sub[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(msg, cap, "%s:%d: the line is too long", path, lineno);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(msg, cap, "%s:%d: expected 'key = value'", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vn = strlen(value);
        if (vn >= 2 && value[0] == '"' && value[vn - 1] == '"') { /* optional quotes */
            value[vn - 1] = '\0';
            value++;
        }
        if (abisd_config_set(c, key, value, sub, sizeof sub) != 0) {
            snprintf(msg, cap, "%s:%d: %s", path, lineno, sub);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(msg, cap, "reading the config file %s failed", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

int abisd_config_check(const abisd_config *c, char *msg, size_t cap)
{
    if (!c->data[0]) {
        snprintf(msg, cap, "no data directory: give --data DIR");
        return -1;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        snprintf(msg, cap, "tls_cert and tls_key go together: give both or neither");
        return -1;
    }
    if (c->tls_client_ca[0] && !c->tls_cert[0]) {
        snprintf(msg, cap, "tls_client_ca needs HTTPS: give tls_cert and tls_key too");
        return -1;
    }
    if (strcmp(c->tls_client_auth, "optional") && strcmp(c->tls_client_auth, "required")) {
        snprintf(msg, cap, "tls_client_auth must be 'optional' or 'required', not '%s'",
                 c->tls_client_auth);
        return -1;
    }
    if (!strcmp(c->tls_client_auth, "required") && !c->tls_client_ca[0]) {
        snprintf(msg, cap, "tls_client_auth = required needs tls_client_ca");
        return -1;
    }
    if (c->max_inflight > c->threads)
        abisd_log(ABISD_WARN, "max_inflight is above threads: requests wait instead of 503",
                  json_pack("{s:I, s:I}", "max_inflight", (json_int_t)c->max_inflight, "threads",
                            (json_int_t)c->threads));
    return 0;
}

void abisd_config_help(FILE *out)
{
    fprintf(out, "Options (--name VALUE on the command line, or 'name = value' in --config "
                 "FILE):\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", opts[i].name);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-24s %s (default: %s)\n", flag, opts[i].help,
                *opts[i].def ? opts[i].def : "none");
    }
}
