/*
 * worker: the thread that runs the request path (see worker.h).
 *
 * The loop is driven by hand, as memcached's workers do:
 *     while (!exiting) { event_base_loop(base, EVLOOP_ONCE); worker_flush(w); }
 * All callbacks of a turn only queue bytes and mark conns dirty; the flush
 * then writes each dirty conn once: servers first (requests of many clients
 * leave in one writev), then clients (a failed server write answers its
 * clients in the same turn).
 *
 * Graceful stop: the listeners drain their accept queues and close; idle
 * clients close at once; busy ones close at the next request boundary
 * (route); the loop ends when no client is left or the timer fires.
 */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "conf.h"
#include "listener.h"
#include "log.h"
#include "pool.h"
#include "route.h"

static void
worker_flush(struct worker *w)
{
    struct conn_ctx *ctx = &w->ctx;
    struct conn *c;

    /* A client resumed after backpressure parses its buffered requests
       here, which dirties servers again: loop until both lists are empty,
       or those requests would wait for an event that never comes. */
    do {
        while ((c = TAILQ_FIRST(&ctx->dirty_servers)) != NULL) {
            TAILQ_REMOVE(&ctx->dirty_servers, c, dirty_tqe);
            c->dirty = false;
            int rc = conn_flush(c);
            if (rc < 0) {
                route_server_fail(c, -rc);
            }
        }
        while ((c = TAILQ_FIRST(&ctx->dirty_clients)) != NULL) {
            TAILQ_REMOVE(&ctx->dirty_clients, c, dirty_tqe);
            c->dirty = false;
            route_client_after_flush(c, conn_flush(c));
        }
    } while (!TAILQ_EMPTY(&ctx->dirty_servers));
    conn_ctx_reap(ctx);
}

static uint32_t
worker_nclients(const struct worker *w)
{
    uint32_t n = 0;

    for (size_t i = 0; i < w->npools; i++) {
        n += w->pools[i].nclients;
    }
    return n;
}

static void
worker_stop_timer_cb(int fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    log_warn("shutdown timeout: closing %" PRIu32 " clients still busy", worker_nclients(w));
    w->exiting = true;
}

static void
worker_begin_stop(struct worker *w, uint64_t timeout_ms)
{
    struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };

    if (w->ctx.stopping) {
        return;
    }
    w->ctx.stopping = true;
    for (size_t i = 0; i < w->npools; i++) {
        listener_drain_and_close(&w->listeners[i]);
    }
    /* Idle clients close now; busy ones at their next request boundary. */
    for (size_t i = 0; i < w->npools; i++) {
        struct conn *c, *next;
        for (c = TAILQ_FIRST(&w->pools[i].clients); c != NULL; c = next) {
            next = TAILQ_NEXT(c, pool_tqe);
            if (TAILQ_EMPTY(&c->q) && buf_len(&c->in) == 0) {
                route_client_close(c, "stopping");
            } else if (buf_len(&c->in) == 0) {
                conn_set_reading(c, false);
                conn_set_state(c, CONN_DRAINING);
            }
        }
    }
    evtimer_assign(&w->stop_timer, w->base, worker_stop_timer_cb, w);
    evtimer_add(&w->stop_timer, &tv);
}

static void
worker_inbox_cb(int fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t v;
    bool stop;
    uint64_t timeout;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: another wakeup already consumed the count. */
    }
    pthread_mutex_lock(&w->lock);
    stop = w->stop_requested;
    timeout = w->shutdown_timeout_ms;
    pthread_mutex_unlock(&w->lock);
    if (stop) {
        worker_begin_stop(w, timeout);
    }
}

