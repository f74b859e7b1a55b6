import { ForbiddenError, redeemCodeAndQueueServer } from '@vome/core';
import { now } from '../../../lib/clock';
import { handleAction } from '../../../lib/guard';

/**
 * Redeems a code: starts the account's trial and queues the creation of
 * its server, in one transaction. Counted against the redemption limit.
 */
export async function POST(request: Request): Promise<Response> {
  return handleAction(request, 'redeem', async ({ portal, user, fields }) => {
    if (user.actor.kind !== 'customer') {
      throw new ForbiddenError('admins manage codes and subscriptions with the vome CLI');
    }
    const code = (fields.get('code') ?? '').trim();
    const { redemption, request: queued } = await redeemCodeAndQueueServer(portal.db, { ...user.actor, kind: 'customer' }, code, now());
    portal.logger.info({ account: user.account.id, request: queued.id, plan: redemption.subscription.plan }, 'code redeemed');
    const trialEnds = redemption.subscription.trial_ends_at?.toISOString() ?? null;
    return {
      status: 201,
      body: { subscription: { plan: redemption.subscription.plan, status: redemption.subscription.status, trialEndsAt: trialEnds }, request: { id: queued.id, kind: 'create', state: queued.state } },
      redirectTo: '/dashboard',
      notice: 'Code accepted: your trial has started and your Home Assistant server is being created.',
    };
  });
}
