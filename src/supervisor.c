/*
 * supervisor: start-up, signals, reload and shutdown of the process.
 *
 * Order matters: every address is checked before anything forks; -d forks
 * before any thread or event_base exists; all signals are blocked while the
 * workers are created, so only the supervisor's evsignal events see them.
 * Unix-socket listeners are bound here once and shared by every worker (no
 * SO_REUSEPORT for them); TCP listeners are each worker's own.
 *
 * Configurations are generations (gen.h). A reload builds and validates a
 * new one here, links it to the registry (counters and shared state by pool
 * name and server identity), posts it to every worker and makes it current;
 * old generations are freed by a periodic sweep once no worker holds them.
 */
#include "supervisor.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "cli.h"
#include "conf.h"
#include "conn.h"
#include "gen.h"
#include "log.h"
#include "net.h"
#include "notify.h"
#include "protocols.h"
#include "registry.h"
#include "reload.h"
#include "worker.h"

#define SUPERVISOR_SWEEP_MS 500
#define SUPERVISOR_SWITCH_WAIT_MS 2000 /* a reload waits this long for the workers to switch */

/*
 * A unix listener shared by the workers. It outlives the generations that
 * use it: a reload that keeps the listen address hands the same fd to the
 * next generation, and it is closed once no generation uses it.
 */
struct supervisor_unix {
    char *listen_str; /* as written, the key a reload matches on */
    char *path;
    int fd;
    unsigned long ino; /* to unlink only our own socket */
    struct supervisor_unix *next;
};

struct supervisor {
    struct conf *conf; /* the current generation's configuration */
    struct gen *gen;   /* current generation (held) */
    struct gen *gens;  /* every generation not yet freed */
    struct supervisor_unix *unix_listeners;
    uint64_t next_gen_id;
    const struct cli_opts *opts;
    struct event_base *base;
    struct worker *workers;
    int nworkers;
    struct registry reg;
    struct admin *admin;
    struct admin_reloads reloads;
    int ready_fd; /* -d: pipe to the waiting parent, or -1 */
    bool stopping;
    struct event *stop_check; /* polls the workers' exit while draining */
    struct event *sweep;      /* frees generations nobody holds */
    bool pid_written;
};

