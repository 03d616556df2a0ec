/* test_bitset.c: the growable slot bitset (src/util/bitset.h). */
#include "testutil.h"

#include <stdlib.h>

#include "util/bitset.h"

static void test_bitset_starts_empty(void **state)
{
    (void)state;
    abis_bitset b = {0};
    assert_int_equal(abis_bitset_count(&b), 0);
    assert_false(abis_bitset_test(&b, 0));
    assert_false(abis_bitset_test(&b, 1000000));
    abis_bitset_clear(&b, 5); /* clearing beyond the end is a no-op */
    abis_bitset_free(&b);
}

static void test_bitset_set_grows_and_tests(void **state)
{
    (void)state;
    abis_bitset b = {0};
    assert_int_equal(abis_bitset_set(&b, 0), 0);
    assert_int_equal(abis_bitset_set(&b, 63), 0);
    assert_int_equal(abis_bitset_set(&b, 64), 0);
    assert_int_equal(abis_bitset_set(&b, 100000), 0);
    assert_true(b.nbits > 100000);
    assert_int_equal(b.nbits % 64, 0);
    assert_true(abis_bitset_test(&b, 0));
    assert_true(abis_bitset_test(&b, 63));
    assert_true(abis_bitset_test(&b, 64));
    assert_true(abis_bitset_test(&b, 100000));
    assert_false(abis_bitset_test(&b, 1));
    assert_false(abis_bitset_test(&b, 65));
    assert_false(abis_bitset_test(&b, 99999));
    assert_int_equal(abis_bitset_count(&b), 4);
    abis_bitset_free(&b);
    assert_null(b.words);
    assert_int_equal(b.nbits, 0);
}

static void test_bitset_clear_unsets_one_bit(void **state)
{
    (void)state;
    abis_bitset b = {0};
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(abis_bitset_set(&b, i), 0);
    abis_bitset_clear(&b, 130);
    assert_false(abis_bitset_test(&b, 130));
    assert_true(abis_bitset_test(&b, 129));
    assert_true(abis_bitset_test(&b, 131));
    assert_int_equal(abis_bitset_count(&b), 199);
    abis_bitset_free(&b);
}

static void test_bitset_reserve_keeps_bits_and_zeroes_new_ones(void **state)
{
    (void)state;
    abis_bitset b = {0};
    assert_int_equal(abis_bitset_set(&b, 3), 0);
    assert_int_equal(abis_bitset_reserve(&b, 5000), 0);
    assert_true(b.nbits > 5000);
    assert_true(abis_bitset_test(&b, 3));
    assert_int_equal(abis_bitset_count(&b), 1);
    size_t before = b.nbits;
    assert_int_equal(abis_bitset_reserve(&b, 10), 0); /* already room: unchanged */
    assert_int_equal(b.nbits, before);
    abis_bitset_free(&b);
}

static void test_bitset_andnot_removes_bits_of_c(void **state)
{
    (void)state;
    abis_bitset a = {0}, c = {0}, d = {0};
    for (size_t i = 0; i < 300; i += 3)
        assert_int_equal(abis_bitset_set(&a, i), 0);
    for (size_t i = 0; i < 150; i += 2) /* c shorter than a */
        assert_int_equal(abis_bitset_set(&c, i), 0);
    assert_int_equal(abis_bitset_andnot(&d, &a, &c), 0);
    for (size_t i = 0; i < 400; i++) {
        int want = i < 300 && i % 3 == 0 && !(i < 150 && i % 2 == 0);
        assert_int_equal(abis_bitset_test(&d, i), want);
    }
    /* a itself is untouched */
    assert_int_equal(abis_bitset_count(&a), 100);
    abis_bitset_free(&a);
    abis_bitset_free(&c);
    abis_bitset_free(&d);
}

