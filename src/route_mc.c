/*
 * route_mc: the memcached protocol's runtime half (see route_mc.h): parse a
 * client's request (proto_mc), answer errors and quit, and send the rest.
 *
 * A retrieval whose keys all live on one server is forwarded whole. One
 * whose keys span servers becomes a parent msg (holding the original line,
 * for the merge to walk its keys) and one fragment per server
 * ("get k1 k4\r\n"); the merge is mc_reply.c's.
 *
 * flush_all goes to every server (route_fanout) and is OK only when all
 * said OK. stats and verbosity are answered here: stats from the counters
 * of every worker (relaxed loads), hits counted from the VALUEs the
 * backends answered (route_mc_replied).
 *
 * Toward the backend noreply is stripped and the reply swallowed, so an
 * error the backend sends anyway can never shift replies onto other
 * requests.
 */
#include "route_mc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "conn.h"
#include "mc_reply.h"
#include "msg.h"
#include "pool.h"
#include "proto_mc.h"
#include "route.h"

static const uint8_t route_mc_placeholder[] = "placeholder";

/* A multi-get being split: its line, and a cursor over its keys. */
struct route_mc_split {
    const uint8_t *line;
    const struct mc_req *req;
    size_t pos;
};

static void
route_mc_split_key(void *arg, uint32_t i, const uint8_t **key, size_t *len)
{
    struct route_mc_split *sp = arg;
    size_t off = 0, klen = 0;

    (void)i;
    (void)mc_next_key(sp->line, sp->req->keys_end, &sp->pos, &off, &klen);
    *key = sp->line + off;
    *len = klen;
}

static int
route_mc_split_whole(void *arg, struct msg *m)
{
    const struct route_mc_split *sp = arg;

    return buf_append(&m->req, sp->line, sp->req->total_len);
}

static int
route_mc_split_fragments(void *arg, struct msg *m)
{
    const struct route_mc_split *sp = arg;
    const struct mc_req *req = sp->req;
    size_t pos = req->keys_off, koff, klen;
    uint32_t i = 0;

    /* The command and, for gat/gats, the exptime precede the keys. */
    for (uint32_t f = 0; f < m->nfrags; f++) {
        if (buf_append(&m->frags[f]->req, sp->line, req->keys_off - 1) != 0) {
            return -ENOMEM;
        }
    }
    while (mc_next_key(sp->line, req->keys_end, &pos, &koff, &klen)) {
        struct msg *fr = m->frags[m->key_frag[i++]];
        if (buf_append(&fr->req, " ", 1) != 0 || buf_append(&fr->req, sp->line + koff, klen) != 0) {
            return -ENOMEM;
        }
    }
    for (uint32_t f = 0; f < m->nfrags; f++) {
        if (buf_append(&m->frags[f]->req, "\r\n", 2) != 0) {
            return -ENOMEM;
        }
    }
    /* The parent keeps the original line to walk its keys in the merge. */
    m->keys_off = req->keys_off;
    m->keys_end = req->keys_end;
    return buf_append(&m->req, sp->line, req->line_len) != 0 ? -ENOMEM : 0;
}

static const struct route_split_ops route_mc_split_ops = {
    .key = route_mc_split_key,
    .fragments = route_mc_split_fragments,
    .whole = route_mc_split_whole,
};

/* Forward whole (a large value's chunks move along), noreply stripped
   (and its reply swallowed). */
static int
route_mc_copy(struct client *c, struct msg *m, const uint8_t *buf, const struct mc_req *req)
{
    if (req->noreply_len == 0) {
        return client_take(c, m, buf, 0, req->total_len);
    }
    m->swallow = true;
    if (client_take(c, m, buf, 0, req->noreply_off) != 0) {
        return -1;
    }
    return client_take(c, m, buf, req->noreply_off + req->noreply_len, req->total_len);
}

/* The sum of one worker counter over every worker. */
static uint64_t
route_mc_sum(const struct conn_ctx *ctx, size_t offset)
{
    uint64_t n = 0;

    for (int w = 0; w < ctx->nworkers; w++) {
        n += stats_get((const _Atomic uint64_t *)((const char *)&ctx->all_wst[w] + offset));
    }
    return n;
}

static uint64_t
route_mc_pool_sum(const struct pool *p, enum stats_pool_field f)
{
    uint64_t n = 0;

    for (int w = 0; w < p->ctx->nworkers; w++) {
        n += stats_get(&p->reg->st[w].f[f]);
    }
    return n;
}

