/*
 * Split planning and reassembly, pure: msg_split_add (which fragment each
 * key goes to), reply_read (a server's reply stream paired with its queue)
 * and reply_merge (a split request's reply from its fragments'), for both
 * protocols.
 *
 * Each case is a multi-key request over a few "servers", each holding some
 * of the keys. Its fragments sit in their servers' queues between unsplit
 * requests (a pipeline mixing split and unsplit commands); each server's
 * reply stream, as the real server would send it, is fed through
 * reply_read whole and split in two at every byte; fragments complete in
 * every order; and the merged reply must be exactly what one server holding
 * every key would have answered. Fragments that fail and parts that carry
 * a backend error are checked too.
 *
 * RESP3 (redis3_wire) the same way, with pushes in the streams: a push is
 * no request's reply, so it must reach none of them, wherever the stream
 * is cut; and the RESP3 forms of the merged replies (nulls, blob errors,
 * verbatim strings, maps).
 */
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

#define NSERVERS 3
#define MAXKEYS 16

/* A byte string being built. */
struct sb {
    char *p;
    size_t len;
};

static void
sb_add(struct sb *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    ck_assert_ptr_nonnull(b->p);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_fmt(struct sb *b, const char *fmt, const char *arg)
{
    char tmp[256];
    int n = snprintf(tmp, sizeof(tmp), fmt, arg);
    sb_add(b, tmp, (size_t)n);
}

/* The test's data: which server owns a key, and its value there (NULL: a miss). */
static uint32_t
owner(const char *key)
{
    return (uint32_t)(key[strlen(key) - 1] - '0') % NSERVERS;
}

static const char *
value_of(const char *key)
{
    static char v[64];

    if (strchr(key, 'x') != NULL) {
        return NULL; /* keys with an x are misses */
    }
    snprintf(v, sizeof(v), "val-%s", key);
    return v;
}

/* What a server speaking w answers for a request on the given keys. */
static void
answer(const struct proto_wire *w, enum msg_merge merge, const char *const *keys, size_t n,
       struct sb *out)
{
    if (w->id == PROTO_MEMCACHED) {
        for (size_t i = 0; i < n; i++) {
            const char *v = value_of(keys[i]);
            if (v != NULL) {
                char hdr[128];
                int k = snprintf(hdr, sizeof(hdr), "VALUE %s 0 %zu\r\n", keys[i], strlen(v));
                sb_add(out, hdr, (size_t)k);
                sb_add(out, v, strlen(v));
                sb_add(out, "\r\n", 2);
            }
        }
        sb_add(out, "END\r\n", 5);
        return;
    }
    char hdr[32];
    switch (merge) {
    case MSG_MERGE_ARRAY:
        snprintf(hdr, sizeof(hdr), "*%zu\r\n", n);
        sb_add(out, hdr, strlen(hdr));
        for (size_t i = 0; i < n; i++) {
            const char *v = value_of(keys[i]);
            if (v == NULL && w == &redis3_wire) {
                sb_add(out, "_\r\n", 3); /* RESP3's null */
            } else if (v == NULL) {
                sb_add(out, "$-1\r\n", 5);
            } else {
                snprintf(hdr, sizeof(hdr), "$%zu\r\n", strlen(v));
                sb_add(out, hdr, strlen(hdr));
                sb_add(out, v, strlen(v));
                sb_add(out, "\r\n", 2);
            }
        }
        return;
    case MSG_MERGE_SUM: {
        size_t hits = 0;
        for (size_t i = 0; i < n; i++) {
            hits += value_of(keys[i]) != NULL;
        }
        snprintf(hdr, sizeof(hdr), ":%zu\r\n", hits);
        sb_add(out, hdr, strlen(hdr));
        return;
    }
    default:
        sb_add(out, "+OK\r\n", 5);
        return;
    }
}

static struct msg_cache cache;

/* A request of its own (not split), to sit in a server queue around fragments. */
static struct msg *
plain_msg(enum proto_id proto)
{
    struct msg *m = msg_get(&cache);

    ck_assert_ptr_nonnull(m);
    m->cmd = proto == PROTO_MEMCACHED ? (uint16_t)MC_GET : 0;
    m->client = (void *)&cache; /* someone waits for its reply */
    return m;
}

/* The parent of a split of keys[0..n), planned over NSERVERS. */
static struct msg *
split_msg(enum proto_id proto, enum msg_merge merge, const char *const *keys, uint32_t n,
          struct msg_split *sp)
{
    struct msg *p = msg_get(&cache);
    struct sb line = { 0 };

    ck_assert_ptr_nonnull(p);
    p->merge = (uint8_t)merge;
    p->cmd = proto == PROTO_MEMCACHED ? (uint16_t)MC_GET : 0;
    p->client = (void *)&cache;
    ck_assert_int_eq(msg_split_alloc(p, n, NSERVERS, NSERVERS, sp), 0);
    for (uint32_t i = 0; i < n; i++) {
        msg_split_add(p, sp, i, owner(keys[i]));
    }
    p->nkeys = n;
    /* memcached's merge walks the original line's keys */
    sb_add(&line, "get", 3);
    for (uint32_t i = 0; i < n; i++) {
        sb_fmt(&line, " %s", keys[i]);
    }
    p->keys_off = 4;
    p->keys_end = line.len;
    sb_add(&line, "\r\n", 2);
    ck_assert_int_eq(buf_append(&p->req, line.p, line.len), 0);
    free(line.p);
    for (uint32_t f = 0; f < sp->nfrags; f++) {
        struct msg *fr = msg_get(&cache);
        ck_assert_ptr_nonnull(fr);
        fr->parent = p;
        fr->cmd = p->cmd;
        fr->nkeys = sp->frag_nkeys[f];
        p->frags[f] = fr;
        p->nfrags++;
    }
    return p;
}

/* reply_read's callback: take m off the queue; a fragment counts toward its parent. */
static int
done_cb(void *arg, struct msg *m, size_t total)
{
    struct msg_tqh *q = arg;

    (void)total;
    TAILQ_REMOVE(q, m, s_tqe);
    m->done = true;
    if (m->parent != NULL) {
        m->parent->nfrags_done++;
    }
    return 0;
}

/* Feed stream to q's reader in two pieces, cut at `cut`. */
static void
feed(const struct proto_wire *w, struct msg_tqh *q, const struct sb *stream, size_t cut)
{
    struct reply_reader rr;
    struct chain_in in = { 0 };

    reply_reader_reset(&rr);
    ck_assert_int_eq(buf_append(&in.b, stream->p, cut), 0);
    ck_assert_int_eq(reply_read(w, &rr, &in, q, UINT64_MAX, done_cb, q), 0);
    ck_assert_int_eq(buf_append(&in.b, stream->p + cut, stream->len - cut), 0);
    ck_assert_int_eq(reply_read(w, &rr, &in, q, UINT64_MAX, done_cb, q), 0);
    ck_assert_uint_eq(buf_len(&in.b), 0);
    ck_assert(TAILQ_EMPTY(q));
    chain_in_reset(&in);
    buf_free(&in.b);
}

static void
free_msg(struct msg *m)
{
    m->client = NULL;
    m->parent = NULL;
    msg_release(&cache, m);
}

/* Pushes a RESP3 server sends between replies: a pub/sub message and a
   client-side-caching invalidation. */
static const char push_msg[] = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
static const char push_inval[] = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nk1\r\n";

/*
 * One case: keys over NSERVERS; each server's queue is
 * [plain, fragment, plain]; its stream is fed cut at every byte (fragments
 * completing in server order 0,1,2 and, through `order`, any other), then
 * merged and compared with one server's answer for all the keys. Over
 * RESP3 the stream also has a push before, between and after the replies
 * to the fragment (the last one before the plain reply still awaited).
 */
static void
run_case(const struct proto_wire *w, enum msg_merge merge, const char *const *keys, uint32_t n,
         const uint32_t *order)
{
    enum proto_id proto = w->id;
    bool resp3 = w == &redis3_wire;
    struct msg_split sp;
    struct sb want = { 0 };
    const char *fkeys[NSERVERS][MAXKEYS];
    size_t nf[NSERVERS] = { 0 };
    static const char *const plain_key[] = { "plainA0" };
    struct sb plain = { 0 };

    answer(w, merge, keys, n, &want);
    answer(w, proto == PROTO_MEMCACHED ? MSG_MERGE_VALUES : MSG_MERGE_ARRAY, plain_key, 1, &plain);
    struct msg *p = split_msg(proto, merge, keys, n, &sp);
    ck_assert_uint_gt(sp.nfrags, 1);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t f = p->key_frag[i];
        ck_assert_uint_eq(sp.frag_server[f], owner(keys[i]));
        fkeys[f][nf[f]++] = keys[i];
    }
    for (uint32_t k = 0; k < sp.nfrags; k++) {
        uint32_t f = order[k] % sp.nfrags;
        struct sb stream = { 0 };
        if (resp3) {
            sb_add(&stream, push_msg, strlen(push_msg));
        }
        sb_add(&stream, plain.p, plain.len);
        if (resp3) {
            sb_add(&stream, push_inval, strlen(push_inval));
        }
        answer(w, merge, fkeys[f], nf[f], &stream);
        if (resp3) {
            sb_add(&stream, push_msg, strlen(push_msg));
        }
        sb_add(&stream, plain.p, plain.len);
        for (size_t cut = 0; cut <= stream.len; cut++) {
            struct msg_tqh q;
            struct msg *a = plain_msg(proto), *b = plain_msg(proto);
            struct msg *fr = p->frags[f];
            TAILQ_INIT(&q);
            TAILQ_INSERT_TAIL(&q, a, s_tqe);
            TAILQ_INSERT_TAIL(&q, fr, s_tqe);
            TAILQ_INSERT_TAIL(&q, b, s_tqe);
            buf_reset(&fr->rsp);
            fr->done = false;
            p->nfrags_done = k;
            feed(w, &q, &stream, cut);
            /* each reply went to its own request, none crossed */
            ck_assert(buf_len(&a->rsp) == plain.len &&
                      memcmp(buf_head(&a->rsp), plain.p, plain.len) == 0);
            ck_assert(buf_len(&b->rsp) == plain.len &&
                      memcmp(buf_head(&b->rsp), plain.p, plain.len) == 0);
            ck_assert(fr->done);
            ck_assert_uint_eq(p->nfrags_done, k + 1);
            if (proto == PROTO_MEMCACHED) {
                /* the units the reader cut: one per VALUE (the hits counted
                   from them), then END; pushes never count */
                uint32_t hits = 0;
                for (size_t i = 0; i < nf[f]; i++) {
                    hits += value_of(fkeys[f][i]) != NULL;
                }
                ck_assert_uint_eq(fr->rsp_units, hits + 1);
                ck_assert_uint_eq(a->rsp_units, 2); /* plainA0's VALUE and END */
            }
            free_msg(a);
            free_msg(b);
        }
        free(stream.p);
    }
    reply_merge(w, p);
    ck_assert_msg(p->err == 0 && buf_len(&p->rsp) == want.len &&
                      memcmp(buf_head(&p->rsp), want.p, want.len) == 0,
                  "merged '%.*s', want '%s'", (int)buf_len(&p->rsp), buf_head(&p->rsp), want.p);
    free_msg(p);
    free(want.p);
    free(plain.p);
}

