/*
 * registry: what outlives a configuration generation. One record per pool
 * name and per (pool, server identity) ever configured, holding the state
 * the workers share (ejection time, client count) and each worker's counter
 * blocks. A reload that keeps a pool or a server finds the same record, so
 * its counters and ejection state carry over; records are never freed
 * before the workers are joined, so the supervisor can read counters while
 * workers switch generations. Only the supervisor adds records (before it
 * publishes a generation); workers reach them through the generation's
 * gen_pool->reg and gen_server->reg.
 */
#ifndef CMX_REGISTRY_H
#define CMX_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "stats.h"
#include "util.h"

struct gen;

/* Shared by the workers: when the server is ejected until (one relaxed load
   when routing; a CAS by the worker that ejects it, so an ejection is
   counted once). */
struct server_shared {
    _Atomic uint64_t ejected_until_ms; /* mono ms; 0 or past: in the ring */
    _Atomic uint64_t ejected_at_us;    /* wall clock of the last ejection */
} __attribute__((aligned(CACHE_LINE)));

struct reg_server {
    struct server_shared shared;
    char *ident;
    struct stats_server *st; /* [nworkers] */
    struct reg_server *next;
};

struct reg_pool {
    _Atomic uint64_t eject_gen; /* bumped on every ejection in the pool */
    _Atomic int64_t nclients;   /* client conns over all workers (limit) */
    char *name;
    struct stats_pool *st; /* [nworkers] */
    struct reg_server *servers;
    struct reg_pool *next;
};

struct registry {
    int nworkers;
    struct stats_worker *workers; /* [nworkers] */
    struct reg_pool *pools;
};

int registry_init(struct registry *r, int nworkers) MUSTCHECK;
void registry_free(struct registry *r);

/* Point every pool and server of g at its record, creating missing ones
   (before g is published). Returns 0 or -1 (out of memory). */
int registry_attach(struct registry *r, struct gen *g) MUSTCHECK;

#endif