/* stats: memcached's format, about the proxy and the client's pool. */
static void
route_mc_stats(struct client *c, struct msg *m)
{
    const struct conn_ctx *ctx = c->c.ctx;
    const struct pool *p = c->pool;
    uint64_t get = route_mc_sum(ctx, offsetof(struct stats_worker, cmd_get));
    uint64_t hits = route_mc_sum(ctx, offsetof(struct stats_worker, get_hits));
    char text[2048];
    int n = snprintf(
        text, sizeof(text),
        "STAT pid %d\r\nSTAT uptime %" PRIu64 "\r\nSTAT time %lld\r\nSTAT version %s\r\n"
        "STAT threads %d\r\nSTAT curr_connections %" PRIu64 "\r\nSTAT total_connections %" PRIu64
        "\r\nSTAT cmd_get %" PRIu64 "\r\nSTAT cmd_set %" PRIu64 "\r\nSTAT get_hits %" PRIu64
        "\r\nSTAT get_misses %" PRIu64 "\r\nSTAT pool %s\r\nSTAT pool_client_connections %" PRIu64
        "\r\nSTAT pool_forward_error %" PRIu64 "\r\nSTAT pool_server_ejects %" PRIu64
        "\r\nSTAT pool_fragments %" PRIu64 "\r\nSTAT pool_servers %zu\r\nEND\r\n",
        (int)getpid(), (util_mono_msec() - ctx->start_ms) / 1000, (long long)time(NULL),
        PACKAGE_VERSION, ctx->nworkers, route_mc_sum(ctx, offsetof(struct stats_worker, clients)),
        route_mc_sum(ctx, offsetof(struct stats_worker, total_connections)), get,
        route_mc_sum(ctx, offsetof(struct stats_worker, cmd_set)), hits, get - MIN(hits, get),
        p->cp->name, route_mc_pool_sum(p, STATS_P_client_connections),
        route_mc_pool_sum(p, STATS_P_forward_error), route_mc_pool_sum(p, STATS_P_server_ejects),
        route_mc_pool_sum(p, STATS_P_fragments), p->nservers);

    m->local = true;
    if (buf_append(&m->rsp, text, (size_t)MIN((size_t)n, sizeof(text) - 1)) != 0) {
        client_fail_msg(c->c.ctx, m, ENOMEM);
        return;
    }
    client_deliver(c->c.ctx, m);
}

/* A flush_all fragment: the line as it came, noreply stripped. */
struct route_mc_fan {
    const uint8_t *buf;
    const struct mc_req *req;
};

static int
route_mc_build_flush(void *arg, struct msg *fr, uint32_t server)
{
    const struct route_mc_fan *fan = arg;
    const struct mc_req *req = fan->req;

    (void)server;
    if (req->noreply_len == 0) {
        return buf_append(&fr->req, fan->buf, req->total_len) != 0 ? -1 : 0;
    }
    if (buf_append(&fr->req, fan->buf, req->noreply_off) != 0 ||
        buf_append(&fr->req, fan->buf + req->noreply_off + req->noreply_len,
                   req->total_len - req->noreply_off - req->noreply_len) != 0) {
        return -1;
    }
    return 0;
}

/* Whether line[from..len) holds anything but spaces and the line's end. */
static bool
route_mc_has_args(const uint8_t *line, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\r' && line[i] != '\n') {
            return true;
        }
    }
    return false;
}

/* stats, verbosity and flush_all. Returns false for any other command. */
static bool
route_mc_pool_cmd(struct client *c, struct msg *m, const uint8_t *buf, const struct mc_req *req)
{
    switch (mc_cmd_kind(req->cmd)) {
    case MC_KIND_STATS:
        if (route_mc_has_args(buf, 5, req->line_len)) {
            /* an argument: no partial STAT list a client could take for the
               whole; one line it reads as an error */
            static const char e[] = "CLIENT_ERROR stats with an argument is not supported\r\n";
            m->local = true;
            if (buf_append(&m->rsp, e, sizeof(e) - 1) != 0) {
                client_fail_msg(c->c.ctx, m, ENOMEM);
                return true;
            }
            client_deliver(c->c.ctx, m);
            return true;
        }
        route_mc_stats(c, m);
        return true;
    case MC_KIND_VERBOSITY:
        m->local = true;
        m->swallow = req->noreply_len > 0;
        if (buf_append(&m->rsp, "OK\r\n", 4) != 0) {
            client_fail_msg(c->c.ctx, m, ENOMEM);
            return true;
        }
        client_deliver(c->c.ctx, m);
        return true;
    case MC_KIND_FLUSH: {
        struct route_mc_fan fan = { buf, req };
        m->merge = MSG_MERGE_ALL_OK;
        m->swallow = req->noreply_len > 0;
        route_fanout(c, m, 0, (uint32_t)c->pool->nservers, route_mc_build_flush, &fan);
        return true;
    }
    default:
        return false;
    }
}

