/*
 * jsonfast.c: a fast path for request bodies in front of jansson.
 *
 * jansson's parser reads a body a character at a time through a stream
 * callback and appends each character of a string to a growing buffer: a
 * verify request with a 512-d vector_b64 template (2.8 KB) took 21 µs to
 * parse, 14 % of abisd's CPU per verify (perf, 16 connections).  This parser
 * handles the bodies relying parties send -- objects, arrays, plain ASCII
 * strings, numbers, true/false/null -- in one pass over the bytes, and
 * builds the same jansson values (json_t) the handlers read.  It accepts
 * only what it is sure of and declines everything else (any escape or byte
 * outside printable ASCII in a string, a duplicate key, deep nesting, a
 * number too long or out of range, any syntax error): a declined body is
 * parsed again by jansson, which gives the answer -- and for an invalid
 * body the error message with its line and column.  So jansson stays the
 * definition of what is valid and what it means; fuzz/fuzz_request.c checks
 * that whatever this accepts, jansson accepts as an equal value of the same
 * types, and tests/test_server_json.c does so on fixed cases.
 */
#include "server/server.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FAST_MAX_DEPTH 32
#define FAST_MAX_NUMBER 64 /* characters of one number */

typedef struct fast {
    const char *p, *end;
    int depth;
} fast;

static void skip_ws(fast *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

static json_t *value(fast *f);

/* A string of printable ASCII without escapes: its length, p past the
 * closing quote; -1 to decline. */
static long plain_string(fast *f, const char **start)
{
    if (f->p >= f->end || *f->p != '"')
        return -1;
    const char *s = ++f->p;
    while (f->p < f->end) {
        unsigned char c = (unsigned char)*f->p;
        if (c == '"') {
            *start = s;
            return (long)(f->p++ - s);
        }
        if (c < 0x20 || c > 0x7E || c == '\\')
            return -1;
        f->p++;
    }
    return -1;
}

/* JSON's number grammar; an integer (no fraction or exponent) of at most 18
 * digits becomes json_integer, anything else json_real through strtod (as
 * jansson does, in the C locale abisd runs in). */
static json_t *number(fast *f)
{
    const char *s = f->p;
    int integer = 1;
    if (f->p < f->end && *f->p == '-')
        f->p++;
    if (f->p >= f->end || *f->p < '0' || *f->p > '9')
        return NULL;
    if (*f->p == '0')
        f->p++;
    else
        while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
            f->p++;
    if (f->p < f->end && *f->p == '.') {
        integer = 0;
        f->p++;
        if (f->p >= f->end || *f->p < '0' || *f->p > '9')
            return NULL;
        while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
            f->p++;
    }
    if (f->p < f->end && (*f->p == 'e' || *f->p == 'E')) {
        integer = 0;
        f->p++;
        if (f->p < f->end && (*f->p == '+' || *f->p == '-'))
            f->p++;
        if (f->p >= f->end || *f->p < '0' || *f->p > '9')
            return NULL;
        while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
            f->p++;
    }
    size_t n = (size_t)(f->p - s);
    if (n >= FAST_MAX_NUMBER || (integer && n - (*s == '-') > 18)) /* 18 digits fit */
        return NULL;
    char buf[FAST_MAX_NUMBER];
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (integer)
        return json_integer((json_int_t)strtoll(buf, NULL, 10)); /* 18 digits always fit */
    errno = 0;
    double d = strtod(buf, NULL);
    if (errno == ERANGE) /* overflow (jansson refuses) or underflow: its rules decide */
        return NULL;
    return json_real(d);
}

/* Consume c if it is next. */
static int eat(fast *f, char c)
{
    if (f->p < f->end && *f->p == c) {
        f->p++;
        return 1;
    }
    return 0;
}

/* After a member of an object or array: 1 when a ',' announces another, 0
 * when `close` ends it, -1 for anything else. */
static int after_member(fast *f, char close)
{
    skip_ws(f);
    if (eat(f, ','))
        return 1;
    return eat(f, close) ? 0 : -1;
}

static json_t *object(fast *f)
{
    json_t *o = json_object();
    f->p++; /* '{' */
    skip_ws(f);
    if (o && eat(f, '}'))
        return o;
    int more = 1;
    while (o && more == 1) {
        const char *k;
        skip_ws(f);
        long kn = plain_string(f, &k);
        if (kn < 0 || kn >= 256)
            break;
        char key[256];
        memcpy(key, k, (size_t)kn);
        key[kn] = '\0';
        skip_ws(f);
        if (!eat(f, ':') || json_object_get(o, key)) /* duplicates: jansson's word */
            break;
        json_t *v = value(f);
        if (!v || json_object_set_new_nocheck(o, key, v) != 0)
            break;
        more = after_member(f, '}');
    }
    if (more == 0)
        return o;
    json_decref(o);
    return NULL;
}

static json_t *array(fast *f)
{
    json_t *a = json_array();
    f->p++; /* '[' */
    skip_ws(f);
    if (a && eat(f, ']'))
        return a;
    int more = 1;
    while (a && more == 1) {
        json_t *v = value(f);
        if (!v || json_array_append_new(a, v) != 0)
            break;
        more = after_member(f, ']');
    }
    if (more == 0)
        return a;
    json_decref(a);
    return NULL;
}

static int literal(fast *f, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n) != 0)
        return 0;
    f->p += n;
    return 1;
}

static json_t *value(fast *f)
{
    skip_ws(f);
    if (f->p >= f->end)
        return NULL;
    json_t *v = NULL;
    switch (*f->p) {
    case '{':
    case '[':
        if (++f->depth > FAST_MAX_DEPTH)
            return NULL;
        v = *f->p == '{' ? object(f) : array(f);
        f->depth--;
        return v;
    case '"': {
        const char *s;
        long n = plain_string(f, &s);
        return n < 0 ? NULL : json_stringn_nocheck(s, (size_t)n);
    }
    case 't':
        return literal(f, "true") ? json_true() : NULL;
    case 'f':
        return literal(f, "false") ? json_false() : NULL;
    case 'n':
        return literal(f, "null") ? json_null() : NULL;
    default:
        return number(f);
    }
}

json_t *abisd_json_fast(const char *body, size_t len)
{
    fast f = {body, body + len, 0};
    skip_ws(&f);
    if (f.p >= f.end || (*f.p != '{' && *f.p != '[')) /* jansson wants one or the other */
        return NULL;
    json_t *v = value(&f);
    skip_ws(&f);
    if (v && f.p != f.end) { /* trailing bytes: jansson names them */
        json_decref(v);
        v = NULL;
    }
    return v;
}
