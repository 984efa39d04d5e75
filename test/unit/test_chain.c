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
#include "mc_reply.h"
#include "proto.h"
#include "proto_mc.h"
#include "proto_redis.h"
#include "redis_reply.h"
#include "reply.h"
#include "sbuf.h"
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

#define MODEL_REQUIRE REQUIRE
#include "../chain_model.h"

#define MBUF 4096
#define MAX_REQ (64u << 20)

static struct chain_pool pool;
static struct msg_cache cache;

/* ---- helpers ---- */

/* A value of n bytes that differs from any other size's. */
static void
sb_value(struct sbuf *b, size_t n, unsigned salt)
{
    sb_reserve(b, n);
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = (uint8_t)((i * 7 + n + salt * 13) % 251);
    }
}

/* A buffer with its pieces, as the bytes a writev would send. */
static struct sbuf
flatten(const struct buf *b, const struct chain *c)
{
    struct sbuf out = { 0 };

    out.p = chain_model_flatten(b, c, &out.len);
    out.cap = out.len + 1;
    return out;
}

static void
assert_same(const struct sbuf *got, const uint8_t *want, size_t len, const char *what, size_t cut)
{
    if (got->len != len || memcmp(got->p, want, len) != 0) {
        ck_abort_msg("%s differs (cut at %zu: %zu bytes, want %zu)", what, cut, got->len, len);
    }
}

/* The runtime's reads (chain_model), on bytes that arrive in two parts:
   `arrived` of them, then the rest. */
struct reader {
    struct chain_model m;
    size_t arrived;
};

/* Whether the runs read ahead (each test runs both ways). */
static bool ahead_mode;

static struct reader
reader_of(const struct sbuf *stream, size_t cut)
{
    struct reader rd = { .m = { .pool = &pool,
                                .src = stream->p,
                                .len = stream->len,
                                .mbuf = MBUF,
                                .ahead = ahead_mode },
                         .arrived = cut };
    return rd;
}

static size_t
model_read(struct reader *r, uint64_t *body)
{
    return chain_model_read(&r->m, r->arrived - r->m.pos, body);
}

/* After the parser of a run took what is buffered: the next read, the
   rest arriving once the first part is all read. False: all read. */
static bool
model_next(struct reader *r, uint64_t *body)
{
    if (r->m.pos == r->arrived) {
        if (r->arrived == r->m.len) {
            return false;
        }
        r->arrived = r->m.len;
    }
    REQUIRE(model_read(r, body) > 0);
    return true;
}

static void
stream_if_wanted(struct reader *r, uint64_t left)
{
    if (chain_in_wants_piece(&r->m.in, left)) {
        chain_in_stream(&r->m.in, left);
        r->m.pieces++;
    }
}

/* ---- chain bookkeeping ---- */

START_TEST(test_take_and_iov)
{
    struct sbuf src = { 0 }, out;
    struct msg *m = msg_get(&cache);

    /* 100 bytes in the buffer, then a body of 3 chunks and a bit read around it */
    sb_value(&src, 100 + 3 * MBUF + 10 + 50, 1);
    ahead_mode = false;
    struct reader rd = reader_of(&src, src.len);
    uint64_t body;
    REQUIRE((model_read(&rd, &body)) == (MBUF)); /* fills the buffer */
    rd.m.in.b.end = 100;                         /* as if only 100 had come */
    rd.m.pos = 100;
    chain_in_stream(&rd.m.in, 3 * MBUF + 10);
    while (rd.m.in.left > 0) {
        model_read(&rd, &body);
        REQUIRE((body) > (0));
    }
    REQUIRE((rd.m.in.holes.bytes) == (3 * MBUF + 10));
    REQUIRE((rd.m.in.holes.head->at) == (100));
    while (rd.m.pos < rd.m.len) {
        model_read(&rd, &body);
        REQUIRE((body) == (0));
    }
    REQUIRE((buf_len(&rd.m.in.b)) == (150));
    out = flatten(&rd.m.in.b, &rd.m.in.holes);
    assert_same(&out, src.p, src.len, "buffer and piece", 0);
    free(out.p);

    /* a piece moves to a msg with the range around it; iov skips a prefix */
    REQUIRE((chain_take(&m->req, &m->req_pieces, buf_head(&rd.m.in.b), &rd.m.in.holes, 40, 120)) ==
            (0));
    REQUIRE((rd.m.in.holes.head) == NULL);
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
    chain_in_consume(&rd.m.in, 150);
    REQUIRE(chain_in_empty(&rd.m.in));
    msg_put(&cache, m);
    chain_model_free(&rd.m);
    free(src.p);
}
END_TEST

