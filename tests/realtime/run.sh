#!/usr/bin/env bash
# Black-box Engine.IO v4 / Socket.IO v5 protocol tests against a conformance server.
#
#   bash tests/realtime/run.sh <command to start the server...>
#   bash tests/realtime/run.sh node tests/realtime/reference-server.js
#   bash tests/realtime/run.sh build/tablium_sio_conformance
#
# The server must listen on 127.0.0.1:$PORT (PORT is set by this script).
# Prints one summary line "realtime-protocol: N passed, N failed" and exits
# non-zero if a test failed, none ran, or the server died.
#
#   REALTIME_TESTS="rooms.test.js"  the suites to run (default: the three protocol suites)
#   REALTIME_LABEL=realtime-rooms   the summary line's name
#   REALTIME_PATTERN="rooms|JWT"    only the tests whose names match (node --test-name-pattern)
#   a server command of "-": start no server (the suites start their own, cluster.test.js)
set -u
LABEL="${REALTIME_LABEL:-realtime-protocol}"
TESTS="${REALTIME_TESTS:-engineio.test.js socketio.test.js client.test.js}"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ "$#" -eq 0 ]; then
  echo "usage: bash tests/realtime/run.sh <server command...>" >&2
  exit 2
fi
if ! command -v node >/dev/null 2>&1; then
  echo "$LABEL: node is not installed" >&2
  echo "$LABEL: 0 passed, 1 failed"
  exit 1
fi

if [ ! -d "$HERE/node_modules/socket.io-client" ] || [ ! -d "$HERE/node_modules/ws" ] ||
  [ ! -d "$HERE/node_modules/@socket.io/redis-adapter" ]; then
  echo "$LABEL: installing test dependencies (npm ci)" >&2
  if ! (cd "$HERE" && npm ci --no-audit --no-fund >&2); then
    echo "$LABEL: npm ci failed" >&2
    echo "$LABEL: 0 passed, 1 failed"
    exit 1
  fi
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/realtime-protocol.XXXXXX")"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
')"
NO_SERVER=0
[ "$1" = "-" ] && NO_SERVER=1
if [ -z "$PORT" ]; then
  echo "$LABEL: could not pick a free port" >&2
  echo "$LABEL: 0 passed, 1 failed"
  exit 1
fi

if [ "$NO_SERVER" -eq 1 ]; then
  sleep infinity &
else
  PORT="$PORT" "$@" >"$WORK/server.log" 2>&1 &
fi
SERVER_PID=$!
touch "$WORK/server.log"

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

ready=0
for _ in $(seq 1 100); do # up to 10 s
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    break
  fi
  if [ "$NO_SERVER" -eq 1 ] || port_open; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ "$ready" -ne 1 ]; then
  echo "$LABEL: server did not accept connections on 127.0.0.1:$PORT within 10 s" >&2
  echo "--- server log ---" >&2
  tail -n 50 "$WORK/server.log" >&2
  echo "$LABEL: 0 passed, 1 failed"
  exit 1
fi

TAP="$WORK/tap.txt"
(
  cd "$HERE" &&
    SIO_URL="http://127.0.0.1:$PORT" timeout 110 node --test --test-concurrency=1 --test-reporter=tap \
      ${REALTIME_PATTERN:+--test-name-pattern="$REALTIME_PATTERN"} $TESTS
) >"$TAP" 2>&1
TEST_RC=$?
cat "$TAP"

PASS="$(grep -E '^# pass [0-9]+$' "$TAP" | tail -n 1 | awk '{print $3}')"
FAIL="$(grep -E '^# fail [0-9]+$' "$TAP" | tail -n 1 | awk '{print $3}')"
CANCELLED="$(grep -E '^# cancelled [0-9]+$' "$TAP" | tail -n 1 | awk '{print $3}')"
PASS="${PASS:-0}"
FAIL="${FAIL:-0}"
FAIL=$((FAIL + ${CANCELLED:-0}))

rc=0
if [ "$TEST_RC" -ne 0 ] && [ "$FAIL" -eq 0 ]; then
  # runner crashed or timed out without a summary
  echo "$LABEL: test runner exited with status $TEST_RC" >&2
  FAIL=$((FAIL + 1))
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "$LABEL: the server died during the run" >&2
  FAIL=$((FAIL + 1))
fi
# a clean stop: SIGTERM, then exit status 0 (a sanitizer report at exit, a leak or a crash
# while stopping fails the run)
if [ "$NO_SERVER" -eq 0 ] && kill -0 "$SERVER_PID" 2>/dev/null; then
  kill "$SERVER_PID" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  wait "$SERVER_PID" 2>/dev/null
  SERVER_RC=$?
  SERVER_PID=""
  if [ "$SERVER_RC" -ne 0 ]; then
    echo "$LABEL: the server exited with status $SERVER_RC when stopped" >&2
    FAIL=$((FAIL + 1))
  fi
fi
if [ "$PASS" -eq 0 ] && [ "$FAIL" -eq 0 ]; then
  echo "$LABEL: no test ran" >&2
  FAIL=1
fi
if [ "$FAIL" -ne 0 ]; then
  rc=1
  echo "--- server log (last 30 lines) ---" >&2
  tail -n 30 "$WORK/server.log" >&2
fi

echo "$LABEL: $PASS passed, $FAIL failed"
exit "$rc"
