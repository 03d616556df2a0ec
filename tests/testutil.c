/* testutil.c: shared test helpers (see testutil.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
