/*
 * fuzz_request.c: a libFuzzer target for everything abisd does with a
 * request before the engine sees it (src/server/request.c, routes.c and
 * template/input_json.c): the method and path against the route table and
 * its path parameters, header values (Authorization bearer credentials,
 * Content-Type), the JSON body with its templates -- vectors, base64
 * vectors and base64 images -- and base64 on its own.
 *
 * An input is an HTTP-like text:
 *     METHOD PATH\n
 *     Header: value\n ...
 *     \n
 *     BODY
 * (missing parts are empty).  The body is also parsed by the fast JSON
 * path and by jansson alone, which must agree.  Build and run: `make fuzz` (clang,
 * -fsanitize=fuzzer,address; FUZZ_SECONDS, default 60); findings are
 * recorded in docs/FUZZING.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/server.h"

/* The next line of [*p, end): NUL-terminated copy in buf; 0 at the end. */
static int next_line(const char **p, const char *end, char *buf, size_t cap)
{
    if (*p >= end)
        return 0;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(buf, *p, c);
    buf[c] = '\0';
    if (c && buf[c - 1] == '\r')
        buf[c - 1] = '\0';
    *p += n + (nl ? 1 : 0);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char line[1024], method[16] = "", path[600] = "";
    if (next_line(&p, end, line, sizeof line)) {
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = '\0';
            snprintf(method, sizeof method, "%s", line);
            snprintf(path, sizeof path, "%s", sp + 1);
        }
    }
    /* Headers until a blank line. */
    while (next_line(&p, end, line, sizeof line) && line[0]) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (!strcasecmp(line, "Authorization")) {
            const char *key = abisd_bearer(v);
            if (key && strlen(key) > 1u << 20)
                abort();
        } else if (!strcasecmp(line, "Content-Type")) {
            (void)abisd_is_json_type(v);
        }
    }
    const char *body = p;
    size_t body_len = (size_t)(end - p);

    char params[ABISD_PARAMS_MAX][ABISD_PARAM_LEN], allow[64];
    int known = 0;
    const abisd_route *r = abisd_route_match(method, path, params, &known, allow, sizeof allow);
    abisd_error e;
    if (r && strstr(r->pattern, "{id}")) {
        abis_id id;
        (void)abisd_parse_subject(params[0], &id, &e);
    }
    unsigned fields = r ? r->fields : 0xffu, required = r ? r->required : 0;
    json_t *root = NULL;
    if (abisd_parse_json(body, body_len, &root, &e) == 0) {
        abisd_body b;
        if (abisd_parse_body(root, fields, required, &b, &e) == 0) {
            /* What the engine would receive must be consistent. */
            for (size_t i = 0; i < b.templates.n; i++)
                if (!b.templates.in[i].modality ||
                    (!b.templates.in[i].vector && !b.templates.in[i].capture))
                    abort();
        } else if (e.status != 400 && e.status != 503) {
            abort();
        }
        abisd_body_free(&b);
        json_decref(root);
    } else if (e.status != 400) {
        abort();
    }
    /* The fast JSON path (src/server/jsonfast.c) against jansson: what it
     * accepts, jansson accepts as an equal value (json_equal compares types
     * too: an integer is never a real). */
    json_t *fast = abisd_json_fast(body, body_len);
    if (fast) {
        json_error_t je;
        json_t *slow = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &je);
        if (!slow || !json_equal(fast, slow))
            abort();
        json_decref(slow);
        json_decref(fast);
    }
    /* base64 on its own, as a vector_b64 or image_b64 value would be. */
    unsigned char *bytes = NULL;
    size_t n = 0;
    abis_error err;
    if (abis_base64_decode(body, body_len, &bytes, &n, &err) == ABIS_OK && n > body_len)
        abort();
    free(bytes);
    return 0;
}
