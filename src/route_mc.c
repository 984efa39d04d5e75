/*
 * route_mc: memcached requests and replies (see route_mc.h).
 *
 * A retrieval whose keys all live on one server is forwarded whole. One
 * whose keys span servers becomes a parent msg (holding the original line)
 * and one fragment per server ("get k1 k4\r\n"); key_frag[i] remembers the
 * fragment of the i-th key. memcached answers hits in the order of the keys
 * it was asked, so the parent's reply is rebuilt by walking the original
 * keys and taking, for each, the next VALUE of its fragment if the key
 * matches: request-key order, duplicates included, misses skipped.
 */
#include "route_mc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "pool.h"
#include "proto_mc.h"

static const uint8_t route_mc_placeholder[] = "placeholder";

static bool
route_mc_is_retrieval(enum mc_cmd cmd)
{
    enum mc_kind k = mc_cmd_kind(cmd);

    return k == MC_KIND_RETRIEVAL || k == MC_KIND_GAT;
}

static void
route_mc_error_reply(struct msg *m, int err)
{
    char ebuf[128], line[192];
    int n = snprintf(line, sizeof(line), "SERVER_ERROR %s\r\n",
                     util_strerror(err, ebuf, sizeof(ebuf)));

    buf_reset(&m->rsp);
    if (buf_append(&m->rsp, line, (size_t)n) != 0) {
        buf_reset(&m->rsp);
    }
}

/* A new msg for c carrying bytes as its request; NULL when out of memory. */
static struct msg *
route_mc_new_msg(struct conn *c, enum mc_cmd cmd)
{
    struct msg *m = msg_get(&c->ctx->msgs);

    if (m != NULL) {
        m->cmd = (uint8_t)cmd;
    }
    return m;
}

static int
route_mc_split(struct conn *c, struct msg *m, const uint8_t *line, const struct mc_req *req)
{
    struct pool *p = c->pool;
    size_t pos = req->keys_off, koff, klen;
    uint32_t i = 0, nfrags = 0;
    struct msg_split sp;
    int rc = -1;

    if (msg_split_alloc(m, req->nkeys, (uint32_t)MIN(p->nservers, req->nkeys), p->nservers,
                        &sp) != 0) {
        return -ENOMEM;
    }
    int32_t *frag_of_server = sp.frag_of_server;
    struct pool_server **servers = (struct pool_server **)sp.servers;
    while (mc_next_key(line, req->keys_end, &pos, &koff, &klen)) {
        struct pool_server *s = pool_pick(p, line + koff, klen);
        if (s == NULL) {
            rc = -ECONNREFUSED;
            goto out;
        }
        if (frag_of_server[s->idx] < 0) {
            frag_of_server[s->idx] = (int32_t)nfrags;
            servers[nfrags++] = s;
        }
        m->key_frag[i++] = (uint32_t)frag_of_server[s->idx];
    }
    if (nfrags == 1) {
        rc = 1;     /* all keys on one server: forward whole */
        m->key_frag = NULL;
        m->frags = NULL;
        if (buf_append(&m->req, line, req->total_len) != 0) {
            rc = -ENOMEM;
            goto out;
        }
        route_forward_to(c, servers[0], m);
        goto out;
    }

    /* The command and, for gat/gats, the exptime precede the keys. */
    size_t prefix = req->keys_off;
    for (uint32_t f = 0; f < nfrags; f++) {
        struct msg *fr = route_mc_new_msg(c, (enum mc_cmd)m->cmd);
        if (fr == NULL) {
            goto out;
        }
        fr->parent = m;
        m->frags[f] = fr;
        m->nfrags++;
        if (buf_append(&fr->req, line, prefix - 1) != 0) {
            goto out;
        }
    }
    pos = req->keys_off;
    i = 0;
    while (mc_next_key(line, req->keys_end, &pos, &koff, &klen)) {
        struct msg *fr = m->frags[m->key_frag[i++]];
        if (buf_append(&fr->req, " ", 1) != 0 || buf_append(&fr->req, line + koff, klen) != 0) {
            goto out;
        }
    }
    for (uint32_t f = 0; f < nfrags; f++) {
        if (buf_append(&m->frags[f]->req, "\r\n", 2) != 0) {
            goto out;
        }
    }
    /* The parent keeps the original line to walk its keys later. */
    if (buf_append(&m->req, line, req->line_len) != 0) {
        goto out;
    }
    m->keys_off = req->keys_off;
    m->keys_end = req->keys_end;
    m->nkeys = req->nkeys;
    stats_add(&p->st->f[STATS_P_fragments], nfrags);
    for (uint32_t f = 0; f < nfrags; f++) {
        route_forward_to(c, servers[f], m->frags[f]);
    }
    rc = 0;
out:
    return rc;
}

