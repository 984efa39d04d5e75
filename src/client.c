/*
 * client: client conns (see client.h and the lifecycle in conn.h).
 *
 * Reading. One read per readiness; the bytes go to a buffer borrowed from
 * the worker while they wait to be parsed, and the protocol's request()
 * parses and serves them one request at a time, with a parse state
 * borrowed likewise while a request is incomplete. An idle client holds
 * neither: its struct and its one event are all it costs.
 *
 * Backpressure. A client with CONN_CLIENT_MAX_INFLIGHT requests in flight
 * or CONN_CLIENT_MAX_PENDING_BYTES of unsent replies is THROTTLED: not
 * read, its buffered requests not parsed, until it is below half of both.
 * Separately, reply bytes held for it beyond the one being written are
 * bounded by client_output_limit: past it, a client that does not read is
 * closed rather than buffered for.
 *
 * Lifetimes. A msg on a client's queue belongs to the client until its
 * reply is written; a msg also queued at a server stays there until its
 * reply arrives or the server conn fails, even when its client has gone
 * (client == NULL): the FIFO pairing of replies needs every written
 * request. Whoever completes an orphan frees it (msg_release).
 */
#include "client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conf.h"
#include "gen.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "tls.h"

#define CLIENT_IOV_MAX 512
/* Lingering close: after an error reply that closes (a framing error, a
   request over max_request_size) the client may still be sending; closing
   with its bytes unread would reset the connection and could destroy the
   reply before it is read. So the write side is shut, and what the client
   still sends is read and dropped, for at most this long and this much. */
#define CLIENT_LINGER_MS 2000
#define CLIENT_LINGER_MAX_BYTES (64u * 1024 * 1024)

static void client_event(int fd, short what, void *arg);
static void client_hs_event(int fd, short what, void *arg);
static void client_parse(struct client *c);
static void client_refuse(struct conn_ctx *ctx, int fd, const char *reply);

static const char *
client_peer(const struct client *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    /* Looked up when logged, not kept: an idle client stays small. */
    if (c->c.fd < 0 || getpeername(c->c.fd, (struct sockaddr *)&ss, &sl) != 0) {
        return "?";
    }
    if (ss.ss_family == AF_UNIX) {
        snprintf(buf, len, "unix:%" PRIu64, c->c.id); /* its peer has no name */
        return buf;
    }
    return net_sa_str((struct sockaddr *)&ss, sl, buf, len);
}

/* ---- TLS handshakes (pools with tls = true) ---- */

/* Arm the ctx's handshake timer for the earliest deadline, if any. */
static void
client_hs_arm(struct conn_ctx *ctx)
{
    uint64_t next = 0;
    struct conn *c;

    TAILQ_FOREACH (c, &ctx->handshakes, dirty_tqe) {
        uint64_t d = tls_deadline(c->tls);
        next = next == 0 || d < next ? d : next;
    }
    if (next == 0) {
        evtimer_del(&ctx->hs_timer);
        return;
    }
    uint64_t now = util_mono_msec();
    struct timeval tv = util_ms_tv(next > now ? next - now : 0);
    evtimer_add(&ctx->hs_timer, &tv);
}

/* c's handshake is over, one way or the other. */
static void
client_hs_remove(struct client *c)
{
    struct conn_ctx *ctx = c->c.ctx;

    if (!c->c.handshaking) {
        return;
    }
    TAILQ_REMOVE(&ctx->handshakes, &c->c, dirty_tqe);
    ctx->nhandshakes--;
    c->c.handshaking = false;
}

/* A handshake failed: counted by reason, logged (rate-limited), closed. */
static void
client_hs_failed(struct client *c, enum stats_tls_fail why, const char *text)
{
    struct pool *p = c->pool;
    uint32_t dropped;

    stats_add(&p->st->tls.fail[why], 1);
    if (pool_tls_log_allowed(p, &dropped)) {
        char more[64] = "";
        if (dropped > 0) {
            snprintf(more, sizeof(more), "; %u more not logged before this", dropped);
        }
        char peer[64];
        log_notice("tls: pool %s: %s: %s (%s%s)", p->cp->name, client_peer(c, peer, sizeof(peer)),
                   text, stats_tls_fail_names[why], more);
    }
    client_close(c, STATS_CC_tls_handshake);
}

