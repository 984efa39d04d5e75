/*
 * proto_redis: RESP2 requests and replies, parsed in place.
 *
 * Both parsers are pure: the caller owns the buffer and the small state
 * struct, nothing is allocated and the only globals are the const tables
 * below, so any worker thread may parse its own conns' bytes. Unlike
 * proto_mc they are resumable rather than restartable, because a Redis
 * request can be 512 MiB of bulk bodies in many reads: the state struct
 * remembers where the last call stopped, so each byte of a header is looked
 * at about once and each body is stepped over by its declared length.
 *
 *   buf:  *3\r\n $3\r\n SET\r\n $1\r\n k\r\n $5\r\n hello\r\n
 *         ^               ^           ^
 *         request start   r->pos      (after a call that returned AGAIN)
 *
 * The one thing re-read on resumption is a header line cut short by the
 * read ("$12" waiting for "3\r\n"): pos stays at its '$' until the header
 * is whole. Headers are at most a dozen bytes, because a length that is
 * already over its limit is refused before its line ends.
 *
 * The incremental contract. Every decision is made from a prefix of the
 * request that is already final for it (a header's bytes up to the one
 * that breaks or ends it, a body's declared length plus two bytes, an
 * inline line up to its '\n' or its length limit), and the decisions are
 * made in stream order. So a request fed whole, byte by byte or split
 * anywhere produces the same result, and the fuzz harnesses in test/fuzz
 * assert exactly that.
 *
 * Requests. A first byte of '*' means multibulk; anything else is an inline
 * line, split into arguments as Redis splits it, quotes and escapes
 * included (twemproxy accepts no inline commands at all). A quoted argument
 * is not a run of bytes in the buffer, so the caller encodes an inline
 * request as multibulk (redis_inline_encode) before routing it, and the
 * backend sees exactly the arguments we routed on. Limits come
 * first and in Redis's order (count, then each bulk length), then the
 * declared size against max_request_size: as soon as a header shows the
 * request cannot fit (the bulk just announced, plus six bytes for each
 * argument still to come, the least "$0\r\n\r\n" takes) it is refused,
 * before its body is buffered. Only a whole request is looked up in the
 * command table, so an unknown or mis-sized command is still well framed:
 * its total_len is known and the conn survives it.
 *
 * Replies are any RESP2 value nested to any depth. Nesting needs no stack:
 * a reply is complete when the number of values still owed reaches zero,
 * each value read pays one and an array header of n adds n. That counter
 * is all the state a half-read reply of any shape has.
 *
 * The command table is data, sorted by name for a binary search that
 * compares case-insensitively in place (no copy, no allocation).
 */
#include "proto_redis.h"

#include "util.h"

#include <string.h>

/* Redis quotes at most this much of a client's command name in an error. */
#define REDIS_ERR_NAME_MAX 128

/* The fewest bytes an argument still to come can take: "$0\r\n\r\n". */
#define REDIS_MIN_ARG_LEN 6

enum redis_req_state {
    REQ_START,    /* nothing decided yet */
    REQ_ARG_HDR,  /* pos: the '$' of the next argument's header */
    REQ_ARG_BODY, /* pos: the first byte of a body of bulk_len bytes */
    REQ_INLINE,   /* pos: where the search for the line's '\n' resumes */
    REQ_DONE,     /* err says which result to repeat */
};

enum redis_rsp_state {
    RSP_START, /* a zeroed struct: remaining is not set up yet */
    RSP_HDR,   /* pos: a value's type byte; scan: '\n' search resumes here */
    RSP_BODY,  /* pos: the first byte of a body of bulk_len bytes */
    RSP_DONE,
    RSP_FAILED,
};

enum redis_hdr { HDR_OK, HDR_AGAIN, HDR_BAD };

/*
 * A length line "<type><digits>\r\n" at buf[pos] (the type byte is not
 * looked at). Digits are read as Redis's string2ll reads them: an optional
 * '-', no '+', no leading zero, no spaces. A value above max_pos, or below
 * -max_neg, is HDR_BAD as soon as its digits show it, so a header never
 * waits for more bytes once it cannot be valid, and a garbage length never
 * holds the conn open. On HDR_OK, *end is the offset after the '\n'.
 */
