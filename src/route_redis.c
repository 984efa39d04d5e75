/*
 * route_redis: Redis requests and replies (see route_redis.h).
 *
 * Requests are forwarded as the client framed them (multibulk) or rebuilt
 * as multibulk (inline). A split command becomes a parent holding nothing
 * to send and one fragment per server, each a multibulk of the command name
 * and that server's keys (with their values for MSET); key_frag[i] is the
 * fragment of the i-th key, and the reply is rebuilt from the fragments'
 * replies: MGET's array in key order, DEL/UNLINK/TOUCH/EXISTS summed, MSET
 * +OK when every part said +OK. A backend error reply in any part is the
 * reply of the whole; a failed part fails the whole with the proxy's error.
 *
 * New backend conns first get AUTH redis_auth and then SELECT redis_db
 * (in that order: the reverse would SELECT before being allowed to). Their
 * replies are checked and swallowed; an error fails the conn.
 */
#include "route_redis.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "pool.h"
#include "proto_redis.h"

static const uint8_t route_redis_placeholder[] = "placeholder";

static void
route_redis_error_reply(struct msg *m, int err)
{
    char ebuf[128], line[192];
    int n = snprintf(line, sizeof(line), "-ERR %s\r\n", util_strerror(err, ebuf, sizeof(ebuf)));

    buf_reset(&m->rsp);
    if (buf_append(&m->rsp, line, (size_t)n) != 0) {
        buf_reset(&m->rsp);
    }
}

static int
route_redis_append_bulk(struct buf *b, const void *p, size_t len)
{
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", len);

    if (buf_append(b, hdr, (size_t)n) != 0 || buf_append(b, p, len) != 0 ||
        buf_append(b, "\r\n", 2) != 0) {
        return -1;
    }
    return 0;
}

static int
route_redis_append_count(struct buf *b, char type, uint64_t n)
{
    char hdr[32];
    int len = snprintf(hdr, sizeof(hdr), "%c%" PRIu64 "\r\n", type, n);

    return buf_append(b, hdr, (size_t)len);
}

/* Argument i of r (0 is the command name). */
static bool
route_redis_arg(const struct redis_req *r, const uint8_t *buf, uint32_t i, size_t *off,
                size_t *len)
{
    size_t cursor = 0;

    for (uint32_t k = 0; redis_next_arg(r, buf, &cursor, off, len); k++) {
        if (k == i) {
            return true;
        }
    }
    return false;
}

/* The request bytes to forward, as framed (inline was encoded already). */
static int
route_redis_copy_request(struct msg *m, const struct redis_req *r, const uint8_t *buf)
{
    return buf_append(&m->req, buf, r->total_len);
}

static int
route_redis_local(struct conn *c, const char *s)
{
    return route_local_reply(c, s, strlen(s), false);
}

static void
route_redis_reply_bulk(struct conn *c, const uint8_t *p, size_t len)
{
    struct msg *m = msg_get(&c->ctx->msgs);

    if (m == NULL || route_redis_append_bulk(&m->rsp, p, len) != 0) {
        if (m != NULL) {
            msg_put(&c->ctx->msgs, m);
        }
        (void)route_redis_local(c, "-ERR out of memory\r\n");
        return;
    }
    route_local_msg(c, m, false);
}

