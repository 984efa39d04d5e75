"""A scripted backend for fault-injection tests: a memcached (ASCII) or Redis
(RESP) server in this process (threads) whose behaviour is chosen by the text
of the keys a request carries, so a test needs no side channel to make one
request fail in a chosen way.

    b = Scripted("redis", name="s1").start()
    pool = harness.Pool("rd", [b], redis=True)

It binds 127.0.0.1 port 0 itself and keeps the socket (no port race), and
offers what harness.Backend does: .port, .server_line(), start(), stop(),
kill(), .alive. It counts accepted connections (.connections), knows how many
are open (.open_connections()), and records every complete request received
(.received: raw bytes; .commands: the request split into words: RESP
arguments, or the memcached command line's tokens).

Per-key behaviour
-----------------
A request's keys (Redis: the key arguments of GET/SET/DEL/EXISTS/UNLINK/
TOUCH/MGET/MSET and the first argument of any other command; memcached: every
key of get/gets/gat/gats, the key of the other commands) are looked at in
order; the first one that names a directive decides. A key may start with a
hash tag `{...}`, which is ignored, and may carry extra `:fields` after the
directive's own, also ignored (to vary a key until it lands on a server).

normal keys
    answered like a real backend, from an in-memory dict (.data, key bytes ->
    value bytes; memcached flags in .flags): Redis GET SET DEL UNLINK EXISTS
    TOUCH MGET MSET PING ECHO AUTH SELECT QUIT HELLO INFO (RESP3 after HELLO 3:
    nulls "_", INFO verbatim), memcached get gets gat gats
    set add replace append prepend cas delete touch incr decr version quit.
    Others get `-ERR unknown command` / `ERROR`.
cut:NAME:N
    send the first N bytes of the representative reply NAME (below), then
    close the connection. N >= the reply's length sends all of it, then
    closes. reply(protocol, NAME, keys) gives the whole reply's bytes.
close
    close the connection without replying (the same as cut:NAME:0).
stall:MS / stall:inf
    wait MS milliseconds, then answer the request as if the key were a normal
    one; stall:inf never answers (the connection stays open until the peer
    closes it or the backend stops). Requests that arrive meanwhile on the
    connection are answered after it, in order (as a real backend does).
garbage[:KIND[:MS]]
    after MS ms (default 0), send bytes that are not a valid reply, and keep
    the connection open. KIND: type (default; a line of an unknown type),
    len (a non-numeric length), neg (a length below -1).
push[:MS]
    Redis: send a RESP3 push message (PUSH_MESSAGE) right before the normal
    reply (MS 0, the default: in the same write), or MS ms before it.
unsolicited[:MS]
    answer normally, then send one more reply that nobody asked for: in the
    same write when MS is 0 (default), else MS ms later. The extra reply is
    EXTRA_REPLY[protocol] (a plausible answer to a GET / get).
bigint[:max|:min]
    Redis: answer any command with the integer 9223372036854775807 (max,
    default) or -9223372036854775808 (min). memcached: incr/decr answer
    18446744073709551615; other commands as for a normal key.
endless:KIND
    stream one reply that never ends, until the peer closes or the backend
    stops: array (Redis `*2147483647` then bulk elements forever), values
    (memcached VALUE blocks forever, never END), bulk (Redis `$536870912`,
    the largest bulk Redis sends, then its bytes), value (memcached one VALUE
    of 1073741824 bytes, the largest item memcached stores, then its bytes),
    line (a status / SERVER_ERROR line that never ends). bulk and value end
    (the connection stays open, silent) if the peer reads them whole.
    endless alone: array (Redis), values (memcached).

Representative replies (REPLIES[protocol] lists the names)
-----------------------------------------------------------
Redis (the same bytes whatever the request):
    bulk $5 hello; empty $0; nil $-1; int :42; error -ERR boom; status +OK;
    nested *2 [*2 [$1 a, :1], $3 xyz]; nilarray *-1; mget (an MGET part for
    three keys) *3 [$1 a, $-1, $3 xyz]; large a bulk of 100,000 bytes (with
    CR LF inside).
memcached (VALUE lines carry the request's keys k0, k1):
    value VALUE k0 0 5 hello END; multi VALUE k0 (hello) VALUE k1 (xyz) END
    (k1 = k0 for a one-key request); end END; stored STORED; server_error
    SERVER_ERROR x; large VALUE k0 of 100,000 bytes (with CR LF inside) END.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import B, bulk  # noqa: E402

REDIS = "redis"
MEMCACHED = "memcached"

LARGE_SIZE = 100 * 1000
# (CR LF inside the large values: a reply is framed by its lengths, never by
# searching for CR LF)
_PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ-_\r\n"
LARGE_VALUE = (_PATTERN * (LARGE_SIZE // len(_PATTERN) + 1))[:LARGE_SIZE]

# Redis representative replies (fixed bytes, whatever the request).
REDIS_REPLIES = {
    "bulk": b"$5\r\nhello\r\n",
    "empty": b"$0\r\n\r\n",
    "nil": b"$-1\r\n",
    "int": b":42\r\n",
    "error": b"-ERR boom\r\n",
    "status": b"+OK\r\n",
    "nested": b"*2\r\n*2\r\n$1\r\na\r\n:1\r\n$3\r\nxyz\r\n",
    "nilarray": b"*-1\r\n",
    # an MGET part for three keys: a value, a miss, a value
    "mget": b"*3\r\n$1\r\na\r\n$-1\r\n$3\r\nxyz\r\n",
    "large": b"$%d\r\n%s\r\n" % (LARGE_SIZE, LARGE_VALUE),
}

# memcached representative replies: VALUE lines carry the request's keys.
MC_REPLIES = ("value", "multi", "end", "stored", "server_error", "large")

REPLIES = {REDIS: tuple(REDIS_REPLIES), MEMCACHED: MC_REPLIES}

# What a Redis 6+ server sends a RESP3 connection out of band (a pub/sub
# message; invalidations look alike).
PUSH_MESSAGE = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"

EXTRA_REPLY = {REDIS: b"$5\r\nextra\r\n", MEMCACHED: b"VALUE extra 0 5\r\nextra\r\nEND\r\n"}

# endless:bulk and endless:value declare the largest value a backend can
# send (Redis' proto-max-bulk-len, memcached's largest item size, -I 1024m),
# then never finish it
ENDLESS_BULK = 512 * 1024 * 1024
ENDLESS_VALUE = 1024 * 1024 * 1024

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


def reply(protocol, name, keys=()):
    """The bytes of representative reply `name`. memcached's VALUE lines
    carry the request's keys: `value` and `large` the first key, `multi` the
    first two (the first twice when there is one): VALUE k0 (hello), VALUE k1
    (xyz), END."""
    if protocol == REDIS:
        return REDIS_REPLIES[name]
    keys = [B(k) for k in keys] or [b"k"]
    k0 = keys[0]
    k1 = keys[1] if len(keys) > 1 else k0
    if name == "value":
        return b"VALUE %s 0 5\r\nhello\r\nEND\r\n" % k0
    if name == "multi":
        return b"VALUE %s 0 5\r\nhello\r\nVALUE %s 0 3\r\nxyz\r\nEND\r\n" % (k0, k1)
    if name == "end":
        return b"END\r\n"
    if name == "stored":
        return b"STORED\r\n"
    if name == "server_error":
        return b"SERVER_ERROR x\r\n"
    if name == "large":
        return b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k0, LARGE_SIZE, LARGE_VALUE)
    raise KeyError(name)


def directive(key):
    """(name, [fields]) of a key's directive, or None for a normal key."""
    k = B(key)
    if k.startswith(b"{"):
        e = k.find(b"}")
        if e > 0:
            k = k[e + 1:]
    parts = k.split(b":")
    name = parts[0]
    if name in (b"cut", b"close", b"stall", b"garbage", b"unsolicited", b"bigint", b"endless",
                b"push"):
        return name.decode(), [p.decode("latin-1") for p in parts[1:]]
    return None


