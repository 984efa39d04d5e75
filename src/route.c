/*
 * route: the protocol-independent part of a request's way (see route.h).
 * Runs on the owning worker's thread only.
 *
 * Lifetimes: a msg on a client queue belongs to that client until it is
 * written; a msg on a server queue stays there until its reply arrives or
 * the server conn fails, even when its client has gone (client == NULL),
 * because the FIFO pairing of replies needs every written request. Whoever
 * completes an orphan frees it.
 */
#include "route.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "conf.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "net.h"
#include "pool.h"
#include "route_mc.h"
#include "route_redis.h"

static const struct route_proto *
route_proto_of(const struct pool *p)
{
    return p->cp->redis ? &route_redis_proto : &route_mc_proto;
}

void
route_client_enqueue(struct conn *c, struct msg *m)
{
    m->client = c;
    TAILQ_INSERT_TAIL(&c->q, m, c_tqe);
    c->nq++;
    c->got_request = true;
}

/*
 * Reply bytes c holds beyond the reply being written now: a client that
 * does not read lets them pile up (each of its 256 requests in flight may
 * bring a large value), so past client_output_limit it is closed, as Redis
 * does with its client output buffer limit. Returns true when it was.
 */
static bool
route_client_check_output(struct conn *c)
{
    const struct msg *head = TAILQ_FIRST(&c->q);
    size_t writing = head != NULL && head->done ? buf_len(&head->rsp) : 0;
    size_t held = c->pending_bytes - MIN(writing, c->pending_bytes);

    if (held <= c->ctx->client_output_limit) {
        return false;
    }
    log_notice("pool %s: closing client %s (conn %" PRIu64 "): %zu reply bytes unread, over "
               "client_output_limit %" PRIu64, c->pool->cp->name, c->peer, c->id, held,
               c->ctx->client_output_limit);
    route_client_close(c, STATS_CC_output_limit);
    return true;
}

void
route_local_msg(struct conn *c, struct msg *m, bool close_after)
{
    m->local = true;
    m->done = true;
    m->close_after = close_after;
    route_client_enqueue(c, m);
    c->pending_bytes += buf_len(&m->rsp);
    conn_mark_dirty(c);
    (void)route_client_check_output(c);
}

void
route_client_drain(struct conn *c, enum stats_client_close why)
{
    if (c->state != CONN_ACTIVE) {
        return;
    }
    conn_set_reading(c, false);
    buf_free(&c->in);
    c->close_reason = (uint8_t)why;
    conn_set_state(c, CONN_DRAINING);
}

int
route_local_reply(struct conn *c, const char *bytes, size_t len, bool close_after)
{
    struct msg *m = msg_get(&c->ctx->msgs);

    if (m == NULL || buf_append(&m->rsp, bytes, len) != 0) {
        if (m != NULL) {
            msg_put(&c->ctx->msgs, m);
        }
        return -1;
    }
    route_local_msg(c, m, close_after);
    return 0;
}

static void route_server_rearm(struct conn *s);

/* Wake the server conn's timer at mono time at_ms. */
static void
route_server_arm(struct conn *s, uint64_t at_ms)
{
    uint64_t now = util_mono_msec();
    uint64_t d = at_ms > now ? at_ms - now : 0;
    struct timeval tv = { (time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000) };

    evtimer_add(&s->tev, &tv);
}

void
route_forward_to(struct conn *c, struct pool_server *s, struct msg *m)
{
    int err = 0;
    struct conn *sc = pool_server_conn(s, c, &err);

    if (sc == NULL) {
        stats_add(&c->pool->st->f[STATS_P_forward_error], 1);
        route_msg_fail(c->ctx, m, err);
        return;
    }
    uint64_t timeout = c->pool->cp->timeout_ms;
    if (timeout > 0) {
        m->deadline_ms = util_mono_msec() + timeout;
        if (!evtimer_pending(&sc->tev, NULL)) {
            route_server_arm(sc, m->deadline_ms);
        }
    }
    m->timeout_ms = timeout;
    m->sst = sc->st;
    conn_server_enqueue(sc, m, false);
    conn_mark_dirty(sc);
}

