import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { diffFirewall, firewallRestoreScript, type HostFirewall, type JumpPlacement } from '../../../src/network/firewall-host.js';
import { FIREWALL_JUMPS, type FirewallRuleset, formatVomeChains, parseSavedRules, renderFirewall } from '../../../src/network/firewall-rules.js';
import type { NetworkHost, NetworkModel, NetworkServer, NetworkTunnel } from '../../../src/network/network-model.js';

const HOST: NetworkHost = {
  name: 'ha-1',
  bridge: 'br-haos',
  bridgeAddress: '10.232.0.1',
  bridgeNetwork: '10.232.0.0/24',
  uplink: 'eth0',
  blockedNetworks: [],
  haDomain: 'ha.example.test',
  tlsCertificatePath: '/etc/vome/tls/ha.crt',
  tlsKeyPath: '/etc/vome/tls/ha.key',
  nginxSitePath: '/etc/nginx/conf.d/vome.conf',
  nginxMainConfigPath: '/etc/nginx/nginx.conf',
  networkDir: '/var/lib/vome/host/network',
};

const TUNNEL: NetworkTunnel = {
  interface: 'vwg51820',
  listenPort: 51820,
  table: 51820,
  rulePriority: 10_000,
  network: '10.100.0.0/24',
  address: '10.100.0.1',
  publicKey: 'x'.repeat(43) + '=',
  privateKeyPath: '/var/lib/vome/host/network/wireguard/vwg51820.key',
  peers: [],
};

const KITCHEN: NetworkServer = {
  id: '2f0d0c4e-8a51-4d62-9d43-5a8f2b1e7c90',
  name: 'kitchen',
  subdomain: 'kitchen',
  ipv4: '10.232.0.10',
  mac: '52:54:00:1a:2b:3c',
  haPort: 8123,
  tap: 'vm0ae8000a',
  tunnel: null,
};

const GARAGE: NetworkServer = {
  id: '7c1e2a3b-0000-4000-8000-000000000002',
  name: 'garage',
  subdomain: 'garage',
  ipv4: '10.232.0.11',
  mac: '52:54:00:1a:2b:3d',
  haPort: 80,
  tap: 'vm0ae8000b',
  tunnel: TUNNEL,
};

const model = (...servers: NetworkServer[]): NetworkModel => ({ host: HOST, servers });

const text = (...lines: string[]): string => `${lines.join('\n')}\n`;

const FILTER_CHAINS = [':VOME-FORWARD - [0:0]', ':VOME-FROM-VM - [0:0]', ':VOME-INPUT - [0:0]', ':VOME-SPOOF - [0:0]', ':VOME-TO-VM - [0:0]'];

const BRIDGE_FORWARD = ['-A VOME-FORWARD -i br-haos -j VOME-SPOOF', '-A VOME-FORWARD -i br-haos -j VOME-FROM-VM', '-A VOME-FORWARD -o br-haos -j VOME-TO-VM'];

const BRIDGE_INPUT = [
  '-A VOME-INPUT -i br-haos -j VOME-SPOOF',
  '-A VOME-INPUT -i br-haos -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  '-A VOME-INPUT -i br-haos -p udp -m udp --dport 67 -j ACCEPT',
  '-A VOME-INPUT -d 10.232.0.1/32 -i br-haos -p udp -m udp --dport 53 -j ACCEPT',
  '-A VOME-INPUT -d 10.232.0.1/32 -i br-haos -p tcp -m tcp --dport 53 -j ACCEPT',
  '-A VOME-INPUT -i br-haos -j DROP',
];

const NGINX_INPUT = ['-A VOME-INPUT -p tcp -m tcp --dport 80 -j ACCEPT', '-A VOME-INPUT -p tcp -m tcp --dport 443 -j ACCEPT'];

const KITCHEN_SPOOF = [
  '-A VOME-SPOOF -p udp -m physdev --physdev-in vm0ae8000a -m udp --dport 67 -m u32 ! --u32 "0x0>>0x16&0x3c@0x24=0x5254001a&&0x0>>0x16&0x3c@0x28>>0x10=0x2b3c" -j DROP',
  '-A VOME-SPOOF -s 10.232.0.10/32 -m physdev --physdev-in vm0ae8000a -m mac --mac-source 52:54:00:1a:2b:3c -j RETURN',
  '-A VOME-SPOOF -s 0.0.0.0/32 -p udp -m physdev --physdev-in vm0ae8000a -m mac --mac-source 52:54:00:1a:2b:3c -m udp --sport 68 --dport 67 -j RETURN',
];

