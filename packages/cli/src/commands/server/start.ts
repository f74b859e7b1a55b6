import { ServerOperationCommand } from '../../lib/server-operation-command.js';

export default class ServerStart extends ServerOperationCommand {
  // oclif spreads the command class when parsing, which drops inherited statics.
  static override args = ServerOperationCommand.args;
  static override summary = 'Start a stopped server.';
  static override description = 'Starts the virtual machine; a running server is left as it is.';
  static override examples = ['<%= config.bin %> server start kitchen', '<%= config.bin %> server start kitchen --wait --json'];

  protected readonly kind = 'start';
}
