/*
 * libFuzzer harness for redis_parse_req.
 *
 * Input: one selector byte, then a client byte stream. The stream is parsed
 * as a connection would: request after request, skipping the bytes of an
 * error that keeps the connection (unknown command, wrong arity, empty
 * request), stopping at one that closes it or at AGAIN with everything
 * consumed. It is parsed three ways: whole, in two chunks split at an
 * offset the selector picks, and in small chunks whose size the selector
 * picks; the incremental runs keep one state struct across AGAIN results,
 * as a conn does. Every result must equal a fresh parse of the same
 * position with all bytes present (the parser's incremental contract), and
 * every result must satisfy what callers rely on: in bounds, arguments
 * iterable and matching argc and the name, arity within the table's range,
 * error replies one well-formed line. Any violation abort()s, so logic bugs
 * are found as well as crashes.
 */
#include "proto_redis.h"
#include "fuzz_driver.h"

#include <stdlib.h>
#include <string.h>

/* Room for a parse's arguments, grown when it asks (REDIS_PARSE_ARGS). */
struct args {
    struct redis_arg *p;
    uint32_t cap;
};

static struct args a_inc, a_whole, a_enc;

static enum redis_parse
parse(struct args *a, struct redis_req *r, const uint8_t *buf, size_t len, uint64_t max)
{
    enum redis_parse rc;

    while ((rc = redis_parse_req(r, buf, len, max)) == REDIS_PARSE_ARGS) {
        if (r->argc > a->cap) {
            a->p = realloc(a->p, sizeof(*a->p) * r->argc);
            CHECK(a->p != NULL);
            a->cap = r->argc;
        }
        r->args = a->p;
        r->args_cap = a->cap;
    }
    return rc;
}

static bool
req_equal(enum redis_parse ra, const struct redis_req *a, enum redis_parse rb,
          const struct redis_req *b)
{
    if (ra != rb) {
        return false;
    }
    if (ra == REDIS_PARSE_AGAIN) {
        return true;
    }
    return a->cmd == b->cmd && a->err == b->err && a->is_inline == b->is_inline &&
           a->argc == b->argc && a->total_len == b->total_len && a->name_off == b->name_off &&
           a->name_len == b->name_len && a->err_detail == b->err_detail;
}

/*
 * An inline request's arguments may be quoted, so they are checked through
 * its multibulk encoding: that parses as the same command with the same
 * argument count and result, and its arguments iterate.
 */
static void
check_inline(const uint8_t *buf, const struct redis_req *r)
{
    uint8_t *enc = malloc(redis_inline_encoded_max(r));
    struct redis_req m;
    size_t n, cur = 0, off, alen;
    uint32_t k = 0;

    CHECK(enc != NULL);
    n = redis_inline_encode(r, buf, enc);
    CHECK(n <= redis_inline_encoded_max(r));
    redis_req_init(&m, a_enc.p, a_enc.cap);
    enum redis_parse rc = parse(&a_enc, &m, enc, n, UINT64_MAX);
    CHECK(m.total_len == n && m.argc == r->argc && m.cmd == r->cmd && m.err == r->err);
    CHECK(rc == (r->err == REDIS_ERR_NONE ? REDIS_PARSE_OK : REDIS_PARSE_ERROR));
    for (k = 0; k < m.argc; k++) {
        off = m.args[k].off;
        alen = m.args[k].len;
        CHECK(off >= cur && off + alen + 2 <= n && enc[off + alen] == '\r');
        cur = off + alen + 2;
    }
    CHECK(cur == n);
    free(enc);
}

/* The arguments of a whole request: argc of them, the first being the name. */
static void
check_args(const uint8_t *buf, const struct redis_req *r)
{
    size_t cur = 0, off, alen, prev_end = 0;
    uint32_t n = 0;

    if (r->is_inline) {
        check_inline(buf, r);
        return;
    }
    for (n = 0; n < r->argc; n++) {
        off = r->args[n].off;
        alen = r->args[n].len;
        CHECK(off >= prev_end && off + alen <= r->total_len);
        if (n == 0) {
            CHECK(off == r->name_off && alen == r->name_len);
        }
        CHECK(buf[off + alen] == '\r' && buf[off + alen + 1] == '\n');
        prev_end = off + alen;
        cur = off + alen + 2;
    }
    CHECK(cur == r->total_len);
}

