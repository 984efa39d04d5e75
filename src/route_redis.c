/*
 * route_redis: the Redis protocol's runtime half (see route_redis.h).
 *
 * A request is parsed once (proto_redis), its arguments recorded as the
 * parse passes them, and its command's table row says what happens next:
 * forwarded as framed to the server of its key (or of "placeholder"),
 * split per server (the merge is redis_reply.c's), sent to every server
 * (redis_local.c), or answered here by the row's handler. Inline requests are encoded as multibulk first, so the
 * backend sees exactly the arguments we routed on.
 *
 * New backend conns first get AUTH redis_auth and then SELECT redis_db (in
 * that order: the reverse would SELECT before being allowed to). Their
 * replies are checked and swallowed; an error fails the conn.
 */
#include "route_redis.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "conf.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "pool.h"
#include "proto_redis.h"
#include "redis_local.h"
#include "redis_reply.h"
#include "route.h"
#include "server.h"

/* Arguments a request keeps without allocating. */
#define ROUTE_REDIS_ARGS 32

static const uint8_t route_redis_placeholder[] = "placeholder";

/* A client's parse state while a request is incomplete. */
struct route_redis_state {
    struct redis_req req;
    struct redis_arg *heap; /* room for more arguments, kept across requests */
    uint32_t heap_cap;
    struct redis_arg args[ROUTE_REDIS_ARGS];
};

static void
route_redis_state_init(void *state)
{
    struct route_redis_state *st = state;

    redis_req_init(&st->req, st->args, ROUTE_REDIS_ARGS);
    st->heap = NULL;
    st->heap_cap = 0;
}

static void
route_redis_state_reset(void *state)
{
    struct route_redis_state *st = state;

    redis_req_reset(&st->req);
}

static void
route_redis_state_free(void *state)
{
    struct route_redis_state *st = state;

    free(st->heap);
    st->heap = NULL;
    st->heap_cap = 0;
}

/* Parse with room for every argument: grown when a request has more. */
static enum redis_parse
route_redis_parse(struct route_redis_state *st, struct redis_req *r, const uint8_t *buf, size_t len,
                  uint64_t max)
{
    enum redis_parse rc;

    while ((rc = redis_parse_req(r, buf, len, max)) == REDIS_PARSE_ARGS) {
        if (r->argc > st->heap_cap) {
            struct redis_arg *h = realloc(st->heap, sizeof(*h) * r->argc);
            if (h == NULL) {
                return REDIS_PARSE_ERROR; /* err stays NONE: out of memory */
            }
            st->heap = h;
            st->heap_cap = r->argc;
        }
        r->args = st->heap;
        r->args_cap = st->heap_cap;
    }
    return rc;
}

static void
route_redis_local(struct client *c, const char *s)
{
    client_reply(c, s, strlen(s));
}

static void
route_redis_reply_bulk(struct client *c, const uint8_t *p, size_t len)
{
    struct msg *m = msg_get(&c->c.ctx->msgs);

    if (m == NULL || redis_reply_append_bulk(&m->rsp, p, len) != 0) {
        if (m != NULL) {
            msg_put(&c->c.ctx->msgs, m);
        }
        route_redis_local(c, "-ERR out of memory\r\n");
        return;
    }
    client_local_msg(c, m);
}

/* ---- the proxy's own answers (REDIS_ROUTE_LOCAL rows) ---- */

static void
route_redis_ping(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    if (r->argc == 2) {
        route_redis_reply_bulk(c, buf + r->args[1].off, r->args[1].len);
    } else {
        route_redis_local(c, "+PONG\r\n");
    }
}

static void
route_redis_echo(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    route_redis_reply_bulk(c, buf + r->args[1].off, r->args[1].len);
}

static void
route_redis_select(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    uint32_t want = c->pool->cp->redis_db;
    uint64_t db;

    if (util_parse_u64((const char *)buf + r->args[1].off, r->args[1].len, UINT32_MAX, &db) == 0 &&
        db == want) {
        route_redis_local(c, "+OK\r\n");
    } else {
        char line[96];
        snprintf(line, sizeof(line), "-ERR SELECT is not allowed: this pool serves db %u\r\n",
                 (unsigned)want);
        route_redis_local(c, line);
    }
}

typedef void (*route_redis_handler)(struct client *c, const struct redis_req *r,
                                    const uint8_t *buf);

static const route_redis_handler route_redis_handlers[] = {
    [REDIS_LOCAL_PING] = route_redis_ping,     [REDIS_LOCAL_ECHO] = route_redis_echo,
    [REDIS_LOCAL_SELECT] = route_redis_select, [REDIS_LOCAL_AUTH] = redis_local_auth,
    [REDIS_LOCAL_HELLO] = redis_local_hello,   [REDIS_LOCAL_CLIENT] = redis_local_client,
};

