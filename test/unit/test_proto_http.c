/*
 * Unit tests for proto_http: request lines, fields and the keep-alive
 * decision, every refusal (400, 431, 505), the 8 KiB bound at and around
 * its edge, and the incremental contract: a head parsed whole, byte by byte
 * and at random split points (fixed seeds) gives the same result, with
 * AGAIN until its last byte, and the scan offset always at the end of what
 * was handed in (bytes are never searched twice). Response heads are
 * compared byte for byte.
 */
#include "buf.h"
#include "proto_http.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

enum feed { FEED_WHOLE, FEED_BYTES, FEED_RANDOM };

/*
 * Feed s[0..len) in chunks (copied to a fresh buffer each time, so a
 * buffer that moves between calls is covered) until the result is not
 * AGAIN or the input is exhausted. In byte mode, AGAIN must hold until the
 * deciding byte and scan must equal what was handed in (up to the limit).
 */
static enum http_parse
feed(const char *s, size_t len, enum feed how, uint64_t seed, struct http_req *r, size_t *at)
{
    size_t avail = how == FEED_WHOLE ? len : MIN(len, 1);
    enum http_parse res;

    http_req_init(r);
    for (;;) {
        uint8_t *copy = malloc(avail + 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, s, avail);
        res = http_parse_req(r, copy, avail);
        free(copy);
        *at = avail;
        if (res != HTTP_PARSE_AGAIN) {
            return res;
        }
        ck_assert_uint_lt(avail, HTTP_MAX_HEAD);
        ck_assert_uint_eq(r->scan, avail);
        if (avail == len) {
            return res;
        }
        if (how == FEED_BYTES) {
            avail++;
        } else {
            uint64_t x = util_rand64(&seed);
            size_t chunk = (x & 3) == 0 ? 1 + (size_t)(x >> 8) % (len + 1)
                                        : 1 + (size_t)(x >> 8) % 23;
            avail = MIN(len, avail + chunk);
        }
    }
}

static void
assert_same(const struct http_req *a, const struct http_req *b)
{
    ck_assert_int_eq(a->done, b->done);
    ck_assert_int_eq(a->status, b->status);
    ck_assert_int_eq(a->method, b->method);
    ck_assert_uint_eq(a->version_minor, b->version_minor);
    ck_assert_uint_eq(a->head_len, b->head_len);
    ck_assert_uint_eq(a->method_off, b->method_off);
    ck_assert_uint_eq(a->method_len, b->method_len);
    ck_assert_uint_eq(a->path_off, b->path_off);
    ck_assert_uint_eq(a->path_len, b->path_len);
    ck_assert_int_eq(a->has_body, b->has_body);
    ck_assert_int_eq(a->keep_alive, b->keep_alive);
}

/* Parse s whole, byte by byte and at random splits; all must agree. */
static enum http_parse
parse_all(const char *s, size_t len, struct http_req *r)
{
    struct http_req b;
    size_t at;
    enum http_parse res = feed(s, len, FEED_WHOLE, 0, r, &at);

    ck_assert_int_eq(feed(s, len, FEED_BYTES, 0, &b, &at), res);
    assert_same(r, &b);
    if (res == HTTP_PARSE_OK) {
        /* decided on exactly the head's last byte */
        ck_assert_uint_eq(at, r->head_len);
    }
    for (uint64_t seed = 1; seed <= 30; seed++) {
        ck_assert_int_eq(feed(s, len, FEED_RANDOM, seed * 0x9e3779b97f4a7c15ULL, &b, &at), res);
        assert_same(r, &b);
    }
    return res;
}

static struct http_req
ok(const char *s)
{
    struct http_req r;

    ck_assert_msg(parse_all(s, strlen(s), &r) == HTTP_PARSE_OK, "not OK (%d): %s", r.status, s);
    ck_assert_uint_eq(r.head_len, strlen(s));
    return r;
}

static void
refused(const char *s, int status)
{
    struct http_req r;
    enum http_parse res = parse_all(s, strlen(s), &r);

    ck_assert_msg(res == HTTP_PARSE_ERROR, "not ERROR (%d): %s", res, s);
    ck_assert_msg(r.status == status, "status %d, want %d: %s", r.status, status, s);
}

static void
assert_path(const char *s, const struct http_req *r, const char *path)
{
    ck_assert_uint_eq(r->path_len, strlen(path));
    ck_assert(memcmp(s + r->path_off, path, r->path_len) == 0);
}

