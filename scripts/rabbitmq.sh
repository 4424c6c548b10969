#!/usr/bin/env bash
# A private RabbitMQ for tests and benchmarks: all its state lives in DIR, it listens on
# 127.0.0.1 only, and it brings its own epmd on a private port, so several brokers can run side
# by side and stopping one never touches another (or a system broker).
#
#   scripts/rabbitmq.sh start DIR     start (or reuse a running one); prints the AMQP URL
#   scripts/rabbitmq.sh stop DIR      stop it (graceful, kill -9 after a timeout) and its epmd
#   scripts/rabbitmq.sh restart DIR   stop, then start on the same ports with the same data
#   scripts/rabbitmq.sh kill DIR      SIGKILL the broker (fault tests); epmd stays
#   scripts/rabbitmq.sh url DIR       print the URL of a running broker
#
# DIR/env holds TB_AMQP_URL=amqp://guest:guest@127.0.0.1:PORT/ plus the ports, node name and
# PIDs (BROKER_PID, WRAPPER_PID, EPMD_PID); it can be sourced by a shell. Facts this relies on
# are in /work/shared/PEERS.md ("Starting RabbitMQ as root without touching the system").
set -euo pipefail

RMQ_BIN=${RMQ_BIN:-/usr/lib/rabbitmq/bin}
START_TIMEOUT_S=${TB_RABBITMQ_START_TIMEOUT:-60}
STOP_TIMEOUT_S=${TB_RABBITMQ_STOP_TIMEOUT:-30}

die() {
    echo "rabbitmq.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start|stop|restart|kill|url DIR" >&2
    exit 2
}

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# True when PID $1 is alive and its command line contains $2 (a recorded PID may have been
# reused by an unrelated process since: never signal that one).
alive_as() {
    alive "$1" || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# A free TCP port on 127.0.0.1, different from the ones given as arguments.
free_port() {
    python3 - "$@" <<'EOF'
import socket, sys
taken = set(int(a) for a in sys.argv[1:])
for _ in range(100):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if port not in taken and port < 60000:
        print(port)
        sys.exit(0)
sys.exit(1)
EOF
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

load_env() {
    NODE_PORT= DIST_PORT= EPMD_PORT= NODENAME= BROKER_PID= WRAPPER_PID= EPMD_PID= TB_AMQP_URL=
    [[ -f "$DIR/env" ]] || return 0
    local k v
    while IFS='=' read -r k v; do
        case "$k" in
        TB_AMQP_URL) TB_AMQP_URL=$v ;;
        RABBITMQ_NODE_PORT) NODE_PORT=$v ;;
        RABBITMQ_DIST_PORT) DIST_PORT=$v ;;
        ERL_EPMD_PORT) EPMD_PORT=$v ;;
        RABBITMQ_NODENAME) NODENAME=$v ;;
        BROKER_PID) BROKER_PID=$v ;;
        WRAPPER_PID) WRAPPER_PID=$v ;;
        EPMD_PID) EPMD_PID=$v ;;
        esac
    done <"$DIR/env"
}

write_env() {
    local tmp="$DIR/env.tmp"
    cat >"$tmp" <<EOF
TB_AMQP_URL=amqp://guest:guest@127.0.0.1:$NODE_PORT/
RABBITMQ_NODE_PORT=$NODE_PORT
RABBITMQ_DIST_PORT=$DIST_PORT
ERL_EPMD_PORT=$EPMD_PORT
RABBITMQ_NODENAME=$NODENAME
BROKER_PID=$BROKER_PID
WRAPPER_PID=$WRAPPER_PID
EPMD_PID=$EPMD_PID
EOF
    mv -f "$tmp" "$DIR/env"
}

