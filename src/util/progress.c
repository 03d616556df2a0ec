/*
 * progress.c: the progress bar of long operator commands (see progress.h).
 * Drawn with a carriage return on one stderr line, only on a terminal.
 */
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Redraw at most ten times a second: smooth to the eye, negligible cost. */
#define PROGRESS_INTERVAL_S 0.1

struct abis_progress {
    char label[32];
    char unit[16];
    uint64_t total, done;
    double start, last_draw;
    int drawn;    /* 1 when a bar is on the line now */
    size_t width; /* characters drawn last time, to erase them */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int abis_progress_enabled(void)
{
    return isatty(STDERR_FILENO) == 1;
}

abis_progress *abis_progress_create(const char *label, uint64_t total, const char *unit)
{
    if (!abis_progress_enabled())
        return NULL;
    abis_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    p->start = now_s();
    p->last_draw = -1.0;
    return p;
}

static int term_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* "1:02:03" or "2:03". */
static void format_duration(double s, char out[24])
{
    if (s < 0 || s > 1e7) {
        snprintf(out, 24, "--:--");
        return;
    }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, 24, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, 24, "%lu:%02lu", t / 60, t % 60);
}

static void draw(abis_progress *p, double now)
{
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    char stats[160], eta[24], spent[24];
    format_duration(elapsed, spent);
    if (p->total) {
        double frac = p->done >= p->total ? 1.0 : (double)p->done / (double)p->total;
        /* Under half a second the rate says little about the time left. */
        if (rate > 0 && p->done < p->total && elapsed >= 0.5)
            format_duration((double)(p->total - p->done) / rate, eta);
        else
            snprintf(eta, sizeof eta, p->done >= p->total ? "0:00" : "--:--");
        snprintf(stats, sizeof stats, " %llu/%llu %s  %3.0f%%  %.0f/s  ETA %s",
                 (unsigned long long)p->done, (unsigned long long)p->total, p->unit, frac * 100.0,
                 rate, eta);
    } else {
        snprintf(stats, sizeof stats, " %llu %s  %.0f/s  %s elapsed", (unsigned long long)p->done,
                 p->unit, rate, spent);
    }

    char line[512];
    int cols = term_columns();
    int room = cols - 1 - (int)strlen(p->label) - (int)strlen(stats) - 3;
    if (p->total && room >= 10) {
        int bar = room > 40 ? 40 : room;
        int full =
            (int)((double)bar * (p->done >= p->total ? 1.0 : (double)p->done / (double)p->total));
        char b[48];
        for (int i = 0; i < bar; i++)
            b[i] = i < full ? '#' : '-';
        b[bar] = '\0';
        snprintf(line, sizeof line, "%s [%s]%s", p->label, b, stats);
    } else {
        snprintf(line, sizeof line, "%s%s", p->label, stats);
    }
    size_t len = strlen(line);
    if (cols > 1 && len > (size_t)cols - 1)
        len = (size_t)cols - 1, line[len] = '\0';
    /* Pad over the tail of a longer previous line. */
    fprintf(stderr, "\r%s%*s", line, p->width > len ? (int)(p->width - len) : 0, "");
    fflush(stderr);
    p->width = len;
    p->drawn = 1;
    p->last_draw = now;
}

void abis_progress_update(abis_progress *p, uint64_t done)
{
    if (!p)
        return;
    p->done = done;
    double now = now_s();
    if (p->last_draw < 0 || now - p->last_draw >= PROGRESS_INTERVAL_S)
        draw(p, now);
}

void abis_progress_clear(abis_progress *p)
{
    if (!p || !p->drawn)
        return;
    fprintf(stderr, "\r%*s\r", (int)p->width, "");
    fflush(stderr);
    p->drawn = 0;
    p->width = 0;
    p->last_draw = -1.0;
}

void abis_progress_finish(abis_progress *p)
{
    if (!p)
        return;
    draw(p, now_s());
    fputc('\n', stderr);
    fflush(stderr);
    free(p);
}

void abis_progress_destroy(abis_progress *p)
{
    abis_progress_clear(p);
    free(p);
}
