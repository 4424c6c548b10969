#!/usr/bin/env bash
# bench events: the event bus (bench_events_ours: typed publish and subscribe through the
# generated gen/events API) against the bare clients of the same brokers, in one run:
#   events-redis          game.move.made 1.0 over Redis Pub/Sub, typed publish -> typed handler
#                         (envelope built and validated, JSON parsed and validated again on the
#                         consumer, decoded into the C struct), msgs/s from the first publish to
#                         the last event handled, and the publish-to-handler latency; against
#                         `redis-benchmark -P 16 -n N PUBLISH chan <200 B>` with one subscriber
#                         (redis-cli) attached (msgs/s published; its p50/p99 are PUBLISH
#                         round trips, shown for reference only)
#   events-amqp-publish   wallet.transaction.created 1.0, durable: N persistent events with
#                         publisher confirms, at most WINDOW unconfirmed, to the topic exchange
#                         and queue "bench-sink"; against bench_events_bare_amqp (bare_amqp.c,
#                         rabbitmq-c 0.11): N persistent messages shaped like ours, so that the
#                         broker does the same work for both: as many bytes as ours' envelope
#                         (640), through a durable topic exchange and one binding to a durable
#                         queue (mandatory), with a message_id per message, type, correlation_id
#                         and the headers x-tablium-version, traceparent and x-tablium-key; the same confirm
#                         window. (The broker's own cost depends on that shape: a bare client
#                         reading 200-byte messages with no properties consumes 1.3-3x faster
#                         than the same client reading tablium-shaped ones, which made the
#                         earlier comparison one of message shapes, not of clients.)
#   events-amqp-consume   the N events consumed by a bus with prefetch PREFETCH (the default
#                         workers, validation, typed handler, dedupe record in the bus's log
#                         under TB_DATA_DIR, ack); against the bare consumer: basic.qos
#                         PREFETCH, one basic.ack per message
#
#   bash bench/events/run.sh [BUILD_DIR]    (BUILD_DIR: default build; bench_events_bare_amqp
#                                            is built there when missing)
# Protocol: a private redis-server and RabbitMQ are started for the run (scripts/redis.sh,
# scripts/rabbitmq.sh, state in a temporary folder) and stopped on exit, with every process this
# script started (by PID). Checks first: a paced run of 1000 Redis events must arrive whole; 1000
# messages published by each RabbitMQ publisher must be in its queue, and each consumer must
# leave its queue (and bench-sink.dlq) empty. Then BENCH_RUNS rounds, each running in turn
# redis-benchmark, ours over Redis, bare publish, ours publish, bare consume, ours consume
# (interleaved so that this VM's slow phases spread over all), plus one paced Redis run (2000
# events at 1000/s) for the latency without queueing, and, for information, ours consuming N
# more events in store mode, with an in-memory SQLite database as the store
# (events-amqp-consume-memdedupe: a transaction per batch and a SAVEPOINT per event; not compared).
# Every round starts alike for both:
#   - each publish goes to a new queue: it is deleted first, not purged. Of one binary's
#     consumes from a purged queue, the later runs of a round on it read slower (27k against
#     41k msgs/s by position alone), and ours ran twice per round on bench-sink;
#   - before each consume the broker gets BENCH_EVENTS_SETTLE_S (2) seconds after the publish.
#     A queue consumed straight after its publish read at ~25k msgs/s where one left idle for
#     a few seconds read at ~40k (bare consumer, 4 rounds each); the bare queue used to sit
#     idle through ours' publish, and ours' queue never did;
#   - ours' dedupe file is removed before each consume.
# Ours over Redis keeps at most BENCH_EVENTS_INFLIGHT events published and not yet handled
# (ours.c says why). Our RabbitMQ runs are timed like the bare ones: publish from the first
# publish (connection already up) to the last confirm, consume from the first delivery handled
# to the N-th.
# The best msgs/s of each counts (of the paced runs: the lowest p99).
# Prints a table, then (only when ours ran):
#   bench events-redis: OURS msgs/s vs redis-benchmark THEIRS msgs/s = RATIOx (goal 0.5x)
#   bench events-amqp-publish: OURS msgs/s vs bare-rabbitmq-c THEIRS msgs/s = RATIOx (goal 0.9x)
#   bench events-amqp-consume: OURS msgs/s vs bare-rabbitmq-c THEIRS msgs/s = RATIOx (goal 0.9x)
#   info events-redis-latency: ours publish-to-handler p50/p99 at full load and paced
# Exit status 1 when a check or a run fails (Redis losing more than 1% of ours' events counts);
# goals are reported, not enforced, unless BENCH_ENFORCE=1.
#
# Environment: BENCH_RUNS (3) rounds; BENCH_EVENTS_N (200000) Redis events per run;
# BENCH_EVENTS_AMQP_N (BENCH_EVENTS_N / 4, i.e. 50000) RabbitMQ messages per run;
# BENCH_EVENTS_WINDOW (1000) confirm window; BENCH_EVENTS_PREFETCH (1000); BENCH_EVENTS_INFLIGHT
# (2000); BENCH_EVENTS_KEYS (16) distinct ordering keys (gameId, walletId);
# BENCH_EVENTS_BARE_BYTES (200) redis-benchmark's payload (ours' Redis envelopes are ~560 bytes,
# shown in the table); BENCH_EVENTS_AMQP_BYTES (640) the size of the bare RabbitMQ messages
# (ours' wallet.transaction.created envelope; a warning is printed when ours' differs);
# BENCH_EVENTS_BARE_SHAPE (tablium) or plain: the bare messages without exchange, properties or
# headers, as before; BENCH_TIMEOUT_S (180) bound of each program; BENCH_EVENTS_SETTLE_S (2) the
# pause before each consume; BENCH_ENFORCE=1 fails when a goal is missed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-build}
if [ ! -d "$BUILD" ]; then
  echo "bench events: build directory $BUILD not found (configure and build with CMake first)" >&2
  exit 1