static enum redis_hdr
redis_parse_hdr(const uint8_t *buf, size_t len, size_t pos, uint64_t max_pos, uint64_t max_neg,
                int64_t *val, size_t *end)
{
    size_t p = pos + 1, ndigits = 0;
    uint64_t v = 0, lim = max_pos;
    bool neg = false;

    if (p < len && buf[p] == '-') {
        if (max_neg == 0) {
            return HDR_BAD;
        }
        neg = true;
        lim = max_neg;
        p++;
    }
    for (; p < len; p++) {
        unsigned d = (unsigned)buf[p] - '0';

        if (d <= 9) {
            /* "0" alone is a number; "01" and "-0" are not */
            if ((ndigits > 0 && v == 0) || (neg && d == 0 && ndigits == 0)) {
                return HDR_BAD;
            }
            if (d > lim || v > (lim - d) / 10) {
                return HDR_BAD;
            }
            v = v * 10 + d;
            ndigits++;
            continue;
        }
        if (buf[p] != '\r' || ndigits == 0) {
            return HDR_BAD;
        }
        if (p + 1 == len) {
            return HDR_AGAIN;
        }
        if (buf[p + 1] != '\n') {
            return HDR_BAD;
        }
        *end = p + 2;
        /* v <= 2^63 here; for neg, -(v - 1) - 1 stays inside int64 */
        *val = neg ? -(int64_t)(v - 1) - 1 : (int64_t)v;
        return HDR_OK;
    }
    return HDR_AGAIN;
}

static enum redis_parse
redis_req_fail(struct redis_req *r, enum redis_req_error err)
{
    r->err = err;
    r->state = REQ_DONE;
    if (redis_error_closes(err)) {
        r->total_len = 0;
    }
    return REDIS_PARSE_ERROR;
}

/* C's isspace() set, which Redis's inline splitter skips between arguments. */
static bool
redis_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int
redis_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The line as the C string Redis splits: it ends at len or at a NUL. */
static int
redis_at(const uint8_t *line, size_t len, size_t i)
{
    return i < len ? line[i] : 0;
}

static void
redis_put(uint8_t *out, size_t *n, int c)
{
    if (out != NULL) {
        out[*n] = (uint8_t)c;
    }
    (*n)++;
}

int
redis_inline_next_arg(const uint8_t *line, size_t len, size_t *cursor, uint8_t *out, size_t *outlen)
{
    size_t p = *cursor, n = 0;
    bool inq = false, insq = false, done = false;
    int c;

    while ((c = redis_at(line, len, p)) != 0 && redis_is_space(c)) {
        p++;
    }
    if (c == 0) {
        *cursor = p;
        return 0;
    }
    while (!done) {
        c = redis_at(line, len, p);
        if (inq) {
            int h1 = redis_hex(redis_at(line, len, p + 2));
            int h2 = redis_hex(redis_at(line, len, p + 3));
            if (c == '\\' && redis_at(line, len, p + 1) == 'x' && h1 >= 0 && h2 >= 0) {
                redis_put(out, &n, h1 * 16 + h2);
                p += 3;
            } else if (c == '\\' && redis_at(line, len, p + 1) != 0) {
                p++;
                // clang-format off
                switch (redis_at(line, len, p)) {
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'b': c = '\b'; break;
                case 'a': c = '\a'; break;
                default: c = redis_at(line, len, p); break;
                }
                // clang-format on
                redis_put(out, &n, c);
            } else if (c == '"') {
                /* a closing quote must end the argument */
                int next = redis_at(line, len, p + 1);
                if (next != 0 && !redis_is_space(next)) {
                    return -1;
                }
                done = true;
            } else if (c == 0) {
                return -1;
            } else {
                redis_put(out, &n, c);
            }
        } else if (insq) {
            if (c == '\\' && redis_at(line, len, p + 1) == '\'') {
                p++;
                redis_put(out, &n, '\'');
            } else if (c == '\'') {
                int next = redis_at(line, len, p + 1);
                if (next != 0 && !redis_is_space(next)) {
                    return -1;
                }
                done = true;
            } else if (c == 0) {
                return -1;
            } else {
                redis_put(out, &n, c);
            }
        } else {
            switch (c) {
            case ' ':
            case '\n':
            case '\r':
            case '\t':
            case 0:
                done = true;
                break;
            case '"':
                inq = true;
                break;
            case '\'':
                insq = true;
                break;
            default:
                redis_put(out, &n, c);
                break;
            }
        }
        if (redis_at(line, len, p) != 0) {
            p++;
        }
    }
    *cursor = p;
    *outlen = n;
    return 1;
}

/* The line of a whole inline request, without its "\n" or "\r\n". */
static size_t
redis_inline_line_len(const struct redis_req *r, const uint8_t *buf)
{
    size_t n = r->total_len - 1;

    return n > 0 && buf[n - 1] == '\r' ? n - 1 : n;
}

