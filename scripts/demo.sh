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
OTLP_PID=
cleanup() {
  [ -z "$OTLP_PID" ] || kill -TERM "$OTLP_PID" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  bash scripts/redis.sh stop "$DATA/redis" >/dev/null 2>&1 || true
  bash scripts/rabbitmq.sh stop "$DATA/rabbitmq" >/dev/null 2>&1 || true
  [ -n "${TB_DEMO_KEEP:-}" ] || rm -rf "$DATA"
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
echo
echo "== starting a private Redis and RabbitMQ (scripts/redis.sh, scripts/rabbitmq.sh; ~5 s)"
export TB_REDIS_URL TB_AMQP_URL
TB_REDIS_URL=$(bash scripts/redis.sh start "$DATA/redis")
TB_AMQP_URL=$(bash scripts/rabbitmq.sh start "$DATA/rabbitmq")
echo "   redis $TB_REDIS_URL, rabbitmq $TB_AMQP_URL"
# A stand-in OTLP collector: tests/trace/otlp-decoder decodes what the services export with the
# official OpenTelemetry protobuf definitions (npm @opentelemetry/otlp-transformer).
[ -d tests/trace/otlp-decoder/node_modules/@opentelemetry/otlp-transformer ] ||
  npm ci --prefix tests/trace/otlp-decoder --no-audit --no-fund --loglevel=error >/dev/null
node tests/trace/otlp-decoder/receiver.js >"$DATA/otlp.port" 2>"$DATA/otlp.log" & OTLP_PID=$!
for _ in $(seq 100); do [ -s "$DATA/otlp.port" ] && break; sleep 0.05; done
OTLP_PORT=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["port"])' "$DATA/otlp.port")
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_PORT OTEL_BSP_SCHEDULE_DELAY=200
echo "   OTLP collector (test receiver) on $OTEL_EXPORTER_OTLP_ENDPOINT"
WPORT=$(free_port); UPORT=$(free_port); APORT=$(free_port)
export WALLET_SERVICE_URL=http://127.0.0.1:$WPORT USER_SERVICE_URL=http://127.0.0.1:$UPORT
export AUTH_SERVICE_URL=http://127.0.0.1:$APORT
# Auth issues the tokens (ES256, its keys at /.well-known/jwks.json); Wallet and User verify them
# over that URL, and Wallet limits each caller (the token's sub) to 40 requests a minute. User
# gets its service token from Auth with client credentials; so does the REST demo client, which
# acts as a gateway would (client "gateway": read and write users and wallets).
AUTH_CLIENTS="user:user-secret:wallet.read wallet.write,demo:demo-secret:wallet.read,gateway:gateway-secret:user.read user.write wallet.read wallet.write game.read game.write,game_state:game-state-secret:user.read,realtime:realtime-secret:game.read game.write"
export TB_SERVICE_CLIENT_ID=user TB_SERVICE_CLIENT_SECRET=user-secret
echo "== starting wallet_service on :$WPORT, user_service on :$UPORT, auth_service on :$APORT (logs in $DATA)"
AUTH_CLIENTS=$AUTH_CLIENTS AUTH_PORT=$APORT AUTH_DB=$DATA/auth.db "$BUILD/auth_service" \
  2>"$DATA/auth.log" & PIDS+=($!)
wait_health "$AUTH_SERVICE_URL"
TB_JWT_JWKS_URL=$AUTH_SERVICE_URL/.well-known/jwks.json TB_JWT_ISSUER=tablium-auth \
  TB_JWT_AUDIENCE=tablium TB_RATE_LIMIT=40/1m WALLET_PORT=$WPORT WALLET_DB=$DATA/wallet.db \
  "$BUILD/wallet_service" 2>"$DATA/wallet.log" & PIDS+=($!)
TB_JWT_JWKS_URL=$AUTH_SERVICE_URL/.well-known/jwks.json TB_JWT_ISSUER=tablium-auth \
  TB_JWT_AUDIENCE=tablium USER_PORT=$UPORT USER_DB=$DATA/user.db "$BUILD/user_service" \
  2>"$DATA/user.log" & PIDS+=($!)
wait_health "$WALLET_SERVICE_URL"
wait_health "$USER_SERVICE_URL"
GW_TOKEN=$(curl -sS -u gateway:gateway-secret -d grant_type=client_credentials \
  "$AUTH_SERVICE_URL/oauth/token" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# ---- events: Auth -> user.registered (outbox, RabbitMQ) -> User creates the profile ----
echo
echo "== POST $AUTH_SERVICE_URL/auth/register  (the account and user.registered commit together)"
REG=$(curl -sS -H 'Content-Type: application/json' -H 'X-Request-ID: demo-events-1' \
  -d '{"email":"grace@example.com","username":"grace_h","password":"correct horse battery","displayName":"Grace Hopper"}' \
  "$AUTH_SERVICE_URL/auth/register")
echo "   $REG"
UID_=$(printf '%s' "$REG" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["userId"])')
echo "== GET $USER_SERVICE_URL/users/$UID_/profile until the User service has consumed the event"
for _ in $(seq 100); do
  PROFILE=$(curl -sS -H "Authorization: Bearer $GW_TOKEN" "$USER_SERVICE_URL/users/$UID_/profile")
  case $PROFILE in *'"data"'*) break ;; esac
  sleep 0.05
