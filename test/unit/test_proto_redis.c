/*
 * Unit tests for proto_redis: the command table (every command of doc/protocols.md
 * section 3, arities as redis-server 7.0 enforces them), multibulk and
 * inline requests, every error kind with its exact reply, the size limits,
 * replies of every type nested to any depth, and the incremental contract:
 * a stream fed whole, byte by byte and at random split points (fixed seeds)
 * must give the same sequence of results, with AGAIN until the last byte of
 * each well-framed unit.
 */
#include "msg.h"
#include "proto_redis.h"
#include "redis_reply.h"
#include "sbuf.h"
#include "util.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_MAX (64ULL << 20)
#define MAX_STEPS 4096

/* ---- buffers ---- */

/* One multibulk argument: "$len\r\nbytes\r\n". */
static void
sb_bulk(struct sbuf *b, const void *s, size_t n)
{
    sb_fmt(b, "$%zu\r\n", n);
    sb_add(b, s, n);
    sb_str(b, "\r\n");
}

/* A whole multibulk request of NUL-terminated arguments. */
static void
sb_cmd(struct sbuf *b, size_t argc, const char *const *argv)
{
    sb_fmt(b, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++) {
        sb_bulk(b, argv[i], strlen(argv[i]));
    }
}

/* ---- single requests ---- */

/* The public result of a parse; private resume state may differ by feed. */
struct req_res {
    enum redis_parse rc;
    const struct redis_cmd *cmd;
    enum redis_req_error err;
    bool is_inline;
    uint32_t argc;
    size_t total_len, name_off, name_len;
    char err_detail;
};

static struct req_res
req_res_of(enum redis_parse rc, const struct redis_req *r)
{
    struct req_res x;

    memset(&x, 0, sizeof(x));
    x.rc = rc;
    x.cmd = r->cmd;
    x.err = r->err;
    x.is_inline = r->is_inline;
    x.argc = r->argc;
    x.total_len = r->total_len;
    x.name_off = r->name_off;
    x.name_len = r->name_len;
    x.err_detail = r->err_detail;
    return x;
}

/* Room for a request's arguments, grown as a conn grows its own. */
struct targs {
    struct redis_arg *p;
    uint32_t cap;
};

static struct targs t_main, t_stream;

/* redis_parse_req, giving the parse room for every argument. */
static enum redis_parse
parse_req(struct targs *t, struct redis_req *r, const uint8_t *buf, size_t len, uint64_t max)
{
    enum redis_parse rc;

    while ((rc = redis_parse_req(r, buf, len, max)) == REDIS_PARSE_ARGS) {
        if (r->argc > t->cap) {
            t->p = realloc(t->p, sizeof(*t->p) * r->argc);
            ck_assert_ptr_nonnull(t->p);
            t->cap = r->argc;
        }
        r->args = t->p;
        r->args_cap = t->cap;
    }
    return rc;
}

static enum redis_parse
preq_n(const void *s, size_t len, uint64_t max, struct redis_req *r)
{
    redis_req_init(r, t_main.p, t_main.cap);
    return parse_req(&t_main, r, s, len, max);
}

static enum redis_parse
preq(const char *s, struct redis_req *r)
{
    return preq_n(s, strlen(s), BIG_MAX, r);
}

static struct redis_req
req_ok_n(const void *s, size_t len, const char *name)
{
    struct redis_req r;
    enum redis_parse rc = preq_n(s, len, BIG_MAX, &r);

    ck_assert_msg(rc == REDIS_PARSE_OK, "not OK: %.60s (rc %d err %d)", (const char *)s, rc, r.err);
    ck_assert_int_eq(r.err, REDIS_ERR_NONE);
    ck_assert_ptr_nonnull(r.cmd);
    ck_assert_str_eq(r.cmd->name, name);
    ck_assert_uint_eq(r.total_len, len);
    return r;
}

static struct redis_req
req_ok(const char *s, const char *name)
{
    return req_ok_n(s, strlen(s), name);
}

/* Parse s, expect ERROR err and the exact reply text (NULL: no reply). */
static struct redis_req
req_err_max(const char *s, uint64_t max, enum redis_req_error err, const char *reply)
{
    struct redis_req r;
    enum redis_parse rc = preq_n(s, strlen(s), max, &r);
    char out[REDIS_ERR_REPLY_MAX];
    size_t n;

    ck_assert_msg(rc == REDIS_PARSE_ERROR, "not ERROR: %s (rc %d)", s, rc);
    ck_assert_msg(r.err == err, "%s: err %d, want %d", s, r.err, err);
    n = redis_error_reply(&r, (const uint8_t *)s, out, sizeof(out));
    if (reply == NULL) {
        ck_assert_uint_eq(n, 0);
    } else {
        ck_assert_msg(n == strlen(reply) && memcmp(out, reply, n) == 0, "%s: reply '%.*s'", s,
                      (int)n, out);
    }
    if (redis_error_closes(err)) {
        ck_assert_uint_eq(r.total_len, 0);
    } else {
        ck_assert_uint_gt(r.total_len, 0);
    }
    return r;
}

static struct redis_req
req_err(const char *s, enum redis_req_error err, const char *reply)
{
    return req_err_max(s, BIG_MAX, err, reply);
}

/* ---- stream driver: whole, byte by byte, random splits ---- */

struct step {
    size_t pos;
    struct req_res req;
    enum redis_parse rsp_rc;
    enum redis_rsp_type rsp_type;
    int64_t rsp_integer;
    size_t rsp_len;
};

/* Whether the reply parsers of the helpers below take RESP3 (redis_rsp_init3). */
static bool rsp3;

static void
rsp_init(struct redis_rsp *r)
{
    if (rsp3) {
        redis_rsp_init3(r);
    } else {
        redis_rsp_init(r);
    }
}

/* The request (rsp false) or reply parser, with one state struct per unit
   kept across AGAIN results. */
struct stream_ctx {
    uint64_t max;
    bool rsp;
    struct redis_req req;
    struct redis_rsp res;
};

#include "stream_driver.h"

static void
stream_begin(struct stream_ctx *cx)
{
    redis_req_init(&cx->req, t_stream.p, t_stream.cap);
    rsp_init(&cx->res);
}

static enum stream_result
stream_step(struct stream_ctx *cx, const uint8_t *buf, size_t avail, struct step *st, size_t *unit)
{
    enum redis_parse rc;

    if (cx->rsp) {
        rc = redis_parse_rsp(&cx->res, buf, avail);
        st->rsp_rc = rc;
        if (rc == REDIS_PARSE_OK) {
            st->rsp_type = cx->res.type;
            st->rsp_integer = cx->res.integer;
            st->rsp_len = cx->res.total_len;
        }
    } else {
        rc = parse_req(&t_stream, &cx->req, buf, avail, cx->max);
        if (rc == REDIS_PARSE_AGAIN) {
            st->req.rc = rc;
        } else {
            st->req = req_res_of(rc, &cx->req);
        }
    }
    if (rc == REDIS_PARSE_AGAIN) {
        return STREAM_AGAIN;
    }
    if (cx->rsp) {
        if (rc == REDIS_PARSE_ERROR) {
            return STREAM_LAST;
        }
        *unit = cx->res.total_len;
    } else if (rc == REDIS_PARSE_ERROR && redis_error_closes(cx->req.err)) {
        return STREAM_LAST;
    } else {
        *unit = cx->req.total_len;
    }
    return STREAM_NEXT;
}

static void
stream_unit_done(struct stream_ctx *cx)
{
    redis_req_reset(&cx->req);
    rsp_init(&cx->res);
}

static bool
step_equal(const struct step *a, const struct step *b)
{
    const struct req_res *x = &a->req, *y = &b->req;

    return a->pos == b->pos && x->rc == y->rc && x->cmd == y->cmd && x->err == y->err &&
           x->is_inline == y->is_inline && x->argc == y->argc && x->total_len == y->total_len &&
           x->name_off == y->name_off && x->name_len == y->name_len &&
           x->err_detail == y->err_detail && a->rsp_rc == b->rsp_rc && a->rsp_type == b->rsp_type &&
           a->rsp_integer == b->rsp_integer && a->rsp_len == b->rsp_len;
}

static int
step_result(const struct step *st)
{
    return st->req.rc != 0 ? (int)st->req.rc : (int)st->rsp_rc;
}

/* Whole vs byte by byte vs random splits; returns the whole run in run_a. */
static void
check_all_feeds(const uint8_t *buf, size_t len, uint64_t max, bool rsp, bool bytes)
{
    static struct stream_ctx cx;

    cx.max = max;
    cx.rsp = rsp;
    stream_check_feeds(&cx, buf, len, bytes, 30);
}

static void
check_str_feeds(const char *s, uint64_t max, bool rsp)
{
    check_all_feeds((const uint8_t *)s, strlen(s), max, rsp, true);
}

/* ---- the command table ---- */

/* twemproxy's commands, plus the local ones (doc/protocols.md 3) and the streams: every
   one must be in the table. */