# The environment of the broker and of rabbitmqctl: everything under DIR.
export_rmq_env() {
    export HOME="$DIR/home"
    export RABBITMQ_NODENAME="$NODENAME"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$NODE_PORT"
    export RABBITMQ_DIST_PORT="$DIST_PORT"
    export ERL_EPMD_PORT="$EPMD_PORT"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
    export RABBITMQ_LOG_BASE="$DIR/log"
    export RABBITMQ_LOGS="$DIR/log/rabbit.log"
    export RABBITMQ_PID_FILE="$DIR/rabbit.pid"
    export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
    # Loopback-only distribution; no busy-waiting schedulers (the load generator shares the 2
    # cores); a modest number of dirty IO threads.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none +SDio 4"
}

rmqctl() { "$RMQ_BIN/rabbitmqctl" -q -n "$NODENAME" "$@"; }

write_config() {
    mkdir -p "$DIR/home" "$DIR/mnesia" "$DIR/log"
    chmod 700 "$DIR/home"
    if [[ ! -s "$DIR/home/.erlang.cookie" ]]; then
        local cookie= i
        for ((i = 0; i < 20; i++)); do
            cookie+=$(printf "\\$(printf '%03o' $((65 + RANDOM % 26)))")
        done
        (umask 077 && printf '%s' "$cookie" >"$DIR/home/.erlang.cookie")
        chmod 400 "$DIR/home/.erlang.cookie"
    fi
    cat >"$DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$NODE_PORT
vm_memory_high_watermark.absolute = 1GiB
disk_free_limit.absolute = 50MB
log.file.level = info
log.console = false
EOF
    echo '[].' >"$DIR/enabled_plugins"
    echo '[].' >"$DIR/advanced.config"
    : >"$DIR/rabbitmq-env.conf"
}

log_tail() {
    echo "---- last lines of $DIR/log ----" >&2
    tail -n 30 "$DIR/log/rabbit.log" 2>/dev/null >&2 || true
    tail -n 30 "$DIR/log/stdout.log" 2>/dev/null >&2 || true
}

