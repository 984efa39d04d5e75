/*
 * Large bodies read around the read buffer (chain.h), pure: the pieces'
 * bookkeeping (chain_take, chain_iov, chain_in_consume), and the request
 * and reply parsers driven the way the runtime drives them: reads into a
 * buffer of mbuf_size that stops growing once a body is read into chunks,
 * the parser told of every byte read around it.
 *
 * Every stream is delivered in two parts cut at every byte, and what comes
 * out (a msg's bytes with its pieces between them) must be exactly the
 * requests and replies that went in, for values up to two chunks, both
 * protocols; the split merges (MGET, memcached multi-get) move pieces from
 * fragments to the merged reply intact.
 */
#include "chain.h"
#include "mc_reply.h"
#include "msg.h"
#include "proto.h"
#include "proto_mc.h"
#include "proto_redis.h"
#include "redis_reply.h"
#include "reply.h"
#include "util.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Check writes a record for every ck_assert that passes; the loops here
   make millions, so they test plainly and fail through ck_abort_msg. */
#define REQUIRE(cond)                                             \
    do {                                                          \
        if (!(cond)) {                                            \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
        }                                                         \
    } while (0)

#define MBUF 4096
#define MIN_READ (MBUF / 4) /* the runtime makes room below a quarter buffer */
#define MAX_REQ (64u << 20)

static struct chain_pool pool;
static struct msg_cache cache;

/* ---- helpers ---- */

struct sb {
    uint8_t *p;
    size_t len, cap;
};

static void
sb_reserve(struct sb *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return;
    }
    b->cap = MAX(b->cap * 2, b->len + n + 64);
    b->p = realloc(b->p, b->cap);
    REQUIRE((b->p) != NULL);
}

static void
sb_add(struct sb *b, const void *p, size_t n)
{
    sb_reserve(b, n);
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
}

static void
sb_str(struct sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void
sb_fmt(struct sb *b, const char *fmt, size_t v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), fmt, v);
    sb_add(b, tmp, (size_t)n);
}

/* A value of n bytes that differs from any other size's. */
static void
sb_value(struct sb *b, size_t n, unsigned salt)
{
    sb_reserve(b, n);
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = (uint8_t)((i * 7 + n + salt * 13) % 251);
    }
}

/* A buffer with its pieces, as the bytes a writev would send. */
static struct sb
flatten(const struct buf *b, const struct chain *c)
{
    struct iovec iov[1024];
    struct sb out = { 0 };
    size_t bytes;
    int n = chain_iov(b, c, 0, iov, 1024, &bytes);

    REQUIRE((bytes) == (chain_len(b, c)));
    for (int i = 0; i < n; i++) {
        sb_add(&out, iov[i].iov_base, iov[i].iov_len);
    }
    return out;
}

static void
assert_same(const struct sb *got, const uint8_t *want, size_t len, const char *what, size_t cut)
{
    if (got->len != len || memcmp(got->p, want, len) != 0) {
        ck_abort_msg("%s differs (cut at %zu: %zu bytes, want %zu)", what, cut, got->len, len);
    }
}

/* The runtime's reads (conn_read), on bytes that arrive in two parts;
   with ahead, as for a conn that carries large values. */
struct reader {
    struct chain_in in;
    const uint8_t *src;
    size_t pos, arrived, len;
    bool ahead;
    size_t pieces; /* pieces started, over the run */
};

static size_t
model_read(struct reader *r, uint64_t *body)
{
    size_t avail = r->arrived - r->pos, n = 0;
    struct chain_in *in = &r->in;

    *body = 0;
    if (in->left == 0 && in->spill_bytes == 0) {
        size_t want = r->ahead ? CHAIN_HEAD_ROOM : MIN_READ;
        if (in->b.cap - in->b.end < want) {
            REQUIRE(buf_reserve(&in->b, MBUF) == 0);
        }
    }
    if (in->left == 0 && in->spill_bytes == 0 && !r->ahead) {
        n = MIN(avail, in->b.cap - in->b.end);
        memcpy(in->b.data + in->b.end, r->src + r->pos, n);
        in->b.end += n;
    } else {
        struct iovec iov[256];
        int k = chain_in_iov(in, &pool, iov, 256, r->ahead);
        REQUIRE(k > 0);
        for (int i = 0; i < k && n < avail; i++) {
            size_t t = MIN(iov[i].iov_len, avail - n);
            memcpy(iov[i].iov_base, r->src + r->pos + n, t);
            n += t;
        }
        *body = chain_in_commit(in, n);
    }
    r->pos += n;
    return n;
}

