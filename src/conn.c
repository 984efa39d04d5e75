/*
 * conn: what client and server conns share: the one event each socket
 * has, the state setter, reads and writes, the dirty lists, and the ctx's
 * free lists (read buffers and request-parse states lent to conns only
 * while they have bytes to parse, so an idle conn holds neither). Every
 * function here runs on the owning worker's thread; nothing is shared.
 */
#include "conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"

#define CONN_SPARE_BUFS_MAX 256
#define CONN_SPARE_STATES_MAX 256
/* Free chunks a worker keeps for the next large bodies, in bytes: a burst
   of large values leaves at most this much behind. */
#define CONN_CHUNKS_KEEP_BYTES (32u * 1024 * 1024)
/* iovecs of one read around a buffer: the body's chunks, then the buffer
   (CHAIN_READ_MAX in 16 KiB chunks takes 64). */
#define CONN_READ_IOV 256

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

/* The diagram of conn.h, as a table: legal[from] has a bit for each to. */
#define B(s) (1u << (s))
static const uint32_t conn_legal[CONN_STATE_COUNT] = {
    [CONN_ACTIVE] = B(CONN_THROTTLED) | B(CONN_DRAINING) | B(CONN_CLOSED),
    [CONN_AWAITING] = B(CONN_ACTIVE) | B(CONN_THROTTLED) | B(CONN_DRAINING) | B(CONN_CLOSED),
    [CONN_THROTTLED] = B(CONN_ACTIVE) | B(CONN_DRAINING) | B(CONN_CLOSED),
    [CONN_DRAINING] = B(CONN_CLOSED),
    [CONN_CLOSED] = 0,
    [CONN_DISCONNECTED] = B(CONN_CONNECTING),
    [CONN_CONNECTING] = B(CONN_READY) | B(CONN_DISCONNECTED),
    [CONN_READY] = B(CONN_DISCONNECTED),
};
#undef B

void
conn_set_state(struct conn *c, enum conn_state st)
{
    if (c->state == st) {
        return;
    }
    if ((conn_legal[c->state] & (1u << st)) == 0) {
        log_error("conn %" PRIu64 ": illegal state change %s -> %s", c->id,
                  conn_state_name(c->state), conn_state_name(st));
        abort();
    }
    log_verb("conn %" PRIu64 " %s -> %s", c->id, conn_state_name(c->state), conn_state_name(st));
    c->state = (uint8_t)st;
}

void
conn_ctx_init(struct conn_ctx *ctx, struct event_base *base, int worker_id, size_t mbuf_size)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->base = base;
    TAILQ_INIT(&ctx->dirty_servers);
    TAILQ_INIT(&ctx->dirty_clients);
    TAILQ_INIT(&ctx->closed);
    LIST_INIT(&ctx->refused);
    msg_cache_init(&ctx->msgs, mbuf_size);
    chain_pool_init(&ctx->chunks, mbuf_size, (uint32_t)MAX(CONN_CHUNKS_KEEP_BYTES / mbuf_size, 16));
    ctx->worker_id = worker_id;
    ctx->next_conn_id = ((uint64_t)worker_id << 48) + 1;
    ctx->mbuf_size = mbuf_size;
    ctx->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(worker_id + 1) * 0xBF58476D1CE4E5B9ULL);
    TAILQ_INIT(&ctx->handshakes);
    TAILQ_INIT(&ctx->paused);
}

void
conn_refused_end(struct conn_refused *r)
{
    int fd = event_get_fd(&r->ev);

    event_del(&r->ev);
    LIST_REMOVE(r, le);
    close(fd);
    free(r);
}

void
conn_ctx_destroy(struct conn_ctx *ctx)
{
    struct conn *c;

    /* Clients closed since the last turn's reap live in the slabs too. */
    while ((c = TAILQ_FIRST(&ctx->closed)) != NULL) {
        TAILQ_REMOVE(&ctx->closed, c, dirty_tqe);
    }
    if (ctx->hs_timer_ready) {
        evtimer_del(&ctx->hs_timer);
    }
    while (!LIST_EMPTY(&ctx->refused)) {
        conn_refused_end(LIST_FIRST(&ctx->refused));
    }
    msg_cache_destroy(&ctx->msgs);
    chain_pool_destroy(&ctx->chunks);
    buf_free(&ctx->scratch);
    names_free(&ctx->names);
    for (uint32_t i = 0; i < ctx->nspare; i++) {
        buf_free(&ctx->spare_bufs[i]->b);
        free(ctx->spare_bufs[i]);
    }
    free(ctx->spare_bufs);
    for (uint32_t i = 0; i < ctx->nstates; i++) {
        free(ctx->spare_states[i]);
    }
    free(ctx->spare_states);
    while (ctx->client_slabs != NULL) {
        void *slab = ctx->client_slabs;
        ctx->client_slabs = *(void **)slab;
        free(slab);
    }
    memset(ctx, 0, sizeof(*ctx));
}

