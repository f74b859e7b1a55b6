import { BaseCommand } from '../../lib/base-command.js';

export default class DbStart extends BaseCommand {
  static override summary = 'Start the embedded PostgreSQL and apply migrations.';
  static override examples = ['<%= config.bin %> db start', '<%= config.bin %> db start --json'];

  async run(): Promise<{ running: true; port: number; dataDir: string }> {
    const core = await import('@vome/core');
    const config = await this.config_();
    if (config.databaseUrl) {
      throw new core.ConfigError('DATABASE_URL is set, so vome uses that server and runs no embedded PostgreSQL', { hints: ['unset DATABASE_URL to use the embedded server'] });
    }
    await this.db();
    const embedded = new core.EmbeddedPostgres(config.home, config.embeddedPostgresPort);
    this.log(`embedded PostgreSQL running on 127.0.0.1:${embedded.port}, data in ${embedded.paths.dataDir}`);
    return { running: true, port: embedded.port, dataDir: embedded.paths.dataDir };
  }
}
