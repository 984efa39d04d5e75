/*
 * hash: every key hash twemproxy 0.5.0 offers, byte-compatible with it,
 * quirks included (fnv1a_64 is really a 32-bit hash; crc32 keeps 15 bits;
 * several hashes sign-extend bytes >= 0x80). Pure functions.
 */
#ifndef CMX_HASH_H
#define CMX_HASH_H

#include <stddef.h>
#include <stdint.h>

/* X-macro: enum name and config name in one list so they cannot drift. */
#define HASH_LIST(X)                       \
    X(HASH_ONE_AT_A_TIME, "one_at_a_time") \
    X(HASH_MD5, "md5")                     \
    X(HASH_CRC16, "crc16")                 \
    X(HASH_CRC32, "crc32")                 \
    X(HASH_CRC32A, "crc32a")               \
    X(HASH_FNV1_64, "fnv1_64")             \
    X(HASH_FNV1A_64, "fnv1a_64")           \
    X(HASH_FNV1_32, "fnv1_32")             \
    X(HASH_FNV1A_32, "fnv1a_32")           \
    X(HASH_HSIEH, "hsieh")                 \
    X(HASH_MURMUR, "murmur")               \
    X(HASH_JENKINS, "jenkins")

#define HASH_ENUM(e, s) e,
enum hash_type { HASH_LIST(HASH_ENUM) HASH_COUNT };
#undef HASH_ENUM

/* Hash key[0..len) with the given function. */
uint32_t hash_key(enum hash_type type, const void *key, size_t len);

/* Config name -> type; returns -1 for an unknown name. */
int hash_from_name(const char *name);
const char *hash_name(enum hash_type type);

#endif