static void
route_mc_request(struct conn *c, const uint8_t *buf, const struct mc_req *req)
{
    struct conn_ctx *ctx = c->ctx;
    struct msg *m;

    if (req->cmd == MC_QUIT) {
        /* Close once earlier replies are written; quit has no reply. */
        (void)route_local_reply(c, "", 0, true);
        return;
    }
    m = route_mc_new_msg(c, req->cmd);
    if (m == NULL) {
        (void)route_local_reply(c, "SERVER_ERROR out of memory\r\n", 28, true);
        return;
    }
    m->start_usec = util_mono_usec();
    stats_add(&ctx->wst->requests, 1);
    route_client_enqueue(c, m);

    if (req->cmd == MC_VERSION) {
        if (buf_append(&m->req, "version\r\n", 9) != 0) {
            route_msg_fail(ctx, m, ENOMEM);
            return;
        }
        route_forward(c, m, route_mc_placeholder, sizeof(route_mc_placeholder) - 1);
        return;
    }

    if (route_mc_is_retrieval(req->cmd) && req->nkeys > 1 && c->pool->nservers > 1) {
        int rc = route_mc_split(c, m, buf, req);
        if (rc < 0) {
            /* Fragments already made (none sent yet) are freed with it. */
            route_msg_fail(ctx, m, rc == -ECONNREFUSED ? ECONNREFUSED : ENOMEM);
        }
        return;
    }

    /* Forward whole; toward the backend noreply is stripped and the
       reply swallowed, so an error sent anyway cannot shift pairing. */
    int rc;
    if (req->noreply_len > 0) {
        m->swallow = true;
        rc = buf_append(&m->req, buf, req->noreply_off);
        if (rc == 0) {
            rc = buf_append(&m->req, buf + req->noreply_off + req->noreply_len,
                            req->total_len - req->noreply_off - req->noreply_len);
        }
    } else {
        rc = buf_append(&m->req, buf, req->total_len);
    }
    if (rc != 0) {
        route_msg_fail(ctx, m, ENOMEM);
        return;
    }
    size_t pos = req->keys_off, koff = 0, klen = 0;
    (void)mc_next_key(buf, req->keys_end, &pos, &koff, &klen);
    route_forward(c, m, buf + koff, klen);
}

static void
route_mc_client_input(struct conn *c)
{
    struct mc_req req;

    while (c->state == CONN_ACTIVE && buf_len(&c->in) > 0 && !conn_client_throttled(c)) {
        const uint8_t *p = buf_head(&c->in);
        enum mc_parse r = mc_parse_req(p, buf_len(&c->in), c->ctx->max_request_size, &req);

        if (r == MC_PARSE_AGAIN) {
            break;
        }
        if (r == MC_PARSE_ERROR) {
            const char *reply = mc_error_reply(req.err);
            bool closes = mc_error_closes(req.err);
            (void)route_local_reply(c, reply, strlen(reply), closes);
            if (closes) {
                route_client_drain(c, req.err == MC_ERR_TOO_LARGE ? STATS_CC_too_large
                                                                   : STATS_CC_protocol_error);
                break;
            }
            buf_consume(&c->in, req.line_len);
            continue;
        }
        route_mc_request(c, p, &req);
        if (req.cmd == MC_QUIT) {
            route_client_drain(c, STATS_CC_quit);
            break;
        }
        buf_consume(&c->in, req.total_len);
    }
}

