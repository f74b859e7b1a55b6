import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedemptionCode, csrfTokenFor, type Db, type Host, type Image } from '../../../core/src/index.js';
import { ADMIN, insertHost, insertImage, insertServer } from '../../../core/test/support/fixtures.js';
import { type FakeGitHub } from '../../../../test/support/fake-github.js';
import { type HttpReply, PORTAL_URL, PortalClient, type PortalProcess, type PortalStack, SESSION_SECRET, startPortalStack } from '../../../../test/support/portal.js';

// Every state-changing route of the portal must reject a request without
// the CSRF token of the session that sends it, or one sent from another
// site, and must change nothing when it rejects one. Each test signs in a new
// customer, so that one route's success cannot hide another's rejection.

const DAY_MS = 86_400_000;
const EVIL_ORIGIN = 'https://evil.example';
const INVALID_TOKEN_CODE = 'invalid_csrf_token';
const CROSS_SITE_CODE = 'cross_site';
const INVALID_TOKEN_MESSAGE = 'This form has expired or did not come from this portal. Reload the page and try again.';

/** A state-changing route, what its customer needs to succeed on it, and its success status for JSON clients. */
interface RouteCase {
  /** `{server}` stands for the id of the customer's own server. */
  route: string;
  needs: 'server' | 'code' | 'session';
  successStatus: number;
}

const ROUTES: RouteCase[] = [
  { route: '/servers/{server}/start', needs: 'server', successStatus: 202 },
  { route: '/servers/{server}/stop', needs: 'server', successStatus: 202 },
  { route: '/servers/{server}/restart', needs: 'server', successStatus: 202 },
  { route: '/codes/redeem', needs: 'code', successStatus: 201 },
  { route: '/account/sign-out', needs: 'session', successStatus: 200 },
  { route: '/account/sign-out-everywhere', needs: 'session', successStatus: 200 },
];

/** Where a request's token comes from. `valid` is the sending session's own token. */
type TokenSource = 'none' | 'second session' | 'other customer' | 'empty' | 'garbage' | 'garbage of valid length' | 'valid';

interface RejectionCase {
  name: string;
  field: TokenSource;
  header?: TokenSource;
  origin?: string;
  secFetchSite?: string;
  errorCode: string;
}

const REJECTIONS: RejectionCase[] = [
  { name: 'no token', field: 'none', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'token of second session', field: 'second session', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'token of other customer', field: 'other customer', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'empty token', field: 'empty', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'garbage token', field: 'garbage', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'garbage of valid length', field: 'garbage of valid length', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'garbage header token', field: 'none', header: 'garbage', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'header of other customer', field: 'none', header: 'other customer', origin: PORTAL_URL, errorCode: INVALID_TOKEN_CODE },
  { name: 'valid token, other origin', field: 'valid', origin: EVIL_ORIGIN, errorCode: CROSS_SITE_CODE },
  { name: 'valid token, cross-site fetch', field: 'valid', secFetchSite: 'cross-site', errorCode: CROSS_SITE_CODE },
];

interface SuccessCase {
  name: string;
  field: TokenSource;
  header?: TokenSource;
}

const SUCCESSES: SuccessCase[] = [
  { name: 'valid token in field', field: 'valid' },
  { name: 'valid token in header', field: 'none', header: 'valid' },
];

let stack: PortalStack;
let db: Db;
let github: FakeGitHub;
let portal: PortalProcess;
let host: Host;
let image: Image;
let customerCount = 0;
/** A customer signed in once for the whole file, whose token others must not be able to use. */
let otherCustomer: Session;

interface Session {
  client: PortalClient;
  accountId: string;
  sessionId: string;
  csrf: string;
  login: string;
}

/** A new customer with what one route needs, and a second session of the same account. */
interface Customer {
  session: Session;
  secondSession: Session;
  serverId?: string;
  code?: { text: string; id: string };
}

async function sessionIdsOf(accountId: string): Promise<string[]> {
  const rows = await db.selectFrom('portal_sessions').select('id').where('account_id', '=', accountId).execute();
  return rows.map((row) => row.id);
}

/** Signs a GitHub user in as a new browser and returns its new session. */
async function signIn(login: string): Promise<Session> {
  const known = await db.selectFrom('accounts').select('id').where('github_login', '=', login).executeTakeFirst();
  const before = known ? await sessionIdsOf(known.id) : [];
  github.signInAs(login);
  const client = new PortalClient(portal);
  const reply = await client.signIn();
  expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
  const account = await db.selectFrom('accounts').select('id').where('github_login', '=', login).executeTakeFirstOrThrow();
  const added = (await sessionIdsOf(account.id)).filter((id) => !before.includes(id));
  expect(added).toHaveLength(1);
  return { client, accountId: account.id, sessionId: added[0]!, csrf: csrfTokenFor(SESSION_SECRET, added[0]!), login };
}

function addGitHubUser(login: string, id: number): void {
  github.addUser({
    id,
    login,
    name: `Name of ${login}`,
    email: `${login}@example.org`,
    createdAt: new Date(Date.now() - 400 * DAY_MS),
    emails: [{ email: `${login}@example.org`, primary: true, verified: true, visibility: 'public' }],
  });
}