// clang-format off
static const char *const appendix_a[] = {
    "PING", "QUIT", "COMMAND",
    "PERSIST", "PTTL", "TTL", "TYPE", "DUMP", "DECR", "GET", "GETDEL", "INCR", "STRLEN",
    "HGETALL", "HKEYS", "HLEN", "HVALS", "LLEN", "SCARD", "SMEMBERS", "ZCARD",
    "EXPIRE", "EXPIREAT", "PEXPIRE", "PEXPIREAT", "MOVE", "APPEND", "DECRBY", "GETBIT", "GETSET",
    "INCRBY", "INCRBYFLOAT", "SETNX", "HEXISTS", "HGET", "HSTRLEN", "LINDEX", "RPOPLPUSH",
    "SISMEMBER", "ZRANK", "ZREVRANK", "ZSCORE",
    "GETRANGE", "PSETEX", "SETBIT", "SETEX", "SETRANGE", "HINCRBY", "HINCRBYFLOAT", "HSETNX",
    "LRANGE", "LREM", "LSET", "LTRIM", "SMOVE", "ZCOUNT", "ZLEXCOUNT", "ZINCRBY",
    "ZREMRANGEBYLEX", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE",
    "LINSERT", "LMOVE",
    "SORT", "COPY", "BITCOUNT", "BITPOS", "BITFIELD", "GETEX", "SET", "HDEL", "HMGET", "HMSET",
    "HSCAN", "HSET", "HRANDFIELD", "LPUSH", "LPUSHX", "RPUSH", "RPUSHX", "LPOP", "RPOP", "LPOS",
    "SADD", "SDIFF", "SDIFFSTORE", "SINTER", "SINTERSTORE", "SREM", "SUNION", "SUNIONSTORE",
    "SRANDMEMBER", "SSCAN", "SPOP", "SMISMEMBER", "PFADD", "PFMERGE", "PFCOUNT", "ZADD", "ZDIFF",
    "ZDIFFSTORE", "ZINTER", "ZINTERSTORE", "ZMSCORE", "ZPOPMAX", "ZPOPMIN", "ZRANDMEMBER",
    "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANGESTORE", "ZREM", "ZREVRANGE",
    "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE", "ZSCAN", "ZUNION", "ZUNIONSTORE", "GEODIST", "GEOPOS",
    "GEOHASH", "GEOADD", "GEORADIUS", "GEORADIUSBYMEMBER", "GEOSEARCH", "GEOSEARCHSTORE",
    "RESTORE",
    "MGET", "DEL", "UNLINK", "TOUCH", "EXISTS", "MSET",
    "EVAL", "EVALSHA", "LOLWUT", "AUTH", "ECHO", "SELECT",
    /* the proxy's own and the fan-outs (protocols.md 3) */
    "HELLO", "CLIENT", "INFO", "DBSIZE", "KEYS", "RANDOMKEY", "SCAN", "SCRIPT", "FLUSHDB",
    "FLUSHALL",
    /* streams (protocols.md 3.5) */
    "XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP", "XINFO", "XLEN", "XPENDING",
    "XRANGE", "XREAD", "XREADGROUP", "XREVRANGE", "XSETID", "XTRIM",
};
// clang-format on

static const struct redis_cmd *
lookup(const char *s)
{
    return redis_cmd_lookup((const uint8_t *)s, strlen(s));
}

START_TEST(test_table_sorted)
{
    size_t n;
    const struct redis_cmd *t = redis_cmd_table(&n);

    ck_assert_uint_eq(n, ARRAY_SIZE(appendix_a));
    for (size_t i = 0; i < n; i++) {
        for (const char *c = t[i].name; *c; c++) {
            ck_assert_msg(*c >= 'a' && *c <= 'z', "%s not lower case", t[i].name);
        }
        /* its row holds it with padding after (compared a word at a time) */
        ck_assert_uint_lt(strnlen(t[i].name, REDIS_CMD_ROW_NAME), REDIS_CMD_ROW_NAME);
        if (i > 0) {
            ck_assert_msg(strcmp(t[i - 1].name, t[i].name) < 0, "%s before %s", t[i - 1].name,
                          t[i].name);
        }
        ck_assert_int_ge(t[i].min_args, 0);
        ck_assert(t[i].max_args == -1 || t[i].max_args >= t[i].min_args);
        ck_assert_ptr_eq(lookup(t[i].name), &t[i]);
        ck_assert_uint_eq(redis_cmd_index(&t[i]), i);
        ck_assert_ptr_eq(redis_cmd_at((uint16_t)i), &t[i]);
        switch (t[i].route) {
        case REDIS_ROUTE_SPLIT:
            /* keys, or key value pairs; merged one of the three ways */
            ck_assert(t[i].key_step == (t[i].merge == MSG_MERGE_ALL_OK ? 2 : 1));
            ck_assert(t[i].merge == MSG_MERGE_ARRAY || t[i].merge == MSG_MERGE_SUM ||
                      t[i].merge == MSG_MERGE_ALL_OK);
            ck_assert_uint_eq(t[i].first_key, 1);
            break;
        case REDIS_ROUTE_KEY:
            ck_assert_uint_eq(t[i].key_step, 0);
            ck_assert_uint_eq(t[i].merge, MSG_MERGE_NONE);
            /* a key, or keys after numkeys, or none ("placeholder") */
            ck_assert(t[i].first_key == 0 || t[i].numkeys_arg == 0);
            ck_assert((int)t[i].first_key <= MAX(t[i].min_args, 1));
            break;
        case REDIS_ROUTE_LOCAL:
            ck_assert_uint_ne(t[i].local, REDIS_LOCAL_NONE);
            ck_assert_uint_eq(t[i].first_key, 0);
            break;
        case REDIS_ROUTE_FANOUT:
            /* no key: every server, one merge (SCRIPT's by its subcommand) */
            ck_assert_uint_eq(t[i].first_key, 0);
            ck_assert(t[i].merge != MSG_MERGE_NONE || strcmp(t[i].name, "script") == 0);
            ck_assert(!redis_cmd_streams(&t[i], 1));
            break;
        default:
            ck_assert_uint_eq(t[i].key_step, 0);
            break;
        }
    }
}
END_TEST

START_TEST(test_every_command_found)
{
    for (size_t i = 0; i < ARRAY_SIZE(appendix_a); i++) {
        char lower[64], mixed[64];
        size_t n = strlen(appendix_a[i]);
        const struct redis_cmd *c = lookup(appendix_a[i]);

        ck_assert_msg(c != NULL, "%s not found", appendix_a[i]);
        for (size_t j = 0; j <= n; j++) {
            char ch = appendix_a[i][j];
            lower[j] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
            mixed[j] = (j & 1) ? lower[j] : ch;
        }
        ck_assert_str_eq(c->name, lower);
        ck_assert_ptr_eq(lookup(lower), c);
        ck_assert_ptr_eq(lookup(mixed), c);
    }
}
END_TEST

/* SCAN's cursor: server index + nservers * the server's cursor; a
   server's end moves on to the next server, the last one's ends the scan. */
START_TEST(test_scan_cursor)
{
    uint32_t server;
    uint64_t cur, out;

    ck_assert_int_eq(redis_scan_cursor_decode((const uint8_t *)"0", 1, 3, &server, &cur), 0);
    ck_assert_uint_eq(server, 0);
    ck_assert_uint_eq(cur, 0);
    ck_assert_int_eq(redis_scan_cursor_decode((const uint8_t *)"17", 2, 3, &server, &cur), 0);
    ck_assert_uint_eq(server, 2);
    ck_assert_uint_eq(cur, 5);
    ck_assert_int_eq(redis_scan_cursor_decode((const uint8_t *)"x1", 2, 3, &server, &cur), -1);
    ck_assert_int_eq(
        redis_scan_cursor_decode((const uint8_t *)"18446744073709551616", 20, 3, &server, &cur),
        -1);
    ck_assert_int_eq(redis_scan_cursor_encode(5, 2, 3, &out), 0);
    ck_assert_uint_eq(out, 17);
    ck_assert_int_eq(redis_scan_cursor_encode(0, 0, 3, &out), 0);
    ck_assert_uint_eq(out, 1);
    ck_assert_int_eq(redis_scan_cursor_encode(0, 2, 3, &out), 0);
    ck_assert_uint_eq(out, 0);
    ck_assert_int_eq(redis_scan_cursor_encode(UINT64_MAX / 3 + 1, 0, 3, &out), -1);
    /* every encoded cursor decodes back */
    for (uint64_t c = 1; c < 5000; c += 7) {
        for (uint32_t s = 0; s < 5; s++) {
            char num[32];
            ck_assert_int_eq(redis_scan_cursor_encode(c, s, 5, &out), 0);
            int n = snprintf(num, sizeof(num), "%" PRIu64, out);
            ck_assert_int_eq(
                redis_scan_cursor_decode((const uint8_t *)num, (size_t)n, 5, &server, &cur), 0);
            ck_assert_uint_eq(server, s);
            ck_assert_uint_eq(cur, c);
        }
    }
}
END_TEST

START_TEST(test_lookup_misses)
{
    // clang-format off
    static const char *const misses[] = {
        "", "g", "ge", "gett", "gets", "a", "zzzz", "zunionstor", "zunionstoree", "set ",
        " set", "getex\n", "mgetx", "georadiusbymemberx", "hell", "multi", "exec", "key",
        "flushal", "config", "subscribe", "sca", "infos",
    };
    // clang-format on
    uint8_t hi[] = { 'g', 0xc5, 't' }, nul[] = { 'g', 'e', 't', 0 };
    char longname[64];

    for (size_t i = 0; i < ARRAY_SIZE(misses); i++) {
        ck_assert_msg(lookup(misses[i]) == NULL, "%s found", misses[i]);
    }
    ck_assert_ptr_null(redis_cmd_lookup(hi, sizeof(hi)));
    ck_assert_ptr_null(redis_cmd_lookup(nul, sizeof(nul)));
    ck_assert_ptr_nonnull(redis_cmd_lookup(nul, 3));
    memset(longname, 'z', sizeof(longname));
    ck_assert_ptr_null(redis_cmd_lookup((const uint8_t *)longname, sizeof(longname)));
    /* a prefix of a real name matches nothing; the name itself does */
    ck_assert_ptr_null(redis_cmd_lookup((const uint8_t *)"georadiusbymember", 9 + 1));
    ck_assert_ptr_nonnull(redis_cmd_lookup((const uint8_t *)"georadiusbymember", 9));
    /* a NUL inside reads as no padding; names of 23 and 24 letters */
    ck_assert_ptr_null(redis_cmd_lookup((const uint8_t *)"g\0t", 3));
    ck_assert_ptr_null(redis_cmd_lookup((const uint8_t *)longname, REDIS_CMD_ROW_NAME - 1));
    ck_assert_ptr_null(redis_cmd_lookup((const uint8_t *)longname, REDIS_CMD_ROW_NAME));
}
END_TEST

