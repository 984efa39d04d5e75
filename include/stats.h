/*
 * stats: every metric cachemux reports, defined once as X-macro lists
 * (name, type, description) in twemproxy's order. The stats JSON, the
 * Prometheus renderer and `-D` all walk these lists, so a stat cannot
 * exist in one and not the others.
 */
#ifndef CMX_STATS_H
#define CMX_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

struct buf;

enum stats_type { STATS_COUNTER, STATS_GAUGE, STATS_TIMESTAMP };

#define STATS_POOL_LIST(X)                                                       \
    X(client_eof, STATS_COUNTER, "# eof on client connections")                  \
    X(client_err, STATS_COUNTER, "# errors on client connections")               \
    X(client_connections, STATS_GAUGE, "# active client connections")            \
    X(server_ejects, STATS_COUNTER, "# times backend server was ejected")        \
    X(forward_error, STATS_COUNTER, "# times we encountered a forwarding error") \
    X(fragments, STATS_COUNTER, "# fragments created from a multi-vector request")

#define STATS_SERVER_LIST(X)                                                                       \
    X(server_eof, STATS_COUNTER, "# eof on server connections")                                    \
    X(server_err, STATS_COUNTER, "# errors on server connections")                                 \
    X(server_timedout, STATS_COUNTER, "# timeouts on server connections")                          \
    X(server_connections, STATS_GAUGE, "# active server connections")                              \
    X(server_ejected_at, STATS_TIMESTAMP, "timestamp when server was ejected in usec since epoch") \
    X(requests, STATS_COUNTER, "# requests")                                                       \
    X(request_bytes, STATS_COUNTER, "total request bytes")                                         \
    X(responses, STATS_COUNTER, "# responses")                                                     \
    X(response_bytes, STATS_COUNTER, "total response bytes")                                       \
    X(in_queue, STATS_GAUGE, "# requests in incoming queue")                                       \
    X(in_queue_bytes, STATS_GAUGE, "current request bytes in incoming queue")                      \
    X(out_queue, STATS_GAUGE, "# requests in outgoing queue")                                      \
    X(out_queue_bytes, STATS_GAUGE, "current request bytes in outgoing queue")

/*
 * Why connections close: one counter per pool (clients) or server (server
 * conns) and reason, shown only in /metrics as
 * cachemux_client_closed_total{pool,reason} and
 * cachemux_server_closed_total{pool,server,reason}; the stats JSON keeps
 * twemproxy's keys. The conn module maps each reason to these counters and
 * to twemproxy's client_eof/client_err and server_eof/server_err.
 */
#define STATS_CLIENT_CLOSE_LIST(X)                                            \
    X(eof, "the client closed its side")                                      \
    X(error, "a read or write on the socket failed")                          \
    X(quit, "the client sent quit")                                           \
    X(protocol_error, "a request that breaks framing, after its error reply") \
    X(too_large, "a request over max_request_size, after its error reply")    \
    X(output_limit, "unread replies over client_output_limit")                \
    X(stop, "graceful stop")                                                  \
    X(pool_removed, "its pool was removed by a reload")                       \
    X(drain_timeout, "still busy when a drain deadline passed")               \
    X(client_limit, "refused at accept: client_connections reached")          \
    X(tls_handshake, "its TLS handshake failed or timed out")                 \
    X(out_of_memory, "out of memory")

#define STATS_SERVER_CLOSE_LIST(X)                                                     \
    X(eof, "the server closed with requests outstanding")                              \
    X(idle_eof, "the server closed an idle connection")                                \
    X(error, "a socket or connect error")                                              \
    X(timeout, "a connect timeout or a connection stuck past its timeout")             \
    X(protocol_error, "bytes that are not a valid reply, or a reply nobody asked for") \
    X(reply_too_large, "a reply over max_reply_size")                                  \
    X(handshake, "AUTH or SELECT refused")                                             \
    X(tls_handshake, "its TLS handshake failed or timed out")                          \
    X(retired, "the server left its pool in a reload")                                 \
    X(shutdown, "the worker stopped")

/*
 * TLS (pools with tls = true, and per server with server_tls = true), shown
 * only in /metrics: handshakes completed and resumed, open connections by
 * version, and failed handshakes by reason.
 */
