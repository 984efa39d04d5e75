"""Integration test harness for cachemux.

Every integration test is a script run by automake's test driver with
/usr/bin/python3: exit 0 = pass, 1 = fail, 77 = skip. This module gives the
scripts:

- free loopback ports (bind to port 0), each claimed for a few minutes across
  the test processes running at once (make -j), and a retry of a server's
  start, or of a reload adding a pool, when its port was taken in the
  meantime (every server's listeners are checked to belong to the process we
  started, so two tests cannot silently share a port through SO_REUSEPORT);
- real memcached and redis-server backends, cachemux and nutcracker as child
  processes, stopped by PID (never by name);
- writers for a cachemux INI and a nutcracker YAML describing the same pools;
- a raw-socket client that reads complete memcached replies, so tests can
  compare reply bytes exactly;
- skip handling (exit 77 when a backend binary is missing, a failure instead
  when CACHEMUX_REQUIRE_ALL=1), sanitizer report checks, a temp dir that is
  always removed, and a small unittest runner that prints each test's name and
  result and ends with "N passed, N failed".

Environment (set by Makefile.am's AM_TESTS_ENVIRONMENT): top_srcdir,
top_builddir, CACHEMUX. Run by hand (test/README), a test finds them itself:
the source tree above this file, and the build in build/$CACHEMUX_BUILD
(default gcc, the directory test/run-tests.sh builds first), or an in-tree
build when there is none. Optional: CACHEMUX_REQUIRE_ALL=1 (CI), CACHEMUX_KEEP_TMP=1
(keep the temp dir for debugging), CACHEMUX_TIME_SCALE (multiply timeouts, e.g.
for slow sanitizer builds), CACHEMUX_IT_PROXY=nutcracker (run the tests that
use the generic `proxy` helper against nutcracker instead of cachemux, to check
the tests themselves), MEMCACHED / REDIS_SERVER / NUTCRACKER (binary paths).
"""

import atexit
import glob
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.abspath(os.environ.get("top_srcdir") or os.path.join(HERE, "..", ".."))


def _default_builddir():
    """build/$CACHEMUX_BUILD (default gcc) when it holds a cachemux, or
    when the source tree holds none either; else the source tree."""
    build = os.path.join(TOP_SRCDIR, "build", os.environ.get("CACHEMUX_BUILD") or "gcc")
    if (os.path.exists(os.path.join(build, "cachemux")) or
            not os.path.exists(os.path.join(TOP_SRCDIR, "cachemux"))):
        return build
    return TOP_SRCDIR


TOP_BUILDDIR = os.path.abspath(os.environ.get("top_builddir") or _default_builddir())
CACHEMUX = os.environ.get("CACHEMUX") or os.path.join(TOP_BUILDDIR, "cachemux")
PLACEMENT_DIR = os.path.join(TOP_SRCDIR, "test", "data", "placement")
REQUIRE_ALL = os.environ.get("CACHEMUX_REQUIRE_ALL", "") not in ("", "0")
KEEP_TMP = os.environ.get("CACHEMUX_KEEP_TMP", "") not in ("", "0")
TIME_SCALE = float(os.environ.get("CACHEMUX_TIME_SCALE", "1") or "1")
PROXY_KIND = os.environ.get("CACHEMUX_IT_PROXY", "cachemux")
HOST = "127.0.0.1"

SKIP = 77


def scaled(seconds):
    return seconds * TIME_SCALE


# --------------------------------------------------------------------------
# binaries

_SEARCH_DIRS = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"]


def find_binary(name, env_var=None):
    """Absolute path of a program, or None."""
    if env_var and os.environ.get(env_var):
        p = os.environ[env_var]
        return p if os.access(p, os.X_OK) else None
    p = shutil.which(name)
    if p:
        return p
    for d in _SEARCH_DIRS:
        c = os.path.join(d, name)
        if os.access(c, os.X_OK):
            return c
    return None


BINARIES = {
    "memcached": lambda: find_binary("memcached", "MEMCACHED"),
    "redis-server": lambda: find_binary("redis-server", "REDIS_SERVER"),
    "nutcracker": lambda: find_binary("nutcracker", "NUTCRACKER"),
}


def missing_binaries(names):
    return [n for n in names if BINARIES[n]() is None]


def requires(*names):
    """Decorator for a test needing optional binaries: skipped when one is
    missing, failed instead when CACHEMUX_REQUIRE_ALL=1."""
    def deco(fn):
        def wrapper(self, *a, **kw):
            miss = missing_binaries(names)
            if miss:
                msg = "missing binaries: " + ", ".join(miss)
                if REQUIRE_ALL:
                    self.fail(msg + " (CACHEMUX_REQUIRE_ALL=1)")
                self.skipTest(msg)
            return fn(self, *a, **kw)
        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper
    return deco


# --------------------------------------------------------------------------
# temp dir and process registry

_tmp_root = None
_children = []          # Popen objects we started
_extra_pids = []        # pids of daemons we caused (not our children)
_lock = threading.Lock()


def tmp_root():
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = tempfile.mkdtemp(prefix="cachemux-it-")
    return _tmp_root


def tmp_path(name):
    """A fresh path (file or dir name) inside the temp dir."""
    root = tmp_root()
    base, ext = os.path.splitext(name)
    i = 0
    while True:
        p = os.path.join(root, "%s%s%s" % (base, "" if i == 0 else "-%d" % i, ext))
        if not os.path.exists(p):
            return p
        i += 1


def tmp_dir(name):
    p = tmp_path(name)
    os.makedirs(p)
    return p


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still "exists"
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
        return st != "Z"
    except OSError:
        return False


def register_pid(pid):
    """Remember a process we caused but did not fork (a daemonized cachemux),
    so that it is killed at exit if a test failed before stopping it."""
    with _lock:
        _extra_pids.append(pid)


def unregister_pid(pid):
    with _lock:
        if pid in _extra_pids:
            _extra_pids.remove(pid)


def _cleanup():
    # no lock: this also runs from a signal handler (list copies are atomic)
    kids = list(_children)
    extra = list(_extra_pids)
    leftovers = []
    for p in kids:
        if p.poll() is None:
            leftovers += _descendants(p.pid)
            try:
                p.kill()
            except OSError:
                pass
    kill_leftovers(leftovers)
    for pid in extra:
        if _pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    for p in kids:
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    if _tmp_root and os.path.isdir(_tmp_root):
        if KEEP_TMP:
            sys.stdout.write("temp dir kept: %s\n" % _tmp_root)
        else:
            shutil.rmtree(_tmp_root, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    # The test driver is killing us: kill every child and remove the temp dir
    # now (unittest would catch a SystemExit and carry on with the next test).
    try:
        sys.stdout.write("\nkilled by signal %d\n" % signum)
        sys.stdout.flush()
    except Exception:
        pass
    _cleanup()
    os._exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(_s, _on_signal)


try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except Exception:   # not glibc/Linux: no death signal
    _prctl = None


def become_subreaper():
    """Adopt orphaned descendants (a daemonized cachemux), so that this
    process can waitpid() them and see their exit status. False if not
    supported."""
    if _prctl is None:
        return False
    return _prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def _preexec_pdeathsig():
    # children die with us even if we are SIGKILLed (resolved before fork:
    # the forked child only makes the call)
    if _prctl is not None:
        _prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def spawn(argv, stdout=None, stderr=None, stdin=subprocess.DEVNULL, env=None, cwd=None):
    """Start a child process and register it for cleanup."""
    kw = {}
    if threading.active_count() == 1:
        kw["preexec_fn"] = _preexec_pdeathsig
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                         env=env, cwd=cwd or tmp_root(), **kw)
    with _lock:
        _children.append(p)
    return p


