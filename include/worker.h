/*
 * worker: one thread with its own event_base, listeners, pools (server
 * conns), client conns, free lists and counters. Nothing it touches on the
 * request path is shared. The supervisor talks to it only through its
 * inbox (a mutex-protected pair of requests, stop and reload, plus an
 * eventfd that wakes the worker's loop) and reads its counters.
 */
#ifndef CMX_WORKER_H
#define CMX_WORKER_H

#include <event2/event.h>
#include <event2/event_struct.h> /* events are embedded: no malloc per event */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conn.h"
#include "listener.h"
#include "pool.h"
#include "stats.h"
#include "util.h"

struct gen;

/* A pool as one worker serves it: the pool and its listener. */
struct worker_pool {
    struct pool pool;
    struct listener listener;
    struct gen *hold;         /* retiring: the generation it points into */
    struct event drain_timer; /* retiring: clients still open then are closed */
    bool drain_timer_set;
    TAILQ_ENTRY(worker_pool) retire_tqe;
};

TAILQ_HEAD(worker_pool_tqh, worker_pool);

struct worker {
    int id;
    int nworkers; /* of the process */
    pthread_t thread;
    struct gen *gen;          /* the generation served (held) */
    struct stats_worker *wst; /* this worker's own counters (registry) */
    struct event_base *base;
    struct conn_ctx ctx;
    struct worker_pool **pools; /* [npools], the current config's order; NULL if not served */
    size_t npools;
    struct worker_pool_tqh retiring_pools;   /* removed by a reload, draining */
    struct pool_server_tqh retiring_servers; /* left a pool, finishing requests */
    /* inbox */
    int efd;
    struct event inbox_ev;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop_requested;          /* under lock */
    uint64_t shutdown_timeout_ms; /* under lock, with stop_requested */
    struct gen *pending_gen;      /* under lock: newest posted generation (held) */
    /* startup handshake, under lock */
    int start_state; /* 0 starting, 1 ready, -1 failed */
    char start_err[256];
    /* loop state (worker thread only) */
    bool exiting;
    struct event stop_timer;
    struct event grace_timer;       /* stop or pool removal: first-request grace over */
    _Atomic bool exited;            /* set last by the thread: the loop is over */
    _Atomic bool accepting_stopped; /* stopping: its listeners are closed */
    _Atomic uint64_t gen_seen;      /* id of the generation switched to */
};

/* Start w's thread, worker id of nworkers, serving g (held by the worker
   from now on); counters: every worker's, counters[id] being its own.
   Returns 0 or -errno. */
int worker_start(struct worker *w, int id, int nworkers, struct gen *g,
                 struct stats_worker *counters) MUSTCHECK;

/* Wait until w is ready (0) or failed (-1, reason in w->start_err). */
int worker_wait_ready(struct worker *w);

/* Ask w to switch to g at its next loop boundary; w takes a hold on g. */
void worker_post_reload(struct worker *w, struct gen *g);

/* Ask w to stop gracefully within timeout_ms (thread-safe). */
void worker_post_stop(struct worker *w, uint64_t timeout_ms);

/* Join the thread and free what remains. */
void worker_join(struct worker *w);

#endif
