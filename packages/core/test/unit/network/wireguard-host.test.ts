import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import type { NetworkModel, NetworkServer, NetworkTunnel } from '../../../src/network/network-model.js';
import {
  applyWireguard,
  diffWireguard,
  parseWireguardState,
  readWireguard,
  renderWireguardState,
  requireValidTunnels,
  restoreScriptPath,
  type WireguardState,
  wireguardRestoreScript,
  writeTunnelKey,
} from '../../../src/network/wireguard-host.js';
import { publicKeyOf } from '../../../src/network/wireguard-keys.js';
import type { CommandResult, CommandRunner, RunOptions } from '../../../src/runner/command-runner.js';

/** Returns a valid key of 32 equal bytes, never a real secret. */
function key(byte: number): string {
  return Buffer.alloc(32, byte).toString('base64');
}

const PRIVATE_KEY = key(7);
const PUBLIC_KEY = publicKeyOf(PRIVATE_KEY);
const PHONE = key(2);
const LAPTOP = key(3);

function tunnel(overrides: Partial<NetworkTunnel> = {}): NetworkTunnel {
  return {
    interface: 'vwg51823',
    listenPort: 51823,
    table: 51823,
    rulePriority: 10_003,
    network: '10.100.3.0/24',
    address: '10.100.3.1',
    publicKey: PUBLIC_KEY,
    privateKeyPath: '/var/lib/vome/host/network/wireguard/vwg51823.key',
    peers: [
      { name: 'phone', publicKey: PHONE, address: '10.100.3.2' },
      { name: 'laptop', publicKey: LAPTOP, address: '10.100.3.3' },
    ],
    ...overrides,
  };
}

function server(name: string, ipv4: string, serverTunnel: NetworkTunnel | null): NetworkServer {
  return { id: `id-${name}`, name, subdomain: name, ipv4, mac: '52:54:00:1a:2b:3c', haPort: 8123, tap: 'vm0ae8000c', tunnel: serverTunnel };
}

function model(servers: NetworkServer[]): NetworkModel {
  return {
    host: {
      name: 'ha-1',
      bridge: 'br-haos',
      bridgeAddress: '10.232.0.1',
      bridgeNetwork: '10.232.0.0/24',
      uplink: 'eth0',
      blockedNetworks: [],
      haDomain: 'ha.example',
      tlsCertificatePath: '/etc/vome/tls/cert.pem',
      tlsKeyPath: '/etc/vome/tls/key.pem',
      nginxSitePath: '/etc/nginx/conf.d/vome.conf',
      nginxMainConfigPath: '/etc/nginx/nginx.conf',
      networkDir: '/var/lib/vome/host/network',
    },
    servers,
  };
}

const MODEL = model([server('kitchen', '10.232.0.12', tunnel()), server('garage', '10.232.0.13', null)]);

/** The state a host in step with MODEL returns. */
const IN_STEP: WireguardState = {
  interfaces: [
    {
      name: 'vwg51823',
      implementation: 'wireguard-go',
      up: true,
      listenPort: 51823,
      publicKey: PUBLIC_KEY,
      addresses: ['10.100.3.1/24 noprefixroute'],
      peers: [
        { publicKey: PHONE, allowedIps: ['10.100.3.2/32'] },
        { publicKey: LAPTOP, allowedIps: ['10.100.3.3/32'] },
      ],
    },
  ],
  tables: [
    {
      table: 51823,
      routes: ['10.100.3.0/24 dev vwg51823 scope link', '10.232.0.12 dev br-haos scope link', 'unreachable default'],
      rules: ['10003: from all iif vwg51823 lookup 51823', '10003: from all to 10.100.3.0/24 lookup 51823'],
    },
  ],
};

/** Records scripts and returns a fixed output. */
class RecordingRunner implements CommandRunner {
  readonly hostName = 'ha-1';
  readonly scripts: string[] = [];

  constructor(private readonly stdout = '') {}

  get roundTrips(): number {
    return this.scripts.length;
  }

  async run(script: string, _options: RunOptions): Promise<CommandResult> {
    this.scripts.push(script);
    return { stdout: this.stdout, stderr: '', exitCode: 0 };
  }

