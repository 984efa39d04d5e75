/*
 * Unit tests for conf and conf_scan: a full config read back field by field,
 * twemproxy's defaults, quoting and comments, indented and long lines,
 * server identities and their order, includes (files, directories, relative
 * paths, cycles, errors in included files), and a table of broken configs,
 * each of which must name the right FILE:LINE, the key and the value.
 * The YAML format has its own suite, test_conf_yaml.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "proto_mc.h"
#include "proto_redis.h"
#include "conf_file.h"
#include "conf_scan.h"
#include "util.h"

#define POOL_A "[pool a]\nlisten = 127.0.0.1:22121\nserver = 10.0.0.1:11211:1\n"

static void
dump_errors(const struct conf_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        fprintf(stderr, "  %s\n", errs->msgs[i]);
    }
}

static struct conf *
load_ok(const char *text)
{
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    int rc = conf_load_string("t.ini", text, &c, &errs);

    if (rc != 0) {
        dump_errors(&errs);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(errs.n, 0);
    conf_errors_free(&errs);
    return c;
}

/* Load text that must fail; the caller frees errs. */
static void
load_bad(const char *text, struct conf_errors *errs)
{
    struct conf *c = (struct conf *)1;
    int rc = conf_load_string("t.ini", text, &c, errs);

    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(c);
    ck_assert_uint_ge(errs->n, 1);
}

static void
assert_msg(const char *msg, int line, const char *const *want, size_t nwant)
{
    char prefix[64];

    if (line > 0) {
        snprintf(prefix, sizeof(prefix), "t.ini:%d: ", line);
    } else {
        snprintf(prefix, sizeof(prefix), "t.ini: ");
    }
    ck_assert_msg(strncmp(msg, prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'", msg,
                  prefix);
    for (size_t i = 0; i < nwant && want[i] != NULL; i++) {
        ck_assert_msg(strstr(msg, want[i]) != NULL, "'%s' does not contain '%s'", msg, want[i]);
    }
}

/* ---- valid configs ---- */

static const char full_config[] = "; every key, most of them away from their defaults\n"
                                  "[cachemux]\n"
                                  "workers = 3\n"
                                  "stats_listen = 0.0.0.0:22223\n"
                                  "metrics_listen = 127.0.0.1:9121\n"
                                  "log_file = /var/log/cachemux.log\n"
                                  "log_level = 7\n"
                                  "pid_file = /run/cachemux.pid\n"
                                  "mbuf_size = 4096\n"
                                  "max_request_size = 1048576\n"
                                  "shutdown_timeout = 5000\n"
                                  "\n"
                                  "[pool alpha]                    ; a redis pool\n"
                                  "listen = 127.0.0.1:22121\n"
                                  "hash = murmur\n"
                                  "hash_tag = \"{}\"\n"
                                  "distribution = modula\n"
                                  "timeout = 400\n"
                                  "backlog = 1024\n"
                                  "preconnect = true\n"
                                  "redis = true\n"
                                  "redis_auth = s3cret\n"
                                  "redis_db = 3\n"
                                  "server_connections = 2\n"
                                  "auto_eject_hosts = true\n"
                                  "server_retry_timeout = 2000\n"
                                  "server_failure_limit = 1\n"
                                  "client_connections = 100\n"
                                  "tcpkeepalive = true\n"
                                  "server = 127.0.0.1:6379:1 server1\n"
                                  "server = 127.0.0.1:6380:2 server2\n"
                                  "# a memcached pool on a unix socket\n"
                                  "[pool b]\n"
                                  "listen = /tmp/cmx-b.sock 0660\n"
                                  "distribution = random\n"
                                  "server = /tmp/mc.sock:1\n";

START_TEST(test_full_config)
{
    struct conf *c = load_ok(full_config);
    const struct conf_pool *a, *b;

    ck_assert_str_eq(c->path, "t.ini");
    ck_assert_int_eq(c->workers, 3);
    ck_assert_str_eq(c->stats_host, "0.0.0.0");
    ck_assert_int_eq(c->stats_port, 22223);
    ck_assert_str_eq(c->metrics_listen, "127.0.0.1:9121");
    ck_assert_str_eq(c->log_file, "/var/log/cachemux.log");
    ck_assert_int_eq(c->log_level, 7);
    ck_assert_str_eq(c->pid_file, "/run/cachemux.pid");
    ck_assert_uint_eq(c->mbuf_size, 4096);
    ck_assert_uint_eq(c->max_request_size, 1048576);
    ck_assert_uint_eq(c->shutdown_timeout_ms, 5000);
    ck_assert_uint_eq(c->npools, 2);

    a = &c->pools[1]; /* "b" is shorter, so it sorts first */
    ck_assert_str_eq(a->name, "alpha");
    ck_assert_ptr_eq(conf_pool_find(c, "alpha"), a);
    ck_assert_int_eq(a->line, 13);
    ck_assert_str_eq(a->listen_str, "127.0.0.1:22121");
    ck_assert_str_eq(a->listen.host, "127.0.0.1");
    ck_assert_int_eq(a->listen.port, 22121);
    ck_assert(!a->listen.is_unix);
    ck_assert_int_eq(a->listen.perm, -1);
    ck_assert_int_eq(a->key_rule.hash, HASH_MURMUR);
    ck_assert(a->key_rule.has_tag);
    ck_assert_int_eq(a->key_rule.tag[0], '{');
    ck_assert_int_eq(a->key_rule.tag[1], '}');
    ck_assert_int_eq(a->dist, DIST_MODULA);
    ck_assert_uint_eq(a->timeout_ms, 400);
    ck_assert_uint_eq(a->backlog, 1024);
    ck_assert(a->preconnect);
    ck_assert(a->proto == PROTO_REDIS);
    ck_assert_str_eq(a->redis_auth, "s3cret");
    ck_assert_uint_eq(a->redis_db, 3);
    ck_assert_uint_eq(a->server_connections, 2);
    ck_assert(a->auto_eject_hosts);
    ck_assert_uint_eq(a->server_retry_timeout_ms, 2000);
    ck_assert_uint_eq(a->server_failure_limit, 1);
    ck_assert_uint_eq(a->client_connections, 100);
    ck_assert(a->tcpkeepalive);
    ck_assert_uint_eq(a->nservers, 2);
    ck_assert_str_eq(a->servers[0].ident, "server1");
    ck_assert_str_eq(a->servers[0].name, "server1");
    ck_assert_str_eq(a->servers[0].addr.host, "127.0.0.1");
    ck_assert_int_eq(a->servers[0].addr.port, 6379);
    ck_assert_uint_eq(a->servers[0].weight, 1);
    ck_assert_int_eq(a->servers[0].line, 30);
    ck_assert_str_eq(a->servers[1].ident, "server2");
    ck_assert_int_eq(a->servers[1].addr.port, 6380);
    ck_assert_uint_eq(a->servers[1].weight, 2);

    b = conf_pool_find(c, "b");
    ck_assert_ptr_eq(b, &c->pools[0]);
    ck_assert(b->listen.is_unix);
    ck_assert_str_eq(b->listen.host, "/tmp/cmx-b.sock");
    ck_assert_int_eq(b->listen.perm, 0660);
    ck_assert_int_eq(b->listen.port, 0);
    ck_assert_int_eq(b->dist, DIST_RANDOM);
    ck_assert(b->proto == PROTO_MEMCACHED);
    ck_assert_uint_eq(b->nservers, 1);
    ck_assert_str_eq(b->servers[0].ident, "/tmp/mc.sock:");
    ck_assert_ptr_null(b->servers[0].name);
    ck_assert(b->servers[0].addr.is_unix);
    ck_assert_str_eq(b->servers[0].addr.host, "/tmp/mc.sock");
    ck_assert_ptr_null(conf_pool_find(c, "gamma"));
    conf_free(c);
}
END_TEST

START_TEST(test_defaults)
{
    struct conf *c = load_ok(POOL_A);
    const struct conf_pool *p = &c->pools[0];

    ck_assert_int_eq(c->workers, 0);
    ck_assert_str_eq(c->stats_host, "127.0.0.1");
    ck_assert_int_eq(c->stats_port, CONF_DEFAULT_STATS_PORT);
    ck_assert_ptr_null(c->metrics_listen);
    ck_assert_ptr_null(c->log_file);
    ck_assert_int_eq(c->log_level, -1);
    ck_assert_ptr_null(c->pid_file);
    ck_assert_uint_eq(c->mbuf_size, CONF_DEFAULT_MBUF_SIZE);
    ck_assert_uint_eq(c->max_request_size, CONF_DEFAULT_MAX_REQUEST_SIZE);
    ck_assert_uint_eq(c->shutdown_timeout_ms, CONF_DEFAULT_SHUTDOWN_TIMEOUT);
    ck_assert_uint_eq(c->npools, 1);
    ck_assert_str_eq(p->name, "a");
    ck_assert_int_eq(p->key_rule.hash, HASH_FNV1A_64);
    ck_assert(!p->key_rule.has_tag);
    ck_assert_int_eq(p->dist, DIST_KETAMA);
    ck_assert_uint_eq(p->timeout_ms, 0);
    ck_assert_uint_eq(p->backlog, 512);
    ck_assert(!p->preconnect);
    ck_assert(p->proto == PROTO_MEMCACHED);
    ck_assert_ptr_null(p->redis_auth);
    ck_assert_uint_eq(p->redis_db, 0);
    ck_assert_uint_eq(p->server_connections, 1);
    ck_assert(!p->auto_eject_hosts);
    ck_assert_uint_eq(p->server_retry_timeout_ms, 30000);
    ck_assert_uint_eq(p->server_failure_limit, 2);
    ck_assert_uint_eq(p->client_connections, 0);
    ck_assert(!p->tcpkeepalive);
    conf_free(c);
}
END_TEST

START_TEST(test_workers_auto)
{
    struct conf *c = load_ok("[cachemux]\nworkers = auto\n" POOL_A);

    ck_assert_int_eq(c->workers, 0);
    conf_free(c);
    c = load_ok("[cachemux]\nworkers = 1024\nlog_level = 0\n" POOL_A);
    ck_assert_int_eq(c->workers, 1024);
    ck_assert_int_eq(c->log_level, 0);
    conf_free(c);
}
END_TEST

START_TEST(test_quotes_and_comments)
{
    struct conf *c = load_ok("# comment\n"
                             "; another\n"
                             "   ; an indented comment is harmless\n"
                             "[cachemux] ; trailing comment on a header\n"
                             "log_file = \"/tmp/with space.log\"\n"
                             "pid_file = \"/tmp/mismatched.pid'\n"
                             "metrics_listen = '127.0.0.1:9121'\n"
                             " \t \n"
                             "[pool a]\n"
                             "listen = \"127.0.0.1:22121\"\n"
                             "hash = 'md5' ; inline comment\n"
                             "hash_tag = \"::\"\n"
                             "redis = true\n"
                             "redis_auth = pa;ss#word\n"
                             "server = \"10.0.0.1:6379:1 one\"\n");
    const struct conf_pool *p = &c->pools[0];

    ck_assert_str_eq(c->log_file, "/tmp/with space.log");
    ck_assert_str_eq(c->pid_file, "\"/tmp/mismatched.pid'");
    ck_assert_str_eq(c->metrics_listen, "127.0.0.1:9121");
    ck_assert_str_eq(p->listen_str, "127.0.0.1:22121");
    ck_assert_int_eq(p->key_rule.hash, HASH_MD5);
    ck_assert_int_eq(p->key_rule.tag[0], ':');
    ck_assert_int_eq(p->key_rule.tag[1], ':');
    ck_assert_str_eq(p->redis_auth, "pa;ss#word");
    ck_assert_str_eq(p->servers[0].ident, "one");
    conf_free(c);
}
END_TEST

START_TEST(test_identities_and_order)
{
    struct conf *c = load_ok("[pool a]\n"
                             "listen = [::1]:22121\n"
                             "server = 10.0.0.1:6379:1\n"       /* 3: host:port */
                             "server = 10.0.0.1:11211:2\n"      /* 4: port 11211 -> host only */
                             "server = /tmp/r.sock:3\n"         /* 5: unix -> path: */
                             "server = /tmp/r2.sock:4 sock\n"   /* 6: named */
                             "server = [::1]:6380:5\n"          /* 7: v6 */
                             "server = 10.0.0.9:6379:6 alpha\n" /* 8 */
                             "server = 10.0.0.2:6379:7\n");     /* 9 */
    static const struct {
        const char *ident;
        uint32_t weight;
        int line;
    } want[] = {
        { "sock", 4, 6 },          { "alpha", 6, 8 },        { "10.0.0.1", 2, 4 },
        { "[::1]:6380", 5, 7 },    { "/tmp/r.sock:", 3, 5 }, { "10.0.0.1:6379", 1, 3 },
        { "10.0.0.2:6379", 7, 9 },
    };
    const struct conf_pool *p = &c->pools[0];

    ck_assert_str_eq(p->listen.host, "::1");
    ck_assert_int_eq(p->listen.port, 22121);
    ck_assert_uint_eq(p->nservers, ARRAY_SIZE(want));
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        ck_assert_str_eq(p->servers[i].ident, want[i].ident);
        ck_assert_uint_eq(p->servers[i].weight, want[i].weight);
        ck_assert_int_eq(p->servers[i].line, want[i].line);
    }
    ck_assert_str_eq(p->servers[3].addr.host, "::1");
    ck_assert_int_eq(p->servers[3].addr.port, 6380);
    ck_assert_str_eq(p->servers[2].addr.host, "10.0.0.1");
    ck_assert_int_eq(p->servers[2].addr.port, 11211);
    ck_assert_str_eq(p->servers[0].addr.host, "/tmp/r2.sock");
    ck_assert_str_eq(p->servers[0].name, "sock");
    conf_free(c);
}
END_TEST

