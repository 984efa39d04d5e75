/*
 * Unit tests for proto_mc: every command, noreply, multi-key iteration,
 * every error kind, and the incremental contract: a stream parsed whole,
 * byte by byte and at random split points (fixed seed) must give the same
 * sequence of results, with AGAIN until the last byte of each unit.
 */
#include "proto_mc.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_MAX (64ULL << 20)
#define MAX_STEPS 4096

/* ---- helpers ---- */

static enum mc_parse
preq(const char *s, struct mc_req *req)
{
    return mc_parse_req((const uint8_t *)s, strlen(s), BIG_MAX, req);
}

static enum mc_parse
prsp(const char *s, struct mc_rsp *rsp)
{
    return mc_parse_rsp((const uint8_t *)s, strlen(s), rsp);
}

/* Parse s, expect OK with the given command and the whole string consumed. */
static struct mc_req
req_ok(const char *s, enum mc_cmd cmd)
{
    struct mc_req req;

    ck_assert_msg(preq(s, &req) == MC_PARSE_OK, "not OK: %s (err %d)", s, req.err);
    ck_assert_int_eq(req.cmd, cmd);
    ck_assert_uint_eq(req.total_len, strlen(s));
    ck_assert_int_eq(req.err, MC_ERR_NONE);
    return req;
}

