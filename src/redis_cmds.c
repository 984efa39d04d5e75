/*
 * redis_cmds: the Redis command table, data only. One row per command the
 * proxy knows: its arity, where its keys are, and what the proxy does with
 * it (forward by key, split over servers and merge, answer itself, or
 * refuse as unsupported). Routing reads the row and nothing else, so a new
 * command is one line here.
 *
 * Arities are redis-server 7.0's COMMAND INFO (arity n > 0: exactly n-1
 * arguments; n < 0: at least -n-1), so a short request gets Redis's own
 * error from us and a long one goes to the backend, which answers it the
 * way Redis does (usually a syntax error). The exceptions are the commands
 * we answer ourselves: PING takes at most one argument as Redis enforces,
 * AUTH at most two, QUIT any (Redis answers "QUIT x" with +OK too).
 *
 * Key specs follow Redis's (first key, step): a command's key is argument
 * first_key; a split command's keys are every key_step-th argument from
 * there; EVAL's keys follow its numkeys argument; XREAD's and XREADGROUP's
 * follow the STREAMS token (routed by the first, as twemproxy routes every
 * multi-key command it does not split; hash tags keep them together). A
 * command without a key routes by the literal key "placeholder", as
 * twemproxy does.
 *
 * Sorted by name: redis_cmd_lookup is a binary search over the names,
 * zero-padded and compared a word at a time against the request's name
 * lower-cased into a stack buffer (no allocation).
 */
#include "proto_redis.h"

#include <endian.h>
#include <string.h>

#include "msg.h"
#include "util.h"

#define REDIS_ANY (-1)
// clang-format off
#define KEY(name, min, max) { name, min, max, REDIS_ROUTE_KEY, 1, 0, 0, 0, 0, 0 }
#define NOKEY(name, min, max) { name, min, max, REDIS_ROUTE_KEY, 0, 0, 0, 0, 0, 0 }
#define EVAL(name) { name, 2, REDIS_ANY, REDIS_ROUTE_KEY, 0, 0, 2, 0, 0, 0 }
#define SPLIT(name, min, max, step, merge) \
    { name, min, max, REDIS_ROUTE_SPLIT, 1, step, 0, merge, 0, 0 }
#define LOCAL(name, min, max, handler, flags) \
    { name, min, max, REDIS_ROUTE_LOCAL, 0, 0, 0, 0, handler, flags }
/* the key is argument n (XINFO STREAM key, XGROUP CREATE key ...) */
#define KEY_AT(name, n, min, max) { name, min, max, REDIS_ROUTE_KEY, n, 0, 0, 0, 0, 0 }
/* the key is the first after the STREAMS token; BLOCK is refused */
#define STREAMS(name, min) { name, min, REDIS_ANY, REDIS_ROUTE_KEY, 0, 0, 0, 0, 0, REDIS_CMD_STREAMS }
#define UNSUPPORTED(name, min, max) { name, min, max, REDIS_ROUTE_UNSUPPORTED, 0, 0, 0, 0, 0, 0 }
#define FANOUT(name, min, max, merge) { name, min, max, REDIS_ROUTE_FANOUT, 0, 0, 0, merge, 0, 0 }
// clang-format on

