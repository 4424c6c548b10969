#!/usr/bin/env bash
# A bounded valgrind run of the realtime server: rt_rooms_server under memcheck while the rooms
# suite (socket.io-client: rooms, broadcasts, server acks, disconnect reasons, middleware and
# JWT refusals, namespace patterns, posts from another thread) runs against it, then SIGTERM.
# Fails on any memcheck error or leak (definite, indirect, possible) or a non-zero exit (run.sh
# checks the server's exit status). Prints "valgrind-realtime: clean ..." when it is.
#   bash tests/realtime/valgrind.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
LOG=$(mktemp "${TMPDIR:-/tmp}/tb-vg-rt.XXXXXX")
trap 'rm -f "$LOG"' EXIT
# the slow-client, memory and 1,000-client cases measure timing and allocator figures that
# valgrind's own allocator and pace change: they run in the ASan suite instead
rooms() { # LABEL LOOPS PATTERN: the rooms suite against rt_rooms_server under memcheck
  local label=$1 loops=$2 pattern=$3 rc
  : >"$LOG"
  set +e
  TB_RT_LOOPS=$loops REALTIME_TESTS=rooms.test.js REALTIME_LABEL=$label \
    REALTIME_PATTERN=$pattern \
    TB_TEST_JWT_SECRET=0123456789abcdef0123456789abcdef-rooms TB_RT_SANITIZED=1 \
    bash tests/realtime/run.sh valgrind --quiet --leak-check=full \
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=9 --log-file="$LOG" "$BUILD/tests/realtime/rt_rooms_server" >"$LOG.out" 2>&1
  rc=$?
  set -e
  summary=$(grep "^$label:" "$LOG.out" | tail -1)
  if [ "$rc" -ne 0 ] || [ -s "$LOG" ]; then
    tail -40 "$LOG.out" >&2
    echo "--- valgrind ---" >&2
    cat "$LOG" >&2
    rm -f "$LOG.out"
    echo "valgrind-realtime: FAILED ($summary)"
    exit 1
  fi
  rm -f "$LOG.out"
}
rooms valgrind-realtime 1 'room|binary|ack|disconnect|middleware|JWT|pattern|post'
one=$summary
# two event loops: the acceptor thread, the hand-over of connections, broadcasts across loops
rooms valgrind-realtime-loops 2 'room broadcast|binary|ack|several|post'
two=$summary
summary="${one#valgrind-realtime: }; 2 loops ${two#valgrind-realtime-loops: }"
# connection state recovery: a private Redis (unless the caller gives one), and two nodes under memcheck (one killed with SIGKILL and replaced on its
# port, which memcheck cannot report on; the others stop with SIGTERM and must be clean)
REDIS_DIR=
if [ -z "${TB_TEST_REDIS_URL:-}" ]; then
  REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tb-vg-redis.XXXXXX")
  trap 'rm -f "$LOG"; bash scripts/redis.sh stop "$REDIS_DIR" >/dev/null 2>&1 || true; rm -rf "$REDIS_DIR"' EXIT
  TB_TEST_REDIS_URL=$(bash scripts/redis.sh start "$REDIS_DIR")
  export TB_TEST_REDIS_URL
fi
set +e
REALTIME_TESTS=recovery.test.js REALTIME_LABEL=valgrind-recovery TB_RT_SANITIZED=1 \
  TB_RT_VALGRIND_LOG="$LOG.rec" TB_RT_ROOMS_SERVER="$(cd "$BUILD" && pwd)/tests/realtime/rt_rooms_server" \
  bash tests/realtime/run.sh - >"$LOG.out" 2>&1
rc=$?
set -e
rsummary=$(grep '^valgrind-recovery:' "$LOG.out" | tail -1)
if [ "$rc" -ne 0 ] || [ -n "$(find "$(dirname "$LOG")" -maxdepth 1 -name "$(basename "$LOG").rec.*" -size +0)" ]; then
  tail -40 "$LOG.out" >&2
  echo "--- valgrind ---" >&2
  cat "$LOG".rec.* >&2 2>/dev/null
  rm -f "$LOG.out" "$LOG".rec.*
  echo "valgrind-realtime: FAILED (recovery: $rsummary)"
  exit 1
fi
rm -f "$LOG.out" "$LOG".rec.*
echo "valgrind-realtime: clean (no errors, no leaks, exit 0); ${summary}; recovery ${rsummary#valgrind-recovery: }"
