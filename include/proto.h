/*
 * proto: the protocols cachemux speaks, and the pure half of each: how a
 * server's reply stream is cut into replies, how the replies of a split
 * request are merged, and the proxy's own error reply. The runtime half
 * (parsing and routing client requests, connection handshakes) is the
 * protocol's proto_ops (conn.h), in its route_*.c. A pool's protocol is
 * chosen once, by the configuration; every conn then holds a pointer to
 * the ops it speaks, so nothing else asks which protocol a pool speaks.
 *
 * Pure: bytes and msgs in, decisions out; no sockets, no globals but these
 * const tables.
 */
#ifndef CMX_PROTO_H
#define CMX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct msg;

#define PROTO_LIST(X)               \
    X(PROTO_MEMCACHED, "memcached") \
    X(PROTO_REDIS, "redis")

#define PROTO_ENUM(e, name) e,
enum proto_id { PROTO_LIST(PROTO_ENUM) PROTO_COUNT };
#undef PROTO_ENUM

/* "memcached", "redis". */
const char *proto_name(enum proto_id id);

enum proto_rc { PROTO_OK, PROTO_AGAIN, PROTO_ERROR };

/* What one call of a reply parser found at the front of the bytes. */
struct proto_step {
    size_t len;       /* OK: bytes of this unit of the reply */
    bool done;        /* OK: the request's reply is complete with this unit */
    bool drop;        /* OK: the unit is no reply to any request (a RESP3 push): dropped */
    uint64_t min_len; /* AGAIN, ERROR: the fewest bytes the unit takes in all, from
                           what its bytes so far declared (before a bad one) */
};

/*
 * The pure half of a protocol. Every function is safe on any thread for
 * the objects it is given.
 */
struct proto_wire {
    enum proto_id id;
    /* Bytes of the reply-parse state a server socket keeps (zeroed at
       each new socket and after each complete reply). */
    size_t rsp_state_size;
    /*
     * Cut the next unit of the reply to request m from buf[0..len), with
     * state kept from the call before (the same bytes again, possibly more,
     * until OK). ERROR: not a reply to m (the conn is failed). skipped:
     * bytes of the unit's body that were read elsewhere (chain.h); the
     * unit's len then counts the buffer's bytes only.
     */
    enum proto_rc (*reply_step)(void *state, const struct msg *m, const uint8_t *buf, size_t len,
                                uint64_t skipped, struct proto_step *out);
    /* After AGAIN: bytes of the body being read that are still to come
       after buf[0..len) (0: not in a body, or it is all there). */
    uint64_t (*reply_body_left)(void *state, const struct msg *m, const uint8_t *buf, size_t len,
                                uint64_t skipped);
    /* n of those bytes were read elsewhere. */
    void (*reply_body_skip)(void *state, uint64_t n);
    /* Replace rsp with the proxy's error reply for errno err (keeps rsp
       empty when out of memory). */
    void (*error_reply)(struct buf *rsp, int err);
    /* Build a split request's reply from its fragments' replies (all done,
       none failed). Returns 0, or -errno: the caller answers with it. */
    int (*merge)(struct msg *parent);
};

/* The wire ops of each protocol. */
extern const struct proto_wire mc_wire;
extern const struct proto_wire redis_wire;  /* RESP2 */
extern const struct proto_wire redis3_wire; /* RESP3 */

#endif
