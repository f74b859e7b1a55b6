// Benchmark: a host's edge at scale, inside throwaway network namespaces on
// this machine (real iptables, real nginx, no SSH). Prints, in one run:
//   - applying a 1,000-server firewall with vome's atomic apply (one
//     iptables-restore call per address family) beside the same rules added
//     with one `iptables` call each;
//   - adding the 1,001st server to that firewall;
//   - rendering, checking (`nginx -t`) and reloading an nginx map of 10,000
//     servers.
// Needs root, iptables, nginx and openssl. Measures, asserts nothing.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyFirewall, renderFirewall } from '../../packages/core/src/network/firewall-host.js';
import type { NetworkModel, NetworkServer } from '../../packages/core/src/network/network-model.js';
import { tapName } from '../../packages/core/src/network/network-model.js';
import { applyNginx } from '../../packages/core/src/network/nginx-host.js';
import { tunnelForSlot } from '../../packages/core/src/network/tunnels.js';
import { numberToIpv4 } from '../../packages/core/src/naming/ipv4.js';
import { createTestNamespace } from '../../packages/core/test/support/network-namespace.js';

const FIREWALL_SERVERS = 1000;
const NGINX_SERVERS = 10_000;
const PUBLIC_KEY = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=';

if (process.getuid?.() !== 0) {
  process.stderr.write('the network benchmark needs root (network namespaces, iptables, nginx)\n');
  process.exit(1);
}

const folder = await mkdtemp('/var/tmp/vome-bench-net-');

/** Builds a host model with `count` servers on a /16 bridge, each with its own tunnel. */
function model(count: number, withTunnels: boolean): NetworkModel {
  const bridgeBase = 10 * 2 ** 24 + 232 * 2 ** 16;
  const host = { data_dir: folder, tunnel_network: '10.64.0.0/10', tunnel_port_start: 20_000 };
  const servers: NetworkServer[] = Array.from({ length: count }, (_, index) => {
    const ipv4 = numberToIpv4(bridgeBase + 10 + index);
    const macTail = (index + 1).toString(16).padStart(6, '0');
    return {
      id: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
      name: `server-${index}`,
      subdomain: `home-${index}`,
      ipv4,
      mac: `52:54:00:${macTail.slice(0, 2)}:${macTail.slice(2, 4)}:${macTail.slice(4, 6)}`,
      haPort: index % 2 === 0 ? 8123 : 80,
      tap: tapName(ipv4),
      tunnel: withTunnels ? tunnelForSlot(host, index, PUBLIC_KEY, []) : null,
    };
  });
  return {
    host: {
      name: 'bench',
      bridge: 'br-haos',
      bridgeAddress: '10.232.0.1',
      bridgeNetwork: '10.232.0.0/16',
      uplink: 'eth0',
      blockedNetworks: [],
      haDomain: 'ha.bench.test',
      tlsCertificatePath: join(folder, 'fullchain.pem'),
      tlsKeyPath: join(folder, 'privkey.pem'),
      nginxSitePath: join(folder, 'sites', 'vome.conf'),
      nginxMainConfigPath: join(folder, 'nginx.conf'),
      networkDir: join(folder, 'network'),
    },
    servers,
  };
}

function seconds(milliseconds: number): string {
  return `${(milliseconds / 1000).toFixed(2)} s`;
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, performance.now() - started];
}

/** Turns iptables-restore input into one `iptables` command per chain and rule. */
function oneCallPerRule(restoreText: string, tool: string): string {
  const lines: string[] = [];
  const wait = tool === 'ebtables' ? '' : ' -w';
  let table = 'filter';
  for (const line of restoreText.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1);
    } else if (line.startsWith(':')) {
      const [chain, policy] = line.slice(1).split(' ');
      // ebtables chains carry their policy; iptables user chains have none.
      const setPolicy = tool === 'ebtables' && policy ? ` -P ${policy}` : '';
      lines.push(`${tool}${wait} -t ${table} -N ${chain}${setPolicy}`);
    } else if (line.startsWith('-A ')) {
      lines.push(`${tool}${wait} -t ${table} ${line}`);
    }
  }
  return lines.join('\n');
}

function ruleCount(text: string): number {
  return text.split('\n').filter((line) => line.startsWith('-A ')).length;
}

