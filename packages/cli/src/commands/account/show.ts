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

/** An account with its GitHub id and current subscription, as `account show` prints it. */
export interface AccountDetailJson extends AccountJson {
  githubId: string | null;
  subscription: { plan: string; status: string; trialEndsAt: string | null } | null;
}

export default class AccountShow extends BaseCommand {
  static override summary = 'Show a customer account with its GitHub id and current subscription.';
  static override examples = ['<%= config.bin %> account show octocat', '<%= config.bin %> account show octocat --json'];
  static override args = {
    login: Args.string({ description: 'GitHub login or account id.', required: true }),
  };

  async run(): Promise<AccountDetailJson> {
    const { args } = await this.parse(AccountShow);
    const { currentSubscription, getAccount } = await import('@vome/core');
    const db = await this.db();
    const record = await getAccount(db, args.login);
    const subscription = await currentSubscription(db, record.id);
    const account: AccountDetailJson = {
      ...accountJson(record),
      githubId: record.github_id,
      subscription: subscription
        ? { plan: subscription.plan, status: subscription.status, trialEndsAt: subscription.trial_ends_at?.toISOString() ?? null }
        : null,
    };
    if (!this.jsonEnabled()) {
      const { subscription: current, ...fields } = account;
      const shown = current ? `${current.status} (${current.plan})${current.trialEndsAt ? ` until ${current.trialEndsAt}` : ''}` : 'none';
      this.log(table(['FIELD', 'VALUE'], [...Object.entries(fields).map(([key, value]) => [key, value ?? '-']), ['subscription', shown]]));
    }
    return account;
  }
}