done
echo "   $PROFILE"
echo "== the event's trip, from the logs (same correlation id demo-events-1):"
grep -h 'user.registered\|welcome wallet' "$DATA/auth.log" "$DATA/user.log" | grep -v '"level":"debug"' | head -5 | sed 's/^/   /'
# ---- one trace: Auth -> RabbitMQ -> User -> Wallet ----
TRACE=$(grep '"requestId":"demo-events-1"' "$DATA/auth.log" | grep -o '"traceId":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
echo "== trace $TRACE: the spans the three services exported (OTLP/HTTP JSON, decoded by the collector)"
sleep 0.6 # one export round
curl -sS "http://127.0.0.1:$OTLP_PORT/received" | /usr/bin/python3 -c '
import json, sys
trace = sys.argv[1]
spans = [s for s in json.load(sys.stdin)["spans"] if s["span"]["traceId"] == trace]
svc = lambda s: next((a["value"]["stringValue"] for a in s["resource"].get("attributes", [])
                      if a["key"] == "service.name"), "?")
kinds = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
byid = {s["span"]["spanId"]: s for s in spans}
def depth(s):
    d, p = 0, s["span"].get("parentSpanId")
    while p in byid:
        d, p = d + 1, byid[p]["span"].get("parentSpanId")
    return d
for s in sorted(spans, key=lambda s: int(s["span"]["startTimeUnixNano"])):
    ms = (int(s["span"]["endTimeUnixNano"]) - int(s["span"]["startTimeUnixNano"])) / 1e6
    print("   %s%-30s %-8s %-6s %7.2f ms" % ("  " * depth(s), s["span"]["name"], kinds[s["span"]["kind"]], svc(s), ms))
print("   (%d spans; with a real collector set OTEL_EXPORTER_OTLP_ENDPOINT, e.g. Jaeger or the OpenTelemetry Collector on :4318)" % len(spans))
' "$TRACE"
echo "== the same trace id in the services' log lines:"
for s in auth user wallet; do
  printf '   %-7s %s lines\n' "$s" "$(grep -c "\"traceId\":\"$TRACE\"" "$DATA/$s.log" || true)"
done
echo
TB_SERVICE_CLIENT_ID=gateway TB_SERVICE_CLIENT_SECRET=gateway-secret "$BUILD/tablium_rest_demo"
echo
sleep 0.3 # the access log line is written just after the answer goes out
echo "== what the wallet service logged for request demo-0001 (it came through the user service):"
grep '"requestId":"demo-0001"' "$DATA/wallet.log" | head -4 | sed 's/^/   /'
# ---- auth: a token issued and used, a 401, a 403, a 429 ----
echo
echo "== POST $AUTH_SERVICE_URL/oauth/token  (RFC 6749 client credentials: curl -u demo:... -d grant_type=client_credentials)"
TOK=$(curl -sS -u demo:demo-secret -d grant_type=client_credentials "$AUTH_SERVICE_URL/oauth/token")
echo "   $(printf '%s' "$TOK" | cut -c1-60)..."
TOKEN=$(printf '%s' "$TOK" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
WID=$(grep -o '"path":"/wallets/[0-9a-f-]*/transactions"' "$DATA/wallet.log" | head -1 | cut -d/ -f3)
show() { # WHAT curl-args...: prints the status, the WWW-Authenticate/Retry-After and error code
  local what=$1 out
  shift
  out=$(curl -sS -D - -o "$DATA/body" "$@")
  printf '   %-44s -> %s' "$what" "$(printf '%s' "$out" | head -1 | tr -d '\r' | cut -d' ' -f2)"
  printf '%s' "$out" | { grep -i '^www-authenticate:\|^retry-after:' || true; } | tr -d '\r' |
    sed 's/^/, /' | tr -d '\n'
  /usr/bin/python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(", " + d["error"]["code"] if "error" in d else ", balance %s" % d["data"]["balance"])' "$DATA/body"
}
show "GET /wallets/{id} with the token" -H "Authorization: Bearer $TOKEN" \
  "$WALLET_SERVICE_URL/wallets/$WID"
show "GET /wallets/{id} without a token" "$WALLET_SERVICE_URL/wallets/$WID"
show "POST a transaction with the read-only token" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"type":"credit","amount":1}' \
  "$WALLET_SERVICE_URL/wallets/$WID/transactions"
