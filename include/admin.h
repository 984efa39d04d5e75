/*
 * admin: the supervisor's operator endpoints. The stats port answers every
 * TCP connect with one twemproxy-format JSON document summed over the
 * workers at that moment, then closes; nothing is read. The metrics port
 * (metrics_listen) serves HTTP/1.1 with keep-alive through httpd: GET or
 * HEAD /metrics (Prometheus text), /healthz (200 while serving, 503 while
 * stopping), 404 for any other path, 405 for any other method. Runs on the
 * supervisor's event_base only; reads the workers' counters with relaxed
 * loads, never touches anything else of theirs.
 */
#ifndef CMX_ADMIN_H
#define CMX_ADMIN_H

#include <event2/event.h>
#include <stddef.h>

struct gen;
struct registry;

/* Reload outcomes, kept by the supervisor, shown in /metrics. */
struct admin_reloads {
    uint64_t generation; /* id of the configuration in force */
    uint64_t ok;
    uint64_t rejected;
};

struct admin;

/* Listen on the conf's stats address (SO_REUSEPORT, so a successor process
   can share it). Returns NULL with a reason in err. */
struct admin *admin_start(struct event_base *base, const struct gen *g, const struct registry *reg,
                          const struct admin_reloads *reloads, char *err, size_t errlen);

/* Render the pools of g from now on (after a reload). */
void admin_set_gen(struct admin *a, const struct gen *g);
/* From now on /healthz answers 503 (graceful stop in progress). */
void admin_set_stopping(struct admin *a);
void admin_stop(struct admin *a);

#endif
