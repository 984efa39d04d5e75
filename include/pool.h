/*
 * pool: one worker's live copy of a configured pool: its servers, each
 * with this worker's server conns (server_connections of them), and the
 * continuum built over the live servers. Owned and touched by one worker.
 */
#ifndef CMX_POOL_H
#define CMX_POOL_H

#include <event2/event.h>
#include <stdint.h>

#include "conn.h"
#include "dist.h"
#include "stats.h"
#include "util.h"

struct conf_pool;
struct conf_server;

struct pool_server {
    const struct conf_server *cs;
    struct pool *pool;
    struct conn *conns;             /* [nconns] server conns of this worker */
    uint32_t nconns;
    uint32_t idx;                   /* index in identity order */
    uint32_t failures;              /* consecutive failures seen by this worker */
    struct stats_server *st;        /* this worker's counters for the server */
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
};

/* Build p from cp for ctx's worker, counting into st and sst[nservers]
   (owned by the supervisor). Returns 0 or -1 (out of memory). */
int pool_init(struct pool *p, const struct conf_pool *cp, struct conn_ctx *ctx,
              event_callback_fn server_cb, struct stats_pool *st,
              struct stats_server *sst) MUSTCHECK;
/* Close every server conn and free p's memory (clients are the caller's). */
void pool_destroy(struct pool *p);

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
