import { lstat, readFile } from 'node:fs/promises';
import ssh2, { Client, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import {
  HostAuthError,
  HostCommandError,
  HostKeyMismatchError,
  HostTimeoutError,
  HostUnreachableError,
  VomeError,
} from '../errors/index.js';
import type { Logger } from '../logging/logger.js';
import { type CommandResult, type CommandRunner, type RunOptions, SCRIPT_PRELUDE, scriptCommand } from './command-runner.js';
import { fingerprint, formatHostKey, type HostKey } from './host-key.js';

export interface SshTarget {
  hostName: string;
  address: string;
  port: number;
  user: string;
  /** The pinned key; a host that presents any other is rejected. */
  hostKey: HostKey;
  privateKeyPath: string;
  connectTimeoutMs: number;
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET']);

function classifyConnectError(target: SshTarget, error: Error & { level?: string; code?: string }): VomeError {
  const where = `${target.user}@${target.address}:${target.port}`;
  if (error.level === 'client-authentication') {
    return new HostAuthError(`host "${target.hostName}" (${where}) rejected vome's SSH key`, {
      hints: [`add the public key of ${target.privateKeyPath} to ~${target.user}/.ssh/authorized_keys on the host`],
      fields: { host: target.hostName },
      cause: error,
    });
  }
  if (error.level === 'client-timeout' || (error.code && NETWORK_ERRORS.has(error.code))) {
    return new HostUnreachableError(`host "${target.hostName}" (${where}) is unreachable: ${error.message}`, {
      hints: ['check that the host is up, that sshd listens on that address and port, and that no firewall drops it'],
      fields: { host: target.hostName },
      cause: error,
    });
  }
  return new HostUnreachableError(`SSH connection to host "${target.hostName}" (${where}) failed: ${error.message}`, {
    fields: { host: target.hostName },
    cause: error,
  });
}

/**
 * Runs host scripts over one SSH connection with key authentication and a
 * pinned host key. The key is checked before authentication, so a host with
 * the wrong key never receives a command or vome's credentials.
 */
export class SshRunner implements CommandRunner {
  roundTrips = 0;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;

  constructor(
    private readonly target: SshTarget,
    private readonly logger: Logger,
  ) {}

  get hostName(): string {
    return this.target.hostName;
  }

  async run(script: string, options: RunOptions): Promise<CommandResult> {
    const client = await this.connection();
    this.roundTrips += 1;
    this.logger.debug({ host: this.hostName, step: options.label }, 'running host script');
    const outcome = await this.exec(client, SCRIPT_PRELUDE + script, options);
    if ((options.check ?? true) && outcome.exitCode !== 0) {
      throw new HostCommandError(this.hostName, options.label, outcome.exitCode, outcome.stderr);
    }
    return outcome;
  }

  async putFile(localPath: string, remotePath: string, options: { timeoutMs: number }): Promise<void> {
    const client = await this.connection();
    this.roundTrips += 1;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new HostTimeoutError(this.hostName, `upload ${remotePath}`, options.timeoutMs)), options.timeoutMs);
      client.sftp((error, sftp) => {
        if (error) {
          clearTimeout(timer);
          reject(error);
          return;
        }
        sftp.fastPut(localPath, remotePath, { mode: 0o600 }, (putError) => {
          clearTimeout(timer);
          sftp.end();
          if (putError) {
            reject(new VomeError('host_upload_failed', `upload of ${localPath} to ${remotePath} on host "${this.hostName}" failed: ${putError.message}`, { cause: putError }));
          } else {
            resolve();
          }
        });
      });
    });
  }

  async close(): Promise<void> {
    this.client?.end();
    this.client = undefined;
    this.connecting = undefined;
  }

  private connection(): Promise<Client> {
    if (this.client) {
      return Promise.resolve(this.client);
    }
    this.connecting ??= this.connect().then(
      (client) => {
        this.client = client;
        return client;
      },
      (error: unknown) => {
        this.connecting = undefined;
        throw error;
      },
    );
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const target = this.target;
    const privateKey = await readPrivateKey(target.privateKeyPath);

    return new Promise<Client>((resolve, reject) => {
      const client = new Client();
      let mismatch: HostKeyMismatchError | undefined;
      const config: ConnectConfig = {
        host: target.address,
        port: target.port,
        username: target.user,
        privateKey,
        readyTimeout: target.connectTimeoutMs,
        keepaliveInterval: 15_000,
        // Ask for the pinned key's type, or a host with several keys may
        // offer another one and look like an impostor.
        algorithms: { serverHostKey: hostKeyAlgorithms(target.hostKey.type) },
        hostVerifier: (key: Buffer) => {
          if (key.equals(target.hostKey.blob)) {
            return true;
          }
          mismatch = new HostKeyMismatchError(target.hostName, fingerprint(target.hostKey.blob), fingerprint(key));
          return false;
        },
      };
      client.once('ready', () => resolve(client));
      client.once('error', (error: Error & { level?: string; code?: string }) => {
        client.end();
        reject(mismatch ?? classifyConnectError(target, error));
      });
      client.connect(config);
    });
  }

  private exec(client: Client, script: string, options: RunOptions): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      let stream: ClientChannel | undefined;
      // Started before the channel is open: a host that accepts the session
      // but never opens the channel must time out too. The remote `timeout`
      // ends the script itself; this timer covers the connection.
      const timer = setTimeout(() => {
        stream?.signal('KILL');
        stream?.close();
        reject(new HostTimeoutError(this.hostName, options.label, options.timeoutMs));
      }, options.timeoutMs + 10_000);
      client.exec(scriptCommand(options.timeoutMs), (error, channel: ClientChannel) => {
        if (error) {
          clearTimeout(timer);
          reject(new HostUnreachableError(`could not start a command on host "${this.hostName}": ${error.message}`, { cause: error }));
          return;
        }
        stream = channel;
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let exitCode: number | null = null;
        channel.on('data', (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        channel.on('exit', (code: number | null) => {
          exitCode = code;
        });
        channel.on('close', () => {
          clearTimeout(timer);
          if (exitCode === 124 || exitCode === 137) {
            reject(new HostTimeoutError(this.hostName, options.label, options.timeoutMs));
            return;
          }
          resolve({
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
            // A null code means the script was ended by a signal.
            exitCode: exitCode ?? 255,
          });
        });
        channel.end(script);
      });
    });
  }
}

