/*
 * proto_mc: the memcached ASCII protocol, parsed in place.
 *
 * Both parsers are pure functions of (buf, len): they keep no state between
 * calls, allocate nothing and touch no globals beyond the const tables
 * below, so any worker thread may call them on its own buffers. The caller
 * re-invokes them on the same buffer as bytes arrive; a result other than
 * MC_PARSE_AGAIN is only ever produced from bytes that are already final
 * for that decision (the command line up to its '\n', the declared body and
 * its two terminator bytes), so parsing a stream whole, byte by byte or at
 * any split points yields the same sequence of results. The fuzz harnesses
 * in test/fuzz assert exactly that.
 *
 * Requests. A command line is found with memchr (never more than
 * MC_MAX_LINE_LEN bytes are searched), an optional '\r' before the '\n' is
 * dropped, and the rest is split on runs of spaces, as memcached's
 * tokenize_command does. What a command may carry lives in two tables:
 * mc_cmds (from the MC_CMD_LIST X-macro: name and kind) and mc_kinds (per
 * kind: argument counts, one rule letter per positional argument, whether
 * noreply applies). The checks run in memcached's order: argument count,
 * key length, numeric fields, then the declared size against
 * max_request_size, which is decided as soon as the line is complete and
 * before any of the body has to be buffered. Bodies are located by length
 * and never scanned; only the two bytes after them are looked at.
 *
 * Errors split in two: those that leave the byte stream well framed
 * (unknown command, wrong argument count) keep the connection, and the
 * caller skips req->line_len bytes; everything that makes framing doubtful
 * (a storage line we cannot size, an overlong key, a bad data chunk, a body
 * over the limit, a NUL in the line, binary protocol) closes it.
 *
 * noreply. The proxy strips noreply toward the backend and swallows the one
 * reply it then gets, so our idea of "this request gets no reply" must be a
 * superset of memcached's: memcached (set_noreply_maybe) looks only at the
 * last token, whatever position it is in. We do the same, so "incr k
 * noreply" is noreply here too; stripped to "incr k" the backend answers
 * ERROR and the proxy swallows it, which is what memcached's client would
 * have seen (nothing). The one shape stripping cannot make safe is a second
 * "noreply" just before the last one ("touch k noreply noreply"): stripped
 * once, the backend would still see noreply and never answer, shifting
 * every later reply, so that line is refused.
 *
 * Responses are parsed one unit at a time: a VALUE header with its body,
 * or a single line. The body of a VALUE is again located by its declared
 * length, and only its terminator is checked.
 */
#include "proto_mc.h"

#include "util.h"

#include <string.h>

/* A token of the current line: buf[off..off+len). */
struct mc_tok {
    size_t off;
    size_t len;
};

/*
 * Argument rules, one letter per positional argument after the command:
 *   k  the key                 K  this and every following argument is a key
 *   f  flags (32-bit unsigned) e  exptime (32-bit signed)
 *   b  data length             c  cas unique (64-bit unsigned)
 *   n  must be "noreply"       x  anything: forwarded for the backend to judge
 * Arguments past the end of a rule string are unchecked (x), unless the
 * string ends in K.
 */
#define MC_ARGS_ANY 0xff

struct mc_kind_info {
    uint8_t min_args;  /* tokens after the command name */
    uint8_t max_args;  /* MC_ARGS_ANY: unbounded */
    const char *rules; /* see above */
    bool noreply;      /* a trailing "noreply" suppresses the reply */
    bool framed;       /* carries a data block: a bad line breaks framing */
};

