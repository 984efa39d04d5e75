#!/usr/bin/env bash
# run-all.sh: every scenario of bench/README.md "Scenarios", in one command,
# each side by side with nutcracker and the backend directly, then a summary.
#
# Usage: bench/run-all.sh [PATH/TO/cachemux]      (or CACHEMUX=... bench/run-all.sh)
#
#   large     100 KB and 1 MB SET and GET, memcached (mcload) and Redis
#             (redis-benchmark), 50 clients, workers = 1
#   pipeline  500 clients x -P 100 GET (Redis), workers = 1
#   idle      10,000 idle client connections: bytes each (bench/idle.py)
#   workers   Redis backend CPU per request with workers = 1, 2, 4, 8 at 50
#             and 500 clients (unpinned: 8 workers on one CPU would measure
#             the pinning), then 8 workers with the pool's workers = 1 and 2
#   small     100-byte getset (memcached), workers = 1: syscalls per request
#   floor     the kernel's share alone: CPU per 100 KB and 1 MB message of a
#             thread that only forwards them between loopback sockets, by
#             copy and by splice(2) (bench/floor.c), the least any proxy pays
#
# Settings (environment):
#   SCENARIOS="large pipeline idle workers small floor"
#   ROUNDS=3             rounds of each interleaved matrix (medians are reported)
#   PROXY_CPU=1 LOAD_CPU=0   where the proxies and the load generators run
#                        (empty to leave them unpinned; default when nproc >= 2)
#   OUT=DIR              where the raw results and the summary go
#                        (default /tmp/cachemux-bench.XXXXXX)
#
# Run it alone: a build, a test run or a fuzzer beside it measures the noise.
# The load average at the start is printed with the figures.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHEMUX=${1:-${CACHEMUX:-}}
[ -n "$CACHEMUX" ] && [ -x "$CACHEMUX" ] || { echo "run-all.sh: no cachemux binary (argument or CACHEMUX)" >&2; exit 1; }
CACHEMUX=$(cd "$(dirname "$CACHEMUX")" && pwd)/$(basename "$CACHEMUX")
export CACHEMUX
SCENARIOS=${SCENARIOS:-large pipeline idle workers small floor}
ROUNDS=${ROUNDS:-3}
if [ "$(nproc)" -ge 2 ]; then
    PROXY_CPU=${PROXY_CPU-1}
    LOAD_CPU=${LOAD_CPU-0}
else
    PROXY_CPU=${PROXY_CPU-}
    LOAD_CPU=${LOAD_CPU-}
fi
OUT=${OUT:-$(mktemp -d /tmp/cachemux-bench.XXXXXX)}
mkdir -p "$OUT"

echo "# run-all.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# cachemux: $CACHEMUX ($("$CACHEMUX" -V 2>&1 | head -1)); results in $OUT"

pinned() { PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU "$@"; }

for s in $SCENARIOS; do
    echo
    echo "## $s"
    case $s in
    large)
        for size in 102400 1048576; do
            keys=200; [ "$size" -gt 200000 ] && keys=50
            reqs=50000; [ "$size" -gt 200000 ] && reqs=5000
            pinned env WORKLOADS="set get" VALUE_SIZE=$size KEYS=$keys MC_ITEM_MAX=2m MC_MEMORY=1024 \
                WORKERS=1 ROUNDS="$ROUNDS" DURATION=5 WARMUP=1 SYSCALLS=1 SYSCALL_REQS=2000 \
                RESULTS="$OUT/large-mc.txt" "$BENCH_DIR/run-mc.sh" | tee -a "$OUT/large-mc.log"
            pinned env TESTS="set get" PIPELINES=1 VALUE_SIZE=$size KEYS=$keys REQUESTS=$reqs \
                WORKERS=1 ROUNDS="$ROUNDS" SYSCALLS=1 SYSCALL_REQS=2000 \
                RESULTS="$OUT/large-redis.txt" "$BENCH_DIR/run-redis.sh" | tee -a "$OUT/large-redis.log"
        done
        ;;
    pipeline)
        pinned env CONNS=500 PIPELINES=100 TESTS=get PIPE_REQUESTS=3000000 WORKERS=1 ROUNDS="$ROUNDS" \
            RESULTS="$OUT/pipeline.txt" "$BENCH_DIR/run-redis.sh" | tee "$OUT/pipeline.log"
        ;;
    idle)
        python3 "$BENCH_DIR/idle.py" "$CACHEMUX" | tee "$OUT/idle.log"
        ;;
    workers)
        for w in 1 2 4 8; do
            for c in 50 500; do
                env TARGETS="redis cachemux" TESTS=get PIPELINES=1 CONNS=$c WORKERS=$w REQUESTS=200000 \
                    ROUNDS=1 RESULTS="$OUT/workers.txt" "$BENCH_DIR/run-redis.sh" | tee -a "$OUT/workers.log"
            done
        done
        # the remedy: 8 workers, the pool served by 1 and by 2 of them
        for pw in 1 2; do
            for c in 50 500; do
                env TARGETS="cachemux" TESTS=get PIPELINES=1 CONNS=$c WORKERS=8 POOL_WORKERS=$pw \
                    REQUESTS=200000 ROUNDS=1 RESULTS="$OUT/workers.txt" "$BENCH_DIR/run-redis.sh" |
                    tee -a "$OUT/workers.log"
            done
        done
        ;;
    small)
        pinned env WORKLOADS=getset WORKERS=1 ROUNDS="$ROUNDS" DURATION=5 SYSCALLS=1 \
            RESULTS="$OUT/small.txt" "$BENCH_DIR/run-mc.sh" | tee "$OUT/small.log"
        ;;
    floor)
        "${CC:-cc}" -O2 -std=c11 -pthread -o "$OUT/floor" "$BENCH_DIR/floor.c"
        for r in $(seq "$ROUNDS"); do
            "$OUT/floor" 102400 20000 ${PROXY_CPU:+$PROXY_CPU $LOAD_CPU} | tee -a "$OUT/floor.txt"
            "$OUT/floor" 1048576 2000 ${PROXY_CPU:+$PROXY_CPU $LOAD_CPU} | tee -a "$OUT/floor.txt"
        done
        ;;
    *)
        echo "run-all.sh: unknown scenario '$s'" >&2
        exit 1
        ;;
    esac
done

echo
python3 "$BENCH_DIR/summarize.py" "$OUT" | tee "$OUT/summary.txt"
