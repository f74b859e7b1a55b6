import { type Kysely, type Migration, type MigrationResultSet, Migrator } from 'kysely';
import * as initialSchema from './migrations/2026-12-04-0001-initial-schema.js';
import * as hostNetwork from './migrations/2026-12-04-0002-host-network.js';
import * as blockedNetworks from './migrations/2026-12-05-0003-blocked-networks.js';
import * as codesAndSubscriptions from './migrations/2026-12-05-0004-codes-and-subscriptions.js';
import * as portal from './migrations/2026-12-05-0005-portal.js';
import type { Database } from './schema.js';

/** Every migration, by name; names sort in the order they apply. */
const migrations: Record<string, Migration> = {
  '2026-12-04-0001-initial-schema': initialSchema,
  '2026-12-04-0002-host-network': hostNetwork,
  '2026-12-05-0003-blocked-networks': blockedNetworks,
  '2026-12-05-0004-codes-and-subscriptions': codesAndSubscriptions,
  '2026-12-05-0005-portal': portal,
};

function migrator(db: Kysely<Database>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  });
}

export interface MigrationStatus {
  name: string;
  appliedAt: Date | null;
}

/**
 * Applies every pending migration. Kysely takes a lock, so two processes
 * migrating at once apply each migration once.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationResultSet> {
  const result = await migrator(db).migrateToLatest();
  if (result.error) {
    throw result.error;
  }
  return result;
}

/** Lists migrations with the time each was applied, or null when pending. */
export async function listMigrations(db: Kysely<Database>): Promise<MigrationStatus[]> {
  const infos = await migrator(db).getMigrations();
  return infos.map((info) => ({ name: info.name, appliedAt: info.executedAt ?? null }));
}
