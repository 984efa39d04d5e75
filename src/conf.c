/*
 * conf: loads the INI file into an immutable struct conf, or explains every
 * problem in it as "FILE:LINE: message".
 *
 * The work goes in four passes over one text:
 *   1. conf_scan reads the lines itself (line numbers, overlong and indented
 *      lines, headers) and writes a cleaned text that inih cannot misread;
 *   2. every section header is classified ([cachemux], [pool NAME], or an
 *      error), and each gets a struct sect holding its values, defaults
 *      already applied, so that empty sections and duplicates are known
 *      before any key arrives (inih calls the handler only for keys);
 *   3. inih splits each cleaned key line; the handler matches the call to the
 *      scan's entry for that line (the nth call is the nth entry), which gives
 *      the line number, then checks the key against a table and stores it;
 *   4. whole-pool rules: listen and server present, redis_auth only on redis
 *      pools, distinct server identities, distinct listen addresses.
 * Problems are collected with their line, never stopping at the first, and
 * handed to the caller sorted by line. Only a clean file yields a struct conf.
 *
 * Values in duplicate sections are still checked (so a second run does not
 * find new errors) but then dropped. Keys in a section that is not valid are
 * ignored: the header already has its message.
 *
 * Ownership: the struct conf and every string in it belong to the caller of
 * conf_load, released with conf_free. Nothing here is global; the module is
 * called from one thread at a time (the supervisor's) and never touches
 * inih's run-time knobs, which the cleaned text makes irrelevant.
 */
#include "conf.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_scan.h"
#include "log.h"
#include "util.h"

#define MAX_INT32 2147483647u
#define MAX_REQUEST_SIZE (1ULL << 40)
#define MIN_REPLY_SIZE 1024 /* room for any status or error line a server sends */
#define MAX_FILE_SIZE (64u << 20)
#define SHOW_MAX 64 /* bytes of a value quoted in a message */
#define MAX_KEYS 24

enum key_kind {
    KEY_BOOL,
    KEY_PROTO,
    KEY_U32,
    KEY_U64,
    KEY_INT,
    KEY_WORKERS,
    KEY_STR,
    KEY_HASH,
    KEY_HASH_TAG,
    KEY_DIST,
    KEY_LISTEN,
    KEY_SERVER,
    KEY_STATS,
    KEY_METRICS,
};

struct key_def {
    const char *name;
    enum key_kind kind;
    size_t off;        /* field in struct conf or struct conf_pool */
    uint64_t min, max; /* numbers */
    const char *dflt;  /* parsed like a value from the file; NULL: none */
};

/* A default of conf.h, written as the file would give it. */
#define NUM_STR_(x) #x
#define NUM_STR(x) NUM_STR_(x)

#define G(f) offsetof(struct conf, f)
#define P(f) offsetof(struct conf_pool, f)

static const struct key_def global_keys[] = {
    { "workers", KEY_WORKERS, G(workers), 1, CONF_MAX_WORKERS, "auto" },
    { "stats_listen", KEY_STATS, 0, 0, 0, "127.0.0.1:" NUM_STR(CONF_DEFAULT_STATS_PORT) },
    { "metrics_listen", KEY_METRICS, G(metrics_listen), 0, 0, NULL },
    { "log_file", KEY_STR, G(log_file), 0, 0, NULL },
    { "log_level", KEY_INT, G(log_level), 0, LOG_LEVEL_MAX, NULL },
    { "pid_file", KEY_STR, G(pid_file), 0, 0, NULL },
    { "mbuf_size", KEY_U32, G(mbuf_size), CONF_MIN_MBUF_SIZE, CONF_MAX_MBUF_SIZE,
      NUM_STR(CONF_DEFAULT_MBUF_SIZE) },
    { "max_request_size", KEY_U64, G(max_request_size), 1, MAX_REQUEST_SIZE,
      NUM_STR(CONF_DEFAULT_MAX_REQUEST_SIZE) },
    /* No default: unset means the larger of 64 MiB and max_request_size. */
    { "client_output_limit", KEY_U64, G(client_output_limit), 1, MAX_REQUEST_SIZE, NULL },
    { "max_reply_size", KEY_U64, G(max_reply_size), MIN_REPLY_SIZE, MAX_REQUEST_SIZE,
      NUM_STR(CONF_DEFAULT_MAX_REPLY_SIZE) },
    { "shutdown_timeout", KEY_U64, G(shutdown_timeout_ms), 0, MAX_INT32,
      NUM_STR(CONF_DEFAULT_SHUTDOWN_TIMEOUT) },
};

