#!/usr/bin/env bash
# Builds vome-appliance.qcow2, a small UEFI-bootable VM image that tests boot in
# place of Home Assistant OS. The guest takes its IPv4 address and host name by
# DHCP on eth0 and serves HTTP on port 8123.
#
# Usage: scripts/appliance/build.sh [OUTPUT]
#   OUTPUT defaults to ${VOME_CACHE:-$HOME/.cache/vome}/appliance/vome-appliance.qcow2.
#
# Everything comes from Debian packages fetched with `apt-get download` and
# unpacked into a temporary build folder, so nothing is installed into /, no
# loop device is mounted, and root is not required. The host needs apt-get,
# dpkg, tar, gzip, flock and qemu-img (package qemu-utils).
#
# The .deb files are cached in ${VOME_CACHE:-$HOME/.cache/vome}/appliance/debs.
# When OUTPUT exists and OUTPUT.stamp contains the SHA-256 of this script, the
# script exits at once. Progress goes to stderr, and the only line on stdout is
# the absolute path of the image.
set -euo pipefail

readonly KERNEL_METAPACKAGE=linux-image-cloud-amd64
readonly TOOL_PACKAGES=(busybox-static grub-efi-amd64-bin grub-common mtools dosfstools fdisk cpio)
# Shared libraries that sfdisk and grub-mkimage link against and that a minimal
# Debian may lack. They run with LD_LIBRARY_PATH pointing at the unpacked copies.
readonly LIBRARY_PACKAGES=(libfdisk1 libreadline8 libdevmapper1.02.1)

# Kernel modules loaded by the guest, in dependency order, because the kernel
# package has no modules.dep and busybox insmod does not resolve dependencies.
# virtio_blk is loaded so that the disk shows up as /dev/vda, and button + evdev
# give busybox acpid the ACPI power button that `virsh shutdown` presses.
readonly GUEST_MODULES=(
  virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
  failover net_failover virtio_net virtio_blk button evdev
)

readonly ESP_SIZE_MIB=32
readonly KERNEL_COMMAND_LINE='console=tty0 console=ttyS0,115200n8'

log() {
  printf 'appliance: %s\n' "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# Prints the wall-clock time in milliseconds, for the timing messages.
now_ms() {
  date +%s%3N
}

# Runs an unpacked program with the unpacked libraries (LIBRARY_PACKAGES) first
# on its library path. Usage: run_unpacked PACKAGE_ROOT PROGRAM [ARGUMENT...]
run_unpacked() {
  local package_root=$1
  shift
  LD_LIBRARY_PATH="$package_root/lib/x86_64-linux-gnu:$package_root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"
}

check_host() {
  local tool
  for tool in apt-get apt-cache dpkg dpkg-deb tar gzip flock qemu-img sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found; install it (qemu-img is in qemu-utils)"
  done

  local arch
  arch=$(dpkg --print-architecture)
  [[ $arch == amd64 ]] || die "host architecture is $arch; the build runs amd64 tools and needs an amd64 host"
}

# Prints the versioned kernel package that the cloud metapackage depends on,
# for example linux-image-6.1.0-57-cloud-amd64.
resolve_kernel_package() {
  local package
  package=$(apt-cache depends "$KERNEL_METAPACKAGE" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
  [[ -n $package ]] || die "no linux-image dependency found for $KERNEL_METAPACKAGE; run apt-get update"
  printf '%s\n' "$package"
}

# Returns 0 when FILE has the size and checksum that `apt-get download --print-uris` lists.
deb_is_complete() {
  local file=$1 size=$2 checksum=$3
  [[ -f $file ]] || return 1
  [[ $(stat -c %s "$file") == "$size" ]] || return 1

  local algorithm=${checksum%%:*} digest=${checksum#*:}
  case $algorithm in
    SHA256) [[ $(sha256sum "$file" | cut -d' ' -f1) == "$digest" ]] ;;
    SHA512) [[ $(sha512sum "$file" | cut -d' ' -f1) == "$digest" ]] ;;
    # An old repository may list only MD5Sum or SHA1, which are not checked here.
    # The size check above still applies.
    *) return 0 ;;
  esac
}

