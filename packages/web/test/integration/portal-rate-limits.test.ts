import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedemptionCode, csrfTokenFor, type Db } from '../../../core/src/index.js';
import { ADMIN } from '../../../core/test/support/fixtures.js';
import { type FakeGitHub } from '../../../../test/support/fake-github.js';
import { gitHubSettings, httpCall, type HttpReply, PORTAL_URL, PortalClient, type PortalProcess, type PortalStack, SESSION_SECRET, startPortal, startPortalStack } from '../../../../test/support/portal.js';

const DAY_MS = 86_400_000;
const SIGN_IN_LIMIT = 5;
const API_LIMIT = 8;
const REDEEM_LIMIT = 3;
// Only this peer is the edge proxy. Every other loopback address (127.0.0.2 to
// 127.0.0.250) acts as a client that connects directly. Each test uses its own
// addresses, so that no test spends another's budget.
const PROXY_ADDRESS = '127.0.0.1';

let stack: PortalStack;
let db: Db;
let github: FakeGitHub;
let portal: PortalProcess;
let nextGitHubId = 500;

/** The portal settings of this file: small limits and one trusted proxy. */
const LIMITS = {
  VOME_RATE_LIMIT_SIGN_IN: `${SIGN_IN_LIMIT}/60s`,
  VOME_RATE_LIMIT_API: `${API_LIMIT}/60s`,
  VOME_RATE_LIMIT_REDEEM: `${REDEEM_LIMIT}/300s`,
  VOME_TRUSTED_PROXIES: PROXY_ADDRESS,
};

/** Posts the sign-in form as a browser would, from `localAddress`, optionally with an X-Forwarded-For header. */
function startSignIn(target: PortalProcess, localAddress: string, forwardedFor?: string): Promise<HttpReply> {
  const headers: Record<string, string> = { origin: PORTAL_URL, accept: 'text/html' };
  if (forwardedFor !== undefined) {
    headers['x-forwarded-for'] = forwardedFor;
  }
  return httpCall(`${target.localUrl}/signin/github`, { method: 'POST', headers, localAddress });
}

function statusCounts(replies: HttpReply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const reply of replies) {
    counts[reply.status] = (counts[reply.status] ?? 0) + 1;
  }
  return counts;
}

/** Checks that a reply is a 429 whose Retry-After is whole seconds within the window. */
function expectRateLimited(reply: HttpReply, windowSeconds: number): void {
  expect(reply.status).toBe(429);
  const retryAfter = reply.headers['retry-after'];
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(windowSeconds);
}

/** Signs a new GitHub user in from `localAddress` and returns the signed-in client with its account id. */
async function signInCustomer(login: string, localAddress: string): Promise<{ client: PortalClient; accountId: string }> {
  github.addUser({
    id: nextGitHubId++,
    login,
    name: null,
    email: null,
    createdAt: new Date(Date.now() - 400 * DAY_MS),
    emails: [{ email: `${login}@example.org`, primary: true, verified: true, visibility: 'private' }],
  });
  github.signInAs(login);
  const client = new PortalClient(portal, localAddress);
  const reply = await client.signIn();
  if (reply.location !== `${PORTAL_URL}/dashboard`) {
    throw new Error(`${login} could not sign in: ${reply.status} ${reply.location ?? ''} ${reply.body.slice(0, 300)}`);
  }
  const account = await db.selectFrom('accounts').select('id').where('github_login', '=', login).executeTakeFirstOrThrow();
  return { client, accountId: account.id };
}

/** Returns a client with the same cookies that connects from another address. */
function fromAddress(client: PortalClient, localAddress: string): PortalClient {
  const moved = new PortalClient(portal, localAddress);
  for (const [name, value] of client.jar.cookies) {
    moved.jar.cookies.set(name, value);
  }
  return moved;
}

async function csrfTokenOf(accountId: string): Promise<string> {
  const session = await db.selectFrom('portal_sessions').select('id').where('account_id', '=', accountId).where('ended_at', 'is', null).executeTakeFirstOrThrow();
  return csrfTokenFor(SESSION_SECRET, session.id);
}

