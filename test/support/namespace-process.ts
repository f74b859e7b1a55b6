import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A long-running process that a test started inside a network namespace. */
export interface NamespaceProcess {
  /** Lines the process printed on stdout so far. */
  lines: string[];
  /** Resolves once a stdout line contains `text`, or rejects after `timeoutMs`. */
  waitFor(text: string, timeoutMs?: number): Promise<string>;
  /** Ends the process (by its own pid) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `program args…` inside a namespace with `ip netns exec`, which
 * replaces itself with the program, so the child's pid is the program's.
 */
export function startInNamespace(namespace: string, program: string, args: string[]): NamespaceProcess {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', namespace, program, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { text: string; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (line.includes(waiter.text)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  return {
    lines,
    waitFor: (text, timeoutMs = 10_000) => {
      const seen = lines.find((line) => line.includes(text));
      if (seen !== undefined) {
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${program} in ${namespace} printed no "${text}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        waiters.push({
          text,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
