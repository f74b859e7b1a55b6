import type { VomeConfig } from '../config/config.js';
import type { Host } from '../db/schema.js';
import { ConfigError } from '../errors/index.js';
import type { Logger } from '../logging/logger.js';
import type { CommandRunner } from '../runner/command-runner.js';
import { parseHostKey } from '../runner/host-key.js';
import { LocalRunner } from '../runner/local-runner.js';
import { SshRunner } from '../runner/ssh-runner.js';

/** Where and how to reach a host, before or after it is recorded. */
export interface HostEndpoint {
  name: string;
  transport: 'ssh' | 'local';
  sshAddress?: string | null;
  sshPort?: number | null;
  sshUser?: string | null;
  hostKey?: string | null;
}

/** Creates the command runner for a host: SSH with its pinned key, or local. */
export function openRunner(config: VomeConfig, logger: Logger, endpoint: HostEndpoint): CommandRunner {
  if (endpoint.transport === 'local') {
    return new LocalRunner(endpoint.name);
  }
  if (!config.sshKeyPath) {
    throw new ConfigError('VOME_SSH_KEY is not set: vome needs a private key to reach SSH hosts', {
      hints: ['set VOME_SSH_KEY to the path of the private key whose public half is authorised on your hosts'],
    });
  }
  if (!endpoint.sshAddress || !endpoint.sshPort || !endpoint.sshUser || !endpoint.hostKey) {
    throw new ConfigError(`host "${endpoint.name}" lacks SSH settings (address, port, user and pinned key)`);
  }
  return new SshRunner(
    {
      hostName: endpoint.name,
      address: endpoint.sshAddress,
      port: endpoint.sshPort,
      user: endpoint.sshUser,
      hostKey: parseHostKey(endpoint.hostKey),
      privateKeyPath: config.sshKeyPath,
      connectTimeoutMs: config.sshConnectTimeoutMs,
    },
    logger,
  );
}

/** Creates the runner for a recorded host. */
export function runnerForHost(config: VomeConfig, logger: Logger, host: Host): CommandRunner {
  return openRunner(config, logger, {
    name: host.name,
    transport: host.transport,
    sshAddress: host.ssh_address,
    sshPort: host.ssh_port,
    sshUser: host.ssh_user,
    hostKey: host.host_key,
  });
}
