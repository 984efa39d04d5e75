/*
 * httpd: the HTTP server behind metrics_listen (see httpd.h).
 *
 * Everything here runs on the thread that owns the event_base (the
 * supervisor's); nothing is shared with the workers, and the server owns
 * its listener and connections outright. Operator traffic is rare, so a
 * connection is one calloc and its buffers come and go with it.
 *
 * A connection is in one of three states, and the state decides the list
 * it is on, so the server can always find its oldest connection in a state
 * in O(1):
 *
 *   accept --> READING --head complete--> WRITING --keep-alive--> READING
 *                 |     or head refused       |
 *                 |     (400/431/505)         +--close after--> LINGERING --EOF--> closed
 *                 +--deadline, EOF, evicted--> closed       (write side shut,
 *                                                            input discarded)
 *
 * READING: the request head is read into `in`, at most HTTP_MAX_HEAD
 * bytes, and handed to the incremental parser after every read; the
 * parser keeps its scan offset, so a head trickling in byte by byte costs
 * linear time, and a head that reaches HTTP_MAX_HEAD bytes without its
 * blank line is answered 431 without reading more. An idle connection
 * (nothing received yet) holds no buffer.
 *
 * WRITING: the whole response (head and body) is formatted into `out` and
 * written as the socket accepts it (EV_WRITE after a short write); the
 * connection is not read meanwhile, so pipelined bytes wait in the
 * kernel, not here. A response is therefore the only unbounded-looking
 * allocation, and its size is set by the handler, not by the client.
 *
 * LINGERING: after a response that ends the connection (Connection: close,
 * HTTP/1.0, a request with a body, an error), the write side is shut and
 * input is read and dropped until the client closes, for at most
 * HTTPD_LINGER_MS and HTTPD_LINGER_MAX_BYTES. Closing at once with unread
 * input would send a reset that can destroy the response in flight (a 431
 * to a client still sending, say); lingering lets it arrive.
 *
 * Deadline. One timer per connection: HTTPD_REQUEST_TIMEOUT_MS from the
 * accept, or from the end of the previous response on a kept-alive
 * connection, covers receiving the head and writing the response. Bytes
 * arriving do not extend it, which is what ends a slowloris. When it
 * fires the connection is closed; a client that had sent part of a
 * request first gets a best-effort 408 (one non-blocking write, no
 * retry), an idle kept-alive connection gets nothing (a client may be
 * about to reuse it and would take a 408 for the answer to its request).
 *
 * Cap. At most HTTPD_MAX_CONNS connections. When a new one arrives at the
 * cap, the server makes room by closing the oldest LINGERING connection
 * (already answered), else the oldest READING one (the request that has
 * been coming in longest: a slowloris, or an idle kept-alive connection);
 * the newcomer is refused (closed at once) only when every connection is
 * WRITING. An attacker holding connections open therefore cannot lock out
 * a scrape, which is read from its first byte as soon as it is accepted.
 *
 * Closing. httpd_close is the only way out: it records the reason in the
 * log, unlinks, deletes the three events and frees at once. That is safe
 * inside a callback because event_del also drops an event that is already
 * active in this loop turn, and no callback touches a conn after closing it.
 */
#include "httpd.h"

#include <errno.h>
#include <event2/event_struct.h> /* events are embedded: no malloc per event */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

/* Accepts per readiness event: other work on the loop is not starved. */
#define HTTPD_ACCEPTS_PER_EVENT 16
/* Out of descriptors, accepting pauses this long (level-triggered
   readiness would otherwise spin). */
#define HTTPD_EMFILE_RETRY_MS 100
/* First size of a head buffer; it doubles up to HTTP_MAX_HEAD. */
#define HTTPD_IN_MIN 1024
/* Bounds on discarding input after the last response. */
#define HTTPD_LINGER_MS 1000
#define HTTPD_LINGER_MAX_BYTES (64 * 1024)

#define HTTPD_STATE_LIST(X)                                               \
    X(HTTPD_READING)   /* receiving a request head, or waiting for one */ \
    X(HTTPD_WRITING)   /* writing a response; not read */                 \
    X(HTTPD_LINGERING) /* answered for the last time: dropping input until EOF */

