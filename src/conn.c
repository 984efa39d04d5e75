/*
 * conn: sockets, buffers and queues of one worker's connections (see
 * conn.h for the queue picture). Every function here runs on the owning
 * worker's thread; nothing is shared.
 *
 * Writes gather many msgs into one writev. A client conn writes only the
 * done msgs at the head of its queue, so replies leave in request order no
 * matter in which order servers answered. A server conn writes its in_q
 * and moves each fully written msg to out_q, where it waits for its reply.
 */
#include "conn.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

#define CONN_IOV_MAX 128

static const char *const conn_state_names[] = {
#define CONN_STATE_NAME(s) #s,
    CONN_STATE_LIST(CONN_STATE_NAME)
#undef CONN_STATE_NAME
};

const char *
conn_state_name(enum conn_state st)
{
    return st < CONN_STATE_COUNT ? conn_state_names[st] : "?";
}

void
conn_ctx_init(struct conn_ctx *ctx, struct event_base *base, int worker_id,
              size_t mbuf_size, uint64_t max_request_size)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->base = base;
    TAILQ_INIT(&ctx->dirty_servers);
    TAILQ_INIT(&ctx->dirty_clients);
    TAILQ_INIT(&ctx->closed);
    msg_cache_init(&ctx->msgs, mbuf_size);
    ctx->worker_id = worker_id;
    ctx->next_conn_id = ((uint64_t)worker_id << 48) + 1;
    ctx->mbuf_size = mbuf_size;
    ctx->max_request_size = max_request_size;
    ctx->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(worker_id + 1) * 0xBF58476D1CE4E5B9ULL);
}

void
conn_ctx_destroy(struct conn_ctx *ctx)
{
    conn_ctx_reap(ctx);
    msg_cache_destroy(&ctx->msgs);
    buf_free(&ctx->scratch);
    for (uint32_t i = 0; i < ctx->nspare; i++) {
        buf_free(&ctx->spare_bufs[i]);
    }
    free(ctx->spare_bufs);
    ctx->spare_bufs = NULL;
    ctx->nspare = ctx->spare_cap = 0;
}

#define CONN_SPARE_MAX 256

void
conn_release_inbuf(struct conn *c)
{
    struct conn_ctx *ctx = c->ctx;

    if (c->in.data == NULL || buf_len(&c->in) > 0) {
        return;
    }
    /* Buffers that grew for a large value are not worth keeping. */
    if (c->in.cap > 2 * ctx->mbuf_size || ctx->nspare == CONN_SPARE_MAX) {
        buf_free(&c->in);
        return;
    }
    if (ctx->nspare == ctx->spare_cap) {
        uint32_t cap = ctx->spare_cap ? ctx->spare_cap * 2 : 16;
        struct buf *b = realloc(ctx->spare_bufs, cap * sizeof(*b));
        if (b == NULL) {
            buf_free(&c->in);
            return;
        }
        ctx->spare_bufs = b;
        ctx->spare_cap = cap;
    }
    buf_reset(&c->in);
    ctx->spare_bufs[ctx->nspare++] = c->in;
    memset(&c->in, 0, sizeof(c->in));
}

void
conn_set_state(struct conn *c, enum conn_state st)
{
    if (c->state != st) {
        log_verb("conn %" PRIu64 " %s -> %s", c->id, conn_state_name(c->state),
                 conn_state_name(st));
        c->state = st;
    }
}

static void
conn_setup_events(struct conn *c, event_callback_fn cb)
{
    event_assign(&c->rev, c->ctx->base, c->fd, EV_READ | EV_PERSIST, cb, c);
    event_assign(&c->wev, c->ctx->base, c->fd, EV_WRITE | EV_PERSIST, cb, c);
    c->events_set = true;
    c->reading = false;
    c->writing = false;
}

struct conn *
conn_client_new(struct conn_ctx *ctx, int fd, event_callback_fn cb)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->ctx = ctx;
    c->kind = CONN_CLIENT;
    c->state = CONN_ACTIVE;
    c->fd = fd;
    c->id = ctx->next_conn_id++;
    TAILQ_INIT(&c->q);
    TAILQ_INIT(&c->in_q);
    TAILQ_INIT(&c->out_q);
    conn_setup_events(c, cb);
    conn_set_reading(c, true);
    return c;
}

void
conn_server_init(struct conn *c, struct conn_ctx *ctx, struct pool_server *s)
{
    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    c->kind = CONN_SERVER;
    c->state = CONN_DISCONNECTED;
    c->fd = -1;
    c->id = ctx->next_conn_id++;
    c->server = s;
    TAILQ_INIT(&c->q);
    TAILQ_INIT(&c->in_q);
    TAILQ_INIT(&c->out_q);
}

void
conn_server_attach(struct conn *c, int fd, event_callback_fn cb)
{
    c->fd = fd;
    conn_setup_events(c, cb);
    conn_set_state(c, CONN_CONNECTING);
    /* Writability tells when the connect finished, either way. */
    event_add(&c->wev, NULL);
    c->writing = true;
}

