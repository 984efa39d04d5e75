/*
 * route: sending requests to servers (see route.h). Runs on the owning
 * worker's thread only.
 *
 * A client's requests to one server always take the same server conn
 * (client id modulo server_connections, in the set of the protocol version
 * it speaks), so they reach the server in the order the client sent them.
 * A client that switches version (HELLO) does so only once every earlier
 * request is answered, so its order holds across the two sets.
 *
 * Splitting. Each key is looked up once (pool_pick) and given to its
 * server's fragment (msg_split_add); when every key sits on one server the
 * request goes whole and nothing is split (fragments counts only real
 * splits). Fragments are built and sent only once every key has a server,
 * so a split that cannot be routed sends nothing.
 */
#include "route.h"

#include <errno.h>
#include <inttypes.h>

#include "client.h"
#include "conf.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "pool.h"
#include "server.h"

/*
 * The server conn of s that carries client c's requests, connecting it if
 * needed. NULL with *err set when it cannot even start: backing off after a
 * failed connect, or the connect failed at once.
 */
static struct server_conn *
route_server_conn(struct pool_server *s, const struct client *c, int *err)
{
    /* the set of the version c speaks, then c's conn in it */
    struct server_conn *sc = c != NULL ? &s->conns[c->set * s->nset + c->c.id % s->nset]
                                       : &s->conns[0];

    if (sc->c.state == CONN_DISCONNECTED) {
        if (s->retry_at_ms != 0 && util_mono_msec() < s->retry_at_ms) {
            *err = s->last_err; /* backing off after a failed connect */
            return NULL;
        }
        int rc = server_connect(sc);
        if (rc < 0) {
            *err = -rc;
            return NULL;
        }
    }
    return sc;
}

/*
 * A request that cannot be sent because its server refused the connection,
 * is backing off after that, or is ejected: a forwarding error of the pool
 * and an error of the server (s NULL: no server is live), as nutcracker
 * counts them, so an alert on either fires while a backend is down.
 */
static void
route_count_forward_error(struct pool *p, struct pool_server *s)
{
    stats_add(&p->st->f[STATS_P_forward_error], 1);
    if (s != NULL) {
        stats_add(&s->st->f[STATS_S_server_err], 1);
    }
}

void
route_forward_to(struct client *c, struct pool_server *s, struct msg *m)
{
    int err = 0;
    struct server_conn *sc = route_server_conn(s, c, &err);

    if (sc == NULL) {
        route_count_forward_error(c->pool, s);
        client_fail_msg(c->c.ctx, m, err);
        return;
    }
    server_enqueue(sc, m, false);
}

void
route_forward(struct client *c, struct msg *m, const uint8_t *key, size_t len)
{
    struct pool_server *s = pool_pick(c->pool, key, len);

    if (s == NULL) {
        route_count_forward_error(c->pool, NULL);
        client_fail_msg(c->c.ctx, m, ECONNREFUSED);
        return;
    }
    route_forward_to(c, s, m);
}

/* A new fragment of m, appended to m->frags (room made by msg_split_alloc),
   or NULL when out of memory. */
static struct msg *
route_frag_new(struct conn_ctx *ctx, struct msg *m)
{
    struct msg *fr = msg_get(&ctx->msgs);

    if (fr != NULL) {
        fr->parent = m;
        fr->cmd = m->cmd;
        m->frags[m->nfrags++] = fr;
    }
    return fr;
}

