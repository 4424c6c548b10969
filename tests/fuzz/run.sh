#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, into build-fuzz/) and runs fuzz_http, then
# fuzz_sio (the Socket.IO packet parsers, TB_FUZZ_SIO_SECONDS, default 20) and fuzz_brackets
# (the bracket form of deepObject values, TB_FUZZ_BRACKETS_SECONDS, default 15), each for a
# fixed budget: TB_FUZZ_SECONDS (default 60) of fuzzing, TB_FUZZ_TIMEOUT (default 10) seconds at
# most per input. The working corpus is a temporary copy of tests/fuzz/corpus, so the committed
# seeds are never rewritten. Each target ends with one line:
#   fuzz-http: N execs, N corpus units, 0 crashes   (fuzz-sio, fuzz-brackets: the same)
# and exits non-zero on any crash, sanitizer report, leak, timeout or broken invariant, with
# the input saved under tests/fuzz/findings/ (its path printed). Codes listed in
# tests/fuzz/known-findings are counted instead of failing (see that file).
#
# usage: tests/fuzz/run.sh [extra libFuzzer flags...]
#   TB_FUZZ_BUILD=DIR (default build-fuzz), TB_FUZZ_KEEP_CORPUS=DIR (copy the grown corpus there)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/fuzz
BUILD=${TB_FUZZ_BUILD:-$ROOT/build-fuzz}
SECS=${TB_FUZZ_SECONDS:-60}
TIMEOUT=${TB_FUZZ_TIMEOUT:-10}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

CC=${TB_FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null; then
  echo "fuzz-http: $CC not found (scripts/deps.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tb-fuzz.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=$CC cmake -S "$HERE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug >"$TMP/configure.log" 2>&1 || {
    cat "$TMP/configure.log" >&2; exit 1; }
fi
for t in fuzz_http fuzz_sio fuzz_brackets; do
  cmake --build "$BUILD" -j "$JOBS" --target $t >>"$TMP/build.log" 2>&1 || {
    cat "$TMP/build.log" >&2; exit 1; }
done
mkdir -p "$HERE/findings"
known=$(sed -e 's/#.*//' "$HERE/known-findings" 2>/dev/null | tr -s ' \t\n' ',' |
  sed 's/^,//;s/,$//')

# run_target NAME LABEL SECONDS CORPUS MAX_LEN [libFuzzer flags...]
run_target() {
  local name=$1 label=$2 secs=$3 corpus=$4 maxlen=$5
  shift 5
  local work=$TMP/$name log=$TMP/$name.log rc=0
  mkdir -p "$work"
  cp "$corpus"/* "$work/"
  TMPDIR=$TMP TB_FUZZ_KNOWN=$known \
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$BUILD/$name" -max_total_time="$secs" -timeout="$TIMEOUT" -max_len="$maxlen" \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$HERE/findings/" "$@" "$work" >"$log" 2>&1 || rc=$?

  local execs rate last units cov ft crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -a -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
  units=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p')
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\) .*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\) .*/\1/p')
  mapfile -t units_written < <(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
  crashes=${#units_written[@]}
  [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1

  if [ -n "${TB_FUZZ_KEEP_CORPUS:-}" ]; then
    mkdir -p "$TB_FUZZ_KEEP_CORPUS/$name" && cp "$work"/* "$TB_FUZZ_KEEP_CORPUS/$name/"
  fi
  grep -a -E "^$name: (known finding .*: [0-9]* inputs|[0-9]+ exchanges took)" "$log" |
    sed "s/^$name:/$label:/" || true
  echo "$label: ${execs:-0} execs (${rate:-0}/s), coverage ${cov:-?} edges ${ft:-?} features"
  echo "$label: ${execs:-0} execs, ${units:-0} corpus units, $crashes crashes"
  if [ "$rc" -ne 0 ]; then
    echo "$label: FAILED (libFuzzer exit $rc); the end of its log:" >&2
    grep -a -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -60 >&2
    for u in "${units_written[@]}"; do
      echo "$label: reproducer: $u  (replay: $BUILD/$name $u)" >&2
    done
    return 1
  fi
}

status=0
run_target fuzz_http fuzz-http "$SECS" "$HERE/corpus" 8192 -dict="$HERE/http.dict" "$@" || status=1
run_target fuzz_sio fuzz-sio "${TB_FUZZ_SIO_SECONDS:-20}" "$HERE/corpus-sio" 4096 "$@" || status=1
run_target fuzz_brackets fuzz-brackets "${TB_FUZZ_BRACKETS_SECONDS:-15}" "$HERE/corpus-brackets" 2048 \
  "$@" || status=1
exit $status
