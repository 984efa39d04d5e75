#!/usr/bin/env bash
# run-redis.sh: Redis side-by-side benchmark with redis-benchmark, in one run:
#   redis-server directly (one backend)  vs  nutcracker  vs  cachemux
# for SET, GET and a 10-key MGET, without pipelining and with -P 16.
# See bench/README.md.
#
# Usage: bench/run-redis.sh [PATH/TO/cachemux]      (or CACHEMUX=... bench/run-redis.sh)
#
# Settings (environment):
#   REQUESTS=200000      redis-benchmark -n for unpipelined cells
#   PIPE_REQUESTS=1000000  -n for pipelined cells
#   MGET_REQUESTS=200000   -n for mget10 cells, pipelined or not
#   PIPELINES="1 16"     redis-benchmark -P values, one cell each
#   CONNS=50             redis-benchmark -c
#   LOAD_THREADS=1       redis-benchmark --threads (1 = its default single thread)
#   KEYS=10000           keyspace: -r KEYS, keys key:000000000000 ..; stored first
#   VALUE_SIZE=100       value bytes (-d, and the stored keys)
#   TESTS="set get mget10"
#   TARGETS="redis nutcracker cachemux"
#   WORKERS=$(nproc)     cachemux worker threads
#   POOL_WORKERS=0       the pool's workers key: served by the first N only (0: all)
#   ROUNDS=1             repeat the whole matrix (rows from every round are shown)
#   REDIS_SERVER, REDIS_BENCHMARK, REDIS_CLI (from PATH), NUTCRACKER=/usr/sbin/nutcracker
#   RESULTS=FILE         also append every raw row (key=value) to FILE
#   PROXY_CPU, LOAD_CPU  pin the proxies / redis-benchmark to one CPU each (taskset)
#   SYSCALLS=1           after the table, count the syscalls per request of each
#                        serving process (strace -c -f -p) in a separate run of
#                        SYSCALL_REQS=20000 requests per cell
#   KEEP=1               keep the temp dir (configs, logs) and print its path
#
# Both proxies sit in front of the SAME two redis-server backends (127.0.0.1,
# two free ports); the "redis" row talks to the first backend directly. Every
# process this script starts is stopped by its PID on exit (trap).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib.sh"
CACHEMUX=${1:-${CACHEMUX:-}}
REQUESTS=${REQUESTS:-200000}
PIPE_REQUESTS=${PIPE_REQUESTS:-1000000}
MGET_REQUESTS=${MGET_REQUESTS:-200000}
PIPELINES=${PIPELINES:-1 16}
CONNS=${CONNS:-50}
LOAD_THREADS=${LOAD_THREADS:-1}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
TESTS=${TESTS:-set get mget10}
TARGETS=${TARGETS:-redis nutcracker cachemux}
WORKERS=${WORKERS:-$(nproc)}
ROUNDS=${ROUNDS:-1}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-$(command -v redis-benchmark || true)}
REDIS_CLI=${REDIS_CLI:-$(command -v redis-cli || true)}
NUTCRACKER=${NUTCRACKER:-/usr/sbin/nutcracker}
RESULTS=${RESULTS:-}
KEEP=${KEEP:-}
SYSCALLS=${SYSCALLS:-}
SYSCALL_REQS=${SYSCALL_REQS:-20000}

# --- preflight ---------------------------------------------------------------
[ -n "$REDIS_SERVER" ] && [ -x "$REDIS_SERVER" ] || die "redis-server not found (apt-get install redis-server, or REDIS_SERVER=path)"
[ -n "$REDIS_BENCHMARK" ] && [ -x "$REDIS_BENCHMARK" ] || die "redis-benchmark not found (apt-get install redis-tools, or REDIS_BENCHMARK=path)"
[ -n "$REDIS_CLI" ] && [ -x "$REDIS_CLI" ] || die "redis-cli not found (apt-get install redis-tools, or REDIS_CLI=path)"
# cachemux is needed even without its row: its -L picks the MGET keys.
check_cachemux
for t in $TARGETS; do
    case $t in
    redis|cachemux) ;;
    nutcracker) [ -x "$NUTCRACKER" ] || die "nutcracker not found at '$NUTCRACKER' (apt-get install nutcracker, or NUTCRACKER=path, or TARGETS without it)" ;;
    *) die "unknown target '$t' (redis, nutcracker, cachemux)" ;;
    esac
