/**
 * The network a host should have, as one plain value built from the database.
 * The firewall, nginx and WireGuard renderers are pure functions of it, and
 * plan, apply and the drift check compare the host with what they render.
 */

/** One WireGuard peer of a server's interface: one /32 address. */
export interface NetworkPeer {
  /** Peer name, unique per server, for plans and errors. */
  name: string;
  /** Standard base64, 44 characters. */
  publicKey: string;
  /** The peer's tunnel address, without a prefix, e.g. 10.100.3.2. */
  address: string;
}

/** A server's own WireGuard interface on the host. */
export interface NetworkTunnel {
  /** Interface name, e.g. vwg51820 (at most 15 characters). */
  interface: string;
  /** UDP listen port. */
  listenPort: number;
  /** Number of the interface's own routing table. */
  table: number;
  /** Priority of the interface's `ip rule`s. */
  rulePriority: number;
  /** The tenant's /24, e.g. 10.100.3.0/24. */
  network: string;
  /** The host's address on the interface, e.g. 10.100.3.1. */
  address: string;
  /** The interface's public key; the private key stays on the host. */
  publicKey: string;
  /** Path of the private key file on the host (0600). */
  privateKeyPath: string;
  peers: NetworkPeer[];
}

export interface NetworkServer {
  id: string;
  name: string;
  subdomain: string;
  ipv4: string;
  /** Lower case, colon separated. */
  mac: string;
  /** Home Assistant's HTTP port inside the VM (80 or 8123). */
  haPort: number;
  /** The VM's tap device on the bridge, fixed by the domain XML. */
  tap: string;
  tunnel: NetworkTunnel | null;
}

export interface NetworkHost {
  name: string;
  bridge: string;
  /** The bridge's own address, e.g. 10.232.0.1. */
  bridgeAddress: string;
  /** The bridge network, e.g. 10.232.0.0/24. */
  bridgeNetwork: string;
  /** The interface that leads to the internet; outbound VM traffic is NATed to it. */
  uplink: string;
  /** Networks a VM may not reach through the uplink, e.g. the host's LAN, as aligned CIDRs. */
  blockedNetworks: string[];
  /** Servers are reached at https://<subdomain>.<haDomain>. */
  haDomain: string;
  tlsCertificatePath: string;
  tlsKeyPath: string;
  /** vome's nginx include file, loaded in nginx's http block. */
  nginxSitePath: string;
  /** nginx's main configuration file, for `nginx -t -c` and reloads. */
  nginxMainConfigPath: string;
  /** Host folder for vome's saved network state (firewall, WireGuard keys). */
  networkDir: string;
}

export interface NetworkModel {
  host: NetworkHost;
  /** Servers whose network should exist, sorted by address. */
  servers: NetworkServer[];
}

/** The part of a host's network that a change concerns. */
export type NetworkPart = 'firewall' | 'nginx' | 'wireguard';

/**
 * One difference between the host and the database: `add` exists only in the
 * database, `remove` only on the host.
 */
export interface PlanChange {
  part: NetworkPart;
  action: 'add' | 'remove';
  /** The rule, map entry, interface or peer, as one line. */
  item: string;
}

/**
 * Returns the name of a server's tap device: "vm" and its address in hex,
 * e.g. vm0ae8000c for 10.232.0.12. Addresses are unique on a host, and the
 * name fits the kernel's 15-character limit.
 */
export function tapName(ipv4: string): string {
  return `vm${ipv4
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0'))
    .join('')}`;
}