static void
client_hs_timeout(int fd, short what, void *arg)
{
    struct conn_ctx *ctx = arg;
    uint64_t now = util_mono_msec();
    struct conn *c, *next;
    char text[64];

    (void)fd;
    (void)what;
    for (c = TAILQ_FIRST(&ctx->handshakes); c != NULL; c = next) {
        next = TAILQ_NEXT(c, dirty_tqe);
        if (tls_deadline(c->tls) <= now) {
            snprintf(text, sizeof(text), "handshake not finished after %" PRIu64 " ms",
                     ctx->handshake_timeout_ms);
            client_hs_failed(conn_client(c), STATS_TLS_FAIL_timeout, text);
        }
    }
    client_hs_arm(ctx);
}

/* c starts its handshake: it counts towards tls_max_handshakes until done. */
static void
client_hs_add(struct client *c)
{
    struct conn_ctx *ctx = c->c.ctx;
    uint64_t deadline = util_mono_msec() + ctx->handshake_timeout_ms;

    if (!ctx->hs_timer_ready) {
        evtimer_assign(&ctx->hs_timer, ctx->base, client_hs_timeout, ctx);
        ctx->hs_timer_ready = true;
    }
    tls_set_deadline(c->c.tls, deadline);
    c->c.handshaking = true;
    TAILQ_INSERT_TAIL(&ctx->handshakes, &c->c, dirty_tqe);
    ctx->nhandshakes++;
    if (!evtimer_pending(&ctx->hs_timer, NULL)) {
        client_hs_arm(ctx);
    }
}

static void
client_handshake(struct client *c)
{
    struct tls_sock *t = c->c.tls;
    struct stats_tls *st = &c->pool->st->tls;
    int rc = tls_handshake(t, c->c.fd);

    if (rc == 0) {
        conn_watch(&c->c, EV_READ); /* and EV_WRITE while a flight waits */
        return;
    }
    client_hs_remove(c);
    if (rc < 0) {
        client_hs_failed(c, tls_fail_reason(t), tls_fail_text(t));
        return;
    }
    stats_add(&st->f[STATS_TLS_handshakes], 1);
    if (tls_resumed(t)) {
        stats_add(&st->f[STATS_TLS_resumed], 1);
    }
    c->c.tls_version = (uint8_t)(tls_version(t) == 13 ? STATS_TLS_v13 : STATS_TLS_v12);
    stats_add(&st->f[c->c.tls_version], 1);
    if (log_enabled(LOG_INFO)) {
        char peer[64];
        log_info("pool %s: TLS with client %s (conn %" PRIu64 "): TLSv1.%d%s%s", c->pool->cp->name,
                 client_peer(c, peer, sizeof(peer)), c->c.id, tls_version(t) == 13 ? 3 : 2,
                 tls_resumed(t) ? ", resumed" : "", tls_ktls(t) ? ", kTLS" : "");
    }
    if (tls_ktls(t)) {
        /* The kernel does the records: the data path is plain syscalls. */
        tls_sock_free(t, c->c.fd, false);
        c->c.tls = NULL;
    }
    /* Requests from now on: the ordinary callback. */
    conn_watch(&c->c, 0);
    conn_attach(&c->c, c->c.fd, client_event);
    conn_watch(&c->c, EV_READ);
}

static void
client_hs_event(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_handshake(arg);
}

