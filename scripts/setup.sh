#!/usr/bin/env bash
# Installs what vome and its tests need on a fresh Debian 12 machine, then
# installs the workspace and builds it. Safe to run again: each step is
# skipped when already done. Progress goes to stderr.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: libvirt and QEMU for the VMs, OVMF for UEFI, dnsmasq for
# DHCP reservations (dnsmasq-utils for dhcp_release), sshd for the test host,
# xz for HAOS images, libxml2-utils for virt-xml-validate, the appliance
# build tools, and a host's edge: nginx, iptables, WireGuard (wireguard-go
# where the kernel has no module) and openssl for certificates. The network
# tests send ICMP with ping, and the portal tests drive Debian's Chromium.
PACKAGES=(
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils ovmf
  dnsmasq-base dnsmasq-utils iproute2 openssh-server openssh-client libxml2-utils xz-utils
  mtools dosfstools fdisk cpio ca-certificates curl
  nginx iptables wireguard-tools wireguard-go openssl iputils-ping
  chromium
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}; run this script as root, or install them with apt-get"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

PNPM_VERSION=10.34.9
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  log "installing pnpm $PNPM_VERSION"
  npm install --global --silent "pnpm@$PNPM_VERSION" >&2
fi

log "installing the workspace"
pnpm install --frozen-lockfile --reporter=silent >&2
log "building"
pnpm run --silent build >&2