def _descendants(pid):
    try:
        return [d for d in _pid_tree(pid) if d != pid]
    except OSError:
        return []


def kill_leftovers(pids):
    """SIGKILL processes (descendants of a child we started) still alive."""
    for d in pids:
        if _pid_alive(d):
            try:
                os.kill(d, signal.SIGKILL)
            except OSError:
                pass


def kill_proc(p, sig=signal.SIGKILL, timeout=10):
    """Kill one child we started (by its PID) and reap it; then SIGKILL any
    of its descendants that outlived it (a wrapper's children)."""
    kids = _descendants(p.pid) if p.poll() is None else []
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
    kill_leftovers(kids)


# Logs of processes started by the current test, dumped when it fails.
_current_logs = []


def note_log(label, path):
    _current_logs.append((label, path))


def dump_current_logs(out=sys.stdout, lines=60):
    for label, path in _current_logs:
        try:
            with open(path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            continue
        out.write("---- last %d lines of %s (%s) ----\n" % (lines, label, path))
        for ln in data[-lines:]:
            out.write("    " + ln + "\n")


# --------------------------------------------------------------------------
# ports

# Listeners use SO_REUSEPORT, so two processes that picked the same port
# both bind it and the kernel splits the connections between them: a client
# of one test's proxy may reach another test's stats listener. A port picked
# here is claimed for the test processes running at the same time (make -j)
# with a file in a shared directory, and never handed out again while the
# claim is fresh.
_PORT_DIR = os.path.join(tempfile.gettempdir(), "cachemux-test-ports-%d" % os.getuid())
_PORT_CLAIM_SECONDS = 300


def _claim_port(port):
    """True when no test process has picked port in the last few minutes
    (it is ours now)."""
    path = os.path.join(_PORT_DIR, str(port))
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return True
        except FileNotFoundError:
            os.makedirs(_PORT_DIR, exist_ok=True)
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime < _PORT_CLAIM_SECONDS:
                    return False
                os.unlink(path)     # a stale claim
            except FileNotFoundError:
                pass
    return False


def free_ports(n):
    """n distinct loopback TCP ports that were free a moment ago (held
    together while picking) and that no other test picked recently."""
    got = []
    for _ in range(50):
        socks = []
        try:
            for _ in range(n - len(got)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((HOST, 0))
            got += [p for p in (s.getsockname()[1] for s in socks) if _claim_port(p)]
        finally:
            for s in socks:
                s.close()
        if len(got) == n:
            return got
    raise RuntimeError("no unclaimed free port after 50 tries (%s)" % _PORT_DIR)


def free_port():
    """A loopback TCP port that was free a moment ago (see free_ports)."""
    return free_ports(1)[0]


class PortInUse(Exception):
    """A server could not bind its port (or someone else shares it): pick again."""


TCP_LISTEN = "0A"           # the LISTEN state in /proc/net/tcp
TCP_ESTABLISHED = "01"


def tcp_sockets():
    """(local port, remote port, state, inode) of every TCP socket in
    /proc/net/tcp and tcp6 (state as written there: TCP_LISTEN, ...). One
    read resumes page by page, so a socket that comes or goes meanwhile can
    be listed twice or missed: count by inode, and prefer `ss` where that
    matters (test_reload.py)."""
    rows = []
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    x = line.split()
                    rows.append((int(x[1].rsplit(":", 1)[1], 16), int(x[2].rsplit(":", 1)[1], 16),
                                 x[3], x[9]))
        except OSError:
            pass
    return rows


def listen_inodes(port):
    """Inodes of LISTEN sockets on 127.0.0.1/0.0.0.0/::/::1 port."""
    return {ino for lp, rp, st, ino in tcp_sockets() if st == TCP_LISTEN and lp == port}


def socket_inodes(pid):
    """Inodes of the sockets pid holds open."""
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                out.add(t[8:-1])
    except OSError:
        pass
    return out


def _pid_tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def owns_port(pid, port):
    """True if pid (or its descendants) listens on port and nobody else does
    (None: cannot tell)."""
    if not os.path.exists("/proc/net/tcp"):
        return None
    ls = listen_inodes(port)
    if not ls:
        return False
    mine = set()
    for p in _pid_tree(pid):
        mine |= socket_inodes(p)
    return ls <= mine


def can_connect(port, host=HOST, timeout=0.5):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


def wait_port(port, proc=None, timeout=10.0, what="server", log=None):
    """Wait until port accepts; raise if proc exits first."""
    deadline = time.time() + scaled(timeout)
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s before accepting on port %d%s"
                               % (what, proc.returncode, port, _log_tail(log)))
        if can_connect(port):
            return
        time.sleep(0.02)
    raise RuntimeError("%s did not accept on port %d within %.1fs%s"
                       % (what, port, scaled(timeout), _log_tail(log)))


def _log_tail(path, n=30):
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n  log %s:\n    %s" % (path, "\n    ".join(lines[-n:]))


def read_text(path):
    """The file's text ('' when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------
# backends

class Backend:
    kind = "?"
    proc = None

    def __init__(self, port=None, name=None, weight=1):
        self.fixed_port = port
        self.port = port
        self.name = name
        self.weight = weight
        self.log = None

    # the pool's `server` line for this backend
    def server_line(self):
        s = "%s:%d:%d" % (HOST, self.port, self.weight)
        return s + (" " + self.name if self.name else "")

    def _argv(self):
        raise NotImplementedError

    def _ready(self):
        return True

    def start(self, tries=8):
        last = None
        for _ in range(tries):
            if self.fixed_port is None:
                self.port = free_port()
            self.log = tmp_path("%s-%d.log" % (self.kind, self.port))
            out = open(self.log, "ab")
            try:
                self.proc = spawn(self._argv(), stdout=out, stderr=subprocess.STDOUT)
            finally:
                out.close()
            note_log("%s :%d" % (self.kind, self.port), self.log)
            try:
                wait_port(self.port, self.proc, what=self.kind, log=self.log)
                own = owns_port(self.proc.pid, self.port)
                if own is False:
                    raise PortInUse("port %d is shared with another process" % self.port)
                if not self._ready():
                    raise RuntimeError("%s on port %d not ready" % (self.kind, self.port))
                return self
            except (RuntimeError, PortInUse) as e:
                last = e
                kill_proc(self.proc)
                text = read_text(self.log)
                if self.fixed_port is not None:
                    break
                if isinstance(e, PortInUse) or "in use" in text.lower() or "bind" in text.lower():
                    continue
                break
        raise RuntimeError("could not start %s: %s" % (self.kind, last))

    def stop(self):
        """Backends are disposable: SIGKILL by PID (memcached takes ~1 s on SIGTERM)."""
        if self.proc is not None:
            kill_proc(self.proc, signal.SIGKILL)

    def kill(self):
        """SIGKILL, by PID."""
        if self.proc is not None:
            kill_proc(self.proc, signal.SIGKILL)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def restart(self):
        """Start a new process on the same port (after kill()): the port
        becomes fixed, so a taken port is an error instead of a new pick."""
        if self.alive:
            self.kill()
        self.fixed_port = self.port
        return self.start()


class Memcached(Backend):
    kind = "memcached"

    def __init__(self, port=None, name=None, weight=1, max_item="4m", memory=128, extra=()):
        Backend.__init__(self, port, name, weight)
        self.max_item = max_item
        self.memory = memory
        self.extra = list(extra)

    def _argv(self):
        argv = [BINARIES["memcached"](), "-l", HOST, "-p", str(self.port), "-U", "0",
                "-t", "2", "-m", str(self.memory), "-I", self.max_item, "-c", "4096"]
        if os.geteuid() == 0:
            import pwd
            argv += ["-u", pwd.getpwuid(os.geteuid()).pw_name]
        return argv + self.extra

    def _ready(self):
        try:
            with Client(self.port, timeout=2) as c:
                r = c.request(b"version\r\n")
            return r.startswith(b"VERSION ")
        except Exception:
            return False

    def client(self, timeout=5):
        """A raw connection straight to this backend."""
        return Client(self.port, timeout=timeout)

    def get(self, key):
        """Value bytes of key read directly from this backend, or None."""
        if isinstance(key, str):
            key = key.encode()
        with self.client() as c:
            r = c.request(b"get " + key + b"\r\n")
        items = parse_get_reply(r)
        return items[0][1] if items else None

    def get_full(self, key):
        """(flags, value) of key read directly, or None."""
        if isinstance(key, str):
            key = key.encode()
        with self.client() as c:
            r = c.request(b"gets " + key + b"\r\n")
        items = parse_get_reply(r, with_meta=True)
        return (items[0][1], items[0][2]) if items else None

    def stats(self):
        with self.client() as c:
            r = c.request(b"stats\r\n")
        out = {}
        for line in r.split(b"\r\n"):
            p = line.split(b" ", 2)
            if len(p) == 3 and p[0] == b"STAT":
                out[p[1].decode()] = p[2].decode()
        return out


class Redis(Backend):
    kind = "redis"

    def __init__(self, port=None, name=None, weight=1, extra=(), password=None):
        Backend.__init__(self, port, name, weight)
        self.extra = list(extra) + (["--requirepass", password] if password else [])
        self.password = password
        self.dir = None

    def _argv(self):
        self.dir = tmp_dir("redis-%d" % self.port)
        return [BINARIES["redis-server"](), "--port", str(self.port), "--bind", HOST,
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--protected-mode", "no"] + self.extra

    def _ready(self):
        deadline = time.time() + scaled(10)
        while time.time() < deadline:
            try:
                with Client(self.port, timeout=2) as c:
                    if self.password:
                        c.send(resp_command("AUTH", self.password))
                        if c.recv_until(b"\r\n") != b"+OK\r\n":
                            raise ValueError("AUTH refused")
                    c.send(b"PING\r\n")
                    r = c.recv_until(b"\r\n")
                if r == b"+PONG\r\n":
                    return True
            except Exception:
                pass
            time.sleep(0.05)
        return False

    def client(self, timeout=5):
        return Client(self.port, timeout=timeout)


class ThreadedBackend(Backend):
    """A backend served by threads of this process. It binds port 0 and
    keeps the socket, so it has no port race; one thread accepts, and each
    connection gets a thread running self._conn(sock). Subclasses say what
    an accepted socket needs (_accepted) and how open ones are dropped at
    stop (_drop_conns)."""

    def __init__(self, name=None, weight=1):
        Backend.__init__(self, None, name, weight)
        self.connections = 0        # accepted
        self._stop = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((HOST, 0))
        self._lsock.listen(128)
        self._lsock.settimeout(0.1)
        self.port = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self, tries=1):
        self._thread.start()
        return self

    def _serve(self):
        while not self._stop:
            try:
                s, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._accepted(s)
            threading.Thread(target=self._conn, args=(s,), daemon=True).start()

    def _accepted(self, s):
        self.connections += 1

    def _drop_conns(self):
        pass

    def stop(self):
        self._stop = True
        try:
            self._lsock.close()
        except OSError:
            pass
        self._drop_conns()

    def kill(self):
        self.stop()

    @property
    def alive(self):
        return not self._stop


class FakeMemcached(ThreadedBackend):
    """A scripted memcached-like backend in this process (threads).
    handler(request bytes) returns the reply bytes, None (no reply) or
    FakeMemcached.CLOSE (close the connection without replying). Every
    complete request received is appended to .received."""
    kind = "fake-memcached"
    CLOSE = object()

    def __init__(self, handler, name=None, weight=1):
        ThreadedBackend.__init__(self, name, weight)
        self.handler = handler
        self.received = []
        self._conns = []

    def _accepted(self, s):
        self.connections += 1
        self._conns.append(s)

    def _conn(self, s):
        buf = b""
        s.settimeout(0.1)
        try:
            while not self._stop:
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                buf += d
                while True:
                    e = mc_request_end(buf)
                    if e is None:
                        break
                    req, buf = buf[:e], buf[e:]
                    with _lock:
                        self.received.append(req)
                    r = self.handler(req)
                    if r is FakeMemcached.CLOSE:
                        return
                    if r:
                        s.sendall(r)
        except OSError:
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _drop_conns(self):
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# configuration writers

class Pool:
    """One pool, written as a cachemux [pool NAME] section or a nutcracker
    YAML pool. servers: Backend objects, or (host, port, weight, name) tuples.
    Extra keyword arguments become pool keys (bools as true/false)."""

    def __init__(self, name, servers, port=None, hash="fnv1a_64", distribution="ketama",
                 redis=False, listen=None, **keys):
        self.name = name
        self.servers = list(servers)
        self.fixed_port = port
        self.port = port
        self.listen = listen          # raw listen string overrides port
        self.keys = dict(keys)
        self.hash = hash
        self.distribution = distribution
        self.redis = redis

    @property
    def picked(self):
        """Its TCP port is the harness's to pick (no port or listen given)."""
        return self.fixed_port is None and self.listen is None

    def listen_str(self):
        return self.listen if self.listen else "%s:%d" % (HOST, self.port)

    def server_lines(self):
        out = []
        for s in self.servers:
            if isinstance(s, Backend):
                out.append(s.server_line())
            elif isinstance(s, str):
                out.append(s)
            else:
                host, port, weight, name = (tuple(s) + (None,))[:4]
                out.append("%s:%d:%d%s" % (host, port, weight, " " + name if name else ""))
        return out

    def items(self):
        items = []
        if self.hash is not None:
            items.append(("hash", self.hash))
        if self.distribution is not None:
            items.append(("distribution", self.distribution))
        if self.redis is not None:
            items.append(("redis", self.redis))
        items += list(self.keys.items())
        return items


def _fmt(v, yaml=False):
    if v is True:
        return "true"
    if v is False:
        return "false"
    s = str(v)
    if yaml and any(c in s for c in "{}[]:#,&*!|>'\"%@`"):
        return '"%s"' % s
    return s


def write_ini(path, pools, workers=None, stats_port=None, globals_=None, raw_extra=""):
    lines = ["; written by test/integration/harness.py", "[cachemux]"]
    if workers is not None:
        lines.append("workers = %s" % workers)
    if stats_port is not None:
        lines.append("stats_listen = %s:%d" % (HOST, stats_port))
    for k, v in (globals_ or {}).items():
        lines.append("%s = %s" % (k, _fmt(v)))
    for p in pools:
        lines.append("")
        lines.append("[pool %s]" % p.name)
        lines.append("listen = %s" % p.listen_str())
        for k, v in p.items():
            lines.append("%s = %s" % (k, _fmt(v)))
        for s in p.server_lines():
            lines.append("server = %s" % s)
    text = "\n".join(lines) + "\n" + raw_extra
    with open(path, "w") as f:
        f.write(text)
    return path


def write_yaml(path, pools):
    lines = []
    for p in pools:
        lines.append("%s:" % p.name)
        lines.append("  listen: %s" % p.listen_str())
        for k, v in p.items():
            lines.append("  %s: %s" % (k, _fmt(v, yaml=True)))
        lines.append("  servers:")
        for s in p.server_lines():
            lines.append("   - %s" % s)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------
# proxies

def sanitizer_env(report_dir):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "abort_on_error=1:detect_leaks=1:log_path=%s" % os.path.join(report_dir, "asan")
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:log_path=%s" % os.path.join(report_dir, "ubsan")
    # ThreadSanitizer (--enable-tsan): every report is a failure; the
    # suppressions file says why each entry is a false positive.
    env["TSAN_OPTIONS"] = "halt_on_error=0:second_deadlock_stack=1:log_path=%s:suppressions=%s" % (
        os.path.join(report_dir, "tsan"), os.path.join(TOP_SRCDIR, "test", "tsan.supp"))
    env["LSAN_OPTIONS"] = env.get("LSAN_OPTIONS", "")
    return env


def sanitizer_reports(report_dir):
    return sorted(glob.glob(os.path.join(report_dir, "asan*")) +
                  glob.glob(os.path.join(report_dir, "ubsan*")) +
                  glob.glob(os.path.join(report_dir, "tsan*")))


def assert_no_sanitizer_reports(report_dir):
    reps = sanitizer_reports(report_dir)
    if reps:
        text = "\n".join("== %s ==\n%s" % (r, read_text(r)[:4000]) for r in reps)
        raise AssertionError("sanitizer reports:\n" + text)


_READY_RE = re.compile(r"\bready\b")


class Proxy:
    """Common part of Cachemux and Nutcracker: a child started on a config
    written for `pools`, with ports picked (and re-picked when taken)."""
    kind = "?"

    def __init__(self, pools, stats_port=None, verbose=None, extra_args=(), workers=None,
                 globals_=None, start_timeout=15.0):
        self.pools = list(pools)
        self.fixed_stats_port = stats_port
        self.stats_port = stats_port
        self.verbose = verbose
        self.extra_args = list(extra_args)
        self.workers = workers
        self.globals_ = globals_
        self.start_timeout = start_timeout
        self.proc = None
        self.log = None
        self.conf = None
        self.dir = tmp_dir(self.kind)

    def port(self, name=None):
        if name is None:
            return self.pools[0].port
        for p in self.pools:
            if p.name == name:
                return p.port
        raise KeyError(name)

    def _pick_ports(self):
        for p in self.pools:
            if p.picked:
                p.port = free_port()
        if self.fixed_stats_port is None:
            self.stats_port = free_port()

    def _write_conf(self):
        raise NotImplementedError

    def _argv(self):
        raise NotImplementedError

    def _env(self):
        return None

    def _ready_in_log(self):
        return True

    def _tcp_ports(self):
        """Ports that must accept before the proxy counts as started."""
        return [p.port for p in self.pools if p.listen is None]

    def start(self, tries=6):
        last = None
        for attempt in range(tries):
            self._pick_ports()
            self._write_conf()
            self.log = os.path.join(self.dir, "%s-%d.log" % (self.kind, attempt))
            out = open(self.log + ".out", "ab")
            try:
                self.proc = spawn(self._argv(), stdout=out, stderr=subprocess.STDOUT,
                                  env=self._env())
            finally:
                out.close()
            note_log(self.kind, self.log)
            note_log(self.kind + " stdout/stderr", self.log + ".out")
            try:
                self._wait_ready()
                return self
            except PortInUse as e:
                last = e
                kill_proc(self.proc)
                self.proc = None
                del _current_logs[-2:]
                continue
            except Exception:
                kill_proc(self.proc)
                raise
        raise RuntimeError("could not start %s: %s" % (self.kind, last))

    # After one start timed out, later starts wait less, so that a broken
    # binary fails every test quickly instead of taking the suite's time.
    _timed_out_before = False

    def _wait_ready(self):
        limit = self.start_timeout if not Proxy._timed_out_before else min(self.start_timeout, 3.0)
        deadline = time.time() + scaled(limit)
        pending = list(self._tcp_ports())
        while True:
            if self.proc.poll() is not None:
                text = read_text(self.log) + read_text(self.log + ".out")
                if "in use" in text.lower() and self._pickable():
                    raise PortInUse(text.strip().splitlines()[-1] if text.strip() else "")
                san = getattr(self, "san_dir", None)
                reps = "".join("\n  %s:\n%s" % (r, read_text(r)[:3000])
                               for r in (sanitizer_reports(san) if san else []))
                raise RuntimeError("%s exited with %s before it was ready%s%s%s"
                                   % (self.kind, self.proc.returncode, _log_tail(self.log),
                                      _log_tail(self.log + ".out"), reps))
            pending = [p for p in pending if not can_connect(p)]
            if not pending and self._ready_in_log():
                break
            if time.time() > deadline:
                Proxy._timed_out_before = True
                raise RuntimeError("%s not ready within %.1fs (ports not accepting: %s, "
                                   "ready line logged: %s)%s"
                                   % (self.kind, scaled(limit), pending,
                                      self._ready_in_log(), _log_tail(self.log)))
            time.sleep(0.02)
        # (skipped when no port can be re-picked: it could only fail with a
        # PortInUse that is never raised then, and reading /proc/net/tcp is
        # slow with many TIME_WAIT sockets, e.g. in the binary upgrade test)
        for port in (self._tcp_ports() + [self.stats_port]) if self._pickable() else []:
            if not listen_inodes(port):
                continue        # (the stats port is not waited for)
            if owns_port(self.proc.pid, port) is False and self._pickable():
                raise PortInUse("port %d is shared with another process" % port)

    def _pickable(self):
        return (self.fixed_stats_port is None or
                any(p.picked for p in self.pools))

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, pool=None, timeout=5):
        return Client(self.port(pool), timeout=timeout)

    def log_text(self):
        return read_text(self.log)

    def stats_json(self, timeout=5):
        """The stats document (one JSON per connect), parsed (helpers.py)."""
        import helpers
        return helpers.stats_json(self.stats_port, timeout=timeout)