fi
BUILD=$(cd "$BUILD" && pwd)
OUT=$BUILD/bench/events
BARE=$OUT/bench_events_bare_amqp
OURS=$OUT/bench_events_ours

ROUNDS=${BENCH_RUNS:-3}
N_REDIS=${BENCH_EVENTS_N:-200000}
WINDOW=${BENCH_EVENTS_WINDOW:-1000}
PREFETCH=${BENCH_EVENTS_PREFETCH:-1000}
INFLIGHT=${BENCH_EVENTS_INFLIGHT:-2000}
KEYS=${BENCH_EVENTS_KEYS:-16}
SETTLE_S=${BENCH_EVENTS_SETTLE_S:-2}
TIMEOUT_S=${BENCH_TIMEOUT_S:-180}
GOAL_REDIS=0.5
GOAL_AMQP=0.9
PAYLOAD_BYTES=${BENCH_EVENTS_BARE_BYTES:-200}
AMQP_BYTES=${BENCH_EVENTS_AMQP_BYTES:-640}
BARE_SHAPE=${BENCH_EVENTS_BARE_SHAPE:-tablium}
case "$BARE_SHAPE" in
  tablium | plain) ;;
  *)
    echo "bench events: BENCH_EVENTS_BARE_SHAPE must be tablium or plain (got '$BARE_SHAPE')" >&2
    exit 1
    ;;
esac
PACED_N=2000
PACED_RATE=1000
int_at_least() {
  if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ]; then
    echo "bench events: $1 must be an integer >= $3 (got '$2')" >&2
    exit 1
  fi
}
int_at_least BENCH_RUNS "$ROUNDS" 1
int_at_least BENCH_EVENTS_N "$N_REDIS" 1
N_AMQP=${BENCH_EVENTS_AMQP_N:-$(((N_REDIS + 3) / 4))}
int_at_least BENCH_EVENTS_AMQP_N "$N_AMQP" 1
int_at_least BENCH_EVENTS_WINDOW "$WINDOW" 1
int_at_least BENCH_EVENTS_PREFETCH "$PREFETCH" 1
[ "$PREFETCH" -le 65535 ] || { echo "bench events: BENCH_EVENTS_PREFETCH must be <= 65535" >&2; exit 1; }
int_at_least BENCH_EVENTS_INFLIGHT "$INFLIGHT" 0
int_at_least BENCH_EVENTS_KEYS "$KEYS" 1
int_at_least BENCH_EVENTS_BARE_BYTES "$PAYLOAD_BYTES" 16
int_at_least BENCH_EVENTS_AMQP_BYTES "$AMQP_BYTES" 16
int_at_least BENCH_TIMEOUT_S "$TIMEOUT_S" 1

