/*
 * cli: the command line (twemproxy's flags plus ours, README "Running", cachemux(8)) and the
 * one-shot modes that never start workers: --help, --version,
 * --describe-stats, --test-conf and --locate.
 */
#ifndef CMX_CLI_H
#define CMX_CLI_H

#include <stdbool.h>
#include <stdint.h>

struct conf;

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
};

/* Parse argv. Returns 0, or -1 after printing what is wrong to stderr. */
int cli_parse(int argc, char **argv, struct cli_opts *o);

void cli_usage(void);
void cli_version(void);

/* Command-line values win over the file's (at start and on every reload). */
void cli_apply_overrides(const struct cli_opts *o, struct conf *c);

/* --locate: print "KEY SERVER" for each key on stdin. Returns exit code. */
int cli_locate(const struct conf *c, const char *pool);

#endif