const rows: [string, string][] = [];
const firewallHost = createTestNamespace('vt-benchfw');
const nginxHost = createTestNamespace('vt-benchng');
try {
  // --- Firewall: atomic apply beside one call per rule
  const thousand = model(FIREWALL_SERVERS, true);
  const ruleset = renderFirewall(thousand);
  const runner = firewallHost.runner('bench');
  const [, atomicMs] = await timed(() => applyFirewall(runner, thousand));
  const rules = `${ruleCount(ruleset.v4)} IPv4 + ${ruleCount(ruleset.v6)} IPv6 + ${ruleCount(ruleset.bridge)} bridge rules`;
  rows.push([`firewall, ${FIREWALL_SERVERS} servers (${rules}), atomic apply`, seconds(atomicMs)]);

  const [, unchangedMs] = await timed(() => applyFirewall(runner, thousand));
  rows.push([`firewall, ${FIREWALL_SERVERS} servers, apply again with no change`, seconds(unchangedMs)]);

  const [, addMs] = await timed(() => applyFirewall(runner, model(FIREWALL_SERVERS + 1, true)));
  rows.push([`firewall, add server ${FIREWALL_SERVERS + 1}, atomic apply`, seconds(addMs)]);

  for (const table of ['filter', 'nat']) {
    firewallHost.exec('iptables', ['-t', table, '-F']);
    firewallHost.exec('iptables', ['-t', table, '-X']);
  }
  firewallHost.exec('ip6tables', ['-F']);
  firewallHost.exec('ip6tables', ['-X']);
  firewallHost.exec('ebtables', ['-t', 'nat', '--init-table']);
  const script = [oneCallPerRule(ruleset.v4, 'iptables'), oneCallPerRule(ruleset.v6, 'ip6tables'), oneCallPerRule(ruleset.bridge, 'ebtables'), ''].join('\n');
  const [, oneByOneMs] = await timed(async () => firewallHost.exec('bash', ['-e'], script));
  rows.push([`firewall, ${FIREWALL_SERVERS} servers, one iptables call per rule and chain (${script.trim().split('\n').length} calls)`, seconds(oneByOneMs)]);

  // --- nginx: a map of 10,000 servers
  execFileSync('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
    ...['-subj', '/CN=*.ha.bench.test', '-addext', 'subjectAltName=DNS:*.ha.bench.test'],
    ...['-keyout', join(folder, 'privkey.pem'), '-out', join(folder, 'fullchain.pem')],
  ], { stdio: 'ignore' });
  execFileSync('mkdir', ['-p', join(folder, 'sites'), join(folder, 'tmp')]);
  await writeFile(
    join(folder, 'nginx.conf'),
    `worker_processes 1;
pid ${folder}/nginx.pid;
error_log ${folder}/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${folder}/tmp/body;
    proxy_temp_path ${folder}/tmp/proxy;
    fastcgi_temp_path ${folder}/tmp/fastcgi;
    uwsgi_temp_path ${folder}/tmp/uwsgi;
    scgi_temp_path ${folder}/tmp/scgi;
    include ${folder}/sites/*.conf;
}
`,
  );
  const nginxRunner = nginxHost.runner('bench');
  await applyNginx(nginxRunner, model(1, false));
  nginxHost.exec('nginx', ['-c', join(folder, 'nginx.conf')]);

  const big = model(NGINX_SERVERS, false);
  const [, nginxMs] = await timed(() => applyNginx(nginxRunner, big));
  rows.push([`nginx, map of ${NGINX_SERVERS} servers: render, write, nginx -t, reload`, seconds(nginxMs)]);
  const [, testMs] = await timed(async () => nginxHost.exec('nginx', ['-t', '-q', '-c', join(folder, 'nginx.conf')]));
  rows.push([`nginx, map of ${NGINX_SERVERS} servers: nginx -t alone`, seconds(testMs)]);
  const [, nginxAddMs] = await timed(() => applyNginx(nginxRunner, model(NGINX_SERVERS + 1, false)));
  rows.push([`nginx, add server ${NGINX_SERVERS + 1}: render, write, nginx -t, reload`, seconds(nginxAddMs)]);
} finally {
  const pid = execFileSync('sh', ['-c', `cat ${folder}/nginx.pid 2>/dev/null || true`], { encoding: 'utf8' }).trim();
  if (/^\d+$/.test(pid)) {
    process.kill(Number(pid), 'SIGTERM');
  }
  firewallHost.remove();
  nginxHost.remove();
  await rm(folder, { recursive: true, force: true });
}

const width = Math.max(...rows.map(([label]) => label.length));
process.stdout.write('\nhost edge benchmark (inside network namespaces on this machine)\n');
for (const [label, value] of rows) {
  process.stdout.write(`${label.padEnd(width)}  ${value}\n`);
}
