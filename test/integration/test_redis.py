#!/usr/bin/python3
"""Redis integration tests (doc/protocols.md 1, 3, 4 and 5; README placement and limits).

cachemux runs in front of real redis-server backends. Replies are compared as
raw RESP bytes and effects are checked on the backends directly (raw RESP
connections, so a bug in a client library cannot hide one in the proxy).
python3-redis and redis-cli are driven against the proxy as real clients.

The side-by-side test sends test/integration/corpus_redis.txt to cachemux and
to nutcracker, each in front of its own fresh pair of redis-server, single and
pipelined (depth 1, 10, 100), and requires byte-identical replies. Each
behaviour where cachemux deliberately differs from nutcracker (doc/protocols.md 5)
has its own test below asserting cachemux's behaviour (class AppendixB, and the
Errors, Auth and LocalReplies tests whose docstrings name Appendix B).

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_redis.py [NAME-SUBSTRING...]
With CACHEMUX_IT_PROXY=nutcracker the tests that use the generic `proxy`
helper run against nutcracker (to check the tests themselves).
"""

import hashlib
import os
import random
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import (CRLF, B, accept_workers, bulk, join_threads, per_worker,  # noqa: E402
                     start_threads, unescape)

try:
    import redis as pyredis     # Debian's python3-redis
except ImportError:             # pragma: no cover
    pyredis = None

cmd = h.resp_command
OK = b"+OK\r\n"
NIL = b"$-1\r\n"
PONG = b"+PONG\r\n"
WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
REFUSED = b"-ERR Connection refused\r\n"
RESET = b"-ERR Connection reset by peer\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"


def integer(n):
    return b":%d\r\n" % n