/* Whether the runs read ahead (each test runs both ways). */
static bool ahead_mode;

/* As the runtime does when the parser wants bytes that were read ahead:
   a body of at least a piece's worth takes them, else a header's worth is
   copied into the buffer. Returns the body bytes taken (for the skip). */

static uint64_t
model_unspill(struct reader *r, uint64_t left)
{
    if (left >= CHAIN_MIN_PIECE) {
        uint64_t got = chain_in_adopt(&r->in, left);
        if (got > 0) {
            r->pieces++;
            return got;
        }
    }
    REQUIRE(chain_in_unspill(&r->in, MAX((size_t)CHAIN_HEAD_ROOM, buf_len(&r->in.b))) == 0);
    return 0;
}

static void
stream_if_wanted(struct reader *r, uint64_t left)
{
    if (chain_in_wants_piece(&r->in, left)) {
        chain_in_stream(&r->in, left);
        r->pieces++;
    }
}

/* ---- chain bookkeeping ---- */

START_TEST(test_take_and_iov)
{
    struct chain_in in = { 0 };
    struct reader rd = { 0 };
    struct sb src = { 0 }, out;
    struct msg *m = msg_get(&cache);

    /* 100 bytes in the buffer, then a body of 3 chunks and a bit read around it */
    sb_value(&src, 100 + 3 * MBUF + 10 + 50, 1);
    rd.src = src.p;
    rd.len = rd.arrived = src.len;
    rd.in = in;
    uint64_t body;
    REQUIRE((model_read(&rd, &body)) == (MBUF)); /* fills the buffer */
    rd.in.b.end = 100;                           /* as if only 100 had come */
    rd.pos = 100;
    chain_in_stream(&rd.in, 3 * MBUF + 10);
    while (rd.in.left > 0) {
        model_read(&rd, &body);
        REQUIRE((body) > (0));
    }
    REQUIRE((rd.in.holes.bytes) == (3 * MBUF + 10));
    REQUIRE((rd.in.holes.head->at) == (100));
    while (rd.pos < rd.len) {
        model_read(&rd, &body);
        REQUIRE((body) == (0));
    }
    REQUIRE((buf_len(&rd.in.b)) == (150));
    out = flatten(&rd.in.b, &rd.in.holes);
    assert_same(&out, src.p, src.len, "buffer and piece", 0);
    free(out.p);

    /* a piece moves to a msg with the range around it; iov skips a prefix */
    REQUIRE((chain_take(&m->req, &m->req_pieces, buf_head(&rd.in.b), &rd.in.holes, 40, 120)) ==
            (0));
    REQUIRE((rd.in.holes.head) == NULL);
    REQUIRE((msg_req_len(m)) == (80 + 3 * MBUF + 10));
    REQUIRE((m->req_pieces.head->at) == (60));
    out = flatten(&m->req, &m->req_pieces);
    assert_same(&out, src.p + 40, out.len, "taken range", 0);
    REQUIRE((out.len) == (80 + 3 * MBUF + 10));
    free(out.p);
    struct iovec iov[8];
    size_t bytes;
    int n = chain_iov(&m->req, &m->req_pieces, 60 + MBUF + 5, iov, 8, &bytes);
    REQUIRE((n) == (4)); /* rest of chunk 2, chunk 3, the 10, the 20 after */
    REQUIRE((bytes) == (msg_req_len(m) - 60 - MBUF - 5));
    REQUIRE(memcmp(iov[0].iov_base, src.p + 100 + MBUF + 5, 8) == 0);

    /* consuming gives back pieces in the consumed range */
    chain_in_consume(&rd.in, 150);
    REQUIRE(chain_in_empty(&rd.in));
    msg_put(&cache, m);
    chain_in_reset(&rd.in);
    buf_free(&rd.in.b);
    free(src.p);
}
END_TEST

/* ---- requests ---- */

/* The sizes tried: around one and two chunks, and the smallest piece. */
static const size_t sizes[] = {
    CHAIN_MIN_PIECE - 1, CHAIN_MIN_PIECE + 1, MBUF + 700, 2 * MBUF - 1, 2 * MBUF, 2 * MBUF + 1
};

