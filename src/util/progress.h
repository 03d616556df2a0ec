/*
 * progress.h: a progress bar for long operator commands (bulk import),
 * drawn on stderr only when stderr is a terminal; otherwise every call does
 * nothing, so scripts and logs never see it.
 *
 *     abis_progress *p = abis_progress_create("import", total_lines, "lines");
 *     for (...) abis_progress_update(p, done);
 *     abis_progress_finish(p);   // final line, then destroy
 *
 * The line shows count/total, the percentage, the rate and the time left
 * (count and rate only when the total is not known: total 0).  Redraws are
 * throttled to a few per second, so update may be called for every item.
 * Not thread-safe.
 */
#ifndef ABIS_UTIL_PROGRESS_H
#define ABIS_UTIL_PROGRESS_H

#include <stdint.h>

typedef struct abis_progress abis_progress;

/* A progress display for `total` items (0: unknown) named `label`, counting
 * `unit` ("lines").  Returns NULL when stderr is not a terminal or memory is
 * short; every function accepts NULL and then does nothing.  The strings are
 * copied. */
abis_progress *abis_progress_create(const char *label, uint64_t total, const char *unit);

/* 1 when progress would be drawn on this process's stderr (it is a terminal). */
int abis_progress_enabled(void);

/* Set the number of items done; redraws at most every 100 ms. */
void abis_progress_update(abis_progress *p, uint64_t done);

/* Erase the bar so other text can be written to stderr; the next update
 * draws it again. */
void abis_progress_clear(abis_progress *p);

/* Draw the final state, end the line and free `p`. */
void abis_progress_finish(abis_progress *p);

/* Erase the bar and free `p` without a final line. */
void abis_progress_destroy(abis_progress *p);

#endif