void
client_accept(struct pool *p, int fd)
{
    struct conn_ctx *ctx = p->ctx;
    struct ssl_ctx_st *tctx = p->gp->tls.accept;
    struct tls_sock *t = NULL;
    struct client *c;

    /* The limit holds across workers: one shared count, changed only here
       and in client_close. */
    int64_t n = atomic_fetch_add_explicit(&p->reg->nclients, 1, memory_order_relaxed) + 1;
    if (p->cp->client_connections > 0 && n > (int64_t)p->cp->client_connections) {
        atomic_fetch_sub_explicit(&p->reg->nclients, 1, memory_order_relaxed);
        client_refuse(ctx, fd, tctx == NULL ? p->proto->full_reply : NULL);
        stats_add(&p->st->closed[STATS_CC_client_limit], 1);
        log_info("pool %s: client refused: client_connections limit %u reached", p->cp->name,
                 p->cp->client_connections);
        return;
    }
    if (!p->cp->listen.is_unix) {
        net_set_nodelay(fd);
        if (p->cp->tcpkeepalive) {
            net_set_keepalive(fd);
        }
    }
    if ((tctx != NULL && (t = tls_sock_new(tctx, fd, true, NULL, false, NULL)) == NULL) ||
        (c = conn_client_get(ctx)) == NULL) {
        atomic_fetch_sub_explicit(&p->reg->nclients, 1, memory_order_relaxed);
        log_error("pool %s: out of memory accepting a client", p->cp->name);
        tls_sock_free(t, fd, false);
        close(fd);
        return;
    }
    memset(c, 0, sizeof(*c));
    c->c.ctx = ctx;
    c->c.kind = CONN_CLIENT;
    c->c.state = CONN_AWAITING;
    c->c.id = ctx->next_conn_id++;
    c->pool = p;
    TAILQ_INIT(&c->q);
    if (t == NULL) {
        conn_attach(&c->c, fd, client_event);
    } else {
        c->c.tls = t;
        conn_attach(&c->c, fd, client_hs_event);
        client_hs_add(c);
    }
    conn_watch(&c->c, EV_READ);
    TAILQ_INSERT_TAIL(&p->clients, c, pool_tqe);
    p->nclients++;
    stats_add(&p->st->f[STATS_P_client_connections], 1);
    stats_add(&ctx->wst->clients, 1);
    stats_add(&ctx->wst->curr_connections, 1);
    stats_add(&ctx->wst->total_connections, 1);
    if (log_enabled(LOG_INFO)) {
        char peer[64];
        log_info("accepted client %s on pool %s", client_peer(c, peer, sizeof(peer)), p->cp->name);
    }
}

static bool
client_over_limits(const struct client *c)
{
    return c->nq >= CONN_CLIENT_MAX_INFLIGHT || c->pending_bytes >= CONN_CLIENT_MAX_PENDING_BYTES;
}

static bool
client_under_half(const struct client *c)
{
    return c->nq < CONN_CLIENT_MAX_INFLIGHT / 2 &&
           c->pending_bytes < CONN_CLIENT_MAX_PENDING_BYTES / 2;
}

void
client_enqueue(struct client *c, struct msg *m)
{
    m->client = c;
    TAILQ_INSERT_TAIL(&c->q, m, c_tqe);
    c->nq++;
    if (c->c.state == CONN_AWAITING) {
        conn_set_state(&c->c, CONN_ACTIVE); /* its first request came */
    }
}

/*
 * Reply bytes c holds beyond the reply being written now: a client that
 * does not read lets them pile up (each of its requests in flight may bring
 * a large value), so past client_output_limit it is closed, as Redis does
 * with its client output buffer limit. Returns true when it was.
 */
static bool
client_check_output(struct client *c)
{
    const struct msg *head = TAILQ_FIRST(&c->q);
    size_t writing = head != NULL && head->done ? (size_t)msg_rsp_len(head) : 0;
    size_t held = c->pending_bytes - MIN(writing, c->pending_bytes);

    if (held <= c->c.ctx->client_output_limit) {
        return false;
    }
    char peer[64];
    log_notice("pool %s: closing client %s (conn %" PRIu64 "): %zu reply bytes unread, over "
               "client_output_limit %" PRIu64,
               c->pool->cp->name, client_peer(c, peer, sizeof(peer)), c->c.id, held,
               c->c.ctx->client_output_limit);
    client_close(c, STATS_CC_output_limit);
    return true;
}

/* A done reply joins c's unsent bytes and c is flushed at the end of the turn. */
static void
client_reply_ready(struct client *c, struct msg *m)
{
    c->pending_bytes += (size_t)msg_rsp_len(m);
    conn_mark_dirty(&c->c);
    (void)client_check_output(c);
}

