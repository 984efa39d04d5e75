/*
 * dist: which server of a pool owns a key, reproducing twemproxy 0.5.0's
 * placement exactly so that cachemux can replace nutcracker without moving
 * a single key.
 *
 * A struct dist is built once from a pool's servers (already in identity
 * order, see dist_ident_cmp) and never changes afterwards. Servers that are
 * not live are simply left out, so ejection is a rebuild: the owner (a
 * worker, or the config loader) builds a new dist and frees the old one.
 * Lookups only read, so one dist may be shared by threads as long as its
 * owner frees it after the last reader; dist_pick never allocates.
 *
 * Layout per distribution:
 *
 *   ketama  points[]: (value, server) sorted by value. Each live server
 *           contributes 4 points per MD5 of "identity-i", and its number of
 *           points comes from twemproxy's single-precision formula. A key
 *           owns the first point whose value is >= its hash, wrapping to
 *           points[0] past the end (binary search).
 *
 *   modula  cum[]: running sum of live weights. twemproxy lays out
 *           `weight` consecutive slots per live server and picks slot
 *           hash % total; storing the slot boundaries instead gives the same
 *           answer without a table as large as the total weight.
 *
 *   random  a uniform pick among live[] with the caller's PRNG state.
 *
 * live[] maps dense positions back to indexes of the caller's server array,
 * which is what every lookup returns.
 *
 * Two behaviours of nutcracker 0.5.0 that the README does not spell out were
 * checked against the reference binary and are kept: an empty key is not
 * hashed but placed as hash 0, and a ketama "identity-i" string is cut to
 * 272 bytes before MD5.
 */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md5.h"
#include "util.h"

/*
 * twemproxy's constants: 160 points per server at equal weight, four per
 * MD5 digest. The per-server count is scaled in units of one digest.
 */
#define DIST_KETAMA_POINTS_PER_SERVER 160
#define DIST_KETAMA_POINTS_PER_HASH 4

/*
 * nutcracker 0.5.0 formats "identity-i" into a 273-byte buffer and hashes
 * at most the 272 bytes that fit (it logs "forced to truncate"). Observed
 * with the reference binary: an identity longer than about 269 bytes only
 * places keys like nutcracker when cut the same way.
 */
#define DIST_KETAMA_MAX_HOSTLEN 272

struct dist_point {
    uint32_t value;  /* position on the ring */
    uint32_t server; /* index into the caller's server array */
};

struct dist {
    enum dist_type type;
    size_t nlive;              /* live servers the dist was built over */
    uint32_t *live;            /* nlive caller indexes, identity order */
    uint64_t *cum;             /* modula: cum[i] = weights of live[0..i] */
    uint64_t total_weight;     /* modula: cum[nlive - 1] */
    struct dist_point *points; /* ketama: sorted by value, then server */
    size_t npoints;
};

static const char *const dist_names[DIST_COUNT] = {
    [DIST_KETAMA] = "ketama",
    [DIST_MODULA] = "modula",
    [DIST_RANDOM] = "random",
};

int
dist_ident_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) {
        return alen < blen ? -1 : 1;
    }
    if (alen == 0) {
        return 0;
    }
    return memcmp(a, b, alen);
}

