#!/usr/bin/env bash
# bench validate: documents per second of the generated validators (gen/events, bench_validate)
# against ajv (ajv.js) on the same schemas and the same documents.
#
#   bash bench/validate/run.sh [BUILD_DIR]      (BUILD_DIR: default build; bench_validate is
#                                                built there when missing)
# Protocol: the corpus (gen-corpus.js, fixed seed) is generated into BUILD_DIR/bench/validate;
# then BENCH_RUNS rounds, each running bench_validate and then ajv.js (never concurrently, both
# pinned to the same CPU), each process doing a warm-up and one timed run of >= BENCH_SECONDS per
# mode; the best run of each side counts. Alternating the two sides spreads this VM's slow
# phases over both instead of over one.
# Prints both sides' figures, then one line per comparison:
#   bench validate: OURS docs/s vs ajv THEIRS docs/s = RATIOx (goal 2.0x)
#   bench parse+validate: ...                                (goal 1.0x, informational)
# Fails when the two validators disagree on the validity of any document.
#
# Environment: BENCH_SECONDS (2) length of each timed run, BENCH_RUNS (3) rounds, BENCH_WARMUP
# (0.5) seconds of warm-up per mode and process, BENCH_CPU (the last CPU) the CPU both processes
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
ROUNDS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-0.5}
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
rm -f "$OUT"/*.results "$OUT"/*.verdicts

COMMON=(--seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --runs 1)

echo "== bench validate: generated validators vs ajv; corpus $CORPUS"
echo "   $ROUNDS rounds of (tablium, ajv), each: ${WARMUP}s warm-up + one run of >= ${SECONDS_PER_RUN}s per mode;" \
  "best run counts; ${PIN[*]:-not pinned}; $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"

# round TAG N [flags]: one round of both sides; the verdicts are compared after the first
round() {
  local tag=$1 n=$2 hdr=()
  shift 2
  [ "$n" -gt 1 ] && hdr=(--no-header)
  "${PIN[@]}" "$BIN" --corpus "$CORPUS" "${COMMON[@]}" "${hdr[@]}" "$@" \
    --verdicts "$OUT/tablium$tag.verdicts" --results "$OUT/tablium$tag.$n.results"
  "${PIN[@]}" node "$HERE/ajv.js" --schemas "$ROOT/schemas" --corpus "$CORPUS" "${COMMON[@]}" \
    "${hdr[@]}" "$@" --verdicts "$OUT/ajv$tag.verdicts" --results "$OUT/ajv$tag.$n.results"
  if [ "$n" -eq 1 ]; then
    node "$HERE/compare.js" "$CORPUS" tablium "$OUT/tablium$tag.verdicts" ajv "$OUT/ajv$tag.verdicts"
  fi
}

# best SIDE TAG KEY: the best figure of all rounds
best() {
  cat "$OUT/$1$2".*.results | awk -v k="$3" '$1 == k && $2 > b { b = $2 } END { if (b) print b }'
}

status=0
# compare NAME KEY TAG GOAL: the comparison line
compare() {
  local name=$1 key=$2 tag=$3 goal=$4 ours theirs
  ours=$(best tablium "$tag" "$key")
  theirs=$(best ajv "$tag" "$key")
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

for n in $(seq 1 "$ROUNDS"); do
  round "" "$n"
done
if [ "${BENCH_FORMATS:-0}" = 1 ]; then
  echo "-- formats asserted"
  for n in $(seq 1 "$ROUNDS"); do
    round .formats "$n" --formats
  done
fi
if [ "${BENCH_BY_SCHEMA:-0}" = 1 ]; then
  echo "-- each event schema alone (validate)"
  "${PIN[@]}" "$BIN" --corpus "$CORPUS" "${COMMON[@]}" --no-header --by-schema --only validate |
    grep '^    '
  "${PIN[@]}" node "$HERE/ajv.js" --schemas "$ROOT/schemas" --corpus "$CORPUS" "${COMMON[@]}" \
    --no-header --by-schema --only validate | grep '^    '
fi

compare validate validate "" "$GOAL_VALIDATE"
compare parse+validate parse+validate "" "$GOAL_PARSE"
if [ "${BENCH_FORMATS:-0}" = 1 ]; then
  compare validate+formats validate .formats "$GOAL_PARSE"
fi
exit $status
