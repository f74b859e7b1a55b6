import { ServerOperationCommand } from '../../lib/server-operation-command.js';

export default class ServerSuspend extends ServerOperationCommand {
  // oclif spreads the command class when parsing, which drops inherited statics.
  static override args = ServerOperationCommand.args;
  static override summary = 'Suspend a server: stop it and mark the time.';
  static override description = 'Stops the virtual machine and records when it was suspended. The disk, address and reservation are kept until the server is resumed or destroyed.';
  static override examples = ['<%= config.bin %> server suspend kitchen', '<%= config.bin %> server suspend kitchen --wait --json'];

  protected readonly kind = 'suspend';
}
