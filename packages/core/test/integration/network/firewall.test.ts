import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FirewallRejectedError, applyFirewall, applyFirewallRuleset, diffFirewall, readFirewall } from '../../../src/network/firewall-host.js';
import { FIREWALL_JUMPS, renderFirewall } from '../../../src/network/firewall-rules.js';
import type { NetworkHost, NetworkModel, NetworkServer } from '../../../src/network/network-model.js';
import type { CommandRunner } from '../../../src/runner/command-runner.js';
import { rejection } from '../../support/fixtures.js';
import { Listener, PROBE_TIMEOUT_MS, dhcpClientSend, icmpProbe, tcpProbe, udpSend } from '../../support/firewall-probes.js';
import { type TestNamespace, createTestNamespace } from '../../support/network-namespace.js';
import { hasCommand, isRoot, requirement } from '../../support/requirements.js';

const tools = requirement(
  isRoot && ['ip', 'bridge', 'iptables-restore', 'ip6tables-restore', 'ebtables-restore', 'ebtables-save', 'flock', 'ping'].every((tool) => hasCommand(tool)),
  'firewall tests need root and ip, bridge, iptables, ebtables, flock and ping (packages iproute2, iptables, util-linux, iputils-ping)',
);

// The host's uplink network plays the internet, and the tunnel namespace
// plays server A's WireGuard peer.
const BRIDGE_ADDRESS = '10.232.0.1';
const UPLINK_ADDRESS = '198.51.100.1';
const INTERNET_ADDRESS = '198.51.100.2';
const TUNNEL_HOST_ADDRESS = '10.100.0.1';
const PEER_ADDRESS = '10.100.0.2';
const INTERNET_PORT = 7000;
const PEER_PORT = 7100;
const OTHER_HOST_PORT = 5000;

const SERVER_A: NetworkServer = {
  id: 'a0000000-0000-4000-8000-00000000000a',
  name: 'kitchen',
  subdomain: 'kitchen',
  ipv4: '10.232.0.10',
  mac: '52:54:00:fa:00:0a',
  haPort: 8123,
  tap: 'vm0ae8000a',
  tunnel: {
    interface: 'vwg51820',
    listenPort: 51820,
    table: 51820,
    rulePriority: 10_000,
    network: '10.100.0.0/24',
    address: TUNNEL_HOST_ADDRESS,
    publicKey: `${'a'.repeat(43)}=`,
    privateKeyPath: '/nonexistent/vwg51820.key',
    peers: [],
  },
};

// B's tunnel interface does not exist on the test host: iptables matches
// interface names, so its rules load all the same.
const SERVER_B: NetworkServer = {
  id: 'b0000000-0000-4000-8000-00000000000b',
  name: 'garage',
  subdomain: 'garage',
  ipv4: '10.232.0.11',
  mac: '52:54:00:fa:00:0b',
  haPort: 80,
  tap: 'vm0ae8000b',
  tunnel: {
    interface: 'vwg51821',
    listenPort: 51821,
    table: 51821,
    rulePriority: 10_001,
    network: '10.100.1.0/24',
    address: '10.100.1.1',
    publicKey: `${'b'.repeat(43)}=`,
    privateKeyPath: '/nonexistent/vwg51821.key',
    peers: [],
  },
};

/** Rules of a host running Docker and libvirt, with FORWARD and INPUT policies of DROP and SSH allowed. */
const OTHER_TOOLS_RULES = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWO - [0:0]
:LIBVIRT_FWX - [0:0]
:LIBVIRT_INP - [0:0]
:LIBVIRT_OUT - [0:0]
-A INPUT -j LIBVIRT_INP
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -j LIBVIRT_FWX
-A FORWARD -j LIBVIRT_FWI
-A FORWARD -j LIBVIRT_FWO
-A OUTPUT -j LIBVIRT_OUT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
-A LIBVIRT_FWI -d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWO -s 192.168.122.0/24 -i virbr0 -j ACCEPT
-A LIBVIRT_FWO -i virbr0 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 53 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p udp -m udp --dport 68 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:LIBVIRT_PRT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -j LIBVIRT_PRT
-A DOCKER -i docker0 -j RETURN
-A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -j MASQUERADE
COMMIT
`;

/**
 * ebtables rules in the form libvirt's nwfilter writes them, for a port that
 * is not vome's, and a bridge FORWARD policy of DROP.
 */
const OTHER_TOOLS_RULES_BRIDGE = `*filter
:INPUT ACCEPT
:FORWARD DROP
:OUTPUT ACCEPT
*nat
:PREROUTING ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:libvirt-I-vnet0 ACCEPT
:libvirt-O-vnet0 ACCEPT
-A PREROUTING -i vnet0 -j libvirt-I-vnet0
-A POSTROUTING -o vnet0 -j libvirt-O-vnet0
-A libvirt-I-vnet0 -s ! 52:54:00:99:00:01 -j DROP
-A libvirt-I-vnet0 -p IPv6 -j DROP
-A libvirt-O-vnet0 -p IPv6 -j DROP
`;

const OTHER_TOOLS_RULES_V6 = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
`;

