import { sql } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../audit/actor.js';
import { withAudit } from '../audit/audit-log.js';
import type { Db } from '../db/connection.js';
import type { Account } from '../db/schema.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors/index.js';

// Control characters and bidirectional overrides can rewrite what a terminal
// or a page shows an operator.
const UNPRINTABLE = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

// GitHub logins: up to 39 characters, alphanumerics and single inner hyphens.
const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;

const newAccountSchema = z.object({
  githubLogin: z.string().regex(GITHUB_LOGIN, 'must be a GitHub login: 1–39 letters, digits or single hyphens, not starting or ending with a hyphen'),
  displayName: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(200, 'must be at most 200 characters')
    .refine((value) => !UNPRINTABLE.test(value), 'must not contain control or text-direction characters'),
  email: z.email('must be an email address such as name@example.org').max(320),
});

export type NewAccount = z.input<typeof newAccountSchema>;

/** The words an operator knows each field by, for error messages. */
const ACCOUNT_FIELD_NAMES: Record<keyof NewAccount, string> = {
  githubLogin: 'GitHub login',
  displayName: 'display name',
  email: 'email',
};

/**
 * Adds a customer account and audits it.
 *
 * @throws InvalidInputError for a malformed login, name or email.
 * @throws ConflictError when the GitHub login is taken.
 */
export async function addAccount(db: Db, actor: Actor, input: NewAccount): Promise<Account> {
  const parsed = newAccountSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const field = String(issue.path[0]) as keyof NewAccount;
      return `${ACCOUNT_FIELD_NAMES[field]} "${String(input[field] ?? '')}" ${issue.message}`;
    });
    throw new InvalidInputError(`invalid account: ${problems.join('; ')}`, { fields: { account: input.githubLogin } });
  }
  const values = parsed.data;

  return withAudit(db, async (trx) => {
    // ON CONFLICT rather than a lookup first: two requests for one login can
    // both find it free, and the unique index on lower(github_login) decides.
    const account = await trx
      .insertInto('accounts')
      .values({ github_login: values.githubLogin, display_name: values.displayName, email: values.email })
      .onConflict((conflict) => conflict.expression(sql`lower(github_login)`).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!account) {
      throw new ConflictError(`an account for GitHub login "${values.githubLogin}" already exists`, {
        hints: [`run \`vome account show ${values.githubLogin}\``],
      });
    }
    return {
      result: account,
      audit: { actor, action: 'account.add', target: { kind: 'account', id: account.id }, details: { githubLogin: account.github_login } },
    };
  });
}

/** Lists accounts by GitHub login. */
export async function listAccounts(db: Db): Promise<Account[]> {
  return db.selectFrom('accounts').selectAll().orderBy('github_login').execute();
}

/**
 * Finds an account by GitHub login (any case) or id.
 *
 * @throws NotFoundError when there is none.
 */
export async function getAccount(db: Db, loginOrId: string): Promise<Account> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(loginOrId);
  // A GitHub login may itself look like a UUID. The id is tried first, so
  // a login chosen to equal an account's id cannot take over lookups of it.
  const byId = isUuid ? await db.selectFrom('accounts').selectAll().where('id', '=', loginOrId).executeTakeFirst() : undefined;
  const account =
    byId ??
    (await db
      .selectFrom('accounts')
      .selectAll()
      .where((eb) => eb(eb.fn('lower', ['github_login']), '=', loginOrId.toLowerCase()))
      .executeTakeFirst());
  if (!account) {
    throw new NotFoundError('account', loginOrId, { hints: ['run `vome account list`, or add it with `vome account add`'] });
  }
  return account;
}