size_t
redis_inline_encoded_max(const struct redis_req *r)
{
    /* "*N\r\n", then per argument "$len\r\n" and "\r\n" around bytes that
       are never more than the line's */
    return r->total_len + 24 + (size_t)r->argc * 26;
}

static size_t
redis_put_count(uint8_t *out, char type, uint64_t v)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    out[0] = (uint8_t)type;
    for (size_t i = 0; i < n; i++) {
        out[1 + i] = (uint8_t)tmp[n - 1 - i];
    }
    out[1 + n] = '\r';
    out[2 + n] = '\n';
    return n + 3;
}

size_t
redis_inline_encode(const struct redis_req *r, const uint8_t *buf, uint8_t *out)
{
    size_t line = redis_inline_line_len(r, buf), cursor = 0, n, alen;

    n = redis_put_count(out, '*', r->argc);
    for (;;) {
        size_t at = cursor;
        if (redis_inline_next_arg(buf, line, &cursor, NULL, &alen) != 1) {
            break;
        }
        n += redis_put_count(out + n, '$', alen);
        cursor = at;
        (void)redis_inline_next_arg(buf, line, &cursor, out + n, &alen);
        n += alen;
        out[n++] = '\r';
        out[n++] = '\n';
    }
    return n;
}

/*
 * The request is whole and r->total_len set: what is it? Unknown names and
 * wrong arities are answered and skipped, the conn lives on.
 */
static enum redis_parse
redis_req_finish(struct redis_req *r, const uint8_t *name, size_t name_len)
{
    const struct redis_cmd *cmd = redis_cmd_lookup(name, name_len);
    uint32_t nargs = r->argc - 1;

    r->cmd = cmd;
    if (cmd == NULL || cmd->route == REDIS_ROUTE_UNSUPPORTED) {
        return redis_req_fail(r, REDIS_ERR_UNSUPPORTED);
    }
    if (nargs < (uint32_t)cmd->min_args ||
        (cmd->max_args >= 0 && nargs > (uint32_t)cmd->max_args)) {
        return redis_req_fail(r, REDIS_ERR_ARITY);
    }
    /* MSET's pairs are split between servers: a lone key has no value. */
    if (cmd->key_step > 1 && nargs % cmd->key_step != 0) {
        return redis_req_fail(r, REDIS_ERR_ARITY);
    }
    r->state = REQ_DONE;
    return REDIS_PARSE_OK;
}

/*
 * An inline line: found by its '\n' within the first `limit` bytes. Past
 * that the request is refused: as too large when max_request_size is what
 * bounds it, else as Redis's too big inline request. The arguments are
 * split as Redis splits them (quotes and escapes); the command name is
 * looked up decoded, so "get" and '"get"' are the same command.
 */
static enum redis_parse
redis_parse_inline(struct redis_req *r, const uint8_t *buf, size_t len, uint64_t max_request_size)
{
    size_t limit = (size_t)MIN((uint64_t)REDIS_INLINE_SEARCH, max_request_size);
    size_t stop = MIN(len, limit), cursor = 0, line, alen;
    uint8_t name[REDIS_CMD_NAME_MAX + 1];
    size_t name_len = 0;
    const uint8_t *nl = NULL;
    int rc;

    if (r->pos < stop) {
        nl = memchr(buf + r->pos, '\n', stop - r->pos);
    }
    if (nl == NULL) {
        if (len >= limit) {
            return redis_req_fail(r, max_request_size < REDIS_INLINE_SEARCH
                                         ? REDIS_ERR_TOO_LARGE
                                         : REDIS_ERR_INLINE_TOO_LONG);
        }
        r->pos = len;
        return REDIS_PARSE_AGAIN;
    }
    r->total_len = (size_t)(nl - buf) + 1;
    r->pos = r->total_len;
    line = redis_inline_line_len(r, buf);
    for (;;) {
        size_t at = cursor;
        rc = redis_inline_next_arg(buf, line, &cursor, NULL, &alen);
        if (rc < 0) {
            return redis_req_fail(r, REDIS_ERR_UNBALANCED_QUOTES);
        }
        if (rc == 0) {
            break;
        }
        if (r->argc == 0) {
            /* the raw token, for quoting in an error reply */
            while (redis_is_space(buf[at])) {
                at++;
            }
            r->name_off = at;
            r->name_len = cursor - at;
            if (alen <= REDIS_CMD_NAME_MAX) {
                (void)redis_inline_next_arg(buf, line, &at, name, &name_len);
            } else {
                name_len = 0; /* longer than any command: unknown */
            }
        }
        r->argc++;
    }
    if (r->argc == 0) {
        return redis_req_fail(r, REDIS_ERR_EMPTY);
    }
    /* a quoted argument's raw token keeps its closing quote; the name's
       token is cut where the argument ends */
    while (r->name_len > 0 && redis_is_space(buf[r->name_off + r->name_len - 1])) {
        r->name_len--;
    }
    return redis_req_finish(r, name, name_len);
}

