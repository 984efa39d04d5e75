/*
 * cli: the command line (twemproxy's flags plus ours, README "Running",
 * cachemux(8)) and the one-shot modes that never start workers: --help,
 * --version, --describe-stats, --test-conf, --locate, --convert and
 * --dump-conf. Every [cachemux] key
 * has a flag, so a nutcracker YAML configuration, which has no [cachemux]
 * section, can still set them all.
 */
#ifndef CMX_CLI_H
#define CMX_CLI_H

#include <stdbool.h>
#include <stdint.h>

struct conf;
struct conf_errors;

struct cli_opts {
    bool help, version, test_conf, daemonize, describe_stats;
    int verbose;        /* -1: not given */
    const char *output; /* NULL: not given */
    const char *conf_file;
    int stats_port;         /* -1: not given */
    const char *stats_addr; /* NULL: not given */
    long stats_interval;
    const char *pid_file; /* NULL: not given */
    long mbuf_size;       /* -1: not given */
    int workers;          /* -1: not given */
    const char *locate;   /* pool name, NULL: not given */
    const char *convert;  /* --convert FILE, NULL: not given */
    bool dump_conf;
    const char *metrics_listen; /* NULL: not given */
    long max_request_size;      /* -1: not given */
    long client_output_limit;   /* -1: not given */
    long max_reply_size;        /* -1: not given */
    long shutdown_timeout;      /* -1: not given */
    long tls_handshake_timeout; /* -1: not given */
    long tls_max_handshakes;    /* -1: not given */
};

/* Parse argv. Returns 0, or -1 after printing what is wrong to stderr. */
int cli_parse(int argc, char **argv, struct cli_opts *o);

void cli_usage(void);
void cli_version(void);

/*
 * Command-line values win over the file's (at start and on every reload).
 * Returns 0, or -1 with a message in errs when the result breaks a rule
 * across keys (client_output_limit below max_request_size).
 */
int cli_apply_overrides(const struct cli_opts *o, struct conf *c, struct conf_errors *errs);

/* --locate: print "KEY SERVER" for each key on stdin. Returns exit code. */
int cli_locate(const struct conf *c, const char *pool);

/* --convert: print the INI equivalent of the YAML file path, or its
   problems as -t does. Returns the exit code. */
int cli_convert(const char *path);

/*
 * Run as cachemux-convert (the installed link): "cachemux-convert FILE.yml"
 * is "cachemux --convert FILE.yml". Returns the exit code.
 */
int cli_convert_program(int argc, char **argv);

/* --dump-conf: print c (see conf_dump). Returns the exit code. */
int cli_dump_conf(const struct conf *c);

#endif
