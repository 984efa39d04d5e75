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
#include "chain.h"
#include "util.h"

struct client;
struct server_conn;
struct stats_server;

/* How a split request's reply is built from its fragments' replies. */
enum msg_merge {
    MSG_MERGE_NONE,   /* not split */
    MSG_MERGE_VALUES, /* memcached get: every part's VALUEs in request-key order, one END */
    MSG_MERGE_ARRAY,  /* Redis MGET: one array, elements in key order */
    MSG_MERGE_SUM,    /* Redis DEL EXISTS UNLINK TOUCH: integers summed */
    MSG_MERGE_ALL_OK, /* Redis MSET, FLUSHDB, SCRIPT FLUSH; memcached flush_all: all OK */
    /* fan-outs (route_fanout): one fragment per server of the pool */
    MSG_MERGE_CONCAT, /* Redis KEYS: the parts' arrays joined */
    MSG_MERGE_SAME,   /* Redis SCRIPT LOAD: the reply when every part gives the same */
    MSG_MERGE_AND,    /* Redis SCRIPT EXISTS: 1 where every part says 1 */
    MSG_MERGE_RANDOM, /* Redis RANDOMKEY: a non-nil part's reply, from a random start */
    MSG_MERGE_SCAN,   /* Redis SCAN: one server's page, its cursor re-encoded */
    MSG_MERGE_INFO,   /* Redis INFO: the proxy's sections (in req) and the keyspace summed */
    MSG_MERGE_HELLO,  /* Redis HELLO: Redis 7's map as a flat array, version from INFO */
};

struct msg {
    TAILQ_ENTRY(msg) c_tqe;     /* client conn's request queue */
    TAILQ_ENTRY(msg) s_tqe;     /* server conn's in_q / out_q */
    struct client *client;      /* owner; NULL once the client is gone */
    struct server_conn *server; /* server conn it is queued on, or NULL */
    struct msg *parent;         /* a fragment's split request */
    struct msg **frags;         /* a split request's fragments */
    uint32_t nfrags;
    uint32_t nfrags_done;
    uint32_t *key_frag; /* split request: fragment of each key */
    void *split_block;  /* holds frags and key_frag; kept for reuse */
    size_t split_cap;
    struct buf req;          /* request bytes (to the server, or as parsed) */
    struct chain req_pieces; /* large bodies standing in req (chain.h) */
    uint64_t req_sent;       /* bytes of req and its pieces written so far */
    struct buf rsp;          /* reply bytes for the client */
    struct chain rsp_pieces; /* large bodies standing in rsp */
    uint64_t rsp_sent;       /* bytes of rsp and its pieces written so far */
    uint64_t id;
    uint64_t start_usec;      /* when it was parsed (latency) */
    struct stats_server *sst; /* the server it went to (latency per server) */
    uint64_t deadline_ms;     /* reply deadline, 0: none */
    uint64_t timeout_ms;      /* the pool's timeout when it was queued */
    size_t keys_off;          /* split, memcached: key tokens within req */
    size_t keys_end;
    uint32_t nkeys;        /* split: keys of the request */
    uint32_t fan_server;   /* SCAN: the server index its fragment went to */
    uint32_t fan_nservers; /* SCAN: the pool's server count (cursor encoding) */
    uint8_t fan_flags;     /* INFO: MSG_INFO_* sections the merge adds */
    int err;               /* errno of a failure, 0 if none */
    uint32_t rsp_units;    /* units of its reply as read from its server (a memcached
                              get's VALUE blocks and END), set when it is complete */
    uint16_t cmd;          /* its row in its protocol's command table */
    uint8_t merge;         /* enum msg_merge */
    bool done;             /* reply complete (or failed) */
    bool swallow;          /* noreply: reply is discarded */
    bool close_after;      /* close the client once this reply is written */
    bool local;            /* answered by the proxy, never sent */
    bool timed_out;        /* answered already; its late reply is dropped */
    bool handshake;        /* proxy's own AUTH/SELECT on a new server conn */
};

TAILQ_HEAD(msg_tqh, msg);

#define MSG_INFO_SERVER 0x1   /* INFO: the server section's redis_version goes first in it */
#define MSG_INFO_KEYSPACE 0x2 /* INFO: a keyspace section summed over the parts */

/* The whole request and reply: their bytes and the pieces standing in them. */
static inline uint64_t
msg_req_len(const struct msg *m)
{
    return chain_len(&m->req, &m->req_pieces);
}

static inline uint64_t
msg_rsp_len(const struct msg *m)
{
    return chain_len(&m->rsp, &m->rsp_pieces);
}

/* Forget the reply (its pieces go back to their pool). */
static inline void
msg_rsp_reset(struct msg *m)
{
    buf_reset(&m->rsp);
    chain_clear(&m->rsp_pieces);
}

/* Whether m's reply is still wanted: by the proxy itself (a handshake), or
   by a client still connected (the request's, or its split parent's) for a
   request that has not timed out. */
static inline bool
msg_wants_reply(const struct msg *m)
{
    if (m->handshake) {
        return true;
    }
    return !m->timed_out && (m->client != NULL || (m->parent != NULL && m->parent->client != NULL));
}

/* Per-worker recycling of msgs. */
struct msg_cache {
    struct msg_tqh free;
    uint32_t nfree;
    uint64_t next_id;
    size_t keep_bytes; /* buffers larger than this are released */
};

void msg_cache_init(struct msg_cache *mc, size_t keep_bytes);
void msg_cache_destroy(struct msg_cache *mc);

/* A zeroed msg with empty buffers, or NULL when out of memory. */
struct msg *msg_get(struct msg_cache *mc);
/* Give m (and its fragments' arrays, not the fragments) back to the cache. */
void msg_put(struct msg_cache *mc, struct msg *m);

/*
 * One holder of m let go. A msg is held by its client (m->client, while on
 * the client's queue), its server conn (m->server, while queued there) and,
 * for a fragment, its parent (m->parent). It goes back to the cache when
 * none holds it any more; a parent let go of lets go of its fragments. This
 * is what keeps a timed-out request alive as a tombstone in its server
 * queue after its error reply was written.
 */
void msg_release(struct msg_cache *mc, struct msg *m);

/*
 * Planning a split: which fragment each key goes to, one fragment per
 * server in the order servers first appear among the keys. Scratch arrays
 * valid until the split is done.
 */
struct msg_split {
    int32_t *frag_of_server; /* [nservers] fragment index, or -1 */
    uint32_t *frag_server;   /* [maxfrags] server index of each fragment */
    uint32_t *frag_nkeys;    /* [maxfrags] keys per fragment */
    uint32_t nfrags;
};

/*
 * Set up m->frags[maxfrags] (zeroed) and m->key_frag[nkeys] plus the
 * scratch in sp, in one block that m keeps across reuse, so steady
 * multi-key traffic does not call malloc. Returns 0 or -1 (out of memory).
 */
int msg_split_alloc(struct msg *m, uint32_t nkeys, uint32_t maxfrags, size_t nservers,
                    struct msg_split *sp) MUSTCHECK;

/* Key i lives on server index server (< nservers): m->key_frag[i] becomes
   that server's fragment, a new one the first time the server appears. */
static inline void
msg_split_add(struct msg *m, struct msg_split *sp, uint32_t i, uint32_t server)
{
    int32_t f = sp->frag_of_server[server];

    if (f < 0) {
        f = (int32_t)sp->nfrags++;
        sp->frag_of_server[server] = f;
        sp->frag_server[f] = server;
    }
    m->key_frag[i] = (uint32_t)f;
    sp->frag_nkeys[f]++;
}

#endif
