#!/usr/bin/python3
"""Hot reload on SIGHUP (README "Reload (SIGHUP)" and "Operations").

cachemux runs in front of real memcached and redis-server backends; the test
rewrites the INI in place, sends SIGHUP and waits for the `reload:` result
line (harness Cachemux.reload). Proofs:

- Under load from 50 clients (threads: half pipelined depth 10, half not; a
  memcached pool and a Redis pool), 20 reloads alternate each pool between
  the server sets {s1,s2} and {s1,s2,s3}: no reply is wrong (each client sets
  its own keys and reads them back; keys whose placement is the same under
  both rings must read back exactly what was just written, keys that move
  may read a miss or an older value of the same client but never an error),
  no client connection is closed, the conns to s1 and s2 are the very same
  ones at the end (local ports and Redis CLIENT LIST ids), s3's conns close
  after it leaves, and after each reload fresh keys land on the backend that
  `cachemux -L POOL` names for the config in force (and on no other).
- A pool left unchanged keeps its listener sockets, its client sockets and
  its backend conns (CLIENT LIST ids, `stats conns` addresses).
- An added pool answers from every worker (workers = 4: at least 3 workers
  log `accepted client ... on pool NAME`); a removed pool refuses connects,
  answers a SET that was half sent at the reload, then closes it; idle
  clients are closed. The stats JSON shows the new pool set.
- Invalid files (a YAML-style line, unknown key, duplicate listen) are logged as
  FILE:LINE: message (the same lines as -t), counted in
  cachemux_reloads_total{result="rejected"}, the old config keeps serving, and
  the next valid reload works.
- 1,000 reloads (200 on a non-sanitized build) alternating two configs
  (a server and a pool added / removed each time) while clients keep working:
  the fd count returns exactly to its starting value once the retiring
  conns have closed (settle up to 5 s), VmRSS ends within +8 MiB of its
  starting value (taken after warm-up reloads; under ASan with a 16 MiB
  quarantine, see ASAN_LOOP_OPTIONS), and no sanitizer report (checked at
  stop).
- [cachemux] settings: log_level, log_file, max_request_size and
  shutdown_timeout take effect; workers, metrics_listen, mbuf_size and
  pid_file are logged as needing a restart and kept; -v and -o keep winning
  over log_level and log_file.
- A server whose identity stays but whose address changes: its keys go to
  the new backend (also from a client connected before the reload).
- Other rules of README "Reload (SIGHUP)": a changed `listen` is removed + added; servers that
  stay keep their counters and ejection state; hash / distribution changes
  route by the new ring; a redis_db change reaches the backend conns of
  servers that stay (doc/protocols.md 3: SELECT n on every backend conn).

A reload's result line is logged once every worker serves the new
configuration, so checks run right after it, with no settling time: each
of them also checks that order.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_reload.py [NAME-SUBSTRING...]
CACHEMUX_SANITIZED=1 (or "asan" in $CACHEMUX's path, or an ASan binary)
selects the 1,000-reload loop.
"""

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import (CRLF, SANITIZED, B, bulk, mc_store, mc_value,  # noqa: E402
                     memcached_conn_ports, samples, scrape)


LOOP_RELOADS = 1000 if SANITIZED else 200
# Under ASan, freed memory sits in a quarantine (256 MiB by default) that
# would read as RSS growth: the loop's cachemux gets a 16 MiB quarantine
# (still catching a use after free of anything freed in the last hundreds of
# reloads) and WARMUP reloads fill it before the starting RSS is taken.
ASAN_LOOP_OPTIONS = "quarantine_size_mb=16"
WARMUP_RELOADS = 400 if SANITIZED else 2
RSS_TOLERANCE_KIB = 8 * 1024


# --------------------------------------------------------------------------
# helpers

def skey(name):
    """A key led by 8 hex digits of its MD5: keys that differ only at the end
    hash close together under the FNV hashes, so spread them."""
    name = B(name)
    return hashlib.md5(name).hexdigest()[:8].encode() + b"-" + name


def metrics(port):
    """{'name{labels}': value} from GET /metrics (the strict parser)."""
    return samples(scrape(port)[1])


def reload_counters(port):
    m = metrics(port)
    return (int(m["cachemux_reload_generation"]),
            int(m['cachemux_reloads_total{result="ok"}']),
            int(m['cachemux_reloads_total{result="rejected"}']))


_SS = h.find_binary("ss")


def _tcp_rows(state, port_filter):
    """(local port, remote port, inode) of TCP sockets in `state`
    ("established" or "listening") matching an ss filter such as
    ["dport", "=", ":6379"]. Taken from `ss` (one netlink dump, filtered in
    the kernel) when it is installed: a read of /proc/net/tcp resumes page by
    page and can skip entries while other sockets come and go."""
    if _SS:
        p = subprocess.run([_SS, "-tnHe", "state", state] + port_filter, capture_output=True,
                           timeout=30)
        rows = []
        for line in p.stdout.decode().splitlines():
            f = line.split()
            m = re.search(r"\bino:(\d+)", line)
            if len(f) < 4 or not m:
                continue
            rp = f[3].rsplit(":", 1)[1]
            rows.append((int(f[2].rsplit(":", 1)[1]), int(rp) if rp.isdigit() else 0, m.group(1)))
        return rows
    want = {"established": h.TCP_ESTABLISHED, "listening": h.TCP_LISTEN}[state]
    kind, _, port = port_filter
    port = int(port[1:])
    return [(lp, rp, ino) for lp, rp, st, ino in h.tcp_sockets()
            if st == want and (lp if kind == "sport" else rp) == port]


def cm_conns_to(pid, port):
    """Local ports of pid's ESTABLISHED TCP conns to remote port `port`."""
    rows = _tcp_rows("established", ["dport", "=", ":%d" % port])
    mine = h.socket_inodes(pid)
    return {lp for lp, rp, ino in rows if ino in mine}


def cm_client_socks(pid, listen_port):
    """{client port: inode} of pid's accepted sockets on listen_port."""
    rows = _tcp_rows("established", ["sport", "=", ":%d" % listen_port])
    mine = h.socket_inodes(pid)
    return {rp: ino for lp, rp, ino in rows if ino in mine}


def listen_inodes(pid, port):
    rows = _tcp_rows("listening", ["sport", "=", ":%d" % port])
    mine = h.socket_inodes(pid)
    return {ino for lp, rp, ino in rows if ino in mine}


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def redis_client_ids(backend, ports):
    """{client port: CLIENT LIST id} for the backend's clients from ports."""
    with backend.client() as c:
        r = c.resp("CLIENT", "LIST")
    body = r.split(CRLF, 1)[1]
    out = {}
    for line in body.decode().splitlines():
        f = dict(x.split("=", 1) for x in line.split(" ") if "=" in x)
        if "addr" not in f:
            continue
        port = int(f["addr"].rsplit(":", 1)[1])
        if port in ports:
            out[port] = f["id"]
    return out


def mc_conn_ports(backend, ports):
    """Client ports among `ports` that memcached lists in `stats conns`."""
    return memcached_conn_ports(backend) & set(ports)


def direct_get(backend, keys):
    """{key: value} of those keys present on the backend (read directly)."""
    keys = [B(k) for k in keys]
    out = {}
    with backend.client() as c:
        if isinstance(backend, h.Redis):
            r = c.resp("MGET", *keys)
            pos = r.index(CRLF) + 2
            for k in keys:
                nl = r.index(CRLF, pos)
                n = int(r[pos + 1:nl])
                if n < 0:
                    pos = nl + 2
                    continue
                out[k] = r[nl + 2:nl + 2 + n]
                pos = nl + 2 + n + 2
        else:
            for i in range(0, len(keys), 50):
                r = c.request(b"get " + b" ".join(keys[i:i + 50]) + CRLF)
                for k, v in h.parse_get_reply(r):
                    out[k] = v
    return out


