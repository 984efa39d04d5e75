#!/bin/sh
# The Debian package, end to end: build it from the release tarball, install
# it, run what it installed, and purge it leaving nothing behind.
#
#   sh test/test-deb.sh [TARBALL]
#
# TARBALL defaults to build/gcc/cachemux-VERSION.tar.gz (what make distcheck
# leaves; made with make dist when missing). As root on Debian, with the
# packages test/deps.sh installs. It installs and purges the package on this
# machine, so it refuses to run when cachemux is installed by other means.
#
# The package build skips the test suite (DEB_BUILD_OPTIONS=nocheck): the
# caller has just run it on the same sources.
#
# Steps: dpkg-buildpackage -b in build/deb; dpkg -i; the files are where
# Debian wants them (conffile, unit, logrotate, man pages, examples,
# monitoring bundle) and the man pages render without a warning;
# cachemux -t on the default configuration; the installed binary, as the
# cachemux user as the unit runs it, serves a memcached pool, writes its
# log and pid file where the unit allows, and logrotate rotates the log
# (SIGUSR1, no copytruncate); test_systemd.py against the installed binary
# (the libsystemd notify path); systemd-analyze verify on the installed
# unit; dpkg --purge; then no file, directory, user or group is left.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^AC_INIT(\[cachemux\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
arch=$(dpkg --print-architecture)
work="$top/build/deb"
tarball=${1:-"$top/build/gcc/cachemux-$version.tar.gz"}
t0=$(date +%s)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    fail "run as root: the test installs and purges the package"
fi
if [ -e /usr/bin/cachemux ] && ! dpkg -S /usr/bin/cachemux >/dev/null 2>&1; then
    fail "/usr/bin/cachemux exists and belongs to no package; not overwriting it"
fi

pids=""
run=""
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf /run/cachemux
    [ -z "$run" ] || rm -rf "$run"
    if dpkg -s cachemux >/dev/null 2>&1; then
        dpkg --purge cachemux >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----
if [ ! -f "$tarball" ]; then
    echo "==> make dist"
    make -C "$top/build/gcc" dist >/dev/null
fi
rm -rf "$work"
mkdir -p "$work"
tar -xzf "$tarball" -C "$work"
src="$work/cachemux-$version"
echo "==> dpkg-buildpackage -b (build/deb)"
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -b -us -uc) \
    >"$work/build.log" 2>&1 || { tail -60 "$work/build.log"; fail "dpkg-buildpackage"; }
deb="$work/cachemux_${version}_${arch}.deb"
[ -f "$deb" ] || fail "no $deb"
echo "    built $(basename "$deb") in $(( $(date +%s) - t0 )) s"

# ---- install ----
if dpkg -s cachemux >/dev/null 2>&1; then
    echo "==> purging a cachemux package left by an earlier run"
    dpkg --purge cachemux >/dev/null
fi
echo "==> dpkg -i"
dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }

for f in /usr/bin/cachemux /etc/cachemux/cachemux.ini /lib/systemd/system/cachemux.service \
    /etc/logrotate.d/cachemux /etc/default/cachemux \
    /usr/share/man/man8/cachemux.8.gz /usr/share/man/man5/cachemux.ini.5.gz \
    /usr/share/doc/cachemux/examples/cachemux.ini /usr/share/doc/cachemux/copyright \
    /usr/share/cachemux/monitoring/cachemux.rules.yml \
    /usr/share/cachemux/monitoring/cachemux-tls.rules.yml \
    /usr/share/cachemux/monitoring/cachemux-dashboard.json; do
    [ -f "$f" ] || fail "the package did not install $f"
done
ls /usr/share/doc/cachemux/migrating.md* >/dev/null 2>&1 || fail "no migrating.md in the docs"
dpkg-query -W -f='${Conffiles}\n' cachemux | grep -q ' /etc/cachemux/cachemux.ini ' \
    || fail "/etc/cachemux/cachemux.ini is not a conffile"
getent passwd cachemux >/dev/null || fail "no cachemux user after install"
for page in /usr/share/man/man8/cachemux.8.gz /usr/share/man/man5/cachemux.ini.5.gz; do
    out=$(MANWIDTH=80 man --warnings=w -l "$page" 2>&1 >/dev/null) || fail "man -l $page"
    [ -z "$out" ] || fail "man -l $page warns: $out"
done
/usr/bin/cachemux --help | grep -q "default: /etc/cachemux/cachemux.ini" \
    || fail "the binary's default -c is not /etc/cachemux/cachemux.ini"

echo "==> cachemux -t -c /etc/cachemux/cachemux.ini"
/usr/bin/cachemux -t -c /etc/cachemux/cachemux.ini