const GARAGE_SPOOF = [
  '-A VOME-SPOOF -p udp -m physdev --physdev-in vm0ae8000b -m udp --dport 67 -m u32 ! --u32 "0x0>>0x16&0x3c@0x24=0x5254001a&&0x0>>0x16&0x3c@0x28>>0x10=0x2b3d" -j DROP',
  '-A VOME-SPOOF -s 10.232.0.11/32 -m physdev --physdev-in vm0ae8000b -m mac --mac-source 52:54:00:1a:2b:3d -j RETURN',
  '-A VOME-SPOOF -s 0.0.0.0/32 -p udp -m physdev --physdev-in vm0ae8000b -m mac --mac-source 52:54:00:1a:2b:3d -m udp --sport 68 --dport 67 -j RETURN',
];

const V6_NO_TUNNELS = text(
  '*filter',
  ':VOME-FORWARD - [0:0]',
  ':VOME-INPUT - [0:0]',
  '-A VOME-FORWARD -i br-haos -j DROP',
  '-A VOME-FORWARD -o br-haos -j DROP',
  '-A VOME-INPUT -i br-haos -j DROP',
  'COMMIT',
);

const V6_ONE_TUNNEL = text(
  '*filter',
  ':VOME-FORWARD - [0:0]',
  ':VOME-INPUT - [0:0]',
  '-A VOME-FORWARD -i br-haos -j DROP',
  '-A VOME-FORWARD -o br-haos -j DROP',
  '-A VOME-FORWARD -i vwg51820 -j DROP',
  '-A VOME-FORWARD -o vwg51820 -j DROP',
  '-A VOME-INPUT -i br-haos -j DROP',
  '-A VOME-INPUT -i vwg51820 -j DROP',
  'COMMIT',
);

/** One server's bridge rules, by kind; the ruleset groups each kind over all servers. */
interface TapRules {
  ipv4: string;
  arp: string;
  dhcp: string;
  arpProbe: string;
  dropFrom: string;
  to: string;
  dropTo: string;
}

const KITCHEN_TAP: TapRules = {
  ipv4: '-A VOME-PREROUTING -p IPv4 -s 52:54:00:1a:2b:3c -i vm0ae8000a --ip-src 10.232.0.10 -j RETURN',
  arp: '-A VOME-PREROUTING -p ARP -s 52:54:00:1a:2b:3c -i vm0ae8000a --arp-ip-src 10.232.0.10 --arp-mac-src 52:54:00:1a:2b:3c -j RETURN',
  dhcp: '-A VOME-PREROUTING -p IPv4 -s 52:54:00:1a:2b:3c -i vm0ae8000a --ip-src 0.0.0.0 --ip-proto udp --ip-sport 68 --ip-dport 67 -j RETURN',
  arpProbe: '-A VOME-PREROUTING -p ARP -s 52:54:00:1a:2b:3c -i vm0ae8000a --arp-ip-src 0.0.0.0 --arp-mac-src 52:54:00:1a:2b:3c -j RETURN',
  dropFrom: '-A VOME-PREROUTING -i vm0ae8000a -j DROP',
  to: '-A VOME-POSTROUTING -d 52:54:00:1a:2b:3c -o vm0ae8000a -j RETURN',
  dropTo: '-A VOME-POSTROUTING -o vm0ae8000a -j DROP',
};

const GARAGE_TAP: TapRules = {
  ipv4: '-A VOME-PREROUTING -p IPv4 -s 52:54:00:1a:2b:3d -i vm0ae8000b --ip-src 10.232.0.11 -j RETURN',
  arp: '-A VOME-PREROUTING -p ARP -s 52:54:00:1a:2b:3d -i vm0ae8000b --arp-ip-src 10.232.0.11 --arp-mac-src 52:54:00:1a:2b:3d -j RETURN',
  dhcp: '-A VOME-PREROUTING -p IPv4 -s 52:54:00:1a:2b:3d -i vm0ae8000b --ip-src 0.0.0.0 --ip-proto udp --ip-sport 68 --ip-dport 67 -j RETURN',
  arpProbe: '-A VOME-PREROUTING -p ARP -s 52:54:00:1a:2b:3d -i vm0ae8000b --arp-ip-src 0.0.0.0 --arp-mac-src 52:54:00:1a:2b:3d -j RETURN',
  dropFrom: '-A VOME-PREROUTING -i vm0ae8000b -j DROP',
  to: '-A VOME-POSTROUTING -d 52:54:00:1a:2b:3d -o vm0ae8000b -j RETURN',
  dropTo: '-A VOME-POSTROUTING -o vm0ae8000b -j DROP',
};

const BRIDGE_CHAINS = ['*filter', ':VOME-FORWARD RETURN', '-A VOME-FORWARD -i vm+ -o vm+ -j DROP', '*nat', ':VOME-POSTROUTING RETURN', ':VOME-PREROUTING RETURN'];