def write_through(port, redis, items):
    """Set each (key, value) through the proxy on a new connection; assert
    every reply."""
    with h.Client(port, timeout=10) as c:
        if redis:
            data = b"".join(h.resp_command("SET", k, v) for k, v in items)
            replies = c.pipeline(data, len(items), resp=True)
            bad = [(k, r) for (k, _), r in zip(items, replies) if r != b"+OK\r\n"]
        else:
            data = b"".join(mc_store(k, v) for k, v in items)
            replies = c.pipeline(data, len(items))
            bad = [(k, r) for (k, _), r in zip(items, replies) if r != b"STORED\r\n"]
    if bad:
        raise AssertionError("%d of %d sets failed, first: %r" % (len(bad), len(items), bad[:3]))


class RCachemux(h.Cachemux):
    """cachemux with a metrics port picked with the other ports."""

    def __init__(self, pools, metrics=True, **kw):
        self.metrics = metrics
        self.metrics_port = None
        h.Cachemux.__init__(self, pools, **kw)

    def _pick_ports(self):
        h.Cachemux._pick_ports(self)
        if self.metrics:
            self.metrics_port = h.free_port()
            g = dict(self.globals_ or {})
            g["metrics_listen"] = "%s:%d" % (h.HOST, self.metrics_port)
            self.globals_ = g

    def g(self, **kw):
        """The current [cachemux] keys with changes."""
        out = dict(self.globals_ or {})
        out.update(kw)
        return out

    def counters(self):
        return reload_counters(self.metrics_port)


class Loader(threading.Thread):
    """One client connection doing SET k v; GET k pairs on its own keys until
    stopped: depth 10 (5 pairs pipelined) or one request at a time. Keys in
    `stable` must read back exactly what was just written; keys in `moving`
    (their server differs between the two rings) may also read a miss or an
    older value this client wrote, if a reload switched the ring between the
    SET and the GET. Anything else (an error reply, another client's value,
    a closed connection) is a failure."""

    THINK = 0.001   # seconds between batches: the clients stay busy, the test's checks get CPU

    def __init__(self, tid, port, redis, pipelined, stable, moving, stop):
        threading.Thread.__init__(self, daemon=True, name="loader-%d" % tid)
        self.tid = tid
        self.port = port
        self.redis = redis
        self.pairs = 5 if pipelined else 1
        self.pipelined = pipelined
        self.keys = list(stable) + list(moving)
        self.moving = set(moving)
        self.stop_ev = stop
        self.ops = 0
        self.moved = 0
        self.errors = []
        self.hist = {k: set() for k in moving}
        self.client = None
        self.ready = threading.Event()

    def run(self):
        try:
            self.client = h.Client(self.port, timeout=15)
        except Exception as e:
            self.errors.append("client %d: connect: %r" % (self.tid, e))
            self.ready.set()
            return
        self.ready.set()
        seq = 0
        i = self.tid * 7
        try:
            while not self.stop_ev.is_set():
                pairs = []
                for _ in range(self.pairs):
                    k = self.keys[i % len(self.keys)]
                    i += 1
                    seq += 1
                    v = b"%d:%d:" % (self.tid, seq) + b"v" * (seq * 37 % 300)
                    pairs.append((k, v))
                reqs = []
                for k, v in pairs:
                    if self.redis:
                        reqs += [h.resp_command("SET", k, v), h.resp_command("GET", k)]
                    else:
                        reqs += [mc_store(k, v), b"get %s\r\n" % k]
                c = self.client
                if self.pipelined:
                    replies = c.pipeline(b"".join(reqs), len(reqs), resp=self.redis)
                else:
                    replies = []
                    for r in reqs:
                        c.send(r)
                        replies += c.read_resp(1) if self.redis else c.read_replies(1)
                self._check(pairs, replies)
                self.ops += len(reqs)
                time.sleep(self.THINK)
        except Exception as e:
            self.errors.append("client %d (%s, %s) after %d requests: %s: %s"
                               % (self.tid, "redis" if self.redis else "memcached",
                                  "pipelined" if self.pipelined else "one at a time",
                                  self.ops, type(e).__name__, e))

    def _check(self, pairs, replies):
        ok = b"+OK\r\n" if self.redis else b"STORED\r\n"
        miss = b"$-1\r\n" if self.redis else b"END\r\n"
        for j, (k, v) in enumerate(pairs):
            rs, rg = replies[2 * j], replies[2 * j + 1]
            if rs != ok:
                raise AssertionError("SET %r: %r" % (k, rs[:200]))
            want = bulk(v) if self.redis else mc_value(k, v)
            if rg != want:
                if k in self.moving:
                    olds = {bulk(o) if self.redis else mc_value(k, o) for o in self.hist[k]}
                    if rg == miss or rg in olds:
                        self.moved += 1
                    else:
                        raise AssertionError("GET %r: %r, wanted %r" % (k, rg[:200], want[:80]))
                else:
                    raise AssertionError("GET %r: %r, wanted %r" % (k, rg[:200], want[:80]))
            if k in self.moving:
                self.hist[k].add(v)


def split_keys(conf_a, conf_b, pool, candidates):
    """(stable, moving) keys: same / different server under two configs."""
    la = h.locate(conf_a, pool, candidates)
    lb = h.locate(conf_b, pool, candidates)
    cand = [B(k) for k in candidates]
    return [k for k in cand if la[k] == lb[k]], [k for k in cand if la[k] != lb[k]]


class ReloadTest(h.IntegrationTest):

    def rcachemux(self, pools, **kw):
        c = RCachemux(pools, **kw).start()
        self.addCleanup(c.stop)
        return c

    def loaders(self, specs, stop):
        """Start Loader threads; stop them (and close their sockets) at the end."""
        ls = [Loader(*s, stop=stop) for s in specs]

        def finish():
            stop.set()
            for t in ls:
                t.join(timeout=30)
                if t.client is not None:
                    t.client.close()
        self.addCleanup(finish)
        for t in ls:
            t.start()
        for t in ls:
            t.ready.wait(10)
        return ls

    def assertLoadersOk(self, ls):
        errs = [e for t in ls for e in t.errors]
        self.assertEqual(errs, [], "%d of %d clients failed:\n  %s"
                         % (len([t for t in ls if t.errors]), len(ls), "\n  ".join(errs[:10])))

    def check_routing(self, px, pool, redis, backends, tag, servers_in_force, n=45, client=None):
        """Write n fresh keys through a new connection (or `client`); each
        must sit on the backend `cachemux -L` names under the config in
        force, and only there. Returns ({identity: number of keys}, {key:
        identity})."""
        keys = [skey(b"fresh-%s-%s-%d" % (B(tag), B(pool), i)) for i in range(n)]
        items = [(k, b"val-" + k) for k in keys]
        if client is None:
            write_through(px.port(pool), redis, items)
        elif redis:
            data = b"".join(h.resp_command("SET", k, v) for k, v in items)
            self.assertEqual(client.pipeline(data, n, resp=True), [b"+OK\r\n"] * n)
        else:
            data = b"".join(mc_store(k, v) for k, v in items)
            self.assertEqual(client.pipeline(data, n), [b"STORED\r\n"] * n)
        loc = h.locate(px.conf, pool, keys)
        got = {name: direct_get(b, keys) for name, b in backends.items()}
        wrong = []
        per = {}
        for k in keys:
            holders = sorted(name for name in backends if k in got[name])
            per[loc[k]] = per.get(loc[k], 0) + 1
            if holders != [loc[k]] or got[loc[k]].get(k) != b"val-" + k:
                wrong.append((k, loc[k], holders))
        self.assertEqual(wrong, [], "pool %s after reload %s: (key, -L server, found on) for "
                         "keys not (only) on their -L server" % (pool, tag))
        self.assertEqual(set(per), set(servers_in_force),
                         "pool %s after reload %s: -L placed %d fresh keys on %s, servers in "
                         "force %s" % (pool, tag, n, per, servers_in_force))
        return per, loc

    def wait_no_conns(self, px, port, what, timeout=5.0):
        deadline = time.time() + h.scaled(timeout)
        while True:
            left = cm_conns_to(px.proc.pid, port)
            if not left:
                return
            if time.time() > deadline:
                self.fail("%s: cachemux still has %d conns to port %d %.1fs after the reload"
                          % (what, len(left), port, h.scaled(timeout)))
            time.sleep(0.02)