for tool in redis-server redis-benchmark redis-cli python3 timeout; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench events: $tool not found (scripts/deps.sh installs redis-server; python3, coreutils)" >&2
    exit 1
  fi
done
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && [ -z "${RMQ_BIN:-}" ]; then
  echo "bench events: RabbitMQ not found (scripts/deps.sh installs rabbitmq-server)" >&2
  exit 1
fi
if [ ! -x "$BARE" ] && [ -f "$BUILD/CMakeCache.txt" ]; then
  cmake --build "$BUILD" --target bench_events_bare_amqp >/dev/null
fi
if [ ! -x "$BARE" ]; then
  echo "bench events: $BARE missing (configure with -DTB_WITH_BENCH=ON and build bench_events_bare_amqp)" >&2
  exit 1
fi
HAVE_OURS=0
if [ -x "$OURS" ]; then
  HAVE_OURS=1
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
  case "$build_type" in
    Release | RelWithDebInfo) ;;
    *) echo "bench events: warning: $BUILD is a '${build_type:-no build type}' build; libtablium is" \
      "not optimised (use -DCMAKE_BUILD_TYPE=RelWithDebInfo)" >&2 ;;
  esac
else
  echo "bench events: ours not built yet ($OURS); running the peers only"
fi
mkdir -p "$OUT"

# ---- servers: started for this run, stopped on exit ----

WORK=$(mktemp -d /tmp/bench-events.XXXXXX)
SUB_PID=
CHILD_PID=
cleanup() {
  local rc=$?
  if [ -n "$CHILD_PID" ]; then
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
    CHILD_PID=
  fi
  if [ -n "$SUB_PID" ]; then
    kill -TERM "$SUB_PID" 2>/dev/null || true
    wait "$SUB_PID" 2>/dev/null || true
    SUB_PID=
  fi
  bash "$ROOT/scripts/redis.sh" stop "$WORK/redis" >/dev/null 2>&1 || true
  bash "$ROOT/scripts/rabbitmq.sh" stop "$WORK/rabbitmq" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export TB_DATA_DIR=$WORK/data
export BENCH_TIMEOUT_S=$TIMEOUT_S
export BENCH_EVENTS_INFLIGHT=$INFLIGHT
export BENCH_EVENTS_KEYS=$KEYS
mkdir -p "$TB_DATA_DIR"
# outer bound of each program: its own deadline plus room to shut down
RUN_TIMEOUT=$((TIMEOUT_S + 60))

REDIS_URL=$(bash "$ROOT/scripts/redis.sh" start "$WORK/redis") || {
  echo "bench events: redis-server did not start" >&2
  exit 1
}
REDIS_PORT=$(sed -n 's/^TB_REDIS_PORT=//p' "$WORK/redis/env")
echo "bench events: starting RabbitMQ (about 5 s)"
AMQP_URL=$(bash "$ROOT/scripts/rabbitmq.sh" start "$WORK/rabbitmq") || {
  echo "bench events: RabbitMQ did not start" >&2
  exit 1
}

PAYLOAD=$(head -c "$PAYLOAD_BYTES" /dev/zero | tr '\0' x)
BARE_QUEUE=bench-bare
SINK=bench-sink

# the one subscriber of redis-benchmark's channel (a client reading everything, as in PEERS.md)
start_subscriber() {
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" subscribe chan >/dev/null 2>&1 &
  SUB_PID=$!
  local _
  for _ in $(seq 100); do
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" pubsub numsub chan 2>/dev/null | sed -n 2p)" = 1 ] && return 0
    sleep 0.05
  done
  echo "bench events: the redis-cli subscriber did not subscribe" >&2
  return 1
}
start_subscriber

