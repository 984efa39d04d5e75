/*
 * conn: the sockets of one worker, client and server side, the worker's
 * runtime context they share (struct conn_ctx), and the ops of the
 * protocol a conn speaks (struct proto_ops).
 *
 * A client conn keeps its requests in arrival order on q; replies are
 * written strictly in that order as soon as the head is done. A server conn
 * keeps requests not yet written on in_q and written ones awaiting a reply
 * on out_q; replies pair FIFO with the head of out_q.
 *
 *   client q:  m1(done) m2(waiting) m3(done)   -> writes m1, stops at m2
 *   server:    in_q: m7 m8 --writev--> out_q: m4 m5 m6 <--reply-- pairs m4
 *
 * Writes are not done in the event callbacks: a conn with something to send
 * goes on its ctx's dirty list and the worker flushes every dirty conn once
 * at the end of each loop turn, so requests of many clients to one server
 * leave in one writev. A conn has one event: readability while it reads,
 * plus writability only after a short write.
 *
 * Lifecycle. Every state change goes through conn_set_state(), which logs
 * it and checks it against this diagram:
 *
 *   client:  (accept) --> AWAITING --first request--> ACTIVE <--> THROTTLED
 *                           |                          |   (over / back under
 *                           |                          |    the backpressure
 *                           |                          v    limits)
 *                           +------------------> DRAINING --> CLOSED
 *   AWAITING: no request yet; a stop or a         (reads no more: EOF, quit,
 *   pool's removal keeps it for its first          a framing error, stop,
 *   request, within a grace                        pool removed; closes once
 *   (CLIENT_FIRST_REQUEST_GRACE_MS)                its replies are written)
 *
 *   server:  DISCONNECTED --> CONNECTING --> READY --> DISCONNECTED
 *                   ^              |                     (failure, idle EOF,
 *                   +--------------+                      retired)
 *
 * A client closes through client_close() only, with a reason (counted per
 * pool as cachemux_client_closed_total{reason}); a server conn's socket
 * closes through server_close() only, likewise per server.
 */
#ifndef CMX_CONN_H
#define CMX_CONN_H

#include <event2/event.h>
#include <event2/event_struct.h> /* events are embedded: no malloc per conn event */
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "buf.h"
#include "chain.h"
#include "names.h"
#include "msg.h"
#include "proto.h"
#include "reply.h"
#include "stats.h"

struct pool;
struct pool_server;
struct client;
struct server_conn;

#define CONN_STATE_LIST(X)                                                                  \
    X(CONN_ACTIVE)       /* client: reading and serving requests */                         \
    X(CONN_AWAITING)     /* client: accepted, no request yet */                             \
    X(CONN_THROTTLED)    /* client: over a backpressure limit; not read until below half */ \
    X(CONN_DRAINING)     /* client: reads no more; closes once its replies are written */   \
    X(CONN_CLOSED)       /* client: closed, freed at the end of the turn */                 \
    X(CONN_DISCONNECTED) /* server: no socket; connects when next needed */                 \
    X(CONN_CONNECTING)   /* server: connect in progress */                                  \
    X(CONN_READY)        /* server: connected */

#define CONN_STATE_ENUM(s) s,
enum conn_state { CONN_STATE_LIST(CONN_STATE_ENUM) CONN_STATE_COUNT };
#undef CONN_STATE_ENUM

enum conn_kind { CONN_CLIENT, CONN_SERVER };
/* struct conn keeps the kind in one bit beside the fd. */
_Static_assert(CONN_SERVER <= 1, "conn_kind no longer fits conn.kind's bit");

/*
 * Backpressure: a client conn stops being read while it has this many
 * requests in flight or this many reply bytes unsent, and is read again
 * below half of both, so a client that pipelines without reading cannot
 * make the proxy buffer without bound.
 */
#define CONN_CLIENT_MAX_INFLIGHT 256
#define CONN_CLIENT_MAX_PENDING_BYTES (8u * 1024 * 1024)

/*
 * The runtime half of a protocol (the pure half is its proto_wire). A
 * client conn and a server conn each hold a pointer to the ops they speak.
 */
