/*
 * conn: one socket of a worker, client or server side, and the worker's
 * runtime context that all its conns share (struct conn_ctx).
 *
 * A client conn keeps its requests in arrival order on q; replies are
 * written strictly in that order as soon as the head is done. A server conn
 * keeps requests not yet written on in_q and written ones awaiting a reply
 * on out_q; replies pair FIFO with the head of out_q.
 *
 *   client q:  m1(done) m2(waiting) m3(done)   -> writes m1, stops at m2
 *   server:    in_q: m7 m8 --writev--> out_q: m4 m5 m6 <--reply-- pairs m4
 *
 * conn does I/O and bookkeeping only. The event callbacks (what a readable
 * socket means) belong to route, which passes them in; conn never calls up.
 * Writes are not done in the callbacks: a conn with something to send goes
 * on its ctx's dirty list and the worker flushes every dirty conn once at
 * the end of each loop turn, so requests of many clients to one server
 * leave in one writev. EV_WRITE is armed only after a short write.
 */
#ifndef CMX_CONN_H
#define CMX_CONN_H

#include <event2/event.h>
#include <event2/event_struct.h> /* events are embedded: no malloc per conn event */
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"
#include "msg.h"
#include "proto_redis.h"
#include "stats.h"

struct pool;
struct pool_server;

#define CONN_STATE_LIST(X)                                                 \
    X(CONN_DISCONNECTED) /* server: no socket; connects when next needed */ \
    X(CONN_CONNECTING)   /* server: connect in progress */                  \
    X(CONN_READY)        /* server: connected, writable */                  \
    X(CONN_ACTIVE)       /* client: reading requests */                     \
    X(CONN_DRAINING)     /* client: no more reads; closes once q is empty */ \
    X(CONN_CLOSED)       /* client: closed, freed at the end of the turn */

#define CONN_STATE_ENUM(s) s,
enum conn_state { CONN_STATE_LIST(CONN_STATE_ENUM) CONN_STATE_COUNT };
#undef CONN_STATE_ENUM

enum conn_kind { CONN_CLIENT, CONN_SERVER };

/*
 * Backpressure: a client conn stops being read while it has this many
 * requests in flight or this many reply bytes unsent, and is read again
 * below half of both, so a client that pipelines without reading cannot
 * make the proxy buffer without bound.
 */
#define CONN_CLIENT_MAX_INFLIGHT 256
#define CONN_CLIENT_MAX_PENDING_BYTES (8u * 1024 * 1024)

struct conn;
TAILQ_HEAD(conn_tqh, conn);

/*
 * What belongs to one server socket and must die with it. A socket that
 * fails in the middle of a reply leaves a parse position, a byte count and
 * perhaps a deadline behind; conn_close_socket() zeroes this struct whole,
 * so the next socket's bytes are never read against the dead one's state.
 * The other per-socket parts of a conn are reset in the same place: fd and
 * events, the read buffer (freed), the dirty-list entry and the timer
 * (route_server_reset), and the msgs the socket carried (failed by
 * route_server_fail, or none when an idle socket closes).
 */
struct conn_sock {
    uint64_t connect_deadline_ms;   /* CONNECTING: give up then */
    uint64_t reply_bytes;           /* bytes of the reply being read (max_reply_size) */
    bool rrsp_active;               /* redis: rrsp holds a partial parse */
    struct redis_rsp rrsp;          /* redis: resumable reply parse */
};

/* One worker's runtime, shared by all of its conns (never by two threads). */
struct conn_ctx {
    struct event_base *base;
    struct conn_tqh dirty_servers;  /* server conns with requests to write */
    struct conn_tqh dirty_clients;  /* client conns with replies to write */
    struct conn_tqh closed;         /* closed client conns, freed after the turn */
    struct msg_cache msgs;
    int worker_id;
    uint64_t next_conn_id;
    uint64_t max_request_size;
    uint64_t client_output_limit;   /* reply bytes one client may leave unread */
    uint64_t max_reply_size;        /* bytes of one reply from a server */
    uint64_t drain_timeout_ms;      /* a removed pool's clients are closed after this */
    size_t mbuf_size;
    uint64_t rng;                   /* per-worker PRNG state (random distribution) */
    struct buf scratch;             /* short-lived bytes of one step (an inline request) */
    struct buf *spare_bufs;         /* read buffers lent to conns with bytes pending */
    uint32_t nspare, spare_cap;
    bool stopping;                  /* graceful stop in progress */
    struct stats_worker *wst;       /* this worker's own counters */
};

