/*
 * md5: RFC 1321 MD5, used by the md5 hash and by ketama point generation.
 */
#ifndef CMX_MD5_H
#define CMX_MD5_H

#include <stddef.h>
#include <stdint.h>

/* Write the 16-byte MD5 digest of data[0..len) to out. */
void md5_digest(const void *data, size_t len, uint8_t out[16]);

#endif
