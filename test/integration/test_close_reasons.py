#!/usr/bin/python3
"""Why connections close, as /metrics reports it:
cachemux_client_closed_total{pool,reason} and
cachemux_server_closed_total{pool,server,reason}. Each reason is made to
happen on its own, then the counter must have moved by exactly that (and
no other reason moved), along with twemproxy's client_eof/client_err and
server_eof/server_err in the stats JSON.

Client reasons: eof, error (a reset), quit, protocol_error, too_large,
client_limit, stop (graceful stop, seen while a busy client keeps the stop
going), pool_removed (a pool whose listen changes is removed and added
under the same name, so its counters carry over) and drain_timeout.
Server reasons (against the scripted backend): eof (closed with a request
outstanding), idle_eof, protocol_error (garbage), timeout (a conn stuck past
its timeout), reply_too_large, handshake (AUTH refused) and retired (a
server that leaves its pool in a reload).

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_close_reasons.py [NAME-SUBSTRING...]
"""

import os
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import scrape, wait_for  # noqa: E402
from scripted import Scripted  # noqa: E402

CLIENT_REASONS = ("eof", "error", "quit", "protocol_error", "too_large", "output_limit", "stop",
                  "pool_removed", "drain_timeout", "client_limit", "tls_handshake",
                  "out_of_memory")
SERVER_REASONS = ("eof", "idle_eof", "error", "timeout", "protocol_error", "reply_too_large",
                  "handshake", "tls_handshake", "retired", "shutdown")


def closed(port, family, pool, server=None):
    """{reason: value} of one pool's (or server's) close counters."""
    _, fams = scrape(port)
    f = fams["cachemux_%s_closed_total" % family]
    out = {}
    for name, labels, value in f.samples:
        if labels.get("pool") == pool and labels.get("server") == server:
            out[labels["reason"]] = int(value)
    return out