START_TEST(test_routes)
{
    static const struct {
        const char *name;
        enum redis_route route;
        uint8_t first_key, key_step, numkeys_arg, merge, local, flags;
    } want[] = {
        { "get", REDIS_ROUTE_KEY, 1, 0, 0, 0, 0, 0 },
        { "set", REDIS_ROUTE_KEY, 1, 0, 0, 0, 0, 0 },
        { "zunionstore", REDIS_ROUTE_KEY, 1, 0, 0, 0, 0, 0 },
        { "command", REDIS_ROUTE_KEY, 0, 0, 0, 0, 0, 0 },
        { "lolwut", REDIS_ROUTE_KEY, 0, 0, 0, 0, 0, 0 },
        { "eval", REDIS_ROUTE_KEY, 0, 0, 2, 0, 0, 0 },
        { "evalsha", REDIS_ROUTE_KEY, 0, 0, 2, 0, 0, 0 },
        { "mget", REDIS_ROUTE_SPLIT, 1, 1, 0, MSG_MERGE_ARRAY, 0, 0 },
        { "del", REDIS_ROUTE_SPLIT, 1, 1, 0, MSG_MERGE_SUM, 0, 0 },
        { "unlink", REDIS_ROUTE_SPLIT, 1, 1, 0, MSG_MERGE_SUM, 0, 0 },
        { "touch", REDIS_ROUTE_SPLIT, 1, 1, 0, MSG_MERGE_SUM, 0, 0 },
        { "exists", REDIS_ROUTE_SPLIT, 1, 1, 0, MSG_MERGE_SUM, 0, 0 },
        { "mset", REDIS_ROUTE_SPLIT, 1, 2, 0, MSG_MERGE_ALL_OK, 0, 0 },
        { "ping", REDIS_ROUTE_LOCAL, 0, 0, 0, 0, REDIS_LOCAL_PING, 0 },
        { "quit", REDIS_ROUTE_LOCAL, 0, 0, 0, 0, REDIS_LOCAL_QUIT,
          REDIS_CMD_NOAUTH | REDIS_CMD_CLOSES },
        { "echo", REDIS_ROUTE_LOCAL, 0, 0, 0, 0, REDIS_LOCAL_ECHO, 0 },
        { "select", REDIS_ROUTE_LOCAL, 0, 0, 0, 0, REDIS_LOCAL_SELECT, 0 },
        { "auth", REDIS_ROUTE_LOCAL, 0, 0, 0, 0, REDIS_LOCAL_AUTH, REDIS_CMD_NOAUTH },
        { "move", REDIS_ROUTE_UNSUPPORTED, 0, 0, 0, 0, 0, 0 },
        { "hello", REDIS_ROUTE_LOCAL, 0, 0, 0, 0, REDIS_LOCAL_HELLO, REDIS_CMD_NOAUTH },
        { "client", REDIS_ROUTE_LOCAL, 0, 0, 0, 0, REDIS_LOCAL_CLIENT, 0 },
        { "dbsize", REDIS_ROUTE_FANOUT, 0, 0, 0, MSG_MERGE_SUM, 0, 0 },
        { "keys", REDIS_ROUTE_FANOUT, 0, 0, 0, MSG_MERGE_CONCAT, 0, 0 },
        { "scan", REDIS_ROUTE_FANOUT, 0, 0, 0, MSG_MERGE_SCAN, 0, 0 },
        { "info", REDIS_ROUTE_FANOUT, 0, 0, 0, MSG_MERGE_INFO, 0, 0 },
        { "flushall", REDIS_ROUTE_FANOUT, 0, 0, 0, MSG_MERGE_ALL_OK, 0, 0 },
    };

    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        const struct redis_cmd *c = lookup(want[i].name);
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(c->route == want[i].route && c->first_key == want[i].first_key &&
                          c->key_step == want[i].key_step &&
                          c->numkeys_arg == want[i].numkeys_arg && c->merge == want[i].merge &&
                          c->local == want[i].local && c->flags == want[i].flags,
                      "%s: its row differs", want[i].name);
    }
}
END_TEST

/* Arities checked by hand against redis-server 7.0 (COMMAND INFO, and what it answers). */
START_TEST(test_arities)
{
    // clang-format off
    static const struct {
        const char *name;
        int min, max;
    } want[] = {
        { "get", 1, 1 }, { "set", 2, -1 }, { "getex", 1, -1 }, { "bitcount", 1, -1 },
        { "sort", 1, -1 }, { "lpos", 2, -1 }, { "zadd", 3, -1 }, { "georadius", 5, -1 },
        { "georadiusbymember", 4, -1 }, { "geosearch", 6, -1 }, { "geosearchstore", 7, -1 },
        { "geoadd", 4, -1 }, { "geodist", 3, -1 }, { "restore", 3, -1 }, { "expire", 2, -1 },
        { "pexpireat", 2, -1 }, { "hset", 3, -1 }, { "hmset", 3, -1 }, { "zrangestore", 4, -1 },
        { "zrange", 3, -1 }, { "zdiff", 2, -1 }, { "zinterstore", 3, -1 }, { "copy", 2, -1 },
        { "linsert", 4, 4 }, { "lmove", 4, 4 }, { "getrange", 3, 3 }, { "lpop", 1, -1 },
        { "spop", 1, -1 }, { "pfadd", 1, -1 }, { "pfmerge", 1, -1 }, { "mset", 2, -1 },
        { "mget", 1, -1 }, { "del", 1, -1 }, { "eval", 2, -1 }, { "evalsha", 2, -1 },
        { "ping", 0, 1 }, { "quit", 0, -1 }, { "echo", 1, 1 }, { "select", 1, 1 },
        { "auth", 1, 2 }, { "command", 0, -1 }, { "lolwut", 0, -1 }, { "move", 2, 2 },
    };
    // clang-format on

    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        const struct redis_cmd *c = lookup(want[i].name);
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(c->min_args == want[i].min && c->max_args == want[i].max, "%s: %d..%d",
                      want[i].name, c->min_args, c->max_args);
    }
}
END_TEST

/* Every row: min arguments parse, one fewer or one more than max is ARITY. */
START_TEST(test_every_command_arity)
{
    size_t n;
    const struct redis_cmd *t = redis_cmd_table(&n);
    const char *argv[16];

    for (size_t i = 0; i < n; i++) {
        struct sbuf b = { 0 };
        struct redis_req r;
        enum redis_parse rc;
        char upper[64];
        size_t k;

        for (k = 0; t[i].name[k]; k++) {
            upper[k] = (char)(t[i].name[k] - 'a' + 'A');
        }
        upper[k] = '\0';
        argv[0] = upper;
        for (k = 1; k < ARRAY_SIZE(argv); k++) {
            argv[k] = "x";
        }

        sb_cmd(&b, 1 + (size_t)t[i].min_args, argv);
        rc = preq_n(b.p, b.len, BIG_MAX, &r);
        if (t[i].route == REDIS_ROUTE_UNSUPPORTED) {
            ck_assert_int_eq(rc, REDIS_PARSE_ERROR);
            ck_assert_int_eq(r.err, REDIS_ERR_UNSUPPORTED);
        } else {
            ck_assert_msg(rc == REDIS_PARSE_OK, "%s with %d args: %d", t[i].name, t[i].min_args,
                          r.err);
            ck_assert_ptr_eq(r.cmd, &t[i]);
            ck_assert_uint_eq(r.argc, 1 + (uint32_t)t[i].min_args);
        }

        if (t[i].min_args > 0 && t[i].route != REDIS_ROUTE_UNSUPPORTED) {
            b.len = 0;
            sb_cmd(&b, (size_t)t[i].min_args, argv);
            ck_assert_int_eq(preq_n(b.p, b.len, BIG_MAX, &r), REDIS_PARSE_ERROR);
            ck_assert_msg(r.err == REDIS_ERR_ARITY, "%s short: %d", t[i].name, r.err);
            ck_assert_uint_eq(r.total_len, b.len);
        }
        if (t[i].max_args >= 0 && t[i].route != REDIS_ROUTE_UNSUPPORTED) {
            b.len = 0;
            sb_cmd(&b, 2 + (size_t)t[i].max_args, argv);
            ck_assert_int_eq(preq_n(b.p, b.len, BIG_MAX, &r), REDIS_PARSE_ERROR);
            ck_assert_msg(r.err == REDIS_ERR_ARITY, "%s long: %d", t[i].name, r.err);
        }
        free(b.p);
    }
}
END_TEST

/* ---- requests ---- */

START_TEST(test_multibulk_basic)
{
    const char *s = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    struct redis_req r = req_ok(s, "set");

    ck_assert(!r.is_inline);
    ck_assert_uint_eq(r.argc, 3);
    ck_assert_uint_eq(r.name_off, 8);
    ck_assert_uint_eq(r.name_len, 3);
    check_str_feeds(s, BIG_MAX, false);

    /* every byte short of the end is AGAIN */
    for (size_t i = 0; i < strlen(s); i++) {
        ck_assert_int_eq(preq_n(s, i, BIG_MAX, &r), REDIS_PARSE_AGAIN);
    }
    /* a second call on a finished parse repeats the result */
    ck_assert_int_eq(preq(s, &r), REDIS_PARSE_OK);
    ck_assert_int_eq(parse_req(&t_main, &r, (const uint8_t *)s, strlen(s), BIG_MAX),
                     REDIS_PARSE_OK);
    ck_assert_uint_eq(r.total_len, strlen(s));

    req_ok("*1\r\n$4\r\nping\r\n", "ping");
    req_ok("*2\r\n$4\r\nPiNg\r\n$0\r\n\r\n", "ping");
    req_ok("*2\r\n$3\r\nget\r\n$0\r\n\r\n", "get");
    req_ok("*1\r\n$7\r\ncommand\r\n", "command");
    req_ok("*3\r\n$7\r\ncommand\r\n$4\r\ninfo\r\n$3\r\nget\r\n", "command");
    req_ok("*3\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n0\r\n", "eval");
    req_ok("*5\r\n$4\r\nmset\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", "mset");
    req_ok("*1\r\n$4\r\nquit\r\n", "quit");
    req_ok("*2\r\n$4\r\nquit\r\n$1\r\nx\r\n", "quit");
}
END_TEST

