#!/usr/bin/env bash
# Creates, or reuses, a complete "HA host" inside a network namespace: a veth link
# from the machine's own namespace, the bridge br-haos, libvirtd, dnsmasq for DHCP
# reservations and sshd. vome enrols and drives it over SSH like a remote machine.
#
# Progress goes to stderr. On success stdout carries only KEY=VALUE lines, which are
# also written to $VOME_TH_DIR/env. Safe to run again: whatever an earlier run left
# (namespace, links, daemons, keys, files) is reused or replaced. Run as root.
# See README.md beside this file for the settings and the layout.
set -euo pipefail

PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
umask 077

NS=${VOME_TH_NS:-vome-th}
DIR=${VOME_TH_DIR:-/var/lib/vome-testhost/$NS}
ROOT_ADDR=${VOME_TH_ROOT_ADDR:-10.231.0.1/30}
NS_ADDR=${VOME_TH_NS_ADDR:-10.231.0.2/30}
BRIDGE_ADDR=${VOME_TH_BRIDGE_ADDR:-10.232.0.1/24}
NET_NS=${VOME_TH_NET_NS:-$NS-net}
UPLINK_ADDR=${VOME_TH_UPLINK_ADDR:-10.233.0.1/24}
INTERNET_ADDR=${VOME_TH_INTERNET_ADDR:-10.233.0.254/24}
HA_DOMAIN=${VOME_TH_HA_DOMAIN:-ha.vome.test}

ROOT_VETH=vth0
NS_VETH=vth1
UPLINK=vthu0
INTERNET_VETH=vthu1
BRIDGE=br-haos
SSH_PORT=22
DATA=$DIR/data
CLIENT_KEY=$DIR/client/id_ed25519
HOST_KEY_FILE=$DIR/ssh_host_ed25519_key
KNOWN_HOSTS=$DIR/known_hosts
QEMU_CONF=/etc/libvirt/qemu.conf
NGINX_DIR=$DIR/nginx
NGINX_MAIN_CONF=$NGINX_DIR/nginx.conf
NGINX_SITE=$DATA/nginx/vome.conf
TLS_DIR=$DIR/tls
TLS_DAYS=825

LIBVIRTD_WAIT_SECONDS=60
DAEMON_STOP_SECONDS=20
SSH_CONNECT_TIMEOUT_SECONDS=5
SSH_ATTEMPTS=5

# From here on stdout is stderr, so that no command's output can mix with the
# KEY=VALUE lines, which go to fd 3 (the real stdout).
exec 3>&1 1>&2

log() { printf 'test-host up: %s\n' "$*" >&2; }
die() {
    printf 'test-host up: error: %s\n' "$*" >&2
    exit 1
}

ns_exec() { ip netns exec "$NS" "$@"; }

# Runs a command that forks a daemon. The daemon must not inherit fd 3 (the
# script's stdout, which a caller may be reading to its end) or fd 9 (the lock).
start_daemon() { "$@" </dev/null 3>&- 9>&-; }

[[ $EUID -eq 0 ]] || die "must run as root (it creates a network namespace and starts libvirtd)"

case $DIR in
    /*) ;;
    *) die "VOME_TH_DIR must be an absolute path, got '$DIR'" ;;
esac
[[ $DIR != / ]] || die "VOME_TH_DIR must not be /"

for setting in "VOME_TH_ROOT_ADDR=$ROOT_ADDR" "VOME_TH_NS_ADDR=$NS_ADDR" "VOME_TH_BRIDGE_ADDR=$BRIDGE_ADDR" \
    "VOME_TH_UPLINK_ADDR=$UPLINK_ADDR" "VOME_TH_INTERNET_ADDR=$INTERNET_ADDR"; do
    [[ ${setting#*=} =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] ||
        die "invalid ${setting%%=*} '${setting#*=}': expected an IPv4 address with prefix length, such as 10.231.0.1/30"
done
SSH_HOST=${NS_ADDR%/*}
bridge_prefix=${BRIDGE_ADDR#*/}
((bridge_prefix >= 8 && bridge_prefix <= 30)) ||
    die "invalid VOME_TH_BRIDGE_ADDR '$BRIDGE_ADDR': the prefix length must be between 8 and 30"

# --- Tools