# ---- running one program ----

status=0
RESULT=

# bounded OUT ERR CMD...: runs CMD with a time limit, in the background so that a signal to this
# script is handled at once (cleanup stops it by PID); its exit status.
bounded() {
  local out=$1 err=$2 rc=0
  shift 2
  timeout -k 10 "$RUN_TIMEOUT" "$@" >"$out" 2>"$err" &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=
  return $rc
}

# run NAME LOG CMD...: runs it bounded; RESULT = its "result ..." line. 1 on failure (shows the log).
run() {
  local name=$1 log=$2 rc=0
  shift 2
  bounded "$log.out" "$log" "$@" || rc=$?
  RESULT=$(grep '^result ' "$log.out" | tail -1 || true)
  cat "$log.out" >>"$log"
  rm -f "$log.out"
  if [ "$rc" != 0 ] || [ -z "$RESULT" ]; then
    echo "bench events: $name failed (exit $rc); its output ($log):" >&2
    grep -v '"level":"info"' "$log" | tail -20 | sed 's/^/    /' >&2
    return 1
  fi
}

# kv KEY: the value of KEY=... in RESULT
kv() {
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $RESULT"
}

queue_depth() {
  "$BARE" depth "$AMQP_URL" "$1" 2>/dev/null || echo "?"
}

# a new, empty queue for the next publish (the publishers declare it again)
fresh_queue() {
  if ! "$BARE" delete "$AMQP_URL" "$1" >/dev/null; then
    echo "bench events: cannot delete queue $1" >&2
    status=1
  fi
}

fresh_dedupe() {
  rm -f "$TB_DATA_DIR/$SINK-events.dedupe" "$TB_DATA_DIR/$SINK-events.db" \
    "$TB_DATA_DIR/$SINK-events.db-wal" "$TB_DATA_DIR/$SINK-events.db-shm"
}

# ---- correctness checks ----

check_fail() {
  echo "bench events: check FAILED: $*" >&2
  status=1
}

CHECK_N=1000
fresh_queue "$BARE_QUEUE"
if run "bare publish (check)" "$OUT/check-bare-publish.log" \
  "$BARE" publish "$AMQP_URL" "$BARE_QUEUE" "$CHECK_N" "$WINDOW" "$AMQP_BYTES" "$BARE_SHAPE"; then
  d=$(queue_depth "$BARE_QUEUE")
  [ "$d" = "$CHECK_N" ] || check_fail "bare publish: $BARE_QUEUE holds $d messages, want $CHECK_N"
  if run "bare consume (check)" "$OUT/check-bare-consume.log" \
    "$BARE" consume "$AMQP_URL" "$BARE_QUEUE" "$CHECK_N" "$PREFETCH"; then
    sleep 0.2
    d=$(queue_depth "$BARE_QUEUE")
    [ "$d" = 0 ] || check_fail "bare consume: $BARE_QUEUE still holds $d messages"
  else
    status=1
  fi
else
  status=1
fi