static void
route_mc_serve(struct client *c, const uint8_t *buf, const struct mc_req *req)
{
    struct conn_ctx *ctx = c->c.ctx;
    struct msg *m = msg_get(&ctx->msgs);

    if (m == NULL) {
        client_reply_and_drain(c, "SERVER_ERROR out of memory\r\n", 28, STATS_CC_out_of_memory);
        return;
    }
    m->cmd = (uint16_t)req->cmd;
    m->start_usec = util_mono_usec();
    stats_add(&ctx->wst->requests, 1);
    client_enqueue(c, m);
    if (route_mc_pool_cmd(c, m, buf, req)) {
        return;
    }
    if (mc_cmd_is_retrieval(req->cmd)) {
        stats_add(&ctx->wst->cmd_get, req->nkeys);
    } else if (mc_cmd_kind(req->cmd) == MC_KIND_STORAGE || req->cmd == MC_CAS) {
        stats_add(&ctx->wst->cmd_set, 1);
    }

    if (req->cmd == MC_VERSION) {
        if (buf_append(&m->req, "version\r\n", 9) != 0) {
            client_fail_msg(ctx, m, ENOMEM);
            return;
        }
        route_forward(c, m, route_mc_placeholder, sizeof(route_mc_placeholder) - 1);
        return;
    }
    if (mc_cmd_is_retrieval(req->cmd) && req->nkeys > 1 && c->pool->nservers > 1) {
        struct route_mc_split sp = { buf, req, req->keys_off };
        m->merge = MSG_MERGE_VALUES;
        route_split(c, m, req->nkeys, &route_mc_split_ops, &sp);
        return;
    }
    if (route_mc_copy(c, m, buf, req) != 0) {
        client_fail_msg(ctx, m, ENOMEM);
        return;
    }
    size_t pos = req->keys_off, koff = 0, klen = 0;
    (void)mc_next_key(buf, req->keys_end, &pos, &koff, &klen);
    route_forward(c, m, buf + koff, klen);
}

static ssize_t
route_mc_request(struct client *c, void *state, const uint8_t *buf, size_t len)
{
    struct mc_req req;

    (void)state; /* the parser is restartable: it needs none */
    switch (mc_parse_req_skip(buf, len, c->c.ctx->max_request_size, c->in->holes.bytes, &req)) {
    case MC_PARSE_AGAIN:
        return 0;
    case MC_PARSE_ERROR: {
        const char *reply = mc_error_reply(req.err);
        if (mc_error_closes(req.err)) {
            client_reply_and_drain(c, reply, strlen(reply),
                                   req.err == MC_ERR_TOO_LARGE ? STATS_CC_too_large
                                                               : STATS_CC_protocol_error);
            return -1;
        }
        client_reply(c, reply, strlen(reply));
        return (ssize_t)req.line_len;
    }
    case MC_PARSE_OK:
        break;
    }
    if (req.cmd == MC_QUIT) {
        /* quit has no reply: the conn closes once earlier replies are written */
        client_reply_and_drain(c, "", 0, STATS_CC_quit);
        return -1;
    }
    if (CONF_DENIED(c->pool->cp, req.cmd)) {
        /* deny_commands; a noreply request gets no reply, even this one */
        static const char e[] = "CLIENT_ERROR command disabled\r\n";
        client_reply(c, e, req.noreply_len > 0 ? 0 : sizeof(e) - 1);
        return (ssize_t)req.total_len;
    }
    route_mc_serve(c, buf, &req);
    return (ssize_t)req.total_len;
}

/* A storage request's data block is never a key: what of it is still to
   come may be read around the buffer. */
static uint64_t
route_mc_body_left(struct client *c, void *state, const uint8_t *buf, size_t len)
{
    struct mc_req req;

    (void)state;
    if (mc_parse_req_skip(buf, len, c->c.ctx->max_request_size, c->in->holes.bytes, &req) !=
            MC_PARSE_AGAIN ||
        req.data_len == 0 || req.total_len < 2 || req.total_len - 2 <= len) {
        return 0;
    }
    return req.total_len - 2 - len; /* the block's bytes not here yet, its "\r\n" aside */
}

/* Hits: the VALUEs a retrieval's reply carries. Its units are VALUE
   blocks then END, or one error line: all but the last are VALUEs. Counted
   as the reader cut them, not by parsing the reply again. */
static void
route_mc_replied(struct server_conn *sc, const struct msg *m)
{
    if (mc_cmd_is_retrieval((enum mc_cmd)m->cmd) && msg_wants_reply(m) && m->rsp_units > 1) {
        stats_add(&sc->c.ctx->wst->get_hits, m->rsp_units - 1);
    }
}

const struct proto_ops route_mc_proto = {
    .name = "memcached",
    .wire = &mc_wire,
    .full_reply = "ERROR Too many open connections\r\n",
    .req_state_size = 0,
    .request = route_mc_request,
    .req_body_left = route_mc_body_left,
    .replied = route_mc_replied,
};