/* "*N\r\n": how many arguments follow. */
static enum redis_parse
redis_parse_count(struct redis_req *r, const uint8_t *buf, size_t len, uint64_t max_request_size)
{
    int64_t n;
    size_t end;

    switch (redis_parse_hdr(buf, len, 0, REDIS_MAX_MULTIBULK, 1, &n, &end)) {
    case HDR_AGAIN:
        return REDIS_PARSE_AGAIN;
    case HDR_BAD:
        return redis_req_fail(r, REDIS_ERR_MULTIBULK_LEN);
    case HDR_OK:
        break;
    }
    if (n <= 0) {
        /* *0 and *-1: Redis reads them and does nothing, not even reply */
        r->total_len = end;
        return redis_req_fail(r, REDIS_ERR_EMPTY);
    }
    if ((uint64_t)end + (uint64_t)n * REDIS_MIN_ARG_LEN > max_request_size) {
        return redis_req_fail(r, REDIS_ERR_TOO_LARGE);
    }
    r->argc = (uint32_t)n;
    r->args_left = (uint32_t)n;
    r->pos = end;
    r->state = REQ_ARG_HDR;
    return r->argc > r->args_cap ? REDIS_PARSE_ARGS : REDIS_PARSE_AGAIN;
}

/* "$len\r\n" of the next argument, at r->pos. */
static enum redis_parse
redis_parse_arg_hdr(struct redis_req *r, const uint8_t *buf, size_t len, uint64_t max_request_size)
{
    int64_t n;
    size_t end;

    if (r->pos >= len) {
        return REDIS_PARSE_AGAIN;
    }
    if (buf[r->pos] != '$') {
        r->err_detail = (char)buf[r->pos];
        return redis_req_fail(r, REDIS_ERR_EXPECTED_DOLLAR);
    }
    switch (redis_parse_hdr(buf, len, r->pos, REDIS_MAX_BULK, 0, &n, &end)) {
    case HDR_AGAIN:
        return REDIS_PARSE_AGAIN;
    case HDR_BAD:
        return redis_req_fail(r, REDIS_ERR_BULK_LEN);
    case HDR_OK:
        break;
    }
    if ((uint64_t)end + r->skipped + (uint64_t)n + 2 +
            (uint64_t)(r->args_left - 1) * REDIS_MIN_ARG_LEN >
        max_request_size) {
        return redis_req_fail(r, REDIS_ERR_TOO_LARGE);
    }
    if (r->args_left == r->argc) {
        r->name_off = end;
        r->name_len = (size_t)n;
    }
    r->args[r->argc - r->args_left] = (struct redis_arg){ end, (size_t)n };
    r->bulk_len = (uint64_t)n;
    r->pos = end;
    r->state = REQ_ARG_BODY;
    return REDIS_PARSE_AGAIN;
}

enum redis_parse
redis_parse_req(struct redis_req *r, const uint8_t *buf, size_t len, uint64_t max_request_size)
{
    enum redis_parse rc;

    for (;;) {
        switch ((enum redis_req_state)r->state) {
        case REQ_START:
            if (len == 0) {
                return REDIS_PARSE_AGAIN;
            }
            if (buf[0] != '*') {
                r->is_inline = true;
                r->state = REQ_INLINE;
                continue;
            }
            rc = redis_parse_count(r, buf, len, max_request_size);
            if (r->state != REQ_ARG_HDR || rc == REDIS_PARSE_ARGS) {
                return rc;
            }
            break;
        case REQ_ARG_HDR:
            if (r->argc > r->args_cap) {
                return REDIS_PARSE_ARGS;
            }
            rc = redis_parse_arg_hdr(r, buf, len, max_request_size);
            if (r->state != REQ_ARG_BODY) {
                return rc;
            }
            break;
        case REQ_ARG_BODY:
            /* bulk_len <= 512 MiB: no overflow either way */
            if (r->pos > len || len - r->pos < r->bulk_len + 2) {
                return REDIS_PARSE_AGAIN;
            }
            r->pos += (size_t)r->bulk_len;
            if (buf[r->pos] != '\r' || buf[r->pos + 1] != '\n') {
                /* the body is not the declared length: nothing after it can be framed */
                return redis_req_fail(r, REDIS_ERR_BULK_LEN);
            }
            r->pos += 2;
            if (--r->args_left == 0) {
                r->total_len = r->pos;
                return redis_req_finish(r, buf + r->name_off, r->name_len);
            }
            r->state = REQ_ARG_HDR;
            break;
        case REQ_INLINE:
            return redis_parse_inline(r, buf, len, max_request_size);
        case REQ_DONE:
        default:
            return r->err == REDIS_ERR_NONE ? REDIS_PARSE_OK : REDIS_PARSE_ERROR;
        }
    }
}

