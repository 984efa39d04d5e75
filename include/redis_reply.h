/*
 * redis_reply: the pure half of the Redis protocol's replies (its wire ops,
 * proto.h): cutting a server's stream into replies, merging the replies of
 * a split request, and the proxy's own error replies.
 */
#ifndef CMX_REDIS_REPLY_H
#define CMX_REDIS_REPLY_H

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

/* rsp becomes "-ERR <the system's text for err>\r\n". */
void redis_reply_error(struct buf *rsp, int err);

/* Append a bulk string, or a "*n" / ":n" / "$n" header line, to b.
   Return 0 or -1 (out of memory). */
int redis_reply_append_bulk(struct buf *b, const void *p, size_t len);
int redis_reply_append_count(struct buf *b, char type, uint64_t n);

#endif