struct conn {
    TAILQ_ENTRY(conn) dirty_tqe;    /* on dirty_servers / dirty_clients / closed */
    TAILQ_ENTRY(conn) pool_tqe;     /* client: on its pool's client list */
    struct conn_ctx *ctx;
    enum conn_kind kind;
    enum conn_state state;
    int fd;
    uint64_t id;
    struct event rev;               /* EV_READ|EV_PERSIST */
    struct event wev;               /* EV_WRITE|EV_PERSIST, armed after a short write */
    bool events_set;
    bool reading;                   /* rev is added */
    bool writing;                   /* wev is added */
    bool dirty;                     /* on a dirty list */
    struct buf in;                  /* bytes read, not yet parsed */
    struct pool *pool;
    /* client */
    struct msg_tqh q;               /* requests in arrival order */
    uint32_t nq;
    bool eof;                       /* peer sent EOF */
    bool throttled;                 /* not read until replies drain */
    bool wait_first;                /* accepted while stopping: serve its first request */
    uint8_t close_reason;           /* DRAINING: why it closes (enum stats_client_close) */
    bool got_request;               /* has sent at least one request */
    struct stats_pool *pst;         /* its pool's counters in this worker */
    size_t pending_bytes;           /* reply bytes done but not yet written */
    bool authed;                    /* redis: AUTH succeeded (redis_auth pools) */
    bool rreq_active;               /* redis: rreq holds a partial parse */
    struct redis_req rreq;          /* redis: resumable request parse */
    char peer[64];
    /* server */
    struct pool_server *server;
    struct stats_server *st;        /* the server's counters in this worker */
    struct msg_tqh in_q;            /* queued, not yet fully written */
    struct msg_tqh out_q;           /* written, awaiting their replies */
    uint32_t nin, nout;
    struct event tev;               /* the oldest request's deadline (or connect's) */
    struct conn_sock sock;          /* state of the current socket only */
};

void conn_ctx_init(struct conn_ctx *ctx, struct event_base *base, int worker_id,
                   size_t mbuf_size, uint64_t max_request_size);
void conn_ctx_destroy(struct conn_ctx *ctx);

/* A client conn around an accepted fd, reading with cb(arg = conn). NULL if
   out of memory (fd is then closed). */
struct conn *conn_client_new(struct conn_ctx *ctx, int fd, event_callback_fn cb);

/* Set up an embedded server conn (no socket yet). */
void conn_server_init(struct conn *c, struct conn_ctx *ctx, struct pool_server *s);

/* Give a server conn its connecting fd; events call cb. */
void conn_server_attach(struct conn *c, int fd, event_callback_fn cb);

/* Read once into c->in. Returns bytes read, 0 on EOF, -EAGAIN, or -errno. */
ssize_t conn_read(struct conn *c);

/* Give c's read buffer back to the ctx when it holds no bytes, so an idle
   conn holds no buffer memory. */
void conn_release_inbuf(struct conn *c);

/* Over the backpressure limits (stop parsing), below the resume mark. */
static inline bool
conn_client_throttled(const struct conn *c)
{
    return c->nq >= CONN_CLIENT_MAX_INFLIGHT || c->pending_bytes >= CONN_CLIENT_MAX_PENDING_BYTES;
}

static inline bool
conn_client_may_resume(const struct conn *c)
{
    return c->nq < CONN_CLIENT_MAX_INFLIGHT / 2 &&
           c->pending_bytes < CONN_CLIENT_MAX_PENDING_BYTES / 2;
}

/* Start or stop watching for readability. */
void conn_set_reading(struct conn *c, bool on);

/* Put c on its ctx's dirty list (idempotent). */
void conn_mark_dirty(struct conn *c);

/* Queue m on server conn s (at the head for a handshake), counting it. */
void conn_server_enqueue(struct conn *s, struct msg *m, bool at_head);

/* Take the head of s's out_q, whose reply of rsp_bytes just came. */
struct msg *conn_server_pop_reply(struct conn *s, size_t rsp_bytes);

/* Take any msg off s (out_q first, then in_q), or NULL: for failing it. */
struct msg *conn_server_pop_any(struct conn *s);

/*
 * Write what c has: a server conn writes in_q (moving written msgs to
 * out_q); a client conn writes done replies at the head of q and frees them.
 * Returns 0, or -errno when the socket failed (the caller fails the conn).
 */
int conn_flush(struct conn *c);

/* Change state, logging the transition at debug level. */
void conn_set_state(struct conn *c, enum conn_state st);
const char *conn_state_name(enum conn_state st);

/* Remove events and close the fd (server conns stay reusable). */
void conn_close_socket(struct conn *c);

/* Close a client conn: its msgs must have been handed off already.
   The struct is freed at the end of the loop turn (conn_ctx_reap). */
void conn_client_close(struct conn *c);

/* Free the closed client conns of this turn. */
void conn_ctx_reap(struct conn_ctx *ctx);

/*
 * One holder of m let go. A msg is held by its client (m->client, while on
 * the client queue), its server conn (m->server, while queued there) and,
 * for a fragment, its parent (m->parent). It is freed when none holds it
 * any more; a freed parent lets go of its fragments. This is what keeps a
 * timed-out request alive as a tombstone in its server queue after its
 * error reply was written.
 */
void conn_msg_release(struct conn_ctx *ctx, struct msg *m);

/* Take m (not yet written at all) off s's in_q. */
void conn_server_unqueue(struct conn *s, struct msg *m);

#endif
