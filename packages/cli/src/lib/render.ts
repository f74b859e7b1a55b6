import type { Host, ServerView } from '@vome/core';

/** Formats a byte count in MiB below 1 GiB and in GiB above, as `qemu-img` does. */
export function formatBytes(bytes: number): string {
  if (bytes < 2 ** 30) {
    return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  }
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * Replaces control and text-direction characters with their \u escapes, so
 * that a value cannot move the cursor, clear the screen or fake a row.
 */
export function printable(text: string): string {
  return text.replace(/[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Formats rows as a left-aligned text table. */
export function table(headers: string[], rows: Array<Array<string | number | null>>): string {
  const cells = [headers, ...rows.map((row) => row.map((cell) => (cell === null ? '-' : printable(String(cell)))))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]?.length ?? 0)));
  return cells.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd()).join('\n');
}

/** The JSON shape of a server in every command's result. */
export interface ServerJson {
  id: string;
  name: string;
  subdomain: string;
  state: string;
  account: string;
  host: string;
  image: string;
  ipv4: string;
  mac: string;
  haPort: number;
  vcpus: number;
  memoryMib: number;
  diskGib: number;
  suspendedAt: string | null;
  createdAt: string;
  destroyedAt: string | null;
}

export function serverJson(server: ServerView): ServerJson {
  return {
    id: server.id,
    name: server.name,
    subdomain: server.subdomain,
    state: server.state,
    account: server.account_login,
    host: server.host_name,
    image: server.image_name,
    ipv4: server.ipv4,
    mac: server.mac,
    haPort: server.ha_port,
    vcpus: server.vcpus,
    memoryMib: server.memory_mib,
    diskGib: server.disk_gib,
    suspendedAt: server.suspended_at?.toISOString() ?? null,
    createdAt: server.created_at.toISOString(),
    destroyedAt: server.destroyed_at?.toISOString() ?? null,
  };
}

/** The JSON shape of a host. */
export interface HostJson {
  id: string;
  name: string;
  transport: string;
  address: string | null;
  port: number | null;
  user: string | null;
  hostKeySha256: string | null;
  bridge: string;
  bridgeCidr: string;
  range: { start: string; end: string };
  virtType: string;
  dataDir: string;
  vcpus: number;
  memoryMib: number;
  network: {
    uplink: string;
    haDomain: string;
    tlsCertificatePath: string;
    tlsKeyPath: string;
    nginxSitePath: string;
    nginxMainConfigPath: string;
    tunnelNetwork: string;
    tunnelPortStart: number;
    blockedNetworks: string[];
  };
  checkedAt: string | null;
}

export function hostJson(host: Host): HostJson {
  return {
    id: host.id,
    name: host.name,
    transport: host.transport,
    address: host.ssh_address,
    port: host.ssh_port,
    user: host.ssh_user,
    hostKeySha256: host.host_key_sha256,
    bridge: host.bridge,
    bridgeCidr: host.bridge_cidr,
    range: { start: host.range_start, end: host.range_end },
    virtType: host.virt_type,
    dataDir: host.data_dir,
    vcpus: host.vcpus,
    memoryMib: host.memory_mib,
    network: {
      uplink: host.uplink,
      haDomain: host.ha_domain,
      tlsCertificatePath: host.tls_certificate_path,
      tlsKeyPath: host.tls_key_path,
      nginxSitePath: host.nginx_site_path,
      nginxMainConfigPath: host.nginx_main_config_path,
      tunnelNetwork: host.tunnel_network,
      tunnelPortStart: host.tunnel_port_start,
      blockedNetworks: host.blocked_networks === '' ? [] : host.blocked_networks.split(','),
    },
    checkedAt: host.checked_at?.toISOString() ?? null,
  };
}
