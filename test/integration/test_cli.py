#!/usr/bin/python3
"""Command-line tests (README "Running", "Configuration"; cachemux(8)): -h -V -t -D -L -p -d -w and config
errors at start. No backend is needed: nothing here sends requests.

Run by automake (exit 0/1/77), or directly:
    /usr/bin/python3 test/integration/test_cli.py [NAME-SUBSTRING...]
"""

import glob
import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

STATS = ("client_eof", "client_err", "client_connections", "server_ejects", "forward_error",
         "fragments", "server_eof", "server_err", "server_timedout", "server_connections",
         "server_ejected_at", "requests", "request_bytes", "responses", "response_bytes",
         "in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes")


def package_version():
    """X.Y.Z from configure.ac's AC_INIT (0.1.0 when it cannot be read)."""
    try:
        with open(os.path.join(h.TOP_SRCDIR, "configure.ac")) as f:
            m = re.search(r"AC_INIT\(\[cachemux\],\s*\[([0-9.]+)\]", f.read())
        if m:
            return m.group(1)
    except OSError:
        pass
    return "0.1.0"


class CliTest(h.IntegrationTest):

    def run_cmx(self, args, stdin=None, timeout=30, cwd=None):
        """Run cachemux to completion; returns (rc, stdout bytes, stderr bytes).
        Fails the test on a sanitizer report."""
        san = h.tmp_dir("sanitizer")
        p = subprocess.run([h.CACHEMUX] + list(args), input=stdin, capture_output=True,
                           timeout=h.scaled(timeout), env=h.sanitizer_env(san), cwd=cwd or h.tmp_root())
        h.assert_no_sanitizer_reports(san)
        return p.returncode, p.stdout, p.stderr

    def conf(self, text, name="cachemux.ini"):
        path = h.tmp_path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def good_conf(self, workers=None, extra_pool="", port=None):
        port = port or h.free_port()
        s1, s2 = h.free_ports(2)
        text = "[cachemux]\n"
        if workers is not None:
            text += "workers = %d\n" % workers
        text += ("\n[pool alpha]\nlisten = 127.0.0.1:%d\nhash = fnv1a_64\ndistribution = ketama\n"
                 "server = 127.0.0.1:%d:1 s1\nserver = 127.0.0.1:%d:1 s2\n%s" % (port, s1, s2, extra_pool))
        return self.conf(text), port


class Basics(CliTest):

    def test_help(self):
        for flag in ("-h", "--help"):
            rc, out, err = self.run_cmx([flag])
            self.assertEqual(rc, 0, flag)
            self.assertIn(b"usage", (out + err).lower(), flag)

    def test_version(self):
        want = "This is cachemux-%s" % package_version()
        self.assertRegex(want, r"^This is cachemux-\d+\.\d+\.\d+$")
        for flag in ("-V", "--version"):
            rc, out, err = self.run_cmx([flag])
            self.assertEqual(rc, 0, flag)
            text = (out + err).decode()
            self.assertEqual(text.splitlines()[0], want, flag)
            self.assertRegex(text, r"libevent\D*\d+\.\d+\.\d+", "libevent version in %r" % text)

    def test_describe_stats(self):
        rc, out, err = self.run_cmx(["-D"])
        self.assertEqual(rc, 0)
        text = (out + err).decode()
        words = set(re.findall(r"[a-z_]+", text))
        self.assertEqual([s for s in STATS if s not in words], [], text)
        rc2, out2, err2 = self.run_cmx(["--describe-stats"])
        self.assertEqual((rc2, out2, err2), (rc, out, err))

    def test_test_conf_ok(self):
        path, _ = self.good_conf()
        for flag in ("-t", "--test-conf"):
            rc, out, err = self.run_cmx([flag, "-c", path])
            self.assertEqual(rc, 0, (out, err))
            self.assertIn("cachemux: configuration file '%s' syntax is ok" % path,
                          (out + err).decode().splitlines())

    def test_test_conf_reports_every_error(self):
        p1, p2, port = h.free_ports(3)
        text = ("[cachemux]\n"                           # 1
                "workers = 2\n"                          # 2
                "\n"                                     # 3
                "[pool alpha]\n"                         # 4
                "listen = 127.0.0.1:%d\n"                # 5
                "hash = nope_hash\n"                     # 6  bad hash
                "bogus_key = 1\n"                        # 7  unknown key
                "server = 127.0.0.1:%d:0 s1\n"           # 8  zero weight
                "server = 127.0.0.1:%d:1 s2\n"           # 9
                % (port, p1, p2))
        path = self.conf(text, "broken.ini")
        rc, out, err = self.run_cmx(["-t", "-c", path])
        self.assertEqual(rc, 1, (out, err))
        lines = (out + err).decode().splitlines()
        errs = {}
        for i, ln in enumerate(lines):
            m = re.match(re.escape(path) + r":(\d+): (.+)$", ln)
            if m:
                errs[int(m.group(1))] = (i, m.group(2))
        self.assertEqual(sorted(errs), [6, 7, 8], "error lines: %r" % lines)
        self.assertIn("hash", errs[6][1])
        self.assertIn("nope_hash", errs[6][1])
        self.assertIn("bogus_key", errs[7][1])
        self.assertIn("server", errs[8][1])
        self.assertIn("0", errs[8][1])
        final = "cachemux: configuration file '%s' syntax is invalid" % path
        self.assertIn(final, lines)
        self.assertTrue(all(i < lines.index(final) for i, _ in errs.values()),
                        "errors must come before the final line: %r" % lines)

    def test_two_pools_on_one_address(self):
        port, s1, s2 = h.free_ports(3)
        text = ("[pool alpha]\nlisten = 127.0.0.1:%d\nserver = 127.0.0.1:%d:1 s1\n\n"
                "[pool beta]\nlisten = 127.0.0.1:%d\nserver = 127.0.0.1:%d:1 s2\n" % (port, s1, port, s2))
        path = self.conf(text, "twopools.ini")
        rc, out, err = self.run_cmx(["-t", "-c", path])
        self.assertEqual(rc, 1, (out, err))
        msgs = [ln for ln in (out + err).decode().splitlines()
                if re.match(re.escape(path) + r":\d+: ", ln)]
        self.assertTrue(msgs, (out, err))
        self.assertTrue(any("127.0.0.1:%d" % port in m for m in msgs), msgs)
        # and at start
        rc, out, err = self.run_cmx(["-c", path, "-s", str(h.free_port())], timeout=15)
        self.assertEqual(rc, 1, (out, err))


