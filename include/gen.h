/*
 * gen: a configuration generation: one immutable struct conf plus a
 * reference count. The supervisor holds the current one; each worker holds
 * the one it serves, and one more for every retiring pool or server that
 * still points into an older one. The supervisor frees a generation once
 * nobody holds it (gen_unused) and it is not the current one.
 */
#ifndef CMX_GEN_H
#define CMX_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct conf;

struct gen {
    struct conf *conf;
    _Atomic int refs;
    uint64_t id;            /* 1 for the configuration loaded at start */
    struct gen *next;       /* the supervisor's list of generations */
};

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
