import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { requirement, isRoot, hasCommand } from '../../packages/core/test/support/requirements.js';
import { readTestHost, type TestHost, VomeCli } from './vome-cli.js';

export interface E2eSetup {
  cli: VomeCli;
  host: TestHost;
  hostName: string;
  account: string;
  image: string;
}

/** Returns the path of the appliance image that scripts/appliance/build.sh builds. */
export function appliancePath(): string {
  return process.env.VOME_TEST_APPLIANCE ?? join(process.env.VOME_CACHE ?? join(homedir(), '.cache', 'vome'), 'appliance', 'vome-appliance.qcow2');
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * Checks what end-to-end tests need: root, the test host, the built CLI and
 * the appliance image. Returns undefined (after printing why) when a test
 * file must skip; in CI a missing piece is an error.
 */
export async function e2eAvailable(): Promise<TestHost | undefined> {
  if (!requirement(isRoot, 'end-to-end tests need root (network namespaces, libvirt)')) {
    return undefined;
  }
  if (!requirement(hasCommand('virsh') && hasCommand('curl'), 'end-to-end tests need virsh and curl: run scripts/setup.sh')) {
    return undefined;
  }
  const host = await readTestHost();
  if (!requirement(host !== undefined, 'the test host is not up: run scripts/test-host/up.sh')) {
    return undefined;
  }
  if (!requirement(await exists(appliancePath()), `the appliance image ${appliancePath()} is missing: run scripts/appliance/build.sh`)) {
    return undefined;
  }
  if (!requirement(await exists(join(import.meta.dirname, '../../packages/cli/dist/commands')), 'the CLI is not built: run pnpm build')) {
    return undefined;
  }
  return host;
}

/** Private ranges that VMs on the test host may not reach through its uplink. */
export const TEST_BLOCKED_NETWORKS = '172.16.0.0/12,192.168.0.0/16';

/** Returns the `vome host add` flags that enrol the test host with its network settings. */
export function hostAddFlags(host: TestHost): string[] {
  return [
    ...['--address', host.sshHost, '--port', host.sshPort, '--host-key', host.hostKey],
    ...['--data-dir', host.dataDir, '--bridge', host.bridge, '--uplink', host.uplink, '--ha-domain', host.haDomain],
    ...['--tls-cert', host.tlsCertificate, '--tls-key', host.tlsKey, '--nginx-site', host.nginxSite, '--nginx-config', host.nginxMainConfig],
    // The namespace that plays the internet sits in 10.233.0.0/24, so only
    // the other private ranges are blocked.
    ...['--blocked-networks', TEST_BLOCKED_NETWORKS],
  ];
}

/**
 * Gives a test file its own vome: a fresh VOME_HOME and embedded PostgreSQL,
 * the test host enrolled over SSH with the given address range (so files
 * never hand out the same address), the appliance image and an account.
 */
export async function setUpVome(host: TestHost, hostName: string, range: { start: string; end: string }): Promise<E2eSetup> {
  const cli = await VomeCli.create({ VOME_SSH_KEY: host.sshKey, VOME_SHUTDOWN_GRACE_SECONDS: '15' });
  await cli.json(['host', 'add', hostName, ...hostAddFlags(host), '--range-start', range.start, '--range-end', range.end]);
  await cli.json(['image', 'add', appliancePath(), '--name', 'appliance']);
  await cli.json(['account', 'add', 'household', '--name', 'Test Household', '--email', 'household@example.org']);
  return { cli, host, hostName, account: 'household', image: 'appliance' };
}