class CloseReasonTest(h.IntegrationTest):

    def start(self, pools, globals_=None, **kw):
        self.mport = h.free_port()
        g = {"metrics_listen": "127.0.0.1:%d" % self.mport}
        g.update(globals_ or {})
        return self.cachemux(pools, workers=1, globals_=g, **kw)

    def client_delta(self, pool, action, want, server_counts=None):
        """Run action(); the pool's client close counters must move by want."""
        before = closed(self.mport, "client", pool)
        action()
        expect = {r: before.get(r, 0) + want.get(r, 0) for r in CLIENT_REASONS}
        wait_for(lambda: closed(self.mport, "client", pool) == expect, 5,
                 "client closes %s (have %s)" % (want, closed(self.mport, "client", pool)))

    def server_delta(self, pool, server, action, want):
        before = closed(self.mport, "server", pool, server)
        action()
        expect = {r: before.get(r, 0) + want.get(r, 0) for r in SERVER_REASONS}
        wait_for(lambda: closed(self.mport, "server", pool, server) == expect, 5,
                 "server closes %s (have %s)" % (want, closed(self.mport, "server", pool, server)))

    @h.requires("redis-server")
    def test_client_reasons(self):
        r = self.redis()
        pool = h.Pool("p", [r], redis=True, client_connections=8)
        cmx = self.start([pool], globals_={"max_request_size": 4096})
        port = cmx.port()

        def eof():
            c = h.Client(port)
            self.assertEqual(c.resp("PING"), b"+PONG\r\n")
            c.close()

        def reset():
            c = h.Client(port)
            self.assertEqual(c.resp("PING"), b"+PONG\r\n")
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()

        def quit_():
            with h.Client(port) as c:
                self.assertEqual(c.resp("QUIT"), b"+OK\r\n")
                self.assertClosed(c)

        def framing():
            with h.Client(port) as c:
                c.send(b"*1\r\n$x\r\n")
                self.assertTrue(c.read_resp(1)[0].startswith(b"-ERR Protocol error"))
                self.assertClosed(c)

        def too_large():
            with h.Client(port) as c:
                c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9999\r\n")
                self.assertEqual(c.read_resp(1)[0], b"-ERR Protocol error: request too large\r\n")
                self.assertClosed(c)

        def over_limit():
            held = [h.Client(port) for _ in range(8)]
            for c in held:
                self.assertEqual(c.resp("PING"), b"+PONG\r\n")
            extra = h.Client(port)
            self.assertEqual(extra.read_until_close(timeout=3),
                             b"-ERR max number of clients reached\r\n")
            extra.close()
            for c in held:
                c.close()

        self.client_delta("p", eof, {"eof": 1})
        self.client_delta("p", reset, {"error": 1})
        self.client_delta("p", quit_, {"quit": 1})
        self.client_delta("p", framing, {"protocol_error": 1})
        self.client_delta("p", too_large, {"too_large": 1})
        self.client_delta("p", over_limit, {"client_limit": 1, "eof": 8})
        # twemproxy's counters are the eof and error reasons (the harness's
        # own readiness connects count as eof too)
        st = cmx.stats_json()["p"]
        now = closed(self.mport, "client", "p")
        self.assertEqual(st["client_err"], now["error"])
        self.assertEqual(st["client_eof"], now["eof"])
        self.assertGreaterEqual(now["eof"], 9)

    @h.requires("redis-server")
    def test_pool_removed_and_drain_timeout(self):
        r = self.redis()
        pool = h.Pool("p", [r], redis=True)
        cmx = self.start([pool], globals_={"shutdown_timeout": 1000})
        idle = h.Client(cmx.port())
        self.addCleanup(idle.close)
        busy = h.Client(cmx.port())
        self.addCleanup(busy.close)
        self.assertEqual(idle.resp("PING"), b"+PONG\r\n")
        busy.send(b"*2\r\n$3\r\nGET\r\n")       # half a request: never at a boundary

        def move():
            # a new listen address: the pool is removed and added, same name
            cmx.reload(pools=[h.Pool("p", [r], redis=True)])
            self.assertClosed(idle, 3)
            self.assertClosed(busy, 5)
        self.client_delta("p", move, {"pool_removed": 1, "drain_timeout": 1})

    def test_stop(self):
        s = Scripted("redis").start()
        self.addCleanup(s.stop)
        pool = h.Pool("p", [s], redis=True)
        cmx = self.start([pool], globals_={"shutdown_timeout": 10000})
        idle = [h.Client(cmx.port()) for _ in range(3)]
        for c in idle:
            self.addCleanup(c.close)
            self.assertEqual(c.resp("PING"), b"+PONG\r\n")
        busy = h.Client(cmx.port(), timeout=15)
        self.addCleanup(busy.close)
        busy.send(h.resp_command("GET", "stall:1500"))
        s.wait_received(1)
        before = closed(self.mport, "client", "p")
        os.kill(cmx.proc.pid, signal.SIGTERM)
        # the stop goes on while the busy client waits: metrics still answer
        wait_for(lambda: closed(self.mport, "client", "p").get("stop", 0) == before["stop"] + 3,
                 3, "3 idle clients closed for the stop")
        self.assertEqual(busy.read_resp(1)[0], b"$-1\r\n")
        # it exits by itself once the busy client is answered; a second
        # SIGTERM meanwhile would be a forced stop
        cmx.proc.wait(timeout=h.scaled(10))
        cmx.stop()

    def test_server_reasons(self):
        s = Scripted("redis", name="s1").start()
        self.addCleanup(s.stop)
        t = Scripted("redis", name="s2").start()
        self.addCleanup(t.stop)
        pool = h.Pool("p", [s], redis=True, timeout=300)
        cmx = self.start([pool], globals_={"max_reply_size": 65536})
        c = h.Client(cmx.port())
        self.addCleanup(c.close)
        err = (b"-ERR Connection reset by peer\r\n", b"-ERR Invalid argument\r\n",
               b"-ERR Connection timed out\r\n", b"-ERR Message too long\r\n")

        def ask(key, want):
            def go():
                self.assertEqual(c.resp("GET", key), want)
            return go

        self.server_delta("p", "s1", ask("close", err[0]), {"eof": 1})
        self.server_delta("p", "s1", ask("garbage", err[1]), {"protocol_error": 1})
        self.server_delta("p", "s1", ask("endless:array", err[3]), {"reply_too_large": 1})

        def stuck():
            # timed out at 300 ms, then stuck a further 300 ms: the conn goes
            self.assertEqual(c.resp("GET", "stall:inf"), err[2])
        self.server_delta("p", "s1", stuck, {"timeout": 1})

        def idle_close():
            self.assertEqual(c.resp("SET", "k", "v"), b"+OK\r\n")
            s.shutdown_conns()
        self.server_delta("p", "s1", idle_close, {"idle_eof": 1})

        st = cmx.stats_json()["p"]["s1"]
        now = closed(self.mport, "server", "p", "s1")
        self.assertEqual(st["server_eof"], now["eof"] + now["idle_eof"])
        self.assertEqual(st["server_err"], now["protocol_error"] + now["reply_too_large"] +
                         now["timeout"] + now["error"] + now["handshake"])
        self.assertEqual(st["server_eof"], 2)
        self.assertEqual(st["server_err"], 3)

        # s1 keeps its name but moves to another address: the old one
        # retires (its idle conn closes, nothing failed) and the counters,
        # kept by identity, go on under the same server label
        def retire():
            self.assertEqual(c.resp("SET", "k", "v"), b"+OK\r\n")
            moved = h.Pool("p", [(h.HOST, t.port, 1, "s1")], redis=True, timeout=300,
                           port=pool.port)
            cmx.reload(pools=[moved])
            wait_for(lambda: s.open_connections() == 0, 5, "the retired conn closed")
        self.server_delta("p", "s1", retire, {"retired": 1})
        self.assertEqual(c.resp("GET", "k"), b"$-1\r\n")    # served by the new address

    @h.requires("redis-server")
    def test_handshake_refused(self):
        r = self.redis()     # no password: AUTH fails
        pool = h.Pool("p", [r], redis=True, redis_auth="secret")
        cmx = self.start([pool])
        name = r.server_line().split()[-1] if len(r.server_line().split()) > 1 else None
        ident = name or "127.0.0.1:%d" % r.port

        def go():
            with h.Client(cmx.port()) as c:
                self.assertEqual(c.resp("AUTH", "secret"), b"+OK\r\n")
                self.assertTrue(c.resp("GET", "k").startswith(b"-ERR"))
        self.server_delta("p", ident, go, {"handshake": 1})


if __name__ == "__main__":
    h.main(require=("redis-server",))