static const struct redis_cmd redis_cmds[] = {
    KEY("append", 2, 2),
    LOCAL("auth", 1, 2, REDIS_LOCAL_AUTH, REDIS_CMD_NOAUTH),
    KEY("bitcount", 1, REDIS_ANY),
    KEY("bitfield", 1, REDIS_ANY),
    KEY("bitpos", 2, REDIS_ANY),
    /* CLIENT SETNAME GETNAME ID SETINFO are answered per client conn; the
     * other subcommands are refused as unsupported. */
    LOCAL("client", 1, REDIS_ANY, REDIS_LOCAL_CLIENT, 0),
    NOKEY("command", 0, REDIS_ANY),
    KEY("copy", 2, REDIS_ANY),
    FANOUT("dbsize", 0, 0, MSG_MERGE_SUM),
    KEY("decr", 1, 1),
    KEY("decrby", 2, 2),
    SPLIT("del", 1, REDIS_ANY, 1, MSG_MERGE_SUM),
    KEY("dump", 1, 1),
    LOCAL("echo", 1, 1, REDIS_LOCAL_ECHO, 0),
    EVAL("eval"),
    EVAL("evalsha"),
    SPLIT("exists", 1, REDIS_ANY, 1, MSG_MERGE_SUM),
    KEY("expire", 2, REDIS_ANY),
    KEY("expireat", 2, REDIS_ANY),
    FANOUT("flushall", 0, 1, MSG_MERGE_ALL_OK),
    FANOUT("flushdb", 0, 1, MSG_MERGE_ALL_OK),
    KEY("geoadd", 4, REDIS_ANY),
    KEY("geodist", 3, REDIS_ANY),
    KEY("geohash", 1, REDIS_ANY),
    KEY("geopos", 1, REDIS_ANY),
    KEY("georadius", 5, REDIS_ANY),
    KEY("georadiusbymember", 4, REDIS_ANY),
    KEY("geosearch", 6, REDIS_ANY),
    KEY("geosearchstore", 7, REDIS_ANY),
    KEY("get", 1, 1),
    KEY("getbit", 2, 2),
    KEY("getdel", 1, 1),
    KEY("getex", 1, REDIS_ANY),
    KEY("getrange", 3, 3),
    KEY("getset", 2, 2),
    KEY("hdel", 2, REDIS_ANY),
    /* HELLO 2 (or none) is answered as Redis 7 answers it in RESP2; HELLO 3
     * gets -NOPROTO until RESP3 is spoken. Its AUTH option is checked here,
     * so it is allowed before authentication. */
    LOCAL("hello", 0, REDIS_ANY, REDIS_LOCAL_HELLO, REDIS_CMD_NOAUTH),
    KEY("hexists", 2, 2),
    KEY("hget", 2, 2),
    KEY("hgetall", 1, 1),
    KEY("hincrby", 3, 3),
    KEY("hincrbyfloat", 3, 3),
    KEY("hkeys", 1, 1),
    KEY("hlen", 1, 1),
    KEY("hmget", 2, REDIS_ANY),
    KEY("hmset", 3, REDIS_ANY),
    KEY("hrandfield", 1, REDIS_ANY),
    KEY("hscan", 2, REDIS_ANY),
    KEY("hset", 3, REDIS_ANY),
    KEY("hsetnx", 3, 3),
    KEY("hstrlen", 2, 2),
    KEY("hvals", 1, 1),
    KEY("incr", 1, 1),
    KEY("incrby", 2, 2),
    KEY("incrbyfloat", 2, 2),
    /* INFO: the proxy's own sections and the servers' keyspace summed */
    FANOUT("info", 0, REDIS_ANY, MSG_MERGE_INFO),
    FANOUT("keys", 1, 1, MSG_MERGE_CONCAT),
    KEY("lindex", 2, 2),
    KEY("linsert", 4, 4),
    KEY("llen", 1, 1),
    KEY("lmove", 4, 4),
    NOKEY("lolwut", 0, REDIS_ANY),
    KEY("lpop", 1, REDIS_ANY),
    KEY("lpos", 2, REDIS_ANY),
    KEY("lpush", 2, REDIS_ANY),
    KEY("lpushx", 2, REDIS_ANY),
    KEY("lrange", 3, 3),
    KEY("lrem", 3, 3),
    KEY("lset", 3, 3),
    KEY("ltrim", 3, 3),
    SPLIT("mget", 1, REDIS_ANY, 1, MSG_MERGE_ARRAY),
    /* MOVE would take a key out of the ring's view; its name is known so the
     * reply can say it is unsupported rather than unknown. */
    UNSUPPORTED("move", 2, 2),
    SPLIT("mset", 2, REDIS_ANY, 2, MSG_MERGE_ALL_OK),
    KEY("persist", 1, 1),
    KEY("pexpire", 2, REDIS_ANY),
    KEY("pexpireat", 2, REDIS_ANY),
    KEY("pfadd", 1, REDIS_ANY),
    KEY("pfcount", 1, REDIS_ANY),
    KEY("pfmerge", 1, REDIS_ANY),
    LOCAL("ping", 0, 1, REDIS_LOCAL_PING, 0),
    KEY("psetex", 3, 3),
    KEY("pttl", 1, 1),
    LOCAL("quit", 0, REDIS_ANY, REDIS_LOCAL_QUIT, REDIS_CMD_NOAUTH | REDIS_CMD_CLOSES),
    FANOUT("randomkey", 0, 0, MSG_MERGE_RANDOM),
    KEY("restore", 3, REDIS_ANY),
    KEY("rpop", 1, REDIS_ANY),
    KEY("rpoplpush", 2, 2),
    KEY("rpush", 2, REDIS_ANY),
    KEY("rpushx", 2, REDIS_ANY),
    KEY("sadd", 2, REDIS_ANY),
    /* SCAN walks the servers one after the other; the cursor a client sees
     * holds the server's index and that server's cursor (protocols.md). */
    FANOUT("scan", 1, REDIS_ANY, MSG_MERGE_SCAN),
    KEY("scard", 1, 1),
    /* SCRIPT LOAD, EXISTS and FLUSH go to every server (redis_script_sub) */
    FANOUT("script", 1, REDIS_ANY, MSG_MERGE_NONE),
    KEY("sdiff", 1, REDIS_ANY),
    KEY("sdiffstore", 2, REDIS_ANY),
    LOCAL("select", 1, 1, REDIS_LOCAL_SELECT, 0),
    KEY("set", 2, REDIS_ANY),
    KEY("setbit", 3, 3),
    KEY("setex", 3, 3),
    KEY("setnx", 2, 2),
    KEY("setrange", 3, 3),
    KEY("sinter", 1, REDIS_ANY),
    KEY("sinterstore", 2, REDIS_ANY),
    KEY("sismember", 2, 2),
    KEY("smembers", 1, 1),
    KEY("smismember", 2, REDIS_ANY),
    KEY("smove", 3, 3),
    KEY("sort", 1, REDIS_ANY),
    KEY("spop", 1, REDIS_ANY),
    KEY("srandmember", 1, REDIS_ANY),
    KEY("srem", 2, REDIS_ANY),
    KEY("sscan", 2, REDIS_ANY),
    KEY("strlen", 1, 1),
    KEY("sunion", 1, REDIS_ANY),
    KEY("sunionstore", 2, REDIS_ANY),
    SPLIT("touch", 1, REDIS_ANY, 1, MSG_MERGE_SUM),
    KEY("ttl", 1, 1),
    KEY("type", 1, 1),
    SPLIT("unlink", 1, REDIS_ANY, 1, MSG_MERGE_SUM),
    KEY("xack", 3, REDIS_ANY),
    KEY("xadd", 4, REDIS_ANY),
    KEY("xautoclaim", 5, REDIS_ANY),
    KEY("xclaim", 5, REDIS_ANY),
    KEY("xdel", 2, REDIS_ANY),
    KEY_AT("xgroup", 2, 3, REDIS_ANY),
    KEY_AT("xinfo", 2, 2, REDIS_ANY),
    KEY("xlen", 1, 1),
    KEY("xpending", 2, REDIS_ANY),
    KEY("xrange", 3, REDIS_ANY),
    STREAMS("xread", 3),
    STREAMS("xreadgroup", 6),
    KEY("xrevrange", 3, REDIS_ANY),
    KEY("xsetid", 2, REDIS_ANY),
    KEY("xtrim", 3, REDIS_ANY),
    KEY("zadd", 3, REDIS_ANY),
    KEY("zcard", 1, 1),
    KEY("zcount", 3, 3),
    KEY("zdiff", 2, REDIS_ANY),
    KEY("zdiffstore", 3, REDIS_ANY),
    KEY("zincrby", 3, 3),
    KEY("zinter", 2, REDIS_ANY),
    KEY("zinterstore", 3, REDIS_ANY),
    KEY("zlexcount", 3, 3),
    KEY("zmscore", 2, REDIS_ANY),
    KEY("zpopmax", 1, REDIS_ANY),
    KEY("zpopmin", 1, REDIS_ANY),
    KEY("zrandmember", 1, REDIS_ANY),
    KEY("zrange", 3, REDIS_ANY),
    KEY("zrangebylex", 3, REDIS_ANY),
    KEY("zrangebyscore", 3, REDIS_ANY),
    KEY("zrangestore", 4, REDIS_ANY),
    KEY("zrank", 2, 2),
    KEY("zrem", 2, REDIS_ANY),
    KEY("zremrangebylex", 3, 3),
    KEY("zremrangebyrank", 3, 3),
    KEY("zremrangebyscore", 3, 3),
    KEY("zrevrange", 3, REDIS_ANY),
    KEY("zrevrangebylex", 3, REDIS_ANY),
    KEY("zrevrangebyscore", 3, REDIS_ANY),
    KEY("zrevrank", 2, 2),
    KEY("zscan", 2, REDIS_ANY),
    KEY("zscore", 2, 2),
    KEY("zunion", 2, REDIS_ANY),
    KEY("zunionstore", 3, REDIS_ANY),
};

