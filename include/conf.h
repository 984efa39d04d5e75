/*
 * conf: the configuration: an INI file with [cachemux] process settings and
 * one [pool NAME] section per pool, and the files it includes (conf_file.h);
 * or a nutcracker YAML file, chosen by its name (.yml, .yaml), whose pools
 * mean what they mean to nutcracker (conf_yaml.h). conf_load() reads the
 * files, scans INI lines itself (line numbers, long lines, values; see
 * conf_scan.h), hands the cleaned text to inih and validates every key of
 * either format with one table. The result is an immutable struct conf (a
 * "generation"); host names are resolved later by the supervisor (net),
 * which fills the sockaddr fields.
 *
 * Every problem is reported as "FILE:LINE: message" naming the file it is
 * in (an included one too), the key and the value, and all of them are
 * reported, not just the first.
 */
#ifndef CMX_CONF_H
#define CMX_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf_value.h"
#include "dist.h"
#include "hash.h"
#include "proto.h"

#define CONF_DEFAULT_STATS_PORT 22222
#define CONF_DEFAULT_MBUF_SIZE 16384
#define CONF_MIN_MBUF_SIZE 512
#define CONF_MAX_MBUF_SIZE 16777216
#define CONF_DEFAULT_MAX_REQUEST_SIZE 67108864 /* no suffix: conf.c writes them out */
#define CONF_DEFAULT_CLIENT_OUTPUT_LIMIT 67108864
#define CONF_DEFAULT_MAX_REPLY_SIZE 1073741824
#define CONF_DEFAULT_SHUTDOWN_TIMEOUT 30000
#define CONF_DEFAULT_LOG_LEVEL 5
#define CONF_MAX_SIZE (1ULL << 40) /* most for max_request_size and friends */
#define CONF_MIN_REPLY_SIZE 1024   /* room for any status or error line a server sends */
#define CONF_MAX_MS 2147483647u    /* most for every time in milliseconds */
#define CONF_MAX_WORKERS 1024
#define CONF_DEFAULT_TLS_HANDSHAKE_TIMEOUT 10000
#define CONF_DEFAULT_TLS_MAX_HANDSHAKES 1000

/* TLS protocol versions a pool accepts (tls_protocols), as bits. */
#define CONF_TLS_V12 1u
#define CONF_TLS_V13 2u

/* A file a key names, and the line of that key (for a reload's messages). */
struct conf_path {
    char *path; /* NULL: not set */
    int line;
};

/* TLS between clients and cachemux (tls = true and the tls_* keys). */
struct conf_tls {
    bool on;
    struct conf_path cert_file; /* PEM, chain allowed */
    struct conf_path key_file;
    struct conf_path ca_file; /* clients' CA (tls_verify_client) */
    bool verify_client;
    uint32_t protocols;  /* CONF_TLS_V12 | CONF_TLS_V13 */
    char *protocols_str; /* as written, for --dump-conf */
    char *ciphers;       /* TLS 1.2, OpenSSL syntax; NULL: OpenSSL's */
    char *ciphersuites;  /* TLS 1.3; NULL: OpenSSL's */
    bool session_cache;  /* tickets and resumption */
    bool ktls;           /* kernel TLS where offered (accepted connections) */
    int line;            /* of "tls = true", 0: unset */
    int ciphers_line, ciphersuites_line;
};

/* TLS between cachemux and the pool's servers (server_tls and friends). */
struct conf_server_tls {
    bool on;
    struct conf_path ca_file;   /* NULL: the system's trust store */
    bool verify;                /* default true */
    char *name;                 /* SNI and the name verified; NULL: the server's host */
    struct conf_path cert_file; /* a client certificate, with key_file */
    struct conf_path key_file;
    int line; /* of "server_tls = true", 0: unset */
};

#define CONF_DENY_WORDS 4 /* 256 commands per protocol */

/* Whether command index cmd is in pool p's deny_commands. */
#define CONF_DENIED(p, cmd) (((p)->deny[(cmd) / 64] >> ((cmd) % 64)) & 1)

