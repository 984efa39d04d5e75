/*
 * sbuf: a growing byte string the unit tests build their streams in
 * (requests, replies, values). Every function aborts the test when memory
 * runs out; none records a Check assertion, so loops of millions stay
 * fast. Free with free(b->p).
 */
#ifndef CMX_TEST_SBUF_H
#define CMX_TEST_SBUF_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbuf {
    uint8_t *p;
    size_t len, cap;
};

/* Room for n more bytes. */
static inline void
sb_reserve(struct sbuf *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return;
    }
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (b->p == NULL) {
        ck_abort_msg("out of memory for a test buffer of %zu bytes", b->cap);
    }
}

static inline void
sb_add(struct sbuf *b, const void *p, size_t n)
{
    sb_reserve(b, n);
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
}

static inline void
sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* fmt has one conversion, for a size_t (%zu). */
static inline void
sb_fmt(struct sbuf *b, const char *fmt, size_t v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), fmt, v);

    sb_add(b, tmp, (size_t)n);
}

#endif
