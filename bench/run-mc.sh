#!/usr/bin/env bash
# run-mc.sh: memcached side-by-side benchmark, in one run:
#   memcached directly (one backend)  vs  nutcracker  vs  cachemux
# for each workload of bench/mcload.c. See bench/README.md.
#
# Usage: bench/run-mc.sh [PATH/TO/cachemux]      (or CACHEMUX=... bench/run-mc.sh)
#
# Settings (environment):
#   DURATION=10        measured seconds per cell
#   WARMUP=1           seconds of load before each measured window
#   CONNS=50           client connections
#   DEPTH=1            requests in flight per connection (pipeline depth)
#   LOAD_THREADS=1     mcload threads
#   KEYS=10000         keyspace (stored before each target's runs)
#   WORKLOADS="getset mget10"  (also: set, get = all sets / all gets)
#   VALUE_SIZE=100     value bytes (mcload -v, up to 1 MiB)
#   MC_ITEM_MAX=1m     memcached -I (2m for 1 MiB values)
#   PROXY_CPU, LOAD_CPU  pin the proxies / mcload to one CPU each (taskset)
#   TARGETS="memcached nutcracker cachemux"
#   WORKERS=$(nproc)   cachemux worker threads
#   MC_THREADS=2       memcached -t, for each of the two backends
#   ROUNDS=1           repeat the whole matrix (rows from every round are shown)
#   NUTCRACKER=/usr/sbin/nutcracker  MEMCACHED=$(command -v memcached)  CC=gcc
#   RESULTS=FILE       also append every raw mcload line (with target) to FILE
#   KEEP=1             keep the temp dir (configs, logs) and print its path
#   SYSCALLS=1         after the table, count the syscalls per request of each
#                      server process (strace -c -f -p) in a separate run of
#                      SYSCALL_REQS=20000 requests per cell (strace slows the
#                      traced process a lot: only its counts mean anything)
#
# Both proxies sit in front of the SAME two memcached backends (127.0.0.1, two
# free ports); the "memcached" row talks to the first backend directly. Every
# process this script starts is stopped by its PID on exit (trap).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib.sh"
CACHEMUX=${1:-${CACHEMUX:-}}
mcload_defaults
WORKLOADS=${WORKLOADS:-getset mget10}
VALUE_SIZE=${VALUE_SIZE:-100}
TARGETS=${TARGETS:-memcached nutcracker cachemux}
WORKERS=${WORKERS:-$(nproc)}
ROUNDS=${ROUNDS:-1}
NUTCRACKER=${NUTCRACKER:-/usr/sbin/nutcracker}
RESULTS=${RESULTS:-}
KEEP=${KEEP:-}
SYSCALLS=${SYSCALLS:-}
SYSCALL_REQS=${SYSCALL_REQS:-20000}

# --- preflight ---------------------------------------------------------------
check_mcload_tools
for t in $TARGETS; do
    case $t in
    memcached) ;;
    nutcracker) [ -x "$NUTCRACKER" ] || die "nutcracker not found at '$NUTCRACKER' (apt-get install nutcracker, or NUTCRACKER=path, or TARGETS without it)" ;;
    cachemux)
        check_cachemux ;;
    *) die "unknown target '$t' (memcached, nutcracker, cachemux)" ;;
    esac
done
for w in $WORKLOADS; do
    case $w in getset|set|get|mget[0-9]*) ;; *) die "unknown workload '$w' (getset, set, get, mget10)" ;; esac
done
[ -r /proc/self/stat ] || die "/proc is needed to read process CPU times"
[ -z "$SYSCALLS" ] || command -v strace >/dev/null || die "SYSCALLS=1 needs strace (apt-get install strace)"
bench_setup cachemux-bench

wl_args() {  # wl_args WORKLOAD -> mcload's -w and -r for it
    case $1 in
    set) echo "-w getset -r 100" ;;
    get) echo "-w getset -r 0" ;;
    *) echo "-w $1" ;;
    esac
}

# --- mcload and the backends ----------------------------------------------------
build_mcload
start_memcacheds

