#!/usr/bin/python3
"""Placement across the migration: for YAML files shaped like twemproxy's
own examples (the Debian nutcracker package's examples/nutcracker.yml, and
weighted, named, unix-socket, hash_tag and modula pools), the real nutcracker
is started on each file, 2,000 keys are written through every pool, and
each backend is read directly to learn which server holds each key. Then
`cachemux -L POOL` on the same YAML, and on the INI `cachemux --convert`
makes of it, must put every key on that same server. random pools cannot be
compared key by key: their loaded configurations (--dump-conf) must be equal.

Backends are shared between pools and flushed after each pool, so one set
of 10 memcached and 4 redis-server processes serves every file.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_migration.py [NAME-SUBSTRING...]
"""

import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

N_MC = 10
N_REDIS = 4

# The 2,000 keys of the hashtag placement table: plain keys, keys with
# braces and colons in every arrangement, UTF-8 and raw high bytes.
_, _ROWS = h.read_table(os.path.join(h.PLACEMENT_DIR, "ketama_fnv1a_64_hashtag.tsv"))
KEYS = [k for k, _ in _ROWS]

# YAML files as an operator has them. {P0}.. are listen ports, {M0}.. and
# {R0}.. the ports of memcached and redis-server backends, {DIR} a private
# directory for unix sockets. Each file is written as twemproxy's own
# example is (Debian's examples/nutcracker.yml for the first one).
FILES = {
    "nutcracker_example.yml": """\
alpha:
  listen: 127.0.0.1:{P0}
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:{R0}:1

beta:
  listen: 127.0.0.1:{P1}
  hash: fnv1a_64
  hash_tag: "{{}}"
  distribution: ketama
  auto_eject_hosts: false
  timeout: 400
  redis: true
  servers:
   - 127.0.0.1:{R0}:1 server1
   - 127.0.0.1:{R1}:1 server2
   - 127.0.0.1:{R2}:1 server3
   - 127.0.0.1:{R3}:1 server4

gamma:
  listen: 127.0.0.1:{P2}
  hash: fnv1a_64
  distribution: ketama
  timeout: 400
  backlog: 1024
  preconnect: true
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 3
  servers:
   - 127.0.0.1:{M0}:1
   - 127.0.0.1:{M1}:1

delta:
  listen: 127.0.0.1:{P3}
  hash: fnv1a_64
  distribution: ketama
  timeout: 100
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:{M0}:1
   - 127.0.0.1:{M1}:1
   - 127.0.0.1:{M2}:1
   - 127.0.0.1:{M3}:1
   - 127.0.0.1:{M4}:1
   - 127.0.0.1:{M5}:1
   - 127.0.0.1:{M6}:1
   - 127.0.0.1:{M7}:1
   - 127.0.0.1:{M8}:1
   - 127.0.0.1:{M9}:1

omega:
  listen: {DIR}/gamma
  hash: hsieh
  distribution: ketama
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:{M0}:100000
   - 127.0.0.1:{M1}:1
""",
    "weighted_named.yml": """\
# Weighted and named servers: the name is the identity, and the names sort
# differently from the order they are listed in.
sessions:                     # redis, md5, weights 1:2:3
  listen: 127.0.0.1:{P0}
  hash: md5
  distribution: ketama
  redis: true
  servers:
    - 127.0.0.1:{R0}:1 s1
    - 127.0.0.1:{R1}:2 s2
    - 127.0.0.1:{R2}:3 s3

objects:
  listen: 127.0.0.1:{P1}
  hash: murmur
  distribution: ketama
  auto_eject_hosts: false
  servers:
    - 127.0.0.1:{M0}:1 server-ccc
    - 127.0.0.1:{M1}:1 a
    - 127.0.0.1:{M2}:8 bb     # weight 8: single-precision point counts
    - 127.0.0.1:{M3}:7 d4
    - "127.0.0.1:{M4}:1 e"
""",
    "modula_hashtag.yml": """\
counters:
  listen: 127.0.0.1:{P0}
  hash: fnv1a_64
  distribution: modula
  servers:
   - 127.0.0.1:{M2}:1
   - 127.0.0.1:{M0}:2
   - 127.0.0.1:{M1}:1
   - 127.0.0.1:{M3}:1

tagged:
  listen: 127.0.0.1:{P1}
  hash: crc32a
  hash_tag: "{{}}"
  distribution: ketama
  redis: true
  redis_db: 0
  servers:
   - 127.0.0.1:{R0}:1 r1
   - 127.0.0.1:{R1}:1 r2
   - 127.0.0.1:{R2}:1 r3

colons:
  listen: 127.0.0.1:{P2}
  hash: one_at_a_time
  hash_tag: '::'
  distribution: modula
  servers:
   - 127.0.0.1:{M4}:3 m4
   - 127.0.0.1:{M5}:1 m5
   - 127.0.0.1:{M6}:2 m6
""",
    "unix_random.yml": """\
local:
  listen: {DIR}/local.sock 0666
  hash: jenkins
  distribution: ketama
  tcpkeepalive: true
  servers:
   - 127.0.0.1:{M7}:1
   - 127.0.0.1:{M8}:1
   - 127.0.0.1:{M9}:2

spread:
  listen: 127.0.0.1:{P0}
  hash: fnv1a_64
  distribution: random
  servers:
   - 127.0.0.1:{M7}:1
   - 127.0.0.1:{M8}:1
""",
}


