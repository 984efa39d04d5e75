#!/bin/sh
# Builds every libFuzzer harness in test/fuzz with clang (ASan + UBSan) and
# runs them one after the other on a copy of each seed corpus, sharing one
# time budget of TOTAL seconds (default 180) equally. Fails on any crash,
# leak, sanitizer report or parse mismatch, and prints each fuzzer's
# executions and coverage.
# Usage: sh test/fuzz/run-fuzzers.sh [TOTAL_SECONDS [NAME...]]
# NAME (fuzz_mc_req, or just mc_req) runs only those harnesses.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
total=${1:-180}
[ $# -gt 0 ] && shift
harnesses=""
if [ $# -gt 0 ]; then
    for name in "$@"; do
        name=fuzz_${name#fuzz_}
        name=${name%.c}
        [ -e "$top/test/fuzz/$name.c" ] || { echo "no harness test/fuzz/$name.c" >&2; exit 2; }
        harnesses="$harnesses $top/test/fuzz/$name.c"
    done
else
    harnesses=$(ls "$top"/test/fuzz/fuzz_*.c)
fi
n=$(echo $harnesses | wc -w)
secs=$(( total / (n > 0 ? n : 1) ))
[ "$secs" -gt 0 ] || secs=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every harness links the pure modules (layer 0 of doc/layers.txt, the
# sources of libcmxcore.a) but conf*, whose inih and libyaml only the
# configuration harnesses (fuzz_conf_*) need.
pure=""
conf=""
for f in $(sed -n 's/^0 *//p' "$top/doc/layers.txt"); do
    [ -e "$top/src/$f.c" ] || continue
    case $f in
    conf*) conf="$conf $top/src/$f.c" ;;
    *) pure="$pure $top/src/$f.c" ;;
    esac
done

status=0
for src in $harnesses; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    extra=""
    case $name in fuzz_conf_*) extra="$conf -linih -lyaml" ;; esac
    # shellcheck disable=SC2086
    clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -I"$top/include" $pure "$src" $extra -o "$work/$name"
    corpus="$work/corpus-$name"
    mkdir -p "$corpus"
    seeds="$top/test/fuzz/corpus/${name#fuzz_}"
    [ -d "$seeds" ] && cp "$seeds"/* "$corpus"/ 2>/dev/null || true
    echo "==> $name for ${secs}s"
    if (cd "$work" && ./"$name" -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$work/" "$corpus" >"$work/$name.log" 2>&1); then
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$work/$name.log" | tail -3
    else
        echo "FAIL: $name"
        tail -60 "$work/$name.log"
        status=1
    fi
done
exit $status