def array(items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def err(text):
    return b"-" + B(text) + CRLF


def unsupported(name):
    return err("ERR unsupported command '%s'" % name)


def wrong_arity(name):
    return err("ERR wrong number of arguments for '%s' command" % name)


def raw(c, data, n=1):
    """Send raw bytes on client c; the next n RESP replies, joined."""
    c.send(data)
    return b"".join(c.read_resp(n))


def cmds(*commands):
    """Several RESP commands, each a tuple/list of arguments."""
    return b"".join(cmd(*c) for c in commands)


class RespError(Exception):
    pass


def parse_resp(buf, pos=0):
    """(value, end) of the RESP2 reply at buf[pos]: bytes, int, list, None,
    or a RespError instance for an error reply."""
    nl = buf.index(b"\r\n", pos)
    t, line = buf[pos:pos + 1], buf[pos + 1:nl]
    if t == b"+":
        return bytes(line), nl + 2
    if t == b"-":
        return RespError(bytes(line).decode("utf-8", "replace")), nl + 2
    if t == b":":
        return int(line), nl + 2
    if t == b"$":
        n = int(line)
        if n < 0:
            return None, nl + 2
        return bytes(buf[nl + 2:nl + 2 + n]), nl + 2 + n + 2
    if t == b"*":
        n = int(line)
        if n < 0:
            return None, nl + 2
        out, p = [], nl + 2
        for _ in range(n):
            v, p = parse_resp(buf, p)
            out.append(v)
        return out, p
    raise ValueError("not RESP: %r" % bytes(buf[pos:pos + 40]))


def value(reply):
    return parse_resp(reply)[0]


def need_pyredis(test):
    test.need(pyredis is not None, "python3-redis is not installed")


def redis_cli_path():
    return h.find_binary("redis-cli", "REDIS_CLI")


def need_redis_cli(test):
    test.need_binary("redis-cli", "missing binaries: redis-cli", "REDIS_CLI")


# --------------------------------------------------------------------------
# direct access to a backend (raw RESP)

def direct(b, *args, db=None, password=None):
    """Reply bytes of one command sent straight to backend b (after AUTH and
    SELECT when given)."""
    with b.client(timeout=20) as c:
        if password is not None:
            r = c.resp("AUTH", password)
            assert r == OK, r
        if db is not None:
            r = c.resp("SELECT", db)
            assert r == OK, r
        return c.resp(*args, timeout=20)


def direct_keys(b, db=None, password=None):
    v = value(direct(b, "KEYS", "*", db=db, password=password))
    assert isinstance(v, list), v
    return set(v)


def direct_exists(b, keys, db=None, password=None):
    """[bool] for each key, read from backend b in one pipeline."""
    if not keys:
        return []
    with b.client(timeout=20) as c:
        if password is not None:
            c.resp("AUTH", password)
        if db is not None:
            c.resp("SELECT", db)
        reps = c.pipeline(b"".join(cmd("EXISTS", k) for k in keys), len(keys), timeout=20, resp=True)
    return [r == b":1\r\n" for r in reps]


def direct_flush(b, password=None):
    with b.client(timeout=20) as c:
        if password is not None:
            c.resp("AUTH", password)
        for a in (("FLUSHALL",), ("SCRIPT", "FLUSH"), ("CONFIG", "RESETSTAT")):
            r = c.resp(*a)
            assert r == OK, (a, r)


def commandstats(b):
    """{command: calls} from INFO commandstats of backend b."""
    v = value(direct(b, "INFO", "commandstats"))
    out = {}
    for line in v.decode().splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def spread(prefix, n):
    """n keys prefix0.. made different enough for fnv1a_64 to spread them."""
    return ["%s%d:%s" % (prefix, i, hashlib.md5(b"%d" % i).hexdigest()[:6]) for i in range(n)]


# --------------------------------------------------------------------------
# base class

class RedisCase(h.IntegrationTest):
    """Backends named `names` (redis-server) behind pool `alpha` (redis,
    ketama, fnv1a_64) of the proxy under test. The backends are shared by the
    tests of a class (flushed before each test); each test starts its own
    proxy, which is stopped with SIGTERM and must exit 0."""
    names = ("s1", "s2")
    pool_keys = {}
    workers = 2
    shared_backends = True
    backend_password = None     # redis-server --requirepass

    @classmethod
    def new_backend(cls, name):
        if cls.backend_password is not None:
            return h.Redis(name=name, password=cls.backend_password)
        return h.Redis(name=name)

    @classmethod
    def setUpClass(cls):
        cls._shared = []
        if cls.shared_backends and not h.missing_binaries(["redis-server"]):
            try:
                for n in cls.names:
                    cls._shared.append(cls.new_backend(n).start())
            except Exception:
                cls.tearDownClass()
                raise

    @classmethod
    def tearDownClass(cls):
        for b in cls._shared:
            b.stop()
        cls._shared = []

    def setUp(self):
        if self.shared_backends:
            for b in self._shared:
                if not b.alive:
                    raise RuntimeError("shared backend %s died" % b.name)
                direct_flush(b, self.backend_password)
            self.backends = list(self._shared)
        else:
            self.backends = []
            for n in self.names:
                b = self.new_backend(n).start()
                self.addCleanup(b.stop)
                self.backends.append(b)
        self.by_name = {b.name: b for b in self.backends}
        self.px = self.start_proxy()

    def pool(self, backends=None, name="alpha", **keys):
        kw = dict(self.pool_keys)
        kw.update(keys)
        return h.Pool(name, backends if backends is not None else self.backends, redis=True, **kw)

    def start_proxy(self):
        return self.proxy([self.pool()], workers=self.workers)

    def client(self, px=None, timeout=5):
        c = (px or self.px).client(timeout=timeout)
        self.addCleanup(c.close)
        return c

    def where(self, key, backends=None):
        """Names of the backends holding key (read directly)."""
        return [b.name for b in (backends or self.backends)
                if direct(b, "EXISTS", key, password=self.backend_password) == b":1\r\n"]

    def locate(self, keys, backends=None):
        """{key: [names of backends holding it]} read directly, pipelined."""
        out = {k: [] for k in keys}
        for b in (backends or self.backends):
            for k, here in zip(keys, direct_exists(b, keys, password=self.backend_password)):
                if here:
                    out[k].append(b.name)
        return out

    def spread_keys(self, prefix, n, c=None):
        """SET n keys through the proxy; {server name: [keys on it]}, every
        server getting at least one."""
        c = c or self.client()
        keys = spread(prefix, n)
        reps = c.pipeline(b"".join(cmd("SET", k, "v-" + k) for k in keys), n, resp=True)
        self.assertEqual(reps, [OK] * n)
        loc = self.locate(keys)
        out = {b.name: [] for b in self.backends}
        for k in keys:
            self.assertEqual(len(loc[k]), 1, "key %s found on %s" % (k, loc[k]))
            out[loc[k][0]].append(k)
        for name, ks in out.items():
            self.assertTrue(ks, "no key of %s* landed on %s" % (prefix, name))
        return out

    def closes_with(self, data, want, c=None, timeout=3):
        """Send data; the proxy answers exactly `want` and closes."""
        c = c or self.client()
        c.send(data)
        try:
            got = c.read_until_close(timeout=timeout)
        except socket.timeout:
            self.fail("connection still open after %r; got %r" % (data[:80], bytes(c.buf)))
        self.assertEqual(got, want, "reply to %r" % data[:80])

    def assertServes(self, c):
        """The conn still works: a write and a read of keys on both servers."""
        keys = ["alive:a", "alive:b", "alive:c", "alive:d", "alive:e", "alive:f"]
        self.assertEqual(c.resp("MSET", *[x for k in keys for x in (k, k + "!")]), OK)
        self.assertEqual(c.resp("MGET", *keys), array([bulk(k + "!") for k in keys]))


# redis.Redis on the proxy
def pyclient(test, port, **kw):
    r = pyredis.Redis(host=h.HOST, port=port, socket_timeout=h.scaled(30), **kw)
    test.addCleanup(r.close)
    return r


# --------------------------------------------------------------------------
# real clients: python3-redis and redis-cli

class Clients(RedisCase):
    """python3-redis and redis-cli against a pool with two servers (hash_tag
    {} so multi-key commands can be co-located); effects are checked on the
    backends."""
    pool_keys = {"hash_tag": "{}"}

    def setUp(self):
        need_pyredis(self)
        RedisCase.setUp(self)
        self.r = pyclient(self, self.px.port())

    def test_pyredis_strings_and_pipeline(self):
        r = self.r
        self.assertTrue(r.set("greeting", "hello"))
        self.assertEqual(r.get("greeting"), b"hello")
        self.assertIsNone(r.get("nope"))
        self.assertEqual(r.incr("counter"), 1)
        self.assertEqual(r.incrby("counter", 41), 42)
        self.assertEqual(r.append("greeting", " world"), 11)
        self.assertEqual(r.getrange("greeting", 6, -1), b"world")
        self.assertEqual(r.strlen("greeting"), 11)
        self.assertEqual(r.ping(), True)
        # a pipeline (no MULTI) of 300 commands over both servers
        keys = spread("pp", 100)
        p = r.pipeline(transaction=False)
        for i, k in enumerate(keys):
            p.set(k, "v%d" % i)
            p.get(k)
            p.incr("n:" + k)
        res = p.execute()
        self.assertEqual(res, [x for i in range(100) for x in (True, b"v%d" % i, 1)])
        loc = self.locate(keys)
        self.assertTrue(all(len(v) == 1 for v in loc.values()), loc)
        self.assertEqual({v[0] for v in loc.values()}, {"s1", "s2"})
        for k in keys[:10]:
            (b,) = [self.by_name[n] for n in loc[k]]
            self.assertEqual(direct(b, "GET", k), bulk("v%d" % keys.index(k)))

    def test_pyredis_mset_mget_across_servers(self):
        r = self.r
        keys = spread("mm", 40)
        data = {k: ("value-" + k).encode() for k in keys}
        self.assertTrue(r.mset(data))
        loc = self.locate(keys)
        self.assertEqual({v[0] for v in loc.values() if len(v) == 1}, {"s1", "s2"})
        order = keys[::-1] + ["miss:1"] + keys[:5] + ["miss:2"]
        self.assertEqual(r.mget(order), [data.get(k) for k in order])
        self.assertEqual(r.delete(*keys[:10], "miss:3"), 10)
        self.assertEqual(r.unlink(*keys[10:15]), 5)
        self.assertEqual(r.touch(*keys), 25)
        self.assertEqual(r.mget(keys), [None] * 15 + [data[k] for k in keys[15:]])

    def test_pyredis_hashes_lists_sets_zsets(self):
        r = self.r
        self.assertEqual(r.hset("h", mapping={"a": "1", "b": "2", "c": "3"}), 3)
        self.assertEqual(r.hgetall("h"), {b"a": b"1", b"b": b"2", b"c": b"3"})
        self.assertEqual(r.hmget("h", "a", "x", "c"), [b"1", None, b"3"])
        self.assertEqual(r.hincrby("h", "a", 10), 11)
        self.assertEqual(r.hdel("h", "b", "x"), 1)
        self.assertEqual(sorted(r.hkeys("h")), [b"a", b"c"])
        self.assertEqual(r.hlen("h"), 2)
        self.assertEqual(r.rpush("l", *"abcde"), 5)
        self.assertEqual(r.lpush("l", "z"), 6)
        self.assertEqual(r.lrange("l", 0, -1), [b"z", b"a", b"b", b"c", b"d", b"e"])
        self.assertEqual(r.lpop("l"), b"z")
        self.assertEqual(r.rpop("l", 2), [b"e", b"d"])
        self.assertEqual(r.lindex("l", 1), b"b")
        self.assertEqual(r.llen("l"), 3)
        self.assertEqual(r.sadd("s", "x", "y", "z"), 3)
        self.assertEqual(r.smembers("s"), {b"x", b"y", b"z"})
        self.assertTrue(r.sismember("s", "y"))
        self.assertEqual(r.srem("s", "y"), 1)
        self.assertEqual(r.scard("s"), 2)
        self.assertEqual(r.sadd("{s}2", "x", "q"), 2)
        self.assertEqual(r.sinter("{s}2", "{s}"), set())   # {s} is another key
        r.sadd("{s}", "x")
        self.assertEqual(r.sinter("{s}2", "{s}"), {b"x"})
        self.assertEqual(r.zadd("z", {"one": 1, "two": 2, "three": 3}), 3)
        self.assertEqual(r.zrange("z", 0, -1, withscores=True), [(b"one", 1.0), (b"two", 2.0), (b"three", 3.0)])
        self.assertEqual(r.zincrby("z", 5, "one"), 6.0)
        self.assertEqual(r.zrevrange("z", 0, 0), [b"one"])
        self.assertEqual(r.zrank("z", "two"), 0)
        self.assertEqual(r.zcount("z", 2, 3), 2)
        self.assertEqual(r.zpopmin("z"), [(b"two", 2.0)])
        # each structure sits on its key's server, nowhere else
        for k in ("h", "l", "s", "z"):
            self.assertEqual(len(self.where(k)), 1, k)
        (b,) = [self.by_name[n] for n in self.where("h")]
        self.assertEqual(direct(b, "HGET", "h", "a"), bulk("11"))

    def test_pyredis_expiry(self):
        r = self.r
        r.set("e1", "x")
        self.assertEqual(r.ttl("e1"), -1)
        self.assertEqual(r.ttl("nope"), -2)
        self.assertTrue(r.expire("e1", 1000))
        self.assertTrue(990 <= r.ttl("e1") <= 1000, r.ttl("e1"))
        self.assertTrue(r.pexpire("e1", 500000))
        self.assertTrue(490000 <= r.pttl("e1") <= 500000, r.pttl("e1"))
        (b,) = [self.by_name[n] for n in self.where("e1")]
        self.assertTrue(490000 <= value(direct(b, "PTTL", "e1")) <= 500000)
        self.assertTrue(r.persist("e1"))
        self.assertFalse(r.persist("e1"))
        self.assertEqual(r.ttl("e1"), -1)
        self.assertEqual(direct(b, "TTL", "e1"), integer(-1))
        r.set("e2", "x", ex=100)
        self.assertTrue(90 <= r.ttl("e2") <= 100)
        r.setex("e3", 200, "x")
        self.assertTrue(190 <= r.ttl("e3") <= 200)
        self.assertTrue(r.expireat("e3", int(time.time()) + 3000))
        self.assertTrue(2900 <= r.ttl("e3") <= 3000)
        self.assertTrue(r.pexpireat("e3", int(time.time() * 1000) + 4000000))
        self.assertTrue(3900 <= r.ttl("e3") <= 4000)
        # a short expiry really expires
        self.assertTrue(r.psetex("e4", 600, "x"))
        time.sleep(1.0)
        self.assertIsNone(r.get("e4"))
        self.assertEqual(self.where("e4"), [])

    def test_pyredis_eval_with_keys(self):
        r = self.r
        script = "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])"
        keys = spread("ev", 12)
        for i, k in enumerate(keys):
            self.assertEqual(r.eval(script, 1, k, "x%d" % i), b"x%d" % i)
        # each EVAL ran on its key's server: the key is where GET routes it
        loc = self.locate(keys)
        self.assertEqual({v[0] for v in loc.values() if len(v) == 1}, {"s1", "s2"})
        for i, k in enumerate(keys):
            self.assertEqual(r.get(k), b"x%d" % i)
        # two co-located keys
        self.assertEqual(r.eval("redis.call('set',KEYS[2],ARGV[1]) return redis.call('mget',KEYS[1],KEYS[2])",
                                2, "{ev}a", "{ev}b", "B"), [None, b"B"])
        sha = hashlib.sha1(script.encode()).hexdigest()
        self.assertEqual(r.evalsha(sha, 1, keys[0], "again"), b"again")
        self.assertEqual(r.eval("return {KEYS[1], ARGV[1], 7, {8}}", 1, "k", "a"), [b"k", b"a", 7, [8]])

    def test_pyredis_binary_values_with_crlf(self):
        r = self.r
        vals = {
            b"bin:1": b"a\r\nb\r\n$3\r\nfoo\r\n*1\r\n:0\r\n-ERR x\r\n+OK\r\n",
            b"bin:2": bytes(range(256)),
            b"bin:3": b"\r\n",
            b"bin:4": b"",
            b"bin:5": b"\r\n" * 1000 + b"\n\r\x00",
            b"key\r\nwith\r\ncrlf": b"\x00\xff\r\n",
            b"\xff\xfe\x00": b"high bytes key",
        }
        self.assertTrue(r.mset(vals))
        for k, v in vals.items():
            self.assertEqual(r.get(k), v)
            (b,) = [self.by_name[n] for n in self.where(k)]
            self.assertEqual(direct(b, "GET", k), bulk(v))
        self.assertEqual(r.mget(list(vals)), list(vals.values()))
        r.hset("bh", b"f\r\n", b"v\r\n")
        self.assertEqual(r.hgetall("bh"), {b"f\r\n": b"v\r\n"})
        r.rpush("bl", b"\r\n", b"*2\r\n")
        self.assertEqual(r.lrange("bl", 0, -1), [b"\r\n", b"*2\r\n"])

    def test_pyredis_value_of_5mib(self):
        r = pyclient(self, self.px.port())
        v = random.Random(5).randbytes(5 << 20)
        v = v[:1000] + b"\r\n$5\r\n*1\r\n" + v[1000:]
        self.assertTrue(r.set("big5", v))
        self.assertEqual(r.get("big5"), v)
        self.assertEqual(r.strlen("big5"), len(v))
        (b,) = [self.by_name[n] for n in self.where("big5")]
        self.assertEqual(hashlib.sha1(value(direct(b, "GET", "big5"))).hexdigest(),
                         hashlib.sha1(v).hexdigest())
        # two of them pipelined with small commands around
        p = r.pipeline(transaction=False)
        p.set("small", "s").set("big6", v[::-1]).get("small").get("big6").get("big5")
        self.assertEqual(p.execute(), [True, True, b"s", v[::-1], v])

    def test_pyredis_scan_family(self):
        r = self.r
        # large enough for hashtable encodings, so the cursors really iterate
        fields = {("f%d" % i).encode(): ("v%d" % i).encode() for i in range(600)}
        r.hset("big:h", mapping=fields)
        members = {("m%d" % i).encode() for i in range(600)}
        r.sadd("big:s", *members)
        zm = {("z%d" % i).encode(): float(i) for i in range(600)}
        r.zadd("big:z", zm)
        cursors = []
        cur, got = 0, {}
        while True:
            cur, part = r.hscan("big:h", cur, count=50)
            got.update(part)
            cursors.append(cur)
            if cur == 0:
                break
        self.assertEqual(got, fields)
        self.assertGreater(len(cursors), 2, "HSCAN did not iterate")
        self.assertEqual(set(r.sscan_iter("big:s", count=50)), members)
        self.assertEqual(dict(r.zscan_iter("big:z", count=50)), zm)
        self.assertEqual(dict(r.hscan_iter("big:h", match="f1*", count=100)),
                         {k: v for k, v in fields.items() if k.startswith(b"f1")})

    def test_pyredis_geo(self):
        r = self.r
        self.assertEqual(r.geoadd("geo", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]), 2)
        self.assertAlmostEqual(r.geodist("geo", "Palermo", "Catania", unit="km"), 166.2742, places=3)
        pos = r.geopos("geo", "Palermo", "nope")
        self.assertAlmostEqual(pos[0][0], 13.361389, places=5)
        self.assertIsNone(pos[1])
        self.assertEqual(r.geohash("geo", "Palermo"), ["sqc8b49rny0"])
        self.assertEqual(r.georadius("geo", 15, 37, 200, unit="km", sort="ASC"), [b"Catania", b"Palermo"])
        self.assertEqual(r.georadiusbymember("geo", "Palermo", 100, unit="km"), [b"Palermo"])
        self.assertEqual(r.geosearch("geo", longitude=15, latitude=37, radius=100, unit="km"), [b"Catania"])
        self.assertEqual(r.geosearchstore("{geo}near", "geo", longitude=15, latitude=37, radius=200,
                                          unit="km"), 2)
        self.assertEqual(r.zcard("{geo}near"), 2)
        self.assertEqual(self.where("{geo}near"), self.where("geo"))

    def test_pyredis_pf(self):
        r = self.r
        self.assertEqual(r.pfadd("hll", *["a%d" % i for i in range(1000)]), 1)
        self.assertEqual(r.pfadd("hll", "a1"), 0)
        n = r.pfcount("hll")
        self.assertTrue(980 <= n <= 1020, n)
        r.pfadd("{hll}a", *["a%d" % i for i in range(1000)])
        r.pfadd("{hll}b", *["b%d" % i for i in range(500)])
        self.assertTrue(r.pfmerge("{hll}all", "{hll}a", "{hll}b"))
        n = r.pfcount("{hll}all")
        self.assertTrue(1450 <= n <= 1550, n)
        self.assertEqual(r.pfcount("{hll}a", "{hll}b"), n)
        self.assertEqual(len(self.where("{hll}all")), 1)
        self.assertEqual(self.where("{hll}all"), self.where("{hll}a"))

    def run_cli(self, *args, stdin=None, port=None):
        p = subprocess.run([redis_cli_path(), "-h", h.HOST, "-p", str(port or self.px.port())] + list(args),
                           input=stdin, capture_output=True, timeout=h.scaled(30))
        return p.returncode, p.stdout, p.stderr

    def test_redis_cli(self):
        need_redis_cli(self)
        self.assertEqual(self.run_cli("PING")[:2], (0, b"PONG\n"))
        self.assertEqual(self.run_cli("SET", "cli:a", "hello world")[:2], (0, b"OK\n"))
        self.assertEqual(self.run_cli("GET", "cli:a")[:2], (0, b"hello world\n"))
        keys = spread("cli", 8)
        self.assertEqual(self.run_cli("MSET", *[x for k in keys for x in (k, "v-" + k)])[:2], (0, b"OK\n"))
        rc, out, _ = self.run_cli("MGET", *(keys + ["cli:miss"]))
        self.assertEqual(out, b"".join(b"v-" + B(k) + b"\n" for k in keys) + b"\n")
        self.assertEqual({v[0] for v in self.locate(keys).values() if len(v) == 1}, {"s1", "s2"})
        self.assertEqual(self.run_cli("HSET", "cli:h", "f", "v")[:2], (0, b"1\n"))
        self.assertEqual(self.run_cli("--no-raw", "HGETALL", "cli:h")[:2], (0, b'1) "f"\n2) "v"\n'))
        # binary value from stdin with -x, read back raw
        val = b"bin\r\nary\x00\xff\r\n"
        self.assertEqual(self.run_cli("-x", "SET", "cli:bin", stdin=val)[:2], (0, b"OK\n"))
        self.assertEqual(self.r.get("cli:bin"), val)
        rc, out, _ = self.run_cli("--raw", "GET", "cli:bin")
        self.assertEqual(out, val + b"\n")
        # an error reply is shown as such and the exit status is still 0
        rc, out, _ = self.run_cli("LPUSH", "cli:a", "x")
        self.assertIn(b"WRONGTYPE", out)

    def test_redis_cli_pipe_mode(self):
        """redis-cli --pipe ends its transfer with ECHO of 20 random bytes and
        waits for that echo: it needs the proxy's ECHO (Appendix B; nutcracker
        closes the conn on ECHO)."""
        need_redis_cli(self)
        keys = spread("pipe", 1000)
        data = b"".join(cmd("SET", k, "p-" + k) for k in keys)
        rc, out, errout = self.run_cli("--pipe", stdin=data)
        self.assertEqual(rc, 0, out + errout)
        self.assertIn(b"errors: 0, replies: 1000", out)
        got = self.r.mget(keys)
        self.assertEqual(got, [("p-" + k).encode() for k in keys])


