#!/usr/bin/env bash
# The generated TypeScript event maps (gen/realtime/realtime.ts) against socket.io-client's own
# types, with the TypeScript compiler (npm typescript): typed/client.ts must compile; every line
# of typed/wrong.ts marked "// expect: TSxxxx" must be refused with that code, and nothing else.
# Prints: realtime-typescript: N passed, N failed
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
if [ ! -x node_modules/.bin/tsc ]; then
  npm ci --no-audit --no-fund >&2 || { echo "realtime-typescript: 0 passed, 1 failed"; exit 1; }
fi
pass=0 fail=0
if out=$(node_modules/.bin/tsc -p typed/tsconfig.json 2>&1); then
  pass=$((pass + 1))
else
  echo "realtime-typescript: typed/client.ts does not compile:" >&2
  echo "$out" >&2
  fail=$((fail + 1))
fi
out=$(node_modules/.bin/tsc -p typed/tsconfig.wrong.json 2>&1)
# wrong.ts(LINE,COL): error TSxxxx: ...
declare -A got
while IFS= read -r l; do
  if [[ $l =~ wrong\.ts\(([0-9]+),[0-9]+\):\ error\ (TS[0-9]+) ]]; then
    got[${BASH_REMATCH[1]}]="${got[${BASH_REMATCH[1]}]:-} ${BASH_REMATCH[2]}"
  fi
done <<<"$out"
n=0
while IFS= read -r entry; do
  line=${entry%%:*}
  want=$(sed -n 's/.*expect: \(TS[0-9]*\).*/\1/p' <<<"${entry#*:}")
  n=$((n + 1))
  if [[ " ${got[$line]:-} " == *" $want "* ]]; then
    pass=$((pass + 1))
  else
    echo "realtime-typescript: wrong.ts:$line should fail with $want, got:${got[$line]:- nothing}" >&2
    fail=$((fail + 1))
  fi
  unset "got[$line]"
done < <(grep -n "// expect: TS" typed/wrong.ts)
for line in "${!got[@]}"; do
  echo "realtime-typescript: wrong.ts:$line fails unexpectedly:${got[$line]}" >&2
  fail=$((fail + 1))
done
[ "$n" -gt 0 ] || fail=$((fail + 1))
echo "realtime-typescript: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
