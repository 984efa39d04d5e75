/*
 * supervisor: the main thread. It owns the configuration, the signals, the
 * workers' lifecycle and (later) stats aggregation; it never touches the
 * request path.
 */
#ifndef CMX_SUPERVISOR_H
#define CMX_SUPERVISOR_H

#include "util.h"

struct cli_opts;
struct gen;

/*
 * Run the proxy with g (validated, resolved, overrides applied; see gen.h)
 * until SIGTERM/SIGINT. Takes ownership of g. Returns the process exit code.
 */
int supervisor_run(struct gen *g, const struct cli_opts *o);

#endif