START_TEST(test_arity_errors)
{
    req_err("*1\r\n$3\r\nGET\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'get' command\r\n");
    req_err("*3\r\n$3\r\nGeT\r\n$1\r\na\r\n$1\r\nb\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'get' command\r\n");
    req_err("*4\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'mset' command\r\n");
    req_err("MSET a\r\n", REDIS_ERR_ARITY, "-ERR wrong number of arguments for 'mset' command\r\n");
    req_err("MSET a 1 b 2 c\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'mset' command\r\n");
    req_err("PING a b\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'ping' command\r\n");
    req_err("ECHO\r\n", REDIS_ERR_ARITY, "-ERR wrong number of arguments for 'echo' command\r\n");
    req_err("SELECT 1 2\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'select' command\r\n");
    req_err("auth\r\n", REDIS_ERR_ARITY, "-ERR wrong number of arguments for 'auth' command\r\n");
    req_err("auth a b c\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'auth' command\r\n");
    req_err("EVAL s\r\n", REDIS_ERR_ARITY, "-ERR wrong number of arguments for 'eval' command\r\n");
    req_err("GETEX\r\n", REDIS_ERR_ARITY, "-ERR wrong number of arguments for 'getex' command\r\n");
    req_err("SET k\r\n", REDIS_ERR_ARITY, "-ERR wrong number of arguments for 'set' command\r\n");
    req_err("GEORADIUS k 1 2 3\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'georadius' command\r\n");
    req_err("DEL\r\n", REDIS_ERR_ARITY, "-ERR wrong number of arguments for 'del' command\r\n");
    req_ok("SET k v EX 10 NX GET\r\n", "set");
    req_ok("BITCOUNT k 0 -1 BIT\r\n", "bitcount");
    req_ok("MSET a 1\r\n", "mset");
    req_ok("MGET a b c d e f g\r\n", "mget");
    req_ok("EVAL s 0\r\n", "eval");
    req_ok("PING\r\n", "ping");
    req_ok("AUTH user pass\r\n", "auth");
}
END_TEST

START_TEST(test_unsupported)
{
    struct sbuf b = { 0 };
    struct redis_req r;
    char out[REDIS_ERR_REPLY_MAX], want[REDIS_ERR_REPLY_MAX];
    char name[300];
    size_t n;

    r = req_err("*2\r\n$6\r\nFOOBAR\r\n$1\r\nx\r\n", REDIS_ERR_UNSUPPORTED,
                "-ERR unsupported command 'FOOBAR'\r\n");
    ck_assert_ptr_null(r.cmd);
    ck_assert_uint_eq(r.total_len, 23);
    ck_assert(!redis_error_closes(REDIS_ERR_UNSUPPORTED));
    r = req_err("MOVE k 1\r\n", REDIS_ERR_UNSUPPORTED, "-ERR unsupported command 'MOVE'\r\n");
    ck_assert_ptr_nonnull(r.cmd);
    ck_assert_str_eq(r.cmd->name, "move");
    req_err("*3\r\n$4\r\nmove\r\n$1\r\nk\r\n$1\r\n1\r\n", REDIS_ERR_UNSUPPORTED,
            "-ERR unsupported command 'move'\r\n");
    /* the wrong arity of an unsupported command is still "unsupported" */
    req_err("move\r\n", REDIS_ERR_UNSUPPORTED, "-ERR unsupported command 'move'\r\n");
    req_err("multi\r\n", REDIS_ERR_UNSUPPORTED, "-ERR unsupported command 'multi'\r\n");
    req_err("*1\r\n$0\r\n\r\n", REDIS_ERR_UNSUPPORTED, "-ERR unsupported command ''\r\n");
    /* CR and LF in the name become spaces, as Redis does */
    req_err("*2\r\n$4\r\na\r\nb\r\n$1\r\nx\r\n", REDIS_ERR_UNSUPPORTED,
            "-ERR unsupported command 'a  b'\r\n");

    /* a long name is cut to 128 bytes */
    memset(name, 'q', sizeof(name));
    sb_str(&b, "*1\r\n");
    sb_bulk(&b, name, sizeof(name));
    ck_assert_int_eq(preq_n(b.p, b.len, BIG_MAX, &r), REDIS_PARSE_ERROR);
    ck_assert_int_eq(r.err, REDIS_ERR_UNSUPPORTED);
    ck_assert_uint_eq(r.total_len, b.len);
    n = redis_error_reply(&r, b.p, out, sizeof(out));
    snprintf(want, sizeof(want), "-ERR unsupported command '%.128s'\r\n", name);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert(memcmp(out, want, n) == 0);
    /* too small an output buffer: nothing */
    ck_assert_uint_eq(redis_error_reply(&r, b.p, out, 20), 0);
    free(b.p);
}
END_TEST

