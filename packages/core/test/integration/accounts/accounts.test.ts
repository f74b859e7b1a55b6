import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAccount, getAccount, listAccounts } from '../../../src/accounts/accounts.js';
import { ConflictError, InvalidInputError, NotFoundError } from '../../../src/errors/index.js';
import { ADMIN, auditCount, rejection, warmPool } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

const OCTOCAT = { githubLogin: 'octocat', displayName: 'The Octocat', email: 'octocat@example.org' };

const LOGIN_RULE = 'must be a GitHub login: 1–39 letters, digits or single hyphens, not starting or ending with a hyphen';
const EMAIL_RULE = 'must be an email address such as name@example.org';
const badLogin = (login: string) => `GitHub login "${login}" ${LOGIN_RULE}`;
const badEmail = (email: string) => `email "${email}" ${EMAIL_RULE}`;

describe('addAccount', () => {
  it('adds an account', async () => {
    const db = await database.fresh();
    const account = await addAccount(db, ADMIN, OCTOCAT);
    expect(account).toMatchObject({ github_login: 'octocat', display_name: 'The Octocat', email: 'octocat@example.org' });
    expect(account.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await listAccounts(db)).toEqual([account]);
  });

  it('trims the display name', async () => {
    const db = await database.fresh();
    expect((await addAccount(db, ADMIN, { ...OCTOCAT, displayName: '  The Octocat ' })).display_name).toBe('The Octocat');
  });

  it('writes one audit event per account', async () => {
    const db = await database.fresh();
    const first = await addAccount(db, ADMIN, OCTOCAT);
    const second = await addAccount(db, { ...ADMIN, sourceAddress: '192.0.2.7' }, { ...OCTOCAT, githubLogin: 'hubot' });

    const events = await db.selectFrom('audit_events').selectAll().orderBy('id').execute();
    expect(events.map((event) => [event.actor_kind, event.actor_id, event.action, event.target_kind, event.target_id, event.source_address, event.details])).toEqual([
      ['admin', 'alice', 'account.add', 'account', first.id, null, { githubLogin: 'octocat' }],
      ['admin', 'alice', 'account.add', 'account', second.id, '192.0.2.7', { githubLogin: 'hubot' }],
    ]);
  });

  it.each(['octocat', 'OctoCat', 'OCTOCAT'])('rejects the taken login %s', async (login) => {
    const db = await database.fresh();
    await addAccount(db, ADMIN, OCTOCAT);

    const error = await rejection(addAccount(db, ADMIN, { ...OCTOCAT, githubLogin: login }));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe(`an account for GitHub login "${login}" already exists`);
    expect((error as ConflictError).hints).toEqual([`run \`vome account show ${login}\``]);

    expect(await listAccounts(db)).toHaveLength(1);
    expect(await auditCount(db)).toBe(1);
  });

  it.each([1, 2, 3])('adds one account when ten requests race for one login (round %d)', async (round) => {
    const db = await database.fresh();
    await warmPool(db);
    const logins = ['octocat', 'OctoCat', 'OCTOCAT', 'octoCAT', 'Octocat', 'octocaT', 'OCTOcat', 'oCtOcAt', 'OcToCaT', 'octOcat'].map((login) => `${login}${round}`);

    const outcomes = await Promise.allSettled(logins.map((githubLogin) => addAccount(db, ADMIN, { ...OCTOCAT, githubLogin })));

    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    for (const [index, outcome] of outcomes.entries()) {
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(ConflictError);
        expect((outcome.reason as Error).message).toBe(`an account for GitHub login "${logins[index]}" already exists`);
      }
    }
    expect(await listAccounts(db)).toHaveLength(1);
    expect(await auditCount(db)).toBe(1);
  });

  it.each([
    ['a login starting with a hyphen', { githubLogin: '-octocat' }, badLogin('-octocat')],
    ['a login ending with a hyphen', { githubLogin: 'octocat-' }, badLogin('octocat-')],
    ['a login with two hyphens in a row', { githubLogin: 'octo--cat' }, badLogin('octo--cat')],
    ['a login with an underscore', { githubLogin: 'octo_cat' }, badLogin('octo_cat')],
    ['a login of 40 characters', { githubLogin: 'a'.repeat(40) }, badLogin('a'.repeat(40))],
    ['an empty login', { githubLogin: '' }, badLogin('')],
    ['an email without a domain', { email: 'octocat' }, badEmail('octocat')],
    ['an email with a space', { email: 'octo cat@example.org' }, badEmail('octo cat@example.org')],
    ['an empty display name', { displayName: '   ' }, 'display name "   " must not be empty'],
    ['a display name of 201 characters', { displayName: 'x'.repeat(201) }, `display name "${'x'.repeat(201)}" must be at most 200 characters`],
    ['a bad login and a bad email', { githubLogin: 'octo_cat', email: 'octocat' }, `${badLogin('octo_cat')}; ${badEmail('octocat')}`],
  ])('rejects %s and records nothing', async (_case, change, problems) => {
    const db = await database.fresh();

    const error = await rejection(addAccount(db, ADMIN, { ...OCTOCAT, ...change }));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(`invalid account: ${problems}`);

    expect(await listAccounts(db)).toEqual([]);
    expect(await auditCount(db)).toBe(0);
  });

  it('accepts a login of 39 characters with single hyphens', async () => {
    const db = await database.fresh();
    const login = `a-b${'c'.repeat(36)}`;
    expect((await addAccount(db, ADMIN, { ...OCTOCAT, githubLogin: login })).github_login).toBe(login);
  });
});

describe('getAccount', () => {
  it('finds an account by login in any case and by id', async () => {
    const db = await database.fresh();
    const account = await addAccount(db, ADMIN, OCTOCAT);
    expect(await getAccount(db, 'OCTOCAT')).toEqual(account);
    expect(await getAccount(db, account.id)).toEqual(account);
  });

  it('reports a missing account', async () => {
    const db = await database.fresh();
    const error = await rejection(getAccount(db, 'nobody'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe('account "nobody" not found');
    expect((error as NotFoundError).code).toBe('account_not_found');
  });
});