static void
worker_set_start_state(struct worker *w, int state, const char *err)
{
    pthread_mutex_lock(&w->lock);
    w->start_state = state;
    if (err != NULL) {
        snprintf(w->start_err, sizeof(w->start_err), "%s", err);
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void
worker_cleanup(struct worker *w)
{
    for (size_t i = 0; i < w->npools; i++) {
        listener_close(&w->listeners[i]);
    }
    for (size_t i = 0; i < w->npools; i++) {
        route_pool_shutdown(&w->pools[i]);
        pool_destroy(&w->pools[i]);
    }
    conn_ctx_destroy(&w->ctx);
    if (w->base != NULL) {
        event_del(&w->inbox_ev);
        event_del(&w->stop_timer);
    }
    free(w->pools);
    free(w->listeners);
    w->pools = NULL;
    w->listeners = NULL;
    if (w->base != NULL) {
        event_base_free(w->base);
        w->base = NULL;
    }
}

static int
worker_setup(struct worker *w, char *err, size_t errlen)
{
    const struct conf *cf = w->conf;
    struct event_config *cfg = event_config_new();

    if (cfg == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL) {
        snprintf(err, errlen, "cannot create event base");
        return -1;
    }
    conn_ctx_init(&w->ctx, w->base, w->id, cf->mbuf_size, cf->max_request_size);
    w->ctx.wst = &w->stats->w;
    evtimer_assign(&w->stop_timer, w->base, worker_stop_timer_cb, w);
    event_assign(&w->inbox_ev, w->base, w->efd, EV_READ | EV_PERSIST, worker_inbox_cb, w);
    event_add(&w->inbox_ev, NULL);

    w->pools = calloc(cf->npools, sizeof(*w->pools));
    w->listeners = calloc(cf->npools, sizeof(*w->listeners));
    if (w->pools == NULL || w->listeners == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cf->npools; i++) {
        w->listeners[i].fd = -1;
    }
    for (size_t i = 0; i < cf->npools; i++) {
        if (pool_init(&w->pools[i], &cf->pools[i], &w->ctx, route_server_event,
                      &w->stats->pools[i], w->stats->servers[i], w->shared[i]) != 0) {
            snprintf(err, errlen, "pool %s: out of memory", cf->pools[i].name);
            return -1;
        }
        w->npools++;
    }
    for (size_t i = 0; i < cf->npools; i++) {
        if (listener_open(&w->listeners[i], &w->pools[i], w->shared_fds[i], route_client_event,
                          err, errlen) != 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < cf->npools; i++) {
        if (cf->pools[i].preconnect) {
            pool_preconnect(&w->pools[i]);
        }
    }
    return 0;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    char tag[16], err[256];

    snprintf(tag, sizeof(tag), "w%d", w->id);
    log_set_thread_tag(tag);
    if (worker_setup(w, err, sizeof(err)) != 0) {
        worker_cleanup(w);
        atomic_store_explicit(&w->exited, true, memory_order_release);
        worker_set_start_state(w, -1, err);
        return NULL;
    }
    worker_set_start_state(w, 1, NULL);
    log_debug("worker %d running", w->id);

    while (!w->exiting) {
        event_base_loop(w->base, EVLOOP_ONCE);
        worker_flush(w);
        if (w->ctx.stopping && worker_nclients(w) == 0) {
            w->exiting = true;
        }
    }
    log_info("worker %d stopped", w->id);
    worker_cleanup(w);
    atomic_store_explicit(&w->exited, true, memory_order_release);
    return NULL;
}

struct worker_stats *
worker_stats_new(const struct conf *conf)
{
    struct worker_stats *ws = aligned_alloc(64, sizeof(*ws));

    if (ws == NULL) {
        return NULL;
    }
    memset(ws, 0, sizeof(*ws));
    ws->pools = aligned_alloc(64, sizeof(*ws->pools) * (conf->npools ? conf->npools : 1));
    ws->servers = calloc(conf->npools ? conf->npools : 1, sizeof(*ws->servers));
    if (ws->pools == NULL || ws->servers == NULL) {
        worker_stats_free(ws, conf);
        return NULL;
    }
    memset(ws->pools, 0, sizeof(*ws->pools) * conf->npools);
    for (size_t i = 0; i < conf->npools; i++) {
        size_t n = conf->pools[i].nservers;
        ws->servers[i] = aligned_alloc(64, sizeof(**ws->servers) * n);
        if (ws->servers[i] == NULL) {
            worker_stats_free(ws, conf);
            return NULL;
        }
        memset(ws->servers[i], 0, sizeof(**ws->servers) * n);
    }
    return ws;
}

void
worker_stats_free(struct worker_stats *ws, const struct conf *conf)
{
    if (ws == NULL) {
        return;
    }
    for (size_t i = 0; ws->servers != NULL && i < conf->npools; i++) {
        free(ws->servers[i]);
    }
    free(ws->servers);
    free(ws->pools);
    free(ws);
}

int
worker_start(struct worker *w, int id, const struct conf *conf, const int *shared_fds,
             struct worker_stats *stats, struct pool_shared **shared)
{
    sigset_t all, old;
    int rc;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->conf = conf;
    w->shared_fds = shared_fds;
    w->stats = stats;
    w->shared = shared;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        return -errno;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    /* Workers never see signals: only the supervisor's evsignal does. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(w->efd);
        w->efd = -1;
        return -rc;
    }
    return 0;
}

int
worker_wait_ready(struct worker *w)
{
    int st;

    pthread_mutex_lock(&w->lock);
    while (w->start_state == 0) {
        pthread_cond_wait(&w->cond, &w->lock);
    }
    st = w->start_state;
    pthread_mutex_unlock(&w->lock);
    return st > 0 ? 0 : -1;
}

void
worker_post_stop(struct worker *w, uint64_t timeout_ms)
{
    uint64_t one = 1;

    pthread_mutex_lock(&w->lock);
    w->stop_requested = true;
    w->shutdown_timeout_ms = timeout_ms;
    pthread_mutex_unlock(&w->lock);
    if (write(w->efd, &one, sizeof(one)) < 0) {
        /* The counter cannot overflow at one write per stop. */
    }
}

void
worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
    if (w->efd >= 0) {
        close(w->efd);
        w->efd = -1;
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}
