import { mkdtemp, rm } from 'node:fs/promises';
import { sql } from 'kysely';
import { type Db, EmbeddedPostgres, connect, migrateToLatest } from '../../src/index.js';

/**
 * A real PostgreSQL for integration tests: the embedded server in its own
 * folder and port, shared by a test file; each call to `fresh()` gives an
 * empty, migrated database.
 */
export class TestDatabase {
  private server: EmbeddedPostgres | undefined;
  private home: string | undefined;
  private baseUrl: string | undefined;
  private counter = 0;
  private readonly opened: Db[] = [];

  async start(): Promise<void> {
    if (process.env.VOME_TEST_DATABASE_URL) {
      this.baseUrl = process.env.VOME_TEST_DATABASE_URL;
      return;
    }
    // Under /var/tmp, not a 0700 mkdtemp parent: the postgres user must reach it.
    this.home = await mkdtemp('/var/tmp/vome-test-');
    const { chmod } = await import('node:fs/promises');
    await chmod(this.home, 0o711);
    const port = 55_000 + (process.pid % 5000);
    this.server = new EmbeddedPostgres(this.home, port);
    this.baseUrl = await this.server.start();
  }

  /** Creates an empty, migrated database and returns it with its URL, for another process to open. */
  async freshWithUrl(): Promise<{ db: Db; url: string }> {
    const db = await this.fresh();
    return { db, url: this.lastUrl as string };
  }

  private lastUrl: string | undefined;

  /** Creates an empty database, migrated to the latest schema. */
  async fresh(): Promise<Db> {
    const admin = connect(this.baseUrl as string);
    const name = `vome_test_${process.pid}_${++this.counter}`;
    await sql.raw(`CREATE DATABASE ${name}`).execute(admin);
    await admin.destroy();
    const url = new URL(this.baseUrl as string);
    url.pathname = `/${name}`;
    this.lastUrl = url.toString();
    const db = connect(url.toString());
    await migrateToLatest(db);
    this.opened.push(db);
    return db;
  }

  async stop(): Promise<void> {
    await Promise.all(this.opened.map((db) => db.destroy()));
    await this.server?.stop();
    if (this.home) {
      await rm(this.home, { recursive: true, force: true });
    }
  }
}