uint64_t
redis_req_body_left(const struct redis_req *r, size_t len, uint32_t *arg)
{
    if (r->state != REQ_ARG_BODY || r->pos + r->bulk_len <= len) {
        return 0;
    }
    *arg = r->argc - r->args_left;
    return r->pos + r->bulk_len - len;
}

void
redis_req_skip(struct redis_req *r, uint64_t n)
{
    r->bulk_len -= n;
    r->skipped += n;
}

void
redis_req_init(struct redis_req *r, struct redis_arg *args, uint32_t args_cap)
{
    memset(r, 0, sizeof(*r));
    r->args = args;
    r->args_cap = args_cap;
}

void
redis_req_reset(struct redis_req *r)
{
    redis_req_init(r, r->args, r->args_cap);
}

bool
redis_error_closes(enum redis_req_error err)
{
    switch (err) {
    case REDIS_ERR_MULTIBULK_LEN:
    case REDIS_ERR_BULK_LEN:
    case REDIS_ERR_EXPECTED_DOLLAR:
    case REDIS_ERR_TOO_LARGE:
    case REDIS_ERR_INLINE_TOO_LONG:
    case REDIS_ERR_UNBALANCED_QUOTES:
        return true;
    default:
        return false;
    }
}

/* Bounded append for building a reply; *ok turns false once out is full. */
static void
redis_out(char *out, size_t outlen, size_t *n, bool *ok, const void *s, size_t slen)
{
    if (!*ok || slen > outlen - *n) {
        *ok = false;
        return;
    }
    memcpy(out + *n, s, slen);
    *n += slen;
}

/*
 * The client's bytes quoted inside an error line, as Redis's
 * addReplyErrorFormat does it: CR and LF become spaces, so the reply stays
 * one line whatever the client sent.
 */
static void
redis_out_quoted(char *out, size_t outlen, size_t *n, bool *ok, const uint8_t *s, size_t slen)
{
    size_t start = *n;

    redis_out(out, outlen, n, ok, s, slen);
    if (!*ok) {
        return;
    }
    for (size_t i = start; i < *n; i++) {
        if (out[i] == '\r' || out[i] == '\n') {
            out[i] = ' ';
        }
    }
}

#define REDIS_LIT(s) s, sizeof(s) - 1

size_t
redis_error_reply(const struct redis_req *r, const uint8_t *buf, char *out, size_t outlen)
{
    size_t n = 0;
    bool ok = true;
    const char *fixed = NULL;
    uint8_t got;

    switch (r->err) {
    case REDIS_ERR_UNSUPPORTED:
        redis_out(out, outlen, &n, &ok, REDIS_LIT("-ERR unsupported command '"));
        redis_out_quoted(out, outlen, &n, &ok, buf + r->name_off,
                         MIN(r->name_len, (size_t)REDIS_ERR_NAME_MAX));
        redis_out(out, outlen, &n, &ok, REDIS_LIT("'\r\n"));
        break;
    case REDIS_ERR_ARITY:
        /* Redis 7 names the command as its table does: lower case */
        redis_out(out, outlen, &n, &ok, REDIS_LIT("-ERR wrong number of arguments for '"));
        if (r->cmd != NULL) {
            redis_out(out, outlen, &n, &ok, r->cmd->name, strlen(r->cmd->name));
        }
        redis_out(out, outlen, &n, &ok, REDIS_LIT("' command\r\n"));
        break;
    case REDIS_ERR_EXPECTED_DOLLAR:
        got = (uint8_t)r->err_detail;
        redis_out(out, outlen, &n, &ok, REDIS_LIT("-ERR Protocol error: expected '$', got '"));
        redis_out_quoted(out, outlen, &n, &ok, &got, 1);
        redis_out(out, outlen, &n, &ok, REDIS_LIT("'\r\n"));
        break;
    case REDIS_ERR_MULTIBULK_LEN:
        fixed = "-ERR Protocol error: invalid multibulk length\r\n";
        break;
    case REDIS_ERR_BULK_LEN:
        fixed = "-ERR Protocol error: invalid bulk length\r\n";
        break;
    case REDIS_ERR_TOO_LARGE:
        fixed = "-ERR Protocol error: request too large\r\n";
        break;
    case REDIS_ERR_INLINE_TOO_LONG:
        fixed = "-ERR Protocol error: too big inline request\r\n";
        break;
    case REDIS_ERR_UNBALANCED_QUOTES:
        fixed = "-ERR Protocol error: unbalanced quotes in request\r\n";
        break;
    case REDIS_ERR_NONE:
    case REDIS_ERR_EMPTY:
    default:
        return 0;
    }
    if (fixed != NULL) {
        redis_out(out, outlen, &n, &ok, fixed, strlen(fixed));
    }
    return ok ? n : 0;
}

