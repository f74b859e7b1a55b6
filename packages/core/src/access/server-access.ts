import type { Actor } from '../audit/actor.js';
import { isEntitled } from '../billing/redemption-codes.js';
import { currentSubscription } from '../billing/subscriptions.js';
import type { Db } from '../db/connection.js';
import type { Server } from '../db/schema.js';
import { ForbiddenError, NotFoundError } from '../errors/index.js';

const NO_SUCH_SERVER = 'you have no such server';

/**
 * Checks that an actor may act on a server. Admins and vome itself pass by
 * role (their actions are audited with the actor). A customer must own the
 * server and hold an active subscription or a trial that has not ended.
 * Support access under a customer's grant does not exist yet, so it is
 * rejected.
 *
 * @throws ForbiddenError with the same message for a server of another
 *   account as for one that does not exist, so that nothing leaks.
 */
export async function requireServerAccess(db: Db, actor: Actor, server: Pick<Server, 'id' | 'account_id'> | undefined, now: Date = new Date()): Promise<void> {
  if (actor.kind === 'admin' || actor.kind === 'system') {
    return;
  }
  const denied = new ForbiddenError(NO_SUCH_SERVER, { hints: ['see your servers on the dashboard'] });
  if (actor.kind !== 'customer' || server === undefined || server.account_id !== actor.id) {
    throw denied;
  }
  const subscription = await currentSubscription(db, actor.id);
  if (!isEntitled(subscription, now)) {
    throw new ForbiddenError('your trial or subscription is not active, so your servers cannot be changed', {
      hints: ['redeem a code or renew your subscription'],
    });
  }
}

/**
 * Checks that an actor may create a server for an account. Admins and vome
 * itself pass by role. A customer may create one only for their own account
 * and only while entitled.
 *
 * @throws ForbiddenError otherwise.
 */
export async function requireCreateAccess(db: Db, actor: Actor, accountId: string, now: Date = new Date()): Promise<void> {
  if (actor.kind === 'admin' || actor.kind === 'system') {
    return;
  }
  if (actor.kind !== 'customer' || actor.id !== accountId) {
    throw new ForbiddenError('you may create servers only for your own account');
  }
  const subscription = await currentSubscription(db, accountId);
  if (!isEntitled(subscription, now)) {
    throw new ForbiddenError('your trial or subscription is not active, so no server can be created', {
      hints: ['redeem a code or renew your subscription'],
    });
  }
}

/**
 * Checks that an actor may see a server: admins and vome itself always,
 * a customer only their own, whether or not they are entitled now.
 *
 * @throws ForbiddenError with the same message as `requireServerAccess`
 *   when a customer requests a server of another account or one that does
 *   not exist; NotFoundError when an admin requests a missing one.
 */
export function requireServerVisible(actor: Actor, server: Pick<Server, 'id' | 'account_id'> | undefined, serverId: string): asserts server is Pick<Server, 'id' | 'account_id'> {
  if (actor.kind === 'admin' || actor.kind === 'system') {
    if (!server) {
      throw new NotFoundError('server', serverId);
    }
    return;
  }
  if (actor.kind === 'customer' && server !== undefined && server.account_id === actor.id) {
    return;
  }
  throw new ForbiddenError(NO_SUCH_SERVER, { hints: ['see your servers on the dashboard'] });
}