/** Signs in a new customer twice and gives it what `needs` names: a server under an active trial, or an unused code. */
async function newCustomer(needs: RouteCase['needs']): Promise<Customer> {
  customerCount += 1;
  const login = `csrf-customer-${customerCount}`;
  addGitHubUser(login, 5000 + customerCount);
  const session = await signIn(login);
  const secondSession = await signIn(login);
  const customer: Customer = { session, secondSession };

  if (needs === 'server') {
    const account = await db.selectFrom('accounts').selectAll().where('id', '=', session.accountId).executeTakeFirstOrThrow();
    await db.insertInto('subscriptions').values({ account_id: account.id, plan: 'household', status: 'trial', trial_ends_at: new Date(Date.now() + 30 * DAY_MS) }).execute();
    // Addresses from 10.232.0.10 upwards, one per customer, inside the host's range.
    const lastByte = 9 + customerCount;
    const server = await insertServer(db, {
      account,
      host,
      image,
      name: `csrf-server-${customerCount}`,
      ipv4: `10.232.0.${lastByte}`,
      macSuffix: lastByte.toString(16).padStart(2, '0'),
      state: 'running',
    });
    customer.serverId = server.id;
  }
  if (needs === 'code') {
    const { code, record } = await createRedemptionCode(db, ADMIN, { plan: 'household', trialDays: 30, maxUses: 1, expiresAt: new Date(Date.now() + 7 * DAY_MS) });
    customer.code = { text: code, id: record.id };
  }
  return customer;
}

function tokenFrom(source: TokenSource, customer: Customer): string | undefined {
  switch (source) {
    case 'none':
      return undefined;
    case 'valid':
      return customer.session.csrf;
    case 'second session':
      return customer.secondSession.csrf;
    case 'other customer':
      return otherCustomer.csrf;
    case 'empty':
      return '';
    case 'garbage':
      return 'not-a-csrf-token';
    case 'garbage of valid length':
      // A SHA-256 HMAC in base64url has 43 characters, as a real token does.
      return randomBytes(32).toString('base64url');
  }
}

interface Submission {
  field: TokenSource;
  header?: TokenSource;
  origin?: string;
  secFetchSite?: string;
  accept?: string;
}

