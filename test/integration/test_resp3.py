#!/usr/bin/python3
"""RESP3 through the proxy (doc/protocols.md, "RESP3"): HELLO 3 switches a
client connection; its requests go to server conns opened with HELLO 3, and
the servers' RESP3 replies reach it unchanged.

- Bytes: for a corpus of forwarded commands that covers the RESP3 types
  redis-server 7 sends (maps, sets, doubles, nulls, booleans, nested arrays,
  errors), a RESP3 client through cachemux gets exactly the bytes a RESP3
  connection to redis-server gets directly.
- Splits and fan-outs reassemble from RESP3 parts (MGET holes are "_"), and
  the replies the proxy makes itself have Redis 7's RESP3 shapes (HELLO a
  map, INFO a verbatim string, a missing name "_").
- Order: in a pipeline SET k v; HELLO 3; GET k, the GET (on another server
  conn) sees the SET, both ways and with large values.
- Mixed: RESP2 and RESP3 clients on one worker and the same keys each get
  their own protocol; RESP3 server conns exist only once a RESP3 client needs
  them, per server_connections, counted in /metrics with a proto label and
  summed in the stats JSON.
- Handshake: with redis_auth and redis_db, a RESP3 conn is opened with AUTH,
  HELLO 3, SELECT; after a backend restart it is opened again.
- Pushes: a push message a backend sends on a RESP3 conn reaches no client.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_resp3.py [NAME-SUBSTRING...]
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import helpers  # noqa: E402
import scripted as sc  # noqa: E402
from helpers import bulk  # noqa: E402

try:
    import redis as pyredis
except ImportError:  # pragma: no cover
    pyredis = None

NULL = b"_\r\n"
OK = b"+OK\r\n"


def hello_fields(reply):
    """HELLO's map (or RESP2 flat array) as a dict of raw element bytes."""
    head = reply[:reply.find(b"\r\n") + 2]
    body = reply[len(head):]
    elems = []
    pos = 0
    while pos < len(body):
        e = h.resp_reply_end(body, pos)
        elems.append(body[pos:e])
        pos = e
    keys = [e.split(b"\r\n")[1] for e in elems[0::2]]
    return head, dict(zip(keys, elems[1::2]))


def resp3_client(port, timeout=5):
    c = h.Client(port, timeout=timeout)
    hello = c.resp("HELLO", "3")
    assert hello.startswith(b"%7\r\n"), hello
    return c


