import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../../core/src/index.js';
import { TestDatabase } from '../../../core/test/support/test-database.js';
import { type FakeGitHub, type FakeGitHubUser, startFakeGitHub } from '../../../../test/support/fake-github.js';
import { ensurePortalBuilt, PORTAL_URL, PortalClient, type PortalProcess, startPortal } from '../../../../test/support/portal.js';

const DAY_MS = 86_400_000;
// The portal's clock is moved to this instant, so that ages are exact to the second.
const NOW = new Date('2026-06-01T12:00:00Z');

const database = new TestDatabase();
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

beforeAll(async () => {
  await ensurePortalBuilt();
  await database.start();
  const fresh = await database.freshWithUrl();
  db = fresh.db;
  github = await startFakeGitHub({ allowedRedirectPrefix: `${PORTAL_URL}/api/auth/callback/github` });
  portal = await startPortal({
    DATABASE_URL: fresh.url,
    GITHUB_CLIENT_ID: github.clientId,
    GITHUB_CLIENT_SECRET: github.clientSecret,
    VOME_GITHUB_URL: github.webUrl,
    VOME_GITHUB_API_URL: github.apiUrl,
    VOME_RATE_LIMIT_SIGN_IN: '1000/60s',
  });
  await portal.shiftClock(NOW.getTime() - Date.now());
});

afterAll(async () => {
  await portal?.stop();
  await github?.close();
  await database.stop();
});

beforeEach(async () => {
  await portal.shiftClock(NOW.getTime() - Date.now());
});

describe('GitHub sign-in', () => {
  it('signs in a normal account and stores only its facts', async () => {
    const { client, reply } = await signInAs(user({ login: 'mona', id: 101, name: 'Mona Lisa' }));
    expect(reply.status).toBe(302);
    expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
    expect(client.sessionCookie()).toBeDefined();
    const account = await db.selectFrom('accounts').selectAll().where('github_id', '=', '101').executeTakeFirstOrThrow();
    expect(account.github_login).toBe('mona');
    expect(account.display_name).toBe('Mona Lisa');
    expect(account.email).toBe('mona@example.org');
    expect(account.github_created_at?.toISOString()).toBe(new Date(NOW.getTime() - 400 * DAY_MS).toISOString());
    expect(account.signin_address).toBe('127.0.0.1');
    const dashboard = await client.call('/dashboard');
    expect(dashboard.status).toBe(200);
    expect(dashboard.body).toContain('Your servers');
  });
});
