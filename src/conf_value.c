/*
 * conf_value: the syntax of the two structured values of the configuration,
 * addresses and server lines, so that conf keeps to meaning (keys,
 * sections, defaults, rules across lines) and conf_scan to lines. Pure
 * string -> struct functions: no name is ever resolved here (the
 * supervisor resolves them when it builds a generation).
 *
 * Server identities are twemproxy's, because placement hashes them: the
 * name if given; else host:port, or host alone when the port is 11211
 * (libmemcached's default port is not hashed), or "path:" for a unix socket
 * (twemproxy keeps the ':' that preceded the weight).
 */
#include "conf_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "util.h"

#define CONF_VALUE_MAX_WEIGHT 1000000

static bool
conf_value_host_char(char c, bool v6)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c == '.' || c == '-' || c == '_' || (v6 && (c == ':' || c == '%'));
}

static int
conf_value_port(const char *s, size_t n, int *port)
{
    uint64_t v;

    if (util_parse_u64(s, n, 65535, &v) < 0 || v == 0) {
        return -1;
    }
    *port = (int)v;
    return 0;
}

int
conf_value_addr(const char *s, bool allow_perm, struct conf_addr *a, char *err, size_t errlen)
{
    struct conf_addr r = { .perm = -1 };
    size_t n = strlen(s), hlen;
    const char *host, *port;

    if (n == 0) {
        snprintf(err, errlen, "empty address");
        return -1;
    }
    if (s[0] == '/') {
        size_t plen = strcspn(s, " \t");
        const char *rest = s + plen + strspn(s + plen, " \t");

        if (plen >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            snprintf(err, errlen, "unix socket path longer than %zu bytes",
                     sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
            return -1;
        }
        if (*rest != '\0') {
            uint64_t perm = 0;
            size_t i;
            if (!allow_perm) {
                snprintf(err, errlen, "unexpected text after the socket path");
                return -1;
            }
            for (i = 0; rest[i] >= '0' && rest[i] <= '7' && i < 5; i++) {
                perm = perm * 8 + (uint64_t)(rest[i] - '0');
            }
            if (rest[i] != '\0' || perm > 0777) {
                snprintf(err, errlen, "invalid permissions '%s', expected octal such as 0666",
                         rest);
                return -1;
            }
            r.perm = (int)perm;
        }
        r.is_unix = true;
        r.host = strndup(s, plen);
        if (r.host == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *a = r;
        return 0;
    }
    if (strpbrk(s, " \t") != NULL) {
        snprintf(err, errlen,
                 allow_perm ? "permissions apply only to unix sockets" : "unexpected white space");
        return -1;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(err, errlen, "expected '[v6 address]:port'");
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "missing ':port'");
            return -1;
        }
        host = s;
        hlen = (size_t)(colon - s);
        port = colon + 1;
        if (memchr(host, ':', hlen) != NULL) {
            snprintf(err, errlen, "an IPv6 address needs brackets, e.g. [::1]:22121");
            return -1;
        }
    }
    if (hlen == 0) {
        snprintf(err, errlen, "missing host");
        return -1;
    }
    for (size_t i = 0; i < hlen; i++) {
        if (!conf_value_host_char(host[i], s[0] == '[')) {
            snprintf(err, errlen, "invalid character in host");
            return -1;
        }
    }
    if (conf_value_port(port, strlen(port), &r.port) < 0) {
        snprintf(err, errlen, "invalid port '%s', expected 1..65535", port);
        return -1;
    }
    r.host = strndup(host, hlen);
    if (r.host == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *a = r;
    return 0;
}

bool
conf_value_name_char(char ch)
{
    unsigned char c = (unsigned char)ch;

    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Split from the right as twemproxy does, so a ':' in a unix path is fine. */
int
conf_value_server(const char *v, struct conf_server *srv, char *err, size_t errlen)
{
    size_t alen = strcspn(v, " \t");
    const char *name = v + alen + strspn(v + alen, " \t");
    char addr[CONF_VALUE_MAX + 1];
    char *colon;
    uint64_t w;

    memset(srv, 0, sizeof(*srv));
    if (alen >= sizeof(addr)) {
        snprintf(err, errlen, "too long");
        return -1;
    }
    memcpy(addr, v, alen);
    addr[alen] = '\0';
    for (const char *q = name; *q != '\0'; q++) {
        if (!conf_value_name_char(*q)) {
            snprintf(err, errlen,
                     "expected 'host:port:weight [name]' or "
                     "'/path:weight [name]'; a name has no spaces, quotes or backslashes");
            return -1;
        }
    }
    colon = strrchr(addr, ':');
    if (colon == NULL) {
        snprintf(err, errlen,
                 "missing ':weight'; expected 'host:port:weight [name]' or "
                 "'/path:weight [name]'");
        return -1;
    }
    *colon = '\0';
    if (addr[0] != '/' && strchr(addr, ':') == NULL) {
        snprintf(err, errlen, "port or weight missing; expected 'host:port:weight [name]'");
        return -1;
    }
    if (util_parse_u64_str(colon + 1, UINT64_MAX / 10, &w) < 0) {
        snprintf(err, errlen, "invalid weight '%s', expected 1..%d", colon + 1,
                 CONF_VALUE_MAX_WEIGHT);
        return -1;
    }
    if (w == 0 || w > CONF_VALUE_MAX_WEIGHT) {
        snprintf(err, errlen, "%s, expected 1..%d", w == 0 ? "zero weight" : "weight too large",
                 CONF_VALUE_MAX_WEIGHT);
        return -1;
    }
    if (conf_value_addr(addr, false, &srv->addr, err, errlen) < 0) {
        return -1;
    }
    srv->weight = (uint32_t)w;
    if (*name != '\0') {
        srv->name = strdup(name);
        srv->ident = strdup(name);
    } else if (srv->addr.is_unix) {
        /* twemproxy keeps the ':' that preceded the weight */
        size_t plen = strlen(addr);
        if ((srv->ident = malloc(plen + 2)) != NULL) {
            memcpy(srv->ident, addr, plen);
            srv->ident[plen] = ':';
            srv->ident[plen + 1] = '\0';
        }
    } else if (srv->addr.port == 11211) {
        /* libmemcached compatibility: the default port is not hashed */
        srv->ident = strndup(addr, (size_t)(strrchr(addr, ':') - addr));
    } else {
        srv->ident = strdup(addr);
    }
    if (srv->ident == NULL || (*name != '\0' && srv->name == NULL)) {
        free(srv->ident);
        free(srv->name);
        free(srv->addr.host);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