struct proto_ops {
    const char *name;
    const struct proto_wire *wire;
    /*
     * Server conn sets. A protocol family whose clients may switch between
     * versions (Redis: RESP2 and RESP3, by HELLO) gives each version its
     * own server conns, so replies need no translation: sets[0..nsets) are
     * the family's ops (nsets 0: one set, this), set is this one's index,
     * and conn_label names the set in /metrics (NULL: one set, no label).
     */
    const struct proto_ops *const *sets;
    uint8_t nsets;
    uint8_t set;
    const char *conn_label;
    /* What a client over client_connections is told before it is closed. */
    const char *full_reply;
    /* Bytes of resumable request-parse state a client keeps while a request
       is incomplete (0: the parser needs none). */
    size_t req_state_size;
    /*
     * Parse the request at buf[0..len) of c (state: its parse state, zeroed
     * for each new request) and serve it: queue a local reply, forward it,
     * or split it. Returns the bytes consumed (> 0), 0 when the request is
     * incomplete, or -1 when c stopped reading (a closing error or quit:
     * its reply and the drain are queued).
     */
    ssize_t (*request)(struct client *c, void *state, const uint8_t *buf, size_t len);
    /*
     * After request() found the request incomplete: how many bytes of the
     * body it is in are still to come after buf[0..len) and may be read
     * around the buffer (chain.h); 0 when none, or when the body must stay
     * in the buffer (a key the request is routed by). NULL: never.
     */
    uint64_t (*req_body_left)(struct client *c, void *state, const uint8_t *buf, size_t len);
    /* n of those bytes were read around the buffer. NULL: request() learns
       it from the client's read buffer (c->in->holes.bytes). */
    void (*req_body_skip)(void *state, uint64_t n);
    /* Make a parse state borrowed from the worker ready for a first
       request; ready for the next request, keeping what it allocated; and
       release what it allocated (before it goes back to the worker). NULL
       when the protocol needs no state. */
    void (*req_state_init)(void *state);
    void (*req_state_reset)(void *state);
    void (*req_state_free)(void *state);
    /* A server conn just connected: queue what must precede any request
       (AUTH, SELECT) at the head of its in_q. NULL when nothing does.
       Returns 0 or -errno. */
    int (*server_open)(struct server_conn *s);
    /* The reply to such a handshake request came (in m->rsp): 0 if it
       succeeded, else -EACCES (logged by the protocol with the reason). */
    int (*handshake_reply)(struct server_conn *s, const struct msg *m);
    /* A request's whole reply came from s (in m->rsp), before it is
       delivered: what the protocol learns or counts from it. NULL: none. */
    void (*replied)(struct server_conn *s, const struct msg *m);
};

struct conn;
struct listener;
struct tls_sock;
struct ssl_session_st;
TAILQ_HEAD(conn_tqh, conn);
TAILQ_HEAD(listener_tqh, listener);

/* One worker's runtime, shared by all of its conns (never by two threads). */
/* A connection refused at accept (client_connections): its error is
   written and its write side shut, and what the client still sends is read
   and dropped until EOF, a byte budget or a timer, so the client reads the
   error rather than a reset (client.c). It holds no client struct and
   counts as no client. */
struct conn_refused {
    struct event ev;
    LIST_ENTRY(conn_refused) le;
    size_t drained;
};
LIST_HEAD(conn_refused_list, conn_refused);

