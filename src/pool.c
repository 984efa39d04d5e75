/*
 * pool: a worker's servers and continuum for one configured pool. The
 * conf generation it points to is immutable and outlives the pool.
 *
 * Server conns are embedded in their pool_server and live as long as it
 * does; a failed conn goes back to CONN_DISCONNECTED and connects again
 * when the next request needs it (server.c), so msgs never point at freed
 * conns.
 */
#include "pool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "gen.h"
#include "log.h"
#include "tls.h"

#define POOL_BACKOFF_MIN_MS 10
#define POOL_BACKOFF_MAX_MS 1000

/* Rebuild this worker's continuum from the shared ejection state. */
static int
pool_rebuild(struct pool *p, uint64_t now)
{
    uint64_t next = 0;
    size_t live = 0;

    p->eject_gen_seen = atomic_load_explicit(&p->reg->eject_gen, memory_order_acquire);
    for (size_t i = 0; i < p->nservers; i++) {
        struct pool_server *s = p->servers[i];
        uint64_t until =
            p->cp->auto_eject_hosts
                ? atomic_load_explicit(&s->shared->ejected_until_ms, memory_order_relaxed)
                : 0;
        bool out = until > now;
        p->dservers[i].ident = s->cs->ident;
        p->dservers[i].ident_len = strlen(s->cs->ident);
        p->dservers[i].weight = s->cs->weight;
        p->dservers[i].live = !out;
        live += !out;
        if (out && (next == 0 || until < next)) {
            next = until;
        }
    }
    struct dist *d = dist_build(p->cp->dist, p->dservers, p->nservers);
    if (d == NULL) {
        log_error("pool %s: out of memory rebuilding the continuum; keeping the old one",
                  p->cp->name);
        return -1;
    }
    dist_free(p->dist);
    p->dist = d;
    p->next_rebuild_ms = next;
    if (live < p->nservers) {
        log_info("pool %s: continuum rebuilt with %zu of %zu servers", p->cp->name, live,
                 p->nservers);
    }
    return 0;
}

void
pool_server_ok(struct pool_server *s)
{
    s->failures = 0;
    s->backoff_ms = 0;
}

void
pool_server_failed(struct pool_server *s, int err, bool connect_failed)
{
    struct pool *p = s->pool;
    const struct conf_pool *cp = p->cp;
    uint64_t now = util_mono_msec();

    if (connect_failed) {
        s->last_err = err;
        s->backoff_ms = s->backoff_ms == 0 ? POOL_BACKOFF_MIN_MS
                                           : MIN(s->backoff_ms * 2, POOL_BACKOFF_MAX_MS);
        s->retry_at_ms = now + s->backoff_ms;
    }
    if (!cp->auto_eject_hosts || ++s->failures < cp->server_failure_limit) {
        return;
    }
    s->failures = 0;
    uint64_t old = atomic_load_explicit(&s->shared->ejected_until_ms, memory_order_relaxed);
    if (old > now) {
        return; /* another worker ejected it already */
    }
    uint64_t until = now + cp->server_retry_timeout_ms;
    if (!atomic_compare_exchange_strong(&s->shared->ejected_until_ms, &old, until)) {
        return;
    }
    atomic_store_explicit(&s->shared->ejected_at_us, util_wall_usec(), memory_order_relaxed);
    atomic_fetch_add_explicit(&p->reg->eject_gen, 1, memory_order_release);
    stats_add(&p->st->f[STATS_P_server_ejects], 1);
    log_warn("pool %s: server %s ejected for %" PRIu64 " ms after %u failures", cp->name,
             s->cs->ident, cp->server_retry_timeout_ms, cp->server_failure_limit);
    (void)pool_rebuild(p, now);
}

static struct pool_server *
pool_server_new(struct pool *p, const struct conf_server *cs, const struct gen_server *gs)
{
    struct pool_server *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return NULL;
    }
    s->cs = cs;
    s->gs = gs;
    s->pool = p;
    s->st = &gs->reg->st[p->ctx->worker_id];
    s->shared = &gs->reg->shared;
    s->nset = p->cp->server_connections;
    s->nconns = s->nset * MAX(p->proto->nsets, 1);
    s->conns = calloc(s->nconns, sizeof(*s->conns));
    if (s->conns == NULL) {
        free(s);
        return NULL;
    }
    for (uint32_t j = 0; j < s->nconns; j++) {
        struct server_conn *sc = &s->conns[j];
        uint32_t set = j / s->nset;
        sc->c.ctx = p->ctx;
        sc->c.kind = CONN_SERVER;
        sc->c.state = CONN_DISCONNECTED;
        sc->c.fd = -1;
        sc->c.id = p->ctx->next_conn_id++;
        sc->server = s;
        sc->pool = p;
        sc->proto = p->proto->nsets > 0 ? p->proto->sets[set] : p->proto;
        sc->st = s->st;
        TAILQ_INIT(&sc->in_q);
        TAILQ_INIT(&sc->out_q);
        evtimer_assign(&sc->tev, p->ctx->base, p->server_cb, sc);
    }
    return s;
}

void
pool_server_free(struct pool_server *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t j = 0; j < s->nconns; j++) {
        evtimer_del(&s->conns[j].tev);
        tls_session_free(s->conns[j].tls_session);
    }
    free(s->conns);
    free(s);
}

