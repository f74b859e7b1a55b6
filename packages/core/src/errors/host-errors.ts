import { VomeError, type VomeErrorOptions } from './vome-error.js';

/** The host is unreachable: no route, connection refused, or the connect timed out. */
export class HostUnreachableError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('host_unreachable', message, options);
  }
}

/** The host rejected vome's key. */
export class HostAuthError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('host_auth_rejected', message, options);
  }
}

/**
 * The host presented a key other than the pinned one. The connection was
 * closed before any command ran.
 */
export class HostKeyMismatchError extends VomeError {
  readonly expected: string;
  readonly received: string;

  constructor(host: string, expected: string, received: string) {
    super(
      'host_key_mismatch',
      `host key of "${host}" does not match the pinned key: expected ${expected}, received ${received}`,
      {
        hints: [
          `if the host was reinstalled, check the new key on its console and pin it with \`vome host set-key ${host} --host-key "…"\``,
          'otherwise treat this as an attack: do not connect',
        ],
        fields: { host, expected, received },
      },
    );
    this.expected = expected;
    this.received = received;
  }
}

/** A host command ran and exited non-zero. */
export class HostCommandError extends VomeError {
  constructor(host: string, command: string, exitCode: number, stderr: string, options: VomeErrorOptions = {}) {
    const detail = stderr.trim().split('\n').slice(-5).join('\n');
    super('host_command_failed', `command "${command}" on host "${host}" exited with ${exitCode}: ${detail || '(no output)'}`, {
      ...options,
      fields: { host, command, exitCode, stderr, ...options.fields },
    });
  }
}

/** A host command ran longer than its timeout and was ended. */
export class HostTimeoutError extends VomeError {
  constructor(host: string, command: string, timeoutMs: number) {
    super('host_command_timed_out', `command "${command}" on host "${host}" timed out after ${timeoutMs} ms`, {
      fields: { host, command, timeoutMs },
    });
  }
}