struct expect {
    struct sb stream;
    size_t off[4], len[4]; /* each request within stream */
    size_t n;
};

static void
expect_add(struct expect *e, const struct sb *req)
{
    e->off[e->n] = e->stream.len;
    e->len[e->n] = req->len;
    e->n++;
    sb_add(&e->stream, req->p, req->len);
}

static void
redis_expect(struct expect *e, size_t vlen)
{
    struct sb r = { 0 };

    /* SET k1 <big>, GET k1, MSET a <big'> b x, PING */
    sb_str(&r, "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n");
    sb_fmt(&r, "$%zu\r\n", vlen);
    sb_value(&r, vlen, 1);
    sb_str(&r, "\r\n");
    expect_add(e, &r);
    r.len = 0;
    sb_str(&r, "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n");
    expect_add(e, &r);
    r.len = 0;
    sb_str(&r, "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n");
    sb_fmt(&r, "$%zu\r\n", vlen + 3);
    sb_value(&r, vlen + 3, 2);
    sb_str(&r, "\r\n$1\r\nb\r\n$1\r\nx\r\n");
    expect_add(e, &r);
    r.len = 0;
    sb_str(&r, "PING\r\n");
    expect_add(e, &r);
    free(r.p);
}

/* Parse what is buffered; each whole request is taken into a msg and
   compared. Returns the requests done so far. */
static size_t
redis_parse_all(struct reader *rd, struct redis_req *r, const struct expect *e, size_t done,
                size_t cut)
{
    for (;;) {
        const uint8_t *head = buf_head(&rd->in.b);
        size_t len = buf_len(&rd->in.b);
        uint32_t arg = 0;

        if (len == 0 && rd->in.spill_bytes > 0) {
            REQUIRE(chain_in_unspill(&rd->in, CHAIN_HEAD_ROOM) == 0);
            continue;
        }
        if (len == 0) {
            return done;
        }
        enum redis_parse rc = redis_parse_req(r, head, len, MAX_REQ);

        if (rc == REDIS_PARSE_AGAIN) {
            uint64_t left = redis_req_body_left(r, len, &arg);
            if (left == 0 || arg == 0 ||
                !redis_cmd_streams(redis_cmd_lookup(head + r->args[0].off, r->args[0].len), arg)) {
                left = 0;
            }
            if (rd->in.spill_bytes > 0) {
                uint64_t got = model_unspill(rd, left);
                if (got > 0) {
                    redis_req_skip(r, got);
                }
                continue;
            }
            stream_if_wanted(rd, left);
            return done;
        }
        REQUIRE((rc) == (REDIS_PARSE_OK));
        REQUIRE((done) < (e->n));
        if (r->argc > 1) {
            /* keys are never read around the buffer: routing reads them there */
            const uint8_t *k = head + r->args[1].off;
            REQUIRE((r->args[1].len == 2 && memcmp(k, "k1", 2) == 0) ||
                    (r->args[1].len == 1 && k[0] == 'a'));
        }
        struct msg *m = msg_get(&cache);
        REQUIRE((chain_take(&m->req, &m->req_pieces, head, &rd->in.holes, 0, r->total_len)) == (0));
        chain_in_consume(&rd->in, r->total_len);
        struct sb got = flatten(&m->req, &m->req_pieces);
        assert_same(&got, e->stream.p + e->off[done], e->len[done], "request", cut);
        free(got.p);
        msg_put(&cache, m);
        redis_req_reset(r);
        done++;
    }
}

static size_t
run_redis_requests(const struct expect *e, size_t cut)
{
    struct reader rd = {
        .src = e->stream.p, .len = e->stream.len, .arrived = cut, .ahead = ahead_mode
    };
    struct redis_arg args[8];
    struct redis_req r;
    size_t done = 0;
    uint64_t body;

    redis_req_init(&r, args, 8);
    for (;;) {
        done = redis_parse_all(&rd, &r, e, done, cut);
        if (rd.pos == rd.arrived) {
            if (rd.arrived == rd.len) {
                break;
            }
            rd.arrived = rd.len;
        }
        REQUIRE((model_read(&rd, &body)) > (0));
        if (body > 0) {
            redis_req_skip(&r, body);
        }
    }
    REQUIRE((done) == (e->n));
    REQUIRE(chain_in_empty(&rd.in));
    chain_in_reset(&rd.in);
    buf_free(&rd.in.b);
    return rd.pieces;
}

