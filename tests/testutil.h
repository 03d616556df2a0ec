/*
 * testutil.h: helpers shared by the test programs: temporary directories,
 * synthetic identities, running the CLI.
 */
#ifndef ABIS_TESTUTIL_H
#define ABIS_TESTUTIL_H

/* cmocka.h needs these first (keep this block apart from the others). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../scripts/synthgen.h"
#include "abis/abis.h"

/* Create a fresh empty directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *abis_test_tmpdir(const char *tag);
/* rm -rf the directory and free the path. */
void abis_test_rmdir(char *path);
/* Read a whole file into a malloc'd buffer; NULL if it cannot be read. */
unsigned char *abis_test_read_file(const char *path, size_t *len);
/* Copy a file; 0 on success. */
int abis_test_copy_file(const char *from, const char *to);
/* 1 if `needle` occurs in the file's bytes. */
int abis_test_file_contains(const char *path, const void *needle, size_t len);

/* Run argv (NULL-terminated; argv[0] is the program's path) with standard
 * input from `in` (NULL: /dev/null) and standard output and error written to
 * the files `out` and `err` (created or truncated, mode 0600).  Returns the
 * exit status, or 128 + the signal that ended it. */
int abis_test_spawn(const char *const *argv, const char *in, const char *out, const char *err);
/* A file's contents as a NUL-terminated string ("" when unreadable); the
 * caller frees it. */
char *abis_test_slurp(const char *path);

/* assert_int_equal(status, want) that prints err->message when it differs. */
#define assert_status(got, want, err)                                                              \
    do {                                                                                           \
        abis_status got_ = (got);                                                                  \
        if (got_ != (want))                                                                        \
            fail_msg("status %s (%s), wanted %s", abis_status_name(got_), (err)->message,          \
                     abis_status_name(want));                                                      \
    } while (0)

#endif
