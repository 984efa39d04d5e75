# bench/lib.sh: what the bench scripts share. Sourced (bash) by run-mc.sh,
# run-redis.sh and run-metrics-cost.sh after they set BENCH_DIR and their
# settings; it defines helpers only, and starts nothing until told:
#
#   die MSG...                  print "SCRIPT: MSG" and exit 1
#   bench_setup PREFIX          make $TMP (/tmp/PREFIX.XXXXXX), $PIDS, $AUX and
#                               the traps that stop every process we started
#                               (by PID) and remove $TMP (kept with KEEP=1)
#   stop_pid PID                TERM, wait up to 3 s, then KILL
#   free_port                   a free loopback port not handed out before
#   wait_listen PID PORT WHAT LOG   wait until PID itself listens on PORT
#   cpu_ticks PID...            utime + stime of whole processes, clock ticks
#   machine_ticks               busy ticks of all CPUs, from /proc/stat
#   children_cpu FILE           CPU seconds of reaped children, from `times`
#   run_aux OUT ERR CMD...      run CMD in the background and wait for it
#   run_aux_in IN OUT ERR CMD...    the same with stdin from IN
#   start_listening WHAT PORT LOG CMD...
#                               run CMD in the background (output to LOG),
#                               recorded in PIDS, until it listens: STARTED_PID
#   strace_start PID            count PID's syscalls (strace -c -f) into
#                               $TMP/strace.out once attached: STRACE_PID (in AUX)
#   strace_stop                 end that count (the table is then written)
#   strace_per_op N WHO WIDTH   "WHO: total=X call=Y ..." per operation of N,
#                               from $TMP/strace.out (WHO padded to WIDTH)
#   field NAME "k=v ..."        the value of NAME
#   check_cachemux              $CACHEMUX names an executable: made absolute
#   check_mcload_tools          mcload.c, $CC and $MEMCACHED are there
#   us_per_op TICKS N           CPU microseconds per operation (0 when N is 0)
#   mcload_line RC WHAT TAG     LINE: mcload's result line from $TMP/mcload.out
#                               (dies naming WHAT when there is none); RC != 0
#                               counts in FAILURES; its stderr echoed, tagged
#   mcload_defaults             the defaults of the settings the mcload scripts
#                               (run-mc.sh, run-metrics-cost.sh) share
#   median N...                 the median of the numbers
#   build_mcload                compile bench/mcload.c into $MCLOAD
#   start_memcacheds            two memcached backends: $MC_PORTS, $MC_PIDS
#   start_nutcracker REDIS NAME1 PORT1 NAME2 PORT2
#                               nutcracker over two backends: $NC_PORT, $NC_PID
#   write_cachemux_ini REDIS NAME1 PORT1 NAME2 PORT2
#                               the same pool for cachemux, checked with -t: $CMX_PORT
#   start_cachemux              run it on that file: $CMX_PID
#
# Pinning (optional): PROXY_CPU=N runs both proxies on CPU N (taskset -c)
# and LOAD_CPU=M runs the load generator on CPU M; the backends are never
# pinned. The prefixes are "${PROXY_PIN[@]}" and "${LOAD_PIN[@]}".
#
# Every process is started in the background and recorded (PIDS, AUX), so
# that a signal to the script is handled at once (bash runs traps only
# between foreground commands) and nothing outlives it.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

PROXY_PIN=()
LOAD_PIN=()
if [ -n "${PROXY_CPU:-}" ] || [ -n "${LOAD_CPU:-}" ]; then
    command -v taskset >/dev/null || die "PROXY_CPU/LOAD_CPU need taskset (apt-get install util-linux)"
fi
[ -n "${PROXY_CPU:-}" ] && PROXY_PIN=(taskset -c "$PROXY_CPU")
[ -n "${LOAD_CPU:-}" ] && LOAD_PIN=(taskset -c "$LOAD_CPU")
pin_note() {  # a header line saying what runs where
    echo "# pinned: proxies on CPU ${PROXY_CPU:-any}, load generator on CPU ${LOAD_CPU:-any}, backends unpinned"
}

CLK_TCK=$(getconf CLK_TCK)

bench_setup() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()     # long-lived: backends and proxies
    AUX=        # the helper running now (load generator, scraper, strace); cleared once reaped
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

stop_pid() {  # stop one process we started: TERM, wait up to 3 s, then KILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local pid
    set +e
    for pid in $AUX; do stop_pid "$pid"; done
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [ -n "${KEEP:-}" ]; then echo "kept: $TMP" >&2; else rm -rf "$TMP"; fi
}

USED_PORTS=" "
port_in_use() {  # any socket on 127.0.0.1/0.0.0.0/:: with this local port
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

free_port() {
    local p i
    for i in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        case $USED_PORTS in *" $p "*) continue ;; esac
        port_in_use "$p" && continue
        USED_PORTS="$USED_PORTS$p "
        echo "$p"
        return 0
    done
    die "no free port found"
}

