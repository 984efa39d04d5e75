/*
 * libFuzzer harness for the reply path: reply_read (a server socket's reply
 * stream paired with its queue of requests) over the reply parsers of
 * memcached, RESP2 and RESP3, with disconnects.
 *
 * Input: a selector byte (bit 0: memcached; bits 1-4: how many requests
 * wait; bit 5, for Redis: the conn speaks RESP3, whose pushes are no
 * request's reply), a byte for the chunk size and the cut, a byte of
 * memcached command kinds, and then a server's byte stream. The seeds
 * of RESP2 streams have bit 5 clear. The stream is read three ways:
 *   A: whole, by a fresh reader over a queue of waiting requests;
 *   B: in chunks, by one reader kept across reads, as a socket is;
 *   C: cut at a point the input picks, where the socket "fails": the
 *      requests still waiting are failed, the reader is reset as a new
 *      socket's is, new requests wait, and the rest of the stream goes to
 *      it in chunks.
 * A and B must complete the same requests with the same bytes and stop
 * with the same result; what C completes after the cut must be exactly
 * what a fresh reader makes of the bytes after the cut (nothing of a dead
 * socket's half-read reply reaches the next one's requests); and every
 * completed reply is exactly one whole reply of its protocol, so replies
 * never cross requests. For Redis, the replies completed are, in order,
 * the stream's whole values that are not pushes: a push is dropped
 * however it was cut, and reaches no request. Any violation abort()s.
 */
#include "buf.h"
#include "fuzz_driver.h"
#include "fuzz_queue.h"
#include "mc_reply.h"
#include "msg.h"
#include "proto.h"
#include "proto_mc.h"
#include "proto_redis.h"
#include "redis_reply.h"
#include "reply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAXREQ 16
#define MAX_REPLY (1u << 20)

/* One run: the requests that waited and what became of them. */
struct run {
    struct fuzz_queue wq;
    struct reply_reader rr;
    struct chain_in in;
    int rc; /* reply_read's last result */
};

static void
run_init(struct run *r, bool mc, size_t n, uint8_t kinds)
{
    memset(r, 0, sizeof(*r));
    reply_reader_reset(&r->rr);
    fuzz_queue_init(&r->wq, mc, n, kinds);
}

/* Feed bytes; once reply_read fails the socket is dead: nothing more. */
static void
run_feed(struct run *r, const struct proto_wire *w, const uint8_t *p, size_t n)
{
    if (r->rc != 0 || n == 0) {
        return;
    }
    CHECK(buf_append(&r->in.b, p, n) == 0);
    r->rc = reply_read(w, &r->rr, &r->in, &r->wq.q, MAX_REPLY, fuzz_queue_done, &r->wq);
}

static void
run_feed_chunks(struct run *r, const struct proto_wire *w, const uint8_t *p, size_t n, size_t chunk)
{
    for (size_t off = 0; off < n; off += chunk) {
        run_feed(r, w, p + off, n - off < chunk ? n - off : chunk);
    }
}

/* The socket fails: requests still waiting fail, the reader and its
   unread bytes go with the socket. */
static void
run_disconnect(struct run *r)
{
    struct msg *m;

    while ((m = TAILQ_FIRST(&r->wq.q)) != NULL) {
        TAILQ_REMOVE(&r->wq.q, m, s_tqe);
        m->err = ECONNRESET;
    }
    reply_reader_reset(&r->rr);
    chain_in_reset(&r->in);
    r->rc = 0;
}

static void
run_free(struct run *r)
{
    fuzz_queue_free(&r->wq);
    chain_in_reset(&r->in);
    buf_free(&r->in.b);
}

/* A Redis reply parser of the conn's RESP version. */
static void
rsp_init(struct redis_rsp *rsp, bool resp3)
{
    if (resp3) {
        redis_rsp_init3(rsp);
    } else {
        redis_rsp_init(rsp);
    }
}

/* A completed reply is exactly one whole reply of its protocol (never a
   push). */