done
for t in $TESTS; do
    case $t in set|get|mget10) ;; *) die "unknown test '$t' (set, get, mget10)" ;; esac
done
for p in $PIPELINES; do
    case $p in ''|*[!0-9]*|0) die "PIPELINES: '$p' is not a positive integer" ;; esac
done
[ -r /proc/self/stat ] || die "/proc is needed to read process CPU times"
[ -z "$SYSCALLS" ] || command -v strace >/dev/null || die "SYSCALLS=1 needs strace (apt-get install strace)"
bench_setup cachemux-rbench

# --- backends --------------------------------------------------------------------
RS_PORTS=()
RS_PIDS=()
for i in 1 2; do
    port=$(free_port)
    mkdir -p "$TMP/redis$i"
    start_listening "redis-server $i" "$port" "$TMP/redis$i.log" \
        "$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$TMP/redis$i" --daemonize no --maxclients 4096
    RS_PORTS+=("$port")
    RS_PIDS+=("$STARTED_PID")
done

# --- proxies ---------------------------------------------------------------------
write_cachemux_ini true r1 "${RS_PORTS[0]}" r2 "${RS_PORTS[1]}"

NC_PID= NC_PORT= CMX_PID=
case " $TARGETS " in *" nutcracker "*)
    start_nutcracker true r1 "${RS_PORTS[0]}" r2 "${RS_PORTS[1]}"
;; esac

case " $TARGETS " in *" cachemux "*)
    start_cachemux
;; esac

target_port() {  # target_port TARGET -> port
    case $1 in
    redis) echo "${RS_PORTS[0]}" ;;
    nutcracker) echo "$NC_PORT" ;;
    cachemux) echo "$CMX_PORT" ;;
    esac
}
target_pid() {  # target_pid TARGET -> proxy PID, empty for the direct row
    case $1 in
    redis) echo "" ;;
    nutcracker) echo "$NC_PID" ;;
    cachemux) echo "$CMX_PID" ;;
    esac
}

# --- the MGET keys: 5 on each server, by cachemux -L ------------------------------
# twemproxy's fnv1a_64 mixes poorly (32-bit arithmetic), so keys that differ only
# in the last digits share a server: search a wide range.
awk 'BEGIN { for (i = 0; i < 20000; i++) print "mget:" i }' >"$TMP/candidates"
"$CACHEMUX" -c "$TMP/cachemux.ini" -L bench <"$TMP/candidates" >"$TMP/located" 2>"$TMP/locate.err" ||
    { cat "$TMP/locate.err" >&2; die "cachemux -L bench failed"; }
MGET_KEYS=$(awk '$2 == "r1" && n1 < 5 { k[2 * n1++] = $1 } $2 == "r2" && n2 < 5 { k[2 * n2++ + 1] = $1 }
                 END { if (n1 == 5 && n2 == 5) for (i = 0; i < 10; i++) printf "%s%s", k[i], (i < 9 ? " " : "\n") }' \
                "$TMP/located")
[ -n "$MGET_KEYS" ] || die "cachemux -L found no 5+5 split of mget:0..19999 over r1 and r2 (see $TMP/located, KEEP=1)"
read -ra MGET_ARGS <<<"$MGET_KEYS"
mget_placed=$(for k in "${MGET_ARGS[@]}"; do awk -v k="$k" '$1 == k { printf "%s(%s) ", $1, $2 }' "$TMP/located"; done)
mget_placed=${mget_placed% }

# --- store the data through each target -------------------------------------------
VALUE=$(head -c "$VALUE_SIZE" /dev/zero | tr '\0' x)
# the value is made inside awk: a 1 MB value is too long for an argument
awk -v n="$KEYS" -v size="$VALUE_SIZE" 'BEGIN {
        v = "x"; while (length(v) < size) v = v v; v = substr(v, 1, size)
        for (i = 0; i < n; i++) printf "SET key:%012d %s\n", i, v }' >"$TMP/populate.cmds"
for k in "${MGET_ARGS[@]}"; do echo "SET $k $VALUE"; done >"$TMP/mget.cmds"

