/*
 * Unit tests for nutcracker YAML configurations (conf_yaml through conf):
 * twemproxy's own example loads with nutcracker's meaning; YAML and the
 * equivalent INI load the same struct conf, field by field; --convert's
 * INI loads the same struct again and converting twice gives the same
 * text; --dump-conf is the same text for both; and broken YAML (tabs, bad
 * indentation, unknown keys, duplicate pools, non-string servers, empty and
 * oversized files, what nutcracker refuses) gets FILE:LINE messages.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf_scan.h"
#include "conf_yaml.h"
#include "util.h"

/* The Debian nutcracker package's examples/nutcracker.yml, as shipped. */
static const char nutcracker_example[] = "alpha:\n"
                                         "  listen: 127.0.0.1:22121\n"
                                         "  hash: fnv1a_64\n"
                                         "  distribution: ketama\n"
                                         "  auto_eject_hosts: true\n"
                                         "  redis: true\n"
                                         "  server_retry_timeout: 2000\n"
                                         "  server_failure_limit: 1\n"
                                         "  servers:\n"
                                         "   - 127.0.0.1:6379:1\n"
                                         "\n"
                                         "beta:\n"
                                         "  listen: 127.0.0.1:22122\n"
                                         "  hash: fnv1a_64\n"
                                         "  hash_tag: \"{}\"\n"
                                         "  distribution: ketama\n"
                                         "  auto_eject_hosts: false\n"
                                         "  timeout: 400\n"
                                         "  redis: true\n"
                                         "  servers:\n"
                                         "   - 127.0.0.1:6380:1 server1\n"
                                         "   - 127.0.0.1:6381:1 server2\n"
                                         "   - 127.0.0.1:6382:1 server3\n"
                                         "   - 127.0.0.1:6383:1 server4\n"
                                         "\n"
                                         "gamma:\n"
                                         "  listen: 127.0.0.1:22123\n"
                                         "  hash: fnv1a_64\n"
                                         "  distribution: ketama\n"
                                         "  timeout: 400\n"
                                         "  backlog: 1024\n"
                                         "  preconnect: true\n"
                                         "  auto_eject_hosts: true\n"
                                         "  server_retry_timeout: 2000\n"
                                         "  server_failure_limit: 3\n"
                                         "  servers:\n"
                                         "   - 127.0.0.1:11212:1\n"
                                         "   - 127.0.0.1:11213:1\n"
                                         "\n"
                                         "delta:\n"
                                         "  listen: 127.0.0.1:22124\n"
                                         "  hash: fnv1a_64\n"
                                         "  distribution: ketama\n"
                                         "  timeout: 100\n"
                                         "  auto_eject_hosts: true\n"
                                         "  server_retry_timeout: 2000\n"
                                         "  server_failure_limit: 1\n"
                                         "  servers:\n"
                                         "   - 127.0.0.1:11214:1\n"
                                         "   - 127.0.0.1:11215:1\n"
                                         "   - 127.0.0.1:11216:1\n"
                                         "   - 127.0.0.1:11217:1\n"
                                         "   - 127.0.0.1:11218:1\n"
                                         "   - 127.0.0.1:11219:1\n"
                                         "   - 127.0.0.1:11220:1\n"
                                         "   - 127.0.0.1:11221:1\n"
                                         "   - 127.0.0.1:11222:1\n"
                                         "   - 127.0.0.1:11223:1\n"
                                         "\n"
                                         "omega:\n"
                                         "  listen: /tmp/gamma\n"
                                         "  hash: hsieh\n"
                                         "  distribution: ketama\n"
                                         "  auto_eject_hosts: false\n"
                                         "  servers:\n"
                                         "   - 127.0.0.1:11214:100000\n"
                                         "   - 127.0.0.1:11215:1\n";

static void
dump_errors(const struct conf_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        fprintf(stderr, "  %s\n", errs->msgs[i]);
    }
}