static const struct key_def pool_keys[] = {
    { "listen", KEY_LISTEN, 0, 0, 0, NULL }, /* first: conf_check_pool looks at seen[0] */
    { "hash", KEY_HASH, P(key_rule.hash), 0, 0, "fnv1a_64" },
    { "hash_tag", KEY_HASH_TAG, 0, 0, 0, NULL },
    { "distribution", KEY_DIST, P(dist), 0, 0, "ketama" },
    { "timeout", KEY_U64, P(timeout_ms), 0, MAX_INT32, "0" },
    { "backlog", KEY_U32, P(backlog), 0, MAX_INT32, "512" },
    { "preconnect", KEY_BOOL, P(preconnect), 0, 0, "false" },
    { "redis", KEY_PROTO, P(proto), 0, 0, "false" },
    { "redis_auth", KEY_STR, P(redis_auth), 0, 0, NULL },
    { "redis_db", KEY_U32, P(redis_db), 0, MAX_INT32, "0" },
    { "server_connections", KEY_U32, P(server_connections), 1, MAX_INT32, "1" },
    { "auto_eject_hosts", KEY_BOOL, P(auto_eject_hosts), 0, 0, "false" },
    { "server_retry_timeout", KEY_U64, P(server_retry_timeout_ms), 0, MAX_INT32, "30000" },
    { "server_failure_limit", KEY_U32, P(server_failure_limit), 0, MAX_INT32, "2" },
    { "client_connections", KEY_U32, P(client_connections), 0, MAX_INT32, "0" },
    { "tcpkeepalive", KEY_BOOL, P(tcpkeepalive), 0, 0, "false" },
    { "server", KEY_SERVER, 0, 0, 0, NULL }, /* the one repeatable key */
};

#undef G
#undef P

enum sect_kind { SECT_IGNORED, SECT_GLOBAL, SECT_POOL };

/* One header of the file and what was read under it. */
struct sect {
    enum sect_kind kind;
    bool dup; /* repeated header: checked, then dropped */
    int line;
    char show[SHOW_MAX + 8]; /* printable header text for messages */
    struct conf scratch;     /* a duplicate [cachemux]'s values */
    struct conf_pool pool;   /* SECT_POOL */
    size_t servers_cap;
    int listen_line; /* of a valid listen, for collisions */
    int auth_line;
    int server_lines;   /* "server =" lines, valid or not */
    int seen[MAX_KEYS]; /* line of each single-valued key, 0: unset */
};

struct diag {
    int line;
    size_t seq; /* keeps the sort stable */
    char *msg;
};

struct parse {
    const char *path;
    struct conf *conf;
    struct conf_scan scan;
    struct sect *sects; /* one per scan section */
    size_t cursor;      /* next scan entry the handler should see */
    bool mismatch;
    bool oom;
    struct diag *diags;
    size_t ndiags;
    size_t diags_cap;
};

_Static_assert(ARRAY_SIZE(pool_keys) <= MAX_KEYS && ARRAY_SIZE(global_keys) <= MAX_KEYS,
               "sect.seen is too small");

static void conf_diag(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conf_diag(struct parse *p, int line, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* Bytes from the file end up here; keep the operator's terminal sane. */
    for (char *q = buf; *q != '\0'; q++) {
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f) {
            *q = '?';
        }
    }
    if (p->ndiags == p->diags_cap) {
        size_t cap = p->diags_cap ? p->diags_cap * 2 : 16;
        struct diag *d = realloc(p->diags, cap * sizeof(*d));
        if (d == NULL) {
            p->oom = true;
            return;
        }
        p->diags = d;
        p->diags_cap = cap;
    }
    char *m = strdup(buf);
    if (m == NULL) {
        p->oom = true;
        return;
    }
    p->diags[p->ndiags] = (struct diag){ .line = line, .seq = p->ndiags, .msg = m };
    p->ndiags++;
}

