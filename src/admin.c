/*
 * admin: the operator endpoints (see admin.h).
 *
 * Rendering is done on the supervisor thread per request: a snapshot sums
 * every worker's blocks field by field (relaxed loads) into plain views,
 * then the JSON or Prometheus renderer walks them. A stats or metrics
 * request costs the workers nothing.
 *
 * The metrics port is served by httpd, which owns its connections and
 * bounds what a client can cost the supervisor (an 8 KiB request head,
 * 5 s per request, 64 connections with the oldest unfinished request
 * evicted for a newcomer, non-blocking writes); this file only routes a
 * path to its body. Nothing else runs on that thread that a slow or
 * hostile scraper could hold up.
 *
 * The stats port reads nothing and writes one document per connect with a
 * blocking write bounded by SO_SNDTIMEO (1 s). Its send buffer is sized to
 * the document first, so the write completes at once unless the document
 * is larger than the kernel allows a socket to buffer (net.core.wmem_max);
 * only then can a client that does not read hold the supervisor, for at
 * most that second.
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
#include "conn.h"
#include "gen.h"
#include "httpd.h"
#include "log.h"
#include "net.h"
#include "protocols.h"
#include "registry.h"
#include "stats.h"
#include "util.h"

#define ADMIN_BACKLOG 128

struct admin {
    const struct gen *gen; /* the generation whose pools are shown */
    const struct registry *reg;
    const struct admin_reloads *reloads;
    int stats_fd;
    struct event stats_ev;
    struct httpd *http; /* metrics_listen, or NULL */
    uint64_t start_msec;
    bool stopping;
    char hostname[256];
};

/* Everything a renderer needs, summed over the workers at one moment. */
struct admin_snapshot {
    struct stats_doc doc;
    struct stats_pool_view *views;
    uint64_t (*sf)[STATS_SERVER_NFIELDS];
    uint64_t (*sclosed)[STATS_SERVER_CLOSE_N];
    uint64_t (*sconns)[STATS_CONN_SETS];
    struct stats_hist_view *shist;
    struct stats_tls_view *stls;
    const char **names;
    uint64_t *worker_clients;
    uint64_t *worker_requests;
};

static void
admin_snapshot_free(struct admin_snapshot *s)
{
    free(s->views);
    free(s->sf);
    free(s->sclosed);
    free(s->sconns);
    free(s->shist);
    free(s->stls);
    free(s->names);
    free(s->worker_clients);
    free(s->worker_requests);
}

/* The labels of cp's server conn sets into v (none when its protocol has
   one set: server_connections then carries no proto label). */
static void
admin_set_labels(const struct conf_pool *cp, struct stats_pool_view *v)
{
    const struct proto_ops *ops = protocols_get(cp->proto);

    if (ops == NULL || ops->nsets < 2) {
        return;
    }
    for (size_t k = 0; k < ops->nsets && k < STATS_CONN_SETS; k++) {
        v->set_labels[k] = ops->sets[k]->conn_label;
    }
}