# Waits up to $2 seconds for pid $1 to exit; 0 when it did.
wait_exit() {
    local pid=$1 i
    for ((i = 0; i < $2 * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    ! alive "$pid"
}

kill_hard() {
    local pid
    for pid in "$@"; do
        alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        [[ -n "$pid" ]] && wait_exit "$pid" 5 || true
    done
}

broker_running() { alive_as "$BROKER_PID" beam.smp || alive_as "$WRAPPER_PID" rabbitmq-server; }
epmd_running() { alive_as "$EPMD_PID" epmd; }

# The broker's PID: recorded, or from its pid file, if it still is that broker.
broker_pid() {
    local pid=$BROKER_PID
    if [[ -z "$pid" && -s "$DIR/rabbit.pid" ]]; then
        pid=$(tr -dc '0-9' <"$DIR/rabbit.pid")
    fi
    if alive_as "$pid" beam.smp; then echo "$pid"; fi
}

cmd_start() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    load_env
    if [[ -n "$TB_AMQP_URL" ]] && broker_running && port_busy "$NODE_PORT"; then
        echo "$TB_AMQP_URL"
        return 0
    fi
    # Leftovers of a killed broker (its epmd, its wrapper) go first.
    if broker_running || epmd_running; then
        cmd_stop
        load_env
    fi
    if [[ -z "$NODE_PORT" ]]; then
        NODE_PORT=$(free_port) || die "no free port"
        DIST_PORT=$(free_port "$NODE_PORT") || die "no free port"
        EPMD_PORT=$(free_port "$NODE_PORT" "$DIST_PORT") || die "no free port"
        NODENAME="tb$NODE_PORT@localhost"
    fi
    local p
    for p in "$NODE_PORT" "$DIST_PORT" "$EPMD_PORT"; do
        port_busy "$p" && die "port $p (recorded in $DIR/env) is in use by another process"
    done
    write_config
    export_rmq_env
    rm -f "$RABBITMQ_PID_FILE"

    # Our own epmd, in the foreground of its own session so that we know its PID.
    setsid epmd -port "$EPMD_PORT" -address 127.0.0.1 </dev/null >>"$DIR/log/epmd.log" 2>&1 &
    EPMD_PID=$!
    local i
    for ((i = 0; i < 50; i++)); do
        port_busy "$EPMD_PORT" && break
        alive "$EPMD_PID" || break
        sleep 0.1
    done
    port_busy "$EPMD_PORT" || { kill_hard "$EPMD_PID"; die "epmd did not start on port $EPMD_PORT"; }

    setsid "$RMQ_BIN/rabbitmq-server" </dev/null >>"$DIR/log/stdout.log" 2>&1 &
    WRAPPER_PID=$!
    BROKER_PID=
    write_env

    # Ready when the AMQP listener accepts connections (queues are recovered before the
    # listener starts), bounded.
    local deadline=$((SECONDS + START_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        if [[ -z "$BROKER_PID" && -s "$RABBITMQ_PID_FILE" ]]; then
            BROKER_PID=$(tr -dc '0-9' <"$RABBITMQ_PID_FILE")
            write_env
        fi
        if [[ -n "$BROKER_PID" ]] && port_busy "$NODE_PORT"; then
            echo "amqp://guest:guest@127.0.0.1:$NODE_PORT/"
            return 0
        fi
        if ! alive_as "$WRAPPER_PID" rabbitmq-server && ! alive_as "$BROKER_PID" beam.smp; then
            log_tail
            kill_hard "$EPMD_PID"
            die "RabbitMQ exited during startup (state in $DIR)"
        fi
        sleep 0.1
    done
    log_tail
    kill_hard "$BROKER_PID" "$WRAPPER_PID" "$EPMD_PID"
    die "RabbitMQ not ready after ${START_TIMEOUT_S}s (state in $DIR)"
}

cmd_stop() {
    [[ -d "$DIR" ]] || return 0
    DIR=$(cd "$DIR" && pwd)
    load_env
    [[ -n "$NODENAME" ]] || return 0
    BROKER_PID=$(broker_pid)
    if [[ -n "$BROKER_PID" ]]; then
        export_rmq_env
        timeout "$STOP_TIMEOUT_S" "$RMQ_BIN/rabbitmqctl" -q -n "$NODENAME" stop "$DIR/rabbit.pid" \
            >>"$DIR/log/stop.log" 2>&1 || true
        wait_exit "$BROKER_PID" 5 || kill_hard "$BROKER_PID"
    fi
    if alive_as "$WRAPPER_PID" rabbitmq-server; then
        wait_exit "$WRAPPER_PID" 5 || kill_hard "$WRAPPER_PID"
    fi
    if epmd_running; then
        kill "$EPMD_PID" 2>/dev/null || true
        wait_exit "$EPMD_PID" 5 || kill_hard "$EPMD_PID"
    fi
    rm -f "$DIR/rabbit.pid"
    BROKER_PID= WRAPPER_PID= EPMD_PID=
    write_env
}

cmd_kill() {
    [[ -d "$DIR" ]] || return 0
    DIR=$(cd "$DIR" && pwd)
    load_env
    [[ -n "$NODENAME" ]] || return 0
    local pid
    pid=$(broker_pid)
    [[ -n "$pid" ]] && kill_hard "$pid"
    # The wrapper shell exits with its child.
    if alive_as "$WRAPPER_PID" rabbitmq-server; then
        wait_exit "$WRAPPER_PID" 5 || kill_hard "$WRAPPER_PID"
    fi
    return 0
}

[[ $# -eq 2 ]] || usage
DIR=$2
[[ -n "$DIR" ]] || usage
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
restart)
    cmd_stop
    cmd_start >/dev/null
    load_env
    echo "$TB_AMQP_URL"
    ;;
kill) cmd_kill ;;
url)
    load_env
    [[ -n "$TB_AMQP_URL" ]] && broker_running || die "no broker running in $DIR"
    echo "$TB_AMQP_URL"
    ;;
*) usage ;;
esac
