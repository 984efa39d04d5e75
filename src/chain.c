/*
 * chain: pieces of chunks standing in buffers (see chain.h).
 *
 * A read that takes a body offers the growing piece's free tail first,
 * then whole chunks, then the buffer's free room, so one readv fills the
 * body's chunks and puts what follows the body (its "\r\n", the next
 * request) where the parser looks for it. Chunks it did not fill go back
 * at once.
 */
#include "chain.h"

#include <stdlib.h>
#include <string.h>

void
chain_pool_init(struct chain_pool *p, size_t size, uint32_t keep)
{
    p->free = NULL;
    p->size = size;
    p->nfree = 0;
    p->keep = keep;
}

void
chain_pool_destroy(struct chain_pool *p)
{
    while (p->free != NULL) {
        struct chunk *c = p->free;
        p->free = c->next;
        free(c);
    }
    p->nfree = 0;
}

static struct chunk *
chunk_get(struct chain_pool *p)
{
    struct chunk *c = p->free;

    if (c != NULL) {
        p->free = c->next;
        p->nfree--;
    } else if ((c = malloc(sizeof(*c) + p->size)) == NULL) {
        return NULL;
    }
    c->next = NULL;
    c->pool = p;
    c->len = 0;
    return c;
}

static void
chunk_put(struct chunk *c)
{
    struct chain_pool *p = c->pool;

    if (p->nfree >= p->keep) {
        free(c);
        return;
    }
    c->next = p->free;
    p->free = c;
    p->nfree++;
}

/* Give back a piece: its first chunk and those after it. */
static void
chain_put_piece(struct chunk *piece)
{
    while (piece != NULL) {
        struct chunk *next = piece->next;
        chunk_put(piece);
        piece = next;
    }
}

void
chain_clear(struct chain *c)
{
    while (c->head != NULL) {
        struct chunk *p = c->head;
        c->head = p->next_piece;
        chain_put_piece(p);
    }
    c->tail = NULL;
    c->bytes = 0;
}

static struct chunk *
chain_pop(struct chain *c)
{
    struct chunk *p = c->head;

    c->head = p->next_piece;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    c->bytes -= p->total;
    p->next_piece = NULL;
    return p;
}

static void
chain_push(struct chain *c, struct chunk *p)
{
    p->next_piece = NULL;
    if (c->tail != NULL) {
        c->tail->next_piece = p;
    } else {
        c->head = p;
    }
    c->tail = p;
    c->bytes += p->total;
}

const struct chunk *
chain_next_piece(const struct chain *c, size_t from)
{
    const struct chunk *p = c->head;

    while (p != NULL && p->at < from) {
        p = p->next_piece;
    }
    return p;
}

uint64_t
chain_piece_bytes(const struct chain *c, size_t from, size_t to)
{
    const struct chunk *p = chain_next_piece(c, from);

    return p != NULL && p->at <= to ? p->total : 0;
}

int
chain_take(struct buf *dst, struct chain *dc, const uint8_t *src, struct chain *sc, size_t from,
           size_t to)
{
    struct chunk *p;

    while ((p = sc->head) != NULL && p->at <= to) {
        size_t at = p->at;
        chain_pop(sc);
        if (at < from) {
            chain_put_piece(p); /* a body nobody took */
            continue;
        }
        if (buf_append(dst, src + from, at - from) != 0) {
            chain_put_piece(p);
            return -1;
        }
        p->at = buf_len(dst);
        chain_push(dc, p);
        from = at;
    }
    return buf_append(dst, src + from, to - from);
}

/* Add one iovec for base[0..len) after skipping *skip bytes. */
static bool
chain_iov_add(struct iovec *iov, int max, int *n, size_t *bytes, uint64_t *skip,
              const uint8_t *base, size_t len)
{
    if (*skip >= len) {
        *skip -= len;
        return true;
    }
    if (*n == max) {
        return false;
    }
    iov[*n].iov_base = (void *)(base + *skip);
    iov[*n].iov_len = len - (size_t)*skip;
    *bytes += iov[*n].iov_len;
    (*n)++;
    *skip = 0;
    return true;
}