const MULTICAST_TO_TAPS = '-A VOME-POSTROUTING -d Multicast -j RETURN';

/** The bridge family's text for one server: no COMMIT line, as `ebtables-save` prints it. */
const oneTapBridge = (tap: TapRules): string =>
  text(...BRIDGE_CHAINS, MULTICAST_TO_TAPS, tap.to, tap.dropTo, tap.ipv4, tap.arp, tap.dhcp, tap.arpProbe, tap.dropFrom);

const BRIDGE_BOTH = text(
  ...BRIDGE_CHAINS,
  MULTICAST_TO_TAPS,
  KITCHEN_TAP.to,
  GARAGE_TAP.to,
  KITCHEN_TAP.dropTo,
  GARAGE_TAP.dropTo,
  KITCHEN_TAP.ipv4,
  GARAGE_TAP.ipv4,
  KITCHEN_TAP.arp,
  GARAGE_TAP.arp,
  KITCHEN_TAP.dhcp,
  GARAGE_TAP.dhcp,
  KITCHEN_TAP.arpProbe,
  GARAGE_TAP.arpProbe,
  KITCHEN_TAP.dropFrom,
  GARAGE_TAP.dropFrom,
);

/** A server's bridge rules in the order they appear in the ruleset: VOME-POSTROUTING first. */
const tapLines = (tap: TapRules): string[] => [tap.to, tap.dropTo, tap.ipv4, tap.arp, tap.dhcp, tap.arpProbe, tap.dropFrom];

const NO_SERVERS: FirewallRuleset = {
  v4: text(
    '*filter',
    ...FILTER_CHAINS,
    ...BRIDGE_FORWARD,
    '-A VOME-FROM-VM -d 169.254.0.0/16 -j DROP',
    '-A VOME-FROM-VM -o eth0 -j ACCEPT',
    '-A VOME-FROM-VM -j DROP',
    ...BRIDGE_INPUT,
    ...NGINX_INPUT,
    '-A VOME-SPOOF -j DROP',
    '-A VOME-TO-VM -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A VOME-TO-VM -j DROP',
    'COMMIT',
    '*nat',
    ':VOME-POSTROUTING - [0:0]',
    'COMMIT',
  ),
  v6: V6_NO_TUNNELS,
  bridge: text(...BRIDGE_CHAINS, MULTICAST_TO_TAPS),
};

const KITCHEN_ONLY: FirewallRuleset = {
  v4: text(
    '*filter',
    ...FILTER_CHAINS,
    ...BRIDGE_FORWARD,
    '-A VOME-FROM-VM -d 169.254.0.0/16 -j DROP',
    '-A VOME-FROM-VM -o eth0 -j ACCEPT',
    '-A VOME-FROM-VM -j DROP',
    ...BRIDGE_INPUT,
    ...NGINX_INPUT,
    ...KITCHEN_SPOOF,
    '-A VOME-SPOOF -j DROP',
    '-A VOME-TO-VM -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A VOME-TO-VM -j DROP',
    'COMMIT',
    '*nat',
    ':VOME-POSTROUTING - [0:0]',
    '-A VOME-POSTROUTING -s 10.232.0.10/32 -o eth0 -j MASQUERADE',
    'COMMIT',
  ),
  v6: V6_NO_TUNNELS,
  bridge: oneTapBridge(KITCHEN_TAP),
};

const GARAGE_ONLY: FirewallRuleset = {
  v4: text(
    '*filter',
    ...FILTER_CHAINS,
    ...BRIDGE_FORWARD,
    '-A VOME-FORWARD -i vwg51820 -j DROP',
    '-A VOME-FORWARD -o vwg51820 -j DROP',
    '-A VOME-FROM-VM -s 10.232.0.11/32 -d 10.100.0.0/24 -o vwg51820 -j ACCEPT',
    '-A VOME-FROM-VM -d 169.254.0.0/16 -j DROP',
    '-A VOME-FROM-VM -o eth0 -j ACCEPT',
    '-A VOME-FROM-VM -j DROP',
    ...BRIDGE_INPUT,
    '-A VOME-INPUT -i vwg51820 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A VOME-INPUT -i vwg51820 -j DROP',
    '-A VOME-INPUT -p udp -m udp --dport 51820 -j ACCEPT',
    ...NGINX_INPUT,
    ...GARAGE_SPOOF,
    '-A VOME-SPOOF -j DROP',
    '-A VOME-TO-VM -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A VOME-TO-VM -s 10.100.0.0/24 -d 10.232.0.11/32 -i vwg51820 -j ACCEPT',
    '-A VOME-TO-VM -j DROP',
    'COMMIT',
    '*nat',
    ':VOME-POSTROUTING - [0:0]',
    '-A VOME-POSTROUTING -s 10.232.0.11/32 -o eth0 -j MASQUERADE',
    'COMMIT',
  ),
  v6: V6_ONE_TUNNEL,
  bridge: oneTapBridge(GARAGE_TAP),
};

