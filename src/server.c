/*
 * server: server conns (see server.h and the lifecycle in conn.h).
 *
 * Timeouts. A request's deadline is `timeout` ms after it is queued. At the
 * deadline that request alone is answered "Connection timed out"; if it was
 * written it stays queued as a tombstone so the FIFO pairing holds, and its
 * late reply is dropped when it comes. Deadlines grow in queue order, so one
 * timer per server conn, set for the oldest request not yet timed out, is
 * enough. A conn whose oldest tombstone is still unanswered a further
 * timeout later is stuck and is failed. Each msg carries the timeout it was
 * queued with, so a reload that changes or turns off the pool's timeout
 * never strands a request queued before it.
 *
 * Failures. A failed socket fails exactly the requests it carried; its
 * reader (reply.h) is zeroed with the rest of the socket's state, and the
 * conn connects again when the next request needs it.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/uio.h>

#include "client.h"
#include "conf.h"
#include "gen.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "tls.h"

#define SERVER_IOV_MAX 512
#define SERVER_LOCAL_ERR_LOG_MS 1000

static void server_rearm(struct server_conn *sc);
static void server_tls_keep_session(struct server_conn *sc);

/*
 * Errors of this host, not of the server: out of descriptors, memory or
 * local ports. The request fails with that text, but the server is not
 * blamed: no failure count, no ejection, no backoff.
 */
static bool
server_local_error(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL;
}

static void
server_arm(struct server_conn *sc, uint64_t at_ms)
{
    uint64_t now = util_mono_msec();
    uint64_t d = at_ms > now ? at_ms - now : 0;
    struct timeval tv = util_ms_tv(d);

    evtimer_add(&sc->tev, &tv);
}

int
server_connect(struct server_conn *sc)
{
    struct pool_server *s = sc->server;
    struct pool *p = sc->pool;
    const struct conf_server *cs = s->cs;
    int fd = net_connect(&s->gs->addr);

    if (fd < 0) {
        char ebuf[128];
        const char *why = util_strerror(-fd, ebuf, sizeof(ebuf));
        if (server_local_error(-fd)) {
            /* Every request tries again, so say it once a second at most. */
            uint64_t now = util_mono_msec();
            if (now >= s->local_err_log_ms) {
                s->local_err_log_ms = now + SERVER_LOCAL_ERR_LOG_MS;
                log_warn("pool %s: cannot connect to server %s: %s (a local limit; the "
                         "server is not counted as failed)",
                         p->cp->name, cs->ident, why);
            }
            return fd;
        }
        log_warn("pool %s: connect to server %s failed: %s", p->cp->name, cs->ident, why);
        pool_server_failed(s, -fd, true);
        return fd;
    }
    if (p->cp->tcpkeepalive && !cs->addr.is_unix) {
        net_set_keepalive(fd);
    }
    conn_attach(&sc->c, fd, p->server_cb);
    conn_set_state(&sc->c, CONN_CONNECTING);
    /* Writability tells when the connect finished, either way. */
    conn_watch(&sc->c, EV_WRITE);
    if (p->cp->timeout_ms > 0) {
        sc->sock.connect_deadline_ms = util_mono_msec() + p->cp->timeout_ms;
        server_arm(sc, sc->sock.connect_deadline_ms);
    }
    stats_add(&sc->st->f[STATS_S_server_connections], 1);
    stats_add(&sc->st->set_connections[sc->proto->set], 1);
    stats_add(&sc->c.ctx->wst->curr_connections, 1);
    stats_add(&sc->c.ctx->wst->total_connections, 1);
    log_debug("pool %s: connecting to server %s (conn %" PRIu64 ")", p->cp->name, cs->ident,
              sc->c.id);
    return 0;
}

