/*
 * route_redis: the Redis (RESP2) protocol's runtime half: what the command
 * table (redis_cmds.c) says to do with each parsed request: forward it by
 * key, split it per server, or answer it (PING, QUIT, ECHO, SELECT, AUTH);
 * and the AUTH + SELECT handshake on new backend conns. Its pure half is
 * redis_wire (redis_reply.h).
 */
#ifndef CMX_ROUTE_REDIS_H
#define CMX_ROUTE_REDIS_H

#include "conn.h"

extern const struct proto_ops route_redis_proto;

#endif
