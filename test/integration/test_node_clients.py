#!/usr/bin/python3
"""Node.js clients through the proxy (doc/protocols.md 3.1 to 3.4): node-redis
(`redis` 6.4.0) and ioredis 6.1.0 from the npm registry, pinned and installed
by test/run-tests.sh into build/node (test/deps.sh, cachemux_node_clients).

Each client runs twice: with its default options (RESP3: HELLO 3, then
CLIENT SETINFO lib-name/lib-ver, node-redis's CLIENT MAINT_NOTIFICATIONS,
ioredis's ready check INFO) and with RESP2 forced (node-redis `RESP: 2`,
ioredis `protocol: 2`). Each time it runs SET, GET, MGET across servers,
HGETALL (a RESP3 map), SMEMBERS (a set), ZSCORE (a double), SCRIPT LOAD and
EVALSHA, a pipeline of 1,000 GETs, a SCAN iteration over 10,000 keys on 3
servers that must return each key, and, after every backend is restarted,
reads again through the same connection. A proxy that refuses any command
these clients send at connect fails here before the first SET.

Needs Node.js 20 or later and the modules: skipped (exit 77) without them,
failed instead under CACHEMUX_REQUIRE_ALL=1, as the test script runs it.
CACHEMUX_NODE_MODULES names another node_modules directory.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_node_clients.py [NAME-SUBSTRING...]
"""

import hashlib
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

NODE_MODULES = os.environ.get("CACHEMUX_NODE_MODULES") or os.path.join(
    h.TOP_SRCDIR, "build", "node", "node_modules")
NKEYS = 10000

# Common to both clients: the checks, with the client's calls passed in.
# argv: host port prefix nkeys resp ("3": the client's defaults, "2": RESP2
# forced). After the checks the script prints RESTART and waits for a line
# on stdin (the test restarts every backend meanwhile), then reads again
# until the proxy answers from the new backends.
SCRIPT_COMMON = r"""
const [host, port, prefix, nkeys, resp] = [process.argv[2], +process.argv[3], process.argv[4],
                                           +process.argv[5], process.argv[6]];
const out = {};
const readline = require('readline');
function waitLine() {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.once('line', () => { rl.close(); resolve(); });
  });
}
async function checks(c) {
  out.set = await c.set('greeting', 'hello');
  out.get = await c.get('greeting');
  out.miss = await c.get('no-such-key');
  const some = [];
  for (let i = 0; i < 20; i++) some.push(prefix + i);
  out.mget = await c.mget(some.concat(['no-such-key']));
  await c.hset('h:' + prefix, { a: '1', b: '2' });
  out.hgetall = await c.hgetall('h:' + prefix);
  await c.sadd('s:' + prefix, ['x', 'y']);
  out.smembers = (await c.smembers('s:' + prefix)).map(String).sort();
  await c.zadd('z:' + prefix, 1.5, 'm');
  out.zscore = await c.zscore('z:' + prefix, 'm');
  out.sha = await c.scriptLoad("return redis.call('GET', KEYS[1])");
  out.evalsha = [];
  for (let i = 0; i < 20; i++) out.evalsha.push(await c.evalsha(out.sha, prefix + i));
  const many = [];
  for (let i = 0; i < 1000; i++) many.push(prefix + (i % nkeys));
  out.pipeline = await c.pipelineGet(many);
  out.scanned = await c.scanAll();
  out.dbsize = await c.dbsize();
  console.log('RESTART');
  await waitLine();
  out.after = null;
  for (let i = 0; i < 100 && out.after === null; i++) {
    try { out.after = await c.get(prefix + '0'); if (out.after === null) out.after = 'nil'; }
    catch (e) { await new Promise((r) => setTimeout(r, 100)); }
  }
  out.afterMiss = await c.get('no-such-key');
}
"""

NODE_REDIS = SCRIPT_COMMON + r"""
const { createClient } = require('redis');
(async () => {
  const opts = { socket: { host, port, reconnectStrategy: false } };
  if (resp === '2') opts.RESP = 2;
  const client = createClient(opts);
  client.on('error', (e) => { console.error('client error', e); process.exit(3); });
  await client.connect();
  await checks({
    set: (k, v) => client.set(k, v),
    get: (k) => client.get(k),
    mget: (ks) => client.mGet(ks),
    hset: (k, o) => client.hSet(k, o),
    hgetall: async (k) => Object.assign({}, await client.hGetAll(k)),
    sadd: (k, m) => client.sAdd(k, m),
    smembers: async (k) => Array.from(await client.sMembers(k)),
    zadd: (k, s, m) => client.zAdd(k, { score: s, value: m }),
    zscore: async (k, m) => Number(await client.zScore(k, m)),
    scriptLoad: (s) => client.scriptLoad(s),
    evalsha: (sha, k) => client.evalSha(sha, { keys: [k] }),
    pipelineGet: (ks) => Promise.all(ks.map((k) => client.get(k))),
    dbsize: () => client.dbSize(),
    scanAll: async () => {
      const keys = [];
      for await (const batch of client.scanIterator({ COUNT: 1000 })) {
        if (Array.isArray(batch)) keys.push(...batch); else keys.push(batch);
      }
      return keys;
    },
  });
  await client.close();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error('failed', e); process.exit(2); });
"""

