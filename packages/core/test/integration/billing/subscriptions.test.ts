import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEntitled } from '../../../src/billing/redemption-codes.js';
import { setSubscription } from '../../../src/billing/subscriptions.js';
import type { Db } from '../../../src/db/connection.js';
import { InvalidInputError, NotFoundError } from '../../../src/errors/index.js';
import { ADMIN, insertAccount, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();
const NOW = new Date('2026-12-05T10:00:00Z');
const DAY_MS = 86_400_000;

async function current(db: Db, accountId: string) {
  return db.selectFrom('subscriptions').selectAll().where('account_id', '=', accountId).where('status', '<>', 'cancelled').executeTakeFirst();
}

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

describe('setSubscription', () => {
  it('starts an active subscription', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db, 'octocat');
    const subscription = await setSubscription(db, ADMIN, 'octocat', { status: 'active', plan: 'home' }, NOW);
    expect(subscription).toMatchObject({ account_id: account.id, plan: 'home', status: 'active', trial_ends_at: null });
    expect(isEntitled(subscription, NOW)).toBe(true);
  });

  it('moves a trial to past due', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db, 'octocat');
    await setSubscription(db, ADMIN, 'octocat', { status: 'trial', plan: 'home', trialDays: 14 }, NOW);
    const pastDue = await setSubscription(db, ADMIN, 'octocat', { status: 'past_due' }, NOW);
    expect(pastDue?.plan).toBe('home');
    expect(pastDue?.status).toBe('past_due');
    expect(isEntitled(pastDue, NOW)).toBe(false);
    const rows = await db.selectFrom('subscriptions').select('id').where('account_id', '=', account.id).execute();
    expect(rows).toHaveLength(1);
  });

  it('ends a subscription on cancel', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db, 'octocat');
    await setSubscription(db, ADMIN, 'octocat', { status: 'active', plan: 'home' }, NOW);
    await setSubscription(db, ADMIN, 'octocat', { status: 'cancelled' }, NOW);
    expect(await current(db, account.id)).toBeUndefined();
  });

  it('sets a trial end from its days', async () => {
    const db = await database.fresh();
    await insertAccount(db, 'octocat');
    const trial = await setSubscription(db, ADMIN, 'octocat', { status: 'trial', plan: 'home', trialDays: 3 }, NOW);
    expect(trial?.trial_ends_at?.toISOString()).toBe(new Date(NOW.getTime() + 3 * DAY_MS).toISOString());
  });

  it('audits the change with both statuses', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db, 'octocat');
    await setSubscription(db, ADMIN, 'octocat', { status: 'active', plan: 'home' }, NOW);
    await setSubscription(db, ADMIN, 'octocat', { status: 'past_due' }, NOW);
    const event = await db.selectFrom('audit_events').selectAll().where('action', '=', 'subscription.set').orderBy('id', 'desc').executeTakeFirstOrThrow();
    expect(event.target_id).toBe(account.id);
    expect(event.actor_id).toBe('alice');
    expect(event.details).toEqual({ from: 'active', to: 'past_due', plan: 'home', trialEndsAt: null });
  });

  it.each([
    ['no plan for a first subscription', { status: 'active' }, 'account "octocat" has no current subscription, so the new one needs a plan'],
    ['trial days without a trial', { status: 'active', plan: 'home', trialDays: 5 }, 'trial days apply only to a trial, not to status "active": leave them out or set the status to trial'],
    ['a trial without days', { status: 'trial', plan: 'home' }, 'a trial needs its length: give a whole number of trial days from 1 to 365'],
    ['a malformed plan', { status: 'active', plan: 'Home Plan' }, 'invalid plan "Home Plan": use lower-case letters, digits and hyphens, starting with a letter'],
  ] as const)('rejects %s', async (_, change, message) => {
    const db = await database.fresh();
    await insertAccount(db, 'octocat');
    const error = await rejection(setSubscription(db, ADMIN, 'octocat', change, NOW));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(message);
    const rows = await db.selectFrom('subscriptions').select('id').execute();
    expect(rows).toEqual([]);
  });

  it('rejects an unknown account', async () => {
    const db = await database.fresh();
    const error = await rejection(setSubscription(db, ADMIN, 'nobody', { status: 'active', plan: 'home' }, NOW));
    expect(error).toBeInstanceOf(NotFoundError);
  });
});