static const uint32_t orders[][NSERVERS] = {
    { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 }, { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 },
};

/* keys over the 3 servers (last digit mod 3), misses (an x), a duplicate */
static const char *const keys6[] = { "k1", "k2", "kx3", "k4", "k5", "k1", "kx6", "k9" };

START_TEST(test_mc_multiget)
{
    run_case(&mc_wire, MSG_MERGE_VALUES, keys6, 8, orders[_i]);
}
END_TEST

START_TEST(test_redis_mget)
{
    run_case(&redis_wire, MSG_MERGE_ARRAY, keys6, 8, orders[_i]);
}
END_TEST

START_TEST(test_redis_sum)
{
    run_case(&redis_wire, MSG_MERGE_SUM, keys6, 8, orders[_i]);
}
END_TEST

START_TEST(test_redis_mset)
{
    run_case(&redis_wire, MSG_MERGE_ALL_OK, keys6, 8, orders[_i]);
}
END_TEST

/* RESP3: MGET's misses are nulls (_), and pushes come around the replies. */
START_TEST(test_resp3_mget)
{
    run_case(&redis3_wire, MSG_MERGE_ARRAY, keys6, 8, orders[_i]);
}
END_TEST

START_TEST(test_resp3_sum)
{
    run_case(&redis3_wire, MSG_MERGE_SUM, keys6, 8, orders[_i]);
}
END_TEST