struct conn_ctx {
    struct event_base *base;
    struct conn_tqh dirty_servers; /* server conns with requests to write */
    struct conn_tqh dirty_clients; /* client conns with replies to write */
    struct conn_tqh closed;        /* closed client conns, freed after the turn */
    struct msg_cache msgs;
    int worker_id;
    uint64_t next_conn_id;
    uint64_t max_request_size;
    uint64_t client_output_limit; /* reply bytes one client may leave unread */
    uint64_t max_reply_size;      /* bytes of one reply from a server */
    uint64_t drain_timeout_ms;    /* a removed pool's clients are closed after this */
    size_t mbuf_size;
    uint64_t rng;                 /* per-worker PRNG state (random distribution) */
    struct buf scratch;           /* short-lived bytes of one step (an inline request) */
    struct chain_pool chunks;     /* chunks of large bodies (chain.h) */
    struct chain_in **spare_bufs; /* read buffers lent to conns with bytes pending */
    uint32_t nspare, spare_cap;
    void **spare_states; /* request-parse states lent to clients mid-request */
    uint32_t nstates, states_cap;
    size_t state_size;           /* the largest req_state_size of the protocols in use */
    struct client *free_clients; /* client structs not in use, from the slabs */
    void *client_slabs;          /* blocks of client structs, kept until exit */
    bool stopping;               /* graceful stop in progress */
    struct stats_worker *wst;    /* this worker's own counters */
    /* Every worker's counters (read with relaxed loads) and their number,
       for the answers the proxy gives about itself (INFO, memcached stats). */
    const struct stats_worker *all_wst;
    int nworkers;
    uint64_t start_ms; /* when the worker started (uptime) */
    /* TLS handshakes with clients in progress (on dirty_tqe: a client in
       its handshake has nothing to write), oldest first, and the timer
       for the oldest one's deadline (client.c). */
    struct conn_tqh handshakes;
    uint32_t nhandshakes;
    uint32_t max_handshakes;       /* tls_max_handshakes */
    uint64_t handshake_timeout_ms; /* tls_handshake_timeout */
    struct event hs_timer;
    bool hs_timer_ready;              /* hs_timer is assigned */
    struct listener_tqh paused;       /* TLS listeners paused at max_handshakes */
    struct conn_refused_list refused; /* refused conns lingering */
    struct names names;               /* the clients' CLIENT SETNAME names */
};

/* The part of a conn every socket has. */
struct conn {
    struct event ev;             /* EV_READ while reading, | EV_WRITE while a write waits */
    TAILQ_ENTRY(conn) dirty_tqe; /* on dirty_servers / dirty_clients / closed */
    struct conn_ctx *ctx;
    uint64_t id;
    int fd;
    uint8_t state;        /* enum conn_state */
    uint8_t events;       /* EV_READ / EV_WRITE the event is added with */
    uint8_t tls_version;  /* 0: plaintext (or kTLS done), else STATS_TLS_v12/v13 + 1 */
    uint8_t kind : 1;     /* enum conn_kind (bits: with fd, 8 bytes, no padding) */
    bool dirty : 1;       /* on a dirty list */
    bool handshaking : 1; /* TLS handshake in progress */
    struct tls_sock *tls; /* the socket's TLS (NULL: plaintext); dies with the socket */
};

struct client {
    struct conn c;
    TAILQ_ENTRY(client) pool_tqe; /* on its pool's client list */
    struct pool *pool;
    struct msg_tqh q; /* requests in arrival order */
    uint32_t nq;
    uint8_t close_reason; /* DRAINING: why it closes (enum stats_client_close) */
    uint8_t set;          /* the ops it speaks: its pool's, or the pool's sets[set]
                             (client_proto; a Redis client's HELLO switches it) */
    bool authed : 1;      /* redis_auth pools: AUTH succeeded */
    bool bulky : 1;       /* its last request had a large value: read ahead */
    bool held : 1;        /* parsing waits until every queued request is answered */
    bool named : 1;       /* has a name (CLIENT SETNAME) in ctx->names */
    union {
        size_t pending_bytes; /* reply bytes done but not yet written */
        size_t lingered;      /* bytes dropped while closing after an error (every
                                 reply is written by then: nothing is pending) */
    };
    /* Bytes read, not yet parsed; NULL when idle. While a request is
       partial, in->state is its parse state (the two are lent and given
       back together: an idle client holds neither). */
    struct chain_in *in;
};

/*
 * What belongs to one server socket and must die with it. A socket that
 * fails in the middle of a reply leaves a parse position, a byte count and
 * perhaps a deadline behind; server_close() zeroes this struct whole, so
 * the next socket's bytes are never read against the dead one's state. The
 * other per-socket parts of a server conn are reset in the same place: fd
 * and event, the read buffer (freed), the dirty-list entry and the timer;
 * the msgs the socket carried are failed by server_fail() (an idle socket
 * carries none).
 */
struct conn_sock {
    uint64_t connect_deadline_ms; /* CONNECTING: give up then (0: no timeout) */
    struct reply_reader reader;   /* the reply being read */
};