#undef KEY
#undef NOKEY
#undef EVAL
#undef SPLIT
#undef LOCAL
#undef UNSUPPORTED
#undef FANOUT

/* SCRIPT's subcommands that go to every server, and how their replies merge. */
static const struct {
    const char *name;
    int min_args, max_args; /* after the subcommand */
    uint8_t merge;
} redis_script_subs[] = {
    { "exists", 1, REDIS_ANY, MSG_MERGE_AND },
    { "flush", 0, 1, MSG_MERGE_ALL_OK },
    { "load", 1, 1, MSG_MERGE_SAME },
};

static int
redis_cmd_cmp(const uint8_t *name, size_t len, const char *lit)
{
    size_t i;

    for (i = 0; i < len; i++) {
        uint8_t a = name[i], b = (uint8_t)lit[i];

        if (a >= 'A' && a <= 'Z') {
            a = (uint8_t)(a - 'A' + 'a');
        }
        if (b == '\0' || a != b) {
            /* the table's name ending first makes it the smaller one */
            return b == '\0' ? 1 : (int)a - (int)b;
        }
    }
    return lit[i] == '\0' ? 0 : -1;
}

/* 8 bytes of a zero-padded name as a number that orders as the bytes do. */
static inline uint64_t
redis_cmd_word(const void *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return be64toh(w);
}

