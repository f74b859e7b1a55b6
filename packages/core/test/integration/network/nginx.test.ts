import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { renderNginxSite } from '../../../src/network/nginx-config.js';
import { NginxConfigError, applyNginx, diffNginx, readNginx } from '../../../src/network/nginx-host.js';
import type { NetworkHost, NetworkModel, NetworkServer } from '../../../src/network/network-model.js';
import { checkTlsCertificate } from '../../../src/network/tls-certificate.js';
import type { CommandRunner } from '../../../src/runner/command-runner.js';
import { type TestNamespace, createTestNamespace } from '../../support/network-namespace.js';
import { hasCommand, isRoot, requirement } from '../../support/requirements.js';

const tools = requirement(
  isRoot && ['ip', 'nginx', 'openssl', 'curl', 'flock'].every((tool) => hasCommand(tool)),
  'nginx tests need root and ip, nginx, openssl, curl and flock (packages iproute2, nginx, openssl, curl, util-linux)',
);

const FAKE_HOME_ASSISTANT = fileURLToPath(new URL('../../../../../test/support/fake-home-assistant.mjs', import.meta.url));
/** nginx's address on the client's link. The client resolves every name to it. */
const EDGE_ADDRESS = '10.233.0.1';
/** The RFC 6455 example key and its Sec-WebSocket-Accept value. */
const WEBSOCKET_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const WEBSOCKET_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

interface LoggedRequest {
  name: string;
  method: string;
  path: string;
  hosts: string[];
  forwarded: Record<string, string[]>;
  status: number;
}

/** A fake Home Assistant in a tenant namespace. It writes its request log to a file before each response. */
class FakeHomeAssistant {
  private constructor(
    private readonly process: ChildProcess,
    private readonly logPath: string,
  ) {}

  static start(namespace: string, name: string, port: number, logPath: string): Promise<FakeHomeAssistant> {
    const log = openSync(logPath, 'a');
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, FAKE_HOME_ASSISTANT, '--port', String(port), '--name', name], {
      stdio: ['ignore', 'pipe', log],
    });
    closeSync(log);
    const fake = new FakeHomeAssistant(child, logPath);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`fake Home Assistant ${name} exited with ${code}: ${readFileSync(logPath, 'utf8')}`));
      };
      const timer = setTimeout(() => {
        child.off('exit', onExit);
        reject(new Error(`fake Home Assistant ${name} did not print "listening" within 10 s`));
      }, 10_000);
      child.once('exit', onExit);
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening')) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(fake);
        }
      });
    });
  }

  requests(): LoggedRequest[] {
    return readFileSync(this.logPath, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LoggedRequest);
  }

  lastRequest(): LoggedRequest | undefined {
    return this.requests().at(-1);
  }

  stop(): void {
    if (this.process.pid !== undefined && this.process.exitCode === null) {
      this.process.kill('SIGTERM');
    }
  }
}

interface HttpResponse {
  status: number;
  headers: Map<string, string[]>;
  body: string;
}

/** Parses curl's `--include` output: the status line, the headers and the body. */
function parseResponse(output: string): HttpResponse {
  const end = output.indexOf('\r\n\r\n');
  const [statusLine = '', ...headerLines] = output.slice(0, end).split('\r\n');
  const headers = new Map<string, string[]>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: output.slice(end + 4) };
}

/** Makes certificates with the openssl CLI. */
function makeKey(path: string): void {
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], { stdio: 'ignore' });
}

function makeCertificate(path: string, keyPath: string, domain: string, days: number): void {
  const request = `${path}.csr`;
  const names = `subjectAltName=DNS:*.${domain},DNS:${domain}`;
  execFileSync('openssl', ['req', '-new', '-key', keyPath, '-subj', `/CN=*.${domain}`, '-addext', names, '-out', request], { stdio: 'ignore' });
  // A negative -days makes a certificate that expired before now.
  execFileSync('openssl', ['x509', '-req', '-in', request, '-signkey', keyPath, '-days', String(days), '-copy_extensions', 'copy', '-out', path], {
    stdio: 'ignore',
  });
}

function server(name: string, ipv4: string, haPort: number): NetworkServer {
  return { id: `id-${name}`, name, subdomain: name, ipv4, mac: '52:54:00:00:00:01', haPort, tap: 'unused', tunnel: null };
}