if [ "$HAVE_OURS" = 1 ]; then
  if run "ours redis (check)" "$OUT/check-ours-redis.log" \
    "$OURS" redis "$REDIS_URL" "$CHECK_N" "$PACED_RATE"; then
    [ "$(kv received)" = "$CHECK_N" ] || check_fail "ours redis: $(kv received) of $CHECK_N events arrived"
  else
    HAVE_OURS=0
  fi
  fresh_queue "$SINK"
  if [ "$HAVE_OURS" = 1 ] && run "ours amqp-publish (check)" "$OUT/check-ours-publish.log" \
    "$OURS" amqp-publish "$AMQP_URL" "$CHECK_N" "$WINDOW"; then
    d=$(queue_depth "$SINK")
    [ "$d" = "$CHECK_N" ] || check_fail "ours amqp-publish: $SINK holds $d events, want $CHECK_N"
    fresh_dedupe
    if run "ours amqp-consume (check)" "$OUT/check-ours-consume.log" \
      "$OURS" amqp-consume "$AMQP_URL" "$CHECK_N" "$PREFETCH"; then
      sleep 0.2
      d=$(queue_depth "$SINK")
      [ "$d" = 0 ] || check_fail "ours amqp-consume: $SINK still holds $d events"
      d=$(queue_depth "$SINK.dlq")
      [ "$d" = 0 ] || check_fail "ours amqp-consume: $SINK.dlq holds $d events"
      [ "$(kv duplicates)" = 0 ] || check_fail "ours amqp-consume: $(kv duplicates) duplicates"
    else
      HAVE_OURS=0
    fi
  else
    HAVE_OURS=0
  fi
  if [ "$HAVE_OURS" = 0 ]; then
    status=1
    echo "bench events: ours failed its checks; measuring the peers only" >&2
  fi
fi

# ---- load ----

RESULTS=$OUT/results.txt
: >"$RESULTS"
rm -f "$OUT"/round.*.log "$OUT"/round.*.log.*

# record MEASURE TOOL ROUND MSGS_PER_S P50 P99 BYTES EXTRA
record() {
  echo "$*" >>"$RESULTS"
  printf '   round %d %-29s %-16s %10.0f msgs/s  p50 %8s ms  p99 %8s ms  %4s B%s\n' "$3" "$1" "$2" \
    "$4" "$5" "$6" "$7" "${8:+  $8}"
}

measure_redis_benchmark() {
  local round=$1 log=$OUT/round.$1.redis-benchmark.log line rps p50 p99 subs
  if ! bounded "$log" "$log.err" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -P 16 \
    -n "$N_REDIS" --csv PUBLISH chan "$PAYLOAD"; then
    echo "bench events: redis-benchmark failed ($log)" >&2
    status=1
    return
  fi
  line=$(grep '^"PUBLISH' "$log" | tail -1 | sed 's/^"PUBLISH chan x*",//; s/"//g')
  IFS=, read -r rps _ _ p50 _ p99 _ <<<"$line"
  subs=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" pubsub numsub chan 2>/dev/null | sed -n 2p)
  if [ -z "$rps" ] || [ "$subs" != 1 ]; then
    echo "bench events: redis-benchmark: no figures, or its subscriber was cut off ($log)" >&2
    status=1
    [ "$subs" = 1 ] || { kill "$SUB_PID" 2>/dev/null || true; wait "$SUB_PID" 2>/dev/null || true; SUB_PID=; start_subscriber || true; }
    return
  fi
  record events-redis redis-benchmark "$round" "$rps" "$p50" "$p99" "$PAYLOAD_BYTES" "(p50/p99: PUBLISH round trip)"
}

measure_ours_redis() {
  local round=$1
  if run "ours redis" "$OUT/round.$round.ours-redis.log" "$OURS" redis "$REDIS_URL" "$N_REDIS"; then
    record events-redis ours "$round" "$(kv msgs_per_s)" "$(kv p50_ms)" "$(kv p99_ms)" "$(kv bytes)" \
      "received $(kv received)/$N_REDIS"
  else
    [ -n "$RESULT" ] && echo "   round $round events-redis ours: $RESULT" >&2
    status=1
  fi
}

measure_ours_paced() {
  local round=$1
  if run "ours redis paced" "$OUT/round.$round.ours-redis-paced.log" \
    "$OURS" redis "$REDIS_URL" "$PACED_N" "$PACED_RATE"; then
    record events-redis-paced ours "$round" "$(kv msgs_per_s)" "$(kv p50_ms)" "$(kv p99_ms)" "$(kv bytes)" \
      "$PACED_N at $PACED_RATE/s"
  else
    status=1
  fi
}

