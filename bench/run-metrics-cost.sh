#!/usr/bin/env bash
# run-metrics-cost.sh: what monitoring costs cachemux, in one run.
# The same mcload workload (getset, 50 conns) runs against
#   off   a cachemux without metrics_listen, not scraped
#   onN   a cachemux with metrics_listen, scraped N times a second during the
#         run: each scrape fetches GET /metrics AND the stats port's JSON
# (default: off, on1 = a realistic 1 s scrape, on10 = an aggressive 10/s).
# The configurations alternate within each round; the summary gives the median
# of the rounds and the difference from "off" in percent. Afterwards, with no
# load, it measures the CPU one scrape of each endpoint costs the proxy.
# See bench/README.md.
#
# Usage: bench/run-metrics-cost.sh [PATH/TO/cachemux]   (or CACHEMUX=... bench/run-metrics-cost.sh)
#
# Settings (environment):
#   DURATION=10        measured seconds per run
#   WARMUP=1           seconds of load before each measured window
#   CONNS=50           client connections
#   DEPTH=1            requests in flight per connection
#   LOAD_THREADS=1     mcload threads
#   KEYS=10000         keyspace (stored once before the runs)
#   WORKLOAD=getset    mcload workload
#   CONFIGS="off on1 on10"   onN = scraped N times a second (on0 = listener, no scrapes)
#   ROUNDS=5           runs per configuration (the summary is their median)
#   WORKERS=$(nproc)   cachemux worker threads
#   MC_THREADS=2       memcached -t, for each of the two backends
#   IDLE_SCRAPES=2000  scrapes of each endpoint for the idle per-scrape cost (0 = skip)
#   MEMCACHED=$(command -v memcached)  PYTHON=python3  CC=gcc
#   RESULTS=FILE       also append every raw mcload line (with config and CPU) to FILE
#   KEEP=1             keep the temp dir (configs, logs) and print its path
#
# Both cachemux processes run the same config except metrics_listen, over the
# SAME two memcached backends (127.0.0.1, free ports); only the one under test
# gets load. Every process this script starts is stopped by its PID on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib.sh"
CACHEMUX=${1:-${CACHEMUX:-}}
mcload_defaults
WORKLOAD=${WORKLOAD:-getset}
CONFIGS=${CONFIGS:-off on1 on10}
ROUNDS=${ROUNDS:-5}
WORKERS=${WORKERS:-$(nproc)}
IDLE_SCRAPES=${IDLE_SCRAPES:-2000}
PYTHON=${PYTHON:-python3}
RESULTS=${RESULTS:-}
KEEP=${KEEP:-}

# --- preflight ---------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found: the scraper is a Python 3 script (apt-get install python3, or PYTHON=path)"
check_mcload_tools
check_cachemux
case $WORKLOAD in getset|mget[0-9]*) ;; *) die "unknown workload '$WORKLOAD' (getset, mget10)" ;; esac
for c in $CONFIGS; do
    case $c in off|on[0-9]*) ;; *) die "unknown config '$c' (off, on0, on1, on10, ...)" ;; esac
done
case " $CONFIGS " in *" off "*) ;; *) die "CONFIGS must include 'off' (the baseline)" ;; esac
[ "$ROUNDS" -ge 1 ] 2>/dev/null || die "ROUNDS must be a positive integer"
[ -r /proc/self/stat ] || die "/proc is needed to read process CPU times"
bench_setup cachemux-mcost

# --- the scraper -------------------------------------------------------------------
# scrape.py HOST METRICS_PORT STATS_PORT RATE [COUNT]
#   RATE > 0: fetch /metrics and the stats JSON RATE times a second (fixed
#   schedule) until SIGTERM; COUNT given: COUNT fetches of each back to back,
#   /metrics first; each phase starts on a line on stdin and ends with a
#   "phase" line on stdout. Periodic mode prints "started" once running.
# Each fetch is checked (HTTP 200 and a "cachemux_" line; parseable JSON with
# "service"). Prints: scrapes=N errors=N metrics_bytes=N stats_bytes=N max_ms=N
cat >"$TMP/scrape.py" <<'EOF'
import json, signal, socket, sys, time

host, mport, sport, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
count = int(sys.argv[5]) if len(sys.argv) > 5 else 0
st = {"scrapes": 0, "errors": 0, "metrics_bytes": 0, "stats_bytes": 0, "max_ms": 0.0}
stop = False

def on_term(*_):
    global stop
    stop = True

signal.signal(signal.SIGTERM, on_term)