const BOTH: FirewallRuleset = {
  v4: text(
    '*filter',
    ...FILTER_CHAINS,
    ...BRIDGE_FORWARD,
    '-A VOME-FORWARD -i vwg51820 -j DROP',
    '-A VOME-FORWARD -o vwg51820 -j DROP',
    '-A VOME-FROM-VM -s 10.232.0.11/32 -d 10.100.0.0/24 -o vwg51820 -j ACCEPT',
    '-A VOME-FROM-VM -d 169.254.0.0/16 -j DROP',
    '-A VOME-FROM-VM -o eth0 -j ACCEPT',
    '-A VOME-FROM-VM -j DROP',
    ...BRIDGE_INPUT,
    '-A VOME-INPUT -i vwg51820 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A VOME-INPUT -i vwg51820 -j DROP',
    '-A VOME-INPUT -p udp -m udp --dport 51820 -j ACCEPT',
    ...NGINX_INPUT,
    ...KITCHEN_SPOOF,
    ...GARAGE_SPOOF,
    '-A VOME-SPOOF -j DROP',
    '-A VOME-TO-VM -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A VOME-TO-VM -s 10.100.0.0/24 -d 10.232.0.11/32 -i vwg51820 -j ACCEPT',
    '-A VOME-TO-VM -j DROP',
    'COMMIT',
    '*nat',
    ':VOME-POSTROUTING - [0:0]',
    '-A VOME-POSTROUTING -s 10.232.0.10/32 -o eth0 -j MASQUERADE',
    '-A VOME-POSTROUTING -s 10.232.0.11/32 -o eth0 -j MASQUERADE',
    'COMMIT',
  ),
  v6: V6_ONE_TUNNEL,
  bridge: BRIDGE_BOTH,
};

const TWO_TUNNELS_INPUT = [
  ...BRIDGE_INPUT,
  '-A VOME-INPUT -i vwg51821 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  '-A VOME-INPUT -i vwg51821 -j DROP',
  '-A VOME-INPUT -i vwg51820 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  '-A VOME-INPUT -i vwg51820 -j DROP',
  '-A VOME-INPUT -p udp -m udp --dport 51821 -j ACCEPT',
  '-A VOME-INPUT -p udp -m udp --dport 51820 -j ACCEPT',
  ...NGINX_INPUT,
];

/** Jump placements of a host where every jump is first. */
const JUMPS_FIRST: JumpPlacement[] = FIREWALL_JUMPS.map((jump) => ({ ...jump, positions: [1] }));

const onHost = (ruleset: FirewallRuleset, jumps: JumpPlacement[] = JUMPS_FIRST): HostFirewall => ({ ...ruleset, jumps });

