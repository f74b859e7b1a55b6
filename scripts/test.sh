#!/usr/bin/env bash
# README command two: installs what the tests need, starts the test host,
# builds the appliance image, and runs every test (unit, integration against
# a real PostgreSQL, end to end over SSH against real libvirt and QEMU).
# Arguments are passed to vitest, e.g. `--project unit`.
set -euo pipefail

cd "$(dirname "$0")/.."
log() { printf 'test: %s\n' "$*" >&2; }

bash scripts/setup.sh

if [ "$(id -u)" -eq 0 ]; then
  log "starting the test host"
  bash scripts/test-host/up.sh >/dev/null
  log "building the test appliance image"
  VOME_TEST_APPLIANCE=$(bash scripts/appliance/build.sh)
  export VOME_TEST_APPLIANCE
else
  log "not root: the end-to-end tests, which need a network namespace and libvirt, will be skipped"
fi

report=$(mktemp)
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line that any CI reader understands.
if [ -s "$report" ]; then
  node -e 'const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`)' "$report"
fi
rm -f "$report"
exit "$status"
