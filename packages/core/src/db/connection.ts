import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { VomeConfig } from '../config/config.js';
import { EmbeddedPostgres } from './embedded-postgres.js';
import { migrateToLatest } from './migrate.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface OpenDatabaseOptions {
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
}

/**
 * Resolves the database URL: DATABASE_URL when set, otherwise the embedded
 * PostgreSQL under VOME_HOME, started when it is not running.
 */
export async function resolveDatabaseUrl(config: VomeConfig): Promise<string> {
  if (config.databaseUrl) {
    return config.databaseUrl;
  }
  return new EmbeddedPostgres(config.home, config.embeddedPostgresPort).start();
}

/** Opens a pooled Kysely connection to a PostgreSQL URL. */
export function connect(url: string): Db {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle connection that the server ends (restart, shutdown) emits an
  // error on the pool, and an unhandled one would end the process. The pool
  // drops that connection, and the next query opens a new one or raises.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Opens vome's database, starting the embedded server and migrating as needed. */
export async function openDatabase(config: VomeConfig, options: OpenDatabaseOptions = {}): Promise<Db> {
  const db = connect(await resolveDatabaseUrl(config));
  if (options.migrate ?? true) {
    await migrateToLatest(db);
  }
  return db;
}
