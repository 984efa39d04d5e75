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
redis_reply_next_elem(const struct msg *fr, size_t *cursor, size_t *off, size_t *len)
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
    redis_rsp_init(&e);
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
redis_reply_merge_array(struct msg *p)
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
        if (!redis_reply_next_elem(fr, &cursor, &off, &len)) {
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
        redis_rsp_init(&rsp);
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

int
redis_reply_merge(struct msg *p)
{
    msg_rsp_reset(p);
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (buf_len(&fr->rsp) > 0 && buf_head(&fr->rsp)[0] == '-') {
            /* a backend error in any part is the reply of the whole */
            return redis_reply_take_all(p, fr);
        }
    }
    switch ((enum msg_merge)p->merge) {
    case MSG_MERGE_ARRAY:
        return redis_reply_merge_array(p);
    case MSG_MERGE_SUM:
        return redis_reply_merge_sum(p);
    case MSG_MERGE_ALL_OK:
        return redis_reply_merge_all_ok(p);
    default:
        return -EINVAL;
    }
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
