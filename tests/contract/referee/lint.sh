#!/usr/bin/env bash
# Lints OpenAPI specs with Spectral and the referee's ruleset (.spectral.yaml beside this script:
# spectral:oas recommended + tablium rules). Any finding, warning or error, fails.
#   tests/contract/referee/lint.sh openapi/wallet.yaml [openapi/user.yaml ...]
# Prints the findings (Spectral's "stylish" format); exit 0 when clean, 1 on any finding,
# 2 on a usage or tooling error. Installs Prism/Spectral first when needed (install.sh).
set -euo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -eq 0 ]; then
  echo "usage: $0 SPEC..." >&2
  exit 2
fi
for spec in "$@"; do
  if [ ! -f "$spec" ]; then
    echo "referee/lint: no such file: $spec" >&2
    exit 2
  fi
done
"$DIR/install.sh"

rc=0
out=$("$DIR/node_modules/.bin/spectral" lint --ruleset "$DIR/.spectral.yaml" \
  --fail-severity warn --fail-on-unmatched-globs "$@" 2>&1) || rc=$?
# Spectral prints "No results with a severity of 'warn' or higher found!" when clean.
printf '%s\n' "$out"
if [ "$rc" -ne 0 ]; then
  exit $(( rc == 1 ? 1 : 2 ))
fi
echo "referee/lint: clean: $*"