START_TEST(test_redis_requests_cut_everywhere)
{
    struct expect e = { 0 };
    size_t streamed = 0;

    redis_expect(&e, sizes[_i]);
    for (int a = 0; a < 2; a++) {
        ahead_mode = a;
        for (size_t cut = 1; cut <= e.stream.len; cut++) {
            streamed += run_redis_requests(&e, cut) > 0;
        }
    }
    /* values of more than a piece's worth were read around the buffer */
    /* every size over a piece's worth was read around the buffer, at most cuts */
    if (sizes[_i] > CHAIN_MIN_PIECE + MBUF / 4) {
        REQUIRE(streamed > e.stream.len); /* at most cuts, read ahead or not */
    }
    free(e.stream.p);
}
END_TEST

static void
mc_expect(struct expect *e, size_t vlen)
{
    struct sb r = { 0 };

    sb_fmt(&r, "set k1 0 0 %zu\r\n", vlen);
    sb_value(&r, vlen, 1);
    sb_str(&r, "\r\n");
    expect_add(e, &r);
    r.len = 0;
    sb_str(&r, "get k1\r\n");
    expect_add(e, &r);
    r.len = 0;
    sb_fmt(&r, "set k2 7 0 %zu noreply\r\n", vlen + 3);
    sb_value(&r, vlen + 3, 2);
    sb_str(&r, "\r\n");
    expect_add(e, &r);
    r.len = 0;
    sb_str(&r, "version\r\n");
    expect_add(e, &r);
    free(r.p);
}

static size_t
mc_parse_all(struct reader *rd, const struct expect *e, size_t done, size_t cut)
{
    for (;;) {
        const uint8_t *head = buf_head(&rd->in.b);
        size_t len = buf_len(&rd->in.b);
        struct mc_req req;

        if (len == 0 && rd->in.spill_bytes > 0) {
            REQUIRE(chain_in_unspill(&rd->in, CHAIN_HEAD_ROOM) == 0);
            continue;
        }
        if (len == 0) {
            return done; /* the runtime never parses without bytes */
        }
        enum mc_parse rc = mc_parse_req_skip(head, len, MAX_REQ, rd->in.holes.bytes, &req);

        if (rc == MC_PARSE_AGAIN) {
            /* as route_mc does: the data block still to come */
            uint64_t left = 0;
            if (req.data_len > 0 && req.total_len >= 2 && req.total_len - 2 > len) {
                left = req.total_len - 2 - len;
            }
            if (rd->in.spill_bytes > 0) {
                (void)model_unspill(rd, left); /* the skip is holes.bytes */
                continue;
            }
            stream_if_wanted(rd, left);
            return done;
        }
        REQUIRE((rc) == (MC_PARSE_OK));
        REQUIRE((done) < (e->n));
        struct msg *m = msg_get(&cache);
        REQUIRE((chain_take(&m->req, &m->req_pieces, head, &rd->in.holes, 0, req.total_len)) ==
                (0));
        if (req.nkeys > 0) {
            /* the key is in the buffer */
            REQUIRE(req.keys_end - req.keys_off == 2 && head[req.keys_off] == 'k');
        }
        chain_in_consume(&rd->in, req.total_len);
        struct sb got = flatten(&m->req, &m->req_pieces);
        assert_same(&got, e->stream.p + e->off[done], e->len[done], "request", cut);
        free(got.p);
        msg_put(&cache, m);
        done++;
    }
}

static size_t
run_mc_requests(const struct expect *e, size_t cut)
{
    struct reader rd = {
        .src = e->stream.p, .len = e->stream.len, .arrived = cut, .ahead = ahead_mode
    };
    size_t done = 0;
    uint64_t body;

    for (;;) {
        done = mc_parse_all(&rd, e, done, cut);
        if (rd.pos == rd.arrived) {
            if (rd.arrived == rd.len) {
                break;
            }
            rd.arrived = rd.len;
        }
        REQUIRE((model_read(&rd, &body)) > (0));
    }
    REQUIRE((done) == (e->n));
    REQUIRE(chain_in_empty(&rd.in));
    chain_in_reset(&rd.in);
    buf_free(&rd.in.b);
    return rd.pieces;
}