static int
admin_snapshot(const struct admin *a, struct admin_snapshot *s)
{
    const struct conf *c = a->gen->conf;
    size_t nserv = 0, base = 0;

    memset(s, 0, sizeof(*s));
    for (size_t p = 0; p < c->npools; p++) {
        nserv += c->pools[p].nservers;
    }
    s->views = calloc(c->npools + 1, sizeof(*s->views));
    s->sf = calloc(nserv + 1, sizeof(*s->sf));
    s->sclosed = calloc(nserv + 1, sizeof(*s->sclosed));
    s->sconns = calloc(nserv + 1, sizeof(*s->sconns));
    s->shist = calloc(nserv + 1, sizeof(*s->shist));
    s->stls = calloc(nserv + 1, sizeof(*s->stls));
    s->names = calloc(nserv + 1, sizeof(*s->names));
    int nworkers = a->reg->nworkers;
    s->worker_clients = calloc((size_t)nworkers + 1, sizeof(uint64_t));
    s->worker_requests = calloc((size_t)nworkers + 1, sizeof(uint64_t));
    if (s->views == NULL || s->sf == NULL || s->sclosed == NULL || s->sconns == NULL ||
        s->shist == NULL || s->stls == NULL || s->names == NULL || s->worker_clients == NULL ||
        s->worker_requests == NULL) {
        admin_snapshot_free(s);
        return -1;
    }

    struct stats_doc *d = &s->doc;
    for (int w = 0; w < nworkers; w++) {
        const struct stats_worker *ws = &a->reg->workers[w];
        d->total_connections += stats_get(&ws->total_connections);
        d->curr_connections += stats_get(&ws->curr_connections);
        s->worker_clients[w] = stats_get(&ws->clients);
        s->worker_requests[w] = stats_get(&ws->requests);
    }
    for (size_t p = 0; p < c->npools; p++) {
        const struct conf_pool *cp = &c->pools[p];
        const struct gen_pool *gp = &a->gen->pools[p];
        struct stats_pool_view *v = &s->views[p];
        v->name = cp->name;
        v->nservers = cp->nservers;
        v->server_names = &s->names[base];
        v->sf = &s->sf[base];
        v->sclosed = &s->sclosed[base];
        v->sconns = &s->sconns[base];
        admin_set_labels(cp, v);
        v->shist = &s->shist[base];
        v->stls = &s->stls[base];
        v->tls = cp->tls.on;
        v->server_tls = cp->server_tls.on;
        if (cp->tls.on) {
            v->cert_file = cp->tls.cert_file.path;
            v->cert_not_after = gp->tls.cert_not_after;
        }
        if (cp->server_tls.on && cp->server_tls.cert_file.path != NULL) {
            v->server_cert_file = cp->server_tls.cert_file.path;
            v->server_cert_not_after = gp->tls.server_cert_not_after;
        }
        for (size_t k = 0; k < cp->nservers; k++) {
            s->names[base + k] = cp->servers[k].ident;
        }
        for (int w = 0; w < nworkers; w++) {
            const struct stats_pool *ps = &gp->reg->st[w];
            for (size_t f = 0; f < STATS_POOL_NFIELDS; f++) {
                v->f[f] += stats_get(&ps->f[f]);
            }
            for (size_t r = 0; r < STATS_CLIENT_CLOSE_N; r++) {
                v->closed[r] += stats_get(&ps->closed[r]);
            }
            stats_hist_sum(&v->hist, &ps->hist);
            stats_tls_sum(&v->tls_v, &ps->tls);
            for (size_t k = 0; k < cp->nservers; k++) {
                const struct stats_server *ss = &gp->servers[k].reg->st[w];
                for (size_t f = 0; f < STATS_SERVER_NFIELDS; f++) {
                    s->sf[base + k][f] += stats_get(&ss->f[f]);
                }
                for (size_t r = 0; r < STATS_SERVER_CLOSE_N; r++) {
                    s->sclosed[base + k][r] += stats_get(&ss->closed[r]);
                }
                for (size_t r = 0; r < STATS_CONN_SETS; r++) {
                    s->sconns[base + k][r] += stats_get(&ss->set_connections[r]);
                }
                stats_hist_sum(&s->shist[base + k], &ss->hist);
                stats_tls_sum(&s->stls[base + k], &ss->tls);
            }
        }
        /* Ejection time is shared state, not a per-worker sum. */
        for (size_t k = 0; k < cp->nservers; k++) {
            s->sf[base + k][STATS_S_server_ejected_at] = atomic_load_explicit(
                &gp->servers[k].reg->shared.ejected_at_us, memory_order_relaxed);
        }
        base += cp->nservers;
    }
    d->service = "cachemux";
    d->source = a->hostname;
    d->version = PACKAGE_VERSION;
    d->uptime = (util_mono_msec() - a->start_msec) / 1000;
    d->timestamp = (uint64_t)time(NULL);
    d->pools = s->views;
    d->npools = c->npools;
    d->nworkers = (size_t)nworkers;
    d->reload_generation = a->reloads->generation;
    d->reloads_ok = a->reloads->ok;
    d->reloads_rejected = a->reloads->rejected;
    d->worker_clients = s->worker_clients;
    d->worker_requests = s->worker_requests;
    return 0;
}

static void
admin_send_all(int fd, const uint8_t *p, size_t len)
{
    /* A short blocking write with a deadline: the document is small and
       this thread is not on any request path. A send buffer that holds the
       whole document makes the write return at once even if the client
       never reads (the kernel doubles the value we set; we only ever raise). */
    struct timeval tv = { 1, 0 };
    int cur = 0;
    socklen_t curlen = sizeof(cur);

    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (len <= INT32_MAX && getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &curlen) == 0 &&
        (size_t)cur / 2 < len) {
        int want = (int)len;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
    }
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
    struct admin_snapshot s;

    (void)what;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            break;
        }
        buf_reset(&out);
        if (admin_snapshot(a, &s) == 0) {
            if (stats_render_json(&out, &s.doc) == 0) {
                admin_send_all(fd, buf_head(&out), buf_len(&out));
            }
            admin_snapshot_free(&s);
        }
        close(fd);
    }
    buf_free(&out);
}

