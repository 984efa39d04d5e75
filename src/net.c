/*
 * net: thin wrappers over the socket calls. Everything is non-blocking and
 * close-on-exec. Errors come back as -errno so callers can both log them
 * with context and turn them into the client-visible reason text.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int
net_resolve(const char *host, int port, bool is_unix, struct net_addr *out, char *err,
            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (is_unix) {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        if (strlen(host) >= sizeof(un->sun_path)) {
            snprintf(err, errlen, "unix socket path '%s' is too long", host);
            return -1;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, host);
        out->len = (socklen_t)sizeof(*un);
        return 0;
    }

    struct addrinfo hints, *res = NULL;
    char ports[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(ports, sizeof(ports), "%d", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int
net_tcp_socket(const struct net_addr *a, bool reuseport)
{
    int one = 1;
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int
net_listen_tcp(const struct net_addr *a, int backlog, bool reuseport)
{
    int fd = net_tcp_socket(a, reuseport);

    if (fd < 0) {
        return fd;
    }
    if (listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int
net_probe_tcp(const struct net_addr *a, bool reuseport)
{
    /* Bound but never listening: such a socket takes no share of a
       reuseport group's connections, and it is closed right away. */
    int fd = net_tcp_socket(a, reuseport);

    if (fd < 0) {
        return fd;
    }
    close(fd);
    return 0;
}

int
net_listen_unix(const struct net_addr *a, int perm, int backlog)
{
    const char *path = ((const struct sockaddr_un *)&a->sa)->sun_path;

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }

    /* A path with a live listener is an error; a stale file is replaced. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            close(fd);
            return -EEXIST;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            int live = connect(probe, (const struct sockaddr *)&a->sa, a->len) == 0;
            close(probe);
            if (live) {
                close(fd);
                return -EADDRINUSE;
            }
        }
        unlink(path);
    }

    /* Set the mode from the start: no window in which the socket is open. */
    mode_t old = 0;
    if (perm >= 0) {
        old = umask((mode_t)(~perm & 0777));
    }
    int rc = bind(fd, (const struct sockaddr *)&a->sa, a->len);
    int e = errno;
    if (perm >= 0) {
        umask(old);
    }
    if (rc < 0 || listen(fd, backlog) < 0) {
        e = rc < 0 ? e : errno;
        close(fd);
        return -e;
    }
    return fd;
}

int
net_connect(const struct net_addr *a)
{
    int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    if (!net_addr_is_unix(a)) {
        net_set_nodelay(fd);
    }
    if (connect(fd, (const struct sockaddr *)&a->sa, a->len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int
net_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return errno;
    }
    return err;
}

int
net_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return -errno;
    }
    return 0;
}

void
net_set_nodelay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void
net_set_keepalive(int fd)
{
    int one = 1;

    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

const char *
net_sa_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
    char host[INET6_ADDRSTRLEN];

    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, buflen, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, buflen, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        snprintf(buf, buflen, "%s",
                 len > sizeof(sa_family_t) && un->sun_path[0] ? un->sun_path : "unix");
        break;
    }
    default:
        snprintf(buf, buflen, "?");
    }
    return buf;
}