#define HTTPD_STATE_ENUM(s) s,
enum httpd_state { HTTPD_STATE_LIST(HTTPD_STATE_ENUM) HTTPD_STATE_COUNT };
#undef HTTPD_STATE_ENUM

static const char *const httpd_state_names[] = {
#define HTTPD_STATE_NAME(s) #s,
    HTTPD_STATE_LIST(HTTPD_STATE_NAME)
#undef HTTPD_STATE_NAME
};

#define HTTPD_CLOSE_LIST(X)                                           \
    X(HTTPD_CLOSE_DONE, "done") /* lingering ended (EOF or bounds) */ \
    X(HTTPD_CLOSE_EOF, "client closed")                               \
    X(HTTPD_CLOSE_READ_ERROR, "read error")                           \
    X(HTTPD_CLOSE_WRITE_ERROR, "write error")                         \
    X(HTTPD_CLOSE_TIMEOUT, "request deadline passed")                 \
    X(HTTPD_CLOSE_IDLE, "idle past the deadline")                     \
    X(HTTPD_CLOSE_EVICTED, "evicted for a new connection")            \
    X(HTTPD_CLOSE_NOMEM, "out of memory")                             \
    X(HTTPD_CLOSE_SHUTDOWN, "server shutting down")

#define HTTPD_CLOSE_ENUM(e, s) e,
enum httpd_close_reason { HTTPD_CLOSE_LIST(HTTPD_CLOSE_ENUM) HTTPD_CLOSE_COUNT };
#undef HTTPD_CLOSE_ENUM

static const char *const httpd_close_names[] = {
#define HTTPD_CLOSE_NAME(e, s) s,
    HTTPD_CLOSE_LIST(HTTPD_CLOSE_NAME)
#undef HTTPD_CLOSE_NAME
};

struct httpd;

struct httpd_conn {
    struct httpd *srv;
    TAILQ_ENTRY(httpd_conn) tqe; /* on srv->conns[state], oldest first */
    enum httpd_state state;
    int fd;
    uint64_t id;
    struct event rev;
    struct event wev;
    struct event timer;  /* request deadline; end of lingering */
    struct buf in;       /* request head bytes, <= HTTP_MAX_HEAD; freed when empty */
    struct buf out;      /* response bytes not yet written */
    struct http_req req; /* parse state of the head in `in` */
    bool close_after;    /* the response being written is the last */
    size_t lingered;     /* input bytes dropped while lingering */
    char peer[64];
};

TAILQ_HEAD(httpd_conn_tqh, httpd_conn);

struct httpd {
    struct event_base *base;
    const char *name; /* log prefix */
    int fd;           /* listening socket */
    struct event accept_ev;
    struct event retry_ev; /* re-arms accept_ev after EMFILE */
    httpd_handler_fn handler;
    void *arg;
    struct httpd_conn_tqh conns[HTTPD_STATE_COUNT];
    unsigned nconns;
    uint64_t next_id;
};

static void httpd_read_cb(int fd, short what, void *arg);
static void httpd_write_cb(int fd, short what, void *arg);
static void httpd_timer_cb(int fd, short what, void *arg);
static void httpd_write(struct httpd_conn *c);

static void
httpd_set_state(struct httpd_conn *c, enum httpd_state st)
{
    struct httpd *h = c->srv;

    if (c->state == st) {
        return;
    }
    log_verb("%s: conn %" PRIu64 " %s -> %s", h->name, c->id, httpd_state_names[c->state],
             httpd_state_names[st]);
    TAILQ_REMOVE(&h->conns[c->state], c, tqe);
    c->state = st;
    TAILQ_INSERT_TAIL(&h->conns[st], c, tqe);
}