static struct conf *
load_ok(const char *path, const char *text)
{
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    int rc = conf_load_string(path, text, &c, &errs);

    if (rc != 0) {
        dump_errors(&errs);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(c);
    conf_errors_free(&errs);
    return c;
}

static bool
str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Every field of two loaded configurations, the file names and lines aside. */
static void
assert_same_conf(const struct conf *a, const struct conf *b)
{
    ck_assert_int_eq(a->workers, b->workers);
    ck_assert(str_eq(a->stats_host, b->stats_host));
    ck_assert_int_eq(a->stats_port, b->stats_port);
    ck_assert(str_eq(a->metrics_listen, b->metrics_listen));
    ck_assert(str_eq(a->log_file, b->log_file));
    ck_assert_int_eq(a->log_level, b->log_level);
    ck_assert(str_eq(a->pid_file, b->pid_file));
    ck_assert_uint_eq(a->mbuf_size, b->mbuf_size);
    ck_assert_uint_eq(a->max_request_size, b->max_request_size);
    ck_assert_uint_eq(a->client_output_limit, b->client_output_limit);
    ck_assert_uint_eq(a->max_reply_size, b->max_reply_size);
    ck_assert_uint_eq(a->shutdown_timeout_ms, b->shutdown_timeout_ms);
    ck_assert_uint_eq(a->npools, b->npools);
    for (size_t i = 0; i < a->npools; i++) {
        const struct conf_pool *x = &a->pools[i], *y = &b->pools[i];
        ck_assert_msg(conf_pool_equal(x, y), "pool %s differs", x->name);
        ck_assert_str_eq(x->listen.host, y->listen.host);
        ck_assert_int_eq(x->listen.port, y->listen.port);
        ck_assert_int_eq(x->listen.is_unix, y->listen.is_unix);
        for (size_t j = 0; j < x->nservers; j++) {
            ck_assert(str_eq(x->servers[j].name, y->servers[j].name));
            ck_assert_int_eq(x->servers[j].addr.perm, y->servers[j].addr.perm);
        }
    }
}

START_TEST(test_example)
{
    struct conf *c = load_ok("nutcracker.yml", nutcracker_example);
    const struct conf_pool *p;

    ck_assert_uint_eq(c->npools, 5);
    /* twemproxy's order: shorter names first */
    ck_assert_str_eq(c->pools[0].name, "beta");
    ck_assert_str_eq(c->pools[1].name, "alpha");
    ck_assert_str_eq(c->pools[4].name, "omega");
    p = conf_pool_find(c, "alpha");
    ck_assert_str_eq(p->file, "nutcracker.yml");
    ck_assert_int_eq(p->line, 1);
    ck_assert(p->proto == PROTO_REDIS);
    ck_assert(p->auto_eject_hosts);
    ck_assert_uint_eq(p->server_retry_timeout_ms, 2000);
    ck_assert_uint_eq(p->server_failure_limit, 1);
    ck_assert_str_eq(p->servers[0].ident, "127.0.0.1:6379");
    ck_assert_int_eq(p->servers[0].line, 10);
    p = conf_pool_find(c, "beta");
    ck_assert(p->key_rule.has_tag);
    ck_assert_int_eq(p->key_rule.tag[0], '{');
    ck_assert_int_eq(p->key_rule.tag[1], '}');
    ck_assert_uint_eq(p->timeout_ms, 400);
    ck_assert_uint_eq(p->nservers, 4);
    ck_assert_str_eq(p->servers[3].ident, "server4");
    ck_assert_int_eq(p->servers[3].line, 24);
    p = conf_pool_find(c, "gamma");
    ck_assert_uint_eq(p->backlog, 1024);
    ck_assert(p->preconnect);
    ck_assert(p->proto == PROTO_MEMCACHED);
    ck_assert_uint_eq(conf_pool_find(c, "delta")->nservers, 10);
    p = conf_pool_find(c, "omega");
    ck_assert(p->listen.is_unix);
    ck_assert_str_eq(p->listen.host, "/tmp/gamma");
    ck_assert_int_eq(p->key_rule.hash, HASH_HSIEH);
    ck_assert_uint_eq(p->servers[0].weight, 100000);
    /* no [cachemux] in YAML: the process settings are the defaults */
    ck_assert_int_eq(c->workers, 0);
    ck_assert_int_eq(c->stats_port, CONF_DEFAULT_STATS_PORT);
    conf_free(c);
}
END_TEST

/* YAML pools and the INI an operator would write for them. */
static const struct {
    const char *yaml, *ini;
} pairs[] = {
    { nutcracker_example,
      "[pool alpha]\nlisten = 127.0.0.1:22121\nhash = fnv1a_64\ndistribution = ketama\n"
      "auto_eject_hosts = true\nredis = true\nserver_retry_timeout = 2000\n"
      "server_failure_limit = 1\nserver = 127.0.0.1:6379:1\n"
      "[pool beta]\nlisten = 127.0.0.1:22122\nhash = fnv1a_64\nhash_tag = \"{}\"\n"
      "distribution = ketama\nauto_eject_hosts = false\ntimeout = 400\nredis = true\n"
      "server = 127.0.0.1:6380:1 server1\nserver = 127.0.0.1:6381:1 server2\n"
      "server = 127.0.0.1:6382:1 server3\nserver = 127.0.0.1:6383:1 server4\n"
      "[pool gamma]\nlisten = 127.0.0.1:22123\nhash = fnv1a_64\ndistribution = ketama\n"
      "timeout = 400\nbacklog = 1024\npreconnect = true\nauto_eject_hosts = true\n"
      "server_retry_timeout = 2000\nserver_failure_limit = 3\n"
      "server = 127.0.0.1:11212:1\nserver = 127.0.0.1:11213:1\n"
      "[pool delta]\nlisten = 127.0.0.1:22124\nhash = fnv1a_64\ndistribution = ketama\n"
      "timeout = 100\nauto_eject_hosts = true\nserver_retry_timeout = 2000\n"
      "server_failure_limit = 1\n"
      "server = 127.0.0.1:11214:1\nserver = 127.0.0.1:11215:1\nserver = 127.0.0.1:11216:1\n"
      "server = 127.0.0.1:11217:1\nserver = 127.0.0.1:11218:1\nserver = 127.0.0.1:11219:1\n"
      "server = 127.0.0.1:11220:1\nserver = 127.0.0.1:11221:1\nserver = 127.0.0.1:11222:1\n"
      "server = 127.0.0.1:11223:1\n"
      "[pool omega]\nlisten = /tmp/gamma\nhash = hsieh\ndistribution = ketama\n"
      "auto_eject_hosts = false\nserver = 127.0.0.1:11214:100000\nserver = 127.0.0.1:11215:1\n" },
    /* every pool key, quoting styles, comments, a unix listen with a mode */
    { "# a comment\n"
      "web-cache:   # another\n"
      "  listen: \"/run/cachemux/web.sock 0660\"\n"
      "  hash: 'murmur'\n"
      "  hash_tag: \"::\"\n"
      "  distribution: modula\n"
      "  timeout: 250\n"
      "  backlog: 128\n"
      "  preconnect: false\n"
      "  redis: true\n"
      "  redis_auth: \"s3cr#t;x\"\n"
      "  redis_db: 2\n"
      "  server_connections: 3\n"
      "  auto_eject_hosts: true\n"
      "  server_retry_timeout: 100\n"
      "  server_failure_limit: 5\n"
      "  client_connections: 10\n"
      "  tcpkeepalive: true\n"
      "  servers:\n"
      "    - 10.0.0.1:6379:2 one   # named\n"
      "    - \"/run/redis.sock:1 two\"\n"
      "    - '[::1]:6380:1'\n",
      "[pool web-cache]\nlisten = /run/cachemux/web.sock 0660\nhash = murmur\nhash_tag = ::\n"
      "distribution = modula\ntimeout = 250\nbacklog = 128\npreconnect = false\nredis = true\n"
      "redis_auth = s3cr#t;x\nredis_db = 2\nserver_connections = 3\nauto_eject_hosts = true\n"
      "server_retry_timeout = 100\nserver_failure_limit = 5\nclient_connections = 10\n"
      "tcpkeepalive = true\nserver = 10.0.0.1:6379:2 one\nserver = /run/redis.sock:1 two\n"
      "server = [::1]:6380:1\n" },
};

START_TEST(test_same_as_ini)
{
    struct conf *y = load_ok("t.yml", pairs[_i].yaml), *i = load_ok("t.ini", pairs[_i].ini);

    assert_same_conf(y, i);
    conf_free(y);
    conf_free(i);
}
END_TEST

static char tmp_root[64];

static const char *
put(const char *name, const char *text)
{
    static char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmp_root, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *
convert_ok(const char *path)
{
    struct conf_errors errs = { 0 };
    char *ini = NULL;
    int rc = conf_convert(path, &ini, &errs);

    if (rc != 0) {
        dump_errors(&errs);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(ini);
    conf_errors_free(&errs);
    return ini;
}

START_TEST(test_convert)
{
    static const char yaml[] = "zeta:\n"
                               "  listen: 127.0.0.1:1\n"
                               "  servers:\n"
                               "   - h:1:1 b\n"
                               "   - h:2:1 a\n"
                               "  hash: md5\n"
                               "  hash_tag: \"''\"\n" /* the value is '' : quoted again for INI */
                               "  redis: true\n"
                               "  redis_auth: ' pw '\n" /* spaces kept: quoted */
                               "a:\n"
                               "  listen: /tmp/a.sock 0600\n"
                               "  distribution: random\n"
                               "  servers:\n"
                               "   - /tmp/mc.sock:1\n";
    struct conf *y, *c;
    char *ini, *again, *d1, *d2;

    strcpy(tmp_root, "/tmp/test_conf_yaml.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_root));
    const char *path = put("pools.yml", yaml);
    ini = convert_ok(path);
    /* the input's order, not twemproxy's; "server" for each item */
    const char *z = strstr(ini, "[pool zeta]\nlisten = 127.0.0.1:1\nserver = h:1:1 b\n"
                                "server = h:2:1 a\nhash = md5\nhash_tag = \"''\"\nredis = true\n"
                                "redis_auth = \" pw \"\n\n[pool a]\n");
    ck_assert_msg(z != NULL, "%s", ini);
    ck_assert_ptr_nonnull(strstr(ini, path));
    ck_assert_ptr_nonnull(strstr(ini, "comments"));
    again = convert_ok(path);
    ck_assert_str_eq(ini, again);
    y = load_ok("t.yml", yaml);
    c = load_ok("t.ini", ini);
    assert_same_conf(y, c);
    ck_assert_str_eq(conf_pool_find(c, "zeta")->redis_auth, " pw ");
    d1 = conf_dump(y);
    d2 = conf_dump(c);
    ck_assert_str_eq(strchr(d1, '\n'), strchr(d2, '\n')); /* the first line names the file */
    free(d2);
    conf_free(c);
    /* the dump loads the same configuration too */
    c = load_ok("dump.ini", d1);
    assert_same_conf(y, c);
    conf_free(c);
    conf_free(y);
    free(d1);
    free(ini);
    free(again);

    /* the example, and the files it converts to, convert to the same pools */
    path = put("example.yaml", nutcracker_example);
    ini = convert_ok(path);
    y = load_ok("t.yml", nutcracker_example);
    c = load_ok("t.ini", ini);
    assert_same_conf(y, c);
    conf_free(c);
    conf_free(y);
    free(ini);

    /* what INI cannot hold is an error naming the line */
    struct conf_errors errs = { 0 };
    path = put("semi.yml", "a:\n  listen: 127.0.0.1:1\n  redis: true\n  redis_auth: \"x ;y\"\n"
                           "  servers:\n   - h:1:1\n");
    ck_assert_int_eq(conf_convert(path, &ini, &errs), -1);
    ck_assert_ptr_null(ini);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_msg(strstr(errs.msgs[0], "semi.yml:4: cannot convert: the value of 'redis_auth' "
                                       "holds ';' after white space") != NULL,
                  "%s", errs.msgs[0]);
    conf_errors_free(&errs);
    /* nor can a server named ";x", which YAML allows: --dump-conf says so */
    y = load_ok("t.yml", "a:\n  listen: 127.0.0.1:1\n  servers:\n   - 'h:1:1 ;x'\n");
    d1 = conf_dump(y);
    ck_assert_msg(strstr(d1, "\n; server: its value cannot be written on one INI line\n") != NULL,
                  "%s", d1);
    free(d1);
    conf_free(y);
    path = put("bad.yml", "a:\n  listen: 127.0.0.1:1\n  servers:\n   - h:1:0\n");
    ck_assert_int_eq(conf_convert(path, &ini, &errs), -1);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "bad.yml:4: invalid value 'h:1:0' for 'servers'"));
    conf_errors_free(&errs);
    path = put("x.ini", "[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\n");
    ck_assert_int_eq(conf_convert(path, &ini, &errs), -1);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "not a YAML file"));
    conf_errors_free(&errs);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- broken YAML ---- */

#define YA "a:\n  listen: 127.0.0.1:1\n"
#define YS "  servers:\n   - h:1:1\n"

struct bad_case {
    const char *text;
    int line; /* 0: "t.yml: ..." */
    const char *want[3];
};

static const struct bad_case bad_cases[] = {
    { YA "\thash: md5\n" YS, 3, { "invalid YAML", "tab" } },
    { YA "  hash: md5\n   timeout: 1\n" YS,
      4,
      { "invalid YAML", "mapping values are not allowed" } },
    { YA "  hash: md5\n   timeout: 1\n" YS, 3, { "invalid value 'md5 timeout' for 'hash'" } },
    { YA " hash: md5\n" YS, 3, { "invalid YAML" } },
    { YA "  hashh: md5\n" YS, 3, { "unknown key 'hashh' in pool 'a'" } },
    { YA "  reuseport: true\n" YS, 3, { "unknown key 'reuseport'" } },
    { YA "  server: h:1:1\n" YS, 3, { "unknown key 'server' in pool 'a'", "'servers:' list" } },
    { YA "  include: x.yml\n" YS, 3, { "unknown key 'include'" } },
    { YA YS "a:\n  listen: 127.0.0.1:2\n" YS, 5, { "duplicate pool 'a' (first at line 1)" } },
    { YA "  servers:\n   - {h: 1}\n",
      4,
      { "'servers' item ('host:port:weight [name]') must be a string, found a mapping" } },
    { YA "  servers:\n   - h:1:1\n   - - x\n", 5, { "'servers' item", "found a list" } },
    { YA "  servers:\n   - h:1:1\n   - k: v\n", 5, { "must be a string, found a mapping" } },
    { YA "  servers: h:1:1\n", 3, { "'servers' must be a list" } },
    { YA "  servers: [h:1:1]\n", 3, { "flow style ('[...]')" } },
    { YA YS "  servers:\n   - h:2:1\n", 5, { "duplicate key 'servers'", "first at line 3" } },
    { YA "  hash: md5\n  hash: crc16\n" YS,
      4,
      { "duplicate key 'hash' in pool 'a': 'crc16' here, 'md5' first at line 3" } },
    { YA "  hash:\n" YS, 3, { "invalid value '' for 'hash'" } },
    { YA "  hash: [md5]\n" YS, 3, { "flow style" } },
    { YA "  hash:\n    - md5\n" YS, 3, { "'hash' takes one value, not a list" } },
    { YA "  hash:\n    x: md5\n" YS, 4, { "must be a string, found a mapping" } },
    { YA "  hash: &h md5\n" YS, 3, { "anchor '&h'" } },
    { "b: &b\n  listen: 127.0.0.1:2\n" YS YA "  hash: *b\n" YS, 1, { "anchor '&b'" } },
    { YA "  hash: !!str md5\n" YS, 3, { "tag 'tag:yaml.org,2002:str'" } },
    { "---\n" YA YS, 1, { "'---'", "remove the line" } },
    { YA YS "...\n", 5, { "'...'" } },
    { "%YAML 1.1\n---\n" YA YS, 1, { "directive" } },
    { "", 1, { "no pools: the file is empty" } },
    { "# only a comment\n\n", 1, { "no pools: the file is empty" } },
    { "hello\n", 1, { "expected pools at the top level", "found a value" } },
    { "- a\n- b\n", 1, { "expected pools at the top level", "found a list" } },
    { "a:\n", 1, { "pool 'a' is empty" } },
    { "a: 1\n", 1, { "pool 'a' must be a mapping", "found a value" } },
    { "[a, b]: 1\n" YA YS, 1, { "a pool name must be a string, found a list" } },
    { "my pool:\n  listen: 127.0.0.1:1\n" YS,
      1,
      { "invalid pool name of pool 'my pool' (a name has no spaces" } },
    { "a]b:\n  listen: 127.0.0.1:1\n" YS, 1, { "invalid pool name of pool 'a]b'", "brackets" } },
    { YA "  redis_auth: x\n" YS, 3, { "not a redis pool (needs redis: true)" } },
    { "a:\n" YS, 1, { "missing 'listen' in pool 'a'" } },
    { YA "  hash: md5\n", 1, { "missing 'servers' in pool 'a'" } },
    { YA "  servers:\n   - h:1:1 s\n   - h:2:1 s\n",
      5,
      { "duplicate server identity 's' for 'servers' in pool 'a' (first at line 4)" } },
    { YA YS "b:\n  listen: 127.0.0.1:1\n" YS,
      6,
      { "listen '127.0.0.1:1' in pool 'b' is already used by pool 'a' (line 2)" } },
    { YA "  timeout: 99999999999\n" YS, 3, { "invalid value '99999999999' for 'timeout'" } },
    { YA "  redis: True\n" YS, 3, { "invalid value 'True' for 'redis'", "true or false" } },
    { YA "  hash: \"md\\0\"\n" YS, 3, { "a value holds a NUL byte" } },
    { YA "  hash: md\xff\n" YS, 3, { "invalid YAML", "UTF-8" } },
    { YA YS "---\nb:\n  listen: 127.0.0.1:2\n" YS, 5, { "a second YAML document" } },
};

START_TEST(test_bad_yaml)
{
    const struct bad_case *bc = &bad_cases[_i];
    struct conf_errors errs = { 0 };
    struct conf *c = (struct conf *)1;
    char prefix[32];

    ck_assert_int_eq(conf_load_string("t.yml", bc->text, &c, &errs), -1);
    ck_assert_ptr_null(c);
    ck_assert_uint_ge(errs.n, 1);
    snprintf(prefix, sizeof(prefix), bc->line > 0 ? "t.yml:%d: " : "t.yml: ", bc->line);
    bool ok = false;
    for (size_t m = 0; m < errs.n && !ok; m++) {
        ok = strncmp(errs.msgs[m], prefix, strlen(prefix)) == 0;
        for (size_t i = 0; i < 3 && bc->want[i] != NULL; i++) {
            ok = ok && strstr(errs.msgs[m], bc->want[i]) != NULL;
        }
    }
    if (!ok) {
        dump_errors(&errs);
    }
    ck_assert_msg(ok, "case %d: no message '%s%s...'", _i, prefix, bc->want[0]);
    conf_errors_free(&errs);
}
END_TEST

START_TEST(test_too_large)
{
    /* 10 MB of valid-looking YAML: refused for its size before parsing */
    size_t n = 10u << 20;
    char *text = malloc(n + 1);
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++) {
        text[i] = i % 64 == 63 ? '\n' : '#';
    }
    text[n] = '\0';
    ck_assert_int_eq(conf_load_text("big.yml", text, n, &c, &errs), -1);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert_str_eq(errs.msgs[0], "big.yml: file too large: a YAML configuration is limited to "
                                   "4 MiB (a nutcracker file is a few kilobytes)");
    conf_errors_free(&errs);
    /* just under the limit: read (and found to have no pools) */
    ck_assert_int_eq(conf_load_text("big.yml", text, CONF_YAML_MAX_FILE, &c, &errs), -1);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "no pools"));
    conf_errors_free(&errs);
    free(text);
}
END_TEST