void
route_forward(struct conn *c, struct msg *m, const uint8_t *key, size_t len)
{
    struct pool_server *s = pool_pick(c->pool, key, len);

    if (s == NULL) {
        stats_add(&c->pool->st->f[STATS_P_forward_error], 1);
        route_msg_fail(c->ctx, m, ECONNREFUSED);
        return;
    }
    route_forward_to(c, s, m);
}

void
route_msg_done(struct conn_ctx *ctx, struct msg *m)
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
            route_proto_of(m->client->pool)->assemble(m);
        }
    }
    if (m->client == NULL) {
        conn_msg_release(ctx, m);
        return;
    }
    if (m->swallow) {
        buf_reset(&m->rsp);
    }
    m->client->pending_bytes += buf_len(&m->rsp);
    conn_mark_dirty(m->client);
    (void)route_client_check_output(m->client);
}

bool
route_msg_wanted(const struct msg *m)
{
    return !m->timed_out &&
           (m->client != NULL || (m->parent != NULL && m->parent->client != NULL));
}

void
route_server_replied(struct conn *s, struct msg *m)
{
    pool_server_ok(s->server);
    if (m->timed_out) {
        conn_msg_release(s->ctx, m);    /* a tombstone's late reply */
    } else {
        route_msg_done(s->ctx, m);
    }
}

void
route_msg_fail(struct conn_ctx *ctx, struct msg *m, int err)
{
    struct conn *owner = m->parent != NULL ? m->parent->client : m->client;

    m->err = err != 0 ? err : EIO;
    if (owner != NULL) {
        route_proto_of(owner->pool)->error_reply(m, m->err);
    }
    route_msg_done(ctx, m);
}

static void
route_server_dequeue_all(struct conn *s, int err)
{
    struct msg *m;

    while ((m = conn_server_pop_any(s)) != NULL) {
        if (m->timed_out) {
            conn_msg_release(s->ctx, m);    /* answered already */
        } else {
            route_msg_fail(s->ctx, m, err);
        }
    }
}

static void
route_server_reset(struct conn *s)
{
    evtimer_del(&s->tev);
    if (s->fd >= 0) {
        stats_add(&s->st->f[STATS_S_server_connections], -1);
        stats_add(&s->ctx->wst->curr_connections, -1);
    }
    conn_close_socket(s);
    if (s->dirty) {
        TAILQ_REMOVE(&s->ctx->dirty_servers, s, dirty_tqe);
        s->dirty = false;
    }
    conn_set_state(s, CONN_DISCONNECTED);
}

/* Why a server conn that failed with err closes. */
static enum stats_server_close
route_server_close_reason(int err)
{
    switch (err) {
    case ECONNRESET:
        return STATS_SC_eof;
    case ETIMEDOUT:
        return STATS_SC_timeout;
    case EINVAL:
        return STATS_SC_protocol_error;
    case EMSGSIZE:
        return STATS_SC_reply_too_large;
    case EACCES:
        return STATS_SC_handshake;
    case ECONNABORTED:
        return STATS_SC_shutdown;
    default:
        return STATS_SC_error;
    }
}

/* Count the close of server conn s: its reason, and twemproxy's eof/err. */
static void
route_server_count_close(struct conn *s, enum stats_server_close why)
{
    stats_add(&s->st->closed[why], 1);
    if (why == STATS_SC_eof || why == STATS_SC_idle_eof) {
        stats_add(&s->st->f[STATS_S_server_eof], 1);
    } else if (why != STATS_SC_retired && why != STATS_SC_shutdown) {
        stats_add(&s->st->f[STATS_S_server_err], 1);
    }
}

