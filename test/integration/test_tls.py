#!/usr/bin/python3
"""TLS on both hops, against real TLS backends and real TLS clients.

Certificates come from tlsutil.make_pki (the openssl CLI, at setup): a CA,
a server certificate for 127.0.0.1, a renewed one, client certificates
from the CA, from another CA, and an expired one.

- Both hops: redis-cli --tls and redis-py with ssl through a TLS pool to
  redis-server --tls-port (splits, EVAL, a pipeline of 1,000, 5 MiB
  values); pymemcache with a TLS context to memcached -Z.
- Mixed: TLS clients to plaintext servers, plaintext clients to TLS
  servers.
- Mutual TLS: no certificate, another CA's, an expired one: refused,
  counted by reason, logged; a good client is served before and after.
- Hostile clients: plaintext to a TLS port, a handshake that stops half
  way (closed at tls_handshake_timeout), random bytes after a ClientHello,
  1,000 handshakes at once; tls_max_handshakes pauses accepting.
- Reload: a renewed certificate under 50 busy TLS clients (none fails or
  is closed; new connections get the new serial); a key that does not
  match, an expired certificate and a missing key each reject the reload
  with FILE:LINE of their key, and the old certificate stays.
- Server side: verification against the wrong CA fails with the reason,
  server_tls_name, resumption of server sessions across reconnects.
- Metrics: handshakes, resumed, failures by reason, connections by
  version, the certificate's expiry.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_tls.py [NAME-SUBSTRING...]
"""

import os
import random
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import bulk, metric, scrape, wait_for  # noqa: E402
import tlsutil  # noqa: E402

import redis  # noqa: E402
from pymemcache.client.base import Client as McClient  # noqa: E402


def _serial(sock):
    """The serial number (an int) of the certificate an SSL socket got."""
    der = sock.getpeercert(binary_form=True)
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True)
    return int(r.stdout.decode().strip().split("=")[1], 16)