void
server_enqueue(struct server_conn *sc, struct msg *m, bool at_head)
{
    uint64_t n = msg_req_len(m);
    uint64_t timeout = sc->pool->cp->timeout_ms;

    if (timeout > 0 && !m->handshake) {
        m->timeout_ms = timeout;
        m->deadline_ms = util_mono_msec() + timeout;
        if (!evtimer_pending(&sc->tev, NULL)) {
            server_arm(sc, m->deadline_ms);
        }
    }
    m->server = sc;
    m->sst = sc->st;
    if (at_head) {
        TAILQ_INSERT_HEAD(&sc->in_q, m, s_tqe);
    } else {
        TAILQ_INSERT_TAIL(&sc->in_q, m, s_tqe);
    }
    sc->nin++;
    stats_add(&sc->st->f[STATS_S_requests], 1);
    stats_add(&sc->st->f[STATS_S_request_bytes], (int64_t)n);
    stats_add(&sc->st->f[STATS_S_in_queue], 1);
    stats_add(&sc->st->f[STATS_S_in_queue_bytes], (int64_t)n);
    conn_mark_dirty(&sc->c);
}

/* Take m (never written) off sc's in_q. */
static void
server_unqueue(struct server_conn *sc, struct msg *m)
{
    TAILQ_REMOVE(&sc->in_q, m, s_tqe);
    sc->nin--;
    m->server = NULL;
    stats_add(&sc->st->f[STATS_S_in_queue], -1);
    stats_add(&sc->st->f[STATS_S_in_queue_bytes], -(int64_t)msg_req_len(m));
}

/* Take m (written) off sc's out_q. */
static void
server_pop_written(struct server_conn *sc, struct msg *m)
{
    TAILQ_REMOVE(&sc->out_q, m, s_tqe);
    sc->nout--;
    m->server = NULL;
    stats_add(&sc->st->f[STATS_S_out_queue], -1);
    stats_add(&sc->st->f[STATS_S_out_queue_bytes], -(int64_t)msg_req_len(m));
}

/* Take any msg off sc (out_q first, then in_q), or NULL: for failing it. */
static struct msg *
server_pop_any(struct server_conn *sc)
{
    struct msg *m;

    if ((m = TAILQ_FIRST(&sc->out_q)) != NULL) {
        server_pop_written(sc, m);
    } else if ((m = TAILQ_FIRST(&sc->in_q)) != NULL) {
        server_unqueue(sc, m);
    }
    return m;
}

void
server_flush(struct server_conn *sc)
{
    struct iovec iov[SERVER_IOV_MAX];
    size_t total, written;
    int n, rc;
    struct msg *m;

    if (sc->c.state != CONN_READY) {
        return;
    }
    for (;;) {
        n = 0;
        total = 0;
        TAILQ_FOREACH (m, &sc->in_q, s_tqe) {
            size_t bytes;
            if (n == SERVER_IOV_MAX) {
                break;
            }
            n += chain_iov(&m->req, &m->req_pieces, m->req_sent, iov + n, SERVER_IOV_MAX - n,
                           &bytes);
            total += bytes;
        }
        /* n == 0: a TLS conn still sends ciphertext that waits. */
        rc = conn_writev(&sc->c, iov, n, &written);
        if (rc != 0) {
            server_fail(sc, -rc);
            return;
        }
        if (n == 0) {
            conn_watch(&sc->c, EV_READ);
            return;
        }
        while (written > 0 && (m = TAILQ_FIRST(&sc->in_q)) != NULL) {
            uint64_t bytes = msg_req_len(m), left = bytes - m->req_sent;
            if (written < left) {
                m->req_sent += written;
                break;
            }
            written -= (size_t)left;
            m->req_sent += left;
            TAILQ_REMOVE(&sc->in_q, m, s_tqe);
            sc->nin--;
            TAILQ_INSERT_TAIL(&sc->out_q, m, s_tqe);
            sc->nout++;
            stats_add(&sc->st->f[STATS_S_in_queue], -1);
            stats_add(&sc->st->f[STATS_S_in_queue_bytes], -(int64_t)bytes);
            stats_add(&sc->st->f[STATS_S_out_queue], 1);
            stats_add(&sc->st->f[STATS_S_out_queue_bytes], (int64_t)bytes);
        }
        if (TAILQ_EMPTY(&sc->in_q)) {
            conn_watch(&sc->c, EV_READ);
            return;
        }
        if (written < total) {
            /* Short write: the socket is full; wait for writability. */
            conn_watch(&sc->c, EV_READ | EV_WRITE);
            return;
        }
    }
}