struct conf_pool {
    char *name;
    char *file; /* the file holding it (-c's, or an included one) */
    int line;   /* line of the [pool NAME] header in file */
    struct conf_addr listen;
    char *listen_str;              /* as written, for messages and comparisons */
    struct dist_key_rule key_rule; /* hash and hash_tag */
    enum dist_type dist;
    uint64_t timeout_ms; /* 0: none */
    uint32_t backlog;
    bool preconnect;
    enum proto_id proto; /* "redis = true": PROTO_REDIS, else PROTO_MEMCACHED */
    char *redis_auth;    /* NULL: none */
    uint32_t redis_db;
    uint32_t server_connections; /* per server per worker, >= 1 */
    bool auto_eject_hosts;
    uint64_t server_retry_timeout_ms;
    uint32_t server_failure_limit;
    uint32_t client_connections; /* 0: no limit */
    uint32_t workers;            /* served by the first N workers only; 0: by all */
    bool tcpkeepalive;
    char *deny_commands; /* as written; NULL: none */
    /* deny_commands resolved: bit i set refuses the protocol's command i
       (Redis: its table row, redis_cmd_index; memcached: enum mc_cmd) */
    uint64_t deny[CONF_DENY_WORDS];
    struct conf_tls tls;
    struct conf_server_tls server_tls;
    struct conf_server *servers; /* sorted in identity order (dist_ident_cmp); lines in file */
    size_t nservers;
};

struct conf {
    char *path;           /* the file it came from */
    int workers;          /* 0: auto */
    char *stats_host;     /* default "127.0.0.1" */
    int stats_port;       /* default 22222 */
    char *metrics_listen; /* NULL: off */
    char *log_file;       /* NULL: stderr */
    int log_level;        /* -1: not set in the file */
    char *pid_file;       /* NULL: none */
    uint32_t mbuf_size;
    uint64_t max_request_size;
    uint64_t client_output_limit;  /* reply bytes held for one client; >= max_request_size */
    bool client_output_limit_auto; /* unset in the file: follows max_request_size */
    uint64_t max_reply_size;       /* bytes of one whole reply from a server */
    uint64_t shutdown_timeout_ms;
    uint64_t tls_handshake_timeout_ms; /* a TLS handshake longer than this is closed */
    uint32_t tls_max_handshakes;       /* per worker; at the cap TLS accepts pause */
    struct conf_pool *pools;           /* twemproxy order: shorter names first, then bytewise */
    size_t npools;
};

/* Collected error messages, each "FILE:LINE: message". */
struct conf_errors {
    char **msgs;
    size_t n;
    size_t cap;
};

/*
 * Load and validate path. On success returns 0 and sets *out (free with
 * conf_free). On failure returns -1 with at least one message in errs (the
 * caller owns errs and frees it with conf_errors_free).
 */
int conf_load(const char *path, struct conf **out, struct conf_errors *errs);

/* Same, from text in memory: path names it in messages, decides its format
   and is where relative includes start from. */
int conf_load_string(const char *path, const char *text, struct conf **out,
                     struct conf_errors *errs);
int conf_load_text(const char *path, const char *text, size_t len, struct conf **out,
                   struct conf_errors *errs);

/*
 * --convert: load the nutcracker YAML file path as conf_load does and, when
 * it is valid, set *ini to the equivalent INI (malloc'd; see conf_yaml_ini).
 * Returns 0, or -1 with the problems in errs (a file that is not YAML, or a
 * value INI cannot hold, is one).
 */
int conf_convert(const char *path, char **ini, struct conf_errors *errs);

/*
 * --dump-conf: c as INI, every key written out (defaults too), pools in
 * twemproxy's order and servers in identity order, so that two files that
 * load the same configuration dump the same text. malloc'd, NULL when out of
 * memory.
 */
char *conf_dump(const struct conf *c);

void conf_free(struct conf *c);
void conf_errors_free(struct conf_errors *errs);

/* Add a formatted "FILE:LINE: message" (line 0: "FILE: message"). */
void conf_errors_add(struct conf_errors *errs, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same settings and same servers (identity, address, weight): a reload
   leaves such a pool untouched. Supervisor-filled fields are ignored. */
bool conf_pool_equal(const struct conf_pool *a, const struct conf_pool *b);

/* Same TLS settings towards the servers (a change reconnects them). */
bool conf_server_tls_equal(const struct conf_server_tls *a, const struct conf_server_tls *b);

/* Parse a tls_protocols value ("TLSv1.2 TLSv1.3", in any order) into
   CONF_TLS_* bits. Returns 0, or -1 with the reason in err. */
int conf_tls_protocols(const char *v, uint32_t *bits, char *err, size_t errlen);

/* Same address (host or path, and port) for a server. */
bool conf_server_same_addr(const struct conf_server *a, const struct conf_server *b);

/* The pool called name, or NULL. */
const struct conf_pool *conf_pool_find(const struct conf *c, const char *name);

#endif