# Forwarded commands and the RESP3 types their replies carry. The data is
# made by SETUP, through the proxy, before any of them runs; each is sent
# once through the proxy and once directly, so they read, or write to keys
# of their own.
SETUP = [
    ("HSET", "h", "f1", "v1", "f2", "v2", "n", "7"),
    ("SADD", "s1", "a", "b", "c"),
    ("SADD", "s2", "b", "c", "d"),
    ("ZADD", "z", "1.5", "m1", "2.25", "m2", "-3", "m3"),
    ("RPUSH", "l", "x", "y", "z"),
    ("XADD", "st", "1-1", "f", "v"),
    ("XADD", "st", "2-1", "f", "w", "g", "u"),
    ("SET", "str", "hello"),
]
CORPUS = [
    # maps
    ("HGETALL", "h"), ("HGETALL", "nohash"), ("XINFO", "STREAM", "st"),
    # sets
    ("SMEMBERS", "s1"), ("SINTER", "s1", "s2"), ("SMEMBERS", "noset"),
    # doubles
    ("ZSCORE", "z", "m1"), ("ZSCORE", "z", "m3"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
    ("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"), ("ZPOPMIN", "nozset"),
    ("HINCRBYFLOAT", "h", "n", "0"),
    # nulls
    ("GET", "nokey"), ("HGET", "h", "nofield"), ("HGET", "nohash", "f"), ("LPOP", "nolist"),
    ("ZSCORE", "z", "nomember"), ("ZRANK", "z", "nomember"), ("LINDEX", "l", "99"),
    ("HMGET", "h", "f1", "nofield", "f2"), ("SRANDMEMBER", "noset"),
    # booleans, and a double, from scripts (redis.setresp(3))
    ("EVAL", "redis.setresp(3); return true", "0"),
    ("EVAL", "redis.setresp(3); return false", "0"),
    ("EVAL", "redis.setresp(3); return redis.call('ZSCORE', KEYS[1], 'm2')", "1", "z"),
    ("EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"),
    ("EVAL", "redis.setresp(3); return redis.call('SMEMBERS', KEYS[1])", "1", "s1"),
    ("EVAL", "return redis.call('GET', KEYS[1])", "1", "nokey"),
    # nested arrays
    ("XRANGE", "st", "-", "+"), ("XREVRANGE", "st", "+", "-", "COUNT", "1"),
    ("XREAD", "COUNT", "2", "STREAMS", "st", "0"), ("XREAD", "STREAMS", "st", "$"),
    ("LRANGE", "l", "0", "-1"),
    # the rest: strings, integers, errors
    ("GET", "str"), ("STRLEN", "str"), ("TTL", "str"), ("TYPE", "z"), ("INCR", "str"),
    ("HGET", "z", "f"), ("ZADD", "z", "notanumber", "m"), ("EVAL", "return redis.error_reply('E1 boom')", "0"),
]
# Writes whose replies carry doubles or counts: run once through the proxy on
# key K+":p" and once directly on K+":d", both made equal first.
WRITES = [
    (("ZADD", "{k}", "1", "m"), ("ZINCRBY", "{k}", "2.5", "m")),
    (("HSET", "{k}", "f", "1.5"), ("HINCRBYFLOAT", "{k}", "f", "0.25")),
    (("SET", "{k}", "10.5"), ("INCRBYFLOAT", "{k}", "1.25")),
    (("SADD", "{k}", "a", "b"), ("SPOP", "{k}", "0")),
]


class Resp3(h.IntegrationTest):
    """A pool of one redis-server (bytes compared) and one of three (splits)."""

    def setUp(self):
        self.one = self.redis(name="one")
        self.three = [self.redis(name="t%d" % (i + 1)) for i in range(3)]
        self.stats_port, self.mport = h.free_ports(2)
        self.px = self.cachemux([h.Pool("one", [self.one], redis=True),
                                 h.Pool("three", self.three, redis=True)],
                                workers=1, stats_port=self.stats_port,
                                globals_={"metrics_listen": "%s:%d" % (h.HOST, self.mport)})

    def direct3(self, backend):
        c = resp3_client(backend.port)
        self.addCleanup(c.close)
        return c

    def proxied3(self, pool):
        c = resp3_client(self.px.port(pool))
        self.addCleanup(c.close)
        return c

    def test_forwarded_replies_are_the_servers_bytes(self):
        p = self.proxied3("one")
        d = self.direct3(self.one)
        for cmd in SETUP:
            self.assertNotEqual(p.resp(*cmd)[:1], b"-", cmd)
        types = set()
        for cmd in CORPUS:
            got, want = p.resp(*cmd), d.resp(*cmd)
            self.assertEqual(got, want, "%r: through cachemux %r, direct %r" % (cmd, got, want))
            types.add(want[:1])
            if want[:1] in (b"*", b"%", b"~"):
                types.update(e[:1] for e in want.split(b"\r\n")[1:] if e[:1] in b"_#,%~")
        # the corpus covers every RESP3 type redis 7 sends these commands
        for t in (b"%", b"~", b",", b"_", b"#", b"*", b"$", b":", b"-"):
            self.assertIn(t, types, "no reply of type %r in the corpus" % t)
        for i, (setup, cmd) in enumerate(WRITES):
            kp, kd = "w%d:p" % i, "w%d:d" % i
            fill = lambda k, c: tuple(k if a == "{k}" else a for a in c)  # noqa: E731
            self.assertEqual(p.resp(*fill(kp, setup)), d.resp(*fill(kd, setup)))
            self.assertEqual(p.resp(*fill(kp, cmd)), d.resp(*fill(kd, cmd)), cmd)
        # a pipeline of 1,000 gets the same bytes, in order
        batch = CORPUS[:20] * 50
        data = b"".join(h.resp_command(*c) for c in batch)
        self.assertEqual(p.pipeline(data, len(batch), resp=True),
                         d.pipeline(data, len(batch), resp=True))

    def test_splits_and_fanouts_in_resp3(self):
        p = self.proxied3("three")
        keys = helpers.spread_keys("sp", 30)
        self.assertEqual(p.resp("MSET", *[x for k in keys for x in (k, "v-" + k)]), OK)
        per = [self.direct3(b).resp("DBSIZE") for b in self.three]
        self.assertTrue(all(n != b":0\r\n" for n in per), "keys not on every server: %r" % per)
        ask = []
        for i, k in enumerate(keys):
            ask += [k, "miss%d" % i]
        want = b"*%d\r\n" % len(ask) + b"".join(
            bulk("v-" + k) + NULL for k in keys)
        self.assertEqual(p.resp("MGET", *ask), want)
        self.assertEqual(p.resp("EXISTS", *ask), b":%d\r\n" % len(keys))
        self.assertEqual(p.resp("DBSIZE"), b":%d\r\n" % len(keys))
        got = p.resp("KEYS", "sp*")
        self.assertTrue(got.startswith(b"*%d\r\n" % len(keys)), got[:40])
        seen, cursor = set(), b"0"
        while True:
            r = p.resp("SCAN", cursor, "COUNT", "100")
            parts = r.split(b"\r\n")
            self.assertEqual(parts[0], b"*2")
            cursor = parts[2]
            seen.update(parts[i] for i in range(5, len(parts) - 1, 2))
            if cursor == b"0":
                break
        self.assertEqual(seen, set(k.encode() for k in keys))
        sha = p.resp("SCRIPT", "LOAD", "return 1")
        self.assertEqual(p.resp("SCRIPT", "EXISTS", sha.split(b"\r\n")[1], "nope"),
                         b"*2\r\n:1\r\n:0\r\n")
        self.assertEqual(p.resp("DEL", *ask), b":%d\r\n" % len(keys))
        self.assertEqual(p.resp("RANDOMKEY"), NULL)   # every server empty
        self.assertEqual(p.resp("MGET", "a", "b", "c"), b"*3\r\n" + NULL * 3)

    def test_local_replies_have_redis7_resp3_shapes(self):
        p = self.proxied3("three")
        d = self.direct3(self.three[0])
        ph, pf = hello_fields(p.resp("HELLO", "3"))
        dh, df = hello_fields(d.resp("HELLO", "3"))
        self.assertEqual(ph, dh)
        self.assertEqual(sorted(pf), sorted(df))
        for k in (b"server", b"version", b"proto", b"mode", b"role", b"modules"):
            self.assertEqual(pf[k], df[k], k)
        self.assertEqual(pf[b"id"], p.resp("CLIENT", "ID"))
        # HELLO with no version: the protocol in force
        self.assertEqual(hello_fields(p.resp("HELLO"))[1][b"proto"], b":3\r\n")
        self.assertEqual(p.resp("CLIENT", "GETNAME"), d.resp("CLIENT", "GETNAME"))
        self.assertEqual(p.resp("CLIENT", "GETNAME"), NULL)
        self.assertEqual(p.resp("PING"), b"+PONG\r\n")
        self.assertEqual(p.resp("PING", "x"), bulk("x"))
        self.assertEqual(p.resp("ECHO", "y"), bulk("y"))
        for sections in ((), ("server",), ("clients",), ("keyspace",)):
            got = p.resp("INFO", *sections)
            want = d.resp("INFO", *sections)
            self.assertEqual(got[:1], b"=", (sections, got[:60]))
            self.assertEqual(want[:1], b"=")
            n = int(got[1:got.find(b"\r\n")])
            body = got[got.find(b"\r\n") + 2:-2]
            self.assertEqual(len(body), n)
            self.assertTrue(body.startswith(b"txt:"), body[:20])
        self.assertIn(b"redis_version:", p.resp("INFO", "server"))
        self.assertEqual(p.resp("NOSUCHCOMMAND"), b"-ERR unsupported command 'NOSUCHCOMMAND'\r\n")
        self.assertEqual(p.resp("CLIENT", "TRACKING", "on"),
                         b"-ERR unsupported command 'client'\r\n")
        self.assertEqual(p.resp("SUBSCRIBE", "ch")[:5], b"-ERR ")
        # a blocked read would hold the server conn other clients share
        self.assertEqual(p.resp("XREAD", "BLOCK", "0", "STREAMS", "st", "$"),
                         b"-ERR unsupported command 'xread' with BLOCK\r\n")
        self.assertEqual(p.resp("CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type",
                                "internal-ip"),
                         d.resp("CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type",
                                "internal-ip"))
        # and back: HELLO 2 switches the conn to RESP2
        self.assertEqual(hello_fields(p.resp("HELLO", "2"))[0], b"*14\r\n")
        self.assertEqual(p.resp("GET", "nokey"), b"$-1\r\n")
        self.assertEqual(p.resp("CLIENT", "GETNAME"), b"$-1\r\n")
        self.assertEqual(p.resp("INFO", "clients")[:1], b"$")

    def test_hello_waits_for_earlier_requests(self):
        """SET k v; HELLO 3; GET k in one write: the GET goes to another
        server conn, and still sees the SET; likewise back to RESP2."""
        c = h.Client(self.px.port("three"), timeout=30)
        self.addCleanup(c.close)
        big = b"x" * (1 << 20)
        for rnd in range(20):
            k = "order%d" % rnd
            v = big + b"%d" % rnd
            to3 = rnd % 2 == 0
            data = (h.resp_command("SET", k, v) + h.resp_command("HELLO", "3" if to3 else "2") +
                    h.resp_command("GET", k) + h.resp_command("GET", "missing%d" % rnd))
            reps = c.pipeline(data, 4, resp=True)
            self.assertEqual(reps[0], OK)
            self.assertEqual(reps[1][:1], b"%" if to3 else b"*")
            self.assertEqual(reps[2], bulk(v), "round %d: the GET overtook the SET" % rnd)
            self.assertEqual(reps[3], NULL if to3 else b"$-1\r\n")
        # the same, the client closing its side at once: all four answered
        d = h.Client(self.px.port("three"), timeout=30)
        self.addCleanup(d.close)
        d.send(h.resp_command("SET", "eofk", big) + h.resp_command("HELLO", "3") +
               h.resp_command("GET", "eofk") + h.resp_command("GET", "nokey"))
        d.shutdown_write()
        reps = d.read_resp(4)
        self.assertEqual((reps[0], reps[1][:1], reps[2], reps[3]), (OK, b"%", bulk(big), NULL))
        self.assertTrue(d.is_closed())

    def test_mixed_clients_and_conn_sets(self):
        # only RESP2 clients so far: no RESP3 server conn anywhere
        c2 = h.Client(self.px.port("three"))
        self.addCleanup(c2.close)
        self.assertEqual(c2.resp("MGET", *helpers.spread_keys("mx", 30))[:4], b"*30\r")
        for i in range(10):
            self.assertEqual(c2.resp("SET", "mk%d" % i, "v%d" % i), OK)
        fams = helpers.scrape(self.mport)[1]
        for b in self.three:
            ident = "t%d" % (self.three.index(b) + 1)
            self.assertEqual(helpers.metric(fams, "cachemux_server_connections", pool="three",
                                            server=ident, proto="resp3"), 0)
            self.assertNotIn(b"resp=3", self.resp3_conns(b))
        c3 = [resp3_client(self.px.port("three")) for _ in range(3)]
        for c in c3:
            self.addCleanup(c.close)
        # interleaved on the same keys, one worker: each its own protocol
        for i in range(10):
            k = "mk%d" % i
            self.assertEqual(c2.resp("ZADD", "z" + k, "0.5", "m"), b":1\r\n")
            self.assertEqual(c3[i % 3].resp("ZSCORE", "z" + k, "m"), b",0.5\r\n")
            self.assertEqual(c2.resp("ZSCORE", "z" + k, "m"), bulk("0.5"))
            self.assertEqual(c3[i % 3].resp("GET", k), bulk("v%d" % i))
            self.assertEqual(c3[i % 3].resp("GET", "no" + k), NULL)
            self.assertEqual(c2.resp("GET", "no" + k), b"$-1\r\n")
            self.assertEqual(c3[i % 3].resp("HGETALL", "no" + k), b"%0\r\n")
            self.assertEqual(c2.resp("HGETALL", "no" + k), b"*0\r\n")
        data = b"".join(h.resp_command("MGET", "mk%d" % i, "nokey") for i in range(10))
        self.assertEqual(c2.pipeline(data, 10, resp=True),
                         [b"*2\r\n" + bulk("v%d" % i) + b"$-1\r\n" for i in range(10)])
        self.assertEqual(c3[0].pipeline(data, 10, resp=True),
                         [b"*2\r\n" + bulk("v%d" % i) + NULL for i in range(10)])
        # both clients on every server: one conn of each set per server
        # (workers 1, server_connections 1)
        many = helpers.spread_keys("mx", 30)
        for c in (c2, c3[0]):
            self.assertEqual(c.resp("MGET", *many)[:4], b"*30\r")
        js = helpers.stats_json(self.stats_port)
        fams = helpers.scrape(self.mport)[1]
        for i, b in enumerate(self.three):
            ident = "t%d" % (i + 1)
            n2 = helpers.metric(fams, "cachemux_server_connections", pool="three",
                                server=ident, proto="resp2")
            n3 = helpers.metric(fams, "cachemux_server_connections", pool="three",
                                server=ident, proto="resp3")
            self.assertEqual((n2, n3), (1, 1), ident)
            self.assertEqual(js["three"][ident]["server_connections"], 2)
            self.assertEqual(self.resp3_conns(b).count(b"resp=3"), 1)

    def resp3_conns(self, backend):
        with backend.client() as d:
            return d.resp("CLIENT", "LIST")


class Resp3Handshake(h.IntegrationTest):
    """redis_auth and redis_db on RESP3 conns; a backend restart; pushes."""

    def test_auth_hello_select_and_reconnect(self):
        b = self.redis(name="a1", password="sekret")
        px = self.cachemux([h.Pool("rd", [b], redis=True, redis_auth="sekret", redis_db=3,
                                   server_retry_timeout=100)], workers=1)
        c = h.Client(px.port("rd"))
        self.addCleanup(c.close)
        # before AUTH: Redis 7's NOAUTH for HELLO; then HELLO 3 AUTH authenticates and switches
        self.assertEqual(c.resp("HELLO", "3")[:8], b"-NOAUTH ")
        self.assertEqual(c.resp("GET", "k"), b"-NOAUTH Authentication required.\r\n")
        self.assertEqual(c.resp("HELLO", "3", "AUTH", "default", "wrong")[:11], b"-WRONGPASS ")
        self.assertEqual(c.resp("HELLO", "3", "AUTH", "default", "sekret", "SETNAME", "app")[:4],
                         b"%7\r\n")
        self.assertEqual(c.resp("CLIENT", "GETNAME"), bulk("app"))
        self.assertEqual(c.resp("SET", "k", "v"), OK)
        self.assertEqual(c.resp("GET", "nokey"), NULL)
        with b.client() as d:
            self.assertEqual(d.resp("AUTH", "sekret"), OK)
            self.assertEqual(d.resp("SELECT", "3"), OK)
            self.assertEqual(d.resp("GET", "k"), bulk("v"))
            lst = d.resp("CLIENT", "LIST")
            self.assertIn(b"db=3", lst)
            self.assertEqual(lst.count(b"resp=3"), 1)
        b.restart()
        deadline = time.time() + h.scaled(10)
        while True:
            r = c.resp("GET", "nokey2")
            if r == NULL or time.time() > deadline:
                break
            self.assertEqual(r[:1], b"-", r)    # the documented error while it is down
            time.sleep(0.1)
        self.assertEqual(r, NULL)
        self.assertEqual(c.resp("HGETALL", "nohash"), b"%0\r\n")

    def test_a_push_reaches_no_client(self):
        b = sc.Scripted("redis", name="s1").start()
        self.addCleanup(b.stop)
        px = self.cachemux([h.Pool("rd", [b], redis=True)], workers=1)
        c = resp3_client(px.port("rd"))
        self.addCleanup(c.close)
        self.assertEqual(c.resp("SET", "k", "v"), OK)
        for key in ("push", "push:50"):
            self.assertEqual(c.resp("GET", key), NULL)     # the push before it is dropped
            self.assertEqual(c.resp("GET", "k"), bulk("v"))
        # pipelined behind others: each still gets its own reply
        data = b"".join(h.resp_command("GET", k) for k in ("k", "push", "k", "push", "nokey"))
        self.assertEqual(c.pipeline(data, 5, resp=True),
                         [bulk("v"), NULL, bulk("v"), NULL, NULL])
        self.assertEqual(b.open_connections(), 1)   # the conn was not failed
        self.assertIn([b"HELLO", b"3"], [w[:2] for w in b.commands])

    @h.requires("redis-server")
    def test_python_redis(self):
        self.need(pyredis is not None, "python3-redis is not installed")
        b = self.redis(name="py")
        px = self.cachemux([h.Pool("rd", [b], redis=True)], workers=1)
        major = int(pyredis.__version__.split(".")[0])
        kw = {"protocol": 3} if major >= 5 else {}   # RESP3 from redis-py 5.0
        r = pyredis.Redis(host=h.HOST, port=px.port("rd"), socket_timeout=h.scaled(20), **kw)
        self.addCleanup(r.close)
        self.assertTrue(r.set("k", "v"))
        self.assertEqual(r.get("k"), b"v")
        self.assertIsNone(r.get("nokey"))
        r.hset("h", mapping={"a": "1", "b": "2"})
        self.assertEqual(r.hgetall("h"), {b"a": b"1", b"b": b"2"})
        r.zadd("z", {"m": 1.5})
        self.assertEqual(r.zscore("z", "m"), 1.5)
        self.assertEqual(r.smembers("nokey"), set())


if __name__ == "__main__":
    h.main(require=("redis-server",))
