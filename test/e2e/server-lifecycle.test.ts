import { readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from '@vome/core';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eAvailable, type E2eSetup, setUpVome } from '../support/e2e-fixture.js';
import type { OperationJson, ServerJson } from '../support/server-json.js';
import { hostLeftovers, inHost, waitForHttp } from '../support/vome-cli.js';

const host = await e2eAvailable();
const BOOT_TIMEOUT_MS = 120_000;

async function domainState(name: string): Promise<string> {
  const { execa } = await import('execa');
  const result = await execa('virsh', ['-q', '-c', 'qemu:///system', 'domstate', `vome-${name}`], { reject: false });
  return result.exitCode === 0 ? result.stdout.trim() : 'absent';
}

describe.skipIf(!host)('server lifecycle over SSH on the test host', () => {
  let setup: E2eSetup;
  let created: OperationJson;
  const name = 'life-1';

  beforeAll(async () => {
    setup = await setUpVome(host!, 'lifecycle-host', { start: '10.232.0.10', end: '10.232.0.29' });
  });

  afterAll(async () => {
    await setup?.cli.run(['server', 'destroy', name, '--yes']);
    await setup?.cli.dispose();
  });

  it('creates a server that boots and answers HTTP with its name', async () => {
    created = await setup.cli.json<OperationJson>(['server', 'create', name, '--account', setup.account, '--host', setup.hostName, '--image', setup.image, '--memory', '512', '--disk', '1', '--vcpus', '1']);
    expect(created.server.state).toBe('running');
    expect(created.server.host).toBe(setup.hostName);
    expect(created.server.ipv4).toBe('10.232.0.10');
    expect(created.server.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(created.operation).toMatchObject({ kind: 'create', state: 'succeeded', attempts: 1, resumed: false });

    const shown = await setup.cli.json<ServerJson>(['server', 'show', name]);
    expect(shown).toMatchObject({ name, state: 'running', host: setup.hostName, ipv4: '10.232.0.10', mac: created.server.mac });

    const body = await waitForHttp(setup.host, `http://${created.server.ipv4}:8123/`, `vome-appliance ${name}`, BOOT_TIMEOUT_MS);
    expect(body).toContain(`<h1>vome-appliance ${name}</h1>`);
    expect(await domainState(name)).toBe('running');
  });

  it('suspends: the VM is off and the time is recorded', async () => {
    const result = await setup.cli.json<OperationJson>(['server', 'suspend', name]);
    expect(result.server.state).toBe('suspended');
    expect(result.server.suspendedAt).not.toBeNull();
    expect(await domainState(name)).toBe('shut off');
  });

  it('resumes: the VM runs and answers again', async () => {
    const result = await setup.cli.json<OperationJson>(['server', 'resume', name]);
    expect(result.server.state).toBe('running');
    expect(result.server.suspendedAt).toBeNull();
    await waitForHttp(setup.host, `http://${created.server.ipv4}:8123/`, `vome-appliance ${name}`, BOOT_TIMEOUT_MS);
  });

  it('stops and starts', async () => {
    const stopped = await setup.cli.json<OperationJson>(['server', 'stop', name]);
    expect(stopped.server.state).toBe('stopped');
    expect(await domainState(name)).toBe('shut off');

    const started = await setup.cli.json<OperationJson>(['server', 'start', name]);
    expect(started.server.state).toBe('running');
    await waitForHttp(setup.host, `http://${created.server.ipv4}:8123/`, `vome-appliance ${name}`, BOOT_TIMEOUT_MS);
  });

  it('rebuilds with a fresh disk and the same address and MAC', async () => {
    const folder = `${setup.host.dataDir}/servers/${created.server.id}`;
    const before = await stat(`${folder}/disk.qcow2`);
    // A file vome does not know: a rebuild must not carry it over.
    await writeFile(`${folder}/left-by-test`, 'old disk era');

    const rebuilt = await setup.cli.json<OperationJson>(['server', 'rebuild', name, '--yes']);
    expect(rebuilt.server).toMatchObject({ id: created.server.id, state: 'running', ipv4: created.server.ipv4, mac: created.server.mac });

    const after = await stat(`${folder}/disk.qcow2`);
    expect(after.mtimeMs).toBeGreaterThan(before.mtimeMs);
    await expect(stat(`${folder}/left-by-test`)).rejects.toThrow('ENOENT');
    await waitForHttp(setup.host, `http://${created.server.ipv4}:8123/`, `vome-appliance ${name}`, BOOT_TIMEOUT_MS);
  });

  it('destroys leaving no domain, disk, NVRAM or reservation, and frees the address', async () => {
    const destroyed = await setup.cli.json<OperationJson>(['server', 'destroy', name, '--yes']);
    expect(destroyed.server.state).toBe('destroyed');

    const leftovers = await hostLeftovers(setup.host);
    expect(leftovers.domains).not.toContain(`vome-${name}`);
    expect(leftovers.serverDirs).not.toContain(created.server.id);
    expect(leftovers.reservations).not.toContain(`${created.server.id}.conf`);
    const ping = await inHost(setup.host, 'curl', ['-s', '--max-time', '2', `http://${created.server.ipv4}:8123/`]);
    expect(ping.exitCode).not.toBe(0);

    const listed = await setup.cli.json<{ servers: ServerJson[] }>(['server', 'list']);
    expect(listed.servers.map((server) => server.name)).not.toContain(name);
    const hostShown = await setup.cli.json<{ addressesInUse: number }>(['host', 'show', setup.hostName]);
    expect(hostShown.addressesInUse).toBe(0);
  });

  it('destroying it again succeeds and says it was already destroyed', async () => {
    const result = await setup.cli.run(['server', 'destroy', name, '--yes']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^server ${name} was already destroyed at \\d{4}-\\d{2}-\\d{2}T`));
    const json = await setup.cli.json<{ operation: unknown; server: ServerJson }>(['server', 'destroy', name, '--yes']);
    expect(json.operation).toBeNull();
    expect(json.server.state).toBe('destroyed');
  });

  it('audit verify passes, then fails naming an event edited in SQL', async () => {
    const verified = await setup.cli.json<{ ok: boolean; events: number }>(['audit', 'verify']);
    expect(verified.ok).toBe(true);
    // host.add, image.add, account.add, server.record and one event per operation.
    expect(verified.events).toBe(11);

    const password = (await readFile(`${setup.cli.home}/postgres/password`, 'utf8')).trim();
    const db = connect(`postgres://postgres:${password}@127.0.0.1:${setup.cli.env.VOME_EMBEDDED_PG_PORT}/vome`);
    try {
      const target = await db.selectFrom('audit_events').select('id').where('action', '=', 'server.suspend').executeTakeFirstOrThrow();
      await sql`ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only`.execute(db);
      await sql`UPDATE audit_events SET details = jsonb_set(details, '{name}', '"someone-else"') WHERE id = ${target.id}`.execute(db);
      await sql`ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only`.execute(db);

      const result = await setup.cli.run(['audit', 'verify', '--json']);
      expect(result.exitCode).toBe(6);
      const error = JSON.parse(result.stderr) as { error: { code: string; message: string; fields: { eventId: string; reason: string } } };
      expect(error.error.code).toBe('audit_chain_broken');
      expect(error.error.fields).toMatchObject({ eventId: target.id, reason: 'edited' });
      expect(error.error.message).toContain(`audit chain broken at event ${target.id}`);
    } finally {
      await db.destroy();
    }
  });
});
