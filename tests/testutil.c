/* testutil.c: shared test helpers (see testutil.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abis/face.h"
#include "modality/image.h"

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

/* ---- finding copies of a photo ------------------------------------------------------- */

#define WINDOW 16  /* bytes: long enough not to occur by chance in megabytes... */
#define DISTINCT 8 /* ...when they vary: at least this many different values */

struct abis_test_windows {
    uint64_t *h;
    size_t cap;
};

static uint64_t hash_window(const unsigned char *p)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < WINDOW; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h | 1; /* 0 marks an empty slot */
}

abis_test_windows *abis_test_windows_new(void)
{
    abis_test_windows *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->cap = 1u << 22;
    s->h = calloc(s->cap, sizeof *s->h);
    assert_non_null(s->h);
    return s;
}

void abis_test_windows_free(abis_test_windows *s)
{
    if (s)
        free(s->h);
    free(s);
}

static void windows_add(abis_test_windows *s, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i + WINDOW <= n; i++) {
        unsigned char seen[256] = {0};
        int distinct = 0;
        for (int k = 0; k < WINDOW; k++)
            distinct += !seen[b[i + k]]++;
        if (distinct < DISTINCT)
            continue;
        uint64_t h = hash_window(b + i);
        size_t j = h & (s->cap - 1);
        while (s->h[j] && s->h[j] != h)
            j = (j + 1) & (s->cap - 1);
        s->h[j] = h;
    }
}

void abis_test_windows_add_photo(abis_test_windows *s, const char *path)
{
    size_t len;
    unsigned char *b = abis_test_read_file(path, &len);
    assert_non_null(b);
    windows_add(s, b, len);
    abis_image img;
    abis_error err = {0};
    assert_status(abis_image_decode_rgb(b, len, "photo", 0, &img, &err), ABIS_OK, &err);
    windows_add(s, img.pixels, (size_t)img.width * img.height * 3);
    abis_image_free(&img);
    free(b);
}

int abis_test_windows_find(const abis_test_windows *s, const unsigned char *b, size_t n,
                           const char *what)
{
    for (size_t i = 0; i + WINDOW <= n; i++) {
        uint64_t h = hash_window(b + i);
        for (size_t j = h & (s->cap - 1); s->h[j]; j = (j + 1) & (s->cap - 1))
            if (s->h[j] == h) {
                print_error("%s: %d bytes at offset %zu come from a photo\n", what, WINDOW, i);
                return 1;
            }
    }
    return 0;
}

int abis_test_windows_find_in_dir(const abis_test_windows *s, const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            found |= abis_test_windows_find_in_dir(s, path);
            continue;
        }
        size_t len;
        unsigned char *b = abis_test_read_file(path, &len);
        if (b)
            found |= abis_test_windows_find(s, b, len, path);
        free(b);
    }
    closedir(d);
    return found;
}

static char lfw_dir[1024];

const char *abis_test_lfw_photo(const char *rel)
{
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", lfw_dir, rel);
    return buf[k];
}

int abis_test_face_ready(char *lfw, size_t cap)
{
    const char *root = getenv("ABIS_DATA_ROOT") ? getenv("ABIS_DATA_ROOT") : "/work/shared/data";
    snprintf(lfw, cap, "%s/face/lfw", root);
    snprintf(lfw_dir, sizeof lfw_dir, "%s", lfw);
    struct stat st;
    if (stat(lfw, &st) != 0) {
        print_message("no LFW photos at %s (set ABIS_DATA_ROOT): skipped\n", lfw);
        return 0;
    }
    /* the weights: one extraction in this process says whether they load */
    char path[1200];
    snprintf(path, sizeof path, "%s/Laura_Bush/Laura_Bush_0001.jpg", lfw);
    size_t len;
    unsigned char *buf = abis_test_read_file(path, &len);
    float d[ABIS_FACE_DIM];
    abis_error err = {0};
    abis_status s = buf ? abis_face_extract(buf, len, NULL, d, NULL, &err) : ABIS_E_IO;
    free(buf);
    if (s != ABIS_OK) {
        print_message("face pipeline unavailable (%s; make models): skipped\n", err.message);
        return 0;
    }
    return 1;
}