static void
route_redis_auth(struct conn *c, const struct redis_req *r, const uint8_t *buf)
{
    const char *pw = c->pool->cp->redis_auth;
    size_t uoff = 0, ulen = 0, poff, plen;

    if (pw == NULL) {
        (void)route_redis_local(c, "-ERR Client sent AUTH, but no password is set\r\n");
        return;
    }
    if (r->argc == 3) {
        (void)route_redis_arg(r, buf, 1, &uoff, &ulen);
        (void)route_redis_arg(r, buf, 2, &poff, &plen);
    } else {
        (void)route_redis_arg(r, buf, 1, &poff, &plen);
    }
    bool pw_ok = plen == strlen(pw) && memcmp(buf + poff, pw, plen) == 0;
    bool default_user = r->argc == 2 || (ulen == 7 && memcmp(buf + uoff, "default", 7) == 0);
    if (!default_user) {
        c->authed = false;
        (void)route_redis_local(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        return;
    }
    c->authed = pw_ok;
    (void)route_redis_local(c, pw_ok ? "+OK\r\n" : "-ERR invalid password\r\n");
}

static void
route_redis_local_cmd(struct conn *c, const struct redis_req *r, const uint8_t *buf)
{
    const char *name = r->cmd->name;
    size_t off, len;

    if (strcmp(name, "ping") == 0) {
        if (r->argc == 2 && route_redis_arg(r, buf, 1, &off, &len)) {
            route_redis_reply_bulk(c, buf + off, len);
        } else {
            (void)route_redis_local(c, "+PONG\r\n");
        }
    } else if (strcmp(name, "quit") == 0) {
        (void)route_local_reply(c, "+OK\r\n", 5, true);
    } else if (strcmp(name, "echo") == 0) {
        (void)route_redis_arg(r, buf, 1, &off, &len);
        route_redis_reply_bulk(c, buf + off, len);
    } else if (strcmp(name, "select") == 0) {
        uint64_t db;
        uint32_t want = c->pool->cp->redis_db;
        (void)route_redis_arg(r, buf, 1, &off, &len);
        if (util_parse_u64((const char *)buf + off, len, UINT32_MAX, &db) == 0 && db == want) {
            (void)route_redis_local(c, "+OK\r\n");
        } else {
            char line[96];
            snprintf(line, sizeof(line), "-ERR SELECT is not allowed: this pool serves db %u\r\n",
                     (unsigned)want);
            (void)route_redis_local(c, line);
        }
    } else if (strcmp(name, "auth") == 0) {
        route_redis_auth(c, r, buf);
    } else {
        (void)route_redis_local(c, "-ERR unsupported command\r\n");
    }
}

/* Split a multi-key command over servers; see the file comment. */
static int
route_redis_split(struct conn *c, struct msg *m, const struct redis_req *r, const uint8_t *buf)
{
    struct pool *p = c->pool;
    uint32_t step = r->cmd->key_step ? r->cmd->key_step : 1;
    uint32_t nkeys = (r->argc - 1) / step;
    size_t cursor = 0, off, len, name_off, name_len;
    uint32_t nfrags = 0;
    uint32_t maxfrags = (uint32_t)MIN(p->nservers, nkeys);
    struct msg_split sp;
    int rc = -ENOMEM;

    if (msg_split_alloc(m, nkeys, maxfrags, p->nservers, &sp) != 0) {
        return -ENOMEM;
    }
    int32_t *frag_of_server = sp.frag_of_server;
    struct pool_server **servers = (struct pool_server **)sp.servers;
    uint32_t *nkeys_of = sp.nkeys_of;
    (void)redis_next_arg(r, buf, &cursor, &name_off, &name_len);
    for (uint32_t i = 0; i < nkeys; i++) {
        (void)redis_next_arg(r, buf, &cursor, &off, &len);
        struct pool_server *s = pool_pick(p, buf + off, len);
        if (s == NULL) {
            rc = -ECONNREFUSED;
            goto out;
        }
        if (frag_of_server[s->idx] < 0) {
            frag_of_server[s->idx] = (int32_t)nfrags;
            servers[nfrags++] = s;
        }
        m->key_frag[i] = (uint32_t)frag_of_server[s->idx];
        nkeys_of[m->key_frag[i]]++;
        for (uint32_t k = 1; k < step; k++) {
            (void)redis_next_arg(r, buf, &cursor, &off, &len);
        }
    }
    m->nkeys = nkeys;
    if (nfrags == 1) {
        /* Every key on one server: forward whole, nothing to split. */
        m->key_frag = NULL;
        m->frags = NULL;
        if (route_redis_copy_request(m, r, buf) != 0) {
            goto out;
        }
        route_forward_to(c, servers[0], m);
        rc = 0;
        goto out;
    }
    for (uint32_t f = 0; f < nfrags; f++) {
        struct msg *fr = msg_get(&c->ctx->msgs);
        if (fr == NULL) {
            goto out;
        }
        fr->parent = m;
        fr->cmd = m->cmd;
        m->frags[f] = fr;
        m->nfrags++;
        if (route_redis_append_count(&fr->req, '*', 1 + (uint64_t)nkeys_of[f] * step) != 0 ||
            route_redis_append_bulk(&fr->req, buf + name_off, name_len) != 0) {
            goto out;
        }
    }
    cursor = 0;
    (void)redis_next_arg(r, buf, &cursor, &off, &len);
    for (uint32_t i = 0; i < nkeys; i++) {
        struct msg *fr = m->frags[m->key_frag[i]];
        for (uint32_t k = 0; k < step; k++) {
            (void)redis_next_arg(r, buf, &cursor, &off, &len);
            if (route_redis_append_bulk(&fr->req, buf + off, len) != 0) {
                goto out;
            }
        }
    }
    stats_add(&p->st->f[STATS_P_fragments], nfrags);
    for (uint32_t f = 0; f < nfrags; f++) {
        route_forward_to(c, servers[f], m->frags[f]);
    }
    rc = 0;
out:
    return rc;
}

static void
route_redis_forward_key(struct conn *c, struct msg *m, const struct redis_req *r,
                        const uint8_t *buf, uint32_t key_arg)
{
    size_t off = 0, len = 0;
    const uint8_t *key = route_redis_placeholder;
    size_t klen = sizeof(route_redis_placeholder) - 1;

    if (key_arg > 0 && route_redis_arg(r, buf, key_arg, &off, &len)) {
        key = buf + off;
        klen = len;
    }
    if (route_redis_copy_request(m, r, buf) != 0) {
        route_msg_fail(c->ctx, m, ENOMEM);
        return;
    }
    route_forward(c, m, key, klen);
}

static void
route_redis_request(struct conn *c, const uint8_t *buf, const struct redis_req *r)
{
    const struct redis_cmd *cmd = r->cmd;
    const struct conf_pool *cp = c->pool->cp;
    struct msg *m;

    if (cp->redis_auth != NULL && !c->authed && cmd->route != REDIS_ROUTE_LOCAL) {
        (void)route_redis_local(c, "-NOAUTH Authentication required.\r\n");
        return;
    }
    if (cmd->route == REDIS_ROUTE_LOCAL) {
        bool open_cmd = strcmp(cmd->name, "auth") == 0 || strcmp(cmd->name, "quit") == 0;
        if (cp->redis_auth != NULL && !c->authed && !open_cmd) {
            (void)route_redis_local(c, "-NOAUTH Authentication required.\r\n");
        } else {
            route_redis_local_cmd(c, r, buf);
        }
        return;
    }
    if (cmd->route == REDIS_ROUTE_UNSUPPORTED) {
        char line[128];
        int n = snprintf(line, sizeof(line), "-ERR unsupported command '%.*s'\r\n",
                         (int)MIN(r->name_len, 64), (const char *)buf + r->name_off);
        (void)route_local_reply(c, line, (size_t)n, false);
        return;
    }

    m = msg_get(&c->ctx->msgs);
    if (m == NULL) {
        (void)route_local_reply(c, "-ERR out of memory\r\n", 20, true);
        return;
    }
    m->cmd = (uint8_t)cmd->route;
    m->start_usec = util_mono_usec();
    stats_add(&c->ctx->wst->requests, 1);
    route_client_enqueue(c, m);

    switch (cmd->route) {
    case REDIS_ROUTE_KEY:
        route_redis_forward_key(c, m, r, buf, 1);
        break;
    case REDIS_ROUTE_PLACEHOLDER:
        route_redis_forward_key(c, m, r, buf, 0);
        break;
    case REDIS_ROUTE_EVAL: {
        size_t off, len;
        uint64_t numkeys = 0;
        if (route_redis_arg(r, buf, 2, &off, &len) &&
            util_parse_u64((const char *)buf + off, len, UINT32_MAX, &numkeys) == 0 &&
            numkeys > 0 && r->argc > 3) {
            route_redis_forward_key(c, m, r, buf, 3);
        } else {
            route_redis_forward_key(c, m, r, buf, 0);
        }
        break;
    }
    case REDIS_ROUTE_SPLIT_MGET:
    case REDIS_ROUTE_SPLIT_SUM:
    case REDIS_ROUTE_SPLIT_MSET:
        if (c->pool->nservers == 1) {
            route_redis_forward_key(c, m, r, buf, 1);
        } else {
            int rc = route_redis_split(c, m, r, buf);
            if (rc < 0) {
                route_msg_fail(c->ctx, m, -rc);
            }
        }
        break;
    default:
        route_msg_fail(c->ctx, m, EINVAL);
        break;
    }
}

/* An inline request's arguments may be quoted: route its multibulk form. */
static void
route_redis_inline(struct conn *c, const uint8_t *buf, const struct redis_req *r)
{
    struct buf *mb = &c->ctx->scratch;
    struct redis_req req;

    buf_reset(mb);
    if (buf_reserve(mb, redis_inline_encoded_max(r)) != 0) {
        (void)route_redis_local(c, "-ERR out of memory\r\n");
        return;
    }
    mb->end = redis_inline_encode(r, buf, mb->data);
    redis_req_init(&req);
    /* the line was checked against max_request_size; its encoding is longer */
    if (redis_parse_req(&req, mb->data, mb->end, UINT64_MAX) != REDIS_PARSE_OK) {
        (void)route_redis_local(c, "-ERR Protocol error: bad inline request\r\n");
        return;
    }
    route_redis_request(c, mb->data, &req);
}

static void
route_redis_client_input(struct conn *c)
{
    char reply[REDIS_ERR_REPLY_MAX];

    while (c->state == CONN_ACTIVE && buf_len(&c->in) > 0 && !conn_client_throttled(c)) {
        const uint8_t *p = buf_head(&c->in);
        if (!c->rreq_active) {
            redis_req_init(&c->rreq);
            c->rreq_active = true;
        }
        enum redis_parse rc = redis_parse_req(&c->rreq, p, buf_len(&c->in),
                                              c->ctx->max_request_size);
        if (rc == REDIS_PARSE_AGAIN) {
            break;
        }
        c->rreq_active = false;
        if (rc == REDIS_PARSE_ERROR) {
            if (c->rreq.err == REDIS_ERR_EMPTY) {
                buf_consume(&c->in, c->rreq.total_len);
                continue;
            }
            size_t n = redis_error_reply(&c->rreq, p, reply, sizeof(reply));
            bool closes = redis_error_closes(c->rreq.err);
            (void)route_local_reply(c, reply, n, closes);
            if (closes) {
                route_client_drain(c, c->rreq.err == REDIS_ERR_TOO_LARGE
                                          ? STATS_CC_too_large : STATS_CC_protocol_error);
                break;
            }
            buf_consume(&c->in, c->rreq.total_len);
            continue;
        }
        if (c->rreq.is_inline) {
            route_redis_inline(c, p, &c->rreq);
        } else {
            route_redis_request(c, p, &c->rreq);
        }
        if (c->rreq.cmd->route == REDIS_ROUTE_LOCAL && strcmp(c->rreq.cmd->name, "quit") == 0) {
            route_client_drain(c, STATS_CC_quit);
            break;
        }
        buf_consume(&c->in, c->rreq.total_len);
    }
}

static int
route_redis_handshake_reply(struct conn *s, struct msg *m, const uint8_t *p, size_t len)
{
    if (len > 0 && p[0] == '-') {
        int n = (int)MIN(len, 200);
        while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n')) {
            n--;
        }
        log_error("pool %s: server %s refused the handshake: %.*s", s->pool->cp->name,
                  s->server->cs->ident, n, (const char *)p);
        return -EACCES;
    }
    (void)m;
    return 0;
}

