#!/usr/bin/python3
"""Failure and limit tests (README "Failures and limits", doc/protocols.md 4), against
real memcached and redis-server backends, to doc/testing.md's standards:

- a backend killed under load from 50 clients: only its requests fail, with
  the exact error text, no client conn closes, and it serves again after a
  restart on the same port (no ejection);
- "only the late request times out": an EVAL busy for 400 ms with
  timeout = 300 times out alone; a GET behind it on the same backend conn is
  answered (and the backend conn was never dropped);
- a frozen backend (SIGSTOP): its requests time out within the window, the
  other backend is unaffected, it serves again after SIGCONT;
- ejection: at most workers x server_failure_limit failed requests, then every
  connection routes by the ring without the dead server (checked against
  `cachemux -L` of a config lacking it, and on the backends), stats show the
  ejection, and after the retry time keys route back to the full ring;
- backpressure: 100,000 pipelined GETs of a 100 KiB value from a client that
  does not read: bounded RSS growth and bounded backend command count, another
  client is served meanwhile, then every reply arrives in order;
- client_connections across workers, memcached and redis refusal texts;
- hostile bytes (fixed cases and 2,000 random inputs per protocol from a
  fixed seed): every reply valid, every conn answered or closed, cachemux up;
- max_request_size: the error arrives before the body is sent, then close.

Time windows are asserted only on unsanitized builds (doc/testing.md "Timing"):
a build counts as sanitized when CACHEMUX's path contains "asan"/"ubsan"/
"tsan"/"msan" or CACHEMUX_SANITIZED=1.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_failures.py [NAME-SUBSTRING...]
"""

import os
import random
import re
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import (CRLF, SANITIZED, B, accept_workers, bulk, exchange,  # noqa: E402
                     mc_store as store, mc_value as value_reply, spread_keys as candidates,
                     start_threads)

MC_DOWN = (b"SERVER_ERROR Connection refused\r\n", b"SERVER_ERROR Connection reset by peer\r\n")
RD_DOWN = (b"-ERR Connection refused\r\n", b"-ERR Connection reset by peer\r\n")
MC_TIMEOUT = b"SERVER_ERROR Connection timed out\r\n"
RD_TIMEOUT = b"-ERR Connection timed out\r\n"


def keys_on(conf, pool, idents, n, prefix):
    """{ident: [n keys placed on ident]} by `cachemux -L`."""
    out = {i: [] for i in idents}
    cand = candidates(prefix, n * len(idents) * 6)
    where = h.locate(conf, pool, cand)
    for k in cand:
        ident = where[B(k)]
        if ident in out and len(out[ident]) < n:
            out[ident].append(k)
    for ident, ks in out.items():
        assert len(ks) == n, "only %d candidate keys placed on %s" % (len(ks), ident)
    return out


def sleep_until(t):
    d = t - time.time()
    if d > 0:
        time.sleep(d)


# --------------------------------------------------------------------------
# reply validation for hostile input

_MC_SIMPLE = {b"END", b"STORED", b"NOT_STORED", b"EXISTS", b"NOT_FOUND", b"DELETED",
              b"TOUCHED", b"ERROR", b"OK"}
_MC_TEXT_RE = re.compile(rb"^(CLIENT_ERROR|SERVER_ERROR) [\x20-\x7e]+$")


def mc_check_stream(buf):
    """None if buf is a sequence of complete, valid memcached replies, else
    a description of the first problem."""
    pos = 0
    in_values = False
    while pos < len(buf):
        nl = buf.find(CRLF, pos)
        if nl < 0:
            return "incomplete reply line %r" % buf[pos:pos + 80]
        line = buf[pos:nl]
        if line.startswith(b"VALUE "):
            parts = line.split(b" ")
            if len(parts) not in (4, 5) or not all(p.isdigit() for p in parts[2:]):
                return "bad VALUE line %r" % line[:120]
            n = int(parts[3])
            end = nl + 2 + n
            if buf[end:end + 2] != CRLF:
                return "VALUE block of %d bytes not followed by CRLF: %r" % (n, buf[pos:pos + 120])
            pos = end + 2
            in_values = True
            continue
        if in_values and line != b"END":
            return "VALUE blocks not ended by END: %r" % line[:120]
        in_values = False
        ok = (line in _MC_SIMPLE or (line.isdigit() and len(line) <= 20) or
              _MC_TEXT_RE.match(line) is not None or
              re.match(rb"^VERSION [\x21-\x7e]+$", line) is not None)
        if not ok:
            return "not a memcached reply: %r" % line[:120]
        pos = nl + 2
    if in_values:
        return "VALUE blocks without END"
    return None


def resp_check_stream(buf):
    """(replies, problem): problem None if buf is complete valid RESP2 replies
    with no CR/LF inside simple strings and errors."""
    out = []
    pos = 0

    def check(p):
        nl = buf.find(CRLF, p)
        if nl < 0:
            raise ValueError("incomplete")
        t = buf[p:p + 1]
        body = buf[p + 1:nl]
        if t in (b"+", b"-"):
            if b"\r" in body or b"\n" in body:
                raise ValueError("CR/LF inside a simple string or error")
            return nl + 2
        if t == b":":
            int(body)
            return nl + 2
        if t == b"$":
            n = int(body)
            if n < 0:
                if n != -1:
                    raise ValueError("bulk length %d" % n)
                return nl + 2
            end = nl + 2 + n
            if buf[end:end + 2] != CRLF:
                raise ValueError("bulk not followed by CRLF")
            return end + 2
        if t == b"*":
            n = int(body)
            q = nl + 2
            if n < -1:
                raise ValueError("multibulk count %d" % n)
            for _ in range(max(n, 0)):
                q = check(q)
            return q
        raise ValueError("bad type byte %r" % t)

    while pos < len(buf):
        try:
            e = check(pos)
        except (ValueError, IndexError) as ex:
            return out, "invalid RESP at %r: %s" % (buf[pos:pos + 120], ex)
        out.append(buf[pos:e])
        pos = e
    return out, None


