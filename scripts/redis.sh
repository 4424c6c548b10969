#!/usr/bin/env bash
# A private redis-server for tests and demos, with its state in a directory of its own.
#
#   scripts/redis.sh start DIR    start (or find running) on 127.0.0.1, a free port; prints the URL
#   scripts/redis.sh stop DIR     stop it (SIGTERM, waits; SIGKILL after 10 s)
#   scripts/redis.sh restart DIR  stop, then start on the SAME port
#   scripts/redis.sh kill DIR     SIGKILL it (simulates a crash; `restart` brings it back)
#   scripts/redis.sh url DIR      print the URL of a running server
#
# DIR/env holds TB_REDIS_URL=redis://127.0.0.1:PORT, TB_REDIS_PORT, TB_REDIS_PIDFILE and
# TB_REDIS_LOG (source it). No persistence (--save '' --appendonly no). Idempotent; quiet on
# success apart from the URL that start/restart print. Needs redis-server (REDIS_SERVER overrides).
set -euo pipefail

die() {
  echo "redis.sh: $*" >&2
  exit 1
}

usage() {
  die "usage: $0 start|stop|restart|kill|url DIR"
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
[ -n "$dir" ] || usage

REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
[ -x "$REDIS_SERVER" ] || REDIS_SERVER=$(command -v redis-server || true)

pidfile() { echo "$dir/redis.pid"; }
logfile() { echo "$dir/redis.log"; }
portfile() { echo "$dir/port"; }

# 0 while process $1 runs. A daemonized server is not our child: once it exits it stays a zombie
# until init reaps it, which in a container can take seconds, so a zombie counts as gone.
alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
  [ "$st" != Z ] && [ -n "$st" ]
}

# PID of our redis-server when it is alive, else nothing (a stale pidfile, or a PID reused by
# another program, does not count).
live_pid() {
  local pf pid
  pf=$(pidfile)
  [ -f "$pf" ] || return 0
  pid=$(tr -dc '0-9' <"$pf" || true)
  [ -n "$pid" ] || return 0
  # /proc/PID/comm is "redis-server"; a zombie or another program gets ignored.
  if [ -r "/proc/$pid/comm" ] && ! grep -q '^redis-serve' "/proc/$pid/comm"; then
    return 0
  fi
  alive "$pid" || return 0
  echo "$pid"
}

# 0 when something accepts connections on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# 0 when the server on 127.0.0.1:$1 answers PING with PONG.
ping_ok() {
  local line=
  # The braces keep the 2>/dev/null from applying to the rest of the script.
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3 2>/dev/null || { exec 3>&-; return 1; }
  IFS= read -r -t 1 line <&3 || true
  exec 3>&-
  [ "${line%$'\r'}" = "+PONG" ]
}

free_port() {
  local i p
  for i in $(seq 1 200); do
    # Below Linux's ephemeral range (32768+) so outgoing connections do not take it meanwhile.
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    if ! port_busy "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

write_env() {
  local port=$1
  local tmp="$dir/env.tmp.$$"
  {
    echo "TB_REDIS_URL=redis://127.0.0.1:$port"
    echo "TB_REDIS_PORT=$port"
    echo "TB_REDIS_PIDFILE=$(pidfile)"
    echo "TB_REDIS_LOG=$(logfile)"
  } >"$tmp"
  mv -f "$tmp" "$dir/env"
  echo "$port" >"$(portfile)"
}

# Starts on port $1; returns 1 (without dying) when that server never answered, e.g. the port was
# taken between the probe and the bind.
launch() {
  local port=$1 i pid
  rm -f "$(pidfile)"
  "$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --daemonize yes --pidfile "$(pidfile)" --logfile "$(logfile)" --dir "$dir" \
    --protected-mode yes --loglevel notice >"$dir/redis.start.out" 2>&1 || return 1
  # Bounded wait: 10 s in 20 ms steps (PEERS.md: start to PONG is ~13 ms here).
  for i in $(seq 1 500); do
    pid=$(live_pid)
    if [ -n "$pid" ] && ping_ok "$port"; then
      return 0
    fi
    if [ "$i" -gt 25 ] && [ -z "$pid" ]; then
      return 1 # the daemon exited (bind failure, bad option): no point waiting longer
    fi
    sleep 0.02
  done
  return 1
}

fail_start() {
  echo "redis.sh: redis-server did not come up on 127.0.0.1:$1 (no PONG; waited up to 10 s)" >&2
  local f
  for f in "$dir/redis.start.out" "$(logfile)"; do
    if [ -s "$f" ]; then
      echo "--- last lines of $f:" >&2
      tail -n 20 "$f" >&2
    fi
  done
  exit 1
}

start() {
  local want=${1:-} port pid tries
  [ -n "$REDIS_SERVER" ] || die "redis-server not found (install redis-server or set REDIS_SERVER)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  pid=$(live_pid)
  if [ -n "$pid" ] && [ -f "$(portfile)" ]; then
    port=$(cat "$(portfile)")
    if ping_ok "$port"; then
      [ -n "$want" ] && [ "$want" != "$port" ] && die "running on $port, not $want"
      write_env "$port"
      echo "redis://127.0.0.1:$port"
      return 0
    fi
  fi
  [ -z "$pid" ] || die "redis-server (pid $pid) runs but does not answer; stop it first"
  if [ -n "$want" ]; then
    port_busy "$want" && die "port $want is taken by another program"
    launch "$want" || fail_start "$want"
    port=$want
  else
    tries=0
    while :; do
      port=$(free_port)
      if launch "$port"; then
        break
      fi
      tries=$((tries + 1))
      [ "$tries" -lt 3 ] || fail_start "$port"
    done
  fi
  write_env "$port"
  echo "redis://127.0.0.1:$port"
}

stop() {
  local pid i
  [ -d "$dir" ] || return 0
  pid=$(live_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 500); do
      alive "$pid" || break
      sleep 0.02
    done
    if alive "$pid"; then
      echo "redis.sh: redis-server $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.02
      done
    fi
  fi
  rm -f "$(pidfile)"
}

killit() {
  local pid i
  [ -d "$dir" ] || return 0
  pid=$(live_pid)
  if [ -n "$pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 250); do
      alive "$pid" || break
      sleep 0.02
    done
  fi
  rm -f "$(pidfile)"
}

case "$cmd" in
start) start ;;
stop) stop ;;
restart)
  port=
  [ -f "$dir/port" ] && port=$(cat "$dir/port")
  stop
  start "$port"
  ;;
kill) killit ;;
url)
  if [ ! -f "$dir/port" ] || [ -z "$(live_pid)" ]; then
    die "no redis-server running in $dir"
  fi
  echo "redis://127.0.0.1:$(cat "$dir/port")"
  ;;
*) usage ;;
esac
