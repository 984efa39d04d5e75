/*
 * mc_reply: the pure half of the memcached protocol's replies (its wire
 * ops, proto.h): cutting a server's stream into replies (a retrieval's
 * reply is VALUE blocks then END, each block a unit), merging a split
 * multi-get, and the proxy's own error replies.
 */
#ifndef CMX_MC_REPLY_H
#define CMX_MC_REPLY_H

#include <stdint.h>

#include "proto.h"

struct buf;
struct msg;

/*
 * Merge the replies of a split get's fragments (all done, none failed)
 * into parent->rsp: walking the keys of the original line (in parent->req
 * at keys_off..keys_end), each key takes the next VALUE of its fragment if
 * that VALUE is for it (a miss takes nothing), then one END. memcached
 * answers a part's hits in the order of its keys, so this is request-key
 * order, duplicates included. A part that ends in an error line rather than
 * END is the reply of the whole. A fan-out (flush_all, merge
 * MSG_MERGE_ALL_OK) is OK when every server said OK, else the first other
 * reply. Returns 0 or -ENOMEM.
 */
int mc_reply_merge(struct msg *parent);

/* rsp becomes "SERVER_ERROR <the system's text for err>\r\n". */
void mc_reply_error(struct buf *rsp, int err);

#endif
