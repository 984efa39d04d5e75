#!/usr/bin/python3
"""Node.js clients through the proxy (doc/protocols.md 3.1 to 3.4): node-redis
(`redis` 6.4.0) and ioredis 6.1.0 from the npm registry, pinned and installed
by test/run-tests.sh into build/node (test/deps.sh, cachemux_node_clients).

Each client opens its connection as it does against Redis (CLIENT SETINFO
lib-name/lib-ver; ioredis's ready check sends INFO and reads it), with RESP2
forced (node-redis `RESP: 2`, ioredis `protocol: 2`; their RESP3 default
needs HELLO 3), then runs SET, GET, MGET, SCRIPT LOAD and EVALSHA on keys of
every server, and a SCAN iteration over 10,000 keys on 3 servers that must
return each key. A proxy that refuses any command these clients send at
connect fails here before the first SET.

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
SCRIPT_COMMON = r"""
const [host, port, prefix, nkeys] = [process.argv[2], +process.argv[3], process.argv[4], +process.argv[5]];
const out = {};
async function checks(c) {
  out.set = await c.set('greeting', 'hello');
  out.get = await c.get('greeting');
  const some = [];
  for (let i = 0; i < 20; i++) some.push(prefix + i);
  out.mget = await c.mget(some);
  out.sha = await c.scriptLoad("return redis.call('GET', KEYS[1])");
  out.evalsha = [];
  for (let i = 0; i < 20; i++) out.evalsha.push(await c.evalsha(out.sha, prefix + i));
  out.scanned = await c.scanAll();
  out.dbsize = await c.dbsize();
}
"""

NODE_REDIS = SCRIPT_COMMON + r"""
const { createClient } = require('redis');
(async () => {
  const client = createClient({ socket: { host, port, reconnectStrategy: false }, RESP: 2 });
  client.on('error', (e) => { console.error('client error', e); process.exit(3); });
  await client.connect();
  await checks({
    set: (k, v) => client.set(k, v),
    get: (k) => client.get(k),
    mget: (ks) => client.mGet(ks),
    scriptLoad: (s) => client.scriptLoad(s),
    evalsha: (sha, k) => client.evalSha(sha, { keys: [k] }),
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
  const r = new Redis({ host, port, protocol: 2, enableReadyCheck: true,
                        maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', (e) => { console.error('client error', e); process.exit(3); });
  await new Promise((resolve, reject) => { r.once('ready', resolve); r.once('end', reject); });
  await checks({
    set: (k, v) => r.set(k, v),
    get: (k) => r.get(k),
    mget: (ks) => r.mget(ks),
    scriptLoad: (s) => r.script('LOAD', s),
    evalsha: (sha, k) => r.evalsha(sha, 1, k),
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

    def run_client(self, name, source, prefix):
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
        path = h.tmp_path(name + ".js")
        with open(path, "w") as f:
            f.write(source)
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        out = subprocess.run([self.node, path, h.HOST, str(self.px.port("rd")), prefix,
                              str(NKEYS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env, timeout=h.scaled(120))
        self.assertEqual(out.returncode, 0, "%s: %s %s" % (name, out.stdout[-2000:],
                                                           out.stderr[-4000:]))
        got = json.loads(out.stdout.decode().strip().splitlines()[-1])
        self.assertEqual(got["set"], "OK")
        self.assertEqual(got["get"], "hello")
        self.assertEqual(got["mget"], ["v-%s%d" % (prefix, i) for i in range(20)])
        self.assertEqual(got["sha"], hashlib.sha1(
            b"return redis.call('GET', KEYS[1])").hexdigest())
        self.assertEqual(got["evalsha"], ["v-%s%d" % (prefix, i) for i in range(20)])
        self.assertEqual(set(got["scanned"]), set(keys) | {"greeting"})
        self.assertEqual(got["dbsize"], NKEYS + 1)

    def test_node_redis(self):
        self.run_client("node-redis", NODE_REDIS, "nr")

    def test_ioredis(self):
        self.run_client("ioredis", IOREDIS, "io")


if __name__ == "__main__":
    h.main(require=("redis-server",))