bool
redis_arg_is(const struct redis_req *r, const uint8_t *buf, uint32_t i, const char *lit)
{
    size_t n = strlen(lit);

    if (i >= r->argc || r->args[i].len != n) {
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        uint8_t a = buf[r->args[i].off + k];
        if (a >= 'A' && a <= 'Z') {
            a = (uint8_t)(a - 'A' + 'a');
        }
        if (a != (uint8_t)lit[k]) {
            return false;
        }
    }
    return true;
}

/* ---- replies ---- */

void
redis_rsp_init(struct redis_rsp *r)
{
    memset(r, 0, sizeof(*r));
}

void
redis_rsp_init3(struct redis_rsp *r)
{
    memset(r, 0, sizeof(*r));
    r->resp3 = true;
}

static enum redis_parse
redis_rsp_fail(struct redis_rsp *r)
{
    r->state = RSP_FAILED;
    return REDIS_PARSE_ERROR;
}

/*
 * The end of a +status or -error line at r->pos. A status line carries no
 * length, so its '\n' is searched for, resuming where the last call left
 * off, and a line longer than REDIS_MAX_RSP_LINE fails the server conn
 * rather than growing a buffer without bound.
 */
static enum redis_parse
redis_rsp_status(struct redis_rsp *r, const uint8_t *buf, size_t len, size_t *end)
{
    size_t start = r->pos, stop = MIN(len, start + REDIS_MAX_RSP_LINE);
    const uint8_t *nl = NULL;
    size_t e;

    if (r->scan <= start) {
        r->scan = start + 1;
    }
    if (r->scan < stop) {
        nl = memchr(buf + r->scan, '\n', stop - r->scan);
    }
    if (nl == NULL) {
        if (stop - start >= REDIS_MAX_RSP_LINE) {
            return REDIS_PARSE_ERROR;
        }
        r->scan = len;
        return REDIS_PARSE_AGAIN;
    }
    /* buf[start] is the type byte, so a '\r' before the '\n' is content's end */
    e = (size_t)(nl - buf);
    if (buf[e - 1] != '\r') {
        return REDIS_PARSE_ERROR;
    }
    *end = e + 1;
    return REDIS_PARSE_OK;
}

/* The type each type byte gives (looked up for the bytes redis_rsp_kinds
   knows only). */
static const enum redis_rsp_type redis_rsp_types[128] = {
    ['+'] = REDIS_RSP_STATUS,     ['-'] = REDIS_RSP_ERROR,    [':'] = REDIS_RSP_INTEGER,
    ['$'] = REDIS_RSP_BULK,       ['*'] = REDIS_RSP_ARRAY,    ['_'] = REDIS_RSP_NULL,
    ['#'] = REDIS_RSP_BOOLEAN,    [','] = REDIS_RSP_DOUBLE,   ['('] = REDIS_RSP_BIG_NUMBER,
    ['!'] = REDIS_RSP_BLOB_ERROR, ['='] = REDIS_RSP_VERBATIM, ['%'] = REDIS_RSP_MAP,
    ['~'] = REDIS_RSP_SET,        ['>'] = REDIS_RSP_PUSH,
};

/* How a value's header is read: a line that is the whole value, a length
   before a body, or a count of values that follow. */
enum redis_rsp_kind { KIND_NONE, KIND_LINE, KIND_BODY, KIND_COUNT };

/* Each type byte's kind, looked up once per header; KIND_RESP3 marks the
   types a RESP2 conn never carries. */
