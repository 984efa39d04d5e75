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
 * Reload: the supervisor posts a new generation; the worker switches in its
 * inbox callback, between requests. Pools are matched by name: an equal
 * pool only has its config pointers moved; a changed one keeps its clients
 * and the servers that stay, and hands the servers that left to the
 * retiring list, where they finish their in-flight requests; a removed pool
 * stops accepting and goes to the retiring list until its clients have
 * closed at a request boundary. Each retiring object holds the generation
 * it points into; the end-of-turn sweep frees what has finished.
 *
 * Graceful stop: the listeners drain their accept queues and close; idle
 * clients close at once; busy ones close at the next request boundary
 * (route); clients that connected but have sent nothing yet get
 * CLIENT_FIRST_REQUEST_GRACE_MS for their first request (the grace timer);
 * the loop ends when no client is left or the stop timer fires.
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

#include "client.h"
#include "conf.h"
#include "gen.h"
#include "log.h"
#include "protocols.h"
#include "route.h"
#include "server.h"
#include "tls.h"

/* The [cachemux] byte limits that take effect on reload. */
static void
worker_apply_limits(struct worker *w, const struct conf *c)
{
    w->ctx.max_request_size = c->max_request_size;
    w->ctx.client_output_limit = c->client_output_limit;
    w->ctx.max_reply_size = c->max_reply_size;
    w->ctx.drain_timeout_ms = c->shutdown_timeout_ms;
    w->ctx.max_handshakes = c->tls_max_handshakes;
    w->ctx.handshake_timeout_ms = c->tls_handshake_timeout_ms;
}

/* fn(c) for each client of p; fn may close c. */
static void
worker_each_client(struct pool *p, void (*fn)(struct client *))
{
    struct client *c, *next;

    for (c = TAILQ_FIRST(&p->clients); c != NULL; c = next) {
        next = TAILQ_NEXT(c, pool_tqe);
        fn(c);
    }
}

/* Idle clients close now; busy ones at their next request boundary. */
static void
worker_close_pool_clients(struct pool *p)
{
    worker_each_client(p, client_close_if_idle);
}

/* Close a pool's clients (for why) and every server conn, failing what
   they carry (the worker exits, or a retired pool is freed). */
static void
worker_pool_shutdown(struct pool *p, enum stats_client_close why)
{
    struct client *c;

    while ((c = TAILQ_FIRST(&p->clients)) != NULL) {
        client_close(c, why);
    }
    for (size_t i = 0; i < p->nservers; i++) {
        server_shutdown(p->servers[i]);
    }
}

static void
worker_pool_free(struct worker_pool *wp)
{
    if (wp->drain_timer_set) {
        evtimer_del(&wp->drain_timer);
    }
    listener_close(&wp->listener);
    worker_pool_shutdown(&wp->pool, wp->pool.retiring ? STATS_CC_pool_removed : STATS_CC_stop);
    pool_destroy(&wp->pool);
    free(wp);
}

/* Free retiring servers and pools that have finished. */
static void
worker_sweep(struct worker *w)
{
    struct pool_server *s, *snext;
    struct worker_pool *wp, *wnext;

    for (s = TAILQ_FIRST(&w->retiring_servers); s != NULL; s = snext) {
        snext = TAILQ_NEXT(s, retire_tqe);
        bool open = false;
        for (uint32_t j = 0; j < s->nconns; j++) {
            struct server_conn *sc = &s->conns[j];
            if (sc->c.state != CONN_DISCONNECTED && sc->nin + sc->nout == 0) {
                server_close(sc, STATS_SC_retired);
            }
            open = open || sc->c.state != CONN_DISCONNECTED;
        }
        if (!open) {
            TAILQ_REMOVE(&w->retiring_servers, s, retire_tqe);
            gen_release(s->retire_hold);
            pool_server_free(s);
        }
    }
    for (wp = TAILQ_FIRST(&w->retiring_pools); wp != NULL; wp = wnext) {
        wnext = TAILQ_NEXT(wp, retire_tqe);
        bool busy = wp->pool.nclients > 0;
        for (size_t i = 0; !busy && i < wp->pool.nservers; i++) {
            busy = !server_idle(wp->pool.servers[i]);
        }
        TAILQ_FOREACH (s, &w->retiring_servers, retire_tqe) {
            busy = busy || s->pool == &wp->pool;
        }
        if (!busy) {
            TAILQ_REMOVE(&w->retiring_pools, wp, retire_tqe);
            log_info("pool %s: removed", wp->pool.cp->name);
            struct gen *hold = wp->hold;
            worker_pool_free(wp);
            gen_release(hold);
        }
    }
}

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
            server_flush(conn_server(c));
        }
        while ((c = TAILQ_FIRST(&ctx->dirty_clients)) != NULL) {
            TAILQ_REMOVE(&ctx->dirty_clients, c, dirty_tqe);
            c->dirty = false;
            client_flush(conn_client(c));
        }
    } while (!TAILQ_EMPTY(&ctx->dirty_servers));
    client_reap(ctx);
    if (!TAILQ_EMPTY(&ctx->paused) && ctx->nhandshakes < ctx->max_handshakes) {
        listener_resume_paused(ctx);
    }
    if (!TAILQ_EMPTY(&w->retiring_servers) || !TAILQ_EMPTY(&w->retiring_pools)) {
        worker_sweep(w);
    }
}

