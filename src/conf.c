/*
 * conf: loads the configuration into an immutable struct conf, or explains
 * every problem in it as "FILE:LINE: message".
 *
 * The work goes in four passes:
 *   1. conf_file reads the file and every file it includes; conf_scan reads
 *      each INI file's lines itself (line numbers, overlong lines, headers,
 *      values) and writes a cleaned text that inih cannot misread, and
 *      conf_yaml turns a nutcracker YAML file into the same struct conf_scan
 *      (a pool per section, a "server" entry per servers: item);
 *   2. every section header of every file is classified ([cachemux],
 *      [pool NAME], or an error), and each gets a struct sect holding its
 *      values, defaults already applied, so that empty sections and
 *      duplicates are known before any key arrives (inih calls the handler
 *      only for keys);
 *   3. inih splits each INI file's cleaned key lines; the handler matches
 *      the call to the scan's entry for that line (the nth call is the nth
 *      entry), which gives the line number and the value, then checks the
 *      key against a table and stores it. A YAML file's entries go through
 *      the same handler directly;
 *   4. whole-pool rules: listen and server present, redis_auth only on redis
 *      pools, distinct server identities, distinct listen addresses.
 * Problems are collected with their file and line, never stopping at the
 * first, and handed to the caller sorted by file (in reading order) and
 * line. Only a clean configuration yields a struct conf.
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

#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_file.h"
#include "conf_scan.h"
#include "conf_yaml.h"
#include "log.h"
#include "proto_mc.h"
#include "proto_redis.h"
#include "util.h"

#define MAX_INT32 CONF_MAX_MS
#define MAX_REQUEST_SIZE CONF_MAX_SIZE
#define MIN_REPLY_SIZE CONF_MIN_REPLY_SIZE
#define SHOW_MAX 64 /* bytes of a value quoted in a message */
#define MAX_KEYS 48

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
    KEY_PATH,          /* struct conf_path: a file, with the key's line */
    KEY_TLS_PROTOCOLS, /* tls_protocols */
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
    { "tls_handshake_timeout", KEY_U64, G(tls_handshake_timeout_ms), 1, MAX_INT32,
      NUM_STR(CONF_DEFAULT_TLS_HANDSHAKE_TIMEOUT) },
    { "tls_max_handshakes", KEY_U32, G(tls_max_handshakes), 1, MAX_INT32,
      NUM_STR(CONF_DEFAULT_TLS_MAX_HANDSHAKES) },
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
    { "workers", KEY_U32, P(workers), 0, CONF_MAX_WORKERS, "0" },
    { "tcpkeepalive", KEY_BOOL, P(tcpkeepalive), 0, 0, "false" },
    { "deny_commands", KEY_STR, P(deny_commands), 0, 0, NULL },
    /* Client side TLS: the pool's listener. Keys named tls_* need tls = true. */
    { "tls", KEY_BOOL, P(tls.on), 0, 0, "false" },
    { "tls_cert_file", KEY_PATH, P(tls.cert_file), 0, 0, NULL },
    { "tls_key_file", KEY_PATH, P(tls.key_file), 0, 0, NULL },
    { "tls_ca_file", KEY_PATH, P(tls.ca_file), 0, 0, NULL },
    { "tls_verify_client", KEY_BOOL, P(tls.verify_client), 0, 0, "false" },
    { "tls_protocols", KEY_TLS_PROTOCOLS, P(tls.protocols), 0, 0, "TLSv1.2 TLSv1.3" },
    { "tls_ciphers", KEY_STR, P(tls.ciphers), 0, 0, NULL },
    { "tls_ciphersuites", KEY_STR, P(tls.ciphersuites), 0, 0, NULL },
    { "tls_session_cache", KEY_BOOL, P(tls.session_cache), 0, 0, "true" },
    { "tls_ktls", KEY_BOOL, P(tls.ktls), 0, 0, "false" },
    /* Server side TLS. Keys named server_tls_* need server_tls = true. */
    { "server_tls", KEY_BOOL, P(server_tls.on), 0, 0, "false" },
    { "server_tls_ca_file", KEY_PATH, P(server_tls.ca_file), 0, 0, NULL },
    { "server_tls_verify", KEY_BOOL, P(server_tls.verify), 0, 0, "true" },
    { "server_tls_name", KEY_STR, P(server_tls.name), 0, 0, NULL },
    { "server_tls_cert_file", KEY_PATH, P(server_tls.cert_file), 0, 0, NULL },
    { "server_tls_key_file", KEY_PATH, P(server_tls.key_file), 0, 0, NULL },
    { "server", KEY_SERVER, 0, 0, 0, NULL }, /* the one repeatable key */
};

#undef G
#undef P

enum sect_kind { SECT_IGNORED, SECT_GLOBAL, SECT_POOL };