const MAX_KEY_BYTES = 64 * 1024;

/**
 * Reads and parses vome's private key. A FIFO, a device or a huge file is
 * rejected before reading, and an encrypted or malformed key is a settings
 * error rather than an unexpected one.
 */
async function readPrivateKey(path: string): Promise<Buffer> {
  const unreadable = (reason: string, cause?: unknown) =>
    new VomeError('ssh_key_unreadable', `cannot use the SSH private key ${path}: ${reason}`, {
      hints: ['set VOME_SSH_KEY to the path of an unencrypted OpenSSH private key file'],
      cause,
    });
  let key: Buffer;
  try {
    const info = await lstat(path);
    if (!info.isFile()) {
      throw unreadable('not a regular file');
    }
    if (info.size > MAX_KEY_BYTES) {
      throw unreadable(`larger than ${MAX_KEY_BYTES} bytes`);
    }
    key = await readFile(path);
  } catch (error) {
    throw error instanceof VomeError ? error : unreadable((error as Error).message, error);
  }
  // ssh2 is CommonJS, and Node cannot see `utils` as a named export.
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) {
    throw unreadable(parsed.message, parsed);
  }
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!first || first.isPrivateKey() !== true) {
    throw unreadable('it contains no private key');
  }
  return key;
}

/** Lists the host key algorithms that produce keys of the pinned type. */
function hostKeyAlgorithms(type: string): ServerHostKeyAlgorithm[] {
  return (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]) as ServerHostKeyAlgorithm[];
}

/**
 * Connects without a pin and returns the key the host presents, for showing
 * to an operator before it is pinned. No authentication is attempted.
 */
export async function fetchHostKey(address: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const client = new Client();
    let presented: Buffer | undefined;
    client.once('error', (error: Error & { level?: string; code?: string }) => {
      client.end();
      if (presented) {
        resolve(formatHostKey(presented));
      } else {
        reject(
          new HostUnreachableError(`could not read the host key of ${address}:${port}: ${error.message}`, {
            hints: ['check the address and port, or give the key with --host-key'],
            cause: error,
          }),
        );
      }
    });
    client.connect({
      host: address,
      port,
      username: 'vome-host-key-probe',
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        presented = key;
        // Rejecting ends the handshake before any authentication.
        return false;
      },
    });
  });
}
