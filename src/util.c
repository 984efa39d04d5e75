/*
 * util: number parsing with explicit lengths (request bytes are never
 * NUL-terminated), clocks and a small PRNG. Pure; safe from any thread.
 */
#include "util.h"

#include <string.h>
#include <time.h>

int
util_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9) {
            return -1;
        }
        if (d > max || v > (max - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int
util_parse_u64_str(const char *s, uint64_t max, uint64_t *out)
{
    return util_parse_u64(s, strlen(s), max, out);
}

uint64_t
util_mono_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
util_mono_msec(void)
{
    return util_mono_usec() / 1000u;
}

uint64_t
util_wall_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool
util_strieq(const char *s, size_t len, const char *lit)
{
    size_t i;

    for (i = 0; i < len; i++) {
        char a = s[i], b = lit[i];
        if (b == '\0') {
            return false;
        }
        if (a >= 'A' && a <= 'Z') {
            a = (char)(a - 'A' + 'a');
        }
        if (b >= 'A' && b <= 'Z') {
            b = (char)(b - 'A' + 'a');
        }
        if (a != b) {
            return false;
        }
    }
    return lit[i] == '\0';
}

const char *
util_strerror(int err, char *buf, size_t len)
{
    /* GNU strerror_r (we build with _GNU_SOURCE): may return a static string. */
    return strerror_r(err, buf, len);
}

uint64_t
util_rand64(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}
