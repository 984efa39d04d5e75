/*
 * stream_driver: the incremental-contract driver the parser unit tests
 * share. A stream of requests or replies is fed to a parser whole, byte by
 * byte and in random chunks (fixed seeds); every result that is not AGAIN,
 * and the final AGAIN at the end of the input, is recorded as a step, and
 * the runs must be identical. Fed byte by byte, each unit that the stream
 * goes on after must be decided on exactly its last byte.
 *
 * Included by a test file after it defines:
 *   MAX_STEPS            the most steps one run records
 *   struct step          one recorded result; must have a `size_t pos`
 *                        (set by the driver to the unit's offset)
 *   struct stream_ctx    the parser and its state for one run
 *   stream_begin(cx)     ready the state for a new run
 *   stream_step(cx, buf, avail, st, &unit)
 *                        parse the unit at buf[0..avail) into st (zeroed
 *                        but for pos): STREAM_AGAIN, STREAM_NEXT (decided;
 *                        *unit bytes; the stream goes on) or STREAM_LAST
 *                        (decided; nothing after it is parsed)
 *   stream_unit_done(cx) ready the state for the next unit
 *   step_equal(a, b)     whether two steps record the same result
 *   step_result(st)      the parse result code, for messages
 *
 * stream_garbage makes random streams for the no-crash, feeds-agree tests.
 */
#ifndef CMX_TEST_STREAM_DRIVER_H
#define CMX_TEST_STREAM_DRIVER_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

enum feed { FEED_WHOLE, FEED_BYTES, FEED_RANDOM };

enum stream_result { STREAM_AGAIN, STREAM_NEXT, STREAM_LAST };

struct stream_ctx;
struct step;

static void stream_begin(struct stream_ctx *cx);
static enum stream_result stream_step(struct stream_ctx *cx, const uint8_t *buf, size_t avail,
                                      struct step *st, size_t *unit);
static void stream_unit_done(struct stream_ctx *cx);
static bool step_equal(const struct step *a, const struct step *b);
static int step_result(const struct step *st);

struct run {
    size_t n;
    struct step s[MAX_STEPS];
};

/* The whole run of the last stream_check_feeds (tests read its steps). */
static struct run run_a, run_b;

static size_t
next_avail(enum feed feed, uint64_t *seed, size_t avail, size_t len)
{
    size_t chunk;

    if (feed == FEED_BYTES) {
        chunk = 1;
    } else {
        /* mostly small chunks, sometimes large ones */
        uint64_t x = util_rand64(seed);
        chunk = (x & 3) == 0 ? 1 + (size_t)(x >> 8) % (len + 1) : 1 + (size_t)(x >> 8) % 17;
    }
    return MIN(len, avail + chunk);
}

/* Feed buf[0..len) as `feed` says and record the steps in out. */
static void
run_stream(struct stream_ctx *cx, const uint8_t *buf, size_t len, enum feed feed, uint64_t seed,
           struct run *out)
{
    size_t pos = 0, avail = feed == FEED_WHOLE ? len : MIN(len, 1);

    out->n = 0;
    stream_begin(cx);
    for (;;) {
        struct step st;
        size_t unit = 0;
        enum stream_result r;

        memset(&st, 0, sizeof(st));
        st.pos = pos;
        r = stream_step(cx, buf + pos, avail - pos, &st, &unit);
        if (r == STREAM_AGAIN && avail < len) {
            avail = next_avail(feed, &seed, avail, len);
            continue;
        }
        ck_assert_uint_lt(out->n, MAX_STEPS);
        out->s[out->n++] = st;
        if (r != STREAM_NEXT) {
            return;
        }
        ck_assert_uint_gt(unit, 0);
        if (feed == FEED_BYTES) {
            /* decided on exactly the unit's last byte */
            ck_assert_uint_eq(avail, pos + unit);
        }
        pos += unit;
        stream_unit_done(cx);
    }
}

static void
assert_runs_equal(const struct run *a, const struct run *b)
{
    ck_assert_uint_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        ck_assert_msg(step_equal(&a->s[i], &b->s[i]), "step %zu differs (result %d/%d at %zu/%zu)",
                      i, step_result(&a->s[i]), step_result(&b->s[i]), a->s[i].pos, b->s[i].pos);
    }
}

/* Whole vs byte by byte (when bytes) vs nseeds random splits; the whole
   run is left in run_a. */
static void
stream_check_feeds(struct stream_ctx *cx, const uint8_t *buf, size_t len, bool bytes,
                   unsigned nseeds)
{
    run_stream(cx, buf, len, FEED_WHOLE, 0, &run_a);
    if (bytes) {
        run_stream(cx, buf, len, FEED_BYTES, 0, &run_b);
        assert_runs_equal(&run_a, &run_b);
    }
    for (uint64_t seed = 1; seed <= nseeds; seed++) {
        run_stream(cx, buf, len, FEED_RANDOM, seed * 0x9e3779b97f4a7c15ULL, &run_b);
        assert_runs_equal(&run_a, &run_b);
    }
}

/* 1 to max random bytes into buf, mostly from alphabet (the protocol's own
   characters, so the parser gets past its first checks), one in eight
   anything. Returns how many. */
static size_t
stream_garbage(uint8_t *buf, size_t max, const char *alphabet, uint64_t *seed)
{
    size_t n = 1 + (size_t)(util_rand64(seed) % max), na = strlen(alphabet);

    for (size_t i = 0; i < n; i++) {
        uint64_t x = util_rand64(seed);
        buf[i] = (x & 7) == 0 ? (uint8_t)(x >> 8) : (uint8_t)alphabet[(x >> 8) % na];
    }
    return n;
}

#endif
