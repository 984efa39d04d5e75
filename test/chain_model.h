/*
 * chain_model: the runtime's way of reading a conn (conn_read with
 * chain.h), modelled on a stream that is all in memory, for the tests that
 * drive the parsers the way the runtime does: the chain unit test
 * (test/unit/test_chain.c) and its fuzzer (test/fuzz/fuzz_chain.c).
 *
 * A read fills the buffer (made room in as conn_read does, mbuf bytes at a
 * time) or, while a body is read around the buffer or a conn reads ahead,
 * the chunks chain_in_iov gives. The includer defines MODEL_REQUIRE(cond),
 * how a broken expectation fails (a Check abort, or abort() for libFuzzer).
 */
#ifndef CMX_TEST_CHAIN_MODEL_H
#define CMX_TEST_CHAIN_MODEL_H

#include "chain.h"
#include "msg.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef MODEL_REQUIRE
#error "define MODEL_REQUIRE(cond) before including chain_model.h"
#endif

struct chain_model {
    struct chain_in in;
    struct chain_pool *pool; /* where the pieces' chunks come from */
    const uint8_t *src;      /* the whole stream */
    size_t pos, len;         /* bytes read so far; the stream's length */
    size_t mbuf;             /* the read buffer's size (mbuf_size) */
    bool ahead;              /* read ahead, as for a conn that carries large values */
    size_t pieces;           /* pieces started, over the run */
};

/* One read of at most max bytes, as conn_read does. Returns the bytes read
   (0: the stream is all read); *body: those that went into a piece. Reading
   ahead, the buffer gets a header's room and the rest goes to chunks (the
   spill). */
static inline size_t
chain_model_read(struct chain_model *m, size_t max, uint64_t *body)
{
    size_t avail = MIN(m->len - m->pos, max), n = 0;
    struct chain_in *in = &m->in;

    *body = 0;
    if (avail == 0) {
        return 0;
    }
    if (in->left == 0 && in->spill_bytes == 0) {
        /* the runtime makes room below a quarter buffer */
        size_t want = m->ahead ? CHAIN_HEAD_ROOM : m->mbuf / 4;
        if (in->b.cap - in->b.end < want) {
            MODEL_REQUIRE(buf_reserve(&in->b, m->mbuf) == 0);
        }
    }
    if (in->left == 0 && in->spill_bytes == 0 && !m->ahead) {
        n = MIN(avail, in->b.cap - in->b.end);
        memcpy(in->b.data + in->b.end, m->src + m->pos, n);
        in->b.end += n;
    } else {
        struct iovec iov[256];
        int k = chain_in_iov(in, m->pool, iov, 256, m->ahead);
        MODEL_REQUIRE(k > 0);
        for (int i = 0; i < k && n < avail; i++) {
            size_t t = MIN(iov[i].iov_len, avail - n);
            memcpy(iov[i].iov_base, m->src + m->pos + n, t);
            n += t;
        }
        *body = chain_in_commit(in, n);
    }
    m->pos += n;
    return n;
}

/* The buffered bytes for the parser; read-ahead bytes move into an empty
   buffer first. False: nothing buffered (the runtime never parses then). */
static inline bool
chain_model_buffered(struct chain_model *m, const uint8_t **head, size_t *len)
{
    if (buf_len(&m->in.b) == 0 && m->in.spill_bytes > 0) {
        MODEL_REQUIRE(chain_in_unspill(&m->in, CHAIN_HEAD_ROOM) == 0);
    }
    *head = buf_head(&m->in.b);
    *len = buf_len(&m->in.b);
    return *len > 0;
}

/* As the runtime does when the parser wants bytes that were read ahead: a
   body of at least a piece's worth (left bytes) takes them, else a header's
   worth moves to the buffer. Returns the body bytes taken (for the skip). */
static inline uint64_t
chain_model_unspill(struct chain_model *m, uint64_t left)
{
    if (left >= CHAIN_MIN_PIECE) {
        uint64_t got = chain_in_adopt(&m->in, left);
        if (got > 0) {
            m->pieces++;
            return got;
        }
    }
    MODEL_REQUIRE(chain_in_unspill(&m->in, MAX((size_t)CHAIN_HEAD_ROOM, buf_len(&m->in.b))) == 0);
    return 0;
}

/* A buffer's bytes with its pieces between them (malloc'd), as a writev
   would send them. */
static inline uint8_t *
chain_model_flatten(const struct buf *b, const struct chain *c, size_t *len)
{
    struct iovec iov[4096];
    size_t bytes, off = 0;
    int n = chain_iov(b, c, 0, iov, 4096, &bytes);
    uint8_t *out = malloc(bytes + 1);

    MODEL_REQUIRE(out != NULL && bytes == chain_len(b, c));
    for (int i = 0; i < n; i++) {
        memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    MODEL_REQUIRE(off == bytes); /* every piece fit the iovecs */
    *len = bytes;
    return out;
}

/* A whole request of total buffered bytes (at head) taken into a msg as the
   runtime does, and consumed. Returns its bytes with its pieces (malloc'd,
   *len of them). */
static inline uint8_t *
chain_model_take(struct chain_model *m, struct msg_cache *cache, const uint8_t *head, size_t total,
                 size_t *len)
{
    struct msg *msg = msg_get(cache);
    uint8_t *got;

    MODEL_REQUIRE(msg != NULL);
    MODEL_REQUIRE(chain_take(&msg->req, &msg->req_pieces, head, &m->in.holes, 0, total) == 0);
    chain_in_consume(&m->in, total);
    got = chain_model_flatten(&msg->req, &msg->req_pieces, len);
    msg_put(cache, msg);
    return got;
}

/* Give back what the model holds. */
static inline void
chain_model_free(struct chain_model *m)
{
    chain_in_reset(&m->in);
    buf_free(&m->in.b);
}

#endif
