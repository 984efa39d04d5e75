/*
 * reply: the reply stream of one server socket (see reply.h).
 *
 *   in:  | reply to m1 | reply to m2 | half of the reply to m3 ...
 *   q:   m1 -> m2 -> m3 -> m4          (written, oldest first)
 *
 * Each call of the protocol's reply_step cuts one unit off the front: a
 * whole Redis reply, or one line or VALUE block of a memcached reply, which
 * may take several. A unit is copied to its msg only if someone still waits
 * for it; a timed-out request (a tombstone) or one whose client left still
 * takes its reply off the stream, so the pairing of the replies after it
 * holds.
 */
#include "reply.h"

#include <errno.h>
#include <string.h>

#include "buf.h"
#include "chain.h"

_Static_assert(sizeof(((struct reply_reader *)0)->state) >= 128,
               "reply_reader state too small for the protocols' parse state");

/*
 * The unit at the front needs bytes that were read ahead into chunks: the
 * body it is in takes them as its piece, or a header's worth is copied
 * into the buffer. Returns 0 or -ENOMEM.
 */
static int
reply_unspill(const struct proto_wire *w, struct reply_reader *rr, struct chain_in *in,
              const struct msg *m)
{
    uint64_t left =
        w->reply_body_left(rr->state, m, buf_head(&in->b), buf_len(&in->b), in->holes.bytes);

    if (left >= CHAIN_MIN_PIECE) {
        uint64_t got = chain_in_adopt(in, left);
        if (got > 0) {
            reply_streamed(w, rr, got);
            return 0;
        }
    }
    return chain_in_unspill(in, MAX((size_t)CHAIN_HEAD_ROOM, buf_len(&in->b))) != 0 ? -ENOMEM : 0;
}

int
reply_read(const struct proto_wire *w, struct reply_reader *rr, struct chain_in *in,
           struct msg_tqh *q, uint64_t max_reply, reply_done_fn done, void *arg)
{
    while (chain_in_pending(in)) {
        struct msg *m = TAILQ_FIRST(q);
        struct proto_step st = { 0 };

        if (m == NULL) {
            return -EINVAL; /* bytes nobody asked for */
        }
        if (buf_len(&in->b) == 0 && chain_in_unspill(in, CHAIN_HEAD_ROOM) != 0) {
            return -ENOMEM;
        }
        const uint8_t *head = buf_head(&in->b);
        enum proto_rc rc = w->reply_step(rr->state, m, head, buf_len(&in->b), in->holes.bytes, &st);
        if (rc != PROTO_OK) {
            /* Refused once its declared parts cannot fit, not once buffered;
               the same decision however the bytes arrived, since what was
               declared before a bad byte counts as well. */
            if (rr->bytes + st.min_len > max_reply) {
                return -EMSGSIZE;
            }
            if (rc == PROTO_ERROR) {
                return -EINVAL;
            }
            if (in->spill_bytes == 0) {
                return 0;
            }
            int urc = reply_unspill(w, rr, in, m);
            if (urc < 0) {
                return urc;
            }
            continue;
        }
        rr->bytes += st.len;
        if (rr->bytes > max_reply) {
            return -EMSGSIZE;
        }
        if (st.drop) {
            /* out of band: nobody's reply; the head still waits for its own */
            chain_in_consume(in, st.len);
            if (w->rsp_state_size > 0) {
                memset(rr->state, 0, w->rsp_state_size);
            }
            rr->bytes = 0;
            rr->units = 0;
            in->npieces = 0;
            continue;
        }
        if (msg_wants_reply(m) &&
            chain_take(&m->rsp, &m->rsp_pieces, head, &in->holes, 0, st.len) != 0) {
            return -ENOMEM;
        }
        chain_in_consume(in, st.len); /* a reply nobody wants gives its pieces back */
        rr->units++;
        if (st.done) {
            if (w->rsp_state_size > 0) {
                memset(rr->state, 0, w->rsp_state_size); /* the next reply starts afresh */
            }
            rr->bulky = in->npieces > 0; /* a server that sends large values: read ahead */
            in->npieces = 0;
            size_t total = (size_t)rr->bytes;
            m->rsp_units = rr->units;
            rr->bytes = 0;
            rr->units = 0;
            int drc = done(arg, m, total);
            if (drc < 0) {
                return drc;
            }
        }
    }
    return 0;
}

bool
reply_stream(const struct proto_wire *w, struct reply_reader *rr, struct chain_in *in,
             const struct msg_tqh *q)
{
    const struct msg *m = TAILQ_FIRST(q);
    uint64_t left;

    if (m == NULL || in->left > 0 || buf_len(&in->b) == 0) {
        return false;
    }
    left = w->reply_body_left(rr->state, m, buf_head(&in->b), buf_len(&in->b), in->holes.bytes);
    if (!chain_in_wants_piece(in, left)) {
        return false;
    }
    chain_in_stream(in, left);
    return true;
}

void
reply_streamed(const struct proto_wire *w, struct reply_reader *rr, uint64_t n)
{
    rr->bytes += n; /* the reply's size counts every byte, wherever read */
    if (w->reply_body_skip != NULL) {
        w->reply_body_skip(rr->state, n);
    }
}

void
reply_merge(const struct proto_wire *w, struct msg *p)
{
    int err = 0;

    for (uint32_t f = 0; f < p->nfrags && err == 0; f++) {
        err = p->frags[f]->err; /* a failed part fails the whole */
    }
    if (err == 0) {
        err = -w->merge(p);
    }
    if (err != 0) {
        p->err = err;
        msg_rsp_reset(p);
        w->error_reply(&p->rsp, err);
    }
}