// clang-format off
static const struct mc_kind_info mc_kinds[] = {
    [MC_KIND_RETRIEVAL] = { 1, MC_ARGS_ANY, "K", false, false },
    [MC_KIND_GAT]       = { 2, MC_ARGS_ANY, "xK", false, false },
    [MC_KIND_STORAGE]   = { 4, 5, "kfebn", true, true },
    [MC_KIND_CAS]       = { 5, 6, "kfebcn", true, true },
    /* memcached accepts "delete k 0"; other second arguments get its own
     * usage error, so they are the backend's to reject. */
    [MC_KIND_DELETE]    = { 1, 3, "kxx", true, false },
    /* delta and exptime go unvalidated, as twemproxy does: memcached's own
     * CLIENT_ERROR text then reaches the client byte for byte. */
    [MC_KIND_ARITH]     = { 2, 3, "kxx", true, false },
    [MC_KIND_TOUCH]     = { 2, 3, "kxx", true, false },
    [MC_KIND_VERSION]   = { 0, MC_ARGS_ANY, "", false, false },
    [MC_KIND_QUIT]      = { 0, MC_ARGS_ANY, "", false, false },
    [MC_KIND_STATS]     = { 0, MC_ARGS_ANY, "", false, false },
    [MC_KIND_FLUSH]     = { 0, 2, "xx", true, false },
    [MC_KIND_VERBOSITY] = { 1, 2, "xx", true, false },
};
// clang-format on

struct mc_cmd_info {
    const char *name;
    size_t name_len;
    enum mc_kind kind;
};

#define MC_CMD_INFO(e, s, k) [e] = { s, sizeof(s) - 1, k },
static const struct mc_cmd_info mc_cmds[] = { MC_CMD_LIST(MC_CMD_INFO) };
#undef MC_CMD_INFO

static const char *const mc_err_replies[] = {
    [MC_ERR_NONE] = "",
    [MC_ERR_UNKNOWN_CMD] = "ERROR\r\n",
    [MC_ERR_ARITY] = "ERROR\r\n",
    [MC_ERR_KEY_TOO_LONG] = "CLIENT_ERROR bad command line format\r\n",
    [MC_ERR_BAD_FORMAT] = "CLIENT_ERROR bad command line format\r\n",
    [MC_ERR_BAD_CHUNK] = "CLIENT_ERROR bad data chunk\r\n",
    [MC_ERR_TOO_LARGE] = "SERVER_ERROR object too large for cache\r\n",
};

/*
 * The bounded kinds never have more than this many tokens (cas: command and
 * six arguments); only those kinds need tokens by position.
 */
#define MC_SAVED_TOKENS 8

/* memcached reads a length into an int and adds 2 for the terminator. */
#define MC_MAX_DATA_LEN (INT32_MAX - 2)

/* First byte of every memcached binary-protocol request. */
#define MC_BINARY_MAGIC 0x80

static const char mc_noreply[] = "noreply";

static bool
mc_tok_is(const uint8_t *buf, const struct mc_tok *t, const char *lit, size_t lit_len)
{
    return t->len == lit_len && memcmp(buf + t->off, lit, lit_len) == 0;
}

static bool
mc_tok_is_noreply(const uint8_t *buf, const struct mc_tok *t)
{
    return mc_tok_is(buf, t, mc_noreply, sizeof(mc_noreply) - 1);
}

/*
 * Find the line at the front of buf. On MC_PARSE_OK, *line_len counts the
 * '\n' and *end is where the content stops (before a '\r' that precedes the
 * '\n'). Only the first max bytes are searched, so the answer for a prefix
 * of max bytes or more never changes as more bytes arrive.
 */
static enum mc_parse
mc_find_line(const uint8_t *buf, size_t len, size_t max, size_t *line_len, size_t *end)
{
    const uint8_t *nl = memchr(buf, '\n', MIN(len, max));
    size_t e;

    if (nl == NULL) {
        return len >= max ? MC_PARSE_ERROR : MC_PARSE_AGAIN;
    }
    e = (size_t)(nl - buf);
    *line_len = e + 1;
    if (e > 0 && buf[e - 1] == '\r') {
        e--;
    }
    *end = e;
    return MC_PARSE_OK;
}

/* Next run of non-space bytes in buf[*pos..end); false when none is left. */
static bool
mc_next_tok(const uint8_t *buf, size_t end, size_t *pos, struct mc_tok *t)
{
    size_t p = *pos;
    const uint8_t *sp;

    while (p < end && buf[p] == ' ') {
        p++;
    }
    if (p == end) {
        *pos = p;
        return false;
    }
    sp = memchr(buf + p, ' ', end - p);
    t->off = p;
    *pos = sp != NULL ? (size_t)(sp - buf) : end;
    t->len = *pos - p;
    return true;
}

