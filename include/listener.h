/*
 * listener: one worker's accepting socket for one pool. TCP listeners are
 * the worker's own (SO_REUSEPORT: the kernel spreads new connections over
 * the workers); a unix-socket listener is one fd bound by the supervisor
 * and polled by every worker (EAGAIN on accept is then normal).
 */
#ifndef CMX_LISTENER_H
#define CMX_LISTENER_H

#include <event2/event.h>
#include <event2/event_struct.h> /* events are embedded: no malloc per conn event */
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include "util.h"

struct pool;

struct listener {
    struct pool *pool;
    int fd;
    bool owned; /* false: a shared unix fd the supervisor closes */
    bool active;
    bool draining; /* accepting the last queued conns before closing */
    bool paused;   /* at tls_max_handshakes, on the ctx's paused list */
    TAILQ_ENTRY(listener) pause_tqe;
    struct event ev;
    struct event retry; /* re-arms accept after EMFILE */
};

/*
 * Start accepting for pool p: on shared_fd when >= 0 (unix), else on a new
 * SO_REUSEPORT socket. Returns 0, or
 * -1 with a reason in err.
 */
int listener_open(struct listener *l, struct pool *p, int shared_fd, char *err,
                  size_t errlen) MUSTCHECK;

/* Accept what is queued (so it is served, not reset), then stop. */
void listener_drain_and_close(struct listener *l);

/* Accept again on TLS listeners paused at tls_max_handshakes, as long as
   ctx is under the cap (the worker calls it at the end of a turn). */
struct conn_ctx;
void listener_resume_paused(struct conn_ctx *ctx);

/* Stop accepting and close (no draining). */
void listener_close(struct listener *l);

#endif
