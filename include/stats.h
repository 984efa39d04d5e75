/*
 * stats: every metric cachemux reports, defined once as X-macro lists
 * (name, type, description) in twemproxy's order. The stats JSON, the
 * Prometheus renderer and `-D` all walk these lists, so a stat cannot
 * exist in one and not the others.
 */
#ifndef CMX_STATS_H
#define CMX_STATS_H

#include <stdio.h>

enum stats_type { STATS_COUNTER, STATS_GAUGE, STATS_TIMESTAMP };

#define STATS_POOL_LIST(X)                                                          \
    X(client_eof, STATS_COUNTER, "# eof on client connections")                     \
    X(client_err, STATS_COUNTER, "# errors on client connections")                  \
    X(client_connections, STATS_GAUGE, "# active client connections")               \
    X(server_ejects, STATS_COUNTER, "# times backend server was ejected")           \
    X(forward_error, STATS_COUNTER, "# times we encountered a forwarding error")    \
    X(fragments, STATS_COUNTER, "# fragments created from a multi-vector request")

#define STATS_SERVER_LIST(X)                                                        \
    X(server_eof, STATS_COUNTER, "# eof on server connections")                     \
    X(server_err, STATS_COUNTER, "# errors on server connections")                  \
    X(server_timedout, STATS_COUNTER, "# timeouts on server connections")           \
    X(server_connections, STATS_GAUGE, "# active server connections")               \
    X(server_ejected_at, STATS_TIMESTAMP, "timestamp when server was ejected in usec since epoch") \
    X(requests, STATS_COUNTER, "# requests")                                        \
    X(request_bytes, STATS_COUNTER, "total request bytes")                          \
    X(responses, STATS_COUNTER, "# responses")                                      \
    X(response_bytes, STATS_COUNTER, "total response bytes")                        \
    X(in_queue, STATS_GAUGE, "# requests in incoming queue")                        \
    X(in_queue_bytes, STATS_GAUGE, "current request bytes in incoming queue")       \
    X(out_queue, STATS_GAUGE, "# requests in outgoing queue")                       \
    X(out_queue_bytes, STATS_GAUGE, "current request bytes in outgoing queue")

const char *stats_type_name(enum stats_type t);

/* Print every stat with its type and description (the -D output). */
void stats_describe(FILE *out);

#endif