static enum mc_cmd
mc_lookup(const uint8_t *buf, const struct mc_tok *t)
{
    for (size_t i = 0; i < ARRAY_SIZE(mc_cmds); i++) {
        if (mc_tok_is(buf, t, mc_cmds[i].name, mc_cmds[i].name_len)) {
            return (enum mc_cmd)i;
        }
    }
    return MC_CMD_COUNT;
}

static char
mc_arg_rule(const struct mc_kind_info *ki, size_t arg)
{
    size_t n = strlen(ki->rules);

    if (arg < n) {
        return ki->rules[arg];
    }
    return n > 0 && ki->rules[n - 1] == 'K' ? 'K' : 'x';
}

static int
mc_parse_u64_tok(const uint8_t *buf, const struct mc_tok *t, uint64_t max, uint64_t *out)
{
    return util_parse_u64((const char *)buf + t->off, t->len, max, out);
}

/*
 * Strict decimal for exptime: an optional '-' and digits within int32.
 * memcached's strtol would also take '+' or a tab; nobody sends those, and
 * refusing them keeps what we accept a subset of what memcached accepts.
 */
static bool
mc_tok_is_i32(const uint8_t *buf, const struct mc_tok *t)
{
    struct mc_tok digits = *t;
    uint64_t max = INT32_MAX, v;

    if (digits.len > 0 && buf[digits.off] == '-') {
        digits.off++;
        digits.len--;
        max = (uint64_t)INT32_MAX + 1;
    }
    return mc_parse_u64_tok(buf, &digits, max, &v) == 0;
}

/*
 * Check one argument against its rule letter; a data length is stored in
 * *data_len. False means a malformed line.
 */
static bool
mc_check_arg(const uint8_t *buf, const struct mc_tok *t, char rule, uint64_t *data_len)
{
    uint64_t v;

    switch (rule) {
    case 'f':
        return mc_parse_u64_tok(buf, t, UINT32_MAX, &v) == 0;
    case 'e':
        return mc_tok_is_i32(buf, t);
    case 'b':
        return mc_parse_u64_tok(buf, t, MC_MAX_DATA_LEN, data_len) == 0;
    case 'c':
        return mc_parse_u64_tok(buf, t, UINT64_MAX, &v) == 0;
    case 'n':
        return mc_tok_is_noreply(buf, t);
    default:
        return true; /* keys are checked on their own, x is free */
    }
}

static enum mc_parse
mc_req_fail(struct mc_req *req, enum mc_req_error err)
{
    req->err = err;
    return MC_PARSE_ERROR;
}

/*
 * Everything known about a request line once it has been tokenized: the
 * first tokens by position, the last two, and the key span.
 */
struct mc_line {
    struct mc_tok tok[MC_SAVED_TOKENS];
    struct mc_tok last; /* last token */
    struct mc_tok prev; /* the one before it */
    size_t ntok;        /* command included */
    size_t max_key_len;
};

/*
 * Tokenize the arguments of a known command, recording key positions in
 * req as they go by. The command token is ln->tok[0] already.
 */
static void
mc_scan_args(const uint8_t *buf, size_t end, size_t pos, const struct mc_kind_info *ki,
             struct mc_line *ln, struct mc_req *req)
{
    struct mc_tok t;

    while (mc_next_tok(buf, end, &pos, &t)) {
        size_t arg = ln->ntok - 1;
        char rule = mc_arg_rule(ki, arg);

        if (ln->ntok < MC_SAVED_TOKENS) {
            ln->tok[ln->ntok] = t;
        }
        if (rule == 'k' || rule == 'K') {
            if (req->nkeys == 0) {
                req->keys_off = t.off;
            }
            req->keys_end = t.off + t.len;
            req->nkeys++;
            ln->max_key_len = MAX(ln->max_key_len, t.len);
        }
        ln->prev = ln->last;
        ln->last = t;
        ln->ntok++;
    }
}

