import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../../core/src/index.js';
import { insertAccount } from '../../../core/test/support/fixtures.js';
import { type FakeGitHub, type FakeGitHubUser } from '../../../../test/support/fake-github.js';
import { httpCall, PORTAL_URL, PortalClient, type PortalProcess, type PortalStack, startPortalStack } from '../../../../test/support/portal.js';

const DAY_MS = 86_400_000;
const SESSION_LIFETIME_MS = 12 * 3600_000;
// VOME_GITHUB_MIN_AGE_DAYS keeps its default of 30 days in this file.
const MIN_AGE_MS = 30 * DAY_MS;
// The portal's clock is moved to this instant, so that ages are exact to the second.
const NOW = new Date('2026-06-01T12:00:00Z');
const CALLBACK_URL = `${PORTAL_URL}/api/auth/callback/github`;
const FAILED_TEXT = 'Sign-in with GitHub did not complete. Please try again.';

let stack: PortalStack;
let db: Db;
let github: FakeGitHub;
let portal: PortalProcess;

function user(overrides: Partial<FakeGitHubUser> & { login: string; id: number }): FakeGitHubUser {
  return {
    name: `Name of ${overrides.login}`,
    email: `${overrides.login}@example.org`,
    createdAt: new Date(NOW.getTime() - 400 * DAY_MS),
    emails: [{ email: `${overrides.login}@example.org`, primary: true, verified: true, visibility: 'public' }],
    ...overrides,
  };
}

async function signInAs(fake: FakeGitHubUser) {
  github.addUser(fake);
  github.signInAs(fake.login);
  const client = new PortalClient(portal);
  const reply = await client.signIn();
  return { client, reply };
}