describe.runIf(tools)('nginx edge', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vome-nginx-'));
  const tls = join(dir, 'tls');
  const mainConfig = join(dir, 'nginx.conf');
  const pidFile = join(dir, 'nginx.pid');
  const namespaces: TestNamespace[] = [];
  const fakes: FakeHomeAssistant[] = [];
  let host: TestNamespace;
  let net: TestNamespace;
  let runner: CommandRunner;
  let fakeA: FakeHomeAssistant;
  let fakeB: FakeHomeAssistant;

  const networkHost: NetworkHost = {
    name: 'ha-test',
    bridge: 'br-ng',
    bridgeAddress: '10.232.0.1',
    bridgeNetwork: '10.232.0.0/24',
    uplink: 've-net',
    blockedNetworks: [],
    haDomain: 'ha.test',
    tlsCertificatePath: join(tls, 'wildcard.pem'),
    tlsKeyPath: join(tls, 'wildcard.key'),
    nginxSitePath: join(dir, 'sites', 'vome.conf'),
    nginxMainConfigPath: mainConfig,
    networkDir: join(dir, 'network'),
  };
  const serverA = server('a', '10.232.0.12', 8123);
  const serverB = server('b', '10.232.0.13', 80);
  const both: NetworkModel = { host: networkHost, servers: [serverA, serverB] };
  const onlyA: NetworkModel = { host: networkHost, servers: [serverA] };

  /** Sends one request from the client namespace, resolving the URL's host name to nginx. */
  function request(url: string, headers: string[] = []): HttpResponse {
    const { hostname, port, protocol } = new URL(url);
    const resolvePort = port || (protocol === 'https:' ? '443' : '80');
    const args = ['-sS', '--include', '--http1.1', '--max-time', '5', '--cacert', join(tls, 'wildcard.pem')];
    args.push('--resolve', `${hostname}:${resolvePort}:${EDGE_ADDRESS}`, ...headers.flatMap((header) => ['-H', header]), url);
    return parseResponse(net.exec('curl', args));
  }

  /** Returns the pids of nginx's worker processes, read from /proc. */
  function workerPids(): string[] {
    const master = readFileSync(pidFile, 'utf8').trim();
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          return new RegExp(`^PPid:\\s*${master}$`, 'm').test(readFileSync(`/proc/${pid}/status`, 'utf8'));
        } catch {
          return false;
        }
      })
      .sort();
  }

  function stopNginx(): void {
    if (!existsSync(pidFile)) {
      return;
    }
    const master = Number(readFileSync(pidFile, 'utf8').trim());
    try {
      process.kill(master, 'SIGTERM');
    } catch {
      // It already stopped.
    }
  }

  beforeAll(async () => {
    host = createTestNamespace('vt-nghost');
    namespaces.push(host);
    const tenantA = createTestNamespace('vt-nga');
    namespaces.push(tenantA);
    const tenantB = createTestNamespace('vt-ngb');
    namespaces.push(tenantB);
    net = createTestNamespace('vt-ngnet');
    namespaces.push(net);

    host.exec('ip', ['link', 'add', 'br-ng', 'type', 'bridge']);
    host.exec('ip', ['addr', 'add', '10.232.0.1/24', 'dev', 'br-ng']);
    host.exec('ip', ['link', 'set', 'br-ng', 'up']);
    for (const [tenant, link, address] of [
      [tenantA, 've-a', '10.232.0.12/24'],
      [tenantB, 've-b', '10.232.0.13/24'],
    ] as const) {
      host.exec('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', tenant.name]);
      host.exec('ip', ['link', 'set', link, 'master', 'br-ng', 'up']);
      tenant.exec('ip', ['addr', 'add', address, 'dev', 'eth0']);
      tenant.exec('ip', ['link', 'set', 'eth0', 'up']);
    }
    host.exec('ip', ['link', 'add', 've-net', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', net.name]);
    host.exec('ip', ['addr', 'add', `${EDGE_ADDRESS}/24`, 'dev', 've-net']);
    host.exec('ip', ['link', 'set', 've-net', 'up']);
    net.exec('ip', ['addr', 'add', '10.233.0.2/24', 'dev', 'eth0']);
    net.exec('ip', ['link', 'set', 'eth0', 'up']);

    mkdirSync(tls);
    makeKey(join(tls, 'wildcard.key'));
    makeCertificate(join(tls, 'wildcard.pem'), join(tls, 'wildcard.key'), 'ha.test', 30);

    // Workers run as www-data and create their temporary folders here.
    chmodSync(dir, 0o755);
    writeFileSync(
      mainConfig,
      `user www-data;
worker_processes 1;
pid ${pidFile};
error_log ${join(dir, 'error.log')} notice;
events { worker_connections 256; }
http {
    access_log ${join(dir, 'access.log')};
    client_body_temp_path ${join(dir, 'client-body')};
    proxy_temp_path ${join(dir, 'proxy')};
    fastcgi_temp_path ${join(dir, 'fastcgi')};
    uwsgi_temp_path ${join(dir, 'uwsgi')};
    scgi_temp_path ${join(dir, 'scgi')};
    include ${networkHost.nginxSitePath};
}
`,
    );

    fakeA = await FakeHomeAssistant.start(tenantA.name, 'a', 8123, join(dir, 'fake-a.log'));
    fakes.push(fakeA);
    fakeB = await FakeHomeAssistant.start(tenantB.name, 'b', 80, join(dir, 'fake-b.log'));
    fakes.push(fakeB);
    runner = host.runner('ha-test');
  });

  afterAll(() => {
    stopNginx();
    for (const fake of fakes) {
      fake.stop();
    }
    for (const namespace of namespaces) {
      namespace.remove();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  describe('before nginx runs', () => {
    it('rejects a first file that fails nginx -t and leaves no file', async () => {
      const missing = join(tls, 'missing.pem');
      const broken: NetworkModel = { host: { ...networkHost, tlsCertificatePath: missing }, servers: [serverA] };
      const error = await applyNginx(runner, broken).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NginxConfigError);
      expect((error as Error).message).toContain(`cannot load certificate "${missing}"`);
      expect(existsSync(networkHost.nginxSitePath)).toBe(false);
    });

    it('writes the site file without a reload when nginx is stopped', async () => {
      expect(await applyNginx(runner, both)).toEqual({ changed: true, reloaded: false });
      expect(readFileSync(networkHost.nginxSitePath, 'utf8')).toBe(renderNginxSite(both));
    });

    it('writes the site file with mode 0644', () => {
      expect(host.exec('stat', ['-c', '%a', networkHost.nginxSitePath]).trim()).toBe('644');
    });

    it('reads back the file it wrote', async () => {
      const actual = await readNginx(runner, both);
      expect(actual).toBe(renderNginxSite(both));
      expect(diffNginx(renderNginxSite(both), actual)).toEqual([]);
    });

    it('starts nginx with the main configuration', () => {
      host.exec('nginx', ['-c', mainConfig]);
      expect(workerPids().length).toBe(1);
    });
  });

  describe('routing', () => {
    it('sends a.ha.test to server A', () => {
      const response = request('https://a.ha.test/');
      expect(response.status).toBe(200);
      expect(response.body).toBe('home-assistant a');
    });

    it('sends b.ha.test to server B on port 80', () => {
      const response = request('https://b.ha.test/');
      expect(response.status).toBe(200);
      expect(response.body).toBe('home-assistant b');
    });

    it.each([
      ['an unknown name', 'https://c.ha.test/', []],
      ['a name below a server', 'https://a.ha.test/', ['Host: x.a.ha.test']],
      ['the bare domain', 'https://a.ha.test/', ['Host: ha.test']],
      ['another domain', 'https://a.ha.test/', ['Host: a.ha.test.evil.test']],
    ])('answers 404 for %s and proxies nothing', (_case, url, headers) => {
      const before = fakeA.requests().length + fakeB.requests().length;
      const response = request(url, headers);
      expect(response.status).toBe(404);
      expect(fakeA.requests().length + fakeB.requests().length).toBe(before);
    });

    it.each([
      ['upper case with a trailing dot', 'A.HA.TEST.'],
      ['an explicit port', 'a.ha.test:443'],
    ])('sends a Host in %s to server A', (_case, hostHeader) => {
      const response = request('https://a.ha.test/', [`Host: ${hostHeader}`]);
      expect(response.body).toBe('home-assistant a');
      expect(fakeA.lastRequest()?.hosts).toEqual(['a.ha.test']);
    });

    it('passes exactly one Host header upstream', () => {
      request('https://a.ha.test/lovelace/0?edit=1');
      expect(fakeA.lastRequest()?.path).toBe('/lovelace/0');
      expect(fakeA.lastRequest()?.hosts).toEqual(['a.ha.test']);
    });

    it('redirects HTTP to HTTPS for a known name', () => {
      const response = request('http://a.ha.test/lovelace/0?edit=1');
      expect(response.status).toBe(301);
      expect(response.headers.get('location')).toEqual(['https://a.ha.test/lovelace/0?edit=1']);
    });

    it('answers 404 over HTTP for an unknown name', () => {
      expect(request('http://c.ha.test/').status).toBe(404);
    });
  });

  describe('headers', () => {
    it.each([
      ['strict-transport-security', ['max-age=63072000; includeSubDomains']],
      ['x-content-type-options', ['nosniff']],
      ['referrer-policy', ['no-referrer']],
      ['x-frame-options', ['SAMEORIGIN']],
    ])('sends one %s header from server A', (name, values) => {
      expect(request('https://a.ha.test/').headers.get(name)).toEqual(values);
    });

    it('sends HSTS on a 404', () => {
      expect(request('https://c.ha.test/').headers.get('strict-transport-security')).toEqual(['max-age=63072000; includeSubDomains']);
    });

    it('strips forwarding headers a client sends', () => {
      const response = request('https://a.ha.test/', [
        'X-Forwarded-For: 203.0.113.9',
        'X-Forwarded-For: not-an-address',
        'X-Forwarded-Proto: http',
        'X-Forwarded-Host: evil.test',
        'X-Real-IP: 203.0.113.9',
        'Forwarded: for=203.0.113.9',
      ]);
      expect(response.status).toBe(200);
      expect(fakeA.lastRequest()?.forwarded).toEqual({});
    });

    it('sends no forwarding headers of its own', () => {
      request('https://b.ha.test/');
      expect(fakeB.lastRequest()?.forwarded).toEqual({});
    });
  });

  describe('websocket', () => {
    it('upgrades /api/websocket with the right accept key', () => {
      const response = request('https://a.ha.test/api/websocket', [
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Key: ${WEBSOCKET_KEY}`,
      ]);
      expect(response.status).toBe(101);
      expect(response.headers.get('sec-websocket-accept')).toEqual([WEBSOCKET_ACCEPT]);
      expect(response.body).toContain('{"type":"auth_required"');
      expect(fakeA.lastRequest()?.status).toBe(101);
    });
  });

  describe('changes', () => {
    it('does not rewrite or reload an unchanged file', async () => {
      const workers = workerPids();
      const roundTrips = runner.roundTrips;
      expect(await applyNginx(runner, both)).toEqual({ changed: false, reloaded: false });
      expect(runner.roundTrips).toBe(roundTrips + 1);
      expect(workerPids()).toEqual(workers);
    });

    it('stops routing a removed server', async () => {
      expect(diffNginx(renderNginxSite(onlyA), await readNginx(runner, onlyA))).toEqual([
        { part: 'nginx', action: 'remove', item: 'b.ha.test → 10.232.0.13:80' },
      ]);
      const before = fakeB.requests().length;
      expect(await applyNginx(runner, onlyA)).toEqual({ changed: true, reloaded: true });
      expect(request('https://b.ha.test/').status).toBe(404);
      expect(fakeB.requests().length).toBe(before);
    });

    it('rejects a file that fails nginx -t and keeps the old one', async () => {
      const missing = join(tls, 'missing.pem');
      const broken: NetworkModel = { host: { ...networkHost, tlsCertificatePath: missing }, servers: [serverA, serverB] };
      const workers = workerPids();
      const error = await applyNginx(runner, broken).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NginxConfigError);
      expect((error as Error).message).toContain(`nginx: [emerg] cannot load certificate "${missing}"`);
      expect(readFileSync(networkHost.nginxSitePath, 'utf8')).toBe(renderNginxSite(onlyA));
      expect(workerPids()).toEqual(workers);
      expect(request('https://a.ha.test/').body).toBe('home-assistant a');
    });

    it('leaves no temporary file next to the site file', () => {
      expect(readdirSync(join(dir, 'sites')).sort()).toEqual(['.vome.conf.vome-lock', 'vome.conf']);
    });

    it('routes server B again after it is added back', async () => {
      expect(await applyNginx(runner, both)).toEqual({ changed: true, reloaded: true });
      expect(request('https://b.ha.test/').body).toBe('home-assistant b');
    });
  });

  describe('checkTlsCertificate', () => {
    it('accepts the wildcard certificate and its key', async () => {
      const facts = await checkTlsCertificate(runner, networkHost);
      expect(facts.dnsNames).toEqual(['*.ha.test', 'ha.test']);
      expect(facts.daysLeft).toBe(29);
    });

    it('rejects a certificate for another domain', async () => {
      makeCertificate(join(tls, 'other.pem'), join(tls, 'wildcard.key'), 'other.test', 30);
      const error = await checkTlsCertificate(runner, { ...networkHost, tlsCertificatePath: join(tls, 'other.pem') }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).message).toBe(`TLS certificate ${join(tls, 'other.pem')} does not cover *.ha.test: it is for *.other.test, other.test`);
    });

    it('rejects an expired certificate', async () => {
      makeCertificate(join(tls, 'expired.pem'), join(tls, 'wildcard.key'), 'ha.test', -1);
      const error = await checkTlsCertificate(runner, { ...networkHost, tlsCertificatePath: join(tls, 'expired.pem') }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).message).toMatch(new RegExp(`^TLS certificate ${join(tls, 'expired.pem')} expired on \\d{4}-\\d\\d-\\d\\dT`));
    });

    it('rejects a key that does not match', async () => {
      makeKey(join(tls, 'other.key'));
      const error = await checkTlsCertificate(runner, { ...networkHost, tlsKeyPath: join(tls, 'other.key') }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).message).toBe(
        `TLS key ${join(tls, 'other.key')} does not match the certificate ${join(tls, 'wildcard.pem')}: their public keys differ`,
      );
    });

    it.each([
      ['certificate', { tlsCertificatePath: '/nonexistent/vome/cert.pem' }, '/nonexistent/vome/cert.pem'],
      ['key', { tlsKeyPath: '/nonexistent/vome/key.pem' }, '/nonexistent/vome/key.pem'],
    ])('rejects a missing %s file', async (kind, change, path) => {
      const error = await checkTlsCertificate(runner, { ...networkHost, ...change }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as Error).message).toBe(`TLS ${kind} file ${path} not found on host "ha-test", or not a readable file`);
    });

    it('never prints the private key', async () => {
      const script: string[] = [];
      const output: string[] = [];
      const recording: CommandRunner = {
        hostName: runner.hostName,
        roundTrips: 0,
        run: async (text, options) => {
          script.push(text);
          const result = await runner.run(text, options);
          output.push(result.stdout, result.stderr);
          return result;
        },
        putFile: (localPath, remotePath, options) => runner.putFile(localPath, remotePath, options),
        close: async () => undefined,
      };
      await checkTlsCertificate(recording, networkHost);
      expect(script.length).toBe(1);
      expect(output.join('')).not.toContain('PRIVATE KEY');
    });
  });

  describe('10,000 servers', () => {
    it('applies a 10,000-server map', async () => {
      const many: NetworkServer[] = [serverA, serverB];
      for (let index = 0; index < 9_998; index += 1) {
        many.push(server(`s${index}`, `10.232.${Math.floor(index / 250) + 1}.${(index % 250) + 2}`, 8123));
      }
      const model: NetworkModel = { host: networkHost, servers: many };

      const renderStart = performance.now();
      const site = renderNginxSite(model);
      const renderMs = performance.now() - renderStart;
      const applyStart = performance.now();
      const result = await applyNginx(runner, model);
      const applyMs = performance.now() - applyStart;
      const unchangedStart = performance.now();
      const unchanged = await applyNginx(runner, model);
      const unchangedMs = performance.now() - unchangedStart;
      const testStart = performance.now();
      const check = spawnSync('ip', ['netns', 'exec', host.name, 'nginx', '-t', '-q', '-c', mainConfig]);
      const testMs = performance.now() - testStart;
      process.stderr.write(
        `nginx with 10,000 servers: render ${renderMs.toFixed(0)} ms, apply with nginx -t and reload ${applyMs.toFixed(0)} ms, ` +
          `unchanged apply ${unchangedMs.toFixed(0)} ms, nginx -t alone ${testMs.toFixed(0)} ms, site file ${Buffer.byteLength(site)} bytes\n`,
      );

      expect(result).toEqual({ changed: true, reloaded: true });
      expect(unchanged).toEqual({ changed: false, reloaded: false });
      expect(check.status).toBe(0);
      expect(request('https://a.ha.test/').body).toBe('home-assistant a');
      expect(request('https://s9997.ha.test/').status).toBe(502);
      expect(await applyNginx(runner, both)).toEqual({ changed: true, reloaded: true });
    });
  });
});
