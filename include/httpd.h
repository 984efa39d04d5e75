/*
 * httpd: a small, hardened HTTP/1.1 server for read-only operator
 * endpoints, on one thread's event_base. It answers GET and HEAD through
 * one handler and everything else with 405; it bounds what a client can
 * cost (a request head of at most HTTP_MAX_HEAD bytes, a deadline per
 * request, HTTPD_MAX_CONNS connections) and never blocks the loop on a
 * slow peer. See httpd.c for the connection lifecycle.
 */
#ifndef CMX_HTTPD_H
#define CMX_HTTPD_H

#include <event2/event.h>
#include <stddef.h>

#include "buf.h"
#include "proto_http.h"
#include "util.h"

/* Connections open at once. At the cap, a new one evicts the oldest that is
   still sending its request (or lingering after a reply), so a scrape
   always gets in; when every connection is being answered it is refused. */
#define HTTPD_MAX_CONNS 64
/* A request must have been received and its response written within this
   time from the accept, or from the end of the previous response. */
#define HTTPD_REQUEST_TIMEOUT_MS 5000

/* One GET or HEAD request, as the handler sees it. */
struct httpd_request {
    enum http_method method; /* HTTP_METHOD_GET or HTTP_METHOD_HEAD */
    const char *path;        /* the target's path, query cut off; not NUL-terminated */
    size_t path_len;
};

/* The handler's answer. httpd sets Content-Length from body and, for HEAD,
   sends the head only. */
struct httpd_response {
    int status;               /* preset to 200 */
    const char *content_type; /* static string, or NULL for none */
    struct buf *body;         /* empty; append the body here */
};

/* Called on the loop's thread for every complete GET or HEAD request; must
   not block. */
typedef void (*httpd_handler_fn)(void *arg, const struct httpd_request *req,
                                 struct httpd_response *rsp);

struct httpd;

/*
 * Serve HTTP on the listening, non-blocking socket fd (its ownership passes
 * to the server, also on failure). name prefixes log lines ("metrics").
 * Returns NULL when out of memory.
 */
struct httpd *httpd_start(struct event_base *base, int fd, const char *name,
                          httpd_handler_fn handler, void *arg) MUSTCHECK;

/* Close the listener and every connection, and free the server. NULL is a no-op. */
void httpd_free(struct httpd *h);

#endif
