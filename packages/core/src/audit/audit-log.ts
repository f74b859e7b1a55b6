import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/connection.js';
import type { AuditEvent, Database } from '../db/schema.js';
import type { Actor } from './actor.js';

/** The chain's starting value: the `prev_hash` of the first event. */
export const GENESIS_HASH = '0'.repeat(64);

// Serialises appends so that each event reads the hash of the one before it.
const AUDIT_LOCK_KEY = 7_150_001;

export interface AuditEntry {
  actor: Actor;
  action: string;
  target: { kind: string; id: string };
  /** Structured facts; never a secret. */
  details?: Record<string, unknown>;
}

interface HashedFields {
  occurred_at: Date;
  actor_kind: string;
  actor_id: string;
  action: string;
  target_kind: string;
  target_id: string;
  source_address: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
}

function compareCodePoints(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

/** Serialises a value as JSON with object keys sorted, so equal data hashes equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    // JSON.stringify writes undefined in an array as null, and the stored
    // details are read back that way.
    return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  }
  if (value instanceof Date) {
    return JSON.stringify(value.toISOString());
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      // Code-point order, independent of locale, so the hash never changes.
      .sort(([a], [b]) => compareCodePoints(a, b));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Computes an event's hash from its fields and the hash of the event before. */
export function hashEvent(fields: HashedFields): string {
  return createHash('sha256').update(canonicalJson(fields)).digest('hex');
}

/**
 * Appends an event to the hash-chained audit log. Pass the transaction that
 * makes the change, so that the event and the change commit together.
 */
export async function appendAudit(trx: Transaction<Database> | Db, entry: AuditEntry): Promise<void> {
  if (!trx.isTransaction) {
    // The chain lock lasts as long as its transaction, so without one it would
    // be released before the read of the last hash and two appends could fork.
    return trx.transaction().execute((inner) => appendAudit(inner, entry));
  }
  await sql`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`.execute(trx);
  const last = await trx.selectFrom('audit_events').select('hash').orderBy('id', 'desc').limit(1).executeTakeFirst();

  const fields: HashedFields = {
    // Whole milliseconds, so the value read back from timestamptz hashes the same.
    occurred_at: new Date(Date.now()),
    actor_kind: entry.actor.kind,
    actor_id: entry.actor.id,
    action: entry.action,
    target_kind: entry.target.kind,
    target_id: entry.target.id,
    source_address: entry.actor.sourceAddress ?? null,
    details: entry.details ?? {},
    prev_hash: last?.hash ?? GENESIS_HASH,
  };
  await trx
    .insertInto('audit_events')
    .values({ ...fields, details: JSON.stringify(fields.details), hash: hashEvent(fields) })
    .execute();
}

/**
 * Runs `work` in a transaction and appends an audit event in the same
 * transaction, so that no change lands without its event.
 */
export async function withAudit<T>(db: Db, work: (trx: Transaction<Database>) => Promise<{ result: T; audit: AuditEntry }>): Promise<T> {
  // appendAudit takes the audit lock after the change has run, so the lock
  // that serialises every event is held only for the insert and the commit.
  return db.transaction().execute(async (trx) => {
    const { result, audit } = await work(trx);
    await appendAudit(trx, audit);
    return result;
  });
}

export interface AuditListFilter {
  limit?: number;
  targetId?: string;
  action?: string;
}

/** Lists audit events, newest first. */
export async function listAudit(db: Db, filter: AuditListFilter = {}): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(filter.limit ?? 50);
  if (filter.targetId) {
    query = query.where('target_id', '=', filter.targetId);
  }
  if (filter.action) {
    query = query.where('action', '=', filter.action);
  }
  return query.execute();
}

export type AuditVerification =
  | { ok: true; events: number; headHash: string }
  | { ok: false; events: number; badEventId: string; reason: 'edited' | 'missing-before' ; detail: string };

/**
 * Recomputes the chain from the first event. Reports the first event whose
 * content no longer matches its hash (edited) or whose `prev_hash` is not the
 * hash of the event before it (an event before it was removed or reordered).
 *
 * NOTE: removing the newest events leaves a shorter chain that still verifies;
 * detecting that needs the head hash kept outside this database.
 */
export async function verifyAudit(db: Db, batchSize = 1000): Promise<AuditVerification> {
  let previous = GENESIS_HASH;
  let count = 0;
  let afterId = '0';

  for (;;) {
    const batch = await db
      .selectFrom('audit_events')
      .selectAll()
      .where(sql<boolean>`id > ${afterId}::bigint`)
      .orderBy('id')
      .limit(batchSize)
      .execute();
    if (batch.length === 0) {
      return { ok: true, events: count, headHash: previous };
    }

    for (const event of batch) {
      if (event.prev_hash !== previous) {
        return {
          ok: false,
          events: count,
          badEventId: event.id,
          reason: 'missing-before',
          detail: `event ${event.id} follows hash ${event.prev_hash.slice(0, 12)}… but the event before it has hash ${previous.slice(0, 12)}…`,
        };
      }
      const recomputed = hashEvent({
        occurred_at: event.occurred_at,
        actor_kind: event.actor_kind,
        actor_id: event.actor_id,
        action: event.action,
        target_kind: event.target_kind,
        target_id: event.target_id,
        source_address: event.source_address,
        details: event.details,
        prev_hash: event.prev_hash,
      });
      if (recomputed !== event.hash) {
        return { ok: false, events: count, badEventId: event.id, reason: 'edited', detail: `event ${event.id} (${event.action}) does not match its hash` };
      }
      previous = event.hash;
      count += 1;
      afterId = event.id;
    }
  }
}