int
chain_iov(const struct buf *b, const struct chain *c, uint64_t skip, struct iovec *iov, int max,
          size_t *bytes)
{
    const uint8_t *head = buf_head(b);
    size_t pos = 0;
    int n = 0;

    *bytes = 0;
    for (const struct chunk *p = c->head; p != NULL; p = p->next_piece) {
        if (p->at > pos && !chain_iov_add(iov, max, &n, bytes, &skip, head + pos, p->at - pos)) {
            return n;
        }
        pos = p->at;
        for (const struct chunk *k = p; k != NULL; k = k->next) {
            if (k->len > 0 && !chain_iov_add(iov, max, &n, bytes, &skip, k->data, k->len)) {
                return n;
            }
        }
    }
    if (buf_len(b) > pos) {
        (void)chain_iov_add(iov, max, &n, bytes, &skip, head + pos, buf_len(b) - pos);
    }
    return n;
}

void
chain_in_stream(struct chain_in *in, uint64_t left)
{
    in->left = left;
    in->fresh = true;
}

/* Give back chunks a read was offered but did not fill. */
static void
chain_in_unoffer(struct chain_in *in)
{
    while (in->offered != NULL) {
        struct chunk *c = in->offered;
        in->offered = c->next;
        chunk_put(c);
    }
    in->offered_bytes = 0;
    in->offered_tail = NULL;
    in->offered_tail_bytes = 0;
}

int
chain_in_iov(struct chain_in *in, struct chain_pool *p, struct iovec *iov, int max)
{
    uint64_t want = MIN(in->left, (uint64_t)CHAIN_READ_MAX);
    struct chunk **link = &in->offered;
    int n = 0;

    chain_in_unoffer(in);
    if (!in->fresh && want > 0 && in->holes.tail != NULL) {
        struct chunk *tail = in->holes.tail->last;
        size_t k = (size_t)MIN(want, (uint64_t)(p->size - tail->len));
        if (k > 0) {
            in->offered_tail = tail;
            in->offered_tail_bytes = k;
            iov[n].iov_base = tail->data + tail->len;
            iov[n++].iov_len = k;
            in->offered_bytes += k;
            want -= k;
        }
    }
    while (want > 0 && n < max - 1) {
        struct chunk *c = chunk_get(p);
        if (c == NULL) {
            break;
        }
        size_t k = (size_t)MIN(want, (uint64_t)p->size);
        *link = c;
        link = &c->next;
        iov[n].iov_base = c->data;
        iov[n++].iov_len = k;
        in->offered_bytes += k;
        want -= k;
    }
    if (in->left > 0 && n == 0) {
        return 0; /* out of memory: the body has nowhere to go */
    }
    /* What follows the body goes to the buffer, once all of the body has
       somewhere to go before it. */
    if (in->offered_bytes == in->left && in->b.cap > in->b.end && n < max) {
        iov[n].iov_base = in->b.data + in->b.end;
        iov[n++].iov_len = in->b.cap - in->b.end;
    }
    return n;
}

uint64_t
chain_in_commit(struct chain_in *in, size_t n)
{
    size_t body = MIN(n, in->offered_bytes), left = body;
    struct chunk *piece = in->fresh ? NULL : in->holes.tail;

    if (in->offered_tail != NULL && left > 0) {
        size_t k = MIN(left, in->offered_tail_bytes);
        in->offered_tail->len += k;
        left -= k;
    }
    while (left > 0 && in->offered != NULL) {
        struct chunk *c = in->offered;
        in->offered = c->next;
        c->next = NULL;
        c->len = MIN(left, c->pool->size);
        left -= c->len;
        if (piece == NULL) {
            piece = c;
            piece->at = buf_len(&in->b);
            piece->total = 0;
            piece->last = c;
            chain_push(&in->holes, piece);
            in->fresh = false;
        } else {
            piece->last->next = c;
            piece->last = c;
        }
    }
    chain_in_unoffer(in);
    if (piece != NULL) {
        piece->total += body;
        in->holes.bytes += body;
    }
    in->left -= body;
    in->b.end += n - body;
    return body;
}

void
chain_in_consume(struct chain_in *in, size_t n)
{
    buf_consume(&in->b, n);
    while (in->holes.head != NULL && in->holes.head->at <= n) {
        chain_put_piece(chain_pop(&in->holes));
    }
    for (struct chunk *p = in->holes.head; p != NULL; p = p->next_piece) {
        p->at -= n;
    }
}

void
chain_in_reset(struct chain_in *in)
{
    buf_reset(&in->b);
    chain_clear(&in->holes);
    chain_in_unoffer(in);
    in->left = 0;
    in->fresh = false;
}
