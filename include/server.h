/*
 * server: server conns: connecting, writing queued requests, reading the
 * reply stream (paired FIFO with the written requests, reply.h), per-request
 * deadlines, and the one close path that fails exactly the requests a
 * failed socket carried. Runs on the owning worker's thread only.
 */
#ifndef CMX_SERVER_H
#define CMX_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "stats.h"

struct pool;
struct pool_server;

/* The event callback of every server conn (arg = the conn): readiness,
   connect completion and its deadline timer. */
void server_event(int fd, short what, void *arg);

/* Start connecting sc (DISCONNECTED). Returns 0 or -errno: a local error
   (out of descriptors, ...) or the server's, already counted as such. */
int server_connect(struct server_conn *sc) MUSTCHECK;

/* Queue m on sc (at the head for a handshake), counting it, with the
   pool's timeout as its deadline; sc is written at the end of the turn. */
void server_enqueue(struct server_conn *sc, struct msg *m, bool at_head);

/* Write what sc has queued (the worker's end-of-turn flush). */
void server_flush(struct server_conn *sc);

/* Fail sc: its socket closes and every request it carries gets the
   protocol's error reply for err. */
void server_fail(struct server_conn *sc, int err);

/* Close sc's socket for why, which must be a reason that fails nothing:
   idle (no request outstanding), retired or shutdown. */
void server_close(struct server_conn *sc, enum stats_server_close why);

/* Close every conn of s and fail what they carry with ECONNABORTED
   (worker exit). */
void server_shutdown(struct pool_server *s);

/* True when no conn of s carries a request. */
bool server_idle(const struct pool_server *s);

#endif
