import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Account, createRedemptionCode, csrfTokenFor, type Db, type Server } from '../../../core/src/index.js';
import { ADMIN, insertHost, insertImage, insertServer } from '../../../core/test/support/fixtures.js';
import { type FakeGitHub } from '../../../../test/support/fake-github.js';
import { type HttpReply, PORTAL_URL, PortalClient, type PortalProcess, type PortalStack, SESSION_SECRET, startPortalStack } from '../../../../test/support/portal.js';

// Who may see and do what in the portal, for every route and five actors:
// an anonymous client, customers A and B with active trials, customer E
// whose trial has ended, and an admin. The expected values follow these rules.
// - A customer can view only their own servers, and acts on them only while a
//   trial or subscription is active.
// - A server of another account gets the same response as one that does not
//   exist: 404 on pages, 403 "you have no such server" in the JSON API.
// - An admin passes by role, and the audit log records the admin as the actor.
// - Pages send a client without a session to /signin. JSON routes return 401.
// - A customer with no active trial or subscription may redeem a code to
//   start one, as the dashboard and the hint of the 403 tell E to do.
// - Redeeming is a customer's act, so an admin is rejected with 403.
// No worker runs in this file, so a queued request only adds a row to
// portal_requests and a job to graphile-worker's queue.

const DAY_MS = 86_400_000;

type ActorName = 'anonymous' | 'A' | 'B' | 'E' | 'admin';
type Customer = Exclude<ActorName, 'anonymous' | 'admin'>;
type SignedIn = Exclude<ActorName, 'anonymous'>;

const GITHUB_USERS: Record<SignedIn, { id: number; login: string }> = {
  A: { id: 2001, login: 'customer-a' },
  B: { id: 2002, login: 'customer-b' },
  E: { id: 2003, login: 'customer-e' },
  admin: { id: 2900, login: 'portal-admin' },
};
const ADMIN_ACTOR = `admin:github:${GITHUB_USERS.admin.login}`;

// redirect() from next/navigation in a page responds with 307 Temporary Redirect.
const TO_SIGN_IN = '307 /signin';
const TO_DASHBOARD = '307 /dashboard';

/**
 * One route and its expected response per actor: a status, or a status and the
 * path of the Location header. `{A}`, `{B}` and `{E}` stand for the ids of
 * the customers' servers, `{missing}` for a UUID of no server.
 */
interface Row {
  method: 'GET' | 'POST';
  route: string;
  expected: Record<ActorName, number | string>;
}

const PAGE_ROWS: Row[] = [
  { method: 'GET', route: '/dashboard', expected: { anonymous: TO_SIGN_IN, A: 200, B: 200, E: 200, admin: 200 } },
  { method: 'GET', route: '/servers/{A}', expected: { anonymous: TO_SIGN_IN, A: 200, B: 404, E: 404, admin: 200 } },
  { method: 'GET', route: '/servers/{B}', expected: { anonymous: TO_SIGN_IN, A: 404, B: 200, E: 404, admin: 200 } },
  { method: 'GET', route: '/servers/{E}', expected: { anonymous: TO_SIGN_IN, A: 404, B: 404, E: 200, admin: 200 } },
  { method: 'GET', route: '/servers/{missing}', expected: { anonymous: TO_SIGN_IN, A: 404, B: 404, E: 404, admin: 404 } },
  { method: 'GET', route: '/redeem', expected: { anonymous: TO_SIGN_IN, A: 200, B: 200, E: 200, admin: 200 } },
  { method: 'GET', route: '/account', expected: { anonymous: TO_SIGN_IN, A: 200, B: 200, E: 200, admin: 200 } },
  { method: 'GET', route: '/about', expected: { anonymous: 200, A: 200, B: 200, E: 200, admin: 200 } },
  { method: 'GET', route: '/signin', expected: { anonymous: 200, A: TO_DASHBOARD, B: TO_DASHBOARD, E: TO_DASHBOARD, admin: TO_DASHBOARD } },
  { method: 'GET', route: '/api/servers', expected: { anonymous: 401, A: 200, B: 200, E: 200, admin: 200 } },
  { method: 'GET', route: '/api/servers/{A}', expected: { anonymous: 401, A: 200, B: 403, E: 403, admin: 200 } },
  { method: 'GET', route: '/api/servers/{B}', expected: { anonymous: 401, A: 403, B: 200, E: 403, admin: 200 } },
  { method: 'GET', route: '/api/servers/{E}', expected: { anonymous: 401, A: 403, B: 403, E: 200, admin: 200 } },
];

