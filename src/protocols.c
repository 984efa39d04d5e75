/*
 * protocols: the registry (see protocols.h).
 */
#include "protocols.h"

#include "conn.h"
#include "route_mc.h"
#include "route_redis.h"
#include "util.h"

static const struct proto_ops *const protocols[PROTO_COUNT] = {
    [PROTO_MEMCACHED] = &route_mc_proto,
    [PROTO_REDIS] = &route_redis_proto,
};

const struct proto_ops *
protocols_get(enum proto_id id)
{
    return id < PROTO_COUNT ? protocols[id] : NULL;
}

size_t
protocols_state_size(void)
{
    size_t n = 0;

    for (size_t i = 0; i < PROTO_COUNT; i++) {
        n = MAX(n, protocols[i]->req_state_size);
    }
    return n;
}