/* A head of exactly total bytes: request line, one padding field, blank line. */
static char *
head_of_size(size_t total, const char *tail)
{
    static const char start[] = "GET /metrics HTTP/1.1\r\nX-Pad: ";
    size_t fixed = strlen(start) + 2 + 2; /* field CRLF, blank line CRLF */
    size_t pad = total - fixed;
    size_t tl = strlen(tail);
    char *s = malloc(total + tl + 1);

    ck_assert_uint_gt(total, fixed);
    ck_assert_ptr_nonnull(s);
    memcpy(s, start, strlen(start));
    memset(s + strlen(start), 'a', pad);
    memcpy(s + strlen(start) + pad, "\r\n\r\n", 4);
    memcpy(s + total, tail, tl + 1);
    ck_assert_uint_eq(strlen(s), total + tl);
    return s;
}

/* ---- request line ---- */

START_TEST(test_simple_get)
{
    const char *s = "GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\nAccept: */*\r\n\r\n";
    struct http_req r = ok(s);

    ck_assert_int_eq(r.method, HTTP_METHOD_GET);
    ck_assert_uint_eq(r.method_off, 0);
    ck_assert_uint_eq(r.method_len, 3);
    ck_assert_uint_eq(r.version_minor, 1);
    assert_path(s, &r, "/metrics");
    ck_assert(r.keep_alive);
    ck_assert(!r.has_body);
}
END_TEST