static char *
conf_strdup(struct parse *p, const char *s)
{
    char *d = strdup(s);

    if (d == NULL) {
        p->oom = true;
    }
    return d;
}

/* malloc'd printf, or NULL when out of memory. */
static char *conf_fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
conf_fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void
conf_show(char *dst, size_t dstlen, const char *s)
{
    conf_scan_printable(dst, dstlen, s, strlen(s), SHOW_MAX);
}

/* ---- values ---- */

static int
conf_set_number(const struct key_def *k, void *field, const char *v, char *err, size_t errlen)
{
    uint64_t n;

    if (util_parse_u64_str(v, k->max, &n) < 0 || n < k->min) {
        snprintf(err, errlen, "expected a number %llu..%llu", (unsigned long long)k->min,
                 (unsigned long long)k->max);
        return -1;
    }
    switch (k->kind) {
    case KEY_U32:
        *(uint32_t *)field = (uint32_t)n;
        break;
    case KEY_U64:
        *(uint64_t *)field = n;
        break;
    default:
        *(int *)field = (int)n;
        break;
    }
    return 0;
}

static int
conf_set_string(char **field, const char *v, char *err, size_t errlen)
{
    char *d;

    if (*v == '\0') {
        snprintf(err, errlen, "expected a non-empty value");
        return -1;
    }
    d = strdup(v);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(*field);
    *field = d;
    return 0;
}

static void
conf_names_list(char *err, size_t errlen, bool hash)
{
#define HASH_STR(e, s) " " s
    static const char hashes[] = HASH_LIST(HASH_STR);
#undef HASH_STR
    size_t n;

    if (hash) {
        snprintf(err, errlen, "expected one of:%s", hashes);
        return;
    }
    n = (size_t)snprintf(err, errlen, "expected one of:");
    for (int i = 0; i < DIST_COUNT && n < errlen; i++) {
        n += (size_t)snprintf(err + n, errlen - n, " %s", dist_name((enum dist_type)i));
    }
}

/*
 * Store value v of key k into sect s. Returns 0, or -1 with the reason in
 * err. line is where the value came from (0 for a default).
 */
