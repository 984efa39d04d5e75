#!/usr/bin/env bash
# run-tls.sh: what TLS costs, side by side, with redis-benchmark:
#   plain       redis-benchmark -> cachemux -> redis-server       (no TLS: the baseline)
#   cmx-tls     redis-benchmark --tls -> cachemux (tls) -> redis-server
#   cmx-tls2    redis-benchmark --tls -> cachemux (tls, server_tls) -> redis-server --tls-port
#   stunnel-nc  redis-benchmark --tls -> stunnel4 -> nutcracker -> redis-server
#               (what users run today: TLS terminated beside twemproxy)
# for GET and SET, unpipelined and with -P 16; then handshakes per second of
# one cachemux worker with `openssl s_time`, full (-new) and resumed (-reuse).
# See bench/README.md.
#
# Usage: bench/run-tls.sh [PATH/TO/cachemux]      (or CACHEMUX=... bench/run-tls.sh)
#
# Settings (environment):
#   REQUESTS=200000  -n for unpipelined cells;  PIPE_REQUESTS=1000000 for -P > 1
#   PIPELINES="1 16" CONNS=50  VALUE_SIZE=100  KEYS=10000  TESTS="get set"
#   TARGETS="plain cmx-tls cmx-tls2 stunnel-nc"
#   WORKERS=1        cachemux workers (stunnel and nutcracker are one thread each)
#   HS_SECONDS=5     seconds of each s_time run
#   PROXY_CPU, LOAD_CPU  pin the proxies / the load generator (taskset)
#   KEEP=1           keep the temp dir
# proxy_cpu is the CPU time of the proxy (cachemux; stunnel4 + nutcracker for
# stunnel-nc) per request, in microseconds.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib.sh"
CACHEMUX=${1:-${CACHEMUX:-}}
REQUESTS=${REQUESTS:-200000}
PIPE_REQUESTS=${PIPE_REQUESTS:-1000000}
PIPELINES=${PIPELINES:-"1 16"}
CONNS=${CONNS:-50}
VALUE_SIZE=${VALUE_SIZE:-100}
KEYS=${KEYS:-10000}
TESTS=${TESTS:-"get set"}
TARGETS=${TARGETS:-"plain cmx-tls cmx-tls2 stunnel-nc"}
WORKERS=${WORKERS:-1}
HS_SECONDS=${HS_SECONDS:-5}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-$(command -v redis-benchmark || true)}
NUTCRACKER=${NUTCRACKER:-/usr/sbin/nutcracker}
STUNNEL=${STUNNEL:-$(command -v stunnel4 || command -v stunnel || true)}

[ -n "$CACHEMUX" ] && [ -x "$CACHEMUX" ] || die "usage: $0 PATH/TO/cachemux"
[ -x "$REDIS_SERVER" ] && [ -x "$REDIS_BENCHMARK" ] || die "needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)"
command -v openssl >/dev/null || die "needs openssl (apt-get install openssl)"
case " $TARGETS " in *" stunnel-nc "*)
    [ -n "$STUNNEL" ] && [ -x "$NUTCRACKER" ] || die "stunnel-nc needs stunnel4 and nutcracker (apt-get install stunnel4 nutcracker), or leave it out of TARGETS";;
esac

bench_setup cmx-tls-bench
[ "${KEEP:-}" = 1 ] && trap 'bench_cleanup; echo "kept $TMP"' EXIT

# ---- certificates: a CA and a server certificate for 127.0.0.1
(
    cd "$TMP"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj "/CN=bench CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >srv.ext
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
        -extfile srv.ext 2>/dev/null
) || die "openssl could not make the certificates"
CA=$TMP/ca.pem PEM=$TMP/srv.pem KEY=$TMP/srv.key

# ---- two redis-server backends, each with a plaintext and a TLS port
RS_PORTS=() RS_TLS=() RS_PIDS=()
for i in 1 2; do
    p=$(free_port)
    t=$(free_port)
    "$REDIS_SERVER" --port "$p" --tls-port "$t" --bind 127.0.0.1 --save "" --appendonly no \
        --tls-cert-file "$PEM" --tls-key-file "$KEY" --tls-ca-cert-file "$CA" \
        --tls-auth-clients no --dir "$TMP" --dbfilename "r$i.rdb" >"$TMP/redis$i.log" 2>&1 &
    PIDS+=("$!")
    RS_PIDS+=("$!")
    wait_listen "$!" "$p" "redis $i" "$TMP/redis$i.log"
    RS_PORTS+=("$p")
    RS_TLS+=("$t")
done

# ---- cachemux: one process, three pools
CMX_PLAIN=$(free_port) CMX_TLS=$(free_port) CMX_TLS2=$(free_port)
pool() {  # pool NAME PORT PORT1 PORT2 EXTRA...
    local name=$1 port=$2 p1=$3 p2=$4
    shift 4
    printf '\n[pool %s]\nlisten = 127.0.0.1:%s\nredis = true\npreconnect = true\ntimeout = 2000\n' \
        "$name" "$port"
    printf '%s\n' "$@"
    printf 'server = 127.0.0.1:%s:1 r1\nserver = 127.0.0.1:%s:1 r2\n' "$p1" "$p2"
}
{
    printf '[cachemux]\nworkers = %s\nstats_listen = 127.0.0.1:%s\nlog_level = 4\nshutdown_timeout = 1000\n' \
        "$WORKERS" "$(free_port)"
    pool plain "$CMX_PLAIN" "${RS_PORTS[@]}"
    pool tls "$CMX_TLS" "${RS_PORTS[@]}" "tls = true" "tls_cert_file = $PEM" "tls_key_file = $KEY"
    pool tls2 "$CMX_TLS2" "${RS_TLS[@]}" "tls = true" "tls_cert_file = $PEM" "tls_key_file = $KEY" \
        "server_tls = true" "server_tls_ca_file = $CA"
} >"$TMP/cachemux.ini"
"${PROXY_PIN[@]}" "$CACHEMUX" -c "$TMP/cachemux.ini" >"$TMP/cachemux.log" 2>&1 &
CMX_PID=$!
PIDS+=("$CMX_PID")
wait_listen "$CMX_PID" "$CMX_TLS2" cachemux "$TMP/cachemux.log"

