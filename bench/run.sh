#!/usr/bin/env bash
# make bench: runs every benchmark (bench/*/run.sh) against the CMake build directory.
#
#   bash bench/run.sh [BUILD_DIR]      (default build)
#
# Installs the benchmarks' npm dependencies first (bench/npm-install.sh). Each benchmark prints
# its figures and ends each comparison with one line
#   bench NAME: OURS UNIT vs PEER THEIRS UNIT = RATIOx (goal GOALx)
# Exit status 1 when any benchmark failed (e.g. the validators disagreed on a document).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-build}

bash "$BENCH/npm-install.sh"

status=0
for run in "$BENCH"/*/run.sh; do
  [ -f "$run" ] || continue
  name=$(basename "$(dirname "$run")")
  if ! bash "$run" "$BUILD"; then
    echo "bench: $name FAILED" >&2
    status=1
  fi
done
exit $status
