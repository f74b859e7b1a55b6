import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { type AccountJson, accountJson } from './show.js';

export default class AccountAdd extends BaseCommand {
  static override summary = 'Add a customer account.';
  static override examples = [
    '<%= config.bin %> account add octocat --name "Mona Lisa" --email mona@example.org',
    '<%= config.bin %> account add octocat --name "Mona Lisa" --email mona@example.org --json',
  ];
  static override args = {
    login: Args.string({ description: 'GitHub login.', required: true }),
  };
  static override flags = {
    name: Flags.string({ char: 'n', summary: 'Display name.', required: true }),
    email: Flags.string({ char: 'e', summary: 'Email address.', required: true }),
  };

  async run(): Promise<AccountJson> {
    const { args, flags } = await this.parse(AccountAdd);
    const { addAccount } = await import('@vome/core');
    const account = await addAccount(await this.db(), this.adminActor(), { githubLogin: args.login, displayName: flags.name, email: flags.email });
    this.log(`added account ${account.github_login} (${account.id})`);
    return accountJson(account);
  }
}
