/* test_input_json.c: base64 decoding of vector_b64 and image_b64
 * (src/template/input_json.c) against libsodium's sodium_base642bin, the
 * reference it replaced for speed: every length up to 64 (with and without
 * padding), random text from the alphabet, and text broken by a character
 * outside it, a length of 4k + 1, or stray bits in the last character --
 * except bytes >= 0x80, which libsodium sometimes accepts and we refuse. */
#include "testutil.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "template/input_json.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The decoder as it was: '=' stripped (at most two), then libsodium's
 * ORIGINAL_NO_PADDING variant, every character consumed.  Returns the
 * length, or -1 for refused text. */
static long reference(const char *text, size_t len, unsigned char *out, size_t cap)
{
    size_t pad = 0;
    while (len > 0 && pad < 2 && text[len - 1] == '=')
        len--, pad++;
    if (len == 0)
        return -1;
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, cap, text, len, NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
        (end && end != text + len))
        return -1;
    return (long)n;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static unsigned next(unsigned m)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng % m);
}

static void check(const char *text, size_t len)
{
    unsigned char want[128];
    long w = reference(text, len, want, sizeof want);
    unsigned char *got = NULL;
    size_t n = 0;
    abis_error err = {0};
    abis_status st = abis_base64_decode(text, len, &got, &n, &err);
    if (w < 0) {
        if (st == ABIS_OK)
            fail_msg("'%.*s' decoded (%zu bytes); libsodium refuses it", (int)len, text, n);
        assert_int_equal(st, ABIS_E_INVALID);
        assert_true(strlen(err.message) > 0);
        assert_null(got);
    } else {
        if (st != ABIS_OK)
            fail_msg("len %zu refused (%s); libsodium decodes it", len, err.message);
        assert_int_equal(n, (size_t)w);
        assert_memory_equal(got, want, n);
        free(got);
    }
}

static void test_decoding_agrees_with_libsodium(void **state)
{
    (void)state;
    char text[80];
    for (size_t len = 0; len <= 64; len++)
        for (int round = 0; round < 200; round++) {
            for (size_t i = 0; i < len; i++)
                text[i] = alphabet[next(64)];
            check(text, len); /* stray low bits in about 15 of 16 rounds of 4k + 2 */
            memcpy(text + len, "==", 2);
            check(text, len + 1);
            check(text, len + 2);
            if (len) { /* one character broken */
                size_t at = next((unsigned)len);
                char keep = text[at];
                static const char odd[] = "=-_ \n.";
                text[at] = odd[next(sizeof odd - 1)];
                check(text, len);
                /* bytes >= 0x80: libsodium 1.0.18 reads some of them as
                 * base64 digits (it decoded "Q\x80JD" to three bytes); they
                 * are refused here */
                text[at] = (char)(0x80 + next(128));
                unsigned char *out = NULL;
                size_t n = 0;
                abis_error err = {0};
                assert_int_equal(abis_base64_decode(text, len, &out, &n, &err), ABIS_E_INVALID);
                assert_null(out);
                text[at] = keep;
            }
        }
}

static void test_errors_name_the_character(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t n = 0;
    abis_error err = {0};
    assert_int_equal(abis_base64_decode("QUJD!EVG", 8, &out, &n, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "character 5 ('!')"));
    assert_int_equal(abis_base64_decode("QUJDR", 5, &out, &n, &err), ABIS_E_INVALID);
    assert_non_null(strstr(err.message, "whole number of bytes"));
    assert_int_equal(abis_base64_decode("QUJD", 4, &out, &n, &err), ABIS_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "ABC", 3);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoding_agrees_with_libsodium),
        cmocka_unit_test(test_errors_name_the_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