measure_bare_publish() {
  local round=$1
  fresh_queue "$BARE_QUEUE"
  if run "bare publish" "$OUT/round.$round.bare-publish.log" \
    "$BARE" publish "$AMQP_URL" "$BARE_QUEUE" "$N_AMQP" "$WINDOW" "$AMQP_BYTES" "$BARE_SHAPE"; then
    record events-amqp-publish bare-rabbitmq-c "$round" "$(kv msgs_per_s)" - - "$(kv bytes)" "$BARE_SHAPE"
  else
    status=1
  fi
}

measure_ours_publish() {
  local round=$1
  fresh_queue "$SINK"
  if run "ours amqp-publish" "$OUT/round.$round.ours-publish.log" \
    "$OURS" amqp-publish "$AMQP_URL" "$N_AMQP" "$WINDOW"; then
    record events-amqp-publish ours "$round" "$(kv msgs_per_s)" - - -
  else
    status=1
  fi
}

measure_bare_consume() {
  local round=$1 d
  d=$(queue_depth "$BARE_QUEUE")
  if [ "$d" != "$N_AMQP" ]; then
    echo "bench events: round $round: $BARE_QUEUE holds $d messages, not $N_AMQP; bare consume skipped" >&2
    status=1
    return
  fi
  sleep "$SETTLE_S"
  if run "bare consume" "$OUT/round.$round.bare-consume.log" \
    "$BARE" consume "$AMQP_URL" "$BARE_QUEUE" "$N_AMQP" "$PREFETCH"; then
    record events-amqp-consume bare-rabbitmq-c "$round" "$(kv msgs_per_s)" - - "$(kv bytes)" "$BARE_SHAPE"
  else
    status=1
  fi
}

measure_ours_consume() {
  local round=$1 d
  d=$(queue_depth "$SINK")
  if [ "$d" != "$N_AMQP" ]; then
    echo "bench events: round $round: $SINK holds $d events, not $N_AMQP; ours consume skipped" >&2
    status=1
    return
  fi
  fresh_dedupe
  sleep "$SETTLE_S"
  if run "ours amqp-consume" "$OUT/round.$round.ours-consume.log" \
    "$OURS" amqp-consume "$AMQP_URL" "$N_AMQP" "$PREFETCH"; then
    record events-amqp-consume ours "$round" "$(kv msgs_per_s)" - - "$(kv bytes)"
    if [ "$BARE_SHAPE" = tablium ] && [ "$(kv bytes)" != "$AMQP_BYTES" ]; then
      echo "bench events: warning: ours' envelopes are $(kv bytes) bytes, the bare messages $AMQP_BYTES" \
        "(set BENCH_EVENTS_AMQP_BYTES=$(kv bytes))" >&2
    fi
  else
    status=1
  fi
}

# info: the same consume with the dedupe record in memory (opts.store), after an unrecorded
# publish of N more events; store mode on an in-memory SQLite database
measure_ours_consume_memory() {
  local round=$1 d
  fresh_queue "$SINK"
  if ! run "ours amqp-publish (for the memory-dedupe consume)" "$OUT/round.$round.ours-publish-2.log" \
    "$OURS" amqp-publish "$AMQP_URL" "$N_AMQP" "$WINDOW"; then
    status=1
    return
  fi
  d=$(queue_depth "$SINK")
  if [ "$d" != "$N_AMQP" ]; then
    echo "bench events: round $round: $SINK holds $d events, not $N_AMQP; memory-dedupe consume skipped" >&2
    status=1
    return
  fi
  sleep "$SETTLE_S"
  if run "ours amqp-consume memory" "$OUT/round.$round.ours-consume-memory.log" \
    "$OURS" amqp-consume "$AMQP_URL" "$N_AMQP" "$PREFETCH" memory; then
    record events-amqp-consume-memdedupe ours "$round" "$(kv msgs_per_s)" - - "$(kv bytes)" \
      "(info: store mode, in-memory SQLite store)"
  else
    status=1
  fi
}