static void test_bitset_andnot_with_longer_c(void **state)
{
    (void)state;
    abis_bitset a = {0}, c = {0}, d = {0};
    assert_int_equal(abis_bitset_set(&a, 1), 0);
    assert_int_equal(abis_bitset_set(&a, 2), 0);
    assert_int_equal(abis_bitset_set(&c, 2), 0);
    assert_int_equal(abis_bitset_set(&c, 10000), 0);
    assert_int_equal(abis_bitset_andnot(&d, &a, &c), 0);
    assert_int_equal(d.nbits, a.nbits);
    assert_true(abis_bitset_test(&d, 1));
    assert_false(abis_bitset_test(&d, 2));
    assert_int_equal(abis_bitset_count(&d), 1);
    /* dst may be a itself */
    assert_int_equal(abis_bitset_andnot(&a, &a, &c), 0);
    assert_int_equal(abis_bitset_count(&a), 1);
    abis_bitset_free(&a);
    abis_bitset_free(&c);
    abis_bitset_free(&d);
}

static void test_bitset_andnot_inplace(void **state)
{
    (void)state;
    abis_bitset a = {0}, c = {0};
    for (size_t i = 0; i < 128; i++)
        assert_int_equal(abis_bitset_set(&a, i), 0);
    assert_int_equal(abis_bitset_set(&c, 5), 0);
    assert_int_equal(abis_bitset_set(&c, 127), 0);
    abis_bitset_andnot_inplace(&a, &c);
    assert_int_equal(abis_bitset_count(&a), 126);
    assert_false(abis_bitset_test(&a, 5));
    assert_false(abis_bitset_test(&a, 127));
    abis_bitset empty = {0};
    abis_bitset_andnot_inplace(&a, &empty);
    assert_int_equal(abis_bitset_count(&a), 126);
    abis_bitset_free(&a);
    abis_bitset_free(&c);
}

static void test_bitset_copy_is_independent(void **state)
{
    (void)state;
    abis_bitset a = {0}, d = {0};
    assert_int_equal(abis_bitset_set(&d, 9999), 0); /* d bigger than a: shrinks */
    assert_int_equal(abis_bitset_set(&a, 7), 0);
    assert_int_equal(abis_bitset_copy(&d, &a), 0);
    assert_int_equal(d.nbits, a.nbits);
    assert_true(abis_bitset_test(&d, 7));
    assert_false(abis_bitset_test(&d, 9999));
    abis_bitset_clear(&a, 7);
    assert_true(abis_bitset_test(&d, 7));
    abis_bitset empty = {0};
    assert_int_equal(abis_bitset_copy(&d, &empty), 0);
    assert_int_equal(abis_bitset_count(&d), 0);
    abis_bitset_free(&a);
    abis_bitset_free(&d);
}

static void test_bitset_count_matches_random_reference(void **state)
{
    (void)state;
    abis_synth_rng rng = {42};
    abis_bitset b = {0};
    unsigned char ref[5000] = {0};
    for (int i = 0; i < 20000; i++) {
        size_t bit = abis_synth_next(&rng) % 5000;
        if (abis_synth_next(&rng) & 1) {
            assert_int_equal(abis_bitset_set(&b, bit), 0);
            ref[bit] = 1;
        } else {
            abis_bitset_clear(&b, bit);
            ref[bit] = 0;
        }
    }
    size_t want = 0;
    for (size_t i = 0; i < 5000; i++) {
        want += ref[i];
        assert_int_equal(abis_bitset_test(&b, i), ref[i]);
    }
    assert_int_equal(abis_bitset_count(&b), want);
    abis_bitset_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitset_starts_empty),
        cmocka_unit_test(test_bitset_set_grows_and_tests),
        cmocka_unit_test(test_bitset_clear_unsets_one_bit),
        cmocka_unit_test(test_bitset_reserve_keeps_bits_and_zeroes_new_ones),
        cmocka_unit_test(test_bitset_andnot_removes_bits_of_c),
        cmocka_unit_test(test_bitset_andnot_with_longer_c),
        cmocka_unit_test(test_bitset_andnot_inplace),
        cmocka_unit_test(test_bitset_copy_is_independent),
        cmocka_unit_test(test_bitset_count_matches_random_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