class FailTest(h.IntegrationTest):

    def client(self, port, timeout=5):
        c = h.Client(port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def freeze(self, backend):
        os.kill(backend.proc.pid, signal.SIGSTOP)

        def thaw():
            if backend.alive:
                try:
                    os.kill(backend.proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self.addCleanup(thaw)
        return thaw


# --------------------------------------------------------------------------
# 1. a backend killed under load

class KilledUnderLoad(FailTest):
    """doc/protocols.md 4: only the requests the dead server's conn carried fail, with
    the system error text; client conns stay open; a restarted backend serves
    again without restarting cachemux (auto_eject_hosts false)."""

    NTHREADS = 50

    def test_backend_killed_under_load_50_clients(self):
        m1, m2 = self.memcached(name="s1"), self.memcached(name="s2")
        r1, r2 = self.redis(name="r1"), self.redis(name="r2")
        px = self.cachemux([h.Pool("mc", [m1, m2]), h.Pool("rd", [r1, r2], redis=True)], workers=2)
        n = self.NTHREADS
        mk = keys_on(px.conf, "mc", ["s1", "s2"], 2 * n, "kmc")
        rk = keys_on(px.conf, "rd", ["r1", "r2"], 2 * n, "krd")
        # each thread: two keys per server per pool, its own
        plan = []
        for i in range(n):
            plan.append({
                ("mc", "live"): mk["s1"][2 * i:2 * i + 2], ("mc", "dead"): mk["s2"][2 * i:2 * i + 2],
                ("rd", "live"): rk["r1"][2 * i:2 * i + 2], ("rd", "dead"): rk["r2"][2 * i:2 * i + 2],
            })
        stop = threading.Event()
        bad = []
        events = [[] for _ in range(n)]   # (t0, t1, pool, role, op, outcome)
        conns = []
        for i in range(n):
            conns.append((self.client(px.port("mc"), timeout=20), self.client(px.port("rd"), timeout=20)))

        def run(i):
            mc, rd = conns[i]
            ev = events[i]
            j = 0
            try:
                while not stop.is_set():
                    for pool in ("mc", "rd"):
                        for role in ("live", "dead"):
                            key = plan[i][(pool, role)][j % 2]
                            val = "v%d-%d" % (i, j)
                            down = (MC_DOWN if pool == "mc" else RD_DOWN) if role == "dead" else ()
                            t0 = time.time()
                            if pool == "mc":
                                r = mc.request(store(key, val))
                                good = r == b"STORED\r\n"
                            else:
                                r = rd.resp("SET", key, val)
                                good = r == b"+OK\r\n"
                            t1 = time.time()
                            if not good and r not in down:
                                bad.append("thread %d %s %s SET %s: %r" % (i, pool, role, key, r))
                                return
                            ev.append((t0, t1, pool, role, "set", "ok" if good else "err"))
                            if pool == "mc":
                                r2 = mc.request(b"get " + B(key) + CRLF)
                                want, miss = value_reply(key, val), b"END\r\n"
                            else:
                                r2 = rd.resp("GET", key)
                                want, miss = bulk(val), b"$-1\r\n"
                            t2 = time.time()
                            if r2 == want:
                                out = "ok"
                            elif r2 in down or (not good and role == "dead" and r2 == miss):
                                out = "err" if r2 in down else "miss"
                            else:
                                bad.append("thread %d %s %s GET %s after SET %r: %r"
                                           % (i, pool, role, key, r, r2))
                                return
                            ev.append((t1, t2, pool, role, "get", out))
                    j += 1
            except Exception as e:  # a closed conn, a timeout
                bad.append("thread %d: %s: %s" % (i, type(e).__name__, e))

        threads = start_threads(run, n)
        try:
            time.sleep(h.scaled(1.0))
            self.assertEqual(bad, [])
            t_kill0 = time.time()
            m2.kill()
            r2.kill()
            t_kill = time.time()
            time.sleep(h.scaled(1.5))
            t_restart0 = time.time()
            m2.restart()
            r2.restart()
            t_restart = time.time()
            recover = h.scaled(2.5 if not SANITIZED else 4.0)
            time.sleep(recover + h.scaled(1.0))
        finally:
            stop.set()
            for t in threads:
                t.join(h.scaled(30))
        self.assertEqual(bad[:10], [], "%d threads saw an unexpected reply or a closed conn" % len(bad))
        self.assertFalse(any(t.is_alive() for t in threads), "load threads did not finish")

        for pool in ("mc", "rd"):
            before = [e for ev in events for e in ev if e[2] == pool and e[1] < t_kill0]
            self.assertTrue(before and all(e[5] == "ok" for e in before),
                            "%s: requests before the kill all succeed" % pool)
            dead_window = [e for ev in events for e in ev
                           if e[2] == pool and e[3] == "dead" and e[0] > t_kill + 0.2 and e[1] < t_restart0]
            self.assertGreater(len(dead_window), n, "%s: requests for the dead server while it was down" % pool)
            self.assertEqual(sorted({e[5] for e in dead_window}), ["err"],
                             "%s: every request for the dead server fails while it is down" % pool)
            live = [e for ev in events for e in ev if e[2] == pool and e[3] == "live"]
            self.assertTrue(live and all(e[5] == "ok" for e in live))
            self.assertGreater(len([e for e in live if t_kill < e[0] < t_restart0]), n,
                               "%s: the live server kept serving while the other was down" % pool)
            for i, ev in enumerate(events):
                after = [e for e in ev if e[2] == pool and e[3] == "dead" and e[0] > t_restart]
                fails = [e for e in after if e[5] != "ok"]
                self.assertTrue(after, "thread %d %s: no request after the restart" % (i, pool))
                if fails:
                    self.assertLess(fails[-1][0], t_restart + recover,
                                    "thread %d %s: requests for the restarted backend still fail "
                                    "%.1fs after its restart" % (i, pool, fails[-1][0] - t_restart))
                self.assertEqual(after[-1][5], "ok", "thread %d %s" % (i, pool))
        # every client conn is still open and works for both servers
        for i, (mc, rd) in enumerate(conns):
            for role in ("live", "dead"):
                k = plan[i][("mc", role)][0]
                self.assertEqual(mc.request(store(k, "end")), b"STORED\r\n")
                self.assertEqual(mc.request(b"get " + B(k) + CRLF), value_reply(k, "end"))
                k = plan[i][("rd", role)][0]
                self.assertEqual(rd.resp("SET", k, "end"), b"+OK\r\n")
                self.assertEqual(rd.resp("GET", k), bulk("end"))
        # the keys really are where -L says
        self.assertIsNotNone(m2.get(plan[0][("mc", "dead")][0]))
        self.assertIsNone(m1.get(plan[0][("mc", "dead")][0]))
        self.assertIsNotNone(m1.get(plan[0][("mc", "live")][0]))


# --------------------------------------------------------------------------
# 2. only the late request times out

LUA_BUSY = ("local t = redis.call('TIME') "
            "local start = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
            "while true do "
            "  local n = redis.call('TIME') "
            "  if tonumber(n[1]) * 1000000 + tonumber(n[2]) - start >= %d then break end "
            "end "
            "return 1")


def redis_info_int(backend, field):
    with backend.client() as c:
        r = c.resp("INFO", "stats")
    m = re.search(rb"\r\n" + B(field) + rb":(\d+)\r\n", r)
    assert m, "no %s in INFO: %r" % (field, r[:300])
    return int(m.group(1))


class Timeouts(FailTest):

    def test_only_the_late_request_times_out(self):
        """doc/testing.md "Timeouts": on one backend conn, an EVAL busy for 400 ms with
        timeout = 300 gets `Connection timed out`; a GET sent 250 ms later on
        the same client is answered; another client's GET during the EVAL is
        answered after the EVAL ends; the backend conn is never dropped."""
        r = self.redis(name="r1")
        px = self.cachemux([h.Pool("rd", [r], redis=True, timeout=300, server_connections=1)],
                           workers=1)
        a = self.client(px.port(), timeout=10)
        b = self.client(px.port(), timeout=10)
        self.assertEqual(a.resp("SET", "k", "value-k"), b"+OK\r\n")
        self.assertEqual(b.resp("GET", "k"), bulk("value-k"))
        conns0 = redis_info_int(r, "total_connections_received")

        t0 = time.time()
        a.send(h.resp_command("EVAL", LUA_BUSY % 400000, 1, "k"))
        sleep_until(t0 + 0.2)
        b.send(h.resp_command("GET", "k"))
        sleep_until(t0 + 0.25)
        a.send(h.resp_command("GET", "k"))
        ra1 = a.read_resp(1, timeout=5)[0]
        ta1 = time.time() - t0
        rb = b.read_resp(1, timeout=5)[0]
        tb = time.time() - t0
        ra2 = a.read_resp(1, timeout=5)[0]
        ta2 = time.time() - t0

        self.assertEqual(ra1, RD_TIMEOUT, "the EVAL")
        self.assertEqual(ra2, bulk("value-k"), "the GET sent 250 ms later on the same client")
        self.assertEqual(rb, bulk("value-k"), "another client's GET during the EVAL")
        # the EVAL really held the backend: the GETs were answered after it ended
        self.assertGreaterEqual(ta2, 0.38, "GET answered before the EVAL could end")
        self.assertGreaterEqual(tb, 0.38, "GET answered before the EVAL could end")
        if not SANITIZED:
            self.assertTrue(0.29 <= ta1 <= 0.9, "EVAL timed out after %.3fs (timeout 300 ms)" % ta1)
            self.assertLess(ta2, 0.9, "GET answered %.3fs after the EVAL was sent" % ta2)
            self.assertLess(tb, 0.9)
        # the EVAL's late reply (:1) was dropped, not given to anyone
        self.assertEqual(a.resp("GET", "k"), bulk("value-k"))
        self.assertEqual(b.resp("GET", "k"), bulk("value-k"))
        self.assertOpen(a)
        self.assertOpen(b)
        # the one backend conn was never closed and reopened (+1: our INFO conn)
        self.assertEqual(redis_info_int(r, "total_connections_received") - conns0, 1,
                         "cachemux reconnected to the backend")
        st = px.stats_json()["rd"]["r1"]
        self.assertEqual(st["server_timedout"], 1, st)
        self.assertEqual(st["server_connections"], 1, st)

    def test_frozen_backend(self):
        """SIGSTOP one of two memcached (timeout = 300): its requests get
        `SERVER_ERROR Connection timed out` within 300-900 ms, the other
        backend is unaffected, and after SIGCONT it serves again."""
        m1, m2 = self.memcached(name="s1"), self.memcached(name="s2")
        px = self.cachemux([h.Pool("mc", [m1, m2], timeout=300)], workers=2)
        keys = keys_on(px.conf, "mc", ["s1", "s2"], 8, "fz")
        c = self.client(px.port(), timeout=10)
        for k in keys["s1"] + keys["s2"]:
            self.assertEqual(c.request(store(k, "v-" + k)), b"STORED\r\n")

        thaw = self.freeze(m2)
        stop = threading.Event()
        bad = []
        lat = []

        def live_load(i):
            try:
                cl = h.Client(px.port(), timeout=10)
            except OSError as e:
                bad.append("live client %d: connect: %s" % (i, e))
                return
            with cl:
                j = 0
                while not stop.is_set():
                    k = keys["s1"][(i + j) % len(keys["s1"])]
                    t = time.time()
                    try:
                        r = cl.request(b"get " + B(k) + CRLF)
                    except Exception as e:
                        bad.append("live client %d: %s: %s" % (i, type(e).__name__, e))
                        return
                    lat.append((t, time.time()))
                    if r != value_reply(k, "v-" + k):
                        bad.append("live client %d: get %s: %r" % (i, k, r))
                        return
                    j += 1

        frozen_results = []

        def frozen_load(i, n):
            # sequential, one request per `timeout` + 100 ms, so a request
            # never shares its server conn with an earlier timed-out one
            try:
                with h.Client(px.port(), timeout=10) as cl:
                    for j in range(n):
                        k = keys["s2"][(i * n + j) % len(keys["s2"])]
                        # (a timed-out set still lands once the backend
                        # runs again: store the value the key already has)
                        req = b"get " + B(k) + CRLF if j % 2 == 0 else store(k, "v-" + k)
                        t = time.time()
                        r = cl.request(req)
                        frozen_results.append((i, j, r, t, time.time()))
                        time.sleep(0.4)
            except Exception as e:
                bad.append("frozen client %d: %s: %s" % (i, type(e).__name__, e))

        ths = [threading.Thread(target=live_load, args=(i,), daemon=True) for i in range(4)]
        ths += [threading.Thread(target=frozen_load, args=(i, 4), daemon=True) for i in range(2)]
        for t in ths:
            t.start()
        for t in ths[4:]:
            t.join(h.scaled(30))
        stop.set()
        for t in ths[:4]:
            t.join(h.scaled(30))
        self.assertEqual(bad, [])
        self.assertEqual(len(frozen_results), 8)
        for i, j, r, t0, t1 in frozen_results:
            dt = t1 - t0
            self.assertEqual(r, MC_TIMEOUT, "request %d of frozen client %d" % (j, i))
            if not SANITIZED:
                self.assertTrue(0.29 <= dt <= 0.9, "request %d of frozen client %d timed out "
                                "after %.3fs (timeout 300 ms)" % (j, i, dt))
            # the other backend kept serving while this request waited
            inside = [1 for a, b in lat if t0 < a and b < t1]
            self.assertGreaterEqual(len(inside), 5, "requests for the live backend completed while "
                                    "request %d of frozen client %d waited %.3fs" % (j, i, dt))
        self.assertGreater(len(lat), 50, "requests for the live backend during the freeze")
        # many connections at once to the frozen backend: each request times out
        many = [self.client(px.port(), timeout=10) for _ in range(6)]
        for cl in many:
            cl.send(b"get " + B(keys["s2"][0]) + CRLF)
        for cl in many:
            self.assertEqual(cl.read_replies(1, timeout=5), [MC_TIMEOUT])
        st = px.stats_json()["mc"]
        self.assertGreaterEqual(st["s2"]["server_timedout"], 8, st["s2"])
        self.assertEqual(st["s1"]["server_timedout"], 0, st["s1"])

        thaw()
        t_cont = time.time()
        k = keys["s2"][0]
        deadline = t_cont + h.scaled(5)
        while True:
            r = c.request(b"get " + B(k) + CRLF)
            if r == value_reply(k, "v-" + k) or time.time() > deadline:
                break
            self.assertEqual(r, MC_TIMEOUT)
            time.sleep(0.05)
        self.assertEqual(r, value_reply(k, "v-" + k),
                         "the thawed backend still not serving %.1fs after SIGCONT" % (time.time() - t_cont))
        for cl in [c] + many:
            for k in keys["s2"] + keys["s1"]:
                self.assertEqual(cl.request(b"get " + B(k) + CRLF), value_reply(k, "v-" + k))
        self.assertEqual(c.request(store(keys["s2"][1], "after")), b"STORED\r\n")
        self.assertEqual(m2.get(keys["s2"][1]), b"after")


# --------------------------------------------------------------------------
# 4. ejection

class Ejection(FailTest):
    WORKERS = 2
    LIMIT = 1
    RETRY_MS = 2000
    STAGGER = 0          # s between the starts of the connections' load

    def test_ejection_and_return(self):
        """doc/testing.md "Ejection": 4 x workers connections; at most
        workers x server_failure_limit failed requests, then every connection
        routes by the ring without the dead server; after the retry time, by
        the full ring again."""
        W = self.WORKERS
        ms = [self.memcached(name=n) for n in ("s1", "s2", "s3")]
        opts = dict(auto_eject_hosts=True, server_failure_limit=self.LIMIT,
                    server_retry_timeout=self.RETRY_MS)
        px = self.cachemux([h.Pool("mc", ms, **opts)], workers=W)
        reduced_conf = h.tmp_path("reduced.ini")
        h.write_ini(reduced_conf, [h.Pool("mc", ms[:2], port=h.free_port(), **opts)], workers=W)
        cand = candidates("ej", 40000)
        full = h.locate(px.conf, "mc", cand)
        reduced = h.locate(reduced_conf, "mc", cand)
        self.assertEqual({full[B(k)] for k in cand}, {"s1", "s2", "s3"})
        self.assertEqual({reduced[B(k)] for k in cand}, {"s1", "s2"})
        # ketama: only the dead server's keys move
        self.assertTrue(all(full[B(k)] == reduced[B(k)] for k in cand if full[B(k)] != "s3"))
        by_name = {m.name: m for m in ms}

        # 4 x workers connections, on both workers
        nconn = 4 * W
        conns = [self.client(px.port(), timeout=10) for _ in range(nconn)]
        for i in range(40):
            tags = accept_workers(px, [c.local_port for c in conns], "mc")
            per = {}
            for t in tags.values():
                per[t] = per.get(t, 0) + 1
            if len(per) == W and min(per.values()) >= 2:
                break
            conns.append(self.client(px.port(), timeout=10))
        self.assertEqual(len(per), W, "connections per worker: %s" % per)
        nconn = len(conns)
        slices = [cand[i::nconn] for i in range(nconn)]

        def verify_placement(stored, ring, servers):
            """Each stored (key, value) is on ring's server and nowhere else."""
            wrong = []
            for m in servers:
                with m.client(timeout=20) as d:
                    reps = d.pipeline(b"".join(b"get " + B(k) + CRLF for k, _ in stored),
                                      len(stored), timeout=20)
                for (k, v), r in zip(stored, reps):
                    here = r != b"END\r\n"
                    if here and r != value_reply(k, v):
                        wrong.append("%s: %r on %s" % (k, r[:80], m.name))
                    if here != (ring[B(k)] == m.name):
                        wrong.append("%s: ring says %s, %s on %s" % (k, ring[B(k)], "found" if here
                                                                    else "missing", m.name))
            self.assertEqual(wrong[:10], [], "%d misplaced" % len(wrong))

        # phase A: every connection writes by the full ring
        stored = []
        pos = [0] * nconn
        for i, c in enumerate(conns):
            for _ in range(12):
                k = slices[i][pos[i]]
                pos[i] += 1
                self.assertEqual(c.request(store(k, "a-" + k)), b"STORED\r\n")
                stored.append((k, "a-" + k))
        verify_placement(stored, full, ms)

        # kill s3 while the clients are idle (a server closing an idle conn
        # is not a failure), then load from every connection at once,
        # sequential requests per connection (one failed connect fails every
        # request queued behind it, so a pipeline would multiply failures)
        ms[2].kill()
        time.sleep(h.scaled(0.3))
        st = px.stats_json()["mc"]
        self.assertEqual(st["server_ejects"], 0, "ejected before any request failed")

        stop_at = [0.0]
        results = [[] for _ in range(nconn)]   # (t, key, value, reply)
        bad = []

        def load(i):
            c = conns[i]
            j = 0
            try:
                while time.time() < stop_at[0] and pos[i] + j < len(slices[i]) - 40:
                    k = slices[i][pos[i] + j]
                    j += 1
                    v = "b%d-%s" % (j, k)
                    r = c.request(store(k, v))
                    results[i].append((time.time(), k, v, r))
            except Exception as e:
                bad.append("conn %d: %s: %s" % (i, type(e).__name__, e))

        t_b = time.time()
        # stop well before the ejection (at the first failure, >= t_b) ends
        stop_at[0] = t_b + self.RETRY_MS / 1000.0 * 0.6
        ths = []
        for i in range(nconn):
            t = threading.Thread(target=load, args=(i,), daemon=True)
            t.start()
            ths.append(t)
            time.sleep(self.STAGGER)
        for t in ths:
            t.join(h.scaled(30))
        st_b = px.stats_json()
        t_b_end = time.time()
        self.assertEqual(bad, [])
        allres = sorted((r for rs in results for r in rs), key=lambda x: x[0])
        failed = [r for r in allres if r[3] != b"STORED\r\n"]
        for r in failed:
            self.assertIn(r[3], MC_DOWN, "failed request for %s" % r[1])
        self.assertGreaterEqual(len(failed), 1, "no request reached the dead server")
        self.assertLessEqual(len(failed), W * self.LIMIT,
                             "%d requests failed (workers x server_failure_limit = %d): %s"
                             % (len(failed), W * self.LIMIT, [(r[1], r[3]) for r in failed]))
        t_eject = failed[0][0]
        sys.stdout.write("[%d failed of %d requests] " % (len(failed), len(allres)))
        self.assertLess(t_b_end, t_b + self.RETRY_MS / 1000.0,
                        "phase B overran the retry timeout: the test cannot tell")
        ok = [(r[1], r[2]) for r in allres if r[3] == b"STORED\r\n"]
        for i, rs in enumerate(results):
            moved = [r for r in rs if r[3] == b"STORED\r\n" and full[B(r[1])] == "s3"]
            self.assertGreaterEqual(len(moved), 1,
                                    "conn %d wrote no key of the dead server (%d requests)" % (i, len(rs)))
        verify_placement(ok, reduced, ms[:2])
        pst = st_b["mc"]
        self.assertGreaterEqual(pst["server_ejects"], 1, pst)
        self.assertGreater(pst["s3"]["server_ejected_at"], 0, pst["s3"])
        self.assertLess(abs(pst["s3"]["server_ejected_at"] / 1e6 - t_eject), 60, pst["s3"])
        self.assertEqual(pst["s1"]["server_ejected_at"], 0)
        self.assertEqual(pst["s2"]["server_ejected_at"], 0)

        # phase C: restart s3 on its port; past the retry time, every
        # connection routes by the full ring again
        ms[2].restart()
        sleep_until(t_eject + self.RETRY_MS / 1000.0 + 0.5)
        stored = []
        for i, c in enumerate(conns):
            base = pos[i] + len(results[i]) + 1
            on_s3 = 0
            for j in range(30):
                k = slices[i][base + j]
                v = "c-" + k
                self.assertEqual(c.request(store(k, v)), b"STORED\r\n", "conn %d after the retry time" % i)
                stored.append((k, v))
                on_s3 += full[B(k)] == "s3"
            self.assertGreaterEqual(on_s3, 1)
        verify_placement(stored, full, ms)
        self.assertTrue(by_name["s3"].alive)


# --------------------------------------------------------------------------
# 5. backpressure

class Backpressure(FailTest):
    VALUE_SIZE = 100 * 1024
    N = 100000
    BLOCK = 100          # a marker key every BLOCK gets, to check order
    RSS_BOUND_KIB = 48 * 1024
    CMD_GET_BOUND = 2000

    def test_pipelining_without_reading_is_throttled(self):
        """doc/testing.md "Backpressure". Bounds: cachemux's RSS grows by less than
        48 MiB over its baseline while the client does not read (each client
        has at most 256 requests in flight and 8 MiB of unsent replies before
        it stops being read: 256 x 100 KiB + 8 MiB = 33 MiB; without
        backpressure the 100,000 replies are 10 GB); the backend's cmd_get
        grows by less than 2,000 (256 in flight + 8 MiB / 100 KiB + what the
        kernel's socket buffers hold), and not at all during the last second."""
        m = self.memcached(name="s1", memory=256)
        px = self.cachemux([h.Pool("mc", [m])], workers=2)
        value = random.Random(7).randbytes(self.VALUE_SIZE)
        nblocks = self.N // self.BLOCK
        setup = self.client(px.port(), timeout=30)
        reqs = store("k", value) + b"".join(store("mark:%d" % b, "m%d" % b) for b in range(nblocks))
        reqs += store("small", "small-value")
        self.assertEqual(setup.pipeline(reqs, nblocks + 2, timeout=30), [b"STORED\r\n"] * (nblocks + 2))
        r_k = value_reply("k", value)

        stream = b"".join(b"get k\r\n" * self.BLOCK + b"get mark:%d\r\n" % b for b in range(nblocks))
        rss0 = h.rss_kib(px.proc.pid)
        gets0 = int(m.stats()["cmd_get"])

        a = socket.create_connection((h.HOST, px.port()), timeout=h.scaled(60))
        self.addCleanup(a.close)
        send_err = []

        def sender():
            try:
                a.sendall(stream)
            except Exception as e:
                send_err.append(e)

        ts = threading.Thread(target=sender, daemon=True)
        ts.start()

        # another client, meanwhile: 1,000 sequential GETs
        other_err = []

        def other():
            try:
                with h.Client(px.port(), timeout=10) as o:
                    for i in range(1000):
                        key = "small" if i % 2 else "mark:%d" % (i % nblocks)
                        val = "small-value" if i % 2 else "m%d" % (i % nblocks)
                        r = o.request(b"get " + B(key) + CRLF)
                        if r != value_reply(key, val):
                            other_err.append("get %d: %r" % (i, r[:100]))
                            return
            except Exception as e:
                other_err.append("%s: %s" % (type(e).__name__, e))

        to = threading.Thread(target=other, daemon=True)
        t0 = time.time()
        to.start()
        rss_max = rss0
        samples = []
        while time.time() < t0 + h.scaled(2.5) or to.is_alive():
            rss_max = max(rss_max, h.rss_kib(px.proc.pid))
            samples.append((time.time() - t0, int(m.stats()["cmd_get"]) - gets0))
            if time.time() > t0 + h.scaled(30):
                break
            time.sleep(0.1)
        to.join(h.scaled(10))
        self.assertFalse(to.is_alive(), "the other client's 1,000 GETs did not finish")
        self.assertEqual(other_err, [], "the other client while one client does not read")
        t_other = time.time()
        time.sleep(1.0)
        rss_max = max(rss_max, h.rss_kib(px.proc.pid))
        g_mid = int(m.stats()["cmd_get"]) - gets0
        time.sleep(1.0)
        g_end = int(m.stats()["cmd_get"]) - gets0
        rss_max = max(rss_max, h.rss_kib(px.proc.pid))
        forwarded = g_end - 1000
        self.assertLess(forwarded, self.CMD_GET_BOUND,
                        "the backend served %d GETs for a client that does not read (samples %s)"
                        % (forwarded, samples[-5:]))
        self.assertEqual(g_end, g_mid, "GETs still being forwarded %.1fs after the client stopped "
                         "reading" % (time.time() - t_other))
        self.assertLess(rss_max - rss0, self.RSS_BOUND_KIB,
                        "RSS grew from %d KiB to %d KiB" % (rss0, rss_max))

        sys.stdout.write("[not reading: RSS +%d KiB, %d GETs forwarded] " % (rss_max - rss0, forwarded))
        # now read: every reply, in order
        t_read = time.time()
        buf = bytearray(len(r_k) * self.BLOCK)
        mv = memoryview(buf)
        block = r_k * self.BLOCK
        a.settimeout(h.scaled(60))

        def read_exact(n):
            got = 0
            while got < n:
                k = a.recv_into(mv[got:n], n - got)
                if k == 0:
                    raise h.Closed("closed after %d of %d bytes" % (got, n))
                got += k
            return bytes(mv[:n]) if n < len(buf) else buf

        for b in range(nblocks):
            if read_exact(len(block)) != block:     # (bytearray == bytes is a memcmp)
                got = bytes(buf)
                first = next(i for i in range(len(block)) if got[i] != block[i])
                self.fail("block %d: reply %d of the block differs at byte %d: %r"
                          % (b, first // len(r_k), first % len(r_k),
                             got[first - first % len(r_k):][:60]))
            mark = value_reply("mark:%d" % b, "m%d" % b)
            got = read_exact(len(mark))
            self.assertEqual(got, mark, "marker after block %d" % b)
        ts.join(h.scaled(10))
        self.assertEqual(send_err, [])
        a.settimeout(0.3)
        try:
            extra = a.recv(100)
        except socket.timeout:
            extra = None
        self.assertIsNone(extra, "bytes or close after the last reply")
        self.assertGreaterEqual(int(m.stats()["cmd_get"]) - gets0, self.N + nblocks + 1000)
        sys.stdout.write("[read %d replies of %d bytes in %.1fs] " % (self.N, len(r_k), time.time() - t_read))


# --------------------------------------------------------------------------
# 6. client_connections

class ClientLimit(FailTest):
    L = 6

    def test_client_connections_limit(self):
        """README "Failures and limits" / doc/testing.md: L clients spread over both workers; the
        (L+1)th gets the refusal and is closed; close one, a new one is
        accepted; three times; for a memcached and a redis pool."""
        m = self.memcached(name="s1")
        r = self.redis(name="r1")
        px = self.cachemux([h.Pool("mc", [m], client_connections=self.L),
                            h.Pool("rd", [r], redis=True, client_connections=self.L)],
                           workers=2, verbose=6)
        self.check_pool(px, "mc", b"ERROR Too many open connections\r\n",
                        lambda c, i: self.assertEqual(c.request(store("c%d" % i, "x")), b"STORED\r\n"))
        self.check_pool(px, "rd", b"-ERR max number of clients reached\r\n",
                        lambda c, i: self.assertEqual(c.resp("SET", "c%d" % i, "x"), b"+OK\r\n"))

    def wait_count(self, px, pool, n):
        deadline = time.time() + h.scaled(5)
        while True:
            got = px.stats_json()[pool]["client_connections"]
            if got == n or time.time() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(got, n, "pool %s client_connections" % pool)

    def check_pool(self, px, pool, refusal, works):
        L = self.L
        port = px.port(pool)
        seq = [0]

        def open_ok():
            c = self.client(port)
            seq[0] += 1
            works(c, seq[0])
            return c

        clients = [open_ok() for _ in range(L)]
        self.wait_count(px, pool, L)
        for attempt in range(50):
            tags = accept_workers(px, [c.local_port for c in clients], pool)
            self.assertEqual(len(tags), L, "accept lines for the clients of pool %s" % pool)
            if len(set(tags.values())) >= 2:
                break
            victim = clients.pop(0)
            victim.close()
            self.wait_count(px, pool, L - 1)
            clients.append(open_ok())
        self.assertGreaterEqual(len(set(tags.values())), 2, "all clients on one worker: %s" % tags)
        for rep in range(3):
            x = h.Client(port)
            try:
                data = x.read_until_close(timeout=5)
            finally:
                x.close()
            self.assertEqual(data, refusal, "client %d of limit %d, round %d" % (L + 1, L, rep))
            self.wait_count(px, pool, L)
            for i, c in enumerate(clients):
                works(c, 1000 * rep + i)
            victim = clients.pop(rep)
            victim.close()
            self.wait_count(px, pool, L - 1)
            clients.append(open_ok())
            self.wait_count(px, pool, L)
        for c in clients:
            self.assertOpen(c)
        # refused clients were counted nowhere
        tags = accept_workers(px, [c.local_port for c in clients], pool)
        self.assertEqual(len(tags), L)


# --------------------------------------------------------------------------
# 7. hostile bytes

MC_CLOSERS = (b"CLIENT_ERROR bad command line format\r\n", b"CLIENT_ERROR bad data chunk\r\n")
PROTO_ERR = b"-ERR Protocol error: "
# replies after which the proxy closes the conn (doc/protocols.md 4)
CLOSING = (MC_CLOSERS[0], MC_CLOSERS[1], b"SERVER_ERROR object too large for cache\r\n",
           PROTO_ERR + b"invalid multibulk length\r\n", PROTO_ERR + b"invalid bulk length\r\n",
           PROTO_ERR + b"request too large\r\n")


def random_inputs(rng, redis, n):
    if redis:
        tokens = [b"*", b"$", b"*1\r\n", b"*2\r\n", b"*3\r\n", b"*0\r\n", b"*-1\r\n", b"$3\r\n",
                  b"$1\r\n", b"$-1\r\n", b"$0\r\n", b"$999999999999\r\n", b"*2147483647\r\n",
                  b"GET", b"SET", b"MGET", b"DEL", b"EVAL", b"PING", b"QUIT", b"ECHO", b"SELECT",
                  b"AUTH", b"MSET", b"EXISTS", b"HSET", b"COMMAND", b"k", b"key", b"\r\n", b"\n",
                  b" ", b"-1", b"0", b"1", b"3", b"\"", b"'", b"\\x", b"\x00", b"\xff", b"\x80"]
    else:
        tokens = [b"get", b"gets", b"set", b"add", b"cas", b"incr", b"decr", b"delete", b"touch",
                  b"gat", b"gats", b"version", b"quit", b"append", b"prepend", b"replace",
                  b"noreply", b"k", b"key", b"0", b"1", b"-1", b"5", b"4294967296",
                  b"99999999999999999999", b" ", b"  ", b"\t", b"\r\n", b"\n", b"\r", b"\x00",
                  b"\x80", b"x" * 251, b"y" * 250, b"abc", b"VALUE", b"END"]
    out = []
    for _ in range(n):
        mode = rng.random()
        if mode < 0.35:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        elif mode < 0.45:
            data = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(1, 120))) + b"\r\n"
        else:
            parts = [rng.choice(tokens) for _ in range(rng.randrange(1, 24))]
            if rng.random() < 0.5:
                parts = [p + b" " if rng.random() < 0.6 else p for p in parts]
            data = b"".join(parts)
            if rng.random() < 0.6:
                data += b"\r\n"
        out.append(data)
    return out


