import { BaseCommand } from '../../lib/base-command.js';

export default class DbStop extends BaseCommand {
  static override summary = 'Stop the embedded PostgreSQL.';
  static override examples = ['<%= config.bin %> db stop', '<%= config.bin %> db stop --json'];

  async run(): Promise<{ stopped: boolean }> {
    const core = await import('@vome/core');
    const config = await this.config_();
    if (config.databaseUrl) {
      throw new core.ConfigError('DATABASE_URL is set: vome does not stop an external server');
    }
    const stopped = await new core.EmbeddedPostgres(config.home, config.embeddedPostgresPort).stop();
    this.log(stopped ? 'embedded PostgreSQL stopped' : 'embedded PostgreSQL was not running');
    return { stopped };
  }
}
