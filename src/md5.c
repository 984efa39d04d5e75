/*
 * md5: a self-contained RFC 1321 MD5. Placement needs it twice: the "md5"
 * key hash takes the first four digest bytes, and every ketama point comes
 * from the digest of "identity-i". Both must match twemproxy bit for bit, so
 * this is the plain textbook algorithm with no shortcuts that could change
 * the output.
 *
 * The whole message is hashed in one call (keys and identities are short),
 * so there is no streaming context: the state lives on the stack and the
 * function is pure and safe from any thread. Words are assembled byte by
 * byte, which keeps the code independent of host endianness and alignment.
 */
#include "md5.h"

#include <string.h>

/* Per-step additive constants, floor(abs(sin(i + 1)) * 2^32) from the RFC. */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Left-rotate amounts; each round repeats its group of four. */
static const uint8_t md5_r[4][4] = {
    { 7, 12, 17, 22 },
    { 5, 9, 14, 20 },
    { 4, 11, 16, 23 },
    { 6, 10, 15, 21 },
};

static uint32_t
md5_rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t
md5_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
md5_store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Fold one 64-byte block into the chaining state. */
static void
md5_block(uint32_t st[4], const uint8_t blk[64])
{
    uint32_t m[16];
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];

    for (int i = 0; i < 16; i++) {
        m[i] = md5_load_le32(blk + 4 * i);
    }

    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;

        switch (i >> 4) {
        case 0:
            f = (b & c) | (~b & d);
            g = i;
            break;
        case 1:
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
            break;
        case 2:
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
            break;
        default:
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
            break;
        }
        f += a + md5_k[i] + m[g];
        a = d;
        d = c;
        c = b;
        b += md5_rotl(f, md5_r[i >> 4][i & 3]);
    }

    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
}

void
md5_digest(const void *data, size_t len, uint8_t out[16])
{
    const uint8_t *p = data;
    uint32_t st[4] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 };
    uint8_t tail[128];
    size_t rest, padded;
    uint64_t bits = (uint64_t)len * 8;

    while (len >= 64) {
        md5_block(st, p);
        p += 64;
        len -= 64;
    }

    /*
     * The 0x80 marker and the 64-bit length need 9 bytes after the data, so
     * the last partial block spills into a second one when more than 55
     * bytes remain.
     */
    rest = len;
    padded = rest < 56 ? 64 : 128;
    memset(tail, 0, sizeof(tail));
    if (rest > 0) {
        memcpy(tail, p, rest);
    }
    tail[rest] = 0x80;
    md5_store_le32(tail + padded - 8, (uint32_t)bits);
    md5_store_le32(tail + padded - 4, (uint32_t)(bits >> 32));
    md5_block(st, tail);
    if (padded == 128) {
        md5_block(st, tail + 64);
    }

    for (int i = 0; i < 4; i++) {
        md5_store_le32(out + 4 * i, st[i]);
    }
}
