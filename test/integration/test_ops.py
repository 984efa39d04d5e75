#!/usr/bin/python3
"""Operations tests (README "Operations": stats, metrics, signals; doc/testing.md
"Histograms", "Graceful stop and binary upgrade", "Load spreads over
workers", "Timing").

- Stats JSON: same key set, key order and value types as a live nutcracker on
  the equivalent YAML; exact counters after a known workload (request and
  response bytes computed from the requests, and cross-checked against the
  bytes the backends themselves report having read); fragments +2 for a
  multi-get over 2 servers, +0 over 1; curr_connections.
- /metrics: a strict parser of the Prometheus text format 0.0.4 (with its own
  self-test); every pool/server stat present with the JSON's values;
  histograms cumulative with `_count` = `+Inf`; requests slowed by a 20 ms
  Lua busy-wait never land in a bucket below 20 ms, fast GETs land below
  5 ms; /healthz, 404.
- workers = 4 with 400 clients: at least 3 workers do >= 10 % of the requests
  and each backend sees >= 3 connections from cachemux.
- SIGUSR1 log rotation, SIGTTIN/SIGTTOU log level.
- SIGTERM under load: everything sent before the signal is answered (also
  requests already in the kernel's buffers: accepted connections and
  connections still in the accept queue); a half-sent 5 MiB SET completes; a
  frozen backend is abandoned after shutdown_timeout; /healthz says 503 and
  new connections are refused while stopping; the pid file goes; SIGINT
  alike.
- Binary upgrade through SO_REUSEPORT with net.ipv4.tcp_migrate_req = 1
  (set by the test, restored after).
- -d with -p.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_ops.py [NAME-SUBSTRING...]
"""

import hashlib
import math
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import (SANITIZED, B, PromError, accept_workers, bulk, histogram,  # noqa: E402
                     http_get,
                     mc_store, mc_value, mc_values, metric, parse_prometheus,
                     memcached_conn_ports, proc_tcp_ports, recv_raw, redis_info_int, scrape, spread_keys,
                     start_threads, stats_json, wait_for)


POOL_COUNTERS = ("client_eof", "client_err", "server_ejects", "forward_error", "fragments")
POOL_GAUGES = ("client_connections",)
SERVER_COUNTERS = ("server_eof", "server_err", "server_timedout", "requests", "request_bytes",
                   "responses", "response_bytes")
SERVER_GAUGES = ("server_connections", "server_ejected_at", "in_queue", "in_queue_bytes",
                 "out_queue", "out_queue_bytes")
POOL_STATS = POOL_COUNTERS + POOL_GAUGES
SERVER_STATS = SERVER_COUNTERS + SERVER_GAUGES
TOP_KEYS = ("service", "source", "version", "uptime", "timestamp", "total_connections",
            "curr_connections")


# --------------------------------------------------------------------------
# processes, sockets

def backend_bytes_read(b):
    """Bytes backend b has read from all its clients so far: memcached's
    bytes_read or redis's total_net_input_bytes. Each call's own command
    (`stats\\r\\n`, 7 bytes; `INFO stats\\r\\n`, 12 bytes) shows up in the
    next call's number: subtract READ_OVERHEAD from a difference."""
    if isinstance(b, h.Memcached):
        return int(b.stats()["bytes_read"])
    return redis_info_int(b, "total_net_input_bytes")


def read_overhead(b):
    return 7 if isinstance(b, h.Memcached) else 12


def all_threads_stopped(pid):
    """True once every thread of pid is in state T (stopped)."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
        states = []
        for t in tids:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
    except OSError:
        return False
    return bool(states) and all(st in ("T", "t") for st in states)


def lua_busy_ms(ms):
    """An EVAL script (numkeys 1) that busy-waits ms milliseconds."""
    return ("local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] "
            "while true do local n = redis.call('TIME') "
            "if n[1] * 1000000 + n[2] - s >= %d then break end end "
            "return 1" % (ms * 1000))


def upgrade_request(key):
    """One pipelined set+get of key (value = key) and its expected replies."""
    return mc_store(key, key) + b"get %s\r\n" % B(key), b"STORED\r\n" + mc_values([(key, 0, key)])


def connect_storm(port, tag, out, stop, width=64):
    """Keep `width` connections being opened at once (non-blocking
    connects), each sending one pipelined set+get as soon as it is
    connected, reading both replies and closing; so that at any moment some
    connections sit in a listener's accept queue (those a closing listener
    resets unless net.ipv4.tcp_migrate_req moves them). Appends one outcome
    per connection to out (see UpgradeClients)."""
    import errno
    sel = selectors.DefaultSelector()
    seq = 0
    live = {}

    def finish(s, result, got=b""):
        c = live.pop(s)
        out.append({"first": True, "t_sent": c["sent"], "result": result, "keys": [c["key"]],
                    "got": got[:100]})
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()

    try:
        while not stop.is_set() or live:
            while not stop.is_set() and len(live) < width:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                e = s.connect_ex((h.HOST, port))
                k = "us:%s:%d" % (tag, seq)
                seq += 1
                live[s] = {"key": k, "sent": None, "buf": b"", "t0": time.monotonic()}
                if e not in (0, errno.EINPROGRESS):
                    finish(s, "refused" if e == errno.ECONNREFUSED else "connect: " + os.strerror(e))
                    continue
                sel.register(s, selectors.EVENT_WRITE)
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                c = live[s]
                if c["sent"] is None:
                    e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if e:
                        finish(s, "refused" if e == errno.ECONNREFUSED else
                               "connect: " + os.strerror(e))
                        continue
                    req, c["want"] = upgrade_request(c["key"])
                    c["sent"] = time.monotonic()
                    try:
                        s.send(req)     # small: all of it or an error
                    except BrokenPipeError:
                        finish(s, "epipe")
                        continue
                    except ConnectionResetError:
                        finish(s, "reset")
                        continue
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                try:
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    finish(s, "reset" if not c["buf"] else "partial", c["buf"])
                    continue
                if d:
                    c["buf"] += d
                    if len(c["buf"]) >= len(c["want"]):
                        finish(s, "ok" if c["buf"] == c["want"] else "wrong", c["buf"])
                    continue
                finish(s, "eof" if not c["buf"] else "partial", c["buf"])
            now = time.monotonic()
            for s in [s for s, c in live.items() if now - c["t0"] > h.scaled(10)]:
                finish(s, "timeout", live[s]["buf"])
    finally:
        for s in list(live):
            finish(s, "unfinished")
        sel.close()


def upgrade_client(port, tag, out, stop, batches=2):
    """Connect, send `batches` pipelined set+get pairs one after the other
    (each after the previous replies), close; again until stop. Appends one
    outcome per batch to out."""
    seq = 0
    while not stop.is_set():
        try:
            s = socket.create_connection((h.HOST, port), timeout=h.scaled(10))
        except ConnectionRefusedError:
            out.append({"first": True, "t_sent": None, "result": "refused", "keys": [], "got": b""})
            continue
        except OSError as e:
            out.append({"first": True, "t_sent": None, "result": "connect: %r" % e, "keys": [],
                        "got": b""})
            continue
        try:
            for i in range(batches):
                keys = ["ut:%s:%d" % (tag, seq), "ut:%s:%d" % (tag, seq + 1)]
                seq += 2
                reqs = [upgrade_request(k) for k in keys]
                want = b"".join(w for _, w in reqs)
                rec = {"first": i == 0, "t_sent": None, "result": None, "keys": keys, "got": b""}
                out.append(rec)
                try:
                    s.sendall(b"".join(r for r, _ in reqs))
                except BrokenPipeError:
                    rec["result"] = "epipe"
                    break
                except ConnectionResetError:
                    rec["result"] = "reset"
                    break
                rec["t_sent"] = time.monotonic()
                got = b""
                try:
                    while len(got) < len(want):
                        d = s.recv(65536)
                        if not d:
                            break
                        got += d
                except ConnectionResetError:
                    rec["result"] = "reset" if not got else "partial"
                except socket.timeout:
                    rec["result"] = "timeout"
                rec["got"] = got[:100]
                if rec["result"] is None:
                    if len(got) < len(want):
                        rec["result"] = "eof" if not got else "partial"
                    else:
                        rec["result"] = "ok" if got == want else "wrong"
                if rec["result"] != "ok":
                    break
        finally:
            s.close()


class OpsTest(h.IntegrationTest):

    def tcp_migrate_req(self):
        path = "/proc/sys/net/ipv4/tcp_migrate_req"
        try:
            with open(path) as f:
                old = f.read().strip()
            if old != "1":
                with open(path, "w") as f:
                    f.write("1\n")
                self.addCleanup(self._restore_sysctl, path, old)
            with open(path) as f:
                now = f.read().strip()
        except OSError as e:
            self.fail("cannot set net.ipv4.tcp_migrate_req = 1 (%s): the binary upgrade "
                      "test needs it (run as root, or in a network namespace that allows it)" % e)
        self.assertEqual(now, "1", "net.ipv4.tcp_migrate_req did not become 1")

    @staticmethod
    def _restore_sysctl(path, old):
        try:
            with open(path, "w") as f:
                f.write(old + "\n")
        except OSError:
            pass

    def pick_spread(self, pool, prefix, idents, n=12):
        """n keys spread evenly over the pool's servers, and {key: server}:
        ketama over servers on random ports may put 11 of 12 fixed keys on
        one server, so the keys are picked from located candidates."""
        cands = spread_keys(prefix, 20 * n)
        where = self.locate(self.cmx, pool, cands)
        per = {s: [k for k in cands if where[k] == s] for s in idents}
        for s in idents:
            self.assertGreaterEqual(len(per[s]), n, "too few candidates on %s" % s)
        keys = [per[idents[i % len(idents)]][i // len(idents)] for i in range(n)]
        return keys, {k: where[k] for k in keys}

    def locate(self, cmx, pool, keys):
        """{key: server identity} from `cachemux -L POOL` on cmx's config."""
        san = h.tmp_dir("sanitizer")
        p = subprocess.run([h.CACHEMUX, "-c", cmx.conf, "-L", pool],
                           input="".join(k + "\n" for k in keys).encode(),
                           capture_output=True, timeout=h.scaled(30), env=h.sanitizer_env(san))
        h.assert_no_sanitizer_reports(san)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = {}
        for line in p.stdout.decode().splitlines():
            k, s = line.rsplit(" ", 1)
            out[k] = s
        self.assertEqual(sorted(out), sorted(keys))
        return out