class Cachemux(Proxy):
    kind = "cachemux"

    def __init__(self, pools, stats_port=None, verbose=6, extra_args=(), workers=2,
                 globals_=None, start_timeout=10.0, stop_timeout=15.0, asan_extra=""):
        Proxy.__init__(self, pools, stats_port, verbose, extra_args, workers, globals_, start_timeout)
        self.stop_timeout = stop_timeout
        self.asan_extra = asan_extra    # appended to ASAN_OPTIONS, e.g. a smaller quarantine
        self.san_dir = tmp_dir("sanitizer")

    def _write_conf(self):
        self.conf = os.path.join(self.dir, "cachemux.ini")
        write_ini(self.conf, self.pools, workers=self.workers, stats_port=self.stats_port,
                  globals_=self.globals_)

    def _argv(self):
        argv = [CACHEMUX, "-c", self.conf, "-s", str(self.stats_port)]
        if self.verbose is not None:
            argv += ["-v", str(self.verbose)]
        return argv + ["-o", self.log] + self.extra_args

    def _env(self):
        env = sanitizer_env(self.san_dir)
        if self.asan_extra:
            env["ASAN_OPTIONS"] += ":" + self.asan_extra
        return env

    def _ready_in_log(self):
        return bool(_READY_RE.search(read_text(self.log)))

    def stop(self, expect_rc=0, sig=signal.SIGTERM):
        """SIGTERM by PID; assert it exits with expect_rc in time and left no
        sanitizer report."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        kids = _descendants(p.pid) if p.poll() is None else []
        if p.poll() is None:
            os.kill(p.pid, sig)
        try:
            rc = p.wait(timeout=scaled(self.stop_timeout))
            kill_leftovers(kids)
        except subprocess.TimeoutExpired:
            kill_proc(p)
            kill_leftovers(kids)
            raise AssertionError("cachemux (pid %d) did not exit within %.1fs of signal %d%s"
                                 % (p.pid, scaled(self.stop_timeout), sig, _log_tail(self.log)))
        assert_no_sanitizer_reports(self.san_dir)
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("cachemux exited %s, expected %s%s%s"
                                 % (rc, expect_rc, _log_tail(self.log), _log_tail(self.log + ".out")))
        return rc

    def kill(self):
        if self.proc is not None:
            kill_proc(self.proc)
            self.proc = None

    # ---- reload (SIGHUP) -------------------------------------------------

    RELOAD_RESULT_RE = re.compile(r"reload: (?:\d+ pools, \d+ changed \(\d+ added, \d+ removed\)"
                                  r"|rejected\b.*)")

    def log_size(self):
        """Current size of the log file (an offset for log_since / wait_log)."""
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, offset):
        """Complete log lines written after byte offset (a list of str)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        return data[:end].decode("utf-8", "replace").split("\n")

    def wait_log(self, pattern, since=0, timeout=10.0, count=1):
        """Wait until `count` complete log lines after offset `since` match
        pattern (a regex); return the matching lines. Raises on timeout or
        if cachemux exits."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.time() + scaled(timeout)
        while True:
            got = [ln for ln in self.log_since(since) if rx.search(ln)]
            if len(got) >= count:
                return got
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError("cachemux exited while waiting for %r in the log%s"
                                     % (rx.pattern, _log_tail(self.log)))
            if time.time() > deadline:
                raise AssertionError("%d of %d log lines matching %r within %.1fs%s"
                                     % (len(got), count, rx.pattern, scaled(timeout),
                                        _log_tail(self.log)))
            time.sleep(0.005)

    def write_config(self, pools=None, workers=None, globals_=None, text=None):
        """Rewrite the config file in place: the raw text if given, else from
        pools / workers / globals_ (each None = keep the current one). New
        pools without a port get a free one; self.pools etc. are updated."""
        if text is not None:
            with open(self.conf, "w") as f:
                f.write(text)
            return self.conf
        if pools is not None:
            self.pools = list(pools)
            for p in self.pools:
                if p.port is None and p.listen is None:
                    p.port = free_port()
        if workers is not None:
            self.workers = workers
        if globals_ is not None:
            self.globals_ = globals_
        self._write_conf()
        return self.conf

    def _repick_taken(self, off):
        """After a rejected reload: give a new free port to each pool whose
        picked port could not be listened on (in use), and rewrite the
        config. True when there was such a pool."""
        taken = {int(m.group(1)) for m in (
            re.search(r"cannot listen on [^ ]*:(\d+): Address already in use", ln)
            for ln in self.log_since(off)) if m}
        moved = [p for p in self.pools if p.picked and p.port in taken]
        for p in moved:
            p.port = free_port()
        if moved:
            self._write_conf()
        return bool(moved)

    def reload(self, pools=None, workers=None, globals_=None, text=None, expect="ok",
               timeout=10.0):
        """Rewrite the config (see write_config; nothing is rewritten when
        all of pools, workers, globals_ and text are None), send SIGHUP and
        wait for the reload's result line (`reload: N pools, M changed (A
        added, R removed)` or `reload: rejected ...`). expect "ok" or
        "rejected" asserts which; None accepts both. Returns (result line,
        log offset taken just before the signal)."""
        if pools is not None or workers is not None or globals_ is not None or text is not None:
            self.write_config(pools=pools, workers=workers, globals_=globals_, text=text)
        for _ in range(5):
            off = self.log_size()
            os.kill(self.proc.pid, signal.SIGHUP)
            line = self.wait_log(self.RELOAD_RESULT_RE, since=off, timeout=timeout)[0]
            rejected = "reload: rejected" in line
            # A new pool's port was free when picked, but another test's
            # connection took it since (a port race, as at start): pick again.
            if not (rejected and expect == "ok" and text is None and self._repick_taken(off)):
                break
        if expect == "ok" and rejected:
            raise AssertionError("reload rejected: %s\n  log since the signal:\n    %s"
                                 % (line, "\n    ".join(self.log_since(off)[-30:])))
        if expect == "rejected" and not rejected:
            raise AssertionError("reload accepted, expected a rejection: %s" % line)
        return line, off


class Nutcracker(Proxy):
    kind = "nutcracker"

    def __init__(self, pools, stats_port=None, verbose=None, extra_args=(), workers=None,
                 globals_=None, start_timeout=15.0):
        Proxy.__init__(self, pools, stats_port, verbose, extra_args, workers, globals_, start_timeout)

    def _write_conf(self):
        self.conf = os.path.join(self.dir, "nutcracker.yml")
        write_yaml(self.conf, self.pools)

    def _argv(self):
        argv = [BINARIES["nutcracker"](), "-c", self.conf, "-s", str(self.stats_port),
                "-a", HOST, "-o", self.log]
        if self.verbose is not None:
            argv += ["-v", str(self.verbose)]
        return argv + self.extra_args

    def stop(self, expect_rc=None, sig=None):
        """nutcracker has no graceful stop: SIGKILL by PID."""
        if self.proc is not None:
            kill_proc(self.proc, signal.SIGKILL)
            self.proc = None

    kill = stop


def proxy_class():
    return Nutcracker if PROXY_KIND == "nutcracker" else Cachemux


# --------------------------------------------------------------------------
# key placement through -L, process memory

def locate(conf, pool, keys, binary=None):
    """{key: server identity} for keys (str or bytes without CR/LF) under
    pool's placement in the config file conf, by `cachemux -L POOL`.
    Fails on a sanitizer report or a non-zero exit."""
    keys = [k.encode() if isinstance(k, str) else k for k in keys]
    san = tmp_dir("sanitizer")
    p = subprocess.run([binary or CACHEMUX, "-c", conf, "-L", pool],
                       input=b"".join(k + b"\n" for k in keys), capture_output=True,
                       timeout=scaled(60), env=sanitizer_env(san), cwd=tmp_root())
    assert_no_sanitizer_reports(san)
    if p.returncode != 0:
        raise AssertionError("cachemux -L %s exited %d: %r" % (pool, p.returncode, p.stderr[:500]))
    lines = p.stdout.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != len(keys):
        raise AssertionError("cachemux -L printed %d lines for %d keys" % (len(lines), len(keys)))
    out = {}
    for k, line in zip(keys, lines):
        got_key, ident = line.rsplit(b" ", 1)
        if got_key != k:
            raise AssertionError("cachemux -L: line %r for key %r" % (line, k))
        out[k] = ident.decode()
    return out


def rss_kib(pid):
    """VmRSS of a process in KiB (from /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def read_bytes(pid):
    """Bytes a process has read so far, sockets included (rchar of /proc/PID/io)."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar for pid %d" % pid)


# --------------------------------------------------------------------------
# raw client

class Closed(Exception):
    """The peer closed the connection before the expected bytes arrived."""

    def __init__(self, msg, data=b""):
        Exception.__init__(self, msg)
        self.data = data


def mc_reply_end(buf, pos=0):
    """End offset of the complete memcached reply starting at buf[pos], or
    None if incomplete. A retrieval reply is VALUE blocks up to END; a stats
    reply is STAT lines up to END; anything else is one line."""
    p = pos
    while True:
        nl = buf.find(b"\r\n", p)
        if nl < 0:
            return None
        line = buf[p:nl]
        if line.startswith(b"VALUE "):
            parts = line.split(b" ")
            try:
                n = int(parts[3])
            except (IndexError, ValueError):
                return nl + 2       # malformed: treat as one line
            end = nl + 2 + n + 2
            if len(buf) < end:
                return None
            p = end
            continue
        if line.startswith(b"STAT "):
            p = nl + 2
            continue
        return nl + 2


def resp_reply_end(buf, pos=0):
    """End offset of the complete RESP2 or RESP3 reply at buf[pos] (any
    type, nested to any depth; an attribute counts with the value after
    it), or None if incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    t = buf[pos:pos + 1]
    if t in (b"+", b"-", b":", b"_", b"#", b",", b"("):
        return nl + 2
    if t in (b"$", b"!", b"="):
        n = int(buf[pos + 1:nl])
        if n < 0:
            return nl + 2
        end = nl + 2 + n + 2
        return end if len(buf) >= end else None
    if t in (b"*", b"%", b"~", b">", b"|"):
        n = int(buf[pos + 1:nl])
        if t in (b"%", b"|"):
            n *= 2
        p = nl + 2
        for _ in range(max(n, 0)):
            p = resp_reply_end(buf, p)
            if p is None:
                return None
        return resp_reply_end(buf, p) if t == b"|" else p
    raise ValueError("not a RESP reply: %r" % bytes(buf[pos:pos + 60]))


def resp_command(*args):
    """A RESP multibulk request."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def split_mc_replies(buf):
    """(list of complete replies, remaining bytes)."""
    out = []
    pos = 0
    while pos < len(buf):
        e = mc_reply_end(buf, pos)
        if e is None:
            break
        out.append(bytes(buf[pos:e]))
        pos = e
    return out, bytes(buf[pos:])


def parse_get_reply(r, with_meta=False):
    """[(key, value)] or [(key, flags, value, cas)] from a complete get/gets reply."""
    items = []
    pos = 0
    while True:
        nl = r.index(b"\r\n", pos)
        line = r[pos:nl]
        if not line.startswith(b"VALUE "):
            break
        parts = line.split(b" ")
        n = int(parts[3])
        val = r[nl + 2:nl + 2 + n]
        if with_meta:
            items.append((parts[1], int(parts[2]), val, int(parts[4]) if len(parts) > 4 else None))
        else:
            items.append((parts[1], val))
        pos = nl + 2 + n + 2
    return items


class Client:
    """A raw TCP client with a read buffer and timeouts."""

    def __init__(self, port, host=HOST, timeout=5.0, connect=True):
        self.port = port
        self.host = host
        self.timeout = scaled(timeout)
        self.buf = bytearray()
        self.eof = False
        self.sock = None
        if connect:
            self.sock = socket.create_connection((host, port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline):
        """Read more bytes into buf; False on EOF. Raises socket.timeout."""
        if self.eof:
            return False
        left = deadline - time.time()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(1 << 20)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def recv_exact(self, n, timeout=None):
        deadline = time.time() + (scaled(timeout) if timeout else self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise Closed("closed after %d of %d bytes" % (len(self.buf), n), bytes(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_until(self, term, timeout=None):
        """Bytes up to and including term."""
        deadline = time.time() + (scaled(timeout) if timeout else self.timeout)
        while True:
            i = self.buf.find(term)
            if i >= 0:
                out = bytes(self.buf[:i + len(term)])
                del self.buf[:i + len(term)]
                return out
            if not self._fill(deadline):
                raise Closed("closed before %r; got %r" % (term, bytes(self.buf[:300])), bytes(self.buf))

    def read_replies(self, n, timeout=None):
        """A list of n complete memcached replies."""
        return self._read_units(n, mc_reply_end, timeout)

    def read_resp(self, n, timeout=None):
        """A list of n complete RESP replies."""
        return self._read_units(n, resp_reply_end, timeout)

    def resp(self, *args, timeout=None):
        """Send one RESP command and return its reply bytes."""
        self.send(resp_command(*args))
        return self.read_resp(1, timeout)[0]

    def _read_units(self, n, end_of, timeout):
        deadline = time.time() + (scaled(timeout) if timeout else self.timeout)
        out = []
        while len(out) < n:
            e = end_of(self.buf) if self.buf else None
            if e is not None:
                out.append(bytes(self.buf[:e]))
                del self.buf[:e]
                continue
            try:
                ok = self._fill(deadline)
            except socket.timeout:
                raise socket.timeout("timed out after %d of %d replies; pending %r"
                                     % (len(out), n, bytes(self.buf[:200])))
            if not ok:
                raise Closed("closed after %d of %d replies; pending %r"
                             % (len(out), n, bytes(self.buf[:200])), b"".join(out) + bytes(self.buf))
        return out

    def request(self, data, n=1, timeout=None):
        """Send data and return the bytes of the next n replies."""
        self.send(data)
        return b"".join(self.read_replies(n, timeout))

    def pipeline(self, data, n, timeout=None, resp=False):
        """Send data while reading n replies concurrently (no deadlock when the
        peer stops reading until we read). Returns the list of replies
        (memcached replies, or RESP replies with resp=True)."""
        if isinstance(data, str):
            data = data.encode()
        deadline = time.time() + (scaled(timeout) if timeout else self.timeout)
        view = memoryview(data)
        sent = 0
        self.sock.setblocking(False)
        try:
            while sent < len(data):
                left = deadline - time.time()
                if left <= 0:
                    raise socket.timeout("timed out sending (%d of %d bytes sent)" % (sent, len(data)))
                r, w, _ = select.select([self.sock], [self.sock], [], left)
                if r:
                    try:
                        d = self.sock.recv(1 << 20)
                    except (BlockingIOError, InterruptedError):
                        d = None
                    except ConnectionResetError:
                        d = b""
                    if d == b"":
                        self.eof = True
                        raise Closed("closed while sending", bytes(self.buf))
                    if d:
                        self.buf += d
                if w:
                    try:
                        sent += self.sock.send(view[sent:sent + 262144])
                    except (BlockingIOError, InterruptedError):
                        pass
        finally:
            self.sock.setblocking(True)
        left = max(0.1, deadline - time.time()) / TIME_SCALE
        return self.read_resp(n, left) if resp else self.read_replies(n, left)

    def read_until_close(self, timeout=None):
        """All bytes until EOF; raises socket.timeout if the peer keeps it open."""
        deadline = time.time() + (scaled(timeout) if timeout else self.timeout)
        while self._fill(deadline):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def is_closed(self, timeout=1.0):
        """True if the peer closes (EOF or reset) within timeout with no more
        data, False if it stays open silent. Raises if data arrives."""
        deadline = time.time() + scaled(timeout)
        try:
            while self._fill(deadline):
                pass
        except socket.timeout:
            if self.buf:
                raise AssertionError("unexpected bytes: %r" % bytes(self.buf[:300]))
            return False
        if self.buf:
            raise AssertionError("unexpected bytes before close: %r" % bytes(self.buf[:300]))
        return True

    def quiet(self, timeout=0.3):
        """True if nothing arrives within timeout and the peer has not closed."""
        if self.buf or self.eof:
            return False
        try:
            self._fill(time.time() + scaled(timeout))
        except socket.timeout:
            return True
        return False


# --------------------------------------------------------------------------
# memcached request counting (for corpus batches)

_STORAGE = {b"set", b"add", b"replace", b"append", b"prepend", b"cas"}


def mc_request_end(buf, pos=0):
    """End offset of the complete memcached request at buf[pos], or None."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    toks = buf[pos:nl].split()
    if toks and toks[0] in _STORAGE and len(toks) >= 5:
        try:
            n = int(toks[4])
        except ValueError:
            return nl + 2
        end = nl + 2 + n + 2
        return end if len(buf) >= end else None
    return nl + 2


def mc_requests(batch):
    """Split a byte string of memcached requests into (request bytes,
    expects_reply, closes) tuples. Storage commands carry their data block."""
    out = []
    pos = 0
    while pos < len(batch):
        nl = batch.find(b"\r\n", pos)
        if nl < 0:
            raise ValueError("incomplete request at %r" % batch[pos:pos + 60])
        line = batch[pos:nl]
        toks = line.split()
        cmd = toks[0] if toks else b""
        end = nl + 2
        if cmd in _STORAGE:
            n = int(toks[4])
            end = nl + 2 + n + 2
        noreply = bool(toks) and toks[-1] == b"noreply"
        out.append((batch[pos:end], not noreply and cmd != b"quit", cmd == b"quit"))
        pos = end
    return out


# --------------------------------------------------------------------------
# placement tables

def read_table(path):
    """(header items [(key, value)], [(key bytes, identity str)])."""
    header = []
    rows = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if line.startswith(b"# "):
                k, v = line[2:].decode().split(" = ", 1)
                header.append((k.strip(), v.strip()))
            elif line:
                hk, ident = line.split(b"\t")
                rows.append((bytes.fromhex(hk.decode()), ident.decode()))
    return header, rows


def table_pool_ini(header, name="p", port=None):
    """The INI pool section for a placement table (test/data/placement/README.md)."""
    lines = ["[pool %s]" % name, "listen = %s:%d" % (HOST, port or free_port()), "redis = true"]
    for k, v in header:
        lines.append("%s = %s" % (k, v))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# test base class and runner

class IntegrationTest(unittest.TestCase):
    """Base class: helpers that start processes and stop them at the end of
    the test (cachemux with an exit-status and sanitizer assertion)."""

    def memcached(self, name=None, **kw):
        m = Memcached(name=name, **kw).start()
        self.addCleanup(m.stop)
        return m

    def redis(self, name=None, **kw):
        r = Redis(name=name, **kw).start()
        self.addCleanup(r.stop)
        return r

    def cachemux(self, pools, **kw):
        c = Cachemux(pools, **kw).start()
        self.addCleanup(c.stop)
        return c

    def nutcracker(self, pools, **kw):
        n = Nutcracker(pools, **kw).start()
        self.addCleanup(n.stop)
        return n

    def proxy(self, pools, **kw):
        """cachemux, or nutcracker when CACHEMUX_IT_PROXY=nutcracker."""
        if proxy_class() is Nutcracker:
            kw.pop("workers", None)
            kw.pop("globals_", None)
            kw.pop("verbose", None)
            return self.nutcracker(pools, **kw)
        return self.cachemux(pools, **kw)

    def need(self, ok, msg):
        """Skip the test unless ok, saying msg (fail it instead when
        CACHEMUX_REQUIRE_ALL=1)."""
        if not ok:
            if REQUIRE_ALL:
                self.fail(msg + " (CACHEMUX_REQUIRE_ALL=1)")
            self.skipTest(msg)

    def need_binary(self, name, msg=None, env_var=None):
        """The path of binary name, as need() requires it."""
        path = find_binary(name, env_var)
        self.need(path is not None, msg or "%s not installed" % name)
        return path

    def start_daemon(self, args, pidfile, log, cwd=None):
        """Run `cachemux -d ARGS` (a sanitized build's reports going to a
        fresh directory) and wait for the parent, which must exit 0 once the
        daemon is ready. Returns (daemon pid, report directory); the daemon
        is killed at exit if the test leaves it running."""
        san = tmp_dir("sanitizer")
        self.subreaper = become_subreaper()
        note_log("cachemux -d", log)
        p = spawn([CACHEMUX, "-d"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  env=sanitizer_env(san), cwd=cwd)
        try:
            out, err = p.communicate(timeout=scaled(15))
        except subprocess.TimeoutExpired:
            kill_proc(p)
            self.fail("the -d parent did not exit")
        self.assertEqual(p.returncode, 0, (out, err))
        pid = int(read_text(pidfile).strip())
        register_pid(pid)
        self.addCleanup(unregister_pid, pid)
        self.assertNotEqual(pid, p.pid)
        self.assertTrue(_pid_alive(pid), "daemon not running")
        return pid, san

    def wait_gone(self, pid, timeout):
        """Exit status of pid (when start_daemon made us its subreaper) or
        None; fails on timeout."""
        deadline = time.time() + scaled(timeout)
        while time.time() < deadline:
            if getattr(self, "subreaper", False):
                try:
                    wpid, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    wpid, status = pid, None
                if wpid == pid:
                    return status
            elif not _pid_alive(pid):
                return None
            time.sleep(0.02)
        self.fail("process %d still running %.1fs after SIGTERM" % (pid, scaled(timeout)))

    def stop_daemon(self, pid, pidfile, san):
        """SIGTERM a daemon of start_daemon: it must exit 0 (when we can see
        its status), remove its pid file and leave no sanitizer report."""
        os.kill(pid, signal.SIGTERM)
        status = self.wait_gone(pid, 15)
        if status is not None:
            self.assertTrue(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
                            "daemon exit status %r" % status)
        self.assertFalse(os.path.exists(pidfile), "pid file left after SIGTERM")
        assert_no_sanitizer_reports(san)

    def assertClosed(self, client, timeout=2.0, msg=None):
        try:
            closed = client.is_closed(timeout)
        except AssertionError as e:
            self.fail("%s%s" % (msg + ": " if msg else "", e))
        self.assertTrue(closed, (msg + ": " if msg else "") + "connection still open after %.1fs" % timeout)

    def assertOpen(self, client, timeout=0.3, msg=None):
        self.assertTrue(client.quiet(timeout), (msg + ": " if msg else "") + "connection closed or sent bytes")


class _Result(unittest.TextTestResult):
    def __init__(self, stream, descriptions, verbosity):
        unittest.TextTestResult.__init__(self, stream, descriptions, verbosity)
        self.passed = 0
        self._t0 = 0

    def getDescription(self, test):
        return test.id().split(".", 1)[-1]

    def stopTest(self, test):
        unittest.TextTestResult.stopTest(self, test)
        if self.alarm_seconds:
            signal.alarm(self.alarm_seconds)   # covers the class fixtures that follow

    alarm_seconds = 0

    def startTest(self, test):
        del _current_logs[:]
        self._t0 = time.time()
        if self.alarm_seconds:
            signal.alarm(self.alarm_seconds)
        unittest.TextTestResult.startTest(self, test)
        self.stream.flush()

    def addSuccess(self, test):
        self.passed += 1
        unittest.TestResult.addSuccess(self, test)
        self.stream.writeln("ok (%.1fs)" % (time.time() - self._t0))
        self.stream.flush()

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self.stream.writeln("FAIL (%.1fs)" % (time.time() - self._t0))
        self._details(test, err)

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self.stream.writeln("ERROR (%.1fs)" % (time.time() - self._t0))
        self._details(test, err)

    def _details(self, test, err):
        self.stream.writeln("".join(traceback.format_exception(*err)).rstrip())
        dump_current_logs(self.stream)
        self.stream.flush()

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self.stream.writeln("skipped (%s)" % reason)
        self.stream.flush()

    def addExpectedFailure(self, test, err):
        unittest.TestResult.addExpectedFailure(self, test, err)
        self.stream.writeln("expected failure")

    def addUnexpectedSuccess(self, test):
        unittest.TestResult.addUnexpectedSuccess(self, test)
        self.stream.writeln("unexpected success")

    def printErrors(self):
        pass


class _Stream:
    def __init__(self, f):
        self.f = f

    def write(self, s):
        self.f.write(s)

    def writeln(self, s=""):
        self.f.write(s + "\n")

    def flush(self):
        self.f.flush()


class _Alarm(Exception):
    pass


def main(require=(), test_timeout=180):
    """Run the unittest tests of __main__. require: binaries without which the
    whole file is skipped (exit 77), or failed when CACHEMUX_REQUIRE_ALL=1.
    Arguments: test name substrings to select tests (like -k)."""
    sys.stdout = os.fdopen(sys.stdout.fileno(), "w", buffering=1, closefd=False)
    miss = missing_binaries(require)
    if miss:
        if REQUIRE_ALL:
            print("FAIL: missing %s and CACHEMUX_REQUIRE_ALL=1" % ", ".join(miss))
            print("0 passed, 1 failed")
            sys.exit(1)
        print("SKIP: missing %s" % ", ".join(miss))
        print("0 passed, 0 failed")
        sys.exit(SKIP)
    print("proxy under test: %s (%s)" % (PROXY_KIND, CACHEMUX if PROXY_KIND == "cachemux"
                                          else BINARIES["nutcracker"]()))
    print("temp dir: %s" % tmp_root())
    sel = [a for a in sys.argv[1:] if not a.startswith("-")]
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules["__main__"])

    def flat(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from flat(t)
            else:
                yield t

    tests = [t for t in flat(suite) if not sel or any(x in t.id() for x in sel)]

    # watchdog: a hang fails the test (or class fixture) it happens in, not the run
    def on_alarm(signum, frame):
        raise _Alarm("test took longer than %ds" % int(scaled(test_timeout)))

    signal.signal(signal.SIGALRM, on_alarm)
    _Result.alarm_seconds = int(scaled(test_timeout))
    result = _Result(_Stream(sys.stdout), True, 2)
    signal.alarm(_Result.alarm_seconds)
    try:
        unittest.TestSuite(tests)(result)
    finally:
        signal.alarm(0)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    print("")
    if skipped:
        print("(%d skipped)" % skipped)
    print("%d passed, %d failed" % (result.passed, failed))
    sys.stdout.flush()
    if failed:
        code = 1
    elif skipped and result.passed == 0:
        code = SKIP
    else:
        code = 0
    sys.exit(code)
