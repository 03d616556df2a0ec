/* test_vector.c: vector template validation and the npy / JSON / raw parsers
 * (src/template/vector.h). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/vector.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Build a .npy file in memory: version `major`, the header dict `dict`
 * (padded as NumPy pads it), then `data`.  Returns a malloc'd buffer. */
static unsigned char *make_npy(int major, const char *dict, const void *data, size_t dlen,
                               size_t *len)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t hlen = strlen(dict) + 1; /* + '\n' */
    size_t total = pre + hlen;
    size_t pad = (64 - total % 64) % 64;
    hlen += pad;
    unsigned char *b = malloc(pre + hlen + dlen + 1);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    if (major == 1) {
        b[8] = (unsigned char)(hlen & 0xff);
        b[9] = (unsigned char)(hlen >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            b[8 + i] = (unsigned char)(hlen >> (8 * i));
    }
    memcpy(b + pre, dict, strlen(dict));
    memset(b + pre + strlen(dict), ' ', pad);
    b[pre + hlen - 1] = '\n';
    if (dlen)
        memcpy(b + pre + hlen, data, dlen);
    *len = pre + hlen + dlen;
    return b;
}

/* Little-endian bytes of float32 / float64 values (the test machines are
 * little-endian; the parsers do not assume it). */
static void put_f32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static void put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static void expect_invalid(abis_status st, const abis_error *err, const char *want)
{
    if (st != ABIS_E_INVALID)
        fail_msg("status %s (%s), wanted invalid", abis_status_name(st), err->message);
    if (strcmp(err->message, want) != 0)
        fail_msg("message \"%s\", wanted \"%s\"", err->message, want);
}

static char *write_tmp(const char *dir, const char *name, const void *data, size_t len)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* ---- validation ----------------------------------------------------------- */

static void test_validate_normalises(void **state)
{
    (void)state;
    float v[4] = {3, 0, 4, 0}, out[4];
    abis_error err = {0};
    assert_status(abis_vector_validate(v, 4, 4, "face", "probe", out, &err), ABIS_OK, &err);
    assert_float_equal(out[0], 0.6f, 1e-7);
    assert_float_equal(out[2], 0.8f, 1e-7);
    assert_float_equal(out[1], 0.0f, 0);
    /* in place */
    assert_status(abis_vector_validate(v, 4, 4, "face", "probe", v, &err), ABIS_OK, &err);
    assert_float_equal(v[0], 0.6f, 1e-7);
}

static void test_validate_normalised_has_unit_norm(void **state)
{
    (void)state;
    float v[512], out[512];
    abis_synth_rng r = {7};
    for (int i = 0; i < 512; i++)
        v[i] = (float)(1000.0 * abis_synth_normal(&r));
    abis_error err = {0};
    assert_status(abis_vector_validate(v, 512, 512, "face", "probe", out, &err), ABIS_OK, &err);
    double ss = 0;
    for (int i = 0; i < 512; i++)
        ss += (double)out[i] * out[i];
    assert_float_equal(ss, 1.0, 1e-5);
    /* tiny (subnormal) values still normalise */
    float t[2] = {1e-40f, 1e-40f}, to[2];
    assert_status(abis_vector_validate(t, 2, 2, "face", "probe", to, &err), ABIS_OK, &err);
    assert_float_equal(to[0], 0.70710678f, 1e-6);
}

static void test_validate_refuses_wrong_length(void **state)
{
    (void)state;
    float v[511] = {1}, out[511];
    abis_error err = {0};
    expect_invalid(abis_vector_validate(v, 511, 512, "face", "probe", out, &err), &err,
                   "probe has 511 values, modality 'face' expects 512");
}

static void test_validate_refuses_empty(void **state)
{
    (void)state;
    float v[1] = {1}, out[1];
    abis_error err = {0};
    expect_invalid(abis_vector_validate(v, 0, 512, "face", "probe", out, &err), &err,
                   "probe has no values, modality 'face' expects 512");
    expect_invalid(abis_vector_validate(v, 0, 0, "face", "probe", out, &err), &err,
                   "probe has no values, modality 'face' expects 0");
}