/* Parse s, expect ERROR err; for errors that keep the conn, the line is skipped. */
static struct mc_req
req_err(const char *s, enum mc_req_error err)
{
    struct mc_req req;
    enum mc_parse r = preq(s, &req);

    ck_assert_msg(r == MC_PARSE_ERROR, "not ERROR: %s (r %d)", s, r);
    ck_assert_msg(req.err == err, "%s: err %d, want %d", s, req.err, err);
    if (!mc_error_closes(err)) {
        const char *nl = strchr(s, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_uint_eq(req.line_len, (size_t)(nl - s) + 1);
    }
    return req;
}

static void
assert_key(const char *s, const struct mc_req *req, const char *key)
{
    ck_assert_uint_eq(req->nkeys, 1);
    ck_assert_uint_eq(req->keys_end - req->keys_off, strlen(key));
    ck_assert(memcmp(s + req->keys_off, key, strlen(key)) == 0);
}

/* The request line as it goes to the backend: noreply cut out. */
static void
assert_stripped(const char *s, const struct mc_req *req, const char *want)
{
    char out[512];
    size_t n = 0;

    ck_assert_uint_gt(req->noreply_len, 0);
    ck_assert(memcmp(s + req->noreply_off + req->noreply_len - 7, "noreply", 7) == 0);
    memcpy(out, s, req->noreply_off);
    n = req->noreply_off;
    memcpy(out + n, s + req->noreply_off + req->noreply_len,
           strlen(s) - req->noreply_off - req->noreply_len);
    n += strlen(s) - req->noreply_off - req->noreply_len;
    out[n] = '\0';
    ck_assert_str_eq(out, want);
}

/* s parses as cmd (on key, unless NULL) and goes to the backend as want. */
static void
noreply_ok(const char *s, enum mc_cmd cmd, const char *key, const char *want)
{
    struct mc_req req = req_ok(s, cmd);

    if (key != NULL) {
        assert_key(s, &req, key);
    }
    assert_stripped(s, &req, want);
}

static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- stream driver: whole, byte by byte, random splits ---- */

struct step {
    int r;
    size_t pos;
    struct mc_req req; /* zeroed first, so memcmp is exact */
    struct mc_rsp rsp;
};

/* The request (rsp false) or response parser; both keep no state. */
struct stream_ctx {
    uint64_t max;
    bool rsp;
};

#include "stream_driver.h"

static void
stream_begin(struct stream_ctx *cx)
{
}

static enum stream_result
stream_step(struct stream_ctx *cx, const uint8_t *buf, size_t avail, struct step *st, size_t *unit)
{
    st->r = cx->rsp ? mc_parse_rsp(buf, avail, &st->rsp)
                    : mc_parse_req(buf, avail, cx->max, &st->req);
    if (st->r == MC_PARSE_AGAIN) {
        return STREAM_AGAIN;
    }
    if (cx->rsp) {
        if (st->r == MC_PARSE_ERROR) {
            return STREAM_LAST;
        }
        *unit = st->rsp.len;
    } else if (st->r == MC_PARSE_OK) {
        *unit = st->req.total_len;
    } else if (mc_error_closes(st->req.err)) {
        return STREAM_LAST;
    } else {
        *unit = st->req.line_len;
    }
    return STREAM_NEXT;
}

static void
stream_unit_done(struct stream_ctx *cx)
{
}

static bool
step_equal(const struct step *a, const struct step *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

static int
step_result(const struct step *st)
{
    return st->r;
}

/* Whole vs byte by byte vs random splits; returns the whole run in run_a. */
static void
check_all_feeds(const uint8_t *buf, size_t len, uint64_t max, bool rsp, bool bytes)
{
    struct stream_ctx cx = { max, rsp };

    stream_check_feeds(&cx, buf, len, bytes, 50);
}

/* ---- command table ---- */

START_TEST(test_cmd_table)
{
    static const struct {
        enum mc_cmd cmd;
        const char *name;
        enum mc_kind kind;
        bool noreply;
    } want[] = {
        { MC_GET, "get", MC_KIND_RETRIEVAL, false },
        { MC_GETS, "gets", MC_KIND_RETRIEVAL, false },
        { MC_GAT, "gat", MC_KIND_GAT, false },
        { MC_GATS, "gats", MC_KIND_GAT, false },
        { MC_SET, "set", MC_KIND_STORAGE, true },
        { MC_ADD, "add", MC_KIND_STORAGE, true },
        { MC_REPLACE, "replace", MC_KIND_STORAGE, true },
        { MC_APPEND, "append", MC_KIND_STORAGE, true },
        { MC_PREPEND, "prepend", MC_KIND_STORAGE, true },
        { MC_CAS, "cas", MC_KIND_CAS, true },
        { MC_DELETE, "delete", MC_KIND_DELETE, true },
        { MC_INCR, "incr", MC_KIND_ARITH, true },
        { MC_DECR, "decr", MC_KIND_ARITH, true },
        { MC_TOUCH, "touch", MC_KIND_TOUCH, true },
        { MC_VERSION, "version", MC_KIND_VERSION, false },
        { MC_QUIT, "quit", MC_KIND_QUIT, false },
        { MC_STATS, "stats", MC_KIND_STATS, false },
        { MC_FLUSH_ALL, "flush_all", MC_KIND_FLUSH, true },
        { MC_VERBOSITY, "verbosity", MC_KIND_VERBOSITY, true },
    };

    ck_assert_uint_eq(ARRAY_SIZE(want), MC_CMD_COUNT);
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        ck_assert_str_eq(mc_cmd_name(want[i].cmd), want[i].name);
        ck_assert_int_eq(mc_cmd_kind(want[i].cmd), want[i].kind);
        ck_assert_int_eq(mc_cmd_has_noreply(want[i].cmd), want[i].noreply);
    }
    ck_assert_str_eq(mc_cmd_name(MC_CMD_COUNT), "unknown");
}
END_TEST

START_TEST(test_error_replies)
{
    ck_assert_str_eq(mc_error_reply(MC_ERR_UNKNOWN_CMD), "ERROR\r\n");
    ck_assert_str_eq(mc_error_reply(MC_ERR_ARITY), "ERROR\r\n");
    ck_assert_str_eq(mc_error_reply(MC_ERR_KEY_TOO_LONG),
                     "CLIENT_ERROR bad command line format\r\n");
    ck_assert_str_eq(mc_error_reply(MC_ERR_BAD_FORMAT), "CLIENT_ERROR bad command line format\r\n");
    ck_assert_str_eq(mc_error_reply(MC_ERR_BAD_CHUNK), "CLIENT_ERROR bad data chunk\r\n");
    ck_assert_str_eq(mc_error_reply(MC_ERR_TOO_LARGE),
                     "SERVER_ERROR object too large for cache\r\n");
    ck_assert_str_eq(mc_error_reply(MC_ERR_NONE), "");
    ck_assert(!mc_error_closes(MC_ERR_NONE));
    ck_assert(!mc_error_closes(MC_ERR_UNKNOWN_CMD));
    ck_assert(!mc_error_closes(MC_ERR_ARITY));
    ck_assert(mc_error_closes(MC_ERR_KEY_TOO_LONG));
    ck_assert(mc_error_closes(MC_ERR_BAD_FORMAT));
    ck_assert(mc_error_closes(MC_ERR_BAD_CHUNK));
    ck_assert(mc_error_closes(MC_ERR_TOO_LARGE));
}
END_TEST

/* ---- retrieval ---- */

START_TEST(test_get)
{
    const char *s = "get foo\r\n";
    struct mc_req req = req_ok(s, MC_GET);

    ck_assert_uint_eq(req.line_len, 9);
    ck_assert_uint_eq(req.keys_off, 4);
    ck_assert_uint_eq(req.keys_end, 7);
    assert_key(s, &req, "foo");
    ck_assert_uint_eq(req.noreply_len, 0);
    ck_assert_uint_eq(req.data_len, 0);
    ck_assert_uint_eq(req.data_off, 0);

    req = req_ok("gets foo\r\n", MC_GETS);
    ck_assert_uint_eq(req.nkeys, 1);
    /* bare "\n", as memcached accepts */
    req = req_ok("get foo\n", MC_GET);
    ck_assert_uint_eq(req.line_len, 8);
    ck_assert_uint_eq(req.keys_end, 7);
    /* leading and trailing spaces */
    s = "  get   foo   \r\n";
    req = req_ok(s, MC_GET);
    assert_key(s, &req, "foo");
    /* noreply is just a key for get */
    s = "get noreply\r\n";
    req = req_ok(s, MC_GET);
    assert_key(s, &req, "noreply");
    ck_assert_uint_eq(req.noreply_len, 0);
    /* a '\r' inside the line belongs to the key; only the one before '\n' goes */
    s = "get a\rb\r\r\n";
    req = req_ok(s, MC_GET);
    assert_key(s, &req, "a\rb\r");
    /* tabs are not separators in memcached */
    s = "get a\tb\r\n";
    req = req_ok(s, MC_GET);
    assert_key(s, &req, "a\tb");
}
END_TEST

START_TEST(test_multi_key)
{
    const char *s = "get  a bb   ccc dddd \r\n";
    const char *want[] = { "a", "bb", "ccc", "dddd" };
    struct mc_req req = req_ok(s, MC_GET);
    size_t pos, koff, klen, n = 0;

    ck_assert_uint_eq(req.nkeys, 4);
    ck_assert_uint_eq(req.keys_off, 5);
    ck_assert_uint_eq(req.keys_end, strlen(s) - 3);
    pos = req.keys_off;
    while (mc_next_key((const uint8_t *)s, req.keys_end, &pos, &koff, &klen)) {
        ck_assert_uint_lt(n, 4);
        ck_assert_uint_eq(klen, strlen(want[n]));
        ck_assert(memcmp(s + koff, want[n], klen) == 0);
        n++;
    }
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(pos, req.keys_end);
    ck_assert(!mc_next_key((const uint8_t *)s, req.keys_end, &pos, &koff, &klen));
}
END_TEST

START_TEST(test_multi_key_many)
{
    char buf[200000];
    size_t n = 0, pos, koff, klen, count = 0;
    struct mc_req req;

    n += (size_t)sprintf(buf, "gets");
    for (int i = 0; i < 10000; i++) {
        n += (size_t)sprintf(buf + n, " key:%d", i);
    }
    n += (size_t)sprintf(buf + n, "\r\n");
    req = req_ok(buf, MC_GETS);
    ck_assert_uint_eq(req.nkeys, 10000);
    pos = req.keys_off;
    while (mc_next_key((const uint8_t *)buf, req.keys_end, &pos, &koff, &klen)) {
        char want[32];
        int wl = sprintf(want, "key:%zu", count);
        ck_assert_uint_eq(klen, (size_t)wl);
        ck_assert(memcmp(buf + koff, want, klen) == 0);
        count++;
    }
    ck_assert_uint_eq(count, 10000);
    check_all_feeds((const uint8_t *)buf, n, BIG_MAX, false, false);
    ck_assert_uint_eq(run_a.n, 2);
}
END_TEST

START_TEST(test_gat)
{
    const char *s = "gat 100 k1 k2\r\n";
    struct mc_req req = req_ok(s, MC_GAT);
    size_t pos, koff, klen;

    ck_assert_uint_eq(req.nkeys, 2);
    ck_assert_uint_eq(req.keys_off, 8);
    ck_assert_uint_eq(req.keys_end, 13);
    pos = req.keys_off;
    ck_assert(mc_next_key((const uint8_t *)s, req.keys_end, &pos, &koff, &klen));
    ck_assert_uint_eq(koff, 8);
    ck_assert_uint_eq(klen, 2);
    ck_assert(mc_next_key((const uint8_t *)s, req.keys_end, &pos, &koff, &klen));
    ck_assert_uint_eq(koff, 11);
    ck_assert(!mc_next_key((const uint8_t *)s, req.keys_end, &pos, &koff, &klen));

    s = "gats -1 k\r\n";
    req = req_ok(s, MC_GATS);
    assert_key(s, &req, "k");
    /* the exptime is the backend's to judge (its own CLIENT_ERROR text) */
    req_ok("gat abc k\r\n", MC_GAT);
    req_err("gat 0\r\n", MC_ERR_ARITY);
    req_err("gat\r\n", MC_ERR_ARITY);
    req_err("gats\r\n", MC_ERR_ARITY);
}
END_TEST

/* ---- storage ---- */

START_TEST(test_storage)
{
    static const struct {
        const char *s;
        enum mc_cmd cmd;
    } cases[] = {
        { "set k 5 -1 3\r\nabc\r\n", MC_SET },        { "add k 0 0 3\r\nabc\r\n", MC_ADD },
        { "replace k 0 0 3\r\nabc\r\n", MC_REPLACE }, { "append k 0 0 3\r\nabc\r\n", MC_APPEND },
        { "prepend k 0 0 3\r\nabc\r\n", MC_PREPEND },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const char *s = cases[i].s;
        size_t line = (size_t)(strchr(s, '\n') - s) + 1;
        struct mc_req req = req_ok(s, cases[i].cmd);

        ck_assert_uint_eq(req.line_len, line);
        ck_assert_uint_eq(req.data_off, line);
        ck_assert_uint_eq(req.data_len, 3);
        ck_assert(memcmp(s + req.data_off, "abc", 3) == 0);
        assert_key(s, &req, "k");
        ck_assert_uint_eq(req.noreply_len, 0);
    }
    req_ok("set k 4294967295 2147483647 0\r\n\r\n", MC_SET);
    req_ok("set k 0 -2147483648 0\r\n\r\n", MC_SET);
    req_ok("set k 00 -0 000\r\n\r\n", MC_SET);
    /* bare "\n" ends the line, but the data block needs "\r\n" */
    req_ok("set k 0 0 1\nx\r\n", MC_SET);
}
END_TEST

START_TEST(test_cas)
{
    const char *s = "cas k 1 2 3 12345\r\nabc\r\n";
    struct mc_req req = req_ok(s, MC_CAS);

    ck_assert_uint_eq(req.data_len, 3);
    ck_assert_uint_eq(req.data_off, 19);
    assert_key(s, &req, "k");
    req_ok("cas k 0 0 0 18446744073709551615\r\n\r\n", MC_CAS);
    noreply_ok("cas k 0 0 1 7 noreply\r\nx\r\n", MC_CAS, NULL, "cas k 0 0 1 7\r\nx\r\n");
    req_err("cas k 0 0 3\r\nabc\r\n", MC_ERR_BAD_FORMAT);
    req_err("cas k 0 0 3 x\r\nabc\r\n", MC_ERR_BAD_FORMAT);
    req_err("cas k 0 0 3 -1\r\nabc\r\n", MC_ERR_BAD_FORMAT);
    req_err("cas k 0 0 3 18446744073709551616\r\nabc\r\n", MC_ERR_BAD_FORMAT);
    req_err("cas k 0 0 3 1 junk\r\nabc\r\n", MC_ERR_BAD_FORMAT);
    req_err("cas k 0 0 3 1 noreply x\r\nabc\r\n", MC_ERR_BAD_FORMAT);
    req_err("cas k 0 0 3 noreply\r\nabc\r\n", MC_ERR_BAD_FORMAT);
}
END_TEST

START_TEST(test_storage_malformed)
{
    /* missing, negative, non-numeric or oversized numbers: the body cannot be
     * framed, so these close */
    static const char *bad[] = {
        "set\r\n",
        "set k\r\n",
        "set k 0 0\r\n",
        "set k 0 0 -1\r\n",
        "set k 0 0 abc\r\n",
        "set k 0 0 1x\r\n",
        "set k 0 0 +1\r\n",
        "set k 0 0 noreply\r\n",
        "set k 0 0 2147483647\r\n",
        "set k 0 0 99999999999999999999999\r\n",
        "set k abc 0 1\r\nx\r\n",
        "set k -1 0 1\r\nx\r\n",
        "set k 4294967296 0 1\r\nx\r\n",
        "set k 0 x 1\r\nx\r\n",
        "set k 0 - 1\r\nx\r\n",
        "set k 0 2147483648 1\r\nx\r\n",
        "set k 0 -2147483649 1\r\nx\r\n",
        "set k 0 0 1 junk\r\nx\r\n",
        "set k 0 0 1 noreply extra\r\nx\r\n",
        "add k 0 0\r\n",
        "replace k 0 0 1 2 3\r\n",
        "append\r\n",
        "prepend k 0\r\n",
        "cas k 0 0\r\n",
    };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        req_err(bad[i], MC_ERR_BAD_FORMAT);
    }
    req_err("set k 0 0 2147483645\r\n", MC_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_data_with_crlf_inside)
{
    const char *s = "set k 0 0 8\r\na\r\nb\r\n\r\n\r\n";
    struct mc_req req = req_ok(s, MC_SET);

    ck_assert_uint_eq(req.data_len, 8);
    ck_assert(memcmp(s + req.data_off, "a\r\nb\r\n\r\n", 8) == 0);
    check_all_feeds((const uint8_t *)s, strlen(s), BIG_MAX, false, true);
    ck_assert_uint_eq(run_a.n, 2);
    ck_assert_int_eq(run_a.s[0].r, MC_PARSE_OK);
}
END_TEST

START_TEST(test_binary_value)
{
    uint8_t buf[600];
    size_t n = (size_t)sprintf((char *)buf, "set bin 0 0 512\r\n");
    struct mc_req req;

    for (int i = 0; i < 512; i++) {
        buf[n + (size_t)i] = (uint8_t)(i & 0xff);
    }
    memcpy(buf + n + 512, "\r\n", 2);
    ck_assert_int_eq(mc_parse_req(buf, n + 514, BIG_MAX, &req), MC_PARSE_OK);
    ck_assert_uint_eq(req.data_off, n);
    ck_assert_uint_eq(req.data_len, 512);
    ck_assert_uint_eq(req.total_len, n + 514);
    check_all_feeds(buf, n + 514, BIG_MAX, false, true);
}
END_TEST

START_TEST(test_big_value)
{
    size_t vlen = 1 << 20;
    uint8_t *buf = malloc(vlen + 64);
    size_t n = (size_t)sprintf((char *)buf, "set big 0 0 %zu\r\n", vlen);
    struct mc_req req;
    uint64_t seed = 42;

    for (size_t i = 0; i < vlen; i++) {
        buf[n + i] = (uint8_t)util_rand64(&seed);
    }
    memcpy(buf + n + vlen, "\r\n", 2);
    ck_assert_int_eq(mc_parse_req(buf, n + vlen + 2, BIG_MAX, &req), MC_PARSE_OK);
    ck_assert_uint_eq(req.data_len, vlen);
    ck_assert_uint_eq(req.total_len, n + vlen + 2);
    /* AGAIN with the full size known as soon as the line is in */
    ck_assert_int_eq(mc_parse_req(buf, n, BIG_MAX, &req), MC_PARSE_AGAIN);
    ck_assert_uint_eq(req.total_len, n + vlen + 2);
    ck_assert_int_eq(mc_parse_req(buf, n + vlen + 1, BIG_MAX, &req), MC_PARSE_AGAIN);
    ck_assert_int_eq(mc_parse_req(buf, n - 1, BIG_MAX, &req), MC_PARSE_AGAIN);
    ck_assert_uint_eq(req.total_len, 0);
    /* one byte over the limit, decided before the body */
    ck_assert_int_eq(mc_parse_req(buf, n, n + vlen + 1, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_TOO_LARGE);
    ck_assert_int_eq(mc_parse_req(buf, n + vlen + 2, n + vlen + 2, &req), MC_PARSE_OK);
    check_all_feeds(buf, n + vlen + 2, BIG_MAX, false, true);
    ck_assert_uint_eq(run_a.n, 2);
    free(buf);
}
END_TEST

/* ---- delete, arithmetic, touch, version, quit ---- */

START_TEST(test_delete)
{
    const char *s = "delete k\r\n";
    struct mc_req req = req_ok(s, MC_DELETE);

    assert_key(s, &req, "k");
    ck_assert_uint_eq(req.noreply_len, 0);
    req = req_ok("delete k 0\r\n", MC_DELETE);
    ck_assert_uint_eq(req.noreply_len, 0);
    noreply_ok("delete k noreply\r\n", MC_DELETE, NULL, "delete k\r\n");
    noreply_ok("delete k 0 noreply\r\n", MC_DELETE, NULL, "delete k 0\r\n");
    /* memcached answers these with its usage error: forwarded */
    req = req_ok("delete k 5\r\n", MC_DELETE);
    ck_assert_uint_eq(req.noreply_len, 0);
    req_ok("delete k 0 0\r\n", MC_DELETE);
    /* a key named noreply */
    s = "delete noreply\r\n";
    req = req_ok(s, MC_DELETE);
    ck_assert_uint_eq(req.noreply_len, 0);
    noreply_ok("delete noreply noreply\r\n", MC_DELETE, "noreply", "delete noreply\r\n");
    req_err("delete\r\n", MC_ERR_ARITY);
    req_err("delete k 0 noreply x\r\n", MC_ERR_ARITY);
    /* stripped once this would still be noreply to the backend: no reply,
     * every later reply shifted */
    req_err("delete k noreply noreply\r\n", MC_ERR_BAD_FORMAT);
}
END_TEST

START_TEST(test_arith)
{
    const char *s = "incr k 5\r\n";
    struct mc_req req = req_ok(s, MC_INCR);

    assert_key(s, &req, "k");
    ck_assert_uint_eq(req.noreply_len, 0);
    noreply_ok("decr k 18446744073709551615 noreply\r\n", MC_DECR, "k",
               "decr k 18446744073709551615\r\n");
    /* the delta is the backend's to judge, as twemproxy does */
    req_ok("incr k abc\r\n", MC_INCR);
    req_ok("incr k 1 extra\r\n", MC_INCR);
    /* memcached reads the last token as noreply: so do we; the backend's
     * ERROR for "incr k" is then swallowed by the proxy */
    noreply_ok("incr k noreply\r\n", MC_INCR, NULL, "incr k\r\n");
    noreply_ok("incr noreply noreply\r\n", MC_INCR, "noreply", "incr noreply\r\n");
    req_err("incr k noreply noreply\r\n", MC_ERR_BAD_FORMAT);
    req_err("incr k\r\n", MC_ERR_ARITY);
    req_err("decr\r\n", MC_ERR_ARITY);
    req_err("incr k 1 2 3\r\n", MC_ERR_ARITY);
}
END_TEST

START_TEST(test_touch)
{
    const char *s = "touch k 10\r\n";
    struct mc_req req = req_ok(s, MC_TOUCH);

    assert_key(s, &req, "k");
    noreply_ok("touch k -1 noreply\r\n", MC_TOUCH, NULL, "touch k -1\r\n");
    req_err("touch k\r\n", MC_ERR_ARITY);
    req_err("touch k 1 noreply x\r\n", MC_ERR_ARITY);
    req_err("touch k noreply noreply\r\n", MC_ERR_BAD_FORMAT);
}
END_TEST

START_TEST(test_version_quit)
{
    struct mc_req req = req_ok("version\r\n", MC_VERSION);

    ck_assert_uint_eq(req.nkeys, 0);
    ck_assert_uint_eq(req.noreply_len, 0);
    req = req_ok("version 1 2 3\r\n", MC_VERSION);
    ck_assert_uint_eq(req.nkeys, 0);
    req = req_ok("version noreply\r\n", MC_VERSION);
    ck_assert_uint_eq(req.noreply_len, 0);
    req = req_ok("quit\r\n", MC_QUIT);
    ck_assert_uint_eq(req.nkeys, 0);
    req_ok("quit\n", MC_QUIT);
    req_ok("quit now\r\n", MC_QUIT);
}
END_TEST

/* ---- noreply positions ---- */

START_TEST(test_noreply_positions)
{
    static const struct {
        const char *s;
        const char *stripped;
    } cases[] = {
        { "set k 0 0 1 noreply\r\nx\r\n", "set k 0 0 1\r\nx\r\n" },
        { "set k 0 0 1   noreply  \r\nx\r\n", "set k 0 0 1  \r\nx\r\n" },
        { "add k 0 0 1 noreply\nx\r\n", "add k 0 0 1\nx\r\n" },
        { "replace k 0 0 1 noreply\r\nx\r\n", "replace k 0 0 1\r\nx\r\n" },
        { "append k 0 0 1 noreply\r\nx\r\n", "append k 0 0 1\r\nx\r\n" },
        { "prepend k 0 0 1 noreply\r\nx\r\n", "prepend k 0 0 1\r\nx\r\n" },
        { "cas k 0 0 1 9 noreply\r\nx\r\n", "cas k 0 0 1 9\r\nx\r\n" },
        { "delete k noreply\r\n", "delete k\r\n" },
        { "delete k 0 noreply\r\n", "delete k 0\r\n" },
        { "incr k 1 noreply\r\n", "incr k 1\r\n" },
        { "decr k 1  noreply\r\n", "decr k 1\r\n" },
        { "touch k 0 noreply\r\n", "touch k 0\r\n" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct mc_req req;

        ck_assert_int_eq(preq(cases[i].s, &req), MC_PARSE_OK);
        ck_assert_uint_eq(req.total_len, strlen(cases[i].s));
        assert_stripped(cases[i].s, &req, cases[i].stripped);
        ck_assert(req.noreply_off + req.noreply_len <= req.line_len);
        ck_assert(req.noreply_off >= req.keys_end);
    }
}
END_TEST

START_TEST(test_noreply_not_last)
{
    struct mc_req req;

    /* "noreply" that is not the last token is not noreply */
    ck_assert_int_eq(preq("incr k noreply 1\r\n", &req), MC_PARSE_OK);
    ck_assert_uint_eq(req.noreply_len, 0);
    /* nor is "NOREPLY" (memcached compares case-sensitively) */
    ck_assert_int_eq(preq("delete k NOREPLY\r\n", &req), MC_PARSE_OK);
    ck_assert_uint_eq(req.noreply_len, 0);
    ck_assert_int_eq(preq("set k 0 0 1 NOREPLY\r\nx\r\n", &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_FORMAT);
}
END_TEST

/* ---- errors ---- */

/* stats, flush_all and verbosity: no key; noreply may be the only argument,
   and a second noreply before it is refused (stripped once, the backend
   would still not answer). */
START_TEST(test_pool_cmds)
{
    struct mc_req req = req_ok("stats\r\n", MC_STATS);
    ck_assert_uint_eq(req.nkeys, 0);
    (void)req_ok("stats items\r\n", MC_STATS);
    req = req_ok("flush_all\r\n", MC_FLUSH_ALL);
    ck_assert_uint_eq(req.noreply_len, 0);
    req = req_ok("flush_all noreply\r\n", MC_FLUSH_ALL);
    ck_assert_uint_eq(req.noreply_off, 9);
    ck_assert_uint_eq(req.noreply_len, 8);
    req = req_ok("flush_all 10 noreply\r\n", MC_FLUSH_ALL);
    ck_assert_uint_eq(req.noreply_off, 12);
    req = req_ok("flush_all 10\r\n", MC_FLUSH_ALL);
    ck_assert_uint_eq(req.noreply_len, 0);
    req_err("flush_all 1 2 3\r\n", MC_ERR_ARITY);
    req_err("flush_all noreply noreply\r\n", MC_ERR_BAD_FORMAT);
    (void)req_ok("verbosity 1\r\n", MC_VERBOSITY);
    req = req_ok("verbosity 1 noreply\r\n", MC_VERBOSITY);
    ck_assert_uint_eq(req.noreply_len, 8);
    req_err("verbosity\r\n", MC_ERR_ARITY);
}
END_TEST

START_TEST(test_unknown)
{
    req_err("GET k\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("Set k 0 0 1\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("STATS\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("flush\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("stats_all\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("mg k v\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("getx k\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("ge k\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("get\tk\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("\n", MC_ERR_UNKNOWN_CMD);
    req_err("    \r\n", MC_ERR_UNKNOWN_CMD);
    req_err("\x01\x02garbage \xff\xfe\r\n", MC_ERR_UNKNOWN_CMD);
    req_err("get\r\n", MC_ERR_ARITY);
    req_err("gets   \r\n", MC_ERR_ARITY);
}
END_TEST

START_TEST(test_key_too_long)
{
    char *k250 = repeat('a', 250), *k251 = repeat('b', 251);
    char s[1024];
    struct mc_req req;

    sprintf(s, "get %s\r\n", k250);
    req = req_ok(s, MC_GET);
    ck_assert_uint_eq(req.keys_end - req.keys_off, 250);
    sprintf(s, "set %s 0 0 1\r\nx\r\n", k250);
    req_ok(s, MC_SET);

    static const char *fmts[] = {
        "get %s\r\n",    "get a %s b\r\n",        "gets a b %s\r\n",
        "gat 0 %s\r\n",  "set %s 0 0 1\r\nx\r\n", "cas %s 0 0 1 1\r\nx\r\n",
        "delete %s\r\n", "incr %s 1\r\n",         "touch %s 1 noreply\r\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(fmts); i++) {
        snprintf(s, sizeof(s), fmts[i], k251);
        req_err(s, MC_ERR_KEY_TOO_LONG);
    }
    /* memcached counts arguments first: a wrong count with a long key is ERROR */
    sprintf(s, "incr %s\r\n", k251);
    req_err(s, MC_ERR_ARITY);
    free(k250);
    free(k251);
}
END_TEST

START_TEST(test_too_large)
{
    struct mc_req req;
    const char *s = "set k 0 0 80\r\n"; /* 14 + 80 + 2 = 96 */

    ck_assert_int_eq(mc_parse_req((const uint8_t *)s, strlen(s), 96, &req), MC_PARSE_AGAIN);
    ck_assert_uint_eq(req.total_len, 96);
    ck_assert_int_eq(mc_parse_req((const uint8_t *)s, strlen(s), 95, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_TOO_LARGE);
    ck_assert(mc_error_closes(req.err));
    /* any request: the command line counts too */
    s = "get aaaaaaaaaa\r\n";
    ck_assert_int_eq(mc_parse_req((const uint8_t *)s, strlen(s), 16, &req), MC_PARSE_OK);
    ck_assert_int_eq(mc_parse_req((const uint8_t *)s, strlen(s), 15, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_TOO_LARGE);
    /* the largest length memcached takes, with a limit above it */
    s = "set k 0 0 2147483645\r\n";
    ck_assert_int_eq(mc_parse_req((const uint8_t *)s, strlen(s), UINT64_MAX, &req), MC_PARSE_AGAIN);
    ck_assert_uint_eq(req.total_len, strlen(s) + 2147483645ULL + 2);
}
END_TEST

START_TEST(test_bad_chunk)
{
    const char *s = "set k 0 0 3\r\nabcXY";
    struct mc_req req;

    /* AGAIN until data_off + data_len + 2 bytes exist, then decided */
    for (size_t n = 0; n < strlen(s); n++) {
        ck_assert_int_eq(mc_parse_req((const uint8_t *)s, n, BIG_MAX, &req), MC_PARSE_AGAIN);
    }
    ck_assert_int_eq(preq(s, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_CHUNK);
    req_err("set k 0 0 3\r\nabcd\r\n", MC_ERR_BAD_CHUNK);
    req_err("set k 0 0 3\r\nab\r\n\r\n", MC_ERR_BAD_CHUNK);
    req_err("set k 0 0 1\r\nx\n\r\n", MC_ERR_BAD_CHUNK);
    req_err("set k 0 0 1\r\nx\r\r", MC_ERR_BAD_CHUNK);
    req_err("set k 0 0 0\r\n\n\n", MC_ERR_BAD_CHUNK);
    ck_assert_int_eq(preq("set k 0 0 3\r\nab\r\n", &req), MC_PARSE_AGAIN);
}
END_TEST

START_TEST(test_binary_protocol)
{
    static const uint8_t bin_get[] = { 0x80, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 'f',  'o',  'o' };
    struct mc_req req;

    /* decided on the first byte: a binary client never sends '\n' */
    ck_assert_int_eq(mc_parse_req(bin_get, 1, BIG_MAX, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_FORMAT);
    ck_assert(mc_error_closes(req.err));
    ck_assert_int_eq(mc_parse_req(bin_get, sizeof(bin_get), BIG_MAX, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_FORMAT);
    /* 0x80 later is just a byte */
    req = req_ok("get \x80\r\n", MC_GET);
    ck_assert_uint_eq(req.keys_end - req.keys_off, 1);
    ck_assert_int_eq(mc_parse_req(bin_get, 0, BIG_MAX, &req), MC_PARSE_AGAIN);
}
END_TEST

START_TEST(test_nul_in_line)
{
    static const char s[] = "get a\0b\r\n";
    struct mc_req req;

    ck_assert_int_eq(mc_parse_req((const uint8_t *)s, sizeof(s) - 1, BIG_MAX, &req),
                     MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_FORMAT);
    /* NULs in a data block are fine */
    static const char d[] = "set k 0 0 3\r\n\0\0\0\r\n";
    ck_assert_int_eq(mc_parse_req((const uint8_t *)d, sizeof(d) - 1, BIG_MAX, &req), MC_PARSE_OK);
}
END_TEST

START_TEST(test_line_too_long)
{
    size_t max = MC_MAX_LINE_LEN;
    uint8_t *buf = malloc(max + 16);
    struct mc_req req;

    memcpy(buf, "get ", 4);
    memset(buf + 4, 'k', max + 12);
    /* no '\n' in MC_MAX_LINE_LEN bytes */
    ck_assert_int_eq(mc_parse_req(buf, max - 1, BIG_MAX, &req), MC_PARSE_AGAIN);
    ck_assert_int_eq(mc_parse_req(buf, max, BIG_MAX, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_FORMAT);
    ck_assert_int_eq(mc_parse_req(buf, max + 16, BIG_MAX, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_FORMAT);
    /* a newline right after the limit is too late */
    buf[max] = '\n';
    ck_assert_int_eq(mc_parse_req(buf, max + 1, BIG_MAX, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_BAD_FORMAT);
    /* a line of exactly MC_MAX_LINE_LEN bytes is fine: 250-byte keys */
    for (size_t i = 4; i < max - 2; i++) {
        buf[i] = (i - 4) % 251 == 250 ? ' ' : 'k';
    }
    buf[max - 2] = '\r';
    buf[max - 1] = '\n';
    ck_assert_int_eq(mc_parse_req(buf, max, BIG_MAX, &req), MC_PARSE_OK);
    ck_assert_uint_eq(req.line_len, max);
    ck_assert_uint_eq(req.nkeys, (max - 6 + 250) / 251);
    /* an unknown command of that length still keeps the conn */
    memcpy(buf, "xyz ", 4);
    ck_assert_int_eq(mc_parse_req(buf, max, BIG_MAX, &req), MC_PARSE_ERROR);
    ck_assert_int_eq(req.err, MC_ERR_UNKNOWN_CMD);
    ck_assert_uint_eq(req.line_len, max);
    free(buf);
}
END_TEST

/* ---- streams ---- */

/* Every command and error kind that keeps the connection, back to back. */
static const char pipeline[] = "get a\r\n"
                               "gets a b c\r\n"
                               "gat 10 a b\r\n"
                               "gats 0 a\r\n"
                               "set k 1 2 5\r\nhello\r\n"
                               "add k 0 0 4 noreply\r\n\r\n\r\n\r\n"
                               "replace k 0 0 0\r\n\r\n"
                               "append k 0 0 2\nhi\r\n"
                               "prepend k 0 0 3 noreply\r\n\x00\x01\x02\r\n"
                               "cas k 0 0 1 99\r\nx\r\n"
                               "GET a\r\n"
                               "delete k\r\n"
                               "delete k 0 noreply\r\n"
                               "get\r\n"
                               "incr n 1\r\n"
                               "decr n 1 noreply\r\n"
                               "\r\n"
                               "touch k 10\r\n"
                               "version\r\n"
                               "bogus command with args\n"
                               "incr k noreply\r\n"
                               "quit\r\n";

static const enum mc_cmd pipeline_cmds[] = {
    MC_GET,       MC_GETS,  MC_GAT,       MC_GATS,      MC_SET,    MC_ADD,  MC_REPLACE, MC_APPEND,
    MC_PREPEND,   MC_CAS,   MC_CMD_COUNT, MC_DELETE,    MC_DELETE, MC_GET,  MC_INCR,    MC_DECR,
    MC_CMD_COUNT, MC_TOUCH, MC_VERSION,   MC_CMD_COUNT, MC_INCR,   MC_QUIT,
};

START_TEST(test_pipeline)
{
    size_t len = sizeof(pipeline) - 1;

    check_all_feeds((const uint8_t *)pipeline, len, BIG_MAX, false, true);
    ck_assert_uint_eq(run_a.n, ARRAY_SIZE(pipeline_cmds) + 1);
    for (size_t i = 0; i < ARRAY_SIZE(pipeline_cmds); i++) {
        const struct step *st = &run_a.s[i];

        ck_assert_msg(st->req.cmd == pipeline_cmds[i], "step %zu: cmd %d", i, st->req.cmd);
        if (pipeline_cmds[i] == MC_CMD_COUNT || (i == 13)) {
            ck_assert_int_eq(st->r, MC_PARSE_ERROR);
            ck_assert(!mc_error_closes(st->req.err));
        } else {
            ck_assert_int_eq(st->r, MC_PARSE_OK);
        }
    }
    ck_assert_int_eq(run_a.s[13].req.err, MC_ERR_ARITY);
    /* the final AGAIN, at the very end */
    ck_assert_int_eq(run_a.s[run_a.n - 1].r, MC_PARSE_AGAIN);
    ck_assert_uint_eq(run_a.s[run_a.n - 1].pos, len);
}
END_TEST

START_TEST(test_pipeline_close_error)
{
    /* a framing error stops the stream; what is before it still parses */
    static const char s[] = "get a\r\nset k 0 0 -1\r\nget b\r\n";
    static const char t[] = "set k 0 0 2\r\nabc\r\nget b\r\n";

    check_all_feeds((const uint8_t *)s, sizeof(s) - 1, BIG_MAX, false, true);
    ck_assert_uint_eq(run_a.n, 2);
    ck_assert_int_eq(run_a.s[1].r, MC_PARSE_ERROR);
    ck_assert_int_eq(run_a.s[1].req.err, MC_ERR_BAD_FORMAT);
    check_all_feeds((const uint8_t *)t, sizeof(t) - 1, BIG_MAX, false, true);
    ck_assert_uint_eq(run_a.n, 1);
    ck_assert_int_eq(run_a.s[0].req.err, MC_ERR_BAD_CHUNK);
}
END_TEST

START_TEST(test_random_garbage)
{
    /* random bytes with a bias toward protocol characters: no crash, and all
     * three feeds agree */
    static const char alphabet[] = "getsadcinrpluvoqy0123456789 \r\n-\x80";
    uint8_t buf[2048];
    uint64_t seed = 7;

    for (int round = 0; round < 200; round++) {
        size_t n = stream_garbage(buf, sizeof(buf), alphabet, &seed);

        check_all_feeds(buf, n, 200 + (uint64_t)round * 10, false, n < 512);
    }
}
END_TEST

/* ---- responses ---- */

START_TEST(test_rsp_value)
{
    const char *s = "VALUE key 5 3\r\nabc\r\n";
    struct mc_rsp rsp;

    ck_assert_int_eq(prsp(s, &rsp), MC_PARSE_OK);
    ck_assert_int_eq(rsp.type, MC_RSP_VALUE);
    ck_assert_uint_eq(rsp.len, strlen(s));
    ck_assert_uint_eq(rsp.key_off, 6);
    ck_assert_uint_eq(rsp.key_len, 3);
    s = "VALUE k 0 3 18446744073709551615\r\nabc\r\n";
    ck_assert_int_eq(prsp(s, &rsp), MC_PARSE_OK);
    ck_assert_uint_eq(rsp.len, strlen(s));
    s = "VALUE k 4294967295 0\r\n\r\n";
    ck_assert_int_eq(prsp(s, &rsp), MC_PARSE_OK);
    ck_assert_uint_eq(rsp.len, strlen(s));
    s = "VALUE k 0 7\r\n\r\nEND\r\n\r\n";
    ck_assert_int_eq(prsp(s, &rsp), MC_PARSE_OK);
    ck_assert_uint_eq(rsp.len, strlen(s));
    /* AGAIN: the unit's size is known once the header is in */
    s = "VALUE k 0 10\r\nab";
    ck_assert_int_eq(prsp(s, &rsp), MC_PARSE_AGAIN);
    ck_assert_uint_eq(rsp.len, 14 + 12);
    ck_assert_int_eq(prsp("VALUE k 0 10", &rsp), MC_PARSE_AGAIN);
    ck_assert_uint_eq(rsp.len, 0);
}
END_TEST

START_TEST(test_rsp_lines)
{
    static const struct {
        const char *s;
        enum mc_rsp_type type;
    } cases[] = {
        { "END\r\n", MC_RSP_END },
        { "STORED\r\n", MC_RSP_LINE },
        { "NOT_STORED\r\n", MC_RSP_LINE },
        { "EXISTS\r\n", MC_RSP_LINE },
        { "NOT_FOUND\r\n", MC_RSP_LINE },
        { "DELETED\r\n", MC_RSP_LINE },
        { "TOUCHED\r\n", MC_RSP_LINE },
        { "OK\r\n", MC_RSP_LINE },
        { "42\r\n", MC_RSP_LINE },
        { "18446744073709551615\r\n", MC_RSP_LINE },
        { "VERSION 1.6.21\r\n", MC_RSP_LINE },
        { "END extra\r\n", MC_RSP_LINE },
        { "VALUES\r\n", MC_RSP_LINE },
        { "ERROR\r\n", MC_RSP_ERROR },
        { "ERROR Too many open connections\r\n", MC_RSP_ERROR },
        { "CLIENT_ERROR bad data chunk\r\n", MC_RSP_ERROR },
        { "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
          MC_RSP_ERROR },
        { "SERVER_ERROR out of memory storing object\r\n", MC_RSP_ERROR },
        { "END\n", MC_RSP_END },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct mc_rsp rsp;

        ck_assert_msg(prsp(cases[i].s, &rsp) == MC_PARSE_OK, "%s", cases[i].s);
        ck_assert_msg(rsp.type == cases[i].type, "%s: type %d", cases[i].s, rsp.type);
        ck_assert_uint_eq(rsp.len, strlen(cases[i].s));
        /* every strict prefix is AGAIN */
        for (size_t n = 0; n < strlen(cases[i].s); n++) {
            ck_assert_int_eq(mc_parse_rsp((const uint8_t *)cases[i].s, n, &rsp), MC_PARSE_AGAIN);
        }
    }
}
END_TEST

/* Whether reply s (one whole unit) fits a request of cmd. */
static bool
fits(enum mc_cmd cmd, const char *s)
{
    struct mc_rsp rsp;

    ck_assert_int_eq(mc_parse_rsp((const uint8_t *)s, strlen(s), &rsp), MC_PARSE_OK);
    ck_assert_uint_eq(rsp.len, strlen(s));
    return mc_rsp_fits(cmd, (const uint8_t *)s, &rsp);
}

START_TEST(test_rsp_fits)
{
    static const enum mc_cmd all[] = { MC_GET,    MC_GATS, MC_SET,   MC_CAS,
                                       MC_DELETE, MC_INCR, MC_TOUCH, MC_VERSION };

    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        ck_assert(fits(all[i], "ERROR\r\n"));
        ck_assert(fits(all[i], "SERVER_ERROR out of memory\r\n"));
        ck_assert(fits(all[i], "CLIENT_ERROR bad data chunk\r\n"));
        /* a line nobody sends: the conn is failed, not the line forwarded */
        ck_assert(!fits(all[i], "WHAT IS THIS\r\n"));
    }
    ck_assert(fits(MC_GET, "END\r\n"));
    ck_assert(fits(MC_GETS, "VALUE k 0 1 7\r\nx\r\n"));
    ck_assert(fits(MC_GAT, "END\r\n"));
    ck_assert(!fits(MC_GET, "STORED\r\n"));
    ck_assert(fits(MC_SET, "STORED\r\n"));
    ck_assert(fits(MC_ADD, "NOT_STORED\r\n"));
    ck_assert(fits(MC_APPEND, "NOT_FOUND\r\n"));
    ck_assert(!fits(MC_SET, "END\r\n"));
    ck_assert(!fits(MC_SET, "STORED extra\r\n"));
    ck_assert(fits(MC_CAS, "EXISTS\r\n"));
    ck_assert(!fits(MC_CAS, "NOT_STORED\r\n"));
    ck_assert(fits(MC_DELETE, "DELETED\r\n"));
    ck_assert(fits(MC_DELETE, "NOT_FOUND\n"));
    ck_assert(!fits(MC_DELETE, "STORED\r\n"));
    ck_assert(fits(MC_INCR, "42\r\n"));
    ck_assert(fits(MC_DECR, "18446744073709551615\r\n"));
    ck_assert(fits(MC_INCR, "NOT_FOUND\r\n"));
    ck_assert(!fits(MC_INCR, "-1\r\n"));
    ck_assert(!fits(MC_INCR, "4 2\r\n"));
    ck_assert(fits(MC_TOUCH, "TOUCHED\r\n"));
    ck_assert(!fits(MC_TOUCH, "DELETED\r\n"));
    ck_assert(fits(MC_VERSION, "VERSION 1.6.18\r\n"));
    ck_assert(!fits(MC_VERSION, "VERSION\r\n"));
}
END_TEST

START_TEST(test_rsp_malformed)
{
    char *k251 = repeat('k', 251), s[512];
    static const char *bad[] = {
        "VALUE\r\n",
        "VALUE k\r\n",
        "VALUE k 0\r\n",
        "VALUE k x 3\r\nabc\r\n",
        "VALUE k 0 -1\r\n",
        "VALUE k 0 x\r\n",
        "VALUE k 4294967296 1\r\nx\r\n",
        "VALUE k 0 2147483648\r\n",
        "VALUE k 0 3 x\r\nabc\r\n",
        "VALUE k 0 3 1 extra\r\nabc\r\n",
        "VALUE k 0 3\r\nabcd\r\n",
        "VALUE k 0 3\r\nabc\n\r\n",
        "VALUE k 0 0\r\n\n\n",
        "\r\n",
        "\n",
        "   \r\n",
    };
    struct mc_rsp rsp;
    uint8_t *big;

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        ck_assert_msg(prsp(bad[i], &rsp) == MC_PARSE_ERROR, "%s", bad[i]);
    }
    sprintf(s, "VALUE %s 0 1\r\nx\r\n", k251);
    ck_assert_int_eq(prsp(s, &rsp), MC_PARSE_ERROR);
    sprintf(s, "VALUE %.250s 0 1\r\nx\r\n", k251);
    ck_assert_int_eq(prsp(s, &rsp), MC_PARSE_OK);
    ck_assert_uint_eq(rsp.key_len, 250);
    /* a line with no newline within the bound */
    big = malloc(MC_MAX_RSP_LINE_LEN + 1);
    memset(big, 'A', MC_MAX_RSP_LINE_LEN + 1);
    ck_assert_int_eq(mc_parse_rsp(big, MC_MAX_RSP_LINE_LEN - 1, &rsp), MC_PARSE_AGAIN);
    ck_assert_int_eq(mc_parse_rsp(big, MC_MAX_RSP_LINE_LEN, &rsp), MC_PARSE_ERROR);
    big[MC_MAX_RSP_LINE_LEN - 1] = '\n';
    ck_assert_int_eq(mc_parse_rsp(big, MC_MAX_RSP_LINE_LEN, &rsp), MC_PARSE_OK);
    ck_assert_int_eq(rsp.type, MC_RSP_LINE);
    ck_assert_int_eq(mc_parse_rsp(big, 0, &rsp), MC_PARSE_AGAIN);
    free(big);
    free(k251);
}
END_TEST

START_TEST(test_rsp_stream)
{
    uint8_t buf[4096];
    size_t n = 0;

    n += (size_t)sprintf((char *)buf + n, "VALUE a 0 5\r\nhello\r\n");
    n += (size_t)sprintf((char *)buf + n, "VALUE bb 7 8 42\r\na\r\nb\r\n\r\n\r\n");
    memcpy(buf + n, "VALUE bin 0 256\r\n", 17);
    n += 17;
    for (int i = 0; i < 256; i++) {
        buf[n++] = (uint8_t)i;
    }
    n += (size_t)sprintf((char *)buf + n, "\r\nEND\r\nSTORED\r\nNOT_FOUND\r\n12\r\nVERSION 1.6\r\n"
                                          "SERVER_ERROR object too large for cache\r\nEND\r\n");
    check_all_feeds(buf, n, 0, true, true);
    ck_assert_uint_eq(run_a.n, 11);
    ck_assert_int_eq(run_a.s[0].rsp.type, MC_RSP_VALUE);
    ck_assert_uint_eq(run_a.s[0].rsp.key_len, 1);
    ck_assert_int_eq(run_a.s[1].rsp.type, MC_RSP_VALUE);
    ck_assert(memcmp(buf + run_a.s[1].pos + run_a.s[1].rsp.key_off, "bb", 2) == 0);
    ck_assert_int_eq(run_a.s[2].rsp.type, MC_RSP_VALUE);
    ck_assert_int_eq(run_a.s[3].rsp.type, MC_RSP_END);
    ck_assert_int_eq(run_a.s[4].rsp.type, MC_RSP_LINE);
    ck_assert_int_eq(run_a.s[8].rsp.type, MC_RSP_ERROR);
    ck_assert_int_eq(run_a.s[9].rsp.type, MC_RSP_END);
    ck_assert_int_eq(run_a.s[10].r, MC_PARSE_AGAIN);
    ck_assert_uint_eq(run_a.s[10].pos, n);
}
END_TEST

START_TEST(test_rsp_big_value)
{
    size_t vlen = 1 << 20;
    uint8_t *buf = malloc(vlen + 64);
    size_t n = (size_t)sprintf((char *)buf, "VALUE big 0 %zu\r\n", vlen);
    uint64_t seed = 99;
    struct mc_rsp rsp;

    for (size_t i = 0; i < vlen; i++) {
        buf[n + i] = (uint8_t)util_rand64(&seed);
    }
    memcpy(buf + n + vlen, "\r\nEND\r\n", 7);
    ck_assert_int_eq(mc_parse_rsp(buf, n + vlen + 7, &rsp), MC_PARSE_OK);
    ck_assert_uint_eq(rsp.len, n + vlen + 2);
    ck_assert_int_eq(mc_parse_rsp(buf, n + vlen + 1, &rsp), MC_PARSE_AGAIN);
    check_all_feeds(buf, n + vlen + 7, 0, true, true);
    ck_assert_uint_eq(run_a.n, 3);
    free(buf);
}
END_TEST

START_TEST(test_rsp_random_garbage)
{
    static const char alphabet[] = "VALUEND 0123456789\r\nSTORED_ERROR";
    uint8_t buf[2048];
    uint64_t seed = 11;

    for (int round = 0; round < 200; round++) {
        size_t n = stream_garbage(buf, sizeof(buf), alphabet, &seed);

        check_all_feeds(buf, n, 0, true, n < 512);
    }
}
END_TEST

static Suite *
proto_mc_suite(void)
{
    Suite *s = suite_create("proto_mc");
    TCase *req = tcase_create("request");
    TCase *stream = tcase_create("stream");
    TCase *rsp = tcase_create("response");

    tcase_add_test(req, test_cmd_table);
    tcase_add_test(req, test_error_replies);
    tcase_add_test(req, test_get);
    tcase_add_test(req, test_multi_key);
    tcase_add_test(req, test_gat);
    tcase_add_test(req, test_storage);
    tcase_add_test(req, test_cas);
    tcase_add_test(req, test_storage_malformed);
    tcase_add_test(req, test_delete);
    tcase_add_test(req, test_arith);
    tcase_add_test(req, test_touch);
    tcase_add_test(req, test_version_quit);
    tcase_add_test(req, test_noreply_positions);
    tcase_add_test(req, test_noreply_not_last);
    tcase_add_test(req, test_unknown);
    tcase_add_test(req, test_pool_cmds);
    tcase_add_test(req, test_key_too_long);
    tcase_add_test(req, test_too_large);
    tcase_add_test(req, test_bad_chunk);
    tcase_add_test(req, test_binary_protocol);
    tcase_add_test(req, test_nul_in_line);
    tcase_add_test(req, test_line_too_long);
    suite_add_tcase(s, req);

    /* byte-by-byte feeding of 1 MiB is slow under sanitizers */
    tcase_set_timeout(stream, 120);
    tcase_add_test(stream, test_multi_key_many);
    tcase_add_test(stream, test_data_with_crlf_inside);
    tcase_add_test(stream, test_binary_value);
    tcase_add_test(stream, test_big_value);
    tcase_add_test(stream, test_pipeline);
    tcase_add_test(stream, test_pipeline_close_error);
    tcase_add_test(stream, test_random_garbage);
    suite_add_tcase(s, stream);

    tcase_set_timeout(rsp, 120);
    tcase_add_test(rsp, test_rsp_value);
    tcase_add_test(rsp, test_rsp_lines);
    tcase_add_test(rsp, test_rsp_fits);
    tcase_add_test(rsp, test_rsp_malformed);
    tcase_add_test(rsp, test_rsp_stream);
    tcase_add_test(rsp, test_rsp_big_value);
    tcase_add_test(rsp, test_rsp_random_garbage);
    suite_add_tcase(s, rsp);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(proto_mc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
