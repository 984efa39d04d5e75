/*
 * libFuzzer harness for the chained-buffer parse: bodies read around the
 * read buffer into chunks (chain.h), for requests and replies of both
 * protocols.
 *
 * Input: two selector bytes, then a byte stream. The stream is parsed
 * twice: whole, with every byte in one buffer, and the way the runtime
 * reads it: in reads of a size the selector picks, into a small buffer
 * that makes room as conn_read does, with the rest of a body read into
 * chunks (of a size the selector picks) whenever the parser is in one and
 * the selector's bits say so. Each request or reply the second parse
 * completes, its buffer bytes with its pieces between them, must be
 * exactly what the whole parse found at the same place, with the same
 * command, arguments, keys and errors (offsets mapped past the pieces);
 * a failure must come at the same place with the same error. Any
 * violation abort()s.
 */
#include "fuzz_driver.h"
#include "fuzz_queue.h"

#define MODEL_REQUIRE CHECK
#include "../chain_model.h"
#include "mc_reply.h"
#include "proto.h"
#include "proto_mc.h"
#include "proto_redis.h"
#include "redis_reply.h"
#include "reply.h"

#define MAX_REQ (1u << 20)
#define MAXREQ 16
#define MAXARGS 64

/* The runtime's way of reading, on a stream that is all there. */
struct feed {
    struct chain_model m;
    struct chain_pool pool;
    size_t rsize;        /* the most one read returns */
    const uint8_t *bits; /* stream decisions, cycled */
    size_t nbits, bit;
};

static void
feed_init(struct feed *f, const uint8_t *src, size_t len, uint8_t sel, const uint8_t *bits,
          size_t nbits)
{
    memset(f, 0, sizeof(*f));
    f->m.src = src;
    f->m.len = len;
    f->rsize = 1 + (sel & 0x1f) * 3;
    f->m.mbuf = 64 << ((sel >> 5) & 3);
    f->bits = bits;
    f->nbits = nbits;
    f->m.ahead = (sel & 0x80) != 0;
    chain_pool_init(&f->pool, 1 + (sel % 7) * 5, 8);
    f->m.pool = &f->pool;
}

static void
feed_free(struct feed *f)
{
    chain_model_free(&f->m);
    chain_pool_destroy(&f->pool);
}

/* One read of at most rsize bytes (chain_model_read). */
static size_t
feed_read(struct feed *f, uint64_t *body)
{
    return chain_model_read(&f->m, f->rsize, body);
}

/* The bytes to parse: those buffered, read while there are none (the
   parser is never called without bytes). False: the stream is all read. */
static bool
feed_next(struct feed *f, const uint8_t **head, size_t *blen)
{
    uint64_t body;

    while (!chain_model_buffered(&f->m, head, blen)) {
        if (feed_read(f, &body) == 0) {
            return false;
        }
    }
    return true;
}

/* Whether to read the rest of a body (left bytes) around the buffer. */
static void
feed_maybe_stream(struct feed *f, uint64_t left)
{
    if (left == 0 || f->m.in.left > 0) {
        return;
    }
    uint8_t b = f->nbits > 0 ? f->bits[f->bit++ % f->nbits] : 1;
    if (b & 1) {
        chain_in_stream(&f->m.in, left);
    }
}

/* A buffer offset of the chained parse as an offset of the whole stream:
   the pieces standing before it count (one standing at it is inside the
   body starting there). */
static size_t
whole_off(const struct chain *holes, size_t off)
{
    size_t add = 0;

    for (const struct chunk *p = holes->head; p != NULL && p->at < off; p = p->next_piece) {
        add += p->total;
    }
    return off + add;
}

/* Take the request the chained parse completed (total buffered bytes) and
   compare it with the whole stream's bytes of it. */
static void
take_same(struct feed *f, const uint8_t *head, size_t total, const uint8_t *want, size_t wlen)
{
    size_t n;
    uint8_t *got = chain_model_take(&f->m, &fuzz_cache, head, total, &n);

    CHECK(n == wlen && memcmp(got, want, n) == 0);
    free(got);
}