IOREDIS = SCRIPT_COMMON + r"""
const Redis = require('ioredis');
(async () => {
  const opts = { host, port, enableReadyCheck: true, maxRetriesPerRequest: 0,
                 retryStrategy: () => null };
  if (resp === '2') opts.protocol = 2;
  const r = new Redis(opts);
  r.on('error', (e) => { console.error('client error', e); process.exit(3); });
  await new Promise((resolve, reject) => { r.once('ready', resolve); r.once('end', reject); });
  await checks({
    set: (k, v) => r.set(k, v),
    get: (k) => r.get(k),
    mget: (ks) => r.mget(ks),
    hset: (k, o) => r.hset(k, o),
    hgetall: (k) => r.hgetall(k),
    sadd: (k, m) => r.sadd(k, m),
    smembers: (k) => r.smembers(k),
    zadd: (k, s, m) => r.zadd(k, s, m),
    zscore: async (k, m) => Number(await r.zscore(k, m)),
    scriptLoad: (s) => r.script('LOAD', s),
    evalsha: (sha, k) => r.evalsha(sha, 1, k),
    pipelineGet: async (ks) => {
      const p = r.pipeline();
      ks.forEach((k) => p.get(k));
      return (await p.exec()).map(([err, v]) => (err ? 'ERR ' + err.message : v));
    },
    dbsize: () => r.dbsize(),
    scanAll: () => new Promise((resolve, reject) => {
      const keys = [];
      const s = r.scanStream({ count: 1000 });
      s.on('data', (batch) => keys.push(...batch));
      s.on('end', () => resolve(keys));
      s.on('error', reject);
    }),
  });
  await r.quit();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error('failed', e); process.exit(2); });
"""


def node_major(node):
    try:
        out = subprocess.run([node, "--version"], stdout=subprocess.PIPE, timeout=30)
    except OSError:
        return 0
    m = re.match(rb"v(\d+)\.", out.stdout)
    return int(m.group(1)) if m else 0


def spread(prefix, n):
    return ["%s%d" % (prefix, i) for i in range(n)]


class NodeClients(h.IntegrationTest):
    """node-redis and ioredis against a pool of three redis-server."""

    def setUp(self):
        self.node = h.find_binary("node", "NODE")
        self.need(self.node is not None and node_major(self.node) >= 20,
                  "Node.js 20 or later is not installed")
        self.need(os.path.isdir(os.path.join(NODE_MODULES, "redis")) and
                  os.path.isdir(os.path.join(NODE_MODULES, "ioredis")),
                  "npm modules redis and ioredis not in %s (test/run-tests.sh installs them)"
                  % NODE_MODULES)
        self.backends = [self.redis(name="s%d" % (i + 1)) for i in range(3)]
        self.px = self.cachemux([h.Pool("rd", self.backends, redis=True)], workers=2)

    def run_client(self, name, source, prefix, resp):
        keys = spread(prefix, NKEYS)
        c = self.px.client(timeout=30)
        self.addCleanup(c.close)
        reps = c.pipeline(b"".join(h.resp_command("SET", k, "v-" + k) for k in keys), len(keys),
                          resp=True)
        self.assertEqual(reps, [b"+OK\r\n"] * len(keys))
        per = []
        for b in self.backends:
            with b.client(timeout=20) as d:
                per.append(int(d.resp("DBSIZE")[1:-2]))
        self.assertTrue(all(n > 0 for n in per), "keys not on every server: %r" % per)
        path = h.tmp_path("%s-%s.js" % (name, resp))
        with open(path, "w") as f:
            f.write(source)
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        proc = subprocess.Popen([self.node, path, h.HOST, str(self.px.port("rd")), prefix,
                                 str(NKEYS), resp], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        h.register_pid(proc.pid)
        self.addCleanup(h.kill_proc, proc)
        line = proc.stdout.readline()
        if line.strip() == b"RESTART":
            # the backends come back empty: the client reads through the
            # proxy's new server conns (a RESP3 set opens with HELLO 3 again)
            for b in self.backends:
                b.restart()
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        try:
            rest, err = proc.communicate(timeout=h.scaled(120))
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, err = proc.communicate()
        self.assertEqual(proc.returncode, 0, "%s: %s %s" % (name, (line + rest)[-2000:],
                                                            err[-4000:]))
        got = json.loads(rest.decode().strip().splitlines()[-1])
        self.assertEqual(got["set"], "OK")
        self.assertEqual(got["get"], "hello")
        self.assertIsNone(got["miss"])
        self.assertEqual(got["mget"], ["v-%s%d" % (prefix, i) for i in range(20)] + [None])
        self.assertEqual(got["hgetall"], {"a": "1", "b": "2"})
        self.assertEqual(got["smembers"], ["x", "y"])
        self.assertEqual(got["zscore"], 1.5)
        self.assertEqual(got["sha"], hashlib.sha1(
            b"return redis.call('GET', KEYS[1])").hexdigest())
        self.assertEqual(got["evalsha"], ["v-%s%d" % (prefix, i) for i in range(20)])
        self.assertEqual(got["pipeline"], ["v-%s%d" % (prefix, i % NKEYS) for i in range(1000)])
        extra = {"greeting", "h:" + prefix, "s:" + prefix, "z:" + prefix}
        self.assertEqual(set(got["scanned"]), set(keys) | extra)
        self.assertEqual(got["dbsize"], NKEYS + len(extra))
        self.assertEqual(got["after"], "nil")    # answered by the new, empty backend
        self.assertIsNone(got["afterMiss"])
        hellos = b"".join(b.client().resp("CLIENT", "LIST") for b in self.backends)
        self.assertEqual(hellos.count(b"resp=3") > 0, resp == "3", hellos)

    def test_node_redis_defaults(self):
        self.run_client("node-redis", NODE_REDIS, "nr", "3")

    def test_ioredis_defaults(self):
        self.run_client("ioredis", IOREDIS, "io", "3")

    def test_node_redis_resp2(self):
        self.run_client("node-redis", NODE_REDIS, "nr", "2")

    def test_ioredis_resp2(self):
        self.run_client("ioredis", IOREDIS, "io", "2")


if __name__ == "__main__":
    h.main(require=("redis-server",))
