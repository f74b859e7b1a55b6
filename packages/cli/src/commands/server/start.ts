import { ServerOperationCommand } from '../../lib/server-operation-command.js';

export default class ServerStart extends ServerOperationCommand {
  static override summary = 'Start a stopped server.';
  static override description = 'Starts the virtual machine; a running server is left as it is.';
  static override examples = ['<%= config.bin %> server start kitchen', '<%= config.bin %> server start kitchen --wait --json'];

  protected readonly kind = 'start';
}
