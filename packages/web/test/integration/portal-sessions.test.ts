import { randomUUID } from 'node:crypto';
import { decode, encode } from 'next-auth/jwt';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Db } from '../../../core/src/index.js';
import { type FakeGitHub } from '../../../../test/support/fake-github.js';
import { httpCall, PORTAL_URL, PortalClient, type PortalProcess, type PortalStack, SESSION_COOKIE, SESSION_SECRET, startPortalStack } from '../../../../test/support/portal.js';

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
// The portal's clock is moved to this instant before each test, so that session ages are exact.
const NOW = new Date('2026-06-01T12:00:00Z');
const STATE_COOKIE = '__Host-next-auth.state';
const CSRF_COOKIE = '__Host-next-auth.csrf-token';

let stack: PortalStack;
let db: Db;
let github: FakeGitHub;
let portal: PortalProcess;
let nextGitHubId = 1000;

/** A Set-Cookie line split into its name, value and attributes (attribute names in lower case). */
interface SetCookie {
  name: string;
  value: string;
  attributes: Map<string, string | true>;
}

function parseSetCookie(line: string): SetCookie {
  const [pair = '', ...parts] = line.split(';');
  const separator = pair.indexOf('=');
  const attributes = new Map<string, string | true>();
  for (const part of parts) {
    const [name = '', ...value] = part.trim().split('=');
    attributes.set(name.toLowerCase(), value.length === 0 ? true : value.join('='));
  }
  return { name: pair.slice(0, separator).trim(), value: pair.slice(separator + 1).trim(), attributes };
}

function findSetCookie(setCookies: string[], name: string): SetCookie | undefined {
  return setCookies.map(parseSetCookie).find((cookie) => cookie.name === name);
}

/** Adds a GitHub user of a fresh id and signs it in through the whole OAuth flow from `localAddress`. */
async function signIn(login: string, localAddress?: string): Promise<PortalClient> {
  github.addUser({
    id: nextGitHubId++,
    login,
    name: `Name of ${login}`,
    email: `${login}@example.org`,
    createdAt: new Date(NOW.getTime() - 400 * DAY_MS),
    emails: [{ email: `${login}@example.org`, primary: true, verified: true, visibility: 'public' }],
  });
  return signInAgain(login, localAddress);
}

/** Signs in a GitHub user added before, as a new browser. */
async function signInAgain(login: string, localAddress?: string): Promise<PortalClient> {
  github.signInAs(login);
  const client = new PortalClient(portal, localAddress);
  const reply = await client.signIn();
  expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
  expect(client.sessionCookie()).toBeDefined();
  return client;
}

/** Returns the status of GET /api/servers sent with only this session cookie value, or with none. */
async function probe(sessionCookie: string | undefined): Promise<number> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (sessionCookie !== undefined) {
    headers.cookie = `${SESSION_COOKIE}=${sessionCookie}`;
  }
  const reply = await httpCall(`${portal.localUrl}/api/servers`, { headers });
  return reply.status;
}

/** Returns the session id inside a session cookie issued by the portal. */
async function sessionIdOf(sessionCookie: string): Promise<string> {
  // The token's expiry is on the portal's clock, so decoding reads the time as NOW.
  vi.useFakeTimers({ toFake: ['Date'], now: NOW });
  let token: Awaited<ReturnType<typeof decode>>;
  try {
    token = await decode({ token: sessionCookie, secret: SESSION_SECRET });
  } finally {
    vi.useRealTimers();
  }
  expect(token?.sid).toMatch(/^[0-9a-f-]{36}$/);
  return token!.sid as string;
}

/** Loads the account page and returns its HTML and the CSRF token of its forms. */
async function accountPage(client: PortalClient): Promise<{ body: string; csrf: string }> {
  const page = await client.call('/account');
  expect(page.status).toBe(200);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  expect(csrf).toBeDefined();
  return { body: page.body, csrf: csrf! };
}

async function endedAtOf(sessionId: string): Promise<Date | null> {
  const row = await db.selectFrom('portal_sessions').select('ended_at').where('id', '=', sessionId).executeTakeFirstOrThrow();
  return row.ended_at;
}

/** Changes one character in the middle of a text. */
function changeOneCharacter(text: string): string {
  const middle = Math.floor(text.length / 2);
  return `${text.slice(0, middle)}${text[middle] === 'A' ? 'B' : 'A'}${text.slice(middle + 1)}`;
}

beforeAll(async () => {
  stack = await startPortalStack({ VOME_RATE_LIMIT_SIGN_IN: '1000/60s', VOME_RATE_LIMIT_API: '1000/60s' });
  ({ db, github, portal } = stack);
  await portal.shiftClock(NOW.getTime() - Date.now());
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await portal.shiftClock(NOW.getTime() - Date.now());
});