enum mc_parse
mc_parse_req_skip(const uint8_t *buf, size_t len, uint64_t max_request_size, uint64_t skipped,
                  struct mc_req *req)
{
    const struct mc_kind_info *ki;
    struct mc_line ln;
    size_t end, pos = 0, nargs;
    uint64_t data_len = 0, total;
    enum mc_parse r;

    memset(req, 0, sizeof(*req));
    req->cmd = MC_CMD_COUNT;

    /*
     * A binary-protocol client waits for a 24-byte header reply and may never
     * send a '\n'; tell it at once instead of buffering up to the line limit.
     */
    if (len > 0 && buf[0] == MC_BINARY_MAGIC) {
        return mc_req_fail(req, MC_ERR_BAD_FORMAT);
    }
    r = mc_find_line(buf, len, MC_MAX_LINE_LEN, &req->line_len, &end);
    if (r == MC_PARSE_AGAIN) {
        return r;
    }
    if (r == MC_PARSE_ERROR) {
        return mc_req_fail(req, MC_ERR_BAD_FORMAT);
    }
    req->total_len = req->line_len;

    /*
     * memcached stops at a NUL (it strlen()s the line), so "get a\0b" would
     * reach it as "get a" and its reply would not match the key we routed.
     */
    if (memchr(buf, '\0', end) != NULL) {
        return mc_req_fail(req, MC_ERR_BAD_FORMAT);
    }

    memset(&ln, 0, sizeof(ln));
    if (!mc_next_tok(buf, end, &pos, &ln.tok[0])) {
        return mc_req_fail(req, MC_ERR_UNKNOWN_CMD);
    }
    req->cmd = mc_lookup(buf, &ln.tok[0]);
    if (req->cmd == MC_CMD_COUNT) {
        return mc_req_fail(req, MC_ERR_UNKNOWN_CMD);
    }
    ki = &mc_kinds[mc_cmds[req->cmd].kind];
    ln.last = ln.tok[0];
    ln.ntok = 1;
    mc_scan_args(buf, end, pos, ki, &ln, req);

    /*
     * A storage line of the wrong shape cannot be sized, so its body would be
     * read as commands (memcached does exactly that after its ERROR): close.
     */
    nargs = ln.ntok - 1;
    if (nargs < ki->min_args || (ki->max_args != MC_ARGS_ANY && nargs > ki->max_args)) {
        return mc_req_fail(req, ki->framed ? MC_ERR_BAD_FORMAT : MC_ERR_ARITY);
    }
    if (ln.max_key_len > MC_MAX_KEY_LEN) {
        return mc_req_fail(req, MC_ERR_KEY_TOO_LONG);
    }
    for (size_t i = 1; i < ln.ntok && i < MC_SAVED_TOKENS; i++) {
        if (!mc_check_arg(buf, &ln.tok[i], mc_arg_rule(ki, i - 1), &data_len)) {
            return mc_req_fail(req, MC_ERR_BAD_FORMAT);
        }
    }

    /* A command without a key (flush_all, verbosity) may carry noreply as
       its first argument; one with a key only after the key. */
    size_t first_opt = ki->rules[0] == 'k' || ki->rules[0] == 'K' ? 2 : 1;
    if (ki->noreply && nargs >= first_opt && mc_tok_is_noreply(buf, &ln.last)) {
        /* ln.prev is an argument, not the key or the command, from then on. */
        if (ln.ntok - 2 >= first_opt && mc_tok_is_noreply(buf, &ln.prev)) {
            return mc_req_fail(req, MC_ERR_BAD_FORMAT);
        }
        req->noreply_off = ln.prev.off + ln.prev.len;
        req->noreply_len = ln.last.off + ln.last.len - req->noreply_off;
    }