# --------------------------------------------------------------------------
# 1 and 2: stats JSON and /metrics

class TwoPools(OpsTest):
    """Pool `alpha`: memcached with servers s1, s2 (named); pool `beta`:
    redis with two unnamed servers; 2 workers; metrics_listen on."""

    def setUp(self):
        self.mcs = [self.memcached(name=n) for n in ("s1", "s2")]
        self.rds = [self.redis() for _ in range(2)]
        self.metrics_port = h.free_port()
        self.cmx = self.cachemux(self.pools(), workers=2,
                                 globals_={"metrics_listen": "%s:%d" % (h.HOST, self.metrics_port)})
        self.rd_ident = {"%s:%d" % (h.HOST, r.port): r for r in self.rds}
        self.mc_ident = {m.name: m for m in self.mcs}

    def pools(self):
        return [h.Pool("alpha", self.mcs), h.Pool("beta", self.rds, redis=True)]

    def client(self, pool):
        c = self.cmx.client(pool)
        self.addCleanup(c.close)
        return c

    def wait_clients_gone(self):
        def gone():
            st = stats_json(self.cmx.stats_port)
            return st if all(st[p]["client_connections"] == 0 for p in ("alpha", "beta")) else None
        return wait_for(gone, 5, "client_connections to drop to 0")

    def fragments(self, pool):
        return stats_json(self.cmx.stats_port)[pool]["fragments"]

    def workload(self):
        """A known sequential workload on one client per pool, then close.
        Returns the expected stats: {pool: {"fragments": n, "requests":
        client requests, server: {stat: n}}} for counters, measured over
        this workload only."""
        exp = {}
        # ---- memcached pool alpha
        keys, where = self.pick_spread("alpha", "st:", list(self.mc_ident))
        on = {s: [k for k in keys if where[k] == s] for s in self.mc_ident}
        for s, ks in on.items():
            self.assertGreaterEqual(len(ks), 2, "need 2 keys on %s: %s" % (s, where))
        big = max(on, key=lambda s: len(on[s]))
        self.assertGreaterEqual(len(on[big]), 3)
        vals = {k: "v%d-" % i + "x" * (i * 7 % 23) for i, k in enumerate(keys)}
        srv = {s: dict.fromkeys(SERVER_COUNTERS, 0) for s in self.mc_ident}
        c = self.client("alpha")
        nreq = 0
        for k in keys:                          # N sets
            req = mc_store(k, vals[k])
            self.assertEqual(c.request(req), b"STORED\r\n")
            srv[where[k]]["requests"] += 1
            srv[where[k]]["request_bytes"] += len(req)
            srv[where[k]]["response_bytes"] += 8
            nreq += 1
        for k in keys[:5]:                      # M single gets
            req = b"get %s\r\n" % B(k)
            rep = mc_values([(k, 0, vals[k])])
            self.assertEqual(c.request(req), rep)
            srv[where[k]]["requests"] += 1
            srv[where[k]]["request_bytes"] += len(req)
            srv[where[k]]["response_bytes"] += len(rep)
            nreq += 1
        steps = [self.fragments("alpha")]
        a, b = list(self.mc_ident)
        mk = [on[a][0], on[b][0], on[a][1], on[b][1]]   # multi-get over both servers
        self.assertEqual(c.request(b"get %s\r\n" % " ".join(mk).encode()),
                         mc_values([(k, 0, vals[k]) for k in mk]))
        for s in (a, b):
            ks = [k for k in mk if where[k] == s]
            srv[s]["requests"] += 1
            srv[s]["request_bytes"] += len(b"get %s\r\n" % " ".join(ks).encode())
            srv[s]["response_bytes"] += len(mc_values([(k, 0, vals[k]) for k in ks]))
        nreq += 1
        steps.append(self.fragments("alpha"))
        one = on[big][:3]                       # multi-get over one server: forwarded whole
        req = b"get %s\r\n" % " ".join(one).encode()
        rep = mc_values([(k, 0, vals[k]) for k in one])
        self.assertEqual(c.request(req), rep)
        steps.append(self.fragments("alpha"))
        srv[big]["requests"] += 1
        srv[big]["request_bytes"] += len(req)
        srv[big]["response_bytes"] += len(rep)
        nreq += 1
        for s in srv:
            srv[s]["responses"] = srv[s]["requests"]
        c.close()
        exp["alpha"] = dict(srv, fragments=2, requests=nreq, where=where,
                            fragment_steps=[y - x for x, y in zip(steps, steps[1:])])

        # ---- redis pool beta
        keys, where = self.pick_spread("beta", "rs:", list(self.rd_ident))
        on = {s: [k for k in keys if where[k] == s] for s in self.rd_ident}
        for s, ks in on.items():
            self.assertGreaterEqual(len(ks), 2, "need 2 keys on %s: %s" % (s, where))
        big = max(on, key=lambda s: len(on[s]))
        self.assertGreaterEqual(len(on[big]), 3)
        vals = {k: "r%d-" % i + "y" * (i * 5 % 17) for i, k in enumerate(keys)}
        srv = {s: dict.fromkeys(SERVER_COUNTERS, 0) for s in self.rd_ident}
        c = self.client("beta")
        nreq = 0
        for k in keys:
            req = h.resp_command("SET", k, vals[k])
            self.assertEqual(c.resp("SET", k, vals[k]), b"+OK\r\n")
            srv[where[k]]["requests"] += 1
            srv[where[k]]["request_bytes"] += len(req)
            srv[where[k]]["response_bytes"] += 5
            nreq += 1
        for k in keys[:5]:
            req = h.resp_command("GET", k)
            rep = bulk(vals[k])
            self.assertEqual(c.resp("GET", k), rep)
            srv[where[k]]["requests"] += 1
            srv[where[k]]["request_bytes"] += len(req)
            srv[where[k]]["response_bytes"] += len(rep)
            nreq += 1
        steps = [self.fragments("beta")]
        a, b = list(self.rd_ident)
        mk = [on[a][0], on[b][0], on[a][1], on[b][1]]
        self.assertEqual(c.resp("MGET", *mk), b"*4\r\n" + b"".join(bulk(vals[k]) for k in mk))
        for s in (a, b):
            ks = [k for k in mk if where[k] == s]
            srv[s]["requests"] += 1
            srv[s]["request_bytes"] += len(h.resp_command("MGET", *ks))
            srv[s]["response_bytes"] += len(b"*%d\r\n" % len(ks) + b"".join(bulk(vals[k]) for k in ks))
        nreq += 1
        steps.append(self.fragments("beta"))
        one = on[big][:3]
        rep = b"*3\r\n" + b"".join(bulk(vals[k]) for k in one)
        self.assertEqual(c.resp("MGET", *one), rep)
        steps.append(self.fragments("beta"))
        srv[big]["requests"] += 1
        srv[big]["request_bytes"] += len(h.resp_command("MGET", *one))
        srv[big]["response_bytes"] += len(rep)
        nreq += 1
        for s in srv:
            srv[s]["responses"] = srv[s]["requests"]
        c.close()
        exp["beta"] = dict(srv, fragments=2, requests=nreq, where=where,
                           fragment_steps=[y - x for x, y in zip(steps, steps[1:])])
        return exp

    # ---- 1

    @h.requires("nutcracker")
    def test_stats_json_shape_matches_nutcracker(self):
        nut = self.nutcracker(self.pools())
        mine = stats_json(self.cmx.stats_port)
        ref = stats_json(nut.stats_port)
        self.assertEqual(mine["service"], "cachemux")
        self.assertEqual(ref["service"], "nutcracker")

        def shape(doc, path="top"):
            """[(path, key order, value types)] at every level."""
            out = [(path, list(doc), [type(v).__name__ for v in doc.values()])]
            for k, v in doc.items():
                if isinstance(v, dict):
                    out += shape(v, path + "/" + k)
            return out

        self.assertEqual(shape(mine), shape(ref))
        self.assertEqual(mine["source"], socket.gethostname())
        self.assertLessEqual(abs(mine["timestamp"] - time.time()), 5)
        self.assertTrue(0 <= mine["uptime"] <= 60, mine["uptime"])
        self.assertEqual(list(mine)[:len(TOP_KEYS)], list(TOP_KEYS))
        for pool in ("alpha", "beta"):
            self.assertEqual(list(mine[pool])[:len(POOL_STATS)], list(ref[pool])[:len(POOL_STATS)])
            self.assertEqual(set(list(mine[pool])[:len(POOL_STATS)]), set(POOL_STATS))
        for s in self.mc_ident:
            self.assertEqual(set(mine["alpha"][s]), set(SERVER_STATS))
        for s in self.rd_ident:
            self.assertEqual(set(mine["beta"][s]), set(SERVER_STATS))

    def test_stats_json_counts_after_workload(self):
        before = stats_json(self.cmx.stats_port)
        for pool in ("alpha", "beta"):
            for s, v in before[pool].items():
                if isinstance(v, dict):
                    for k in SERVER_COUNTERS:
                        self.assertEqual(v[k], 0, "fresh instance: %s/%s/%s" % (pool, s, k))
        backends = dict(self.mc_ident, **self.rd_ident)
        bytes0 = {s: backend_bytes_read(b) for s, b in backends.items()}
        exp = self.workload()
        after = self.wait_clients_gone()
        bytes1 = {s: backend_bytes_read(b) for s, b in backends.items()}
        self.assertEqual(after["service"], "cachemux")
        nserver_conns = 0
        for pool, idents in (("alpha", self.mc_ident), ("beta", self.rd_ident)):
            st, st0, e = after[pool], before[pool], exp[pool]
            self.assertEqual(st["fragments"] - st0["fragments"], e["fragments"], pool + " fragments")
            self.assertEqual(e["fragment_steps"], [2, 0],
                             pool + ": fragments added by a multi-get over 2 servers, then over 1")
            self.assertEqual(st["client_connections"], 0, pool)
            self.assertEqual(st["client_eof"] - st0["client_eof"], 1, pool + " client_eof")
            self.assertEqual(st["client_err"] - st0["client_err"], 0, pool + " client_err")
            self.assertEqual(st["forward_error"], 0, pool)
            self.assertEqual(st["server_ejects"], 0, pool)
            for s in idents:
                got = {k: st[s][k] - st0[s][k] for k in SERVER_COUNTERS}
                want = dict(e[s], server_eof=0, server_err=0, server_timedout=0)
                self.assertEqual(got, want, "%s/%s" % (pool, s))
                # what the backend itself read equals request_bytes
                self.assertEqual(bytes1[s] - bytes0[s] - read_overhead(backends[s]), got["request_bytes"],
                                 "%s/%s: bytes the backend read vs request_bytes" % (pool, s))
                # one worker served the one client: one conn per server
                self.assertEqual(st[s]["server_connections"], 1, "%s/%s" % (pool, s))
                for k in ("in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes",
                          "server_ejected_at"):
                    self.assertEqual(st[s][k], 0, "%s/%s/%s" % (pool, s, k))
                nserver_conns += st[s]["server_connections"]
        # listeners: one per pool per worker; no client left
        self.assertEqual(after["curr_connections"], 2 * 2 + 0 + nserver_conns)
        self.assertEqual(after["total_connections"] - before["total_connections"], 2 + nserver_conns,
                         "total_connections: 2 clients and the server conns they caused")
        # open clients count too (idle ones: no new server conns)
        idle = [self.client("alpha") for _ in range(3)] + [self.client("beta") for _ in range(2)]
        for c in idle:
            self.assertTrue(c.quiet(0.01))
        now = wait_for(lambda: (lambda j: j if (j["alpha"]["client_connections"],
                                                j["beta"]["client_connections"]) == (3, 2) else None)(
            stats_json(self.cmx.stats_port)), 5, "client_connections 3 and 2")
        self.assertEqual(now["curr_connections"], 2 * 2 + 5 + nserver_conns)
        for c in idle:
            c.close()
        # the keys are where -L said (on the backends themselves)
        for pool, idents in (("alpha", self.mc_ident), ("beta", self.rd_ident)):
            for k, s in exp[pool]["where"].items():
                if pool == "alpha":
                    held = [n for n, m in idents.items() if m.get(k) is not None]
                else:
                    held = [n for n, r in idents.items()
                            if r.client().resp("EXISTS", k) == b":1\r\n"]
                self.assertEqual(held, [s], "%s key %s" % (pool, k))

    # ---- 2

    def test_metrics_format_and_counts(self):
        ctype, fams0 = scrape(self.metrics_port)
        self.assertRegex(ctype or "", r"^text/plain; ?version=0\.0\.4(; ?charset=utf-8)?$")
        exp = self.workload()
        self.wait_clients_gone()
        js = stats_json(self.cmx.stats_port)
        ctype, fams = scrape(self.metrics_port)
        js2 = stats_json(self.cmx.stats_port)
        # idle: the JSON did not move around the scrape
        for pool in ("alpha", "beta"):
            self.assertEqual(js[pool], js2[pool])
        # every pool and server stat, with the JSON's value
        for st in POOL_STATS:
            name = "cachemux_" + st + ("_total" if st in POOL_COUNTERS else "")
            self.assertIn(name, fams)
            self.assertEqual(fams[name].type, "counter" if st in POOL_COUNTERS else "gauge", name)
            self.assertEqual(len(fams[name].samples), 2, name)
            for pool in ("alpha", "beta"):
                self.assertEqual(metric(fams, name, pool=pool), js[pool][st], "%s %s" % (name, pool))
        for st in SERVER_STATS:
            name = "cachemux_" + st + ("_total" if st in SERVER_COUNTERS else "")
            self.assertIn(name, fams)
            self.assertEqual(fams[name].type, "counter" if st in SERVER_COUNTERS else "gauge", name)
            # server_connections of a Redis pool: one sample per protocol
            # version (proto label), summing to the JSON's
            split = st == "server_connections"
            self.assertEqual(len(fams[name].samples), 6 if split else 4, name)
            for pool, idents in (("alpha", self.mc_ident), ("beta", self.rd_ident)):
                for s in idents:
                    if split and pool == "beta":
                        got = sum(metric(fams, name, pool=pool, server=s, proto=v)
                                  for v in ("resp2", "resp3"))
                    else:
                        got = metric(fams, name, pool=pool, server=s)
                    self.assertEqual(got, js[pool][s][st], "%s %s/%s" % (name, pool, s))
        # the workload's numbers
        for pool, idents in (("alpha", self.mc_ident), ("beta", self.rd_ident)):
            self.assertEqual(metric(fams, "cachemux_fragments_total", pool=pool)
                             - metric(fams0, "cachemux_fragments_total", pool=pool), 2)
            self.assertEqual(metric(fams, "cachemux_client_connections", pool=pool), 0)
            for s in idents:
                for st in ("requests", "request_bytes", "responses", "response_bytes"):
                    n = "cachemux_%s_total" % st
                    self.assertEqual(metric(fams, n, pool=pool, server=s)
                                     - metric(fams0, n, pool=pool, server=s), exp[pool][s][st],
                                     "%s %s/%s" % (n, pool, s))
            # latency: one observation per client request (pool), one per
            # request sent to a server, fragments included (server)
            _, _, n1 = histogram(fams, "cachemux_request_duration_seconds", pool=pool)
            _, _, n0 = histogram(fams0, "cachemux_request_duration_seconds", pool=pool)
            self.assertEqual(n1 - n0, exp[pool]["requests"], pool)
            for s in idents:
                _, _, n1 = histogram(fams, "cachemux_server_request_duration_seconds", pool=pool, server=s)
                _, _, n0 = histogram(fams0, "cachemux_server_request_duration_seconds", pool=pool, server=s)
                self.assertEqual(n1 - n0, exp[pool][s]["requests"], "%s/%s" % (pool, s))
        # per worker: 2 workers, every client request counted once
        self.assertEqual(fams["cachemux_worker_client_connections"].type, "gauge")
        self.assertEqual(fams["cachemux_worker_requests_total"].type, "counter")
        wl = sorted(l["worker"] for _, l, _ in fams["cachemux_worker_requests_total"].samples)
        self.assertEqual(wl, ["0", "1"])
        for w in ("0", "1"):
            self.assertEqual(metric(fams, "cachemux_worker_client_connections", worker=w), 0)
        done = sum(metric(fams, "cachemux_worker_requests_total", worker=w)
                   - metric(fams0, "cachemux_worker_requests_total", worker=w) for w in ("0", "1"))
        self.assertEqual(done, exp["alpha"]["requests"] + exp["beta"]["requests"])
        # fixed buckets, 50 us .. 10 s
        for fam in ("cachemux_request_duration_seconds", "cachemux_server_request_duration_seconds"):
            self.assertEqual(fams[fam].type, "histogram")
            labels = {k: v for k, v in fams[fam].samples[0][1].items() if k != "le"}
            bk, _, _ = histogram(fams, fam, **labels)
            finite = sorted(x for x in bk if x != math.inf)
            self.assertAlmostEqual(finite[0], 50e-6, places=9)
            self.assertAlmostEqual(finite[-1], 10.0, places=9)

    def scrape_settled(self, fams0, n):
        """A scrape once beta's request histogram holds n more observations
        than in fams0. A request is observed once its reply is written, so
        the client may read the reply a moment before the observation."""
        def settled():
            _, f = scrape(self.metrics_port)
            _, _, c1 = histogram(f, "cachemux_request_duration_seconds", pool="beta")
            _, _, c0 = histogram(fams0, "cachemux_request_duration_seconds", pool="beta")
            return f if c1 - c0 >= n else None
        return wait_for(settled, 5, "%d more observations in the beta histogram" % n)

    def test_histograms_slow_and_fast(self):
        # two keys, one per redis server; EVAL routes by its first key
        keys = spread_keys("hk:", 12)
        where = self.locate(self.cmx, "beta", keys)
        by = {}
        for k in keys:
            by.setdefault(where[k], k)
        self.assertEqual(len(by), 2, where)
        c = self.client("beta")
        _, before_sets = scrape(self.metrics_port)
        for k in by.values():
            self.assertEqual(c.resp("SET", k, "v"), b"+OK\r\n")
        script = lua_busy_ms(20)
        fams0 = self.scrape_settled(before_sets, len(by))   # the SETs observed, not later
        nslow = 6
        t0 = time.time()
        for i in range(nslow):
            k = list(by.values())[i % 2]
            self.assertEqual(c.resp("EVAL", script, "1", k), b":1\r\n")
        self.assertGreaterEqual(time.time() - t0, nslow * 0.02)
        fams1 = self.scrape_settled(fams0, nslow)
        nfast = 40
        # cachemux times a request from parsed to reply written, inside the
        # client's round trip: a GET whose round trip took < 5 ms must be in
        # a bucket < 5 ms. (Asserting all 40 < 5 ms would fail whenever the
        # 2-core test machine stalls the client or cachemux for a moment.)
        quick = {s: 0 for s in by}
        for i in range(nfast):
            s = list(by)[i % 2]
            t = time.monotonic()
            self.assertEqual(c.resp("GET", by[s]), b"$1\r\nv\r\n")
            if time.monotonic() - t < 0.005:
                quick[s] += 1
        fams2 = self.scrape_settled(fams1, nfast)
        self.assertGreaterEqual(sum(quick.values()), nfast // 2,
                                "fewer than half of the GETs took < 5 ms end to end: %s" % quick)

        def delta(fa, fb, name, **labels):
            b1, s1, n1 = histogram(fb, name, **labels)
            b0, s0, n0 = histogram(fa, name, **labels)
            self.assertEqual(sorted(b1), sorted(b0))
            return {le: b1[le] - b0[le] for le in b1}, s1 - s0, n1 - n0

        # the requests alternate between the two keys, starting with the first
        first = list(by)[0]
        series = [("cachemux_request_duration_seconds", {"pool": "beta"}, nslow, nfast,
                   sum(quick.values()))] + [
            ("cachemux_server_request_duration_seconds", {"pool": "beta", "server": s},
             (nslow + 1) // 2 if s == first else nslow // 2,
             (nfast + 1) // 2 if s == first else nfast // 2, quick[s]) for s in by]
        for name, labels, ns, nf, nq in series:
            d, dsum, dn = delta(fams0, fams1, name, **labels)
            what = "%s%s slow" % (name, labels)
            self.assertEqual(dn, ns, what)
            self.assertEqual(d[math.inf], ns, what)
            below = [le for le in d if le < 0.02]
            self.assertTrue(below, what)
            for le in below:
                self.assertEqual(d[le], 0, "%s: %d requests of >= 20 ms in bucket le=%g"
                                 % (what, d[le], le))
            # and not absurdly high either (a generous bound: only a sanity check)
            self.assertEqual(d[1.0], ns, what + ": a 20 ms request observed above 1 s")
            self.assertGreaterEqual(dsum, ns * 0.02, what + " _sum")
            d, dsum, dn = delta(fams1, fams2, name, **labels)
            what = "%s%s fast" % (name, labels)
            self.assertEqual(dn, nf, what)
            self.assertGreaterEqual(d[0.005], nq, "%s: %d GETs answered within 5 ms end to end, "
                                    "%d in buckets < 5 ms: %s" % (what, nq, d[0.005], d))
            self.assertEqual(d[1.0], nf, what + ": a GET observed above 1 s")

    def test_healthz_and_404(self):
        st, ctype, body = http_get(self.metrics_port, "/healthz")
        self.assertEqual((st, body.strip()), (200, b"ok"))
        for path in ("/", "/metrics/x", "/health", "/healthz/x", "/nope", "/METRICS"):
            st, _, _ = http_get(self.metrics_port, path)
            self.assertEqual(st, 404, path)
        st, _, body = http_get(self.metrics_port, "/metrics")
        self.assertEqual(st, 200)
        parse_prometheus(body.decode())


class PromParserSelfTest(h.IntegrationTest):
    """The parser above rejects what it must (a parser that accepts anything
    would prove nothing)."""

    GOOD = ('# HELP a_total x\n# TYPE a_total counter\na_total{pool="p"} 3\n'
            '# HELP h y\n# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="0.5"} 1\n'
            'h_bucket{le="+Inf"} 2\n'
            'h_sum 0.3\nh_count 2\n')

    def test_parser(self):
        parse_prometheus(self.GOOD)
        bad = [
            self.GOOD.replace("# TYPE a_total counter\n", ""),                 # no TYPE
            self.GOOD.replace("h_count 2", "h_count 3"),                       # count != +Inf
            self.GOOD.replace('h_bucket{le="0.1"} 1', 'h_bucket{le="0.1"} 5'),  # not cumulative
            self.GOOD.replace('le="0.5"', 'le="0.05"'),                        # le not increasing
            self.GOOD.replace('le="0.5"', 'le="0.1"'),                         # le repeated
            self.GOOD.replace('{pool="p"}', '{pool=p}'),                        # unquoted
            self.GOOD.replace('{pool="p"}', '{pool="p",pool="q"}'),             # duplicate label
            self.GOOD + 'a_total{pool="p"} 4\n',                               # not contiguous
            self.GOOD.replace("a_total{pool=\"p\"} 3", "a_total{pool=\"p\"} x"),  # value
            self.GOOD.rstrip("\n"),                                            # no final newline
            self.GOOD.replace('h_bucket{le="+Inf"} 2\n', ''),                  # no +Inf
            self.GOOD + "# TYPE b gauge\nb 1\nb 2\n",                          # duplicate series
        ]
        for i, t in enumerate(bad):
            with self.assertRaises(PromError, msg="bad case %d accepted" % i):
                parse_prometheus(t)


# --------------------------------------------------------------------------
# 3

class WorkersShareLoad(OpsTest):

    def test_400_clients_4_workers(self):
        mcs = [self.memcached(name=n) for n in ("s1", "s2")]
        mport = h.free_port()
        cmx = self.cachemux([h.Pool("alpha", mcs)], workers=4, verbose=5,
                            globals_={"metrics_listen": "%s:%d" % (h.HOST, mport)})
        _, fams0 = scrape(mport)
        nclients, rounds = 400, 8
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(nclients):
            s = socket.create_connection((h.HOST, cmx.port()), timeout=h.scaled(10))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            socks.append(s)
        keys = ["wk%d:%s" % (i, hashlib.md5(b"%d" % i).hexdigest()[:6]) for i in range(nclients)]
        sel = selectors.DefaultSelector()
        total = 0
        for r in range(rounds):
            want = {}
            for i, s in enumerate(socks):
                if r % 2 == 0:
                    req, rep = mc_store(keys[i], "r%d" % r), b"STORED\r\n"
                else:
                    req, rep = b"get %s\r\n" % B(keys[i]), mc_values([(keys[i], 0, "r%d" % (r - 1))])
                s.setblocking(True)
                s.sendall(req)
                s.setblocking(False)
                want[s] = (rep, bytearray())
                sel.register(s, selectors.EVENT_READ)
                total += 1
            deadline = time.time() + h.scaled(20)
            while want:
                if time.time() > deadline:
                    self.fail("round %d: %d clients without a reply" % (r, len(want)))
                for key, _ in sel.select(timeout=0.5):
                    s = key.fileobj
                    d = s.recv(65536)
                    self.assertTrue(d, "a client was closed")
                    rep, got = want[s]
                    got += d
                    if len(got) >= len(rep):
                        self.assertEqual(bytes(got), rep)
                        sel.unregister(s)
                        del want[s]
        sel.close()
        _, fams = scrape(mport)
        workers = sorted(l["worker"] for _, l, _ in fams["cachemux_worker_requests_total"].samples)
        self.assertEqual(workers, ["0", "1", "2", "3"])
        done = {w: metric(fams, "cachemux_worker_requests_total", worker=w)
                - metric(fams0, "cachemux_worker_requests_total", worker=w) for w in workers}
        conns = {w: metric(fams, "cachemux_worker_client_connections", worker=w) for w in workers}
        self.assertEqual(sum(done.values()), total, done)
        self.assertEqual(sum(conns.values()), nclients, conns)
        sys.stdout.write("  [requests per worker %s, clients per worker %s] "
                         % ([int(done[w]) for w in workers], [int(conns[w]) for w in workers]))
        busy = [w for w in workers if done[w] >= 0.10 * total]
        self.assertGreaterEqual(len(busy), 3, "requests per worker: %s (of %d)" % (done, total))
        # the backends see distinct connections from cachemux
        mine = proc_tcp_ports(cmx.proc.pid)
        js = stats_json(cmx.stats_port)
        for m in mcs:
            seen = memcached_conn_ports(m) & mine
            self.assertGreaterEqual(len(seen), 3 * 1, "%s sees %d connections from cachemux"
                                    % (m.name, len(seen)))
            self.assertEqual(js["alpha"][m.name]["server_connections"], len(seen), m.name)


    def test_pool_served_by_fewer_workers(self):
        """A pool's workers = 1 on a 4-worker process: every client of it on
        worker 0, its backend sees one connection; another pool uses every
        worker; a reload to workers = 4 spreads its new clients again."""
        rds = [self.redis(name=n) for n in ("r1", "r2")]
        mport = h.free_port()
        one = h.Pool("one", [rds[0]], redis=True, workers=1)
        every = h.Pool("every", [rds[1]], redis=True)
        cmx = self.cachemux([one, every], workers=4,
                            globals_={"metrics_listen": "%s:%d" % (h.HOST, mport)})
        def clients(pool, n):
            cs = [h.Client(cmx.port(pool)) for _ in range(n)]
            self.addCleanup(lambda: [c.close() for c in cs])
            for i, c in enumerate(cs):
                self.assertEqual(c.resp("SET", "k%d" % i, "v"), b"+OK\r\n")
            return cs
        a = clients("one", 40)
        b = clients("every", 40)
        conns = {}
        for f in ("one", "every"):
            tags = accept_workers(cmx, [c.local_port for c in (a if f == "one" else b)], f)
            conns[f] = sorted(set(tags.values()))
        self.assertEqual(conns["one"], ["w0"], conns)
        self.assertGreaterEqual(len(conns["every"]), 3, conns)
        js = stats_json(cmx.stats_port)
        self.assertEqual(js["one"]["r1"]["server_connections"], 1)
        self.assertGreaterEqual(js["every"]["r2"]["server_connections"], 3)
        self.assertIn("pool one: listening on", cmx.log_text())
        self.assertRegex(cmx.log_text(), r"pool one: listening on \S+ \([^)]*, 1 workers\)")
        # the other workers drop the pool on a reload that widens it back... and
        # serve it once it does
        one.keys["workers"] = 4
        cmx.reload(pools=[one, every])
        c = clients("one", 40)
        tags = accept_workers(cmx, [x.local_port for x in c], "one")
        self.assertGreaterEqual(len(set(tags.values())), 3, tags)
        for x in a + c:     # the clients from before the reload are served too
            self.assertEqual(x.resp("GET", "k0"), b"$1\r\nv\r\n")
        # and narrowed again: workers 1-3 retire the pool, their clients close
        # at a request boundary, worker 0 keeps serving
        one.keys["workers"] = 1
        cmx.reload(pools=[one, every])
        d = clients("one", 20)
        tags = accept_workers(cmx, [x.local_port for x in d], "one")
        self.assertEqual(sorted(set(tags.values())), ["w0"], tags)


# --------------------------------------------------------------------------
# 4

class Logging(OpsTest):

    def setUp(self):
        self.mc = self.memcached(name="s1")
        self.cmx = self.cachemux([h.Pool("alpha", [self.mc])], workers=2, verbose=5)

    def accepted(self, text, port):
        return re.search(r"accepted client 127\.0\.0\.1:%d on pool alpha" % port, text) is not None

    def round_trip(self):
        """A client that does one request; returns its local port (kept open
        until the test ends, so its log line cannot be missed)."""
        c = self.cmx.client()
        self.addCleanup(c.close)
        self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ")
        return c.local_port

    def test_sigusr1_reopens_log(self):
        log = self.cmx.log
        old = log + ".1"
        os.rename(log, old)
        pid = self.cmx.proc.pid
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: os.path.exists(log), 5, "a new %s after SIGUSR1" % log)
        h.note_log("cachemux (new file)", log)
        h.note_log("cachemux (rotated)", old)
        os.kill(pid, signal.SIGTTIN)
        wait_for(lambda: "log level raised to 6" in h.read_text(log), 5, "the SIGTTIN notice")
        port = self.round_trip()
        wait_for(lambda: self.accepted(h.read_text(log), port), 5, "accepted client line in the new log")
        os.kill(pid, signal.SIGTTOU)
        wait_for(lambda: "log level lowered to 5" in h.read_text(log), 5, "the SIGTTOU notice")
        new, rotated = h.read_text(log), h.read_text(old)
        self.assertRegex(rotated, r"\bready\b")
        self.assertNotRegex(new, r"\bready\b")
        for text in ("log level raised", "log level lowered", "accepted client"):
            self.assertNotIn(text, rotated, "written to the rotated file after SIGUSR1")
        # and a second rotation works the same
        os.rename(log, log + ".2")
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: os.path.exists(log), 5, "a new %s after the second SIGUSR1" % log)
        os.kill(pid, signal.SIGTTIN)
        wait_for(lambda: "log level raised to 6" in h.read_text(log), 5, "the SIGTTIN notice")
        self.assertNotIn("raised", h.read_text(log + ".2").split("lowered to 5")[-1])

    def test_sigttin_sigttou_change_level(self):
        pid = self.cmx.proc.pid
        log = self.cmx.log
        p1 = self.round_trip()
        time.sleep(h.scaled(0.2))
        self.assertFalse(self.accepted(h.read_text(log), p1), "info line logged at -v 5")
        os.kill(pid, signal.SIGTTIN)
        wait_for(lambda: "log level raised to 6" in h.read_text(log), 5, "the SIGTTIN notice")
        p2 = self.round_trip()
        wait_for(lambda: self.accepted(h.read_text(log), p2), 5, "accepted client line at level 6")
        os.kill(pid, signal.SIGTTOU)
        wait_for(lambda: "log level lowered to 5" in h.read_text(log), 5, "the SIGTTOU notice")
        p3 = self.round_trip()
        time.sleep(h.scaled(0.2))
        self.assertFalse(self.accepted(h.read_text(log), p3), "info line logged after SIGTTOU")
        # down to 4 (warn): the notice about it is itself below the level
        os.kill(pid, signal.SIGTTOU)
        time.sleep(h.scaled(0.3))
        os.kill(pid, signal.SIGTTIN)
        wait_for(lambda: "log level raised to 5" in h.read_text(log), 5, "raised back to 5")
        self.assertNotIn("log level lowered to 4", h.read_text(log))