describe('portal session cookies', () => {
  let startCookies: string[];
  let callbackCookies: string[];

  beforeAll(async () => {
    github.addUser({
      id: nextGitHubId++,
      login: 'cookie-flags',
      name: null,
      email: null,
      createdAt: new Date(NOW.getTime() - 400 * DAY_MS),
      emails: [{ email: 'cookie-flags@example.org', primary: true, verified: true, visibility: 'private' }],
    });
    github.signInAs('cookie-flags');
    const client = new PortalClient(portal);
    const start = await client.call('/signin/github', { method: 'POST', headers: { origin: PORTAL_URL, accept: 'text/html' } });
    expect(start.status).toBe(302);
    const authorize = await httpCall(start.location!);
    expect(authorize.status).toBe(302);
    const callback = await client.call(authorize.location!);
    expect(callback.location).toBe(`${PORTAL_URL}/dashboard`);
    startCookies = start.setCookies;
    callbackCookies = callback.setCookies;
  });

  it('names session cookie with __Host-', () => {
    expect(SESSION_COOKIE).toBe('__Host-next-auth.session-token');
    expect(findSetCookie(callbackCookies, SESSION_COOKIE)?.value).toMatch(/^\S{100,}$/);
  });

  it.each([
    { cookie: SESSION_COOKIE, from: 'callback' },
    { cookie: STATE_COOKIE, from: 'start' },
  ])('sets $cookie without Domain', ({ cookie, from }) => {
    const found = findSetCookie(from === 'start' ? startCookies : callbackCookies, cookie);
    expect(found).toBeDefined();
    expect(found?.attributes.has('domain')).toBe(false);
  });

  it.each([
    { attribute: 'httponly', expected: true },
    { attribute: 'secure', expected: true },
    { attribute: 'samesite', expected: 'Lax' },
    { attribute: 'path', expected: '/' },
  ])('sets session cookie $attribute', ({ attribute, expected }) => {
    const cookie = findSetCookie(callbackCookies, SESSION_COOKIE);
    expect(cookie?.attributes.get(attribute)).toBe(expected);
  });

  it.each([
    { cookie: STATE_COOKIE, attribute: 'secure' },
    { cookie: STATE_COOKIE, attribute: 'httponly' },
    { cookie: CSRF_COOKIE, attribute: 'secure' },
    { cookie: CSRF_COOKIE, attribute: 'httponly' },
  ])('sets $cookie $attribute', ({ cookie, attribute }) => {
    const found = findSetCookie(startCookies, cookie);
    expect(found).toBeDefined();
    expect(found?.attributes.get(attribute)).toBe(true);
  });
});

describe('portal duplicate session cookies', () => {
  it('trusts neither of two session cookies', async () => {
    const first = await signIn('duplicate-first');
    const second = await signIn('duplicate-second');
    expect(await probe(first.sessionCookie())).toBe(200);
    const reply = await httpCall(`${portal.localUrl}/api/servers`, {
      headers: { accept: 'application/json', cookie: `${SESSION_COOKIE}=${first.sessionCookie()}; ${SESSION_COOKIE}=${second.sessionCookie()}` },
    });
    expect(reply.status).toBe(401);
  });
});

describe('portal session lifetime', () => {
  it.each([
    { age: '11 h 59 min', ageMs: 11 * HOUR_MS + 59 * MINUTE_MS, status: 200 },
    { age: '12 h 01 min', ageMs: 12 * HOUR_MS + 1 * MINUTE_MS, status: 401 },
  ])('answers $status at $age', async ({ ageMs, status }) => {
    const client = await signIn(`lifetime-${status}`);
    expect(await probe(client.sessionCookie())).toBe(200);

    await portal.shiftClock(NOW.getTime() + ageMs - Date.now());

    expect(await probe(client.sessionCookie())).toBe(status);
  });
});

