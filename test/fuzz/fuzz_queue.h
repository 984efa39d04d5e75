/*
 * fuzz_queue: the requests waiting on one server conn, for the harnesses
 * that read replies (fuzz_reply, fuzz_chain). Requests come from the
 * harness's msg cache (fuzz_cache, made on the first input by
 * fuzz_cache_ready); memcached ones are a get or a set as the bits of
 * `kinds` say, since a memcached reply depends on its command.
 * fuzz_queue_done is the reply_read callback: the reply must be the oldest
 * waiting request's.
 * The includer includes fuzz_driver.h (CHECK) first.
 */
#ifndef CMX_FUZZ_QUEUE_H
#define CMX_FUZZ_QUEUE_H

#include "msg.h"
#include "proto_mc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_QUEUE_MAX 32

static struct msg_cache fuzz_cache;

/* Make fuzz_cache, with buffers of mbuf bytes, on the first call. */
static inline void
fuzz_cache_ready(size_t mbuf)
{
    static bool ready;

    if (!ready) {
        msg_cache_init(&fuzz_cache, mbuf);
        ready = true;
    }
}

struct fuzz_queue {
    struct msg *req[FUZZ_QUEUE_MAX]; /* every request queued, in order */
    size_t nreq, ndone;              /* queued; completed */
    struct msg_tqh q;                /* those still waiting */
};

/* Queue n more requests (as many as fit). */
static inline void
fuzz_queue_add(struct fuzz_queue *fq, bool mc, size_t n, uint8_t kinds)
{
    for (size_t i = 0; i < n && fq->nreq < FUZZ_QUEUE_MAX; i++) {
        struct msg *m = msg_get(&fuzz_cache);
        CHECK(m != NULL);
        m->cmd = mc ? (uint16_t)(((kinds >> (i % 8)) & 1) ? MC_SET : MC_GET) : 0;
        m->client = (void *)&fuzz_cache; /* someone waits for the reply */
        fq->req[fq->nreq++] = m;
        TAILQ_INSERT_TAIL(&fq->q, m, s_tqe);
    }
}

static inline void
fuzz_queue_init(struct fuzz_queue *fq, bool mc, size_t n, uint8_t kinds)
{
    memset(fq, 0, sizeof(*fq));
    TAILQ_INIT(&fq->q);
    fuzz_queue_add(fq, mc, n, kinds);
}

/* reply_read's callback (arg: the fuzz_queue). */
static inline int
fuzz_queue_done(void *arg, struct msg *m, size_t total)
{
    struct fuzz_queue *fq = arg;

    CHECK(m == TAILQ_FIRST(&fq->q)); /* FIFO: the oldest request's reply */
    CHECK(total == msg_rsp_len(m));
    TAILQ_REMOVE(&fq->q, m, s_tqe);
    m->done = true;
    fq->ndone++;
    return 0;
}

static inline void
fuzz_queue_free(struct fuzz_queue *fq)
{
    for (size_t i = 0; i < fq->nreq; i++) {
        fq->req[i]->client = NULL;
        msg_release(&fuzz_cache, fq->req[i]);
    }
}

#endif
