#!/usr/bin/python3
"""Fault-injection tests: cachemux in front of scripted backends
(test/integration/scripted.py) that misbehave on chosen keys, for memcached
and Redis pools. cachemux runs with workers = 1 and server_connections = 1,
so every request goes through one worker and one server connection slot.

A fault leaves nothing behind: after each fault, three clients send one
request each (a SET, a GET, a two-key get), each sent once the backend has
received the one before, so all three are in flight on the reconnected
server connection at once; each must get exactly its own reply, and no
client may hold a byte more. The pool's timeout (1000 ms) turns state left
over from the failed connection into a failure with a message, not a hang.

- Cut replies: the backend closes after byte N of a representative reply,
  for every N from 0 to the reply's length (the 100 KB replies: every
  offset of the first and last 256 bytes, every 4 KiB and mbuf boundary
  +-2, and 512 more from a fixed seed). The cut request gets `Connection
  reset by peer`, or the whole reply when N is its length. Also a Redis
  MGET and DEL and a memcached multi-get split over two servers, one of
  whose parts is cut.
- Split integer replies that overflow 64 bits (DEL/EXISTS/UNLINK/TOUCH over
  two servers answering 9223372036854775807) get an error reply and the
  connection goes on; sums that fit are exact.
- Endless replies (an array of 2^31-1 elements, endless memcached VALUE
  blocks, a 512 MiB bulk, a 1 GiB VALUE, an endless line) with
  max_reply_size = 1 MiB: an error reply within seconds, RSS growth under
  16 MiB, then others are served; a reply just under the limit passes.
- An unsolicited reply, garbage, and stalls (with the timeout): the requests
  the connection carried get an error, nobody gets another's reply.

Time windows are asserted only on unsanitized builds (a build counts as
sanitized when CACHEMUX's path contains "asan"/"ubsan"/"tsan"/"msan" or
CACHEMUX_SANITIZED=1).

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_faults.py [NAME-SUBSTRING...]
CACHEMUX_FAULT_OFFSETS=all cuts the 100 KB replies at every offset too
(minutes each: add CACHEMUX_TIME_SCALE=5 for the per-test watchdog).
"""

import hashlib
import os
import random
import select
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import scripted as sc  # noqa: E402
from helpers import SANITIZED, B, bulk, mc_store, mc_value  # noqa: E402


TIMEOUT_MS = 1000           # the pool's timeout
MBUF = 16384                # cachemux's default mbuf_size
MAX_REPLY = 1048576         # max_reply_size in the endless-reply tests
RSS_BOUND_KIB = 16 * 1024
IDLE_CLOSE_RE = r"server \S+ closed an idle connection"

ALL_OFFSETS = os.environ.get("CACHEMUX_FAULT_OFFSETS", "") == "all"
SUMMARY = []                # (what, offsets tried), printed at the end


class Redis:
    name = sc.REDIS
    redis = True
    RESET = b"-ERR Connection reset by peer\r\n"
    TIMEOUT = b"-ERR Connection timed out\r\n"
    ERR = b"-ERR "
    SET_OK = b"+OK\r\n"

    @staticmethod
    def get(key):
        return h.resp_command("GET", key)

    @staticmethod
    def set(key, value):
        return h.resp_command("SET", key, value)

    @staticmethod
    def found(key, value):
        return bulk(value)

    @staticmethod
    def read(c, n=1, timeout=None):
        return c.read_resp(n, timeout)


class Memcached:
    name = sc.MEMCACHED
    redis = False
    RESET = b"SERVER_ERROR Connection reset by peer\r\n"
    TIMEOUT = b"SERVER_ERROR Connection timed out\r\n"
    ERR = b"SERVER_ERROR "
    SET_OK = b"STORED\r\n"

    @staticmethod
    def get(*keys):
        return b"get " + b" ".join(B(k) for k in keys) + b"\r\n"

    @staticmethod
    def set(key, value):
        return mc_store(key, value)

    @staticmethod
    def found(key, value):
        return mc_value(key, value)

    @staticmethod
    def read(c, n=1, timeout=None):
        return c.read_replies(n, timeout)


