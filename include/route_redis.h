/*
 * route_redis: the Redis protocol's runtime half: what the command table
 * (redis_cmds.c) says to do with each parsed request: forward it by key,
 * split it per server, or answer it (PING, QUIT, ECHO, SELECT, AUTH); and
 * the AUTH (+ HELLO 3) + SELECT handshake on new backend conns. Two ops,
 * one per RESP version a client may speak, each with its own set of server
 * conns; their pure halves are redis_wire and redis3_wire (redis_reply.h).
 */
#ifndef CMX_ROUTE_REDIS_H
#define CMX_ROUTE_REDIS_H

#include "conn.h"

extern const struct proto_ops route_redis_proto;  /* RESP2, what every client starts with */
extern const struct proto_ops route_redis3_proto; /* RESP3, after HELLO 3 */

#endif
