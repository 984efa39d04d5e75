/*
 * buf: a growable contiguous byte buffer with a consumed-prefix offset.
 * Used as a conn's read buffer (bytes arrive at the end, parsers consume
 * from the front) and as a msg's request and response bytes. Parsers need
 * contiguous bytes, so a buffer grows rather than chains; it gives memory
 * back (buf_shrink) when it is empty again, so a spike does not stay.
 */
#ifndef CMX_BUF_H
#define CMX_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct buf {
    uint8_t *data;
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last byte */
    size_t cap;
};

static inline size_t
buf_len(const struct buf *b)
{
    return b->end - b->start;
}
/* The first unconsumed byte (NULL for a buffer that never held any: no
   arithmetic on a null pointer). */
static inline uint8_t *
buf_head(const struct buf *b)
{
    return b->data != NULL ? b->data + b->start : NULL;
}

/* Make room for at least n more bytes at the end. Returns 0 or -1 (ENOMEM). */
int buf_reserve(struct buf *b, size_t n) MUSTCHECK;
/* Append n bytes. Returns 0 or -1. */
int buf_append(struct buf *b, const void *p, size_t n) MUSTCHECK;
/* Drop n bytes from the front; an emptied buffer resets to offset 0. */
static inline void
buf_consume(struct buf *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end) {
        b->start = b->end = 0;
    }
}
/* Forget the contents, keep the memory. */
static inline void
buf_reset(struct buf *b)
{
    b->start = b->end = 0;
}
/* Free the memory when the buffer is empty and larger than keep bytes. */
void buf_shrink(struct buf *b, size_t keep);
void buf_free(struct buf *b);

#endif
