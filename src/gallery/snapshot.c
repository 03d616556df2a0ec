/* snapshot.c: encrypted gallery snapshot files (snapshot.h). */
#include "gallery/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "ABISSNAP"
#define HEAD_BYTES 72 /* magic 8, version 4, kind 4, segment 8, modality 8, seq 8, hash 32 */
#define MSG_MAX (1u << 20)
#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define SS_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES

struct abis_snapshot_writer {
    int fd;
    char *path, *tmp;
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char head[HEAD_BYTES];
    int first; /* the next message is the first: the header is its AD */
    unsigned char *buf, *cbuf;
    size_t len;
};

struct abis_snapshot_reader {
    int fd;
    char *path;
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char head[HEAD_BYTES];
    unsigned char *buf, *cbuf;
    size_t len, pos;
    int ended; /* the final message was read */
};

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void encode_head(const abis_snapshot_head *h, unsigned char *p)
{
    memcpy(p, MAGIC, 8);
    put32(p + 8, h->version);
    put32(p + 12, h->kind);
    put64(p + 16, (uint64_t)h->segment_id);
    put64(p + 24, (uint64_t)h->modality_id);
    put64(p + 32, (uint64_t)h->audit_seq);
    memcpy(p + 40, h->audit_hash, 32);
}

static void decode_head(const unsigned char *p, abis_snapshot_head *h)
{
    h->version = get32(p + 8);
    h->kind = get32(p + 12);
    h->segment_id = (int64_t)get64(p + 16);
    h->modality_id = (int64_t)get64(p + 24);
    h->audit_seq = (int64_t)get64(p + 32);
    memcpy(h->audit_hash, p + 40, 32);
}

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* 1 read all, 0 end of file before any byte, -1 error or a partial read. */
static int read_all(int fd, void *p, size_t n)
{
    unsigned char *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return got ? -1 : 0;
        got += (size_t)r;
    }
    return 1;
}

static abis_status io_error(abis_error *err, const char *what, const char *path)
{
    return abis_error_set(err, ABIS_E_IO, "gallery snapshot: cannot %s '%s': %s", what, path,
                          strerror(errno));
}

static abis_status damaged(abis_error *err, const char *path, const char *why)
{
    return abis_error_set(err, ABIS_E_CRYPTO,
                          "gallery snapshot '%s' %s (it is rebuilt from the store)", path, why);
}

/* ---- writing ----------------------------------------------------------------------- */

abis_status abis_snapshot_create(const char *path, const abis_key *key,
                                 const abis_snapshot_head *head, abis_snapshot_writer **out,
                                 abis_error *err)
{
    *out = NULL;
    abis_snapshot_writer *w = calloc(1, sizeof *w);
    if (!w)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    w->fd = -1;
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 5);
    w->buf = malloc(MSG_MAX);
    w->cbuf = malloc(MSG_MAX + SS_ABYTES);
    if (!w->path || !w->tmp || !w->buf || !w->cbuf) {
        abis_snapshot_abort(w);
        return abis_error_set(err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    }
    sprintf(w->tmp, "%s.tmp", path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        abis_status st = io_error(err, "create", w->tmp);
        abis_snapshot_abort(w);
        return st;
    }
    unsigned char ssh[SS_HEADER];
    encode_head(head, w->head);
    crypto_secretstream_xchacha20poly1305_init_push(&w->st, ssh, key->bytes);
    if (write_all(w->fd, w->head, HEAD_BYTES) != 0 || write_all(w->fd, ssh, sizeof ssh) != 0) {
        abis_status st = io_error(err, "write", w->tmp);
        abis_snapshot_abort(w);
        return st;
    }
    w->first = 1;
    *out = w;
    return ABIS_OK;
}

static abis_status flush(abis_snapshot_writer *w, unsigned char tag, abis_error *err)
{
    unsigned long long clen;
    crypto_secretstream_xchacha20poly1305_push(&w->st, w->cbuf, &clen, w->buf, w->len,
                                               w->first ? w->head : NULL,
                                               w->first ? HEAD_BYTES : 0, tag);
    unsigned char lenb[4];
    put32(lenb, (uint32_t)clen);
    if (write_all(w->fd, lenb, 4) != 0 || write_all(w->fd, w->cbuf, (size_t)clen) != 0)
        return io_error(err, "write", w->tmp);
    w->first = 0;
    w->len = 0;
    return ABIS_OK;
}

abis_status abis_snapshot_write(abis_snapshot_writer *w, const void *data, size_t len,
                                abis_error *err)
{
    const unsigned char *p = data;
    while (len) {
        if (w->len == MSG_MAX) {
            abis_status st = flush(w, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err);
            if (st != ABIS_OK)
                return st;
        }
        size_t n = MSG_MAX - w->len < len ? MSG_MAX - w->len : len;
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        p += n;
        len -= n;
    }
    return ABIS_OK;
}

/* fsync the directory holding path, so the rename is durable. */
static int sync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

abis_status abis_snapshot_commit(abis_snapshot_writer *w, abis_error *err)
{
    abis_status st = flush(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err);
    if (st == ABIS_OK && fsync(w->fd) != 0)
        st = io_error(err, "sync", w->tmp);
    if (st == ABIS_OK) {
        int rc = close(w->fd);
        w->fd = -1;
        if (rc != 0)
            st = io_error(err, "close", w->tmp);
    }
    if (st == ABIS_OK && rename(w->tmp, w->path) != 0)
        st = io_error(err, "rename into place", w->path);
    if (st == ABIS_OK && sync_dir(w->path) != 0)
        st = io_error(err, "sync the directory of", w->path);
    if (st != ABIS_OK) {
        abis_snapshot_abort(w);
        return st;
    }
    sodium_memzero(&w->st, sizeof w->st);
    abis_wipe_free(w->buf, MSG_MAX);
    free(w->cbuf);
    free(w->path);
    free(w->tmp);
    free(w);
    return ABIS_OK;
}

