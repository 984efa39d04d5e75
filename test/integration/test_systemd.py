#!/usr/bin/python3
"""systemd integration: the notification protocol and the unit file.

A datagram socket bound here stands in for systemd: cachemux is started with
NOTIFY_SOCKET naming it, and the test reads what a service manager would.
Each datagram's sender is checked from its credentials (SO_PASSCRED), as
systemd does with NotifyAccess=main: it must be cachemux's own pid.

- READY=1 (with STATUS=) arrives only once cachemux serves: a connect to
  every pool made the moment the datagram arrives succeeds, and a request
  through it is answered by the backend. So that an early READY=1 cannot
  slip through a window of microseconds, cachemux runs with slow_listen.c
  preloaded: every listen() takes 100 ms, and a READY=1 sent before the
  last one returns finds a port that refuses;
- SIGHUP gives RELOADING=1 with a MONOTONIC_USEC= taken after the signal
  was sent, then READY=1 once the reload is applied, and the same pair when
  the new file is rejected;
- SIGTERM gives STOPPING=1, and nothing after it;
- an abstract socket name (NOTIFY_SOCKET=@name) works too;
- the unit in etc/cachemux.service.in passes `systemd-analyze verify` and
  keeps the settings the packaging relies on (Type=notify, the reload
  command, the descriptor limit, the dedicated user and the hardening).

The same file runs against a build with libsystemd (sd_notify) and one
configured --without-systemd (the datagram sent directly); the first line
of output says which one this binary is.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


LISTEN_DELAY_MS = 100


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


_shim = []


def slow_listen_shim():
    """Path of slow_listen.so built from slow_listen.c, or None without a C
    compiler (a failure instead when CACHEMUX_REQUIRE_ALL=1)."""
    if not _shim:
        cc = os.environ.get("CC") if os.environ.get("CC") else None
        cc = cc or h.find_binary("cc") or h.find_binary("gcc") or h.find_binary("clang")
        out = None
        if cc is not None:
            out = os.path.join(h.tmp_dir("shim"), "slow_listen.so")
            src = os.path.join(h.HERE, "slow_listen.c")
            r = subprocess.run(cc.split() + ["-shared", "-fPIC", "-O1", "-o", out, src, "-ldl"],
                               capture_output=True, text=True, timeout=h.scaled(60))
            if r.returncode != 0:
                raise AssertionError("cannot build slow_listen.so: %s" % r.stderr)
        elif h.REQUIRE_ALL:
            raise AssertionError("no C compiler for slow_listen.so (CACHEMUX_REQUIRE_ALL=1)")
        _shim.append(out)
    return _shim[0]


def log_time(cmx, text):
    """Seconds (epoch) of the first log line containing text."""
    for line in cmx.log_text().splitlines():
        if text in line:
            m = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+)\]", line)
            return time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + float(m.group(2))
    raise AssertionError("no log line with %r" % text)


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: a bound AF_UNIX datagram socket
    that reports each message with its sender's pid."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = "cachemux-test-%d-%d" % (os.getpid(), h.free_port())
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = os.path.join(h.tmp_dir("notify"), "notify.sock")
            self.sock.bind(path)
            self.env_value = path

    def recv(self, timeout):
        """(fields dict, raw text, sender pid), or None after timeout s."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        text = data.decode("utf-8", "replace")
        fields = {}
        for line in text.split("\n"):
            if line:
                k, _, v = line.partition("=")
                fields[k] = v
        return fields, text, pid

    def close(self):
        self.sock.close()