START_TEST(test_resp3_mset)
{
    run_case(&redis3_wire, MSG_MERGE_ALL_OK, keys6, 8, orders[_i]);
}
END_TEST

/* Fill each fragment's rsp directly: parts[f] (NULL: the fragment failed). */
static struct msg *
merged(const struct proto_wire *w, enum msg_merge merge, const char *const *parts, int fail_err)
{
    static const char *const keys[] = { "k0", "k1", "k2" };
    struct msg_split sp;
    struct msg *p = split_msg(w->id, merge, keys, 3, &sp);

    for (uint32_t f = 0; f < p->nfrags; f++) {
        const char *part = parts[sp.frag_server[f]];
        if (part == NULL) {
            p->frags[f]->err = fail_err;
        } else {
            ck_assert_int_eq(buf_append(&p->frags[f]->rsp, part, strlen(part)), 0);
        }
    }
    reply_merge(w, p);
    return p;
}

static void
merged_is(const struct proto_wire *w, enum msg_merge merge, const char *const *parts, int fail_err,
          const char *want)
{
    struct msg *p = merged(w, merge, parts, fail_err);

    ck_assert_msg(buf_len(&p->rsp) == strlen(want) &&
                      memcmp(buf_head(&p->rsp), want, strlen(want)) == 0,
                  "merged '%.*s', want '%s'", (int)buf_len(&p->rsp), buf_head(&p->rsp), want);
    free_msg(p);
}

START_TEST(test_failed_fragments)
{
    const char *mc_parts[] = { "END\r\n", NULL, "VALUE k2 0 1\r\nx\r\nEND\r\n" };
    const char *rd_parts[] = { "*1\r\n$1\r\na\r\n", NULL, "*1\r\n$-1\r\n" };

    /* a failed part fails the whole, with the proxy's error for it */
    merged_is(&mc_wire, MSG_MERGE_VALUES, mc_parts, ECONNRESET,
              "SERVER_ERROR Connection reset by peer\r\n");
    merged_is(&redis_wire, MSG_MERGE_ARRAY, rd_parts, ETIMEDOUT, "-ERR Connection timed out\r\n");
}
END_TEST

START_TEST(test_backend_error_parts)
{
    const char *mc_parts[] = { "END\r\n", "SERVER_ERROR out of memory\r\n", "END\r\n" };
    const char *rd_parts[] = { ":1\r\n", "-WRONGTYPE Operation against a key\r\n", ":2\r\n" };
    const char *mset_parts[] = { "+OK\r\n", "+OK\r\n", "-OOM command not allowed\r\n" };

    /* a backend's error in any part is the reply of the whole */
    merged_is(&mc_wire, MSG_MERGE_VALUES, mc_parts, 0, "SERVER_ERROR out of memory\r\n");
    merged_is(&redis_wire, MSG_MERGE_SUM, rd_parts, 0, "-WRONGTYPE Operation against a key\r\n");
    merged_is(&redis_wire, MSG_MERGE_ALL_OK, mset_parts, 0, "-OOM command not allowed\r\n");
}
END_TEST

