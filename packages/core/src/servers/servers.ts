import { type Actor, actorLabel } from '../audit/actor.js';
import { appendAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { Host, OperationKind, Server } from '../db/schema.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors/index.js';
import type { CommandRunner } from '../runner/command-runner.js';
import { getAccount } from '../accounts/accounts.js';
import { runnerForHost } from '../hosts/host-connection.js';
import { getHost, type HostContext } from '../hosts/hosts.js';
import { getImage } from '../images/images.js';
import { requireDnsLabel } from '../naming/dns-label.js';
import { freshSteps, type OperationResult, runOperation, type RunOperationOptions } from '../operations/run-operation.js';
import { pickFreeAddress, randomMac } from './address-allocation.js';
import { requireCreateAccess, requireServerAccess } from '../access/server-access.js';
import { requireNetworkSettings } from '../network/host-network.js';
import { pickFreeTunnelSlot } from '../network/tunnels.js';
import { preflight, requireFreeNames, requireSameRequest } from './create-checks.js';
import { STEP_HANDLERS } from './step-handlers.js';

export interface CreateServerInput {
  name: string;
  /** Defaults to the name. */
  subdomain?: string;
  /** GitHub login or account id of the owner. */
  account: string;
  host: string;
  image: string;
  vcpus?: number;
  memoryMib?: number;
  diskGib?: number;
  /** Home Assistant's port in the guest: 8123, or 80 on new installs from HAOS 18.3. */
  haPort?: number;
}

/** Sizes per HAOS's documented minimum: 2 vCPU, 2 GB RAM, 32 GB disk. */
export const DEFAULT_SIZE = { vcpus: 2, memoryMib: 2048, diskGib: 32 } as const;

function requireWhole(field: string, value: number, min: number, max: number, unit: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`invalid ${field} ${value}: use a whole number of ${unit} from ${min} to ${max}`);
  }
  return value;
}

function operate(
  context: HostContext,
  actor: Actor,
  server: Server,
  kind: OperationKind,
  options: RunOperationOptions,
  runner?: CommandRunner,
): Promise<OperationResult> {
  const open = (host: Host) => runner ?? runnerForHost(context.config, context.logger, host);
  return runOperation(context, actor, server.id, kind, STEP_HANDLERS, open, options);
}

/**
 * Creates a server: validates everything first (names, owner, host, image,
 * sizes, a free address), records it with its address and MAC, then runs the
 * create operation. Running it again for a server whose creation was
 * interrupted finishes that creation.
 *
 * @throws InvalidInputError, NotFoundError, ConflictError or AddressRangeFullError
 *   before anything is recorded or touched on the host.
 */
