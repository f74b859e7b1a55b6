import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';

export default class HostRemove extends BaseCommand {
  static override summary = 'Remove a host that carries no servers.';
  static override description = 'The host is no longer listed or used and its name is free again. Files on the host are left alone.';
  static override examples = ['<%= config.bin %> host remove ha-1 --yes', '<%= config.bin %> host remove ha-1 --yes --json'];
  static override args = {
    name: Args.string({ description: 'Host name.', required: true }),
  };
  static override flags = {
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation (required without a terminal).' }),
  };

  async run(): Promise<{ removed: string }> {
    const { args, flags } = await this.parse(HostRemove);
    const core = await import('@vome/core');
    const db = await this.db();
    await core.getHost(db, args.name);
    if (!flags.yes) {
      if (!process.stdin.isTTY || this.jsonEnabled()) {
        throw new core.InvalidInputError(`removal of host "${args.name}" needs confirmation: pass --yes`);
      }
      const { confirm } = await import('@inquirer/prompts');
      if (!(await confirm({ message: `Remove host ${args.name}?`, default: false }))) {
        throw new core.InvalidInputError('removal cancelled');
      }
    }
    const host = await core.removeHost(db, this.adminActor(), args.name);
    this.log(`removed host ${host.name}`);
    return { removed: host.name };
  }
}
