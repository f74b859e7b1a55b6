import { shellQuote as q } from '../runner/command-runner.js';

/** Host facts that the bootstrap script uses. */
export interface BootstrapScriptInput {
  bridge: string;
  /** The bridge's own address with its prefix, e.g. 10.232.0.1/24. */
  bridgeCidr: string;
  /** The bridge network with its mask, for dnsmasq, e.g. 10.232.0.0 and 255.255.255.0. */
  bridgeNetwork: string;
  bridgeNetmask: string;
  dataDir: string;
  networkDir: string;
  nginxMainConfigPath: string;
  nginxSitePath: string;
}

// Debian packages of an HA host. wireguard-go is added where the kernel has
// no WireGuard module.
const PACKAGES = [
  'libvirt-daemon-system',
  'libvirt-daemon-driver-qemu',
  'libvirt-clients',
  'qemu-system-x86',
  'qemu-utils',
  'ovmf',
  'dnsmasq-base',
  'dnsmasq-utils',
  'nginx',
  'iptables',
  'wireguard-tools',
  'openssl',
  'iproute2',
];

/**
 * Renders the boot script that bootstrap installs at <networkDir>/boot.sh: it
 * turns on forwarding and bridge filtering, creates the bridge with its
 * address, starts dnsmasq for the DHCP reservations, and restores the saved
 * firewall and WireGuard state. Every part is idempotent and prints one
 * `item=<name>|<ok|changed|failed>|<detail>` line.
 */
export function renderBootScript(input: BootstrapScriptInput): string {
  return `#!/bin/bash
# Written by vome host bootstrap; runs at boot and on every bootstrap.
# The firewall is restored first and forwarding turned on last, so VMs are
# never forwarded unfiltered; a part that fails is reported and the rest
# still runs, but forwarding stays off when the firewall did not load.
set -uo pipefail
export LC_ALL=C
umask 077
report() { printf 'item=%s|%s|%s\\n' "$1" "$2" "$3"; }
failed=0

bridge=${q(input.bridge)}
bridge_cidr=${q(input.bridgeCidr)}
data_dir=${q(input.dataDir)}
network_dir=${q(input.networkDir)}

# Bridged VM-to-VM traffic reaches iptables only through br_netfilter.
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter
if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ]; then
  report bridge-filtering ok 'net.bridge.bridge-nf-call-iptables=1'
elif echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables; then
  report bridge-filtering changed 'set net.bridge.bridge-nf-call-iptables=1'
else
  report bridge-filtering failed 'cannot set net.bridge.bridge-nf-call-iptables=1'
  failed=1
fi

firewall_loaded=1
if [ -x "$network_dir/restore-firewall.sh" ]; then
  if out=$("$network_dir/restore-firewall.sh" 2>&1); then
    report restore-firewall ok "loaded $network_dir/restore-firewall.sh"
  else
    report restore-firewall failed "$(printf '%s' "$out" | tr '\\n' ' ' | cut -c1-300)"
    firewall_loaded=0
    failed=1
  fi
fi

status=ok
if ! ip link show dev "$bridge" >/dev/null 2>&1; then
  ip link add "$bridge" type bridge && status=changed
fi
if ! ip -4 -o addr show dev "$bridge" | awk '{print $4}' | grep -qxF "$bridge_cidr"; then
  ip addr add "$bridge_cidr" dev "$bridge" && status=changed
fi
if ip link set "$bridge" up; then
  report bridge "$status" "$bridge $bridge_cidr"
else
  report bridge failed "cannot bring up $bridge $bridge_cidr"
  failed=1
fi

if [ -x "$network_dir/restore-wireguard.sh" ]; then
  if out=$("$network_dir/restore-wireguard.sh" 2>&1); then
    report restore-wireguard ok "loaded $network_dir/restore-wireguard.sh"
  else
    report restore-wireguard failed "$(printf '%s' "$out" | tr '\\n' ' ' | cut -c1-300)"
    failed=1
  fi
fi

mkdir -p "$data_dir/dhcp-hosts"
pid_file="$data_dir/dnsmasq.pid"
if [ -r "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  report dhcp ok "dnsmasq pid $(cat "$pid_file")"
# Only reserved addresses are handed out (one file per VM in dhcp-hosts);
# --port=0 turns DNS off.
# NOTE: dnsmasq keeps root because the reservations sit in the 0700 data
# folder; a group-readable folder for them would let it drop to nobody.
elif out=$(dnsmasq --conf-file=/dev/null --user=root --group=root --port=0 --bind-interfaces --interface="$bridge" --except-interface=lo \\
    --dhcp-range=${q(`${input.bridgeNetwork},static,${input.bridgeNetmask}`)} --dhcp-hostsdir="$data_dir/dhcp-hosts" \\
    --dhcp-leasefile="$data_dir/dnsmasq.leases" --pid-file="$pid_file" --dhcp-authoritative 2>&1); then
  report dhcp changed 'started dnsmasq'
else
  report dhcp failed "dnsmasq did not start: $(printf '%s' "$out" | tr '\\n' ' ' | cut -c1-300)"
  failed=1
fi

if [ "$firewall_loaded" = 0 ]; then
  echo 0 > /proc/sys/net/ipv4/ip_forward
  report forwarding failed 'left off because the firewall did not load'
elif [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ]; then
  report forwarding ok 'net.ipv4.ip_forward=1'
else
  echo 1 > /proc/sys/net/ipv4/ip_forward
  report forwarding changed 'set net.ipv4.ip_forward=1'
fi
exit "$failed"
`;
}

