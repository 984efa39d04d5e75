/*
 * msg: allocation and recycling (see msg.h). The free list is per worker,
 * so no lock; it is bounded so an idle worker gives memory back after a
 * spike, and buffers that grew past keep_bytes are released on return.
 */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#define MSG_CACHE_MAX 4096
#define MSG_SPLIT_KEEP 4096 /* split blocks up to this size are kept */

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
        free(m->split_block);
        free(m);
    }
    mc->nfree = 0;
}

struct msg *
msg_get(struct msg_cache *mc)
{
    struct msg *m = TAILQ_FIRST(&mc->free);
    struct buf req, rsp;
    void *split_block = NULL;
    size_t split_cap = 0;

    if (m != NULL) {
        TAILQ_REMOVE(&mc->free, m, c_tqe);
        mc->nfree--;
        req = m->req;
        rsp = m->rsp;
        buf_reset(&req);
        buf_reset(&rsp);
        split_block = m->split_block;
        split_cap = m->split_cap;
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
    m->split_block = split_block;
    m->split_cap = split_cap;
    m->id = mc->next_id++;
    return m;
}

int
msg_split_alloc(struct msg *m, uint32_t nkeys, uint32_t maxfrags, size_t nservers,
                struct msg_split *sp)
{
    /* Pointers first, then 32-bit arrays: every part stays aligned. */
    size_t need = sizeof(struct msg *) * maxfrags + sizeof(uint32_t) * nkeys +
                  sizeof(int32_t) * nservers + 2 * sizeof(uint32_t) * maxfrags;

    if (need > m->split_cap) {
        void *p = realloc(m->split_block, need);
        if (p == NULL) {
            return -1;
        }
        m->split_block = p;
        m->split_cap = need;
    }
    uint8_t *b = m->split_block;
    m->frags = (struct msg **)b;
    b += sizeof(struct msg *) * maxfrags;
    m->key_frag = (uint32_t *)b;
    b += sizeof(uint32_t) * nkeys;
    sp->frag_of_server = (int32_t *)b;
    b += sizeof(int32_t) * nservers;
    sp->frag_server = (uint32_t *)b;
    b += sizeof(uint32_t) * maxfrags;
    sp->frag_nkeys = (uint32_t *)b;
    sp->nfrags = 0;
    memset(m->frags, 0, sizeof(struct msg *) * maxfrags);
    memset(sp->frag_nkeys, 0, sizeof(uint32_t) * maxfrags);
    for (size_t i = 0; i < nservers; i++) {
        sp->frag_of_server[i] = -1;
    }
    return 0;
}

void
msg_put(struct msg_cache *mc, struct msg *m)
{
    chain_clear(&m->req_pieces);
    chain_clear(&m->rsp_pieces);
    m->frags = NULL;
    m->key_frag = NULL;
    if (mc->nfree >= MSG_CACHE_MAX) {
        buf_free(&m->req);
        buf_free(&m->rsp);
        free(m->split_block);
        free(m);
        return;
    }
    if (m->split_cap > MSG_SPLIT_KEEP) {
        free(m->split_block);
        m->split_block = NULL;
        m->split_cap = 0;
    }
    buf_reset(&m->req);
    buf_reset(&m->rsp);
    buf_shrink(&m->req, mc->keep_bytes);
    buf_shrink(&m->rsp, mc->keep_bytes);
    TAILQ_INSERT_HEAD(&mc->free, m, c_tqe);
    mc->nfree++;
}

void
msg_release(struct msg_cache *mc, struct msg *m)
{
    if (m->client != NULL || m->server != NULL || m->parent != NULL) {
        return;
    }
    for (uint32_t i = 0; i < m->nfrags; i++) {
        struct msg *f = m->frags[i];
        if (f != NULL) {
            f->parent = NULL;
            msg_release(mc, f);
        }
    }
    msg_put(mc, m);
}
