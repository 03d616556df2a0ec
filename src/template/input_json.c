/*
 * input_json.c: a template object of a JSON request or import line into an
 * abis_template_input (contract in input_json.h).
 */
#include "template/input_json.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "template/vector.h"

/* Set *code and the message; returns ABIS_E_INVALID. */
#define REFUSE(code_, ...) (*code = (code_), abis_error_set(err, ABIS_E_INVALID, __VA_ARGS__))

/* The value of each base64 character (RFC 4648, standard alphabet), 0xFF (X)
 * for any other byte; 16 bytes a line. */
/* clang-format off */
static const unsigned char b64_value[256] = {
#define X 0xFF
    /* 0x00 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0x10 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0x20 */ X, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63,
    /* 0x30 */ 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    /* 0x40 */ X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    /* 0x50 */ 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X,
    /* 0x60 */ X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    /* 0x70 */ 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    /* 0x80 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0x90 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0xA0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0xB0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0xC0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0xD0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0xE0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 0xF0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
#undef X
};
/* clang-format on */

/* Base64 is decoded here, four characters to three bytes through a table,
 * rather than with libsodium's sodium_base642bin: that one is written in
 * constant time, a character at a time, and took 5.7 % of abisd's CPU for a
 * 512-d vector_b64 probe (perf, verify at 16 connections); this loop takes a
 * tenth of that.  The rules are libsodium's ORIGINAL variant, which
 * tests/test_input_json.c checks on random and broken text: up to two '='
 * at the end, nothing else outside the alphabet, no length of 4k + 1, and
 * the unused low bits of the last character zero.  (The table lookups
 * depend on the text; they are 256 bytes in four cache lines, and a probe
 * template is decoded once, not compared.) */
abis_status abis_base64_decode(const char *text, size_t len, unsigned char **out, size_t *n,
                               abis_error *err)
{
    *out = NULL;
    *n = 0;
    size_t pad = 0;
    while (len > 0 && pad < 2 && text[len - 1] == '=')
        len--, pad++;
    if (len == 0)
        return abis_error_set(err, ABIS_E_INVALID, "is empty");
    const unsigned char *t = (const unsigned char *)text;
    size_t bad = len;
    for (size_t i = 0; i < len; i++)
        if (b64_value[t[i]] == 0xFF) {
            bad = i;
            break;
        }
    if (bad < len)
        return abis_error_set(err, ABIS_E_INVALID,
                              "is not base64: character %zu ('%c') is not in the base64 alphabet",
                              bad + 1, t[bad] >= 0x20 && t[bad] < 0x7f ? t[bad] : '?');
    size_t tail = len % 4;
    /* the last character's unused low bits: 4 of them after 2 characters,
     * 2 after 3 */
    if (tail == 1 || (tail == 2 && (b64_value[t[len - 1]] & 0x0F)) ||
        (tail == 3 && (b64_value[t[len - 1]] & 0x03)))
        return abis_error_set(err, ABIS_E_INVALID,
                              "is not base64: its length (%zu characters without padding) "
                              "cannot be a whole number of bytes",
                              len);
    size_t bytes = len / 4 * 3 + (tail ? tail - 1 : 0);
    unsigned char *buf = malloc(bytes ? bytes : 1);
    if (!buf)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory decoding base64");
    size_t o = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t v = (uint32_t)b64_value[t[i]] << 18 | (uint32_t)b64_value[t[i + 1]] << 12 |
                     (uint32_t)b64_value[t[i + 2]] << 6 | b64_value[t[i + 3]];
        buf[o++] = (unsigned char)(v >> 16);
        buf[o++] = (unsigned char)(v >> 8);
        buf[o++] = (unsigned char)v;
    }
    if (tail) {
        uint32_t v = (uint32_t)b64_value[t[i]] << 18 | (uint32_t)b64_value[t[i + 1]] << 12;
        if (tail == 3)
            v |= (uint32_t)b64_value[t[i + 2]] << 6;
        buf[o++] = (unsigned char)(v >> 16);
        if (tail == 3)
            buf[o++] = (unsigned char)(v >> 8);
    }
    *out = buf;
    *n = o;
    return ABIS_OK;
}

/* "vector": [numbers] */
static abis_status vector_from_array(json_t *arr, const char *what, abis_json_template *t,
                                     const char **code, abis_error *err)
{
    size_t len = json_array_size(arr);
    if (len == 0)
        return REFUSE("bad_vector", "%s.vector is empty", what);
    if (!(t->vector = malloc(len * sizeof *t->vector)))
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory for %s.vector", what);
    t->in.dim = len; /* so that abis_json_template_free wipes all of it */
    for (size_t i = 0; i < len; i++) {
        json_t *x = json_array_get(arr, i);
        if (!json_is_number(x))
            return REFUSE("bad_vector", "%s.vector[%zu] is not a number", what, i);
        double d = json_number_value(x);
        if (!isfinite(d) || fabs(d) > FLT_MAX)
            return REFUSE("bad_vector", "%s.vector[%zu] (%g) is out of float32 range", what, i, d);
        t->vector[i] = (float)d;
    }
    t->in.vector = t->vector;
    return ABIS_OK;
}