static void
conn_set_events(struct conn *c, uint8_t events)
{
    if (c->fd < 0 || c->events == events) {
        return;
    }
    /* An event's flags change only while it is not added: del, assign,
       add. This happens at a short write and when it drains, not per
       request. */
    if (c->events != 0) {
        event_del(&c->ev);
    }
    c->events = events;
    if (events != 0) {
        event_assign(&c->ev, c->ctx->base, c->fd, (short)(events | EV_PERSIST),
                     event_get_callback(&c->ev), c);
        event_add(&c->ev, NULL);
    }
}

void
conn_attach(struct conn *c, int fd, event_callback_fn cb)
{
    c->fd = fd;
    c->events = 0;
    event_assign(&c->ev, c->ctx->base, fd, EV_PERSIST, cb, c);
}

/* conn_watch of a TLS conn: writability also while ciphertext waits, and
   a read now when OpenSSL holds bytes the socket will not announce. */
static void
conn_tls_watch(struct conn *c, uint8_t events)
{
    if (tls_out_pending(c->tls)) {
        events |= EV_WRITE;
    }
    conn_set_events(c, events);
    if ((events & EV_READ) && c->fd >= 0 && tls_in_pending(c->tls)) {
        event_active(&c->ev, EV_READ, 1);
    }
}

void
conn_watch_change(struct conn *c, uint8_t events)
{
    if (c->tls != NULL) {
        conn_tls_watch(c, events);
        return;
    }
    conn_set_events(c, events);
}