#define KIND_RESP3 0x80
static const uint8_t redis_rsp_kinds[256] = {
    ['+'] = KIND_LINE,
    ['-'] = KIND_LINE,
    [':'] = KIND_LINE,
    ['$'] = KIND_BODY,
    ['*'] = KIND_COUNT,
    ['_'] = KIND_LINE | KIND_RESP3,
    ['#'] = KIND_LINE | KIND_RESP3,
    [','] = KIND_LINE | KIND_RESP3,
    ['('] = KIND_LINE | KIND_RESP3,
    ['!'] = KIND_BODY | KIND_RESP3,
    ['='] = KIND_BODY | KIND_RESP3,
    ['%'] = KIND_COUNT | KIND_RESP3,
    ['~'] = KIND_COUNT | KIND_RESP3,
    ['>'] = KIND_COUNT | KIND_RESP3,
    ['|'] = KIND_COUNT | KIND_RESP3,
};

/* Whether the RESP3 line value at buf[start..end) (its "\r\n" included) is
   well formed: a null is empty, a boolean t or f, a double or big number
   not empty (their digits are the backend's business). */
static bool
redis_rsp3_line_ok(uint8_t type, const uint8_t *buf, size_t start, size_t end)
{
    size_t n = end - start - 3; /* between the type byte and "\r\n" */

    switch (type) {
    case '_':
        return n == 0;
    case '#':
        return n == 1 && (buf[start + 1] == 't' || buf[start + 1] == 'f');
    case ',':
    case '(':
        return n > 0;
    default:
        return true;
    }
}

/*
 * One value's header line at r->pos: the whole value for a line type, the
 * length for a body type, the count for an aggregate. Returns AGAIN (line
 * incomplete), ERROR, or OK with r->pos past the line and the owed-values
 * counter updated. An attribute (|n) owes its 2n values and still the
 * value it describes.
 */
static enum redis_parse
redis_rsp_header(struct redis_rsp *r, const uint8_t *buf, size_t len)
{
    size_t start = r->pos, end = 0;
    uint64_t max_pos, max_neg, owed;
    enum redis_parse rc;
    int64_t n = 0;
    uint8_t type;

    if (start >= len) {
        return REDIS_PARSE_AGAIN;
    }
    type = buf[start];
    if (type == '$') {
        /* The value most replies are made of (GET, every MGET element),
           the same in RESP2 and RESP3: its own short path. */
        switch (redis_parse_hdr(buf, len, start, REDIS_MAX_BULK, 1, &n, &end)) {
        case HDR_OK:
            break;
        case HDR_AGAIN:
            return REDIS_PARSE_AGAIN;
        default:
            return REDIS_PARSE_ERROR;
        }
        if (!r->typed && r->remaining == 1) {
            r->type = REDIS_RSP_BULK;
            r->integer = n;
            r->typed = true;
        }
        r->pos = end;
        if (n < 0) {
            r->remaining--; /* $-1: nil */
            return REDIS_PARSE_OK;
        }
        r->bulk_len = (uint64_t)n; /* paid for once its body has been read */
        r->state = RSP_BODY;
        r->in_body = true;
        return REDIS_PARSE_OK;
    }
    if (type == '+') { /* +OK, the reply of every write: short path too */
        rc = redis_rsp_status(r, buf, len, &end);
        if (rc != REDIS_PARSE_OK) {
            return rc;
        }
        if (!r->typed && r->remaining == 1) {
            r->type = REDIS_RSP_STATUS;
            r->integer = 0;
            r->typed = true;
        }
        r->pos = end;
        r->remaining--;
        return REDIS_PARSE_OK;
    }
    uint8_t k = redis_rsp_kinds[type];
    enum redis_rsp_kind kind = (enum redis_rsp_kind)(k & ~KIND_RESP3);
    if ((k & KIND_RESP3) && !r->resp3) {
        return REDIS_PARSE_ERROR; /* RESP3 on a RESP2 conn */
    }
    switch (kind) {
    case KIND_LINE:
        max_pos = max_neg = 0;
        if (type == ':') {
            max_pos = INT64_MAX;
            max_neg = (uint64_t)INT64_MAX + 1;
        }
        break;
    case KIND_BODY:
        max_pos = REDIS_MAX_BULK;
        max_neg = type == '$' ? 1 : 0; /* $-1: nil */
        break;
    case KIND_COUNT:
        max_pos = INT32_MAX;
        max_neg = type == '*' ? 1 : 0; /* *-1: nil */
        break;
    default:
        return REDIS_PARSE_ERROR; /* unknown */
    }
    if (max_pos == 0) {
        rc = redis_rsp_status(r, buf, len, &end);
        if (rc == REDIS_PARSE_OK && (k & KIND_RESP3) &&
            !redis_rsp3_line_ok(type, buf, start, end)) {
            rc = REDIS_PARSE_ERROR;
        }
    } else {
        /* a streamed "$?" or "*?" fails here: '?' is not a digit */
        switch (redis_parse_hdr(buf, len, start, max_pos, max_neg, &n, &end)) {
        case HDR_OK:
            rc = REDIS_PARSE_OK;
            break;
        case HDR_AGAIN:
            rc = REDIS_PARSE_AGAIN;
            break;
        default:
            rc = REDIS_PARSE_ERROR;
            break;
        }
    }
    if (rc != REDIS_PARSE_OK) {
        return rc;
    }

    owed = n > 0 && kind == KIND_COUNT ? (uint64_t)n : 0;
    if (type == '%' || type == '|') {
        owed *= 2; /* pairs */
    }
    if (owed > 0 && r->remaining - 1 > UINT64_MAX - owed) {
        return REDIS_PARSE_ERROR;
    }
    if (!r->typed && type != '|' && r->remaining == 1) {
        /* the reply's own value: the first one owed alone, so not inside a
           leading attribute (whose values are owed beside it) */
        r->type = redis_rsp_types[type];
        r->integer = type == '#' ? buf[start + 1] == 't' : n;
        r->typed = true;
    }
    r->pos = end;
    if (kind == KIND_BODY && n >= 0) {
        /* the value is paid for once its body has been read */
        r->bulk_len = (uint64_t)n;
        r->state = RSP_BODY;
        r->in_body = true;
        return REDIS_PARSE_OK;
    }
    if (type != '|') {
        r->remaining--;
    }
    r->remaining += owed;
    return REDIS_PARSE_OK;
}

