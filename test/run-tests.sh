#!/bin/sh
# Builds cachemux and runs the whole test suite: the format check
# (.clang-format), gcc and clang -Werror builds
# (clang without libsystemd, so that the notify fallback is built and tested
# too), unit and integration tests on a normal build and on an ASan+UBSan
# build, the tests that exercise threads (multi-worker, reload, stop, stats)
# on a ThreadSanitizer build, the release tarball's own build and test (make distcheck), the
# Debian package built from that tarball, installed, run and purged, and a
# short run of every fuzzer. Installs missing Debian packages first (as root).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/test/deps.sh"

cachemux_install_deps
cachemux_node_clients
export CACHEMUX_NODE_MODULES="$top/build/node/node_modules"
cachemux_bootstrap

# Integration tests must not skip for a missing backend here.
export CACHEMUX_REQUIRE_ALL=1
jobs=$(nproc)
start=$(date +%s)

# The whole log of every test automake recorded as failed under DIR (the
# summary alone does not say what went wrong).
show_failures() {
    grep -rl '^:test-result: \(FAIL\|ERROR\)' "$1" --include='*.trs' 2>/dev/null |
    while read -r trs; do
        echo "==> ${trs%.trs}.log"
        tail -400 "${trs%.trs}.log"
    done
}

cachemux_build gcc CC=gcc --enable-werror
echo "==> make format-check"
make -C "$top/build/gcc" format-check
echo "==> make check (gcc)"
make -C "$top/build/gcc" -j"$jobs" check || { show_failures "$top/build/gcc/test"; exit 1; }

cachemux_build clang CC=clang --enable-werror --without-systemd
echo "==> test_systemd.py (build/clang: notify without libsystemd)"
(cd "$top" && top_srcdir="$top" top_builddir="$top/build/clang" CACHEMUX="$top/build/clang/cachemux" \
    /usr/bin/python3 test/integration/test_systemd.py >"$top/build/clang/test_systemd.log" 2>&1) \
    || { cat "$top/build/clang/test_systemd.log"; exit 1; }

cachemux_build asan CC=gcc --enable-werror --enable-sanitizers
echo "==> make check (ASan + UBSan)"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    make -C "$top/build/asan" -j"$jobs" check || { show_failures "$top/build/asan/test"; exit 1; }

# ThreadSanitizer: what it can prove, the tests where threads meet (workers
# sharing ejection state and client counts, reloads switching generations,
# a graceful stop, stats and metrics read while workers count).
cachemux_build tsan CC=gcc --enable-werror --enable-tsan
echo "==> ThreadSanitizer (build/tsan)"
tsan_run() {
    file=$1
    shift
    log="$top/build/tsan/$(basename "$file" .py).log"
    (cd "$top" && top_srcdir="$top" top_builddir="$top/build/tsan" CACHEMUX="$top/build/tsan/cachemux" \
        CACHEMUX_SANITIZED=1 /usr/bin/python3 "test/integration/$file" "$@" >"$log" 2>&1) \
        || { cat "$log"; exit 1; }
    tail -1 "$log"
}
tsan_run test_reload.py ReloadUnderLoad UnchangedPool AddRemovePool RetireDeadline
tsan_run test_ops.py WorkersShareLoad GracefulStop stats_json_counts metrics_format
tsan_run test_failures.py Ejection ClientLimit KilledUnderLoad

echo "==> make distcheck"
make -C "$top/build/gcc" -j"$jobs" distcheck >"$top/build/distcheck.log" 2>&1 \
    || { tail -60 "$top/build/distcheck.log"; show_failures "$top/build/gcc"; exit 1; }

echo "==> Debian package"
sh "$top/test/test-deb.sh"     # from the tarball distcheck left in build/gcc

echo "==> fuzzers"
make -C "$top/build/gcc" fuzz FUZZ_SECONDS="${CACHEMUX_FUZZ_SECONDS:-180}"

echo "==> all tests passed in $(( $(date +%s) - start )) s"
