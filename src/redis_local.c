/*
 * redis_local: connection and pool commands of the Redis protocol (see
 * redis_local.h).
 *
 * Fan-outs. A command about the whole data set goes to every server of
 * the pool as one fragment each (route_fanout), and redis_reply.c merges
 * the replies by the row's merge: DBSIZE summed, KEYS joined, FLUSHDB and
 * FLUSHALL +OK when all are, SCRIPT LOAD the SHA1 all agree on, SCRIPT
 * EXISTS 1 where all have it, RANDOMKEY the first key from a random
 * start. Any server ejected or failing fails the whole: never a partial
 * answer. SCAN is a fan-out of one: the client's cursor says which server
 * is next and where in it (redis_scan_cursor_*).
 *
 * INFO writes the proxy's own sections here (server, clients, stats: the
 * pool's counters summed over the workers with relaxed loads) and asks
 * the servers only what it cannot know: their version (the lowest goes
 * into the server section, so a client that gates features on it stays
 * safe) and their keyspace (summed).
 *
 * HELLO answers as Redis 7 does. Its version is the lowest of the pool's
 * servers, learned from every INFO reply that passes (per worker, per
 * server); until each server's is known, HELLO asks them. HELLO 3 and
 * HELLO 2 switch the client's protocol version (its proto_ops: the other
 * of its family's sets), but only once every earlier request of the client
 * is answered (client_hold): the requests after it go to the other set of
 * server conns, and must not overtake those before it.
 *
 * Every reply made here is in the client's version: nil is "_" in RESP3,
 * INFO text a verbatim string, HELLO a map.
 */
#include "redis_local.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "conn.h"
#include "msg.h"
#include "pool.h"
#include "proto_redis.h"
#include "redis_reply.h"
#include "route.h"

/* Longest client name kept (CLIENT SETNAME, HELLO SETNAME). */
#define REDIS_LOCAL_NAME_MAX 512

static void
redis_local_reply(struct client *c, const char *s)
{
    client_reply(c, s, strlen(s));
}

/* Whether c speaks RESP3 now. */
static bool
redis_local_resp3(const struct client *c)
{
    return client_proto(c)->wire == &redis3_wire;
}

static void
redis_local_reply_bulk(struct client *c, const void *p, size_t len)
{
    struct msg *m = msg_get(&c->c.ctx->msgs);

    if (m == NULL || redis_reply_append_bulk(&m->rsp, p, len) != 0) {
        if (m != NULL) {
            msg_put(&c->c.ctx->msgs, m);
        }
        redis_local_reply(c, "-ERR out of memory\r\n");
        return;
    }
    client_local_msg(c, m);
}

/* The id CLIENT ID and HELLO report: the conn id, unique in the process
   (each worker's ids start at its own worker_id << 48). */
static uint64_t
redis_local_client_id(const struct client *c)
{
    return c->c.id;
}

/* ---- AUTH ---- */

/* The reply to AUTH [user] pass under the pool's rules; sets c->authed. */
static const char *
redis_local_auth_check(struct client *c, const struct redis_arg *user, const struct redis_arg *pass,
                       const uint8_t *buf)
{
    const char *pw = c->pool->cp->redis_auth;

    if (pw == NULL) {
        return "-ERR Client sent AUTH, but no password is set\r\n";
    }
    bool pw_ok = pass->len == strlen(pw) && memcmp(buf + pass->off, pw, pass->len) == 0;
    bool default_user = user == NULL ||
                        (user->len == 7 && memcmp(buf + user->off, "default", 7) == 0);
    if (!default_user) {
        c->authed = false;
        return "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    }
    c->authed = pw_ok;
    return pw_ok ? NULL : "-ERR invalid password\r\n";
}

void
redis_local_auth(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    const char *e =
        redis_local_auth_check(c, r->argc == 3 ? &r->args[1] : NULL, &r->args[r->argc - 1], buf);

    redis_local_reply(c, e != NULL ? e : "+OK\r\n");
}

/* ---- client names ---- */

/* Redis's rule: a name of printable characters, no spaces. */
static bool
redis_local_name_ok(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '!' || p[i] > '~') {
            return false;
        }
    }
    return true;
}