let hostNs: TestNamespace;
let tenantA: TestNamespace;
let tenantB: TestNamespace;
let internet: TestNamespace;
let peer: TestNamespace;
let runner: CommandRunner;
let networkDir: string;
let host: NetworkHost;
let model: NetworkModel;
const listeners: Record<string, Listener> = {};
let probeCount = 0;

/** Returns a datagram text that no other probe uses. */
function marker(): string {
  probeCount += 1;
  return `probe-${probeCount}`;
}

/** `iptables-save`, `ip6tables-save` and `ebtables-save` output without comments and counters. */
function savedRules(): string {
  const clean = (text: string): string =>
    text
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .map((line) => line.replace(/\[\d+:\d+\]/, '[0:0]'))
      .join('\n');
  return ['iptables-save', 'ip6tables-save', 'ebtables-save'].map((tool) => clean(hostNs.exec(tool))).join('');
}

/** Flushes and deletes every chain of the host namespace, and its bridge tables, as a reboot does. */
function flushAll(): void {
  hostNs.exec('sh', [
    '-c',
    'iptables -F; iptables -X; iptables -t nat -F; iptables -t nat -X; ip6tables -F; ip6tables -X; ebtables -t filter --init-table; ebtables -t nat --init-table',
  ]);
}

/** Returns the rules of the bridge family's nat POSTROUTING chain, as `ebtables-save` prints them. */
function postroutingRulesOfBridge(): string[] {
  return hostNs
    .exec('ebtables-save')
    .split('\n')
    .filter((line) => line.startsWith('-A POSTROUTING '));
}

/** Jump positions of a host where every jump to vome's chains is its built-in chain's first rule. */
const ALL_JUMPS_FIRST = FIREWALL_JUMPS.map(() => [1]);

/** Returns the bridge port on which br-haos has learned a MAC address, or null when it has none. */
function learnedPort(mac: string): string | null {
  const entry = hostNs
    .exec('bridge', ['fdb', 'show', 'br', 'br-haos'])
    .split('\n')
    .find((line) => line.startsWith(`${mac} dev `) && !line.includes('permanent'));
  return entry?.split(' ')[2] ?? null;
}

/**
 * Waits up to PROBE_TIMEOUT_MS for a namespace's neighbour entry for an
 * address on eth0 to have a MAC, and returns that MAC, or null.
 */