describe('renderFirewall', () => {
  it.each([
    ['no servers', model(), NO_SERVERS],
    ['one server without a tunnel', model(KITCHEN), KITCHEN_ONLY],
    ['one server with a tunnel', model(GARAGE), GARAGE_ONLY],
    ['two servers, one with a tunnel', model(KITCHEN, GARAGE), BOTH],
  ])('renders %s', (_name, input, expected) => {
    const ruleset = renderFirewall(input);

    expect(ruleset.v4).toBe(expected.v4);
    expect(ruleset.v6).toBe(expected.v6);
    expect(ruleset.bridge).toBe(expected.bridge);
  });

  it('renders two tunnels in server order', () => {
    const second: NetworkServer = {
      ...KITCHEN,
      tunnel: { ...TUNNEL, interface: 'vwg51821', listenPort: 51821, network: '10.100.1.0/24', address: '10.100.1.1' },
    };
    const tables = parseSavedRules(renderFirewall(model(second, GARAGE)).v4);

    expect(tables.get('filter')?.rules.get('VOME-INPUT')).toEqual(TWO_TUNNELS_INPUT);
    expect(tables.get('filter')?.rules.get('VOME-FROM-VM')).toEqual([
      '-A VOME-FROM-VM -s 10.232.0.10/32 -d 10.100.1.0/24 -o vwg51821 -j ACCEPT',
      '-A VOME-FROM-VM -s 10.232.0.11/32 -d 10.100.0.0/24 -o vwg51820 -j ACCEPT',
      '-A VOME-FROM-VM -d 169.254.0.0/16 -j DROP',
    '-A VOME-FROM-VM -o eth0 -j ACCEPT',
      '-A VOME-FROM-VM -j DROP',
    ]);
  });

  it('writes a tunnel network by its first address', () => {
    const server = { ...GARAGE, tunnel: { ...TUNNEL, network: '10.100.0.1/24' } };
    const tables = parseSavedRules(renderFirewall(model(server)).v4);

    expect(tables.get('filter')?.rules.get('VOME-TO-VM')).toContain('-A VOME-TO-VM -s 10.100.0.0/24 -d 10.232.0.11/32 -i vwg51820 -j ACCEPT');
  });

  it.each([
    ['an upper-case MAC', model({ ...KITCHEN, mac: '52:54:00:1A:2B:3C' }), 'invalid MAC address "52:54:00:1A:2B:3C" of server "kitchen"'],
    ['a MAC with dashes', model({ ...KITCHEN, mac: '52-54-00-1a-2b-3c' }), 'invalid MAC address "52-54-00-1a-2b-3c" of server "kitchen"'],
    ['an invalid server address', model({ ...KITCHEN, ipv4: '10.232.0.300' }), 'invalid address of server "kitchen" "10.232.0.300"'],
    ['a tap name longer than 15 characters', model({ ...KITCHEN, tap: 'vm0123456789abcd' }), 'invalid tap device of server "kitchen" "vm0123456789abcd"'],
    ['a wildcard tap name', model({ ...KITCHEN, tap: 'vm+' }), 'invalid tap device of server "kitchen" "vm+"'],
    ['a tap name read as an option', model({ ...KITCHEN, tap: '-j' }), 'invalid tap device of server "kitchen" "-j"'],
    ['a bridge name with a space', { host: { ...HOST, bridge: 'br haos' }, servers: [] }, 'invalid bridge "br haos"'],
    ['an empty uplink', { host: { ...HOST, uplink: '' }, servers: [] }, 'invalid uplink ""'],
    ['the bridge as uplink', { host: { ...HOST, uplink: 'br-haos' }, servers: [] }, 'host "ha-1" uses "br-haos" as both bridge and uplink'],
    ['an invalid bridge address', { host: { ...HOST, bridgeAddress: '10.232.0' }, servers: [] }, 'invalid bridge address "10.232.0"'],
    ['listen port 0', model({ ...GARAGE, tunnel: { ...TUNNEL, listenPort: 0 } }), 'invalid listen port 0 of server "garage"'],
    ['listen port 65536', model({ ...GARAGE, tunnel: { ...TUNNEL, listenPort: 65_536 } }), 'invalid listen port 65536 of server "garage"'],
    ['a tunnel network without a prefix', model({ ...GARAGE, tunnel: { ...TUNNEL, network: '10.100.0.0' } }), 'invalid network "10.100.0.0"'],
    ['a wildcard tunnel interface', model({ ...GARAGE, tunnel: { ...TUNNEL, interface: 'vwg+' } }), 'invalid tunnel interface of server "garage" "vwg+"'],
  ])('rejects %s', (_name, input, message) => {
    expect(() => renderFirewall(input)).toThrow(InvalidInputError);
    expect(() => renderFirewall(input)).toThrow(message);
  });
});

describe('formatVomeChains', () => {
  const save = text(
    '# Generated by iptables-save v1.8.9 (nf_tables) on Fri Dec  4 22:40:21 2026',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD DROP [0:0]',
    ':DOCKER - [0:0]',
    ':VOME-INPUT - [0:0]',
    '-A INPUT -j VOME-INPUT',
    '-A FORWARD -j DOCKER',
    '-A DOCKER -d 172.17.0.2/32 -j ACCEPT',
    '-A VOME-INPUT -i br-haos -j DROP',
    'COMMIT',
    '# Completed on Fri Dec  4 22:40:21 2026',
    '*mangle',
    ':PREROUTING ACCEPT [0:0]',
    'COMMIT',
  );

  it('keeps only vome chains and their rules', () => {
    expect(formatVomeChains('ipv4', parseSavedRules(save))).toBe(text('*filter', ':VOME-INPUT - [0:0]', '-A VOME-INPUT -i br-haos -j DROP', 'COMMIT'));
  });

  it('returns an empty text for a host without vome chains', () => {
    expect(formatVomeChains('ipv4', parseSavedRules(text('*filter', ':INPUT ACCEPT [0:0]', '-A INPUT -j ACCEPT', 'COMMIT')))).toBe('');
  });

  it('reads a rendered ruleset back unchanged', () => {
    const ruleset = renderFirewall(model(KITCHEN, GARAGE));

    expect(formatVomeChains('ipv4', parseSavedRules(ruleset.v4))).toBe(ruleset.v4);
    expect(formatVomeChains('ipv6', parseSavedRules(ruleset.v6))).toBe(ruleset.v6);
    expect(formatVomeChains('bridge', parseSavedRules(ruleset.bridge))).toBe(ruleset.bridge);
  });

  const ebtablesSave = text(
    '# Generated by ebtables-save v1.8.9 (nf_tables) on Fri Dec  4 22:57:13 2026',
    '*filter',
    ':INPUT ACCEPT',
    ':FORWARD DROP',
    ':OUTPUT ACCEPT',
    '*nat',
    ':PREROUTING ACCEPT',
    ':OUTPUT ACCEPT',
    ':POSTROUTING ACCEPT',
    ':VOME-PREROUTING DROP',
    ':libvirt-I-vnet0 ACCEPT',
    '-A PREROUTING -j VOME-PREROUTING',
    '-A PREROUTING -i vnet0 -j libvirt-I-vnet0',
    '-A VOME-PREROUTING -i vm0ae8000a -j DROP',
    '-A libvirt-I-vnet0 -p IPv6 -j DROP',
    '# Completed on Fri Dec  4 22:57:13 2026',
  );

  it('keeps only vome bridge chains, with the policy the host has', () => {
    expect(formatVomeChains('bridge', parseSavedRules(ebtablesSave))).toBe(text('*nat', ':VOME-PREROUTING DROP', '-A VOME-PREROUTING -i vm0ae8000a -j DROP'));
  });
});

