/*
 * notify: the service manager's notification protocol (sd_notify), sent one
 * of two ways chosen at configure time.
 *
 * The protocol is one datagram of newline-separated KEY=VALUE lines to the
 * AF_UNIX SOCK_DGRAM address in $NOTIFY_SOCKET. The manager learns the
 * sender's pid from the credentials the kernel attaches to the datagram
 * (its socket has SO_PASSCRED), so the message is all there is to send.
 *
 * With libsystemd (HAVE_LIBSYSTEMD) the datagram goes through sd_notify(),
 * which also knows the address kinds newer managers hand out. Without it,
 * notify_send_direct() below sends it: the address is a file system path,
 * or, when it starts with '@', an abstract name whose '@' stands for the
 * leading NUL byte. An abstract name's length is exact (a trailing NUL
 * would be part of the name); a path's length counts its NUL, as systemd's
 * own client does. Both builds are tested against a real datagram socket.
 *
 * Each call formats into a stack buffer and opens and closes its own socket:
 * no state, no allocation, nothing to set up or tear down. The supervisor
 * thread calls this a handful of times in the process's life (ready, each
 * reload, stop). $NOTIFY_SOCKET stays in the environment (sd_notify's
 * unset_environment is 0) because reloads and the stop come much later.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "log.h"

#define NOTIFY_MSG_MAX 512 /* a longer status is cut, not dropped */

#ifndef HAVE_LIBSYSTEMD
/* Returns 1 when sent, 0 without $NOTIFY_SOCKET, or -errno. */
static int
notify_send_direct(const char *msg)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t salen;
    size_t n;
    ssize_t w;
    int fd, e;

    if (name == NULL || name[0] == '\0') {
        return 0;
    }
    n = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || n >= sizeof(sa.sun_path)) {
        return -EAFNOSUPPORT;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    e = w < 0 ? -errno : 1;
    close(fd);
    return e;
}
#endif

static void
notify_send(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
    int rc = sd_notify(0, msg);
#else
    int rc = notify_send_direct(msg);
#endif
    size_t first = strcspn(msg, "\n");

    if (rc < 0) {
        /* strerror: supervisor thread only */
        log_warn("notify: cannot send %.*s to $NOTIFY_SOCKET (%s): %s", (int)first, msg,
                 getenv("NOTIFY_SOCKET"), strerror(-rc));
    } else if (rc > 0) {
        log_debug("notify: sent %.*s", (int)first, msg);
    }
}

/* head, then fmt formatted; a newline from fmt would start a new
   assignment in the protocol, so the status is kept to one line. */
static void
notify_vsend(const char *head, const char *fmt, va_list ap)
{
    char msg[NOTIFY_MSG_MAX];
    size_t n = strlen(head);

    memcpy(msg, head, n + 1);
    vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
    for (char *p = msg + n; *p != '\0'; p++) {
        if (*p == '\n') {
            *p = ' ';
        }
    }
    notify_send(msg);
}

static int
notify_wanted(void)
{
    const char *name = getenv("NOTIFY_SOCKET");

    return name != NULL && name[0] != '\0';
}

void
notify_ready(const char *fmt, ...)
{
    va_list ap;

    if (!notify_wanted()) {
        return;
    }
    va_start(ap, fmt);
    notify_vsend("READY=1\nSTATUS=", fmt, ap);
    va_end(ap);
}

void
notify_status(const char *fmt, ...)
{
    va_list ap;

    if (!notify_wanted()) {
        return;
    }
    va_start(ap, fmt);
    notify_vsend("STATUS=", fmt, ap);
    va_end(ap);
}

void
notify_reloading(void)
{
    struct timespec ts;
    char msg[64];

    if (!notify_wanted()) {
        return;
    }
    /* systemd 253+ (Type=notify-reload) matches this timestamp against
       the time it sent the reload signal: a RELOADING=1 from before that
       is taken for an older reload and the new one is still waited for. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    notify_send(msg);
}

void
notify_stopping(void)
{
    if (notify_wanted()) {
        notify_send("STOPPING=1");
    }
}
