/*
 * registry: records that outlive configuration generations (see
 * registry.h). Lists are short (pools and servers of a config) and only the
 * supervisor walks or extends them.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "gen.h"

/* n zeroed blocks of size bytes, cache-line aligned (each worker writes
   its own). */
static void *
registry_blocks(size_t size, int n)
{
    void *p = aligned_alloc(CACHE_LINE, CACHE_ROUND(size * (size_t)n));

    if (p != NULL) {
        memset(p, 0, size * (size_t)n);
    }
    return p;
}

int
registry_init(struct registry *r, int nworkers)
{
    memset(r, 0, sizeof(*r));
    r->nworkers = nworkers;
    r->workers = registry_blocks(sizeof(*r->workers), nworkers);
    return r->workers == NULL ? -1 : 0;
}

void
registry_free(struct registry *r)
{
    struct reg_pool *p, *pn;
    struct reg_server *s, *sn;

    for (p = r->pools; p != NULL; p = pn) {
        pn = p->next;
        for (s = p->servers; s != NULL; s = sn) {
            sn = s->next;
            free(s->ident);
            free(s->st);
            free(s);
        }
        free(p->name);
        free(p->st);
        free(p);
    }
    free(r->workers);
    memset(r, 0, sizeof(*r));
}

static struct reg_pool *
registry_pool(struct registry *r, const char *name)
{
    struct reg_pool *p;

    for (p = r->pools; p != NULL; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    p = registry_blocks(sizeof(*p), 1);
    if (p == NULL) {
        return NULL;
    }
    p->name = strdup(name);
    p->st = registry_blocks(sizeof(*p->st), r->nworkers);
    if (p->name == NULL || p->st == NULL) {
        free(p->name);
        free(p->st);
        free(p);
        return NULL;
    }
    p->next = r->pools;
    r->pools = p;
    return p;
}

static struct reg_server *
registry_server(struct registry *r, struct reg_pool *p, const char *ident)
{
    struct reg_server *s;

    for (s = p->servers; s != NULL; s = s->next) {
        if (strcmp(s->ident, ident) == 0) {
            return s;
        }
    }
    s = registry_blocks(sizeof(*s), 1);
    if (s == NULL) {
        return NULL;
    }
    s->ident = strdup(ident);
    s->st = registry_blocks(sizeof(*s->st), r->nworkers);
    if (s->ident == NULL || s->st == NULL) {
        free(s->ident);
        free(s->st);
        free(s);
        return NULL;
    }
    s->next = p->servers;
    p->servers = s;
    return s;
}

int
registry_attach(struct registry *r, struct gen *g)
{
    const struct conf *c = g->conf;

    for (size_t i = 0; i < c->npools; i++) {
        const struct conf_pool *cp = &c->pools[i];
        struct gen_pool *gp = &g->pools[i];
        gp->reg = registry_pool(r, cp->name);
        if (gp->reg == NULL) {
            return -1;
        }
        for (size_t j = 0; j < cp->nservers; j++) {
            gp->servers[j].reg = registry_server(r, gp->reg, cp->servers[j].ident);
            if (gp->servers[j].reg == NULL) {
                return -1;
            }
        }
    }
    return 0;
}
