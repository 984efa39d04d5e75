/*
 * pool: a worker's servers and continuum for one configured pool. The
 * conf generation it points to is immutable and outlives the pool.
 *
 * Server conns are embedded in their pool_server and live as long as it
 * does; a failed conn goes back to CONN_DISCONNECTED and connects again
 * when the next request needs it, so msgs never point at freed conns.
 */
#include "pool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "net.h"

int
pool_init(struct pool *p, const struct conf_pool *cp, struct conn_ctx *ctx,
          event_callback_fn server_cb, struct stats_pool *st, struct stats_server *sst)
{
    memset(p, 0, sizeof(*p));
    p->cp = cp;
    p->st = st;
    p->ctx = ctx;
    p->server_cb = server_cb;
    TAILQ_INIT(&p->clients);
    p->nservers = cp->nservers;
    p->servers = calloc(cp->nservers, sizeof(*p->servers));
    p->dservers = calloc(cp->nservers, sizeof(*p->dservers));
    if (p->servers == NULL || p->dservers == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < cp->nservers; i++) {
        struct pool_server *s = &p->servers[i];
        const struct conf_server *cs = &cp->servers[i];
        s->cs = cs;
        s->pool = p;
        s->idx = (uint32_t)i;
        s->st = &sst[i];
        s->nconns = cp->server_connections;
        s->conns = calloc(s->nconns, sizeof(*s->conns));
        if (s->conns == NULL) {
            goto fail;
        }
        for (uint32_t j = 0; j < s->nconns; j++) {
            conn_server_init(&s->conns[j], ctx, s);
            evtimer_assign(&s->conns[j].tev, ctx->base, server_cb, &s->conns[j]);
            s->conns[j].pool = p;
            s->conns[j].st = s->st;
        }
        p->dservers[i].ident = cs->ident;
        p->dservers[i].ident_len = strlen(cs->ident);
        p->dservers[i].weight = cs->weight;
        p->dservers[i].live = true;
    }
    p->dist = dist_build(cp->dist, p->dservers, p->nservers);
    if (p->dist == NULL) {
        goto fail;
    }
    return 0;

fail:
    pool_destroy(p);
    return -1;
}

void
pool_destroy(struct pool *p)
{
    if (p->servers != NULL) {
        for (size_t i = 0; i < p->nservers; i++) {
            struct pool_server *s = &p->servers[i];
            for (uint32_t j = 0; s->conns != NULL && j < s->nconns; j++) {
                evtimer_del(&s->conns[j].tev);
                conn_close_socket(&s->conns[j]);
            }
            free(s->conns);
        }
    }
    free(p->servers);
    free(p->dservers);
    dist_free(p->dist);
    memset(p, 0, sizeof(*p));
}

struct pool_server *
pool_pick(struct pool *p, const uint8_t *key, size_t len)
{
    int idx = dist_pick(p->dist, &p->cp->key_rule, key, len, &p->ctx->rng);

    return idx < 0 ? NULL : &p->servers[idx];
}

static int
pool_connect(struct pool *p, struct conn *c)
{
    const struct conf_server *cs = c->server->cs;
    int fd = net_connect(&cs->addr);

    if (fd < 0) {
        log_warn("pool %s: connect to server %s failed: %s", p->cp->name, cs->ident,
                 strerror(-fd));
        return fd;
    }
    if (p->cp->tcpkeepalive && !cs->addr.is_unix) {
        net_set_keepalive(fd);
    }
    conn_server_attach(c, fd, p->server_cb);
    if (p->cp->timeout_ms > 0) {
        struct timeval tv = { (time_t)(p->cp->timeout_ms / 1000),
                              (suseconds_t)((p->cp->timeout_ms % 1000) * 1000) };
        c->connect_deadline_ms = util_mono_msec() + p->cp->timeout_ms;
        evtimer_add(&c->tev, &tv);
    }
    stats_add(&c->st->f[STATS_S_server_connections], 1);
    stats_add(&p->ctx->wst->curr_connections, 1);
    stats_add(&p->ctx->wst->total_connections, 1);
    log_debug("pool %s: connecting to server %s (conn %" PRIu64 ")", p->cp->name, cs->ident,
              c->id);
    return 0;
}

struct conn *
pool_server_conn(struct pool_server *s, const struct conn *client, int *err)
{
    struct conn *c = &s->conns[client != NULL ? client->id % s->nconns : 0];

    if (c->state == CONN_DISCONNECTED) {
        int rc = pool_connect(s->pool, c);
        if (rc < 0) {
            *err = -rc;
            return NULL;
        }
    }
    return c;
}

void
pool_preconnect(struct pool *p)
{
    for (size_t i = 0; i < p->nservers; i++) {
        for (uint32_t j = 0; j < p->servers[i].nconns; j++) {
            struct conn *c = &p->servers[i].conns[j];
            if (c->state == CONN_DISCONNECTED) {
                (void)pool_connect(p, c);
            }
        }
    }
}
