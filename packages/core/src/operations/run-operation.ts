import { sql } from 'kysely';
import { type Actor, actorLabel } from '../audit/actor.js';
import { appendAudit } from '../audit/audit-log.js';
import type { Host, Image, Operation, OperationKind, Server, StepRecord } from '../db/schema.js';
import { ConflictError, ServerBusyError, VomeError } from '../errors/index.js';
import type { HostContext } from '../hosts/hosts.js';
import type { CommandRunner } from '../runner/command-runner.js';
import { OPERATION_STEPS, SUPERSEDING, TRANSITIONS } from './operation-plan.js';
import type { ProgressListener } from './progress.js';

/** Context of a step handler: the server, host and image as recorded, and the host's runner. */
export interface StepContext extends HostContext {
  /** The operation the step belongs to. */
  kind: OperationKind;
  server: Server;
  host: Host;
  image: Image;
  runner: CommandRunner;
}

export type StepHandler = (context: StepContext) => Promise<void>;

export interface RunOperationOptions {
  /** Wait for another operation on the server to finish instead of failing. */
  wait?: boolean;
  onProgress?: ProgressListener;
  /** Called after each step is recorded as done; used to prove crash safety. */
  afterStep?: (kind: OperationKind, step: string) => void | Promise<void>;
}

export interface OperationResult {
  operation: Operation;
  server: Server;
  /** Scripts and uploads sent to the host during this run. */
  roundTrips: number;
  /** True when this run finished an operation that an earlier run left unfinished. */
  resumed: boolean;
}

// Advisory-lock namespace for "one operation per server"; the second key is
// derived from the server id.
const SERVER_LOCK_CLASS = 7_150_002;

