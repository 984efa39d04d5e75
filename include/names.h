/*
 * names: the names clients gave themselves (Redis CLIENT SETNAME), kept
 * beside the client structs in one table per worker, keyed by conn id.
 * Few clients name themselves, and an idle client should not carry a
 * pointer for it: a client holds one bit saying a name is here.
 */
#ifndef CMX_NAMES_H
#define CMX_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct name_entry;

struct names {
    struct name_entry **slots; /* chains; NULL until the first name */
    uint32_t nslots;           /* a power of two, or 0 */
    uint32_t n;                /* names held */
};

/* Give id the name p[0..len) (len > 0), replacing any it had. Returns 0 or
   -1 (out of memory: id keeps the name it had). */
int names_set(struct names *t, uint64_t id, const void *p, size_t len) MUSTCHECK;
/* id's name (NUL-terminated), or NULL. */
const char *names_get(const struct names *t, uint64_t id);
/* Forget id's name, if it has one. */
void names_drop(struct names *t, uint64_t id);
/* Free every name and the table. */
void names_free(struct names *t);

#endif
