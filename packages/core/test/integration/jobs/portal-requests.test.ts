import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../../src/audit/actor.js';
import { createRedemptionCode } from '../../../src/billing/redemption-codes.js';
import { loadConfig } from '../../../src/config/config.js';
import type { Db } from '../../../src/db/connection.js';
import type { Server } from '../../../src/db/schema.js';
import { ConflictError, ForbiddenError, InvalidInputError } from '../../../src/errors/index.js';
import { installJobQueue, runDueJobs, runPortalRequest } from '../../../src/jobs/job-worker.js';
import { queueServerRequest, redeemCodeAndQueueServer } from '../../../src/jobs/portal-requests.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { ADMIN, insertAccount, insertHost, insertImage, insertServer, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

// Queueing and running portal requests. No request here reaches a host: each
// one is refused by core (ownership, entitlement, no ready host) before any
// host command, so the test needs only PostgreSQL.

const database = new TestDatabase();
const NOW = new Date();
const DAY_MS = 86_400_000;

interface Setup {
  db: Db;
  url: string;
  server: Server;
  owner: Actor & { kind: 'customer' };
  other: Actor & { kind: 'customer' };
}

async function setUp(): Promise<Setup> {
  const { db, url } = await database.freshWithUrl();
  await installJobQueue(url);
  const owner = await insertAccount(db, 'owner');
  const other = await insertAccount(db, 'other');
  const host = await insertHost(db);
  const image = await insertImage(db);
  const server = await insertServer(db, { account: owner, host, image, name: 'kitchen', ipv4: '10.232.0.10', macSuffix: '10', state: 'running' });
  await db.insertInto('subscriptions').values({ account_id: owner.id, plan: 'home', status: 'trial', trial_ends_at: new Date(NOW.getTime() + DAY_MS) }).execute();
  return { db, url, server, owner: { kind: 'customer', id: owner.id }, other: { kind: 'customer', id: other.id } };
}

async function jobCount(db: Db): Promise<number> {
  const result = await sql<{ count: string }>`SELECT count(*) AS count FROM graphile_worker.jobs WHERE task_identifier = 'vome_portal_request'`.execute(db);
  return Number(result.rows[0]?.count);
}

async function requestCount(db: Db): Promise<number> {
  const row = await db.selectFrom('portal_requests').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

function context(db: Db) {
  return { db, config: loadConfig({ VOME_HOME: '/nonexistent' }), logger: silentLogger };
}

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

describe('queueServerRequest', () => {
  it('queues the request and its job together', async () => {
    const setup = await setUp();
    const request = await queueServerRequest(setup.db, setup.owner, setup.server.id, 'stop', NOW);
    expect(request).toMatchObject({ kind: 'stop', state: 'queued', server_id: setup.server.id, account_id: setup.owner.id, actor: `customer:${setup.owner.id}` });
    expect(await jobCount(setup.db)).toBe(1);
  });

  it.each([
    ['another customer', 'other'],
    ['an unknown id', 'missing'],
  ] as const)('refuses %s with nothing queued', async (_, who) => {
    const setup = await setUp();
    const actor = who === 'other' ? setup.other : setup.owner;
    const serverId = who === 'missing' ? '00000000-0000-4000-8000-000000000000' : setup.server.id;
    const error = await rejection(queueServerRequest(setup.db, actor, serverId, 'start', NOW));
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error.message).toBe('you have no such server');
    expect(await requestCount(setup.db)).toBe(0);
    expect(await jobCount(setup.db)).toBe(0);
  });

  it('refuses an owner whose trial ended', async () => {
    const setup = await setUp();
    const error = await rejection(queueServerRequest(setup.db, setup.owner, setup.server.id, 'start', new Date(NOW.getTime() + 2 * DAY_MS)));
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(await jobCount(setup.db)).toBe(0);
  });

  it('lets an admin queue for any server', async () => {
    const setup = await setUp();
    const request = await queueServerRequest(setup.db, ADMIN, setup.server.id, 'restart', NOW);
    expect(request.account_id).toBe(setup.owner.id);
    expect(request.actor).toBe('admin:alice');
  });
});

