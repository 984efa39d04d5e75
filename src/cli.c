/*
 * cli: argv parsing and the modes that print and exit (see cli.h).
 * --locate uses dist_pick, the very function live requests route with;
 * --convert and --dump-conf use conf's own loader, so what they print is
 * what cachemux would run. Flags without a short form (the [cachemux]
 * keys twemproxy has no flag for) get option codes above any character.
 */
#include "cli.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dist.h"
#include "log.h"
#include "util.h"

enum cli_long_only {
    CLI_OPT_CONVERT = 256,
    CLI_OPT_DUMP_CONF,
    CLI_OPT_METRICS_LISTEN,
    CLI_OPT_MAX_REQUEST_SIZE,
    CLI_OPT_CLIENT_OUTPUT_LIMIT,
    CLI_OPT_MAX_REPLY_SIZE,
    CLI_OPT_SHUTDOWN_TIMEOUT,
    CLI_OPT_TLS_HANDSHAKE_TIMEOUT,
    CLI_OPT_TLS_MAX_HANDSHAKES,
};

static const struct option cli_long_opts[] = {
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "test-conf", no_argument, NULL, 't' },
    { "daemonize", no_argument, NULL, 'd' },
    { "describe-stats", no_argument, NULL, 'D' },
    { "verbose", required_argument, NULL, 'v' },
    { "output", required_argument, NULL, 'o' },
    { "conf-file", required_argument, NULL, 'c' },
    { "stats-port", required_argument, NULL, 's' },
    { "stats-interval", required_argument, NULL, 'i' },
    { "stats-addr", required_argument, NULL, 'a' },
    { "pid-file", required_argument, NULL, 'p' },
    { "mbuf-size", required_argument, NULL, 'm' },
    { "workers", required_argument, NULL, 'w' },
    { "locate", required_argument, NULL, 'L' },
    { "convert", required_argument, NULL, CLI_OPT_CONVERT },
    { "dump-conf", no_argument, NULL, CLI_OPT_DUMP_CONF },
    { "metrics-listen", required_argument, NULL, CLI_OPT_METRICS_LISTEN },
    { "max-request-size", required_argument, NULL, CLI_OPT_MAX_REQUEST_SIZE },
    { "client-output-limit", required_argument, NULL, CLI_OPT_CLIENT_OUTPUT_LIMIT },
    { "max-reply-size", required_argument, NULL, CLI_OPT_MAX_REPLY_SIZE },
    { "shutdown-timeout", required_argument, NULL, CLI_OPT_SHUTDOWN_TIMEOUT },
    { "tls-handshake-timeout", required_argument, NULL, CLI_OPT_TLS_HANDSHAKE_TIMEOUT },
    { "tls-max-handshakes", required_argument, NULL, CLI_OPT_TLS_MAX_HANDSHAKES },
    { NULL, 0, NULL, 0 },
};

void
cli_version(void)
{
    printf("This is cachemux-%s\nlibevent %s\n", PACKAGE_VERSION, event_get_version());
}

