#!/usr/bin/env bash
# `npm start`: install what is missing, build, then run the demo responder on 127.0.0.1:8080.
# Extra arguments go to `ocsp-hsm demo` (e.g. npm start -- --port 9090).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh run
exec node bin/ocsp-hsm demo "$@"
