import { OPERATION_STEPS } from '@vome/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eAvailable, type E2eSetup, setUpVome } from '../support/e2e-fixture.js';
import type { OperationJson } from '../support/server-json.js';
import { hostLeftovers } from '../support/vome-cli.js';

const host = await e2eAvailable();

describe.skipIf(!host)('operations killed after each step finish when run again', () => {
  let setup: E2eSetup;
  const createArgs = (name: string) => ['server', 'create', name, '--account', 'household', '--host', 'crash-host', '--image', 'appliance', '--memory', '512', '--disk', '1', '--vcpus', '1'];

  beforeAll(async () => {
    setup = await setUpVome(host!, 'crash-host', { start: '10.232.0.30', end: '10.232.0.49' });
  });

  afterAll(async () => {
    const listed = await setup?.cli.json<{ servers: Array<{ name: string }> }>(['server', 'list']).catch(() => ({ servers: [] }));
    for (const server of listed?.servers ?? []) {
      await setup.cli.run(['server', 'destroy', server.name, '--yes']);
    }
    await setup?.cli.dispose();
  });

  async function expectNothingLeft(serverId: string, name: string): Promise<void> {
    const leftovers = await hostLeftovers(setup.host);
    expect(leftovers.domains).not.toContain(`vome-${name}`);
    expect(leftovers.serverDirs).not.toContain(serverId);
    expect(leftovers.reservations).not.toContain(`${serverId}.conf`);
    const shown = await setup.cli.json<{ addressesInUse: number }>(['host', 'show', 'crash-host']);
    expect(shown.addressesInUse).toBe(0);
  }

  it.each(OPERATION_STEPS.create.map((step, index) => [step, index]))('create killed after %s', async (step, index) => {
    const name = `crash-create-${index}`;
    const killed = await setup.cli.run([...createArgs(name), '--json'], { VOME_TEST_KILL_AFTER_STEP: `create:${step}` });
    expect(killed.signal).toBe('SIGKILL');

    const resumed = await setup.cli.json<OperationJson>(createArgs(name));
    expect(resumed.operation).toMatchObject({ kind: 'create', state: 'succeeded', attempts: 2, resumed: true });
    expect(resumed.server.state).toBe('running');
    const leftovers = await hostLeftovers(setup.host);
    expect(leftovers.domains).toContain(`vome-${name}`);

    await setup.cli.json(['server', 'destroy', name, '--yes']);
    await expectNothingLeft(resumed.server.id, name);
  });

  it('rebuild killed after each step keeps the address and MAC', async () => {
    const created = await setup.cli.json<OperationJson>(createArgs('crash-rebuild'));
    for (const step of OPERATION_STEPS.rebuild) {
      const killed = await setup.cli.run(['server', 'rebuild', 'crash-rebuild', '--yes', '--json'], { VOME_TEST_KILL_AFTER_STEP: `rebuild:${step}` });
      expect(killed.signal, `rebuild killed after ${step}`).toBe('SIGKILL');

      const resumed = await setup.cli.json<OperationJson>(['server', 'rebuild', 'crash-rebuild', '--yes']);
      expect(resumed.operation, `rebuild resumed after ${step}`).toMatchObject({ kind: 'rebuild', state: 'succeeded', attempts: 2, resumed: true });
      expect(resumed.server).toMatchObject({ id: created.server.id, state: 'running', ipv4: created.server.ipv4, mac: created.server.mac });
    }
    const leftovers = await hostLeftovers(setup.host);
    expect(leftovers.domains.filter((domain) => domain === 'vome-crash-rebuild')).toHaveLength(1);
    await setup.cli.json(['server', 'destroy', 'crash-rebuild', '--yes']);
    await expectNothingLeft(created.server.id, 'crash-rebuild');
  });

  it.each(OPERATION_STEPS.destroy.map((step, index) => [step, index]))('destroy killed after %s', async (step, index) => {
    const name = `crash-destroy-${index}`;
    const created = await setup.cli.json<OperationJson>(createArgs(name));

    const killed = await setup.cli.run(['server', 'destroy', name, '--yes', '--json'], { VOME_TEST_KILL_AFTER_STEP: `destroy:${step}` });
    expect(killed.signal).toBe('SIGKILL');

    const resumed = await setup.cli.json<OperationJson>(['server', 'destroy', name, '--yes']);
    expect(resumed.operation).toMatchObject({ kind: 'destroy', state: 'succeeded', attempts: 2, resumed: true });
    expect(resumed.server.state).toBe('destroyed');
    await expectNothingLeft(created.server.id, name);
  });

  it('finishing a killed create with other settings is refused', async () => {
    const name = 'crash-changed';
    const killed = await setup.cli.run([...createArgs(name), '--json'], { VOME_TEST_KILL_AFTER_STEP: 'create:place-image' });
    expect(killed.signal).toBe('SIGKILL');

    const changed = createArgs(name).map((arg) => (arg === '512' ? '768' : arg));
    const refused = await setup.cli.run([...changed, '--json']);
    expect(refused.exitCode).toBe(3);
    expect(JSON.parse(refused.stderr).error.message).toBe(`server "${name}" has an unfinished create with other settings: memory (MiB) 768 (recorded: 512)`);

    const finished = await setup.cli.json<OperationJson>(createArgs(name));
    expect(finished.server.state).toBe('running');
    await setup.cli.json(['server', 'destroy', name, '--yes']);
    await expectNothingLeft(finished.server.id, name);
  });

  it('a destroy replaces a create that was killed half-way', async () => {
    const name = 'crash-abandoned';
    const killed = await setup.cli.run([...createArgs(name), '--json'], { VOME_TEST_KILL_AFTER_STEP: 'create:define-domain' });
    expect(killed.signal).toBe('SIGKILL');

    const start = await setup.cli.run(['server', 'start', name, '--json']);
    expect(start.exitCode).toBe(5);
    const error = JSON.parse(start.stderr) as { error: { message: string } };
    expect(error.error.message).toMatch(new RegExp(`^server "${name}" has an unfinished create operation \\([0-9a-f-]{36}\\); finish it first with \`vome server create ${name}\`$`));

    const destroyed = await setup.cli.json<OperationJson>(['server', 'destroy', name, '--yes']);
    expect(destroyed.server.state).toBe('destroyed');
    await expectNothingLeft(destroyed.server.id, name);
  });
});