const ACTION_ROWS: Row[] = [
  { method: 'POST', route: '/servers/{A}/start', expected: { anonymous: 401, A: 202, B: 403, E: 403, admin: 202 } },
  { method: 'POST', route: '/servers/{A}/stop', expected: { anonymous: 401, A: 202, B: 403, E: 403, admin: 202 } },
  { method: 'POST', route: '/servers/{A}/restart', expected: { anonymous: 401, A: 202, B: 403, E: 403, admin: 202 } },
  { method: 'POST', route: '/servers/{B}/stop', expected: { anonymous: 401, A: 403, B: 202, E: 403, admin: 202 } },
  // E owns this server but its trial has ended.
  { method: 'POST', route: '/servers/{E}/start', expected: { anonymous: 401, A: 403, B: 403, E: 403, admin: 202 } },
  // For an admin nothing is foreign, so a missing server is simply not found.
  { method: 'POST', route: '/servers/{missing}/start', expected: { anonymous: 401, A: 403, B: 403, E: 403, admin: 404 } },
  { method: 'POST', route: '/servers/{A}/explode', expected: { anonymous: 404, A: 404, B: 404, E: 404, admin: 404 } },
  // A and B already have a trial (409); E's has ended, so E may start a new one.
  { method: 'POST', route: '/codes/redeem', expected: { anonymous: 401, A: 409, B: 409, E: 201, admin: 403 } },
];

// These end sessions, so each cell signs in afresh and the table runs last.
const SIGN_OUT_ROWS: Row[] = [
  { method: 'POST', route: '/account/sign-out', expected: { anonymous: 401, A: 200, B: 200, E: 200, admin: 200 } },
  { method: 'POST', route: '/account/sign-out-everywhere', expected: { anonymous: 401, A: 200, B: 200, E: 200, admin: 200 } },
];

const ACTORS: ActorName[] = ['anonymous', 'A', 'B', 'E', 'admin'];

interface Cell {
  actor: ActorName;
  method: Row['method'];
  route: string;
  expected: string;
}

function cellsOf(rows: Row[]): Cell[] {
  return rows.flatMap((row) => ACTORS.map((actor) => ({ actor, method: row.method, route: row.route, expected: String(row.expected[actor]) })));
}

/** Names each cell for `it.each`, e.g. "B POST /servers/{A}/stop is 403". */
function namedCells(rows: Row[]): Array<[string, Cell]> {
  return cellsOf(rows).map((cell) => [`${cell.actor} ${cell.method} ${cell.route} is ${cell.expected}`, cell]);
}

let stack: PortalStack;
let db: Db;
let github: FakeGitHub;
let portal: PortalProcess;

interface Session {
  client: PortalClient;
  sessionId: string;
  csrf: string;
}

const accounts = {} as Record<SignedIn, Account>;
const sessions = {} as Record<SignedIn, Session>;
const servers = {} as Record<Customer, Server>;
const missingServerId = randomUUID();
/** Codes handed to redemption cells, with the status each cell expected. */
const redeemedCodes: Array<{ actor: ActorName; codeId: string; expectedStatus: number }> = [];

function resolveRoute(route: string): string {
  return route
    .replace('{A}', servers.A.id)
    .replace('{B}', servers.B.id)
    .replace('{E}', servers.E.id)
    .replace('{missing}', missingServerId);
}

