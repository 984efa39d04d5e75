/*
 * route_mc: the memcached ASCII protocol's part of routing: turning parsed
 * requests into msgs (stripping noreply, splitting multi-key gets per
 * server), pairing server replies with requests, and reassembling a split
 * get in request-key order with one END.
 */
#ifndef CMX_ROUTE_MC_H
#define CMX_ROUTE_MC_H

#include "route.h"

extern const struct route_proto route_mc_proto;

#endif
