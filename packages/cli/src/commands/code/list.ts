import { BaseCommand } from '../../lib/base-command.js';
import { type CodeJson, codeJson } from '../../lib/code-json.js';
import { table } from '../../lib/render.js';

export default class CodeList extends BaseCommand {
  static override summary = 'List redemption codes by prefix, with their uses and state.';
  static override description = 'Codes themselves are never stored, so only their prefixes are listed.';
  static override examples = ['<%= config.bin %> code list', '<%= config.bin %> code list --json'];

  async run(): Promise<CodeJson[]> {
    const { codeState, listRedemptionCodes } = await import('@vome/core');
    const codes = (await listRedemptionCodes(await this.db())).map((code) => codeJson(code, codeState(code)));
    if (!this.jsonEnabled()) {
      this.log(
        codes.length === 0
          ? 'no codes'
          : table(
              ['PREFIX', 'PLAN', 'TRIAL DAYS', 'USES', 'EXPIRES', 'STATE'],
              codes.map((code) => [code.prefix, code.plan, code.trialDays, `${code.uses}/${code.maxUses}`, code.expiresAt, code.state]),
            ),
      );
    }
    return codes;
  }
}
