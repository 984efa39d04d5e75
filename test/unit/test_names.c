/*
 * Unit tests for names, the per-worker table of client names: set, replace,
 * clear and look up by conn id, through the table's growth, with ids as the
 * workers make them (a worker number in the top bits, then a count).
 */
#include "names.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_set_get_replace_drop)
{
    struct names t = { 0 };

    ck_assert_ptr_null(names_get(&t, 1)); /* an empty table has no slots */
    names_drop(&t, 1);
    ck_assert_int_eq(names_set(&t, 1, "alpha", 5), 0);
    ck_assert_str_eq(names_get(&t, 1), "alpha");
    ck_assert_ptr_null(names_get(&t, 2));
    ck_assert_int_eq(names_set(&t, 1, "b", 1), 0); /* replaced, not added */
    ck_assert_str_eq(names_get(&t, 1), "b");
    ck_assert_uint_eq(t.n, 1);
    /* the bytes are copied and terminated, whatever follows them */
    ck_assert_int_eq(names_set(&t, 2, "gammaXYZ", 5), 0);
    ck_assert_str_eq(names_get(&t, 2), "gamma");
    names_drop(&t, 1);
    ck_assert_ptr_null(names_get(&t, 1));
    ck_assert_str_eq(names_get(&t, 2), "gamma");
    ck_assert_uint_eq(t.n, 1);
    names_drop(&t, 1); /* twice is harmless */
    ck_assert_uint_eq(t.n, 1);
    names_free(&t);
    ck_assert_uint_eq(t.n, 0);
    ck_assert_ptr_null(names_get(&t, 2));
}
END_TEST

START_TEST(test_many_ids_through_growth)
{
    struct names t = { 0 };
    const uint64_t base = (uint64_t)3 << 48; /* worker 3's ids */
    char name[32];

    for (uint64_t i = 0; i < 5000; i++) {
        int len = snprintf(name, sizeof(name), "n%" PRIu64, i);
        ck_assert_int_eq(names_set(&t, base + i, name, (size_t)len), 0);
    }
    ck_assert_uint_eq(t.n, 5000);
    ck_assert_uint_ge(t.nslots, 5000);
    for (uint64_t i = 0; i < 5000; i += 2) {
        names_drop(&t, base + i);
    }
    ck_assert_uint_eq(t.n, 2500);
    for (uint64_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "n%" PRIu64, i);
        if (i % 2 == 0) {
            ck_assert_ptr_null(names_get(&t, base + i));
        } else {
            ck_assert_str_eq(names_get(&t, base + i), name);
        }
    }
    ck_assert_ptr_null(names_get(&t, ((uint64_t)4 << 48) + 1)); /* another worker's id */
    names_free(&t);
}
END_TEST

static Suite *
names_suite(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_set_get_replace_drop);
    tcase_add_test(tc, test_many_ids_through_growth);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(names_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