void abis_snapshot_abort(abis_snapshot_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    sodium_memzero(&w->st, sizeof w->st);
    if (w->buf)
        abis_wipe_free(w->buf, MSG_MAX);
    free(w->cbuf);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* ---- reading ------------------------------------------------------------------------- */

static abis_status read_head(int fd, const char *path, unsigned char *raw, abis_snapshot_head *h,
                             abis_error *err)
{
    if (read_all(fd, raw, HEAD_BYTES) != 1 || memcmp(raw, MAGIC, 8) != 0)
        return damaged(err, path, "is not a gallery snapshot");
    decode_head(raw, h);
    if (h->version != ABIS_SNAPSHOT_VERSION)
        return damaged(err, path, "has a version this program does not read");
    return ABIS_OK;
}

abis_status abis_snapshot_peek(const char *path, abis_snapshot_head *out, abis_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return abis_error_set(err, ABIS_E_NOT_FOUND, "no gallery snapshot '%s'", path);
        return io_error(err, "open", path);
    }
    unsigned char raw[HEAD_BYTES];
    abis_status st = read_head(fd, path, raw, out, err);
    close(fd);
    return st;
}

/* Decrypt the next message into r->buf. */
static abis_status next_message(abis_snapshot_reader *r, int first, abis_error *err)
{
    unsigned char lenb[4];
    if (read_all(r->fd, lenb, 4) != 1)
        return damaged(err, r->path, "ends early");
    uint32_t clen = get32(lenb);
    if (clen < SS_ABYTES || clen > MSG_MAX + SS_ABYTES)
        return damaged(err, r->path, "is damaged");
    if (read_all(r->fd, r->cbuf, clen) != 1)
        return damaged(err, r->path, "ends early");
    unsigned long long mlen;
    unsigned char tag;
    if (crypto_secretstream_xchacha20poly1305_pull(&r->st, r->buf, &mlen, &tag, r->cbuf, clen,
                                                   first ? r->head : NULL,
                                                   first ? HEAD_BYTES : 0) != 0)
        return damaged(err, r->path, "is damaged or was written with another key");
    r->len = (size_t)mlen;
    r->pos = 0;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        r->ended = 1;
    return ABIS_OK;
}

abis_status abis_snapshot_open(const char *path, const abis_key *key,
                               const abis_snapshot_head *expect, abis_snapshot_reader **out,
                               abis_error *err)
{
    *out = NULL;
    abis_snapshot_reader *r = calloc(1, sizeof *r);
    if (!r)
        return abis_error_set(err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    r->fd = -1;
    r->path = strdup(path);
    r->buf = malloc(MSG_MAX);
    r->cbuf = malloc(MSG_MAX + SS_ABYTES);
    abis_status st = r->path && r->buf && r->cbuf
                         ? ABIS_OK
                         : abis_error_set(err, ABIS_E_NOMEM, "gallery snapshot: out of memory");
    if (st == ABIS_OK && (r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        st = errno == ENOENT ? abis_error_set(err, ABIS_E_NOT_FOUND, "no gallery snapshot '%s'", path)
                             : io_error(err, "open", path);
    abis_snapshot_head h;
    if (st == ABIS_OK)
        st = read_head(r->fd, path, r->head, &h, err);
    if (st == ABIS_OK) {
        unsigned char want[HEAD_BYTES];
        encode_head(expect, want);
        if (memcmp(want, r->head, HEAD_BYTES) != 0)
            st = damaged(err, path, "is not the snapshot expected (another gallery or point in "
                                    "the store's history)");
    }
    unsigned char ssh[SS_HEADER];
    if (st == ABIS_OK && read_all(r->fd, ssh, sizeof ssh) != 1)
        st = damaged(err, path, "ends early");
    if (st == ABIS_OK &&
        crypto_secretstream_xchacha20poly1305_init_pull(&r->st, ssh, key->bytes) != 0)
        st = damaged(err, path, "is damaged");
    if (st == ABIS_OK)
        st = next_message(r, 1, err); /* authenticates the header */
    if (st != ABIS_OK) {
        abis_snapshot_close(r);
        return st;
    }
    *out = r;
    return ABIS_OK;
}

abis_status abis_snapshot_read(abis_snapshot_reader *r, void *data, size_t len, abis_error *err)
{
    unsigned char *p = data;
    while (len) {
        if (r->pos == r->len) {
            if (r->ended)
                return damaged(err, r->path, "ends early");
            abis_status st = next_message(r, 0, err);
            if (st != ABIS_OK)
                return st;
            continue;
        }
        size_t n = r->len - r->pos < len ? r->len - r->pos : len;
        memcpy(p, r->buf + r->pos, n);
        r->pos += n;
        p += n;
        len -= n;
    }
    return ABIS_OK;
}

abis_status abis_snapshot_finish(abis_snapshot_reader *r, abis_error *err)
{
    abis_status st = ABIS_OK;
    unsigned char extra;
    if (r->pos != r->len || !r->ended)
        st = damaged(err, r->path, "has more data than expected");
    else if (read_all(r->fd, &extra, 1) != 0)
        st = damaged(err, r->path, "has bytes after its end");
    abis_snapshot_close(r);
    return st;
}

void abis_snapshot_close(abis_snapshot_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    sodium_memzero(&r->st, sizeof r->st);
    if (r->buf)
        abis_wipe_free(r->buf, MSG_MAX);
    free(r->cbuf);
    free(r->path);
    free(r);
}
