/*
 * slow_listen: an LD_PRELOAD shim for test_systemd.py. Every listen() first
 * sleeps CACHEMUX_TEST_LISTEN_DELAY_MS milliseconds, which stretches the
 * time between a worker starting and its listeners accepting from
 * microseconds to a tenth of a second. A READY=1 sent before every listener
 * is up then meets a refused connect every time, instead of slipping through
 * a window too short for the test to see.
 *
 * Built by the test itself (cc -shared -fPIC), never linked into cachemux.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int listen(int fd, int backlog);

int
listen(int fd, int backlog)
{
    static int (*real_listen)(int, int);
    const char *ms = getenv("CACHEMUX_TEST_LISTEN_DELAY_MS");

    if (real_listen == NULL) {
        real_listen = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
    }
    if (ms != NULL) {
        long v = atol(ms);
        struct timespec ts = { v / 1000, (v % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    return real_listen(fd, backlog);
}
