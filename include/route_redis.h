/*
 * route_redis: the Redis (RESP2) part of routing: local replies (PING,
 * QUIT, ECHO, SELECT, AUTH), forwarding by key, splitting MGET / DEL-like /
 * MSET per server and recombining their replies, and the AUTH + SELECT
 * handshake on new backend conns.
 */
#ifndef CMX_ROUTE_REDIS_H
#define CMX_ROUTE_REDIS_H

#include "route.h"

extern const struct route_proto route_redis_proto;

#endif
