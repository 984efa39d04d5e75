/*
 * protocols: the registry of the protocols' runtime ops, by id. Adding a
 * protocol is its own files plus one line here; the worker asks this
 * registry once per pool, and nothing else asks which protocol a pool
 * speaks.
 */
#ifndef CMX_PROTOCOLS_H
#define CMX_PROTOCOLS_H

#include <stddef.h>

#include "proto.h"

struct proto_ops;

/* The ops of protocol id. */
const struct proto_ops *protocols_get(enum proto_id id);

/* The largest request-parse state of any protocol (what a worker's
   free list of parse states hands out). */
size_t protocols_state_size(void);

#endif
