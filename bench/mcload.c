/*
 * mcload: closed-loop load generator for the memcached ASCII protocol.
 *
 * Build: gcc -O2 -pthread -o mcload bench/mcload.c   (libc only)
 *
 * N connections (default 50) each keep D requests in flight (default 1) and
 * send a new one as each reply completes, for a duration (-t) or a total
 * request count (-n). Connections are spread over T threads (default 1), each
 * with its own epoll loop; sockets are non-blocking, level-triggered, and
 * written once per loop turn (EPOLLOUT is armed only after a short write).
 *
 * Workloads:
 *   getset   90% "get k" / 10% "set k 0 0 100" (-r sets the set percentage)
 *   mget10   "get k1 .. k10" (-m sets the key count)
 * Keys are "mcl:<n>" for n uniform in [0, K). Every value is a pattern derived
 * from its key, so each VALUE block is checked byte for byte against the key it
 * names and the keys that were asked for. Before the run the K keys are stored
 * with pipelined sets (skip with -N, or only do that with -w populate).
 *
 * Every reply is parsed. Errors counted: ERROR / CLIENT_ERROR / SERVER_ERROR,
 * a set reply other than STORED, a VALUE for a key that was not requested or
 * with a wrong length or body, an unparsable reply, a connection closed by the
 * peer (its outstanding requests count as errors; the connection is re-opened).
 * A get that finds fewer keys than requested counts as a miss (not an error).
 *
 * Latency is taken per request from the moment it is queued for writing (the
 * write follows in the same loop turn) to the moment its last reply byte was
 * read, into a log-linear histogram of nanoseconds (128 sub-buckets per power
 * of two: under 0.8% error), merged over all threads.
 *
 * Output: one line of key=value pairs, e.g.
 *   workload=getset conns=50 depth=1 ops=1234567 seconds=10.000
 *   ops_per_sec=123456.7 p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 *   errors=0 misses=0 client_cpu_us_per_op=..
 * Exit status: 0, or 1 if errors > 0, 2 on a usage or setup failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_MGET 100
#define KEY_MAX 32
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB + 48u * HIST_SUB)

enum workload { WL_GETSET, WL_MGET, WL_POPULATE };
enum rtype { R_GET, R_SET };

struct opts {
    const char *host;
    const char *port;
    int conns;
    int depth;
    int threads;
    double duration;
    double warmup;
    uint64_t count;
    enum workload wl;
    int set_pct;
    int mget_keys;
    uint32_t keys;
    int vsize;
    bool populate;
    bool quiet;
    uint64_t seed;
};

static struct opts O = {
    .host = "127.0.0.1", .port = "11211", .conns = 50, .depth = 1, .threads = 1,
    .duration = 10.0, .warmup = 0.0, .count = 0, .wl = WL_GETSET, .set_pct = 10,
    .mget_keys = 10, .keys = 10000, .vsize = 100, .populate = true, .quiet = false,
    .seed = 0x9e3779b97f4a7c15ull,
};

static struct addrinfo *g_addr;
static uint64_t g_t_start;      /* ns: measurement starts (after warm-up) */
static uint64_t g_t_end;        /* ns: measurement ends (duration mode) */
static atomic_int g_stop;

struct hist {
    uint64_t b[HIST_BUCKETS];
    uint64_t n;
    uint64_t max;
};

struct req {
    uint64_t t0;
    uint8_t type;
    uint8_t nkeys;
    uint32_t key[MAX_MGET];
};

struct conn {
    int fd;
    struct thread *th;
    /* input */
    char *in;
    size_t in_len, in_cap;
    /* output */
    char *out;
    size_t out_off, out_len, out_cap;
    bool want_out;
    /* in-flight requests: ring of depth slots */
    struct req *ring;
    int head, inflight;
    uint64_t rng;
};

struct thread {
    int id;
    pthread_t tid;
    int epfd;
    struct conn *conns;
    int nconns;
    uint64_t quota;       /* count mode: requests to issue; 0 = unlimited */
    uint64_t issued;
    uint64_t done;        /* completed in the measured window */
    uint64_t done_all;    /* completed overall */
    uint64_t errors;
    uint64_t misses;
    uint64_t reconnects;
    uint64_t last_progress;
    struct hist h;
};

/* ------------------------------------------------------------------------ */

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("mcload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL)
        die("out of memory");
    return q;
}

/* --- histogram ----------------------------------------------------------- */

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - HIST_SUB_BITS;
    unsigned idx = HIST_SUB + e * HIST_SUB + (unsigned)((v >> e) - HIST_SUB);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Middle of the bucket's range. */