# --- proxies ---------------------------------------------------------------------
NC_PID= NC_PORT= CMX_PID= CMX_PORT=
case " $TARGETS " in *" nutcracker "*)
    start_nutcracker false mc1 "${MC_PORTS[0]}" mc2 "${MC_PORTS[1]}"
;; esac

case " $TARGETS " in *" cachemux "*)
    write_cachemux_ini false mc1 "${MC_PORTS[0]}" mc2 "${MC_PORTS[1]}"
    start_cachemux
;; esac

# --- run -------------------------------------------------------------------------
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
version() { "$@" 2>&1 | sed -n 1p || true; }  # sed reads all: no SIGPIPE under pipefail
mc_ver=$(version "$MEMCACHED" -V)
nc_ver="no nutcracker"; [ -n "$NC_PID" ] && nc_ver=$(version "$NUTCRACKER" -V)
cmx_ver="no cachemux"; [ -n "$CMX_PID" ] && cmx_ver=$(version "$CACHEMUX" -V)
echo "# $mc_ver, $nc_ver, $cmx_ver"
pin_note
echo "# mcload: conns=$CONNS depth=$DEPTH threads=$LOAD_THREADS keys=$KEYS value=${VALUE_SIZE}B duration=${DURATION}s warmup=${WARMUP}s;" \
     "backends: 2 x memcached -t $MC_THREADS (shared by both proxies); cachemux workers=$WORKERS"
echo "# CPU us/req = (utime+stime after - before) / requests completed during the mcload run (warm-up included)"
echo
FMT='%-10s %-8s %10s %8s %8s %8s %8s %9s %9s %9s %6s %6s\n'
printf "$FMT" target workload ops/s p50_us p90_us p99_us p999_us proxy_cpu mc_cpu load_cpu other% errors
printf "$FMT" ---------- -------- ---------- -------- -------- -------- -------- --------- --------- --------- ------ ------

FAILURES=0
for round in $(seq "$ROUNDS"); do
    for wl in $WORKLOADS; do
        for t in $TARGETS; do
            case $t in
            memcached) port=${MC_PORTS[0]}; ppid= ;;
            nutcracker) port=$NC_PORT; ppid=$NC_PID ;;
            cachemux) port=$CMX_PORT; ppid=$CMX_PID ;;
            esac
            # Store the keyspace through the target (placement is the target's own).
            if ! run_aux "$TMP/populate.out" "$TMP/populate.err" \
                    "$MCLOAD" -s 127.0.0.1 -p "$port" -w populate -k "$KEYS" -v "$VALUE_SIZE"; then
                cat "$TMP/populate.err" >&2
                cat "$TMP/populate.out" >&2
                die "populating $KEYS keys through $t (port $port) failed"
            fi
            p0=0; [ -n "$ppid" ] && p0=$(cpu_ticks "$ppid")
            m0=$(cpu_ticks "${MC_PIDS[@]}")
            w0=$(date +%s.%N); b0=$(machine_ticks)
            rc=0
            # shellcheck disable=SC2046
            run_aux "$TMP/mcload.out" "$TMP/mcload.err" \
                "${LOAD_PIN[@]}" "$MCLOAD" -s 127.0.0.1 -p "$port" $(wl_args "$wl") -N -k "$KEYS" \
                -v "$VALUE_SIZE" -c "$CONNS" -d "$DEPTH" -T "$LOAD_THREADS" -t "$DURATION" -W "$WARMUP" || rc=$?
            p1=0; [ -n "$ppid" ] && p1=$(cpu_ticks "$ppid")
            m1=$(cpu_ticks "${MC_PIDS[@]}")
            w1=$(date +%s.%N); b1=$(machine_ticks)
            mcload_line "$rc" "$t" "$t $wl"
            line=$LINE
            total=$(field total_ops "$line")
            pcpu=-
            [ -n "$ppid" ] && pcpu=$(us_per_op $((p1 - p0)) "$total")
            mcpu=$(us_per_op $((m1 - m0)) "$total")
            # CPU that processes outside this benchmark used meanwhile, in % of one CPU.
            other=$(awk -v busy=$((b1 - b0)) -v ours=$((p1 - p0 + m1 - m0)) -v hz="$CLK_TCK" \
                    -v lc="$(field client_cpu_us_per_op "$line")" -v n="$total" -v w0="$w0" -v w1="$w1" \
                    'BEGIN { o = busy - ours - lc * n * hz / 1e6; if (o < 0) o = 0;
                             printf "%.0f", (w1 > w0 ? 100 * o / hz / (w1 - w0) : 0) }')
            printf "$FMT" "$t" "$wl" "$(field ops_per_sec "$line" | cut -d. -f1)" \
                "$(field p50_us "$line")" "$(field p90_us "$line")" "$(field p99_us "$line")" \
                "$(field p999_us "$line")" "$pcpu" "$mcpu" "$(field client_cpu_us_per_op "$line")" \
                "$other" "$(field errors "$line")"
            if [ -n "$RESULTS" ]; then
                echo "target=$t round=$round test=$wl value_size=$VALUE_SIZE proxy_cpu_us_per_op=$pcpu mc_cpu_us_per_op=$mcpu other_cpu_pct=$other $line" >>"$RESULTS"
            fi
            for pid in "${MC_PIDS[@]}" $ppid; do
                kill -0 "$pid" 2>/dev/null || die "process $pid died during the $t $wl run (logs: KEEP=1)"
            done
        done
    done