echo "== bench events: Redis $N_REDIS events, RabbitMQ $N_AMQP messages (window $WINDOW, prefetch" \
  "$PREFETCH), $ROUNDS round(s), best msgs/s counts; $(nproc) CPUs," \
  "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "   redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), RabbitMQ" \
  "$(sed -n 's/.*Starting RabbitMQ \([0-9.]*\).*/\1/p' "$WORK/rabbitmq/log/rabbit.log" 2>/dev/null | head -1)," \
  "rabbitmq-c $(pkg-config --modversion librabbitmq 2>/dev/null || echo '?')"
for round in $(seq 1 "$ROUNDS"); do
  measure_redis_benchmark "$round"
  if [ "$HAVE_OURS" = 1 ]; then measure_ours_redis "$round"; fi
  measure_bare_publish "$round"
  if [ "$HAVE_OURS" = 1 ]; then measure_ours_publish "$round"; fi
  measure_bare_consume "$round"
  if [ "$HAVE_OURS" = 1 ]; then
    measure_ours_consume "$round"
    measure_ours_paced "$round"
    measure_ours_consume_memory "$round"
  fi
done

# best MEASURE TOOL: "msgs p50 p99 bytes" of the run with the best msgs/s (the paced runs all
# have the same rate: the one with the lowest p99)
best() {
  awk -v m="$1" -v t="$2" '$1 == m && $2 == t {
      k = (m ~ /-paced$/) ? -$6 : $4
      if (l == "" || k > b) { b = k; l = $4 " " $5 " " $6 " " $7 } }
    END { print l }' "$RESULTS"
}

echo
printf '%-29s %-16s %10s %9s %9s %6s\n' measure tool msgs/s "p50 ms" "p99 ms" bytes
for m in events-redis events-redis-paced events-amqp-publish events-amqp-consume \
  events-amqp-consume-memdedupe; do
  for t in redis-benchmark bare-rabbitmq-c ours; do
    read -r v p50 p99 bytes <<<"$(best "$m" "$t")" || true
    [ -n "${v:-}" ] || continue
    printf '%-29s %-16s %10.0f %9s %9s %6s\n' "$m" "$t" "$v" "$p50" "$p99" "$bytes"
  done
done

compare() {
  local name=$1 ours=$2 theirs=$3 peer=$4 goal=$5
  awk -v n="$name" -v o="$ours" -v t="$theirs" -v p="$peer" -v g="$goal" 'BEGIN {
    printf "bench %s: %.0f msgs/s vs %s %.0f msgs/s = %.2fx (goal %s)\n", n, o, p, t, (t > 0 ? o / t : 0), g }'
}

if [ "$HAVE_OURS" = 1 ]; then
  echo
  missed=0
  for spec in "events-redis redis-benchmark $GOAL_REDIS" "events-amqp-publish bare-rabbitmq-c $GOAL_AMQP" \
    "events-amqp-consume bare-rabbitmq-c $GOAL_AMQP"; do
    read -r m peer goal <<<"$spec"
    read -r o _ <<<"$(best "$m" ours)" || true
    read -r t _ <<<"$(best "$m" "$peer")" || true
    if [ -z "${o:-}" ] || [ -z "${t:-}" ]; then
      echo "bench events: $m: missing figures, no comparison" >&2
      status=1
      continue
    fi
    compare "$m" "$o" "$t" "$peer" "${goal}x"
    awk -v o="$o" -v t="$t" -v g="$goal" 'BEGIN { exit !(o / t < g) }' && missed=1
  done
  read -r _ lp50 lp99 _ <<<"$(best events-redis ours)" || true
  read -r _ pp50 pp99 _ <<<"$(best events-redis-paced ours)" || true
  echo "info events-redis-latency: ours publish-to-handler p50 ${lp50:-?} ms, p99 ${lp99:-?} ms at" \
    "full load (<= $INFLIGHT in flight); p50 ${pp50:-?} ms, p99 ${pp99:-?} ms at $PACED_RATE events/s"
  if [ "${BENCH_ENFORCE:-0}" = 1 ] && [ "$missed" = 1 ]; then
    echo "bench events: a goal was missed (BENCH_ENFORCE=1)" >&2
    status=1
  fi
fi
exit $status
