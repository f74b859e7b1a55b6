import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServerAccess } from '../../../src/access/server-access.js';
import type { Actor } from '../../../src/audit/actor.js';
import { loadConfig } from '../../../src/config/config.js';
import type { Db } from '../../../src/db/connection.js';
import type { Server, SubscriptionStatus } from '../../../src/db/schema.js';
import { ForbiddenError } from '../../../src/errors/index.js';
import { silentLogger } from '../../../src/logging/logger.js';
import { serverOperation } from '../../../src/servers/servers.js';
import { insertAccount, insertHost, insertImage, insertServer, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

const NOW = new Date('2026-12-05T10:00:00Z');
const NOT_YOURS = 'you have no such server';
const NOT_ENTITLED = 'your trial or subscription is not active, so your servers cannot be changed';

interface Setup {
  db: Db;
  server: Server;
  ownerId: string;
  otherId: string;
}

async function setUp(status: SubscriptionStatus | null = 'trial', trialEndsAt: Date | null = new Date(NOW.getTime() + 60_000)): Promise<Setup> {
  const db = await database.fresh();
  const owner = await insertAccount(db, 'owner');
  const other = await insertAccount(db, 'other');
  const host = await insertHost(db);
  const image = await insertImage(db);
  const server = await insertServer(db, { account: owner, host, image, name: 'kitchen', ipv4: '10.232.0.10', macSuffix: '10', state: 'running' });
  if (status !== null) {
    await db.insertInto('subscriptions').values({ account_id: owner.id, plan: 'household', status, trial_ends_at: trialEndsAt }).execute();
  }
  return { db, server, ownerId: owner.id, otherId: other.id };
}

const customer = (id: string): Actor => ({ kind: 'customer', id });

describe('requireServerAccess', () => {
  it.each([
    ['an admin', { kind: 'admin', id: 'alice' }],
    ['vome itself', { kind: 'system', id: 'maintenance' }],
  ] as const)('lets %s act on any server', async (_, actor) => {
    const setup = await setUp(null);
    await expect(requireServerAccess(setup.db, actor, setup.server, NOW)).resolves.toBeUndefined();
  });

  it('lets the owner act during the trial', async () => {
    const setup = await setUp();
    await expect(requireServerAccess(setup.db, customer(setup.ownerId), setup.server, NOW)).resolves.toBeUndefined();
  });

  it('lets the owner act with an active subscription', async () => {
    const setup = await setUp('active', null);
    await expect(requireServerAccess(setup.db, customer(setup.ownerId), setup.server, NOW)).resolves.toBeUndefined();
  });

  it.each([
    ['an ended trial', 'trial', new Date(NOW.getTime() - 1000)],
    ['a past-due subscription', 'past_due', null],
    ['a cancelled subscription', 'cancelled', null],
  ] as const)('rejects the owner with %s', async (_, status, trialEndsAt) => {
    const setup = await setUp(status, trialEndsAt);
    const error = await rejection(requireServerAccess(setup.db, customer(setup.ownerId), setup.server, NOW));
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error.message).toBe(NOT_ENTITLED);
  });

  it('rejects another customer as if the server did not exist', async () => {
    const setup = await setUp();
    const foreign = await rejection(requireServerAccess(setup.db, customer(setup.otherId), setup.server, NOW));
    const missing = await rejection(requireServerAccess(setup.db, customer(setup.otherId), undefined, NOW));
    expect(foreign).toBeInstanceOf(ForbiddenError);
    expect(foreign.message).toBe(NOT_YOURS);
    expect(missing.message).toBe(NOT_YOURS);
  });

  it('rejects support access until grants exist', async () => {
    const setup = await setUp();
    const error = await rejection(requireServerAccess(setup.db, { kind: 'support', id: 'grant-1' }, setup.server, NOW));
    expect(error).toBeInstanceOf(ForbiddenError);
  });
});

describe('serverOperation', () => {
  it('does not let a customer act on another account\'s server', async () => {
    const setup = await setUp();
    const context = { db: setup.db, config: loadConfig({ VOME_HOME: '/nonexistent/vome-home' }), logger: silentLogger };

    const error = await rejection(serverOperation(context, customer(setup.otherId), 'kitchen', 'stop'));

    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error.message).toBe(NOT_YOURS);
    expect(await setup.db.selectFrom('operations').selectAll().execute()).toEqual([]);
  });

  it('gives a customer the same answer for a server that does not exist', async () => {
    const setup = await setUp();
    const context = { db: setup.db, config: loadConfig({ VOME_HOME: '/nonexistent/vome-home' }), logger: silentLogger };
    const error = await rejection(serverOperation(context, customer(setup.otherId), 'garage', 'stop'));
    expect(error.message).toBe(NOT_YOURS);
  });
});
