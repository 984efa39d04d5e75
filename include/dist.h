/*
 * dist: key distribution over a pool's servers, exactly as twemproxy 0.5.0
 * places keys: ketama (MD5 points of "identity-i", float point counts),
 * modula (weight consecutive slots per live server) and random.
 *
 * A struct dist is built from the servers in identity order (see
 * dist_ident_cmp) and is immutable afterwards, so a worker can rebuild its
 * own copy when ejection changes the live set. Lookup returns an index into
 * the array the dist was built from.
 */
#ifndef CMX_DIST_H
#define CMX_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

enum dist_type { DIST_KETAMA, DIST_MODULA, DIST_RANDOM, DIST_COUNT };

struct dist_server {
    const char *ident; /* identity: name, host:port, host (port 11211) or path: */
    size_t ident_len;
    uint32_t weight; /* > 0 */
    bool live;       /* false while ejected: left off the ring */
};

/* The placement settings of a pool that do not depend on the live set. */
struct dist_key_rule {
    enum hash_type hash;
    bool has_tag;
    char tag[2]; /* hash_tag open and close characters */
};

struct dist;

/* twemproxy's identity order: shorter first, then bytewise. qsort-style. */
int dist_ident_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Config name -> type; returns -1 for an unknown name. */
int dist_from_name(const char *name);
const char *dist_name(enum dist_type type);

/*
 * Build the distribution over servers[0..n) (already in identity order).
 * Servers with live == false are left out. Returns NULL only when out of
 * memory. The dist does not keep pointers into servers.
 */
struct dist *dist_build(enum dist_type type, const struct dist_server *servers, size_t n);
void dist_free(struct dist *d);

/* Number of live servers the dist was built over. */
size_t dist_live_count(const struct dist *d);

/*
 * The bytes of key that are hashed: with a tag, the bytes between the first
 * open character and the next close character after it, when at least one
 * byte lies between; otherwise the whole key.
 */
void dist_hashed_part(const struct dist_key_rule *rule, const uint8_t *key, size_t len,
                      const uint8_t **part, size_t *part_len);

/*
 * Index (into the servers array given to dist_build) of the server that owns
 * key, or -1 when no server is live. A dist over one server (of one in the
 * pool) skips hashing. rng is the caller's xorshift state for random.
 */
int dist_pick(const struct dist *d, const struct dist_key_rule *rule, const uint8_t *key,
              size_t len, uint64_t *rng);

/* Index for an already computed hash (ketama and modula), -1 if none live. */
int dist_lookup_hash(const struct dist *d, uint32_t hash, uint64_t *rng);

#endif