static double hist_value(unsigned idx)
{
    if (idx < HIST_SUB)
        return (double)idx;
    unsigned e = (idx - HIST_SUB) / HIST_SUB;
    uint64_t mant = HIST_SUB + (idx - HIST_SUB) % HIST_SUB;
    uint64_t low = mant << e;
    return (double)low + (double)((1ull << e) - 1) / 2.0;
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static double hist_pct(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0.0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->n + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    uint64_t acc = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        acc += h->b[i];
        if (acc >= rank) {
            double v = hist_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* --- keys and values ----------------------------------------------------- */

static int key_str(uint32_t k, char *buf)
{
    return sprintf(buf, "mcl:%u", k);
}

/* The value of key k: its decimal number and '.', repeated, cut to vsize.
   Filled and checked with memcpy/memcmp over the period, not byte by byte:
   a byte loop costs mcload ~2 ns a byte, so with 100 KB values the load
   generator, not the proxy, would set the pace. */
static void value_fill(uint32_t k, char *dst, int n)
{
    char pat[16];
    int pl = sprintf(pat, "%u.", k);
    int have = n < pl ? n : pl;
    memcpy(dst, pat, (size_t)have);
    while (have < n) { /* have is a whole number of periods: double it */
        int m = have <= n - have ? have : n - have;
        memcpy(dst + have, dst, (size_t)m);
        have += m;
    }
}

static bool value_check(uint32_t k, const char *src, int n)
{
    char pat[16];
    int pl = sprintf(pat, "%u.", k);
    if (n <= pl)
        return memcmp(src, pat, (size_t)n) == 0;
    /* the first period is the pattern, and every byte repeats the one a
       period before it */
    return memcmp(src, pat, (size_t)pl) == 0 &&
           memcmp(src + pl, src, (size_t)(n - pl)) == 0;
}

/* Parse "mcl:<n>" of length len; returns false if not one of ours. */
static bool key_parse(const char *s, size_t len, uint32_t *k)
{
    if (len < 5 || len > 14 || memcmp(s, "mcl:", 4) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 4; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v >= O.keys)
        return false;
    *k = (uint32_t)v;
    return true;
}

/* --- output buffer ------------------------------------------------------- */

static char *out_reserve(struct conn *c, size_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        while (c->out_len + n > c->out_cap)
            c->out_cap = c->out_cap ? c->out_cap * 2 : 4096;
        c->out = xrealloc(c->out, c->out_cap);
    }
    return c->out + c->out_len;
}

static void append_set(struct conn *c, uint32_t k)
{
    char *p = out_reserve(c, KEY_MAX + 48 + (size_t)O.vsize);
    int n = sprintf(p, "set ");
    n += key_str(k, p + n);
    n += sprintf(p + n, " 0 0 %d\r\n", O.vsize);
    value_fill(k, p + n, O.vsize);
    n += O.vsize;
    p[n++] = '\r';
    p[n++] = '\n';
    c->out_len += (size_t)n;
}

/* Queue one new request on c at time t. */
static void issue(struct conn *c, uint64_t t)
{
    struct thread *th = c->th;
    int slot = (c->head + c->inflight) % O.depth;
    struct req *r = &c->ring[slot];
    r->t0 = t;
    c->inflight++;
    th->issued++;

    if (O.wl == WL_GETSET) {
        uint64_t x = xorshift(&c->rng);
        uint32_t k = (uint32_t)((x >> 16) % O.keys);
        r->nkeys = 1;
        r->key[0] = k;
        if ((int)(x % 100) < O.set_pct) {
            r->type = R_SET;
            append_set(c, k);
        } else {
            r->type = R_GET;
            char *p = out_reserve(c, KEY_MAX + 8);
            int n = sprintf(p, "get ");
            n += key_str(k, p + n);
            p[n++] = '\r';
            p[n++] = '\n';
            c->out_len += (size_t)n;
        }
    } else {
        r->type = R_GET;
        r->nkeys = (uint8_t)O.mget_keys;
        char *p = out_reserve(c, (size_t)O.mget_keys * (KEY_MAX + 1) + 8);
        int n = sprintf(p, "get");
        for (int i = 0; i < O.mget_keys; i++) {
            uint32_t k = (uint32_t)((xorshift(&c->rng) >> 16) % O.keys);
            r->key[i] = k;
            p[n++] = ' ';
            n += key_str(k, p + n);
        }
        p[n++] = '\r';
        p[n++] = '\n';
        c->out_len += (size_t)n;
    }
}

static bool may_issue(struct thread *th)
{
    if (atomic_load_explicit(&g_stop, memory_order_relaxed))
        return false;
    return th->quota == 0 || th->issued < th->quota;
}

/* --- reply parsing ------------------------------------------------------- */

/* Result of parsing the reply at the head of the input. */
enum pr { PR_MORE, PR_OK, PR_ERR, PR_FATAL };

static const char *find_crlf(const char *p, const char *end)
{
    while (p + 1 < end) {
        const char *q = memchr(p, '\r', (size_t)(end - p - 1));
        if (q == NULL)
            return NULL;
        if (q[1] == '\n')
            return q;
        p = q + 1;
    }
    return NULL;
}

static bool starts(const char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len >= n && memcmp(p, lit, n) == 0;
}

/*
 * Parse one reply for request r from buf[0..len). On PR_OK / PR_ERR sets
 * *used to the bytes consumed; *hits to the number of VALUE blocks.
 */
static enum pr parse_reply(const struct req *r, const char *buf, size_t len,
                           size_t *used, int *hits)
{
    const char *p = buf, *end = buf + len;
    bool bad = false;
    *hits = 0;
    for (;;) {
        const char *eol = find_crlf(p, end);
        if (eol == NULL)
            return len > (1u << 20) ? PR_FATAL : PR_MORE;
        size_t ll = (size_t)(eol - p);
        if (starts(p, ll, "SERVER_ERROR") || starts(p, ll, "CLIENT_ERROR") ||
            (ll == 5 && memcmp(p, "ERROR", 5) == 0)) {
            if (p != buf)
                return PR_FATAL;   /* error in the middle of a get reply */
            *used = ll + 2;
            return PR_ERR;
        }
        if (r->type == R_SET) {
            *used = ll + 2;
            return (ll == 6 && memcmp(p, "STORED", 6) == 0) ? PR_OK : PR_ERR;
        }
        if (ll == 3 && memcmp(p, "END", 3) == 0) {
            *used = (size_t)(eol + 2 - buf);
            return bad ? PR_ERR : PR_OK;
        }
        if (!starts(p, ll, "VALUE "))
            return PR_FATAL;
        /* VALUE <key> <flags> <bytes> [<cas>] */
        const char *k = p + 6, *le = eol;
        const char *ke = memchr(k, ' ', (size_t)(le - k));
        if (ke == NULL)
            return PR_FATAL;
        const char *f = ke + 1;
        const char *fe = memchr(f, ' ', (size_t)(le - f));
        if (fe == NULL)
            return PR_FATAL;
        const char *b = fe + 1;
        uint64_t nbytes = 0;
        const char *q = b;
        while (q < le && *q >= '0' && *q <= '9')
            nbytes = nbytes * 10 + (uint64_t)(*q++ - '0');
        if (q == b || (q < le && *q != ' ') || nbytes > (64u << 20))
            return PR_FATAL;
        const char *data = eol + 2;
        if ((uint64_t)(end - data) < nbytes + 2)
            return len > (1u << 20) + nbytes ? PR_FATAL : PR_MORE;
        if (data[nbytes] != '\r' || data[nbytes + 1] != '\n')
            return PR_FATAL;
        uint32_t kk;
        bool asked = false;
        if (key_parse(k, (size_t)(ke - k), &kk)) {
            for (int i = 0; i < r->nkeys; i++)
                if (r->key[i] == kk) {
                    asked = true;
                    break;
                }
        }
        if (!asked || nbytes != (uint64_t)O.vsize ||
            !value_check(kk, data, (int)nbytes))
            bad = true;
        (*hits)++;
        p = data + nbytes + 2;
    }
}

/* --- connections --------------------------------------------------------- */

static int open_socket(bool nonblock)
{
    int fd = socket(g_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, g_addr->ai_addr, g_addr->ai_addrlen) < 0) {
        close(fd);
        return -1;
    }
    if (nonblock)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void conn_arm(struct conn *c, bool out)
{
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(c->th->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = out;
}

/* Write what is queued once; arm EPOLLOUT only if some is left. */
static int conn_flush(struct conn *c)
{
    size_t n = c->out_len - c->out_off;
    if (n == 0) {
        if (c->want_out)
            conn_arm(c, false);
        return 0;
    }
    ssize_t w = write(c->fd, c->out + c->out_off, n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        w = 0;
    }
    c->out_off += (size_t)w;
    bool left = c->out_off < c->out_len;
    if (!left)
        c->out_off = c->out_len = 0;
    if (left != c->want_out)
        conn_arm(c, left);
    return 0;
}

static void conn_open(struct conn *c, uint64_t t)
{
    c->fd = open_socket(true);
    if (c->fd < 0)
        die("connect %s:%s: %s", O.host, O.port, strerror(errno));
    c->in_len = 0;
    c->out_off = c->out_len = 0;
    c->head = 0;
    c->inflight = 0;
    c->want_out = false;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(c->th->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    while (c->inflight < O.depth && may_issue(c->th))
        issue(c, t);
}

/* Peer closed or a reply could not be parsed: count and start over. */
static void conn_reset(struct conn *c, uint64_t t, const char *why)
{
    struct thread *th = c->th;
    if (!O.quiet && th->reconnects < 5)
        fprintf(stderr, "mcload: connection reset (%s), %d in flight\n", why, c->inflight);
    th->errors += (uint64_t)(c->inflight > 0 ? c->inflight : 1);
    th->done_all += (uint64_t)c->inflight;
    th->reconnects++;
    epoll_ctl(th->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (may_issue(th))
        conn_open(c, t);
    else
        c->fd = -1, c->inflight = 0;
}

static void conn_read(struct conn *c, uint64_t t)
{
    struct thread *th = c->th;
    if (c->in_cap - c->in_len < 4096) {
        c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
        c->in = xrealloc(c->in, c->in_cap);
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_reset(c, t, strerror(errno));
        return;
    }
    if (n == 0) {
        conn_reset(c, t, "closed by peer");
        return;
    }
    c->in_len += (size_t)n;

    size_t off = 0;
    while (off < c->in_len) {
        if (c->inflight == 0) {
            conn_reset(c, t, "unexpected data");
            return;
        }
        struct req *r = &c->ring[c->head];
        size_t used = 0;
        int hits = 0;
        enum pr pr = parse_reply(r, c->in + off, c->in_len - off, &used, &hits);
        if (pr == PR_MORE)
            break;
        if (pr == PR_FATAL) {
            conn_reset(c, t, "unparsable reply");
            return;
        }
        off += used;
        if (pr == PR_ERR)
            th->errors++;
        else if (r->type == R_GET && hits < r->nkeys)
            th->misses++;
        th->done_all++;
        if (r->t0 >= g_t_start && (g_t_end == 0 || t <= g_t_end)) {
            th->done++;
            hist_add(&th->h, t - r->t0);
        }
        c->head = (c->head + 1) % O.depth;
        c->inflight--;
        if (may_issue(th))
            issue(c, t);
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    th->last_progress = t;
}

static void *thread_main(void *arg)
{
    struct thread *th = arg;
    struct epoll_event evs[256];
    uint64_t t = now_ns();
    th->last_progress = t;
    for (int i = 0; i < th->nconns; i++)
        conn_open(&th->conns[i], t);
    for (int i = 0; i < th->nconns; i++)
        if (conn_flush(&th->conns[i]) < 0)
            conn_reset(&th->conns[i], t, strerror(errno));

    for (;;) {
        int n = epoll_wait(th->epfd, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        t = now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                conn_read(c, t);
                if (c->fd < 0)
                    continue;
            }
            if (c->out_len > c->out_off || c->want_out)
                if (conn_flush(c) < 0)
                    conn_reset(c, t, strerror(errno));
        }
        if (g_t_end != 0 && t >= g_t_end)
            atomic_store(&g_stop, 1);
        if (atomic_load(&g_stop))
            break;
        if (th->quota != 0) {
            bool busy = false;
            for (int i = 0; i < th->nconns; i++)
                if (th->conns[i].inflight > 0)
                    busy = true;
            if (!busy && th->issued >= th->quota)
                break;
        }
        if (t - th->last_progress > 5000000000ull) {
            fprintf(stderr, "mcload: thread %d: no reply for 5 s, giving up\n", th->id);
            for (int i = 0; i < th->nconns; i++)
                th->errors += (uint64_t)th->conns[i].inflight;
            atomic_store(&g_stop, 1);
            break;
        }
    }
    return NULL;
}

/* --- populate ------------------------------------------------------------ */

/* Store every key once, pipelined in batches over one blocking connection. */
static void populate(void)
{
    int fd = open_socket(false);
    if (fd < 0)
        die("connect %s:%s: %s", O.host, O.port, strerror(errno));
    struct conn c = { .fd = fd };
    char rbuf[65536];
    size_t rlen = 0;
    uint32_t batch = 256;
    for (uint32_t k0 = 0; k0 < O.keys; k0 += batch) {
        uint32_t nb = O.keys - k0 < batch ? O.keys - k0 : batch;
        c.out_off = c.out_len = 0;
        for (uint32_t k = k0; k < k0 + nb; k++)
            append_set(&c, k);
        size_t off = 0;
        while (off < c.out_len) {
            ssize_t w = write(fd, c.out + off, c.out_len - off);
            if (w <= 0)
                die("populate: write: %s", w < 0 ? strerror(errno) : "0");
            off += (size_t)w;
        }
        uint32_t got = 0;
        while (got < nb) {
            ssize_t r = read(fd, rbuf + rlen, sizeof rbuf - rlen);
            if (r <= 0)
                die("populate: read: %s", r < 0 ? strerror(errno) : "closed by peer");
            rlen += (size_t)r;
            char *p = rbuf, *end = rbuf + rlen, *eol;
            while (got < nb && (eol = (char *)find_crlf(p, end)) != NULL) {
                if (eol - p != 6 || memcmp(p, "STORED", 6) != 0)
                    die("populate: reply '%.*s' to a set", (int)(eol - p), p);
                got++;
                p = eol + 2;
            }
            rlen = (size_t)(end - p);
            memmove(rbuf, p, rlen);
        }
    }
    free(c.out);
    close(fd);
}

/* --- main ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
        "usage: mcload [options]\n"
        "  -s HOST       server address (127.0.0.1)\n"
        "  -p PORT       server port (11211)\n"
        "  -c N          connections (50)\n"
        "  -d D          requests in flight per connection, pipeline depth (1)\n"
        "  -T N          threads (1)\n"
        "  -t SECONDS    duration of the measured window (10)\n"
        "  -W SECONDS    warm-up before it, not measured (0)\n"
        "  -n COUNT      total requests instead of a duration\n"
        "  -w WORKLOAD   getset | mget10 | populate (getset)\n"
        "  -r PCT        getset: percent of sets (10)\n"
        "  -m N          mget: keys per get (10; 1..%d)\n"
        "  -k K          keyspace (10000)\n"
        "  -v BYTES      value size (100)\n"
        "  -N            do not populate the keyspace first\n"
        "  -S SEED       random seed\n"
        "  -q            quiet: no diagnostics on stderr\n", MAX_MGET);
    exit(2);
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "s:p:c:d:T:t:W:n:w:r:m:k:v:NS:qh")) != -1) {
        switch (ch) {
        case 's': O.host = optarg; break;
        case 'p': O.port = optarg; break;
        case 'c': O.conns = atoi(optarg); break;
        case 'd': O.depth = atoi(optarg); break;
        case 'T': O.threads = atoi(optarg); break;
        case 't': O.duration = atof(optarg); break;
        case 'W': O.warmup = atof(optarg); break;
        case 'n': O.count = strtoull(optarg, NULL, 10); break;
        case 'w':
            if (strcmp(optarg, "getset") == 0)
                O.wl = WL_GETSET;
            else if (strncmp(optarg, "mget", 4) == 0) {
                O.wl = WL_MGET;
                if (optarg[4] != '\0')
                    O.mget_keys = atoi(optarg + 4);
            } else if (strcmp(optarg, "populate") == 0)
                O.wl = WL_POPULATE;
            else
                usage();
            break;
        case 'r': O.set_pct = atoi(optarg); break;
        case 'm': O.mget_keys = atoi(optarg); break;
        case 'k': O.keys = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'v': O.vsize = atoi(optarg); break;
        case 'N': O.populate = false; break;
        case 'S': O.seed = strtoull(optarg, NULL, 0) | 1; break;
        case 'q': O.quiet = true; break;
        default: usage();
        }
    }
    if (optind != argc || O.conns < 1 || O.depth < 1 || O.depth > 100000 || O.threads < 1 ||
        O.keys < 1 || O.vsize < 1 || O.vsize > (1 << 20) || O.mget_keys < 1 ||
        O.mget_keys > MAX_MGET || O.set_pct < 0 || O.set_pct > 100 ||
        (O.count == 0 && O.duration <= 0))
        usage();
    if (O.threads > O.conns)
        O.threads = O.conns;

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    int gai = getaddrinfo(O.host, O.port, &hints, &g_addr);
    if (gai != 0)
        die("%s:%s: %s", O.host, O.port, gai_strerror(gai));

    uint64_t tp = now_ns();
    if (O.populate || O.wl == WL_POPULATE)
        populate();
    if (O.wl == WL_POPULATE) {
        printf("workload=populate keys=%u seconds=%.3f errors=0\n", O.keys,
               (double)(now_ns() - tp) / 1e9);
        return 0;
    }

    struct thread *ths = calloc((size_t)O.threads, sizeof *ths);
    struct conn *conns = calloc((size_t)O.conns, sizeof *conns);
    if (ths == NULL || conns == NULL)
        die("out of memory");
    for (int i = 0; i < O.conns; i++) {
        conns[i].ring = calloc((size_t)O.depth, sizeof(struct req));
        if (conns[i].ring == NULL)
            die("out of memory");
        conns[i].rng = O.seed ^ (0x2545f4914f6cdd1dull * (uint64_t)(i + 1));
        for (int j = 0; j < 4; j++)
            xorshift(&conns[i].rng);
    }
    int per = O.conns / O.threads, extra = O.conns % O.threads, ci = 0;
    for (int i = 0; i < O.threads; i++) {
        struct thread *th = &ths[i];
        th->id = i;
        th->nconns = per + (i < extra);
        th->conns = &conns[ci];
        for (int j = 0; j < th->nconns; j++)
            th->conns[j].th = th;
        ci += th->nconns;
        if (O.count)
            th->quota = O.count / (uint64_t)O.threads + ((uint64_t)i < O.count % (uint64_t)O.threads);
        th->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (th->epfd < 0)
            die("epoll_create1: %s", strerror(errno));
    }

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t t0 = now_ns();
    if (O.count) {
        g_t_start = t0;
        g_t_end = 0;
    } else {
        g_t_start = t0 + (uint64_t)(O.warmup * 1e9);
        g_t_end = g_t_start + (uint64_t)(O.duration * 1e9);
    }
    for (int i = 0; i < O.threads; i++)
        if (pthread_create(&ths[i].tid, NULL, thread_main, &ths[i]) != 0)
            die("pthread_create failed");
    for (int i = 0; i < O.threads; i++)
        pthread_join(ths[i].tid, NULL);
    uint64_t t1 = now_ns();
    getrusage(RUSAGE_SELF, &ru1);

    struct hist *h = calloc(1, sizeof *h);
    uint64_t done = 0, done_all = 0, errors = 0, misses = 0, reconnects = 0;
    for (int i = 0; i < O.threads; i++) {
        struct thread *th = &ths[i];
        for (unsigned b = 0; b < HIST_BUCKETS; b++)
            h->b[b] += th->h.b[b];
        h->n += th->h.n;
        if (th->h.max > h->max)
            h->max = th->h.max;
        done += th->done;
        done_all += th->done_all;
        errors += th->errors;
        misses += th->misses;
        reconnects += th->reconnects;
    }
    double secs;
    if (O.count) {
        secs = (double)(t1 - t0) / 1e9;
    } else {
        uint64_t end = t1 < g_t_end ? t1 : g_t_end;
        secs = end > g_t_start ? (double)(end - g_t_start) / 1e9 : 0.0;
    }
    double cpu_us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e6 +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                    (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                    (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    const char *wl = O.wl == WL_GETSET ? "getset" : "mget";
    char wlname[16];
    if (O.wl == WL_MGET)
        snprintf(wlname, sizeof wlname, "%s%d", wl, O.mget_keys);
    else
        snprintf(wlname, sizeof wlname, "%s", wl);
    printf("workload=%s conns=%d depth=%d threads=%d ops=%llu seconds=%.3f ops_per_sec=%.1f "
           "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
           "errors=%llu misses=%llu reconnects=%llu total_ops=%llu client_cpu_us_per_op=%.2f\n",
           wlname, O.conns, O.depth, O.threads, (unsigned long long)done, secs,
           secs > 0 ? (double)done / secs : 0.0,
           hist_pct(h, 50) / 1e3, hist_pct(h, 90) / 1e3, hist_pct(h, 99) / 1e3,
           hist_pct(h, 99.9) / 1e3, (double)h->max / 1e3,
           (unsigned long long)errors, (unsigned long long)misses,
           (unsigned long long)reconnects, (unsigned long long)done_all,
           done_all ? cpu_us / (double)done_all : 0.0);
    freeaddrinfo(g_addr);
    return errors > 0 ? 1 : 0;
}
