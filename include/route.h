/*
 * route: a request's way through the proxy, independent of protocol.
 * Client bytes are parsed (by the pool's protocol) into msgs queued on the
 * client conn in order; each msg is forwarded to the server conn that owns
 * its key, or split into fragments, one per server; replies pair FIFO with
 * the server conn's out_q; a done msg marks its client dirty so the worker
 * writes it at the end of the turn. Failures of a server conn answer
 * exactly the msgs it carried with the protocol's error reply.
 */
#ifndef CMX_ROUTE_H
#define CMX_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct conn;
struct conn_ctx;
struct msg;
struct pool;
struct pool_server;

/* What a protocol plugs into route. */
struct route_proto {
    /* Parse and dispatch every complete request in c->in. */
    void (*client_input)(struct conn *c);
    /* Consume replies in s->in, completing msgs of s->out_q. Returns 0, or
       -errno when the bytes are not a valid reply (the conn is failed). */
    int (*server_input)(struct conn *s);
    /* Replace m->rsp with the error reply for errno err. */
    void (*error_reply)(struct msg *m, int err);
    /* Build a split request's reply from its fragments (all done). */
    void (*assemble)(struct msg *parent);
    /* A server conn just connected: queue what must precede any request
       (AUTH, SELECT). NULL when nothing does. Returns 0 or -errno. */
    int (*server_connected)(struct conn *s);
};

/* libevent callbacks for client and server conns (arg = the conn). */
void route_client_event(int fd, short what, void *arg);
void route_server_event(int fd, short what, void *arg);

/* Append m to c's request queue (arrival order). */
void route_client_enqueue(struct conn *c, struct msg *m);

/* Queue m, whose rsp the proxy filled itself, as c's next reply. */
void route_local_msg(struct conn *c, struct msg *m, bool close_after);

/* Queue a reply made by the proxy itself; close_after closes the client
   once it is written. Returns 0 or -1 (out of memory). */
int route_local_reply(struct conn *c, const char *bytes, size_t len, bool close_after);

/* Send m (already on c's queue, or a fragment) to the server owning key. */
void route_forward(struct conn *c, struct msg *m, const uint8_t *key, size_t len);
/* Send m to server s. */
void route_forward_to(struct conn *c, struct pool_server *s, struct msg *m);

/* m's reply is complete (or failed): propagate to parent / client. */
void route_msg_done(struct conn_ctx *ctx, struct msg *m);
/* Whether m's reply is still to be kept (not a tombstone, owner alive). */
bool route_msg_wanted(const struct msg *m);

/* m's whole reply came from s (m is off s's queues): complete it. */
void route_server_replied(struct conn *s, struct msg *m);

/* Answer m with the error reply for errno err. */
void route_msg_fail(struct conn_ctx *ctx, struct msg *m, int err);

/* Fail a server conn: every msg it carries gets the error for err. */
void route_server_fail(struct conn *s, int err);

/* Close a client conn for why (counted); msgs still at servers are
   orphaned, then freed. */
void route_client_close(struct conn *c, enum stats_client_close why);

/* Stop reading c (what it sent after this is never parsed); it closes for
   why once the replies already queued are written. */
void route_client_drain(struct conn *c, enum stats_client_close why);

/* Stopping or pool removed: close c if it is at a request boundary and no
   request is waiting unread in its socket; otherwise serve what is there. */
void route_client_close_if_idle(struct conn *c);

/* After the worker flushed c: close it if it is finished. */
void route_client_after_flush(struct conn *c, int flush_rc);

/* Fail every server conn of p and close its clients (worker exit). */
void route_pool_shutdown(struct pool *p);

/* Fail every conn of server s with ECONNABORTED (worker exit). */
void route_server_shutdown(struct pool_server *s);

/* Close an idle server conn (no request outstanding) of a server that
   left its pool: not a failure. */
void route_server_close(struct conn *s);

#endif