void
route_split(struct client *c, struct msg *m, uint32_t nkeys, const struct route_split_ops *ops,
            void *arg)
{
    struct pool *p = c->pool;
    struct conn_ctx *ctx = c->c.ctx;
    struct msg_split sp;
    int err = 0;

    if (msg_split_alloc(m, nkeys, (uint32_t)MIN(p->nservers, nkeys), p->nservers, &sp) != 0) {
        client_fail_msg(ctx, m, ENOMEM);
        return;
    }
    for (uint32_t i = 0; i < nkeys; i++) {
        const uint8_t *key;
        size_t len;
        ops->key(arg, i, &key, &len);
        struct pool_server *s = pool_pick(p, key, len);
        if (s == NULL) {
            route_count_forward_error(p, NULL);
            client_fail_msg(ctx, m, ECONNREFUSED);
            return;
        }
        msg_split_add(m, &sp, i, s->idx);
    }
    m->nkeys = nkeys;
    if (sp.nfrags == 1) {
        /* Every key on one server: forward whole, nothing to split. */
        m->frags = NULL;
        m->key_frag = NULL;
        m->merge = MSG_MERGE_NONE;
        if (ops->whole(arg, m) != 0) {
            client_fail_msg(ctx, m, ENOMEM);
            return;
        }
        route_forward_to(c, p->servers[sp.frag_server[0]], m);
        return;
    }
    for (uint32_t f = 0; f < sp.nfrags && err == 0; f++) {
        struct msg *fr = route_frag_new(ctx, m);
        if (fr == NULL) {
            err = ENOMEM;
            break;
        }
        fr->nkeys = sp.frag_nkeys[f];
    }
    if (err == 0 && ops->fragments(arg, m) != 0) {
        err = ENOMEM;
    }
    if (err != 0) {
        /* Nothing was sent: the fragments go with the parent. */
        client_fail_msg(ctx, m, err);
        return;
    }
    stats_add(&p->st->f[STATS_P_fragments], sp.nfrags);
    for (uint32_t f = 0; f < sp.nfrags; f++) {
        route_forward_to(c, p->servers[sp.frag_server[f]], m->frags[f]);
    }
}

/* Whether s is out of the ring now (auto_eject_hosts). */
static bool
route_ejected(const struct pool *p, const struct pool_server *s)
{
    if (!p->cp->auto_eject_hosts) {
        return false;
    }
    uint64_t until = atomic_load_explicit(&s->shared->ejected_until_ms, memory_order_relaxed);
    return until != 0 && until > util_mono_msec();
}

void
route_fanout(struct client *c, struct msg *m, uint32_t first, uint32_t n,
             int (*build)(void *arg, struct msg *fr, uint32_t server), void *arg)
{
    struct pool *p = c->pool;
    struct conn_ctx *ctx = c->c.ctx;
    struct msg_split sp;
    int err = 0;

    if (n == 0 || first + n > p->nservers) {
        client_fail_msg(ctx, m, EINVAL);
        return;
    }
    for (uint32_t i = first; i < first + n; i++) {
        if (route_ejected(p, p->servers[i])) {
            route_count_forward_error(p, p->servers[i]);
            client_fail_msg(ctx, m, ECONNREFUSED);
            return;
        }
    }
    if (msg_split_alloc(m, 0, n, 0, &sp) != 0) {
        client_fail_msg(ctx, m, ENOMEM);
        return;
    }
    for (uint32_t f = 0; f < n && err == 0; f++) {
        struct msg *fr = route_frag_new(ctx, m);
        if (fr == NULL) {
            err = ENOMEM;
            break;
        }
        if (build(arg, fr, first + f) != 0) {
            err = ENOMEM;
        }
    }
    if (err != 0) {
        client_fail_msg(ctx, m, err); /* nothing was sent */
        return;
    }
    for (uint32_t f = 0; f < n; f++) {
        route_forward_to(c, p->servers[first + f], m->frags[f]);
    }
}

void
route_preconnect(struct pool *p)
{
    for (size_t i = 0; i < p->nservers; i++) {
        /* the first set only: a RESP3 set opens when a client needs it */
        for (uint32_t j = 0; j < p->servers[i]->nset; j++) {
            struct server_conn *sc = &p->servers[i]->conns[j];
            /* A failure is logged and counted; the next request retries. */
            if (sc->c.state == CONN_DISCONNECTED && server_connect(sc) != 0) {
                continue;
            }
        }
    }
}
