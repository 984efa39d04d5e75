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
#include "chain.h"
#include "mc_reply.h"
#include "msg.h"
#include "proto.h"
#include "proto_mc.h"
#include "proto_redis.h"
#include "redis_reply.h"
#include "reply.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)     \
    do {             \
        if (!(c)) {  \
            abort(); \
        }            \
    } while (0)

#define MAX_REQ (1u << 20)
#define MAXREQ 16
#define MAXARGS 64

static struct msg_cache cache;
static bool cache_ready;

/* The runtime's way of reading, on a stream that is all there. */
struct feed {
    struct chain_in in;
    struct chain_pool pool;
    const uint8_t *src;
    size_t pos, len, rsize, mbuf;
    const uint8_t *bits; /* stream decisions, cycled */
    size_t nbits, bit;
    bool ahead; /* read ahead, as for a conn that carries large values */
};

static void
feed_init(struct feed *f, const uint8_t *src, size_t len, uint8_t sel, const uint8_t *bits,
          size_t nbits)
{
    memset(f, 0, sizeof(*f));
    f->src = src;
    f->len = len;
    f->rsize = 1 + (sel & 0x1f) * 3;
    f->mbuf = 64 << ((sel >> 5) & 3);
    f->bits = bits;
    f->nbits = nbits;
    f->ahead = (sel & 0x80) != 0;
    chain_pool_init(&f->pool, 1 + (sel % 7) * 5, 8);
}

static void
feed_free(struct feed *f)
{
    chain_in_reset(&f->in);
    buf_free(&f->in.b);
    chain_pool_destroy(&f->pool);
}

/* One read, as conn_read does. Returns the bytes read (0: the stream is all
   read); *body: those that went into a piece. Reading ahead, the buffer gets
   a header's room and the rest goes to chunks (the spill). */
static size_t
feed_read(struct feed *f, uint64_t *body)
{
    size_t avail = MIN(f->len - f->pos, f->rsize), n = 0;
    struct chain_in *in = &f->in;

    *body = 0;
    if (avail == 0) {
        return 0;
    }
    if (in->left == 0 && in->spill_bytes == 0) {
        size_t want = f->ahead ? CHAIN_HEAD_ROOM : f->mbuf / 4;
        if (in->b.cap - in->b.end < want) {
            CHECK(buf_reserve(&in->b, f->mbuf) == 0);
        }
    }
    if (in->left == 0 && in->spill_bytes == 0 && !f->ahead) {
        n = MIN(avail, in->b.cap - in->b.end);
        memcpy(in->b.data + in->b.end, f->src + f->pos, n);
        in->b.end += n;
    } else {
        struct iovec iov[256];
        int k = chain_in_iov(in, &f->pool, iov, 256, f->ahead);
        CHECK(k > 0);
        for (int i = 0; i < k && n < avail; i++) {
            size_t t = MIN(iov[i].iov_len, avail - n);
            memcpy(iov[i].iov_base, f->src + f->pos + n, t);
            n += t;
        }
        *body = chain_in_commit(in, n);
    }
    f->pos += n;
    return n;
}

/* As the runtime does when the parser wants bytes that were read ahead: a
   body of at least a piece's worth takes them, else a header's worth moves
   to the buffer. Returns the body bytes taken. */
static uint64_t
feed_unspill(struct feed *f, uint64_t left)
{
    if (left >= CHAIN_MIN_PIECE) {
        uint64_t got = chain_in_adopt(&f->in, left);
        if (got > 0) {
            return got;
        }
    }
    CHECK(chain_in_unspill(&f->in, MAX((size_t)CHAIN_HEAD_ROOM, buf_len(&f->in.b))) == 0);
    return 0;
}

/* Whether to read the rest of a body (left bytes) around the buffer. */
static void
feed_maybe_stream(struct feed *f, uint64_t left)
{
    if (left == 0 || f->in.left > 0) {
        return;
    }
    uint8_t b = f->nbits > 0 ? f->bits[f->bit++ % f->nbits] : 1;
    if (b & 1) {
        chain_in_stream(&f->in, left);
    }
}