describe.skipIf(!host)('concurrent operations on one server', () => {
  let setup: E2eSetup;

  beforeAll(async () => {
    setup = await setUpVome(host!, 'lock-host', { start: '10.232.0.50', end: '10.232.0.59' });
    await setup.cli.json(['server', 'create', 'lock-1', '--account', 'household', '--host', 'lock-host', '--image', 'appliance', '--memory', '512', '--disk', '1', '--vcpus', '1']);
  });

  afterAll(async () => {
    await setup?.cli.run(['server', 'destroy', 'lock-1', '--yes']);
    await setup?.cli.dispose();
  });

  it('a second operation fails naming the one that holds the server', async () => {
    const first = setup.cli.run(['server', 'rebuild', 'lock-1', '--yes', '--json']);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const second = await setup.cli.run(['server', 'stop', 'lock-1', '--json']);
    expect(second.exitCode).toBe(5);
    const error = JSON.parse(second.stderr) as { error: { code: string; message: string } };
    expect(error.error.code).toBe('server_busy');
    expect(error.error.message).toMatch(/^server "lock-1" is busy: a rebuild operation \([0-9a-f-]{36}, started by admin:.+ at .+\) holds it$/);
    expect((await first).exitCode).toBe(0);
  });

  it('with --wait, the second runs after the first and they do not overlap', async () => {
    const [rebuild, stop] = await Promise.all([
      setup.cli.run(['server', 'rebuild', 'lock-1', '--yes', '--wait', '--json']),
      new Promise((resolve) => setTimeout(resolve, 500)).then(() => setup.cli.run(['server', 'stop', 'lock-1', '--wait', '--json'])),
    ]);
    expect(rebuild.exitCode).toBe(0);
    expect(stop.exitCode).toBe(0);

    const shown = await setup.cli.json<{ state: string; operations: Array<{ kind: string; createdAt: string; finishedAt: string }> }>(['server', 'show', 'lock-1']);
    expect(shown.state).toBe('stopped');
    const [latest, previous] = shown.operations;
    expect(latest?.kind).toBe('stop');
    expect(previous?.kind).toBe('rebuild');
    expect(Date.parse(latest!.createdAt)).toBeGreaterThanOrEqual(Date.parse(previous!.finishedAt));
  });
});