static int
supervisor_workers_auto(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
        return CPU_COUNT(&set);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Check that every TCP listen address can be bound; report all problems. */
static int
supervisor_check_listen(const struct gen *g)
{
    const struct conf *c = g->conf;
    int rc = 0;

    for (size_t i = 0; i < c->npools; i++) {
        const struct conf_pool *p = &c->pools[i];
        if (p->listen.is_unix) {
            continue;
        }
        int e = net_probe_tcp(&g->pools[i].listen, false);
        if (e == -EADDRINUSE) {
            /* Maybe another cachemux shares it (binary upgrade): fine if
               the reuseport group lets us in. */
            e = net_probe_tcp(&g->pools[i].listen, true);
            if (e == 0) {
                log_notice("pool %s: %s is shared with another process (SO_REUSEPORT)", p->name,
                           p->listen_str);
            }
        }
        if (e != 0) {
            log_error("pool %s: cannot listen on %s: %s", p->name, p->listen_str, strerror(-e));
            rc = -1;
        }
    }
    return rc;
}

/* Give each unix pool of g its shared listener: the one already open for
   the same listen address, else a new one. */
static int
supervisor_open_unix(struct supervisor *sv, struct gen *g)
{
    const struct conf *c = g->conf;

    for (size_t i = 0; i < c->npools; i++) {
        const struct conf_pool *p = &c->pools[i];
        struct supervisor_unix *u;
        if (!p->listen.is_unix) {
            continue;
        }
        for (u = sv->unix_listeners; u != NULL; u = u->next) {
            if (strcmp(u->listen_str, p->listen_str) == 0) {
                break;
            }
        }
        if (u == NULL) {
            int fd = net_listen_unix(&g->pools[i].listen, p->listen.perm, (int)p->backlog);
            if (fd < 0) {
                log_error("pool %s: cannot listen on %s: %s", p->name, p->listen.host,
                          strerror(-fd));
                return -1;
            }
            u = calloc(1, sizeof(*u));
            if (u == NULL || (u->listen_str = strdup(p->listen_str)) == NULL ||
                (u->path = strdup(p->listen.host)) == NULL) {
                log_error("pool %s: out of memory", p->name);
                if (u != NULL) {
                    free(u->listen_str);
                }
                free(u);
                close(fd);
                return -1;
            }
            struct stat st;
            u->fd = fd;
            u->ino = stat(u->path, &st) == 0 ? (unsigned long)st.st_ino : 0;
            u->next = sv->unix_listeners;
            sv->unix_listeners = u;
        }
        g->pools[i].listen_fd = u->fd;
    }
    return 0;
}

static bool
supervisor_unix_in_use(const struct supervisor *sv, const struct supervisor_unix *u)
{
    for (const struct gen *g = sv->gens; g != NULL; g = g->next) {
        for (size_t i = 0; i < g->conf->npools; i++) {
            if (g->pools[i].listen_fd == u->fd) {
                return true;
            }
        }
    }
    return false;
}

/* Close the unix listeners no generation uses any more. */
static void
supervisor_close_unix(struct supervisor *sv)
{
    struct supervisor_unix **pp = &sv->unix_listeners;

    while (*pp != NULL) {
        struct supervisor_unix *u = *pp;
        if (supervisor_unix_in_use(sv, u)) {
            pp = &u->next;
            continue;
        }
        struct stat st;
        /* Unlink only if the path is still our socket (not a successor's). */
        if (stat(u->path, &st) == 0 && (unsigned long)st.st_ino == u->ino) {
            unlink(u->path);
        }
        close(u->fd);
        *pp = u->next;
        free(u->listen_str);
        free(u->path);
        free(u);
    }
}

/* Make g (registry attached, listeners open) one of sv's generations;
   its first reference is the supervisor's. */
static void
supervisor_gen_add(struct supervisor *sv, struct gen *g)
{
    g->id = ++sv->next_gen_id;
    g->next = sv->gens;
    sv->gens = g;
}

/* Free generations that nobody holds any more. */
static void
supervisor_sweep_gens(struct supervisor *sv)
{
    struct gen **pp = &sv->gens;

    while (*pp != NULL) {
        struct gen *g = *pp;
        if (g != sv->gen && gen_unused(g)) {
            *pp = g->next;
            log_debug("configuration generation %" PRIu64 " freed", g->id);
            gen_free(g);
        } else {
            pp = &g->next;
        }
    }
    supervisor_close_unix(sv);
}

static void
supervisor_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    supervisor_sweep_gens(arg);
}

