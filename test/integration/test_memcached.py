#!/usr/bin/python3
"""memcached integration tests (doc/protocols.md 1, 2, 4 and 5; README placement).

cachemux runs in front of real memcached backends; replies are compared as
raw bytes, and effects are checked on the backends directly. The side-by-side
test sends test/integration/corpus_mc.txt to cachemux and to nutcracker, each
in front of its own fresh pair of memcached, and requires byte-identical
replies. Behaviours where cachemux deliberately differs from nutcracker
(doc/protocols.md 5) have their own tests below asserting cachemux's behaviour.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_memcached.py [NAME-SUBSTRING...]
With CACHEMUX_IT_PROXY=nutcracker the tests that do not need cachemux itself
run against nutcracker (to check the tests; the Appendix B ones fail there).
"""

import os
import hashlib
import random
import socket
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import (CRLF, B, accept_workers, mc_store as store,  # noqa: E402
                     join_threads, mc_values as value_reply, per_worker,
                     start_threads, unescape)


class McTest(h.IntegrationTest):
    """Two memcached backends (s1, s2) behind one pool `alpha` (ketama,
    fnv1a_64, named servers) of the proxy under test."""
    names = ("s1", "s2")
    workers = 2

    def setUp(self):
        self.backends = [self.memcached(name=n) for n in self.names]
        self.by_name = {b.name: b for b in self.backends}
        self.px = self.proxy([h.Pool("alpha", self.backends)], workers=self.workers)

    def client(self, timeout=5):
        c = self.px.client(timeout=timeout)
        self.addCleanup(c.close)
        return c

    def where(self, key):
        """Names of the backends holding key (read directly)."""
        return [b.name for b in self.backends if b.get(key) is not None]

    def spread_keys(self, prefix, n, c=None):
        """Set n keys prefix0.. through the proxy; return {name: [keys]}."""
        c = c or self.client()
        # fnv1a_64 mixes similar short keys poorly: vary them
        keys = ["%s%d:%s" % (prefix, i, hashlib.md5(b"%d" % i).hexdigest()[:6]) for i in range(n)]
        reps = c.pipeline(b"".join(store(k, "v-" + k) for k in keys), n)
        self.assertEqual(reps, [b"STORED\r\n"] * n)
        out = {b.name: [] for b in self.backends}
        for k in keys:
            w = self.where(k)
            self.assertEqual(len(w), 1, "key %s found on %s" % (k, w))
            out[w[0]].append(k)
        for name, ks in out.items():
            self.assertTrue(ks, "no key of %s* landed on %s" % (prefix, name))
        return out


