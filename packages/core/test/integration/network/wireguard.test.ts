import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostCommandError } from '../../../src/errors/index.js';
import type { NetworkModel, NetworkServer, NetworkTunnel } from '../../../src/network/network-model.js';
import { applyWireguard, diffWireguard, readWireguard, restoreScriptPath, writeTunnelKey } from '../../../src/network/wireguard-host.js';
import { generateWireguardKeyPair } from '../../../src/network/wireguard-keys.js';
import { createTestNamespace, type TestNamespace } from '../../support/network-namespace.js';
import { hasCommand, isRoot, requirement } from '../../support/requirements.js';

const ready = requirement(
  isRoot && hasCommand('ip') && hasCommand('wg') && hasCommand('wireguard-go') && hasCommand('ping') && existsSync('/dev/net/tun'),
  'WireGuard tests need root, iproute2, wireguard-tools, wireguard-go, ping and /dev/net/tun',
);

// wireguard-go keeps its control socket in /var/run/wireguard, which every
// network namespace shares, so these names must be unique on the machine.
const TUNNEL_INTERFACE = 'vwg45171';
const PEER_INTERFACE = 'wgvtpeer';
const BENCH_COUNT = 20;
const BENCH_FIRST_PORT = 45_201;
const OUR_WIREGUARD_GO = /^(vwg45\d{3}|wgvtpeer)$/;

const BRIDGE = 'br-haos';
const HOST_UPLINK_ADDRESS = '198.18.71.1';
const PEER_UPLINK_ADDRESS = '198.18.71.2';
const ADDRESS_A = '10.233.71.12';
const ADDRESS_B = '10.233.71.13';
const PEER_TUNNEL_ADDRESS = '10.100.71.2';
/** An address beyond the host's uplink for `ip route get`. No packet is sent to it. */
const OUTSIDE_ADDRESS = '203.0.113.5';

/** Returns the pids of wireguard-go processes for this file's interfaces that run in the namespace. */
function wireguardGoPids(namespace: string): number[] {
  let inode: number;
  try {
    inode = statSync(`/var/run/netns/${namespace}`).ino;
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const [program = '', name = ''] = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (program.endsWith('wireguard-go') && OUR_WIREGUARD_GO.test(name) && readlinkSync(`/proc/${entry}/ns/net`) === `net:[${inode}]`) {
        pids.push(Number(entry));
      }
    } catch {
      // The process ended while being read.
    }
  }
  return pids;
}

/** Ends the wireguard-go daemons of this file in a namespace, by pid. */
function stopWireguardGo(namespace: string): void {
  for (const pid of wireguardGoPids(namespace)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // It already ended.
    }
  }
}

/** Runs a command in a namespace and returns its exit code, for probes that may fail. */
function exitCode(namespace: TestNamespace, program: string, args: string[]): number {
  return spawnSync('ip', ['netns', 'exec', namespace.name, program, ...args], { stdio: 'ignore' }).status ?? -1;
}

/** The host's main routing table and two route lookups, as `ip` prints them. */
function mainRouting(host: TestNamespace): string[] {
  return [
    host.exec('ip', ['-4', 'route', 'show', 'table', 'main']),
    host.exec('ip', ['-6', 'route', 'show', 'table', 'main']),
    host.exec('ip', ['route', 'get', OUTSIDE_ADDRESS]),
    host.exec('ip', ['route', 'get', ADDRESS_B]),
  ];
}

/** Starts a TCP listener inside a namespace that greets each client with a fixed line. */
async function startListener(namespace: TestNamespace, address: string, greeting: string): Promise<ChildProcess> {
  const code = `require('node:net').createServer((socket) => socket.end(${JSON.stringify(`${greeting}\n`)})).listen(8123, ${JSON.stringify(address)}, () => console.log('listening'));`;
  const child = spawn('ip', ['netns', 'exec', namespace.name, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (status) => reject(new Error(`listener in ${namespace.name} exited with ${status}`)));
  });
  return child;
}

