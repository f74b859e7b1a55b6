/** Output and exit code of a host script. */
export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  /** A short name for errors and logs, e.g. "define-domain". */
  label: string;
  /** Ends the script after this long and raises HostTimeoutError. */
  timeoutMs: number;
  /** When false, a non-zero exit is returned instead of raised. Default true. */
  check?: boolean;
}

/**
 * Runs bash scripts on one host. Each call is one round trip: the script goes
 * to `bash -s` on the host's standard input, so a step with many lines costs
 * one SSH exchange. Implementations classify failures at the source
 * (unreachable, auth rejected, host key mismatch, timeout, non-zero exit).
 */
export interface CommandRunner {
  /** The host's name, for errors. */
  readonly hostName: string;
  /** How many scripts and file transfers this runner has sent. */
  readonly roundTrips: number;
  run(script: string, options: RunOptions): Promise<CommandResult>;
  /** Copies a local file to a path on the host (written as given, no rename). */
  putFile(localPath: string, remotePath: string, options: { timeoutMs: number }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Quotes a value for a POSIX shell: the result is one word whatever the value
 * holds.
 *
 * @example
 * shellQuote("it's") // => 'it'\''s'
 */
export function shellQuote(value: string | number): string {
  const text = String(value);
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(text)) {
    return text;
  }
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Parses the `key=value` lines a host script prints. Other lines are
 * ignored, and a later key replaces an earlier one.
 */
export function parseKeyValueLines(output: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const index = line.indexOf('=');
    if (index > 0) {
      pairs[line.slice(0, index)] = line.slice(index + 1).trim();
    }
  }
  return pairs;
}

/**
 * Prefix of every script: fail on the first error, on unset names and in
 * pipes, and create files private unless a script sets a mode.
 */
export const SCRIPT_PRELUDE = 'set -euo pipefail\nexport LC_ALL=C\numask 077\n';

/**
 * Builds the command that runs a script on a host: bash under `timeout`, so a
 * script outlives neither its time limit nor, by more than a few seconds, a
 * control plane that was killed mid-step.
 */
export function scriptCommand(timeoutMs: number): string {
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  return `timeout --kill-after=5 ${seconds} bash -s`;
}
