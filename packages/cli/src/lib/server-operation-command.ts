import { Args, Flags } from '@oclif/core';
import type { OperationKind } from '@vome/core';
import { killAfterStepHook, operationJson, type ServerOperationJson } from '../commands/server/create.js';
import { serverJson } from './render.js';
import { BaseCommand } from './base-command.js';
import { withProgress } from './progress.js';

/**
 * Base of the server operation commands (start, stop, suspend, resume,
 * rebuild, destroy): each subclass names its operation and its texts.
 * Destructive ones ask for the server name on a terminal, or take --yes.
 */
export abstract class ServerOperationCommand extends BaseCommand {
  static override args = {
    name: Args.string({ description: 'Server name.', required: true }),
  };

  static override flags = {
    wait: Flags.boolean({ summary: 'Wait for another operation on the server instead of failing.' }),
  };

  /** Flags of rebuild and destroy, which lose the server's disk. */
  static destructiveFlags = {
    ...ServerOperationCommand.flags,
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation (required without a terminal).' }),
  };

  protected abstract readonly kind: Exclude<OperationKind, 'create'>;
  protected readonly destructive: boolean = false;

  async run(): Promise<ServerOperationJson> {
    const { args, flags: parsedFlags } = await this.parse(this.ctor as typeof ServerOperationCommand);
    const flags = parsedFlags as typeof parsedFlags & { yes?: boolean };
    const core = await import('@vome/core');
    const context = await this.context();
    const config = await this.config_();

    if (this.kind === 'destroy') {
      const live = await core.getServer(context.db, args.name).catch(() => undefined);
      const gone = live ? undefined : await core.findDestroyedServer(context.db, args.name);
      if (gone) {
        this.log(`server ${gone.name} was already destroyed at ${gone.destroyed_at?.toISOString()}`);
        return alreadyDestroyedJson(gone);
      }
    }

    if (this.destructive && !flags.yes) {
      await core.getServer(context.db, args.name);
      if (!process.stdin.isTTY || this.jsonEnabled()) {
        throw new core.InvalidInputError(`${this.kind} of server "${args.name}" needs confirmation: pass --yes`);
      }
      const { input } = await import('@inquirer/prompts');
      const answer = await input({ message: `Type the server name to ${this.kind} it (${args.name}):` });
      if (answer.trim() !== args.name) {
        throw new core.InvalidInputError(`${this.kind} cancelled: the name typed does not match "${args.name}"`);
      }
    }

    const result = await withProgress(this.jsonEnabled(), this.kind, args.name, (onProgress) =>
      core.serverOperation(context, this.adminActor(), args.name, this.kind, {
        wait: flags.wait,
        onProgress,
        afterStep: killAfterStepHook(config.testKillAfterStep),
      }),
    );
    const server = await core.getServerById(context.db, result.server.id);
    this.log(`server ${server.name} is ${server.state}`);
    return operationJson(server, result);
  }
}

/** Builds the result for a server that was already destroyed: no operation ran. */
function alreadyDestroyedJson(server: import('@vome/core').ServerView): ServerOperationJson {
  return { server: serverJson(server), operation: null, roundTrips: 0 };
}
