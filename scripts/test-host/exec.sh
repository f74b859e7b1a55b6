#!/usr/bin/env bash
# Runs a command inside the test host's network namespace, for example
#   scripts/test-host/exec.sh curl -s http://10.232.0.10:8123/
# to reach a VM on br-haos. Run as root, after up.sh.
set -euo pipefail

PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
NS=${VOME_TH_NS:-vome-th}

if (($# == 0)); then
    printf 'usage: %s COMMAND [ARGUMENT...]\n' "$0" >&2
    exit 2
fi
if [[ ! -e /run/netns/$NS ]]; then
    printf "test-host exec: error: namespace '%s' not found; run scripts/test-host/up.sh first\n" "$NS" >&2
    exit 1
fi
exec ip netns exec "$NS" "$@"