/* ---- splitting ---- */

/* A split command: its request and where its keys are. */
struct route_redis_split {
    struct client *c;
    const struct redis_req *r;
    const uint8_t *buf;
    uint32_t first, step;
};

static void
route_redis_split_key(void *arg, uint32_t i, const uint8_t **key, size_t *len)
{
    const struct route_redis_split *sp = arg;
    const struct redis_arg *a = &sp->r->args[sp->first + i * sp->step];

    *key = sp->buf + a->off;
    *len = a->len;
}

static int
route_redis_split_whole(void *arg, struct msg *m)
{
    const struct route_redis_split *sp = arg;

    return client_take(sp->c, m, sp->buf, 0, sp->r->total_len);
}

/* Append argument a as a bulk string; a large value's chunks move along. */
static int
route_redis_take_arg(const struct route_redis_split *sp, struct msg *fr, const struct redis_arg *a)
{
    uint64_t around = client_piece_bytes(sp->c, a->off, a->off + a->len);
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", a->len);

    if (buf_append(&fr->req, hdr, (size_t)n) != 0 ||
        client_take(sp->c, fr, sp->buf, a->off, a->off + a->len - (size_t)around) != 0 ||
        buf_append(&fr->req, "\r\n", 2) != 0) {
        return -1;
    }
    return 0;
}

/* Each fragment: the command name and its keys (with their values for MSET). */
static int
route_redis_split_fragments(void *arg, struct msg *m)
{
    const struct route_redis_split *sp = arg;
    const struct redis_req *r = sp->r;
    const struct redis_arg *name = &r->args[0];

    for (uint32_t f = 0; f < m->nfrags; f++) {
        struct msg *fr = m->frags[f];
        if (redis_reply_append_count(&fr->req, '*', 1 + (uint64_t)fr->nkeys * sp->step) != 0 ||
            redis_reply_append_bulk(&fr->req, sp->buf + name->off, name->len) != 0) {
            return -ENOMEM;
        }
    }
    for (uint32_t i = 0; i < m->nkeys; i++) {
        struct msg *fr = m->frags[m->key_frag[i]];
        for (uint32_t k = 0; k < sp->step; k++) {
            if (route_redis_take_arg(sp, fr, &r->args[sp->first + i * sp->step + k]) != 0) {
                return -ENOMEM;
            }
        }
    }
    return 0;
}

static const struct route_split_ops route_redis_split_ops = {
    .key = route_redis_split_key,
    .fragments = route_redis_split_fragments,
    .whole = route_redis_split_whole,
};

/* ---- serving a parsed request ---- */

/*
 * XREAD / XREADGROUP: the argument after STREAMS (0: none, and the backend
 * answers the syntax error), and whether BLOCK comes before it: a blocked
 * read would hold a server conn that other clients' requests share.
 */
static uint32_t
route_redis_streams_key(const struct redis_req *r, const uint8_t *buf, bool *blocking)
{
    *blocking = false;
    for (uint32_t i = 1; i + 1 < r->argc; i++) {
        if (redis_arg_is(r, buf, i, "block")) {
            *blocking = true;
        } else if (redis_arg_is(r, buf, i, "streams")) {
            return i + 1;
        }
    }
    return 0;
}

/* The argument a KEY row routes by, or NULL for the "placeholder" key;
   *blocking: an XREAD with BLOCK (refused). */
static const struct redis_arg *
route_redis_key(const struct redis_cmd *cmd, const struct redis_req *r, const uint8_t *buf,
                bool *blocking)
{
    *blocking = false;
    if (cmd->flags & REDIS_CMD_STREAMS) {
        uint32_t k = route_redis_streams_key(r, buf, blocking);
        return k > 0 ? &r->args[k] : NULL;
    }
    if (cmd->numkeys_arg > 0) {
        /* EVAL: the first key follows numkeys; none goes to "placeholder" */
        const struct redis_arg *n = &r->args[cmd->numkeys_arg];
        uint64_t numkeys = 0;
        if (util_parse_u64((const char *)buf + n->off, n->len, UINT32_MAX, &numkeys) == 0 &&
            numkeys > 0 && r->argc > (uint32_t)cmd->numkeys_arg + 1) {
            return &r->args[cmd->numkeys_arg + 1];
        }
        return NULL;
    }
    return cmd->first_key > 0 ? &r->args[cmd->first_key] : NULL;
}

static void
route_redis_forward(struct client *c, struct msg *m, const struct redis_req *r, const uint8_t *buf,
                    const struct redis_arg *key)
{
    if (client_take(c, m, buf, 0, r->total_len) != 0) {
        client_fail_msg(c->c.ctx, m, ENOMEM);
        return;
    }
    if (key == NULL) {
        route_forward(c, m, route_redis_placeholder, sizeof(route_redis_placeholder) - 1);
    } else {
        route_forward(c, m, buf + key->off, key->len);
    }
}

