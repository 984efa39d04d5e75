/*
 * stats: the metric lists' renderers (see stats.h).
 */
#include "stats.h"

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
