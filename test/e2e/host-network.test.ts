import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tapName } from '@vome/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, type TestNamespace } from '../../packages/core/test/support/network-namespace.js';
import { e2eAvailable, type E2eSetup, setUpVome } from '../support/e2e-fixture.js';
import { type NamespaceProcess, startInNamespace } from '../support/namespace-process.js';
import type { OperationJson } from '../support/server-json.js';

// Two tenants on the test host, proven with real packets. Appliance VMs cover
// the path through nginx. Where a test needs a shell inside the tenant (for
// spoofing, UDP, or a fake Home Assistant with websockets), network namespaces
// are plugged into the bridge in the VMs' place, with the same tap name, MAC
// and address.

const host = await e2eAvailable();
const BOOT_TIMEOUT_MS = 120_000;
const PROBE = join(import.meta.dirname, '../support/net-probe.mjs');
const FAKE_HA = join(import.meta.dirname, '../support/fake-home-assistant.mjs');
// The machine's end of the test host's SSH link, where vome itself runs.
const CONTROL_PLANE_ADDRESS = '10.231.0.1';

interface PeerListJson {
  tunnel: { interface: string; listenPort: number; network: string; address: string; publicKey: string };
  peers: { name: string; address: string; publicKey: string }[];
}
interface PlanJson {
  changes: { part: string; action: string; item: string }[];
}
interface ApplyJson extends PlanJson {
  changed: Record<string, boolean>;
}

