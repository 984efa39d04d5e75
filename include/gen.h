/*
 * gen: a configuration generation. The configuration itself (struct conf,
 * immutable once loaded) plus what the supervisor binds to it before it is
 * published: every address resolved, each pool's and server's registry
 * record (counters and shared state that outlive generations) and the unix
 * listeners shared by the workers. Nothing in a generation changes after
 * the supervisor publishes it to the workers, so they read it without locks.
 *
 * Reference-counted: the supervisor holds the current one; each worker
 * holds the one it serves, and one more for every retiring pool or server
 * that still points into an older one. The supervisor frees a generation
 * once nobody holds it (gen_unused) and it is not the current one.
 */
#ifndef CMX_GEN_H
#define CMX_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net.h"
#include "tls.h"

struct conf;
struct conf_errors;
struct reg_pool;
struct reg_server;

struct gen_server {
    struct reg_server *reg; /* counters and ejection state */
    struct net_addr addr;
};

struct gen_pool {
    struct reg_pool *reg; /* counters, client count, ejection generation */
    struct net_addr listen;
    int listen_fd;              /* a unix listener shared by the workers, or -1 */
    struct gen_server *servers; /* parallel to the conf pool's servers */
    struct tls_ctxs tls;        /* the pool's TLS contexts (tls.h), read-only */
};

struct gen {
    struct conf *conf;
    struct gen_pool *pools; /* parallel to conf->pools */
    _Atomic int refs;
    uint64_t id;      /* 1 for the configuration loaded at start */
    struct gen *next; /* the supervisor's list of generations */
};

/*
 * A generation for c with every listen and server address resolved
 * (blocking DNS: supervisor only) and every TLS context built from its
 * files, no registry records and no listeners yet, one reference held. Problems are added to errs as FILE:LINE
 * messages. Returns NULL on any problem, and c stays the caller's;
 * otherwise the generation owns c.
 */
struct gen *gen_new(struct conf *c, struct conf_errors *errs);

/* Free g and its configuration (no listener is closed here). */
void gen_free(struct gen *g);

static inline void
gen_hold(struct gen *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

static inline void
gen_release(struct gen *g)
{
    atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel);
}

static inline bool
gen_unused(struct gen *g)
{
    return atomic_load_explicit(&g->refs, memory_order_acquire) == 0;
}

#endif
