/*
 * stats: the metric lists' renderers (see stats.h).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "util.h"

// clang-format off
static const char *const stats_pool_names[] = {
#define STATS_NAME(name, type, desc) #name,
    STATS_POOL_LIST(STATS_NAME)
};
static const char *const stats_server_names[] = {
    STATS_SERVER_LIST(STATS_NAME)
#undef STATS_NAME
};

#define STATS_CLOSE_NAME(name, desc) #name,
#define STATS_CLOSE_DESC(name, desc) desc,
const char *const stats_client_close_names[STATS_CLIENT_CLOSE_N] = {
    STATS_CLIENT_CLOSE_LIST(STATS_CLOSE_NAME)
};
const char *const stats_client_close_descs[STATS_CLIENT_CLOSE_N] = {
    STATS_CLIENT_CLOSE_LIST(STATS_CLOSE_DESC)
};
const char *const stats_server_close_names[STATS_SERVER_CLOSE_N] = {
    STATS_SERVER_CLOSE_LIST(STATS_CLOSE_NAME)
};
const char *const stats_server_close_descs[STATS_SERVER_CLOSE_N] = {
    STATS_SERVER_CLOSE_LIST(STATS_CLOSE_DESC)
};
const char *const stats_tls_fail_names[STATS_TLS_FAIL_N] = {
    STATS_TLS_FAIL_LIST(STATS_CLOSE_NAME)
};
#undef STATS_CLOSE_NAME
#undef STATS_CLOSE_DESC
// clang-format on

void
stats_tls_sum(struct stats_tls_view *v, const struct stats_tls *t)
{
    for (size_t i = 0; i < STATS_TLS_N; i++) {
        v->f[i] += stats_get(&t->f[i]);
    }
    for (size_t i = 0; i < STATS_TLS_FAIL_N; i++) {
        v->fail[i] += stats_get(&t->fail[i]);
    }
}

static int
stats_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* A JSON string; names are printable ASCII already, but stay safe. */
static int
stats_put_str(struct buf *b, const char *s)
{
    int rc = buf_append(b, "\"", 1);

    for (; rc == 0 && *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char esc[2] = { '\\', (char)ch };
            rc = buf_append(b, esc, 2);
        } else if (ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            rc = stats_puts(b, esc);
        } else {
            rc = buf_append(b, &ch, 1);
        }
    }
    return rc == 0 ? buf_append(b, "\"", 1) : rc;
}

static int
stats_put_num(struct buf *b, const char *name, uint64_t v, bool comma)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), "%s\"%s\":%" PRIu64, comma ? ", " : "", name, v);

    return buf_append(b, tmp, (size_t)n);
}

int
stats_render_json(struct buf *b, const struct stats_doc *d)
{
    int rc = 0;

    rc |= stats_puts(b, "{\"service\":");
    rc |= stats_put_str(b, d->service);
    rc |= stats_puts(b, ", \"source\":");
    rc |= stats_put_str(b, d->source);
    rc |= stats_puts(b, ", \"version\":");
    rc |= stats_put_str(b, d->version);
    rc |= stats_put_num(b, "uptime", d->uptime, true);
    rc |= stats_put_num(b, "timestamp", d->timestamp, true);
    rc |= stats_put_num(b, "total_connections", d->total_connections, true);
    rc |= stats_put_num(b, "curr_connections", d->curr_connections, true);
    for (size_t i = 0; i < d->npools; i++) {
        const struct stats_pool_view *p = &d->pools[i];
        rc |= stats_puts(b, i == 0 ? ", " : ",");
        rc |= stats_put_str(b, p->name);
        rc |= stats_puts(b, ": {");
        for (size_t f = 0; f < STATS_POOL_NFIELDS; f++) {
            rc |= stats_put_num(b, stats_pool_names[f], p->f[f], f > 0);
        }
        for (size_t s = 0; s < p->nservers; s++) {
            rc |= stats_puts(b, s == 0 ? ", " : ",");
            rc |= stats_put_str(b, p->server_names[s]);
            rc |= stats_puts(b, ": {");
            for (size_t f = 0; f < STATS_SERVER_NFIELDS; f++) {
                rc |= stats_put_num(b, stats_server_names[f], p->sf[s][f], f > 0);
            }
            rc |= stats_puts(b, "}");
        }
        rc |= stats_puts(b, "}");
    }
    rc |= stats_puts(b, "}\n");
    return rc == 0 ? 0 : -1;
}

