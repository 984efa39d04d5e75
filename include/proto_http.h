/*
 * proto_http: the request head of HTTP/1.0 and HTTP/1.1 (request line and
 * header fields up to the blank line), and the head of a response. Pure and
 * incremental like proto_redis: the caller hands in the bytes it has; a
 * parse that needs more keeps its scan offset in the state struct, so every
 * byte is searched once however many reads the head arrives in. At most
 * HTTP_MAX_HEAD bytes are ever looked at: the caller never needs to buffer
 * more than that. Nothing here touches sockets; only http_format_head
 * allocates (it appends to a buf).
 */
#ifndef CMX_PROTO_HTTP_H
#define CMX_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct buf;

/* Longest request head (request line, fields, blank line) we accept; a
   longer one is answered 431. */
#define HTTP_MAX_HEAD 8192

enum http_parse { HTTP_PARSE_OK, HTTP_PARSE_AGAIN, HTTP_PARSE_ERROR };

/* X-macro: enum, token. Methods are case-sensitive (RFC 9110 9.1). */
#define HTTP_METHOD_LIST(X)         \
    X(HTTP_METHOD_GET, "GET")       \
    X(HTTP_METHOD_HEAD, "HEAD")     \
    X(HTTP_METHOD_POST, "POST")     \
    X(HTTP_METHOD_PUT, "PUT")       \
    X(HTTP_METHOD_DELETE, "DELETE") \
    X(HTTP_METHOD_OPTIONS, "OPTIONS")

#define HTTP_METHOD_ENUM(e, s) e,
enum http_method {
    HTTP_METHOD_LIST(HTTP_METHOD_ENUM)
        HTTP_METHOD_OTHER, /* any other well-formed token (PATCH, TRACE, ...) */
};
#undef HTTP_METHOD_ENUM

/* Parse state and result of one request head. Initialise it
   (http_req_init) before each new request; keep it across AGAIN results. */
struct http_req {
    /* result, valid after HTTP_PARSE_OK */
    enum http_method method;
    uint8_t version_minor; /* HTTP/1.x: x (0 or 1; 2..9 are taken as 1) */
    size_t head_len;       /* bytes of the head, blank line included */
    size_t method_off, method_len;
    size_t path_off, path_len; /* the target's path, query cut off; empty for
                                   "http://host" (means "/") */
    bool has_body;             /* Content-Length > 0 or any Transfer-Encoding */
    bool keep_alive;           /* the connection may carry another request: HTTP/1.1
                               without "Connection: close", or HTTP/1.0 with
                               "Connection: keep-alive"; never with a body */
    /* result, valid after HTTP_PARSE_ERROR */
    int status; /* 400, 431 or 505 */
    /* resumable state (private) */
    size_t scan;       /* bytes searched for '\n' so far: never searched again */
    size_t line_start; /* first byte of the line being received */
    bool have_request_line;
    bool conn_close;      /* "Connection: close" seen */
    bool conn_keep_alive; /* "Connection: keep-alive" seen */
    enum http_parse done; /* AGAIN until decided; then the decision, sticky */
};

/* Start parsing a new request head (also after a pipelined one). */
void http_req_init(struct http_req *r);

/*
 * Continue parsing the request head at buf[0..len) (the same bytes as
 * before, possibly more of them; buf may have moved). OK: the head is
 * buf[0..r->head_len) and the fields above are set; bytes after it belong
 * to the body or the next request. AGAIN: need more bytes (len is then
 * below HTTP_MAX_HEAD). ERROR: reply r->status and close: 400 for a
 * malformed request line or field, 431 when no blank line ends the head
 * within HTTP_MAX_HEAD bytes, 505 for a major version other than 1. Once OK
 * or ERROR, further calls return the same until http_req_init.
 */
enum http_parse http_parse_req(struct http_req *r, const uint8_t *buf, size_t len);

/* The reason phrase for a status code ("Not Found"), "Unknown" if not ours. */
const char *http_reason(int status);

/* The method's token, "OTHER" for HTTP_METHOD_OTHER. */
const char *http_method_name(enum http_method m);

/* A response head to format. */
struct http_rsp_head {
    int status;
    const char *content_type; /* NULL: no Content-Type field */
    const char *extra;        /* more fields, each ending "\r\n", or NULL */
    size_t content_length;    /* always sent, also for HEAD (the GET's length) */
    bool keep_alive;          /* false: "Connection: close" */
    bool http10;              /* the request was HTTP/1.0: keep-alive is said explicitly */
    int64_t date;             /* Date field, seconds since the epoch; < 0: none */
};

/*
 * Append "HTTP/1.1 <status> <reason>\r\n", the fields and the blank line to
 * out. Returns 0, or -1 when out cannot grow.
 */
int http_format_head(struct buf *out, const struct http_rsp_head *h) MUSTCHECK;

#endif
