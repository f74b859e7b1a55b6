import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../../src/audit/actor.js';
import {
  codeState,
  createRedemptionCode,
  isEntitled,
  listRedemptionCodes,
  redeemCode,
  revokeRedemptionCode,
} from '../../../src/billing/redemption-codes.js';
import type { Db } from '../../../src/db/connection.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../../../src/errors/index.js';
import { ADMIN, insertAccount, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

const NOW = new Date('2026-12-05T10:00:00Z');
const LATER = new Date('2027-01-31T00:00:00Z');
const DAY = 86_400_000;

const customer = (accountId: string): Actor => ({ kind: 'customer', id: accountId, sourceAddress: '203.0.113.7' });

async function makeCode(db: Db, overrides: Partial<{ maxUses: number; expiresAt: Date; trialDays: number }> = {}) {
  return createRedemptionCode(db, ADMIN, { plan: 'household', trialDays: 30, maxUses: 1, expiresAt: LATER, ...overrides }, NOW);
}

describe('createRedemptionCode', () => {
  it('returns the code once and stores only its hash', async () => {
    const db = await database.fresh();
    const { code, record } = await makeCode(db);

    expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$/);
    expect(record.prefix).toBe(code.slice(0, 5));
    expect(record.code_hash).toMatch(/^[0-9a-f]{64}$/);
    const stored = JSON.stringify(await db.selectFrom('redemption_codes').selectAll().execute());
    expect(stored).not.toContain(code);
    expect(stored).not.toContain(code.replaceAll('-', ''));
  });

  it('records the creation without the code', async () => {
    const db = await database.fresh();
    const { code } = await makeCode(db);
    const events = await db.selectFrom('audit_events').selectAll().where('action', '=', 'code.create').execute();
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events[0]?.details)).not.toContain(code.slice(6));
  });

  it.each([
    [{ plan: 'Household' }, 'invalid plan "Household"'],
    [{ trialDays: 0 }, 'invalid trial length 0'],
    [{ trialDays: 1.5 }, 'invalid trial length 1.5'],
    [{ maxUses: 0 }, 'invalid use count 0'],
    [{ expiresAt: new Date('2026-12-01T00:00:00Z') }, 'invalid expiry 2026-12-01T00:00:00.000Z: it must be in the future'],
    [{ expiresAt: new Date('not a date') }, 'invalid expiry: give a date'],
  ])('rejects %o', async (overrides, message) => {
    const db = await database.fresh();
    const error = await rejection(createRedemptionCode(db, ADMIN, { plan: 'household', trialDays: 30, maxUses: 1, expiresAt: LATER, ...overrides }, NOW));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain(message);
    expect(await listRedemptionCodes(db)).toEqual([]);
  });
});