int
client_take(struct client *c, struct msg *m, const uint8_t *buf, size_t from, size_t to)
{
    return chain_take(&m->req, &m->req_pieces, buf, &c->in->holes, from, to);
}

uint64_t
client_piece_bytes(const struct client *c, size_t from, size_t to)
{
    return chain_piece_bytes(&c->in->holes, from, to);
}

void
client_local_msg(struct client *c, struct msg *m)
{
    m->local = true;
    m->done = true;
    client_enqueue(c, m);
    client_reply_ready(c, m);
}

void
client_reply(struct client *c, const char *bytes, size_t len)
{
    struct msg *m = msg_get(&c->c.ctx->msgs);

    if (m == NULL || buf_append(&m->rsp, bytes, len) != 0) {
        if (m != NULL) {
            msg_put(&c->c.ctx->msgs, m);
        }
        client_close(c, STATS_CC_out_of_memory);
        return;
    }
    client_local_msg(c, m);
}

void
client_drain(struct client *c, enum stats_client_close why)
{
    if (c->c.state == CONN_DRAINING || c->c.state == CONN_CLOSED) {
        return;
    }
    conn_watch(&c->c, c->c.events & EV_WRITE);
    c->close_reason = (uint8_t)why;
    conn_set_state(&c->c, CONN_DRAINING);
}

void
client_reply_and_drain(struct client *c, const char *bytes, size_t len, enum stats_client_close why)
{
    client_reply(c, bytes, len);
    if (c->c.state == CONN_CLOSED) {
        return;
    }
    TAILQ_LAST(&c->q, msg_tqh)->close_after = true;
    /* What the client sent after this is never parsed. */
    if (c->in != NULL) {
        chain_in_reset(c->in);
    }
    client_drain(c, why);
}

void
client_deliver(struct conn_ctx *ctx, struct msg *m)
{
    m->done = true;
    if (m->parent != NULL) {
        struct msg *p = m->parent;
        if (++p->nfrags_done < p->nfrags) {
            return;
        }
        m = p;
        m->done = true;
        if (m->client != NULL) {
            reply_merge(client_proto(m->client)->wire, m);
        }
    }
    if (m->client == NULL) {
        msg_release(&ctx->msgs, m);
        return;
    }
    if (m->swallow) {
        msg_rsp_reset(m);
    }
    client_reply_ready(m->client, m);
}

void
client_fail_msg(struct conn_ctx *ctx, struct msg *m, int err)
{
    struct client *owner = m->parent != NULL ? m->parent->client : m->client;

    m->err = err != 0 ? err : EIO;
    if (owner != NULL) {
        msg_rsp_reset(m); /* units of a reply cut short */
        client_proto(owner)->wire->error_reply(&m->rsp, m->err);
    }
    client_deliver(ctx, m);
}

/* Give back what c borrowed for parsing, once nothing waits to be parsed. */
static void
client_release_parse(struct client *c)
{
    struct conn_ctx *ctx = c->c.ctx;

    if (c->in != NULL && !chain_in_empty(c->in)) {
        return;
    }
    if (c->in != NULL && c->in->state != NULL) {
        if (client_proto(c)->req_state_free != NULL) {
            client_proto(c)->req_state_free(c->in->state);
        }
        conn_state_put(ctx, c->in->state);
        c->in->state = NULL;
    }
    conn_give_back_buf(ctx, &c->in);
}