void
route_server_fail(struct conn *s, int err)
{
    char ebuf[128];
    struct pool_server *ps = s->server;

    log_warn("pool %s: server %s failed: %s (%" PRIu32 " in flight)", ps->pool->cp->name,
             ps->cs->ident, util_strerror(err, ebuf, sizeof(ebuf)), s->nin + s->nout);
    route_server_count_close(s, route_server_close_reason(err));
    bool connecting = s->state == CONN_CONNECTING;
    route_server_reset(s);
    pool_server_failed(ps, err, connecting);
    route_server_dequeue_all(s, err);
}

static void
route_server_connected(struct conn *s)
{
    int err = net_socket_error(s->fd);

    if (err != 0) {
        route_server_fail(s, err);
        return;
    }
    const struct route_proto *proto = route_proto_of(s->pool);
    if (proto->server_connected != NULL) {
        int rc = proto->server_connected(s);
        if (rc < 0) {
            route_server_fail(s, -rc);
            return;
        }
    }
    conn_set_state(s, CONN_READY);
    conn_set_reading(s, true);
    s->server->backoff_ms = 0;
    s->server->retry_at_ms = 0;
    log_debug("pool %s: connected to server %s (conn %" PRIu64 ")", s->pool->cp->name,
              s->server->cs->ident, s->id);
    route_server_rearm(s);
    /* Write what queued up while connecting; this also disarms EV_WRITE. */
    int rc = conn_flush(s);
    if (rc < 0) {
        route_server_fail(s, -rc);
    }
}

static void
route_server_read(struct conn *s)
{
    ssize_t n = conn_read(s);

    if (n == -EAGAIN) {
        return;
    }
    if (n < 0) {
        route_server_fail(s, (int)-n);
        return;
    }
    if (n == 0) {
        if (s->nin + s->nout > 0) {
            route_server_fail(s, ECONNRESET);
        } else {
            /* An idle conn closed by the server is not a failure. */
            log_info("pool %s: server %s closed an idle connection", s->pool->cp->name,
                     s->server->cs->ident);
            route_server_count_close(s, STATS_SC_idle_eof);
            route_server_reset(s);
        }
        return;
    }
    int rc = route_proto_of(s->pool)->server_input(s);
    if (rc < 0) {
        route_server_fail(s, -rc);
        return;
    }
    conn_release_inbuf(s);
}

/*
 * The earliest time the timer must look at s again, 0 for never. Each msg
 * carries the timeout it was queued with, so a reload that changes or
 * turns off the pool's timeout does not strand a request queued before it
 * (nor the tombstone that marks a stuck conn).
 */
static uint64_t
route_server_next_deadline(const struct conn *s)
{
    const struct msg *head = TAILQ_FIRST(&s->out_q);
    const struct msg *m;
    uint64_t next = 0;

    if (s->state == CONN_CONNECTING) {
        next = s->sock.connect_deadline_ms;
    }
    if (head != NULL && head->timed_out) {
        /* A tombstone still unanswered a further timeout later: the conn
           is stuck and will be closed. */
        uint64_t stuck = head->deadline_ms + head->timeout_ms;
        next = next == 0 ? stuck : MIN(next, stuck);
    }
    TAILQ_FOREACH(m, &s->out_q, s_tqe) {
        if (!m->timed_out && m->deadline_ms != 0) {
            return next == 0 ? m->deadline_ms : MIN(next, m->deadline_ms);
        }
    }
    TAILQ_FOREACH(m, &s->in_q, s_tqe) {
        if (!m->timed_out && m->deadline_ms != 0) {
            return next == 0 ? m->deadline_ms : MIN(next, m->deadline_ms);
        }
    }
    return next;
}

static void
route_server_rearm(struct conn *s)
{
    uint64_t next = route_server_next_deadline(s);

    if (next != 0) {
        route_server_arm(s, next);
    } else {
        evtimer_del(&s->tev);
    }
}

/* m's deadline passed: answer it now; if it was written, it stays queued
   as a tombstone whose late reply will be dropped. */
