import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditEntry, GENESIS_HASH, appendAudit, listAudit, verifyAudit, withAudit } from '../../../src/audit/audit-log.js';
import type { Db } from '../../../src/db/connection.js';
import { ADMIN, auditCount, rejection } from '../../support/fixtures.js';
import { TestDatabase } from '../../support/test-database.js';

const database = new TestDatabase();

beforeAll(async () => {
  await database.start();
});

afterAll(async () => {
  await database.stop();
});

function entry(index: number): AuditEntry {
  return { actor: ADMIN, action: 'test.event', target: { kind: 'test', id: String(index) }, details: { index } };
}

/** Appends events one after another, each in its own transaction. */
async function appendMany(db: Db, count: number): Promise<void> {
  for (let index = 1; index <= count; index += 1) {
    await db.transaction().execute((trx) => appendAudit(trx, entry(index)));
  }
}

async function eventIds(db: Db): Promise<string[]> {
  const rows = await db.selectFrom('audit_events').select('id').orderBy('id').execute();
  return rows.map((row) => row.id);
}

/** Changes the log as an attacker who owns the table could: with the trigger off. */
async function tamper(db: Db, statement: ReturnType<typeof sql>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only`.execute(trx);
    await statement.execute(trx);
    await sql`ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only`.execute(trx);
  });
}

describe('appendAudit', () => {
  it('chains each event to the one before', async () => {
    const db = await database.fresh();
    await appendMany(db, 3);

    const events = await db.selectFrom('audit_events').selectAll().orderBy('id').execute();
    expect(events.map((event) => event.prev_hash)).toEqual([GENESIS_HASH, events[0]?.hash, events[1]?.hash]);
    for (const event of events) {
      expect(event.hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('stores who, what, which target, from where and the details', async () => {
    const db = await database.fresh();
    const before = Date.now();
    await appendAudit(db, {
      actor: { kind: 'customer', id: 'acc-1', sourceAddress: '198.51.100.4' },
      action: 'server.start',
      target: { kind: 'server', id: 'srv-1' },
      details: { name: 'kitchen', nested: { list: [1, 'two'] } },
    });

    const [event] = await db.selectFrom('audit_events').selectAll().execute();
    expect(event).toMatchObject({
      actor_kind: 'customer',
      actor_id: 'acc-1',
      action: 'server.start',
      target_kind: 'server',
      target_id: 'srv-1',
      source_address: '198.51.100.4',
      details: { name: 'kitchen', nested: { list: [1, 'two'] } },
      prev_hash: GENESIS_HASH,
    });
    expect(event?.occurred_at.getTime()).toBeGreaterThanOrEqual(before);
    expect(event?.occurred_at.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('stores empty details when none are given', async () => {
    const db = await database.fresh();
    await appendAudit(db, { actor: ADMIN, action: 'test.event', target: { kind: 'test', id: '1' } });
    expect(await db.selectFrom('audit_events').select('details').execute()).toEqual([{ details: {} }]);
  });

  it('keeps a chain that verifies when 50 transactions append at once', async () => {
    const db = await database.fresh();
    await Promise.all(Array.from({ length: 50 }, (_, index) => db.transaction().execute((trx) => appendAudit(trx, entry(index)))));

    const result = await verifyAudit(db);
    expect(result.ok).toBe(true);
    expect(result.events).toBe(50);
  });

  it('keeps a chain that verifies when 20 callers append without a transaction', async () => {
    const db = await database.fresh();
    await Promise.all(Array.from({ length: 20 }, (_, index) => appendAudit(db, entry(index))));

    const result = await verifyAudit(db);
    expect(result.ok).toBe(true);
    expect(result.events).toBe(20);
  });

  it('verifies details holding undefined, dates and unicode', async () => {
    const db = await database.fresh();
    await appendAudit(db, {
      actor: ADMIN,
      action: 'test.event',
      target: { kind: 'test', id: '1' },
      details: { list: [1, undefined, 'ü'], skipped: undefined, at: new Date('2026-12-04T10:00:00Z'), emoji: '🏠', zero: 0 },
    });
    expect(await verifyAudit(db)).toMatchObject({ ok: true, events: 1 });
  });
});

describe('withAudit', () => {
  it('commits the change and its event together', async () => {
    const db = await database.fresh();
    const result = await withAudit(db, async (trx) => {
      await trx.insertInto('accounts').values({ github_login: 'octocat', display_name: 'Octocat', email: 'o@example.org' }).execute();
      return { result: 'done', audit: entry(1) };
    });
    expect(result).toBe('done');
    expect(await auditCount(db)).toBe(1);
  });

  it('records neither the change nor an event when the work fails', async () => {
    const db = await database.fresh();
    const error = await rejection(
      withAudit(db, async (trx) => {
        await trx.insertInto('accounts').values({ github_login: 'octocat', display_name: 'Octocat', email: 'o@example.org' }).execute();
        throw new Error('work failed');
      }),
    );
    expect(error.message).toBe('work failed');
    expect(await db.selectFrom('accounts').selectAll().execute()).toEqual([]);
    expect(await auditCount(db)).toBe(0);
  });
});

describe('listAudit', () => {
  it('lists newest first, filtered and limited', async () => {
    const db = await database.fresh();
    await appendMany(db, 4);
    expect((await listAudit(db)).map((event) => event.target_id)).toEqual(['4', '3', '2', '1']);
    expect((await listAudit(db, { limit: 2 })).map((event) => event.target_id)).toEqual(['4', '3']);
    expect((await listAudit(db, { targetId: '2' })).map((event) => event.target_id)).toEqual(['2']);
    expect(await listAudit(db, { action: 'other' })).toEqual([]);
  });
});

describe('verifyAudit', () => {
  it('accepts an empty log', async () => {
    const db = await database.fresh();
    expect(await verifyAudit(db)).toEqual({ ok: true, events: 0, headHash: GENESIS_HASH });
  });

  it('accepts an intact chain and returns its head hash', async () => {
    const db = await database.fresh();
    await appendMany(db, 5);
    const last = await db.selectFrom('audit_events').select('hash').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(await verifyAudit(db)).toEqual({ ok: true, events: 5, headHash: last.hash });
  });

  it('verifies across batches', async () => {
    const db = await database.fresh();
    await appendMany(db, 5);
    expect(await verifyAudit(db, 2)).toEqual(await verifyAudit(db));
  });

  it.each([
    ['details', sql`UPDATE audit_events SET details = '{"index": 99}'::jsonb WHERE target_id = '2'`],
    ['action', sql`UPDATE audit_events SET action = 'test.other' WHERE target_id = '2'`],
    ['actor', sql`UPDATE audit_events SET actor_id = 'mallory' WHERE target_id = '2'`],
    ['time', sql`UPDATE audit_events SET occurred_at = occurred_at - interval '1 day' WHERE target_id = '2'`],
    ['source address', sql`UPDATE audit_events SET source_address = '203.0.113.9' WHERE target_id = '2'`],
  ])('reports an event whose %s was edited', async (_field, statement) => {
    const db = await database.fresh();
    await appendMany(db, 3);
    const [, second] = await eventIds(db);

    await tamper(db, statement);

    const action = (await db.selectFrom('audit_events').select('action').where('id', '=', second as string).executeTakeFirstOrThrow()).action;
    expect(await verifyAudit(db)).toEqual({
      ok: false,
      events: 1,
      badEventId: second,
      reason: 'edited',
      detail: `event ${second} (${action}) does not match its hash`,
    });
  });

  it('reports the event after a deleted one', async () => {
    const db = await database.fresh();
    await appendMany(db, 3);
    const [first, second, third] = await eventIds(db);
    const hashes = await db.selectFrom('audit_events').select(['id', 'prev_hash', 'hash']).orderBy('id').execute();

    await tamper(db, sql`DELETE FROM audit_events WHERE id = ${second}`);

    expect(await verifyAudit(db)).toEqual({
      ok: false,
      events: 1,
      badEventId: third,
      reason: 'missing-before',
      detail: `event ${third} follows hash ${hashes[2]?.prev_hash.slice(0, 12)}… but the event before it has hash ${hashes[0]?.hash.slice(0, 12)}…`,
    });
    expect(first).toBe(hashes[0]?.id);
  });

  it('reports the first event when the oldest was deleted', async () => {
    const db = await database.fresh();
    await appendMany(db, 2);
    const [first, second] = await eventIds(db);

    await tamper(db, sql`DELETE FROM audit_events WHERE id = ${first}`);

    expect(await verifyAudit(db)).toMatchObject({ ok: false, events: 0, badEventId: second, reason: 'missing-before' });
  });

  it('reports an edited event found in a later batch', async () => {
    const db = await database.fresh();
    await appendMany(db, 5);
    const ids = await eventIds(db);

    await tamper(db, sql`UPDATE audit_events SET details = '{}'::jsonb WHERE target_id = '4'`);

    expect(await verifyAudit(db, 2)).toMatchObject({ ok: false, events: 3, badEventId: ids[3], reason: 'edited' });
  });
});