enum redis_parse
redis_parse_rsp(struct redis_rsp *r, const uint8_t *buf, size_t len)
{
    enum redis_parse rc;

    for (;;) {
        switch ((enum redis_rsp_state)r->state) {
        case RSP_START:
            r->remaining = 1;
            r->state = RSP_HDR;
            break;
        case RSP_HDR:
            rc = redis_rsp_header(r, buf, len);
            if (rc == REDIS_PARSE_ERROR) {
                return redis_rsp_fail(r);
            }
            if (rc == REDIS_PARSE_AGAIN) {
                return rc;
            }
            break;
        case RSP_BODY:
            if (r->pos > len || len - r->pos < r->bulk_len + 2) {
                return REDIS_PARSE_AGAIN;
            }
            r->pos += (size_t)r->bulk_len;
            if (buf[r->pos] != '\r' || buf[r->pos + 1] != '\n') {
                return redis_rsp_fail(r);
            }
            r->pos += 2;
            r->remaining--;
            r->state = RSP_HDR;
            r->in_body = false;
            break;
        case RSP_DONE:
            return REDIS_PARSE_OK;
        case RSP_FAILED:
        default:
            return REDIS_PARSE_ERROR;
        }
        if (r->state == RSP_HDR && r->remaining == 0) {
            r->total_len = r->pos;
            r->state = RSP_DONE;
            return REDIS_PARSE_OK;
        }
    }
}

uint64_t
redis_rsp_min_len(const struct redis_rsp *r)
{
    /* the shortest value is "+\r\n" */
    uint64_t owed = r->remaining, n = r->pos;

    if (r->state == RSP_DONE) {
        return r->total_len;
    }
    if (r->in_body) {
        n += r->bulk_len + 2;
        owed--; /* that bulk is paid once its body is read */
    }
    return owed > (UINT64_MAX - n) / 3 ? UINT64_MAX : n + owed * 3;
}

uint64_t
redis_rsp_body_left(const struct redis_rsp *r, size_t len)
{
    if (r->state != RSP_BODY || r->pos + r->bulk_len <= len) {
        return 0;
    }
    return r->pos + r->bulk_len - len;
}

void
redis_rsp_skip(struct redis_rsp *r, uint64_t n)
{
    r->bulk_len -= n;
}

bool
redis_next_elem(const uint8_t *buf, size_t len, size_t *cursor, size_t *off, size_t *elen)
{
    struct redis_rsp e;
    size_t p = *cursor;

    if (p == 0) {
        const uint8_t *nl;

        if (len == 0 || buf[0] != '*' || (nl = memchr(buf, '\n', len)) == NULL) {
            return false;
        }
        p = (size_t)(nl - buf) + 1;
    }
    if (p >= len) {
        *cursor = p;
        return false;
    }
    redis_rsp_init(&e);
    if (redis_parse_rsp(&e, buf + p, len - p) != REDIS_PARSE_OK) {
        return false;
    }
    *off = p;
    *elen = e.total_len;
    *cursor = p + e.total_len;
    return true;
}