def parse_resp_request(buf):
    """(args, end) of the complete request at the start of buf (multibulk or
    inline), or None if incomplete."""
    if buf[:1] == b"*":
        try:
            end = h.resp_reply_end(buf)
        except ValueError:
            end = -1
        if end is None:
            return None
        if end < 0:
            nl = buf.find(b"\r\n")
            return [bytes(buf[:nl])], nl + 2
        nl = buf.find(b"\r\n")
        n = int(buf[1:nl])
        args = []
        p = nl + 2
        for _ in range(max(n, 0)):
            q = buf.find(b"\r\n", p)
            ln = int(buf[p + 1:q])
            args.append(bytes(buf[q + 2:q + 2 + ln]))
            p = q + 2 + ln + 2
        return args, end
    nl = buf.find(b"\n")
    if nl < 0:
        return None
    return bytes(buf[:nl]).rstrip(b"\r").split(), nl + 1


_MC_RETRIEVAL = (b"get", b"gets", b"gat", b"gats")
_MC_STORAGE = (b"set", b"add", b"replace", b"append", b"prepend", b"cas")


class _Close(Exception):
    """End this connection's thread (close the socket)."""


class Scripted(h.ThreadedBackend):
    """A scripted backend speaking `protocol` ("redis" or "memcached"); see
    the module's docstring for the per-key behaviour."""

    CHUNK = 64 * 1024

    def __init__(self, protocol=REDIS, name=None, weight=1, data=None):
        if protocol not in (REDIS, MEMCACHED):
            raise ValueError("protocol must be %r or %r" % (REDIS, MEMCACHED))
        h.ThreadedBackend.__init__(self, name, weight)
        self.protocol = protocol
        self.kind = "scripted-" + protocol
        self.data = {B(k): B(v) for k, v in (data or {}).items()}
        self.flags = {}
        self.resp3 = set()  # sockets that said HELLO 3
        self.received = []          # raw bytes of every complete request
        self.commands = []          # the same, split into words
        self.streamed = 0           # bytes sent by endless replies
        self._open = set()
        self._cond = threading.Condition()

    # ---- process-like interface (harness.ThreadedBackend) -----------------

    def _drop_conns(self):
        self.shutdown_conns()

    def shutdown_conns(self):
        """Shut down every open connection (the backend closes them)."""
        with self._cond:
            conns = list(self._open)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- observation -------------------------------------------------------

    def open_connections(self):
        with self._cond:
            return len(self._open)

    def wait_received(self, n, timeout=2.0):
        """Wait until at least n requests were received; True if they were."""
        deadline = time.time() + h.scaled(timeout)
        with self._cond:
            while len(self.received) < n:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def wait_closed(self, timeout=5.0):
        """Wait until no connection is open; True if none is."""
        deadline = time.time() + h.scaled(timeout)
        with self._cond:
            while self._open:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # ---- serving -----------------------------------------------------------

    def _accepted(self, s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._cond:
            self.connections += 1
            self._open.add(s)
            self._cond.notify_all()

    def _conn(self, s):
        buf = bytearray()
        s.settimeout(0.1)
        try:
            while not self._stop:
                while True:
                    got = self._next_request(buf)
                    if got is None:
                        break
                    raw, words = got
                    with self._cond:
                        self.received.append(raw)
                        self.commands.append(words)
                        self._cond.notify_all()
                    self._handle(s, buf, words, raw)
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return
                buf += d
        except (_Close, OSError):
            pass
        finally:
            self._close(s)

    def _close(self, s):
        try:
            s.close()
        except OSError:
            pass
        with self._cond:
            self._open.discard(s)
            self._cond.notify_all()

    def _next_request(self, buf):
        if not buf:
            return None
        if self.protocol == REDIS:
            got = parse_resp_request(buf)
            if got is None:
                return None
            words, end = got
        else:
            end = h.mc_request_end(bytes(buf))
            if end is None:
                return None
            nl = buf.find(b"\r\n")
            words = bytes(buf[:nl]).split()
        raw = bytes(buf[:end])
        del buf[:end]
        return raw, words

    def _keys(self, words, raw):
        if not words:
            return []
        cmd = words[0].lower()
        if self.protocol == REDIS:
            if cmd in (b"get", b"del", b"unlink", b"exists", b"touch", b"mget"):
                return words[1:]
            if cmd == b"mset":
                return words[1::2]
            return words[1:2]
        if cmd in (b"get", b"gets"):
            return words[1:]
        if cmd in (b"gat", b"gats"):
            return words[2:]
        return words[1:2]

    # ---- replies -----------------------------------------------------------

    def _send(self, s, data):
        s.sendall(data)

    def _drain(self, s):
        """Read what the peer sent and we did not handle, so that closing
        sends FIN, not RST (an RST may destroy the bytes we sent first)."""
        s.setblocking(False)
        try:
            while True:
                try:
                    if not s.recv(65536):
                        break
                except (BlockingIOError, InterruptedError):
                    break
        except OSError:
            pass

    def _hangup(self, s):
        self._drain(s)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        raise _Close()

    def _sleep(self, s, buf, seconds):
        """Wait (forever when seconds is None) while reading what the peer
        sends; _Close when it closes or the backend stops."""
        deadline = None if seconds is None else time.time() + seconds
        while not self._stop:
            left = 0.1 if deadline is None else min(0.1, deadline - time.time())
            if left <= 0:
                return
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                raise _Close()
            buf += d
            # record requests that arrive meanwhile (answered later, in order)
        raise _Close()

    def _handle(self, s, buf, words, raw):
        keys = self._keys(words, raw)
        for k in keys:
            d = directive(k)
            if d is not None:
                return self._directive(s, buf, words, raw, keys, d)
        self._send(s, self._normal(words, raw, s))

    def _directive(self, s, buf, words, raw, keys, d):
        name, f = d
        proto = self.protocol
        if name == "cut" or name == "close":
            n = int(f[1]) if name == "cut" else 0
            data = reply(proto, f[0], keys) if name == "cut" else b""
            if n > 0:
                self._send(s, data[:n])
            self._hangup(s)
        if name == "stall":
            self._sleep(s, buf, None if f[0] == "inf" else int(f[0]) / 1000.0)
            s.settimeout(0.1)
            self._send(s, self._normal(words, raw, s))
            return
        if name == "garbage":
            kind = f[0] if f else "type"
            if len(f) > 1 and int(f[1]) > 0:
                self._sleep(s, buf, int(f[1]) / 1000.0)
                s.settimeout(0.1)
            self._send(s, self._garbage(kind, keys))
            return
        if name == "unsolicited":
            ms = int(f[0]) if f else 0
            normal = self._normal(words, raw, s)
            if ms <= 0:
                self._send(s, normal + EXTRA_REPLY[proto])
                return
            self._send(s, normal)
            self._sleep(s, buf, ms / 1000.0)
            s.settimeout(0.1)
            self._send(s, EXTRA_REPLY[proto])
            return
        if name == "push":
            ms = int(f[0]) if f else 0
            if ms > 0:
                self._send(s, PUSH_MESSAGE)
                self._sleep(s, buf, ms / 1000.0)
                s.settimeout(0.1)
                self._send(s, self._normal(words, raw, s))
            else:
                self._send(s, PUSH_MESSAGE + self._normal(words, raw, s))
            return
        if name == "bigint":
            v = INT64_MIN if f and f[0] == "min" else INT64_MAX
            if proto == REDIS:
                self._send(s, b":%d\r\n" % v)
            elif words and words[0].lower() in (b"incr", b"decr"):
                self._send(s, b"18446744073709551615\r\n")
            else:
                self._send(s, self._normal(words, raw, s))
            return
        if name == "endless":
            self._endless(s, f[0] if f else ("array" if proto == REDIS else "values"), keys)
        raise ValueError("unknown directive %r" % name)

    def _garbage(self, kind, keys):
        k0 = B(keys[0]) if keys else b"k"
        if self.protocol == REDIS:
            return {"type": b"?what is this\r\n", "len": b"$abc\r\nhello\r\n",
                    "neg": b"$-5\r\n"}[kind]
        return {"type": b"WHAT IS THIS\r\n", "len": b"VALUE %s 0 abc\r\nhello\r\nEND\r\n" % k0,
                "neg": b"VALUE %s 0 -5\r\nEND\r\n" % k0}[kind]

    def _endless(self, s, kind, keys):
        k0 = B(keys[0]) if keys else b"k"
        body = None         # bytes of the declared body (bulk, value), else endless
        if kind == "array":
            head, unit = b"*2147483647\r\n", b"$5\r\nhello\r\n"
        elif kind == "bulk":
            head, unit, body = b"$%d\r\n" % ENDLESS_BULK, LARGE_VALUE[:1000], ENDLESS_BULK
        elif kind == "values":
            head, unit = b"", b"VALUE %s 0 5\r\nhello\r\n" % k0
        elif kind == "value":
            head, unit, body = b"VALUE %s 0 %d\r\n" % (k0, ENDLESS_VALUE), LARGE_VALUE[:1000], ENDLESS_VALUE
        elif kind == "line":
            head = b"+" if self.protocol == REDIS else b"SERVER_ERROR "
            unit = b"x" * 1000
        else:
            raise ValueError("unknown endless kind %r" % kind)
        chunk = unit * max(1, self.CHUNK // len(unit))
        # blocking: stop() and the peer's close end a blocked sendall
        s.settimeout(None)
        self._send(s, head)
        sent = 0
        while not self._stop:
            if body is not None and sent + len(chunk) > body:
                s.sendall(chunk[:body - sent])
                self.streamed += body - sent
                self._sleep(s, bytearray(), None)    # the value's end never comes
            s.sendall(chunk)
            sent += len(chunk)
            self.streamed += len(chunk)
        raise _Close()

    def _normal(self, words, raw, s):
        if self.protocol == REDIS:
            return self._redis(words, s)
        return self._mc(words, raw, s)

    def _redis(self, a, s):
        if not a:
            return b"-ERR empty command\r\n"
        cmd = a[0].lower()
        d = self.data
        if cmd == b"ping":
            return bulk(a[1]) if len(a) > 1 else b"+PONG\r\n"
        if cmd == b"echo" and len(a) == 2:
            return bulk(a[1])
        if cmd in (b"auth", b"select"):
            return b"+OK\r\n"
        if cmd == b"info":
            text = b"# Server\r\nredis_version:7.0.15\r\n"
            if s in self.resp3:
                return b"=%d\r\ntxt:%s\r\n" % (len(text) + 4, text)
            return bulk(text)
        if cmd == b"hello" and len(a) >= 2 and a[1] in (b"2", b"3"):
            # a connection that says HELLO 3 gets RESP3 nulls from then on
            if a[1] == b"3":
                self.resp3.add(s)
            else:
                self.resp3.discard(s)
            fields = [bulk(b"server"), bulk(b"redis"), bulk(b"version"), bulk(b"7.0.15"),
                      bulk(b"proto"), b":" + a[1] + b"\r\n", bulk(b"id"), b":1\r\n",
                      bulk(b"mode"), bulk(b"standalone"), bulk(b"role"), bulk(b"master"),
                      bulk(b"modules"), b"*0\r\n"]
            return (b"%7\r\n" if a[1] == b"3" else b"*14\r\n") + b"".join(fields)
        if cmd == b"quit":
            self._send(s, b"+OK\r\n")
            self._hangup(s)
        if cmd == b"get" and len(a) == 2:
            if a[1] not in d and s in self.resp3:
                return b"_\r\n"
            return bulk(d.get(a[1]))
        if cmd == b"set" and len(a) >= 3:
            d[a[1]] = a[2]
            return b"+OK\r\n"
        if cmd in (b"del", b"unlink") and len(a) >= 2:
            n = 0
            for k in a[1:]:
                if d.pop(k, None) is not None:
                    n += 1
            return b":%d\r\n" % n
        if cmd in (b"exists", b"touch") and len(a) >= 2:
            return b":%d\r\n" % sum(1 for k in a[1:] if k in d)
        if cmd == b"mget" and len(a) >= 2:
            return b"*%d\r\n" % (len(a) - 1) + b"".join(bulk(d.get(k)) for k in a[1:])
        if cmd == b"mset" and len(a) >= 3 and len(a) % 2 == 1:
            for i in range(1, len(a), 2):
                d[a[i]] = a[i + 1]
            return b"+OK\r\n"
        return b"-ERR unknown command '%s'\r\n" % a[0][:100]

    def _mc(self, t, raw, s):
        if not t:
            return b"ERROR\r\n"
        cmd = t[0]
        d = self.data
        noreply = t[-1] == b"noreply"
        out = None
        if cmd in _MC_RETRIEVAL:
            keys = t[1:] if cmd in (b"get", b"gets") else t[2:]
            out = b""
            for k in keys:
                if k in d:
                    v = d[k]
                    out += b"VALUE %s %d %d%s\r\n%s\r\n" % (
                        k, self.flags.get(k, 0), len(v),
                        b" %d" % (abs(hash(v)) % 1000000) if cmd in (b"gets", b"gats") else b"", v)
            out += b"END\r\n"
        elif cmd in _MC_STORAGE and len(t) >= 5:
            k = t[1]
            nl = raw.find(b"\r\n")
            v = raw[nl + 2:-2]
            if cmd == b"add" and k in d or cmd in (b"replace", b"append", b"prepend") and k not in d:
                out = b"NOT_STORED\r\n"
            else:
                if cmd == b"append":
                    v = d[k] + v
                elif cmd == b"prepend":
                    v = v + d[k]
                else:
                    self.flags[k] = int(t[2])
                d[k] = v
                out = b"STORED\r\n"
        elif cmd == b"delete" and len(t) >= 2:
            out = b"DELETED\r\n" if d.pop(t[1], None) is not None else b"NOT_FOUND\r\n"
        elif cmd == b"touch" and len(t) >= 3:
            out = b"TOUCHED\r\n" if t[1] in d else b"NOT_FOUND\r\n"
        elif cmd in (b"incr", b"decr") and len(t) >= 3:
            if t[1] not in d:
                out = b"NOT_FOUND\r\n"
            else:
                try:
                    v = int(d[t[1]])
                    v = (v + int(t[2])) % (1 << 64) if cmd == b"incr" else max(0, v - int(t[2]))
                    d[t[1]] = b"%d" % v
                    out = b"%d\r\n" % v
                except ValueError:
                    out = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        elif cmd == b"version":
            out = b"VERSION scripted\r\n"
        elif cmd == b"quit":
            self._hangup(s)
        else:
            out = b"ERROR\r\n"
        return b"" if noreply else out
