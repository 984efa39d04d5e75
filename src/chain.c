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
    c->off = 0;
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
chain_clear_pieces(struct chain *c)
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
chain_take_pieces(struct buf *dst, struct chain *dc, const uint8_t *src, struct chain *sc,
                  size_t from, size_t to)
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
chain_iov_pieces(const struct buf *b, const struct chain *c, uint64_t skip, struct iovec *iov,
                 int max, size_t *bytes)
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
            if (k->len > 0 &&
                !chain_iov_add(iov, max, &n, bytes, &skip, k->data + k->off, k->len)) {
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
    in->offered_buf = 0;
}

/* Offer new chunks for up to want bytes in iov[*n..limit). Returns the
   bytes offered. */
static size_t
chain_in_offer(struct chain_in *in, struct chain_pool *p, struct iovec *iov, int limit, int *n,
               uint64_t want)
{
    struct chunk **link = &in->offered;
    size_t offered = 0;

    while (*link != NULL) {
        link = &(*link)->next;
    }
    while (want > 0 && *n < limit) {
        struct chunk *c = chunk_get(p);
        if (c == NULL) {
            break;
        }
        size_t k = (size_t)MIN(want, (uint64_t)p->size);
        *link = c;
        link = &c->next;
        iov[*n].iov_base = c->data;
        iov[(*n)++].iov_len = k;
        offered += k;
        want -= k;
    }
    return offered;
}

/* The room after a chunk's bytes. */
static size_t
chunk_room(const struct chunk *c)
{
    return c->pool->size - c->off - c->len;
}

int
chain_in_iov(struct chain_in *in, struct chain_pool *p, struct iovec *iov, int max, bool ahead)
{
    size_t room = in->b.cap - in->b.end;
    int n = 0;

    chain_in_unoffer(in);
    if (in->left > 0) {
        uint64_t want = MIN(in->left, (uint64_t)CHAIN_READ_MAX);
        if (!in->fresh && in->holes.tail != NULL) {
            struct chunk *tail = in->holes.tail->last;
            size_t k = (size_t)MIN(want, (uint64_t)chunk_room(tail));
            if (k > 0) {
                in->offered_tail = tail;
                in->offered_tail_bytes = k;
                iov[n].iov_base = tail->data + tail->off + tail->len;
                iov[n++].iov_len = k;
                in->offered_bytes += k;
                want -= k;
            }
        }
        in->offered_bytes += chain_in_offer(in, p, iov, max - 1, &n, want); /* one for the buffer */
        if (n == 0) {
            return 0; /* out of memory: the body has nowhere to go */
        }
        /* What follows the body goes to the buffer, once all of the body has
           somewhere to go before it. */
        if (in->offered_bytes == in->left && in->spill_bytes == 0 && room > 0) {
            in->offered_buf = room;
            iov[n].iov_base = in->b.data + in->b.end;
            iov[n++].iov_len = room;
        }
        return n;
    }
    if (in->spill_bytes == 0 && room > 0) {
        /* new bytes follow the spill's, never the buffer's, while there is one */
        in->offered_buf = ahead ? MIN(room, (size_t)CHAIN_HEAD_ROOM) : room;
        iov[n].iov_base = in->b.data + in->b.end;
        iov[n++].iov_len = in->offered_buf;
    }
    if (ahead || in->spill_bytes > 0) {
        (void)chain_in_offer(in, p, iov, MIN(max, n + CHAIN_AHEAD_CHUNKS), &n, CHAIN_READ_MAX);
    }
    return n;
}

/* Append chunk c (its bytes data[off..off+len)) to the piece starting at
   *piece, starting a new piece standing at the buffer's end if none. */
static void
chain_in_grow_piece(struct chain_in *in, struct chunk **piece, struct chunk *c)
{
    c->next = NULL;
    if (*piece == NULL) {
        *piece = c;
        c->at = buf_len(&in->b);
        c->total = 0;
        c->last = c;
        chain_push(&in->holes, c);
        in->fresh = false;
        in->npieces++;
    } else {
        (*piece)->last->next = c;
        (*piece)->last = c;
    }
    (*piece)->total += c->len;
    in->holes.bytes += c->len;
}

/* Append chunk c to the spill. */
static void
chain_in_spill_push(struct chain_in *in, struct chunk *c)
{
    c->next = NULL;
    if (in->spill_tail != NULL) {
        in->spill_tail->next = c;
    } else {
        in->spill = c;
    }
    in->spill_tail = c;
    in->spill_bytes += c->len;
}