URLS=()
for _ in $(seq 60); do URLS+=("$WALLET_SERVICE_URL/wallets/$WID"); done
curl -s -o /dev/null -o /dev/null -H "Authorization: Bearer $TOKEN" "${URLS[@]}" >/dev/null
show "62nd GET within a minute (40/min)" -H "Authorization: Bearer $TOKEN" \
  "$WALLET_SERVICE_URL/wallets/$WID"
# ---- metrics and health ----
echo
echo "== GET $WALLET_SERVICE_URL/metrics  (Prometheus text format; a few of its lines)"
curl -sS "$WALLET_SERVICE_URL/metrics" | grep -E '^http_server_requests_total|^tablium_server_refused_total|^process_resident' | head -8 | sed 's/^/   /'
echo "   (scrape it with Prometheus; alert rules in deploy/prometheus/alerts.yml)"
echo "== GET $USER_SERVICE_URL/health/ready"
echo "   $(curl -sS "$USER_SERVICE_URL/health/ready")"
# ---- realtime: two players on Socket.IO play Connect Four through Realtime -> Game State ----
echo
GPORT=$(free_port); RPORT=$(free_port)
export GAME_STATE_SERVICE_URL=http://127.0.0.1:$GPORT
echo "== starting game_state_service on :$GPORT and realtime_service (Socket.IO, /games) on :$RPORT"
TB_JWT_JWKS_URL=$AUTH_SERVICE_URL/.well-known/jwks.json TB_JWT_ISSUER=tablium-auth \
  TB_JWT_AUDIENCE=tablium TB_SERVICE_CLIENT_ID=game_state TB_SERVICE_CLIENT_SECRET=game-state-secret \
  GAME_STATE_PORT=$GPORT GAME_STATE_DB=$DATA/game_state.db "$BUILD/game_state_service" \
  2>"$DATA/game_state.log" & PIDS+=($!)
TB_JWT_JWKS_URL=$AUTH_SERVICE_URL/.well-known/jwks.json TB_JWT_ISSUER=tablium-auth \
  TB_JWT_AUDIENCE=tablium TB_SERVICE_CLIENT_ID=realtime TB_SERVICE_CLIENT_SECRET=realtime-secret \
  REALTIME_PORT=$RPORT TB_DATA_DIR=$DATA "$BUILD/realtime_service" 2>"$DATA/realtime.log" & PIDS+=($!)
wait_health "$GAME_STATE_SERVICE_URL"
wait_health "http://127.0.0.1:$RPORT"
curl -sS -o /dev/null -H 'Content-Type: application/json' \
  -d '{"email":"alan@example.com","username":"alan_t","password":"correct horse battery","displayName":"Alan Turing"}' \
  "$AUTH_SERVICE_URL/auth/register"
login() {
  curl -sS -H 'Content-Type: application/json' -d "{\"username\":\"$1\",\"password\":\"correct horse battery\"}" \
    "$AUTH_SERVICE_URL/auth/login" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
TOKEN_A=$(login grace_h); TOKEN_B=$(login alan_t)
sub() { /usr/bin/python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["sub"])' "$1"; }
USER_A=$(sub "$TOKEN_A"); USER_B=$(sub "$TOKEN_B")
for _ in $(seq 100); do # alan's profile comes from user.registered
  curl -fsS -o /dev/null -H "Authorization: Bearer $GW_TOKEN" "$USER_SERVICE_URL/users/$USER_B/profile" && break
  sleep 0.05
done
GAME=$(curl -sS -H "Authorization: Bearer $GW_TOKEN" -H 'Content-Type: application/json' \
  -d "{\"userId\":\"$USER_A\"}" "$GAME_STATE_SERVICE_URL/games" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
echo "== POST $GAME_STATE_SERVICE_URL/games -> game $GAME; the players (tests/realtime/players.js) on socket.io-client:"
[ -d tests/realtime/node_modules/socket.io-client ] ||
  (cd tests/realtime && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd tests/realtime && RT_URL=http://127.0.0.1:$RPORT GAME_ID=$GAME USER_A=$USER_A USER_B=$USER_B \
  TOKEN_A=$TOKEN_A TOKEN_B=$TOKEN_B TOKEN_C=$TOKEN_A node players.js --demo) | sed 's/^/   /'
echo "== GET $GAME_STATE_SERVICE_URL/games/$GAME  (the authoritative state)"
curl -sS -H "Authorization: Bearer $GW_TOKEN" "$GAME_STATE_SERVICE_URL/games/$GAME" |
  /usr/bin/python3 -c 'import json,sys; g=json.load(sys.stdin)["data"]; print("   status %s, winner %s, %d moves, version %d" % (g["status"], g["winner"], g["moves"], g["version"]))'

echo
echo "== stopping the services (SIGTERM: finish in-flight requests, exit 0)"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p"; echo "   pid $p exited with $?"; done
PIDS=()
