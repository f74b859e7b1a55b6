import { copyFile } from 'node:fs/promises';
import { execa } from 'execa';
import { HostCommandError, HostTimeoutError } from '../errors/index.js';
import { type CommandResult, type CommandRunner, type RunOptions, SCRIPT_PRELUDE, scriptCommand } from './command-runner.js';

/** Runs host scripts on the machine vome itself runs on. */
export class LocalRunner implements CommandRunner {
  roundTrips = 0;

  constructor(readonly hostName: string) {}

  async run(script: string, options: RunOptions): Promise<CommandResult> {
    this.roundTrips += 1;
    const result = await execa('sh', ['-c', scriptCommand(options.timeoutMs)], {
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
