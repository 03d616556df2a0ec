/*
 * log.c: abisd's structured logs: one JSON object per line on stderr,
 * {"ts": "2024-05-01T12:00:00.123Z", "level": "info", "msg": "...", ...}.
 * Lines are written whole under a lock, so that lines from several threads
 * never interleave.  Callers pass names, ids, counts and timings only --
 * never biometric data, keys or API keys.
 */
#include "server/server.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static _Atomic int min_level = ABISD_INFO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int abisd_log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            min_level = i;
            return 0;
        }
    return -1;
}

int abisd_log_enabled(abisd_level level)
{
    return (int)level >= min_level;
}

void abisd_log(abisd_level level, const char *msg, json_t *fields)
{
    if (!abisd_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    json_t *o = json_pack("{s:s, s:s, s:s}", "ts", when, "level", level_names[level], "msg", msg);
    if (o && fields)
        json_object_update(o, fields);
    json_decref(fields);
    char *line =
        o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    pthread_mutex_lock(&log_mu);
    if (line)
        fprintf(stderr, "%s\n", line);
    else
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory writing a log line\"}\n");
    fflush(stderr);
    pthread_mutex_unlock(&log_mu);
    free(line);
}