START_TEST(test_pool_order)
{
    struct conf *c = load_ok("[pool beta]\nlisten = 127.0.0.1:1\nserver = h:1:1\n"
                             "[pool zz]\nlisten = 127.0.0.1:2\nserver = h:1:1\n"
                             "[pool b]\nlisten = 127.0.0.1:3\nserver = h:1:1\n"
                             "[pool ab]\nlisten = 127.0.0.1:4\nserver = h:1:1\n"
                             "[pool a]\nlisten = 127.0.0.1:5\nserver = h:1:1\n");
    static const char *const want[] = { "a", "b", "ab", "zz", "beta" };

    ck_assert_uint_eq(c->npools, ARRAY_SIZE(want));
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        ck_assert_str_eq(c->pools[i].name, want[i]);
        ck_assert_ptr_eq(conf_pool_find(c, want[i]), &c->pools[i]);
    }
    conf_free(c);
}
END_TEST

/* A config whose last line is key = VALUE with VALUE n bytes of ch. */
static char *
long_line_config(const char *head, const char *key, size_t n, char ch)
{
    size_t hl = strlen(head), kl = strlen(key);
    char *text = malloc(hl + kl + n + 2);

    ck_assert_ptr_nonnull(text);
    memcpy(text, head, hl);
    memcpy(text + hl, key, kl);
    memset(text + hl + kl, ch, n);
    strcpy(text + hl + kl + n, "\n");
    return text;
}

