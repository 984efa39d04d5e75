/*
 * libFuzzer harness for mc_parse_req.
 *
 * Input: one selector byte, then a client byte stream. The stream is parsed
 * as a connection would: request after request, skipping the line of an
 * error that keeps the connection, stopping at one that closes it or at
 * AGAIN with everything consumed. It is parsed three ways: whole, in two
 * chunks split at an offset the selector picks, and in small chunks whose
 * size the selector picks. Every result must be identical across the three
 * (the parser's incremental contract), and every OK must satisfy the
 * invariants callers rely on (in bounds, keys iterable and <= 250 bytes,
 * noreply where memcached would see it, body terminated by "\r\n").
 * Any violation abort()s, so logic bugs are found as well as crashes.
 */
#include "proto_mc.h"
#include "fuzz_driver.h"

#include <stdlib.h>
#include <string.h>

static bool
req_equal(enum mc_parse ra, const struct mc_req *a, enum mc_parse rb, const struct mc_req *b)
{
    if (ra != rb) {
        return false;
    }
    if (ra == MC_PARSE_AGAIN) {
        return true; /* hints (total_len) depend on how much has arrived */
    }
    return a->cmd == b->cmd && a->err == b->err && a->line_len == b->line_len &&
           a->total_len == b->total_len && a->keys_off == b->keys_off &&
           a->keys_end == b->keys_end && a->nkeys == b->nkeys && a->noreply_off == b->noreply_off &&
           a->noreply_len == b->noreply_len && a->data_off == b->data_off &&
           a->data_len == b->data_len;
}

static bool
is_noreply(const uint8_t *buf, size_t off, size_t len)
{
    return len == 7 && memcmp(buf + off, "noreply", 7) == 0;
}

/* Last space-separated token of buf[0..end). */
static bool
last_token(const uint8_t *buf, size_t end, size_t *off, size_t *len)
{
    size_t e = end, s;

    while (e > 0 && buf[e - 1] == ' ') {
        e--;
    }
    if (e == 0) {
        return false;
    }
    s = e;
    while (s > 0 && buf[s - 1] != ' ') {
        s--;
    }
    *off = s;
    *len = e - s;
    return true;
}

static void
check_ok(const uint8_t *buf, size_t len, uint64_t max, const struct mc_req *req)
{
    enum mc_kind kind;
    size_t pos, koff, klen, n = 0, end, toff, tlen;

    CHECK(req->cmd < MC_CMD_COUNT);
    CHECK(req->err == MC_ERR_NONE);
    CHECK(req->line_len >= 1 && req->line_len <= req->total_len);
    CHECK(req->total_len <= len && req->total_len <= max);
    CHECK(buf[req->line_len - 1] == '\n');
    CHECK(memchr(buf, '\0', req->line_len) == NULL);
    kind = mc_cmd_kind(req->cmd);

    /* keys */
    if (kind == MC_KIND_VERSION || kind == MC_KIND_QUIT || kind == MC_KIND_STATS ||
        kind == MC_KIND_FLUSH || kind == MC_KIND_VERBOSITY) {
        CHECK(req->nkeys == 0);
    } else {
        CHECK(req->nkeys >= 1);
        CHECK(req->keys_off < req->keys_end && req->keys_end < req->line_len);
        pos = req->keys_off;
        while (mc_next_key(buf, req->keys_end, &pos, &koff, &klen)) {
            CHECK(klen >= 1 && klen <= MC_MAX_KEY_LEN);
            CHECK(koff >= req->keys_off && koff + klen <= req->keys_end);
            CHECK(memchr(buf + koff, ' ', klen) == NULL);
            n++;
        }
        CHECK(n == req->nkeys);
        if (kind != MC_KIND_RETRIEVAL && kind != MC_KIND_GAT) {
            CHECK(n == 1);
        }
    }

    /* noreply: present exactly where memcached would honour it, and gone for
     * good once stripped (else the backend would never answer) */
    end = req->line_len - 1;
    if (end > 0 && buf[end - 1] == '\r') {
        end--;
    }
    CHECK(last_token(buf, end, &toff, &tlen));
    if (req->noreply_len > 0) {
        CHECK(mc_cmd_has_noreply(req->cmd));
        CHECK(req->noreply_off >= req->keys_end);
        CHECK(req->noreply_off + req->noreply_len <= end);
        CHECK(buf[req->noreply_off] == ' ');
        CHECK(req->noreply_off + req->noreply_len == toff + tlen && is_noreply(buf, toff, tlen));
        CHECK(last_token(buf, req->noreply_off, &toff, &tlen));
        CHECK(!is_noreply(buf, toff, tlen) || toff == req->keys_off);
    } else if (mc_cmd_has_noreply(req->cmd)) {
        CHECK(!is_noreply(buf, toff, tlen) || toff == req->keys_off);
    }

    /* body */
    if (kind == MC_KIND_STORAGE || kind == MC_KIND_CAS) {
        CHECK(req->data_off == req->line_len);
        CHECK(req->total_len == req->line_len + req->data_len + 2);
        CHECK(buf[req->total_len - 2] == '\r' && buf[req->total_len - 1] == '\n');
    } else {
        CHECK(req->total_len == req->line_len);
        CHECK(req->data_len == 0);
    }
}

/*
 * Parse buf[0..len) request by request, with bytes arriving as feed says
 * (fuzz_driver.h). Each
 * result is compared with parsing the same position with all bytes present.
 */
static void
run(const uint8_t *buf, size_t len, const struct fuzz_feed *feed, void *arg)
{
    const uint64_t max = *(const uint64_t *)arg;
    size_t pos = 0, avail = fuzz_first(feed, len);

    for (;;) {
        struct mc_req inc, whole;
        enum mc_parse ri, rw;

        ri = mc_parse_req(buf + pos, avail - pos, max, &inc);
        if (ri == MC_PARSE_AGAIN && avail < len) {
            avail = fuzz_more(feed, avail, len);
            continue;
        }
        rw = mc_parse_req(buf + pos, len - pos, max, &whole);
        CHECK(req_equal(ri, &inc, rw, &whole));
        if (ri == MC_PARSE_AGAIN) {
            return;
        }
        if (ri == MC_PARSE_OK) {
            check_ok(buf + pos, avail - pos, max, &inc);
            pos += inc.total_len;
            continue;
        }
        CHECK(inc.err != MC_ERR_NONE);
        CHECK(mc_error_reply(inc.err)[0] != '\0');
        if (mc_error_closes(inc.err)) {
            return;
        }
        /* an error that keeps the conn must skip at least one whole line */
        CHECK(inc.line_len >= 1 && inc.line_len <= avail - pos);
        CHECK(buf[pos + inc.line_len - 1] == '\n');
        pos += inc.line_len;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_requests(data, size, run, 512, 2048);
}
