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
#include "msg.h"
#include "proto_mc.h"
#include "util.h"

static enum proto_rc
mc_reply_step(void *state, const struct msg *m, const uint8_t *buf, size_t len,
              struct proto_step *out)
{
    enum mc_cmd cmd = (enum mc_cmd)m->cmd;
    struct mc_rsp rsp;

    (void)state;
    switch (mc_parse_rsp(buf, len, &rsp)) {
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

/* Whether unit (a whole VALUE block or a line) is the VALUE of key. */
static bool
mc_reply_value_is(const uint8_t *unit, size_t len, const uint8_t *key, size_t klen,
                  struct mc_rsp *rsp)
{
    if (mc_parse_rsp(unit, len, rsp) != MC_PARSE_OK || rsp->type != MC_RSP_VALUE) {
        return false;
    }
    return rsp->key_len == klen && memcmp(unit + rsp->key_off, key, klen) == 0;
}

int
mc_reply_merge(struct msg *p)
{
    const uint8_t *line = buf_head(&p->req);
    size_t pos = p->keys_off, koff, klen;
    uint32_t i = 0;

    buf_reset(&p->rsp);
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        size_t n = buf_len(&fr->rsp);
        if (n < 5 || memcmp(buf_head(&fr->rsp) + n - 5, "END\r\n", 5) != 0) {
            /* a backend error line (no END) is the reply of the whole */
            return buf_append(&p->rsp, buf_head(&fr->rsp), n) != 0 ? -ENOMEM : 0;
        }
        fr->rsp_sent = 0; /* the fragment's read cursor below */
    }
    while (mc_next_key(line, p->keys_end, &pos, &koff, &klen)) {
        struct msg *fr = p->frags[p->key_frag[i++]];
        const uint8_t *unit = buf_head(&fr->rsp) + fr->rsp_sent;
        size_t left = buf_len(&fr->rsp) - fr->rsp_sent;
        struct mc_rsp rsp;

        if (!mc_reply_value_is(unit, left, line + koff, klen, &rsp)) {
            continue; /* a miss */
        }
        if (buf_append(&p->rsp, unit, rsp.len) != 0) {
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
    .error_reply = mc_reply_error,
    .merge = mc_reply_merge,
};