START_TEST(test_line_limits)
{
    struct conf *c;
    char *text;

    /* A line of exactly CONF_MAX_LINE bytes is read whole (inih alone would
     * cut it at 199 and read the tail as a key of its own). */
    text = long_line_config("[pool a]\nlisten = 127.0.0.1:22121\nserver = 10.0.0.1:11211:1\n"
                            "redis = true\n",
                            "redis_auth = ", CONF_MAX_LINE - 13, 'p');
    c = load_ok(text);
    ck_assert_uint_eq(strlen(c->pools[0].redis_auth), CONF_MAX_LINE - 13);
    conf_free(c);
    free(text);

    /* A 60 KiB server line: the name is the identity, however long. */
    text = long_line_config(POOL_A, "server = 10.0.0.2:11211:1 ", 60 * 1024, 'n');
    c = load_ok(text);
    ck_assert_uint_eq(c->pools[0].nservers, 2);
    ck_assert_uint_eq(strlen(c->pools[0].servers[1].ident), 60 * 1024);
    ck_assert_int_eq(c->pools[0].servers[1].line, 4);
    conf_free(c);
    free(text);
}
END_TEST

START_TEST(test_indented_lines)
{
    /* Indentation means nothing: keys, headers and comments may be indented. */
    struct conf *c = load_ok("  [cachemux]\n"
                             "\tworkers = 2\n"
                             "[pool a]\n"
                             "    listen = 127.0.0.1:22121   ; the pool's port\n"
                             "    # servers\n"
                             "\t  ; more\n"
                             "    server = 10.0.0.1:11211:1 one\n"
                             "\t\tserver = 10.0.0.2:11211:1 two\n"
                             "  hash = md5\n");
    const struct conf_pool *p = &c->pools[0];

    ck_assert_int_eq(c->workers, 2);
    ck_assert_str_eq(p->listen_str, "127.0.0.1:22121");
    ck_assert_uint_eq(p->nservers, 2);
    ck_assert_int_eq(p->servers[1].line, 8);
    ck_assert_int_eq(p->key_rule.hash, HASH_MD5);
    conf_free(c);
}
END_TEST

START_TEST(test_duplicate_key_values)
{
    /* The message names the key and both values, and hides a password. */
    struct conf_errors errs = { 0 };
    const char *w1[] = { "duplicate key 'hash' in [pool a]: 'crc16' here, 'md5' first at line 4" };
    const char *w2[] = { "duplicate key 'redis_auth'", "first at line 7; values not shown" };

    load_bad(POOL_A "hash = md5\nhash = crc16\nredis = true\nredis_auth = one1\n"
                    "redis_auth = two2\n",
             &errs);
    ck_assert_uint_eq(errs.n, 2);
    assert_msg(errs.msgs[0], 5, w1, 1);
    assert_msg(errs.msgs[1], 8, w2, 2);
    ck_assert_ptr_null(strstr(errs.msgs[1], "one1"));
    ck_assert_ptr_null(strstr(errs.msgs[1], "two2"));
    conf_errors_free(&errs);
}
END_TEST

START_TEST(test_long_pool_name)
{
    /* inih keeps only 49 bytes of a section name; the scan keeps all. */
    const char *name = "a-very-long-pool-name-that-inih-would-truncate-to-49-bytes-0123";
    char text[512];
    struct conf *c;

    snprintf(text, sizeof(text),
             "[pool %s]\nlisten = 127.0.0.1:22121\n"
             "server = 10.0.0.1:11211:1\n",
             name);
    c = load_ok(text);
    ck_assert_str_eq(c->pools[0].name, name);
    conf_free(c);
}
END_TEST

START_TEST(test_crlf_and_bom)
{
    struct conf *c = load_ok("\xef\xbb\xbf[pool a]\r\nlisten = 127.0.0.1:22121\r\n"
                             "hash = crc32a ; x\r\nserver = 10.0.0.1:11211:1\r\n");

    ck_assert_int_eq(c->pools[0].key_rule.hash, HASH_CRC32A);
    ck_assert_str_eq(c->pools[0].servers[0].ident, "10.0.0.1");
    conf_free(c);
}
END_TEST

START_TEST(test_load_file)
{
    char dir[] = "/tmp/test_conf.XXXXXX";
    char path[128];
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cachemux.ini", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(POOL_A, f);
    fclose(f);
    ck_assert_int_eq(conf_load(path, &c, &errs), 0);
    ck_assert_str_eq(c->path, path);
    ck_assert_uint_eq(c->npools, 1);
    conf_free(c);

    /* A NUL byte would end the text for inih; the scan reports it. */
    f = fopen(path, "w");
    fwrite(POOL_A "hash = md\0 5\n", 1, sizeof(POOL_A) - 1 + 13, f);
    fclose(f);
    ck_assert_int_eq(conf_load(path, &c, &errs), -1);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(errs.n, 1);
    char want[160];
    snprintf(want, sizeof(want), "%s:4: line contains a NUL byte", path);
    ck_assert_str_eq(errs.msgs[0], want);
    conf_errors_free(&errs);
    unlink(path);

    ck_assert_int_eq(conf_load(path, &c, &errs), -1);
    ck_assert_uint_eq(errs.n, 1);
    snprintf(want, sizeof(want), "%s: cannot open: ", path);
    ck_assert_msg(strncmp(errs.msgs[0], want, strlen(want)) == 0, "got '%s'", errs.msgs[0]);
    conf_errors_free(&errs);
    rmdir(dir);
}
END_TEST