static void
admin_body(struct httpd_response *rsp, int status, const char *text)
{
    rsp->status = status;
    rsp->content_type = "text/plain";
    if (buf_append(rsp->body, text, strlen(text)) != 0) {
        buf_reset(rsp->body);
        rsp->status = 500;
    }
}

static bool
admin_path_is(const struct httpd_request *req, const char *path)
{
    return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

/* The metrics port's routes; httpd has already answered any method but
   GET and HEAD, and drops the body for HEAD. */
static void
admin_http_cb(void *arg, const struct httpd_request *req, struct httpd_response *rsp)
{
    struct admin *a = arg;

    if (admin_path_is(req, "/metrics")) {
        struct admin_snapshot s;
        if (admin_snapshot(a, &s) != 0) {
            admin_body(rsp, 500, "out of memory\n");
            return;
        }
        if (stats_render_prom(rsp->body, &s.doc) != 0) {
            buf_reset(rsp->body);
            admin_body(rsp, 500, "out of memory\n");
        } else {
            rsp->status = 200;
            rsp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        }
        admin_snapshot_free(&s);
    } else if (admin_path_is(req, "/healthz")) {
        admin_body(rsp, a->stopping ? 503 : 200, a->stopping ? "stopping\n" : "ok\n");
    } else {
        admin_body(rsp, 404, "not found\n");
    }
}

static int
admin_open_metrics(struct admin *a, struct event_base *base, char *err, size_t errlen)
{
    const char *listen = a->gen->conf->metrics_listen;
    struct conf_addr addr;
    struct net_addr na;
    char rerr[256];

    memset(&addr, 0, sizeof(addr));
    if (conf_value_addr(listen, false, &addr, rerr, sizeof(rerr)) != 0 || addr.is_unix) {
        snprintf(err, errlen, "metrics_listen '%s': %s", listen,
                 addr.is_unix ? "must be host:port" : rerr);
        free(addr.host);
        return -1;
    }
    int rc = net_resolve(addr.host, addr.port, false, &na, rerr, sizeof(rerr));
    free(addr.host);
    if (rc != 0) {
        snprintf(err, errlen, "metrics_listen: %s", rerr);
        return -1;
    }
    int fd = net_listen_tcp(&na, ADMIN_BACKLOG, true);
    if (fd < 0) {
        snprintf(err, errlen, "metrics: cannot listen on %s: %s", listen, strerror(-fd));
        return -1;
    }
    a->http = httpd_start(base, fd, "metrics", admin_http_cb, a);
    if (a->http == NULL) {
        snprintf(err, errlen, "metrics: out of memory serving %s", listen);
        return -1;
    }
    return 0;
}

void
admin_set_gen(struct admin *a, const struct gen *g)
{
    a->gen = g;
}

struct admin *
admin_start(struct event_base *base, const struct gen *g, const struct registry *reg,
            const struct admin_reloads *reloads, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof(*a));
    const struct conf *c = g->conf;
    struct net_addr addr;
    char rerr[256];

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->gen = g;
    a->reg = reg;
    a->reloads = reloads;
    a->stats_fd = -1;
    a->start_msec = util_mono_msec();
    if (gethostname(a->hostname, sizeof(a->hostname)) != 0) {
        snprintf(a->hostname, sizeof(a->hostname), "unknown");
    }
    a->hostname[sizeof(a->hostname) - 1] = '\0';

    if (net_resolve(c->stats_host, c->stats_port, false, &addr, rerr, sizeof(rerr)) != 0) {
        snprintf(err, errlen, "stats: %s", rerr);
        admin_stop(a);
        return NULL;
    }
    a->stats_fd = net_listen_tcp(&addr, ADMIN_BACKLOG, true);
    if (a->stats_fd < 0) {
        snprintf(err, errlen, "stats: cannot listen on %s:%d: %s", c->stats_host, c->stats_port,
                 strerror(-a->stats_fd));
        admin_stop(a);
        return NULL;
    }
    event_assign(&a->stats_ev, base, a->stats_fd, EV_READ | EV_PERSIST, admin_stats_cb, a);
    event_add(&a->stats_ev, NULL);
    if (c->metrics_listen != NULL && admin_open_metrics(a, base, err, errlen) != 0) {
        admin_stop(a);
        return NULL;
    }
    return a;
}

void
admin_set_stopping(struct admin *a)
{
    if (a != NULL) {
        a->stopping = true;
    }
}

void
admin_stop(struct admin *a)
{
    if (a == NULL) {
        return;
    }
    if (a->stats_fd >= 0) {
        event_del(&a->stats_ev);
        close(a->stats_fd);
    }
    httpd_free(a->http);
    free(a);
}
