import { Args } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { type CodeJson, codeJson } from '../../lib/code-json.js';

export default class CodeRevoke extends BaseCommand {
  static override summary = 'Revoke a redemption code so that it can no longer be redeemed.';
  static override description = 'Trials the code already started are kept. Revoking a revoked code succeeds and reports that it was already revoked.';
  static override examples = ['<%= config.bin %> code revoke 7K2QD', '<%= config.bin %> code revoke 7K2QD --json'];
  static override args = {
    prefix: Args.string({ description: 'The code\'s prefix, as `vome code list` shows it (its first five characters).', required: true }),
  };

  async run(): Promise<CodeJson & { alreadyRevoked: boolean }> {
    const { args } = await this.parse(CodeRevoke);
    const { codeState, revokeRedemptionCode } = await import('@vome/core');
    const result = await revokeRedemptionCode(await this.db(), this.adminActor(), args.prefix);
    this.log(result.alreadyRevoked ? `code ${result.code.prefix} was already revoked` : `revoked code ${result.code.prefix}`);
    return { ...codeJson(result.code, codeState(result.code)), alreadyRevoked: result.alreadyRevoked };
  }
}
