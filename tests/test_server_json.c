/* test_server_json.c: the fast JSON path of abisd's request bodies
 * (src/server/jsonfast.c) against jansson: the bodies relying parties send
 * take the fast path and give the value jansson gives; everything it is
 * not sure of is declined (NULL) and left to jansson; and on random and
 * mutated bodies whatever it accepts jansson accepts as an equal value. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "server/server.h"

/* fast and jansson agree on body: both refuse, or fast declines, or both
 * give equal values.  Returns whether fast took it. */
static int agree(const char *body, size_t len)
{
    json_t *fast = abisd_json_fast(body, len);
    json_error_t je;
    json_t *slow = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (fast && (!slow || !json_equal(fast, slow)))
        fail_msg("fast path and jansson differ on %.*s", (int)(len > 200 ? 200 : len), body);
    json_decref(slow);
    json_decref(fast);
    return fast != NULL;
}

static int agree_s(const char *body)
{
    return agree(body, strlen(body));
}

static void test_usual_bodies_take_the_fast_path(void **state)
{
    (void)state;
    static const char *bodies[] = {
        "{\"purpose\":\"bench\",\"templates\":[{\"modality\":\"face\",\"vector_b64\":"
        "\"AACAPwAAAEAAAEBA\"}]}",
        "{\"segment\": \"federal\", \"purpose\": \"gate\", \"k\": 10, \"templates\": "
        "[{\"modality\": \"face\", \"vector\": [0.5, -1.25e-3, 3, -0, 1E+2, 0.0]}]}",
        " \r\n{\"consents\": [\"bank.remote-id\", \"border.entry\"], \"replace\": true, "
        "\"x\": null, \"y\": false, \"z\": {}, \"w\": []}\n",
        "[1, 2.5, \"a\", [[[]]]]",
        "{\"big\": 999999999999999999, \"neg\": -123456789012345678}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++)
        if (!agree_s(bodies[i]))
            fail_msg("declined a usual body: %s", bodies[i]);
    /* integers stay integers, reals reals */
    json_t *v = abisd_json_fast("{\"k\": 10, \"r\": 10.0}", 20);
    assert_non_null(v);
    assert_true(json_is_integer(json_object_get(v, "k")));
    assert_true(json_is_real(json_object_get(v, "r")));
    json_decref(v);
}

static void test_what_it_is_not_sure_of_goes_to_jansson(void **state)
{
    (void)state;
    static const char *declined[] = {
        "{\"a\": \"esc\\\"aped\"}",     /* escapes */
        "{\"a\": \"\\u00e9\"}",         /* unicode escape */
        "{\"a\": \"caf\xc3\xa9\"}",     /* UTF-8 */
        "{\"a\": 1, \"a\": 2}",         /* duplicate key: jansson refuses */
        "\"just a string\"",            /* not an object or array */
        "42",                           /* the same */
        "{\"a\": 1} x",                 /* trailing bytes */
        "{\"a\": 1,}",                  /* trailing comma */
        "{\"a\": 01}",                  /* leading zero */
        "{\"a\": 1.}",                  /* no fraction digits */
        "{\"a\": 1e400}",               /* overflow */
        "{\"a\": 1234567890123456789}", /* 19 digits */
        "{\"a\": tru}",                 /* broken literal */
        "{\"a\": \"unterminated}",      /* no closing quote */
        "{\"a\" 1}",                    /* no colon */
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", /* deep */
        "",
        "   ",
    };
    for (size_t i = 0; i < sizeof declined / sizeof *declined; i++) {
        json_t *v = abisd_json_fast(declined[i], strlen(declined[i]));
        if (v)
            fail_msg("fast path took %s", declined[i]);
        agree_s(declined[i]);
    }
    /* and abisd_parse_json still answers with jansson's message */
    json_t *root = NULL;
    abisd_error e;
    assert_int_equal(abisd_parse_json("{\"a\": 1,}", 9, &root, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "invalid_json");
    assert_non_null(strstr(e.message, "line 1"));
}

static uint64_t rng = 0x243F6A8885A308D3ull;

static unsigned rnd(unsigned m)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng % m);
}

/* A random JSON-like text: mostly valid, sometimes not. */
static void gen(char *buf, size_t *n, size_t cap, int depth)
{
    static const char *atoms[] = {"0",     "-0",   "12",      "-7",      "3.25",
                                  "-1e-3", "2E+5", "1e999",   "00",      "1.",
                                  ".5",    "true", "false",   "null",    "nul",
                                  "\"a\"", "\"\"", "\"\\n\"", "\"x y\"", "9999999999999999999"};
    if (*n + 64 >= cap)
        return;
    unsigned k = depth > 4 ? 2 : rnd(4);
    if (k == 0 || k == 1) {
        int obj = k == 0;
        buf[(*n)++] = obj ? '{' : '[';
        unsigned m = rnd(4);
        for (unsigned i = 0; i < m && *n + 64 < cap; i++) {
            if (i)
                buf[(*n)++] = ',';
            if (rnd(8) == 0)
                buf[(*n)++] = ' ';
            if (obj)
                *n += (size_t)snprintf(buf + *n, cap - *n, "\"k%u\":", rnd(3));
            gen(buf, n, cap, depth + 1);
        }
        if (rnd(30) == 0)
            buf[(*n)++] = ',';
        buf[(*n)++] = obj ? '}' : ']';
    } else {
        *n += (size_t)snprintf(buf + *n, cap - *n, "%s", atoms[rnd(sizeof atoms / sizeof *atoms)]);
    }
}

static void test_random_bodies_agree(void **state)
{
    (void)state;
    char buf[4096];
    size_t took = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = 0;
        buf[n++] = '{';
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\"r\":");
        gen(buf, &n, sizeof buf - 2, 0);
        buf[n++] = '}';
        if (rnd(10) == 0) /* a byte changed */
            buf[rnd((unsigned)n)] = (char)(rnd(95) + 32);
        took += (size_t)agree(buf, n);
    }
    print_message("fast path took %zu of 20000 random bodies\n", took);
    assert_true(took > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usual_bodies_take_the_fast_path),
        cmocka_unit_test(test_what_it_is_not_sure_of_goes_to_jansson),
        cmocka_unit_test(test_random_bodies_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
