/*
 * worker: one thread with its own event_base, listeners, pools (server
 * conns), client conns, free lists and counters. Nothing it touches on the
 * request path is shared. The supervisor talks to it only through its
 * inbox (a mutex-protected command list plus an eventfd that wakes the
 * worker's loop) and reads its counters.
 */
#ifndef CMX_WORKER_H
#define CMX_WORKER_H

#include <event2/event.h>
#include <event2/event_struct.h> /* events are embedded: no malloc per conn event */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "stats.h"
#include "util.h"

struct conf;
struct listener;
struct pool;
struct pool_shared;

/* One worker's counters; allocated and freed by the supervisor, written
   only by the worker, read by the supervisor. */
struct worker_stats {
    struct stats_worker w;
    struct stats_pool *pools;       /* [npools] */
    struct stats_server **servers;  /* [npools][that pool's nservers] */
};

struct worker {
    int id;
    pthread_t thread;
    const struct conf *conf;
    const int *shared_fds;          /* per pool: shared unix listen fd, or -1 */
    struct worker_stats *stats;
    struct pool_shared **shared;    /* per pool, shared by all workers */
    struct event_base *base;
    struct conn_ctx ctx;
    struct pool *pools;             /* [npools] */
    struct listener *listeners;     /* [npools] */
    size_t npools;
    /* inbox */
    int efd;
    struct event inbox_ev;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop_requested;            /* under lock */
    uint64_t shutdown_timeout_ms;   /* under lock, with stop_requested */
    /* startup handshake, under lock */
    int start_state;                /* 0 starting, 1 ready, -1 failed */
    char start_err[256];
    /* loop state (worker thread only) */
    bool exiting;
    _Atomic bool exited;            /* set last by the thread: the loop is over */
    struct event stop_timer;
    _Atomic uint64_t accepted;      /* clients accepted (for the per-worker log) */
};

/* Start w's thread. Returns 0 or -errno. */
int worker_start(struct worker *w, int id, const struct conf *conf, const int *shared_fds,
                 struct worker_stats *stats, struct pool_shared **shared) MUSTCHECK;

/* Allocate zeroed counters for conf's pools, or NULL. */
struct worker_stats *worker_stats_new(const struct conf *conf);
void worker_stats_free(struct worker_stats *ws, const struct conf *conf);

/* Wait until w is ready (0) or failed (-1, reason in w->start_err). */
int worker_wait_ready(struct worker *w);

/* Ask w to stop gracefully within timeout_ms (thread-safe). */
void worker_post_stop(struct worker *w, uint64_t timeout_ms);

/* Join the thread and free what remains. */
void worker_join(struct worker *w);

#endif
