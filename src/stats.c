/*
 * stats: the metric lists' renderers (see stats.h).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

static const char *const stats_pool_names[] = {
#define STATS_NAME(name, type, desc) #name,
    STATS_POOL_LIST(STATS_NAME)
};
static const char *const stats_server_names[] = {
    STATS_SERVER_LIST(STATS_NAME)
#undef STATS_NAME
};

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
