import { execFileSync, spawnSync } from 'node:child_process';
import type { CommandRunner } from '../../src/runner/command-runner.js';
import { LocalRunner } from '../../src/runner/local-runner.js';

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
    runner: (hostName = name) => new LocalRunner(hostName, ['ip', 'netns', 'exec', name]),
    remove: () => {
      spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
    },
  };
}
