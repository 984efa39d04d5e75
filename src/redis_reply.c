/*
 * redis_reply: Redis replies as the proxy sees them (see redis_reply.h).
 * Every reply is one whole RESP value, however nested; the reply parser
 * (proto_redis) finds where it ends without recursion.
 */
#include "redis_reply.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "chain.h"
#include "msg.h"
#include "proto_redis.h"
#include "util.h"

_Static_assert(sizeof(struct redis_rsp) <= 128, "redis_rsp must fit a reply_reader");

/* A parser of the RESP version a client speaks. */
static void
redis_rsp_init_v(struct redis_rsp *r, bool resp3)
{
    if (resp3) {
        redis_rsp_init3(r);
    } else {
        redis_rsp_init(r);
    }
}

static enum proto_rc
redis_reply_step(void *state, const struct msg *m, const uint8_t *buf, size_t len, uint64_t skipped,
                 struct proto_step *out)
{
    struct redis_rsp *r = state; /* a zeroed one starts a new reply */

    (void)m;       /* any request gets any RESP value */
    (void)skipped; /* r was told of every skip (redis_rsp_skip) */
    switch (redis_parse_rsp(r, buf, len)) {
    case REDIS_PARSE_OK:
        out->len = r->total_len;
        out->done = true;
        return PROTO_OK;
    case REDIS_PARSE_AGAIN:
        out->min_len = redis_rsp_min_len(r);
        return PROTO_AGAIN;
    default:
        out->min_len = redis_rsp_min_len(r); /* what was declared before the bad byte */
        return PROTO_ERROR;
    }
}

/*
 * RESP3: a reply may be any RESP3 value. A push (">") is never the reply to
 * the request at the head: the proxy never asks for one (the commands that
 * make a connection push are refused), so one that comes anyway is taken
 * off the stream and dropped rather than given to whichever client waits.
 */
static enum proto_rc
redis_reply_step3(void *state, const struct msg *m, const uint8_t *buf, size_t len,
                  uint64_t skipped, struct proto_step *out)
{
    struct redis_rsp *r = state;

    r->resp3 = true; /* the reader zeroes the state for each reply */
    enum proto_rc rc = redis_reply_step(state, m, buf, len, skipped, out);
    if (rc == PROTO_OK && r->type == REDIS_RSP_PUSH) {
        out->done = false;
        out->drop = true;
    }
    return rc;
}

static uint64_t
redis_reply_body_left(void *state, const struct msg *m, const uint8_t *buf, size_t len,
                      uint64_t skipped)
{
    (void)m;
    (void)buf;
    (void)skipped;
    return redis_rsp_body_left(state, len);
}

static void
redis_reply_body_skip(void *state, uint64_t n)
{
    redis_rsp_skip(state, n);
}

void
redis_reply_error(struct buf *rsp, int err)
{
    char ebuf[128], line[192];
    int n = snprintf(line, sizeof(line), "-ERR %s\r\n", util_strerror(err, ebuf, sizeof(ebuf)));

    buf_reset(rsp);
    if (buf_append(rsp, line, (size_t)n) != 0) {
        buf_reset(rsp);
    }
}

int
redis_reply_append_bulk(struct buf *b, const void *p, size_t len)
{
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", len);

    if (buf_append(b, hdr, (size_t)n) != 0 || buf_append(b, p, len) != 0 ||
        buf_append(b, "\r\n", 2) != 0) {
        return -1;
    }
    return 0;
}

int
redis_reply_append_count(struct buf *b, char type, uint64_t n)
{
    char hdr[32];
    int len = snprintf(hdr, sizeof(hdr), "%c%" PRIu64 "\r\n", type, n);

    return buf_append(b, hdr, (size_t)len);
}

/*
 * The next top-level element of fragment fr's array reply at *cursor (0:
 * before the array's header): on true, buf[*off..*off+*len) with the body
 * read around the buffer, if any, standing in it. A piece stands inside
 * the body it belongs to, so the element is parsed up to the next piece
 * first, and told of that piece's bytes only if its body reaches it.
 */
