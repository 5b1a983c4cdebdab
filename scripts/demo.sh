#!/usr/bin/env bash
# `npm run demo`: installs what is missing, starts the local sandbox (one primary, two secondaries).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
[ -f dist/cli/main.js ] || npm run --silent build

./bin/vecscale sandbox up