static void
check_whole(bool mc, bool resp3, const struct msg *m)
{
    const uint8_t *p = buf_head(&m->rsp);
    size_t n = buf_len(&m->rsp);

    CHECK(n > 0);
    if (!mc) {
        struct redis_rsp rsp;
        rsp_init(&rsp, resp3);
        CHECK(redis_parse_rsp(&rsp, p, n) == REDIS_PARSE_OK && rsp.total_len == n);
        CHECK(rsp.type != REDIS_RSP_PUSH);
        return;
    }
    /* VALUE blocks, then one final line, each fitting the command */
    for (;;) {
        struct mc_rsp rsp;
        CHECK(mc_parse_rsp(p, n, &rsp) == MC_PARSE_OK);
        CHECK(mc_rsp_fits((enum mc_cmd)m->cmd, p, &rsp));
        if (rsp.type != MC_RSP_VALUE) {
            CHECK(rsp.len == n);
            return;
        }
        p += rsp.len;
        n -= rsp.len;
    }
}

/* Redis: r's completed requests (from the first) got, in order, the
   values of s[0..len) that are not pushes, each whole. */
static void
check_order(const struct run *r, bool resp3, const uint8_t *s, size_t len)
{
    size_t at = 0;

    for (size_t i = 0; i < r->wq.nreq && r->wq.req[i]->done; i++) {
        const struct msg *m = r->wq.req[i];
        for (;;) {
            struct redis_rsp rsp;
            rsp_init(&rsp, resp3);
            CHECK(at < len && redis_parse_rsp(&rsp, s + at, len - at) == REDIS_PARSE_OK);
            at += rsp.total_len;
            if (rsp.type != REDIS_RSP_PUSH) {
                CHECK(rsp.total_len == buf_len(&m->rsp) &&
                      memcmp(s + at - rsp.total_len, buf_head(&m->rsp), rsp.total_len) == 0);
                break;
            }
        }
    }
}

static bool
same_replies(const struct run *a, size_t a_from, const struct run *b, size_t b_from, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct msg *x = a->wq.req[a_from + i], *y = b->wq.req[b_from + i];
        if (x->done != y->done || buf_len(&x->rsp) != buf_len(&y->rsp) ||
            (buf_len(&x->rsp) > 0 &&
             memcmp(buf_head(&x->rsp), buf_head(&y->rsp), buf_len(&x->rsp)) != 0)) {
            return false;
        }
    }
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    fuzz_cache_ready(1 << 16);
    bool mc = data[0] & 1;
    bool resp3 = !mc && (data[0] & 0x20);
    size_t nreq = 1 + (data[0] >> 1) % MAXREQ;
    size_t chunk = 1 + data[1] % 23;
    uint8_t kinds = data[2];
    const uint8_t *s = data + 3;
    size_t len = size - 3;
    size_t cut = len > 0 ? (size_t)((data[1] * 131u + data[2] * 7u) % (len + 1)) : 0;
    const struct proto_wire *w = mc ? &mc_wire : resp3 ? &redis3_wire : &redis_wire;
    struct run a, b, c, fresh;

    /* A and B: the same stream, whole and in chunks */
    run_init(&a, mc, nreq, kinds);
    run_feed(&a, w, s, len);
    run_init(&b, mc, nreq, kinds);
    run_feed_chunks(&b, w, s, len, chunk);
    CHECK(a.wq.ndone == b.wq.ndone && a.rc == b.rc);
    CHECK(same_replies(&a, 0, &b, 0, a.wq.nreq));
    for (size_t i = 0; i < a.wq.ndone; i++) {
        check_whole(mc, resp3, a.wq.req[i]);
    }
    if (!mc) {
        check_order(&a, resp3, s, len);
    }

    /* C: the socket fails at cut; its successor gets the rest */
    run_init(&c, mc, nreq, kinds);
    run_feed_chunks(&c, w, s, cut, chunk);
    size_t before = c.wq.ndone;
    run_disconnect(&c);
    size_t first_new = c.wq.nreq;
    fuzz_queue_add(&c.wq, mc, nreq, kinds);
    run_feed_chunks(&c, w, s + cut, len - cut, chunk);
    /* what a fresh socket makes of the same bytes */
    run_init(&fresh, mc, nreq, kinds);
    run_feed(&fresh, w, s + cut, len - cut);
    CHECK(c.wq.ndone - before == fresh.wq.ndone && c.rc == fresh.rc);
    CHECK(same_replies(&c, first_new, &fresh, 0, nreq));
    if (!mc) {
        check_order(&fresh, resp3, s + cut, len - cut);
    }
    /* the requests that waited at the cut were failed, not answered */
    for (size_t i = before; i < first_new; i++) {
        CHECK(!c.wq.req[i]->done && c.wq.req[i]->err == ECONNRESET);
    }

    run_free(&a);
    run_free(&b);
    run_free(&c);
    run_free(&fresh);
    return 0;
}