static void
httpd_close(struct httpd_conn *c, enum httpd_close_reason why)
{
    struct httpd *h = c->srv;

    log_debug("%s: conn %" PRIu64 " %s closed in %s: %s", h->name, c->id, c->peer,
              httpd_state_names[c->state], httpd_close_names[why]);
    TAILQ_REMOVE(&h->conns[c->state], c, tqe);
    h->nconns--;
    event_del(&c->rev);
    event_del(&c->wev);
    event_del(&c->timer);
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

static void
httpd_arm_timer(struct httpd_conn *c, unsigned ms)
{
    struct timeval tv = util_ms_tv(ms);

    evtimer_add(&c->timer, &tv);
}

/* Start (or continue) a request: READING, deadline from now. */
static void
httpd_begin_request(struct httpd_conn *c)
{
    httpd_set_state(c, HTTPD_READING);
    http_req_init(&c->req);
    httpd_arm_timer(c, HTTPD_REQUEST_TIMEOUT_MS);
    event_add(&c->rev, NULL);
    if (buf_len(&c->in) > 0) {
        /* Pipelined bytes already here: parse them on the next turn rather
           than recursing, so a burst of requests is answered one per turn. */
        event_active(&c->rev, EV_READ, 1);
    } else {
        buf_free(&c->in); /* an idle connection holds no buffer */
    }
}

/* Queue a response and start writing it; the conn stops being read. */
static void
httpd_respond(struct httpd_conn *c, int status, const char *ctype, const char *extra,
              const struct buf *body, bool head_only)
{
    struct http_rsp_head rh = {
        .status = status,
        .content_type = ctype,
        .extra = extra,
        .content_length = body != NULL ? buf_len(body) : 0,
        .keep_alive = !c->close_after,
        .http10 = c->req.version_minor == 0,
        .date = (int64_t)time(NULL),
    };

    event_del(&c->rev);
    httpd_set_state(c, HTTPD_WRITING);
    if (http_format_head(&c->out, &rh) != 0 ||
        (!head_only && body != NULL && buf_append(&c->out, buf_head(body), buf_len(body)) != 0)) {
        httpd_close(c, HTTPD_CLOSE_NOMEM);
        return;
    }
    httpd_write(c);
}

/* Answer a refused head (400, 431, 505) and close after. */
static void
httpd_respond_error(struct httpd_conn *c, int status)
{
    struct buf body = { 0 };
    const char *reason = http_reason(status);

    log_debug("%s: conn %" PRIu64 " %s: request refused: %d %s", c->srv->name, c->id, c->peer,
              status, reason);
    c->close_after = true;
    if (buf_append(&body, reason, strlen(reason)) != 0 || buf_append(&body, "\n", 1) != 0) {
        buf_free(&body);
        httpd_close(c, HTTPD_CLOSE_NOMEM);
        return;
    }
    httpd_respond(c, status, "text/plain", NULL, &body, false);
    buf_free(&body);
}

/* A complete head is at the front of `in`: answer it. */
static void
httpd_dispatch(struct httpd_conn *c)
{
    struct httpd *h = c->srv;
    const struct http_req *r = &c->req;
    const uint8_t *head = buf_head(&c->in);
    struct buf body = { 0 };
    struct httpd_response rsp = { .status = 200, .content_type = NULL, .body = &body };
    const char *extra = NULL;
    bool head_only = r->method == HTTP_METHOD_HEAD;

    /* The body of a request is never read: the connection ends with it. */
    c->close_after = !r->keep_alive;
    if (r->method == HTTP_METHOD_GET || r->method == HTTP_METHOD_HEAD) {
        struct httpd_request req = {
            .method = r->method,
            .path = (const char *)head + r->path_off,
            .path_len = r->path_len,
        };
        h->handler(h->arg, &req, &rsp);
    } else {
        static const char msg[] = "method not allowed\n";
        rsp.status = 405;
        rsp.content_type = "text/plain";
        extra = "Allow: GET, HEAD\r\n";
        if (buf_append(&body, msg, sizeof(msg) - 1) != 0) {
            buf_reset(&body);
            rsp.status = 500;
        }
    }
    log_debug("%s: conn %" PRIu64 " %s: %.*s %.*s HTTP/1.%u -> %d", h->name, c->id, c->peer,
              (int)r->method_len, (const char *)head + r->method_off, (int)MIN(r->path_len, 200),
              (const char *)head + r->path_off, r->version_minor, rsp.status);
    buf_consume(&c->in, r->head_len);
    httpd_respond(c, rsp.status, rsp.content_type, extra, &body, head_only);
    buf_free(&body);
}

/* Parse what `in` holds; answer when the head is decided. Returns true
   while more bytes are needed. */
static bool
httpd_parse(struct httpd_conn *c)
{
    switch (http_parse_req(&c->req, buf_head(&c->in), buf_len(&c->in))) {
    case HTTP_PARSE_AGAIN:
        return true;
    case HTTP_PARSE_OK:
        httpd_dispatch(c);
        return false;
    case HTTP_PARSE_ERROR:
    default:
        httpd_respond_error(c, c->req.status);
        return false;
    }
}

static void
httpd_read_head(struct httpd_conn *c)
{
    /* Bytes left from a pipelined request come first. */
    if (buf_len(&c->in) > 0 && !httpd_parse(c)) {
        return;
    }
    for (;;) {
        /* Never full here: at HTTP_MAX_HEAD bytes the parser has decided. */
        size_t room = HTTP_MAX_HEAD - buf_len(&c->in);
        if (c->in.cap == c->in.end && buf_reserve(&c->in, MIN(room, HTTPD_IN_MIN)) != 0) {
            httpd_close(c, HTTPD_CLOSE_NOMEM);
            return;
        }
        ssize_t n = read(c->fd, c->in.data + c->in.end, MIN(room, c->in.cap - c->in.end));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                httpd_close(c, HTTPD_CLOSE_READ_ERROR);
            }
            return;
        }
        if (n == 0) {
            httpd_close(c, HTTPD_CLOSE_EOF);
            return;
        }
        c->in.end += (size_t)n;
        if (!httpd_parse(c)) {
            return;
        }
    }
}

