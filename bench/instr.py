#!/usr/bin/env python3
"""Instructions per request of the cachemux process, counted by valgrind's
callgrind: a count that does not depend on how busy the machine is, so two
builds can be compared on a noisy box.

    bench/instr.py BUILD/cachemux [BUILD2/cachemux ...]

For each binary: two memcached and two redis-server backends on free
loopback ports, cachemux (workers = 1) under callgrind with one memcached
and one Redis pool over them, then for each workload one client sends
REQUESTS requests one at a time (request, wait for the reply) after a
warm-up. Callgrind's counters are zeroed just before the measured requests
and dumped just after, so start-up and warm-up are left out. One client and
no pipelining make every request take the same path (one read, one writev
to each server, one read from each, one writev back), so the figure is
repeatable to a fraction of a percent.

Workloads: redis GET and SET (100-byte values), redis MGET of 10 keys over
the two servers, memcached get of 10 keys over the two servers.
Settings: REQUESTS (default 2000), WARMUP (200), KEEP_DUMPS (a directory to
keep callgrind's dumps in, for callgrind_annotate).
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import HOST, free_port, wait_port

REQUESTS = int(os.environ.get("REQUESTS", "2000"))
KEEP_DUMPS = os.environ.get("KEEP_DUMPS")   # a directory: keep callgrind's dumps there
WARMUP = int(os.environ.get("WARMUP", "200"))


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection((HOST, port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def ask(self, data, done):
        """Send data, read until done(buf) gives the reply's length."""
        self.s.sendall(data)
        while True:
            n = done(self.buf)
            if n:
                r, self.buf = self.buf[:n], self.buf[n:]
                return r
            d = self.s.recv(1 << 16)
            if not d:
                sys.exit("connection closed")
            self.buf += d


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_end(buf, pos=0):
    """End offset of one RESP reply at buf[pos:], or 0."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return 0
    t, v = buf[pos:pos + 1], buf[pos + 1:nl]
    if t in (b"+", b"-", b":"):
        return nl + 2
    n = int(v)
    if t == b"$":
        end = nl + 2 + n + 2 if n >= 0 else nl + 2
        return end if len(buf) >= end else 0
    p = nl + 2
    for _ in range(max(n, 0)):
        p = resp_end(buf, p)
        if not p:
            return 0
    return p


def mc_get_end(buf):
    i = buf.find(b"END\r\n")
    return i + 5 if i >= 0 and (i == 0 or buf[i - 2:i] == b"\r\n") else 0


def callgrind_ir(pid, out_dir):
    """Dump callgrind's counters now; returns the instructions since the last zero."""
    before = set(glob.glob(os.path.join(out_dir, "callgrind.out.*")))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        new = set(glob.glob(os.path.join(out_dir, "callgrind.out.*"))) - before
        for f in new:
            with open(f) as fh:
                text = fh.read()
            m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if m:
                if KEEP_DUMPS:
                    os.makedirs(KEEP_DUMPS, exist_ok=True)
                    shutil.copy(f, os.path.join(KEEP_DUMPS, "%d-%s" % (pid, os.path.basename(f))))
                return int(m.group(1))
        time.sleep(0.1)
    sys.exit("no callgrind dump")


def measure(binary):
    tmp = tempfile.mkdtemp(prefix="cachemux-instr.")
    procs = []
    try:
        mports = [free_port(), free_port()]
        rports = [free_port(), free_port()]
        for p in mports:
            procs.append(subprocess.Popen(["memcached", "-l", HOST, "-p", str(p), "-U", "0",
                                           "-u", "nobody", "-t", "1"]))
            wait_port(p, procs[-1], "memcached")
        for p in rports:
            procs.append(subprocess.Popen(["redis-server", "--port", str(p), "--bind", HOST,
                                           "--save", "", "--appendonly", "no", "--dir", tmp],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(p, procs[-1], "redis-server")
        pm, pr, ps = free_port(), free_port(), free_port()
        conf = os.path.join(tmp, "cachemux.ini")
        with open(conf, "w") as f:
            f.write("[cachemux]\nworkers = 1\nstats_listen = %s:%d\n" % (HOST, ps))
            f.write("[pool mc]\nlisten = %s:%d\npreconnect = true\n" % (HOST, pm))
            for i, p in enumerate(mports):
                f.write("server = %s:%d:1 m%d\n" % (HOST, p, i))
            f.write("[pool rd]\nlisten = %s:%d\nredis = true\npreconnect = true\n" % (HOST, pr))
            for i, p in enumerate(rports):
                f.write("server = %s:%d:1 r%d\n" % (HOST, p, i))
        cg = subprocess.Popen(["valgrind", "--tool=callgrind", "--collect-atstart=yes",
                               "--callgrind-out-file=" + os.path.join(tmp, "callgrind.out.%p"),
                               binary, "-c", conf, "-v", "3"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        procs.append(cg)
        wait_port(pm, cg, "cachemux")
        wait_port(pr, cg, "cachemux")
        rd, mc = Conn(pr), Conn(pm)
        keys = ["key:%04d" % i for i in range(10)]
        val = b"x" * 100
        for k in keys:
            rd.ask(resp("SET", k, val), resp_end)
            mc.ask(b"set %s 0 0 100\r\n%s\r\n" % (k.encode(), val), lambda b: b.find(b"\r\n") + 2)
        work = [
            ("redis GET", rd, lambda i: resp("GET", keys[i % 10]), resp_end),
            ("redis SET", rd, lambda i: resp("SET", keys[i % 10], val), resp_end),
            ("redis MGET 10 keys", rd, lambda i: resp("MGET", *keys), resp_end),
            ("memcached get 10 keys", mc, lambda i: b"get " + " ".join(keys).encode() + b"\r\n",
             mc_get_end),
        ]
        out = []
        for name, c, req, end in work:
            for i in range(WARMUP):
                c.ask(req(i), end)
            subprocess.run(["callgrind_control", "--zero", str(cg.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(REQUESTS):
                c.ask(req(i), end)
            ir = callgrind_ir(cg.pid, tmp)
            out.append((name, ir / REQUESTS))
        return out
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    results = [(b, measure(os.path.abspath(b))) for b in sys.argv[1:]]
    names = [n for n, _ in results[0][1]]
    print("%-24s" % "instructions/request" + "".join("%16s" % ("build %d" % (i + 1))
                                                       for i in range(len(results))))
    for j, n in enumerate(names):
        row = [r[1][j][1] for r in results]
        line = "%-24s" % n + "".join("%16.0f" % v for v in row)
        if len(row) > 1:
            line += "   %+.1f %%" % (100.0 * (row[-1] - row[0]) / row[0])
        print(line)
    for i, (b, _) in enumerate(results):
        print("build %d: %s" % (i + 1, b))


if __name__ == "__main__":
    main()