void
client_close(struct client *c, enum stats_client_close why)
{
    struct conn_ctx *ctx = c->c.ctx;
    struct pool *p = c->pool;
    struct msg *m;

    if (c->c.state == CONN_CLOSED) {
        return;
    }
    if (log_enabled(LOG_DEBUG)) {
        char peer[64];
        log_debug("closing client %s (conn %" PRIu64 ") on pool %s: %s",
                  client_peer(c, peer, sizeof(peer)), c->c.id, p->cp->name,
                  stats_client_close_descs[why]);
    }
    client_hs_remove(c);
    if (c->c.tls_version != 0) {
        stats_add(&p->st->tls.f[c->c.tls_version], -1);
    }
    stats_add(&p->st->closed[why], 1);
    if (why == STATS_CC_eof) {
        stats_add(&p->st->f[STATS_P_client_eof], 1);
    } else if (why == STATS_CC_error) {
        stats_add(&p->st->f[STATS_P_client_err], 1);
    }
    while ((m = TAILQ_FIRST(&c->q)) != NULL) {
        TAILQ_REMOVE(&c->q, m, c_tqe);
        c->nq--;
        bool done = m->done;
        m->client = NULL;
        if (done) {
            msg_release(&ctx->msgs, m);
        }
        /* else an orphan: released when its replies come */
    }
    if (c->named) {
        names_drop(&ctx->names, c->c.id);
        c->named = false;
    }
    TAILQ_REMOVE(&p->clients, c, pool_tqe);
    p->nclients--;
    atomic_fetch_sub_explicit(&p->reg->nclients, 1, memory_order_relaxed);
    stats_add(&p->st->f[STATS_P_client_connections], -1);
    stats_add(&ctx->wst->clients, -1);
    stats_add(&ctx->wst->curr_connections, -1);
    conn_close_fd(&c->c);
    if (c->in != NULL) {
        chain_in_reset(c->in);
    }
    client_release_parse(c);
    if (c->c.dirty) {
        TAILQ_REMOVE(&ctx->dirty_clients, &c->c, dirty_tqe);
        c->c.dirty = false;
    }
    conn_set_state(&c->c, CONN_CLOSED);
    /* Freed after the turn: events of this turn may still name it. */
    TAILQ_INSERT_TAIL(&ctx->closed, &c->c, dirty_tqe);
}

void
client_reap(struct conn_ctx *ctx)
{
    struct conn *c;

    while ((c = TAILQ_FIRST(&ctx->closed)) != NULL) {
        TAILQ_REMOVE(&ctx->closed, c, dirty_tqe);
        conn_client_put(ctx, conn_client(c));
    }
}

/* Parsing waits while over the backpressure limits, or held. */
static bool
client_may_parse(const struct client *c)
{
    return (c->c.state == CONN_ACTIVE || c->c.state == CONN_AWAITING ||
            c->c.state == CONN_DRAINING) &&
           c->in != NULL && chain_in_pending(c->in) && !client_over_limits(c) && !c->held;
}

void
client_hold(struct client *c)
{
    c->held = true;
}

/*
 * The request being parsed needs bytes that were read ahead into chunks: if
 * it is in a large body, those of the body become its piece; otherwise they
 * are copied into the buffer, a header's worth at a time (or as much as the
 * buffer holds, so a long line is not parsed again for every few bytes).
 * Returns 0, or -1 when c was closed (out of memory).
 */
static int
client_unspill(struct client *c)
{
    struct chain_in *in = c->in;
    uint64_t left = 0;

    if (client_proto(c)->req_body_left != NULL) {
        left = client_proto(c)->req_body_left(c, in->state, buf_head(&in->b), buf_len(&in->b));
    }
    if (left >= CHAIN_MIN_PIECE) {
        uint64_t got = chain_in_adopt(in, left);
        if (got > 0) {
            if (client_proto(c)->req_body_skip != NULL) {
                client_proto(c)->req_body_skip(in->state, got);
            }
            return 0;
        }
    }
    if (chain_in_unspill(in, MAX((size_t)CHAIN_HEAD_ROOM, buf_len(&in->b))) != 0) {
        client_close(c, STATS_CC_out_of_memory);
        return -1;
    }
    return 0;
}

/* The request being parsed is in a large body: read the rest of it into
   chunks (chain.h), unless the protocol keeps it in the buffer. */
static void
client_stream(struct client *c)
{
    struct chain_in *in = c->in;
    uint64_t left;

    if (client_proto(c)->req_body_left == NULL || in->left > 0) {
        return;
    }
    left = client_proto(c)->req_body_left(c, in->state, buf_head(&in->b), buf_len(&in->b));
    if (chain_in_wants_piece(in, left)) {
        chain_in_stream(in, left);
    }
}