START_TEST(test_methods)
{
    static const struct {
        const char *s;
        enum http_method m;
    } cases[] = {
        { "GET / HTTP/1.1\r\n\r\n", HTTP_METHOD_GET },
        { "HEAD / HTTP/1.1\r\n\r\n", HTTP_METHOD_HEAD },
        { "POST / HTTP/1.1\r\n\r\n", HTTP_METHOD_POST },
        { "PUT / HTTP/1.1\r\n\r\n", HTTP_METHOD_PUT },
        { "DELETE / HTTP/1.1\r\n\r\n", HTTP_METHOD_DELETE },
        { "OPTIONS / HTTP/1.1\r\n\r\n", HTTP_METHOD_OPTIONS },
        { "PATCH / HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER },
        { "get / HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER }, /* case-sensitive */
        { "GETS / HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER },
        { "X-Y.Z~ / HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER }, /* any token */
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct http_req r = ok(cases[i].s);
        ck_assert_msg(r.method == cases[i].m, "%s", cases[i].s);
        ck_assert_uint_eq(r.method_len, strcspn(cases[i].s, " "));
    }
    ck_assert_str_eq(http_method_name(HTTP_METHOD_GET), "GET");
    ck_assert_str_eq(http_method_name(HTTP_METHOD_HEAD), "HEAD");
    ck_assert_str_eq(http_method_name(HTTP_METHOD_OTHER), "OTHER");
}
END_TEST

START_TEST(test_targets)
{
    const char *s;
    struct http_req r;

    s = "GET /metrics?name[]=x&y=1 HTTP/1.1\r\n\r\n";
    r = ok(s);
    assert_path(s, &r, "/metrics");
    s = "GET /?x HTTP/1.1\r\n\r\n";
    r = ok(s);
    assert_path(s, &r, "/");
    s = "GET /a%20b/c HTTP/1.1\r\n\r\n"; /* no decoding: matched as sent */
    r = ok(s);
    assert_path(s, &r, "/a%20b/c");
    s = "GET http://localhost:9100/healthz?x=1 HTTP/1.1\r\n\r\n";
    r = ok(s);
    assert_path(s, &r, "/healthz");
    s = "GET HTTPS://h/metrics HTTP/1.1\r\n\r\n";
    r = ok(s);
    assert_path(s, &r, "/metrics");
    s = "GET http://h HTTP/1.1\r\n\r\n";
    r = ok(s);
    ck_assert_uint_eq(r.path_len, 0);
    s = "GET http://h?q HTTP/1.1\r\n\r\n";
    r = ok(s);
    ck_assert_uint_eq(r.path_len, 0);
    refused("GET http:// HTTP/1.1\r\n\r\n", 400);
    refused("OPTIONS * HTTP/1.1\r\n\r\n", 400);
    refused("GET metrics HTTP/1.1\r\n\r\n", 400);
    refused("GET ftp://h/ HTTP/1.1\r\n\r\n", 400);
}
END_TEST

START_TEST(test_bad_request_lines)
{
    refused("GET /\r\n\r\n", 400); /* HTTP/0.9 */
    refused("GET\r\n\r\n", 400);
    refused("GET  / HTTP/1.1\r\n\r\n", 400); /* empty target */
    refused("GET / HTTP/1.1 \r\n\r\n", 400);
    refused("GET / http/1.1\r\n\r\n", 400);
    refused("GET / HTTP/1.10\r\n\r\n", 400);
    refused("GET / HTTP/1\r\n\r\n", 400);
    refused("GET / HTTP/x.1\r\n\r\n", 400);
    refused(" GET / HTTP/1.1\r\n\r\n", 400);
    refused("GET /a\rb HTTP/1.1\r\n\r\n", 400); /* bare CR */
    refused("GET /a\tb HTTP/1.1\r\n\r\n", 400);
    refused("G(T / HTTP/1.1\r\n\r\n", 400);                           /* not a token */
    refused("\x16\x03\x01\x02\x10\x01\x02\x01\xfc\x03\x03\n\n", 400); /* TLS */
    refused("GET / HTTP/2.0\r\n\r\n", 505);
    refused("GET / HTTP/0.9\r\n\r\n", 505);
    refused("GET / HTTP/3.0\r\n\r\n", 505);

    /* NUL inside the line */
    struct http_req r;
    static const char nul[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    ck_assert_int_eq(parse_all(nul, sizeof(nul) - 1, &r), HTTP_PARSE_ERROR);
    ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(test_line_endings)
{
    struct http_req r;

    r = ok("GET / HTTP/1.1\nHost: x\n\n");
    ck_assert(r.keep_alive);
    r = ok("GET / HTTP/1.1\r\nHost: x\n\r\n");
    ck_assert_int_eq(r.method, HTTP_METHOD_GET);
    /* empty lines before the request line are skipped, and counted */
    const char *s = "\r\n\n\r\nGET /healthz HTTP/1.0\r\n\r\n";
    r = ok(s);
    ck_assert_uint_eq(r.method_off, 5);
    assert_path(s, &r, "/healthz");
    ck_assert_uint_eq(r.version_minor, 0);
}
END_TEST

/* ---- fields and keep-alive ---- */

START_TEST(test_keep_alive)
{
    static const struct {
        const char *s;
        bool keep;
        uint8_t minor;
    } cases[] = {
        { "GET / HTTP/1.1\r\n\r\n", true, 1 },
        { "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false, 1 },
        { "GET / HTTP/1.1\r\nconnection:CLOSE\r\n\r\n", false, 1 },
        { "GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", false, 1 },
        { "GET / HTTP/1.1\r\nConnection: upgrade,close \r\n\r\n", false, 1 },
        { "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true, 1 },
        { "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true, 1 },
        { "GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n", true, 1 },
        { "GET / HTTP/1.0\r\n\r\n", false, 0 },
        { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true, 0 },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false, 0 },
        { "GET / HTTP/1.2\r\n\r\n", true, 1 },
        { "GET / HTTP/1.9\r\nConnection: close\r\n\r\n", false, 1 },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct http_req r = ok(cases[i].s);
        ck_assert_msg(r.keep_alive == cases[i].keep, "%s", cases[i].s);
        ck_assert_uint_eq(r.version_minor, cases[i].minor);
    }
}
END_TEST

START_TEST(test_bodies)
{
    struct http_req r;

    r = ok("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    ck_assert(!r.has_body);
    ck_assert(r.keep_alive);
    r = ok("POST / HTTP/1.1\r\nContent-Length:  12 \r\n\r\n");
    ck_assert(r.has_body);
    ck_assert(!r.keep_alive); /* the body is never read: the conn ends */
    r = ok("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    ck_assert(r.has_body);
    ck_assert(!r.keep_alive);
    refused("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
}
END_TEST

START_TEST(test_bad_fields)
{
    refused("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);           /* space before colon */
    refused("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400); /* obs-fold */
    refused("GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nno colon\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nnocolon\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n", 400); /* bare CR */
    refused("GET / HTTP/1.1\r\nX-A: b\x01"
            "c\r\n\r\n",
            400);
    refused("GET / HTTP/1.1\r\nX-A: b\x7f\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nX(A): b\r\n\r\n", 400);
    /* an error decides at once, without waiting for the blank line */
    struct http_req r;
    const char *s = "GET / HTTP/1.1\r\nbad line\r\n";
    ck_assert_int_eq(parse_all(s, strlen(s), &r), HTTP_PARSE_ERROR);
    /* allowed: HTAB, obs-text, empty value, odd but valid names */
    ok("GET / HTTP/1.1\r\nX-A:\tb\tc\t\r\n\r\n");
    ok("GET / HTTP/1.1\r\nX-A: caf\xc3\xa9\r\n\r\n");
    ok("GET / HTTP/1.1\r\nX-A:\r\n\r\n");
    ok("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~0aZ: v\r\n\r\n");
}
END_TEST

/* ---- the size bound ---- */

START_TEST(test_size_limit)
{
    struct http_req r;
    char *s;

    /* exactly HTTP_MAX_HEAD bytes: accepted */
    s = head_of_size(HTTP_MAX_HEAD, "");
    r = ok(s);
    ck_assert_uint_eq(r.head_len, HTTP_MAX_HEAD);
    free(s);
    /* with the next request right behind it */
    s = head_of_size(HTTP_MAX_HEAD, "GET / HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(parse_all(s, strlen(s), &r), HTTP_PARSE_OK);
    ck_assert_uint_eq(r.head_len, HTTP_MAX_HEAD);
    free(s);
    /* one byte more: 431 */
    s = head_of_size(HTTP_MAX_HEAD + 1, "");
    refused(s, 431);
    free(s);
    s = head_of_size(HTTP_MAX_HEAD + 1000, "");
    refused(s, 431);
    free(s);
}
END_TEST

START_TEST(test_endless_line)
{
    /* "GET /" and never a newline: AGAIN up to the limit, 431 at it. */
    size_t n = 3 * HTTP_MAX_HEAD;
    char *s = malloc(n + 1);
    struct http_req r;

    ck_assert_ptr_nonnull(s);
    memcpy(s, "GET /", 5);
    memset(s + 5, 'A', n - 5);
    s[n] = '\0';
    http_req_init(&r);
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)s, HTTP_MAX_HEAD - 1), HTTP_PARSE_AGAIN);
    ck_assert_uint_eq(r.scan, HTTP_MAX_HEAD - 1);
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)s, HTTP_MAX_HEAD), HTTP_PARSE_ERROR);
    ck_assert_int_eq(r.status, 431);
    ck_assert_uint_eq(r.scan, HTTP_MAX_HEAD); /* nothing past the limit looked at */
    refused(s, 431);
    /* many short fields, never a blank line */
    for (size_t i = 0; i + 8 <= n; i += 8) {
        memcpy(s + i, "X-A: b\r\n", 8);
    }
    memcpy(s, "GET / HTTP/1.1\r\n", 16);
    refused(s, 431);
    /* only empty lines */
    memset(s, '\n', n);
    refused(s, 431);
    free(s);
}
END_TEST

/* ---- incremental contract ---- */

START_TEST(test_sticky_and_pipelined)
{
    const char *two =
        "GET /metrics HTTP/1.1\r\n\r\nHEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    const char *second = strstr(two, "HEAD");
    struct http_req r;

    http_req_init(&r);
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)two, strlen(two)), HTTP_PARSE_OK);
    ck_assert_uint_eq(r.head_len, (size_t)(second - two));
    ck_assert_int_eq(r.method, HTTP_METHOD_GET);
    assert_path(two, &r, "/metrics");
    /* sticky: more bytes change nothing */
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)two, strlen(two)), HTTP_PARSE_OK);
    ck_assert_uint_eq(r.head_len, (size_t)(second - two));
    /* the next request from where the first ended */
    http_req_init(&r);
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)second, strlen(second)), HTTP_PARSE_OK);
    ck_assert_int_eq(r.method, HTTP_METHOD_HEAD);
    ck_assert(!r.keep_alive);
    ck_assert_uint_eq(r.head_len, strlen(second));
    /* errors are sticky too */
    http_req_init(&r);
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)"BAD\r\n", 5), HTTP_PARSE_ERROR);
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)two, strlen(two)), HTTP_PARSE_ERROR);
    ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(test_again_until_last_byte)
{
    const char *s = "GET /metrics HTTP/1.1\r\nHost: a\r\nUser-Agent: Prometheus/2.45\r\n\r\n";
    size_t len = strlen(s);
    struct http_req r;

    http_req_init(&r);
    for (size_t n = 0; n < len; n++) {
        ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)s, n), HTTP_PARSE_AGAIN);
        ck_assert_uint_eq(r.scan, n);
    }
    ck_assert_int_eq(http_parse_req(&r, (const uint8_t *)s, len), HTTP_PARSE_OK);
}
END_TEST