static int
route_redis_server_input(struct conn *s)
{
    struct conn_sock *sk = &s->sock;

    while (buf_len(&s->in) > 0) {
        struct msg *m = TAILQ_FIRST(&s->out_q);
        const uint8_t *p = buf_head(&s->in);

        if (m == NULL) {
            return -EINVAL;
        }
        if (!sk->rrsp_active) {
            redis_rsp_init(&sk->rrsp);
            sk->rrsp_active = true;
        }
        enum redis_parse rc = redis_parse_rsp(&sk->rrsp, p, buf_len(&s->in));
        if (rc == REDIS_PARSE_ERROR) {
            return -EINVAL;
        }
        /* Refused as soon as its declared parts cannot fit, not once buffered. */
        if (redis_rsp_min_len(&sk->rrsp) > s->ctx->max_reply_size) {
            return -EMSGSIZE;
        }
        if (rc == REDIS_PARSE_AGAIN) {
            break;
        }
        sk->rrsp_active = false;
        size_t n = sk->rrsp.total_len;
        (void)conn_server_pop_reply(s, n);
        if (m->handshake) {
            int hrc = route_redis_handshake_reply(s, m, p, n);
            buf_consume(&s->in, n);
            conn_msg_release(s->ctx, m);
            if (hrc < 0) {
                return hrc;
            }
            continue;
        }
        if (route_msg_wanted(m) && buf_append(&m->rsp, p, n) != 0) {
            buf_consume(&s->in, n);
            route_msg_fail(s->ctx, m, ENOMEM);
            continue;
        }
        buf_consume(&s->in, n);
        route_server_replied(s, m);
    }
    return 0;
}