async function accountCount(): Promise<number> {
  const row = await db.selectFrom('accounts').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

async function sessionCount(): Promise<number> {
  const row = await db.selectFrom('portal_sessions').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

async function rowCounts(): Promise<{ accounts: number; sessions: number }> {
  return { accounts: await accountCount(), sessions: await sessionCount() };
}

function tokenRequestCount(): number {
  return github.requests.filter((request) => request.path === '/login/oauth/access_token').length;
}

/** Reverses React's escaping of text content. */
function decodeHtml(text: string): string {
  return text
    .replace(/&#x27;/g, "'")
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Loads a /signin URL with a client that has no session and returns the text of its alert paragraphs. */
async function signInPageAlerts(location: string): Promise<string[]> {
  const page = await new PortalClient(portal).call(location);
  expect(page.status).toBe(200);
  return [...page.body.matchAll(/<p[^>]*role="alert"[^>]*>([^<]*)<\/p>/g)].map((match) => decodeHtml(match[1]!));
}

beforeAll(async () => {
  stack = await startPortalStack({ VOME_RATE_LIMIT_SIGN_IN: '1000/60s' });
  ({ db, github, portal } = stack);
  await portal.shiftClock(NOW.getTime() - Date.now());
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await portal.shiftClock(NOW.getTime() - Date.now());
});

describe('GitHub sign-in', () => {
  it('signs in a normal account and stores only its facts', async () => {
    const bystander = await insertAccount(db, 'bystander');
    const before = await rowCounts();

    const { client, reply } = await signInAs(user({ login: 'mona', id: 101, name: 'Mona Lisa' }));

    expect(reply.status).toBe(302);
    expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
    expect(client.sessionCookie()).toBeDefined();
    expect(await rowCounts()).toEqual({ accounts: before.accounts + 1, sessions: before.sessions + 1 });

    const account = await db.selectFrom('accounts').selectAll().where('github_id', '=', '101').executeTakeFirstOrThrow();
    expect(account).toEqual({
      id: expect.any(String),
      github_id: '101',
      github_login: 'mona',
      display_name: 'Mona Lisa',
      email: 'mona@example.org',
      github_created_at: new Date(NOW.getTime() - 400 * DAY_MS),
      signin_address: '127.0.0.1',
      session_version: 1,
      created_at: expect.any(Date),
      updated_at: expect.any(Date),
    });
    // Both stamps come from the portal's clock, which starts at NOW.
    expect(account.created_at.getTime()).toBeGreaterThanOrEqual(NOW.getTime());
    expect(account.created_at.getTime()).toBeLessThan(NOW.getTime() + 10_000);
    expect(account.updated_at).toEqual(account.created_at);

    const session = await db.selectFrom('portal_sessions').selectAll().where('account_id', '=', account.id).executeTakeFirstOrThrow();
    expect(session.source_address).toBe('127.0.0.1');
    expect(session.ended_at).toBeNull();
    expect(session.expires_at.getTime() - session.created_at.getTime()).toBe(SESSION_LIFETIME_MS);

    const untouched = await db.selectFrom('accounts').selectAll().where('id', '=', bystander.id).executeTakeFirstOrThrow();
    expect(untouched).toEqual(bystander);

    const dashboard = await client.call('/dashboard');
    expect(dashboard.status).toBe(200);
    expect(dashboard.body).toContain('Your servers');
  });

  it.each([
    { case: 'private profile email', login: 'private-mail', id: 102, profileEmail: null },
    { case: 'public non-primary email', login: 'public-mail', id: 103, profileEmail: 'public-mail@public.example' },
  ])('stores primary email with $case', async ({ login, id, profileEmail }) => {
    const before = await rowCounts();

    const { reply } = await signInAs(
      user({
        login,
        id,
        email: profileEmail,
        emails: [
          { email: `${login}@public.example`, primary: false, verified: true, visibility: 'public' },
          { email: `${login}@primary.example`, primary: true, verified: true, visibility: 'private' },
        ],
      }),
    );

    expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
    expect(await accountCount()).toBe(before.accounts + 1);
    const account = await db.selectFrom('accounts').selectAll().where('github_id', '=', String(id)).executeTakeFirstOrThrow();
    expect(account.email).toBe(`${login}@primary.example`);
  });
});

describe('GitHub sign-in refusals', () => {
  const noVerifiedPrimary =
    'Your GitHub account has no verified primary email address. Verify your primary email on GitHub, then sign in again.';
  const emailsUnreadable =
    'GitHub did not return your email addresses, so we could not check that your primary email is verified. Please try again later.';

  it.each([
    {
      case: 'only unverified emails',
      login: 'unverified',
      id: 201,
      overrides: {
        emails: [
          { email: 'unverified@example.org', primary: true, verified: false, visibility: 'public' as const },
          { email: 'unverified@other.example', primary: false, verified: false, visibility: null },
        ],
      },
      reason: 'no_verified_primary_email',
      text: noVerifiedPrimary,
    },
    {
      case: 'unverified primary email',
      login: 'secondary-only',
      id: 202,
      overrides: {
        emails: [
          { email: 'secondary-only@example.org', primary: true, verified: false, visibility: 'public' as const },
          { email: 'secondary-only@other.example', primary: false, verified: true, visibility: null },
        ],
      },
      reason: 'no_verified_primary_email',
      text: noVerifiedPrimary,
    },
    { case: 'emails status 500', login: 'emails-500', id: 203, overrides: { emailsStatus: 500 }, reason: 'emails_unreadable', text: emailsUnreadable },
    { case: 'emails status 404', login: 'emails-404', id: 204, overrides: { emailsStatus: 404 }, reason: 'emails_unreadable', text: emailsUnreadable },
    {
      case: 'missing creation date',
      login: 'no-created-at',
      id: 205,
      overrides: { createdAt: null },
      reason: 'creation_date_missing',
      text: 'GitHub did not tell us when your account was created, so we could not check its age. Please try again later.',
    },
  ])('refuses $case', async ({ login, id, overrides, reason, text }) => {
    const before = await rowCounts();

    const { client, reply } = await signInAs(user({ login, id, ...overrides }));

    expect(reply.status).toBe(302);
    expect(reply.location).toBe(`${PORTAL_URL}/signin?refused=${reason}`);
    expect(client.sessionCookie()).toBeUndefined();
    expect(await rowCounts()).toEqual(before);
    expect(await signInPageAlerts(reply.location!)).toEqual([text]);
  });

  it('refuses account one second young', async () => {
    const createdAt = new Date(NOW.getTime() - MIN_AGE_MS + 1000);
    const before = await rowCounts();
    await portal.shiftClock(NOW.getTime() - Date.now());

    const { client, reply } = await signInAs(user({ login: 'newcomer', id: 301, createdAt }));

    expect(reply.status).toBe(302);
    const location = new URL(reply.location!);
    expect(`${location.origin}${location.pathname}`).toBe(`${PORTAL_URL}/signin`);
    expect(location.searchParams.get('refused')).toBe('account_too_new');
    expect(location.searchParams.get('eligible')).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    expect(new Date(location.searchParams.get('eligible')!).toISOString()).toBe('2026-06-01T12:00:01.000Z');
    expect(client.sessionCookie()).toBeUndefined();
    expect(await rowCounts()).toEqual(before);
    expect(await signInPageAlerts(reply.location!)).toEqual(['Your GitHub account is too new to sign up. You can sign in from 2026-06-01T12:00:01Z.']);
  });

  it('refuses rename onto a taken login', async () => {
    await signInAs(user({ login: 'rename-bob', id: 9201 }));
    await signInAs(user({ login: 'rename-alice', id: 9202 }));
    const before = await rowCounts();

    const { client, reply } = await signInAs(user({ login: 'rename-bob', id: 9202 }));

    expect(reply.location).toBe(`${PORTAL_URL}/signin?refused=login_taken`);
    expect(client.sessionCookie()).toBeUndefined();
    expect(await rowCounts()).toEqual(before);
  });

  it('shows no date from a crafted link', async () => {
    const crafted = `${PORTAL_URL}/signin?refused=account_too_new&eligible=${encodeURIComponent('2099-12-31T00:00:00.000Z')}&signature=forged`;
    expect(await signInPageAlerts(crafted)).toEqual(['Your GitHub account is too new to sign up.']);
  });

  it.each([
    { case: 'exactly old enough', login: 'just-thirty', id: 302, ageMs: MIN_AGE_MS },
    { case: 'one second over', login: 'thirty-plus', id: 303, ageMs: MIN_AGE_MS + 1000 },
  ])('admits account $case', async ({ login, id, ageMs }) => {
    const createdAt = new Date(NOW.getTime() - ageMs);
    const before = await rowCounts();
    await portal.shiftClock(NOW.getTime() - Date.now());

    const { client, reply } = await signInAs(user({ login, id, createdAt }));

    expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
    expect(client.sessionCookie()).toBeDefined();
    expect(await rowCounts()).toEqual({ accounts: before.accounts + 1, sessions: before.sessions + 1 });
    const account = await db.selectFrom('accounts').selectAll().where('github_id', '=', String(id)).executeTakeFirstOrThrow();
    expect(account.github_created_at).toEqual(createdAt);
  });
});

describe('GitHub sign-in of known accounts', () => {
  it('updates same account on rename', async () => {
    const before = await rowCounts();
    const first = await signInAs(user({ login: 'hubot', id: 401, name: 'Hubot' }));
    expect(first.reply.location).toBe(`${PORTAL_URL}/dashboard`);
    const original = await db.selectFrom('accounts').selectAll().where('github_id', '=', '401').executeTakeFirstOrThrow();

    const second = await signInAs(
      user({
        login: 'hubot-renamed',
        id: 401,
        name: 'Hubot Renamed',
        emails: [{ email: 'hubot@new.example', primary: true, verified: true, visibility: 'private' }],
      }),
    );

    expect(second.reply.location).toBe(`${PORTAL_URL}/dashboard`);
    expect(await rowCounts()).toEqual({ accounts: before.accounts + 1, sessions: before.sessions + 2 });
    const renamed = await db.selectFrom('accounts').selectAll().where('github_id', '=', '401').executeTakeFirstOrThrow();
    expect(renamed.id).toBe(original.id);
    expect(renamed.github_login).toBe('hubot-renamed');
    expect(renamed.display_name).toBe('Hubot Renamed');
    expect(renamed.email).toBe('hubot@new.example');
    expect(renamed.created_at).toEqual(original.created_at);
  });

  it('links admin-added account by login', async () => {
    const added = await insertAccount(db, 'octo');
    expect(added.github_id).toBeNull();
    const before = await rowCounts();

    const { reply } = await signInAs(
      user({
        login: 'octo',
        id: 501,
        name: 'Octo From GitHub',
        emails: [{ email: 'octo@github.example', primary: true, verified: true, visibility: 'public' }],
      }),
    );

    expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
    expect(await rowCounts()).toEqual({ accounts: before.accounts, sessions: before.sessions + 1 });
    const linked = await db.selectFrom('accounts').selectAll().where('id', '=', added.id).executeTakeFirstOrThrow();
    expect(linked.github_id).toBe('501');
    expect(linked.github_login).toBe('octo');
    expect(linked.display_name).toBe('Octo From GitHub');
    expect(linked.email).toBe('octo@github.example');
  });

  it.each([
    { case: 'same case', firstLogin: 'taken', secondLogin: 'taken', firstId: 601, secondId: 602 },
    { case: 'other case', firstLogin: 'claimed', secondLogin: 'CLAIMED', firstId: 603, secondId: 604 },
  ])('refuses login of other id, $case', async ({ firstLogin, secondLogin, firstId, secondId }) => {
    const first = await signInAs(user({ login: firstLogin, id: firstId }));
    expect(first.reply.location).toBe(`${PORTAL_URL}/dashboard`);
    const owner = await db.selectFrom('accounts').selectAll().where('github_id', '=', String(firstId)).executeTakeFirstOrThrow();
    const before = await rowCounts();

    const { client, reply } = await signInAs(user({ login: secondLogin, id: secondId }));

    expect(reply.status).toBe(302);
    expect(reply.location).toBe(`${PORTAL_URL}/signin?refused=login_taken`);
    expect(client.sessionCookie()).toBeUndefined();
    expect(await rowCounts()).toEqual(before);
    const unchanged = await db.selectFrom('accounts').selectAll().where('id', '=', owner.id).executeTakeFirstOrThrow();
    expect(unchanged).toEqual(owner);
    expect(await signInPageAlerts(reply.location!)).toEqual(['Your GitHub login is linked to another GitHub account here. Please contact support.']);
  });
});

describe('GitHub sign-in failures in OAuth', () => {
  it('ends denied authorization at sign-in page', async () => {
    github.addUser(user({ login: 'denier', id: 701 }));
    github.signInAs('denier');
    github.denyNext();
    const before = await rowCounts();
    const tokenRequests = tokenRequestCount();
    const client = new PortalClient(portal);

    const callback = await client.signIn();

    expect(callback.status).toBe(302);
    expect(callback.location).toMatch(new RegExp(`^${PORTAL_URL.replace(/\./g, '\\.')}/api/auth/error\\?error=`));
    const error = await client.call(callback.location!);
    expect(error.status).toBe(303);
    expect(error.location).toBe(`${PORTAL_URL}/signin?error=failed`);
    expect(client.sessionCookie()).toBeUndefined();
    expect(await rowCounts()).toEqual(before);
    expect(tokenRequestCount()).toBe(tokenRequests);
    expect(await signInPageAlerts(error.location!)).toEqual([FAILED_TEXT]);
  });

  it('ends tampered state at sign-in page', async () => {
    github.addUser(user({ login: 'tampered', id: 702 }));
    github.signInAs('tampered');
    const before = await rowCounts();
    const tokenRequests = tokenRequestCount();
    const client = new PortalClient(portal);

    const start = await client.call('/signin/github', { method: 'POST', headers: { origin: PORTAL_URL, accept: 'text/html' } });
    expect(start.status).toBe(302);
    const authorize = await httpCall(start.location!);
    expect(authorize.status).toBe(302);
    const callbackUrl = new URL(authorize.location!);
    const state = callbackUrl.searchParams.get('state')!;
    expect(state).not.toBe('');
    // Changes one character, so that the state no longer matches its cookie.
    const middle = Math.floor(state.length / 2);
    callbackUrl.searchParams.set('state', `${state.slice(0, middle)}${state[middle] === 'A' ? 'B' : 'A'}${state.slice(middle + 1)}`);

    const callback = await client.call(callbackUrl.href);

    expect(callback.status).toBe(302);
    expect(callback.location).toMatch(new RegExp(`^${PORTAL_URL.replace(/\./g, '\\.')}/api/auth/error\\?error=`));
    const error = await client.call(callback.location!);
    expect(error.location).toBe(`${PORTAL_URL}/signin?error=failed`);
    expect(client.sessionCookie()).toBeUndefined();
    expect(await rowCounts()).toEqual(before);
    // The state is checked before the code exchange, so GitHub never saw the code.
    expect(tokenRequestCount()).toBe(tokenRequests);
  });

  it('sends secret, state and scopes', async () => {
    const firstRequest = github.requests.length;

    const { reply } = await signInAs(user({ login: 'requests', id: 801 }));

    expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
    const sent = github.requests.slice(firstRequest);
    const authorize = sent.find((request) => request.path === '/login/oauth/authorize');
    expect(authorize?.method).toBe('GET');
    expect(authorize?.query.client_id).toBe(github.clientId);
    expect(authorize?.query.redirect_uri).toBe(CALLBACK_URL);
    expect(authorize?.query.scope).toBe('read:user user:email');
    expect(authorize?.query.state).toMatch(/^\S{16,}$/);

    const token = sent.find((request) => request.path === '/login/oauth/access_token');
    expect(token?.method).toBe('POST');
    // next-auth sends the client credentials as HTTP Basic. The double records
    // only the scheme, but it issues a token only for the right client secret,
    // and sign-in above succeeded.
    expect(token?.authorization).toBe('Basic');
    expect(token?.body.code).toMatch(/^\S+$/);
  });
});
