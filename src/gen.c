/*
 * gen: building and freeing a generation (see gen.h). Runs on the
 * supervisor's thread only, before the generation is published.
 */
#include "gen.h"

#include <stdlib.h>

#include "conf.h"

static void
gen_free_pools(struct gen *g)
{
    for (size_t i = 0; i < g->conf->npools; i++) {
        free(g->pools[i].servers);
        tls_ctxs_free(&g->pools[i].tls);
    }
    free(g->pools);
}

struct gen *
gen_new(struct conf *c, struct conf_errors *errs)
{
    struct gen *g = calloc(1, sizeof(*g));
    char err[256];
    bool ok = true;

    if (g == NULL || (g->pools = calloc(c->npools + 1, sizeof(*g->pools))) == NULL) {
        free(g);
        conf_errors_add(errs, c->path, 0, "out of memory");
        return NULL;
    }
    g->conf = c;
    atomic_init(&g->refs, 1);
    for (size_t i = 0; i < c->npools; i++) {
        const struct conf_pool *p = &c->pools[i];
        struct gen_pool *gp = &g->pools[i];
        gp->listen_fd = -1;
        gp->servers = calloc(p->nservers + 1, sizeof(*gp->servers));
        if (gp->servers == NULL) {
            conf_errors_add(errs, p->file, p->line, "out of memory");
            ok = false;
            break;
        }
        if (net_resolve(p->listen.host, p->listen.port, p->listen.is_unix, &gp->listen, err,
                        sizeof(err)) != 0) {
            conf_errors_add(errs, p->file, p->line, "pool %s: listen: %s", p->name, err);
            ok = false;
        }
        for (size_t j = 0; j < p->nservers; j++) {
            const struct conf_server *s = &p->servers[j];
            if (net_resolve(s->addr.host, s->addr.port, s->addr.is_unix, &gp->servers[j].addr, err,
                            sizeof(err)) != 0) {
                conf_errors_add(errs, p->file, s->line, "pool %s: server %s: %s", p->name, s->ident,
                                err);
                ok = false;
            }
        }
        if (tls_pool_ctxs(p, &gp->tls, errs) != 0) {
            ok = false;
        }
    }
    if (!ok) {
        gen_free_pools(g);
        free(g); /* c stays the caller's */
        return NULL;
    }
    return g;
}

void
gen_free(struct gen *g)
{
    if (g == NULL) {
        return;
    }
    gen_free_pools(g);
    conf_free(g->conf);
    free(g);
}
