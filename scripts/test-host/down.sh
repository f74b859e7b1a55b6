#!/usr/bin/env bash
# Removes the test HA host that up.sh created: its vome-* libvirt domains, the daemons
# that up.sh started, the namespace and the veth pair. With --purge it also deletes
# the state folder (keys, data folder, logs). Anything already gone is skipped, so it
# is safe to run again. Run as root.
set -euo pipefail

PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

NS=${VOME_TH_NS:-vome-th}
DIR=${VOME_TH_DIR:-/var/lib/vome-testhost/$NS}
NET_NS=${VOME_TH_NET_NS:-$NS-net}
ROOT_VETH=vth0
DOMAIN_PREFIX=vome-
DAEMON_STOP_SECONDS=20
VIRSH_TIMEOUT_SECONDS=60

log() { printf 'test-host down: %s\n' "$*" >&2; }
die() {
    printf 'test-host down: error: %s\n' "$*" >&2
    exit 1
}

purge=false
for argument in "$@"; do
    case $argument in
        --purge) purge=true ;;
        -h | --help)
            printf 'usage: %s [--purge]\n  --purge  also delete the state folder %s\n' "$0" "$DIR"
            exit 0
            ;;
        *) die "unknown argument '$argument' (usage: $0 [--purge])" ;;
    esac
done

[[ $EUID -eq 0 ]] || die "must run as root"
case $DIR in
    /*) ;;
    *) die "VOME_TH_DIR must be an absolute path, got '$DIR'" ;;
esac
[[ $DIR != / ]] || die "VOME_TH_DIR must not be /"

# up.sh and down.sh for the same namespace take turns.
exec 9>"/run/vome-testhost.$NS.lock"
flock -w 300 9 || die "timed out after 300 s waiting for /run/vome-testhost.$NS.lock (another up.sh or down.sh for '$NS' is running)"

# Succeeds if the process exists and is not a zombie.
is_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

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
    log "warning: $name (pid $pid) did not exit after SIGKILL"
}

# Stops the process named in one of up.sh's pid files if it runs under the expected
# name, then removes the pid file.
stop_recorded_daemon() {
    local file=$1 name=$2 pid
    if pid=$(pid_from_file "$file" "$name"); then
        stop_pid "$pid" "$name"
    fi
    rm -f "$file"
}

virsh_system() { timeout "$VIRSH_TIMEOUT_SECONDS" virsh -q -c qemu:///system "$@"; }

# --- Domains: only on the libvirtd that up.sh started

if libvirtd_pid=$(pid_from_file "$DIR/libvirtd.pid" libvirtd); then
    if domains=$(virsh_system list --all --name 2>/dev/null); then
        while read -r domain; do
            [[ $domain == "$DOMAIN_PREFIX"* ]] || continue
            log "removing libvirt domain $domain"
            # destroy fails for a domain that is not running, which is fine.
            virsh_system destroy "$domain" >/dev/null 2>&1 || true
            virsh_system undefine --nvram --managed-save --snapshots-metadata "$domain" >/dev/null ||
                log "warning: 'virsh undefine --nvram $domain' failed"
        done <<<"$domains"
        leftover=$(virsh_system list --name 2>/dev/null | sed '/^$/d' | tr '\n' ' ' || true)
        [[ -z $leftover ]] || log "warning: domains without the $DOMAIN_PREFIX prefix are still running and keep their QEMU processes: $leftover"
    else
        log "warning: libvirtd (pid $libvirtd_pid) did not answer 'virsh list'; its domains are left as they are"
    fi
else
    # pgrep also lists zombies, which stay until their parent reaps them.
    for pid in $(pgrep -x libvirtd || true); do
        is_alive "$pid" || continue
        log "leaving the domains of libvirtd (pid $pid) alone: up.sh did not start it"
    done
fi

# --- Daemons that up.sh started

# sshd's pid file names only the listener. Open SSH sessions have processes of their
# own, which down.sh does not end.
stop_recorded_daemon "$DIR/sshd.pid" sshd
stop_recorded_daemon "$DIR/nginx/nginx.pid" nginx
# vome starts one wireguard-go per server tunnel where the kernel has no
# WireGuard module; only those inside this namespace are ended.
for pid in $(pgrep -x wireguard-go || true); do
    if is_alive "$pid" && [[ $(ip netns identify "$pid" 2>/dev/null || true) == "$NS" ]]; then
        stop_pid "$pid" wireguard-go
    fi
done
stop_recorded_daemon "$DIR/data/dnsmasq.pid" dnsmasq
stop_recorded_daemon "$DIR/libvirtd.pid" libvirtd
stop_recorded_daemon "$DIR/virtlogd.pid" virtlogd

# --- Namespace and veth pair

if [[ -e /run/netns/$NS ]]; then
    log "deleting namespace '$NS'"
    ip netns delete "$NS" 2>/dev/null || rm -f "/run/netns/$NS"
fi
if [[ -e /run/netns/$NET_NS ]]; then
    log "deleting namespace '$NET_NS'"
    ip netns delete "$NET_NS" 2>/dev/null || rm -f "/run/netns/$NET_NS"
fi
# Deleting the namespace deletes the pair only when no process keeps the namespace
# alive, so the root side is removed explicitly as well.
if ip link show dev "$ROOT_VETH" >/dev/null 2>&1; then
    log "deleting $ROOT_VETH"
    ip link delete "$ROOT_VETH" 2>/dev/null || true
fi

if $purge && [[ -d $DIR ]]; then
    log "deleting the state folder $DIR"
    rm -rf -- "$DIR"
fi

log "test host '$NS' is down"