async function neighbourMacSeenBy(namespace: TestNamespace, address: string): Promise<string | null> {
  const deadline = Date.now() + PROBE_TIMEOUT_MS;
  for (;;) {
    const entry = namespace.exec('ip', ['-4', 'neigh', 'show', address, 'dev', 'eth0']);
    const mac = / lladdr ([0-9a-f:]+)/.exec(entry)?.[1] ?? null;
    if (mac !== null || Date.now() > deadline) {
      return mac;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Returns the MAC address of the host's neighbour entry for an address on br-haos, or null when it has none. */
function neighbourMac(address: string): string | null {
  const entry = hostNs.exec('ip', ['-4', 'neigh', 'show', address, 'dev', 'br-haos']);
  return / lladdr ([0-9a-f:]+)/.exec(entry)?.[1] ?? null;
}

/** Sends a UDP datagram and returns the address the listener saw it from, or null when it did not arrive. */
async function udpArrival(from: TestNamespace, listener: Listener, address: string, port: number, source = '', chaddr = ''): Promise<string | null> {
  const data = marker();
  await udpSend(from.name, address, port, data, source, chaddr);
  return (await listener.waitForData(data))?.from ?? null;
}

function setUpHost(): void {
  hostNs.exec('sh', [
    '-c',
    `set -e
sysctl -qw net.ipv4.ip_forward=1
ip link add br-haos type bridge
ip addr add ${BRIDGE_ADDRESS}/24 dev br-haos
ip link set br-haos up
ip link add up0 type veth peer name eth0 netns ${internet.name}
ip addr add ${UPLINK_ADDRESS}/24 dev up0
ip link set up0 up
ip route add default via ${INTERNET_ADDRESS}
ip link add vwg51820 type veth peer name eth0 netns ${peer.name}
ip addr add ${TUNNEL_HOST_ADDRESS}/24 dev vwg51820
ip link set vwg51820 up`,
  ]);
  for (const [tenant, server] of [
    [tenantA, SERVER_A],
    [tenantB, SERVER_B],
  ] as const) {
    hostNs.exec('sh', ['-c', `set -e\nip link add ${server.tap} type veth peer name eth0 netns ${tenant.name}\nip link set ${server.tap} master br-haos up`]);
    tenant.exec('sh', [
      '-c',
      `set -e
ip link set eth0 address ${server.mac}
ip addr add ${server.ipv4}/24 dev eth0
ip link set eth0 up
ip route add default via ${BRIDGE_ADDRESS}`,
    ]);
  }
  internet.exec('sh', [
    '-c',
    `set -e
ip addr add ${INTERNET_ADDRESS}/24 dev eth0
ip link set eth0 up
ip route add 10.232.0.0/24 via ${UPLINK_ADDRESS}`,
  ]);
  peer.exec('sh', ['-c', `set -e\nip addr add ${PEER_ADDRESS}/24 dev eth0\nip link set eth0 up\nip route add default via ${TUNNEL_HOST_ADDRESS}`]);
}

beforeAll(async () => {
  if (!tools) {
    return;
  }
  hostNs = createTestNamespace('vt-fwhost');
  tenantA = createTestNamespace('vt-fwa');
  tenantB = createTestNamespace('vt-fwb');
  internet = createTestNamespace('vt-fwnet');
  peer = createTestNamespace('vt-fwpeer');
  setUpHost();

  networkDir = mkdtempSync(join(tmpdir(), 'vome-firewall-'));
  host = {
    name: 'ha-fw',
    bridge: 'br-haos',
    bridgeAddress: BRIDGE_ADDRESS,
    bridgeNetwork: '10.232.0.0/24',
    uplink: 'up0',
    blockedNetworks: [],
    haDomain: 'ha.example.test',
    tlsCertificatePath: '/nonexistent/ha.crt',
    tlsKeyPath: '/nonexistent/ha.key',
    nginxSitePath: '/nonexistent/vome.conf',
    nginxMainConfigPath: '/nonexistent/nginx.conf',
    networkDir: join(networkDir, 'network'),
  };
  model = { host, servers: [SERVER_A, SERVER_B] };
  runner = hostNs.runner('ha-fw');

  const started = await Promise.all([
    Listener.start(tenantA.name, 'tcp', '0.0.0.0', SERVER_A.haPort),
    Listener.start(tenantB.name, 'tcp', '0.0.0.0', SERVER_B.haPort),
    Listener.start(tenantB.name, 'udp', '0.0.0.0', 9000),
    Listener.start(tenantA.name, 'udp', '0.0.0.0', 9000),
    Listener.start(hostNs.name, 'tcp', '0.0.0.0', 22),
    Listener.start(hostNs.name, 'tcp', '0.0.0.0', 80),
    Listener.start(hostNs.name, 'udp', BRIDGE_ADDRESS, 53),
    Listener.start(hostNs.name, 'udp', '0.0.0.0', 67),
    Listener.start(hostNs.name, 'udp', BRIDGE_ADDRESS, OTHER_HOST_PORT),
    Listener.start(internet.name, 'tcp', '0.0.0.0', INTERNET_PORT),
    Listener.start(internet.name, 'udp', '0.0.0.0', INTERNET_PORT),
    Listener.start(peer.name, 'tcp', '0.0.0.0', PEER_PORT),
    Listener.start(peer.name, 'udp', '0.0.0.0', PEER_PORT),
  ]);
  const names = ['haA', 'haB', 'udpB', 'udpA', 'ssh', 'nginx', 'dns', 'dhcp', 'otherPort', 'internetTcp', 'internetUdp', 'peerTcp', 'peerUdp'];
  names.forEach((name, index) => {
    const listener = started[index];
    if (listener !== undefined) {
      listeners[name] = listener;
    }
  });

  await applyFirewall(runner, model);
});

afterAll(() => {
  for (const listener of Object.values(listeners)) {
    listener.stop();
  }
  for (const namespace of [hostNs, tenantA, tenantB, internet, peer]) {
    namespace?.remove();
  }
  if (networkDir !== undefined) {
    rmSync(networkDir, { recursive: true, force: true });
  }
});

/** Returns a listener started in beforeAll. */
function listener(name: string): Listener {
  const found = listeners[name];
  if (found === undefined) {
    throw new Error(`listener ${name} was not started`);
  }
  return found;
}

describe.runIf(tools)('applyFirewall', () => {
  it('reads back the rendered rules', async () => {
    const rendered = renderFirewall(model);
    const before = runner.roundTrips;

    const actual = await readFirewall(runner, model);

    expect(runner.roundTrips - before).toBe(1);
    expect(actual.v4).toBe(rendered.v4);
    expect(actual.v6).toBe(rendered.v6);
    expect(actual.bridge).toBe(rendered.bridge);
    expect(actual.jumps.map((jump) => jump.positions)).toEqual(ALL_JUMPS_FIRST);
  });

  it('saves the ruleset and an executable restore script', () => {
    const rendered = renderFirewall(model);

    expect(readFileSync(join(host.networkDir, 'firewall.v4'), 'utf8')).toBe(rendered.v4);
    expect(readFileSync(join(host.networkDir, 'firewall.v6'), 'utf8')).toBe(rendered.v6);
    expect(readFileSync(join(host.networkDir, 'firewall.bridge'), 'utf8')).toBe(rendered.bridge);
    expect(statSync(join(host.networkDir, 'firewall.v4')).mode & 0o777).toBe(0o600);
    expect(statSync(join(host.networkDir, 'firewall.v6')).mode & 0o777).toBe(0o600);
    expect(statSync(join(host.networkDir, 'firewall.bridge')).mode & 0o777).toBe(0o600);
    expect(statSync(join(host.networkDir, 'restore-firewall.sh')).mode & 0o777).toBe(0o700);
  });

  it('changes nothing on a second apply', async () => {
    const before = savedRules();
    const roundTrips = runner.roundTrips;

    const result = await applyFirewall(runner, model);

    expect(result.changed).toBe(false);
    expect(runner.roundTrips - roundTrips).toBe(1);
    expect(savedRules()).toBe(before);
  });
});

describe.runIf(tools)('traffic from a server', () => {
  it('does not let A ping B', async () => {
    expect(await icmpProbe(hostNs.name, SERVER_B.ipv4)).toBe('reply');
    expect(await icmpProbe(tenantA.name, SERVER_B.ipv4)).toBe('timeout');
  });

  it('does not let A open a TCP connection to B', async () => {
    expect(await tcpProbe(hostNs.name, SERVER_B.ipv4, SERVER_B.haPort)).toBe('connected');
    // A's ARP request for B never reaches B's tap, so A gives up on the address
    // before a SYN leaves, unless an earlier probe left B in A's neighbour table.
    expect(['timeout', 'error EHOSTUNREACH']).toContain(await tcpProbe(tenantA.name, SERVER_B.ipv4, SERVER_B.haPort));
  });

  it('keeps A from B when bridged traffic skips iptables', async () => {
    // The sysctl is per network namespace, so this changes the test host only.
    hostNs.exec('sh', ['-c', 'echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables']);
    try {
      expect(await icmpProbe(tenantA.name, SERVER_B.ipv4)).toBe('timeout');
      expect(['timeout', 'error EHOSTUNREACH']).toContain(await tcpProbe(tenantA.name, SERVER_B.ipv4, SERVER_B.haPort));
    } finally {
      hostNs.exec('sh', ['-c', 'echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables']);
    }
  });

  it('does not let A send UDP to B', async () => {
    expect(await udpArrival(hostNs, listener('udpB'), SERVER_B.ipv4, 9000)).toBe(BRIDGE_ADDRESS);
    expect(await udpArrival(tenantA, listener('udpB'), SERVER_B.ipv4, 9000)).toBeNull();
  });

  it('lets A reach the internet from the uplink address', async () => {
    expect(await tcpProbe(tenantA.name, INTERNET_ADDRESS, INTERNET_PORT)).toBe('connected');
    expect(listener('internetTcp').received().at(-1)?.from).toBe(UPLINK_ADDRESS);
    expect(await icmpProbe(tenantA.name, INTERNET_ADDRESS)).toBe('reply');
  });

  it('does not let A reach SSH on the bridge address', async () => {
    expect(await tcpProbe(hostNs.name, BRIDGE_ADDRESS, 22)).toBe('connected');
    expect(await tcpProbe(tenantA.name, BRIDGE_ADDRESS, 22)).toBe('timeout');
  });

  it('does not let A reach nginx on the host', async () => {
    expect(await tcpProbe(tenantA.name, BRIDGE_ADDRESS, 80)).toBe('timeout');
  });

  it('does not let A reach another UDP port on the host', async () => {
    expect(await udpArrival(hostNs, listener('otherPort'), BRIDGE_ADDRESS, OTHER_HOST_PORT)).toBe(BRIDGE_ADDRESS);
    expect(await udpArrival(tenantA, listener('otherPort'), BRIDGE_ADDRESS, OTHER_HOST_PORT)).toBeNull();
  });

  it('lets A reach DNS on the bridge address', async () => {
    expect(await udpArrival(tenantA, listener('dns'), BRIDGE_ADDRESS, 53)).toBe(SERVER_A.ipv4);
  });

  it('lets A reach DHCP on the host', async () => {
    expect(await udpArrival(tenantA, listener('dhcp'), BRIDGE_ADDRESS, 67, '', SERVER_A.mac)).toBe(SERVER_A.ipv4);
  });

  it("does not let A send DHCP in B's name", async () => {
    expect(await udpArrival(tenantA, listener('dhcp'), BRIDGE_ADDRESS, 67, '', SERVER_B.mac)).toBeNull();
  });

  it("lets the host connect to A's Home Assistant port", async () => {
    expect(await tcpProbe(hostNs.name, SERVER_A.ipv4, SERVER_A.haPort)).toBe('connected');
  });

  it('does not let the internet connect to A', async () => {
    expect(await tcpProbe(internet.name, SERVER_A.ipv4, SERVER_A.haPort)).toBe('timeout');
  });

  it('lets the internet reach nginx and SSH on the host', async () => {
    expect(await tcpProbe(internet.name, UPLINK_ADDRESS, 80)).toBe('connected');
    expect(await tcpProbe(internet.name, UPLINK_ADDRESS, 22)).toBe('connected');
  });
});

describe.runIf(tools)('anti-spoofing', () => {
  // A takes B's address as a second address that it never announces by ARP,
  // so that the host's neighbour entry for B stays B's.
  const takeAddressOfB = `sysctl -qw net.ipv4.conf.eth0.arp_ignore=8
sysctl -qw net.ipv4.conf.eth0.arp_announce=2
ip addr add ${SERVER_B.ipv4}/32 dev eth0`;
  const dropAddressOfB = `ip addr del ${SERVER_B.ipv4}/32 dev eth0
sysctl -qw net.ipv4.conf.eth0.arp_ignore=0
sysctl -qw net.ipv4.conf.eth0.arp_announce=0`;

  /** Forgets what the host and its bridge learned from a spoofed packet. */
  function forgetSpoofedAddresses(): void {
    hostNs.exec('sh', ['-c', `bridge fdb del ${SERVER_B.mac} dev ${SERVER_A.tap} master 2>/dev/null || true\nip neigh flush dev br-haos`]);
  }

  it("drops packets from A with B's address", async () => {
    tenantA.exec('sh', ['-c', takeAddressOfB]);
    try {
      expect(await udpArrival(tenantA, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT, SERVER_A.ipv4)).toBe(UPLINK_ADDRESS);
      expect(await udpArrival(tenantA, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT, SERVER_B.ipv4)).toBeNull();
    } finally {
      tenantA.exec('sh', ['-c', dropAddressOfB]);
      forgetSpoofedAddresses();
    }
  });

  it("drops packets from A with B's MAC", async () => {
    tenantA.exec('ip', ['link', 'set', 'eth0', 'address', SERVER_B.mac]);
    try {
      expect(await udpArrival(tenantA, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT)).toBeNull();
    } finally {
      tenantA.exec('ip', ['link', 'set', 'eth0', 'address', SERVER_A.mac]);
      forgetSpoofedAddresses();
    }
    expect(await udpArrival(tenantA, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT)).toBe(UPLINK_ADDRESS);
  });

  it("drops packets from A's port with B's MAC and address", async () => {
    tenantA.exec('sh', ['-c', `${takeAddressOfB}\nip link set eth0 address ${SERVER_B.mac}`]);
    try {
      expect(await udpArrival(tenantA, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT, SERVER_B.ipv4)).toBeNull();
    } finally {
      tenantA.exec('sh', ['-c', `${dropAddressOfB}\nip link set eth0 address ${SERVER_A.mac}`]);
      forgetSpoofedAddresses();
    }
  });
});

describe.runIf(tools)('layer-2 anti-spoofing', () => {
  // A takes B's MAC and address but sends no ARP reply for B's address, as
  // a VM that tries to receive B's traffic would.
  const becomeB = `sysctl -qw net.ipv4.conf.eth0.arp_ignore=8
sysctl -qw net.ipv4.conf.eth0.arp_announce=2
ip addr add ${SERVER_B.ipv4}/32 dev eth0
ip link set eth0 address ${SERVER_B.mac}`;
  const becomeA = `ip link set eth0 address ${SERVER_A.mac}
ip addr del ${SERVER_B.ipv4}/32 dev eth0
sysctl -qw net.ipv4.conf.eth0.arp_ignore=0
sysctl -qw net.ipv4.conf.eth0.arp_announce=0`;

  /** Sends a datagram from the host to B's UDP port and returns where it arrived: B's address, A's, or both. */
  async function arrivalsOfHostDatagramToB(): Promise<{ atB: string | null; atA: boolean }> {
    const data = marker();
    await udpSend(hostNs.name, SERVER_B.ipv4, 9000, data);
    const atB = (await listener('udpB').waitForData(data))?.from ?? null;
    // B's copy came first or at the same time, so a copy at A has arrived by now.
    const atA = listener('udpA')
      .received()
      .some((arrival) => arrival.data === data);
    return { atB, atA };
  }

  /** Makes the host and the bridge learn B's MAC from B itself. */
  async function learnB(): Promise<void> {
    hostNs.exec('ip', ['neigh', 'flush', 'dev', 'br-haos']);
    expect(await icmpProbe(hostNs.name, SERVER_B.ipv4)).toBe('reply');
  }

  it("does not let A with B's MAC move B's bridge entry", async () => {
    await learnB();
    tenantA.exec('sh', ['-c', becomeB]);
    try {
      expect(await udpArrival(tenantA, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT, SERVER_B.ipv4)).toBeNull();

      expect(learnedPort(SERVER_B.mac)).toBe(SERVER_B.tap);
      expect(await arrivalsOfHostDatagramToB()).toEqual({ atB: BRIDGE_ADDRESS, atA: false });
    } finally {
      tenantA.exec('sh', ['-c', becomeA]);
    }
  });

  it("does not flood B's unicast to A when the bridge forgot B", async () => {
    await learnB();
    tenantA.exec('sh', ['-c', becomeB]);
    try {
      hostNs.exec('bridge', ['fdb', 'del', SERVER_B.mac, 'dev', SERVER_B.tap, 'master']);

      expect(await arrivalsOfHostDatagramToB()).toEqual({ atB: BRIDGE_ADDRESS, atA: false });
    } finally {
      tenantA.exec('sh', ['-c', becomeA]);
    }
  });

  describe("ARP from A with B's address", () => {
    let locktime = '';

    beforeAll(() => {
      // Lets an ARP frame replace a neighbour entry however recently it was
      // confirmed (the default waits 1 s), so that a forged frame would take
      // effect at once.
      locktime = hostNs.exec('sysctl', ['-n', 'net.ipv4.neigh.br-haos.locktime']).trim();
      hostNs.exec('sysctl', ['-qw', 'net.ipv4.neigh.br-haos.locktime=0']);
    });

    afterAll(() => {
      hostNs.exec('sysctl', ['-qw', `net.ipv4.neigh.br-haos.locktime=${locktime}`]);
      hostNs.exec('ip', ['neigh', 'flush', 'dev', 'br-haos']);
    });

    it("does not change the host's entry for B through an ARP request", async () => {
      await learnB();
      // A sends from B's address to an unused address, so its ARP request
      // claims B's address. The DNS datagram after it goes through the same
      // port, so once it has arrived the host has seen the ARP request.
      tenantA.exec('sh', ['-c', `sysctl -qw net.ipv4.conf.eth0.arp_ignore=8
ip addr add ${SERVER_B.ipv4}/32 dev eth0`]);
      try {
        await udpSend(tenantA.name, '10.232.0.99', 9000, marker(), SERVER_B.ipv4);
        expect(await udpArrival(tenantA, listener('dns'), BRIDGE_ADDRESS, 53)).toBe(SERVER_A.ipv4);

        expect(neighbourMac(SERVER_B.ipv4)).toBe(SERVER_B.mac);
      } finally {
        tenantA.exec('sh', ['-c', `ip addr del ${SERVER_B.ipv4}/32 dev eth0
sysctl -qw net.ipv4.conf.eth0.arp_ignore=0
ip neigh flush dev eth0`]);
      }
    });

    it("does not change the host's entry for B through a gratuitous ARP", async () => {
      await learnB();
      // With arp_notify, a changed MAC makes the kernel send a gratuitous ARP
      // for each address of the interface, B's included: first from a
      // stranger's MAC, then from A's own.
      tenantA.exec('sh', [
        '-c',
        `sysctl -qw net.ipv4.conf.eth0.arp_ignore=8
sysctl -qw net.ipv4.conf.eth0.arp_notify=1
ip addr add ${SERVER_B.ipv4}/32 dev eth0
ip link set eth0 address 52:54:00:fa:00:ee
ip link set eth0 address ${SERVER_A.mac}`,
      ]);
      try {
        expect(await udpArrival(tenantA, listener('dns'), BRIDGE_ADDRESS, 53)).toBe(SERVER_A.ipv4);

        expect(neighbourMac(SERVER_B.ipv4)).toBe(SERVER_B.mac);
      } finally {
        tenantA.exec('sh', [
          '-c',
          `ip addr del ${SERVER_B.ipv4}/32 dev eth0
sysctl -qw net.ipv4.conf.eth0.arp_notify=0
sysctl -qw net.ipv4.conf.eth0.arp_ignore=0`,
        ]);
      }
    });
  });

  describe('a server before DHCP', () => {
    // A has no IPv4 address yet, like a VM before its DHCP lease. It has
    // only routes to the broadcast address and to the host.
    beforeAll(() => {
      tenantA.exec('sh', [
        '-c',
        `ip addr del ${SERVER_A.ipv4}/24 dev eth0
ip route add 255.255.255.255/32 dev eth0
ip route add ${BRIDGE_ADDRESS}/32 dev eth0
ip neigh flush dev eth0`,
      ]);
    });

    afterAll(() => {
      tenantA.exec('sh', [
        '-c',
        `ip route del 255.255.255.255/32 dev eth0
ip route del ${BRIDGE_ADDRESS}/32 dev eth0
ip addr add ${SERVER_A.ipv4}/24 dev eth0
ip route add default via ${BRIDGE_ADDRESS}
ip neigh flush dev eth0`,
      ]);
    });

    it('reaches the DHCP port from 0.0.0.0', async () => {
      const data = marker();

      await dhcpClientSend(tenantA.name, data, SERVER_A.mac);

      expect((await listener('dhcp').waitForData(data))?.from).toBe('0.0.0.0');
    });

    it('gets an answer to its ARP probe from 0.0.0.0', async () => {
      // With no address, A's kernel sends its ARP request from 0.0.0.0.
      // The host replies to such a probe, and A stores the host's MAC.
      await udpSend(tenantA.name, BRIDGE_ADDRESS, OTHER_HOST_PORT, marker());

      expect(await neighbourMacSeenBy(tenantA, BRIDGE_ADDRESS)).toBe(hostNs.exec('cat', ['/sys/class/net/br-haos/address']).trim());
    });
  });
});

describe.runIf(tools)('tunnel traffic', () => {
  it('lets A reach its own tunnel peer', async () => {
    expect(await tcpProbe(tenantA.name, PEER_ADDRESS, PEER_PORT)).toBe('connected');
  });

  it("lets A's peer reach A's Home Assistant port", async () => {
    expect(await tcpProbe(peer.name, SERVER_A.ipv4, SERVER_A.haPort)).toBe('connected');
  });

  it("does not let B reach A's tunnel peer", async () => {
    expect(await udpArrival(tenantB, listener('peerUdp'), PEER_ADDRESS, PEER_PORT)).toBeNull();
  });

  it("does not let A's peer reach B", async () => {
    expect(await tcpProbe(peer.name, SERVER_B.ipv4, SERVER_B.haPort)).toBe('timeout');
  });

  it("does not let A's peer reach host ports", async () => {
    expect(await tcpProbe(peer.name, TUNNEL_HOST_ADDRESS, 22)).toBe('timeout');
  });

  it("does not let A's peer reach the internet", async () => {
    expect(await udpArrival(peer, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT)).toBeNull();
  });
});

describe.runIf(tools)('a host with Docker and libvirt rules', () => {
  let before = '';

  beforeAll(async () => {
    flushAll();
    hostNs.exec('iptables-restore', [], OTHER_TOOLS_RULES);
    hostNs.exec('ip6tables-restore', [], OTHER_TOOLS_RULES_V6);
    hostNs.exec('ebtables-restore', [], OTHER_TOOLS_RULES_BRIDGE);
    before = savedRules();
    await applyFirewall(runner, model);
  });

  afterAll(() => {
    hostNs.exec('sh', ['-c', 'iptables -P INPUT ACCEPT; iptables -P FORWARD ACCEPT; ip6tables -P FORWARD ACCEPT; ebtables -P FORWARD ACCEPT']);
  });

  it('keeps their chains, rules and policies', () => {
    const withoutVome = savedRules()
      .split('\n')
      .filter((line) => !/^(:VOME-|-A VOME-)/.test(line) && !/ -j VOME-[A-Z]+$/.test(line))
      .join('\n');

    expect(withoutVome).toBe(before);
  });

  it('puts the jumps to vome first', async () => {
    const actual = await readFirewall(runner, model);

    expect(actual.jumps.map((jump) => jump.positions)).toEqual(ALL_JUMPS_FIRST);
  });

  it('forwards server traffic under a FORWARD policy of DROP', async () => {
    expect(await tcpProbe(tenantA.name, INTERNET_ADDRESS, INTERNET_PORT)).toBe('connected');
    expect(await tcpProbe(hostNs.name, SERVER_A.ipv4, SERVER_A.haPort)).toBe('connected');
  });

  it('leaves other host traffic to the host policy', async () => {
    expect(await tcpProbe(internet.name, UPLINK_ADDRESS, 22)).toBe('connected');
    expect(await udpArrival(internet, listener('otherPort'), BRIDGE_ADDRESS, OTHER_HOST_PORT)).toBeNull();
  });

  it('still does not let A reach SSH on the host', async () => {
    expect(await tcpProbe(tenantA.name, BRIDGE_ADDRESS, 22)).toBe('timeout');
  });
});

describe.runIf(tools)('plan and repair', () => {
  it('repairs a deleted rule and a moved jump', async () => {
    hostNs.exec('sh', [
      '-c',
      `iptables -D VOME-TO-VM -s 10.100.1.0/24 -d ${SERVER_B.ipv4}/32 -i vwg51821 -j ACCEPT
iptables -D FORWARD -j VOME-FORWARD
iptables -A FORWARD -j VOME-FORWARD`,
    ]);

    const changes = diffFirewall(renderFirewall(model), await readFirewall(runner, model));
    const forwardRules = hostNs.exec('iptables', ['-S', 'FORWARD']).split('\n').length - 2;

    expect(changes).toEqual([
      { part: 'firewall', action: 'add', item: `ipv4 -A VOME-TO-VM -s 10.100.1.0/24 -d ${SERVER_B.ipv4}/32 -i vwg51821 -j ACCEPT` },
      { part: 'firewall', action: 'remove', item: `ipv4 -A FORWARD -j VOME-FORWARD (rule ${forwardRules})` },
      { part: 'firewall', action: 'add', item: 'ipv4 -I FORWARD 1 -j VOME-FORWARD' },
    ]);
    expect((await applyFirewall(runner, model)).changed).toBe(true);
    expect(diffFirewall(renderFirewall(model), await readFirewall(runner, model))).toEqual([]);
  });

  it('repairs a deleted bridge rule, a moved bridge jump and a changed policy', async () => {
    hostNs.exec('sh', [
      '-c',
      `ebtables -t nat -D VOME-PREROUTING -i ${SERVER_B.tap} -j DROP
ebtables -t nat -D POSTROUTING -j VOME-POSTROUTING
ebtables -t nat -A POSTROUTING -o vnet9 -j ACCEPT
ebtables -t nat -A POSTROUTING -j VOME-POSTROUTING
ebtables -t nat -P VOME-PREROUTING ACCEPT`,
    ]);

    const changes = diffFirewall(renderFirewall(model), await readFirewall(runner, model));
    const postroutingRules = postroutingRulesOfBridge();

    expect(changes).toEqual([
      { part: 'firewall', action: 'remove', item: 'bridge -t nat -P VOME-PREROUTING ACCEPT' },
      { part: 'firewall', action: 'add', item: 'bridge -t nat -P VOME-PREROUTING RETURN' },
      { part: 'firewall', action: 'add', item: `bridge -t nat -A VOME-PREROUTING -i ${SERVER_B.tap} -j DROP` },
      { part: 'firewall', action: 'remove', item: `bridge -t nat -A POSTROUTING -j VOME-POSTROUTING (rule ${postroutingRules.length})` },
      { part: 'firewall', action: 'add', item: 'bridge -t nat -I POSTROUTING 1 -j VOME-POSTROUTING' },
    ]);
    expect((await applyFirewall(runner, model)).changed).toBe(true);
    expect(diffFirewall(renderFirewall(model), await readFirewall(runner, model))).toEqual([]);
    expect(postroutingRulesOfBridge()).toContain('-A POSTROUTING -o vnet9 -j ACCEPT');
  });
});

describe.runIf(tools)('removing a server', () => {
  afterAll(async () => {
    await applyFirewall(runner, model);
  });

  it('leaves no rule that mentions it', async () => {
    await applyFirewall(runner, { host, servers: [SERVER_A] });
    const rules = savedRules();

    expect(rules).not.toContain(SERVER_B.ipv4);
    expect(rules).not.toContain(SERVER_B.mac);
    expect(rules).not.toContain(SERVER_B.tap);
    expect(rules).not.toContain('vwg51821');
    expect(rules).not.toContain('10.100.1.0');
    expect(rules).toContain(SERVER_A.ipv4);
  });

  it('leaves no bridge rule that mentions it', async () => {
    await applyFirewall(runner, { host, servers: [SERVER_A] });
    const bridgeRules = hostNs.exec('ebtables-save');

    expect(bridgeRules).not.toContain(SERVER_B.ipv4);
    expect(bridgeRules).not.toContain(SERVER_B.mac);
    expect(bridgeRules).not.toContain(SERVER_B.tap);
    expect(bridgeRules).toContain(SERVER_A.tap);
  });
});

describe.runIf(tools)('restore-firewall.sh', () => {
  it('loads the same rules after a reboot', async () => {
    flushAll();

    hostNs.exec(join(host.networkDir, 'restore-firewall.sh'));
    const actual = await readFirewall(runner, model);

    expect(actual.v4).toBe(renderFirewall(model).v4);
    expect(actual.v6).toBe(renderFirewall(model).v6);
    expect(actual.bridge).toBe(renderFirewall(model).bridge);
    expect(actual.jumps.map((jump) => jump.positions)).toEqual(ALL_JUMPS_FIRST);
  });

  it('changes nothing when the rules are in place', () => {
    const before = savedRules();

    expect(hostNs.exec(join(host.networkDir, 'restore-firewall.sh'))).toBe('changed=0\n');
    expect(savedRules()).toBe(before);
  });

  it('gives back working rules', async () => {
    expect(await tcpProbe(tenantA.name, INTERNET_ADDRESS, INTERNET_PORT)).toBe('connected');
    expect(['timeout', 'error EHOSTUNREACH']).toContain(await tcpProbe(tenantA.name, SERVER_B.ipv4, SERVER_B.haPort));
  });

  it('gives back the bridge rules', async () => {
    expect(await icmpProbe(hostNs.name, SERVER_B.ipv4)).toBe('reply');
    tenantA.exec('ip', ['link', 'set', 'eth0', 'address', SERVER_B.mac]);
    try {
      expect(await udpArrival(tenantA, listener('internetUdp'), INTERNET_ADDRESS, INTERNET_PORT)).toBeNull();
      expect(learnedPort(SERVER_B.mac)).toBe(SERVER_B.tap);
    } finally {
      tenantA.exec('ip', ['link', 'set', 'eth0', 'address', SERVER_A.mac]);
    }
  });
});

describe.runIf(tools)('a rejected rule', () => {
  it('names the rule and keeps the old rules', async () => {
    const rendered = renderFirewall({ host, servers: [SERVER_A] });
    const broken = { ...rendered, v4: rendered.v4.replace('-A VOME-SPOOF -j DROP', '-A VOME-SPOOF -m nosuchmatch -j DROP') };
    const before = savedRules();

    const error = await rejection(applyFirewallRuleset(runner, host, broken));

    expect(error).toBeInstanceOf(FirewallRejectedError);
    expect(error.message).toContain('rejected line');
    expect(error.message).toContain('"-A VOME-SPOOF -m nosuchmatch -j DROP"');
    expect(error.message).toContain("Couldn't load match `nosuchmatch'");
    expect(error.message).toContain('The host keeps its previous rules');
    expect(savedRules()).toBe(before);
    expect(readFileSync(join(host.networkDir, 'firewall.v4'), 'utf8')).toBe(renderFirewall(model).v4);
  });

  it('names a rejected bridge rule and keeps every family', async () => {
    const rendered = renderFirewall({ host, servers: [SERVER_A] });
    const broken = { ...rendered, bridge: rendered.bridge.replace(`-A VOME-PREROUTING -i ${SERVER_A.tap} -j DROP`, '-A VOME-PREROUTING --nosuchoption -j DROP') };
    const before = savedRules();

    const error = await rejection(applyFirewallRuleset(runner, host, broken));

    expect(error).toBeInstanceOf(FirewallRejectedError);
    expect(error.message).toContain('ebtables-restore on host "ha-fw" rejected line');
    expect(error.message).toContain('"-A VOME-PREROUTING --nosuchoption -j DROP"');
    expect(error.message).toContain('The host keeps its previous rules');
    expect(savedRules()).toBe(before);
    expect(readFileSync(join(host.networkDir, 'firewall.bridge'), 'utf8')).toBe(renderFirewall(model).bridge);
  });
});
