/*
 * libFuzzer harness for redis_parse_rsp.
 *
 * Input: one selector byte, then a server byte stream, parsed reply after
 * reply until AGAIN with everything consumed or a parse error (which fails
 * the server conn). Parsed whole, split in two at an offset the selector
 * picks, and in small chunks, one state struct kept across AGAIN results;
 * every result must equal a fresh parse of the same position with all
 * bytes present. Every OK reply must be in bounds and well terminated, its
 * type must be its first byte's, and an array's top-level elements, walked
 * with redis_next_elem, must be exactly as many as its header says, each a
 * whole reply of its own, tiling the array to its last byte. With the
 * selector's low bit set the parsers take RESP3 (redis_rsp_init3): each
 * reply is then checked for its bounds, its type byte (after any leading
 * attribute) and its length. Any violation abort()s.
 */
#include "proto_redis.h"
#include "fuzz_driver.h"

#include <stdlib.h>
#include <string.h>

static bool resp3; /* this input's replies are parsed as RESP3 */

static void
rsp_init(struct redis_rsp *r)
{
    if (resp3) {
        redis_rsp_init3(r);
    } else {
        redis_rsp_init(r);
    }
}

static bool
rsp_equal(enum redis_parse ra, const struct redis_rsp *a, enum redis_parse rb,
          const struct redis_rsp *b)
{
    if (ra != rb) {
        return false;
    }
    if (ra != REDIS_PARSE_OK) {
        return true;
    }
    return a->type == b->type && a->total_len == b->total_len && a->integer == b->integer;
}

static size_t
line_len(const uint8_t *buf, size_t len)
{
    const uint8_t *nl = memchr(buf, '\n', len);

    CHECK(nl != NULL);
    return (size_t)(nl - buf) + 1;
}

/* A RESP3 reply: in bounds, its own type's byte after any attribute, and a
   line or a length-prefixed body as its type says. */
static void
check_ok3(const uint8_t *buf, size_t len, const struct redis_rsp *r)
{
    static const char types[] = {
        [REDIS_RSP_STATUS] = '+',     [REDIS_RSP_ERROR] = '-',    [REDIS_RSP_INTEGER] = ':',
        [REDIS_RSP_BULK] = '$',       [REDIS_RSP_ARRAY] = '*',    [REDIS_RSP_NULL] = '_',
        [REDIS_RSP_BOOLEAN] = '#',    [REDIS_RSP_DOUBLE] = ',',   [REDIS_RSP_BIG_NUMBER] = '(',
        [REDIS_RSP_BLOB_ERROR] = '!', [REDIS_RSP_VERBATIM] = '=', [REDIS_RSP_MAP] = '%',
        [REDIS_RSP_SET] = '~',        [REDIS_RSP_PUSH] = '>',
    };

    CHECK(r->total_len >= 3 && r->total_len <= len);
    CHECK(buf[r->total_len - 2] == '\r' && buf[r->total_len - 1] == '\n');
    CHECK((size_t)r->type < sizeof(types));
    if (buf[0] == '|') {
        return; /* the value it describes comes after its pairs */
    }
    CHECK(buf[0] == types[r->type]);
    size_t hdr = line_len(buf, r->total_len);
    switch (r->type) {
    case REDIS_RSP_BULK:
    case REDIS_RSP_BLOB_ERROR:
    case REDIS_RSP_VERBATIM:
        if (r->integer >= 0) {
            CHECK(r->total_len == hdr + (size_t)r->integer + 2);
        }
        break;
    case REDIS_RSP_ARRAY:
    case REDIS_RSP_MAP:
    case REDIS_RSP_SET:
    case REDIS_RSP_PUSH:
        CHECK(r->integer >= -1 && (r->integer > 0 || r->total_len == hdr));
        break;
    default:
        CHECK(r->total_len == hdr);
        break;
    }
}

static void
check_ok(const uint8_t *buf, size_t len, const struct redis_rsp *r)
{
    static const char types[] = { [REDIS_RSP_STATUS] = '+',
                                  [REDIS_RSP_ERROR] = '-',
                                  [REDIS_RSP_INTEGER] = ':',
                                  [REDIS_RSP_BULK] = '$',
                                  [REDIS_RSP_ARRAY] = '*' };
    size_t hdr, cur = 0, off, elen, prev_end;
    int64_t n = 0;

    if (resp3) {
        check_ok3(buf, len, r);
        return;
    }
    CHECK(r->total_len >= 3 && r->total_len <= len);
    CHECK(buf[r->total_len - 2] == '\r' && buf[r->total_len - 1] == '\n');
    CHECK((size_t)r->type < sizeof(types) && buf[0] == types[r->type]);
    hdr = line_len(buf, r->total_len);
    CHECK(buf[hdr - 2] == '\r');
    switch (r->type) {
    case REDIS_RSP_STATUS:
    case REDIS_RSP_ERROR:
        CHECK(hdr == r->total_len && hdr <= REDIS_MAX_RSP_LINE);
        break;
    case REDIS_RSP_INTEGER:
        CHECK(hdr == r->total_len && hdr <= 23);
        break;
    case REDIS_RSP_BULK:
        if (r->integer < 0) {
            CHECK(r->integer == -1 && hdr == r->total_len);
        } else {
            CHECK((uint64_t)r->integer <= REDIS_MAX_BULK);
            CHECK(r->total_len == hdr + (size_t)r->integer + 2);
        }
        break;
    case REDIS_RSP_ARRAY:
        CHECK(r->integer >= -1);
        prev_end = hdr;
        while (redis_next_elem(buf, r->total_len, &cur, &off, &elen)) {
            struct redis_rsp e;

            CHECK(off == prev_end && elen > 0 && off + elen <= r->total_len);
            redis_rsp_init(&e);
            CHECK(redis_parse_rsp(&e, buf + off, elen) == REDIS_PARSE_OK);
            CHECK(e.total_len == elen);
            prev_end = off + elen;
            n++;
        }
        CHECK(n == (r->integer < 0 ? 0 : r->integer));
        CHECK(prev_end == r->total_len);
        break;
    default:
        CHECK(0);
    }
}

/* One state struct kept across AGAIN results, fresh for each reply. */
struct inc {
    struct redis_rsp rsp;
    enum redis_parse r;
};

static bool
again(void *st, const uint8_t *buf, size_t avail)
{
    struct inc *i = st;

    i->r = redis_parse_rsp(&i->rsp, buf, avail);
    return i->r == REDIS_PARSE_AGAIN;
}

static size_t
decided(void *st, const uint8_t *buf, size_t avail, size_t len)
{
    struct inc *i = st;
    struct redis_rsp whole;
    enum redis_parse rw;

    rsp_init(&whole);
    rw = redis_parse_rsp(&whole, buf, len);
    CHECK(rsp_equal(i->r, &i->rsp, rw, &whole));
    /* a finished parse repeats its result */
    CHECK(redis_parse_rsp(&whole, buf, len) == rw);
    if (i->r != REDIS_PARSE_OK) {
        return 0;
    }
    check_ok(buf, avail, &i->rsp);
    size_t unit = i->rsp.total_len;
    rsp_init(&i->rsp);
    return unit;
}

static void
run(const uint8_t *buf, size_t len, const struct fuzz_feed *feed, void *arg)
{
    static const struct fuzz_units units = { again, decided };
    struct inc i;

    rsp_init(&i.rsp);
    fuzz_units(&units, &i, buf, len, feed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    resp3 = size > 0 && (data[0] & 1);
    return fuzz_replies(data, size, run, 4096);
}
