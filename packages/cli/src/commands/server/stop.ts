import { ServerOperationCommand } from '../../lib/server-operation-command.js';

export default class ServerStop extends ServerOperationCommand {
  // oclif spreads the command class when parsing, which drops inherited statics.
  static override args = ServerOperationCommand.args;
  static override summary = 'Stop a server with an ACPI shutdown.';
  static override description = 'Asks the guest to power off and waits up to VOME_SHUTDOWN_GRACE_SECONDS (default 60), then stops it hard. The disk and address are kept.';
  static override examples = ['<%= config.bin %> server stop kitchen', '<%= config.bin %> server stop kitchen --wait --json'];

  protected readonly kind = 'stop';
}