START_TEST(test_framing_errors)
{
    const char *ml = "-ERR Protocol error: invalid multibulk length\r\n";
    const char *bl = "-ERR Protocol error: invalid bulk length\r\n";

    req_err("*abc\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*-2\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*-0\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*+1\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*01\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*1 \r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*1\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*1\rx", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*1048577\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*2147483647\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*2147483648\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*99999999999999999999999999\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*-99999999999999999999999999\r\n", REDIS_ERR_MULTIBULK_LEN, ml);
    /* decided as soon as the digits say so, no "\r\n" needed */
    req_err("*2147483647", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*-2", REDIS_ERR_MULTIBULK_LEN, ml);
    req_err("*1x", REDIS_ERR_MULTIBULK_LEN, ml);

    req_err("*1\r\n$-1\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$-5\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$abc\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$04\r\nPING\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$+4\r\nPING\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$4 \r\nPING\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$4\nPING\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$536870913\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$999999999999\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$999999999999", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$-", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$99999999999999999999999999999999\r\n", REDIS_ERR_BULK_LEN, bl);
    /* a body that is not its declared length */
    req_err("*1\r\n$4\r\nPINGxx", REDIS_ERR_BULK_LEN, bl);
    req_err("*1\r\n$4\r\nPIN\r\n\r\n", REDIS_ERR_BULK_LEN, bl);
    req_err("*2\r\n$3\r\nGET\r\n$1\r\nab\r\n", REDIS_ERR_BULK_LEN, bl);

    req_err("*1\r\nx4\r\nPING\r\n", REDIS_ERR_EXPECTED_DOLLAR,
            "-ERR Protocol error: expected '$', got 'x'\r\n");
    req_err("*2\r\n$3\r\nGET\r\n:1\r\n", REDIS_ERR_EXPECTED_DOLLAR,
            "-ERR Protocol error: expected '$', got ':'\r\n");
    req_err("*1\r\n\r\n", REDIS_ERR_EXPECTED_DOLLAR,
            "-ERR Protocol error: expected '$', got ' '\r\n");
    req_err("*1\r\n\n", REDIS_ERR_EXPECTED_DOLLAR,
            "-ERR Protocol error: expected '$', got ' '\r\n");
    req_err("*2\r\n$4\r\nPING\r\n*1\r\n", REDIS_ERR_EXPECTED_DOLLAR,
            "-ERR Protocol error: expected '$', got '*'\r\n");

    ck_assert(redis_error_closes(REDIS_ERR_MULTIBULK_LEN));
    ck_assert(redis_error_closes(REDIS_ERR_BULK_LEN));
    ck_assert(redis_error_closes(REDIS_ERR_EXPECTED_DOLLAR));
    ck_assert(redis_error_closes(REDIS_ERR_TOO_LARGE));
    ck_assert(redis_error_closes(REDIS_ERR_INLINE_TOO_LONG));
    ck_assert(!redis_error_closes(REDIS_ERR_ARITY));
    ck_assert(!redis_error_closes(REDIS_ERR_UNSUPPORTED));
    ck_assert(!redis_error_closes(REDIS_ERR_EMPTY));
    ck_assert(!redis_error_closes(REDIS_ERR_NONE));

    /* the largest legal lengths wait for their bodies */
    {
        struct redis_req r;
        ck_assert_int_eq(preq_n("*1048576\r\n", 10, UINT64_MAX, &r), REDIS_PARSE_AGAIN);
        ck_assert_int_eq(preq_n("*1\r\n$536870912\r\n", 17, UINT64_MAX, &r), REDIS_PARSE_AGAIN);
        ck_assert_int_eq(preq("*1\r\n$5368709", &r), REDIS_PARSE_AGAIN);
        ck_assert_int_eq(preq("*1\r\n$0", &r), REDIS_PARSE_AGAIN);
        ck_assert_int_eq(preq("*1\r", &r), REDIS_PARSE_AGAIN);
        ck_assert_int_eq(preq("*-1", &r), REDIS_PARSE_AGAIN);
    }
    check_str_feeds("*1\r\n$4\r\nPINGxx", BIG_MAX, false);
    check_str_feeds("*1\r\n$999999999999\r\n", BIG_MAX, false);
    check_str_feeds("*3\r\n$3\r\nSET\r\nk\r\n", BIG_MAX, false);
}
END_TEST

START_TEST(test_empty)
{
    struct redis_req r;

    r = req_err("*0\r\n", REDIS_ERR_EMPTY, NULL);
    ck_assert_uint_eq(r.total_len, 4);
    r = req_err("*-1\r\n", REDIS_ERR_EMPTY, NULL);
    ck_assert_uint_eq(r.total_len, 5);
    r = req_err("\r\n", REDIS_ERR_EMPTY, NULL);
    ck_assert_uint_eq(r.total_len, 2);
    ck_assert(r.is_inline);
    r = req_err("\n", REDIS_ERR_EMPTY, NULL);
    ck_assert_uint_eq(r.total_len, 1);
    r = req_err("  \t \r\n", REDIS_ERR_EMPTY, NULL);
    ck_assert_uint_eq(r.total_len, 6);
    ck_assert_uint_eq(r.argc, 0);
    check_str_feeds("*0\r\n*-1\r\n\r\n\n   \r\nPING\r\n*1\r\n$4\r\nPING\r\n", BIG_MAX, false);
    ck_assert_uint_eq(run_a.n, 8);
    ck_assert_int_eq(run_a.s[5].req.rc, REDIS_PARSE_OK);
    ck_assert_int_eq(run_a.s[6].req.rc, REDIS_PARSE_OK);
    ck_assert_int_eq(run_a.s[7].req.rc, REDIS_PARSE_AGAIN);
}
END_TEST

START_TEST(test_too_large)
{
    const char *tl = "-ERR Protocol error: request too large\r\n";
    const char *s = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n";
    size_t len = strlen(s);
    struct redis_req r;

    /* exactly the limit fits, one byte less does not */
    ck_assert_int_eq(preq_n(s, len, len, &r), REDIS_PARSE_OK);
    req_err_max(s, len - 1, REDIS_ERR_TOO_LARGE, tl);
    /* decided by the header, before the body arrives */
    req_err_max("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n", 50, REDIS_ERR_TOO_LARGE, tl);
    /* but only once the length is whole: lengths are checked first */
    ck_assert_int_eq(preq_n("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100", 24, 50, &r), REDIS_PARSE_AGAIN);
    /* arguments still to come count at least 6 bytes each */
    req_err_max("*1000\r\n", 100, REDIS_ERR_TOO_LARGE, tl);
    /* here 18 bytes of headers, 60 + 2 of body, 6 for the third argument */
    req_err_max("*3\r\n$3\r\nSET\r\n$60\r\n", 85, REDIS_ERR_TOO_LARGE, tl);
    ck_assert_int_eq(preq_n("*3\r\n$3\r\nSET\r\n$60\r\n", 18, 86, &r), REDIS_PARSE_AGAIN);
    /* lengths are checked before the size */
    req_err_max("*1\r\n$536870913\r\n", 10, REDIS_ERR_BULK_LEN,
                "-ERR Protocol error: invalid bulk length\r\n");
    req_err_max("*1048577\r\n", 10, REDIS_ERR_MULTIBULK_LEN,
                "-ERR Protocol error: invalid multibulk length\r\n");
    /* inline: the line itself against the limit */
    ck_assert_int_eq(preq_n("GET k\r\n", 7, 7, &r), REDIS_PARSE_OK);
    req_err_max("GET k\r\n", 6, REDIS_ERR_TOO_LARGE, tl);
    req_err_max("GET kkkkkkkkkkkk", 6, REDIS_ERR_TOO_LARGE, tl);
    check_all_feeds((const uint8_t *)s, len, len - 1, false, true);
    check_all_feeds((const uint8_t *)s, len, 30, false, true);
    check_all_feeds((const uint8_t *)s, len, len, false, true);
}
END_TEST

/* The multibulk form of the whole inline request s equals want. */
static void
inline_encodes(const char *s, size_t slen, const char *name, const void *want, size_t want_len)
{
    struct redis_req r = req_ok_n(s, slen, name);
    uint8_t *out = malloc(redis_inline_encoded_max(&r));
    size_t n;

    ck_assert(r.is_inline);
    ck_assert_ptr_nonnull(out);
    n = redis_inline_encode(&r, (const uint8_t *)s, out);
    ck_assert_uint_le(n, redis_inline_encoded_max(&r));
    ck_assert_msg(n == want_len && memcmp(out, want, n) == 0, "%s encodes as '%.*s'", s, (int)n,
                  (const char *)out);
    free(out);
}

#define ENC(s, name, want) inline_encodes(s, sizeof(s) - 1, name, want, sizeof(want) - 1)

START_TEST(test_inline)
{
    struct redis_req r;
    size_t cur = 0, off, alen;
    const char *uq = "-ERR Protocol error: unbalanced quotes in request\r\n";

    r = req_ok("GET k\r\n", "get");
    ck_assert(r.is_inline);
    ck_assert_uint_eq(r.argc, 2);
    ck_assert_uint_eq(r.name_off, 0);
    ck_assert_uint_eq(r.name_len, 3);
    (void)cur;
    (void)off;
    (void)alen;
    req_ok("get k\n", "get");
    req_ok("PING\r\n", "ping");
    req_ok("ping\n", "ping");
    r = req_ok("  SeT\tk  \t v\r\n", "set");
    ck_assert_uint_eq(r.argc, 3);
    ck_assert_uint_eq(r.name_off, 2);
    ck_assert_uint_eq(r.name_len, 3);
    ENC("  SeT\tk  \t v\r\n", "set", "*3\r\n$3\r\nSeT\r\n$1\r\nk\r\n$1\r\nv\r\n");
    ENC("GET k\n", "get", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");

    /* quotes and escapes, as Redis splits inline arguments */
    ENC("SET qk \"hello world\"\r\n", "set",
        "*3\r\n$3\r\nSET\r\n$2\r\nqk\r\n$11\r\nhello world\r\n");
    ENC("ECHO \"a\\x41\\n\\\"b\\\\\"\r\n", "echo", "*2\r\n$4\r\nECHO\r\n$6\r\naA\n\"b\\\r\n");
    ENC("ECHO \"\\t\\r\\b\\a\\q\"\r\n", "echo", "*2\r\n$4\r\nECHO\r\n$5\r\n\t\r\b\aq\r\n");
    ENC("ECHO 'it\\'s \"x\"'\r\n", "echo", "*2\r\n$4\r\nECHO\r\n$8\r\nit's \"x\"\r\n");
    ENC("ECHO ''\r\n", "echo", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
    ENC("ECHO ab\"c d\"\r\n", "echo", "*2\r\n$4\r\nECHO\r\n$5\r\nabc d\r\n");
    ENC("ECHO \"\\xzz\"\r\n", "echo", "*2\r\n$4\r\nECHO\r\n$3\r\nxzz\r\n");
    /* a quoted command name is looked up decoded */
    r = req_ok("\"get\" k\r\n", "get");
    ck_assert_uint_eq(r.name_off, 0);
    ck_assert_uint_eq(r.name_len, 5);
    /* a NUL ends the line for Redis's splitter */
    ENC("GET k\0junk\r\n", "get", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    /* a quote left open, or a closing quote that does not end its argument */
    req_err("ECHO \"abc\r\n", REDIS_ERR_UNBALANCED_QUOTES, uq);
    req_err("ECHO 'abc\r\n", REDIS_ERR_UNBALANCED_QUOTES, uq);
    req_err("ECHO \"a\"b\r\n", REDIS_ERR_UNBALANCED_QUOTES, uq);
    req_err("ECHO 'a'b\r\n", REDIS_ERR_UNBALANCED_QUOTES, uq);
    ck_assert(redis_error_closes(REDIS_ERR_UNBALANCED_QUOTES));
    /* quote processing makes "a b" one argument */
    req_err("ECHO a b\r\n", REDIS_ERR_ARITY,
            "-ERR wrong number of arguments for 'echo' command\r\n");
    req_ok("ECHO \"a b\"\r\n", "echo");
    /* a line starting with other RESP type bytes is just a line */
    req_err("$3\r\n", REDIS_ERR_UNSUPPORTED, "-ERR unsupported command '$3'\r\n");
    req_err("foo\r\n", REDIS_ERR_UNSUPPORTED, "-ERR unsupported command 'foo'\r\n");
    /* a '\r' in the middle ends an argument, as in Redis */
    r = req_ok("GET\rk\r\n", "get");
    ck_assert_uint_eq(r.argc, 2);

    /* incomplete lines wait */
    ck_assert_int_eq(preq("GET k", &r), REDIS_PARSE_AGAIN);
    ck_assert_int_eq(preq("GET k\r", &r), REDIS_PARSE_AGAIN);
    check_str_feeds("GET k\r\nSET k v\nMGET a b c\r\nnope\r\nPING\r\nSET q \"a b\"\r\n", BIG_MAX,
                    false);
    ck_assert_uint_eq(run_a.n, 7);
}
END_TEST

START_TEST(test_inline_args)
{
    size_t cur = 0, alen;
    uint8_t out[16];
    const char *s = "  a  \"b c\" 'd'";

    ck_assert_int_eq(redis_inline_next_arg((const uint8_t *)s, strlen(s), &cur, out, &alen), 1);
    ck_assert_uint_eq(alen, 1);
    ck_assert_int_eq(out[0], 'a');
    ck_assert_int_eq(redis_inline_next_arg((const uint8_t *)s, strlen(s), &cur, out, &alen), 1);
    ck_assert(alen == 3 && memcmp(out, "b c", 3) == 0);
    ck_assert_int_eq(redis_inline_next_arg((const uint8_t *)s, strlen(s), &cur, NULL, &alen), 1);
    ck_assert_uint_eq(alen, 1);
    ck_assert_int_eq(redis_inline_next_arg((const uint8_t *)s, strlen(s), &cur, out, &alen), 0);
    cur = 0;
    ck_assert_int_eq(redis_inline_next_arg((const uint8_t *)"\"x", 2, &cur, out, &alen), -1);
}
END_TEST

START_TEST(test_inline_too_long)
{
    const char *tl = "-ERR Protocol error: too big inline request\r\n";
    size_t n = REDIS_INLINE_SEARCH;
    char *s = malloc(n + 3);
    struct redis_req r;

    ck_assert_ptr_nonnull(s);
    /* a line whose '\n' is the last byte Redis would look at is fine */
    memcpy(s, "ECHO ", 5);
    memset(s + 5, 'a', n - 5);
    s[n - 2] = '\r';
    s[n - 1] = '\n';
    s[n] = '\0';
    r = req_ok(s, "echo");
    ck_assert_uint_eq(r.total_len, n);
    /* so is one over Redis's 64 KiB inline limit */
    ck_assert_uint_gt(n, REDIS_MAX_INLINE + 1024);
    /* one byte more is not */
    s[n - 2] = 'a';
    s[n - 1] = '\r';
    s[n] = '\n';
    s[n + 1] = '\0';
    req_err(s, REDIS_ERR_INLINE_TOO_LONG, tl);
    /* nor is a line that never ends, decided once the limit is reached */
    s[n] = 'a';
    s[n + 1] = '\0';
    req_err(s, REDIS_ERR_INLINE_TOO_LONG, tl);
    ck_assert_int_eq(preq_n(s, n - 1, BIG_MAX, &r), REDIS_PARSE_AGAIN);
    check_all_feeds((const uint8_t *)s, n + 1, BIG_MAX, false, true);
    free(s);
}
END_TEST

START_TEST(test_binary_values)
{
    static const uint8_t val[] = {
        'a', '\r', '\n', '*', '1', '\r', '\n', '$', 0, 0xff, '\n', '\r'
    };
    struct sbuf b = { 0 };
    struct redis_req r;

    sb_str(&b, "*3\r\n");
    sb_bulk(&b, "SET", 3);
    sb_bulk(&b, "k\r\n", 3);
    sb_bulk(&b, val, sizeof(val));
    r = req_ok_n(b.p, b.len, "set");
    ck_assert_uint_eq(r.argc, 3);
    ck_assert_uint_eq(r.args[0].len, 3);
    ck_assert(memcmp(b.p + r.args[0].off, "SET", 3) == 0);
    ck_assert_uint_eq(r.args[1].len, 3);
    ck_assert(memcmp(b.p + r.args[1].off, "k\r\n", 3) == 0);
    ck_assert_uint_eq(r.args[2].len, sizeof(val));
    ck_assert(memcmp(b.p + r.args[2].off, val, sizeof(val)) == 0);
    check_all_feeds(b.p, b.len, BIG_MAX, false, true);
    free(b.p);
}
END_TEST

START_TEST(test_next_arg)
{
    const char *s = "*4\r\n$4\r\nMGET\r\n$0\r\n\r\n$2\r\nab\r\n$10\r\n0123456789\r\n";
    static const char *const want[] = { "MGET", "", "ab", "0123456789" };
    struct redis_req r = req_ok(s, "mget");

    /* recorded as the parse passed them */
    ck_assert_uint_eq(r.argc, 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(r.args[i].len, strlen(want[i]));
        ck_assert(memcmp(s + r.args[i].off, want[i], r.args[i].len) == 0);
        ck_assert(s[r.args[i].off + r.args[i].len] == '\r');
    }

    /* an unsupported request's are recorded too, e.g. to log it */
    s = "*2\r\n$3\r\nFOO\r\n$1\r\nx\r\n";
    ck_assert_int_eq(preq(s, &r), REDIS_PARSE_ERROR);
    ck_assert_uint_eq(r.argc, 2);
    ck_assert(memcmp(s + r.args[1].off, "x", 1) == 0);

    /* more arguments than the caller has room for: it is asked for more */
    struct redis_arg two[2];
    s = "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n";
    redis_req_init(&r, two, 2);
    ck_assert_int_eq(redis_parse_req(&r, (const uint8_t *)s, strlen(s), BIG_MAX), REDIS_PARSE_ARGS);
    ck_assert_uint_eq(r.argc, 3);
    ck_assert_int_eq(redis_parse_req(&r, (const uint8_t *)s, strlen(s), BIG_MAX), REDIS_PARSE_ARGS);
    struct redis_arg three[3];
    r.args = three;
    r.args_cap = 3;
    ck_assert_int_eq(redis_parse_req(&r, (const uint8_t *)s, strlen(s), BIG_MAX), REDIS_PARSE_OK);
    ck_assert(memcmp(s + three[2].off, "b", 1) == 0);
}
END_TEST

START_TEST(test_big_value)
{
    size_t vlen = 5u << 20;
    uint8_t *val = malloc(vlen);
    struct sbuf b = { 0 };
    uint64_t seed = 42;
    struct redis_req r;

    ck_assert_ptr_nonnull(val);
    for (size_t i = 0; i < vlen; i++) {
        val[i] = (uint8_t)util_rand64(&seed);
    }
    sb_str(&b, "*3\r\n");
    sb_bulk(&b, "SET", 3);
    sb_bulk(&b, "big", 3);
    sb_bulk(&b, val, vlen);
    sb_str(&b, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    r = req_ok_n(b.p, b.len - 22, "set");
    ck_assert_uint_eq(r.args[2].len, vlen);
    ck_assert(memcmp(b.p + r.args[2].off, val, vlen) == 0);
    check_all_feeds(b.p, b.len, BIG_MAX, false, true);
    ck_assert_uint_eq(run_a.n, 3);
    ck_assert_uint_eq(run_a.s[1].pos, b.len - 22);
    /* the same request against a 5 MiB limit is refused by its header */
    ck_assert_int_eq(preq_n(b.p, 40, 5u << 20, &r), REDIS_PARSE_ERROR);
    ck_assert_int_eq(r.err, REDIS_ERR_TOO_LARGE);
    free(val);
    free(b.p);
}
END_TEST

START_TEST(test_pipeline)
{
    const char *s = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                    "PING\r\n"
                    "*0\r\n"
                    "*1\r\n$3\r\nGET\r\n"
                    "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$3\r\nv\r\n\r\n"
                    "\r\n"
                    "FOO bar\r\n"
                    "*3\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n"
                    "*2\r\n$4\r\nECHO\r\n$3\r\nhi";
    static const struct {
        enum redis_parse rc;
        enum redis_req_error err;
    } want[] = {
        { REDIS_PARSE_OK, REDIS_ERR_NONE },           { REDIS_PARSE_OK, REDIS_ERR_NONE },
        { REDIS_PARSE_ERROR, REDIS_ERR_EMPTY },       { REDIS_PARSE_ERROR, REDIS_ERR_ARITY },
        { REDIS_PARSE_OK, REDIS_ERR_NONE },           { REDIS_PARSE_ERROR, REDIS_ERR_EMPTY },
        { REDIS_PARSE_ERROR, REDIS_ERR_UNSUPPORTED }, { REDIS_PARSE_OK, REDIS_ERR_NONE },
        { REDIS_PARSE_AGAIN, REDIS_ERR_NONE },
    };

    check_str_feeds(s, BIG_MAX, false);
    ck_assert_uint_eq(run_a.n, ARRAY_SIZE(want));
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        ck_assert_msg(run_a.s[i].req.rc == want[i].rc && run_a.s[i].req.err == want[i].err,
                      "step %zu: %d/%d", i, run_a.s[i].req.rc, run_a.s[i].req.err);
    }

    /* a closing error stops the stream; earlier requests stand */
    s = "PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$x\r\nGET k\r\n";
    check_str_feeds(s, BIG_MAX, false);
    ck_assert_uint_eq(run_a.n, 3);
    ck_assert_int_eq(run_a.s[2].req.err, REDIS_ERR_BULK_LEN);
}
END_TEST

START_TEST(test_many_requests)
{
    struct sbuf b = { 0 };
    uint64_t seed = 5;
    const char *argv[8];

    /* 300 random well-formed requests, multibulk and inline, run back to back */
    for (int i = 0; i < 300; i++) {
        uint64_t x = util_rand64(&seed);
        size_t n;
        size_t tn;
        const struct redis_cmd *t = redis_cmd_table(&tn);
        const struct redis_cmd *c = &t[x % tn];

        argv[0] = c->name;
        n = 1 + (size_t)c->min_args + (size_t)((x >> 16) % 3);
        if (c->max_args >= 0 && n > 1 + (size_t)c->max_args) {
            n = 1 + (size_t)c->max_args;
        }
        n = MIN(n, ARRAY_SIZE(argv));
        for (size_t k = 1; k < n; k++) {
            argv[k] = (x >> (20 + k)) & 1 ? "key" : "v\r\nx";
        }
        if ((x >> 40) & 1) {
            sb_cmd(&b, n, argv);
        } else {
            sb_str(&b, c->name);
            for (size_t k = 1; k < n; k++) {
                sb_str(&b, " a");
            }
            sb_str(&b, (x >> 41) & 1 ? "\r\n" : "\n");
        }
    }
    check_all_feeds(b.p, b.len, BIG_MAX, false, true);
    ck_assert_uint_eq(run_a.n, 301);
    free(b.p);
}
END_TEST

START_TEST(test_random_garbage)
{
    static const char alphabet[] = "*$-:+\r\n0123456789abcGETSET ";
    uint8_t buf[512];
    uint64_t seed = 7;

    for (int round = 0; round < 2000; round++) {
        size_t n = stream_garbage(buf, sizeof(buf), alphabet, &seed);

        check_all_feeds(buf, n, round & 1 ? 64 : BIG_MAX, round & 2, round < 200);
    }
}
END_TEST

/* ---- replies ---- */

static struct redis_rsp
rsp_ok(const char *s, enum redis_rsp_type type, int64_t integer)
{
    struct redis_rsp r;
    enum redis_parse rc;

    rsp_init(&r);
    rc = redis_parse_rsp(&r, (const uint8_t *)s, strlen(s));
    ck_assert_msg(rc == REDIS_PARSE_OK, "not OK: %s (%d)", s, rc);
    ck_assert_int_eq(r.type, type);
    ck_assert_int_eq(r.integer, integer);
    ck_assert_uint_eq(r.total_len, strlen(s));
    /* a finished parse repeats its result */
    ck_assert_int_eq(redis_parse_rsp(&r, (const uint8_t *)s, strlen(s)), REDIS_PARSE_OK);
    ck_assert_uint_eq(r.total_len, strlen(s));
    for (size_t i = 0; i < strlen(s); i++) {
        struct redis_rsp p;
        rsp_init(&p);
        ck_assert_int_eq(redis_parse_rsp(&p, (const uint8_t *)s, i), REDIS_PARSE_AGAIN);
    }
    check_str_feeds(s, 0, true);
    return r;
}

static void
rsp_bad(const char *s, size_t len)
{
    struct redis_rsp r;

    rsp_init(&r);
    ck_assert_msg(redis_parse_rsp(&r, (const uint8_t *)s, len) == REDIS_PARSE_ERROR,
                  "not ERROR: %s", s);
    /* and it stays failed */
    ck_assert_int_eq(redis_parse_rsp(&r, (const uint8_t *)s, len), REDIS_PARSE_ERROR);
    check_all_feeds((const uint8_t *)s, len, 0, true, true);
}

START_TEST(test_rsp_types)
{
    rsp_ok("+OK\r\n", REDIS_RSP_STATUS, 0);
    rsp_ok("+\r\n", REDIS_RSP_STATUS, 0);
    rsp_ok("-ERR wrong\r\n", REDIS_RSP_ERROR, 0);
    rsp_ok("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
           REDIS_RSP_ERROR, 0);
    rsp_ok(":0\r\n", REDIS_RSP_INTEGER, 0);
    rsp_ok(":42\r\n", REDIS_RSP_INTEGER, 42);
    rsp_ok(":-1\r\n", REDIS_RSP_INTEGER, -1);
    rsp_ok(":9223372036854775807\r\n", REDIS_RSP_INTEGER, INT64_MAX);
    rsp_ok(":-9223372036854775808\r\n", REDIS_RSP_INTEGER, INT64_MIN);
    rsp_ok("$5\r\nhello\r\n", REDIS_RSP_BULK, 5);
    rsp_ok("$0\r\n\r\n", REDIS_RSP_BULK, 0);
    rsp_ok("$4\r\n\r\n\r\n\r\n", REDIS_RSP_BULK, 4);
    rsp_ok("$-1\r\n", REDIS_RSP_BULK, -1);
    rsp_ok("*-1\r\n", REDIS_RSP_ARRAY, -1);
    rsp_ok("*0\r\n", REDIS_RSP_ARRAY, 0);
    rsp_ok("*3\r\n$1\r\na\r\n$-1\r\n:7\r\n", REDIS_RSP_ARRAY, 3);
    rsp_ok("*2\r\n*2\r\n+a\r\n-b\r\n*0\r\n", REDIS_RSP_ARRAY, 2);
    rsp_ok("*2\r\n*-1\r\n*1\r\n*1\r\n$2\r\n\r\n\r\n", REDIS_RSP_ARRAY, 2);
    /* a status line may carry a lone '\r' in its text */
    rsp_ok("+a\rb\r\n", REDIS_RSP_STATUS, 0);
}
END_TEST

START_TEST(test_rsp_deep)
{
    size_t depth = 10000;
    struct sbuf b = { 0 };
    struct redis_rsp r;
    size_t cur = 0, off, elen;

    for (size_t i = 0; i < depth; i++) {
        sb_str(&b, "*1\r\n");
    }
    sb_str(&b, ":1\r\n");
    redis_rsp_init(&r);
    ck_assert_int_eq(redis_parse_rsp(&r, b.p, b.len), REDIS_PARSE_OK);
    ck_assert_int_eq(r.type, REDIS_RSP_ARRAY);
    ck_assert_int_eq(r.integer, 1);
    ck_assert_uint_eq(r.total_len, b.len);
    ck_assert(redis_next_elem(b.p, b.len, &cur, &off, &elen));
    ck_assert_uint_eq(off, 4);
    ck_assert_uint_eq(elen, b.len - 4);
    ck_assert(!redis_next_elem(b.p, b.len, &cur, &off, &elen));
    check_all_feeds(b.p, b.len, 0, true, true);
    ck_assert_uint_eq(run_a.n, 2);

    /* deep and wide: 10000 nested arrays of two, the second a bulk */
    b.len = 0;
    for (size_t i = 0; i < depth; i++) {
        sb_str(&b, "*2\r\n$1\r\nx\r\n");
    }
    sb_str(&b, "$-1\r\n");
    sb_str(&b, "+next\r\n");
    check_all_feeds(b.p, b.len, 0, true, true);
    ck_assert_uint_eq(run_a.n, 3);
    ck_assert_uint_eq(run_a.s[0].rsp_len, b.len - 7);
    ck_assert_int_eq(run_a.s[1].rsp_type, REDIS_RSP_STATUS);
    free(b.p);
}
END_TEST

START_TEST(test_rsp_wide)
{
    struct sbuf b = { 0 };
    struct redis_rsp r;
    size_t cur = 0, off, elen, n = 0;

    sb_str(&b, "*100000\r\n");
    for (size_t i = 0; i < 100000; i++) {
        sb_str(&b, i % 3 == 0 ? "$-1\r\n" : i % 3 == 1 ? "$3\r\nabc\r\n" : ":12\r\n");
    }
    redis_rsp_init(&r);
    ck_assert_int_eq(redis_parse_rsp(&r, b.p, b.len), REDIS_PARSE_OK);
    ck_assert_int_eq(r.integer, 100000);
    while (redis_next_elem(b.p, r.total_len, &cur, &off, &elen)) {
        ck_assert_uint_eq(elen, n % 3 == 0 ? 5 : n % 3 == 1 ? 9 : 5);
        n++;
    }
    ck_assert_uint_eq(n, 100000);
    check_all_feeds(b.p, b.len, 0, true, false);
    free(b.p);
}
END_TEST

START_TEST(test_rsp_malformed)
{
    // clang-format off
    static const char *const bad[] = {
        "?\r\n", "OK\r\n", "\r\n", " +OK\r\n", "+OK\n", "-ERR\n", ":\r\n", ":abc\r\n", ":1x\r\n",
        ":+1\r\n", ":01\r\n", ":-0\r\n", ":9223372036854775808\r\n", ":-9223372036854775809\r\n",
        "$\r\n", "$-2\r\n", "$-0\r\n", "$01\r\n", "$1x\r\n", "$536870913\r\n", "$3\r\nabcd\r\n",
        "$3\n", "*-2\r\n", "*x\r\n", "*2147483648\r\n", "*1\r\n?\r\n",
        "*2\r\n:1\r\nfoo\r\n", "*1\r\n$2\r\nabc\r\n", "%1\r\n", "_\r\n", ",1.5\r\n", "#t\r\n",
        "(1\r\n", "=3\r\ntxt\r\n", ">1\r\n", "~1\r\n", "|1\r\n", "$1\r\na\rx",
    };
    // clang-format on
    char *s;

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        rsp_bad(bad[i], strlen(bad[i]));
    }
    rsp_bad("+O\0K\n", 5);
    /* a status line that never ends fails at the limit, not later */
    s = malloc(REDIS_MAX_RSP_LINE + 1);
    ck_assert_ptr_nonnull(s);
    s[0] = '-';
    memset(s + 1, 'e', REDIS_MAX_RSP_LINE);
    {
        struct redis_rsp r;
        redis_rsp_init(&r);
        ck_assert_int_eq(redis_parse_rsp(&r, (const uint8_t *)s, REDIS_MAX_RSP_LINE - 1),
                         REDIS_PARSE_AGAIN);
        ck_assert_int_eq(redis_parse_rsp(&r, (const uint8_t *)s, REDIS_MAX_RSP_LINE),
                         REDIS_PARSE_ERROR);
        /* the longest allowed line */
        s[REDIS_MAX_RSP_LINE - 2] = '\r';
        s[REDIS_MAX_RSP_LINE - 1] = '\n';
        redis_rsp_init(&r);
        ck_assert_int_eq(redis_parse_rsp(&r, (const uint8_t *)s, REDIS_MAX_RSP_LINE),
                         REDIS_PARSE_OK);
        ck_assert_int_eq(r.type, REDIS_RSP_ERROR);
        ck_assert_uint_eq(r.total_len, REDIS_MAX_RSP_LINE);
    }
    free(s);
}
END_TEST

START_TEST(test_rsp_incomplete)
{
    // clang-format off
    static const char *const again[] = {
        "", "+", "+OK", "+OK\r", ":", ":12", ":-", "$", "$5", "$5\r", "$5\r\n", "$5\r\nhel",
        "$5\r\nhello", "$5\r\nhello\r", "*", "*2\r\n", "*2\r\n:1\r\n", "*2\r\n*1\r\n:1\r\n",
        "$-", "$-1", "$-1\r", "*1\r\n$3\r\nab", "$536870912\r\n",
    };
    // clang-format on

    for (size_t i = 0; i < ARRAY_SIZE(again); i++) {
        struct redis_rsp r;
        redis_rsp_init(&r);
        ck_assert_msg(redis_parse_rsp(&r, (const uint8_t *)again[i], strlen(again[i])) ==
                          REDIS_PARSE_AGAIN,
                      "not AGAIN: %s", again[i]);
    }
}
END_TEST

START_TEST(test_rsp_stream)
{
    const char *s = "+OK\r\n$3\r\nfoo\r\n*2\r\n$1\r\na\r\n$-1\r\n:5\r\n-ERR x\r\n*0\r\n*-1\r\n"
                    "$0\r\n\r\n*1\r\n*1\r\n*0\r\n+PONG\r\n$2\r\nab";

    check_str_feeds(s, 0, true);
    ck_assert_uint_eq(run_a.n, 11);
    ck_assert_int_eq(run_a.s[0].rsp_type, REDIS_RSP_STATUS);
    ck_assert_int_eq(run_a.s[1].rsp_type, REDIS_RSP_BULK);
    ck_assert_int_eq(run_a.s[2].rsp_type, REDIS_RSP_ARRAY);
    ck_assert_int_eq(run_a.s[2].rsp_integer, 2);
    ck_assert_int_eq(run_a.s[3].rsp_type, REDIS_RSP_INTEGER);
    ck_assert_int_eq(run_a.s[3].rsp_integer, 5);
    ck_assert_int_eq(run_a.s[4].rsp_type, REDIS_RSP_ERROR);
    ck_assert_int_eq(run_a.s[6].rsp_integer, -1);
    ck_assert_int_eq(run_a.s[8].rsp_type, REDIS_RSP_ARRAY);
    ck_assert_int_eq(run_a.s[9].rsp_type, REDIS_RSP_STATUS);
    ck_assert_int_eq(run_a.s[10].rsp_rc, REDIS_PARSE_AGAIN);
}
END_TEST

/* RESP3 (HELLO 3 backends): every type, attributes, and RESP2's refusal of them. */
START_TEST(test_rsp3_types)
{
    rsp3 = true;
    rsp_ok("_\r\n", REDIS_RSP_NULL, 0);
    rsp_ok("#t\r\n", REDIS_RSP_BOOLEAN, 1);
    rsp_ok("#f\r\n", REDIS_RSP_BOOLEAN, 0);
    rsp_ok(",1.5\r\n", REDIS_RSP_DOUBLE, 0);
    rsp_ok(",-inf\r\n", REDIS_RSP_DOUBLE, 0);
    rsp_ok("(3492890328409238509324850943850943825024385\r\n", REDIS_RSP_BIG_NUMBER, 0);
    rsp_ok("!21\r\nSYNTAX invalid syntax\r\n", REDIS_RSP_BLOB_ERROR, 21);
    rsp_ok("=15\r\ntxt:Some string\r\n", REDIS_RSP_VERBATIM, 15);
    rsp_ok("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", REDIS_RSP_MAP, 2);
    rsp_ok("%0\r\n", REDIS_RSP_MAP, 0);
    rsp_ok("~3\r\n+a\r\n_\r\n#t\r\n", REDIS_RSP_SET, 3);
    rsp_ok(">2\r\n+message\r\n$2\r\nhi\r\n", REDIS_RSP_PUSH, 2);
    /* nesting of every aggregate in every other */
    rsp_ok("%1\r\n~1\r\n*1\r\n>1\r\n%1\r\n,2\r\n=5\r\nmkd:x\r\n:1\r\n", REDIS_RSP_MAP, 1);
    /* RESP2 types still parse on a RESP3 conn */
    rsp_ok("*2\r\n$1\r\na\r\n:3\r\n", REDIS_RSP_ARRAY, 2);
    rsp_ok("$-1\r\n", REDIS_RSP_BULK, -1);
    /* an attribute goes with the value after it: the reply is that value */
    rsp_ok("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.05\r\n"
           "*2\r\n:2039123\r\n:9543892\r\n",
           REDIS_RSP_ARRAY, 2);
    rsp_ok("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n:7\r\n", REDIS_RSP_INTEGER, 7);
    /* an attribute of an attribute's value */
    rsp_ok("|1\r\n+a\r\n|1\r\n+b\r\n+c\r\n:7\r\n#t\r\n", REDIS_RSP_BOOLEAN, 1);
    /* and inside an aggregate, before an element */
    rsp_ok("*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:1\r\n", REDIS_RSP_ARRAY, 2);
    rsp3 = false;
}
END_TEST

START_TEST(test_rsp3_malformed)
{
    // clang-format off
    static const char *const bad[] = {
        "_x\r\n", "_\n", "#\r\n", "#x\r\n", "#tt\r\n", ",\r\n", "(\r\n", "!-1\r\n", "=-1\r\n",
        "%-1\r\n", "~-1\r\n", ">-1\r\n", "|-1\r\n", "%x\r\n", "%2147483648\r\n",
        /* streamed strings and aggregates: Redis never sends them to a command */
        "$?\r\n;4\r\nHell\r\n;0\r\n", "*?\r\n:1\r\n.\r\n", "%?\r\n", "~?\r\n", ">?\r\n",
        "!3\r\nabcd\r\n", "?\r\n", ";1\r\n", ".\r\n",
    };
    // clang-format on

    rsp3 = true;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        rsp_bad(bad[i], strlen(bad[i]));
    }
    rsp3 = false;
}
END_TEST

START_TEST(test_rsp3_stream)
{
    const char *s = "_\r\n%1\r\n+k\r\n#f\r\n|1\r\n+a\r\n+b\r\n~1\r\n,3.0\r\n"
                    "=8\r\ntxt:abcd\r\n!3\r\nERR\r\n+OK\r\n>1\r\n(12";

    rsp3 = true;
    check_str_feeds(s, 0, true);
    rsp3 = false;
    ck_assert_uint_eq(run_a.n, 7);
    ck_assert_int_eq(run_a.s[0].rsp_type, REDIS_RSP_NULL);
    ck_assert_int_eq(run_a.s[1].rsp_type, REDIS_RSP_MAP);
    ck_assert_int_eq(run_a.s[2].rsp_type, REDIS_RSP_SET);
    ck_assert_uint_eq(run_a.s[2].rsp_len, 22); /* the attribute is part of it */
    ck_assert_int_eq(run_a.s[3].rsp_type, REDIS_RSP_VERBATIM);
    ck_assert_int_eq(run_a.s[4].rsp_type, REDIS_RSP_BLOB_ERROR);
    ck_assert_int_eq(run_a.s[5].rsp_type, REDIS_RSP_STATUS);
    ck_assert_int_eq(run_a.s[6].rsp_rc, REDIS_PARSE_AGAIN);
}
END_TEST

START_TEST(test_rsp_big_value)
{
    size_t vlen = 5u << 20;
    struct sbuf b = { 0 };
    uint8_t *val = malloc(vlen);
    uint64_t seed = 99;

    ck_assert_ptr_nonnull(val);
    for (size_t i = 0; i < vlen; i++) {
        val[i] = (uint8_t)util_rand64(&seed);
    }
    sb_str(&b, "*2\r\n");
    sb_bulk(&b, val, vlen);
    sb_str(&b, "$-1\r\n");
    check_all_feeds(b.p, b.len, 0, true, true);
    ck_assert_uint_eq(run_a.n, 2);
    ck_assert_uint_eq(run_a.s[0].rsp_len, b.len);
    free(val);
    free(b.p);
}
END_TEST

START_TEST(test_next_elem)
{
    const char *s = "*4\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n+x\r\n-ERR e\r\n";
    static const char *const want[] = { "$1\r\na\r\n", "$-1\r\n", "*2\r\n:1\r\n+x\r\n",
                                        "-ERR e\r\n" };
    struct redis_rsp r = rsp_ok(s, REDIS_RSP_ARRAY, 4);
    size_t cur = 0, off, elen, i = 0;

    while (redis_next_elem((const uint8_t *)s, r.total_len, &cur, &off, &elen)) {
        ck_assert_uint_lt(i, 4);
        ck_assert_uint_eq(elen, strlen(want[i]));
        ck_assert(memcmp(s + off, want[i], elen) == 0);
        i++;
    }
    ck_assert_uint_eq(i, 4);

    cur = 0;
    ck_assert(!redis_next_elem((const uint8_t *)"*0\r\n", 4, &cur, &off, &elen));
    cur = 0;
    ck_assert(!redis_next_elem((const uint8_t *)"*-1\r\n", 5, &cur, &off, &elen));
    cur = 0;
    ck_assert(!redis_next_elem((const uint8_t *)"+OK\r\n", 5, &cur, &off, &elen));
    cur = 0;
    ck_assert(!redis_next_elem((const uint8_t *)"", 0, &cur, &off, &elen));
}
END_TEST

static Suite *
proto_redis_suite(void)
{
    Suite *s = suite_create("proto_redis");
    TCase *table = tcase_create("table");
    TCase *req = tcase_create("request");
    TCase *stream = tcase_create("stream");
    TCase *rsp = tcase_create("reply");

    tcase_add_test(table, test_table_sorted);
    tcase_add_test(table, test_scan_cursor);
    tcase_add_test(table, test_every_command_found);
    tcase_add_test(table, test_lookup_misses);
    tcase_add_test(table, test_routes);
    tcase_add_test(table, test_arities);
    tcase_add_test(table, test_every_command_arity);
    suite_add_tcase(s, table);

    tcase_add_test(req, test_multibulk_basic);
    tcase_add_test(req, test_arity_errors);
    tcase_add_test(req, test_unsupported);
    tcase_add_test(req, test_framing_errors);
    tcase_add_test(req, test_empty);
    tcase_add_test(req, test_too_large);
    tcase_add_test(req, test_inline);
    tcase_add_test(req, test_inline_args);
    tcase_add_test(req, test_inline_too_long);
    tcase_add_test(req, test_binary_values);
    tcase_add_test(req, test_next_arg);
    suite_add_tcase(s, req);

    tcase_set_timeout(stream, 60);
    tcase_add_test(stream, test_big_value);
    tcase_add_test(stream, test_pipeline);
    tcase_add_test(stream, test_many_requests);
    tcase_add_test(stream, test_random_garbage);
    suite_add_tcase(s, stream);

    tcase_set_timeout(rsp, 60);
    tcase_add_test(rsp, test_rsp_types);
    tcase_add_test(rsp, test_rsp_deep);
    tcase_add_test(rsp, test_rsp_wide);
    tcase_add_test(rsp, test_rsp_malformed);
    tcase_add_test(rsp, test_rsp_incomplete);
    tcase_add_test(rsp, test_rsp_stream);
    tcase_add_test(rsp, test_rsp_big_value);
    tcase_add_test(rsp, test_rsp3_types);
    tcase_add_test(rsp, test_rsp3_malformed);
    tcase_add_test(rsp, test_rsp3_stream);
    tcase_add_test(rsp, test_next_elem);
    suite_add_tcase(s, rsp);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(proto_redis_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
