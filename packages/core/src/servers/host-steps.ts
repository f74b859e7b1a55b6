import type { Host, Image, Server } from '../db/schema.js';
import { type CommandRunner, shellQuote as q } from '../runner/command-runner.js';
import { renderDomainXml, serverDir } from './domain-xml.js';

// Every script below is idempotent: run again after a kill at any line, it
// finishes the work or finds it done. Each is one round trip. Domains are
// addressed by UUID (the server id), never by name. So a step acts only on
// this server's own domain, never on a namesake that another control plane
// or an administrator defined, nor on a later server that reuses the name.

const VIRSH = 'virsh -q -c qemu:///system';

/** Returns the path of a server's DHCP reservation file, read by dnsmasq --dhcp-hostsdir. */
export function reservationPath(host: Pick<Host, 'data_dir'>, server: Pick<Server, 'id'>): string {
  return `${host.data_dir}/dhcp-hosts/${server.id}.conf`;
}

/**
 * Tells the host's dnsmasq to reread its reservations. dnsmasq 2.90 reads new
 * and changed files in --dhcp-hostsdir by itself, but keeps the records of
 * removed files, and of a MAC replaced in a file, until SIGHUP.
 */
function reloadDhcp(host: Host): string {
  return `pid_file=${q(`${host.data_dir}/dnsmasq.pid`)}
if [ -r "$pid_file" ]; then kill -HUP "$(cat "$pid_file")" 2>/dev/null || true; fi`;
}

/** Creates the qcow2 overlay on the base image, with the server's disk size. */
export async function createDisk(runner: CommandRunner, host: Host, server: Server, image: Image, basePath: string): Promise<void> {
  const dir = serverDir(host, server);
  await runner.run(
    `dir=${q(dir)}
mkdir -p "$dir"
chmod 0700 "$dir"
if [ ! -f "$dir/disk.qcow2" ]; then
  rm -f "$dir/disk.qcow2.part"
  qemu-img create -q -f qcow2 -F ${q(image.format)} -b ${q(basePath)} "$dir/disk.qcow2.part" ${q(`${server.disk_gib}G`)}
  chmod 0600 "$dir/disk.qcow2.part"
  mv -f "$dir/disk.qcow2.part" "$dir/disk.qcow2"
fi`,
    { label: 'create-disk', timeoutMs: 120_000 },
  );
}

/** Writes the server's DHCP reservation (MAC, address, host name) atomically. */
export async function writeReservation(runner: CommandRunner, host: Host, server: Server): Promise<void> {
  const file = reservationPath(host, server);
  await runner.run(
    `file=${q(file)}
mkdir -p "$(dirname "$file")"
tmp="$(dirname "$file")/.$(basename "$file").tmp"
printf '%s\\n' ${q(`${server.mac},${server.ipv4},${server.name}`)} > "$tmp"
# dnsmasq may read it after dropping root; it holds nothing secret.
chmod 0644 "$tmp"
mv -f "$tmp" "$file"
${reloadDhcp(host)}`,
    { label: 'reserve-address', timeoutMs: 30_000 },
  );
}

/** Removes the server's DHCP reservation. */
export async function removeReservation(runner: CommandRunner, host: Host, server: Server): Promise<void> {
  const file = reservationPath(host, server);
  // dnsmasq keeps a destroyed VM's lease for its full lease time and will not
  // offer that address to another MAC until it ends, so the lease is released.
  await runner.run(
    `rm -f ${q(file)}
${reloadDhcp(host)}
if command -v dhcp_release >/dev/null; then dhcp_release ${q(host.bridge)} ${q(server.ipv4)} ${q(server.mac)} || true; fi`,
    { label: 'remove-reservation', timeoutMs: 30_000 },
  );
}

/** Defines (or redefines) the libvirt domain from the server's record. */
export async function defineDomain(runner: CommandRunner, host: Host, server: Server, image: Image): Promise<void> {
  const dir = serverDir(host, server);
  const xml = renderDomainXml(server, host, image);
  await runner.run(
    `dir=${q(dir)}
mkdir -p "$dir"
cat > "$dir/domain.xml.part" <<'VOME_DOMAIN_XML'
${xml}VOME_DOMAIN_XML
mv -f "$dir/domain.xml.part" "$dir/domain.xml"
${VIRSH} define "$dir/domain.xml" >/dev/null`,
    { label: 'define-domain', timeoutMs: 60_000 },
  );
}

/** Starts the domain, or resumes it when paused; does nothing when running. */
export async function startDomain(runner: CommandRunner, server: Server): Promise<void> {
  await runner.run(
    `dom=${q(server.id)}
state=$(${VIRSH} domstate "$dom")
case "$state" in
  running) ;;
  paused) ${VIRSH} resume "$dom" >/dev/null ;;
  *) ${VIRSH} start "$dom" >/dev/null ;;
esac`,
    { label: 'start-domain', timeoutMs: 120_000 },
  );
}

/**
 * Stops the domain: an ACPI shutdown first (the guest flushes its disk), then a
 * hard stop if it has not powered off within `graceSeconds`. With
 * `graceSeconds` 0 it stops at once. A missing domain counts as stopped.
 */
export async function stopDomain(runner: CommandRunner, server: Server, graceSeconds: number): Promise<void> {
  await runner.run(
    `dom=${q(server.id)}
if ! ${VIRSH} dominfo "$dom" >/dev/null 2>&1; then exit 0; fi
state=$(${VIRSH} domstate "$dom")
if [ "$state" = "shut off" ]; then exit 0; fi
if [ ${graceSeconds} -gt 0 ] && [ "$state" = "running" ]; then
  # A guest still booting may miss the ACPI event, so it is sent again every 5 s.
  for tick in $(seq 0 $((${graceSeconds} * 2 - 1))); do
    if [ $((tick % 10)) -eq 0 ]; then ${VIRSH} shutdown "$dom" >/dev/null 2>&1 || true; fi
    [ "$(${VIRSH} domstate "$dom")" = "shut off" ] && exit 0
    sleep 0.5
  done
  echo "guest did not power off within ${graceSeconds} s; stopping it hard" >&2
fi
${VIRSH} destroy "$dom" >/dev/null 2>&1 || [ "$(${VIRSH} domstate "$dom")" = "shut off" ]`,
    { label: 'stop-domain', timeoutMs: (graceSeconds + 60) * 1000 },
  );
}

/** Undefines the domain together with its NVRAM file; a missing domain is fine. */
export async function undefineDomain(runner: CommandRunner, server: Server): Promise<void> {
  await runner.run(
    `dom=${q(server.id)}
if ${VIRSH} dominfo "$dom" >/dev/null 2>&1; then
  ${VIRSH} undefine --nvram "$dom" >/dev/null
fi`,
    { label: 'undefine-domain', timeoutMs: 60_000 },
  );
}

/** Removes the server's folder: overlay disk, NVRAM and domain XML. */
export async function removeServerFiles(runner: CommandRunner, host: Host, server: Server): Promise<void> {
  await runner.run(`rm -rf -- ${q(serverDir(host, server))}`, { label: 'remove-disk', timeoutMs: 60_000 });
}

/** Reads the libvirt state of the domain, or "absent". */
export async function domainState(runner: CommandRunner, server: Server): Promise<string> {
  const result = await runner.run(
    `dom=${q(server.id)}
if ${VIRSH} dominfo "$dom" >/dev/null 2>&1; then ${VIRSH} domstate "$dom"; else echo absent; fi`,
    { label: 'domain-state', timeoutMs: 30_000 },
  );
  return result.stdout.trim();
}