static void test_validate_refuses_nan_and_inf(void **state)
{
    (void)state;
    float v[32], out[32];
    for (int i = 0; i < 32; i++)
        v[i] = 1;
    v[17] = NAN;
    abis_error err = {0};
    expect_invalid(abis_vector_validate(v, 32, 32, "face", "template 2", out, &err), &err,
                   "template 2 value 17 is NaN");
    v[17] = 1;
    v[3] = -INFINITY;
    expect_invalid(abis_vector_validate(v, 32, 32, "face", "probe", out, &err), &err,
                   "probe value 3 is Inf");
}

static void test_validate_refuses_zero_norm(void **state)
{
    (void)state;
    float v[8] = {0}, out[8];
    abis_error err = {0};
    expect_invalid(abis_vector_validate(v, 8, 8, "voice", "probe", out, &err), &err,
                   "probe has zero norm");
}

static void test_validate_accepts_null_err(void **state)
{
    (void)state;
    float v[2] = {0}, out[2];
    assert_int_equal(abis_vector_validate(v, 2, 3, "face", "probe", out, NULL), ABIS_E_INVALID);
}

/* ---- npy ---------------------------------------------------------------------- */

static void test_npy_float32_1d(void **state)
{
    (void)state;
    unsigned char data[3 * 4];
    put_f32(data, 1.5f);
    put_f32(data + 4, -2.0f);
    put_f32(data + 8, 0.25f);
    size_t len;
    unsigned char *b =
        make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data, 12, &len);
    assert_int_equal(len % 64, 12 % 64); /* header padded to 64 as NumPy does */
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_vector_parse_npy(b, len, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 3);
    assert_float_equal(v[0], 1.5f, 0);
    assert_float_equal(v[1], -2.0f, 0);
    assert_float_equal(v[2], 0.25f, 0);
    free(v);
    free(b);
}

static void test_npy_float64_converts(void **state)
{
    (void)state;
    unsigned char data[2 * 8];
    put_f64(data, 0.1);
    put_f64(data + 8, -3e30);
    size_t len;
    unsigned char *b =
        make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data, 16, &len);
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_vector_parse_npy(b, len, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 2);
    assert_float_equal(v[0], 0.1f, 0);
    assert_float_equal(v[1], -3e30f, 0);
    free(v);
    free(b);
}

static void test_npy_2d_row_vector(void **state)
{
    (void)state;
    unsigned char data[4 * 4];
    for (int i = 0; i < 4; i++)
        put_f32(data + 4 * i, (float)i + 1);
    size_t len;
    unsigned char *b =
        make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", data, 16, &len);
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_vector_parse_npy(b, len, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 4);
    assert_float_equal(v[3], 4.0f, 0);
    free(v);
    free(b);
}

static void test_npy_version_2_and_3_headers(void **state)
{
    (void)state;
    unsigned char data[4];
    put_f32(data, 7.0f);
    for (int major = 2; major <= 3; major++) {
        size_t len;
        unsigned char *b =
            make_npy(major, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1,)}", data,
                     4, &len);
        float *v = NULL;
        size_t n = 0;
        abis_error err = {0};
        assert_status(abis_vector_parse_npy(b, len, &v, &n, &err), ABIS_OK, &err);
        assert_int_equal(n, 1);
        assert_float_equal(v[0], 7.0f, 0);
        free(v);
        free(b);
    }
}

static void test_npy_keys_in_any_order(void **state)
{
    (void)state;
    unsigned char data[8];
    put_f32(data, 1);
    put_f32(data + 4, 2);
    size_t len;
    unsigned char *b =
        make_npy(1, "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}", data, 8, &len);
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_vector_parse_npy(b, len, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 2);
    free(v);
    free(b);
}

static void npy_expect(const char *dict, size_t dlen, const char *want)
{
    unsigned char data[64] = {0};
    size_t len;
    unsigned char *b = make_npy(1, dict, data, dlen, &len);
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    expect_invalid(abis_vector_parse_npy(b, len, &v, &n, &err), &err, want);
    assert_null(v);
    free(b);
}

static void test_npy_refuses_integer_dtype(void **state)
{
    (void)state;
    npy_expect("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8,
               ".npy dtype '<i4' not supported (use float32 or float64)");
    npy_expect("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
               ".npy dtype '>f4' not supported (use float32 or float64)");
    npy_expect("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4,
               ".npy dtype '<f2' not supported (use float32 or float64)");
}

static void test_npy_refuses_fortran_order(void **state)
{
    (void)state;
    npy_expect("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", 8,
               ".npy fortran_order True not supported (save the array in C order)");
}

