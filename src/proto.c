/*
 * proto: the protocols' names (see proto.h).
 */
#include "proto.h"

static const char *const proto_names[] = {
#define PROTO_NAME(e, name) [e] = name,
    PROTO_LIST(PROTO_NAME)
#undef PROTO_NAME
};

const char *
proto_name(enum proto_id id)
{
    return id < PROTO_COUNT ? proto_names[id] : "?";
}
