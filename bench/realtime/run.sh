#!/usr/bin/env bash
# bench realtime: tablium's Socket.IO server (bench_realtime_ours, ours.c) against socket.io 4.8
# on Node.js (node-server.js) with the same clients, in one run. The paced run's clients are
# bench_realtime_loadc (loadc.c: libwebsockets clients in one C thread); the burst and idle runs'
# are driver.js (raw WebSocket clients on Node.js, lighter than socket.io-client):
#   realtime-cpu    RT_CLIENTS (1000) sockets in one room, RT_RATE (100) broadcasts a second for
#                   RT_SECONDS (5): the server's CPU (utime + stime) per delivery; goal <= 0.25x.
#                   Also the user-space share alone: on loopback the sender's send() also runs
#                   the receiver's TCP path, most of a delivery's cost for both servers
#   realtime-p99    the same run's emit-to-delivery p99 (and p50); goal: under 10 ms for ours.
#                   The C load client shares the two cores with the server: its own scheduling
#                   is part of the figure (a Node.js client taking 100,000 messages a second
#                   queued, and its queueing was most of the p99)
#   realtime-burst  RT_BURST (200) broadcasts back to back to the same room: deliveries/s until the
#                   last arrives (bounded by the one-process Node client: a comparison of what
#                   the servers sustain, not a ceiling of ours)
#   realtime-*-loops  the paced and burst runs again with RT_LOOPS (default: one per CPU) event
#                   loops (TB_RT_LOOPS)
#   realtime-idle   RT_IDLE (19000) idle connected sockets: the server's RSS growth per socket;
#                   goal <= 10 KB (19000: this machine allows 20000 open files per process)
#   bash bench/realtime/run.sh [BUILD_DIR]
# Every server is started on a free loopback port and stopped by PID.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CLIENTS=${RT_CLIENTS:-1000} RATE=${RT_RATE:-100} SECONDS_=${RT_SECONDS:-5}
BURST=${RT_BURST:-200} IDLE=${RT_IDLE:-19000}
LOADC=$BUILD/bench/realtime/bench_realtime_loadc
[ -x "$BUILD/bench/realtime/bench_realtime_ours" ] && [ -x "$LOADC" ] ||
  cmake --build "$BUILD" --target bench_realtime_ours bench_realtime_loadc >/dev/null
