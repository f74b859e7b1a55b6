import { type LogLevel, Logger as GraphileLogger, run, runMigrations, runOnce, type Runner, type Task } from 'graphile-worker';
import type { Actor } from '../audit/actor.js';
import type { Db } from '../db/connection.js';
import type { PortalRequest, Server } from '../db/schema.js';
import { VomeError } from '../errors/index.js';
import type { HostContext } from '../hosts/hosts.js';
import type { Logger } from '../logging/logger.js';
import { isDnsLabel } from '../naming/dns-label.js';
import { createServer, serverOperationById } from '../servers/servers.js';
import { PORTAL_REQUEST_TASK, type PortalRequestJob } from './portal-requests.js';

/** Placement and size of servers created from the portal. */
export interface PortalDefaults {
  /** Host name; undefined picks the host with the fewest live servers. */
  host: string | undefined;
  /** Image name; undefined picks the newest image. */
  image: string | undefined;
  /** Size of new servers; unset fields take DEFAULT_SIZE (HAOS's documented minimum). */
  size?: { vcpus?: number; memoryMib?: number; diskGib?: number };
}

/** Installs or upgrades graphile-worker's schema; safe to run again. */
export async function installJobQueue(connectionString: string): Promise<void> {
  await runMigrations({ connectionString });
}

function parseActor(label: string, sourceAddress: string | null): Actor {
  const separator = label.indexOf(':');
  const kind = label.slice(0, separator) as Actor['kind'];
  return { kind, id: label.slice(separator + 1), ...(sourceAddress ? { sourceAddress } : {}) };
}

/** Picks the portal's host: the named one, or the ready host with the fewest live servers. */
async function pickHostName(db: Db, defaults: PortalDefaults): Promise<string> {
  if (defaults.host) {
    return defaults.host;
  }
  const host = await db
    .selectFrom('hosts')
    .leftJoin('servers', (join) => join.onRef('servers.host_id', '=', 'hosts.id').on('servers.state', '<>', 'destroyed'))
    .select(['hosts.name'])
    .select((eb) => eb.fn.count('servers.id').as('servers'))
    .where('hosts.removed_at', 'is', null)
    .where('hosts.ha_domain', '<>', '')
    .groupBy('hosts.name')
    .orderBy('servers')
    .orderBy('hosts.name')
    .executeTakeFirst();
  if (!host) {
    throw new VomeError('no_host', 'no host is ready for new servers', { hints: ['an admin must enrol a host with `vome host bootstrap`'] });
  }
  return host.name;
}

async function pickImageName(db: Db, defaults: PortalDefaults): Promise<string> {
  if (defaults.image) {
    return defaults.image;
  }
  const image = await db.selectFrom('images').select('name').orderBy('created_at', 'desc').limit(1).executeTakeFirst();
  if (!image) {
    throw new VomeError('no_image', 'no image is registered for new servers', { hints: ['an admin must add one with `vome image add`'] });
  }
  return image.name;
}

/**
 * Picks the name of an account's first server: its GitHub login in lower
 * case, with `-2`, `-3`… when taken. A server whose creation was cut short
 * keeps its name, so a retried request finishes that creation.
 */
async function pickServerName(db: Db, accountId: string, login: string): Promise<{ name: string; existing: Server | undefined }> {
  const existing = await db.selectFrom('servers').selectAll().where('account_id', '=', accountId).where('state', '<>', 'destroyed').orderBy('created_at').executeTakeFirst();
  if (existing) {
    return { name: existing.name, existing };
  }
  const base = login.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 56) || 'home';
  for (let suffix = 1; suffix < 1000; suffix += 1) {
    const name = suffix === 1 ? base : `${base}-${suffix}`;
    const clash = await db
      .selectFrom('servers')
      .select('id')
      .where('state', '<>', 'destroyed')
      .where((eb) => eb.or([eb('name', '=', name), eb('subdomain', '=', name)]))
      .executeTakeFirst();
    if (!clash && isDnsLabel(name)) {
      return { name, existing: undefined };
    }
  }
  throw new VomeError('no_server_name', `no free server name starts with "${base}"`);
}

// Errors whose message speaks to the customer and reveals nothing of a host.
const CUSTOMER_ERRORS = /^(forbidden|invalid_input|conflict|server_busy|address_range_full|no_host|no_image|no_server_name|.*_not_found)$/;

/**
 * Words an error for the customer who made the request. Host errors carry
 * command output and paths, so they are logged for operators and the
 * customer gets a general sentence.
 */
function customerMessage(error: unknown): string {
  if (error instanceof VomeError && CUSTOMER_ERRORS.test(error.code)) {
    return error.message;
  }
  return 'the operation failed on our side and has been logged for our operators; try again later or contact support';
}