static uint32_t
worker_nclients(const struct worker *w)
{
    uint32_t n = 0;
    const struct worker_pool *wp;

    for (size_t i = 0; i < w->npools; i++) {
        n += w->pools[i] != NULL ? w->pools[i]->pool.nclients : 0;
    }
    TAILQ_FOREACH (wp, &w->retiring_pools, retire_tqe) {
        n += wp->pool.nclients;
    }
    return n;
}

/* Whether w serves cp: a pool with workers = N is served by workers 0..N-1
   only (they alone listen for it and hold its server conns), so its
   requests gather on fewer server conns and each backend read carries more
   of them. */
static bool
worker_serves(const struct worker *w, const struct conf_pool *cp)
{
    return cp->workers == 0 || (uint32_t)w->id < cp->workers;
}

static struct worker_pool *
worker_pool_new(struct worker *w, const struct conf_pool *cp, const struct gen_pool *gp)
{
    struct worker_pool *wp = calloc(1, sizeof(*wp));
    char err[256];

    if (wp == NULL) {
        log_error("pool %s: out of memory", cp->name);
        return NULL;
    }
    wp->listener.fd = -1;
    if (pool_init(&wp->pool, cp, gp, protocols_get(cp->proto), &w->ctx, server_event) != 0) {
        log_error("pool %s: out of memory", cp->name);
        free(wp);
        return NULL;
    }
    if (listener_open(&wp->listener, &wp->pool, gp->listen_fd, err, sizeof(err)) != 0) {
        log_error("%s", err);
        pool_destroy(&wp->pool);
        free(wp);
        return NULL;
    }
    if (cp->preconnect) {
        route_preconnect(&wp->pool);
    }
    return wp;
}

static void
worker_retire_server(void *arg, struct pool_server *s)
{
    struct worker *w = arg;

    /* It points into the generation being replaced, which w->gen still is. */
    gen_hold(w->gen);
    s->retire_hold = w->gen;
    TAILQ_INSERT_TAIL(&w->retiring_servers, s, retire_tqe);
}

/*
 * A removed pool's clients close at a request boundary, but a client may
 * never reach one (a stalled partial request, or a reply it does not
 * read): past shutdown_timeout they are closed anyway, so a retiring pool
 * and its generation cannot be held forever.
 */
static void
worker_pool_drain_timeout_cb(int fd, short what, void *arg)
{
    struct worker_pool *wp = arg;
    struct client *c;

    (void)fd;
    (void)what;
    if (wp->pool.nclients > 0) {
        log_warn("pool %s: removed; closing %" PRIu32 " clients still busy after the drain "
                 "timeout",
                 wp->pool.cp->name, wp->pool.nclients);
    }
    while ((c = TAILQ_FIRST(&wp->pool.clients)) != NULL) {
        client_close(c, STATS_CC_drain_timeout);
    }
}

/* Clients that connected but sent nothing had their chance: from now on
   they are idle like any other (the stopping pools, and every retiring one). */
static void
worker_grace_cb(int fd, short what, void *arg)
{
    struct worker *w = arg;
    struct worker_pool *wp;

    (void)fd;
    (void)what;
    for (size_t i = 0; w->ctx.stopping && i < w->npools; i++) {
        if (w->pools[i] != NULL) {
            worker_each_client(&w->pools[i]->pool, client_end_grace);
        }
    }
    TAILQ_FOREACH (wp, &w->retiring_pools, retire_tqe) {
        worker_each_client(&wp->pool, client_end_grace);
    }
}

/* (Re)start the first-request grace: a later removal restarts it, so each
   gets at least the whole grace. */
static void
worker_start_grace(struct worker *w)
{
    struct timeval tv = util_ms_tv(CLIENT_FIRST_REQUEST_GRACE_MS);

    evtimer_add(&w->grace_timer, &tv);
}

