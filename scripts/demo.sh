#!/usr/bin/env bash
# The platform demo: regenerates the code from the schemas (showing the generator at work),
# checks it matches the committed gen/, and runs the demo program.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
echo "== tablium-gen schemas schemas/events -o $BUILD/demo-gen/events"
/usr/bin/python3 generator/tablium-gen schemas schemas/events -o "$BUILD/demo-gen/events"
wc -l "$BUILD"/demo-gen/events/events.[ch] | sed 's/^/   /'
grep -c '^typedef struct' "$BUILD/demo-gen/events/events.h" | sed 's/^/   struct types: /'
diff -rq gen/events "$BUILD/demo-gen/events" >/dev/null && echo "   (identical to the committed gen/events)"
"$BUILD/tablium_demo"