/* ---- requests ---- */

/* The sizes tried: around one and two chunks, and the smallest piece. */
static const size_t sizes[] = {
    CHAIN_MIN_PIECE - 1, CHAIN_MIN_PIECE + 1, MBUF + 700, 2 * MBUF - 1, 2 * MBUF, 2 * MBUF + 1
};

struct expect {
    struct sbuf stream;
    size_t off[4], len[4]; /* each request within stream */
    size_t n;
};

static void
expect_add(struct expect *e, const struct sbuf *req)
{
    e->off[e->n] = e->stream.len;
    e->len[e->n] = req->len;
    e->n++;
    sb_add(&e->stream, req->p, req->len);
}

static void
redis_expect(struct expect *e, size_t vlen)
{
    struct sbuf r = { 0 };

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

/* The request the parser completed (total buffered bytes), taken into a
   msg as the runtime does: it must be request `done` of the stream. */
static void
take_request(struct reader *rd, const uint8_t *head, size_t total, const struct expect *e,
             size_t done, size_t cut)
{
    struct sbuf got = { 0 };

    REQUIRE(done < e->n);
    got.p = chain_model_take(&rd->m, &cache, head, total, &got.len);
    assert_same(&got, e->stream.p + e->off[done], e->len[done], "request", cut);
    free(got.p);
}

/* Parse what is buffered; each whole request is taken into a msg and
   compared. Returns the requests done so far. */
static size_t
redis_parse_all(struct reader *rd, struct redis_req *r, const struct expect *e, size_t done,
                size_t cut)
{
    const uint8_t *head;
    size_t len;

    while (chain_model_buffered(&rd->m, &head, &len)) {
        enum redis_parse rc = redis_parse_req(r, head, len, MAX_REQ);
        uint32_t arg = 0;

        if (rc == REDIS_PARSE_AGAIN) {
            uint64_t left = redis_req_body_left(r, len, &arg);
            if (left == 0 || arg == 0 ||
                !redis_cmd_streams(redis_cmd_lookup(head + r->args[0].off, r->args[0].len), arg)) {
                left = 0;
            }
            if (rd->m.in.spill_bytes > 0) {
                uint64_t got = chain_model_unspill(&rd->m, left);
                if (got > 0) {
                    redis_req_skip(r, got);
                }
                continue;
            }
            stream_if_wanted(rd, left);
            return done;
        }
        REQUIRE((rc) == (REDIS_PARSE_OK));
        if (r->argc > 1) {
            /* keys are never read around the buffer: routing reads them there */
            const uint8_t *k = head + r->args[1].off;
            REQUIRE((r->args[1].len == 2 && memcmp(k, "k1", 2) == 0) ||
                    (r->args[1].len == 1 && k[0] == 'a'));
        }
        take_request(rd, head, r->total_len, e, done++, cut);
        redis_req_reset(r);
    }
    return done;
}

static void
mc_expect(struct expect *e, size_t vlen)
{
    struct sbuf r = { 0 };

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
    const uint8_t *head;
    size_t len;

    while (chain_model_buffered(&rd->m, &head, &len)) {
        struct mc_req req;
        enum mc_parse rc = mc_parse_req_skip(head, len, MAX_REQ, rd->m.in.holes.bytes, &req);

        if (rc == MC_PARSE_AGAIN) {
            /* as route_mc does: the data block still to come */
            uint64_t left = 0;
            if (req.data_len > 0 && req.total_len >= 2 && req.total_len - 2 > len) {
                left = req.total_len - 2 - len;
            }
            if (rd->m.in.spill_bytes > 0) {
                (void)chain_model_unspill(&rd->m, left); /* the skip is holes.bytes */
                continue;
            }
            stream_if_wanted(rd, left);
            return done;
        }
        REQUIRE((rc) == (MC_PARSE_OK));
        if (req.nkeys > 0) {
            /* the key is in the buffer */
            REQUIRE(req.keys_end - req.keys_off == 2 && head[req.keys_off] == 'k');
        }
        take_request(rd, head, req.total_len, e, done++, cut);
    }
    return done; /* the runtime never parses without bytes */
}

/* The stream cut at cut, parsed as the runtime does (Redis or memcached).
   Returns the pieces started. */
static size_t
run_requests(bool redis, const struct expect *e, size_t cut)
{
    struct reader rd = reader_of(&e->stream, cut);
    struct redis_arg args[8];
    struct redis_req r;
    size_t done = 0;
    uint64_t body;

    redis_req_init(&r, args, 8);
    for (;;) {
        done = redis ? redis_parse_all(&rd, &r, e, done, cut) : mc_parse_all(&rd, e, done, cut);
        if (!model_next(&rd, &body)) {
            break;
        }
        if (redis && body > 0) {
            redis_req_skip(&r, body); /* memcached's skip is holes.bytes */
        }
    }
    REQUIRE((done) == (e->n));
    REQUIRE(chain_in_empty(&rd.m.in));
    chain_model_free(&rd.m);
    return rd.m.pieces;
}

/* The requests of a value of vlen bytes, cut at every byte, read ahead or
   not. */
static void
requests_cut_everywhere(bool redis, size_t vlen)
{
    struct expect e = { 0 };
    size_t streamed = 0;

    if (redis) {
        redis_expect(&e, vlen);
    } else {
        mc_expect(&e, vlen);
    }
    for (int a = 0; a < 2; a++) {
        ahead_mode = a;
        for (size_t cut = 1; cut <= e.stream.len; cut++) {
            streamed += run_requests(redis, &e, cut) > 0;
        }
    }
    /* every size over a piece's worth was read around the buffer, at most cuts */
    if (vlen > CHAIN_MIN_PIECE + MBUF / 4) {
        REQUIRE(streamed > e.stream.len); /* at most cuts, read ahead or not */
    }
    free(e.stream.p);
}

START_TEST(test_redis_requests_cut_everywhere)
{
    requests_cut_everywhere(true, sizes[_i]);
}
END_TEST

START_TEST(test_mc_requests_cut_everywhere)
{
    requests_cut_everywhere(false, sizes[_i]);
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
run_replies(const struct proto_wire *w, struct msg **msgs, size_t n, const struct sbuf *stream,
            size_t cut)
{
    struct reader rd = reader_of(stream, cut);
    struct reply_reader rr;
    struct msg_tqh q;
    uint64_t body;

    TAILQ_INIT(&q);
    for (size_t i = 0; i < n; i++) {
        TAILQ_INSERT_TAIL(&q, msgs[i], s_tqe);
    }
    reply_reader_reset(&rr);
    for (;;) {
        REQUIRE((reply_read(w, &rr, &rd.m.in, &q, UINT64_MAX, done_cb, &q)) == (0));
        if (reply_stream(w, &rr, &rd.m.in, &q)) {
            rd.m.pieces++;
        }
        if (!model_next(&rd, &body)) {
            break;
        }
        if (body > 0) {
            reply_streamed(w, &rr, body);
        }
    }
    REQUIRE(TAILQ_EMPTY(&q));
    REQUIRE(chain_in_empty(&rd.m.in));
    chain_model_free(&rd.m);
    return rd.m.pieces;
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
    struct sbuf stream = { 0 }, r1 = { 0 }, r2 = { 0 };

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
        struct sbuf g1 = flatten(&m[0]->rsp, &m[0]->rsp_pieces);
        struct sbuf g2 = flatten(&m[1]->rsp, &m[1]->rsp_pieces);
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
    struct sbuf stream = { 0 }, r1 = { 0 };

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
        struct sbuf g = flatten(&m[0]->rsp, &m[0]->rsp_pieces);
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

/* One merge test: each fragment's reply stream and the merged reply. */
struct merge_case {
    const struct proto_wire *w;
    struct sbuf s[2], want;
    const char *what;
    size_t streamed, moved; /* fragment `big` read a piece; the merge kept it */
};

/* p's fragments get s[0] cut at cut0 and s[1] cut at cut1; merged, the
   reply must be want, with fragment big's pieces moved to it. */
static void
merge_cut(struct merge_case *mc, struct msg *p, size_t cut0, size_t cut1, int big)
{
    run_replies(mc->w, &p->frags[0], 1, &mc->s[0], cut0);
    run_replies(mc->w, &p->frags[1], 1, &mc->s[1], cut1);
    mc->streamed += p->frags[big]->rsp_pieces.head != NULL;
    reply_merge(mc->w, p);
    REQUIRE((p->err) == (0));
    mc->moved += p->rsp_pieces.head != NULL;
    struct sbuf got = flatten(&p->rsp, &p->rsp_pieces);
    assert_same(&got, mc->want.p, mc->want.len, mc->what, big ? cut1 : cut0);
    free(got.p);
    free_msg(p);
}

/* Values read into pieces reached the merged reply as pieces. */
static void
merge_done(struct merge_case *mc)
{
    REQUIRE(mc->streamed > 0 && mc->moved > 0);
    free(mc->s[0].p);
    free(mc->s[1].p);
    free(mc->want.p);
}

START_TEST(test_redis_mget_merge_moves_pieces)
{
    /* keys: 0 -> frag 0 (large), 1 -> frag 1 (large), 2 -> frag 0 (nil), 3 -> frag 1 (small) */
    static const uint32_t owner[] = { 0, 1, 0, 1 };
    size_t vlen = 3 * MBUF + 17;
    struct merge_case mc = { .w = &redis_wire, .what = "merged MGET" };
    struct sbuf v0 = { 0 }, v1 = { 0 }, *s0 = &mc.s[0], *s1 = &mc.s[1], *want = &mc.want;

    sb_value(&v0, vlen, 1);
    sb_value(&v1, vlen + 1, 2);
    sb_fmt(s0, "*2\r\n$%zu\r\n", v0.len);
    sb_add(s0, v0.p, v0.len);
    sb_str(s0, "\r\n$-1\r\n");
    sb_fmt(s1, "*2\r\n$%zu\r\n", v1.len);
    sb_add(s1, v1.p, v1.len);
    sb_str(s1, "\r\n$3\r\nabc\r\n");
    sb_fmt(want, "*4\r\n$%zu\r\n", v0.len);
    sb_add(want, v0.p, v0.len);
    sb_fmt(want, "\r\n$%zu\r\n", v1.len);
    sb_add(want, v1.p, v1.len);
    sb_str(want, "\r\n$-1\r\n$3\r\nabc\r\n");
    for (size_t cut = 1; cut <= s0->len; cut += 97) {
        ahead_mode = (cut / 97) % 2;
        merge_cut(&mc, split_parent(MSG_MERGE_ARRAY, 0, 4, owner), cut, s1->len - cut % s1->len, 0);
    }
    merge_done(&mc);
    free(v0.p);
    free(v1.p);
}
END_TEST

START_TEST(test_mc_multiget_merge_moves_pieces)
{
    /* get a b c d: a, c on fragment 0 (c a miss), b, d on fragment 1 */
    static const uint32_t owner[] = { 0, 1, 0, 1 };
    static const char line[] = "get a b c d\r\n";
    size_t vlen = 2 * MBUF + 999;
    struct merge_case mc = { .w = &mc_wire, .what = "merged multi-get" };
    struct sbuf va = { 0 }, vb = { 0 }, *s0 = &mc.s[0], *s1 = &mc.s[1], *want = &mc.want;

    sb_value(&va, vlen, 1);
    sb_value(&vb, vlen + 2, 2);
    sb_fmt(s0, "VALUE a 0 %zu\r\n", va.len);
    sb_add(s0, va.p, va.len);
    sb_str(s0, "\r\nEND\r\n");
    sb_fmt(s1, "VALUE b 0 %zu\r\n", vb.len);
    sb_add(s1, vb.p, vb.len);
    sb_str(s1, "\r\nVALUE d 9 1\r\nz\r\nEND\r\n");
    sb_add(want, s0->p, s0->len - 5);
    sb_add(want, s1->p, s1->len);
    for (size_t cut = 1; cut <= s1->len; cut += 89) {
        struct msg *p = split_parent(MSG_MERGE_VALUES, MC_GET, 4, owner);
        REQUIRE((buf_append(&p->req, line, sizeof(line) - 1)) == (0));
        p->keys_off = 4;
        p->keys_end = sizeof(line) - 3;
        ahead_mode = (cut / 89) % 2;
        merge_cut(&mc, p, s0->len - cut % s0->len, cut, 1);
    }
    merge_done(&mc);
    free(va.p);
    free(vb.p);
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
