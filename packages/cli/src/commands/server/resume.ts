import { ServerOperationCommand } from '../../lib/server-operation-command.js';

export default class ServerResume extends ServerOperationCommand {
  // oclif spreads the command class when parsing, which drops inherited statics.
  static override args = ServerOperationCommand.args;
  static override summary = 'Resume a suspended server.';
  static override description = 'Starts the virtual machine again and clears the suspension time.';
  static override examples = ['<%= config.bin %> server resume kitchen', '<%= config.bin %> server resume kitchen --wait --json'];

  protected readonly kind = 'resume';
}
