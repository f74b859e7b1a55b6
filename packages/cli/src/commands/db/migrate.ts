import { BaseCommand } from '../../lib/base-command.js';

export default class DbMigrate extends BaseCommand {
  static override summary = 'Apply pending database migrations.';
  static override description = 'Other commands apply them as well before they touch the database; this command only migrates.';
  static override examples = ['<%= config.bin %> db migrate', '<%= config.bin %> db migrate --json'];

  async run(): Promise<{ applied: string[] }> {
    const core = await import('@vome/core');
    const db = core.connect(await core.resolveDatabaseUrl(await this.config_()));
    try {
      const result = await core.migrateToLatest(db);
      const applied = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
      this.log(applied.length === 0 ? 'database schema is up to date' : `applied ${applied.join(', ')}`);
      return { applied };
    } finally {
      await db.destroy();
    }
  }
}