static int
conf_set_value(struct parse *p, struct sect *s, const struct key_def *k, const char *v, int line,
               char *err, size_t errlen)
{
    struct conf *c = s->dup || s->kind != SECT_GLOBAL ? &s->scratch : p->conf;
    struct conf_pool *pool = &s->pool;
    char *base = s->kind == SECT_POOL ? (char *)pool : (char *)c;
    void *field = base + k->off;
    struct conf_addr a;
    int i;

    switch (k->kind) {
    case KEY_BOOL:
    case KEY_PROTO:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            snprintf(err, errlen, "expected true or false");
            return -1;
        }
        if (k->kind == KEY_PROTO) {
            /* twemproxy's "redis: true" picks the protocol family */
            *(enum proto_id *)field = v[0] == 't' ? PROTO_REDIS : PROTO_MEMCACHED;
        } else {
            *(bool *)field = v[0] == 't';
        }
        return 0;
    case KEY_U32:
    case KEY_U64:
    case KEY_INT:
        return conf_set_number(k, field, v, err, errlen);
    case KEY_WORKERS:
        if (strcmp(v, "auto") == 0) {
            c->workers = 0;
            return 0;
        }
        if (conf_set_number(k, field, v, err, errlen) < 0) {
            snprintf(err, errlen, "expected auto or a number 1..%d", CONF_MAX_WORKERS);
            return -1;
        }
        return 0;
    case KEY_STR:
        return conf_set_string((char **)field, v, err, errlen);
    case KEY_HASH:
        if ((i = hash_from_name(v)) < 0) {
            conf_names_list(err, errlen, true);
            return -1;
        }
        pool->key_rule.hash = (enum hash_type)i;
        return 0;
    case KEY_DIST:
        if ((i = dist_from_name(v)) < 0) {
            conf_names_list(err, errlen, false);
            return -1;
        }
        pool->dist = (enum dist_type)i;
        return 0;
    case KEY_HASH_TAG:
        if (strlen(v) != 2) {
            snprintf(err, errlen, "expected exactly two characters, e.g. {}");
            return -1;
        }
        pool->key_rule.has_tag = true;
        pool->key_rule.tag[0] = v[0];
        pool->key_rule.tag[1] = v[1];
        return 0;
    case KEY_LISTEN: {
        char *str;
        if (conf_value_addr(v, true, &a, err, errlen) < 0) {
            return -1;
        }
        if ((str = strdup(v)) == NULL) {
            free(a.host);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(pool->listen.host);
        free(pool->listen_str);
        pool->listen = a;
        pool->listen_str = str;
        s->listen_line = line;
        return 0;
    }
    case KEY_SERVER: {
        struct conf_server srv;
        if (conf_value_server(v, &srv, err, errlen) < 0) {
            return -1;
        }
        if (pool->nservers == s->servers_cap) {
            size_t cap = s->servers_cap ? s->servers_cap * 2 : 8;
            struct conf_server *arr = realloc(pool->servers, cap * sizeof(*arr));
            if (arr == NULL) {
                free(srv.ident);
                free(srv.name);
                free(srv.addr.host);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            pool->servers = arr;
            s->servers_cap = cap;
        }
        srv.line = line;
        pool->servers[pool->nservers++] = srv;
        return 0;
    }
    case KEY_STATS:
    case KEY_METRICS:
        if (conf_value_addr(v, false, &a, err, errlen) < 0) {
            return -1;
        }
        if (a.is_unix) {
            free(a.host);
            snprintf(err, errlen, "expected host:port, not a unix socket");
            return -1;
        }
        if (k->kind == KEY_METRICS) {
            free(a.host);
            return conf_set_string(&c->metrics_listen, v, err, errlen);
        }
        free(c->stats_host);
        c->stats_host = a.host;
        c->stats_port = a.port;
        return 0;
    }
    return -1;
}

static void
conf_apply_defaults(struct parse *p, struct sect *s, const struct key_def *keys, size_t n)
{
    char err[256];

    for (size_t i = 0; i < n; i++) {
        if (keys[i].dflt != NULL &&
            conf_set_value(p, s, &keys[i], keys[i].dflt, 0, err, sizeof(err)) < 0) {
            /* Only a broken table or malloc failure gets here. */
            p->oom = true;
        }
    }
}

static void
conf_pool_clear(struct conf_pool *pool)
{
    free(pool->name);
    free(pool->listen.host);
    free(pool->listen_str);
    free(pool->redis_auth);
    for (size_t i = 0; i < pool->nservers; i++) {
        free(pool->servers[i].ident);
        free(pool->servers[i].name);
        free(pool->servers[i].addr.host);
    }
    free(pool->servers);
    memset(pool, 0, sizeof(*pool));
}

static void
conf_clear(struct conf *c)
{
    free(c->path);
    free(c->stats_host);
    free(c->metrics_listen);
    free(c->log_file);
    free(c->pid_file);
    for (size_t i = 0; i < c->npools; i++) {
        conf_pool_clear(&c->pools[i]);
    }
    free(c->pools);
    memset(c, 0, sizeof(*c));
}

/* ---- sections and keys ---- */

/* Classify every header before inih runs: inih reports keys, not sections. */
static void
conf_setup_sections(struct parse *p)
{
    const struct conf_scan *sc = &p->scan;
    int global_line = 0;

    for (size_t i = 0; i < sc->nsections; i++) {
        const struct conf_scan_section *h = &sc->sections[i];
        struct sect *s = &p->sects[i];
        const char *name = h->name;

        s->line = h->line;
        conf_show(s->show, sizeof(s->show), name);
        s->scratch.log_level = -1;
        if (h->bad) {
            continue; /* the scan has reported it */
        }
        if (strcmp(name, "cachemux") == 0) {
            s->kind = SECT_GLOBAL;
            if (global_line != 0) {
                conf_diag(p, h->line, "duplicate section [cachemux] (first at line %d)",
                          global_line);
                s->dup = true;
                conf_apply_defaults(p, s, global_keys, ARRAY_SIZE(global_keys));
            }
            global_line = global_line ? global_line : h->line;
            continue;
        }
        if (strncmp(name, "pool", 4) != 0 || (name[4] != ' ' && name[4] != '\0')) {
            conf_diag(p, h->line, "unknown section [%s] (expected [cachemux] or [pool NAME])",
                      s->show);
            continue;
        }
        const char *pname = name[4] == ' ' ? name + 5 : name + 4;
        bool ok = *pname != '\0';
        for (const char *q = pname; *q != '\0'; q++) {
            ok = ok && conf_value_name_char(*q);
        }
        if (!ok) {
            conf_diag(p, h->line,
                      "invalid pool name in [%s] (expected [pool NAME]; a name has "
                      "no spaces, quotes or backslashes)",
                      s->show);
            continue;
        }
        s->kind = SECT_POOL;
        for (size_t j = 0; j < i; j++) {
            const struct sect *o = &p->sects[j];
            if (o->kind == SECT_POOL && !o->dup && o->pool.name != NULL &&
                strcmp(o->pool.name, pname) == 0) {
                conf_diag(p, h->line, "duplicate section [pool %s] (first at line %d)",
                          o->pool.name, o->line);
                s->dup = true;
                break;
            }
        }
        s->pool.name = conf_strdup(p, pname);
        s->pool.line = h->line;
        conf_apply_defaults(p, s, pool_keys, ARRAY_SIZE(pool_keys));
    }
}

/* Strip one pair of matching quotes, as twemproxy's YAML reader does. */
static void
conf_unquote(char *dst, size_t dstlen, const char *v)
{
    size_t n = strlen(v);

    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v++;
        n -= 2;
    }
    if (n >= dstlen) {
        n = dstlen - 1; /* cannot happen: lines are at most CONF_MAX_LINE */
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void
conf_handle_key(struct parse *p, const struct conf_scan_entry *e, const char *raw)
{
    char v[CONF_MAX_LINE + 1], shown[SHOW_MAX + 8], key[SHOW_MAX + 8], err[256];
    const struct key_def *keys;
    size_t nkeys, i;
    struct sect *s;

    conf_show(key, sizeof(key), e->key);
    if (e->section < 0) {
        conf_diag(p, e->line,
                  "key '%s' is outside any section (expected under [cachemux] or "
                  "[pool NAME])",
                  key);
        return;
    }
    s = &p->sects[e->section];
    if (s->kind == SECT_IGNORED) {
        return;
    }
    keys = s->kind == SECT_GLOBAL ? global_keys : pool_keys;
    nkeys = s->kind == SECT_GLOBAL ? ARRAY_SIZE(global_keys) : ARRAY_SIZE(pool_keys);
    for (i = 0; i < nkeys && strcmp(keys[i].name, e->key) != 0; i++) {
    }
    if (i == nkeys) {
        conf_diag(p, e->line, "unknown key '%s' in [%s]", key, s->show);
        return;
    }
    if (keys[i].kind != KEY_SERVER) {
        if (s->seen[i] != 0) {
            conf_diag(p, e->line, "duplicate key '%s' in [%s] (first at line %d)", key, s->show,
                      s->seen[i]);
            return;
        }
        s->seen[i] = e->line;
    }
    if (keys[i].kind == KEY_SERVER) {
        s->server_lines++;
    }
    conf_unquote(v, sizeof(v), raw);
    if (conf_set_value(p, s, &keys[i], v, e->line, err, sizeof(err)) < 0) {
        conf_show(shown, sizeof(shown), v);
        conf_diag(p, e->line, "invalid value '%s' for '%s' (%s)", shown, key, err);
        return;
    }
    if (strcmp(keys[i].name, "redis_auth") == 0) {
        s->auth_line = e->line;
    }
}

/*
 * inih's handler. The cleaned text gives inih exactly the scan's key lines
 * in order, so call n is entry n; anything else means the two readers
 * disagree, which is reported rather than guessed around.
 */
static int
conf_on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    const struct conf_scan_entry *e;

    if (p->cursor >= p->scan.nentries) {
        p->mismatch = true;
        return 1;
    }
    e = &p->scan.entries[p->cursor];
    if (conf_scan_section_index(&p->scan, section) != e->section || strcmp(name, e->key) != 0) {
        p->mismatch = true;
        return 1;
    }
    p->cursor++;
    conf_handle_key(p, e, value);
    return 1;
}

/* ---- whole-pool rules ---- */

static int
conf_server_cmp(const void *a, const void *b)
{
    const struct conf_server *x = a, *y = b;
    int c = dist_ident_cmp(x->ident, strlen(x->ident), y->ident, strlen(y->ident));

    return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static void
conf_check_pool(struct parse *p, struct sect *s)
{
    struct conf_pool *pool = &s->pool;
    char id[SHOW_MAX + 8];

    /* A listen or server line that was there but bad has its own message. */
    if (s->seen[0] == 0) {
        conf_diag(p, s->line, "missing 'listen' in [pool %s]", pool->name);
    }
    if (s->server_lines == 0) {
        conf_diag(p, s->line, "missing 'server' in [pool %s]", pool->name);
    }
    if (pool->redis_auth != NULL && pool->proto != PROTO_REDIS) {
        conf_diag(p, s->auth_line,
                  "'redis_auth' is set but [pool %s] is not a redis pool "
                  "(needs redis = true)",
                  pool->name);
    }
    /* Sorting by (identity, line) puts each first occurrence ahead of its twins. */
    if (pool->nservers > 1) {
        qsort(pool->servers, pool->nservers, sizeof(*pool->servers), conf_server_cmp);
    }
    for (size_t i = 1, first = 0; i < pool->nservers; i++) {
        if (strcmp(pool->servers[i].ident, pool->servers[first].ident) != 0) {
            first = i;
            continue;
        }
        conf_show(id, sizeof(id), pool->servers[i].ident);
        conf_diag(p, pool->servers[i].line,
                  "duplicate server identity '%s' for 'server' in "
                  "[pool %s] (first at line %d)",
                  id, pool->name, pool->servers[first].line);
    }
}

static bool
conf_same_listen(const struct conf_addr *a, const struct conf_addr *b)
{
    if (a->is_unix || b->is_unix) {
        return a->is_unix == b->is_unix && strcmp(a->host, b->host) == 0;
    }
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

static void
conf_check_pools(struct parse *p)
{
    size_t npools = 0;

    for (size_t i = 0; i < p->scan.nsections; i++) {
        struct sect *s = &p->sects[i];
        if (s->kind != SECT_POOL || s->dup) {
            continue;
        }
        npools++;
        conf_check_pool(p, s);
        if (s->listen_line == 0) {
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            struct sect *o = &p->sects[j];
            if (o->kind == SECT_POOL && !o->dup && o->listen_line != 0 &&
                conf_same_listen(&o->pool.listen, &s->pool.listen)) {
                char l[SHOW_MAX + 8];
                conf_show(l, sizeof(l), s->pool.listen_str);
                conf_diag(p, s->listen_line,
                          "listen '%s' in [pool %s] is already used by "
                          "[pool %s] (line %d)",
                          l, s->pool.name, o->pool.name, o->listen_line);
                break;
            }
        }
    }
    if (npools == 0) {
        conf_diag(p, 0, "no pools defined (add a [pool NAME] section)");
    }
}

/* client_output_limit must let one largest request's reply through. */
static void
conf_check_global(struct parse *p)
{
    struct conf *c = p->conf;
    int line = 0;

    for (size_t i = 0; i < p->scan.nsections; i++) {
        const struct sect *s = &p->sects[i];
        if (s->kind == SECT_GLOBAL && !s->dup) {
            for (size_t k = 0; k < ARRAY_SIZE(global_keys); k++) {
                if (strcmp(global_keys[k].name, "client_output_limit") == 0) {
                    line = s->seen[k];
                }
            }
        }
    }
    if (c->client_output_limit == 0) {
        c->client_output_limit = MAX(CONF_DEFAULT_CLIENT_OUTPUT_LIMIT, c->max_request_size);
    } else if (c->client_output_limit < c->max_request_size) {
        conf_diag(p, line,
                  "invalid value '%llu' for 'client_output_limit' (must be at least "
                  "max_request_size, %llu)",
                  (unsigned long long)c->client_output_limit,
                  (unsigned long long)c->max_request_size);
    }
}

/* ---- assembly ---- */

static int
conf_pool_cmp(const void *a, const void *b)
{
    const struct conf_pool *x = a, *y = b;
    size_t xl = strlen(x->name), yl = strlen(y->name);

    if (xl != yl) {
        return xl < yl ? -1 : 1;
    }
    return memcmp(x->name, y->name, xl);
}

/* Move the valid pools into the result, in twemproxy's order. */
static int
conf_collect_pools(struct parse *p)
{
    struct conf *c = p->conf;
    size_t n = 0;

    for (size_t i = 0; i < p->scan.nsections; i++) {
        n += p->sects[i].kind == SECT_POOL && !p->sects[i].dup;
    }
    c->pools = calloc(n, sizeof(*c->pools));
    if (c->pools == NULL) {
        return -1;
    }
    for (size_t i = 0; i < p->scan.nsections; i++) {
        struct sect *s = &p->sects[i];
        if (s->kind == SECT_POOL && !s->dup) {
            c->pools[c->npools++] = s->pool;
            memset(&s->pool, 0, sizeof(s->pool));
        }
    }
    if (c->npools > 1) {
        qsort(c->pools, c->npools, sizeof(*c->pools), conf_pool_cmp);
    }
    return 0;
}

static int
conf_diag_cmp(const void *a, const void *b)
{
    const struct diag *x = a, *y = b;
    /* File-wide messages (line 0) come last, after the lines they sum up. */
    unsigned xl = x->line ? (unsigned)x->line : ~0u, yl = y->line ? (unsigned)y->line : ~0u;

    if (xl != yl) {
        return xl < yl ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static void
conf_parse_free(struct parse *p)
{
    for (size_t i = 0; p->sects != NULL && i < p->scan.nsections; i++) {
        conf_pool_clear(&p->sects[i].pool);
        conf_clear(&p->sects[i].scratch);
    }
    free(p->sects);
    for (size_t i = 0; i < p->ndiags; i++) {
        free(p->diags[i].msg);
    }
    free(p->diags);
    conf_scan_free(&p->scan);
}

static int
conf_load_text(const char *path, const char *text, size_t len, struct conf **out,
               struct conf_errors *errs)
{
    struct parse p = { .path = path };
    struct sect global = { .kind = SECT_GLOBAL };
    int rc = -1;

    *out = NULL;
    p.conf = calloc(1, sizeof(*p.conf));
    if (p.conf == NULL) {
        conf_errors_add(errs, path, 0, "out of memory");
        return -1;
    }
    p.conf->log_level = -1;
    p.conf->path = conf_strdup(&p, path);
    conf_apply_defaults(&p, &global, global_keys, ARRAY_SIZE(global_keys));
    if (conf_scan_text(text, len, &p.scan) < 0) {
        p.oom = true;
        goto done;
    }
    for (size_t i = 0; i < p.scan.nissues; i++) {
        conf_diag(&p, p.scan.issues[i].line, "%s", p.scan.issues[i].msg);
    }
    p.sects = calloc(p.scan.nsections + 1, sizeof(*p.sects));
    if (p.sects == NULL) {
        p.oom = true;
        goto done;
    }
    conf_setup_sections(&p);
    int irc = ini_parse_string(p.scan.clean, conf_on_key, &p);
    if (irc < 0) {
        p.oom = true;
    }
    /* irc > 0: inih found a line it cannot parse, which the scan let through. */
    if (irc > 0 || p.mismatch || p.cursor != p.scan.nentries) {
        conf_diag(&p, 0,
                  "internal error: inih read the file differently from the line scan "
                  "(please report this file)");
    }
    conf_check_pools(&p);
    conf_check_global(&p);
    if (p.ndiags == 0 && !p.oom) {
        if (conf_collect_pools(&p) < 0) {
            p.oom = true;
        } else {
            *out = p.conf;
            p.conf = NULL;
            rc = 0;
        }
    }
done:
    if (p.oom) {
        conf_diag(&p, 0, "out of memory");
        if (p.ndiags == 0) {
            conf_errors_add(errs, path, 0, "out of memory");
        }
    }
    if (rc != 0) {
        if (p.ndiags > 1) {
            qsort(p.diags, p.ndiags, sizeof(*p.diags), conf_diag_cmp);
        }
        for (size_t i = 0; i < p.ndiags; i++) {
            conf_errors_add(errs, path, p.diags[i].line, "%s", p.diags[i].msg);
        }
    }
    conf_free(p.conf);
    conf_parse_free(&p);
    return rc;
}

/* ---- public ---- */

int
conf_load_string(const char *path, const char *text, struct conf **out, struct conf_errors *errs)
{
    return conf_load_text(path, text, strlen(text), out, errs);
}

int
conf_load(const char *path, struct conf **out, struct conf_errors *errs)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    if (f == NULL) {
        /* strerror: conf runs on the supervisor's thread only */
        conf_errors_add(errs, path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb = ncap <= MAX_FILE_SIZE + 4096 ? realloc(buf, ncap) : NULL;
            if (nb == NULL) {
                conf_errors_add(errs, path, 0, "%s",
                                ncap > MAX_FILE_SIZE + 4096 ? "file too large" : "out of memory");
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        conf_errors_add(errs, path, 0, "cannot read: %s", strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[len] = '\0';
    rc = conf_load_text(path, buf, len, out, errs);
    free(buf);
    return rc;
}

void
conf_free(struct conf *c)
{
    if (c != NULL) {
        conf_clear(c);
        free(c);
    }
}

void
conf_errors_add(struct conf_errors *errs, const char *path, int line, const char *fmt, ...)
{
    char msg[1024];
    char *full;
    va_list ap;

    if (errs == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    full = line > 0 ? conf_fmt_alloc("%s:%d: %s", path, line, msg)
                    : conf_fmt_alloc("%s: %s", path, msg);
    if (full == NULL) {
        return; /* out of memory: the caller still sees the failure code */
    }
    if (errs->n == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        char **m = realloc(errs->msgs, cap * sizeof(*m));
        if (m == NULL) {
            free(full);
            return;
        }
        errs->msgs = m;
        errs->cap = cap;
    }
    errs->msgs[errs->n++] = full;
}

void
conf_errors_free(struct conf_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->msgs[i]);
    }
    free(errs->msgs);
    memset(errs, 0, sizeof(*errs));
}

static bool
conf_str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
conf_server_same_addr(const struct conf_server *a, const struct conf_server *b)
{
    return a->addr.is_unix == b->addr.is_unix && a->addr.port == b->addr.port &&
           conf_str_eq(a->addr.host, b->addr.host);
}

bool
conf_pool_equal(const struct conf_pool *a, const struct conf_pool *b)
{
    if (!conf_str_eq(a->name, b->name) || !conf_str_eq(a->listen_str, b->listen_str) ||
        a->listen.perm != b->listen.perm || a->key_rule.hash != b->key_rule.hash ||
        a->key_rule.has_tag != b->key_rule.has_tag ||
        (a->key_rule.has_tag && memcmp(a->key_rule.tag, b->key_rule.tag, 2) != 0) ||
        a->dist != b->dist || a->timeout_ms != b->timeout_ms || a->backlog != b->backlog ||
        a->preconnect != b->preconnect || a->proto != b->proto ||
        !conf_str_eq(a->redis_auth, b->redis_auth) || a->redis_db != b->redis_db ||
        a->server_connections != b->server_connections ||
        a->auto_eject_hosts != b->auto_eject_hosts ||
        a->server_retry_timeout_ms != b->server_retry_timeout_ms ||
        a->server_failure_limit != b->server_failure_limit ||
        a->client_connections != b->client_connections || a->tcpkeepalive != b->tcpkeepalive ||
        a->nservers != b->nservers) {
        return false;
    }
    for (size_t i = 0; i < a->nservers; i++) {
        const struct conf_server *x = &a->servers[i], *y = &b->servers[i];
        if (strcmp(x->ident, y->ident) != 0 || x->weight != y->weight ||
            !conf_server_same_addr(x, y)) {
            return false;
        }
    }
    return true;
}

const struct conf_pool *
conf_pool_find(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->npools; i++) {
        if (strcmp(c->pools[i].name, name) == 0) {
            return &c->pools[i];
        }
    }
    return NULL;
}