# ---- run the installed binary as the unit would ----
echo "==> installed cachemux as user cachemux, with a memcached pool"
# A directory the cachemux user can reach whatever the checkout's permissions.
run=$(mktemp -d /tmp/cachemux-deb.XXXXXX)
chmod 0755 "$run"
set -- $(python3 -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
mc_port=$1 pool_port=$2 stats_port=$3
memcached -l 127.0.0.1 -p "$mc_port" -U 0 -u nobody >"$run/memcached.log" 2>&1 &
mc_pid=$!
pids="$pids $mc_pid"
cat >"$run/cachemux.ini" <<EOF
[cachemux]
workers = 2
stats_listen = 127.0.0.1:$stats_port
log_file = /var/log/cachemux/cachemux.log
pid_file = /run/cachemux/cachemux.pid

[pool deb]
listen = 127.0.0.1:$pool_port
server = 127.0.0.1:$mc_port:1 mc1
EOF
chmod 0644 "$run/cachemux.ini"
# What RuntimeDirectory= and LogsDirectory= give the service.
install -d -o cachemux -g cachemux -m 0755 /run/cachemux
[ -d /var/log/cachemux ] || fail "postinst did not create /var/log/cachemux"
setpriv --reuid=cachemux --regid=cachemux --clear-groups --no-new-privs \
    /usr/bin/cachemux -c "$run/cachemux.ini" >"$run/cachemux.out" 2>&1 &
cmx_pid=$!
pids="$pids $cmx_pid"
python3 - "$pool_port" "$mc_port" <<'EOF' || fail "the installed cachemux does not serve"
import socket, sys, time
pool, mc = int(sys.argv[1]), int(sys.argv[2])

def request(port, data, want):
    deadline = time.time() + 10
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    s.sendall(data)
    out = b""
    while not out.endswith(want) and len(out) < 4096:
        d = s.recv(4096)
        if not d:
            break
        out += d
    s.close()
    return out

assert request(mc, b"version\r\n", b"\r\n").startswith(b"VERSION"), "memcached"
got = request(pool, b"set deb 0 0 2\r\nok\r\nget deb\r\n", b"END\r\n")
assert got == b"STORED\r\nVALUE deb 0 2\r\nok\r\nEND\r\n", got
assert request(mc, b"get deb\r\n", b"END\r\n") == b"VALUE deb 0 2\r\nok\r\nEND\r\n"
EOF
[ "$(cat /run/cachemux/cachemux.pid)" = "$cmx_pid" ] || fail "pid file does not hold $cmx_pid"
[ "$(stat -c %U /var/log/cachemux/cachemux.log)" = cachemux ] || fail "log not written as cachemux"
grep -q "ready: 1 pools, 2 workers" /var/log/cachemux/cachemux.log || fail "no ready line in the log"

if command -v logrotate >/dev/null; then
    echo "==> logrotate -f /etc/logrotate.d/cachemux"
    logrotate -f -s "$run/logrotate.state" /etc/logrotate.d/cachemux \
        || fail "logrotate"
    [ -f /var/log/cachemux/cachemux.log.1 ] || fail "the log was not rotated"
    grep -q "ready: 1 pools" /var/log/cachemux/cachemux.log.1 || fail "rotated log lost its lines"
    i=0
    until grep -q "SIGUSR1: log file reopened" /var/log/cachemux/cachemux.log 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || fail "cachemux did not reopen its log after rotation"
        sleep 0.05
    done
else
    echo "SKIP: logrotate is not installed"
fi

kill -TERM "$cmx_pid"
rc=0
wait "$cmx_pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$run/cachemux.out"; fail "cachemux exited $rc on SIGTERM"; }
[ ! -e /run/cachemux/cachemux.pid ] || fail "pid file left after exit"
kill "$mc_pid" 2>/dev/null || true
wait "$mc_pid" 2>/dev/null || true
pids=""
rm -rf /run/cachemux

echo "==> test_systemd.py against /usr/bin/cachemux"
(cd "$top" && top_srcdir="$top" top_builddir="$top/build/gcc" CACHEMUX=/usr/bin/cachemux \
    /usr/bin/python3 test/integration/test_systemd.py >"$work/test_systemd.log" 2>&1) \
    || { cat "$work/test_systemd.log"; fail "test_systemd.py on the installed binary"; }
tail -1 "$work/test_systemd.log" | sed 's/^/    /'

echo "==> systemd-analyze verify /lib/systemd/system/cachemux.service"
out=$(systemd-analyze verify /lib/systemd/system/cachemux.service 2>&1) \
    || fail "systemd-analyze verify: $out"
if printf '%s\n' "$out" | grep -q cachemux; then
    fail "systemd-analyze verify: $out"
fi

# ---- purge ----
echo "==> dpkg --purge cachemux"
dpkg --purge cachemux >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
! dpkg -s cachemux >/dev/null 2>&1 || fail "cachemux still known to dpkg"
for f in /etc/cachemux /usr/bin/cachemux /lib/systemd/system/cachemux.service \
    /etc/logrotate.d/cachemux /etc/default/cachemux /usr/share/man/man8/cachemux.8.gz \
    /usr/share/man/man5/cachemux.ini.5.gz /usr/share/doc/cachemux /usr/share/cachemux \
    /var/log/cachemux /etc/systemd/system/multi-user.target.wants/cachemux.service; do
    [ ! -e "$f" ] || fail "$f is left after purge"
done
left=$(ls /var/lib/systemd/deb-systemd-helper-enabled/ 2>/dev/null | grep cachemux || true)
[ -z "$left" ] || fail "systemd enablement state left: $left"
! getent passwd cachemux >/dev/null || fail "user cachemux is left after purge"
! getent group cachemux >/dev/null || fail "group cachemux is left after purge"

echo "==> Debian package: built, installed, ran and purged in $(( $(date +%s) - t0 )) s"