static bool
route_redis_is_error(const struct msg *fr)
{
    return buf_len(&fr->rsp) > 0 && buf_head(&fr->rsp)[0] == '-';
}

static int
route_redis_assemble_mget(struct msg *p)
{
    if (route_redis_append_count(&p->rsp, '*', p->nkeys) != 0) {
        return -1;
    }
    for (uint32_t f = 0; f < p->nfrags; f++) {
        p->frags[f]->rsp_sent = 0;  /* the fragment's element cursor */
    }
    for (uint32_t i = 0; i < p->nkeys; i++) {
        struct msg *fr = p->frags[p->key_frag[i]];
        size_t off, len;
        if (!redis_next_elem(buf_head(&fr->rsp), buf_len(&fr->rsp), &fr->rsp_sent, &off, &len) ||
            buf_append(&p->rsp, buf_head(&fr->rsp) + off, len) != 0) {
            return -1;
        }
    }
    return 0;
}

static int
route_redis_assemble_sum(struct msg *p)
{
    int64_t sum = 0;

    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        struct redis_rsp rsp;
        redis_rsp_init(&rsp);
        if (redis_parse_rsp(&rsp, buf_head(&fr->rsp), buf_len(&fr->rsp)) != REDIS_PARSE_OK ||
            rsp.type != REDIS_RSP_INTEGER) {
            return -1;
        }
        if (__builtin_add_overflow(sum, rsp.integer, &sum)) {
            return -ERANGE;
        }
    }
    char line[32];
    int n = snprintf(line, sizeof(line), ":%" PRId64 "\r\n", sum);
    return buf_append(&p->rsp, line, (size_t)n);
}

