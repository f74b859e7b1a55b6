import { createHash, randomInt } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Actor } from '../audit/actor.js';
import { appendAudit, withAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { Database, RedemptionCode, Subscription } from '../db/schema.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors/index.js';

// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or
// copied by hand is not misread.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const GROUPS = 4;
const GROUP_LENGTH = 5;
const PLAN = /^[a-z][a-z0-9-]{0,39}$/;

export interface CreateCodeInput {
  /** Plan name: lower-case letters, digits and hyphens, e.g. "household". */
  plan: string;
  trialDays: number;
  maxUses: number;
  expiresAt: Date;
}

export interface CreatedCode {
  /** The code to hand out, e.g. 7K2QD-…; shown once and never stored. */
  code: string;
  record: RedemptionCode;
}

export interface Redemption {
  subscription: Subscription;
  code: RedemptionCode;
}

/** Returns a code's state for lists: active, used up, expired or revoked. */
export function codeState(code: RedemptionCode, now: Date = new Date()): 'active' | 'used up' | 'expired' | 'revoked' {
  if (code.revoked_at !== null) {
    return 'revoked';
  }
  if (code.expires_at <= now) {
    return 'expired';
  }
  return code.uses >= code.max_uses ? 'used up' : 'active';
}

/**
 * Makes a redemption code: 20 random characters (100 bits) in four groups.
 * Only its SHA-256 hash and its first group are stored, so the code is
 * returned here once and cannot be shown again.
 *
 * @throws InvalidInputError for a bad plan, trial length, use count or expiry.
 */
export async function createRedemptionCode(db: Db, actor: Actor, input: CreateCodeInput, now: Date = new Date()): Promise<CreatedCode> {
  if (!PLAN.test(input.plan)) {
    throw new InvalidInputError(`invalid plan "${input.plan}": use 1–40 lower-case letters, digits and hyphens, starting with a letter`);
  }
  requireWhole('trial length', input.trialDays, 1, 365, 'days');
  requireWhole('use count', input.maxUses, 1, 100_000, 'uses');
  if (Number.isNaN(input.expiresAt.getTime())) {
    throw new InvalidInputError('invalid expiry: give a date such as 2027-01-31 or 2027-01-31T12:00:00Z');
  }
  if (input.expiresAt <= now) {
    throw new InvalidInputError(`invalid expiry ${input.expiresAt.toISOString()}: it must be in the future`);
  }

  // The prefix is unique; on the rare clash a new code is drawn.
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const code = randomCode();
    try {
      const record = await withAudit(db, async (trx) => {
        const inserted = await trx
          .insertInto('redemption_codes')
          .values({
            code_hash: hashCode(normaliseCode(code)),
            prefix: normaliseCode(code).slice(0, GROUP_LENGTH),
            plan: input.plan,
            trial_days: input.trialDays,
            max_uses: input.maxUses,
            expires_at: input.expiresAt,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return {
          result: inserted,
          audit: {
            actor,
            action: 'code.create',
            target: { kind: 'code', id: inserted.id },
            details: { prefix: inserted.prefix, plan: input.plan, trialDays: input.trialDays, maxUses: input.maxUses, expiresAt: input.expiresAt.toISOString() },
          },
        };
      });
      return { code, record };
    } catch (error) {
      if ((error as { code?: string }).code !== '23505') {
        throw error;
      }
    }
  }
  throw new ConflictError('could not draw an unused code prefix after 5 tries');
}

/** Lists codes, newest first. */
export async function listRedemptionCodes(db: Db): Promise<RedemptionCode[]> {
  return db.selectFrom('redemption_codes').selectAll().orderBy('created_at', 'desc').execute();
}

/**
 * Revokes a code, named by its prefix, so that it can no longer be redeemed.
 * Trials it already started are kept. Revoking a revoked code changes nothing.
 *
 * @throws NotFoundError when no code has that prefix.
 */
export async function revokeRedemptionCode(db: Db, actor: Actor, prefix: string): Promise<{ code: RedemptionCode; alreadyRevoked: boolean }> {
  const normalised = normaliseCode(prefix);
  const existing = await db.selectFrom('redemption_codes').selectAll().where('prefix', '=', normalised).executeTakeFirst();
  if (!existing) {
    throw new NotFoundError('code', prefix, { hints: ['run `vome code list` to see code prefixes'] });
  }
  if (existing.revoked_at !== null) {
    return { code: existing, alreadyRevoked: true };
  }
  const code = await withAudit(db, async (trx) => {
    const revoked = await trx.updateTable('redemption_codes').set({ revoked_at: new Date() }).where('id', '=', existing.id).returningAll().executeTakeFirstOrThrow();
    return { result: revoked, audit: { actor, action: 'code.revoke', target: { kind: 'code', id: existing.id }, details: { prefix: existing.prefix } } };
  });
  return { code, alreadyRevoked: false };
}

/**
 * Redeems a code for an account: counts one use, records the redemption and
 * starts a trial of the code's plan. The code's row is locked for the whole
 * transaction, so when several accounts race for a code's last use exactly
 * one wins.
 *
 * @throws InvalidInputError when the code is unknown, revoked, expired or used up.
 * @throws ConflictError when the account redeemed it before or already has
 *   a subscription or a trial that has not ended. An ended trial is
 *   cancelled and replaced.
 */
export async function redeemCode(db: Db, actor: Actor, accountId: string, code: string, now: Date = new Date()): Promise<Redemption> {
  return db.transaction().execute((trx) => redeemCodeInTransaction(trx, actor, accountId, code, now));
}

/** Redeems a code inside the caller's transaction, as `redeemCode` does. */
export async function redeemCodeInTransaction(trx: Transaction<Database>, actor: Actor, accountId: string, code: string, now: Date): Promise<Redemption> {
  const hash = hashCode(normaliseCode(code));
  const found = await trx.selectFrom('redemption_codes').selectAll().where('code_hash', '=', hash).forUpdate().executeTakeFirst();
  // The same message for every kind of unknown code, so that guessing
  // learns nothing about which codes exist.
  if (!found) {
    throw new InvalidInputError('this code is not valid: check it for typing mistakes');
  }
  const state = codeState(found, now);
  if (state !== 'active') {
    throw new InvalidInputError(`this code is ${state === 'used up' ? 'used up' : state}: ask for a new one`);
  }
  const before = await trx.selectFrom('code_redemptions').select('code_id').where('code_id', '=', found.id).where('account_id', '=', accountId).executeTakeFirst();
  if (before) {
    throw new ConflictError('this account has already redeemed this code');
  }
  await sql`SELECT id FROM accounts WHERE id = ${accountId} FOR UPDATE`.execute(trx);
  const current = await trx.selectFrom('subscriptions').selectAll().where('account_id', '=', accountId).where('status', '<>', 'cancelled').executeTakeFirst();
  const trialEnded = current?.status === 'trial' && current.trial_ends_at !== null && current.trial_ends_at <= now;
  if (current && !trialEnded) {
    throw new ConflictError(`this account already has a ${current.status === 'trial' ? 'trial' : 'subscription'} (${current.plan})`);
  }
  if (current) {
    // A trial that has ended gives way to the new one; only one subscription
    // per account may be other than cancelled.
    await trx.updateTable('subscriptions').set({ status: 'cancelled', updated_at: now }).where('id', '=', current.id).execute();
  }

  const updated = await trx.updateTable('redemption_codes').set({ uses: sql`uses + 1` }).where('id', '=', found.id).returningAll().executeTakeFirstOrThrow();
  await trx.insertInto('code_redemptions').values({ code_id: found.id, account_id: accountId, source_address: actor.sourceAddress ?? null, redeemed_at: now }).execute();
  const trialEnds = new Date(now.getTime() + found.trial_days * 86_400_000);
  const subscription = await trx
    .insertInto('subscriptions')
    .values({ account_id: accountId, plan: found.plan, status: 'trial', trial_ends_at: trialEnds, created_at: now, updated_at: now })
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendAudit(trx, {
    actor,
    action: 'code.redeem',
    target: { kind: 'account', id: accountId },
    details: { prefix: found.prefix, plan: found.plan, trialEndsAt: trialEnds.toISOString(), use: updated.uses, maxUses: updated.max_uses },
  });
  return { subscription, code: updated };
}

/**
 * Reports whether a subscription allows server actions now: an active
 * subscription, or a trial that has not ended. Past due and cancelled do not.
 */
export function isEntitled(subscription: Pick<Subscription, 'status' | 'trial_ends_at'> | undefined, now: Date = new Date()): boolean {
  if (!subscription) {
    return false;
  }
  if (subscription.status === 'active') {
    return true;
  }
  return subscription.status === 'trial' && subscription.trial_ends_at !== null && subscription.trial_ends_at > now;
}

function randomCode(): string {
  const characters = Array.from({ length: GROUPS * GROUP_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)] as string);
  return Array.from({ length: GROUPS }, (_, group) => characters.slice(group * GROUP_LENGTH, (group + 1) * GROUP_LENGTH).join('')).join('-');
}

/**
 * Normalises a code as a person may type it: upper case, without spaces or
 * hyphens, and with the letters Crockford's base32 reads as digits (O as 0,
 * I and L as 1) replaced.
 */
function normaliseCode(code: string): string {
  return code.toUpperCase().replaceAll(/[\s-]+/g, '').replaceAll('O', '0').replaceAll(/[IL]/g, '1');
}

function hashCode(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

function requireWhole(field: string, value: number, min: number, max: number, unit: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`invalid ${field} ${value}: use a whole number of ${unit} from ${min} to ${max}`);
  }
}
