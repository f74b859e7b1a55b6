import type { Host } from '../db/schema.js';
import { InvalidInputError } from '../errors/index.js';
import { isDnsLabel } from '../naming/dns-label.js';
import { ipv4ToNumber, numberToIpv4, parseCidr } from '../naming/ipv4.js';

/** A host's network settings as an admin gives them; absent ones stay as they are. */
export interface NetworkSettingsInput {
  uplink?: string;
  haDomain?: string;
  tlsCertificatePath?: string;
  tlsKeyPath?: string;
  nginxSitePath?: string;
  nginxMainConfigPath?: string;
  tunnelNetwork?: string;
  tunnelPortStart?: number;
  /** Comma-separated networks VMs may not reach through the uplink; "none" for none. */
  blockedNetworks?: string;
}

/** The host columns that network settings fill. */
export type NetworkSettings = Pick<
  Host,
  | 'uplink'
  | 'ha_domain'
  | 'tls_certificate_path'
  | 'tls_key_path'
  | 'nginx_site_path'
  | 'nginx_main_config_path'
  | 'tunnel_network'
  | 'tunnel_port_start'
  | 'blocked_networks'
>;

/** Defaults for a host whose settings were never given. */
export const DEFAULT_NETWORK_SETTINGS: NetworkSettings = {
  uplink: '',
  ha_domain: '',
  tls_certificate_path: '/etc/vome/tls/fullchain.pem',
  tls_key_path: '/etc/vome/tls/privkey.pem',
  nginx_site_path: '/etc/nginx/conf.d/vome.conf',
  nginx_main_config_path: '/etc/nginx/nginx.conf',
  tunnel_network: '10.100.0.0/16',
  tunnel_port_start: 51_820,
  blocked_networks: '10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16',
};

// Interface names vome gives its own devices: VM taps and WireGuard interfaces.
const RESERVED_INTERFACE_PREFIXES = ['vm', 'vwg'];

// Tunnel networks must stay inside these, so they never take over public
// addresses the host or its VMs need.
const PRIVATE_RANGES = ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16'].map(parseCidrBlock);

function parseCidrBlock(cidr: string): { network: number; broadcast: number } {
  const [address = '', prefix = '0'] = cidr.split('/');
  const size = 2 ** (32 - Number(prefix));
  return { network: ipv4ToNumber(address), broadcast: ipv4ToNumber(address) + size - 1 };
}

// Paths end up inside nginx's configuration and host scripts, so they are
// limited to characters that need no quoting in either.
const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]+$/;

/**
 * Merges new network settings into a host's current ones and checks the
 * result as a whole: the uplink is an interface name that is not the bridge,
 * the HA domain a lower-case DNS name, paths absolute, and the tunnel network
 * an aligned IPv4 network of /24 or larger that overlaps neither the bridge
 * network nor the host's SSH address.
 *
 * @throws InvalidInputError naming the setting, the value and the rule.
 */
export function resolveNetworkSettings(
  current: NetworkSettings,
  input: NetworkSettingsInput,
  host: Pick<Host, 'name' | 'bridge' | 'bridge_cidr' | 'ssh_address'>,
): NetworkSettings {
  const settings: NetworkSettings = {
    uplink: input.uplink ?? current.uplink,
    ha_domain: (input.haDomain ?? current.ha_domain).toLowerCase().replace(/\.$/, ''),
    tls_certificate_path: input.tlsCertificatePath ?? current.tls_certificate_path,
    tls_key_path: input.tlsKeyPath ?? current.tls_key_path,
    nginx_site_path: input.nginxSitePath ?? current.nginx_site_path,
    nginx_main_config_path: input.nginxMainConfigPath ?? current.nginx_main_config_path,
    tunnel_network: input.tunnelNetwork ?? current.tunnel_network,
    tunnel_port_start: input.tunnelPortStart ?? current.tunnel_port_start,
    blocked_networks: input.blockedNetworks ?? current.blocked_networks,
  };

  if (settings.uplink !== '') {
    requireUplink(settings.uplink, host.bridge);
  }
  if (settings.ha_domain !== '') {
    requireDomain(settings.ha_domain);
  }
  requireSafePath('TLS certificate path', settings.tls_certificate_path);
  requireSafePath('TLS key path', settings.tls_key_path);
  requireSafePath('nginx site path', settings.nginx_site_path);
  requireSafePath('nginx main configuration path', settings.nginx_main_config_path);
  if (!settings.nginx_site_path.endsWith('.conf')) {
    throw new InvalidInputError(`invalid nginx site path "${settings.nginx_site_path}": the file name must end in .conf`);
  }
  settings.tunnel_network = requireTunnelNetwork(settings.tunnel_network, host);
  requireTunnelPorts(settings.tunnel_port_start);
  settings.blocked_networks = requireBlockedNetworks(settings.blocked_networks);
  return settings;
}