[ -d "$HERE/node_modules/socket.io" ] || (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tb-bench-rt.XXXXXX")
SPID=
cleanup() {
  [ -z "$SPID" ] || { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

start() { # NAME CMD...
  local name=$1
  shift
  PORT=$(free_port)
  PORT=$PORT "$@" >"$WORK/$name.log" 2>&1 &
  SPID=$!
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$PORT/socket.io/?EIO=4&transport=polling" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench realtime: $name did not start" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}
stop() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=; }
drv() { (cd "$HERE" && SERVER_PID=$SPID node driver.js "$@"); }
field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

measure() { # NAME CMD... -> $WORK/NAME.{paced,burst,idle}
  local name=$1
  shift
  start "$name" "$@"
  SERVER_PID=$SPID "$LOADC" 127.0.0.1 "$PORT" "$CLIENTS" "$RATE" "$SECONDS_" >"$WORK/$name.paced"
  drv burst "http://127.0.0.1:$PORT" "$CLIENTS" "$BURST" >"$WORK/$name.burst"
  stop
  start "$name" "$@"
  local before half=$((IDLE / 2)) fifo1=$WORK/$name.in1 fifo2=$WORK/$name.in2
  sleep 0.5
  before=$(rss_kb "$SPID")
  mkfifo "$fifo1" "$fifo2"
  (cd "$HERE" && node driver.js idle "http://127.0.0.1:$PORT" "$half" <"$fifo1" >"$WORK/$name.idle1") &
  local d1=$!
  (cd "$HERE" && node driver.js idle "http://127.0.0.1:$PORT" "$((IDLE - half))" <"$fifo2" >"$WORK/$name.idle2") &
  local d2=$!
  exec 7>"$fifo1" 8>"$fifo2"
  for _ in $(seq 1200); do
    grep -q ready "$WORK/$name.idle1" 2>/dev/null && grep -q ready "$WORK/$name.idle2" 2>/dev/null && break
    kill -0 "$d1" 2>/dev/null && kill -0 "$d2" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1
  local after
  after=$(rss_kb "$SPID")
  local n
  n=$(cat "$WORK/$name.idle1" "$WORK/$name.idle2" | awk '/^ready/ {s += $2} END {print s + 0}')
  exec 7>&- 8>&-
  wait "$d1" "$d2" 2>/dev/null || true
  echo "{\"sockets\": $n, \"before_kb\": $before, \"after_kb\": $after}" >"$WORK/$name.idle"
  stop
}

measure ours "$BUILD/bench/realtime/bench_realtime_ours"
measure node node "$HERE/node-server.js"
# ours again with several event loops (TB_RT_LOOPS; RT_LOOPS, default one per CPU): paced and burst
LOOPS=${RT_LOOPS:-$(nproc)}
start loops env TB_RT_LOOPS="$LOOPS" "$BUILD/bench/realtime/bench_realtime_ours"
SERVER_PID=$SPID "$LOADC" 127.0.0.1 "$PORT" "$CLIENTS" "$RATE" "$SECONDS_" >"$WORK/loops.paced"
drv burst "http://127.0.0.1:$PORT" "$CLIENTS" "$BURST" >"$WORK/loops.burst"
stop

/usr/bin/python3 - "$WORK" "$CLIENTS" "$RATE" "$SECONDS_" "$LOOPS" <<'PY'
import json, sys
w, clients, rate, secs, loops = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
r = {n: {k: json.load(open("%s/%s.%s" % (w, n, k))) for k in ("paced", "burst", "idle")}
     for n in ("ours", "node")}
for n, label in (("ours", "tablium"), ("node", "socket.io 4.8")):
    p, b, i = r[n]["paced"], r[n]["burst"], r[n]["idle"]
    print("realtime %-13s paced: %d/%d deliveries, p50 %.2f ms, p99 %.2f ms, max %.1f ms, CPU %.2f s; "
          "burst: %d/%d in %.2f s (%.0f/s, CPU %.2f s); idle: %d sockets, RSS %d -> %d KB"
          % (label, p["deliveries"], p["expected"], p["p50"], p["p99"], p["max"], p["cpuSeconds"],
             b["deliveries"], b["expected"], b["seconds"], b["rate"], b["cpuSeconds"],
             i["sockets"], i["before_kb"], i["after_kb"]))
    if p["deliveries"] < p["expected"] or b["deliveries"] < b["expected"]:
        print("realtime %s: LOST DELIVERIES" % label)
def us(n):
    p = r[n]["paced"]
    return p["cpuSeconds"] * 1e6 / max(1, p["deliveries"])
def kb(n):
    i = r[n]["idle"]
    return (i["after_kb"] - i["before_kb"]) / max(1, i["sockets"])
def us_user(n):
    p = r[n]["paced"]
    return p["userSeconds"] * 1e6 / max(1, p["deliveries"])
o, t = us("ours"), us("node")
print("realtime-cpu user space only (the kernel's loopback TCP work, paid by both, left out): "
      "%.3f us/delivery vs socket.io %.3f us/delivery = %.2fx" % (us_user("ours"), us_user("node"),
      us_user("ours") / us_user("node") if us_user("node") else float("nan")))
print("bench realtime-cpu: %.3f us/delivery vs socket.io %.3f us/delivery = %.2fx (goal 0.25x)"
      % (o, t, o / t if t else float("nan")))
po, pt = r["ours"]["paced"]["p99"], r["node"]["paced"]["p99"]
print("bench realtime-p99: %.2f ms vs socket.io %.2f ms = %.2fx (goal 1.00x; and under 10 ms: %s)"
      % (po, pt, po / pt, "met" if po < 10 else "NOT met"))
bo, bt = r["ours"]["burst"]["rate"], r["node"]["burst"]["rate"]
print("bench realtime-burst: %.0f deliveries/s vs socket.io %.0f deliveries/s = %.2fx (goal 1.00x)"
      % (bo, bt, bo / bt))
ko, kt = kb("ours"), kb("node")
lp, lb = (json.load(open("%s/loops.%s" % (w, k))) for k in ("paced", "burst"))
print("realtime tablium %s loops paced: %d/%d deliveries, p50 %.2f ms, p99 %.2f ms, max %.1f ms, CPU %.2f s; "
      "burst: %d/%d in %.2f s (%.0f/s, CPU %.2f s)"
      % (loops, lp["deliveries"], lp["expected"], lp["p50"], lp["p99"], lp["max"], lp["cpuSeconds"],
         lb["deliveries"], lb["expected"], lb["seconds"], lb["rate"], lb["cpuSeconds"]))
if lp["deliveries"] < lp["expected"] or lb["deliveries"] < lb["expected"]:
    print("realtime tablium %s loops: LOST DELIVERIES" % loops)
lu = lp["cpuSeconds"] * 1e6 / max(1, lp["deliveries"])
print("bench realtime-cpu-loops: %.3f us/delivery (%s loops) vs socket.io %.3f us/delivery = %.2fx (goal 0.25x)"
      % (lu, loops, t, lu / t if t else float("nan")))
print("bench realtime-p99-loops: %.2f ms (%s loops) vs socket.io %.2f ms = %.2fx (goal 1.00x; and under 10 ms: %s)"
      % (lp["p99"], loops, pt, lp["p99"] / pt, "met" if lp["p99"] < 10 else "NOT met"))
print("bench realtime-burst-loops: %.0f deliveries/s (%s loops) vs socket.io %.0f deliveries/s = %.2fx (goal 1.00x)"
      % (lb["rate"], loops, bt, lb["rate"] / bt))
print("bench realtime-idle: %.2f KB/socket vs socket.io %.2f KB/socket = %.2fx (goal 1.00x; and at most 10 KB: %s)"
      % (ko, kt, ko / kt, "met" if ko <= 10 else "NOT met"))
PY