# --------------------------------------------------------------------------
# split commands

class Split(RedisCase):
    """MGET, MSET, DEL, UNLINK, TOUCH (and EXISTS, AppendixB) are split per
    server (doc/protocols.md 3); three servers named as in ketama_fnv1a_64.tsv."""
    names = ("s1", "s2", "s3")

    def table_rows(self):
        header, rows = h.read_table(os.path.join(h.PLACEMENT_DIR, "ketama_fnv1a_64.tsv"))
        self.assertEqual([v.split()[1] for k, v in header if k == "server"], list(self.names))
        return rows

    def test_mget_in_key_order_with_nils(self):
        c = self.client()
        rows = self.table_rows()
        pick = rows[:30] + rows[1000:1030] + rows[1500:1540]
        by = {n: [k for k, i in pick if i == n] for n in self.names}
        self.assertTrue(all(by.values()), {n: len(v) for n, v in by.items()})
        hits = [k for j, (k, _) in enumerate(pick) if j % 3 != 1]
        self.assertEqual(c.resp("MSET", *[x for k in hits for x in (k, b"=" + k)]), OK)
        order = [k for k, _ in pick]
        random.Random(11).shuffle(order)
        order = order + [b"miss:x", order[0], order[1]]
        want = array([bulk(b"=" + k) if k in hits else NIL for k in order])
        self.assertEqual(c.resp("MGET", *order), want)
        # all misses, a single key, keys of one server only
        self.assertEqual(c.resp("MGET", "nope1", "nope2", "nope3"), array([NIL] * 3))
        self.assertEqual(c.resp("MGET", hits[0]), array([bulk(b"=" + hits[0])]))
        one = [k for k in by["s2"] if k in hits][:5]
        self.assertEqual(c.resp("MGET", *one), array([bulk(b"=" + k) for k in one]))

    def test_mset_each_key_on_its_table_server(self):
        """One MSET of 300 table keys over three servers: +OK, and each key is
        on the table's server (and only there)."""
        c = self.client()
        rows = self.table_rows()
        pick = rows[:100] + rows[1000:1120] + rows[1120:1200]
        args = [x for k, _ in pick for x in (k, b"@" + k)]
        self.assertEqual(c.pipeline(cmd("MSET", *args), 1, resp=True, timeout=20), [OK])
        keys = [k for k, _ in pick]
        loc = self.locate(keys)
        wrong = ["%s: table %s, found on %s" % (k.hex(), ident, loc[k]) for k, ident in pick
                 if loc[k] != [ident]]
        self.assertEqual(wrong[:10], [], "%d misplaced" % len(wrong))
        for b in self.backends:
            mine = [k for k, ident in pick if ident == b.name][:20]
            self.assertEqual(value(direct(b, "MGET", *mine)), [b"@" + k for k in mine])

    def test_del_unlink_touch_summed(self):
        c = self.client()
        keys = self.spread_keys("sum", 40, c)
        allk = [k for ks in keys.values() for k in ks]
        random.Random(2).shuffle(allk)
        self.assertTrue(all(len(v) >= 3 for v in keys.values()), keys)
        self.assertEqual(c.resp("TOUCH", *(allk + ["nope"])), integer(40))
        self.assertEqual(c.resp("DEL", *(allk[:10] + ["nope", allk[0]])), integer(10))
        self.assertEqual(c.resp("UNLINK", *(allk[5:20] + ["nope"])), integer(10))
        self.assertEqual(c.resp("TOUCH", *allk), integer(20))
        self.assertEqual(self.locate(allk[:20]), {k: [] for k in allk[:20]})
        self.assertEqual(sum(len(v) for v in self.locate(allk[20:]).values()), 20)
        self.assertEqual(c.resp("DEL", *allk), integer(20))
        self.assertEqual(c.resp("DEL", *allk), integer(0))


class SplitDeadBackend(RedisCase):
    """doc/protocols.md 3 and 5: a split command with a dead part gets the error,
    the conn stays open (nutcracker closes it for MGET)."""
    shared_backends = False

    def test_split_commands_with_a_dead_backend(self):
        c = self.client()
        keys = self.spread_keys("dead", 30, c)
        live, dead = keys["s1"], keys["s2"]
        self.by_name["s2"].kill()
        time.sleep(0.1)
        self.assertGreaterEqual(len(live), 8)
        # each command on its own live keys: the live fragment of a failed
        # request may have run (doc/protocols.md 3 only says the whole request fails)
        for i, name in enumerate(("MGET", "EXISTS", "TOUCH", "DEL", "UNLINK", "MSET")):
            a, b = live[i], dead[i % len(dead)]
            args = [name, a, "x", b, "y"] if name == "MSET" else [name, b, a, dead[0]]
            r = c.resp(*args)
            self.assertIn(r, (REFUSED, RESET), name)
        # requests for the live server still work, on this conn and a new one
        a, b = live[6], live[7]
        self.assertEqual(c.resp("MGET", a, b), array([bulk("v-" + a), bulk("v-" + b)]))
        self.assertIn(c.resp("GET", dead[0]), (REFUSED, RESET))
        c2 = self.client()
        self.assertEqual(c2.resp("GET", a), bulk("v-" + a))
        self.assertIn(c2.resp("MGET", a, dead[0]), (REFUSED, RESET))

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=2)


# --------------------------------------------------------------------------
# local replies

class LocalReplies(RedisCase):
    """PING, ECHO, QUIT, SELECT answered by the proxy (doc/protocols.md 3 and 5)."""

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=2)

    def client(self, px=None, timeout=2):
        return RedisCase.client(self, px, timeout)

    def test_ping(self):
        c = self.client()
        self.assertEqual(c.resp("PING"), PONG)
        self.assertEqual(c.resp("ping"), PONG)
        self.assertOpen(c)

    def local_bulk_replies(self, name, args):
        """The bulk replies to `name arg` for each arg: pipelined in one write,
        then one request at a time on the same conn, then the conn must still
        serve forwarded requests."""
        c = self.client()
        c.send(b"".join(cmd(name, a) for a in args) + cmd("GET", "nope"))
        try:
            self.assertEqual(c.read_resp(len(args) + 1), [bulk(a) for a in args] + [NIL])
        except socket.timeout as e:
            self.fail("%s pipelined (the last requests arriving after earlier replies were "
                      "written): %s" % (name, e))
        for i, a in enumerate(args):
            try:
                self.assertEqual(c.resp(name, a), bulk(a))
            except socket.timeout as e:
                self.fail("no reply to request #%d (%s %r) sent after the reply to an earlier "
                          "%s was written: %s" % (i + 1, name, a[:20], name, e))
        try:
            self.assertServes(c)
        except socket.timeout as e:
            self.fail("conn stopped serving after %s replies: %s" % (name, e))

    def test_ping_with_argument_echoes_bulk(self):
        """Appendix B: `PING msg` is answered with the bulk (nutcracker closes)."""
        self.local_bulk_replies("PING", [b"hello", b"a\r\nb\x00", b"", b"p" * 70000])
        c = self.client()
        self.assertEqual(c.resp("PING", "a", "b"), wrong_arity("ping"))
        self.assertOpen(c)

    def test_echo(self):
        """Appendix B: ECHO is answered locally (nutcracker closes)."""
        self.local_bulk_replies("ECHO", [b"hi there", b"\r\n$1\r\n", b"", b"e" * 100000])
        c = self.client()
        self.assertEqual(c.resp("ECHO"), wrong_arity("echo"))
        self.assertOpen(c)

    def test_quit_replies_ok_then_closes(self):
        """Appendix B: QUIT gets +OK (nutcracker: no reply), after the replies
        to earlier pipelined requests; nothing after it runs."""
        c0 = self.client()
        keys = self.spread_keys("q", 10, c0)
        a, b = keys["s1"][0], keys["s2"][0]
        c = self.client()
        c.send(cmds(("SET", "q:new", "1"), ("MGET", a, b), ("QUIT",), ("SET", "q:after", "x"), ("GET", a)))
        got = c.read_until_close(timeout=3)
        self.assertEqual(got, OK + array([bulk("v-" + a), bulk("v-" + b)]) + OK)
        self.assertEqual(self.where("q:after"), [])
        self.assertEqual(len(self.where("q:new")), 1)
        c = self.client()
        c.send(b"QUIT\r\n")
        self.assertEqual(c.read_until_close(timeout=3), OK)

    def test_redis_db_refused_by_the_backend(self):
        """redis_db = 99 on backends with 16 databases: the handshake's SELECT
        fails, so the request gets an error reply (the conn stays open) and
        the log has the backend's text."""
        px = self.cachemux([self.pool(name="nodb", redis_db=99)], workers=1)
        c = self.client(px, timeout=10)
        r = c.resp("GET", "k")
        self.assertTrue(r.startswith(b"-ERR "), r)
        self.assertOpen(c)
        self.assertEqual(c.resp("SELECT", "99"), OK)
        deadline = time.time() + h.scaled(3)
        while "DB index is out of range" not in px.log_text() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("DB index is out of range", px.log_text())

    def test_select_with_redis_db_0(self):
        """Appendix B: SELECT n is +OK for the pool's db, an error otherwise."""
        c = self.client()
        self.assertEqual(c.resp("SELECT", "0"), OK)
        self.assertEqual(c.resp("SELECT", "1"), err("ERR SELECT is not allowed: this pool serves db 0"))
        self.assertEqual(c.resp("SELECT", "15"), err("ERR SELECT is not allowed: this pool serves db 0"))
        self.assertEqual(c.resp("SELECT", "x"), err("ERR SELECT is not allowed: this pool serves db 0"))
        self.assertEqual(c.resp("SELECT"), wrong_arity("select"))
        self.assertServes(c)

    def test_select_with_another_redis_db(self):
        """redis_db = 5: SELECT 5 is +OK, SELECT 0 is refused, and the data
        lands in db 5 of the backends (none in db 0)."""
        px = self.cachemux([self.pool(name="five", redis_db=5)], workers=2)
        c = self.client(px)
        self.assertEqual(c.resp("SELECT", "5"), OK)
        self.assertEqual(c.resp("SELECT", "0"), err("ERR SELECT is not allowed: this pool serves db 5"))
        keys = spread("db5", 20)
        self.assertEqual(c.resp("MSET", *[x for k in keys for x in (k, k)]), OK)
        self.assertEqual(c.resp("MGET", *keys), array([bulk(k) for k in keys]))
        found = set()
        for b in self.backends:
            self.assertEqual(direct_keys(b, db=0), set(), b.name)
            found |= direct_keys(b, db=5)
        self.assertEqual(found, {B(k) for k in keys})
        self.assertTrue(all(direct_keys(b, db=5) for b in self.backends), "db 5 keys on one server only")
        if redis_cli_path():
            # redis-cli -n 5 sends SELECT 5 first
            p = subprocess.run([redis_cli_path(), "-h", h.HOST, "-p", str(px.port()), "-n", "5",
                                "GET", keys[0]], capture_output=True, timeout=h.scaled(30))
            self.assertEqual((p.stdout, p.stderr), (B(keys[0]) + b"\n", b""))


