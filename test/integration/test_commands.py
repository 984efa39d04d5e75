#!/usr/bin/python3
"""The commands operators and clients send about a connection or a whole
pool (doc/protocols.md 2.1, 3.1 to 3.4): Redis INFO, DBSIZE, KEYS,
RANDOMKEY, SCAN, SCRIPT, FLUSHDB/FLUSHALL (fan-outs to every server),
HELLO and CLIENT (answered per connection); memcached stats, verbosity
and flush_all; and the forwarding-error counters, compared with
nutcracker.

Everything runs against real redis-server and memcached backends, with
real clients: redis-cli (info, --scan, dbsize, keys), Debian's
python3-redis, pymemcache (python3-pymemcache) and memccapable
(libmemcached-tools), and raw sockets where the exact bytes matter.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_commands.py [NAME-SUBSTRING...]
"""

import hashlib
import os
import re
import socket
import subprocess
import sys

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import stats_json, wait_for  # noqa: E402

try:
    import redis as pyredis     # Debian's python3-redis
except ImportError:             # pragma: no cover
    pyredis = None
try:
    from pymemcache.client.base import Client as PyMemcache   # Debian's python3-pymemcache
except ImportError:             # pragma: no cover
    PyMemcache = None

cmd = h.resp_command
OK = b"+OK\r\n"
NIL = b"$-1\r\n"
REFUSED = b"-ERR Connection refused\r\n"


def bulk(v):
    v = v if isinstance(v, bytes) else str(v).encode()
    return b"$%d\r\n%s\r\n" % (len(v), v)


