/*
 * libFuzzer harness for http_parse_req.
 *
 * Input: one selector byte, then a client byte stream, parsed as a
 * keep-alive connection would: head after head, until an error, a request
 * that ends the connection, or AGAIN with everything consumed. It is parsed
 * whole and in chunks whose size the selector picks (the buffer is copied
 * to a fresh allocation before every call, as a growing read buffer may
 * move). Both must agree, and every result must satisfy what the server
 * relies on: a head ends in '\n' within HTTP_MAX_HEAD bytes, the path lies
 * inside it, the scan offset never passes HTTP_MAX_HEAD or the bytes given,
 * AGAIN only below HTTP_MAX_HEAD, and a 431 only at it. Any violation
 * abort()s.
 */
#include "proto_http.h"
#include "fuzz_driver.h"

#include <stdlib.h>
#include <string.h>

/* Parse one head at buf[0..len) in chunks of `chunk` (0: whole). */
static enum http_parse
parse(const uint8_t *buf, size_t len, size_t chunk, struct http_req *r)
{
    size_t avail = chunk == 0 || chunk > len ? len : chunk;

    http_req_init(r);
    for (;;) {
        uint8_t *copy = malloc(avail + 1);
        CHECK(copy != NULL);
        memcpy(copy, buf, avail);
        enum http_parse res = http_parse_req(r, copy, avail);
        free(copy);
        CHECK(r->scan <= avail && r->scan <= HTTP_MAX_HEAD);
        if (res != HTTP_PARSE_AGAIN) {
            return res;
        }
        CHECK(avail < HTTP_MAX_HEAD);
        if (avail == len) {
            return res;
        }
        avail = avail + chunk < len ? avail + chunk : len;
    }
}

static void
run(const uint8_t *buf, size_t len, size_t chunk)
{
    size_t pos = 0;

    for (;;) {
        struct http_req a, b;
        enum http_parse ra = parse(buf + pos, len - pos, 0, &a);
        enum http_parse rb = parse(buf + pos, len - pos, chunk, &b);

        CHECK(ra == rb);
        if (ra == HTTP_PARSE_AGAIN) {
            return;
        }
        if (ra == HTTP_PARSE_ERROR) {
            CHECK(a.status == b.status);
            CHECK(a.status == 400 || a.status == 431 || a.status == 505);
            CHECK(a.status != 431 || len - pos >= HTTP_MAX_HEAD);
            return;
        }
        CHECK(a.head_len == b.head_len && a.method == b.method && a.path_off == b.path_off &&
              a.path_len == b.path_len && a.keep_alive == b.keep_alive &&
              a.has_body == b.has_body && a.version_minor == b.version_minor);
        CHECK(a.head_len >= 2 && a.head_len <= HTTP_MAX_HEAD && a.head_len <= len - pos);
        CHECK(buf[pos + a.head_len - 1] == '\n');
        CHECK(a.path_off + a.path_len <= a.head_len);
        CHECK(a.method_len >= 1 && a.method_off + a.method_len < a.head_len);
        CHECK(a.version_minor <= 1);
        CHECK(!(a.keep_alive && a.has_body));
        if (!a.keep_alive) {
            return;
        }
        pos += a.head_len;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    run(data + 1, size - 1, 1 + (size_t)(data[0] % 64));
    return 0;
}