missing=()
missing_packages=()
report_missing() {
    local what=$1 package=$2
    missing+=("$what (Debian package $package)")
    [[ " ${missing_packages[*]} " == *" $package "* ]] || missing_packages+=("$package")
}
require_command() {
    command -v "$1" >/dev/null 2>&1 || report_missing "$1" "$2"
}
require_command ip iproute2
require_command libvirtd libvirt-daemon-system
require_command virtlogd libvirt-daemon-system
require_command virsh libvirt-clients
require_command qemu-img qemu-utils
require_command qemu-system-x86_64 qemu-system-x86
require_command dnsmasq dnsmasq-base
require_command sshd openssh-server
require_command ssh-keygen openssh-client
require_command ssh openssh-client
require_command flock util-linux
require_command nginx nginx
require_command openssl openssl
require_command iptables-restore iptables
require_command wg wireguard-tools
require_command wireguard-go wireguard-go
compgen -G '/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null ||
    report_missing "libvirt's QEMU driver" libvirt-daemon-driver-qemu
compgen -G '/usr/share/OVMF/OVMF_CODE*.fd' >/dev/null ||
    report_missing "UEFI firmware /usr/share/OVMF/OVMF_CODE*.fd" ovmf
[[ -f $QEMU_CONF ]] || report_missing "$QEMU_CONF" libvirt-daemon-system

