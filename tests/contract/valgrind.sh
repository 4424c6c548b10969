#!/usr/bin/env bash
# A bounded valgrind run of a real service under load: wallet_service under memcheck, wrk
# posting transactions, listing them and sending invalid requests, then SIGTERM. Fails on any
# memcheck error or leak (definite, indirect, possible), on a non-zero exit, or when a valid
# request got anything but 2xx.
#   bash tests/contract/valgrind.sh [BUILD_DIR]     (VG_SECONDS: seconds per load phase, 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECS=${VG_SECONDS:-5}
DATA=$(mktemp -d "${TMPDIR:-/tmp}/tablium-vg-XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
SECRET=valgrind-run-hs256-secret-0123456789abcdef
export TOKEN
TOKEN=$(/usr/bin/python3 scripts/mint-token.py "$SECRET" --sub valgrind)
FORGED=$(/usr/bin/python3 scripts/mint-token.py "another-secret-0123456789abcdef0123" --sub x)
EXPIRED=$(/usr/bin/python3 scripts/mint-token.py "$SECRET" --sub valgrind --ttl -3600)
AUTH="Authorization: Bearer $TOKEN"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
WALLET_PORT=$PORT WALLET_DB=$DATA/w.db TB_ACCESS_LOG=0 TB_THREADS=2 TB_VALIDATE_RESPONSES=1 \
  TB_HEADER_TIMEOUT_MS=3000 TB_BODY_TIMEOUT_MS=3000 \
  TB_JWT_SECRET=$SECRET TB_JWT_ISSUER=tablium-auth TB_JWT_AUDIENCE=tablium \
  valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9 \
  "$BUILD/wallet_service" 2>"$DATA/vg.log" &
PID=$!
for _ in $(seq 200); do curl -fsS "$URL/health" >/dev/null 2>&1 && break; sleep 0.1; done
W=$(curl -fsS -XPOST -H 'Content-Type: application/json' -H "$AUTH" \
  -d '{"userId":"6f1c2a9e-4b3d-4c8e-9a7f-0d2e5b8c1a34","currency":"CHP"}' "$URL/wallets" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
cat >"$DATA/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"type":"credit","amount":3,"reference":"vg"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
LUA
fail=0
run() { # NAME EXPECT_2XX wrk-args...
  local name=$1 ok=$2 out
  shift 2
  out=$(wrk "$@")
  echo "   $name: $(grep -o '[0-9]* requests in [0-9.]*s' <<<"$out"), $(grep -o 'Non-2xx or 3xx responses: [0-9]*' <<<"$out" || echo 'all 2xx')"
  if [ "$ok" = 1 ] && grep -q 'Non-2xx' <<<"$out"; then fail=1; fi
}
echo "valgrind: wallet_service under memcheck, $SECS s per phase"
run "POST transactions" 1 -t2 -c16 -d"${SECS}s" -s "$DATA/post.lua" "$URL/wallets/$W/transactions"
run "GET transactions" 1 -t2 -c16 -d"${SECS}s" -H "$AUTH" "$URL/wallets/$W/transactions?limit=5"
run "no token (401)" 0 -t1 -c4 -d"${SECS}s" "$URL/wallets/$W/transactions?limit=5"
run "forged token (401)" 0 -t1 -c4 -d"${SECS}s" -H "Authorization: Bearer $FORGED" \
  "$URL/wallets/$W/transactions?limit=5"
run "expired token (401)" 0 -t1 -c4 -d"${SECS}s" -H "Authorization: Bearer $EXPIRED" \
  "$URL/wallets/$W/transactions?limit=5"
run "invalid POSTs (400)" 0 -t1 -c4 -d"${SECS}s" -s "$DATA/post.lua" "$URL/wallets/not-a-uuid/transactions"
# Hostile clients (issue 12) through the front door under memcheck: ambiguous framing,
# garbage, a head cut short by EOF, a head and a body trickled past their deadlines.
/usr/bin/python3 - "$PORT" <<'PY' || fail=1
import socket, sys, time
port = int(sys.argv[1])
def ask(data, half_close=False):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    out = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out
H = b"Host: x\r\nContent-Type: application/json\r\n"
bad = [b"POST /wallets HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 9\r\n\r\n{}",
       b"POST /wallets HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n{}",
       b"POST /wallets HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n{}",
       b"GARBAGE\r\n\r\n"]
for b in bad:
    r = ask(b)
    if not (r.startswith(b"HTTP/1.1 400 ") or r.startswith(b"HTTP/1.1 501 ")):
        sys.exit("hostile: %r got %r" % (b[:40], r[:60]))
ask(b"GET /health HTTP/1.1\r\nHo", half_close=True)
slow = []
for i in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /health HTTP/1.1\r\nHo" if i % 2 == 0 else
              b"POST /wallets HTTP/1.1\r\n" + H + b"Content-Length: 50\r\n\r\n{")
    slow.append(s)
t0 = time.time()
while slow and time.time() - t0 < 20:
    for s in list(slow):
        try:
            s.sendall(b"s" if s.fileno() % 2 else b" ")
        except OSError:
            slow.remove(s)
    time.sleep(0.5)
if slow:
    sys.exit("hostile: %d slow connections were never cut" % len(slow))
print("   hostile clients: 4 refused, 20 slow connections cut")
PY
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
if [ "$rc" -ne 0 ] || grep -q '^==[0-9]*==' "$DATA/vg.log"; then
  echo "valgrind: FAILED (exit $rc)"; cat "$DATA/vg.log"; exit 1
fi
if [ "$fail" -ne 0 ]; then
  echo "valgrind: FAILED: valid requests got non-2xx answers"; grep -v '"level":"info"' "$DATA/vg.log" | head; exit 1
fi
echo "valgrind: clean (no errors, no leaks, exit 0)"
