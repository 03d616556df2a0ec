/* file.c: reading whole files (file.h). */
#include "util/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

abis_status abis_file_read(const char *path, size_t max, unsigned char **out, size_t *len,
                           abis_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return abis_error_set(err, ABIS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return abis_error_set(err, ABIS_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return abis_error_set(err, ABIS_E_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > max) {
        fclose(f);
        return abis_error_set(err, ABIS_E_INVALID, "%s: %lld bytes is too large (at most %zu)",
                              path, (long long)sb.st_size, max);
    }
    /* Read up to one byte past the size, so a file that grew since fstat is caught. */
    size_t cap = (size_t)sb.st_size + 1;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return abis_error_set(err, ABIS_E_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, cap, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || n == cap) {
        free(buf);
        return abis_error_set(err, ABIS_E_IO, "%s: %s", path,
                              rerr ? "read error" : "file changed while being read");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return ABIS_OK;
}