export async function createServer(context: HostContext, actor: Actor, input: CreateServerInput, options: RunOperationOptions = {}): Promise<OperationResult> {
  const { db } = context;
  const name = requireDnsLabel('server name', input.name);
  const subdomain = requireDnsLabel('subdomain', input.subdomain ?? input.name);

  const unfinished = await db.selectFrom('servers').selectAll().where('name', '=', name).where('state', 'in', ['provisioning', 'failed']).executeTakeFirst();
  if (unfinished) {
    const pending = await db.selectFrom('operations').select('kind').where('server_id', '=', unfinished.id).where('state', 'in', ['running', 'failed']).executeTakeFirst();
    if (pending?.kind === 'create') {
      await requireSameRequest(db, unfinished, input);
      return operate(context, actor, unfinished, 'create', options);
    }
  }

  const account = await getAccount(db, input.account);
  await requireCreateAccess(db, actor, account.id);
  const host = await getHost(db, input.host);
  const image = await getImage(db, input.image);
  const vcpus = requireWhole('vCPU count', input.vcpus ?? DEFAULT_SIZE.vcpus, 1, 64, 'vCPUs');
  const memoryMib = requireWhole('memory', input.memoryMib ?? DEFAULT_SIZE.memoryMib, 256, 262_144, 'MiB');
  const diskGib = requireWhole('disk size', input.diskGib ?? DEFAULT_SIZE.diskGib, 1, 16_384, 'GiB');
  const haPort = requireWhole('Home Assistant port', input.haPort ?? 8123, 1, 65_535, 'port');
  if (vcpus > host.vcpus) {
    throw new InvalidInputError(`invalid vCPU count ${vcpus}: host "${host.name}" has ${host.vcpus}`);
  }
  if (memoryMib > host.memory_mib) {
    throw new InvalidInputError(`invalid memory ${memoryMib} MiB: host "${host.name}" has ${host.memory_mib} MiB`);
  }
  const imageGib = Math.ceil(Number(image.virtual_size_bytes) / 2 ** 30);
  if (diskGib * 2 ** 30 < Number(image.virtual_size_bytes)) {
    throw new InvalidInputError(`invalid disk size ${diskGib} GiB: image "${image.name}" needs at least ${imageGib} GiB`);
  }

  requireNetworkSettings(host);
  await requireFreeNames(db, name, subdomain);
  const runner = runnerForHost(context.config, context.logger, host);
  try {
    await preflight(runner, host, { name, diskGib });
  } catch (error) {
    await runner.close();
    throw error;
  }

  const server = await db.transaction().execute(async (trx) => {
    await requireFreeNames(trx, name, subdomain);
    const ipv4 = await pickFreeAddress(trx, host);
    const tunnelSlot = await pickFreeTunnelSlot(trx, host);

    let created: Server | undefined;
    for (let attempt = 0; attempt < 5 && !created; attempt += 1) {
      const mac = randomMac();
      const macTaken = await trx.selectFrom('servers').select('id').where('mac', '=', mac).where('state', '<>', 'destroyed').executeTakeFirst();
      if (macTaken) {
        continue;
      }
      created = await trx
        .insertInto('servers')
        .values({
          name,
          subdomain,
          account_id: account.id,
          host_id: host.id,
          image_id: image.id,
          vcpus,
          memory_mib: memoryMib,
          disk_gib: diskGib,
          mac,
          ipv4,
          ha_port: haPort,
          tunnel_slot: tunnelSlot,
          state: 'provisioning',
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    }
    if (!created) {
      throw new ConflictError('could not find an unused MAC address after 5 tries');
    }
    await trx.insertInto('address_allocations').values({ host_id: host.id, ipv4, server_id: created.id }).execute();
    // Recorded with the server, so that a run killed right after this commit
    // is finished by running the same create again.
    await trx
      .insertInto('operations')
      .values({ server_id: created.id, kind: 'create', state: 'running', steps: JSON.stringify(freshSteps('create')), actor: actorLabel(actor), attempts: 0 })
      .execute();
    await appendAudit(trx, {
      actor,
      action: 'server.record',
      target: { kind: 'server', id: created.id },
      details: { name, subdomain, account: account.github_login, host: host.name, image: image.name, ipv4, mac: created.mac, vcpus, memoryMib, diskGib },
    });
    return created;
  }).catch(async (error: unknown) => {
    await runner.close();
    // Two creates of one name can both pass the check above. The unique
    // index decides, so the loser gets the same error as a plain clash.
    if ((error as { code?: string }).code === '23505') {
      throw new ConflictError(`a server with the name "${name}" or subdomain "${subdomain}" already exists`, {
        hints: ['pick another, or run `vome server list`'],
        cause: error,
      });
    }
    throw error;
  });

  return operate(context, actor, server, 'create', options, runner);
}

/** Runs start, stop, suspend, resume, rebuild or destroy on a server. */
export async function serverOperation(
  context: HostContext,
  actor: Actor,
  name: string,
  kind: Exclude<OperationKind, 'create'>,
  options: RunOperationOptions = {},
): Promise<OperationResult> {
  const server = await context.db.selectFrom('servers').selectAll().where('name', '=', name).where('state', '<>', 'destroyed').executeTakeFirst();
  await requireServerAccess(context.db, actor, server);
  if (!server) {
    throw new NotFoundError('server', name, { hints: ['run `vome server list`'] });
  }
  return operate(context, actor, server, kind, options);
}

/**
 * Runs an operation on the live server with this id; the portal names
 * servers by id. A customer gets the same ForbiddenError for another
 * account's server as for one that does not exist.
 */
export async function serverOperationById(
  context: HostContext,
  actor: Actor,
  serverId: string,
  kind: Exclude<OperationKind, 'create'>,
  options: RunOperationOptions = {},
): Promise<OperationResult> {
  const server = await findLiveServerById(context.db, serverId);
  await requireServerAccess(context.db, actor, server);
  if (!server) {
    throw new NotFoundError('server', serverId);
  }
  return operate(context, actor, server, kind, options);
}

/** Finds the live (not destroyed) server with this id; a malformed id finds none. */
export async function findLiveServerById(db: Db, serverId: string): Promise<Server | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(serverId)) {
    return undefined;
  }
  return db.selectFrom('servers').selectAll().where('id', '=', serverId).where('state', '<>', 'destroyed').executeTakeFirst();
}

/** A server with the names of its owner, host and image. */
export interface ServerView extends Server {
  account_login: string;
  host_name: string;
  image_name: string;
}

function serverViews(db: Db) {
  return db
    .selectFrom('servers')
    .innerJoin('accounts', 'accounts.id', 'servers.account_id')
    .innerJoin('hosts', 'hosts.id', 'servers.host_id')
    .innerJoin('images', 'images.id', 'servers.image_id')
    .selectAll('servers')
    .select(['accounts.github_login as account_login', 'hosts.name as host_name', 'images.name as image_name']);
}

/** Lists servers that are not destroyed (or all with `includeDestroyed`). */
export async function listServers(db: Db, options: { includeDestroyed?: boolean } = {}): Promise<ServerView[]> {
  let query = serverViews(db).orderBy('servers.name');
  if (!options.includeDestroyed) {
    query = query.where('servers.state', '<>', 'destroyed');
  }
  return query.execute();
}

/**
 * Finds the live server with this name.
 *
 * @throws NotFoundError when there is none.
 */
export async function getServer(db: Db, name: string): Promise<ServerView> {
  const server = await serverViews(db).where('servers.name', '=', name).where('servers.state', '<>', 'destroyed').executeTakeFirst();
  if (!server) {
    throw new NotFoundError('server', name, { hints: ['run `vome server list`'] });
  }
  return server;
}

/** Finds the most recently destroyed server with this name, if any. */
export async function findDestroyedServer(db: Db, name: string): Promise<ServerView | undefined> {
  return serverViews(db).where('servers.name', '=', name).where('servers.state', '=', 'destroyed').orderBy('servers.destroyed_at', 'desc').limit(1).executeTakeFirst();
}

/** Finds a server by id, destroyed or not. */
export async function getServerById(db: Db, id: string): Promise<ServerView> {
  return serverViews(db).where('servers.id', '=', id).executeTakeFirstOrThrow();
}

/** Lists a server's operations, newest first. */
export async function listOperations(db: Db, serverId: string, limit = 20) {
  return db.selectFrom('operations').selectAll().where('server_id', '=', serverId).orderBy('created_at', 'desc').limit(limit).execute();
}
