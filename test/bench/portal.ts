// Benchmark: the portal under load on loopback. Measures requests per second
// and p50/p99 latency of the signed-in dashboard (GET /dashboard with a live
// session cookie, for a customer with 3 servers and an active trial) beside
// a page with no session and no database (GET /about). autocannon sends the
// requests from this process, so on a small machine it competes for CPU with
// the portal and PostgreSQL.
//
// Usage: pnpm exec tsx test/bench/portal.ts [--duration SECONDS] [--connections N]
// Prints a table on stdout. Exits with 1 when any request got a non-2xx
// status or a connection error, because then the figures are not those of
// the page.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import type { Db } from '../../packages/core/src/index.js';
import { insertHost, insertImage, insertServer } from '../../packages/core/test/support/fixtures.js';
import type { FakeGitHub } from '../support/fake-github.js';
import { httpCall, PORTAL_URL, PortalClient, type PortalProcess, type PortalStack, SESSION_COOKIE, startPortalStack } from '../support/portal.js';

const WARM_UP_SECONDS = 2;
const SERVER_NAMES = ['kitchen', 'garage', 'cellar'];
const DAY_MS = 86_400_000;
// Far above what one load generator can send, so that no limit rejects a request.
const HIGH_RATE_LIMIT = '100000000/60s';

interface BenchOptions {
  durationSeconds: number;
  connections: number;
}

interface Measurement {
  path: string;
  result: autocannon.Result;
}

function readOptions(): BenchOptions {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '10' },
    },
  });
  return {
    durationSeconds: positiveInteger('--duration', values.duration),
    connections: positiveInteger('--connections', values.connections),
  };
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${flag} must be a whole number of 1 or more, got "${text}"`);
  }
  return value;
}

/**
 * Signs in a GitHub user through the whole OAuth flow, then gives the new
 * account 3 running servers and a trial that ends in 14 days. Returns the
 * value of the session cookie.
 */
async function signInCustomer(db: Db, github: FakeGitHub, portal: PortalProcess): Promise<string> {
  github.addUser({
    id: 4242,
    login: 'bench-customer',
    name: 'Bench Customer',
    email: 'bench-customer@example.org',
    createdAt: new Date(Date.now() - 400 * DAY_MS),
    emails: [{ email: 'bench-customer@example.org', primary: true, verified: true, visibility: 'public' }],
  });
  github.signInAs('bench-customer');
  const client = new PortalClient(portal);
  const reply = await client.signIn();
  const session = client.sessionCookie();
  if (reply.location !== `${PORTAL_URL}/dashboard` || session === undefined) {
    throw new Error(`sign-in failed: status ${reply.status}, location ${reply.location ?? 'none'}`);
  }

  const account = await db.selectFrom('accounts').selectAll().where('github_login', '=', 'bench-customer').executeTakeFirstOrThrow();
  const host = await insertHost(db);
  const image = await insertImage(db);
  for (const [index, name] of SERVER_NAMES.entries()) {
    await insertServer(db, { account, host, image, name, ipv4: `10.232.0.${10 + index}`, macSuffix: String(10 + index), state: 'running' });
  }
  await db
    .insertInto('subscriptions')
    .values({ account_id: account.id, plan: 'household', status: 'trial', trial_ends_at: new Date(Date.now() + 14 * DAY_MS) })
    .execute();
  return session;
}

/** Checks that the dashboard renders the customer's servers, so that the load hits the real page and not a redirect. */
async function checkDashboard(portal: PortalProcess, cookie: string): Promise<void> {
  const page = await httpCall(`${portal.localUrl}/dashboard`, { headers: { cookie } });
  if (page.status !== 200) {
    throw new Error(`GET /dashboard returned ${page.status} (location ${page.location ?? 'none'}), expected 200`);
  }
  const missing = SERVER_NAMES.filter((name) => !page.body.includes(`data-server="${name}"`));
  if (missing.length > 0) {
    throw new Error(`GET /dashboard does not list the servers ${missing.join(', ')}`);
  }
}

async function load(url: string, headers: Record<string, string>, connections: number, durationSeconds: number): Promise<autocannon.Result> {
  return autocannon({ url, headers, connections, duration: durationSeconds });
}

/** Warms up one path for WARM_UP_SECONDS (figures discarded), then measures it. */
async function measure(portal: PortalProcess, path: string, headers: Record<string, string>, options: BenchOptions): Promise<Measurement> {
  const url = `${portal.localUrl}${path}`;
  process.stderr.write(`warming up ${path} for ${WARM_UP_SECONDS} s\n`);
  await load(url, headers, options.connections, WARM_UP_SECONDS);
  process.stderr.write(`measuring ${path} for ${options.durationSeconds} s with ${options.connections} connections\n`);
  const result = await load(url, headers, options.connections, options.durationSeconds);
  return { path, result };
}

function printTable(measurements: Measurement[], options: BenchOptions): void {
  const header = ['URL', 'requests/s (mean)', 'p50 ms', 'p99 ms', 'non-2xx', 'errors'];
  const rows = measurements.map(({ path, result }) => [
    `GET ${path}`,
    result.requests.mean.toFixed(1),
    String(result.latency.p50),
    String(result.latency.p99),
    String(result.non2xx),
    String(result.errors),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');

  process.stdout.write(
    `\nportal benchmark: ${options.durationSeconds} s per URL after ${WARM_UP_SECONDS} s warm-up, ${options.connections} connections, ` +
      `${availableParallelism()} CPUs, Node ${process.version}\n`,
  );
  process.stdout.write(`${line(header)}\n`);
  for (const row of rows) {
    process.stdout.write(`${line(row)}\n`);
  }
}

const options = readOptions();
let stack: PortalStack | undefined;
const measurements: Measurement[] = [];
let portalOutput = '';
try {
  stack = await startPortalStack({
    VOME_RATE_LIMIT_SIGN_IN: HIGH_RATE_LIMIT,
    VOME_RATE_LIMIT_REDEEM: HIGH_RATE_LIMIT,
    VOME_RATE_LIMIT_API: HIGH_RATE_LIMIT,
    VOME_LOG_LEVEL: 'warn',
  });
  const { db, github, portal } = stack;

  const session = await signInCustomer(db, github, portal);
  const cookie = `${SESSION_COOKIE}=${session}`;
  await checkDashboard(portal, cookie);

  measurements.push(await measure(portal, '/dashboard', { cookie }, options));
  measurements.push(await measure(portal, '/about', {}, options));
} finally {
  portalOutput = stack?.portal.output() ?? '';
  await stack?.stop();
}

printTable(measurements, options);
const failed = measurements.filter(({ result }) => result.non2xx > 0 || result.errors > 0);
if (failed.length > 0) {
  process.stderr.write(`non-2xx responses or connection errors on ${failed.map(({ path }) => path).join(', ')}, so these figures are not of the page\n`);
  process.stderr.write(`portal output:\n${portalOutput}\n`);
  process.exitCode = 1;
}
