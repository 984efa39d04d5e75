/*
 * msg: allocation and recycling (see msg.h). The free list is per worker,
 * so no lock; it is bounded so an idle worker gives memory back after a
 * spike, and buffers that grew past keep_bytes are released on return.
 */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#define MSG_CACHE_MAX 4096

void
msg_cache_init(struct msg_cache *mc, size_t keep_bytes)
{
    TAILQ_INIT(&mc->free);
    mc->nfree = 0;
    mc->next_id = 1;
    mc->keep_bytes = keep_bytes;
}

void
msg_cache_destroy(struct msg_cache *mc)
{
    struct msg *m;

    while ((m = TAILQ_FIRST(&mc->free)) != NULL) {
        TAILQ_REMOVE(&mc->free, m, c_tqe);
        buf_free(&m->req);
        buf_free(&m->rsp);
        free(m);
    }
    mc->nfree = 0;
}

struct msg *
msg_get(struct msg_cache *mc)
{
    struct msg *m = TAILQ_FIRST(&mc->free);
    struct buf req, rsp;

    if (m != NULL) {
        TAILQ_REMOVE(&mc->free, m, c_tqe);
        mc->nfree--;
        req = m->req;
        rsp = m->rsp;
        buf_reset(&req);
        buf_reset(&rsp);
    } else {
        m = malloc(sizeof(*m));
        if (m == NULL) {
            return NULL;
        }
        memset(&req, 0, sizeof(req));
        memset(&rsp, 0, sizeof(rsp));
    }
    memset(m, 0, sizeof(*m));
    m->req = req;
    m->rsp = rsp;
    m->id = mc->next_id++;
    return m;
}

void
msg_put(struct msg_cache *mc, struct msg *m)
{
    free(m->frags);
    free(m->key_frag);
    m->frags = NULL;
    m->key_frag = NULL;
    if (mc->nfree >= MSG_CACHE_MAX) {
        buf_free(&m->req);
        buf_free(&m->rsp);
        free(m);
        return;
    }
    buf_reset(&m->req);
    buf_reset(&m->rsp);
    buf_shrink(&m->req, mc->keep_bytes);
    buf_shrink(&m->rsp, mc->keep_bytes);
    TAILQ_INSERT_HEAD(&mc->free, m, c_tqe);
    mc->nfree++;
}