void
cli_usage(void)
{
    printf("Usage: cachemux [-?hVdDt] [-v verbosity level] [-o output file]\n"
           "                [-c conf file] [-s stats port] [-a stats addr]\n"
           "                [-i stats interval] [-p pid file] [-m mbuf size]\n"
           "                [-w workers] [-L pool] [--convert file.yml] [--dump-conf]\n"
           "\n"
           "Options:\n"
           "  -h, --help             : this help\n"
           "  -V, --version          : show version and exit\n"
           "  -t, --test-conf        : test configuration for syntax errors and exit\n"
           "  -d, --daemonize        : run as a daemon\n"
           "  -D, --describe-stats   : print stats description and exit\n"
           "  -v, --verbose=N        : set logging level (default: %d, min: 0, max: %d)\n"
           "  -o, --output=S         : set logging file (default: stderr)\n"
           "  -c, --conf-file=S      : set configuration file (default: %s/cachemux.ini);\n"
           "                           a nutcracker file if it ends in .yml or .yaml\n"
           "  -s, --stats-port=N     : set stats monitoring port (default: %d)\n"
           "  -a, --stats-addr=S     : set stats monitoring ip (default: 127.0.0.1)\n"
           "  -i, --stats-interval=N : accepted for compatibility; stats are live\n"
           "  -p, --pid-file=S       : set pid file (default: none)\n"
           "  -m, --mbuf-size=N      : set size of I/O buffer chunks in bytes (default: %d)\n"
           "  -w, --workers=N        : set worker threads (default: config, else CPUs)\n"
           "  -L, --locate=POOL      : print 'KEY SERVER' for each key on stdin and exit\n"
           "      --convert=S        : print the INI equivalent of nutcracker YAML file S\n"
           "      --dump-conf        : print the loaded configuration, every key, and exit\n"
           "\n"
           "[cachemux] settings (they win over the file; the only way to set them for a\n"
           "YAML configuration):\n"
           "      --metrics-listen=S      : set Prometheus metrics host:port (default: none)\n"
           "      --max-request-size=N    : set largest request in bytes (default: %llu)\n"
           "      --client-output-limit=N : set reply bytes held for one client\n"
           "                                (default: the larger of %llu and max-request-size)\n"
           "      --max-reply-size=N      : set largest reply from a server in bytes\n"
           "                                (default: %llu)\n"
           "      --shutdown-timeout=N    : set ms a graceful stop waits (default: %d)\n"
           "      --tls-handshake-timeout=N : set ms a TLS handshake may take (default: %d)\n"
           "      --tls-max-handshakes=N  : set TLS handshakes one worker runs at once\n"
           "                                (default: %d)\n",
           CONF_DEFAULT_LOG_LEVEL, LOG_LEVEL_MAX, CACHEMUX_SYSCONFDIR, CONF_DEFAULT_STATS_PORT,
           CONF_DEFAULT_MBUF_SIZE, (unsigned long long)CONF_DEFAULT_MAX_REQUEST_SIZE,
           (unsigned long long)CONF_DEFAULT_CLIENT_OUTPUT_LIMIT,
           (unsigned long long)CONF_DEFAULT_MAX_REPLY_SIZE, CONF_DEFAULT_SHUTDOWN_TIMEOUT,
           CONF_DEFAULT_TLS_HANDSHAKE_TIMEOUT, CONF_DEFAULT_TLS_MAX_HANDSHAKES);
}

static int
cli_number(const char *flag, const char *arg, uint64_t min, uint64_t max, long *out)
{
    uint64_t v;

    if (util_parse_u64_str(arg, max, &v) != 0 || v < min) {
        fprintf(stderr, "cachemux: option %s requires a number in %llu..%llu, not '%s'\n", flag,
                (unsigned long long)min, (unsigned long long)max, arg);
        return -1;
    }
    *out = (long)v;
    return 0;
}

/* A flag's "host:port" (no unix socket), checked as the file's would be. */
static int
cli_host_port(const char *flag, const char *arg)
{
    struct conf_addr a;
    char err[128];

    if (conf_value_addr(arg, false, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "cachemux: option %s requires host:port, not '%s' (%s)\n", flag, arg, err);
        return -1;
    }
    free(a.host);
    if (a.is_unix) {
        fprintf(stderr, "cachemux: option %s requires host:port, not a unix socket\n", flag);
        return -1;
    }
    return 0;
}