/* Count the close of sc: its reason, and twemproxy's eof/err. */
static void
server_count_close(struct server_conn *sc, enum stats_server_close why)
{
    stats_add(&sc->st->closed[why], 1);
    if (why == STATS_SC_eof || why == STATS_SC_idle_eof) {
        stats_add(&sc->st->f[STATS_S_server_eof], 1);
    } else if (why != STATS_SC_retired && why != STATS_SC_shutdown) {
        stats_add(&sc->st->f[STATS_S_server_err], 1);
    }
}

/* The socket and everything that belonged to it go (see struct conn_sock). */
static void
server_reset(struct server_conn *sc)
{
    struct conn_ctx *ctx = sc->c.ctx;

    evtimer_del(&sc->tev);
    if (sc->c.fd >= 0) {
        stats_add(&sc->st->f[STATS_S_server_connections], -1);
        stats_add(&sc->st->set_connections[sc->proto->set], -1);
        stats_add(&ctx->wst->curr_connections, -1);
    }
    if (sc->c.tls != NULL && !sc->c.handshaking) {
        server_tls_keep_session(sc); /* tickets may have come since the handshake */
    }
    if (sc->c.tls_version != 0) {
        stats_add(&sc->st->tls.f[sc->c.tls_version], -1);
        sc->c.tls_version = 0;
    }
    conn_close_fd(&sc->c); /* and its TLS */
    sc->c.handshaking = false;
    if (sc->in != NULL) {
        chain_in_reset(sc->in); /* bytes and bodies of the dead socket */
        conn_give_back_buf(ctx, &sc->in);
    }
    sc->sock = (struct conn_sock){ 0 };
    if (sc->c.dirty) {
        TAILQ_REMOVE(&ctx->dirty_servers, &sc->c, dirty_tqe);
        sc->c.dirty = false;
    }
    if (sc->c.state != CONN_DISCONNECTED) {
        conn_set_state(&sc->c, CONN_DISCONNECTED);
    }
}

/* Why a server conn that failed with err closes. */
static enum stats_server_close
server_close_reason(int err)
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
    case EPROTO:
        return STATS_SC_tls_handshake;
    case ECONNABORTED:
        return STATS_SC_shutdown;
    default:
        return STATS_SC_error;
    }
}

/* Fail (or, for tombstones already answered, release) every msg of sc.
   not_sent: the connect failed, so each request failed is a forwarding
   error of the pool (as nutcracker counts it). */
static void
server_dequeue_all(struct server_conn *sc, int err, bool not_sent)
{
    struct conn_ctx *ctx = sc->c.ctx;
    struct msg *m;

    while ((m = server_pop_any(sc)) != NULL) {
        if (m->timed_out || m->handshake) {
            msg_release(&ctx->msgs, m);
        } else {
            if (not_sent) {
                stats_add(&sc->pool->st->f[STATS_P_forward_error], 1);
            }
            client_fail_msg(ctx, m, err);
        }
    }
}

void
server_fail(struct server_conn *sc, int err)
{
    char ebuf[128];
    struct pool_server *s = sc->server;

    log_warn("pool %s: server %s failed: %s (%" PRIu32 " in flight)", sc->pool->cp->name,
             s->cs->ident, util_strerror(err, ebuf, sizeof(ebuf)), sc->nin + sc->nout);
    server_count_close(sc, server_close_reason(err));
    bool connecting = sc->c.state == CONN_CONNECTING;
    server_reset(sc);
    pool_server_failed(s, err, connecting);
    server_dequeue_all(sc, err, connecting);
}

void
server_close(struct server_conn *sc, enum stats_server_close why)
{
    if (sc->c.fd >= 0) {
        server_count_close(sc, why);
    }
    server_reset(sc);
}

void
server_shutdown(struct pool_server *s)
{
    for (uint32_t j = 0; j < s->nconns; j++) {
        server_close(&s->conns[j], STATS_SC_shutdown);
        server_dequeue_all(&s->conns[j], ECONNABORTED, false);
    }
}