if ((${#missing[@]} > 0)); then
    printf 'test-host up: error: missing %s\n' "${missing[@]}" >&2
    die "install with: apt-get install -y --no-install-recommends ${missing_packages[*]}"
fi

mkdir -p "$(dirname "$DIR")"
mkdir -p "$DIR"
chmod 0700 "$DIR"

# up.sh and down.sh for the same namespace take turns.
exec 9>"/run/vome-testhost.$NS.lock"
flock -w 300 9 || die "timed out after 300 s waiting for /run/vome-testhost.$NS.lock (another up.sh or down.sh for '$NS' is running)"

# --- Process helpers

# Prints the pid stored in FILE if that process is alive and its command name is NAME.
# A pid file left from an earlier session can name a pid that now belongs to another
# program, hence the name check.
pid_from_file() {
    local file=$1 name=$2 pid
    [[ -r $file ]] || return 1
    pid=$(head -n1 "$file" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    is_alive "$pid" || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    printf '%s\n' "$pid"
}

# Succeeds if the process exists and is not a zombie.
is_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# Prints a description of the network namespace of a process, for messages.
describe_netns() {
    local pid=$1 name
    name=$(ip netns identify "$pid" 2>/dev/null || true)
    if [[ -n $name ]]; then
        printf "namespace '%s'" "$name"
    elif [[ $(readlink "/proc/$pid/ns/net") == $(readlink /proc/self/ns/net) ]]; then
        printf "the machine's own namespace"
    else
        printf "an unnamed namespace"
    fi
}

in_our_netns() { [[ $(ip netns identify "$1" 2>/dev/null || true) == "$NS" ]]; }

# Sends SIGTERM to PID, waits up to DAEMON_STOP_SECONDS for it to exit, then sends SIGKILL.
stop_pid() {
    local pid=$1 name=$2 tick
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((tick = 0; tick < DAEMON_STOP_SECONDS * 10; tick++)); do
        is_alive "$pid" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) still running after ${DAEMON_STOP_SECONDS} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((tick = 0; tick < 50; tick++)); do
        is_alive "$pid" || return 0
        sleep 0.1
    done
    die "$name (pid $pid) did not exit after SIGKILL"
}

# Waits up to 10 s for a daemon to write its pid file, then prints the pid.
wait_for_pid_file() {
    local file=$1 name=$2 tick pid
    for ((tick = 0; tick < 100; tick++)); do
        if pid=$(pid_from_file "$file" "$name"); then
            printf '%s\n' "$pid"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# --- Namespace, veth pair, bridge

# A name in /run/netns that no longer refers to a live namespace (for example a
# leftover file without its bind mount) is removed and created again.
if [[ -e /run/netns/$NS ]] && ! ip netns exec "$NS" true 2>/dev/null; then
    log "namespace '$NS' is unusable; recreating it"
    ip netns delete "$NS" 2>/dev/null || rm -f "/run/netns/$NS"
fi
if [[ -e /run/netns/$NS ]]; then
    log "reusing namespace '$NS'"
else
    log "creating namespace '$NS'"
    ip netns add "$NS"
fi
ns_exec ip link set lo up

# Prints the ifindex of a link and the ifindex of its peer ("5 6") from `ip -o link`.
link_indexes() {
    sed -nE 's/^([0-9]+): [^@:]+@if([0-9]+):.*/\1 \2/p'
}

veth_ok=false
if ip link show dev "$ROOT_VETH" >/dev/null 2>&1 && ns_exec ip link show dev "$NS_VETH" >/dev/null 2>&1; then
    read -r root_index root_peer < <(ip -o link show dev "$ROOT_VETH" | link_indexes) || true
    read -r ns_index ns_peer < <(ns_exec ip -o link show dev "$NS_VETH" | link_indexes) || true
    if [[ -n ${root_index:-} && ${root_peer:-} == "${ns_index:-}" && ${ns_peer:-} == "$root_index" ]]; then
        veth_ok=true
    fi
fi
if $veth_ok; then
    log "reusing veth pair $ROOT_VETH <-> $NS/$NS_VETH"
else
    ip link delete "$ROOT_VETH" 2>/dev/null || true
    ns_exec ip link delete "$NS_VETH" 2>/dev/null || true
    log "creating veth pair $ROOT_VETH <-> $NS/$NS_VETH"
    ip link add "$ROOT_VETH" type veth peer name "$NS_VETH" netns "$NS"
fi

# Gives DEV exactly the IPv4 address CIDR. Run with a prefix such as ns_exec to act
# inside the namespace. An address already in place is left alone, so that open
# SSH sessions survive a second run.
set_only_address() {
    local dev=$1 cidr=$2
    shift 2
    local current
    current=$("$@" ip -4 -o addr show dev "$dev" | awk '{print $4}')
    if [[ $current != "$cidr" ]]; then
        "$@" ip -4 addr flush dev "$dev"
        "$@" ip addr add "$cidr" dev "$dev"
    fi
    "$@" ip link set "$dev" up
}
set_only_address "$ROOT_VETH" "$ROOT_ADDR"
set_only_address "$NS_VETH" "$NS_ADDR" ns_exec

if ns_exec ip link show dev "$BRIDGE" >/dev/null 2>&1 &&
    ! ns_exec ip -o -d link show dev "$BRIDGE" | grep -q ' bridge '; then
    log "$NS/$BRIDGE exists but is not a bridge; recreating it"
    ns_exec ip link delete "$BRIDGE"
fi
if ns_exec ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    log "reusing bridge $NS/$BRIDGE"
else
    log "creating bridge $NS/$BRIDGE"
    ns_exec ip link add "$BRIDGE" type bridge
fi
# STP is off by default. A forward delay of 0 makes a new VM port forward at once.
ns_exec ip link set "$BRIDGE" type bridge forward_delay 0
set_only_address "$BRIDGE" "$BRIDGE_ADDR" ns_exec

# /proc/sys/net belongs to the network namespace of the process that opens it, so
# this enables forwarding inside the namespace only.
ns_exec sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'

# --- A second namespace that plays the internet, behind the host's uplink

# The host reaches it through its uplink and uses it as its default route, so
# that VM traffic leaves through NAT as on a real host. The route to the
# control plane (vth1) is more specific and stays as it was.
if [[ -e /run/netns/$NET_NS ]] && ! ip netns exec "$NET_NS" true 2>/dev/null; then
    ip netns delete "$NET_NS" 2>/dev/null || rm -f "/run/netns/$NET_NS"
fi
[[ -e /run/netns/$NET_NS ]] || ip netns add "$NET_NS"
ip netns exec "$NET_NS" ip link set lo up
if ! ns_exec ip link show dev "$UPLINK" >/dev/null 2>&1 || ! ip netns exec "$NET_NS" ip link show dev "$INTERNET_VETH" >/dev/null 2>&1; then
    ns_exec ip link delete "$UPLINK" 2>/dev/null || true
    ip netns exec "$NET_NS" ip link delete "$INTERNET_VETH" 2>/dev/null || true
    log "creating veth pair $NS/$UPLINK <-> $NET_NS/$INTERNET_VETH"
    ns_exec ip link add "$UPLINK" type veth peer name "$INTERNET_VETH" netns "$NET_NS"
fi
set_only_address "$UPLINK" "$UPLINK_ADDR" ns_exec
set_only_address "$INTERNET_VETH" "$INTERNET_ADDR" ip netns exec "$NET_NS"
ns_exec ip route replace default via "${INTERNET_ADDR%/*}" dev "$UPLINK"

# --- libvirt

# QEMU runs as libvirt-qemu by default, which cannot traverse the 0700 state folder
# to its images and, on the test machines, cannot open /dev/kvm. Running QEMU as
# root is acceptable only on a throwaway test bed, never on a real HA host.
qemu_conf_changed=false
set_qemu_conf() {
    local key=$1 value=$2
    if grep -Eq "^[[:space:]]*$key[[:space:]]*=[[:space:]]*\"$value\"[[:space:]]*(#.*)?$" "$QEMU_CONF"; then
        return 0
    fi
    log "setting $key = \"$value\" in $QEMU_CONF (test bed only)"
    if grep -Eq "^[[:space:]]*$key[[:space:]]*=" "$QEMU_CONF"; then
        sed -i -E "s|^[[:space:]]*$key[[:space:]]*=.*|$key = \"$value\"|" "$QEMU_CONF"
    else
        printf '\n# Set by vome scripts/test-host/up.sh: QEMU runs as root on this test bed only.\n%s = "%s"\n' \
            "$key" "$value" >>"$QEMU_CONF"
    fi
    qemu_conf_changed=true
}
set_qemu_conf user root
set_qemu_conf group root

# Only one libvirtd can run on the machine because its sockets are in /run/libvirt.
our_libvirtd=$(pid_from_file "$DIR/libvirtd.pid" libvirtd || true)
reuse_libvirtd=false
for pid in $(pgrep -x libvirtd || true); do
    is_alive "$pid" || continue
    if in_our_netns "$pid"; then
        if [[ $pid == "$our_libvirtd" ]] && $qemu_conf_changed; then
            log "restarting libvirtd (pid $pid) to apply the change to $QEMU_CONF"
            stop_pid "$pid" libvirtd
        else
            log "reusing libvirtd (pid $pid) in namespace '$NS'"
            $qemu_conf_changed && log "warning: libvirtd pid $pid was not started by up.sh; restart it to apply the change to $QEMU_CONF"
            reuse_libvirtd=true
        fi
    elif [[ $pid == "$our_libvirtd" ]]; then
        # An earlier up.sh started it in a namespace of the same name that has since
        # been deleted, so its VMs could not reach the bridge created above.
        log "libvirtd (pid $pid) from an earlier run is in $(describe_netns "$pid"), not '$NS'; replacing it"
        stop_pid "$pid" libvirtd
    else
        die "libvirtd (pid $pid) is already running in $(describe_netns "$pid") and was not started by this script. Only one libvirtd can run on a machine (its sockets are in /run/libvirt). Stop it, or wait for its owner to stop it, then run up.sh again."
    fi
done

# Prints the first live process named NAME. pgrep also lists zombies, which stay
# until their parent (here often pid 1) reaps them.
first_live_process() {
    local pid
    for pid in $(pgrep -x "$1" || true); do
        if is_alive "$pid"; then
            printf '%s\n' "$pid"
            return 0
        fi
    done
    return 1
}

our_virtlogd=$(pid_from_file "$DIR/virtlogd.pid" virtlogd || true)
if [[ -n $our_virtlogd ]]; then
    log "reusing virtlogd (pid $our_virtlogd)"
elif other_virtlogd=$(first_live_process virtlogd); then
    # virtlogd has no network sockets, so the namespace does not matter. down.sh
    # leaves a virtlogd that it did not start running.
    log "reusing virtlogd (pid $other_virtlogd), which up.sh did not start"
    rm -f "$DIR/virtlogd.pid"
else
    log "starting virtlogd"
    LIBVIRT_LOG_OUTPUTS="3:file:$DIR/virtlogd.log" start_daemon virtlogd -d
    pid=$(wait_for_pid_file /run/virtlogd.pid virtlogd) ||
        die "virtlogd failed to start (/run/virtlogd.pid names no running virtlogd). See $DIR/virtlogd.log"
    printf '%s\n' "$pid" >"$DIR/virtlogd.pid"
fi

if ! $reuse_libvirtd; then
    log "starting libvirtd in namespace '$NS'"
    LIBVIRT_LOG_OUTPUTS="3:file:$DIR/libvirtd.log" start_daemon ip netns exec "$NS" libvirtd -d
    pid=$(wait_for_pid_file /run/libvirtd.pid libvirtd) ||
        die "libvirtd failed to start (/run/libvirtd.pid names no running libvirtd). See $DIR/libvirtd.log"
    in_our_netns "$pid" || die "libvirtd (pid $pid) is not in namespace '$NS' but in $(describe_netns "$pid")"
    printf '%s\n' "$pid" >"$DIR/libvirtd.pid"
fi

libvirtd_ready=false
for ((tick = 0; tick < LIBVIRTD_WAIT_SECONDS * 5; tick++)); do
    if virsh -c qemu:///system version >/dev/null 2>&1; then
        libvirtd_ready=true
        break
    fi
    sleep 0.2
done
$libvirtd_ready ||
    die "timed out after ${LIBVIRTD_WAIT_SECONDS} s waiting for 'virsh -c qemu:///system version' to succeed; see $DIR/libvirtd.log"
log "libvirtd is ready on qemu:///system"

# --- Data folder and DHCP

mkdir -p "$DATA" "$DATA/dhcp-hosts"
chmod 0700 "$DATA" "$DATA/dhcp-hosts"

ip_to_int() {
    local IFS=. a b c d
    read -r a b c d <<<"$1"
    printf '%s\n' $(((a << 24) | (b << 16) | (c << 8) | d))
}
int_to_ip() {
    printf '%s.%s.%s.%s\n' $((($1 >> 24) & 255)) $((($1 >> 16) & 255)) $((($1 >> 8) & 255)) $(($1 & 255))
}
bridge_mask=$(((0xffffffff << (32 - bridge_prefix)) & 0xffffffff))
bridge_network=$(int_to_ip $(($(ip_to_int "${BRIDGE_ADDR%/*}") & bridge_mask)))
bridge_netmask=$(int_to_ip "$bridge_mask")

# "static" hands out only reserved addresses (one MAC,IP,NAME file per VM in
# dhcp-hosts/). --port=0 turns DNS off. --conf-file=/dev/null keeps an
# /etc/dnsmasq.conf from the full dnsmasq package out of this instance.
dnsmasq_args=(
    --conf-file=/dev/null
    --user=root --group=root
    --port=0
    --bind-interfaces --interface="$BRIDGE" --except-interface=lo
    --dhcp-range="$bridge_network,static,$bridge_netmask"
    --dhcp-hostsdir="$DATA/dhcp-hosts"
    --dhcp-leasefile="$DATA/dnsmasq.leases"
    --pid-file="$DATA/dnsmasq.pid"
    --dhcp-authoritative
    --log-dhcp
    --log-facility="$DIR/dnsmasq.log"
)
dnsmasq_bin=$(command -v dnsmasq)
expected_cmdline=$(printf '%s\n' "$dnsmasq_bin" "${dnsmasq_args[@]}")

if pid=$(pid_from_file "$DATA/dnsmasq.pid" dnsmasq); then
    if in_our_netns "$pid" && [[ $(tr '\0' '\n' <"/proc/$pid/cmdline") == "$expected_cmdline" ]]; then
        log "reusing dnsmasq (pid $pid)"
        dnsmasq_running=true
    elif tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "--pid-file=$DATA/dnsmasq.pid"; then
        log "replacing dnsmasq (pid $pid) from an earlier run: other options or namespace"
        stop_pid "$pid" dnsmasq
        dnsmasq_running=false
    else
        dnsmasq_running=false
    fi
else
    dnsmasq_running=false
fi
if ! $dnsmasq_running; then
    rm -f "$DATA/dnsmasq.pid"
    log "starting dnsmasq on $NS/$BRIDGE"
    start_daemon ip netns exec "$NS" "$dnsmasq_bin" "${dnsmasq_args[@]}" ||
        die "dnsmasq failed to start; see the message above and $DIR/dnsmasq.log"
    wait_for_pid_file "$DATA/dnsmasq.pid" dnsmasq >/dev/null ||
        die "dnsmasq did not write $DATA/dnsmasq.pid; see $DIR/dnsmasq.log"
fi

# --- nginx's main configuration and a self-signed wildcard certificate

# vome writes its site file into $DATA/nginx and starts nginx with this main
# configuration (vome host bootstrap). Logs, pid and temporary files stay in
# $NGINX_DIR, so this nginx shares nothing with one the machine may run.
mkdir -p "$NGINX_DIR/tmp" "$DATA/nginx"
nginx_conf_text="# Written by vome scripts/test-host/up.sh on every run; edits are lost.
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log;
events { worker_connections 1024; }
http {
    access_log $NGINX_DIR/access.log;
    client_body_temp_path $NGINX_DIR/tmp/client-body;
    proxy_temp_path $NGINX_DIR/tmp/proxy;
    fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
    scgi_temp_path $NGINX_DIR/tmp/scgi;
    include $DATA/nginx/*.conf;
}
"
if [[ ! -f $NGINX_MAIN_CONF || $(<"$NGINX_MAIN_CONF") != "${nginx_conf_text%$'\n'}" ]]; then
    printf '%s' "$nginx_conf_text" >"$NGINX_MAIN_CONF"
fi

mkdir -p "$TLS_DIR"
if [[ ! -f $TLS_DIR/fullchain.pem || ! -f $TLS_DIR/privkey.pem ]] ||
    ! openssl x509 -in "$TLS_DIR/fullchain.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 ||
    ! openssl x509 -in "$TLS_DIR/fullchain.pem" -noout -ext subjectAltName 2>/dev/null | grep -qF "DNS:*.$HA_DOMAIN"; then
    log "making a self-signed certificate for *.$HA_DOMAIN in $TLS_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$TLS_DAYS" \
        -subj "/CN=*.$HA_DOMAIN" -addext "subjectAltName=DNS:*.$HA_DOMAIN,DNS:$HA_DOMAIN" \
        -keyout "$TLS_DIR/privkey.pem.tmp" -out "$TLS_DIR/fullchain.pem.tmp" 2>/dev/null
    mv -f "$TLS_DIR/privkey.pem.tmp" "$TLS_DIR/privkey.pem"
    mv -f "$TLS_DIR/fullchain.pem.tmp" "$TLS_DIR/fullchain.pem"
fi
chmod 0600 "$TLS_DIR/privkey.pem"
chmod 0644 "$TLS_DIR/fullchain.pem"

# --- sshd

if [[ ! -f $HOST_KEY_FILE ]]; then
    log "generating the sshd host key $HOST_KEY_FILE"
    rm -f "$HOST_KEY_FILE.pub"
    ssh-keygen -q -t ed25519 -N '' -C "vome-testhost-$NS" -f "$HOST_KEY_FILE"
elif [[ ! -f $HOST_KEY_FILE.pub ]]; then
    ssh-keygen -y -f "$HOST_KEY_FILE" >"$HOST_KEY_FILE.pub"
fi
chmod 0600 "$HOST_KEY_FILE"

mkdir -p "$(dirname "$CLIENT_KEY")"
chmod 0700 "$(dirname "$CLIENT_KEY")"
if [[ ! -f $CLIENT_KEY ]]; then
    log "generating the client key $CLIENT_KEY"
    rm -f "$CLIENT_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C "vome-testhost-client" -f "$CLIENT_KEY"
elif [[ ! -f $CLIENT_KEY.pub ]]; then
    ssh-keygen -y -f "$CLIENT_KEY" >"$CLIENT_KEY.pub"
fi
chmod 0600 "$CLIENT_KEY"

# Keys that others added to authorized_keys stay. The client key is added once.
client_public_key=$(awk '{print $1" "$2}' "$CLIENT_KEY.pub")
touch "$DIR/authorized_keys"
chmod 0600 "$DIR/authorized_keys"
grep -qF "$client_public_key" "$DIR/authorized_keys" ||
    printf '%s vome-testhost-client\n' "$client_public_key" >>"$DIR/authorized_keys"

# internal-sftp serves SFTP without the separate sftp-server binary.
sshd_config_text="# Written by vome scripts/test-host/up.sh on every run; edits are lost.
ListenAddress $SSH_HOST:$SSH_PORT
HostKey $HOST_KEY_FILE
PidFile $DIR/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile $DIR/authorized_keys
UsePAM no
PrintMotd no
Subsystem sftp internal-sftp
"
sshd_config_changed=false
if [[ ! -f $DIR/sshd_config || $(<"$DIR/sshd_config") != "${sshd_config_text%$'\n'}" ]]; then
    printf '%s' "$sshd_config_text" >"$DIR/sshd_config"
    sshd_config_changed=true
fi

sshd_bin=$(command -v sshd)
# sshd refuses to start without its privilege separation folder.
mkdir -p /run/sshd
chmod 0755 /run/sshd
"$sshd_bin" -t -f "$DIR/sshd_config" || die "sshd rejected $DIR/sshd_config (see the message above)"

sshd_running=false
if pid=$(pid_from_file "$DIR/sshd.pid" sshd) &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-f $DIR/sshd_config"; then
    if in_our_netns "$pid" && ! $sshd_config_changed; then
        log "reusing sshd (pid $pid)"
        sshd_running=true
    else
        log "replacing sshd (pid $pid): its configuration or namespace changed"
        stop_pid "$pid" sshd
    fi
fi
if ! $sshd_running; then
    rm -f "$DIR/sshd.pid"
    log "starting sshd on $SSH_HOST:$SSH_PORT in namespace '$NS'"
    # sshd must be started with an absolute path because it re-executes itself.
    start_daemon ip netns exec "$NS" "$sshd_bin" -f "$DIR/sshd_config" -E "$DIR/sshd.log" ||
        die "sshd failed to start; see $DIR/sshd.log"
    wait_for_pid_file "$DIR/sshd.pid" sshd >/dev/null ||
        die "sshd did not write $DIR/sshd.pid; see $DIR/sshd.log"
fi

host_key=$(awk '{print $1" "$2}' "$HOST_KEY_FILE.pub")
host_key_sha256=$(ssh-keygen -lf "$HOST_KEY_FILE.pub" | awk '{print $2}')
printf '%s %s\n' "$SSH_HOST" "$host_key" >"$KNOWN_HOSTS"

# --- Check: SSH with the pinned host key, and virsh over that session

ssh_options=(
    -i "$CLIENT_KEY"
    -o IdentitiesOnly=yes
    -o BatchMode=yes
    -o StrictHostKeyChecking=yes
    -o UserKnownHostsFile="$KNOWN_HOSTS"
    -o ConnectTimeout="$SSH_CONNECT_TIMEOUT_SECONDS"
    -o LogLevel=ERROR
    -p "$SSH_PORT"
)
ssh_ok=false
for ((attempt = 1; attempt <= SSH_ATTEMPTS; attempt++)); do
    if ssh "${ssh_options[@]}" "root@$SSH_HOST" true </dev/null; then
        ssh_ok=true
        break
    fi
    sleep 1
done
$ssh_ok || die "ssh root@$SSH_HOST failed $SSH_ATTEMPTS times with the pinned host key; see $DIR/sshd.log"
log "ssh root@$SSH_HOST works with the pinned host key $host_key_sha256"

ssh "${ssh_options[@]}" "root@$SSH_HOST" virsh -c qemu:///system list --all </dev/null ||
    die "'virsh -c qemu:///system list --all' failed over ssh root@$SSH_HOST"

# --- Output

env_text="VOME_TH_NS=$NS
SSH_HOST=$SSH_HOST
SSH_PORT=$SSH_PORT
SSH_USER=root
SSH_KEY=$CLIENT_KEY
HOST_KEY=$host_key
HOST_KEY_SHA256=$host_key_sha256
KNOWN_HOSTS=$KNOWN_HOSTS
BRIDGE=$BRIDGE
BRIDGE_ADDR=$BRIDGE_ADDR
DATA_DIR=$DATA
UPLINK=$UPLINK
UPLINK_ADDR=$UPLINK_ADDR
NET_NS=$NET_NS
INTERNET_ADDR=$INTERNET_ADDR
HA_DOMAIN=$HA_DOMAIN
TLS_CERT=$TLS_DIR/fullchain.pem
TLS_KEY=$TLS_DIR/privkey.pem
TLS_CA=$TLS_DIR/fullchain.pem
NGINX_MAIN_CONF=$NGINX_MAIN_CONF
NGINX_SITE=$NGINX_SITE
"
printf '%s' "$env_text" >"$DIR/env.tmp"
mv -f "$DIR/env.tmp" "$DIR/env"
log "test host '$NS' is up; these lines are also in $DIR/env"
printf '%s' "$env_text" >&3
