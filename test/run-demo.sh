#!/bin/sh
# Builds cachemux, starts the local memcached and Redis backends that
# etc/cachemux.ini points at, and runs cachemux in the foreground on that
# file. Ctrl-C stops cachemux and the backends. Installs missing Debian
# packages first (as root).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/test/deps.sh"

cachemux_install_deps
cachemux_bootstrap
cachemux_build gcc CC=gcc

run="$top/build/demo"
mkdir -p "$run"
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in 21211 21212; do
    memcached -l 127.0.0.1 -p "$port" -U 0 -u nobody &
    pids="$pids $!"
done
for port in 26379 26380; do
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$run" --daemonize no >"$run/redis-$port.log" 2>&1 &
    pids="$pids $!"
done

echo "==> cachemux on etc/cachemux.ini (Ctrl-C stops it and the backends)"
echo "    memcached pool at 127.0.0.1:22121, Redis pool at 127.0.0.1:22122; try, from another shell:"
echo "    echo hello > /tmp/greeting && memccp --servers=127.0.0.1:22121 /tmp/greeting && memccat --servers=127.0.0.1:22121 greeting"
echo "    redis-cli -p 22122 set k v && redis-cli -p 22122 get k"
echo "    stats: python3 -c 'import socket; print(socket.create_connection((\"127.0.0.1\", 22222)).recv(65536).decode())'"
# In the foreground: Ctrl-C reaches cachemux, which stops gracefully; the
# EXIT trap then stops the backends.
"$top/build/gcc/cachemux" -c "$top/etc/cachemux.ini"
