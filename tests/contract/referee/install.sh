#!/usr/bin/env bash
# Installs the referee's npm dependencies (Prism, Spectral) into tests/contract/referee/node_modules
# with `npm ci`, only when node_modules is missing or stale (package.json or package-lock.json
# changed since the last install). Idempotent and quiet when there is nothing to do; needs the npm
# registry only when it has to install. Same approach as bench/npm-install.sh.
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stamp=$DIR/node_modules/.tablium-npm-stamp
want=$(cat "$DIR/package.json" "$DIR/package-lock.json" | sha256sum | cut -d' ' -f1)

fresh() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && [ -x "$DIR/node_modules/.bin/prism" ] && [ -x "$DIR/node_modules/.bin/spectral" ]
}
fresh && exit 0
# Contract tests may start several Prisms at once: one install at a time, the others wait for it.
exec 9>"$DIR/.install.lock"
flock 9
fresh && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "referee/install: npm not found; install Node.js >= 20 (scripts/deps.sh installs nodejs)" >&2
  exit 1
fi
# --ignore-scripts: the only install script in the tree is @scarf/scarf's analytics ping.
if ! (cd "$DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null); then
  echo "referee/install: 'npm ci' failed in tests/contract/referee" >&2
  exit 1
fi
echo "$want" >"$stamp"
