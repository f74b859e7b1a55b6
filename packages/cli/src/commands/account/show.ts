import { Args } from '@oclif/core';
import type { Account } from '@vome/core';
import { BaseCommand } from '../../lib/base-command.js';
import { table } from '../../lib/render.js';

export interface AccountJson {
  id: string;
  githubLogin: string;
  displayName: string;
  email: string;
  createdAt: string;
}

export function accountJson(account: Account): AccountJson {
  return {
    id: account.id,
    githubLogin: account.github_login,
    displayName: account.display_name,
    email: account.email,
    createdAt: account.created_at.toISOString(),
  };
}

export default class AccountShow extends BaseCommand {
  static override summary = 'Show a customer account.';
  static override examples = ['<%= config.bin %> account show octocat', '<%= config.bin %> account show octocat --json'];
  static override args = {
    login: Args.string({ description: 'GitHub login or account id.', required: true }),
  };

  async run(): Promise<AccountJson> {
    const { args } = await this.parse(AccountShow);
    const { getAccount } = await import('@vome/core');
    const account = accountJson(await getAccount(await this.db(), args.login));
    if (!this.jsonEnabled()) {
      this.log(table(['FIELD', 'VALUE'], Object.entries(account)));
    }
    return account;
  }
}