/* A msg's bytes with its pieces between them. */
static uint8_t *
flatten(const struct buf *b, const struct chain *c, size_t *len)
{
    struct iovec iov[4096];
    size_t bytes, off = 0;
    int n = chain_iov(b, c, 0, iov, 4096, &bytes);
    uint8_t *out = malloc(bytes + 1);

    CHECK(out != NULL && bytes == chain_len(b, c));
    for (int i = 0; i < n; i++) {
        memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    CHECK(off == bytes); /* every piece fit the iovecs */
    *len = bytes;
    return out;
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
    size_t wpos = 0;
    uint64_t body;

    feed_init(&f, s, len, sel, bits, nbits);
    redis_req_init(&c, chain_args, MAXARGS);
    for (;;) {
        if (buf_len(&f.in.b) == 0 && f.in.spill_bytes > 0) {
            CHECK(chain_in_unspill(&f.in, CHAIN_HEAD_ROOM) == 0);
        }
        const uint8_t *head = buf_head(&f.in.b);
        size_t blen = buf_len(&f.in.b);
        if (blen == 0 && feed_read(&f, &body) == 0) {
            break;
        }
        if (blen == 0) {
            continue; /* the parser is never called without bytes */
        }
        enum redis_parse rc = redis_parse(&c, head, blen);
        if (rc == REDIS_PARSE_AGAIN) {
            uint32_t arg = 0;
            uint64_t left = redis_req_body_left(&c, blen, &arg);
            if (f.in.spill_bytes > 0) {
                uint64_t got = feed_unspill(&f, arg > 0 ? left : 0);
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
            redis_error_closes(w.err) || rc == REDIS_PARSE_ERROR && w.err == REDIS_ERR_NONE) {
            break; /* the conn closes here */
        }
        CHECK(c.total_len + f.in.holes.bytes == w.total_len);
        if (!c.is_inline) {
            for (uint32_t i = 0; i < c.argc && i < MAXARGS; i++) {
                CHECK(c.args[i].len == w.args[i].len);
                CHECK(whole_off(&f.in.holes, c.args[i].off) == w.args[i].off);
            }
        }
        struct msg *m = msg_get(&cache);
        CHECK(m != NULL);
        CHECK(chain_take(&m->req, &m->req_pieces, head, &f.in.holes, 0, c.total_len) == 0);
        size_t n;
        uint8_t *got = flatten(&m->req, &m->req_pieces, &n);
        CHECK(n == w.total_len && memcmp(got, s + wpos, n) == 0);
        free(got);
        msg_put(&cache, m);
        chain_in_consume(&f.in, c.total_len);
        CHECK(f.in.holes.head == NULL);
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
    size_t wpos = 0;
    uint64_t body;

    feed_init(&f, s, len, sel, bits, nbits);
    for (;;) {
        if (buf_len(&f.in.b) == 0 && f.in.spill_bytes > 0) {
            CHECK(chain_in_unspill(&f.in, CHAIN_HEAD_ROOM) == 0);
        }
        const uint8_t *head = buf_head(&f.in.b);
        size_t blen = buf_len(&f.in.b);
        if (blen == 0 && feed_read(&f, &body) == 0) {
            break;
        }
        if (blen == 0) {
            continue; /* the parser is never called without bytes */
        }
        enum mc_parse rc = mc_parse_req_skip(head, blen, MAX_REQ, f.in.holes.bytes, &c);
        if (rc == MC_PARSE_AGAIN) {
            uint64_t left = 0;
            if (c.data_len > 0 && c.total_len >= 2 && c.total_len - 2 > blen) {
                left = c.total_len - 2 - blen;
            }
            if (f.in.spill_bytes > 0) {
                (void)feed_unspill(&f, left); /* the skip is holes.bytes */
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
            CHECK(w.line_len == c.line_len && f.in.holes.head == NULL);
            chain_in_consume(&f.in, c.line_len);
            wpos += w.line_len;
            continue;
        }
        CHECK(c.total_len + f.in.holes.bytes == w.total_len);
        struct msg *m = msg_get(&cache);
        CHECK(m != NULL);
        CHECK(chain_take(&m->req, &m->req_pieces, head, &f.in.holes, 0, c.total_len) == 0);
        size_t n;
        uint8_t *got = flatten(&m->req, &m->req_pieces, &n);
        CHECK(n == w.total_len && memcmp(got, s + wpos, n) == 0);
        free(got);
        msg_put(&cache, m);
        chain_in_consume(&f.in, c.total_len);
        wpos += w.total_len;
    }
    feed_free(&f);
}

/* ---- replies ---- */

struct run {
    struct msg *req[MAXREQ];
    size_t nreq, ndone;
    struct msg_tqh q;
    int rc;
};

static int
done_cb(void *arg, struct msg *m, size_t total)
{
    struct run *r = arg;

    CHECK(m == TAILQ_FIRST(&r->q) && total == msg_rsp_len(m));
    TAILQ_REMOVE(&r->q, m, s_tqe);
    m->done = true;
    r->ndone++;
    return 0;
}

static void
run_init(struct run *r, bool mc, size_t n, uint8_t kinds)
{
    memset(r, 0, sizeof(*r));
    TAILQ_INIT(&r->q);
    for (size_t i = 0; i < n; i++) {
        struct msg *m = msg_get(&cache);
        CHECK(m != NULL);
        m->cmd = mc ? (uint16_t)(((kinds >> (i % 8)) & 1) ? MC_SET : MC_GET) : 0;
        m->client = (void *)&cache;
        r->req[r->nreq++] = m;
        TAILQ_INSERT_TAIL(&r->q, m, s_tqe);
    }
}

static void
run_free(struct run *r)
{
    for (size_t i = 0; i < r->nreq; i++) {
        r->req[i]->client = NULL;
        msg_release(&cache, r->req[i]);
    }
}

static void
replies(bool mc, const uint8_t *s, size_t len, uint8_t sel, const uint8_t *bits, size_t nbits)
{
    const struct proto_wire *w = mc ? &mc_wire : &redis_wire;
    size_t nreq = 1 + sel % MAXREQ;
    struct reply_reader ra, rb;
    struct chain_in whole = { 0 };
    struct run a, b;
    struct feed f;
    uint64_t body;

    /* A: everything in one buffer */
    run_init(&a, mc, nreq, sel);
    reply_reader_reset(&ra);
    CHECK(buf_append(&whole.b, s, len) == 0);
    a.rc = reply_read(w, &ra, &whole, &a.q, MAX_REQ, done_cb, &a);

    /* B: read as the runtime reads, bodies around the buffer */
    run_init(&b, mc, nreq, sel);
    reply_reader_reset(&rb);
    feed_init(&f, s, len, sel, bits, nbits);
    for (;;) {
        b.rc = reply_read(w, &rb, &f.in, &b.q, MAX_REQ, done_cb, &b);
        if (b.rc != 0) {
            break;
        }
        const struct msg *m = TAILQ_FIRST(&b.q);
        if (m != NULL && buf_len(&f.in.b) > 0) {
            feed_maybe_stream(&f, w->reply_body_left(rb.state, m, buf_head(&f.in.b),
                                                     buf_len(&f.in.b), f.in.holes.bytes));
        }
        if (feed_read(&f, &body) == 0) {
            break;
        }
        if (body > 0) {
            reply_streamed(w, &rb, body);
        }
    }
    CHECK(a.ndone == b.ndone && a.rc == b.rc);
    for (size_t i = 0; i < a.ndone; i++) {
        size_t n;
        uint8_t *got = flatten(&b.req[i]->rsp, &b.req[i]->rsp_pieces, &n);
        CHECK(n == buf_len(&a.req[i]->rsp) && memcmp(got, buf_head(&a.req[i]->rsp), n) == 0);
        free(got);
    }
    run_free(&a);
    run_free(&b);
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
    if (!cache_ready) {
        msg_cache_init(&cache, 1 << 12);
        cache_ready = true;
    }
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