bool
server_idle(const struct pool_server *s)
{
    for (uint32_t j = 0; j < s->nconns; j++) {
        if (s->conns[j].nin + s->conns[j].nout > 0) {
            return false;
        }
    }
    return true;
}

/* The TCP connect (and TLS handshake, if any) is done: queue what must
   precede requests, then write what waited. */
static void
server_ready(struct server_conn *sc)
{
    if (sc->proto->server_open != NULL) {
        int rc = sc->proto->server_open(sc);
        if (rc < 0) {
            server_fail(sc, -rc);
            return;
        }
    }
    conn_set_state(&sc->c, CONN_READY);
    sc->sock.connect_deadline_ms = 0;
    sc->server->backoff_ms = 0;
    sc->server->retry_at_ms = 0;
    log_debug("pool %s: connected to server %s (conn %" PRIu64 ")", sc->pool->cp->name,
              sc->server->cs->ident, sc->c.id);
    server_rearm(sc);
    /* Write what queued up while connecting; this also watches for reads. */
    server_flush(sc);
}

/* ---- TLS to the server (server_tls = true) ---- */

static void
server_tls_keep_session(struct server_conn *sc)
{
    struct ssl_session_st *s = tls_session_get(sc->c.tls);

    if (s != NULL) {
        tls_session_free(sc->tls_session);
        sc->tls_session = s;
    }
}

/* A TLS failure of sc's handshake: counted, logged (rate-limited). */
static void
server_tls_failed(struct server_conn *sc, enum stats_tls_fail why, const char *text)
{
    struct pool *p = sc->pool;
    uint32_t dropped;

    stats_add(&sc->st->tls.fail[why], 1);
    if (pool_tls_log_allowed(p, &dropped)) {
        char more[64] = "";
        if (dropped > 0) {
            snprintf(more, sizeof(more), "; %u more not logged before this", dropped);
        }
        const struct conf_server *cs = sc->server->cs;
        char addr[300];
        if (cs->addr.is_unix) {
            snprintf(addr, sizeof(addr), "%s", cs->addr.host);
        } else {
            snprintf(addr, sizeof(addr), "%s:%d", cs->addr.host, cs->addr.port);
        }
        log_warn("tls: pool %s: %s (server %s): %s (%s%s)", p->cp->name, addr, cs->ident, text,
                 stats_tls_fail_names[why], more);
    }
}

static void
server_tls_step(struct server_conn *sc)
{
    struct tls_sock *t = sc->c.tls;
    int rc = tls_handshake(t, sc->c.fd);

    if (rc == 0) {
        conn_watch(&sc->c, EV_READ); /* and EV_WRITE while a flight waits */
        return;
    }
    if (rc < 0) {
        server_tls_failed(sc, tls_fail_reason(t), tls_fail_text(t));
        server_fail(sc, EPROTO);
        return;
    }
    sc->c.handshaking = false;
    stats_add(&sc->st->tls.f[STATS_TLS_handshakes], 1);
    if (tls_resumed(t)) {
        stats_add(&sc->st->tls.f[STATS_TLS_resumed], 1);
    }
    sc->c.tls_version = (uint8_t)(tls_version(t) == 13 ? STATS_TLS_v13 : STATS_TLS_v12);
    stats_add(&sc->st->tls.f[sc->c.tls_version], 1);
    server_tls_keep_session(sc);
    log_debug("pool %s: TLSv1.%d with server %s (conn %" PRIu64 ")%s", sc->pool->cp->name,
              tls_version(t) == 13 ? 3 : 2, sc->server->cs->ident, sc->c.id,
              tls_resumed(t) ? ", resumed" : "");
    server_ready(sc);
}

/* The TCP connect is done: start TLS on it. Its deadline is the
   handshake's from now. */
