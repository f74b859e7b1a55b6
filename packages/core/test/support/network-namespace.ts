import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { execa } from 'execa';
import { HostCommandError, HostTimeoutError } from '../../src/errors/index.js';
import {
  type CommandResult,
  type CommandRunner,
  type RunOptions,
  SCRIPT_PRELUDE,
  scriptCommand,
} from '../../src/runner/command-runner.js';

/**
 * A network namespace that a test created and must remove. Firewall rules,
 * routes and interfaces that tests make live only inside such namespaces,
 * never in the machine's own.
 */
export interface TestNamespace {
  name: string;
  /** Runs a program inside the namespace and returns its stdout; throws on a non-zero exit. */
  exec(program: string, args?: string[], input?: string): string;
  /** A runner whose host scripts run inside the namespace, as they would on a host. */
  runner(hostName?: string): CommandRunner;
  /** Deletes the namespace; interfaces inside it go with it. */
  remove(): void;
}

/**
 * Creates a network namespace with loopback up, first deleting one of the same
 * name that an earlier, killed run left behind. Names must start with "vt-"
 * so that a test never deletes a namespace it did not create.
 */
export function createTestNamespace(name: string): TestNamespace {
  if (!/^vt-[a-z0-9-]{1,12}$/.test(name)) {
    throw new Error(`test namespace names are "vt-" and 1–12 lower-case letters, digits or hyphens, got "${name}"`);
  }
  spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  return {
    name,
    exec: (program, args = [], input) =>
      execFileSync('ip', ['netns', 'exec', name, program, ...args], {
        encoding: 'utf8',
        input,
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    runner: (hostName = name) => new NamespaceRunner(name, hostName),
    remove: () => {
      spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
    },
  };
}

/** Runs host scripts inside a network namespace on this machine. */
export class NamespaceRunner implements CommandRunner {
  roundTrips = 0;

  constructor(
    readonly namespace: string,
    readonly hostName: string,
  ) {}

  async run(script: string, options: RunOptions): Promise<CommandResult> {
    this.roundTrips += 1;
    const result = await execa('ip', ['netns', 'exec', this.namespace, 'sh', '-c', scriptCommand(options.timeoutMs)], {
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