int
dist_from_name(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    for (int i = 0; i < DIST_COUNT; i++) {
        if (strcmp(name, dist_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *
dist_name(enum dist_type type)
{
    if ((unsigned)type >= DIST_COUNT) {
        return NULL;
    }
    return dist_names[type];
}

/*
 * Points for one server, in the exact float arithmetic twemproxy uses:
 * pct and every product are single precision (so weights 1,1,7,8,8 give the
 * weight-8 servers 252 points, not 256), and the +1e-10 guard is added in
 * double and then lost again when cast back to float. The value is never
 * negative, so truncating to an integer is the floorf twemproxy calls; that
 * keeps libm out of the link. Rounding at every step assumes
 * FLT_EVAL_METHOD == 0 (x86-64 SSE, arm64), the platforms we build for.
 */
static uint32_t
dist_ketama_npoints(uint32_t weight, uint64_t total_weight, size_t nlive)
{
    float pct = (float)weight / (float)total_weight;
    float scaled = pct * DIST_KETAMA_POINTS_PER_SERVER / DIST_KETAMA_POINTS_PER_HASH * (float)nlive;
    float guarded = (float)((double)scaled + 0.0000000001);

    return (uint32_t)guarded * DIST_KETAMA_POINTS_PER_HASH;
}

/*
 * twemproxy sorts with glibc qsort comparing values only; glibc sorts a
 * continuum this small with a stable merge sort, so equal values keep
 * insertion order, which is server order. Comparing the server index
 * second gives that order with any qsort.
 */
static int
dist_point_cmp(const void *pa, const void *pb)
{
    const struct dist_point *a = pa, *b = pb;

    if (a->value != b->value) {
        return a->value < b->value ? -1 : 1;
    }
    if (a->server != b->server) {
        return a->server < b->server ? -1 : 1;
    }
    return 0;
}

static int
dist_build_ketama(struct dist *d, const struct dist_server *servers, size_t n)
{
    uint64_t total = 0;
    size_t npoints = 0, maxlen = 0, k = 0;
    char *host;

    for (size_t i = 0; i < n; i++) {
        if (servers[i].live) {
            total += servers[i].weight;
            maxlen = MAX(maxlen, servers[i].ident_len);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (servers[i].live) {
            npoints += dist_ketama_npoints(servers[i].weight, total, d->nlive);
        }
    }
    if (npoints == 0) {
        return 0;
    }

    d->points = malloc(npoints * sizeof(*d->points));
    /* "identity-" plus up to 10 digits plus the NUL snprintf writes. */
    host = malloc(maxlen + 12);
    if (d->points == NULL || host == NULL) {
        free(host);
        return -1;
    }

    for (size_t i = 0; i < n; i++) {
        const struct dist_server *s = &servers[i];
        uint32_t nhash;

        if (!s->live) {
            continue;
        }
        if (s->ident_len > 0) {
            memcpy(host, s->ident, s->ident_len);
        }
        nhash = dist_ketama_npoints(s->weight, total, d->nlive) / DIST_KETAMA_POINTS_PER_HASH;
        for (uint32_t h = 0; h < nhash; h++) {
            uint8_t digest[16];
            int tail = snprintf(host + s->ident_len, 12, "-%u", (unsigned)h);

            md5_digest(host, MIN(s->ident_len + (size_t)tail, DIST_KETAMA_MAX_HOSTLEN), digest);
            for (int x = 0; x < DIST_KETAMA_POINTS_PER_HASH; x++) {
                const uint8_t *p = digest + 4 * x;

                d->points[k].value = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                     (uint32_t)p[3] << 24;
                d->points[k].server = (uint32_t)i;
                k++;
            }
        }
    }
    free(host);

    qsort(d->points, npoints, sizeof(*d->points), dist_point_cmp);
    d->npoints = npoints;
    return 0;
}

static int
dist_build_modula(struct dist *d, const struct dist_server *servers, size_t n)
{
    uint64_t sum = 0;
    size_t k = 0;

    d->cum = malloc(d->nlive * sizeof(*d->cum));
    if (d->cum == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (servers[i].live) {
            sum += servers[i].weight;
            d->cum[k++] = sum;
        }
    }
    d->total_weight = sum;
    return 0;
}

struct dist *
dist_build(enum dist_type type, const struct dist_server *servers, size_t n)
{
    struct dist *d;
    size_t k = 0;
    int rc = 0;

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    d->type = type;

    for (size_t i = 0; i < n; i++) {
        if (servers[i].live) {
            d->nlive++;
        }
    }
    if (d->nlive == 0) {
        /* Valid: every lookup answers -1 until a rebuild brings one back. */
        return d;
    }

    d->live = malloc(d->nlive * sizeof(*d->live));
    if (d->live == NULL) {
        dist_free(d);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (servers[i].live) {
            d->live[k++] = (uint32_t)i;
        }
    }

    switch (type) {
    case DIST_KETAMA:
        rc = dist_build_ketama(d, servers, n);
        break;
    case DIST_MODULA:
        rc = dist_build_modula(d, servers, n);
        break;
    case DIST_RANDOM:
    case DIST_COUNT:
        break;
    }
    if (rc != 0) {
        dist_free(d);
        return NULL;
    }
    return d;
}

void
dist_free(struct dist *d)
{
    if (d == NULL) {
        return;
    }
    free(d->live);
    free(d->cum);
    free(d->points);
    free(d);
}

size_t
dist_live_count(const struct dist *d)
{
    return d->nlive;
}

void
dist_hashed_part(const struct dist_key_rule *rule, const uint8_t *key, size_t len,
                 const uint8_t **part, size_t *part_len)
{
    const uint8_t *open, *close;

    *part = key;
    *part_len = len;
    if (rule == NULL || !rule->has_tag || len == 0) {
        return;
    }

    /*
     * Only the first open character counts: if the close right after it is
     * adjacent (an empty tag) twemproxy does not look for a later pair, so
     * neither do we; "{}a{b}" hashes whole.
     */
    open = memchr(key, (uint8_t)rule->tag[0], len);
    if (open == NULL) {
        return;
    }
    close = memchr(open + 1, (uint8_t)rule->tag[1], len - (size_t)(open + 1 - key));
    if (close == NULL || close - open < 2) {
        return;
    }
    *part = open + 1;
    *part_len = (size_t)(close - open - 1);
}

static int
dist_random_pick(const struct dist *d, uint64_t *rng)
{
    /* Without a PRNG state the only deterministic choice is the first. */
    if (rng == NULL) {
        return (int)d->live[0];
    }
    return (int)d->live[util_rand64(rng) % d->nlive];
}

static int
dist_ketama_lookup(const struct dist *d, uint32_t hash)
{
    size_t lo = 0, hi = d->npoints;

    /* Lower bound: first point with value >= hash. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (d->points[mid].value < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == d->npoints) {
        lo = 0;
    }
    return (int)d->points[lo].server;
}

static int
dist_modula_lookup(const struct dist *d, uint32_t hash)
{
    uint64_t slot = hash % d->total_weight;
    size_t lo = 0, hi = d->nlive - 1;

    /* First live server whose slot range ends after slot. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (d->cum[mid] <= slot) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (int)d->live[lo];
}

int
dist_lookup_hash(const struct dist *d, uint32_t hash, uint64_t *rng)
{
    if (d == NULL || d->nlive == 0) {
        return -1;
    }
    switch (d->type) {
    case DIST_KETAMA:
        return dist_ketama_lookup(d, hash);
    case DIST_MODULA:
        return dist_modula_lookup(d, hash);
    case DIST_RANDOM:
        return dist_random_pick(d, rng);
    case DIST_COUNT:
        break;
    }
    return -1;
}

int
dist_pick(const struct dist *d, const struct dist_key_rule *rule, const uint8_t *key, size_t len,
          uint64_t *rng)
{
    const uint8_t *part;
    size_t part_len;
    uint32_t hash;

    if (d == NULL || d->nlive == 0) {
        return -1;
    }
    if (d->type == DIST_RANDOM) {
        return dist_random_pick(d, rng);
    }
    /*
     * twemproxy skips hashing only for a pool of one server. With one live
     * server out of several every ketama point and modula slot belongs to it
     * anyway, so skipping there too changes nothing but the cost.
     */
    if (d->nlive == 1) {
        return (int)d->live[0];
    }

    /*
     * An empty key (Redis allows one) is not hashed: nutcracker 0.5.0 uses
     * hash 0 for it, which the reference binary confirms. No rule means
     * twemproxy's defaults, fnv1a_64 and no hash_tag.
     */
    dist_hashed_part(rule, key, len, &part, &part_len);
    if (part_len == 0) {
        hash = 0;
    } else {
        hash = hash_key(rule != NULL ? rule->hash : HASH_FNV1A_64, part, part_len);
    }
    return dist_lookup_hash(d, hash, rng);
}