/* One header of a file and what was read under it. */
struct sect {
    enum sect_kind kind;
    bool dup;     /* repeated header: checked, then dropped */
    bool yaml;    /* from a YAML file: messages say "pool 'a'", "servers" */
    bool partial; /* conf_scan_section.partial */
    size_t file;  /* index into parse.files.files */
    int line;
    char show[SHOW_MAX + 16]; /* printable label for messages: "[pool a]", "pool 'a'" */
    struct conf scratch;      /* a duplicate [cachemux]'s values */
    struct conf_pool pool;    /* SECT_POOL */
    size_t servers_cap;
    int listen_line; /* of a valid listen, for collisions */
    int auth_line;
    int server_lines;               /* "server =" lines, valid or not */
    int seen[MAX_KEYS];             /* line of each single-valued key, 0: unset */
    const char *seen_val[MAX_KEYS]; /* and its value (the scan's), for a duplicate's message */
};

struct diag {
    size_t file;
    int line;
    size_t seq; /* keeps the sort stable */
    char *msg;
};

struct parse {
    const char *path;
    struct conf *conf;
    struct conf_file_set files;
    size_t file;        /* the file being checked: conf_diag() reports there */
    struct sect *sects; /* one per section of every file, in reading order */
    size_t nsects;
    size_t cursor; /* next scan entry of p->file the handler should see */
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
    p->diags[p->ndiags] =
        (struct diag){ .file = p->file, .line = line, .seq = p->ndiags, .msg = m };
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

/* Where (file, line) is, said from p->file: "line N", or "FILE:N" elsewhere. */
static const char *
conf_at(const struct parse *p, size_t file, int line, char *buf, size_t buflen)
{
    if (file == p->file) {
        snprintf(buf, buflen, "line %d", line);
    } else {
        snprintf(buf, buflen, "%s:%d", p->files.files[file].path, line);
    }
    return buf;
}

/* ---- values ---- */

int
conf_tls_protocols(const char *v, uint32_t *bits, char *err, size_t errlen)
{
    uint32_t b = 0;
    const char *q = v;

    while (*q != '\0') {
        size_t n = strcspn(q, " \t");
        if (n == 7 && strncmp(q, "TLSv1.2", 7) == 0) {
            b |= CONF_TLS_V12;
        } else if (n == 7 && strncmp(q, "TLSv1.3", 7) == 0) {
            b |= CONF_TLS_V13;
        } else if (n > 0) {
            snprintf(err, errlen, "expected TLSv1.2 and/or TLSv1.3, separated by spaces");
            return -1;
        }
        q += n;
        q += strspn(q, " \t");
    }
    if (b == 0) {
        snprintf(err, errlen, "expected TLSv1.2 and/or TLSv1.3, separated by spaces");
        return -1;
    }
    *bits = b;
    return 0;
}

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
    case KEY_PATH:
        if (conf_set_string(&((struct conf_path *)field)->path, v, err, errlen) < 0) {
            return -1;
        }
        ((struct conf_path *)field)->line = line;
        return 0;
    case KEY_TLS_PROTOCOLS:
        if (conf_tls_protocols(v, &pool->tls.protocols, err, errlen) < 0) {
            return -1;
        }
        return conf_set_string(&pool->tls.protocols_str, v, err, errlen);
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
    free(pool->file);
    free(pool->listen.host);
    free(pool->listen_str);
    free(pool->redis_auth);
    free(pool->deny_commands);
    free(pool->tls.cert_file.path);
    free(pool->tls.key_file.path);
    free(pool->tls.ca_file.path);
    free(pool->tls.protocols_str);
    free(pool->tls.ciphers);
    free(pool->tls.ciphersuites);
    free(pool->server_tls.ca_file.path);
    free(pool->server_tls.name);
    free(pool->server_tls.cert_file.path);
    free(pool->server_tls.key_file.path);
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

/* Classify one header (file p->file) before inih runs: inih reports keys, not sections. */
static void
conf_setup_section(struct parse *p, struct sect *s, const struct conf_scan_section *h,
                   int *global_line, size_t *global_file)
{
    char at[SHOW_MAX + 64];
    const char *name = h->name;

    s->file = p->file;
    s->yaml = p->files.files[p->file].yaml;
    s->partial = h->partial;
    s->line = h->line;
    s->scratch.log_level = -1;
    conf_show(s->show + 1, sizeof(s->show) - 2, name);
    s->show[0] = '[';
    strcat(s->show, "]");
    if (h->bad) {
        return; /* the scan has reported it */
    }
    if (strcmp(name, "cachemux") == 0) {
        s->kind = SECT_GLOBAL;
        if (*global_line != 0) {
            conf_diag(p, h->line, "duplicate section [cachemux] (first at %s)",
                      conf_at(p, *global_file, *global_line, at, sizeof(at)));
            s->dup = true;
            conf_apply_defaults(p, s, global_keys, ARRAY_SIZE(global_keys));
        } else {
            *global_line = h->line;
            *global_file = p->file;
        }
        return;
    }
    if (strncmp(name, "pool", 4) != 0 || (name[4] != ' ' && name[4] != '\0')) {
        conf_diag(p, h->line, "unknown section %s (expected [cachemux] or [pool NAME])", s->show);
        return;
    }
    const char *pname = name[4] == ' ' ? name + 5 : name + 4;
    /* ';' first, brackets: a YAML pool's name must fit an INI [pool NAME] header */
    bool ok = *pname != '\0' && *pname != ';';
    for (const char *q = pname; *q != '\0'; q++) {
        ok = ok && conf_value_name_char(*q) && *q != '[' && *q != ']';
    }
    if (s->yaml) {
        /* nutcracker has no sections: name the pool as its file does */
        char n[SHOW_MAX + 8];
        conf_show(n, sizeof(n), pname);
        snprintf(s->show, sizeof(s->show), "pool '%s'", n);
    }
    if (!ok) {
        conf_diag(p, h->line,
                  "invalid pool name %s %s (%sa name has no spaces, quotes, "
                  "backslashes or brackets, and does not start with ';')",
                  s->yaml ? "of" : "in", s->show, s->yaml ? "" : "expected [pool NAME]; ");
        return;
    }
    s->kind = SECT_POOL;
    for (const struct sect *o = p->sects; o < s; o++) {
        if (o->kind == SECT_POOL && !o->dup && o->pool.name != NULL &&
            strcmp(o->pool.name, pname) == 0) {
            conf_diag(p, h->line, "duplicate %s %s (first at %s)", s->yaml ? "pool" : "section",
                      s->yaml ? s->show + 5 : s->show,
                      conf_at(p, o->file, o->line, at, sizeof(at)));
            s->dup = true;
            break;
        }
    }
    s->pool.name = conf_strdup(p, pname);
    s->pool.line = h->line;
    conf_apply_defaults(p, s, pool_keys, ARRAY_SIZE(pool_keys));
}

/* Every section of every file, in reading order (conf_file numbered them). */
static void
conf_setup_sections(struct parse *p)
{
    struct {
        size_t file;
        size_t idx;
    } *inv = calloc(p->nsects + 1, sizeof(*inv));
    int global_line = 0;
    size_t global_file = 0;

    if (inv == NULL) {
        p->oom = true;
        return;
    }
    for (size_t f = 0; f < p->files.nfiles; f++) {
        for (size_t i = 0; i < p->files.files[f].scan.nsections; i++) {
            inv[p->files.files[f].order[i]].file = f;
            inv[p->files.files[f].order[i]].idx = i;
        }
    }
    for (size_t k = 0; k < p->nsects; k++) {
        p->file = inv[k].file;
        conf_setup_section(p, &p->sects[k], &p->files.files[p->file].scan.sections[inv[k].idx],
                           &global_line, &global_file);
    }
    free(inv);
}

/* The struct sect of section index si of file f's scan, or NULL (si < 0). */
static struct sect *
conf_sect_of(struct parse *p, size_t f, int si)
{
    return si < 0 ? NULL : &p->sects[p->files.files[f].order[si]];
}

static void
conf_handle_key(struct parse *p, const struct conf_scan_entry *e)
{
    char shown[SHOW_MAX + 8], first[SHOW_MAX + 8], key[SHOW_MAX + 8], err[256];
    struct sect *s = conf_sect_of(p, p->file, e->section);
    const struct key_def *keys;
    size_t nkeys, i;
    bool secret;

    conf_show(key, sizeof(key), e->key);
    if (strcmp(e->key, "include") == 0 && !p->files.files[p->file].yaml) {
        return; /* conf_file has read it, wherever it is */
    }
    if (s == NULL) {
        conf_diag(p, e->line,
                  "key '%s' is outside any section (expected under [cachemux] or "
                  "[pool NAME]%s)",
                  key, p->file > 0 ? "; an included file opens its own" : "");
        return;
    }
    if (s->kind == SECT_IGNORED) {
        return;
    }
    keys = s->kind == SECT_GLOBAL ? global_keys : pool_keys;
    nkeys = s->kind == SECT_GLOBAL ? ARRAY_SIZE(global_keys) : ARRAY_SIZE(pool_keys);
    for (i = 0; i < nkeys && strcmp(keys[i].name, e->key) != 0; i++) {
    }
    if (i == nkeys) {
        conf_diag(p, e->line, "unknown key '%s' in %s", key, s->show);
        return;
    }
    secret = strcmp(keys[i].name, "redis_auth") == 0;
    if (keys[i].kind != KEY_SERVER) {
        if (s->seen[i] != 0 && secret) {
            conf_diag(p, e->line, "duplicate key '%s' in %s (first at line %d; values not shown)",
                      key, s->show, s->seen[i]);
            return;
        }
        if (s->seen[i] != 0) {
            conf_show(shown, sizeof(shown), e->value);
            conf_show(first, sizeof(first), s->seen_val[i]);
            conf_diag(p, e->line, "duplicate key '%s' in %s: '%s' here, '%s' first at line %d", key,
                      s->show, shown, first, s->seen[i]);
            return;
        }
        s->seen[i] = e->line;
        s->seen_val[i] = e->value;
    }
    if (keys[i].kind == KEY_SERVER) {
        s->server_lines++;
    }
    if (conf_set_value(p, s, &keys[i], e->value, e->line, err, sizeof(err)) < 0) {
        conf_show(shown, sizeof(shown), e->value);
        conf_diag(p, e->line, "invalid value '%s' for '%s' (%s)", shown,
                  s->yaml && keys[i].kind == KEY_SERVER ? "servers" : key, err);
        return;
    }
    if (secret) {
        s->auth_line = e->line;
    }
}

/*
 * inih's handler. The cleaned text gives inih exactly the scan's key lines
 * in order, so call n is entry n; anything else means the two readers
 * disagree, which is reported rather than guessed around. The value is the
 * scan's (inih sees only "KEY =").
 */
static int
conf_on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    const struct conf_scan *sc = &p->files.files[p->file].scan;
    const struct conf_scan_entry *e;