class StartErrors(CliTest):

    def test_config_error_at_start_exits_1_before_binding(self):
        port, stats = h.free_ports(2)
        s1 = h.free_port()
        text = ("[pool alpha]\nlisten = 127.0.0.1:%d\nserver = 127.0.0.1:%d:1 s1\nbogus_key = 1\n"
                % (port, s1))
        path = self.conf(text, "bad.ini")
        san = h.tmp_dir("sanitizer")
        log = h.tmp_path("bad.log")
        p = h.spawn([h.CACHEMUX, "-c", path, "-s", str(stats), "-o", log],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=h.sanitizer_env(san))
        bound = False
        deadline = time.time() + h.scaled(10)
        while p.poll() is None and time.time() < deadline:
            bound = bound or h.can_connect(port, timeout=0.05) or h.can_connect(stats, timeout=0.05)
            time.sleep(0.01)
        if p.poll() is None:
            h.kill_proc(p)
            self.fail("cachemux kept running with a broken config")
        out, err = p.communicate()
        self.assertEqual(p.returncode, 1)
        self.assertFalse(bound, "a listener accepted although the config is invalid")
        text = (out + err).decode() + h.read_text(log)
        self.assertRegex(text, re.escape(path) + r":4: .*bogus_key")
        self.assertNotRegex(h.read_text(log), r"\bready\b")
        h.assert_no_sanitizer_reports(san)


def _locate_test(table):
    def test(self):
        header, rows = h.read_table(table)
        self.assertEqual(len(rows), 2000)
        path = self.conf(h.table_pool_ini(header), "locate.ini")
        flag = ["--locate=p"] if "md5" in os.path.basename(table) else ["-L", "p"]
        rc, out, err = self.run_cmx(["-c", path] + flag, stdin=b"".join(k + b"\n" for k, _ in rows))
        self.assertEqual(rc, 0, err)
        got = out.split(b"\n")
        self.assertEqual(got[-1], b"", "output must end with a newline")
        got = got[:-1]
        self.assertEqual(len(got), 2000, "output lines")
        bad = []
        for (k, ident), line in zip(rows, got):
            if line != k + b" " + ident.encode():
                bad.append("%s: table %s, got %r" % (k.hex(), ident, line[-40:]))
        self.assertEqual(bad[:8], [], "%d of 2000 keys differ from %s" % (len(bad), os.path.basename(table)))
    test.__doc__ = "-L reproduces %s key for key" % os.path.basename(table)
    return test


class Locate(CliTest):
    """-L/--locate against every recorded nutcracker table."""

    def test_tables_present(self):
        tables = glob.glob(os.path.join(h.PLACEMENT_DIR, "*.tsv"))
        self.assertGreaterEqual(len(tables), 34, h.PLACEMENT_DIR)

    def test_locate_strips_cr(self):
        header, rows = h.read_table(os.path.join(h.PLACEMENT_DIR, "ketama_fnv1a_64.tsv"))
        path = self.conf(h.table_pool_ini(header), "locate.ini")
        rows = rows[:200]
        rc, out, err = self.run_cmx(["-c", path, "-L", "p"], stdin=b"".join(k + b"\r\n" for k, _ in rows))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"".join(k + b" " + i.encode() + b"\n" for k, i in rows))

    def test_locate_random_distribution(self):
        s = h.free_ports(3)
        path = self.conf("[pool p]\nlisten = 127.0.0.1:%d\ndistribution = random\n"
                         "server = 127.0.0.1:%d:1 s1\nserver = 127.0.0.1:%d:1 s2\n" % tuple(s), "random.ini")
        keys = [b"a", b"key1", b"\xff\x80"]
        rc, out, err = self.run_cmx(["-c", path, "-L", "p"], stdin=b"".join(k + b"\n" for k in keys))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"".join(k + b" *\n" for k in keys))


