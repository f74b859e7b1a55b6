import { BaseCommand } from '../../lib/base-command.js';
import { table } from '../../lib/render.js';
import { type AccountJson, accountJson } from './show.js';

export default class AccountList extends BaseCommand {
  static override summary = 'List customer accounts.';
  static override examples = ['<%= config.bin %> account list', '<%= config.bin %> account list --json'];

  async run(): Promise<{ accounts: AccountJson[] }> {
    const { listAccounts } = await import('@vome/core');
    const accounts = (await listAccounts(await this.db())).map(accountJson);
    if (!this.jsonEnabled()) {
      this.log(accounts.length === 0 ? 'no accounts' : table(['LOGIN', 'NAME', 'EMAIL', 'ID'], accounts.map((a) => [a.githubLogin, a.displayName, a.email, a.id])));
    }
    return { accounts };
  }
}