START_TEST(test_sum_limits)
{
    const char *fit[] = { ":9223372036854775807\r\n", ":-9223372036854775808\r\n", ":0\r\n" };
    const char *over[] = { ":9223372036854775807\r\n", ":1\r\n", ":0\r\n" };
    const char *under[] = { ":-9223372036854775808\r\n", ":-1\r\n", ":0\r\n" };
    const char *wrong[] = { ":1\r\n", "$1\r\nx\r\n", ":0\r\n" };

    merged_is(&redis_wire, MSG_MERGE_SUM, fit, 0, ":-1\r\n");
    /* a sum that does not fit 64 bits is an error, never wrapped */
    merged_is(&redis_wire, MSG_MERGE_SUM, over, 0, "-ERR Numerical result out of range\r\n");
    merged_is(&redis_wire, MSG_MERGE_SUM, under, 0, "-ERR Numerical result out of range\r\n");
    /* a part that is not an integer is no reply to DEL */
    merged_is(&redis_wire, MSG_MERGE_SUM, wrong, 0, "-ERR Invalid argument\r\n");
}
END_TEST

/* A fan-out's merge: one fragment per server, parts[f] its reply; req and
   flags as the proxy leaves them in the parent (INFO). */
static void
fan_is(const struct proto_wire *w, enum msg_merge merge, const char *const *parts, const char *req,
       uint8_t flags, const char *want)
{
    struct msg_split sp;
    struct msg *p = msg_get(&cache);

    ck_assert_int_eq(msg_split_alloc(p, 0, NSERVERS, 0, &sp), 0);
    for (uint32_t f = 0; f < NSERVERS; f++) {
        p->frags[f] = msg_get(&cache);
        p->frags[f]->parent = p;
        p->nfrags++;
        ck_assert_int_eq(buf_append(&p->frags[f]->rsp, parts[f], strlen(parts[f])), 0);
    }
    p->merge = (uint8_t)merge;
    p->fan_flags = flags;
    if (req != NULL) {
        ck_assert_int_eq(buf_append(&p->req, req, strlen(req)), 0);
    }
    reply_merge(w, p);
    ck_assert_msg(buf_len(&p->rsp) == strlen(want) &&
                      memcmp(buf_head(&p->rsp), want, strlen(want)) == 0,
                  "merged '%.*s', want '%s'", (int)buf_len(&p->rsp), buf_head(&p->rsp), want);
    free_msg(p);
}

START_TEST(test_fanout_merges)
{
    const char *keys[] = { "*1\r\n$1\r\na\r\n", "*0\r\n", "*2\r\n$1\r\nb\r\n$2\r\ncc\r\n" };
    const char *same[] = { "$3\r\nabc\r\n", "$3\r\nabc\r\n", "$3\r\nabc\r\n" };
    const char *differ[] = { "$3\r\nabc\r\n", "$3\r\nabd\r\n", "$3\r\nabc\r\n" };
    const char *exists[] = { "*3\r\n:1\r\n:0\r\n:1\r\n", "*3\r\n:1\r\n:1\r\n:0\r\n",
                             "*3\r\n:1\r\n:1\r\n:1\r\n" };
    const char *nils[] = { "$-1\r\n", "$-1\r\n", "$-1\r\n" };
    const char *one[] = { "$-1\r\n", "$-1\r\n", "$2\r\nk9\r\n" };
    const char *flush_ok[] = { "OK\r\n", "OK\r\n", "OK\r\n" };
    const char *flush_err[] = { "OK\r\n", "SERVER_ERROR busy\r\n", "OK\r\n" };
    const char *info[] = {
        "$80\r\n# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\n"
        "db0:keys=3,expires=1,avg_ttl=100\r\n\r\n",
        "$79\r\n# Server\r\nredis_version:6.2.1\r\n\r\n# Keyspace\r\n"
        "db0:keys=5,expires=3,avg_ttl=300\r\n\r\n",
        "$31\r\n# Server\r\nredis_version:7.2.0\r\n\r\n",
    };

    fan_is(&redis_wire, MSG_MERGE_CONCAT, keys, NULL, 0,
           "*3\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\ncc\r\n");
    fan_is(&redis_wire, MSG_MERGE_SAME, same, NULL, 0, "$3\r\nabc\r\n");
    fan_is(&redis_wire, MSG_MERGE_SAME, differ, NULL, 0,
           "-ERR the servers of the pool answered differently\r\n");
    fan_is(&redis_wire, MSG_MERGE_AND, exists, NULL, 0, "*3\r\n:1\r\n:0\r\n:0\r\n");
    fan_is(&redis_wire, MSG_MERGE_RANDOM, nils, NULL, 0, "$-1\r\n");
    fan_is(&redis_wire, MSG_MERGE_RANDOM, one, NULL, 0, "$2\r\nk9\r\n");
    fan_is(&mc_wire, MSG_MERGE_ALL_OK, flush_ok, NULL, 0, "OK\r\n");
    fan_is(&mc_wire, MSG_MERGE_ALL_OK, flush_err, NULL, 0, "SERVER_ERROR busy\r\n");
    /* INFO: the lowest version first in the proxy's server section, the
       keyspace summed (avg_ttl weighted by expires) */
    fan_is(&redis_wire, MSG_MERGE_INFO, info, "# Server\r\ncachemux_version:1\r\n",
           MSG_INFO_SERVER | MSG_INFO_KEYSPACE,
           "$99\r\n# Server\r\nredis_version:6.2.1\r\ncachemux_version:1\r\n\r\n# Keyspace\r\n"
           "db0:keys=8,expires=4,avg_ttl=250\r\n\r\n");
}
END_TEST

