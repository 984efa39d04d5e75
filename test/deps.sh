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
mandoc groff-base prometheus python3-yaml clang-format nodejs stunnel4"

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

# The Node.js clients test/integration/test_node_clients.py drives, pinned,
# from the npm registry into build/node (outside the source tree).
CACHEMUX_NODE_CLIENTS="redis@6.4.0 ioredis@6.1.0"

cachemux_node_clients() {
    dir="$top/build/node"
    if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$CACHEMUX_NODE_CLIENTS" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        # Debian's nodejs ships without npm (NodeSource's includes it): the
        # package only when the command is missing, so as not to fight a
        # nodejs that brings its own.
        echo "==> installing: npm"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends npm
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "==> npm not found: the Node.js client tests will skip (or fail under CACHEMUX_REQUIRE_ALL=1)"
        return 0
    fi
    echo "==> npm install $CACHEMUX_NODE_CLIENTS (build/node)"
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    (cd "$dir" && npm install --no-save --no-audit --no-fund --prefix "$dir" $CACHEMUX_NODE_CLIENTS >npm.log 2>&1) \
        || { cat "$dir/npm.log"; exit 1; }
    echo "$CACHEMUX_NODE_CLIENTS" >"$dir/.installed"
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
