#!/usr/bin/python3
"""nutcracker YAML configurations from the command line: -t on YAML, every
kind of malformed YAML (FILE:LINE and exit 1, never a crash), --convert
(the INI loads the same configuration; twice the same text), the flags that
set [cachemux] keys for a YAML configuration, and a cachemux serving and
reloading (SIGHUP) a YAML file. test_migration.py compares placement with
the real nutcracker.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_yaml.py [NAME-SUBSTRING...]
"""

import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EXAMPLE = """\
# shaped like nutcracker's examples/nutcracker.yml
alpha:
  listen: 127.0.0.1:%(p0)d
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6379:1

beta:
  listen: 127.0.0.1:%(p1)d
  hash: fnv1a_64
  hash_tag: "{}"            # quoted, as nutcracker's example has it
  distribution: ketama
  auto_eject_hosts: false
  timeout: 400
  redis: true
  servers:
   - 127.0.0.1:6380:1 server1
   - 127.0.0.1:6381:1 server2

omega:
  listen: %(dir)s/omega.sock 0666
  hash: hsieh
  distribution: ketama
  servers:
   - 127.0.0.1:11214:100000
   - 127.0.0.1:11215:1
"""


class YamlTest(h.IntegrationTest):

    def run_cmx(self, args, timeout=30):
        san = h.tmp_dir("sanitizer")
        p = subprocess.run([h.CACHEMUX] + list(args), capture_output=True,
                           timeout=h.scaled(timeout), env=h.sanitizer_env(san), cwd=h.tmp_root())
        h.assert_no_sanitizer_reports(san)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def put(self, name, text):
        path = h.tmp_path(name)
        with open(path, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        return path

    def example(self, name="nutcracker.yml"):
        p0, p1 = h.free_ports(2)
        self.sock_dir = h.tmp_dir("sock")
        return self.put(name, EXAMPLE % {"p0": p0, "p1": p1, "dir": self.sock_dir})


class Load(YamlTest):

    def test_test_conf(self):
        for name in ("nutcracker.yml", "nutcracker.yaml"):
            path = self.example(name)
            rc, out, err = self.run_cmx(["-t", "-c", path])
            self.assertEqual(rc, 0, err)
            self.assertIn("cachemux: configuration file '%s' syntax is ok" % path, err)

    def test_ini_that_looks_like_yaml_is_not_yaml(self):
        """The extension decides: YAML text in a .ini file is INI with errors."""
        path = self.put("looks.ini", EXAMPLE % {"p0": 1, "p1": 2, "dir": "/tmp"})
        rc, out, err = self.run_cmx(["-t", "-c", path])
        self.assertEqual(rc, 1)
        self.assertIn("%s:3: expected 'key = value', found 'listen: 127.0.0.1:1' (':' is not a "
                      "delimiter)" % path, err)

    def test_malformed(self):
        """Each broken file: exit 1, FILE:LINE (or the size error), never a
        crash; at start as well as with -t."""
        ok = "a:\n  listen: 127.0.0.1:%d\n" % h.free_port()
        srv = "  servers:\n   - 127.0.0.1:11211:1\n"
        cases = [
            ("tabs.yml", ok + "\thash: md5\n" + srv, 3, "tab"),
            ("indent.yml", ok + "  hash: md5\n    timeout: 400\n" + srv, 4, "invalid YAML"),
            ("indent2.yml", ok + " hash: md5\n" + srv, 3, "invalid YAML"),
            ("unknown.yml", ok + "  hashh: md5\n" + srv, 3, "unknown key 'hashh' in pool 'a'"),
            ("duppool.yml", ok + srv + ok + srv, 5, "duplicate pool 'a' (first at line 1)"),
            ("dupkey.yml", ok + "  hash: md5\n  hash: crc16\n" + srv, 4,
             "duplicate key 'hash' in pool 'a': 'crc16' here, 'md5' first at line 3"),
            ("item.yml", ok + "  servers:\n   - host: x\n", 4,
             "a 'servers' item ('host:port:weight [name]') must be a string, found a mapping"),
            ("empty.yml", "", 1, "no pools: the file is empty"),
            ("comments.yml", "# nothing here\n", 1, "no pools: the file is empty"),
            ("anchor.yml", ok + "  hash: &h md5\n" + srv, 3, "anchor '&h'"),
            ("flow.yml", ok + "  servers: [127.0.0.1:11211:1]\n", 3, "flow style"),
            ("binary.yml", b"a:\n  listen: \xc3\x28\n", 2, "invalid YAML"),
        ]
        for name, text, line, want in cases:
            path = self.put(name, text)
            for args in (["-t", "-c", path], ["-c", path, "-s", str(h.free_port())]):
                rc, out, err = self.run_cmx(args)
                self.assertEqual(rc, 1, (name, args, err))
                self.assertIn("%s:%d: " % (path, line), err, name)
                self.assertIn(want, err, name)
                self.assertIn("cachemux: configuration file '%s' syntax is invalid" % path, err)
                self.assertNotIn("fatal signal", err)

    def test_ten_megabytes(self):
        path = h.tmp_path("huge.yml")
        with open(path, "w") as f:
            f.write(EXAMPLE % {"p0": 1, "p1": 2, "dir": "/tmp"})
            f.write(("# " + "x" * 97 + "\n") * 100000)
        self.assertGreaterEqual(os.path.getsize(path), 10 * 1000 * 1000)
        rc, out, err = self.run_cmx(["-t", "-c", path])
        self.assertEqual(rc, 1)
        self.assertIn("%s: file too large: a YAML configuration is limited to 4 MiB" % path, err)
        rc, out, err = self.run_cmx(["--convert", path])
        self.assertEqual(rc, 1)
        self.assertIn("file too large", err)


class Convert(YamlTest):

    def test_convert(self):
        path = self.example()
        rc, ini, err = self.run_cmx(["--convert", path])
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        self.assertIn(path, ini.splitlines()[1])
        self.assertIn("comments", ini)
        # input order, one server line per item, the quoted hash_tag read back
        self.assertEqual(re.findall(r"^\[pool (\w+)\]$", ini, re.M), ["alpha", "beta", "omega"])
        self.assertIn("hash_tag = {}\n", ini)
        self.assertIn("server = 127.0.0.1:6380:1 server1\nserver = 127.0.0.1:6381:1 server2\n", ini)
        self.assertEqual(self.run_cmx(["--convert", path])[1], ini, "converting twice")
        ini_path = self.put("converted.ini", ini)
        rc, out, err = self.run_cmx(["-t", "-c", ini_path])
        self.assertEqual(rc, 0, err)
        # the same configuration, field by field (first line: the file's name)
        d1 = self.run_cmx(["--dump-conf", "-c", path])
        d2 = self.run_cmx(["--dump-conf", "-c", ini_path])
        self.assertEqual((d1[0], d2[0]), (0, 0), (d1[2], d2[2]))
        self.assertEqual(d1[1].split("\n", 1)[1], d2[1].split("\n", 1)[1])
        self.assertIn("listen = %s/omega.sock 0666\n" % self.sock_dir, d1[1])

    def test_cachemux_convert_program(self):
        """cachemux-convert FILE is cachemux --convert FILE."""
        path = self.example()
        link = os.path.join(h.tmp_dir("bin"), "cachemux-convert")
        os.symlink(os.path.abspath(h.CACHEMUX), link)
        want = self.run_cmx(["--convert", path])
        san = h.tmp_dir("sanitizer")
        for args, rc in (([path], 0), ([], 1), (["-c", path], 1), (["--help"], 0)):
            p = subprocess.run([link] + args, capture_output=True, env=h.sanitizer_env(san),
                               timeout=h.scaled(30))
            self.assertEqual(p.returncode, rc, (args, p.stderr))
            if args == [path]:
                self.assertEqual(p.stdout.decode(), want[1])
            elif rc == 1:
                self.assertIn(b"Usage: cachemux-convert FILE.yml", p.stderr)
        h.assert_no_sanitizer_reports(san)

    def test_convert_errors(self):
        path = self.put("bad.yml", "a:\n  listen: 127.0.0.1:1\n  bogus: 1\n  servers:\n"
                        "   - 127.0.0.1:11211:0\n")
        rc, out, err = self.run_cmx(["--convert", path])
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("%s:3: unknown key 'bogus'" % path, err)
        self.assertIn("%s:5: invalid value '127.0.0.1:11211:0' for 'servers'" % path, err)
        path = self.put("semi.yml", "a:\n  listen: 127.0.0.1:1\n  redis: true\n"
                        "  redis_auth: 'pass ;word'\n  servers:\n   - 127.0.0.1:6379:1\n")
        rc, out, err = self.run_cmx(["--convert", path])
        self.assertEqual(rc, 1)
        self.assertIn("%s:4: cannot convert: the value of 'redis_auth' holds ';' after "
                      "white space" % path, err)
        path = self.put("x.ini", "[pool a]\nlisten = 127.0.0.1:1\nserver = h:1:1\n")
        rc, out, err = self.run_cmx(["--convert", path])
        self.assertEqual(rc, 1)
        self.assertIn("not a YAML file", err)
        rc, out, err = self.run_cmx(["--convert", h.tmp_path("missing.yml")])
        self.assertEqual(rc, 1)
        self.assertIn("cannot open: No such file or directory", err)


class Flags(YamlTest):

    def dump(self, *args):
        rc, out, err = self.run_cmx(["--dump-conf", "-c", self.example()] + list(args))
        self.assertEqual(rc, 0, err)
        return dict(ln.split(" = ", 1) for ln in out.split("\n\n")[0].splitlines()
                    if " = " in ln)

    def test_every_cachemux_key_has_a_flag(self):
        g = self.dump("-w", "3", "-s", "23000", "-a", "0.0.0.0", "-v", "7", "-o", "/tmp/x.log",
                      "-p", "/tmp/x.pid", "-m", "4096", "--metrics-listen", "127.0.0.1:9999",
                      "--max-request-size=1000", "--client-output-limit", "2000",
                      "--max-reply-size", "4096", "--shutdown-timeout", "5",
                      "--tls-handshake-timeout", "700", "--tls-max-handshakes", "9")
        self.assertEqual(g, {
            "workers": "3", "stats_listen": "0.0.0.0:23000", "metrics_listen": "127.0.0.1:9999",
            "log_file": "/tmp/x.log", "log_level": "7", "pid_file": "/tmp/x.pid",
            "mbuf_size": "4096", "max_request_size": "1000", "client_output_limit": "2000",
            "max_reply_size": "4096", "shutdown_timeout": "5",
            "tls_handshake_timeout": "700", "tls_max_handshakes": "9",
        })
        # unset anywhere, client_output_limit follows max_request_size
        self.assertEqual(self.dump("--max-request-size", "100000000")["client_output_limit"],
                         "100000000")
        self.assertEqual(self.dump()["client_output_limit"], "67108864")

    def test_bad_flags(self):
        path = self.example()
        for args, want in [
            (["--max-reply-size", "10"], "option --max-reply-size requires a number in 1024.."),
            (["--shutdown-timeout", "-1"], "option --shutdown-timeout requires a number"),
            (["--metrics-listen", "/tmp/m.sock"], "requires host:port, not a unix socket"),
            (["--metrics-listen", "localhost"], "requires host:port"),
            (["--max-request-size"], "option '--max-request-size' requires an argument"),
        ]:
            rc, out, err = self.run_cmx(["-t", "-c", path] + args)
            self.assertEqual(rc, 1, args)
            self.assertIn(want, err, args)
        rc, out, err = self.run_cmx(["-t", "-c", path, "--max-request-size", "2000",
                                     "--client-output-limit", "1000"])
        self.assertEqual(rc, 1)
        self.assertIn("%s: client_output_limit 1000 is smaller than max_request_size 2000" % path,
                      err)


class CachemuxYaml(h.Cachemux):
    """cachemux started on a nutcracker YAML file (workers as a flag)."""

    def _write_conf(self):
        self.conf = os.path.join(self.dir, "nutcracker.yml")
        h.write_yaml(self.conf, self.pools)

    def _argv(self):
        return h.Cachemux._argv(self) + ["-w", str(self.workers or 2)]


class Serve(YamlTest):

    def test_serve_and_reload(self):
        mc = self.memcached()
        c = CachemuxYaml([h.Pool("alpha", [mc], hash_tag="{}", timeout=400)]).start()
        self.addCleanup(c.stop)
        with c.client() as cl:
            self.assertEqual(cl.request(b"set k{1} 0 0 1\r\nv\r\n"), b"STORED\r\n")
            self.assertEqual(cl.request(b"get k{1}\r\n"), b"VALUE k{1} 0 1\r\nv\r\nEND\r\n")
        # SIGHUP re-reads the YAML: a pool added
        pools = c.pools + [h.Pool("beta", [mc])]
        line, _ = c.reload(pools=pools)
        self.assertIn("reload: 2 pools, 1 changed (1 added, 0 removed)", line)
        with h.Client(c.port("beta")) as cl:
            self.assertEqual(cl.request(b"get k{1}\r\n"), b"VALUE k{1} 0 1\r\nv\r\nEND\r\n")
        # a broken YAML is rejected with FILE:LINE, and the old one keeps serving
        with open(c.conf) as f:
            text = f.read()
        line, off = c.reload(text=text.replace("  hash: fnv1a_64", "  hash: fnv9", 1),
                             expect="rejected")
        log = "\n".join(c.log_since(off))
        self.assertRegex(log, re.escape(c.conf) + r":\d+: invalid value 'fnv9' for 'hash'")
        with h.Client(c.port("beta")) as cl:
            self.assertEqual(cl.request(b"get k{1}\r\n"), b"VALUE k{1} 0 1\r\nv\r\nEND\r\n")


if __name__ == "__main__":
    h.main(require=("memcached",))