function run(program: string, args: string[], input?: string): string {
  return execFileSync(program, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs a command in a namespace; returns its exit code and output without throwing. */
function tryIn(namespace: string, program: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync('ip', ['netns', 'exec', namespace, program, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(!host)('tenant isolation and the edge on the test host', () => {
  let setup: E2eSetup;
  let a: OperationJson;
  let b: OperationJson;
  const uplinkAddress = () => setup.host.uplinkCidr.split('/')[0] as string;
  const domain = () => setup.host.haDomain;
  const internet = () => setup.host.internetNamespace;
  const processes: NamespaceProcess[] = [];
  const namespaces: TestNamespace[] = [];
  let scratch: string;
  let routeToControlPlane = '';

  /** Fetches a URL from the internet namespace through the host's nginx. */
  function curl(url: string, extra: string[] = []): { status: string; body: string; headers: string } {
    const name = new URL(url).hostname.replace(/\.$/, '');
    const result = tryIn(internet(), 'curl', [
      ...['-sS', '--max-time', '10', '--cacert', setup.host.tlsCertificate, '-D', '-', '-o', '-'],
      ...['--resolve', `${name}:443:${uplinkAddress()}`, '--resolve', `${name}.:443:${uplinkAddress()}`, '--resolve', `${name}:80:${uplinkAddress()}`],
      ...extra,
      url,
    ]);
    const [headers = '', body = ''] = result.stdout.split(/\r\n\r\n/, 2);
    const status = headers.split(' ')[1] ?? `curl exit ${result.code}: ${result.stderr}`;
    return { status, body, headers: headers.toLowerCase() };
  }

  async function waitForBody(url: string, text: string): Promise<string> {
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    let last = '';
    while (Date.now() < deadline) {
      const response = curl(url);
      last = `${response.status} ${response.body.slice(0, 200)}`;
      if (response.status === '200' && response.body.includes(text)) {
        return response.body;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new Error(`${url} did not answer "${text}" within ${BOOT_TIMEOUT_MS} ms; last answer: ${last}`);
  }

  /** Replaces a stopped server's VM on the bridge with a namespace that has its tap name, MAC and address. */
  function plugTenant(namespaceName: string, server: OperationJson['server']): TestNamespace {
    const tenant = createTestNamespace(namespaceName);
    namespaces.push(tenant);
    const tap = tapName(server.ipv4);
    spawnSync('ip', ['netns', 'exec', setup.host.namespace, 'ip', 'link', 'delete', tap], { stdio: 'ignore' });
    run('ip', ['link', 'add', tap, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', tenant.name]);
    run('ip', ['link', 'set', tap, 'netns', setup.host.namespace]);
    run('ip', ['netns', 'exec', setup.host.namespace, 'ip', 'link', 'set', tap, 'master', setup.host.bridge, 'up']);
    tenant.exec('ip', ['link', 'set', 'eth0', 'address', server.mac, 'up']);
    tenant.exec('ip', ['addr', 'add', `${server.ipv4}/24`, 'dev', 'eth0']);
    tenant.exec('ip', ['route', 'add', 'default', 'via', setup.host.bridgeCidr.split('/')[0] as string]);
    return tenant;
  }

  function probe(namespace: string, args: string[]): { code: number; stdout: string } {
    const result = tryIn(namespace, 'node', [PROBE, ...args]);
    return { code: result.code, stdout: result.stdout };
  }

  function listen(namespace: string, args: string[]): NamespaceProcess {
    const started = startInNamespace(namespace, 'node', [PROBE, ...args]);
    processes.push(started);
    return started;
  }

  function vomeRules(): string {
    const save = run('ip', ['netns', 'exec', setup.host.namespace, 'iptables-save']);
    return save
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .map((line) => line.replace(/\[\d+:\d+\]$/, ''))
      .join('\n');
  }

  beforeAll(async () => {
    scratch = await mkdtemp('/var/tmp/vome-net-e2e-');
    setup = await setUpVome(host!, 'net-host', { start: '10.232.0.160', end: '10.232.0.179' });
    await setup.cli.json(['host', 'bootstrap', setup.hostName]);
    routeToControlPlane = run('ip', ['netns', 'exec', setup.host.namespace, 'ip', 'route', 'get', CONTROL_PLANE_ADDRESS]);
  });

  afterAll(async () => {
    for (const started of processes) {
      await started.stop();
    }
    for (const tenant of namespaces) {
      tenant.remove();
    }
    for (const name of ['net-a', 'net-b']) {
      await setup?.cli.run(['server', 'destroy', name, '--yes']);
    }
    await setup?.cli.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('bootstrap runs again with every part ok', async () => {
    const again = await setup.cli.json<{ items: { name: string; status: string }[] }>(['host', 'bootstrap', setup.hostName]);
    expect(again.items.filter((item) => item.status === 'changed')).toEqual([]);
    expect(again.items.map((item) => item.name)).toEqual(expect.arrayContaining(['packages', 'forwarding', 'bridge-filtering', 'bridge', 'dhcp', 'nginx']));
  });

  it('routes each subdomain over HTTPS to its own server', async () => {
    const create = (name: string) =>
      setup.cli.json<OperationJson>(['server', 'create', name, '--account', setup.account, '--host', setup.hostName, '--image', setup.image, '--memory', '512', '--disk', '1', '--vcpus', '1']);
    a = await create('net-a');
    b = await create('net-b');
    expect(a.server.ipv4).toBe('10.232.0.160');
    expect(b.server.ipv4).toBe('10.232.0.161');

    expect(await waitForBody(`https://net-a.${domain()}/`, 'vome-appliance net-a')).toContain('vome-appliance net-a');
    expect(await waitForBody(`https://net-b.${domain()}/`, 'vome-appliance net-b')).toContain('vome-appliance net-b');
  });

  it('matches host names the way nginx normalises them', () => {
    expect(curl(`https://NET-A.${domain().toUpperCase()}./`).body).toContain('vome-appliance net-a');
    expect(curl(`https://net-a.${domain()}:443/`).body).toContain('vome-appliance net-a');
    // The wildcard certificate covers one level only, so curl skips its check here.
    expect(curl(`https://x.net-a.${domain()}/`, ['--insecure']).status).toBe('404');
    expect(curl(`https://nobody.${domain()}/`).status).toBe('404');
  });

  it('redirects HTTP to HTTPS and sends strict headers', () => {
    const plain = curl(`http://net-a.${domain()}/`);
    expect(plain.status).toBe('301');
    expect(plain.headers).toContain(`location: https://net-a.${domain()}/`);
    const secure = curl(`https://net-a.${domain()}/`);
    expect(secure.headers).toMatch(/strict-transport-security: max-age=\d+/);
    expect(secure.headers).toContain('x-content-type-options: nosniff');
  });

  it('plan shows no change after the operations applied the network', async () => {
    const plan = await setup.cli.json<PlanJson>(['host', 'plan', setup.hostName]);
    expect(plan.changes).toEqual([]);
  });

  describe('with namespaces in place of the VMs', () => {
    let tenantA: TestNamespace;
    let tenantB: TestNamespace;
    const udpListeners = new Map<string, NamespaceProcess>();

    beforeAll(async () => {
      await setup.cli.json(['server', 'stop', 'net-a']);
      await setup.cli.json(['server', 'stop', 'net-b']);
      tenantA = plugTenant('vt-neta', a.server);
      tenantB = plugTenant('vt-netb', b.server);
      for (const [tenant, name] of [
        [tenantA, 'net-a'],
        [tenantB, 'net-b'],
      ] as const) {
        const ha = startInNamespace(tenant.name, 'node', [FAKE_HA, '--port', '8123', '--name', name, '--listen', '0.0.0.0']);
        processes.push(ha);
        await ha.waitFor('listening');
        await listen(tenant.name, ['listen-tcp', '0.0.0.0', '7000', `tcp-${name}`]).waitFor('listening');
        const udp = listen(tenant.name, ['listen-udp', '0.0.0.0', '7001']);
        await udp.waitFor('listening');
        udpListeners.set(name, udp);
      }
    });

    it('stopped servers keep their routes: nginx reaches the tenant', () => {
      expect(curl(`https://net-a.${domain()}/`).body).toContain('home-assistant net-a');
      expect(curl(`https://net-b.${domain()}/`).body).toContain('home-assistant net-b');
    });

    it('A cannot reach B by ICMP, TCP or UDP', async () => {
      expect(tryIn(tenantA.name, 'ping', ['-c', '1', '-W', '2', b.server.ipv4]).code).not.toBe(0);
      expect(probe(tenantA.name, ['connect-tcp', b.server.ipv4, '7000', '3000']).code).not.toBe(0);
      // The same datagram to the host's DNS port shows that A can send at all.
      probe(tenantA.name, ['send-udp', b.server.ipv4, '7001', 'from-a']);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(udpListeners.get('net-b')?.lines.filter((line) => line.includes('from-a'))).toEqual([]);
    });

    it('A cannot send with B\'s address or MAC', async () => {
      const server = listen(internet(), ['listen-tcp', setup.host.internetAddress, '7200', 'internet']);
      await server.waitFor('listening');
      expect(probe(tenantA.name, ['connect-tcp', setup.host.internetAddress, '7200', '5000']).stdout).toBe('internet');
      await server.waitFor('"connection"');

      // B's address as a second address on A's interface, used as the source.
      tenantA.exec('ip', ['addr', 'add', `${b.server.ipv4}/32`, 'dev', 'eth0']);
      const spoofedAddress = probe(tenantA.name, ['connect-tcp', setup.host.internetAddress, '7200', '3000', b.server.ipv4]);
      tenantA.exec('ip', ['addr', 'del', `${b.server.ipv4}/32`, 'dev', 'eth0']);
      expect(spoofedAddress.code).not.toBe(0);

      tenantA.exec('ip', ['link', 'set', 'eth0', 'address', b.server.mac]);
      const spoofedMac = probe(tenantA.name, ['connect-tcp', setup.host.internetAddress, '7200', '3000']);
      tenantA.exec('ip', ['link', 'set', 'eth0', 'address', a.server.mac]);
      expect(spoofedMac.code).not.toBe(0);
      // The probes above block this process, so the listener's lines are read now.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(server.lines.filter((line) => line.includes('"connection"'))).toHaveLength(1);
      await server.stop();

      // The spoofed packets taught the host and the bridge wrong neighbours.
      run('ip', ['netns', 'exec', setup.host.namespace, 'ip', 'neigh', 'flush', 'dev', setup.host.bridge]);
      tryIn(tenantB.name, 'ping', ['-c', '1', '-W', '1', setup.host.bridgeCidr.split('/')[0] as string]);
    });

    it('A cannot reach the host\'s SSH port or other ports, only DHCP and DNS', async () => {
      const bridgeAddress = setup.host.bridgeCidr.split('/')[0] as string;
      expect(probe(tenantA.name, ['connect-tcp', bridgeAddress, '22', '3000']).code).not.toBe(0);
      expect(probe(tenantA.name, ['connect-tcp', setup.host.sshHost, '22', '3000']).code).not.toBe(0);
      expect(probe(tenantA.name, ['connect-tcp', uplinkAddress(), '443', '3000']).code).not.toBe(0);

      const dns = listen(setup.host.namespace, ['listen-udp', bridgeAddress, '53']);
      await dns.waitFor('listening');
      probe(tenantA.name, ['send-udp', bridgeAddress, '53', 'dns-query']);
      expect(await dns.waitFor('dns-query', 5000)).toContain(`"from":"${a.server.ipv4}"`);
      await dns.stop();
    });

    it('A reaches the internet through NAT', async () => {
      const server = listen(internet(), ['listen-tcp', setup.host.internetAddress, '7100', 'internet']);
      await server.waitFor('listening');
      expect(probe(tenantA.name, ['connect-tcp', setup.host.internetAddress, '7100', '5000']).stdout).toBe('internet');
      expect(await server.waitFor('connection')).toContain(`"from":"${uplinkAddress()}"`);
      await server.stop();
    });

    it('A cannot reach metadata or blocked networks through the uplink', async () => {
      const targets = ['169.254.169.254', '192.168.77.1'];
      for (const address of targets) {
        tryIn(internet(), 'ip', ['addr', 'add', `${address}/32`, 'dev', 'vthu1']);
        tryIn(setup.host.namespace, 'ip', ['route', 'replace', `${address}/32`, 'via', setup.host.internetAddress]);
      }
      const listeners = targets.map((address) => listen(internet(), ['listen-tcp', address, '80', 'secret']));
      for (const listener of listeners) {
        await listener.waitFor('listening');
      }
      const results = targets.map((address) => probe(tenantA.name, ['connect-tcp', address, '80', '3000']).code);
      for (const [index, address] of targets.entries()) {
        await listeners[index]?.stop();
        tryIn(setup.host.namespace, 'ip', ['route', 'del', `${address}/32`]);
        tryIn(internet(), 'ip', ['addr', 'del', `${address}/32`, 'dev', 'vthu1']);
      }
      expect(results).toEqual([1, 1]);
    });

    it('the internet cannot reach a VM directly', () => {
      tryIn(internet(), 'ip', ['route', 'replace', '10.232.0.0/24', 'via', uplinkAddress()]);
      const direct = probe(internet(), ['connect-tcp', a.server.ipv4, '8123', '3000']);
      tryIn(internet(), 'ip', ['route', 'del', '10.232.0.0/24']);
      expect(direct.code).not.toBe(0);
    });

    it('upgrades /api/websocket to a websocket with 101', () => {
      const response = curl(`https://net-a.${domain()}/api/websocket`, [
        ...['--http1.1', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket'],
        ...['-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='],
      ]);
      expect(response.status).toBe('101');
      expect(response.headers).toContain('sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=');
    });

    it('a client X-Forwarded-For never makes Home Assistant answer 400', () => {
      const response = curl(`https://net-a.${domain()}/`, ['-H', 'X-Forwarded-For: 203.0.113.9', '-H', 'Forwarded: for=203.0.113.9']);
      expect(response.status).toBe('200');
    });

    it('WireGuard peer reaches only its server', async () => {
      const privateKey = run('wg', ['genkey']).trim();
      const publicKey = run('wg', ['pubkey'], `${privateKey}\n`).trim();
      await setup.cli.json(['server', 'peer', 'add', 'net-a', '--name', 'laptop', '--public-key', publicKey]);
      const list = await setup.cli.json<PeerListJson>(['server', 'peer', 'list', 'net-a']);
      const peerAddress = list.peers[0]?.address as string;
      expect(list.peers).toEqual([{ name: 'laptop', address: peerAddress, publicKey }]);

      // The peer is a machine on the internet: wireguard-go in the internet namespace.
      const peer = { name: internet(), exec: (program: string, args: string[]) => run('ip', ['netns', 'exec', internet(), program, ...args]) };
      const keyFile = join(scratch, 'peer.key');
      run('sh', ['-c', `umask 077; printf '%s\\n' "$1" > "$2"`, 'sh', privateKey, keyFile]);
      const wireguardGo = startInNamespace(peer.name, 'wireguard-go', ['-f', 'wgpeer']);
      processes.push(wireguardGo);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      peer.exec('wg', ['set', 'wgpeer', 'private-key', keyFile, 'peer', list.tunnel.publicKey, 'endpoint', `${uplinkAddress()}:${list.tunnel.listenPort}`, 'allowed-ips', `${list.tunnel.network},${a.server.ipv4}/32,${b.server.ipv4}/32`, 'persistent-keepalive', '1']);
      peer.exec('ip', ['addr', 'add', `${peerAddress}/32`, 'dev', 'wgpeer']);
      peer.exec('ip', ['link', 'set', 'wgpeer', 'up', 'mtu', '1420']);
      for (const target of [list.tunnel.network, `${a.server.ipv4}/32`, `${b.server.ipv4}/32`]) {
        peer.exec('ip', ['route', 'add', target, 'dev', 'wgpeer']);
      }

      expect(probe(peer.name, ['connect-tcp', a.server.ipv4, '7000', '10000']).stdout).toBe('tcp-net-a');
      expect(tryIn(peer.name, 'ping', ['-c', '1', '-W', '3', a.server.ipv4]).code).toBe(0);
      expect(probe(peer.name, ['connect-tcp', b.server.ipv4, '7000', '3000']).code).not.toBe(0);
      expect(probe(peer.name, ['connect-tcp', list.tunnel.address, '22', '3000']).code).not.toBe(0);
      expect(probe(peer.name, ['connect-tcp', setup.host.bridgeCidr.split('/')[0] as string, '22', '3000']).code).not.toBe(0);
      await wireguardGo.stop();

      const route = run('ip', ['netns', 'exec', setup.host.namespace, 'ip', 'route', 'get', CONTROL_PLANE_ADDRESS]);
      expect(route).toBe(routeToControlPlane);
    });
  });

  it('check reports drift, apply repairs it, and a second apply changes nothing', async () => {
    run('ip', ['netns', 'exec', setup.host.namespace, 'iptables', '-F', 'VOME-FORWARD']);
    const check = await setup.cli.run(['host', 'check', setup.hostName, '--json']);
    expect(check.exitCode).toBe(6);
    expect(check.stderr).toContain('drift: + firewall:');

    const applied = await setup.cli.json<ApplyJson>(['host', 'apply', setup.hostName]);
    expect(applied.changed.firewall).toBe(true);
    const before = vomeRules();
    const again = await setup.cli.json<ApplyJson>(['host', 'apply', setup.hostName]);
    expect(again.changes).toEqual([]);
    expect(again.changed).toEqual({ firewall: false, nginx: false, wireguard: false });
    expect(vomeRules()).toBe(before);
  });

  it('a simulated reboot restores the same rules from the saved file', () => {
    const before = vomeRules();
    for (const tool of ['iptables', 'ip6tables']) {
      for (const table of tool === 'iptables' ? ['filter', 'nat'] : ['filter']) {
        run('ip', ['netns', 'exec', setup.host.namespace, tool, '-t', table, '-F']);
        run('ip', ['netns', 'exec', setup.host.namespace, tool, '-t', table, '-X']);
      }
    }
    expect(vomeRules()).not.toContain('VOME-');
    run('ip', ['netns', 'exec', setup.host.namespace, `${setup.host.dataDir}/network/restore-firewall.sh`]);
    expect(vomeRules()).toBe(before);
  });

  it('refuses bad input and keeps the working configuration', async () => {
    const overlap = await setup.cli.run(['host', 'set', setup.hostName, '--tunnel-network', '10.232.0.0/16', '--json']);
    expect(overlap.exitCode).toBe(3);
    expect(overlap.stderr).toContain('overlaps the bridge network');

    const otherCertificate = join(scratch, 'other.pem');
    const otherKey = join(scratch, 'other.key');
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=*.other.test', '-addext', 'subjectAltName=DNS:*.other.test', '-keyout', otherKey, '-out', otherCertificate]);
    const mismatch = await setup.cli.run(['host', 'set', setup.hostName, '--tls-cert', otherCertificate, '--tls-key', otherKey, '--json']);
    expect(mismatch.exitCode).toBe(3);
    expect(mismatch.stderr).toContain(`*.${domain()}`);

    const shortKey = await setup.cli.run(['server', 'peer', 'add', 'net-a', '--name', 'bad', '--public-key', 'abc', '--json']);
    expect(shortKey.exitCode).toBe(3);
    expect(shortKey.stderr).toContain('44');

    const plan = await setup.cli.json<PlanJson>(['host', 'plan', setup.hostName]);
    expect(plan.changes).toEqual([]);
    expect(curl(`https://net-a.${domain()}/`).status).toBe('200');
  });

  it('rebuild re-keys the server\'s WireGuard interface', async () => {
    const before = await setup.cli.json<PeerListJson>(['server', 'peer', 'list', 'net-b']);
    // B's processes keep its namespace, and so the veth, alive: the tap goes explicitly.
    run('ip', ['netns', 'exec', setup.host.namespace, 'ip', 'link', 'delete', tapName(b.server.ipv4)]);
    await setup.cli.json(['server', 'rebuild', 'net-b', '--yes']);
    const after = await setup.cli.json<PeerListJson>(['server', 'peer', 'list', 'net-b']);
    expect(after.tunnel.interface).toBe(before.tunnel.interface);
    expect(after.tunnel.publicKey).not.toBe(before.tunnel.publicKey);
    const live = run('ip', ['netns', 'exec', setup.host.namespace, 'wg', 'show', after.tunnel.interface, 'public-key']).trim();
    expect(live).toBe(after.tunnel.publicKey);
  });

  it('destroy leaves no rule, map entry or interface of the server', async () => {
    const tunnel = (await setup.cli.json<PeerListJson>(['server', 'peer', 'list', 'net-b'])).tunnel;
    await setup.cli.json(['server', 'destroy', 'net-b', '--yes']);

    const rules = vomeRules() + run('ip', ['netns', 'exec', setup.host.namespace, 'ip6tables-save']);
    expect(rules).not.toContain(b.server.ipv4);
    expect(rules).not.toContain(b.server.mac);
    expect(rules).not.toContain(tapName(b.server.ipv4));
    expect(rules).not.toContain(tunnel.interface);
    expect(run('cat', [setup.host.nginxSite])).not.toContain(`net-b.${domain()}`);
    expect(tryIn(setup.host.namespace, 'ip', ['link', 'show', tunnel.interface]).code).not.toBe(0);
    expect(run('ip', ['netns', 'exec', setup.host.namespace, 'ip', 'rule'])).not.toContain(tunnel.interface);
    expect(curl(`https://net-b.${domain()}/`).status).toBe('404');
  });
});
