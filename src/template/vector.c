/*
 * vector.c: validating vector templates where they enter libabis, and
 * parsing the three exchange formats they arrive in (see vector.h).
 *
 * Every input is untrusted: sizes are checked before anything is allocated,
 * arithmetic on them cannot overflow, and no vector may have more than
 * VECTOR_MAX_VALUES values.  Value positions in messages count from 0, as
 * NumPy and JSON arrays do.
 */
#include "template/vector.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/crypto.h"
#include "util/file.h"

#include <jansson.h>

/* The largest vector accepted: far above any embedding in use (128 to 4096
 * values), small enough that a hostile size cannot exhaust memory. */
#define VECTOR_MAX_VALUES 65536
/* NumPy's own default limit on .npy header length (numpy.lib.format,
 * max_header_size = 10000); real headers are under 128 bytes. */
#define NPY_MAX_HEADER 10000
/* The largest JSON text or file read: 65536 values of up to ~25 characters
 * each, with generous room for white space. */
#define VECTOR_MAX_TEXT (8u << 20)

/* ---- validation ---------------------------------------------------------- */

abis_status abis_vector_validate(const float *v, size_t n, size_t expected_dim,
                                 const char *modality, const char *what, float *out,
                                 abis_error *err)
{
    if (!what)
        what = "vector";
    if (!modality)
        modality = "?";
    if (n == 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s has no values, modality '%s' expects %zu",
                              what, modality, expected_dim);
    if (n != expected_dim)
        return abis_error_set(err, ABIS_E_INVALID, "%s has %zu values, modality '%s' expects %zu",
                              what, n, modality, expected_dim);
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i]))
            return abis_error_set(err, ABIS_E_INVALID, "%s value %zu is NaN", what, i);
        if (isinf(v[i]))
            return abis_error_set(err, ABIS_E_INVALID, "%s value %zu is Inf", what, i);
        ss += (double)v[i] * v[i];
    }
    /* ss cannot overflow: at most 65536 * FLT_MAX^2 ~ 1e81 < DBL_MAX. */
    if (ss == 0)
        return abis_error_set(err, ABIS_E_INVALID, "%s has zero norm", what);
    double inv = 1.0 / sqrt(ss);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(v[i] * inv);
    return ABIS_OK;
}

/* ---- shared helpers for the parsers --------------------------------------- */

/* Check one value read as double and store it as float32. */
static abis_status store_value(double x, size_t i, float *out, abis_error *err)
{
    if (isnan(x))
        return abis_error_set(err, ABIS_E_INVALID, "value %zu is NaN", i);
    if (isinf(x))
        return abis_error_set(err, ABIS_E_INVALID, "value %zu is Inf", i);
    if (fabs(x) > FLT_MAX)
        return abis_error_set(err, ABIS_E_INVALID, "value %zu (%g) is out of float32 range", i, x);
    out[i] = (float)x;
    return ABIS_OK;
}

static abis_status too_many(size_t n, abis_error *err)
{
    return abis_error_set(err, ABIS_E_INVALID, "%zu values is too many (at most %d)", n,
                          VECTOR_MAX_VALUES);
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

/* Decode `n` little-endian float32 (itemsize 4) or float64 (itemsize 8)
 * values into a new array. */
static abis_status decode_le(const unsigned char *p, size_t n, int itemsize, float **out,
                             abis_error *err)
{
    float *v = malloc(n * sizeof *v);
    if (!v)
        return abis_error_set(err, ABIS_E_NOMEM, "out of memory reading %zu values", n);
    for (size_t i = 0; i < n; i++) {
        double x;
        if (itemsize == 4) {
            uint32_t u = load_le32(p + 4 * i);
            float f;
            memcpy(&f, &u, sizeof f);
            x = f;
        } else {
            uint64_t u = load_le64(p + 8 * i);
            memcpy(&x, &u, sizeof x);
        }
        abis_status st = store_value(x, i, v, err);
        if (st != ABIS_OK) {
            free(v);
            return st;
        }
    }
    *out = v;
    return ABIS_OK;
}

/* ---- .npy ------------------------------------------------------------------ */

/* The .npy header is a Python dict literal, e.g.
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (512,), }
 * (numpy.lib.format).  This is a strict little reader for exactly that
 * grammar: string keys, and string, True/False or tuple-of-integers values. */
typedef struct npy_reader {
    const char *p, *end;
} npy_reader;

static void npy_skip_ws(npy_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int npy_eat(npy_reader *r, char c)
{
    npy_skip_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    return 0;
}

/* Read a quoted string (no escapes: none occur in .npy headers) into buf. */
static int npy_string(npy_reader *r, char *buf, size_t cap)
{
    npy_skip_ws(r);
    if (r->p >= r->end || (*r->p != '\'' && *r->p != '"'))
        return 0;
    char q = *r->p++;
    size_t n = 0;
    while (r->p < r->end && *r->p != q) {
        if (*r->p == '\\' || n + 1 >= cap)
            return 0;
        buf[n++] = *r->p++;
    }
    if (r->p >= r->end)
        return 0;
    r->p++;
    buf[n] = '\0';
    return 1;
}

static int npy_word(npy_reader *r, const char *w)
{
    npy_skip_ws(r);
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, w, n) == 0) {
        r->p += n;
        return 1;
    }
    return 0;
}