void
conn_set_reading(struct conn *c, bool on)
{
    if (!c->events_set || c->reading == on) {
        return;
    }
    if (on) {
        event_add(&c->rev, NULL);
    } else {
        event_del(&c->rev);
    }
    c->reading = on;
}

static void
conn_set_writing(struct conn *c, bool on)
{
    if (!c->events_set || c->writing == on) {
        return;
    }
    if (on) {
        event_add(&c->wev, NULL);
    } else {
        event_del(&c->wev);
    }
    c->writing = on;
}

ssize_t
conn_read(struct conn *c)
{
    size_t want = c->ctx->mbuf_size;

    if (c->in.data == NULL && c->ctx->nspare > 0) {
        c->in = c->ctx->spare_bufs[--c->ctx->nspare];
    }
    if (buf_reserve(&c->in, want) != 0) {
        return -ENOMEM;
    }
    size_t room = c->in.cap - c->in.end;
    ssize_t n = read(c->fd, c->in.data + c->in.end, room);
    if (n > 0) {
        c->in.end += (size_t)n;
        return n;
    }
    if (n == 0) {
        return 0;
    }
    return errno == EINTR ? -EAGAIN : -errno;
}

void
conn_mark_dirty(struct conn *c)
{
    if (c->dirty || c->state == CONN_CLOSED) {
        return;
    }
    c->dirty = true;
    if (c->kind == CONN_SERVER) {
        TAILQ_INSERT_TAIL(&c->ctx->dirty_servers, c, dirty_tqe);
    } else {
        TAILQ_INSERT_TAIL(&c->ctx->dirty_clients, c, dirty_tqe);
    }
}

void
conn_msg_release(struct conn_ctx *ctx, struct msg *m)
{
    if (m->client != NULL || m->server != NULL || m->parent != NULL) {
        return;
    }
    for (uint32_t i = 0; i < m->nfrags; i++) {
        struct msg *f = m->frags[i];
        if (f != NULL) {
            f->parent = NULL;
            conn_msg_release(ctx, f);
        }
    }
    msg_put(&ctx->msgs, m);
}

void
conn_server_unqueue(struct conn *s, struct msg *m)
{
    TAILQ_REMOVE(&s->in_q, m, s_tqe);
    s->nin--;
    m->server = NULL;
    stats_add(&s->st->f[STATS_S_in_queue], -1);
    stats_add(&s->st->f[STATS_S_in_queue_bytes], -(int64_t)buf_len(&m->req));
}

void
conn_server_enqueue(struct conn *s, struct msg *m, bool at_head)
{
    size_t n = buf_len(&m->req);

    m->server = s;
    if (at_head) {
        TAILQ_INSERT_HEAD(&s->in_q, m, s_tqe);
    } else {
        TAILQ_INSERT_TAIL(&s->in_q, m, s_tqe);
    }
    s->nin++;
    stats_add(&s->st->f[STATS_S_requests], 1);
    stats_add(&s->st->f[STATS_S_request_bytes], (int64_t)n);
    stats_add(&s->st->f[STATS_S_in_queue], 1);
    stats_add(&s->st->f[STATS_S_in_queue_bytes], (int64_t)n);
}

struct msg *
conn_server_pop_reply(struct conn *s, size_t rsp_bytes)
{
    struct msg *m = TAILQ_FIRST(&s->out_q);

    TAILQ_REMOVE(&s->out_q, m, s_tqe);
    s->nout--;
    m->server = NULL;
    stats_add(&s->st->f[STATS_S_out_queue], -1);
    stats_add(&s->st->f[STATS_S_out_queue_bytes], -(int64_t)buf_len(&m->req));
    stats_add(&s->st->f[STATS_S_responses], 1);
    stats_add(&s->st->f[STATS_S_response_bytes], (int64_t)rsp_bytes);
    return m;
}

struct msg *
conn_server_pop_any(struct conn *s)
{
    struct msg *m;

    if ((m = TAILQ_FIRST(&s->out_q)) != NULL) {
        TAILQ_REMOVE(&s->out_q, m, s_tqe);
        s->nout--;
        m->server = NULL;
        stats_add(&s->st->f[STATS_S_out_queue], -1);
        stats_add(&s->st->f[STATS_S_out_queue_bytes], -(int64_t)buf_len(&m->req));
    } else if ((m = TAILQ_FIRST(&s->in_q)) != NULL) {
        conn_server_unqueue(s, m);
    }
    return m;
}