/* "vector_b64" or "image_b64": base64 text into the vector or capture. */
static abis_status from_base64(json_t *str, const char *field, int image, const char *what,
                               abis_json_template *t, const char **code, abis_error *err)
{
    unsigned char *bytes;
    size_t n;
    abis_status st =
        abis_base64_decode(json_string_value(str), json_string_length(str), &bytes, &n, err);
    if (st == ABIS_E_NOMEM)
        return st;
    if (st != ABIS_OK) {
        *code = "bad_base64";
        return abis_error_prefix(err, "%s.%s", what, field);
    }
    if (image) {
        t->capture = bytes;
        t->in.capture = bytes;
        t->in.capture_size = n;
        return ABIS_OK;
    }
    st = abis_vector_parse_raw(bytes, n, &t->vector, &t->in.dim, err);
    abis_wipe_free(bytes, n);
    if (st == ABIS_E_NOMEM)
        return st;
    if (st != ABIS_OK) {
        *code = "bad_vector";
        return abis_error_prefix(err, "%s.%s (little-endian float32)", what, field);
    }
    t->in.vector = t->vector;
    return ABIS_OK;
}

static abis_status parse_position(json_t *pos, const char *what, abis_json_template *t,
                                  const char **code, abis_error *err)
{
    if (json_is_integer(pos)) {
        json_int_t v = json_integer_value(pos);
        if (v < 0 || v > 10)
            return REFUSE("invalid", "%s.position %lld is not 0-10", what, (long long)v);
        t->in.position = (int)v;
    } else if (json_is_string(pos)) {
        const char *s = json_string_value(pos);
        if (strcmp(s, "right") == 0)
            t->in.position = 1;
        else if (strcmp(s, "left") == 0)
            t->in.position = 2;
        else
            return REFUSE("invalid", "%s.position '%.32s' is not 0-10, 'left' or 'right'", what, s);
    } else {
        return REFUSE("wrong_type", "%s.position is not a number or 'left' / 'right'", what);
    }
    return ABIS_OK;
}

abis_status abis_json_template_parse(json_t *obj, const char *what, abis_json_template *t,
                                     const char **code, abis_error *err)
{
    static const char *const fields[] = {"modality", "vector",  "vector_b64", "image_b64",
                                         "position", "quality", "ppi"};
    memset(t, 0, sizeof *t);
    t->in.quality = -1.0;
    *code = "invalid";
    if (!json_is_object(obj))
        return REFUSE("wrong_type", "%s is not an object", what);
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        size_t k = 0;
        while (k < sizeof fields / sizeof fields[0] && strcmp(key, fields[k]) != 0)
            k++;
        if (k == sizeof fields / sizeof fields[0])
            return REFUSE("unknown_field",
                          "%s has an unknown field '%.64s' (expected modality, vector, "
                          "vector_b64, image_b64, position, quality, ppi)",
                          what, key);
    }
    json_t *m = json_object_get(obj, "modality");
    if (!m)
        return REFUSE("missing_field", "%s has no \"modality\"", what);
    if (!json_is_string(m))
        return REFUSE("wrong_type", "%s.modality is not a string", what);
    t->in.modality = json_string_value(m);

    json_t *pos = json_object_get(obj, "position");
    abis_status st = ABIS_OK;
    if (pos && !json_is_null(pos) && (st = parse_position(pos, what, t, code, err)) != ABIS_OK)
        return st;
    json_t *q = json_object_get(obj, "quality");
    if (q && !json_is_null(q)) {
        if (!json_is_number(q))
            return REFUSE("wrong_type", "%s.quality is not a number", what);
        t->in.quality = json_number_value(q);
    }
    json_t *ppi = json_object_get(obj, "ppi");
    if (ppi && !json_is_null(ppi)) {
        if (!json_is_number(ppi))
            return REFUSE("wrong_type", "%s.ppi is not a number", what);
        t->in.ppi = json_number_value(ppi);
        if (!(t->in.ppi > 0 && t->in.ppi <= 100000))
            return REFUSE("invalid",
                          "%s.ppi is not a positive number of pixels per inch up to 100000 (%g)",
                          what, t->in.ppi);
    }

    json_t *vec = json_object_get(obj, "vector"), *b64 = json_object_get(obj, "vector_b64"),
           *img = json_object_get(obj, "image_b64");
    if ((vec != NULL) + (b64 != NULL) + (img != NULL) > 1)
        return REFUSE("invalid",
                      "%s has more than one of \"vector\", \"vector_b64\" and "
                      "\"image_b64\"",
                      what);
    if (vec) {
        if (!json_is_array(vec))
            return REFUSE("wrong_type", "%s.vector is not an array", what);
        return vector_from_array(vec, what, t, code, err);
    }
    json_t *text = b64 ? b64 : img;
    if (!text)
        return REFUSE("missing_field", "%s has no \"vector\", \"vector_b64\" or \"image_b64\"",
                      what);
    const char *field = b64 ? "vector_b64" : "image_b64";
    if (!json_is_string(text))
        return REFUSE("wrong_type", "%s.%s is not a string", what, field);
    return from_base64(text, field, img != NULL, what, t, code, err);
}

void abis_json_template_free(abis_json_template *t)
{
    if (!t)
        return;
    abis_wipe_free(t->vector, t->in.dim * sizeof(float));
    abis_wipe_free(t->capture, t->in.capture_size);
    memset(t, 0, sizeof *t);
}