store() {  # store TARGET CMDFILE: send one command per line with redis-cli, all must be OK
    local t=$1 f=$2 port
    port=$(target_port "$t")
    run_aux_in "$f" "$TMP/store.out" "$TMP/store.err" "$REDIS_CLI" -h 127.0.0.1 -p "$port" ||
        { cat "$TMP/store.err" >&2; die "storing $f through $t (port $port) failed"; }
    if grep -qv '^OK$' "$TMP/store.out" || [ "$(wc -l <"$TMP/store.out")" != "$(wc -l <"$f")" ]; then
        sort "$TMP/store.out" | uniq -c | head >&2
        die "storing $f through $t (port $port): not every reply was OK"
    fi
}

# nutcracker must place the MGET keys where cachemux -L says (checked on the backends).
nc_check="nutcracker not run"
if [ -n "$NC_PID" ]; then
    store nutcracker "$TMP/mget.cmds"
    bad=
    for k in "${MGET_ARGS[@]}"; do
        want=$(awk -v k="$k" '$1 == k { print $2 }' "$TMP/located")
        e1=$("$REDIS_CLI" -h 127.0.0.1 -p "${RS_PORTS[0]}" EXISTS "$k")
        e2=$("$REDIS_CLI" -h 127.0.0.1 -p "${RS_PORTS[1]}" EXISTS "$k")
        case "$want $e1 $e2" in "r1 1 0"|"r2 0 1") ;; *) bad="$bad $k" ;; esac
    done
    if [ -n "$bad" ]; then
        nc_check="WARNING: nutcracker placed$bad elsewhere than cachemux -L says"
        echo "run-redis.sh: $nc_check" >&2
    else
        nc_check="nutcracker stored them on the same servers"
    fi
fi
for t in $TARGETS; do
    store "$t" "$TMP/populate.cmds"
    store "$t" "$TMP/mget.cmds"
done
# The MGET must return all 10 values through every target.
for t in $TARGETS; do
    got=$("$REDIS_CLI" -h 127.0.0.1 -p "$(target_port "$t")" MGET "${MGET_ARGS[@]}" |
        awk -v size="$VALUE_SIZE" 'length($0) == size && $0 !~ /[^x]/ { n++ } END { print n + 0 }')
    [ "$got" = 10 ] || die "MGET of the 10 keys through $t returned $got of 10 values"
done

# --- run -------------------------------------------------------------------------
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
version() { "$@" 2>&1 | sed -n 1p || true; }  # sed reads all: no SIGPIPE under pipefail
rs_ver=$(version "$REDIS_SERVER" --version | cut -d' ' -f1-3)
rb_ver=$(version "$REDIS_BENCHMARK" --version)
nc_ver="no nutcracker"; [ -n "$NC_PID" ] && nc_ver=$(version "$NUTCRACKER" -V)
cmx_ver="no cachemux"; [ -n "$CMX_PID" ] && cmx_ver=$(version "$CACHEMUX" -V)
echo "# $rs_ver, $rb_ver, $nc_ver, $cmx_ver"
echo "# redis-benchmark -c $CONNS -r $KEYS -d $VALUE_SIZE --csv, -n $REQUESTS (-P 1) / $PIPE_REQUESTS (-P >1) / $MGET_REQUESTS (mget10), threads=$LOAD_THREADS;" \
     "backends: 2 x redis-server (shared by both proxies); cachemux workers=$WORKERS pool workers=${POOL_WORKERS:-0}"
echo "# mget10 keys (cachemux -L): $mget_placed; $nc_check"
pin_note
echo "# CPU us/req = (utime+stime after - before) / requests of the redis-benchmark run"
echo
FMT='%-10s %-6s %3s %10s %8s %8s %8s %8s %8s %9s %9s %9s %6s %6s %6s\n'
printf "$FMT" target test P ops/s avg_us p50_us p95_us p99_us max_us proxy_cpu redis_cpu load_cpu be_cmd be_rd other%
printf "$FMT" ---------- ------ --- ---------- -------- -------- -------- -------- -------- --------- --------- --------- ------ ------ ------

be_counts() {  # "reads commands" summed over both backends (Redis INFO stats)
    local port
    for port in "${RS_PORTS[@]}"; do
        "$REDIS_CLI" -h 127.0.0.1 -p "$port" INFO stats || die "INFO stats on backend port $port failed"
    done | tr -d '\r' | awk -F: '$1 == "total_reads_processed" { r += $2 } $1 == "total_commands_processed" { c += $2 }
                                 END { print r + 0, c + 0 }'
}

