#!/usr/bin/env bash
# `npm test`: installs what is missing (setup.sh skips what is present), builds, starts the test sandbox
# (its own folder and ports, fsync off), runs every test file with Node's test runner, and stops the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
npm run --silent build

# The test sandbox has a folder and ports of its own, so it never touches the user's `vecscale sandbox`.
test_sandbox=(env VECSCALE_SANDBOX_DIR="$PWD/.vecscale/test-sandbox" VECSCALE_SANDBOX_PORT=55432 ./bin/vecscale sandbox)
trap '"${test_sandbox[@]}" down >/dev/null 2>&1 || true' EXIT
VECSCALE_TEST_CLUSTERS=$("${test_sandbox[@]}" up --secondaries 3 --fast --json)
export VECSCALE_TEST_CLUSTERS

mapfile -t files < <(find test -name '*.test.ts' | sort)
node --import tsx --test --test-concurrency=2 "$@" "${files[@]}"
