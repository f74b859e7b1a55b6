import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { table } from '../../lib/render.js';

interface SubscriptionJson {
  account: string;
  plan: string | null;
  status: string;
  trialEndsAt: string | null;
}

export default class AccountSubscription extends BaseCommand {
  static override summary = "Set an account's subscription: trial, active, past due or cancelled.";
  static override description = [
    'Customers may act on their servers only with an active subscription or a trial that has not ended. Past due and cancelled accounts can still sign in and see their servers, but not change them.',
    'An account has at most one current subscription; cancelling ends it. A first subscription needs --plan, and a trial needs --trial-days.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> account subscription octocat --status active --plan home',
    '<%= config.bin %> account subscription octocat --status past_due --json',
    '<%= config.bin %> account subscription octocat --status trial --trial-days 14',
  ];
  static override args = {
    login: Args.string({ description: 'GitHub login or account id.', required: true }),
  };
  static override flags = {
    status: Flags.string({ summary: 'New status.', options: ['trial', 'active', 'past_due', 'cancelled'], required: true }),
    plan: Flags.string({ summary: 'Plan name; keeps the current plan when left out.' }),
    'trial-days': Flags.integer({ summary: 'For --status trial: the trial ends this many days from now (1–365).' }),
  };

  async run(): Promise<SubscriptionJson> {
    const { args, flags } = await this.parse(AccountSubscription);
    const { setSubscription } = await import('@vome/core');
    const status = flags.status as 'trial' | 'active' | 'past_due' | 'cancelled';
    const subscription = await setSubscription(await this.db(), this.adminActor(), args.login, { status, plan: flags.plan, trialDays: flags['trial-days'] });
    const json: SubscriptionJson = {
      account: args.login,
      plan: subscription?.plan ?? null,
      status,
      trialEndsAt: subscription?.trial_ends_at?.toISOString() ?? null,
    };
    if (!this.jsonEnabled()) {
      this.log(table(['FIELD', 'VALUE'], Object.entries(json).map(([key, value]) => [key, value ?? '-'])));
    }
    return json;
  }
}