static int
route_mc_server_input(struct conn *s)
{
    uint64_t max_reply = s->ctx->max_reply_size;
    struct mc_rsp rsp;

    while (buf_len(&s->in) > 0) {
        struct msg *m = TAILQ_FIRST(&s->out_q);
        const uint8_t *p = buf_head(&s->in);

        if (m == NULL) {
            return -EINVAL;     /* bytes nobody asked for */
        }
        enum mc_parse r = mc_parse_rsp(p, buf_len(&s->in), &rsp);
        if (r == MC_PARSE_AGAIN) {
            /* A VALUE header announces its size: refuse it before the body. */
            if (s->sock.reply_bytes + rsp.len > max_reply) {
                return -EMSGSIZE;
            }
            break;
        }
        if (r == MC_PARSE_ERROR) {
            return -EINVAL;
        }
        bool retrieval = route_mc_is_retrieval((enum mc_cmd)m->cmd);
        if (!m->handshake && !mc_rsp_fits((enum mc_cmd)m->cmd, p, &rsp)) {
            return -EINVAL;
        }
        /* A retrieval reply is many units; all of them count. */
        s->sock.reply_bytes += rsp.len;
        if (s->sock.reply_bytes > max_reply) {
            return -EMSGSIZE;
        }
        if (route_msg_wanted(m)) {
            if (buf_append(&m->rsp, p, rsp.len) != 0) {
                return -ENOMEM;
            }
        }
        buf_consume(&s->in, rsp.len);
        if (retrieval && rsp.type == MC_RSP_VALUE) {
            continue;
        }
        (void)conn_server_pop_reply(s, s->sock.reply_bytes);
        s->sock.reply_bytes = 0;
        route_server_replied(s, m);
    }
    return 0;
}

static bool
route_mc_value_key_is(const uint8_t *unit, size_t len, const uint8_t *key, size_t klen)
{
    struct mc_rsp rsp;

    if (mc_parse_rsp(unit, len, &rsp) != MC_PARSE_OK || rsp.type != MC_RSP_VALUE) {
        return false;
    }
    return rsp.key_len == klen && memcmp(unit + rsp.key_off, key, klen) == 0;
}

static void
route_mc_assemble(struct msg *p)
{
    const uint8_t *line = buf_head(&p->req);
    size_t pos = p->keys_off, koff, klen;
    uint32_t i = 0;

    buf_reset(&p->rsp);
    /* A failed part fails the whole request; a backend error line (no END)
       is passed through as the reply. */
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (fr->err != 0) {
            route_mc_error_reply(p, fr->err);
            return;
        }
        size_t n = buf_len(&fr->rsp);
        if (n < 5 || memcmp(buf_head(&fr->rsp) + n - 5, "END\r\n", 5) != 0) {
            if (buf_append(&p->rsp, buf_head(&fr->rsp), n) != 0) {
                route_mc_error_reply(p, ENOMEM);
            }
            return;
        }
        fr->rsp_sent = 0;   /* used as the fragment's read cursor below */
    }
    while (mc_next_key(line, p->keys_end, &pos, &koff, &klen)) {
        struct msg *fr = p->frags[p->key_frag[i++]];
        const uint8_t *unit = buf_head(&fr->rsp) + fr->rsp_sent;
        size_t left = buf_len(&fr->rsp) - fr->rsp_sent;
        struct mc_rsp rsp;

        if (!route_mc_value_key_is(unit, left, line + koff, klen)) {
            continue;   /* a miss */
        }
        (void)mc_parse_rsp(unit, left, &rsp);
        if (buf_append(&p->rsp, unit, rsp.len) != 0) {
            route_mc_error_reply(p, ENOMEM);
            return;
        }
        fr->rsp_sent += rsp.len;
    }
    if (buf_append(&p->rsp, "END\r\n", 5) != 0) {
        route_mc_error_reply(p, ENOMEM);
    }
}

const struct route_proto route_mc_proto = {
    .client_input = route_mc_client_input,
    .server_input = route_mc_server_input,
    .error_reply = route_mc_error_reply,
    .assemble = route_mc_assemble,
};
