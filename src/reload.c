/*
 * reload: validating and diffing a new configuration (see reload.h). Runs
 * on the supervisor thread; the workers apply the result themselves.
 */
#include "reload.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "gen.h"
#include "log.h"
#include "net.h"

static bool
reload_str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Keep a setting that needs a restart at its running value. */
static void
reload_keep_str(const char *key, char **nv, const char *cur)
{
    if (reload_str_eq(*nv, cur)) {
        return;
    }
    log_notice("reload: '%s' needs a restart to change; keeping '%s'", key, cur ? cur : "");
    free(*nv);
    *nv = cur != NULL ? strdup(cur) : NULL;
}

static void
reload_keep_restart_settings(const struct conf *cur, struct conf *nc)
{
    if (nc->workers != cur->workers) {
        log_notice("reload: 'workers' needs a restart to change; keeping the running workers");
        nc->workers = cur->workers;
    }
    if (nc->stats_port != cur->stats_port || !reload_str_eq(nc->stats_host, cur->stats_host)) {
        log_notice("reload: 'stats_listen' needs a restart to change; keeping %s:%d",
                   cur->stats_host, cur->stats_port);
        nc->stats_port = cur->stats_port;
        free(nc->stats_host);
        nc->stats_host = strdup(cur->stats_host);
    }
    reload_keep_str("metrics_listen", &nc->metrics_listen, cur->metrics_listen);
    reload_keep_str("pid_file", &nc->pid_file, cur->pid_file);
    if (nc->mbuf_size != cur->mbuf_size) {
        log_notice("reload: 'mbuf_size' needs a restart to change; keeping %u",
                   (unsigned)cur->mbuf_size);
        nc->mbuf_size = cur->mbuf_size;
    }
}

/* New TCP listen addresses must be bindable before workers try them. */
static void
reload_check_new_listens(const struct conf *cur, const struct gen *g, struct conf_errors *errs)
{
    const struct conf *nc = g->conf;

    for (size_t i = 0; i < nc->npools; i++) {
        const struct conf_pool *p = &nc->pools[i];
        bool known = false;
        for (size_t j = 0; j < cur->npools && !known; j++) {
            known = strcmp(cur->pools[j].listen_str, p->listen_str) == 0;
        }
        if (known || p->listen.is_unix) {
            continue;
        }
        int e = net_probe_tcp(&g->pools[i].listen, true);
        if (e != 0) {
            conf_errors_add(errs, p->file, p->line, "pool %s: cannot listen on %s: %s", p->name,
                            p->listen_str, strerror(-e));
        }
    }
}

static void
reload_summarize(const struct conf *cur, const struct conf *nc, struct reload_summary *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (size_t i = 0; i < nc->npools; i++) {
        const struct conf_pool *old = conf_pool_find(cur, nc->pools[i].name);
        if (old == NULL) {
            sum->added++;
        } else if (conf_pool_equal(old, &nc->pools[i])) {
            sum->kept++;
        } else {
            sum->changed++;
        }
    }
    for (size_t j = 0; j < cur->npools; j++) {
        if (conf_pool_find(nc, cur->pools[j].name) == NULL) {
            sum->removed++;
        }
    }
}

struct gen *
reload_load(const struct cli_opts *o, const struct gen *cur, struct conf_errors *errs,
            struct reload_summary *sum)
{
    struct conf *nc = NULL;
    struct gen *g;

    if (conf_load(o->conf_file, &nc, errs) != 0) {
        return NULL;
    }
    if (cli_apply_overrides(o, nc, errs) != 0) {
        conf_free(nc);
        return NULL;
    }
    g = gen_new(nc, errs);
    if (g == NULL) {
        conf_free(nc);
        return NULL;
    }
    reload_check_new_listens(cur->conf, g, errs);
    if (errs->n > 0) {
        gen_free(g);
        return NULL;
    }
    reload_keep_restart_settings(cur->conf, nc);
    reload_summarize(cur->conf, nc, sum);
    return g;
}

void
reload_apply_process_settings(const struct cli_opts *o, const struct conf *old,
                              const struct conf *nc)
{
    if (o->verbose < 0 && nc->log_level != old->log_level) {
        int level = nc->log_level >= 0 ? nc->log_level : CONF_DEFAULT_LOG_LEVEL;
        log_set_level(level);
        log_notice("reload: log level %d", level);
    }
    if (o->output == NULL && !reload_str_eq(nc->log_file, old->log_file)) {
        int rc = log_set_file(nc->log_file);
        if (rc != 0) {
            log_error("reload: cannot open log file '%s': %s", nc->log_file, strerror(-rc));
        } else {
            log_notice("reload: logging to %s", nc->log_file ? nc->log_file : "stderr");
        }
    }
}
