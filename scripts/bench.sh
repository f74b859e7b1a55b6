#!/usr/bin/env bash
# Runs the benchmarks and prints their figures: the control plane against the
# test host, then a host's edge (firewall, nginx) at scale in throwaway
# network namespaces, then the portal's pages under load on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-host/up.sh >/dev/null
VOME_TEST_APPLIANCE=$(bash scripts/appliance/build.sh)
export VOME_TEST_APPLIANCE
pnpm exec tsx test/bench/control-plane.ts
pnpm exec tsx test/bench/network.ts
pnpm exec tsx test/bench/portal.ts