async function sessionIdsOf(accountId: string): Promise<string[]> {
  const rows = await db.selectFrom('portal_sessions').select('id').where('account_id', '=', accountId).execute();
  return rows.map((row) => row.id);
}

/** Signs an actor in as a new browser and returns the client with its new session's id and CSRF token. */
async function signIn(actor: SignedIn): Promise<Session> {
  const before = accounts[actor] ? await sessionIdsOf(accounts[actor].id) : [];
  github.signInAs(GITHUB_USERS[actor].login);
  const client = new PortalClient(portal);
  const reply = await client.signIn();
  expect(reply.location).toBe(`${PORTAL_URL}/dashboard`);
  const account = await db.selectFrom('accounts').selectAll().where('github_id', '=', String(GITHUB_USERS[actor].id)).executeTakeFirstOrThrow();
  const added = (await sessionIdsOf(account.id)).filter((id) => !before.includes(id));
  expect(added).toHaveLength(1);
  const sessionId = added[0]!;
  return { client, sessionId, csrf: csrfTokenFor(SESSION_SECRET, sessionId) };
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

async function newCode(): Promise<{ code: string; id: string }> {
  const { code, record } = await createRedemptionCode(db, ADMIN, { plan: 'household', trialDays: 30, maxUses: 1, expiresAt: new Date(Date.now() + 7 * DAY_MS) });
  return { code, id: record.id };
}

/** Sends one cell's request as its actor. A POST carries the actor's own CSRF token and requests JSON. */
async function send(method: Row['method'], route: string, session: Session | undefined, fields: Record<string, string> = {}): Promise<HttpReply> {
  const client = session?.client ?? new PortalClient(portal);
  const path = resolveRoute(route);
  if (method === 'GET') {
    return client.call(path, { headers: { accept: path.startsWith('/api/') ? 'application/json' : 'text/html' } });
  }
  return client.post(path, session ? { csrf: session.csrf, ...fields } : fields);
}

function expectAnswer(reply: HttpReply, expected: string): void {
  const [status, location] = expected.split(' ');
  expect(reply.status, reply.body.slice(0, 300)).toBe(Number(status));
  if (location !== undefined) {
    expect(new URL(reply.location ?? '', PORTAL_URL).pathname).toBe(location);
  }
}

async function apiServerIds(actor: SignedIn): Promise<string[]> {
  const reply = await sessions[actor].client.call('/api/servers', { headers: { accept: 'application/json' } });
  expect(reply.status).toBe(200);
  return (JSON.parse(reply.body) as { servers: Array<{ id: string }> }).servers.map((server) => server.id);
}

beforeAll(async () => {
  stack = await startPortalStack({
    VOME_PORTAL_ADMIN_GITHUB_IDS: String(GITHUB_USERS.admin.id),
    VOME_RATE_LIMIT_API: '10000/60s',
    VOME_RATE_LIMIT_SIGN_IN: '10000/60s',
    VOME_RATE_LIMIT_REDEEM: '10000/60s',
  });
  ({ db, github, portal } = stack);

  for (const actor of Object.keys(GITHUB_USERS) as SignedIn[]) {
    const { id, login } = GITHUB_USERS[actor];
    github.addUser({
      id,
      login,
      name: `Name of ${login}`,
      email: `${login}@example.org`,
      createdAt: new Date(Date.now() - 400 * DAY_MS),
      emails: [{ email: `${login}@example.org`, primary: true, verified: true, visibility: 'public' }],
    });
    sessions[actor] = await signIn(actor);
    accounts[actor] = await db.selectFrom('accounts').selectAll().where('github_id', '=', String(id)).executeTakeFirstOrThrow();
  }

  const host = await insertHost(db);
  const image = await insertImage(db);
  servers.A = await insertServer(db, { account: accounts.A, host, image, name: 'alpha', ipv4: '10.232.0.11', macSuffix: '11', state: 'running' });
  servers.B = await insertServer(db, { account: accounts.B, host, image, name: 'bravo', ipv4: '10.232.0.12', macSuffix: '12', state: 'running' });
  servers.E = await insertServer(db, { account: accounts.E, host, image, name: 'echo', ipv4: '10.232.0.13', macSuffix: '13', state: 'stopped' });
  const trial = (account: Account, trialEndsAt: Date) => ({ account_id: account.id, plan: 'household', status: 'trial' as const, trial_ends_at: trialEndsAt });
  await db
    .insertInto('subscriptions')
    .values([trial(accounts.A, new Date(Date.now() + 30 * DAY_MS)), trial(accounts.B, new Date(Date.now() + 30 * DAY_MS)), trial(accounts.E, new Date(Date.now() - DAY_MS))])
    .execute();
});

afterAll(async () => {
  await stack?.stop();
});

describe('portal authorization matrix', () => {
  it.each(namedCells(PAGE_ROWS))('%s', async (_, { actor, method, route, expected }) => {
    const reply = await send(method, route, actor === 'anonymous' ? undefined : sessions[actor]);
    expectAnswer(reply, expected);
  });

  it.each(namedCells(ACTION_ROWS))('%s', async (_, { actor, method, route, expected }) => {
    const fields: Record<string, string> = {};
    if (route === '/codes/redeem') {
      const { code, id } = await newCode();
      fields.code = code;
      redeemedCodes.push({ actor, codeId: id, expectedStatus: Number(expected) });
    }

    const reply = await send(method, route, actor === 'anonymous' ? undefined : sessions[actor], fields);

    expectAnswer(reply, expected);
  });
});

describe('portal authorization effects', () => {
  /** The rows every cell that expected success should have left, in a stable order. */
  function expectedRequests(): Array<{ account_id: string; server_id: string | null; kind: string; actor: string }> {
    const rows = cellsOf(ACTION_ROWS).filter((cell) => cell.expected === '202' || cell.expected === '201');
    return rows
      .map((cell) => {
        const actor = cell.actor === 'admin' ? ADMIN_ACTOR : `customer:${accounts[cell.actor as Customer].id}`;
        if (cell.route === '/codes/redeem') {
          return { account_id: accounts[cell.actor as Customer].id, server_id: null, kind: 'create', actor };
        }
        const [, owner, kind] = /^\/servers\/\{(A|B|E)\}\/(\w+)$/.exec(cell.route)! as unknown as [string, Customer, string];
        return { account_id: accounts[owner].id, server_id: servers[owner].id, kind, actor };
      })
      .sort((left, right) => JSON.stringify(left).localeCompare(JSON.stringify(right)));
  }

  async function requestRows() {
    const rows = await db.selectFrom('portal_requests').select(['account_id', 'server_id', 'kind', 'actor']).execute();
    return rows.sort((left, right) => JSON.stringify(left).localeCompare(JSON.stringify(right)));
  }

  it.each(['A', 'B'] as const)('requests on server %s are owner or admin', async (owner) => {
    const rows = await db.selectFrom('portal_requests').select('actor').where('server_id', '=', servers[owner].id).execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect([`customer:${accounts[owner].id}`, ADMIN_ACTOR]).toContain(row.actor);
    }
  });

  it('records no request by E on its server', async () => {
    const rows = await db.selectFrom('portal_requests').select('actor').where('server_id', '=', servers.E.id).execute();
    expect(rows.map((row) => row.actor)).toEqual([ADMIN_ACTOR]);
  });

  it('queues exactly the accepted requests', async () => {
    expect(await requestRows()).toEqual(expectedRequests());
  });

  it('queues one job per request', async () => {
    const requests = await db.selectFrom('portal_requests').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
    expect(await jobCount()).toBe(Number(requests.count));
  });

  it('audits admin actions as admin', async () => {
    const events = await db
      .selectFrom('audit_events')
      .select(['actor_kind', 'actor_id', 'action', 'target_id'])
      .where('action', 'like', 'server.request-%')
      .where('actor_kind', '=', 'admin')
      .execute();
    const expected = expectedRequests()
      .filter((request) => request.actor === ADMIN_ACTOR)
      .map((request) => ({ actor_kind: 'admin', actor_id: `github:${GITHUB_USERS.admin.login}`, action: `server.request-${request.kind}`, target_id: request.server_id }));
    const order = (list: typeof expected) => [...list].sort((left, right) => JSON.stringify(left).localeCompare(JSON.stringify(right)));
    expect(order(events)).toEqual(order(expected));
  });

  it('audits customer actions under their account', async () => {
    const events = await db.selectFrom('audit_events').select(['actor_kind', 'actor_id', 'target_id']).where('action', 'like', 'server.request-%').where('actor_kind', '=', 'customer').execute();
    for (const event of events) {
      const owner = (['A', 'B', 'E'] as const).find((customer) => servers[customer].id === event.target_id);
      expect(owner).toBeDefined();
      expect(event.actor_id).toBe(accounts[owner!].id);
    }
    expect(events).toHaveLength(expectedRequests().filter((request) => request.actor.startsWith('customer:') && request.kind !== 'create').length);
  });

  it('uses a code only for accepted redemptions', async () => {
    expect(redeemedCodes).toHaveLength(ACTORS.length);
    for (const { actor, codeId, expectedStatus } of redeemedCodes) {
      const code = await db.selectFrom('redemption_codes').select('uses').where('id', '=', codeId).executeTakeFirstOrThrow();
      expect({ actor, uses: code.uses }).toEqual({ actor, uses: expectedStatus === 201 ? 1 : 0 });
    }
  });

  it.each(['A', 'B', 'E'] as const)('lists only own server for %s', async (customer) => {
    expect(await apiServerIds(customer)).toEqual([servers[customer].id]);
  });

  it('lists every server for admin', async () => {
    // Sorted by name: alpha, bravo, echo.
    expect(await apiServerIds('admin')).toEqual([servers.A.id, servers.B.id, servers.E.id]);
  });

  it('tells E its trial has ended', async () => {
    // E redeemed a new code in the matrix above, so its trial ends again here.
    await db.updateTable('subscriptions').set({ trial_ends_at: new Date(Date.now() - 60_000) }).where('account_id', '=', accounts.E.id).where('status', '=', 'trial').execute();
    const reply = await sessions.E.client.post(resolveRoute('/servers/{E}/start'), { csrf: sessions.E.csrf });

    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.body)).toEqual({ error: { code: 'forbidden', message: 'your trial or subscription is not active, so your servers cannot be changed' } });
  });

  it('treats foreign server as missing', async () => {
    const read = (route: string) => sessions.A.client.call(resolveRoute(route), { headers: { accept: 'application/json' } });
    const foreignRead = await read('/api/servers/{B}');
    const missingRead = await read('/api/servers/{missing}');
    expect(foreignRead.status).toBe(missingRead.status);
    expect(JSON.parse(foreignRead.body)).toEqual(JSON.parse(missingRead.body));

    const foreignStop = await sessions.A.client.post(resolveRoute('/servers/{B}/stop'), { csrf: sessions.A.csrf });
    const missingStop = await sessions.A.client.post(resolveRoute('/servers/{missing}/stop'), { csrf: sessions.A.csrf });
    expect(foreignStop.status).toBe(missingStop.status);
    expect(JSON.parse(foreignStop.body)).toEqual(JSON.parse(missingStop.body));
  });
});

describe('portal authorization of sign-out', () => {
  it.each(namedCells(SIGN_OUT_ROWS))('%s', async (_, { actor, method, route, expected }) => {
    const session = actor === 'anonymous' ? undefined : await signIn(actor);

    const reply = await send(method, route, session);

    expectAnswer(reply, expected);
    if (session && reply.status === 200) {
      const probe = await session.client.call('/api/servers', { headers: { accept: 'application/json' } });
      expect(probe.status).toBe(401);
    }
  });
});