/* Parse a shape tuple "(a, b, ...)"; at most 8 dimensions, each capped so
 * that nothing overflows (a dimension above VECTOR_MAX_VALUES is stored as
 * VECTOR_MAX_VALUES + 1, which is refused later anyway). */
static int npy_shape(npy_reader *r, size_t dims[8], size_t *ndim)
{
    if (!npy_eat(r, '('))
        return 0;
    *ndim = 0;
    for (;;) {
        if (npy_eat(r, ')'))
            return 1;
        npy_skip_ws(r);
        if (r->p >= r->end || *r->p < '0' || *r->p > '9' || *ndim == 8)
            return 0;
        size_t d = 0;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            d = d * 10 + (size_t)(*r->p - '0');
            if (d > VECTOR_MAX_VALUES)
                d = VECTOR_MAX_VALUES + 1;
            r->p++;
        }
        if (r->p < r->end && *r->p == 'L') /* Python 2 long suffix */
            r->p++;
        dims[(*ndim)++] = d;
        if (npy_eat(r, ','))
            continue;
        if (npy_eat(r, ')'))
            return 1;
        return 0;
    }
}

static void format_shape(const size_t *dims, size_t ndim, char *buf, size_t cap)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, cap - off, "(");
    for (size_t i = 0; i < ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%zu%s", i ? ", " : "", dims[i],
                                ndim == 1 ? "," : "");
    if (off < cap)
        snprintf(buf + off, cap - off, ")");
}

abis_status abis_vector_parse_npy(const void *buf, size_t len, float **out, size_t *n,
                                  abis_error *err)
{
    const unsigned char *b = buf;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return abis_error_set(err, ABIS_E_INVALID, "not a .npy file (no \\x93NUMPY magic)");
    unsigned major = b[6], minor = b[7];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return abis_error_set(err, ABIS_E_INVALID, ".npy file truncated in its preamble");
        hlen = load_le32(b + 8);
        hstart = 12;
    } else {
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy format version %u.%u not supported (1.0, 2.0 or 3.0)", major,
                              minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy header of %zu bytes is too long (at most %d)", hlen,
                              NPY_MAX_HEADER);
    if (len - hstart < hlen)
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy file truncated: header says %zu bytes, %zu follow", hlen,
                              len - hstart);

    npy_reader r = {(const char *)b + hstart, (const char *)b + hstart + hlen};
    char key[32], descr[32] = "";
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    size_t dims[8], ndim = 0;
    if (!npy_eat(&r, '{'))
        return abis_error_set(err, ABIS_E_INVALID, ".npy header is not a dictionary");
    for (;;) {
        if (npy_eat(&r, '}'))
            break;
        if (!npy_string(&r, key, sizeof key) || !npy_eat(&r, ':'))
            return abis_error_set(err, ABIS_E_INVALID, ".npy header is malformed");
        if (strcmp(key, "descr") == 0) {
            if (!npy_string(&r, descr, sizeof descr))
                return abis_error_set(err, ABIS_E_INVALID,
                                      ".npy header: 'descr' is not a simple dtype string");
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (npy_word(&r, "True"))
                fortran = 1;
            else if (npy_word(&r, "False"))
                fortran = 0;
            else
                return abis_error_set(err, ABIS_E_INVALID,
                                      ".npy header: 'fortran_order' is not True or False");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!npy_shape(&r, dims, &ndim))
                return abis_error_set(err, ABIS_E_INVALID,
                                      ".npy header: 'shape' is not a tuple of integers");
            have_shape = 1;
        } else {
            return abis_error_set(err, ABIS_E_INVALID, ".npy header has unexpected key '%s'", key);
        }
        if (npy_eat(&r, ','))
            continue;
        if (npy_eat(&r, '}'))
            break;
        return abis_error_set(err, ABIS_E_INVALID, ".npy header is malformed");
    }
    if (!have_descr || !have_order || !have_shape)
        return abis_error_set(err, ABIS_E_INVALID, ".npy header lacks '%s'",
                              !have_descr   ? "descr"
                              : !have_order ? "fortran_order"
                                            : "shape");

    int itemsize;
    if (strcmp(descr, "<f4") == 0)
        itemsize = 4;
    else if (strcmp(descr, "<f8") == 0)
        itemsize = 8;
    else
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy dtype '%s' not supported (use float32 or float64)", descr);
    if (fortran)
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy fortran_order True not supported (save the array in C order)");
    char shape[128];
    format_shape(dims, ndim, shape, sizeof shape);
    size_t count;
    if (ndim == 1)
        count = dims[0];
    else if (ndim == 2 && dims[0] == 1)
        count = dims[1];
    else
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy shape %s not supported (a vector: (n,) or (1, n))", shape);
    if (count == 0)
        return abis_error_set(err, ABIS_E_INVALID, ".npy array is empty");
    if (count > VECTOR_MAX_VALUES)
        return abis_error_set(err, ABIS_E_INVALID, ".npy shape %s is too large (at most %d values)",
                              shape, VECTOR_MAX_VALUES);
    size_t want = count * (size_t)itemsize, have = len - hstart - hlen;
    if (have < want)
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy file truncated: shape %s needs %zu data bytes, %zu present",
                              shape, want, have);
    if (have > want)
        return abis_error_set(err, ABIS_E_INVALID,
                              ".npy file has %zu bytes after the %zu data bytes of shape %s",
                              have - want, want, shape);
    abis_status st = decode_le(b + hstart + hlen, count, itemsize, out, err);
    if (st == ABIS_OK)
        *n = count;
    return st;
}

