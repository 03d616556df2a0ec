/* testutil.c: shared test helpers (see testutil.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *abis_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/abis-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void abis_test_rmdir(char *path)
{
    if (!path)
        return;
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

unsigned char *abis_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        unsigned char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf && len)
        *len = n;
    return buf;
}

int abis_test_copy_file(const char *from, const char *to)
{
    size_t len;
    unsigned char *buf = abis_test_read_file(from, &len);
    if (!buf)
        return -1;
    FILE *f = fopen(to, "wb");
    int rc = (f && fwrite(buf, 1, len, f) == len) ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(buf);
    return rc;
}

int abis_test_file_contains(const char *path, const void *needle, size_t len)
{
    size_t n;
    unsigned char *buf = abis_test_read_file(path, &n);
    if (!buf)
        return 0;
    int found = 0;
    for (size_t i = 0; len && i + len <= n && !found; i++)
        found = memcmp(buf + i, needle, len) == 0;
    free(buf);
    return found;
}

int abis_test_spawn(const char *const *argv, const char *in, const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *abis_test_slurp(const char *path)
{
    size_t n = 0;
    unsigned char *b = abis_test_read_file(path, &n);
    char *s = malloc(n + 1);
    assert_non_null(s);
    if (b)
        memcpy(s, b, n);
    s[n] = '\0';
    free(b);
    return s;
}

int abis_test_cli(abis_test_run *r, const char *cli, const char *data, const char *tmp,
                  const char *in, const char *const *args)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = cli;
    argv[n++] = "--data";
    argv[n++] = data;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 63);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char out_path[4200], err_path[4200];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmp);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmp);
    r->status = abis_test_spawn(argv, in, out_path, err_path);
    r->out = abis_test_slurp(out_path);
    r->err = abis_test_slurp(err_path);
    return r->status;
}

int abis_test_cli_v(abis_test_run *r, const char *cli, const char *data, const char *tmp,
                    va_list ap)
{
    const char *args[61];
    size_t n = 0;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(n < 60);
        args[n++] = a;
    }
    args[n] = NULL;
    return abis_test_cli(r, cli, data, tmp, NULL, args);
}

void abis_test_run_free(abis_test_run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}