listen_inodes() {  # socket inodes listening on 127.0.0.1:PORT
    local hex
    hex=$(printf '0100007F:%04X' "$1")
    awk -v a="$hex" 'NR > 1 && $2 == a && $4 == "0A" { print $10 }' /proc/net/tcp
}

# Wait until PID listens on 127.0.0.1:PORT (the listening socket must be one of
# PID's own fds, so a stranger on the same port is not mistaken for ours).
wait_listen() {
    local pid=$1 port=$2 what=$3 log=$4 i ino
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2 2>/dev/null; die "$what (pid $pid) exited before listening on 127.0.0.1:$port (log above)"; }
        for ino in $(listen_inodes "$port"); do
            if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "socket:\[$ino\]"; then
                return 0
            fi
        done
        sleep 0.1
    done
    cat "$log" >&2 2>/dev/null
    die "$what (pid $pid) is not listening on 127.0.0.1:$port after 10 s"
}

cpu_ticks() {  # utime + stime of whole processes (all threads), in clock ticks
    local pid rest
    for pid in "$@"; do
        rest=$(sed 's/^.*) //' "/proc/$pid/stat") || die "pid $pid is gone"
        echo "$rest"
    done | awk '{ s += $12 + $13 } END { print s + 0 }'
}

machine_ticks() {  # busy ticks of all CPUs (not idle, not iowait), from /proc/stat
    awk '$1 == "cpu" { s = 0; for (i = 2; i <= NF; i++) s += $i; print s - $5 - $6; exit }' /proc/stat
}

# CPU seconds (user + sys) of this shell's reaped children, from the builtin
# `times` (run in this shell, not in a subshell, or it reports the subshell).
children_cpu() {  # children_cpu FILE-WRITTEN-BY-times
    awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.3f\n", s }' "$1"
}

run_aux() {  # run_aux OUTFILE ERRFILE CMD...; returns CMD's status
    local out=$1 err=$2 rc=0
    shift 2
    "$@" >"$out" 2>"$err" &
    AUX=$!
    wait "$AUX" || rc=$?
    AUX=
    return "$rc"
}

run_aux_in() {  # run_aux_in INFILE OUTFILE ERRFILE CMD...
    local in=$1 out=$2 err=$3 rc=0
    shift 3
    "$@" <"$in" >"$out" 2>"$err" &
    AUX=$!
    wait "$AUX" || rc=$?
    AUX=
    return "$rc"
}

start_listening() {  # start_listening WHAT PORT LOG CMD...: STARTED_PID
    local what=$1 port=$2 log=$3
    shift 3
    "$@" >"$log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    wait_listen "$STARTED_PID" "$port" "$what" "$log"
}

strace_start() {  # strace_start PID: STRACE_PID, counting into $TMP/strace.out
    local i
    rm -f "$TMP/strace.out"
    strace -c -f -p "$1" -o "$TMP/strace.out" 2>"$TMP/strace.err" &
    STRACE_PID=$!
    AUX=$STRACE_PID
    for i in $(seq 100); do
        grep -q attached "$TMP/strace.err" 2>/dev/null && break
        kill -0 "$STRACE_PID" 2>/dev/null || { cat "$TMP/strace.err" >&2; die "strace -p $1 failed"; }
        sleep 0.1
    done
    sleep 0.2
}

strace_stop() {  # SIGINT makes strace -c detach and write its table
    kill -INT "$STRACE_PID" 2>/dev/null || true
    wait "$STRACE_PID" 2>/dev/null || true
    AUX=
}

strace_per_op() {  # strace_per_op N WHO WIDTH
    # strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall
    awk -v n="$1" -v who="$2" -v fmt="%-$3s total=%.2f%s\n" '
        $1 ~ /^[0-9.]+$/ && NF >= 5 {
            if ($NF == "total") tot = $4 / n
            else if ($4 / n >= 0.005) out = out sprintf(" %s=%.2f", $NF, $4 / n)
        }
        END { printf fmt, who ":", tot, out }' "$TMP/strace.out"
}

check_cachemux() {  # $CACHEMUX must name an executable; made absolute
    [ -n "$CACHEMUX" ] || die "no cachemux binary: pass its path as the argument or set CACHEMUX (build: mkdir /tmp/b && cd /tmp/b && /path/to/src/configure && make cachemux)"
    [ -x "$CACHEMUX" ] || die "cachemux binary '$CACHEMUX' is missing or not executable"
    CACHEMUX=$(cd "$(dirname "$CACHEMUX")" && pwd)/$(basename "$CACHEMUX")
}

us_per_op() {  # us_per_op TICKS N
    awk -v d="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (n > 0 ? d * 1e6 / hz / n : 0) }'
}

mcload_line() {  # mcload_line RC WHAT TAG: LINE, FAILURES
    LINE=$(cat "$TMP/mcload.out")
    if [ -z "$LINE" ]; then
        cat "$TMP/mcload.err" >&2
        die "mcload against $2 failed (exit $1)"
    fi
    [ "$1" = 0 ] || FAILURES=$((FAILURES + 1))
    if [ -s "$TMP/mcload.err" ]; then sed "s/^/# $3: /" "$TMP/mcload.err" >&2; fi
}