static void
route_msg_timeout(struct conn *s, struct msg *m)
{
    stats_add(&s->st->f[STATS_S_server_timedout], 1);
    pool_server_failed(s->server, ETIMEDOUT, false);
    if (m->req_sent == 0) {
        conn_server_unqueue(s, m);  /* never sent: no reply will come */
    } else {
        m->timed_out = true;
    }
    route_msg_fail(s->ctx, m, ETIMEDOUT);
}

static void
route_server_timer(struct conn *s)
{
    uint64_t now = util_mono_msec();
    struct msg *m, *next;

    if (s->state == CONN_CONNECTING && s->sock.connect_deadline_ms != 0 &&
        now >= s->sock.connect_deadline_ms) {
        route_server_fail(s, ETIMEDOUT);
        return;
    }
    for (m = TAILQ_FIRST(&s->out_q); m != NULL; m = next) {
        next = TAILQ_NEXT(m, s_tqe);
        if (m->timed_out || m->deadline_ms == 0) {
            continue;
        }
        if (m->deadline_ms > now) {
            goto rearm;     /* deadlines grow in queue order */
        }
        route_msg_timeout(s, m);
    }
    for (m = TAILQ_FIRST(&s->in_q); m != NULL; m = next) {
        next = TAILQ_NEXT(m, s_tqe);
        if (m->timed_out || m->deadline_ms == 0) {
            continue;
        }
        if (m->deadline_ms > now) {
            break;
        }
        route_msg_timeout(s, m);
    }
rearm:
    m = TAILQ_FIRST(&s->out_q);
    if (m != NULL && m->timed_out && m->deadline_ms + m->timeout_ms <= now) {
        route_server_fail(s, ETIMEDOUT);
        return;
    }
    route_server_rearm(s);
}

void
route_server_event(int fd, short what, void *arg)
{
    struct conn *s = arg;

    (void)fd;
    if (what & EV_TIMEOUT) {
        route_server_timer(s);
        return;
    }
    if (s->state == CONN_CONNECTING) {
        route_server_connected(s);
        return;
    }
    if (what & EV_WRITE) {
        int rc = conn_flush(s);
        if (rc < 0) {
            route_server_fail(s, -rc);
            return;
        }
    }
    if ((what & EV_READ) && s->state == CONN_READY) {
        route_server_read(s);
    }
}

void
route_client_close(struct conn *c, enum stats_client_close why)
{
    struct msg *m;

    if (c->state == CONN_CLOSED) {
        return;
    }
    log_debug("closing client %s (conn %" PRIu64 ") on pool %s: %s", c->peer, c->id,
              c->pool->cp->name, stats_client_close_descs[why]);
    stats_add(&c->pst->closed[why], 1);
    if (why == STATS_CC_eof) {
        stats_add(&c->pst->f[STATS_P_client_eof], 1);
    } else if (why == STATS_CC_error) {
        stats_add(&c->pst->f[STATS_P_client_err], 1);
    }
    while ((m = TAILQ_FIRST(&c->q)) != NULL) {
        TAILQ_REMOVE(&c->q, m, c_tqe);
        c->nq--;
        bool done = m->done;
        m->client = NULL;
        if (done) {
            conn_msg_release(c->ctx, m);
        }
        /* else an orphan: released when its replies come */
    }
    TAILQ_REMOVE(&c->pool->clients, c, pool_tqe);
    c->pool->nclients--;
    atomic_fetch_sub_explicit(&c->pool->reg->nclients, 1, memory_order_relaxed);
    stats_add(&c->pool->st->f[STATS_P_client_connections], -1);
    stats_add(&c->ctx->wst->clients, -1);
    stats_add(&c->ctx->wst->curr_connections, -1);
    conn_client_close(c);
}

static bool
route_client_finished(const struct conn *c)
{
    return c->state == CONN_DRAINING && TAILQ_EMPTY(&c->q);
}

static void route_client_process(struct conn *c);