static void
httpd_linger(struct httpd_conn *c)
{
    uint8_t sink[4096];

    for (;;) {
        ssize_t n = read(c->fd, sink, sizeof(sink));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            httpd_close(c, HTTPD_CLOSE_DONE);
            return;
        }
        c->lingered += (size_t)n;
        if (c->lingered > HTTPD_LINGER_MAX_BYTES) {
            httpd_close(c, HTTPD_CLOSE_DONE);
            return;
        }
    }
}

/* The response is written: next request, or linger and close. */
static void
httpd_response_done(struct httpd_conn *c)
{
    event_del(&c->wev);
    buf_free(&c->out);
    if (!c->close_after) {
        httpd_begin_request(c);
        return;
    }
    (void)shutdown(c->fd, SHUT_WR);
    buf_free(&c->in);
    httpd_set_state(c, HTTPD_LINGERING);
    httpd_arm_timer(c, HTTPD_LINGER_MS);
    event_add(&c->rev, NULL);
}

static void
httpd_write(struct httpd_conn *c)
{
    while (buf_len(&c->out) > 0) {
        ssize_t n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* The rest when the socket drains; the deadline still runs. */
                event_add(&c->wev, NULL);
                return;
            }
            httpd_close(c, HTTPD_CLOSE_WRITE_ERROR);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    httpd_response_done(c);
}

static void
httpd_read_cb(int fd, short what, void *arg)
{
    struct httpd_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == HTTPD_READING) {
        httpd_read_head(c);
    } else if (c->state == HTTPD_LINGERING) {
        httpd_linger(c);
    }
}

static void
httpd_write_cb(int fd, short what, void *arg)
{
    struct httpd_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == HTTPD_WRITING) {
        httpd_write(c);
    }
}