static int
supervisor_write_pid(struct supervisor *sv)
{
    const char *path = sv->conf->pid_file;
    char buf[32];
    int n, fd;

    if (path == NULL) {
        return 0;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("cannot write pid file '%s': %s", path, strerror(errno));
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        log_error("cannot write pid file '%s': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    sv->pid_written = true;
    return 0;
}

static void
supervisor_remove_pid(struct supervisor *sv)
{
    const char *path = sv->conf->pid_file;
    char buf[32];
    ssize_t n;
    int fd;

    if (!sv->pid_written) {
        return;
    }
    /* Remove it only if it still holds our pid (a successor may own it). */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        if (atoi(buf) == (int)getpid()) {
            unlink(path);
        }
    }
}

/* -d: fork, the parent waits for the child's ready byte and exits 0 or 1. */
static int
supervisor_daemonize(struct supervisor *sv)
{
    int pfd[2];
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        log_error("daemonize: pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        log_error("daemonize: fork: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        char status = 1;
        close(pfd[1]);
        if (read(pfd[0], &status, 1) != 1) {
            status = 1;
        }
        _exit(status == 0 ? 0 : 1);
    }
    close(pfd[0]);
    sv->ready_fd = pfd[1];
    if (setsid() < 0) {
        log_error("daemonize: setsid: %s", strerror(errno));
        return -1;
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (sv->conf->log_file != NULL) {
            /* Logging goes to its own fd; stderr may go away. */
            dup2(null, STDERR_FILENO);
        }
        if (null > STDERR_FILENO) {
            close(null);
        }
    }
    return 0;
}

static void
supervisor_tell_parent(struct supervisor *sv, char status)
{
    if (sv->ready_fd >= 0) {
        if (write(sv->ready_fd, &status, 1) != 1) {
            /* The parent is gone; nothing to tell. */
        }
        close(sv->ready_fd);
        sv->ready_fd = -1;
    }
}

static void
supervisor_stop_workers(struct supervisor *sv, int started)
{
    for (int i = 0; i < started; i++) {
        worker_post_stop(&sv->workers[i], sv->conf->shutdown_timeout_ms);
    }
    for (int i = 0; i < started; i++) {
        worker_join(&sv->workers[i]);
    }
}

static void
supervisor_stop_check_cb(evutil_socket_t fd, short what, void *arg)
{
    struct supervisor *sv = arg;

    (void)fd;
    (void)what;
    for (int i = 0; i < sv->nworkers; i++) {
        if (!atomic_load_explicit(&sv->workers[i].exited, memory_order_acquire)) {
            return;
        }
    }
    event_base_loopbreak(sv->base);
}

/* Graceful stop: the workers drain while this loop keeps serving stats
   and /healthz (503); it ends once every worker has exited. */
static void
supervisor_begin_stop(struct supervisor *sv)
{
    struct timeval tv = util_ms_tv(20);

    if (sv->stopping) {
        return;
    }
    sv->stopping = true;
    notify_stopping();
    for (int i = 0; i < sv->nworkers; i++) {
        worker_post_stop(&sv->workers[i], sv->conf->shutdown_timeout_ms);
    }
    /* Say "stopping" (/healthz 503) only once no worker accepts any more,
       so whoever sees it can rely on new connects being refused. Workers
       close their listeners within a loop turn; the wait is bounded. */
    for (int waited_ms = 0; waited_ms < 2000; waited_ms++) {
        bool all = true;
        for (int i = 0; i < sv->nworkers && all; i++) {
            all = atomic_load_explicit(&sv->workers[i].accepting_stopped, memory_order_acquire) ||
                  atomic_load_explicit(&sv->workers[i].exited, memory_order_acquire);
        }
        if (all) {
            break;
        }
        struct timespec ms = { 0, 1000 * 1000 };
        nanosleep(&ms, NULL);
    }
    admin_set_stopping(sv->admin);
    sv->stop_check = event_new(sv->base, -1, EV_PERSIST, supervisor_stop_check_cb, sv);
    if (sv->stop_check == NULL || event_add(sv->stop_check, &tv) != 0) {
        event_base_loopbreak(sv->base);
    }
}

/* The result of a reload is logged (and READY=1 sent) only once every
   worker serves the new generation, so that whoever waits for the line
   finds added pools accepting. Workers switch within a loop turn; the wait
   is bounded. */
static void
supervisor_wait_switched(struct supervisor *sv, uint64_t id)
{
    for (int waited_ms = 0;; waited_ms++) {
        int behind = -1;
        for (int i = 0; i < sv->nworkers && behind < 0; i++) {
            if (atomic_load_explicit(&sv->workers[i].gen_seen, memory_order_acquire) < id &&
                !atomic_load_explicit(&sv->workers[i].exited, memory_order_acquire)) {
                behind = i;
            }
        }
        if (behind < 0) {
            return;
        }
        if (waited_ms == SUPERVISOR_SWITCH_WAIT_MS) {
            log_warn("reload: worker %d still serves the previous configuration after %d ms",
                     behind, SUPERVISOR_SWITCH_WAIT_MS);
            return;
        }
        struct timespec ms = { 0, 1000 * 1000 };
        nanosleep(&ms, NULL);
    }
}

/* SIGHUP: validate the file again; if good, make it the new generation. */
static void
supervisor_reload(struct supervisor *sv)
{
    struct conf_errors errs = { 0 };
    struct reload_summary sum;
    struct gen *g = reload_load(sv->opts, sv->gen, &errs, &sum);

    if (g == NULL) {
        for (size_t i = 0; i < errs.n; i++) {
            log_error("%s", errs.msgs[i]);
        }
        log_error("reload: rejected, %zu errors in %s; still serving the previous configuration",
                  errs.n, sv->opts->conf_file);
        conf_errors_free(&errs);
        sv->reloads.rejected++;
        return;
    }
    conf_errors_free(&errs);
    if (registry_attach(&sv->reg, g) != 0 || supervisor_open_unix(sv, g) != 0) {
        log_error("reload: rejected; still serving the previous configuration");
        gen_free(g);
        supervisor_close_unix(sv);
        sv->reloads.rejected++;
        return;
    }
    struct conf *nc = g->conf;
    supervisor_gen_add(sv, g);
    reload_apply_process_settings(sv->opts, sv->conf, nc);
    for (int i = 0; i < sv->nworkers; i++) {
        worker_post_reload(&sv->workers[i], g);
    }
    struct gen *old = sv->gen;
    sv->gen = g;
    sv->conf = nc;
    admin_set_gen(sv->admin, g);
    gen_release(old);
    sv->reloads.ok++;
    sv->reloads.generation = g->id;
    supervisor_wait_switched(sv, g->id);
    log_notice("reload: %zu pools, %zu changed (%zu added, %zu removed)", nc->npools,
               sum.changed + sum.added + sum.removed, sum.added, sum.removed);
    supervisor_sweep_gens(sv);
}

static void
supervisor_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct supervisor *sv = arg;

    (void)what;
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        log_notice("signal %d: stopping gracefully (up to %" PRIu64 " ms)", (int)sig,
                   sv->conf->shutdown_timeout_ms);
        supervisor_begin_stop(sv);
        break;
    case SIGHUP:
        log_notice("signal SIGHUP: reloading %s", sv->opts->conf_file);
        (void)log_reopen();
        if (!sv->stopping) {
            notify_reloading();
            supervisor_reload(sv);
            notify_ready("%zu pools, %d workers", sv->conf->npools, sv->nworkers);
        }
        break;
    case SIGUSR1:
        (void)log_reopen();
        log_notice("signal SIGUSR1: log file reopened");
        break;
    case SIGTTIN:
        log_set_level(log_get_level() + 1);
        log_notice("log level raised to %d", log_get_level());
        break;
    case SIGTTOU:
        log_set_level(log_get_level() - 1);
        log_notice("log level lowered to %d", log_get_level());
        break;
    default:
        break;
    }
}

