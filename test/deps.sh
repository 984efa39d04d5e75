# Sourced by test/run-tests.sh and test/run-demo.sh: installs the Debian
# packages cachemux needs to build, test and demo, when any is missing.
# The second line is for packaging: notify via libsystemd, the unit check
# (systemd-analyze), the Debian package build and its install test, the man
# page linters, promtool for the alert rules, and clang-format for the
# format check. TLS: libssl-dev to build, openssl for the tests' certificates,
# stunnel4 for the TLS benchmark beside nutcracker.
CACHEMUX_PACKAGES="gcc make autoconf automake pkg-config libevent-dev libinih-dev libyaml-dev libssl-dev openssl check \
memcached redis-server redis-tools nutcracker python3 python3-redis python3-pymemcache \
libmemcached-tools clang libclang-rt-14-dev procps iproute2 \
libsystemd-dev systemd build-essential dpkg-dev debhelper adduser logrotate man-db \
mandoc groff-base prometheus python3-yaml clang-format stunnel4"

cachemux_install_deps() {
    missing=""
    for p in $CACHEMUX_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "==> installing:$missing"
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: missing packages and not root; run: apt-get install -y$missing" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing
    fi
}

cachemux_bootstrap() {
    if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ] \
        || [ "$top/Makefile.am" -nt "$top/Makefile.in" ]; then
        echo "==> autoreconf"
        (cd "$top" && autoreconf -fi)
    fi
}

# cachemux_build DIR [configure args...]: an out-of-tree build in $top/build/DIR.
cachemux_build() {
    dir="$top/build/$1"
    shift
    mkdir -p "$dir"
    echo "==> configure $* (build/$(basename "$dir"))"
    (cd "$dir" && "$top/configure" "$@" >configure.out 2>&1) || { cat "$dir/configure.out"; exit 1; }
    echo "==> make (build/$(basename "$dir"))"
    make -C "$dir" -j"$(nproc)" >/dev/null
}
