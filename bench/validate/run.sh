#!/usr/bin/env bash
# bench validate: documents per second of the generated validators (gen/events, bench_validate)
# against ajv (ajv.js) on the same schemas and the same documents, one process after the other.
#
#   bash bench/validate/run.sh [BUILD_DIR]      (BUILD_DIR: default build; bench_validate is
#                                                built there when missing)
# Prints both sides' figures, then one line per comparison:
#   bench validate: OURS docs/s vs ajv THEIRS docs/s = RATIOx (goal 2.0x)
#   bench parse+validate: ...                                (goal 1.0x, informational)
# Fails when the two validators disagree on any document's validity.
#
# Environment: BENCH_SECONDS (2) length of each timed run, BENCH_RUNS (3) timed runs (best one
# counts), BENCH_WARMUP (1) seconds of warm-up, BENCH_CPU (the last CPU) the CPU both processes
# are pinned to with taskset ("none": not pinned), BENCH_FORMATS=1 adds a comparison with formats
# asserted (TB_VALIDATE_FORMATS vs ajv-formats), BENCH_BY_SCHEMA=1 adds per-schema figures,
# BENCH_ENFORCE=1 fails when the validate ratio is below its goal.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-build}
if [ ! -d "$BUILD" ]; then
  echo "bench validate: build directory $BUILD not found (configure and build with CMake first)" >&2
  exit 1
fi
BUILD=$(cd "$BUILD" && pwd)
OUT=$BUILD/bench/validate
BIN=$OUT/bench_validate

SECONDS_PER_RUN=${BENCH_SECONDS:-2}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-1}
GOAL_VALIDATE=2.0
GOAL_PARSE=1.0

if ! command -v node >/dev/null 2>&1; then
  echo "bench validate: node not found (scripts/deps.sh installs nodejs)" >&2
  exit 1
fi
if [ ! -x "$BIN" ]; then
  if [ -f "$BUILD/CMakeCache.txt" ]; then
    cmake --build "$BUILD" --target bench_validate >/dev/null
  fi
  if [ ! -x "$BIN" ]; then
    echo "bench validate: $BIN missing (configure with -DTB_WITH_BENCH=ON and build bench_validate)" >&2
    exit 1
  fi
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) echo "bench validate: warning: $BUILD is a '${build_type:-no build type}' build; the libraries are" \
    "not optimised (use -DCMAKE_BUILD_TYPE=RelWithDebInfo)" >&2 ;;
esac
[ -d "$HERE/node_modules/ajv" ] || bash "$ROOT/bench/npm-install.sh"

# Both processes single-threaded on the same CPU (V8's helper threads included), one after the other.
PIN=()
cpu=${BENCH_CPU:-$(($(nproc) - 1))}
if [ "$cpu" != none ] && command -v taskset >/dev/null 2>&1; then
  PIN=(taskset -c "$cpu")
fi

mkdir -p "$OUT"
CORPUS=$OUT/corpus.json
node "$HERE/gen-corpus.js" --schemas "$ROOT/schemas" --out "$CORPUS"

COMMON=(--seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --runs "$RUNS")
[ "${BENCH_BY_SCHEMA:-0}" = 1 ] && COMMON+=(--by-schema)

echo "== bench validate: generated validators vs ajv; corpus $CORPUS"
echo "   protocol: ${WARMUP}s warm-up, best of $RUNS runs of >= ${SECONDS_PER_RUN}s;" \
  "${PIN[*]:-not pinned}; $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"

# run_pair LABEL [extra flags]: both benchmarks, verdicts compared; sets OURS_* and AJV_* results files
run_pair() {
  local tag=$1
  shift
  "${PIN[@]}" "$BIN" --corpus "$CORPUS" "${COMMON[@]}" "$@" \
    --verdicts "$OUT/tablium$tag.verdicts" --results "$OUT/tablium$tag.results"
  "${PIN[@]}" node "$HERE/ajv.js" --schemas "$ROOT/schemas" --corpus "$CORPUS" "${COMMON[@]}" "$@" \
    --verdicts "$OUT/ajv$tag.verdicts" --results "$OUT/ajv$tag.results"
  node "$HERE/compare.js" "$CORPUS" tablium "$OUT/tablium$tag.verdicts" ajv "$OUT/ajv$tag.verdicts"
}

# compare NAME KEY TAG GOAL: the comparison line
status=0
compare() {
  local name=$1 key=$2 tag=$3 goal=$4 ours theirs
  ours=$(awk -v k="$key" '$1 == k { print $2 }' "$OUT/tablium$tag.results")
  theirs=$(awk -v k="$key" '$1 == k { print $2 }' "$OUT/ajv$tag.results")
  if [ -z "$ours" ] || [ -z "$theirs" ]; then
    echo "bench validate: no $key figure" >&2
    exit 1
  fi
  awk -v n="$name" -v o="$ours" -v t="$theirs" -v g="$goal" \
    'BEGIN { printf "bench %s: %.0f docs/s vs ajv %.0f docs/s = %.2fx (goal %.1fx)\n", n, o, t, o / t, g }'
  if [ "$name" = validate ] && [ "${BENCH_ENFORCE:-0}" = 1 ] &&
    awk -v o="$ours" -v t="$theirs" -v g="$goal" 'BEGIN { exit !(o / t < g) }'; then
    status=1
  fi
}

run_pair ""
if [ "${BENCH_FORMATS:-0}" = 1 ]; then
  echo "-- formats asserted"
  run_pair .formats --formats
fi

compare validate validate "" "$GOAL_VALIDATE"
compare parse+validate parse+validate "" "$GOAL_PARSE"
if [ "${BENCH_FORMATS:-0}" = 1 ]; then
  compare validate+formats validate .formats "$GOAL_PARSE"
fi
exit $status