/* The generic read loop: the protocol parses and serves one request per call. */
static void
client_parse(struct client *c)
{
    struct conn_ctx *ctx = c->c.ctx;

    while (client_may_parse(c)) {
        struct chain_in *in = c->in;
        if (buf_len(&in->b) == 0 && chain_in_unspill(in, CHAIN_HEAD_ROOM) != 0) {
            client_close(c, STATS_CC_out_of_memory);
            return;
        }
        if (in->state == NULL && client_proto(c)->req_state_size > 0) {
            if ((in->state = conn_state_get(ctx)) == NULL) {
                client_close(c, STATS_CC_out_of_memory);
                return;
            }
            client_proto(c)->req_state_init(in->state);
        }
        ssize_t n = client_proto(c)->request(c, in->state, buf_head(&in->b), buf_len(&in->b));
        if (n == 0 && c->held && c->c.state != CONN_CLOSED) {
            if (in->state != NULL) {
                client_proto(c)->req_state_reset(in->state); /* parsed again once released */
            }
            break;
        }
        if (n == 0 && c->c.state != CONN_CLOSED) {
            if (in->spill_bytes > 0) {
                if (client_unspill(c) != 0) {
                    return;
                }
                continue; /* more bytes for the parser, or its body's piece */
            }
            client_stream(c);
            break; /* incomplete */
        }
        if (n < 0 || c->c.state == CONN_CLOSED) {
            break; /* it stopped reading */
        }
        /* a client that sends large values reads ahead into chunks */
        c->bulky = in->npieces > 0;
        in->npieces = 0;
        chain_in_consume(in, (size_t)n); /* bodies nobody took go back */
        if (in->state != NULL) {
            client_proto(c)->req_state_reset(in->state); /* the next request starts afresh */
        }
    }
}

/* Draining and every reply written: nothing is left to do. */
static bool
client_finished(const struct client *c)
{
    return c->c.state == CONN_DRAINING && TAILQ_EMPTY(&c->q);
}

/* Parse what c has, then decide whether it stays open. */
static void
client_process(struct client *c, bool eof)
{
    client_parse(c);
    if (c->c.state == CONN_CLOSED) {
        return;
    }
    if (eof) {
        /* Answer what is complete, then close: a partial request never
           holds a conn open. */
        client_drain(c, STATS_CC_eof);
    }
    if (c->c.state == CONN_DRAINING && c->in != NULL && !client_over_limits(c) && !c->held) {
        chain_in_reset(c->in); /* only a partial request is left: it never completes */
    }
    if ((c->c.state == CONN_ACTIVE || c->c.state == CONN_AWAITING) &&
        (client_over_limits(c) || c->held)) {
        /* Buffered requests wait until replies drain (client_flush). */
        conn_set_state(&c->c, CONN_THROTTLED);
        conn_watch(&c->c, c->c.events & EV_WRITE);
        return;
    }
    client_release_parse(c);
    if (client_finished(c)) {
        client_close(c, (enum stats_client_close)c->close_reason);
    } else if (c->c.ctx->stopping || c->pool->retiring) {
        client_close_if_idle(c);
    }
}

static void
client_read(struct client *c)
{
    uint64_t body;
    ssize_t n = conn_read(&c->c, &c->in, &body, c->bulky);

    if (n == -EAGAIN) {
        return;
    }
    if (body > 0 && client_proto(c)->req_body_skip != NULL) {
        client_proto(c)->req_body_skip(c->in->state, body);
    }
    if (n < 0) {
        if (n == -EPROTO && c->c.tls != NULL && log_enabled(LOG_INFO)) {
            char peer[64];
            log_info("tls: pool %s: client %s: %s", c->pool->cp->name,
                     client_peer(c, peer, sizeof(peer)), tls_fail_text(c->c.tls));
        }
        client_close(c, n == -ENOMEM ? STATS_CC_out_of_memory : STATS_CC_error);
        return;
    }
    client_process(c, n == 0);
}

void
client_end_grace(struct client *c)
{
    if (c->c.state == CONN_AWAITING) {
        conn_set_state(&c->c, CONN_ACTIVE);
        client_close_if_idle(c);
    }
}