START_TEST(test_mc_requests_cut_everywhere)
{
    struct expect e = { 0 };
    size_t streamed = 0;

    mc_expect(&e, sizes[_i]);
    for (int a = 0; a < 2; a++) {
        ahead_mode = a;
        for (size_t cut = 1; cut <= e.stream.len; cut++) {
            streamed += run_mc_requests(&e, cut) > 0;
        }
    }
    /* every size over a piece's worth was read around the buffer, at most cuts */
    if (sizes[_i] > CHAIN_MIN_PIECE + MBUF / 4) {
        REQUIRE(streamed > e.stream.len); /* at most cuts, read ahead or not */
    }
    free(e.stream.p);
}
END_TEST

/* ---- replies ---- */

static int
done_cb(void *arg, struct msg *m, size_t total)
{
    struct msg_tqh *q = arg;

    REQUIRE((m) == (TAILQ_FIRST(q)));
    REQUIRE((total) == (msg_rsp_len(m)));
    TAILQ_REMOVE(q, m, s_tqe);
    m->done = true;
    return 0;
}

/* Feed one server's reply stream, cut at cut, to msgs[0..n) in order. */
static size_t
run_replies(const struct proto_wire *w, struct msg **msgs, size_t n, const struct sb *stream,
            size_t cut)
{
    struct reader rd = {
        .src = stream->p, .len = stream->len, .arrived = cut, .ahead = ahead_mode
    };
    struct reply_reader rr;
    struct msg_tqh q;
    uint64_t body;

    TAILQ_INIT(&q);
    for (size_t i = 0; i < n; i++) {
        TAILQ_INSERT_TAIL(&q, msgs[i], s_tqe);
    }
    reply_reader_reset(&rr);
    for (;;) {
        REQUIRE((reply_read(w, &rr, &rd.in, &q, UINT64_MAX, done_cb, &q)) == (0));
        if (reply_stream(w, &rr, &rd.in, &q)) {
            rd.pieces++;
        }
        if (rd.pos == rd.arrived) {
            if (rd.arrived == rd.len) {
                break;
            }
            rd.arrived = rd.len;
        }
        REQUIRE((model_read(&rd, &body)) > (0));
        if (body > 0) {
            reply_streamed(w, &rr, body);
        }
    }
    REQUIRE(TAILQ_EMPTY(&q));
    REQUIRE(chain_in_empty(&rd.in));
    chain_in_reset(&rd.in);
    buf_free(&rd.in.b);
    return rd.pieces;
}

static struct msg *
new_msg(uint16_t cmd)
{
    struct msg *m = msg_get(&cache);

    REQUIRE((m) != NULL);
    m->cmd = cmd;
    m->client = (void *)&cache; /* someone waits for the reply */
    return m;
}

static void
free_msg(struct msg *m)
{
    m->client = NULL;
    msg_release(&cache, m);
}

START_TEST(test_redis_replies_cut_everywhere)
{
    size_t vlen = sizes[_i], streamed = 0;
    struct sb stream = { 0 }, r1 = { 0 }, r2 = { 0 };

    /* GET's bulk, then an array of two values (one large) and a nil */
    sb_fmt(&r1, "$%zu\r\n", vlen);
    sb_value(&r1, vlen, 1);
    sb_str(&r1, "\r\n");
    sb_str(&r2, "*3\r\n$2\r\nab\r\n");
    sb_fmt(&r2, "$%zu\r\n", vlen + 1);
    sb_value(&r2, vlen + 1, 2);
    sb_str(&r2, "\r\n$-1\r\n");
    sb_add(&stream, r1.p, r1.len);
    sb_add(&stream, r2.p, r2.len);
    sb_str(&stream, "+OK\r\n");
    for (size_t i = 0; i < 2 * stream.len; i++) {
        size_t cut = 1 + i % stream.len;
        struct msg *m[3] = { new_msg(0), new_msg(0), new_msg(0) };
        ahead_mode = i >= stream.len;
        (void)run_replies(&redis_wire, m, 3, &stream, cut);
        streamed += m[0]->rsp_pieces.head != NULL;
        struct sb g1 = flatten(&m[0]->rsp, &m[0]->rsp_pieces);
        struct sb g2 = flatten(&m[1]->rsp, &m[1]->rsp_pieces);
        assert_same(&g1, r1.p, r1.len, "GET reply", cut);
        assert_same(&g2, r2.p, r2.len, "array reply", cut);
        REQUIRE(buf_len(&m[2]->rsp) == 5);
        free(g1.p);
        free(g2.p);
        for (int k = 0; k < 3; k++) {
            free_msg(m[k]);
        }
    }
    if (vlen > CHAIN_MIN_PIECE + MBUF / 4) {
        REQUIRE(streamed > stream.len); /* at most cuts, read ahead or not */
    }
    free(stream.p);
    free(r1.p);
    free(r2.p);
}
END_TEST

