import type { Actor } from '../audit/actor.js';
import { isEntitled } from '../billing/redemption-codes.js';
import type { Db } from '../db/connection.js';
import type { Server } from '../db/schema.js';
import { ForbiddenError } from '../errors/index.js';

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
  const denied = new ForbiddenError('you have no server of that name', { hints: ['see your servers on the dashboard'] });
  if (actor.kind !== 'customer' || server === undefined || server.account_id !== actor.id) {
    throw denied;
  }
  const subscription = await db.selectFrom('subscriptions').selectAll().where('account_id', '=', actor.id).where('status', '<>', 'cancelled').executeTakeFirst();
  if (!isEntitled(subscription, now)) {
    throw new ForbiddenError('your trial or subscription is not active, so your servers cannot be changed', {
      hints: ['redeem a code or renew your subscription'],
    });
  }
}
