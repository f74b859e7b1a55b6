import { ServerOperationCommand } from '../../lib/server-operation-command.js';

export default class ServerRebuild extends ServerOperationCommand {
  // oclif spreads the command class when parsing, which drops inherited statics.
  static override args = ServerOperationCommand.args;
  static override flags = ServerOperationCommand.destructiveFlags;
  static override summary = 'Rebuild a server from its record.';
  static override description = 'Stops and undefines the domain, deletes the overlay disk and NVRAM, and provisions them again from the record: same name, address and MAC, a fresh disk on the base image. Everything on the old disk is lost.';
  static override examples = ['<%= config.bin %> server rebuild kitchen --yes', '<%= config.bin %> server rebuild kitchen --yes --wait --json'];

  protected readonly kind = 'rebuild';
  protected override readonly destructive = true;
}