    (void)value;
    if (p->cursor >= sc->nentries) {
        p->mismatch = true;
        return 1;
    }
    e = &sc->entries[p->cursor];
    if (conf_scan_section_index(sc, section) != e->section || strcmp(name, e->key) != 0) {
        p->mismatch = true;
        return 1;
    }
    p->cursor++;
    conf_handle_key(p, e);
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

/* The index of a command of protocol proto named name[0..len) that a
   deny list may hold, or -1 (unknown, or one a client cannot do without:
   AUTH, HELLO, QUIT). */
static int
conf_deny_index(enum proto_id proto, const char *name, size_t len)
{
    if (proto == PROTO_REDIS) {
        const struct redis_cmd *c = redis_cmd_lookup((const uint8_t *)name, len);
        if (c == NULL || c->local == REDIS_LOCAL_AUTH || c->local == REDIS_LOCAL_HELLO ||
            c->local == REDIS_LOCAL_QUIT) {
            return -1;
        }
        return redis_cmd_index(c);
    }
    for (int i = 0; i < MC_CMD_COUNT; i++) {
        const char *n = mc_cmd_name((enum mc_cmd)i);
        if (i != MC_QUIT && strlen(n) == len && strncasecmp(n, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* deny_commands: names separated by spaces, each a command of the pool's
   protocol, resolved into pool->deny. */
static void
conf_check_deny(struct parse *p, struct sect *s)
{
    struct conf_pool *pool = &s->pool;
    const char *w = pool->deny_commands;
    int line = 0;

    memset(pool->deny, 0, sizeof(pool->deny));
    for (size_t k = 0; k < ARRAY_SIZE(pool_keys); k++) {
        if (strcmp(pool_keys[k].name, "deny_commands") == 0) {
            line = s->seen[k];
        }
    }
    while (w != NULL && *w != '\0') {
        size_t len = strcspn(w, " \t");
        if (len > 0) {
            int i = conf_deny_index(pool->proto, w, len);
            if (i < 0 || i >= CONF_DENY_WORDS * 64) {
                conf_diag(p, line,
                          "'deny_commands' of %s: '%.*s' is not a %s command that can be denied "
                          "(AUTH, HELLO and QUIT cannot)",
                          s->show, (int)MIN(len, 64), w, proto_name(pool->proto));
            } else {
                pool->deny[i / 64] |= UINT64_C(1) << (i % 64);
            }
        }
        w += len;
        w += strspn(w, " \t");
    }
}

/* The line of pool key name in s, 0 when unset. */
static int
conf_pool_key_line(const struct sect *s, const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(pool_keys); i++) {
        if (strcmp(pool_keys[i].name, name) == 0) {
            return s->seen[i];
        }
    }
    return 0;
}

/* TLS keys that make sense only together. */
static void
conf_check_tls(struct parse *p, struct sect *s)
{
    struct conf_pool *pool = &s->pool;

    /* Lines for the messages of building the contexts (tls.h). */
    pool->tls.line = conf_pool_key_line(s, "tls");
    pool->tls.ciphers_line = conf_pool_key_line(s, "tls_ciphers");
    pool->tls.ciphersuites_line = conf_pool_key_line(s, "tls_ciphersuites");
    pool->server_tls.line = conf_pool_key_line(s, "server_tls");

    /* A tls_* key without tls = true would be silently ignored: say so. */
    for (size_t i = 0; i < ARRAY_SIZE(pool_keys); i++) {
        const char *k = pool_keys[i].name;
        bool client = strncmp(k, "tls_", 4) == 0, server = strncmp(k, "server_tls_", 11) == 0;
        if (s->seen[i] == 0 || (!client && !server) || (client && pool->tls.on) ||
            (server && pool->server_tls.on)) {
            continue;
        }
        conf_diag(p, s->seen[i], "'%s' is set but %s is not true in %s", k,
                  client ? "tls" : "server_tls", s->show);
    }
    if (pool->tls.on && (pool->tls.cert_file.path == NULL || pool->tls.key_file.path == NULL)) {
        conf_diag(p, conf_pool_key_line(s, "tls"),
                  "'tls = true' in %s needs tls_cert_file and tls_key_file", s->show);
    }
    if (pool->tls.on && pool->tls.verify_client && pool->tls.ca_file.path == NULL) {
        conf_diag(p, conf_pool_key_line(s, "tls_verify_client"),
                  "'tls_verify_client = true' in %s needs tls_ca_file", s->show);
    }
    if (pool->server_tls.on &&
        (pool->server_tls.cert_file.path == NULL) != (pool->server_tls.key_file.path == NULL)) {
        conf_diag(p,
                  conf_pool_key_line(s, pool->server_tls.cert_file.path != NULL
                                            ? "server_tls_cert_file"
                                            : "server_tls_key_file"),
                  "server_tls_cert_file and server_tls_key_file go together in %s", s->show);
    }
}

static void
conf_check_pool(struct parse *p, struct sect *s)
{
    struct conf_pool *pool = &s->pool;
    char id[SHOW_MAX + 8];

    /* A listen or server line that was there but bad has its own message,
     * and so has a YAML pool whose reading stopped early. */
    if (s->seen[0] == 0 && !s->partial) {
        conf_diag(p, s->line, "missing 'listen' in %s", s->show);
    }
    if (s->server_lines == 0 && !s->partial) {
        conf_diag(p, s->line, "missing '%s' in %s", s->yaml ? "servers" : "server", s->show);
    }
    conf_check_deny(p, s);
    if (pool->redis_auth != NULL && pool->proto != PROTO_REDIS) {
        conf_diag(p, s->auth_line, "'redis_auth' is set but %s is not a redis pool (needs %s)",
                  s->show, s->yaml ? "redis: true" : "redis = true");
    }
    conf_check_tls(p, s);
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
                  "duplicate server identity '%s' for '%s' in %s "
                  "(first at line %d)",
                  id, s->yaml ? "servers" : "server", s->show, pool->servers[first].line);
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

    for (size_t i = 0; i < p->nsects; i++) {
        struct sect *s = &p->sects[i];
        if (s->kind != SECT_POOL || s->dup) {
            continue;
        }
        npools++;
        p->file = s->file;
        conf_check_pool(p, s);
        if (s->listen_line == 0) {
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            struct sect *o = &p->sects[j];
            if (o->kind == SECT_POOL && !o->dup && o->listen_line != 0 &&
                conf_same_listen(&o->pool.listen, &s->pool.listen)) {
                char l[SHOW_MAX + 8], at[SHOW_MAX + 64];
                conf_show(l, sizeof(l), s->pool.listen_str);
                conf_diag(p, s->listen_line, "listen '%s' in %s is already used by %s (%s)", l,
                          s->show, o->show, conf_at(p, o->file, o->listen_line, at, sizeof(at)));
                break;
            }
        }
    }
    if (npools == 0) {
        p->file = 0;
        conf_diag(p, 0,
                  p->files.files[0].yaml ? "no pools defined"
                                         : "no pools defined (add a [pool NAME] section)");
    }
}

/* client_output_limit must let one largest request's reply through. */
static void
conf_check_global(struct parse *p)
{
    struct conf *c = p->conf;
    int line = 0;

    p->file = 0;
    for (size_t i = 0; i < p->nsects; i++) {
        const struct sect *s = &p->sects[i];
        if (s->kind == SECT_GLOBAL && !s->dup) {
            for (size_t k = 0; k < ARRAY_SIZE(global_keys); k++) {
                if (strcmp(global_keys[k].name, "client_output_limit") == 0) {
                    line = s->seen[k];
                    p->file = s->file;
                }
            }
        }
    }
    c->client_output_limit_auto = c->client_output_limit == 0;
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

    for (size_t i = 0; i < p->nsects; i++) {
        n += p->sects[i].kind == SECT_POOL && !p->sects[i].dup;
    }
    c->pools = calloc(n + 1, sizeof(*c->pools));
    if (c->pools == NULL) {
        return -1;
    }
    for (size_t i = 0; i < p->nsects; i++) {
        struct sect *s = &p->sects[i];
        if (s->kind == SECT_POOL && !s->dup) {
            s->pool.file = strdup(p->files.files[s->file].path);
            c->pools[c->npools++] = s->pool;
            memset(&s->pool, 0, sizeof(s->pool));
            if (c->pools[c->npools - 1].file == NULL) {
                return -1;
            }
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
    /* File-wide messages (line 0) come last, after the lines they sum up;
     * the rest by file in reading order, then line. */
    unsigned xl = x->line ? (unsigned)x->line : ~0u, yl = y->line ? (unsigned)y->line : ~0u;

    if ((x->line == 0) != (y->line == 0)) {
        return x->line == 0 ? 1 : -1;
    }
    if (x->file != y->file) {
        return x->file < y->file ? -1 : 1;
    }
    if (xl != yl) {
        return xl < yl ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static void
conf_parse_free(struct parse *p)
{
    for (size_t i = 0; p->sects != NULL && i < p->nsects; i++) {
        conf_pool_clear(&p->sects[i].pool);
        conf_clear(&p->sects[i].scratch);
    }
    free(p->sects);
    for (size_t i = 0; i < p->ndiags; i++) {
        free(p->diags[i].msg);
    }
    free(p->diags);
    conf_file_free(&p->files);
}

/* Every key of file p->file through handle_key: by inih for INI (see conf_on_key). */
static void
conf_read_keys(struct parse *p)
{
    const struct conf_file *f = &p->files.files[p->file];

    if (f->yaml) {
        for (size_t i = 0; i < f->scan.nentries; i++) {
            conf_handle_key(p, &f->scan.entries[i]);
        }
        return;
    }
    if (f->scan.clean == NULL) {
        return; /* never read (its issue says why) */
    }
    p->cursor = 0;
    p->mismatch = false;
    int irc = ini_parse_string(f->scan.clean, conf_on_key, p);
    if (irc < 0) {
        p->oom = true;
    }
    /* irc > 0: inih found a line it cannot parse, which the scan let through. */
    if (irc > 0 || p->mismatch || p->cursor != f->scan.nentries) {
        conf_diag(p, 0,
                  "internal error: inih read the file differently from the line scan "
                  "(please report this file)");
    }
}

/*
 * Read path (text: its content, or NULL to read it) and what it includes
 * into p, and check everything. Returns 0 with p->conf complete, or -1 with
 * the problems in errs. p keeps the files' scans until parse_free.
 */
static int
conf_load_parse(struct parse *p, const char *path, const char *text, size_t len,
                struct conf_errors *errs)
{
    struct sect global = { .kind = SECT_GLOBAL };
    int rc = -1;

    p->path = path;
    p->conf = calloc(1, sizeof(*p->conf));
    if (p->conf == NULL) {
        conf_errors_add(errs, path, 0, "out of memory");
        return -1;
    }
    p->conf->log_level = -1;
    p->conf->path = conf_strdup(p, path);
    conf_apply_defaults(p, &global, global_keys, ARRAY_SIZE(global_keys));
    if (conf_file_load(path, text, len, &p->files) < 0) {
        p->oom = true;
        goto done;
    }
    for (size_t i = 0; i < p->files.nissues; i++) {
        p->file = p->files.issues[i].file;
        conf_diag(p, p->files.issues[i].line, "%s", p->files.issues[i].msg);
    }
    for (size_t f = 0; f < p->files.nfiles; f++) {
        p->file = f;
        for (size_t i = 0; i < p->files.files[f].scan.nissues; i++) {
            conf_diag(p, p->files.files[f].scan.issues[i].line, "%s",
                      p->files.files[f].scan.issues[i].msg);
        }
    }
    if (p->files.unread) {
        goto done; /* nothing to check: the issue says why */
    }
    p->nsects = p->files.nsections;
    p->sects = calloc(p->nsects + 1, sizeof(*p->sects));
    if (p->sects == NULL) {
        p->oom = true;
        goto done;
    }
    conf_setup_sections(p);
    for (size_t f = 0; f < p->files.nfiles; f++) {
        p->file = f;
        conf_read_keys(p);
    }
    conf_check_pools(p);
    conf_check_global(p);
    if (p->ndiags == 0 && !p->oom) {
        if (conf_collect_pools(p) < 0) {
            p->oom = true;
        } else {
            rc = 0;
        }
    }
done:
    if (p->oom) {
        p->file = 0;
        conf_diag(p, 0, "out of memory");
        if (p->ndiags == 0) {
            conf_errors_add(errs, path, 0, "out of memory");
        }
        rc = -1;
    }
    if (rc != 0) {
        if (p->ndiags > 1) {
            qsort(p->diags, p->ndiags, sizeof(*p->diags), conf_diag_cmp);
        }
        for (size_t i = 0; i < p->ndiags; i++) {
            const struct diag *d = &p->diags[i];
            conf_errors_add(errs, d->file < p->files.nfiles ? p->files.files[d->file].path : path,
                            d->line, "%s", d->msg);
        }
    }
    return rc;
}

static int
conf_load_source(const char *path, const char *text, size_t len, struct conf **out,
                 struct conf_errors *errs)
{
    struct parse p = { 0 };
    int rc = conf_load_parse(&p, path, text, len, errs);

    *out = NULL;
    if (rc == 0) {
        *out = p.conf;
        p.conf = NULL;
    }
    conf_free(p.conf);
    conf_parse_free(&p);
    return rc;
}

/* ---- public ---- */

int
conf_load_string(const char *path, const char *text, struct conf **out, struct conf_errors *errs)
{
    return conf_load_source(path, text, strlen(text), out, errs);
}

int
conf_load_text(const char *path, const char *text, size_t len, struct conf **out,
               struct conf_errors *errs)
{
    return conf_load_source(path, text, len, out, errs);
}

int
conf_load(const char *path, struct conf **out, struct conf_errors *errs)
{
    return conf_load_source(path, NULL, 0, out, errs);
}

int
conf_convert(const char *path, char **ini, struct conf_errors *errs)
{
    struct parse p = { 0 };
    char err[256];
    int line, rc;

    *ini = NULL;
    if (!conf_file_is_yaml(path)) {
        conf_errors_add(errs, path, 0,
                        "not a YAML file: --convert reads a nutcracker "
                        "configuration, named *.yml or *.yaml");
        return -1;
    }
    rc = conf_load_parse(&p, path, NULL, 0, errs);
    if (rc == 0) {
        *ini = conf_yaml_ini(&p.files.files[0].scan, path, &line, err, sizeof(err));
        if (*ini == NULL) {
            conf_errors_add(errs, path, line, "cannot convert: %s", err);
            rc = -1;
        }
    }
    conf_free(p.conf);
    conf_parse_free(&p);
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

static bool
conf_path_eq(const struct conf_path *a, const struct conf_path *b)
{
    return conf_str_eq(a->path, b->path);
}

bool
conf_server_tls_equal(const struct conf_server_tls *a, const struct conf_server_tls *b)
{
    return a->on == b->on && conf_path_eq(&a->ca_file, &b->ca_file) && a->verify == b->verify &&
           conf_str_eq(a->name, b->name) && conf_path_eq(&a->cert_file, &b->cert_file) &&
           conf_path_eq(&a->key_file, &b->key_file);
}

static bool
conf_tls_equal(const struct conf_tls *a, const struct conf_tls *b)
{
    return a->on == b->on && conf_path_eq(&a->cert_file, &b->cert_file) &&
           conf_path_eq(&a->key_file, &b->key_file) && conf_path_eq(&a->ca_file, &b->ca_file) &&
           a->verify_client == b->verify_client && a->protocols == b->protocols &&
           conf_str_eq(a->ciphers, b->ciphers) && conf_str_eq(a->ciphersuites, b->ciphersuites) &&
           a->session_cache == b->session_cache && a->ktls == b->ktls;
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
        a->client_connections != b->client_connections || a->workers != b->workers ||
        a->tcpkeepalive != b->tcpkeepalive || memcmp(a->deny, b->deny, sizeof(a->deny)) != 0 ||
        !conf_tls_equal(&a->tls, &b->tls) ||
        !conf_server_tls_equal(&a->server_tls, &b->server_tls) || a->nservers != b->nservers) {
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

/* ---- --dump-conf ---- */

struct conf_out {
    char *p;
    size_t len, cap;
    bool oom;
};

static void conf_out(struct conf_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
conf_out(struct conf_out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->oom) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->oom = true;
        return;
    }
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + (size_t)n + 1) {
            cap *= 2;
        }
        char *p = realloc(o->p, cap);
        if (p == NULL) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(o->p + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

/* "key = value", quoted when the scan would otherwise read it differently. */
static void
conf_out_kv(struct conf_out *o, const char *key, const char *v)
{
    enum conf_scan_form form = conf_scan_value_form(v);

    if (form == CONF_SCAN_PLAIN) {
        conf_out(o, "%s = %s\n", key, v);
    } else if (form == CONF_SCAN_QUOTED) {
        conf_out(o, "%s = \"%s\"\n", key, v);
    } else {
        conf_out(o, "; %s: its value cannot be written on one INI line\n", key);
    }
}

/* host:port, with brackets around an IPv6 literal. */
static void
conf_out_hostport(char *dst, size_t dstlen, const char *host, int port)
{
    snprintf(dst, dstlen, strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
}

/* Every key of one table, each written from the field it was stored in. */
static void
conf_out_keys(struct conf_out *o, const struct key_def *keys, size_t n, const struct conf *c,
              const struct conf_pool *pool)
{
    const char *base = pool != NULL ? (const char *)pool : (const char *)c;
    char v[CONF_VALUE_MAX + 64];

    for (size_t i = 0; i < n; i++) {
        const struct key_def *k = &keys[i];
        const void *field = base + k->off;
        /* tls_* keys only with tls = true, which loading demands */
        if (pool != NULL && ((strncmp(k->name, "tls_", 4) == 0 && !pool->tls.on) ||
                             (strncmp(k->name, "server_tls_", 11) == 0 && !pool->server_tls.on))) {
            continue;
        }
        switch (k->kind) {
        case KEY_BOOL:
            conf_out_kv(o, k->name, *(const bool *)field ? "true" : "false");
            break;
        case KEY_PROTO:
            conf_out_kv(o, k->name,
                        *(const enum proto_id *)field == PROTO_REDIS ? "true" : "false");
            break;
        case KEY_U32:
            conf_out(o, "%s = %u\n", k->name, (unsigned)*(const uint32_t *)field);
            break;
        case KEY_U64:
            conf_out(o, "%s = %llu\n", k->name, (unsigned long long)*(const uint64_t *)field);
            break;
        case KEY_INT:
            if (*(const int *)field >= 0) { /* log_level -1: unset */
                conf_out(o, "%s = %d\n", k->name, *(const int *)field);
            }
            break;
        case KEY_WORKERS:
            if (c->workers == 0) {
                conf_out(o, "%s = auto\n", k->name);
            } else {
                conf_out(o, "%s = %d\n", k->name, c->workers);
            }
            break;
        case KEY_STR:
        case KEY_METRICS:
            if (*(char *const *)field != NULL) {
                conf_out_kv(o, k->name, *(char *const *)field);
            }
            break;
        case KEY_PATH:
            if (((const struct conf_path *)field)->path != NULL) {
                conf_out_kv(o, k->name, ((const struct conf_path *)field)->path);
            }
            break;
        case KEY_TLS_PROTOCOLS:
            conf_out_kv(o, k->name, pool->tls.protocols_str);
            break;
        case KEY_HASH:
            conf_out_kv(o, k->name, hash_name(pool->key_rule.hash));
            break;
        case KEY_HASH_TAG:
            if (pool->key_rule.has_tag) {
                snprintf(v, sizeof(v), "%c%c", pool->key_rule.tag[0], pool->key_rule.tag[1]);
                conf_out_kv(o, k->name, v);
            }
            break;
        case KEY_DIST:
            conf_out_kv(o, k->name, dist_name(pool->dist));
            break;
        case KEY_LISTEN:
            conf_out_kv(o, k->name, pool->listen_str);
            break;
        case KEY_STATS:
            conf_out_hostport(v, sizeof(v), c->stats_host, c->stats_port);
            conf_out_kv(o, k->name, v);
            break;
        case KEY_SERVER:
            for (size_t j = 0; j < pool->nservers; j++) {
                const struct conf_server *s = &pool->servers[j];
                char addr[CONF_VALUE_MAX + 16];
                if (s->addr.is_unix) {
                    snprintf(addr, sizeof(addr), "%s", s->addr.host);
                } else if (s->name == NULL && s->addr.port != 11211) {
                    /* the identity is host:port as written ("01" is not "1") */
                    snprintf(addr, sizeof(addr), "%s", s->ident);
                } else {
                    conf_out_hostport(addr, sizeof(addr), s->addr.host, s->addr.port);
                }
                /* names may be long (a line holds 64 KiB) and need quoting like any value */
                char *line = conf_fmt_alloc("%s:%u%s%s", addr, (unsigned)s->weight,
                                            s->name != NULL ? " " : "",
                                            s->name != NULL ? s->name : "");
                if (line == NULL) {
                    o->oom = true;
                    break;
                }
                conf_out_kv(o, k->name, line);
                free(line);
            }
            break;
        }
    }
}

char *
conf_dump(const struct conf *c)
{
    struct conf_out o = { 0 };
    char path[256];

    conf_scan_printable(path, sizeof(path), c->path, strlen(c->path), sizeof(path) - 4);
    conf_out(&o, "; cachemux --dump-conf: the configuration loaded from %s\n[cachemux]\n", path);
    conf_out_keys(&o, global_keys, ARRAY_SIZE(global_keys), c, NULL);
    for (size_t i = 0; i < c->npools; i++) {
        conf_out(&o, "\n[pool %s]\n", c->pools[i].name);
        conf_out_keys(&o, pool_keys, ARRAY_SIZE(pool_keys), c, &c->pools[i]);
    }
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