function requireUplink(value: string, bridge: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(value)) {
    throw new InvalidInputError(`invalid uplink "${value}": use an interface name of 1–15 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  if (value === bridge) {
    throw new InvalidInputError(`invalid uplink "${value}": it is the VM bridge; give the interface that leads to the internet, such as eth0`);
  }
  const prefix = RESERVED_INTERFACE_PREFIXES.find((reserved) => value.startsWith(reserved) && /^\d|^[0-9a-f]{8}$/.test(value.slice(reserved.length)));
  if (prefix) {
    throw new InvalidInputError(`invalid uplink "${value}": names starting with "${prefix}" and a number belong to vome's own VM and WireGuard devices`);
  }
}

function requireDomain(value: string): void {
  const labels = value.split('.');
  if (labels.length < 2 || value.length > 190 || !labels.every(isDnsLabel)) {
    throw new InvalidInputError(
      `invalid HA domain "${value}": use a lower-case DNS name of at least two labels and at most 190 characters, such as ha.example.com`,
    );
  }
}

function requireSafePath(field: string, value: string): void {
  if (!SAFE_PATH.test(value) || value.split('/').includes('..')) {
    throw new InvalidInputError(`invalid ${field} "${value}": use an absolute path of letters, digits and . _ / @ + - without ".." parts`);
  }
}

function requireTunnelNetwork(value: string, host: Pick<Host, 'bridge_cidr' | 'ssh_address'>): string {
  const network = parseCidr(value);
  if (network.prefix > 24) {
    throw new InvalidInputError(`invalid tunnel network "${value}": it must be a /24 or larger, because each server gets its own /24`);
  }
  const aligned = `${numberToIpv4(network.network)}/${network.prefix}`;
  if (ipv4ToNumber(network.address) !== network.network) {
    throw new InvalidInputError(`invalid tunnel network "${value}": the address is not the network's first address; did you mean ${aligned}?`);
  }
  if (!PRIVATE_RANGES.some((range) => network.network >= range.network && network.broadcast <= range.broadcast)) {
    throw new InvalidInputError(
      `invalid tunnel network "${value}": use a range inside 10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12 or 192.168.0.0/16, such as 10.100.0.0/16`,
    );
  }
  const bridge = parseCidr(host.bridge_cidr);
  if (network.network <= bridge.broadcast && bridge.network <= network.broadcast) {
    throw new InvalidInputError(
      `invalid tunnel network "${value}": it overlaps the bridge network ${numberToIpv4(bridge.network)}/${bridge.prefix}; pick a range outside it, such as 10.100.0.0/16`,
    );
  }
  if (host.ssh_address && /^\d+\.\d+\.\d+\.\d+$/.test(host.ssh_address)) {
    const ssh = ipv4ToNumber(host.ssh_address);
    if (ssh >= network.network && ssh <= network.broadcast) {
      throw new InvalidInputError(`invalid tunnel network "${value}": it contains the host's SSH address ${host.ssh_address}, so tunnels would cut the host off`);
    }
  }
  return aligned;
}

function requireBlockedNetworks(value: string): string {
  if (value === '' || value === 'none') {
    return '';
  }
  const networks = value.split(',').map((entry) => entry.trim());
  for (const entry of networks) {
    const network = parseCidr(entry);
    if (ipv4ToNumber(network.address) !== network.network) {
      throw new InvalidInputError(
        `invalid blocked network "${entry}": the address is not the network's first address; did you mean ${numberToIpv4(network.network)}/${network.prefix}?`,
      );
    }
  }
  return networks.join(',');
}

function requireTunnelPorts(start: number): void {
  if (!Number.isInteger(start) || start < 1024 || start > 65_535) {
    throw new InvalidInputError(`invalid tunnel port start ${start}: use a whole number from 1024 to 65535`);
  }
}
