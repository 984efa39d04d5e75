#!/usr/bin/python3
"""Large values forwarded in chunks, against real memcached and redis-server.

A value body too large for the read buffer is read into a chain of
mbuf_size chunks and written on from them, in requests and replies. These
tests check the bytes that come out against the bytes that went in:

- every chunk-size multiple up to 5 MiB, +-2 bytes (chunks of 256 KiB),
  and up to 1 MiB with the default 16 KiB chunks; sizes 0 and 1 and random
  sizes; both protocols, SET then GET, each value also read from the
  backend directly;
- large values in pipelines mixed with small requests;
- split requests and replies: MSET, MGET and memcached multi-gets whose
  large values sit on two backends;
- a large SET arriving in two writes cut where it matters (inside the
  header, at the body's start, at chunk boundaries +-1, before the body's
  "\\r\\n" and between its "\\r" and "\\n");
- noreply sets, a client that leaves in the middle of a large body, and a
  large value refused by max_request_size, with the conn serving on after.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_chunks.py [NAME-SUBSTRING...]
"""

import os
import random
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KIB = 1 << 10
MIB = 1 << 20
MAX_VALUE = 5 * MIB + 2
# Bytes every value is cut from: a value's offset depends on its size, so a
# value shifted by a byte or taken from the wrong request does not compare.
PATTERN = random.Random(7).randbytes(4093) * (MAX_VALUE // 4093 + 2)


def value(size, salt=0):
    off = (size * 31 + salt * 17) % 4093
    return PATTERN[off:off + size]


def sizes_around_multiples(chunk, limit):
    out = []
    k = 1
    while k * chunk - 2 <= limit:
        out.extend(s for s in range(k * chunk - 2, k * chunk + 3) if 0 <= s <= limit)
        k += 1
    return out


def mc_set(key, v, noreply=False):
    return b"set %s 5 0 %d%s\r\n%s\r\n" % (key, len(v), b" noreply" if noreply else b"", v)


def mc_value(key, v, flags=5):
    return b"VALUE %s %d %d\r\n%s\r\n" % (key, flags, len(v), v)


def bulk(v):
    return b"$%d\r\n%s\r\n" % (len(v), v)


class ChunkTest(h.IntegrationTest):
    def start(self, redis, mbuf=None, nbackends=1, globals_=None):
        if redis:
            backends = [self.redis() for _ in range(nbackends)]
        else:
            backends = [self.memcached(max_item="8m", memory=256) for _ in range(nbackends)]
        pool = h.Pool("p", backends, redis=redis, timeout=20000)
        g = dict(globals_ or {})
        if mbuf is not None:
            g["mbuf_size"] = mbuf
        cmx = self.cachemux([pool], workers=1, globals_=g)
        return cmx, backends

    def sweep(self, redis, mbuf, sizes):
        cmx, (b,) = self.start(redis, mbuf)
        with cmx.client(timeout=60) as c, b.client(timeout=60) as d:
            for i, n in enumerate(sizes):
                v = value(n, i)
                key = b"k%d" % (i % 7)
                if redis:
                    c.send(h.resp_command("SET", key, v) + h.resp_command("GET", key))
                    got = c.read_resp(2, timeout=60)
                    self.assertEqual(got[0], b"+OK\r\n", "size %d" % n)
                    self.assertTrue(got[1] == bulk(v), "size %d: GET returned other bytes" % n)
                    direct = d.resp("GET", key, timeout=60)
                    self.assertTrue(direct == bulk(v), "size %d: the backend holds other bytes" % n)
                else:
                    c.send(mc_set(key, v) + b"get " + key + b"\r\n")
                    got = c.read_replies(2, timeout=60)
                    self.assertEqual(got[0], b"STORED\r\n", "size %d" % n)
                    self.assertTrue(got[1] == mc_value(key, v) + b"END\r\n",
                                    "size %d: get returned other bytes" % n)
                    direct = d.request(b"get " + key + b"\r\n", timeout=60)
                    self.assertTrue(direct == mc_value(key, v) + b"END\r\n",
                                    "size %d: the backend holds other bytes" % n)

    def sizes_small_and_random(self):
        rng = random.Random(11)
        return [0, 1, 2, 3, 100, 4095, 4096, 4097] + [rng.randrange(1, MAX_VALUE) for _ in range(6)]

    def test_memcached_multiples_of_256k(self):
        self.sweep(False, 256 * KIB, sizes_around_multiples(256 * KIB, MAX_VALUE))

    def test_redis_multiples_of_256k(self):
        self.sweep(True, 256 * KIB, sizes_around_multiples(256 * KIB, MAX_VALUE))

    def test_memcached_multiples_of_16k(self):
        self.sweep(False, None, sizes_around_multiples(16 * KIB, MIB) + self.sizes_small_and_random())

    def test_redis_multiples_of_16k(self):
        self.sweep(True, None, sizes_around_multiples(16 * KIB, MIB) + self.sizes_small_and_random())

    def test_memcached_small_chunks(self):
        # the smallest mbuf_size: a 100 KB value takes some 200 chunks
        self.sweep(False, 512, [511, 512, 513, 4095, 4097, 100000, 300001])

    def test_redis_small_chunks(self):
        self.sweep(True, 512, [511, 512, 513, 4095, 4097, 100000, 300001])

    def pipeline_case(self, redis):
        cmx, _ = self.start(redis, nbackends=2)
        big = [value(n, n) for n in (100 * KIB, 1 * MIB + 1, 16 * KIB * 3 - 1, 700 * KIB)]
        data, want = b"", []
        for i, v in enumerate(big):
            if redis:
                data += h.resp_command("SET", "s%d" % i, "small%d" % i)
                data += h.resp_command("SET", "b%d" % i, v) + h.resp_command("PING")
                data += h.resp_command("GET", "b%d" % i) + h.resp_command("GET", "s%d" % i)
                want += [b"+OK\r\n", b"+OK\r\n", b"+PONG\r\n", bulk(v), bulk(b"small%d" % i)]
            else:
                s = b"small%d" % i
                data += b"set s%d 5 0 %d\r\n%s\r\n" % (i, len(s), s)
                data += mc_set(b"b%d" % i, v) + b"version\r\n"
                data += b"get b%d\r\n" % i + b"get s%d\r\n" % i
                want += [b"STORED\r\n", b"STORED\r\n", None,
                         mc_value(b"b%d" % i, v) + b"END\r\n", mc_value(b"s%d" % i, s) + b"END\r\n"]
        with cmx.client(timeout=60) as c:
            got = c.pipeline(data, len(want), timeout=60, resp=redis)
        for i, (g, w) in enumerate(zip(got, want)):
            if w is None:
                self.assertTrue(g.startswith(b"VERSION "), g[:40])
            else:
                self.assertTrue(g == w, "reply %d differs (%d bytes, want %d)" % (i, len(g), len(w)))

    def test_memcached_pipeline_mixed(self):
        self.pipeline_case(False)

    def test_redis_pipeline_mixed(self):
        self.pipeline_case(True)

    def test_redis_split_mset_mget(self):
        cmx, backends = self.start(True, nbackends=2)
        keys = [b"%d:key" % i for i in range(12)]
        vals = [value(20 * KIB * (i + 1) + i, i) for i in range(len(keys))]
        args = []
        for k, v in zip(keys, vals):
            args += [k, v]
        with cmx.client(timeout=60) as c:
            self.assertEqual(c.resp("MSET", *args, timeout=60), b"+OK\r\n")
            got = c.resp("MGET", *(keys[:6] + [b"missing"] + keys[6:]), timeout=60)
        want = b"*%d\r\n" % (len(keys) + 1) + b"".join(bulk(v) for v in vals[:6]) + b"$-1\r\n" + \
            b"".join(bulk(v) for v in vals[6:])
        self.assertTrue(got == want, "MGET returned other bytes")
        # the values are where the placement says, and were really split
        held = 0
        for b in backends:
            with b.client(timeout=30) as d:
                for k, v in zip(keys, vals):
                    r = d.resp("GET", k, timeout=30)
                    if r != b"$-1\r\n":
                        self.assertTrue(r == bulk(v))
                        held += 1
        self.assertEqual(held, len(keys))
        for b in backends:
            with b.client(timeout=5) as d:
                self.assertNotEqual(d.resp("DBSIZE"), b":0\r\n", "the keys did not spread")

    def test_memcached_split_multiget(self):
        cmx, backends = self.start(False, nbackends=2)
        keys = [b"%d:key" % i for i in range(12)]
        vals = [value(20 * KIB * (i + 1) + i, i) for i in range(len(keys))]
        with cmx.client(timeout=60) as c:
            got = c.pipeline(b"".join(mc_set(k, v) for k, v in zip(keys, vals)), len(keys),
                             timeout=60)
            self.assertEqual(got, [b"STORED\r\n"] * len(keys))
            r = c.request(b"get " + b" ".join(keys[:6] + [b"missing"] + keys[6:]) + b"\r\n",
                          timeout=60)
        want = b"".join(mc_value(k, v) for k, v in zip(keys, vals)) + b"END\r\n"
        self.assertTrue(r == want, "multi-get returned other bytes")
        spread = [sum(1 for k in keys if b.get(k.decode()) is not None) for b in backends]
        self.assertTrue(all(spread), "the keys did not spread over both backends: %s" % spread)

    def two_writes_case(self, redis, mbuf):
        cmx, _ = self.start(redis, mbuf)
        v = value(2 * mbuf + 1000, 3)
        req = h.resp_command("SET", "cut", v) if redis else mc_set(b"cut", v)
        body = req.index(v)
        cuts = {1, 5, body - 1, body, body + 1, len(req) - 2, len(req) - 1}
        for k in (1, 2):
            cuts.update({body + k * mbuf - 1, body + k * mbuf, body + k * mbuf + 1})
        with cmx.client(timeout=30) as c:
            for i, cut in enumerate(sorted(x for x in cuts if 0 < x < len(req))):
                v2 = value(len(v), i)
                r2 = req.replace(v, v2)
                c.send(r2[:cut])
                time.sleep(0.02)    # the proxy reads the first part alone
                c.send(r2[cut:])
                if redis:
                    self.assertEqual(c.read_resp(1)[0], b"+OK\r\n", "cut at %d" % cut)
                    self.assertTrue(c.resp("GET", "cut") == bulk(v2), "cut at %d" % cut)
                else:
                    self.assertEqual(c.read_replies(1)[0], b"STORED\r\n", "cut at %d" % cut)
                    self.assertTrue(c.request(b"get cut\r\n") == mc_value(b"cut", v2) + b"END\r\n",
                                    "cut at %d" % cut)

    def test_memcached_two_writes(self):
        self.two_writes_case(False, 16 * KIB)

    def test_redis_two_writes(self):
        self.two_writes_case(True, 16 * KIB)

    def test_memcached_noreply_large(self):
        cmx, _ = self.start(False)
        v = value(300 * KIB, 1)
        with cmx.client(timeout=30) as c:
            c.send(mc_set(b"nr", v, noreply=True) + mc_set(b"nr2", v[::-1], noreply=True))
            self.assertTrue(c.request(b"get nr nr2\r\n") ==
                            mc_value(b"nr", v) + mc_value(b"nr2", v[::-1]) + b"END\r\n")

    def leave_case(self, redis):
        cmx, _ = self.start(redis)
        v = value(3 * MIB, 2)
        req = h.resp_command("SET", "gone", v) if redis else mc_set(b"gone", v)
        for cut in (req.index(v) + 100 * KIB, len(req) - 1):
            c = h.Client(cmx.port(), timeout=10)
            c.send(req[:cut])
            time.sleep(0.05)
            c.close()
        with cmx.client(timeout=30) as c:
            if redis:
                self.assertEqual(c.resp("GET", "gone"), b"$-1\r\n")
                self.assertEqual(c.resp("SET", "after", "x"), b"+OK\r\n")
            else:
                self.assertEqual(c.request(b"get gone\r\n"), b"END\r\n")
                self.assertEqual(c.request(b"set after 0 0 1\r\nx\r\n"), b"STORED\r\n")

    def test_memcached_client_leaves_mid_body(self):
        self.leave_case(False)

    def test_redis_client_leaves_mid_body(self):
        self.leave_case(True)

    def test_too_large_refused_before_the_body(self):
        for redis in (False, True):
            cmx, _ = self.start(redis, globals_={"max_request_size": MIB})
            v = value(MIB + 1, 0)
            with cmx.client(timeout=30) as c:
                if redis:
                    c.send(h.resp_command("SET", "big", v)[:200])
                    self.assertEqual(c.read_resp(1)[0],
                                     b"-ERR Protocol error: request too large\r\n")
                else:
                    c.send(mc_set(b"big", v)[:200])
                    self.assertEqual(c.read_replies(1)[0],
                                     b"SERVER_ERROR object too large for cache\r\n")
                self.assertClosed(c)
            cmx.stop()


if __name__ == "__main__":
    h.main(require=("memcached", "redis-server"), test_timeout=600)