    total = req->line_len;
    if (ki->framed) {
        req->data_off = req->line_len;
        req->data_len = (size_t)data_len;
        total += data_len + 2;
    }
    if (total > max_request_size) {
        return mc_req_fail(req, MC_ERR_TOO_LARGE);
    }
    if (skipped > data_len) {
        return mc_req_fail(req, MC_ERR_BAD_CHUNK); /* only a caller's mistake gets here */
    }
    req->total_len = (size_t)(total - skipped);
    if (len < req->total_len) {
        return MC_PARSE_AGAIN;
    }
    if (ki->framed && (buf[req->total_len - 2] != '\r' || buf[req->total_len - 1] != '\n')) {
        return mc_req_fail(req, MC_ERR_BAD_CHUNK);
    }
    return MC_PARSE_OK;
}

const char *
mc_error_reply(enum mc_req_error err)
{
    if ((size_t)err >= ARRAY_SIZE(mc_err_replies)) {
        return "";
    }
    return mc_err_replies[err];
}

bool
mc_error_closes(enum mc_req_error err)
{
    switch (err) {
    case MC_ERR_KEY_TOO_LONG:
    case MC_ERR_BAD_FORMAT:
    case MC_ERR_BAD_CHUNK:
    case MC_ERR_TOO_LARGE:
        return true;
    default:
        return false;
    }
}

const char *
mc_cmd_name(enum mc_cmd cmd)
{
    if ((size_t)cmd >= ARRAY_SIZE(mc_cmds)) {
        return "unknown";
    }
    return mc_cmds[cmd].name;
}

bool
mc_cmd_has_noreply(enum mc_cmd cmd)
{
    return mc_kinds[mc_cmds[cmd].kind].noreply;
}

bool
mc_next_key(const uint8_t *line, size_t end, size_t *pos, size_t *koff, size_t *klen)
{
    struct mc_tok t;

    if (!mc_next_tok(line, end, pos, &t)) {
        return false;
    }
    *koff = t.off;
    *klen = t.len;
    return true;
}

/*
 * "VALUE key flags bytes [cas]": the header of one item in a get reply.
 * Anything else after VALUE means the server is not speaking memcached.
 */
static enum mc_parse
mc_parse_value(const uint8_t *buf, size_t len, size_t line_len, size_t end, size_t pos,
               uint64_t skipped, struct mc_rsp *rsp)
{
    struct mc_tok key, num[3];
    size_t n = 0;
    uint64_t flags, bytes, cas;

    if (!mc_next_tok(buf, end, &pos, &key) || key.len > MC_MAX_KEY_LEN) {
        return MC_PARSE_ERROR;
    }
    while (n < ARRAY_SIZE(num) && mc_next_tok(buf, end, &pos, &num[n])) {
        n++;
    }
    if (n < 2 || mc_next_tok(buf, end, &pos, &key)) {
        return MC_PARSE_ERROR;
    }
    if (mc_parse_u64_tok(buf, &num[0], UINT32_MAX, &flags) != 0 ||
        mc_parse_u64_tok(buf, &num[1], INT32_MAX, &bytes) != 0 ||
        (n == 3 && mc_parse_u64_tok(buf, &num[2], UINT64_MAX, &cas) != 0) || skipped > bytes) {
        return MC_PARSE_ERROR;
    }
    rsp->type = MC_RSP_VALUE;
    rsp->key_off = key.off;
    rsp->key_len = key.len;
    rsp->len = line_len + (size_t)(bytes - skipped) + 2;
    if (len < rsp->len) {
        return MC_PARSE_AGAIN;
    }
    if (buf[rsp->len - 2] != '\r' || buf[rsp->len - 1] != '\n') {
        return MC_PARSE_ERROR;
    }
    return MC_PARSE_OK;
}

static bool
mc_has_prefix(const uint8_t *buf, size_t end, const char *lit)
{
    size_t n = strlen(lit);

    return end >= n && memcmp(buf, lit, n) == 0;
}