async function finishRequest(db: Db, request: PortalRequest, update: { state: 'succeeded' | 'failed'; serverId?: string; operationIds: string[]; error?: string }): Promise<PortalRequest> {
  const now = new Date();
  return db
    .updateTable('portal_requests')
    .set({
      state: update.state,
      server_id: update.serverId ?? request.server_id,
      operation_ids: update.operationIds,
      error: update.error ?? null,
      updated_at: now,
      finished_at: now,
    })
    .where('id', '=', request.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Runs one portal request with the requesting actor, so that core checks
 * ownership and entitlement again at run time. A failure is recorded on
 * the request, not thrown; only an error reaching the database is thrown.
 * A request that already finished is returned unchanged.
 */
export async function runPortalRequest(context: HostContext, requestId: string, defaults: PortalDefaults): Promise<PortalRequest | undefined> {
  const { db, logger } = context;
  const request = await db.selectFrom('portal_requests').selectAll().where('id', '=', requestId).executeTakeFirst();
  if (!request || request.state === 'succeeded' || request.state === 'failed') {
    return request;
  }
  await db.updateTable('portal_requests').set({ state: 'running', updated_at: new Date() }).where('id', '=', request.id).execute();
  const actor = parseActor(request.actor, request.source_address);
  const operationIds: string[] = [];
  let serverId = request.server_id ?? undefined;
  logger.info({ request: request.id, kind: request.kind, server: serverId, actor: request.actor }, 'portal request started');

  try {
    if (request.kind === 'create') {
      const account = await db.selectFrom('accounts').selectAll().where('id', '=', request.account_id).executeTakeFirstOrThrow();
      const { name, existing } = await pickServerName(db, account.id, account.github_login);
      if (existing && existing.state !== 'provisioning' && existing.state !== 'failed') {
        serverId = existing.id;
      } else {
        const host = existing ? (await db.selectFrom('hosts').select('name').where('id', '=', existing.host_id).executeTakeFirstOrThrow()).name : await pickHostName(db, defaults);
        const image = existing ? (await db.selectFrom('images').select('name').where('id', '=', existing.image_id).executeTakeFirstOrThrow()).name : await pickImageName(db, defaults);
        const result = await createServer(context, actor, { name, account: account.id, host, image, ...defaults.size }, { wait: true });
        serverId = result.server.id;
        operationIds.push(result.operation.id);
      }
    } else {
      const kinds = request.kind === 'restart' ? (['stop', 'start'] as const) : [request.kind];
      for (const kind of kinds) {
        const result = await serverOperationById(context, actor, request.server_id as string, kind, { wait: true });
        operationIds.push(result.operation.id);
      }
    }
  } catch (error) {
    const message = customerMessage(error);
    // A refusal or a failed step is expected from time to time; anything else is a bug.
    const fields = { request: request.id, kind: request.kind, server: serverId, err: error };
    if (error instanceof VomeError) {
      logger.warn(fields, 'portal request failed');
    } else {
      logger.error(fields, 'portal request failed');
    }
    return finishRequest(db, request, { state: 'failed', ...(serverId ? { serverId } : {}), operationIds, error: message });
  }
  logger.info({ request: request.id, kind: request.kind, server: serverId }, 'portal request succeeded');
  return finishRequest(db, request, { state: 'succeeded', ...(serverId ? { serverId } : {}), operationIds });
}

export interface JobWorkerOptions {
  connectionString: string;
  context: HostContext;
  defaults: PortalDefaults;
  /** Jobs run at once; each holds its server's lock while it runs. */
  concurrency: number;
}

function graphileLogger(logger: Logger): GraphileLogger {
  return new GraphileLogger((scope) => (level: LogLevel, message: string) => {
    const fields = { ...scope, component: 'graphile-worker' };
    if (level === 'error') {
      logger.error(fields, message);
    } else if (level === 'warning') {
      logger.warn(fields, message);
    } else if (level === 'info') {
      logger.info(fields, message);
    } else {
      logger.debug(fields, message);
    }
  });
}

function taskList(options: JobWorkerOptions): Record<string, Task> {
  return {
    [PORTAL_REQUEST_TASK]: async (payload) => {
      const { requestId } = payload as PortalRequestJob;
      await runPortalRequest(options.context, requestId, options.defaults);
    },
  };
}

/** Starts the job worker; it runs until `stop()` is called on the result. */
export async function startJobWorker(options: JobWorkerOptions): Promise<Runner> {
  return run({
    connectionString: options.connectionString,
    concurrency: options.concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: graphileLogger(options.context.logger),
    taskList: taskList(options),
  });
}

/** Runs every job that is due now, then returns. */
export async function runDueJobs(options: JobWorkerOptions): Promise<void> {
  await runOnce({
    connectionString: options.connectionString,
    concurrency: options.concurrency,
    noHandleSignals: true,
    logger: graphileLogger(options.context.logger),
    taskList: taskList(options),
  });
}
