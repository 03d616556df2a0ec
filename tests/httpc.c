/*
 * httpc.c: the server tests' HTTP client and abisd launcher (httpc.h).
 */
#define _GNU_SOURCE /* strcasestr */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S 30

void http_resp_free(http_resp *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Decode a chunked body in place; returns its length. */
static size_t dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n) {
        char *end;
        unsigned long len = strtoul(b + in, &end, 16);
        char *nl = strstr(end, "\r\n");
        if (!nl || len == 0)
            break;
        in = (size_t)(nl - b) + 2;
        if (in + len > n)
            len = n - in;
        memmove(b + out, b + in, len);
        out += len;
        in += len + 2;
    }
    b[out] = '\0';
    return out;
}

/* Read the whole answer (the server closes, or Content-Length is reached). */
static int read_response(int fd, http_resp *out)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return 0;
    long want = -1;
    size_t head_len = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            char *b = realloc(buf, cap);
            if (!b)
                break;
            buf = b;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if (!head_len) {
            char *e = strstr(buf, "\r\n\r\n");
            if (e) {
                head_len = (size_t)(e - buf) + 4;
                char *cl = strcasestr(buf, "\r\nContent-Length:");
                if (cl && cl < e)
                    want = strtol(cl + 17, NULL, 10);
            }
        }
        if (head_len && want >= 0 && len >= head_len + (size_t)want)
            break;
    }
    buf[len] = '\0';
    if (!head_len || strncmp(buf, "HTTP/1.", 7) != 0) {
        free(buf);
        return 0;
    }
    out->status = atoi(buf + 9);
    out->head = strndup(buf, head_len);
    out->body_len = len - head_len;
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, buf + head_len, out->body_len);
    out->body[out->body_len] = '\0';
    char *te = strcasestr(out->head, "\r\nTransfer-Encoding: chunked");
    if (te)
        out->body_len = dechunk(out->body, out->body_len);
    free(buf);
    out->json = out->body_len ? json_loads(out->body, 0, NULL) : NULL;
    return out->status;
}

int http_raw(int port, const char *raw, size_t len, size_t split, int pause_ms, http_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_local(port);
    if (fd < 0)
        return 0;
    int ok = 0;
    if (split == 0) {
        ok = send_all(fd, raw, len) == 0;
    } else {
        ok = 1;
        for (size_t at = 0; at < len && ok; at += split) {
            size_t n = len - at < split ? len - at : split;
            ok = send_all(fd, raw + at, n) == 0;
            if (at + n < len) {
                struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    int status = read_response(fd, out); /* an early answer is read even after a failed send */
    (void)ok;
    close(fd);
    return status;
}

int http_begin(int port, const char *first, size_t len)
{
    int fd = connect_local(port);
    if (fd >= 0 && send_all(fd, first, len) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int http_end(int fd, const char *rest, size_t len, http_resp *out)
{
    memset(out, 0, sizeof *out);
    send_all(fd, rest, len);
    int status = read_response(fd, out);
    close(fd);
    return status;
}

int http_do(int port, const char *method, const char *path, const char *const *headers,
            const char *body, http_resp *out)
{
    size_t blen = body ? strlen(body) : 0, cap = blen + 4096;
    for (size_t i = 0; headers && headers[i]; i++)
        cap += strlen(headers[i]) + 2;
    char *req = malloc(cap);
    size_t n = (size_t)snprintf(
        req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    for (size_t i = 0; headers && headers[i]; i++)
        n += (size_t)snprintf(req + n, cap - n, "%s\r\n", headers[i]);
    if (body)
        n += (size_t)snprintf(req + n, cap - n, "Content-Length: %zu\r\n", blen);
    n += (size_t)snprintf(req + n, cap - n, "\r\n");
    if (body) {
        memcpy(req + n, body, blen);
        n += blen;
    }
    int st = http_raw(port, req, n, 0, 0, out);
    free(req);
    return st;
}

char *http_header(const http_resp *r, const char *name)
{
    if (!r->head)
        return NULL;
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            return strndup(v, e ? (size_t)(e - v) : strlen(v));
        }
    }
    return NULL;
}

const char *http_error_code(const http_resp *r)
{
    json_t *c = json_object_get(json_object_get(r->json, "error"), "code");
    return json_is_string(c) ? json_string_value(c) : "";
}

/* ---- abisd ------------------------------------------------------------------------- */

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "  abisd: %s", line);
    fclose(f);
}

int abisd_proc_start(abisd_proc *p, const char *data_dir, const char *const *args)
{
    const char *bin = getenv("ABISD");
    if (!bin || !*bin) {
        fprintf(stderr, "ABISD is not set (ctest sets it to the built abisd)\n");
        return -1;
    }
    memset(p, 0, sizeof *p);
    static int seq;
    snprintf(p->log, sizeof p->log, "%s/abisd-%d-%d.log", data_dir, (int)getpid(), seq);
    snprintf(p->ready, sizeof p->ready, "%s/abisd-%d-%d.port", data_dir, (int)getpid(), seq++);
    unlink(p->ready);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = bin;
    argv[n++] = "--data";
    argv[n++] = data_dir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = p->ready;
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    for (int i = 0; i < 2000; i++) { /* 20 s */
        FILE *f = fopen(p->ready, "r");
        if (f) {
            int ok = fscanf(f, "%d", &p->port) == 1;
            fclose(f);
            if (ok && p->port > 0)
                return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "abisd exited before listening:\n");
            print_file(p->log);
            p->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "abisd did not listen within 20 s:\n");
    print_file(p->log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    p->pid = 0;
    return -1;
}

int abisd_proc_stop(abisd_proc *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int status = 0;
    for (int i = 0; i < 3000; i++) { /* 30 s, then SIGKILL */
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid)
            break;
        if (i == 2999) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    p->pid = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