enum mc_parse
mc_parse_rsp_skip(const uint8_t *buf, size_t len, uint64_t skipped, struct mc_rsp *rsp)
{
    struct mc_tok first, extra;
    size_t line_len, end, pos = 0;
    enum mc_parse r;

    memset(rsp, 0, sizeof(*rsp));
    r = mc_find_line(buf, len, MC_MAX_RSP_LINE_LEN, &line_len, &end);
    if (r != MC_PARSE_OK) {
        return r;
    }
    /* memcached never sends an empty line; pairing one with a request would
     * silently shift every later reply. */
    if (!mc_next_tok(buf, end, &pos, &first)) {
        return MC_PARSE_ERROR;
    }
    if (mc_tok_is(buf, &first, "VALUE", 5)) {
        return mc_parse_value(buf, len, line_len, end, pos, skipped, rsp);
    }
    rsp->len = line_len;
    if (mc_tok_is(buf, &first, "END", 3) && !mc_next_tok(buf, end, &pos, &extra)) {
        rsp->type = MC_RSP_END;
    } else if (mc_has_prefix(buf, end, "ERROR") || mc_has_prefix(buf, end, "CLIENT_ERROR") ||
               mc_has_prefix(buf, end, "SERVER_ERROR")) {
        rsp->type = MC_RSP_ERROR;
    } else {
        rsp->type = MC_RSP_LINE;
    }
    return MC_PARSE_OK;
}

/* A line that is exactly lit (then "\r\n" or "\n"). */
static bool
mc_line_is(const uint8_t *buf, const struct mc_rsp *rsp, const char *lit)
{
    size_t n = strlen(lit), end = rsp->len - 1;

    if (end > 0 && buf[end - 1] == '\r') {
        end--;
    }
    return end == n && memcmp(buf, lit, n) == 0;
}

static bool
mc_line_is_number(const uint8_t *buf, const struct mc_rsp *rsp)
{
    size_t end = rsp->len - 1;
    uint64_t v;

    if (end > 0 && buf[end - 1] == '\r') {
        end--;
    }
    return util_parse_u64((const char *)buf, end, UINT64_MAX, &v) == 0;
}

bool
mc_rsp_fits(enum mc_cmd cmd, const uint8_t *buf, const struct mc_rsp *rsp)
{
    enum mc_kind kind = mc_cmd_kind(cmd);
    bool retrieval = mc_cmd_is_retrieval(cmd);

    if (rsp->type == MC_RSP_ERROR) {
        return true; /* ERROR, CLIENT_ERROR and SERVER_ERROR answer anything */
    }
    if (rsp->type == MC_RSP_VALUE || rsp->type == MC_RSP_END || retrieval) {
        /* (a VALUE is judged by its header alone: its block may not be here) */
        return retrieval && rsp->type != MC_RSP_LINE;
    }
    switch (kind) {
    case MC_KIND_STORAGE:
        return mc_line_is(buf, rsp, "STORED") || mc_line_is(buf, rsp, "NOT_STORED") ||
               mc_line_is(buf, rsp, "EXISTS") || mc_line_is(buf, rsp, "NOT_FOUND");
    case MC_KIND_CAS:
        return mc_line_is(buf, rsp, "STORED") || mc_line_is(buf, rsp, "EXISTS") ||
               mc_line_is(buf, rsp, "NOT_FOUND");
    case MC_KIND_DELETE:
        return mc_line_is(buf, rsp, "DELETED") || mc_line_is(buf, rsp, "NOT_FOUND");
    case MC_KIND_ARITH:
        return mc_line_is_number(buf, rsp) || mc_line_is(buf, rsp, "NOT_FOUND");
    case MC_KIND_TOUCH:
        return mc_line_is(buf, rsp, "TOUCHED") || mc_line_is(buf, rsp, "NOT_FOUND");
    case MC_KIND_VERSION:
        return rsp->type == MC_RSP_LINE && rsp->len > 8 && memcmp(buf, "VERSION ", 8) == 0;
    case MC_KIND_FLUSH:
        return mc_line_is(buf, rsp, "OK");
    case MC_KIND_QUIT:
    default:
        return false; /* quit, stats and verbosity are never sent */
    }
}