static void test_npy_refuses_matrix_and_scalar_shapes(void **state)
{
    (void)state;
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 16,
               ".npy shape (2, 2) not supported (a vector: (n,) or (1, n))");
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4,
               ".npy shape () not supported (a vector: (n,) or (1, n))");
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }", 8,
               ".npy shape (1, 1, 2) not supported (a vector: (n,) or (1, n))");
}

static void test_npy_refuses_empty_and_huge(void **state)
{
    (void)state;
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 0,
               ".npy array is empty");
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 0,
               ".npy shape (65537,) is too large (at most 65536 values)");
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 70000), }", 0,
               ".npy shape (1, 65537) is too large (at most 65536 values)");
}

static void test_npy_refuses_truncated_data(void **state)
{
    (void)state;
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 10,
               ".npy file truncated: shape (4,) needs 16 data bytes, 10 present");
    npy_expect("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 12,
               ".npy file has 4 bytes after the 8 data bytes of shape (1,)");
}

static void test_npy_refuses_truncated_header(void **state)
{
    (void)state;
    unsigned char data[4] = {0};
    size_t len;
    unsigned char *b =
        make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data, 4, &len);
    float *v = NULL;
    size_t n;
    abis_error err = {0};
    expect_invalid(abis_vector_parse_npy(b, 40, &v, &n, &err), &err,
                   ".npy file truncated: header says 118 bytes, 30 follow");
    expect_invalid(abis_vector_parse_npy(b, 5, &v, &n, &err), &err,
                   "not a .npy file (no \\x93NUMPY magic)");
    /* every prefix of a valid file is refused without reading past it */
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, b, cut);
        assert_int_equal(abis_vector_parse_npy(p, cut, &v, &n, &err), ABIS_E_INVALID);
        free(p);
    }
    free(b);
}

static void test_npy_refuses_absurd_header_length(void **state)
{
    (void)state;
    unsigned char b[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff};
    float *v = NULL;
    size_t n;
    abis_error err = {0};
    expect_invalid(abis_vector_parse_npy(b, sizeof b, &v, &n, &err), &err,
                   ".npy header of 4294967295 bytes is too long (at most 10000)");
    b[6] = 9;
    expect_invalid(abis_vector_parse_npy(b, sizeof b, &v, &n, &err), &err,
                   ".npy format version 9.0 not supported (1.0, 2.0 or 3.0)");
}

static void test_npy_refuses_malformed_headers(void **state)
{
    (void)state;
    npy_expect("{'descr': '<f4', 'fortran_order': False}", 4, ".npy header lacks 'shape'");
    npy_expect("'descr': '<f4'", 4, ".npy header is not a dictionary");
    npy_expect("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", 4,
               ".npy header: 'fortran_order' is not True or False");
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4,
               ".npy header has unexpected key 'x'");
    npy_expect("{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}", 4,
               ".npy header: 'shape' is not a tuple of integers");
    npy_expect("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 4,
               ".npy header: 'descr' is not a simple dtype string");
    npy_expect("{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", 4,
               ".npy header is malformed");
}

static void test_npy_refuses_non_finite_and_out_of_range(void **state)
{
    (void)state;
    unsigned char data[6 * 8];
    for (int i = 0; i < 6; i++)
        put_f64(data + 8 * i, 0.5);
    put_f64(data + 8 * 5, 1e300);
    size_t len;
    unsigned char *b =
        make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", data, 48, &len);
    float *v = NULL;
    size_t n;
    abis_error err = {0};
    expect_invalid(abis_vector_parse_npy(b, len, &v, &n, &err), &err,
                   "value 5 (1e+300) is out of float32 range");
    free(b);
    put_f64(data + 8 * 5, 0.5);
    put_f64(data + 8 * 3, INFINITY);
    b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", data, 48, &len);
    expect_invalid(abis_vector_parse_npy(b, len, &v, &n, &err), &err, "value 3 is Inf");
    free(b);
    unsigned char d32[8];
    put_f32(d32, 1);
    put_f32(d32 + 4, NAN);
    b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d32, 8, &len);
    expect_invalid(abis_vector_parse_npy(b, len, &v, &n, &err), &err, "value 1 is NaN");
    free(b);
}

/* ---- JSON ---------------------------------------------------------------------- */