const uint64_t stats_hist_bounds_us[STATS_HIST_NBOUNDS] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void
stats_hist_observe(struct stats_hist *h, uint64_t us)
{
    size_t i = 0;

    while (i < STATS_HIST_NBOUNDS && us > stats_hist_bounds_us[i]) {
        i++;
    }
    stats_add(&h->b[i], 1);
    stats_add(&h->sum_us, (int64_t)us);
}

void
stats_hist_sum(struct stats_hist_view *v, const struct stats_hist *h)
{
    for (size_t i = 0; i < STATS_HIST_NBUCKETS; i++) {
        v->b[i] += stats_get(&h->b[i]);
    }
    v->sum_us += stats_get(&h->sum_us);
}

// clang-format off
static const enum stats_type stats_pool_types[] = {
#define STATS_TYPE(name, type, desc) type,
    STATS_POOL_LIST(STATS_TYPE)
};
static const enum stats_type stats_server_types[] = {
    STATS_SERVER_LIST(STATS_TYPE)
#undef STATS_TYPE
};
static const char *const stats_pool_descs[] = {
#define STATS_DESC(name, type, desc) desc,
    STATS_POOL_LIST(STATS_DESC)
};
static const char *const stats_server_descs[] = {
    STATS_SERVER_LIST(STATS_DESC)
#undef STATS_DESC
};
// clang-format on

/* Label values: escape backslash, quote and newline as the format asks. */
static int
stats_put_label(struct buf *b, const char *s)
{
    int rc = 0;

    for (; rc == 0 && *s != '\0'; s++) {
        if (*s == '\\' || *s == '"') {
            char esc[2] = { '\\', *s };
            rc = buf_append(b, esc, 2);
        } else if (*s == '\n') {
            rc = buf_append(b, "\\n", 2);
        } else {
            rc = buf_append(b, s, 1);
        }
    }
    return rc;
}

static int
stats_prom_head(struct buf *b, const char *name, const char *type, const char *help)
{
    char tmp[512];
    int n = snprintf(tmp, sizeof(tmp), "# HELP cachemux_%s %s\n# TYPE cachemux_%s %s\n", name, help,
                     name, type);

    return buf_append(b, tmp, (size_t)MIN((size_t)n, sizeof(tmp) - 1));
}

/* ,key="val", val escaped as a label value. */
static int
stats_prom_label(struct buf *b, const char *key, const char *val)
{
    int rc = stats_puts(b, ",");

    rc |= stats_puts(b, key);
    rc |= stats_puts(b, "=\"");
    rc |= stats_put_label(b, val);
    rc |= stats_puts(b, "\"");
    return rc;
}

/* cachemux_<name><suffix>{pool="p"[,server="s"], the labels left open. */
static int
stats_prom_open(struct buf *b, const char *name, const char *suffix, const char *pool,
                const char *server)
{
    int rc = stats_puts(b, "cachemux_");

    rc |= stats_puts(b, name);
    rc |= stats_puts(b, suffix);
    rc |= stats_puts(b, "{pool=\"");
    rc |= stats_put_label(b, pool);
    rc |= stats_puts(b, "\"");
    if (server != NULL) {
        rc |= stats_prom_label(b, "server", server);
    }
    return rc;
}

