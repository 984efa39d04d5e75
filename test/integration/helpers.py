"""Helpers shared by the integration tests, beside harness.py (which
starts and stops processes, finds ports and owns the Client class). One
place for each: byte and protocol encoders, the corpus unescaper, the
sanitized-build check, the stats reader, the HTTP getter, the strict
Prometheus parser, raw-socket exchanges and readers of /proc, so every test
file judges the same things the same way. Look here before writing a
helper in a test file.
"""

import http.client
import json
import math
import os
import re
import socket
import time

import harness as h


def _sanitized_build(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__ubsan_handle" in data or b"__tsan_init" in data


# Time windows are asserted on the normal build only (doc/testing.md "Timing").
# CACHEMUX_SANITIZED=1 forces it; else the binary's name or its symbols say.
SANITIZED = (os.environ.get("CACHEMUX_SANITIZED", "") not in ("", "0") or
             any(s in h.CACHEMUX.lower() for s in ("asan", "ubsan", "tsan", "msan")) or
             _sanitized_build(h.CACHEMUX))


# --------------------------------------------------------------------------
# bytes and protocol encoders

CRLF = b"\r\n"


def B(x):
    """bytes of x: bytes as they are, an int in decimal, anything else as
    its str in UTF-8."""
    if isinstance(x, bytes):
        return x
    if isinstance(x, int):
        return b"%d" % x
    return str(x).encode()


def bulk(v):
    """A RESP bulk string ($-1, the nil bulk, for None)."""
    if v is None:
        return b"$-1\r\n"
    v = B(v)
    return b"$%d\r\n%s\r\n" % (len(v), v)


def mc_store(key, value, flags=0, exp=0, cmd="set", noreply=False, cas=None):
    """A memcached storage request: its line and data block."""
    key, value = B(key), B(value)
    line = b"%s %s %d %d %d" % (B(cmd), key, flags, exp, len(value))
    if cas is not None:
        line += b" %d" % cas
    if noreply:
        line += b" noreply"
    return line + CRLF + value + CRLF


def mc_values(items, cas=False):
    """The retrieval reply for [(key, flags, value[, cas])], END included."""
    out = b""
    for it in items:
        k, f, v = B(it[0]), it[1], B(it[2])
        out += b"VALUE %s %d %d" % (k, f, len(v))
        if cas:
            out += b" %d" % it[3]
        out += CRLF + v + CRLF
    return out + b"END\r\n"


def mc_value(key, value, flags=0):
    """The reply to a get of one key that holds value."""
    return mc_values([(key, flags, value)])


def spread_keys(prefix, n):
    """n keys starting with prefix that spread over a pool's servers: fnv1a_64
    mixes similar short keys poorly, so each ends in 8 hex digits of MD5."""
    import hashlib
    return ["%s%d:%s" % (prefix, i, hashlib.md5(b"%s%d" % (B(prefix), i)).hexdigest()[:8])
            for i in range(n)]


def unescape(line):
    """A corpus line (test/integration/corpus_*.txt) as bytes: \\r, \\n,
    \\\\ and \\xHH are the escapes."""
    out = bytearray()
    i = 0
    while i < len(line):
        c = line[i]
        if c == 0x5c:  # backslash
            e = line[i + 1:i + 2]
            if e == b"r":
                out += b"\r"
            elif e == b"n":
                out += b"\n"
            elif e == b"\\":
                out += b"\\"
            elif e == b"x":
                out.append(int(line[i + 2:i + 4], 16))
                i += 2
            else:
                raise ValueError("bad escape in corpus: %r" % line[i:i + 4])
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


# --------------------------------------------------------------------------
# logs

# cachemux's line for each accepted client, at log level 6 (info)
ACCEPT_RE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO (w\d+) "
                       r"accepted client 127\.0\.0\.1:(\d+) on pool (\S+)$")


def accept_workers(px, ports, pool, timeout=5.0):
    """{local port: worker tag} from cachemux's `accepted client` log lines
    (waits until every port has its line, or timeout)."""
    ports = set(ports)
    deadline = time.time() + h.scaled(timeout)
    while True:
        found = {}
        for line in px.log_text().splitlines():
            m = ACCEPT_RE.match(line)
            if m and m.group(3) == pool and int(m.group(2)) in ports:
                found[int(m.group(2))] = m.group(1)
        if len(found) == len(ports) or time.time() > deadline:
            return found
        time.sleep(0.05)