class NotifiedCachemux(h.Cachemux):
    """A cachemux started with NOTIFY_SOCKET set. Start-up waits for READY=1
    itself and, the moment it arrives, connects to every pool port."""

    def __init__(self, pools, fake, slow_listen=False, **kw):
        h.Cachemux.__init__(self, pools, **kw)
        self.fake = fake
        self.shim = slow_listen_shim() if slow_listen else None
        self.messages = []          # (fields, text) from this process, in order
        self.ready_connects = None  # {port: bool} at the moment of READY=1

    def _env(self):
        env = h.Cachemux._env(self)
        env["NOTIFY_SOCKET"] = self.fake.env_value
        if self.shim is not None:
            env["LD_PRELOAD"] = self.shim
            env["CACHEMUX_TEST_LISTEN_DELAY_MS"] = str(LISTEN_DELAY_MS)
            # A sanitized build wants its runtime first among the libraries.
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        return env

    def _poll(self, timeout):
        """The next datagram from this process within timeout s, or None.
        Others' are dropped: a start retried on new ports leaves the killed
        try's datagrams behind."""
        deadline = time.time() + timeout
        while True:
            got = self.fake.recv(max(0.0, min(deadline - time.time(), 0.05)))
            if got is not None:
                fields, text, pid = got
                if self.proc is not None and pid == self.proc.pid:
                    self.messages.append((fields, text))
                    return fields, text
                continue
            if time.time() >= deadline or self.proc is None or self.proc.poll() is not None:
                return None

    def next_message(self, timeout=10.0):
        got = self._poll(h.scaled(timeout))
        if got is None:
            raise AssertionError("no notification within %.1fs (cachemux %s); got so far: %r"
                                 % (h.scaled(timeout), "running" if self.alive else "exited",
                                    [t for _, t in self.messages]))
        return got

    def _wait_ready(self):
        got = self._poll(h.scaled(self.start_timeout))
        if got is not None and got[0].get("READY") == "1":
            # Nothing but this check runs between the datagram and the connects.
            self.ready_connects = {p: h.can_connect(p, timeout=1) for p in self._tcp_ports()}
        # Then the harness's own checks: an early exit (a port taken, to be
        # picked again), the ports and the "ready" log line.
        h.Cachemux._wait_ready(self)


