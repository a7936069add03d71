#!/usr/bin/env bash
# `npm run bench -- NAME [options]`: builds, installs wrk if missing (root), runs bench/NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh test
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; else echo "install wrk: sudo apt-get install -y wrk" >&2; exit 1; fi
fi
name="${1:-live-signing}"; shift || true
exec node "dist/bench/${name}.js" "$@"
