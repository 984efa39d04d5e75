/*
 * redis_local: the Redis commands that are about the connection or the
 * whole pool rather than one key: AUTH, HELLO and CLIENT answered per
 * client conn, and the fan-outs (INFO, DBSIZE, KEYS, RANDOMKEY, SCAN,
 * SCRIPT, FLUSHDB, FLUSHALL) that go to every server of the pool and
 * whose replies redis_reply.c merges. route_redis hands a request here by
 * its command table row (REDIS_LOCAL_AUTH, _HELLO, _CLIENT, and
 * REDIS_ROUTE_FANOUT). Runs on the owning worker's thread only.
 */
#ifndef CMX_REDIS_LOCAL_H
#define CMX_REDIS_LOCAL_H

#include <stddef.h>
#include <stdint.h>

struct client;
struct msg;
struct redis_req;
struct server_conn;

/* AUTH [user] pass: checked against the pool's redis_auth (c->authed). */
void redis_local_auth(struct client *c, const struct redis_req *r, const uint8_t *buf);

/* HELLO [protover [AUTH user pass] [SETNAME name]]. */
void redis_local_hello(struct client *c, const struct redis_req *r, const uint8_t *buf);

/* CLIENT SETNAME / GETNAME / ID / SETINFO; other subcommands unsupported. */
void redis_local_client(struct client *c, const struct redis_req *r, const uint8_t *buf);

/* A REDIS_ROUTE_FANOUT request whose msg m is on c's queue: send it to
   the pool's servers (every one, or SCAN's one) or answer it at once. */
void redis_local_fanout(struct client *c, struct msg *m, const struct redis_req *r,
                        const uint8_t *buf);

/* A fragment of INFO or HELLO got its reply: learn the server's version. */
void redis_local_replied(struct server_conn *sc, const struct msg *m);

#endif
