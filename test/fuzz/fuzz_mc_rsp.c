/*
 * libFuzzer harness for mc_parse_rsp.
 *
 * Input: one selector byte, then a server byte stream, parsed unit after
 * unit until AGAIN with everything consumed or a parse error (which fails
 * the server conn). Parsed whole, split in two at an offset the selector
 * picks, and in small chunks; the results must be identical, and every OK
 * unit must be in bounds and well terminated. Any violation abort()s.
 */
#include "proto_mc.h"
#include "fuzz_driver.h"

#include <stdlib.h>
#include <string.h>

static bool
rsp_equal(enum mc_parse ra, const struct mc_rsp *a, enum mc_parse rb, const struct mc_rsp *b)
{
    if (ra != rb) {
        return false;
    }
    if (ra != MC_PARSE_OK) {
        return true;
    }
    return a->type == b->type && a->len == b->len && a->key_off == b->key_off &&
           a->key_len == b->key_len;
}

static void
check_ok(const uint8_t *buf, size_t len, const struct mc_rsp *rsp)
{
    const uint8_t *nl;
    size_t line_len;

    CHECK(rsp->len >= 1 && rsp->len <= len);
    nl = memchr(buf, '\n', rsp->len);
    CHECK(nl != NULL);
    line_len = (size_t)(nl - buf) + 1;
    CHECK(line_len <= MC_MAX_RSP_LINE_LEN);
    switch (rsp->type) {
    case MC_RSP_VALUE:
        CHECK(rsp->key_len >= 1 && rsp->key_len <= MC_MAX_KEY_LEN);
        CHECK(rsp->key_off + rsp->key_len < line_len);
        CHECK(memchr(buf + rsp->key_off, ' ', rsp->key_len) == NULL);
        CHECK(rsp->len >= line_len + 2);
        CHECK(buf[rsp->len - 2] == '\r' && buf[rsp->len - 1] == '\n');
        break;
    case MC_RSP_END:
        CHECK(rsp->len == line_len);
        CHECK(memcmp(buf, "END", 3) == 0 || buf[0] == ' ');
        break;
    case MC_RSP_LINE:
    case MC_RSP_ERROR:
        CHECK(rsp->len == line_len);
        break;
    default:
        CHECK(0);
    }
}

/* The incremental parse of one unit. */
struct inc {
    struct mc_rsp rsp;
    enum mc_parse r;
};

static bool
again(void *st, const uint8_t *buf, size_t avail)
{
    struct inc *i = st;

    i->r = mc_parse_rsp(buf, avail, &i->rsp);
    return i->r == MC_PARSE_AGAIN;
}

static size_t
decided(void *st, const uint8_t *buf, size_t avail, size_t len)
{
    const struct inc *i = st;
    struct mc_rsp whole;
    enum mc_parse rw = mc_parse_rsp(buf, len, &whole);

    CHECK(rsp_equal(i->r, &i->rsp, rw, &whole));
    if (i->r != MC_PARSE_OK) {
        return 0;
    }
    check_ok(buf, avail, &i->rsp);
    return i->rsp.len;
}

static void
run(const uint8_t *buf, size_t len, const struct fuzz_feed *feed, void *arg)
{
    static const struct fuzz_units units = { again, decided };
    struct inc i;

    fuzz_units(&units, &i, buf, len, feed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_replies(data, size, run, 2048);
}
