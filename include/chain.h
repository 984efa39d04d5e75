/*
 * chain: value bodies kept out of contiguous buffers. Parsers need the
 * bytes of a header in one piece, but never look inside a body: they skip
 * it by its declared length. So a body too large for the read buffer it
 * starts in is read into a piece instead: a chain of fixed-size chunks
 * from the worker's pool, standing at an offset of the buffer's bytes.
 *
 *   buffer:  *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$102400\r\n<16 KiB of body>|\r\n
 *                                                               at ^
 *   piece at `at`:  chunk (16 KiB) -> chunk -> ... -> chunk   (86 KiB)
 *
 * A message is likewise its contiguous bytes plus the pieces standing in
 * them. Pieces move from the read side's buffer to the message and on to
 * the socket that writes them (one writev over bytes and chunks); their
 * bytes are never copied. Offsets of pieces count a buffer's bytes from its
 * head, its first unconsumed byte; a piece's bytes are not in the buffer.
 *
 * Pure apart from malloc: no sockets. One pool per worker; a chunk returns
 * to the pool it came from, which only its worker touches.
 */
#ifndef CMX_CHAIN_H
#define CMX_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"
#include "util.h"

/* Most bytes one read takes into a piece: the chunks it offers at once. */
#define CHAIN_READ_MAX (1024u * 1024)
/* A body smaller than this is read into the buffer even when it must grow
   for it: a piece costs more than copying a few bytes. */
#define CHAIN_MIN_PIECE 4096u
/* A read ahead (chain_in_iov) gives the buffer this much of its room, room
   for a header, and the rest of what the socket has to chunks. */
#define CHAIN_HEAD_ROOM 512u
/* Most chunks a read ahead offers: enough for what a loopback or LAN socket
   holds at once, few enough that offering and taking back stays cheap. */
#define CHAIN_AHEAD_CHUNKS 16

struct chain_pool;

struct chunk {
    struct chunk *next;      /* the next chunk of its piece, or the next free one */
    struct chain_pool *pool; /* where it returns */
    size_t off;              /* its bytes are data[off..off+len) */
    size_t len;              /* bytes held */
    /* Meaningful in a piece's first chunk only: */
    struct chunk *next_piece; /* the next piece of the same chain */
    struct chunk *last;       /* the piece's last chunk, where it grows */
    size_t at;                /* bytes of the buffer before the piece */
    uint64_t total;           /* bytes of the whole piece */
    uint8_t data[];
};

/* A worker's free chunks. */
struct chain_pool {
    struct chunk *free;
    size_t size; /* data bytes per chunk (mbuf_size) */
    uint32_t nfree;
    uint32_t keep; /* free chunks kept at most; more are freed */
};

/* The pieces standing in one buffer, in order of at. */
struct chain {
    struct chunk *head, *tail;
    uint64_t bytes; /* of all its pieces */
};

/*
 * A read buffer and the bodies read around it. A read may also go past the
 * buffer's room into chunks (a read ahead, for a conn that carries large
 * values): those bytes, the spill, follow the buffer's bytes. The parser
 * sees the buffer only; a body that goes on into the spill takes the
 * spill's chunks as its piece (chain_in_adopt), and any other bytes are
 * copied into the buffer as the parser needs them (chain_in_unspill).
 */
struct chain_in {
    struct buf b;
    struct chain holes;  /* pieces standing in b's bytes */
    uint64_t left;       /* bytes the newest piece still takes (0: none growing) */
    bool fresh;          /* the next body bytes start a new piece */
    uint32_t npieces;    /* pieces started since the caller last zeroed it */
    struct chunk *spill; /* bytes read ahead, after b's: chunks in order */
    struct chunk *spill_tail;
    size_t spill_bytes;
    struct chunk *offered_tail; /* the growing piece's last chunk, offered to a read */
    size_t offered_tail_bytes;  /* its free bytes offered */
    struct chunk *offered;      /* new chunks offered to the read: the piece's, or spill */
    size_t offered_bytes;       /* piece bytes that read may take, tail included */
    size_t offered_buf;         /* buffer bytes that read may take */
    void *state;                /* the reader's parse state, kept with these bytes
                                   (NULL: none; the reader's to free) */
};

void chain_pool_init(struct chain_pool *p, size_t size, uint32_t keep);
/* Free the pool's free chunks (every chunk must have come back). */
void chain_pool_destroy(struct chain_pool *p);

/* Give every piece of c back to its pool. Most msgs carry no piece: the
   test is inline and the work is not. */
void chain_clear_pieces(struct chain *c);
static inline void
chain_clear(struct chain *c)
{
    if (c->head != NULL) {
        chain_clear_pieces(c);
    }
}

/* Bytes of b plus the pieces standing in it. */
static inline uint64_t
chain_len(const struct buf *b, const struct chain *c)
{
    return buf_len(b) + c->bytes;
}

/* The first piece of c standing at or after from, or NULL. */
const struct chunk *chain_next_piece(const struct chain *c, size_t from);

/*
 * Bytes of the first piece of c standing at or after from, if it stands
 * no later than to (0 otherwise): how many bytes of a body that starts at
 * from and declares to - from bytes went into a piece.
 */
uint64_t chain_piece_bytes(const struct chain *c, size_t from, size_t to);