/* ---- JSON ------------------------------------------------------------------ */

abis_status abis_vector_parse_json(const char *text, size_t len, float **out, size_t *n,
                                   abis_error *err)
{
    if (len > VECTOR_MAX_TEXT)
        return abis_error_set(err, ABIS_E_INVALID, "JSON: %zu bytes is too long (at most %u)", len,
                              VECTOR_MAX_TEXT);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return abis_error_set(err, ABIS_E_INVALID, "JSON: %s (line %d, column %d)", jerr.text,
                              jerr.line, jerr.column);
    abis_status st = ABIS_OK;
    if (!json_is_array(root)) {
        st = abis_error_set(err, ABIS_E_INVALID, "JSON: expected an array of numbers");
        goto done;
    }
    size_t count = json_array_size(root);
    if (count == 0) {
        st = abis_error_set(err, ABIS_E_INVALID, "JSON: the array is empty");
        goto done;
    }
    if (count > VECTOR_MAX_VALUES) {
        st = too_many(count, err);
        abis_error_prefix(err, "JSON");
        goto done;
    }
    float *v = malloc(count * sizeof *v);
    if (!v) {
        st = abis_error_set(err, ABIS_E_NOMEM, "out of memory reading %zu values", count);
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(root, i);
        if (!json_is_number(e)) {
            st = abis_error_set(err, ABIS_E_INVALID, "JSON: element %zu is not a number", i);
        } else {
            st = store_value(json_number_value(e), i, v, err);
            if (st != ABIS_OK)
                abis_error_prefix(err, "JSON");
        }
        if (st != ABIS_OK) {
            free(v);
            goto done;
        }
    }
    *out = v;
    *n = count;
done:
    json_decref(root);
    return st;
}

/* ---- raw float32 ----------------------------------------------------------- */

abis_status abis_vector_parse_raw(const void *buf, size_t len, float **out, size_t *n,
                                  abis_error *err)
{
    if (len == 0)
        return abis_error_set(err, ABIS_E_INVALID, "raw vector is empty");
    if (len % 4 != 0)
        return abis_error_set(err, ABIS_E_INVALID,
                              "%zu bytes is not a whole number of float32 values", len);
    if (len / 4 > VECTOR_MAX_VALUES)
        return too_many(len / 4, err);
    abis_status st = decode_le(buf, len / 4, 4, out, err);
    if (st == ABIS_OK)
        *n = len / 4;
    return st;
}

/* ---- files ------------------------------------------------------------------ */

abis_status abis_vector_read_file(const char *path, float **out, size_t *n, abis_error *err)
{
    unsigned char *buf;
    size_t len;
    abis_status rs = abis_file_read(path, VECTOR_MAX_TEXT, &buf, &len, err);
    if (rs != ABIS_OK)
        return rs;

    abis_status st;
    size_t ws = 0;
    while (ws < len && (buf[ws] == ' ' || buf[ws] == '\t' || buf[ws] == '\n' || buf[ws] == '\r'))
        ws++;
    if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
        st = abis_vector_parse_npy(buf, len, out, n, err);
    else if (ws < len && buf[ws] == '[')
        st = abis_vector_parse_json((const char *)buf, len, out, n, err);
    else if (len == 0)
        st = abis_error_set(err, ABIS_E_INVALID, "the file is empty");
    else
        st = abis_vector_parse_raw(buf, len, out, n, err);
    abis_wipe_free(buf, len);
    if (st != ABIS_OK)
        abis_error_prefix(err, "%s", path);
    return st;
}
