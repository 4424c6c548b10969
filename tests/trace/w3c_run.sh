#!/usr/bin/env bash
# Runs the official W3C Trace Context harness (level 2, strict) against w3c_service.
#   tests/trace/w3c_run.sh <path to w3c_service> [harness patterns...]
# Prints one line "trace-context: N passed, N failed[, N skipped]", then each failing test with
# its assertion output; exits 1 when any test failed or the harness could not run.
# TB_SHARED overrides the shared folder (default: <repo>/../shared).
set -u

svc=${1:?usage: w3c_run.sh <w3c_service binary> [patterns...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${TB_SHARED:-$root/../shared}
harness=$shared/testdata/w3c-trace-context
py=/usr/bin/python3

if [ ! -x "$svc" ]; then
    echo "trace-context: 0 passed, 1 failed"
    echo "w3c_service not found or not executable: $svc"
    exit 1
fi
if [ ! -f "$harness/test.py" ]; then
    echo "trace-context: 0 passed, 1 failed"
    echo "the W3C harness is not at $harness (set TB_SHARED)"
    exit 1
fi

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d "${TMPDIR:-/tmp}/w3c.XXXXXX")
pid=
svc_rc=
# SIGTERM, then up to 10 s for a graceful stop (and the sanitizers' report), then SIGKILL.
stop_service() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        svc_rc=$?
        pid=
    fi
}
cleanup() {
    stop_service
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(free_port)
hport=$(free_port)
while [ "$hport" = "$port" ]; do hport=$(free_port); done

HOST=127.0.0.1 PORT=$port TB_ACCESS_LOG=${TB_ACCESS_LOG:-0} "$svc" >"$work/service.log" 2>&1 &
pid=$!

# Up when POST /test with an empty list answers 200.
up=0
for _ in $(seq 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -X POST -H 'Content-Type: application/json' \
        --data '[]' "http://127.0.0.1:$port/test" 2>/dev/null)
    if [ "$code" = 200 ]; then
        up=1
        break
    fi
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "trace-context: 0 passed, 1 failed"
    echo "w3c_service did not come up on 127.0.0.1:$port; its log:"
    tail -n 30 "$work/service.log"
    exit 1
fi

(cd "$harness" && HARNESS_HOST=127.0.0.1 HARNESS_PORT=$hport STRICT_LEVEL=2 SPEC_LEVEL=2 \
    "$py" test.py "http://127.0.0.1:$port/test" "$@") >"$work/harness.log" 2>&1
hrc=$?
stop_service

# unittest's summary ("Ran N tests", "OK (skipped=S)" / "FAILED (failures=F, errors=E,
# skipped=S)") gives the counts; each "FAIL:"/"ERROR:" block names a test and holds its output.
# A service that does not stop cleanly (a crash, a sanitizer report) fails the run too.
"$py" - "$work/harness.log" "$hrc" "$svc_rc" "$work/service.log" <<'EOF'
import re, sys

log = open(sys.argv[1], encoding='utf-8', errors='replace').read()
hrc = int(sys.argv[2])
svc_rc = int(sys.argv[3] or 0)
svc_log = open(sys.argv[4], encoding='utf-8', errors='replace').read()
ran = re.search(r'^Ran (\d+) tests? in ', log, re.M)
summary = re.search(r'^(OK|FAILED)(?: \(([^)]*)\))?\s*$', log, re.M)
counts = {}
if summary and summary.group(2):
    for part in summary.group(2).split(','):
        k, _, v = part.strip().partition('=')
        counts[k] = int(v)
failed = counts.get('failures', 0) + counts.get('errors', 0) + \
    counts.get('unexpected successes', 0)
skipped = counts.get('skipped', 0)
total = int(ran.group(1)) if ran else 0
passed = total - failed - skipped - counts.get('expected failures', 0)
if not ran or not summary or (hrc != 0 and failed == 0):
    failed = max(failed, 1)  # the harness itself broke
line = 'trace-context: %d passed, %d failed' % (max(passed, 0), failed)
if skipped:
    line += ', %d skipped' % skipped
print(line)

sep1, sep2 = '=' * 70, '-' * 70
blocks = log.split(sep1 + '\n')[1:]
for b in blocks:
    head, _, body = b.partition(sep2 + '\n')
    name = head.splitlines()[0] if head else '?'
    if not re.match(r'(FAIL|ERROR): ', name):
        continue
    body = body.split('\n' + sep2 + '\nRan ')[0].rstrip()
    # the assertion, not the whole traceback: from the exception line on
    lines = body.splitlines()
    start = 0
    for i, l in enumerate(lines):
        if re.match(r'^[A-Za-z_.]*(Error|Exception)\b', l):
            start = i
            break
    out = lines[start:]
    if len(out) > 60:
        out = out[:60] + ['    ... (%d more lines)' % (len(out) - 60)]
    print()
    print(name)
    for l in out:
        print('    ' + l)
if not ran or not summary:
    print()
    print('the harness did not finish; its output:')
    print('\n'.join(log.splitlines()[-40:]))
sanitizer = re.search(r'^(==\d+==ERROR: \w+Sanitizer|.*: runtime error: )', svc_log, re.M)
if svc_rc != 0 or sanitizer:
    print()
    print('w3c_service exited with status %d after SIGTERM%s; its log:' %
          (svc_rc, ' and a sanitizer report' if sanitizer else ''))
    tail = svc_log[sanitizer.start():] if sanitizer else svc_log
    tail = tail.splitlines()
    print('\n'.join('    ' + l[:300] for l in tail[:60]))
    if len(tail) > 60:
        print('    ... (%d more lines)' % (len(tail) - 60))
sys.exit(1 if failed or svc_rc != 0 or sanitizer else 0)
EOF