# --------------------------------------------------------------------------
# 1. reloads under load

class ReloadUnderLoadTest(ReloadTest):

    @h.requires("memcached", "redis-server")
    def test_20_reloads_under_load_50_clients(self):
        names = ("s1", "s2", "s3")
        mcs = {n: self.memcached(name=n) for n in names}
        rds = {n: self.redis(name=n) for n in names}

        def pools(n_servers, ports=(None, None)):
            sel = names[:n_servers]
            return [h.Pool("mc", [mcs[n] for n in sel], port=ports[0]),
                    h.Pool("rd", [rds[n] for n in sel], redis=True, port=ports[1])]

        px = self.rcachemux(pools(2), workers=2)
        ports = (px.port("mc"), px.port("rd"))
        conf_a = h.write_ini(h.tmp_path("ring-a.ini"), pools(2, ports))
        conf_b = h.write_ini(h.tmp_path("ring-b.ini"), pools(3, ports))
        keys = {}
        for pool in ("mc", "rd"):
            cand = [skey(b"k%d-c%d" % (i, t)) for t in range(50) for i in range(20)]
            keys[pool] = split_keys(conf_a, conf_b, pool, cand)

        stop = threading.Event()
        specs = []
        for t in range(50):
            pool = "mc" if t % 2 == 0 else "rd"
            stable, moving = keys[pool]
            mine = b"-c%d" % t
            st = [k for k in stable if k.endswith(mine)]
            mv = [k for k in moving if k.endswith(mine)]
            self.assertTrue(st, "client %d has no stable key" % t)
            specs.append((t, px.port(pool), pool == "rd", (t // 2) % 2 == 0, st, mv))
        ls = self.loaders(specs, stop)
        time.sleep(h.scaled(1.0))
        self.assertLoadersOk(ls)
        self.assertTrue(all(t.ops > 0 for t in ls), "some clients made no request before reloads")

        # the conns to s1 and s2 (of every worker that has clients) must survive every reload
        pid = px.proc.pid
        kept = {}
        for pool, backs in (("mc", mcs), ("rd", rds)):
            for n in ("s1", "s2"):
                kept[(pool, n)] = cm_conns_to(pid, backs[n].port)
                self.assertTrue(kept[(pool, n)], "no conn to %s %s under load" % (pool, n))
        rd_ids = {n: redis_client_ids(rds[n], kept[("rd", n)]) for n in ("s1", "s2")}
        mc_addrs = {n: mc_conn_ports(mcs[n], kept[("mc", n)]) for n in ("s1", "s2")}
        for n in ("s1", "s2"):
            self.assertEqual(set(rd_ids[n]), kept[("rd", n)], "redis %s CLIENT LIST" % n)
            self.assertEqual(mc_addrs[n], kept[("mc", n)], "memcached %s stats conns" % n)

        progress = [sum(t.ops for t in ls)]
        s3_seen = 0
        for r in range(20):
            n_servers = 3 if r % 2 == 0 else 2
            line, off = px.reload(pools=pools(n_servers, ports))
            self.assertIn("reload: 2 pools, 2 changed (0 added, 0 removed)", line)
            in_force = names[:n_servers]
            per_mc = self.check_routing(px, "mc", False, mcs, r, in_force)[0]
            per_rd = self.check_routing(px, "rd", True, rds, r, in_force)[0]
            s3_seen += per_mc.get("s3", 0) + per_rd.get("s3", 0)
            if n_servers == 2:
                # s3 left: its conns finish what they carry, then close
                self.wait_no_conns(px, mcs["s3"].port, "memcached s3 after it left")
                self.wait_no_conns(px, rds["s3"].port, "redis s3 after it left")
            time.sleep(h.scaled(0.2))
            self.assertLoadersOk(ls)
            progress.append(sum(t.ops for t in ls))
            self.assertGreater(progress[-1], progress[-2],
                               "no request completed around reload %d" % r)
        before_end = [t.ops for t in ls]
        time.sleep(h.scaled(1.0))
        stop.set()
        for t in ls:
            t.join(timeout=30)
            self.assertFalse(t.is_alive(), "%s did not stop" % t.name)
        self.assertLoadersOk(ls)
        self.assertTrue(all(t.ops > b for t, b in zip(ls, before_end)),
                        "a client stopped making progress")
        self.assertGreater(s3_seen, 0)

        # no client conn was closed: every loader's socket is still open at cachemux
        for t in ls:
            self.assertOpen(t.client, 0.05, "client %d" % t.tid)
        deadline = time.time() + h.scaled(3)
        while True:
            st = px.stats_json()
            cc = (st["mc"]["client_connections"], st["rd"]["client_connections"])
            if cc == (25, 25) or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(cc, (25, 25), "client_connections (mc, rd) after the reloads")
        for t in ls:
            self.assertEqual(len(cm_client_socks(pid, t.port).keys() & {t.client.local_port}), 1,
                             "client %d's conn is gone at cachemux" % t.tid)

        # the same backend conns to s1 and s2 as before the reloads
        for pool, backs in (("mc", mcs), ("rd", rds)):
            for n in ("s1", "s2"):
                self.assertEqual(cm_conns_to(pid, backs[n].port), kept[(pool, n)],
                                 "%s: cachemux's conns to %s changed across reloads" % (pool, n))
        for n in ("s1", "s2"):
            self.assertEqual(redis_client_ids(rds[n], kept[("rd", n)]), rd_ids[n],
                             "redis %s: CLIENT LIST ids of cachemux's conns changed" % n)
            self.assertEqual(mc_conn_ports(mcs[n], kept[("mc", n)]), mc_addrs[n],
                             "memcached %s: stats conns addresses changed" % n)
        sys.stdout.write("[%d requests, %d reads of a moving key saw the other ring's value] "
                         % (sum(t.ops for t in ls), sum(t.moved for t in ls)))


# --------------------------------------------------------------------------
# 2. an unchanged pool keeps everything

class UnchangedPoolTest(ReloadTest):

    @h.requires("memcached", "redis-server")
    def test_unchanged_pool_keeps_listeners_clients_and_backend_conns(self):
        m1, m2, m3, m4 = (self.memcached(name=n) for n in ("s1", "s2", "s3", "s4"))
        r1, r2 = (self.redis(name=n) for n in ("s1", "s2"))
        keep_mc = h.Pool("kmc", [m1, m2])
        keep_rd = h.Pool("krd", [r1, r2], redis=True)
        px = self.rcachemux([keep_mc, keep_rd, h.Pool("chg", [m3])], workers=2)
        pid = px.proc.pid
        kmc_port, krd_port, chg_port = px.port("kmc"), px.port("krd"), px.port("chg")

        # keys on each server of the kept pools
        loc_mc = h.locate(px.conf, "kmc", [b"k%d" % i for i in range(40)])
        loc_rd = h.locate(px.conf, "krd", [b"k%d" % i for i in range(40)])
        kmc_keys = [next(k for k, s in loc_mc.items() if s == n) for n in ("s1", "s2")]
        krd_keys = [next(k for k, s in loc_rd.items() if s == n) for n in ("s1", "s2")]

        clients = []
        for i in range(8):
            clients.append(("mc", h.Client(kmc_port)))
            clients.append(("rd", h.Client(krd_port)))
        for _, c in clients:
            self.addCleanup(c.close)
        seq = [0]

        def exercise():
            for kind, c in clients:
                seq[0] += 1
                v = b"v%d" % seq[0]
                if kind == "mc":
                    for k in kmc_keys:
                        self.assertEqual(c.request(mc_store(k, v) + b"get " + k + CRLF, 2),
                                         b"STORED\r\n" + mc_value(k, v))
                else:
                    for k in krd_keys:
                        c.send(h.resp_command("SET", k, v) + h.resp_command("GET", k))
                        self.assertEqual(c.read_resp(2), [b"+OK\r\n", bulk(v)])

        def snapshot():
            out = {"listen": (listen_inodes(pid, kmc_port), listen_inodes(pid, krd_port)),
                   "clients": (cm_client_socks(pid, kmc_port), cm_client_socks(pid, krd_port))}
            for name, b in (("m1", m1), ("m2", m2), ("r1", r1), ("r2", r2)):
                out[name] = cm_conns_to(pid, b.port)
            out["m1 stats conns"] = mc_conn_ports(m1, out["m1"])
            out["m2 stats conns"] = mc_conn_ports(m2, out["m2"])
            out["r1 ids"] = redis_client_ids(r1, out["r1"])
            out["r2 ids"] = redis_client_ids(r2, out["r2"])
            return out

        exercise()
        before = snapshot()
        self.assertEqual(len(before["clients"][0]) + len(before["clients"][1]), 16)
        # each worker with clients of a pool has one conn to each of its servers
        for a, b in (("m1", "m2"), ("r1", "r2")):
            self.assertGreaterEqual(len(before[a]), 1, "conns to %s" % a)
            self.assertEqual(len(before[a]), len(before[b]), "conns to %s and %s" % (a, b))
        self.assertEqual(before["m1 stats conns"], before["m1"])
        self.assertEqual(set(before["r1 ids"]), before["r1"])

        steps = [
            # chg changes, a pool is added
            ([keep_mc, keep_rd, h.Pool("chg", [m3, m4], port=chg_port),
              h.Pool("extra", [m4])], "reload: 4 pools, 2 changed (1 added, 0 removed)"),
            # chg changes back, extra is removed
            ([keep_mc, keep_rd, h.Pool("chg", [m3], port=chg_port)],
             "reload: 3 pools, 2 changed (0 added, 1 removed)"),
            # the same file again: nothing changed
            (None, "reload: 3 pools, 0 changed (0 added, 0 removed)"),
        ]
        for pools, want in steps:
            line, _ = px.reload(pools=pools)
            self.assertIn(want, line)
            after = snapshot()
            for k in before:
                self.assertEqual(after[k], before[k], "%s differs after `%s`" % (k, want))
            exercise()      # the clients opened before the reload still work
            self.assertEqual(snapshot(), before, "after requests following `%s`" % want)


# --------------------------------------------------------------------------
# 3. adding and removing pools

class AddRemovePoolTest(ReloadTest):

    @h.requires("memcached")
    def test_added_pool_served_by_every_worker(self):
        m1, m2 = self.memcached(name="s1"), self.memcached(name="s2")
        base = h.Pool("base", [m1])
        px = self.rcachemux([base], workers=4, verbose=7)
        self.assertNotIn("added", px.stats_json())
        line, off = px.reload(pools=[base, h.Pool("added", [m2])])
        self.assertIn("reload: 2 pools, 1 changed (1 added, 0 removed)", line)
        # the result is logged after every worker switched (their debug lines)
        since = px.log_since(off)
        result_at = next(i for i, ln in enumerate(since) if "reload: 2 pools" in ln)
        switched = {re.search(r" (w\d+) ", ln).group(1) for ln in since[:result_at]
                    if "reload: switched to generation" in ln}
        self.assertEqual(switched, {"w0", "w1", "w2", "w3"}, "\n".join(since))
        # no settling time: the result line is logged once every worker
        # serves the new configuration, so the new port accepts already
        # (connects from many source ports reach every worker's listener)
        early = [h.Client(px.port("added")) for _ in range(16)]
        for i, c in enumerate(early):
            self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ", "connection %d" % i)
            c.close()
        st = px.stats_json()
        self.assertIn("added", st)
        self.assertIn("s2", st["added"])
        self.assertTrue(any('pool="added"' in k for k in metrics(px.metrics_port)),
                        "no pool=\"added\" series in /metrics")
        port = px.port("added")
        n = 40
        for i in range(n):
            with h.Client(port) as c:
                k = b"add-%d" % i
                self.assertEqual(c.request(mc_store(k, b"x%d" % i) + b"get " + k + CRLF, 2),
                                 b"STORED\r\n" + mc_value(k, b"x%d" % i))
        lines = px.wait_log(r" accepted client \S+ on pool added$", since=off, count=n)
        tags = {}
        for ln in lines:
            m = re.search(r" (\S+) accepted client ", ln)
            tags[m.group(1)] = tags.get(m.group(1), 0) + 1
        self.assertGreaterEqual(len(tags), 3, "workers that accepted on the added pool: %s" % tags)
        self.assertEqual(len(direct_get(m2, [b"add-%d" % i for i in range(n)])), n)

    @h.requires("memcached")
    def test_removed_pool_refuses_finishes_request_closes_clients(self):
        m1, m2 = self.memcached(name="s1"), self.memcached(name="s2")
        base = h.Pool("base", [m1])
        gone = h.Pool("gone", [m2])
        px = self.rcachemux([base, gone], workers=4)
        gport = px.port("gone")
        bc = px.client("base")
        self.addCleanup(bc.close)
        self.assertEqual(bc.request(mc_store("b", "1")), b"STORED\r\n")
        idle = []
        for i in range(8):
            c = h.Client(gport)
            self.addCleanup(c.close)
            self.assertEqual(c.request(mc_store("i%d" % i, "v")), b"STORED\r\n")
            idle.append(c)
        big = os.urandom(1 << 20).hex().encode()[:2 * 1024 * 1024]   # 2 MiB
        mid = h.Client(gport, timeout=10)
        self.addCleanup(mid.close)
        head = b"set big 0 0 %d\r\n" % len(big)
        mid.send(head + big[:1024 * 1024])
        fresh = h.Client(gport, timeout=10)     # connected, nothing sent yet
        self.addCleanup(fresh.close)
        time.sleep(h.scaled(0.3))

        line, off = px.reload(pools=[base])
        self.assertIn("reload: 1 pools, 1 changed (0 added, 1 removed)", line)
        # a client with no request yet gets a grace for its first one
        time.sleep(h.scaled(0.2))
        self.assertEqual(fresh.request(mc_store("fresh", "v")), b"STORED\r\n")
        self.assertClosed(fresh, 3.0, "client of the removed pool after its first request")

        # its port stops accepting
        deadline = time.time() + h.scaled(3)
        while h.can_connect(gport) and time.time() < deadline:
            time.sleep(0.02)
        refused = 0
        for _ in range(20):
            try:
                s = socket.create_connection((h.HOST, gport), timeout=2)
                s.close()
            except ConnectionRefusedError:
                refused += 1
        self.assertEqual(refused, 20, "connects to the removed pool's port refused")
        # idle clients are closed
        for i, c in enumerate(idle):
            self.assertClosed(c, 3.0, "idle client %d of the removed pool" % i)
        # the client mid-request gets its reply, then is closed
        mid.send(big[1024 * 1024:] + CRLF)
        self.assertEqual(mid.read_replies(1, timeout=10), [b"STORED\r\n"])
        self.assertClosed(mid, 3.0, "client of the removed pool after its request")
        self.assertEqual(m2.get("big"), big)
        self.assertNotIn("gone", px.stats_json())
        self.assertIn("base", px.stats_json())
        m = metrics(px.metrics_port)
        self.assertEqual([k for k in m if 'pool="gone"' in k], [], "/metrics after the removal")
        self.assertTrue(any('pool="base"' in k for k in m))
        # the remaining pool is untouched
        self.assertEqual(bc.request(b"get b\r\n"), mc_value("b", "1"))


# --------------------------------------------------------------------------
# 4. invalid files

class InvalidReloadTest(ReloadTest):

    @h.requires("memcached")
    def test_invalid_files_rejected_old_config_serves(self):
        m1 = self.memcached(name="s1")
        m2 = self.memcached(name="s1b")
        p1 = h.Pool("p1", [m1])
        p2 = h.Pool("p2", [m1])
        px = self.rcachemux([p1, p2], workers=2)
        c1 = px.client("p1")
        self.addCleanup(c1.close)
        self.assertEqual(c1.request(mc_store("k0", "a")), b"STORED\r\n")
        self.assertEqual(px.counters(), (1, 0, 0))

        # the next valid config: p1's server s1 moves to m2's address
        p1b = h.Pool("p1", [(h.HOST, m2.port, 1, "s1")], port=p1.port)
        valid = open(h.write_ini(h.tmp_path("valid.ini"), [p1b, p2], workers=px.workers,
                                 stats_port=px.stats_port, globals_=px.globals_)).read()
        valid = valid.split("\n")
        li = next(i for i, ln in enumerate(valid) if ln == "[pool p1]") + 1   # p1's listen
        lj = next(i for i, ln in enumerate(valid) if ln == "[pool p2]") + 1   # p2's listen
        self.assertTrue(valid[li].startswith("listen = ") and valid[lj].startswith("listen = "))

        cases = []
        t = list(valid)
        t.insert(li + 1, "timeout: 100")
        cases.append(("YAML-style line", t, li + 2, "':' is not a delimiter"))
        t = list(valid)
        t.insert(li + 1, "bogus_key = 1")
        cases.append(("unknown key", t, li + 2, "bogus_key"))
        t = list(valid)
        t[lj] = valid[li]
        cases.append(("duplicate listen", t, lj + 1, valid[li].split(" = ")[1]))

        rejected = 0
        for what, lines, lineno, needle in cases:
            text = "\n".join(lines)
            line, off = px.reload(text=text, expect="rejected")
            rejected += 1
            self.assertEqual(line.split(" ", 4)[4],
                             "reload: rejected, 1 errors in %s; still serving the previous "
                             "configuration" % px.conf, what)
            log = px.log_since(off)
            named = [ln for ln in log if "%s:%d: " % (px.conf, lineno) in ln]
            self.assertEqual(len(named), 1, "%s: log lines naming %s:%d:\n  %s"
                             % (what, px.conf, lineno, "\n  ".join(log)))
            self.assertIn(needle, named[0], what)
            # the same message as -t
            t_out = subprocess.run([h.CACHEMUX, "-t", "-c", px.conf], capture_output=True,
                                   env=h.sanitizer_env(h.tmp_dir("sanitizer")), timeout=60)
            self.assertEqual(t_out.returncode, 1, what)
            t_lines = [ln for ln in (t_out.stdout + t_out.stderr).decode().splitlines()
                       if ln.startswith(px.conf + ":")]
            self.assertEqual(len(t_lines), 1, "%s: -t printed %s" % (what, t_lines))
            self.assertTrue(named[0].endswith(" " + t_lines[0]),
                            "%s: log %r vs -t %r" % (what, named[0], t_lines[0]))
            self.assertEqual(px.counters(), (1, 0, rejected), what)
            # the old config keeps serving: same client, new client, old placement
            k = b"after-%d" % rejected
            self.assertEqual(c1.request(mc_store(k, b"v") + b"get " + k + CRLF, 2),
                             b"STORED\r\n" + mc_value(k, b"v"), what)
            with px.client("p2") as c2:
                self.assertEqual(c2.request(b"get " + k + CRLF), mc_value(k, b"v"), what)
            self.assertEqual(m1.get(k), b"v", what)
            self.assertIsNone(m2.get(k), what)

        # the next valid reload works
        line, off = px.reload(pools=[p1b, p2])
        self.assertIn("reload: 2 pools, 1 changed (0 added, 0 removed)", line)
        self.assertEqual(px.counters(), (2, 1, rejected))
        self.assertEqual(c1.request(mc_store("post", "w")), b"STORED\r\n")
        self.assertEqual(m2.get("post"), b"w")
        self.assertIsNone(m1.get("post"))


# --------------------------------------------------------------------------
# 5. many reloads: no leak

class ReloadLoopTest(ReloadTest):

    @h.requires("memcached", "redis-server")
    def test_many_reloads_no_leak(self):
        names = ("s1", "s2", "s3")
        mcs = {n: self.memcached(name=n) for n in names}
        rds = {n: self.redis(name=n) for n in names}
        mx = self.memcached(name="x1")

        def pools(b, ports):
            sel = names[:3 if b else 2]
            out = [h.Pool("mc", [mcs[n] for n in sel], port=ports[0]),
                   h.Pool("rd", [rds[n] for n in sel], redis=True, port=ports[1])]
            if b:
                out.append(h.Pool("x", [mx], port=ports[2]))
            return out

        px = self.rcachemux(pools(False, (None, None)), workers=2, verbose=5,
                            asan_extra=ASAN_LOOP_OPTIONS if SANITIZED else "")
        xport = h.free_port()
        ports = (px.port("mc"), px.port("rd"), xport)
        pid = px.proc.pid
        conf_a = h.write_ini(h.tmp_path("loop-a.ini"), pools(False, ports))
        conf_b = h.write_ini(h.tmp_path("loop-b.ini"), pools(True, ports))
        text_a = open(px.write_config(pools=pools(False, ports))).read()
        text_b = open(px.write_config(pools=pools(True, ports))).read()
        px.write_config(text=text_a)
        keys = {p: split_keys(conf_a, conf_b, p, [skey(b"k%d-L%d" % (i, t)) for t in range(4)
                                                   for i in range(20)])
                for p in ("mc", "rd")}
        stop = threading.Event()
        specs = []
        for t in range(4):
            pool = "mc" if t % 2 == 0 else "rd"
            st = [k for k in keys[pool][0] if k.endswith(b"-L%d" % t)]
            mv = [k for k in keys[pool][1] if k.endswith(b"-L%d" % t)]
            specs.append((t, px.port(pool), pool == "rd", t >= 2, st, mv))
        ls = self.loaders(specs, stop)

        # warm up, so that every lazily made object exists (and, under ASan,
        # the quarantine is full)
        for i in range(WARMUP_RELOADS):
            px.reload(text=text_b if i % 2 == 0 else text_a)
        time.sleep(h.scaled(0.5))
        for b in (mcs["s3"], rds["s3"]):
            self.wait_no_conns(px, b.port, "s3 after warm-up")
        self.assertLoadersOk(ls)

        def settle_fds(want, timeout):
            deadline = time.time() + h.scaled(timeout)
            while True:
                n = fd_count(pid)
                if n == want or time.time() > deadline:
                    return n
                time.sleep(0.05)

        fd0 = fd_count(pid)
        rss0 = h.rss_kib(pid)
        ops0 = sum(t.ops for t in ls)
        t0 = time.time()
        for i in range(LOOP_RELOADS):
            line, _ = px.reload(text=text_b if i % 2 == 0 else text_a)
            want = ("reload: 3 pools, 3 changed (1 added, 0 removed)" if i % 2 == 0
                    else "reload: 2 pools, 3 changed (0 added, 1 removed)")
            self.assertIn(want, line, "reload %d" % i)
            if i % 100 == 99:
                self.assertLoadersOk(ls)
        took = time.time() - t0
        self.assertLoadersOk(ls)
        gen, ok, rej = px.counters()
        self.assertEqual((gen, ok, rej), (LOOP_RELOADS + WARMUP_RELOADS + 1,
                                          LOOP_RELOADS + WARMUP_RELOADS, 0))
        ops1 = sum(t.ops for t in ls)
        self.assertGreater(ops1, ops0, "the clients made no request during the reloads")
        for b in (mcs["s3"], rds["s3"]):
            self.wait_no_conns(px, b.port, "s3 after the loop")
        fd1 = settle_fds(fd0, 5.0)
        rss1 = h.rss_kib(pid)
        sys.stdout.write("[%d reloads in %.1fs; %d requests; fds %d -> %d; VmRSS %d -> %d KiB] "
                         % (LOOP_RELOADS, took, ops1 - ops0, fd0, fd1, rss0, rss1))
        self.assertEqual(fd1, fd0, "fd count after %d reloads (settled 5 s)" % LOOP_RELOADS)
        self.assertLessEqual(rss1 - rss0, RSS_TOLERANCE_KIB,
                             "VmRSS grew by %d KiB over %d reloads" % (rss1 - rss0, LOOP_RELOADS))
        # the port of the pool removed last refuses
        self.assertFalse(h.can_connect(xport))
        time.sleep(h.scaled(0.3))
        stop.set()
        for t in ls:
            t.join(timeout=30)
        self.assertLoadersOk(ls)


# --------------------------------------------------------------------------
# 6. [cachemux] settings

class ProcessSettingsTest(ReloadTest):

    def accepted_lines(self, px, port, since, wait=0.3):
        """Open a client, make one request, return the `accepted client`
        lines logged since `since`."""
        with h.Client(port) as c:
            self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ")
            me = c.local_port
        time.sleep(h.scaled(wait))
        return [ln for ln in px.log_since(since)
                if re.search(r" accepted client 127\.0\.0\.1:%d on pool " % me, ln)]

    @h.requires("memcached")
    def test_log_level_and_max_request_size_take_effect(self):
        m1 = self.memcached(name="s1")
        px = self.rcachemux([h.Pool("a", [m1])], workers=2, verbose=None,
                            globals_={"log_level": 5})
        port = px.port()
        off = px.log_size()
        self.assertEqual(self.accepted_lines(px, port, off), [], "info line at log_level 5")
        line, off = px.reload(globals_=px.g(log_level=6))
        self.assertIn("reload: 1 pools, 0 changed (0 added, 0 removed)", line)
        px.wait_log(r"reload: log level 6$", since=off)
        self.assertEqual(len(self.accepted_lines(px, port, off)), 1,
                         "no `accepted client` info line after log_level = 6")
        line, off = px.reload(globals_=px.g(log_level=5))
        px.wait_log(r"reload: log level 5$", since=off)
        off = px.log_size()
        self.assertEqual(self.accepted_lines(px, port, off), [], "info line after log_level = 5")

        # max_request_size
        c = px.client()
        self.addCleanup(c.close)
        self.assertEqual(c.request(mc_store("big", b"x" * 5000)), b"STORED\r\n")
        px.reload(globals_=px.g(max_request_size=4096))
        self.assertEqual(c.request(mc_store("small", b"x" * 1000)), b"STORED\r\n")
        c.send(mc_store("big", b"y" * 5000))
        self.assertEqual(c.read_replies(1), [b"SERVER_ERROR object too large for cache\r\n"])
        self.assertClosed(c)
        self.assertEqual(m1.get("big"), b"x" * 5000)

    @h.requires("memcached")
    def test_restart_only_settings_logged_and_kept(self):
        m1 = self.memcached(name="s1")
        px = self.rcachemux([h.Pool("a", [m1])], workers=2, globals_={"mbuf_size": 16384})
        pid = px.proc.pid
        threads0 = len(os.listdir("/proc/%d/task" % pid))
        new_metrics = h.free_port()
        pidfile = h.tmp_path("reload.pid")
        line, off = px.reload(workers=3, globals_=px.g(
            metrics_listen="%s:%d" % (h.HOST, new_metrics), mbuf_size=8192, pid_file=pidfile))
        self.assertIn("reload: 1 pools, 0 changed (0 added, 0 removed)", line)
        log = "\n".join(px.log_since(off))
        for key in ("workers", "metrics_listen", "mbuf_size", "pid_file"):
            self.assertRegex(log, r"reload: '%s' needs a restart" % key)
        self.assertEqual(len(os.listdir("/proc/%d/task" % pid)), threads0, "thread count")
        m = metrics(px.metrics_port)     # still on the old port
        self.assertEqual(sorted(k for k in m if k.startswith("cachemux_worker_client_connections{")),
                         ['cachemux_worker_client_connections{worker="0"}',
                          'cachemux_worker_client_connections{worker="1"}'])
        self.assertFalse(h.can_connect(new_metrics), "metrics moved without a restart")
        self.assertFalse(os.path.exists(pidfile), "pid file written without a restart")
        off = px.log_size()
        for _ in range(30):
            with px.client() as c:
                self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ")
        lines = px.wait_log(r" accepted client \S+ on pool a$", since=off, count=30)
        tags = {re.search(r" (\S+) accepted client ", ln).group(1) for ln in lines}
        self.assertEqual(tags, {"w0", "w1"}, "workers accepting after `workers = 3`")
        # a 16 KiB+ value still works (mbuf_size kept or not, nothing breaks)
        with px.client() as c:
            v = os.urandom(20000)
            self.assertEqual(c.request(mc_store("v", v) + b"get v\r\n", 2),
                             b"STORED\r\n" + mc_value("v", v))

    @h.requires("memcached")
    def test_command_line_verbose_wins_over_log_level(self):
        m1 = self.memcached(name="s1")
        # -v 5 while the file raises log_level to 6: no info lines
        px = self.rcachemux([h.Pool("a", [m1])], workers=2, verbose=5, globals_={"log_level": 5})
        line, off = px.reload(globals_=px.g(log_level=6))
        self.assertIn("reload: 1 pools, 0 changed", line)
        self.assertEqual([ln for ln in px.log_since(off) if "log level" in ln], [])
        self.assertEqual(self.accepted_lines(px, px.port(), off), [],
                         "log_level = 6 in the file overrode -v 5")
        # -v 6 while the file lowers log_level to 3: info lines stay
        px2 = self.rcachemux([h.Pool("b", [m1])], workers=2, verbose=6, globals_={"log_level": 6})
        line, off = px2.reload(globals_=px2.g(log_level=3))
        self.assertIn("reload: 1 pools, 0 changed", line)
        self.assertEqual(len(self.accepted_lines(px2, px2.port(), off)), 1,
                         "log_level = 3 in the file overrode -v 6")


# --------------------------------------------------------------------------
# 7. a server's address changes, its identity stays

class AddressChangeTest(ReloadTest):

    @h.requires("memcached", "redis-server")
    def test_same_identity_new_address(self):
        m1, m2, m3 = (self.memcached() for _ in range(3))
        r1, r2, r3 = (self.redis() for _ in range(3))

        def pools(mc_s2, rd_s2, ports=(None, None)):
            return [h.Pool("mc", [(h.HOST, m1.port, 1, "s1"), (h.HOST, mc_s2.port, 1, "s2")],
                           port=ports[0]),
                    h.Pool("rd", [(h.HOST, r1.port, 1, "s1"), (h.HOST, rd_s2.port, 1, "s2")],
                           redis=True, port=ports[1])]

        px = self.rcachemux(pools(m2, r2), workers=2)
        ports = (px.port("mc"), px.port("rd"))
        pid = px.proc.pid
        keys = {tag: [skey(b"%s-%d" % (tag, i)) for i in range(60)] for tag in (b"pre", b"post")}
        allkeys = keys[b"pre"] + keys[b"post"]
        loc = {p: h.locate(px.conf, p, allkeys) for p in ("mc", "rd")}
        for p in ("mc", "rd"):
            for tag in keys:
                self.assertEqual({loc[p][k] for k in keys[tag]}, {"s1", "s2"})
        cm = px.client("mc")
        cr = px.client("rd")
        self.addCleanup(cm.close)
        self.addCleanup(cr.close)

        def write(tag):
            ks = keys[tag]
            data_m = b"".join(mc_store(k, b"v") for k in ks)
            self.assertEqual(cm.pipeline(data_m, len(ks)), [b"STORED\r\n"] * len(ks))
            data_r = b"".join(h.resp_command("SET", k, b"v") for k in ks)
            self.assertEqual(cr.pipeline(data_r, len(ks), resp=True), [b"+OK\r\n"] * len(ks))

        def where(tag, backs):
            got = {n: direct_get(b, keys[tag]) for n, b in backs.items()}
            return {k: sorted(n for n in backs if k in got[n]) for k in keys[tag]}

        write(b"pre")
        st0 = px.stats_json()
        s1_conns = (cm_conns_to(pid, m1.port), cm_conns_to(pid, r1.port))
        for pool, backs in (("mc", {"m1": m1, "m2": m2, "m3": m3}),
                            ("rd", {"m1": r1, "m2": r2, "m3": r3})):
            w = where(b"pre", backs)
            self.assertEqual(w, {k: ["m1" if loc[pool][k] == "s1" else "m2"] for k in keys[b"pre"]})

        line, _ = px.reload(pools=pools(m3, r3, ports))
        self.assertIn("reload: 2 pools, 2 changed (0 added, 0 removed)", line)
        # placement is by identity: -L gives the same servers
        self.assertEqual({p: h.locate(px.conf, p, allkeys) for p in ("mc", "rd")}, loc)
        write(b"post")      # through the connections opened before the reload
        for pool, backs in (("mc", {"m1": m1, "m2": m2, "m3": m3}),
                            ("rd", {"m1": r1, "m2": r2, "m3": r3})):
            w = where(b"post", backs)
            self.assertEqual(w, {k: ["m1" if loc[pool][k] == "s1" else "m3"]
                                 for k in keys[b"post"]},
                             "pool %s: where keys written after the reload are" % pool)
        self.wait_no_conns(px, m2.port, "memcached s2's old address")
        self.wait_no_conns(px, r2.port, "redis s2's old address")
        self.assertEqual((cm_conns_to(pid, m1.port), cm_conns_to(pid, r1.port)), s1_conns,
                         "conns to s1 (unchanged) were not kept")
        st1 = px.stats_json()
        for pool in ("mc", "rd"):
            self.assertGreaterEqual(st1[pool]["s1"]["requests"], st0[pool]["s1"]["requests"],
                                    "pool %s: s1's counters were reset" % pool)
            self.assertGreater(st1[pool]["s1"]["requests"], st0[pool]["s1"]["requests"])



# --------------------------------------------------------------------------
# other rules of README "Reload (SIGHUP)"

class FileLogCachemux(RCachemux):
    """cachemux logging through `log_file` in the INI instead of -o."""

    def _write_conf(self):
        g = dict(self.globals_ or {})
        if "log_file" not in g:
            g["log_file"] = os.path.join(self.dir, "from-ini.log")
        self.globals_ = g
        RCachemux._write_conf(self)

    def _argv(self):
        a = RCachemux._argv(self)
        i = a.index("-o")
        del a[i:i + 2]
        return a

    def _ready_in_log(self):
        return bool(h._READY_RE.search(h.read_text(self.globals_["log_file"])))


class MoreReloadRulesTest(ReloadTest):

    @h.requires("memcached")
    def test_listen_change_is_remove_plus_add(self):
        m1 = self.memcached(name="s1")
        pool = h.Pool("p", [m1])
        px = self.rcachemux([pool], workers=2)
        old_port = pool.port
        idle = px.client()
        self.addCleanup(idle.close)
        self.assertEqual(idle.request(mc_store("k", "v")), b"STORED\r\n")
        moved = h.Pool("p", [m1])
        line, _ = px.reload(pools=[moved])
        self.assertRegex(line, r"reload: 1 pools, [12] changed")
        with px.client() as c:
            self.assertEqual(c.request(b"get k\r\n"), mc_value("k", "v"))
        deadline = time.time() + h.scaled(3)
        while h.can_connect(old_port) and time.time() < deadline:
            time.sleep(0.02)
        self.assertFalse(h.can_connect(old_port), "the old listen address still accepts")
        self.assertClosed(idle, 3.0, "idle client of the old listen address")

    @h.requires("memcached")
    def test_servers_that_stay_keep_ejection_state_and_counters(self):
        m1, m3 = self.memcached(name="s1"), self.memcached(name="s3")
        dead = h.free_port()
        keys = dict(auto_eject_hosts=True, server_failure_limit=1, server_retry_timeout=60000)
        p = h.Pool("e", [m1, (h.HOST, dead, 1, "s2")], **keys)
        px = self.rcachemux([p], workers=2)
        cand = [skey(b"e%d" % i) for i in range(200)]
        loc = h.locate(px.conf, "e", cand)
        on_s2 = [k for k in cand if loc[k] == "s2"]
        self.assertGreater(len(on_s2), 20)
        with px.client() as c:
            r = c.request(b"get " + on_s2[0] + CRLF)
        self.assertEqual(r, b"SERVER_ERROR Connection refused\r\n")
        st0 = px.stats_json()
        self.assertEqual(st0["e"]["server_ejects"], 1)
        ejected_at = st0["e"]["s2"]["server_ejected_at"]
        self.assertGreater(ejected_at, 0)

        p2 = h.Pool("e", [m1, (h.HOST, dead, 1, "s2"), m3], port=p.port, **keys)
        line, _ = px.reload(pools=[p2])
        self.assertIn("reload: 1 pools, 1 changed (0 added, 0 removed)", line)
        st1 = px.stats_json()
        self.assertEqual(st1["e"]["s2"]["server_ejected_at"], ejected_at,
                         "s2's ejection time after the reload")
        self.assertEqual(st1["e"]["server_ejects"], 1, "server_ejects after the reload")
        self.assertGreaterEqual(st1["e"]["s1"]["requests"], st0["e"]["s1"]["requests"])
        # s2 is still out of the ring: its keys are served by s1 / s3, no error
        loc2 = h.locate(px.conf, "e", cand)
        on_s2 = [k for k in cand if loc2[k] == "s2"]
        with px.client() as c:
            data = b"".join(mc_store(k, b"x") for k in on_s2)
            replies = c.pipeline(data, len(on_s2))
        self.assertEqual([r for r in replies if r != b"STORED\r\n"], [],
                         "requests for the ejected s2's keys after the reload")
        self.assertEqual(px.stats_json()["e"]["server_ejects"], 1)

    @h.requires("redis-server")
    def test_redis_db_change_reaches_kept_servers(self):
        """redis_db is SELECTed on every new backend conn (doc/protocols.md 3): after a
        reload to redis_db = 1, the pool's data must land in db 1, also on
        servers whose identity and address stayed."""
        r1 = self.redis(name="s1")
        p = h.Pool("rd", [r1], redis=True, redis_db=0)
        px = self.rcachemux([p], workers=2)
        old = []
        for i in range(4):
            c = px.client()
            self.addCleanup(c.close)
            self.assertEqual(c.resp("SET", "pre%d" % i, "a"), b"+OK\r\n")
            old.append(c)
        p.keys["redis_db"] = 1
        line, _ = px.reload(pools=[p])
        self.assertIn("reload: 1 pools, 1 changed (0 added, 0 removed)", line)
        for i, c in enumerate(old):
            self.assertEqual(c.resp("SELECT", "1"), b"+OK\r\n")
            self.assertEqual(c.resp("SET", "post%d" % i, "b"), b"+OK\r\n")
        with px.client() as c:
            self.assertEqual(c.resp("SET", "postnew", "b"), b"+OK\r\n")
        with r1.client() as d:
            self.assertEqual(d.resp("SELECT", "1"), b"+OK\r\n")
            in1 = sorted(k for k in (["post%d" % i for i in range(4)] + ["postnew"])
                         if d.resp("EXISTS", k) == b":1\r\n")
            self.assertEqual(d.resp("SELECT", "0"), b"+OK\r\n")
            in0 = sorted(k for k in (["post%d" % i for i in range(4)] + ["postnew"])
                         if d.resp("EXISTS", k) == b":1\r\n")
        self.assertEqual((in1, in0), (["post0", "post1", "post2", "post3", "postnew"], []),
                         "(keys in db 1, keys in db 0) written after the reload to redis_db = 1")

    @h.requires("memcached")
    def test_shutdown_timeout_takes_effect(self):
        m1 = self.memcached(name="s1")
        px = self.rcachemux([h.Pool("a", [m1])], workers=2, globals_={"shutdown_timeout": 20000})
        px.reload(globals_=px.g(shutdown_timeout=500))
        c = px.client(timeout=30)
        self.addCleanup(c.close)
        self.assertEqual(c.request(mc_store("k", "v")), b"STORED\r\n")
        os.kill(m1.proc.pid, signal.SIGSTOP)
        self.addCleanup(lambda: m1.alive and os.kill(m1.proc.pid, signal.SIGCONT))
        c.send(b"get k\r\n")
        time.sleep(h.scaled(0.2))
        t0 = time.time()
        px.stop()
        took = time.time() - t0
        bound = 0.5 + 1.0 if not SANITIZED else 8.0
        self.assertLess(took, bound, "cachemux took %.2fs to stop with shutdown_timeout = 500 "
                        "(was 20000 before the reload)" % took)

    @h.requires("memcached")
    def test_log_file_takes_effect(self):
        m1 = self.memcached(name="s1")
        px = FileLogCachemux([h.Pool("a", [m1])], workers=2).start()
        self.addCleanup(px.stop)
        first = px.globals_["log_file"]
        px.log = first
        h.note_log("cachemux log_file", first)
        with px.client() as c:
            self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ")
        px.wait_log(r" accepted client ", since=0)
        second = h.tmp_path("second.log")
        px.log = second
        h.note_log("cachemux second log_file", second)
        line, off = px.reload(globals_=px.g(log_file=second))
        self.assertIn("reload: 1 pools, 0 changed", line)
        size_first = os.path.getsize(first)
        with px.client() as c:
            self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ")
            me = c.local_port
        px.wait_log(r" accepted client 127\.0\.0\.1:%d " % me, since=0)
        time.sleep(h.scaled(0.2))
        self.assertNotIn(":%d " % me, h.read_text(first), "the old log_file still gets new lines")
        self.assertEqual(os.path.getsize(first), size_first, "the old log_file grew")

    @h.requires("memcached")
    def test_output_flag_wins_over_log_file(self):
        m1 = self.memcached(name="s1")
        px = self.rcachemux([h.Pool("a", [m1])], workers=2)
        other = h.tmp_path("not-used.log")
        line, off = px.reload(globals_=px.g(log_file=other))
        self.assertIn("reload: 1 pools, 0 changed", line)
        self.assertEqual(len(ProcessSettingsTest.accepted_lines(self, px, px.port(), off)), 1)
        self.assertFalse(os.path.exists(other), "log_file in the INI overrode -o")

    @h.requires("memcached")
    def test_placement_settings_change_routes_by_new_ring(self):
        ms = {n: self.memcached(name=n) for n in ("s1", "s2", "s3")}
        p = h.Pool("pl", list(ms.values()))
        px = self.rcachemux([p], workers=2)
        c = px.client()
        self.addCleanup(c.close)
        old_conf = h.tmp_path("old-placement.ini")
        with open(old_conf, "w") as f:
            f.write(open(px.conf).read())
        self.check_routing(px, "pl", False, ms, "before", ("s1", "s2", "s3"), client=c)
        p2 = h.Pool("pl", list(ms.values()), port=p.port, hash="md5", distribution="modula")
        line, _ = px.reload(pools=[p2])
        self.assertIn("reload: 1 pools, 1 changed (0 added, 0 removed)", line)
        per, loc = self.check_routing(px, "pl", False, ms, "after", ("s1", "s2", "s3"), n=60,
                                      client=c)
        old = h.locate(old_conf, "pl", list(loc))
        moved = sum(1 for k in loc if old[k] != loc[k])
        self.assertGreater(moved, 15, "md5/modula placed the keys like fnv1a_64/ketama")



# --------------------------------------------------------------------------
# reload deadlines: nothing a reload retires can be held forever

class RetireDeadlineTest(ReloadTest):

    @h.requires("memcached")
    def test_stalled_request_of_removed_pool_closed_after_drain_timeout(self):
        """A removed pool's client stuck in a partial request never reaches
        a request boundary: it is closed once shutdown_timeout has passed,
        and the pool is then freed."""
        m1, m2 = self.memcached(name="s1"), self.memcached(name="s2")
        base, gone = h.Pool("base", [m1]), h.Pool("gone", [m2])
        px = self.rcachemux([base, gone], workers=1, globals_={"shutdown_timeout": 1500})
        stall = h.Client(px.port("gone"))
        self.addCleanup(stall.close)
        self.assertEqual(stall.request(mc_store("k", "v")), b"STORED\r\n")
        stall.send(b"set half 0 0 10\r\nabc")
        time.sleep(h.scaled(0.2))
        t0 = time.time()
        line, off = px.reload(pools=[base])
        self.assertIn("1 removed", line)
        self.assertOpen(stall, 0.5, "the stalled client before the drain timeout")
        self.assertClosed(stall, 6.0, "the stalled client of the removed pool")
        waited = time.time() - t0
        px.wait_log(r"pool gone: removed; closing 1 clients still busy after the drain timeout",
                    since=off)
        px.wait_log(r"pool gone: removed$", since=off)
        if not SANITIZED:
            self.assertGreater(waited, 1.2)
            self.assertLess(waited, 4.0)
        with px.client("base") as c:
            self.assertEqual(c.request(mc_store("b", "1")), b"STORED\r\n")

    @h.requires("redis-server")
    def test_timeout_turned_off_with_a_stuck_retiring_server(self):
        """A server that leaves the pool in a reload that also turns the
        timeout off still closes its stuck conn (an unanswered tombstone) a
        further timeout later: each request keeps the timeout it was queued
        with."""
        r1, r2 = self.redis(name="r1"), self.redis(name="r2")
        p = h.Pool("p", [r1, r2], redis=True, timeout=300)
        px = self.rcachemux([p], workers=1)
        keys = [skey(b"stuck%d" % i) for i in range(50)]
        loc = h.locate(px.conf, "p", keys)
        k1 = [k for k in keys if loc[k] == "r1"][0]
        c = px.client()
        self.addCleanup(c.close)
        self.assertEqual(c.resp("SET", k1, "v"), b"+OK\r\n")
        self.assertEqual(len(cm_conns_to(px.proc.pid, r1.port)), 1)
        os.kill(r1.proc.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, r1.proc.pid, signal.SIGCONT)
        self.assertEqual(c.resp("GET", k1, timeout=5), b"-ERR Connection timed out\r\n")
        # r1 leaves and the timeout goes: its conn still holds the tombstone
        line, off = px.reload(pools=[h.Pool("p", [r2], redis=True, port=p.port)])
        self.assertIn("1 changed", line)
        self.wait_no_conns(px, r1.port, "the retired, stuck server", timeout=3.0)
        os.kill(r1.proc.pid, signal.SIGCONT)
        self.assertEqual(c.resp("SET", k1, "w"), b"+OK\r\n")


if __name__ == "__main__":
    h.main(require=("memcached", "redis-server"), test_timeout=300)