/* ---- Redis requests ---- */

static struct redis_arg whole_args[MAXARGS], chain_args[MAXARGS];

static enum redis_parse
redis_parse(struct redis_req *r, const uint8_t *buf, size_t len)
{
    enum redis_parse rc = redis_parse_req(r, buf, len, MAX_REQ);

    return rc == REDIS_PARSE_ARGS ? REDIS_PARSE_ERROR : rc; /* more than MAXARGS: stop */
}

static void
redis_requests(const uint8_t *s, size_t len, uint8_t sel, const uint8_t *bits, size_t nbits)
{
    struct feed f;
    struct redis_req w, c;
    const uint8_t *head;
    size_t blen, wpos = 0;
    uint64_t body;

    feed_init(&f, s, len, sel, bits, nbits);
    redis_req_init(&c, chain_args, MAXARGS);
    while (feed_next(&f, &head, &blen)) {
        enum redis_parse rc = redis_parse(&c, head, blen);
        if (rc == REDIS_PARSE_AGAIN) {
            uint32_t arg = 0;
            uint64_t left = redis_req_body_left(&c, blen, &arg);
            if (f.m.in.spill_bytes > 0) {
                uint64_t got = chain_model_unspill(&f.m, arg > 0 ? left : 0);
                if (got > 0) {
                    redis_req_skip(&c, got);
                }
                continue;
            }
            if (arg > 0) {
                feed_maybe_stream(&f, left);
            }
            size_t n = feed_read(&f, &body);
            if (n == 0) {
                break; /* all read, the last request incomplete */
            }
            if (body > 0) {
                redis_req_skip(&c, body);
            }
            continue;
        }
        /* the whole parse of the same place */
        redis_req_init(&w, whole_args, MAXARGS);
        enum redis_parse rw = redis_parse(&w, s + wpos, len - wpos);
        CHECK(rw == rc && w.err == c.err && w.cmd == c.cmd && w.argc == c.argc &&
              w.is_inline == c.is_inline);
        if (w.err == REDIS_ERR_BULK_LEN || w.err == REDIS_ERR_EXPECTED_DOLLAR ||
            redis_error_closes(w.err) || (rc == REDIS_PARSE_ERROR && w.err == REDIS_ERR_NONE)) {
            break; /* the conn closes here */
        }
        CHECK(c.total_len + f.m.in.holes.bytes == w.total_len);
        if (!c.is_inline) {
            for (uint32_t i = 0; i < c.argc && i < MAXARGS; i++) {
                CHECK(c.args[i].len == w.args[i].len);
                CHECK(whole_off(&f.m.in.holes, c.args[i].off) == w.args[i].off);
            }
        }
        take_same(&f, head, c.total_len, s + wpos, w.total_len);
        CHECK(f.m.in.holes.head == NULL);
        wpos += w.total_len;
        redis_req_reset(&c);
    }
    feed_free(&f);
}

/* ---- memcached requests ---- */