/* Serve a whole multibulk request. Returns false when c stopped reading. */
static bool
route_redis_serve(struct client *c, const uint8_t *buf, const struct redis_req *r)
{
    const struct redis_cmd *cmd = r->cmd;
    struct conn_ctx *ctx = c->c.ctx;

    if (c->pool->cp->redis_auth != NULL && !c->authed && !(cmd->flags & REDIS_CMD_NOAUTH)) {
        route_redis_local(c, "-NOAUTH Authentication required.\r\n");
        return true;
    }
    if (CONF_DENIED(c->pool->cp, redis_cmd_index(cmd))) {
        char line[96];
        snprintf(line, sizeof(line), "-ERR command '%s' is disabled on this pool\r\n", cmd->name);
        route_redis_local(c, line);
        return true;
    }
    bool blocking = false;
    const struct redis_arg *key = route_redis_key(cmd, r, buf, &blocking);
    if (blocking) {
        char line[96];
        snprintf(line, sizeof(line), "-ERR unsupported command '%s' with BLOCK\r\n", cmd->name);
        route_redis_local(c, line);
        return true;
    }
    if (cmd->route == REDIS_ROUTE_LOCAL) {
        if (cmd->flags & REDIS_CMD_CLOSES) {
            client_reply_and_drain(c, "+OK\r\n", 5, STATS_CC_quit);
            return false;
        }
        route_redis_handlers[cmd->local](c, r, buf);
        return true;
    }

    struct msg *m = msg_get(&ctx->msgs);
    if (m == NULL) {
        client_reply_and_drain(c, "-ERR out of memory\r\n", 20, STATS_CC_out_of_memory);
        return false;
    }
    m->cmd = redis_cmd_index(cmd);
    m->start_usec = util_mono_usec();
    stats_add(&ctx->wst->requests, 1);
    client_enqueue(c, m);
    if (cmd->route == REDIS_ROUTE_FANOUT) {
        redis_local_fanout(c, m, r, buf);
        return true;
    }
    if (cmd->route == REDIS_ROUTE_SPLIT && c->pool->nservers > 1) {
        struct route_redis_split sp = { c, r, buf, cmd->first_key, cmd->key_step };
        m->merge = cmd->merge;
        route_split(c, m, (r->argc - cmd->first_key) / cmd->key_step, &route_redis_split_ops, &sp);
        return true;
    }
    route_redis_forward(c, m, r, buf, key);
    return true;
}

/* An inline request's arguments may be quoted: serve its multibulk form. */
static bool
route_redis_inline(struct client *c, struct route_redis_state *st, const uint8_t *buf,
                   const struct redis_req *r)
{
    struct buf *mb = &c->c.ctx->scratch;
    struct redis_req req;

    buf_reset(mb);
    if (buf_reserve(mb, redis_inline_encoded_max(r)) != 0) {
        route_redis_local(c, "-ERR out of memory\r\n");
        return true;
    }
    mb->end = redis_inline_encode(r, buf, mb->data);
    redis_req_init(&req, st->heap != NULL ? st->heap : st->args,
                   st->heap != NULL ? st->heap_cap : ROUTE_REDIS_ARGS);
    /* the line was checked against max_request_size; its encoding is longer */
    if (route_redis_parse(st, &req, mb->data, mb->end, UINT64_MAX) != REDIS_PARSE_OK) {
        route_redis_local(c, "-ERR out of memory\r\n");
        return true;
    }
    return route_redis_serve(c, mb->data, &req);
}

static ssize_t
route_redis_request(struct client *c, void *state, const uint8_t *buf, size_t len)
{
    struct route_redis_state *st = state;
    struct redis_req *r = &st->req;
    char reply[REDIS_ERR_REPLY_MAX];

    switch (route_redis_parse(st, r, buf, len, c->c.ctx->max_request_size)) {
    case REDIS_PARSE_AGAIN:
        return 0;
    case REDIS_PARSE_OK:
        break;
    default:
        if (r->err == REDIS_ERR_NONE) {
            client_reply_and_drain(c, "-ERR out of memory\r\n", 20, STATS_CC_out_of_memory);
            return -1;
        }
        if (r->err == REDIS_ERR_EMPTY) {
            return (ssize_t)r->total_len; /* skipped silently, as Redis does */
        }
        size_t n = redis_error_reply(r, buf, reply, sizeof(reply));
        if (redis_error_closes(r->err)) {
            client_reply_and_drain(c, reply, n,
                                   r->err == REDIS_ERR_TOO_LARGE ? STATS_CC_too_large
                                                                 : STATS_CC_protocol_error);
            return -1;
        }
        client_reply(c, reply, n);
        return (ssize_t)r->total_len;
    }
    bool go_on = r->is_inline ? route_redis_inline(c, st, buf, r) : route_redis_serve(c, buf, r);
    if (c->held) {
        return 0; /* served again once every earlier request is answered */
    }
    return go_on ? (ssize_t)r->total_len : -1;
}