# --------------------------------------------------------------------------
# 5

class GracefulStop(OpsTest):

    def wait_exit(self, cmx, timeout):
        """Seconds until cmx's process exits (fails after timeout)."""
        t0 = time.time()
        try:
            cmx.proc.wait(timeout=h.scaled(timeout))
        except subprocess.TimeoutExpired:
            self.fail("cachemux still running %.1fs after SIGTERM" % h.scaled(timeout))
        return time.time() - t0

    def test_sigterm_under_load(self):
        mcs = [self.memcached(name=n) for n in ("s1", "s2")]
        pidfile = h.tmp_path("graceful.pid")
        cmx = self.cachemux([h.Pool("alpha", mcs)], workers=2, verbose=5,
                            globals_={"shutdown_timeout": 10000}, extra_args=["-p", pidfile])
        self.assertEqual(int(h.read_text(pidfile).strip()), cmx.proc.pid)
        nclients, pairs = 50, 5
        term = [None]
        results = [None] * nclients
        started = threading.Barrier(nclients + 1)

        def run(t):
            # (batches answered before/after, failures, outcome)
            res = {"ok_before": 0, "ok_after": 0, "in_flight": 0, "bad": [], "end": None}
            results[t] = res
            try:
                c = h.Client(cmx.port(), timeout=15)
            except OSError as e:
                res["bad"].append("connect: %s" % e)
                started.wait()
                return
            started.wait()
            seq = 0
            try:
                while True:
                    reqs, reps = b"", []
                    for j in range(pairs):
                        k = "gs:%d:%d" % (t, j)
                        v = "%d-%d-%s" % (t, seq, "z" * (seq % 50))
                        reqs += mc_store(k, v) + b"get %s\r\n" % B(k)
                        reps += [b"STORED\r\n", mc_values([(k, 0, v)])]
                    seq += 1
                    try:
                        c.send(reqs)
                    except OSError as e:
                        res["end"] = "send: %s" % e
                        return
                    t_sent = time.monotonic()
                    got = []
                    try:
                        got = c.read_replies(len(reps), timeout=15)
                        closed = None
                    except h.Closed as e:
                        closed = e
                        got, rest = h.split_mc_replies(e.data)
                        if rest:
                            res["bad"].append("partial reply %r" % rest[:100])
                    except OSError as e:
                        closed = e
                    for g, w in zip(got, reps):
                        if g != w:
                            res["bad"].append("wrong reply %r for %r" % (g[:80], w[:80]))
                    if closed is None:
                        before = term[0] is None or t_sent < term[0]
                        res["ok_before" if before else "ok_after"] += 1
                        if before and term[0] is not None:
                            res["in_flight"] += 1   # sent before SIGTERM, answered after
                        continue
                    if term[0] is None or t_sent < term[0]:
                        res["bad"].append("batch sent before SIGTERM got %d of %d replies (%s)"
                                          % (len(got), len(reps), closed))
                    res["end"] = str(closed)
                    return
            finally:
                c.close()

        threads = start_threads(run, nclients)
        started.wait()
        wait_for(lambda: all(r is not None and r["ok_before"] >= 2 for r in results), 20,
                 "every client to complete 2 batches")
        term[0] = time.monotonic()
        os.kill(cmx.proc.pid, signal.SIGTERM)
        self.wait_exit(cmx, 12)
        for th in threads:
            th.join(h.scaled(20))
            self.assertFalse(th.is_alive(), "a client thread is stuck")
        cmx.stop()      # exit status 0, no sanitizer report
        bad = [(t, b) for t, r in enumerate(results) for b in r["bad"]]
        inflight = sum(r["in_flight"] for r in results)
        sys.stdout.write("  [%d batches of %d requests answered, %d of them in flight at SIGTERM, "
                         "%d sent after it answered] " % (sum(r["ok_before"] for r in results),
                                                          2 * pairs, inflight,
                                                          sum(r["ok_after"] for r in results)))
        self.assertEqual(bad, [], "failed requests")
        self.assertGreaterEqual(sum(r["ok_before"] for r in results), nclients * 2)
        self.assertGreater(inflight, 0, "no batch was in flight at SIGTERM: the test proved nothing")
        self.assertFalse(os.path.exists(pidfile), "pid file left after SIGTERM")

    def test_requests_queued_before_sigterm_are_answered(self):
        """Requests that reached cachemux's sockets before SIGTERM, on
        connections it has accepted and on connections still in its
        listeners' accept queues (doc/design.md 9: drained "so they are served"),
        are all answered. cachemux is frozen (SIGSTOP) while the clients
        connect and send, then gets SIGTERM and SIGCONT. Which of its threads
        runs first after SIGCONT varies, so the round is repeated (3 fresh
        instances) to make a wrong order likely to be met."""
        mc = self.memcached(name="s1")
        for rnd in range(3):
            lost = self.queued_round(mc, rnd)
            self.assertEqual(lost, {}, "round %d: requests sent before SIGTERM and not answered, "
                             "by connection state" % rnd)

    def queued_round(self, mc, rnd):
        cmx = h.Cachemux([h.Pool("alpha", [mc])], workers=2, verbose=5,
                         globals_={"shutdown_timeout": 10000}).start()
        try:
            old = [self.cmx_client(cmx) for _ in range(6)]
            for c in old:
                self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ")
            pid = cmx.proc.pid
            os.kill(pid, signal.SIGSTOP)
            try:
                wait_for(lambda: all_threads_stopped(pid), 5, "cachemux to stop (SIGSTOP)")
                new = [self.cmx_client(cmx) for _ in range(20)]   # completed by the kernel
                clients = [("accepted", c) for c in old] + [("queued", c) for c in new]
                for i, (_, c) in enumerate(clients):
                    c.send(mc_store("q%d:%d" % (rnd, i), "v") + b"get q%d:%d\r\n" % (rnd, i))
                time.sleep(0.1)
                os.kill(pid, signal.SIGTERM)
            finally:
                os.kill(pid, signal.SIGCONT)
            lost = {}
            for i, (kind, c) in enumerate(clients):
                want = b"STORED\r\n" + mc_value("q%d:%d" % (rnd, i), "v")
                got, how = recv_raw(c.sock, len(want), 10)
                if got != want:
                    stored = mc.get("q%d:%d" % (rnd, i)) is not None
                    lost.setdefault(kind, []).append("%s after %r (%s)" % (
                        how, got[:40], "executed" if stored else "not executed"))
            self.wait_exit(cmx, 15)
        finally:
            cmx.stop()
        return lost

    def test_half_sent_5mib_set_completes(self):
        rd = self.redis()
        cmx = self.cachemux([h.Pool("beta", [rd], redis=True)], workers=2, verbose=5,
                            globals_={"shutdown_timeout": 10000})
        c = self.cmx_client(cmx)
        other = self.cmx_client(cmx)        # an idle client: closed at once
        self.assertEqual(other.resp("PING"), b"+PONG\r\n")
        value = b"".join(b"%07d|" % i for i in range(5 * 1024 * 1024 // 8))
        self.assertEqual(len(value), 5 * 1024 * 1024)
        req = h.resp_command("SET", "bigkey", value)
        half = len(req) // 2
        c.send(req[:half])
        time.sleep(h.scaled(0.3))
        os.kill(cmx.proc.pid, signal.SIGTERM)
        self.assertClosed(other, 5, "idle client after SIGTERM")
        time.sleep(h.scaled(0.3))
        self.assertTrue(cmx.alive, "cachemux exited with a request half received")
        c.send(req[half:])
        self.assertEqual(c.read_resp(1, timeout=15), [b"+OK\r\n"])
        self.assertClosed(c, 10, "client after its in-flight request was answered")
        self.wait_exit(cmx, 15)
        cmx.stop()
        self.assertEqual(rd.client().resp("STRLEN", "bigkey"), b":%d\r\n" % len(value))

    def test_connected_client_first_request_after_sigterm(self):
        """A client accepted before SIGTERM whose first request arrives just
        after it (a connect completes, the send is still on its way) is
        served, not reset: it never had a request refused. One that never
        sends is closed once the first-request grace (1 s) is over, not
        kept until shutdown_timeout; a client that has been served closes
        at once."""
        mc = self.memcached(name="s1")
        cmx = self.cachemux([h.Pool("alpha", [mc])], workers=2, verbose=6,
                            globals_={"shutdown_timeout": 20000})
        fresh = [h.Client(cmx.port(), timeout=15) for _ in range(8)]
        silent = h.Client(cmx.port(), timeout=15)
        used = self.cmx_client(cmx)
        for c in fresh + [silent]:
            self.addCleanup(c.close)
        self.assertEqual(used.request(b"version\r\n")[:8], b"VERSION ")
        ports = {c.sock.getsockname()[1] for c in fresh + [silent, used]}
        wait_for(lambda: ports <= {int(p) for p in re.findall(
            r"accepted client 127\.0\.0\.1:(\d+) on pool alpha", h.read_text(cmx.log))}, 5,
                 "cachemux to accept the 10 clients")
        t0 = time.time()
        os.kill(cmx.proc.pid, signal.SIGTERM)
        self.assertClosed(used, 5, "a client already served, idle at SIGTERM")
        time.sleep(h.scaled(0.3))
        for i, c in enumerate(fresh):
            c.send(mc_store("fr:%d" % i, "v%d" % i) + b"get fr:%d\r\n" % i)
        for i, c in enumerate(fresh):
            self.assertEqual(c.read_replies(2, timeout=10),
                             [b"STORED\r\n", mc_value("fr:%d" % i, "v%d" % i)],
                             "client %d: first request sent 0.3 s after SIGTERM" % i)
            self.assertClosed(c, 5, "client %d after its first request was answered" % i)
        self.assertClosed(silent, 10, "a client that never sent anything")
        self.wait_exit(cmx, 15)
        elapsed = time.time() - t0
        cmx.stop()
        self.assertGreaterEqual(elapsed, 0.9, "the silent client got less than the grace")
        self.assertLess(elapsed, 15, "the silent client held the stop until shutdown_timeout")

    def cmx_client(self, cmx):
        c = cmx.client(timeout=15)
        self.addCleanup(c.close)
        return c

    def test_frozen_backend_shutdown_timeout(self):
        mc = self.memcached(name="s1")
        mport = h.free_port()
        pidfile = h.tmp_path("frozen.pid")
        cmx = self.cachemux([h.Pool("alpha", [mc])], workers=2, verbose=5,
                            globals_={"shutdown_timeout": 1000,
                                      "metrics_listen": "%s:%d" % (h.HOST, mport)},
                            extra_args=["-p", pidfile])
        c = self.cmx_client(cmx)
        self.assertEqual(c.request(mc_store("fk", "v")), b"STORED\r\n")
        st, _, body = http_get(mport, "/healthz")
        self.assertEqual((st, body.strip()), (200, b"ok"))
        os.kill(mc.proc.pid, signal.SIGSTOP)
        self.addCleanup(self._cont, mc)
        wait_for(lambda: all_threads_stopped(mc.proc.pid), 5, "memcached to stop (SIGSTOP)")
        c.send(b"get fk\r\n")
        js = wait_for(lambda: (lambda j: j if j["alpha"]["s1"]["out_queue"] == 1 else None)(
            stats_json(cmx.stats_port)), 5, "the get to be sent to the frozen backend")
        self.assertEqual(js["alpha"]["s1"]["out_queue"], 1)
        t0 = time.time()
        os.kill(cmx.proc.pid, signal.SIGTERM)
        seen = []
        new_conn = None
        while cmx.proc.poll() is None and time.time() - t0 < h.scaled(15):
            try:
                st, _, body = http_get(mport, "/healthz", timeout=1)
                seen.append((st, body.strip()))
            except OSError:
                pass
            if new_conn is None and seen and seen[-1][0] == 503:
                # stopped accepting: a new client is refused
                try:
                    with h.Client(cmx.port(), timeout=1) as n:
                        new_conn = "accepted: %r" % n.request(b"version\r\n")
                except ConnectionRefusedError:
                    new_conn = "refused"
                except (OSError, h.Closed) as e:
                    new_conn = "accepted, then %r" % e
            time.sleep(0.02)
        elapsed = time.time() - t0
        self.assertIsNotNone(cmx.proc.poll(), "cachemux did not exit")
        self.assertIn(503, [st for st, _ in seen], "healthz while stopping: %s" % sorted(set(seen)))
        self.assertNotIn(200, [s for s, _ in seen], "healthz said 200 after SIGTERM")
        self.assertEqual(new_conn, "refused", "a connect to the pool port while stopping")
        if not SANITIZED:
            self.assertLess(elapsed, 1.0 + 1.0, "exit took %.2fs with shutdown_timeout 1000" % elapsed)
        self.assertGreaterEqual(elapsed, 0.9, "exited before shutdown_timeout with a request in flight")
        cmx.stop()
        self.assertFalse(os.path.exists(pidfile), "pid file left after SIGTERM")

    def test_sigint_is_graceful_too(self):
        rd = self.redis()
        pidfile = h.tmp_path("sigint.pid")
        cmx = self.cachemux([h.Pool("beta", [rd], redis=True)], workers=2, verbose=5,
                            globals_={"shutdown_timeout": 5000}, extra_args=["-p", pidfile])
        c = self.cmx_client(cmx)
        c.send(h.resp_command("EVAL", lua_busy_ms(300), "1", "k"))
        time.sleep(h.scaled(0.1))
        os.kill(cmx.proc.pid, signal.SIGINT)
        self.assertEqual(c.read_resp(1, timeout=10), [b":1\r\n"])
        self.assertClosed(c, 5, "client after its in-flight request was answered")
        self.wait_exit(cmx, 10)
        cmx.stop(sig=signal.SIGINT)
        self.assertFalse(os.path.exists(pidfile), "pid file left after SIGINT")

    @staticmethod
    def _cont(mc):
        if mc.alive:
            os.kill(mc.proc.pid, signal.SIGCONT)


# --------------------------------------------------------------------------
# 6

class BinaryUpgrade(OpsTest):
    """Clients keep connecting and sending (4 threads doing 2 batches per
    connection, 2 non-blocking "storms" of 64 concurrent one-batch
    connections) while a second cachemux starts on the same config and the
    first gets SIGTERM.

    Every batch must get its complete, correct replies, with one exception:
    a connection the first instance closes at a request boundary after
    SIGTERM (an idle keep-alive connection) can meet a request sent after
    the signal; the client sees EOF (or EPIPE / a reset on a later batch)
    and retries on a new connection. Such a request must not have been
    executed (checked on the backends). A connection refused, or reset
    before its first reply (a "reset connect"), is a failure whenever it
    happens: with net.ipv4.tcp_migrate_req = 1, connections queued on the
    closing listeners move to the second instance."""

    def test_second_instance_then_sigterm_first(self):
        self.tcp_migrate_req()
        mcs = [self.memcached(name=n) for n in ("s1", "s2")]
        pidfile = h.tmp_path("upgrade.pid")
        g = {"shutdown_timeout": 5000}
        c1 = self.cachemux([h.Pool("alpha", mcs)], workers=2, verbose=6, globals_=g,
                           extra_args=["-p", pidfile])
        port = c1.port()
        stop = threading.Event()
        outs = [[] for _ in range(6)]
        threads = [threading.Thread(target=upgrade_client, args=(port, t, outs[t], stop), daemon=True)
                   for t in range(4)]
        threads += [threading.Thread(target=connect_storm, args=(port, t, outs[t], stop), daemon=True)
                    for t in range(4, 6)]
        for th in threads:
            th.start()
        self.addCleanup(lambda: (stop.set(), [th.join(30) for th in threads]))

        def nok():
            return sum(1 for o in outs for r in list(o) if r["result"] == "ok")

        time.sleep(h.scaled(1.0))
        c2 = self.cachemux([h.Pool("alpha", mcs, port=port)], stats_port=c1.stats_port,
                           workers=2, verbose=6, globals_=g, extra_args=["-p", pidfile])
        self.assertEqual(int(h.read_text(pidfile).strip()), c2.proc.pid, "second instance's pid file")
        time.sleep(h.scaled(1.0))
        n_mid = nok()
        term = time.monotonic()
        os.kill(c1.proc.pid, signal.SIGTERM)
        try:
            c1.proc.wait(timeout=h.scaled(10))
        except subprocess.TimeoutExpired:
            self.fail("first instance did not exit")
        c1.stop()       # exit 0, no sanitizer report
        self.assertTrue(os.path.exists(pidfile), "the first instance removed the second's pid file")
        self.assertEqual(int(h.read_text(pidfile).strip()), c2.proc.pid)
        n_exit = nok()
        time.sleep(h.scaled(1.0))
        stop.set()
        for th in threads:
            th.join(h.scaled(30))
            self.assertFalse(th.is_alive(), "client thread stuck")
        n_end = nok()
        recs = [r for o in outs for r in o]
        bad, retried = [], {}
        for r in recs:
            res = r["result"]
            if res == "ok":
                continue
            late = r["t_sent"] is not None and r["t_sent"] > term
            if res in ("eof", "epipe", "reset") and late and not (r["first"] and res != "eof"):
                executed = [k for k in r["keys"] if any(m.get(k) is not None for m in mcs)]
                if not executed:
                    retried[res] = retried.get(res, 0) + 1
                    continue
                bad.append("%s after SIGTERM but %s stored" % (res, executed))
                continue
            bad.append("%s%s (%s SIGTERM)%s" % (
                "reset connect: " if r["first"] and res in ("reset", "epipe") else "",
                res, "after" if late else "before", " got %r" % r["got"] if r["got"] else ""))
        sys.stdout.write("  [%d connections, %d batches answered (%d before SIGTERM, %d after the "
                         "first exited); closed at a boundary after SIGTERM and retried: %s] "
                         % (sum(1 for r in recs if r["first"]), n_end, n_mid, n_end - n_exit, retried))
        summary = {}
        for b in bad:
            summary[b] = summary.get(b, 0) + 1
        self.assertEqual(summary, {}, "failed requests or connects (of %d)" % len(recs))
        self.assertGreater(n_mid, 100)
        self.assertGreater(n_end - n_exit, 100, "the second instance served little after the switch")
        # both instances really accepted clients during the overlap
        acc = re.compile(r"accepted client 127\.0\.0\.1:\d+ on pool alpha")
        self.assertTrue(acc.search(h.read_text(c1.log)), "first instance accepted nobody")
        self.assertTrue(acc.search(h.read_text(c2.log)), "second instance accepted nobody")
        # the second serves afterwards
        with h.Client(port) as c:
            self.assertEqual(c.request(mc_store("after", "yes")), b"STORED\r\n")
            self.assertEqual(c.request(b"get after\r\n"), mc_values([("after", 0, "yes")]))
        self.assertEqual(stats_json(c2.stats_port)["service"], "cachemux")
        c2.stop()
        self.assertFalse(os.path.exists(pidfile), "pid file left after the second's SIGTERM")


# --------------------------------------------------------------------------
# 7

class Daemon(OpsTest):

    def test_daemonize_with_pid_file(self):
        mc = self.memcached(name="s1")
        port, stats = h.free_ports(2)
        conf = h.write_ini(h.tmp_path("daemon.ini"), [h.Pool("alpha", [mc], port=port)], workers=2)
        pidfile = h.tmp_path("daemon.pid")
        log = h.tmp_path("daemon.log")
        pid, san = self.start_daemon(["-c", conf, "-s", str(stats), "-o", log, "-p", pidfile],
                                     pidfile, log)
        with h.Client(port) as c:
            self.assertEqual(c.request(mc_store("dk", "dv")), b"STORED\r\n")
            self.assertEqual(c.request(b"get dk\r\n"), mc_values([("dk", 0, "dv")]))
        self.assertEqual(mc.get("dk"), b"dv")
        self.assertEqual(stats_json(stats)["alpha"]["s1"]["requests"], 2)
        self.stop_daemon(pid, pidfile, san)


if __name__ == "__main__":
    h.main(require=("memcached", "redis-server"))