/* SCAN: one server's page, its cursor re-encoded for the client. */
START_TEST(test_scan_merge)
{
    static const struct {
        const char *part;
        uint32_t server;
        const char *want;
    } cases[] = {
        { "*2\r\n$2\r\n12\r\n*1\r\n$1\r\na\r\n", 1, "*2\r\n$2\r\n37\r\n*1\r\n$1\r\na\r\n" },
        { "*2\r\n$1\r\n0\r\n*0\r\n", 1, "*2\r\n$1\r\n2\r\n*0\r\n" },
        { "*2\r\n$1\r\n0\r\n*0\r\n", 2, "*2\r\n$1\r\n0\r\n*0\r\n" },
        { "*2\r\n$20\r\n18446744073709551615\r\n*0\r\n", 0,
          "-ERR the server's cursor is too large to encode\r\n" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct msg_split sp;
        struct msg *p = msg_get(&cache);
        ck_assert_int_eq(msg_split_alloc(p, 0, 1, 0, &sp), 0);
        p->frags[0] = msg_get(&cache);
        p->frags[0]->parent = p;
        p->nfrags = 1;
        ck_assert_int_eq(buf_append(&p->frags[0]->rsp, cases[i].part, strlen(cases[i].part)), 0);
        p->merge = MSG_MERGE_SCAN;
        p->fan_server = cases[i].server;
        p->fan_nservers = 3;
        reply_merge(&redis_wire, p);
        ck_assert_msg(buf_len(&p->rsp) == strlen(cases[i].want) &&
                          memcmp(buf_head(&p->rsp), cases[i].want, strlen(cases[i].want)) == 0,
                      "case %zu: '%.*s'", i, (int)buf_len(&p->rsp), buf_head(&p->rsp));
        free_msg(p);
    }
}
END_TEST

START_TEST(test_one_server_is_not_split)
{
    static const char *const keys[] = { "k1", "k4", "kx7" }; /* all on server 1 */
    struct msg_split sp;
    struct msg *p = msg_get(&cache);

    ck_assert_int_eq(msg_split_alloc(p, 3, 3, NSERVERS, &sp), 0);
    for (uint32_t i = 0; i < 3; i++) {
        msg_split_add(p, &sp, i, owner(keys[i]));
    }
    ck_assert_uint_eq(sp.nfrags, 1);
    ck_assert_uint_eq(sp.frag_server[0], 1);
    ck_assert_uint_eq(sp.frag_nkeys[0], 3);
    msg_put(&cache, p);
}
END_TEST

START_TEST(test_plan_order)
{
    /* fragments in the order servers first appear; each key to its server's */
    struct msg_split sp;
    struct msg *p = msg_get(&cache);
    static const uint32_t srv[] = { 2, 0, 2, 1, 0, 2 };

    ck_assert_int_eq(msg_split_alloc(p, 6, 3, NSERVERS, &sp), 0);
    for (uint32_t i = 0; i < 6; i++) {
        msg_split_add(p, &sp, i, srv[i]);
    }
    ck_assert_uint_eq(sp.nfrags, 3);
    ck_assert_uint_eq(sp.frag_server[0], 2);
    ck_assert_uint_eq(sp.frag_server[1], 0);
    ck_assert_uint_eq(sp.frag_server[2], 1);
    ck_assert_uint_eq(sp.frag_nkeys[0], 3);
    ck_assert_uint_eq(sp.frag_nkeys[1], 2);
    ck_assert_uint_eq(sp.frag_nkeys[2], 1);
    for (uint32_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(sp.frag_server[p->key_frag[i]], srv[i]);
    }
    msg_put(&cache, p);
}
END_TEST

START_TEST(test_reader_limits)
{
    struct msg_tqh q;
    struct reply_reader rr;
    struct chain_in in = { 0 };
    struct msg *m = plain_msg(PROTO_REDIS);

    /* bytes when nobody waits */
    TAILQ_INIT(&q);
    reply_reader_reset(&rr);
    ck_assert_int_eq(buf_append(&in.b, "+OK\r\n", 5), 0);
    ck_assert_int_eq(reply_read(&redis_wire, &rr, &in, &q, UINT64_MAX, done_cb, &q), -EINVAL);
    /* a reply whose declared size passes the bound, refused before its body */
    TAILQ_INSERT_TAIL(&q, m, s_tqe);
    chain_in_reset(&in);
    ck_assert_int_eq(buf_append(&in.b, "*1000000\r\n", 10), 0);
    ck_assert_int_eq(reply_read(&redis_wire, &rr, &in, &q, 4096, done_cb, &q), -EMSGSIZE);
    reply_reader_reset(&rr);
    chain_in_reset(&in);
    ck_assert_int_eq(buf_append(&in.b, "$5000\r\n", 7), 0);
    ck_assert_int_eq(reply_read(&redis_wire, &rr, &in, &q, 4096, done_cb, &q), -EMSGSIZE);
    /* a memcached VALUE block likewise, and one that fits is taken */
    struct msg *g = plain_msg(PROTO_MEMCACHED);
    TAILQ_REMOVE(&q, m, s_tqe);
    TAILQ_INSERT_TAIL(&q, g, s_tqe);
    reply_reader_reset(&rr);
    chain_in_reset(&in);
    ck_assert_int_eq(buf_append(&in.b, "VALUE k 0 5000\r\n", 16), 0);
    ck_assert_int_eq(reply_read(&mc_wire, &rr, &in, &q, 4096, done_cb, &q), -EMSGSIZE);
    reply_reader_reset(&rr);
    chain_in_reset(&in);
    ck_assert_int_eq(buf_append(&in.b, "VALUE k 0 1\r\nx\r\nEND\r\n", 21), 0);
    ck_assert_int_eq(reply_read(&mc_wire, &rr, &in, &q, 4096, done_cb, &q), 0);
    ck_assert(g->done && buf_len(&g->rsp) == 21);
    free_msg(m);
    free_msg(g);
    chain_in_reset(&in);
    buf_free(&in.b);
}
END_TEST

/* Feed stream to q's reader one byte at a time. */
static void
feed_bytewise(const struct proto_wire *w, struct msg_tqh *q, const struct sb *stream)
{
    struct reply_reader rr;
    struct chain_in in = { 0 };

    reply_reader_reset(&rr);
    for (size_t i = 0; i < stream->len; i++) {
        ck_assert_int_eq(buf_append(&in.b, stream->p + i, 1), 0);
        ck_assert_int_eq(reply_read(w, &rr, &in, q, UINT64_MAX, done_cb, q), 0);
    }
    ck_assert_uint_eq(buf_len(&in.b), 0);
    ck_assert(TAILQ_EMPTY(q));
    chain_in_reset(&in);
    buf_free(&in.b);
}

/* One value of a RESP3 server's stream; a push is no request's reply. */
struct unit3 {
    const char *bytes;
    bool push;
};

#define MAXUNITS 24

/*
 * units[0..n) as one RESP3 server's stream, fed cut in two at every byte
 * and one byte at a time, to a queue of one request per unit that is not
 * a push: each request's reply must be its own unit, byte for byte, and
 * no push may reach any of them.
 */
static void
stream3_is(const struct unit3 *units, size_t n)
{
    struct sb stream = { 0 };

    ck_assert_uint_le(n, MAXUNITS);
    for (size_t i = 0; i < n; i++) {
        sb_add(&stream, units[i].bytes, strlen(units[i].bytes));
    }
    for (size_t cut = 0; cut <= stream.len + 1; cut++) {
        struct msg *req[MAXUNITS];
        struct msg_tqh q;
        size_t nreq = 0;
        TAILQ_INIT(&q);
        for (size_t i = 0; i < n; i++) {
            if (!units[i].push) {
                req[nreq] = plain_msg(PROTO_REDIS);
                TAILQ_INSERT_TAIL(&q, req[nreq], s_tqe);
                nreq++;
            }
        }
        if (cut <= stream.len) {
            feed(&redis3_wire, &q, &stream, cut);
        } else {
            feed_bytewise(&redis3_wire, &q, &stream);
        }
        for (size_t i = 0, k = 0; i < n; i++) {
            if (units[i].push) {
                continue;
            }
            struct msg *m = req[k++];
            size_t len = strlen(units[i].bytes);
            ck_assert(m->done);
            ck_assert_msg(
                buf_len(&m->rsp) == len && memcmp(buf_head(&m->rsp), units[i].bytes, len) == 0,
                "unit %zu, cut %zu: got '%.*s'", i, cut, (int)buf_len(&m->rsp), buf_head(&m->rsp));
            free_msg(m);
        }
    }
    free(stream.p);
}

START_TEST(test_resp3_pushes)
{
    const struct unit3 before[] = { { push_msg, true }, { "+OK\r\n", false } };
    const struct unit3 between[] = {
        { "$3\r\nabc\r\n", false },
        { push_inval, true },
        { ":7\r\n", false },
    };
    const struct unit3 runs[] = {
        { push_inval, true },
        { push_msg, true },
        { "*2\r\n$1\r\na\r\n_\r\n", false },
        { ">0\r\n", true },
        { push_msg, true },
        { "_\r\n", false },
        /* a push whose elements are aggregates, and one behind an attribute */
        { ">2\r\n*1\r\n:1\r\n%1\r\n+k\r\n~1\r\n#t\r\n", true },
        { "|1\r\n+a\r\n:1\r\n>2\r\n+x\r\n+y\r\n", true },
        { "-ERR no\r\n", false },
    };

    stream3_is(before, ARRAY_SIZE(before));
    stream3_is(between, ARRAY_SIZE(between));
    stream3_is(runs, ARRAY_SIZE(runs));
}
END_TEST

START_TEST(test_resp3_push_unasked)
{
    struct msg_tqh q;
    struct reply_reader rr;
    struct chain_in in = { 0 };
    struct msg *m = plain_msg(PROTO_REDIS);
    size_t plen = strlen(push_msg);

    /* a push when no request waits: bytes nobody asked for (the conn is failed) */
    TAILQ_INIT(&q);
    reply_reader_reset(&rr);
    ck_assert_int_eq(buf_append(&in.b, push_msg, plen), 0);
    ck_assert_int_eq(reply_read(&redis3_wire, &rr, &in, &q, UINT64_MAX, done_cb, &q), -EINVAL);
    /* likewise right after the last waiting request's reply, which it had first */
    TAILQ_INSERT_TAIL(&q, m, s_tqe);
    reply_reader_reset(&rr);
    chain_in_reset(&in);
    ck_assert_int_eq(buf_append(&in.b, ":1\r\n", 4), 0);
    ck_assert_int_eq(buf_append(&in.b, push_msg, plen), 0);
    ck_assert_int_eq(reply_read(&redis3_wire, &rr, &in, &q, UINT64_MAX, done_cb, &q), -EINVAL);
    ck_assert(m->done && buf_len(&m->rsp) == 4 && memcmp(buf_head(&m->rsp), ":1\r\n", 4) == 0);
    /* a RESP2 conn takes no push at all, even with a request waiting */
    buf_reset(&m->rsp);
    m->done = false;
    TAILQ_INSERT_TAIL(&q, m, s_tqe);
    reply_reader_reset(&rr);
    chain_in_reset(&in);
    ck_assert_int_eq(buf_append(&in.b, push_msg, plen), 0);
    ck_assert_int_eq(reply_read(&redis_wire, &rr, &in, &q, UINT64_MAX, done_cb, &q), -EINVAL);
    ck_assert(!m->done && buf_len(&m->rsp) == 0);
    /* a dropped push counts nothing toward the size bound of the reply after it */
    reply_reader_reset(&rr);
    chain_in_reset(&in);
    ck_assert_int_eq(buf_append(&in.b, push_msg, plen), 0);
    ck_assert_int_eq(buf_append(&in.b, "$20\r\n01234567890123456789\r\n", 27), 0);
    ck_assert_int_eq(reply_read(&redis3_wire, &rr, &in, &q, plen, done_cb, &q), 0);
    ck_assert(m->done && buf_len(&m->rsp) == 27);
    free_msg(m);
    chain_in_reset(&in);
    buf_free(&in.b);
}
END_TEST

/* Nested maps, sets, attributes and doubles pass through byte for byte. */
START_TEST(test_resp3_passthrough)
{
    const struct unit3 units[] = {
        { "|1\r\n+a\r\n:1\r\n:5\r\n", false },
        { "%2\r\n+k\r\n~2\r\n:1\r\n:2\r\n+m\r\n%1\r\n$1\r\nx\r\n,3.14\r\n", false },
        { push_msg, true },
        { ",inf\r\n", false },
        { ",-1.5e-10\r\n", false },
        { ",nan\r\n", false },
        { "#t\r\n", false },
        { "(3492890328409238509324850943850943825024385\r\n", false },
        { "=15\r\ntxt:Some string\r\n", false },
        /* an attribute inside an array, on its second element */
        { "*3\r\n_\r\n|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n#f\r\n", false },
        /* an attribute whose values are aggregates, before an array */
        { "|2\r\n+a\r\n*1\r\n:1\r\n+b\r\n%1\r\n+c\r\n:2\r\n*2\r\n:1\r\n:2\r\n", false },
        { push_inval, true },
        { "~0\r\n", false },
        { "%0\r\n", false },
        { "*0\r\n", false },
        { "!5\r\nboom!\r\n", false },
        { "~3\r\n,1.5\r\n(-7\r\n%1\r\n_\r\n*-1\r\n", false },
    };

    stream3_is(units, ARRAY_SIZE(units));
}
END_TEST

/* want is one whole RESP3 value: its length prefixes match their bodies. */
static void
whole3(const char *want)
{
    struct redis_rsp r;

    redis_rsp_init3(&r);
    ck_assert_int_eq(redis_parse_rsp(&r, (const uint8_t *)want, strlen(want)), REDIS_PARSE_OK);
    ck_assert_uint_eq(r.total_len, strlen(want));
}

START_TEST(test_resp3_merges)
{
    /* MGET: nulls kept in key order (k0, k1, k2 on servers 0, 1, 2) */
    const char *holes[] = { "*1\r\n_\r\n", "*1\r\n$1\r\nb\r\n", "*1\r\n_\r\n" };
    const char *blob[] = { "*1\r\n$1\r\na\r\n", "!5\r\nboom!\r\n", "*1\r\n_\r\n" };
    const char *sums[] = { ":1\r\n", ":0\r\n", ":2\r\n" };
    const char *sum_blob[] = { ":1\r\n", ":2\r\n", "!5\r\nboom!\r\n" };
    const char *sum_err[] = { ":1\r\n", "-WRONGTYPE Operation against a key\r\n", ":2\r\n" };
    const char *sum_null[] = { ":1\r\n", "_\r\n", ":2\r\n" };
    const char *failed[] = { "*1\r\n_\r\n", NULL, "*1\r\n_\r\n" };
    const char *ok_blob[] = { "+OK\r\n", "!3\r\nOOM\r\n", "+OK\r\n" };

    merged_is(&redis3_wire, MSG_MERGE_ARRAY, holes, 0, "*3\r\n_\r\n$1\r\nb\r\n_\r\n");
    /* a blob error in any part is the reply of the whole, as a simple one is */
    merged_is(&redis3_wire, MSG_MERGE_ARRAY, blob, 0, "!5\r\nboom!\r\n");
    merged_is(&redis3_wire, MSG_MERGE_SUM, sums, 0, ":3\r\n");
    merged_is(&redis3_wire, MSG_MERGE_SUM, sum_blob, 0, "!5\r\nboom!\r\n");
    merged_is(&redis3_wire, MSG_MERGE_SUM, sum_err, 0, "-WRONGTYPE Operation against a key\r\n");
    merged_is(&redis3_wire, MSG_MERGE_SUM, sum_null, 0, "-ERR Invalid argument\r\n");
    merged_is(&redis3_wire, MSG_MERGE_ALL_OK, ok_blob, 0, "!3\r\nOOM\r\n");
    /* a failed fragment: the proxy's error, which RESP3 takes as it is */
    merged_is(&redis3_wire, MSG_MERGE_ARRAY, failed, ECONNRESET,
              "-ERR Connection reset by peer\r\n");
}
END_TEST

START_TEST(test_resp3_fanout_merges)
{
    const char *nulls[] = { "_\r\n", "_\r\n", "_\r\n" };
    const char *one[] = { "_\r\n", "$2\r\nk9\r\n", "_\r\n" };
    const char *exists[] = { "*3\r\n:1\r\n:0\r\n:1\r\n", "*3\r\n:1\r\n:1\r\n:0\r\n",
                             "*3\r\n:1\r\n:1\r\n:1\r\n" };
    const char *keys[] = { "*1\r\n$1\r\na\r\n", "*0\r\n", "*2\r\n$1\r\nb\r\n$2\r\ncc\r\n" };
    const char *blob[] = { "*0\r\n", "!5\r\nboom!\r\n", "*0\r\n" };
    /* INFO on RESP3 conns: verbatim strings, "txt:" counted in their lengths */
    const char *info[] = {
        "=84\r\ntxt:# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\n"
        "db0:keys=3,expires=1,avg_ttl=100\r\n\r\n",
        "=83\r\ntxt:# Server\r\nredis_version:6.2.1\r\n\r\n# Keyspace\r\n"
        "db0:keys=5,expires=3,avg_ttl=300\r\n\r\n",
        "=35\r\ntxt:# Server\r\nredis_version:7.2.0\r\n\r\n",
    };
    const char *info_want =
        "=103\r\ntxt:# Server\r\nredis_version:6.2.1\r\ncachemux_version:1\r\n\r\n"
        "# Keyspace\r\ndb0:keys=8,expires=4,avg_ttl=250\r\n\r\n";
    const char *server[] = {
        "=36\r\ntxt:# Server\r\nredis_version:7.0.15\r\n\r\n",
        "=35\r\ntxt:# Server\r\nredis_version:6.2.1\r\n\r\n",
        "=35\r\ntxt:# Server\r\nredis_version:7.2.0\r\n\r\n",
    };
    /* HELLO: Redis 7's map, the lowest version, the proxy's id, proto 3 */
    const char *hello_want = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n6.2.1\r\n"
                             "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:42\r\n$4\r\nmode\r\n"
                             "$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
                             "$7\r\nmodules\r\n*0\r\n";

    fan_is(&redis3_wire, MSG_MERGE_RANDOM, nulls, NULL, 0, "_\r\n");
    fan_is(&redis3_wire, MSG_MERGE_RANDOM, one, NULL, 0, "$2\r\nk9\r\n");
    fan_is(&redis3_wire, MSG_MERGE_AND, exists, NULL, 0, "*3\r\n:1\r\n:0\r\n:0\r\n");
    fan_is(&redis3_wire, MSG_MERGE_CONCAT, keys, NULL, 0,
           "*3\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\ncc\r\n");
    fan_is(&redis3_wire, MSG_MERGE_CONCAT, blob, NULL, 0, "!5\r\nboom!\r\n");
    whole3(info_want);
    fan_is(&redis3_wire, MSG_MERGE_INFO, info, "# Server\r\ncachemux_version:1\r\n",
           MSG_INFO_SERVER | MSG_INFO_KEYSPACE, info_want);
    whole3(hello_want);
    fan_is(&redis3_wire, MSG_MERGE_HELLO, server, "42", 0, hello_want);
}
END_TEST

static Suite *
split_suite(void)
{
    Suite *s = suite_create("split");
    TCase *t = tcase_create("split");

    tcase_add_loop_test(t, test_mc_multiget, 0, 6);
    tcase_add_loop_test(t, test_redis_mget, 0, 6);
    tcase_add_loop_test(t, test_redis_sum, 0, 6);
    tcase_add_loop_test(t, test_redis_mset, 0, 6);
    tcase_add_test(t, test_failed_fragments);
    tcase_add_test(t, test_backend_error_parts);
    tcase_add_test(t, test_sum_limits);
    tcase_add_test(t, test_one_server_is_not_split);
    tcase_add_test(t, test_plan_order);
    tcase_add_test(t, test_reader_limits);
    tcase_add_test(t, test_fanout_merges);
    tcase_add_test(t, test_scan_merge);
    tcase_add_loop_test(t, test_resp3_mget, 0, 6);
    tcase_add_loop_test(t, test_resp3_sum, 0, 6);
    tcase_add_loop_test(t, test_resp3_mset, 0, 6);
    tcase_add_test(t, test_resp3_pushes);
    tcase_add_test(t, test_resp3_push_unasked);
    tcase_add_test(t, test_resp3_passthrough);
    tcase_add_test(t, test_resp3_merges);
    tcase_add_test(t, test_resp3_fanout_merges);
    suite_add_tcase(s, t);
    return s;
}

int
main(void)
{
    msg_cache_init(&cache, 16384);
    SRunner *sr = srunner_create(split_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    msg_cache_destroy(&cache);
    return failed == 0 ? 0 : 1;
}