void
client_close_if_idle(struct client *c)
{
    if (c->c.handshaking) {
        /* Within the grace it may still finish and send its request;
           after it, it is not a client yet. */
        if (c->c.state != CONN_AWAITING) {
            client_close(c, c->c.ctx->stopping ? STATS_CC_stop : STATS_CC_pool_removed);
        }
        return;
    }
    if ((c->c.state != CONN_ACTIVE && c->c.state != CONN_AWAITING) || !TAILQ_EMPTY(&c->q) ||
        (c->in != NULL && !chain_in_empty(c->in))) {
        return; /* not at a request boundary yet */
    }
    if (c->c.state == CONN_AWAITING) {
        /* Connected, nothing sent yet: closing now would reset a client
           whose first request is on its way (client_end_grace bounds it). */
        return;
    }
    /* Closing with unread bytes would reset the conn and lose requests the
       client sent before we stopped: look once more. */
    uint64_t body; /* none: no request was partial */
    ssize_t n = conn_read(&c->c, &c->in, &body, false);
    if (n == -EAGAIN) {
        client_release_parse(c);
        client_close(c, c->c.ctx->stopping ? STATS_CC_stop : STATS_CC_pool_removed);
    } else if (n < 0) {
        client_close(c, STATS_CC_error);
    } else {
        client_process(c, n == 0);
    }
}

/* m's reply is written: its latency, per pool and per server. */
static void
client_observe(struct client *c, const struct msg *m, uint64_t now)
{
    uint64_t us = now > m->start_usec ? now - m->start_usec : 0;

    if (m->local || m->start_usec == 0) {
        return;
    }
    stats_hist_observe(&c->pool->st->hist, us);
    if (m->nfrags > 0) {
        for (uint32_t i = 0; i < m->nfrags; i++) {
            if (m->frags[i] != NULL && m->frags[i]->sst != NULL) {
                stats_hist_observe(&m->frags[i]->sst->hist, us);
            }
        }
    } else if (m->sst != NULL) {
        stats_hist_observe(&m->sst->hist, us);
    }
}

/* Write the done replies at the head of c's queue, in order. Returns 0,
   -ECONNABORTED once a reply that closes the conn is written, or -errno. */
static int
client_write(struct client *c)
{
    uint64_t now = util_mono_usec();
    struct iovec iov[CLIENT_IOV_MAX];
    size_t total, written;
    int n, rc;
    struct msg *m;

    for (;;) {
        n = 0;
        total = 0;
        TAILQ_FOREACH (m, &c->q, c_tqe) {
            size_t bytes;
            if (!m->done || n == CLIENT_IOV_MAX) {
                break;
            }
            n += chain_iov(&m->rsp, &m->rsp_pieces, m->rsp_sent, iov + n, CLIENT_IOV_MAX - n,
                           &bytes);
            total += bytes;
        }
        rc = conn_writev(&c->c, iov, n, &written);
        if (rc != 0) {
            return rc;
        }
        bool short_write = written < total;
        /* Free what was written, and done msgs with nothing to write. */
        while ((m = TAILQ_FIRST(&c->q)) != NULL && m->done) {
            uint64_t bytes = msg_rsp_len(m), left = bytes - m->rsp_sent;
            if (written < left) {
                m->rsp_sent += written;
                written = 0;
                break;
            }
            written -= (size_t)left;
            bool close_after = m->close_after;
            TAILQ_REMOVE(&c->q, m, c_tqe);
            c->nq--;
            c->pending_bytes -= MIN(c->pending_bytes, (size_t)bytes);
            client_observe(c, m, now);
            m->client = NULL;
            msg_release(&c->c.ctx->msgs, m);
            if (close_after) {
                return -ECONNABORTED; /* quit or a framing error: closes now */
            }
        }
        m = TAILQ_FIRST(&c->q);
        if (m == NULL) {
            c->held = false; /* every request is answered */
        }
        if (m == NULL || !m->done) {
            conn_watch(&c->c, c->c.events & EV_READ);
            return 0;
        }
        if (short_write) {
            /* The socket is full; wait for writability. */
            conn_watch(&c->c, c->c.events | EV_WRITE);
            return 0;
        }
    }
}

