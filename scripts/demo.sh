#!/usr/bin/env bash
# The platform demo: regenerates the code from the schemas and specs (showing the generator at
# work), checks it matches the committed gen/, runs the events demo, then starts the wallet and
# user services on free loopback ports and walks a short scenario through them.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
echo "== tablium-gen schemas schemas/events -o $BUILD/demo-gen/events"
/usr/bin/python3 generator/tablium-gen schemas schemas/events -o "$BUILD/demo-gen/events"
wc -l "$BUILD"/demo-gen/events/events.[ch] | sed 's/^/   /'
diff -rq gen/events "$BUILD/demo-gen/events" >/dev/null && echo "   (identical to the committed gen/events)"
for spec in openapi/wallet.yaml openapi/user.yaml; do
  name=$(basename "$spec" .yaml)
  echo "== tablium-gen openapi $spec -o $BUILD/demo-gen/$name"
  /usr/bin/python3 generator/tablium-gen openapi "$spec" -o "$BUILD/demo-gen/$name"
  echo "   $(grep -c '^int .*_call(' "$BUILD/demo-gen/$name/$name.h") operations:" \
       "$(grep -o '^int [a-z_]*(tb_ctx' "$BUILD/demo-gen/$name/$name.h" | sed 's/^int //; s/(tb_ctx//' | tr '\n' ' ')"
  diff -rq "gen/$name" "$BUILD/demo-gen/$name" >/dev/null && echo "   (identical to the committed gen/$name)"
done
"$BUILD/tablium_demo"

# ---- REST: the wallet and user services as their own processes ----
DATA=$(mktemp -d "${TMPDIR:-/tmp}/tablium-demo-XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$DATA"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_health() {
  for _ in $(seq 100); do
    curl -fsS "$1/health" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "demo: $1 did not come up" >&2; return 1
}
WPORT=$(free_port); UPORT=$(free_port)
export WALLET_SERVICE_URL=http://127.0.0.1:$WPORT USER_SERVICE_URL=http://127.0.0.1:$UPORT
echo
echo "== starting wallet_service on :$WPORT and user_service on :$UPORT (logs in $DATA)"
WALLET_PORT=$WPORT WALLET_DB=$DATA/wallet.db "$BUILD/wallet_service" 2>"$DATA/wallet.log" & PIDS+=($!)
USER_PORT=$UPORT USER_DB=$DATA/user.db "$BUILD/user_service" 2>"$DATA/user.log" & PIDS+=($!)
wait_health "$WALLET_SERVICE_URL"
wait_health "$USER_SERVICE_URL"
"$BUILD/tablium_rest_demo"
echo
echo "== what the wallet service logged for request demo-0001 (it came through the user service):"
grep '"requestId":"demo-0001"' "$DATA/wallet.log" | head -4 | sed 's/^/   /'
echo "== stopping the services (SIGTERM: finish in-flight requests, exit 0)"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p"; echo "   pid $p exited with $?"; done
PIDS=()