/* name{pool="p"[,server="s"][,reason="r"][,le="x"]} value */
static int
stats_prom_sample_r(struct buf *b, const char *name, const char *suffix, const char *pool,
                    const char *server, const char *reason, const char *le, const char *value)
{
    int rc = stats_prom_open(b, name, suffix, pool, server);

    if (reason != NULL) {
        rc |= stats_prom_label(b, "reason", reason);
    }
    if (le != NULL) {
        rc |= stats_prom_label(b, "le", le);
    }
    rc |= stats_puts(b, "} ");
    rc |= stats_puts(b, value);
    rc |= stats_puts(b, "\n");
    return rc;
}

static int
stats_prom_sample(struct buf *b, const char *name, const char *suffix, const char *pool,
                  const char *server, const char *le, const char *value)
{
    return stats_prom_sample_r(b, name, suffix, pool, server, NULL, le, value);
}

/* Close reasons: every reason is listed, zeros included, so a rate()
   over a reason that has not happened yet is 0, not absent. */
static int
stats_prom_closed(struct buf *b, const struct stats_doc *d)
{
    char val[32];
    int rc = stats_prom_head(b, "client_closed_total", "counter",
                             "Client connections closed, by reason");

    for (size_t p = 0; p < d->npools; p++) {
        for (size_t r = 0; r < STATS_CLIENT_CLOSE_N; r++) {
            snprintf(val, sizeof(val), "%" PRIu64, d->pools[p].closed[r]);
            rc |= stats_prom_sample_r(b, "client_closed_total", "", d->pools[p].name, NULL,
                                      stats_client_close_names[r], NULL, val);
        }
    }
    rc |= stats_prom_head(b, "server_closed_total", "counter",
                          "Server connections closed, by reason");
    for (size_t p = 0; p < d->npools; p++) {
        for (size_t s = 0; s < d->pools[p].nservers; s++) {
            for (size_t r = 0; r < STATS_SERVER_CLOSE_N; r++) {
                snprintf(val, sizeof(val), "%" PRIu64, d->pools[p].sclosed[s][r]);
                rc |= stats_prom_sample_r(b, "server_closed_total", "", d->pools[p].name,
                                          d->pools[p].server_names[s], stats_server_close_names[r],
                                          NULL, val);
            }
        }
    }
    return rc;
}

/* name{pool="p"[,server="s"][,key="val"]} value: the TLS families. */
static int
stats_prom_kv(struct buf *b, const char *name, const char *pool, const char *server,
              const char *key, const char *val, uint64_t value)
{
    char num[32];
    int rc = stats_prom_open(b, name, "", pool, server);

    if (key != NULL) {
        rc |= stats_prom_label(b, key, val);
    }
    snprintf(num, sizeof(num), "} %" PRIu64 "\n", value);
    rc |= stats_puts(b, num);
    return rc;
}

/* server_connections of v's servers, one sample per conn set (proto label). */
static int
stats_prom_sets(struct buf *b, const char *name, const struct stats_pool_view *v)
{
    int rc = 0;

    for (size_t s = 0; s < v->nservers; s++) {
        for (size_t k = 0; k < STATS_CONN_SETS && v->set_labels[k] != NULL; k++) {
            rc |= stats_prom_kv(b, name, v->name, v->server_names[s], "proto", v->set_labels[k],
                                v->sconns[s][k]);
        }
    }
    return rc;
}

