#!/bin/bash
# A real Prometheus scrapes running tablium services; PromQL through its HTTP API must return
# the request counts this script made, and `promtool check metrics` must pass on each service's
# /metrics.
#
#   tests/metrics/prom_scrape.sh BUILD_DIR/wallet_service
#
# Starts wallet_service, and user_service and auth_service when they sit next to it (user calls
# wallet: that is where client metrics come from), each on a free port with its own database,
# then `prometheus` (scrape_interval 1s) on a free port; makes N_GET getWallet and N_POST
# createWallet requests on wallet and N_USER getUserWallets on user; waits for the counts to show
# in /api/v1/query. Everything it starts is stopped by PID on exit. TB_KEEP_TMP=1 keeps the
# temporary directory (logs, config, TSDB).
set -euo pipefail

WALLET_BIN=${1:?usage: prom_scrape.sh path/to/wallet_service}
BIN_DIR=$(cd "$(dirname "$WALLET_BIN")" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
N_GET=${N_GET:-25}
N_POST=${N_POST:-10}
N_USER=${N_USER:-7}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tb_prom.XXXXXX")
PIDS=()
LOGS=() # the services' logs
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # a sanitizer build reports at exit, into the service's log
    if grep -l -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "${LOGS[@]}" 2>/dev/null >&2; then
        echo "prom_scrape: FAIL: sanitizer report in the log(s) above" >&2
        [ $rc -eq 0 ] && rc=1
    fi
    if [ $rc -ne 0 ]; then
        echo "--- logs (rc $rc) in $TMP ---" >&2
        for f in "$TMP"/*.log; do
            [ -f "$f" ] && { echo "== $f" >&2; grep -v '"path":"/metrics"' "$f" | tail -n 20 >&2; }
        done
    fi
    if [ -z "${TB_KEEP_TMP:-}" ] && [ $rc -eq 0 ]; then rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "prom_scrape: FAIL: $*" >&2; exit 1; }

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: until URL answers 200
wait_http() {
    local url=$1 n=$(($2 * 10))
    for _ in $(seq "$n"); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

SECRET=tablium-prom-scrape-hs256-secret-0123456789abcdef
export TB_JWT_SECRET=$SECRET TB_JWT_ISSUER=tablium-auth TB_JWT_AUDIENCE=tablium
TOKEN=$($PY "$ROOT/scripts/mint-token.py" "$SECRET" --sub prom-scrape)
export SERVICE_AUTH_TOKEN=$TOKEN
export HOST=127.0.0.1 TB_THREADS=2

# start_service NAME [ENV=VALUE...]: sets PORT_<NAME>
start_service() {
    local name=$1; shift
    local upper port
    upper=$(echo "$name" | tr a-z A-Z)
    port=$(free_port)
    env "${upper}_PORT=$port" "${upper}_DB=$TMP/$name.db" "$@" \
        "$BIN_DIR/${name}_service" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    LOGS+=("$TMP/$name.log")
    wait_http "http://127.0.0.1:$port/metrics" 10 || fail "${name}_service did not start"
    eval "PORT_$name=$port"
    SERVICES+=("$name")
}

SERVICES=()
start_service wallet
if [ -x "$BIN_DIR/user_service" ]; then
    start_service user "WALLET_SERVICE_URL=http://127.0.0.1:$PORT_wallet"
fi
if [ -x "$BIN_DIR/auth_service" ]; then
    start_service auth AUTH_PBKDF2_ITERATIONS=1000
fi

# Prometheus
PROM_PORT=$(free_port)
{
    echo "global:"
    echo "  scrape_interval: 1s"
    echo "  evaluation_interval: 1s"
    echo "rule_files: ['$ROOT/deploy/prometheus/alerts.yml']"
    echo "scrape_configs:"
    for s in "${SERVICES[@]}"; do
        p=PORT_$s
        echo "  - job_name: $s"
        echo "    static_configs: [{targets: ['127.0.0.1:${!p}']}]"
    done
} >"$TMP/prometheus.yml"
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
PROM=http://127.0.0.1:$PROM_PORT
wait_http "$PROM/-/ready" 30 || fail "prometheus not ready"

# query EXPR: prints the scalar value of a one-element vector result, or "none"
query() {
    curl -sf --get "$PROM/api/v1/query" --data-urlencode "query=$1" | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
r = d["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "none" if not r else "many")'
}

# wait_value EXPR WANT SECONDS
wait_value() {
    local got=none
    for _ in $(seq $(($3 * 4))); do
        got=$(query "$1" || echo error)
        [ "$got" = "$2" ] && { echo "$got"; return 0; }
        sleep 0.25
    done
    echo "$got"
    return 1
}

for s in "${SERVICES[@]}"; do
    wait_value "up{job=\"$s\"}" 1 30 >/dev/null || fail "prometheus did not scrape $s"
done

# the requests
W=http://127.0.0.1:$PORT_wallet
for i in $(seq "$N_GET"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        "$W/wallets/$($PY -c 'import uuid; print(uuid.uuid4())')")
    [ "$code" = 404 ] || fail "GET /wallets/{id} answered $code, not 404"
done
for i in $(seq "$N_POST"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' \
        -d "{\"userId\":\"$($PY -c 'import uuid; print(uuid.uuid4())')\",\"currency\":\"CHP\"}" \
        "$W/wallets")
    [ "$code" = 201 ] || fail "POST /wallets answered $code, not 201"
done
if [ -n "${PORT_user:-}" ]; then
    U=http://127.0.0.1:$PORT_user
    uid=$(curl -sf -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
        -d '{"username":"prom_scrape","email":"prom@example.com"}' "$U/users" |
        $PY -c 'import json, sys; print(json.load(sys.stdin)["data"]["id"])') ||
        fail "POST /users on user"
    for i in $(seq "$N_USER"); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
            "$U/users/$uid/wallets")
        [ "$code" = 200 ] || fail "GET /users/{id}/wallets answered $code, not 200"
    done
fi

# promtool on every service's exposition, now that it has traffic in it
for s in "${SERVICES[@]}"; do
    p=PORT_$s
    curl -sf "http://127.0.0.1:${!p}/metrics" >"$TMP/$s.metrics" || fail "GET /metrics of $s"
    if ! out=$(promtool check metrics <"$TMP/$s.metrics" 2>&1); then
        echo "$out" >&2
        fail "promtool check metrics on $s's /metrics"
    fi
    echo "promtool check metrics: $s ok ($(grep -vc '^#' "$TMP/$s.metrics") samples)"
done

# the counts, through PromQL
check() { # EXPR WANT [PREFIX]
    local got
    got=$(wait_value "$1" "$2" 20) || fail "query $1 = $got (made $2)"
    echo "prometheus: ${3:-}query $1 = $got (made $2)"
}
wait_value 'sum(http_server_requests_total{job="wallet",operation="getWallet"})' "$N_GET" 20 \
    >/dev/null || true
series=$(query 'scrape_samples_scraped{job="wallet"}')
check 'sum(http_server_requests_total{job="wallet",operation="getWallet",http_request_method="GET",http_response_status_code="404"})' \
    "$N_GET" "scraped $series series from wallet; "
check 'sum(http_server_request_duration_seconds_count{job="wallet",operation="createWallet",http_request_method="POST",http_response_status_class="2xx"})' "$N_POST"
check 'sum(http_server_request_duration_seconds_bucket{job="wallet",operation="createWallet",le="+Inf"})' "$N_POST"
if [ -n "${PORT_user:-}" ]; then
    check 'sum(http_server_requests_total{job="user",operation="getUserWallets",http_response_status_code="200"})' "$N_USER"
    check 'sum(http_client_request_duration_seconds_count{job="user",operation="getUserWallets",outcome="ok"})' "$N_USER"
    check 'sum(http_server_requests_total{job="wallet",operation="getUserWallets"})' "$N_USER"
fi
# the recording rules of deploy/prometheus/alerts.yml evaluate on live data
want_ops=2
[ -n "${PORT_user:-}" ] && want_ops=3
got=$(wait_value 'count(service_operation:http_server_requests:rate5m{service="wallet"})' \
    "$want_ops" 20) || fail "recording rule service_operation:http_server_requests:rate5m: $got"
echo "prometheus: recording rules evaluate ($got wallet operations)"
# no alert fires on this healthy run
firing=$(curl -sf "$PROM/api/v1/alerts" | $PY -c '
import json, sys
print(" ".join(a["labels"]["alertname"] for a in json.load(sys.stdin)["data"]["alerts"]
               if a["state"] == "firing"))')
[ -z "$firing" ] || fail "alerts firing on a healthy run: $firing"
echo "prom_scrape: ok"