def fetch(port, req):
    s = socket.create_connection((host, port), timeout=5)
    try:
        if req:
            s.sendall(req)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()

def metrics():
    body = fetch(mport, b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    if not body.startswith(b"HTTP/1.1 200") or b"\ncachemux_" not in body:
        raise ValueError("bad /metrics reply: %r" % body[:80])
    st["metrics_bytes"] = len(body)

def stats():
    body = fetch(sport, None)
    if "service" not in json.loads(body):
        raise ValueError("bad stats reply")
    st["stats_bytes"] = len(body)

def one(fns):
    t0 = time.monotonic()
    try:
        for f in fns:
            f()
    except Exception as e:
        st["errors"] += 1
        print("scrape error: %s" % e, file=sys.stderr)
    st["max_ms"] = max(st["max_ms"], (time.monotonic() - t0) * 1e3)
    st["scrapes"] += 1

if count:
    for fns in ([metrics], [stats]):
        # go when the shell has read the proxy's CPU time
        sys.stdin.readline()
        for _ in range(count):
            one(fns)
        print("phase", flush=True)
else:
    print("started", flush=True)
    nxt = time.monotonic()
    while not stop:
        one([metrics, stats])
        nxt += 1.0 / rate
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
        else:
            nxt = time.monotonic()
print(" ".join("%s=%s" % (k, round(v, 2) if isinstance(v, float) else v) for k, v in st.items()))
EOF

# --- mcload and the backends ----------------------------------------------------
build_mcload
start_memcacheds

# --- the two cachemux processes: "off" and "on" ----------------------------------
PORT_off= PID_off= PORT_on= STATS_on= METRICS_on= PID_on=
start_cachemux() {  # start_cachemux NAME METRICS(0/1); sets PORT_x, STATS_x, METRICS_x, PID_x
    local name=$1 with_metrics=$2 port stats mport= pid
    port=$(free_port)
    stats=$(free_port)
    {
        echo "[cachemux]"
        echo "workers = $WORKERS"
        echo "stats_listen = 127.0.0.1:$stats"
        if [ "$with_metrics" = 1 ]; then
            mport=$(free_port)
            echo "metrics_listen = 127.0.0.1:$mport"
        fi
        cat <<EOF
log_level = 4
shutdown_timeout = 1000

[pool bench]
listen = 127.0.0.1:$port
hash = fnv1a_64
distribution = ketama
timeout = 2000
backlog = 1024
preconnect = true
redis = false
server_connections = 1
auto_eject_hosts = false
server = 127.0.0.1:${MC_PORTS[0]}:1 mc1
server = 127.0.0.1:${MC_PORTS[1]}:1 mc2
EOF
    } >"$TMP/cachemux-$name.ini"
    "$CACHEMUX" -t -c "$TMP/cachemux-$name.ini" >"$TMP/cachemux-$name-t.log" 2>&1 ||
        { cat "$TMP/cachemux-$name-t.log" >&2; die "cachemux -t rejected $TMP/cachemux-$name.ini"; }
    "$CACHEMUX" -c "$TMP/cachemux-$name.ini" >"$TMP/cachemux-$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_listen "$pid" "$port" "cachemux ($name)" "$TMP/cachemux-$name.log"
    wait_listen "$pid" "$stats" "cachemux ($name) stats" "$TMP/cachemux-$name.log"
    [ -n "$mport" ] && wait_listen "$pid" "$mport" "cachemux ($name) metrics" "$TMP/cachemux-$name.log"
    printf -v "PORT_$name" %s "$port"
    printf -v "STATS_$name" %s "$stats"
    printf -v "METRICS_$name" %s "$mport"
    printf -v "PID_$name" %s "$pid"
}
start_cachemux off 0
start_cachemux on 1

# Store the keyspace once (both processes place keys the same way).
run_aux "$TMP/populate.out" "$TMP/populate.err" "$MCLOAD" -s 127.0.0.1 -p "$PORT_off" -w populate -k "$KEYS" ||
    { cat "$TMP/populate.err" "$TMP/populate.out" >&2; die "populating $KEYS keys failed"; }

# --- run -------------------------------------------------------------------------
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$CACHEMUX" -V 2>&1 | sed -n 1p), $("$MEMCACHED" -V 2>&1 | sed -n 1p), $("$PYTHON" -V 2>&1)"
echo "# mcload: workload=$WORKLOAD conns=$CONNS depth=$DEPTH threads=$LOAD_THREADS keys=$KEYS duration=${DURATION}s warmup=${WARMUP}s;" \
     "cachemux workers=$WORKERS; backends: 2 x memcached -t $MC_THREADS"
echo "# off: no metrics_listen, no scraper; onN: metrics_listen set, GET /metrics + stats JSON N times a second during the run"
echo
FMT='%5s %-6s %10s %8s %8s %9s %8s %7s %7s %6s %6s\n'
printf "$FMT" round config ops/s p50_us p99_us proxy_cpu scrapes scr_err scr_cpu other% errors
printf "$FMT" ----- ------ ---------- -------- -------- --------- -------- ------- ------- ------ ------

declare -A OPS CPU
FAILURES=0
for round in $(seq "$ROUNDS"); do
    for cfg in $CONFIGS; do
        if [ "$cfg" = off ]; then
            port=$PORT_off; ppid=$PID_off; rate=0
        else
            port=$PORT_on; ppid=$PID_on; rate=${cfg#on}
        fi
        spid=
        if [ "$rate" -gt 0 ]; then
            "$PYTHON" "$TMP/scrape.py" 127.0.0.1 "$METRICS_on" "$STATS_on" "$rate" \
                >"$TMP/scrape.out" 2>"$TMP/scrape.err" &
            spid=$!
            AUX=$spid
            for i in $(seq 200); do  # python's start-up is not the scraper's cost
                grep -q '^started$' "$TMP/scrape.out" 2>/dev/null && break
                kill -0 "$spid" 2>/dev/null || die "the scraper failed: $(cat "$TMP/scrape.err")"
                sleep 0.05
            done
        fi
        p0=$(cpu_ticks "$ppid")
        m0=$(cpu_ticks "${MC_PIDS[@]}")
        w0=$(date +%s.%N); b0=$(machine_ticks)
        s0=0; [ -n "$spid" ] && s0=$(cpu_ticks "$spid")
        rc=0
        "$MCLOAD" -s 127.0.0.1 -p "$port" -w "$WORKLOAD" -N -k "$KEYS" -c "$CONNS" -d "$DEPTH" \
            -T "$LOAD_THREADS" -t "$DURATION" -W "$WARMUP" >"$TMP/mcload.out" 2>"$TMP/mcload.err" &
        load_pid=$!
        AUX="$spid $load_pid"
        wait "$load_pid" || rc=$?
        AUX=$spid
        p1=$(cpu_ticks "$ppid")
        m1=$(cpu_ticks "${MC_PIDS[@]}")
        w1=$(date +%s.%N); b1=$(machine_ticks)
        s1=0; [ -n "$spid" ] && s1=$(cpu_ticks "$spid")
        scrapes=- scr_err=- scr_cpu=-
        if [ -n "$spid" ]; then
            kill -TERM "$spid" 2>/dev/null || true
            wait "$spid" || die "the scraper failed: $(cat "$TMP/scrape.err")"
            AUX=
            sline=$(grep -v '^started$' "$TMP/scrape.out")
            scrapes=$(field scrapes "$sline")
            scr_err=$(field errors "$sline")
            # the scraper's own CPU, in % of one CPU (it shares the machine)
            scr_cpu=$(awk -v d=$((s1 - s0)) -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
                      'BEGIN { printf "%.1f", 100 * d / hz / (w1 - w0) }')
            [ "$scr_err" = 0 ] || { FAILURES=$((FAILURES + 1)); sed 's/^/# scraper: /' "$TMP/scrape.err" >&2; }
        fi
        mcload_line "$rc" "cachemux ($cfg)" "$cfg"
        line=$LINE
        total=$(field total_ops "$line")
        ops=$(field ops_per_sec "$line" | cut -d. -f1)
        pcpu=$(us_per_op $((p1 - p0)) "$total")
        lsec=$(awk -v t="$(field client_cpu_us_per_op "$line")" -v n="$total" 'BEGIN { print t * n / 1e6 }')
        other=$(awk -v busy=$((b1 - b0)) -v ours=$((p1 - p0 + m1 - m0 + s1 - s0)) -v lc="$lsec" -v hz="$CLK_TCK" \
                -v w0="$w0" -v w1="$w1" \
                'BEGIN { o = busy - ours - lc * hz; if (o < 0) o = 0;
                         printf "%.0f", (w1 > w0 ? 100 * o / hz / (w1 - w0) : 0) }')
        printf "$FMT" "$round" "$cfg" "$ops" "$(field p50_us "$line")" "$(field p99_us "$line")" \
            "$pcpu" "$scrapes" "$scr_err" "$scr_cpu" "$other" "$(field errors "$line")"
        OPS[$cfg]="${OPS[$cfg]:-} $ops"
        CPU[$cfg]="${CPU[$cfg]:-} $pcpu"
        if [ -n "$RESULTS" ]; then
            echo "config=$cfg round=$round proxy_cpu_us_per_op=$pcpu scrapes=$scrapes scrape_errors=$scr_err other_cpu_pct=$other $line" >>"$RESULTS"
        fi
        kill -0 "$ppid" 2>/dev/null || die "cachemux ($cfg, pid $ppid) died during the run (logs: KEEP=1)"
    done
done
echo
echo "# proxy_cpu: cachemux CPU us per request (its scrape handling included); scr_cpu: the scraper's own CPU, % of one CPU;"
echo "# other%: CPU used meanwhile outside cachemux, memcached, mcload and the scraper, in % of one CPU (noise indicator)"
echo
echo "# median of $ROUNDS runs; diff = (config - off) / off"
FMT2='%-6s %10s %8s %9s %8s\n'
printf "$FMT2" config ops/s diff proxy_cpu diff
printf "$FMT2" ------ ---------- -------- --------- --------
# shellcheck disable=SC2086
base_ops=$(median ${OPS[off]})
# shellcheck disable=SC2086
base_cpu=$(median ${CPU[off]})
for cfg in $CONFIGS; do
    # shellcheck disable=SC2086
    mo=$(median ${OPS[$cfg]})
    # shellcheck disable=SC2086
    mc=$(median ${CPU[$cfg]})
    if [ "$cfg" = off ]; then
        printf "$FMT2" "$cfg" "$mo" - "$mc" -
    else
        printf "$FMT2" "$cfg" "$mo" "$(awk -v a="$mo" -v b="$base_ops" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / b }')" \
            "$mc" "$(awk -v a="$mc" -v b="$base_cpu" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / b }')"
    fi
done

# --- the cost of one scrape, with no load ------------------------------------------
if [ "$IDLE_SCRAPES" -gt 0 ]; then
    mkfifo "$TMP/go"
    "$PYTHON" "$TMP/scrape.py" 127.0.0.1 "$METRICS_on" "$STATS_on" 0 "$IDLE_SCRAPES" \
        <"$TMP/go" >"$TMP/idle.out" 2>"$TMP/idle.err" &
    ipid=$!
    AUX=$ipid
    exec 7>"$TMP/go"
    wait_phase() {  # until the scraper printed its Nth "phase" line
        local i
        for i in $(seq 1200); do
            [ "$(grep -c '^phase$' "$TMP/idle.out" 2>/dev/null || true)" -ge "$1" ] && return 0
            kill -0 "$ipid" 2>/dev/null || die "the idle scraper failed: $(cat "$TMP/idle.err")"
            sleep 0.05
        done
        die "the idle scraper did not finish in 60 s"
    }
    c0=$(cpu_ticks "$PID_on"); t0=$(date +%s.%N)
    echo >&7
    wait_phase 1
    c1=$(cpu_ticks "$PID_on"); t1=$(date +%s.%N)
    echo >&7
    wait_phase 2
    c2=$(cpu_ticks "$PID_on"); t2=$(date +%s.%N)
    exec 7>&-
    wait "$ipid" || die "the idle scraper failed: $(cat "$TMP/idle.err")"
    AUX=
    iline=$(grep -v '^phase$' "$TMP/idle.out")
    [ "$(field errors "$iline")" = 0 ] || die "idle scrapes had errors: $(cat "$TMP/idle.err")"
    echo
    echo "# one scrape with no load: cachemux CPU (all threads) / $IDLE_SCRAPES back-to-back fetches of each endpoint"
    awk -v c=$((c1 - c0)) -v n="$IDLE_SCRAPES" -v hz="$CLK_TCK" -v b="$(field metrics_bytes "$iline")" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "GET /metrics: %6.1f us CPU per scrape, %.2f ms per fetch (client included), %d bytes\n", c * 1e6 / hz / n, (t1 - t0) * 1e3 / n, b }'
    awk -v c=$((c2 - c1)) -v n="$IDLE_SCRAPES" -v hz="$CLK_TCK" -v b="$(field stats_bytes "$iline")" -v t0="$t1" -v t1="$t2" \
        'BEGIN { printf "stats JSON:   %6.1f us CPU per scrape, %.2f ms per fetch (client included), %d bytes\n", c * 1e6 / hz / n, (t1 - t0) * 1e3 / n, b }'
fi
[ "$FAILURES" = 0 ] || { echo "run-metrics-cost.sh: $FAILURES run(s) had errors (mcload errors or scrape errors)" >&2; exit 1; }