static bool
redis_reply_next_elem(const struct msg *fr, bool resp3, size_t *cursor, size_t *off, size_t *len)
{
    const uint8_t *buf = buf_head(&fr->rsp);
    size_t n = buf_len(&fr->rsp), p = *cursor, stop;
    const struct chunk *piece;
    struct redis_rsp e;
    enum redis_parse rc;

    if (p == 0) {
        const uint8_t *nl;
        if (n == 0 || buf[0] != '*' || (nl = memchr(buf, '\n', n)) == NULL) {
            return false;
        }
        p = (size_t)(nl - buf) + 1;
    }
    if (p >= n) {
        return false;
    }
    piece = chain_next_piece(&fr->rsp_pieces, p);
    stop = piece != NULL ? piece->at : n;
    redis_rsp_init_v(&e, resp3);
    rc = redis_parse_rsp(&e, buf + p, stop - p);
    if (rc == REDIS_PARSE_AGAIN && piece != NULL && redis_rsp_body_left(&e, stop - p) > 0) {
        redis_rsp_skip(&e, piece->total);
        rc = redis_parse_rsp(&e, buf + p, n - p);
    }
    if (rc != REDIS_PARSE_OK) {
        return false;
    }
    *off = p;
    *len = e.total_len;
    *cursor = p + e.total_len;
    return true;
}

/* The whole of fr's reply, as the reply of the whole. */
static int
redis_reply_take_all(struct msg *p, struct msg *fr)
{
    return chain_take(&p->rsp, &p->rsp_pieces, buf_head(&fr->rsp), &fr->rsp_pieces, 0,
                      buf_len(&fr->rsp)) != 0
               ? -ENOMEM
               : 0;
}

/* MGET: the array of the keys' values, in request-key order; large values
   move by their chunks. */