/* Raise the soft fd limit to the hard one; returns the limit in force. */
static uint64_t
supervisor_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log_warn("cannot raise the open files limit to %llu: %s", (unsigned long long)want,
                     strerror(errno));
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    return (uint64_t)rl.rlim_cur;
}

/* The workers that serve pool p (its workers key caps them). */
static int
supervisor_pool_workers(const struct supervisor *sv, const struct conf_pool *p)
{
    return p->workers > 0 && p->workers < (uint32_t)sv->nworkers ? (int)p->workers : sv->nworkers;
}

static void
supervisor_log_capacity(const struct supervisor *sv)
{
    const struct conf *c = sv->conf;
    uint64_t nofile = supervisor_raise_nofile();
    uint64_t used = 64; /* stdio, log, event fds, stats, slack */

    for (size_t i = 0; i < c->npools; i++) {
        /* every set of server conns (Redis: RESP2, and RESP3 once a client speaks it) */
        uint64_t sets = MAX(protocols_get(c->pools[i].proto)->nsets, 1);
        used += (uint64_t)supervisor_pool_workers(sv, &c->pools[i]) *
                (1 + c->pools[i].nservers * c->pools[i].server_connections * sets);
    }
    log_notice("open files limit %" PRIu64 ": room for about %" PRIu64 " client connections",
               nofile, nofile > used ? nofile - used : 0);

    for (size_t i = 0; i < c->npools; i++) {
        const struct conf_pool *p = &c->pools[i];
        int nw = supervisor_pool_workers(sv, p);
        log_notice("pool %s: listening on %s (%s, %s/%s, %zu servers, %d workers)", p->name,
                   p->listen_str, proto_name(p->proto), hash_name(p->key_rule.hash),
                   dist_name(p->dist), p->nservers, nw);
        for (size_t j = 0; j < p->nservers; j++) {
            unsigned sets = MAX(protocols_get(p->proto)->nsets, 1);
            log_info("pool %s: server %s will get %u connections from cachemux%s", p->name,
                     p->servers[j].ident, (unsigned)nw * p->server_connections,
                     sets > 1 ? " per protocol version its clients speak" : "");
        }
    }
}