START_TEST(test_random_garbage)
{
    /* No crash, no read past len, and whole == split on arbitrary bytes. */
    uint64_t seed = 42;
    char s[600];

    for (int iter = 0; iter < 300; iter++) {
        size_t len = 1 + (size_t)(util_rand64(&seed) % (sizeof(s) - 1));
        for (size_t i = 0; i < len; i++) {
            uint64_t x = util_rand64(&seed);
            /* bias towards the bytes that matter */
            static const char common[] = "GET / HTTP/1.1\r\n:\r\n \t,";
            s[i] = (x & 1) ? common[(x >> 8) % (sizeof(common) - 1)] : (char)(x >> 16);
        }
        struct http_req r;
        enum http_parse res = parse_all(s, len, &r);
        if (res == HTTP_PARSE_OK) {
            ck_assert_uint_le(r.head_len, len);
            ck_assert_uint_le(r.path_off + r.path_len, r.head_len);
        } else if (res == HTTP_PARSE_ERROR) {
            ck_assert(r.status == 400 || r.status == 431 || r.status == 505);
        }
    }
}
END_TEST

/* ---- responses ---- */

static void
assert_head(const struct http_rsp_head *h, const char *want)
{
    struct buf b = { 0 };

    ck_assert_int_eq(http_format_head(&b, h), 0);
    ck_assert_uint_eq(buf_len(&b), strlen(want));
    ck_assert_msg(memcmp(buf_head(&b), want, strlen(want)) == 0, "got %.*s", (int)buf_len(&b),
                  (const char *)buf_head(&b));
    buf_free(&b);
}