def _read_all(sock, n_replies, end_of, timeout):
    """Read until n_replies complete replies (end_of: harness reply splitter)."""
    buf = bytearray()
    got = 0
    pos = 0
    deadline = time.time() + h.scaled(timeout)
    sock.settimeout(h.scaled(timeout))
    while got < n_replies:
        while got < n_replies:
            e = end_of(buf, pos)
            if e is None:
                break
            pos = e
            got += 1
        if got == n_replies:
            break
        if time.time() > deadline:
            raise AssertionError("timed out after %d of %d replies" % (got, n_replies))
        data = sock.recv(1 << 16)
        if not data:
            raise AssertionError("connection closed after %d of %d replies" % (got, n_replies))
        buf += data
    return bytes(buf)


def _split_replies(buf, end_of):
    out, pos = [], 0
    while pos < len(buf):
        e = end_of(buf, pos)
        out.append(buf[pos:e])
        pos = e
    return out


def _resp_strings(reply):
    """The bulk strings of a RESP array reply (KEYS)."""
    assert reply[:1] == b"*", reply[:40]
    nl = reply.index(b"\r\n")
    n = int(reply[1:nl])
    out, pos = [], nl + 2
    for _ in range(n):
        nl = reply.index(b"\r\n", pos)
        ln = int(reply[pos + 1:nl])
        out.append(reply[nl + 2:nl + 2 + ln])
        pos = nl + 2 + ln + 2
    return out


def _connect(listen):
    if listen.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(listen.split()[0])
        return s
    host, port = listen.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=h.scaled(10))