mcload_defaults() {  # as run-mc.sh's and run-metrics-cost.sh's headers list them
    DURATION=${DURATION:-10}
    WARMUP=${WARMUP:-1}
    CONNS=${CONNS:-50}
    DEPTH=${DEPTH:-1}
    LOAD_THREADS=${LOAD_THREADS:-1}
    KEYS=${KEYS:-10000}
    MC_THREADS=${MC_THREADS:-2}
    MEMCACHED=${MEMCACHED:-$(command -v memcached || true)}
    CC=${CC:-gcc}
}

check_mcload_tools() {  # what build_mcload and start_memcacheds need
    [ -r "$BENCH_DIR/mcload.c" ] || die "missing $BENCH_DIR/mcload.c"
    command -v "$CC" >/dev/null || die "compiler '$CC' not found (apt-get install gcc)"
    [ -n "$MEMCACHED" ] && [ -x "$MEMCACHED" ] || die "memcached not found (apt-get install memcached, or MEMCACHED=path)"
}

field() {  # field NAME "key=value ..." -> value
    local k=$1 line=$2
    printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$k=//p"
}

median() {  # median of the numbers given as arguments
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

build_mcload() {  # compile bench/mcload.c into $MCLOAD (in $TMP)
    MCLOAD=$TMP/mcload
    "$CC" -O2 -std=c11 -Wall -pthread -o "$MCLOAD" "$BENCH_DIR/mcload.c" || die "building mcload failed"
}

start_memcacheds() {  # two memcached backends (-t MC_THREADS) on free ports: MC_PORTS, MC_PIDS
    local i port
    local mcuser=()
    [ "$(id -u)" = 0 ] && mcuser=(-u nobody)
    MC_PORTS=()
    MC_PIDS=()
    for i in 1 2; do
        port=$(free_port)
        start_listening "memcached $i" "$port" "$TMP/memcached$i.log" \
            "$MEMCACHED" "${mcuser[@]}" -l 127.0.0.1 -p "$port" -U 0 -t "$MC_THREADS" -m "${MC_MEMORY:-256}" \
            -I "${MC_ITEM_MAX:-1m}" -c 4096
        MC_PORTS+=("$port")
        MC_PIDS+=("$STARTED_PID")
    done
}

start_nutcracker() {  # start_nutcracker REDIS(true|false) NAME1 PORT1 NAME2 PORT2: NC_PORT, NC_PID
    local nc_stats
    NC_PORT=$(free_port)
    nc_stats=$(free_port)
    cat >"$TMP/nutcracker.yml" <<EOF
bench:
  listen: 127.0.0.1:$NC_PORT
  hash: fnv1a_64
  distribution: ketama
  timeout: 2000
  backlog: 1024
  preconnect: true
  redis: $1
  server_connections: 1
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:$3:1 $2
   - 127.0.0.1:$5:1 $4
EOF
    "${PROXY_PIN[@]}" "$NUTCRACKER" -c "$TMP/nutcracker.yml" -s "$nc_stats" -a 127.0.0.1 -v 4 \
        -o "$TMP/nutcracker.log" >"$TMP/nutcracker.out" 2>&1 &
    NC_PID=$!
    PIDS+=("$NC_PID")
    wait_listen "$NC_PID" "$NC_PORT" nutcracker "$TMP/nutcracker.log"
}

write_cachemux_ini() {  # write_cachemux_ini REDIS(true|false) NAME1 PORT1 NAME2 PORT2: CMX_PORT
    local cmx_stats pool_workers=""
    # only when asked: builds from before the key existed can be compared
    [ "${POOL_WORKERS:-0}" = 0 ] || pool_workers="workers = $POOL_WORKERS"
    CMX_PORT=$(free_port)
    cmx_stats=$(free_port)
    cat >"$TMP/cachemux.ini" <<EOF
[cachemux]
workers = $WORKERS
stats_listen = 127.0.0.1:$cmx_stats
log_level = 4
shutdown_timeout = 1000

[pool bench]
listen = 127.0.0.1:$CMX_PORT
hash = fnv1a_64
distribution = ketama
timeout = 2000
backlog = 1024
preconnect = true
redis = $1
server_connections = 1
$pool_workers
auto_eject_hosts = false
server = 127.0.0.1:$3:1 $2
server = 127.0.0.1:$5:1 $4
EOF
    "$CACHEMUX" -t -c "$TMP/cachemux.ini" >"$TMP/cachemux-t.log" 2>&1 ||
        { cat "$TMP/cachemux-t.log" >&2; die "cachemux -t rejected $TMP/cachemux.ini"; }
}

start_cachemux() {  # cachemux on $TMP/cachemux.ini, listening on CMX_PORT: CMX_PID
    start_listening cachemux "$CMX_PORT" "$TMP/cachemux.log" \
        "${PROXY_PIN[@]}" "$CACHEMUX" -c "$TMP/cachemux.ini"
    CMX_PID=$STARTED_PID
}