struct server_conn {
    struct conn c;
    struct pool_server *server;
    struct pool *pool;
    const struct proto_ops *proto;
    struct stats_server *st; /* the server's counters in this worker */
    struct msg_tqh in_q;     /* queued, not yet fully written */
    struct msg_tqh out_q;    /* written, awaiting their replies */
    uint32_t nin, nout;
    struct event tev;      /* the oldest request's deadline (or connect's) */
    struct chain_in *in;   /* bytes read, not yet parsed; NULL when none */
    struct conn_sock sock; /* state of the current socket only */
    /* The TLS session of the last socket, offered by the next one so that
       a reconnect resumes (server_tls); outlives sockets on purpose. */
    struct ssl_session_st *tls_session;
};

static inline struct client *
conn_client(struct conn *c)
{
    return (struct client *)c;
}

static inline struct server_conn *
conn_server(struct conn *c)
{
    return (struct server_conn *)c;
}

void conn_ctx_init(struct conn_ctx *ctx, struct event_base *base, int worker_id, size_t mbuf_size);
void conn_ctx_destroy(struct conn_ctx *ctx);
/* Close a refused conn's socket and free it. */
void conn_refused_end(struct conn_refused *r);

/* Change state, logging the transition at debug level; an illegal one
   (not in the diagram above) is a bug and aborts. */
void conn_set_state(struct conn *c, enum conn_state st);
const char *conn_state_name(enum conn_state st);

/* Give c its socket fd; its event calls cb(arg = c) from now on. */
void conn_attach(struct conn *c, int fd, event_callback_fn cb);

/* Watch for readability and/or writability (EV_READ | EV_WRITE), or
   neither (0); only a change reaches libevent. A TLS conn also watches
   writability while ciphertext waits, and is made readable at once when
   OpenSSL holds bytes the socket will not announce. */
void conn_watch_change(struct conn *c, uint8_t events);
static inline void
conn_watch(struct conn *c, uint8_t events)
{
    /* per request nothing changes: no call */
    if (c->tls != NULL || (c->fd >= 0 && c->events != events)) {
        conn_watch_change(c, events);
    }
}

/* Remove the event and close the fd (a TLS conn's TLS goes first, with a
   close_notify when the socket takes it). */
void conn_close_fd(struct conn *c);

/* Put c on its ctx's dirty list (idempotent). */
static inline void
conn_mark_dirty(struct conn *c)
{
    if (c->dirty || c->state == CONN_CLOSED) {
        return;
    }
    c->dirty = true;
    TAILQ_INSERT_TAIL(c->kind == CONN_SERVER ? &c->ctx->dirty_servers : &c->ctx->dirty_clients, c,
                      dirty_tqe);
}

/*
 * Read once into *in, borrowing a buffer from the ctx when *in has none:
 * read() into its buffer, or readv() into chunks as well (chain.h): the
 * rest of a body being read around the buffer, or, with ahead (a conn that
 * carries large values), a header's worth into the buffer and what follows
 * into chunks. Returns bytes read (*body of them went to the body's piece),
 * 0 on EOF, -EAGAIN, or -errno. A TLS conn decrypts into the same places
 * (tls_readv), and when OpenSSL still holds bytes the read callback runs
 * again next turn.
 */
ssize_t conn_read(struct conn *c, struct chain_in **in, uint64_t *body, bool ahead);

/* writev() iov[0..n); *written gets the bytes written (0 on EAGAIN).
   Returns 0 or -errno. A TLS conn encrypts them (tls_writev: *written is
   the plaintext taken) and first sends ciphertext still waiting, which it
   does even when n is 0; while ciphertext waits, conn_watch keeps
   EV_WRITE on. */
struct iovec;
int conn_writev(struct conn *c, const struct iovec *iov, int n, size_t *written) MUSTCHECK;

/* Give an emptied read buffer back to the ctx (an idle conn holds none). */
void conn_give_back_buf(struct conn_ctx *ctx, struct chain_in **in);

/* A client struct from the ctx's slabs (uninitialized), or NULL; and back.
   Clients come in blocks, so an idle one costs its struct and nothing of
   malloc's, and a spike of clients leaves its memory on the free list for
   the next one rather than fragmenting the heap. */
struct client *conn_client_get(struct conn_ctx *ctx);
void conn_client_put(struct conn_ctx *ctx, struct client *c);

/* A request-parse state of the ctx's size (its bytes are the protocol's
   to initialize), or NULL (out of memory); and back, once its request is
   complete and no partial one follows. */
void *conn_state_get(struct conn_ctx *ctx);
void conn_state_put(struct conn_ctx *ctx, void *state);

#endif