/** Lists an operation's steps, all pending. */
export function freshSteps(kind: OperationKind): StepRecord[] {
  return OPERATION_STEPS[kind].map((name) => ({ name, state: 'pending', startedAt: null, finishedAt: null, error: null }));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs an operation on a server under a per-server advisory lock and records
 * each step's state. A run killed at any point is finished by running the
 * same operation again: steps recorded as done are skipped, and the others
 * are idempotent, so they run again.
 *
 * @throws ServerBusyError when another operation has the server's lock and `wait` is off,
 *   or when an unfinished operation of another kind must be finished first.
 */
export async function runOperation(
  context: HostContext,
  actor: Actor,
  serverId: string,
  kind: OperationKind,
  handlers: Record<string, StepHandler>,
  openRunner: (host: Host) => CommandRunner,
  options: RunOperationOptions = {},
): Promise<OperationResult> {
  // The whole run, steps included, uses the connection that holds the lock.
  // With a second connection for its queries, ten concurrent runs in one
  // process would hold the whole pool (10) and wait on each other forever.
  return context.db.connection().execute(async (lockConnection) => {
    const locked = await sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${SERVER_LOCK_CLASS}, hashtext(${serverId})) AS locked`.execute(lockConnection);
    if (!locked.rows[0]?.locked) {
      const holder = await lockConnection
        .selectFrom('operations')
        .select(['id', 'kind', 'actor', 'created_at'])
        .where('server_id', '=', serverId)
        .where('state', '=', 'running')
        .executeTakeFirst();
      const held = holder ? `a ${holder.kind} operation (${holder.id}, started by ${holder.actor} at ${holder.created_at.toISOString()})` : 'another operation';
      if (!options.wait) {
        const server = await context.db.selectFrom('servers').select('name').where('id', '=', serverId).executeTakeFirst();
        throw new ServerBusyError(`server "${server?.name ?? serverId}" is busy: ${held} holds it`, {
          hints: ['wait for it to finish, or pass --wait to queue behind it'],
          fields: { server: serverId, operation: holder?.id },
        });
      }
      await sql`SELECT pg_advisory_lock(${SERVER_LOCK_CLASS}, hashtext(${serverId}))`.execute(lockConnection);
    }

    try {
      return await runLocked({ ...context, db: lockConnection }, actor, serverId, kind, handlers, openRunner, options);
    } finally {
      await sql`SELECT pg_advisory_unlock(${SERVER_LOCK_CLASS}, hashtext(${serverId}))`.execute(lockConnection);
    }
  });
}

async function runLocked(
  context: HostContext,
  actor: Actor,
  serverId: string,
  kind: OperationKind,
  handlers: Record<string, StepHandler>,
  openRunner: (host: Host) => CommandRunner,
  options: RunOperationOptions,
): Promise<OperationResult> {
  const { db } = context;
  const server = await db.selectFrom('servers').selectAll().where('id', '=', serverId).executeTakeFirstOrThrow();
  const transition = TRANSITIONS[kind];

  const unfinished = await db
    .selectFrom('operations')
    .selectAll()
    .where('server_id', '=', serverId)
    .where('state', 'in', ['running', 'failed'])
    .executeTakeFirst();

  let operation: Operation;
  let resumed = false;
  if (unfinished && unfinished.kind === kind) {
    operation = await db
      .updateTable('operations')
      .set({ state: 'running', attempts: sql`attempts + 1`, error: null, updated_at: new Date() })
      .where('id', '=', unfinished.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    // A create recorded together with its server starts at 0 attempts.
    resumed = unfinished.attempts > 0;
  } else {
    if (unfinished && !SUPERSEDING.has(kind)) {
      throw new ServerBusyError(
        `server "${server.name}" has an unfinished ${unfinished.kind} operation (${unfinished.id}); finish it first with \`vome server ${unfinished.kind} ${server.name}\``,
        { hints: ['or run `vome server destroy` or `vome server rebuild`, which replace it'], fields: { server: server.name, operation: unfinished.id } },
      );
    }
    if (!transition.from.includes(server.state)) {
      throw new ConflictError(`cannot ${kind} server "${server.name}" while it is ${server.state}`, {
        hints: [`${kind} works on a server that is ${transition.from.join(', ')}`],
        fields: { server: server.name },
      });
    }
    operation = await db.transaction().execute(async (trx) => {
      if (unfinished) {
        await trx.updateTable('operations').set({ state: 'superseded', finished_at: new Date(), updated_at: new Date() }).where('id', '=', unfinished.id).execute();
      }
      return trx
        .insertInto('operations')
        .values({ server_id: serverId, kind, state: 'running', steps: JSON.stringify(freshSteps(kind)), actor: actorLabel(actor) })
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  }

  if (transition.during && server.state !== transition.during) {
    await db.updateTable('servers').set({ state: transition.during, updated_at: new Date() }).where('id', '=', serverId).execute();
  }

  const host = await db.selectFrom('hosts').selectAll().where('id', '=', server.host_id).executeTakeFirstOrThrow();
  const image = await db.selectFrom('images').selectAll().where('id', '=', server.image_id).executeTakeFirstOrThrow();
  const runner = openRunner(host);
  const log = context.logger.child({ operation: operation.id, kind, server: server.name, host: host.name });
  log.info({ attempt: operation.attempts, resumed }, 'operation started');
  const steps = [...operation.steps];
  const save = async (): Promise<void> => {
    await db.updateTable('operations').set({ steps: JSON.stringify(steps), updated_at: new Date() }).where('id', '=', operation.id).execute();
  };

  try {
    for (const [index, step] of steps.entries()) {
      const event = { operationId: operation.id, kind, server: server.name, step: step.name, index, total: steps.length };
      if (step.state === 'done') {
        options.onProgress?.({ ...event, state: 'skipped' });
        continue;
      }
      const handler = handlers[step.name];
      if (!handler) {
        throw new VomeError('unknown_step', `no handler for step "${step.name}" of ${kind}`);
      }
      step.state = 'running';
      step.startedAt = new Date().toISOString();
      step.error = null;
      await save();
      options.onProgress?.({ ...event, state: 'started' });

      try {
        await handler({ ...context, kind, server, host, image, runner });
      } catch (error) {
        step.state = 'failed';
        step.error = errorText(error);
        await save();
        options.onProgress?.({ ...event, state: 'failed', error: step.error });
        log.error({ step: step.name, error: step.error, code: error instanceof VomeError ? error.code : undefined }, 'step failed');
        throw error;
      }

      step.state = 'done';
      step.finishedAt = new Date().toISOString();
      await save();
      options.onProgress?.({ ...event, state: 'done' });
      await options.afterStep?.(kind, step.name);
    }
  } catch (error) {
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('operations')
        .set({ state: 'failed', error: errorText(error), updated_at: new Date() })
        .where('id', '=', operation.id)
        .execute();
      if (transition.during) {
        await trx.updateTable('servers').set({ state: 'failed', updated_at: new Date() }).where('id', '=', serverId).execute();
      }
      await appendAudit(trx, {
        actor,
        action: `server.${kind}.failed`,
        target: { kind: 'server', id: serverId },
        details: { name: server.name, operation: operation.id, attempt: operation.attempts, error: errorText(error), code: error instanceof VomeError ? error.code : null },
      });
    });
    throw error;
  } finally {
    await runner.close();
  }

  const finished = await db.transaction().execute(async (trx) => {
    const now = new Date();
    const done = await trx
      .updateTable('operations')
      .set({ state: 'succeeded', finished_at: now, updated_at: now })
      .where('id', '=', operation.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const updated = await trx
      .updateTable('servers')
      .set({
        state: transition.after,
        updated_at: now,
        ...(kind === 'suspend' && server.state !== 'suspended' ? { suspended_at: now } : {}),
        ...(kind === 'resume' || kind === 'rebuild' ? { suspended_at: null } : {}),
        ...(kind === 'destroy' ? { destroyed_at: now } : {}),
      })
      .where('id', '=', serverId)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, {
      actor,
      action: `server.${kind}`,
      target: { kind: 'server', id: serverId },
      details: { name: server.name, operation: operation.id, attempts: done.attempts, host: host.name },
    });
    return { operation: done, server: updated };
  });
  log.info({ roundTrips: runner.roundTrips, state: finished.server.state }, 'operation succeeded');
  return { ...finished, roundTrips: runner.roundTrips, resumed };
}
