import { ServerOperationCommand } from '../../lib/server-operation-command.js';

export default class ServerDestroy extends ServerOperationCommand {
  // oclif spreads the command class when parsing, which drops inherited statics.
  static override args = ServerOperationCommand.args;
  static override flags = ServerOperationCommand.destructiveFlags;
  static override summary = 'Destroy a server and release its address.';
  static override description = 'Stops and undefines the domain, deletes the overlay disk and NVRAM, removes the DHCP reservation and frees the address. The record is kept, marked destroyed, for the audit trail.';
  static override examples = ['<%= config.bin %> server destroy kitchen --yes', '<%= config.bin %> server destroy kitchen --yes --wait --json'];

  protected readonly kind = 'destroy';
  protected override readonly destructive = true;
}