beforeAll(async () => {
  stack = await startPortalStack(LIMITS);
  ({ db, github, portal } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

describe('sign-in rate limit', () => {
  it('caps a burst at the limit', async () => {
    const replies = await Promise.all(Array.from({ length: SIGN_IN_LIMIT + 5 }, () => startSignIn(portal, '127.0.0.21')));

    expect(statusCounts(replies)).toEqual({ 302: SIGN_IN_LIMIT, 429: 5 });
    for (const reply of replies.filter((each) => each.status === 302)) {
      expect(reply.location?.startsWith(`${github.webUrl}/login/oauth/authorize?`)).toBe(true);
    }
    for (const reply of replies.filter((each) => each.status === 429)) {
      expectRateLimited(reply, 60);
    }

    // Each request claims to forward another client, but 127.0.0.21 is no trusted proxy.
    for (let last = 1; last <= 5; last += 1) {
      expectRateLimited(await startSignIn(portal, '127.0.0.21', `203.0.113.${last}`), 60);
    }

    const other = await startSignIn(portal, '127.0.0.22');
    expect(other.status).toBe(302);
  });

  it('keys proxied requests on X-Forwarded-For', async () => {
    for (let attempt = 1; attempt <= SIGN_IN_LIMIT; attempt += 1) {
      expect((await startSignIn(portal, PROXY_ADDRESS, '198.51.100.1')).status).toBe(302);
    }
    expectRateLimited(await startSignIn(portal, PROXY_ADDRESS, '198.51.100.1'), 60);

    expect((await startSignIn(portal, PROXY_ADDRESS, '198.51.100.2')).status).toBe(302);
  });

  it('ignores client-written X-Forwarded-For entries', async () => {
    // The proxy appends the address it saw (10.9.9.9) to what the client sent.
    for (let last = 1; last <= SIGN_IN_LIMIT; last += 1) {
      expect((await startSignIn(portal, PROXY_ADDRESS, `1.2.3.${last}, 10.9.9.9`)).status).toBe(302);
    }
    expectRateLimited(await startSignIn(portal, PROXY_ADDRESS, '1.2.3.4, 10.9.9.9'), 60);
    expectRateLimited(await startSignIn(portal, PROXY_ADDRESS, '10.9.9.9'), 60);

    // No request was counted against 1.2.3.4.
    expect((await startSignIn(portal, PROXY_ADDRESS, '1.2.3.4')).status).toBe(302);
  });
});

describe('API rate limit', () => {
  it('keys signed-in requests on the account', async () => {
    const { client: rotating } = await signInCustomer('api-rotating', '127.0.0.30');
    const addresses = Array.from({ length: API_LIMIT + 1 }, (_, index) => `127.0.0.${31 + index}`);

    for (const address of addresses.slice(0, API_LIMIT)) {
      const reply = await fromAddress(rotating, address).call('/api/servers', { headers: { accept: 'application/json' } });
      expect(reply.status).toBe(200);
    }
    const limited = await fromAddress(rotating, addresses[API_LIMIT]!).call('/api/servers', { headers: { accept: 'application/json' } });
    expectRateLimited(limited, 60);
    expect(limited.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(limited.body)).toEqual({ error: { code: 'rate_limited', message: `Too many requests. Try again in ${limited.headers['retry-after']} seconds.` } });

    // Each of those addresses has spent one request of its own budget only.
    const { client: other } = await signInCustomer('api-other', '127.0.0.40');
    const reply = await fromAddress(other, addresses[0]!).call('/api/servers', { headers: { accept: 'application/json' } });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ servers: [] });
  });
});

describe('redemption rate limit', () => {
  it('rejects the fourth attempt and changes nothing', async () => {
    const { code } = await createRedemptionCode(db, ADMIN, { plan: 'household', trialDays: 14, maxUses: 5, expiresAt: new Date(Date.now() + 30 * DAY_MS) });
    const { client: guesser, accountId: guesserId } = await signInCustomer('redeem-guesser', '127.0.0.50');
    const guesserCsrf = await csrfTokenOf(guesserId);
    const fromFirst = fromAddress(guesser, '127.0.0.51');

    for (let attempt = 1; attempt <= REDEEM_LIMIT; attempt += 1) {
      const wrong = await fromFirst.post('/codes/redeem', { csrf: guesserCsrf, code: `WRONG-CODE0-00000-0000${attempt}` });
      expect(wrong.status).toBe(400);
    }
    expectRateLimited(await fromFirst.post('/codes/redeem', { csrf: guesserCsrf, code: 'WRONG-CODE0-00000-00004' }), 300);

    // The valid code is rejected too, from the same address and from a new one (the account's budget is spent).
    const limitedValid = await fromFirst.post('/codes/redeem', { csrf: guesserCsrf, code });
    expectRateLimited(limitedValid, 300);
    expect(limitedValid.headers['cache-control']).toBe('no-store');
    expectRateLimited(await fromAddress(guesser, '127.0.0.52').post('/codes/redeem', { csrf: guesserCsrf, code }), 300);

    // Another account on the spent address is limited by the address.
    const { client: neighbour, accountId: neighbourId } = await signInCustomer('redeem-neighbour', '127.0.0.55');
    const neighbourCsrf = await csrfTokenOf(neighbourId);
    expectRateLimited(await fromAddress(neighbour, '127.0.0.51').post('/codes/redeem', { csrf: neighbourCsrf, code }), 300);

    const codeRow = await db.selectFrom('redemption_codes').select('uses').executeTakeFirstOrThrow();
    expect(codeRow.uses).toBe(0);
    expect(await db.selectFrom('code_redemptions').selectAll().execute()).toEqual([]);
    expect(await db.selectFrom('subscriptions').selectAll().execute()).toEqual([]);
    expect(await db.selectFrom('portal_requests').selectAll().execute()).toEqual([]);

    // The code was valid all along: from a fresh address the neighbour redeems it.
    const redeemed = await fromAddress(neighbour, '127.0.0.56').post('/codes/redeem', { csrf: neighbourCsrf, code });
    expect(redeemed.status).toBe(201);
    const requests = await db.selectFrom('portal_requests').select(['account_id', 'kind']).execute();
    expect(requests).toEqual([{ account_id: neighbourId, kind: 'create' }]);
  });
});

describe('rate limits across processes', () => {
  let second: PortalProcess;

  beforeAll(async () => {
    second = await startPortal({ DATABASE_URL: stack.databaseUrl, ...gitHubSettings(github), ...LIMITS });
  });

  afterAll(async () => {
    await second?.stop();
  });

  it('shares counts between two portals', async () => {
    const burst = Array.from({ length: SIGN_IN_LIMIT * 2 }, (_, index) => startSignIn(index % 2 === 0 ? portal : second, '127.0.0.70'));
    const replies = await Promise.all(burst);

    // Counted apart, each portal would let 5 through.
    expect(statusCounts(replies)).toEqual({ 302: SIGN_IN_LIMIT, 429: SIGN_IN_LIMIT });
    expectRateLimited(await startSignIn(second, '127.0.0.70'), 60);
    expectRateLimited(await startSignIn(portal, '127.0.0.70'), 60);
  });
});
