/*
 * msg: one request and, once it arrives, its reply. A msg is owned by the
 * worker that parsed it and lives on at most two queues at once: its client
 * conn's request queue (whole requests and split parents only, in arrival
 * order) and one server conn's in_q or out_q (whole requests and fragments).
 *
 *   client q:  [m1] -> [m2 (parent)] -> [m3]
 *                        |  frags[0] -> server A out_q
 *                        |  frags[1] -> server B in_q
 *
 * A msg whose client has gone away stays on its server queue (the FIFO
 * pairing of replies needs it) with client == NULL, and is freed when its
 * reply comes or its server conn fails. msgs are recycled through a
 * per-worker free list that keeps their buffers, so steady traffic does not
 * call malloc.
 */
#ifndef CMX_MSG_H
#define CMX_MSG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"

struct conn;
struct stats_server;

struct msg {
    TAILQ_ENTRY(msg) c_tqe;     /* client conn's request queue */
    TAILQ_ENTRY(msg) s_tqe;     /* server conn's in_q / out_q */
    struct conn *client;        /* owner; NULL once the client is gone */
    struct conn *server;        /* server conn it is queued on, or NULL */
    struct msg *parent;         /* a fragment's split request */
    struct msg **frags;         /* a split request's fragments */
    uint32_t nfrags;
    uint32_t nfrags_done;
    uint32_t *key_frag;         /* split request: fragment of each key */
    void *split_block;          /* holds frags and key_frag; kept for reuse */
    size_t split_cap;
    struct buf req;             /* request bytes (to the server, or as parsed) */
    size_t req_sent;            /* bytes of req written so far */
    struct buf rsp;             /* reply bytes for the client */
    size_t rsp_sent;            /* bytes of rsp written so far */
    uint64_t id;
    uint64_t start_usec;        /* when it was parsed (latency) */
    struct stats_server *sst;   /* the server it went to (latency per server) */
    uint64_t deadline_ms;       /* reply deadline, 0: none */
    uint64_t timeout_ms;        /* the pool's timeout when it was queued */
    size_t keys_off;            /* memcached: key tokens within req */
    size_t keys_end;
    uint32_t nkeys;
    int err;                    /* errno of a failure, 0 if none */
    uint8_t cmd;                /* protocol command */
    bool done;                  /* reply complete (or failed) */
    bool swallow;               /* noreply: reply is discarded */
    bool close_after;           /* close the client once this reply is written */
    bool local;                 /* answered by the proxy, never sent */
    bool timed_out;             /* answered already; its late reply is dropped */
    bool handshake;             /* proxy's own AUTH/SELECT on a new server conn */
};

TAILQ_HEAD(msg_tqh, msg);

/* Per-worker recycling of msgs. */
struct msg_cache {
    struct msg_tqh free;
    uint32_t nfree;
    uint64_t next_id;
    size_t keep_bytes;          /* buffers larger than this are released */
};

void msg_cache_init(struct msg_cache *mc, size_t keep_bytes);
void msg_cache_destroy(struct msg_cache *mc);

/* A zeroed msg with empty buffers, or NULL when out of memory. */
struct msg *msg_get(struct msg_cache *mc);
/* Give m (and its fragments' arrays, not the fragments) back to the cache. */
void msg_put(struct msg_cache *mc, struct msg *m);

/* Scratch arrays for splitting a request, valid until the split is done. */
struct msg_split {
    void **servers;             /* [maxfrags] the server of each fragment */
    int32_t *frag_of_server;    /* [nservers] fragment index, or -1 */
    uint32_t *nkeys_of;         /* [maxfrags] keys per fragment, zeroed */
};

/*
 * Set up m->frags[maxfrags] (zeroed) and m->key_frag[nkeys] plus the scratch
 * in sp, in one block that m keeps across reuse, so steady multi-key
 * traffic does not call malloc. Returns 0 or -1 (out of memory).
 */
int msg_split_alloc(struct msg *m, uint32_t nkeys, uint32_t maxfrags, size_t nservers,
                    struct msg_split *sp);

#endif