static void
httpd_timer_cb(int fd, short what, void *arg)
{
    static const char timeout_rsp[] = "HTTP/1.1 408 Request Timeout\r\n"
                                      "Content-Type: text/plain\r\n"
                                      "Content-Length: 16\r\n"
                                      "Connection: close\r\n"
                                      "\r\n"
                                      "Request Timeout\n";
    struct httpd_conn *c = arg;

    (void)fd;
    (void)what;
    switch (c->state) {
    case HTTPD_READING:
        if (buf_len(&c->in) == 0) {
            httpd_close(c, HTTPD_CLOSE_IDLE);
            return;
        }
        /* Best effort: one non-blocking write; the close follows anyway. */
        (void)!send(c->fd, timeout_rsp, sizeof(timeout_rsp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        httpd_close(c, HTTPD_CLOSE_TIMEOUT);
        return;
    case HTTPD_WRITING:
        httpd_close(c, HTTPD_CLOSE_TIMEOUT);
        return;
    case HTTPD_LINGERING:
    default:
        httpd_close(c, HTTPD_CLOSE_DONE);
        return;
    }
}

/* At the cap: close the connection that matters least. False when every
   connection is being answered (the newcomer must go). */
static bool
httpd_make_room(struct httpd *h)
{
    struct httpd_conn *victim = TAILQ_FIRST(&h->conns[HTTPD_LINGERING]);

    if (victim == NULL) {
        victim = TAILQ_FIRST(&h->conns[HTTPD_READING]);
    }
    if (victim == NULL) {
        return false;
    }
    httpd_close(victim, HTTPD_CLOSE_EVICTED);
    return true;
}

static void
httpd_add_conn(struct httpd *h, int fd, const struct sockaddr *sa, socklen_t salen)
{
    if (h->nconns >= HTTPD_MAX_CONNS && !httpd_make_room(h)) {
        log_debug("%s: connection refused: %d connections, all being answered", h->name,
                  HTTPD_MAX_CONNS);
        close(fd);
        return;
    }
    struct httpd_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("%s: out of memory accepting a connection", h->name);
        close(fd);
        return;
    }
    c->srv = h;
    c->fd = fd;
    c->id = ++h->next_id;
    c->state = HTTPD_READING;
    net_sa_str(sa, salen, c->peer, sizeof(c->peer));
    net_set_nodelay(fd);
    event_assign(&c->rev, h->base, fd, EV_READ | EV_PERSIST, httpd_read_cb, c);
    event_assign(&c->wev, h->base, fd, EV_WRITE | EV_PERSIST, httpd_write_cb, c);
    evtimer_assign(&c->timer, h->base, httpd_timer_cb, c);
    TAILQ_INSERT_TAIL(&h->conns[HTTPD_READING], c, tqe);
    h->nconns++;
    log_debug("%s: conn %" PRIu64 " %s accepted (%u open)", h->name, c->id, c->peer, h->nconns);
    httpd_begin_request(c);
}

static void
httpd_retry_cb(int fd, short what, void *arg)
{
    struct httpd *h = arg;

    (void)fd;
    (void)what;
    event_add(&h->accept_ev, NULL);
}

static void
httpd_accept_cb(int lfd, short what, void *arg)
{
    struct httpd *h = arg;

    (void)what;
    for (int i = 0; i < HTTPD_ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            httpd_add_conn(h, fd, (struct sockaddr *)&ss, len);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            struct timeval tv = util_ms_tv(HTTPD_EMFILE_RETRY_MS);
            char eb[128];
            log_warn("%s: accept: %s; pausing accepts for %d ms", h->name,
                     util_strerror(errno, eb, sizeof(eb)), HTTPD_EMFILE_RETRY_MS);
            event_del(&h->accept_ev);
            evtimer_add(&h->retry_ev, &tv);
            return;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            char eb[128];
            log_warn("%s: accept: %s", h->name, util_strerror(errno, eb, sizeof(eb)));
        }
        return;
    }
}

struct httpd *
httpd_start(struct event_base *base, int fd, const char *name, httpd_handler_fn handler, void *arg)
{
    struct httpd *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        close(fd);
        return NULL;
    }
    h->base = base;
    h->name = name;
    h->fd = fd;
    h->handler = handler;
    h->arg = arg;
    for (int s = 0; s < HTTPD_STATE_COUNT; s++) {
        TAILQ_INIT(&h->conns[s]);
    }
    event_assign(&h->accept_ev, base, fd, EV_READ | EV_PERSIST, httpd_accept_cb, h);
    evtimer_assign(&h->retry_ev, base, httpd_retry_cb, h);
    if (event_add(&h->accept_ev, NULL) != 0) {
        close(fd);
        free(h);
        return NULL;
    }
    return h;
}

void
httpd_free(struct httpd *h)
{
    if (h == NULL) {
        return;
    }
    for (int s = 0; s < HTTPD_STATE_COUNT; s++) {
        struct httpd_conn *c;
        while ((c = TAILQ_FIRST(&h->conns[s])) != NULL) {
            httpd_close(c, HTTPD_CLOSE_SHUTDOWN);
        }
    }
    event_del(&h->accept_ev);
    event_del(&h->retry_ev);
    close(h->fd);
    free(h);
}
