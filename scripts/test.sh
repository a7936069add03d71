#!/usr/bin/env bash
# `npm test`: install what is missing, build, then run unit tests (test/) and native tests (native-test/).
# Node 20 applies --test-timeout to a whole test file: the revocation race takes about 6 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh test
# Only compiled files whose TypeScript source still exists (dist/ may hold leftovers of deleted tests).
mapfile -t files < <(find test native-test -name '*.test.ts' | sort | sed -e 's/\.ts$/.js/' -e 's/^/dist\//')
exec node --test --test-timeout=600000 "$@" "${files[@]}"
