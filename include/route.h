/*
 * route: a parsed request's way to the servers, independent of protocol.
 * A protocol decides what a request is (its proto_ops, conn.h, in its
 * route_*.c); this sends it: to the server that owns its key, or split into
 * one fragment per server with the keys each owns (the plan is msg.h's
 * msg_split_*), or to a chosen server. Failing to send answers the request
 * with the protocol's error reply at once; nothing is dropped.
 */
#ifndef CMX_ROUTE_H
#define CMX_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct client;
struct msg;
struct pool;
struct pool_server;

/* Send m (already on c's queue, or a fragment) to the server owning key. */
void route_forward(struct client *c, struct msg *m, const uint8_t *key, size_t len);

/* Send m to server s. */
void route_forward_to(struct client *c, struct pool_server *s, struct msg *m);

/* What a protocol tells route_split about a multi-key request (arg is
   the protocol's, passed back to each call). */
struct route_split_ops {
    /* The i-th key; called for i = 0, 1, ... in order. */
    void (*key)(void *arg, uint32_t i, const uint8_t **key, size_t *len);
    /* Fill each fragment's req (m->frags[f], nfrags of them) with the
       request for the keys i whose m->key_frag[i] == f, and m->req with
       what the merge needs. Returns 0 or -ENOMEM. */
    int (*fragments)(void *arg, struct msg *m);
    /* Fill m->req with the whole request (every key on one server).
       Returns 0 or -ENOMEM. */
    int (*whole)(void *arg, struct msg *m);
};

/*
 * Split m (on c's queue, m->merge set) over the servers owning its nkeys
 * keys: one fragment per server, or m whole when they all share one.
 * Any failure answers m with the error.
 */
void route_split(struct client *c, struct msg *m, uint32_t nkeys, const struct route_split_ops *ops,
                 void *arg);

/*
 * Fan-out: send m (on c's queue, m->merge set) to the servers first ..
 * first + n - 1 of c's pool (identity order), one fragment each, whose
 * request build(arg, fragment, server index) writes; the merge makes the
 * one reply. A server that is ejected fails the whole (Connection
 * refused) before anything is sent, and a part that fails fails the whole
 * with its error: never a partial answer.
 */
void route_fanout(struct client *c, struct msg *m, uint32_t first, uint32_t n,
                  int (*build)(void *arg, struct msg *fr, uint32_t server), void *arg);

/* Connect every server conn of p now (preconnect). */
void route_preconnect(struct pool *p);

#endif
