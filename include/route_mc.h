/*
 * route_mc: the memcached ASCII protocol's runtime half: turning a client's
 * parsed requests into msgs (stripping noreply, splitting multi-key gets
 * per server) and answering errors and quit. Its pure half is mc_wire
 * (mc_reply.h).
 */
#ifndef CMX_ROUTE_MC_H
#define CMX_ROUTE_MC_H

#include "conn.h"

extern const struct proto_ops route_mc_proto;

#endif
