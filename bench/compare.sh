#!/usr/bin/env bash
# Compares our side of every benchmark between two checkouts of tablium, in one run: the
# measure of a refactor that must not cost speed (issue 15: every figure at least 0.95x).
#
#   bash bench/compare.sh OLD_ROOT OLD_BUILD NEW_ROOT NEW_BUILD [BENCH...]
#
# BENCH: names under bench/ (default: every bench/*/run.sh of NEW_ROOT). Each checkout runs its
# own bench/<name>/run.sh against its own build, alternating old and new for BENCH_ROUNDS
# rounds (default 2) so that slow phases of a shared machine fall on both; the best figure of
# each side counts. The other knobs (BENCH_SECONDS, BENCH_RUNS, ...) pass through.
# For each line "bench NAME: OURS UNIT vs ..." both sides print, one line:
#   bench-vs-old NAME: NEW UNIT vs old OLD UNIT = RATIOx (goal 0.95x)
# RATIO is new/old for rates (UNIT with "/s") and old/new for costs (times, CPU per request),
# so above 1 is better either way.
set -euo pipefail

if [ $# -lt 4 ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
OLD_ROOT=$(cd "$1" && pwd); OLD_BUILD=$(cd "$2" && pwd)
NEW_ROOT=$(cd "$3" && pwd); NEW_BUILD=$(cd "$4" && pwd)
shift 4
ROUNDS=${BENCH_ROUNDS:-2}
NAMES=("$@")
if [ ${#NAMES[@]} -eq 0 ]; then
  for run in "$NEW_ROOT"/bench/*/run.sh; do NAMES+=("$(basename "$(dirname "$run")")"); done
fi
OUT=$(mktemp -d "${TMPDIR:-/tmp}/tb-bench-compare.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

for name in "${NAMES[@]}"; do
  for round in $(seq 1 "$ROUNDS"); do
    for side in old new; do
      if [ $side = old ]; then root=$OLD_ROOT build=$OLD_BUILD; else root=$NEW_ROOT build=$NEW_BUILD; fi
      echo "bench-compare: $name round $round: $side ($root)" >&2
      if ! bash "$root/bench/$name/run.sh" "$build" >"$OUT/$name.$side.$round.log" 2>&1; then
        echo "bench-compare: $name ($side) failed; the end of its log:" >&2
        tail -20 "$OUT/$name.$side.$round.log" >&2
        exit 1
      fi
      grep -h '^bench ' "$OUT/$name.$side.$round.log" >>"$OUT/$name.$side" || true
    done
  done
  # best of each side per figure, then the ratio
  /usr/bin/python3 - "$OUT/$name.old" "$OUT/$name.new" <<'EOF'
import re, sys
LINE = re.compile(r"^bench ([^:]+): ([0-9.]+) (\S+) vs ")
def best(path):
    out = {}
    for ln in open(path, encoding="utf-8"):
        m = LINE.match(ln)
        if not m:
            continue
        name, v, unit = m.group(1), float(m.group(2)), m.group(3)
        rate = "/s" in unit
        if name not in out or (v > out[name][0] if rate else v < out[name][0]):
            out[name] = (v, unit, rate)
    return out
old, new = best(sys.argv[1]), best(sys.argv[2])
for name, (nv, unit, rate) in new.items():
    if name not in old:
        print("bench-vs-old %s: %g %s (no old figure)" % (name, nv, unit))
        continue
    ov = old[name][0]
    r = (nv / ov if ov else 0.0) if rate else (ov / nv if nv else 0.0)
    print("bench-vs-old %s: %g %s vs old %g %s = %.2fx (goal 0.95x)" % (name, nv, unit, ov, unit, r))
EOF
done