# ---- stunnel4 in front of nutcracker
SN_PORT= SN_PIDS=()
case " $TARGETS " in *" stunnel-nc "*)
    start_nutcracker true r1 "${RS_PORTS[0]}" r2 "${RS_PORTS[1]}"
    SN_PORT=$(free_port)
    cat >"$TMP/stunnel.conf" <<EOF
foreground = yes
pid =
debug = 3
[redis]
accept = 127.0.0.1:$SN_PORT
connect = 127.0.0.1:$NC_PORT
cert = $PEM
key = $KEY
EOF
    "${PROXY_PIN[@]}" "$STUNNEL" "$TMP/stunnel.conf" >"$TMP/stunnel.log" 2>&1 &
    PIDS+=("$!")
    wait_listen "$!" "$SN_PORT" stunnel "$TMP/stunnel.log"
    SN_PIDS=("$!" "$NC_PID")
;; esac

target_port() {
    case $1 in
    plain) echo "$CMX_PLAIN" ;; cmx-tls) echo "$CMX_TLS" ;; cmx-tls2) echo "$CMX_TLS2" ;;
    stunnel-nc) echo "$SN_PORT" ;;
    esac
}
target_pids() {
    case $1 in stunnel-nc) echo "${SN_PIDS[@]}" ;; *) echo "$CMX_PID" ;; esac
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; cachemux workers=$WORKERS; $(openssl version)"
pin_note
echo "# redis-benchmark -c $CONNS -r $KEYS -d $VALUE_SIZE --csv, -n $REQUESTS (-P 1) / $PIPE_REQUESTS (-P >1)"
FMT="%-11s %-4s %3s %10s %8s %8s %10s\n"
printf "$FMT" target test P ops/s p50_us p99_us proxy_us/req
ms_to_us() { awk -v v="$1" 'BEGIN { printf "%.0f", v * 1000 }'; }
for target in $TARGETS; do
    port=$(target_port "$target")
    tls=()
    [ "$target" != plain ] && tls=(--tls --cacert "$CA")
    for test in $TESTS; do
        for pipe in $PIPELINES; do
            n=$REQUESTS
            [ "$pipe" -gt 1 ] && n=$PIPE_REQUESTS
            p0=$(cpu_ticks $(target_pids "$target"))
            run_aux "$TMP/rb.out" "$TMP/rb.err" "${LOAD_PIN[@]}" "$REDIS_BENCHMARK" -h 127.0.0.1 \
                -p "$port" "${tls[@]}" -c "$CONNS" -n "$n" -P "$pipe" -r "$KEYS" -d "$VALUE_SIZE" \
                -t "$test" --csv || { cat "$TMP/rb.err" >&2; die "redis-benchmark failed on $target"; }
            p1=$(cpu_ticks $(target_pids "$target"))
            row=$(grep -v '^"test"' "$TMP/rb.out" | tail -1 | tr -d '"\r')
            IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$row"
            pcpu=$(awk -v d=$((p1 - p0)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
            printf "$FMT" "$target" "$test" "$pipe" "$rps" "$(ms_to_us "$p50")" "$(ms_to_us "$p99")" "$pcpu"
        done
    done
done

# ---- handshakes per second (one s_time client; cachemux with WORKERS workers)
echo
echo "# openssl s_time -time $HS_SECONDS against the tls pool: full handshakes (-new) and resumed (-reuse);"
echo "# s_time offers a session right after the handshake, before a TLS 1.3 ticket can come, so"
echo "# resumption is measured with TLS 1.2 (tickets)"
for mode in "new" "new -tls1_2" "reuse -tls1_2"; do
    c0=$(cpu_ticks "$CMX_PID")
    # shellcheck disable=SC2086
    run_aux "$TMP/st.out" "$TMP/st.err" "${LOAD_PIN[@]}" openssl s_time -connect "127.0.0.1:$CMX_TLS" \
        -CAfile "$CA" -$mode -time "$HS_SECONDS" || true
    c1=$(cpu_ticks "$CMX_PID")
    conns=$(sed -n 's/^\([0-9]*\) connections in [0-9.]* real seconds.*/\1/p' "$TMP/st.out" | tail -1)
    rate=$(sed -n 's/.*; \([0-9.]*\) connections\/user sec.*/\1/p' "$TMP/st.out" | tail -1)
    [ -n "$conns" ] || { cat "$TMP/st.out" "$TMP/st.err" >&2; die "s_time gave no figure"; }
    per=$(awk -v c="$conns" -v s="$HS_SECONDS" 'BEGIN { printf "%.0f", c / s }')
    cpu=$(awk -v d=$((c1 - c0)) -v c="$conns" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", d * 1e6 / hz / c }')
    printf "%-14s %8s handshakes/s (wall)  %8s /s of s_time's CPU  cachemux %s us CPU per handshake\n" \
        "$mode" "$per" "$rate" "$cpu"
done
