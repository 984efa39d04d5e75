#!/usr/bin/python3
"""Unix-socket listeners (cachemux.ini(5) `listen = /path [perm]`, README "Operations").

One socket is bound by the supervisor and polled by every worker: clients
over it reach every worker's backend conns, the socket has the configured
mode from the start, a stale socket file is replaced at start, a path with a
live listener is an error, and the path is removed on exit.
"""

import os
import re
import socket
import stat
import subprocess
import sys

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def unix_request(path, data, want_lines):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(h.scaled(5))
    s.connect(path)
    s.sendall(data)
    out = b""
    while out.count(b"\r\n") < want_lines:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out


class UnixListener(h.IntegrationTest):

    def test_clients_over_a_unix_socket_reach_every_worker(self):
        mc = self.memcached(name="s1")
        path = os.path.join(h.tmp_dir("unix"), "cmx.sock")
        pool = h.Pool("u", [mc], listen="%s 0600" % path)
        cmx = self.cachemux([pool], workers=3, verbose=6)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        self.assertEqual(mode, 0o600, "socket mode %o" % mode)
        for i in range(60):
            key = b"u%d" % i
            got = unix_request(path, b"set %s 0 0 2\r\nhi\r\nget %s\r\n" % (key, key), 4)
            self.assertEqual(got, b"STORED\r\nVALUE %s 0 2\r\nhi\r\nEND\r\n" % key)
        self.assertEqual(mc.get(b"u59"), b"hi")
        tags = set(re.findall(r"INFO (w\d+) accepted client unix:\d+ on pool u", cmx.log_text()))
        self.assertGreaterEqual(len(tags), 2, "workers that accepted: %s" % sorted(tags))
        cmx.stop()
        self.assertFalse(os.path.exists(path), "socket path left behind")

    def test_stale_socket_replaced_live_one_refused(self):
        mc = self.memcached(name="s1")
        d = h.tmp_dir("unix2")
        path = os.path.join(d, "cmx.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()       # the file stays, nobody listens: stale
        self.assertTrue(os.path.exists(path))
        pool = h.Pool("u", [mc], listen=path)
        cmx = self.cachemux([pool], workers=2)
        self.assertEqual(unix_request(path, b"version\r\n", 1)[:8], b"VERSION ")
        # a second instance on the same path: the live listener is an error
        conf = os.path.join(d, "second.ini")
        h.write_ini(conf, [pool], workers=1, stats_port=h.free_port())
        r = subprocess.run([h.CACHEMUX, "-c", conf], capture_output=True, timeout=h.scaled(15))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"cmx.sock", r.stdout + r.stderr)
        self.assertEqual(unix_request(path, b"version\r\n", 1)[:8], b"VERSION ",
                         "the first instance still serves")
        cmx.stop()
        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    h.main(require=("memcached",))