describe('portal sign-out everywhere', () => {
  it('lists live sessions on account page', async () => {
    const current = await signIn('lister');
    await signInAgain('lister', '127.0.0.7');

    const { body } = await accountPage(current);

    // The page also carries its content as React Server Components data in
    // script tags, so only the rendered table counts.
    const table = /<tbody>(.*?)<\/tbody>/s.exec(body)?.[1] ?? '';
    expect(table.match(/<tr[^>]*data-testid="session"/g)).toHaveLength(2);
    expect(table.match(/this session/g)).toHaveLength(1);
    expect(table).toContain('<td>127.0.0.7</td>');
    expect(table).toContain('<td>127.0.0.1</td>');
  });

  it('ends every session of account', async () => {
    const current = await signIn('everywhere');
    const otherBrowser = await signInAgain('everywhere', '127.0.0.7');
    const bystander = await signIn('everywhere-bystander');
    const currentCookie = current.sessionCookie()!;
    const otherBrowserCookie = otherBrowser.sessionCookie()!;
    const bystanderCookie = bystander.sessionCookie()!;
    const { csrf } = await accountPage(current);

    const reply = await current.post('/account/sign-out-everywhere', { csrf });

    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ sessionsEnded: 2 });
    expect(await probe(currentCookie)).toBe(401);
    expect(await probe(otherBrowserCookie)).toBe(401);
    expect(await probe(bystanderCookie)).toBe(200);
    expect(await endedAtOf(await sessionIdOf(currentCookie))).not.toBeNull();
    expect(await endedAtOf(await sessionIdOf(otherBrowserCookie))).not.toBeNull();
    expect(await endedAtOf(await sessionIdOf(bystanderCookie))).toBeNull();
  });

  it('rejects sign-out everywhere without CSRF', async () => {
    const current = await signIn('everywhere-no-csrf');
    const currentCookie = current.sessionCookie()!;

    const reply = await current.post('/account/sign-out-everywhere', {});

    expect(reply.status).toBe(403);
    expect(await probe(currentCookie)).toBe(200);
  });
});

describe('portal sign-out', () => {
  it('ends only this session', async () => {
    const current = await signIn('leaver');
    const otherBrowser = await signInAgain('leaver', '127.0.0.7');
    const savedCookie = current.sessionCookie()!;
    const { csrf } = await accountPage(current);

    const reply = await current.post('/account/sign-out', { csrf });

    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ signedOut: true });
    const cleared = findSetCookie(reply.setCookies, SESSION_COOKIE);
    expect(cleared?.value).toBe('');
    expect(cleared?.attributes.get('max-age')).toBe('0');
    expect(current.sessionCookie()).toBeUndefined();
    expect(await probe(savedCookie)).toBe(401);
    expect(await probe(otherBrowser.sessionCookie())).toBe(200);
    expect(await endedAtOf(await sessionIdOf(savedCookie))).not.toBeNull();
    expect(await endedAtOf(await sessionIdOf(otherBrowser.sessionCookie()!))).toBeNull();
  });
});

describe('portal forged session cookies', () => {
  let realCookie: string;
  let realSessionId: string;

  beforeAll(async () => {
    await portal.shiftClock(NOW.getTime() - Date.now());
    const client = await signIn('forgery-target');
    realCookie = client.sessionCookie()!;
    realSessionId = await sessionIdOf(realCookie);
  });

  it('accepts real cookie', async () => {
    expect(await probe(realCookie)).toBe(200);
  });

  it('accepts token minted with portal secret', async () => {
    // Shows that the forged tokens below differ from a valid one only in what each case names.
    const minted = await encode({ token: { sid: realSessionId }, secret: SESSION_SECRET });

    expect(await probe(minted)).toBe(200);
  });

  it('rejects request without cookie', async () => {
    expect(await probe(undefined)).toBe(401);
  });

  it.each([
    { case: 'changed character', cookie: () => changeOneCharacter(realCookie) },
    { case: 'truncated token', cookie: () => realCookie.slice(0, -8) },
    { case: 'random text', cookie: () => 'not-a-session-token' },
  ])('rejects $case', async ({ cookie }) => {
    expect(await probe(cookie())).toBe(401);
  });

  it.each([
    { case: 'foreign secret', secret: 'another-secret-0123456789-abcdefghijklmnopqrst', sid: () => realSessionId, maxAgeSeconds: undefined },
    { case: 'unknown session id', secret: SESSION_SECRET, sid: () => randomUUID(), maxAgeSeconds: undefined },
    { case: 'missing session id', secret: SESSION_SECRET, sid: () => undefined, maxAgeSeconds: undefined },
    // exp lies a minute before the portal's clock, past next-auth's 15 s tolerance.
    { case: 'expired token', secret: SESSION_SECRET, sid: () => realSessionId, maxAgeSeconds: () => Math.floor((NOW.getTime() - MINUTE_MS - Date.now()) / 1000) },
  ])('rejects JWT with $case', async ({ secret, sid, maxAgeSeconds }) => {
    const sessionId = sid();
    const forged = await encode({
      token: sessionId === undefined ? {} : { sid: sessionId },
      secret,
      ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds() }),
    });

    expect(await probe(forged)).toBe(401);
  });

  it('rejects unsigned JWT', async () => {
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${part({ alg: 'none', typ: 'JWT' })}.${part({ sid: realSessionId })}.`;

    expect(await probe(unsigned)).toBe(401);
  });
});