/**
 * Renders the bootstrap script: installs missing packages, writes and runs
 * the boot script, makes sure libvirtd and nginx run, and on systemd hosts
 * installs a unit that runs the boot script at every boot. Prints one
 * `item=…` line per part; exits 3 with a message on stderr when the host
 * cannot be bootstrapped.
 */
export function renderBootstrapScript(input: BootstrapScriptInput): string {
  const boot = renderBootScript(input);
  return `report() { printf 'item=%s|%s|%s\\n' "$1" "$2" "$3"; }
boot_failed=0
network_dir=${q(input.networkDir)}
nginx_main=${q(input.nginxMainConfigPath)}
nginx_site=${q(input.nginxSitePath)}
systemd=0
[ -d /run/systemd/system ] && systemd=1

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "vome host bootstrap supports Debian and Ubuntu hosts: dpkg-query and apt-get were not found" >&2
  exit 3
fi
packages=${q(PACKAGES.join(' '))}
if ip link add vome-wgprobe type wireguard 2>/dev/null; then
  ip link delete vome-wgprobe
else
  packages="$packages wireguard-go"
fi
missing=""
for package in $packages; do
  dpkg-query -W -f='\${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $package"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >&2
  report packages changed "installed$missing"
else
  report packages ok 'all installed'
fi

mkdir -p "$network_dir"
chmod 0700 "$network_dir"
cat > "$network_dir/boot.sh.tmp" <<'VOME_BOOT_SCRIPT'
${boot}VOME_BOOT_SCRIPT
chmod 0700 "$network_dir/boot.sh.tmp"
mv -f "$network_dir/boot.sh.tmp" "$network_dir/boot.sh"
"$network_dir/boot.sh" || boot_failed=1

if virsh -q -c qemu:///system version >/dev/null 2>&1; then
  report libvirt ok 'libvirtd answers'
elif [ "$systemd" = 1 ]; then
  systemctl enable --now virtlogd libvirtd >&2
  report libvirt changed 'enabled and started libvirtd'
else
  echo "libvirtd is not running and this host has no systemd to start it: start virtlogd -d and libvirtd -d" >&2
  exit 3
fi

# Debian's default site also claims the default server on port 80.
status=ok
if [ "$nginx_main" = /etc/nginx/nginx.conf ] && [ -L /etc/nginx/sites-enabled/default ]; then
  rm -f /etc/nginx/sites-enabled/default
  status=changed
fi
mkdir -p "$(dirname "$nginx_site")"
if [ ! -f "$nginx_site" ]; then
  printf '# Written by vome host apply.\\n' > "$nginx_site"
  chmod 0644 "$nginx_site"
  status=changed
fi
if ! out=$(nginx -t -c "$nginx_main" 2>&1); then
  printf 'nginx rejected its configuration %s: %s\\n' "$nginx_main" "$out" >&2
  exit 3
fi
pid_path=$(nginx -T -c "$nginx_main" 2>/dev/null | awk '$1 == "pid" { sub(/;$/, "", $2); print $2; exit }')
pid_path=\${pid_path:-/run/nginx.pid}
if [ -r "$pid_path" ] && kill -0 "$(cat "$pid_path")" 2>/dev/null; then
  report nginx "$status" "running with $nginx_main"
elif [ "$systemd" = 1 ] && [ "$nginx_main" = /etc/nginx/nginx.conf ]; then
  systemctl enable --now nginx >&2
  report nginx changed 'enabled and started nginx'
else
  nginx -c "$nginx_main"
  report nginx changed "started nginx with $nginx_main"
fi

if [ "$systemd" = 1 ]; then
  unit=/etc/systemd/system/vome-network.service
  cat > "$unit.tmp" <<VOME_UNIT
[Unit]
Description=vome: bridge, DHCP, firewall and WireGuard for Home Assistant servers
After=network-online.target
Wants=network-online.target
Before=libvirtd.service nginx.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$network_dir/boot.sh

[Install]
WantedBy=multi-user.target
VOME_UNIT
  chmod 0644 "$unit.tmp"
  if cmp -s "$unit.tmp" "$unit"; then
    rm -f "$unit.tmp"
    report boot-unit ok "$unit"
  else
    mv -f "$unit.tmp" "$unit"
    systemctl daemon-reload
    systemctl enable vome-network.service >&2
    report boot-unit changed "installed and enabled $unit"
  fi
else
  report boot-unit skipped "no systemd: run $network_dir/boot.sh at boot"
fi
if [ "$boot_failed" = 1 ]; then
  echo "$network_dir/boot.sh failed: see the parts reported as failed" >&2
  exit 3
fi
`;
}