START_TEST(test_mc_replies_cut_everywhere)
{
    size_t vlen = sizes[_i], streamed = 0;
    struct sb stream = { 0 }, r1 = { 0 };

    /* a get of two large values, then a set's STORED */
    sb_fmt(&r1, "VALUE a 1 %zu\r\n", vlen);
    sb_value(&r1, vlen, 1);
    sb_fmt(&r1, "\r\nVALUE b 2 %zu\r\n", vlen + 5);
    sb_value(&r1, vlen + 5, 2);
    sb_str(&r1, "\r\nEND\r\n");
    sb_add(&stream, r1.p, r1.len);
    sb_str(&stream, "STORED\r\n");
    for (size_t i = 0; i < 2 * stream.len; i++) {
        size_t cut = 1 + i % stream.len;
        struct msg *m[2] = { new_msg(MC_GET), new_msg(MC_SET) };
        ahead_mode = i >= stream.len;
        (void)run_replies(&mc_wire, m, 2, &stream, cut);
        streamed += m[0]->rsp_pieces.head != NULL;
        struct sb g = flatten(&m[0]->rsp, &m[0]->rsp_pieces);
        assert_same(&g, r1.p, r1.len, "get reply", cut);
        REQUIRE(buf_len(&m[1]->rsp) == 8);
        free(g.p);
        free_msg(m[0]);
        free_msg(m[1]);
    }
    if (vlen > CHAIN_MIN_PIECE + MBUF / 4) {
        REQUIRE(streamed > stream.len); /* at most cuts, read ahead or not */
    }
    free(stream.p);
    free(r1.p);
}
END_TEST

/* ---- merges move pieces ---- */

/* A split parent over two fragments; key i lives in fragment owner[i]. */
static struct msg *
split_parent(enum msg_merge merge, uint16_t cmd, uint32_t nkeys, const uint32_t *owner)
{
    struct msg *p = new_msg(cmd);
    struct msg_split sp;

    REQUIRE((msg_split_alloc(p, nkeys, 2, 2, &sp)) == (0));
    for (uint32_t i = 0; i < nkeys; i++) {
        msg_split_add(p, &sp, i, owner[i]);
    }
    p->nkeys = nkeys;
    p->merge = (uint8_t)merge;
    for (uint32_t f = 0; f < sp.nfrags; f++) {
        struct msg *fr = msg_get(&cache);
        fr->parent = p;
        fr->cmd = cmd;
        p->frags[f] = fr;
        p->nfrags++;
    }
    return p;
}

START_TEST(test_redis_mget_merge_moves_pieces)
{
    /* keys: 0 -> frag 0 (large), 1 -> frag 1 (large), 2 -> frag 0 (nil), 3 -> frag 1 (small) */
    static const uint32_t owner[] = { 0, 1, 0, 1 };
    size_t vlen = 3 * MBUF + 17, streamed = 0, moved = 0;
    struct sb v0 = { 0 }, v1 = { 0 }, s0 = { 0 }, s1 = { 0 }, want = { 0 };

    sb_value(&v0, vlen, 1);
    sb_value(&v1, vlen + 1, 2);
    sb_fmt(&s0, "*2\r\n$%zu\r\n", v0.len);
    sb_add(&s0, v0.p, v0.len);
    sb_str(&s0, "\r\n$-1\r\n");
    sb_fmt(&s1, "*2\r\n$%zu\r\n", v1.len);
    sb_add(&s1, v1.p, v1.len);
    sb_str(&s1, "\r\n$3\r\nabc\r\n");
    sb_fmt(&want, "*4\r\n$%zu\r\n", v0.len);
    sb_add(&want, v0.p, v0.len);
    sb_fmt(&want, "\r\n$%zu\r\n", v1.len);
    sb_add(&want, v1.p, v1.len);
    sb_str(&want, "\r\n$-1\r\n$3\r\nabc\r\n");
    for (size_t cut = 1; cut <= s0.len; cut += 97) {
        struct msg *p = split_parent(MSG_MERGE_ARRAY, 0, 4, owner);
        ahead_mode = (cut / 97) % 2;
        run_replies(&redis_wire, &p->frags[0], 1, &s0, cut);
        run_replies(&redis_wire, &p->frags[1], 1, &s1, s1.len - cut % s1.len);
        streamed += p->frags[0]->rsp_pieces.head != NULL;
        reply_merge(&redis_wire, p);
        REQUIRE((p->err) == (0));
        moved += p->rsp_pieces.head != NULL;
        struct sb got = flatten(&p->rsp, &p->rsp_pieces);
        assert_same(&got, want.p, want.len, "merged MGET", cut);
        free(got.p);
        free_msg(p);
    }
    /* values read into pieces reached the merged reply as pieces */
    REQUIRE(streamed > 0 && moved > 0);
    free(v0.p);
    free(v1.p);
    free(s0.p);
    free(s1.p);
    free(want.p);
}
END_TEST