/** Posts the route's form as the customer's first session, with the token and headers a case names. */
async function submit(routeCase: RouteCase, customer: Customer, submission: Submission): Promise<HttpReply> {
  const fields: Record<string, string> = {};
  const fieldToken = tokenFrom(submission.field, customer);
  if (fieldToken !== undefined) {
    fields.csrf = fieldToken;
  }
  if (customer.code) {
    fields.code = customer.code.text;
  }
  const headers: Record<string, string> = { accept: submission.accept ?? 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
  if (submission.origin !== undefined) {
    headers.origin = submission.origin;
  }
  if (submission.secFetchSite !== undefined) {
    headers['sec-fetch-site'] = submission.secFetchSite;
  }
  const headerToken = submission.header === undefined ? undefined : tokenFrom(submission.header, customer);
  if (headerToken !== undefined) {
    headers['x-csrf-token'] = headerToken;
  }
  const path = routeCase.route.replace('{server}', customer.serverId ?? '');
  return customer.session.client.call(path, { method: 'POST', headers, body: new URLSearchParams(fields).toString() });
}

async function countRows(table: 'portal_requests' | 'audit_events'): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Counts graphile-worker's jobs, of every task and state. */
async function jobCount(): Promise<number> {
  // graphile_worker.jobs is a view outside vome's schema type, so the table name is cast.
  const row = await db
    .withSchema('graphile_worker')
    .selectFrom('jobs' as string as 'portal_requests')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** What a request could change: queued requests and jobs, trials, code uses, sessions and the audit log. */
interface State {
  portalRequests: number;
  jobs: number;
  auditEvents: number;
  subscriptions: number;
  codeUses: number;
  codeRedemptions: number;
  sessionVersion: number;
  endedSessions: number;
}

async function stateOf(customer: Customer): Promise<State> {
  const accountId = customer.session.accountId;
  const account = await db.selectFrom('accounts').select('session_version').where('id', '=', accountId).executeTakeFirstOrThrow();
  const subscriptions = await db.selectFrom('subscriptions').select('id').where('account_id', '=', accountId).execute();
  const redemptions = await db.selectFrom('code_redemptions').select('code_id').where('account_id', '=', accountId).execute();
  const ended = await db.selectFrom('portal_sessions').select('id').where('account_id', '=', accountId).where('ended_at', 'is not', null).execute();
  let codeUses = 0;
  if (customer.code) {
    const code = await db.selectFrom('redemption_codes').select('uses').where('id', '=', customer.code.id).executeTakeFirstOrThrow();
    codeUses = code.uses;
  }
  return {
    portalRequests: await countRows('portal_requests'),
    jobs: await jobCount(),
    auditEvents: await countRows('audit_events'),
    subscriptions: subscriptions.length,
    codeUses,
    codeRedemptions: redemptions.length,
    sessionVersion: account.session_version,
    endedSessions: ended.length,
  };
}

async function apiStatus(session: Session): Promise<number> {
  const reply = await session.client.call('/api/servers', { headers: { accept: 'application/json' } });
  return reply.status;
}

/** Computes the state a successful request leaves: exactly one effect per route. */
function stateAfterSuccess(routeCase: RouteCase, before: State): State {
  if (routeCase.needs === 'server') {
    return { ...before, portalRequests: before.portalRequests + 1, jobs: before.jobs + 1, auditEvents: before.auditEvents + 1 };
  }
  if (routeCase.needs === 'code') {
    return {
      ...before,
      portalRequests: before.portalRequests + 1,
      jobs: before.jobs + 1,
      auditEvents: before.auditEvents + 1,
      subscriptions: before.subscriptions + 1,
      codeUses: before.codeUses + 1,
      codeRedemptions: before.codeRedemptions + 1,
    };
  }
  if (routeCase.route === '/account/sign-out') {
    return { ...before, endedSessions: before.endedSessions + 1 };
  }
  // Sign-out everywhere ends both live sessions of the customer and is audited.
  return { ...before, sessionVersion: before.sessionVersion + 1, endedSessions: before.endedSessions + 2, auditEvents: before.auditEvents + 1 };
}

function errorCodeOf(reply: HttpReply): string | undefined {
  return (JSON.parse(reply.body) as { error?: { code?: string } }).error?.code;
}

beforeAll(async () => {
  stack = await startPortalStack({
    VOME_RATE_LIMIT_API: '10000/60s',
    VOME_RATE_LIMIT_SIGN_IN: '10000/60s',
    VOME_RATE_LIMIT_REDEEM: '10000/60s',
  });
  ({ db, github, portal } = stack);
  host = await insertHost(db);
  image = await insertImage(db);
  addGitHubUser('csrf-other', 4999);
  otherCustomer = await signIn('csrf-other');
});

afterAll(async () => {
  await stack?.stop();
});

describe('portal CSRF rejections', () => {
  const cells = ROUTES.flatMap((routeCase) => REJECTIONS.map((rejection): [string, RouteCase, RejectionCase] => [`${routeCase.route} rejects ${rejection.name}`, routeCase, rejection]));

  it.each(cells)('%s', async (_, routeCase, rejection) => {
    const customer = await newCustomer(routeCase.needs);
    const before = await stateOf(customer);

    const reply = await submit(routeCase, customer, rejection);

    expect(reply.status, reply.body.slice(0, 300)).toBe(403);
    expect(errorCodeOf(reply)).toBe(rejection.errorCode);
    expect(await stateOf(customer)).toEqual(before);
    expect(await apiStatus(customer.session)).toBe(200);
    expect(await apiStatus(customer.secondSession)).toBe(200);
    expect(await apiStatus(otherCustomer)).toBe(200);
  });
});

describe('portal CSRF HTML rejections', () => {
  it.each(ROUTES.map((routeCase): [string, RouteCase] => [`${routeCase.route} form without token`, routeCase]))('%s', async (_, routeCase) => {
    const customer = await newCustomer(routeCase.needs);
    const before = await stateOf(customer);

    const reply = await submit(routeCase, customer, { field: 'none', origin: PORTAL_URL, accept: 'text/html,application/xhtml+xml' });

    expect(reply.status).toBe(403);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.body).toContain('<h1>Request refused</h1>');
    expect(reply.body).toContain(`<p role="alert">${INVALID_TOKEN_MESSAGE}</p>`);
    expect(await stateOf(customer)).toEqual(before);
    expect(await apiStatus(customer.session)).toBe(200);
  });
});

describe('portal CSRF successes', () => {
  const cells = ROUTES.flatMap((routeCase) => SUCCESSES.map((success): [string, RouteCase, SuccessCase] => [`${routeCase.route} accepts ${success.name}`, routeCase, success]));

  it.each(cells)('%s', async (_, routeCase, success) => {
    const customer = await newCustomer(routeCase.needs);
    const before = await stateOf(customer);

    const reply = await submit(routeCase, customer, { ...success, origin: PORTAL_URL });

    expect(reply.status, reply.body.slice(0, 300)).toBe(routeCase.successStatus);
    expect(await stateOf(customer)).toEqual(stateAfterSuccess(routeCase, before));
    const signedOut = routeCase.needs === 'session';
    expect(await apiStatus(customer.session)).toBe(signedOut ? 401 : 200);
    expect(await apiStatus(customer.secondSession)).toBe(routeCase.route === '/account/sign-out-everywhere' ? 401 : 200);
  });

  it('queues server request as customer', async () => {
    const customer = await newCustomer('server');

    const reply = await submit(ROUTES[0]!, customer, { field: 'valid', origin: PORTAL_URL });

    expect(reply.status).toBe(202);
    const rows = await db.selectFrom('portal_requests').select(['server_id', 'kind', 'actor', 'state']).where('account_id', '=', customer.session.accountId).execute();
    expect(rows).toEqual([{ server_id: customer.serverId, kind: 'start', actor: `customer:${customer.session.accountId}`, state: 'queued' }]);
  });
});