describe('redeemCodeAndQueueServer', () => {
  it('starts a trial and queues the creation', async () => {
    const setup = await setUp();
    const { code } = await createRedemptionCode(setup.db, ADMIN, { plan: 'home', trialDays: 14, maxUses: 1, expiresAt: new Date(NOW.getTime() + DAY_MS) }, NOW);
    const { redemption, request } = await redeemCodeAndQueueServer(setup.db, setup.other, code, NOW);
    expect(redemption.subscription.status).toBe('trial');
    expect(request).toMatchObject({ kind: 'create', state: 'queued', server_id: null, account_id: setup.other.id });
    expect(await jobCount(setup.db)).toBe(1);
  });

  it('queues nothing for a bad code', async () => {
    const setup = await setUp();
    const error = await rejection(redeemCodeAndQueueServer(setup.db, setup.other, 'AAAAA-BBBBB-CCCCC-DDDDD', NOW));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(await requestCount(setup.db)).toBe(0);
    expect(await jobCount(setup.db)).toBe(0);
  });

  it('uses no code when the account already has a trial', async () => {
    const setup = await setUp();
    const { code, record } = await createRedemptionCode(setup.db, ADMIN, { plan: 'home', trialDays: 14, maxUses: 1, expiresAt: new Date(NOW.getTime() + DAY_MS) }, NOW);
    const error = await rejection(redeemCodeAndQueueServer(setup.db, setup.owner, code, NOW));
    expect(error).toBeInstanceOf(ConflictError);
    const after = await setup.db.selectFrom('redemption_codes').select('uses').where('id', '=', record.id).executeTakeFirstOrThrow();
    expect(after.uses).toBe(0);
    expect(await jobCount(setup.db)).toBe(0);
  });
});

describe('runPortalRequest', () => {
  it('checks ownership again when the job runs', async () => {
    const setup = await setUp();
    const request = await queueServerRequest(setup.db, setup.owner, setup.server.id, 'stop', NOW);
    await setup.db.updateTable('subscriptions').set({ status: 'cancelled' }).where('account_id', '=', setup.owner.id).execute();
    const finished = await runPortalRequest(context(setup.db), request.id, { host: undefined, image: undefined });
    expect(finished?.state).toBe('failed');
    expect(finished?.error).toBe('your trial or subscription is not active, so your servers cannot be changed');
    const operations = await setup.db.selectFrom('operations').select('id').where('server_id', '=', setup.server.id).execute();
    expect(operations).toEqual([]);
  });

  it('fails a creation when no host is ready', async () => {
    const setup = await setUp();
    const { code } = await createRedemptionCode(setup.db, ADMIN, { plan: 'home', trialDays: 14, maxUses: 1, expiresAt: new Date(NOW.getTime() + DAY_MS) }, NOW);
    const { request } = await redeemCodeAndQueueServer(setup.db, setup.other, code, NOW);
    const finished = await runPortalRequest(context(setup.db), request.id, { host: undefined, image: undefined });
    expect(finished?.state).toBe('failed');
    expect(finished?.error).toBe('no host is ready for new servers');
  });

  it('returns a finished request unchanged', async () => {
    const setup = await setUp();
    const request = await queueServerRequest(setup.db, setup.owner, setup.server.id, 'stop', NOW);
    await setup.db.updateTable('subscriptions').set({ status: 'cancelled' }).where('account_id', '=', setup.owner.id).execute();
    const first = await runPortalRequest(context(setup.db), request.id, { host: undefined, image: undefined });
    const second = await runPortalRequest(context(setup.db), request.id, { host: undefined, image: undefined });
    expect(second?.updated_at.toISOString()).toBe(first?.updated_at.toISOString());
  });
});

describe('runDueJobs', () => {
  it('runs each queued job once', async () => {
    const setup = await setUp();
    const request = await queueServerRequest(setup.db, setup.owner, setup.server.id, 'stop', NOW);
    await setup.db.updateTable('subscriptions').set({ status: 'cancelled' }).where('account_id', '=', setup.owner.id).execute();
    await runDueJobs({ connectionString: setup.url, context: context(setup.db), defaults: { host: undefined, image: undefined }, concurrency: 1 });
    const finished = await setup.db.selectFrom('portal_requests').selectAll().where('id', '=', request.id).executeTakeFirstOrThrow();
    expect(finished.state).toBe('failed');
    expect(await jobCount(setup.db)).toBe(0);
  });
});