class Commands(McTest):
    """Every command of doc/protocols.md 2."""

    def test_set_get(self):
        c = self.client()
        self.assertEqual(c.request(store("a", "hello", flags=42)), b"STORED\r\n")
        self.assertEqual(c.request(b"get a\r\n"), value_reply([("a", 42, "hello")]))
        self.assertEqual(c.request(b"get nope\r\n"), b"END\r\n")
        self.assertEqual(c.request(store("a", "again", flags=4294967295, exp=86400)), b"STORED\r\n")
        self.assertEqual(c.request(b"get a\r\n"), value_reply([("a", 4294967295, "again")]))
        self.assertEqual(c.request(store("e", "")), b"STORED\r\n")
        self.assertEqual(c.request(b"get e\r\n"), value_reply([("e", 0, "")]))
        self.assertEqual([b.get_full("a") for b in self.backends if b.get("a") is not None],
                         [(4294967295, b"again")])

    def test_gets_and_cas(self):
        c = self.client()
        c.request(store("c", "one"))
        r = c.request(b"gets c\r\n")
        items = h.parse_get_reply(r, with_meta=True)
        self.assertEqual(len(items), 1)
        self.assertEqual(items[0][:3], (b"c", 0, b"one"))
        cas = items[0][3]
        self.assertIsNotNone(cas, r)
        self.assertEqual(c.request(store("c", "two", flags=3, cas=cas + 1000, cmd="cas")), b"EXISTS\r\n")
        self.assertEqual(c.request(store("c", "two", flags=3, cas=cas, cmd="cas")), b"STORED\r\n")
        self.assertEqual(c.request(store("c", "three", cas=cas, cmd="cas")), b"EXISTS\r\n")
        self.assertEqual(c.request(store("nope", "x", cas=1, cmd="cas")), b"NOT_FOUND\r\n")
        self.assertEqual(c.request(b"get c\r\n"), value_reply([("c", 3, "two")]))
        # the proxy's gets shows the backend's own cas value
        r = c.request(b"gets c\r\n")
        (b,) = [b for b in self.backends if b.get("c") is not None]
        with b.client() as d:
            self.assertEqual(r, d.request(b"gets c\r\n"))

    def test_add_replace(self):
        c = self.client()
        self.assertEqual(c.request(store("n", "1", cmd="add")), b"STORED\r\n")
        self.assertEqual(c.request(store("n", "2", cmd="add")), b"NOT_STORED\r\n")
        self.assertEqual(c.request(store("n", "3", flags=9, cmd="replace")), b"STORED\r\n")
        self.assertEqual(c.request(store("none", "4", cmd="replace")), b"NOT_STORED\r\n")
        self.assertEqual(c.request(b"get n\r\n"), value_reply([("n", 9, "3")]))
        self.assertEqual(c.request(b"get none\r\n"), b"END\r\n")

    def test_append_prepend(self):
        c = self.client()
        c.request(store("ap", "mid", flags=5))
        self.assertEqual(c.request(store("ap", "-end", cmd="append")), b"STORED\r\n")
        self.assertEqual(c.request(store("ap", "start-", cmd="prepend")), b"STORED\r\n")
        self.assertEqual(c.request(store("none", "x", cmd="append")), b"NOT_STORED\r\n")
        self.assertEqual(c.request(store("none", "x", cmd="prepend")), b"NOT_STORED\r\n")
        self.assertEqual(c.request(b"get ap\r\n"), value_reply([("ap", 5, "start-mid-end")]))

    def test_delete(self):
        c = self.client()
        c.request(store("d", "x"))
        self.assertEqual(c.request(b"delete d\r\n"), b"DELETED\r\n")
        self.assertEqual(c.request(b"delete d\r\n"), b"NOT_FOUND\r\n")
        self.assertEqual(c.request(b"get d\r\n"), b"END\r\n")
        self.assertEqual(self.where("d"), [])

    def test_incr_decr(self):
        c = self.client()
        c.request(store("i", "10"))
        self.assertEqual(c.request(b"incr i 5\r\n"), b"15\r\n")
        self.assertEqual(c.request(b"incr i 85\r\n"), b"100\r\n")
        self.assertEqual(c.request(b"decr i 1\r\n"), b"99\r\n")
        self.assertEqual(c.request(b"decr i 1000\r\n"), b"0\r\n")
        # memcached keeps the length on decr (pads with spaces): compare with the backend
        (b,) = [b for b in self.backends if b.get("i") is not None]
        with b.client() as d:
            self.assertEqual(c.request(b"get i\r\n"), d.request(b"get i\r\n"))
        self.assertEqual(c.request(b"incr nope 1\r\n"), b"NOT_FOUND\r\n")
        self.assertEqual(c.request(b"decr nope 1\r\n"), b"NOT_FOUND\r\n")
        c.request(store("w", "18446744073709551615"))
        self.assertEqual(c.request(b"incr w 2\r\n"), b"1\r\n")     # wraps at 2^64
        c.request(store("t", "text"))
        self.assertEqual(c.request(b"incr t 1\r\n"),
                         b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
        # the backend's error did not disturb the connection
        self.assertEqual(c.request(b"incr w 1\r\n"), b"2\r\n")

    def test_touch(self):
        c = self.client()
        c.request(store("to", "x"))
        self.assertEqual(c.request(b"touch to 1000\r\n"), b"TOUCHED\r\n")
        self.assertEqual(c.request(b"touch nope 1000\r\n"), b"NOT_FOUND\r\n")
        self.assertEqual(self.ttl("to"), 1000)

    def ttl(self, key):
        """TTL of key on its backend (memcached meta get), None if absent."""
        for b in self.backends:
            with b.client() as d:
                r = d.request(b"mg " + B(key) + b" t\r\n")
            if r.startswith(b"HD "):
                t = int(r.split()[1][1:])
                return 1000 if 990 <= t <= 1000 else t
        return None

    def test_gat_gats_forwarded(self):
        """Appendix B: gat/gats are forwarded (nutcracker closes the conn)."""
        c = self.client()
        keys = self.spread_keys("g", 12, c)
        a, b = keys["s1"][0], keys["s2"][0]
        r = c.request(b"gat 1000 " + B(a) + b"\r\n")
        self.assertEqual(r, value_reply([(a, 0, "v-" + a)]))
        self.assertEqual(self.ttl(a), 1000)
        r = c.request(b"gats 1000 " + B(b) + b"\r\n")
        items = h.parse_get_reply(r, with_meta=True)
        self.assertEqual([(k, f, v) for k, f, v, _ in items], [(B(b), 0, B("v-" + b))])
        self.assertIsNotNone(items[0][3], r)
        self.assertTrue(r.endswith(b"END\r\n"))
        self.assertEqual(self.ttl(b), 1000)
        self.assertEqual(c.request(b"gat 1000 nope\r\n"), b"END\r\n")
        # several keys on both servers, in request-key order
        r = c.request(b"gat 1000 " + B(b) + b" " + B(a) + b"\r\n")
        self.assertEqual(r, value_reply([(b, 0, "v-" + b), (a, 0, "v-" + a)]))
        self.assertOpen(c)

    def test_version(self):
        c = self.client()
        with self.backends[0].client() as d:
            want = d.request(b"version\r\n")
        self.assertTrue(want.startswith(b"VERSION "))
        self.assertEqual(c.request(b"version\r\n"), want)
        self.assertEqual(c.request(b"version\r\nversion\r\n", 2), want * 2)

    def test_version_with_arguments(self):
        """doc/protocols.md 2: `version` with extra arguments is forwarded like `version`."""
        c = self.client()
        with self.backends[0].client() as d:
            want = d.request(b"version\r\n")
        self.assertEqual(c.request(b"version extra args\r\n"), want)
        self.assertOpen(c)

    def test_quit_flushes_then_closes(self):
        c = self.client()
        c.send(store("q", "x") + b"get q\r\nquit\r\nget q\r\n")
        self.assertEqual(c.read_replies(2), [b"STORED\r\n", value_reply([("q", 0, "x")])])
        self.assertClosed(c)

    def test_noreply_every_command(self):
        """noreply on every storage command, delete, incr, decr, touch: no reply
        bytes, and each took effect on the backend."""
        c = self.client()
        c.request(store("nr:app", "m") + store("nr:pre", "m") + store("nr:rep", "old") +
                  store("nr:del", "x") + store("nr:inc", "10") + store("nr:dec", "10") +
                  store("nr:tou", "x") + store("nr:cas", "old") + store("nr:add2", "keep"), 9)
        cas = h.parse_get_reply(c.request(b"gets nr:cas\r\n"), with_meta=True)[0][3]
        reqs = (store("nr:set", "S", flags=1, noreply=True) +
                store("nr:add", "A", flags=2, cmd="add", noreply=True) +
                store("nr:add2", "lost", cmd="add", noreply=True) +         # fails silently
                store("nr:rep", "R", flags=3, cmd="replace", noreply=True) +
                store("nr:rep-none", "R", cmd="replace", noreply=True) +   # fails silently
                store("nr:app", "+", cmd="append", noreply=True) +
                store("nr:pre", "-", cmd="prepend", noreply=True) +
                store("nr:cas", "C", flags=4, cas=cas, cmd="cas", noreply=True) +
                b"delete nr:del noreply\r\n" +
                b"delete nr:none noreply\r\n" +
                b"incr nr:inc 5 noreply\r\n" +
                b"decr nr:dec 3 noreply\r\n" +
                b"incr nr:none 1 noreply\r\n" +
                b"touch nr:tou 1000 noreply\r\n" +
                b"version\r\n")
        c.send(reqs)
        r = c.read_replies(1)[0]
        self.assertTrue(r.startswith(b"VERSION "), "a noreply command was answered: %r" % r)
        self.assertTrue(c.quiet(0.3), "extra bytes after the noreply batch: %r" % bytes(c.buf))
        expect = {
            "nr:set": (1, b"S"), "nr:add": (2, b"A"), "nr:add2": (0, b"keep"),
            "nr:rep": (3, b"R"), "nr:rep-none": None, "nr:app": (0, b"m+"),
            "nr:pre": (0, b"-m"), "nr:cas": (4, b"C"), "nr:del": None, "nr:inc": (0, b"15"),
            "nr:dec": (0, b"7 "), "nr:none": None,   # memcached pads decr results
        }
        for k, want in expect.items():
            got = [b.get_full(k) for b in self.backends]
            got = [g for g in got if g is not None]
            self.assertEqual(got, [want] if want else [], "key %s on the backends" % k)
        self.assertEqual(self.ttl("nr:tou"), 1000)

    def test_noreply_stripped_toward_backend(self):
        """doc/protocols.md 2 and 5: noreply is stripped toward the backend and the
        backend's reply swallowed, so a backend that answers anyway (here with
        an error) cannot shift replies. nutcracker forwards noreply as is."""
        def handler(req):
            line = req.split(CRLF, 1)[0]
            if line.startswith(b"get "):
                return b"VALUE " + line.split()[1] + b" 0 2\r\nok\r\nEND\r\n"
            return b"SERVER_ERROR out of memory storing object\r\n"
        fake = h.FakeMemcached(handler, name="f1").start()
        self.addCleanup(fake.stop)
        px = self.proxy([h.Pool("beta", [fake])], workers=1)
        c = px.client()
        self.addCleanup(c.close)
        c.send(store("a", "x", noreply=True) + b"delete a noreply\r\nincr a 1 noreply\r\n"
               b"touch a 10 noreply\r\nget a\r\n")
        self.assertEqual(c.read_replies(1), [b"VALUE a 0 2\r\nok\r\nEND\r\n"])
        self.assertTrue(c.quiet(0.3), "extra bytes: %r" % bytes(c.buf))
        self.assertEqual(c.request(b"get b\r\n"), b"VALUE b 0 2\r\nok\r\nEND\r\n")
        got = list(fake.received)
        self.assertEqual(got, [b"set a 0 0 1\r\nx\r\n", b"delete a\r\n", b"incr a 1\r\n",
                               b"touch a 10\r\n", b"get a\r\n", b"get b\r\n"])

    def test_multiget_100_keys_hits_and_misses_in_request_order(self):
        """100 keys over both servers, 70 hits and 30 misses: one reply, values in
        request-key order, one END (Appendix B: nutcracker reorders)."""
        c = self.client()
        keys = ["mg:%d" % i for i in range(100)]
        rnd = random.Random(7)
        rnd.shuffle(keys)
        hits = [k for i, k in enumerate(keys) if i % 10 not in (2, 5, 9)]
        vals = {k: ("value of %s " % k) * (1 + len(k) % 4) for k in hits}
        c.pipeline(b"".join(store(k, vals[k], flags=len(k)) for k in hits), len(hits))
        on = {b.name: [k for k in hits if b.get(k) is not None] for b in self.backends}
        self.assertTrue(on["s1"] and on["s2"], "hits not spread: %s" % {n: len(v) for n, v in on.items()})
        r = c.request(b"get " + " ".join(keys).encode() + CRLF)
        self.assertEqual(r, value_reply([(k, len(k), vals[k]) for k in keys if k in vals]))
        self.assertEqual(r.count(b"END\r\n"), 1)
        # and gets, with each backend's cas
        r = c.request(b"gets " + " ".join(keys).encode() + CRLF)
        got = h.parse_get_reply(r, with_meta=True)
        self.assertEqual([(k.decode(), v.decode()) for k, f, v, cas in got],
                         [(k, vals[k]) for k in keys if k in vals])

    def test_multiget_cross_server_without_misses(self):
        c = self.client()
        keys = self.spread_keys("x", 30, c)
        order = keys["s1"][:5] + keys["s2"][:5]
        random.Random(3).shuffle(order)
        r = c.request(b"get " + " ".join(order).encode() + CRLF)
        self.assertEqual(r, value_reply([(k, 0, "v-" + k) for k in order]))
        # duplicates are answered twice, like memcached
        dup = [order[0], order[1], order[0]]
        r = c.request(b"get " + " ".join(dup).encode() + CRLF)
        self.assertEqual(r, value_reply([(k, 0, "v-" + k) for k in dup]))

    def test_gets_multi_cas_from_each_backend(self):
        c = self.client()
        keys = self.spread_keys("gc", 20, c)
        order = keys["s2"][:3] + keys["s1"][:3]
        r = c.request(b"gets " + " ".join(order).encode() + CRLF)
        got = h.parse_get_reply(r, with_meta=True)
        want = []
        for k in order:
            (b,) = [b for b in self.backends if b.name in self.where(k)]
            with b.client() as d:
                want += h.parse_get_reply(d.request(b"gets " + B(k) + CRLF), with_meta=True)
        self.assertEqual(got, want)

    def test_value_1mib(self):
        c = self.client(timeout=20)
        v = random.Random(1).randbytes(1 << 20)
        self.assertEqual(c.pipeline(store("big", v, flags=77), 1, timeout=20), [b"STORED\r\n"])
        r = c.request(b"get big\r\n", timeout=20)
        self.assertEqual(r, value_reply([("big", 77, v)]))
        (b,) = [b for b in self.backends if b.get("big") is not None]
        self.assertEqual(b.get("big"), v)

    def test_binary_values(self):
        c = self.client()
        vals = {
            "b1": b"a\r\nb\r\nEND\r\nVALUE x 0 1\r\n\x00\xff",
            "b2": bytes(range(256)),
            "b3": b"\r\n",
            "b4": b"END\r\n",
            "b5": b"\r\n" * 1000 + b"\n\r",
        }
        reqs = b"".join(store(k, v, flags=i) for i, (k, v) in enumerate(vals.items()))
        self.assertEqual(c.request(reqs, len(vals)), b"STORED\r\n" * len(vals))
        for i, (k, v) in enumerate(vals.items()):
            self.assertEqual(c.request(b"get " + B(k) + CRLF), value_reply([(k, i, v)]))
            self.assertEqual([b.get(k) for b in self.backends if b.get(k) is not None], [v])
        r = c.request(b"get " + b" ".join(B(k) for k in vals) + CRLF)
        self.assertEqual(r, value_reply([(k, i, v) for i, (k, v) in enumerate(vals.items())]))

    def test_key_of_250_bytes(self):
        c = self.client()
        k = "k" * 250
        self.assertEqual(c.request(store(k, "long")), b"STORED\r\n")
        self.assertEqual(c.request(b"get " + B(k) + CRLF), value_reply([(k, 0, "long")]))

    def test_pipelined_batches_50_clients(self):
        """50 concurrent clients each send pipelined batches of 1, 10, 100 and
        1000 requests (sets, gets, cross-server multi-gets, misses); every
        reply is checked."""
        errors = []

        def run(t):
            try:
                with self.px.client(timeout=30) as c:
                    for n in (1, 10, 100, 1000):
                        reqs, want = [], []
                        keys = []
                        for j in range(n):
                            k = "p%d:%d:%d" % (t, n, j)
                            if j % 4 in (0, 1):
                                v = "%s=%s" % (k, "x" * (j % 50))
                                reqs.append(store(k, v, flags=j))
                                want.append(b"STORED\r\n")
                                keys.append((k, j, v))
                            elif j % 4 == 2:
                                pick = keys[-2:]
                                reqs.append(b"get " + " ".join(x[0] for x in pick).encode() + CRLF)
                                want.append(value_reply(pick))
                            else:
                                reqs.append(b"get miss:%d:%d\r\n" % (t, j))
                                want.append(b"END\r\n")
                        got = c.pipeline(b"".join(reqs), len(reqs), timeout=30)
                        if got != want:
                            bad = [i for i in range(len(want)) if got[i] != want[i]]
                            errors.append("client %d batch %d: %d wrong replies, first #%d: %r != %r"
                                          % (t, n, len(bad), bad[0], got[bad[0]][:100], want[bad[0]][:100]))
                            return
            except Exception as e:
                errors.append("client %d: %r" % (t, e))

        threads = start_threads(run, 50)
        self.assertFalse(join_threads(threads, 120), "clients still running")
        self.assertEqual(errors, [])
        # both backends took part
        for b in self.backends:
            self.assertGreater(int(b.stats()["cmd_set"]), 1000, b.name)


class Errors(McTest):
    """Error replies of doc/protocols.md 4 (nutcracker closes on all of them)."""

    def assertServes(self, c):
        self.assertEqual(c.request(store("alive", "yes")), b"STORED\r\n")
        self.assertEqual(c.request(b"get alive\r\n"), value_reply([("alive", 0, "yes")]))

    def test_unknown_command_error_conn_open(self):
        c = self.client()
        self.assertEqual(c.request(b"foo bar\r\n"), b"ERROR\r\n")
        self.assertEqual(c.request(b"flush_everything\r\n"), b"ERROR\r\n")
        self.assertServes(c)

    def test_uppercase_command_error_conn_open(self):
        c = self.client()
        c.request(store("u", "x"))
        self.assertEqual(c.request(b"GET u\r\n"), b"ERROR\r\n")
        self.assertEqual(c.request(b"SET u 0 0 1\r\n"), b"ERROR\r\n")
        self.assertServes(c)

    def test_get_without_key_error_conn_open(self):
        c = self.client()
        self.assertEqual(c.request(b"get\r\n"), b"ERROR\r\n")
        self.assertEqual(c.request(b"gets\r\n"), b"ERROR\r\n")
        self.assertServes(c)

    def test_pipelined_error_in_order(self):
        """An ERROR reply keeps its place among pipelined replies."""
        c = self.client()
        c.send(store("o", "1") + b"bogus\r\nget o\r\nget\r\nget o\r\n")
        self.assertEqual(c.read_replies(5), [b"STORED\r\n", b"ERROR\r\n", value_reply([("o", 0, "1")]),
                                             b"ERROR\r\n", value_reply([("o", 0, "1")])])

    def closes_with(self, req, reply):
        c = self.client()
        c.send(req)
        try:
            got = c.read_until_close(timeout=3)
        except socket.timeout:
            self.fail("connection still open after %r; got %r" % (req[:60], bytes(c.buf)))
        self.assertEqual(got, reply, "reply to %r" % req[:80])

    def test_key_of_251_bytes_then_close(self):
        k = b"k" * 251
        bad = b"CLIENT_ERROR bad command line format\r\n"
        self.closes_with(b"get " + k + CRLF, bad)
        self.closes_with(b"get short " + k + CRLF, bad)
        self.closes_with(store(k, "x"), bad)
        self.closes_with(b"delete " + k + CRLF, bad)
        self.assertEqual(self.where(k.decode()), [])

    def test_bad_length_then_close(self):
        bad = b"CLIENT_ERROR bad command line format\r\n"
        self.closes_with(b"set k 0 0 abc\r\nabc\r\n", bad)
        self.closes_with(b"set k 0 0 -1\r\n", bad)
        self.closes_with(b"set k 0 0\r\n", bad)
        self.closes_with(b"add k 0 0 1x\r\nx\r\n", bad)
        self.assertEqual(self.where("k"), [])

    def test_bad_data_chunk_then_close(self):
        self.closes_with(b"set k 0 0 3\r\nabcdef\r\n", b"CLIENT_ERROR bad data chunk\r\n")
        self.closes_with(b"set k 0 0 3\r\nabcXY", b"CLIENT_ERROR bad data chunk\r\n")
        self.assertEqual(self.where("k"), [])

    def test_close_errors_flush_earlier_replies(self):
        """Replies to requests before the bad one (on both servers) are all
        sent before the close; nothing after it is answered or executed."""
        c0 = self.client()
        keys = self.spread_keys("fl", 10, c0)
        a, b = keys["s1"][0], keys["s2"][0]
        before = (b"get " + B(a) + CRLF + b"get " + B(b) + CRLF + store("fl:new", "n") +
                  b"get " + B(a) + b" " + B(b) + CRLF)
        want = (value_reply([(a, 0, "v-" + a)]) + value_reply([(b, 0, "v-" + b)]) + b"STORED\r\n" +
                value_reply([(a, 0, "v-" + a), (b, 0, "v-" + b)]))
        for bad, err in ((b"get " + b"k" * 251 + CRLF, b"CLIENT_ERROR bad command line format\r\n"),
                         (b"set k 0 0 zz\r\n", b"CLIENT_ERROR bad command line format\r\n"),
                         (b"set k 0 0 1\r\nxyz\r\n", b"CLIENT_ERROR bad data chunk\r\n")):
            c = self.client()
            c.send(before + bad + store("after", "no") + b"get " + B(a) + CRLF)
            try:
                got = c.read_until_close(timeout=3)
            except socket.timeout:
                self.fail("still open after %r; got %r" % (bad, bytes(c.buf)))
            self.assertEqual(got, want + err)
        self.assertEqual(self.where("after"), [])

    def test_eof_after_partial_request_closes(self):
        """Appendix B: a partial request followed by EOF never holds the conn."""
        for partial in (b"get k", b"get k\r", b"set k 0 0 10\r\nabc", b"set k 0 0 10",
                        b"set k 0 0 100000\r\n" + b"x" * 50000):
            c = self.client()
            c.send(partial)
            c.shutdown_write()
            self.assertClosed(c, 3, "after %r + EOF" % partial)
        self.assertEqual(self.where("k"), [])
        # complete requests before the partial one are answered first
        c = self.client()
        c.send(store("e", "x") + b"get e\r\nget e")
        c.shutdown_write()
        self.assertEqual(c.read_replies(2), [b"STORED\r\n", value_reply([("e", 0, "x")])])
        self.assertClosed(c, 3)

    def test_eof_after_complete_requests(self):
        c = self.client()
        keys = self.spread_keys("ec", 10, c)
        a, b = keys["s1"][0], keys["s2"][0]
        c = self.client()
        c.send(b"get " + B(a) + b" " + B(b) + CRLF + store("ec:n", "1"))
        c.shutdown_write()
        self.assertEqual(c.read_until_close(3),
                         value_reply([(a, 0, "v-" + a), (b, 0, "v-" + b)]) + b"STORED\r\n")


class Placement(McTest):
    """doc/testing.md "Placement": keys of a nutcracker-recorded table, written through a
    memcached pool with the table's server names, are on the table's server."""
    names = ("s1", "s2", "s3")
    table = "ketama_fnv1a_64.tsv"

    def test_table_keys_on_table_backend(self):
        header, rows = h.read_table(os.path.join(h.PLACEMENT_DIR, self.table))
        self.assertEqual(dict(header)["hash"], "fnv1a_64")
        self.assertEqual(dict(header)["distribution"], "ketama")
        self.assertEqual([v.split()[1] for k, v in header if k == "server"], list(self.names))
        # 100 keyN, every non-ASCII and raw high-byte key, every long key, 100 random
        pick = rows[:100] + rows[1000:1120] + rows[1120:1220]
        self.assertGreaterEqual(len(pick), 300)
        c = self.client(timeout=20)
        req = b"".join(store(k, b"@" + k) for k, _ in pick)
        self.assertEqual(c.pipeline(req, len(pick), timeout=20), [b"STORED\r\n"] * len(pick))
        wrong = []
        for b in self.backends:
            with b.client(timeout=20) as d:
                reps = d.pipeline(b"".join(b"get " + k + CRLF for k, _ in pick), len(pick), timeout=20)
            for (k, ident), r in zip(pick, reps):
                here = r != b"END\r\n"
                if here:
                    self.assertEqual(r, value_reply([(k, 0, b"@" + k)]))
                if here != (ident == b.name):
                    wrong.append("%s: table %s, %s on %s" % (k.hex(), ident,
                                                            "found" if here else "missing", b.name))
        self.assertEqual(wrong[:10], [], "%d misplaced" % len(wrong))


class BackendFailure(McTest):
    """doc/protocols.md 4: only requests for a dead server fail; the client conn stays open."""

    ERRS = (b"SERVER_ERROR Connection refused\r\n", b"SERVER_ERROR Connection reset by peer\r\n")

    def test_killed_backend(self):
        c = self.client()
        keys = self.spread_keys("kb", 30, c)
        live, dead = keys["s1"], keys["s2"]
        self.by_name["s2"].kill()
        time.sleep(0.1)
        for i in range(6):
            a, b = live[i % len(live)], dead[i % len(dead)]
            r = c.request(b"get " + B(b) + CRLF)
            self.assertIn(r, self.ERRS, "get of a key on the dead server")
            self.assertEqual(c.request(b"get " + B(a) + CRLF), value_reply([(a, 0, "v-" + a)]))
            r = c.request(store(b, "new"))
            self.assertIn(r, self.ERRS, "set of a key on the dead server")
            self.assertEqual(c.request(store(a, "new%d" % i)), b"STORED\r\n")
        # pipelined mix keeps its order
        a, b = live[0], dead[0]
        reps = c.pipeline(b"get " + B(a) + CRLF + b"get " + B(b) + CRLF + b"get " + B(a) + CRLF, 3)
        self.assertEqual(reps[0], reps[2])
        self.assertTrue(reps[0].startswith(b"VALUE "), reps)
        self.assertIn(reps[1], self.ERRS)
        # new clients too
        c2 = self.client()
        self.assertIn(c2.request(b"get " + B(b) + CRLF), self.ERRS)
        self.assertEqual(c2.request(b"get " + B(a) + CRLF), reps[0])

    def test_multiget_with_dead_part_conn_stays_open(self):
        """Appendix B: nutcracker closes the client conn; cachemux answers the
        whole multi-get with the error and keeps the conn."""
        c = self.client()
        keys = self.spread_keys("md", 30, c)
        a, b = keys["s1"][0], keys["s2"][0]
        self.by_name["s2"].kill()
        time.sleep(0.1)
        r = c.request(b"get " + B(a) + b" " + B(b) + CRLF)
        self.assertIn(r, self.ERRS)
        self.assertOpen(c)
        self.assertEqual(c.request(b"get " + B(a) + CRLF), value_reply([(a, 0, "v-" + a)]))

    def test_backend_closes_with_request_outstanding(self):
        """doc/protocols.md 4 and 5: a backend closing with a request outstanding
        yields `Connection reset by peer` for that request only."""
        def handler(req):
            if req.startswith(b"get boom"):
                return h.FakeMemcached.CLOSE
            if req.startswith(b"get "):
                return b"VALUE " + req.split()[1] + b" 0 1\r\nz\r\nEND\r\n"
            return b"STORED\r\n"
        fake = h.FakeMemcached(handler, name="f1").start()
        self.addCleanup(fake.stop)
        px = self.proxy([h.Pool("beta", [fake])], workers=1)
        c = px.client()
        self.addCleanup(c.close)
        self.assertEqual(c.request(b"get a\r\n"), b"VALUE a 0 1\r\nz\r\nEND\r\n")
        self.assertEqual(c.request(b"get boom\r\n"), b"SERVER_ERROR Connection reset by peer\r\n")
        self.assertOpen(c)
        self.assertEqual(c.request(b"get b\r\n"), b"VALUE b 0 1\r\nz\r\nEND\r\n")


class Workers(McTest):
    """workers = 4 and 400 clients: the load really spreads (doc/testing.md)."""
    workers = 4

    def setUp(self):
        self.backends = [self.memcached(name=n) for n in self.names]
        self.px = self.cachemux([h.Pool("alpha", self.backends)], workers=4, verbose=6)

    def test_400_clients_over_4_workers(self):
        clients = []
        try:
            for i in range(400):
                clients.append(h.Client(self.px.port(), timeout=10))
            for i, c in enumerate(clients):
                c.send(store("w:%d" % i, "v%d" % i))
            for i, c in enumerate(clients):
                self.assertEqual(c.read_replies(1), [b"STORED\r\n"], "client %d" % i)
            for i, c in enumerate(clients):
                c.send(b"get w:%d\r\n" % i)
            for i, c in enumerate(clients):
                self.assertEqual(c.read_replies(1), [value_reply([("w:%d" % i, 0, "v%d" % i)])])
            found = accept_workers(self.px, [c.local_port for c in clients], "alpha")
            seen, workers = set(found), per_worker(found)
            self.assertEqual(len(seen), 400,
                             "accept lines found for %d of 400 clients (format: '[YYYY-mm-dd "
                             "HH:MM:SS.mmm] INFO wN accepted client 127.0.0.1:PORT on pool alpha')"
                             % len(seen))
            busy = [w for w, n in workers.items() if n >= 40]
            self.assertGreaterEqual(len(busy), 3, "clients per worker: %s" % workers)
            self.assertLessEqual(len(workers), 4, workers)
            # each backend sees several conns from cachemux (one per worker that used it)
            for b in self.backends:
                with b.client() as d:
                    r = d.request(b"stats conns\r\n")
                fds = set()
                for line in r.split(CRLF):
                    p = line.split(b" ")
                    if len(p) == 3 and p[1].endswith(b":state") and p[2] != b"conn_listening":
                        fds.add(p[1].split(b":")[0])
                self.assertGreaterEqual(len(fds) - 1, 3, "%s: connections %r" % (b.name, r))
        finally:
            for c in clients:
                c.close()


class NutcrackerComparison(h.IntegrationTest):
    """The committed corpus gives byte-identical replies from cachemux and
    nutcracker, each in front of its own fresh memcached pair."""

    def test_corpus_byte_identical(self):
        batches = load_corpus()
        ncmd = sum(len(h.mc_requests(b)) for _, b in batches)
        self.assertGreaterEqual(ncmd, 150)
        mk = lambda: [self.memcached(name="s1"), self.memcached(name="s2")]
        cm_b, nc_b = mk(), mk()
        cm = self.cachemux([h.Pool("alpha", cm_b)], workers=2)
        nc = self.nutcracker([h.Pool("alpha", nc_b)])
        conns = {}
        mism = []

        def conn(kind):
            if conns.get(kind) is None:
                conns[kind] = (cm if kind == "cm" else nc).client(timeout=10)
            return conns[kind]

        try:
            for lineno, data in batches:
                reqs = h.mc_requests(data)
                n = sum(1 for r in reqs if r[1])
                quits = any(r[2] for r in reqs)
                out = {}
                for kind in ("nc", "cm"):
                    c = conn(kind)
                    try:
                        reps = c.pipeline(data, n, timeout=10)
                        closed = c.is_closed(2) if quits else None
                        out[kind] = (reps, closed)
                    except (OSError, h.Closed, AssertionError) as e:
                        out[kind] = ("%s: %s" % (type(e).__name__, e), None)
                    if quits or isinstance(out[kind][0], str):
                        c.close()
                        conns[kind] = None
                self.assertIsInstance(out["nc"][0], list,
                                      "nutcracker failed on corpus line %d: %s" % (lineno, out["nc"][0]))
                if out["cm"] != out["nc"]:
                    mism.append((lineno, data, out["nc"], out["cm"]))
        finally:
            for c in conns.values():
                if c is not None:
                    c.close()
        if mism:
            lines = []
            for lineno, data, want, got in mism[:5]:
                lines.append("corpus line %d: %r\n   nutcracker: %r\n   cachemux:   %r"
                             % (lineno, data[:120], str(want)[:400], str(got)[:400]))
            self.fail("%d of %d batches differ:\n%s" % (len(mism), len(batches), "\n".join(lines)))
        # the corpus's multi-gets really crossed servers
        mkeys = sorted({k for _, d in batches for r in h.mc_requests(d)
                        for k in r[0].split(CRLF)[0].split()[1:]
                        if r[0].startswith((b"get ", b"gets ")) and k.startswith(b"m:")})
        where = {k: [b.name for b in cm_b if b.get(k) is not None] for k in mkeys}
        self.assertEqual({n for w in where.values() for n in w}, {"s1", "s2"})
        crossing = 0
        for _, d in batches:
            for r in h.mc_requests(d):
                toks = r[0].split(CRLF)[0].split()
                if toks[0] in (b"get", b"gets") and len(toks) > 2:
                    servers = {tuple(where.get(k, ())) for k in toks[1:]}
                    crossing += len(servers) > 1
        self.assertGreaterEqual(crossing, 20, "multi-gets spanning both servers")


def load_corpus():
    """[(line number, batch bytes)] from corpus_mc.txt."""
    out = []
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_mc.txt"), "rb") as f:
        for i, raw in enumerate(f, 1):
            line = raw.rstrip(b"\n")
            if not line or line.startswith(b"#"):
                continue
            out.append((i, unescape(line)))
    return out


if __name__ == "__main__":
    h.main(require=("memcached", "nutcracker"))