int
pool_init(struct pool *p, const struct conf_pool *cp, const struct gen_pool *gp,
          const struct proto_ops *proto, struct conn_ctx *ctx, event_callback_fn server_cb)
{
    memset(p, 0, sizeof(*p));
    p->cp = cp;
    p->gp = gp;
    p->proto = proto;
    p->ctx = ctx;
    p->reg = gp->reg;
    p->st = &gp->reg->st[ctx->worker_id];
    p->server_cb = server_cb;
    TAILQ_INIT(&p->clients);
    p->servers = calloc(cp->nservers, sizeof(*p->servers));
    p->dservers = calloc(cp->nservers, sizeof(*p->dservers));
    if (p->servers == NULL || p->dservers == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < cp->nservers; i++) {
        p->servers[i] = pool_server_new(p, &cp->servers[i], &gp->servers[i]);
        if (p->servers[i] == NULL) {
            goto fail;
        }
        p->servers[i]->idx = (uint32_t)i;
        p->nservers++;
    }
    if (pool_rebuild(p, util_mono_msec()) != 0) {
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
    for (size_t i = 0; p->servers != NULL && i < p->nservers; i++) {
        pool_server_free(p->servers[i]);
    }
    free(p->servers);
    free(p->dservers);
    dist_free(p->dist);
    memset(p, 0, sizeof(*p));
}

void
pool_retarget(struct pool *p, const struct conf_pool *cp, const struct gen_pool *gp)
{
    /* Equal configs list the same servers in the same (identity) order,
       and the registry gives equal identities the same records. */
    p->cp = cp;
    p->gp = gp;
    for (size_t i = 0; i < p->nservers; i++) {
        p->servers[i]->cs = &cp->servers[i];
        p->servers[i]->gs = &gp->servers[i];
        p->dservers[i].ident = cp->servers[i].ident;
    }
}

int
pool_reconfigure(struct pool *p, const struct conf_pool *cp, const struct gen_pool *gp,
                 void (*retire)(void *arg, struct pool_server *s), void *arg)
{
    struct pool_server **servers = calloc(cp->nservers, sizeof(*servers));
    struct dist_server *dservers = calloc(cp->nservers, sizeof(*dservers));
    bool *kept = calloc(p->nservers + 1, sizeof(*kept));
    const struct conf_pool *old_cp = p->cp;
    const struct gen_pool *old_gp = p->gp;

    if (servers == NULL || dservers == NULL || kept == NULL) {
        goto fail;
    }
    /* Conns were authenticated and SELECTed for the old settings: keep
       none if those changed. */
    bool keep_conns = old_cp->redis_db == cp->redis_db &&
                      ((old_cp->redis_auth == NULL && cp->redis_auth == NULL) ||
                       (old_cp->redis_auth != NULL && cp->redis_auth != NULL &&
                        strcmp(old_cp->redis_auth, cp->redis_auth) == 0));
    p->cp = cp; /* new servers are made with the new server_connections */
    p->gp = gp;
    for (size_t i = 0; i < cp->nservers; i++) {
        const struct conf_server *cs = &cp->servers[i];
        for (size_t j = 0; keep_conns && j < p->nservers; j++) {
            struct pool_server *o = p->servers[j];
            if (!kept[j] && strcmp(o->cs->ident, cs->ident) == 0 &&
                conf_server_same_addr(o->cs, cs) && o->nset == cp->server_connections) {
                kept[j] = true;
                servers[i] = o;
                break;
            }
        }
        if (servers[i] == NULL) {
            servers[i] = pool_server_new(p, cs, &gp->servers[i]);
            if (servers[i] == NULL) {
                p->cp = old_cp;
                p->gp = old_gp;
                goto fail;
            }
        }
    }
    for (size_t j = 0; j < p->nservers; j++) {
        if (!kept[j]) {
            retire(arg, p->servers[j]);
        }
    }
    for (size_t i = 0; i < cp->nservers; i++) {
        servers[i]->cs = &cp->servers[i];
        servers[i]->gs = &gp->servers[i];
        servers[i]->idx = (uint32_t)i;
    }
    free(p->servers);
    free(p->dservers);
    p->servers = servers;
    p->dservers = dservers;
    p->nservers = cp->nservers;
    free(kept);
    if (pool_rebuild(p, util_mono_msec()) != 0) {
        return -1; /* the old dist stays; requests still route somewhere valid */
    }
    return 0;

fail:
    for (size_t i = 0; servers != NULL && i < cp->nservers; i++) {
        bool old = false;
        for (size_t j = 0; j < p->nservers; j++) {
            old = old || p->servers[j] == servers[i];
        }
        if (!old) {
            pool_server_free(servers[i]);
        }
    }
    free(servers);
    free(dservers);
    free(kept);
    return -1;
}

struct pool_server *
pool_pick(struct pool *p, const uint8_t *key, size_t len)
{
    if (p->cp->auto_eject_hosts) {
        /* One relaxed load per request; a clock read only while a server
           is out of the ring. */
        uint64_t gen = atomic_load_explicit(&p->reg->eject_gen, memory_order_relaxed);
        if (gen != p->eject_gen_seen ||
            (p->next_rebuild_ms != 0 && util_mono_msec() >= p->next_rebuild_ms)) {
            (void)pool_rebuild(p, util_mono_msec());
        }
    }
    int idx = dist_pick(p->dist, &p->cp->key_rule, key, len, &p->ctx->rng);

    return idx < 0 ? NULL : p->servers[idx];
}

bool
pool_tls_log_allowed(struct pool *p, uint32_t *dropped)
{
    uint64_t now = util_mono_msec();

    if (now >= p->tls_log_ms) {
        p->tls_log_ms = now + 1000; /* a new window */
        p->tls_log_lines = 0;
    }
    if (p->tls_log_lines == POOL_TLS_LOG_PER_SEC) {
        p->tls_log_dropped++;
        return false;
    }
    p->tls_log_lines++;
    *dropped = p->tls_log_dropped;
    p->tls_log_dropped = 0;
    return true;
}
