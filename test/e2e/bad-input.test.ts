import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { connect } from '@vome/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliancePath, e2eAvailable, type E2eSetup, setUpVome } from '../support/e2e-fixture.js';
import type { ServerJson } from '../support/server-json.js';
import { hostLeftovers } from '../support/vome-cli.js';

const host = await e2eAvailable();

interface ErrorJson {
  error: { code: string; message: string; hints: string[]; fields: Record<string, unknown> };
}

function errorOf(stderr: string): ErrorJson['error'] {
  return (JSON.parse(stderr) as ErrorJson).error;
}

/** Generates a fresh ed25519 public key: one the test host does not have. */
async function otherKey(folder: string): Promise<{ line: string; fingerprint: string }> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${folder}/other-key`]);
  const line = (await readFile(`${folder}/other-key.pub`, 'utf8')).trim();
  return { line, fingerprint: await fingerprintOf(line) };
}

async function fingerprintOf(keyLine: string): Promise<string> {
  return (await execa('ssh-keygen', ['-lf', '-'], { input: keyLine })).stdout.split(' ')[1] ?? '';
}

/**
 * Checks that the test host has no domain, server folder or reservation that
 * it lacked before. Entries may disappear: other checkouts share the host.
 */
async function expectNothingAdded(before: Awaited<ReturnType<typeof hostLeftovers>>): Promise<void> {
  const after = await hostLeftovers(host!);
  expect(after.domains.filter((entry) => !before.domains.includes(entry))).toEqual([]);
  expect(after.serverDirs.filter((entry) => !before.serverDirs.includes(entry))).toEqual([]);
  expect(after.reservations.filter((entry) => !before.reservations.includes(entry))).toEqual([]);
}

describe.skipIf(!host)('bad input is rejected and creates nothing', () => {
  let setup: E2eSetup;
  const base = (name: string, overrides: Record<string, string> = {}) => {
    const flags = { '--account': 'household', '--host': 'bad-host', '--image': 'appliance', '--memory': '512', '--disk': '1', '--vcpus': '1', ...overrides };
    return ['server', 'create', name, ...Object.entries(flags).flat(), '--json'];
  };

  async function expectNoChange(before: Awaited<ReturnType<typeof hostLeftovers>>): Promise<void> {
    await expectNothingAdded(before);
    const listed = await setup.cli.json<{ servers: ServerJson[] }>(['server', 'list', '--all']);
    expect(listed.servers.map((server) => server.name).sort()).toEqual(['taken']);
  }

  beforeAll(async () => {
    setup = await setUpVome(host!, 'bad-host', { start: '10.232.0.60', end: '10.232.0.61' });
    await setup.cli.json(base('taken').slice(0, -1));
  });

  afterAll(async () => {
    await setup?.cli.run(['server', 'destroy', 'taken', '--yes']);
    await setup?.cli.dispose();
  });

  it.each([
    ['Bad_Name', {}, 'invalid server name "Bad_Name": use 1–63 characters of lower-case letters a–z, digits and hyphens, not starting or ending with a hyphen'],
    ['trailing-', {}, 'invalid server name "trailing-": use 1–63 characters'],
    ['a'.repeat(64), {}, `invalid server name "${'a'.repeat(64)}": use 1–63 characters`],
    ['good', { '--subdomain': 'Not.A.Label' }, 'invalid subdomain "Not.A.Label": use 1–63 characters'],
    ['taken', {}, 'a server with the name "taken" already exists'],
    ['fresh', { '--subdomain': 'taken' }, 'a server with the subdomain "taken" already exists'],
    ['fresh', { '--account': 'nobody' }, 'account "nobody" not found'],
    ['fresh', { '--host': 'nowhere' }, 'host "nowhere" not found'],
    ['fresh', { '--image': 'missing' }, 'image "missing" not found'],
    ['fresh', { '--memory': '12' }, 'invalid memory 12: use a whole number of MiB from 256 to 262144'],
  ])('server create %s %j', async (name, overrides, message) => {
    const before = await hostLeftovers(setup.host);
    const result = await setup.cli.run(base(name, overrides));
    expect(result.exitCode).toBe(3);
    expect(errorOf(result.stderr).message.startsWith(message)).toBe(true);
    expect(result.stdout).toBe('');
    await expectNoChange(before);
  });

  it('more vCPUs than the host has are refused', async () => {
    const shown = await setup.cli.json<{ vcpus: number }>(['host', 'show', 'bad-host']);
    const result = await setup.cli.run(base('fresh', { '--vcpus': String(shown.vcpus + 1) }));
    expect(result.exitCode).toBe(3);
    expect(errorOf(result.stderr).message).toBe(`invalid vCPU count ${shown.vcpus + 1}: host "bad-host" has ${shown.vcpus}`);
  });

  it('a disk larger than the host has free is refused', async () => {
    const before = await hostLeftovers(setup.host);
    const result = await setup.cli.run(base('fresh', { '--disk': '16000' }));
    expect(result.exitCode).toBe(3);
    expect(errorOf(result.stderr).message).toMatch(new RegExp(`^invalid disk size 16000 GiB: host "bad-host" has \\d+\\.\\d GiB free in ${setup.host.dataDir}$`));
    await expectNoChange(before);
  });

  it('a name whose libvirt domain already exists on the host is refused', async () => {
    const xml = `${setup.cli.home}/namesake.xml`;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(xml, "<domain type='qemu'><name>vome-namesake</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='q35'>hvm</type></os></domain>");
    await execa('virsh', ['-q', '-c', 'qemu:///system', 'define', xml]);
    try {
      const uuid = (await execa('virsh', ['-q', '-c', 'qemu:///system', 'domuuid', 'vome-namesake'])).stdout.trim();
      const result = await setup.cli.run(base('namesake'));
      expect(result.exitCode).toBe(3);
      expect(errorOf(result.stderr).message).toBe(`host "bad-host" already has a libvirt domain named "vome-namesake" (uuid ${uuid}) that is not a server of this vome`);
      const listed = await setup.cli.json<{ servers: ServerJson[] }>(['server', 'list', '--all']);
      expect(listed.servers.map((server) => server.name)).toEqual(['taken']);
    } finally {
      await execa('virsh', ['-q', '-c', 'qemu:///system', 'undefine', 'vome-namesake']);
    }
  });

  it('a full address range is refused', async () => {
    await setup.cli.json(base('second').slice(0, -1));
    const before = await hostLeftovers(setup.host);
    const result = await setup.cli.run(base('third'));
    expect(result.exitCode).toBe(3);
    expect(errorOf(result.stderr)).toMatchObject({ code: 'address_range_full', message: 'host "bad-host" has no free address left in 10.232.0.60–10.232.0.61' });
    await expectNothingAdded(before);
    await setup.cli.json(['server', 'destroy', 'second', '--yes']);
  });

  it.each([
    ['random bytes', 'head -c 65536 /dev/urandom > "$1"', 'is not a disk image: it is neither qcow2 nor a raw disk with a partition table'],
    ['a corrupt qcow2', 'qemu-img create -q -f qcow2 "$1" 64M && dd if=/dev/urandom of="$1" bs=1 seek=104 count=400 conv=notrunc status=none', ''],
    ['an unsupported format', 'qemu-img create -q -f vmdk "$1" 64M', 'has format "vmdk"; vome accepts qcow2 and raw images'],
  ])('image add of %s is refused', async (_label, make, message) => {
    const file = `${setup.cli.home}/bad-image`;
    await execa('sh', ['-c', make, 'sh', file]);
    const result = await setup.cli.run(['image', 'add', file, '--name', 'bad', '--json']);
    expect(result.exitCode).toBe(3);
    expect(errorOf(result.stderr).code).toBe('invalid_input');
    expect(errorOf(result.stderr).message).toContain(message);
    const images = await setup.cli.json<{ images: Array<{ name: string }> }>(['image', 'list']);
    expect(images.images.map((image) => image.name)).toEqual(['appliance']);
  });

  it('image add with a wrong --sha256 is refused', async () => {
    const result = await setup.cli.run(['image', 'add', appliancePath(), '--name', 'bad', '--sha256', '0'.repeat(64), '--json']);
    expect(result.exitCode).toBe(3);
    expect(errorOf(result.stderr).message).toMatch(new RegExp(`^SHA-256 mismatch for ${appliancePath()}: expected 0{64}, got [0-9a-f]{64}$`));
  });

  it('a host presenting another key is refused with both fingerprints', async () => {
    const pinned = await otherKey(setup.cli.home);
    const result = await setup.cli.run(['host', 'add', 'impostor', '--address', setup.host.sshHost, '--host-key', pinned.line, '--data-dir', setup.host.dataDir, '--json']);
    expect(result.exitCode).toBe(4);
    const error = errorOf(result.stderr);
    expect(error.code).toBe('host_key_mismatch');
    const presented = await fingerprintOf(setup.host.hostKey);
    expect(error.message).toBe(`host key of "impostor" does not match the pinned key: expected ${pinned.fingerprint}, received ${presented}`);
    expect(error.fields).toMatchObject({ expected: pinned.fingerprint, received: presented });
    const hosts = await setup.cli.json<{ hosts: Array<{ name: string }> }>(['host', 'list']);
    expect(hosts.hosts.map((h) => h.name)).toEqual(['bad-host']);
  });

  it('an enrolled host whose key changed is refused before any command runs', async () => {
    const password = (await readFile(`${setup.cli.home}/postgres/password`, 'utf8')).trim();
    const db = connect(`postgres://postgres:${password}@127.0.0.1:${setup.cli.env.VOME_EMBEDDED_PG_PORT}/vome`);
    const sshLog = `/var/lib/vome-testhost/${setup.host.namespace}/sshd.log`;
    try {
      const pinned = await db.selectFrom('hosts').select('host_key').where('name', '=', 'bad-host').executeTakeFirstOrThrow();
      const changed = await otherKey(`${setup.cli.home}/changed`).catch(async () => {
        await execa('mkdir', ['-p', `${setup.cli.home}/changed`]);
        return otherKey(`${setup.cli.home}/changed`);
      });
      await db.updateTable('hosts').set({ host_key: changed.line }).where('name', '=', 'bad-host').execute();
      const logBefore = (await readFile(sshLog, 'utf8')).length;

      const result = await setup.cli.run(['server', 'stop', 'taken', '--json']);
      expect(result.exitCode).toBe(4);
      expect(errorOf(result.stderr).code).toBe('host_key_mismatch');
      const shown = await setup.cli.json<ServerJson>(['server', 'show', 'taken']);
      expect(shown.state).toBe('running');
      // sshd logs every accepted public key; none may appear for this attempt.
      const logAfter = (await readFile(sshLog, 'utf8')).slice(logBefore);
      expect(logAfter).not.toMatch(/Accepted publickey/);

      // Pinning the changed key fails too: the host does not present it.
      const wrong = await setup.cli.run(['host', 'set-key', 'bad-host', '--host-key', changed.line, '--json']);
      expect(wrong.exitCode).toBe(4);
      expect(errorOf(wrong.stderr).code).toBe('host_key_mismatch');
      expect(errorOf(wrong.stderr).hints[0]).toBe('if the host was reinstalled, check the new key on its console and pin it with `vome host set-key bad-host --host-key "…"`');

      // Pinning the key the host really presents restores access.
      const repinned = await setup.cli.json<{ hostKeySha256: string }>(['host', 'set-key', 'bad-host', '--host-key', pinned.host_key ?? '']);
      expect(repinned.hostKeySha256).toBe(await fingerprintOf(setup.host.hostKey));
      const audit = await setup.cli.json<{ events: Array<{ action: string; details: { previous: string; pinned: string } }> }>(['audit', 'list', '--action', 'host.set-key']);
      expect(audit.events[0]?.details).toEqual({ name: 'bad-host', previous: changed.fingerprint, pinned: repinned.hostKeySha256 });
    } finally {
      await db.destroy();
    }
  });

  it('a host where libvirt is down is refused and nothing is created', async () => {
    const pidFile = `/var/lib/vome-testhost/${setup.host.namespace}/libvirtd.pid`;
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    process.kill(pid, 'SIGTERM');
    for (let tick = 0; tick < 100 && (await execa('kill', ['-0', String(pid)], { reject: false })).exitCode === 0; tick += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    try {
      const before = await hostLeftovers(setup.host);
      const result = await setup.cli.run(base('fresh'));
      expect(result.exitCode).toBe(4);
      const error = errorOf(result.stderr);
      expect(error.code).toBe('host_not_ready');
      expect(error.message).toMatch(/^libvirt on host "bad-host" is not reachable: /);
      await expectNothingAdded(before);
      const listed = await setup.cli.json<{ servers: ServerJson[] }>(['server', 'list', '--all']);
      expect(listed.servers.map((server) => server.name).sort()).toEqual(['second', 'taken']);
    } finally {
      await execa('bash', [`${import.meta.dirname}/../../scripts/test-host/up.sh`], { stdout: 'ignore' });
    }
  });
});