static void
server_tls_begin(struct server_conn *sc)
{
    const struct conf_pool *cp = sc->pool->cp;
    const struct conf_server *cs = sc->server->cs;
    const char *name = cp->server_tls.name;
    bool is_ip = false;
    uint8_t a[16];

    if (name == NULL && !cs->addr.is_unix) {
        name = cs->addr.host;
    }
    if (name != NULL) {
        is_ip = inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
    }
    sc->c.tls =
        tls_sock_new(sc->pool->gp->tls.connect, sc->c.fd, false, name, is_ip, sc->tls_session);
    if (sc->c.tls == NULL) {
        server_tls_failed(sc, STATS_TLS_FAIL_error, "out of memory");
        server_fail(sc, ENOMEM);
        return;
    }
    /* memcached 1.6 reads a large value straight into its item, taking the
       last record whole, and never looks again at a request that shared
       that record: it waits for the socket, which stays silent. One record
       per request keeps each request's end at a record's end. */
    tls_set_gather(sc->c.tls, cp->proto != PROTO_MEMCACHED);
    sc->c.handshaking = true;
    sc->sock.connect_deadline_ms = util_mono_msec() + sc->c.ctx->handshake_timeout_ms;
    server_arm(sc, sc->sock.connect_deadline_ms);
    server_tls_step(sc);
}

static void
server_connected(struct server_conn *sc)
{
    int err = net_socket_error(sc->c.fd);

    if (err != 0) {
        server_fail(sc, err);
        return;
    }
    if (sc->pool->gp->tls.connect != NULL) {
        server_tls_begin(sc);
        return;
    }
    server_ready(sc);
}

/* reply_read's callback: m's whole reply came. */
static int
server_replied(void *arg, struct msg *m, size_t total)
{
    struct server_conn *sc = arg;
    struct conn_ctx *ctx = sc->c.ctx;

    server_pop_written(sc, m);
    stats_add(&sc->st->f[STATS_S_responses], 1);
    stats_add(&sc->st->f[STATS_S_response_bytes], (int64_t)total);
    if (m->handshake) {
        int rc = sc->proto->handshake_reply(sc, m);
        msg_release(&ctx->msgs, m);
        return rc;
    }
    pool_server_ok(sc->server);
    if (sc->proto->replied != NULL && !m->timed_out) {
        sc->proto->replied(sc, m);
    }
    if (m->timed_out) {
        msg_release(&ctx->msgs, m); /* a tombstone's late reply */
    } else {
        client_deliver(ctx, m);
    }
    return 0;
}

static void
server_read(struct server_conn *sc)
{
    const struct proto_wire *w = sc->proto->wire;
    uint64_t body;
    ssize_t n = conn_read(&sc->c, &sc->in, &body, sc->sock.reader.bulky);

    if (n == -EAGAIN) {
        return;
    }
    if (n < 0) {
        if (n == -EPROTO) {
            log_warn("tls: pool %s: %s: %s", sc->pool->cp->name, sc->server->cs->ident,
                     tls_fail_text(sc->c.tls));
            n = -EIO; /* not a handshake's failure */
        }
        server_fail(sc, (int)-n);
        return;
    }
    if (n == 0) {
        if (sc->nin + sc->nout > 0) {
            server_fail(sc, ECONNRESET);
        } else {
            /* An idle conn closed by the server is not a failure. */
            log_info("pool %s: server %s closed an idle connection", sc->pool->cp->name,
                     sc->server->cs->ident);
            server_close(sc, STATS_SC_idle_eof);
        }
        return;
    }
    if (body > 0) {
        reply_streamed(w, &sc->sock.reader, body);
    }
    int rc = reply_read(w, &sc->sock.reader, sc->in, &sc->out_q, sc->c.ctx->max_reply_size,
                        server_replied, sc);
    if (rc < 0) {
        server_fail(sc, -rc);
        return;
    }
    /* A large body still to come is read into chunks, not into the buffer. */
    (void)reply_stream(w, &sc->sock.reader, sc->in, &sc->out_q);
    conn_give_back_buf(sc->c.ctx, &sc->in);
}