  async putFile(): Promise<void> {
    throw new Error('not used');
  }

  async close(): Promise<void> {}
}

function withTunnel(overrides: Partial<NetworkTunnel>): NetworkModel {
  return model([server('kitchen', '10.232.0.12', tunnel(overrides))]);
}

describe('renderWireguardState', () => {
  it('renders interface, table routes and rules of a tunnel', () => {
    expect(renderWireguardState(MODEL)).toEqual({ ...IN_STEP, interfaces: [{ ...IN_STEP.interfaces[0], implementation: null }] });
  });

  it('renders nothing for servers without a tunnel', () => {
    expect(renderWireguardState(model([server('garage', '10.232.0.13', null)]))).toEqual({ interfaces: [], tables: [] });
  });

  it('sorts interfaces by name and tables by number', () => {
    const second = tunnel({ interface: 'vwg51822', listenPort: 51822, table: 51822, rulePriority: 10_002, network: '10.100.2.0/24', address: '10.100.2.1', publicKey: key(9), peers: [] });
    const state = renderWireguardState(model([server('kitchen', '10.232.0.12', tunnel()), server('garage', '10.232.0.13', second)]));

    expect(state.interfaces.map((link) => link.name)).toEqual(['vwg51822', 'vwg51823']);
    expect(state.tables.map((table) => table.table)).toEqual([51822, 51823]);
  });
});