def per_worker(found):
    """{worker tag: clients} of accept_workers' answer."""
    out = {}
    for tag in found.values():
        out[tag] = out.get(tag, 0) + 1
    return out


# --------------------------------------------------------------------------
# client threads

def start_threads(fn, n):
    """n daemon threads running fn(0) .. fn(n - 1), started."""
    import threading
    threads = [threading.Thread(target=fn, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def join_threads(threads, timeout):
    """Join every thread, waiting up to timeout (scaled) for each; the ones
    still running."""
    for t in threads:
        t.join(h.scaled(timeout))
    return [t for t in threads if t.is_alive()]


# --------------------------------------------------------------------------
# raw sockets

def recv_raw(sock, n, timeout):
    """Up to n bytes: (data, "ok" | "eof" | "reset" | "timeout")."""
    deadline = time.time() + h.scaled(timeout)
    data = b""
    while len(data) < n:
        left = deadline - time.time()
        if left <= 0:
            return data, "timeout"
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return data, "timeout"
        except ConnectionResetError:
            return data, "reset"
        if not d:
            return data, "eof"
        data += d
    return data, "ok"


def exchange(port, data, timeout=5.0, shut=True):
    """Connect, send data, send EOF (shut), read until the peer closes.
    Returns (reply bytes, how: "eof" or "reset"). Raises socket.timeout if
    the conn is neither closed nor finished within timeout."""
    s = socket.create_connection((h.HOST, port), timeout=h.scaled(timeout))
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:     # closed (reset) by the proxy before all was sent
            pass
        out = bytearray()
        deadline = time.time() + h.scaled(timeout)
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise socket.timeout("no close within %.1fs; got %r" % (h.scaled(timeout), bytes(out[:200])))
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                return bytes(out), "reset"
            if not d:
                return bytes(out), "eof"
            out += d
    finally:
        s.close()


def redis_info_int(backend, field, section="stats"):
    """An integer field of redis-server backend's INFO section."""
    with backend.client() as c:
        c.send(b"INFO %s\r\n" % B(section))
        body = c.read_resp(1)[0]
    for line in body.decode().split("\r\n"):
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError("no %s in redis INFO" % field)


def memcached_conn_ports(backend):
    """Remote ports of the TCP connections memcached backend lists in
    `stats conns`."""
    with backend.client() as c:
        r = c.request(b"stats conns\r\n")
    return {int(m.group(1)) for m in re.finditer(rb"STAT \d+:addr tcp:[0-9.]+:(\d+)\r\n", r)}


# --------------------------------------------------------------------------
# /proc

def proc_tcp_ports(pid):
    """Local ports of the TCP sockets pid holds (connected or listening)."""
    inodes = h.socket_inodes(pid)
    return {lp for lp, rp, st, ino in h.tcp_sockets() if ino in inodes}


def server_conns(pid, port, peer_port=None):
    """Connections pid holds whose local port is port (the listener
    excluded), only the one from peer_port if given. Counted by inode: a
    /proc/net/tcp read while connections come and go can list one twice."""
    inodes = h.socket_inodes(pid)
    return len({ino for lp, rp, st, ino in h.tcp_sockets()
                if ino in inodes and st != h.TCP_LISTEN and lp == port and
                (peer_port is None or rp == peer_port)})


def cpu_seconds(pid):
    """utime + stime of pid (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


# --------------------------------------------------------------------------
# stats port, HTTP

def stats_raw(port, timeout=5):
    """The bytes of one stats document: connect, send nothing, read to EOF."""
    s = socket.create_connection((h.HOST, port), timeout=h.scaled(timeout))
    try:
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    finally:
        s.close()


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError("duplicate JSON keys %s" % dup)
    return dict(pairs)      # insertion order kept


def stats_json(port, timeout=5):
    """The stats document, parsed; duplicate keys are an error."""
    raw = stats_raw(port, timeout)
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except ValueError as e:
        raise AssertionError("stats document is not valid JSON (%s): %r" % (e, raw[:500]))


def http_get(port, path, timeout=5):
    """(status, content-type, body bytes) of GET path."""
    c = http.client.HTTPConnection(h.HOST, port, timeout=h.scaled(timeout))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


# --------------------------------------------------------------------------
# a strict parser of the Prometheus text exposition format 0.0.4

class PromError(AssertionError):
    pass


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_NAME_RE = re.compile(_NAME + r"$")
_SAMPLE_RE = re.compile(r"(" + _NAME + r")(\{.*\})? (\S+)( -?[0-9]+)?$")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _parse_float(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not _FLOAT_RE.match(s):
        raise PromError("%s: bad value %r" % (where, s))
    return float(s)


def _parse_labels(text, where):
    """text is '{...}'; returns a dict. Values use the \\\\ \\" \\n escapes."""
    labels = {}
    i, n = 1, len(text) - 1
    while i < n:
        m = re.compile(_LABEL).match(text, i)
        if not m:
            raise PromError("%s: bad label name at %r" % (where, text[i:]))
        name = m.group(0)
        i = m.end()
        if text[i:i + 2] != '="':
            raise PromError("%s: expected =\" after label %s" % (where, name))
        i += 2
        val = []
        while True:
            if i >= n:
                raise PromError("%s: unterminated label value" % where)
            ch = text[i]
            if ch == "\\":
                e = text[i + 1:i + 2]
                if e not in ("\\", '"', "n"):
                    raise PromError("%s: bad escape \\%s in label value" % (where, e))
                val.append("\n" if e == "n" else e)
                i += 2
            elif ch == '"':
                i += 1
                break
            elif ch == "\n":
                raise PromError("%s: newline in label value" % where)
            else:
                val.append(ch)
                i += 1
        if name in labels:
            raise PromError("%s: duplicate label %s" % (where, name))
        if name.startswith("__"):
            raise PromError("%s: reserved label name %s" % (where, name))
        labels[name] = "".join(val)
        if i < n:
            if text[i] != ",":
                raise PromError("%s: expected , between labels at %r" % (where, text[i:]))
            i += 1
    return labels


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []       # (sample name, labels dict, value)


def parse_prometheus(text):
    """{family name: Family}. Raises PromError on anything the 0.0.4 text
    format does not allow, on a sample whose family has no HELP and TYPE
    declared before it, on families that are not contiguous, on duplicate
    series, and on histograms that are not well formed."""
    if not text.endswith("\n"):
        raise PromError("exposition does not end with a newline")
    fams = {}
    order = []
    current = None
    closed = set()

    def family(name, where):
        nonlocal current
        if name in closed:
            raise PromError("%s: lines of %s are not contiguous" % (where, name))
        if current is not None and current != name:
            closed.add(current)
        current = name
        if name not in fams:
            fams[name] = Family(name)
            order.append(name)
        return fams[name]

    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (lineno, line[:120])
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _NAME_RE.match(name):
                    raise PromError("%s: bad metric name" % where)
                f = family(name, where)
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if f.help is not None:
                        raise PromError("%s: second HELP for %s" % (where, name))
                    if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                        raise PromError("%s: bad escape in HELP" % where)
                    f.help = rest
                else:
                    if f.type is not None:
                        raise PromError("%s: second TYPE for %s" % (where, name))
                    if f.samples:
                        raise PromError("%s: TYPE after samples of %s" % (where, name))
                    if rest not in _TYPES:
                        raise PromError("%s: unknown type %r" % (where, rest))
                    f.type = rest
            continue      # any other comment
        m = _SAMPLE_RE.match(line)
        if not m:
            raise PromError("%s: not a sample line" % where)
        sname, ltext, vtext = m.group(1), m.group(2), m.group(3)
        labels = _parse_labels(ltext, where) if ltext else {}
        value = _parse_float(vtext, where)
        fname = sname
        for suffix in ("_bucket", "_sum", "_count"):
            base = sname[:-len(suffix)]
            if sname.endswith(suffix) and base in fams and fams[base].type == "histogram":
                fname = base
        if fname not in fams or fams[fname].type is None:
            raise PromError("%s: sample of %s without a TYPE line before it" % (where, sname))
        f = family(fname, where)
        if f.help is None:
            raise PromError("%s: %s has no HELP" % (where, fname))
        if f.type == "histogram":
            if sname == fname:
                raise PromError("%s: plain sample in histogram %s" % (where, fname))
            if sname.endswith("_bucket") != ("le" in labels):
                raise PromError("%s: le label only (and always) on _bucket samples" % where)
        elif "le" in labels and f.type != "untyped":
            raise PromError("%s: le label on a %s" % (where, f.type))
        if f.type in ("counter", "histogram") and value < 0:
            raise PromError("%s: negative %s value" % (where, f.type))
        if f.type == "counter" and not sname.endswith("_total"):
            raise PromError("%s: counter %s does not end in _total" % (where, sname))
        f.samples.append((sname, labels, value))

    for name in order:
        f = fams[name]
        if f.type is None:
            raise PromError("%s has HELP but no TYPE" % name)
        seen = set()
        for sname, labels, _ in f.samples:
            key = (sname, tuple(sorted(labels.items())))
            if key in seen:
                raise PromError("duplicate series %s%s" % (sname, labels))
            seen.add(key)
        if f.type == "histogram":
            _check_histogram(f)
    return fams


def _check_histogram(f):
    groups = {}
    for sname, labels, value in f.samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname == f.name + "_bucket":
            g["buckets"].append((labels["le"], value))
        elif sname == f.name + "_sum":
            g["sum"] = value
        else:
            g["count"] = value
    for key, g in groups.items():
        what = "%s%s" % (f.name, dict(key))
        if not g["buckets"] or g["sum"] is None or g["count"] is None:
            raise PromError("%s: needs buckets, _sum and _count" % what)
        les = [_parse_float(le, what) for le, _ in g["buckets"]]
        if les[-1] != math.inf or g["buckets"][-1][0] != "+Inf":
            raise PromError("%s: last bucket is not le=\"+Inf\"" % what)
        if any(not a < b for a, b in zip(les, les[1:])):
            raise PromError("%s: le values not increasing: %s" % (what, les))
        counts = [c for _, c in g["buckets"]]
        if any(c != int(c) for c in counts) or g["count"] != int(g["count"]):
            raise PromError("%s: non-integer bucket counts" % what)
        if any(a > b for a, b in zip(counts, counts[1:])):
            raise PromError("%s: buckets not cumulative: %s" % (what, counts))
        if g["count"] != counts[-1]:
            raise PromError("%s: _count %s != +Inf bucket %s" % (what, g["count"], counts[-1]))
        if g["sum"] < 0 or math.isnan(g["sum"]):
            raise PromError("%s: bad _sum %s" % (what, g["sum"]))


def metric(fams, name, **labels):
    """Value of the one sample name{labels} (all labels given)."""
    fname = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in fams:
            fname = name[:-len(suffix)]
    f = fams.get(fname)
    if f is None:
        raise AssertionError("no metric family %s" % name)
    hits = [v for s, l, v in f.samples if s == name and l == labels]
    if len(hits) != 1:
        raise AssertionError("%d samples %s%s" % (len(hits), name, labels))
    return hits[0]


def histogram(fams, name, **labels):
    """({le float: cumulative count}, sum, count) of one histogram series."""
    f = fams[name]
    buckets = {}
    for s, l, v in f.samples:
        if s == name + "_bucket" and {k: x for k, x in l.items() if k != "le"} == labels:
            buckets[_parse_float(l["le"], name)] = v
    if not buckets:
        raise AssertionError("no histogram %s%s" % (name, labels))
    return buckets, metric(fams, name + "_sum", **labels), metric(fams, name + "_count", **labels)


def samples(fams):
    """{'name{labels}': value} of every sample, keyed as it is written (labels
    in their order, without escapes)."""
    out = {}
    for f in fams.values():
        for sname, labels, value in f.samples:
            lt = ",".join('%s="%s"' % kv for kv in labels.items())
            out[sname + ("{%s}" % lt if labels else "")] = value
    return out


def scrape(port):
    status, ctype, body = http_get(port, "/metrics")
    if status != 200:
        raise AssertionError("GET /metrics: %d %r" % (status, body[:200]))
    return ctype, parse_prometheus(body.decode("utf-8"))


def wait_for(pred, timeout, what, interval=0.02):
    deadline = time.time() + h.scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (h.scaled(timeout), what))
        time.sleep(interval)