static void test_json_array_of_numbers(void **state)
{
    (void)state;
    const char *text = " [1, -2.5, 3e-3, 0] ";
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_vector_parse_json(text, strlen(text), &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 4);
    assert_float_equal(v[0], 1.0f, 0);
    assert_float_equal(v[1], -2.5f, 0);
    assert_float_equal(v[2], 3e-3f, 0);
    free(v);
}

static void json_expect(const char *text, const char *want)
{
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    expect_invalid(abis_vector_parse_json(text, strlen(text), &v, &n, &err), &err, want);
    assert_null(v);
}

static void test_json_refuses_bad_input(void **state)
{
    (void)state;
    json_expect("[1, 2, 3, 4, \"5\"]", "JSON: element 4 is not a number");
    json_expect("[1, null]", "JSON: element 1 is not a number");
    json_expect("[[1]]", "JSON: element 0 is not a number");
    json_expect("{\"a\": 1}", "JSON: expected an array of numbers");
    json_expect("[]", "JSON: the array is empty");
    json_expect("[1, 2, 1e300]", "JSON: value 2 (1e+300) is out of float32 range");
    float *v = NULL;
    size_t n;
    abis_error err = {0};
    assert_int_equal(abis_vector_parse_json("[1, 2", 5, &v, &n, &err), ABIS_E_INVALID);
    assert_true(strncmp(err.message, "JSON: ", 6) == 0);
    assert_non_null(strstr(err.message, "line 1"));
}

static void test_json_refuses_too_many_values(void **state)
{
    (void)state;
    size_t count = 65537, cap = count * 2 + 3;
    char *text = malloc(cap);
    size_t off = 0;
    text[off++] = '[';
    for (size_t i = 0; i < count; i++) {
        text[off++] = '1';
        text[off++] = i + 1 < count ? ',' : ']';
    }
    float *v = NULL;
    size_t n;
    abis_error err = {0};
    expect_invalid(abis_vector_parse_json(text, off, &v, &n, &err), &err,
                   "JSON: 65537 values is too many (at most 65536)");
    free(text);
}

/* ---- raw ------------------------------------------------------------------------ */

static void test_raw_float32(void **state)
{
    (void)state;
    unsigned char data[8];
    put_f32(data, 0.5f);
    put_f32(data + 4, -1.0f);
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_vector_parse_raw(data, 8, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 2);
    assert_float_equal(v[0], 0.5f, 0);
    assert_float_equal(v[1], -1.0f, 0);
    free(v);
}

static void test_raw_refuses_bad_input(void **state)
{
    (void)state;
    static unsigned char data[65537 * 4];
    float *v = NULL;
    size_t n;
    abis_error err = {0};
    expect_invalid(abis_vector_parse_raw(data, 1023, &v, &n, &err), &err,
                   "1023 bytes is not a whole number of float32 values");
    expect_invalid(abis_vector_parse_raw(data, 0, &v, &n, &err), &err, "raw vector is empty");
    expect_invalid(abis_vector_parse_raw(data, sizeof data, &v, &n, &err), &err,
                   "65537 values is too many (at most 65536)");
    put_f32(data + 8, INFINITY);
    expect_invalid(abis_vector_parse_raw(data, 16, &v, &n, &err), &err, "value 2 is Inf");
    assert_null(v);
}

/* ---- files ------------------------------------------------------------------------ */