/* One side's TLS families (server: the server side, per server). */
static int
stats_prom_tls_side(struct buf *b, const struct stats_doc *d, bool server)
{
    static const char *const total[] = { "tls_handshakes_total", "server_tls_handshakes_total" };
    static const char *const resumed[] = { "tls_handshakes_resumed_total",
                                           "server_tls_handshakes_resumed_total" };
    static const char *const failed[] = { "tls_handshakes_failed_total",
                                          "server_tls_handshakes_failed_total" };
    static const char *const conns[] = { "tls_connections", "server_tls_connections" };
    int rc = 0;

    rc |= stats_prom_head(b, total[server], "counter", "TLS handshakes completed");
    for (size_t p = 0; p < d->npools; p++) {
        const struct stats_pool_view *v = &d->pools[p];
        for (size_t s = 0; server && v->server_tls && s < v->nservers; s++) {
            rc |= stats_prom_kv(b, total[1], v->name, v->server_names[s], NULL, NULL,
                                v->stls[s].f[STATS_TLS_handshakes]);
        }
        if (!server && v->tls) {
            rc |= stats_prom_kv(b, total[0], v->name, NULL, NULL, NULL,
                                v->tls_v.f[STATS_TLS_handshakes]);
        }
    }
    rc |= stats_prom_head(b, resumed[server], "counter",
                          "TLS handshakes that resumed a session (no full handshake)");
    for (size_t p = 0; p < d->npools; p++) {
        const struct stats_pool_view *v = &d->pools[p];
        for (size_t s = 0; server && v->server_tls && s < v->nservers; s++) {
            rc |= stats_prom_kv(b, resumed[1], v->name, v->server_names[s], NULL, NULL,
                                v->stls[s].f[STATS_TLS_resumed]);
        }
        if (!server && v->tls) {
            rc |= stats_prom_kv(b, resumed[0], v->name, NULL, NULL, NULL,
                                v->tls_v.f[STATS_TLS_resumed]);
        }
    }
    rc |= stats_prom_head(b, failed[server], "counter", "TLS handshakes that failed, by reason");
    for (size_t p = 0; p < d->npools; p++) {
        const struct stats_pool_view *v = &d->pools[p];
        for (size_t r = 0; r < STATS_TLS_FAIL_N; r++) {
            for (size_t s = 0; server && v->server_tls && s < v->nservers; s++) {
                rc |= stats_prom_kv(b, failed[1], v->name, v->server_names[s], "reason",
                                    stats_tls_fail_names[r], v->stls[s].fail[r]);
            }
            if (!server && v->tls) {
                rc |= stats_prom_kv(b, failed[0], v->name, NULL, "reason", stats_tls_fail_names[r],
                                    v->tls_v.fail[r]);
            }
        }
    }
    rc |= stats_prom_head(b, conns[server], "gauge", "Open TLS connections, by TLS version");
    for (size_t p = 0; p < d->npools; p++) {
        const struct stats_pool_view *v = &d->pools[p];
        for (size_t s = 0; server && v->server_tls && s < v->nservers; s++) {
            rc |= stats_prom_kv(b, conns[1], v->name, v->server_names[s], "version", "TLSv1.2",
                                v->stls[s].f[STATS_TLS_v12]);
            rc |= stats_prom_kv(b, conns[1], v->name, v->server_names[s], "version", "TLSv1.3",
                                v->stls[s].f[STATS_TLS_v13]);
        }
        if (!server && v->tls) {
            rc |= stats_prom_kv(b, conns[0], v->name, NULL, "version", "TLSv1.2",
                                v->tls_v.f[STATS_TLS_v12]);
            rc |= stats_prom_kv(b, conns[0], v->name, NULL, "version", "TLSv1.3",
                                v->tls_v.f[STATS_TLS_v13]);
        }
    }
    return rc;
}

static int
stats_prom_tls(struct buf *b, const struct stats_doc *d)
{
    bool any = false, any_server = false;
    int rc = 0;

    for (size_t p = 0; p < d->npools; p++) {
        any = any || d->pools[p].tls;
        any_server = any_server || d->pools[p].server_tls;
    }
    if (any) {
        rc |= stats_prom_tls_side(b, d, false);
    }
    if (any_server) {
        rc |= stats_prom_tls_side(b, d, true);
    }
    if (!any && !any_server) {
        return rc;
    }
    rc |= stats_prom_head(b, "tls_cert_expiry_timestamp_seconds", "gauge",
                          "When a certificate cachemux presents expires, seconds since the epoch");
    for (size_t p = 0; p < d->npools; p++) {
        const struct stats_pool_view *v = &d->pools[p];
        if (v->cert_file != NULL) {
            rc |= stats_prom_kv(b, "tls_cert_expiry_timestamp_seconds", v->name, NULL, "file",
                                v->cert_file, (uint64_t)MAX(v->cert_not_after, 0));
        }
        if (v->server_cert_file != NULL) {
            rc |= stats_prom_kv(b, "tls_cert_expiry_timestamp_seconds", v->name, NULL, "file",
                                v->server_cert_file, (uint64_t)MAX(v->server_cert_not_after, 0));
        }
    }
    return rc;
}