/* A body still to come may be read around the buffer unless the request
   is routed by it (a key) or answered here from it (redis_cmd_streams). */
static uint64_t
route_redis_body_left(struct client *c, void *state, const uint8_t *buf, size_t len)
{
    struct route_redis_state *st = state;
    const struct redis_req *r = &st->req;
    uint32_t arg = 0;
    uint64_t left = redis_req_body_left(r, len, &arg);

    (void)c;
    if (left == 0 || arg == 0) {
        return 0; /* the name is looked up in the buffer */
    }
    return redis_cmd_streams(redis_cmd_lookup(buf + r->args[0].off, r->args[0].len), arg) ? left
                                                                                          : 0;
}

static void
route_redis_body_skip(void *state, uint64_t n)
{
    struct route_redis_state *st = state;

    redis_req_skip(&st->req, n);
}

/* ---- backend handshake ---- */

static int
route_redis_queue_handshake(struct server_conn *s, const char *cmd, const char *arg)
{
    struct msg *m = msg_get(&s->c.ctx->msgs);

    if (m == NULL) {
        return -ENOMEM;
    }
    m->handshake = true;
    if (redis_reply_append_count(&m->req, '*', 2) != 0 ||
        redis_reply_append_bulk(&m->req, cmd, strlen(cmd)) != 0 ||
        redis_reply_append_bulk(&m->req, arg, strlen(arg)) != 0) {
        msg_put(&s->c.ctx->msgs, m);
        return -ENOMEM;
    }
    server_enqueue(s, m, true);
    return 0;
}

/* AUTH, then HELLO 3 for a RESP3 set, then SELECT. */
static int
route_redis_open(struct server_conn *s, bool resp3)
{
    const struct conf_pool *cp = s->pool->cp;
    int rc = 0;

    /* Inserted at the head, so queue them last to first. */
    if (cp->redis_db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%u", (unsigned)cp->redis_db);
        rc = route_redis_queue_handshake(s, "SELECT", db);
    }
    if (rc == 0 && resp3) {
        rc = route_redis_queue_handshake(s, "HELLO", "3");
    }
    if (rc == 0 && cp->redis_auth != NULL) {
        rc = route_redis_queue_handshake(s, "AUTH", cp->redis_auth);
    }
    return rc;
}

static int
route_redis_server_open(struct server_conn *s)
{
    return route_redis_open(s, false);
}

static int
route_redis_server_open3(struct server_conn *s)
{
    return route_redis_open(s, true);
}

static int
route_redis_handshake_reply(struct server_conn *s, const struct msg *m)
{
    const uint8_t *p = buf_head(&m->rsp);
    size_t len = buf_len(&m->rsp);

    if (len > 0 && p[0] == '-') {
        int n = (int)MIN(len, 200);
        while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n')) {
            n--;
        }
        log_error("pool %s: server %s refused the handshake: %.*s", s->pool->cp->name,
                  s->server->cs->ident, n, (const char *)p);
        return -EACCES;
    }
    return 0;
}

static const struct proto_ops *const route_redis_sets[] = { &route_redis_proto,
                                                            &route_redis3_proto };

/* RESP2 and RESP3 share the requests and everything about them; each has
   its wire (how replies are parsed and built), its set of server conns and
   that set's handshake. */
#define ROUTE_REDIS_OPS(wire_, set_, label_, open_)                                            \
    {                                                                                          \
        .name = "redis", .wire = (wire_), .sets = route_redis_sets, .nsets = 2, .set = (set_), \
        .conn_label = (label_), .full_reply = "-ERR max number of clients reached\r\n",        \
        .req_state_size = sizeof(struct route_redis_state), .request = route_redis_request,    \
        .req_body_left = route_redis_body_left, .req_body_skip = route_redis_body_skip,        \
        .req_state_init = route_redis_state_init, .req_state_reset = route_redis_state_reset,  \
        .req_state_free = route_redis_state_free, .server_open = (open_),                      \
        .handshake_reply = route_redis_handshake_reply, .replied = redis_local_replied,        \
    }

const struct proto_ops route_redis_proto =
    ROUTE_REDIS_OPS(&redis_wire, 0, "resp2", route_redis_server_open);

/* RESP3, after HELLO 3: replies parsed (and built) as RESP3, on server
   conns opened with HELLO 3. */
const struct proto_ops route_redis3_proto =
    ROUTE_REDIS_OPS(&redis3_wire, 1, "resp3", route_redis_server_open3);