static void
route_client_read(struct conn *c)
{
    ssize_t n = conn_read(c);

    if (n == -EAGAIN) {
        return;
    }
    if (n < 0) {
        route_client_close(c, STATS_CC_error);
        return;
    }
    if (n == 0) {
        c->eof = true;
        conn_set_reading(c, false);
    }
    route_client_process(c);
}

/* Parse what c has buffered, then decide whether it stays open. */
static void
route_client_process(struct conn *c)
{
    route_proto_of(c->pool)->client_input(c);
    if (c->state == CONN_CLOSED) {
        return;
    }
    if (c->state == CONN_ACTIVE && conn_client_throttled(c)) {
        /* Buffered requests wait until replies drain (after_flush). */
        c->throttled = true;
        conn_set_reading(c, false);
        return;
    }
    conn_release_inbuf(c);
    if (c->eof) {
        /* Answer what is complete, then close: a partial request never
           holds a conn open. */
        route_client_drain(c, STATS_CC_eof);
    }
    if (route_client_finished(c)) {
        route_client_close(c, (enum stats_client_close)c->close_reason);
    } else if (c->ctx->stopping || c->pool->retiring) {
        route_client_close_if_idle(c);
    }
}

void
route_client_close_if_idle(struct conn *c)
{
    if (c->state != CONN_ACTIVE || c->throttled || !TAILQ_EMPTY(&c->q) ||
        buf_len(&c->in) > 0) {
        return;     /* not at a request boundary yet */
    }
    if (c->wait_first && !c->got_request) {
        return;     /* taken from the accept queue at stop: its request is coming */
    }
    /* Closing with unread bytes would reset the conn and lose requests the
       client sent before we stopped: look once more. */
    ssize_t n = conn_read(c);
    if (n == -EAGAIN) {
        route_client_close(c, c->ctx->stopping ? STATS_CC_stop : STATS_CC_pool_removed);
    } else if (n <= 0) {
        route_client_close(c, n == 0 ? STATS_CC_eof : STATS_CC_error);
    } else {
        route_client_process(c);
    }
}

void
route_client_after_flush(struct conn *c, int flush_rc)
{
    if (c->state == CONN_CLOSED) {
        return;
    }
    if (flush_rc == -ECONNABORTED) {
        route_client_close(c, (enum stats_client_close)c->close_reason);
    } else if (flush_rc < 0) {
        route_client_close(c, STATS_CC_error);
    } else if (c->throttled && conn_client_may_resume(c)) {
        c->throttled = false;
        if (!c->eof && c->state == CONN_ACTIVE) {
            conn_set_reading(c, true);
        }
        route_client_process(c);
    } else if (route_client_finished(c)) {
        route_client_close(c, (enum stats_client_close)c->close_reason);
    } else if (c->ctx->stopping || c->pool->retiring) {
        route_client_close_if_idle(c);
    }
}

void
route_client_event(int fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    if (what & EV_WRITE) {
        route_client_after_flush(c, conn_flush(c));
        if (c->state == CONN_CLOSED) {
            return;
        }
    }
    if (what & EV_READ) {
        route_client_read(c);
    }
}

void
route_pool_shutdown(struct pool *p)
{
    struct conn *c;

    while ((c = TAILQ_FIRST(&p->clients)) != NULL) {
        route_client_close(c, c->ctx->stopping ? STATS_CC_stop : STATS_CC_pool_removed);
    }
    for (size_t i = 0; i < p->nservers; i++) {
        route_server_shutdown(p->servers[i]);
    }
}

void
route_server_shutdown(struct pool_server *s)
{
    for (uint32_t j = 0; j < s->nconns; j++) {
        if (s->conns[j].fd >= 0) {
            route_server_count_close(&s->conns[j], STATS_SC_shutdown);
        }
        route_server_reset(&s->conns[j]);
        route_server_dequeue_all(&s->conns[j], ECONNABORTED);
    }
}

void
route_server_close(struct conn *s)
{
    if (s->fd >= 0) {
        route_server_count_close(s, STATS_SC_retired);
    }
    route_server_reset(s);
}
