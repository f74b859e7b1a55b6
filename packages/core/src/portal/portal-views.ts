import { requireServerVisible } from '../access/server-access.js';
import type { Actor } from '../audit/actor.js';
import type { Db } from '../db/connection.js';
import type { Operation, PortalRequest, Server, ServerState } from '../db/schema.js';
import { listPortalRequests } from '../jobs/portal-requests.js';
import { findLiveServerById } from '../servers/servers.js';

/** A server as the portal shows it. */
export interface PortalServer {
  id: string;
  name: string;
  state: ServerState;
  /** https://<subdomain>.<HA domain>, or null while the host has no HA domain. */
  url: string | null;
  ipv4: string;
  hostName: string;
  ownerLogin: string;
  createdAt: Date;
}

/**
 * An operation as shown to a customer: steps and states only. Who ran it,
 * from where, and the host's error output stay for operators.
 */
export interface PortalOperation {
  id: string;
  kind: Operation['kind'];
  state: Operation['state'];
  createdAt: Date;
  finishedAt: Date | null;
  steps: Array<{ name: string; state: string }>;
}

/** A portal request as shown to a customer; `error` is already worded for customers. */
export interface PortalRequestView {
  id: string;
  kind: PortalRequest['kind'];
  state: PortalRequest['state'];
  createdAt: Date;
  finishedAt: Date | null;
  error: string | null;
}

export interface PortalServerDetail extends PortalServer {
  operations: PortalOperation[];
  requests: PortalRequestView[];
}

function portalServers(db: Db) {
  return db
    .selectFrom('servers')
    .innerJoin('hosts', 'hosts.id', 'servers.host_id')
    .innerJoin('accounts', 'accounts.id', 'servers.account_id')
    .select([
      'servers.id',
      'servers.name',
      'servers.state',
      'servers.subdomain',
      'servers.ipv4',
      'servers.created_at',
      'servers.account_id',
      'hosts.name as host_name',
      'hosts.ha_domain',
      'accounts.github_login',
    ])
    .where('servers.state', '<>', 'destroyed');
}

type PortalServerRow = Awaited<ReturnType<ReturnType<typeof portalServers>['executeTakeFirstOrThrow']>>;

function toPortalServer(row: PortalServerRow): PortalServer {
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    url: row.ha_domain ? `https://${row.subdomain}.${row.ha_domain}` : null,
    ipv4: row.ipv4,
    hostName: row.host_name,
    ownerLogin: row.github_login,
    createdAt: row.created_at,
  };
}

/** Lists the servers an actor may see: a customer's own, or every live server for an admin. */
export async function listServersForActor(db: Db, actor: Actor): Promise<PortalServer[]> {
  let query = portalServers(db).orderBy('servers.name');
  if (actor.kind === 'customer') {
    query = query.where('servers.account_id', '=', actor.id);
  } else if (actor.kind !== 'admin' && actor.kind !== 'system') {
    return [];
  }
  return (await query.execute()).map(toPortalServer);
}

/**
 * Returns one server with its recent operations and portal requests, after
 * checking in core that the actor may see it.
 *
 * @throws ForbiddenError when a customer requests a server of another
 *   account or one that does not exist, with one message for both;
 *   NotFoundError when an admin requests a missing one.
 */
export async function getServerForActor(db: Db, actor: Actor, serverId: string): Promise<PortalServerDetail> {
  const server: Server | undefined = await findLiveServerById(db, serverId);
  requireServerVisible(actor, server, serverId);
  const row = await portalServers(db).where('servers.id', '=', server.id).executeTakeFirstOrThrow();
  const operations = await db.selectFrom('operations').selectAll().where('server_id', '=', server.id).orderBy('created_at', 'desc').limit(5).execute();
  const requests = await listPortalRequests(db, { serverId: server.id }, 5);
  return {
    ...toPortalServer(row),
    operations: operations.map((operation) => ({
      id: operation.id,
      kind: operation.kind,
      state: operation.state,
      createdAt: operation.created_at,
      finishedAt: operation.finished_at,
      steps: operation.steps.map((step) => ({ name: step.name, state: step.state })),
    })),
    requests: requests.map((request) => ({
      id: request.id,
      kind: request.kind,
      state: request.state,
      createdAt: request.created_at,
      finishedAt: request.finished_at,
      error: request.error,
    })),
  };
}