describe('diffFirewall', () => {
  const desired = renderFirewall(model(KITCHEN, GARAGE));

  it('finds nothing when the host matches', () => {
    expect(diffFirewall(desired, onHost(desired))).toEqual([]);
  });

  it('blocks host networks before the uplink', () => {
    const blocked = renderFirewall({ host: { ...HOST, blockedNetworks: ['10.0.0.0/8', '192.168.0.0/16'] }, servers: [] }).v4.split('\n');
    const uplink = blocked.indexOf('-A VOME-FROM-VM -o eth0 -j ACCEPT');
    expect(blocked.slice(uplink - 3, uplink)).toEqual([
      '-A VOME-FROM-VM -d 169.254.0.0/16 -j DROP',
      '-A VOME-FROM-VM -d 10.0.0.0/8 -j DROP',
      '-A VOME-FROM-VM -d 192.168.0.0/16 -j DROP',
    ]);
  });

  it('rejects a blocked network that is not a CIDR', () => {
    expect(() => renderFirewall({ host: { ...HOST, blockedNetworks: ['10.0.0.0/8 -j ACCEPT'] }, servers: [] })).toThrow('invalid blocked network "10.0.0.0/8 -j ACCEPT"');
  });

  it('lists every chain, rule and jump for an empty host', () => {
    const empty: HostFirewall = { v4: '', v6: '', bridge: '', jumps: FIREWALL_JUMPS.map((jump) => ({ ...jump, positions: [] })) };
    const changes = diffFirewall(desired, empty);
    const ruleCount = [desired.v4, desired.v6, desired.bridge].flatMap((family) => family.split('\n')).filter((line) => line.startsWith('-A ')).length;

    expect(changes.filter((change) => change.action === 'remove')).toEqual([]);
    expect(changes.filter((change) => change.item.includes(' -N '))).toHaveLength(11);
    expect(changes.filter((change) => change.item.includes(' -A '))).toHaveLength(ruleCount);
    expect(changes.filter((change) => change.item.includes(' -I '))).toHaveLength(8);
  });

  it('lists the rules of an added server', () => {
    expect(diffFirewall(BOTH, onHost(GARAGE_ONLY))).toEqual([
      ...KITCHEN_SPOOF.map((line) => ({ part: 'firewall', action: 'add', item: `ipv4 ${line}` })),
      { part: 'firewall', action: 'add', item: 'ipv4 -t nat -A VOME-POSTROUTING -s 10.232.0.10/32 -o eth0 -j MASQUERADE' },
      ...tapLines(KITCHEN_TAP).map((line) => ({ part: 'firewall', action: 'add', item: `bridge -t nat ${line}` })),
    ]);
  });

  it('lists the rules of a removed server', () => {
    expect(diffFirewall(KITCHEN_ONLY, onHost(BOTH))).toEqual([
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-FORWARD -i vwg51820 -j DROP' },
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-FORWARD -o vwg51820 -j DROP' },
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-FROM-VM -s 10.232.0.11/32 -d 10.100.0.0/24 -o vwg51820 -j ACCEPT' },
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-INPUT -i vwg51820 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT' },
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-INPUT -i vwg51820 -j DROP' },
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-INPUT -p udp -m udp --dport 51820 -j ACCEPT' },
      ...GARAGE_SPOOF.map((line) => ({ part: 'firewall', action: 'remove', item: `ipv4 ${line}` })),
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-TO-VM -s 10.100.0.0/24 -d 10.232.0.11/32 -i vwg51820 -j ACCEPT' },
      { part: 'firewall', action: 'remove', item: 'ipv4 -t nat -A VOME-POSTROUTING -s 10.232.0.11/32 -o eth0 -j MASQUERADE' },
      { part: 'firewall', action: 'remove', item: 'ipv6 -A VOME-FORWARD -i vwg51820 -j DROP' },
      { part: 'firewall', action: 'remove', item: 'ipv6 -A VOME-FORWARD -o vwg51820 -j DROP' },
      { part: 'firewall', action: 'remove', item: 'ipv6 -A VOME-INPUT -i vwg51820 -j DROP' },
      ...tapLines(GARAGE_TAP).map((line) => ({ part: 'firewall', action: 'remove', item: `bridge -t nat ${line}` })),
    ]);
  });

  it('lists a moved rule as a remove and an add', () => {
    const moved = desired.v4.replace(`${KITCHEN_SPOOF[0]}\n`, '').replace('-A VOME-SPOOF -j DROP\n', `-A VOME-SPOOF -j DROP\n${KITCHEN_SPOOF[0]}\n`);

    expect(diffFirewall(desired, onHost({ ...desired, v4: moved }))).toEqual([
      { part: 'firewall', action: 'remove', item: `ipv4 ${KITCHEN_SPOOF[0]}` },
      { part: 'firewall', action: 'add', item: `ipv4 ${KITCHEN_SPOOF[0]}` },
    ]);
  });

  it('lists a rule added on the host by hand as a remove', () => {
    const extra = desired.v4.replace('-A VOME-TO-VM -j DROP\n', '-A VOME-TO-VM -j ACCEPT\n-A VOME-TO-VM -j DROP\n');

    expect(diffFirewall(desired, onHost({ ...desired, v4: extra }))).toEqual([
      { part: 'firewall', action: 'remove', item: 'ipv4 -A VOME-TO-VM -j ACCEPT' },
    ]);
  });

  it('lists a missing chain', () => {
    const withoutNat = desired.v4.slice(0, desired.v4.indexOf('*nat'));

    expect(diffFirewall(desired, onHost({ ...desired, v4: withoutNat }))).toEqual([
      { part: 'firewall', action: 'add', item: 'ipv4 -t nat -N VOME-POSTROUTING' },
      { part: 'firewall', action: 'add', item: 'ipv4 -t nat -A VOME-POSTROUTING -s 10.232.0.10/32 -o eth0 -j MASQUERADE' },
      { part: 'firewall', action: 'add', item: 'ipv4 -t nat -A VOME-POSTROUTING -s 10.232.0.11/32 -o eth0 -j MASQUERADE' },
    ]);
  });

  it.each([
    ['missing', [], [{ part: 'firewall', action: 'add', item: 'ipv4 -I FORWARD 1 -j VOME-FORWARD' }]],
    [
      'second',
      [2],
      [
        { part: 'firewall', action: 'remove', item: 'ipv4 -A FORWARD -j VOME-FORWARD (rule 2)' },
        { part: 'firewall', action: 'add', item: 'ipv4 -I FORWARD 1 -j VOME-FORWARD' },
      ],
    ],
    ['first and again third', [1, 3], [{ part: 'firewall', action: 'remove', item: 'ipv4 -A FORWARD -j VOME-FORWARD (rule 3)' }]],
  ])('lists a jump that is %s', (_name, positions, expected) => {
    const jumps = JUMPS_FIRST.map((jump) => (jump.family === 'ipv4' && jump.builtin === 'FORWARD' ? { ...jump, positions } : jump));

    expect(diffFirewall(desired, onHost(desired, jumps))).toEqual(expected);
  });

  it('names the nat table in a nat jump', () => {
    const jumps = JUMPS_FIRST.map((jump) => (jump.family === 'ipv4' && jump.builtin === 'POSTROUTING' ? { ...jump, positions: [] } : jump));

    expect(diffFirewall(desired, onHost(desired, jumps))).toEqual([
      { part: 'firewall', action: 'add', item: 'ipv4 -t nat -I POSTROUTING 1 -j VOME-POSTROUTING' },
    ]);
  });

  it('lists a bridge jump that is second', () => {
    const jumps = JUMPS_FIRST.map((jump) => (jump.family === 'bridge' && jump.builtin === 'PREROUTING' ? { ...jump, positions: [2] } : jump));

    expect(diffFirewall(desired, onHost(desired, jumps))).toEqual([
      { part: 'firewall', action: 'remove', item: 'bridge -t nat -A PREROUTING -j VOME-PREROUTING (rule 2)' },
      { part: 'firewall', action: 'add', item: 'bridge -t nat -I PREROUTING 1 -j VOME-PREROUTING' },
    ]);
  });

  it('lists a changed bridge chain policy', () => {
    const bridge = desired.bridge.replace(':VOME-PREROUTING RETURN', ':VOME-PREROUTING ACCEPT');

    expect(diffFirewall(desired, onHost({ ...desired, bridge }))).toEqual([
      { part: 'firewall', action: 'remove', item: 'bridge -t nat -P VOME-PREROUTING ACCEPT' },
      { part: 'firewall', action: 'add', item: 'bridge -t nat -P VOME-PREROUTING RETURN' },
    ]);
  });

  it('lists a missing bridge chain', () => {
    const bridge = desired.bridge
      .split('\n')
      .filter((line) => !line.includes('VOME-POSTROUTING'))
      .join('\n');

    expect(diffFirewall(desired, onHost({ ...desired, bridge }))).toEqual([
      { part: 'firewall', action: 'add', item: 'bridge -t nat -N VOME-POSTROUTING' },
      ...[MULTICAST_TO_TAPS, KITCHEN_TAP.to, GARAGE_TAP.to, KITCHEN_TAP.dropTo, GARAGE_TAP.dropTo].map((line) => ({
        part: 'firewall',
        action: 'add',
        item: `bridge -t nat ${line}`,
      })),
    ]);
  });

  it('lists one server added among 1,000', () => {
    const servers = Array.from({ length: 1000 }, (_, index) => ({
      ...KITCHEN,
      name: `server-${index}`,
      ipv4: `10.232.${Math.floor((index + 10) / 256)}.${(index + 10) % 256}`,
      mac: `52:54:00:00:${Math.floor(index / 256).toString(16).padStart(2, '0')}:${(index % 256).toString(16).padStart(2, '0')}`,
      tap: `vm${index.toString(16).padStart(8, '0')}`,
    }));
    const before = renderFirewall({ host: HOST, servers: servers.filter((_, index) => index !== 500) });
    const after = renderFirewall({ host: HOST, servers });

    expect(diffFirewall(after, onHost(before)).map((change) => change.item)).toEqual([
      'ipv4 -A VOME-SPOOF -p udp -m physdev --physdev-in vm000001f4 -m udp --dport 67 -m u32 ! --u32 "0x0>>0x16&0x3c@0x24=0x52540000&&0x0>>0x16&0x3c@0x28>>0x10=0x1f4" -j DROP',
      'ipv4 -A VOME-SPOOF -s 10.232.1.254/32 -m physdev --physdev-in vm000001f4 -m mac --mac-source 52:54:00:00:01:f4 -j RETURN',
      'ipv4 -A VOME-SPOOF -s 0.0.0.0/32 -p udp -m physdev --physdev-in vm000001f4 -m mac --mac-source 52:54:00:00:01:f4 -m udp --sport 68 --dport 67 -j RETURN',
      'ipv4 -t nat -A VOME-POSTROUTING -s 10.232.1.254/32 -o eth0 -j MASQUERADE',
      'bridge -t nat -A VOME-POSTROUTING -d 52:54:00:00:01:f4 -o vm000001f4 -j RETURN',
      'bridge -t nat -A VOME-POSTROUTING -o vm000001f4 -j DROP',
      'bridge -t nat -A VOME-PREROUTING -p IPv4 -s 52:54:00:00:01:f4 -i vm000001f4 --ip-src 10.232.1.254 -j RETURN',
      'bridge -t nat -A VOME-PREROUTING -p ARP -s 52:54:00:00:01:f4 -i vm000001f4 --arp-ip-src 10.232.1.254 --arp-mac-src 52:54:00:00:01:f4 -j RETURN',
      'bridge -t nat -A VOME-PREROUTING -p IPv4 -s 52:54:00:00:01:f4 -i vm000001f4 --ip-src 0.0.0.0 --ip-proto udp --ip-sport 68 --ip-dport 67 -j RETURN',
      'bridge -t nat -A VOME-PREROUTING -p ARP -s 52:54:00:00:01:f4 -i vm000001f4 --arp-ip-src 0.0.0.0 --arp-mac-src 52:54:00:00:01:f4 -j RETURN',
      'bridge -t nat -A VOME-PREROUTING -i vm000001f4 -j DROP',
    ]);
  });
});

describe('firewallRestoreScript', () => {
  const script = firewallRestoreScript(HOST);

  it('starts with a bash shebang', () => {
    expect(script.split('\n')[0]).toBe('#!/bin/bash');
  });

  it('loads the saved files of the network folder', () => {
    expect(script).toContain('dir=/var/lib/vome/host/network\n');
    expect(script).toContain('vome_firewall_load "$dir/firewall.v4" "$dir/firewall.v6" "$dir/firewall.bridge" "$work"\n');
  });

  it('quotes a network folder with a space', () => {
    expect(firewallRestoreScript({ ...HOST, networkDir: '/srv/vome network' })).toContain("dir='/srv/vome network'\n");
  });
});
