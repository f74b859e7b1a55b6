import { sql, type Transaction } from 'kysely';
import { requireServerAccess } from '../access/server-access.js';
import { type Actor, actorLabel } from '../audit/actor.js';
import { appendAudit } from '../audit/audit-log.js';
import { type Redemption, redeemCodeInTransaction } from '../billing/redemption-codes.js';
import type { Db } from '../db/connection.js';
import type { Database, PortalRequest, PortalRequestKind } from '../db/schema.js';
import { NotFoundError } from '../errors/index.js';
import { findLiveServerById } from '../servers/servers.js';

/** graphile-worker's task name for a portal request. */
export const PORTAL_REQUEST_TASK = 'vome_portal_request';

/** Payload of a portal request job: only the id, because the row contains the rest. */
export interface PortalRequestJob {
  requestId: string;
}

/**
 * Records a request and queues its job in the caller's transaction, so
 * that both or neither exist. graphile-worker's schema must be installed
 * (`installJobQueue`). Up to 5 attempts: the task itself never throws for
 * a failed operation, so a retry only follows a worker that died mid-run,
 * and operations finish where such a run stopped.
 *
 * NOTE: graphile-worker 0.17 frees the job of a dead worker only after its
 * lock is 4 hours old, so such a request shows "running" until then.
 */
async function insertRequest(trx: Transaction<Database>, actor: Actor, accountId: string, kind: PortalRequestKind, serverId: string | null): Promise<PortalRequest> {
  const request = await trx
    .insertInto('portal_requests')
    .values({ account_id: accountId, server_id: serverId, kind, state: 'queued', actor: actorLabel(actor), source_address: actor.sourceAddress ?? null })
    .returningAll()
    .executeTakeFirstOrThrow();
  const payload: PortalRequestJob = { requestId: request.id };
  await sql`SELECT graphile_worker.add_job(${PORTAL_REQUEST_TASK}, ${JSON.stringify(payload)}::json, max_attempts => 5)`.execute(trx);
  return request;
}

/**
 * Queues start, stop or restart of a server for the worker. Checks, before
 * anything is recorded, that the actor may act on the server now; the
 * worker checks again when it runs the request.
 *
 * @throws ForbiddenError for a server the actor may not act on, with the
 *   same message whether or not it exists.
 */
export async function queueServerRequest(db: Db, actor: Actor, serverId: string, kind: Exclude<PortalRequestKind, 'create'>, now: Date): Promise<PortalRequest> {
  const server = await findLiveServerById(db, serverId);
  await requireServerAccess(db, actor, server, now);
  if (!server) {
    // Only admins and vome itself reach this: a customer was rejected above.
    throw new NotFoundError('server', serverId);
  }
  const target = server;
  return db.transaction().execute(async (trx) => {
    const request = await insertRequest(trx, actor, target.account_id, kind, target.id);
    await appendAudit(trx, { actor, action: `server.request-${kind}`, target: { kind: 'server', id: target.id }, details: { request: request.id } });
    return request;
  });
}

/**
 * Redeems a code for the actor's own account and queues the creation of
 * its server, in one transaction: a code is never used up without the
 * server being queued, nor the other way round.
 *
 * @throws InvalidInputError or ConflictError from the redemption.
 */
export async function redeemCodeAndQueueServer(db: Db, actor: Actor & { kind: 'customer' }, code: string, now: Date): Promise<{ redemption: Redemption; request: PortalRequest }> {
  return db.transaction().execute(async (trx) => {
    const redemption = await redeemCodeInTransaction(trx, actor, actor.id, code, now);
    const request = await insertRequest(trx, actor, actor.id, 'create', null);
    return { redemption, request };
  });
}

/** Lists an account's requests (or a server's, given `serverId`), newest first. */
export async function listPortalRequests(db: Db, filter: { accountId?: string; serverId?: string }, limit = 10): Promise<PortalRequest[]> {
  let query = db.selectFrom('portal_requests').selectAll().orderBy('created_at', 'desc').limit(limit);
  if (filter.accountId) {
    query = query.where('account_id', '=', filter.accountId);
  }
  if (filter.serverId) {
    query = query.where('server_id', '=', filter.serverId);
  }
  return query.execute();
}