describe('requireValidTunnels', () => {
  it('accepts a valid model', () => {
    expect(() => requireValidTunnels(MODEL)).not.toThrow();
  });

  it.each([
    ['an interface without the vwg prefix', { interface: 'wg0' }, 'invalid interface name "wg0"'],
    ['an interface name over 15 characters', { interface: 'vwg1234567890123' }, 'invalid interface name "vwg1234567890123"'],
    ['listen port 0', { listenPort: 0 }, 'invalid listen port 0: expected 1–65535'],
    ['listen port 65536', { listenPort: 65_536 }, 'invalid listen port 65536'],
    ['the main table', { table: 254 }, 'invalid routing table 254'],
    ['the local table', { table: 255 }, 'invalid routing table 255'],
    ['table 0', { table: 0 }, 'invalid routing table 0'],
    ['rule priority 0', { rulePriority: 0 }, 'invalid rule priority 0'],
    ['a rule priority after the main table', { rulePriority: 32_766 }, 'invalid rule priority 32766'],
    ['a /16 network', { network: '10.100.0.0/16' }, 'invalid network "10.100.0.0/16"'],
    ['a network with host bits', { network: '10.100.3.5/24' }, 'invalid network "10.100.3.5/24"'],
    ['a network overlapping the bridge', { network: '10.232.0.0/24', address: '10.232.0.1', peers: [] }, 'network 10.232.0.0/24 overlaps the bridge network 10.232.0.0/24'],
    ['a host address outside the network', { address: '10.100.4.1' }, 'host address 10.100.4.1 is not a host address of 10.100.3.0/24'],
    ['the network address as host address', { address: '10.100.3.0' }, 'host address 10.100.3.0 is not a host address'],
    ['an invalid public key', { publicKey: 'abc' }, 'invalid WireGuard public key of tunnel vwg51823 of server "kitchen"'],
    ['a relative key path', { privateKeyPath: 'keys/vwg.key' }, 'invalid private key path'],
    ['a key path with a newline', { privateKeyPath: '/var/lib/vome/a\nb.key' }, 'invalid private key path'],
    ['a key path with ..', { privateKeyPath: '/var/lib/vome/../x.key' }, 'invalid private key path'],
    ['a peer with an invalid key', { peers: [{ name: 'phone', publicKey: 'abc-', address: '10.100.3.2' }] }, 'invalid WireGuard public key of tunnel vwg51823 of server "kitchen": peer "phone"'],
    ['a peer with the interface key', { peers: [{ name: 'phone', publicKey: PUBLIC_KEY, address: '10.100.3.2' }] }, 'peer "phone" has the interface\'s own public key'],
    ['a peer at the host address', { peers: [{ name: 'phone', publicKey: PHONE, address: '10.100.3.1' }] }, 'is the host\'s own address on the interface'],
    ['a peer at the broadcast address', { peers: [{ name: 'phone', publicKey: PHONE, address: '10.100.3.255' }] }, 'address 10.100.3.255 is not a host address'],
    ['a peer outside the network', { peers: [{ name: 'phone', publicKey: PHONE, address: '10.100.4.2' }] }, 'address 10.100.4.2 is not a host address'],
    [
      'two peers with one address',
      { peers: [{ name: 'phone', publicKey: PHONE, address: '10.100.3.2' }, { name: 'laptop', publicKey: LAPTOP, address: '10.100.3.2' }] },
      'peer "laptop": address 10.100.3.2 belongs to another peer of the interface',
    ],
    [
      'two peers with one key',
      { peers: [{ name: 'phone', publicKey: PHONE, address: '10.100.3.2' }, { name: 'laptop', publicKey: PHONE, address: '10.100.3.3' }] },
      `peer "laptop": public key ${PHONE} belongs to another peer of the interface`,
    ],
  ] satisfies [string, Partial<NetworkTunnel>, string][])('rejects %s', (_case, overrides, message) => {
    expect(() => requireValidTunnels(withTunnel(overrides))).toThrow(InvalidInputError);
    expect(() => requireValidTunnels(withTunnel(overrides))).toThrow(message);
  });

  it.each([
    ['interface name', { listenPort: 51822, table: 51822, network: '10.100.2.0/24', address: '10.100.2.1', publicKey: key(9) }, 'interface name vwg51823 is used by another tunnel'],
    ['listen port', { interface: 'vwg51822', table: 51822, network: '10.100.2.0/24', address: '10.100.2.1', publicKey: key(9) }, 'listen port 51823 is used by another tunnel'],
    ['table', { interface: 'vwg51822', listenPort: 51822, network: '10.100.2.0/24', address: '10.100.2.1', publicKey: key(9) }, 'routing table 51823 is used by another tunnel'],
    ['network', { interface: 'vwg51822', listenPort: 51822, table: 51822, publicKey: key(9) }, 'network 10.100.3.0/24 is used by another tunnel'],
    ['public key', { interface: 'vwg51822', listenPort: 51822, table: 51822, network: '10.100.2.0/24', address: '10.100.2.1' }, `public key ${PUBLIC_KEY} is used by another tunnel`],
  ] satisfies [string, Partial<NetworkTunnel>, string][])('rejects two tunnels with one %s', (_case, overrides, message) => {
    const twoTunnels = model([server('kitchen', '10.232.0.12', tunnel()), server('garage', '10.232.0.13', tunnel({ ...overrides, peers: [] }))]);

    expect(() => requireValidTunnels(twoTunnels)).toThrow(message);
  });

  it('rejects an invalid bridge name', () => {
    const invalid = { ...MODEL, host: { ...MODEL.host, bridge: '-br' } };

    expect(() => requireValidTunnels(invalid)).toThrow('invalid bridge name "-br"');
  });
});