/** Reads what a TCP listener sends, or returns null when no connection opens within 3 s. */
function tcpGreeting(namespace: TestNamespace, address: string): string | null {
  const result = spawnSync('ip', ['netns', 'exec', namespace.name, 'timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${address}/8123 && cat <&3`], {
    encoding: 'utf8',
  });
  return result.status === 0 ? result.stdout : null;
}

/** Reports whether the kernel of this machine can create a WireGuard link, probed inside a namespace. */
function kernelHasWireguard(namespace: TestNamespace): boolean {
  const created = exitCode(namespace, 'ip', ['link', 'add', 'vwgprobe', 'type', 'wireguard']) === 0;
  if (created) {
    namespace.exec('ip', ['link', 'del', 'vwgprobe']);
  }
  return created;
}

function networkHost(networkDir: string): NetworkModel['host'] {
  return {
    name: 'wg-test',
    bridge: BRIDGE,
    bridgeAddress: '10.233.71.1',
    bridgeNetwork: '10.233.71.0/24',
    uplink: 'up0',
    blockedNetworks: [],
    haDomain: 'ha.test',
    tlsCertificatePath: join(networkDir, 'tls.pem'),
    tlsKeyPath: join(networkDir, 'tls.key'),
    nginxSitePath: join(networkDir, 'nginx.conf'),
    nginxMainConfigPath: join(networkDir, 'nginx-main.conf'),
    networkDir,
  };
}

function server(name: string, ipv4: string, tunnel: NetworkTunnel | null): NetworkServer {
  return { id: `id-${name}`, name, subdomain: name, ipv4, mac: '52:54:00:00:71:01', haPort: 8123, tap: 'vm0ae9470c', tunnel };
}

