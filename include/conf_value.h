/*
 * conf_value: parsing the configuration's structured values, addresses
 * ("host:port", "[v6]:port", "/path [octal perm]") and server lines
 * ("host:port:weight [name]", "/path:weight [name]"), into the structs
 * below. Pure; see conf_value.c for the identity rules.
 */
#ifndef CMX_CONF_VALUE_H
#define CMX_CONF_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest value conf_value_server() takes. */
#define CONF_VALUE_MAX 4096

/* A listen or server address as written (resolved later, never here). */
struct conf_addr {
    char *host; /* host name or literal, or the unix socket path */
    int port;   /* 0 for unix */
    bool is_unix;
    int perm; /* unix listen mode (octal in the file), -1 if not given */
};

struct conf_server {
    char *ident; /* identity: name, else host:port, host (port 11211) or path: */
    char *name;  /* NULL when the line has none */
    struct conf_addr addr;
    uint32_t weight;
    int line; /* line of its "server =" */
};

/*
 * Parse "host:port", "[v6]:port" or "/path [octal perm]" into a.
 * allow_perm: a unix path may be followed by a mode. Returns 0 or -1 with a
 * reason in err. On success a is overwritten and a->host is malloc'd (the
 * caller frees it); on error a is untouched. IPv6 needs brackets.
 */
int conf_value_addr(const char *s, bool allow_perm, struct conf_addr *a, char *err, size_t errlen);

/*
 * Parse a server line's value into *srv: addr, weight (1..1000000), name
 * (NULL if none) and identity. srv->line is left 0. Returns 0, or -1 with a
 * reason in err and nothing allocated.
 */
int conf_value_server(const char *v, struct conf_server *srv, char *err, size_t errlen);

/* Whether c may appear in a pool or server name: printable ASCII other than
   space, '"' and '\' (names end up in JSON stats and log lines). */
bool conf_value_name_char(char c);

#endif