ms_to_us() { awk -v v="$1" 'BEGIN { printf "%.0f", v * 1000 }'; }

failures=0
for round in $(seq "$ROUNDS"); do
    for pipe in $PIPELINES; do
        for test in $TESTS; do
            n=$REQUESTS; [ "$pipe" -gt 1 ] && n=$PIPE_REQUESTS
            [ "$test" = mget10 ] && n=$MGET_REQUESTS
            for t in $TARGETS; do
                port=$(target_port "$t")
                ppid=$(target_pid "$t")
                args=(-h 127.0.0.1 -p "$port" -c "$CONNS" -n "$n" -P "$pipe" -r "$KEYS" -d "$VALUE_SIZE" --csv)
                [ "$LOAD_THREADS" -gt 1 ] && args+=(--threads "$LOAD_THREADS")
                case $test in
                set) args+=(-t set) ;;
                get) args+=(-t get) ;;
                mget10) args+=(MGET "${MGET_ARGS[@]}") ;;
                esac
                read -r br0 bc0 <<<"$(be_counts)"
                p0=0; [ -n "$ppid" ] && p0=$(cpu_ticks "$ppid")
                r0=$(cpu_ticks "${RS_PIDS[@]}")
                w0=$(date +%s.%N); b0=$(machine_ticks)
                rc=0
                times >"$TMP/times0"
                run_aux "$TMP/rb.out" "$TMP/rb.err" "${LOAD_PIN[@]}" "$REDIS_BENCHMARK" "${args[@]}" || rc=$?
                times >"$TMP/times1"
                p1=0; [ -n "$ppid" ] && p1=$(cpu_ticks "$ppid")
                r1=$(cpu_ticks "${RS_PIDS[@]}")
                w1=$(date +%s.%N); b1=$(machine_ticks)
                read -r br1 bc1 <<<"$(be_counts)"
                # Through a proxy CONFIG GET fails: redis-benchmark only warns.
                grep -v '^WARNING: Could not fetch server CONFIG' "$TMP/rb.err" >"$TMP/rb.err2" || true
                row=$(sed -n 2p "$TMP/rb.out")
                if [ "$rc" != 0 ] || [ -z "$row" ]; then
                    failures=$((failures + 1))
                    sed "s/^/# $t $test P$pipe: /" "$TMP/rb.err2" "$TMP/rb.out" >&2
                    printf "$FMT" "$t" "$test" "$pipe" FAILED "(exit" "$rc)" - - - - - - - - -
                    continue
                fi
                [ -s "$TMP/rb.err2" ] && sed "s/^/# $t $test P$pipe: /" "$TMP/rb.err2" >&2
                # "TEST","rps","avg_latency_ms","min_latency_ms","p50","p95","p99","max"
                IFS=, read -r _ rps avg _ p50 p95 p99 max <<<"$(printf '%s\n' "$row" | tr -d '"')"
                lcpu_s=$(awk -v a="$(children_cpu "$TMP/times0")" -v b="$(children_cpu "$TMP/times1")" \
                         'BEGIN { printf "%.3f", b - a }')
                pcpu=-
                if [ -n "$ppid" ]; then
                    pcpu=$(awk -v d=$((p1 - p0)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
                fi
                rcpu=$(awk -v d=$((r1 - r0)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
                lcpu=$(awk -v s="$lcpu_s" -v n="$n" 'BEGIN { printf "%.2f", s * 1e6 / n }')
                # CPU that processes outside this benchmark used meanwhile, in % of one CPU.
                # Backend commands and reads (read events) per request; the INFO calls add 1 each.
                becmd=$(awk -v d=$((bc1 - bc0 - ${#RS_PORTS[@]})) -v n="$n" 'BEGIN { printf "%.2f", d / n }')
                berd=$(awk -v d=$((br1 - br0 - ${#RS_PORTS[@]})) -v n="$n" 'BEGIN { printf "%.2f", d / n }')
                other=$(awk -v busy=$((b1 - b0)) -v ours=$((p1 - p0 + r1 - r0)) -v hz="$CLK_TCK" \
                        -v ls="$lcpu_s" -v w0="$w0" -v w1="$w1" \
                        'BEGIN { o = busy - ours - ls * hz; if (o < 0) o = 0;
                                 printf "%.0f", (w1 > w0 ? 100 * o / hz / (w1 - w0) : 0) }')
                printf "$FMT" "$t" "$test" "$pipe" "${rps%.*}" "$(ms_to_us "$avg")" "$(ms_to_us "$p50")" \
                    "$(ms_to_us "$p95")" "$(ms_to_us "$p99")" "$(ms_to_us "$max")" "$pcpu" "$rcpu" "$lcpu" "$becmd" "$berd" "$other"
                if [ -n "$RESULTS" ]; then
                    echo "target=$t round=$round test=$test value_size=$VALUE_SIZE conns=$CONNS workers=$WORKERS pool_workers=${POOL_WORKERS:-0} pipeline=$pipe requests=$n rps=$rps avg_ms=$avg p50_ms=$p50" \
                         "p95_ms=$p95 p99_ms=$p99 max_ms=$max proxy_cpu_us_per_op=$pcpu redis_cpu_us_per_op=$rcpu" \
                         "load_cpu_us_per_op=$lcpu backend_cmds_per_op=$becmd backend_reads_per_op=$berd other_cpu_pct=$other" >>"$RESULTS"
                fi
                for pid in "${RS_PIDS[@]}" $ppid; do
                    kill -0 "$pid" 2>/dev/null || die "process $pid died during the $t $test run (logs: KEEP=1)"
                done
            done
        done
    done
done
echo
echo "# ops/s: requests / redis-benchmark's elapsed time (an MGET of 10 keys is one request);"
echo "# latencies: redis-benchmark's own (from sending a request to its reply; printed in ms with 3 decimals), in microseconds;"
echo "# proxy_cpu, redis_cpu (both backends), load_cpu (redis-benchmark): CPU microseconds per request;"
echo "# be_cmd, be_rd: commands and socket reads of both backends per request (INFO stats total_commands_processed,"
echo "#   total_reads_processed): how the proxy splits requests and how many requests share one backend read;"
echo "# other%: CPU used meanwhile by processes outside this benchmark, in % of one CPU (noise indicator)"

# --- syscalls per request (optional) ---------------------------------------------
# Traced: the proxy; for the redis row, the backend it talks to.
if [ -n "$SYSCALLS" ]; then
    echo
    echo "# syscalls per request of the serving process: strace -c -f, $SYSCALL_REQS requests per cell, same settings"
    for pipe in $PIPELINES; do
        for test in $TESTS; do
            for t in $TARGETS; do
                port=$(target_port "$t")
                spid=$(target_pid "$t"); [ -n "$spid" ] || spid=${RS_PIDS[0]}
                args=(-h 127.0.0.1 -p "$port" -c "$CONNS" -n "$SYSCALL_REQS" -P "$pipe" -r "$KEYS" -d "$VALUE_SIZE" --csv)
                case $test in
                set) args+=(-t set) ;;
                get) args+=(-t get) ;;
                mget10) args+=(MGET "${MGET_ARGS[@]}") ;;
                esac
                strace_start "$spid"
                "${LOAD_PIN[@]}" "$REDIS_BENCHMARK" "${args[@]}" >"$TMP/rb.out" 2>/dev/null &
                load_pid=$!
                AUX="$STRACE_PID $load_pid"
                wait "$load_pid" || die "redis-benchmark under strace against $t failed"
                AUX=$STRACE_PID
                strace_stop
                line=$(strace_per_op "$SYSCALL_REQS" "$t $test P$pipe" 26)
                echo "$line"
                if [ -n "$RESULTS" ]; then
                    echo "target=$t test=$test value_size=$VALUE_SIZE conns=$CONNS workers=$WORKERS pipeline=$pipe" \
                         "syscalls_per_op=$(printf '%s\n' "$line" | sed -n 's/.* total=\([0-9.]*\).*/\1/p')" >>"$RESULTS"
                fi
            done
        done
    done
fi
[ "$failures" = 0 ] || { echo "run-redis.sh: $failures cell(s) failed (redis-benchmark stops at the first error reply)" >&2; exit 1; }
