#!/usr/bin/env bash
# Installs the npm dependencies of the benchmarks (every bench/*/package-lock.json) with `npm ci`,
# only when node_modules is missing or stale (package.json or package-lock.json changed since the
# last install). Idempotent and quiet; needs the npm registry only when it has to install.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

for lock in "$BENCH"/*/package-lock.json; do
  [ -f "$lock" ] || continue
  dir=$(dirname "$lock")
  stamp=$dir/node_modules/.tablium-npm-stamp
  want=$(cat "$dir/package.json" "$lock" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    continue
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm-install: npm not found; install Node.js (scripts/deps.sh installs nodejs)" >&2
    exit 1
  fi
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "npm-install: 'npm ci' failed in ${dir#"$BENCH"/}" >&2
    exit 1
  fi
  echo "$want" >"$stamp"
done