describe('diffWireguard', () => {
  it('returns no change for a host in step', () => {
    expect(diffWireguard(MODEL, IN_STEP)).toEqual([]);
  });

  it('lists a missing interface with its peers, routes and rules', () => {
    expect(diffWireguard(MODEL, { interfaces: [], tables: [] }).map((change) => `${change.action} ${change.item}`)).toEqual([
      `add interface vwg51823 listen-port 51823 public-key ${PUBLIC_KEY}`,
      'add interface vwg51823 state up',
      'add interface vwg51823 address 10.100.3.1/24 noprefixroute',
      `add interface vwg51823 peer "phone" ${PHONE} allowed-ips 10.100.3.2/32`,
      `add interface vwg51823 peer "laptop" ${LAPTOP} allowed-ips 10.100.3.3/32`,
      'add table 51823 route 10.100.3.0/24 dev vwg51823 scope link',
      'add table 51823 route 10.232.0.12 dev br-haos scope link',
      'add table 51823 route unreachable default',
      'add rule 10003: from all iif vwg51823 lookup 51823',
      'add rule 10003: from all to 10.100.3.0/24 lookup 51823',
    ]);
  });

  it('marks every change as part wireguard', () => {
    expect(new Set(diffWireguard(MODEL, { interfaces: [], tables: [] }).map((change) => change.part))).toEqual(new Set(['wireguard']));
  });

  it('shows a changed listen port as remove and add', () => {
    const moved = { ...IN_STEP, interfaces: [{ ...IN_STEP.interfaces[0]!, listenPort: 40000 }] };

    expect(diffWireguard(MODEL, moved)).toEqual([
      { part: 'wireguard', action: 'remove', item: `interface vwg51823 listen-port 40000 public-key ${PUBLIC_KEY}` },
      { part: 'wireguard', action: 'add', item: `interface vwg51823 listen-port 51823 public-key ${PUBLIC_KEY}` },
    ]);
  });

  it('shows a changed public key with both public keys', () => {
    const rekeyed = { ...IN_STEP, interfaces: [{ ...IN_STEP.interfaces[0]!, publicKey: key(8) }] };

    expect(diffWireguard(MODEL, rekeyed)).toEqual([
      { part: 'wireguard', action: 'remove', item: `interface vwg51823 listen-port 51823 public-key ${key(8)}` },
      { part: 'wireguard', action: 'add', item: `interface vwg51823 listen-port 51823 public-key ${PUBLIC_KEY}` },
    ]);
  });

  it('lists a peer the model lacks as removed', () => {
    const extra = { ...IN_STEP, interfaces: [{ ...IN_STEP.interfaces[0]!, peers: [...IN_STEP.interfaces[0]!.peers, { publicKey: key(4), allowedIps: ['10.100.3.4/32'] }] }] };

    expect(diffWireguard(MODEL, extra)).toEqual([{ part: 'wireguard', action: 'remove', item: `interface vwg51823 peer ${key(4)} allowed-ips 10.100.3.4/32` }]);
  });

  it('lists a peer with other allowed IPs as remove and add', () => {
    const wide = { ...IN_STEP, interfaces: [{ ...IN_STEP.interfaces[0]!, peers: [{ publicKey: PHONE, allowedIps: ['0.0.0.0/0'] }, IN_STEP.interfaces[0]!.peers[1]!] }] };

    expect(diffWireguard(MODEL, wide)).toEqual([
      { part: 'wireguard', action: 'remove', item: `interface vwg51823 peer ${PHONE} allowed-ips 0.0.0.0/0` },
      { part: 'wireguard', action: 'add', item: `interface vwg51823 peer "phone" ${PHONE} allowed-ips 10.100.3.2/32` },
    ]);
  });

  it('lists a down interface and an address without noprefixroute', () => {
    const drifted = { ...IN_STEP, interfaces: [{ ...IN_STEP.interfaces[0]!, up: false, addresses: ['10.100.3.1/24'] }] };

    expect(diffWireguard(MODEL, drifted).map((change) => `${change.action} ${change.item}`)).toEqual([
      'remove interface vwg51823 state down',
      'remove interface vwg51823 address 10.100.3.1/24',
      'add interface vwg51823 state up',
      'add interface vwg51823 address 10.100.3.1/24 noprefixroute',
    ]);
  });

  it('lists missing rules and routes', () => {
    const bare = { ...IN_STEP, tables: [{ table: 51823, routes: ['unreachable default'], rules: [] }] };

    expect(diffWireguard(MODEL, bare).map((change) => `${change.action} ${change.item}`)).toEqual([
      'add table 51823 route 10.100.3.0/24 dev vwg51823 scope link',
      'add table 51823 route 10.232.0.12 dev br-haos scope link',
      'add rule 10003: from all iif vwg51823 lookup 51823',
      'add rule 10003: from all to 10.100.3.0/24 lookup 51823',
    ]);
  });

  it('lists an interface and table the model lacks as removed', () => {
    const empty = model([server('garage', '10.232.0.13', null)]);

    expect(diffWireguard(empty, IN_STEP).map((change) => `${change.action} ${change.item}`)).toEqual([
      `remove interface vwg51823 listen-port 51823 public-key ${PUBLIC_KEY}`,
      'remove interface vwg51823 state up',
      'remove interface vwg51823 address 10.100.3.1/24 noprefixroute',
      `remove interface vwg51823 peer ${PHONE} allowed-ips 10.100.3.2/32`,
      `remove interface vwg51823 peer ${LAPTOP} allowed-ips 10.100.3.3/32`,
      'remove table 51823 route 10.100.3.0/24 dev vwg51823 scope link',
      'remove table 51823 route 10.232.0.12 dev br-haos scope link',
      'remove table 51823 route unreachable default',
      'remove rule 10003: from all iif vwg51823 lookup 51823',
      'remove rule 10003: from all to 10.100.3.0/24 lookup 51823',
    ]);
  });

  it('never shows the private key', () => {
    const items = diffWireguard(MODEL, { interfaces: [], tables: [] }).map((change) => change.item);

    expect(items.join('\n')).not.toContain(PRIVATE_KEY);
  });
});

