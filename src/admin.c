/*
 * admin: the stats endpoint (see admin.h).
 *
 * Rendering is done on the supervisor thread per request: sum every
 * worker's blocks field by field into a plain view, render, write, close.
 * A stats request costs the workers nothing.
 */
#include "admin.h"

#include <errno.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "net.h"
#include "pool.h"
#include "stats.h"
#include "util.h"
#include "worker.h"

struct admin {
    const struct conf *conf;
    struct worker *workers;
    int nworkers;
    struct pool_shared **shared;
    int stats_fd;
    struct event stats_ev;
    uint64_t start_sec;
    char hostname[256];
};

static void
admin_sum(const struct admin *a, struct stats_pool_view *views, uint64_t (*sf)[STATS_SERVER_NFIELDS],
          const char **names, uint64_t *total, uint64_t *curr)
{
    const struct conf *c = a->conf;
    size_t base = 0;

    *total = *curr = 0;
    for (int w = 0; w < a->nworkers; w++) {
        const struct worker_stats *ws = a->workers[w].stats;
        *total += stats_get(&ws->w.total_connections);
        *curr += stats_get(&ws->w.curr_connections);
    }
    for (size_t p = 0; p < c->npools; p++) {
        const struct conf_pool *cp = &c->pools[p];
        struct stats_pool_view *v = &views[p];
        memset(v, 0, sizeof(*v));
        v->name = cp->name;
        v->nservers = cp->nservers;
        v->server_names = &names[base];
        v->sf = &sf[base];
        for (size_t s = 0; s < cp->nservers; s++) {
            names[base + s] = cp->servers[s].ident;
            memset(sf[base + s], 0, sizeof(sf[base + s]));
        }
        for (int w = 0; w < a->nworkers; w++) {
            const struct worker_stats *ws = a->workers[w].stats;
            for (size_t f = 0; f < STATS_POOL_NFIELDS; f++) {
                v->f[f] += stats_get(&ws->pools[p].f[f]);
            }
            for (size_t s = 0; s < cp->nservers; s++) {
                for (size_t f = 0; f < STATS_SERVER_NFIELDS; f++) {
                    sf[base + s][f] += stats_get(&ws->servers[p][s].f[f]);
                }
            }
        }
        /* Ejection time is shared state, not a per-worker sum. */
        for (size_t s = 0; s < cp->nservers; s++) {
            sf[base + s][STATS_S_server_ejected_at] =
                atomic_load_explicit(&a->shared[p]->servers[s].ejected_at_us, memory_order_relaxed);
        }
        base += cp->nservers;
    }
}

static int
admin_render_stats(const struct admin *a, struct buf *out)
{
    const struct conf *c = a->conf;
    size_t nserv = 0;
    int rc = -1;

    for (size_t p = 0; p < c->npools; p++) {
        nserv += c->pools[p].nservers;
    }
    struct stats_pool_view *views = calloc(c->npools ? c->npools : 1, sizeof(*views));
    uint64_t (*sf)[STATS_SERVER_NFIELDS] = calloc(nserv ? nserv : 1, sizeof(*sf));
    const char **names = calloc(nserv ? nserv : 1, sizeof(*names));
    if (views != NULL && sf != NULL && names != NULL) {
        struct stats_doc d;
        uint64_t now = (uint64_t)time(NULL);
        memset(&d, 0, sizeof(d));
        admin_sum(a, views, sf, names, &d.total_connections, &d.curr_connections);
        d.service = "cachemux";
        d.source = a->hostname;
        d.version = PACKAGE_VERSION;
        d.uptime = util_mono_msec() / 1000 - a->start_sec;
        d.timestamp = now;
        d.pools = views;
        d.npools = c->npools;
        rc = stats_render_json(out, &d);
    }
    free(views);
    free(sf);
    free(names);
    return rc;
}

static void
admin_send_all(int fd, const uint8_t *p, size_t len)
{
    /* A short blocking write with a deadline: the document is small and
       this thread is not on any request path. */
    struct timeval tv = { 1, 0 };

    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void
admin_stats_cb(int lfd, short what, void *arg)
{
    struct admin *a = arg;
    struct buf out = { 0 };

    (void)what;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            break;
        }
        buf_reset(&out);
        if (admin_render_stats(a, &out) == 0) {
            admin_send_all(fd, buf_head(&out), buf_len(&out));
        }
        close(fd);
    }
    buf_free(&out);
}

struct admin *
admin_start(struct event_base *base, const struct conf *c, struct worker *workers, int nworkers,
            struct pool_shared **shared, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof(*a));
    struct conf_addr addr;
    char rerr[256];

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->conf = c;
    a->workers = workers;
    a->nworkers = nworkers;
    a->shared = shared;
    a->start_sec = util_mono_msec() / 1000;
    if (gethostname(a->hostname, sizeof(a->hostname)) != 0) {
        snprintf(a->hostname, sizeof(a->hostname), "unknown");
    }
    a->hostname[sizeof(a->hostname) - 1] = '\0';

    memset(&addr, 0, sizeof(addr));
    addr.host = c->stats_host;
    addr.port = c->stats_port;
    if (net_resolve(&addr, rerr, sizeof(rerr)) != 0) {
        snprintf(err, errlen, "stats: %s", rerr);
        free(a);
        return NULL;
    }
    a->stats_fd = net_listen_tcp(&addr, 128, true);
    if (a->stats_fd < 0) {
        snprintf(err, errlen, "stats: cannot listen on %s:%d: %s", c->stats_host, c->stats_port,
                 strerror(-a->stats_fd));
        free(a);
        return NULL;
    }
    event_assign(&a->stats_ev, base, a->stats_fd, EV_READ | EV_PERSIST, admin_stats_cb, a);
    event_add(&a->stats_ev, NULL);
    return a;
}

void
admin_stop(struct admin *a)
{
    if (a == NULL) {
        return;
    }
    event_del(&a->stats_ev);
    close(a->stats_fd);
    free(a);
}
