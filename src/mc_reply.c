/*
 * mc_reply: memcached replies as the proxy sees them (see mc_reply.h). The
 * reply parser (proto_mc) is restartable, so a half-read unit needs no
 * state beyond its bytes: the reader's state is unused.
 */
#include "mc_reply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "chain.h"
#include "msg.h"
#include "proto_mc.h"
#include "util.h"

static enum proto_rc
mc_reply_step(void *state, const struct msg *m, const uint8_t *buf, size_t len, uint64_t skipped,
              struct proto_step *out)
{
    enum mc_cmd cmd = (enum mc_cmd)m->cmd;
    struct mc_rsp rsp;

    (void)state;
    switch (mc_parse_rsp_skip(buf, len, skipped, &rsp)) {
    case MC_PARSE_AGAIN:
        /* A VALUE header announces its block's size; a VALUE for anything
           but a retrieval is no reply to it, whatever its block holds. */
        out->min_len = rsp.len;
        return rsp.len > 0 && !mc_rsp_fits(cmd, buf, &rsp) ? PROTO_ERROR : PROTO_AGAIN;
    case MC_PARSE_ERROR:
        out->min_len = rsp.len; /* a VALUE whose block does not end right */
        return PROTO_ERROR;
    case MC_PARSE_OK:
        break;
    }
    if (rsp.type == MC_RSP_VALUE && mc_cmd_is_retrieval(cmd)) {
        out->len = rsp.len; /* the common unit of a get, judged at once */
        out->done = false;
        return PROTO_OK;
    }
    if (!mc_rsp_fits(cmd, buf, &rsp)) {
        out->min_len = rsp.len;
        return PROTO_ERROR;
    }
    out->len = rsp.len;
    out->done = rsp.type != MC_RSP_VALUE; /* VALUE blocks come until END */
    return PROTO_OK;
}

static uint64_t
mc_reply_body_left(void *state, const struct msg *m, const uint8_t *buf, size_t len,
                   uint64_t skipped)
{
    struct mc_rsp rsp;

    (void)state;
    (void)m;
    /* The parser is restartable: the header is read again, cheaply. */
    if (mc_parse_rsp_skip(buf, len, skipped, &rsp) != MC_PARSE_AGAIN || rsp.len < 2 ||
        rsp.len - 2 <= len) {
        return 0;
    }
    return rsp.len - 2 - len; /* the block's bytes not here yet, its "\r\n" aside */
}

void
mc_reply_error(struct buf *rsp, int err)
{
    char ebuf[128], line[192];
    int n =
        snprintf(line, sizeof(line), "SERVER_ERROR %s\r\n", util_strerror(err, ebuf, sizeof(ebuf)));

    buf_reset(rsp);
    if (buf_append(rsp, line, (size_t)n) != 0) {
        buf_reset(rsp);
    }
}

/*
 * The unit of fragment fr's reply at buffer offset at: on true, a whole
 * VALUE block (rsp->len of the buffer's bytes, a body read around the
 * buffer standing in it) or a line. A piece stands inside the block it
 * belongs to, so the unit is parsed up to the next piece first, and told
 * of that piece's bytes only if its block reaches it.
 */
static bool
mc_reply_unit(const struct msg *fr, size_t at, struct mc_rsp *rsp)
{
    const uint8_t *unit = buf_head(&fr->rsp) + at;
    size_t left = buf_len(&fr->rsp) - at;
    const struct chunk *piece = chain_next_piece(&fr->rsp_pieces, at);
    enum mc_parse r;

    r = mc_parse_rsp(unit, piece != NULL ? piece->at - at : left, rsp);
    if (r == MC_PARSE_AGAIN && piece != NULL && rsp->type == MC_RSP_VALUE && rsp->len > 0) {
        r = mc_parse_rsp_skip(unit, left, piece->total, rsp);
    }
    return r == MC_PARSE_OK;
}

/* flush_all: OK when every server said OK, else the first other reply. */
static int
mc_reply_merge_all_ok(struct msg *p)
{
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (buf_len(&fr->rsp) != 4 || memcmp(buf_head(&fr->rsp), "OK\r\n", 4) != 0) {
            return chain_take(&p->rsp, &p->rsp_pieces, buf_head(&fr->rsp), &fr->rsp_pieces, 0,
                              buf_len(&fr->rsp)) != 0
                       ? -ENOMEM
                       : 0;
        }
    }
    return buf_append(&p->rsp, "OK\r\n", 4) != 0 ? -ENOMEM : 0;
}

int
mc_reply_merge(struct msg *p)
{
    const uint8_t *line = buf_head(&p->req);
    size_t pos = p->keys_off, koff, klen;
    uint32_t i = 0;

    msg_rsp_reset(p);
    if (p->merge == MSG_MERGE_ALL_OK) {
        return mc_reply_merge_all_ok(p);
    }
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        size_t n = buf_len(&fr->rsp);
        if (n < 5 || memcmp(buf_head(&fr->rsp) + n - 5, "END\r\n", 5) != 0) {
            /* a backend error line (no END) is the reply of the whole */
            return chain_take(&p->rsp, &p->rsp_pieces, buf_head(&fr->rsp), &fr->rsp_pieces, 0, n) !=
                           0
                       ? -ENOMEM
                       : 0;
        }
        fr->rsp_sent = 0; /* the fragment's read cursor below */
    }
    while (mc_next_key(line, p->keys_end, &pos, &koff, &klen)) {
        struct msg *fr = p->frags[p->key_frag[i++]];
        size_t at = (size_t)fr->rsp_sent;
        struct mc_rsp rsp;

        if (!mc_reply_unit(fr, at, &rsp) || rsp.type != MC_RSP_VALUE || rsp.key_len != klen ||
            memcmp(buf_head(&fr->rsp) + at + rsp.key_off, line + koff, klen) != 0) {
            continue; /* a miss */
        }
        if (chain_take(&p->rsp, &p->rsp_pieces, buf_head(&fr->rsp), &fr->rsp_pieces, at,
                       at + rsp.len) != 0) {
            return -ENOMEM;
        }
        fr->rsp_sent += rsp.len;
    }
    return buf_append(&p->rsp, "END\r\n", 5) != 0 ? -ENOMEM : 0;
}

const struct proto_wire mc_wire = {
    .id = PROTO_MEMCACHED,
    .rsp_state_size = 0,
    .reply_step = mc_reply_step,
    .reply_body_left = mc_reply_body_left,
    .reply_body_skip = NULL, /* the step is told what was skipped each time */
    .error_reply = mc_reply_error,
    .merge = mc_reply_merge,
};
