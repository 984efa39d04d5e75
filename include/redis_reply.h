/*
 * redis_reply: the pure half of the Redis protocol's replies (its wire ops,
 * proto.h): cutting a server's stream into replies, merging the replies of
 * a split request, and the proxy's own error replies.
 */
#ifndef CMX_REDIS_REPLY_H
#define CMX_REDIS_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct buf;
struct msg;

/*
 * Merge the replies of parent's fragments (all done, none failed) into
 * parent->rsp, by parent->merge: a backend error reply in any part is the
 * reply of the whole; MGET's array is rebuilt in key order (key_frag);
 * integers are summed (-ERANGE when the sum does not fit 64 bits); MSET is
 * +OK when every part is. Returns 0 or -errno (EINVAL: a part is not the
 * reply its command gets; ENOMEM).
 */
int redis_reply_merge(struct msg *parent);
/* The same for a RESP3 client: the parts are RESP3 (nulls are "_"), and
   what the proxy writes itself is RESP3 (INFO a verbatim string, HELLO a
   map). */
int redis_reply_merge3(struct msg *parent);

/*
 * SCAN's cursor as a client sees it: server index + nservers * that
 * server's cursor, so cursor 0 starts at the first server and a server's
 * cursor 0 (its end) moves on to the next one. decode: -1 when s is not a
 * number below 2^64. encode: -1 when the server's cursor is too large for
 * the encoding (over (2^64 - 1 - index) / nservers).
 */
int redis_scan_cursor_decode(const uint8_t *s, size_t len, uint32_t nservers, uint32_t *server,
                             uint64_t *cursor);
int redis_scan_cursor_encode(uint64_t cursor, uint32_t server, uint32_t nservers, uint64_t *out);

/* Append HELLO's reply (Redis 7's fields: a map in RESP3, a flat array in
   RESP2) with version and the decimal id[0..idlen) to b. Returns 0 or
   -ENOMEM. */
int redis_hello_reply(struct buf *b, const char *version, const void *id, size_t idlen, bool resp3);

/* The redis_version of a whole INFO reply rsp[0..len) (a bulk string)
   into out (NUL-terminated). Returns 0, or -1 when there is none. */
int redis_info_version(const uint8_t *rsp, size_t len, char *out, size_t outlen);

/* Compare two "major.minor.patch" versions: <0, 0, >0. */
int redis_version_cmp(const char *a, const char *b);

/* rsp becomes "-ERR <the system's text for err>\r\n". */
void redis_reply_error(struct buf *rsp, int err);

/* Append a bulk string, or a "*n" / ":n" / "$n" header line, to b.
   Return 0 or -1 (out of memory). */
int redis_reply_append_bulk(struct buf *b, const void *p, size_t len);
int redis_reply_append_count(struct buf *b, char type, uint64_t n);

/* Append text as Redis 7 sends INFO and CLIENT INFO: a bulk string in
   RESP2, a verbatim string ("=n\r\ntxt:...") in RESP3. 0 or -1. */
int redis_reply_append_text(struct buf *b, const void *p, size_t len, bool resp3);

#endif