static int
stats_prom_hist(struct buf *b, const char *name, const char *pool, const char *server,
                const struct stats_hist_view *h)
{
    char le[32], val[32];
    uint64_t cum = 0;
    int rc = 0;

    for (size_t i = 0; i < STATS_HIST_NBUCKETS; i++) {
        cum += h->b[i];
        if (i < STATS_HIST_NBOUNDS) {
            snprintf(le, sizeof(le), "%g", (double)stats_hist_bounds_us[i] / 1e6);
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        snprintf(val, sizeof(val), "%" PRIu64, cum);
        rc |= stats_prom_sample(b, name, "_bucket", pool, server, le, val);
    }
    snprintf(val, sizeof(val), "%.6f", (double)h->sum_us / 1e6);
    rc |= stats_prom_sample(b, name, "_sum", pool, server, NULL, val);
    /* _count is the +Inf bucket by construction. */
    snprintf(val, sizeof(val), "%" PRIu64, cum);
    rc |= stats_prom_sample(b, name, "_count", pool, server, NULL, val);
    return rc;
}

int
stats_render_prom(struct buf *b, const struct stats_doc *d)
{
    char tmp[256], val[32];
    int rc = 0;

    snprintf(tmp, sizeof(tmp),
             "# HELP cachemux_uptime_seconds Seconds since the process started\n"
             "# TYPE cachemux_uptime_seconds gauge\n"
             "cachemux_uptime_seconds %" PRIu64 "\n",
             d->uptime);
    rc |= stats_puts(b, tmp);
    snprintf(
        tmp, sizeof(tmp),
        "# HELP cachemux_connections_total Connections ever opened (clients, servers, listeners)\n"
        "# TYPE cachemux_connections_total counter\n"
        "cachemux_connections_total %" PRIu64 "\n",
        d->total_connections);
    rc |= stats_puts(b, tmp);
    snprintf(tmp, sizeof(tmp),
             "# HELP cachemux_connections Connections open now (clients, servers, listeners)\n"
             "# TYPE cachemux_connections gauge\n"
             "cachemux_connections %" PRIu64 "\n",
             d->curr_connections);
    rc |= stats_puts(b, tmp);

    snprintf(tmp, sizeof(tmp),
             "# HELP cachemux_reload_generation Configuration generation in force (1 at start)\n"
             "# TYPE cachemux_reload_generation gauge\n"
             "cachemux_reload_generation %" PRIu64 "\n",
             d->reload_generation);
    rc |= stats_puts(b, tmp);
    snprintf(tmp, sizeof(tmp),
             "# HELP cachemux_reloads_total Configuration reloads by result\n"
             "# TYPE cachemux_reloads_total counter\n"
             "cachemux_reloads_total{result=\"ok\"} %" PRIu64 "\n"
             "cachemux_reloads_total{result=\"rejected\"} %" PRIu64 "\n",
             d->reloads_ok, d->reloads_rejected);
    rc |= stats_puts(b, tmp);
    rc |= stats_puts(
        b, "# HELP cachemux_worker_client_connections Client connections open on each worker\n"
           "# TYPE cachemux_worker_client_connections gauge\n");
    for (size_t w = 0; w < d->nworkers; w++) {
        snprintf(tmp, sizeof(tmp),
                 "cachemux_worker_client_connections{worker=\"%zu\"} %" PRIu64 "\n", w,
                 d->worker_clients[w]);
        rc |= stats_puts(b, tmp);
    }
    rc |= stats_puts(b,
                     "# HELP cachemux_worker_requests_total Client requests parsed by each worker\n"
                     "# TYPE cachemux_worker_requests_total counter\n");
    for (size_t w = 0; w < d->nworkers; w++) {
        snprintf(tmp, sizeof(tmp), "cachemux_worker_requests_total{worker=\"%zu\"} %" PRIu64 "\n",
                 w, d->worker_requests[w]);
        rc |= stats_puts(b, tmp);
    }

    for (size_t f = 0; f < STATS_POOL_NFIELDS; f++) {
        bool counter = stats_pool_types[f] == STATS_COUNTER;
        char name[64];
        snprintf(name, sizeof(name), "%s%s", stats_pool_names[f], counter ? "_total" : "");
        rc |= stats_prom_head(b, name, counter ? "counter" : "gauge",
                              stats_pool_descs[f] + (stats_pool_descs[f][0] == '#' ? 2 : 0));
        for (size_t p = 0; p < d->npools; p++) {
            snprintf(val, sizeof(val), "%" PRIu64, d->pools[p].f[f]);
            rc |= stats_prom_sample(b, name, "", d->pools[p].name, NULL, NULL, val);
        }
    }
    for (size_t f = 0; f < STATS_SERVER_NFIELDS; f++) {
        bool counter = stats_server_types[f] == STATS_COUNTER;
        char name[64];
        snprintf(name, sizeof(name), "%s%s", stats_server_names[f], counter ? "_total" : "");
        rc |= stats_prom_head(b, name, counter ? "counter" : "gauge",
                              stats_server_descs[f] + (stats_server_descs[f][0] == '#' ? 2 : 0));
        for (size_t p = 0; p < d->npools; p++) {
            const struct stats_pool_view *v = &d->pools[p];
            if (f == STATS_S_server_connections && v->set_labels[0] != NULL) {
                rc |= stats_prom_sets(b, name, v);
                continue;
            }
            for (size_t s = 0; s < d->pools[p].nservers; s++) {
                snprintf(val, sizeof(val), "%" PRIu64, d->pools[p].sf[s][f]);
                rc |= stats_prom_sample(b, name, "", d->pools[p].name, d->pools[p].server_names[s],
                                        NULL, val);
            }
        }
    }
    rc |= stats_prom_closed(b, d);
    rc |= stats_prom_tls(b, d);
    rc |= stats_prom_head(b, "request_duration_seconds", "histogram",
                          "Request time per pool, from parsed to reply written");
    for (size_t p = 0; p < d->npools; p++) {
        rc |= stats_prom_hist(b, "request_duration_seconds", d->pools[p].name, NULL,
                              &d->pools[p].hist);
    }
    rc |= stats_prom_head(b, "server_request_duration_seconds", "histogram",
                          "Request time per server, from parsed to reply written");
    for (size_t p = 0; p < d->npools; p++) {
        for (size_t s = 0; s < d->pools[p].nservers; s++) {
            rc |= stats_prom_hist(b, "server_request_duration_seconds", d->pools[p].name,
                                  d->pools[p].server_names[s], &d->pools[p].shist[s]);
        }
    }
    return rc == 0 ? 0 : -1;
}

const char *
stats_type_name(enum stats_type t)
{
    switch (t) {
    case STATS_COUNTER:
        return "counter";
    case STATS_GAUGE:
        return "gauge";
    case STATS_TIMESTAMP:
        return "timestamp";
    }
    return "?";
}

void
stats_describe(FILE *out)
{
#define STATS_DESCRIBE(name, type, desc) \
    fprintf(out, "  %-20s%-11s\"%s\"\n", #name, stats_type_name(type), desc);

    fprintf(out, "pool stats:\n");
    STATS_POOL_LIST(STATS_DESCRIBE)
    fprintf(out, "\nserver stats:\n");
    STATS_SERVER_LIST(STATS_DESCRIBE)
#undef STATS_DESCRIBE
}