static void
route_redis_assemble(struct msg *p)
{
    int rc = 0;

    buf_reset(&p->rsp);
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (fr->err != 0) {
            route_redis_error_reply(p, fr->err);
            return;
        }
    }
    for (uint32_t f = 0; f < p->nfrags; f++) {
        struct msg *fr = p->frags[f];
        if (route_redis_is_error(fr)) {
            if (buf_append(&p->rsp, buf_head(&fr->rsp), buf_len(&fr->rsp)) != 0) {
                route_redis_error_reply(p, ENOMEM);
            }
            return;
        }
    }
    switch ((enum redis_route)p->cmd) {
    case REDIS_ROUTE_SPLIT_MGET:
        rc = route_redis_assemble_mget(p);
        break;
    case REDIS_ROUTE_SPLIT_SUM:
        rc = route_redis_assemble_sum(p);
        break;
    case REDIS_ROUTE_SPLIT_MSET:
        for (uint32_t f = 0; f < p->nfrags && rc == 0; f++) {
            const struct msg *fr = p->frags[f];
            if (buf_len(&fr->rsp) != 5 || memcmp(buf_head(&fr->rsp), "+OK\r\n", 5) != 0) {
                rc = buf_append(&p->rsp, buf_head(&fr->rsp), buf_len(&fr->rsp));
                if (rc == 0) {
                    return;
                }
            }
        }
        if (rc == 0) {
            rc = buf_append(&p->rsp, "+OK\r\n", 5);
        }
        break;
    default:
        rc = -1;
        break;
    }
    if (rc != 0) {
        buf_reset(&p->rsp);
        /* A sum that does not fit 64 bits has no RESP form: say so. */
        route_redis_error_reply(p, rc == -ERANGE ? ERANGE : EINVAL);
    }
}

static int
route_redis_queue_handshake(struct conn *s, const char *cmd, const char *arg)
{
    struct msg *m = msg_get(&s->ctx->msgs);

    if (m == NULL) {
        return -ENOMEM;
    }
    m->handshake = true;
    if (route_redis_append_count(&m->req, '*', 2) != 0 ||
        route_redis_append_bulk(&m->req, cmd, strlen(cmd)) != 0 ||
        route_redis_append_bulk(&m->req, arg, strlen(arg)) != 0) {
        msg_put(&s->ctx->msgs, m);
        return -ENOMEM;
    }
    conn_server_enqueue(s, m, true);
    return 0;
}

static int
route_redis_server_connected(struct conn *s)
{
    const struct conf_pool *cp = s->pool->cp;
    int rc = 0;

    /* Inserted at the head, so queue SELECT first to have AUTH go first. */
    if (cp->redis_db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%u", (unsigned)cp->redis_db);
        rc = route_redis_queue_handshake(s, "SELECT", db);
    }
    if (rc == 0 && cp->redis_auth != NULL) {
        rc = route_redis_queue_handshake(s, "AUTH", cp->redis_auth);
    }
    return rc;
}

const struct route_proto route_redis_proto = {
    .client_input = route_redis_client_input,
    .server_input = route_redis_server_input,
    .error_reply = route_redis_error_reply,
    .assemble = route_redis_assemble,
    .server_connected = route_redis_server_connected,
};