#define STATS_TLS_LIST(X)                               \
    X(handshakes, "TLS handshakes completed")           \
    X(resumed, "TLS handshakes that resumed a session") \
    X(v12, "open TLS connections speaking TLS 1.2")     \
    X(v13, "open TLS connections speaking TLS 1.3")

#define STATS_TLS_FAIL_LIST(X)                                                        \
    X(timeout, "it did not finish within tls_handshake_timeout")                      \
    X(peer_closed, "the peer closed the connection during the handshake")             \
    X(no_certificate, "the peer sent no certificate where one is required")           \
    X(bad_certificate, "the peer's certificate failed verification")                  \
    X(alert, "the peer refused the handshake (an alert, e.g. about our certificate)") \
    X(protocol, "not TLS, or no protocol version or cipher in common")                \
    X(error, "another error (a socket error, out of memory)")

#define STATS_TLS_ENUM(name, desc) STATS_TLS_##name,
#define STATS_TLS_FAIL_ENUM(name, desc) STATS_TLS_FAIL_##name,
enum stats_tls_field { STATS_TLS_LIST(STATS_TLS_ENUM) STATS_TLS_N };
enum stats_tls_fail { STATS_TLS_FAIL_LIST(STATS_TLS_FAIL_ENUM) STATS_TLS_FAIL_N };
#undef STATS_TLS_ENUM
#undef STATS_TLS_FAIL_ENUM

extern const char *const stats_tls_fail_names[STATS_TLS_FAIL_N];

struct stats_tls {
    _Atomic uint64_t f[STATS_TLS_N];
    _Atomic uint64_t fail[STATS_TLS_FAIL_N];
};

/* A summed view of one struct stats_tls. */
struct stats_tls_view {
    uint64_t f[STATS_TLS_N];
    uint64_t fail[STATS_TLS_FAIL_N];
};

/* Add t's current values into v. */
void stats_tls_sum(struct stats_tls_view *v, const struct stats_tls *t);

#define STATS_CLOSE_ENUM_C(name, desc) STATS_CC_##name,
#define STATS_CLOSE_ENUM_S(name, desc) STATS_SC_##name,
enum stats_client_close { STATS_CLIENT_CLOSE_LIST(STATS_CLOSE_ENUM_C) STATS_CLIENT_CLOSE_N };
enum stats_server_close { STATS_SERVER_CLOSE_LIST(STATS_CLOSE_ENUM_S) STATS_SERVER_CLOSE_N };
#undef STATS_CLOSE_ENUM_C
#undef STATS_CLOSE_ENUM_S

/* Names ("eof", ...) and descriptions of the reasons. */
extern const char *const stats_client_close_names[STATS_CLIENT_CLOSE_N];
extern const char *const stats_client_close_descs[STATS_CLIENT_CLOSE_N];
extern const char *const stats_server_close_names[STATS_SERVER_CLOSE_N];
extern const char *const stats_server_close_descs[STATS_SERVER_CLOSE_N];

#define STATS_FIELD_P(name, type, desc) STATS_P_##name,
#define STATS_FIELD_S(name, type, desc) STATS_S_##name,
enum stats_pool_field { STATS_POOL_LIST(STATS_FIELD_P) STATS_POOL_NFIELDS };
enum stats_server_field { STATS_SERVER_LIST(STATS_FIELD_S) STATS_SERVER_NFIELDS };
#undef STATS_FIELD_P
#undef STATS_FIELD_S

/*
 * Counter blocks. Each is written by exactly one worker (relaxed load+store,
 * a plain add on x86-64, no lock prefix) and read by the supervisor with
 * relaxed loads when it renders. Blocks are cache-line aligned so two
 * workers never write the same line.
 */
/* Request latency (queued to reply written): fixed buckets, 50 us to 10 s. */
#define STATS_HIST_NBOUNDS 17
#define STATS_HIST_NBUCKETS (STATS_HIST_NBOUNDS + 1) /* the last is +Inf */
extern const uint64_t stats_hist_bounds_us[STATS_HIST_NBOUNDS];

struct stats_hist {
    _Atomic uint64_t b[STATS_HIST_NBUCKETS]; /* per bucket, not cumulative */
    _Atomic uint64_t sum_us;
};

/* Server conn sets per server (proto_ops sets: Redis RESP2 and RESP3). */
#define STATS_CONN_SETS 2