static void test_read_file_detects_each_format(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("vector");
    assert_non_null(dir);
    abis_error err = {0};
    float *v = NULL;
    size_t n = 0;

    unsigned char d32[8];
    put_f32(d32, 3);
    put_f32(d32 + 4, 4);
    size_t len;
    unsigned char *npy =
        make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d32, 8, &len);
    char *p = write_tmp(dir, "face.npy", npy, len);
    assert_status(abis_vector_read_file(p, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 2);
    assert_float_equal(v[1], 4.0f, 0);
    free(v);
    free(p);
    free(npy);

    const char *json = "\n  [3, 4, 5]\n";
    p = write_tmp(dir, "face.json", json, strlen(json));
    assert_status(abis_vector_read_file(p, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 3);
    assert_float_equal(v[2], 5.0f, 0);
    free(v);
    free(p);

    p = write_tmp(dir, "face.bin", d32, 8);
    assert_status(abis_vector_read_file(p, &v, &n, &err), ABIS_OK, &err);
    assert_int_equal(n, 2);
    assert_float_equal(v[0], 3.0f, 0);
    free(v);
    free(p);
    abis_test_rmdir(dir);
}

static void test_read_file_messages_name_the_file(void **state)
{
    (void)state;
    char *dir = abis_test_tmpdir("vector");
    assert_non_null(dir);
    abis_error err = {0};
    float *v = NULL;
    size_t n;
    char want[1024];

    unsigned char d[8] = {0};
    size_t len;
    unsigned char *npy =
        make_npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", d, 8, &len);
    char *p = write_tmp(dir, "face.npy", npy, len);
    snprintf(want, sizeof want, "%s: .npy dtype '<i4' not supported (use float32 or float64)", p);
    expect_invalid(abis_vector_read_file(p, &v, &n, &err), &err, want);
    free(p);
    free(npy);

    static unsigned char raw[1023];
    p = write_tmp(dir, "x.bin", raw, sizeof raw);
    snprintf(want, sizeof want, "%s: 1023 bytes is not a whole number of float32 values", p);
    expect_invalid(abis_vector_read_file(p, &v, &n, &err), &err, want);
    free(p);

    p = write_tmp(dir, "empty.bin", "", 0);
    snprintf(want, sizeof want, "%s: the file is empty", p);
    expect_invalid(abis_vector_read_file(p, &v, &n, &err), &err, want);
    free(p);

    size_t dl = strlen(dir) + 16;
    char *missing = malloc(dl);
    snprintf(missing, dl, "%s/missing.npy", dir);
    assert_int_equal(abis_vector_read_file(missing, &v, &n, &err), ABIS_E_IO);
    snprintf(want, sizeof want, "%s: cannot open: ", missing);
    assert_true(strncmp(err.message, want, strlen(want)) == 0);
    free(missing);

    assert_int_equal(abis_vector_read_file(dir, &v, &n, &err), ABIS_E_IO);
    assert_null(v);
    abis_test_rmdir(dir);
}

static void test_parse_then_validate_round_trip(void **state)
{
    (void)state;
    float id[512];
    abis_synth_identity(1, 2, id, 512);
    unsigned char data[512 * 4];
    for (int i = 0; i < 512; i++)
        put_f32(data + 4 * i, id[i] * 10.0f);
    float *v = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_status(abis_vector_parse_raw(data, sizeof data, &v, &n, &err), ABIS_OK, &err);
    assert_status(abis_vector_validate(v, n, 512, "face", "probe", v, &err), ABIS_OK, &err);
    for (int i = 0; i < 512; i++)
        assert_float_equal(v[i], id[i], 1e-6);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_normalises),
        cmocka_unit_test(test_validate_normalised_has_unit_norm),
        cmocka_unit_test(test_validate_refuses_wrong_length),
        cmocka_unit_test(test_validate_refuses_empty),
        cmocka_unit_test(test_validate_refuses_nan_and_inf),
        cmocka_unit_test(test_validate_refuses_zero_norm),
        cmocka_unit_test(test_validate_accepts_null_err),
        cmocka_unit_test(test_npy_float32_1d),
        cmocka_unit_test(test_npy_float64_converts),
        cmocka_unit_test(test_npy_2d_row_vector),
        cmocka_unit_test(test_npy_version_2_and_3_headers),
        cmocka_unit_test(test_npy_keys_in_any_order),
        cmocka_unit_test(test_npy_refuses_integer_dtype),
        cmocka_unit_test(test_npy_refuses_fortran_order),
        cmocka_unit_test(test_npy_refuses_matrix_and_scalar_shapes),
        cmocka_unit_test(test_npy_refuses_empty_and_huge),
        cmocka_unit_test(test_npy_refuses_truncated_data),
        cmocka_unit_test(test_npy_refuses_truncated_header),
        cmocka_unit_test(test_npy_refuses_absurd_header_length),
        cmocka_unit_test(test_npy_refuses_malformed_headers),
        cmocka_unit_test(test_npy_refuses_non_finite_and_out_of_range),
        cmocka_unit_test(test_json_array_of_numbers),
        cmocka_unit_test(test_json_refuses_bad_input),
        cmocka_unit_test(test_json_refuses_too_many_values),
        cmocka_unit_test(test_raw_float32),
        cmocka_unit_test(test_raw_refuses_bad_input),
        cmocka_unit_test(test_read_file_detects_each_format),
        cmocka_unit_test(test_read_file_messages_name_the_file),
        cmocka_unit_test(test_parse_then_validate_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