const struct redis_cmd *
redis_cmd_lookup(const uint8_t *name, size_t len)
{
    uint8_t low[REDIS_CMD_ROW_NAME] = { 0 };
    size_t lo = 0, hi = ARRAY_SIZE(redis_cmds);

    if (len == 0 || len > REDIS_CMD_NAME_MAX) {
        return NULL; /* no command's name is that long */
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '\0') {
            return NULL; /* it would read as the padding */
        }
        low[i] = name[i] >= 'A' && name[i] <= 'Z' ? (uint8_t)(name[i] - 'A' + 'a') : name[i];
    }
    /* Both names zero-padded: a word at a time, most steps decided by the
       first word. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *t = redis_cmds[mid].name;
        int c = 0;

        for (size_t w = 0; w < sizeof(low); w += 8) {
            uint64_t a = redis_cmd_word(low + w), b = redis_cmd_word(t + w);
            if (a != b) {
                c = a < b ? -1 : 1;
                break;
            }
        }
        if (c == 0) {
            return &redis_cmds[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

int
redis_script_sub(const uint8_t *sub, size_t len, int *min_args, int *max_args)
{
    for (size_t i = 0; i < ARRAY_SIZE(redis_script_subs); i++) {
        if (redis_cmd_cmp(sub, len, redis_script_subs[i].name) == 0) {
            *min_args = redis_script_subs[i].min_args;
            *max_args = redis_script_subs[i].max_args;
            return redis_script_subs[i].merge;
        }
    }
    return MSG_MERGE_NONE;
}

const struct redis_cmd *
redis_cmd_table(size_t *n)
{
    *n = ARRAY_SIZE(redis_cmds);
    return redis_cmds;
}

uint16_t
redis_cmd_index(const struct redis_cmd *cmd)
{
    return (uint16_t)(cmd - redis_cmds);
}

const struct redis_cmd *
redis_cmd_at(uint16_t index)
{
    return index < ARRAY_SIZE(redis_cmds) ? &redis_cmds[index] : NULL;
}

bool
redis_cmd_streams(const struct redis_cmd *cmd, uint32_t arg)
{
    if (cmd == NULL) {
        return true;
    }
    switch (cmd->route) {
    case REDIS_ROUTE_LOCAL:
    case REDIS_ROUTE_FANOUT: /* every fragment copies the arguments */
        return false;
    case REDIS_ROUTE_KEY:
        /* numkeys commands: where the keys are depends on a later argument */
        return cmd->numkeys_arg == 0 && !(cmd->flags & REDIS_CMD_STREAMS) && arg != cmd->first_key;
    case REDIS_ROUTE_SPLIT:
        return arg < cmd->first_key || (arg - cmd->first_key) % MAX(cmd->key_step, 1) != 0;
    default:
        return true;
    }
}
