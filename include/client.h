/*
 * client: client conns: reading and parsing requests (through the conn's
 * protocol ops), backpressure, replies written in request order, and the
 * one close path. A reply reaches its client here (client_deliver), whether
 * it came from a server, was merged from a split's fragments, or was made
 * by the proxy. Runs on the owning worker's thread only.
 */
#ifndef CMX_CLIENT_H
#define CMX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "pool.h"
#include "stats.h"

/* How long a stop or a pool's removal waits for the first request of a
   client that has connected but sent nothing (within shutdown_timeout). */
#define CLIENT_FIRST_REQUEST_GRACE_MS 1000

/* The protocol ops c speaks: its pool's, or after a switch (HELLO) the
   pool's set it switched to. Derived, not stored: an idle client is kept
   small. */
static inline const struct proto_ops *
client_proto(const struct client *c)
{
    return c->set == 0 ? c->pool->proto : c->pool->proto->sets[c->set];
}

/* Serve an accepted fd as a client conn of pool p (AWAITING until its
   first request), or refuse it when the pool is at its
   client_connections limit (told so, then closed). */
void client_accept(struct pool *p, int fd);

/* Append m to c's requests (arrival order). */
void client_enqueue(struct client *c, struct msg *m);

/*
 * Append buf[from..to) of the request being parsed (buf: the head of c's
 * read buffer) to m->req, moving the bodies read around the buffer that
 * stand in that range to m->req_pieces. Returns 0 or -1 (out of memory).
 */
int client_take(struct client *c, struct msg *m, const uint8_t *buf, size_t from,
                size_t to) MUSTCHECK;

/* Bytes read around the buffer of a body that starts at from and declares
   to - from bytes (0: all of it is in the buffer). */
uint64_t client_piece_bytes(const struct client *c, size_t from, size_t to);

/*
 * The request being served must wait until every earlier request of c is
 * answered (a protocol switch: the requests after it use other server
 * conns). The protocol's request() then returns 0 without consuming it; c
 * is read no more until its queue is empty, and the request is parsed
 * again from the start.
 */
void client_hold(struct client *c);

/* Queue m, whose rsp the proxy filled itself, as c's next reply. */
void client_local_msg(struct client *c, struct msg *m);

/* Queue a reply made by the proxy itself. Out of memory, c is closed
   (an answer cannot be dropped without shifting every later one). */
void client_reply(struct client *c, const char *bytes, size_t len);

/*
 * Queue the error reply for a request that breaks framing (or quit's
 * reply; empty for memcached quit), then stop reading c: it closes for why
 * once the replies before are written.
 */
void client_reply_and_drain(struct client *c, const char *bytes, size_t len,
                            enum stats_client_close why);

/* Stop reading c; it closes for why once its queued replies are written. */
void client_drain(struct client *c, enum stats_client_close why);

/*
 * m's reply is complete (or failed): a fragment counts toward its split
 * parent, which is merged once every fragment is done; a whole request's
 * reply is queued for writing on its client. An orphan (its client gone)
 * is freed.
 */
void client_deliver(struct conn_ctx *ctx, struct msg *m);

/* Answer m with its protocol's error reply for errno err. */
void client_fail_msg(struct conn_ctx *ctx, struct msg *m, int err);

/* Close c for why (counted); msgs still at servers are orphaned. */
void client_close(struct client *c, enum stats_client_close why);

/* Stopping or pool removed: close c if it is at a request boundary and
   no request is waiting unread in its socket; else serve what is there.
   A client that has sent no request yet (AWAITING) is kept: it connected
   expecting an answer, and its request may be on the way. */
void client_close_if_idle(struct client *c);

/* The grace for a first request is over (CLIENT_FIRST_REQUEST_GRACE_MS
   after a stop or a pool's removal began): an AWAITING c is treated as
   idle from now on. */
void client_end_grace(struct client *c);

/* Write c's done replies (the worker's end-of-turn flush), then decide
   whether it resumes reading or closes. */
void client_flush(struct client *c);

/* Free the closed clients of this turn (kept for reuse). */
void client_reap(struct conn_ctx *ctx);

#endif