struct stats_server {
    _Atomic uint64_t f[STATS_SERVER_NFIELDS];
    /* server_connections by conn set: only /metrics shows them (a proto
       label), the stats JSON keeps twemproxy's sum */
    _Atomic uint64_t set_connections[STATS_CONN_SETS];
    _Atomic uint64_t closed[STATS_SERVER_CLOSE_N];
    struct stats_tls tls;
    struct stats_hist hist;
} __attribute__((aligned(CACHE_LINE)));

struct stats_pool {
    _Atomic uint64_t f[STATS_POOL_NFIELDS];
    _Atomic uint64_t closed[STATS_CLIENT_CLOSE_N];
    struct stats_tls tls;
    struct stats_hist hist;
} __attribute__((aligned(CACHE_LINE)));

/* Per worker, beyond its pools: for the per-worker view. */
struct stats_worker {
    _Atomic uint64_t curr_connections;  /* clients + server conns + listeners */
    _Atomic uint64_t total_connections; /* ever opened, same kinds */
    _Atomic uint64_t clients;           /* client conns open now */
    _Atomic uint64_t requests;          /* client requests parsed */
    /* memcached, for its stats command: keys asked by retrievals, storage
       commands, and the VALUEs (hits) the backends answered them with */
    _Atomic uint64_t cmd_get;
    _Atomic uint64_t cmd_set;
    _Atomic uint64_t get_hits;
} __attribute__((aligned(CACHE_LINE)));

/* Add d (may be negative, for gauges) to a counter its owner writes. */
static inline void
stats_add(_Atomic uint64_t *c, int64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)d,
                          memory_order_relaxed);
}

static inline uint64_t
stats_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

/* Count one request of us microseconds into h (owner worker only). */
void stats_hist_observe(struct stats_hist *h, uint64_t us);

/* A summed histogram for rendering. */
struct stats_hist_view {
    uint64_t b[STATS_HIST_NBUCKETS];
    uint64_t sum_us;
};

/* Add h's current values into v. */
void stats_hist_sum(struct stats_hist_view *v, const struct stats_hist *h);

/* A summed, plain view of one pool for rendering. */
struct stats_pool_view {
    const char *name;
    uint64_t f[STATS_POOL_NFIELDS];
    uint64_t closed[STATS_CLIENT_CLOSE_N];
    size_t nservers;
    const char *const *server_names; /* [nservers], identity order */
    const uint64_t (*sf)[STATS_SERVER_NFIELDS];
    const uint64_t (*sclosed)[STATS_SERVER_CLOSE_N];
    /* server_connections per conn set, labelled by set_labels (set_labels[0]
       NULL: the protocol has one set and the gauge no proto label) */
    const uint64_t (*sconns)[STATS_CONN_SETS];
    const char *set_labels[STATS_CONN_SETS];
    struct stats_hist_view hist;
    const struct stats_hist_view *shist; /* [nservers] */
    /* TLS: rendered only for the sides that speak it */
    bool tls, server_tls;
    struct stats_tls_view tls_v;
    const struct stats_tls_view *stls; /* [nservers] */
    /* certificates and their expiry, seconds since the epoch (NULL: none) */
    const char *cert_file, *server_cert_file;
    int64_t cert_not_after, server_cert_not_after;
};

struct stats_doc {
    const char *service;
    const char *source;
    const char *version;
    uint64_t uptime;
    uint64_t timestamp;
    uint64_t total_connections;
    uint64_t curr_connections;
    const struct stats_pool_view *pools;
    size_t npools;
    /* Prometheus only */
    size_t nworkers;
    const uint64_t *worker_clients;  /* [nworkers] */
    const uint64_t *worker_requests; /* [nworkers] */
    uint64_t reload_generation;
    uint64_t reloads_ok;
    uint64_t reloads_rejected;
};

/* Render the Prometheus text exposition (version 0.0.4) of d into b.
   Returns 0 or -1 (out of memory). */
int stats_render_prom(struct buf *b, const struct stats_doc *d);

/* Render twemproxy's stats JSON document (with a trailing newline) into b.
   Returns 0 or -1 (out of memory). */
int stats_render_json(struct buf *b, const struct stats_doc *d);

const char *stats_type_name(enum stats_type t);

/* Print every stat with its type and description (the -D output). */
void stats_describe(FILE *out);

#endif