START_TEST(test_mc_multiget_merge_moves_pieces)
{
    /* get a b c d: a, c on fragment 0 (c a miss), b, d on fragment 1 */
    static const uint32_t owner[] = { 0, 1, 0, 1 };
    static const char line[] = "get a b c d\r\n";
    size_t vlen = 2 * MBUF + 999, streamed = 0, moved = 0;
    struct sb va = { 0 }, vb = { 0 }, s0 = { 0 }, s1 = { 0 }, want = { 0 };

    sb_value(&va, vlen, 1);
    sb_value(&vb, vlen + 2, 2);
    sb_fmt(&s0, "VALUE a 0 %zu\r\n", va.len);
    sb_add(&s0, va.p, va.len);
    sb_str(&s0, "\r\nEND\r\n");
    sb_fmt(&s1, "VALUE b 0 %zu\r\n", vb.len);
    sb_add(&s1, vb.p, vb.len);
    sb_str(&s1, "\r\nVALUE d 9 1\r\nz\r\nEND\r\n");
    sb_add(&want, s0.p, s0.len - 5);
    sb_add(&want, s1.p, s1.len);
    for (size_t cut = 1; cut <= s1.len; cut += 89) {
        struct msg *p = split_parent(MSG_MERGE_VALUES, MC_GET, 4, owner);
        REQUIRE((buf_append(&p->req, line, sizeof(line) - 1)) == (0));
        p->keys_off = 4;
        p->keys_end = sizeof(line) - 3;
        ahead_mode = (cut / 89) % 2;
        run_replies(&mc_wire, &p->frags[0], 1, &s0, s0.len - cut % s0.len);
        run_replies(&mc_wire, &p->frags[1], 1, &s1, cut);
        streamed += p->frags[1]->rsp_pieces.head != NULL;
        reply_merge(&mc_wire, p);
        REQUIRE((p->err) == (0));
        moved += p->rsp_pieces.head != NULL;
        struct sb got = flatten(&p->rsp, &p->rsp_pieces);
        assert_same(&got, want.p, want.len, "merged multi-get", cut);
        free(got.p);
        free_msg(p);
    }
    REQUIRE(streamed > 0 && moved > 0);
    free(va.p);
    free(vb.p);
    free(s0.p);
    free(s1.p);
    free(want.p);
}
END_TEST

static Suite *
chain_suite(void)
{
    Suite *s = suite_create("chain");
    TCase *t = tcase_create("chain");

    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_take_and_iov);
    tcase_add_loop_test(t, test_redis_requests_cut_everywhere, 0, (int)ARRAY_SIZE(sizes));
    tcase_add_loop_test(t, test_mc_requests_cut_everywhere, 0, (int)ARRAY_SIZE(sizes));
    tcase_add_loop_test(t, test_redis_replies_cut_everywhere, 0, (int)ARRAY_SIZE(sizes));
    tcase_add_loop_test(t, test_mc_replies_cut_everywhere, 0, (int)ARRAY_SIZE(sizes));
    tcase_add_test(t, test_redis_mget_merge_moves_pieces);
    tcase_add_test(t, test_mc_multiget_merge_moves_pieces);
    suite_add_tcase(s, t);
    return s;
}

int
main(void)
{
    chain_pool_init(&pool, MBUF, 64);
    msg_cache_init(&cache, MBUF);
    SRunner *sr = srunner_create(chain_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    msg_cache_destroy(&cache);
    chain_pool_destroy(&pool);
    return failed == 0 ? 0 : 1;
}