describe.runIf(ready)('WireGuard tunnel on a host', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vome-wireguard-'));
  const networkDir = join(dir, 'network');
  const namespaces: TestNamespace[] = [];
  const listeners: ChildProcess[] = [];
  const hostKeys = generateWireguardKeyPair();
  const peerKeys = generateWireguardKeyPair();
  const tunnel: NetworkTunnel = {
    interface: TUNNEL_INTERFACE,
    listenPort: 45_171,
    table: 45_171,
    rulePriority: 10_071,
    network: '10.100.71.0/24',
    address: '10.100.71.1',
    publicKey: hostKeys.publicKey,
    privateKeyPath: join(networkDir, 'wireguard', `${TUNNEL_INTERFACE}.key`),
    peers: [{ name: 'phone', publicKey: peerKeys.publicKey, address: PEER_TUNNEL_ADDRESS }],
  };
  const full: NetworkModel = { host: networkHost(networkDir), servers: [server('a', ADDRESS_A, tunnel), server('b', ADDRESS_B, null)] };
  const noPeers: NetworkModel = { ...full, servers: [server('a', ADDRESS_A, { ...tunnel, peers: [] }), server('b', ADDRESS_B, null)] };
  const noTunnel: NetworkModel = { ...full, servers: [server('b', ADDRESS_B, null)] };
  let host: TestNamespace;
  let peer: TestNamespace;
  let mainBefore: string[];
  let implementation: 'kernel' | 'wireguard-go';

  /** Points the peer's WireGuard interface at the host again, with a fresh session. */
  function connectPeer(allowedIps: string): void {
    peer.exec('wg', ['set', PEER_INTERFACE, 'peer', hostKeys.publicKey, 'remove']);
    peer.exec('wg', ['set', PEER_INTERFACE, 'peer', hostKeys.publicKey, 'endpoint', `${HOST_UPLINK_ADDRESS}:${tunnel.listenPort}`, 'allowed-ips', allowedIps]);
  }

  function ping(address: string): number {
    return exitCode(peer, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', address]);
  }

  beforeAll(async () => {
    for (const name of ['vt-wghost', 'vt-wgpeer']) {
      stopWireguardGo(name);
    }
    host = createTestNamespace('vt-wghost');
    namespaces.push(host);
    const tenantA = createTestNamespace('vt-wga');
    namespaces.push(tenantA);
    const tenantB = createTestNamespace('vt-wgb');
    namespaces.push(tenantB);
    peer = createTestNamespace('vt-wgpeer');
    namespaces.push(peer);

    host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    host.exec('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    host.exec('ip', ['addr', 'add', '10.233.71.1/24', 'dev', BRIDGE]);
    host.exec('ip', ['link', 'set', BRIDGE, 'up']);
    for (const [tenant, link, address] of [
      [tenantA, 've-a', ADDRESS_A],
      [tenantB, 've-b', ADDRESS_B],
    ] as const) {
      host.exec('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', tenant.name]);
      host.exec('ip', ['link', 'set', link, 'master', BRIDGE, 'up']);
      tenant.exec('ip', ['addr', 'add', `${address}/24`, 'dev', 'eth0']);
      tenant.exec('ip', ['link', 'set', 'eth0', 'up']);
      tenant.exec('ip', ['route', 'add', 'default', 'via', '10.233.71.1']);
    }
    host.exec('ip', ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', peer.name]);
    host.exec('ip', ['addr', 'add', `${HOST_UPLINK_ADDRESS}/24`, 'dev', 'up0']);
    host.exec('ip', ['link', 'set', 'up0', 'up']);
    host.exec('ip', ['route', 'add', 'default', 'via', PEER_UPLINK_ADDRESS]);
    peer.exec('ip', ['addr', 'add', `${PEER_UPLINK_ADDRESS}/24`, 'dev', 'up0']);
    peer.exec('ip', ['link', 'set', 'up0', 'up']);

    // The peer is a client's own WireGuard, set up with wg as a client would.
    const peerKeyFile = join(dir, 'peer.key');
    writeFileSync(peerKeyFile, `${peerKeys.privateKey}\n`, { mode: 0o600 });
    execFileSync('ip', ['netns', 'exec', peer.name, 'env', '-u', 'WG_PROCESS_FOREGROUND', '-u', 'LOG_LEVEL', 'wireguard-go', PEER_INTERFACE], { stdio: 'ignore' });
    peer.exec('wg', ['set', PEER_INTERFACE, 'private-key', peerKeyFile]);
    peer.exec('ip', ['addr', 'add', `${PEER_TUNNEL_ADDRESS}/24`, 'dev', PEER_INTERFACE]);
    peer.exec('ip', ['link', 'set', PEER_INTERFACE, 'up']);
    peer.exec('ip', ['route', 'add', `${ADDRESS_A}/32`, 'dev', PEER_INTERFACE]);
    connectPeer(`${tunnel.network},${ADDRESS_A}/32`);

    listeners.push(await startListener(tenantA, ADDRESS_A, 'tenant a'));
    listeners.push(await startListener(tenantB, ADDRESS_B, 'tenant b'));
    implementation = kernelHasWireguard(host) ? 'kernel' : 'wireguard-go';
    mainBefore = mainRouting(host);
  });

  afterAll(() => {
    for (const listener of listeners) {
      listener.kill();
    }
    for (const namespace of namespaces) {
      stopWireguardGo(namespace.name);
      namespace.remove();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  describe('tunnel key', () => {
    it('writes the key file with mode 0600', async () => {
      await writeTunnelKey(host.runner(), tunnel, hostKeys.privateKey);

      expect(statSync(tunnel.privateKeyPath).mode & 0o777).toBe(0o600);
    });

    it('writes the key folder with mode 0700', () => {
      expect(statSync(join(networkDir, 'wireguard')).mode & 0o777).toBe(0o700);
    });

    it('writes the key and a newline', () => {
      expect(readFileSync(tunnel.privateKeyPath, 'utf8')).toBe(`${hostKeys.privateKey}\n`);
    });

    it('leaves no temporary file', () => {
      expect(readdirSync(join(networkDir, 'wireguard'))).toEqual([`${TUNNEL_INTERFACE}.key`]);
    });

    it('does not quote the key when the write fails', async () => {
      writeFileSync(join(dir, 'not-a-folder'), '');
      const broken = { ...tunnel, privateKeyPath: join(dir, 'not-a-folder', 'x.key') };
      const error = await writeTunnelKey(host.runner(), broken, hostKeys.privateKey).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(HostCommandError);
      expect(JSON.stringify((error as HostCommandError).toJSON())).not.toContain(hostKeys.privateKey);
    });
  });

  describe('first apply', () => {
    let result: Awaited<ReturnType<typeof applyWireguard>>;
    let roundTrips: number;

    beforeAll(async () => {
      const runner = host.runner();
      const started = performance.now();
      result = await applyWireguard(runner, full);
      process.stderr.write(`MEASURED: applyWireguard, 1 tunnel, create: ${Math.round(performance.now() - started)} ms\n`);
      roundTrips = runner.roundTrips;
    });

    it('reports a change', () => {
      expect(result.changed).toBe(true);
    });

    it('creates the interface with the kernel module or wireguard-go', () => {
      expect(result.created).toEqual([{ interface: TUNNEL_INTERFACE, implementation }]);
    });

    it('applies in one round trip', () => {
      expect(roundTrips).toBe(1);
    });

    it('leaves no difference to the model', async () => {
      expect(diffWireguard(full, await readWireguard(host.runner(), full))).toEqual([]);
    });

    it('reads the implementation back', async () => {
      const state = await readWireguard(host.runner(), full);

      expect(state.interfaces.map((link) => link.implementation)).toEqual([implementation]);
    });

    it('leaves the main routing table unchanged', () => {
      expect(mainRouting(host)).toEqual(mainBefore);
    });

    it('adds no route for the tunnel network to the main table', () => {
      expect(host.exec('ip', ['route', 'show', 'table', 'main', 'match', PEER_TUNNEL_ADDRESS])).not.toContain(TUNNEL_INTERFACE);
    });

    it('writes an executable restore script', () => {
      expect(statSync(restoreScriptPath(full)).mode & 0o777).toBe(0o700);
    });

    it('puts no private key into the restore script', () => {
      expect(readFileSync(restoreScriptPath(full), 'utf8')).not.toContain(hostKeys.privateKey);
    });
  });

  describe('traffic from the peer', () => {
    it('reaches A by ping', () => {
      expect(ping(ADDRESS_A)).toBe(0);
    });

    it('completes a handshake', () => {
      const [, seconds] = peer.exec('wg', ['show', PEER_INTERFACE, 'latest-handshakes']).trim().split('\t');

      expect(Number(seconds)).toBeGreaterThan(0);
    });

    it('reaches a TCP listener in A', () => {
      expect(tcpGreeting(peer, ADDRESS_A)).toBe('tenant a\n');
    });

    it('does not reach B even when the peer routes B into the tunnel', () => {
      connectPeer(`${tunnel.network},${ADDRESS_A}/32,${ADDRESS_B}/32`);
      peer.exec('ip', ['route', 'replace', `${ADDRESS_B}/32`, 'dev', PEER_INTERFACE]);

      expect(ping(ADDRESS_B)).not.toBe(0);
    });

    it('does not reach a TCP listener in B', () => {
      expect(tcpGreeting(peer, ADDRESS_B)).toBeNull();
    });

    it('leaves B reachable from the host itself', () => {
      expect(exitCode(host, 'ping', ['-c', '1', '-W', '2', ADDRESS_B])).toBe(0);
    });

    it('still reaches A through the same tunnel', () => {
      expect(ping(ADDRESS_A)).toBe(0);
    });
  });

  describe('second apply', () => {
    it('changes nothing in one round trip', async () => {
      const runner = host.runner();
      const started = performance.now();
      const result = await applyWireguard(runner, full);
      process.stderr.write(`MEASURED: applyWireguard, 1 tunnel, no change: ${Math.round(performance.now() - started)} ms\n`);

      expect(result).toEqual({ changed: false, actions: [], created: [] });
      expect(runner.roundTrips).toBe(1);
    });

    it('leaves the main routing table unchanged', () => {
      expect(mainRouting(host)).toEqual(mainBefore);
    });
  });

  describe('peer removed from the model', () => {
    beforeAll(async () => {
      await applyWireguard(host.runner(), noPeers);
    });

    it('removes the peer from the interface', async () => {
      const state = await readWireguard(host.runner(), noPeers);

      expect(state.interfaces.map((link) => link.peers)).toEqual([[]]);
    });

    it('leaves no difference to the model', async () => {
      expect(diffWireguard(noPeers, await readWireguard(host.runner(), noPeers))).toEqual([]);
    });

    it('cuts the peer off', () => {
      connectPeer(`${tunnel.network},${ADDRESS_A}/32`);

      expect(ping(ADDRESS_A)).not.toBe(0);
    });
  });

  describe('server removed from the model', () => {
    let result: Awaited<ReturnType<typeof applyWireguard>>;

    beforeAll(async () => {
      result = await applyWireguard(host.runner(), noTunnel);
    });

    it('reports the removals', () => {
      expect(result.actions).toEqual([
        `remove rule 10071: from all iif ${TUNNEL_INTERFACE} lookup 45171`,
        'remove rule 10071: from all to 10.100.71.0/24 lookup 45171',
        'remove routes of table 45171',
        `remove interface ${TUNNEL_INTERFACE}`,
        `write ${restoreScriptPath(full)}`,
      ]);
    });

    it('leaves no interface and no table', async () => {
      expect(await readWireguard(host.runner(), full)).toEqual({ interfaces: [], tables: [] });
    });

    it('leaves no rule that looks up the table', () => {
      expect(host.exec('ip', ['-4', 'rule', 'show'])).not.toContain('45171');
    });

    it('ends wireguard-go', () => {
      expect(wireguardGoPids(host.name)).toEqual([]);
    });

    it('leaves the main routing table unchanged', () => {
      expect(mainRouting(host)).toEqual(mainBefore);
    });
  });

  describe('apply failures', () => {
    it('rejects a key file that belongs to another public key', async () => {
      const other = generateWireguardKeyPair();
      const wrongKey: NetworkModel = { ...full, servers: [server('a', ADDRESS_A, { ...tunnel, publicKey: other.publicKey })] };
      const error = await applyWireguard(host.runner(), wrongKey).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(HostCommandError);
      expect((error as Error).message).toContain(
        `the private key file ${tunnel.privateKeyPath} of ${TUNNEL_INTERFACE} belongs to public key ${hostKeys.publicKey}, but the tunnel's public key is ${other.publicKey}`,
      );
    });

    it('does not quote the private key in the error', async () => {
      const other = generateWireguardKeyPair();
      const wrongKey: NetworkModel = { ...full, servers: [server('a', ADDRESS_A, { ...tunnel, publicKey: other.publicKey })] };
      const error = await applyWireguard(host.runner(), wrongKey).catch((caught: unknown) => caught);

      expect(JSON.stringify((error as HostCommandError).toJSON())).not.toContain(hostKeys.privateKey);
    });

    it('rejects a missing key file', async () => {
      const missing = join(networkDir, 'wireguard', 'missing.key');
      const noKey: NetworkModel = { ...full, servers: [server('a', ADDRESS_A, { ...tunnel, privateKeyPath: missing })] };

      await expect(applyWireguard(host.runner(), noKey)).rejects.toThrow(`the private key file ${missing} of ${TUNNEL_INTERFACE} is missing`);
    });

    it('creates no interface when it fails', async () => {
      expect((await readWireguard(host.runner(), full)).interfaces).toEqual([]);
    });
  });

  describe('simulated reboot', () => {
    let applied: Awaited<ReturnType<typeof readWireguard>>;

    beforeAll(async () => {
      await applyWireguard(host.runner(), full);
      applied = await readWireguard(host.runner(), full);
      // A reboot loses links, rules and routes, but the key and restore files stay.
      host.exec('ip', ['link', 'del', TUNNEL_INTERFACE]);
      host.exec('ip', ['rule', 'del', 'pref', '10071', 'iif', TUNNEL_INTERFACE, 'lookup', '45171']);
      host.exec('ip', ['rule', 'del', 'pref', '10071', 'to', tunnel.network, 'lookup', '45171']);
      host.exec('ip', ['route', 'flush', 'table', '45171']);
    });

    it('starts from a host without the tunnel', async () => {
      expect(await readWireguard(host.runner(), full)).toEqual({ interfaces: [], tables: [] });
    });

    it('restores the applied state with restore-wireguard.sh', async () => {
      host.exec(restoreScriptPath(full));

      expect(await readWireguard(host.runner(), full)).toEqual(applied);
    });

    it('lets the peer reach A again', () => {
      connectPeer(`${tunnel.network},${ADDRESS_A}/32`);

      expect(ping(ADDRESS_A)).toBe(0);
    });

    it('changes nothing when the restore script runs again', () => {
      expect(host.exec(restoreScriptPath(full))).toBe('');
    });

    it('leaves the main routing table unchanged', () => {
      expect(mainRouting(host)).toEqual(mainBefore);
    });
  });
});

describe.runIf(ready)(`applyWireguard with ${BENCH_COUNT} tunnels`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'vome-wireguard-bench-'));
  const networkDir = join(dir, 'network');
  let host: TestNamespace;
  let mainBefore: string;
  const hostKeys = Array.from({ length: BENCH_COUNT }, () => generateWireguardKeyPair());
  const servers: NetworkServer[] = hostKeys.map((pair, index) => {
    const port = BENCH_FIRST_PORT + index;
    return server(`s${index}`, `10.233.71.${20 + index}`, {
      interface: `vwg${port}`,
      listenPort: port,
      table: port,
      rulePriority: 10_100 + index,
      network: `10.101.${index}.0/24`,
      address: `10.101.${index}.1`,
      publicKey: pair.publicKey,
      privateKeyPath: join(networkDir, 'wireguard', `vwg${port}.key`),
      peers: [{ name: 'phone', publicKey: generateWireguardKeyPair().publicKey, address: `10.101.${index}.2` }],
    });
  });
  const many: NetworkModel = { host: networkHost(networkDir), servers };

  beforeAll(async () => {
    stopWireguardGo('vt-wgbench');
    host = createTestNamespace('vt-wgbench');
    host.exec('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    host.exec('ip', ['addr', 'add', '10.233.71.1/24', 'dev', BRIDGE]);
    host.exec('ip', ['link', 'set', BRIDGE, 'up']);
    mainBefore = host.exec('ip', ['-4', 'route', 'show', 'table', 'main']);
    for (const [index, entry] of servers.entries()) {
      await writeTunnelKey(host.runner(), entry.tunnel as NetworkTunnel, hostKeys[index]!.privateKey);
    }
  });

  afterAll(() => {
    stopWireguardGo('vt-wgbench');
    host.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates all tunnels in one round trip', async () => {
    const runner = host.runner();
    const started = performance.now();
    const result = await applyWireguard(runner, many);
    process.stderr.write(`MEASURED: applyWireguard, ${BENCH_COUNT} tunnels, create: ${Math.round(performance.now() - started)} ms\n`);

    expect(result.created).toHaveLength(BENCH_COUNT);
    expect(runner.roundTrips).toBe(1);
  });

  it('leaves no difference to the model', async () => {
    expect(diffWireguard(many, await readWireguard(host.runner(), many))).toEqual([]);
  });

  it('changes nothing on a second apply', async () => {
    const started = performance.now();
    const result = await applyWireguard(host.runner(), many);
    process.stderr.write(`MEASURED: applyWireguard, ${BENCH_COUNT} tunnels, no change: ${Math.round(performance.now() - started)} ms\n`);

    expect(result.changed).toBe(false);
  });

  it('removes all tunnels when the model has none', async () => {
    const empty: NetworkModel = { ...many, servers: [] };
    const started = performance.now();
    await applyWireguard(host.runner(), empty);
    process.stderr.write(`MEASURED: applyWireguard, ${BENCH_COUNT} tunnels, remove all: ${Math.round(performance.now() - started)} ms\n`);

    expect(await readWireguard(host.runner(), empty)).toEqual({ interfaces: [], tables: [] });
  });

  it('leaves the main routing table unchanged', () => {
    expect(host.exec('ip', ['-4', 'route', 'show', 'table', 'main'])).toBe(mainBefore);
  });
});