class Migration(h.IntegrationTest):

    @classmethod
    def setUpClass(cls):
        cls.mc = [h.Memcached(memory=64).start() for _ in range(N_MC)]
        cls.rd = [h.Redis().start() for _ in range(N_REDIS)]

    @classmethod
    def tearDownClass(cls):
        for b in cls.mc + cls.rd:
            b.stop()

    def run_cmx(self, args, stdin=None, timeout=60):
        san = h.tmp_dir("sanitizer")
        p = subprocess.run([h.CACHEMUX] + list(args), input=stdin, capture_output=True,
                           timeout=h.scaled(timeout), env=h.sanitizer_env(san), cwd=h.tmp_root())
        h.assert_no_sanitizer_reports(san)
        return p.returncode, p.stdout, p.stderr

    # ---- one YAML file ----

    def write_yaml(self, name):
        d = h.tmp_dir("mig-" + name.split(".")[0])
        ports = h.free_ports(6)
        subst = {"DIR": d}
        subst.update({"P%d" % i: p for i, p in enumerate(ports)})
        subst.update({"M%d" % i: b.port for i, b in enumerate(self.mc)})
        subst.update({"R%d" % i: b.port for i, b in enumerate(self.rd)})
        text = FILES[name].format(**subst)
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def pools_of(self, path):
        """{pool: {listen, redis, random, servers: [(port, identity)]}} from the
        file, as cachemux loaded it (--dump-conf), so the test does not parse
        YAML itself."""
        rc, out, err = self.run_cmx(["--dump-conf", "-c", path])
        self.assertEqual(rc, 0, err)
        pools, cur = {}, None
        for line in out.decode().splitlines():
            if line.startswith("[pool "):
                cur = pools.setdefault(line[6:-1], {"servers": [], "redis": False,
                                                    "random": False})
            elif cur is not None and " = " in line:
                k, v = line.split(" = ", 1)
                if k == "listen":
                    cur["listen"] = v
                elif k == "redis":
                    cur["redis"] = v == "true"
                elif k == "distribution":
                    cur["random"] = v == "random"
                elif k == "server":
                    addr, _, name = v.partition(" ")
                    host, port, _weight = addr.rsplit(":", 2)
                    cur["servers"].append((int(port), name or "%s:%s" % (host, port)))
        return pools

    def start_nutcracker(self, path):
        rc = subprocess.run([h.BINARIES["nutcracker"](), "-t", "-c", path], capture_output=True,
                            timeout=h.scaled(30))
        self.assertEqual(rc.returncode, 0, "nutcracker refuses %s: %r" % (path, rc.stderr))
        log = path + ".log"
        p = h.spawn([h.BINARIES["nutcracker"](), "-c", path, "-s", str(h.free_port()),
                     "-a", h.HOST, "-o", log])
        h.note_log("nutcracker", log)
        self.addCleanup(h.kill_proc, p)
        return p

    def wait_listen(self, proc, listen):
        deadline = time.time() + h.scaled(15)
        while True:
            try:
                _connect(listen).close()
                return
            except OSError:
                if proc.poll() is not None:
                    self.fail("nutcracker exited with %s" % proc.returncode)
                if time.time() > deadline:
                    self.fail("nutcracker does not accept on %s" % listen)
                time.sleep(0.02)

    def backend(self, port):
        for b in self.mc + self.rd:
            if b.port == port:
                return b
        raise KeyError(port)

    def record(self, pool):
        """{key: identity}: write every key through nutcracker, then ask each
        backend which keys it holds; flush the backends afterwards."""
        with _connect(pool["listen"]) as s:
            if pool["redis"]:
                s.sendall(b"".join(h.resp_command(b"SET", k, b"v") for k in KEYS))
                replies = _split_replies(_read_all(s, len(KEYS), h.resp_reply_end, 30),
                                         h.resp_reply_end)
                self.assertEqual(set(replies), {b"+OK\r\n"})
            else:
                s.sendall(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in KEYS))
                replies = _split_replies(_read_all(s, len(KEYS), h.mc_reply_end, 30),
                                         h.mc_reply_end)
                self.assertEqual(set(replies), {b"STORED\r\n"})
        where = {}
        for port, ident in pool["servers"]:
            b = self.backend(port)
            with socket.create_connection((h.HOST, port), timeout=h.scaled(10)) as s:
                if pool["redis"]:
                    s.sendall(h.resp_command(b"KEYS", b"*") + h.resp_command(b"FLUSHALL"))
                    held = _resp_strings(_split_replies(
                        _read_all(s, 2, h.resp_reply_end, 30), h.resp_reply_end)[0])
                else:
                    batches = [KEYS[i:i + 50] for i in range(0, len(KEYS), 50)]
                    s.sendall(b"".join(b"get " + b" ".join(bt) + b"\r\n" for bt in batches)
                              + b"flush_all\r\n")
                    replies = _split_replies(_read_all(s, len(batches) + 1, h.mc_reply_end, 30),
                                             h.mc_reply_end)
                    held = [k for r in replies[:-1] for k, _ in h.parse_get_reply(r)]
            for k in held:
                self.assertNotIn(k, where, "key %r on two servers (%s, %s)" % (k, where.get(k), b))
                where[k] = ident
        missing = [k for k in KEYS if k not in where]
        self.assertEqual(missing[:5], [], "%d keys on no server" % len(missing))
        self.assertEqual(len(where), len(KEYS))
        return where

    def check_file(self, name):
        path = self.write_yaml(name)
        # the conversion: twice the same text, and an INI that loads
        rc, ini, err = self.run_cmx(["--convert", path])
        self.assertEqual(rc, 0, err)
        rc2, ini2, _ = self.run_cmx(["--convert", path])
        self.assertEqual((rc2, ini2), (0, ini), "converting twice")
        ini_path = path[:-4] + ".ini"
        with open(ini_path, "wb") as f:
            f.write(ini)
        # the same configuration, every key (the first line names the file)
        dumps = [self.run_cmx(["--dump-conf", "-c", p]) for p in (path, ini_path)]
        self.assertEqual([d[0] for d in dumps], [0, 0], [d[2] for d in dumps])
        self.assertEqual(dumps[0][1].split(b"\n", 1)[1], dumps[1][1].split(b"\n", 1)[1])

        pools = self.pools_of(path)
        proc = self.start_nutcracker(path)
        for pool in pools.values():
            self.wait_listen(proc, pool["listen"])
        compared = 0
        for pname, pool in sorted(pools.items()):
            if pool["random"]:
                continue        # any server: the --dump-conf comparison above covers it
            want = self.record(pool)
            for conf in (path, ini_path):
                got = h.locate(conf, pname, KEYS)
                bad = [(k, want[k], got[k]) for k in KEYS if got[k] != want[k]]
                self.assertEqual(bad[:5], [], "%s pool %s: %d of %d keys placed differently "
                                 "from nutcracker" % (os.path.basename(conf), pname, len(bad),
                                                      len(KEYS)))
            compared += 1
        h.kill_proc(proc)
        return compared

    def test_nutcracker_example(self):
        self.assertEqual(self.check_file("nutcracker_example.yml"), 5)

    def test_weighted_named(self):
        self.assertEqual(self.check_file("weighted_named.yml"), 2)

    def test_modula_hashtag(self):
        self.assertEqual(self.check_file("modula_hashtag.yml"), 3)

    def test_unix_and_random(self):
        self.assertEqual(self.check_file("unix_random.yml"), 1)


if __name__ == "__main__":
    h.main(require=("memcached", "redis-server", "nutcracker"))