/* Lingering: read and drop what the client still sends, until its EOF,
   an error, the byte budget or the timer; then close. */
/* Read and drop what fd has, adding to *drained. Returns false while the
   socket has nothing more for now, true once lingering should end (EOF, an
   error or the byte budget). */
static bool
client_sink(int fd, size_t *drained)
{
    uint8_t sink[16384];

    for (;;) {
        ssize_t n = read(fd, sink, sizeof(sink));
        if (n > 0) {
            *drained += (size_t)n;
            if (*drained < CLIENT_LINGER_MAX_BYTES) {
                continue;
            }
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return false;
        } else if (n < 0 && errno == EINTR) {
            continue;
        }
        return true;
    }
}

static void
client_linger_event(int fd, short what, void *arg)
{
    struct client *c = arg;

    if ((what & EV_TIMEOUT) || client_sink(fd, &c->lingered)) {
        client_close(c, (enum stats_client_close)c->close_reason);
    }
}

static void
client_refused_event(int fd, short what, void *arg)
{
    struct conn_refused *r = arg;

    if ((what & EV_TIMEOUT) || client_sink(fd, &r->drained)) {
        conn_refused_end(r);
    }
}

/* Refuse fd at accept with reply (NULL: none, for a TLS client that could
   not read it), lingering as after an error that closes. */
static void
client_refuse(struct conn_ctx *ctx, int fd, const char *reply)
{
    struct timeval tv = util_ms_tv(CLIENT_LINGER_MS);
    struct conn_refused *r = NULL;

    if (reply == NULL || write(fd, reply, strlen(reply)) < 0 || shutdown(fd, SHUT_WR) != 0 ||
        (r = calloc(1, sizeof(*r))) == NULL) {
        close(fd);
        return;
    }
    event_assign(&r->ev, ctx->base, fd, EV_READ | EV_PERSIST, client_refused_event, r);
    if (event_add(&r->ev, &tv) != 0) {
        free(r);
        close(fd);
        return;
    }
    LIST_INSERT_HEAD(&ctx->refused, r, le);
}

/* c's last reply (an error that closes) is written: close, lingering when
   the client may still be sending (see CLIENT_LINGER_MS). */
static void
client_close_after_reply(struct client *c)
{
    enum stats_client_close why = (enum stats_client_close)c->close_reason;
    struct timeval tv = util_ms_tv(CLIENT_LINGER_MS);

    if ((why != STATS_CC_protocol_error && why != STATS_CC_too_large) ||
        shutdown(c->c.fd, SHUT_WR) != 0) {
        client_close(c, why);
        return;
    }
    conn_watch(&c->c, 0);
    c->lingered = 0;
    c->c.events = EV_READ; /* conn_close_fd removes the event */
    event_assign(&c->c.ev, c->c.ctx->base, c->c.fd, EV_READ | EV_PERSIST, client_linger_event, c);
    event_add(&c->c.ev, &tv);
}

void
client_flush(struct client *c)
{
    if (c->c.state == CONN_CLOSED) {
        return;
    }
    int rc = client_write(c);
    if (rc == -ECONNABORTED) {
        client_close_after_reply(c);
    } else if (rc < 0) {
        client_close(c, STATS_CC_error);
    } else if (c->c.state == CONN_THROTTLED && client_under_half(c) && !c->held) {
        conn_set_state(&c->c, CONN_ACTIVE);
        conn_watch(&c->c, c->c.events | EV_READ);
        client_process(c, false);
    } else if (c->c.state == CONN_DRAINING) {
        client_process(c, false);
    } else if (c->c.ctx->stopping || c->pool->retiring) {
        client_close_if_idle(c);
    }
}

static void
client_event(int fd, short what, void *arg)
{
    struct client *c = arg;

    (void)fd;
    if (what & EV_WRITE) {
        client_flush(c);
        if (c->c.state == CONN_CLOSED) {
            return;
        }
    }
    if (what & EV_READ) {
        client_read(c);
    }
}