# Downloads the candidate version of each package into DEB_DIR unless a complete
# copy is cached there, removes cached .deb files of other versions, and prints
# the paths of the .deb files. Usage: fetch_packages DEB_DIR EMPTY_DIR PACKAGE...
fetch_packages() {
  local deb_dir=$1 empty_dir=$2
  shift 2
  mkdir -p "$deb_dir" "$empty_dir"

  # apt-get download --print-uris leaves out packages whose .deb is already
  # complete in the current folder, so it runs in an empty one.
  local uris
  uris=$(cd "$empty_dir" && apt-get download --print-uris "$@") \
    || die "apt-get could not resolve the packages $*; run apt-get update"

  local -a wanted_files=() missing_packages=()
  local uri file size checksum
  while read -r uri file size checksum; do
    [[ -n $uri ]] || continue
    wanted_files+=("$file")
    if ! deb_is_complete "$deb_dir/$file" "$size" "$checksum"; then
      rm -f "$deb_dir/$file"
      # The file name is PACKAGE_VERSION_ARCH.deb, and package names contain no underscore.
      missing_packages+=("${file%%_*}")
    fi
  done <<<"$uris"

  if ((${#missing_packages[@]} > 0)); then
    log "downloading ${missing_packages[*]}"
    # Running as root, apt would try to drop to the _apt user, which cannot write
    # into a private cache folder such as /root/.cache, and would print a warning.
    (cd "$deb_dir" && apt-get download -q=2 -o APT::Sandbox::User="$(id -un)" "${missing_packages[@]}") >&2 \
      || die "apt-get download failed for ${missing_packages[*]}"
  else
    log "all packages cached in $deb_dir"
  fi

  local cached
  for cached in "$deb_dir"/*.deb; do
    [[ -e $cached ]] || continue
    if [[ " ${wanted_files[*]} " != *" ${cached##*/} "* ]]; then
      log "removing outdated ${cached##*/}"
      rm -f "$cached"
    fi
  done

  for file in "${wanted_files[@]}"; do
    printf '%s\n' "$deb_dir/$file"
  done
}

# Unpacks only the kernel image, modules.builtin and the modules named in
# GUEST_MODULES, because the whole package contains over 300 MB of modules.
unpack_kernel_package() {
  local deb=$1 package_root=$2
  local -a members=('./boot/vmlinuz-*' './lib/modules/*/modules.builtin')
  local module
  for module in "${GUEST_MODULES[@]}"; do
    members+=("./lib/modules/*/$module.ko")
  done
  # A module pattern that matches nothing is a module built into the kernel,
  # which install_guest_modules checks, so tar's "Not found in archive" is no error here.
  local errors
  if ! errors=$({ dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$package_root" --wildcards "${members[@]}"; } 2>&1); then
    errors=$(grep -v -e 'Not found in archive' -e 'Exiting with failure status' <<<"$errors" || true)
    [[ -z $errors ]] || die "unpacking $deb failed: $errors"
  fi
}

# Copies each module in GUEST_MODULES into the initramfs and writes the load
# order to etc/modules. A module missing from the package is skipped only when
# modules.builtin lists it, so a renamed or dropped module fails the build.
install_guest_modules() {
  local module_root=$1 rootfs=$2
  local -a loaded=()
  local module path dependency

  mkdir -p "$rootfs/lib/modules"
  : >"$rootfs/etc/modules"

  for module in "${GUEST_MODULES[@]}"; do
    path=$(find "$module_root/kernel" -name "$module.ko" -print -quit)
    if [[ -z $path ]]; then
      if grep -q "/$module\.ko\$" "$module_root/modules.builtin"; then
        log "module $module is built into the kernel"
        continue
      fi
      die "kernel module $module.ko not found in $module_root and not built in"
    fi

    # The .modinfo section contains NUL-separated key=value strings such as depends=virtio,virtio_ring.
    for dependency in $(tr '\0' '\n' <"$path" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '); do
      if [[ " ${loaded[*]} " != *" $dependency "* ]] \
        && ! grep -q "/$dependency\.ko\$" "$module_root/modules.builtin"; then
        die "kernel module $module depends on $dependency, which GUEST_MODULES does not load before it"
      fi
    done

    cp "$path" "$rootfs/lib/modules/$module.ko"
    printf '%s\n' "$module" >>"$rootfs/etc/modules"
    loaded+=("$module")
  done
}

# Writes the guest's init configuration, boot script, DHCP handler and web root.
write_guest_files() {
  local rootfs=$1

  mkdir -p "$rootfs"/{etc/init.d,etc/acpi/PWRF,etc/vome,dev,proc,sys,run,tmp,var/log,root,www/api}

  cat >"$rootfs/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
ttyS0::askfirst:-/bin/sh
::ctrlaltdel:/bin/reboot
::shutdown:/etc/init.d/rcK
EOF

  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$rootfs/etc/group"

  cat >"$rootfs/etc/vome/write-page" <<'EOF'
#!/bin/sh
# Writes /www/index.html. Usage: write-page [HOST_NAME [IPV4_ADDRESS]]
# Tests look for "vome-appliance HOST_NAME" in the body, where HOST_NAME comes
# from DHCP option 12.
name=$1
address=$2
if [ -n "$name" ]; then
  heading="vome-appliance $name"
  detail="IPv4 address $address, host name from DHCP."
else
  heading="vome-appliance"
  detail="No host name from DHCP yet."
fi
cat >/www/index.html.new <<PAGE
<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>$heading</title></head>
<body>
<h1>$heading</h1>
<p>$detail</p>
</body>
</html>
PAGE
mv /www/index.html.new /www/index.html
EOF

  cat >"$rootfs/etc/vome/udhcpc-event" <<'EOF'
#!/bin/sh
# Event handler for busybox udhcpc. udhcpc passes the event in $1 and the lease
# in environment variables: interface, ip, mask (prefix length), broadcast,
# router, dns and hostname (DHCP option 12).
# shellcheck disable=SC2154 # udhcpc sets the lease variables.
exec >/dev/console 2>&1

say() {
  echo "vome-appliance: $*"
}

case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    if ! ip -4 addr show dev "$interface" | grep -qF "inet $ip/$mask "; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/$mask" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    fi

    for gateway in $router; do
      ip route replace default via "$gateway" dev "$interface"
      break
    done

    : >/etc/resolv.conf
    for server in $dns; do
      echo "nameserver $server" >>/etc/resolv.conf
    done

    # A DHCP host name is a DNS label, so other characters are dropped. This
    # also keeps the name safe to put into the HTML page.
    name=$(printf '%s' "$hostname" | tr -cd 'A-Za-z0-9.-')
    if [ -n "$name" ]; then
      hostname "$name"
    fi
    /etc/vome/write-page "$name" "$ip"
    say "DHCP $1: $ip/$mask on $interface, router ${router:-none}, host name ${name:-none}"
    ;;
  leasefail|nak)
    say "DHCP $1 on $interface, still trying"
    ;;
esac
EOF

  cat >"$rootfs/etc/init.d/rcS" <<'EOF'
#!/bin/sh
# Boot script, run once by busybox init. Every step prints a line on the
# console (ttyS0), which `virsh console` shows.

say() {
  echo "vome-appliance: [$(cut -d' ' -f1 /proc/uptime)s] $*"
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp

say "kernel $(uname -r) started, running /etc/init.d/rcS"
hostname vome-appliance

while read -r module; do
  if ! insmod "/lib/modules/$module.ko"; then
    say "loading kernel module $module failed"
  fi
done </etc/modules
say "kernel modules loaded: $(tr '\n' ' ' </etc/modules)"

ip link set lo up
tries=0
while [ ! -e /sys/class/net/eth0 ] && [ "$tries" -lt 50 ]; do
  usleep 100000
  tries=$((tries + 1))
done
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  say "eth0 is up, MAC $(cat /sys/class/net/eth0/address)"
else
  say "eth0 not found after 5 s; network interfaces: $(cd /sys/class/net && echo *)"
fi

if [ -e /dev/input/event0 ]; then
  acpid -l /dev/console
  say "acpid started: the ACPI power button powers off"
else
  say "no /dev/input/event0, so acpid is not started and ACPI shutdown will not work"
fi

/etc/vome/write-page
httpd -p 8123 -h /www
say "httpd listening on port 8123"

say "requesting a DHCP lease on eth0"
# Without a lease after 20 requests (1 s apart), udhcpc goes to the background and keeps trying.
udhcpc -i eth0 -s /etc/vome/udhcpc-event -O hostname -p /run/udhcpc.eth0.pid -b -t 20 -T 1 -A 3
say "boot finished, host name $(hostname)"
EOF

  cat >"$rootfs/etc/init.d/rcK" <<'EOF'
#!/bin/sh
# Run by busybox init before it ends all processes and powers off or reboots.
echo "vome-appliance: [$(cut -d' ' -f1 /proc/uptime)s] shutting down"
EOF

  cat >"$rootfs/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# Run by busybox acpid when the ACPI power button is pressed (virsh shutdown).
echo "vome-appliance: ACPI power button pressed, powering off" >/dev/console
exec poweroff
EOF

  # Home Assistant returns this body for GET /api/ with a valid token. The
  # appliance checks no token.
  printf '{"message":"API running."}\n' >"$rootfs/www/api/index.html"

  chmod 0755 "$rootfs/etc/vome/write-page" "$rootfs/etc/vome/udhcpc-event" \
    "$rootfs/etc/init.d/rcS" "$rootfs/etc/init.d/rcK" "$rootfs/etc/acpi/PWRF/00000080"
}

# Builds the gzip-compressed initramfs that contains the whole guest system.
build_initramfs() {
  local package_root=$1 module_root=$2 output=$3
  local rootfs
  rootfs=$(dirname "$output")/rootfs
  mkdir -p "$rootfs/bin" "$rootfs/etc"

  cp "$package_root/bin/busybox" "$rootfs/bin/busybox"
  local applet
  for applet in $("$package_root/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  # The kernel runs /init from the initramfs. Called "init", busybox runs its
  # init applet, which reads /etc/inittab.
  ln -s bin/busybox "$rootfs/init"

  install_guest_modules "$module_root" "$rootfs"
  write_guest_files "$rootfs"

  # /dev/console is not created here because mknod needs root. The kernel's
  # built-in initramfs already contains it and is unpacked before this one.
  (cd "$rootfs" && find . -mindepth 1 | LC_ALL=C sort \
    | "$package_root/bin/cpio" --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 >"$output"
}

# Builds the GRUB EFI executable with an embedded configuration that boots the
# kernel and initramfs from the ESP. No grub.cfg is read from disk.
build_grub_image() {
  local package_root=$1 output=$2
  local config
  config=$(dirname "$output")/grub-embedded.cfg

  cat >"$config" <<EOF
echo 'vome-appliance: GRUB is loading /vmlinuz and /initrd.img'
search --no-floppy --set=root --file /vmlinuz
linux /vmlinuz $KERNEL_COMMAND_LINE
initrd /initrd.img
boot
EOF

  run_unpacked "$package_root" "$package_root/usr/bin/grub-mkimage" -O x86_64-efi \
    -d "$package_root/usr/lib/grub/x86_64-efi" \
    -p /EFI/BOOT -c "$config" -o "$output" \
    part_gpt fat search search_fs_file linux echo
}

# Builds a raw GPT disk whose only partition is the ESP, starting at 1 MiB,
# and converts it to qcow2.
build_disk() {
  local package_root=$1 work=$2 kernel=$3 initramfs=$4 grub_image=$5 output=$6
  local esp=$work/esp.img raw=$work/disk.raw

  "$package_root/sbin/mkfs.vfat" -C -n VOME-ESP "$esp" $((ESP_SIZE_MIB * 1024)) >/dev/null
  export MTOOLS_SKIP_CHECK=1
  "$package_root/usr/bin/mmd" -i "$esp" ::/EFI ::/EFI/BOOT
  "$package_root/usr/bin/mcopy" -i "$esp" "$grub_image" ::/EFI/BOOT/BOOTX64.EFI
  "$package_root/usr/bin/mcopy" -i "$esp" "$kernel" ::/vmlinuz
  "$package_root/usr/bin/mcopy" -i "$esp" "$initramfs" ::/initrd.img

  # 1 MiB before the ESP for the primary GPT, 1 MiB after it for the backup GPT.
  truncate -s $(((ESP_SIZE_MIB + 2) * 1024 * 1024)) "$raw"
  local esp_sectors=$((ESP_SIZE_MIB * 2048))
  run_unpacked "$package_root" "$package_root/sbin/sfdisk" --quiet --no-reread --no-tell-kernel "$raw" <<EOF
label: gpt
unit: sectors
start=2048, size=$esp_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System Partition"
EOF
  dd if="$esp" of="$raw" bs=1M seek=1 conv=notrunc status=none

  qemu-img convert -f raw -O qcow2 "$raw" "$output"
}

main() {
  (($# <= 1)) || die "too many arguments; usage: $0 [OUTPUT]"

  local script_path cache_dir output stamp script_hash
  script_path=$(readlink -f "${BASH_SOURCE[0]}")
  # CI may run without HOME; the passwd entry names the same folder.
  local home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
  cache_dir=${VOME_CACHE:-$home/.cache/vome}/appliance
  output=$(realpath -m "${1:-$cache_dir/vome-appliance.qcow2}")
  stamp=$output.stamp
  script_hash=$(sha256sum "$script_path" | cut -d' ' -f1)

  check_host
  mkdir -p "$cache_dir" "$(dirname "$output")"

  # Serialises builds that share the package cache. A build that waited here
  # may find the image already built by the one before it.
  exec {lock_fd}>"$cache_dir/build.lock"
  flock "$lock_fd"

  if [[ -f $output && -f $stamp && $(<"$stamp") == "$script_hash" ]]; then
    log "cached: $output"
    printf '%s\n' "$output"
    return 0
  fi

  local started
  started=$(now_ms)
  work=$(mktemp -d "${TMPDIR:-/tmp}/vome-appliance.XXXXXX")
  # A running VM may have the old image open, so the new one is written to a
  # temporary file and renamed over it.
  partial_output=$output.partial.$$
  partial_stamp=$stamp.partial.$$
  trap 'rm -rf "$work" "$partial_output" "$partial_stamp"' EXIT

  local kernel_package
  kernel_package=$(resolve_kernel_package)
  log "kernel package: $kernel_package"

  fetch_packages "$cache_dir/debs" "$work/empty" "$kernel_package" "${TOOL_PACKAGES[@]}" "${LIBRARY_PACKAGES[@]}" \
    >"$work/debs.list"
  local -a debs
  mapfile -t debs <"$work/debs.list"

  local package_root=$work/packages deb
  mkdir -p "$package_root"
  for deb in "${debs[@]}"; do
    if [[ ${deb##*/} == "${kernel_package}_"* ]]; then
      unpack_kernel_package "$deb" "$package_root"
    else
      dpkg -x "$deb" "$package_root"
    fi
  done
  log "unpacked ${#debs[@]} packages after $(($(now_ms) - started)) ms"

  local kernel_version=${kernel_package#linux-image-}
  local kernel=$package_root/boot/vmlinuz-$kernel_version
  local module_root=$package_root/lib/modules/$kernel_version
  [[ -f $kernel ]] || die "kernel image $kernel not found in $kernel_package"
  [[ -d $module_root ]] || die "module folder $module_root not found in $kernel_package"

  build_initramfs "$package_root" "$module_root" "$work/initramfs/initrd.img"
  log "initramfs: $(stat -c %s "$work/initramfs/initrd.img") bytes"

  build_grub_image "$package_root" "$work/BOOTX64.EFI"
  build_disk "$package_root" "$work" "$kernel" "$work/initramfs/initrd.img" "$work/BOOTX64.EFI" "$partial_output"

  mv -f "$partial_output" "$output"
  printf '%s\n' "$script_hash" >"$partial_stamp"
  mv -f "$partial_stamp" "$stamp"
  log "built $output ($(stat -c %s "$output") bytes) in $(($(now_ms) - started)) ms"
  printf '%s\n' "$output"
}

main "$@"
