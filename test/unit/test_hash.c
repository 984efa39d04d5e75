/*
 * test_hash: golden vectors for every twemproxy hash, plus the MD5 test
 * suite of RFC 1321 (ketama's ring depends on it) and the name table.
 *
 * The "apple" vectors were recorded from nutcracker 0.5.0. They are pure ASCII, so
 * they cannot see the signed-byte quirks; the placement tables in test_dist
 * cover those through their non-ASCII keys.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "md5.h"

struct hash_vector {
    enum hash_type type;
    uint32_t value;
};

static const struct hash_vector apple[] = {
    { HASH_ONE_AT_A_TIME, 2297466611u }, { HASH_MD5, 3195025439u },
    { HASH_CRC16, 3662830516u },         { HASH_CRC32, 10542u },
    { HASH_CRC32A, 2838417488u },        { HASH_FNV1_64, 473199127u },
    { HASH_FNV1A_64, 1488911807u },      { HASH_FNV1_32, 67176023u },
    { HASH_FNV1A_32, 280767167u },       { HASH_HSIEH, 3738850110u },
    { HASH_MURMUR, 4142305122u },        { HASH_JENKINS, 1442444624u },
};

START_TEST(test_apple_vectors)
{
    ck_assert_int_eq(sizeof(apple) / sizeof(apple[0]), HASH_COUNT);
    for (size_t i = 0; i < sizeof(apple) / sizeof(apple[0]); i++) {
        uint32_t got = hash_key(apple[i].type, "apple", 5);

        ck_assert_msg(got == apple[i].value, "%s(\"apple\") = %u, want %u",
                      hash_name(apple[i].type), got, apple[i].value);
    }
}
END_TEST

START_TEST(test_names_round_trip)
{
    for (int t = 0; t < HASH_COUNT; t++) {
        const char *name = hash_name((enum hash_type)t);

        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(hash_from_name(name), t);
    }
    ck_assert_str_eq(hash_name(HASH_FNV1A_64), "fnv1a_64");
    ck_assert_str_eq(hash_name(HASH_ONE_AT_A_TIME), "one_at_a_time");
    ck_assert_int_eq(hash_from_name("nope"), -1);
    ck_assert_int_eq(hash_from_name(""), -1);
    ck_assert_int_eq(hash_from_name("fnv1a_64 "), -1);
    ck_assert_int_eq(hash_from_name(NULL), -1);
    ck_assert_ptr_null(hash_name(HASH_COUNT));
}
END_TEST

START_TEST(test_crc32_keeps_15_bits)
{
    /* Why ketama_crc32 puts everything on one server: no hash reaches 2^15. */
    char key[16];

    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);

        ck_assert_uint_lt(hash_key(HASH_CRC32, key, (size_t)n), 32768);
    }
}
END_TEST

START_TEST(test_hashes_read_only_len)
{
    /* Bytes past len must not matter, and every length tail path is taken. */
    const char *a = "abcdefghijklmnopXXXX", *b = "abcdefghijklmnopYYYY";

    for (int t = 0; t < HASH_COUNT; t++) {
        for (size_t len = 0; len <= 16; len++) {
            ck_assert_uint_eq(hash_key((enum hash_type)t, a, len),
                              hash_key((enum hash_type)t, b, len));
        }
    }
}
END_TEST

static void
hex16(const uint8_t d[16], char out[33])
{
    for (int i = 0; i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

START_TEST(test_md5_rfc1321)
{
    static const struct {
        const char *msg;
        const char *hex;
    } v[] = {
        { "", "d41d8cd98f00b204e9800998ecf8427e" },
        { "a", "0cc175b9c0f1b6a831c399e269772661" },
        { "abc", "900150983cd24fb0d6963f7d28e17f72" },
        { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
        { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
        { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
          "d174ab98d277d9f5a5611c2c9f419d9f" },
        { "1234567890123456789012345678901234567890123456789012345678901234567890"
          "1234567890",
          "57edf4a22be3c955ac49da2e2107b67a" },
    };

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t d[16];
        char hex[33];

        md5_digest(v[i].msg, strlen(v[i].msg), d);
        hex16(d, hex);
        ck_assert_msg(strcmp(hex, v[i].hex) == 0, "md5(\"%s\") = %s, want %s", v[i].msg, hex,
                      v[i].hex);
    }
}
END_TEST

START_TEST(test_md5_padding_boundaries)
{
    /* 55, 56 and 64 bytes straddle the one-or-two padding block split. */
    static const struct {
        size_t len;
        const char *hex;
    } v[] = {
        { 55, "ef1772b6dff9a122358552954ad0df65" }, { 56, "3b0c8ac703f828b04c6c197006d17218" },
        { 63, "b06521f39153d618550606be297466d5" }, { 64, "014842d480b571495a4a0363793f7367" },
        { 65, "c743a45e0d2e6a95cb859adae0248435" },
    };
    uint8_t buf[128];

    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t d[16];
        char hex[33];

        md5_digest(buf, v[i].len, d);
        hex16(d, hex);
        ck_assert_msg(strcmp(hex, v[i].hex) == 0, "md5('a' x %zu) = %s, want %s", v[i].len, hex,
                      v[i].hex);
    }
}
END_TEST

static Suite *
hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_apple_vectors);
    tcase_add_test(tc, test_names_round_trip);
    tcase_add_test(tc, test_crc32_keeps_15_bits);
    tcase_add_test(tc, test_hashes_read_only_len);
    tcase_add_test(tc, test_md5_rfc1321);
    tcase_add_test(tc, test_md5_padding_boundaries);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(hash_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