describe('parseWireguardState', () => {
  const output = [
    '@interface vwg51823',
    'link 7: vwg51823: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1420 qdisc fq_codel state UNKNOWN mode DEFAULT group default qlen 500\\    link/none  promiscuity 0 \\    tun type tun pi on vnet_hdr off persist off addrgenmode none numtxqueues 1',
    'address 10.100.3.1/24 noprefixroute',
    `wireguard ${PUBLIC_KEY} 51823`,
    `peer ${LAPTOP} 10.100.3.3/32`,
    `peer ${PHONE} 10.100.3.2/32`,
    '@interface vwg51900',
    'link 8: vwg51900: <POINTOPOINT,NOARP> mtu 1420 qdisc noop state DOWN mode DEFAULT group default qlen 1000\\    link/none  promiscuity 0 \\    wireguard addrgenmode none numtxqueues 1',
    'wireguard (none) 0',
    `peer ${key(4)} (none)`,
    `peer ${key(5)} 10.9.0.2/32,10.8.0.2/32`,
    '@rules',
    '0: from all lookup local',
    '10003: from all iif vwg51823 lookup 51823',
    '10003: from all to 10.100.3.0/24 lookup 51823',
    '9000: from all iif vwg51900 lookup 51900',
    '32766: from all lookup main',
    '32767: from all lookup default',
    '@table 51823',
    'unreachable default',
    '10.100.3.0/24 dev vwg51823 scope link',
    '10.232.0.12 dev br-haos scope link',
    '@table 51824',
    '@table 51900',
    '',
  ].join('\n');

  it('parses interfaces, peers, tables and their rules', () => {
    expect(parseWireguardState(output)).toEqual({
      interfaces: [
        IN_STEP.interfaces[0],
        {
          name: 'vwg51900',
          implementation: 'kernel',
          up: false,
          listenPort: null,
          publicKey: null,
          addresses: [],
          peers: [
            { publicKey: key(4), allowedIps: [] },
            { publicKey: key(5), allowedIps: ['10.8.0.2/32', '10.9.0.2/32'] },
          ].sort((left, right) => (left.publicKey < right.publicKey ? -1 : 1)),
        },
      ],
      tables: [IN_STEP.tables[0], { table: 51900, routes: [], rules: ['9000: from all iif vwg51900 lookup 51900'] }],
    });
  });

  it('drops a table without routes and rules', () => {
    expect(parseWireguardState(output).tables.map((table) => table.table)).toEqual([51823, 51900]);
  });

  it('parses empty output as no interfaces and no tables', () => {
    expect(parseWireguardState('@rules\n0: from all lookup local\n')).toEqual({ interfaces: [], tables: [] });
  });
});

describe('writeTunnelKey', () => {
  it('sends the key inside the script in one round trip', async () => {
    const runner = new RecordingRunner();

    await writeTunnelKey(runner, tunnel(), PRIVATE_KEY);

    expect(runner.roundTrips).toBe(1);
    expect(runner.scripts[0]).toContain(`<<'VOME_WIREGUARD_KEY'\n${PRIVATE_KEY}\nVOME_WIREGUARD_KEY\n`);
  });

  it('writes through a temporary file and mv', async () => {
    const runner = new RecordingRunner();

    await writeTunnelKey(runner, tunnel(), PRIVATE_KEY);

    expect(runner.scripts[0]).toContain('chmod 0600 "$tmp"\nmv -f "$tmp" "$file"');
  });

  it('puts the key on no line other than the here-document', async () => {
    const runner = new RecordingRunner();

    await writeTunnelKey(runner, tunnel(), PRIVATE_KEY);

    expect(runner.scripts[0]!.split('\n').filter((line) => line.includes(PRIVATE_KEY))).toEqual([PRIVATE_KEY]);
  });

  it('rejects the private key of another public key without quoting it', async () => {
    const runner = new RecordingRunner();
    const error = await writeTunnelKey(runner, tunnel({ publicKey: PHONE }), PRIVATE_KEY).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toBe(`the private key given for vwg51823 does not belong to its public key ${PHONE}`);
    expect(runner.roundTrips).toBe(0);
  });

  it('rejects an invalid private key without quoting it', async () => {
    const invalid = PRIVATE_KEY.replace('=', '');
    const error = await writeTunnelKey(new RecordingRunner(), tunnel(), invalid).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).not.toContain(invalid);
  });
});

