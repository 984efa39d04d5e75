#!/usr/bin/env python3
"""Memory per client connection, side by side: cachemux and nutcracker in
front of the same memcached, one run.

    bench/idle.py PATH/TO/cachemux

For each proxy: its RSS before any client, with N idle clients connected
(accepted: checked with a round trip on the last one), after one `get` on
each of them (the buffers a request borrows, given back), and over ROUNDS
rounds of N connects and closes (memory goes back to the free lists, RSS
stays flat). Bytes per connection = RSS growth / N, from /proc/PID/status.

Settings: CONNS (default 10000), ROUNDS (10), WORKERS (1), NUTCRACKER
(/usr/sbin/nutcracker; TARGETS=cachemux to leave it out).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import HOST, free_port, wait_port

CONNS = int(os.environ.get("CONNS", "10000"))
ROUNDS = int(os.environ.get("ROUNDS", "10"))
WORKERS = int(os.environ.get("WORKERS", "1"))
NUTCRACKER = os.environ.get("NUTCRACKER", "/usr/sbin/nutcracker")
TARGETS = os.environ.get("TARGETS", "cachemux nutcracker").split()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def round_trip(s):
    s.sendall(b"get idle-key\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        d = s.recv(4096)
        if not d:
            raise SystemExit("closed")
        buf += d


def connect_all(port):
    socks = []
    for _ in range(CONNS):
        s = socket.create_connection((HOST, port))
        socks.append(s)
    round_trip(socks[-1])       # the last one accepted: all before it were
    time.sleep(0.5)
    return socks


def measure(name, argv, port, tmp):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    try:
        wait_port(port, proc, name, 10)
        time.sleep(0.3)
        base = rss_kib(proc.pid)
        socks = connect_all(port)
        idle = rss_kib(proc.pid)
        for s in socks:
            round_trip(s)
        time.sleep(0.3)
        after_get = rss_kib(proc.pid)
        for s in socks:
            s.close()
        time.sleep(0.5)
        rounds = []
        for _ in range(ROUNDS):
            socks = connect_all(port)
            rounds.append(rss_kib(proc.pid))
            for s in socks:
                s.close()
            time.sleep(0.5)
        per = lambda kib: (kib - base) * 1024.0 / CONNS
        print("%-10s base %6d KiB  idle %8.0f B/conn  after one get %8.0f B/conn  "
              "10 rounds: RSS with %d conns %s KiB"
              % (name, base, per(idle), per(after_get), CONNS,
                 " ".join(str(r) for r in rounds)))
    finally:
        proc.terminate()
        proc.wait(30)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cachemux = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="cachemux-idle.")
    mport = free_port()
    mc = subprocess.Popen(["memcached", "-l", HOST, "-p", str(mport), "-U", "0", "-u", "nobody",
                           "-c", "4096"])
    try:
        wait_port(mport, mc, "memcached", 10)
        if "cachemux" in TARGETS:
            port, sport = free_port(), free_port()
            conf = os.path.join(tmp, "c.ini")
            with open(conf, "w") as f:
                f.write("[cachemux]\nworkers = %d\nstats_listen = %s:%d\n[pool p]\nlisten = %s:%d\n"
                        "preconnect = true\nserver = %s:%d:1\n" % (WORKERS, HOST, sport, HOST, port,
                                                                  HOST, mport))
            measure("cachemux", [cachemux, "-c", conf, "-v", "3"], port, tmp)
        if "nutcracker" in TARGETS:
            port, sport = free_port(), free_port()
            conf = os.path.join(tmp, "n.yml")
            with open(conf, "w") as f:
                f.write("p:\n  listen: %s:%d\n  preconnect: true\n  servers:\n   - %s:%d:1\n"
                        % (HOST, port, HOST, mport))
            measure("nutcracker", [NUTCRACKER, "-c", conf, "-s", str(sport), "-v", "3"], port, tmp)
        print("load average: %s" % open("/proc/loadavg").read().strip())
    finally:
        mc.terminate()
        mc.wait(30)


if __name__ == "__main__":
    main()