static int
redis_reply_merge_array(struct msg *p, bool resp3)
{
    if (redis_reply_append_count(&p->rsp, '*', p->nkeys) != 0) {
        return -ENOMEM;
    }
    for (uint32_t f = 0; f < p->nfrags; f++) {
        p->frags[f]->rsp_sent = 0; /* the fragment's element cursor */
    }
    for (uint32_t i = 0; i < p->nkeys; i++) {
        struct msg *fr = p->frags[p->key_frag[i]];
        size_t cursor = (size_t)fr->rsp_sent, off, len;
        if (!redis_reply_next_elem(fr, resp3, &cursor, &off, &len)) {
            return -EINVAL; /* a part with fewer elements than its keys */
        }
        fr->rsp_sent = cursor;
        if (chain_take(&p->rsp, &p->rsp_pieces, buf_head(&fr->rsp), &fr->rsp_pieces, off,
                       off + len) != 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

/* DEL, EXISTS, UNLINK, TOUCH: the parts' counts added up. */
static int
redis_reply_merge_sum(struct msg *p)
{
    int64_t sum = 0;

    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        struct redis_rsp rsp;
        redis_rsp_init3(&rsp); /* an integer in either version */
        if (redis_parse_rsp(&rsp, buf_head(&fr->rsp), buf_len(&fr->rsp)) != REDIS_PARSE_OK ||
            rsp.type != REDIS_RSP_INTEGER) {
            return -EINVAL;
        }
        /* A sum that does not fit 64 bits has no RESP form: say so. */
        if (__builtin_add_overflow(sum, rsp.integer, &sum)) {
            return -ERANGE;
        }
    }
    char line[32];
    int n = snprintf(line, sizeof(line), ":%" PRId64 "\r\n", sum);
    return buf_append(&p->rsp, line, (size_t)n) != 0 ? -ENOMEM : 0;
}

/* MSET: +OK when every part said +OK, else the first other reply. */
static int
redis_reply_merge_all_ok(struct msg *p)
{
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (buf_len(&fr->rsp) != 5 || memcmp(buf_head(&fr->rsp), "+OK\r\n", 5) != 0) {
            return redis_reply_take_all(p, fr);
        }
    }
    return buf_append(&p->rsp, "+OK\r\n", 5) != 0 ? -ENOMEM : 0;
}

/* ---- fan-outs: one fragment per server (route_fanout) ---- */

/* fr's whole reply in one piece of memory: its bytes with the pieces
   standing in them copied in place (only for the small replies of the
   commands operators send, never on the data path). */
static int
redis_reply_flat(const struct msg *fr, struct buf *out)
{
    const uint8_t *b = buf_head(&fr->rsp);
    size_t n = buf_len(&fr->rsp), at = 0;

    buf_reset(out);
    for (const struct chunk *pc = fr->rsp_pieces.head; pc != NULL; pc = pc->next_piece) {
        if (buf_append(out, b + at, pc->at - at) != 0) {
            return -ENOMEM;
        }
        for (const struct chunk *ch = pc; ch != NULL; ch = ch->next) {
            if (buf_append(out, ch->data, ch->len) != 0) {
                return -ENOMEM;
            }
        }
        at = pc->at;
    }
    return buf_append(out, b + at, n - at) != 0 ? -ENOMEM : 0;
}

/* The header of an array reply: its count and the bytes of its "*n\r\n". */
static bool
redis_reply_array_head(const uint8_t *b, size_t n, int64_t *count, size_t *hdr)
{
    const uint8_t *nl;
    uint64_t v;

    if (n < 4 || b[0] != '*' || (nl = memchr(b, '\n', n)) == NULL || nl - b < 3 || nl[-1] != '\r' ||
        util_parse_u64((const char *)b + 1, (size_t)(nl - b) - 2, INT64_MAX, &v) != 0) {
        return false;
    }
    *count = (int64_t)v;
    *hdr = (size_t)(nl - b) + 1;
    return true;
}

/* KEYS: every part's array, joined into one (large parts move by chunks). */
static int
redis_reply_merge_concat(struct msg *p)
{
    uint64_t total = 0;

    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        int64_t cnt;
        size_t hdr;
        if (!redis_reply_array_head(buf_head(&fr->rsp), buf_len(&fr->rsp), &cnt, &hdr)) {
            return -EINVAL;
        }
        total += (uint64_t)cnt;
        fr->rsp_sent = hdr; /* where its elements start */
    }
    if (redis_reply_append_count(&p->rsp, '*', total) != 0) {
        return -ENOMEM;
    }
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (chain_take(&p->rsp, &p->rsp_pieces, buf_head(&fr->rsp), &fr->rsp_pieces,
                       (size_t)fr->rsp_sent, buf_len(&fr->rsp)) != 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

static int
redis_reply_text(struct msg *p, const char *s)
{
    return buf_append(&p->rsp, s, strlen(s)) != 0 ? -ENOMEM : 0;
}

/* SCRIPT LOAD: the reply when every server gave the same (the SHA1). */
static int
redis_reply_merge_same(struct msg *p)
{
    const struct msg *a = p->frags[0];

    for (uint32_t f = 1; f < p->nfrags; f++) {
        const struct msg *fr = p->frags[f];
        if (fr->rsp_pieces.head != NULL || a->rsp_pieces.head != NULL ||
            buf_len(&fr->rsp) != buf_len(&a->rsp) ||
            memcmp(buf_head(&fr->rsp), buf_head(&a->rsp), buf_len(&a->rsp)) != 0) {
            return redis_reply_text(p, "-ERR the servers of the pool answered differently\r\n");
        }
    }
    return redis_reply_take_all(p, p->frags[0]);
}

/* SCRIPT EXISTS: an array of 0/1 per script; 1 only where every part says 1. */
static int
redis_reply_merge_and(struct msg *p, bool resp3)
{
    const struct msg *a = p->frags[0];
    const uint8_t *b = buf_head(&a->rsp);
    size_t n = buf_len(&a->rsp), hdr;
    int64_t cnt;

    if (!redis_reply_array_head(b, n, &cnt, &hdr)) {
        return -EINVAL;
    }
    for (uint32_t f = 0; f < p->nfrags; f++) {
        p->frags[f]->rsp_sent = 0; /* element cursor */
    }
    if (redis_reply_append_count(&p->rsp, '*', (uint64_t)cnt) != 0) {
        return -ENOMEM;
    }
    for (int64_t i = 0; i < cnt; i++) {
        bool all = true;
        for (uint32_t f = 0; f < p->nfrags; f++) {
            struct msg *fr = p->frags[f];
            size_t cursor = (size_t)fr->rsp_sent, off, len;
            if (!redis_reply_next_elem(fr, resp3, &cursor, &off, &len)) {
                return -EINVAL;
            }
            fr->rsp_sent = cursor;
            if (len != 4 || memcmp(buf_head(&fr->rsp) + off, ":1\r\n", 4) != 0) {
                all = false;
            }
        }
        if (redis_reply_text(p, all ? ":1\r\n" : ":0\r\n") != 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

static bool
redis_reply_is_nil(const struct msg *fr)
{
    size_t n = buf_len(&fr->rsp);
    const uint8_t *b = buf_head(&fr->rsp);

    return (n == 5 && (memcmp(b, "$-1\r\n", 5) == 0 || memcmp(b, "*-1\r\n", 5) == 0)) ||
           (n == 3 && memcmp(b, "_\r\n", 3) == 0);
}

/* RANDOMKEY: the first part with a key, starting from a part picked by
   the request's id; nil when every server is empty. */
static int
redis_reply_merge_random(struct msg *p)
{
    uint32_t start = (uint32_t)(p->id % p->nfrags);

    for (uint32_t i = 0; i < p->nfrags; i++) {
        struct msg *fr = p->frags[(start + i) % p->nfrags];
        if (!redis_reply_is_nil(fr)) {
            return redis_reply_take_all(p, fr);
        }
    }
    return redis_reply_take_all(p, p->frags[start]);
}

int
redis_scan_cursor_decode(const uint8_t *s, size_t len, uint32_t nservers, uint32_t *server,
                         uint64_t *cursor)
{
    uint64_t v;

    if (nservers == 0 || util_parse_u64((const char *)s, len, UINT64_MAX, &v) != 0) {
        return -1;
    }
    *server = (uint32_t)(v % nservers);
    *cursor = v / nservers;
    return 0;
}

int
redis_scan_cursor_encode(uint64_t cursor, uint32_t server, uint32_t nservers, uint64_t *out)
{
    if (cursor == 0) {
        /* this server is done: the next one starts, or the scan ends */
        *out = server + 1 < nservers ? server + 1 : 0;
        return 0;
    }
    if (cursor > (UINT64_MAX - server) / nservers) {
        return -1;
    }
    *out = cursor * nservers + server;
    return 0;
}

/* SCAN: one server's page, with the cursor the client must send next. */
static int
redis_reply_merge_scan(struct msg *p, bool resp3)
{
    struct msg *fr = p->frags[0];
    size_t cursor = 0, off, len, eoff, elen;
    struct redis_rsp e;
    uint64_t sc, next;
    int64_t cnt;
    size_t hdr;

    if (!redis_reply_array_head(buf_head(&fr->rsp), buf_len(&fr->rsp), &cnt, &hdr) || cnt != 2 ||
        !redis_reply_next_elem(fr, resp3, &cursor, &off, &len) ||
        !redis_reply_next_elem(fr, resp3, &cursor, &eoff, &elen)) {
        return -EINVAL;
    }
    /* the cursor: a bulk string holding a number */
    redis_rsp_init_v(&e, resp3);
    const uint8_t *b = buf_head(&fr->rsp) + off;
    const uint8_t *nl = memchr(b, '\n', len);
    if (redis_parse_rsp(&e, b, len) != REDIS_PARSE_OK || e.type != REDIS_RSP_BULK || nl == NULL ||
        util_parse_u64((const char *)nl + 1, (size_t)e.integer, UINT64_MAX, &sc) != 0) {
        return -EINVAL;
    }
    if (redis_scan_cursor_encode(sc, p->fan_server, p->fan_nservers, &next) != 0) {
        return redis_reply_text(p, "-ERR the server's cursor is too large to encode\r\n");
    }
    char num[32];
    int n = snprintf(num, sizeof(num), "%" PRIu64, next);
    if (redis_reply_append_count(&p->rsp, '*', 2) != 0 ||
        redis_reply_append_bulk(&p->rsp, num, (size_t)n) != 0 ||
        chain_take(&p->rsp, &p->rsp_pieces, buf_head(&fr->rsp), &fr->rsp_pieces, eoff,
                   eoff + elen) != 0) {
        return -ENOMEM;
    }
    return 0;
}

/* "major.minor.patch" as one comparable number; 0 when it is not one. */
static uint64_t
redis_reply_version_num(const char *s, size_t len)
{
    uint64_t part[3] = { 0, 0, 0 };
    size_t i = 0, k = 0;

    for (; i < len && k < 3; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            part[k] = part[k] * 10 + (uint64_t)(s[i] - '0');
            if (part[k] > 0xffff) {
                return 0;
            }
        } else if (s[i] == '.') {
            k++;
        } else {
            return 0;
        }
    }
    return (part[0] << 32) | (part[1] << 16) | part[2];
}

/* The value of "name:" in an INFO text, or NULL. */
static const char *
redis_reply_info_field(const char *text, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);

    for (size_t at = 0; at < n;) {
        const char *eol = memchr(text + at, '\n', n - at);
        size_t end = eol != NULL ? (size_t)(eol - text) : n;
        if (end - at > nl && memcmp(text + at, name, nl) == 0 && text[at + nl] == ':') {
            size_t v = at + nl + 1, e = end;
            if (e > v && text[e - 1] == '\r') {
                e--;
            }
            *vlen = e - v;
            return text + v;
        }
        at = end + 1;
    }
    return NULL;
}

/* The text of a bulk reply held whole in b (flattened), or of a RESP3
   verbatim string (its "txt:" left out), or NULL. */
static const char *
redis_reply_bulk_body(const struct buf *b, size_t *len)
{
    const uint8_t *h = buf_head(b);
    size_t n = buf_len(b);
    const uint8_t *nl;
    uint64_t v;

    if (n < 4 || (h[0] != '$' && h[0] != '=') || (nl = memchr(h, '\n', n)) == NULL || nl - h < 3 ||
        util_parse_u64((const char *)h + 1, (size_t)(nl - h) - 2, UINT64_MAX, &v) != 0 ||
        (size_t)(nl - h) + 1 + v > n) {
        return NULL;
    }
    if (h[0] == '=') {
        if (v < 4) {
            return NULL;
        }
        *len = (size_t)v - 4;
        return (const char *)nl + 5;
    }
    *len = (size_t)v;
    return (const char *)nl + 1;
}

int
redis_reply_append_text(struct buf *b, const void *p, size_t len, bool resp3)
{
    if (!resp3) {
        return redis_reply_append_bulk(b, p, len);
    }
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "=%zu\r\ntxt:", len + 4);

    if (buf_append(b, hdr, (size_t)n) != 0 || buf_append(b, p, len) != 0 ||
        buf_append(b, "\r\n", 2) != 0) {
        return -1;
    }
    return 0;
}

#define REDIS_INFO_DBS 64 /* databases summed in INFO's keyspace */

struct redis_info_sum {
    char version[32]; /* the lowest redis_version of the parts */
    uint64_t version_num;
    uint64_t keys[REDIS_INFO_DBS], expires[REDIS_INFO_DBS], ttl_weighted[REDIS_INFO_DBS];
    bool has_db[REDIS_INFO_DBS];
};

/* Add one part's INFO text into sum. */
static void
redis_reply_info_add(struct redis_info_sum *sum, const char *t, size_t n)
{
    size_t vlen;
    const char *v = redis_reply_info_field(t, n, "redis_version", &vlen);

    if (v != NULL && vlen < sizeof(sum->version)) {
        uint64_t num = redis_reply_version_num(v, vlen);
        if (sum->version[0] == '\0' || num < sum->version_num) {
            memcpy(sum->version, v, vlen);
            sum->version[vlen] = '\0';
            sum->version_num = num;
        }
    }
    for (size_t at = 0; at < n;) {
        const char *eol = memchr(t + at, '\n', n - at);
        size_t end = eol != NULL ? (size_t)(eol - t) : n;
        unsigned db;
        unsigned long long k, e, ttl;
        char line[256];
        size_t l = MIN(end - at, sizeof(line) - 1);
        memcpy(line, t + at, l);
        line[l] = '\0';
        if (sscanf(line, "db%u:keys=%llu,expires=%llu,avg_ttl=%llu", &db, &k, &e, &ttl) == 4 &&
            db < REDIS_INFO_DBS) {
            sum->has_db[db] = true;
            sum->keys[db] += k;
            sum->expires[db] += e;
            sum->ttl_weighted[db] += ttl * e;
        }
        at = end + 1;
    }
}

/* Sum every part's INFO reply; -EINVAL when one is not a bulk string. */
static int
redis_reply_info_sum(struct msg *p, struct redis_info_sum *sum)
{
    struct buf flat = { 0 };
    int rc = 0;

    memset(sum, 0, sizeof(*sum));
    for (uint32_t f = 0; f < p->nfrags && rc == 0; f++) {
        const char *t;
        size_t n;
        if ((rc = redis_reply_flat(p->frags[f], &flat)) != 0) {
            break;
        }
        if ((t = redis_reply_bulk_body(&flat, &n)) == NULL) {
            rc = -EINVAL;
            break;
        }
        redis_reply_info_add(sum, t, n);
    }
    buf_free(&flat);
    return rc;
}

/* Append text to b; -ENOMEM when out of memory. */
static int
redis_reply_put(struct buf *b, const char *s, size_t n)
{
    return buf_append(b, s, n) != 0 ? -ENOMEM : 0;
}

/* INFO: the sections the proxy wrote (p->req), the lowest redis_version
   put first in its server section, and the keyspace summed. */
static int
redis_reply_merge_info(struct msg *p, bool resp3)
{
    struct redis_info_sum sum;
    struct buf out = { 0 };
    const char *local = (const char *)buf_head(&p->req);
    size_t llen = buf_len(&p->req);
    static const char server_hdr[] = "# Server\r\n";
    size_t hl = sizeof(server_hdr) - 1;
    char line[160];
    int rc = redis_reply_info_sum(p, &sum);

    if (rc == 0 && (p->fan_flags & MSG_INFO_SERVER) && llen >= hl &&
        memcmp(local, server_hdr, hl) == 0) {
        int n = snprintf(line, sizeof(line), "redis_version:%s\r\n", sum.version);
        rc = redis_reply_put(&out, server_hdr, hl);
        if (rc == 0) {
            rc = redis_reply_put(&out, line, (size_t)n);
        }
        local += hl;
        llen -= hl;
    }
    if (rc == 0) {
        rc = redis_reply_put(&out, local, llen);
    }
    if (rc == 0 && (p->fan_flags & MSG_INFO_KEYSPACE)) {
        if (buf_len(&out) > 0) {
            rc = redis_reply_put(&out, "\r\n", 2);
        }
        if (rc == 0) {
            rc = redis_reply_put(&out, "# Keyspace\r\n", 12);
        }
        for (unsigned db = 0; db < REDIS_INFO_DBS && rc == 0; db++) {
            if (!sum.has_db[db]) {
                continue;
            }
            uint64_t ttl = sum.expires[db] > 0 ? sum.ttl_weighted[db] / sum.expires[db] : 0;
            int n = snprintf(line, sizeof(line),
                             "db%u:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=%" PRIu64 "\r\n",
                             db, sum.keys[db], sum.expires[db], ttl);
            rc = redis_reply_put(&out, line, (size_t)n);
        }
    }
    if (rc == 0) {
        rc = redis_reply_append_text(&p->rsp, buf_head(&out), buf_len(&out), resp3) != 0 ? -ENOMEM
                                                                                         : 0;
    }
    buf_free(&out);
    return rc;
}

/* HELLO: Redis 7's reply, the version the lowest of the pool's servers
   (their INFO server), the id the proxy's (p->req). */
static int
redis_reply_merge_hello(struct msg *p, bool resp3)
{
    struct redis_info_sum sum;
    int rc = redis_reply_info_sum(p, &sum);

    if (rc != 0) {
        return rc;
    }
    return redis_hello_reply(&p->rsp, sum.version, buf_head(&p->req), buf_len(&p->req), resp3);
}

int
redis_hello_reply(struct buf *b, const char *version, const void *id, size_t idlen, bool resp3)
{
    /* RESP3: a map of 7 pairs; RESP2: the same as a flat array */
    if ((resp3 ? redis_reply_append_count(b, '%', 7) : redis_reply_append_count(b, '*', 14)) != 0 ||
        redis_reply_append_bulk(b, "server", 6) != 0 ||
        redis_reply_append_bulk(b, "redis", 5) != 0 ||
        redis_reply_append_bulk(b, "version", 7) != 0 ||
        redis_reply_append_bulk(b, version, strlen(version)) != 0 ||
        redis_reply_append_bulk(b, "proto", 5) != 0 ||
        buf_append(b, resp3 ? ":3\r\n" : ":2\r\n", 4) != 0 ||
        redis_reply_append_bulk(b, "id", 2) != 0 || buf_append(b, ":", 1) != 0 ||
        buf_append(b, id, idlen) != 0 || buf_append(b, "\r\n", 2) != 0 ||
        redis_reply_append_bulk(b, "mode", 4) != 0 ||
        redis_reply_append_bulk(b, "standalone", 10) != 0 ||
        redis_reply_append_bulk(b, "role", 4) != 0 ||
        redis_reply_append_bulk(b, "master", 6) != 0 ||
        redis_reply_append_bulk(b, "modules", 7) != 0 || buf_append(b, "*0\r\n", 4) != 0) {
        return -ENOMEM;
    }
    return 0;
}

int
redis_info_version(const uint8_t *rsp, size_t len, char *out, size_t outlen)
{
    struct buf b = { .data = (uint8_t *)rsp, .start = 0, .end = len, .cap = len };
    size_t n, vlen;
    const char *t = redis_reply_bulk_body(&b, &n);
    const char *v = t != NULL ? redis_reply_info_field(t, n, "redis_version", &vlen) : NULL;

    if (v == NULL || vlen >= outlen || redis_reply_version_num(v, vlen) == 0) {
        return -1;
    }
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return 0;
}

int
redis_version_cmp(const char *a, const char *b)
{
    uint64_t x = redis_reply_version_num(a, strlen(a)), y = redis_reply_version_num(b, strlen(b));

    return x < y ? -1 : x > y;
}

static int
redis_reply_merge_v(struct msg *p, bool resp3)
{
    msg_rsp_reset(p);
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (buf_len(&fr->rsp) > 0 &&
            (buf_head(&fr->rsp)[0] == '-' || buf_head(&fr->rsp)[0] == '!')) {
            /* a backend error in any part is the reply of the whole */
            return redis_reply_take_all(p, fr);
        }
    }
    switch ((enum msg_merge)p->merge) {
    case MSG_MERGE_ARRAY:
        return redis_reply_merge_array(p, resp3);
    case MSG_MERGE_SUM:
        return redis_reply_merge_sum(p);
    case MSG_MERGE_ALL_OK:
        return redis_reply_merge_all_ok(p);
    case MSG_MERGE_CONCAT:
        return redis_reply_merge_concat(p);
    case MSG_MERGE_SAME:
        return redis_reply_merge_same(p);
    case MSG_MERGE_AND:
        return redis_reply_merge_and(p, resp3);
    case MSG_MERGE_RANDOM:
        return redis_reply_merge_random(p);
    case MSG_MERGE_SCAN:
        return redis_reply_merge_scan(p, resp3);
    case MSG_MERGE_INFO:
        return redis_reply_merge_info(p, resp3);
    case MSG_MERGE_HELLO:
        return redis_reply_merge_hello(p, resp3);
    default:
        return -EINVAL;
    }
}

int
redis_reply_merge(struct msg *p)
{
    return redis_reply_merge_v(p, false);
}

int
redis_reply_merge3(struct msg *p)
{
    return redis_reply_merge_v(p, true);
}

const struct proto_wire redis_wire = {
    .id = PROTO_REDIS,
    .rsp_state_size = sizeof(struct redis_rsp),
    .reply_step = redis_reply_step,
    .reply_body_left = redis_reply_body_left,
    .reply_body_skip = redis_reply_body_skip,
    .error_reply = redis_reply_error,
    .merge = redis_reply_merge,
};

const struct proto_wire redis3_wire = {
    .id = PROTO_REDIS,
    .rsp_state_size = sizeof(struct redis_rsp),
    .reply_step = redis_reply_step3,
    .reply_body_left = redis_reply_body_left,
    .reply_body_skip = redis_reply_body_skip,
    .error_reply = redis_reply_error,
    .merge = redis_reply_merge3,
};