START_TEST(test_format_head)
{
    struct http_rsp_head h = {
        .status = 200,
        .content_type = "text/plain; version=0.0.4; charset=utf-8",
        .content_length = 1234,
        .keep_alive = true,
        .date = -1,
    };

    assert_head(&h, "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    "Content-Length: 1234\r\n\r\n");
    h.keep_alive = false;
    h.date = 784111777;
    assert_head(&h, "HTTP/1.1 200 OK\r\n"
                    "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    "Content-Length: 1234\r\n"
                    "Connection: close\r\n\r\n");
    h.keep_alive = true;
    h.http10 = true;
    h.date = -1;
    h.content_type = NULL;
    h.status = 404;
    h.content_length = 0;
    assert_head(&h, "HTTP/1.1 404 Not Found\r\n"
                    "Content-Length: 0\r\n"
                    "Connection: keep-alive\r\n\r\n");
    h.status = 405;
    h.http10 = false;
    h.extra = "Allow: GET, HEAD\r\n";
    assert_head(&h, "HTTP/1.1 405 Method Not Allowed\r\n"
                    "Content-Length: 0\r\n"
                    "Allow: GET, HEAD\r\n\r\n");
}
END_TEST

START_TEST(test_reasons)
{
    ck_assert_str_eq(http_reason(200), "OK");
    ck_assert_str_eq(http_reason(400), "Bad Request");
    ck_assert_str_eq(http_reason(404), "Not Found");
    ck_assert_str_eq(http_reason(405), "Method Not Allowed");
    ck_assert_str_eq(http_reason(408), "Request Timeout");
    ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_reason(503), "Service Unavailable");
    ck_assert_str_eq(http_reason(505), "HTTP Version Not Supported");
    ck_assert_str_eq(http_reason(299), "Unknown");
}
END_TEST

static Suite *
proto_http_suite(void)
{
    Suite *s = suite_create("proto_http");
    TCase *req = tcase_create("request");
    TCase *lim = tcase_create("limits");
    TCase *rsp = tcase_create("response");

    tcase_add_test(req, test_simple_get);
    tcase_add_test(req, test_methods);
    tcase_add_test(req, test_targets);
    tcase_add_test(req, test_bad_request_lines);
    tcase_add_test(req, test_line_endings);
    tcase_add_test(req, test_keep_alive);
    tcase_add_test(req, test_bodies);
    tcase_add_test(req, test_bad_fields);
    tcase_add_test(req, test_sticky_and_pipelined);
    tcase_add_test(req, test_again_until_last_byte);
    suite_add_tcase(s, req);

    /* byte-by-byte feeding of 24 KiB heads is slow under sanitizers */
    tcase_set_timeout(lim, 120);
    tcase_add_test(lim, test_size_limit);
    tcase_add_test(lim, test_endless_line);
    tcase_add_test(lim, test_random_garbage);
    suite_add_tcase(s, lim);

    tcase_add_test(rsp, test_format_head);
    tcase_add_test(rsp, test_reasons);
    suite_add_tcase(s, rsp);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(proto_http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
