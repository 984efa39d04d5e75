/*
 * reply: pairing a server socket's reply stream with the requests written
 * to it, for any protocol. Replies come back in the order the requests
 * were written, so the next reply always belongs to the oldest request
 * still waiting (the head of the queue); the protocol's wire ops say where
 * each reply, or each unit of one, ends.
 *
 * The reader is socket-scoped: it holds the protocol's parse state and the
 * size of the reply being read, both of which describe bytes of this
 * socket only. A new socket starts from a zeroed reader (reply_reader_reset),
 * so nothing of a dead socket's half-read reply can touch the next one's
 * bytes.
 *
 * Pure: bytes, msgs and a callback; no sockets. The runtime calls it on
 * every read; the reply-path fuzzer drives it directly.
 */
#ifndef CMX_REPLY_H
#define CMX_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "msg.h"
#include "proto.h"
#include "util.h"

/* Room for the largest protocol reply-parse state. */
#define REPLY_STATE_WORDS 16

struct reply_reader {
    uint64_t bytes;                    /* of the reply being read, all its units */
    uint32_t units;                    /* units of it so far (pushes aside) */
    uint64_t state[REPLY_STATE_WORDS]; /* the protocol's parse state */
    bool bulky;                        /* the last reply had a large value: read ahead */
};

/* m's reply is complete; its bytes were appended to m->rsp when m wants
   them (msg_wants_reply). total: the reply's size. The callback takes m off
   the queue. Returns 0 or -errno (the socket is failed). */
typedef int (*reply_done_fn)(void *arg, struct msg *m, size_t total);

static inline void
reply_reader_reset(struct reply_reader *rr)
{
    *rr = (struct reply_reader){ 0 };
}

/*
 * Consume the replies at the front of in for the msgs of q (oldest first),
 * appending each unit to its msg's rsp (its bodies read around the buffer
 * move to the msg's rsp_pieces) and calling done for each complete reply.
 * Stops at a partial reply (its bytes stay in in). Returns 0, or
 * -EINVAL (bytes that are not a reply to the head, or bytes when no
 * request waits), -EMSGSIZE (a reply over max_reply bytes, refused as soon
 * as its declared size shows it), -ENOMEM, or done's error.
 */
int reply_read(const struct proto_wire *w, struct reply_reader *rr, struct chain_in *in,
               struct msg_tqh *q, uint64_t max_reply, reply_done_fn done, void *arg) MUSTCHECK;

/*
 * After reply_read: if the partial reply at the front of in is in a body
 * of which more than CHAIN_MIN_PIECE bytes are still to come, and more than
 * the buffer has room for, the rest of that body is to be read around the
 * buffer: chain_in_stream is called for it. Returns whether it was.
 */
bool reply_stream(const struct proto_wire *w, struct reply_reader *rr, struct chain_in *in,
                  const struct msg_tqh *q);

/* n bytes of that body were read around the buffer (chain_in_commit). */
void reply_streamed(const struct proto_wire *w, struct reply_reader *rr, uint64_t n);

/*
 * A split request's reply, once every fragment is done: the error reply
 * for the first fragment that failed (m->err), else the protocol's merge of
 * the fragments' replies, or the error reply for the merge's error (a sum
 * out of range, a part that is not the reply its command gets, out of
 * memory). The result is in parent->rsp (and parent->err when an error).
 */
void reply_merge(const struct proto_wire *w, struct msg *parent);

#endif