/*
 * Append src[from..to) (src: the head of the buffer sc's offsets count
 * from) to dst, moving the pieces of sc standing in [from, to] to dc at
 * their place in dst; pieces of sc standing before from are given back.
 * Returns 0, or -1 when dst cannot grow.
 */
int chain_take_pieces(struct buf *dst, struct chain *dc, const uint8_t *src, struct chain *sc,
                      size_t from, size_t to) MUSTCHECK;
static inline int MUSTCHECK
chain_take(struct buf *dst, struct chain *dc, const uint8_t *src, struct chain *sc, size_t from,
           size_t to)
{
    if (sc->head == NULL || sc->head->at > to) {
        return buf_append(dst, src + from, to - from); /* no piece in the range */
    }
    return chain_take_pieces(dst, dc, src, sc, from, to);
}

/*
 * Describe b's bytes with its pieces c interleaved, after the first skip
 * of them, in at most max iovecs. Returns the number used; *bytes: what
 * they hold.
 */
int chain_iov_pieces(const struct buf *b, const struct chain *c, uint64_t skip, struct iovec *iov,
                     int max, size_t *bytes);
static inline int
chain_iov(const struct buf *b, const struct chain *c, uint64_t skip, struct iovec *iov, int max,
          size_t *bytes)
{
    if (c->head == NULL) { /* the buffer alone: one iovec */
        size_t len = buf_len(b);
        if (skip >= len || max == 0) {
            *bytes = 0;
            return 0;
        }
        iov->iov_base = buf_head(b) + skip;
        iov->iov_len = len - (size_t)skip;
        *bytes = iov->iov_len;
        return 1;
    }
    return chain_iov_pieces(b, c, skip, iov, max, bytes);
}

/* ---- reading around a buffer ---- */

/* The next left bytes that arrive for `in` are a body's: they go into a
   new piece standing at the buffer's current end. */
void chain_in_stream(struct chain_in *in, uint64_t left);

/*
 * The iovecs one read into `in` fills. While a body is read around the
 * buffer: room in its piece (up to CHAIN_READ_MAX of its left bytes, chunks
 * taken from p), then the buffer's free room if all of the body fits
 * before it. Otherwise the buffer's free room (CHAIN_HEAD_ROOM of it with
 * ahead), then with ahead chunks for a spill of up to CHAIN_READ_MAX bytes;
 * while bytes are spilled already, chunks only. Returns how many (0 when
 * out of memory). The chunks are held by `in` until chain_in_commit.
 */
int chain_in_iov(struct chain_in *in, struct chain_pool *p, struct iovec *iov, int max, bool ahead);

/* n bytes arrived into the iovecs of chain_in_iov: into the piece, the
   buffer and the spill, in that order. Returns those of the piece. */
uint64_t chain_in_commit(struct chain_in *in, size_t n);

/*
 * The parser is in a body of which left bytes are still to come after the
 * buffer's bytes: the spill's first bytes, up to left, become a new piece
 * standing at the buffer's end (the rest of the body, if the spill ends
 * first, is read into it: in->left). Returns the bytes taken, for the
 * parser's skip (0 when out of memory).
 */
uint64_t chain_in_adopt(struct chain_in *in, uint64_t left);

/* Copy up to n of the spill's first bytes into the buffer. Returns 0, or
   -1 when the buffer cannot grow. */
int chain_in_unspill(struct chain_in *in, size_t n) MUSTCHECK;

/* The first n bytes of the buffer were consumed: pieces standing in them
   are given back (those still wanted were taken), later ones move up. */
void chain_in_consume_pieces(struct chain_in *in, size_t n);
static inline void
chain_in_consume(struct chain_in *in, size_t n)
{
    if (in->holes.head == NULL) { /* no body read around the buffer: per unit */
        buf_consume(&in->b, n);
        return;
    }
    chain_in_consume_pieces(in, n);
}

/* Give back every chunk `in` holds: its pieces, the chunks offered to a
   read, the spill (the offered counts are left to chain_in_reset). */
void chain_in_drop_chunks(struct chain_in *in);

/* Empty `in`, giving back its chunks. A buffer given back after a small
   request holds none: only then is there no call. */
static inline void
chain_in_reset(struct chain_in *in)
{
    if (in->holes.head != NULL || in->offered != NULL || in->spill != NULL) {
        chain_in_drop_chunks(in);
    }
    buf_reset(&in->b);
    in->offered_tail = NULL;
    in->offered_tail_bytes = in->offered_bytes = in->offered_buf = 0;
    in->left = 0;
    in->fresh = false;
    in->npieces = 0;
}

/* Whether the left bytes still to come of a body whose start is in `in`
   are better read around the buffer: enough of them, and more than the
   buffer has room for. */
static inline bool
chain_in_wants_piece(const struct chain_in *in, uint64_t left)
{
    return in->left == 0 && left >= CHAIN_MIN_PIECE && left > in->b.cap - in->b.end;
}

/* Nothing in `in`: no bytes, no pieces, no body being read. */
static inline bool
chain_in_empty(const struct chain_in *in)
{
    return buf_len(&in->b) == 0 && in->holes.head == NULL && in->left == 0 && in->spill_bytes == 0;
}

/* Bytes the parser has not seen: the buffer's and the spill's. */
static inline bool
chain_in_pending(const struct chain_in *in)
{
    return buf_len(&in->b) > 0 || in->spill_bytes > 0;
}

#endif
