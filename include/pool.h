/*
 * pool: one worker's live copy of a configured pool: its servers, each
 * with this worker's server conns (server_connections of them), and the
 * continuum built over the live servers. Owned and touched by one worker.
 *
 * A reload keeps the pool object (and so its clients) when its listen
 * address and protocol stay: pool_retarget() when nothing else changed,
 * pool_reconfigure() when servers or placement did. Servers that stay keep
 * their object and conns; servers that leave are handed to the caller to
 * finish their in-flight requests.
 */
#ifndef CMX_POOL_H
#define CMX_POOL_H

#include <event2/event.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conn.h"
#include "dist.h"
#include "registry.h"
#include "stats.h"
#include "util.h"

struct conf_pool;
struct conf_server;
struct gen_pool;
struct gen_server;

struct pool_server {
    const struct conf_server *cs;
    const struct gen_server *gs; /* its address and registry record */
    struct pool *pool;
    /* This worker's server conns: one set of nset (server_connections)
       per version of the protocol (proto_ops sets), set k at conns[k * nset]. */
    struct server_conn *conns; /* [nconns] */
    uint32_t nconns;
    uint32_t nset;
    uint32_t idx;                        /* index in identity order */
    uint32_t failures;                   /* consecutive failures seen by this worker */
    struct stats_server *st;             /* this worker's counters for the server */
    struct server_shared *shared;        /* ejection state, shared by the workers */
    uint64_t retry_at_ms;                /* no new connect before this (backoff) */
    uint32_t backoff_ms;                 /* next reconnect delay after a failure */
    int last_err;                        /* errno of the last connect failure */
    uint64_t local_err_log_ms;           /* next time a local connect error may be logged */
    char version[24];                    /* Redis: its redis_version, from INFO; "" unknown */
    TAILQ_ENTRY(pool_server) retire_tqe; /* on the worker's retiring list */
    void *retire_hold;                   /* what keeps cs alive while retiring */
};

TAILQ_HEAD(pool_server_tqh, pool_server);

struct pool {
    const struct conf_pool *cp;
    const struct gen_pool *gp; /* the generation's bindings of cp */
    struct conn_ctx *ctx;
    const struct proto_ops *proto; /* what its clients and servers speak */
    struct pool_server **servers;  /* [nservers], identity order */
    size_t nservers;
    struct dist_server *dservers; /* what the dist was built from */
    struct dist *dist;
    TAILQ_HEAD(, client) clients; /* this worker's client conns of the pool */
    uint32_t nclients;
    event_callback_fn server_cb; /* the server conns' event callback */
    struct stats_pool *st;       /* this worker's counters for the pool */
    struct reg_pool *reg;        /* shared: ejection generation, client count */
    uint64_t eject_gen_seen;     /* reg->eject_gen the dist was built at */
    uint64_t next_rebuild_ms;    /* an ejected server returns then; 0: none out */
    bool retiring;               /* removed by a reload: clients close at a boundary */
    uint64_t tls_log_ms;         /* the TLS failure log's window ends then */
    uint32_t tls_log_lines;      /* lines logged in the window */
    uint32_t tls_log_dropped;    /* failures not logged since the last line */
};

/* Build p from cp (bound by gp) for ctx's worker, speaking proto; its
   server conns' events call server_cb. Returns 0 or -1 (out of memory). */
int pool_init(struct pool *p, const struct conf_pool *cp, const struct gen_pool *gp,
              const struct proto_ops *proto, struct conn_ctx *ctx,
              event_callback_fn server_cb) MUSTCHECK;
/* Free p's memory (its clients and server conns must be closed). */
void pool_destroy(struct pool *p);

/* Free a server (its conns must be closed and empty). */
void pool_server_free(struct pool_server *s);

/* cp is equal to p's config (conf_pool_equal): only switch the pointers. */
void pool_retarget(struct pool *p, const struct conf_pool *cp, const struct gen_pool *gp);

/*
 * Switch p to cp (same name, listen and protocol; other settings or servers
 * changed). Servers with the same identity and address stay, with their
 * conns; each server that leaves is passed to retire(arg, s) and is the
 * caller's from then on. Returns 0 or -1 (out of memory: p unchanged).
 */
int pool_reconfigure(struct pool *p, const struct conf_pool *cp, const struct gen_pool *gp,
                     void (*retire)(void *arg, struct pool_server *s), void *arg) MUSTCHECK;

/*
 * A failure (connect error, reset, timeout, bad reply) of s seen by this
 * worker. With auto_eject_hosts, server_failure_limit consecutive ones
 * eject s from every worker's ring for server_retry_timeout ms.
 * connect_failed also delays this worker's next connect to s (backoff).
 */
void pool_server_failed(struct pool_server *s, int err, bool connect_failed);

/* A good reply or connect: the failure count and backoff start over. */
void pool_server_ok(struct pool_server *s);

/* Whether a TLS failure of p may be logged now (POOL_TLS_LOG_PER_SEC
   lines a second per pool and worker); *dropped gets how many were not
   logged before it. */
#define POOL_TLS_LOG_PER_SEC 5
bool pool_tls_log_allowed(struct pool *p, uint32_t *dropped);

/* The server that owns key, or NULL when no server is live. */
struct pool_server *pool_pick(struct pool *p, const uint8_t *key, size_t len);

#endif