START_TEST(test_every_error_reported)
{
    /* Structural problems do not stop the walk: all of them are reported. */
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;

    ck_assert_int_eq(conf_load_string("t.yml",
                                      "a:\n"                    /* 1 */
                                      "  listen: 127.0.0.1:1\n" /* 2 */
                                      "  hash: nope\n"          /* 3 */
                                      "  bogus: 1\n"            /* 4 */
                                      "  servers:\n"            /* 5 */
                                      "   - h:1:0\n"            /* 6 */
                                      "   - [x]\n"              /* 7 */
                                      "b: 2\n",                 /* 8 */
                                      &c, &errs),
                     -1);
    if (errs.n != 6) {
        dump_errors(&errs);
    }
    ck_assert_uint_eq(errs.n, 6);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "t.yml:3: invalid value 'nope' for 'hash'"));
    ck_assert_ptr_nonnull(strstr(errs.msgs[1], "t.yml:4: unknown key 'bogus'"));
    ck_assert_ptr_nonnull(strstr(errs.msgs[2], "t.yml:6: invalid value 'h:1:0'"));
    ck_assert_ptr_nonnull(strstr(errs.msgs[3], "t.yml:7: flow style"));
    ck_assert_ptr_nonnull(strstr(errs.msgs[4], "t.yml:7: a 'servers' item"));
    ck_assert_ptr_nonnull(strstr(errs.msgs[5], "t.yml:8: pool 'b' must be a mapping"));
    conf_errors_free(&errs);
}
END_TEST