describe('readWireguard', () => {
  it('reads the state in one round trip', async () => {
    const runner = new RecordingRunner('@rules\n');

    expect(await readWireguard(runner, MODEL)).toEqual({ interfaces: [], tables: [] });
    expect(runner.roundTrips).toBe(1);
  });

  it('reads the model tables even when no rule points at them', async () => {
    const runner = new RecordingRunner('@rules\n');

    await readWireguard(runner, MODEL);

    expect(runner.scripts[0]).toContain("\nwg_read 51823\n");
  });
});

describe('applyWireguard', () => {
  it('reports no change without actions', async () => {
    const runner = new RecordingRunner('');

    expect(await applyWireguard(runner, MODEL)).toEqual({ changed: false, actions: [], created: [] });
    expect(runner.roundTrips).toBe(1);
  });

  it('reports actions and created interfaces with their implementation', async () => {
    const runner = new RecordingRunner('created vwg51823 wireguard-go\naction create interface vwg51823\naction set routes of table 51823\n');

    expect(await applyWireguard(runner, MODEL)).toEqual({
      changed: true,
      actions: ['create interface vwg51823', 'set routes of table 51823'],
      created: [{ interface: 'vwg51823', implementation: 'wireguard-go' }],
    });
  });

  it('rejects an invalid model before running anything', async () => {
    const runner = new RecordingRunner();

    await expect(applyWireguard(runner, withTunnel({ table: 254 }))).rejects.toThrow(InvalidInputError);
    expect(runner.roundTrips).toBe(0);
  });

  it('writes the restore script into the network folder', async () => {
    const runner = new RecordingRunner();

    await applyWireguard(runner, MODEL);

    expect(runner.scripts[0]).toContain(`restore=/var/lib/vome/host/network/restore-wireguard.sh\n`);
    expect(runner.scripts[0]).toContain(`<<'VOME_WIREGUARD_RESTORE'\n${wireguardRestoreScript(MODEL)}VOME_WIREGUARD_RESTORE\n`);
  });
});

describe('wireguardRestoreScript', () => {
  const script = wireguardRestoreScript(MODEL);

  it('starts with a bash shebang and the strict prelude', () => {
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    expect(script).toContain('set -euo pipefail\nexport LC_ALL=C\numask 077\n');
  });

  it('removes stale tunnels first, then ensures each tunnel with its peers', () => {
    expect(script.endsWith(
      `wg_remove_stale vwg51823 vwg51823:51823 51823
wg_ensure_tunnel vwg51823 51823 51823 10003 10.100.3.0/24 10.100.3.1/24 ${PUBLIC_KEY} /var/lib/vome/host/network/wireguard/vwg51823.key 10.232.0.12 br-haos '${PHONE} 10.100.3.2/32' '${LAPTOP} 10.100.3.3/32'
`,
    )).toBe(true);
  });

  it('is valid bash', () => {
    expect(() => execFileSync('bash', ['-n'], { input: script })).not.toThrow();
  });

  it('removes every tunnel when the model has none', () => {
    expect(wireguardRestoreScript(model([])).endsWith("wg_remove_stale '' '' ''\n")).toBe(true);
  });
});

describe('restoreScriptPath', () => {
  it('places the script in the network folder', () => {
    expect(restoreScriptPath(MODEL)).toBe('/var/lib/vome/host/network/restore-wireguard.sh');
  });
});