# --------------------------------------------------------------------------
# AUTH

SECRET = "s3cr3t-pw"


class Auth(RedisCase):
    """doc/protocols.md 3 "Authentication and database" with redis_auth set; the backends require the same password
    (the proxy sends AUTH on each backend conn, as twemproxy does)."""
    pool_keys = {"redis_auth": SECRET}
    backend_password = SECRET

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=2)

    def test_noauth_before_auth(self):
        """Appendix B: `-NOAUTH Authentication required.` (with Redis's period)."""
        c = self.client()
        for args in (("GET", "k"), ("SET", "k", "v"), ("MGET", "a", "b"), ("PING",), ("ECHO", "x"),
                     ("SELECT", "0"), ("EVAL", "return 1", "0"), ("DEL", "a", "b", "c")):
            self.assertEqual(c.resp(*args), NOAUTH, args)
        self.assertOpen(c)
        for b in self.backends:
            self.assertEqual(direct_keys(b, password=SECRET), set())
        # pipelined: each one answered, in order
        c.send(cmds(("GET", "a"), ("AUTH", SECRET), ("GET", "a")))
        self.assertEqual(c.read_resp(3), [NOAUTH, OK, NIL])

    def test_auth_password(self):
        c = self.client()
        self.assertEqual(c.resp("AUTH", "wrong"), err("ERR invalid password"))
        self.assertEqual(c.resp("GET", "k"), NOAUTH)
        self.assertEqual(c.resp("AUTH", SECRET), OK)
        self.assertEqual(c.resp("SET", "k", "v"), OK)
        self.assertEqual(c.resp("GET", "k"), bulk("v"))
        self.assertEqual(c.resp("PING"), PONG)
        self.assertServes(c)

    def test_auth_default_user(self):
        c = self.client()
        self.assertEqual(c.resp("AUTH", "default", "wrong"), err("ERR invalid password"))
        self.assertEqual(c.resp("GET", "k"), NOAUTH)
        self.assertEqual(c.resp("AUTH", "default", SECRET), OK)
        self.assertEqual(c.resp("GET", "k"), NIL)

    def test_auth_other_user_wrongpass(self):
        """Appendix B: `AUTH user pass` gets WRONGPASS (nutcracker closes)."""
        c = self.client()
        want = err("WRONGPASS invalid username-password pair or user is disabled.")
        self.assertEqual(c.resp("AUTH", "alice", SECRET), want)
        self.assertEqual(c.resp("AUTH", "alice", "wrong"), want)
        self.assertEqual(c.resp("GET", "k"), NOAUTH)
        self.assertOpen(c)

    def test_quit_before_auth(self):
        c = self.client()
        c.send(cmd("QUIT"))
        self.assertEqual(c.read_until_close(timeout=3), OK)

    def test_pyredis_and_redis_cli_with_password(self):
        need_pyredis(self)
        r = pyclient(self, self.px.port(), password=SECRET)
        self.assertTrue(r.set("py", "1"))
        self.assertEqual(r.get("py"), b"1")
        bad = pyclient(self, self.px.port())
        with self.assertRaises(pyredis.exceptions.AuthenticationError):
            bad.get("py")
        if redis_cli_path():
            p = subprocess.run([redis_cli_path(), "-h", h.HOST, "-p", str(self.px.port()), "--no-auth-warning",
                                "-a", SECRET, "GET", "py"], capture_output=True, timeout=h.scaled(30))
            self.assertEqual(p.stdout, b"1\n", p.stderr)



class AuthUnset(RedisCase):
    """AUTH on a pool without redis_auth (doc/protocols.md 3)."""

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=1)

    def test_auth_without_redis_auth(self):
        c = self.client()
        want = err("ERR Client sent AUTH, but no password is set")
        self.assertEqual(c.resp("AUTH", "x"), want)
        self.assertEqual(c.resp("AUTH", "default", "x"), want)
        self.assertEqual(c.resp("SET", "k", "v"), OK)
        self.assertServes(c)


class AuthBackends(RedisCase):
    """Backends that require a password (redis-server --requirepass), pool with
    redis_auth and redis_db = 3: cachemux sends AUTH, then SELECT (Appendix B:
    nutcracker sends SELECT first, which fails, and data lands in db 0)."""
    shared_backends = False
    backend_password = SECRET

    def start_proxy(self):
        return None

    def test_auth_then_select_db3(self):
        px = self.cachemux([self.pool(redis_auth=SECRET, redis_db=3)], workers=2)
        c = self.client(px)
        self.assertEqual(c.resp("GET", "k"), NOAUTH)
        self.assertEqual(c.resp("AUTH", SECRET), OK)
        self.assertEqual(c.resp("SELECT", "3"), OK)
        keys = spread("db3", 30)
        self.assertEqual(c.resp("MSET", *[x for k in keys for x in (k, "v" + k)]), OK)
        self.assertEqual(c.resp("SET", "single", "one"), OK)
        self.assertEqual(c.resp("MGET", *keys), array([bulk("v" + k) for k in keys]))
        found = set()
        for b in self.backends:
            self.assertEqual(direct_keys(b, db=0, password=SECRET), set(), "%s db 0" % b.name)
            mine = direct_keys(b, db=3, password=SECRET)
            self.assertTrue(mine, "nothing in db 3 of %s" % b.name)
            found |= mine
        self.assertEqual(found, {B(k) for k in keys} | {b"single"})

    def test_wrong_redis_auth_fails_the_backend_conn(self):
        """A failed AUTH toward the backend fails the conn: the request gets an
        error reply (not a hang, not a silent close) and the log has the
        backend's text."""
        px = self.cachemux([self.pool(redis_auth="not-the-password")], workers=1)
        c = self.client(px)
        self.assertEqual(c.resp("AUTH", "not-the-password"), OK)
        r = c.resp("GET", "k", timeout=10)
        self.assertTrue(r.startswith(b"-ERR "), r)
        self.assertOpen(c)
        deadline = time.time() + h.scaled(3)
        while "WRONGPASS" not in px.log_text() and time.time() < deadline:
            time.sleep(0.05)
        self.assertIn("WRONGPASS invalid username-password pair", px.log_text())


# --------------------------------------------------------------------------
# errors

