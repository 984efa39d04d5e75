/*
 * util: small helpers shared by every layer: length-checked number parsing,
 * monotonic and wall clocks, and a few macros. Pure; no global state.
 */
#ifndef CMX_UTIL_H
#define CMX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MUSTCHECK __attribute__((warn_unused_result))
#define UNUSED __attribute__((unused))

/* A cache line: blocks written by different threads are aligned to it, so
   that no two threads ever write the same line. */
#define CACHE_LINE 64
/* n bytes rounded up to whole cache lines. */
#define CACHE_ROUND(n) (((n) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE)

/*
 * Parse the decimal digits s[0..len) into *out. Only digits are accepted (no
 * sign, no spaces); an empty string or a value above max is an error.
 * Returns 0 on success, -1 on error (*out untouched).
 */
int util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out) MUSTCHECK;

/* Same as util_parse_u64 on a NUL-terminated string. */
int util_parse_u64_str(const char *s, uint64_t max, uint64_t *out) MUSTCHECK;

/* Monotonic clock in microseconds and milliseconds. */
uint64_t util_mono_usec(void);
uint64_t util_mono_msec(void);

/* Wall clock in microseconds since the epoch. */
uint64_t util_wall_usec(void);

/* Case-insensitive compare of s[0..len) with NUL-terminated lit. */
bool util_strieq(const char *s, size_t len, const char *lit);

/* The system's text for errno value err (thread-safe). */
const char *util_strerror(int err, char *buf, size_t len);

/* ms milliseconds as a struct timeval (what libevent's timers take). */
static inline struct timeval
util_ms_tv(uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000) };

    return tv;
}

/* xorshift64* step for per-worker random numbers; *state must be non-zero. */
uint64_t util_rand64(uint64_t *state);

#endif