static void
check_result(const uint8_t *buf, size_t avail, uint64_t max, enum redis_parse rc,
             const struct redis_req *r)
{
    char out[REDIS_ERR_REPLY_MAX];
    size_t n;

    CHECK(r->is_inline == (buf[0] != '*'));
    if (r->total_len > 0) {
        CHECK(r->total_len <= avail);
        if (r->is_inline) {
            CHECK(buf[r->total_len - 1] == '\n');
            CHECK(memchr(buf, '\n', r->total_len - 1) == NULL);
            CHECK(r->total_len <= REDIS_INLINE_SEARCH);
        } else {
            CHECK(buf[r->total_len - 2] == '\r' && buf[r->total_len - 1] == '\n');
        }
    }
    if (rc == REDIS_PARSE_OK) {
        const struct redis_cmd *cmd = r->cmd;
        uint32_t nargs;

        CHECK(r->err == REDIS_ERR_NONE);
        CHECK(r->total_len > 0 && r->total_len <= max);
        CHECK(cmd != NULL && cmd->route != REDIS_ROUTE_UNSUPPORTED);
        CHECK(r->is_inline || cmd == redis_cmd_lookup(buf + r->name_off, r->name_len));
        CHECK(r->argc >= 1);
        nargs = r->argc - 1;
        CHECK(nargs >= (uint32_t)cmd->min_args);
        CHECK(cmd->max_args < 0 || nargs <= (uint32_t)cmd->max_args);
        CHECK(cmd->key_step <= 1 || nargs % cmd->key_step == 0);
        check_args(buf, r);
        CHECK(redis_error_reply(r, buf, out, sizeof(out)) == 0);
        return;
    }

    CHECK(rc == REDIS_PARSE_ERROR && r->err != REDIS_ERR_NONE);
    n = redis_error_reply(r, buf, out, sizeof(out));
    if (r->err == REDIS_ERR_EMPTY) {
        CHECK(n == 0);
        CHECK(r->total_len > 0 && r->argc == 0);
        return;
    }
    /* one "-ERR ..." line whatever the client's bytes were */
    CHECK(n >= 7 && memcmp(out, "-ERR ", 5) == 0);
    CHECK(out[n - 2] == '\r' && out[n - 1] == '\n');
    CHECK(memchr(out, '\r', n - 2) == NULL && memchr(out, '\n', n - 2) == NULL);
    if (redis_error_closes(r->err)) {
        CHECK(r->total_len == 0);
        return;
    }
    CHECK(r->total_len > 0 && r->argc >= 1);
    if (r->err == REDIS_ERR_UNSUPPORTED) {
        CHECK(r->cmd == NULL || r->cmd->route == REDIS_ROUTE_UNSUPPORTED);
        CHECK(r->is_inline || r->cmd == redis_cmd_lookup(buf + r->name_off, r->name_len));
    } else {
        CHECK(r->err == REDIS_ERR_ARITY && r->cmd != NULL);
    }
    check_args(buf, r);
}

/*
 * Parse buf[0..len) request by request, with bytes arriving as feed says
 * (fuzz_driver.h). Each
 * result is compared with a fresh parse of the same position with all bytes
 * present.
 */
static void
run(const uint8_t *buf, size_t len, const struct fuzz_feed *feed, void *arg)
{
    const uint64_t max = *(const uint64_t *)arg;
    size_t pos = 0, avail = fuzz_first(feed, len);
    struct redis_req inc;

    redis_req_init(&inc, a_inc.p, a_inc.cap);
    for (;;) {
        struct redis_req whole;
        enum redis_parse ri, rw;

        ri = parse(&a_inc, &inc, buf + pos, avail - pos, max);
        if (ri == REDIS_PARSE_AGAIN && avail < len) {
            avail = fuzz_more(feed, avail, len);
            continue;
        }
        redis_req_init(&whole, a_whole.p, a_whole.cap);
        rw = parse(&a_whole, &whole, buf + pos, len - pos, max);
        CHECK(req_equal(ri, &inc, rw, &whole));
        /* a finished parse repeats its result */
        CHECK(parse(&a_whole, &whole, buf + pos, len - pos, max) == rw);
        if (ri == REDIS_PARSE_AGAIN) {
            return;
        }
        check_result(buf + pos, avail - pos, max, ri, &inc);
        if (ri == REDIS_PARSE_ERROR && redis_error_closes(inc.err)) {
            return;
        }
        if (ri == REDIS_PARSE_OK) {
            /* the arguments recorded in pieces are the ones recorded whole */
            CHECK(inc.is_inline || memcmp(inc.args, whole.args, sizeof(*inc.args) * inc.argc) == 0);
        }
        pos += inc.total_len;
        redis_req_reset(&inc);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_requests(data, size, run, 64, 4096);
}
