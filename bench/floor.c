/*
 * floor: what the kernel charges a process for passing messages from one
 * loopback TCP socket to another, with no parsing, no event loop and no
 * bookkeeping: the least CPU per request any proxy can spend on a value of
 * that size on this machine. A producer thread writes COUNT messages of SIZE
 * bytes into socket A, a forwarder thread moves them to socket B, a consumer
 * thread reads them; only the forwarder's CPU time is reported (its thread
 * clock: user, system, and the softirq work the loopback charges to the
 * sender), in two ways:
 *
 *   copy    read() into a buffer of SIZE bytes, write() it on: both bytes
 *           copies, as cachemux and nutcracker do
 *   splice  splice(2) socket -> pipe (1 MiB) -> socket, at most the rest of
 *           one message per call: no copy through user space, the floor
 *           of a zero-copy body path
 *
 *     cc -O2 -pthread -o floor bench/floor.c
 *     floor SIZE COUNT [FORWARDER_CPU PEERS_CPU]
 *
 * With the two CPUs given, the forwarder runs alone on the first and the
 * producer and consumer share the second, as the proxy and the load
 * generator are pinned in run-mc.sh and run-redis.sh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PIPE_BYTES (1 << 20)

static size_t size;
static long count;
static int peers_cpu = -1;
static int a[2], b[2]; /* [0] the writing end, [1] the reading end */

static void
die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void
pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0) {
        return;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
        fprintf(stderr, "floor: cannot pin to CPU %d\n", cpu);
        exit(1);
    }
}

/* A connected loopback TCP pair. */
static void
tcp_pair(int fds[2])
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) != 0) {
        die("listen");
    }
    if ((fds[0] = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        (fds[1] = accept(l, NULL, NULL)) < 0) {
        die("connect");
    }
    close(l);
}

static void *
producer(void *arg)
{
    char *buf = calloc(1, size);

    (void)arg;
    pin(peers_cpu);
    for (long i = 0; i < count; i++) {
        for (size_t off = 0; off < size;) {
            ssize_t n = write(a[0], buf + off, size - off);
            if (n <= 0) {
                die("producer write");
            }
            off += (size_t)n;
        }
    }
    free(buf);
    return NULL;
}

static void *
consumer(void *arg)
{
    char *buf = malloc(PIPE_BYTES);
    unsigned long long want = (unsigned long long)count * size, got = 0;

    (void)arg;
    pin(peers_cpu);
    while (got < want) {
        ssize_t n = read(b[1], buf, PIPE_BYTES);
        if (n <= 0) {
            die("consumer read");
        }
        got += (unsigned long long)n;
    }
    free(buf);
    return NULL;
}

static double
thread_cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Forward every message by copy: read into a buffer, write it on. */
static long
forward_copy(void)
{
    unsigned long long want = (unsigned long long)count * size, moved = 0;
    char *buf = malloc(size);
    long calls = 0;

    while (moved < want) {
        ssize_t n = read(a[1], buf, size);
        calls++;
        if (n <= 0) {
            die("read");
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(b[0], buf + off, (size_t)(n - off));
            calls++;
            if (w <= 0) {
                die("write");
            }
            off += w;
        }
        moved += (unsigned long long)n;
    }
    free(buf);
    return calls;
}

/* Forward every message through a pipe with splice: no user-space copy. */
static long
forward_splice(void)
{
    unsigned long long want = (unsigned long long)count * size, moved = 0;
    long calls = 0;
    int p[2];

    if (pipe(p) != 0) {
        die("pipe");
    }
    if (fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES) < 0) {
        die("F_SETPIPE_SZ");
    }
    while (moved < want) {
        /* at most the rest of this message, as a proxy that knows the
           body's length (and as the copy's read of SIZE) */
        size_t rest = size - (size_t)(moved % size);
        ssize_t n = splice(a[1], NULL, p[1], NULL, rest, SPLICE_F_MOVE);
        calls++;
        if (n <= 0) {
            die("splice in");
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = splice(p[0], NULL, b[0], NULL, (size_t)(n - off), SPLICE_F_MOVE);
            calls++;
            if (w <= 0) {
                die("splice out");
            }
            off += w;
        }
        moved += (unsigned long long)n;
    }
    close(p[0]);
    close(p[1]);
    return calls;
}

static void
run(const char *name, long (*forward)(void), int fwd_cpu)
{
    pthread_t pt, ct;

    tcp_pair(a);
    tcp_pair(b);
    pin(fwd_cpu);
    if (pthread_create(&pt, NULL, producer, NULL) != 0 ||
        pthread_create(&ct, NULL, consumer, NULL) != 0) {
        die("pthread_create");
    }
    double t0 = thread_cpu_us();
    long calls = forward();
    double cpu = thread_cpu_us() - t0;
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    printf("floor size=%zu mode=%s messages=%ld cpu_us=%.2f syscalls=%.2f\n", size, name, count,
           cpu / (double)count, (double)calls / (double)count);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

int
main(int argc, char **argv)
{
    int fwd_cpu = -1;

    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: floor SIZE COUNT [FORWARDER_CPU PEERS_CPU]\n");
        return 2;
    }
    size = strtoul(argv[1], NULL, 10);
    count = strtol(argv[2], NULL, 10);
    if (argc == 5) {
        fwd_cpu = atoi(argv[3]);
        peers_cpu = atoi(argv[4]);
    }
    if (size == 0 || count <= 0) {
        fprintf(stderr, "floor: SIZE and COUNT must be positive\n");
        return 2;
    }
    run("copy", forward_copy, fwd_cpu);
    run("splice", forward_splice, fwd_cpu);
    return 0;
}