static void
worker_retire_pool(struct worker *w, struct worker_pool *wp)
{
    uint64_t ms = w->ctx.drain_timeout_ms;
    struct timeval tv = util_ms_tv(ms);

    gen_hold(w->gen);
    wp->hold = w->gen;
    wp->pool.retiring = true;
    listener_drain_and_close(&wp->listener);
    worker_close_pool_clients(&wp->pool);
    evtimer_assign(&wp->drain_timer, w->base, worker_pool_drain_timeout_cb, wp);
    evtimer_add(&wp->drain_timer, &tv);
    wp->drain_timer_set = true;
    TAILQ_INSERT_TAIL(&w->retiring_pools, wp, retire_tqe);
    worker_start_grace(w);
}

/* Serve g from now on (see the file comment); g's hold passes to w. */
static void
worker_switch(struct worker *w, struct gen *g)
{
    const struct conf *nc = g->conf;
    struct worker_pool **np = calloc(nc->npools + 1, sizeof(*np));
    bool *taken = calloc(w->npools + 1, sizeof(*taken));
    size_t kept = 0, changed = 0;

    if (np == NULL || taken == NULL) {
        log_error("reload: out of memory; still serving the previous configuration");
        free(np);
        free(taken);
        gen_release(g);
        return;
    }
    for (size_t i = 0; i < nc->npools; i++) {
        const struct conf_pool *cp = &nc->pools[i];
        const struct gen_pool *gp = &g->pools[i];
        for (size_t j = 0; j < w->npools; j++) {
            struct worker_pool *wp = w->pools[j];
            if (taken[j] || wp == NULL || strcmp(wp->pool.cp->name, cp->name) != 0) {
                continue;
            }
            if (!worker_serves(w, cp)) {
                break; /* no longer this worker's: removed here */
            }
            if (strcmp(wp->pool.cp->listen_str, cp->listen_str) != 0 ||
                wp->pool.cp->proto != cp->proto) {
                break; /* a new address or protocol: removed + added */
            }
            if (conf_pool_equal(wp->pool.cp, cp)) {
                pool_retarget(&wp->pool, cp, gp);
                kept++;
            } else if (pool_reconfigure(&wp->pool, cp, gp, worker_retire_server, w) == 0) {
                changed++;
            } else {
                log_error("pool %s: out of memory applying the new configuration", cp->name);
                break;
            }
            taken[j] = true;
            np[i] = wp;
            break;
        }
        if (np[i] == NULL && worker_serves(w, cp)) {
            np[i] = worker_pool_new(w, cp, gp);
        }
    }
    for (size_t j = 0; j < w->npools; j++) {
        if (!taken[j] && w->pools[j] != NULL) {
            worker_retire_pool(w, w->pools[j]);
        }
    }
    free(taken);
    free(w->pools);
    w->pools = np;
    w->npools = nc->npools;
    worker_apply_limits(w, nc);
    log_debug("reload: switched to generation %" PRIu64 " (%zu pools kept, %zu changed)", g->id,
              kept, changed);
    gen_release(w->gen);
    w->gen = g;
    atomic_store_explicit(&w->gen_seen, g->id, memory_order_release);
    worker_sweep(w);
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
    struct timeval tv = util_ms_tv(timeout_ms);
    struct worker_pool *wp;

    if (w->ctx.stopping) {
        return;
    }
    w->ctx.stopping = true;
    for (size_t i = 0; i < w->npools; i++) {
        if (w->pools[i] != NULL) {
            listener_drain_and_close(&w->pools[i]->listener);
        }
    }
    atomic_store_explicit(&w->accepting_stopped, true, memory_order_release);
    for (size_t i = 0; i < w->npools; i++) {
        if (w->pools[i] != NULL) {
            worker_close_pool_clients(&w->pools[i]->pool);
        }
    }
    TAILQ_FOREACH (wp, &w->retiring_pools, retire_tqe) {
        worker_close_pool_clients(&wp->pool);
    }
    evtimer_add(&w->stop_timer, &tv);
    worker_start_grace(w);
}