uint64_t
chain_in_commit(struct chain_in *in, size_t n)
{
    size_t body = in->left > 0 ? MIN(n, in->offered_bytes) : 0, rest = n - body, left = body;

    if (in->left > 0) {
        struct chunk *piece = in->fresh ? NULL : in->holes.tail;
        if (in->offered_tail != NULL && left > 0) {
            size_t k = MIN(left, in->offered_tail_bytes);
            in->offered_tail->len += k;
            piece->total += k;
            in->holes.bytes += k;
            left -= k;
        }
        while (left > 0 && in->offered != NULL) {
            struct chunk *c = in->offered;
            in->offered = c->next;
            c->len = MIN(left, c->pool->size);
            left -= c->len;
            chain_in_grow_piece(in, &piece, c);
        }
        in->left -= body;
    }
    size_t to_buf = MIN(rest, in->offered_buf);
    in->b.end += to_buf;
    rest -= to_buf;
    while (rest > 0 && in->offered != NULL) {
        struct chunk *c = in->offered;
        in->offered = c->next;
        c->len = MIN(rest, c->pool->size);
        rest -= c->len;
        chain_in_spill_push(in, c);
    }
    chain_in_unoffer(in);
    return body;
}

/* Take the spill's first chunk off it. */
static struct chunk *
chain_in_spill_pop(struct chain_in *in)
{
    struct chunk *c = in->spill;

    in->spill = c->next;
    if (in->spill == NULL) {
        in->spill_tail = NULL;
    }
    in->spill_bytes -= c->len;
    c->next = NULL;
    return c;
}

uint64_t
chain_in_adopt(struct chain_in *in, uint64_t left)
{
    uint64_t want = MIN(left, (uint64_t)in->spill_bytes), got = 0;
    struct chunk *piece = NULL;

    while (got < want) {
        struct chunk *c = in->spill;
        size_t need = (size_t)(want - got);
        if (c->len > need) {
            /* The body ends inside this chunk: split it, copying the smaller
               side into a new chunk. */
            struct chunk *k = chunk_get(c->pool);
            if (k == NULL) {
                break;
            }
            if (need <= c->len - need) {
                /* the body's part moves to k; c keeps what follows */
                memcpy(k->data, c->data + c->off, need);
                k->len = need;
                c->off += need;
                c->len -= need;
                in->spill_bytes -= need;
                chain_in_grow_piece(in, &piece, k);
            } else {
                /* what follows moves to k, which takes c's place in the spill */
                size_t tail = c->len - need;
                memcpy(k->data, c->data + c->off + need, tail);
                k->len = tail;
                c->len = need;
                k->next = c->next;
                c->next = k;
                if (in->spill_tail == c) {
                    in->spill_tail = k;
                }
                /* spill_bytes is unchanged: c's tail is k's now */
                chain_in_grow_piece(in, &piece, chain_in_spill_pop(in));
            }
            got += need;
            break;
        }
        got += c->len;
        chain_in_grow_piece(in, &piece, chain_in_spill_pop(in));
    }
    if (got > 0 && left > got) {
        in->left = left - got; /* the rest of the body is read into the piece */
        in->fresh = false;
    }
    return got;
}

int
chain_in_unspill(struct chain_in *in, size_t n)
{
    while (n > 0 && in->spill != NULL) {
        struct chunk *c = in->spill;
        size_t k = MIN(n, c->len);
        if (buf_append(&in->b, c->data + c->off, k) != 0) {
            return -1;
        }
        c->off += k;
        c->len -= k;
        in->spill_bytes -= k;
        n -= k;
        if (c->len == 0) {
            chunk_put(chain_in_spill_pop(in));
        }
    }
    return 0;
}

void
chain_in_consume_pieces(struct chain_in *in, size_t n)
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
chain_in_drop_chunks(struct chain_in *in)
{
    chain_clear(&in->holes);
    while (in->offered != NULL) {
        struct chunk *c = in->offered;
        in->offered = c->next;
        chunk_put(c);
    }
    while (in->spill != NULL) {
        struct chunk *c = in->spill;
        in->spill = c->next;
        chunk_put(c);
    }
    in->spill_tail = NULL;
    in->spill_bytes = 0;
}
