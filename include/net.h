/*
 * net: sockets. Listening (TCP with SO_REUSEPORT, unix with a mode),
 * non-blocking connects, socket options and address formatting. Functions
 * return a file descriptor or -errno and never log: the caller knows which
 * pool or server the error belongs to.
 */
#ifndef CMX_NET_H
#define CMX_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util.h"

/* A resolved socket address: TCP (v4, v6) or unix. */
struct net_addr {
    struct sockaddr_storage sa;
    socklen_t len;
};

static inline bool
net_addr_is_unix(const struct net_addr *a)
{
    return a->sa.ss_family == AF_UNIX;
}

/* Resolve host and port (the first address), or the unix path host when
   is_unix, into *out. Returns 0 or -1 with a reason in err. Blocking:
   supervisor only. */
int net_resolve(const char *host, int port, bool is_unix, struct net_addr *out, char *err,
                size_t errlen) MUSTCHECK;

/* A listening, non-blocking TCP socket on a; reuseport sets SO_REUSEPORT.
   Returns fd or -errno. */
int net_listen_tcp(const struct net_addr *a, int backlog, bool reuseport) MUSTCHECK;

/* Bind (without listening) to check that a is usable; closes at once.
   Returns 0 or -errno. */
int net_probe_tcp(const struct net_addr *a, bool reuseport) MUSTCHECK;

/* A listening unix socket at a with mode perm (if >= 0). A stale socket
   file (nobody listening) is replaced; a live one is -EADDRINUSE. Returns
   fd or -errno. */
int net_listen_unix(const struct net_addr *a, int perm, int backlog) MUSTCHECK;

/* Start a non-blocking connect to a. Returns fd (connect may still be in
   progress) or -errno. */
int net_connect(const struct net_addr *a) MUSTCHECK;

/* The pending error of a connecting socket (SO_ERROR), 0 when connected. */
int net_socket_error(int fd);

int net_set_nonblock(int fd);
void net_set_nodelay(int fd);
void net_set_keepalive(int fd);

/* "host:port" or the unix path of a socket address into buf. */
const char *net_sa_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

#endif
