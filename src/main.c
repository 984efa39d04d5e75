/*
 * main: argv -> configuration -> supervisor. Exits early for the one-shot
 * modes (--help, --version, --describe-stats, --test-conf, --locate,
 * --convert, --dump-conf).
 */
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "gen.h"
#include "log.h"
#include "stats.h"
#include "supervisor.h"
#include "tls.h"

static void
main_crash_handler(int sig)
{
    void *frames[64];
    int n = backtrace(frames, 64);
    static const char msg[] = "cachemux: fatal signal, backtrace:\n";

    if (write(log_fd(), msg, sizeof(msg) - 1) < 0) {
        /* Nothing better to do while crashing. */
    }
    backtrace_symbols_fd(frames, n, log_fd());
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
main_install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    sa.sa_handler = main_crash_handler;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
}

int
main(int argc, char **argv)
{
    struct cli_opts o;
    struct conf_errors errs = { 0 };
    struct conf *c = NULL;
    struct gen *g = NULL;

    main_install_signals();
    const char *prog = strrchr(argv[0], '/');
    if (strcmp(prog != NULL ? prog + 1 : argv[0], "cachemux-convert") == 0) {
        return cli_convert_program(argc, argv);
    }
    if (cli_parse(argc, argv, &o) != 0) {
        fprintf(stderr, "Try 'cachemux --help' for more information.\n");
        return 1;
    }
    if (o.help) {
        cli_version();
        printf("\n");
        cli_usage();
        return 0;
    }
    if (o.version) {
        cli_version();
        return 0;
    }
    if (o.describe_stats) {
        cli_version();
        printf("\n");
        stats_describe(stdout);
        return 0;
    }
    if (o.convert != NULL) {
        return cli_convert(o.convert);
    }
    log_init(o.verbose >= 0 ? o.verbose : CONF_DEFAULT_LOG_LEVEL, NULL);
    log_set_thread_tag("sup");
    if (tls_init() != 0) {
        fprintf(stderr, "cachemux: cannot initialize OpenSSL\n");
        return 1;
    }

    /* Messages name the file as the user wrote it. */
    if (conf_load(o.conf_file, &c, &errs) == 0 && cli_apply_overrides(&o, c, &errs) == 0 &&
        !o.locate && !o.dump_conf && (g = gen_new(c, &errs)) != NULL) {
        c = NULL; /* g's now */
    }
    if (errs.n > 0) {
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        }
        fprintf(stderr, "cachemux: configuration file '%s' syntax is invalid\n", o.conf_file);
        conf_errors_free(&errs);
        conf_free(c);
        return 1;
    }
    conf_errors_free(&errs);
    if (o.test_conf) {
        fprintf(stderr, "cachemux: configuration file '%s' syntax is ok\n", o.conf_file);
        conf_free(c);
        gen_free(g);
        return 0;
    }
    if (o.locate || o.dump_conf) {
        int rc = o.locate ? cli_locate(c, o.locate) : cli_dump_conf(c);
        conf_free(c);
        return rc;
    }
    log_set_level(g->conf->log_level >= 0 ? g->conf->log_level : CONF_DEFAULT_LOG_LEVEL);
    return supervisor_run(g, &o);
}