START_TEST(test_parse_addr)
{
    struct conf_addr a;
    char err[128];

    ck_assert_int_eq(conf_value_addr("localhost:22121", false, &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.host, "localhost");
    ck_assert_int_eq(a.port, 22121);
    ck_assert_int_eq(a.perm, -1);
    free(a.host);
    ck_assert_int_eq(conf_value_addr("[fe80::1%eth0]:1", false, &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.host, "fe80::1%eth0");
    free(a.host);
    ck_assert_int_eq(conf_value_addr("/run/c.sock 0600", true, &a, err, sizeof(err)), 0);
    ck_assert(a.is_unix);
    ck_assert_int_eq(a.perm, 0600);
    ck_assert_str_eq(a.host, "/run/c.sock");
    free(a.host);
    ck_assert_int_eq(conf_value_addr("/run/c.sock", true, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.perm, -1);
    free(a.host);

    static const char *const bad[] = {
        "",    "localhost", ":1",         "h:0",   "h:65536",
        "h:x", "::1:22121", "[::1]22121", "h p:1", "h:1 0666",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        ck_assert_msg(conf_value_addr(bad[i], true, &a, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert_msg(err[0] != '\0', "no reason for '%s'", bad[i]);
    }
    ck_assert_int_eq(conf_value_addr("/run/c.sock 0600", false, &a, err, sizeof(err)), -1);
    ck_assert_int_eq(conf_value_addr("/run/c.sock 1777", true, &a, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_errors_add)
{
    struct conf_errors errs = { 0 };

    for (int i = 0; i < 20; i++) {
        conf_errors_add(&errs, "f.ini", i, "m%d", i);
    }
    ck_assert_uint_eq(errs.n, 20);
    ck_assert_str_eq(errs.msgs[0], "f.ini: m0");
    ck_assert_str_eq(errs.msgs[19], "f.ini:19: m19");
    conf_errors_free(&errs);
    ck_assert_uint_eq(errs.n, 0);
}
END_TEST

/* ---- include ---- */

static char tmp_root[64];

static void
tmp_setup(void)
{
    strcpy(tmp_root, "/tmp/test_conf_inc.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_root));
}

static void
tmp_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    ck_assert_int_eq(system(cmd), 0);
}

/* Write text to tmp_root/rel (its directories made first); returns the path. */
static const char *
put(const char *rel, const char *text)
{
    static char path[8][256];
    static int slot;
    char *p = path[slot++ % 8];
    FILE *f;

    snprintf(p, 256, "%s/%s", tmp_root, rel);
    for (char *q = p + strlen(tmp_root) + 1; (q = strchr(q, '/')) != NULL; q++) {
        *q = '\0';
        mkdir(p, 0700);
        *q = '/';
    }
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static struct conf *
load_file_ok(const char *path)
{
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    int rc = conf_load(path, &c, &errs);

    if (rc != 0) {
        dump_errors(&errs);
    }
    ck_assert_int_eq(rc, 0);
    conf_errors_free(&errs);
    return c;
}

/* Load path, which must fail with exactly the messages want (NULL-ended),
 * each "REL:LINE: text" with REL relative to tmp_root. */
static void
load_file_bad(const char *path, const char *const *want)
{
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    size_t n = 0;

    ck_assert_int_eq(conf_load(path, &c, &errs), -1);
    for (; want[n] != NULL; n++) {
        char full[512];
        snprintf(full, sizeof(full), "%s/%s", tmp_root, want[n]);
        if (n >= errs.n || strncmp(errs.msgs[n], full, strlen(full)) != 0) {
            dump_errors(&errs);
            ck_abort_msg("message %zu: want '%s...'", n, full);
        }
    }
    if (errs.n != n) {
        dump_errors(&errs);
    }
    ck_assert_uint_eq(errs.n, n);
    conf_errors_free(&errs);
}

START_TEST(test_include_file)
{
    const char *main_path;
    struct conf *c;
    char want[256];

    tmp_setup();
    put("pools/a.ini", "; pool a\n[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\n");
    put("pools/b.ini", "[pool b]\nlisten = 127.0.0.1:2\nserver = h:1:1\n");
    /* The include sits in [cachemux]; after it the file is still there. */
    main_path = put("main.ini", "[cachemux]\nworkers = 2\ninclude = pools/a.ini\n"
                                "log_level = 6\n  include = \"pools/b.ini\"\n");
    c = load_file_ok(main_path);
    ck_assert_int_eq(c->workers, 2);
    ck_assert_int_eq(c->log_level, 6);
    ck_assert_uint_eq(c->npools, 2);
    snprintf(want, sizeof(want), "%s/pools/a.ini", tmp_root);
    ck_assert_str_eq(conf_pool_find(c, "a")->file, want);
    ck_assert_int_eq(conf_pool_find(c, "a")->line, 2);
    ck_assert_int_eq(conf_pool_find(c, "a")->servers[0].line, 4);
    ck_assert_str_eq(c->path, main_path);
    conf_free(c);

    /* From text in memory, relative includes start from path's directory. */
    struct conf_errors errs = { 0 };
    ck_assert_int_eq(conf_load_string(main_path, "include = pools/b.ini\n", &c, &errs), 0);
    ck_assert_str_eq(c->pools[0].name, "b");
    conf_free(c);

    /* An absolute path, and an INI file may include a nutcracker YAML file. */
    put("nut.yml", "y:\n  listen: 127.0.0.1:3\n  servers:\n   - h:1:1\n");
    snprintf(want, sizeof(want), "include = %s/nut.yml\n", tmp_root);
    main_path = put("abs.ini", want);
    c = load_file_ok(main_path);
    ck_assert_str_eq(c->pools[0].name, "y");
    conf_free(c);
    tmp_teardown();
}
END_TEST

START_TEST(test_include_dir)
{
    const char *main_path;
    struct conf *c;

    tmp_setup();
    put("conf.d/20-b.ini", "[pool b]\nlisten = 127.0.0.1:2\nserver = h:1:1\n");
    put("conf.d/10-a.ini", "[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\n");
    put("conf.d/.10-a.ini.swp", "garbage\n");
    put("conf.d/NOTES", "garbage\n");         /* not *.ini: skipped */
    put("conf.d/sub.ini/x.ini", "garbage\n"); /* a directory named *.ini: skipped */
    main_path = put("main.ini", "[cachemux]\nworkers = 1\ninclude = conf.d/\n");
    c = load_file_ok(main_path);
    ck_assert_uint_eq(c->npools, 2);
    conf_free(c);

    /* Name order decides which of two copies comes first. */
    put("conf.d/30-a.ini", "[pool a]\nlisten = 127.0.0.1:3\nserver = h:1:1\n");
    main_path = put("main.ini", "include = conf.d\n");
    static const char *const want[] = {
        "conf.d/30-a.ini:1: duplicate section [pool a] (first at ",
        NULL,
    };
    load_file_bad(main_path, want);

    /* An empty directory is no error, but no pool is. */
    put("empty/x.txt", "");
    main_path = put("main.ini", "include = empty\n");
    static const char *const want2[] = { "main.ini: no pools defined", NULL };
    load_file_bad(main_path, want2);
    tmp_teardown();
}
END_TEST

START_TEST(test_include_errors)
{
    const char *main_path;

    tmp_setup();
    /* An included file starts outside any section; its errors name it. */
    put("p/a.ini", "listen = 127.0.0.1:1\n[pool a]\nlisten = 127.0.0.1:1\nbogus = 1\n"
                   "server = h:1:1\n");
    put("p/b.ini", "[pool b]\nlisten = 127.0.0.1:1\nserver = h:1:1\n");
    main_path = put("main.ini",
                    "[pool m]\nlisten = 127.0.0.1:9\nhash = nope\n"
                    "include = p/a.ini\nserver = h:1:1\ninclude = p/b.ini\ninclude = p/zz.ini\n");
    static const char *const want[] = {
        "main.ini:3: invalid value 'nope' for 'hash'",
        "main.ini:7: include '", /* ...p/zz.ini': cannot open */
        "p/a.ini:1: key 'listen' is outside any section (expected under [cachemux] or "
        "[pool NAME]; an included file opens its own)",
        "p/a.ini:4: unknown key 'bogus' in [pool a]",
        "p/b.ini:2: listen '127.0.0.1:1' in [pool b] is already used by [pool a] (",
        NULL,
    };
    load_file_bad(main_path, want);
    tmp_teardown();
}
END_TEST

START_TEST(test_include_cycle)
{
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    const char *main_path;
    char want[512];

    tmp_setup();
    put("a.ini", "[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\ninclude = d/b.ini\n");
    put("d/b.ini", "\ninclude = ../a.ini\n");
    main_path = put("a.ini", "[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\n"
                             "include = d/b.ini\n");
    ck_assert_int_eq(conf_load(main_path, &c, &errs), -1);
    ck_assert_uint_eq(errs.n, 1);
    snprintf(want, sizeof(want),
             "%s/d/b.ini:2: include cycle: %s/a.ini -> %s/d/b.ini -> "
             "%s/d/../a.ini",
             tmp_root, tmp_root, tmp_root, tmp_root);
    ck_assert_str_eq(errs.msgs[0], want);
    conf_errors_free(&errs);

    /* A file including itself. */
    main_path = put("self.ini", "include = self.ini\n" POOL_A);
    ck_assert_int_eq(conf_load(main_path, &c, &errs), -1);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], ":1: include cycle: "));
    conf_errors_free(&errs);

    /* A chain deeper than CONF_FILE_MAX_DEPTH. */
    for (int i = 0; i <= CONF_FILE_MAX_DEPTH + 1; i++) {
        char name[32], text[64];
        snprintf(name, sizeof(name), "deep/%02d.ini", i);
        snprintf(text, sizeof(text), "include = %02d.ini\n", i + 1);
        put(name, i == CONF_FILE_MAX_DEPTH + 1 ? POOL_A : text);
    }
    snprintf(want, sizeof(want), "%s/deep/00.ini", tmp_root);
    ck_assert_int_eq(conf_load(want, &c, &errs), -1);
    ck_assert_uint_eq(errs.n, 2); /* and no pools, then */
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "nested more than 16 deep"));
    conf_errors_free(&errs);
    tmp_teardown();
}
END_TEST

/* ---- the scan alone ---- */

START_TEST(test_scan)
{
    static const char text[] = "; c\n"                     /* 1 */
                               "[cachemux]\n"              /* 2 */
                               "workers = 2 ; two\n"       /* 3 */
                               "[pool a]\n"                /* 4 */
                               "server = x:1:1\n"          /* 5 */
                               "  ok = \"indented\" ; c\n" /* 6 */
                               "server = y:1:1\n"          /* 7 */
                               "[pool a]\n"                /* 8 */
                               "server = z:1:1\n"          /* 9 */
                               "no equals here\n"          /* 10 */
                               "[broken\n"                 /* 11 */
                               "k=v";                      /* 12, no final newline */
    struct conf_scan s;

    ck_assert_int_eq(conf_scan_text(text, strlen(text), &s), 0);
    ck_assert_int_eq(s.nlines, 12);
    ck_assert_uint_eq(s.nsections, 4);
    ck_assert_str_eq(s.sections[1].name, "pool a");
    ck_assert_int_eq(s.sections[2].line, 8);
    ck_assert(s.sections[3].bad);
    ck_assert_uint_eq(s.nentries, 6);
    ck_assert_int_eq(conf_scan_line(&s, 0, "workers", 0), 3);
    ck_assert_str_eq(s.entries[0].value, "2");
    ck_assert_str_eq(s.entries[2].key, "ok");
    ck_assert_str_eq(s.entries[2].value, "indented");
    ck_assert_int_eq(conf_scan_line(&s, 1, "server", 0), 5);
    ck_assert_int_eq(conf_scan_line(&s, 1, "server", 1), 7);
    ck_assert_int_eq(conf_scan_line(&s, 2, "server", 0), 9);
    ck_assert_int_eq(conf_scan_line(&s, 2, "server", 1), 0);
    ck_assert_int_eq(conf_scan_line(&s, 3, "k", 0), 12);
    ck_assert_int_eq(conf_scan_line(&s, 1, "ok", 0), 6);
    ck_assert_uint_eq(s.nissues, 2);
    ck_assert_int_eq(s.issues[0].line, 10);
    ck_assert_int_eq(s.issues[1].line, 11);
    /* inih gets no values, so no line of its comes near its 199 bytes */
    ck_assert_str_eq(s.clean, "\n[0]\nworkers =\n[1]\nserver =\nok =\nserver =\n"
                              "[2]\nserver =\n\n[3]\nk =\n");
    ck_assert_int_eq(conf_scan_section_index(&s, ""), -1);
    ck_assert_int_eq(conf_scan_section_index(&s, "2"), 2);
    ck_assert_int_eq(conf_scan_section_index(&s, "4"), -2);
    ck_assert_int_eq(conf_scan_section_index(&s, "pool a"), -2);
    conf_scan_free(&s);
}
END_TEST

/* deny_commands: names of the pool's protocol, any case, resolved to bits */
START_TEST(test_deny_commands)
{
    struct conf *c = load_ok(POOL_A "redis = true\ndeny_commands =  KEYS flushall\tFlushDB \n");
    const struct conf_pool *p = &c->pools[0];
    const struct redis_cmd *keys = redis_cmd_lookup((const uint8_t *)"keys", 4);
    const struct redis_cmd *get = redis_cmd_lookup((const uint8_t *)"get", 3);
    const struct redis_cmd *fa = redis_cmd_lookup((const uint8_t *)"flushall", 8);
    const struct redis_cmd *fd = redis_cmd_lookup((const uint8_t *)"flushdb", 7);

    ck_assert(CONF_DENIED(p, redis_cmd_index(keys)));
    ck_assert(CONF_DENIED(p, redis_cmd_index(fa)));
    ck_assert(CONF_DENIED(p, redis_cmd_index(fd)));
    ck_assert(!CONF_DENIED(p, redis_cmd_index(get)));
    conf_free(c);

    c = load_ok(POOL_A "deny_commands = flush_all stats\n");
    ck_assert(CONF_DENIED(&c->pools[0], MC_FLUSH_ALL));
    ck_assert(CONF_DENIED(&c->pools[0], MC_STATS));
    ck_assert(!CONF_DENIED(&c->pools[0], MC_GET));
    conf_free(c);
}
END_TEST

/* ---- broken configs ---- */

struct bad_case {
    const char *text;
    int line;            /* 0: a file-wide message "t.ini: ..." */
    const char *want[4]; /* substrings the one message must contain */
};

static const struct bad_case bad_cases[] = {
    { POOL_A "redis = true\ndeny_commands = keys nosuch\n",
      5,
      { "'deny_commands' of [pool a]: 'nosuch' is not a redis command" } },
    { POOL_A "redis = true\ndeny_commands = AUTH\n", 5, { "'AUTH' is not a redis command" } },
    { POOL_A "redis = true\ndeny_commands = hello\n", 5, { "'hello' is not a redis command" } },
    { POOL_A "deny_commands = quit\n", 4, { "'quit' is not a memcached command" } },
    { POOL_A "deny_commands = keys\n", 4, { "'keys' is not a memcached command" } },
    { "[pool alpha]\nlisten = 127.0.0.1:22121\nhashh = md5\nserver = 10.0.0.1:11211:1\n",
      3,
      { "unknown key 'hashh' in [pool alpha]" } },
    { "[cachemux]\nworker = 4\n" POOL_A, 2, { "unknown key 'worker' in [cachemux]" } },
    { "[cachemux]\n[poolx]\nfoo = 1\n" POOL_A, 2, { "unknown section [poolx]" } },
    { "[Cachemux]\n" POOL_A, 1, { "unknown section [Cachemux]" } },
    { "listen = 127.0.0.1:1\n" POOL_A, 1, { "key 'listen'", "outside any section" } },
    { POOL_A "hash = md5\nhash = crc16\n",
      5,
      { "duplicate key 'hash'", "'crc16' here, 'md5' first at line 4" } },
    { POOL_A "[pool a]\nlisten = 127.0.0.1:22122\nserver = 10.0.0.2:11211:1\n",
      4,
      { "duplicate section [pool a]", "first at line 1" } },
    { "[cachemux]\n[cachemux]\n" POOL_A, 2, { "duplicate section [cachemux]" } },
    { "[pool a]\nserver = 10.0.0.1:11211:1\n", 1, { "missing 'listen' in [pool a]" } },
    { "[pool a]\nlisten = 127.0.0.1:22121\n", 1, { "missing 'server' in [pool a]" } },
    { POOL_A "server = 10.0.0.2:6379:0 s2\n",
      4,
      { "invalid value '10.0.0.2:6379:0 s2' for 'server'", "zero weight" } },
    { POOL_A "server = 10.0.0.2:6379:1000001\n", 4, { "'10.0.0.2:6379:1000001'", "weight" } },
    { "[pool a]\nlisten = 127.0.0.1:22121\nserver = 10.0.0.1:6379:1 s1\n"
      "server = 10.0.0.2:6379:1 s1\n",
      4,
      { "duplicate server identity 's1' for 'server'", "first at line 3" } },
    { "[pool a]\nlisten = 127.0.0.1:22121\nserver = 10.0.0.1:11211:1\n"
      "server = 10.0.0.1:11211:2\n",
      4,
      { "duplicate server identity '10.0.0.1'" } },
    { POOL_A "[pool b]\nlisten = 127.0.0.1:22121\nserver = 10.0.0.2:11211:1\n",
      5,
      { "listen '127.0.0.1:22121' in [pool b] is already used by [pool a]" } },
    { "[pool a]\nlisten = /tmp/x.sock\nserver = h:1:1\n"
      "[pool b]\nlisten = /tmp/x.sock 0600\nserver = h:1:1\n",
      5,
      { "listen '/tmp/x.sock 0600'", "[pool a]" } },
    { POOL_A "  hash = md6\n", 4, { "invalid value 'md6' for 'hash'" } },
    { POOL_A "\tserver = 10.0.0.2:11211:0\n", 4, { "'10.0.0.2:11211:0'", "zero weight" } },
    { POOL_A "an_unknown_key_that_is_longer_than_any_key_could_ever_be_0123456789 = 1\n",
      4,
      { "unknown key 'an_unknown_key", "no key is longer than 64" } },
    { POOL_A "include =\n", 4, { "include needs a path" } },
    { POOL_A "include = /nonexistent/cachemux.d\n",
      4,
      { "include '/nonexistent/cachemux.d': cannot open: No such file or directory" } },
    { POOL_A "timeout = abc\n", 4, { "invalid value 'abc' for 'timeout'", "0..2147483647" } },
    { POOL_A "timeout = 2147483648\n", 4, { "'2147483648'", "'timeout'" } },
    { POOL_A "backlog = -1\n", 4, { "invalid value '-1' for 'backlog'" } },
    { POOL_A "redis_db = 1.5\n", 4, { "invalid value '1.5' for 'redis_db'" } },
    { "[cachemux]\nmbuf_size = 511\n" POOL_A,
      2,
      { "invalid value '511' for 'mbuf_size'", "512..16777216" } },
    { "[cachemux]\nmbuf_size = 16777217\n" POOL_A, 2, { "'16777217'", "'mbuf_size'" } },
    { "[cachemux]\nmax_request_size = 0\n" POOL_A, 2, { "'0'", "'max_request_size'" } },
    { "[cachemux]\nworkers = 0\n" POOL_A, 2, { "'0'", "'workers'", "auto" } },
    { "[cachemux]\nworkers = many\n" POOL_A, 2, { "'many'", "'workers'" } },
    { "[cachemux]\nlog_level = 12\n" POOL_A, 2, { "'12'", "'log_level'", "0..11" } },
    { "[cachemux]\nshutdown_timeout = soon\n" POOL_A, 2, { "'soon'", "'shutdown_timeout'" } },
    { "[cachemux]\nstats_listen = localhost\n" POOL_A,
      2,
      { "'localhost'", "'stats_listen'", "port" } },
    { "[cachemux]\nmetrics_listen = /tmp/m.sock\n" POOL_A,
      2,
      { "'/tmp/m.sock'", "'metrics_listen'", "unix" } },
    { "[cachemux]\nlog_file =\n" POOL_A, 2, { "invalid value '' for 'log_file'" } },
    { POOL_A "hash = fnv9\n",
      4,
      { "invalid value 'fnv9' for 'hash' (expected one of: one_at_a_time md5 crc16 crc32 "
        "crc32a fnv1_64 fnv1a_64 fnv1_32 fnv1a_32 hsieh murmur jenkins)" } },
    { POOL_A "hash =\n", 4, { "invalid value '' for 'hash'" } },
    { POOL_A "distribution = ring\n",
      4,
      { "invalid value 'ring' for 'distribution'", "ketama modula random" } },
    { POOL_A "hash_tag = {\n", 4, { "invalid value '{' for 'hash_tag'", "two characters" } },
    { POOL_A "hash_tag = \"{}}\"\n", 4, { "invalid value '{}}' for 'hash_tag'" } },
    { POOL_A "redis = yes\n", 4, { "invalid value 'yes' for 'redis'", "true or false" } },
    { POOL_A "preconnect = TRUE\n", 4, { "'TRUE'", "'preconnect'" } },
    { POOL_A "redis_auth = s3cret\n", 4, { "'redis_auth'", "redis = true" } },
    { POOL_A "redis = true\nredis_auth = \"\"\n", 5, { "invalid value '' for 'redis_auth'" } },
    { POOL_A "server_connections = 0\n",
      4,
      { "invalid value '0' for 'server_connections'", "1..2147483647" } },
    { "[pool a]\nlisten = 127.0.0.1\nserver = h:1:1\n",
      2,
      { "invalid value '127.0.0.1' for 'listen'", "port" } },
    { "[pool a]\nlisten = 127.0.0.1:70000\nserver = h:1:1\n",
      2,
      { "invalid value '127.0.0.1:70000' for 'listen'", "1..65535" } },
    { "[pool a]\nlisten = ::1:22121\nserver = h:1:1\n", 2, { "'::1:22121'", "brackets" } },
    { "[pool a]\nlisten = [::1:22121\nserver = h:1:1\n", 2, { "'[::1:22121'", "'listen'" } },
    { "[pool a]\nlisten = /tmp/a.sock 0999\nserver = h:1:1\n",
      2,
      { "invalid value '/tmp/a.sock 0999' for 'listen'", "octal" } },
    { "[pool a]\nlisten = 127.0.0.1:1 0666\nserver = h:1:1\n",
      2,
      { "'127.0.0.1:1 0666'", "unix" } },
    { POOL_A "server = 10.0.0.2:6379\n",
      4,
      { "invalid value '10.0.0.2:6379' for 'server'", "host:port:weight" } },
    { POOL_A "server = 10.0.0.2:0:1\n", 4, { "'10.0.0.2:0:1'", "invalid port '0'" } },
    { POOL_A "server = 10.0.0.2:6379:x\n", 4, { "'10.0.0.2:6379:x'", "invalid weight 'x'" } },
    { POOL_A "server = 10.0.0.2:6379:1 two words\n", 4, { "'10.0.0.2:6379:1 two words'" } },
    { POOL_A "server 10.0.0.2:11211:1\n",
      4,
      { "expected 'key = value' or a [section] header", "'server 10.0.0.2:11211:1'" } },
    { POOL_A "hash: md5\n", 4, { "'hash: md5'", "':' is not a delimiter" } },
    { POOL_A "= md5\n", 4, { "missing key before '='", "'= md5'" } },
    { "\xef\xbb\xbf\xef\xbb\xbfworkers = 1\n" POOL_A, 1, { "invalid character in key" } },
    { POOL_A "hash\x01 = md5\n", 4, { "invalid character in key" } },
    { "[cachemux\n" POOL_A, 1, { "malformed section header '[cachemux'", "']'" } },
    { "[pool b] junk\nlisten = 127.0.0.1:1\n" POOL_A, 1, { "'[pool b] junk'" } },
    { "[pool]\nlisten = 127.0.0.1:1\n" POOL_A, 1, { "invalid pool name in [pool]" } },
    { "[pool a b]\n" POOL_A, 1, { "invalid pool name in [pool a b]" } },
    { "[pool a[b]\nlisten = 127.0.0.1:1\n" POOL_A,
      1,
      { "invalid pool name in [pool a[b]", "brackets" } },
    { "", 0, { "no pools defined" } },
    { "; only a comment\n[cachemux]\nworkers = 2\n", 0, { "no pools defined" } },
};

START_TEST(test_bad_config)
{
    const struct bad_case *bc = &bad_cases[_i];
    struct conf_errors errs = { 0 };

    load_bad(bc->text, &errs);
    if (errs.n != 1) {
        dump_errors(&errs);
    }
    ck_assert_uint_eq(errs.n, 1);
    assert_msg(errs.msgs[0], bc->line, bc->want, ARRAY_SIZE(bc->want));
    conf_errors_free(&errs);
}
END_TEST

START_TEST(test_long_line)
{
    struct conf_errors errs = { 0 };
    const char *want[] = { "line is 65537 bytes long (the limit is 65536)" };
    char *text = long_line_config(POOL_A, ";", CONF_MAX_LINE, 'x'); /* one byte too many */

    load_bad(text, &errs);
    ck_assert_uint_eq(errs.n, 1);
    assert_msg(errs.msgs[0], 4, want, 1);
    conf_errors_free(&errs);
    free(text);
}
END_TEST

START_TEST(test_long_header_line)
{
    /* A header too long to read must still end the previous section. */
    struct conf_errors errs = { 0 };
    const char *want[] = { "bytes long" };
    char *text = long_line_config(POOL_A, "[pool ", CONF_MAX_LINE, 'x');
    char *more = malloc(strlen(text) + 64);

    ck_assert_ptr_nonnull(more);
    strcpy(more, text);
    strcpy(more + strlen(more) - 1, "]\nhash = md5\nlisten = 127.0.0.1:1\n");
    load_bad(more, &errs);
    if (errs.n != 1) {
        dump_errors(&errs);
    }
    ck_assert_uint_eq(errs.n, 1);
    assert_msg(errs.msgs[0], 4, want, 1);
    conf_errors_free(&errs);
    free(more);
    free(text);
}
END_TEST

START_TEST(test_three_errors)
{
    struct conf_errors errs = { 0 };
    const char *w1[] = { "invalid value 'fnv9' for 'hash'" };
    const char *w2[] = { "invalid value '10.0.0.1:6379:0' for 'server'", "zero weight" };
    const char *w3[] = { "invalid value 'soon' for 'timeout'" };

    load_bad("[pool a]\n"
             "listen = 127.0.0.1:22121\n"
             "hash = fnv9\n"
             "server = 10.0.0.1:6379:0\n"
             "  timeout = soon\n"
             "server = 10.0.0.2:6379:1\n",
             &errs);
    if (errs.n != 3) {
        dump_errors(&errs);
    }
    ck_assert_uint_eq(errs.n, 3);
    assert_msg(errs.msgs[0], 3, w1, 1);
    assert_msg(errs.msgs[1], 4, w2, 2);
    assert_msg(errs.msgs[2], 5, w3, 1);
    conf_errors_free(&errs);
}
END_TEST

START_TEST(test_errors_sorted_across_pools)
{
    /* Whole-pool checks run after inih, yet messages come out in line order. */
    struct conf_errors errs = { 0 };
    const char *w1[] = { "missing 'server' in [pool a]" };
    const char *w2[] = { "'bogus'" };
    const char *w3[] = { "missing 'listen' in [pool b]" };
    const char *w4[] = { "'preconnect'" };
    const char *w5[] = { "no such thing", "expected" };

    load_bad("[pool a]\nlisten = 127.0.0.1:1\nbogus = 1\n"
             "[pool b]\nserver = h:1:1\npreconnect = maybe\nno such thing\n",
             &errs);
    if (errs.n != 5) {
        dump_errors(&errs);
    }
    ck_assert_uint_eq(errs.n, 5);
    assert_msg(errs.msgs[0], 1, w1, 1);
    assert_msg(errs.msgs[1], 3, w2, 1);
    assert_msg(errs.msgs[2], 4, w3, 1);
    assert_msg(errs.msgs[3], 6, w4, 1);
    assert_msg(errs.msgs[4], 7, w5, 2);
    conf_errors_free(&errs);
}
END_TEST

START_TEST(test_secret_not_shown)
{
    struct conf_errors errs = { 0 };

    load_bad(POOL_A "redis_auth = hunter2\n", &errs);
    for (size_t i = 0; i < errs.n; i++) {
        ck_assert_ptr_null(strstr(errs.msgs[i], "hunter2"));
    }
    conf_errors_free(&errs);
}
END_TEST

START_TEST(test_dup_section_values_checked)
{
    /* A duplicate section's bad values are reported too, so one run shows all. */
    struct conf_errors errs = { 0 };
    const char *w1[] = { "duplicate section [pool a]" };
    const char *w2[] = { "'fnv9'" };

    load_bad(POOL_A "[pool a]\nhash = fnv9\n", &errs);
    ck_assert_uint_eq(errs.n, 2);
    assert_msg(errs.msgs[0], 4, w1, 1);
    assert_msg(errs.msgs[1], 5, w2, 1);
    conf_errors_free(&errs);
}
END_TEST

/*
 * Random mixes of good, broken and garbage lines: no crash (run under ASan),
 * success exactly when there is no message, every message carries the file
 * name, and the scan and inih never disagree.
 */
START_TEST(test_random_configs)
{
    // clang-format off
    static const char *const lines[] = {
        "[cachemux]", "[pool a]", "[pool b]", "[pool a", "[]", "[x] y", "listen = 127.0.0.1:1",
        "listen = 127.0.0.1:2", "listen = /tmp/s 0600", "server = h:1:1", "server = h:1:1 n",
        "server = /p:2", "server = h:11211:0", "hash = md5", "hash = x", "hash_tag = \"{}\"",
        "redis = true", "redis_auth = a ; c", "workers = 2", "workers = auto", "  k = v",
        "\tk", "k:v", "k=v:w", "=", " ", "", "; c", "# c", "a ;= b", "key = \"'", "\r",
        "timeout = 99999999999999999999999", "[pool a] ; c", "x = [y]", "server=h:1:1;x",
        "\xef\xbb\xbfhash = md5", "mbuf_size = 512",
    };
    // clang-format on
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    char text[4096];

    for (int round = 0; round < 400; round++) {
        size_t n = 0, nlines = util_rand64(&rng) % 12;
        for (size_t i = 0; i < nlines; i++) {
            uint64_t r = util_rand64(&rng);
            if (r % 5 == 0) {
                size_t len = (r >> 8) % 40;
                for (size_t j = 0; j < len; j++) {
                    char ch = (char)(util_rand64(&rng) % 255 + 1);
                    text[n++] = ch;
                }
            } else {
                const char *l = lines[(r >> 8) % ARRAY_SIZE(lines)];
                memcpy(text + n, l, strlen(l));
                n += strlen(l);
            }
            text[n++] = (r >> 20) % 4 == 0 ? '\r' : '\n';
            if (text[n - 1] == '\r') {
                text[n++] = '\n';
            }
        }
        text[n] = '\0';
        struct conf_errors errs = { 0 };
        struct conf *c = NULL;
        int rc = conf_load_string("t.ini", text, &c, &errs);
        ck_assert_int_eq(rc == 0, errs.n == 0);
        ck_assert_int_eq(rc == 0, c != NULL);
        for (size_t i = 0; i < errs.n; i++) {
            ck_assert_msg(strncmp(errs.msgs[i], "t.ini", 5) == 0, "%s", errs.msgs[i]);
            ck_assert_msg(strstr(errs.msgs[i], "internal error") == NULL, "%s\n---\n%s",
                          errs.msgs[i], text);
        }
        conf_free(c);
        conf_errors_free(&errs);
    }
}
END_TEST

/* ---- TLS keys ---- */

START_TEST(test_tls_keys)
{
    struct conf *c = load_ok("[cachemux]\ntls_handshake_timeout = 2500\ntls_max_handshakes = 7\n"
                             "[pool a]\nlisten = 127.0.0.1:22121\nserver = 10.0.0.1:6379:1\n"
                             "tls = true\ntls_cert_file = /c.pem\ntls_key_file = /k.pem\n"
                             "tls_ca_file = /ca.pem\ntls_verify_client = true\n"
                             "tls_protocols = TLSv1.3\ntls_ciphers = HIGH\n"
                             "tls_ciphersuites = TLS_AES_128_GCM_SHA256\n"
                             "tls_session_cache = false\ntls_ktls = true\n"
                             "server_tls = true\nserver_tls_ca_file = /sca.pem\n"
                             "server_tls_verify = false\nserver_tls_name = cache.example\n"
                             "server_tls_cert_file = /sc.pem\nserver_tls_key_file = /sk.pem\n");
    const struct conf_pool *p = &c->pools[0];

    ck_assert_uint_eq(c->tls_handshake_timeout_ms, 2500);
    ck_assert_uint_eq(c->tls_max_handshakes, 7);
    ck_assert(p->tls.on);
    ck_assert_str_eq(p->tls.cert_file.path, "/c.pem");
    ck_assert_int_eq(p->tls.cert_file.line, 8);
    ck_assert_str_eq(p->tls.key_file.path, "/k.pem");
    ck_assert_int_eq(p->tls.key_file.line, 9);
    ck_assert_str_eq(p->tls.ca_file.path, "/ca.pem");
    ck_assert(p->tls.verify_client);
    ck_assert_uint_eq(p->tls.protocols, CONF_TLS_V13);
    ck_assert_str_eq(p->tls.ciphers, "HIGH");
    ck_assert_int_eq(p->tls.ciphers_line, 13);
    ck_assert_str_eq(p->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
    ck_assert(!p->tls.session_cache);
    ck_assert(p->tls.ktls);
    ck_assert_int_eq(p->tls.line, 7);
    ck_assert(p->server_tls.on);
    ck_assert_str_eq(p->server_tls.ca_file.path, "/sca.pem");
    ck_assert(!p->server_tls.verify);
    ck_assert_str_eq(p->server_tls.name, "cache.example");
    ck_assert_str_eq(p->server_tls.cert_file.path, "/sc.pem");
    ck_assert_int_eq(p->server_tls.key_file.line, 22);

    /* --dump-conf writes every TLS key and loads again to the same pool. */
    char *dump = conf_dump(c);
    ck_assert_ptr_nonnull(dump);
    ck_assert_ptr_nonnull(strstr(dump, "tls_protocols = TLSv1.3\n"));
    struct conf *d = load_ok(dump);
    ck_assert(conf_pool_equal(&c->pools[0], &d->pools[0]));
    free(dump);
    conf_free(d);
    conf_free(c);

    /* Defaults: off; TLSv1.2 and TLSv1.3; tickets on; servers verified. */
    c = load_ok(POOL_A);
    p = &c->pools[0];
    ck_assert(!p->tls.on && !p->server_tls.on);
    ck_assert_uint_eq(p->tls.protocols, CONF_TLS_V12 | CONF_TLS_V13);
    ck_assert(p->tls.session_cache);
    ck_assert(p->server_tls.verify);
    ck_assert_uint_eq(c->tls_handshake_timeout_ms, CONF_DEFAULT_TLS_HANDSHAKE_TIMEOUT);
    ck_assert_uint_eq(c->tls_max_handshakes, CONF_DEFAULT_TLS_MAX_HANDSHAKES);
    dump = conf_dump(c);
    ck_assert_ptr_null(strstr(dump, "\ntls_session_cache")); /* it would need tls = true */
    ck_assert_ptr_null(strstr(dump, "\nserver_tls_verify"));
    free(dump);
    conf_free(c);
}
END_TEST

START_TEST(test_tls_protocols)
{
    uint32_t b = 0;
    char err[128];

    ck_assert_int_eq(conf_tls_protocols("TLSv1.2 TLSv1.3", &b, err, sizeof(err)), 0);
    ck_assert_uint_eq(b, CONF_TLS_V12 | CONF_TLS_V13);
    ck_assert_int_eq(conf_tls_protocols("  TLSv1.3\tTLSv1.2 ", &b, err, sizeof(err)), 0);
    ck_assert_uint_eq(b, CONF_TLS_V12 | CONF_TLS_V13);
    ck_assert_int_eq(conf_tls_protocols("TLSv1.2", &b, err, sizeof(err)), 0);
    ck_assert_uint_eq(b, CONF_TLS_V12);
    ck_assert_int_eq(conf_tls_protocols("TLSv1.1", &b, err, sizeof(err)), -1);
    ck_assert_int_eq(conf_tls_protocols("TLSv1.3,TLSv1.2", &b, err, sizeof(err)), -1);
    ck_assert_int_eq(conf_tls_protocols("tlsv1.3", &b, err, sizeof(err)), -1);
    ck_assert_int_eq(conf_tls_protocols(" ", &b, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_tls_errors)
{
    struct conf_errors errs = { 0 };

    load_bad("[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\n"
             "tls = true\n"                 /* 4: no cert or key */
             "tls_verify_client = true\n"   /* 5: no CA */
             "tls_protocols = SSLv3\n"      /* 6 */
             "server_tls_name = x\n"        /* 7: server_tls is off */
             "tls_session_cache = maybe\n", /* 8 */
             &errs);
    ck_assert_uint_eq(errs.n, 5);
    assert_msg(
        errs.msgs[0], 4,
        (const char *[]){ "'tls = true' in [pool a] needs tls_cert_file and tls_key_file", NULL },
        2);
    assert_msg(errs.msgs[1], 5, (const char *[]){ "tls_verify_client", "needs tls_ca_file" }, 2);
    assert_msg(errs.msgs[2], 6, (const char *[]){ "'SSLv3'", "TLSv1.2 and/or TLSv1.3" }, 2);
    assert_msg(errs.msgs[3], 7,
               (const char *[]){ "'server_tls_name' is set but server_tls is not true" }, 1);
    assert_msg(errs.msgs[4], 8, (const char *[]){ "tls_session_cache", "true or false" }, 2);
    conf_errors_free(&errs);

    load_bad("[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\n"
             "tls_cert_file = /c.pem\n"
             "server_tls = true\nserver_tls_cert_file = /c.pem\n",
             &errs);
    ck_assert_uint_eq(errs.n, 2);
    assert_msg(errs.msgs[0], 4, (const char *[]){ "'tls_cert_file' is set but tls is not true" },
               1);
    assert_msg(errs.msgs[1], 6,
               (const char *[]){ "server_tls_cert_file and server_tls_key_file go together" }, 1);
    conf_errors_free(&errs);

    load_bad("[cachemux]\ntls_max_handshakes = 0\ntls_handshake_timeout = 0\n" POOL_A, &errs);
    ck_assert_uint_eq(errs.n, 2);
    conf_errors_free(&errs);
}
END_TEST

static Suite *
conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("valid");

    tcase_add_test(tc, test_full_config);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_workers_auto);
    tcase_add_test(tc, test_quotes_and_comments);
    tcase_add_test(tc, test_identities_and_order);
    tcase_add_test(tc, test_pool_order);
    tcase_add_test(tc, test_line_limits);
    tcase_add_test(tc, test_indented_lines);
    tcase_add_test(tc, test_long_pool_name);
    tcase_add_test(tc, test_crlf_and_bom);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_parse_addr);
    tcase_add_test(tc, test_errors_add);
    tcase_add_test(tc, test_scan);
    tcase_add_test(tc, test_tls_keys);
    tcase_add_test(tc, test_tls_protocols);
    suite_add_tcase(s, tc);

    tc = tcase_create("include");
    tcase_add_test(tc, test_include_file);
    tcase_add_test(tc, test_include_dir);
    tcase_add_test(tc, test_include_errors);
    tcase_add_test(tc, test_include_cycle);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_bad_config, 0, (int)ARRAY_SIZE(bad_cases));
    tcase_add_test(tc, test_long_line);
    tcase_add_test(tc, test_long_header_line);
    tcase_add_test(tc, test_duplicate_key_values);
    tcase_add_test(tc, test_three_errors);
    tcase_add_test(tc, test_errors_sorted_across_pools);
    tcase_add_test(tc, test_deny_commands);
    tcase_add_test(tc, test_secret_not_shown);
    tcase_add_test(tc, test_dup_section_values_checked);
    tcase_add_test(tc, test_random_configs);
    tcase_add_test(tc, test_tls_errors);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(conf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
