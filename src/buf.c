/*
 * buf: see buf.h. Growth doubles, so appending a large value costs
 * amortised O(1) per byte; compaction moves the unconsumed tail to the front
 * only when that makes enough room, so a read buffer that is consumed
 * almost entirely every turn never moves bytes at all.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

/* A msg's request and reply start this small: most are a few dozen bytes,
   and 50,000 requests in flight (500 clients x 100 pipelined) then touch a
   fraction of the pages that 1 KiB buffers did (page faults are what a
   cold proxy's first burst pays for). */
#define BUF_MIN_CAP 64

int
buf_reserve(struct buf *b, size_t n)
{
    size_t len = buf_len(b);

    if (b->cap - b->end >= n) {
        return 0;
    }
    if (b->start > 0 && b->cap - len >= n) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        return 0;
    }
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap - len < n) {
        if (cap > SIZE_MAX / 2) {
            return -1;
        }
        cap *= 2;
    }
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (buf_reserve(b, n) != 0) {
        return -1;
    }
    memcpy(b->data + b->end, p, n);
    b->end += n;
    return 0;
}

void
buf_shrink(struct buf *b, size_t keep)
{
    if (b->start == b->end && b->cap > keep) {
        buf_free(b);
    }
}

void
buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}
