import { BaseCommand } from '../../lib/base-command.js';

export interface DbStatusJson {
  mode: 'embedded' | 'external';
  running: boolean;
  initialised: boolean;
  port: number | null;
  dataDir: string | null;
  pid: number | null;
  migrations?: Array<{ name: string; appliedAt: string | null }>;
}

export default class DbStatus extends BaseCommand {
  static override summary = 'Show which database vome uses and whether it runs.';
  static override description = 'With DATABASE_URL set, vome uses that server. Without it, vome runs a PostgreSQL server under VOME_HOME/postgres, started on first use and kept running for later commands.';
  static override examples = ['<%= config.bin %> db status', '<%= config.bin %> db status --json'];

  async run(): Promise<DbStatusJson> {
    const core = await import('@vome/core');
    const config = await this.config_();
    let status: DbStatusJson;
    if (config.databaseUrl) {
      status = { mode: 'external', running: true, initialised: true, port: null, dataDir: null, pid: null };
    } else {
      const embedded = await new core.EmbeddedPostgres(config.home, config.embeddedPostgresPort).status();
      status = { mode: 'embedded', ...embedded };
    }
    if (status.running) {
      const db = core.connect(await core.resolveDatabaseUrl(config));
      try {
        status.migrations = (await core.listMigrations(db)).map((m) => ({ name: m.name, appliedAt: m.appliedAt?.toISOString() ?? null }));
      } finally {
        await db.destroy();
      }
    }
    if (!this.jsonEnabled()) {
      this.log(`${status.mode} PostgreSQL: ${status.running ? 'running' : 'stopped'}${status.port ? ` on 127.0.0.1:${status.port}` : ''}${status.dataDir ? `, data in ${status.dataDir}` : ''}`);
      for (const migration of status.migrations ?? []) {
        this.log(`  ${migration.appliedAt ? 'applied' : 'pending'}  ${migration.name}`);
      }
    }
    return status;
  }
}
