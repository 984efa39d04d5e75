/*
 * pool: one worker's live copy of a configured pool: its servers, each
 * with this worker's server conns (server_connections of them), and the
 * continuum built over the live servers. Owned and touched by one worker.
 */
#ifndef CMX_POOL_H
#define CMX_POOL_H

#include <event2/event.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conn.h"
#include "dist.h"
#include "stats.h"
#include "util.h"

struct conf_pool;
struct conf_server;

/*
 * What the workers of one pool share: per server, when it is ejected until
 * (one relaxed load when routing; a CAS by the worker that ejects it, so an
 * ejection is counted once), and the pool's client count (changed only on
 * accept and close). Owned by the supervisor.
 */
struct server_shared {
    _Atomic uint64_t ejected_until_ms;  /* mono ms; 0 or past: in the ring */
    _Atomic uint64_t ejected_at_us;     /* wall clock of the last ejection */
} __attribute__((aligned(64)));

struct pool_shared {
    _Atomic uint64_t eject_gen;         /* bumped on every ejection */
    _Atomic int64_t nclients;           /* client conns over all workers */
    struct server_shared *servers;      /* [nservers] */
    size_t nservers;
};

/* Zeroed shared state for cp, or NULL. */
struct pool_shared *pool_shared_new(const struct conf_pool *cp);
void pool_shared_free(struct pool_shared *sh);

struct pool_server {
    const struct conf_server *cs;
    struct pool *pool;
    struct conn *conns;             /* [nconns] server conns of this worker */
    uint32_t nconns;
    uint32_t idx;                   /* index in identity order */
    uint32_t failures;              /* consecutive failures seen by this worker */
    struct stats_server *st;        /* this worker's counters for the server */
    struct server_shared *shared;   /* ejection state, shared by the workers */
    uint64_t retry_at_ms;           /* no new connect before this (backoff) */
    uint32_t backoff_ms;            /* next reconnect delay after a failure */
    int last_err;                   /* errno of the last connect failure */
};

struct pool {
    const struct conf_pool *cp;
    struct conn_ctx *ctx;
    struct pool_server *servers;    /* [nservers], identity order */
    size_t nservers;
    struct dist_server *dservers;   /* what the dist was built from */
    struct dist *dist;
    struct conn_tqh clients;        /* this worker's client conns of the pool */
    uint32_t nclients;
    event_callback_fn server_cb;    /* route's server event callback */
    struct stats_pool *st;          /* this worker's counters for the pool */
    struct pool_shared *shared;
    uint64_t eject_gen_seen;        /* shared->eject_gen the dist was built at */
    uint64_t next_rebuild_ms;       /* an ejected server returns then; 0: none out */
};

/* Build p from cp for ctx's worker, counting into st and sst[nservers]
   (owned by the supervisor). Returns 0 or -1 (out of memory). */
int pool_init(struct pool *p, const struct conf_pool *cp, struct conn_ctx *ctx,
              event_callback_fn server_cb, struct stats_pool *st,
              struct stats_server *sst, struct pool_shared *shared) MUSTCHECK;
/* Close every server conn and free p's memory (clients are the caller's). */
void pool_destroy(struct pool *p);

/*
 * A failure (connect error, reset, timeout, bad reply) of s seen by this
 * worker. With auto_eject_hosts, server_failure_limit consecutive ones
 * eject s from every worker's ring for server_retry_timeout ms.
 * connect_failed also delays this worker's next connect to s (backoff).
 */
void pool_server_failed(struct pool_server *s, int err, bool connect_failed);

/* A good reply or connect: the failure count and backoff start over. */
void pool_server_ok(struct pool_server *s);

/* The server that owns key, or NULL when no server is live. */
struct pool_server *pool_pick(struct pool *p, const uint8_t *key, size_t len);

/*
 * The server conn of s that carries client's requests (one per client, so
 * its requests to s stay in order), connecting it if needed. Returns NULL
 * with *err set when a connect cannot even start.
 */
struct conn *pool_server_conn(struct pool_server *s, const struct conn *client, int *err);

/* Connect every server conn now (preconnect). */
void pool_preconnect(struct pool *p);

#endif