def array(items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def spread(prefix, n):
    """n keys different enough for fnv1a_64 + ketama to spread them."""
    return ["%s%d:%s" % (prefix, i, hashlib.md5(b"%d" % i).hexdigest()[:6]) for i in range(n)]


def direct(b, *args):
    with b.client(timeout=20) as c:
        return c.resp(*args, timeout=20)


def direct_int(b, *args):
    r = direct(b, *args)
    assert r.startswith(b":"), r
    return int(r[1:-2])


def info_fields(text):
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def resp_bulk_body(reply):
    assert reply.startswith(b"$"), reply
    n = int(reply[1:reply.index(b"\r\n")])
    start = reply.index(b"\r\n") + 2
    return reply[start:start + n]


class RedisFanout(h.IntegrationTest):
    """Three redis-server behind pool `rd` of cachemux (2 workers)."""
    nbackends = 3

    def setUp(self):
        self.backends = [self.redis(name="s%d" % (i + 1)) for i in range(self.nbackends)]
        self.px = self.cachemux([h.Pool("rd", self.backends, redis=True)], workers=2)
        self.port = self.px.port("rd")

    def client(self):
        c = self.px.client()
        self.addCleanup(c.close)
        return c

    def fill(self, keys, c=None):
        c = c or self.client()
        reps = c.pipeline(b"".join(cmd("SET", k, "v") for k in keys), len(keys), resp=True)
        self.assertEqual(reps, [OK] * len(keys))
        per = [direct_int(b, "DBSIZE") for b in self.backends]
        self.assertTrue(all(n > 0 for n in per), "keys not on every server: %r" % per)
        return per

    def cli(self, *args):
        cli = self.need_binary("redis-cli", env_var="REDIS_CLI")
        out = subprocess.run([cli, "-h", h.HOST, "-p", str(self.port)] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=h.scaled(60))
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode()

    # ---- INFO ----

    def test_info_redis_cli(self):
        """redis-cli info: the proxy's sections, the servers' version and
        their keyspace summed."""
        per = self.fill(spread("info", 300))
        text = self.cli("info")
        for sec in ("# Server", "# Clients", "# Stats", "# Keyspace"):
            self.assertIn(sec + "\r\n", text)
        f = info_fields(text)
        want_ver = info_fields(resp_bulk_body(direct(self.backends[0], "INFO", "server"))
                               .decode())["redis_version"]
        self.assertEqual(f["redis_version"], want_ver)
        self.assertTrue(f["cachemux_version"])
        self.assertEqual(f["tcp_port"], str(self.port))
        self.assertEqual(f["workers"], "2")
        self.assertEqual(int(f["connected_clients"]), 2)   # fill's and redis-cli
        self.assertTrue(f["db0"].startswith("keys=%d,expires=0," % sum(per)), f["db0"])

    def test_info_format_and_sections(self):
        c = self.client()
        r = c.resp("INFO")
        body = resp_bulk_body(r)
        self.assertTrue(body.startswith(b"# Server\r\nredis_version:"), body[:60])
        self.assertNotIn(b"\n\n", body.replace(b"\r\n", b"\n").replace(b"\n\n#", b"#"))
        self.assertTrue(all(line == b"" or line.startswith(b"#") or b":" in line
                            for line in body.split(b"\r\n")), body)
        # one section, any case: only it
        body = resp_bulk_body(c.resp("INFO", "CLIENTS"))
        self.assertEqual(body, b"# Clients\r\nconnected_clients:1\r\n")
        body = resp_bulk_body(c.resp("info", "keyspace"))
        self.assertTrue(body.startswith(b"# Keyspace\r\n"), body)
        # an unknown section: an empty reply, as Redis gives
        self.assertEqual(c.resp("INFO", "nosuchsection"), b"$0\r\n\r\n")
        self.assertEqual(direct(self.backends[0], "INFO", "nosuchsection"), b"$0\r\n\r\n")

    # ---- DBSIZE, KEYS, RANDOMKEY, FLUSH ----

    def test_dbsize_keys_redis_cli(self):
        keys = spread("dk", 300)
        self.fill(keys)
        self.assertEqual(self.cli("dbsize").strip(), "300")
        got = self.cli("keys", "*").split()
        self.assertEqual(sorted(got), sorted(keys))
        c = self.client()
        self.assertEqual(c.resp("DBSIZE"), b":300\r\n")
        r = c.resp("KEYS", "dk1*")
        want = [k for k in keys if k.startswith("dk1")]
        self.assertTrue(r.startswith(b"*%d\r\n" % len(want)), r[:20])

    def test_randomkey(self):
        c = self.client()
        self.assertEqual(c.resp("RANDOMKEY"), NIL)      # every server empty
        # one key on one server: every RANDOMKEY finds it, whichever server
        # it starts from
        self.assertEqual(c.resp("SET", "lonely", "1"), OK)
        for _ in range(20):
            self.assertEqual(c.resp("RANDOMKEY"), bulk("lonely"))
        keys = spread("rk", 100)
        self.fill(keys, c)
        seen = {c.resp("RANDOMKEY") for _ in range(60)}
        self.assertTrue(seen <= {bulk(k) for k in keys + ["lonely"]})
        self.assertGreater(len(seen), 1)

    def test_flushall_flushdb(self):
        c = self.client()
        self.fill(spread("fl", 100), c)
        self.assertEqual(c.resp("FLUSHALL"), OK)
        self.assertEqual([direct_int(b, "DBSIZE") for b in self.backends], [0, 0, 0])
        self.fill(spread("fl", 100), c)
        self.assertEqual(c.resp("FLUSHDB", "ASYNC"), OK)
        self.assertEqual(c.resp("DBSIZE"), b":0\r\n")

    # ---- SCAN ----

    def test_scan_redis_cli_10000_keys(self):
        """redis-cli --scan through the proxy returns every key of every
        server: 10,000 keys on 3 servers."""
        keys = spread("sc", 10000)
        self.fill(keys)
        got = self.cli("--scan").split()
        self.assertEqual(set(got), set(keys))
        self.assertGreaterEqual(len(got), len(keys))
        got = self.cli("--scan", "--pattern", "sc12*").split()
        self.assertEqual(set(got), {k for k in keys if k.startswith("sc12")})

    def test_scan_cursor_walks_servers(self):
        """The cursor: server index + servers * the server's cursor."""
        c = self.client()
        keys = spread("cur", 60)
        per = self.fill(keys, c)
        cursor, pages, seen = b"0", 0, []
        while True:
            r = c.resp("SCAN", cursor, "COUNT", "1000")
            m = re.match(rb"\*2\r\n\$\d+\r\n(\d+)\r\n\*(\d+)\r\n", r)
            self.assertIsNotNone(m, r[:60])
            seen.append(int(m.group(2)))
            cursor, pages = m.group(1), pages + 1
            if cursor == b"0":
                break
            self.assertEqual(int(cursor), pages)   # each server whole in one page
        self.assertEqual(seen, per)
        self.assertEqual(c.resp("SCAN", "abc"), b"-ERR invalid cursor\r\n")
        self.assertEqual(c.resp("SCAN", "18446744073709551616"), b"-ERR invalid cursor\r\n")
        self.assertEqual(c.resp("PING"), b"+PONG\r\n")

    # ---- SCRIPT ----

    def test_script_load_exists_flush(self):
        c = self.client()
        script = "return redis.call('GET', KEYS[1])"
        sha = hashlib.sha1(script.encode()).hexdigest()
        self.assertEqual(c.resp("SCRIPT", "LOAD", script), bulk(sha))
        for b in self.backends:
            self.assertEqual(direct(b, "SCRIPT", "EXISTS", sha), b"*1\r\n:1\r\n")
        keys = spread("ev", 30)
        self.fill(keys, c)
        for k in keys:
            self.assertEqual(c.resp("EVALSHA", sha, "1", k), bulk("v"))
        self.assertEqual(c.resp("SCRIPT", "EXISTS", sha, "0" * 40), b"*2\r\n:1\r\n:0\r\n")
        # loaded on one server only: not there for the pool
        other = "return 2"
        self.assertEqual(direct(self.backends[1], "SCRIPT", "LOAD", other),
                         bulk(hashlib.sha1(other.encode()).hexdigest()))
        self.assertEqual(c.resp("SCRIPT", "EXISTS", hashlib.sha1(other.encode()).hexdigest()),
                         b"*1\r\n:0\r\n")
        self.assertEqual(c.resp("SCRIPT", "FLUSH"), OK)
        self.assertEqual(c.resp("SCRIPT", "EXISTS", sha), b"*1\r\n:0\r\n")
        self.assertEqual(c.resp("SCRIPT", "KILL"), b"-ERR unsupported command 'script'\r\n")
        self.assertEqual(c.resp("SCRIPT", "LOAD"),
                         b"-ERR wrong number of arguments for 'script|load' command\r\n")

    # ---- HELLO, CLIENT ----

    def test_hello_and_client(self):
        c = self.client()
        self.assertEqual(c.resp("CLIENT", "ID")[:1], b":")
        cid = int(c.resp("CLIENT", "ID")[1:-2])
        ver = info_fields(resp_bulk_body(direct(self.backends[0], "INFO", "server"))
                          .decode())["redis_version"]
        want = array([bulk("server"), bulk("redis"), bulk("version"), bulk(ver),
                      bulk("proto"), b":2\r\n", bulk("id"), b":%d\r\n" % cid,
                      bulk("mode"), bulk("standalone"), bulk("role"), bulk("master"),
                      bulk("modules"), b"*0\r\n"])
        self.assertEqual(c.resp("HELLO"), want)      # asks the servers first
        self.assertEqual(c.resp("HELLO", "2"), want)  # then known
        self.assertEqual(c.resp("HELLO", "1"), b"-NOPROTO unsupported protocol version\r\n")
        self.assertEqual(c.resp("HELLO", "4"), b"-NOPROTO unsupported protocol version\r\n")
        self.assertEqual(c.resp("HELLO", "x"),
                         b"-ERR Protocol version is not an integer or out of range\r\n")
        self.assertEqual(c.resp("HELLO", "2", "FOO"), b"-ERR Syntax error in HELLO option 'FOO'\r\n")
        self.assertEqual(c.resp("CLIENT", "GETNAME"), NIL)
        self.assertEqual(c.resp("HELLO", "2", "SETNAME", "app1"), want)
        self.assertEqual(c.resp("CLIENT", "GETNAME"), bulk("app1"))
        self.assertEqual(c.resp("CLIENT", "SETNAME", "app2"), OK)
        self.assertEqual(c.resp("CLIENT", "GETNAME"), bulk("app2"))
        self.assertEqual(c.resp("CLIENT", "SETNAME", "a b"),
                         b"-ERR Client names cannot contain spaces, newlines or special "
                         b"characters.\r\n")
        self.assertEqual(c.resp("CLIENT", "GETNAME"), bulk("app2"))  # a refused name changes nothing
        self.assertEqual(c.resp("CLIENT", "SETINFO", "lib-name", "node-redis"), OK)
        self.assertEqual(c.resp("CLIENT", "SETINFO", "LIB-VER", "4.6.0"), OK)
        self.assertEqual(c.resp("CLIENT", "SETINFO", "other", "x"),
                         b"-ERR Unrecognized option 'other'\r\n")
        self.assertEqual(c.resp("CLIENT", "SETNAME"),
                         b"-ERR wrong number of arguments for 'client|setname' command\r\n")
        self.assertEqual(c.resp("CLIENT", "LIST"), b"-ERR unsupported command 'client'\r\n")
        self.assertEqual(c.resp("CLIENT", "TRACKING", "on"),
                         b"-ERR unsupported command 'client'\r\n")
        # one Redis 7 does not know: Redis 7's own text (clients tolerate it)
        self.assertEqual(c.resp("CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type",
                                "internal-ip"),
                         b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n")
        self.assertEqual(c.resp("CLIENT"), b"-ERR wrong number of arguments for 'client' command\r\n")
        # another client: another id, no name; names are per client, and an
        # empty one clears it (as Redis does)
        d = self.client()
        self.assertNotEqual(d.resp("CLIENT", "ID"), b":%d\r\n" % cid)
        self.assertEqual(d.resp("CLIENT", "GETNAME"), NIL)
        self.assertEqual(d.resp("CLIENT", "SETNAME", "other"), OK)
        self.assertEqual(c.resp("CLIENT", "GETNAME"), bulk("app2"))
        self.assertEqual(c.resp("CLIENT", "SETNAME", ""), OK)
        self.assertEqual(c.resp("CLIENT", "GETNAME"), NIL)
        self.assertEqual(d.resp("CLIENT", "GETNAME"), bulk("other"))
        # many named clients (a worker's table grows past its first 16 slots)
        many = [self.client() for _ in range(40)]
        for i, e in enumerate(many):
            self.assertEqual(e.resp("CLIENT", "SETNAME", "n%d" % i), OK)
        for i, e in enumerate(many):
            self.assertEqual(e.resp("CLIENT", "GETNAME"), bulk("n%d" % i))

    # ---- python3-redis ----

    def test_python_redis_client(self):
        self.need(pyredis is not None, "python3-redis is not installed")
        r = pyredis.Redis(host=h.HOST, port=self.port, socket_timeout=h.scaled(30))
        self.addCleanup(r.close)
        self.assertTrue(r.ping())
        self.assertTrue(r.execute_command("CLIENT", "SETINFO", "lib-name", "redis-py"))
        r.client_setname("pytest")
        self.assertEqual(r.client_getname(), "pytest")
        keys = spread("py", 2000)
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, k)
        pipe.execute()
        self.assertEqual(r.dbsize(), 2000)
        self.assertEqual(r.mget(keys[:50]), [k.encode() for k in keys[:50]])
        self.assertEqual({k.decode() for k in r.scan_iter(count=500)}, set(keys))
        self.assertEqual(len(r.keys("*")), 2000)
        info = r.info()
        self.assertEqual(info["db0"]["keys"], 2000)
        self.assertIn("redis_version", info)
        sha = r.script_load("return redis.call('GET', KEYS[1])")
        self.assertEqual(r.evalsha(sha, 1, keys[7]), keys[7].encode())
        self.assertEqual(r.script_exists(sha), [True])
        self.assertIsNotNone(r.randomkey())
        self.assertTrue(r.flushdb())
        self.assertEqual(r.dbsize(), 0)

    # ---- a server down ----

    def test_fanout_with_a_server_down(self):
        """One server down: each fan-out gets the error (never a partial
        answer), the connection stays open and the next request is served."""
        c = self.client()
        keys = spread("dn", 60)
        self.fill(keys, c)
        live = [k for k in keys if direct(self.backends[0], "EXISTS", k) == b":1\r\n"]
        self.backends[2].stop()
        for args in (("DBSIZE",), ("KEYS", "*"), ("INFO",), ("FLUSHALL",),
                     ("SCRIPT", "LOAD", "return 1"), ("RANDOMKEY",), ("SCAN", "2")):
            self.assertEqual(c.resp(*args), REFUSED, args)
            self.assertEqual(c.resp("SET", live[0], "w"), OK)
            self.assertEqual(c.resp("GET", live[0]), bulk("w"))
        # SCAN of a live server still works
        self.assertTrue(c.resp("SCAN", "0").startswith(b"*2\r\n"))


class RedisEjected(h.IntegrationTest):
    """auto_eject_hosts: an ejected server fails every fan-out at once."""

    def test_ejected_server_fails_fanout(self):
        bs = [self.redis(name="s1"), self.redis(name="s2")]
        pool = h.Pool("rd", bs, redis=True, auto_eject_hosts=True, server_failure_limit=1,
                      server_retry_timeout=60000)
        px = self.cachemux([pool], workers=1)
        c = px.client()
        self.addCleanup(c.close)
        self.assertEqual(c.resp("DBSIZE"), b":0\r\n")
        bs[1].stop()
        self.assertEqual(c.resp("DBSIZE"), REFUSED)   # the failure that ejects it
        self.assertEqual(c.resp("DBSIZE"), REFUSED)   # ejected: nothing sent
        self.assertEqual(c.resp("PING"), b"+PONG\r\n")
        # keys still route (to the live server)
        self.assertEqual(c.resp("SET", "k", "v"), OK)
        self.assertEqual(c.resp("GET", "k"), bulk("v"))


class RedisAuthHello(h.IntegrationTest):
    """HELLO on a redis_auth pool, as Redis 7 handles it before AUTH."""

    def test_hello_auth(self):
        b = h.Redis(name="s1", password="sekret").start()
        self.addCleanup(b.stop)
        px = self.cachemux([h.Pool("rd", [b], redis=True, redis_auth="sekret")], workers=1)
        c = px.client()
        self.addCleanup(c.close)
        self.assertEqual(c.resp("HELLO"),
                         b"-NOAUTH HELLO must be called with the client already authenticated, "
                         b"otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                         b"authenticate the client and select the RESP protocol version at the "
                         b"same time\r\n")
        self.assertEqual(c.resp("HELLO", "2", "AUTH", "default", "wrong"),
                         b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        self.assertEqual(c.resp("GET", "k"), b"-NOAUTH Authentication required.\r\n")
        r = c.resp("HELLO", "2", "AUTH", "default", "sekret")
        self.assertTrue(r.startswith(b"*14\r\n$6\r\nserver\r\n"), r)
        self.assertEqual(c.resp("GET", "k"), NIL)


class ForwardErrorCounts(h.IntegrationTest):
    """A request failed because its server refuses connections counts in
    forward_error (pool) and server_err (server), as nutcracker counts it."""

    def counts(self, start, nreq):
        dead = h.Redis(port=h.free_port(), name="dead")    # never started: its port refuses
        px = start([h.Pool("rd", [dead], redis=True)])
        for _ in range(nreq):
            c = px.client()
            self.assertTrue(c.resp("GET", "k").startswith(b"-"))
            c.close()
        # nutcracker publishes its stats every -i ms
        return wait_for(lambda: self._stats(px, nreq), 10, "forward_error %d" % nreq)

    def _stats(self, px, nreq):
        pool = stats_json(px.stats_port)["rd"]
        srv = [v for v in pool.values() if isinstance(v, dict)][0]
        got = (pool["forward_error"], srv["server_err"])
        return got if got[0] >= nreq else None

    def test_forward_error_counts_like_nutcracker(self):
        self.need_binary("nutcracker")
        ours = self.counts(lambda pools: self.cachemux(pools, workers=1), 5)
        theirs = self.counts(lambda pools: self.nutcracker(pools, extra_args=("-i", "100")), 5)
        self.assertEqual(ours[0], 5)
        self.assertEqual(ours, theirs, "(forward_error, server_err): cachemux %r, nutcracker %r"
                         % (ours, theirs))


class DenyLists(h.IntegrationTest):
    """deny_commands: refused with an error, the connection open; a reload
    applies a new list; a bad name is refused at load and at reload."""

    def test_redis_deny_and_reload(self):
        b = self.redis(name="s1")
        px = self.cachemux([h.Pool("rd", [b], redis=True, deny_commands="KEYS flushall")],
                           workers=2)
        c = px.client()
        self.addCleanup(c.close)
        self.assertEqual(c.resp("SET", "k", "v"), OK)
        self.assertEqual(c.resp("keys", "*"), b"-ERR command 'keys' is disabled on this pool\r\n")
        self.assertEqual(c.resp("FLUSHALL"),
                         b"-ERR command 'flushall' is disabled on this pool\r\n")
        self.assertEqual(direct(b, "GET", "k"), bulk("v"))
        self.assertEqual(c.resp("DBSIZE"), b":1\r\n")
        # a new list reaches the connected client
        px.reload(pools=[h.Pool("rd", [b], redis=True, port=px.port("rd"),
                                deny_commands="dbsize")])
        self.assertEqual(c.resp("KEYS", "*"), array([bulk("k")]))
        self.assertEqual(c.resp("DBSIZE"), b"-ERR command 'dbsize' is disabled on this pool\r\n")
        # a name Redis does not have, or AUTH: the reload is rejected
        px.reload(pools=[h.Pool("rd", [b], redis=True, port=px.port("rd"),
                                deny_commands="dbsize nosuch")], expect="rejected")
        px.reload(pools=[h.Pool("rd", [b], redis=True, port=px.port("rd"),
                                deny_commands="auth")], expect="rejected")
        self.assertEqual(c.resp("DBSIZE"), b"-ERR command 'dbsize' is disabled on this pool\r\n")

    def test_memcached_deny(self):
        m = self.memcached(name="m1")
        px = self.cachemux([h.Pool("mc", [m], deny_commands="flush_all")], workers=1)
        c = px.client()
        self.addCleanup(c.close)
        self.assertEqual(c.request(b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n")
        self.assertEqual(c.request(b"flush_all\r\n"), b"CLIENT_ERROR command disabled\r\n")
        c.send(b"flush_all noreply\r\n")      # no reply, even this one
        self.assertEqual(c.request(b"get a\r\n"), b"VALUE a 0 1\r\nx\r\nEND\r\n")

    def test_bad_name_refused_at_start(self):
        path = h.tmp_path("deny.ini")
        h.write_ini(path, [h.Pool("rd", [("127.0.0.1", 1, 1)], redis=True, port=1,
                                  deny_commands="keys nosuch")])
        out = subprocess.run([h.CACHEMUX, "-t", "-c", path], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=h.scaled(30))
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(b"'nosuch' is not a redis command", out.stdout)


class LingeringClose(h.IntegrationTest):
    """An error reply that closes is read by the client, then EOF, never a
    reset: the proxy shuts its write side and drops what the client still
    sends before it closes."""

    def big_set(self, redis):
        body = b"x" * (2 * 1024 * 1024)
        if redis:
            return (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % len(body)) + body + b"\r\n"
        return b"set k 0 0 %d\r\n" % len(body) + body + b"\r\n"

    def tries(self, redis, want):
        b = self.redis(name="s1") if redis else self.memcached(name="m1")
        px = self.cachemux([h.Pool("p", [b], redis=redis)], workers=2,
                           globals_={"max_request_size": 1024 * 1024})
        data = self.big_set(redis)
        for i in range(100):
            s = socket.create_connection((h.HOST, px.port("p")), timeout=h.scaled(10))
            try:
                s.sendall(data)
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                self.fail("try %d: connection reset (read %r)" % (i, got))
            finally:
                s.close()
            self.assertEqual(got, want, "try %d" % i)

    def test_redis_request_too_large(self):
        self.tries(True, b"-ERR Protocol error: request too large\r\n")

    def test_memcached_request_too_large(self):
        self.tries(False, b"SERVER_ERROR object too large for cache\r\n")

    def refused_tries(self, redis, want):
        """Over client_connections: the refused client, which already
        sent a 2 MiB request, reads the refusal then EOF, 100 of 100 times."""
        b = self.redis(name="s1") if redis else self.memcached(name="m1")
        px = self.cachemux([h.Pool("p", [b], redis=redis, client_connections=1)], workers=2)
        held = socket.create_connection((h.HOST, px.port("p")), timeout=h.scaled(10))
        self.addCleanup(held.close)
        held.sendall(b"PING\r\n" if redis else b"version\r\n")
        self.assertTrue(held.recv(100))  # accepted and counted
        data = self.big_set(redis)
        for i in range(100):
            s = socket.create_connection((h.HOST, px.port("p")), timeout=h.scaled(10))
            got = b""
            try:
                s.sendall(data)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except (ConnectionResetError, BrokenPipeError) as e:
                self.fail("try %d: %r (read %r)" % (i, e, got))
            finally:
                s.close()
            self.assertEqual(got, want, "try %d" % i)

    def test_redis_too_many_connections(self):
        self.refused_tries(True, b"-ERR max number of clients reached\r\n")

    def test_memcached_too_many_connections(self):
        self.refused_tries(False, b"ERROR Too many open connections\r\n")


# --------------------------------------------------------------------------
# memcached

class MemcachedPool(h.IntegrationTest):
    """Two memcached behind pool `mc` of cachemux (2 workers)."""

    def setUp(self):
        self.backends = [self.memcached(name="m1"), self.memcached(name="m2")]
        self.px = self.cachemux([h.Pool("mc", self.backends)], workers=2)
        self.port = self.px.port("mc")

    def client(self):
        c = self.px.client()
        self.addCleanup(c.close)
        return c

    def test_memccapable_all_27(self):
        """memccapable (ASCII) reads a verdict for every one of its 27 tests
        through the proxy, and all pass (stats and flush included)."""
        mc = self.need_binary("memccapable")
        out = subprocess.run([mc, "-h", h.HOST, "-p", str(self.port), "-a", "-t", "10"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=h.scaled(120))
        text = out.stdout.decode()
        verdicts = re.findall(r"^(ascii [a-z ]+?)\s+\[(pass|FAIL|skip)\]", text, re.M)
        self.assertEqual(len(verdicts), 27, text)
        self.assertEqual([v for v in verdicts if v[1] != "pass"], [], text)
        self.assertIn("ascii stat", text)
        self.assertIn("ascii flush", text)
        self.assertEqual(out.returncode, 0, text)

    def test_stats(self):
        c = self.client()
        for k in ("a", "b", "c"):
            self.assertEqual(c.request(b"set %s 0 0 1\r\nx\r\n" % k.encode()), b"STORED\r\n")
        r = c.request(b"stats\r\n")
        self.assertTrue(r.endswith(b"END\r\n"), r)
        lines = r.decode().split("\r\n")[:-2]
        self.assertTrue(all(re.match(r"STAT \S+ \S+$", line) for line in lines), lines)
        s0 = {line.split()[1]: line.split()[2] for line in lines}
        for k in ("pid", "uptime", "time", "version", "threads", "curr_connections",
                  "total_connections", "cmd_get", "cmd_set", "get_hits", "get_misses"):
            self.assertIn(k, s0)
        self.assertEqual(s0["threads"], "2")
        self.assertEqual(s0["pid"], str(self.px.proc.pid))
        self.assertEqual(s0["version"], self.px.version() if hasattr(self.px, "version")
                         else s0["version"])
        self.assertEqual(int(s0["cmd_set"]), 3)
        r = c.request(b"get a b c x y\r\n")
        self.assertEqual(r.count(b"VALUE "), 3)
        self.assertEqual(c.request(b"get z\r\n"), b"END\r\n")
        r = c.request(b"stats\r\n").decode()
        s1 = dict(re.findall(r"STAT (\S+) (\S+)", r))
        self.assertEqual(int(s1["cmd_get"]) - int(s0["cmd_get"]), 6)
        self.assertEqual(int(s1["get_hits"]) - int(s0["get_hits"]), 3)
        self.assertEqual(int(s1["get_misses"]) - int(s0["get_misses"]), 3)
        self.assertEqual(s1["pool"], "mc")
        # an argument: one error line, never a STAT list
        self.assertEqual(c.request(b"stats items\r\n"),
                         b"CLIENT_ERROR stats with an argument is not supported\r\n")
        self.assertEqual(c.request(b"verbosity 1\r\n"), b"OK\r\n")
        c.send(b"verbosity 1 noreply\r\n")
        self.assertEqual(c.request(b"get a\r\n"), b"VALUE a 0 1\r\nx\r\nEND\r\n")

    def test_pymemcache_stats_and_flush(self):
        self.need(PyMemcache is not None, "python3-pymemcache is not installed")
        m = PyMemcache((h.HOST, self.port), timeout=h.scaled(10))
        self.addCleanup(m.close)
        keys = ["pm%d" % i for i in range(50)]
        for k in keys:
            self.assertTrue(m.set(k, b"v"))
        st = m.stats()
        self.assertIn(b"pid", st)
        self.assertGreaterEqual(st[b"cmd_set"], 50)
        self.assertTrue(all(m.get_many(keys).values()))
        on = [sum(1 for k in keys if b.get(k) is not None) for b in self.backends]
        self.assertTrue(all(n > 0 for n in on), on)
        self.assertTrue(m.flush_all())
        self.assertEqual(m.get_many(keys), {})
        self.assertTrue(all(b.get(k) is None for b in self.backends for k in keys))

    def test_flush_all_noreply_and_server_down(self):
        c = self.client()
        self.assertEqual(c.request(b"set a 0 0 1\r\nx\r\n"), b"STORED\r\n")
        c.send(b"flush_all noreply\r\n")
        self.assertEqual(c.request(b"get a\r\n"), b"END\r\n")
        self.assertEqual(c.request(b"flush_all 0\r\n"), b"OK\r\n")
        self.backends[1].stop()
        self.assertEqual(c.request(b"flush_all\r\n"), b"SERVER_ERROR Connection refused\r\n")
        self.assertEqual(c.request(b"version\r\n")[:8], b"VERSION ")


if __name__ == "__main__":
    h.main(require=("redis-server", "memcached"))
