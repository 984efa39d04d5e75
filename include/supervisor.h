/*
 * supervisor: the main thread. It owns the configuration, the signals, the
 * workers' lifecycle and (later) stats aggregation; it never touches the
 * request path.
 */
#ifndef CMX_SUPERVISOR_H
#define CMX_SUPERVISOR_H

#include "util.h"

struct cli_opts;
struct conf;
struct conf_errors;

/*
 * Resolve every listen and server address of c (blocking DNS: supervisor
 * only). Problems are added to errs as FILE:LINE messages. Returns 0 or -1.
 */
int supervisor_resolve(struct conf *c, struct conf_errors *errs) MUSTCHECK;

/*
 * Run the proxy with c (already validated, resolved and overridden) until
 * SIGTERM/SIGINT. Takes ownership of c. Returns the process exit code.
 */
int supervisor_run(struct conf *c, const struct cli_opts *o);

#endif
