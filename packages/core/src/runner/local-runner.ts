import { copyFile } from 'node:fs/promises';
import { execa } from 'execa';
import { HostCommandError, HostTimeoutError } from '../errors/index.js';
import { type CommandResult, type CommandRunner, type RunOptions, SCRIPT_PRELUDE, scriptCommand } from './command-runner.js';

/** Runs host scripts on the machine vome itself runs on. */
export class LocalRunner implements CommandRunner {
  roundTrips = 0;

  /**
   * @param prefix a command that runs the script's shell, such as
   *   `['ip', 'netns', 'exec', 'ns1']` to run it inside a network namespace.
   */
  constructor(
    readonly hostName: string,
    private readonly prefix: readonly string[] = [],
  ) {}

  async run(script: string, options: RunOptions): Promise<CommandResult> {
    this.roundTrips += 1;
    const [program = 'sh', ...args] = [...this.prefix, 'sh', '-c', scriptCommand(options.timeoutMs)];
    const result = await execa(program, args, {
      input: SCRIPT_PRELUDE + script,
      reject: false,
      timeout: options.timeoutMs,
      stripFinalNewline: false,
    });
    if (result.timedOut || result.exitCode === 124 || result.exitCode === 137) {
      throw new HostTimeoutError(this.hostName, options.label, options.timeoutMs);
    }
    const outcome: CommandResult = { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? 1 };
    if ((options.check ?? true) && outcome.exitCode !== 0) {
      throw new HostCommandError(this.hostName, options.label, outcome.exitCode, outcome.stderr);
    }
    return outcome;
  }

  async putFile(localPath: string, remotePath: string): Promise<void> {
    this.roundTrips += 1;
    await copyFile(localPath, remotePath);
  }

  async close(): Promise<void> {}
}
