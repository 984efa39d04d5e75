/*
 * listener: accepting clients for one pool on one worker (see listener.h).
 *
 * Out of file descriptors (EMFILE/ENFILE), the accept event is disabled and
 * a timer re-arms it: level-triggered readiness would otherwise spin.
 */
#include "listener.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "conn.h"
#include "gen.h"
#include "log.h"
#include "net.h"
#include "pool.h"

#define LISTENER_ACCEPTS_PER_EVENT 32
#define LISTENER_EMFILE_RETRY_MS 100

/* Returns false when accepting should pause (out of descriptors). */
/* At tls_max_handshakes a TLS listener stops accepting until a handshake
   finishes (listener_resume_paused): clients that open connections and
   stall cannot take every handshake slot and more. */
static bool
listener_at_cap(struct listener *l)
{
    struct conn_ctx *ctx = l->pool->ctx;

    if (l->draining || l->pool->gp->tls.accept == NULL || ctx->nhandshakes < ctx->max_handshakes) {
        return false;
    }
    event_del(&l->ev);
    l->active = false;
    l->paused = true;
    TAILQ_INSERT_TAIL(&ctx->paused, l, pause_tqe);
    log_info("pool %s: %u TLS handshakes in progress (tls_max_handshakes): accepting paused",
             l->pool->cp->name, ctx->nhandshakes);
    return true;
}

void
listener_resume_paused(struct conn_ctx *ctx)
{
    struct listener *l;

    while (ctx->nhandshakes < ctx->max_handshakes && (l = TAILQ_FIRST(&ctx->paused)) != NULL) {
        TAILQ_REMOVE(&ctx->paused, l, pause_tqe);
        l->paused = false;
        if (l->fd >= 0) {
            event_add(&l->ev, NULL);
            l->active = true;
        }
    }
}

static bool
listener_accept_some(struct listener *l, int max)
{
    for (int i = 0; i < max; i++) {
        if (listener_at_cap(l)) {
            break;
        }
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            client_accept(l->pool, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log_warn("pool %s: accept: %s; pausing accepts for %d ms", l->pool->cp->name,
                     strerror(errno), LISTENER_EMFILE_RETRY_MS);
            return false;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_warn("pool %s: accept: %s", l->pool->cp->name, strerror(errno));
        }
        break;
    }
    return true;
}

static void
listener_retry_cb(int fd, short what, void *arg)
{
    struct listener *l = arg;

    (void)fd;
    (void)what;
    if (l->fd >= 0 && !l->active) {
        event_add(&l->ev, NULL);
        l->active = true;
    }
}

static void
listener_accept_cb(int fd, short what, void *arg)
{
    struct listener *l = arg;
    struct timeval tv = util_ms_tv(LISTENER_EMFILE_RETRY_MS);

    (void)fd;
    (void)what;
    if (!listener_accept_some(l, LISTENER_ACCEPTS_PER_EVENT)) {
        event_del(&l->ev);
        l->active = false;
        evtimer_add(&l->retry, &tv);
    }
}

int
listener_open(struct listener *l, struct pool *p, int shared_fd, char *err, size_t errlen)
{
    const struct conf_pool *cp = p->cp;

    memset(l, 0, sizeof(*l));
    l->pool = p;
    if (shared_fd >= 0) {
        l->fd = shared_fd;
        l->owned = false;
    } else {
        int fd = net_listen_tcp(&p->gp->listen, (int)cp->backlog, true);
        if (fd < 0) {
            snprintf(err, errlen, "pool %s: cannot listen on %s: %s", cp->name, cp->listen_str,
                     strerror(-fd));
            l->fd = -1;
            return -1;
        }
        l->fd = fd;
        l->owned = true;
    }
    event_assign(&l->ev, p->ctx->base, l->fd, EV_READ | EV_PERSIST, listener_accept_cb, l);
    evtimer_assign(&l->retry, p->ctx->base, listener_retry_cb, l);
    event_add(&l->ev, NULL);
    l->active = true;
    stats_add(&p->ctx->wst->curr_connections, 1);
    stats_add(&p->ctx->wst->total_connections, 1);
    return 0;
}

void
listener_close(struct listener *l)
{
    if (l->fd < 0) {
        return;
    }
    event_del(&l->ev);
    event_del(&l->retry);
    l->active = false;
    if (l->paused) {
        TAILQ_REMOVE(&l->pool->ctx->paused, l, pause_tqe);
        l->paused = false;
    }
    stats_add(&l->pool->ctx->wst->curr_connections, -1);
    if (l->owned) {
        close(l->fd);
    }
    l->fd = -1;
}

void
listener_drain_and_close(struct listener *l)
{
    if (l->fd < 0) {
        return;
    }
    /* Closing a reuseport listener resets the connections in its accept
       queue; take them first so they are served. */
    if (l->owned) {
        l->draining = true;
        (void)listener_accept_some(l, INT32_MAX);
        l->draining = false;
    }
    listener_close(l);
}