for _t in sorted(glob.glob(os.path.join(h.PLACEMENT_DIR, "*.tsv"))):
    setattr(Locate, "test_locate_" + os.path.basename(_t)[:-4], _locate_test(_t))


class Lifecycle(CliTest):

    def test_pid_file_written_and_removed(self):
        pidfile = h.tmp_path("cachemux.pid")
        c = h.Cachemux([h.Pool("alpha", [("127.0.0.1", h.free_port(), 1, "s1")])],
                       extra_args=["-p", pidfile]).start()
        try:
            with open(pidfile) as f:
                self.assertEqual(int(f.read().strip()), c.proc.pid)
        finally:
            c.stop()
        self.assertFalse(os.path.exists(pidfile), "pid file left after SIGTERM")

    def test_workers_flag_overrides_config(self):
        c = h.Cachemux([h.Pool("alpha", [("127.0.0.1", h.free_port(), 1, "s1")])],
                       workers=1, verbose=6, extra_args=["-w", "3"]).start()
        self.addCleanup(c.stop)
        port = c.port()
        # one SO_REUSEPORT listener per worker (README "Operations": curr_connections counts them, as twemproxy)
        self.assertEqual(len(h.listen_inodes(port)), 3, "listening sockets on the pool port")
        clients = [h.Client(port) for _ in range(60)]
        ports = {x.local_port for x in clients}
        try:
            for x in clients:
                x.send(b"version\r\n")
            deadline = time.time() + h.scaled(5)
            tags = {}
            while time.time() < deadline:
                tags = {}
                for line in c.log_text().splitlines():
                    m = re.search(r"\] INFO (w\d+) accepted client 127\.0\.0\.1:(\d+) on pool alpha$", line)
                    if m and int(m.group(2)) in ports:
                        tags[m.group(1)] = tags.get(m.group(1), 0) + 1
                if sum(tags.values()) == 60:
                    break
                time.sleep(0.1)
            self.assertEqual(sum(tags.values()), 60, tags)
            self.assertEqual(len(tags), 3, "workers that accepted: %s" % tags)
        finally:
            for x in clients:
                x.close()


class Daemonize(CliTest):

    def setUp(self):
        self.subreaper = h.become_subreaper()

    def test_daemonize(self):
        path, port = self.good_conf(workers=2)
        stats = h.free_port()
        pidfile = h.tmp_path("daemon.pid")
        log = h.tmp_path("daemon.log")
        cwd = h.tmp_dir("cwd")
        pid, san = self.start_daemon(["-c", path, "-s", str(stats), "-v", "6", "-o", log,
                                      "-p", pidfile], pidfile, log, cwd=cwd)
        # ready before the parent returned
        self.assertRegex(h.read_text(log), r"\bready\b")
        self.assertTrue(h.can_connect(port, timeout=2), "pool port not accepting after the parent exited")
        # setsid, stdio on /dev/null, no chdir
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        self.assertEqual(int(fields[3]), pid, "daemon is not a session leader (setsid)")
        for fd in (0, 1, 2):
            self.assertEqual(os.readlink("/proc/%d/fd/%d" % (pid, fd)), "/dev/null", "fd %d" % fd)
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), cwd)
        self.stop_daemon(pid, pidfile, san)

    def test_daemonize_bad_config_exits_1(self):
        port, s1 = h.free_ports(2)
        path = self.conf("[pool alpha]\nlisten = 127.0.0.1:%d\nserver = 127.0.0.1:%d:0 s1\n" % (port, s1),
                         "bad.ini")
        pidfile = h.tmp_path("bad.pid")
        rc, out, err = self.run_cmx(["-d", "-c", path, "-s", str(h.free_port()), "-p", pidfile], timeout=15)
        self.assertEqual(rc, 1, (out, err))
        self.assertRegex((out + err).decode(), re.escape(path) + r":3: ")
        self.assertFalse(os.path.exists(pidfile))
        self.assertFalse(h.can_connect(port))

    def test_daemonize_listen_address_in_use_exits_1(self):
        """-d checks every listen address before forking: a port held by
        another socket (without SO_REUSEPORT) makes the parent exit 1."""
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.bind((h.HOST, 0))
        holder.listen(1)
        self.addCleanup(holder.close)
        port = holder.getsockname()[1]
        path, _ = self.good_conf(port=port)
        pidfile = h.tmp_path("inuse.pid")
        log = h.tmp_path("inuse.log")
        rc, out, err = self.run_cmx(["-d", "-c", path, "-s", str(h.free_port()), "-p", pidfile,
                                     "-o", log], timeout=15)
        self.assertEqual(rc, 1, (out, err, h.read_text(log)))
        self.assertFalse(os.path.exists(pidfile))
        self.assertNotRegex(h.read_text(log), r"\bready\b")


if __name__ == "__main__":
    h.main()