static void
mc_requests(const uint8_t *s, size_t len, uint8_t sel, const uint8_t *bits, size_t nbits)
{
    struct feed f;
    struct mc_req w, c;
    const uint8_t *head;
    size_t blen, wpos = 0;
    uint64_t body;

    feed_init(&f, s, len, sel, bits, nbits);
    while (feed_next(&f, &head, &blen)) {
        enum mc_parse rc = mc_parse_req_skip(head, blen, MAX_REQ, f.m.in.holes.bytes, &c);
        if (rc == MC_PARSE_AGAIN) {
            uint64_t left = 0;
            if (c.data_len > 0 && c.total_len >= 2 && c.total_len - 2 > blen) {
                left = c.total_len - 2 - blen;
            }
            if (f.m.in.spill_bytes > 0) {
                (void)chain_model_unspill(&f.m, left); /* the skip is holes.bytes */
                continue;
            }
            feed_maybe_stream(&f, left);
            if (feed_read(&f, &body) == 0) {
                break;
            }
            continue;
        }
        enum mc_parse rw = mc_parse_req(s + wpos, len - wpos, MAX_REQ, &w);
        CHECK(rw == rc && w.err == c.err && w.cmd == c.cmd && w.nkeys == c.nkeys &&
              w.keys_off == c.keys_off && w.keys_end == c.keys_end &&
              w.noreply_len == c.noreply_len && w.data_len == c.data_len);
        if (rc == MC_PARSE_ERROR) {
            if (mc_error_closes(w.err)) {
                break;
            }
            CHECK(w.line_len == c.line_len && f.m.in.holes.head == NULL);
            chain_in_consume(&f.m.in, c.line_len);
            wpos += w.line_len;
            continue;
        }
        CHECK(c.total_len + f.m.in.holes.bytes == w.total_len);
        take_same(&f, head, c.total_len, s + wpos, w.total_len);
        wpos += w.total_len;
    }
    feed_free(&f);
}

/* ---- replies ---- */

static void
replies(bool mc, const uint8_t *s, size_t len, uint8_t sel, const uint8_t *bits, size_t nbits)
{
    const struct proto_wire *w = mc ? &mc_wire : &redis_wire;
    size_t nreq = 1 + sel % MAXREQ;
    struct reply_reader ra, rb;
    struct chain_in whole = { 0 };
    struct fuzz_queue a, b;
    struct feed f;
    uint64_t body;

    /* A: everything in one buffer */
    fuzz_queue_init(&a, mc, nreq, sel);
    reply_reader_reset(&ra);
    CHECK(buf_append(&whole.b, s, len) == 0);
    int arc = reply_read(w, &ra, &whole, &a.q, MAX_REQ, fuzz_queue_done, &a), brc;

    /* B: read as the runtime reads, bodies around the buffer */
    fuzz_queue_init(&b, mc, nreq, sel);
    reply_reader_reset(&rb);
    feed_init(&f, s, len, sel, bits, nbits);
    for (;;) {
        brc = reply_read(w, &rb, &f.m.in, &b.q, MAX_REQ, fuzz_queue_done, &b);
        if (brc != 0) {
            break;
        }
        const struct msg *m = TAILQ_FIRST(&b.q);
        if (m != NULL && buf_len(&f.m.in.b) > 0) {
            feed_maybe_stream(&f, w->reply_body_left(rb.state, m, buf_head(&f.m.in.b),
                                                     buf_len(&f.m.in.b), f.m.in.holes.bytes));
        }
        if (feed_read(&f, &body) == 0) {
            break;
        }
        if (body > 0) {
            reply_streamed(w, &rb, body);
        }
    }
    CHECK(a.ndone == b.ndone && arc == brc);
    for (size_t i = 0; i < a.ndone; i++) {
        size_t n;
        uint8_t *got = chain_model_flatten(&b.req[i]->rsp, &b.req[i]->rsp_pieces, &n);
        CHECK(n == buf_len(&a.req[i]->rsp) && memcmp(got, buf_head(&a.req[i]->rsp), n) == 0);
        free(got);
    }
    fuzz_queue_free(&a);
    fuzz_queue_free(&b);
    chain_in_reset(&whole);
    buf_free(&whole.b);
    feed_free(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    fuzz_cache_ready(1 << 12);
    uint8_t mode = data[0], sel = data[1];
    const uint8_t *s = data + 2;
    size_t len = size - 2;
    /* the stream's own bytes decide when to stream: no extra input needed */
    const uint8_t *bits = s + len / 2;
    size_t nbits = len - len / 2;

    switch (mode % 4) {
    case 0:
        redis_requests(s, len, sel, bits, nbits);
        break;
    case 1:
        mc_requests(s, len, sel, bits, nbits);
        break;
    case 2:
        replies(false, s, len, sel, bits, nbits);
        break;
    default:
        replies(true, s, len, sel, bits, nbits);
        break;
    }
    return 0;
}