/* Set (or, with len 0, clear) c's name. Returns 0 or -ENOMEM. */
static int
redis_local_set_name(struct client *c, const uint8_t *p, size_t len)
{
    struct names *t = &c->c.ctx->names;

    if (len == 0) {
        if (c->named) {
            names_drop(t, c->c.id);
        }
        c->named = false;
        return 0;
    }
    if (names_set(t, c->c.id, p, len) != 0) {
        return -ENOMEM;
    }
    c->named = true;
    return 0;
}

/* ---- HELLO ---- */

/* Whether HELLO may switch to protocol version ver. */
static bool
redis_local_hello_proto(uint64_t ver)
{
    return ver == 2 || ver == 3;
}

/* The lowest version among p's servers as this worker learned them, or
   NULL while any is unknown. */
static const char *
redis_local_pool_version(const struct pool *p)
{
    const char *low = NULL;

    for (size_t i = 0; i < p->nservers; i++) {
        const char *v = p->servers[i]->version;
        if (v[0] == '\0') {
            return NULL;
        }
        if (low == NULL || redis_version_cmp(v, low) < 0) {
            low = v;
        }
    }
    return low;
}

static int
redis_local_build_info_server(void *arg, struct msg *fr, uint32_t server)
{
    (void)arg;
    (void)server;
    return buf_append(&fr->req, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n", 26) != 0 ? -1 : 0;
}

void
redis_local_hello(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    struct conn_ctx *ctx = c->c.ctx;
    const struct redis_arg *user = NULL, *pass = NULL, *name = NULL;
    char line[160];
    bool resp3 = redis_local_resp3(c);

    if (r->argc >= 2) {
        uint64_t ver;
        if (util_parse_u64((const char *)buf + r->args[1].off, r->args[1].len, INT32_MAX, &ver) !=
            0) {
            redis_local_reply(c, "-ERR Protocol version is not an integer or out of range\r\n");
            return;
        }
        if (!redis_local_hello_proto(ver)) {
            redis_local_reply(c, "-NOPROTO unsupported protocol version\r\n");
            return;
        }
        if ((ver == 3) != resp3 && !TAILQ_EMPTY(&c->q)) {
            client_hold(c); /* switch only once the requests before are answered */
            return;
        }
        resp3 = ver == 3;
    }
    for (uint32_t i = 2; i < r->argc; i++) {
        uint32_t left = r->argc - i - 1;
        if (redis_arg_is(r, buf, i, "auth") && left >= 2) {
            user = &r->args[i + 1];
            pass = &r->args[i + 2];
            i += 2;
        } else if (redis_arg_is(r, buf, i, "setname") && left >= 1) {
            name = &r->args[i + 1];
            i += 1;
        } else {
            int n = (int)MIN(r->args[i].len, 64);
            snprintf(line, sizeof(line), "-ERR Syntax error in HELLO option '%.*s'\r\n", n,
                     (const char *)buf + r->args[i].off);
            redis_local_reply(c, line);
            return;
        }
    }
    if (pass != NULL) {
        bool was = c->authed;
        const char *e = redis_local_auth_check(c, user, pass, buf);
        if (e != NULL) {
            /* Redis 7: a failed HELLO AUTH is WRONGPASS and leaves the
               client as it was */
            c->authed = was;
            redis_local_reply(c, c->pool->cp->redis_auth == NULL
                                     ? e
                                     : "-WRONGPASS invalid username-password pair or user is "
                                       "disabled.\r\n");
            return;
        }
    }
    if (c->pool->cp->redis_auth != NULL && !c->authed) {
        redis_local_reply(c, "-NOAUTH HELLO must be called with the client already "
                             "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                             "option can be used to authenticate the client and select the "
                             "RESP protocol version at the same time\r\n");
        return;
    }
    if (name != NULL) {
        if (!redis_local_name_ok(buf + name->off, name->len) || name->len > REDIS_LOCAL_NAME_MAX) {
            redis_local_reply(
                c, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
            return;
        }
        if (redis_local_set_name(c, buf + name->off, name->len) != 0) {
            redis_local_reply(c, "-ERR out of memory\r\n");
            return;
        }
    }

    if (client_proto(c)->nsets > 1) {
        c->set = resp3 ? 1 : 0; /* RESP2 and RESP3 are sets 0 and 1 */
    }

    char id[32];
    int idlen = snprintf(id, sizeof(id), "%" PRIu64, redis_local_client_id(c));
    struct msg *m = msg_get(&ctx->msgs);
    if (m == NULL) {
        redis_local_reply(c, "-ERR out of memory\r\n");
        return;
    }
    const char *version = redis_local_pool_version(c->pool);
    if (version != NULL) {
        if (redis_hello_reply(&m->rsp, version, id, (size_t)idlen, resp3) != 0) {
            msg_put(&ctx->msgs, m);
            redis_local_reply(c, "-ERR out of memory\r\n");
            return;
        }
        client_local_msg(c, m);
        return;
    }
    /* Not every server's version is known yet: ask them (INFO server). */
    m->cmd = redis_cmd_index(r->cmd);
    m->merge = MSG_MERGE_HELLO;
    m->start_usec = util_mono_usec();
    client_enqueue(c, m);
    if (buf_append(&m->req, id, (size_t)idlen) != 0) {
        client_fail_msg(ctx, m, ENOMEM);
        return;
    }
    route_fanout(c, m, 0, (uint32_t)c->pool->nservers, redis_local_build_info_server, NULL);
}

/* ---- CLIENT ---- */

/* CLIENT SETINFO LIB-NAME|LIB-VER value: checked as Redis 7.2 does, and
   answered +OK (nothing the proxy does depends on it). */
static void
redis_local_client_setinfo(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    char line[160];
    const struct redis_arg *v = &r->args[3];

    if (!redis_arg_is(r, buf, 2, "lib-name") && !redis_arg_is(r, buf, 2, "lib-ver")) {
        int n = (int)MIN(r->args[2].len, 64);
        snprintf(line, sizeof(line), "-ERR Unrecognized option '%.*s'\r\n", n,
                 (const char *)buf + r->args[2].off);
        redis_local_reply(c, line);
        return;
    }
    if (!redis_local_name_ok(buf + v->off, v->len)) {
        snprintf(line, sizeof(line),
                 "-ERR %s cannot contain spaces, newlines or special characters.\r\n",
                 redis_arg_is(r, buf, 2, "lib-name") ? "lib-name" : "lib-ver");
        redis_local_reply(c, line);
        return;
    }
    redis_local_reply(c, "+OK\r\n");
}

/*
 * A CLIENT subcommand the proxy does not answer. One Redis 7 knows (LIST,
 * KILL, TRACKING: about a connection the client does not have, or one
 * that would make a shared server conn push) is unsupported; one Redis 7
 * does not know gets Redis 7's own text, so a client that sends such a
 * subcommand at connect and tolerates Redis 7's answer (MAINT_NOTIFICATIONS)
 * tolerates ours.
 */
static void
redis_local_client_other(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    static const char *const known[] = {
        "caching",  "getredir", "help",  "info",     "kill",         "list",    "no-evict",
        "no-touch", "pause",    "reply", "tracking", "trackinginfo", "unblock", "unpause",
    };
    char line[200];

    for (size_t k = 0; k < ARRAY_SIZE(known); k++) {
        if (redis_arg_is(r, buf, 1, known[k])) {
            redis_local_reply(c, "-ERR unsupported command 'client'\r\n");
            return;
        }
    }
    if (r->argc < 2) {
        redis_local_reply(c, "-ERR wrong number of arguments for 'client' command\r\n");
        return;
    }
    /* Redis prints at most 128 bytes of the name, line breaks as spaces */
    char sub[129];
    size_t n = MIN(r->args[1].len, sizeof(sub) - 1);
    for (size_t k = 0; k < n; k++) {
        char ch = (char)buf[r->args[1].off + k];
        sub[k] = ch == '\r' || ch == '\n' ? ' ' : ch;
    }
    sub[n] = '\0';
    snprintf(line, sizeof(line), "-ERR unknown subcommand '%s'. Try CLIENT HELP.\r\n", sub);
    redis_local_reply(c, line);
}

void
redis_local_client(struct client *c, const struct redis_req *r, const uint8_t *buf)
{
    static const struct {
        const char *name;
        uint32_t argc; /* CLIENT, the subcommand and its arguments */
    } subs[] = { { "setname", 3 }, { "getname", 2 }, { "id", 2 }, { "setinfo", 4 } };
    char line[160];
    size_t i;

    for (i = 0; i < ARRAY_SIZE(subs); i++) {
        if (redis_arg_is(r, buf, 1, subs[i].name)) {
            break;
        }
    }
    if (i == ARRAY_SIZE(subs)) {
        redis_local_client_other(c, r, buf);
        return;
    }
    if (r->argc != subs[i].argc) {
        snprintf(line, sizeof(line), "-ERR wrong number of arguments for 'client|%s' command\r\n",
                 subs[i].name);
        redis_local_reply(c, line);
        return;
    }
    switch (i) {
    case 0: {
        const struct redis_arg *n = &r->args[2];
        if (!redis_local_name_ok(buf + n->off, n->len) || n->len > REDIS_LOCAL_NAME_MAX) {
            redis_local_reply(
                c, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
        } else if (redis_local_set_name(c, buf + n->off, n->len) != 0) {
            redis_local_reply(c, "-ERR out of memory\r\n");
        } else {
            redis_local_reply(c, "+OK\r\n");
        }
        return;
    }
    case 1:
        if (!c->named) {
            redis_local_reply(c, redis_local_resp3(c) ? "_\r\n" : "$-1\r\n");
        } else {
            const char *name = names_get(&c->c.ctx->names, c->c.id);
            redis_local_reply_bulk(c, name, strlen(name));
        }
        return;
    case 2:
        snprintf(line, sizeof(line), ":%" PRIu64 "\r\n", redis_local_client_id(c));
        redis_local_reply(c, line);
        return;
    default:
        redis_local_client_setinfo(c, r, buf);
        return;
    }
}

/* ---- fan-outs ---- */

/* What a fan-out's fragments send: the request as it came, or SCAN's with
   the server's own cursor, or INFO's sections. */
struct redis_local_fan {
    const struct redis_req *r;
    const uint8_t *buf;
    const char *req; /* when set: this request instead */
    size_t req_len;
    uint64_t cursor; /* SCAN: the server's cursor */
};

static int
redis_local_build_same(void *arg, struct msg *fr, uint32_t server)
{
    const struct redis_local_fan *fan = arg;

    (void)server;
    if (fan->req != NULL) {
        return buf_append(&fr->req, fan->req, fan->req_len) != 0 ? -1 : 0;
    }
    return buf_append(&fr->req, fan->buf, fan->r->total_len) != 0 ? -1 : 0;
}

static int
redis_local_build_scan(void *arg, struct msg *fr, uint32_t server)
{
    const struct redis_local_fan *fan = arg;
    const struct redis_req *r = fan->r;
    char num[32];
    int n = snprintf(num, sizeof(num), "%" PRIu64, fan->cursor);

    (void)server;
    if (redis_reply_append_count(&fr->req, '*', r->argc) != 0 ||
        redis_reply_append_bulk(&fr->req, fan->buf + r->args[0].off, r->args[0].len) != 0 ||
        redis_reply_append_bulk(&fr->req, num, (size_t)n) != 0) {
        return -1;
    }
    for (uint32_t i = 2; i < r->argc; i++) {
        if (redis_reply_append_bulk(&fr->req, fan->buf + r->args[i].off, r->args[i].len) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The sum of one pool counter over the workers. */
static uint64_t
redis_local_pool_sum(const struct pool *p, enum stats_pool_field f)
{
    uint64_t n = 0;

    for (int w = 0; w < p->ctx->nworkers; w++) {
        n += stats_get(&p->reg->st[w].f[f]);
    }
    return n;
}

static uint64_t
redis_local_closed_sum(const struct pool *p, enum stats_client_close why)
{
    uint64_t n = 0;

    for (int w = 0; w < p->ctx->nworkers; w++) {
        n += stats_get(&p->reg->st[w].closed[why]);
    }
    return n;
}

#define REDIS_INFO_SERVER 0x1
#define REDIS_INFO_CLIENTS 0x2
#define REDIS_INFO_STATS 0x4
#define REDIS_INFO_KEYSPACE 0x8
#define REDIS_INFO_ALL 0xf

/* The sections INFO's arguments ask for (unknown names ask for nothing). */
static unsigned
redis_local_info_sections(const struct redis_req *r, const uint8_t *buf)
{
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {
        { "server", REDIS_INFO_SERVER },  { "clients", REDIS_INFO_CLIENTS },
        { "stats", REDIS_INFO_STATS },    { "keyspace", REDIS_INFO_KEYSPACE },
        { "default", REDIS_INFO_ALL },    { "all", REDIS_INFO_ALL },
        { "everything", REDIS_INFO_ALL },
    };
    unsigned want = 0;

    if (r->argc == 1) {
        return REDIS_INFO_ALL;
    }
    for (uint32_t i = 1; i < r->argc; i++) {
        for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
            if (redis_arg_is(r, buf, i, names[k].name)) {
                want |= names[k].bits;
            }
        }
    }
    return want;
}

/* printf into b; -1 when out of memory. */
static int __attribute__((format(printf, 2, 3)))
redis_local_printf(struct buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    return buf_append(b, line, MIN((size_t)n, sizeof(line) - 1));
}

/* The proxy's own INFO sections into b (the server section without its
   redis_version, which the merge puts first). */
static int
redis_local_info_text(struct client *c, unsigned want, struct buf *b)
{
    const struct pool *p = c->pool;
    const struct conn_ctx *ctx = c->c.ctx;
    uint64_t up = (util_mono_msec() - ctx->start_ms) / 1000;
    int rc = 0;

    if (want & REDIS_INFO_SERVER) {
        rc |= redis_local_printf(b,
                                 "# Server\r\ncachemux_version:%s\r\nredis_mode:standalone\r\n"
                                 "process_id:%d\r\ntcp_port:%d\r\nuptime_in_seconds:%" PRIu64
                                 "\r\nuptime_in_days:%" PRIu64 "\r\nworkers:%d\r\n"
                                 "config_file:%s\r\npool:%s\r\n",
                                 PACKAGE_VERSION, (int)getpid(), p->cp->listen.port, up, up / 86400,
                                 ctx->nworkers, p->cp->file != NULL ? p->cp->file : "",
                                 p->cp->name);
    }
    if (want & REDIS_INFO_CLIENTS) {
        rc |= redis_local_printf(
            b, "%s# Clients\r\nconnected_clients:%" PRId64 "\r\n", buf_len(b) > 0 ? "\r\n" : "",
            (int64_t)atomic_load_explicit(&p->reg->nclients, memory_order_relaxed));
    }
    if (want & REDIS_INFO_STATS) {
        uint64_t closed = 0, requests = 0;
        for (int w = 0; w < STATS_CLIENT_CLOSE_N; w++) {
            closed += redis_local_closed_sum(p, (enum stats_client_close)w);
        }
        for (int w = 0; w < ctx->nworkers; w++) {
            requests += stats_get(&ctx->all_wst[w].requests);
        }
        uint64_t rejected = redis_local_closed_sum(p, STATS_CC_client_limit);
        uint64_t now = redis_local_pool_sum(p, STATS_P_client_connections);
        rc |= redis_local_printf(b,
                                 "%s# Stats\r\ntotal_connections_received:%" PRIu64
                                 "\r\ntotal_commands_processed:%" PRIu64
                                 "\r\nrejected_connections:%" PRIu64 "\r\nforward_errors:%" PRIu64
                                 "\r\nfragments:%" PRIu64 "\r\n",
                                 buf_len(b) > 0 ? "\r\n" : "", now + closed - rejected, requests,
                                 rejected, redis_local_pool_sum(p, STATS_P_forward_error),
                                 redis_local_pool_sum(p, STATS_P_fragments));
    }
    return rc != 0 ? -1 : 0;
}

static void
redis_local_info(struct client *c, struct msg *m, const struct redis_req *r, const uint8_t *buf)
{
    struct conn_ctx *ctx = c->c.ctx;
    unsigned want = redis_local_info_sections(r, buf);
    static const char info_all[] = "*1\r\n$4\r\nINFO\r\n";
    static const char info_server[] = "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n";
    static const char info_keyspace[] = "*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n";

    if (redis_local_info_text(c, want, &m->req) != 0) {
        client_fail_msg(ctx, m, ENOMEM);
        return;
    }
    if (!(want & (REDIS_INFO_SERVER | REDIS_INFO_KEYSPACE))) {
        /* nothing to ask the servers: the proxy's sections, or none */
        m->local = true;
        if (redis_reply_append_text(&m->rsp, buf_head(&m->req), buf_len(&m->req),
                                    redis_local_resp3(c)) != 0) {
            client_fail_msg(ctx, m, ENOMEM);
            return;
        }
        client_deliver(ctx, m);
        return;
    }
    struct redis_local_fan fan = { r, buf, info_all, sizeof(info_all) - 1, 0 };
    if (!(want & REDIS_INFO_KEYSPACE)) {
        fan.req = info_server;
        fan.req_len = sizeof(info_server) - 1;
    } else if (!(want & REDIS_INFO_SERVER)) {
        fan.req = info_keyspace;
        fan.req_len = sizeof(info_keyspace) - 1;
    }
    m->fan_flags = (uint8_t)(((want & REDIS_INFO_SERVER) ? MSG_INFO_SERVER : 0) |
                             ((want & REDIS_INFO_KEYSPACE) ? MSG_INFO_KEYSPACE : 0));
    route_fanout(c, m, 0, (uint32_t)c->pool->nservers, redis_local_build_same, &fan);
}

static void
redis_local_scan(struct client *c, struct msg *m, const struct redis_req *r, const uint8_t *buf)
{
    uint32_t n = (uint32_t)c->pool->nservers, server;
    struct redis_local_fan fan = { r, buf, NULL, 0, 0 };

    if (redis_scan_cursor_decode(buf + r->args[1].off, r->args[1].len, n, &server, &fan.cursor) !=
        0) {
        m->local = true;
        if (buf_append(&m->rsp, "-ERR invalid cursor\r\n", 21) != 0) {
            client_fail_msg(c->c.ctx, m, ENOMEM);
            return;
        }
        client_deliver(c->c.ctx, m);
        return;
    }
    m->fan_server = server;
    m->fan_nservers = n;
    route_fanout(c, m, server, 1, redis_local_build_scan, &fan);
}

/* A reply the proxy makes for m, already on c's queue. */
static void
redis_local_answer(struct client *c, struct msg *m, const char *s)
{
    m->local = true;
    if (buf_append(&m->rsp, s, strlen(s)) != 0) {
        client_fail_msg(c->c.ctx, m, ENOMEM);
        return;
    }
    client_deliver(c->c.ctx, m);
}

void
redis_local_fanout(struct client *c, struct msg *m, const struct redis_req *r, const uint8_t *buf)
{
    const struct redis_cmd *cmd = r->cmd;
    struct redis_local_fan fan = { r, buf, NULL, 0, 0 };

    m->merge = cmd->merge;
    if (cmd->merge == MSG_MERGE_INFO) {
        redis_local_info(c, m, r, buf);
        return;
    }
    if (cmd->merge == MSG_MERGE_SCAN) {
        redis_local_scan(c, m, r, buf);
        return;
    }
    if (cmd->merge == MSG_MERGE_NONE) {
        /* SCRIPT: its subcommand decides */
        int lo, hi;
        m->merge = (uint8_t)redis_script_sub(buf + r->args[1].off, r->args[1].len, &lo, &hi);
        if (m->merge == MSG_MERGE_NONE) {
            redis_local_answer(c, m, "-ERR unsupported command 'script'\r\n");
            return;
        }
        if ((int)r->argc - 2 < lo || (hi >= 0 && (int)r->argc - 2 > hi)) {
            char line[96], sub[17];
            size_t n = MIN(r->args[1].len, sizeof(sub) - 1);
            for (size_t k = 0; k < n; k++) {
                char ch = (char)buf[r->args[1].off + k];
                sub[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
            }
            sub[n] = '\0';
            snprintf(line, sizeof(line),
                     "-ERR wrong number of arguments for 'script|%s' command\r\n", sub);
            redis_local_answer(c, m, line);
            return;
        }
    }
    route_fanout(c, m, 0, (uint32_t)c->pool->nservers, redis_local_build_same, &fan);
}

void
redis_local_replied(struct server_conn *sc, const struct msg *m)
{
    const struct msg *p = m->parent;
    char v[sizeof(sc->server->version)];

    if (p == NULL || (p->merge != MSG_MERGE_INFO && p->merge != MSG_MERGE_HELLO) ||
        m->rsp_pieces.head != NULL) {
        return;
    }
    if (redis_info_version(buf_head(&m->rsp), buf_len(&m->rsp), v, sizeof(v)) == 0) {
        memcpy(sc->server->version, v, sizeof(v));
    }
}
