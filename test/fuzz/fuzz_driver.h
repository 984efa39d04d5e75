/*
 * fuzz_driver: what the libFuzzer harnesses of test/fuzz share. A harness
 * parses its input whole and again as the bytes could arrive from a socket
 * (split in two, or in small chunks), and abort()s when the results differ
 * or an invariant callers rely on breaks, so libFuzzer finds logic errors
 * as well as crashes.
 *
 * An input is one selector byte, then the byte stream (fuzz_input). The
 * harness's run function parses the whole stream as a connection would,
 * with bytes arriving as a struct fuzz_feed says, and compares every
 * result with a parse of the same position with all bytes present;
 * fuzz_three_ways calls it whole, split at an offset the selector picks,
 * and in small chunks. fuzz_units is such a run for a parser that a
 * harness describes by two callbacks (struct fuzz_units).
 */
#ifndef CMX_FUZZ_DRIVER_H
#define CMX_FUZZ_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check is a crash to libFuzzer, which keeps the input. */
#define CHECK(c)     \
    do {             \
        if (!(c)) {  \
            abort(); \
        }            \
    } while (0)

/* One fuzz input: the selector byte and the stream after it. */
struct fuzz_input {
    uint8_t sel;
    const uint8_t *buf;
    size_t len;
};

/* Split data into selector and stream; false for an empty input. */
static inline bool
fuzz_input(const uint8_t *data, size_t size, struct fuzz_input *in)
{
    if (size < 1) {
        return false;
    }
    in->sel = data[0];
    in->buf = data + 1;
    in->len = size - 1;
    return true;
}

/* How the bytes of one run arrive: `first` of them at once (0: all), then
   `chunk` more per read (0: all the rest). */
struct fuzz_feed {
    size_t first;
    size_t chunk;
};

/* The bytes available at the start of a run of len bytes. */
static inline size_t
fuzz_first(const struct fuzz_feed *f, size_t len)
{
    return f->first == 0 || f->first > len ? len : f->first;
}

/* The bytes available after the next read, from avail. */
static inline size_t
fuzz_more(const struct fuzz_feed *f, size_t avail, size_t len)
{
    return f->chunk == 0 ? len : (avail + f->chunk < len ? avail + f->chunk : len);
}

/* A harness's parser, unit after unit, for fuzz_units; st is its state. */
struct fuzz_units {
    /* Parse the unit at buf[0..avail) as the bytes arrive: true when it
       wants more bytes. */
    bool (*again)(void *st, const uint8_t *buf, size_t avail);
    /* The parse is decided, or has every byte: compare it with a parse of
       the whole rest buf[0..len) and check it. Returns the unit's length
       when the stream goes on after it, 0 when it stops there. */
    size_t (*decided)(void *st, const uint8_t *buf, size_t avail, size_t len);
};

/* Parse buf[0..len) unit after unit, the bytes arriving as feed says. */
static inline void
fuzz_units(const struct fuzz_units *u, void *st, const uint8_t *buf, size_t len,
           const struct fuzz_feed *feed)
{
    size_t pos = 0, avail = fuzz_first(feed, len), unit;

    for (;;) {
        if (u->again(st, buf + pos, avail - pos) && avail < len) {
            avail = fuzz_more(feed, avail, len);
            continue;
        }
        unit = u->decided(st, buf + pos, avail - pos, len - pos);
        if (unit == 0) {
            return;
        }
        pos += unit;
    }
}

typedef void (*fuzz_run_fn)(const uint8_t *buf, size_t len, const struct fuzz_feed *feed,
                            void *arg);

/*
 * run(buf, len, feed, arg) three ways: all bytes at once; in two pieces cut
 * at `split` (when it falls inside the stream); and, for a stream of at most
 * max_chunked bytes, one byte and then chunks of 1 + sel % 7.
 */
static inline void
fuzz_three_ways(fuzz_run_fn run, void *arg, const struct fuzz_input *in, size_t split,
                size_t max_chunked)
{
    const struct fuzz_feed whole = { 0, 0 }, two = { split, 0 },
                           small = { 1, 1 + (size_t)(in->sel % 7) };

    run(in->buf, in->len, &whole, arg);
    if (split > 0 && split < in->len) {
        run(in->buf, in->len, &two, arg);
    }
    if (in->len <= max_chunked) {
        run(in->buf, in->len, &small, arg);
    }
}

/*
 * The whole entry point of a request parser's harness: odd selectors parse
 * with max_request_size small_max (so the size limit is reached), even ones
 * with 64 MiB; the split point comes from the selector's upper seven bits.
 */
static inline int
fuzz_requests(const uint8_t *data, size_t size, fuzz_run_fn run, uint64_t small_max,
              size_t max_chunked)
{
    struct fuzz_input in;
    uint64_t max;

    if (!fuzz_input(data, size, &in)) {
        return 0;
    }
    max = (in.sel & 1) ? small_max : 64ULL << 20;
    fuzz_three_ways(run, &max, &in, in.len * (size_t)(in.sel >> 1) / 127, max_chunked);
    return 0;
}

/* The whole entry point of a reply parser's harness: the split point comes
   from the whole selector. */
static inline int
fuzz_replies(const uint8_t *data, size_t size, fuzz_run_fn run, size_t max_chunked)
{
    struct fuzz_input in;

    if (!fuzz_input(data, size, &in)) {
        return 0;
    }
    fuzz_three_ways(run, NULL, &in, in.len * (size_t)in.sel / 255, max_chunked);
    return 0;
}

#endif