describe('redeemCode', () => {
  it('starts a trial of the code plan', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db);
    const { code } = await makeCode(db, { trialDays: 14 });

    const redemption = await redeemCode(db, customer(account.id), account.id, code, NOW);

    expect(redemption.subscription).toMatchObject({ account_id: account.id, plan: 'household', status: 'trial' });
    expect(redemption.subscription.trial_ends_at).toEqual(new Date(NOW.getTime() + 14 * DAY));
    expect(redemption.code.uses).toBe(1);
    expect(isEntitled(redemption.subscription, new Date(NOW.getTime() + 14 * DAY - 1000))).toBe(true);
    expect(isEntitled(redemption.subscription, new Date(NOW.getTime() + 14 * DAY + 1000))).toBe(false);
    const stored = await db.selectFrom('code_redemptions').selectAll().execute();
    expect(stored).toEqual([{ code_id: redemption.code.id, account_id: account.id, source_address: '203.0.113.7', redeemed_at: NOW }]);
  });

  it('accepts a loosely typed code', async () => {
    // Lower case, spaces for hyphens, and the letter O for the digit 0.
    const db = await database.fresh();
    const account = await insertAccount(db);
    const { code } = await makeCode(db);
    const typed = code.toLowerCase().replaceAll('-', ' ').replaceAll('0', 'o');

    const redemption = await redeemCode(db, customer(account.id), account.id, typed, NOW);
    expect(redemption.code.uses).toBe(1);
  });

  it('is single use', async () => {
    const db = await database.fresh();
    const first = await insertAccount(db, 'first');
    const second = await insertAccount(db, 'second');
    const { code } = await makeCode(db);
    await redeemCode(db, customer(first.id), first.id, code, NOW);

    const error = await rejection(redeemCode(db, customer(second.id), second.id, code, NOW));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe('this code is used up: ask for a new one');
    expect(await db.selectFrom('subscriptions').selectAll().where('account_id', '=', second.id).execute()).toEqual([]);
  });

  it('honours a use limit above one', async () => {
    const db = await database.fresh();
    const { code } = await makeCode(db, { maxUses: 2 });
    for (const login of ['one', 'two']) {
      const account = await insertAccount(db, login);
      await redeemCode(db, customer(account.id), account.id, code, NOW);
    }
    const third = await insertAccount(db, 'three');
    expect((await rejection(redeemCode(db, customer(third.id), third.id, code, NOW))).message).toBe('this code is used up: ask for a new one');
  });

  it('rejects an expired code', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db);
    const { code } = await makeCode(db);
    const error = await rejection(redeemCode(db, customer(account.id), account.id, code, new Date(LATER.getTime() + 1000)));
    expect(error.message).toBe('this code is expired: ask for a new one');
  });

  it('rejects a revoked code', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db);
    const { code, record } = await makeCode(db);
    await revokeRedemptionCode(db, ADMIN, record.prefix);

    const error = await rejection(redeemCode(db, customer(account.id), account.id, code, NOW));
    expect(error.message).toBe('this code is revoked: ask for a new one');
  });

  it('rejects an unknown code without saying why', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db);
    const error = await rejection(redeemCode(db, customer(account.id), account.id, 'AAAAA-BBBBB-CCCCC-DDDDD', NOW));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe('this code is not valid: check it for typing mistakes');
  });

  it('rejects a second trial for one account', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db);
    const first = await makeCode(db);
    const second = await makeCode(db);
    await redeemCode(db, customer(account.id), account.id, first.code, NOW);

    const error = await rejection(redeemCode(db, customer(account.id), account.id, second.code, NOW));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe('this account already has a trial (household)');
    const codes = await listRedemptionCodes(db);
    expect(codes.find((code) => code.id === second.record.id)?.uses).toBe(0);
  });

  it('replaces a trial that has ended', async () => {
    const db = await database.fresh();
    const account = await insertAccount(db);
    const first = await makeCode(db);
    const second = await makeCode(db);
    const redeemed = await redeemCode(db, customer(account.id), account.id, first.code, NOW);
    const later = new Date((redeemed.subscription.trial_ends_at as Date).getTime() + 1000);

    const renewed = await redeemCode(db, customer(account.id), account.id, second.code, later);
    expect(renewed.subscription.status).toBe('trial');
    const old = await db.selectFrom('subscriptions').select('status').where('id', '=', redeemed.subscription.id).executeTakeFirstOrThrow();
    expect(old.status).toBe('cancelled');
  });

  it('gives the last use to exactly one of many concurrent redeemers', async () => {
    const db = await database.fresh();
    const accounts = await Promise.all(Array.from({ length: 10 }, (_, index) => insertAccount(db, `racer-${index}`)));
    const { code } = await makeCode(db);

    const results = await Promise.allSettled(accounts.map((account) => redeemCode(db, customer(account.id), account.id, code, NOW)));

    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const reasons = results.flatMap((result) => (result.status === 'rejected' ? [(result.reason as Error).message] : []));
    expect(new Set(reasons)).toEqual(new Set(['this code is used up: ask for a new one']));
    expect(await db.selectFrom('subscriptions').selectAll().execute()).toHaveLength(1);
    expect((await listRedemptionCodes(db))[0]?.uses).toBe(1);
  });
});

describe('revokeRedemptionCode', () => {
  it('revokes by prefix and says when it was already revoked', async () => {
    const db = await database.fresh();
    const { record } = await makeCode(db);

    const first = await revokeRedemptionCode(db, ADMIN, record.prefix.toLowerCase());
    const second = await revokeRedemptionCode(db, ADMIN, record.prefix);

    expect(first.alreadyRevoked).toBe(false);
    expect(codeState(first.code, NOW)).toBe('revoked');
    expect(second.alreadyRevoked).toBe(true);
  });

  it('rejects an unknown prefix', async () => {
    const db = await database.fresh();
    expect(await rejection(revokeRedemptionCode(db, ADMIN, 'ZZZZZ'))).toBeInstanceOf(NotFoundError);
  });
});