int
supervisor_run(struct gen *g, const struct cli_opts *o)
{
    struct conf *c = g->conf;
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGTTIN, SIGTTOU };
    struct event *sigev[ARRAY_SIZE(sigs)] = { 0 };
    struct supervisor sv;
    int rc = 1, started = 0;
    bool reg_ok = false;

    memset(&sv, 0, sizeof(sv));
    sv.conf = c;
    sv.opts = o;
    sv.ready_fd = -1;

    if (supervisor_check_listen(g) != 0) {
        goto out;
    }
    if (o->daemonize && supervisor_daemonize(&sv) != 0) {
        goto out;
    }
    int lrc = log_set_file(c->log_file);
    if (lrc != 0) {
        fprintf(stderr, "cachemux: cannot open log file '%s': %s\n", c->log_file, strerror(-lrc));
        goto out;
    }
    if (supervisor_write_pid(&sv) != 0) {
        goto out;
    }
    sv.nworkers = c->workers > 0 ? c->workers : supervisor_workers_auto();
    sv.workers = calloc((size_t)sv.nworkers, sizeof(*sv.workers));
    if (sv.workers == NULL || registry_init(&sv.reg, sv.nworkers) != 0) {
        log_error("out of memory");
        goto out;
    }
    reg_ok = true;
    if (registry_attach(&sv.reg, g) != 0) {
        log_error("out of memory");
        goto out;
    }
    supervisor_gen_add(&sv, g);
    sv.gen = g;
    g = NULL;
    if (supervisor_open_unix(&sv, sv.gen) != 0) {
        goto out;
    }
    sv.reloads.generation = sv.gen->id;

    sv.base = event_base_new();
    if (sv.base == NULL || event_base_priority_init(sv.base, 2) != 0) {
        log_error("cannot create the supervisor's event base");
        goto out;
    }
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        /* Signals before requests in the same turn: a /healthz or stats
           request that arrives after SIGTERM must see the stop. */
        sigev[i] = evsignal_new(sv.base, sigs[i], supervisor_signal_cb, &sv);
        if (sigev[i] == NULL || event_priority_set(sigev[i], 0) != 0 ||
            evsignal_add(sigev[i], NULL) != 0) {
            log_error("cannot watch signal %d", sigs[i]);
            goto out;
        }
    }
    struct timeval sweep_tv = util_ms_tv(SUPERVISOR_SWEEP_MS);
    sv.sweep = event_new(sv.base, -1, EV_PERSIST, supervisor_sweep_cb, &sv);
    if (sv.sweep == NULL || event_add(sv.sweep, &sweep_tv) != 0) {
        log_error("out of memory");
        goto out;
    }

    log_notice("cachemux-%s starting with %d workers (pid %d)", PACKAGE_VERSION, sv.nworkers,
               (int)getpid());
    supervisor_log_capacity(&sv);
    for (int i = 0; i < sv.nworkers; i++) {
        gen_hold(sv.gen);
        int e = worker_start(&sv.workers[i], i, sv.nworkers, sv.gen, sv.reg.workers);
        if (e != 0) {
            gen_release(sv.gen);
            log_error("cannot start worker %d: %s", i, strerror(-e));
            goto out;
        }
        started++;
    }
    for (int i = 0; i < sv.nworkers; i++) {
        if (worker_wait_ready(&sv.workers[i]) != 0) {
            log_error("worker %d failed to start: %s", i, sv.workers[i].start_err);
            goto out;
        }
    }
    char aerr[256];
    sv.admin = admin_start(sv.base, sv.gen, &sv.reg, &sv.reloads, aerr, sizeof(aerr));
    if (sv.admin == NULL) {
        log_error("%s", aerr);
        goto out;
    }
    log_notice("ready: %zu pools, %d workers", c->npools, sv.nworkers);
    notify_ready("%zu pools, %d workers", c->npools, sv.nworkers);
    supervisor_tell_parent(&sv, 0);

    event_base_dispatch(sv.base);
    rc = 0;

out:
    supervisor_stop_workers(&sv, started);
    admin_stop(sv.admin);
    if (sv.stop_check != NULL) {
        event_free(sv.stop_check);
    }
    if (sv.sweep != NULL) {
        event_free(sv.sweep);
    }
    supervisor_tell_parent(&sv, 1);
    supervisor_remove_pid(&sv);
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        if (sigev[i] != NULL) {
            event_free(sigev[i]);
        }
    }
    if (sv.base != NULL) {
        event_base_free(sv.base);
    }
    free(sv.workers);
    if (rc == 0) {
        log_notice("stopped");
    }
    /* Every worker has let go by now: free every generation. */
    if (sv.gen != NULL) {
        gen_release(sv.gen);
        sv.gen = NULL;
        supervisor_sweep_gens(&sv);
    } else {
        gen_free(g);
    }
    if (reg_ok) {
        registry_free(&sv.reg);
    }
    return rc;
}