static int
conn_writev(struct conn *c, struct iovec *iov, int iovcnt, size_t *written)
{
    ssize_t n;

    *written = 0;
    if (iovcnt == 0) {
        return 0;
    }
    do {
        n = writev(c->fd, iov, iovcnt);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
    *written = (size_t)n;
    return 0;
}

static int
conn_flush_server(struct conn *c)
{
    struct iovec iov[CONN_IOV_MAX];
    size_t total, written;
    int n, rc;
    struct msg *m;

    if (c->state != CONN_READY) {
        return 0;
    }
    for (;;) {
        n = 0;
        total = 0;
        TAILQ_FOREACH(m, &c->in_q, s_tqe) {
            if (n == CONN_IOV_MAX) {
                break;
            }
            iov[n].iov_base = buf_head(&m->req) + m->req_sent;
            iov[n].iov_len = buf_len(&m->req) - m->req_sent;
            total += iov[n].iov_len;
            n++;
        }
        if (n == 0) {
            conn_set_writing(c, false);
            return 0;
        }
        rc = conn_writev(c, iov, n, &written);
        if (rc != 0) {
            return rc;
        }
        while (written > 0 && (m = TAILQ_FIRST(&c->in_q)) != NULL) {
            size_t left = buf_len(&m->req) - m->req_sent;
            if (written < left) {
                m->req_sent += written;
                break;
            }
            written -= left;
            m->req_sent += left;
            size_t bytes = buf_len(&m->req);
            TAILQ_REMOVE(&c->in_q, m, s_tqe);
            c->nin--;
            TAILQ_INSERT_TAIL(&c->out_q, m, s_tqe);
            c->nout++;
            stats_add(&c->st->f[STATS_S_in_queue], -1);
            stats_add(&c->st->f[STATS_S_in_queue_bytes], -(int64_t)bytes);
            stats_add(&c->st->f[STATS_S_out_queue], 1);
            stats_add(&c->st->f[STATS_S_out_queue_bytes], (int64_t)bytes);
        }
        if (TAILQ_EMPTY(&c->in_q)) {
            conn_set_writing(c, false);
            return 0;
        }
        if (written < total) {
            /* Short write: the socket is full; wait for EV_WRITE. */
            conn_set_writing(c, true);
            return 0;
        }
    }
}

/* m's reply is written: its latency, per pool and per server. */
static void
conn_observe(struct conn *c, const struct msg *m, uint64_t now)
{
    uint64_t us = now > m->start_usec ? now - m->start_usec : 0;

    if (m->local || m->start_usec == 0) {
        return;
    }
    stats_hist_observe(&c->pst->hist, us);
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

static int
conn_flush_client(struct conn *c)
{
    uint64_t now = util_mono_usec();
    struct iovec iov[CONN_IOV_MAX];
    size_t total, written;
    int n, rc;
    struct msg *m;

    for (;;) {
        n = 0;
        total = 0;
        TAILQ_FOREACH(m, &c->q, c_tqe) {
            if (!m->done || n == CONN_IOV_MAX) {
                break;
            }
            size_t left = buf_len(&m->rsp) - m->rsp_sent;
            if (left == 0) {
                continue;
            }
            iov[n].iov_base = buf_head(&m->rsp) + m->rsp_sent;
            iov[n].iov_len = left;
            total += left;
            n++;
        }
        rc = conn_writev(c, iov, n, &written);
        if (rc != 0) {
            return rc;
        }
        bool short_write = written < total;
        /* Free what was written, and done msgs with nothing to write. */
        while ((m = TAILQ_FIRST(&c->q)) != NULL && m->done) {
            size_t left = buf_len(&m->rsp) - m->rsp_sent;
            if (written < left) {
                m->rsp_sent += written;
                written = 0;
                break;
            }
            written -= left;
            bool close_after = m->close_after;
            TAILQ_REMOVE(&c->q, m, c_tqe);
            c->nq--;
            c->pending_bytes -= MIN(c->pending_bytes, buf_len(&m->rsp));
            conn_observe(c, m, now);
            m->client = NULL;
            conn_msg_release(c->ctx, m);
            if (close_after) {
                /* quit or a framing error: the caller closes the conn. */
                conn_set_writing(c, false);
                return -ECONNABORTED;
            }
        }
        m = TAILQ_FIRST(&c->q);
        if (m == NULL || !m->done) {
            conn_set_writing(c, false);
            return 0;
        }
        if (short_write) {
            /* The socket is full; wait for EV_WRITE. */
            conn_set_writing(c, true);
            return 0;
        }
    }
}

int
conn_flush(struct conn *c)
{
    if (c->fd < 0 || c->state == CONN_CLOSED) {
        return 0;
    }
    return c->kind == CONN_SERVER ? conn_flush_server(c) : conn_flush_client(c);
}

void
conn_close_socket(struct conn *c)
{
    if (c->events_set) {
        event_del(&c->rev);
        event_del(&c->wev);
        c->events_set = false;
        c->reading = false;
        c->writing = false;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    buf_free(&c->in);
    memset(&c->sock, 0, sizeof(c->sock));
}

void
conn_client_close(struct conn *c)
{
    if (c->state == CONN_CLOSED) {
        return;
    }
    conn_close_socket(c);
    if (c->dirty) {
        TAILQ_REMOVE(&c->ctx->dirty_clients, c, dirty_tqe);
        c->dirty = false;
    }
    c->state = CONN_CLOSED;
    TAILQ_INSERT_TAIL(&c->ctx->closed, c, dirty_tqe);
}

void
conn_ctx_reap(struct conn_ctx *ctx)
{
    struct conn *c;

    while ((c = TAILQ_FIRST(&ctx->closed)) != NULL) {
        TAILQ_REMOVE(&ctx->closed, c, dirty_tqe);
        free(c);
    }
}
