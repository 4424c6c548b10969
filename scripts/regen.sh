#!/usr/bin/env bash
# Regenerates every generated folder into OUT (default gen/). `make regen` writes gen/;
# `make check-gen` writes a scratch folder and compares it with the committed gen/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gen}
GEN="/usr/bin/python3 generator/tablium-gen"
$GEN schemas schemas/common -o "$OUT/common"
$GEN schemas schemas/events -o "$OUT/events"
$GEN schemas schemas/realtime -o "$OUT/realtime"
for spec in openapi/*.yaml; do
  name=$(basename "$spec" .yaml)
  $GEN openapi "$spec" -o "$OUT/$name"
done
