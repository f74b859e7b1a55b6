#!/usr/bin/env bash
# Runs the control-plane benchmark against the test host and prints its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-host/up.sh >/dev/null
VOME_TEST_APPLIANCE=$(bash scripts/appliance/build.sh)
export VOME_TEST_APPLIANCE
pnpm exec tsx test/bench/control-plane.ts
