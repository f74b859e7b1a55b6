import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import type { Db } from '../../../src/db/connection.js';
import type { OperationKind, Server, ServerState } from '../../../src/db/schema.js';
import { ConflictError, ServerBusyError, VomeError } from '../../../src/errors/index.js';
import type { HostContext } from '../../../src/hosts/hosts.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { OPERATION_STEPS } from '../../../src/operations/operation-plan.js';
import type { ProgressEvent } from '../../../src/operations/progress.js';
import { type RunOperationOptions, type StepHandler, runOperation } from '../../../src/operations/run-operation.js';
import type { CommandResult, CommandRunner } from '../../../src/runner/command-runner.js';
import { ADMIN, insertAccount, insertHost, insertImage, insertServer, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

/** A runner that runs nothing and counts what it was sent. */
class FakeRunner implements CommandRunner {
  readonly hostName = 'ha-1';
  roundTrips = 0;
  closed = 0;

  async run(): Promise<CommandResult> {
    this.roundTrips += 1;
    return { stdout: '', stderr: '', exitCode: 0 };
  }

  async putFile(): Promise<void> {
    this.roundTrips += 1;
  }

  async close(): Promise<void> {
    this.closed += 1;
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

const ALL_STEPS = [...new Set(Object.values(OPERATION_STEPS).flat())];

/**
 * Handlers for every step that append "begin:<step>" and "end:<step>" to
 * `log`, with a turn of the event loop between, and send one script each.
 * `overrides` replace single steps.
 */
function recordingHandlers(log: string[], overrides: Record<string, StepHandler> = {}): Record<string, StepHandler> {
  const handlers: Record<string, StepHandler> = {};
  for (const name of ALL_STEPS) {
    handlers[name] = async (step) => {
      log.push(`begin:${name}`);
      await new Promise((resolve) => setImmediate(resolve));
      await step.runner.run('true', { label: name, timeoutMs: 1000 });
      log.push(`end:${name}`);
    };
  }
  return { ...handlers, ...overrides };
}

function begun(log: string[]): string[] {
  return log.filter((entry) => entry.startsWith('begin:')).map((entry) => entry.slice('begin:'.length));
}

interface Setup {
  db: Db;
  context: HostContext;
  server: Server;
  runner: FakeRunner;
  run: (kind: OperationKind, handlers: Record<string, StepHandler>, options?: RunOperationOptions) => ReturnType<typeof runOperation>;
}

async function setUp(state: ServerState = 'provisioning'): Promise<Setup> {
  const db = await database.fresh();
  const account = await insertAccount(db);
  const host = await insertHost(db);
  const image = await insertImage(db);
  const server = await insertServer(db, { account, host, image, name: 'kitchen', ipv4: '10.232.0.10', macSuffix: '01', state });
  const context: HostContext = { db, config: loadConfig({ VOME_HOME: '/nonexistent/vome-home' }), logger: silentLogger };
  const runner = new FakeRunner();
  const run: Setup['run'] = (kind, handlers, options = {}) => runOperation(context, ADMIN, server.id, kind, handlers, () => runner, options);
  return { db, context, server, runner, run };
}

async function operations(db: Db) {
  return db.selectFrom('operations').selectAll().orderBy('created_at').execute();
}

async function serverState(db: Db, id: string): Promise<ServerState> {
  return (await db.selectFrom('servers').select('state').where('id', '=', id).executeTakeFirstOrThrow()).state;
}

async function lastAudit(db: Db) {
  return db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
}

/** Waits until `count` sessions are blocked on an advisory lock. */
async function waitForLockWaiters(db: Db, count: number): Promise<void> {
  for (;;) {
    const result = await sql<{ waiting: string }>`SELECT count(*) AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`.execute(db);
    if (Number(result.rows[0]?.waiting) >= count) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Creates a failed create operation: its third step throws. */
async function failCreate(setup: Setup): Promise<string> {
  const error = await rejection(
    setup.run(
      'create',
      recordingHandlers([], {
        'reserve-address': async () => {
          throw new Error('dnsmasq is down');
        },
      }),
    ),
  );
  expect(error.message).toBe('dnsmasq is down');
  const [operation] = await operations(setup.db);
  return operation?.id as string;
}

describe('runOperation', () => {
  it('runs and records the steps in order', async () => {
    const setup = await setUp();
    const log: string[] = [];

    const result = await setup.run('create', recordingHandlers(log));

    expect(begun(log)).toEqual(['place-image', 'create-disk', 'reserve-address', 'write-tunnel-key', 'apply-network', 'define-domain', 'start-domain']);
    expect(result.operation.state).toBe('succeeded');
    expect(result.operation.attempts).toBe(1);
    expect(result.operation.finished_at).toBeInstanceOf(Date);
    expect(result.operation.actor).toBe('admin:alice');
    expect(result.operation.error).toBeNull();
    expect(result.resumed).toBe(false);
    expect(result.roundTrips).toBe(7);
    expect(result.server.state).toBe('running');
    for (const step of result.operation.steps) {
      expect(step).toEqual({ name: step.name, state: 'done', startedAt: expect.any(String), finishedAt: expect.any(String), error: null });
    }
    expect(result.operation.steps.map((step) => step.name)).toEqual(OPERATION_STEPS.create);
    expect(setup.runner.closed).toBe(1);
  });

  it('passes the records and runner to steps', async () => {
    const setup = await setUp();
    const seen: string[] = [];
    const handlers = recordingHandlers([], {
      'place-image': async (step) => {
        seen.push(step.server.id, step.host.name, step.image.name, step.runner === setup.runner ? 'same runner' : 'other runner');
      },
    });

    await setup.run('create', handlers);

    expect(seen).toEqual([setup.server.id, 'ha-1', 'haos', 'same runner']);
  });

  it('reports progress and calls afterStep', async () => {
    const setup = await setUp();
    const events: ProgressEvent[] = [];
    const after: string[] = [];

    const created = await setup.run('create', recordingHandlers([]), {
      onProgress: (event) => events.push(event),
      afterStep: (kind, step) => {
        after.push(`${kind}:${step}`);
      },
    });
    const base = { operationId: created.operation.id, kind: 'create', server: 'kitchen', total: OPERATION_STEPS.create.length };
    expect(events).toEqual(
      OPERATION_STEPS.create.flatMap((step, index) => [
        { ...base, step, index, state: 'started' },
        { ...base, step, index, state: 'done' },
      ]),
    );
    expect(after).toEqual(OPERATION_STEPS.create.map((step) => `create:${step}`));
  });

  it('audits a successful operation', async () => {
    const setup = await setUp();
    const result = await setup.run('create', recordingHandlers([]));

    const event = await lastAudit(setup.db);
    expect(event).toMatchObject({
      actor_kind: 'admin',
      actor_id: 'alice',
      action: 'server.create',
      target_kind: 'server',
      target_id: setup.server.id,
      details: { name: 'kitchen', operation: result.operation.id, attempts: 1, host: 'ha-1' },
    });
  });

  it('marks step and operation failed on throw', async () => {
    const setup = await setUp();
    const failure = new VomeError('test_failure', 'dnsmasq is down');

    const error = await rejection(
      setup.run(
        'create',
        recordingHandlers([], {
          'reserve-address': async () => {
            throw failure;
          },
        }),
      ),
    );

    expect(error).toBe(failure);
    const [operation] = await operations(setup.db);
    expect(operation?.state).toBe('failed');
    expect(operation?.error).toBe('dnsmasq is down');
    expect(operation?.attempts).toBe(1);
    expect(operation?.finished_at).toBeNull();
    expect(operation?.steps.map((step) => [step.name, step.state, step.error])).toEqual([
      ['place-image', 'done', null],
      ['create-disk', 'done', null],
      ['reserve-address', 'failed', 'dnsmasq is down'],
      ['write-tunnel-key', 'pending', null],
      ['apply-network', 'pending', null],
      ['define-domain', 'pending', null],
      ['start-domain', 'pending', null],
    ]);
    expect(await serverState(setup.db, setup.server.id)).toBe('failed');
    expect(setup.runner.closed).toBe(1);

    const event = await lastAudit(setup.db);
    expect(event.action).toBe('server.create.failed');
    expect(event.details).toEqual({ name: 'kitchen', operation: operation?.id, attempt: 1, error: 'dnsmasq is down', code: 'test_failure' });
  });

  it('resumes a failed operation, skipping done steps', async () => {
    const setup = await setUp();
    const operationId = await failCreate(setup);
    const log: string[] = [];
    const events: ProgressEvent[] = [];
    const runner = setup.runner;
    runner.roundTrips = 0;

    const result = await setup.run('create', recordingHandlers(log), { onProgress: (event) => events.push(event) });

    expect(begun(log)).toEqual(['reserve-address', 'write-tunnel-key', 'apply-network', 'define-domain', 'start-domain']);
    expect(result.resumed).toBe(true);
    expect(result.roundTrips).toBe(5);
    expect(result.operation.id).toBe(operationId);
    expect(result.operation.attempts).toBe(2);
    expect(result.operation.state).toBe('succeeded');
    expect(result.operation.error).toBeNull();
    expect(result.operation.steps.map((step) => step.state)).toEqual(OPERATION_STEPS.create.map(() => 'done'));
    expect(result.server.state).toBe('running');
    expect(events.filter((event) => event.state === 'skipped').map((event) => event.step)).toEqual(['place-image', 'create-disk']);
    expect(await operations(setup.db)).toHaveLength(1);
  });

  it('fails a step that has no handler', async () => {
    const setup = await setUp();
    const handlers = recordingHandlers([]);
    delete handlers['define-domain'];

    const error = await rejection(setup.run('create', handlers));

    expect(error).toBeInstanceOf(VomeError);
    expect((error as VomeError).code).toBe('unknown_step');
    expect(error.message).toBe('no handler for step "define-domain" of create');
    const [operation] = await operations(setup.db);
    expect(operation?.state).toBe('failed');
    expect(operation?.steps.map((step) => step.state)).toEqual(['done', 'done', 'done', 'done', 'done', 'pending', 'pending']);
  });

  it('rejects a kind the server state forbids', async () => {
    const setup = await setUp('provisioning');

    const error = await rejection(setup.run('start', recordingHandlers([])));

    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe('cannot start server "kitchen" while it is provisioning');
    expect((error as ConflictError).hints).toEqual(['start works on a server that is stopped, running']);
    expect(await operations(setup.db)).toEqual([]);
    expect(await serverState(setup.db, setup.server.id)).toBe('provisioning');
  });

  it('rejects a second operation, naming the holder', async () => {
    const setup = await setUp();
    const entered = deferred();
    const release = deferred();
    const first = setup.run(
      'create',
      recordingHandlers([], {
        'create-disk': async () => {
          entered.resolve();
          await release.promise;
        },
      }),
    );
    await entered.promise;
    const [holder] = await operations(setup.db);

    const error = await rejection(setup.run('stop', recordingHandlers([])));

    expect(error).toBeInstanceOf(ServerBusyError);
    expect(error.message).toBe(
      `server "kitchen" is busy: a create operation (${holder?.id}, started by admin:alice at ${holder?.created_at.toISOString()}) holds it`,
    );
    expect((error as ServerBusyError).fields).toEqual({ server: setup.server.id, operation: holder?.id });
    expect((error as ServerBusyError).hints).toEqual(['wait for it to finish, or pass --wait to queue behind it']);

    release.resolve();
    expect((await first).operation.state).toBe('succeeded');
    expect(await operations(setup.db)).toHaveLength(1);
  });

  it('queues a second operation with wait', async () => {
    const setup = await setUp();
    const log: string[] = [];
    const entered = deferred();
    const release = deferred();
    const handlers = recordingHandlers(log, {
      'create-disk': async () => {
        log.push('begin:create-disk');
        entered.resolve();
        await release.promise;
        log.push('end:create-disk');
      },
    });
    const first = setup.run('create', handlers);
    await entered.promise;

    const second = setup.run('stop', handlers, { wait: true });
    await waitForLockWaiters(setup.db, 1);
    release.resolve();
    const [created, stopped] = await Promise.all([first, second]);

    expect(log).toEqual([...OPERATION_STEPS.create, ...OPERATION_STEPS.stop].flatMap((step) => [`begin:${step}`, `end:${step}`]));
    expect(created.operation.state).toBe('succeeded');
    expect(stopped.operation.state).toBe('succeeded');
    expect(stopped.server.state).toBe('stopped');
  });

  it('never interleaves twelve waiting operations', async () => {
    const setup = await setUp('stopped');
    const log: string[] = [];
    const handlers = recordingHandlers(log);

    const results = await Promise.all(Array.from({ length: 12 }, () => setup.run('start', handlers, { wait: true })));

    expect(log).toEqual(Array.from({ length: 12 }, () => ['begin:apply-network', 'end:apply-network', 'begin:start-domain', 'end:start-domain']).flat());
    expect(new Set(results.map((result) => result.operation.id)).size).toBe(12);
  });

  it('runs twelve operations on twelve servers at once', async () => {
    const setup = await setUp('stopped');
    const account = await setup.db.selectFrom('accounts').selectAll().executeTakeFirstOrThrow();
    const host = await setup.db.selectFrom('hosts').selectAll().executeTakeFirstOrThrow();
    const image = await setup.db.selectFrom('images').selectAll().executeTakeFirstOrThrow();
    const servers = [setup.server];
    for (let index = 1; index < 12; index += 1) {
      servers.push(await insertServer(setup.db, { account, host, image, name: `server-${index}`, ipv4: `10.232.0.${10 + index}`, macSuffix: (0x10 + index).toString(16), state: 'stopped' }));
    }
    const log: string[] = [];

    const results = await Promise.all(
      servers.map((server) => runOperation(setup.context, ADMIN, server.id, 'start', recordingHandlers(log), () => setup.runner)),
    );

    expect(results.map((result) => result.server.state)).toEqual(Array(12).fill('running'));
    expect(log.filter((entry) => entry === 'end:start-domain')).toHaveLength(12);
  });

  it('blocks start while a create is unfinished', async () => {
    const setup = await setUp();
    const createId = await failCreate(setup);

    const error = await rejection(setup.run('start', recordingHandlers([])));

    expect(error).toBeInstanceOf(ServerBusyError);
    expect(error.message).toBe(`server "kitchen" has an unfinished create operation (${createId}); finish it first with \`vome server create kitchen\``);
    expect((error as ServerBusyError).hints).toEqual(['or run `vome server destroy` or `vome server rebuild`, which replace it']);
    expect((error as ServerBusyError).fields).toEqual({ server: 'kitchen', operation: createId });
    expect((await operations(setup.db)).map((operation) => [operation.kind, operation.state])).toEqual([['create', 'failed']]);
  });

  it('lets destroy supersede an unfinished create', async () => {
    const setup = await setUp();
    const createId = await failCreate(setup);
    const log: string[] = [];

    const result = await setup.run('destroy', recordingHandlers(log));

    expect(begun(log)).toEqual(['force-stop-domain', 'undefine-domain', 'remove-disk', 'remove-reservation', 'apply-network', 'remove-tunnel-key', 'release-address']);
    expect(result.operation.kind).toBe('destroy');
    expect(result.operation.state).toBe('succeeded');
    expect(result.server.state).toBe('destroyed');
    expect(result.server.destroyed_at).toBeInstanceOf(Date);
    const rows = await operations(setup.db);
    expect(rows.map((operation) => [operation.id === createId ? 'create' : operation.kind, operation.state])).toEqual([
      ['create', 'superseded'],
      ['destroy', 'succeeded'],
    ]);
    expect(rows[0]?.finished_at).toBeInstanceOf(Date);
  });

  it('sets suspended_at on suspend and clears it on resume', async () => {
    const setup = await setUp('running');

    const suspended = await setup.run('suspend', recordingHandlers([]));
    expect(suspended.server.state).toBe('suspended');
    expect(suspended.server.suspended_at).toBeInstanceOf(Date);

    const resumed = await setup.run('resume', recordingHandlers([]));
    expect(resumed.server.state).toBe('running');
    expect(resumed.server.suspended_at).toBeNull();
  });
});
