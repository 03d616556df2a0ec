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

/* What one run of the `abis` command gave. */
typedef struct abis_test_run {
    int status; /* exit code, or 128 + signal */
    char *out;  /* stdout, NUL-terminated */
    char *err;  /* stderr */
} abis_test_run;

/* Run `CLI --data DATA ARGS...` (args NULL-terminated) with standard input
 * from `in` (NULL: /dev/null), its output kept in TMP/stdout and TMP/stderr
 * and read into *r.  Returns the exit code. */
int abis_test_cli(abis_test_run *r, const char *cli, const char *data, const char *tmp,
                  const char *in, const char *const *args);
/* The same with the arguments as a NULL-terminated va_list. */
int abis_test_cli_v(abis_test_run *r, const char *cli, const char *data, const char *tmp,
                    va_list ap);
void abis_test_run_free(abis_test_run *r);

/* The shared LFW photos' folder ($ABIS_DATA_ROOT or /work/shared/data, then
 * face/lfw) into `lfw`, and whether the face pipeline runs on them (the
 * weights are installed): 1, or 0 after printing why the test is skipped. */
int abis_test_face_ready(char *lfw, size_t cap);
/* The path of LFW photo `rel` ("Name/Name_0001.jpg") in that folder (after
 * abis_test_face_ready); valid until the fourth call after. */
const char *abis_test_lfw_photo(const char *rel);

/* Finding copies of a photo: every 16-byte sequence of its file and of its
 * decoded pixels (those with at least 8 different byte values: nearly flat
 * runs such as dark corners or database zeros occur everywhere), looked for
 * in other bytes. */
typedef struct abis_test_windows abis_test_windows;
abis_test_windows *abis_test_windows_new(void);
void abis_test_windows_free(abis_test_windows *s);
/* Add the windows of a photo file: its bytes and its decoded RGB pixels. */
void abis_test_windows_add_photo(abis_test_windows *s, const char *path);
/* 1 if some window of b[0..n) is one of them (printing where, `what`). */
int abis_test_windows_find(const abis_test_windows *s, const unsigned char *b, size_t n,
                           const char *what);
/* The same for every file below `dir`. */
int abis_test_windows_find_in_dir(const abis_test_windows *s, const char *dir);

/* Fail with the captured output when the exit code differs. */
#define assert_exit(r, want)                                                                       \
    do {                                                                                           \
        if ((r)->status != (want))                                                                 \
            fail_msg("exit %d, wanted %d\nstdout: %s\nstderr: %s", (r)->status, (want), (r)->out,  \
                     (r)->err);                                                                    \
    } while (0)

/* assert_int_equal(status, want) that prints err->message when it differs. */
#define assert_status(got, want, err)                                                              \
    do {                                                                                           \
        abis_status got_ = (got);                                                                  \
        if (got_ != (want))                                                                        \
            fail_msg("status %s (%s), wanted %s", abis_status_name(got_), (err)->message,          \
                     abis_status_name(want));                                                      \
    } while (0)

#endif