class Hostile(FailTest):
    NRANDOM = 2000

    def setUp(self):
        self.mcs = [self.memcached(name="s1"), self.memcached(name="s2")]
        self.rds = [self.redis(name="r1"), self.redis(name="r2")]
        # a short shutdown_timeout: a conn left hanging by a bug fails the
        # test that made it, not the stop's time limit
        self.px = self.cachemux([h.Pool("mc", self.mcs), h.Pool("rd", self.rds, redis=True)],
                                workers=2, globals_={"shutdown_timeout": 3000})

    def sane(self):
        """cachemux is up and a new client gets correct answers on both pools."""
        self.assertTrue(self.px.alive, "cachemux died")
        with h.Client(self.px.port("mc")) as c:
            for i in range(10):
                k = "sane:%d" % i
                self.assertEqual(c.request(store(k, "ok%d" % i)), b"STORED\r\n")
                self.assertEqual(c.request(b"get " + B(k) + CRLF), value_reply(k, "ok%d" % i))
        with h.Client(self.px.port("rd")) as c:
            for i in range(10):
                k = "sane:%d" % i
                self.assertEqual(c.resp("SET", k, "ok%d" % i), b"+OK\r\n")
                self.assertEqual(c.resp("GET", k), bulk("ok%d" % i))
            self.assertEqual(c.resp("MGET", "sane:1", "sane:2", "nope"),
                             b"*3\r\n" + bulk("ok1") + bulk("ok2") + b"$-1\r\n")

    def run_cases(self, pool, cases):
        """cases: [(data, expected reply bytes or None for any valid)].
        Returns a list of problems."""
        port = self.px.port(pool)
        problems = []
        for data, want in cases:
            try:
                got, how = exchange(port, data)
            except (socket.timeout, OSError) as e:
                problems.append("%r: %s: %s" % (data[:80], type(e).__name__, e))
                continue
            p = self.check_reply(pool, got)
            if p:
                problems.append("%r: %s" % (data[:80], p))
            elif want is not None and got != want:
                problems.append("%r: got %r, want %r" % (data[:80], got[:200], want))
            elif want is not None and want.endswith(CLOSING):
                # a framing error closes the conn without waiting for EOF
                try:
                    got, how = exchange(port, data, shut=False)
                except (socket.timeout, OSError) as e:
                    problems.append("%r without EOF: %s: %s" % (data[:80], type(e).__name__, e))
                    continue
                if got != want:
                    problems.append("%r without EOF: got %r, want %r" % (data[:80], got[:200], want))
        return problems

    def check_reply(self, pool, got):
        if pool == "mc":
            p = mc_check_stream(got)
            if p is None:
                for line in got.split(CRLF):
                    if line.startswith(b"SERVER_ERROR Connection"):
                        return "a backend conn failed: %r" % line
            return p
        reps, p = resp_check_stream(got)
        if p is None:
            for i, r in enumerate(reps):
                if r.startswith(PROTO_ERR) and i != len(reps) - 1:
                    return "replies after a protocol error: %r" % got[:300]
                if r.startswith(b"-ERR Connection"):
                    return "a backend conn failed: %r" % r
        return p

    def test_hostile_fixed_cases(self):
        k251 = b"k" * 251
        bin_get = (b"\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00"
                   b"\x00\x00\x00\x00\x00\x00\x00\x00a")
        mc_cases = [
            (b"hello world\r\n", b"ERROR\r\n"),
            (b"\x01\x02\xff\xfe garbage\r\n", b"ERROR\r\n"),
            (b"\x00\x01\x02\xff\xfe garbage\r\n", None),
            (b"$999999999999\r\n", b"ERROR\r\n"),
            (b"*2147483647\r\n", b"ERROR\r\n"),
            (b"get " + k251 + CRLF, MC_CLOSERS[0]),
            (store(k251, "x"), MC_CLOSERS[0]),
            (b"get " + b"k" * 250 + CRLF, b"END\r\n"),
            (b"set k 0 0 -1\r\n", MC_CLOSERS[0]),
            (b"set k 0 0 -1\r\nget k\r\n", MC_CLOSERS[0]),
            (b"set k 0 0 abc\r\n", MC_CLOSERS[0]),
            (b"set k 0 0\r\n", MC_CLOSERS[0]),
            (b"set k 0 0 2000000000\r\n", b"SERVER_ERROR object too large for cache\r\n"),
            (b"set k 0 0 67108865\r\n", b"SERVER_ERROR object too large for cache\r\n"),
            # beyond memcached's int: its own "bad command line format"
            (b"set k 0 0 999999999999\r\n", MC_CLOSERS[0]),
            (b"set k 0 0 99999999999999999999999\r\n", MC_CLOSERS[0]),
            (b"set k 0 0 3\r\nabcdef\r\n", MC_CLOSERS[1]),
            (b"get a\r\nset k 0 0 3\r\nabcdef\r\nget a\r\n", b"END\r\n" + MC_CLOSERS[1]),
            (b"incr k -1\r\n", None),
            (b"set k 0 0 10\r\nabc", b""),
            (b"set k 0 0 5\r\nhello", b""),
            (b"get k", b""),
            (b"get a\r\nget", b"END\r\n"),
            (b"gets", b""),
            (bin_get, None),
            (bin_get + CRLF, None),
            (b"\x80" * 64, None),
            (b"a" * 300000, None),
            (b"\r\n" * 100, None),
            (b"quit\r\nget a\r\n", b""),
        ]
        rd_cases = [
            (b"*2147483647\r\n", PROTO_ERR + b"invalid multibulk length\r\n"),
            (b"*1048577\r\n", PROTO_ERR + b"invalid multibulk length\r\n"),
            (b"*1\r\n$999999999999\r\n", PROTO_ERR + b"invalid bulk length\r\n"),
            (b"*1\r\n$536870913\r\n", PROTO_ERR + b"invalid bulk length\r\n"),
            (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n", PROTO_ERR + b"request too large\r\n"),
            (b"*1\r\n$4\r\nPING\r\n*2147483647\r\n", b"+PONG\r\n" + PROTO_ERR + b"invalid multibulk length\r\n"),
            (b"$999999999999\r\n", None),
            (b"*-5\r\n", None),
            (b"*-1\r\n*1\r\n$4\r\nPING\r\n", None),
            (b"*1\r\n$-5\r\n", None),
            (b"*1\r\n$-1\r\n", None),
            (b"*2\r\n$3\r\nGET\r\n$-2\r\nkk\r\n", None),
            (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab", b""),
            (b"*1\r\n$4\r\nPI", b""),
            (b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI", b"+PONG\r\n"),
            (b"*2\r\n$3\r\nGET\r\n", b""),
            (b"*2\r\n$3\r\nGETX\r\n$1\r\nk\r\n", None),
            (b"*1\r\n$4\r\nPINGXX\r\n", None),
            (b"*1\r\nPING\r\n", None),
            (b"*abc\r\n", None),
            (b"hello world\r\n", None),
            (b"\x00\x01\x02\xff\xfe garbage\r\n", None),
            (b"GET \"unbalanced\r\n", None),
            (bin_get, None),
            (bin_get + CRLF, None),
            (b"\x80" * 64, None),
            (b"a" * 300000, None),
            (b"\r\n" * 100, None),
            (b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n", b"+OK\r\n"),
            # local bulk replies (4.2: PING's argument, ECHO), then EOF
            (b"PING x\r\n", b"$1\r\nx\r\n"),
            (h.resp_command("ECHO", "hi") + h.resp_command("PING"), b"$2\r\nhi\r\n+PONG\r\n"),
        ]
        problems = self.run_cases("mc", mc_cases) + self.run_cases("rd", rd_cases)
        # the conn keeps working after a local bulk reply
        with h.Client(self.px.port("rd"), timeout=3) as c:
            for cmd in (("ECHO", "x"), ("PING", "x")):
                try:
                    self.assertEqual(c.resp(*cmd), bulk("x"))
                    self.assertEqual(c.resp("GET", "nokey"), b"$-1\r\n")
                except (AssertionError, OSError, h.Closed) as e:
                    problems.append("%s x, then GET on the same conn: %s: %s"
                                    % (cmd[0], type(e).__name__, e))
                    break
        self.assertEqual(problems, [])
        # a conn with an earlier good request then garbage: the good reply first
        with h.Client(self.px.port("rd")) as c:
            c.send(h.resp_command("SET", "hk", "1") + b"*1\r\n$-7\r\n")
            got = c.read_until_close(timeout=5)
            reps, p = resp_check_stream(got)
            self.assertIsNone(p, got)
            self.assertEqual(reps[0], b"+OK\r\n")
            self.assertTrue(len(reps) == 1 or reps[1].startswith(PROTO_ERR), got)
        # a conn left open mid-frame does not block others
        c = self.client(self.px.port("mc"))
        c.send(b"set k 0 0 10\r\nabc")
        d = self.client(self.px.port("rd"))
        d.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab")
        self.sane()
        self.assertOpen(c)
        self.assertOpen(d)

    def test_random_bytes(self):
        rng = random.Random(1234)
        jobs = [("mc", d) for d in random_inputs(rng, False, self.NRANDOM)]
        jobs += [("rd", d) for d in random_inputs(rng, True, self.NRANDOM)]
        problems = []
        lock = threading.Lock()
        idx = [0]

        def worker():
            while True:
                with lock:
                    i = idx[0]
                    idx[0] += 1
                if i >= len(jobs):
                    return
                pool, data = jobs[i]
                try:
                    got, how = exchange(self.px.port(pool), data)
                    p = self.check_reply(pool, got)
                except (socket.timeout, OSError) as e:
                    p = "%s: %s" % (type(e).__name__, e)
                if p:
                    with lock:
                        problems.append("input %d (%s) %r: %s" % (i, pool, data[:100], p))

        ths = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(h.scaled(150))
        self.assertFalse(any(t.is_alive() for t in ths), "random inputs did not finish")
        self.assertEqual(problems[:30], [], "%d of %d inputs had a problem" % (len(problems), len(jobs)))
        self.sane()


# --------------------------------------------------------------------------
# 8. max_request_size

class MaxRequestSize(FailTest):

    def test_declared_size_over_limit(self):
        m = self.memcached(name="s1")
        r = self.redis(name="r1")
        px = self.cachemux([h.Pool("mc", [m]), h.Pool("rd", [r], redis=True)], workers=2,
                           globals_={"max_request_size": 1048576})
        # memcached: the reply comes without the body being sent, then close
        c = self.client(px.port("mc"))
        c.send(b"set k 0 0 2000000\r\n")
        self.assertEqual(c.read_replies(1, timeout=5), [b"SERVER_ERROR object too large for cache\r\n"])
        self.assertClosed(c)
        # earlier pipelined replies are flushed first
        c = self.client(px.port("mc"))
        c.send(store("a", "1") + b"get a\r\nset k 0 0 2000000\r\n")
        self.assertEqual(c.read_until_close(timeout=5),
                         b"STORED\r\n" + value_reply("a", "1") + b"SERVER_ERROR object too large for cache\r\n")
        # under the limit works
        c = self.client(px.port("mc"), timeout=20)
        big = b"z" * 1000000
        self.assertEqual(c.pipeline(store("big", big), 1, timeout=20), [b"STORED\r\n"])
        self.assertEqual(m.get("big"), big)
        self.assertIsNone(m.get("k"))
        # redis: SET with a 2,000,000-byte value
        d = self.client(px.port("rd"))
        d.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
        self.assertEqual(d.read_resp(1, timeout=5), [b"-ERR Protocol error: request too large\r\n"])
        self.assertClosed(d)
        d = self.client(px.port("rd"))
        d.send(h.resp_command("SET", "a", "1") + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
        self.assertEqual(d.read_until_close(timeout=5),
                         b"+OK\r\n-ERR Protocol error: request too large\r\n")
        d = self.client(px.port("rd"), timeout=20)
        self.assertEqual(d.pipeline(h.resp_command("SET", "big", big), 1, timeout=20, resp=True),
                         [b"+OK\r\n"])
        self.assertEqual(d.resp("STRLEN", "big"), b":1000000\r\n")
        self.assertEqual(d.resp("EXISTS", "k"), b":0\r\n")


if __name__ == "__main__":
    h.main(require=("memcached", "redis-server"))
