#!/usr/bin/env bash
# README command one: sets vome up on its embedded defaults and runs its main
# job. It starts the embedded PostgreSQL, creates a test host (a complete HA
# host in a network namespace, reached over SSH, with a second namespace that
# plays the internet), builds the test appliance image that stands in for
# Home Assistant OS, bootstraps and enrols the host, registers the image and
# an account, and creates a server behind the host's firewall, nginx and
# WireGuard, then prints `vome server show demo --json` and the curl command
# that reaches it over HTTPS from the internet namespace. Run it again and it
# reuses all of that.
set -euo pipefail

cd "$(dirname "$0")/.."
log() { printf 'demo: %s\n' "$*" >&2; }

bash scripts/setup.sh

log "starting the test host"
bash scripts/test-host/up.sh >/dev/null
env_file="/var/lib/vome-testhost/${VOME_TH_NS:-vome-th}/env"
value() { grep "^$1=" "$env_file" | cut -d= -f2-; }

log "building the test appliance image (cached after the first run)"
image=$(bash scripts/appliance/build.sh)

export VOME_SSH_KEY
VOME_SSH_KEY=$(value SSH_KEY)
vome() { node packages/cli/bin/run.js "$@"; }

vome db start
if ! vome host show demo-host >/dev/null 2>&1; then
  # The tests use addresses below .100 on the same test host, so the demo's
  # VM keeps running while they run. Each test run applies the host's network
  # from its own database, though, so afterwards `vome host apply demo-host`
  # puts the demo's rules, map entry and tunnel back.
  vome host bootstrap demo-host --address "$(value SSH_HOST)" --port "$(value SSH_PORT)" \
    --host-key "$(value HOST_KEY)" --data-dir "$(value DATA_DIR)" --bridge "$(value BRIDGE)" \
    --uplink "$(value UPLINK)" --ha-domain "$(value HA_DOMAIN)" \
    --tls-cert "$(value TLS_CERT)" --tls-key "$(value TLS_KEY)" \
    --nginx-site "$(value NGINX_SITE)" --nginx-config "$(value NGINX_MAIN_CONF)" \
    --blocked-networks 172.16.0.0/12,192.168.0.0/16 \
    --range-start 10.232.0.100 --range-end 10.232.0.149
else
  vome host bootstrap demo-host
fi
if ! vome image list --json | grep -q '"name": "appliance"'; then
  vome image add "$image" --name appliance
fi
if ! vome account show demo >/dev/null 2>&1; then
  vome account add demo --name "Demo Household" --email demo@example.org
fi
if ! state=$(vome server show demo --json 2>/dev/null | sed -n 's/^  "state": "\(.*\)",$/\1/p'); then
  vome server create demo --account demo --host demo-host --image appliance --memory 512 --disk 1 --vcpus 1
elif [ "$state" = stopped ]; then
  vome server start demo
elif [ "$state" = suspended ]; then
  vome server resume demo
elif [ "$state" != running ]; then
  log "server demo is $state; destroy it with: node packages/cli/bin/run.js server destroy demo --yes"
  exit 1
fi
vome server show demo --json
uplink_address=$(value UPLINK_ADDR)
log "try: ip netns exec $(value NET_NS) curl --cacert $(value TLS_CA) --resolve demo.$(value HA_DOMAIN):443:${uplink_address%/*} https://demo.$(value HA_DOMAIN)/"
log "(the appliance answers about 10 s after its VM starts; after a test run, \`node packages/cli/bin/run.js host apply demo-host\` restores the demo's routes)"
