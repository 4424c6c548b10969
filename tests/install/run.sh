#!/usr/bin/env bash
# Out-of-tree use, as a team with its own repository would: install tablium into a fresh prefix
# (cmake --install), build examples/greeter (its spec + handlers only) against it with
# find_package(tablium) + tablium_add_service, run the service, call it through its generated
# client, and check the installed tablium-gen, pkg-config files and that a service without events
# links no broker library; then a Socket.IO server (examples/sio_conformance) built against the
# same prefix, with find_package's tablium::realtime and with pkg-config's tablium-realtime,
# answers an Engine.IO handshake.
#   tests/install/run.sh BUILD_DIR
# Prints: install-example: ...
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/tablium-install.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "install-example: FAIL: $*" >&2; exit 1; }

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install"; }

# the installed generator runs from anywhere (its package comes along)
(cd "$work" && "$prefix/bin/tablium-gen" --version) | grep -q '^tablium-gen ' ||
    fail "installed tablium-gen --version"

# the example, copied out of the tree: nothing of the repository is on its paths
cp -r "$repo/examples/greeter" "$work/greeter"
cmake -S "$work/greeter" -B "$work/greeter/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log" >&2; fail "configure examples/greeter"; }
cmake --build "$work/greeter/build" -j 2 >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; fail "build examples/greeter"; }
svc=$work/greeter/build/greeter_service
call=$work/greeter/build/greeter_call
[ -x "$svc" ] && [ -x "$call" ] || fail "no greeter_service / greeter_call"

# a service without events links no broker library
if readelf -d "$svc" | grep -Ei 'NEEDED.*(rabbitmq|hiredis)'; then
    fail "greeter_service links a broker library"
fi

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GREETER_PORT=$port GREETER_HOST=127.0.0.1 "$svc" >"$work/svc.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/svc.log" >&2; fail "greeter_service exited"; }
    sleep 0.1
done

out=$("$call" "http://127.0.0.1:$port/v1") || { echo "$out"; cat "$work/svc.log" >&2; fail "greeter_call"; }
echo "$out" | grep -qx 'getGreeting: Bonjour, Ada! (fr)' || fail "getGreeting answered: $out"
echo "$out" | grep -qx 'createGreeting: Good day, Dr Grace.' || fail "createGreeting (formal): $out"
echo "$out" | grep -qx 'createGreeting: Hi Linus!' || fail "createGreeting (casual): $out"

# an unknown discriminator value: 400 naming the property and the allowed values
bad=$(curl -s -o "$work/bad.json" -w '%{http_code}' -H 'Content-Type: application/json' \
      -d '{"kind":"royal","name":"x"}' "http://127.0.0.1:$port/v1/greetings")
[ "$bad" = 400 ] || fail "unknown kind answered $bad"
grep -q '"/body/kind"' "$work/bad.json" && grep -q 'discriminator' "$work/bad.json" ||
    fail "unknown kind error: $(cat "$work/bad.json")"

kill -TERM "$pid"
wait "$pid" || fail "greeter_service exited $? on SIGTERM"
pid=

# pkg-config: a program built with the flags the installed tablium.pc gives
cat >"$work/pc.c" <<'C'
#include "tablium/arena.h"
#include <stdio.h>
int main(void)
{
    tb_arena *a = tb_arena_new(0);
    const char *s = tb_arena_printf(a, "%s-%d", "pc", 7);
    int ok = s && s[0] == 'p';
    puts(s);
    tb_arena_free(a);
    return ok ? 0 : 1;
}
C
PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig
export PKG_CONFIG_PATH
cc -o "$work/pc" "$work/pc.c" $(pkg-config --cflags --libs tablium) || fail "cc with pkg-config tablium"
[ "$("$work/pc")" = "pc-7" ] || fail "pkg-config program"
pkg-config --exists tablium-bus || fail "tablium-bus.pc"

# realtime: the conformance server out of the tree, with CMake (tablium::realtime) and pkg-config
mkdir -p "$work/rt"
cp "$repo/examples/sio_conformance/main.c" "$work/rt/main.c"
cat >"$work/rt/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(rt C)
find_package(tablium REQUIRED)
add_executable(rt_server main.c)
target_link_libraries(rt_server PRIVATE tablium::realtime)
CM
cmake -S "$work/rt" -B "$work/rt/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$work/rt-configure.log" 2>&1 ||
    { cat "$work/rt-configure.log" >&2; fail "configure the realtime example"; }
cmake --build "$work/rt/build" >"$work/rt-build.log" 2>&1 ||
    { cat "$work/rt-build.log" >&2; fail "build the realtime example with tablium::realtime"; }
cc -Wall -Wextra -Werror -o "$work/rt/rt_pc" "$work/rt/main.c" \
    $(pkg-config --cflags --libs tablium-realtime) || fail "cc with pkg-config tablium-realtime"
for bin in "$work/rt/build/rt_server" "$work/rt/rt_pc"; do
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    PORT=$port "$bin" >"$work/rt.log" 2>&1 &
    pid=$!
    open=
    for _ in $(seq 1 100); do
        open=$(curl -sf "http://127.0.0.1:$port/socket.io/?EIO=4&transport=polling" 2>/dev/null) && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/rt.log" >&2; fail "$bin exited"; }
        sleep 0.1
    done
    case $open in
        0\{\"sid\":*) ;;
        *) cat "$work/rt.log" >&2; fail "$bin: Engine.IO handshake answered '$open'" ;;
    esac
    kill -TERM "$pid"
    wait "$pid" || fail "$bin exited $? on SIGTERM"
    pid=
done

echo "install-example: examples/greeter built against an installed prefix (find_package + tablium_add_service), 3 calls through its generated client ok, unknown discriminator 400, no broker library linked, pkg-config ok; a Socket.IO server built with tablium::realtime and with pkg-config tablium-realtime answered its handshake"