/*
 * Random edits of valid YAML (bytes dropped, replaced, lines swapped):
 * never a crash (run under ASan), success exactly when there is no message,
 * and every message names the file.
 */
START_TEST(test_random_yaml)
{
    uint64_t rng = 0x2545f4914f6cdd1dULL;
    size_t base = strlen(nutcracker_example);
    char *text = malloc(base + 64);
    static const char junk[] = " \t\n:-#\"'[]{}&*!|>%@`,?~";

    ck_assert_ptr_nonnull(text);
    for (int round = 0; round < 300; round++) {
        size_t n = base;
        memcpy(text, nutcracker_example, base);
        for (int edits = (int)(util_rand64(&rng) % 4) + 1; edits > 0; edits--) {
            size_t at = util_rand64(&rng) % n;
            uint64_t r = util_rand64(&rng);
            if (r % 3 == 0 && n > 1) {
                memmove(text + at, text + at + 1, n - at - 1); /* drop */
                n--;
            } else {
                text[at] = r % 5 == 0 ? (char)(r >> 8) : junk[(r >> 8) % (sizeof(junk) - 1)];
            }
        }
        struct conf_errors errs = { 0 };
        struct conf *c = NULL;
        int rc = conf_load_text("t.yml", text, n, &c, &errs);
        ck_assert_int_eq(rc == 0, errs.n == 0);
        ck_assert_int_eq(rc == 0, c != NULL);
        for (size_t i = 0; i < errs.n; i++) {
            ck_assert_msg(strncmp(errs.msgs[i], "t.yml", 5) == 0, "%s", errs.msgs[i]);
        }
        conf_free(c);
        conf_errors_free(&errs);
    }
    free(text);
}
END_TEST

static Suite *
conf_yaml_suite(void)
{
    Suite *s = suite_create("conf_yaml");
    TCase *tc = tcase_create("valid");

    tcase_add_test(tc, test_example);
    tcase_add_loop_test(tc, test_same_as_ini, 0, (int)ARRAY_SIZE(pairs));
    tcase_add_test(tc, test_convert);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_bad_yaml, 0, (int)ARRAY_SIZE(bad_cases));
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_every_error_reported);
    tcase_add_test(tc, test_random_yaml);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(conf_yaml_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