int
cli_parse(int argc, char **argv, struct cli_opts *o)
{
    long v;
    int ch;

    memset(o, 0, sizeof(*o));
    o->verbose = -1;
    o->stats_port = -1;
    o->mbuf_size = -1;
    o->workers = -1;
    o->stats_interval = -1;
    o->max_request_size = -1;
    o->client_output_limit = -1;
    o->max_reply_size = -1;
    o->shutdown_timeout = -1;
    o->tls_handshake_timeout = -1;
    o->tls_max_handshakes = -1;
    o->conf_file = CACHEMUX_SYSCONFDIR "/cachemux.ini";

    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hVtdDv:o:c:s:i:a:p:m:w:L:", cli_long_opts, NULL)) !=
           -1) {
        // clang-format off
        switch (ch) {
        case 'h': o->help = true; break;
        case 'V': o->version = true; break;
        case 't': o->test_conf = true; break;
        case 'd': o->daemonize = true; break;
        case 'D': o->describe_stats = true; break;
        case 'v':
            if (cli_number("-v", optarg, 0, LOG_LEVEL_MAX, &v) != 0) return -1;
            o->verbose = (int)v;
            break;
        case 'o': o->output = optarg; break;
        case 'c': o->conf_file = optarg; break;
        case 's':
            if (cli_number("-s", optarg, 1, 65535, &v) != 0) return -1;
            o->stats_port = (int)v;
            break;
        case 'i':
            if (cli_number("-i", optarg, 1, 86400000, &v) != 0) return -1;
            o->stats_interval = v;
            break;
        case 'a': o->stats_addr = optarg; break;
        case 'p': o->pid_file = optarg; break;
        case 'm':
            if (cli_number("-m", optarg, CONF_MIN_MBUF_SIZE, CONF_MAX_MBUF_SIZE, &v) != 0) return -1;
            o->mbuf_size = v;
            break;
        case 'w':
            if (cli_number("-w", optarg, 1, CONF_MAX_WORKERS, &v) != 0) return -1;
            o->workers = (int)v;
            break;
        case 'L': o->locate = optarg; break;
        case CLI_OPT_CONVERT: o->convert = optarg; break;
        case CLI_OPT_DUMP_CONF: o->dump_conf = true; break;
        case CLI_OPT_METRICS_LISTEN:
            if (cli_host_port("--metrics-listen", optarg) != 0) return -1;
            o->metrics_listen = optarg;
            break;
        case CLI_OPT_MAX_REQUEST_SIZE:
            if (cli_number("--max-request-size", optarg, 1, CONF_MAX_SIZE, &v) != 0) return -1;
            o->max_request_size = v;
            break;
        case CLI_OPT_CLIENT_OUTPUT_LIMIT:
            if (cli_number("--client-output-limit", optarg, 1, CONF_MAX_SIZE, &v) != 0) return -1;
            o->client_output_limit = v;
            break;
        case CLI_OPT_MAX_REPLY_SIZE:
            if (cli_number("--max-reply-size", optarg, CONF_MIN_REPLY_SIZE, CONF_MAX_SIZE, &v) != 0) return -1;
            o->max_reply_size = v;
            break;
        case CLI_OPT_SHUTDOWN_TIMEOUT:
            if (cli_number("--shutdown-timeout", optarg, 0, CONF_MAX_MS, &v) != 0) return -1;
            o->shutdown_timeout = v;
            break;
        case CLI_OPT_TLS_HANDSHAKE_TIMEOUT:
            if (cli_number("--tls-handshake-timeout", optarg, 1, CONF_MAX_MS, &v) != 0) return -1;
            o->tls_handshake_timeout = v;
            break;
        case CLI_OPT_TLS_MAX_HANDSHAKES:
            if (cli_number("--tls-max-handshakes", optarg, 1, CONF_MAX_MS, &v) != 0) return -1;
            o->tls_max_handshakes = v;
            break;
        // clang-format on
        case ':':
            if (optopt > 0 && optopt < CLI_OPT_CONVERT) {
                fprintf(stderr, "cachemux: option -%c requires an argument\n", optopt);
            } else {
                fprintf(stderr, "cachemux: option '%s' requires an argument\n", argv[optind - 1]);
            }
            return -1;
        default:
            if (optopt != 0) {
                fprintf(stderr, "cachemux: invalid option -- '%c'\n", optopt);
            } else {
                fprintf(stderr, "cachemux: invalid option '%s'\n", argv[optind - 1]);
            }
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cachemux: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static char *
cli_strdup_or_die(const char *s)
{
    char *d = strdup(s);

    if (d == NULL) {
        fprintf(stderr, "cachemux: out of memory\n");
        exit(1);
    }
    return d;
}

int
cli_apply_overrides(const struct cli_opts *o, struct conf *c, struct conf_errors *errs)
{
    if (o->workers > 0) {
        c->workers = o->workers;
    }
    if (o->stats_port > 0) {
        c->stats_port = o->stats_port;
    }
    if (o->stats_addr != NULL) {
        free(c->stats_host);
        c->stats_host = cli_strdup_or_die(o->stats_addr);
    }
    if (o->verbose >= 0) {
        c->log_level = o->verbose;
    }
    if (o->output != NULL) {
        free(c->log_file);
        c->log_file = cli_strdup_or_die(o->output);
    }
    if (o->pid_file != NULL) {
        free(c->pid_file);
        c->pid_file = cli_strdup_or_die(o->pid_file);
    }
    if (o->mbuf_size > 0) {
        c->mbuf_size = (uint32_t)o->mbuf_size;
    }
    if (o->metrics_listen != NULL) {
        free(c->metrics_listen);
        c->metrics_listen = cli_strdup_or_die(o->metrics_listen);
    }
    if (o->max_request_size > 0) {
        c->max_request_size = (uint64_t)o->max_request_size;
    }
    if (o->client_output_limit > 0) {
        c->client_output_limit = (uint64_t)o->client_output_limit;
        c->client_output_limit_auto = false;
    } else if (c->client_output_limit_auto) {
        /* unset anywhere: it follows max_request_size, as the file's rule says */
        c->client_output_limit = MAX(CONF_DEFAULT_CLIENT_OUTPUT_LIMIT, c->max_request_size);
    }
    if (o->max_reply_size > 0) {
        c->max_reply_size = (uint64_t)o->max_reply_size;
    }
    if (o->shutdown_timeout >= 0) {
        c->shutdown_timeout_ms = (uint64_t)o->shutdown_timeout;
    }
    if (o->tls_handshake_timeout > 0) {
        c->tls_handshake_timeout_ms = (uint64_t)o->tls_handshake_timeout;
    }
    if (o->tls_max_handshakes > 0) {
        c->tls_max_handshakes = (uint32_t)o->tls_max_handshakes;
    }
    if (c->client_output_limit < c->max_request_size) {
        conf_errors_add(errs, c->path, 0,
                        "client_output_limit %llu is smaller than "
                        "max_request_size %llu (from the flags and the file together)",
                        (unsigned long long)c->client_output_limit,
                        (unsigned long long)c->max_request_size);
        return -1;
    }
    return 0;
}

int
cli_locate(const struct conf *c, const char *pool)
{
    const struct conf_pool *cp = conf_pool_find(c, pool);
    struct dist_server *ds;
    struct dist *d;
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (cp == NULL) {
        fprintf(stderr, "cachemux: no pool named '%s' in %s\n", pool, c->path);
        return 1;
    }
    ds = calloc(cp->nservers, sizeof(*ds));
    if (ds == NULL) {
        fprintf(stderr, "cachemux: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < cp->nservers; i++) {
        ds[i].ident = cp->servers[i].ident;
        ds[i].ident_len = strlen(cp->servers[i].ident);
        ds[i].weight = cp->servers[i].weight;
        ds[i].live = true;
    }
    d = dist_build(cp->dist, ds, cp->nservers);
    if (d == NULL) {
        free(ds);
        fprintf(stderr, "cachemux: out of memory\n");
        return 1;
    }
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n') {
            len--;
        }
        if (len > 0 && line[len - 1] == '\r') {
            len--;
        }
        fwrite(line, 1, len, stdout);
        if (cp->dist == DIST_RANDOM) {
            fputs(" *\n", stdout);
            continue;
        }
        int idx = dist_pick(d, &cp->key_rule, (const uint8_t *)line, len, &rng);
        printf(" %s\n", idx >= 0 ? cp->servers[idx].ident : "-");
    }
    free(line);
    dist_free(d);
    free(ds);
    return fflush(stdout) == 0 ? 0 : 1;
}

int
cli_convert(const char *path)
{
    struct conf_errors errs = { 0 };
    char *ini = NULL;
    int rc = 0;

    if (conf_convert(path, &ini, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        }
        fprintf(stderr, "cachemux: configuration file '%s' syntax is invalid\n", path);
        rc = 1;
    } else if (fputs(ini, stdout) == EOF || fflush(stdout) != 0) {
        rc = 1;
    }
    conf_errors_free(&errs);
    free(ini);
    return rc;
}

int
cli_convert_program(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("Usage: cachemux-convert FILE.yml\n"
               "Print the INI equivalent of nutcracker YAML file FILE.yml (as cachemux "
               "--convert).\n");
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "Usage: cachemux-convert FILE.yml\n");
        return 1;
    }
    return cli_convert(argv[1]);
}

int
cli_dump_conf(const struct conf *c)
{
    char *text = conf_dump(c);

    if (text == NULL) {
        fprintf(stderr, "cachemux: out of memory\n");
        return 1;
    }
    fputs(text, stdout);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
}