class TLSTest(h.IntegrationTest):

    @classmethod
    def setUpClass(cls):
        cls.pki = tlsutil.make_pki()

    def tls_keys(self, **extra):
        pem, key = self.pki["server"]
        keys = {"tls": True, "tls_cert_file": pem, "tls_key_file": key}
        keys.update(extra)
        return keys

    def server_keys(self, **extra):
        keys = {"server_tls": True, "server_tls_ca_file": self.pki["ca"][0]}
        keys.update(extra)
        return keys

    def start(self, pools, workers=2, globals_=None, **kw):
        self.mport = h.free_port()
        g = {"metrics_listen": "127.0.0.1:%d" % self.mport}
        g.update(globals_ or {})
        return self.cachemux(pools, workers=workers, globals_=g, **kw)

    def m(self, name, **labels):
        return metric(scrape(self.mport)[1], name, **labels)

    def tls_conn(self, port, cert=None, session=None, ctx=None):
        ctx = ctx or tlsutil.client_context(self.pki, cert)
        s = socket.create_connection((h.HOST, port), timeout=h.scaled(5))
        return ctx.wrap_socket(s, server_hostname="127.0.0.1", session=session)

    def tls_request(self, port, data, n=1, cert=None, resp=True):
        """Send data on a new TLS connection and read n replies."""
        with self.tls_conn(port, cert) as s:
            s.sendall(data)
            buf = b""
            end = h.resp_reply_end if resp else h.mc_reply_end
            got = 0
            pos = 0
            while got < n:
                e = end(buf, pos)
                if e is None or e < 0:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise h.Closed("closed after %d replies" % got, buf)
                    buf += chunk
                    continue
                pos = e
                got += 1
            return buf

    # ------------------------------------------------------------------
    # both hops

    @h.requires("redis-server")
    def test_redis_both_hops(self):
        backends = [tlsutil.RedisTLS(self.pki, name="r%d" % i).start() for i in range(2)]
        keys = self.tls_keys()
        keys.update(self.server_keys())
        px = self.start([h.Pool("alpha", backends, redis=True, **keys)])
        port = px.port("alpha")
        cli = shutil.which("redis-cli")
        if cli:
            for args, want in ((["set", "cli", "x1"], "OK"), (["get", "cli"], "x1")):
                r = subprocess.run([cli, "--tls", "--cacert", self.pki["ca"][0], "-h", h.HOST,
                                    "-p", str(port)] + args, capture_output=True, text=True,
                                   timeout=h.scaled(10))
                self.assertEqual(r.stdout.strip(), want, r.stderr)
        r = redis.Redis(host=h.HOST, port=port, ssl=True, ssl_ca_certs=self.pki["ca"][0],
                        socket_timeout=h.scaled(20))
        # splits across both servers
        kv = {"k%d" % i: "v%d" % i for i in range(200)}
        self.assertTrue(r.mset(kv))
        self.assertEqual(r.mget(list(kv)), [v.encode() for v in kv.values()])
        self.assertEqual(r.exists(*list(kv)[:50]), 50)
        per = [tlsutil.h.Client(b.port) for b in backends]
        found = [int(c.resp("DBSIZE")[1:-2]) for c in per]
        for c in per:
            c.close()
        self.assertEqual(sum(found), 201)
        self.assertTrue(all(f > 30 for f in found), found)
        self.assertEqual(r.delete(*list(kv)[:100]), 100)
        # EVAL
        self.assertEqual(r.eval("return redis.call('incrby', KEYS[1], ARGV[1])", 1, "ev", 5), 5)
        # a pipeline of 1,000
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.set("p%d" % i, "x" * (i % 50))
        p.execute()
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.get("p%d" % i)
        self.assertEqual(p.execute(), [b"x" * (i % 50) for i in range(1000)])
        # 5 MiB values, through the chunked body path both ways
        for size in (5 * 1024 * 1024, 5 * 1024 * 1024 + 1, 65537):
            v = os.urandom(size)
            self.assertTrue(r.set("big", v))
            self.assertEqual(r.get("big"), v)
        r.close()
        self.assertGreaterEqual(self.m("cachemux_tls_handshakes_total", pool="alpha"), 1)
        self.assertGreaterEqual(self.m("cachemux_server_tls_handshakes_total", pool="alpha",
                                       server="r0"), 1)
        self.assertEqual(self.m("cachemux_tls_handshakes_failed_total", pool="alpha",
                                reason="protocol"), 0)
        px.stop()

    @h.requires("memcached")
    def test_memcached_both_hops(self):
        backends = [tlsutil.MemcachedTLS(self.pki, name="m%d" % i).start() for i in range(2)]
        keys = self.tls_keys()
        keys.update(self.server_keys())
        # fnv1a_64 puts every short "kN" on one of two servers named m0/m1
        px = self.start([h.Pool("mc", backends, hash="md5", **keys)])
        port = px.port("mc")
        ctx = tlsutil.client_context(self.pki)
        mc = McClient((h.HOST, port), tls_context=ctx, timeout=h.scaled(10))
        kv = {"k%d" % i: b"v%d" % i for i in range(200)}
        self.assertEqual(mc.set_many(kv), [])
        self.assertEqual(mc.get_many(list(kv)), kv)
        items = [int(b.stats()["curr_items"]) for b in backends]
        self.assertTrue(all(n > 30 for n in items), items)
        big = os.urandom(2 * 1024 * 1024 + 3)
        self.assertTrue(mc.set("big", big))
        self.assertEqual(mc.get("big"), big)
        mc.close()
        # a pipeline of 1,000 gets on one TLS connection
        batch = b"".join(b"get k%d\r\n" % (i % 200) for i in range(1000))
        out = self.tls_request(port, batch, n=1000, resp=False)
        self.assertEqual(out.count(b"VALUE "), 1000)
        self.assertGreaterEqual(self.m("cachemux_server_tls_handshakes_total", pool="mc",
                                       server="m1"), 1)
        px.stop()

    @h.requires("redis-server")
    def test_mixed(self):
        plain = self.redis()
        tlsb = tlsutil.RedisTLS(self.pki).start()
        px = self.start([h.Pool("tc", [plain], redis=True, **self.tls_keys()),
                         h.Pool("ts", [tlsb], redis=True, **self.server_keys())])
        out = self.tls_request(px.port("tc"), h.resp_command("SET", "a", "1") +
                               h.resp_command("GET", "a"), n=2)
        self.assertEqual(out, b"+OK\r\n$1\r\n1\r\n")
        with px.client("ts") as c:
            self.assertEqual(c.resp("SET", "b", "2"), b"+OK\r\n")
            self.assertEqual(c.resp("GET", "b"), b"$1\r\n2\r\n")
        with tlsb.client() as c:
            self.assertEqual(c.resp("GET", "b"), b"$1\r\n2\r\n")
        px.stop()

    # ------------------------------------------------------------------
    # mutual TLS

    @h.requires("redis-server")
    def test_mutual_tls(self):
        b = self.redis()
        px = self.start([h.Pool("mt", [b], redis=True,
                                **self.tls_keys(tls_ca_file=self.pki["ca"][0],
                                                tls_verify_client=True))], workers=1)
        port = px.port("mt")
        ping = h.resp_command("PING")
        # (the harness's readiness probe was a TLS failure too: deltas below)
        closed0 = self.m("cachemux_client_closed_total", pool="mt", reason="tls_handshake")
        self.assertEqual(self.tls_request(port, ping, cert="client"), b"+PONG\r\n")
        cases = (("no_certificate", None, "peer did not return a certificate"),
                 ("bad_certificate", "other_client", "unable to get local issuer certificate"),
                 ("bad_certificate", "expired", "certificate has expired"))
        for reason, cert, text in cases:
            before = self.m("cachemux_tls_handshakes_failed_total", pool="mt", reason=reason)
            off = px.log_size()
            with self.assertRaises((ssl.SSLError, h.Closed, ConnectionError, OSError)):
                self.tls_request(port, ping, cert=cert)
            wait_for(lambda: self.m("cachemux_tls_handshakes_failed_total", pool="mt",
                                    reason=reason) == before + 1, 5, "%s counted" % reason)
            px.wait_log(re.escape(text), since=off)
            # the worker keeps serving others
            self.assertEqual(self.tls_request(port, ping, cert="client"), b"+PONG\r\n")
        closed = self.m("cachemux_client_closed_total", pool="mt", reason="tls_handshake")
        self.assertEqual(closed - closed0, 3)
        px.stop()

    # ------------------------------------------------------------------
    # hostile clients

    def _client_hello(self):
        """The bytes of a real ClientHello (made by Python's SSLObject)."""
        ctx = tlsutil.client_context(self.pki)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        o = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
        with self.assertRaises(ssl.SSLWantReadError):
            o.do_handshake()
        return out.read()

    @h.requires("redis-server")
    def test_hostile_clients(self):
        b = self.redis()
        px = self.start([h.Pool("ho", [b], redis=True, **self.tls_keys())], workers=1,
                        globals_={"tls_handshake_timeout": 800})
        port = px.port("ho")
        ping = h.resp_command("PING")

        def failed(reason):
            return self.m("cachemux_tls_handshakes_failed_total", pool="ho", reason=reason)

        # plaintext to a TLS port: closed, counted as not TLS
        with h.Client(port) as c:
            c.send(ping)
            self.assertTrue(c.is_closed(timeout=h.scaled(5)))
        wait_for(lambda: failed("protocol") == 1, 5, "plaintext counted")
        # a handshake that stops half way: closed at tls_handshake_timeout
        hello = self._client_hello()
        with h.Client(port) as c:
            c.send(hello[:len(hello) // 2])
            self.assertTrue(c.is_closed(timeout=h.scaled(5)))
        wait_for(lambda: failed("timeout") == 1, 5, "timeout counted")
        # random bytes after a whole ClientHello
        rnd = random.Random(13)
        for i in range(20):
            with h.Client(port) as c:
                c.send(hello + bytes(rnd.getrandbits(8) for _ in range(1 + i * 97)))
                try:
                    c.read_until_close(timeout=5)  # a ServerHello perhaps, then the close
                except ConnectionResetError:
                    pass  # closed with our random bytes unread
        self.assertEqual(self.tls_request(port, ping), b"+PONG\r\n")
        self.assertEqual(self.tls_request(port, ping), b"+PONG\r\n")
        px.stop()

    @h.requires("redis-server")
    def test_thousand_handshakes(self):
        b = self.redis()
        px = self.start([h.Pool("th", [b], redis=True, backlog=2048, **self.tls_keys())],
                        workers=1)
        port = px.port("th")
        ping = h.resp_command("PING")
        # 1,000 handshakes at once, driven without blocking from one thread
        ctx = tlsutil.client_context(self.pki)
        conns = []
        for _ in range(1000):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((h.HOST, port))
            conns.append(ctx.wrap_socket(s, server_hostname="127.0.0.1",
                                         do_handshake_on_connect=False))
        pending = set(conns)
        deadline = time.time() + h.scaled(60)
        while pending and time.time() < deadline:
            want_r, want_w = [], []
            for s in list(pending):
                try:
                    s.do_handshake()
                    pending.discard(s)
                except ssl.SSLWantReadError:
                    want_r.append(s)
                except ssl.SSLWantWriteError:
                    want_w.append(s)
                except (BlockingIOError, InterruptedError):
                    want_w.append(s)
            if pending:
                select.select(want_r, want_w, [], 0.2)
        self.assertEqual(len(pending), 0, "handshakes left unfinished")
        for s in conns[::50]:
            s.setblocking(True)
            s.settimeout(h.scaled(5))
            s.sendall(ping)
            self.assertEqual(s.recv(100), b"+PONG\r\n")
        for s in conns:
            s.close()
        self.assertGreaterEqual(self.m("cachemux_tls_handshakes_total", pool="th"), 1000)
        self.assertEqual(self.tls_request(port, ping), b"+PONG\r\n")
        px.stop()

    @h.requires("redis-server")
    def test_max_handshakes(self):
        b = self.redis()
        px = self.start([h.Pool("cap", [b], redis=True, **self.tls_keys())], workers=1,
                        globals_={"tls_max_handshakes": 3})
        port = px.port("cap")
        off = px.log_size()
        stalled = [h.Client(port) for _ in range(3)]
        px.wait_log(r"accepted client .* on pool cap", since=off, count=3)
        # the fourth waits in the accept queue: its handshake cannot finish
        ctx = tlsutil.client_context(self.pki)
        raw = socket.create_connection((h.HOST, port))
        tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1", do_handshake_on_connect=False)
        tls.setblocking(False)
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        px.wait_log(r"tls_max_handshakes\): accepting paused", since=off)
        self.assertEqual(self.m("cachemux_tls_handshakes_total", pool="cap"), 0)
        # a stalled one gives up: the fourth is accepted and served
        stalled[0].close()
        tls.settimeout(h.scaled(10))
        tls.do_handshake()
        tls.sendall(h.resp_command("PING"))
        self.assertEqual(tls.recv(100), b"+PONG\r\n")
        tls.close()
        for c in stalled[1:]:
            c.close()
        px.stop()

    # ------------------------------------------------------------------
    # reload

    @h.requires("redis-server")
    def test_reload_renewed_certificate(self):
        b = self.redis()
        d = h.tmp_dir("certs")
        pem, key = os.path.join(d, "cm.pem"), os.path.join(d, "cm.key")
        shutil.copy(self.pki["server"][0], pem)
        shutil.copy(self.pki["server"][1], key)
        px = self.start([h.Pool("rl", [b], redis=True, tls=True, tls_cert_file=pem,
                                tls_key_file=key)], workers=2)
        port = px.port("rl")
        first = self.tls_conn(port)
        self.assertEqual(_serial(first), 0x1001)
        first.close()
        stop = threading.Event()
        errors, counts = [], [0] * 50
        ready = threading.Barrier(51)

        def client(i):
            try:
                with self.tls_conn(port) as s:
                    ready.wait()
                    while not stop.is_set():
                        s.sendall(h.resp_command("SET", "c%d" % i, str(counts[i])) +
                                  h.resp_command("GET", "c%d" % i))
                        want = b"+OK\r\n$%d\r\n%d\r\n" % (len(str(counts[i])), counts[i])
                        got = b""
                        while len(got) < len(want):
                            chunk = s.recv(100)
                            if not chunk:
                                raise AssertionError("closed")
                            got += chunk
                        if got != want:
                            raise AssertionError("%r != %r" % (got, want))
                        counts[i] += 1
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append("client %d: %r" % (i, e))
                if ready.n_waiting:
                    ready.abort()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(50)]
        for t in threads:
            t.start()
        ready.wait()
        hs_closed0 = self.m("cachemux_client_closed_total", pool="rl", reason="tls_handshake")
        wait_for(lambda: min(counts) > 5, 20, "every client busy")
        # renew: new certificate and key, same file names
        shutil.copy(self.pki["server2"][0], pem)
        shutil.copy(self.pki["server2"][1], key)
        px.reload()
        mark = list(counts)
        wait_for(lambda: all(c > m + 5 for c, m in zip(counts, mark)), 20,
                 "every client busy after the reload")
        renewed = self.tls_conn(port)
        self.assertEqual(_serial(renewed), 0x2002)
        renewed.close()
        # a key that does not match: rejected, FILE:LINE of tls_key_file
        shutil.copy(self.pki["other_client"][1], key)
        line, off = px.reload(expect="rejected")
        lines = open(px.conf).read().split("\n")
        kline = [i + 1 for i, l in enumerate(lines) if l.startswith("tls_key_file")][0]
        px.wait_log(re.escape("%s:%d: pool rl: tls_key_file" % (px.conf, kline)) +
                    ".*does not match", since=off)
        # an expired certificate (with its own key), then a key that is gone
        cline = [i + 1 for i, l in enumerate(lines) if l.startswith("tls_cert_file")][0]
        shutil.copy(self.pki["expired"][0], pem)
        shutil.copy(self.pki["expired"][1], key)
        line, off = px.reload(expect="rejected")
        px.wait_log(re.escape("%s:%d: pool rl: tls_cert_file '%s': the certificate expired on "
                              "2021-01-01" % (px.conf, cline, pem)), since=off)
        os.unlink(key)
        line, off = px.reload(expect="rejected")
        px.wait_log(re.escape("%s:%d: pool rl: tls_key_file '%s': cannot read it" %
                              (px.conf, kline, key)), since=off)
        still = self.tls_conn(port)
        self.assertEqual(_serial(still), 0x2002)
        still.close()
        # all 50 still open (a client that saw a close has an error below)
        wait_for(lambda: self.m("cachemux_client_connections", pool="rl") == 50, 5,
                 "the 50 clients alone open")
        stop.set()
        for t in threads:
            t.join(h.scaled(10))
        self.assertEqual(errors, [])
        self.assertEqual(self.m("cachemux_client_closed_total", pool="rl",
                                reason="tls_handshake"), hs_closed0)
        px.stop()

    # ------------------------------------------------------------------
    # server side

    @h.requires("redis-server")
    def test_server_verification(self):
        b = tlsutil.RedisTLS(self.pki, name="rv").start()
        px = self.start([h.Pool("wrongca", [b], redis=True,
                                **self.server_keys(server_tls_ca_file=self.pki["other_ca"][0])),
                         h.Pool("byname", [b], redis=True,
                                **self.server_keys(server_tls_name="localhost")),
                         h.Pool("badname", [b], redis=True,
                                **self.server_keys(server_tls_name="other.example")),
                         h.Pool("noverify", [b], redis=True, server_tls=True,
                                server_tls_verify=False)], workers=1)
        with px.client("wrongca") as c:
            self.assertTrue(c.resp("GET", "x").startswith(b"-ERR"))
        px.wait_log(r"tls: pool wrongca: 127\.0\.0\.1:%d \(server rv\): certificate verify "
                    r"failed: " % b.tls_port)
        self.assertGreaterEqual(self.m("cachemux_server_tls_handshakes_failed_total",
                                       pool="wrongca", server="rv", reason="bad_certificate"), 1)
        with px.client("byname") as c:
            self.assertEqual(c.resp("SET", "x", "1"), b"+OK\r\n")
        with px.client("badname") as c:
            self.assertTrue(c.resp("GET", "x").startswith(b"-ERR"))
        px.wait_log(r"tls: pool badname: .*: certificate verify failed: hostname mismatch")
        # logged at load, before the log file is opened: on stderr
        self.assertIn("pool noverify: server_tls_verify = false", h.read_text(px.log + ".out"))
        with px.client("noverify") as c:
            self.assertEqual(c.resp("GET", "x"), b"$1\r\n1\r\n")
        px.stop()

    @h.requires("redis-server")
    def test_resumption(self):
        b = tlsutil.RedisTLS(self.pki, name="rs").start()
        keys = self.tls_keys()
        keys.update(self.server_keys())
        px = self.start([h.Pool("res", [b], redis=True, **keys)], workers=1)
        port = px.port("res")
        # client side: a ticket from the first connection resumes the second
        ctx = tlsutil.client_context(self.pki)
        s1 = self.tls_conn(port, ctx=ctx)
        s1.sendall(h.resp_command("PING"))
        self.assertEqual(s1.recv(100), b"+PONG\r\n")  # the ticket has come with it
        sess = s1.session
        s1.close()
        s2 = self.tls_conn(port, session=sess, ctx=ctx)
        s2.sendall(h.resp_command("PING"))
        self.assertEqual(s2.recv(100), b"+PONG\r\n")
        self.assertTrue(s2.session_reused)
        s2.close()
        self.assertGreaterEqual(self.m("cachemux_tls_handshakes_resumed_total", pool="res"), 1)
        # server side: the backend drops cachemux's conn; the reconnect resumes
        with self.tls_conn(port, ctx=ctx) as c:
            def cmd(*args):
                c.sendall(h.resp_command(*args))
                return c.recv(100)
            self.assertEqual(cmd("SET", "k", "v"), b"+OK\r\n")
            with b.client() as direct:
                direct.resp("CLIENT", "KILL", "TYPE", "normal")
            # the first request may meet the dead conn and fail; a next one reconnects
            for _ in range(3):
                r = cmd("GET", "k")
                if r == b"$1\r\nv\r\n":
                    break
            self.assertEqual(r, b"$1\r\nv\r\n")
        wait_for(lambda: self.m("cachemux_server_tls_handshakes_total", pool="res",
                                server="rs") >= 2, 5, "a second server handshake")
        self.assertGreaterEqual(self.m("cachemux_server_tls_handshakes_resumed_total",
                                       pool="res", server="rs"), 1)
        px.stop()

    @h.requires("redis-server")
    def test_metrics(self):
        b = self.redis()
        px = self.start([h.Pool("mx", [b], redis=True,
                                **self.tls_keys(tls_protocols="TLSv1.2"))], workers=1)
        s = self.tls_conn(px.port("mx"))
        self.assertEqual(s.version(), "TLSv1.2")
        wait_for(lambda: self.m("cachemux_tls_connections", pool="mx", version="TLSv1.2") == 1,
                 5, "one TLS 1.2 connection counted")
        self.assertEqual(self.m("cachemux_tls_connections", pool="mx", version="TLSv1.3"), 0)
        s.close()
        wait_for(lambda: self.m("cachemux_tls_connections", pool="mx", version="TLSv1.2") == 0,
                 5, "the gauge back to 0")
        end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                              self.pki["server"][0]], capture_output=True, text=True)
        when = ssl.cert_time_to_seconds(end.stdout.strip().split("=", 1)[1])
        self.assertEqual(self.m("cachemux_tls_cert_expiry_timestamp_seconds", pool="mx",
                                file=self.pki["server"][0]), when)
        px.stop()

    def test_start_errors(self):
        # every TLS file and list is checked at start as at reload, FILE:LINE of its key
        pem, key = self.pki["server"]
        d = h.tmp_dir("conf")
        cases = (
            ({"tls_ciphers": "NOPE"}, "tls_ciphers", "tls_ciphers 'NOPE': no cipher match"),
            ({"tls_ciphersuites": "TLS_NOPE"}, "tls_ciphersuites",
             "tls_ciphersuites 'TLS_NOPE': no cipher match"),
            ({"tls_cert_file": os.path.join(d, "gone.pem")}, "tls_cert_file",
             "cannot read it: No such file or directory"),
            ({"tls_cert_file": self.pki["expired"][0], "tls_key_file": self.pki["expired"][1]},
             "tls_cert_file", "the certificate expired on 2021-01-01"),
            ({"tls_ca_file": key, "tls_verify_client": True}, "tls_ca_file",
             "no PEM certificates"),
        )
        for extra, k, want in cases:
            keys = self.tls_keys(**extra)
            path = h.write_ini(os.path.join(d, "c.ini"),
                               [h.Pool("p", [(h.HOST, 1, 1)], port=h.free_port(), **keys)])
            line = [i + 1 for i, l in enumerate(open(path).read().split("\n"))
                    if l.startswith(k + " ")][0]
            r = subprocess.run([h.CACHEMUX, "-t", "-c", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("%s:%d: pool p: %s " % (path, line, k), r.stderr)
            self.assertIn(want, r.stderr)

    @h.requires("redis-server")
    def test_ktls_opt_in(self):
        try:
            with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
                offered = "tls" in f.read().split()
        except OSError:
            offered = False
        b = self.redis()
        px = self.start([h.Pool("kt", [b], redis=True, **self.tls_keys(tls_ktls=True))],
                        workers=1)
        out = h.read_text(px.log + ".out")
        if offered:
            self.assertNotIn("tls_ktls = true but the kernel offers no kTLS", out)
        else:
            self.assertIn("pool kt: tls_ktls = true but the kernel offers no kTLS", out)
        # served either way: through the kernel's records or OpenSSL's
        for size in (10, 300000):
            v = b"k" * size
            out = self.tls_request(px.port("kt"), h.resp_command("SET", "kk", v) +
                                   h.resp_command("GET", "kk"), n=2)
            self.assertEqual(out, b"+OK\r\n" + bulk(v))
        if not offered:
            self.assertNotIn("kTLS", px.wait_log(r"pool kt: TLS with client")[0])
        px.stop()


if __name__ == "__main__":
    h.main(require=("redis-server", "memcached"), test_timeout=300)
