#!/usr/bin/python3
"""Byte limits and local resource limits, against real memcached and
redis-server backends:

- client_output_limit: a client that pipelines GETs of a 1 MiB value and
  never reads is closed once the replies held for it pass the limit; the
  proxy's RSS grows by at most the limit + 16 MiB; the close is logged and
  counted (cachemux_client_closed_total{reason="output_limit"}); another
  client on the same worker and server connection is answered throughout.
  Both protocols.
- Out of file descriptors: with the process's descriptors used up by
  clients, a request that needs a new backend connection fails with
  "Too many open files"; the server is not counted as failed (with
  auto_eject_hosts and server_failure_limit = 1, a failure would eject it
  for a minute), so once descriptors are free again the same keys are
  served at once.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_limits.py [NAME-SUBSTRING...]
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import SANITIZED, metric, scrape  # noqa: E402

MIB = 1 << 20


class OutputLimitTest(h.IntegrationTest):
    LIMIT = 32 * MIB
    VALUE = b"v" * MIB
    NGETS = 400

    def start(self, redis):
        backend = self.redis() if redis else self.memcached(max_item="4m")
        self.mport = h.free_port()
        pool = h.Pool("p", [backend], redis=redis, timeout=10000)
        # ASan keeps freed blocks in a quarantine (256 MiB by default) that
        # would read as RSS growth: a small one still catches a use after free.
        cmx = self.cachemux([pool], workers=1, asan_extra="quarantine_size_mb=4", globals_={
            "max_request_size": 2 * MIB, "client_output_limit": self.LIMIT,
            "metrics_listen": "127.0.0.1:%d" % self.mport})
        return cmx

    def closed_for_output(self):
        _, fams = scrape(self.mport)
        return metric(fams, "cachemux_client_closed_total", pool="p", reason="output_limit")

    def run_case(self, redis):
        cmx = self.start(redis)
        if redis:
            set_big = h.resp_command("SET", "big", self.VALUE)
            get_big = h.resp_command("GET", "big")
            set_small = h.resp_command("SET", "small", "tiny")
            get_small = h.resp_command("GET", "small")
            small_reply = b"$4\r\ntiny\r\n"
        else:
            set_big = b"set big 0 0 %d\r\n%s\r\n" % (len(self.VALUE), self.VALUE)
            get_big = b"get big\r\n"
            set_small = b"set small 0 0 4\r\ntiny\r\n"
            get_small = b"get small\r\n"
            small_reply = b"VALUE small 0 4\r\ntiny\r\nEND\r\n"
        read = (lambda c, n: c.read_resp(n)) if redis else (lambda c, n: c.read_replies(n))
        with cmx.client() as c:
            c.send(set_big + set_small)
            self.assertEqual(len(read(c, 2)), 2)
        self.assertEqual(self.closed_for_output(), 0)

        # Another client on the same worker and server conn, served throughout.
        stop = threading.Event()
        other = {"ok": 0, "bad": []}

        def other_client():
            with cmx.client() as c:
                while not stop.is_set():
                    c.send(get_small)
                    r = read(c, 1)[0]
                    if r == small_reply:
                        other["ok"] += 1
                    else:
                        other["bad"].append(r[:80])

        t = threading.Thread(target=other_client, daemon=True)
        t.start()

        rss0 = h.rss_kib(cmx.proc.pid)
        off = cmx.log_size()
        hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect((h.HOST, cmx.port()))
        hog.sendall(get_big * self.NGETS)
        peak = rss0
        deadline = time.time() + h.scaled(20)
        closed = 0
        while time.time() < deadline:
            peak = max(peak, h.rss_kib(cmx.proc.pid))
            closed = self.closed_for_output()
            if closed:
                break
            time.sleep(0.01)
        for _ in range(20):
            peak = max(peak, h.rss_kib(cmx.proc.pid))
            time.sleep(0.01)
        self.assertEqual(closed, 1, "the client that does not read was not closed")
        growth = (peak - rss0) * 1024
        print("  RSS %d KiB -> peak %d KiB (+%.1f MiB, limit %d MiB)"
              % (rss0, peak, growth / MIB, self.LIMIT // MIB))
        # (ASan's allocator adds redzones and its quarantine to every block)
        self.assertLessEqual(growth, self.LIMIT + (24 if SANITIZED else 16) * MIB)
        cmx.wait_log(r"over client_output_limit %d" % self.LIMIT, since=off)

        # The hog reads what was written before the close, then EOF or reset.
        hog.settimeout(h.scaled(10))
        got = 0
        try:
            while True:
                d = hog.recv(1 << 20)
                if not d:
                    break
                got += len(d)
        except ConnectionResetError:
            pass
        hog.close()
        self.assertLess(got, self.NGETS * len(self.VALUE))

        # Its requests queue on the same server conn behind the flood's
        # (one conn per server per worker), so they are answered once the
        # GETs sent before them are: wait for 20 of them, then stop it.
        deadline = time.time() + h.scaled(10)
        while other["ok"] < 20 and time.time() < deadline and t.is_alive():
            time.sleep(0.01)
        stop.set()
        t.join(h.scaled(10))
        self.assertEqual(other["bad"], [])
        self.assertGreaterEqual(other["ok"], 20)
        with cmx.client() as c:
            c.send(get_small)
            self.assertEqual(read(c, 1)[0], small_reply)

    def test_redis(self):
        self.run_case(True)

    def test_memcached(self):
        self.run_case(False)


class PrlimitCachemux(h.Cachemux):
    """cachemux started with a low open-files limit (soft and hard)."""

    nofile = 64

    def _argv(self):
        return ["prlimit", "--nofile=%d:%d" % (self.nofile, self.nofile), "--"] + \
            h.Cachemux._argv(self)


class LocalErrorTest(h.IntegrationTest):

    def test_out_of_descriptors_is_not_a_server_failure(self):
        r1, r2 = self.redis(), self.redis()
        pool = h.Pool("p", [r1, r2], redis=True, timeout=5000, auto_eject_hosts=True,
                      server_failure_limit=1, server_retry_timeout=60000)
        cmx = PrlimitCachemux([pool], workers=1)
        cmx.start()
        self.addCleanup(cmx.stop)
        for b in (r1, r2):
            c = b.client()
            for i in range(20):
                c.resp("SET", "k%d" % i, "v%d" % i)
            c.close()

        # Use up the descriptors with clients, each proven accepted by a PING.
        clients = []
        for _ in range(PrlimitCachemux.nofile + 10):
            c = h.Client(cmx.port(), timeout=1)
            c.send(h.resp_command("PING"))
            try:
                self.assertEqual(c.read_resp(1, timeout=0.5)[0], b"+PONG\r\n")
            except socket.timeout:
                c.close()   # not accepted: out of descriptors
                break
            clients.append(c)
        else:
            self.fail("every client was accepted: the descriptor limit did not apply")
        time.sleep(0.5)    # the refused one, taken and closed when it is retried
        self.assertGreater(len(clients), 10)

        # No descriptor for a backend connection: the request fails with the
        # local error, on both servers, several times.
        c = clients[0]
        for i in range(6):
            r = c.resp("GET", "k%d" % i)
            self.assertEqual(r, b"-ERR Too many open files\r\n", "GET k%d" % i)

        # Free some descriptors: the same keys are served at once.
        for x in clients[-8:]:
            x.close()
        del clients[-8:]
        time.sleep(0.3)
        for i in range(20):
            self.assertEqual(c.resp("GET", "k%d" % i), b"$%d\r\nv%d\r\n" % (len(str(i)) + 1, i))
        stats = cmx.stats_json()
        self.assertEqual(stats["p"]["server_ejects"], 0)
        self.assertIn("a local limit; the server is not counted as failed", cmx.log_text())
        self.assertNotIn("ejected", cmx.log_text())
        for x in clients:
            x.close()


if __name__ == "__main__":
    h.main(require=("memcached", "redis-server"))
