/*
 * main.c: abisd, the OpenABIS HTTP/JSON service for relying parties.
 *
 *   abisd --data DIR --listen ADDR:PORT [--config FILE] [--OPTION VALUE]...
 *
 * Opens the engine on DIR, serves the API (docs/openapi.yaml) and, on
 * SIGTERM or SIGINT, shuts down gracefully: it stops accepting connections,
 * answers new requests on open connections with 503, lets the requests in
 * flight finish (up to shutdown_timeout_s), then closes the engine, which
 * seals the audit log with a signed checkpoint.
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: abisd --data DIR [--listen ADDR:PORT] [--config FILE] [--OPTION VALUE]...\n"
            "\n"
            "The OpenABIS HTTP/JSON service (API: docs/openapi.yaml; options:\n"
            "docs/CONFIG.md).  Logs are JSON lines on standard error.  Stops gracefully\n"
            "on SIGTERM or SIGINT.\n\n");
    abisd_config_help(out);
}

/* SIGTERM and SIGINT write their number to this pipe, which the main thread
 * reads.  A handler, not sigwait alone: libraries (OpenBLAS) start threads
 * before main() that do not block the signals, and a signal delivered to one
 * of them must still stop the server gracefully, not kill it. */
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(stop_pipe[1], &b, 1); /* a full pipe: a stop is already pending */
    (void)w;
    errno = saved;
}

static int stop_signals_install(void)
{
    if (pipe(stop_pipe) != 0 || fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* Wait for SIGTERM or SIGINT; its number. */
static int stop_signal_wait(void)
{
    unsigned char b = 0;
    while (read(stop_pipe[0], &b, 1) != 1)
        if (errno != EINTR)
            return SIGTERM;
    return b;
}

/* Build the galleries in the background, so that no request pays for it. */
static void *warm_galleries(void *p)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    abis_error err = {0};
    abis_status st = abis_gallery_warm(p, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (st == ABIS_OK)
        abisd_log(ABISD_INFO, "galleries built", json_pack("{s:f}", "seconds", s));
    else
        abisd_log(
            ABISD_WARN, "building the galleries failed (they are built on first use)",
            json_pack("{s:s, s:s}", "status", abis_status_name(err.status), "error", err.message));
    return NULL;
}

/* Apply the command line over the defaults and the config file. */
static int parse_args(int argc, char **argv, abisd_config *cfg, int *help)
{
    char msg[512];
    const char *config = NULL;
    for (int i = 1; i < argc; i++) /* the config file first, wherever it is */
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    if (config && abisd_config_load(cfg, config, msg, sizeof msg) != 0) {
        fprintf(stderr, "abisd: %s\n", msg);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "abisd: unexpected argument '%s' (options are --name VALUE)\n", a);
            return -1;
        }
        char key[64];
        const char *eq = strchr(a, '='), *value;
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen >= sizeof key) {
            fprintf(stderr, "abisd: unknown option '%s'\n", a);
            return -1;
        }
        memcpy(key, a + 2, klen);
        key[klen] = '\0';
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "abisd: option '%s' needs a value\n", a);
            return -1;
        }
        if (!strcmp(key, "config"))
            continue;
        if (abisd_config_set(cfg, key, value, msg, sizeof msg) != 0) {
            fprintf(stderr, "abisd: %s\n", msg);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    abisd_config cfg;
    abisd_config_defaults(&cfg);
    int help = 0;
    if (parse_args(argc, argv, &cfg, &help) != 0)
        return 2;
    if (help) {
        usage(stdout);
        return 0;
    }
    char msg[1024];
    if (abisd_log_set_level(cfg.log_level) != 0) {
        fprintf(stderr, "abisd: log_level must be debug, info, warn or error\n");
        return 2;
    }
    if (abisd_config_check(&cfg, msg, sizeof msg) != 0) {
        abisd_log(ABISD_ERROR, "bad configuration", json_pack("{s:s}", "error", msg));
        return 2;
    }

    /* Threads started from here on block SIGTERM and SIGINT (they inherit the
     * mask); this thread unblocks them once the server runs, and the handler
     * turns them into a byte on stop_pipe wherever they land. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (stop_signals_install() != 0) {
        abisd_log(ABISD_ERROR, "cannot install the signal handlers", NULL);
        return 1;
    }
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    abis_engine *e = NULL;
    abis_error err = {0};
    abis_open_options o = {.data_dir = cfg.data, .actor = "abisd"};
    if (abis_engine_open(&o, &e, &err) != ABIS_OK) {
        abisd_log(ABISD_ERROR, "cannot open the data directory",
                  json_pack("{s:s, s:s, s:s}", "data", cfg.data, "status",
                            abis_status_name(err.status), "error", err.message));
        return 1;
    }
    abisd *srv = NULL;
    if (abisd_start(&srv, &cfg, e, msg, sizeof msg) != 0) {
        abisd_log(ABISD_ERROR, "cannot start", json_pack("{s:s}", "error", msg));
        abis_engine_close(e);
        return 1;
    }
    abisd_log(ABISD_INFO, "ready",
              json_pack("{s:s, s:s}", "version", ABISD_VERSION, "data", cfg.data));
    pthread_t warm;
    int warming = cfg.warm_galleries && pthread_create(&warm, NULL, warm_galleries, e) == 0;

    pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
    int sig = stop_signal_wait();
    abisd_log(ABISD_INFO, "shutting down",
              json_pack("{s:s, s:i}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", "in_flight",
                        abisd_inflight(srv)));
    abisd_quiesce(srv, cfg.shutdown_timeout_s);
    abisd_stop(srv);
    if (warming)
        pthread_join(warm, NULL);
    abis_engine_close(e);
    abisd_log(ABISD_INFO, "stopped", NULL);
    return 0;
}