void
conn_close_fd(struct conn *c)
{
    if (c->tls != NULL) {
        tls_sock_free(c->tls, c->fd, !c->handshaking);
        c->tls = NULL;
    }
    if (c->events != 0) {
        event_del(&c->ev);
        c->events = 0;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* A buffer from the spare list, or a new empty one. */
static struct chain_in *
conn_borrow_buf(struct conn_ctx *ctx)
{
    if (ctx->nspare > 0) {
        return ctx->spare_bufs[--ctx->nspare];
    }
    return calloc(1, sizeof(struct chain_in));
}

/* conn_read of a TLS conn: decrypt into iov, as the plaintext read would
   have read into it: the buffer alone (buf_only), or chunks as well
   (chain_in_iov's, committed the same way). */
static ssize_t
conn_tls_read(struct conn *c, struct chain_in *in, struct iovec *iov, int niov, uint64_t *body,
              bool buf_only)
{
    ssize_t n = tls_readv(c->tls, iov, niov);

    if (n > 0) {
        if (buf_only) {
            in->b.end += (size_t)n;
        } else {
            *body = chain_in_commit(in, (size_t)n);
        }
        /* Bytes OpenSSL read ahead: the socket will not say so again. */
        if ((c->events & EV_READ) && tls_in_pending(c->tls)) {
            event_active(&c->ev, EV_READ, 1);
        }
    }
    return n;
}

ssize_t
conn_read(struct conn *c, struct chain_in **pin, uint64_t *body, bool ahead)
{
    struct iovec iov[CONN_READ_IOV];
    struct chain_in *in = *pin;
    size_t want;
    ssize_t n;
    int niov;

    *body = 0;
    if (in == NULL && (in = *pin = conn_borrow_buf(c->ctx)) == NULL) {
        return -ENOMEM;
    }
    if (in->left == 0 && in->spill_bytes == 0) {
        /* With less room than a quarter buffer (a header's, reading ahead),
           make room first: compacting, or growing when unparsed bytes fill
           it. */
        want = ahead ? CHAIN_HEAD_ROOM : c->ctx->mbuf_size / 4;
        if (in->b.cap - in->b.end < want && buf_reserve(&in->b, c->ctx->mbuf_size) != 0) {
            return -ENOMEM;
        }
    }
    if (in->left == 0 && in->spill_bytes == 0 && !ahead) {
        if (c->tls == NULL) {
            n = read(c->fd, in->b.data + in->b.end, in->b.cap - in->b.end);
        } else {
            iov[0] = (struct iovec){ in->b.data + in->b.end, in->b.cap - in->b.end };
            return conn_tls_read(c, in, iov, 1, body, true);
        }
        if (n > 0) {
            in->b.end += (size_t)n;
        }
    } else {
        if ((niov = chain_in_iov(in, &c->ctx->chunks, iov, (int)ARRAY_SIZE(iov), ahead)) == 0) {
            return -ENOMEM;
        }
        if (c->tls != NULL) {
            return conn_tls_read(c, in, iov, niov, body, false);
        }
        n = readv(c->fd, iov, niov);
        if (n > 0) {
            *body = chain_in_commit(in, (size_t)n);
        }
    }
    if (n > 0) {
        return n;
    }
    if (n == 0) {
        return 0;
    }
    return errno == EINTR || errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

void
conn_give_back_buf(struct conn_ctx *ctx, struct chain_in **pin)
{
    struct chain_in *in = *pin;

    if (in == NULL || !chain_in_empty(in)) {
        return;
    }
    *pin = NULL;
    chain_in_reset(in); /* chunks offered to a read that failed */
    /* Buffers that grew for a long request are not worth keeping. */
    if (in->b.cap > 2 * ctx->mbuf_size || ctx->nspare == CONN_SPARE_BUFS_MAX) {
        buf_free(&in->b);
        free(in);
        return;
    }
    if (ctx->nspare == ctx->spare_cap) {
        uint32_t cap = ctx->spare_cap ? ctx->spare_cap * 2 : 16;
        struct chain_in **nb = realloc(ctx->spare_bufs, cap * sizeof(*nb));
        if (nb == NULL) {
            buf_free(&in->b);
            free(in);
            return;
        }
        ctx->spare_bufs = nb;
        ctx->spare_cap = cap;
    }
    ctx->spare_bufs[ctx->nspare++] = in;
}

int
conn_writev(struct conn *c, const struct iovec *iov, int n, size_t *written)
{
    ssize_t w;

    *written = 0;
    if (c->tls != NULL) {
        return tls_writev(c->tls, c->fd, iov, n, written);
    }
    if (n == 0) {
        return 0;
    }
    do {
        w = writev(c->fd, iov, n);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
    *written = (size_t)w;
    return 0;
}

/* Clients per slab: a slab is one malloc of about 16 KiB. */
#define CONN_CLIENTS_PER_SLAB 64

/* A slab: the link to the next slab, then its clients. */
struct conn_client_slab {
    void *next;
    struct client clients[CONN_CLIENTS_PER_SLAB];
};

struct client *
conn_client_get(struct conn_ctx *ctx)
{
    struct client *c = ctx->free_clients;

    if (c == NULL) {
        struct conn_client_slab *slab = malloc(sizeof(*slab));
        if (slab == NULL) {
            return NULL;
        }
        slab->next = ctx->client_slabs;
        ctx->client_slabs = slab;
        for (size_t i = CONN_CLIENTS_PER_SLAB; i-- > 0;) {
            conn_client_put(ctx, &slab->clients[i]);
        }
        c = ctx->free_clients;
    }
    ctx->free_clients = *(struct client **)c;
    return c;
}

void
conn_client_put(struct conn_ctx *ctx, struct client *c)
{
    *(struct client **)c = ctx->free_clients; /* the free list runs through them */
    ctx->free_clients = c;
}

void *
conn_state_get(struct conn_ctx *ctx)
{
    void *s;

    if (ctx->nstates > 0) {
        s = ctx->spare_states[--ctx->nstates];
        return s;
    }
    return malloc(ctx->state_size);
}

void
conn_state_put(struct conn_ctx *ctx, void *s)
{
    if (s == NULL) {
        return;
    }
    if (ctx->nstates == CONN_SPARE_STATES_MAX) {
        free(s);
        return;
    }
    if (ctx->nstates == ctx->states_cap) {
        uint32_t cap = ctx->states_cap ? ctx->states_cap * 2 : 16;
        void **ns = realloc(ctx->spare_states, cap * sizeof(*ns));
        if (ns == NULL) {
            free(s);
            return;
        }
        ctx->spare_states = ns;
        ctx->states_cap = cap;
    }
    ctx->spare_states[ctx->nstates++] = s;
}