/* The earliest time the timer must look at sc again, 0 for never. */
static uint64_t
server_next_deadline(const struct server_conn *sc)
{
    const struct msg *head = TAILQ_FIRST(&sc->out_q);
    const struct msg *m;
    uint64_t next = 0;

    if (sc->c.state == CONN_CONNECTING) {
        next = sc->sock.connect_deadline_ms;
    }
    if (head != NULL && head->timed_out) {
        /* A tombstone still unanswered a further timeout later: the conn
           is stuck and will be failed. */
        uint64_t stuck = head->deadline_ms + head->timeout_ms;
        next = next == 0 ? stuck : MIN(next, stuck);
    }
    TAILQ_FOREACH (m, &sc->out_q, s_tqe) {
        if (!m->timed_out && m->deadline_ms != 0) {
            return next == 0 ? m->deadline_ms : MIN(next, m->deadline_ms);
        }
    }
    TAILQ_FOREACH (m, &sc->in_q, s_tqe) {
        if (!m->timed_out && m->deadline_ms != 0) {
            return next == 0 ? m->deadline_ms : MIN(next, m->deadline_ms);
        }
    }
    return next;
}

static void
server_rearm(struct server_conn *sc)
{
    uint64_t next = server_next_deadline(sc);

    if (next != 0) {
        server_arm(sc, next);
    } else {
        evtimer_del(&sc->tev);
    }
}

/* m's deadline passed: answer it now; if it was written, it stays queued
   as a tombstone whose late reply will be dropped. */
static void
server_msg_timeout(struct server_conn *sc, struct msg *m)
{
    stats_add(&sc->st->f[STATS_S_server_timedout], 1);
    pool_server_failed(sc->server, ETIMEDOUT, false);
    if (m->req_sent == 0) {
        server_unqueue(sc, m); /* never sent: no reply will come */
    } else {
        m->timed_out = true;
    }
    client_fail_msg(sc->c.ctx, m, ETIMEDOUT);
}

static void
server_timer(struct server_conn *sc)
{
    uint64_t now = util_mono_msec();
    struct msg *m, *next;

    if (sc->c.state == CONN_CONNECTING && sc->sock.connect_deadline_ms != 0 &&
        now >= sc->sock.connect_deadline_ms) {
        if (sc->c.handshaking) {
            char text[64];
            snprintf(text, sizeof(text), "handshake not finished after %" PRIu64 " ms",
                     sc->c.ctx->handshake_timeout_ms);
            server_tls_failed(sc, STATS_TLS_FAIL_timeout, text);
        }
        server_fail(sc, ETIMEDOUT);
        return;
    }
    for (m = TAILQ_FIRST(&sc->out_q); m != NULL; m = next) {
        next = TAILQ_NEXT(m, s_tqe);
        if (m->timed_out || m->deadline_ms == 0) {
            continue;
        }
        if (m->deadline_ms > now) {
            goto rearm; /* deadlines grow in queue order */
        }
        server_msg_timeout(sc, m);
    }
    for (m = TAILQ_FIRST(&sc->in_q); m != NULL; m = next) {
        next = TAILQ_NEXT(m, s_tqe);
        if (m->timed_out || m->deadline_ms == 0) {
            continue;
        }
        if (m->deadline_ms > now) {
            break;
        }
        server_msg_timeout(sc, m);
    }
rearm:
    m = TAILQ_FIRST(&sc->out_q);
    if (m != NULL && m->timed_out && m->deadline_ms + m->timeout_ms <= now) {
        server_fail(sc, ETIMEDOUT);
        return;
    }
    server_rearm(sc);
}

void
server_event(int fd, short what, void *arg)
{
    struct server_conn *sc = arg;

    (void)fd;
    if (what & EV_TIMEOUT) {
        server_timer(sc);
        return;
    }
    if (sc->c.state == CONN_CONNECTING) {
        if (sc->c.handshaking) {
            server_tls_step(sc);
        } else {
            server_connected(sc);
        }
        return;
    }
    if (what & EV_WRITE) {
        server_flush(sc);
        if (sc->c.state != CONN_READY) {
            return;
        }
    }
    if ((what & EV_READ) && sc->c.state == CONN_READY) {
        server_read(sc);
    }
}
