#!/usr/bin/env bash
# Runs the Prism validation proxy in front of a real service, for the contract tests.
#
#   prism.sh start SPEC UPSTREAM_URL PORT PIDFILE LOGFILE
#   prism.sh stop PIDFILE
#
# start: `prism proxy SPEC UPSTREAM_URL` on 127.0.0.1:PORT, in its own session / process group,
#   and waits (REFEREE_PRISM_TIMEOUT seconds, default 30) until it listens. Every request is
#   forwarded to UPSTREAM_URL as it is, valid or not (--errors=false: Prism reports violations in
#   the sl-violations response header and in LOGFILE, it never answers in the service's place);
#   --cors=false so that Prism adds no CORS headers and forwards OPTIONS. Writes the process
#   group id (= Prism's node PID) to PIDFILE. On failure: prints the tail of LOGFILE, stops
#   what it started, exits 1.
# stop: SIGTERM to the whole process group, SIGKILL after 5 s; removes PIDFILE, keeps LOGFILE.
#   Quiet and successful when PIDFILE is missing or its process is already gone.
# See README.md beside this script for the sl-violations format and what Prism changes.
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ME=referee/prism

usage() {
  echo "usage: $0 start SPEC UPSTREAM_URL PORT PIDFILE LOGFILE | $0 stop PIDFILE" >&2
  exit 2
}

# Is PID alive and our Prism (not a recycled PID)?
is_prism() {
  local pid=$1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'prism-cli/dist/index.js proxy'
}

stop() {
  local pidfile=$1 pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile" 2>/dev/null || true)
  rm -f "$pidfile"
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  is_prism "$pid" || return 0
  # Prism is a process-group leader (setsid below): signal the group, so nothing outlives it.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "$ME: Prism (pid $pid) still running 5 s after SIGTERM; sending SIGKILL" >&2
  kill -KILL -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "$ME: process group $pid survived SIGKILL" >&2
  return 1
}

start() {
  local spec=$1 upstream=$2 port=$3 pidfile=$4 logfile=$5
  local timeout=${REFEREE_PRISM_TIMEOUT:-30} pid deadline
  [ -f "$spec" ] || { echo "$ME: no such spec: $spec" >&2; exit 2; }
  case "$port" in '' | *[!0-9]*) echo "$ME: bad port: $port" >&2; exit 2 ;; esac
  case "$upstream" in http://* | https://*) ;; *) echo "$ME: bad upstream URL: $upstream" >&2; exit 2 ;; esac
  if [ -f "$pidfile" ] && is_prism "$(cat "$pidfile")"; then
    echo "$ME: already running (pid $(cat "$pidfile"), $pidfile); stop it first" >&2
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$ME: port $port on 127.0.0.1 is already in use" >&2
    exit 1
  fi
  "$DIR/install.sh"
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  : >"$logfile"
  # setsid without a fork (this non-interactive shell's background child is not a group
  # leader), so $! is node's PID and the id of its new process group.
  NO_COLOR=1 FORCE_COLOR=0 setsid /usr/bin/env node "$DIR/node_modules/@stoplight/prism-cli/dist/index.js" \
    proxy "$spec" "$upstream" --host 127.0.0.1 --port "$port" \
    --errors=false --validate-request=true --cors=false --multiprocess=false \
    </dev/null >>"$logfile" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"

  deadline=$((SECONDS + timeout))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$ME: Prism exited during startup; last lines of $logfile:" >&2
      tail -n 30 "$logfile" >&2
      rm -f "$pidfile"
      exit 1
    fi
    # Ready when Prism says so and the port accepts a connection (the log line alone could
    # be seen before listen() completes on a slow machine; the port alone could be someone
    # else's).
    if grep -q "Prism is listening on http://127.0.0.1:$port" "$logfile" 2>/dev/null &&
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$ME: Prism did not listen on 127.0.0.1:$port within ${timeout}s; last lines of $logfile:" >&2
      tail -n 30 "$logfile" >&2
      stop "$pidfile" || true
      exit 1
    fi
    sleep 0.1
  done
}

[ $# -ge 1 ] || usage
case "$1" in
  start) [ $# -eq 6 ] || usage; start "$2" "$3" "$4" "$5" "$6" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