class Errors(RedisCase):
    """Error replies of doc/protocols.md 4 (nutcracker closes on all of them:
    Appendix B `bad or unsupported request`)."""

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=2)

    def test_unsupported_command_conn_stays_open(self):
        c = self.client()
        for args in (("multi",), ("subscribe", "ch"), ("config", "get", "maxmemory"),
                     ("foobar", "x"), ("script", "kill"), ("client", "list"), ("swapdb", "0", "1")):
            self.assertEqual(c.resp(*args), unsupported(args[0]), args)
            self.assertEqual(c.resp("PING"), PONG, "conn still serves after %r" % (args,))
        self.assertServes(c)
        self.assertEqual(commandstats(self.backends[0]).get("script|kill"), None)

    def test_move_is_unsupported(self):
        """Appendix A/B: MOVE gets the unsupported error (nutcracker closes)."""
        c = self.client()
        c.resp("SET", "mv", "1")
        self.assertEqual(c.resp("move", "mv", "1"), unsupported("move"))
        self.assertOpen(c)
        self.assertEqual(c.resp("GET", "mv"), bulk("1"))
        (b,) = [self.by_name[n] for n in self.where("mv")]
        self.assertEqual(direct_keys(b, db=1), set())

    def test_wrong_arity_conn_stays_open(self):
        """Appendix B: Redis's wrong-arity text, conn stays open."""
        c = self.client()
        for args, name in ((("get",), "get"), (("GET",), "get"), (("get", "a", "b"), "get"),
                           (("set", "k"), "set"), (("hget", "h"), "hget"), (("mget",), "mget"),
                           (("del",), "del"), (("exists",), "exists"), (("lrange", "l", "0"), "lrange"),
                           (("eval",), "eval"), (("echo",), "echo"), (("ping", "a", "b"), "ping"),
                           (("zadd", "z", "1"), "zadd"), (("strlen", "a", "b"), "strlen")):
            self.assertEqual(c.resp(*args), wrong_arity(name), args)
            self.assertEqual(c.resp("PING"), PONG, "conn still serves after %r" % (args,))
        self.assertServes(c)

    def test_mset_odd_count_is_an_error(self):
        """Appendix A: MSET with an odd argument count is an error (Redis's
        wrong-arity text; nutcracker closes the conn)."""
        c = self.client()
        self.assertEqual(c.resp("MSET", "a", "1", "b"), wrong_arity("mset"))
        self.assertEqual(c.resp("MSET", "a", "1", "b", "2", "c"), wrong_arity("mset"))
        self.assertEqual(c.resp("MSET", "a"), wrong_arity("mset"))
        self.assertEqual(self.where("a"), [])
        self.assertServes(c)

    def test_errors_keep_their_place_in_a_pipeline(self):
        c = self.client()
        keys = self.spread_keys("pl", 10, c)
        a, b = keys["s1"][0], keys["s2"][0]
        c.send(cmds(("GET", a), ("bogus",), ("GET", b), ("get",), ("MGET", a, b), ("LPUSH", a, "x"),
                    ("GET", a)))
        self.assertEqual(c.read_resp(7), [bulk("v-" + a), unsupported("bogus"), bulk("v-" + b),
                                          wrong_arity("get"), array([bulk("v-" + a), bulk("v-" + b)]),
                                          WRONGTYPE, bulk("v-" + a)])

    FRAMING = [
        (b"*2\r\n$3\r\nGET\r\n:x\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
        (b"*1\r\n$999999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*2\r\n$3\r\nSET\r\n$536870913\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*2147483647\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1048577\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*2\r\n$3\r\nGET\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$x\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ]

    def test_framing_errors_flush_earlier_replies_then_close(self):
        """Appendix B: a framing error gets `-ERR Protocol error: ...` after the
        replies to every earlier pipelined request (on both servers), then the
        conn closes; nothing after it runs."""
        c0 = self.client()
        keys = self.spread_keys("fr", 10, c0)
        a, b = keys["s1"][0], keys["s2"][0]
        before = cmds(("GET", a), ("GET", b), ("SET", "fr:new", "n"), ("MGET", a, b, "fr:miss"), ("PING",))
        want = (bulk("v-" + a) + bulk("v-" + b) + OK +
                array([bulk("v-" + a), bulk("v-" + b), NIL]) + PONG)
        for bad, reply in self.FRAMING:
            self.assertTrue(reply.startswith(b"-ERR Protocol error: "))
            self.closes_with(before + bad + cmd("SET", "fr:after", "x"), want + reply)
            self.closes_with(bad, reply)
        self.assertEqual(self.where("fr:after"), [])

    def test_request_too_large_before_body(self):
        """doc/protocols.md 4: a declared size over max_request_size is refused before the
        body is read (the body is never sent here), then close."""
        px = self.cachemux([self.pool(name="small")], workers=1,
                           globals_={"max_request_size": 1048576})
        c = self.client(px)
        self.assertEqual(c.resp("SET", "ok", "x" * 1000), OK)
        c.send(cmd("GET", "ok") + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
        got = c.read_until_close(timeout=3)
        self.assertEqual(got, bulk("x" * 1000) + b"-ERR Protocol error: request too large\r\n")
        # a count that cannot fit (at least 6 bytes per argument) is refused
        # at its header
        self.closes_with(b"*1000000\r\n", b"-ERR Protocol error: request too large\r\n", c=self.client(px))
        # bulk lengths are checked first: 512 MiB is a valid length, then too
        # large for the default max_request_size (64 MiB) of the main pool
        self.closes_with(cmd("PING") + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n",
                         PONG + b"-ERR Protocol error: request too large\r\n")

    def test_eof_after_partial_request(self):
        """Appendix B: a client that sends EOF after a partial request gets the
        replies to its complete requests, then the conn closes (nutcracker
        holds it open forever)."""
        c0 = self.client()
        keys = self.spread_keys("eof", 10, c0)
        a, b = keys["s1"][0], keys["s2"][0]
        for partial in (b"*2\r\n$3\r\nGET\r\n$1", b"*2\r\n$3\r\nGET\r\n", b"GET k", b"*",
                        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"x" * 50000):
            c = self.client()
            c.send(cmds(("GET", a), ("MGET", a, b)) + partial)
            c.shutdown_write()
            try:
                got = c.read_until_close(timeout=3)
            except socket.timeout:
                self.fail("still open after EOF following %r; got %r" % (partial[:40], bytes(c.buf)))
            self.assertEqual(got, bulk("v-" + a) + array([bulk("v-" + a), bulk("v-" + b)]), partial[:40])
        self.assertEqual(self.where("k"), [])

    def test_inline_commands_accepted(self):
        """Appendix B: inline commands are served (nutcracker rejects them)."""
        c = self.client()
        keys = spread("in", 12)
        self.assertEqual(raw(c, b"PING\r\n"), PONG)
        self.assertEqual(raw(c, b"SET inl hello\r\n"), OK)
        self.assertEqual(raw(c, b"GET inl\r\n"), bulk("hello"))
        self.assertEqual(raw(c, b"get   inl  \r\n"), bulk("hello"))
        self.assertEqual(raw(c, b"GET inl\n"), bulk("hello"))
        c.send(b"MSET " + b" ".join(B(k) + b" i" + B(k) for k in keys) + b"\r\n")
        self.assertEqual(c.read_resp(1), [OK])
        loc = self.locate(keys)
        self.assertEqual({v[0] for v in loc.values() if len(v) == 1}, {"s1", "s2"})
        c.send(b"MGET " + b" ".join(B(k) for k in keys) + b" nope\r\n")
        self.assertEqual(c.read_resp(1), [array([bulk(b"i" + B(k)) for k in keys] + [NIL])])
        # mixed with multibulk in one write
        c.send(b"GET inl\r\n" + cmd("GET", "inl") + b"PING\r\nEXISTS inl\r\n")
        self.assertEqual(c.read_resp(4), [bulk("hello"), bulk("hello"), PONG, integer(1)])
        self.assertEqual(raw(c, b"bogus a b\r\n"), unsupported("bogus"))
        self.assertEqual(raw(c, b"GET\r\n"), wrong_arity("get"))
        self.assertServes(c)

    def test_inline_quotes_split_as_redis_does(self):
        """Inline arguments are split as Redis splits them (quotes and
        escapes): each line gets the reply redis-server itself gives, and
        the value stored is the decoded one. An inline line over Redis's
        64 KiB limit is accepted as far as Redis accepts one; unbalanced
        quotes close the conn after Redis's error."""
        lines = [b'SET qk "hello world"', b"GET qk", b"SET q2 'it\\'s'", b"GET q2",
                 b'SET q3 "a\\x41\\n\\"b"', b"GET q3", b'ECHO "\\t tab"', b"ECHO ''",
                 b'"get" qk', b"SET q4 ab\"c d\"", b"GET q4", b'SET q5 "x"y', b"GET q5"]
        want = []
        for ln in lines:
            # one conn per line: a protocol error closes it
            with h.Client(self.backends[0].port) as d:
                d.send(ln + b"\r\n")
                want.append(d.read_resp(1)[0])
        direct_flush(self.backends[0])
        c = self.client()
        for ln, w in zip(lines, want):
            if w.startswith(b"-ERR Protocol error"):
                continue    # closes the conn: checked last
            c.send(ln + b"\r\n")
            self.assertEqual(c.read_resp(1)[0], w, ln)
        self.assertEqual(len(self.where("qk")), 1)
        # the longest inline line Redis takes (its '\n' in the 16 KiB read
        # that crosses 64 KiB) and one byte more
        for n, ok in ((81920, True), (81921, False)):
            c2 = self.client()
            c2.send(b"SET long " + b"a" * (n - 11) + b"\r\n")
            if ok:
                self.assertEqual(c2.read_resp(1)[0], OK)
                self.assertEqual(c2.resp("STRLEN", "long"), integer(n - 11))
            else:
                self.assertEqual(c2.read_resp(1)[0],
                                 err("ERR Protocol error: too big inline request"))
                self.assertClosed(c2)
        bad = [ln for ln, w in zip(lines, want) if w.startswith(b"-ERR Protocol error")]
        self.assertEqual(bad, [b'SET q5 "x"y'])
        c3 = self.client()
        c3.send(b"PING\r\n" + bad[0] + b"\r\nPING\r\n")
        self.assertEqual(c3.read_resp(2), [PONG, err("ERR Protocol error: unbalanced quotes "
                                                      "in request")])
        self.assertClosed(c3)

    def test_backend_error_replies_pass_through(self):
        c = self.client()
        c.resp("SET", "str", "x")
        c.resp("RPUSH", "lst", "x")
        self.assertEqual(c.resp("LPUSH", "str", "y"), WRONGTYPE)
        self.assertEqual(c.resp("GET", "lst"), WRONGTYPE)
        self.assertEqual(c.resp("INCR", "str"), err("ERR value is not an integer or out of range"))
        self.assertEqual(c.resp("SET", "a", "b", "NX", "XX"), err("ERR syntax error"))
        self.assertEqual(c.resp("EVALSHA", "0" * 40, "1", "k"),
                         err("NOSCRIPT No matching script. Please use EVAL."))
        self.assertEqual(c.resp("EVAL", "return redis.error_reply('CUSTOM failure')", "1", "k"),
                         err("CUSTOM failure"))
        self.assertServes(c)

    def test_oom_passes_through(self):
        """Appendix B: -OOM from the backend passes through verbatim and the conn
        stays open (nutcracker turns it into `-ERR Invalid argument`, closes)."""
        b = self.redis(name="s1", extra=["--maxmemory", "1", "--maxmemory-policy", "noeviction"])
        px = self.cachemux([self.pool([b], name="oom")], workers=1)
        c = self.client(px)
        want = direct(b, "SET", "k", "v")
        self.assertTrue(want.startswith(b"-OOM "), want)
        self.assertEqual(c.resp("SET", "k", "v"), want)
        self.assertEqual(c.resp("GET", "k"), NIL)
        c.send(cmds(("GET", "k"), ("SET", "k", "v"), ("PING",)))
        self.assertEqual(c.read_resp(3), [NIL, want, PONG])
        self.assertOpen(c)

    def test_mset_with_a_part_refused_by_the_backend(self):
        """doc/protocols.md 3: MSET is +OK only when every part succeeded; a part
        answered -OOM makes the whole MSET answer that error, verbatim."""
        oom = self.redis(name="s2", extra=["--maxmemory", "1", "--maxmemory-policy", "noeviction"])
        px = self.cachemux([self.pool([self.by_name["s1"], oom], name="halfoom")], workers=1)
        c = self.client(px)
        want = direct(oom, "SET", "k", "v")
        self.assertTrue(want.startswith(b"-OOM "), want)
        keys = spread("oom", 20)
        reps = [c.resp("SET", k, "v") for k in keys]
        good = [k for k, r in zip(keys, reps) if r == OK]
        bad = [k for k, r in zip(keys, reps) if r != OK]
        self.assertTrue(good and bad, reps)
        self.assertEqual(set(reps) - {OK}, {want})
        self.assertEqual(c.resp("MSET", good[0], "1", bad[0], "2", good[1], "3"), want)
        self.assertEqual(c.resp("MSET", bad[0], "2", good[0], "1"), want)
        self.assertEqual(c.resp("MSET", good[0], "x", good[1], "y"), OK)
        self.assertEqual(c.resp("MGET", good[0], bad[0], good[1]), array([bulk("x"), NIL, bulk("y")]))
        self.assertOpen(c)


# --------------------------------------------------------------------------
# cachemux-only behaviours of doc/protocols.md 5 not covered above

class AppendixB(RedisCase):
    """Each row of doc/protocols.md 5 that concerns Redis requests and has no test
    elsewhere in this file."""

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=2)

    def test_exists_across_servers_summed(self):
        """EXISTS with keys on several servers is split and summed (nutcracker
        counts only the first key's server)."""
        c = self.client()
        keys = self.spread_keys("ex", 30, c)
        self.assertTrue(len(keys["s1"]) >= 4 and len(keys["s2"]) >= 5, keys)
        allk = keys["s1"][:4] + keys["s2"][:5]
        random.Random(4).shuffle(allk)
        self.assertEqual(c.resp("EXISTS", *allk), integer(9))
        self.assertEqual(c.resp("EXISTS", *(allk + ["nope", allk[0]])), integer(10))
        self.assertEqual(c.resp("EXISTS", keys["s2"][0], keys["s1"][0]), integer(2))
        self.assertEqual(c.resp("EXISTS", "nope", "nope2"), integer(0))
        c.resp("DEL", keys["s2"][0])
        self.assertEqual(c.resp("EXISTS", *allk), integer(8))

    def test_fragments_counted(self):
        """README "Operations" / doc/protocols.md 5: `fragments` counts the sub-requests made by
        splitting (nutcracker: always 0); each fragment counts once in its
        server's `requests`."""
        c = self.client()
        keys = self.spread_keys("fg", 20, c)
        a1, a2, b1 = keys["s1"][0], keys["s1"][1], keys["s2"][0]

        def stats():
            pool = self.px.stats_json()["alpha"]
            return pool["fragments"], {n: pool[n]["requests"] for n in ("s1", "s2")}

        f0, r0 = stats()
        self.assertEqual(c.resp("MGET", a1, b1, a2), array([bulk("v-" + k) for k in (a1, b1, a2)]))
        f1, r1 = stats()
        self.assertEqual(f1 - f0, 2)
        self.assertEqual({n: r1[n] - r0[n] for n in r1}, {"s1": 1, "s2": 1})
        self.assertEqual(c.resp("MGET", a1, a2), array([bulk("v-" + a1), bulk("v-" + a2)]))
        self.assertEqual(c.resp("DEL", a1 + "-x"), integer(0))
        f2, r2 = stats()
        self.assertEqual(f2 - f1, 0, "one-server MGET and one-key DEL are forwarded whole")
        self.assertEqual(sum(r2.values()) - sum(r1.values()), 2)
        self.assertEqual(c.resp("MSET", a1, "1", b1, "2"), OK)
        self.assertEqual(c.resp("EXISTS", a1, b1, a2), integer(3))
        f3, r3 = stats()
        self.assertEqual(f3 - f2, 4)
        self.assertEqual({n: r3[n] - r2[n] for n in r3}, {"s1": 2, "s2": 2})

    def test_backend_closing_idle_conn_is_not_a_failure(self):
        """A backend closing an idle conn (redis-server --timeout 1) is not a
        failure: with auto_eject_hosts and server_failure_limit 1 nothing is
        ejected, and the next requests are served on a new conn."""
        b1 = self.redis(name="s1", extra=["--timeout", "1"])
        b2 = self.redis(name="s2", extra=["--timeout", "1"])
        px = self.cachemux([self.pool([b1, b2], name="idle", auto_eject_hosts=True,
                                      server_failure_limit=1, server_retry_timeout=60000)], workers=1)
        c = self.client(px)
        keys = spread("idle", 20)
        self.assertEqual(c.resp("MSET", *[x for k in keys for x in (k, k)]), OK)
        loc = self.locate(keys, [b1, b2])
        self.assertEqual({v[0] for v in loc.values() if len(v) == 1}, {"s1", "s2"})
        time.sleep(2.6)     # redis checks idle clients about every second
        for b in (b1, b2):
            v = value(direct(b, "CLIENT", "LIST")).decode()
            self.assertEqual([ln for ln in v.splitlines() if "cmd=client|list" not in ln], [],
                             "%s still has the proxy's conn" % b.name)
        self.assertEqual(c.resp("MGET", *keys), array([bulk(k) for k in keys]))
        for k in keys:
            self.assertEqual(c.resp("GET", k), bulk(k))
        doc = px.stats_json()
        self.assertEqual(doc["idle"]["server_ejects"], 0)
        self.assertEqual(doc["idle"]["forward_error"], 0)
        # keys stayed where they were: nothing was ejected from the ring
        self.assertEqual(self.locate(keys, [b1, b2]), loc)

    def test_eval_numkeys_0_goes_to_placeholder_server(self):
        """EVAL/EVALSHA with numkeys 0 run on the server of the key
        `placeholder` (nutcracker closes the conn); so do COMMAND with
        arguments and LOLWUT."""
        c = self.client()
        self.assertEqual(c.resp("SET", "placeholder", "p"), OK)
        (ph,) = self.where("placeholder")
        other = [b.name for b in self.backends if b.name != ph][0]
        # a key that routes to the other server
        keys = self.spread_keys("zk", 20, c)
        k = keys[other][0]
        script = "redis.call('set', ARGV[1], 'from-eval') return redis.call('get', ARGV[1])"
        self.assertEqual(c.resp("EVAL", script, "0", k), bulk("from-eval"))
        self.assertEqual(direct(self.by_name[ph], "GET", k), bulk("from-eval"))
        self.assertEqual(direct(self.by_name[other], "GET", k), bulk("v-" + k))
        sha = hashlib.sha1(script.encode()).hexdigest()
        self.assertEqual(c.resp("EVALSHA", sha, "0", k + ":2"), bulk("from-eval"))
        self.assertEqual(direct(self.by_name[ph], "GET", k + ":2"), bulk("from-eval"))
        self.assertEqual(c.resp("EVAL", "return 42", "0"), integer(42))
        # COMMAND with arguments and LOLWUT
        n = c.resp("COMMAND", "COUNT")
        self.assertTrue(value(n) > 100, n)
        info = c.resp("COMMAND", "INFO", "get")
        self.assertTrue(info.startswith(b"*1\r\n*"), info[:40])
        self.assertTrue(c.resp("LOLWUT").startswith(b"$"))
        st_ph, st_other = commandstats(self.by_name[ph]), commandstats(self.by_name[other])
        self.assertGreaterEqual(st_ph.get("eval", 0), 2)
        self.assertEqual(st_ph.get("evalsha", 0), 1)
        self.assertEqual(st_ph.get("command|count", 0), 1)
        self.assertEqual(st_ph.get("command|info", 0), 1)
        self.assertEqual(st_ph.get("lolwut", 0), 1)
        for cm in ("eval", "evalsha", "command|count", "command|info", "lolwut"):
            self.assertEqual(st_other.get(cm, 0), 0, cm)
        self.assertEqual(n, direct(self.by_name[ph], "COMMAND", "COUNT"))
        self.assertOpen(c)

    def test_eval_routed_by_first_key(self):
        c = self.client()
        keys = self.spread_keys("ek", 20, c)
        a, b = keys["s1"][0], keys["s2"][0]
        script = "return redis.call('get', KEYS[1])"
        self.assertEqual(c.resp("EVAL", script, "1", a), bulk("v-" + a))
        self.assertEqual(c.resp("EVAL", script, "1", b), bulk("v-" + b))
        # the first key decides, the others go along
        self.assertEqual(c.resp("EVAL", "return redis.call('exists', KEYS[1], KEYS[2])", "2", b, a), integer(1))

    def test_mget_with_failed_part_conn_stays_open(self):
        """MGET with a failed part gets the error, conn stays open (nutcracker
        closes). The dead part here is a backend that was never started."""
        dead_port = h.free_port()
        pool = self.pool(self.backends[:1] + [("127.0.0.1", dead_port, 1, "s2")], name="half")
        px = self.cachemux([pool], workers=1)
        c = self.client(px)
        keys = spread("half", 30)
        self.assertEqual(c.resp("SET", "placeholder", "x"), OK)   # s1 at least is alive
        reps = c.pipeline(b"".join(cmd("SET", k, "v") for k in keys), len(keys), resp=True)
        live = [k for k, r in zip(keys, reps) if r == OK]
        dead = [k for k, r in zip(keys, reps) if r != OK]
        self.assertTrue(live and dead, reps)
        self.assertEqual(set(reps) - {OK}, {REFUSED})
        self.assertEqual(c.resp("MGET", live[0], dead[0], live[1]), REFUSED)
        self.assertOpen(c)
        self.assertEqual(c.resp("MGET", live[0], live[1]), array([bulk("v"), bulk("v")]))
        self.assertEqual(c.resp("DEL", dead[0], live[0]), REFUSED)
        self.assertEqual(c.resp("GET", live[1]), bulk("v"))

    def test_backend_eof_with_request_outstanding_is_reset(self):
        """A backend that dies with a request outstanding yields
        `-ERR Connection reset by peer` for it (nutcracker: `-ERR unknown`);
        the client conn stays open."""
        b = self.redis(name="s1")
        px = self.cachemux([self.pool([b], name="solo")], workers=1)
        c = self.client(px)
        self.assertEqual(c.resp("SET", "k", "v"), OK)
        c.send(cmd("EVAL", sleep_script(3000), "1", "k"))
        time.sleep(h.scaled(0.4))
        b.kill()
        self.assertEqual(c.read_resp(1, timeout=10), [RESET])
        self.assertOpen(c)
        self.assertIn(c.resp("GET", "k"), (REFUSED, RESET))

    def test_timeout_fails_only_the_late_request(self):
        """timeout = 300: an EVAL running 400 ms gets `Connection timed out`; a
        GET queued 250 ms later on the same server conn succeeds."""
        b = self.redis(name="s1")
        t = h.TIME_SCALE
        px = self.cachemux([self.pool([b], name="slow", timeout=int(300 * t))], workers=1)
        c1, c2 = self.client(px), self.client(px)
        self.assertEqual(c1.resp("SET", "k", "value"), OK)
        self.assertEqual(c2.resp("GET", "k"), bulk("value"))
        c1.send(cmd("EVAL", sleep_script(400 * t), "1", "k"))
        time.sleep(0.25 * t)
        c2.send(cmd("GET", "k"))
        self.assertEqual(c1.read_resp(1, timeout=5), [b"-ERR Connection timed out\r\n"])
        self.assertEqual(c2.read_resp(1, timeout=5), [bulk("value")])
        self.assertEqual(c1.resp("GET", "k"), bulk("value"))


# --------------------------------------------------------------------------
# replies of any shape

class Replies(RedisCase):
    """doc/protocols.md 3: replies of any RESP2 type nested to any depth, and large
    ones, arrive byte for byte as the backend sends them."""

    def test_nested_and_large_replies(self):
        c = self.client(timeout=30)
        k = "deep"
        self.assertEqual(c.resp("SET", k, "x"), OK)
        (b,) = [self.by_name[n] for n in self.where(k)]
        scripts = [
            # 100 levels of nesting around mixed types
            "local t = {1, 'a', redis.status_reply('ST')} for i = 1, 100 do t = {t, i, 's' .. i} end return t",
            # an error inside an array, nil inside arrays
            "return {1, redis.error_reply('E inner'), {false, 'x'}, {}}",
            # 20000 elements, crossing many I/O buffers
            "local t = {} for i = 1, 20000 do t[i] = string.rep('v', i % 50) .. i end return t",
            # one 3 MiB bulk
            "return string.rep('0123456789abcdef\\r\\n', 174763)",
        ]
        for sc in scripts:
            want = direct(b, "EVAL", sc, "1", k)
            self.assertEqual(c.resp("EVAL", sc, "1", k, timeout=30), want, sc[:60])
        self.assertTrue(direct(b, "EVAL", scripts[0], "1", k).startswith(b"*3\r\n" * 100 + b"*3\r\n:1\r\n"))
        self.assertTrue(direct(b, "EVAL", scripts[1], "1", k).startswith(b"*4\r\n:1\r\n-E inner\r\n*2\r\n$-1"))
        self.assertTrue(direct(b, "EVAL", scripts[2], "1", k).startswith(b"*20000\r\n"))
        self.assertTrue(direct(b, "EVAL", scripts[3], "1", k).startswith(b"$%d\r\n" % (18 * 174763)))
        # the same, pipelined with small requests around them
        c.send(b"".join(cmd("EVAL", sc, "1", k) + cmd("GET", k) for sc in scripts))
        got = c.read_resp(2 * len(scripts), timeout=30)
        for i, sc in enumerate(scripts):
            self.assertEqual(got[2 * i], direct(b, "EVAL", sc, "1", k))
            self.assertEqual(got[2 * i + 1], bulk("x"))

    def test_mget_of_5000_keys_over_both_servers(self):
        c = self.client(timeout=30)
        keys = ["mg5k:%d:%s" % (i, hashlib.md5(b"%d" % i).hexdigest()[:4]) for i in range(5000)]
        vals = {k: ("%s=" % k) * (1 + i % 7) for i, k in enumerate(keys) if i % 4}
        items = [x for k, v in vals.items() for x in (k, v)]
        self.assertEqual(c.pipeline(cmd("MSET", *items), 1, resp=True, timeout=30), [OK])
        order = list(keys)
        random.Random(5).shuffle(order)
        want = array([bulk(vals.get(k)) for k in order])
        self.assertEqual(c.pipeline(cmd("MGET", *order), 1, resp=True, timeout=30), [want])
        counts = {b.name: value(direct(b, "DBSIZE")) for b in self.backends}
        self.assertEqual(sum(counts.values()), len(vals))
        self.assertTrue(all(n > 500 for n in counts.values()), counts)
        self.assertEqual(c.pipeline(cmd("DEL", *order), 1, resp=True, timeout=30), [integer(len(vals))])


class RepliesSmallMbufs(Replies):
    """The same with mbuf_size = 512 (cachemux(8): -m 512..16777216), so that
    every header, bulk and fragment crosses buffer boundaries; plus a 5 MiB
    value and a 1000-deep pipeline."""

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=2, globals_={"mbuf_size": 512})

    def test_big_value_and_deep_pipeline(self):
        c = self.client(timeout=30)
        v = random.Random(3).randbytes(5 << 20)
        self.assertEqual(c.pipeline(cmd("SET", "big", v) + cmd("GET", "big") + cmd("STRLEN", "big"), 3,
                                    resp=True, timeout=30), [OK, bulk(v), integer(len(v))])
        keys = spread("deep", 100)
        reqs = b"".join(cmd("SET", k, k * 20) + cmd("MGET", k, keys[i - 1], "none") for i, k in enumerate(keys))
        got = c.pipeline(reqs * 5, 1000, resp=True, timeout=30)
        want = []
        for rnd in range(5):
            for i, k in enumerate(keys):
                prev = keys[i - 1]
                seen = rnd > 0 or i > 0
                want += [OK, array([bulk(k * 20), bulk(prev * 20) if seen else NIL, NIL])]
        self.assertEqual(got, want)


# --------------------------------------------------------------------------
# ordering

def sleep_script(ms):
    """Lua that keeps the backend busy for ms milliseconds, then returns 1."""
    return ("local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] "
            "while true do local n = redis.call('TIME') "
            "if n[1] * 1000000 + n[2] - s > %d then break end end return 1" % int(ms * 1000))


class Ordering(RedisCase):
    """doc/protocols.md 1: replies in request order across servers and fragments."""

    def test_1000_deep_pipeline_across_servers(self):
        c = self.client(timeout=20)
        keys = spread("ord", 200)
        reqs, want = [], []
        stored = {}
        rnd = random.Random(9)
        for i in range(1000):
            k = keys[i % len(keys)]
            r = i % 5
            if r == 0:
                v = "v%d-%s" % (i, "x" * (i % 37))
                reqs.append(cmd("SET", k, v))
                want.append(OK)
                stored[k] = v
            elif r == 1:
                reqs.append(cmd("GET", k))
                want.append(bulk(stored.get(k)))
            elif r == 2:
                ks = rnd.sample(keys, 6)
                reqs.append(cmd("MGET", *ks))
                want.append(array([bulk(stored.get(x)) for x in ks]))
            elif r == 3:
                reqs.append(cmd("INCR", "cnt:" + k))
                stored["cnt:" + k] = str(int(stored.get("cnt:" + k, "0")) + 1)
                want.append(integer(int(stored["cnt:" + k])))
            else:
                # local replies among forwarded ones
                if i % 20 == 4:
                    reqs.append(cmd("PING"))
                    want.append(PONG)
                elif i % 20 == 14:
                    reqs.append(cmd("ECHO", "e%d" % i))
                    want.append(bulk("e%d" % i))
                else:
                    reqs.append(cmd("EXISTS", k))
                    want.append(integer(1 if k in stored else 0))
        got = c.pipeline(b"".join(reqs), len(reqs), resp=True, timeout=20)
        bad = [i for i in range(len(want)) if got[i] != want[i]]
        self.assertEqual(bad[:1], [], "%d replies out of place, first #%d: %r != %r"
                         % (len(bad), bad[0], got[bad[0]][:80], want[bad[0]][:80]) if bad else "")
        loc = self.locate(list(stored))
        self.assertEqual({v[0] for v in loc.values() if v}, {"s1", "s2"})

    def test_local_and_error_replies_wait_behind_a_slow_request(self):
        """A slow EVAL on s1, then (in one write) requests for s2, local
        replies, error replies and a split MGET: every reply comes in request
        order, none overtakes the slow one."""
        c = self.client(timeout=10)
        keys = self.spread_keys("slow", 20, c)
        a, b = keys["s1"][0], keys["s2"][0]
        c.send(cmds(("EVAL", sleep_script(300), "1", a), ("GET", b), ("PING",), ("bogus",), ("get",),
                    ("MGET", b, a), ("ECHO", "e"), ("SELECT", "1"), ("GET", a)))
        got = c.read_resp(9, timeout=10)
        self.assertEqual(got, [integer(1), bulk("v-" + b), PONG, unsupported("bogus"), wrong_arity("get"),
                               array([bulk("v-" + b), bulk("v-" + a)]), bulk("e"),
                               err("ERR SELECT is not allowed: this pool serves db 0"), bulk("v-" + a)])

    def test_client_gone_with_requests_in_flight(self):
        """Clients that close (or reset) while split and plain requests are
        in flight on a slow server: the late replies are dropped, nothing
        breaks, other clients are served (and, under ASan, no report)."""
        keys = self.spread_keys("gone", 20)
        a, b = keys["s1"][0], keys["s2"][0]
        for reset in (False, True):
            for _ in range(3):
                c = self.px.client(timeout=5)
                c.send(cmds(("EVAL", sleep_script(150), "1", a), ("MGET", a, b, "x"), ("GET", a),
                            ("MSET", a, "n", b, "m"), ("DEL", "nope", b + "x", a + "x"), ("PING",)))
                if reset:
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
        time.sleep(0.6)
        c = self.client()
        self.assertEqual(c.resp("MGET", a, b), array([bulk("n"), bulk("m")]))
        self.assertServes(c)

    def test_concurrent_clients_pipelines(self):
        """20 clients pipelining batches of 1, 10, 100 concurrently."""
        errors = []

        def run(t):
            try:
                with self.px.client(timeout=30) as c:
                    for n in (1, 10, 100):
                        reqs, want = [], []
                        for j in range(n):
                            k = "c%d:%d:%d" % (t, n, j)
                            reqs.append(cmd("SET", k, k) + cmd("MGET", k, "c%d:miss:%d" % (t, j), k))
                            want += [OK, array([bulk(k), NIL, bulk(k)])]
                        got = c.pipeline(b"".join(reqs), len(want), resp=True, timeout=30)
                        if got != want:
                            errors.append("client %d batch %d" % (t, n))
                            return
            except Exception as e:
                errors.append("client %d: %r" % (t, e))

        threads = start_threads(run, 20)
        self.assertFalse(join_threads(threads, 60), "clients still running")
        self.assertEqual(errors, [])


# --------------------------------------------------------------------------
# placement

UNNAMED = ("ketama_fnv1a_64_unnamed4.tsv", "ketama_fnv1a_64_port11211.tsv",
           "modula_fnv1a_64_port11211.tsv")
FULL = ("ketama_fnv1a_64.tsv", "modula_md5_names5.tsv", "ketama_fnv1a_64_hashtag.tsv",
        "ketama_md5_weights11788.tsv")


def table_files():
    try:
        return sorted(f for f in os.listdir(h.PLACEMENT_DIR) if f.endswith(".tsv"))
    except OSError:
        return []


class PlacementBase(h.IntegrationTest):
    """doc/testing.md "Placement": keys of every nutcracker-recorded table with named
    servers, written through a cachemux Redis pool whose servers carry the
    table's names and weights, are on the table's backend (KEYS * on each).
    Tables in FULL use all 2000 keys, the others 300 (the first 80 keyN, every
    non-ASCII, raw high-byte and long key, 100 random ones). Five backends
    are shared by the class and flushed between tables."""
    _backends = []

    @classmethod
    def setUpClass(cls):
        cls._backends = []
        if h.missing_binaries(["redis-server"]):
            return
        try:
            for i in range(5):
                cls._backends.append(h.Redis().start())
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for b in cls._backends:
            b.stop()
        cls._backends = []

    def check_table(self, fname, backends=None):
        header, rows = h.read_table(os.path.join(h.PLACEMENT_DIR, fname))
        self.assertEqual(len(rows), 2000)
        servers = [v for k, v in header if k == "server"]
        backends = backends or self._backends[:len(servers)]
        for b in backends:
            direct_flush(b)
        lines = []
        ident_of = {}
        for (k, v), b in zip([(k, v) for k, v in header if k == "server"], backends):
            addr, _, name = v.partition(" ")
            host, port, weight = addr.rsplit(":", 2)
            if name:
                lines.append("%s:%d:%s %s" % (host, b.port, weight, name))
                ident_of[b.port] = name
            else:
                self.assertEqual(int(port), b.port, "unnamed table needs the recorded port")
                lines.append(addr)
                ident_of[b.port] = host if int(port) == 11211 else "%s:%s" % (host, port)
        keys = {k: v for k, v in header if k != "server"}
        pool = h.Pool("p", lines, hash=keys.pop("hash"), distribution=keys.pop("distribution"),
                      redis=True, **keys)
        px = self.cachemux([pool], workers=2)
        pick = rows if fname in FULL else rows[:80] + rows[1000:1120] + rows[1120:1220]
        c = px.client(timeout=30)
        self.addCleanup(c.close)
        reps = c.pipeline(b"".join(cmd("SET", k, b"@" + k) for k, _ in pick), len(pick),
                          resp=True, timeout=60)
        self.assertEqual(reps, [OK] * len(pick))
        found = {}
        for b in backends:
            for k in direct_keys(b):
                found.setdefault(k, []).append(ident_of[b.port])
        wrong = ["%s: table %s, found on %s" % (k.hex(), ident, found.get(k)) for k, ident in pick
                 if found.get(k) != [ident]]
        self.assertEqual(wrong[:8], [], "%s: %d of %d keys misplaced" % (fname, len(wrong), len(pick)))
        self.assertEqual(len(found), len(pick), "stray keys on the backends")
        # and read back through the proxy in one MGET
        ks = [k for k, _ in pick[:300]]
        self.assertEqual(c.resp("MGET", *ks), array([bulk(b"@" + k) for k in ks]))


class Placement(PlacementBase):
    __doc__ = PlacementBase.__doc__

    def test_all_named_tables_covered(self):
        files = table_files()
        self.assertEqual(len(files), 34, files)
        named = [f for f in files if f not in UNNAMED]
        self.assertEqual(len(named), 31)
        for f in FULL:
            self.assertIn(f, named)
        missing = [f for f in named if not hasattr(self, "test_table_" + f[:-4])]
        self.assertEqual(missing, [])


def _make_table_test(fname):
    def test(self):
        self.check_table(fname)
    test.__name__ = "test_table_" + fname[:-4]
    test.__doc__ = "placement table %s" % fname
    return test


for _f in table_files():
    if _f not in UNNAMED:
        setattr(Placement, "test_table_" + _f[:-4], _make_table_test(_f))


class PlacementUnnamed(PlacementBase):
    """The three tables with unnamed servers need backends on the recorded
    ports (7301..7304, 11211): run only when those ports are free, skipped
    otherwise (their identities are host:port)."""

    @classmethod
    def setUpClass(cls):
        cls._backends = []

    def fixed_backends(self, ports):
        out = []
        for p in ports:
            if h.can_connect(p) or h.listen_inodes(p):
                self.skipTest("port %d is in use" % p)
            try:
                b = h.Redis(port=p).start(tries=1)
            except Exception as e:
                self.skipTest("cannot start redis-server on port %d: %s" % (p, e))
            self.addCleanup(b.stop)
            out.append(b)
        return out

    def test_unnamed4(self):
        self.check_table("ketama_fnv1a_64_unnamed4.tsv", self.fixed_backends([7301, 7302, 7303, 7304]))

    def test_ketama_port11211(self):
        self.check_table("ketama_fnv1a_64_port11211.tsv", self.fixed_backends([11211, 7301]))

    def test_modula_port11211(self):
        self.check_table("modula_fnv1a_64_port11211.tsv", self.fixed_backends([7301, 11211]))


# --------------------------------------------------------------------------
# workers

class Workers(RedisCase):
    """workers = 4 and 400 Redis clients: the load really spreads (doc/testing.md)."""
    workers = 4

    def start_proxy(self):
        return self.cachemux([self.pool()], workers=4, verbose=6)

    def test_400_clients_over_4_workers(self):
        clients = []
        try:
            for i in range(400):
                clients.append(h.Client(self.px.port(), timeout=10))
            for i, c in enumerate(clients):
                c.send(cmd("SET", "w:%d" % i, "v%d" % i))
            for i, c in enumerate(clients):
                self.assertEqual(c.read_resp(1), [OK], "client %d" % i)
            for i, c in enumerate(clients):
                c.send(cmd("MGET", "w:%d" % i, "w:%d" % ((i + 1) % 400)))
            for i, c in enumerate(clients):
                self.assertEqual(c.read_resp(1), [array([bulk("v%d" % i), bulk("v%d" % ((i + 1) % 400))])])
            found = accept_workers(self.px, [c.local_port for c in clients], "alpha")
            seen, workers = set(found), per_worker(found)
            self.assertEqual(len(seen), 400, "accept lines found for %d of 400 clients" % len(seen))
            busy = [w for w, n in workers.items() if n >= 40]
            self.assertGreaterEqual(len(busy), 3, "clients per worker: %s" % workers)
            self.assertLessEqual(len(workers), 4, workers)
            # each backend sees at least 3 conns from cachemux (one per worker
            # that used it; server_connections = 1)
            for b in self.backends:
                v = value(direct(b, "CLIENT", "LIST")).decode()
                conns = [ln for ln in v.splitlines() if "cmd=client|list" not in ln]
                self.assertGreaterEqual(len(conns), 3, "%s: %s" % (b.name, v))
                self.assertLessEqual(len(conns), 4, "%s: %s" % (b.name, v))
        finally:
            for c in clients:
                c.close()


# --------------------------------------------------------------------------
# side by side with nutcracker

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_redis.txt")

# Appendix A commands forwarded by both proxies; the corpus must use each.
APPENDIX_A = """
PING LOLWUT
PERSIST PTTL TTL TYPE DUMP DECR GET GETDEL INCR STRLEN HGETALL HKEYS HLEN HVALS LLEN SCARD SMEMBERS ZCARD
EXPIRE EXPIREAT PEXPIRE PEXPIREAT APPEND DECRBY GETBIT GETSET INCRBY INCRBYFLOAT SETNX HEXISTS HGET
HSTRLEN LINDEX RPOPLPUSH SISMEMBER ZRANK ZREVRANK ZSCORE
GETRANGE PSETEX SETBIT SETEX SETRANGE HINCRBY HINCRBYFLOAT HSETNX LRANGE LREM LSET LTRIM SMOVE ZCOUNT
ZLEXCOUNT ZINCRBY ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE
LINSERT LMOVE
SORT COPY BITCOUNT BITPOS BITFIELD GETEX SET HDEL HMGET HMSET HSCAN HSET HRANDFIELD LPUSH LPUSHX RPUSH
RPUSHX LPOP RPOP LPOS SADD SDIFF SDIFFSTORE SINTER SINTERSTORE SREM SUNION SUNIONSTORE SRANDMEMBER SSCAN
SPOP SMISMEMBER PFADD PFMERGE PFCOUNT ZADD ZDIFF ZDIFFSTORE ZINTER ZINTERSTORE ZMSCORE ZPOPMAX ZPOPMIN
ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZRANGESTORE ZREM ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE
ZSCAN ZUNION ZUNIONSTORE GEODIST GEOPOS GEOHASH GEOADD GEORADIUS GEORADIUSBYMEMBER GEOSEARCH
GEOSEARCHSTORE RESTORE
MGET DEL UNLINK TOUCH EXISTS MSET EVAL EVALSHA
""".split()


def unescape_arg(a):
    return b"" if a == b'""' else unescape(a)


def load_corpus(path=CORPUS):
    """[(depth, [(line number, [args])])] batches from corpus_redis.txt."""
    batches = []
    depth = 1
    cur = []

    def flush():
        if cur:
            batches.append((depth, list(cur)))
            del cur[:]

    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            line = raw.rstrip(b"\n")
            if not line or line.startswith(b"#"):
                continue
            if line.startswith(b"@depth "):
                flush()
                depth = int(line.split()[1])
                continue
            cur.append((i, [unescape_arg(a) for a in line.split(b" ")]))
            if len(cur) >= depth:
                flush()
    flush()
    return batches


class NutcrackerComparison(h.IntegrationTest):
    """The committed corpus gives byte-identical replies from cachemux and
    nutcracker, each in front of its own fresh redis-server pair."""

    def check_corpus(self, batches):
        ncmd = sum(len(b) for _, b in batches)
        self.assertGreaterEqual(ncmd, 300)
        depths = {}
        for d, b in batches:
            if len(b) == d:
                depths[d] = depths.get(d, 0) + 1
        for d in (1, 10, 100):
            self.assertGreaterEqual(depths.get(d, 0), 3, "full batches of depth %d: %s" % (d, depths))
        used = {a[0].upper().decode() for _, b in batches for _, a in b}
        self.assertEqual(sorted(set(APPENDIX_A) - used), [], "Appendix A commands missing from the corpus")

    def backend_pair(self):
        bs = [h.Redis(name="s1").start(), h.Redis(name="s2").start()]
        for b in bs:
            self.addCleanup(b.stop)
        return bs

    @staticmethod
    def corpus_pool(backends):
        return h.Pool("alpha", backends, redis=True, hash_tag="{}")

    def compare(self, batches, ref, ref_name, px, px_name):
        """Send every batch to ref and to px (one conn each, reopened after a
        close); fail listing the first differing replies. Returns the count of
        WRONGTYPE replies in pipelines at the start, middle and end."""
        conns = {}
        mism = []
        errors_at = {"start": 0, "middle": 0, "end": 0}

        def conn(kind):
            if conns.get(kind) is None:
                conns[kind] = (ref if kind == "ref" else px).client(timeout=20)
            return conns[kind]

        try:
            for depth, batch in batches:
                data = b"".join(cmd(*a) for _, a in batch)
                out = {}
                for kind in ("ref", "px"):
                    c = conn(kind)
                    try:
                        out[kind] = c.pipeline(data, len(batch), resp=True, timeout=20)
                    except (OSError, h.Closed, AssertionError) as e:
                        out[kind] = "%s: %s" % (type(e).__name__, e)
                        c.close()
                        conns[kind] = None
                self.assertIsInstance(out["ref"], list, "%s failed on corpus line %d: %s"
                                      % (ref_name, batch[0][0], out["ref"]))
                if len(batch) > 1:
                    for j, r in enumerate(out["ref"]):
                        if r.startswith(b"-WRONGTYPE"):
                            pos = "start" if j == 0 else "end" if j == len(batch) - 1 else "middle"
                            errors_at[pos] += 1
                if out["px"] != out["ref"]:
                    if isinstance(out["px"], str):
                        mism.append((batch[0][0], batch[0][1], out["ref"][0], out["px"]))
                        continue
                    for j, (x, y) in enumerate(zip(out["ref"], out["px"])):
                        if x != y:
                            mism.append((batch[j][0], batch[j][1], x, y))
                            break
        finally:
            for c in conns.values():
                if c is not None:
                    c.close()
        if mism:
            lines = []
            for lineno, args, want, got in mism[:6]:
                lines.append("corpus line %d: %r\n   %s: %r\n   %s: %r"
                             % (lineno, b" ".join(args)[:120], ref_name, want[:300], px_name,
                                str(got)[:300]))
            self.fail("%d of %d batches differ:\n%s" % (len(mism), len(batches), "\n".join(lines)))
        return errors_at

    @h.requires("nutcracker")
    def test_corpus_byte_identical(self):
        batches = load_corpus()
        self.check_corpus(batches)
        cm_b, nc_b = self.backend_pair(), self.backend_pair()
        cm = self.cachemux([self.corpus_pool(cm_b)], workers=2)
        nc = self.nutcracker([self.corpus_pool(nc_b)])
        errors_at = self.compare(batches, nc, "nutcracker", cm, "cachemux")
        self.assertTrue(all(errors_at.values()), "WRONGTYPE replies in pipelines: %s" % errors_at)
        # the corpus's split commands really crossed servers: m:0..m:9 on s1,
        # m:10..m:39 on s2 (checked on cachemux's backends)
        c = cm.client()
        self.addCleanup(c.close)
        mkeys = ["m:%d" % i for i in range(40)]
        self.assertEqual(c.resp("MSET", *[x for k in mkeys for x in (k, "1")]), OK)
        for b in cm_b:
            here = [k for k, e in zip(mkeys, direct_exists(b, mkeys)) if e]
            want = mkeys[:10] if b.name == "s1" else mkeys[10:]
            self.assertEqual(here, want, b.name)

    def test_corpus_with_smallest_mbufs(self):
        """The corpus through cachemux with mbuf_size = 512 (every request and
        reply spread over many buffers) gives the same bytes as through
        cachemux with the default 16384, each on its own backends."""
        batches = load_corpus()
        a_b, b_b = self.backend_pair(), self.backend_pair()
        ref = self.cachemux([self.corpus_pool(a_b)], workers=2)
        small = self.cachemux([self.corpus_pool(b_b)], workers=1, globals_={"mbuf_size": 512})
        self.compare(batches, ref, "cachemux (mbuf 16384)", small, "cachemux (mbuf 512)")


if __name__ == "__main__":
    h.main(require=("redis-server",))
