/*
 * Unit tests for util: length-bounded number parsing (request bytes are not
 * NUL-terminated, so the length must be honoured exactly), the
 * case-insensitive compare and the PRNG.
 */
#include "util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static int
parse(const char *s, uint64_t max, uint64_t *out)
{
    return util_parse_u64(s, strlen(s), max, out);
}

START_TEST(test_parse_u64_valid)
{
    uint64_t v = 7;

    ck_assert_int_eq(parse("0", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(parse("123", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 123);
    ck_assert_int_eq(parse("000000000000000000000000042", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(parse("18446744073709551615", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(parse("4294967295", UINT32_MAX, &v), 0);
    ck_assert_uint_eq(v, UINT32_MAX);
    ck_assert_int_eq(parse("0", 0, &v), 0);
    ck_assert_uint_eq(v, 0);
}
END_TEST

START_TEST(test_parse_u64_overflow)
{
    uint64_t v = 7;

    ck_assert_int_eq(parse("18446744073709551616", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("18446744073709551620", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("99999999999999999999", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("184467440737095516150", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("4294967296", UINT32_MAX, &v), -1);
    ck_assert_int_eq(parse("256", 255, &v), -1);
    /* *out is untouched on every error */
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(parse("255", 255, &v), 0);
    ck_assert_uint_eq(v, 255);
}
END_TEST

/*
 * A single digit above a max below 9: the overflow guard (max - d) / 10 must
 * not wrap when d > max.
 */
START_TEST(test_parse_u64_small_max)
{
    uint64_t v = 7;

    ck_assert_int_eq(parse("1", 0, &v), -1);
    ck_assert_int_eq(parse("5", 3, &v), -1);
    ck_assert_int_eq(parse("9", 8, &v), -1);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(parse("3", 3, &v), 0);
    ck_assert_uint_eq(v, 3);
}
END_TEST

START_TEST(test_parse_u64_syntax)
{
    uint64_t v = 7;

    ck_assert_int_eq(util_parse_u64("", 0, UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("-1", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("+1", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse(" 1", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("1 ", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("1a", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("0x10", UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("1\t", UINT64_MAX, &v), -1);
    ck_assert_int_eq(util_parse_u64("1\0", 2, UINT64_MAX, &v), -1);
    ck_assert_int_eq(parse("/", UINT64_MAX, &v), -1); /* '0' - 1 */
    ck_assert_int_eq(parse(":", UINT64_MAX, &v), -1); /* '9' + 1 */
    ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(test_parse_u64_length)
{
    uint64_t v = 7;

    /* only len bytes are read: what follows does not matter */
    ck_assert_int_eq(util_parse_u64("123abc", 3, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 123);
    ck_assert_int_eq(util_parse_u64("98 76", 2, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 98);
    ck_assert_int_eq(util_parse_u64("5", 0, UINT64_MAX, &v), -1);
    ck_assert_int_eq(util_parse_u64_str("77", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 77);
    ck_assert_int_eq(util_parse_u64_str("", UINT64_MAX, &v), -1);
    ck_assert_int_eq(util_parse_u64_str("12x", UINT64_MAX, &v), -1);
    ck_assert_uint_eq(v, 77);
}
END_TEST

START_TEST(test_strieq)
{
    ck_assert(util_strieq("GET", 3, "get"));
    ck_assert(util_strieq("get", 3, "GET"));
    ck_assert(util_strieq("MgEt", 4, "mget"));
    ck_assert(util_strieq("", 0, ""));
    ck_assert(util_strieq("getx", 3, "get")); /* bounded by len */
    ck_assert(!util_strieq("get", 3, "gets"));
    ck_assert(!util_strieq("gets", 4, "get"));
    ck_assert(!util_strieq("", 0, "a"));
    ck_assert(!util_strieq("a", 1, ""));
    ck_assert(!util_strieq("get", 3, "set"));
    /* only ASCII letters fold: '@' and '`' sit next to 'A' and 'a' */
    ck_assert(!util_strieq("@", 1, "`"));
    ck_assert(!util_strieq("[", 1, "{"));
    ck_assert(util_strieq("a_1", 3, "A_1"));
}
END_TEST

START_TEST(test_rand64)
{
    uint64_t s1 = 1, s2 = 1, s3 = 0x9e3779b97f4a7c15ULL;
    uint64_t prev = 0;

    for (int i = 0; i < 10000; i++) {
        uint64_t a = util_rand64(&s1);
        uint64_t b = util_rand64(&s2);

        ck_assert_uint_ne(a, 0);
        ck_assert_uint_ne(s1, 0);
        ck_assert_uint_eq(a, b); /* deterministic per seed */
        ck_assert_uint_ne(a, prev);
        prev = a;
    }
    ck_assert_uint_ne(util_rand64(&s3), util_rand64(&s1));
}
END_TEST

START_TEST(test_ms_tv)
{
    struct timeval tv = util_ms_tv(0);

    ck_assert(tv.tv_sec == 0 && tv.tv_usec == 0);
    tv = util_ms_tv(999);
    ck_assert(tv.tv_sec == 0 && tv.tv_usec == 999000);
    tv = util_ms_tv(86400123);
    ck_assert(tv.tv_sec == 86400 && tv.tv_usec == 123000);
    ck_assert_uint_eq(CACHE_ROUND(1), CACHE_LINE);
    ck_assert_uint_eq(CACHE_ROUND(CACHE_LINE), CACHE_LINE);
    ck_assert_uint_eq(CACHE_ROUND(CACHE_LINE + 1), 2 * CACHE_LINE);
}
END_TEST

START_TEST(test_clocks)
{
    uint64_t m1 = util_mono_usec();
    uint64_t m2 = util_mono_usec();
    uint64_t ms = util_mono_msec();

    ck_assert_uint_ge(m2, m1);
    ck_assert_uint_ge(ms, m1 / 1000);
    /* 2020-01-01 in microseconds: the wall clock is not the monotonic one */
    ck_assert_uint_gt(util_wall_usec(), 1577836800ULL * 1000000ULL);
}
END_TEST

static Suite *
util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_parse_u64_valid);
    tcase_add_test(tc, test_parse_u64_overflow);
    tcase_add_test(tc, test_parse_u64_small_max);
    tcase_add_test(tc, test_parse_u64_syntax);
    tcase_add_test(tc, test_parse_u64_length);
    tcase_add_test(tc, test_strieq);
    tcase_add_test(tc, test_rand64);
    tcase_add_test(tc, test_clocks);
    tcase_add_test(tc, test_ms_tv);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(util_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
