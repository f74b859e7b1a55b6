import { Migrator, NO_MIGRATIONS, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../../src/audit/audit-log.js';
import type { Db } from '../../../src/db/connection.js';
import { listMigrations, migrateToLatest } from '../../../src/db/migrate.js';
import * as initialSchema from '../../../src/db/migrations/2026-12-04-0001-initial-schema.js';
import * as hostNetwork from '../../../src/db/migrations/2026-12-04-0002-host-network.js';
import * as blockedNetworks from '../../../src/db/migrations/2026-12-05-0003-blocked-networks.js';
import * as codesAndSubscriptions from '../../../src/db/migrations/2026-12-05-0004-codes-and-subscriptions.js';
import * as portal from '../../../src/db/migrations/2026-12-05-0005-portal.js';
import { ADMIN, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const TABLES = [
  'accounts',
  'address_allocations',
  'audit_events',
  'code_redemptions',
  'hosts',
  'image_placements',
  'images',
  'operations',
  'portal_requests',
  'portal_sessions',
  'rate_limits',
  'redemption_codes',
  'servers',
  'subscriptions',
  'tunnel_peers',
];
const MIGRATIONS = ['2026-12-04-0001-initial-schema', '2026-12-04-0002-host-network', '2026-12-05-0003-blocked-networks', '2026-12-05-0004-codes-and-subscriptions', '2026-12-05-0005-portal'];

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

async function tableNames(db: Db): Promise<string[]> {
  const result = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_name NOT LIKE 'kysely_%'
    ORDER BY table_name`.execute(db);
  return result.rows.map((row) => row.table_name);
}

function downMigrator(db: Db): Migrator {
  const migrations = {
    '2026-12-04-0001-initial-schema': initialSchema,
    '2026-12-04-0002-host-network': hostNetwork,
    '2026-12-05-0003-blocked-networks': blockedNetworks,
    '2026-12-05-0004-codes-and-subscriptions': codesAndSubscriptions,
    '2026-12-05-0005-portal': portal,
  };
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

describe('migrations', () => {
  it('creates every table', async () => {
    const db = await database.fresh();
    expect(await tableNames(db)).toEqual(TABLES);
  });

  it('lists the applied migration with its time', async () => {
    const db = await database.fresh();
    const migrations = await listMigrations(db);
    expect(migrations.map((migration) => migration.name)).toEqual(MIGRATIONS);
    expect(migrations[0]?.appliedAt).toBeInstanceOf(Date);
  });

  it('migrates up, down and up again', async () => {
    const db = await database.fresh();

    const down = await downMigrator(db).migrateTo(NO_MIGRATIONS);
    expect(down.error).toBeUndefined();
    expect(down.results).toEqual([...MIGRATIONS].reverse().map((migrationName) => ({ migrationName, direction: 'Down', status: 'Success' })));
    expect(await tableNames(db)).toEqual([]);
    expect((await listMigrations(db)).map((migration) => migration.appliedAt)).toEqual(MIGRATIONS.map(() => null));

    const up = await migrateToLatest(db);
    expect(up.results).toEqual(MIGRATIONS.map((migrationName) => ({ migrationName, direction: 'Up', status: 'Success' })));
    expect(await tableNames(db)).toEqual(TABLES);
  });

  it('does nothing when already at the latest', async () => {
    const db = await database.fresh();
    expect((await migrateToLatest(db)).results).toEqual([]);
  });
});

describe('audit_events trigger', () => {
  it.each([
    ['UPDATE', sql`UPDATE audit_events SET action = 'x'`],
    ['DELETE', sql`DELETE FROM audit_events`],
    ['TRUNCATE', sql`TRUNCATE audit_events`],
  ])('rejects %s', async (operation, statement) => {
    const db = await database.fresh();
    await appendAudit(db, { actor: ADMIN, action: 'test.event', target: { kind: 'test', id: '1' } });

    const error = await rejection(statement.execute(db));
    expect(error.message).toBe(`audit_events is append-only: ${operation} is not allowed`);

    const rows = await db.selectFrom('audit_events').select('action').execute();
    expect(rows).toEqual([{ action: 'test.event' }]);
  });

  it('accepts INSERT', async () => {
    const db = await database.fresh();
    await appendAudit(db, { actor: ADMIN, action: 'test.event', target: { kind: 'test', id: '1' } });
    await appendAudit(db, { actor: ADMIN, action: 'test.event', target: { kind: 'test', id: '2' } });
    expect(await db.selectFrom('audit_events').select('target_id').orderBy('id').execute()).toEqual([{ target_id: '1' }, { target_id: '2' }]);
  });
});
