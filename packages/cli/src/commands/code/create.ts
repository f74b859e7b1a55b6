import { Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { type CodeJson, codeJson } from '../../lib/code-json.js';

export interface CodeCreateJson extends CodeJson {
  /** The code to hand out; shown only here. */
  code: string;
}

export default class CodeCreate extends BaseCommand {
  static override summary = 'Make a redemption code that starts a trial.';
  static override description = `A customer who redeems the code gets a trial of the plan for the given number of days. The code can be redeemed --uses times, by different accounts, until --expires. Only a hash of the code is stored: it is printed once, here, and cannot be shown again. Revoke it with \`vome code revoke PREFIX\`.`;
  static override examples = [
    '<%= config.bin %> code create --plan household --trial-days 30 --expires "$(date -u -d \'+60 days\' +%F)"',
    '<%= config.bin %> code create --plan household --trial-days 14 --uses 50 --expires 2030-03-01T00:00:00Z --json',
  ];
  static override flags = {
    plan: Flags.string({ summary: 'Plan the trial is of: lower-case letters, digits and hyphens.', required: true }),
    'trial-days': Flags.integer({ summary: 'Length of the trial in days (1–365).', required: true }),
    uses: Flags.integer({ summary: 'How many accounts may redeem the code (1–100000).', default: 1 }),
    expires: Flags.string({ summary: 'Date and time after which the code cannot be redeemed, in ISO 8601 (a date alone means midnight UTC).', required: true }),
  };

  async run(): Promise<CodeCreateJson> {
    const { flags } = await this.parse(CodeCreate);
    const { codeState, createRedemptionCode } = await import('@vome/core');
    const created = await createRedemptionCode(await this.db(), this.adminActor(), {
      plan: flags.plan,
      trialDays: flags['trial-days'],
      maxUses: flags.uses,
      expiresAt: new Date(flags.expires),
    });
    this.log(created.code);
    this.note(`code ${created.record.prefix}: ${flags['trial-days']}-day ${flags.plan} trial, ${flags.uses} use(s), expires ${created.record.expires_at.toISOString()}; it is not shown again`);
    return { ...codeJson(created.record, codeState(created.record)), code: created.code };
  }
}