def offsets(length):
    """The byte offsets to cut a reply of `length` bytes at: all of them up
    to 4 KiB; beyond, every offset of the first and last 256 bytes, each
    4 KiB and mbuf boundary +-2, and 512 more from a fixed seed. With
    CACHEMUX_FAULT_OFFSETS=all, every offset (minutes per 100 KB reply)."""
    if length <= 4096 or ALL_OFFSETS:
        return list(range(length + 1))
    s = set(range(257)) | set(range(length - 256, length + 1))
    for k in range(1, length // 4096 + 1):
        s |= set(range(k * 4096 - 2, k * 4096 + 3))
    for k in range(1, length // MBUF + 1):
        s |= set(range(k * MBUF - 2, k * MBUF + 3))
    rnd = random.Random(length)
    s |= {rnd.randrange(length) for _ in range(512)}
    return sorted(n for n in s if 0 <= n <= length)


VALUES = {"valAA": "valAA-13bytes", "valBB": "vBB", "valCC": "valCC-twenty-one-byte",
          "valQQ": "valQQ/value"}


def val(key):
    """The value the tests store under key (by its prefix)."""
    return VALUES[key.split(":")[0]]


def pending(c):
    """Whatever c's peer sent that has not been read yet (without waiting)."""
    c.sock.setblocking(False)
    try:
        while True:
            try:
                d = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionResetError:
                c.eof = True
                break
            if not d:
                c.eof = True
                break
            c.buf += d
    finally:
        c.sock.setblocking(True)
    return bytes(c.buf)


class FaultTest(h.IntegrationTest):

    def scripted(self, proto, name):
        b = sc.Scripted(proto.name, name=name).start()
        self.addCleanup(b.stop)
        return b

    def start(self, proto, nservers=1, timeout=TIMEOUT_MS, globals_=None):
        """cachemux (1 worker, 1 server conn) on a pool of scripted backends
        s1..sN; returns (proxy, [backends])."""
        bs = [self.scripted(proto, "s%d" % (i + 1)) for i in range(nservers)]
        pool = h.Pool("p", bs, redis=proto.redis, timeout=timeout, server_connections=1)
        px = self.cachemux([pool], workers=1, globals_=globals_)
        return px, bs

    def client(self, px, timeout=3):
        c = h.Client(px.port(), timeout=timeout)
        self.addCleanup(c.close)
        return c

    def place(self, px, wanted, tries=64):
        """wanted: {label: (server ident, fn(salt) -> candidate key)}; returns
        {label: key} with each key placed on its server (one `cachemux -L`)."""
        # (fnv1a_64 spreads keys that differ in one digit poorly: salt them)
        cands = {label: [B(fn("%d%s" % (i, hashlib.md5(b"%s/%d" % (B(str(label)), i)).hexdigest()[:6])))
                         for i in range(tries)] for label, (_, fn) in wanted.items()}
        where = h.locate(px.conf, "p", [k for ks in cands.values() for k in ks])
        out = {}
        for label, (ident, _) in wanted.items():
            ks = [k for k in cands[label] if where[k] == ident]
            self.assertTrue(ks, "no candidate key for %s lands on %s" % (label, ident))
            out[label] = ks[0].decode()
        return out

    def died(self, px):
        rc = px.proc.poll() if px.proc is not None else None
        return "" if rc is None else " (cachemux exited with %s)" % rc

    def reply_of(self, proto, px, c, what, timeout=None):
        """One reply from c, or a failure naming `what`."""
        try:
            return proto.read(c, 1, timeout)[0]
        except socket.timeout as e:
            self.fail("%s: no reply: %s%s" % (what, e, self.died(px)))
        except h.Closed as e:
            self.fail("%s: connection closed: %s%s" % (what, e, self.died(px)))

    def request(self, proto, px, c, req, what, timeout=None):
        c.send(req)
        return self.reply_of(proto, px, c, what, timeout)

    def own_replies(self, proto, px, backend, clients, checks, what):
        """checks: [(request, expected reply)], one per client. Each request
        is sent once `backend` has received the one before, so they are all
        in flight together; then every client must get exactly its reply."""
        base = len(backend.received)
        for i, (c, (req, _)) in enumerate(zip(clients, checks)):
            c.send(req)
            backend.wait_received(base + i + 1, timeout=1.0)
        bad = []
        for i, (c, (req, exp)) in enumerate(zip(clients, checks)):
            try:
                got = proto.read(c, 1)[0]
            except (socket.timeout, h.Closed) as e:
                bad.append("client %s (%r): %s" % ("ABCDEFG"[i], req[:60], e))
                continue
            if got != exp:
                bad.append("client %s (%r) got %r, expected %r"
                           % ("ABCDEFG"[i], req[:60], got[:200], exp[:200]))
        for i, c in enumerate(clients):
            extra = pending(c)
            if extra or c.eof:
                bad.append("client %s then had %r%s" % ("ABCDEFG"[i], extra[:200],
                                                        " and was closed" if c.eof else ""))
        if bad:
            self.fail("%s: afterwards, three clients' requests: %s%s"
                      % (what, "; ".join(bad), self.died(px)))

    def abc(self, proto, keys):
        """The three clients' requests and replies for keys [k0, k1, k2]
        (set beforehand): SET k0 (a status reply: the first reply on a new
        server conn shows state left by the last one, and a status line is
        the shortest and the one whose end is searched for), GET k1 (a bulk)
        and a two-key get of k2 and k0 (an array / two VALUEs). The values
        differ in length from each other and from the representative
        replies, so a parse resumed from another connection's state cannot
        land on a right-looking reply by chance."""
        k0, k1, k2 = keys
        if proto is Redis:
            multi = (h.resp_command("MGET", k2, k0),
                     b"*2\r\n" + Redis.found(k2, val(k2)) + Redis.found(k0, val(k0)))
        else:
            multi = (Memcached.get(k2, k0),
                     Memcached.found(k2, val(k2))[:-5] + Memcached.found(k0, val(k0)))
        return [(proto.set(k0, val(k0)), proto.SET_OK),
                (proto.get(k1), proto.found(k1, val(k1))), multi]

    def setup_values(self, proto, px, c, keys):
        for k in keys:
            self.assertEqual(self.request(proto, px, c, proto.set(k, val(k)), "set " + k), proto.SET_OK)

    def note(self, what, n):
        SUMMARY.append((what, n))
        sys.stdout.write("[%s: %d offsets] " % (what, n))


# --------------------------------------------------------------------------
# 1. a reply cut at every byte offset

class Cut(FaultTest):

    def sweep(self, proto, name):
        """One server: GET (memcached: get, or set for `stored`) of key
        cut:NAME:N for every offset N."""
        px, (b,) = self.start(proto)
        p, a, bb, c = (self.client(px) for _ in range(4))
        self.setup_values(proto, px, a, ["valAA", "valBB", "valCC"])
        checks = self.abc(proto, ["valAA", "valBB", "valCC"])
        conns0 = b.connections

        def make(n):
            key = "cut:%s:%06d" % (name, n)     # (fixed width: the same length for every n)
            if proto is Memcached and name == "stored":
                return Memcached.set(key, "v"), sc.reply(proto.name, name, [key])
            if proto is Memcached and name == "multi":
                return Memcached.get(key, "other"), sc.reply(proto.name, name, [key, "other"])
            return proto.get(key), sc.reply(proto.name, name, [key])

        length = len(make(0)[1])
        tried = 0
        for n in offsets(length):
            req, full = make(n)
            what = "%s reply %r (%d bytes) cut after byte %d" % (proto.name, name, len(full), n)
            off = px.log_size()
            got = self.request(proto, px, p, req, what + ", the cut request")
            exp = full if n == len(full) else proto.RESET
            self.assertEqual(got, exp, "%s: the cut request got %r, expected %r%s"
                             % (what, got[:200], exp[:200], self.died(px)))
            if n == len(full):
                # the backend closed after a whole reply: wait until cachemux
                # saw that, so the next request cannot meet the closing conn
                px.wait_log(IDLE_CLOSE_RE, since=off, timeout=5)
            self.own_replies(proto, px, b, [a, bb, c], checks, what)
            tried += 1
        self.assertEqual(b.connections - conns0, tried,
                         "%s %r: one new server connection per cut (%d cuts), got %d"
                         % (proto.name, name, tried, b.connections - conns0))
        self.note("%s %s, %d bytes" % (proto.name, name, length), tried)


def _add_sweeps():
    for proto in (Redis, Memcached):
        for name in sc.REPLIES[proto.name]:
            def t(self, proto=proto, name=name):
                self.sweep(proto, name)
            t.__name__ = "test_%s_cut_%s" % ("redis" if proto is Redis else "mc", name)
            t.__doc__ = "%s: the %r reply cut at every offset" % (proto.name, name)
            setattr(Cut, t.__name__, t)


_add_sweeps()


class CutSplit(FaultTest):
    """A request split over two servers, s1's part cut at every offset."""

    def split_sweep(self, proto, what, name, make):
        """make(cut key, keys) -> (request, its whole reply, s1's keys in
        order); s1's part is the representative reply `name`."""
        px, (b1, b2) = self.start(proto, nservers=2)
        p, a, bb, c, setter = (self.client(px) for _ in range(5))
        k = self.place(px, {
            "AA": ("s1", lambda s: "valAA:" + s), "BB": ("s1", lambda s: "valBB:" + s),
            "CC": ("s1", lambda s: "valCC:" + s), "B1": ("s2", lambda s: "kB1:" + s),
            "A1": ("s1", lambda s: "kA1:" + s), "A2": ("s1", lambda s: "kA2:" + s),
        })
        cuts = self.place(px, {n: ("s1", (lambda n: lambda s: "cut:%s:%03d:%s" % (name, n, s))(n))
                               for n in range(100)})
        self.setup_values(proto, px, setter, [k["AA"], k["BB"], k["CC"]])
        checks = self.abc(proto, [k["AA"], k["BB"], k["CC"]])
        # the third client's request is split over both servers
        if proto is Redis:
            checks[2] = (h.resp_command("MGET", k["CC"], k["B1"]),
                         b"*2\r\n" + Redis.found(k["CC"], val(k["CC"])) + Redis.found(k["B1"], "b1"))
        else:
            checks[2] = (Memcached.get(k["CC"], k["B1"]),
                         Memcached.found(k["CC"], val(k["CC"]))[:-5] + Memcached.found(k["B1"], "b1"))
        tried, n = 0, 0
        while True:
            ck = cuts[n]
            req, full, s1keys = make(ck, k)
            part = sc.reply(proto.name, name, s1keys)
            if n > len(part):
                break
            b2.data[B(k["B1"])] = b"b1"
            w = "%s: the s1 part (%r reply, %d bytes) cut after byte %d" % (what, name, len(part), n)
            off = px.log_size()
            got = self.request(proto, px, p, req, w + ", the split request")
            exp = full if n == len(part) else proto.RESET
            self.assertEqual(got, exp, "%s: the split request got %r, expected %r%s"
                             % (w, got[:300], exp[:300], self.died(px)))
            if n == len(part):
                px.wait_log(IDLE_CLOSE_RE, since=off, timeout=5)
            b2.data[B(k["B1"])] = b"b1"
            self.own_replies(proto, px, b1, [a, bb, c], checks, w)
            tried += 1
            n += 1
        self.assertEqual(b2.connections, 1, "%s: s2 was never cut, yet had %d connections"
                         % (what, b2.connections))
        self.note(what, tried)

    def test_redis_mget_split_cut(self):
        """MGET kB1 kA1 CUT kA2: s1's part (kA1 CUT kA2) is the `mget` reply
        (a, nil, xyz) cut at every offset; s2 answers kB1."""
        def make(ck, k):
            req = h.resp_command("MGET", k["B1"], k["A1"], ck, k["A2"])
            full = b"*4\r\n$2\r\nb1\r\n$1\r\na\r\n$-1\r\n$3\r\nxyz\r\n"
            return req, full, [k["A1"], ck, k["A2"]]
        self.split_sweep(Redis, "redis MGET over 2 servers", "mget", make)

    def test_redis_del_split_cut(self):
        """DEL kB1 CUT: s1's part is the `int` reply (:42) cut at every
        offset; s2 deletes kB1 (:1); the sum is :43."""
        def make(ck, k):
            return h.resp_command("DEL", k["B1"], ck), b":43\r\n", [ck]
        self.split_sweep(Redis, "redis DEL over 2 servers", "int", make)

    def test_mc_multiget_split_cut(self):
        """get kB1 CUT kA1: s1's part (CUT kA1) is the `multi` reply (two
        VALUEs) cut at every offset; s2 answers kB1; values in key order."""
        def make(ck, k):
            req = Memcached.get(k["B1"], ck, k["A1"])
            full = (b"VALUE %s 0 2\r\nb1\r\n" % B(k["B1"]) + b"VALUE %s 0 5\r\nhello\r\n" % B(ck) +
                    b"VALUE %s 0 3\r\nxyz\r\nEND\r\n" % B(k["A1"]))
            return req, full, [ck, k["A1"]]
        self.split_sweep(Memcached, "memcached get over 2 servers", "multi", make)


# --------------------------------------------------------------------------
# 2. split integer replies that overflow

class Overflow(FaultTest):

    def test_redis_split_sum_overflow(self):
        """DEL, EXISTS, UNLINK, TOUCH of two keys on two servers each
        answering 9223372036854775807 (or each -9223372036854775808, or the
        maximum and 1) get an error reply, the connection stays open and
        serves the next request; sums that fit are exact."""
        px, (b1, b2) = self.start(Redis, nservers=2)
        k = self.place(px, {
            "maxA": ("s1", lambda s: "bigint:max:" + s), "maxB": ("s2", lambda s: "bigint:max:" + s),
            "minA": ("s1", lambda s: "bigint:min:" + s), "minB": ("s2", lambda s: "bigint:min:" + s),
            "oneB": ("s2", lambda s: "one:" + s), "noneB": ("s2", lambda s: "none:" + s),
            "AA": ("s1", lambda s: "valAA:" + s),
        })
        b2.data[B(k["oneB"])] = b"1"
        c = self.client(px)
        self.setup_values(Redis, px, c, [k["AA"]])
        after = (Redis.get(k["AA"]), Redis.found(k["AA"], val(k["AA"])))
        cases = []
        for cmd in ("DEL", "EXISTS", "UNLINK", "TOUCH"):
            cases.append((cmd, k["maxA"], k["maxB"], None))
        cases += [("EXISTS", k["minA"], k["minB"], None),
                  ("DEL", k["minA"], k["minB"], None),
                  ("EXISTS", k["maxA"], k["oneB"], None),
                  ("EXISTS", k["minA"], k["maxB"], b":-1\r\n"),
                  ("EXISTS", k["maxA"], k["noneB"], b":9223372036854775807\r\n"),
                  ("EXISTS", k["minA"], k["noneB"], b":-9223372036854775808\r\n")]
        bad = []
        for cmd, x, y, exp in cases:
            what = "%s %s %s" % (cmd, x, y)
            got = self.request(Redis, px, c, h.resp_command(cmd, x, y), what)
            if exp is None:
                if not (got.startswith(b"-ERR ") and got.endswith(b"\r\n")):
                    bad.append("%s got %r, expected an -ERR reply" % (what, got))
            elif got != exp:
                bad.append("%s got %r, expected %r" % (what, got, exp))
            nxt = self.request(Redis, px, c, after[0], "the request after " + what)
            if nxt != after[1]:
                bad.append("after %s, GET got %r" % (what, nxt))
        if bad:
            self.fail("split integer sums over s1 and s2:\n  " + "\n  ".join(bad) + self.died(px))
        self.own_replies(Redis, px, b1, [self.client(px) for _ in range(3)],
                         [after] * 3, "after the overflows")


# --------------------------------------------------------------------------
# 3. endless replies and max_reply_size

class Endless(FaultTest):

    def endless(self, proto, kinds):
        limit = h.scaled(10 if SANITIZED else 5)
        px, (b,) = self.start(proto, timeout=20000, globals_={"max_reply_size": str(MAX_REPLY)})
        p, a, bb, c = (self.client(px, timeout=20) for _ in range(4))
        self.setup_values(proto, px, a, ["valAA", "valBB", "valCC"])
        checks = self.abc(proto, ["valAA", "valBB", "valCC"])
        # just under the limit still passes
        big = b"v" * (MAX_REPLY - 100)
        p.send(proto.set("big", big))
        self.assertEqual(self.reply_of(proto, px, p, "set big"), proto.SET_OK)
        self.assertEqual(self.request(proto, px, p, proto.get("big"), "get big (%d bytes)" % len(big),
                                      timeout=20), proto.found("big", big))
        notes = []
        for kind in kinds:
            key = "endless:%s" % kind
            what = "%s %s" % (proto.name, key)
            rss0 = h.rss_kib(px.proc.pid)
            streamed0 = b.streamed
            p.send(proto.get(key))
            t0 = time.time()
            rss_max = rss0
            while True:
                r, _, _ = select.select([p.sock], [], [], 0.02)
                rss_max = max(rss_max, h.rss_kib(px.proc.pid))
                if r or p.buf:
                    break
                if rss_max - rss0 > RSS_BOUND_KIB:
                    b.stop()
                    self.fail("%s: no reply and cachemux's RSS grew from %d to %d KiB (%.0f MiB "
                              "streamed) in %.1fs" % (what, rss0, rss_max,
                                                      (b.streamed - streamed0) / 1048576.0,
                                                      time.time() - t0))
                if time.time() - t0 > limit:
                    b.stop()
                    self.fail("%s: no reply within %.0fs (RSS %d -> %d KiB)"
                              % (what, limit, rss0, rss_max))
            got = self.reply_of(proto, px, p, what, timeout=5)
            dt = time.time() - t0
            rss_max = max(rss_max, h.rss_kib(px.proc.pid))
            self.assertTrue(got.startswith(proto.ERR) and got != proto.TIMEOUT,
                            "%s: got %r, expected an error reply" % (what, got[:200]))
            self.assertLess(rss_max - rss0, RSS_BOUND_KIB, "%s: RSS grew from %d to %d KiB"
                            % (what, rss0, rss_max))
            self.assertEqual(pending(p), b"", "%s: bytes after the error reply" % what)
            self.assertTrue(b.wait_closed(timeout=5), "%s: the streaming server connection "
                            "is still open" % what)
            self.own_replies(proto, px, b, [a, bb, c], checks, what)
            notes.append("%s: %.2fs, RSS +%d KiB, %.1f MiB streamed"
                         % (key, dt, rss_max - rss0, (b.streamed - streamed0) / 1048576.0))
        sys.stdout.write("[%s] " % "; ".join(notes))

    def test_redis_endless_reply(self):
        """endless:array (*2147483647 and bulks forever), endless:bulk (a
        512 MiB bulk), endless:line, with max_reply_size = 1 MiB."""
        self.endless(Redis, ["array", "bulk", "line"])

    def test_mc_endless_reply(self):
        """endless:values (VALUE blocks forever), endless:value (one VALUE of
        1 GiB), endless:line, with max_reply_size = 1 MiB."""
        self.endless(Memcached, ["values", "value", "line"])


# --------------------------------------------------------------------------
# 4. unsolicited replies, garbage, stalls

class Hostile(FaultTest):

    def unsolicited(self, proto):
        px, (b,) = self.start(proto)
        p, a, bb, c = (self.client(px) for _ in range(4))
        self.setup_values(proto, px, a, ["valAA", "valBB", "valCC"])
        checks = self.abc(proto, ["valAA", "valBB", "valCC"])
        for key in ("unsolicited", "unsolicited:100"):
            b.data[B(key)] = b"mine"
            what = "%s %s" % (proto.name, key)
            got = self.request(proto, px, p, proto.get(key), what)
            self.assertEqual(got, proto.found(key, "mine"), what)
            # the server conn must not be used again: its next reply would
            # not be the next request's
            self.assertTrue(b.wait_closed(timeout=5), "%s: the server connection that sent a "
                            "reply nobody asked for is still open" % what)
            self.own_replies(proto, px, b, [a, bb, c], checks, what)
            self.assertEqual(pending(p), b"", "%s: the client got the extra reply" % what)
            # and the unsolicited client itself, next
            got = self.request(proto, px, p, proto.get("valAA"), what + ", its next request")
            self.assertEqual(got, proto.found("valAA", val("valAA")), what + ", its next request")

    def test_redis_unsolicited(self):
        self.unsolicited(Redis)

    def test_mc_unsolicited(self):
        self.unsolicited(Memcached)

    def garbage(self, proto, kinds, in_flight=True):
        px, (b,) = self.start(proto)
        p, q, a, bb, c = (self.client(px) for _ in range(5))
        self.setup_values(proto, px, a, ["valAA", "valBB", "valCC", "valQQ"])
        checks = self.abc(proto, ["valAA", "valBB", "valCC"])
        for kind in kinds:
            key = "garbage:%s" % kind
            what = "%s %s" % (proto.name, key)
            got = self.request(proto, px, p, proto.get(key), what)
            self.assertTrue(got.startswith(proto.ERR) and got != proto.TIMEOUT,
                            "%s: got %r, expected an error reply" % (what, got[:200]))
            self.own_replies(proto, px, b, [a, bb, c], checks, what)
        if not in_flight:
            return
        # garbage while another client's request is in flight on the conn:
        # both get the error
        key = "garbage:%s:300" % kinds[0]
        what = "%s %s with another request in flight" % (proto.name, key)
        n0 = len(b.received)
        p.send(proto.get(key))
        self.assertTrue(b.wait_received(n0 + 1), what + ": not forwarded")
        q.send(proto.get("valQQ"))
        gp = self.reply_of(proto, px, p, what + ", the garbage request")
        gq = self.reply_of(proto, px, q, what + ", the request behind it")
        for who, got in (("the garbage request", gp), ("the request behind it", gq)):
            self.assertTrue(got.startswith(proto.ERR) and got != proto.TIMEOUT,
                            "%s: %s got %r, expected an error reply" % (what, who, got[:200]))
        self.own_replies(proto, px, b, [a, bb, c], checks, what)

    def test_redis_garbage(self):
        """An unknown type byte, a non-numeric bulk length, a bulk length
        of -5: the request gets an error, also one in flight behind it."""
        self.garbage(Redis, ["type", "len", "neg"])

    def test_mc_garbage(self):
        """VALUE lines with a non-numeric or negative length: the request
        gets an error, also one in flight behind it."""
        self.garbage(Memcached, ["len", "neg"])

    def test_mc_garbage_line(self):
        """A line that is no memcached reply (`WHAT IS THIS`) in answer to
        a get: the request gets an error, not the line."""
        self.garbage(Memcached, ["type"])

    def stall(self, proto):
        px, (b,) = self.start(proto)
        p, q, a, bb, c = (self.client(px) for _ in range(5))
        self.setup_values(proto, px, a, ["valAA", "valBB", "valCC", "valQQ"])
        checks = self.abc(proto, ["valAA", "valBB", "valCC"])
        # shorter than the timeout: answered
        b.data[b"stall:200"] = b"slow"
        t0 = time.time()
        got = self.request(proto, px, p, proto.get("stall:200"), "stall:200")
        self.assertEqual(got, proto.found("stall:200", "slow"), "stall:200 (timeout %d ms)" % TIMEOUT_MS)
        self.assertGreaterEqual(time.time() - t0, 0.19)
        # longer: the late request times out alone; a request sent 900 ms
        # later is answered (right after the late reply, which is dropped)
        b.data[b"stall:1500"] = b"late"
        t0 = time.time()
        p.send(proto.get("stall:1500"))
        time.sleep(0.9)
        q.send(proto.get("valQQ"))
        gp = self.reply_of(proto, px, p, "stall:1500", timeout=5)
        tp = time.time() - t0
        gq = self.reply_of(proto, px, q, "valQQ behind stall:1500", timeout=5)
        self.assertEqual(gp, proto.TIMEOUT, "stall:1500 with timeout %d ms" % TIMEOUT_MS)
        self.assertEqual(gq, proto.found("valQQ", val("valQQ")), "the request behind stall:1500")
        if not SANITIZED:
            self.assertTrue(0.95 <= tp <= 1.45, "stall:1500 timed out after %.3fs" % tp)
        self.own_replies(proto, px, b, [a, bb, c], checks, "after stall:1500")
        self.assertEqual(pending(p), b"", "stall:1500: the late reply reached the client")
        # never answered: both requests on the conn time out, the conn is
        # closed a further timeout later, then a new one serves
        conns = b.connections
        t0 = time.time()
        p.send(proto.get("stall:inf"))
        time.sleep(0.3)
        q.send(proto.get("valQQ"))
        gp = self.reply_of(proto, px, p, "stall:inf", timeout=5)
        gq = self.reply_of(proto, px, q, "valQQ behind stall:inf", timeout=5)
        self.assertEqual(gp, proto.TIMEOUT, "stall:inf")
        self.assertIn(gq, (proto.TIMEOUT, proto.RESET), "the request behind stall:inf")
        self.assertTrue(b.wait_closed(timeout=6), "the stuck server connection was not closed")
        tc = time.time() - t0
        if not SANITIZED:
            self.assertTrue(1.9 <= tc <= 3.0, "the stuck conn was closed after %.3fs" % tc)
        self.own_replies(proto, px, b, [a, bb, c], checks, "after stall:inf")
        self.assertEqual(b.connections, conns + 1, "one reconnect after stall:inf")

    def test_redis_stall(self):
        self.stall(Redis)

    def test_mc_stall(self):
        self.stall(Memcached)


class FrozenMidReply(h.IntegrationTest):
    """A real redis-server frozen (SIGSTOP) in the middle of a 48 MB GET
    reply, past the timeout: the GET times out, the stuck conn is closed
    while half the reply sits in cachemux, and when the server runs again
    (SIGCONT) every later request on that worker and server slot is
    answered, from new clients and the old one, and nothing times out."""

    @h.requires("redis-server")
    def test_redis_frozen_during_a_48mb_reply(self):
        r = h.Redis().start()
        self.addCleanup(r.stop)
        pool = h.Pool("p", [r], redis=True, timeout=500)
        cmx = h.Cachemux([pool], workers=1)
        cmx.start()
        self.addCleanup(cmx.stop)
        big = b"x" * (48 << 20)
        with r.client(timeout=30) as d:
            d.send(h.resp_command("SET", "big", big))
            self.assertEqual(d.read_resp(1, timeout=30)[0], b"+OK\r\n")
            for i in range(12):
                self.assertEqual(d.resp("SET", "small%d" % i, "v%d" % i), b"+OK\r\n")
        # Freeze redis while the reply streams to cachemux (48 MB takes tens
        # of ms on loopback): caught when cachemux holds part of the reply
        # (it read more than 512 KiB in the round) and the GET times out. Too
        # late lets the whole value through, too early sends nothing: the
        # delay is adjusted.
        caught = False
        delay = 0.005
        for _ in range(12):
            c = h.Client(cmx.port(), timeout=30)
            self.addCleanup(c.close)
            read0 = h.read_bytes(cmx.proc.pid)
            c.send(h.resp_command("GET", "big"))
            time.sleep(delay)
            os.kill(r.proc.pid, signal.SIGSTOP)
            try:
                time.sleep(0.05)
                held = h.read_bytes(cmx.proc.pid) - read0
                got = c.read_resp(1, timeout=20)[0]
                if got == b"-ERR Connection timed out\r\n" and held > 512 * 1024:
                    caught = True
                    time.sleep(h.scaled(2.5))   # stopped for 2.5 s in all
                    break
                if got == b"-ERR Connection timed out\r\n":
                    delay *= 2      # frozen before the reply: later
                else:
                    self.assertEqual(len(got), len(b"$%d\r\n" % len(big)) + len(big) + 2,
                                     "neither the value nor the timeout")
                    delay /= 2      # the whole value came: sooner
            finally:
                os.kill(r.proc.pid, signal.SIGCONT)
            c.close()
            time.sleep(h.scaled(1.2))   # the stuck conn of a missed round goes first
        self.assertTrue(caught, "redis never froze in the middle of the reply")
        for i in range(12):
            with h.Client(cmx.port(), timeout=10) as n:
                v = b"v%d" % i
                self.assertEqual(n.resp("GET", "small%d" % i), b"$%d\r\n%s\r\n" % (len(v), v))
        self.assertEqual(c.resp("GET", "small0"), b"$2\r\nv0\r\n")
        self.assertNotIn("timed out", "\n".join(
            ln for ln in cmx.log_text().splitlines()[-20:] if "small" in ln))


def tearDownModule():
    if SUMMARY:
        print("\noffsets tried: %s (%d in all)"
              % ("; ".join("%s: %d" % x for x in SUMMARY), sum(n for _, n in SUMMARY)))


if __name__ == "__main__":
    h.main()