static void
worker_inbox_cb(int fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t v;
    bool stop;
    uint64_t timeout;
    struct gen *g;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: another wakeup already consumed the count. */
    }
    pthread_mutex_lock(&w->lock);
    stop = w->stop_requested;
    timeout = w->shutdown_timeout_ms;
    g = w->pending_gen;
    w->pending_gen = NULL;
    pthread_mutex_unlock(&w->lock);
    if (g != NULL) {
        if (w->ctx.stopping) {
            gen_release(g);
        } else {
            worker_switch(w, g);
        }
    }
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
    struct worker_pool *wp;
    struct pool_server *s;

    for (size_t i = 0; i < w->npools; i++) {
        if (w->pools[i] != NULL) {
            listener_close(&w->pools[i]->listener);
        }
    }
    /* Clients first (their msgs become orphans), then every server conn. */
    for (size_t i = 0; i < w->npools; i++) {
        if (w->pools[i] != NULL) {
            worker_pool_shutdown(&w->pools[i]->pool, STATS_CC_stop);
        }
    }
    TAILQ_FOREACH (wp, &w->retiring_pools, retire_tqe) {
        worker_pool_shutdown(&wp->pool, STATS_CC_stop);
    }
    while ((s = TAILQ_FIRST(&w->retiring_servers)) != NULL) {
        TAILQ_REMOVE(&w->retiring_servers, s, retire_tqe);
        server_shutdown(s);
        gen_release(s->retire_hold);
        pool_server_free(s);
    }
    while ((wp = TAILQ_FIRST(&w->retiring_pools)) != NULL) {
        TAILQ_REMOVE(&w->retiring_pools, wp, retire_tqe);
        struct gen *hold = wp->hold;
        worker_pool_free(wp);
        gen_release(hold);
    }
    for (size_t i = 0; i < w->npools; i++) {
        if (w->pools[i] != NULL) {
            worker_pool_free(w->pools[i]);
        }
    }
    free(w->pools);
    w->pools = NULL;
    w->npools = 0;
    conn_ctx_destroy(&w->ctx);
    tls_worker_done();
    if (w->base != NULL) {
        event_del(&w->inbox_ev);
        event_del(&w->stop_timer);
        event_del(&w->grace_timer);
        event_base_free(w->base);
        w->base = NULL;
    }
}

static int
worker_setup(struct worker *w, char *err, size_t errlen)
{
    const struct conf *cf = w->gen->conf;
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
    conn_ctx_init(&w->ctx, w->base, w->id, cf->mbuf_size);
    w->ctx.state_size = protocols_state_size();
    worker_apply_limits(w, cf);
    w->ctx.wst = w->wst;
    w->ctx.all_wst = w->wst - w->id; /* worker_start: wst is &all[id] of nworkers */
    w->ctx.nworkers = w->nworkers;
    w->ctx.start_ms = util_mono_msec();
    evtimer_assign(&w->stop_timer, w->base, worker_stop_timer_cb, w);
    evtimer_assign(&w->grace_timer, w->base, worker_grace_cb, w);
    event_assign(&w->inbox_ev, w->base, w->efd, EV_READ | EV_PERSIST, worker_inbox_cb, w);
    event_add(&w->inbox_ev, NULL);

    w->pools = calloc(cf->npools + 1, sizeof(*w->pools));
    if (w->pools == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->npools = cf->npools;
    for (size_t i = 0; i < cf->npools; i++) {
        if (!worker_serves(w, &cf->pools[i])) {
            continue;
        }
        w->pools[i] = worker_pool_new(w, &cf->pools[i], &w->gen->pools[i]);
        if (w->pools[i] == NULL) {
            snprintf(err, errlen, "pool %s: cannot start (see above)", cf->pools[i].name);
            return -1;
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

int
worker_start(struct worker *w, int id, int nworkers, struct gen *g, struct stats_worker *counters)
{
    struct stats_worker *wst = &counters[id];
    sigset_t all, old;
    int rc;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->nworkers = nworkers;
    w->gen = g;
    w->wst = wst;
    TAILQ_INIT(&w->retiring_pools);
    TAILQ_INIT(&w->retiring_servers);
    atomic_store(&w->gen_seen, g->id);
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

static void
worker_wake(struct worker *w)
{
    uint64_t one = 1;

    if (write(w->efd, &one, sizeof(one)) < 0) {
        /* The counter cannot overflow at one write per request. */
    }
}

void
worker_post_reload(struct worker *w, struct gen *g)
{
    struct gen *older;

    gen_hold(g);
    pthread_mutex_lock(&w->lock);
    /* Only the newest matters: one the worker never switched to is dropped. */
    older = w->pending_gen;
    w->pending_gen = g;
    pthread_mutex_unlock(&w->lock);
    if (older != NULL) {
        gen_release(older);
    }
    worker_wake(w);
}

void
worker_post_stop(struct worker *w, uint64_t timeout_ms)
{
    pthread_mutex_lock(&w->lock);
    w->stop_requested = true;
    w->shutdown_timeout_ms = timeout_ms;
    pthread_mutex_unlock(&w->lock);
    worker_wake(w);
}

void
worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
    pthread_mutex_lock(&w->lock);
    if (w->pending_gen != NULL) {
        gen_release(w->pending_gen);
        w->pending_gen = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    if (w->gen != NULL) {
        gen_release(w->gen);
        w->gen = NULL;
    }
    if (w->efd >= 0) {
        close(w->efd);
        w->efd = -1;
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}
