import type { Actor } from '../audit/actor.js';
import { withAudit } from '../audit/audit-log.js';
import { getAccount } from '../accounts/accounts.js';
import type { Db } from '../db/connection.js';
import type { Subscription, SubscriptionStatus } from '../db/schema.js';
import { InvalidInputError } from '../errors/index.js';

const PLAN = /^[a-z][a-z0-9-]{0,39}$/;

/** Returns an account's current (not cancelled) subscription or trial, if any. */
export async function currentSubscription(db: Db, accountId: string): Promise<Subscription | undefined> {
  return db.selectFrom('subscriptions').selectAll().where('account_id', '=', accountId).where('status', '<>', 'cancelled').executeTakeFirst();
}

export interface SubscriptionChange {
  status: SubscriptionStatus;
  /** Required when the account has no current subscription; otherwise keeps the current plan. */
  plan?: string;
  /** Required for status `trial`: the trial ends this many days after `now`. */
  trialDays?: number;
}

/**
 * Sets an account's subscription, as billing or an admin decides, and
 * audits the change from the old status to the new. An account has at most
 * one subscription that is not cancelled. Cancelling ends it, and a later
 * change starts a new one.
 *
 * @throws InvalidInputError for a missing or malformed plan, or a trial without a length.
 * @throws NotFoundError when the account does not exist.
 */
export async function setSubscription(db: Db, actor: Actor, accountLoginOrId: string, change: SubscriptionChange, now: Date = new Date()): Promise<Subscription | undefined> {
  const account = await getAccount(db, accountLoginOrId);
  if (change.plan !== undefined && !PLAN.test(change.plan)) {
    throw new InvalidInputError(`invalid plan "${change.plan}": use lower-case letters, digits and hyphens, starting with a letter`);
  }
  if (change.status !== 'trial' && change.trialDays !== undefined) {
    throw new InvalidInputError(`trial days apply only to a trial, not to status "${change.status}": leave them out or set the status to trial`);
  }
  if (change.status === 'trial' && (change.trialDays === undefined || !Number.isInteger(change.trialDays) || change.trialDays < 1 || change.trialDays > 365)) {
    throw new InvalidInputError('a trial needs its length: give a whole number of trial days from 1 to 365');
  }
  const trialEndsAt = change.status === 'trial' ? new Date(now.getTime() + (change.trialDays as number) * 86_400_000) : null;

  return withAudit(db, async (trx) => {
    const current = await trx.selectFrom('subscriptions').selectAll().where('account_id', '=', account.id).where('status', '<>', 'cancelled').forUpdate().executeTakeFirst();
    let result: Subscription | undefined;
    if (current) {
      result = await trx
        .updateTable('subscriptions')
        .set({ status: change.status, plan: change.plan ?? current.plan, trial_ends_at: change.status === 'trial' ? trialEndsAt : null, updated_at: now })
        .where('id', '=', current.id)
        .returningAll()
        .executeTakeFirstOrThrow();
    } else if (change.status !== 'cancelled') {
      if (change.plan === undefined) {
        throw new InvalidInputError(`account "${account.github_login}" has no current subscription, so the new one needs a plan`, { hints: ['give the plan, e.g. --plan home'] });
      }
      result = await trx
        .insertInto('subscriptions')
        .values({ account_id: account.id, plan: change.plan, status: change.status, trial_ends_at: trialEndsAt, created_at: now, updated_at: now })
        .returningAll()
        .executeTakeFirstOrThrow();
    }
    return {
      result,
      audit: {
        actor,
        action: 'subscription.set',
        target: { kind: 'account', id: account.id },
        details: { from: current?.status ?? null, to: change.status, plan: result?.plan ?? current?.plan ?? null, trialEndsAt: trialEndsAt?.toISOString() ?? null },
      },
    };
  });
}
