import { sql } from 'kysely';
import type { Actor } from '../audit/actor.js';
import { appendAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { Account, PortalSession } from '../db/schema.js';
import { ConflictError } from '../errors/index.js';
import type { GitHubIdentity } from './github-sign-in.js';

/** A portal session ends 12 hours after sign-in, however active it is. */
export const SESSION_LIFETIME_MS = 12 * 60 * 60 * 1000;

/**
 * Records a GitHub sign-in: updates the account with that GitHub id, or
 * links an account an admin added under the same login that has never
 * signed in, or adds a new account. Stores only the fields of
 * `GitHubIdentity` and the sign-in address.
 *
 * @throws ConflictError when the login belongs to an account of another
 *   GitHub id (GitHub lets a freed login be taken again), so that a
 *   renamed GitHub user cannot inherit another person's account.
 */
export async function recordGitHubSignIn(db: Db, identity: GitHubIdentity, sourceAddress: string | null, now: Date): Promise<Account> {
  return recordSignIn(db, identity, sourceAddress, now).catch((error: unknown) => {
    // A user who renamed on GitHub to a login another account row still has
    // hits the unique index on the login.
    if ((error as { code?: string }).code === '23505') {
      throw new ConflictError(`the login "${identity.login}" belongs to another account in vome`, {
        hints: ['ask support to rename the older account'],
        cause: error,
      });
    }
    throw error;
  });
}

async function recordSignIn(db: Db, identity: GitHubIdentity, sourceAddress: string | null, now: Date): Promise<Account> {
  return db.transaction().execute(async (trx) => {
    const fields = {
      github_login: identity.login,
      display_name: identity.displayName,
      email: identity.email,
      github_created_at: identity.githubCreatedAt,
      signin_address: sourceAddress,
      updated_at: now,
    };
    // Serialises sign-ins of one login, so two first sign-ins cannot both insert.
    await sql`SELECT pg_advisory_xact_lock(hashtext(${`signin:${identity.login.toLowerCase()}`}))`.execute(trx);

    let account = await trx.updateTable('accounts').set(fields).where('github_id', '=', String(identity.githubId)).returningAll().executeTakeFirst();
    let action = 'account.sign-in';
    if (!account) {
      const byLogin = await trx
        .selectFrom('accounts')
        .selectAll()
        .where((eb) => eb(eb.fn('lower', ['github_login']), '=', identity.login.toLowerCase()))
        .executeTakeFirst();
      if (byLogin && byLogin.github_id !== null) {
        throw new ConflictError(`the login "${identity.login}" belongs to another GitHub account in vome`, {
          hints: ['ask support to rename the older account'],
        });
      }
      if (byLogin) {
        account = await trx
          .updateTable('accounts')
          .set({ ...fields, github_id: String(identity.githubId) })
          .where('id', '=', byLogin.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        action = 'account.link-github';
      } else {
        account = await trx
          .insertInto('accounts')
          .values({ ...fields, github_id: String(identity.githubId), created_at: now })
          .returningAll()
          .executeTakeFirstOrThrow();
        action = 'account.sign-up';
      }
    }
    await appendAudit(trx, {
      actor: { kind: 'customer', id: account.id, ...(sourceAddress ? { sourceAddress } : {}) },
      action,
      target: { kind: 'account', id: account.id },
      details: { githubId: identity.githubId, login: identity.login },
    });
    return account;
  });
}

/** Starts a session for an account; it expires `SESSION_LIFETIME_MS` after `now`. */
export async function startPortalSession(db: Db, account: Pick<Account, 'id' | 'session_version'>, sourceAddress: string | null, now: Date): Promise<PortalSession> {
  return db
    .insertInto('portal_sessions')
    .values({
      account_id: account.id,
      session_version: account.session_version,
      source_address: sourceAddress,
      created_at: now,
      expires_at: new Date(now.getTime() + SESSION_LIFETIME_MS),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Returns a session and its account when the session is live at `now`: not
 * ended, not expired, and of the account's current session version.
 * Returns undefined otherwise, including for an id that is not a UUID.
 */
export async function findLivePortalSession(db: Db, sessionId: string, now: Date): Promise<{ session: PortalSession; account: Account } | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(sessionId)) {
    return undefined;
  }
  const session = await db.selectFrom('portal_sessions').selectAll().where('id', '=', sessionId).executeTakeFirst();
  if (!session || session.ended_at !== null || session.expires_at <= now) {
    return undefined;
  }
  const account = await db.selectFrom('accounts').selectAll().where('id', '=', session.account_id).executeTakeFirst();
  if (!account || account.session_version !== session.session_version) {
    return undefined;
  }
  return { session, account };
}

/** Ends one session of an account. Ending an ended session changes nothing. */
export async function endPortalSession(db: Db, accountId: string, sessionId: string, now: Date): Promise<void> {
  await db.updateTable('portal_sessions').set({ ended_at: now }).where('id', '=', sessionId).where('account_id', '=', accountId).where('ended_at', 'is', null).execute();
}

/**
 * Ends every session of an account by raising its session version, so a
 * session token issued before cannot come back, and audits it.
 *
 * @returns how many live sessions were ended.
 */
export async function endEveryPortalSession(db: Db, actor: Actor, accountId: string, now: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await trx.updateTable('accounts').set({ session_version: sql`session_version + 1`, updated_at: now }).where('id', '=', accountId).execute();
    const ended = await trx
      .updateTable('portal_sessions')
      .set({ ended_at: now })
      .where('account_id', '=', accountId)
      .where('ended_at', 'is', null)
      .where('expires_at', '>', now)
      .returning('id')
      .execute();
    await appendAudit(trx, { actor, action: 'account.sign-out-everywhere', target: { kind: 'account', id: accountId }, details: { sessions: ended.length } });
    return ended.length;
  });
}

/** Lists an account's live sessions, newest first. */
export async function listLivePortalSessions(db: Db, account: Pick<Account, 'id' | 'session_version'>, now: Date): Promise<PortalSession[]> {
  return db
    .selectFrom('portal_sessions')
    .selectAll()
    .where('account_id', '=', account.id)
    .where('ended_at', 'is', null)
    .where('expires_at', '>', now)
    .where('session_version', '=', account.session_version)
    .orderBy('created_at', 'desc')
    .execute();
}