done
echo
echo "# proxy_cpu, mc_cpu (both backends), load_cpu (mcload itself): CPU microseconds per request;"
echo "# other%: CPU used meanwhile by processes outside this benchmark, in % of one CPU (noise indicator)"

# --- syscalls per request (optional) ---------------------------------------------
# Traced: the proxy; for the memcached row, the backend it talks to.
if [ -n "$SYSCALLS" ]; then
    echo
    echo "# syscalls per request of the serving process: strace -c -f, $SYSCALL_REQS requests per cell, same mcload settings"
    for wl in $WORKLOADS; do
        for t in $TARGETS; do
            case $t in
            memcached) port=${MC_PORTS[0]}; spid=${MC_PIDS[0]} ;;
            nutcracker) port=$NC_PORT; spid=$NC_PID ;;
            cachemux) port=$CMX_PORT; spid=$CMX_PID ;;
            esac
            run_aux /dev/null "$TMP/populate.err" "$MCLOAD" -s 127.0.0.1 -p "$port" -w populate -k "$KEYS" -v "$VALUE_SIZE" ||
                { cat "$TMP/populate.err" >&2; die "populating $KEYS keys through $t (port $port) failed"; }
            strace_start "$spid"
            # shellcheck disable=SC2046
            "${LOAD_PIN[@]}" "$MCLOAD" -q -s 127.0.0.1 -p "$port" $(wl_args "$wl") -N -k "$KEYS" -v "$VALUE_SIZE" \
                -c "$CONNS" -d "$DEPTH" -T "$LOAD_THREADS" -n "$SYSCALL_REQS" >"$TMP/mcload.out" 2>/dev/null &
            load_pid=$!
            AUX="$STRACE_PID $load_pid"
            wait "$load_pid" || true
            AUX=$STRACE_PID
            line=$(cat "$TMP/mcload.out")
            strace_stop
            total=$(field total_ops "$line")
            [ -n "$total" ] && [ "$total" -gt 0 ] || die "mcload under strace against $t failed"
            strace_per_op "$total" "$t $wl" 22 | tee -a "$TMP/syscalls"
            if [ -n "$RESULTS" ]; then
                echo "target=$t test=$wl value_size=$VALUE_SIZE syscalls_per_op=$(tail -1 "$TMP/syscalls" | sed -n 's/.* total=\([0-9.]*\).*/\1/p')" >>"$RESULTS"
            fi
        done
    done
fi
[ "$FAILURES" = 0 ] || { echo "run-mc.sh: $FAILURES cell(s) had errors (see the errors column)" >&2; exit 1; }