class Notify(h.IntegrationTest):

    def start(self, pools, abstract=False, slow_listen=False, **kw):
        fake = FakeSystemd(abstract=abstract)
        self.addCleanup(fake.close)
        c = NotifiedCachemux(pools, fake, slow_listen=slow_listen, **kw).start()
        self.addCleanup(c.stop)
        return c

    def assert_ready_message(self, cmx, fields, npools, nworkers):
        self.assertEqual(fields.get("READY"), "1", cmx.messages)
        self.assertEqual(fields.get("STATUS"), "%d pools, %d workers" % (npools, nworkers),
                         cmx.messages)

    def test_ready_only_once_every_listener_accepts(self):
        mc = self.memcached(name="s1")
        pools = [h.Pool("alpha", [mc]), h.Pool("beta", [mc])]
        cmx = self.start(pools, workers=3, slow_listen=True, start_timeout=15.0)
        if cmx.shim is None:
            print("(no C compiler: without slow_listen.so)", end=" ")
        else:
            # The shim took effect: from start to ready took at least two
            # listen() delays (two pools in each worker, in turn).
            took = log_time(cmx, "NOTICE sup ready:") - log_time(cmx, "NOTICE sup cachemux-")
            self.assertGreaterEqual(took, 2 * LISTEN_DELAY_MS / 1000.0 * 0.9,
                                    "slow_listen.so had no effect")
        self.assertEqual(set(cmx.ready_connects or {}), {p.port for p in pools}, cmx.messages)
        self.assertTrue(all(cmx.ready_connects.values()),
                        "ports refused right after READY=1: %s" % cmx.ready_connects)
        self.assert_ready_message(cmx, cmx.messages[0][0], 2, 3)
        self.assertEqual(len(cmx.messages), 1, cmx.messages)
        with cmx.client("beta") as c:
            self.assertEqual(c.request(b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n")
        self.assertEqual(mc.get(b"k"), b"v")

    def test_reload_sends_reloading_then_ready(self):
        mc = self.memcached(name="s1")
        pool = h.Pool("alpha", [mc], timeout=400)
        cmx = self.start([pool], workers=2)
        self.assertEqual(cmx.messages[0][0].get("READY"), "1")

        for expect in ("ok", "rejected"):
            if expect == "ok":
                pool.keys["timeout"] = 500
                cmx.write_config(pools=[pool])
            else:
                cmx.write_config(text="[pool alpha]\nlisten = nowhere\n")
            before = monotonic_usec()
            line, _ = cmx.reload(expect=expect)
            fields, text = cmx.next_message()
            after = monotonic_usec()
            self.assertEqual(fields.get("RELOADING"), "1", text)
            self.assertRegex(fields.get("MONOTONIC_USEC", ""), r"^[0-9]+$", text)
            stamp = int(fields["MONOTONIC_USEC"])
            self.assertTrue(before <= stamp <= after,
                            "MONOTONIC_USEC=%d not within [%d, %d] (taken around the "
                            "SIGHUP)" % (stamp, before, after))
            fields, text = cmx.next_message()
            self.assert_ready_message(cmx, fields, 1, 2)
            self.assertNotIn("RELOADING", fields, text)
        with cmx.client() as c:
            self.assertEqual(c.request(b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n",
                             "still serving after a rejected reload")

    def test_sigterm_sends_stopping(self):
        mc = self.memcached(name="s1")
        cmx = self.start([h.Pool("alpha", [mc])], workers=2)
        pid = cmx.proc.pid
        os.kill(pid, signal.SIGTERM)
        fields, text = cmx.next_message()
        self.assertEqual(fields, {"STOPPING": "1"}, text)
        cmx.stop()          # reaps it, asserts exit status 0
        late = cmx.fake.recv(0.2)
        self.assertTrue(late is None or late[2] != pid, "after STOPPING=1: %r" % (late,))

    def test_abstract_socket_name(self):
        mc = self.memcached(name="s1")
        cmx = self.start([h.Pool("alpha", [mc])], abstract=True, workers=1)
        self.assert_ready_message(cmx, cmx.messages[0][0], 1, 1)
        self.assertTrue(all(cmx.ready_connects.values()), cmx.ready_connects)


# --------------------------------------------------------------------------
# the unit file

# What the packaging promises about the service; a change here is deliberate.
UNIT_REQUIRED = {
    "Type": "notify",
    "User": "cachemux",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "LogsDirectory": "cachemux",
    "RuntimeDirectory": "cachemux",
}


def parse_unit(text):
    """{key: [values]} of every section (this unit repeats no key across
    sections)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


class Unit(h.IntegrationTest):

    def unit_text(self, bindir, sysconfdir):
        with open(os.path.join(h.TOP_SRCDIR, "etc", "cachemux.service.in")) as f:
            text = f.read()
        return text.replace("@bindir@", bindir).replace("@sysconfdir@", sysconfdir)

    def test_unit_settings(self):
        u = parse_unit(self.unit_text("/usr/bin", "/etc/cachemux"))
        for k, v in UNIT_REQUIRED.items():
            self.assertIn(v, u.get(k, []), "%s=%s missing (have %r)" % (k, v, u.get(k)))
        self.assertEqual(u["ExecStart"], ["/usr/bin/cachemux -c /etc/cachemux/cachemux.ini "
                                          "$CACHEMUX_OPTS"])
        self.assertIn("/bin/kill -HUP $MAINPID", u["ExecReload"])
        self.assertRegex(u["ExecReload"][0], r"^/usr/bin/cachemux -t -c ")
        self.assertRegex(u["LimitNOFILE"][0], r"^[0-9]+$")
        self.assertEqual(u["EnvironmentFile"], ["-/etc/default/cachemux"])
        self.assertNotIn("copytruncate", self.read_src("etc/logrotate.d/cachemux"))
        self.assertIn("USR1", self.read_src("etc/logrotate.d/cachemux"))

    def read_src(self, rel):
        with open(os.path.join(h.TOP_SRCDIR, rel)) as f:
            return f.read()

    def test_unit_verifies(self):
        analyze = self.need_binary("systemd-analyze")
        d = h.tmp_dir("unit")
        etc = h.tmp_dir("unit-etc")
        h.write_ini(os.path.join(etc, "cachemux.ini"),
                    [h.Pool("alpha", [("127.0.0.1", 11211, 1, "s1")], port=22121)])
        path = os.path.join(d, "cachemux.service")
        with open(path, "w") as f:
            f.write(self.unit_text(os.path.dirname(os.path.abspath(h.CACHEMUX)), etc))
        # verify runs `man` on each Documentation= page: serve ours from
        # the source tree.
        manpath = h.tmp_dir("man")
        for sect, page in (("5", "cachemux.ini.5"), ("8", "cachemux.8")):
            os.makedirs(os.path.join(manpath, "man" + sect))
            shutil.copy(os.path.join(h.TOP_SRCDIR, "man", page),
                        os.path.join(manpath, "man" + sect, page))
        env = dict(os.environ, MANPATH=manpath)
        r = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                           timeout=h.scaled(60), env=env)
        ours = [ln for ln in (r.stdout + r.stderr).splitlines() if "cachemux" in ln]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(ours, [], "systemd-analyze verify complains about the unit")


def describe_build():
    try:
        out = subprocess.run(["ldd", h.CACHEMUX], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return ("libsystemd (sd_notify)" if re.search(r"libsystemd\.so", out)
            else "no libsystemd (direct datagram)")


if __name__ == "__main__":
    print("notification path of this build: %s" % describe_build())
    h.main(require=("memcached",))
