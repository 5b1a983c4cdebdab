#!/usr/bin/env bash
# `npm run demo`: installs what is missing, starts the local sandbox (a primary and two secondaries), applies
# templates/demo.yaml, loads real embeddings into a secondary (`vecscale load`) and answers a similarity query through
# the primary, then shows `vecscale status`.
# Safe to run again: the second apply has nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
[ -f dist/cli/main.js ] || npm run --silent build

mkdir -p .vecscale   # a fresh clone has none yet (the sandbox makes its own folders inside)
./bin/vecscale sandbox up --secondaries 2 --json > .vecscale/demo-sandbox.json
./bin/vecscale sandbox status
port() { node -e 'const u=JSON.parse(require("fs").readFileSync(".vecscale/demo-sandbox.json","utf8")); const p=process.argv[1]; console.log(new URL(p==="primary"?u.primary:u.secondaries[p]).port)' "$1"; }
export SANDBOX_PASSWORD=sandbox-password
PRIMARY_PORT=$(port primary); POD_TEXT_PORT=$(port pod_1); POD_IMG_PORT=$(port pod_2)
export PRIMARY_PORT POD_TEXT_PORT POD_IMG_PORT

echo; echo "== vecscale apply templates/demo.yaml"
./bin/vecscale apply templates/demo.yaml --auto-approve
echo; echo "== vecscale plan templates/demo.yaml (after apply)"
./bin/vecscale plan templates/demo.yaml --detailed-exitcode

echo; echo "== vecscale load docs: 778 real passages, straight to pod_text (--upsert: safe to run again)"
node --import tsx scripts/demo-data.ts rows .vecscale/demo-docs.jsonl
./bin/vecscale load docs .vecscale/demo-docs.jsonl -f templates/demo.yaml --upsert

echo; echo "== a similarity query through the primary"
node --import tsx scripts/demo-data.ts query

echo; echo "== vecscale status templates/demo.yaml (every database, collection and wrapper; exit 2 if anything needs attention)"
./bin/vecscale status templates/demo.yaml
